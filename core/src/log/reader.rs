//! Reading a log while it is written: [`LogReader`], [`LogIter`] and [`Record`].
//!
//! Readers never block the writer and never see a record before it is acknowledged. The
//! writer publishes in this order: a new segment joins the shared segment list, frames are
//! written (and synced), then each touched segment's end is published, then the log's
//! `next_offset`, all with release stores; readers load the list, then the ends, with
//! acquire loads. A reader that sees a published offset missing from its list snapshot
//! takes the snapshot again, which then holds it.
//!
//! Payloads are not copied: a [`Record`] keeps its segment's map alive and derefs to the
//! bytes in it. The writer never changes a published byte of a map (truncation writes a new
//! file), so a `Record` stays valid even after `truncate_after` or `truncate_before` drops
//! its offset from the log.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::frame::frame_crc;
use super::segment::SegmentView;
use crate::constants::FRAME_HEADER_BYTES;
use crate::error::Error;

/// The part of a log that readers share with the writer.
pub(crate) struct SharedState {
    segments: RwLock<Arc<Vec<Arc<SegmentView>>>>,
    pub first_offset: AtomicU64,
    pub next_offset: AtomicU64,
}

impl SharedState {
    pub(crate) fn new(segments: Vec<Arc<SegmentView>>) -> SharedState {
        assert!(!segments.is_empty(), "a log always has an active segment");
        let first = segments[0].base_offset;
        let next = segments.last().expect("non-empty").end_offset.load(Ordering::Acquire);
        SharedState {
            segments: RwLock::new(Arc::new(segments)),
            first_offset: AtomicU64::new(first),
            next_offset: AtomicU64::new(next),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<SegmentView>>> {
        self.segments.read().expect("segment list lock poisoned").clone()
    }

    /// Replaces the segment list by an edited copy (readers keep their snapshots).
    pub(crate) fn edit_segments(&self, edit: impl FnOnce(&mut Vec<Arc<SegmentView>>)) {
        let mut segments = self.segments.write().expect("segment list lock poisoned");
        let mut edited = segments.as_ref().clone();
        edit(&mut edited);
        assert!(!edited.is_empty(), "a log always has an active segment");
        assert!(edited.windows(2).all(|pair| pair[0].base_offset < pair[1].base_offset));
        *segments = Arc::new(edited);
    }
}

/// A handle for reading a log from any thread while its writer appends.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<SharedState>,
}

/// One record read from a log: its offset and its payload, borrowed from the segment map.
#[derive(Clone)]
pub struct Record {
    offset: u64,
    segment: Arc<SegmentView>,
    start: u64,
    bytes: u64,
}

impl Record {
    /// The record's offset in the log.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The record's payload.
    pub fn payload(&self) -> &[u8] {
        self.segment.bytes_once_published(self.start, self.bytes)
    }
}

impl Deref for Record {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.payload()
    }
}

impl AsRef<[u8]> for Record {
    fn as_ref(&self) -> &[u8] {
        self.payload()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Record")
            .field("offset", &self.offset)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl LogReader {
    pub(crate) fn new(shared: Arc<SharedState>) -> LogReader {
        LogReader { shared }
    }

    /// The lowest offset the log still holds.
    pub fn first_offset(&self) -> u64 {
        self.shared.first_offset.load(Ordering::Acquire)
    }

    /// One past the last acknowledged record.
    pub fn next_offset(&self) -> u64 {
        self.shared.next_offset.load(Ordering::Acquire)
    }

    /// The record at `offset`, or `None` if it is not acknowledged (yet).
    ///
    /// # Errors
    /// `OffsetOutOfRange` below `first_offset` (retention removed it); `Corrupt` if the
    /// frame fails its CRC (the disk changed under the log).
    pub fn read(&self, offset: u64) -> Result<Option<Record>, Error> {
        let Some(segment) = self.locate(offset)? else { return Ok(None) };
        let Some(position) = segment.position_of(offset) else { return Ok(None) };
        read_frame(&segment, offset, position)
    }

    /// Iterates over the acknowledged records from `offset` on, across segments.
    ///
    /// The iterator returns `None` at the current end; calling `next` again later yields
    /// records published since, so a tailing reader can poll it.
    ///
    /// # Errors
    /// `OffsetOutOfRange` if `offset` is below `first_offset` or above `next_offset`.
    pub fn iter_from(&self, offset: u64) -> Result<LogIter, Error> {
        let (first, next) = (self.first_offset(), self.next_offset());
        if offset < first || offset > next {
            return Err(Error::OffsetOutOfRange { offset, first, next });
        }
        Ok(LogIter { reader: self.clone(), segment: None, position: 0, offset, failed: false })
    }

    /// The segment holding the published record `offset`, if it is published.
    fn locate(&self, offset: u64) -> Result<Option<Arc<SegmentView>>, Error> {
        // Two attempts: a snapshot taken before the writer added a segment may miss a record
        // whose offset is already published; the second snapshot then holds it.
        for _attempt in 0..2 {
            let segments = self.shared.snapshot();
            let (first, next) = (self.first_offset(), self.next_offset());
            if offset < first {
                return Err(Error::OffsetOutOfRange { offset, first, next });
            }
            if offset >= next {
                return Ok(None);
            }
            let slot = segments.partition_point(|segment| segment.base_offset <= offset);
            if slot == 0 {
                continue;
            }
            let segment = &segments[slot - 1];
            if offset < segment.end_offset.load(Ordering::Acquire) {
                return Ok(Some(segment.clone()));
            }
        }
        Ok(None)
    }
}

/// Reads and verifies the published frame of `offset` at `position` of `segment`.
fn read_frame(
    segment: &Arc<SegmentView>,
    offset: u64,
    position: u64,
) -> Result<Option<Record>, Error> {
    let Some(header) = segment.published_bytes(position, FRAME_HEADER_BYTES) else {
        return Ok(None);
    };
    let len_bytes: [u8; 4] = header[0..4].try_into().expect("four bytes");
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("four bytes"));
    let bytes = u32::from_le_bytes(len_bytes) as u64;
    let start = position + FRAME_HEADER_BYTES;
    let Some(payload) = segment.published_bytes(start, bytes) else { return Ok(None) };
    if frame_crc(len_bytes, payload) != crc {
        let reason = format!("record {offset} fails its CRC on read");
        return Err(Error::Corrupt { path: segment.path.clone(), position, reason });
    }
    Ok(Some(Record { offset, segment: segment.clone(), start, bytes }))
}

/// Iterator over acknowledged records; see [`LogReader::iter_from`].
pub struct LogIter {
    reader: LogReader,
    segment: Option<Arc<SegmentView>>,
    position: u64,
    offset: u64,
    failed: bool,
}

impl LogIter {
    /// The offset the next call to `next` reads.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Positions the iterator in the segment holding `self.offset`, if it is published.
    fn seek(&mut self) -> Result<bool, Error> {
        if let Some(segment) = &self.segment {
            if self.offset < segment.end_offset.load(Ordering::Acquire) {
                return Ok(true);
            }
        }
        let Some(segment) = self.reader.locate(self.offset)? else { return Ok(false) };
        let Some(position) = segment.position_of(self.offset) else { return Ok(false) };
        self.segment = Some(segment);
        self.position = position;
        Ok(true)
    }

    fn next_record(&mut self) -> Result<Option<Record>, Error> {
        if !self.seek()? {
            return Ok(None);
        }
        let segment = self.segment.as_ref().expect("seek sets the segment");
        let Some(record) = read_frame(segment, self.offset, self.position)? else {
            return Ok(None);
        };
        self.position = record.start + record.bytes;
        self.offset += 1;
        Ok(Some(record))
    }
}

impl Iterator for LogIter {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(record) => record.map(Ok),
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}
