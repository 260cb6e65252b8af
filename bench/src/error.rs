//! The one error type of `zabflow-bench`.
//!
//! Expected failures (a missing report, a malformed file, a bad parameter) are values of
//! [`BenchError`] with the path or the knob they concern; bugs panic instead.

use std::path::PathBuf;

/// Everything that can go wrong while running a scenario or reading and writing reports.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A `summary.json` could not be encoded or decoded.
    #[error("{path}: invalid report JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    /// An `.hgrm` file does not follow HdrHistogram's percentile-distribution format.
    #[error("{path}:{line}: invalid .hgrm: {reason}")]
    Hgrm { path: PathBuf, line: usize, reason: String },
    /// A scenario parameter is out of its bounds.
    #[error("invalid parameter: {0}")]
    Param(String),
    /// A benchmark thread could not be started or panicked.
    #[error("benchmark thread failed: {0}")]
    Thread(String),
    /// The latency plot could not be drawn.
    #[error("{path}: cannot draw plot: {reason}")]
    Plot { path: PathBuf, reason: String },
    /// `report compare` was given reports that cannot be compared.
    #[error("cannot compare: {0}")]
    Compare(String),
    /// The servers of a coord run could not be started (or are not installed).
    #[error("coord target: {0}")]
    Target(String),
    /// The coord load generator could not connect or lost its sessions.
    #[error("coord load: {0}")]
    Load(String),
    /// The segmented log under measurement failed.
    #[error(transparent)]
    Log(#[from] zabflow_core::Error),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, BenchError>;

impl BenchError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io { path: path.into(), source }
    }
}
