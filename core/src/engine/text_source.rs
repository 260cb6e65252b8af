//! A text-file source: the lines of a file, split into one byte range per shard.
//!
//! The file is read once into memory and kept for the rest of the process, so that a line
//! can travel through the engine as a plain `&'static str`: records are `Copy` and cross
//! the rings by value, and a borrowed line is the one `Copy` form of a string. Use it for
//! inputs that fit in memory (the log source is the one for unbounded input).
//!
//! Partition `i` of `n` reads the lines that *start* in bytes `[i·len/n, (i+1)·len/n)`, as
//! Hadoop splits text, so every line is read by exactly one partition whatever `n` is. A
//! line's timestamp comes from a function of the line (parse it from a field, or return a
//! constant and use processing-time windows).

use super::item::Stamped;
use super::source::{own_offset, Partition, Source, SourceStatus};
use crate::coordinator::SourceOffset;
use crate::Error;
use std::path::Path;

/// A text file held in memory for the life of the process.
#[derive(Debug, Clone, Copy)]
pub struct TextFile {
    text: &'static str,
}

impl TextFile {
    /// Reads `path` (UTF-8).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read or is not UTF-8.
    pub fn read(path: &Path) -> Result<TextFile, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Error::io(format!("read {}", path.display()), error))?;
        Ok(TextFile { text: text.leak() })
    }

    /// The text held as a file (for tests and for input built in memory).
    pub fn from_text(text: String) -> TextFile {
        TextFile { text: text.leak() }
    }

    /// The source of partition `partition`, stamping each line with `timestamp_of(line)`
    /// and declaring `out_of_orderness`.
    pub fn source(
        &self,
        partition: Partition,
        timestamp_of: fn(&str) -> u64,
        out_of_orderness: u64,
    ) -> TextSource {
        let len = self.text.len();
        let split = |index: usize| len * index / partition.count;
        let (start, end) = (split(partition.index), split(partition.index + 1));
        // A line belongs to the split its first byte lies in: skip to the first line start.
        let bytes = self.text.as_bytes();
        let first = if start == 0 || bytes[start - 1] == b'\n' {
            start
        } else {
            bytes[start..].iter().position(|&b| b == b'\n').map_or(len, |at| start + at + 1)
        };
        TextSource { text: self.text, partition, next: first, end, timestamp_of, out_of_orderness }
    }
}

/// One partition's lines of a [`TextFile`].
#[derive(Debug, Clone)]
pub struct TextSource {
    text: &'static str,
    partition: Partition,
    /// Byte offset of the next line.
    next: usize,
    /// Lines starting at or after this offset belong to the next partition.
    end: usize,
    timestamp_of: fn(&str) -> u64,
    out_of_orderness: u64,
}

impl Source for TextSource {
    type Record = &'static str;

    fn pull(&mut self, out: &mut Vec<Stamped<&'static str>>, max: usize) -> SourceStatus {
        while out.len() < max && self.next < self.end {
            let rest = &self.text[self.next..];
            let length = rest.find('\n').unwrap_or(rest.len());
            let line = rest[..length].strip_suffix('\r').unwrap_or(&rest[..length]);
            self.next += length + 1;
            out.push(Stamped { timestamp: (self.timestamp_of)(line), record: line });
        }
        if self.next < self.end {
            SourceStatus::Active
        } else {
            SourceStatus::Exhausted
        }
    }

    fn out_of_orderness(&self) -> u64 {
        self.out_of_orderness
    }

    /// One offset: the byte offset of the next line.
    fn position(&self, out: &mut Vec<SourceOffset>) -> Result<(), Error> {
        out.push(SourceOffset { partition: self.partition.index as u32, offset: self.next as u64 });
        Ok(())
    }

    fn seek(&mut self, offsets: &[SourceOffset]) -> Result<(), Error> {
        let next = own_offset("text source", self.partition, offsets)? as usize;
        let bytes = self.text.as_bytes();
        let at_line_start = next == 0 || bytes.get(next - 1) == Some(&b'\n');
        if next > bytes.len() + 1 || (!at_line_start && next < bytes.len()) {
            return Err(Error::Checkpoint(format!(
                "text source partition {}: byte {next} is not the start of one of its lines",
                self.partition.index
            )));
        }
        self.next = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_read_every_line_once_at_any_split() {
        let lines: Vec<String> = (0..100).map(|i| format!("{i},{}", "x".repeat(i % 7))).collect();
        let file = TextFile::from_text(lines.join("\n"));
        for count in 1..=7 {
            let mut read = Vec::new();
            for index in 0..count {
                let mut source = file.source(Partition { index, count }, |_| 0, 0);
                let mut batch = Vec::new();
                while source.pull(&mut batch, 3) == SourceStatus::Active {
                    read.extend(batch.drain(..).map(|stamped| stamped.record.to_string()));
                }
                read.extend(batch.into_iter().map(|stamped| stamped.record.to_string()));
            }
            read.sort();
            let mut expected = lines.clone();
            expected.sort();
            assert_eq!(read, expected, "{count} partitions");
        }
    }
}
