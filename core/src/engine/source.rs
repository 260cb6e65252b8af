//! Sources: where a shard's records come from.
//!
//! A job's source is a factory called once per shard with that shard's [`Partition`]; each
//! shard pulls batches from its own instance, so sources need no synchronisation. A source
//! stamps every record with its event time and declares how far out of order those
//! timestamps may be; the shard derives watermarks from it (`max timestamp - bound`), so a
//! source never has to think about watermarks itself.

use super::item::Stamped;

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
}

/// A source over records held in memory, split round-robin over the shards (record `i`
/// goes to partition `i % count`). For tests and examples.
#[derive(Debug, Clone)]
pub struct VecSource<T> {
    records: std::sync::Arc<[Stamped<T>]>,
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
        VecSource { records, next: partition.index, step: partition.count, out_of_orderness }
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
}
