//! Snapshots of keyed operators, per key group.
//!
//! At a checkpoint's aligned barrier the shard asks its keyed operator for a snapshot
//! ([`SnapshotState::snapshot`]): the operator copies its state into one byte buffer per
//! key group ([`KeyGroupWriter`]), each key's entries into the buffer of the key's group.
//! This is the only work a checkpoint does on the shard thread: a walk over the state and a
//! copy through [`StateCodec`](super::state_codec::StateCodec). The buffers then go to a
//! background thread that writes and fsyncs the state file (see
//! [`state_file`](super::state_file)).
//!
//! Restoring works group by group ([`SnapshotState::restore`]): a shard restored on any
//! shard count gets the buffers of exactly the key groups it now owns, from whichever old
//! shard's file holds them, and adds them to its fresh operator. Since the groups of one
//! shard hold disjoint keys, adding groups one after the other never merges two states of
//! one key.
//!
//! What each operator writes into a key group's buffer (entries until the buffer ends):
//!
//! ```text
//! tumbling / sliding   entry = pane_start:u64 | key | state            (state of one pane)
//! session              entry = key | start:u64 | end:u64 | fired:bool | state
//! process function     what its `snapshot` writes (ValueState / MapState helpers below:
//!                      count:u32 | (key | value)*   or   count:u32 | (key | len:u32 | (uk | uv)*)*)
//! ```
//!
//! The operator's time (its watermark) is not per key: the state file records the shard's
//! watermark once, and a restored shard starts at the least watermark of the files its key
//! groups come from ([`SnapshotState::restore_time`]), so no window that had not fired
//! anywhere is skipped.

use super::key_group::KeyGroups;
use super::keyed_state::KeyScope;
use super::state_codec::StateDecodeError;
use std::hash::Hash;
use std::ops::Range;

/// One snapshot's byte buffers, one per key group of the shard.
#[derive(Debug)]
pub struct KeyGroupWriter {
    key_groups: KeyGroups,
    range: Range<usize>,
    buffers: Vec<Vec<u8>>,
}

impl KeyGroupWriter {
    /// Empty buffers for the key groups of `scope`.
    pub fn new(scope: &KeyScope) -> KeyGroupWriter {
        let range = scope.range();
        let buffers = range.clone().map(|_| Vec::new()).collect();
        KeyGroupWriter { key_groups: scope.key_groups(), range, buffers }
    }

    /// Reserves room for `bytes[i]` bytes (and an eighth more) in the buffer of the shard's
    /// `i`-th key group; extra entries are ignored.
    pub fn reserve(&mut self, bytes: &[usize]) {
        for (buffer, &bytes) in self.buffers.iter_mut().zip(bytes) {
            buffer.reserve(bytes + bytes / 8);
        }
    }

    /// The key groups written.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The buffer of key group `group`.
    ///
    /// # Panics
    /// If the shard does not own `group`.
    pub fn buffer(&mut self, group: usize) -> &mut Vec<u8> {
        assert!(self.range.contains(&group), "key group {group} is not in {:?}", self.range);
        &mut self.buffers[group - self.range.start]
    }

    /// The buffer of `key`'s key group.
    ///
    /// # Panics
    /// If the shard does not own the key's group (a routing bug).
    #[inline]
    pub fn buffer_for_key<K: Hash + ?Sized>(&mut self, key: &K) -> &mut Vec<u8> {
        let group = self.key_groups.key_group(key);
        self.buffer(group)
    }

    /// The buffers, as (key group, bytes), ascending by group.
    pub fn into_groups(self) -> Vec<(usize, Vec<u8>)> {
        self.range.zip(self.buffers).collect()
    }
}

/// A keyed operator (of keys `K` and records `T`) whose state a checkpoint can save and
/// restore, per key group.
pub trait SnapshotState<K, T> {
    /// Whether the operator can take part (a process function must implement its
    /// snapshot); `Err` says why not.
    ///
    /// # Errors
    /// The reason, for [`Error::NotCheckpointable`](crate::Error::NotCheckpointable).
    fn check_checkpointable(&self) -> Result<(), String> {
        Ok(())
    }

    /// Copies the state into `out`, each key's entries into its key group's buffer.
    fn snapshot(&self, out: &mut KeyGroupWriter);

    /// Adds the state of key group `key_group`, as [`SnapshotState::snapshot`] wrote it, to
    /// this (freshly built, or partly restored) operator.
    ///
    /// # Errors
    /// [`StateDecodeError`] when the bytes do not decode.
    fn restore(&mut self, key_group: usize, bytes: &[u8]) -> Result<(), StateDecodeError>;

    /// Sets the operator's time to `watermark` (the least watermark of the restored
    /// shards), before any record.
    fn restore_time(&mut self, watermark: u64);
}
