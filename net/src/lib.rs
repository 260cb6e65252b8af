//! zabflow-net: event loops, framing and the wire codecs (ZooKeeper's jute client
//! protocol and zabflow's peer protocol).
//!
//! - [`client`]: a pipelining ZooKeeper client (blocking calls and submit-with-completion).
//! - [`jute`]: ZooKeeper's client protocol, byte-exact: framing, records, requests, replies.
//! - [`path`]: znode path validation, as ZooKeeper's `PathUtils`.
//! - [`coordinator`]: zabflow-core's `Coordinator` (membership, election, checkpoint store)
//!   over the client.
//! - [`constants`]: every bound and reserved value of the wire formats.
//! - [`error`]: the crate's one error type.

pub mod client;
pub mod constants;
pub mod coordinator;
pub mod error;
pub mod jute;
pub mod path;

pub use error::{Error, Result, ZkError, ZkResult};
