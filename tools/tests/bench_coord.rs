//! `zabflow bench coord` against a fresh zabflow node: a one-second mixed run writes a report
//! with throughput, latencies and the server's CPU time, and no errors.

use std::process::Command;

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
        assert!(names.contains(&format!("{op}/closed/depth=16").as_str()), "{op}: {names:?}");
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
