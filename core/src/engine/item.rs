//! What travels on an exchange ring: records and, in band and in order with them, the
//! control items that carry time (`Watermark`), consistency (`Barrier`) and the end of the
//! stream (`End`).
//!
//! Control items share the ring with records instead of taking a side channel because their
//! meaning is positional: a watermark promises something about the records *behind* it on
//! the same ring, and a barrier splits a ring's records into "before epoch e" and "after".
//! A side channel would need its own ordering protocol; the ring already is one.

/// A record with its event timestamp (milliseconds, by convention of the sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamped<T> {
    /// Event time of the record.
    pub timestamp: u64,
    /// The record itself.
    pub record: T,
}

/// One slot of an exchange ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<T> {
    /// A keyed record on its way to the shard that owns its key group.
    Record(Stamped<T>),
    /// The producing shard promises that every later record on this ring has a timestamp
    /// at or above this one.
    Watermark(u64),
    /// The producing shard's source has had no record for its idle timeout: leave this
    /// input out of the watermark minimum until its next `Watermark` (Flink's idleness).
    Idle,
    /// Checkpoint barrier of an epoch: every record of the epoch precedes it on this ring.
    /// Routed and aligned by the engine; snapshots are the exactly-once work's to add.
    Barrier(u64),
    /// The producing shard will send nothing more on this ring.
    End,
}
