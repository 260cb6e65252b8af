//! Human tables of reports: one report's series (`report show`) and several reports side by
//! side with ratios to the first (`report compare`).
//!
//! Series are matched by name across reports, in the order they first appear; a series that
//! a report lacks shows `-`. Every ratio is `value / value in the first report`, so for
//! throughput above 1 is faster and for latency above 1 is slower. Tables are plain text that
//! fits a terminal and a README code block alike.

use crate::error::{BenchError, Result};
use crate::report::{Report, LATENCY_LABELS};
use std::fmt::Write as _;

/// A report and the label it goes by in tables and plots (usually its directory name).
#[derive(Debug, Clone)]
pub struct LabelledReport {
    pub label: String,
    pub report: Report,
}

/// One measured quantity of one series (or one report ratio) across the compared reports.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// `throughput/s`, `p50 us`, … or the ratio's name.
    pub metric: String,
    /// The value in each report, `None` where the report lacks it.
    pub values: Vec<Option<f64>>,
    /// `values[i] / values[0]` for every report after the first.
    pub ratios: Vec<Option<f64>>,
}

/// All metrics of one series across the compared reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesComparison {
    pub series: String,
    pub rows: Vec<MetricRow>,
}

/// Reports side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The reports' labels, in the order given.
    pub labels: Vec<String>,
    pub series: Vec<SeriesComparison>,
    /// The reports' own ratios (such as `rtrb-chunked/crossbeam`) side by side.
    pub ratios: Vec<MetricRow>,
}

/// Puts two or more reports side by side.
///
/// # Errors
/// [`BenchError::Compare`] for fewer than two reports.
pub fn compare(reports: &[LabelledReport]) -> Result<Comparison> {
    if reports.len() < 2 {
        return Err(BenchError::Compare("give at least two reports".to_string()));
    }
    let series = union_in_order(reports.iter().map(|r| r.report.series.iter().map(|s| &s.name)))
        .into_iter()
        .map(|name| compare_series(reports, &name))
        .collect();
    let ratios = union_in_order(reports.iter().map(|r| r.report.ratios.iter().map(|r| &r.name)))
        .into_iter()
        .map(|name| {
            let values = reports.iter().map(|r| r.report.ratio_named(&name)).collect();
            metric_row(name, values)
        })
        .collect();
    let labels = reports.iter().map(|r| r.label.clone()).collect();
    Ok(Comparison { labels, series, ratios })
}

/// Every name, once, in the order of first appearance.
fn union_in_order<'a>(
    lists: impl Iterator<Item = impl Iterator<Item = &'a String>>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in lists.flatten() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn compare_series(reports: &[LabelledReport], name: &str) -> SeriesComparison {
    let found: Vec<_> = reports.iter().map(|r| r.report.series_named(name)).collect();
    let unit = found.iter().flatten().map(|s| s.unit.as_str()).next().unwrap_or("units");
    let mut rows = vec![metric_row(
        format!("{unit}/s"),
        found.iter().map(|s| s.map(|s| s.throughput_per_s)).collect(),
    )];
    for (index, label) in LATENCY_LABELS.iter().enumerate() {
        let values: Vec<Option<f64>> = found
            .iter()
            .map(|s| s.and_then(|s| s.latency_us).map(|l| l.values_us()[index]))
            .collect();
        if values.iter().any(Option::is_some) {
            rows.push(metric_row(format!("{label} us"), values));
        }
    }
    SeriesComparison { series: name.to_string(), rows }
}

fn metric_row(metric: String, values: Vec<Option<f64>>) -> MetricRow {
    let ratios = values[1..]
        .iter()
        .map(|value| match (values[0], value) {
            (Some(base), Some(value)) if base != 0.0 => Some(value / base),
            _ => None,
        })
        .collect();
    MetricRow { metric, values, ratios }
}

/// Column letters of reports in comparison tables: A is the base of every ratio.
fn column_letter(index: usize) -> String {
    let letter = char::from(b'A' + (index % 26) as u8);
    if index < 26 {
        letter.to_string()
    } else {
        format!("{letter}{}", index / 26)
    }
}

impl Comparison {
    /// The side-by-side table: a legend of report letters, then each series' metrics with
    /// every report's value and its ratio to report A, then the reports' own ratios.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (index, label) in self.labels.iter().enumerate() {
            let _ = writeln!(text, "{} = {label}", column_letter(index));
        }
        let metric_width = self
            .series
            .iter()
            .flat_map(|s| s.rows.iter().map(|row| row.metric.len() + 2))
            .chain(self.series.iter().map(|s| s.series.len()))
            .chain(self.ratios.iter().map(|row| row.metric.len() + 2))
            .max()
            .unwrap_or(0)
            .max(8);
        let _ = writeln!(text, "\n{}", self.header(metric_width));
        for series in &self.series {
            let _ = writeln!(text, "{}", series.series);
            for row in &series.rows {
                let format = if row.metric.ends_with(" us") { format_us } else { format_si };
                let _ = writeln!(text, "{}", render_row(row, metric_width, format));
            }
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(text, "ratios");
            for row in &self.ratios {
                let _ = writeln!(text, "{}", render_row(row, metric_width, format_ratio));
            }
        }
        text
    }

    fn header(&self, metric_width: usize) -> String {
        let mut header = format!("{:<metric_width$}", "series / metric");
        for index in 0..self.labels.len() {
            let _ = write!(header, " {:>VALUE_WIDTH$}", column_letter(index));
            if index > 0 {
                let ratio = format!("{}/A", column_letter(index));
                let _ = write!(header, " {ratio:>RATIO_WIDTH$}");
            }
        }
        header
    }
}

/// Width of a value column.
const VALUE_WIDTH: usize = 10;
/// Width of a ratio column.
const RATIO_WIDTH: usize = 7;

fn render_row(row: &MetricRow, metric_width: usize, format: fn(f64) -> String) -> String {
    let mut line = format!("{:<metric_width$}", format!("  {}", row.metric));
    for (index, value) in row.values.iter().enumerate() {
        let _ = write!(line, " {:>VALUE_WIDTH$}", value.map_or("-".to_string(), format));
        if index > 0 {
            let ratio = row.ratios[index - 1].map_or("-".to_string(), format_ratio);
            let _ = write!(line, " {ratio:>RATIO_WIDTH$}");
        }
    }
    line.trim_end().to_string()
}

/// `452.1M`, `33.0k`, `12.5`: three or four significant digits with an SI prefix.
pub fn format_si(value: f64) -> String {
    let prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    match prefixes.iter().find(|(scale, _)| value.abs() >= *scale) {
        Some((scale, prefix)) => format!("{:.1}{prefix}", value / scale),
        None => format!("{value:.1}"),
    }
}

/// Microseconds with three significant digits or more: `0.123`, `4.62`, `31.0`, `1234`.
pub fn format_us(value_us: f64) -> String {
    match value_us.abs() {
        magnitude if magnitude < 1.0 => format!("{value_us:.3}"),
        magnitude if magnitude < 10.0 => format!("{value_us:.2}"),
        magnitude if magnitude < 1000.0 => format!("{value_us:.1}"),
        _ => format!("{value_us:.0}"),
    }
}

/// `14.20x`.
pub fn format_ratio(value: f64) -> String {
    format!("{value:.2}x")
}

/// The table of one report: its facts, one row per series, then its ratios.
pub fn show(report: &Report) -> String {
    let mut text = format!(
        "{} at {} (git {}), {:.1} s on {} ({} cores, {}), peak RSS {}B\n\n",
        report.scenario,
        report.started_at,
        report.git_rev,
        report.duration_s,
        report.machine.cpu_model,
        report.machine.cores,
        report.machine.kernel,
        format_si(report.peak_rss_bytes as f64),
    );
    let name_width = report.series.iter().map(|s| s.name.len()).max().unwrap_or(0).max(6);
    let _ = write!(text, "{:<name_width$} {:>VALUE_WIDTH$} {:<7}", "series", "per s", "unit");
    for label in LATENCY_LABELS {
        let _ = write!(text, " {:>VALUE_WIDTH$}", format!("{label} us"));
    }
    text.push('\n');
    for series in &report.series {
        let throughput = format_si(series.throughput_per_s);
        let unit = series.unit.as_str();
        let _ = write!(text, "{:<name_width$} {throughput:>VALUE_WIDTH$} {unit:<7}", series.name);
        for value_us in series.latency_us.map(|l| l.values_us().map(Some)).unwrap_or([None; 5]) {
            let _ = write!(text, " {:>VALUE_WIDTH$}", value_us.map_or("-".to_string(), format_us));
        }
        text = text.trim_end().to_string() + "\n";
    }
    if !report.ratios.is_empty() {
        text.push_str("\nratios\n");
        let ratio_width = report.ratios.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for ratio in &report.ratios {
            let _ =
                writeln!(text, "  {:<ratio_width$} {:>9}", ratio.name, format_ratio(ratio.value));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{latency_histogram, Series, Target, Unit};
    use serde_json::json;

    fn report_with(throughputs: &[(&str, f64)], latency_ns: u64) -> Report {
        let mut report = Report::new("ring", json!({}));
        let mut histogram = latency_histogram();
        histogram.record(latency_ns).unwrap();
        for (name, throughput) in throughputs {
            let series = Series::new(*name, Target::Zabflow, Unit::Items, *throughput);
            report.push_series(series.with_histogram(&histogram));
        }
        report.push_ratio("a/b", throughputs[0].1 / throughputs[1].1);
        report
    }

    fn labelled(label: &str, report: Report) -> LabelledReport {
        LabelledReport { label: label.to_string(), report }
    }

    #[test]
    fn ratios_are_relative_to_the_first_report() {
        let base = report_with(&[("a", 100.0), ("b", 10.0)], 2_000);
        let other = report_with(&[("a", 250.0), ("c", 5.0), ("b", 20.0)], 1_000);
        let comparison = compare(&[labelled("base", base), labelled("other", other)]).unwrap();
        let names: Vec<_> = comparison.series.iter().map(|s| s.series.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let throughput = &comparison.series[0].rows[0];
        assert_eq!(throughput.metric, "items/s");
        assert_eq!(throughput.values, [Some(100.0), Some(250.0)]);
        assert_eq!(throughput.ratios, [Some(2.5)]);
        let p50 = &comparison.series[0].rows[1];
        assert_eq!(p50.metric, "p50 us");
        assert!((p50.ratios[0].unwrap() - 0.5).abs() < 1e-3, "{p50:?}");
        assert_eq!(comparison.series[2].rows[0].ratios, [None]);
        assert_eq!(comparison.ratios[0].values, [Some(10.0), Some(50.0)]);
        assert_eq!(comparison.ratios[0].ratios, [Some(5.0)]);
        let text = comparison.render();
        assert!(text.contains("A = base") && text.contains("B/A") && text.contains("2.50x"));
    }

    #[test]
    fn needs_two_reports() {
        let only = labelled("only", report_with(&[("a", 1.0), ("b", 1.0)], 1));
        assert!(compare(&[only]).is_err());
    }

    #[test]
    fn show_lists_series_and_ratios() {
        let text = show(&report_with(&[("rtrb-chunked/16B", 4.5e8), ("crossbeam/16B", 3e7)], 900));
        assert!(text.contains("rtrb-chunked/16B") && text.contains("450.0M"), "{text}");
        assert!(text.contains("15.00x") && text.contains("p99.9 us"), "{text}");
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(format_si(4.5e8), "450.0M");
        assert_eq!(format_si(12.0), "12.0");
        assert_eq!(format_us(0.1234), "0.123");
        assert_eq!(format_us(31.04), "31.0");
        assert_eq!(format_ratio(14.2), "14.20x");
    }
}
