//! The `log` scenario: what the segmented log acknowledges per second, beside the disk's floor.
//!
//! A durable log can never beat the disk it writes to, so every series is printed beside two
//! floors measured in the same run on the same directory: `floor/4096B`, a plain loop of one
//! 4 KiB `pwrite` and one `fdatasync` (the disk's fsyncs per second), and `floor/1048576B`,
//! the same loop with 1 MiB writes (its durable bandwidth). Both floors cycle through a file
//! written and synced in full beforehand, so their fdatasyncs flush data only: the floor is
//! the best the disk does, and the log, whose fallocated segments also need their extents
//! marked written, is held against that and not against a handicapped loop.
//!
//! The series then sweep the knobs that matter for a log user:
//!
//! - record size (100 B, 1 KiB, 64 KiB) and records per batch (1 to 1024), one appender
//!   calling `Log::append` directly, durable and buffered;
//! - 1, 8 and 64 concurrent appenders sharing one log through group commit
//!   (`Log::into_group_commit`), one 100 B record per call: appenders that arrive while an
//!   fsync is in flight ride the next one, so acknowledged records per second can exceed the
//!   floor's fsyncs per second many times over;
//! - both backends, io_uring and pwrite, when the kernel allows io_uring;
//! - `/zero-fill` series: segments zero-filled ahead of use (`LogOptions::zero_fill`), as the
//!   transaction log opens its log, for single and 64 group-committing 100 B appenders.
//!
//! Each series reports acknowledged records per second, `fsyncs_per_s`, `mb_per_s` (payload)
//! and `floor_ratio`: records/s over the floor's fsyncs/s for small records, MB/s over the
//! floor's MB/s for 64 KiB records. Latency is the time of one acknowledged append call (a
//! whole batch). Every series writes a fresh log in its own directory, removed afterwards;
//! a series stops early once it has written [`LOG_SERIES_BYTES_MAX`] so a fast disk cannot
//! fill up.

use crate::constants::{
    LOG_FLOOR_BYTES, LOG_FLOOR_FILE_BYTES, LOG_SERIES_BYTES_MAX, LOG_SERIES_DURATION_DEFAULT,
    LOG_SERIES_DURATION_MAX, LOG_SERIES_DURATION_QUICK,
};
use crate::error::{BenchError, Result};
use crate::progress::Progress;
use crate::report::{latency_histogram, Report, Series, Target, Unit};
use hdrhistogram::Histogram;
use serde_json::json;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zabflow_core::log::{BackendChoice, BackendKind, Durability, Log, LogOptions};

/// Knobs of the log scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Measured time of each series.
    pub series_duration: Duration,
    /// Directory the logs and floor files are written in (a fresh subdirectory of it).
    pub dir: PathBuf,
    /// Backends to measure; `None` measures every backend this kernel offers.
    pub backends: Option<Vec<BackendKind>>,
}

impl LogConfig {
    /// Defaults, writing under `dir`; `quick` shortens every series.
    pub fn new(dir: PathBuf, quick: bool) -> LogConfig {
        let series_duration =
            if quick { LOG_SERIES_DURATION_QUICK } else { LOG_SERIES_DURATION_DEFAULT };
        LogConfig { series_duration, dir, backends: None }
    }

    fn validate(&self) -> Result<()> {
        if self.series_duration.is_zero() || self.series_duration > LOG_SERIES_DURATION_MAX {
            return Err(BenchError::Param(format!(
                "series duration must be in (0, {:?}], got {:?}",
                LOG_SERIES_DURATION_MAX, self.series_duration
            )));
        }
        Ok(())
    }
}

/// One measured configuration of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub backend: BackendKind,
    pub record_bytes: usize,
    /// Records per append call.
    pub batch: usize,
    /// Concurrent appenders; 1 appends directly, more share the log through group commit.
    pub appenders: usize,
    pub durability: Durability,
    /// Segments zero-filled ahead of use (`LogOptions::zero_fill`, as the coordination
    /// service's transaction log opens its log).
    pub zero_fill: bool,
}

impl Case {
    /// `io_uring/100B/batch=1/appenders=64/durable`, with `/zero-fill` when it applies.
    pub fn name(&self) -> String {
        let durability = match self.durability {
            Durability::Durable => "durable",
            Durability::Buffered => "buffered",
        };
        let zero_fill = if self.zero_fill { "/zero-fill" } else { "" };
        format!(
            "{}/{}B/batch={}/appenders={}/{durability}{zero_fill}",
            self.backend.name(),
            self.record_bytes,
            self.batch,
            self.appenders
        )
    }

    fn group_commit(&self) -> bool {
        self.appenders > 1
    }
}

/// The cases of a run for one backend: (record bytes, batch, appenders, durability,
/// zero-fill).
const CASE_SHAPES: [(usize, usize, usize, Durability, bool); 14] = [
    (100, 1, 1, Durability::Durable, false),
    (100, 64, 1, Durability::Durable, false),
    (100, 1024, 1, Durability::Durable, false),
    (1024, 1, 1, Durability::Durable, false),
    (1024, 64, 1, Durability::Durable, false),
    (65536, 1, 1, Durability::Durable, false),
    (65536, 16, 1, Durability::Durable, false),
    (100, 1024, 1, Durability::Buffered, false),
    (65536, 16, 1, Durability::Buffered, false),
    (100, 1, 8, Durability::Durable, false),
    (100, 1, 64, Durability::Durable, false),
    (100, 1, 64, Durability::Buffered, false),
    (100, 1, 1, Durability::Durable, true),
    (100, 1, 64, Durability::Durable, true),
];

/// Every case of a run over `backends`, in the order they run.
pub fn cases(backends: &[BackendKind]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &backend in backends {
        for (record_bytes, batch, appenders, durability, zero_fill) in CASE_SHAPES {
            cases.push(Case { backend, record_bytes, batch, appenders, durability, zero_fill });
        }
    }
    cases
}

/// What one series measured.
struct Measurement {
    records: u64,
    fsyncs: u64,
    elapsed: Duration,
    histogram: Histogram<u64>,
}

/// Runs the floors and every case, each for `config.series_duration`.
///
/// # Errors
/// [`BenchError::Param`] for a bad knob, [`BenchError::Io`]/[`BenchError::Log`] when the
/// directory cannot be written, [`BenchError::Thread`] when an appender thread fails.
pub fn run(config: &LogConfig) -> Result<Report> {
    config.validate()?;
    std::fs::create_dir_all(&config.dir).map_err(|e| BenchError::io(&config.dir, e))?;
    let work = tempfile::Builder::new()
        .prefix("zabflow-bench-log-")
        .tempdir_in(&config.dir)
        .map_err(|e| BenchError::io(&config.dir, e))?;
    let backends = match &config.backends {
        Some(backends) => backends.clone(),
        None => available_backends(work.path())?,
    };
    let cases = cases(&backends);
    let mut report = Report::new("log", params_json(config, work.path(), &backends));
    let progress = Progress::new("log", (cases.len() + LOG_FLOOR_BYTES.len()) as u64);
    for floor_bytes in LOG_FLOOR_BYTES {
        progress.start_step(&format!("floor/{floor_bytes}B"));
        let measurement = measure_floor(work.path(), floor_bytes, config.series_duration)?;
        report.push_series(floor_series(floor_bytes, &measurement));
        progress.finish_step();
    }
    for case in &cases {
        progress.start_step(&case.name());
        let dir = work.path().join(case.name().replace('/', "-"));
        let measurement = measure_case(&dir, case, config.series_duration)?;
        std::fs::remove_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
        report.push_series(case_series(case, &measurement));
        progress.finish_step();
    }
    progress.finish();
    push_floor_ratios(&mut report, &cases);
    push_ratios(&mut report, &backends);
    Ok(report)
}

/// io_uring (when this kernel allows it) and pwrite.
fn available_backends(dir: &Path) -> Result<Vec<BackendKind>> {
    let probe_dir = dir.join("probe");
    let options = LogOptions { segment_bytes: 1 << 20, ..LogOptions::default() };
    let detected = Log::open(&probe_dir, options)?.backend();
    std::fs::remove_dir_all(&probe_dir).map_err(|e| BenchError::io(&probe_dir, e))?;
    Ok(match detected {
        BackendKind::IoUring => vec![BackendKind::IoUring, BackendKind::Pwrite],
        BackendKind::Pwrite => vec![BackendKind::Pwrite],
    })
}

fn params_json(config: &LogConfig, work: &Path, backends: &[BackendKind]) -> serde_json::Value {
    json!({
        "series_duration_s": config.series_duration.as_secs_f64(),
        "backends": backends.iter().map(|b| b.name()).collect::<Vec<_>>(),
        "segment_bytes": LogOptions::default().segment_bytes,
        "series_bytes_max": LOG_SERIES_BYTES_MAX,
        "filesystem": filesystem_name(work),
    })
}

/// The floor loop: `pwrite` of `write_bytes` then `fdatasync`, cycling through a file that
/// was fully written and synced beforehand, so each fdatasync flushes data only (no extent
/// conversion or size change): the best this disk does for that write size.
fn measure_floor(dir: &Path, write_bytes: usize, duration: Duration) -> Result<Measurement> {
    let path = dir.join(format!("floor-{write_bytes}"));
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| BenchError::io(&path, e))?;
    let buffer = vec![0x5a_u8; write_bytes];
    let writes_per_lap = (LOG_FLOOR_FILE_BYTES / write_bytes as u64).max(1);
    for lap_write in 0..writes_per_lap {
        let position = lap_write * write_bytes as u64;
        file.write_all_at(&buffer, position).map_err(|e| BenchError::io(&path, e))?;
    }
    file.sync_all().map_err(|e| BenchError::io(&path, e))?;
    let mut histogram = latency_histogram();
    let mut writes = 0_u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        let position = (writes % writes_per_lap) * write_bytes as u64;
        let begin = Instant::now();
        file.write_all_at(&buffer, position).map_err(|e| BenchError::io(&path, e))?;
        file.sync_data().map_err(|e| BenchError::io(&path, e))?;
        record(&mut histogram, begin.elapsed());
        writes += 1;
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(&path).map_err(|e| BenchError::io(&path, e))?;
    Ok(Measurement { records: writes, fsyncs: writes, elapsed, histogram })
}

fn measure_case(dir: &Path, case: &Case, duration: Duration) -> Result<Measurement> {
    let backend = match case.backend {
        BackendKind::IoUring => BackendChoice::IoUring,
        BackendKind::Pwrite => BackendChoice::Pwrite,
    };
    let options = LogOptions {
        backend,
        durability: case.durability,
        zero_fill: case.zero_fill,
        ..LogOptions::default()
    };
    let log = Log::open(dir, options)?;
    assert_eq!(log.backend(), case.backend, "Log::open honours an explicit backend");
    if case.group_commit() {
        measure_group_commit(log, case, duration)
    } else {
        measure_direct(log, case, duration)
    }
}

/// One appender calling `Log::append` in a loop.
fn measure_direct(mut log: Log, case: &Case, duration: Duration) -> Result<Measurement> {
    let payload = vec![0xa5_u8; case.record_bytes];
    let batch: Vec<&[u8]> = vec![payload.as_slice(); case.batch];
    let batch_bytes = (case.record_bytes * case.batch) as u64;
    let mut histogram = latency_histogram();
    let mut written_bytes = 0_u64;
    let mut records = 0_u64;
    let fsyncs_before = log.stats().fsyncs;
    let start = Instant::now();
    while start.elapsed() < duration && written_bytes < LOG_SERIES_BYTES_MAX {
        let begin = Instant::now();
        log.append(&batch)?;
        record(&mut histogram, begin.elapsed());
        records += case.batch as u64;
        written_bytes += batch_bytes;
    }
    let elapsed = start.elapsed();
    let fsyncs = log.stats().fsyncs - fsyncs_before;
    Ok(Measurement { records, fsyncs, elapsed, histogram })
}

/// `case.appenders` threads sharing the log through group commit.
fn measure_group_commit(log: Log, case: &Case, duration: Duration) -> Result<Measurement> {
    let (appender, writer) = log.into_group_commit()?;
    let stop = Arc::new(AtomicBool::new(false));
    let fsyncs_before = appender.stats().fsyncs;
    let start = Instant::now();
    let mut threads = Vec::with_capacity(case.appenders);
    for index in 0..case.appenders {
        let appender = appender.clone();
        let stop = Arc::clone(&stop);
        let case = *case;
        let thread = std::thread::Builder::new()
            .name(format!("bench-appender-{index}"))
            .spawn(move || append_until_stopped(&appender, &case, &stop))
            .map_err(|e| BenchError::Thread(format!("spawn appender: {e}")))?;
        threads.push(thread);
    }
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut histogram = latency_histogram();
    let mut records = 0_u64;
    for thread in threads {
        let (thread_records, thread_histogram) =
            thread.join().map_err(|_| BenchError::Thread("appender panicked".into()))??;
        records += thread_records;
        histogram.add(&thread_histogram).expect("histograms of equal bounds add");
    }
    let elapsed = start.elapsed();
    let fsyncs = appender.stats().fsyncs - fsyncs_before;
    drop(appender);
    writer.join().map_err(|_| BenchError::Thread("log writer panicked".into()))?;
    Ok(Measurement { records, fsyncs, elapsed, histogram })
}

fn append_until_stopped(
    appender: &zabflow_core::log::LogAppender,
    case: &Case,
    stop: &AtomicBool,
) -> Result<(u64, Histogram<u64>)> {
    let payload = vec![0x3c_u8; case.record_bytes];
    let batch: Vec<&[u8]> = vec![payload.as_slice(); case.batch];
    let bytes_max_per_thread = LOG_SERIES_BYTES_MAX / case.appenders as u64;
    let mut histogram = latency_histogram();
    let mut records = 0_u64;
    while !stop.load(Ordering::Relaxed)
        && records * (case.record_bytes as u64) < bytes_max_per_thread
    {
        let begin = Instant::now();
        appender.append(&batch)?;
        record(&mut histogram, begin.elapsed());
        records += case.batch as u64;
    }
    Ok((records, histogram))
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record(elapsed.as_nanos().min(u128::from(u64::MAX)) as u64);
}

fn floor_series(write_bytes: usize, measurement: &Measurement) -> Series {
    let seconds = measurement.elapsed.as_secs_f64();
    let writes_per_s = measurement.records as f64 / seconds;
    Series::new(format!("floor/{write_bytes}B"), Target::Baseline, Unit::Records, writes_per_s)
        .with_params(json!({ "write_bytes": write_bytes }))
        .with_histogram(&measurement.histogram)
        .with_extra("fsyncs_per_s", measurement.fsyncs as f64 / seconds)
        .with_extra("mb_per_s", writes_per_s * write_bytes as f64 / 1e6)
}

fn case_series(case: &Case, measurement: &Measurement) -> Series {
    let seconds = measurement.elapsed.as_secs_f64();
    let records_per_s = measurement.records as f64 / seconds;
    Series::new(case.name(), Target::Zabflow, Unit::Records, records_per_s)
        .with_params(json!({
            "backend": case.backend.name(),
            "record_bytes": case.record_bytes,
            "batch": case.batch,
            "appenders": case.appenders,
            "durable": case.durability == Durability::Durable,
            "zero_fill": case.zero_fill,
        }))
        .with_histogram(&measurement.histogram)
        .with_extra("records_total", measurement.records)
        .with_extra("fsyncs_per_s", measurement.fsyncs as f64 / seconds)
        .with_extra("mb_per_s", records_per_s * case.record_bytes as f64 / 1e6)
}

/// Adds `floor_ratio` to every durable series: records/s over the 4 KiB floor's fsyncs/s
/// for small records, MB/s over the 1 MiB floor's MB/s for 64 KiB records.
fn push_floor_ratios(report: &mut Report, cases: &[Case]) {
    let floor = |report: &Report, bytes: usize, field: &str| {
        let series = report.series_named(&format!("floor/{bytes}B"))?;
        series.extra.get(field).and_then(|value| value.as_f64())
    };
    let fsync_floor = floor(report, LOG_FLOOR_BYTES[0], "fsyncs_per_s");
    let bandwidth_floor = floor(report, LOG_FLOOR_BYTES[1], "mb_per_s");
    for case in cases.iter().filter(|case| case.durability == Durability::Durable) {
        let name = case.name();
        let Some(series) = report.series.iter_mut().find(|series| series.name == name) else {
            continue;
        };
        let ratio = if case.record_bytes >= 65536 {
            let mb_per_s = series.extra.get("mb_per_s").and_then(|v| v.as_f64());
            mb_per_s.zip(bandwidth_floor).map(|(mb, floor)| mb / floor)
        } else {
            fsync_floor.map(|floor| series.throughput_per_s / floor)
        };
        if let Some(ratio) = ratio {
            series.extra.insert("floor_ratio".into(), ratio.into());
        }
    }
}

/// The headline ratios the targets are stated in.
fn push_ratios(report: &mut Report, backends: &[BackendKind]) {
    for backend in backends {
        let b = backend.name();
        let headlines = [
            (
                format!("{b}/group-commit-64/floor-fsyncs"),
                format!("{b}/100B/batch=1/appenders=64/durable"),
            ),
            (
                format!("{b}/1MiB-batches/floor-bandwidth"),
                format!("{b}/65536B/batch=16/appenders=1/durable"),
            ),
            (
                format!("{b}/group-commit-64-zero-fill/floor-fsyncs"),
                format!("{b}/100B/batch=1/appenders=64/durable/zero-fill"),
            ),
        ];
        for (ratio_name, series_name) in headlines {
            let value = report
                .series_named(&series_name)
                .and_then(|series| series.extra.get("floor_ratio"))
                .and_then(|v| v.as_f64());
            if let Some(value) = value {
                report.push_ratio(ratio_name, value);
            }
        }
    }
    if backends.len() == 2 {
        for shape in ["100B/batch=1/appenders=1/durable", "100B/batch=1024/appenders=1/buffered"] {
            let throughput = |backend: &str| {
                report.series_named(&format!("{backend}/{shape}")).map(|s| s.throughput_per_s)
            };
            if let (Some(uring), Some(pwrite)) = (throughput("io_uring"), throughput("pwrite")) {
                report.push_ratio(format!("io_uring/pwrite/{shape}"), uring / pwrite);
            }
        }
    }
}

/// The file system `path` lives on (`ext4`, `tmpfs`, …): fsync on tmpfs costs nothing, so a
/// report must say where it was measured.
fn filesystem_name(path: &Path) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return "unknown".into();
    };
    let Ok(path) = path.canonicalize() else {
        return "unknown".into();
    };
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(mount_point), Some(kind)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let longer = best.as_ref().is_none_or(|(length, _)| mount_point.len() > *length);
        if path.starts_with(mount_point) && longer {
            best = Some((mount_point.len(), kind.to_string()));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_follow_the_design() {
        let case = Case {
            backend: BackendKind::Pwrite,
            record_bytes: 100,
            batch: 1,
            appenders: 64,
            durability: Durability::Durable,
            zero_fill: false,
        };
        assert_eq!(case.name(), "pwrite/100B/batch=1/appenders=64/durable");
        let names: Vec<String> = cases(&[BackendKind::Pwrite]).iter().map(Case::name).collect();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "series names are unique");
    }

    #[test]
    fn quick_run_reports_every_series_and_headline_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            series_duration: Duration::from_millis(30),
            dir: dir.path().to_path_buf(),
            backends: None,
        };
        let report = run(&config).unwrap();
        let backends = available_backends(dir.path()).unwrap();
        assert_eq!(report.series.len(), LOG_FLOOR_BYTES.len() + cases(&backends).len());
        for series in &report.series {
            assert!(series.throughput_per_s > 0.0, "{} measured nothing", series.name);
            assert!(series.latency_us.is_some(), "{} has no latency", series.name);
        }
        for backend in &backends {
            let name = format!("{}/group-commit-64/floor-fsyncs", backend.name());
            assert!(report.ratio_named(&name).is_some(), "missing ratio {name}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "the scenario removes its files: {leftovers:?}");
    }

    #[test]
    fn rejects_zero_duration() {
        let config = LogConfig::new(std::env::temp_dir(), true);
        let config = LogConfig { series_duration: Duration::ZERO, ..config };
        assert!(matches!(run(&config), Err(BenchError::Param(_))));
    }
}
