//! zabflow-bench: benchmark scenarios and the latency reports they write.
//!
//! Every scenario measures throughput and records latencies in an HdrHistogram (nanoseconds),
//! then writes a [`Report`] directory: `summary.json` in DESIGN.md's schema plus one `.hgrm`
//! percentile file per latency series, which HdrHistogram's own tools can plot. [`compare`]
//! and [`plot`] read reports back to put runs side by side. Scenarios: [`ring`].

pub mod compare;
pub mod constants;
pub mod error;
pub mod hgrm;
pub mod machine;
pub mod plot;
pub mod progress;
pub mod report;
pub mod ring;

pub use error::{BenchError, Result};
pub use report::{latency_histogram, Latency, Ratio, Report, Series, Target, Unit};
