//! zabflow-bench: benchmark scenarios and the latency reports they write.
//!
//! Every scenario measures throughput and records latencies in an HdrHistogram (nanoseconds),
//! then writes a [`Report`] directory: `summary.json` in DESIGN.md's schema plus one `.hgrm`
//! percentile file per latency series, which HdrHistogram's own tools can plot. [`compare`]
//! and [`plot`] read reports back to put runs side by side. Scenarios: [`ring`], [`log`],
//! [`coord`] (and its memory scenario, [`coord::memory`]), [`pipeline`], [`recovery`]. A suite run's
//! reports get one [`index`] page with the headline ratios held to their [`goal`]s.
//!
//! # Writing a scenario's report
//!
//! ```
//! use zabflow_bench::{latency_histogram, Report, Series, Target, Unit};
//!
//! let mut report = Report::new("log", serde_json::json!({ "record_bytes": 4096 }));
//! let mut histogram = latency_histogram(); // nanoseconds
//! histogram.record(85_000).unwrap();
//! let name = "io_uring/4096B/batch=64/appenders=1/durable";
//! report.push_series(
//!     Series::new(name, Target::Zabflow, Unit::Records, 2.1e5)
//!         .with_params(serde_json::json!({ "backend": "io_uring", "batch": 64 }))
//!         .with_histogram(&histogram)
//!         .with_extra("fsyncs_per_s", 3.3e3),
//! );
//! report.push_ratio("io_uring/pwrite", 1.8);
//! let dir = tempfile::tempdir().unwrap();
//! let written = report.write(&dir.path().join("log-run"))?; // or report.default_dir()
//! assert_eq!(Report::load(&written)?, report);
//! print!("{}", zabflow_bench::compare::show(&report));
//! # Ok::<(), zabflow_bench::BenchError>(())
//! ```

pub mod compare;
pub mod constants;
pub mod coord;
pub mod error;
pub mod goal;
pub mod hgrm;
pub mod index;
pub mod live_view;
pub mod log;
pub mod machine;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod recovery;
pub mod report;
pub mod ring;

pub use error::{BenchError, Result};
pub use report::{latency_histogram, Latency, Ratio, Report, Series, Target, Unit};
