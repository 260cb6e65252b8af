//! zabflow-tests: multi-process integration and fault-injection tests.
//!
//! The library holds helpers shared by the test files under `tests/tests/`; child
//! programs that tests start and kill live under `tests/src/bin/`.

pub mod log_records;
