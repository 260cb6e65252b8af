//! `zabflow report show|compare`: read report directories and put them side by side.
//!
//! `show DIR` prints one report's table. `compare A B [C …]` matches series by name, prints
//! every report's throughput and percentiles with ratios to A, and draws the latencies by
//! percentile of every report × series (or those `--series` selects) into an SVG (default: `compare-<A>-vs-<B>….svg` next
//! to report A's directory).

use crate::error::ToolError;
use crate::print_stdout;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use zabflow_bench::compare::{self, LabelledReport};
use zabflow_bench::plot;
use zabflow_bench::report::Report;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Print a report's series (throughput, percentiles) and ratios.
    Show {
        /// A report directory (holding summary.json).
        #[arg(value_name = "REPORT_DIR")]
        dir: PathBuf,
    },
    /// Compare reports side by side, with ratios to the first, and plot their latencies.
    Compare {
        /// Two or more report directories; the first is the base of every ratio.
        #[arg(required = true, num_args = 2.., value_name = "REPORT_DIR")]
        dirs: Vec<PathBuf>,
        /// Where to write the latency-by-percentile SVG
        /// [default: compare-<A>-vs-<B>….svg beside the first report's directory].
        #[arg(long, value_name = "FILE.svg")]
        out: Option<PathBuf>,
        /// Keep only series whose name contains this text (repeatable: any of them), e.g.
        /// `--series appenders=64` — reports with dozens of series make a crowded plot.
        #[arg(long, value_name = "TEXT")]
        series: Vec<String>,
    },
}

/// Runs a `report` command.
pub fn run(command: ReportCommand) -> Result<(), ToolError> {
    match command {
        ReportCommand::Show { dir } => print_stdout(&compare::show(&Report::load(&dir)?)),
        ReportCommand::Compare { dirs, out, series } => run_compare(&dirs, out, &series),
    }
}

fn run_compare(dirs: &[PathBuf], out: Option<PathBuf>, series: &[String]) -> Result<(), ToolError> {
    let mut reports = dirs
        .iter()
        .map(|dir| Ok(LabelledReport { label: label_of(dir), report: Report::load(dir)? }))
        .collect::<Result<Vec<_>, ToolError>>()?;
    if !series.is_empty() {
        for labelled in &mut reports {
            let report = &mut labelled.report;
            report.series.retain(|s| series.iter().any(|text| s.name.contains(text.as_str())));
            if report.series.is_empty() {
                let message = format!("no series of {} matches {series:?}", labelled.label);
                return Err(ToolError::Bench(zabflow_bench::BenchError::Compare(message)));
            }
        }
    }
    let table = compare::compare(&reports)?.render();
    let out = out.unwrap_or_else(|| default_plot_path(dirs, &reports));
    plot::write_latency_plot(&reports, &out)?;
    print_stdout(&format!("{table}\nplot: {}\n", out.display()))
}

/// A report's label: its directory's name.
fn label_of(dir: &Path) -> String {
    let name = dir.canonicalize().ok().and_then(|dir| dir.file_name().map(|n| n.to_owned()));
    name.map_or_else(|| dir.display().to_string(), |name| name.to_string_lossy().into_owned())
}

/// `compare-<A>-vs-<B>.svg` beside the first report's directory.
fn default_plot_path(dirs: &[PathBuf], reports: &[LabelledReport]) -> PathBuf {
    let labels: Vec<&str> = reports.iter().map(|r| r.label.as_str()).collect();
    let parent = dirs[0].canonicalize().ok().and_then(|dir| dir.parent().map(Path::to_path_buf));
    parent.unwrap_or_default().join(format!("compare-{}.svg", labels.join("-vs-")))
}
