//! Sources: where a shard's records come from.
//!
//! A job's source is a factory called once per shard with that shard's [`Partition`]; each
//! shard pulls batches from its own instance, so sources need no synchronisation. A source
//! stamps every record with its event time and declares how far out of order those
//! timestamps may be; the shard derives watermarks from it (`max timestamp - bound`), so a
//! source never has to think about watermarks itself.

use super::item::Stamped;
use crate::coordinator::SourceOffset;
use crate::Error;

/// Which part of the input a shard's source instance reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// This shard's index, `0..shards`.
    pub index: usize,
    /// The job's number of shards (and source partitions).
    pub count: usize,
}

/// Whether a source has more to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// More records may follow (possibly none right now, e.g. when rate-limited).
    Active,
    /// The source has given its last record.
    Exhausted,
}

/// A shard's instance of a job's source.
pub trait Source: Send + 'static {
    /// The records it produces.
    type Record: Copy + Send + 'static;
    /// Appends at most `max` records to `out` (which the shard has cleared).
    fn pull(&mut self, out: &mut Vec<Stamped<Self::Record>>, max: usize) -> SourceStatus;
    /// The largest amount a timestamp may lie below the largest timestamp before it; a
    /// later record further behind is late.
    fn out_of_orderness(&self) -> u64;

    /// Appends this instance's position to `out`: for each input partition it reads, the
    /// offset of the first record it has *not* given yet. Called on the shard thread when
    /// a checkpoint's barrier is injected (between two pulls), so it must be quick.
    ///
    /// # Errors
    /// [`Error::NotCheckpointable`] (the default): the source cannot resume.
    fn position(&self, out: &mut Vec<SourceOffset>) -> Result<(), Error> {
        let _ = out;
        Err(not_checkpointable::<Self>())
    }

    /// Resumes at the positions of a checkpoint, before the first pull. `offsets` holds the
    /// positions of every partition of the checkpointed job's input; the source takes the
    /// ones of the partitions it reads.
    ///
    /// # Errors
    /// [`Error::NotCheckpointable`] (the default); an error naming the partition when an
    /// offset lies outside the input or the positions cannot be mapped onto this instance.
    fn seek(&mut self, offsets: &[SourceOffset]) -> Result<(), Error> {
        let _ = offsets;
        Err(not_checkpointable::<Self>())
    }
}

/// The error of a source without position and seek.
fn not_checkpointable<S: ?Sized>() -> Error {
    Error::NotCheckpointable(format!(
        "source type {} cannot report or seek to a position",
        std::any::type_name::<S>()
    ))
}

/// Finds this partition's offset among a checkpoint's, for sources split by shard count
/// (record `i` of partition `index` of `count`): the checkpoint must have been taken on
/// `count` partitions too.
///
/// # Errors
/// [`Error::Checkpoint`] naming `what` when the partition counts differ or the partition is
/// missing.
pub fn own_offset(
    what: &str,
    partition: Partition,
    offsets: &[SourceOffset],
) -> Result<u64, Error> {
    if offsets.len() != partition.count {
        return Err(Error::Checkpoint(format!(
            "{what} positions of {} partitions cannot resume on {} shards (it is split by shard \
             count; rescaling needs a source with fixed partitions, such as the log source)",
            offsets.len(),
            partition.count
        )));
    }
    offsets.iter().find(|offset| offset.partition as usize == partition.index).map_or_else(
        || Err(Error::Checkpoint(format!("{what}: no position for partition {}", partition.index))),
        |offset| Ok(offset.offset),
    )
}

/// A source over records held in memory, split round-robin over the shards (record `i`
/// goes to partition `i % count`). For tests and examples.
#[derive(Debug, Clone)]
pub struct VecSource<T> {
    records: std::sync::Arc<[Stamped<T>]>,
    partition: Partition,
    next: usize,
    step: usize,
    out_of_orderness: u64,
}

impl<T: Copy + Send + Sync + 'static> VecSource<T> {
    /// The partition `partition` of `records`.
    pub fn new(
        records: std::sync::Arc<[Stamped<T>]>,
        partition: Partition,
        out_of_orderness: u64,
    ) -> Self {
        let (next, step) = (partition.index, partition.count);
        VecSource { records, partition, next, step, out_of_orderness }
    }
}

impl<T: Copy + Send + Sync + 'static> Source for VecSource<T> {
    type Record = T;

    fn pull(&mut self, out: &mut Vec<Stamped<T>>, max: usize) -> SourceStatus {
        while out.len() < max && self.next < self.records.len() {
            out.push(self.records[self.next]);
            self.next += self.step;
        }
        if self.next < self.records.len() {
            SourceStatus::Active
        } else {
            SourceStatus::Exhausted
        }
    }

    fn out_of_orderness(&self) -> u64 {
        self.out_of_orderness
    }

    /// One offset: the index of the next record of the whole input this partition gives.
    fn position(&self, out: &mut Vec<SourceOffset>) -> Result<(), Error> {
        out.push(SourceOffset { partition: self.partition.index as u32, offset: self.next as u64 });
        Ok(())
    }

    fn seek(&mut self, offsets: &[SourceOffset]) -> Result<(), Error> {
        let next = own_offset("in-memory source", self.partition, offsets)? as usize;
        if next % self.step != self.partition.index || next > self.records.len() + self.step {
            let index = self.partition.index;
            return Err(Error::Checkpoint(format!(
                "in-memory source partition {index}: position {next} is not one of its records"
            )));
        }
        self.next = next;
        Ok(())
    }
}
