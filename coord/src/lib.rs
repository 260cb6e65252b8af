//! zabflow-coord: the coordination service (Zab, the znode tree, sessions, watches, the
//! transaction log and snapshots).
//!
//! Its transaction log is `zabflow_core::log`, the project's one durable log. The service
//! itself lands with the standalone-server and replication work.
