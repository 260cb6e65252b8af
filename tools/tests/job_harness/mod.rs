//! Shared helpers of the exactly-once tests: generate an input log, run `zabflow job run`
//! as a child process (with a fault plan, or killed from outside), and read a job's
//! committed output through `zabflow log dump --committed`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::ExitStatusExt as _;

/// The `zabflow` binary under test.
pub fn zabflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zabflow"))
}

/// Runs `zabflow args…` to the end; panics with its output unless it succeeds.
pub fn zabflow_ok(args: &[&str]) -> String {
    let output = zabflow().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "zabflow {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Writes an input log of `kind` (keyed|access) to `dir`.
pub fn generate(dir: &Path, kind: &str, records: u64, partitions: u32, keys: u64) {
    let (records, partitions, keys) =
        (records.to_string(), partitions.to_string(), keys.to_string());
    let out = dir.to_str().unwrap();
    zabflow_ok(&[
        "log",
        "gen",
        "--out",
        out,
        "--kind",
        kind,
        "--records",
        &records,
        "--partitions",
        &partitions,
        "--keys",
        &keys,
    ]);
}

/// The committed output of a job, one line per record, sorted (shards write their own
/// partitions, so only the multiset of records is defined).
pub fn committed(output: &Path) -> Vec<String> {
    let text = zabflow_ok(&["log", "dump", "--committed", output.to_str().unwrap()]);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Asserts two committed outputs are equal, naming the first difference.
pub fn assert_same_output(reference: &[String], actual: &[String], what: &str) {
    if reference == actual {
        return;
    }
    let first = reference.iter().zip(actual).position(|(a, b)| a != b);
    panic!(
        "{what}: committed output differs from the uninterrupted run's: {} vs {} records; \
         first difference at {first:?}: {:?} vs {:?}",
        reference.len(),
        actual.len(),
        first.and_then(|i| reference.get(i)),
        first.and_then(|i| actual.get(i)),
    );
}

/// One `zabflow job run` invocation.
#[derive(Clone)]
pub struct JobSpec {
    pub job: &'static str,
    pub input: PathBuf,
    pub output: PathBuf,
    pub coord: String,
    pub cluster: String,
    pub shards: usize,
    pub interval: &'static str,
    pub session_timeout: &'static str,
    pub window: &'static str,
    pub state_dir: Option<PathBuf>,
    /// Records per second per shard (`--rate`): long enough a job to kill many times.
    pub rate: u64,
    /// `--worker-id`: a restart with the same id ends the killed process's session at once
    /// instead of waiting for it to expire.
    pub worker_id: Option<&'static str>,
}

impl JobSpec {
    pub fn new(job: &'static str, input: &Path, output: &Path, coord: &str, cluster: &str) -> Self {
        JobSpec {
            job,
            input: input.to_owned(),
            output: output.to_owned(),
            coord: coord.to_owned(),
            cluster: cluster.to_owned(),
            shards: 2,
            interval: "20ms",
            session_timeout: "800ms",
            window: "1s",
            state_dir: None,
            rate: 0,
            worker_id: None,
        }
    }

    fn command(&self, fault: Option<&str>) -> Command {
        let mut command = zabflow();
        command
            .args(["job", "run", "--job", self.job, "--input"])
            .arg(&self.input)
            .arg("--output")
            .arg(&self.output)
            .args(["--coord", &self.coord, "--cluster", &self.cluster])
            .args(["--shards", &self.shards.to_string()])
            .args(["--checkpoint-interval", self.interval, "--keep", "2"])
            .args(["--session-timeout", self.session_timeout, "--window", self.window])
            .args(["--rate", &self.rate.to_string()]);
        if let Some(dir) = &self.state_dir {
            command.arg("--state-dir").arg(dir);
        }
        if let Some(id) = self.worker_id {
            command.args(["--worker-id", id]);
        }
        match fault {
            Some(plan) => command.env("ZABFLOW_JOB_FAULT", plan),
            None => command.env_remove("ZABFLOW_JOB_FAULT"),
        };
        command
    }

    /// Starts the job in the background, stderr appended to `log`.
    pub fn spawn(&self, fault: Option<&str>, log: &Path) -> Child {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        self.command(fault).stdin(Stdio::null()).stdout(Stdio::null()).stderr(file).spawn().unwrap()
    }

    /// Runs the job to its end; panics with `log` unless it succeeds.
    pub fn run_to_end(&self, log: &Path) {
        let status = self.spawn(None, log).wait().unwrap();
        assert!(status.success(), "job failed ({status}): {}", read(log));
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Whether `status` is death by SIGKILL.
pub fn killed(status: ExitStatus) -> bool {
    status.signal() == Some(libc::SIGKILL)
}

/// Waits for `child` at most `timeout`; `None` if it still runs.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs `child` and reaps it.
pub fn sigkill(child: &mut Child) -> ExitStatus {
    // SAFETY: signals our own child process by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap()
}

/// Waits until `log` contains `text` at least `count` times; false after `timeout`.
pub fn wait_for_lines(log: &Path, text: &str, count: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if read(log).matches(text).count() >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A small deterministic generator for kill timings (SplitMix64), so a failing run can be
/// replayed from the seed it prints.
pub struct Seeded(pub u64);

impl Seeded {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The fault plans a crash loop cycles through: every named point of the checkpoint
/// protocol, and a kill from outside at a random moment (`None`).
pub const PLANS: [Option<&str>; 7] = [
    Some("sink-prepared@3"),
    Some("after-record@1"),
    None,
    Some("epoch-drawn@2+2"),
    Some("before-record@2"),
    Some("after-prune@2"),
    None,
];

/// What a crash loop did.
#[derive(Debug, Default)]
pub struct CrashLoop {
    pub kills: usize,
    pub runs: usize,
}

/// Runs `spec` again and again, each run killed (by its fault plan, or by the test after a
/// random delay of up to `random_kill_max`) until `kills` kills happened, then once more to
/// its end. Every run's stderr goes to `log`.
pub fn crash_loop(
    spec: &JobSpec,
    kills: usize,
    random_kill_max: Duration,
    seed: u64,
    log: &Path,
    mut between: impl FnMut(usize),
) -> CrashLoop {
    let mut random = Seeded(seed);
    let mut result = CrashLoop::default();
    while result.kills < kills {
        let plan = PLANS[result.runs % PLANS.len()];
        result.runs += 1;
        std::fs::write(
            log,
            format!("{}--- run {} plan {plan:?} (seed {seed})\n", read(log), result.runs),
        )
        .unwrap();
        let mut child = spec.spawn(plan, log);
        let status = match plan {
            Some(_) => wait_timeout(&mut child, Duration::from_secs(60))
                .unwrap_or_else(|| panic!("job did not stop (seed {seed}): {}", read(log))),
            None => {
                // Kill once it leads (so the kill lands in the job, not the election wait).
                let bound = random_kill_max.as_millis() as u64;
                let delay = Duration::from_millis(random.below(bound) + 1);
                wait_for_lines(log, "leads cluster", result.runs, Duration::from_secs(30));
                match wait_timeout(&mut child, delay) {
                    Some(status) => status,
                    None => sigkill(&mut child),
                }
            }
        };
        if killed(status) {
            result.kills += 1;
            between(result.kills);
        } else {
            assert!(
                status.success(),
                "run {} failed ({status}; seed {seed}): {}",
                result.runs,
                read(log)
            );
            // The job reached its end before the planned kill: nothing left to crash.
            return result;
        }
    }
    std::fs::write(log, format!("{}--- final run\n", read(log))).unwrap();
    spec.run_to_end(log);
    result.runs += 1;
    result
}
