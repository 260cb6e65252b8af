//! The durable segmented log: the one log of zabflow. Stream sources and sinks, and the
//! coordination service's transaction log, are built on it.
//!
//! # What it promises
//!
//! * Records get consecutive `u64` offsets (Kafka-style sequence numbers, not byte
//!   positions). [`Log::append`] writes a batch and returns its offsets; with
//!   [`Durability::Durable`] it returns only after `fdatasync`, so an acknowledged record
//!   survives a crash of the process or of the machine.
//! * Readers ([`LogReader`], `Send + Clone`) read through `memmap2` on any thread while the
//!   writer appends, and see a record only once it is acknowledged.
//! * Many threads can share one log through [`Log::into_group_commit`]: one appender at a
//!   time leads, writing every request queued so far in one submission with one
//!   `fdatasync` for the whole group; appenders that arrive meanwhile ride the next one.
//! * A batch costs one write submission (io_uring: the write and its linked fdatasync in
//!   one `io_uring_enter`) per segment it touches; a batch crossing into a new segment
//!   syncs the old segment's part before the new segment is created.
//!
//! # On disk
//!
//! ```text
//! log      = LOCK segment+                      (one directory)
//! segment  = "<base_offset:020>.log" : header frame* zero*   (preallocated file)
//! header   = magic:"ZABFLOG\0" | version:u32 LE (=1) | flags:u32 LE (=0)
//!          | base_offset:u64 LE | reserved:u32 LE (=0) | header_crc:u32 LE  (32 bytes)
//! frame    = len:u32 LE | crc:u32 LE | payload:[u8; len]      (len <= RECORD_BYTES_MAX)
//! crc      = crc32c(len bytes ++ payload)
//! ```
//!
//! The base offset of each segment is the offset of its first record and equals the end
//! of the segment before it. A batch that does not fit into the active segment continues
//! in a new one. Segments are created as `.tmp` files and renamed into place; the
//! directory is fsynced after every creation, rename and deletion.
//!
//! # Recovery
//!
//! [`Log::open`] verifies every frame of every segment and builds a sparse index (every
//! [`INDEX_INTERVAL_RECORDS`](crate::constants::INDEX_INTERVAL_RECORDS) records). The
//! frame CRC covers the length too, so an all-zero frame header is never a record: it is
//! the preallocated, never-written space, the end of the data. Where a segment's frames end
//! (a zero header, a partial frame or a CRC failure) the rest of the file is classified:
//!
//! * only zeros: clean;
//! * non-zero bytes that contain no valid frame at any byte position, in the *last*
//!   segment: a torn write of the last, unacknowledged batch. It is zeroed and reported in
//!   [`Recovery::torn_bytes_dropped`];
//! * anything else (a valid frame follows the bad spot, or the bad spot is in a segment
//!   that is not the last): [`Error::Corrupt`](crate::error::Error::Corrupt), naming the
//!   file and byte position. Nothing is modified.
//!
//! Why this is sound: the writer appends strictly in order and never writes past a batch it
//! has not finished, and with `Durable` a batch is acknowledged only after its data is
//! synced. A crash can therefore damage only the bytes of batches written after the last
//! acknowledged one, which all lie at the very end of the last segment (a segment is
//! synced before the next one is created, in both durability modes). Any valid frame after
//! a bad spot means the damage is not such a tail, so cutting there could drop
//! acknowledged data: recovery refuses instead of truncating.
//!
//! The one limitation: on power loss the device may persist the pages of the last,
//! unsynced batch out of order, leaving a hole followed by a valid frame of that same
//! batch. Recovery reports that as corruption although it is a harmless torn tail.
//! Nothing acknowledged is lost by refusing; an operator can cut the tail by hand. Likewise
//! a torn tail so large that proving it holds no frame would take more than
//! [`TORN_TAIL_CRC_BYTES_MAX`](crate::constants::TORN_TAIL_CRC_BYTES_MAX) bytes of CRC work
//! is reported rather than truncated.
//!
//! # Failed writes
//!
//! A write error (ENOSPC, EFBIG, EIO, a failed fdatasync) reaches the caller as `Err`. The
//! log then rolls its in-memory position back to before the batch, deletes segments the
//! batch created and zeroes every byte the batch may have written, so no half-written frame
//! is left for a later append to land behind. Acknowledged records are untouched, and the
//! same `Log` keeps working once the cause is gone (e.g. space is freed). If the undo itself
//! fails, the log refuses further writes with
//! [`Error::Poisoned`](crate::error::Error::Poisoned) until it is reopened, and reopening
//! recovers as after a crash.
//!
//! # Truncation
//!
//! [`Log::truncate_after`] (Zab's TRUNC, sink rollback) deletes the segments above the new
//! end and rewrites the segment holding it: the kept bytes are copied into a new file that
//! is renamed over the old one. Copying costs up to one segment, but published bytes of a
//! mapped file then never change, which is what makes zero-copy [`Record`]s sound.
//! [`Log::truncate_before`] (retention) deletes whole segments only.

mod backend;
pub mod frame;
mod group_commit;
mod reader;
mod segment;
mod segmented_log;

use std::fmt;

pub use group_commit::LogAppender;
pub use reader::{LogIter, LogReader, Record};
pub use segmented_log::{Log, LogStats, Recovery};

use crate::constants::SEGMENT_BYTES_DEFAULT;

/// Which backend `Log::open` should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// io_uring if the kernel allows it, else `pwrite`.
    #[default]
    Auto,
    /// io_uring, or an error if the kernel refuses it.
    IoUring,
    /// `pwrite` + `fdatasync`.
    Pwrite,
}

/// The backend a log actually uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    IoUring,
    Pwrite,
}

impl BackendKind {
    /// `"io_uring"` or `"pwrite"`, as used in benchmark series names.
    pub fn name(&self) -> &'static str {
        match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Pwrite => "pwrite",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// When a batch counts as written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged only after `fdatasync`: survives a machine crash.
    #[default]
    Durable,
    /// Acknowledged once in the page cache: survives a process crash only. Call
    /// [`Log::sync`] to make it durable.
    Buffered,
}

/// How a log is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Size of newly created segment files (existing ones keep theirs).
    pub segment_bytes: u64,
    pub backend: BackendChoice,
    pub durability: Durability,
    /// Reserve segment space with `fallocate` (the default). `false` creates sparse
    /// segments, whose writes can then fail with ENOSPC (used by the full-disk tests).
    pub preallocate: bool,
    /// Also write zeros over every new segment, on a background thread ahead of the roll
    /// that needs it. Fallocated blocks are *unwritten* extents: the first append into each
    /// block changes file-system metadata, so its fdatasync must commit the journal too
    /// (milliseconds on ext4). Zero-filled segments make every append's fdatasync flush data
    /// only — the choice for small, latency-bound durable appends (a transaction log). It
    /// writes every byte twice, so bulk streams that fill a segment faster than the disk
    /// can zero the next one leave it off (the default). Needs `preallocate`.
    pub zero_fill: bool,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            backend: BackendChoice::Auto,
            durability: Durability::Durable,
            preallocate: true,
            zero_fill: false,
        }
    }
}
