//! Exactly-once jobs end to end: `zabflow job run` as a real process against a real
//! coordination service, killed with SIGKILL again and again — at named points of the
//! checkpoint protocol (`ZABFLOW_JOB_FAULT`, see `tools/src/jobs/fault.rs`) and at random
//! moments — and restarted each time; its final committed output must equal an
//! uninterrupted run's record for record. Also: a standby taking over from a killed
//! active process, restoring a 2-shard checkpoint on 1 and 3 shards, and a corrupt state
//! file that makes the restore fall back to the previous checkpoint (bad input and an
//! unreachable service: `exactly_once.rs`).
//!
//! Against a standalone `zabflow node`, a 3-node zabflow ensemble whose leader is killed
//! mid-job, and a real Apache ZooKeeper (never skipped: a missing ZooKeeper fails the test
//! with the harness's install hint). Kill timings come from a seed printed on failure.

mod coord;
mod job_harness;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use job_harness::{
    assert_same_output, committed, crash_loop, generate, read, sigkill, wait_for_lines, JobSpec,
};
use zabflow_core::coordinator::Coordinator;
use zabflow_net::coordinator::ZkCoordinator;

/// Seed of the random kill timings (each test derives its own from it).
const SEED: u64 = 0x5eed_0007;

/// Records of the keyed input: long enough a job that a crash loop of twenty kills at
/// 20 ms checkpoints never runs out of job.
const KEYED_RECORDS: u64 = 600_000;

/// The reference output of `job` on `input`: an uninterrupted run on 2 shards, in cluster
/// `<prefix>-reference` (tests sharing one real ZooKeeper must not share a cluster).
fn reference(job: &'static str, input: &Path, root: &Path, coord: &Coordination) -> Vec<String> {
    let output = root.join(format!("reference-{job}"));
    let cluster = coord.cluster("reference");
    let mut spec = JobSpec::new(job, input, &output, &coord.hosts, &cluster);
    spec.session_timeout = coord.session_timeout;
    spec.run_to_end(&root.join(format!("reference-{job}.log")));
    let lines = committed(&output);
    assert!(lines.len() > 100, "the reference run committed only {} records", lines.len());
    lines
}

/// The coordination service a test's jobs use: a `zabflow node` of its own, or the shared
/// real ZooKeeper (with a cluster prefix unique to the test and process).
struct Coordination {
    hosts: String,
    prefix: String,
    /// What the service grants: zabflow's test node allows 800 ms, ZooKeeper's tickTime=2000
    /// at least 4 s.
    session_timeout: &'static str,
    _node: Option<coord::Node>,
}

impl Coordination {
    fn zabflow(root: &Path, test: &str) -> Coordination {
        let node = coord::Node::start(&root.join("node"), "");
        let hosts = format!("127.0.0.1:{}", node.port);
        Coordination { hosts, prefix: test.to_owned(), session_timeout: "800ms", _node: Some(node) }
    }

    fn zookeeper(test: &str) -> Coordination {
        let hosts = zabflow_tests::real_zookeeper::shared_standalone()
            .unwrap_or_else(|error| panic!("real ZooKeeper is required: {error}"));
        let prefix = format!("{test}-{}", std::process::id());
        Coordination { hosts, prefix, session_timeout: "4s", _node: None }
    }

    fn cluster(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// A spec of `job` in cluster `name` of this service.
    fn spec(&self, job: &'static str, input: &Path, output: &Path, name: &str) -> JobSpec {
        let mut spec = JobSpec::new(job, input, output, &self.hosts, &self.cluster(name));
        spec.session_timeout = self.session_timeout;
        spec
    }
}

#[test]
fn windowed_count_survives_sigkills_at_every_checkpoint_step() {
    let root = tempfile::tempdir().unwrap();
    let coord = Coordination::zabflow(root.path(), "steps");
    let input = root.path().join("input");
    generate(&input, "keyed", KEYED_RECORDS, 2, 500);
    let expected = reference("windowed-count", &input, root.path(), &coord);

    let output = root.path().join("crashed");
    let mut spec = coord.spec("windowed-count", &input, &output, "crashes");
    spec.rate = 100_000;
    let log = root.path().join("crashes.log");
    let started = Instant::now();
    let result = crash_loop(&spec, 20, Duration::from_millis(400), SEED, &log, |_| {});
    let text = read(&log);
    assert!(result.kills >= 20, "only {} kills before the job ended: {text}", result.kills);
    for point in ["SinkPrepared", "AfterRecord", "EpochDrawn", "BeforeRecord", "AfterPrune"] {
        assert!(text.contains(&format!("fault point {point} reached")), "{point} never hit");
    }
    assert!(text.contains("resumed from checkpoint"), "no run resumed: {text}");
    eprintln!("{} kills over {} runs in {:?}", result.kills, result.runs, started.elapsed());
    assert_same_output(&expected, &committed(&output), "windowed-count after SIGKILLs");
}

#[test]
fn log_analysis_survives_sigkills_and_the_coordination_leader_dying() {
    let root = tempfile::tempdir().unwrap();
    let mut ensemble = coord::Ensemble::start(&root.path().join("ensemble"), 3, "");
    // Long enough for the job's session to move to another server when its own dies.
    let coord = Coordination {
        hosts: ensemble.hosts(),
        prefix: "ensemble".into(),
        session_timeout: "4s",
        _node: None,
    };
    let input = root.path().join("input");
    generate(&input, "access", 200_000, 2, 300);
    let expected = reference("log-analysis", &input, root.path(), &coord);

    let output = root.path().join("crashed");
    let mut spec = coord.spec("log-analysis", &input, &output, "crashes");
    spec.rate = 50_000;
    spec.worker_id = Some("crashing");
    let log = root.path().join("crashes.log");
    let mut leader_killed = false;
    let result = crash_loop(&spec, 4, Duration::from_millis(300), SEED ^ 1, &log, |kills| {
        if kills == 2 {
            let leader = ensemble
                .nodes
                .iter()
                .position(|node| node.four_letter("srvr").contains("Mode: leader"));
            let leader = leader.expect("the ensemble has a leader");
            ensemble.nodes[leader].kill();
            leader_killed = true;
        }
    });
    assert!(result.kills >= 4 && leader_killed, "{result:?}: {}", read(&log));
    assert_same_output(&expected, &committed(&output), "log-analysis after SIGKILLs");
    // The analysis output is JSON lines with its fields in a fixed order.
    let summary = expected.iter().find(|line| line.contains("\"kind\":\"summary\"")).unwrap();
    assert!(summary.starts_with("{\"window_start\":"), "{summary}");
    assert!(summary.contains("\"top_urls\":[{\"url\":"), "{summary}");
}

#[test]
fn windowed_count_survives_sigkills_against_real_zookeeper() {
    let connect_string = zabflow_tests::real_zookeeper::shared_standalone()
        .unwrap_or_else(|error| panic!("real ZooKeeper is required: {error}"));
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("input");
    generate(&input, "keyed", KEYED_RECORDS / 2, 2, 500);
    let cluster = format!("zk-{}", std::process::id());
    let output = root.path().join("reference");
    let mut spec = JobSpec::new("windowed-count", &input, &output, &connect_string, &cluster);
    spec.session_timeout = "4s";
    spec.run_to_end(&root.path().join("reference.log"));
    let expected = committed(&output);

    let output = root.path().join("crashed");
    spec.output = output.clone();
    spec.cluster = format!("{cluster}-crashes");
    spec.rate = 50_000;
    // Each restart ends its killed predecessor's session instead of waiting 4 s for it.
    spec.worker_id = Some("crashing");
    let log = root.path().join("crashes.log");
    let result = crash_loop(&spec, 3, Duration::from_millis(300), SEED ^ 2, &log, |_| {});
    let text = read(&log);
    assert!(result.kills >= 3, "{result:?}: {text}");
    assert!(text.contains("ended session"), "no restart ended its predecessor's session: {text}");
    assert_same_output(&expected, &committed(&output), "windowed-count on ZooKeeper");
}

fn a_standby_takes_over_from_a_killed_active_process(root: &Path, coord: &Coordination) {
    let input = root.join("input");
    generate(&input, "keyed", KEYED_RECORDS / 2, 2, 500);
    let expected = reference("windowed-count", &input, root, coord);

    let output = root.join("failover");
    let mut spec = coord.spec("windowed-count", &input, &output, "failover");
    spec.rate = 50_000;
    let (active_log, standby_log) = (root.join("active.log"), root.join("standby.log"));
    let mut active = spec.spawn(None, &active_log);
    assert!(wait_for_lines(&active_log, "leads cluster", 1, Duration::from_secs(20)));
    let mut standby = spec.spawn(None, &standby_log);
    assert!(
        wait_for_lines(&standby_log, "is a standby", 1, Duration::from_secs(20)),
        "{}",
        read(&standby_log)
    );
    assert!(
        wait_for_lines(&active_log, "recorded", 2, Duration::from_secs(20)),
        "the active process completed no checkpoint: {}",
        read(&active_log)
    );
    sigkill(&mut active);
    let status = standby.wait().unwrap();
    let text = read(&standby_log);
    assert!(status.success(), "standby failed: {text}");
    assert!(text.contains("leads cluster") && text.contains("resumed from checkpoint"), "{text}");
    assert_same_output(&expected, &committed(&output), "after failover");
}

fn a_checkpoint_of_two_shards_restores_on_one_and_on_three(root: &Path, coord: &Coordination) {
    let input = root.join("input");
    generate(&input, "access", 100_000, 2, 300);
    let expected = reference("log-analysis", &input, root, coord);
    for shards in [1, 3] {
        let output = root.join(format!("rescaled-{shards}"));
        let mut spec = coord.spec("log-analysis", &input, &output, &format!("rescale-{shards}"));
        // Slow enough (5 s of input) that three checkpoints complete before the end even
        // when a loaded machine makes each take long; the kill comes at the third.
        spec.rate = 10_000;
        spec.worker_id = Some("rescaled");
        let log = root.join(format!("rescale-{shards}.log"));
        let status = spec.spawn(Some("after-record@3"), &log).wait().unwrap();
        assert!(job_harness::killed(status), "{}", read(&log));
        spec.shards = shards;
        spec.rate = 0;
        spec.run_to_end(&log);
        let text = read(&log);
        assert!(text.contains("resumed from checkpoint"), "{text}");
        assert_same_output(&expected, &committed(&output), &format!("2 → {shards} shards"));
    }
}

fn a_corrupt_state_file_falls_back_to_the_previous_checkpoint(root: &Path, coord: &Coordination) {
    let input = root.join("input");
    generate(&input, "keyed", KEYED_RECORDS / 2, 2, 500);
    let expected = reference("windowed-count", &input, root, coord);

    let output = root.join("corrupt");
    let mut spec = coord.spec("windowed-count", &input, &output, "corrupt");
    spec.rate = 50_000;
    spec.worker_id = Some("corrupted");
    let log = root.join("corrupt.log");
    let status = spec.spawn(Some("after-prune@3"), &log).wait().unwrap();
    assert!(job_harness::killed(status), "{}", read(&log));
    // Damage one state file of the newest checkpoint: its CRC no longer matches.
    let coordinator =
        ZkCoordinator::connect(&coord.hosts, &coord.cluster("corrupt"), Duration::from_secs(4))
            .unwrap();
    let latest = coordinator.latest_checkpoint("windowed-count").unwrap().unwrap();
    let file = latest.state_files.iter().find(|file| file.bytes > 0).expect("a state file");
    let path = output.join("state").join("windowed-count").join(&file.path);
    let path = if path.exists() { path } else { output.join("state").join(&file.path) };
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    drop(coordinator);

    spec.rate = 0;
    spec.run_to_end(&log);
    let text = read(&log);
    assert!(text.contains("could not be restored"), "no restore error reported: {text}");
    let name = Path::new(&file.path).file_name().unwrap().to_string_lossy().into_owned();
    assert!(text.contains(&name), "the error does not name {name}: {text}");
    assert!(text.contains("resumed from checkpoint"), "{text}");
    assert_same_output(&expected, &committed(&output), "after a corrupt state file");
}

/// `zabflow worker`s of one cluster: the leader runs submitted jobs (a failing one is
/// reported failed and the worker goes on); killed mid-job, the standby resumes the job from
/// its last checkpoint, and the output is exactly once.
fn workers_run_submitted_jobs_and_a_standby_resumes_them(root: &Path, coord: &Coordination) {
    let input = root.join("input");
    generate(&input, "keyed", KEYED_RECORDS / 2, 2, 500);
    let expected = reference("windowed-count", &input, root, coord);
    let cluster = coord.cluster("workers");
    let coordination = ["--coord", &coord.hosts, "--cluster", &cluster];
    let start_worker = |name: &str| {
        let log = root.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = job_harness::zabflow()
            .arg("worker")
            .args(coordination)
            .args(["--session-timeout", coord.session_timeout])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        (child, log)
    };
    let submit = |name: &str, output: &Path, extra: &[&str]| {
        job_harness::zabflow()
            .args(["job", "submit", "--job", "windowed-count", "--name", name, "--input"])
            .arg(&input)
            .arg("--output")
            .arg(output)
            .args(coordination)
            .args(["--shards", "2", "--checkpoint-interval", "20ms", "--keep", "2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let (mut first, first_log) = start_worker("first");
    assert!(wait_for_lines(&first_log, "leads cluster", 1, Duration::from_secs(20)));
    let (mut second, second_log) = start_worker("second");
    assert!(
        wait_for_lines(&second_log, "is a standby", 1, Duration::from_secs(20)),
        "{}",
        read(&second_log)
    );

    // A job whose output directory holds another job's output fails; the worker goes on.
    let taken = root.join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("JOB"), "zabflow-job-output 1\njob=log-analysis\nformat=jsonl\n")
        .unwrap();
    let failed = submit("broken", &taken, &["--wait", "60s"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "a failed job's submit --wait succeeded: {stderr}");
    assert!(stderr.contains("broken failed on") && stderr.contains("another job"), "{stderr}");

    let output = root.join("survivor");
    let submitted = submit("survivor", &output, &["--rate", "50000"]);
    assert!(submitted.status.success(), "{}", String::from_utf8_lossy(&submitted.stderr));
    assert!(
        wait_for_lines(&first_log, "recorded", 2, Duration::from_secs(30)),
        "the leading worker completed no checkpoint: {}",
        read(&first_log)
    );
    sigkill(&mut first);
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let status = job_harness::zabflow_ok(
            &[&["job", "status", "--job", "survivor"][..], &coordination[..]].concat(),
        );
        if status.contains(", finished on") || Instant::now() >= deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = read(&second_log);
    sigkill(&mut second);
    assert!(status.contains("finished on"), "the job did not finish: {status}\n{text}");
    assert!(
        text.contains("resuming survivor") && text.contains("resumed from checkpoint"),
        "{text}"
    );
    assert_same_output(&expected, &committed(&output), "after the leading worker died");
}

macro_rules! against_both {
    ($($scenario:ident => $zabflow:ident, $zookeeper:ident;)*) => {$(
        #[test]
        fn $zabflow() {
            let root = tempfile::tempdir().unwrap();
            $scenario(root.path(), &Coordination::zabflow(root.path(), stringify!($zabflow)));
        }

        #[test]
        fn $zookeeper() {
            let root = tempfile::tempdir().unwrap();
            $scenario(root.path(), &Coordination::zookeeper(stringify!($zookeeper)));
        }
    )*};
}

against_both! {
    a_standby_takes_over_from_a_killed_active_process => failover_on_zabflow, failover_on_zookeeper;
    a_checkpoint_of_two_shards_restores_on_one_and_on_three => rescale_on_zabflow, rescale_on_zookeeper;
    a_corrupt_state_file_falls_back_to_the_previous_checkpoint => corrupt_state_on_zabflow, corrupt_state_on_zookeeper;
    workers_run_submitted_jobs_and_a_standby_resumes_them => workers_on_zabflow, workers_on_zookeeper;
}
