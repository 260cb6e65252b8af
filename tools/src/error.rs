//! The one error type of the `zabflow` binary.
//!
//! Every command returns a [`ToolError`]; `main` prints it as `zabflow: error: …` and exits
//! with status 1. Command groups added later (node, cluster, cli, job) add variants here.

use zabflow_bench::BenchError;

/// Everything a `zabflow` command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A benchmark or report command failed.
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// The coordination server failed.
    #[error(transparent)]
    Coord(#[from] zabflow_coord::Error),
    /// A cluster command failed.
    #[error("cluster: {0}")]
    Cluster(String),
    /// A `zabflow cli` session could not start, or one of its commands failed.
    #[error("cli: {0}")]
    Cli(String),
    /// A `zabflow log` command failed (bad arguments, I/O, or a damaged log).
    #[error("log: {0}")]
    Log(String),
    /// The segmented log failed (open, append, sync).
    #[error(transparent)]
    Core(#[from] zabflow_core::Error),
    /// A `zabflow job` command failed (bad arguments, a missing input, the job itself).
    #[error("job: {0}")]
    Job(String),
    /// The coordination service stayed unreachable (exit status 3, so scripts can tell).
    #[error("coordination service unavailable: {0}")]
    CoordinationUnavailable(String),
    /// Standard output could not be written (other than a closed pipe, which is fine).
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
}
