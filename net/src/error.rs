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

/// Result of a ZooKeeper client call.
pub type ZkResult<T> = std::result::Result<T, ZkError>;

/// What a [`crate::client::Client`] call can fail with: a ZooKeeper error code (from the
/// server, or `ConnectionLoss`/`SessionExpired` from the client as ZooKeeper's own client
/// reports them), or a client-side failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkError {
    /// ZooKeeper's error code: the server's `ReplyHeader.err`, or `ConnectionLoss` when the
    /// connection broke with the request in flight, or `SessionExpired`.
    #[error("ZooKeeper error {0:?}")]
    Code(ErrorCode),
    /// An error code this client does not know.
    #[error("unknown ZooKeeper error code {0}")]
    UnknownCode(i32),
    /// The client was closed (or dropped) before the request was answered.
    #[error("the client is closed")]
    Closed,
    /// `try_submit` found the request queue full.
    #[error("the request queue is full")]
    QueueFull,
    /// The request's frame is larger than the packet limit (`jute.maxbuffer`); sending it
    /// would make the server drop the connection.
    #[error("request of {bytes} bytes exceeds the packet limit of {bytes_max} bytes")]
    RequestTooLarge { bytes: usize, bytes_max: usize },
    /// No server of the connect string could be reached or accepted the session.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server sent bytes that do not decode as the reply expected.
    #[error("bad reply from the server: {0}")]
    Codec(#[from] Error),
}

impl ZkError {
    /// The error for a reply's non-zero `err` field.
    #[must_use]
    pub fn from_code(code: i32) -> ZkError {
        match ErrorCode::from_code(code) {
            Some(code) => ZkError::Code(code),
            None => ZkError::UnknownCode(code),
        }
    }

    /// ZooKeeper's error code for this failure, if it has one.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ZkError::Code(code) => Some(*code),
            _ => None,
        }
    }
}
