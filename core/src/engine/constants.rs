//! Named bounds of the engine's connectors (the engine's other bounds live in the crate's
//! `constants`): buffers the file, stdout and log sinks fill before writing.

/// Bytes a row sink (file, stdout) formats before it writes them out: one write per this
/// many bytes, never one per row.
pub const ROW_SINK_BUFFER_BYTES: usize = 64 << 10;

/// Records a log sink gathers into one append (one write submission).
pub const LOG_SINK_BATCH_RECORDS: usize = 1024;

/// Payload bytes after which a log sink appends its batch even if it holds fewer records.
pub const LOG_SINK_BATCH_BYTES: usize = 256 << 10;

const _: () = assert!(ROW_SINK_BUFFER_BYTES > 0 && LOG_SINK_BATCH_RECORDS > 0);
const _: () = assert!(LOG_SINK_BATCH_BYTES <= crate::constants::GROUP_COMMIT_PENDING_BYTES_MAX);
