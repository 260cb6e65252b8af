//! The stream engine's view of the coordination service: the [`Coordinator`] trait, the
//! znode layout it implies ([`ZnodeLayout`]) and the record of a completed checkpoint
//! ([`CompletedCheckpoint`]) with its versioned, checksummed encoding.
//!
//! This crate has no networking; `zabflow-net` implements the trait over its ZooKeeper
//! client, so a job runs against a zabflow ensemble or a real Apache ZooKeeper alike. The
//! layout follows Flink's ZooKeeper HA services:
//!
//! ```text
//! /zabflow/<cluster>/leader                          persistent; the election
//! /zabflow/<cluster>/leader/c_<session:016x>-<seq:010>
//!                                                    ephemeral sequential, one per contender;
//!                                                    data: the contender's address (UTF-8).
//!                                                    The lowest sequence leads.
//! /zabflow/<cluster>/workers/<id>                    ephemeral; data: the worker's address
//! /zabflow/<cluster>/jobs/<job>/spec                 persistent; data: a job submitted to the
//!                                                    cluster's workers (`zabflow job submit`:
//!                                                    what to run and its state), text
//! /zabflow/<cluster>/jobs/<job>/checkpoint-counter   persistent; data: the next epoch, decimal
//!                                                    ASCII, drawn by compare-and-set on version
//! /zabflow/<cluster>/jobs/<job>/checkpoints/<epoch:019>
//!                                                    persistent; data: a CompletedCheckpoint
//! ```
//!
//! Names (`cluster`, `job`, worker ids) are 1..=[`NAME_BYTES_MAX`] bytes of
//! `[A-Za-z0-9_.-]`, and not `.` or `..`, so a name is always exactly one path segment.
//!
//! # Completed checkpoint record
//!
//! Integers are little endian. The CRC covers every byte before it, so a truncated or
//! damaged record, or one of a future version, is refused with a clear error rather than
//! misread.
//!
//! ```text
//! record        = magic:"ZFCKPT\0\0" | version:u32 (=1) | body_bytes:u32 | body | crc:u32
//! crc           = crc32c(magic .. body)
//! body          = epoch:u64 | timestamp_ms:u64
//!                 | source_count:u32 source_offset*   source_offset = partition:u32 offset:u64
//!                 | state_count:u32 state_file*
//!                 | sink_count:u32 sink_position*     sink_position = partition:u32 offset:u64
//! state_file    = key_group:u32 | bytes:u64 | crc32c:u32 | path_bytes:u16 | path:[u8] (UTF-8)
//! ```
//!
//! A record is at most [`CHECKPOINT_RECORD_BYTES_MAX`] bytes, below ZooKeeper's default
//! `jute.maxbuffer` of 1 MiB. The epoch inside must equal the one in the znode's name.

use std::time::Duration;

/// Longest cluster, job or worker name, in bytes.
pub const NAME_BYTES_MAX: usize = 128;

/// Largest encoded [`CompletedCheckpoint`]: a znode holds at most 1 MiB
/// (`jute.maxbuffer`), and the request that carries it needs room for its path and header.
pub const CHECKPOINT_RECORD_BYTES_MAX: usize = 1_000_000;

/// Longest state file path in a checkpoint record, in bytes.
pub const STATE_FILE_PATH_BYTES_MAX: usize = 4096;

/// Largest epoch: the name's `%019d` holds ZooKeeper's (and Java's) signed 64-bit range.
pub const EPOCH_MAX: u64 = i64::MAX as u64;

/// The magic bytes at the start of every checkpoint record.
pub const CHECKPOINT_RECORD_MAGIC: [u8; 8] = *b"ZFCKPT\0\0";

/// The version of the checkpoint record encoding this build writes and reads.
pub const CHECKPOINT_RECORD_VERSION: u32 = 1;

/// Bytes of a record around its body: magic, version, body length and CRC.
const RECORD_FRAME_BYTES: usize = 8 + 4 + 4 + 4;

const _: () = assert!(CHECKPOINT_RECORD_BYTES_MAX < 1 << 20);
const _: () = assert!(STATE_FILE_PATH_BYTES_MAX <= u16::MAX as usize);

/// What a coordinator call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorError {
    /// The session with the coordination service expired (or was closed): its ephemeral
    /// znodes, leadership included, are gone. The coordinator is finished; make a new one.
    #[error("the coordination session has expired; leadership and membership are lost")]
    SessionExpired,
    /// The coordination service cannot be reached right now (connection loss); the call
    /// may be retried.
    #[error("coordination service unavailable: {0}")]
    Unavailable(String),
    /// An operation only the leader may do was tried by a contender that does not lead.
    #[error("not the leader of cluster {cluster}")]
    NotLeader { cluster: String },
    /// The checkpoint of this epoch is already recorded (with different contents).
    #[error("checkpoint {epoch} of job {job} is already recorded")]
    CheckpointExists { job: String, epoch: u64 },
    /// The checkpoint of this epoch is not recorded.
    #[error("checkpoint {epoch} of job {job} is not recorded")]
    NoSuchCheckpoint { job: String, epoch: u64 },
    /// A znode holds bytes that are not what this layout puts there.
    #[error("corrupt coordination record {path}: {reason}")]
    Corrupt { path: String, reason: String },
    /// A name, epoch or record is outside what the layout allows.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A wait ended before its condition held.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// Any other failure the coordination service reported.
    #[error("coordination service error: {0}")]
    Service(String),
}

impl CoordinatorError {
    /// Whether the same call may succeed when retried on the same coordinator.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, CoordinatorError::Unavailable(_) | CoordinatorError::Timeout(..))
    }
}

/// Result of a coordinator call.
pub type CoordinatorResult<T> = Result<T, CoordinatorError>;

/// The coordinator's session with the coordination service, as the engine needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Connected; calls are served.
    Connected,
    /// The connection broke; the client is reconnecting and the session may still live.
    /// A leader does not act as leader meanwhile.
    Disconnected,
    /// The session expired: ephemeral znodes (membership, candidacy) are gone for good.
    Expired,
    /// The coordinator was closed.
    Closed,
}

/// A registered worker: `/zabflow/<cluster>/workers/<id>` and the address it holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Worker {
    pub id: String,
    pub address: String,
}

/// The offset a source partition resumes reading at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOffset {
    pub partition: u32,
    /// The offset of the first record *not* covered by the checkpoint.
    pub offset: u64,
}

/// The snapshot file of one key group's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    pub key_group: u32,
    /// Where the file is, as the job wrote it (relative to the job's state directory).
    pub path: String,
    /// The file's length.
    pub bytes: u64,
    /// crc32c of the file's bytes, checked on restore.
    pub crc32c: u32,
}

/// How far a sink partition's output is committed by the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkPosition {
    pub partition: u32,
    /// The end offset of the committed output (the output log's next offset).
    pub offset: u64,
}

/// The record of a completed checkpoint: everything recovery needs to resume at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedCheckpoint {
    pub epoch: u64,
    /// When the leader completed it, in milliseconds since the Unix epoch (caller's clock).
    pub timestamp_ms: u64,
    pub source_offsets: Vec<SourceOffset>,
    pub state_files: Vec<StateFile>,
    pub sink_positions: Vec<SinkPosition>,
}

impl CompletedCheckpoint {
    /// The distinct state files and their total bytes. Every key group names the file
    /// holding it with that whole file's length, so a file shared by key groups counts once.
    #[must_use]
    pub fn state_totals(&self) -> (usize, u64) {
        let mut files: Vec<(&str, u64)> =
            self.state_files.iter().map(|file| (file.path.as_str(), file.bytes)).collect();
        files.sort_unstable();
        files.dedup();
        (files.len(), files.iter().map(|&(_, bytes)| bytes).sum())
    }

    /// The record's bytes (see the module doc for the grammar).
    ///
    /// # Errors
    /// [`CoordinatorError::InvalidArgument`] when the epoch exceeds [`EPOCH_MAX`], a path is
    /// longer than [`STATE_FILE_PATH_BYTES_MAX`], or the record would exceed
    /// [`CHECKPOINT_RECORD_BYTES_MAX`].
    pub fn encode(&self) -> CoordinatorResult<Vec<u8>> {
        let invalid = |reason: String| Err(CoordinatorError::InvalidArgument(reason));
        if self.epoch > EPOCH_MAX {
            return invalid(format!("epoch {} exceeds {EPOCH_MAX}", self.epoch));
        }
        let mut body = Vec::new();
        body.extend_from_slice(&self.epoch.to_le_bytes());
        body.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        put_count(&mut body, self.source_offsets.len())?;
        for source in &self.source_offsets {
            body.extend_from_slice(&source.partition.to_le_bytes());
            body.extend_from_slice(&source.offset.to_le_bytes());
        }
        put_count(&mut body, self.state_files.len())?;
        for file in &self.state_files {
            if file.path.len() > STATE_FILE_PATH_BYTES_MAX {
                return invalid(format!("state file path of {} bytes", file.path.len()));
            }
            body.extend_from_slice(&file.key_group.to_le_bytes());
            body.extend_from_slice(&file.bytes.to_le_bytes());
            body.extend_from_slice(&file.crc32c.to_le_bytes());
            body.extend_from_slice(&(file.path.len() as u16).to_le_bytes());
            body.extend_from_slice(file.path.as_bytes());
        }
        put_count(&mut body, self.sink_positions.len())?;
        for sink in &self.sink_positions {
            body.extend_from_slice(&sink.partition.to_le_bytes());
            body.extend_from_slice(&sink.offset.to_le_bytes());
        }
        let record_bytes = body.len() + RECORD_FRAME_BYTES;
        if record_bytes > CHECKPOINT_RECORD_BYTES_MAX {
            return invalid(format!(
                "checkpoint record of {record_bytes} bytes exceeds {CHECKPOINT_RECORD_BYTES_MAX}"
            ));
        }
        let mut record = Vec::with_capacity(record_bytes);
        record.extend_from_slice(&CHECKPOINT_RECORD_MAGIC);
        record.extend_from_slice(&CHECKPOINT_RECORD_VERSION.to_le_bytes());
        record.extend_from_slice(&(body.len() as u32).to_le_bytes());
        record.extend_from_slice(&body);
        let crc = crc32c::crc32c(&record);
        record.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(record.len(), record_bytes);
        Ok(record)
    }

    /// Decodes a record's bytes.
    ///
    /// # Errors
    /// A description of the first thing wrong with them: bad magic, unknown version, length
    /// or CRC mismatch, truncated fields, trailing bytes, a path that is not UTF-8.
    pub fn decode(bytes: &[u8]) -> Result<CompletedCheckpoint, String> {
        if bytes.len() < RECORD_FRAME_BYTES {
            return Err(format!("{} bytes is shorter than any checkpoint record", bytes.len()));
        }
        if bytes[0..8] != CHECKPOINT_RECORD_MAGIC {
            return Err("bad magic (not a zabflow checkpoint record)".to_owned());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("four bytes"));
        if version != CHECKPOINT_RECORD_VERSION {
            return Err(format!(
                "record version {version}; this build reads version {CHECKPOINT_RECORD_VERSION}"
            ));
        }
        let body_bytes = u32::from_le_bytes(bytes[12..16].try_into().expect("four bytes"));
        if body_bytes as usize != bytes.len() - RECORD_FRAME_BYTES {
            return Err(format!(
                "body length {body_bytes} does not match the record's {} bytes",
                bytes.len()
            ));
        }
        let (covered, crc_bytes) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes(crc_bytes.try_into().expect("four bytes"));
        if crc32c::crc32c(covered) != crc {
            return Err("CRC mismatch (the record is damaged)".to_owned());
        }
        let mut body = BodyReader { bytes: &covered[16..] };
        let record = decode_body(&mut body)?;
        if !body.bytes.is_empty() {
            return Err(format!("{} bytes after the last field", body.bytes.len()));
        }
        Ok(record)
    }
}

fn put_count(body: &mut Vec<u8>, count: usize) -> CoordinatorResult<()> {
    let count = u32::try_from(count)
        .map_err(|_| CoordinatorError::InvalidArgument(format!("{count} entries")))?;
    body.extend_from_slice(&count.to_le_bytes());
    Ok(())
}

fn decode_body(body: &mut BodyReader<'_>) -> Result<CompletedCheckpoint, String> {
    let epoch = body.u64()?;
    let timestamp_ms = body.u64()?;
    let sources = body.count(12)?;
    let source_offsets = (0..sources)
        .map(|_| Ok(SourceOffset { partition: body.u32()?, offset: body.u64()? }))
        .collect::<Result<Vec<_>, String>>()?;
    let files = body.count(18)?;
    let state_files = (0..files)
        .map(|_| {
            let key_group = body.u32()?;
            let bytes = body.u64()?;
            let crc32c = body.u32()?;
            let path_bytes = usize::from(body.u16()?);
            let path = String::from_utf8(body.take(path_bytes)?.to_vec())
                .map_err(|_| "a state file path is not UTF-8".to_owned())?;
            Ok(StateFile { key_group, path, bytes, crc32c })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let sinks = body.count(12)?;
    let sink_positions = (0..sinks)
        .map(|_| Ok(SinkPosition { partition: body.u32()?, offset: body.u64()? }))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(CompletedCheckpoint { epoch, timestamp_ms, source_offsets, state_files, sink_positions })
}

/// Reads fields from the front of a record body.
struct BodyReader<'a> {
    bytes: &'a [u8],
}

impl<'a> BodyReader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < count {
            return Err(format!("truncated: {count} bytes needed, {} left", self.bytes.len()));
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("two bytes")))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }

    /// A count of entries of at least `entry_bytes_min` bytes each, checked against what is
    /// left so a damaged count cannot make the decoder allocate without bound.
    fn count(&mut self, entry_bytes_min: usize) -> Result<usize, String> {
        let count = self.u32()? as usize;
        if count.saturating_mul(entry_bytes_min) > self.bytes.len() {
            return Err(format!("count {count} exceeds the {} bytes left", self.bytes.len()));
        }
        Ok(count)
    }
}

/// The znode paths of one cluster (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZnodeLayout {
    cluster: String,
    root: String,
}

/// The prefix of every contender's election znode name.
pub const CANDIDATE_PREFIX: &str = "c_";

impl ZnodeLayout {
    /// The layout of `cluster`.
    ///
    /// # Errors
    /// [`CoordinatorError::InvalidArgument`] for a bad name (see the module doc).
    pub fn new(cluster: &str) -> CoordinatorResult<ZnodeLayout> {
        validate_name("cluster", cluster)?;
        Ok(ZnodeLayout { cluster: cluster.to_owned(), root: format!("/zabflow/{cluster}") })
    }

    /// The cluster's name.
    #[must_use]
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// `/zabflow/<cluster>`.
    #[must_use]
    pub fn root(&self) -> &str {
        &self.root
    }

    /// `/zabflow/<cluster>/leader`: the parent of the contenders' znodes.
    #[must_use]
    pub fn leader(&self) -> String {
        format!("{}/leader", self.root)
    }

    /// `/zabflow/<cluster>/workers`.
    #[must_use]
    pub fn workers(&self) -> String {
        format!("{}/workers", self.root)
    }

    /// `/zabflow/<cluster>/workers/<id>`.
    ///
    /// # Errors
    /// As [`ZnodeLayout::new`], for `id`.
    pub fn worker(&self, id: &str) -> CoordinatorResult<String> {
        validate_name("worker id", id)?;
        Ok(format!("{}/workers/{id}", self.root))
    }

    /// `/zabflow/<cluster>/jobs/<job>`.
    ///
    /// # Errors
    /// As [`ZnodeLayout::new`], for `job`.
    pub fn job(&self, job: &str) -> CoordinatorResult<String> {
        validate_name("job", job)?;
        Ok(format!("{}/jobs/{job}", self.root))
    }

    /// `/zabflow/<cluster>/jobs`: the parent of every job's znodes.
    #[must_use]
    pub fn jobs(&self) -> String {
        format!("{}/jobs", self.root)
    }

    /// `/zabflow/<cluster>/jobs/<job>/spec`: a job submitted to the cluster's workers (what
    /// to run, and how far it got).
    ///
    /// # Errors
    /// As [`ZnodeLayout::job`].
    pub fn job_spec(&self, job: &str) -> CoordinatorResult<String> {
        Ok(format!("{}/spec", self.job(job)?))
    }

    /// `/zabflow/<cluster>/jobs/<job>/checkpoint-counter`.
    ///
    /// # Errors
    /// As [`ZnodeLayout::job`].
    pub fn checkpoint_counter(&self, job: &str) -> CoordinatorResult<String> {
        Ok(format!("{}/checkpoint-counter", self.job(job)?))
    }

    /// `/zabflow/<cluster>/jobs/<job>/checkpoints`.
    ///
    /// # Errors
    /// As [`ZnodeLayout::job`].
    pub fn checkpoints(&self, job: &str) -> CoordinatorResult<String> {
        Ok(format!("{}/checkpoints", self.job(job)?))
    }

    /// `/zabflow/<cluster>/jobs/<job>/checkpoints/<epoch:019>`.
    ///
    /// # Errors
    /// As [`ZnodeLayout::job`]; `InvalidArgument` for an epoch above [`EPOCH_MAX`].
    pub fn checkpoint(&self, job: &str, epoch: u64) -> CoordinatorResult<String> {
        Ok(format!("{}/{}", self.checkpoints(job)?, checkpoint_name(epoch)?))
    }
}

/// The znode name of a checkpoint: the epoch as 19 decimal digits, so names sort as epochs.
///
/// # Errors
/// `InvalidArgument` for an epoch above [`EPOCH_MAX`].
pub fn checkpoint_name(epoch: u64) -> CoordinatorResult<String> {
    if epoch > EPOCH_MAX {
        return Err(CoordinatorError::InvalidArgument(format!("epoch {epoch} > {EPOCH_MAX}")));
    }
    Ok(format!("{epoch:019}"))
}

/// The epoch a checkpoint znode's name encodes, or `None` if `name` is not one.
#[must_use]
pub fn parse_checkpoint_name(name: &str) -> Option<u64> {
    if name.len() != 19 || !name.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The sequence number of a contender's znode name (`c_<session>-<seq:010>`), or `None`.
#[must_use]
pub fn parse_candidate_sequence(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(CANDIDATE_PREFIX)?;
    let (_, digits) = rest.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Checks that `name` is one path segment of the allowed characters.
///
/// # Errors
/// [`CoordinatorError::InvalidArgument`] naming `what` and the name.
pub fn validate_name(what: &str, name: &str) -> CoordinatorResult<()> {
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-');
    let valid = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name != "."
        && name != ".."
        && name.bytes().all(allowed);
    if !valid {
        return Err(CoordinatorError::InvalidArgument(format!(
            "{what} {name:?}: 1..={NAME_BYTES_MAX} bytes of [A-Za-z0-9_.-], not . or .."
        )));
    }
    Ok(())
}

/// What the stream engine needs from the coordination service: worker membership, job-leader
/// election, the checkpoint epoch counter and the store of completed checkpoints.
///
/// One coordinator is one session. Its ephemeral znodes (membership, candidacy) live as long
/// as the session; when the session expires, every call fails with
/// [`CoordinatorError::SessionExpired`], [`Coordinator::is_leader`] turns false, and the
/// owner must start again with a new coordinator.
pub trait Coordinator: Send + Sync {
    /// The session's state.
    fn session_state(&self) -> SessionState;

    /// Registers this process as worker `id` with `address` (an ephemeral znode).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad id; `Service` if another live session holds the id.
    fn register_worker(&self, id: &str, address: &str) -> CoordinatorResult<()>;

    /// The workers registered now, sorted by id.
    ///
    /// # Errors
    /// As every call: `SessionExpired`, `Unavailable`, `Service`.
    fn workers(&self) -> CoordinatorResult<Vec<Worker>>;

    /// Enters the leader election with `address`; returns at once. Campaigning twice is a
    /// no-op. The outcome is seen through [`Coordinator::is_leader`] and
    /// [`Coordinator::await_leadership`].
    ///
    /// # Errors
    /// As every call.
    fn campaign(&self, address: &str) -> CoordinatorResult<()>;

    /// Whether this contender leads now: its znode is the lowest and the session is
    /// connected. False after the session expired.
    fn is_leader(&self) -> bool;

    /// Waits until this contender leads.
    ///
    /// # Errors
    /// `Timeout` after `timeout`; `SessionExpired`; `InvalidArgument` without `campaign`.
    fn await_leadership(&self, timeout: Duration) -> CoordinatorResult<()>;

    /// Leaves the election (deletes this contender's znode); the next contender leads.
    ///
    /// # Errors
    /// As every call.
    fn resign(&self) -> CoordinatorResult<()>;

    /// The address the current leader wrote, or `None` when nobody campaigns.
    ///
    /// # Errors
    /// As every call.
    fn leader_address(&self) -> CoordinatorResult<Option<String>>;

    /// Draws the next checkpoint epoch of `job` (from 1 on): never the same epoch twice,
    /// whichever process draws it; epochs only grow (gaps are possible).
    ///
    /// # Errors
    /// As every call; `Corrupt` if the counter znode does not hold a number.
    fn next_checkpoint_epoch(&self, job: &str) -> CoordinatorResult<u64>;

    /// Records `checkpoint` of `job` as completed. Only the leader may: the write is fenced
    /// by its candidacy, so a leader whose session expired cannot record.
    ///
    /// # Errors
    /// `NotLeader`; `CheckpointExists` for an epoch recorded before with other contents;
    /// `InvalidArgument` for a record that does not encode; as every call.
    fn record_checkpoint(
        &self,
        job: &str,
        checkpoint: &CompletedCheckpoint,
    ) -> CoordinatorResult<()>;

    /// The epochs of `job`'s recorded checkpoints, ascending.
    ///
    /// # Errors
    /// As every call.
    fn checkpoints(&self, job: &str) -> CoordinatorResult<Vec<u64>>;

    /// The recorded checkpoint `epoch` of `job`.
    ///
    /// # Errors
    /// `NoSuchCheckpoint`; `Corrupt` if its record does not decode or names another epoch.
    fn checkpoint(&self, job: &str, epoch: u64) -> CoordinatorResult<CompletedCheckpoint>;

    /// The newest recorded checkpoint of `job`, or `None` if there is none.
    ///
    /// # Errors
    /// `Corrupt` if the newest record is damaged (the caller may fall back to an older one
    /// with [`Coordinator::checkpoints`] and [`Coordinator::checkpoint`]); as every call.
    fn latest_checkpoint(&self, job: &str) -> CoordinatorResult<Option<CompletedCheckpoint>>;

    /// Deletes all but the `keep` newest checkpoint records of `job` and returns what it
    /// deleted, so the caller can delete their state files. Only the leader may.
    ///
    /// # Errors
    /// `NotLeader`; `InvalidArgument` for `keep == 0`; as every call.
    fn prune(&self, job: &str, keep: usize) -> CoordinatorResult<Pruned>;
}

/// What [`Coordinator::prune`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Deleted records that decoded: their state files may now be deleted.
    pub checkpoints: Vec<CompletedCheckpoint>,
    /// Epochs of deleted records that did not decode (their state files are unknown).
    pub corrupt_epochs: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CompletedCheckpoint {
        CompletedCheckpoint {
            epoch: 42,
            timestamp_ms: 1_700_000_000_000,
            source_offsets: vec![SourceOffset { partition: 0, offset: 10 }],
            state_files: vec![StateFile {
                key_group: 7,
                path: "state/42/kg-7".to_owned(),
                bytes: 1234,
                crc32c: 0xdead_beef,
            }],
            sink_positions: vec![SinkPosition { partition: 1, offset: 99 }],
        }
    }

    #[test]
    fn record_round_trips() {
        let record = sample();
        let bytes = record.encode().unwrap();
        assert_eq!(CompletedCheckpoint::decode(&bytes).unwrap(), record);
        let empty = CompletedCheckpoint { source_offsets: vec![], ..record };
        let empty = CompletedCheckpoint { state_files: vec![], sink_positions: vec![], ..empty };
        assert_eq!(CompletedCheckpoint::decode(&empty.encode().unwrap()).unwrap(), empty);
    }

    #[test]
    fn every_damaged_byte_and_every_truncation_is_refused() {
        let bytes = sample().encode().unwrap();
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x40;
            assert!(CompletedCheckpoint::decode(&damaged).is_err(), "byte {position}");
            assert!(CompletedCheckpoint::decode(&bytes[..position]).is_err(), "cut {position}");
        }
        let error = CompletedCheckpoint::decode(b"{\"epoch\": 1}").unwrap_err();
        assert!(error.contains("shorter") || error.contains("magic"), "{error}");
    }

    #[test]
    fn oversized_records_and_epochs_are_refused() {
        let file = StateFile { key_group: 0, path: "p".repeat(4000), bytes: 0, crc32c: 0 };
        let big = CompletedCheckpoint { state_files: vec![file; 300], ..sample() };
        assert!(matches!(big.encode(), Err(CoordinatorError::InvalidArgument(_))));
        let late = CompletedCheckpoint { epoch: EPOCH_MAX + 1, ..sample() };
        assert!(late.encode().is_err());
        assert!(checkpoint_name(EPOCH_MAX + 1).is_err());
    }

    #[test]
    fn state_totals_count_each_shared_file_once() {
        let mut checkpoint = sample();
        let file = |key_group, path: &str, bytes| StateFile {
            key_group,
            path: path.to_owned(),
            bytes,
            crc32c: 7,
        };
        checkpoint.state_files =
            vec![file(0, "e/shard-0", 100), file(1, "e/shard-0", 100), file(2, "e/shard-1", 40)];
        assert_eq!(checkpoint.state_totals(), (2, 140));
    }

    #[test]
    fn layout_paths_and_names() {
        let layout = ZnodeLayout::new("prod-1").unwrap();
        assert_eq!(layout.leader(), "/zabflow/prod-1/leader");
        assert_eq!(layout.worker("w1").unwrap(), "/zabflow/prod-1/workers/w1");
        assert_eq!(
            layout.checkpoint_counter("wc").unwrap(),
            "/zabflow/prod-1/jobs/wc/checkpoint-counter"
        );
        assert_eq!(layout.jobs(), "/zabflow/prod-1/jobs");
        assert_eq!(layout.job_spec("wc").unwrap(), "/zabflow/prod-1/jobs/wc/spec");
        assert_eq!(
            layout.checkpoint("wc", 42).unwrap(),
            "/zabflow/prod-1/jobs/wc/checkpoints/0000000000000000042"
        );
        assert_eq!(parse_checkpoint_name("0000000000000000042"), Some(42));
        assert_eq!(parse_checkpoint_name("42"), None);
        assert_eq!(parse_candidate_sequence("c_00000000000000ab-0000000012"), Some(12));
        assert_eq!(parse_candidate_sequence("x-0000000012"), None);
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(NAME_BYTES_MAX + 1)] {
            assert!(ZnodeLayout::new(bad).is_err(), "{bad:?}");
        }
    }
}
