//! `zabflow job run|status`: run one of the shipped jobs under the coordination service,
//! and read a job's checkpoints back from it.
//!
//! **run.** Connects to the coordination service (retrying with exponential backoff,
//! [`CONNECT_BACKOFF_MIN`] doubling to [`CONNECT_BACKOFF_MAX`], for at most
//! `--connect-timeout`; then it gives up with exit status [`EXIT_COORDINATION_UNAVAILABLE`]),
//! registers as a worker and enters the cluster's leader election. A process that does not
//! lead is a standby: it says so and waits, and takes over when the leader's session ends
//! (a killed leader's session expires after `--session-timeout`). The leader opens the
//! input (only then: the input's logs are locked by their reader), runs the job to the end
//! of the input, and exits 0.
//!
//! ```text
//! OUTPUT/JOB              "zabflow-job-output 1", job=<kind>, format=log|jsonl
//! OUTPUT/partition-<i>/   windowed-count: a zabflow_core::log of CountResult records
//! OUTPUT/part-<i>.jsonl   log-analysis: JSON lines
//! ```
//!
//! Progress goes to stderr as lines starting `job:` (leadership, start, end), so a test or
//! an operator can follow it.
//!
//! **status.** Prints the leader's address, the registered workers and every completed
//! checkpoint of the job (epoch, time, source offsets, state files and bytes, sink
//! positions), read through the same `Coordinator` trait the engine uses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use zabflow_bench::live_view::{self, LiveView};
use zabflow_core::coordinator::{Coordinator, CoordinatorError, SessionState};
use zabflow_core::engine::{
    committed_file_bytes, committed_records, CheckpointSettings, CheckpointedOutput, FileSink,
    JobConfig, JobMetrics, LogSink, RowFormat,
};
use zabflow_net::client::{Client, ClientConfig, SessionCredentials};
use zabflow_net::coordinator::{end_session, ZkCoordinator};

use crate::error::ToolError;
use crate::jobs::fault::{self, FaultPlan, FaultSink, ObservedCoordinator};
use crate::jobs::input::{InputKind, InputLog};
use crate::jobs::{log_analysis, running_count, windowed_count, Checkpoints};

/// First wait between attempts to reach the coordination service.
pub const CONNECT_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest one attempt to reach the coordination service may take (the client tries every
/// server of the connect string meanwhile).
pub const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait between attempts to reach the coordination service.
pub const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Exit status of `job run` and `job status` when the coordination service stayed
/// unreachable for the whole `--connect-timeout`.
pub const EXIT_COORDINATION_UNAVAILABLE: u8 = 3;
/// How often a standby looks again whether it leads (and whether its session lives).
const LEADERSHIP_POLL: Duration = Duration::from_millis(500);
/// The first line of `OUTPUT/JOB`.
pub const OUTPUT_MARKER_FIRST_LINE: &str = "zabflow-job-output 1";

/// `zabflow job …`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run a job under the coordination service (a second process is a standby).
    Run(RunArgs),
    /// Print a job's leader, workers, submission state and completed checkpoints.
    Status(StatusArgs),
    /// Submit a job to the cluster's workers (`zabflow worker`); the leading one runs it.
    Submit(crate::worker::SubmitArgs),
}

/// The shipped jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobKind {
    /// Events per key in tumbling event-time windows, over a keyed input log.
    WindowedCount,
    /// Requests and errors per URL and status, top URLs, in 10 s windows, over access logs.
    LogAnalysis,
    /// Every key's count so far, emitted for each event, replayed at event-time pace (the
    /// job `bench recovery` kills and restarts).
    RunningCount,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::WindowedCount => "windowed-count",
            JobKind::LogAnalysis => "log-analysis",
            JobKind::RunningCount => "running-count",
        }
    }

    fn input_kind(self) -> InputKind {
        match self {
            JobKind::WindowedCount => InputKind::Keyed,
            JobKind::LogAnalysis => InputKind::Access,
            JobKind::RunningCount => InputKind::Keyed,
        }
    }

    fn output_format(self) -> &'static str {
        match self {
            JobKind::WindowedCount => "log",
            JobKind::LogAnalysis => "jsonl",
            JobKind::RunningCount => "key-count-log",
        }
    }
}

/// Where the coordination service is.
#[derive(Debug, Args)]
pub struct CoordArgs {
    /// The coordination servers, as a ZooKeeper connect string.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    pub coord: String,
    /// The cluster: the znodes live under /zabflow/<cluster>.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// The session timeout asked of the service: how long after a crash a standby takes over.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "4s")]
    pub session_timeout: Duration,
    /// How long to keep trying to reach the coordination service before giving up.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub connect_timeout: Duration,
}

/// What a job run does: the job, its input and output, and its checkpointing. The same
/// arguments on `job run` and `job submit`; a submitted job's spec znode holds them.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct JobSpec {
    /// The job to run.
    #[arg(long, value_enum)]
    pub job: JobKind,
    /// The job's name in the coordination service (its checkpoints and state files are kept
    /// under it; default: the job's kind).
    #[arg(long)]
    pub name: Option<String>,
    /// The input log (written by `zabflow log gen`).
    #[arg(long)]
    pub input: PathBuf,
    /// The output directory (created if missing).
    #[arg(long)]
    pub output: PathBuf,
    /// Shards (pinned threads).
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Time between checkpoints.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub checkpoint_interval: Duration,
    /// A checkpoint not complete after this long is aborted.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub checkpoint_timeout: Duration,
    /// Completed checkpoints kept (older ones and their state files are deleted).
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
    /// Where state files go (default: OUTPUT/state).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Window size of the windowed count.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub window: Duration,
    /// Replay the input at most this many records per second per shard (0: unpaced).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

impl JobSpec {
    /// The job's name in the coordination service.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.job.name())
    }

    fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| self.output.join("state"))
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub spec: JobSpec,
    #[command(flatten)]
    pub coord: CoordArgs,
    /// This process's worker id (default: job-<pid>). A worker id names one process at a
    /// time: a process started with the id of an earlier one ends that one's coordination
    /// session at once (credentials kept in the state directory) instead of waiting for it
    /// to expire, so a restart with the same id resumes without the session-timeout wait.
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Show the job's per-shard metrics live on stderr while it runs: a table redrawn every
    /// 500 ms on a terminal, one plain line a second otherwise; final totals at the end.
    #[arg(long)]
    pub live: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job's name (windowed-count or log-analysis).
    #[arg(long)]
    pub job: String,
    #[command(flatten)]
    pub coord: CoordArgs,
}

/// Runs a `job` command.
///
/// # Errors
/// [`ToolError::CoordinationUnavailable`] when the service stays unreachable;
/// [`ToolError::Job`] for bad arguments, a missing input and failures of the job.
pub fn run(command: JobCommand) -> Result<(), ToolError> {
    match command {
        JobCommand::Run(args) => run_job(&args),
        JobCommand::Status(args) => status(&args),
        JobCommand::Submit(args) => crate::worker::submit(&args),
    }
}

fn fail(message: impl Into<String>) -> ToolError {
    ToolError::Job(message.into())
}

/// Prints one progress line on stderr (above the live view's table, if one is drawn).
fn progress(message: &str) {
    live_view::print_line(&format!("job: {message}"));
}

/// Connects to the coordination service, retrying with backoff until `connect_timeout`.
///
/// # Errors
/// [`ToolError::CoordinationUnavailable`] naming the servers, the attempts and the last
/// error; [`ToolError::Job`] for a bad connect string or cluster name.
pub fn connect(args: &CoordArgs) -> Result<Arc<ZkCoordinator>, ToolError> {
    let mut config = ClientConfig::new(&args.coord)
        .map_err(|error| fail(format!("bad --coord {:?}: {error}", args.coord)))?
        .with_session_timeout(args.session_timeout);
    let deadline = Instant::now() + args.connect_timeout;
    let mut backoff = CONNECT_BACKOFF_MIN;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.clamp(CONNECT_BACKOFF_MIN, CONNECT_ATTEMPT_TIMEOUT);
        config.connect_timeout_ms = attempt.as_millis() as u64;
        let error = match Client::connect(config.clone()) {
            Ok(client) => {
                return ZkCoordinator::new(client, &args.cluster)
                    .map(Arc::new)
                    .map_err(|error| fail(format!("--cluster {:?}: {error}", args.cluster)));
            }
            Err(error) => error,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ToolError::CoordinationUnavailable(format!(
                "no server of {} accepted a session in {attempts} attempts over {:?}: {error}",
                args.coord, args.connect_timeout
            )));
        }
        let wait = backoff.min(left);
        progress(&format!(
            "coordination service {} unreachable (attempt {attempts}: {error}); retrying in {wait:?}",
            args.coord
        ));
        std::thread::sleep(wait);
        backoff = (backoff * 2).min(CONNECT_BACKOFF_MAX);
    }
}

pub fn coordinator_error(what: &str, error: CoordinatorError) -> ToolError {
    match error {
        CoordinatorError::Unavailable(_) => {
            ToolError::CoordinationUnavailable(format!("{what}: {error}"))
        }
        error => fail(format!("{what}: {error}")),
    }
}

/// Checks the arguments that need no coordination service, before connecting.
pub fn check_spec(spec: &JobSpec) -> Result<(), ToolError> {
    if spec.shards == 0 || spec.shards > zabflow_core::constants::SHARDS_MAX {
        return Err(fail(format!(
            "--shards {} out of 1..={}",
            spec.shards,
            zabflow_core::constants::SHARDS_MAX
        )));
    }
    if spec.checkpoint_interval.is_zero() || spec.checkpoint_timeout.is_zero() {
        return Err(fail("--checkpoint-interval and --checkpoint-timeout must be above 0"));
    }
    if spec.keep == 0 {
        return Err(fail("--keep must be at least 1 (the latest checkpoint is needed to resume)"));
    }
    if spec.window.as_millis() == 0 {
        return Err(fail("--window must be at least 1ms"));
    }
    zabflow_core::coordinator::validate_name("--name", spec.name())
        .map_err(|error| fail(error.to_string()))?;
    crate::jobs::input::check_manifest(&spec.input, spec.job.input_kind())?;
    Ok(())
}

fn run_job(args: &RunArgs) -> Result<(), ToolError> {
    check_spec(&args.spec)?;
    fault::arm(FaultPlan::from_env().map_err(fail)?);
    let coordinator = connect(&args.coord)?;
    let worker_id = args.worker_id.clone().unwrap_or_else(|| format!("job-{}", std::process::id()));
    if args.worker_id.is_some() {
        take_over_worker_id(&args.spec.state_dir(), &args.coord, &worker_id, &coordinator)?;
    }
    join_and_lead(&coordinator, &worker_id, &args.coord.cluster)?;
    progress(&format!(
        "{worker_id} leads cluster {}; running {}",
        args.coord.cluster,
        args.spec.name()
    ));
    let started = Instant::now();
    let summary = run_leading(&args.spec, &coordinator, &worker_id, &args.coord, args.live)?;
    progress(&format!("finished in {:.3} s: {summary}", started.elapsed().as_secs_f64()));
    let _ = coordinator.close();
    Ok(())
}

/// Registers `worker_id`, enters the cluster's leader election and waits until it leads.
pub fn join_and_lead(
    coordinator: &ZkCoordinator,
    worker_id: &str,
    cluster: &str,
) -> Result<(), ToolError> {
    coordinator
        .register_worker(worker_id, worker_id)
        .map_err(|error| coordinator_error("register worker", error))?;
    coordinator.campaign(worker_id).map_err(|error| coordinator_error("campaign", error))?;
    let mut said = false;
    loop {
        match coordinator.await_leadership(LEADERSHIP_POLL) {
            Ok(()) => return Ok(()),
            Err(CoordinatorError::Timeout(..)) => {}
            Err(error) => return Err(coordinator_error("leader election", error)),
        }
        if matches!(coordinator.session_state(), SessionState::Expired | SessionState::Closed) {
            return Err(fail("the coordination session ended while waiting for leadership"));
        }
        if !said {
            let leader = coordinator.leader_address().ok().flatten().unwrap_or_default();
            progress(&format!("{worker_id} is a standby in cluster {cluster}; {leader} leads"));
            said = true;
        }
    }
}

/// Runs `spec` to the end of its input as the cluster's leader, resuming from its latest
/// checkpoint; returns a one-line summary.
///
/// # Errors
/// A missing input, another job's output directory, failures of the job (among them a lost
/// leadership: a deposed leader cannot record checkpoints).
pub fn run_leading(
    spec: &JobSpec,
    coordinator: &Arc<ZkCoordinator>,
    worker_id: &str,
    coord: &CoordArgs,
    live: bool,
) -> Result<String, ToolError> {
    let input = InputLog::open(&spec.input, spec.job.input_kind())?.paced(Some(spec.rate));
    prepare_output(&spec.output, spec.job)?;
    let mut settings = CheckpointSettings::new(spec.name(), &spec.state_dir());
    settings.interval = spec.checkpoint_interval;
    settings.timeout = spec.checkpoint_timeout;
    settings.keep = spec.keep;
    settings.address = worker_id.to_owned();
    settings.coordination_retry_max = coord.connect_timeout;
    let observed: Arc<dyn Coordinator> =
        Arc::new(ObservedCoordinator::new(coordinator.clone(), fault::Progress));
    let metrics = JobMetrics::new(spec.shards);
    let live = match live {
        true => Some(
            LiveView::start(spec.name(), &metrics)
                .map_err(|error| fail(format!("cannot start the live view: {error}")))?,
        ),
        false => None,
    };
    let config = JobConfig::new(spec.shards);
    let summary = run_checkpointed(spec, config, &input, (settings, observed), &metrics);
    if let Some(live) = live {
        live.finish();
    }
    summary
}

/// Ends the coordination session of the previous process that ran as `worker_id` (its
/// credentials are in the state directory), then saves this process's credentials there
/// before it registers, so its own successor can do the same.
pub fn take_over_worker_id(
    state_dir: &Path,
    coord: &CoordArgs,
    worker_id: &str,
    coordinator: &ZkCoordinator,
) -> Result<(), ToolError> {
    let dir = state_dir.join("workers");
    let file = dir.join(format!("{worker_id}.session"));
    match std::fs::read_to_string(&file) {
        Ok(text) => match parse_session_file(&text) {
            Some(previous) if previous.id != coordinator.session_id() => {
                let config = ClientConfig::new(&coord.coord)
                    .map_err(|error| fail(format!("bad --coord {:?}: {error}", coord.coord)))?
                    .with_session_timeout(coord.session_timeout);
                let id = previous.id;
                match end_session(&config, previous) {
                    Ok(true) => {
                        progress(&format!("ended session {id:#x} of the previous {worker_id}"))
                    }
                    Ok(false) => {}
                    Err(error) => return Err(coordinator_error("end the previous session", error)),
                }
            }
            Some(_) => {}
            None => progress(&format!("ignoring unreadable {}", file.display())),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(fail(format!("cannot read {}: {error}", file.display()))),
    }
    let credentials = coordinator.session_credentials();
    let text =
        format!("{SESSION_FILE_HEADER}\n{:016x}\n{}\n", credentials.id, hex(&credentials.password));
    std::fs::create_dir_all(&dir)
        .map_err(|error| fail(format!("cannot create {}: {error}", dir.display())))?;
    zabflow_core::durable_file::replace(&file, text.as_bytes())
        .map_err(|error| fail(format!("cannot save the worker's session: {error}")))
}

/// First line of a worker's session file; then the session id and password in hex.
const SESSION_FILE_HEADER: &str = "zabflow worker session v1";

fn parse_session_file(text: &str) -> Option<SessionCredentials> {
    let mut lines = text.lines();
    if lines.next()? != SESSION_FILE_HEADER {
        return None;
    }
    let id = u64::from_str_radix(lines.next()?, 16).ok()? as i64;
    let password = lines.next()?;
    if password.len() % 2 != 0 {
        return None;
    }
    let password = (0..password.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(password.get(at..at + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(SessionCredentials { id, password })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Creates the output directory and its `JOB` marker (refusing another job's output).
fn prepare_output(dir: &Path, kind: JobKind) -> Result<(), ToolError> {
    std::fs::create_dir_all(dir)
        .map_err(|error| fail(format!("create output {}: {error}", dir.display())))?;
    let marker = dir.join("JOB");
    let text = format!(
        "{OUTPUT_MARKER_FIRST_LINE}\njob={}\nformat={}\n",
        kind.name(),
        kind.output_format()
    );
    match std::fs::read_to_string(&marker) {
        Ok(existing) if existing == text => Ok(()),
        Ok(_) => Err(fail(format!(
            "output {} holds another job's output ({}); use another --output",
            dir.display(),
            marker.display()
        ))),
        Err(_) => std::fs::write(&marker, text)
            .map_err(|error| fail(format!("write {}: {error}", marker.display()))),
    }
}

/// Runs the job; returns a one-line summary (records written, restore, checkpoints).
fn run_checkpointed(
    spec: &JobSpec,
    config: JobConfig,
    input: &InputLog,
    checkpoints: Checkpoints,
    metrics: &JobMetrics,
) -> Result<String, ToolError> {
    let output = spec.output.clone();
    match spec.job {
        JobKind::WindowedCount => {
            let window_ms = spec.window.as_millis() as u64;
            let sink = move |shard| FaultSink(LogSink::open(&output, shard));
            let outcome =
                windowed_count::run(config, input, window_ms, sink, checkpoints, metrics)?;
            let records = outcome.output.sink_outputs.iter().try_fold(0, |sum, report| {
                report.as_ref().map(|report| sum + report.records).map_err(|e| e.duplicate())
            })?;
            Ok(summarize(&outcome, records))
        }
        JobKind::LogAnalysis => {
            let sink =
                move |shard| FaultSink(FileSink::resumable(&output, shard, RowFormat::JsonLines));
            let outcome = log_analysis::run(config, input, sink, checkpoints, metrics)?;
            let records = outcome.output.sink_outputs.iter().try_fold(0, |sum, report| {
                report.as_ref().map(|report| sum + report.rows).map_err(|e| e.duplicate())
            })?;
            Ok(summarize(&outcome, records))
        }
        JobKind::RunningCount => {
            let sink = move |shard| FaultSink(LogSink::open(&output, shard));
            let outcome = running_count::run(config, input, sink, checkpoints, metrics)?;
            let records = outcome.output.sink_outputs.iter().try_fold(0, |sum, report| {
                report.as_ref().map(|report| sum + report.records).map_err(|e| e.duplicate())
            })?;
            Ok(summarize(&outcome, records))
        }
    }
}

/// One line on what a run did; restore failures (a corrupt state file) each on a line
/// of their own first.
fn summarize<O>(outcome: &CheckpointedOutput<O>, records: u64) -> String {
    for failure in &outcome.restore_failures {
        progress(&format!("error: a checkpoint could not be restored: {failure}"));
    }
    let restored = outcome
        .restored_from
        .map_or("started afresh".to_owned(), |epoch| format!("resumed from checkpoint {epoch}"));
    let alignment_max = outcome.completed.iter().map(|report| report.alignment_max).max();
    format!(
        "{records} output records written by this run; {restored} in {:.3} s; {} checkpoints \
         completed, {} aborted; longest alignment {:?}; {} late records",
        outcome.restore_duration.as_secs_f64(),
        outcome.completed.len(),
        outcome.aborted.len(),
        alignment_max.unwrap_or_default(),
        outcome.output.late_records()
    )
}

fn status(args: &StatusArgs) -> Result<(), ToolError> {
    let coordinator = connect(&args.coord)?;
    let mut out = String::new();
    let leader = coordinator
        .leader_address()
        .map_err(|error| coordinator_error("read the leader", error))?;
    let _ = writeln!(out, "cluster: {}", args.coord.cluster);
    let _ = writeln!(out, "leader: {}", leader.as_deref().unwrap_or("(none)"));
    let workers =
        coordinator.workers().map_err(|error| coordinator_error("read workers", error))?;
    let _ = writeln!(out, "workers: {}", workers.len());
    for worker in &workers {
        let _ = writeln!(out, "  {} at {}", worker.id, worker.address);
    }
    let epochs = coordinator
        .checkpoints(&args.job)
        .map_err(|error| coordinator_error("list checkpoints", error))?;
    let _ = writeln!(out, "job: {}", args.job);
    let specs =
        coordinator.job_specs().map_err(|error| coordinator_error("read job specs", error))?;
    if let Some(entry) = specs.iter().find(|entry| entry.job == args.job) {
        match crate::worker::Submission::decode(&entry.data) {
            Ok(submission) => {
                let _ = writeln!(
                    out,
                    "submitted: {} ({}), {}{}{}",
                    submission.spec.job.name(),
                    submission.spec.input.display(),
                    submission.state.name(),
                    submission.worker.map(|worker| format!(" on {worker}")).unwrap_or_default(),
                    submission.message.map(|message| format!(": {message}")).unwrap_or_default(),
                );
            }
            Err(reason) => {
                let _ = writeln!(out, "submitted: damaged spec ({reason})");
            }
        }
    }
    let _ = writeln!(out, "completed checkpoints: {}", epochs.len());
    for epoch in epochs {
        match coordinator.checkpoint(&args.job, epoch) {
            Ok(checkpoint) => describe_checkpoint(&mut out, &checkpoint),
            // Pruned between the listing and the read: the newer ones follow.
            Err(CoordinatorError::NoSuchCheckpoint { .. }) => {}
            Err(error) => {
                return Err(coordinator_error(&format!("read checkpoint {epoch}"), error))
            }
        }
    }
    let _ = coordinator.close();
    crate::print_stdout(&out)
}

fn describe_checkpoint(
    out: &mut String,
    checkpoint: &zabflow_core::coordinator::CompletedCheckpoint,
) {
    let (files, state_bytes) = checkpoint.state_totals();
    let _ = writeln!(
        out,
        "  epoch {} at {} ms: {files} state files ({} key groups), {state_bytes} state bytes",
        checkpoint.epoch,
        checkpoint.timestamp_ms,
        checkpoint.state_files.len()
    );
    let sources: Vec<String> = checkpoint
        .source_offsets
        .iter()
        .map(|source| format!("{}@{}", source.partition, source.offset))
        .collect();
    let _ = writeln!(out, "    source offsets (partition@offset): {}", sources.join(" "));
    let sinks: Vec<String> = checkpoint
        .sink_positions
        .iter()
        .map(|sink| format!("{}@{}", sink.partition, sink.offset))
        .collect();
    let _ = writeln!(out, "    sink positions (partition@offset): {}", sinks.join(" "));
}

/// The committed records of a job's output directory, one line each, partition after
/// partition: decoded count results (windowed-count) or JSON lines (log-analysis).
///
/// # Errors
/// [`ToolError::Job`] when `dir` is not a job's output; what reading the committed output
/// fails with (a damaged commit file, a log locked by a running job).
pub fn committed_output(dir: &Path) -> Result<Vec<String>, ToolError> {
    let marker = dir.join("JOB");
    let text = std::fs::read_to_string(&marker).map_err(|error| {
        fail(format!("{} is not a job's output (no JOB file: {error})", dir.display()))
    })?;
    let mut lines = text.lines();
    if lines.next() != Some(OUTPUT_MARKER_FIRST_LINE) {
        return Err(fail(format!("{}: not a job output marker", marker.display())));
    }
    let format = lines.find_map(|line| line.strip_prefix("format=")).unwrap_or("");
    let mut out = Vec::new();
    match format {
        "log" => {
            for partition in committed_records(dir)? {
                for payload in &partition.records {
                    out.push(windowed_count::describe(payload).map_err(|reason| {
                        fail(format!("partition-{}: {reason}", partition.partition))
                    })?);
                }
            }
        }
        "key-count-log" => {
            for partition in committed_records(dir)? {
                for payload in &partition.records {
                    out.push(running_count::describe(payload).map_err(|reason| {
                        fail(format!("partition-{}: {reason}", partition.partition))
                    })?);
                }
            }
        }
        "jsonl" => {
            let mut shard = 0;
            while dir.join(format!("part-{shard}.jsonl")).exists() {
                let bytes = committed_file_bytes(&dir.join(format!("part-{shard}.jsonl")))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| fail(format!("part-{shard}.jsonl is not UTF-8")))?;
                out.extend(text.lines().map(str::to_owned));
                shard += 1;
            }
        }
        other => return Err(fail(format!("{}: unknown format {other:?}", marker.display()))),
    }
    Ok(out)
}
