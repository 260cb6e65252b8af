//! zabflow-coord: the coordination service (Zab, the znode tree, sessions, watches, the
//! transaction log and snapshots).
//!
//! The pure heart of a ZooKeeper 3.8 server, split the way ZooKeeper splits it so that
//! writes become logged transactions before they touch the tree:
//!
//! - [`prep`]: `PrepRequestProcessor` — a write request becomes a [`txn::Txn`] (or an error
//!   txn), checked against the tree plus the prepared-but-unapplied changes.
//! - [`txn`]: the transactions and their log encoding.
//! - [`data_tree`]: `DataTree` — applies txns, answers reads, fires watches.
//! - [`watch_manager`]: `WatchManager` — one-shot, persistent and recursive watches.
//! - [`acl`]: ACL schemes, checks and `addauth`.
//! - [`session_tracker`]: `SessionTrackerImpl` + `ExpiryQueue` — sessions and their expiry.
//! - [`ephemeral_type`]: the kinds of node packed into `ephemeralOwner`.
//!
//! None of them does I/O or reads a clock: time comes in as an argument, and the driver
//! (sockets, the txn log through `zabflow_core::log`) does the rest.

pub mod acl;
pub mod config;
pub mod connection;
pub mod constants;
pub mod data_tree;
pub mod der;
mod ensemble;
pub mod ephemeral_type;
pub mod error;
pub mod four_letter;
pub mod keystore;
pub mod pipeline;
pub mod prep;
pub mod read_only;
pub mod reconfig;
pub mod request_processor;
pub mod server;
pub mod server_stats;
pub mod session_tracker;
pub mod snapshot;
pub mod sync_processor;
pub mod tls;
pub mod txn;
pub mod txn_log;
pub mod watch_manager;
pub mod zab;

pub use error::{Error, Result};
