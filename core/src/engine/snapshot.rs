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
//! **Chunks.** An operator may cut its state into chunks ([`KeyGroupWriter::begin_chunk`],
//! each with an id the restore gets back): the aligned windows make one per pane. A chunk
//! the operator did not change since the shard's previous snapshot is not copied again when
//! that snapshot's checkpoint completed: the state file refers to the earlier file holding
//! it (an *incremental* snapshot; see [`state_file`](super::state_file)). An operator that
//! declares no chunk writes one chunk, id 0, copied every time.
//!
//! What each operator writes into a key group's buffer (entries until the chunk ends):
//!
//! ```text
//! tumbling / sliding   chunk id = pane start; entry = key | state   (state of one pane)
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

/// One snapshot's byte buffers, one per key group of the shard, cut into chunks.
#[derive(Debug)]
pub struct KeyGroupWriter {
    key_groups: KeyGroups,
    range: Range<usize>,
    buffers: Vec<Vec<u8>>,
    /// Whether an unchanged chunk may be left to the previous snapshot's files.
    incremental: bool,
    /// The chunks declared, in order.
    chunks: Vec<ChunkMark>,
    /// For each chunk written (not reused), where it starts in every buffer.
    starts: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct ChunkMark {
    id: u64,
    reused: bool,
}

/// A chunk of a finished snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotChunk {
    pub id: u64,
    /// `None`: unchanged, to be found in the previous snapshot's files; otherwise its
    /// (start, length) in each of the shard's buffers.
    pub sections: Option<Vec<(usize, usize)>>,
    /// The chunk is indexed for every key group even where it is empty (the one implicit
    /// chunk of an operator that declares none: its restore is called for every group).
    pub list_empty: bool,
}

/// A finished snapshot of one shard: its buffers and the chunks cut in them.
#[derive(Debug)]
pub(crate) struct ShardSnapshot {
    pub range: Range<usize>,
    pub buffers: Vec<Vec<u8>>,
    pub chunks: Vec<SnapshotChunk>,
}

impl KeyGroupWriter {
    /// Empty buffers for the key groups of `scope`, for a full snapshot.
    pub fn new(scope: &KeyScope) -> KeyGroupWriter {
        let range = scope.range();
        let buffers = range.clone().map(|_| Vec::new()).collect();
        KeyGroupWriter {
            key_groups: scope.key_groups(),
            range,
            buffers,
            incremental: false,
            chunks: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Like [`KeyGroupWriter::new`], writing into `buffers` (emptied first) when they are
    /// one per key group of `scope`.
    pub fn reusing(scope: &KeyScope, mut buffers: Vec<Vec<u8>>) -> KeyGroupWriter {
        let mut writer = KeyGroupWriter::new(scope);
        if buffers.len() == writer.buffers.len() {
            buffers.iter_mut().for_each(Vec::clear);
            writer.buffers = buffers;
        }
        writer
    }

    /// Lets unchanged chunks refer to the previous snapshot (whose checkpoint completed).
    pub(crate) fn set_incremental(&mut self, incremental: bool) {
        self.incremental = incremental;
    }

    /// Reserves room for `bytes[i]` bytes (and an eighth more) in the buffer of the shard's
    /// `i`-th key group; extra entries are ignored.
    pub fn reserve(&mut self, bytes: &[usize]) {
        for (buffer, &bytes) in self.buffers.iter_mut().zip(bytes) {
            buffer.reserve(bytes + bytes / 8);
        }
    }

    /// Starts chunk `id` (ids unique within a snapshot); what is written next, up to the
    /// next chunk, belongs to it. `unchanged`: the operator did not change the chunk since
    /// its previous snapshot. Returns whether the operator must write the chunk's entries:
    /// `false` when it is unchanged and this snapshot is incremental (the state file then
    /// refers to the earlier file holding it).
    ///
    /// # Panics
    /// If entries were written before the first chunk.
    pub fn begin_chunk(&mut self, id: u64, unchanged: bool) -> bool {
        assert!(
            !self.chunks.is_empty() || self.buffers.iter().all(Vec::is_empty),
            "snapshot entries written before the first chunk"
        );
        let reused = unchanged && self.incremental;
        self.chunks.push(ChunkMark { id, reused });
        if !reused {
            self.starts.extend(self.buffers.iter().map(Vec::len));
        }
        !reused
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

    /// The buffers and the chunks cut in them.
    pub(crate) fn finish(self) -> ShardSnapshot {
        let KeyGroupWriter { range, buffers, chunks, starts, .. } = self;
        let groups = buffers.len();
        if chunks.is_empty() {
            let sections = buffers.iter().map(|buffer| (0, buffer.len())).collect();
            let chunk = SnapshotChunk { id: 0, sections: Some(sections), list_empty: true };
            return ShardSnapshot { range, buffers, chunks: vec![chunk] };
        }
        let mut written = starts.chunks_exact(groups.max(1)).peekable();
        let mut out = Vec::with_capacity(chunks.len());
        for mark in chunks {
            if mark.reused {
                out.push(SnapshotChunk { id: mark.id, sections: None, list_empty: false });
                continue;
            }
            let begin = written.next().expect("a start per chunk written");
            let sections = match written.peek() {
                Some(next) => begin.iter().zip(*next).map(|(&b, &e)| (b, e - b)).collect(),
                None => begin.iter().zip(&buffers).map(|(&b, buf)| (b, buf.len() - b)).collect(),
            };
            out.push(SnapshotChunk { id: mark.id, sections: Some(sections), list_empty: false });
        }
        ShardSnapshot { range, buffers, chunks: out }
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

    /// Copies the state into `out`, each key's entries into its key group's buffer (cut
    /// into chunks, if the operator uses them; it then forgets which chunks changed).
    fn snapshot(&mut self, out: &mut KeyGroupWriter);

    /// Adds chunk `chunk` of key group `key_group` (id 0 for an operator without chunks),
    /// as [`SnapshotState::snapshot`] wrote it, to this (freshly built, or partly restored)
    /// operator.
    ///
    /// # Errors
    /// [`StateDecodeError`] when the bytes do not decode.
    fn restore(
        &mut self,
        key_group: usize,
        chunk: u64,
        bytes: &[u8],
    ) -> Result<(), StateDecodeError>;

    /// Sets the operator's time to `watermark` (the least watermark of the restored
    /// shards), before any record.
    fn restore_time(&mut self, watermark: u64);
}
