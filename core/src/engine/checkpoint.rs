//! Exactly-once checkpoints: the settings of a checkpointed job, what it reports, and the
//! checkpoint driver that runs beside its shards.
//!
//! ```text
//! let settings = CheckpointSettings::new("clicks", state_dir);     // interval 1 s, keep 3, ...
//! let outcome = Job::new(config)
//!     .source("in", move |p| input.source::<Event>(p, 100))         // LogSource: seekable
//!     .key_by("key", |e| e.key).window(Tumbling::of(10_000)).aggregate("count", Count)
//!     .sink("out", move |shard| LogSink::open(&output, shard))      // two-phase
//!     .run_checkpointed(settings, coordinator)?;                    // Arc<dyn Coordinator>
//! let visible = committed_decoded::<WindowResult<u64, u64>>(&output)?;
//! ```
//!
//! # What a run does
//!
//! 1. **Leadership.** It campaigns (`Coordinator::campaign` with `settings.address`) and
//!    waits until it leads: a standby process of the same job waits here until the active
//!    one's session expires.
//! 2. **Restore.** It reads the newest completed checkpoint, verifies every state file it
//!    names (length and crc32c; header naming the job, epoch and key group), and restores
//!    it: each shard's operator gets the key groups it owns *now* (any shard count:
//!    rescaling), sources seek to the recorded offsets, sinks truncate their output to the
//!    recorded ends and rewrite their commit files. A checkpoint that fails verification
//!    is reported (`CheckpointedOutput::restore_failures`, naming the file) and the
//!    previous one is tried; with none left the job starts afresh (output dropped).
//! 3. **Checkpoints.** Every `interval` the driver draws an epoch
//!    (`next_checkpoint_epoch`) and raises the shared trigger (an atomic each shard polls
//!    once per source batch). Each shard records its source position and stages
//!    `Barrier(e)` to every target behind the records it already pulled; a shard that got
//!    the barrier on an input stops reading that input (keeping its other inputs drained,
//!    so the mesh cannot deadlock) until the barrier arrived on all of them, then snapshots
//!    its key groups into buffers, makes its sink's output durable (phase one) and hands
//!    the buffers to the state writer thread, which writes and fsyncs the state file and
//!    acknowledges. When every shard acknowledged, the driver records the checkpoint
//!    (`record_checkpoint`, fenced by leadership), writes the sinks' commit files (phase
//!    two: the output up to `e` becomes visible), prunes to the newest `keep` checkpoints
//!    and deletes the pruned checkpoints' state files once no kept checkpoint refers to
//!    them (an incremental snapshot leaves the panes that did not change to the shard's
//!    previous, completed, snapshot's file; see [`state_file`](super::state_file)). A
//!    checkpoint not acknowledged within `timeout` is aborted (its state files deleted)
//!    and the job goes on.
//! 4. **End.** When every source is exhausted and every window has fired, a final
//!    checkpoint commits all output, and the run returns.
//!
//! Coordination errors that may pass (connection loss) are retried with exponential
//! backoff (never a tight loop) up to `coordination_retry_max`; a lost session or lost
//! leadership stops the job with [`Error::LeadershipLost`] so that two leaders never write
//! the same output.

use super::job::JobOutput;
use crate::constants::{CHECKPOINTS_CONCURRENT_MAX, CHECKPOINT_INTERVAL_MIN};
use crate::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a checkpointed job checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSettings {
    /// The job's name: its znodes (`/zabflow/<cluster>/jobs/<job>`) and its state files
    /// carry it. One path segment of `[A-Za-z0-9_.-]`.
    pub job: String,
    /// Time between the starts of two checkpoints.
    pub interval: Duration,
    /// A checkpoint not complete this long after its trigger is aborted.
    pub timeout: Duration,
    /// Checkpoints in flight at once (a new one is triggered only once every shard
    /// injected the previous one's barrier).
    pub max_concurrent: usize,
    /// Completed checkpoints kept (older ones and their state files are deleted).
    pub keep: usize,
    /// Where state files are written: `<state_dir>/<job>/`. Every process that may run the
    /// job (active and standby) must see the same directory.
    pub state_dir: PathBuf,
    /// What this process writes into its leader-election znode.
    pub address: String,
    /// How long one coordination call is retried (with backoff) while the service is
    /// unreachable, before the job fails.
    pub coordination_retry_max: Duration,
}

impl CheckpointSettings {
    /// Settings for job `job` with state under `state_dir`: a checkpoint every second,
    /// 30 s timeout, one at a time, the newest 3 kept, coordination retried for 30 s.
    pub fn new(job: &str, state_dir: &Path) -> CheckpointSettings {
        CheckpointSettings {
            job: job.to_owned(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            max_concurrent: 1,
            keep: 3,
            state_dir: state_dir.to_owned(),
            address: format!("pid-{}", std::process::id()),
            coordination_retry_max: Duration::from_secs(30),
        }
    }

    /// The directory of this job's state files.
    pub fn job_state_dir(&self) -> PathBuf {
        self.state_dir.join(&self.job)
    }

    /// # Errors
    /// [`Error::InvalidJob`] naming the setting out of its bounds.
    pub fn validate(&self) -> Result<(), Error> {
        crate::coordinator::validate_name("job", &self.job)
            .map_err(|error| Error::InvalidJob(error.to_string()))?;
        let check = |ok: bool, message: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::InvalidJob(format!("checkpoint setting {message}")))
            }
        };
        check(
            self.interval >= CHECKPOINT_INTERVAL_MIN,
            format!("interval {:?} (at least {CHECKPOINT_INTERVAL_MIN:?})", self.interval),
        )?;
        check(!self.timeout.is_zero(), "timeout 0".into())?;
        check(
            (1..=CHECKPOINTS_CONCURRENT_MAX).contains(&self.max_concurrent),
            format!("max_concurrent {} (1..={CHECKPOINTS_CONCURRENT_MAX})", self.max_concurrent),
        )?;
        check(self.keep >= 1, "keep 0 (at least 1)".into())
    }
}

/// One completed checkpoint, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    pub epoch: u64,
    /// From the trigger to the record in the coordination service.
    pub duration: Duration,
    /// The longest any shard waited between the first and the last barrier of the epoch
    /// on its inputs (the cost of alignment under skew or backpressure).
    pub alignment_max: Duration,
    /// The longest any shard's loop stood still taking its snapshot (copying its key
    /// groups' state into buffers, making its sink durable); writing the state file happens
    /// on the state writer thread and is not included.
    pub snapshot_max: Duration,
    /// Bytes of state files written.
    pub state_bytes: u64,
    /// Taken at the end of the input, committing all output.
    pub is_final: bool,
}

/// What a checkpointed job hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointedOutput<O, L = u64> {
    /// The shards' outputs and statistics (of this run only).
    pub output: JobOutput<O, L>,
    /// The epoch of the checkpoint the run resumed from, `None` if it started afresh.
    pub restored_from: Option<u64>,
    /// Checkpoints that could not be restored and why (a corrupt state file, named), newest
    /// first; the run fell back past them.
    pub restore_failures: Vec<String>,
    /// Time from leadership to the shards' start (reading and restoring the checkpoint).
    pub restore_duration: Duration,
    /// Checkpoints completed by this run, in order (the last one is final).
    pub completed: Vec<CheckpointReport>,
    /// Epochs aborted (timed out, or overtaken by the end of the input).
    pub aborted: Vec<u64>,
}
