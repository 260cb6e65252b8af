//! Two-phase output: what of a sink's output is *committed* (visible), and how readers see
//! only that.
//!
//! A checkpointed job's sinks write their output as they go (so a commit costs no copy),
//! but a record is visible only once the checkpoint that covers it is recorded in the
//! coordination service. Phase one happens at the checkpoint's barrier: the sink makes what
//! it wrote durable and reports its end ([`SinkCommit`]). Phase two happens after the
//! checkpoint driver has recorded the epoch: it rewrites the **commit file** beside each
//! output partition with the new end. Recovery truncates every output partition to the
//! restored checkpoint's end and rewrites its commit file, so output written after the last
//! recorded checkpoint, never visible, is dropped and written again: readers that go
//! through the commit file see every result exactly once.
//!
//! ```text
//! log output   <dir>/partition-<i>/          a zabflow_core::log directory (the sink's)
//!              <dir>/partition-<i>.commit    its commit file; end = records (next offset)
//! file output  <dir>/part-<i>.<csv|jsonl>    rows, one file per shard
//!              <dir>/part-<i>.<ext>.commit   its commit file; end = bytes
//!
//! commit file  = magic:"ZFCOMMIT" | version:u32 LE (=1) | epoch:u64 LE | end:u64 LE
//!              | crc:u32 LE                      (32 bytes; crc = crc32c of the 28 before it)
//! ```
//!
//! A commit file is replaced atomically: written to `<name>.tmp`, fsynced, renamed over the
//! old one, and the directory fsynced, so a crash leaves the old or the new commit point,
//! never a mix. A partition without a commit file has nothing committed. A damaged commit
//! file is an error naming it (never read as "nothing committed", which would hide output).

use crate::coordinator::SinkPosition;
use crate::log::{Durability, Log, LogOptions};
use crate::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// The magic bytes of a commit file.
pub const COMMIT_FILE_MAGIC: [u8; 8] = *b"ZFCOMMIT";

/// The version of the commit file format this build writes and reads.
pub const COMMIT_FILE_VERSION: u32 = 1;

/// Bytes of a commit file.
pub const COMMIT_FILE_BYTES: usize = 32;

/// Phase one of a sink's two-phase commit: its output is durable up to `position`, which
/// becomes visible when the checkpoint driver writes `commit_file` after recording the
/// checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkCommit {
    /// The output partition and the end of its output (records or bytes).
    pub position: SinkPosition,
    /// The partition's commit file.
    pub commit_file: PathBuf,
}

/// What a commit file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPoint {
    /// The checkpoint that committed the output.
    pub epoch: u64,
    /// End of the committed output: records of a log partition, bytes of a file.
    pub end: u64,
}

/// The commit file of log output partition `index` under `dir`.
pub fn log_commit_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("partition-{index}.commit"))
}

/// The commit file of an output file.
pub fn file_commit_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".commit");
    PathBuf::from(name)
}

/// Writes `point` to `path`, replacing it atomically and durably (see the module doc).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_commit_file(path: &Path, point: CommitPoint) -> Result<(), Error> {
    crate::durable_file::replace(path, &commit_file_bytes(point))
}

/// The bytes of a commit file: magic, version, epoch, end, CRC.
fn commit_file_bytes(point: CommitPoint) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(COMMIT_FILE_BYTES);
    bytes.extend_from_slice(&COMMIT_FILE_MAGIC);
    bytes.extend_from_slice(&COMMIT_FILE_VERSION.to_le_bytes());
    bytes.extend_from_slice(&point.epoch.to_le_bytes());
    bytes.extend_from_slice(&point.end.to_le_bytes());
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(bytes.len(), COMMIT_FILE_BYTES);
    bytes
}

/// Reads a commit file; `None` if it does not exist (nothing committed).
///
/// # Errors
/// [`Error::StateFile`] naming the file when it is damaged or of another version;
/// [`Error::Io`] when it cannot be read.
pub fn read_commit_file(path: &Path) -> Result<Option<CommitPoint>, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::io(format!("read {}", path.display()), error)),
    };
    let bad = |reason: String| Error::StateFile { path: path.to_owned(), reason };
    if bytes.len() != COMMIT_FILE_BYTES {
        return Err(bad(format!("{} bytes, a commit file has {COMMIT_FILE_BYTES}", bytes.len())));
    }
    if bytes[0..8] != COMMIT_FILE_MAGIC {
        return Err(bad("bad magic (not a zabflow commit file)".into()));
    }
    let field = |range: std::ops::Range<usize>| -> u64 {
        bytes[range].iter().rev().fold(0u64, |value, &byte| value << 8 | u64::from(byte))
    };
    let version = field(8..12) as u32;
    if version != COMMIT_FILE_VERSION {
        return Err(bad(format!("version {version}; this build reads {COMMIT_FILE_VERSION}")));
    }
    if crc32c::crc32c(&bytes[..28]) != field(28..32) as u32 {
        return Err(bad("CRC mismatch (the commit file is damaged)".into()));
    }
    Ok(Some(CommitPoint { epoch: field(12..20), end: field(20..28) }))
}

/// One partition of a log output and its committed end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedPartition {
    pub partition: usize,
    /// The commit point, `None` when nothing is committed.
    pub commit: Option<CommitPoint>,
    /// Records the partition's log holds (committed or not).
    pub records_held: u64,
    /// The committed records' payloads, in offset order.
    pub records: Vec<Vec<u8>>,
}

/// The committed records of every partition of the log output under `dir`
/// (`partition-0`, `partition-1`, … as many as exist), for readers such as `zabflow log
/// dump` and the exactly-once tests. Opens each partition's log, so it cannot run while a
/// job writes to it (the log is locked); stop the job first.
///
/// # Errors
/// [`Error::InvalidOptions`] if `dir` holds no partition; [`Error::StateFile`] for a damaged
/// commit file or one committing more records than the partition holds; what `Log::open`
/// returns.
pub fn committed_records(dir: &Path) -> Result<Vec<CommittedPartition>, Error> {
    let mut partitions = Vec::new();
    while super::log_connector::partition_dir(dir, partitions.len()).is_dir() {
        let index = partitions.len();
        let path = super::log_connector::partition_dir(dir, index);
        let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
        let log = Log::open(&path, options)?;
        let commit_path = log_commit_file(dir, index);
        let commit = read_commit_file(&commit_path)?;
        let end = commit.map_or(0, |point| point.end);
        let reader = log.reader();
        if end > reader.next_offset() || end < reader.first_offset() && end > 0 {
            return Err(Error::StateFile {
                path: commit_path,
                reason: format!(
                    "commits {end} records, partition {index} holds offsets {}..{}",
                    reader.first_offset(),
                    reader.next_offset()
                ),
            });
        }
        let mut records = Vec::new();
        for record in reader.iter_from(reader.first_offset())? {
            let record = record?;
            if record.offset() >= end {
                break;
            }
            records.push(record.payload().to_vec());
        }
        let records_held = reader.next_offset();
        partitions.push(CommittedPartition { partition: index, commit, records_held, records });
    }
    if partitions.is_empty() {
        let message = format!("{} holds no partition-0 directory", dir.display());
        return Err(Error::InvalidOptions(message));
    }
    Ok(partitions)
}

/// The committed records of the log output under `dir`, decoded as `R`, partition after
/// partition.
///
/// # Errors
/// As [`committed_records`]; [`Error::StateFile`] naming the partition's commit file when a
/// committed record does not decode as `R`.
pub fn committed_decoded<R: super::log_connector::LogRecord>(dir: &Path) -> Result<Vec<R>, Error> {
    let mut decoded = Vec::new();
    for partition in committed_records(dir)? {
        for (offset, payload) in partition.records.iter().enumerate() {
            let mut bytes: &[u8] = payload;
            match R::decode(&mut bytes) {
                Some(record) if bytes.is_empty() => decoded.push(record),
                _ => {
                    return Err(Error::StateFile {
                        path: log_commit_file(dir, partition.partition),
                        reason: format!("committed record {offset} does not decode"),
                    })
                }
            }
        }
    }
    Ok(decoded)
}

/// The committed bytes of an output file (`FileSink::resumable`'s rows).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::StateFile`] for a damaged commit file
/// or one committing more bytes than the file holds.
pub fn committed_file_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let commit_path = file_commit_file(path);
    let end = read_commit_file(&commit_path)?.map_or(0, |point| point.end);
    let mut bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && end == 0 => Vec::new(),
        Err(error) => return Err(Error::io(format!("read {}", path.display()), error)),
    };
    if (bytes.len() as u64) < end {
        let reason = format!("commits {end} bytes, the file holds {}", bytes.len());
        return Err(Error::StateFile { path: commit_path, reason });
    }
    bytes.truncate(end as usize);
    Ok(bytes)
}

/// Rolls log output partition `index` under `dir` back to `end` records (opening it unless
/// `log` is given) and commits that end for `epoch`.
///
/// # Errors
/// [`Error::Checkpoint`] when the partition holds fewer records than `end` (its output was
/// lost or replaced); what truncating or writing the commit file returns.
pub(crate) fn roll_back_log(
    dir: &Path,
    index: usize,
    log: Option<&mut Log>,
    epoch: u64,
    end: u64,
) -> Result<(), Error> {
    let mut opened;
    let log = match log {
        Some(log) => log,
        None => {
            let path = super::log_connector::partition_dir(dir, index);
            let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
            opened = Log::open(&path, options)?;
            &mut opened
        }
    };
    let (first, next) = (log.first_offset(), log.next_offset());
    if end > next || (end < first && end > 0) {
        return Err(Error::Checkpoint(format!(
            "output partition {index} holds offsets {first}..{next}, the checkpoint of epoch \
             {epoch} committed {end} (was the output replaced?)"
        )));
    }
    log.truncate_after(end.max(first))?;
    write_commit_file(&log_commit_file(dir, index), CommitPoint { epoch, end })
}

/// The positions of partitions `from..` that exist under `dir` according to `exists`, for
/// the last shard of a restored job to roll back (output partitions an earlier run on more
/// shards left behind).
pub(crate) fn extra_partitions(
    positions: &[SinkPosition],
    from: usize,
    exists: impl Fn(usize) -> bool,
) -> Vec<(usize, u64)> {
    let mut extra = Vec::new();
    let mut index = from;
    loop {
        let position = positions.iter().find(|p| p.partition as usize == index);
        if !exists(index) && position.is_none() {
            break;
        }
        extra.push((index, position.map_or(0, |p| p.offset)));
        index += 1;
    }
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_files_round_trip_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partition-0.commit");
        assert_eq!(read_commit_file(&path).unwrap(), None);
        let point = CommitPoint { epoch: 7, end: (1 << 40) + 3 };
        write_commit_file(&path, point).unwrap();
        assert_eq!(read_commit_file(&path).unwrap(), Some(point));
        let mut bytes = fs::read(&path).unwrap();
        for index in 0..bytes.len() {
            bytes[index] ^= 0x40;
            fs::write(&path, &bytes).unwrap();
            let error = read_commit_file(&path).unwrap_err().to_string();
            assert!(error.contains("partition-0.commit"), "{error}");
            bytes[index] ^= 0x40;
        }
        fs::write(&path, &bytes[..20]).unwrap();
        assert!(read_commit_file(&path).is_err());
    }
}
