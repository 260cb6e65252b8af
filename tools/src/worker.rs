//! `zabflow worker` and `zabflow job submit`: long-running workers that run the jobs
//! submitted to their cluster, as Flink's JobManagers run the jobs submitted to a session
//! cluster.
//!
//! **submit** writes the job's spec znode, `/zabflow/<cluster>/jobs/<name>/spec` (the same
//! arguments as `job run`, input and output made absolute), in the state `submitted`, and
//! with `--wait` waits until a worker reports it `finished` or `failed`.
//!
//! **worker** registers as a worker and enters the cluster's leader election, like `job run`.
//! The leader looks at the spec znodes every [`SPEC_POLL`] and runs each job in the state
//! `submitted` or `running` (one whose leader died mid-run) in name order, one at a time:
//! it claims the job by a compare-and-set on the spec's version (fenced on its candidacy, so
//! a deposed leader cannot), runs it exactly as `job run` does — resuming from the job's
//! latest checkpoint — and records `finished` with the run's summary, or `failed` with the
//! error. A standby takes over when the leader's session ends and resumes whatever job was
//! `running`. A worker whose session ends exits with an error (a supervisor restarts it;
//! it then joins as a standby); one that loses its connection or leadership stands by.
//!
//! Spec znode data, UTF-8 lines of `key=value` after a header line:
//!
//! ```text
//! zabflow-job-spec 1
//! job=log-analysis            name=…          input=/abs/path     output=/abs/path
//! shards=2                    checkpoint-interval=1s              checkpoint-timeout=10s
//! keep=3                      state-dir=/abs/path (optional)      window=1s       rate=0
//! state=submitted|running|finished|failed
//! worker=<id>                 (running, finished, failed: who ran it)
//! message=<one line>          (finished: the run's summary; failed: the error)
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use zabflow_core::coordinator::{Coordinator, SessionState};
use zabflow_net::coordinator::ZkCoordinator;

use crate::error::ToolError;
use crate::job::{self, CoordArgs, JobKind, JobSpec};
use crate::jobs::fault::{self, FaultPlan};

/// How often the leading worker looks for submitted jobs, and `submit --wait` for the result.
pub const SPEC_POLL: Duration = Duration::from_millis(200);
/// The first line of a spec znode's data.
const SPEC_HEADER: &str = "zabflow-job-spec 1";

/// `zabflow worker`
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub coord: CoordArgs,
    /// This worker's id (default: worker-<pid>). As with `job run`, a worker started with
    /// the id of an earlier one ends that one's session at once (credentials kept in
    /// `--state-dir`), instead of waiting for it to expire.
    #[arg(long, requires = "state_dir")]
    pub worker_id: Option<String>,
    /// Where the worker keeps its session credentials (needed with `--worker-id`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Show each job's per-shard metrics live on stderr while it runs.
    #[arg(long)]
    pub live: bool,
}

/// `zabflow job submit`
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub spec: JobSpec,
    #[command(flatten)]
    pub coord: CoordArgs,
    /// Wait until a worker finished the job (exit 0) or reported it failed (exit 1), at most
    /// this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
}

/// Where a submitted job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SubmissionState {
    /// Waiting for the leading worker.
    Submitted,
    /// A worker runs it (or ran it and died: the next leader resumes it).
    Running,
    /// Ran to the end of its input.
    Finished,
    /// Stopped with an error that a restart would not cure (see its message).
    Failed,
}

impl SubmissionState {
    /// The state's name in the spec znode.
    pub fn name(self) -> &'static str {
        match self {
            SubmissionState::Submitted => "submitted",
            SubmissionState::Running => "running",
            SubmissionState::Finished => "finished",
            SubmissionState::Failed => "failed",
        }
    }
}

/// A spec znode's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub spec: JobSpec,
    pub state: SubmissionState,
    /// The worker that claimed it.
    pub worker: Option<String>,
    /// The summary of a finished run, the error of a failed one.
    pub message: Option<String>,
}

impl Submission {
    /// The spec znode's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let spec = &self.spec;
        let mut text = format!("{SPEC_HEADER}\n");
        let mut line = |key: &str, value: &str| {
            let _ = writeln!(text, "{key}={}", value.replace(['\n', '\r'], " "));
        };
        line("job", spec.job.name());
        if let Some(name) = &spec.name {
            line("name", name);
        }
        line("input", &spec.input.to_string_lossy());
        line("output", &spec.output.to_string_lossy());
        line("shards", &spec.shards.to_string());
        line(
            "checkpoint-interval",
            &humantime::format_duration(spec.checkpoint_interval).to_string(),
        );
        line(
            "checkpoint-timeout",
            &humantime::format_duration(spec.checkpoint_timeout).to_string(),
        );
        line("keep", &spec.keep.to_string());
        if let Some(dir) = &spec.state_dir {
            line("state-dir", &dir.to_string_lossy());
        }
        line("window", &humantime::format_duration(spec.window).to_string());
        line("rate", &spec.rate.to_string());
        line("state", self.state.name());
        if let Some(worker) = &self.worker {
            line("worker", worker);
        }
        if let Some(message) = &self.message {
            line("message", message);
        }
        text.into_bytes()
    }

    /// Reads a spec znode's bytes.
    ///
    /// # Errors
    /// What is wrong with them: not UTF-8, another header, an unknown or missing key, a bad
    /// value.
    pub fn decode(bytes: &[u8]) -> Result<Submission, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        let mut lines = text.lines();
        if lines.next() != Some(SPEC_HEADER) {
            return Err(format!("does not start with {SPEC_HEADER:?}"));
        }
        let mut fields = std::collections::BTreeMap::new();
        for line in lines {
            let (key, value) =
                line.split_once('=').ok_or_else(|| format!("line {line:?} is not key=value"))?;
            if fields.insert(key, value).is_some() {
                return Err(format!("{key} given twice"));
            }
        }
        let mut take = |key: &str| fields.remove(key);
        let required = |value: Option<&str>, key: &str| {
            value.ok_or_else(|| format!("{key} missing")).map(str::to_owned)
        };
        let number = |value: Option<&str>, key: &str| -> Result<u64, String> {
            required(value, key)?.parse().map_err(|_| format!("{key}: not a number"))
        };
        let duration = |value: Option<&str>, key: &str| -> Result<Duration, String> {
            humantime::parse_duration(&required(value, key)?).map_err(|e| format!("{key}: {e}"))
        };
        let job = required(take("job"), "job")?;
        let job = JobKind::from_str(&job, false).map_err(|_| format!("unknown job {job:?}"))?;
        let spec = JobSpec {
            job,
            name: take("name").map(str::to_owned),
            input: required(take("input"), "input")?.into(),
            output: required(take("output"), "output")?.into(),
            shards: number(take("shards"), "shards")? as usize,
            checkpoint_interval: duration(take("checkpoint-interval"), "checkpoint-interval")?,
            checkpoint_timeout: duration(take("checkpoint-timeout"), "checkpoint-timeout")?,
            keep: number(take("keep"), "keep")? as usize,
            state_dir: take("state-dir").map(PathBuf::from),
            window: duration(take("window"), "window")?,
            rate: number(take("rate"), "rate")?,
        };
        let state = required(take("state"), "state")?;
        let state = SubmissionState::from_str(&state, false)
            .map_err(|_| format!("unknown state {state:?}"))?;
        let worker = take("worker").map(str::to_owned);
        let message = take("message").map(str::to_owned);
        if let Some(key) = fields.keys().next() {
            return Err(format!("unknown key {key:?}"));
        }
        Ok(Submission { spec, state, worker, message })
    }
}

fn fail(message: impl Into<String>) -> ToolError {
    ToolError::Job(message.into())
}

fn progress(message: &str) {
    zabflow_bench::live_view::print_line(&format!("worker: {message}"));
}

fn absolute(path: &Path) -> Result<PathBuf, ToolError> {
    std::path::absolute(path).map_err(|error| fail(format!("{}: {error}", path.display())))
}

/// `zabflow job submit`: writes the spec znode; with `--wait`, waits for its end.
///
/// # Errors
/// Bad arguments or a missing input (checked here, before any worker sees the job);
/// coordination errors; with `--wait`, a job a worker reported failed, or no end in time.
pub fn submit(args: &SubmitArgs) -> Result<(), ToolError> {
    let mut spec = args.spec.clone();
    job::check_spec(&spec)?;
    spec.input = absolute(&spec.input)?;
    spec.output = absolute(&spec.output)?;
    spec.state_dir = spec.state_dir.as_deref().map(absolute).transpose()?;
    let coordinator = job::connect(&args.coord)?;
    let submission =
        Submission { spec, state: SubmissionState::Submitted, worker: None, message: None };
    let name = submission.spec.name().to_owned();
    coordinator
        .put_job_spec(&name, &submission.encode())
        .map_err(|error| job::coordinator_error("submit the job", error))?;
    println!("submitted {name} to cluster {}", args.coord.cluster);
    let Some(wait) = args.wait else {
        let _ = coordinator.close();
        return Ok(());
    };
    let deadline = Instant::now() + wait;
    loop {
        let specs = coordinator
            .job_specs()
            .map_err(|error| job::coordinator_error("read the job's spec", error))?;
        let found = specs.iter().find(|entry| entry.job == name);
        let current = found.map(|entry| Submission::decode(&entry.data));
        match current {
            Some(Ok(Submission { state: SubmissionState::Finished, worker, message, .. })) => {
                let worker = worker.unwrap_or_default();
                println!("{name} finished on {worker}: {}", message.unwrap_or_default());
                let _ = coordinator.close();
                return Ok(());
            }
            Some(Ok(Submission { state: SubmissionState::Failed, worker, message, .. })) => {
                let _ = coordinator.close();
                let worker = worker.unwrap_or_default();
                return Err(fail(format!(
                    "{name} failed on {worker}: {}",
                    message.unwrap_or_default()
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(reason)) => return Err(fail(format!("{name}'s spec is damaged: {reason}"))),
            None => return Err(fail(format!("{name}'s spec was removed while waiting"))),
        }
        if Instant::now() >= deadline {
            let _ = coordinator.close();
            return Err(fail(format!("{name} did not end within {wait:?}")));
        }
        std::thread::sleep(SPEC_POLL);
    }
}

/// `zabflow worker`: joins the cluster, and while it leads runs every submitted job.
///
/// # Errors
/// Coordination errors, a lost leadership or session (exits so a supervisor restarts it).
pub fn run(args: &WorkerArgs) -> Result<(), ToolError> {
    fault::arm(FaultPlan::from_env().map_err(fail)?);
    let coordinator = job::connect(&args.coord)?;
    let worker_id =
        args.worker_id.clone().unwrap_or_else(|| format!("worker-{}", std::process::id()));
    if let (Some(_), Some(dir)) = (&args.worker_id, &args.state_dir) {
        job::take_over_worker_id(dir, &args.coord, &worker_id, &coordinator)?;
    }
    job::join_and_lead(&coordinator, &worker_id, &args.coord.cluster)?;
    progress(&format!("{worker_id} leads cluster {}; running submitted jobs", args.coord.cluster));
    loop {
        match coordinator.session_state() {
            SessionState::Expired | SessionState::Closed => {
                return Err(fail("the coordination session ended; exiting"));
            }
            // Moving to another server: the session and the candidacy live on.
            SessionState::Disconnected => {}
            // Not (or not yet again) the leader: stand by until it is.
            SessionState::Connected if !coordinator.is_leader() => {
                let _ = coordinator.await_leadership(SPEC_POLL);
                continue;
            }
            SessionState::Connected => run_pending(&coordinator, &worker_id, args)?,
        }
        std::thread::sleep(SPEC_POLL);
    }
}

/// Runs, one after the other, every job in the state `submitted` or `running`.
fn run_pending(
    coordinator: &Arc<ZkCoordinator>,
    worker_id: &str,
    args: &WorkerArgs,
) -> Result<(), ToolError> {
    let specs =
        coordinator.job_specs().map_err(|error| job::coordinator_error("read job specs", error))?;
    for entry in specs {
        let mut submission = match Submission::decode(&entry.data) {
            Ok(submission) => submission,
            Err(reason) => {
                progress(&format!("skipping {}: its spec is damaged: {reason}", entry.job));
                continue;
            }
        };
        if !matches!(submission.state, SubmissionState::Submitted | SubmissionState::Running) {
            continue;
        }
        let resumed = submission.state == SubmissionState::Running;
        submission.state = SubmissionState::Running;
        submission.worker = Some(worker_id.to_owned());
        submission.message = None;
        let claimed = coordinator
            .update_job_spec(&entry.job, &submission.encode(), entry.version)
            .map_err(|error| job::coordinator_error("claim a job", error))?;
        if !claimed {
            continue; // resubmitted meanwhile: the next look sees the new spec
        }
        let verb = if resumed { "resuming" } else { "running" };
        progress(&format!("{verb} {} ({})", entry.job, submission.spec.job.name()));
        let started = Instant::now();
        let result = job::check_spec(&submission.spec).and_then(|()| {
            job::run_leading(&submission.spec, coordinator, worker_id, &args.coord, args.live)
        });
        match result {
            Ok(summary) => {
                let seconds = started.elapsed().as_secs_f64();
                progress(&format!("{} finished in {seconds:.3} s: {summary}", entry.job));
                submission.state = SubmissionState::Finished;
                submission.message = Some(summary);
            }
            // The service or the leadership is gone: the job stays `running`, for this
            // worker once it leads again or for the next leader, which resume it.
            Err(error)
                if !coordinator.is_leader()
                    || matches!(error, ToolError::CoordinationUnavailable(_)) =>
            {
                progress(&format!("{} stopped, to be resumed: {error}", entry.job));
                return Ok(());
            }
            Err(error) => {
                progress(&format!("{} failed: {error}", entry.job));
                submission.state = SubmissionState::Failed;
                submission.message = Some(error.to_string());
            }
        }
        let recorded = coordinator
            .update_job_spec(&entry.job, &submission.encode(), entry.version + 1)
            .map_err(|error| job::coordinator_error("record a job's end", error))?;
        if !recorded {
            progress(&format!("{} was resubmitted while it ran; running it again", entry.job));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Submission {
        Submission {
            spec: JobSpec {
                job: JobKind::LogAnalysis,
                name: Some("web-1".to_owned()),
                input: "/in/access".into(),
                output: "/out/analysis".into(),
                shards: 2,
                checkpoint_interval: Duration::from_millis(1500),
                checkpoint_timeout: Duration::from_secs(10),
                keep: 3,
                state_dir: Some("/state".into()),
                window: Duration::from_secs(1),
                rate: 500,
            },
            state: SubmissionState::Failed,
            worker: Some("worker-1".to_owned()),
            message: Some("input missing\nsecond line".to_owned()),
        }
    }

    #[test]
    fn submissions_round_trip_and_messages_stay_on_one_line() {
        let mut submission = sample();
        let decoded = Submission::decode(&submission.encode()).unwrap();
        submission.message = Some("input missing second line".to_owned());
        assert_eq!(decoded, submission);
        let mut bare = sample();
        (bare.spec.name, bare.spec.state_dir, bare.worker, bare.message) = (None, None, None, None);
        bare.state = SubmissionState::Submitted;
        assert_eq!(Submission::decode(&bare.encode()).unwrap(), bare);
    }

    #[test]
    fn damaged_specs_are_refused_with_the_reason() {
        let good = String::from_utf8(sample().encode()).unwrap();
        let cases = [
            (good.replace(SPEC_HEADER, "zabflow-job-spec 2"), "does not start"),
            (good.replace("job=log-analysis", "job=pagerank"), "unknown job"),
            (good.replace("state=failed", "state=paused"), "unknown state"),
            (good.replace("shards=2", "shards=two"), "shards: not a number"),
            (good.replace("window=1s", "window=soon"), "window:"),
            (good.replace("keep=3\n", ""), "keep missing"),
            (format!("{good}colour=blue\n"), "unknown key"),
            (format!("{good}rate=1\n"), "rate given twice"),
            (format!("{good}garbage\n"), "not key=value"),
        ];
        for (text, expected) in cases {
            let error = Submission::decode(text.as_bytes()).unwrap_err();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
        assert!(Submission::decode(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    }
}
