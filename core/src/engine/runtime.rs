//! Threads: one pinned OS thread per shard, and how a job ends.
//!
//! The cores are read once, before any thread starts (a pinned thread would see only its
//! own core), and shard `i` is pinned to core `i` when there are at least as many cores as
//! shards; with fewer, no shard is pinned, because two pinned busy-polling shards on one
//! core would take turns only at the scheduler's tick. The threads are scoped: `run` returns
//! only after every shard thread has been joined.
//!
//! A panic anywhere in a shard is caught on its thread, turned into
//! [`Error::OperatorPanicked`] naming the operator (see `chain::OperatorGuard`), and raises
//! the job's abort flag; every other shard checks the flag once per loop and stops with
//! [`Error::JobAborted`], so a failing operator ends the job instead of leaving its
//! neighbours waiting forever on rings nobody will fill. The job reports the root cause.

use super::chain::take_panicked_operator;
use crate::Error;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// One shard's work, moved onto its thread.
pub(crate) trait ShardWork: Send {
    type Output: Send;
    fn run(self, abort: &AtomicBool) -> Result<Self::Output, Error>;
}

/// Runs `work[i]` on shard thread `i` and returns their outputs in shard order, or the
/// job's root-cause error once every thread has stopped.
pub(crate) fn run_on_shards<W: ShardWork>(work: Vec<W>) -> Result<Vec<W::Output>, Error> {
    run_supervised(work, |_| ()).0
}

/// [`run_on_shards`], with `supervisor` running on the caller's thread while the shards
/// run (the checkpoint driver); it gets the job's abort flag, which it may raise to stop
/// the shards, and must return once the shards are done or aborted.
pub(crate) fn run_supervised<W: ShardWork, T>(
    work: Vec<W>,
    supervisor: impl FnOnce(&AtomicBool) -> T,
) -> (Result<Vec<W::Output>, Error>, T) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let pin = cores.len() >= work.len();
    let abort = AtomicBool::new(false);
    let (results, supervised): (Vec<Result<W::Output, Error>>, T) = thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .enumerate()
            .map(|(shard, work)| {
                let core = if pin { Some(cores[shard]) } else { None };
                let abort = &abort;
                thread::Builder::new()
                    .name(format!("zabflow-shard-{shard}"))
                    .spawn_scoped(scope, move || run_shard(shard, core, work, abort))
                    .map_err(|source| Error::io("spawning a shard thread", source))
            })
            .collect();
        let supervised = supervisor(&abort);
        let results = handles
            .into_iter()
            .map(|handle| handle?.join().expect("run_shard catches every panic"))
            .collect();
        (results, supervised)
    });
    (root_cause(results), supervised)
}

fn run_shard<W: ShardWork>(
    shard: usize,
    core: Option<core_affinity::CoreId>,
    work: W,
    abort: &AtomicBool,
) -> Result<W::Output, Error> {
    if let Some(core) = core {
        // Unpinned is slower, not wrong; the scheduler still places the thread.
        let _pinned = core_affinity::set_for_current(core);
    }
    let result = match catch_unwind(AssertUnwindSafe(|| work.run(abort))) {
        Ok(result) => result,
        Err(payload) => Err(Error::OperatorPanicked {
            operator: take_panicked_operator().unwrap_or("shard driver").to_string(),
            shard,
            message: panic_message(payload.as_ref()),
        }),
    };
    if result.is_err() {
        abort.store(true, Ordering::Relaxed);
    }
    result
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// The outputs, or the first error that is not a consequence of another shard's failure.
fn root_cause<O>(results: Vec<Result<O, Error>>) -> Result<Vec<O>, Error> {
    let (outputs, mut errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    if errors.is_empty() {
        return Ok(outputs.into_iter().filter_map(Result::ok).collect());
    }
    let mut errors: Vec<Error> = errors.drain(..).filter_map(Result::err).collect();
    let root = errors.iter().position(|error| !matches!(error, Error::JobAborted { .. }));
    Err(errors.swap_remove(root.unwrap_or(0)))
}
