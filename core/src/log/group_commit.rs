//! Group commit: many threads appending to one log, one fdatasync per group.
//!
//! [`Log::into_group_commit`] moves the log onto a dedicated writer thread and returns a
//! [`LogAppender`] (`Clone + Send + Sync`). Each `append` copies its records into a request
//! on a bounded queue ([`GROUP_COMMIT_QUEUE_DEPTH`]; a full queue blocks the appender:
//! backpressure) and waits for its reply. The writer takes one request, then every request
//! already queued (up to [`GROUP_COMMIT_REQUESTS_MAX`] requests or
//! [`GROUP_COMMIT_BYTES_MAX`] payload bytes), appends them all as one batch (one write
//! submission, one fdatasync) and then answers each request with its own offsets.
//! Requests that arrive while that fsync runs wait in the queue and form the next group.
//!
//! If the group's write fails, every request of the group gets the error and the log is
//! rolled back as for any failed append; later groups proceed. When the last appender is
//! dropped the writer thread ends and its `JoinHandle` returns the `Log`.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::reader::LogReader;
use super::segmented_log::{Counters, Log, LogStats};
use crate::constants::{
    GROUP_COMMIT_BYTES_MAX, GROUP_COMMIT_QUEUE_DEPTH, GROUP_COMMIT_REQUESTS_MAX,
};
use crate::error::Error;

/// One appender's batch, copied: the records back to back, and where each ends.
struct Request {
    payload: Vec<u8>,
    ends: Vec<usize>,
    reply: Sender<Result<Range<u64>, Error>>,
}

impl Request {
    fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| &self.payload[start..end])
    }
}

/// A handle for appending to a group-committed log from any thread.
#[derive(Clone)]
pub struct LogAppender {
    requests: Sender<Request>,
    reader: LogReader,
    counters: Arc<Counters>,
    record_bytes_max: usize,
}

impl Log {
    /// Moves the log onto a writer thread that group-commits the appends of every
    /// [`LogAppender`] clone. The handle returns the log once all appenders are dropped.
    ///
    /// # Errors
    /// `Io` if the thread cannot be spawned.
    pub fn into_group_commit(self) -> Result<(LogAppender, JoinHandle<Log>), Error> {
        let (sender, receiver) = bounded(GROUP_COMMIT_QUEUE_DEPTH);
        let appender = LogAppender {
            requests: sender,
            reader: self.reader(),
            counters: self.counters(),
            record_bytes_max: self.record_bytes_max(),
        };
        let handle = std::thread::Builder::new()
            .name("zabflow-log-writer".to_string())
            .spawn(move || run_writer(self, receiver))
            .map_err(|e| Error::io("spawn the group-commit writer", e))?;
        Ok((appender, handle))
    }
}

impl LogAppender {
    /// Appends `batch` as part of the next group and blocks until the group is written
    /// (and synced, with `Durable`). Returns the batch's offsets.
    ///
    /// # Errors
    /// `RecordTooLarge`; the group's `Io` error; `WriterStopped` if the writer is gone.
    pub fn append(&self, batch: &[&[u8]]) -> Result<Range<u64>, Error> {
        let limit = self.record_bytes_max;
        if let Some(record) = batch.iter().find(|record| record.len() > limit) {
            return Err(Error::RecordTooLarge { bytes: record.len(), limit });
        }
        let total: usize = batch.iter().map(|record| record.len()).sum();
        let mut payload = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(batch.len());
        for record in batch {
            payload.extend_from_slice(record);
            ends.push(payload.len());
        }
        let (reply, replies) = bounded(1);
        let request = Request { payload, ends, reply };
        self.requests.send(request).map_err(|_| Error::WriterStopped)?;
        replies.recv().map_err(|_| Error::WriterStopped)?
    }

    /// A reader of the log.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// The log's counters: `fsyncs` per second over a run is the group-commit rate.
    pub fn stats(&self) -> LogStats {
        self.counters.snapshot()
    }
}

fn run_writer(mut log: Log, requests: Receiver<Request>) -> Log {
    let mut group: Vec<Request> = Vec::with_capacity(GROUP_COMMIT_REQUESTS_MAX);
    while let Ok(first) = requests.recv() {
        let mut bytes = first.payload.len();
        group.push(first);
        while group.len() < GROUP_COMMIT_REQUESTS_MAX && bytes < GROUP_COMMIT_BYTES_MAX {
            let Ok(request) = requests.try_recv() else { break };
            bytes += request.payload.len();
            group.push(request);
        }
        commit_group(&mut log, &mut group);
        assert!(group.is_empty(), "every request of a group is answered");
    }
    log
}

/// Appends every request of `group` as one batch and answers each request.
fn commit_group(log: &mut Log, group: &mut Vec<Request>) {
    let records: Vec<&[u8]> = group.iter().flat_map(|request| request.records()).collect();
    let result = log.append(&records);
    drop(records);
    match result {
        Ok(range) => {
            log.counters().requests.fetch_add(group.len() as u64, Ordering::Relaxed);
            let mut start = range.start;
            for request in group.drain(..) {
                let end = start + request.ends.len() as u64;
                // An appender that gave up waiting is not an error of the log.
                let _ = request.reply.send(Ok(start..end));
                start = end;
            }
            assert_eq!(start, range.end, "group offsets add up");
        }
        Err(error) => {
            for request in group.drain(..) {
                let _ = request.reply.send(Err(error.duplicate()));
            }
        }
    }
}
