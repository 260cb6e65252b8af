//! [`Log`]: the single writer of a log directory (see the module doc of `log` for the
//! format, recovery and failure rules it implements).

use std::fs::{self, File, OpenOptions};
use std::ops::Range;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::backend::{probe_uring, Backend, PwriteBackend};
use super::frame::{encode_frame, frame_bytes};
use super::reader::{LogReader, SharedState};
use super::segment::{
    create_segment, create_spare, data_end, decode_header, map_segment, parse_segment_name,
    promote_spare, scan_segment, segment_name, sync_directory, write_new_segment, zero_range,
    IndexEntry, SegmentView, Tail, TEMPORARY_SUFFIX,
};
use super::{BackendChoice, BackendKind, Durability, LogOptions};
use crate::constants::{
    FRAME_HEADER_BYTES, INDEX_INTERVAL_RECORDS, RECORD_BYTES_MAX, SEGMENT_BYTES_MAX,
    SEGMENT_BYTES_MIN, SEGMENT_HEADER_BYTES,
};
use crate::error::Error;

const LOCK_FILE_NAME: &str = "LOCK";

/// What `Log::open` found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files the log holds after recovery.
    pub segments: usize,
    /// Records the log holds after recovery.
    pub records: u64,
    /// Bytes of a torn tail that were zeroed (0 if the log was clean).
    pub torn_bytes_dropped: u64,
    /// The segment the torn tail was in.
    pub torn_segment: Option<PathBuf>,
    /// The byte position in `torn_segment` where the torn tail began.
    pub torn_position: Option<u64>,
    /// Leftover `.tmp` files of interrupted segment creations that were removed.
    pub temporary_files_removed: usize,
}

/// Counters since the log was opened, for benchmarks (e.g. fsyncs per second).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Successful non-empty `append` calls (one per group under group commit).
    pub appends: u64,
    /// Requests acknowledged by the group-commit writer (0 without group commit).
    pub requests: u64,
    pub records: u64,
    pub payload_bytes: u64,
    /// `fdatasync`s issued (linked or plain).
    pub fsyncs: u64,
    /// Appends that failed and were rolled back.
    pub failed_appends: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    appends: AtomicU64,
    pub requests: AtomicU64,
    records: AtomicU64,
    payload_bytes: AtomicU64,
    fsyncs: AtomicU64,
    failed_appends: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LogStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LogStats {
            appends: load(&self.appends),
            requests: load(&self.requests),
            records: load(&self.records),
            payload_bytes: load(&self.payload_bytes),
            fsyncs: load(&self.fsyncs),
            failed_appends: load(&self.failed_appends),
        }
    }

    fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }
}

/// The writer's state of the segment it appends to. `position`/`next_offset` run ahead of
/// the published end while a batch is written; `attempted_end` is the highest byte a write
/// of the current batch may have touched.
#[derive(Clone)]
struct ActiveSegment {
    view: Arc<SegmentView>,
    file: Arc<File>,
    position: u64,
    next_offset: u64,
    attempted_end: u64,
}

/// The single writer of a log directory. See the [module doc](super) for its contract.
pub struct Log {
    dir: PathBuf,
    options: LogOptions,
    _lock: File,
    backend: Box<dyn Backend>,
    shared: Arc<SharedState>,
    active: ActiveSegment,
    /// Segments sealed by the batch in progress, with their ends, published with the batch.
    sealed_in_batch: Vec<(Arc<SegmentView>, u64, u64)>,
    recovery: Recovery,
    write_buffer: Vec<u8>,
    index_buffer: Vec<IndexEntry>,
    counters: Arc<Counters>,
    poisoned: Option<String>,
    /// The next segment's file, being zero-filled in the background (with `preallocate`).
    spare: Option<JoinHandle<Result<File, Error>>>,
}

impl Log {
    /// Opens (creating if missing) the log in `dir` and recovers it.
    ///
    /// # Errors
    /// `InvalidOptions`; `Locked` if another `Log` writes to `dir`; `Corrupt` if a segment
    /// holds damage that is not a torn tail; `Io` for failed system calls, including
    /// `BackendChoice::IoUring` on a kernel that refuses io_uring.
    pub fn open(dir: &Path, options: LogOptions) -> Result<Log, Error> {
        validate_options(&options)?;
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let lock = lock_directory(dir)?;
        let mut recovery = Recovery {
            temporary_files_removed: remove_temporary_files(dir)?,
            ..Recovery::default()
        };
        let mut bases = list_segments(dir)?;
        if bases.is_empty() {
            create_new_segment(dir, 0, &options)?;
            bases.push(0);
        }
        let (mut views, mut last_file) = recover_segments(dir, &bases, &mut recovery)?;
        if let Some((view, file)) = resize_empty_last_segment(dir, &views, &options)? {
            *views.last_mut().expect("at least one segment") = view;
            last_file = file;
        }
        let backend = choose_backend(options.backend)?;
        let last = views.last().expect("at least one segment").clone();
        let shared = Arc::new(SharedState::new(views));
        let position = last.end_position.load(Ordering::Acquire);
        let next_offset = last.end_offset.load(Ordering::Acquire);
        let active = ActiveSegment {
            view: last,
            file: Arc::new(last_file),
            position,
            next_offset,
            attempted_end: position,
        };
        Ok(Log {
            dir: dir.to_path_buf(),
            options,
            _lock: lock,
            backend,
            shared,
            active,
            sealed_in_batch: Vec::new(),
            recovery,
            write_buffer: Vec::new(),
            index_buffer: Vec::new(),
            counters: Arc::new(Counters::default()),
            poisoned: None,
            spare: None,
        }
        .with_spare())
    }

    /// What recovery found when the log was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        self.backend.kind()
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The largest payload `append` accepts: [`RECORD_BYTES_MAX`], or less if a frame that
    /// large would not fit into an empty segment.
    pub fn record_bytes_max(&self) -> usize {
        record_bytes_max(self.options.segment_bytes)
    }

    /// The lowest offset the log holds (retention raises it).
    pub fn first_offset(&self) -> u64 {
        self.shared.first_offset.load(Ordering::Acquire)
    }

    /// The offset the next appended record gets.
    pub fn next_offset(&self) -> u64 {
        self.active.next_offset
    }

    /// A reader for other threads; it sees every record acknowledged from now on.
    pub fn reader(&self) -> LogReader {
        LogReader::new(self.shared.clone())
    }

    /// Counters since the log was opened.
    pub fn stats(&self) -> LogStats {
        self.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Appends `batch` and returns its offsets. With `Durable`, returns after fdatasync.
    ///
    /// # Errors
    /// `RecordTooLarge` (nothing written); `Io` if a write or sync failed: the batch is then
    /// undone (see the module doc) and the log stays usable; `Poisoned` if an earlier undo
    /// failed.
    pub fn append(&mut self, batch: &[&[u8]]) -> Result<Range<u64>, Error> {
        self.check_writable()?;
        let limit = self.record_bytes_max();
        if let Some(record) = batch.iter().find(|record| record.len() > limit) {
            return Err(Error::RecordTooLarge { bytes: record.len(), limit });
        }
        if batch.is_empty() {
            return Ok(self.next_offset()..self.next_offset());
        }
        let mark = self.active.clone();
        match self.write_batch(batch) {
            Ok(range) => {
                self.publish_batch();
                Counters::add(&self.counters.appends, 1);
                Counters::add(&self.counters.records, batch.len() as u64);
                let bytes: usize = batch.iter().map(|record| record.len()).sum();
                Counters::add(&self.counters.payload_bytes, bytes as u64);
                Ok(range)
            }
            Err(error) => {
                Counters::add(&self.counters.failed_appends, 1);
                self.roll_back(mark);
                Err(error)
            }
        }
    }

    /// Writes the batch into the active segment, continuing in new segments as needed.
    fn write_batch(&mut self, batch: &[&[u8]]) -> Result<Range<u64>, Error> {
        let first = self.active.next_offset;
        let mut rest = batch;
        while !rest.is_empty() {
            let fitting = self.records_that_fit(rest);
            if fitting == 0 {
                self.seal_and_create()?;
                continue;
            }
            self.write_chunk(&rest[..fitting])?;
            rest = &rest[fitting..];
        }
        Ok(first..self.active.next_offset)
    }

    /// How many leading records of `records` fit into the rest of the active segment.
    fn records_that_fit(&self, records: &[&[u8]]) -> usize {
        let capacity = self.active.view.file_bytes();
        let mut position = self.active.position;
        let mut count = 0;
        for record in records {
            position += frame_bytes(record.len());
            if position > capacity {
                break;
            }
            count += 1;
        }
        assert!(
            count > 0 || self.active.next_offset > self.active.view.base_offset,
            "a record that passed the size check does not fit into an empty segment"
        );
        count
    }

    /// Frames `records` and writes them (with a linked sync if durable) in one call.
    fn write_chunk(&mut self, records: &[&[u8]]) -> Result<(), Error> {
        self.write_buffer.clear();
        self.index_buffer.clear();
        let base_offset = self.active.view.base_offset;
        let mut offset = self.active.next_offset;
        let mut position = self.active.position;
        for record in records {
            if (offset - base_offset) % INDEX_INTERVAL_RECORDS == 0 {
                self.index_buffer.push(IndexEntry { offset, position });
            }
            encode_frame(&mut self.write_buffer, record);
            position += frame_bytes(record.len());
            offset += 1;
        }
        assert_eq!(position - self.active.position, self.write_buffer.len() as u64);
        assert!(position <= self.active.view.file_bytes(), "chunk overruns its segment");
        self.active.attempted_end = self.active.attempted_end.max(position);
        let durable = self.options.durability == Durability::Durable;
        let file = &self.active.file;
        self.backend
            .write_at(file, self.active.position, &self.write_buffer, durable)
            .map_err(|e| Error::io(format!("append to {}", self.active.view.path.display()), e))?;
        if durable {
            Counters::add(&self.counters.fsyncs, 1);
        }
        let mut index = self.active.view.index.write().expect("index lock poisoned");
        index.extend_from_slice(&self.index_buffer);
        drop(index);
        self.active.position = position;
        self.active.next_offset = offset;
        Ok(())
    }

    /// Syncs the active segment (its data must be durable before a later segment exists)
    /// and makes a new, empty segment active.
    fn seal_and_create(&mut self) -> Result<(), Error> {
        assert!(self.active.next_offset > self.active.view.base_offset, "sealing an empty segment");
        if self.options.durability == Durability::Buffered {
            self.sync_active()?;
        }
        let base = self.active.next_offset;
        let created = self
            .create_next_segment(base)
            .and_then(|(path, file)| Ok((map_segment(&path, &file)?, path, file)));
        let (map, path, file) = match created {
            Ok(created) => created,
            Err(error) => {
                let _ = fs::remove_file(self.dir.join(segment_name(base)));
                return Err(error);
            }
        };
        let view =
            Arc::new(SegmentView::new(base, path, map, (base, SEGMENT_HEADER_BYTES), Vec::new()));
        self.shared.edit_segments(|segments| segments.push(view.clone()));
        let sealed = (self.active.view.clone(), self.active.next_offset, self.active.position);
        self.sealed_in_batch.push(sealed);
        self.active = ActiveSegment {
            view,
            file: Arc::new(file),
            position: SEGMENT_HEADER_BYTES,
            next_offset: base,
            attempted_end: SEGMENT_HEADER_BYTES,
        };
        Ok(())
    }

    /// Creates the segment for `base`: from the spare when one is ready, else directly; then
    /// starts preparing the next spare.
    fn create_next_segment(&mut self, base: u64) -> Result<(PathBuf, File), Error> {
        let spare = self.spare.take().map(|handle| handle.join().expect("spare thread panicked"));
        let created = match spare {
            Some(Ok(file)) if file_bytes_of(&file) == Some(self.options.segment_bytes) => {
                promote_spare(&self.dir, base, file)
            }
            // A spare that failed (e.g. the disk was full then) is retried in place, so the
            // error the caller sees is the current one.
            _ => create_new_segment(&self.dir, base, &self.options),
        };
        if created.is_ok() {
            self.start_spare();
        }
        created
    }

    /// Starts zero-filling the next segment's file on a background thread (with
    /// `zero_fill`).
    fn start_spare(&mut self) {
        if !self.options.zero_fill || self.spare.is_some() {
            return;
        }
        let dir = self.dir.clone();
        let file_bytes = self.options.segment_bytes;
        let spawned = std::thread::Builder::new()
            .name("zabflow-log-spare".to_string())
            .spawn(move || create_spare(&dir, file_bytes));
        // Without a thread the next roll creates its segment in place: slower, not wrong.
        self.spare = spawned.ok();
    }

    fn with_spare(mut self) -> Log {
        self.start_spare();
        self
    }

    /// Makes the batch just written visible to readers.
    fn publish_batch(&mut self) {
        for (view, offset, position) in self.sealed_in_batch.drain(..) {
            view.publish(offset, position);
        }
        self.active.view.publish(self.active.next_offset, self.active.position);
        self.active.attempted_end = self.active.position;
        self.shared.next_offset.store(self.active.next_offset, Ordering::Release);
    }

    /// Undoes a failed batch: back to `mark`, with every byte the batch touched zeroed.
    fn roll_back(&mut self, mark: ActiveSegment) {
        self.sealed_in_batch.clear();
        let result = self.undo_batch(&mark);
        self.active = ActiveSegment { attempted_end: mark.position, ..mark };
        if let Err(error) = result {
            self.poisoned = Some(error.to_string());
        }
    }

    fn undo_batch(&mut self, mark: &ActiveSegment) -> Result<(), Error> {
        let created: Vec<Arc<SegmentView>> = (self.shared.snapshot().iter())
            .filter(|view| view.base_offset > mark.view.base_offset)
            .cloned()
            .collect();
        if !created.is_empty() {
            let keep_below = mark.view.base_offset;
            self.shared.edit_segments(|segments| segments.retain(|v| v.base_offset <= keep_below));
            for view in &created {
                fs::remove_file(&view.path)
                    .map_err(|e| Error::io(format!("remove {}", view.path.display()), e))?;
            }
            sync_directory(&self.dir)?;
        }
        let zero_end = if Arc::ptr_eq(&self.active.view, &mark.view) {
            self.active.attempted_end
        } else {
            mark.view.file_bytes()
        };
        let context = || format!("undo failed append in {}", mark.view.path.display());
        zero_range(&mark.file, mark.position, zero_end).map_err(|e| Error::io(context(), e))?;
        mark.file.sync_data().map_err(|e| Error::io(context(), e))?;
        let mut index = mark.view.index.write().expect("index lock poisoned");
        index.retain(|entry| entry.offset < mark.next_offset);
        Ok(())
    }

    fn check_writable(&self) -> Result<(), Error> {
        match &self.poisoned {
            Some(message) => Err(Error::Poisoned(message.clone())),
            None => Ok(()),
        }
    }

    fn sync_active(&mut self) -> Result<(), Error> {
        let context = || format!("fdatasync {}", self.active.view.path.display());
        self.backend.sync(&self.active.file).map_err(|e| Error::io(context(), e))?;
        Counters::add(&self.counters.fsyncs, 1);
        Ok(())
    }

    /// Makes every acknowledged record durable (a no-op in effect with `Durable`).
    pub fn sync(&mut self) -> Result<(), Error> {
        self.sync_active()
    }

    /// Starts a new segment. A no-op if the active segment holds no record yet.
    pub fn roll(&mut self) -> Result<(), Error> {
        self.check_writable()?;
        if self.active.next_offset == self.active.view.base_offset {
            return Ok(());
        }
        let result = self.seal_and_create();
        self.sealed_in_batch.clear();
        if result.is_ok() {
            self.publish_batch();
        }
        result
    }

    /// Drops every record with offset `>= end`; afterwards `next_offset() == end`, durably.
    ///
    /// # Errors
    /// `OffsetOutOfRange` unless `first_offset() <= end <= next_offset()`; `Io`.
    pub fn truncate_after(&mut self, end: u64) -> Result<(), Error> {
        self.check_writable()?;
        let (first, next) = (self.first_offset(), self.next_offset());
        if end < first || end > next {
            return Err(Error::OffsetOutOfRange { offset: end, first, next });
        }
        if end == next {
            return self.sync();
        }
        self.shared.next_offset.store(end, Ordering::Release);
        let segments = self.shared.snapshot();
        let keep = segments.partition_point(|view| view.base_offset <= end) - 1;
        for view in segments[keep + 1..].iter().rev() {
            view.lower_end(view.base_offset, SEGMENT_HEADER_BYTES);
        }
        let kept = segments[keep].clone();
        let position = kept.position_of(end).expect("the writer reads its own published bytes");
        kept.lower_end(end, position);
        // Readers already stop at `end`; if the files cannot follow, the writer's position
        // no longer matches what readers see, so the log refuses writes until reopened.
        let result = self
            .delete_segments_after(kept.base_offset, &segments[keep + 1..])
            .and_then(|()| self.rewrite_segment(&kept, end, position));
        if let Err(error) = &result {
            self.poisoned = Some(format!("truncate_after({end}) failed: {error}"));
        }
        result
    }

    /// Deletes `doomed` (highest first, so a crash leaves a contiguous log) and forgets them.
    fn delete_segments_after(
        &mut self,
        base: u64,
        doomed: &[Arc<SegmentView>],
    ) -> Result<(), Error> {
        if doomed.is_empty() {
            return Ok(());
        }
        self.shared.edit_segments(|segments| segments.retain(|view| view.base_offset <= base));
        for view in doomed.iter().rev() {
            fs::remove_file(&view.path)
                .map_err(|e| Error::io(format!("remove {}", view.path.display()), e))?;
        }
        sync_directory(&self.dir)
    }

    /// Replaces `view`'s file by a copy of its bytes below `position` and makes it active.
    fn rewrite_segment(
        &mut self,
        view: &Arc<SegmentView>,
        end: u64,
        position: u64,
    ) -> Result<(), Error> {
        let prefix = view.bytes_once_published(0, position);
        let temporary = PathBuf::from(format!("{}{TEMPORARY_SUFFIX}", view.path.display()));
        let file_bytes = view.file_bytes();
        let file = write_new_segment(&temporary, prefix, file_bytes, self.options.preallocate)?;
        fs::rename(&temporary, &view.path)
            .map_err(|e| Error::io(format!("rename {}", temporary.display()), e))?;
        sync_directory(&self.dir)?;
        let map = map_segment(&view.path, &file)?;
        let index: Vec<IndexEntry> = (view.index.read().expect("index lock poisoned").iter())
            .filter(|entry| entry.offset < end)
            .copied()
            .collect();
        let rewritten = Arc::new(SegmentView::new(
            view.base_offset,
            view.path.clone(),
            map,
            (end, position),
            index,
        ));
        let base = view.base_offset;
        self.shared.edit_segments(|segments| {
            let slot = segments.iter().position(|v| v.base_offset == base).expect("kept segment");
            segments[slot] = rewritten.clone();
        });
        self.active = ActiveSegment {
            view: rewritten,
            file: Arc::new(file),
            position,
            next_offset: end,
            attempted_end: position,
        };
        Ok(())
    }

    /// Retention: deletes every segment whose records all lie below `offset`. The active
    /// segment is never deleted, so `first_offset()` may stay below `offset`.
    pub fn truncate_before(&mut self, offset: u64) -> Result<(), Error> {
        self.check_writable()?;
        let segments = self.shared.snapshot();
        let doomed =
            (1..segments.len()).take_while(|&slot| segments[slot].base_offset <= offset).count();
        if doomed == 0 {
            return Ok(());
        }
        let new_first = segments[doomed].base_offset;
        self.shared.edit_segments(|segments| {
            segments.retain(|view| view.base_offset >= new_first);
        });
        self.shared.first_offset.store(new_first, Ordering::Release);
        for view in &segments[..doomed] {
            fs::remove_file(&view.path)
                .map_err(|e| Error::io(format!("remove {}", view.path.display()), e))?;
        }
        sync_directory(&self.dir)
    }
}

/// The largest payload that fits into an empty segment of `segment_bytes`.
fn record_bytes_max(segment_bytes: u64) -> usize {
    let room = segment_bytes - SEGMENT_HEADER_BYTES - FRAME_HEADER_BYTES;
    RECORD_BYTES_MAX.min(room as usize)
}

fn validate_options(options: &LogOptions) -> Result<(), Error> {
    let bytes = options.segment_bytes;
    if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&bytes) {
        return Err(Error::InvalidOptions(format!(
            "segment_bytes {bytes} outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}"
        )));
    }
    if options.zero_fill && !options.preallocate {
        return Err(Error::InvalidOptions("zero_fill needs preallocate".to_string()));
    }
    Ok(())
}

fn choose_backend(choice: BackendChoice) -> Result<Box<dyn Backend>, Error> {
    match choice {
        BackendChoice::Pwrite => Ok(Box::new(PwriteBackend)),
        BackendChoice::IoUring => match probe_uring() {
            Ok(backend) => Ok(Box::new(backend)),
            Err(error) => Err(Error::io("io_uring unavailable", error)),
        },
        BackendChoice::Auto => match probe_uring() {
            Ok(backend) => Ok(Box::new(backend)),
            Err(_) => Ok(Box::new(PwriteBackend)),
        },
    }
}

/// Takes an exclusive `flock` on the directory's LOCK file (released when the file closes,
/// also when the process dies).
fn lock_directory(dir: &Path) -> Result<File, Error> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    // SAFETY: flock only reads its integer arguments; the descriptor is open.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(Error::Locked { dir: dir.to_path_buf() });
        }
        return Err(Error::io(format!("flock {}", path.display()), error));
    }
    Ok(file)
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, Error> {
    let context = || format!("list {}", dir.display());
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(context(), e))? {
        let entry = entry.map_err(|e| Error::io(context(), e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn remove_temporary_files(dir: &Path) -> Result<usize, Error> {
    let mut removed = 0;
    for name in read_dir_names(dir)? {
        if name.strip_suffix(TEMPORARY_SUFFIX).and_then(parse_segment_name).is_some() {
            let path = dir.join(&name);
            fs::remove_file(&path)
                .map_err(|e| Error::io(format!("remove {}", path.display()), e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_directory(dir)?;
    }
    Ok(removed)
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, Error> {
    let mut bases: Vec<u64> =
        read_dir_names(dir)?.iter().filter_map(|name| parse_segment_name(name)).collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Recreates the last segment at `options.segment_bytes` if it holds no record and has
/// another size, so that every record `record_bytes_max` admits fits into an empty segment.
fn resize_empty_last_segment(
    dir: &Path,
    views: &[Arc<SegmentView>],
    options: &LogOptions,
) -> Result<Option<(Arc<SegmentView>, File)>, Error> {
    let last = views.last().expect("at least one segment");
    let empty = last.end_offset.load(Ordering::Acquire) == last.base_offset;
    if !empty || last.file_bytes() == options.segment_bytes {
        return Ok(None);
    }
    let base = last.base_offset;
    let (path, file) = create_new_segment(dir, base, options)?;
    let map = map_segment(&path, &file)?;
    let view = SegmentView::new(base, path, map, (base, SEGMENT_HEADER_BYTES), Vec::new());
    Ok(Some((Arc::new(view), file)))
}

impl Drop for Log {
    /// Waits for the spare's thread, so that no file of this log is written after it closes
    /// (a later `Log::open` of the directory removes the spare and may prepare its own).
    fn drop(&mut self) {
        if let Some(handle) = self.spare.take() {
            let _ = handle.join();
        }
    }
}

/// Creates the segment for `base` in place: zero-filled first (through a spare) when the
/// options ask for it.
fn create_new_segment(
    dir: &Path,
    base: u64,
    options: &LogOptions,
) -> Result<(PathBuf, File), Error> {
    if options.zero_fill {
        let spare = create_spare(dir, options.segment_bytes)?;
        promote_spare(dir, base, spare)
    } else {
        create_segment(dir, base, options.segment_bytes, options.preallocate)
    }
}

fn file_bytes_of(file: &File) -> Option<u64> {
    file.metadata().ok().map(|metadata| metadata.len())
}

/// Opens, verifies and indexes every segment; repairs a torn tail of the last one.
fn recover_segments(
    dir: &Path,
    bases: &[u64],
    recovery: &mut Recovery,
) -> Result<(Vec<Arc<SegmentView>>, File), Error> {
    let mut views: Vec<Arc<SegmentView>> = Vec::with_capacity(bases.len());
    let mut last_file = None;
    for (slot, &base) in bases.iter().enumerate() {
        let is_last = slot + 1 == bases.len();
        let expected_base = views.last().map(|view| view.end_offset.load(Ordering::Acquire));
        let (view, file) = recover_segment(dir, base, expected_base, is_last, recovery)?;
        recovery.records += view.end_offset.load(Ordering::Acquire) - base;
        views.push(Arc::new(view));
        last_file = Some(file);
    }
    recovery.segments = views.len();
    Ok((views, last_file.expect("at least one segment")))
}

fn recover_segment(
    dir: &Path,
    base: u64,
    expected_base: Option<u64>,
    is_last: bool,
    recovery: &mut Recovery,
) -> Result<(SegmentView, File), Error> {
    let path = dir.join(segment_name(base));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let map = map_segment(&path, &file)?;
    let corrupt =
        |position: u64, reason: String| Error::Corrupt { path: path.clone(), position, reason };
    let header_base = decode_header(&map).map_err(|reason| corrupt(0, reason.to_string()))?;
    if header_base != base {
        return Err(corrupt(16, format!("header base offset {header_base} differs from its name")));
    }
    if let Some(expected) = expected_base.filter(|&expected| expected != base) {
        return Err(corrupt(0, format!("segment should start at offset {expected}")));
    }
    let data_end = data_end(&file, map.len() as u64)
        .map_err(|e| Error::io(format!("seek data in {}", path.display()), e))?;
    let scanned = data_end.max(SEGMENT_HEADER_BYTES) as usize;
    let scan = scan_segment(&map[..scanned], base, &path)?;
    if let Tail::Torn { position, bytes } = scan.tail {
        if !is_last {
            let reason = "damaged frame in a segment that is not the last".to_string();
            return Err(corrupt(position, reason));
        }
        let context = || format!("zero torn tail of {}", path.display());
        zero_range(&file, position, position + bytes).map_err(|e| Error::io(context(), e))?;
        file.sync_data().map_err(|e| Error::io(context(), e))?;
        recovery.torn_bytes_dropped = bytes;
        recovery.torn_segment = Some(path.clone());
        recovery.torn_position = Some(position);
    }
    let end = (base + scan.records, scan.end_position);
    Ok((SegmentView::new(base, path, map, end, scan.index), file))
}

impl std::fmt::Debug for Log {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Log")
            .field("dir", &self.dir)
            .field("backend", &self.backend.kind())
            .field("first_offset", &self.first_offset())
            .field("next_offset", &self.next_offset())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}
