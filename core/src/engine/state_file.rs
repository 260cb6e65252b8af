//! The state file: one shard's snapshot of its key groups at one checkpoint.
//!
//! ```text
//! <state_dir>/<job>/<epoch:019>/shard-<i>.state      one file per (checkpoint, shard)
//!
//! file      = magic:"ZFSTATE\0" | version:u32 (=2) | job_bytes:u16 | job:[u8] (UTF-8)
//!           | epoch:u64 | shard:u32 | key_groups:u32 | watermark:u64
//!           | ref_count:u32 | ref* | group_count:u32 | group* | section* | crc:u32
//! ref       = epoch:u64 | shard:u32 | bytes:u64 | crc32c:u32   (an earlier state file)
//! group     = key_group:u32 | chunk_count:u32 | chunk*
//! chunk     = id:u64 | file:u32 | offset:u64 | bytes:u64
//!             (file 0: this file; r > 0: the r-th ref; offset from that file's start)
//! section   = what the operator wrote for one chunk of one key group (see `snapshot`)
//! crc       = crc32c(every byte before it)
//! ```
//!
//! Integers are little endian. `key_groups` is the job's total (its maximum parallelism),
//! `watermark` the shard's operator time at the snapshot. A file is written to
//! `<name>.tmp`, fsynced, renamed into place and its directory fsynced, on the job's state
//! writer thread, never on a shard; its sections are written straight from the shard's
//! key group buffers (no copy into one file image).
//!
//! **Chunks and incremental snapshots.** An operator may cut its state into chunks (the
//! aligned windows: one per pane). A chunk the operator did not change since the shard's
//! previous snapshot, when that snapshot's checkpoint completed, is not written again: the
//! new file's index points into the earlier file that holds its bytes (a `ref`, with that
//! file's length and crc32c). References are one level deep: a ref always names the file
//! that physically holds the chunk, never a file that refers further. The driver keeps
//! every file a kept checkpoint refers to when it prunes (see
//! [`checkpoint_driver`](super::checkpoint_driver)).
//!
//! The checkpoint record names, for **every** key group of the job, the file holding it
//! (`StateFile { key_group, path, bytes, crc32c }`, with the whole file's length and
//! crc32c), so a restore on any number of shards finds each group it now owns, and a
//! group with no state is still known to be empty rather than missing. A restore checks the
//! length and the crc32c against the record (a referenced file: against the ref), then the
//! header against the job, the epoch and the key group count it expects, and that each
//! group it needs is indexed: a file of another job, epoch or key group count, or of
//! another format version, is refused with an error naming it.

use crate::constants::STATE_FILE_BYTES_MAX;
use crate::Error;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The magic bytes of a state file.
pub const STATE_FILE_MAGIC: [u8; 8] = *b"ZFSTATE\0";

/// The version of the state file format this build writes and reads (1: one section per
/// key group, no chunks and no refs).
pub const STATE_FILE_VERSION: u32 = 2;

/// Who wrote a state file, and for which checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFileHeader {
    pub job: String,
    pub epoch: u64,
    pub shard: u32,
    /// The job's number of key groups.
    pub key_groups: u32,
    /// The shard's operator time at the snapshot.
    pub watermark: u64,
}

/// An earlier state file of the job that a state file takes chunks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef {
    pub epoch: u64,
    pub shard: u32,
    /// The whole file's length and crc32c.
    pub bytes: u64,
    pub crc32c: u32,
}

impl FileRef {
    /// Its path relative to the job's state directory.
    pub fn relative_path(&self) -> String {
        relative_path(self.epoch, self.shard as usize)
    }
}

/// One chunk of one key group: `bytes` bytes at `offset` of file `file` (0: the file
/// indexing it, `r > 0`: its `r`-th ref).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    pub id: u64,
    pub file: u32,
    pub offset: u64,
    pub bytes: u64,
}

/// The path of shard `shard`'s state file of checkpoint `epoch`, relative to the job's
/// state directory (what the checkpoint record stores).
pub fn relative_path(epoch: u64, shard: usize) -> String {
    format!("{}/shard-{shard}.state", epoch_dir_name(epoch))
}

/// The directory of checkpoint `epoch`'s state files, relative to the job's state directory.
pub fn epoch_dir_name(epoch: u64) -> String {
    format!("{epoch:019}")
}

const FIXED_HEAD_BYTES: usize = 8 + 4 + 2 + 8 + 4 + 4 + 8;
const REF_BYTES: usize = 8 + 4 + 8 + 4;
const GROUP_BYTES: usize = 4 + 4;
const CHUNK_BYTES: usize = 8 + 4 + 8 + 8;

/// Length of the head (everything before the sections) of a file of job `job` with
/// `refs` refs, `groups` key groups and `chunks` chunk entries in all.
pub fn head_bytes(job: &str, refs: usize, groups: usize, chunks: usize) -> usize {
    FIXED_HEAD_BYTES
        + job.len()
        + 4
        + refs * REF_BYTES
        + 4
        + groups * GROUP_BYTES
        + chunks * CHUNK_BYTES
}

/// The head of a state file: header, refs and the index of `groups` (key group, its
/// chunks), ascending by group. Its length is [`head_bytes`]; the sections follow it.
pub fn encode_head(
    header: &StateFileHeader,
    refs: &[FileRef],
    groups: &[(usize, Vec<ChunkEntry>)],
) -> Vec<u8> {
    let job = header.job.as_bytes();
    let chunks = groups.iter().map(|(_, chunks)| chunks.len()).sum();
    let head = head_bytes(&header.job, refs.len(), groups.len(), chunks);
    let mut out = Vec::with_capacity(head);
    out.extend_from_slice(&STATE_FILE_MAGIC);
    out.extend_from_slice(&STATE_FILE_VERSION.to_le_bytes());
    out.extend_from_slice(&(job.len() as u16).to_le_bytes());
    out.extend_from_slice(job);
    out.extend_from_slice(&header.epoch.to_le_bytes());
    out.extend_from_slice(&header.shard.to_le_bytes());
    out.extend_from_slice(&header.key_groups.to_le_bytes());
    out.extend_from_slice(&header.watermark.to_le_bytes());
    out.extend_from_slice(&(refs.len() as u32).to_le_bytes());
    for file in refs {
        out.extend_from_slice(&file.epoch.to_le_bytes());
        out.extend_from_slice(&file.shard.to_le_bytes());
        out.extend_from_slice(&file.bytes.to_le_bytes());
        out.extend_from_slice(&file.crc32c.to_le_bytes());
    }
    out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    for (group, chunks) in groups {
        out.extend_from_slice(&(*group as u32).to_le_bytes());
        out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
        for chunk in chunks {
            out.extend_from_slice(&chunk.id.to_le_bytes());
            out.extend_from_slice(&chunk.file.to_le_bytes());
            out.extend_from_slice(&chunk.offset.to_le_bytes());
            out.extend_from_slice(&chunk.bytes.to_le_bytes());
        }
    }
    assert_eq!(out.len(), head);
    out
}

/// The bytes of a whole state file whose sections are the `sections`, one after the other
/// after the head (the chunk offsets of `groups` must say so). For tests and tools; the
/// state writer writes the pieces ([`write_parts`]).
pub fn encode(
    header: &StateFileHeader,
    refs: &[FileRef],
    groups: &[(usize, Vec<ChunkEntry>)],
    sections: &[&[u8]],
) -> Vec<u8> {
    let mut out = encode_head(header, refs, groups);
    sections.iter().for_each(|section| out.extend_from_slice(section));
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes a state file made of `parts` (the head, then the sections) and its crc32c to
/// `path` durably (tmp, fsync, rename, fsync directory), creating the directory if needed.
/// Returns the file's length and crc32c.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_parts(path: &Path, parts: &[&[u8]]) -> Result<(u64, u32), Error> {
    let dir = path.parent().expect("a state file lies in an epoch directory");
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let body = parts.iter().fold(0u32, |crc, part| crc32c::crc32c_append(crc, part));
    let trailer = body.to_le_bytes();
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(&trailer);
    crate::durable_file::replace_parts(path, &all)?;
    let bytes = all.iter().map(|part| part.len() as u64).sum();
    Ok((bytes, crc32c::crc32c_append(body, &trailer)))
}

/// Writes `bytes` (a whole file, as [`encode`] makes it) to `path` durably. Returns the
/// file's crc32c.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<u32, Error> {
    let dir = path.parent().expect("a state file lies in an epoch directory");
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    crate::durable_file::replace(path, bytes)?;
    Ok(crc32c::crc32c(bytes))
}

/// A state file read back and verified.
#[derive(Debug)]
pub struct LoadedStateFile {
    pub path: PathBuf,
    pub header: StateFileHeader,
    /// The earlier files it takes chunks from.
    pub refs: Vec<FileRef>,
    bytes: Vec<u8>,
    /// (key group, its chunks), as indexed.
    groups: Vec<(usize, Vec<ChunkEntry>)>,
}

/// What a restore expects of a state file.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub job: &'a str,
    pub epoch: u64,
    pub key_groups: usize,
    /// Length and crc32c the checkpoint record (or the referring file) gives.
    pub bytes: u64,
    pub crc32c: u32,
}

impl LoadedStateFile {
    /// Reads and verifies `path` (see the module doc).
    ///
    /// # Errors
    /// [`Error::StateFile`] naming the file and what is wrong with it.
    pub fn load(path: &Path, expected: Expected<'_>) -> Result<LoadedStateFile, Error> {
        let bad = |reason: String| Error::StateFile { path: path.to_owned(), reason };
        if expected.bytes > STATE_FILE_BYTES_MAX {
            return Err(bad(format!("{} bytes exceeds {STATE_FILE_BYTES_MAX}", expected.bytes)));
        }
        let bytes = fs::read(path).map_err(|error| bad(format!("cannot be read: {error}")))?;
        if bytes.len() as u64 != expected.bytes {
            return Err(bad(format!(
                "{} bytes, the checkpoint says {}",
                bytes.len(),
                expected.bytes
            )));
        }
        let crc = crc32c::crc32c(&bytes);
        if crc != expected.crc32c {
            return Err(bad(format!(
                "crc32c {crc:#010x}, the checkpoint says {:#010x} (the file is damaged)",
                expected.crc32c
            )));
        }
        let (header, refs, groups) = parse(&bytes).map_err(bad)?;
        if header.job != expected.job
            || header.epoch != expected.epoch
            || header.key_groups as usize != expected.key_groups
        {
            return Err(bad(format!(
                "holds job {} epoch {} of {} key groups, expected job {} epoch {} of {}",
                header.job,
                header.epoch,
                header.key_groups,
                expected.job,
                expected.epoch,
                expected.key_groups
            )));
        }
        Ok(LoadedStateFile { path: path.to_owned(), header, refs, bytes, groups })
    }

    /// The chunks of key group `group`, or `None` if the file does not index it.
    pub fn chunks(&self, group: usize) -> Option<&[ChunkEntry]> {
        let (_, chunks) = self.groups.iter().find(|(g, _)| *g == group)?;
        Some(chunks)
    }

    /// `bytes` bytes at `offset`, if they lie before the crc.
    pub fn slice(&self, offset: u64, bytes: u64) -> Option<&[u8]> {
        let end = offset.checked_add(bytes).filter(|&end| end <= self.body_end() as u64)?;
        Some(&self.bytes[offset as usize..end as usize])
    }

    /// The whole file's length.
    pub fn file_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn body_end(&self) -> usize {
        self.bytes.len() - 4
    }

    /// The bytes of key group `group` held in this file itself, its chunks' in order (a
    /// file without refs holds every chunk), or `None` if the file does not index it.
    pub fn section(&self, group: usize) -> Option<Vec<u8>> {
        let chunks = self.chunks(group)?;
        let mut out = Vec::new();
        for chunk in chunks.iter().filter(|chunk| chunk.file == 0) {
            out.extend_from_slice(self.slice(chunk.offset, chunk.bytes)?);
        }
        Some(out)
    }
}

/// The refs of the state file at `path`, read from its head only (what the driver keeps
/// when it prunes, after a restart).
///
/// # Errors
/// A description of what is wrong with the file.
pub fn read_refs(path: &Path) -> Result<Vec<FileRef>, String> {
    let mut file = fs::File::open(path).map_err(|error| format!("cannot be read: {error}"))?;
    let mut head = Vec::new();
    let mut wanted = 64 * 1024;
    loop {
        let missing = wanted - head.len();
        let read = (&mut file).take(missing as u64).read_to_end(&mut head);
        let read = read.map_err(|error| format!("cannot be read: {error}"))?;
        match parse_prefix(&mut Cursor { bytes: &head }) {
            Ok((_, refs)) => return Ok(refs),
            Err(PrefixError::Short(needed)) if read == missing && needed > head.len() => {
                wanted = needed;
            }
            Err(PrefixError::Short(_)) => return Err("truncated header".to_owned()),
            Err(PrefixError::Bad(reason)) => return Err(reason),
        }
    }
}

type Parsed = (StateFileHeader, Vec<FileRef>, Vec<(usize, Vec<ChunkEntry>)>);

struct Cursor<'a> {
    bytes: &'a [u8],
}

enum PrefixError {
    /// The prefix needs at least this many bytes in all.
    Short(usize),
    Bad(String),
}

impl Cursor<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        if self.bytes.len() < count {
            return None;
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Some(head)
    }

    fn number(&mut self, count: usize) -> Option<u64> {
        let head = self.take(count)?;
        Some(head.iter().rev().fold(0u64, |value, &byte| value << 8 | u64::from(byte)))
    }
}

/// Header and refs from the front of a file (whose start `cursor` is at).
fn parse_prefix(cursor: &mut Cursor<'_>) -> Result<(StateFileHeader, Vec<FileRef>), PrefixError> {
    let short = |needed: usize| PrefixError::Short(needed);
    if cursor.take(8).ok_or(short(FIXED_HEAD_BYTES))? != STATE_FILE_MAGIC {
        return Err(PrefixError::Bad("bad magic (not a zabflow state file)".to_owned()));
    }
    let version = cursor.number(4).ok_or(short(FIXED_HEAD_BYTES))? as u32;
    if version != STATE_FILE_VERSION {
        return Err(PrefixError::Bad(format!(
            "format version {version}; this build reads version {STATE_FILE_VERSION} only"
        )));
    }
    let job_bytes = cursor.number(2).ok_or(short(FIXED_HEAD_BYTES))? as usize;
    let prefix = FIXED_HEAD_BYTES + job_bytes + 4;
    let job = cursor.take(job_bytes).ok_or(short(prefix))?.to_vec();
    let job = String::from_utf8(job)
        .map_err(|_| PrefixError::Bad("the job name is not UTF-8".to_owned()))?;
    let epoch = cursor.number(8).ok_or(short(prefix))?;
    let shard = cursor.number(4).ok_or(short(prefix))? as u32;
    let key_groups = cursor.number(4).ok_or(short(prefix))? as u32;
    let watermark = cursor.number(8).ok_or(short(prefix))?;
    let count = cursor.number(4).ok_or(short(prefix))? as usize;
    let needed = prefix.saturating_add(count.saturating_mul(REF_BYTES));
    if count.saturating_mul(REF_BYTES) > cursor.bytes.len() {
        return Err(short(needed));
    }
    let mut refs = Vec::with_capacity(count);
    for _ in 0..count {
        let epoch = cursor.number(8).ok_or(short(needed))?;
        let ref_shard = cursor.number(4).ok_or(short(needed))? as u32;
        let bytes = cursor.number(8).ok_or(short(needed))?;
        let crc32c = cursor.number(4).ok_or(short(needed))? as u32;
        refs.push(FileRef { epoch, shard: ref_shard, bytes, crc32c });
    }
    Ok((StateFileHeader { job, epoch, shard, key_groups, watermark }, refs))
}

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.len() < 4 {
        return Err("truncated header".to_owned());
    }
    let body_end = bytes.len() - 4;
    let mut cursor = Cursor { bytes: &bytes[..body_end] };
    let (header, refs) = parse_prefix(&mut cursor).map_err(|error| match error {
        PrefixError::Short(_) => "truncated header".to_owned(),
        PrefixError::Bad(reason) => reason,
    })?;
    let truncated = || "truncated index".to_owned();
    let count = cursor.number(4).ok_or_else(truncated)? as usize;
    if count.saturating_mul(GROUP_BYTES) > cursor.bytes.len() {
        return Err(format!("{count} key groups indexed in a file of {} bytes", bytes.len()));
    }
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        let group = cursor.number(4).ok_or_else(truncated)? as usize;
        let chunks = cursor.number(4).ok_or_else(truncated)? as usize;
        if group >= header.key_groups as usize {
            return Err(format!("key group {group} indexed, of {}", header.key_groups));
        }
        if chunks.saturating_mul(CHUNK_BYTES) > cursor.bytes.len() {
            return Err(format!(
                "{chunks} chunks of key group {group} in a file of {} bytes",
                bytes.len()
            ));
        }
        let mut entries = Vec::with_capacity(chunks);
        for _ in 0..chunks {
            let id = cursor.number(8).ok_or_else(truncated)?;
            let file = cursor.number(4).ok_or_else(truncated)? as u32;
            let offset = cursor.number(8).ok_or_else(truncated)?;
            let length = cursor.number(8).ok_or_else(truncated)?;
            let inside = offset.checked_add(length).is_some_and(|end| end <= body_end as u64);
            if file as usize > refs.len() || (file == 0 && !inside) {
                return Err(format!(
                    "chunk {id} of key group {group} indexed at {offset}+{length} of file {file}"
                ));
            }
            entries.push(ChunkEntry { id, file, offset, bytes: length });
        }
        groups.push((group, entries));
    }
    Ok((header, refs, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> StateFileHeader {
        StateFileHeader { job: "count".into(), epoch: 9, shard: 1, key_groups: 8, watermark: 77 }
    }

    fn index(head: u64) -> Vec<(usize, Vec<ChunkEntry>)> {
        let chunk = |id, file, offset, bytes| ChunkEntry { id, file, offset, bytes };
        vec![
            (4, vec![chunk(0, 0, head, 3), chunk(1000, 1, 77, 5)]),
            (5, vec![]),
            (6, vec![chunk(0, 0, head + 3, 100)]),
        ]
    }

    #[test]
    fn a_state_file_round_trips_and_refuses_damage_and_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(relative_path(9, 1));
        let refs = [FileRef { epoch: 7, shard: 1, bytes: 500, crc32c: 0xfeed }];
        let head = head_bytes("count", 1, 3, 3) as u64;
        let bytes = encode(&header(), &refs, &index(head), &[&[1, 2, 3], &[9; 100]]);
        let crc = write(&path, &bytes).unwrap();
        let expected = Expected {
            job: "count",
            epoch: 9,
            key_groups: 8,
            bytes: bytes.len() as u64,
            crc32c: crc,
        };
        let loaded = LoadedStateFile::load(&path, expected).unwrap();
        assert_eq!(loaded.header, header());
        assert_eq!(loaded.refs, refs);
        assert_eq!(loaded.chunks(4).unwrap(), &index(head)[0].1[..]);
        assert_eq!(loaded.section(4), Some(vec![1u8, 2, 3]), "its own chunks only");
        assert_eq!(loaded.section(5), Some(Vec::new()));
        assert_eq!(loaded.section(6).map(|section| section.len()), Some(100));
        assert_eq!(loaded.section(7), None);
        assert_eq!(loaded.slice(head + 3, 101), None, "the crc is no section");
        assert_eq!(read_refs(&path).unwrap(), refs);
        for other in [
            Expected { job: "other", ..expected },
            Expected { epoch: 8, ..expected },
            Expected { key_groups: 16, ..expected },
        ] {
            let error = LoadedStateFile::load(&path, other).unwrap_err().to_string();
            assert!(error.contains("shard-1.state") && error.contains("expected"), "{error}");
        }
        let mut damaged = bytes.clone();
        damaged[40] ^= 1;
        fs::write(&path, &damaged).unwrap();
        let error = LoadedStateFile::load(&path, expected).unwrap_err().to_string();
        assert!(error.contains("crc32c") && error.contains("damaged"), "{error}");
        fs::write(&path, &bytes[..20]).unwrap();
        assert!(LoadedStateFile::load(&path, expected).is_err());
        assert!(read_refs(&path).is_err());
    }

    #[test]
    fn pieces_written_apart_make_the_same_file_and_bad_indexes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let head = head_bytes("count", 0, 3, 2) as u64;
        let mut groups = index(head);
        groups[0].1.truncate(1);
        let whole = encode(&header(), &[], &groups, &[&[1, 2, 3], &[9; 100]]);
        let path = dir.path().join(relative_path(9, 1));
        let head_bytes = encode_head(&header(), &[], &groups);
        let (bytes, crc) = write_parts(&path, &[&head_bytes, &[1, 2, 3], &[], &[9; 100]]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole);
        assert_eq!((bytes, crc), (whole.len() as u64, crc32c::crc32c(&whole)));
        // A chunk past the end, a ref that does not exist: refused by name.
        for (file, offset) in [(0, head + 200), (1, 0)] {
            let mut bad = groups.clone();
            bad[2].1[0] = ChunkEntry { id: 0, file, offset, bytes: 1 };
            let bytes = encode(&header(), &[], &bad, &[&[1, 2, 3], &[9; 100]]);
            let crc = write(&path, &bytes).unwrap();
            let expected = Expected {
                job: "count",
                epoch: 9,
                key_groups: 8,
                bytes: bytes.len() as u64,
                crc32c: crc,
            };
            let error = LoadedStateFile::load(&path, expected).unwrap_err().to_string();
            assert!(error.contains("chunk 0 of key group 6"), "{error}");
        }
    }

    #[test]
    fn a_file_of_the_first_format_version_is_refused_by_version() {
        // Version 1: header, one section per key group, no refs, no chunks.
        let mut bytes = STATE_FILE_MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&5u16.to_le_bytes());
        bytes.extend_from_slice(b"count");
        bytes.extend_from_slice(&9u64.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&8u32.to_le_bytes());
        bytes.extend_from_slice(&77u64.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(relative_path(9, 1));
        let crc = write(&path, &bytes).unwrap();
        let expected = Expected {
            job: "count",
            epoch: 9,
            key_groups: 8,
            bytes: bytes.len() as u64,
            crc32c: crc,
        };
        let error = LoadedStateFile::load(&path, expected).unwrap_err().to_string();
        assert!(error.contains("format version 1") && error.contains("version 2 only"), "{error}");
        assert!(read_refs(&path).unwrap_err().contains("format version 1"));
    }
}
