//! Env-gated fault points and progress lines around the checkpoint driver's calls to the
//! coordination service, for the crash tests and for operators who want to watch.
//!
//! [`FaultSink`] wraps a job's sink the same way, for the point inside a shard.
//! [`ObservedCoordinator`] wraps the real coordinator (every call goes through to it) and
//! tells a [`CoordinatorObserver`] of the checkpoint protocol's steps; [`Progress`], the
//! observer of every `job run`, prints a `job:` line on stderr when an epoch is drawn and a
//! checkpoint is recorded. With `ZABFLOW_JOB_FAULT` set it also kills its own process with
//! SIGKILL at a named point of the checkpoint protocol — a real crash, at a moment a timer
//! from outside would rarely hit:
//!
//! ```text
//! ZABFLOW_JOB_FAULT = point "@" n [ "+" delay_ms ]
//! point = "epoch-drawn"     after the n-th epoch is drawn: barriers about to flow, state
//!                           being snapshotted (with a delay: in the middle of alignment)
//!       | "sink-prepared"   a shard's sink made its output durable at a barrier (phase
//!                           one), the n-th time over all shards: mid-checkpoint
//!       | "before-record"   the n-th checkpoint's state files are durable, not yet recorded
//!       | "after-record"    the n-th checkpoint is recorded; its output not yet committed
//!                           (the sinks' commit files are written next: the sink commit)
//!       | "after-prune"     older checkpoints pruned, their state files not yet deleted
//! ```
//!
//! `n` counts calls of this process only (from 1), so a test sets a fresh plan for every
//! restart. Nothing here changes what the coordinator does; without the variable the
//! wrapper only prints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use zabflow_bench::live_view::print_line;

use zabflow_core::coordinator::{
    CompletedCheckpoint, Coordinator, CoordinatorResult, Pruned, SessionState, SinkPosition, Worker,
};
use zabflow_core::engine::{Partition, Sink, SinkCommit};

/// The environment variable holding a fault plan.
pub const FAULT_ENV: &str = "ZABFLOW_JOB_FAULT";

/// A named point of the checkpoint protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    EpochDrawn,
    SinkPrepared,
    BeforeRecord,
    AfterRecord,
    AfterPrune,
}

impl FaultPoint {
    fn parse(name: &str) -> Option<FaultPoint> {
        Some(match name {
            "epoch-drawn" => FaultPoint::EpochDrawn,
            "sink-prepared" => FaultPoint::SinkPrepared,
            "before-record" => FaultPoint::BeforeRecord,
            "after-record" => FaultPoint::AfterRecord,
            "after-prune" => FaultPoint::AfterPrune,
            _ => return None,
        })
    }
}

/// Where and when to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    pub point: FaultPoint,
    /// Crash at the n-th time the point is passed (from 1).
    pub nth: u64,
    /// Crash this long after passing it (0: at once, on the calling thread).
    pub delay: Duration,
}

impl FaultPlan {
    /// Parses a plan (see the module doc).
    ///
    /// # Errors
    /// A message naming what is wrong with `text`.
    pub fn parse(text: &str) -> Result<FaultPlan, String> {
        let bad = || format!("{FAULT_ENV}={text:?}: expected point@n[+delay_ms]");
        let (point, rest) = text.split_once('@').ok_or_else(bad)?;
        let point = FaultPoint::parse(point).ok_or_else(bad)?;
        let (nth, delay_ms) = match rest.split_once('+') {
            Some((nth, delay)) => (nth, delay.parse::<u64>().map_err(|_| bad())?),
            None => (rest, 0),
        };
        let nth = nth.parse::<u64>().ok().filter(|&nth| nth >= 1).ok_or_else(bad)?;
        Ok(FaultPlan { point, nth, delay: Duration::from_millis(delay_ms) })
    }

    /// The plan in the environment, if any.
    ///
    /// # Errors
    /// As [`FaultPlan::parse`].
    pub fn from_env() -> Result<Option<FaultPlan>, String> {
        match std::env::var(FAULT_ENV) {
            Ok(text) if !text.is_empty() => FaultPlan::parse(&text).map(Some),
            _ => Ok(None),
        }
    }
}

/// Kills this process with SIGKILL, now or after `delay` (from another thread).
fn crash(point: FaultPoint, delay: Duration) {
    let kill = move || {
        eprintln!("job: fault point {point:?} reached: SIGKILL");
        // SAFETY: kill(2) with our own pid and a signal number; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    };
    if delay.is_zero() {
        kill();
    } else {
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            kill();
        });
    }
}

/// The process's plan, set once by [`arm`].
static PLAN: OnceLock<Option<FaultPlan>> = OnceLock::new();
/// How often each point was passed in this process.
static PASSED: [AtomicU64; 5] =
    [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Arms `plan` for this process (the first call wins).
pub fn arm(plan: Option<FaultPlan>) {
    let _ = PLAN.set(plan);
}

/// Counts a pass of `point`, and crashes if the plan says this is the one.
fn pass(point: FaultPoint) {
    let count = PASSED[point as usize].fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(Some(plan)) = PLAN.get() {
        if plan.point == point && plan.nth == count {
            crash(point, plan.delay);
        }
    }
}

/// A job's sink that passes [`FaultPoint::SinkPrepared`] after each phase one.
pub struct FaultSink<S>(pub S);

impl<R, S: Sink<R>> Sink<R> for FaultSink<S> {
    type Output = S::Output;

    #[inline]
    fn write(&mut self, record: &R) {
        self.0.write(record);
    }

    fn finish(self) -> S::Output {
        self.0.finish()
    }

    fn prepare_commit(&mut self) -> Result<Option<SinkCommit>, zabflow_core::Error> {
        let commit = self.0.prepare_commit()?;
        pass(FaultPoint::SinkPrepared);
        Ok(commit)
    }

    fn restore(
        &mut self,
        epoch: u64,
        positions: &[SinkPosition],
        partition: Partition,
    ) -> Result<(), zabflow_core::Error> {
        self.0.restore(epoch, positions, partition)
    }
}

/// What a wrapper of the job's coordinator tells its observer; every call goes through to
/// the real coordinator unchanged.
pub trait CoordinatorObserver: Send + Sync + 'static {
    /// This process has become the leader.
    fn led(&self) {}
    /// Epoch `epoch` was drawn: a checkpoint starts.
    fn epoch_drawn(&self, _epoch: u64) {}
    /// The checkpoint's state files are durable; it is about to be recorded.
    fn recording(&self, _checkpoint: &CompletedCheckpoint) {}
    /// The checkpoint is recorded; its output is committed next.
    fn recorded(&self, _checkpoint: &CompletedCheckpoint) {}
    /// Old checkpoints were pruned; their state files are deleted next.
    fn pruned(&self) {}
    /// The checkpoints are about to be listed (the start of a restore).
    fn listing(&self) {}
    /// The checkpoints were listed.
    fn listed(&self, _epochs: &[u64]) {}
    /// Checkpoint `epoch`'s record was read.
    fn read(&self, _epoch: u64) {}
}

/// The observer every `job run` has: `job:` progress lines and the fault points.
pub struct Progress;

impl CoordinatorObserver for Progress {
    fn epoch_drawn(&self, epoch: u64) {
        print_line(&format!("job: checkpoint {epoch} triggered"));
        pass(FaultPoint::EpochDrawn);
    }

    fn recording(&self, _checkpoint: &CompletedCheckpoint) {
        pass(FaultPoint::BeforeRecord);
    }

    fn recorded(&self, checkpoint: &CompletedCheckpoint) {
        let (files, state_bytes) = checkpoint.state_totals();
        let sink_end: u64 = checkpoint.sink_positions.iter().map(|sink| sink.offset).sum();
        print_line(&format!(
            "job: checkpoint {} recorded: {files} state files, {state_bytes} state bytes, sinks end at {sink_end}",
            checkpoint.epoch,
        ));
        pass(FaultPoint::AfterRecord);
    }

    fn pruned(&self) {
        pass(FaultPoint::AfterPrune);
    }
}

/// The job's coordinator, every call going through to `inner`, with `observer` told of the
/// checkpoint protocol's steps.
pub struct ObservedCoordinator<O> {
    inner: Arc<dyn Coordinator>,
    observer: O,
}

impl<O: CoordinatorObserver> ObservedCoordinator<O> {
    pub fn new(inner: Arc<dyn Coordinator>, observer: O) -> ObservedCoordinator<O> {
        ObservedCoordinator { inner, observer }
    }
}

impl<O: CoordinatorObserver> Coordinator for ObservedCoordinator<O> {
    fn session_state(&self) -> SessionState {
        self.inner.session_state()
    }

    fn register_worker(&self, id: &str, address: &str) -> CoordinatorResult<()> {
        self.inner.register_worker(id, address)
    }

    fn workers(&self) -> CoordinatorResult<Vec<Worker>> {
        self.inner.workers()
    }

    fn campaign(&self, address: &str) -> CoordinatorResult<()> {
        self.inner.campaign(address)
    }

    fn is_leader(&self) -> bool {
        self.inner.is_leader()
    }

    fn await_leadership(&self, timeout: Duration) -> CoordinatorResult<()> {
        self.inner.await_leadership(timeout)?;
        self.observer.led();
        Ok(())
    }

    fn resign(&self) -> CoordinatorResult<()> {
        self.inner.resign()
    }

    fn leader_address(&self) -> CoordinatorResult<Option<String>> {
        self.inner.leader_address()
    }

    fn next_checkpoint_epoch(&self, job: &str) -> CoordinatorResult<u64> {
        let epoch = self.inner.next_checkpoint_epoch(job)?;
        self.observer.epoch_drawn(epoch);
        Ok(epoch)
    }

    fn record_checkpoint(
        &self,
        job: &str,
        checkpoint: &CompletedCheckpoint,
    ) -> CoordinatorResult<()> {
        self.observer.recording(checkpoint);
        self.inner.record_checkpoint(job, checkpoint)?;
        self.observer.recorded(checkpoint);
        Ok(())
    }

    fn checkpoints(&self, job: &str) -> CoordinatorResult<Vec<u64>> {
        self.observer.listing();
        let epochs = self.inner.checkpoints(job)?;
        self.observer.listed(&epochs);
        Ok(epochs)
    }

    fn checkpoint(&self, job: &str, epoch: u64) -> CoordinatorResult<CompletedCheckpoint> {
        let checkpoint = self.inner.checkpoint(job, epoch)?;
        self.observer.read(epoch);
        Ok(checkpoint)
    }

    fn latest_checkpoint(&self, job: &str) -> CoordinatorResult<Option<CompletedCheckpoint>> {
        self.inner.latest_checkpoint(job)
    }

    fn prune(&self, job: &str, keep: usize) -> CoordinatorResult<Pruned> {
        let pruned = self.inner.prune(job, keep)?;
        self.observer.pruned();
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_bad_ones_are_refused() {
        let plan = FaultPlan::parse("after-record@3").unwrap();
        assert_eq!(
            plan,
            FaultPlan { point: FaultPoint::AfterRecord, nth: 3, delay: Duration::ZERO }
        );
        let plan = FaultPlan::parse("epoch-drawn@1+25").unwrap();
        assert_eq!(plan.delay, Duration::from_millis(25));
        for bad in
            ["", "after-record", "nowhere@1", "after-record@0", "after-record@x", "epoch-drawn@1+"]
        {
            assert!(FaultPlan::parse(bad).is_err(), "{bad}");
        }
    }
}
