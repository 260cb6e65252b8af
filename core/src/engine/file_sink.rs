//! Sinks that write rows: one file per shard (CSV or JSON lines), or stdout.
//!
//! Each shard formats its rows into a reused buffer and hands the bytes to the file (or
//! stdout) only when the buffer passes [`ROW_SINK_BUFFER_BYTES`], so a row costs a few
//! hundred bytes of formatting and no system call; the last bytes go out in `finish`.
//! Shard `i` of a file sink writes `<dir>/part-<i>.csv` (or `.jsonl`). A file sink can fail
//! (a full disk): the first error is kept, later rows are dropped, and `finish` returns it,
//! so the job's output says which shard's file is incomplete and why.
//!
//! A checkpointed job uses [`FileSink::resumable`], which keeps the file across restarts:
//! its rows become visible through a commit file (see
//! [`output_commit`](super::output_commit)) and a restore cuts the file back to the
//! committed length.

use super::constants::ROW_SINK_BUFFER_BYTES;
use super::output_commit::{
    extra_partitions, file_commit_file, write_commit_file, CommitPoint, SinkCommit,
};
use super::row::{format_row, Row, RowFormat};
use super::sink::Sink;
use super::source::Partition;
use crate::coordinator::SinkPosition;
use crate::Error;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// What a file sink wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkReport {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

/// Writes a shard's rows to its own file.
pub struct FileSink<R> {
    path: PathBuf,
    /// `Some` for a resumable sink: the file's commit file.
    commit_file: Option<PathBuf>,
    shard: usize,
    /// The header (CSV) is in the file already.
    header_written: bool,
    file: Result<File, Error>,
    format: RowFormat,
    buffer: Vec<u8>,
    rows: u64,
    bytes: u64,
    record: PhantomData<fn(&R)>,
}

impl<R: Row> FileSink<R> {
    /// The sink of shard `shard`: creates (or truncates) `<dir>/part-<shard>.<csv|jsonl>`.
    /// An error creating the file is reported by `finish`.
    pub fn create(dir: &Path, shard: usize, format: RowFormat) -> FileSink<R> {
        let path = part_path(dir, shard, format);
        let file =
            File::create(&path).map_err(|e| Error::io(format!("create {}", path.display()), e));
        FileSink::with_file(path, None, shard, file, format)
    }

    /// The sink of shard `shard` for a checkpointed job: opens (or creates) the same file
    /// without truncating it; [`Sink::restore`] cuts it to the restored checkpoint's
    /// committed length, and the commit file `<file>.commit` says how much of it is
    /// committed (see [`output_commit`](super::output_commit)).
    pub fn resumable(dir: &Path, shard: usize, format: RowFormat) -> FileSink<R> {
        let path = part_path(dir, shard, format);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e));
        let commit_file = Some(file_commit_file(&path));
        FileSink::with_file(path, commit_file, shard, file, format)
    }

    fn with_file(
        path: PathBuf,
        commit_file: Option<PathBuf>,
        shard: usize,
        file: Result<File, Error>,
        format: RowFormat,
    ) -> FileSink<R> {
        FileSink {
            path,
            commit_file,
            shard,
            header_written: false,
            file,
            format,
            buffer: Vec::with_capacity(ROW_SINK_BUFFER_BYTES * 2),
            rows: 0,
            bytes: 0,
            record: PhantomData,
        }
    }

    fn write_buffer(&mut self) {
        if let Ok(file) = &mut self.file {
            if let Err(error) = file.write_all(&self.buffer) {
                let context = format!("write {}", self.path.display());
                self.file = Err(Error::io(context, error));
            } else {
                self.bytes += self.buffer.len() as u64;
            }
        }
        self.buffer.clear();
    }
}

impl<R: Row + Send + 'static> Sink<R> for FileSink<R> {
    type Output = Result<FileSinkReport, Error>;

    fn write(&mut self, record: &R) {
        format_row(record, self.format, !self.header_written, &mut self.buffer);
        self.header_written = true;
        self.rows += 1;
        if self.buffer.len() >= ROW_SINK_BUFFER_BYTES {
            self.write_buffer();
        }
    }

    fn finish(mut self) -> Result<FileSinkReport, Error> {
        self.write_buffer();
        let file = self.file?;
        file.sync_data().map_err(|e| Error::io(format!("sync {}", self.path.display()), e))?;
        Ok(FileSinkReport { path: self.path, rows: self.rows, bytes: self.bytes })
    }

    /// Writes the buffered rows, fsyncs the file and reports its length.
    fn prepare_commit(&mut self) -> Result<Option<SinkCommit>, Error> {
        let Some(commit_file) = self.commit_file.clone() else {
            return Err(not_resumable(&self.path));
        };
        self.write_buffer();
        let file = self.file.as_ref().map_err(Error::duplicate)?;
        file.sync_data().map_err(|e| Error::io(format!("sync {}", self.path.display()), e))?;
        let position = SinkPosition { partition: self.shard as u32, offset: self.bytes };
        Ok(Some(SinkCommit { position, commit_file }))
    }

    /// Cuts the file to the checkpoint's committed length (and, on the last shard, the
    /// files a run on more shards left) and commits that length.
    fn restore(
        &mut self,
        epoch: u64,
        positions: &[SinkPosition],
        partition: Partition,
    ) -> Result<(), Error> {
        if self.commit_file.is_none() {
            return Err(not_resumable(&self.path));
        }
        assert_eq!(partition.index, self.shard, "a sink restores its own partition");
        let own = positions.iter().find(|p| p.partition as usize == self.shard);
        let end = own.map_or(0, |position| position.offset);
        let file = self.file.as_mut().map_err(|error| error.duplicate())?;
        roll_back_file(file, &self.path, epoch, end)?;
        self.bytes = end;
        self.header_written = end > 0;
        if partition.index + 1 == partition.count {
            let dir = self.path.parent().expect("a part file has a directory").to_owned();
            let format = self.format;
            let exists = |index| part_path(&dir, index, format).is_file();
            for (index, end) in extra_partitions(positions, partition.count, exists) {
                let path = part_path(&dir, index, format);
                let open = OpenOptions::new().write(true).create(true).truncate(false).open(&path);
                let mut file =
                    open.map_err(|e| Error::io(format!("open {}", path.display()), e))?;
                roll_back_file(&mut file, &path, epoch, end)?;
            }
        }
        Ok(())
    }
}

fn part_path(dir: &Path, shard: usize, format: RowFormat) -> PathBuf {
    let extension = match format {
        RowFormat::Csv => "csv",
        RowFormat::JsonLines => "jsonl",
    };
    dir.join(format!("part-{shard}.{extension}"))
}

fn not_resumable(path: &Path) -> Error {
    Error::NotCheckpointable(format!(
        "file sink {} was made by FileSink::create, which truncates; a checkpointed job \
         needs FileSink::resumable",
        path.display()
    ))
}

/// Cuts `file` to `end` bytes, leaves its cursor there, and commits `end` for `epoch`.
fn roll_back_file(file: &mut File, path: &Path, epoch: u64, end: u64) -> Result<(), Error> {
    let io = |what: &str, error| Error::io(format!("{what} {}", path.display()), error);
    let held = file.metadata().map_err(|e| io("stat", e))?.len();
    if held < end {
        return Err(Error::Checkpoint(format!(
            "output file {} holds {held} bytes, the checkpoint of epoch {epoch} committed {end}",
            path.display()
        )));
    }
    file.set_len(end).map_err(|e| io("truncate", e))?;
    file.seek(SeekFrom::Start(end)).map_err(|e| io("seek", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    write_commit_file(&file_commit_file(path), CommitPoint { epoch, end })
}

/// Writes rows to stdout, a buffer at a time (lines of different shards never interleave
/// within a line, but their order across shards is arbitrary). Hands back its row count.
pub struct StdoutSink<R> {
    format: RowFormat,
    header: bool,
    buffer: Vec<u8>,
    rows: u64,
    record: PhantomData<fn(&R)>,
}

impl<R: Row> StdoutSink<R> {
    /// A stdout sink in `format`; only shard 0 writes a CSV header.
    pub fn new(shard: usize, format: RowFormat) -> StdoutSink<R> {
        StdoutSink {
            format,
            header: shard == 0,
            buffer: Vec::with_capacity(ROW_SINK_BUFFER_BYTES * 2),
            rows: 0,
            record: PhantomData,
        }
    }

    fn write_buffer(&mut self) {
        // A closed stdout (a pipe whose reader left) drops the rows, as `head` expects.
        let _ = std::io::stdout().lock().write_all(&self.buffer);
        self.buffer.clear();
    }
}

impl<R: Row + Send + 'static> Sink<R> for StdoutSink<R> {
    type Output = u64;

    fn write(&mut self, record: &R) {
        format_row(record, self.format, self.header, &mut self.buffer);
        self.header = false;
        self.rows += 1;
        if self.buffer.len() >= ROW_SINK_BUFFER_BYTES {
            self.write_buffer();
        }
    }

    fn finish(mut self) -> u64 {
        self.write_buffer();
        let _ = std::io::stdout().lock().flush();
        self.rows
    }
}
