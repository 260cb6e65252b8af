//! Group commit: many threads appending to one log, one fdatasync per group.
//!
//! [`Log::into_group_commit`] shares the log between every clone of a [`LogAppender`]
//! (`Clone + Send + Sync`) with the leader/follower scheme of database write-ahead logs.
//! An appender copies its records into the *pending* batch under a mutex (reused buffers:
//! no allocation per request) and parks. If no flush is in progress it becomes the
//! *leader* instead: it swaps the pending batch out, releases the mutex, appends the whole
//! batch with one `Log::append` (one write submission, one fdatasync), and answers every
//! request of the group with its own offsets (group base + the request's record index).
//! Appenders that arrive during the flush fill the next pending batch; when the flush ends
//! the leader hands the log to the first of them (the next leader) *before* it wakes its own
//! group, so the disk idles only for one wake-up between two fsyncs.
//!
//! Why not a writer thread: a dedicated writer costs two extra context switches per group
//! (appender → writer → appender) and a channel, a reply channel and two buffers per
//! request. Here a request costs one mutex section, one park and one targeted unpark: each
//! waiter has a reusable, thread-local reply slot, so a finished group wakes exactly its own
//! waiters and never the next group's.
//!
//! Bounds: the pending batch holds at most [`GROUP_COMMIT_PENDING_BYTES_MAX`] frame bytes and
//! [`GROUP_COMMIT_REQUESTS_MAX`] requests; a request that does not fit waits until the batch
//! is taken (backpressure). A request alone is always admitted, so a large record is never
//! refused for the bound. At most [`GROUP_COMMIT_BATCHES`] batches are kept for reuse.
//!
//! If a group's write fails, every request of that group gets the error and the log is
//! rolled back as for any failed append; nothing acknowledged is lost and later groups
//! proceed. If a leader panics inside the log, every waiting and later request gets
//! `WriterStopped`. When the last appender is dropped, the `JoinHandle` (of a small thread
//! that only waits for that) returns the `Log`.

use std::mem;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};

use super::frame::frame_bytes;
use super::reader::LogReader;
use super::segmented_log::{Counters, Log, LogStats};
use crate::constants::{
    GROUP_COMMIT_BATCHES, GROUP_COMMIT_PENDING_BYTES_MAX, GROUP_COMMIT_REQUESTS_MAX,
};
use crate::error::Error;

/// A handle for appending to a group-committed log from any thread.
pub struct LogAppender {
    shared: Arc<Shared>,
    reader: LogReader,
}

/// What every appender (and the thread that returns the log) shares.
struct Shared {
    state: Mutex<State>,
    /// Appenders waiting for room in the pending batch.
    room: Condvar,
    /// The owner thread waiting for the last appender to go.
    closed: Condvar,
    counters: Arc<Counters>,
    record_bytes_max: usize,
}

struct State {
    /// `Some` while no flush is in progress: whoever takes it leads.
    log: Option<Log>,
    pending: Batch,
    /// Sequence number of the pending group; it grows by one each time a leader takes it.
    pending_group: u64,
    spare_batches: Vec<Batch>,
    /// Appenders blocked on `room`, so a leader notifies only when someone waits.
    room_waiters: usize,
    /// Live `LogAppender` clones.
    appenders: usize,
    /// A leader panicked inside the log: the log is gone.
    stopped: bool,
}

/// Requests copied back to back: the records' payloads, where each record ends, and who
/// waits for which records.
struct Batch {
    payload: Vec<u8>,
    record_ends: Vec<usize>,
    waiters: Vec<Waiter>,
    /// Frame bytes of the records (payload plus frame headers), the measure of the bound.
    frame_bytes: u64,
    /// Slices for `Log::append`, kept only for their allocation (always empty at rest).
    records: Vec<&'static [u8]>,
}

/// One request in a batch: its reply slot and its records' indexes in the batch.
struct Waiter {
    reply: Arc<Reply>,
    records: Range<usize>,
}

/// A thread's reply slot, reused for every request of that thread (a thread has at most one
/// request in flight: `append` blocks).
struct Reply {
    signal: Mutex<Signal>,
    thread: Thread,
}

enum Signal {
    Waiting,
    /// A hint that the log is idle and this request may be pending: try to lead.
    Lead,
    Done(Result<Range<u64>, Error>),
}

thread_local! {
    static REPLY: Arc<Reply> = Arc::new(Reply {
        signal: Mutex::new(Signal::Waiting),
        thread: std::thread::current(),
    });
}

impl Log {
    /// Shares the log between every [`LogAppender`] clone, which group-commit their appends.
    /// The handle returns the log once all appenders are dropped.
    ///
    /// # Errors
    /// `Io` if the thread that returns the log cannot be spawned.
    pub fn into_group_commit(self) -> Result<(LogAppender, JoinHandle<Log>), Error> {
        let reader = self.reader();
        let counters = self.counters();
        let record_bytes_max = self.record_bytes_max();
        let state = State {
            log: Some(self),
            pending: Batch::new(),
            pending_group: 0,
            spare_batches: (1..GROUP_COMMIT_BATCHES).map(|_| Batch::new()).collect(),
            room_waiters: 0,
            appenders: 1,
            stopped: false,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            room: Condvar::new(),
            closed: Condvar::new(),
            counters,
            record_bytes_max,
        });
        let owner = shared.clone();
        let handle = std::thread::Builder::new()
            .name("zabflow-log-owner".to_string())
            .spawn(move || owner.wait_until_closed())
            .map_err(|e| Error::io("spawn the group-commit owner thread", e))?;
        Ok((LogAppender { shared, reader }, handle))
    }
}

impl LogAppender {
    /// Appends `batch` as part of the next group and blocks until the group is written
    /// (and synced, with `Durable`). Returns the batch's offsets.
    ///
    /// # Errors
    /// `RecordTooLarge` (nothing queued); the group's `Io` error; `WriterStopped` if a
    /// leader panicked inside the log.
    pub fn append(&self, batch: &[&[u8]]) -> Result<Range<u64>, Error> {
        let limit = self.shared.record_bytes_max;
        if let Some(record) = batch.iter().find(|record| record.len() > limit) {
            return Err(Error::RecordTooLarge { bytes: record.len(), limit });
        }
        let reply = REPLY.with(Arc::clone);
        *reply.signal.lock().expect("reply lock poisoned") = Signal::Waiting;
        let group = self.shared.enqueue(batch, &reply)?;
        loop {
            match reply.take_signal() {
                Signal::Waiting => std::thread::park(),
                Signal::Lead => self.shared.lead_if_pending(group, &reply),
                Signal::Done(result) => return result,
            }
        }
    }

    /// A reader of the log.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// The log's counters: `fsyncs` per second over a run is the group-commit rate.
    pub fn stats(&self) -> LogStats {
        self.shared.counters.snapshot()
    }
}

impl Clone for LogAppender {
    fn clone(&self) -> LogAppender {
        self.shared.lock().appenders += 1;
        LogAppender { shared: self.shared.clone(), reader: self.reader.clone() }
    }
}

impl Drop for LogAppender {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        assert!(state.appenders > 0, "appender count underflow");
        state.appenders -= 1;
        if state.appenders == 0 {
            self.shared.closed.notify_all();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("group-commit state poisoned")
    }

    /// Copies `records` into the pending batch (waiting for room) and leads the group if no
    /// flush is in progress. Returns the sequence number of the group joined.
    fn enqueue(&self, records: &[&[u8]], reply: &Arc<Reply>) -> Result<u64, Error> {
        let request_frame_bytes: u64 = records.iter().map(|record| frame_bytes(record.len())).sum();
        let mut state = self.lock();
        loop {
            if state.stopped {
                return Err(Error::WriterStopped);
            }
            if state.pending.admits(request_frame_bytes) {
                break;
            }
            state.room_waiters += 1;
            state = self.room.wait(state).expect("group-commit state poisoned");
            state.room_waiters -= 1;
        }
        state.pending.push(records, request_frame_bytes, reply.clone());
        let group = state.pending_group;
        if state.log.is_some() {
            self.lead(state);
        }
        Ok(group)
    }

    /// Leads the pending group if the log is idle and `group` is still pending (a `Lead`
    /// signal is only a hint: another arrival may have led the group meanwhile).
    fn lead_if_pending(&self, group: u64, reply: &Arc<Reply>) {
        let state = self.lock();
        if state.stopped {
            reply.signal(Signal::Done(Err(Error::WriterStopped)));
        } else if state.pending_group == group && state.log.is_some() {
            self.lead(state);
        }
    }

    /// Takes the log and the pending batch, appends the batch, hands the log to the next
    /// group's leader and answers every request of this group (the caller's among them).
    fn lead(&self, mut state: MutexGuard<'_, State>) {
        let mut log = state.log.take().expect("the leader takes an idle log");
        assert!(!state.pending.waiters.is_empty(), "a leader leads a non-empty group");
        let spare = state.spare_batches.pop().unwrap_or_else(Batch::new);
        let mut batch = mem::replace(&mut state.pending, spare);
        state.pending_group += 1;
        if state.room_waiters > 0 {
            self.room.notify_all();
        }
        drop(state);

        let outcome = panic::catch_unwind(AssertUnwindSafe(|| batch.append_to(&mut log)));
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(payload) => {
                self.stop(&mut batch);
                panic::resume_unwind(payload);
            }
        };
        if outcome.is_ok() {
            let requests = batch.waiters.len() as u64;
            self.counters.requests.fetch_add(requests, Ordering::Relaxed);
        }

        let mut state = self.lock();
        state.log = Some(log);
        let next_leader = state.pending.waiters.first().map(|waiter| waiter.reply.clone());
        drop(state);
        if let Some(next_leader) = next_leader {
            next_leader.hint_lead();
        }
        batch.answer(outcome);
        batch.clear();
        let mut state = self.lock();
        if state.spare_batches.len() < GROUP_COMMIT_BATCHES {
            state.spare_batches.push(batch);
        }
    }

    /// After a leader panicked inside the log: fails the group and every pending request,
    /// and every later one.
    fn stop(&self, batch: &mut Batch) {
        batch.answer(Err(Error::WriterStopped));
        let mut state = self.lock();
        state.stopped = true;
        let mut pending = mem::replace(&mut state.pending, Batch::empty());
        self.room.notify_all();
        self.closed.notify_all();
        drop(state);
        pending.answer(Err(Error::WriterStopped));
    }

    /// The owner thread: returns the log once every appender is gone.
    fn wait_until_closed(&self) -> Log {
        let mut state = self.lock();
        while state.appenders > 0 && !state.stopped {
            state = self.closed.wait(state).expect("group-commit state poisoned");
        }
        assert!(state.pending.waiters.is_empty(), "no request outlives every appender");
        state.log.take().expect("a group-commit leader panicked inside the log: it is lost")
    }
}

impl Reply {
    fn take_signal(&self) -> Signal {
        let mut signal = self.signal.lock().expect("reply lock poisoned");
        match *signal {
            Signal::Waiting => Signal::Waiting,
            _ => mem::replace(&mut *signal, Signal::Waiting),
        }
    }

    fn signal(&self, new: Signal) {
        *self.signal.lock().expect("reply lock poisoned") = new;
        self.thread.unpark();
    }

    /// Asks a waiter to lead, unless it already has its answer.
    fn hint_lead(&self) {
        let mut signal = self.signal.lock().expect("reply lock poisoned");
        if matches!(*signal, Signal::Waiting) {
            *signal = Signal::Lead;
            drop(signal);
            self.thread.unpark();
        }
    }
}

impl Batch {
    /// A batch with its buffers allocated up front (the hot path then never allocates).
    fn new() -> Batch {
        Batch {
            payload: Vec::with_capacity(GROUP_COMMIT_PENDING_BYTES_MAX),
            record_ends: Vec::with_capacity(GROUP_COMMIT_REQUESTS_MAX),
            waiters: Vec::with_capacity(GROUP_COMMIT_REQUESTS_MAX),
            frame_bytes: 0,
            records: Vec::with_capacity(GROUP_COMMIT_REQUESTS_MAX),
        }
    }

    /// A placeholder without buffers, for a stopped log.
    fn empty() -> Batch {
        Batch {
            payload: Vec::new(),
            record_ends: Vec::new(),
            waiters: Vec::new(),
            frame_bytes: 0,
            records: Vec::new(),
        }
    }

    /// Whether a request of `request_frame_bytes` may join. An empty batch takes any one.
    fn admits(&self, request_frame_bytes: u64) -> bool {
        self.waiters.is_empty()
            || (self.waiters.len() < GROUP_COMMIT_REQUESTS_MAX
                && self.frame_bytes + request_frame_bytes <= GROUP_COMMIT_PENDING_BYTES_MAX as u64)
    }

    fn push(&mut self, records: &[&[u8]], request_frame_bytes: u64, reply: Arc<Reply>) {
        let first = self.record_ends.len();
        for record in records {
            self.payload.extend_from_slice(record);
            self.record_ends.push(self.payload.len());
        }
        self.frame_bytes += request_frame_bytes;
        self.waiters.push(Waiter { reply, records: first..self.record_ends.len() });
    }

    /// Appends every record of the batch as one `Log::append`: one group.
    fn append_to(&mut self, log: &mut Log) -> Result<Range<u64>, Error> {
        let mut records = recycle(mem::take(&mut self.records));
        let mut start = 0;
        for &end in &self.record_ends {
            records.push(&self.payload[start..end]);
            start = end;
        }
        let result = log.append(&records);
        self.records = recycle(records);
        if let Ok(range) = &result {
            assert_eq!(range.end - range.start, self.record_ends.len() as u64, "group offsets");
        }
        result
    }

    /// Gives every waiter its offsets (group base + its record indexes) or the error.
    fn answer(&mut self, outcome: Result<Range<u64>, Error>) {
        for waiter in self.waiters.drain(..) {
            let result = match &outcome {
                Ok(range) => {
                    let start = range.start + waiter.records.start as u64;
                    Ok(start..range.start + waiter.records.end as u64)
                }
                Err(error) => Err(error.duplicate()),
            };
            waiter.reply.signal(Signal::Done(result));
        }
    }

    fn clear(&mut self) {
        assert!(self.waiters.is_empty(), "every request of a batch is answered");
        self.payload.clear();
        self.payload.shrink_to(GROUP_COMMIT_PENDING_BYTES_MAX);
        self.record_ends.clear();
        self.frame_bytes = 0;
    }
}

/// Empties `slices` and returns its allocation typed for another lifetime (the standard
/// library collects a `vec::IntoIter` mapped to an equally sized type in place).
fn recycle<'a, 'b>(mut slices: Vec<&'a [u8]>) -> Vec<&'b [u8]> {
    slices.clear();
    slices.into_iter().map(|_| -> &'b [u8] { unreachable!("the vector is empty") }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Durability, LogOptions};

    fn open(dir: &std::path::Path, durability: Durability) -> Log {
        let options = LogOptions { segment_bytes: 64 << 10, durability, ..LogOptions::default() };
        Log::open(dir, options).expect("open")
    }

    #[test]
    fn recycle_keeps_the_allocation() {
        let bytes = [1_u8, 2, 3];
        let mut slices: Vec<&[u8]> = Vec::with_capacity(17);
        slices.push(&bytes);
        let recycled: Vec<&[u8]> = recycle(slices);
        assert!(recycled.is_empty());
        assert_eq!(recycled.capacity(), 17);
    }

    #[test]
    fn offsets_are_exact_and_every_request_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (appender, owner) = open(dir.path(), Durability::Buffered).into_group_commit().unwrap();
        let threads: Vec<_> = (0..8_u8)
            .map(|thread| {
                let appender = appender.clone();
                std::thread::spawn(move || {
                    let mut ranges = Vec::new();
                    for round in 0..200_u32 {
                        let count = (round % 3) as usize; // 0, 1 or 2 records
                        let record = [thread; 7];
                        let batch = vec![&record[..]; count];
                        let range = appender.append(&batch).expect("append");
                        assert_eq!(range.end - range.start, count as u64);
                        ranges.push((range, thread));
                    }
                    ranges
                })
            })
            .collect();
        let reader = appender.reader();
        let mut covered = 0;
        for thread in threads {
            for (range, writer) in thread.join().expect("appender thread") {
                covered += range.end - range.start;
                for offset in range {
                    assert_eq!(&*reader.read(offset).unwrap().unwrap(), &[writer; 7]);
                }
            }
        }
        let stats = appender.stats();
        assert_eq!((stats.requests, stats.records), (1600, covered));
        drop(appender);
        assert_eq!(owner.join().expect("owner thread").next_offset(), covered);
    }

    #[test]
    fn too_large_records_fail_only_their_own_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), Durability::Durable);
        let limit = log.record_bytes_max();
        let (appender, owner) = log.into_group_commit().unwrap();
        let threads: Vec<_> = (0..4_usize)
            .map(|thread| {
                let appender = appender.clone();
                std::thread::spawn(move || {
                    let huge = vec![0_u8; limit + 1];
                    for round in 0..50 {
                        if (round + thread) % 5 == 0 {
                            let error = appender.append(&[b"ok", &huge]).unwrap_err();
                            assert!(matches!(error, Error::RecordTooLarge { .. }), "{error}");
                        } else {
                            appender.append(&[b"ok"]).expect("a valid request");
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("appender thread");
        }
        drop(appender);
        let log = owner.join().expect("owner thread");
        assert_eq!(log.next_offset(), 160, "exactly the valid records were written");
    }

    #[test]
    fn requests_larger_than_the_pending_bound_are_admitted_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = LogOptions { segment_bytes: 8 << 20, ..LogOptions::default() };
        let log = Log::open(dir.path(), options).expect("open");
        let (appender, owner) = log.into_group_commit().unwrap();
        let big = vec![0x5a_u8; GROUP_COMMIT_PENDING_BYTES_MAX / 2 + 1];
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (appender, big) = (appender.clone(), big.clone());
                std::thread::spawn(move || {
                    for _ in 0..4 {
                        let range = appender.append(&[&big, &big]).expect("append");
                        assert_eq!(range.end - range.start, 2);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("appender thread");
        }
        assert!(appender.stats().fsyncs >= 12, "each request exceeds the bound: one group each");
        drop(appender);
        assert_eq!(owner.join().expect("owner thread").next_offset(), 24);
    }
}
