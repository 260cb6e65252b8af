//! The one error type of zabflow-net.
//!
//! Decoding never panics: every malformed input is one of these variants. Request decoding
//! errors carry the request's xid and op code, because ZooKeeper answers them on the wire
//! (`Unimplemented` for an op code it does not know, `MarshallingError` for a body it cannot
//! read); [`Error::reply_error_code`] says which.

use crate::jute::ErrorCode;

/// Result of a zabflow-net operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while encoding or decoding zabflow-net's wire formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended before a field was complete.
    #[error("truncated input: {needed_bytes} bytes needed, {remaining_bytes} remaining")]
    Truncated { needed_bytes: usize, remaining_bytes: usize },
    /// A `buffer`/`ustring` length or a `vector` count is negative (other than -1, null) or
    /// larger than the bytes left in the frame could hold.
    #[error("unreasonable length {length} with {remaining_bytes} bytes remaining")]
    BadLength { length: i32, remaining_bytes: usize },
    /// A `ustring` was null (-1) where ZooKeeper requires a string.
    #[error("null string where a string is required")]
    NullString,
    /// A frame's declared length is negative or above the configured `jute.maxbuffer`.
    #[error("frame length {length} outside 0..={packet_bytes_max}")]
    FrameLength { length: i64, packet_bytes_max: usize },
    /// A `multi`/`multiRead` op or result carries a type ZooKeeper does not allow there.
    #[error("invalid op type {op} in a multi")]
    MultiOpType { op: i32 },
    /// A `multi` mixes read and write ops (ZooKeeper: "Mixing different kind of ops").
    #[error("a multi mixes read and write ops")]
    MultiMixedKinds,
    /// A response was asked for an op code that has no response record.
    #[error("op code {op} has no response body")]
    NoResponseFor { op: i32 },
    /// A request's op code is not one ZooKeeper knows; ZooKeeper answers `Unimplemented`.
    #[error("unknown op code {op} (xid {xid})")]
    UnknownOpCode { xid: i32, op: i32 },
    /// A request of a known op code whose body could not be decoded; ZooKeeper answers
    /// `MarshallingError`.
    #[error("malformed body of op {op} (xid {xid}): {source}")]
    MalformedRequest {
        xid: i32,
        op: i32,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The error code ZooKeeper's server puts in the `ReplyHeader` for this failure, when it
    /// answers at all (a bad frame instead closes the connection).
    #[must_use]
    pub fn reply_error_code(&self) -> Option<ErrorCode> {
        match self {
            Error::UnknownOpCode { .. } => Some(ErrorCode::Unimplemented),
            Error::MalformedRequest { .. } => Some(ErrorCode::MarshallingError),
            _ => None,
        }
    }

    /// The xid of the request this error belongs to, when it is a request error.
    #[must_use]
    pub fn xid(&self) -> Option<i32> {
        match self {
            Error::UnknownOpCode { xid, .. } | Error::MalformedRequest { xid, .. } => Some(*xid),
            _ => None,
        }
    }
}
