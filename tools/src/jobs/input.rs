//! The input of a job: the partitioned log `zabflow log gen` writes, read as one event-time
//! ordered stream per shard.
//!
//! ```text
//! INPUT/MANIFEST         "zabflow-input-log 1", kind=keyed|access, partition-<i>=<records>
//! INPUT/partition-<i>/   a zabflow_core::log each; shard s reads the partitions i ≡ s (mod N)
//! ```
//!
//! **Why a merge.** A shard that reads several partitions one after the other would see the
//! second partition's early records after the first one's late ones: behind its own
//! watermark, so late, and how many depends on the shard count. Exactly-once comparison
//! across shard counts (rescaling) needs the same records to be on time whatever the
//! placement, so a shard merges its partitions by timestamp instead (the next record is
//! the partition head with the smallest timestamp, ties to the lower partition). Its
//! output is then out of order by no more than one partition's own disorder, which the
//! generator bounds ([`INPUT_DISORDER_MS_MAX`]), whatever offsets the partitions resume
//! at after a restore.
//!
//! **Position.** The source's position is, per partition, the offset of the first record
//! it has not handed out yet (a buffered head counts as not handed out), so a restore that
//! seeks every partition to its recorded offset resumes exactly after the last record
//! covered by the checkpoint.
//!
//! The logs are opened with `Log::open`, which takes each partition's `LOCK`: one job reads
//! an input at a time, and the lock goes with the [`InputLog`] (or a killed reader's process).

use std::path::Path;
use std::sync::{Arc, Mutex};

use zabflow_core::coordinator::SourceOffset;
use zabflow_core::engine::{Partition, Source, SourceStatus, Stamped};
use zabflow_core::log::{Durability, Log, LogIter, LogOptions, LogReader};

use crate::error::ToolError;

/// The largest amount a generated record's time lies below an earlier record's of the same
/// partition (`zabflow log gen` jitters keyed events back by at most 500 ms; access lines
/// have whole seconds). Jobs declare this much out-of-orderness plus a margin.
pub const INPUT_DISORDER_MS_MAX: u64 = 1000;

/// What a job's input log holds, from its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Keyed,
    Access,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Keyed => "keyed",
            InputKind::Access => "access",
        }
    }
}

/// Checks that `dir` is an input log of `kind` (without opening, so without locking, it).
///
/// # Errors
/// [`ToolError::Job`] when `dir` is missing, has no manifest, or holds another kind.
pub fn check_manifest(dir: &Path, kind: InputKind) -> Result<(), ToolError> {
    let fail = |message: String| ToolError::Job(format!("input log {}: {message}", dir.display()));
    if !dir.is_dir() {
        return Err(fail("no such directory (write one with `zabflow log gen`)".to_owned()));
    }
    let manifest = std::fs::read_to_string(dir.join("MANIFEST"))
        .map_err(|error| fail(format!("cannot read its MANIFEST: {error}")))?;
    let found = manifest.lines().find_map(|line| line.strip_prefix("kind=")).unwrap_or("");
    if found != kind.name() {
        return Err(fail(format!(
            "holds {found:?} records; this job reads {:?} records",
            kind.name()
        )));
    }
    Ok(())
}

/// Turns one log payload into a stamped record, or says why it cannot.
pub type Decode<T> = fn(&[u8]) -> Result<Stamped<T>, String>;

/// An input log opened for reading: one reader per partition.
#[derive(Clone)]
pub struct InputLog {
    readers: Vec<LogReader>,
    /// The partitions' logs, which hold their `LOCK`s until the input and its clones are
    /// dropped (a worker runs one job after another in one process). Behind a mutex only
    /// to be shared with the shards' source factories; nothing locks it.
    _logs: Arc<Mutex<Vec<Log>>>,
    /// Records per second each shard's source gives at most (`None`: as fast as it can).
    rate_per_shard: Option<u64>,
}

impl InputLog {
    /// Opens the input log at `dir` and checks its manifest says `kind`.
    ///
    /// # Errors
    /// [`ToolError::Job`] when `dir` is missing, has no manifest or partitions, or holds
    /// another kind of input; what opening a partition's log fails with.
    pub fn open(dir: &Path, kind: InputKind) -> Result<InputLog, ToolError> {
        check_manifest(dir, kind)?;
        let fail =
            |message: String| ToolError::Job(format!("input log {}: {message}", dir.display()));
        let mut logs = Vec::new();
        while dir.join(format!("partition-{}", logs.len())).is_dir() {
            let path = dir.join(format!("partition-{}", logs.len()));
            let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
            let log = Log::open(&path, options)
                .map_err(|error| fail(format!("partition-{}: {error}", logs.len())))?;
            logs.push(log);
        }
        if logs.is_empty() {
            return Err(fail("holds no partition-0 directory".to_owned()));
        }
        let readers = logs.iter().map(Log::reader).collect();
        Ok(InputLog { readers, _logs: Arc::new(Mutex::new(logs)), rate_per_shard: None })
    }

    /// Replays the input at most `rate` records per second per shard (a log replayed as if
    /// it arrived live); the output is the same at any rate.
    #[must_use]
    pub fn paced(self, rate: Option<u64>) -> InputLog {
        InputLog { rate_per_shard: rate.filter(|&rate| rate > 0), ..self }
    }

    /// The source of shard `partition.index`: the partitions `i ≡ index (mod count)`,
    /// merged by timestamp, each from its first record (a restore seeks them).
    pub fn source<T>(
        &self,
        partition: Partition,
        decode: Decode<T>,
        out_of_orderness: u64,
    ) -> MergedSource<T> {
        let parts = (partition.index..self.readers.len())
            .step_by(partition.count)
            .map(|index| {
                let reader = &self.readers[index];
                let offset = reader.first_offset();
                let iter = reader.iter_from(offset).expect("a log's first offset is readable");
                PartitionCursor::new(index, reader.clone(), iter, offset)
            })
            .collect();
        let pace = self.rate_per_shard.map(|rate| Pace { rate, started: None, given: 0 });
        MergedSource { parts, decode, out_of_orderness, pace }
    }
}

struct PartitionCursor<T> {
    index: usize,
    reader: LogReader,
    iter: LogIter,
    /// The next record of this partition, read but not handed out.
    head: Option<Stamped<T>>,
    /// The offset of `head` (or of the next record to read when there is no head).
    head_offset: u64,
    done: bool,
}

impl<T> PartitionCursor<T> {
    fn new(index: usize, reader: LogReader, iter: LogIter, offset: u64) -> PartitionCursor<T> {
        PartitionCursor { index, reader, iter, head: None, head_offset: offset, done: false }
    }
}

impl<T: Copy> PartitionCursor<T> {
    /// Makes sure `head` holds the next record unless the partition has ended.
    fn fill(&mut self, decode: Decode<T>) {
        if self.head.is_some() || self.done {
            return;
        }
        self.head_offset = self.iter.offset();
        match self.iter.next() {
            None => self.done = true,
            Some(Ok(record)) => match decode(record.payload()) {
                Ok(stamped) => self.head = Some(stamped),
                Err(reason) => panic!(
                    "record {} of input partition {} does not decode: {reason}",
                    record.offset(),
                    self.index
                ),
            },
            Some(Err(error)) => panic!("reading input partition {}: {error}", self.index),
        }
    }
}

/// One shard's partitions of an input log, merged by timestamp (see the module doc).
pub struct MergedSource<T> {
    parts: Vec<PartitionCursor<T>>,
    decode: Decode<T>,
    out_of_orderness: u64,
    pace: Option<Pace>,
}

/// A records-per-second limit, counted from the first pull.
struct Pace {
    rate: u64,
    started: Option<std::time::Instant>,
    given: u64,
}

impl Pace {
    /// How many records may be given now.
    fn allowance(&mut self) -> u64 {
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let due = started.elapsed().as_micros() as u64 * self.rate / 1_000_000;
        due.saturating_sub(self.given)
    }
}

impl<T: Copy + Send + 'static> Source for MergedSource<T> {
    type Record = T;

    /// # Panics
    /// If a record fails its CRC or does not decode (the job stops with an error naming the
    /// source, the partition and the offset).
    fn pull(&mut self, out: &mut Vec<Stamped<T>>, max: usize) -> SourceStatus {
        let decode = self.decode;
        let max = match &mut self.pace {
            Some(pace) => {
                let allowed = max.min(pace.allowance() as usize);
                pace.given += allowed as u64;
                if allowed == 0 {
                    // Ahead of the rate: give the shard's other work a turn.
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    return SourceStatus::Active;
                }
                allowed
            }
            None => max,
        };
        while out.len() < max {
            for part in &mut self.parts {
                part.fill(decode);
            }
            let next = self
                .parts
                .iter()
                .enumerate()
                .filter_map(|(position, part)| part.head.map(|head| (head.timestamp, position)))
                .min()
                .map(|(_, position)| position);
            let Some(position) = next else { return SourceStatus::Exhausted };
            let part = &mut self.parts[position];
            out.push(part.head.take().expect("the chosen partition has a head"));
            part.head_offset += 1;
        }
        SourceStatus::Active
    }

    fn out_of_orderness(&self) -> u64 {
        self.out_of_orderness
    }

    /// Per partition read, the offset of the first record not handed out.
    fn position(&self, out: &mut Vec<SourceOffset>) -> Result<(), zabflow_core::Error> {
        let offsets = self
            .parts
            .iter()
            .map(|part| SourceOffset { partition: part.index as u32, offset: part.head_offset });
        out.extend(offsets);
        Ok(())
    }

    /// Takes the offsets of its own partitions from a checkpoint of any shard count (a
    /// partition's number, not the shard, names it). A partition the checkpoint does not
    /// name starts at its beginning only if the checkpoint names no partition at all.
    fn seek(&mut self, offsets: &[SourceOffset]) -> Result<(), zabflow_core::Error> {
        for part in &mut self.parts {
            let Some(offset) = offsets.iter().find(|o| o.partition as usize == part.index) else {
                return Err(zabflow_core::Error::Checkpoint(format!(
                    "the checkpoint has no offset for input partition {} (another input?)",
                    part.index
                )));
            };
            let iter = part.reader.iter_from(offset.offset).map_err(|error| {
                zabflow_core::Error::Checkpoint(format!(
                    "input partition {} cannot resume at offset {}: {error}",
                    part.index, offset.offset
                ))
            })?;
            *part = PartitionCursor::new(part.index, part.reader.clone(), iter, offset.offset);
        }
        Ok(())
    }
}
