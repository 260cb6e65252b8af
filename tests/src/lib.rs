//! zabflow-tests: multi-process integration and fault-injection tests.
//!
//! The library holds helpers shared by the test files under `tests/tests/`; child
//! programs that tests start and kill live under `tests/src/bin/`.
//!
//! - [`real_zookeeper`]: a real Apache ZooKeeper (standalone or ensemble) to compare against.
//! - [`kazoo`]: the Python kazoo client in a cached venv, to drive servers from outside.
//! - [`ports`]: loopback ports for servers, outside the kernel's ephemeral range.
//! - [`tls_material`]: certificates and JKS/PEM keystores for TLS tests.
//! - [`linearizability`]: a WGL checker of recorded client histories, and a znode model.

pub mod kazoo;
pub mod linearizability;
pub mod log_records;
pub mod ports;
pub mod real_zookeeper;
pub mod tls_material;
