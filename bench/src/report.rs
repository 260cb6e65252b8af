//! Benchmark reports: the `summary.json` schema of DESIGN.md and the `.hgrm` files beside it.
//!
//! A [`Report`] is one run of one scenario. It owns its series of measurements, the ratios
//! between them, and the facts needed to trust them later (git revision, machine, parameters,
//! peak memory). Writing a report creates a directory holding `summary.json` and one `.hgrm`
//! percentile file per series that recorded latencies; [`Report::load`] reads that directory
//! back into an equal value. Tools, plots and README tables read these files, so the schema
//! only grows: scenario-specific numbers go into a series' `extra` map (flattened next to the
//! standard fields), never into renamed fields.
//!
//! ```text
//! <dir>/summary.json          { scenario, git_rev, started_at, duration_s, machine, params,
//!                               peak_rss_bytes, series: [...], ratios: [...] }
//! <dir>/<series name>.hgrm    one per series with a histogram, '/' in the name becoming '-'
//! ```

use crate::constants::{
    HISTOGRAM_LATENCY_NS_MAX, HISTOGRAM_SIGFIG, REPORTS_DIR_DEFAULT, SUMMARY_FILE_NAME,
};
use crate::error::{BenchError, Result};
use crate::hgrm;
use crate::machine::{self, Machine};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Fields of a series that an `extra` entry must not shadow.
const SERIES_FIELD_NAMES: [&str; 7] =
    ["name", "target", "params", "throughput_per_s", "unit", "latency_us", "hgrm"];

/// Names of the [`Latency`] fields in tables, in ascending order.
pub const LATENCY_LABELS: [&str; 5] = ["p50", "p90", "p99", "p99.9", "max"];

/// A new latency histogram in nanoseconds with the crate's bounds and precision.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_LATENCY_NS_MAX, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// One run of one scenario, as written to `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `ring`, `log`, `pipeline`, `coord` or `recovery`.
    pub scenario: String,
    /// `git rev-parse --short HEAD`, `-dirty` appended for a modified tree, or `unknown`.
    pub git_rev: String,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// Wall-clock length of the run, in seconds.
    pub duration_s: f64,
    /// Where the run happened.
    pub machine: Machine,
    /// Every knob of the run.
    pub params: Value,
    /// Peak resident memory of the benchmarking process, in bytes.
    pub peak_rss_bytes: u64,
    /// The measurements, in the order they were taken.
    pub series: Vec<Series>,
    /// Named ratios between series (for example `rtrb-chunked/crossbeam`).
    pub ratios: Vec<Ratio>,
    /// Started when the report was created; `None` once finished or when loaded.
    #[serde(skip)]
    clock: Option<Instant>,
}

/// Who served the load a series measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// zabflow's own code.
    Zabflow,
    /// An Apache ZooKeeper ensemble.
    Zookeeper,
    /// A reference implementation to compare against (another channel, plain write+fsync).
    Baseline,
    /// Some other external system.
    External,
}

/// What a series' throughput counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Items,
    Records,
    Ops,
    Bytes,
}

impl Unit {
    /// The unit as written in `summary.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Items => "items",
            Unit::Records => "records",
            Unit::Ops => "ops",
            Unit::Bytes => "bytes",
        }
    }
}

/// Latency percentiles of a series, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// The percentiles of a histogram of nanosecond latencies.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Latency {
        let us = |value_ns: u64| value_ns as f64 / 1_000.0;
        Latency {
            p50: us(histogram.value_at_quantile(0.50)),
            p90: us(histogram.value_at_quantile(0.90)),
            p99: us(histogram.value_at_quantile(0.99)),
            p999: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
        }
    }

    /// The values in the order of [`LATENCY_LABELS`], in microseconds.
    pub fn values_us(&self) -> [f64; 5] {
        [self.p50, self.p90, self.p99, self.p999, self.max]
    }
}

/// One measured configuration of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Unique within the report, following DESIGN.md's naming (`rtrb-chunked/16B`).
    pub name: String,
    pub target: Target,
    /// What differs between this series and the others.
    #[serde(default = "empty_object")]
    pub params: Value,
    /// Units of work per second.
    pub throughput_per_s: f64,
    pub unit: Unit,
    /// Latency percentiles, when the series recorded latencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Latency>,
    /// File name of the series' `.hgrm` inside the report directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hgrm: Option<String>,
    /// Scenario-specific numbers (`fsyncs_per_s`, `mb_per_s`, …), flattened into the series.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
    /// The `.hgrm` text, written beside `summary.json` and read back by [`Report::load`].
    #[serde(skip)]
    hgrm_text: Option<String>,
}

/// A named ratio between two measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl Series {
    /// A series without latencies; add them with [`Series::with_histogram`].
    pub fn new(name: impl Into<String>, target: Target, unit: Unit, throughput_per_s: f64) -> Self {
        Series {
            name: name.into(),
            target,
            params: empty_object(),
            throughput_per_s,
            unit,
            latency_us: None,
            hgrm: None,
            extra: BTreeMap::new(),
            hgrm_text: None,
        }
    }

    /// Attaches the latencies of a histogram recorded in nanoseconds: the percentiles go into
    /// `latency_us` and the whole distribution into an `.hgrm` file named after the series.
    pub fn with_histogram(mut self, histogram: &Histogram<u64>) -> Self {
        self.latency_us = Some(Latency::from_histogram(histogram));
        self.hgrm = Some(hgrm_file_name(&self.name));
        self.hgrm_text = Some(hgrm::render(histogram));
        self
    }

    /// Sets what differs between this series and the others.
    pub fn with_params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// Adds a scenario-specific field, such as `fsyncs_per_s`.
    ///
    /// # Panics
    /// If `key` is one of the standard series fields: extras add fields, never replace them.
    pub fn with_extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        assert!(!SERIES_FIELD_NAMES.contains(&key), "extra field {key:?} shadows a series field");
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// The `.hgrm` text of this series, if it recorded latencies.
    pub fn hgrm_text(&self) -> Option<&str> {
        self.hgrm_text.as_deref()
    }
}

/// `rtrb-chunked/16B` becomes `rtrb-chunked-16B.hgrm`; characters that are awkward in file
/// names become `_`.
pub fn hgrm_file_name(series_name: &str) -> String {
    let stem: String = series_name
        .chars()
        .map(|c| match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || "-_.=+@".contains(c) => c,
            _ => '_',
        })
        .collect();
    format!("{stem}.hgrm")
}

impl Report {
    /// Starts a report for `scenario` with every knob of the run in `params`; the clock for
    /// `duration_s` starts now and stops at [`Report::finish`] (or the first write).
    pub fn new(scenario: &str, params: Value) -> Report {
        Report {
            scenario: scenario.to_string(),
            git_rev: machine::git_rev(),
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            duration_s: 0.0,
            machine: Machine::detect(),
            params,
            peak_rss_bytes: 0,
            series: Vec::new(),
            ratios: Vec::new(),
            clock: Some(Instant::now()),
        }
    }

    /// Appends a series.
    ///
    /// # Panics
    /// If a series of the same name or `.hgrm` file name is already in the report.
    pub fn push_series(&mut self, series: Series) {
        let hgrm_name = hgrm_file_name(&series.name);
        let clash = self.series.iter().any(|s| {
            s.name == series.name
                || (series.hgrm.is_some() && s.hgrm.as_deref() == Some(&hgrm_name))
        });
        assert!(!clash, "series {:?} is already in the report", series.name);
        self.series.push(series);
    }

    /// Appends a named ratio.
    pub fn push_ratio(&mut self, name: impl Into<String>, value: f64) {
        self.ratios.push(Ratio { name: name.into(), value });
    }

    /// The series called `name`, if any.
    pub fn series_named(&self, name: &str) -> Option<&Series> {
        self.series.iter().find(|series| series.name == name)
    }

    /// The ratio called `name`, if any.
    pub fn ratio_named(&self, name: &str) -> Option<f64> {
        self.ratios.iter().find(|ratio| ratio.name == name).map(|ratio| ratio.value)
    }

    /// Stops the run clock and samples peak memory; later calls change nothing.
    pub fn finish(&mut self) {
        if let Some(clock) = self.clock.take() {
            self.duration_s = clock.elapsed().as_secs_f64();
            self.peak_rss_bytes = machine::peak_rss_bytes();
        }
    }

    /// `reports/<scenario>-<UTC start, e.g. 20250102T030405Z>` under the current directory.
    pub fn default_dir(&self) -> PathBuf {
        let stamp: String = self.started_at.chars().filter(|c| !matches!(c, '-' | ':')).collect();
        Path::new(REPORTS_DIR_DEFAULT).join(format!("{}-{stamp}", self.scenario))
    }

    /// Finishes the report and writes `summary.json` and the `.hgrm` files into `dir`,
    /// creating it. Returns `dir`.
    ///
    /// # Errors
    /// [`BenchError::Io`] when the directory or a file cannot be written.
    pub fn write(&mut self, dir: &Path) -> Result<PathBuf> {
        self.finish();
        std::fs::create_dir_all(dir).map_err(|error| BenchError::io(dir, error))?;
        for series in &self.series {
            if let (Some(name), Some(text)) = (&series.hgrm, &series.hgrm_text) {
                write_file(&dir.join(name), text)?;
            }
        }
        let summary_path = dir.join(SUMMARY_FILE_NAME);
        let json = serde_json::to_string_pretty(self)
            .map_err(|source| BenchError::Json { path: summary_path.clone(), source })?;
        write_file(&summary_path, &(json + "\n"))?;
        Ok(dir.to_path_buf())
    }

    /// Reads a report directory written by [`Report::write`], `.hgrm` files included.
    ///
    /// # Errors
    /// [`BenchError::Io`] for a missing `summary.json` or `.hgrm` file, [`BenchError::Json`]
    /// for a summary that does not follow the schema.
    pub fn load(dir: &Path) -> Result<Report> {
        let summary_path = dir.join(SUMMARY_FILE_NAME);
        let json = std::fs::read_to_string(&summary_path)
            .map_err(|error| BenchError::io(&summary_path, error))?;
        let mut report: Report = serde_json::from_str(&json)
            .map_err(|source| BenchError::Json { path: summary_path, source })?;
        for series in &mut report.series {
            if let Some(name) = &series.hgrm {
                let path = dir.join(name);
                let text =
                    std::fs::read_to_string(&path).map_err(|error| BenchError::io(&path, error))?;
                series.hgrm_text = Some(text);
            }
        }
        Ok(report)
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|error| BenchError::io(path, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_report() -> Report {
        let mut report = Report::new("ring", json!({ "duration_s": 0.5, "capacity": 4096 }));
        let mut histogram = latency_histogram();
        for value_ns in [120u64, 250, 250, 900, 31_000, 1_234_567] {
            histogram.record(value_ns).unwrap();
        }
        report.push_series(
            Series::new("rtrb-chunked/16B", Target::Zabflow, Unit::Items, 4.567_891_234e8)
                .with_params(json!({ "item_bytes": 16 }))
                .with_histogram(&histogram)
                .with_extra("mb_per_s", 7308.6)
                .with_extra("floor_ratio", 0.1 + 0.2),
        );
        report.push_series(Series::new("crossbeam/16B", Target::Baseline, Unit::Items, 3.3e7));
        report.push_ratio("rtrb-chunked/crossbeam", 4.567_891_234e8 / 3.3e7);
        report
    }

    #[test]
    fn write_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = sample_report();
        let written = report.write(&dir.path().join("run")).unwrap();
        assert!(written.join("summary.json").is_file());
        assert!(written.join("rtrb-chunked-16B.hgrm").is_file());
        let loaded = Report::load(&written).unwrap();
        assert_eq!(loaded, report);
        assert!(loaded.duration_s > 0.0 && loaded.peak_rss_bytes > 0);
        assert_eq!(loaded.series[0].extra["mb_per_s"], json!(7308.6));
    }

    #[test]
    fn summary_follows_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let written = sample_report().write(dir.path()).unwrap();
        let text = std::fs::read_to_string(written.join("summary.json")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        for key in ["scenario", "git_rev", "started_at", "duration_s", "machine", "params"] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert!(value["machine"]["cores"].as_u64().unwrap() >= 1);
        let series = &value["series"][0];
        assert_eq!(series["target"], "zabflow");
        assert_eq!(series["unit"], "items");
        assert_eq!(series["hgrm"], "rtrb-chunked-16B.hgrm");
        assert_eq!(series["latency_us"]["p50"], json!(0.25));
        assert!(series["latency_us"]["p999"].is_number() && series["floor_ratio"].is_number());
        assert!(humantime::parse_rfc3339(value["started_at"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn default_dir_names_scenario_and_time() {
        let report = sample_report();
        let name = report.default_dir().file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("ring-") && name.ends_with('Z') && !name.contains(':'), "{name}");
    }

    #[test]
    #[should_panic(expected = "already in the report")]
    fn duplicate_series_names_panic() {
        let mut report = sample_report();
        report.push_series(Series::new("crossbeam/16B", Target::Baseline, Unit::Items, 1.0));
    }
}
