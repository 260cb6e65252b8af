//! The one error type of zabflow-coord.
//!
//! ZooKeeper's own outcomes of a request (NoNode, BadVersion, NoAuth, …) are not errors of
//! this crate: they are [`ErrorCode`](zabflow_net::jute::ErrorCode)s that the preparer
//! records in an error txn and the tree reports in its results, because they go back to the
//! client as data. [`Error`] is for what stops the service itself: a txn that cannot be
//! decoded (a corrupt log record) or that cannot be applied.

/// Result of a zabflow-coord operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in zabflow-coord, other than a client's request failing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A txn record's bytes do not decode.
    #[error("txn does not decode: {0}")]
    Decode(#[from] zabflow_net::Error),
    /// A txn header or a multi's sub-txn names a type that no txn has.
    #[error("unknown txn type {txn_type}")]
    UnknownTxnType { txn_type: i32 },
    /// A multi txn holds a sub-txn that a multi cannot hold (a multi or a session txn).
    #[error("txn type {txn_type} cannot be part of a multi")]
    NotAMultiOp { txn_type: i32 },
    /// zoo.cfg cannot be read or holds a bad value.
    #[error("config: {0}")]
    Config(String),
    /// The TLS setup cannot be used: a keystore or trust store that cannot be read or
    /// opened, or `ssl.*` settings rustls cannot honour.
    #[error("TLS: {0}")]
    Tls(String),
    /// A file or socket operation of the server failed.
    #[error("{context}: {message}")]
    Io { context: String, message: String },
    /// The txn log failed.
    #[error("txn log: {0}")]
    Log(String),
    /// A snapshot file is damaged or unreadable.
    #[error("snapshot {path}: {message}")]
    Snapshot { path: String, message: String },
    /// A peer sent bytes that are not a valid frame of the peer protocol, or a message is
    /// too large to be framed.
    #[error("peer protocol: {0}")]
    Wire(#[from] crate::zab::wire::WireError),
}

impl Error {
    /// An I/O failure with what was being done.
    pub fn io(context: impl Into<String>, error: &std::io::Error) -> Self {
        Error::Io { context: context.into(), message: error.to_string() }
    }
}
