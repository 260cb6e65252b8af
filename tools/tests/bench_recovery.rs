//! `zabflow bench recovery` at its smallest (10k keys, one kill), so the scenario, the
//! running-count job and the job's timeline lines it reads cannot rot; and its refusal of
//! bad parameters.

use std::path::Path;
use std::process::Command;

fn zabflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zabflow"))
}

fn number(series: &serde_json::Value, key: &str) -> f64 {
    series[key].as_f64().unwrap_or_else(|| panic!("series has no number {key}: {series}"))
}

#[test]
fn one_kill_of_a_10k_key_job_is_measured_and_taken_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let output = zabflow()
        .args(["bench", "recovery", "--quick", "--shards", "2", "--out"])
        .arg(&out)
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench recovery failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("running-count/keys=10000/shards=2"), "{stdout}");
    let summary = read_summary(&out);
    assert_eq!(summary["scenario"], "recovery");
    let series = &summary["series"][0];
    assert_eq!(series["name"], "running-count/keys=10000/shards=2");
    assert_eq!(number(series, "recoveries"), 1.0);
    // Every key was restored, from a state file that holds them all.
    assert_eq!(number(series, "restored_keys"), 10_000.0);
    assert!(number(series, "restored_bytes") >= 10_000.0 * 16.0, "{series}");
    assert!(number(series, "checkpoint_bytes") >= 10_000.0 * 16.0, "{series}");
    assert!(number(series, "checkpoints") >= 1.0, "{series}");
    // The steps come in order after the kill, and the first output ends them.
    let steps = ["spawned_ms_median", "leader_ms_median", "checkpoint_read_ms_median"];
    let times: Vec<f64> = steps.iter().map(|step| number(series, step)).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?} {series}");
    let recovery = number(series, "recovery_ms_median");
    assert!(times[2] <= recovery && recovery > 0.0, "{series}");
    assert!(out.join(series["hgrm"].as_str().unwrap()).is_file());
    // The run directory under --dir is removed; nothing is left running on its files.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("zabflow-bench-recovery"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn read_summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn bad_parameters_fail_clearly_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--keys", "0"], "--keys"),
        (&["--repetitions", "0"], "--repetitions"),
        (&["--session-timeout", "100ms", "--tick-time", "100"], "two ticks"),
    ];
    for (args, message) in cases {
        let output = zabflow()
            .args(["bench", "recovery", "--out"])
            .arg(dir.path().join("report"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
