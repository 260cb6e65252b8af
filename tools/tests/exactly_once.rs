//! Exactly-once jobs, bad input: a missing or wrong input log, bad flags, and an
//! unreachable coordination service get a clear error and an exit status scripts can tell
//! apart (1, or 3 for the coordination service), with bounded retries and backoff. The
//! crash, failover, rescale and corrupt-state tests are in `exactly_once_crash.rs`.

mod job_harness;

use std::path::Path;
use std::time::{Duration, Instant};

use job_harness::{generate, zabflow};

#[test]
fn bad_input_and_an_unreachable_service_get_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let output = root.path().join("out");
    // Nothing listens on a port just released.
    let port = zabflow_tests::ports::free_loopback_ports(1).unwrap()[0];
    let coord = format!("127.0.0.1:{port}");
    let run = |input: &Path, extra: &[&str]| {
        zabflow()
            .args(["job", "run", "--job", "windowed-count", "--input"])
            .arg(input)
            .arg("--output")
            .arg(&output)
            .args(["--coord", &coord])
            .args(extra)
            .output()
            .unwrap()
    };
    let missing_input = run(&missing, &[]);
    let stderr = String::from_utf8_lossy(&missing_input.stderr);
    assert_eq!(missing_input.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no such directory") && stderr.contains("log gen"), "{stderr}");

    let access = root.path().join("access");
    generate(&access, "access", 100, 1, 10);
    let wrong_kind = run(&access, &[]);
    let stderr = String::from_utf8_lossy(&wrong_kind.stderr);
    assert!(stderr.contains("holds \"access\" records"), "{stderr}");

    let keyed = root.path().join("keyed");
    generate(&keyed, "keyed", 100, 1, 10);
    let bad_shards = run(&keyed, &["--shards", "0"]);
    assert!(String::from_utf8_lossy(&bad_shards.stderr).contains("--shards 0"));

    let started = Instant::now();
    let unreachable = run(&keyed, &["--connect-timeout", "3s"]);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("coordination service unavailable"), "{stderr}");
    let retries = stderr.matches("retrying in").count();
    // Attempts of up to 1 s, backoff from 100 ms doubling: a few attempts in 3 s, never a
    // tight loop.
    assert!((2..=10).contains(&retries), "{retries} retries: {stderr}");
    assert!(elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(10), "{elapsed:?}");
}
