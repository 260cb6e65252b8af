//! The segmented log as a source and a sink: one log per partition, a directory each.
//!
//! ```text
//! <dir>/partition-<i>/      a zabflow_core::log directory (segments, LOCK)
//! payload = encode(record)  (the record's LogRecord encoding, fixed-width little endian)
//! ```
//!
//! A [`LogSink`] on shard `i` appends to `<dir>/partition-<i>`: records are encoded into a
//! reused buffer and appended in batches ([`LOG_SINK_BATCH_RECORDS`] records or
//! [`LOG_SINK_BATCH_BYTES`] bytes, one write submission each), buffered, and synced once in
//! `finish`, which returns the first error if any. A [`LogSource`] reads the records of
//! `Stamped<T>` back (the event timestamp travels in the payload): partition `j` of the log
//! directory goes to shard `j mod shards`, so a log written by N shards is read by N shards
//! one partition each, as the design asks. The source reads what the logs hold when the
//! job starts and then ends (a bounded source); a shard with several partitions merges them
//! by timestamp. In a checkpointed job the sink's output is committed through a commit file
//! beside each partition and rolled back on restore (see
//! [`output_commit`](super::output_commit)); the source reports and seeks per-partition
//! offsets.

use super::constants::{LOG_SINK_BATCH_BYTES, LOG_SINK_BATCH_RECORDS};
use super::generator::Event;
use super::item::Stamped;
use super::output_commit::{self, SinkCommit};
use super::sink::Sink;
use super::source::{Partition, Source, SourceStatus};
use super::window::WindowResult;
use crate::coordinator::{SinkPosition, SourceOffset};
use crate::log::{Durability, Log, LogIter, LogOptions, LogReader};
use crate::Error;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// A record with a binary encoding for the log.
pub trait LogRecord: Sized {
    /// Appends the encoding.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one value from the front of `bytes`, advancing it; `None` if too short.
    fn decode(bytes: &mut &[u8]) -> Option<Self>;
}

macro_rules! fixed_width_record {
    ($($type:ty),*) => {$(
        impl LogRecord for $type {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &mut &[u8]) -> Option<Self> {
                let (head, rest) = bytes.split_first_chunk()?;
                *bytes = rest;
                Some(<$type>::from_le_bytes(*head))
            }
        }
    )*};
}

fixed_width_record!(u32, u64, i64, f64);

impl LogRecord for Event {
    fn encode(&self, out: &mut Vec<u8>) {
        self.key.encode(out);
        self.value.encode(out);
    }
    fn decode(bytes: &mut &[u8]) -> Option<Self> {
        Some(Event { key: u64::decode(bytes)?, value: u64::decode(bytes)? })
    }
}

impl<T: LogRecord> LogRecord for Stamped<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.timestamp.encode(out);
        self.record.encode(out);
    }
    fn decode(bytes: &mut &[u8]) -> Option<Self> {
        Some(Stamped { timestamp: u64::decode(bytes)?, record: T::decode(bytes)? })
    }
}

impl<K: LogRecord, V: LogRecord> LogRecord for WindowResult<K, V> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.key.encode(out);
        self.window_start.encode(out);
        self.window_end.encode(out);
        self.value.encode(out);
    }
    fn decode(bytes: &mut &[u8]) -> Option<Self> {
        Some(WindowResult {
            key: K::decode(bytes)?,
            window_start: u64::decode(bytes)?,
            window_end: u64::decode(bytes)?,
            value: V::decode(bytes)?,
        })
    }
}

/// The directory of partition `index` under `dir`.
pub fn partition_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("partition-{index}"))
}

/// What a log sink wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSinkReport {
    pub dir: PathBuf,
    pub records: u64,
}

/// Appends a shard's records to its partition's log.
pub struct LogSink<R> {
    /// The partition's directory.
    dir: PathBuf,
    shard: usize,
    log: Result<Log, Error>,
    buffer: Vec<u8>,
    /// End offset in `buffer` of each pending record.
    ends: Vec<usize>,
    records: u64,
    record: PhantomData<fn(&R)>,
}

impl<R: LogRecord> LogSink<R> {
    /// The sink of shard `shard`: opens (or creates) `<dir>/partition-<shard>` with
    /// buffered appends. An error opening it is reported by `finish`.
    pub fn open(dir: &Path, shard: usize) -> LogSink<R> {
        let dir = partition_dir(dir, shard);
        let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
        LogSink {
            log: Log::open(&dir, options),
            dir,
            shard,
            buffer: Vec::with_capacity(LOG_SINK_BATCH_BYTES),
            ends: Vec::with_capacity(LOG_SINK_BATCH_RECORDS),
            records: 0,
            record: PhantomData,
        }
    }

    fn append_pending(&mut self) {
        if self.ends.is_empty() {
            return;
        }
        if let Ok(log) = &mut self.log {
            let mut start = 0;
            let batch: Vec<&[u8]> = self
                .ends
                .iter()
                .map(|&end| {
                    let payload = &self.buffer[start..end];
                    start = end;
                    payload
                })
                .collect();
            if let Err(error) = log.append(&batch) {
                self.log = Err(error);
            }
        }
        self.buffer.clear();
        self.ends.clear();
    }
}

impl<R> LogSink<R> {
    /// The output directory (the parent of the partition directories).
    fn output_dir(&self) -> &Path {
        self.dir.parent().expect("a partition directory has a parent")
    }

    fn log_mut(&mut self) -> Result<&mut Log, Error> {
        self.log.as_mut().map_err(|error| error.duplicate())
    }
}

impl<R: LogRecord + Send + 'static> Sink<R> for LogSink<R> {
    type Output = Result<LogSinkReport, Error>;

    fn write(&mut self, record: &R) {
        record.encode(&mut self.buffer);
        self.ends.push(self.buffer.len());
        self.records += 1;
        if self.ends.len() >= LOG_SINK_BATCH_RECORDS || self.buffer.len() >= LOG_SINK_BATCH_BYTES {
            self.append_pending();
        }
    }

    fn finish(mut self) -> Result<LogSinkReport, Error> {
        self.append_pending();
        let mut log = self.log?;
        log.sync()?;
        Ok(LogSinkReport { dir: self.dir, records: self.records })
    }

    /// Appends what is pending, fsyncs the partition and reports its next offset.
    fn prepare_commit(&mut self) -> Result<Option<SinkCommit>, Error> {
        self.append_pending();
        let log = self.log_mut()?;
        log.sync()?;
        let end = log.next_offset();
        let index = self.shard;
        let commit_file = output_commit::log_commit_file(self.output_dir(), index);
        let position = SinkPosition { partition: index as u32, offset: end };
        Ok(Some(SinkCommit { position, commit_file }))
    }

    /// Truncates the partition after the checkpoint's end (and, on the last shard, the
    /// partitions a run on more shards left) and commits that end.
    fn restore(
        &mut self,
        epoch: u64,
        positions: &[SinkPosition],
        partition: Partition,
    ) -> Result<(), Error> {
        assert_eq!(partition.index, self.shard, "a sink restores its own partition");
        assert!(self.ends.is_empty() && self.records == 0, "restore before the first write");
        let dir = self.output_dir().to_owned();
        let own = positions.iter().find(|p| p.partition as usize == self.shard);
        let end = own.map_or(0, |position| position.offset);
        output_commit::roll_back_log(&dir, self.shard, Some(self.log_mut()?), epoch, end)?;
        if partition.index + 1 == partition.count {
            let exists = |index| partition_dir(&dir, index).is_dir();
            for (index, end) in output_commit::extra_partitions(positions, partition.count, exists)
            {
                output_commit::roll_back_log(&dir, index, None, epoch, end)?;
            }
        }
        Ok(())
    }
}

/// The partitioned logs under one directory, opened for reading.
#[derive(Clone)]
pub struct LogPartitions {
    readers: Vec<LogReader>,
}

impl LogPartitions {
    /// Opens `<dir>/partition-0`, `partition-1`, … (as many as exist, at least one).
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] if `dir` holds no partition; what `Log::open` returns for
    /// a partition that cannot be opened (locked by a writer, corrupt).
    pub fn open(dir: &Path) -> Result<LogPartitions, Error> {
        let mut readers = Vec::new();
        while partition_dir(dir, readers.len()).is_dir() {
            let path = partition_dir(dir, readers.len());
            let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
            readers.push(Log::open(&path, options)?.reader());
        }
        if readers.is_empty() {
            let message = format!("{} holds no partition-0 directory", dir.display());
            return Err(Error::InvalidOptions(message));
        }
        Ok(LogPartitions { readers })
    }

    /// Partitions found.
    pub fn count(&self) -> usize {
        self.readers.len()
    }

    /// The source of shard `partition.index`: the partitions `j` with
    /// `j mod partition.count == partition.index`, merged by timestamp.
    pub fn source<T: LogRecord>(
        &self,
        partition: Partition,
        out_of_orderness: u64,
    ) -> LogSource<T> {
        let cursors = (partition.index..self.readers.len())
            .step_by(partition.count)
            .map(|index| {
                let reader = self.readers[index].clone();
                Cursor {
                    partition: index,
                    next: reader.first_offset(),
                    reader,
                    iter: None,
                    head: None,
                }
            })
            .collect();
        LogSource { cursors, started: false, out_of_orderness, record: PhantomData }
    }
}

/// One partition a log source reads: where it stands and the record it looked at next.
struct Cursor<T> {
    partition: usize,
    /// Offset of the next record to give.
    next: u64,
    reader: LogReader,
    /// Open once the first pull starts; `None` again at the partition's end.
    iter: Option<LogIter>,
    /// The next record (read, not given yet).
    head: Option<Stamped<T>>,
}

impl<T: LogRecord> Cursor<T> {
    /// Reads the next record into `head` unless it holds one; false at the end.
    ///
    /// # Panics
    /// If a record fails its CRC or does not decode.
    fn fill(&mut self) -> bool {
        if self.head.is_some() {
            return true;
        }
        let Some(iter) = &mut self.iter else { return false };
        let partition = self.partition;
        match iter.next() {
            Some(Ok(record)) => {
                let mut bytes: &[u8] = &record;
                let Some(stamped) = Stamped::<T>::decode(&mut bytes) else {
                    panic!(
                        "record {} of log partition {partition} does not decode",
                        record.offset()
                    )
                };
                assert_eq!(
                    record.offset(),
                    self.next,
                    "log partition {partition} skipped a record"
                );
                self.head = Some(stamped);
                true
            }
            Some(Err(error)) => panic!("reading log partition {partition}: {error}"),
            None => {
                self.iter = None;
                false
            }
        }
    }
}

/// One shard's partitions of a log directory, read as `Stamped<T>` records.
///
/// A shard reading several partitions (fewer shards than partitions) merges them by
/// timestamp, always giving the earliest head record next, so event time advances in
/// step across partitions and no partition's records fall behind the watermark of another
/// (which reading them one after the other would do). Its position (for checkpoints) is,
/// per partition, the offset of the next record it will give; a seek may name the
/// partitions of any shard count, since a partition's number, not the shard, identifies it.
pub struct LogSource<T> {
    cursors: Vec<Cursor<T>>,
    started: bool,
    out_of_orderness: u64,
    record: PhantomData<fn() -> T>,
}

impl<T: LogRecord + Copy + Send + 'static> Source for LogSource<T> {
    type Record = T;

    /// # Panics
    /// If a record fails its CRC or does not decode as `Stamped<T>` (the job stops with an
    /// error naming the source).
    fn pull(&mut self, out: &mut Vec<Stamped<T>>, max: usize) -> SourceStatus {
        if !self.started {
            self.started = true;
            for cursor in &mut self.cursors {
                cursor.iter = Some(cursor.reader.iter_from(cursor.next).expect("seek checked it"));
            }
        }
        if let [cursor] = &mut self.cursors[..] {
            while out.len() < max && cursor.fill() {
                out.push(cursor.head.take().expect("filled"));
                cursor.next += 1;
            }
            return if cursor.head.is_none() && cursor.iter.is_none() {
                SourceStatus::Exhausted
            } else {
                SourceStatus::Active
            };
        }
        while out.len() < max {
            let earliest = (self.cursors.iter_mut().enumerate())
                .filter_map(|(index, cursor)| cursor.fill().then_some((index, cursor.head)))
                .min_by_key(|(_, head)| head.map(|stamped| stamped.timestamp));
            let Some((index, _)) = earliest else { return SourceStatus::Exhausted };
            let cursor = &mut self.cursors[index];
            out.push(cursor.head.take().expect("filled"));
            cursor.next += 1;
        }
        SourceStatus::Active
    }

    /// One offset per partition the shard reads (its number, the next offset to give).
    fn position(&self, out: &mut Vec<SourceOffset>) -> Result<(), Error> {
        let offsets = self
            .cursors
            .iter()
            .map(|cursor| SourceOffset { partition: cursor.partition as u32, offset: cursor.next });
        out.extend(offsets);
        Ok(())
    }

    /// Resumes each partition at its offset in `offsets` (a partition missing from them,
    /// new since the checkpoint, starts at its beginning).
    fn seek(&mut self, offsets: &[SourceOffset]) -> Result<(), Error> {
        assert!(!self.started, "seek before the first pull");
        for cursor in &mut self.cursors {
            let partition = cursor.partition;
            let Some(offset) = offsets.iter().find(|o| o.partition as usize == partition) else {
                continue;
            };
            let (first, end) = (cursor.reader.first_offset(), cursor.reader.next_offset());
            if offset.offset < first || offset.offset > end {
                return Err(Error::Checkpoint(format!(
                    "input log partition {partition} holds offsets {first}..{end}, but the \
                     checkpoint resumes it at {}",
                    offset.offset
                )));
            }
            cursor.next = offset.offset;
        }
        Ok(())
    }

    fn out_of_orderness(&self) -> u64 {
        self.out_of_orderness
    }
}
