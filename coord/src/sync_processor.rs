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

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::constants::{SYNC_BATCH_TXNS_MAX, SYNC_QUEUE_BATCHES_MAX};
use crate::error::{Error, Result};
use crate::txn_log::TxnLog;

/// The encoded txns of one event-loop pass, in zxid order.
#[derive(Debug, Default)]
pub struct SyncBatch {
    pub records: Vec<Vec<u8>>,
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

/// The loop's handle on the sync thread.
pub struct SyncProcessor {
    commands: Option<Sender<Command>>,
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
        let (commands, receiver) = bounded(SYNC_QUEUE_BATCHES_MAX);
        let thread = std::thread::Builder::new()
            .name("zabflow-sync".to_owned())
            .spawn(move || run(log, &receiver, &synced, wake.as_ref()))
            .map_err(|error| Error::io("spawn the sync thread", &error))?;
        Ok(SyncProcessor { commands: Some(commands), thread: Some(thread) })
    }

    /// Queues a batch; blocks while the queue is full.
    ///
    /// # Panics
    /// If the thread has stopped (it only stops on shutdown or after reporting a failure).
    pub fn submit(&self, batch: SyncBatch) {
        let commands = self.commands.as_ref().expect("sync thread running");
        if commands.send(Command::Batch(batch)).is_err() {
            // The thread stopped after a failure it has already reported.
        }
    }

    /// Asks the thread to purge log segments below `offset`.
    pub fn truncate_before(&self, offset: u64) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(Command::TruncateBefore(offset));
        }
    }

    /// Drains the queue, syncs the log and joins the thread.
    ///
    /// # Errors
    /// The thread's final sync error.
    pub fn stop(&mut self) -> Result<()> {
        self.commands.take();
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
    commands: &Receiver<Command>,
    synced: &Sender<Synced>,
    wake: &(dyn Fn() + Send + Sync),
) -> Result<()> {
    let mut group: Vec<SyncBatch> = Vec::new();
    while let Ok(first) = commands.recv() {
        let mut txns = 0;
        let mut truncate = None;
        let mut push =
            |command: Command, group: &mut Vec<SyncBatch>, txns: &mut usize| match command {
                Command::Batch(batch) => {
                    *txns += batch.records.len();
                    group.push(batch);
                }
                Command::TruncateBefore(offset) => truncate = Some(offset),
            };
        push(first, &mut group, &mut txns);
        while txns < SYNC_BATCH_TXNS_MAX {
            let Ok(command) = commands.try_recv() else { break };
            push(command, &mut group, &mut txns);
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
        group.iter().flat_map(|b| b.records.iter().map(Vec::as_slice)).collect();
    let range = log.append(&records, last_zxid)?;
    group.clear();
    let _ = synced.send(Synced::Durable { last_zxid, offset_end: range.end });
    Ok(())
}
