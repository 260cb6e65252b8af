//! zabflow-core: the stream engine and the durable segmented log.
//!
//! This crate owns everything that runs inside one process without a network: the
//! [`log`] that sources, sinks and the coordination service's transaction log are built
//! on, and (in later work) the shard-per-core engine. It depends on no other zabflow
//! crate, so it can be tested and benchmarked alone.

pub mod constants;
pub mod coordinator;
pub mod durable_file;
pub mod engine;
pub mod error;
pub mod log;
pub mod memory_coordinator;
pub mod records;

pub use error::Error;
