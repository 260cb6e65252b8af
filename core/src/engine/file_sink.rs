//! Sinks that write rows: one file per shard (CSV or JSON lines), or stdout.
//!
//! Each shard formats its rows into a reused buffer and hands the bytes to the file (or
//! stdout) only when the buffer passes [`ROW_SINK_BUFFER_BYTES`], so a row costs a few
//! hundred bytes of formatting and no system call; the last bytes go out in `finish`.
//! Shard `i` of a file sink writes `<dir>/part-<i>.csv` (or `.jsonl`). A file sink can fail
//! (a full disk): the first error is kept, later rows are dropped, and `finish` returns it,
//! so the job's output says which shard's file is incomplete and why.

use super::constants::ROW_SINK_BUFFER_BYTES;
use super::row::{format_row, Row, RowFormat};
use super::sink::Sink;
use crate::Error;
use std::fs::File;
use std::io::Write;
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
        let extension = match format {
            RowFormat::Csv => "csv",
            RowFormat::JsonLines => "jsonl",
        };
        let path = dir.join(format!("part-{shard}.{extension}"));
        let file =
            File::create(&path).map_err(|e| Error::io(format!("create {}", path.display()), e));
        FileSink {
            path,
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
        format_row(record, self.format, self.rows == 0, &mut self.buffer);
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
