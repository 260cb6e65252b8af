//! The one error type of zabflow-core.
//!
//! Expected failures (disk full, I/O errors, corrupt files, bad arguments) are values of
//! [`Error`]; bugs panic. Every variant names what failed, so a message read in a log file
//! is enough to find the file and byte that caused it.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in zabflow-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed; `context` says which operation on which file.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A log file holds bytes that cannot be the result of a crash of the writer.
    #[error("corrupt log segment {}: at byte {position}: {reason}", path.display())]
    Corrupt { path: PathBuf, position: u64, reason: String },
    /// A record is larger than the log accepts.
    #[error("record of {bytes} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge { bytes: usize, limit: usize },
    /// An offset lies outside the records the log holds.
    #[error("offset {offset} is outside the log's range {first}..={next}")]
    OffsetOutOfRange { offset: u64, first: u64, next: u64 },
    /// The options passed to `Log::open` are inconsistent.
    #[error("invalid log options: {0}")]
    InvalidOptions(String),
    /// Another `Log` (in this or another process) writes to the directory.
    #[error("log directory {} is locked by another writer", dir.display())]
    Locked { dir: PathBuf },
    /// A failed write could not be undone; the log refuses writes until reopened.
    #[error("log is unusable until reopened (a failed write could not be undone): {0}")]
    Poisoned(String),
    /// The group-commit writer thread is gone.
    #[error("the group-commit writer has stopped")]
    WriterStopped,
    /// A stream job's configuration is inconsistent (zero shards, too few key groups, ...).
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A user operator panicked on a shard; the job stopped.
    #[error("operator `{operator}` panicked on shard {shard}: {message}")]
    OperatorPanicked { operator: String, shard: usize, message: String },
    /// A shard stopped because another shard of the job failed first.
    #[error("shard {shard} stopped because another shard of the job failed")]
    JobAborted { shard: usize },
    /// A checkpointed job uses a source, sink or operator that cannot take part in
    /// checkpoints; the message names it and says what it lacks.
    #[error("not checkpointable: {0}")]
    NotCheckpointable(String),
    /// A state file (or an output commit file) is damaged, or belongs to another job, epoch
    /// or key group.
    #[error("bad state file {}: {reason}", path.display())]
    StateFile { path: PathBuf, reason: String },
    /// A checkpoint could not be restored (after every fallback was tried), or the
    /// checkpoint machinery failed; the message says which checkpoint and why.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The coordination service failed a call the job could not do without (after retries).
    #[error("coordination: {context}: {source}")]
    Coordination {
        context: String,
        #[source]
        source: crate::coordinator::CoordinatorError,
    },
    /// The job lost leadership (its coordination session expired, or another contender
    /// leads): it stopped so that two leaders never write the same output.
    #[error("job {job} lost leadership and stopped (fenced)")]
    LeadershipLost { job: String },
}

impl Error {
    /// Wraps an `io::Error` with the operation that failed.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// Returns an equal error for another receiver: group commit reports one failure to
    /// every appender of the group. `io::Error` is not `Clone`, so it is rebuilt from its
    /// OS error code (kept, so callers can still match on ENOSPC) or kind and message.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io { context, source } => {
                let source = match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                };
                Error::Io { context: context.clone(), source }
            }
            Error::Corrupt { path, position, reason } => {
                Error::Corrupt { path: path.clone(), position: *position, reason: reason.clone() }
            }
            Error::RecordTooLarge { bytes, limit } => {
                Error::RecordTooLarge { bytes: *bytes, limit: *limit }
            }
            Error::OffsetOutOfRange { offset, first, next } => {
                Error::OffsetOutOfRange { offset: *offset, first: *first, next: *next }
            }
            Error::InvalidOptions(message) => Error::InvalidOptions(message.clone()),
            Error::Locked { dir } => Error::Locked { dir: dir.clone() },
            Error::Poisoned(message) => Error::Poisoned(message.clone()),
            Error::WriterStopped => Error::WriterStopped,
            Error::InvalidJob(message) => Error::InvalidJob(message.clone()),
            Error::OperatorPanicked { operator, shard, message } => Error::OperatorPanicked {
                operator: operator.clone(),
                shard: *shard,
                message: message.clone(),
            },
            Error::JobAborted { shard } => Error::JobAborted { shard: *shard },
            Error::NotCheckpointable(message) => Error::NotCheckpointable(message.clone()),
            Error::StateFile { path, reason } => {
                Error::StateFile { path: path.clone(), reason: reason.clone() }
            }
            Error::Checkpoint(message) => Error::Checkpoint(message.clone()),
            Error::Coordination { context, source } => {
                Error::Coordination { context: context.clone(), source: source.clone() }
            }
            Error::LeadershipLost { job } => Error::LeadershipLost { job: job.clone() },
        }
    }

    /// The OS error code behind this error, if it came from a system call (e.g. ENOSPC).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
