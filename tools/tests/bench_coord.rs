//! `zabflow bench coord` against a fresh zabflow node: a one-second mixed run writes a report
//! with throughput, latencies and the server's CPU time, and no errors; a depth list makes
//! one series per depth; a quick run against a fresh 3-node ensemble measures every default
//! workload and stops and removes every node; an external server is left as it was found,
//! and an unreachable one fails the run at once. `zabflow bench coord-memory` reports a
//! node's memory after a load.

mod coord;

use coord::Node;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn bench(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .arg("bench")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn summary(report_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(report_dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn series_names(summary: &serde_json::Value) -> Vec<String> {
    let series = summary["series"].as_array().unwrap();
    series.iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn coord_against_a_fresh_zabflow_node_reports_throughput_and_server_cpu() {
    let out = tempfile::tempdir().unwrap();
    let report_dir = out.path().join("coord");
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["bench", "coord", "--target", "zabflow", "--warmup", "0s", "--duration", "1s"])
        .args(["--sessions", "4", "--depth", "16", "--znodes", "100"])
        .args(["--mix", "getData=2,setData=2,create/delete=1,exists=1,getChildren=1,multi=1"])
        .arg("--dir")
        .arg(out.path())
        .arg("--out")
        .arg(&report_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench coord failed: {stderr}");
    let text = std::fs::read_to_string(report_dir.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(summary["scenario"], "coord");
    let series = summary["series"].as_array().unwrap();
    let names: Vec<&str> = series.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for op in ["getData", "setData", "create", "delete", "exists", "getChildren", "multi"] {
        let name = format!("{op}/1-node/closed/inflight=64");
        assert!(names.contains(&name.as_str()), "{op}: {names:?}");
    }
    for series in series {
        let name = &series["name"];
        assert_eq!(series["target"], "zabflow");
        assert!(series["throughput_per_s"].as_f64().unwrap() > 0.0, "{name}");
        assert_eq!(series["errors_total"], 0, "{name}: {}", series["errors"]);
        assert!(series["server_cpu_us_per_op"].as_f64().unwrap() > 0.0, "{name}");
        assert!(series["latency_us"]["p99"].as_f64().unwrap() > 0.0, "{name}");
    }
    // The node was stopped and its data dir removed.
    let left: Vec<_> =
        std::fs::read_dir(out.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("coord")], "{left:?}");
}

#[test]
fn a_depth_list_gives_one_series_per_depth_in_one_report() {
    let out = tempfile::tempdir().unwrap();
    let report_dir = out.path().join("coord");
    let dir = out.path().to_str().unwrap();
    let args = ["coord", "--warmup", "0s", "--duration", "500ms", "--sessions", "2"];
    let output = bench(
        &[&args[..], &["--depth", "1,4", "--mix", "setData", "--dir", dir]].concat(),
        &report_dir,
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary = summary(&report_dir);
    assert_eq!(
        series_names(&summary),
        ["setData/1-node/closed/inflight=2", "setData/1-node/closed/inflight=8"]
    );
    assert_eq!(summary["params"]["depths"], serde_json::json!([1, 4]));
    assert_eq!(summary["params"]["in_flight"], serde_json::json!([2, 8]));
    let refused = bench(&["coord", "--depth", "1,4", "--rate", "100"], &out.path().join("x"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("one --depth"));
}

#[test]
fn a_quick_run_against_a_fresh_three_node_ensemble_measures_and_cleans_up() {
    let out = tempfile::tempdir().unwrap();
    let report_dir = out.path().join("coord");
    let dir = out.path().to_str().unwrap();
    let args = ["coord", "--target", "zabflow", "--nodes", "3", "--quick", "--dir", dir];
    let output = bench(&args, &report_dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary = summary(&report_dir);
    assert_eq!(summary["params"]["nodes"], 3);
    assert_eq!(
        series_names(&summary),
        [
            "setData/3-node/closed/inflight=1024",
            "setData/3-node/closed/inflight=128",
            "setData/3-node/closed/inflight=16",
            "getData/3-node/closed/inflight=128",
            "setData/3-node/open/rate=1000",
        ]
    );
    for series in summary["series"].as_array().unwrap() {
        let name = &series["name"];
        assert_eq!(series["params"]["nodes"], 3, "{name}");
        assert_eq!(series["errors_total"], 0, "{name}: {}", series["errors"]);
        assert!(series["throughput_per_s"].as_f64().unwrap() > 0.0, "{name}");
        assert!(series["server_cpu_us_per_op"].as_f64().unwrap() > 0.0, "{name}");
    }
    // Every node was stopped and the ensemble's data dirs removed.
    let left: Vec<_> =
        std::fs::read_dir(out.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("coord")], "{left:?}");
}

#[test]
fn an_external_server_is_left_as_it_was_found() {
    let out = tempfile::tempdir().unwrap();
    let node = Node::start(&out.path().join("node"), "");
    let hosts = format!("127.0.0.1:{}", node.port);
    let mix = "getData=1,setData=1,create/delete=1,createSequential=1";
    let args = ["coord", "--target", "external", "--hosts", &hosts, "--mix", mix];
    let timing = ["--warmup", "0s", "--duration", "500ms", "--sessions", "2", "--znodes", "50"];
    let output = bench(&[&args[..], &timing[..]].concat(), &out.path().join("report"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        summary(&out.path().join("report"))["series"][0]["throughput_per_s"].as_f64() > Some(0.0)
    );
    let client = zabflow_net::client::Client::connect_to(&hosts).unwrap();
    assert_eq!(client.get_children("/", false).unwrap(), ["zookeeper"]);
}

#[test]
fn unreachable_external_hosts_fail_at_once_with_the_reason() {
    let out = tempfile::tempdir().unwrap();
    let port = zabflow_tests::ports::free_loopback_ports(1).unwrap()[0];
    let hosts = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let output = bench(&["coord", "--target", "external", "--hosts", &hosts], out.path());
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot reach {hosts} (")), "{stderr}");
}

#[test]
fn coord_memory_reports_a_fresh_nodes_memory_after_the_load() {
    let out = tempfile::tempdir().unwrap();
    let report_dir = out.path().join("memory");
    let dir = out.path().to_str().unwrap();
    let args = ["coord-memory", "--target", "zabflow", "--znodes", "3000", "--settle", "0s"];
    let output = bench(&[&args[..], &["--dir", dir]].concat(), &report_dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("RSS MiB") && stdout.contains("populate/znodes=3000"), "{stdout}");
    let summary = summary(&report_dir);
    assert_eq!(summary["scenario"], "coord-memory");
    let series = &summary["series"][0];
    assert_eq!(series["name"], "populate/znodes=3000");
    assert_eq!(series["target"], "zabflow");
    let number = |key: &str| series[key].as_f64().unwrap_or_else(|| panic!("{key}: {series}"));
    assert!(number("throughput_per_s") > 0.0 && number("load_s") > 0.0);
    assert!(number("rss_bytes") > number("idle_rss_bytes"), "{series}");
    assert!(number("hwm_bytes") >= number("rss_bytes"));
    assert!(number("rss_anon_bytes") > 0.0 && number("rss_bytes_per_znode") > 0.0);
    assert!(series["jvm_heap_live_bytes"].is_null());
    let left: Vec<_> =
        std::fs::read_dir(out.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("memory")], "{left:?}");
}
