//! The index of a suite run: one Markdown page over every scenario's report, with latency
//! plots, and the headline lines the suite prints last.
//!
//! A suite run is one directory holding a report directory per scenario and this index:
//!
//! ```text
//! <run>/index.md             goals table, headline ratios, one section per scenario
//! <run>/plots/<name>.svg     latency by percentile, zabflow beside ZooKeeper per workload
//! <run>/<scenario>/          the scenario's report (summary.json, .hgrm files)
//! ```
//!
//! The goals table lists every zabflow / ZooKeeper ratio that issue 8 sets a target for
//! ([`goal`]), with pass or FAIL; the other ratios of each report follow as headlines; each
//! scenario's section has one row per series. A scenario that failed gets its error in the
//! index instead of a table, so a partial run is never mistaken for a complete one. The
//! index only reads reports, so it can be rebuilt from the report directories alone.

use crate::compare::{format_ratio, format_si, format_us, LabelledReport};
use crate::error::{BenchError, Result};
use crate::goal::{self, Verdict};
use crate::plot;
use crate::report::{hgrm_file_name, Report, Series};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Name of the index page inside a suite run's directory.
pub const INDEX_FILE_NAME: &str = "index.md";
/// Directory of the plots inside a suite run's directory.
pub const PLOTS_DIR_NAME: &str = "plots";

/// One scenario of a suite run: its report, or why it has none.
#[derive(Debug, Clone)]
pub struct SuiteEntry {
    /// The scenario, which is also its report's directory name inside the run.
    pub scenario: String,
    pub outcome: std::result::Result<Report, String>,
}

/// A plot written for the index: its title and file name inside [`PLOTS_DIR_NAME`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotFile {
    pub scenario: String,
    pub title: String,
    pub file_name: String,
}

/// One ratio held to a goal.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalRow {
    pub scenario: String,
    /// The ratio's name without ` zabflow/zookeeper`.
    pub ratio: String,
    pub value: f64,
    pub goal: &'static str,
    pub verdict: Verdict,
}

/// Extra series fields shown as columns when a report's series carry them:
/// (field, header, divisor).
const EXTRA_COLUMNS: [(&str, &str, f64); 5] = [
    ("server_cpu_us_per_op", "server CPU µs/op", 1.0),
    ("load_s", "load s", 1.0),
    ("rss_bytes", "RSS MiB", 1_048_576.0),
    ("hwm_bytes", "HWM MiB", 1_048_576.0),
    ("jvm_heap_live_bytes", "JVM live heap MiB", 1_048_576.0),
];

/// Writes the plots and `index.md` of a suite run into `run_dir` (which holds the report
/// directories); `command` is the command line that produced the run. Returns the index's
/// path.
///
/// # Errors
/// [`BenchError::Io`] when a file cannot be written, [`BenchError::Plot`] when a plot
/// cannot be drawn.
pub fn write(run_dir: &Path, entries: &[SuiteEntry], command: &str) -> Result<PathBuf> {
    let plots_dir = run_dir.join(PLOTS_DIR_NAME);
    let mut plots = Vec::new();
    for entry in entries {
        let Ok(report) = &entry.outcome else { continue };
        for (title, subset) in compare_plots(report) {
            if plots.is_empty() {
                std::fs::create_dir_all(&plots_dir)
                    .map_err(|error| BenchError::io(&plots_dir, error))?;
            }
            let stem = hgrm_file_name(&format!("{}-{title}", entry.scenario));
            let file_name = format!("{}.svg", stem.trim_end_matches(".hgrm"));
            let labelled = [LabelledReport { label: entry.scenario.clone(), report: subset }];
            plot::write_latency_plot_titled(&labelled, &plots_dir.join(&file_name), &title)?;
            plots.push(PlotFile { scenario: entry.scenario.clone(), title, file_name });
        }
    }
    let path = run_dir.join(INDEX_FILE_NAME);
    let text = render(entries, &plots, command);
    std::fs::write(&path, text).map_err(|error| BenchError::io(&path, error))?;
    Ok(path)
}

/// For a report whose series end in `@<target>` (a compare run): per workload, a copy of
/// the report holding only that workload's series with latencies, titled by the workload.
fn compare_plots(report: &Report) -> Vec<(String, Report)> {
    let mut bases: Vec<&str> = Vec::new();
    for series in report.series.iter().filter(|s| s.hgrm_text().is_some()) {
        if let Some((base, _)) = series.name.rsplit_once('@') {
            if !bases.contains(&base) {
                bases.push(base);
            }
        }
    }
    bases
        .into_iter()
        .filter_map(|base| {
            let mut subset = report.clone();
            let prefix = format!("{base}@");
            subset.series.retain(|s| s.name.starts_with(&prefix) && s.hgrm_text().is_some());
            (subset.series.len() > 1).then(|| (base.to_owned(), subset))
        })
        .collect()
}

/// Every ratio of the run that a goal applies to, in report order.
pub fn goal_rows(entries: &[SuiteEntry]) -> Vec<GoalRow> {
    let mut rows = Vec::new();
    for entry in entries {
        let Ok(report) = &entry.outcome else { continue };
        for ratio in &report.ratios {
            let Some(goal) = goal::goal_for(&ratio.name) else { continue };
            rows.push(GoalRow {
                scenario: entry.scenario.clone(),
                ratio: ratio.name.trim_end_matches(" zabflow/zookeeper").to_owned(),
                value: ratio.value,
                goal: goal.text,
                verdict: goal.verdict(ratio.value),
            });
        }
    }
    rows
}

/// The Markdown of the index.
pub fn render(entries: &[SuiteEntry], plots: &[PlotFile], command: &str) -> String {
    let mut text = String::from("# zabflow benchmark suite\n\n");
    text.push_str(&run_facts(entries, command));
    text.push_str("\n## Goals: zabflow / ZooKeeper (issue 8)\n\n");
    let rows = goal_rows(entries);
    if rows.is_empty() {
        text.push_str("No zabflow / ZooKeeper ratio was measured in this run.\n");
    } else {
        text.push_str("| scenario | ratio | zabflow / ZooKeeper | goal | result |\n");
        text.push_str("|---|---|---:|---|---|\n");
        for row in &rows {
            let verdict = match row.verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::Fail => "**FAIL**".to_owned(),
            };
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {verdict} |",
                row.scenario,
                row.ratio,
                format_ratio(row.value),
                row.goal
            );
        }
    }
    for note in memory_notes(entries) {
        let _ = writeln!(text, "\n{note}");
    }
    text.push_str(&other_ratios(entries));
    for entry in entries {
        text.push_str(&section(entry, plots));
    }
    text
}

/// When and where the run happened, from its first report.
fn run_facts(entries: &[SuiteEntry], command: &str) -> String {
    let reports: Vec<&Report> = entries.iter().filter_map(|e| e.outcome.as_ref().ok()).collect();
    let mut text = format!("Command: `{command}`\n");
    if let Some(first) = reports.first() {
        let seconds: f64 = reports.iter().map(|report| report.duration_s).sum();
        let machine = &first.machine;
        let _ =
            write!(
            text,
            "\nStarted {} at git `{}` on {} ({} cores, kernel {}); the scenarios took {:.0} s.\n",
            first.started_at, first.git_rev, machine.cpu_model, machine.cores, machine.kernel,
            seconds
        );
    }
    let failed: Vec<&str> =
        entries.iter().filter(|e| e.outcome.is_err()).map(|e| e.scenario.as_str()).collect();
    if !failed.is_empty() {
        let _ = writeln!(text, "\n**Failed scenarios: {}** (errors below).", failed.join(", "));
    }
    text
}

/// A note for each `coord-memory` report that loaded another number of znodes than the
/// memory goal is stated for, saying that its ratio is no verdict and how to get one.
fn memory_notes(entries: &[SuiteEntry]) -> Vec<String> {
    let goal_label = goal::memory_goal_label();
    let reports = entries.iter().filter_map(|entry| entry.outcome.as_ref().ok());
    reports
        .filter(|report| report.scenario == "coord-memory")
        .filter(|report| !report.series.iter().any(|s| s.name.starts_with(&goal_label)))
        .map(|report| {
            format!(
                "Memory: coord-memory loaded {} znodes here, not the {} the goal is stated \
                 for (a JVM's resident memory is mostly its heap, so the ratio at a smaller \
                 load is no verdict); `zabflow bench coord-memory` measures {}.",
                report.params["znodes"],
                goal_label.trim_start_matches("populate/znodes="),
                goal_label.trim_start_matches("populate/")
            )
        })
        .collect()
}

/// Every report's ratios that no goal covers.
fn other_ratios(entries: &[SuiteEntry]) -> String {
    let mut text =
        String::from("\n## Headline ratios\n\n| scenario | ratio | value |\n|---|---|---:|\n");
    let mut any = false;
    for entry in entries {
        let Ok(report) = &entry.outcome else { continue };
        for ratio in report.ratios.iter().filter(|r| goal::goal_for(&r.name).is_none()) {
            any = true;
            let _ = writeln!(
                text,
                "| {} | {} | {} |",
                entry.scenario,
                ratio.name,
                format_ratio(ratio.value)
            );
        }
    }
    if any {
        text
    } else {
        String::new()
    }
}

/// One scenario's section: its series table and plots, or its error.
fn section(entry: &SuiteEntry, plots: &[PlotFile]) -> String {
    let scenario = &entry.scenario;
    let report = match &entry.outcome {
        Ok(report) => report,
        Err(error) => return format!("\n## {scenario}: failed\n\n```text\n{error}\n```\n"),
    };
    let mut text = format!(
        "\n## {scenario}\n\nReport: [`{scenario}/`]({scenario}/summary.json), {:.0} s.\n\n",
        report.duration_s
    );
    let columns: Vec<_> = EXTRA_COLUMNS
        .iter()
        .filter(|(key, ..)| report.series.iter().any(|s| extra(s, key).is_some()))
        .collect();
    text.push_str("| series | target | per s | unit | p50 µs | p99 µs | p99.9 µs |");
    for (_, header, _) in &columns {
        let _ = write!(text, " {header} |");
    }
    text.push_str("\n|---|---|---:|---|---:|---:|---:|");
    text.push_str(&"---:|".repeat(columns.len()));
    text.push('\n');
    for series in &report.series {
        let latency = |pick: fn(&crate::report::Latency) -> f64| {
            series.latency_us.as_ref().map_or("-".to_owned(), |l| format_us(pick(l)))
        };
        let _ = write!(
            text,
            "| {} | {:?} | {} | {} | {} | {} | {} |",
            series.name.replace('|', "\\|"),
            series.target,
            format_si(series.throughput_per_s),
            series.unit.as_str(),
            latency(|l| l.p50),
            latency(|l| l.p99),
            latency(|l| l.p999),
        );
        for (key, _, divisor) in &columns {
            let cell = extra(series, key).map_or("-".to_owned(), |v| format!("{:.1}", v / divisor));
            let _ = write!(text, " {cell} |");
        }
        text.push('\n');
    }
    for plot in plots.iter().filter(|plot| &plot.scenario == scenario) {
        let _ = write!(text, "\n![{}]({PLOTS_DIR_NAME}/{})\n", plot.title, plot.file_name);
    }
    text
}

fn extra(series: &Series, key: &str) -> Option<f64> {
    series.extra.get(key).and_then(serde_json::Value::as_f64)
}

/// The lines the suite prints last: each goal with its verdict, the failed scenarios, and
/// where the index is.
pub fn headlines(entries: &[SuiteEntry], index_path: &Path) -> String {
    let mut text = String::from("\nheadline ratios, zabflow / ZooKeeper:\n");
    let rows = goal_rows(entries);
    if rows.is_empty() {
        text.push_str("  (none measured)\n");
    }
    for row in rows {
        let _ = writeln!(
            text,
            "  {:<14} {:<58} {:>8}  goal {:<5} {}",
            row.scenario,
            row.ratio,
            format_ratio(row.value),
            row.goal,
            row.verdict
        );
    }
    for note in memory_notes(entries) {
        let _ = writeln!(text, "  {note}");
    }
    for entry in entries {
        if let Err(error) = &entry.outcome {
            let first_line = error.lines().next().unwrap_or("");
            let _ = writeln!(text, "  {} FAILED: {first_line}", entry.scenario);
        }
    }
    let _ = writeln!(text, "index: {}", index_path.display());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{latency_histogram, Series, Target, Unit};
    use serde_json::json;

    fn coord_report() -> Report {
        let mut report = Report::new("coord", json!({ "targets": ["zabflow", "zookeeper"] }));
        for (target, kind, scale) in
            [("zabflow", Target::Zabflow, 1u64), ("zookeeper", Target::Zookeeper, 3)]
        {
            for workload in ["setData/3-node/closed/inflight=128", "setData/3-node/open/rate=1000"]
            {
                let mut histogram = latency_histogram();
                for value_ns in 1..5_000u64 {
                    histogram.record(value_ns * 1_000 * scale).unwrap();
                }
                let name = format!("{workload}@{target}");
                let series = Series::new(name, kind, Unit::Ops, 1e5 / scale as f64)
                    .with_histogram(&histogram)
                    .with_extra("server_cpu_us_per_op", 2.0 * scale as f64);
                report.push_series(series);
            }
        }
        let names = "zabflow/zookeeper";
        report.push_ratio(format!("setData/3-node/closed/inflight=128 throughput {names}"), 3.0);
        report.push_ratio(format!("setData/3-node/open/rate=1000 p99 {names}"), 0.5);
        report.push_ratio(
            format!("getData/3-node/closed/inflight=128 server_cpu_us_per_op {names}"),
            0.1,
        );
        report
    }

    fn entries() -> Vec<SuiteEntry> {
        let mut ring = Report::new("ring", json!({}));
        ring.push_series(Series::new("rtrb-chunked/16B", Target::Zabflow, Unit::Items, 8.5e8));
        ring.push_ratio("rtrb-chunked/crossbeam", 14.2);
        vec![
            SuiteEntry { scenario: "ring".into(), outcome: Ok(ring) },
            SuiteEntry { scenario: "coord".into(), outcome: Ok(coord_report()) },
            SuiteEntry { scenario: "log".into(), outcome: Err("disk full\nmore".into()) },
        ]
    }

    #[test]
    fn goals_get_verdicts_and_other_ratios_are_headlines() {
        let rows = goal_rows(&entries());
        let verdicts: Vec<(&str, Verdict)> =
            rows.iter().map(|row| (row.ratio.as_str(), row.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("setData/3-node/closed/inflight=128 throughput", Verdict::Pass),
                ("setData/3-node/open/rate=1000 p99", Verdict::Fail),
            ]
        );
        let text = render(&entries(), &[], "zabflow bench");
        assert!(text
            .contains("| coord | setData/3-node/open/rate=1000 p99 | 0.50x | ≤ 1/3 | **FAIL** |"));
        assert!(text.contains("| ring | rtrb-chunked/crossbeam | 14.20x |"), "{text}");
        assert!(text.contains(
            "| getData/3-node/closed/inflight=128 server_cpu_us_per_op zabflow/zookeeper"
        ));
        assert!(text.contains("**Failed scenarios: log**") && text.contains("disk full"));
        assert!(text.contains("| rtrb-chunked/16B | Zabflow | 850.0M | items | - | - | - |"));
        assert!(text.contains("server CPU µs/op |") && text.contains(" 6.0 |"), "{text}");
    }

    #[test]
    fn writes_the_index_and_one_plot_per_compared_workload() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &entries(), "zabflow bench --quick").unwrap();
        assert_eq!(path, dir.path().join(INDEX_FILE_NAME));
        let text = std::fs::read_to_string(&path).unwrap();
        for file in [
            "coord-setData-3-node-closed-inflight=128.svg",
            "coord-setData-3-node-open-rate=1000.svg",
        ] {
            let svg = std::fs::read_to_string(dir.path().join(PLOTS_DIR_NAME).join(file)).unwrap();
            assert!(svg.contains("coord: setData/3-node/"), "{file}");
            assert!(text.contains(&format!("({PLOTS_DIR_NAME}/{file})")), "{text}");
        }
        let headlines = headlines(&entries(), &path);
        assert!(
            headlines.contains("setData/3-node/open/rate=1000 p99") && headlines.contains("FAIL")
        );
        assert!(headlines.contains("log FAILED: disk full") && headlines.contains("index: "));
    }

    #[test]
    fn a_smaller_memory_run_gets_a_note_instead_of_a_verdict() {
        let memory = |znodes: usize| {
            let mut report = Report::new("coord-memory", json!({ "znodes": znodes }));
            let name = format!("populate/znodes={znodes}@zabflow");
            report.push_series(Series::new(name, Target::Zabflow, Unit::Ops, 1e5));
            report.push_ratio(format!("populate/znodes={znodes} rss_bytes zabflow/zookeeper"), 0.3);
            vec![SuiteEntry { scenario: "coord-memory".into(), outcome: Ok(report) }]
        };
        let small = render(&memory(250_000), &[], "zabflow bench");
        assert!(goal_rows(&memory(250_000)).is_empty());
        assert!(small.contains("loaded 250000 znodes here, not the 1000000"), "{small}");
        assert!(
            small.contains("| coord-memory | populate/znodes=250000 rss_bytes zabflow/zookeeper")
        );
        let full = render(&memory(1_000_000), &[], "zabflow bench");
        assert_eq!(goal_rows(&memory(1_000_000)).len(), 1);
        assert!(!full.contains("Memory: coord-memory loaded"), "{full}");
    }

    #[test]
    fn single_target_reports_get_no_plots() {
        let mut report = coord_report();
        report.series.retain(|series| series.name.ends_with("@zabflow"));
        assert!(compare_plots(&report).is_empty());
        assert_eq!(compare_plots(&coord_report()).len(), 2);
    }
}
