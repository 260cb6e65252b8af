//! `SyncProcessor`: makes txns durable, as ZooKeeper's `SyncRequestProcessor` — group
//! commit.
//!
//! The event loop queues each pass's prepared txns as one [`SyncBatch`] on a bounded queue
//! (a full queue blocks the loop: back-pressure) and, at the end of the pass, [`kicks`] the
//! processor. A group — every batch queued, up to `SYNC_BATCH_TXNS_MAX` txns — is appended
//! with one [`TxnLog::append`] (one write, one fdatasync); only then is [`Synced`] reported
//! with the last zxid of the group and the loop woken, which applies and answers the whole
//! group. Batches that arrive during the fsync form the next group. A failed append is
//! fatal: the server cannot acknowledge writes it could not log, so it reports the error
//! and stops.
//!
//! Who appends a group: the sync thread, unless the loop allowed inline appends
//! ([`SyncProcessor::set_inline`]) — then a small group (at most `SYNC_INLINE_TXNS_MAX`
//! txns) found while no append is under way is appended by the event loop itself, at the
//! end of its pass, after its replies and peer messages went out. An ensemble's follower
//! allows it: its loop has little else to do during the fsync, and the fsync then costs no
//! thread hand-off (on a 2-core machine every wake-up of another thread is a context
//! switch, and often a wait for a core; at one write in flight per session, inline appends
//! took the ensemble's server CPU per write from about 80 to 50 µs). A standalone server
//! and a leader do not: their loops keep reading requests (standalone at 128 in flight:
//! 112–119k writes/s with the thread, 75–88k inline) and counting followers' acks (two
//! followers can make a quorum before the leader's own fsync ends) while the thread syncs.
//! Only one append runs at a time (the `busy` flag), so groups reach the log in queue
//! order either way.
//!
//! The queue is a mutex-guarded deque with two condition variables, not a channel: an idle
//! sync thread parks on a futex at once. crossbeam's blocking `recv` spins and then calls
//! `sched_yield` a few times before it parks; on a busy 2-core machine each yield hands the
//! core to another process, and `perf trace` counted about two yields per fsync on the
//! path of every write.
//!
//! [`kicks`]: SyncProcessor::kick

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::constants::{SYNC_BATCH_TXNS_MAX, SYNC_INLINE_TXNS_MAX, SYNC_QUEUE_BATCHES_MAX};
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
    /// Txns in the queued batches.
    queued_txns: usize,
    /// A group is being appended (by the thread or inline): no other append may start.
    busy: bool,
    /// The thread waits on `not_empty`; loops wait on `not_full` (a notify is a syscall
    /// even with no waiter, so only waiters get one).
    taker_waiting: bool,
    pushers_waiting: usize,
}

impl QueueState {
    /// Moves the queued commands, up to `SYNC_BATCH_TXNS_MAX` txns, into `group`.
    fn take_into(&mut self, group: &mut Vec<Command>) {
        let mut txns = 0;
        while txns < SYNC_BATCH_TXNS_MAX {
            let Some(command) = self.commands.pop_front() else { break };
            if let Command::Batch(batch) = &command {
                txns += batch.records.len();
            }
            group.push(command);
        }
        self.queued_txns -= txns.min(self.queued_txns);
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding this lock leaves the queue consistent (push/drain only).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a command, waiting while `SYNC_QUEUE_BATCHES_MAX` are queued (the thread is
    /// told to take them); dropped once the thread has ended. The thread is not woken for
    /// it: that is [`Queue::kick`]'s decision, at the end of the loop's pass.
    fn push(&self, command: Command) {
        let mut state = self.lock();
        while state.commands.len() >= SYNC_QUEUE_BATCHES_MAX && !state.ended {
            if state.taker_waiting {
                self.not_empty.notify_one();
            }
            state.pushers_waiting += 1;
            state = self.not_full.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            state.pushers_waiting -= 1;
        }
        if state.ended {
            return;
        }
        if let Command::Batch(batch) = &command {
            state.queued_txns += batch.records.len();
        }
        state.commands.push_back(command);
    }

    /// After a pass: takes the queued commands for an inline append into `group` when they
    /// are few txns, no append is under way and the thread is idle (then the caller must
    /// append them and call [`Queue::inline_done`]); otherwise wakes the thread for them.
    fn kick(&self, group: &mut Vec<Command>, inline_txns_max: usize) -> bool {
        let mut state = self.lock();
        if state.commands.is_empty() || state.ended {
            return false;
        }
        let small = inline_txns_max > 0 && state.queued_txns <= inline_txns_max;
        let batches_only = state.commands.iter().all(|c| matches!(c, Command::Batch(_)));
        if small && batches_only && !state.busy && state.taker_waiting {
            state.busy = true;
            state.take_into(group);
            return true;
        }
        let wake = state.taker_waiting;
        drop(state);
        if wake {
            self.not_empty.notify_one();
        }
        false
    }

    /// An inline append ended: the thread may take what was queued meanwhile.
    fn inline_done(&self) {
        self.lock().busy = false;
    }

    /// Waits for a command and no inline append, then takes it and every command queued
    /// behind it up to `SYNC_BATCH_TXNS_MAX` txns and marks the queue busy; `None` once
    /// closed and empty.
    fn take_group(&self, group: &mut Vec<Command>) -> Option<()> {
        let mut state = self.lock();
        // Called again only after the thread's own append: whatever it appended is done
        // (an inline append starts only while the thread waits below).
        state.busy = false;
        while state.commands.is_empty() || state.busy {
            if state.closed && state.commands.is_empty() {
                return None;
            }
            state.taker_waiting = true;
            state = self.not_empty.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            state.taker_waiting = false;
        }
        state.busy = true;
        state.take_into(group);
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

/// The loop's handle on the txn log and the sync thread.
pub struct SyncProcessor {
    queue: Arc<Queue>,
    /// Appended to by the thread or, for small groups, inline; `busy` orders them, so the
    /// lock is never contended. Dropped by `stop` (closing the log, releasing its lock).
    log: Option<Arc<Mutex<TxnLog>>>,
    synced: Sender<Synced>,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// Most txns [`SyncProcessor::kick`] appends inline (0: never).
    inline_txns_max: usize,
    /// Scratch of the inline path, kept between passes.
    inline: Vec<Command>,
    inline_batches: Vec<SyncBatch>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl SyncProcessor {
    /// Starts the thread over `log`; every group made durable is reported on `synced`,
    /// followed by a call of `wake`.
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
                queued_txns: 0,
                busy: false,
                taker_waiting: false,
                pushers_waiting: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        });
        let log = Arc::new(Mutex::new(log));
        let (thread_queue, thread_log) = (Arc::clone(&queue), Arc::clone(&log));
        let (thread_synced, thread_wake) = (synced.clone(), Arc::clone(&wake));
        let thread = std::thread::Builder::new()
            .name("zabflow-sync".to_owned())
            .spawn(move || {
                let result = run(&thread_log, &thread_queue, &thread_synced, thread_wake.as_ref());
                thread_queue.end();
                result
            })
            .map_err(|error| Error::io("spawn the sync thread", &error))?;
        Ok(SyncProcessor {
            queue,
            log: Some(log),
            synced,
            wake,
            inline_txns_max: 0,
            inline: Vec::new(),
            inline_batches: Vec::new(),
            thread: Some(thread),
        })
    }

    /// Queues a batch; blocks while the queue is full. Dropped if the thread has stopped
    /// (after a failure it has already reported). Nothing is written before [`kick`].
    ///
    /// # Panics
    /// If the processor was stopped.
    ///
    /// [`kick`]: SyncProcessor::kick
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

    /// Whether [`SyncProcessor::kick`] may append small groups inline (not by default;
    /// see the module docs for who should).
    pub fn set_inline(&mut self, allowed: bool) {
        self.inline_txns_max = if allowed { SYNC_INLINE_TXNS_MAX } else { 0 };
    }

    /// Gets what was queued since the last kick written: a few txns while no append runs
    /// are appended here and now (the caller blocks for the fsync), anything else is handed
    /// to the thread. Call it at the end of each event-loop pass, once replies and peer
    /// messages are out.
    ///
    /// # Errors
    /// The inline append's log error (also reported on `synced`).
    pub fn kick(&mut self) -> Result<()> {
        let Some(log) = &self.log else { return Ok(()) };
        if !self.queue.kick(&mut self.inline, self.inline_txns_max) {
            return Ok(());
        }
        self.inline_batches.extend(self.inline.drain(..).filter_map(|command| match command {
            Command::Batch(batch) => Some(batch),
            Command::TruncateBefore(_) => None,
        }));
        let mut log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = commit(&mut log, &mut self.inline_batches, &self.synced);
        drop(log);
        self.queue.inline_done();
        if let Err(error) = &result {
            let _ = self.synced.send(Synced::Failed(error.clone()));
        }
        (self.wake)();
        result
    }

    /// Drains the queue, syncs the log and joins the thread.
    ///
    /// # Errors
    /// The thread's final sync error.
    pub fn stop(&mut self) -> Result<()> {
        self.queue.close();
        self.log = None;
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
    log: &Mutex<TxnLog>,
    queue: &Queue,
    synced: &Sender<Synced>,
    wake: &(dyn Fn() + Send + Sync),
) -> Result<()> {
    let mut commands: Vec<Command> = Vec::new();
    let mut group: Vec<SyncBatch> = Vec::new();
    let lock = || log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    while queue.take_group(&mut commands).is_some() {
        let mut truncate = None;
        for command in commands.drain(..) {
            match command {
                Command::Batch(batch) => group.push(batch),
                Command::TruncateBefore(offset) => truncate = Some(offset),
            }
        }
        if let Err(error) = commit(&mut lock(), &mut group, synced) {
            let _ = synced.send(Synced::Failed(error.clone()));
            wake();
            return Err(error);
        }
        wake();
        if let Some(offset) = truncate {
            if let Err(error) = lock().truncate_before(offset) {
                eprintln!("zabflow node: purge of the txn log failed: {error}");
            }
        }
    }
    lock().sync()
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

    #[test]
    fn small_groups_are_appended_by_the_kicker_and_large_ones_by_the_thread_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = TxnLog::open(dir.path(), false).unwrap();
        let (sender, receiver) = crossbeam_channel::unbounded();
        let mut processor = SyncProcessor::start(log, sender, Arc::new(|| {})).unwrap();
        processor.set_inline(true);
        // Wait until the thread parks: only then may the loop append inline.
        while !processor.queue.lock().taker_waiting {
            std::thread::yield_now();
        }
        processor.submit(SyncBatch { records: vec![record(1), record(2)], last_zxid: 2 });
        assert!(receiver.try_recv().is_err(), "nothing is written before the kick");
        processor.kick().unwrap();
        assert!(
            matches!(receiver.try_recv(), Ok(Synced::Durable { last_zxid: 2, .. })),
            "a small group is durable when kick returns"
        );
        // Alternate large groups (the thread) and small ones (inline when it is idle).
        let mut zxid = 2;
        for round in 0..20 {
            let size = if round % 2 == 0 { SYNC_INLINE_TXNS_MAX + 1 } else { 1 };
            let records = (zxid + 1..=zxid + size as i64).map(record).collect();
            zxid += size as i64;
            processor.submit(SyncBatch { records, last_zxid: zxid });
            processor.kick().unwrap();
        }
        processor.stop().unwrap();
        let last = receiver.try_iter().fold(2, |last, synced| {
            let Synced::Durable { last_zxid, .. } = synced else { panic!("{synced:?}") };
            assert!(last_zxid > last, "groups in zxid order: {last_zxid} after {last}");
            last_zxid
        });
        assert_eq!(last, zxid);
        let mut log = TxnLog::open(dir.path(), false).unwrap();
        let mut zxids = Vec::new();
        log.replay(0, 0, |header, _| zxids.push(header.zxid)).unwrap();
        assert_eq!(zxids, (1..=zxid).collect::<Vec<_>>());
    }
}
