//! `SyncProcessor`: the thread that makes txns durable, as ZooKeeper's
//! `SyncRequestProcessor` — group commit.
//!
//! The event loop sends each pass's prepared txns as one [`SyncBatch`] on a bounded queue
//! (a full queue blocks the loop: back-pressure). The thread takes one batch, then every
//! batch already queued (up to `SYNC_BATCH_TXNS_MAX` txns), appends them all with one
//! [`TxnLog::append`] — one write, one fdatasync — and only then reports [`Synced`] with
//! the last zxid of the group and wakes the loop, which applies and answers the whole group.
//! Batches that arrive during the fsync form the next group. A failed append is fatal:
//! the server cannot acknowledge writes it could not log, so it reports the error and stops.
//!
//! The queue is a mutex-guarded deque with two condition variables, not a channel: an idle
//! sync thread parks on a futex at once. crossbeam's blocking `recv` spins and then calls
//! `sched_yield` a few times before it parks; on a busy 2-core machine each yield hands the
//! core to another process, and `perf trace` counted about two yields per fsync on the
//! path of every write.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::constants::{SYNC_BATCH_TXNS_MAX, SYNC_QUEUE_BATCHES_MAX};
use crate::error::{Error, Result};
use crate::txn_log::TxnLog;

/// The encoded txns of one event-loop pass, in zxid order.
#[derive(Debug, Default)]
pub struct SyncBatch {
    /// Shared with the proposals that carry them: handing a txn to the log copies no bytes.
    pub records: Vec<Arc<[u8]>>,
    pub last_zxid: i64,
}

/// A group of txns is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// Every txn up to `last_zxid` is in the log; the log's next offset is `offset_end`.
    Durable { last_zxid: i64, offset_end: u64 },
    /// The log failed; the server must stop.
    Failed(Error),
}

enum Command {
    Batch(SyncBatch),
    TruncateBefore(u64),
}

/// The bounded queue between the loop and the sync thread.
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when a command is queued or the queue closes (the sync thread waits).
    not_empty: Condvar,
    /// Signalled when the sync thread takes commands (a loop blocked on a full queue waits).
    not_full: Condvar,
}

struct QueueState {
    commands: VecDeque<Command>,
    /// No more commands: the thread drains what is queued, syncs and ends.
    closed: bool,
    /// The thread has ended (after a failure, or once closed): commands are dropped.
    ended: bool,
    /// The thread waits on `not_empty`; loops wait on `not_full` (a notify is a syscall
    /// even with no waiter, so only waiters get one).
    taker_waiting: bool,
    pushers_waiting: usize,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding this lock leaves the queue consistent (push/drain only).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a command, waiting while `SYNC_QUEUE_BATCHES_MAX` are queued; dropped once the
    /// thread has ended.
    fn push(&self, command: Command) {
        let mut state = self.lock();
        while state.commands.len() >= SYNC_QUEUE_BATCHES_MAX && !state.ended {
            state.pushers_waiting += 1;
            state = self.not_full.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            state.pushers_waiting -= 1;
        }
        if state.ended {
            return;
        }
        state.commands.push_back(command);
        let wake = state.taker_waiting;
        drop(state);
        if wake {
            self.not_empty.notify_one();
        }
    }

    /// Waits for a command, then takes it and every command queued behind it up to
    /// `SYNC_BATCH_TXNS_MAX` txns; `None` once closed and empty.
    fn take_group(&self, group: &mut Vec<Command>) -> Option<()> {
        let mut state = self.lock();
        while state.commands.is_empty() {
            if state.closed {
                return None;
            }
            state.taker_waiting = true;
            state = self.not_empty.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            state.taker_waiting = false;
        }
        let mut txns = 0;
        while txns < SYNC_BATCH_TXNS_MAX {
            let Some(command) = state.commands.pop_front() else { break };
            if let Command::Batch(batch) = &command {
                txns += batch.records.len();
            }
            group.push(command);
        }
        let wake = state.pushers_waiting > 0;
        drop(state);
        if wake {
            self.not_full.notify_all();
        }
        Some(())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
    }

    fn end(&self) {
        let mut state = self.lock();
        state.ended = true;
        state.commands.clear();
        drop(state);
        self.not_full.notify_all();
    }
}

/// The loop's handle on the sync thread.
pub struct SyncProcessor {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl SyncProcessor {
    /// Starts the thread over `log`; it reports on `synced` and calls `wake` after each.
    ///
    /// # Errors
    /// [`Error::Io`] when the thread cannot be spawned.
    pub fn start(
        log: TxnLog,
        synced: Sender<Synced>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<SyncProcessor> {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                commands: VecDeque::new(),
                closed: false,
                ended: false,
                taker_waiting: false,
                pushers_waiting: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        });
        let thread_queue = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("zabflow-sync".to_owned())
            .spawn(move || {
                let result = run(log, &thread_queue, &synced, wake.as_ref());
                thread_queue.end();
                result
            })
            .map_err(|error| Error::io("spawn the sync thread", &error))?;
        Ok(SyncProcessor { queue, thread: Some(thread) })
    }

    /// Queues a batch; blocks while the queue is full. Dropped if the thread has stopped
    /// (after a failure it has already reported).
    ///
    /// # Panics
    /// If the processor was stopped.
    pub fn submit(&self, batch: SyncBatch) {
        assert!(self.thread.is_some(), "sync thread running");
        self.queue.push(Command::Batch(batch));
    }

    /// Asks the thread to purge log segments below `offset`.
    pub fn truncate_before(&self, offset: u64) {
        if self.thread.is_some() {
            self.queue.push(Command::TruncateBefore(offset));
        }
    }

    /// Drains the queue, syncs the log and joins the thread.
    ///
    /// # Errors
    /// The thread's final sync error.
    pub fn stop(&mut self) -> Result<()> {
        self.queue.close();
        match self.thread.take() {
            Some(thread) => {
                thread.join().unwrap_or_else(|_| Err(Error::Log("sync panicked".into())))
            }
            None => Ok(()),
        }
    }
}

impl Drop for SyncProcessor {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run(
    mut log: TxnLog,
    queue: &Queue,
    synced: &Sender<Synced>,
    wake: &(dyn Fn() + Send + Sync),
) -> Result<()> {
    let mut commands: Vec<Command> = Vec::new();
    let mut group: Vec<SyncBatch> = Vec::new();
    while queue.take_group(&mut commands).is_some() {
        let mut truncate = None;
        for command in commands.drain(..) {
            match command {
                Command::Batch(batch) => group.push(batch),
                Command::TruncateBefore(offset) => truncate = Some(offset),
            }
        }
        if let Err(error) = commit(&mut log, &mut group, synced) {
            let _ = synced.send(Synced::Failed(error.clone()));
            wake();
            return Err(error);
        }
        wake();
        if let Some(offset) = truncate {
            if let Err(error) = log.truncate_before(offset) {
                eprintln!("zabflow node: purge of the txn log failed: {error}");
            }
        }
    }
    log.sync()
}

fn commit(log: &mut TxnLog, group: &mut Vec<SyncBatch>, synced: &Sender<Synced>) -> Result<()> {
    let Some(last_zxid) = group.iter().rev().find(|b| !b.records.is_empty()).map(|b| b.last_zxid)
    else {
        group.clear();
        return Ok(());
    };
    let records: Vec<&[u8]> =
        group.iter().flat_map(|b| b.records.iter().map(|record| &record[..])).collect();
    let range = log.append(&records, last_zxid)?;
    group.clear();
    let _ = synced.send(Synced::Durable { last_zxid, offset_end: range.end });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{CreateTxn, Txn, TxnHeader};
    use crate::txn_log::encode;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn record(zxid: i64) -> Arc<[u8]> {
        let txn = Txn::Create(CreateTxn { path: format!("/n{zxid}"), ..CreateTxn::default() });
        let header =
            TxnHeader { client_id: 1, cxid: 1, zxid, time_ms: 0, txn_type: txn.op_code().code() };
        encode(&header, &txn).into()
    }

    #[test]
    fn more_batches_than_the_queue_holds_all_become_durable_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = TxnLog::open(dir.path(), false).unwrap();
        let (sender, receiver) = crossbeam_channel::unbounded();
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let wake = Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let mut processor = SyncProcessor::start(log, sender, wake).unwrap();
        // Three times the queue's bound, submitted without waiting: the loop blocks on the
        // full queue until the thread takes groups, and nothing is lost or reordered.
        let batches = 3 * SYNC_QUEUE_BATCHES_MAX as i64;
        for zxid in 1..=batches {
            processor.submit(SyncBatch { records: vec![record(zxid)], last_zxid: zxid });
        }
        processor.stop().unwrap();
        let mut last = 0;
        for synced in receiver.try_iter() {
            let Synced::Durable { last_zxid, .. } = synced else { panic!("{synced:?}") };
            assert!(last_zxid > last, "groups in zxid order: {last_zxid} after {last}");
            last = last_zxid;
        }
        assert_eq!(last, batches, "the last group covers the last batch");
        assert!(wakes.load(Ordering::Relaxed) > 0);
        let mut log = TxnLog::open(dir.path(), false).unwrap();
        let mut zxids = Vec::new();
        log.replay(0, 0, |header, _| zxids.push(header.zxid)).unwrap();
        assert_eq!(zxids, (1..=batches).collect::<Vec<_>>());
    }
}
