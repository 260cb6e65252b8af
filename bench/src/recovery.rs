//! `zabflow bench recovery`: the time from SIGKILL of a running checkpointed job to the
//! first output of its restarted process, for keyed state of 10k, 1M and 10M keys.
//!
//! For each key count the scenario starts a standalone `zabflow node` (a short `tickTime`,
//! so that sessions may be short), writes an input log, and runs `zabflow job run --job
//! running-count` (this executable) as a child process:
//!
//! ```text
//! DIR/input/partition-<p>    warm-up: key k once, in partition k mod P, all at time T0;
//!                            tail: random keys, each partition TAIL_RATE/P records per s
//! DIR/output/                the job's output (partition-<s>, commit files) and state/
//! DIR/node/                  the node's zoo.cfg, data and node.log
//! DIR/job-<n>.log            the stderr of the n-th job process
//! ```
//!
//! The running count replays its input at event-time pace (see the
//! job's module doc in zabflow-tools): the warm-up goes at full speed and puts
//! every key into the state; the tail keeps the job up at a low rate. Once a checkpoint
//! that covers the warm-up is recorded, each repetition waits half a checkpoint interval,
//! sends SIGKILL, starts a new process (same worker id, so it ends the killed process's
//! coordination session at once instead of waiting for it to expire) and waits for its first output
//! record; then it waits for that process's first checkpoint, so the next kill restores
//! the same state again. Kill to first output is the recovery time; the job's timeline
//! lines (wall-clock µs, comparable with the kill's) take it apart:
//!
//! ```text
//! kill → spawned       the killed process reaped, the new one forked
//! spawned → leader     process start, connect, ending the killed process's session
//!                      (saved credentials), register, campaign
//! leader → read        listing and reading the newest checkpoint record
//! read → restoring     loading and crc-checking the state files
//! restore              truncating output, seeking input, restoring keyed state (bytes)
//! restored → output    shard threads start; the first record is processed and emitted
//! ```
//!
//! Checkpoints taken by the running processes are reported too: duration (epoch drawn to
//! recorded), state bytes, the shard-side snapshot copy, and an upper bound of alignment
//! (the first barrier injection to the last shard's snapshot start).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::json;
use zabflow_core::log::{Durability, Log, LogOptions};
use zabflow_core::records::KeyedEvent;
use zabflow_net::client::four_letter_word;

use crate::error::{BenchError, Result};
use crate::report::{latency_histogram, Report, Series, Target, Unit};

/// The prefix of the running-count job's timeline lines (its module doc in zabflow-tools
/// has their grammar).
pub const LINE_PREFIX: &str = "running-count: ";

/// Event time of the warm-up records (2024-01-01T00:00:00Z, ms); the tail follows it.
const WARMUP_TIME_MS: u64 = 1_704_067_200_000;
/// Records appended per `Log::append` while writing the input.
const INPUT_BATCH_RECORDS: usize = 8192;
/// How long the node may take to serve.
const NODE_START_WAIT: Duration = Duration::from_secs(20);
/// How long a job may take beyond its warm-up estimate to record a full checkpoint.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(180);
/// How long a restarted process may take to produce its first output.
const FIRST_OUTPUT_WAIT: Duration = Duration::from_secs(120);
/// How long to wait for the other shards' `state-restored` lines after the first output.
const SHARD_LINES_WAIT: Duration = Duration::from_secs(5);

/// What one `bench recovery` run measures.
#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    /// The `zabflow` executable (started as `node` and as `job run`).
    pub exe: PathBuf,
    /// Key counts, one series each.
    pub keys: Vec<u64>,
    /// Kills per key count.
    pub repetitions: usize,
    /// Shards of the job (and input partitions).
    pub shards: usize,
    pub checkpoint_interval: Duration,
    /// Session timeout the job processes ask for: how long a killed one's leadership lingers.
    pub session_timeout: Duration,
    /// The node's tickTime (sessions expire within one tick after their timeout).
    pub tick_time_ms: u32,
    /// Tail records per second over all partitions.
    pub tail_rate_per_s: u64,
    /// Parent of the run's directory.
    pub dir: PathBuf,
}

impl RecoveryConfig {
    /// The issue's key counts (10k, 1M, 10M), 5 kills each, on every core.
    pub fn new(exe: PathBuf, quick: bool) -> RecoveryConfig {
        RecoveryConfig {
            exe,
            keys: if quick { vec![10_000] } else { vec![10_000, 1_000_000, 10_000_000] },
            repetitions: if quick { 1 } else { 5 },
            shards: std::thread::available_parallelism().map_or(1, |cores| cores.get().min(4)),
            checkpoint_interval: Duration::from_secs(1),
            session_timeout: Duration::from_millis(1000),
            tick_time_ms: 100,
            tail_rate_per_s: 2000,
            dir: std::env::temp_dir(),
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |message: String| Err(fail(message));
        if self.keys.is_empty() || self.keys.contains(&0) {
            return bad(format!("--keys {:?}: at least one key count, each above 0", self.keys));
        }
        if self.repetitions == 0 || self.shards == 0 || self.tail_rate_per_s == 0 {
            return bad("--repetitions, --shards and --tail-rate must be above 0".into());
        }
        if self.tick_time_ms == 0
            || self.session_timeout.as_millis() < 2 * self.tick_time_ms as u128
        {
            return bad(format!(
                "--session-timeout {:?} must be at least two ticks of {} ms",
                self.session_timeout, self.tick_time_ms
            ));
        }
        Ok(())
    }

    /// Seconds of tail the input needs: the warm-up, every kill and restart, and a margin.
    fn tail_span_s(&self, keys: u64) -> u64 {
        let warmup_s = keys / 500_000 + 1;
        let per_kill_s = 3 * self.checkpoint_interval.as_secs() + keys / 1_000_000 + 8;
        60 + 2 * warmup_s + per_kill_s * self.repetitions as u64
    }
}

fn fail(message: impl Into<String>) -> BenchError {
    BenchError::Param(message.into())
}

fn target_error(message: impl Into<String>) -> BenchError {
    BenchError::Target(format!("recovery: {}", message.into()))
}

/// Microseconds since the Unix epoch, by the wall clock (the job's lines use the same).
fn wall_us() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |elapsed| elapsed.as_micros() as u64)
}

/// Runs the scenario: one series per key count.
///
/// # Errors
/// Bad parameters; a node or job process that fails to start, exits, or misses a deadline
/// (naming its log).
pub fn run(config: &RecoveryConfig) -> Result<Report> {
    config.check()?;
    let params = json!({
        "keys": config.keys, "repetitions": config.repetitions, "shards": config.shards,
        "checkpoint_interval_ms": config.checkpoint_interval.as_millis() as u64,
        "session_timeout_ms": config.session_timeout.as_millis() as u64,
        "tick_time_ms": config.tick_time_ms, "tail_rate_per_s": config.tail_rate_per_s,
        "job": "running-count",
    });
    let mut report = Report::new("recovery", params);
    let run_dir = tempfile::Builder::new()
        .prefix("zabflow-bench-recovery-")
        .tempdir_in(&config.dir)
        .map_err(|error| {
            fail(format!("create a directory in {}: {error}", config.dir.display()))
        })?;
    let node = Node::start(config, &run_dir.path().join("node"))?;
    for &keys in &config.keys {
        let dir = run_dir.path().join(format!("keys-{keys}"));
        eprintln!("bench recovery: {keys} keys: writing the input");
        write_input(&dir.join("input"), keys, config)?;
        let runs = measure(config, &node.address.to_string(), keys, &dir)?;
        report.push_series(series(config, keys, &runs));
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(report)
}

// ---- input -------------------------------------------------------------------------------

/// SplitMix64, as `log gen` uses: fixed forever, so the input is the same on every run.
fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes the input log (module doc) with a manifest `zabflow job run` accepts.
fn write_input(dir: &Path, keys: u64, config: &RecoveryConfig) -> Result<()> {
    let partitions = config.shards as u64;
    let rate_per_partition = (config.tail_rate_per_s / partitions).max(1);
    let tail = rate_per_partition * config.tail_span_s(keys);
    let mut manifest = String::new();
    let mut total = 0;
    for partition in 0..partitions {
        let warmup = (partition..keys).step_by(partitions as usize);
        let mut random = 0x5eed ^ partition;
        let tail_records = (0..tail).map(|index| KeyedEvent {
            event_time_ms: WARMUP_TIME_MS + 1 + index * 1000 / rate_per_partition,
            key: split_mix(&mut random) % keys,
            value: index,
        });
        let records = warmup
            .map(|key| KeyedEvent { event_time_ms: WARMUP_TIME_MS, key, value: 0 })
            .chain(tail_records);
        let written = write_partition(&dir.join(format!("partition-{partition}")), records)?;
        let _ = writeln!(manifest, "partition-{partition}={written}");
        total += written;
    }
    let text = format!(
        "zabflow-input-log 1\nkind=keyed\nrecords={total}\npartitions={partitions}\nseed=0\n\
         keys={keys}\n{manifest}"
    );
    let path = dir.join("MANIFEST");
    std::fs::write(&path, text).map_err(|error| fail(format!("{}: {error}", path.display())))
}

fn write_partition(dir: &Path, records: impl Iterator<Item = KeyedEvent>) -> Result<u64> {
    let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
    let mut log = Log::open(dir, options)?;
    let mut payloads: Vec<Vec<u8>> = Vec::with_capacity(INPUT_BATCH_RECORDS);
    let mut written = 0;
    for event in records {
        let mut payload = Vec::with_capacity(24);
        event.encode(&mut payload);
        payloads.push(payload);
        if payloads.len() == INPUT_BATCH_RECORDS {
            written += append(&mut log, &mut payloads)?;
        }
    }
    written += append(&mut log, &mut payloads)?;
    log.sync()?;
    Ok(written)
}

fn append(log: &mut Log, payloads: &mut Vec<Vec<u8>>) -> Result<u64> {
    let batch: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    log.append(&batch)?;
    let count = payloads.len() as u64;
    payloads.clear();
    Ok(count)
}

// ---- processes ---------------------------------------------------------------------------

/// Spawns `command` so that it dies with this process (`PR_SET_PDEATHSIG`, tied to the
/// calling thread: call it from the thread that runs the whole scenario).
fn spawn_tied(mut command: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn()
}

/// Sends SIGKILL to `child` (ours, not yet reaped) and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A standalone `zabflow node`; dropping it kills it.
struct Node {
    child: Child,
    address: SocketAddr,
}

impl Node {
    fn start(config: &RecoveryConfig, dir: &Path) -> Result<Node> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| fail(format!("{}: {e}", data.display())))?;
        let port = zabflow_tests::ports::free_loopback_ports(1)
            .map_err(|error| target_error(format!("no free port: {error}")))?[0];
        let tick = config.tick_time_ms;
        let zoo_cfg = format!(
            "tickTime={tick}\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\nforceSync=yes\nminSessionTimeout={}\nmaxSessionTimeout=60000\n",
            data.display(),
            2 * tick
        );
        let config_path = dir.join("zoo.cfg");
        std::fs::write(&config_path, zoo_cfg)
            .map_err(|e| fail(format!("{}: {e}", config_path.display())))?;
        let log_path = dir.join("node.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| fail(format!("{}: {e}", log_path.display())))?;
        let mut command = Command::new(&config.exe);
        command.args(["node", "--config"]).arg(&config_path);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let child = spawn_tied(command)
            .map_err(|error| target_error(format!("start {}: {error}", config.exe.display())))?;
        let mut node = Node { child, address: SocketAddr::from(([127, 0, 0, 1], port)) };
        let deadline = Instant::now() + NODE_START_WAIT;
        while Instant::now() < deadline {
            if four_letter_word(node.address, "srvr").unwrap_or_default().contains("Mode: ") {
                return Ok(node);
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(target_error(format!("zabflow node exited with {status}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(&mut node.child);
        Err(target_error(format!("zabflow node did not serve within {NODE_START_WAIT:?}")))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One timeline line: when the bench read it (wall µs), and its text.
#[derive(Debug, Clone)]
struct Line {
    read_us: u64,
    text: String,
}

impl Line {
    /// The event of a `running-count:` line.
    fn event(&self) -> Option<&str> {
        self.text.strip_prefix(LINE_PREFIX)?.split(' ').next()
    }

    /// A `name=value` field of the line, as a number.
    fn field(&self, name: &str) -> Option<u64> {
        let prefix = format!("{name}=");
        self.text.split(' ').find_map(|word| word.strip_prefix(&prefix)?.parse().ok())
    }

    fn at_us(&self) -> u64 {
        self.field("at_us").unwrap_or(self.read_us)
    }
}

/// A `zabflow job run` process, its stderr read line by line on a thread (and copied into
/// its log file).
struct JobProcess {
    child: Child,
    lines: Receiver<Line>,
    seen: Vec<Line>,
    log_path: PathBuf,
    spawned_us: u64,
}

impl JobProcess {
    fn spawn(
        config: &RecoveryConfig,
        coord: &str,
        cluster: &str,
        dir: &Path,
        number: usize,
    ) -> Result<JobProcess> {
        let mut command = Command::new(&config.exe);
        command.args(["job", "run", "--job", "running-count", "--input"]);
        command.arg(dir.join("input")).arg("--output").arg(dir.join("output"));
        command.args(["--coord", coord, "--cluster", cluster, "--keep", "2"]);
        command.arg(format!("--shards={}", config.shards));
        command.arg("--worker-id=recovery");
        let interval = humantime::format_duration(config.checkpoint_interval).to_string();
        let session = humantime::format_duration(config.session_timeout).to_string();
        command.args(["--checkpoint-interval", &interval, "--session-timeout", &session]);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let log_path = dir.join(format!("job-{number}.log"));
        let mut log = std::fs::File::create(&log_path)
            .map_err(|e| fail(format!("{}: {e}", log_path.display())))?;
        let spawned_us = wall_us();
        let mut child = spawn_tied(command)
            .map_err(|error| target_error(format!("start {}: {error}", config.exe.display())))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stderr).lines().map_while(std::result::Result::ok) {
                let _ = writeln!(log, "{text}");
                if sender.send(Line { read_us: wall_us(), text }).is_err() {
                    break;
                }
            }
        });
        Ok(JobProcess { child, lines, seen: Vec::new(), log_path, spawned_us })
    }

    /// Waits for the first line (from now on) that `wanted` accepts; every line read is kept.
    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&Line) -> bool,
    ) -> Result<Line> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(self.failure(what, "timed out")),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(self.failure(what, &format!("the job exited ({status})")));
                }
            }
        }
    }

    fn failure(&self, what: &str, why: &str) -> BenchError {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        target_error(format!(
            "waiting for {what}: {why}; {} ends:\n{}",
            self.log_path.display(),
            tail.join("\n")
        ))
    }

    /// The kept lines of `event`.
    fn events<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.seen.iter().filter(move |line| line.event() == Some(event))
    }
}

impl Drop for JobProcess {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

// ---- one key count -----------------------------------------------------------------------

/// What one kill and restart took, in µs from the kill (and the restore's sizes).
#[derive(Debug, Clone, Default)]
struct Recovery {
    spawned_us: u64,
    leader_us: u64,
    read_us: u64,
    restoring_us: u64,
    restored_us: u64,
    first_output_us: u64,
    state_restore_us: u64,
    sink_restore_us: u64,
    source_seek_us: u64,
    restored_bytes: u64,
    restored_keys: u64,
}

/// One recorded checkpoint of a running process.
#[derive(Debug, Clone, Default)]
struct CheckpointTiming {
    duration_us: u64,
    state_bytes: u64,
    snapshot_us: u64,
    alignment_bound_us: u64,
}

#[derive(Debug, Default)]
struct Runs {
    recoveries: Vec<Recovery>,
    checkpoints: Vec<CheckpointTiming>,
}

/// Warms a job up, then kills and restarts it `repetitions` times.
fn measure(config: &RecoveryConfig, coord: &str, keys: u64, dir: &Path) -> Result<Runs> {
    let cluster = format!("recovery-{keys}-{}", std::process::id());
    let mut job = JobProcess::spawn(config, coord, &cluster, dir, 0)?;
    let covered =
        |line: &Line| line.event() == Some("recorded") && line.field("offsets") >= Some(keys);
    let warmup_wait = CHECKPOINT_WAIT + Duration::from_secs(keys / 200_000);
    job.wait_for("a checkpoint holding every key", warmup_wait, covered)?;
    eprintln!("bench recovery: {keys} keys: warmed up; killing and restarting");
    let mut runs = Runs::default();
    for number in 1..=config.repetitions {
        std::thread::sleep(config.checkpoint_interval / 2);
        let killed_us = wall_us();
        kill(&mut job.child);
        drain(&mut job);
        runs.checkpoints.extend(checkpoint_timings(&job, keys));
        job = JobProcess::spawn(config, coord, &cluster, dir, number)?;
        let recovery = recover(&mut job, killed_us, config.shards)?;
        eprintln!(
            "bench recovery: {keys} keys: kill {number}: first output after {:.1} ms",
            recovery.first_output_us as f64 / 1000.0
        );
        runs.recoveries.push(recovery);
        let recorded = |line: &Line| line.event() == Some("recorded");
        job.wait_for("the restarted job's first checkpoint", CHECKPOINT_WAIT, recorded)?;
    }
    kill(&mut job.child);
    drain(&mut job);
    runs.checkpoints.extend(checkpoint_timings(&job, keys));
    Ok(runs)
}

/// Keeps every line a dead process left in the pipe.
fn drain(job: &mut JobProcess) {
    while let Ok(line) = job.lines.recv_timeout(Duration::from_millis(200)) {
        job.seen.push(line);
    }
}

/// Waits for a restarted process's first output and takes its timeline apart.
fn recover(job: &mut JobProcess, killed_us: u64, shards: usize) -> Result<Recovery> {
    let first_output =
        job.wait_for("the first output after the restart", FIRST_OUTPUT_WAIT, |l| {
            l.event() == Some("first-output")
        })?;
    let restored = |job: &JobProcess| job.events("state-restored").count();
    let deadline = Instant::now() + SHARD_LINES_WAIT;
    while restored(job) < shards && Instant::now() < deadline {
        if let Ok(line) = job.lines.recv_timeout(Duration::from_millis(50)) {
            job.seen.push(line);
        }
    }
    let since = |at_us: u64| at_us.saturating_sub(killed_us);
    let first = |event: &str| job.events(event).map(Line::at_us).min();
    let sum = |event: &str, field: &str| job.events(event).filter_map(|l| l.field(field)).sum();
    let leads = job.seen.iter().find(|l| l.text.starts_with("job: ") && l.text.contains(" leads "));
    let restoring = job.events("sink-restore").map(|l| l.at_us() - l.field("dur_us").unwrap_or(0));
    let restored_at = job
        .events("state-restored")
        .filter_map(|l| Some(l.field("begin_us")? + l.field("dur_us")?));
    let first_pull = first("first-pull").unwrap_or(first_output.at_us());
    Ok(Recovery {
        spawned_us: since(job.spawned_us),
        leader_us: since(leads.map_or(first("leader").unwrap_or(0), |l| l.read_us)),
        read_us: since(first("checkpoint-read").unwrap_or(0)),
        restoring_us: since(restoring.min().unwrap_or(0)),
        restored_us: since(restored_at.max().unwrap_or(first_pull).min(first_pull)),
        first_output_us: since(first_output.at_us()),
        state_restore_us: sum("state-restored", "dur_us"),
        sink_restore_us: sum("sink-restore", "dur_us"),
        source_seek_us: sum("source-seek", "dur_us"),
        restored_bytes: sum("state-restored", "bytes"),
        restored_keys: sum("state-restored", "keys"),
    })
}

/// The checkpoints a process recorded that held every key: how long each took.
fn checkpoint_timings(job: &JobProcess, keys: u64) -> Vec<CheckpointTiming> {
    let drawn: BTreeMap<u64, u64> =
        job.events("epoch-drawn").filter_map(|l| Some((l.field("epoch")?, l.at_us()))).collect();
    let mut timings = Vec::new();
    for recorded in job.events("recorded") {
        let (Some(epoch), Some(offsets)) = (recorded.field("epoch"), recorded.field("offsets"))
        else {
            continue;
        };
        let Some(&drawn_us) = drawn.get(&epoch) else { continue };
        if offsets < keys {
            continue; // taken during the warm-up: not all the state yet
        }
        let within = |line: &&Line| (drawn_us..=recorded.at_us()).contains(&line.at_us());
        let barrier = job.events("barrier").filter(within).map(Line::at_us).min();
        let snapshots: Vec<&Line> = job.events("snapshot").filter(within).collect();
        let snapshot_us = snapshots.iter().filter_map(|l| l.field("dur_us")).max().unwrap_or(0);
        let last_start = snapshots.iter().map(|l| l.at_us() - l.field("dur_us").unwrap_or(0)).max();
        timings.push(CheckpointTiming {
            duration_us: recorded.at_us() - drawn_us,
            state_bytes: recorded.field("state_bytes").unwrap_or(0),
            snapshot_us,
            alignment_bound_us: match (barrier, last_start) {
                (Some(barrier), Some(start)) => start.saturating_sub(barrier),
                _ => 0,
            },
        });
    }
    timings
}

// ---- report ------------------------------------------------------------------------------

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn ms(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

/// The series of one key count: the recovery times as its latencies, and medians of the
/// timeline and the checkpoints as extras.
fn series(config: &RecoveryConfig, keys: u64, runs: &Runs) -> Series {
    let mut histogram = latency_histogram();
    for recovery in &runs.recoveries {
        let _ = histogram.record(recovery.first_output_us.max(1) * 1000);
    }
    let of = |field: fn(&Recovery) -> u64| median(runs.recoveries.iter().map(field).collect());
    let of_checkpoints =
        |field: fn(&CheckpointTiming) -> u64| median(runs.checkpoints.iter().map(field).collect());
    let recovery_us = of(|r| r.first_output_us);
    let keys_per_s = keys as f64 / (recovery_us.max(1) as f64 / 1e6);
    let name = format!("running-count/keys={keys}/shards={}", config.shards);
    Series::new(name, Target::Zabflow, Unit::Records, keys_per_s)
        .with_params(json!({ "keys": keys, "shards": config.shards }))
        .with_histogram(&histogram)
        .with_extra("recovery_ms_median", ms(recovery_us))
        .with_extra("recoveries", runs.recoveries.len())
        .with_extra("spawned_ms_median", ms(of(|r| r.spawned_us)))
        .with_extra("leader_ms_median", ms(of(|r| r.leader_us)))
        .with_extra("checkpoint_read_ms_median", ms(of(|r| r.read_us)))
        .with_extra("restore_begin_ms_median", ms(of(|r| r.restoring_us)))
        .with_extra("restored_ms_median", ms(of(|r| r.restored_us)))
        .with_extra("state_restore_ms_median", ms(of(|r| r.state_restore_us)))
        .with_extra("sink_restore_ms_median", ms(of(|r| r.sink_restore_us)))
        .with_extra("source_seek_ms_median", ms(of(|r| r.source_seek_us)))
        .with_extra("restored_bytes", of(|r| r.restored_bytes))
        .with_extra("restored_keys", of(|r| r.restored_keys))
        .with_extra("checkpoints", runs.checkpoints.len())
        .with_extra("checkpoint_bytes", of_checkpoints(|c| c.state_bytes))
        .with_extra("checkpoint_ms_median", ms(of_checkpoints(|c| c.duration_us)))
        .with_extra("snapshot_ms_median", ms(of_checkpoints(|c| c.snapshot_us)))
        .with_extra("alignment_bound_ms_median", ms(of_checkpoints(|c| c.alignment_bound_us)))
}

/// The report as a table: one row per key count, times in ms from the kill (medians).
pub fn table(report: &Report) -> String {
    let mut out = String::from(
        "recovery: kill -> first output of the restarted job (medians, ms from the kill)\n",
    );
    let _ = writeln!(
        out,
        "{:<34} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "series",
        "recovery",
        "spawned",
        "leader",
        "read",
        "restoring",
        "restored",
        "state",
        "ckpt MB",
        "ckpt ms",
        "snapshot",
        "align<="
    );
    for series in &report.series {
        let number = |key: &str| series.extra.get(key).and_then(|v| v.as_f64()).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "{:<34} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1} {:>8.1} {:>8.1} {:>10.1} \
             {:>9.1} {:>9.1}",
            series.name,
            number("recovery_ms_median"),
            number("spawned_ms_median"),
            number("leader_ms_median"),
            number("checkpoint_read_ms_median"),
            number("restore_begin_ms_median"),
            number("restored_ms_median"),
            number("state_restore_ms_median"),
            number("checkpoint_bytes") / 1e6,
            number("checkpoint_ms_median"),
            number("snapshot_ms_median"),
            number("alignment_bound_ms_median"),
        );
    }
    out.push_str(
        "spawned/leader/read/restoring/restored: when each step ended, from the kill; state: \
         keyed-state restore time summed over shards; align<=: first barrier to last snapshot \
         start (an upper bound of alignment)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_yield_their_event_and_fields() {
        let line = Line {
            read_us: 5,
            text: "running-count: recorded at_us=17 epoch=3 state_bytes=40 offsets=9".into(),
        };
        assert_eq!(line.event(), Some("recorded"));
        assert_eq!(line.at_us(), 17);
        assert_eq!(line.field("offsets"), Some(9));
        assert_eq!(line.field("missing"), None);
        let other = Line { read_us: 5, text: "job: worker-1 leads cluster c".into() };
        assert_eq!(other.event(), None);
        assert_eq!(other.at_us(), 5);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut config = RecoveryConfig::new(PathBuf::from("zabflow"), true);
        assert!(config.check().is_ok());
        config.keys = vec![0];
        assert!(config.check().unwrap_err().to_string().contains("--keys"));
        config.keys = vec![10];
        config.session_timeout = Duration::from_millis(150);
        assert!(config.check().unwrap_err().to_string().contains("two ticks"));
    }
}
