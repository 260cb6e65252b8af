//! `zabflow cluster` end to end: `up --nodes 3` prints a connect string that serves writes,
//! `status` names one leader and two followers, `kill N` returns once the node is gone (a
//! second kill of it fails clearly), the other two elect a leader and keep the data, `start N`
//! brings it back as a follower with every write, and `down` stops them all.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn cluster(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .arg("cluster")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A base port with the two ports above it free too (node N uses BASE + N - 1).
fn free_run_of_three() -> u16 {
    loop {
        let base = zabflow_tests::ports::free_loopback_ports(1).unwrap()[0];
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if base < 60_000 && (1..3).all(|step| free(base + step)) {
            return base;
        }
    }
}

/// `status` lines until `check` accepts them (or panics after 30 s).
fn status_until(dir: &Path, what: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> =
            stdout(&cluster(dir, &["status"])).lines().map(String::from).collect();
        if check(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "status never showed {what}: {lines:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn zk_cli(connect: &str, script: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["cli", "--server", connect, "-c", script])
        .output()
        .unwrap();
    stdout(&output)
}

#[test]
fn up_status_kill_start_down() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cluster");
    let (client, quorum, election) =
        (free_run_of_three(), free_run_of_three(), free_run_of_three());
    let up = cluster(
        &dir,
        &[
            "up",
            "--nodes",
            "3",
            "--tick-ms",
            "200",
            "--port",
            &client.to_string(),
            "--quorum-port",
            &quorum.to_string(),
            "--election-port",
            &election.to_string(),
        ],
    );
    let connect = stdout(&up).trim().lines().last().unwrap().to_owned();
    for node in 1..=3 {
        assert!(connect.contains(&format!("127.0.0.1:{}", client + node - 1)), "{connect}");
        assert!(dir.join(format!("node{node}/zoo.cfg")).is_file());
    }
    let roles = |lines: &[String], mode: &str| lines.iter().filter(|l| l.contains(mode)).count();
    let lines = status_until(&dir, "a leader and two followers", |lines| {
        roles(lines, ": leader,") == 1 && roles(lines, ": follower,") == 2
    });
    zk_cli(&connect, "create /kept v1");

    // The worker `up` started runs a submitted job.
    assert!(lines.iter().any(|l| l.starts_with("worker 1 (pid ") && l.contains("running")));
    let input = root.path().join("access");
    let zabflow = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_zabflow")).args(args).output();
    let input_arg = input.to_str().unwrap();
    let generated =
        zabflow(&["log", "gen", "--out", input_arg, "--kind", "access", "--records", "20000"])
            .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let output = root.path().join("analysis");
    let submitted = zabflow(&[
        "job",
        "submit",
        "--job",
        "log-analysis",
        "--input",
        input_arg,
        "--output",
        output.to_str().unwrap(),
        "--coord",
        &connect,
        "--wait",
        "60s",
    ])
    .unwrap();
    let said = stdout(&submitted);
    assert!(said.contains("log-analysis finished on worker1"), "{said}");

    // Kill the leader: `kill` returns once it is gone, and a second kill says it is not running.
    let leader_line = lines.iter().find(|l| l.contains(": leader,")).unwrap();
    let leader: u32 = leader_line["node ".len()..].split(' ').next().unwrap().parse().unwrap();
    let killed = stdout(&cluster(&dir, &["kill", &leader.to_string()]));
    assert!(killed.contains(&format!("node {leader} killed")), "{killed}");
    let again = cluster(&dir, &["kill", &leader.to_string()]);
    assert!(!again.status.success());
    let error = String::from_utf8_lossy(&again.stderr);
    assert!(error.contains("not running") || error.contains("no pid file"), "{error}");
    status_until(&dir, "a new leader", |lines| {
        lines.iter().any(|l| l.starts_with(&format!("node {leader} ")) && l.ends_with("down"))
            && roles(lines, ": leader,") == 1
    });
    let survivors: Vec<String> = (1..=3)
        .filter(|&node| node != leader)
        .map(|node| format!("127.0.0.1:{}", client + node as u16 - 1))
        .collect();
    zk_cli(&survivors.join(","), "create /after v2");

    // Start it again: it follows and holds both writes.
    let started = stdout(&cluster(&dir, &["start", &leader.to_string()]));
    let own = format!("127.0.0.1:{}", client + leader as u16 - 1);
    assert!(started.contains(&own), "{started}");
    status_until(&dir, "three serving nodes again", |lines| {
        roles(lines, ": leader,") == 1 && roles(lines, ": follower,") == 2
    });
    let listing = zk_cli(&own, "sync /\nls /");
    assert!(listing.contains("kept") && listing.contains("after"), "{listing}");

    let down = stdout(&cluster(&dir, &["down"]));
    assert_eq!(down.matches("stopped").count(), 4, "{down}");
    assert!(down.starts_with("worker 1 stopped"), "workers stop before the nodes: {down}");
    status_until(&dir, "every node and worker down", |lines| {
        lines.len() == 4 && lines.iter().all(|l| l.ends_with("down"))
    });
}
