//! `--live` end to end: `zabflow bench pipeline --live` and `zabflow job run --live` with
//! stderr piped (not a terminal) print one plain line a second while a job runs, with every
//! shard on it and no escape codes, and the final totals once when the job ends.

mod coord;
mod job_harness;

use std::process::Command;

#[test]
fn a_live_pipeline_run_prints_plain_lines_with_shard_rows_and_final_totals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    // The paced latency run lasts 2.5 s whatever the machine's speed: at least two lines.
    let args = "bench pipeline --quick --live --jobs tumbling-count --shards 2 --no-baseline \
                --checkpoint-interval 0s --events 200000 --latency-run 2500ms --out";
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(args.split_whitespace())
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "zabflow failed:\n{stderr}");
    assert!(!stderr.contains('\x1b'), "no escape codes when stderr is not a terminal:\n{stderr}");

    let title = "tumbling-count/shards=2/rtrb latency";
    let lines: Vec<&str> =
        stderr.lines().filter(|line| line.starts_with(&format!("live {title} "))).collect();
    assert!(lines.len() >= 2, "a line a second over 2.5 s:\n{stderr}");
    for line in &lines {
        let parts: Vec<&str> = line.split(" | ").collect();
        assert_eq!(parts.len(), 3, "the total and two shards: {line}");
        assert!(parts[0].contains(": total pulled/s="), "{line}");
        for (shard, part) in parts[1..].iter().enumerate() {
            assert!(part.starts_with(&format!("shard {shard} pulled/s=")), "{line}");
            for field in ["received/s=", "out/s=", "ring=", "wm_lag_ms=", "fired=", "late="] {
                assert!(part.contains(field), "{field} in {line}");
            }
        }
    }
    // Paced, the job pulls records in every second of the run.
    assert!(!lines[0].contains("total pulled/s=0 "), "{}", lines[0]);

    // Each run ends its view with the totals, once: 200k events flat out, then the paced run.
    for run in ["tumbling-count/shards=2/rtrb", title] {
        let heading = format!("{run}: final totals");
        assert_eq!(stderr.lines().filter(|line| *line == heading).count(), 1, "{stderr}");
    }
    let after = stderr.split("tumbling-count/shards=2/rtrb: final totals\n").nth(1).unwrap();
    let table: Vec<&str> = after.lines().take(5).collect();
    let cells = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(cells(table[0])[..3], ["shard", "pulled", "received"], "{after}");
    assert_eq!(cells(table[1])[0], "0");
    assert_eq!(cells(table[2])[0], "1");
    assert_eq!(cells(table[3])[..2], ["total", "200000"], "every event pulled:\n{after}");
    assert!(table[4].contains("pulled/s") && table[4].contains("on average"), "{after}");
    assert!(out.join("summary.json").is_file());
}

#[test]
fn a_live_job_run_prints_plain_lines_between_its_progress_lines_and_final_totals() {
    let dir = tempfile::tempdir().unwrap();
    let node = coord::Node::start(&dir.path().join("node"), "");
    let input = dir.path().join("input");
    job_harness::generate(&input, "keyed", 30_000, 2, 100);
    let output = dir.path().join("output");
    // 30k records paced at 10k per second per shard: about 1.5 s of run, so a line or more.
    let run = job_harness::zabflow()
        .args(["job", "run", "--job", "windowed-count", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--coord", &format!("127.0.0.1:{}", node.port), "--cluster", "live"])
        .args(["--shards", "2", "--checkpoint-interval", "200ms", "--rate", "10000", "--live"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "job failed:\n{stderr}");
    assert!(!stderr.contains('\x1b'), "no escape codes when stderr is not a terminal:\n{stderr}");
    let lines: Vec<&str> =
        stderr.lines().filter(|line| line.starts_with("live windowed-count ")).collect();
    assert!(!lines.is_empty(), "a line a second:\n{stderr}");
    for line in &lines {
        assert_eq!(line.split(" | ").count(), 3, "the total and two shards: {line}");
    }
    assert!(stderr.contains("job: "), "progress lines still print:\n{stderr}");
    let heading = "windowed-count: final totals";
    assert_eq!(stderr.lines().filter(|line| *line == heading).count(), 1, "{stderr}");
    let after = stderr.split(&format!("{heading}\n")).nth(1).unwrap();
    let total = after.lines().find(|line| line.starts_with("total")).expect("a total row");
    assert_eq!(total.split_whitespace().nth(1), Some("30000"), "every record pulled:\n{after}");
}
