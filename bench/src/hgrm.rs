//! HdrHistogram's percentile-distribution text format (`.hgrm`).
//!
//! This module owns writing a latency histogram (recorded in nanoseconds) as the text that
//! HdrHistogram's `outputPercentileDistribution` prints, with values in microseconds, and
//! reading such text back for comparisons and plots. HdrHistogram's own plotter and log
//! processor read these files, so the layout follows the Java implementation exactly:
//!
//! ```text
//! file    := header blank line* footer
//! header  := "       Value     Percentile TotalCount 1/(1-Percentile)" "\n" "\n"
//! line    := value_us percentile total_count one_over "\n"     ; percentile < 1
//!          | value_us percentile total_count "\n"               ; the last line, percentile 1
//! footer  := "#[Mean    = " mean_us ", StdDeviation   = " stddev_us "]" "\n"
//!            "#[Max     = " max_us ", Total count    = " total_count "]" "\n"
//!            "#[Buckets = " buckets ", SubBuckets     = " sub_buckets "]" "\n"
//! ```
//!
//! Percentiles are written as fractions (0.990000000000 for p99) and the lines follow
//! `iter_quantiles` with five ticks per half distance, so they are non-decreasing and the last
//! line's total count is the histogram's count. (hdrhistogram's `serialization` module writes
//! the binary interval-log encoding, not this text, hence this writer.)

use crate::constants::{HGRM_TICKS_PER_HALF_DISTANCE, HGRM_VALUE_DECIMALS};
use crate::error::{BenchError, Result};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::Path;

/// Nanoseconds per microsecond: histograms record ns, reports speak µs.
const NS_PER_US: f64 = 1_000.0;

/// One line of a percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HgrmPoint {
    /// The latency at this percentile, in microseconds.
    pub value_us: f64,
    /// The percentile as a fraction in `[0, 1]`.
    pub percentile: f64,
    /// Recorded values at or below `value_us`.
    pub total_count: u64,
}

/// A parsed `.hgrm` file: its lines and the footer's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Hgrm {
    /// Data lines in file order.
    pub points: Vec<HgrmPoint>,
    /// Mean latency from the footer, in microseconds.
    pub mean_us: f64,
    /// Largest recorded latency from the footer, in microseconds.
    pub max_us: f64,
    /// Number of recorded values from the footer.
    pub total_count: u64,
}

/// Renders a histogram of nanosecond latencies as `.hgrm` text with values in microseconds.
pub fn render(histogram: &Histogram<u64>) -> String {
    let mut text = String::new();
    let decimals = HGRM_VALUE_DECIMALS;
    // Writing into a String cannot fail, so the results of write! are ignored below.
    let _ = write!(
        text,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total_count = 0u64;
    for step in histogram.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
        let value_us = step.value_iterated_to() as f64 / NS_PER_US;
        let percentile = step.quantile_iterated_to();
        total_count += step.count_since_last_iteration();
        let _ = write!(text, "{value_us:12.decimals$} {percentile:2.12} {total_count:10}");
        if percentile < 1.0 {
            let _ = write!(text, " {:14.2}", 1.0 / (1.0 - percentile));
        }
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "#[Mean    = {:12.decimals$}, StdDeviation   = {:12.decimals$}]",
        histogram.mean() / NS_PER_US,
        histogram.stdev() / NS_PER_US
    );
    let _ = writeln!(
        text,
        "#[Max     = {:12.decimals$}, Total count    = {:12}]",
        histogram.max() as f64 / NS_PER_US,
        histogram.len()
    );
    let _ = writeln!(
        text,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    );
    text
}

/// Sub-buckets per bucket for a precision, as HdrHistogram derives it: the power of two that
/// covers `2 * 10^sigfig` (2048 for three significant digits).
fn sub_bucket_count(sigfig: u8) -> u64 {
    let single_unit_resolution = 2 * 10u64.pow(u32::from(sigfig));
    single_unit_resolution.next_power_of_two()
}

/// Parses `.hgrm` text; `path` only names the source in errors.
///
/// # Errors
/// [`BenchError::Hgrm`] for a data line that is not three or four numbers or a footer that
/// lacks `Mean`, `Max` or `Total count`.
pub fn parse(text: &str, path: &Path) -> Result<Hgrm> {
    let error = |line: usize, reason: &str| BenchError::Hgrm {
        path: path.to_path_buf(),
        line,
        reason: reason.to_string(),
    };
    let mut points = Vec::new();
    let mut footer = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Value") {
            continue;
        }
        if let Some(fields) = line.strip_prefix("#[").and_then(|rest| rest.strip_suffix(']')) {
            footer.extend(footer_fields(fields));
            continue;
        }
        points.push(parse_point(line).ok_or_else(|| error(index + 1, "bad data line"))?);
    }
    let lookup = |key: &str| footer.iter().find(|(name, _)| name == key).map(|(_, v)| v.as_str());
    let number = |key: &str| lookup(key).and_then(|value| value.parse::<f64>().ok());
    let (Some(mean_us), Some(max_us), Some(total_count)) = (
        number("Mean"),
        number("Max"),
        lookup("Total count").and_then(|value| value.parse::<u64>().ok()),
    ) else {
        return Err(error(text.lines().count(), "footer lacks Mean, Max or Total count"));
    };
    Ok(Hgrm { points, mean_us, max_us, total_count })
}

/// Reads and parses an `.hgrm` file.
///
/// # Errors
/// [`BenchError::Io`] if the file cannot be read, else as [`parse`].
pub fn load(path: &Path) -> Result<Hgrm> {
    let text = std::fs::read_to_string(path).map_err(|error| BenchError::io(path, error))?;
    parse(&text, path)
}

/// `Mean    =  1.5, StdDeviation   = 0.2` as `[("Mean", "1.5"), ("StdDeviation", "0.2")]`.
fn footer_fields(fields: &str) -> impl Iterator<Item = (String, String)> + '_ {
    fields.split(',').filter_map(|field| {
        let (key, value) = field.split_once('=')?;
        Some((key.trim().to_string(), value.trim().to_string()))
    })
}

/// `value percentile total_count [1/(1-percentile)]`.
fn parse_point(line: &str) -> Option<HgrmPoint> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if !(3..=4).contains(&fields.len()) {
        return None;
    }
    Some(HgrmPoint {
        value_us: fields[0].parse().ok()?,
        percentile: fields[1].parse().ok()?,
        total_count: fields[2].parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::latency_histogram;

    fn sample_histogram() -> Histogram<u64> {
        let mut histogram = latency_histogram();
        for value_ns in 1..=100_000u64 {
            histogram.record(value_ns * 7 % 1_000_003).unwrap();
        }
        histogram.record(5_000_000_000).unwrap();
        histogram
    }

    #[test]
    fn rendered_text_parses_back_monotone_and_complete() {
        let histogram = sample_histogram();
        let text = render(&histogram);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        let hgrm = parse(&text, Path::new("sample.hgrm")).unwrap();
        assert!(hgrm.points.len() > 20);
        for pair in hgrm.points.windows(2) {
            assert!(pair[0].percentile <= pair[1].percentile, "{pair:?}");
            assert!(pair[0].value_us <= pair[1].value_us, "{pair:?}");
            assert!(pair[0].total_count <= pair[1].total_count, "{pair:?}");
        }
        let last = hgrm.points.last().unwrap();
        assert_eq!(last.total_count, histogram.len());
        assert_eq!(last.percentile, 1.0);
        assert_eq!(hgrm.total_count, histogram.len());
        assert!((hgrm.max_us - histogram.max() as f64 / 1_000.0).abs() < 1e-3);
        assert!(text.contains("#[Buckets = "));
        assert!(text.contains("SubBuckets     =         2048]"));
    }

    #[test]
    fn lines_follow_the_java_layout() {
        let text = render(&sample_histogram());
        let first = text.lines().nth(2).unwrap();
        // %12.3f %2.12f %10d %14.2f
        assert_eq!(first.len(), 12 + 1 + 14 + 1 + 10 + 1 + 14, "{first:?}");
        let last_data = text.lines().rfind(|line| !line.starts_with('#')).unwrap();
        assert_eq!(last_data.split_whitespace().count(), 3, "{last_data:?}");
    }

    #[test]
    fn empty_histogram_renders_a_footer_only() {
        let hgrm = parse(&render(&latency_histogram()), Path::new("empty.hgrm")).unwrap();
        assert!(hgrm.points.is_empty());
        assert_eq!(hgrm.total_count, 0);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("1.0 abc 3\n", Path::new("bad.hgrm")).is_err());
        assert!(parse("1.0 0.5 3 2.0\n", Path::new("no-footer.hgrm")).is_err());
    }
}
