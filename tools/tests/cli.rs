//! End-to-end runs of the `zabflow` binary: a tiny ring benchmark into a temporary directory,
//! `report show` and `report compare` on the results, and the error path.

use std::path::Path;
use std::process::{Command, Output};

fn zabflow(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow")).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "zabflow {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Checks that every tag of an SVG document is closed in order.
fn assert_well_formed_svg(svg: &str) {
    assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    let mut open: Vec<&str> = Vec::new();
    for tag in svg.split('<').skip(1).map(|rest| rest.split('>').next().unwrap()) {
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or_default();
        match name.strip_prefix('/') {
            Some(closed) => assert_eq!(open.pop(), Some(closed), "unbalanced </{closed}>"),
            None => open.push(name),
        }
    }
    assert!(open.is_empty(), "unclosed tags {open:?}");
}

#[test]
fn ring_reports_are_written_shown_and_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for out in [&first, &second] {
        let output = zabflow(&["bench", "ring", "--duration", "20ms", "--out", path(out)]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("rtrb-chunked/crossbeam"), "{stdout}");
        assert!(out.join("summary.json").is_file() && out.join("mpsc-64B.hgrm").is_file());
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["scenario"], "ring");
    assert_eq!(summary["series"].as_array().unwrap().len(), 8);
    assert!(summary["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "rtrb-chunked/crossbeam"));

    let shown = zabflow(&["report", "show", path(&first)]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("rtrb-single/16B"));

    let svg_path = dir.path().join("compare.svg");
    let compared =
        zabflow(&["report", "compare", path(&first), path(&second), "--out", path(&svg_path)]);
    let table = String::from_utf8_lossy(&compared.stdout);
    assert!(table.contains("B/A") && table.contains("crossbeam/64B"), "{table}");
    assert_well_formed_svg(&std::fs::read_to_string(&svg_path).unwrap());
}

#[test]
fn default_suite_writes_one_directory_per_scenario() {
    let dir = tempfile::tempdir().unwrap();
    zabflow(&["bench", "--quick", "--out", path(dir.path())]);
    assert!(dir.path().join("ring").join("summary.json").is_file());
}

#[test]
fn errors_exit_non_zero_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["report", "show", "/nonexistent/zabflow-report"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("zabflow: error:") && stderr.contains("summary.json"), "{stderr}");
    let bad = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["bench", "ring", "--batch", "0", "--duration", "10ms"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("batch"));
}
