//! The state file: one shard's snapshot of its key groups at one checkpoint.
//!
//! ```text
//! <state_dir>/<job>/<epoch:019>/shard-<i>.state      one file per (checkpoint, shard)
//!
//! file      = magic:"ZFSTATE\0" | version:u32 (=1) | job_bytes:u16 | job:[u8] (UTF-8)
//!           | epoch:u64 | shard:u32 | key_groups:u32 | watermark:u64
//!           | group_count:u32 | group* | section* | crc:u32
//! group     = key_group:u32 | offset:u64 | bytes:u64   (the section's place in the file)
//! section   = what the operator wrote for the key group (see `snapshot`)
//! crc       = crc32c(every byte before it)
//! ```
//!
//! Integers are little endian. `key_groups` is the job's total (its maximum parallelism),
//! `watermark` the shard's operator time at the snapshot. A file is written to
//! `<name>.tmp`, fsynced, renamed into place and its directory fsynced, on the job's state
//! writer thread, never on a shard.
//!
//! The checkpoint record names, for **every** key group of the job, the file holding it
//! (`StateFile { key_group, path, bytes, crc32c }`, with the whole file's length and
//! crc32c), so a restore on any number of shards finds each group it now owns, and a
//! group with no state is still known to be empty rather than missing. A restore checks the
//! length and the crc32c against the record, then the header against the job, the epoch
//! and the key group count it expects, and that each group it needs is indexed: a file of
//! another job, epoch or key group count is refused with an error naming it.

use crate::constants::STATE_FILE_BYTES_MAX;
use crate::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// The magic bytes of a state file.
pub const STATE_FILE_MAGIC: [u8; 8] = *b"ZFSTATE\0";

/// The version of the state file format this build writes and reads.
pub const STATE_FILE_VERSION: u32 = 1;

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

/// The path of shard `shard`'s state file of checkpoint `epoch`, relative to the job's
/// state directory (what the checkpoint record stores).
pub fn relative_path(epoch: u64, shard: usize) -> String {
    format!("{}/shard-{shard}.state", epoch_dir_name(epoch))
}

/// The directory of checkpoint `epoch`'s state files, relative to the job's state directory.
pub fn epoch_dir_name(epoch: u64) -> String {
    format!("{epoch:019}")
}

/// The bytes of a state file holding `groups` (key group, section), ascending by group.
pub fn encode(header: &StateFileHeader, groups: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let job = header.job.as_bytes();
    let index_bytes = 4 + groups.len() * 20;
    let head_bytes = 8 + 4 + 2 + job.len() + 8 + 4 + 4 + 8 + index_bytes;
    let sections: usize = groups.iter().map(|(_, bytes)| bytes.len()).sum();
    let mut out = Vec::with_capacity(head_bytes + sections + 4);
    out.extend_from_slice(&STATE_FILE_MAGIC);
    out.extend_from_slice(&STATE_FILE_VERSION.to_le_bytes());
    out.extend_from_slice(&(job.len() as u16).to_le_bytes());
    out.extend_from_slice(job);
    out.extend_from_slice(&header.epoch.to_le_bytes());
    out.extend_from_slice(&header.shard.to_le_bytes());
    out.extend_from_slice(&header.key_groups.to_le_bytes());
    out.extend_from_slice(&header.watermark.to_le_bytes());
    out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    let mut offset = head_bytes as u64;
    for (group, bytes) in groups {
        out.extend_from_slice(&(*group as u32).to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        offset += bytes.len() as u64;
    }
    assert_eq!(out.len(), head_bytes);
    groups.iter().for_each(|(_, bytes)| out.extend_from_slice(bytes));
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes `bytes` to `path` durably (tmp, fsync, rename, fsync directory), creating the
/// directory if needed. Returns the file's crc32c.
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
    bytes: Vec<u8>,
    /// (key group, offset, bytes), as indexed.
    groups: Vec<(usize, usize, usize)>,
}

/// What a restore expects of a state file.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub job: &'a str,
    pub epoch: u64,
    pub key_groups: usize,
    /// Length and crc32c the checkpoint record gives.
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
        let (header, groups) = parse(&bytes).map_err(bad)?;
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
        Ok(LoadedStateFile { path: path.to_owned(), header, bytes, groups })
    }

    /// The section of key group `group`, or `None` if the file does not index it.
    pub fn section(&self, group: usize) -> Option<&[u8]> {
        let (_, offset, bytes) = self.groups.iter().find(|(g, _, _)| *g == group)?;
        Some(&self.bytes[*offset..*offset + *bytes])
    }
}

type Parsed = (StateFileHeader, Vec<(usize, usize, usize)>);

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let mut reader: &[u8] = bytes;
    let take = |reader: &mut &[u8], count: usize| -> Result<Vec<u8>, String> {
        if reader.len() < count {
            return Err("truncated header".to_owned());
        }
        let (head, rest) = reader.split_at(count);
        *reader = rest;
        Ok(head.to_vec())
    };
    let number = |reader: &mut &[u8], count: usize| -> Result<u64, String> {
        let head = take(reader, count)?;
        Ok(head.iter().rev().fold(0u64, |value, &byte| value << 8 | u64::from(byte)))
    };
    if take(&mut reader, 8)? != STATE_FILE_MAGIC {
        return Err("bad magic (not a zabflow state file)".to_owned());
    }
    let version = number(&mut reader, 4)? as u32;
    if version != STATE_FILE_VERSION {
        return Err(format!("version {version}; this build reads {STATE_FILE_VERSION}"));
    }
    let job_bytes = number(&mut reader, 2)? as usize;
    let job = String::from_utf8(take(&mut reader, job_bytes)?)
        .map_err(|_| "the job name is not UTF-8".to_owned())?;
    let epoch = number(&mut reader, 8)?;
    let shard = number(&mut reader, 4)? as u32;
    let key_groups = number(&mut reader, 4)? as u32;
    let watermark = number(&mut reader, 8)?;
    let count = number(&mut reader, 4)? as usize;
    if count.saturating_mul(20) > reader.len() {
        return Err(format!("{count} key groups indexed in a file of {} bytes", bytes.len()));
    }
    let body_end = bytes.len() - 4;
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        let group = number(&mut reader, 4)? as usize;
        let offset = number(&mut reader, 8)?;
        let length = number(&mut reader, 8)?;
        let end = offset.checked_add(length).filter(|&end| end <= body_end as u64);
        if end.is_none() || group >= key_groups as usize {
            return Err(format!("key group {group} indexed at {offset}+{length}"));
        }
        groups.push((group, offset as usize, length as usize));
    }
    Ok((StateFileHeader { job, epoch, shard, key_groups, watermark }, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> StateFileHeader {
        StateFileHeader { job: "count".into(), epoch: 9, shard: 1, key_groups: 8, watermark: 77 }
    }

    #[test]
    fn a_state_file_round_trips_and_refuses_damage_and_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(relative_path(9, 1));
        let groups = vec![(4, vec![1, 2, 3]), (5, Vec::new()), (6, vec![9; 100])];
        let bytes = encode(&header(), &groups);
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
        assert_eq!(loaded.section(4), Some(&[1u8, 2, 3][..]));
        assert_eq!(loaded.section(5), Some(&[][..]));
        assert_eq!(loaded.section(6).map(<[u8]>::len), Some(100));
        assert_eq!(loaded.section(7), None);
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
    }
}
