//! One segment file: its header, its name, its creation, its recovery scan, and the shared
//! read-only view (`SegmentView`) that readers use while the writer appends.
//!
//! ```text
//! segment  = header frame* tail
//! header   = magic:"ZABFLOG\0" | version:u32 LE | flags:u32 LE (=0)
//!          | base_offset:u64 LE | reserved:u32 LE (=0) | header_crc:u32 LE   (32 bytes)
//! header_crc = crc32c(the 28 header bytes before it)
//! tail     = zero bytes up to the preallocated file size
//! name     = base_offset as 20 decimal digits ++ ".log"
//! ```
//!
//! A segment is created as `<name>.tmp` (header written, space preallocated, fsynced),
//! then renamed into place and the directory fsynced: a segment file under its final name
//! always has a valid header. Bytes of a view's map below its published end never change
//! (the writer only writes past it; truncation writes a new file and renames it over).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use memmap2::Mmap;

use super::frame::{check_frame, FrameCheck};
use crate::constants::{
    FRAME_HEADER_BYTES, INDEX_INTERVAL_RECORDS, RECORD_BYTES_MAX, SEGMENT_HEADER_BYTES,
    TORN_TAIL_CRC_BYTES_MAX, ZERO_CHUNK_BYTES,
};
use crate::error::Error;

const MAGIC: [u8; 8] = *b"ZABFLOG\0";
const FORMAT_VERSION: u32 = 1;
const NAME_SUFFIX: &str = ".log";
pub(crate) const TEMPORARY_SUFFIX: &str = ".tmp";

/// The header bytes of a segment whose first record has offset `base_offset`.
pub(crate) fn encode_header(base_offset: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&base_offset.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..28]);
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The base offset a valid header carries, or why the header is not valid.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<u64, &'static str> {
    if bytes.len() < SEGMENT_HEADER_BYTES as usize {
        return Err("file shorter than a segment header");
    }
    let crc = u32::from_le_bytes(bytes[28..32].try_into().expect("four bytes"));
    if bytes[0..8] != MAGIC {
        return Err("bad segment magic");
    }
    if crc32c::crc32c(&bytes[0..28]) != crc {
        return Err("segment header CRC mismatch");
    }
    if u32::from_le_bytes(bytes[8..12].try_into().expect("four bytes")) != FORMAT_VERSION {
        return Err("unsupported segment format version");
    }
    Ok(u64::from_le_bytes(bytes[16..24].try_into().expect("eight bytes")))
}

/// The file name of the segment starting at `base_offset`.
pub(crate) fn segment_name(base_offset: u64) -> String {
    format!("{base_offset:020}{NAME_SUFFIX}")
}

/// The base offset a segment file name encodes, if `name` is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(NAME_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Fsyncs a directory, making file creations, renames and deletions in it durable.
pub(crate) fn sync_directory(dir: &Path) -> Result<(), Error> {
    let context = || format!("fsync directory {}", dir.display());
    let directory = File::open(dir).map_err(|e| Error::io(context(), e))?;
    directory.sync_all().map_err(|e| Error::io(context(), e))
}

/// Reserves `bytes` for `file` with fallocate (or sets its size where that is unsupported);
/// without `reserve` the file is sparse (used by the full-disk tests).
fn preallocate(file: &File, bytes: u64, reserve: bool) -> io::Result<()> {
    if reserve {
        // SAFETY: fallocate only reads its integer arguments; the descriptor is open.
        let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, bytes as libc::off_t) };
        if result == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(error);
        }
    }
    file.set_len(bytes)
}

/// Writes zeros over `[start, end)` of `file`, [`ZERO_CHUNK_BYTES`] per call.
fn write_zeros(file: &File, start: u64, end: u64) -> io::Result<()> {
    let zeros = vec![0_u8; ZERO_CHUNK_BYTES.min(end.saturating_sub(start) as usize)];
    let mut position = start;
    while position < end {
        let length = (end - position).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..length], position)?;
        position += length as u64;
    }
    Ok(())
}

/// Creates the segment file for `base_offset` of `file_bytes` bytes, durably.
pub(crate) fn create_segment(
    dir: &Path,
    base_offset: u64,
    file_bytes: u64,
    reserve: bool,
) -> Result<(PathBuf, File), Error> {
    let path = dir.join(segment_name(base_offset));
    let temporary = dir.join(segment_name(base_offset) + TEMPORARY_SUFFIX);
    let result = write_new_segment(&temporary, &encode_header(base_offset), file_bytes, reserve);
    let file = match result {
        Ok(file) => file,
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            return Err(error);
        }
    };
    std::fs::rename(&temporary, &path)
        .map_err(|e| Error::io(format!("rename {}", temporary.display()), e))?;
    sync_directory(dir)?;
    Ok((path, file))
}

/// Name of the spare segment: a file already sized and zero-filled, prepared in the
/// background so that rolling to a new segment does not wait for its zeros.
const SPARE_FILE_NAME: &str = "spare.tmp";

/// Prepares the spare segment file in `dir`: `file_bytes` long, reserved, zero-filled (see
/// `LogOptions::zero_fill`) and synced. Its header is written when it becomes a segment.
pub(crate) fn create_spare(dir: &Path, file_bytes: u64) -> Result<File, Error> {
    let path = dir.join(SPARE_FILE_NAME);
    let result = write_new_segment(&path, &[], file_bytes, true).and_then(|file| {
        let context = || format!("zero-fill {}", path.display());
        write_zeros(&file, 0, file_bytes).map_err(|e| Error::io(context(), e))?;
        file.sync_data().map_err(|e| Error::io(context(), e))?;
        Ok(file)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// Turns the spare `file` (see [`create_spare`]) into the segment for `base_offset`,
/// durably: header written and synced, file renamed into place, directory synced.
pub(crate) fn promote_spare(
    dir: &Path,
    base_offset: u64,
    file: File,
) -> Result<(PathBuf, File), Error> {
    let spare = dir.join(SPARE_FILE_NAME);
    let path = dir.join(segment_name(base_offset));
    let context = |what: &str| format!("{what} {}", spare.display());
    file.write_all_at(&encode_header(base_offset), 0)
        .map_err(|e| Error::io(context("write"), e))?;
    file.sync_data().map_err(|e| Error::io(context("fsync"), e))?;
    std::fs::rename(&spare, &path).map_err(|e| Error::io(context("rename"), e))?;
    sync_directory(dir)?;
    Ok((path, file))
}

/// Writes `prefix` into a new file at `path`, sized and synced; used for creation and for
/// truncation (which copies the kept bytes into a fresh file).
pub(crate) fn write_new_segment(
    path: &Path,
    prefix: &[u8],
    file_bytes: u64,
    reserve: bool,
) -> Result<File, Error> {
    let context = |what: &str| format!("{what} {}", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(context("create"), e))?;
    preallocate(&file, file_bytes, reserve).map_err(|e| Error::io(context("preallocate"), e))?;
    file.write_all_at(prefix, 0).map_err(|e| Error::io(context("write"), e))?;
    file.sync_all().map_err(|e| Error::io(context("fsync"), e))?;
    Ok(file)
}

/// Makes `[start, end)` of `file` read as zeros: in place where the filesystem can, else by
/// writing zeros.
pub(crate) fn zero_range(file: &File, start: u64, end: u64) -> io::Result<()> {
    if start >= end {
        return Ok(());
    }
    let modes = [
        libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
    ];
    for mode in modes {
        let length = (end - start) as libc::off_t;
        // SAFETY: fallocate only reads its integer arguments; the descriptor is open.
        let result = unsafe { libc::fallocate(file.as_raw_fd(), mode, start as i64, length) };
        if result == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(error);
        }
    }
    write_zeros(file, start, end)
}

/// One past the last byte of `file` that may hold data: bytes past it lie in holes and read
/// as zeros. Recovery scans only up to here, so it never faults in a hole of a sparse
/// segment (on tmpfs, a read fault allocates a page, and a full tmpfs answers with SIGBUS).
pub(crate) fn data_end(file: &File, file_bytes: u64) -> io::Result<u64> {
    let mut end = 0u64;
    let mut position = 0u64;
    while position < file_bytes {
        // SAFETY: lseek only reads its integer arguments; the descriptor is open.
        let data = unsafe { libc::lseek(file.as_raw_fd(), position as i64, libc::SEEK_DATA) };
        if data < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                Some(libc::ENXIO) => Ok(end),
                Some(libc::EINVAL) => Ok(file_bytes),
                _ => Err(io::Error::last_os_error()),
            };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(file.as_raw_fd(), data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        end = (hole as u64).min(file_bytes);
        position = hole as u64;
    }
    Ok(end)
}

/// Maps a segment file read-only.
pub(crate) fn map_segment(path: &Path, file: &File) -> Result<Mmap, Error> {
    // SAFETY: the directory lock keeps other zabflow writers away from the file; this
    // process's writer never changes bytes a reader can reference (it writes past the
    // published end only, and truncation renames a new file over the old one), and readers
    // build slices of published frames only (see `SegmentView::published_bytes`).
    unsafe { Mmap::map(file) }.map_err(|e| Error::io(format!("mmap {}", path.display()), e))
}

/// A sparse index entry: the record `offset` starts at byte `position` of its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub offset: u64,
    pub position: u64,
}

/// How a segment's data ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Only zeros follow the last record.
    Clean,
    /// Non-zero bytes that hold no valid frame follow: a torn write of `bytes` bytes.
    Torn { position: u64, bytes: u64 },
}

/// What a recovery scan of one segment found.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    pub records: u64,
    pub end_position: u64,
    pub index: Vec<IndexEntry>,
    pub tail: Tail,
}

/// Scans every frame of a segment's bytes (header included), verifying every CRC.
///
/// # Errors
/// `Corrupt` if a bad frame is followed by a valid one: that is damaged data in the middle
/// of the log, which recovery must never cut off silently.
pub(crate) fn scan_segment(
    bytes: &[u8],
    base_offset: u64,
    path: &Path,
) -> Result<SegmentScan, Error> {
    let mut position = SEGMENT_HEADER_BYTES;
    let mut records = 0u64;
    let mut index = Vec::new();
    let stop_reason = loop {
        match check_frame(&bytes[position as usize..]) {
            FrameCheck::Valid { frame_bytes, .. } => {
                if records % INDEX_INTERVAL_RECORDS == 0 {
                    index.push(IndexEntry { offset: base_offset + records, position });
                }
                records += 1;
                position += frame_bytes;
            }
            FrameCheck::End => break "zero frame header",
            FrameCheck::Invalid(reason) => break reason,
        }
    };
    let tail = classify_tail(bytes, position, path, stop_reason)?;
    Ok(SegmentScan { records, end_position: position, index, tail })
}

/// Decides whether the bytes from `position` on are clean, torn, or hide a valid frame.
fn classify_tail(bytes: &[u8], position: u64, path: &Path, reason: &str) -> Result<Tail, Error> {
    let rest = &bytes[position as usize..];
    let Some(last_nonzero) = rest.iter().rposition(|&b| b != 0) else {
        return Ok(Tail::Clean);
    };
    let corrupt = |reason: String| Error::Corrupt { path: path.to_path_buf(), position, reason };
    match find_valid_frame(&rest[1..]) {
        FrameSearch::Found(at) => Err(corrupt(format!(
            "{reason}, yet a valid frame follows at byte {}",
            position + 1 + at as u64
        ))),
        FrameSearch::TooCostly => {
            Err(corrupt(format!("{reason}; the tail is too large to prove torn")))
        }
        FrameSearch::None => Ok(Tail::Torn { position, bytes: last_nonzero as u64 + 1 }),
    }
}

enum FrameSearch {
    Found(usize),
    None,
    TooCostly,
}

/// Looks for a valid frame starting at any byte of `bytes`, skipping zero runs quickly.
fn find_valid_frame(bytes: &[u8]) -> FrameSearch {
    let header_bytes = FRAME_HEADER_BYTES as usize;
    let mut crc_bytes_budget = TORN_TAIL_CRC_BYTES_MAX;
    let mut at = 0usize;
    while at + header_bytes <= bytes.len() {
        let Some(nonzero) = bytes[at..].iter().position(|&b| b != 0) else {
            return FrameSearch::None;
        };
        // Every header starting more than 7 bytes before a non-zero byte is all zeros.
        at += nonzero.saturating_sub(header_bytes - 1);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes")) as u64;
        // Only a length that fits costs a CRC; others are rejected by `check_frame` at once.
        if len <= RECORD_BYTES_MAX as u64 && len <= (bytes.len() - at - header_bytes) as u64 {
            if crc_bytes_budget < len {
                return FrameSearch::TooCostly;
            }
            crc_bytes_budget -= len;
            if let FrameCheck::Valid { .. } = check_frame(&bytes[at..]) {
                return FrameSearch::Found(at);
            }
        }
        at += 1;
    }
    FrameSearch::None
}

/// The shared, read-only view of one segment: what readers need to find and read records.
pub(crate) struct SegmentView {
    pub base_offset: u64,
    pub path: PathBuf,
    map: Mmap,
    /// One past the last published record of this segment.
    pub end_offset: AtomicU64,
    /// One past the last published byte (the position of the next frame).
    pub end_position: AtomicU64,
    pub index: RwLock<Vec<IndexEntry>>,
}

impl SegmentView {
    pub(crate) fn new(
        base_offset: u64,
        path: PathBuf,
        map: Mmap,
        end: (u64, u64),
        index: Vec<IndexEntry>,
    ) -> SegmentView {
        assert!(end.1 <= map.len() as u64, "segment end lies past its map");
        SegmentView {
            base_offset,
            path,
            map,
            end_offset: AtomicU64::new(end.0),
            end_position: AtomicU64::new(end.1),
            index: RwLock::new(index),
        }
    }

    pub(crate) fn file_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// Publishes the segment's end: records below `offset` (bytes below `position`) are
    /// readable from now on. The position is stored first, so a reader that sees the new
    /// offset also sees the bytes it needs.
    pub(crate) fn publish(&self, offset: u64, position: u64) {
        assert!(position <= self.file_bytes(), "published end lies past the segment");
        self.end_position.store(position, Ordering::Release);
        self.end_offset.store(offset, Ordering::Release);
    }

    /// The bytes `[start, start + bytes)`, which must lie below the published end.
    ///
    /// Returns `None` if they do not (a reader raced with a truncation).
    pub(crate) fn published_bytes(&self, start: u64, bytes: u64) -> Option<&[u8]> {
        let end = start.checked_add(bytes)?;
        if end > self.end_position.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: the range lies inside the map (the published end never exceeds the map
        // length, asserted in `publish`), and published bytes never change for the life of
        // this map (module doc), so the shared slice is not mutated while it lives. A slice
        // of the whole map is never made, because bytes past the published end do change.
        Some(unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(start as usize), bytes as usize)
        })
    }

    /// The bytes `[start, start + bytes)`, which were published when the caller checked
    /// them (a `Record` was made from them), even if a truncation has lowered the end since.
    pub(crate) fn bytes_once_published(&self, start: u64, bytes: u64) -> &[u8] {
        assert!(start + bytes <= self.file_bytes(), "record lies past its segment");
        // SAFETY: in bounds (asserted above); the range was published when the record was
        // read, and a published byte of a map never changes afterwards: truncation writes a
        // new file and renames it over this one instead of editing it.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(start as usize), bytes as usize) }
    }

    /// The byte position of the published record `offset` of this segment (or of the end,
    /// for the writer, which calls it with its own published end).
    pub(crate) fn position_of(&self, offset: u64) -> Option<u64> {
        let entry = self.index_entry_for(offset);
        let mut position = entry.position;
        for _ in entry.offset..offset {
            let header = self.published_bytes(position, FRAME_HEADER_BYTES)?;
            let len = u32::from_le_bytes(header[0..4].try_into().expect("four bytes"));
            position += FRAME_HEADER_BYTES + len as u64;
        }
        Some(position)
    }

    /// Lowers the published end to `offset` (at `position`), for truncation.
    pub(crate) fn lower_end(&self, offset: u64, position: u64) {
        assert!(offset <= self.end_offset.load(Ordering::Acquire), "lower_end raises the end");
        self.end_offset.store(offset, Ordering::Release);
        self.end_position.store(position, Ordering::Release);
    }

    /// The index entry to start walking from to reach `offset`.
    pub(crate) fn index_entry_for(&self, offset: u64) -> IndexEntry {
        let index = self.index.read().expect("index lock poisoned");
        let slot = index.partition_point(|entry| entry.offset <= offset);
        if slot == 0 {
            IndexEntry { offset: self.base_offset, position: SEGMENT_HEADER_BYTES }
        } else {
            index[slot - 1]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::encode_frame;

    #[test]
    fn header_round_trip_and_names() {
        let header = encode_header(42);
        assert_eq!(decode_header(&header), Ok(42));
        let mut bad = header;
        bad[17] ^= 1;
        assert!(decode_header(&bad).is_err());
        assert_eq!(segment_name(7), "00000000000000000007.log");
        assert_eq!(parse_segment_name("00000000000000000007.log"), Some(7));
        assert_eq!(parse_segment_name("0007.log"), None);
    }

    fn segment_with(records: &[&[u8]], file_bytes: usize) -> Vec<u8> {
        let mut bytes = encode_header(0).to_vec();
        for record in records {
            encode_frame(&mut bytes, record);
        }
        bytes.resize(file_bytes, 0);
        bytes
    }

    #[test]
    fn scan_clean_torn_and_corrupt() {
        let path = Path::new("segment");
        let bytes = segment_with(&[b"one", b"two", b"three"], 256);
        let scan = scan_segment(&bytes, 0, path).expect("clean");
        assert_eq!((scan.records, scan.tail), (3, Tail::Clean));
        let mut torn = bytes.clone();
        let last = scan.end_position as usize - 5;
        torn[last] ^= 0xff;
        let scan = scan_segment(&torn, 0, path).expect("torn");
        assert_eq!(scan.records, 2);
        assert!(matches!(scan.tail, Tail::Torn { bytes: 13, .. }), "{:?}", scan.tail);
        let mut middle = bytes.clone();
        middle[SEGMENT_HEADER_BYTES as usize + 9] ^= 0xff;
        let error = scan_segment(&middle, 0, path).expect_err("corrupt");
        assert!(error.to_string().contains("at byte 32"), "{error}");
    }
}
