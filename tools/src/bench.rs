//! `zabflow bench [SCENARIO]`: run benchmark scenarios and write their reports.
//!
//! Without a scenario the default suite runs, every scenario in [`suite`] one after the
//! other. Each scenario prints its table and writes a report directory: with `--out DIR`,
//! a single scenario writes into `DIR` itself and the suite into `DIR/<scenario>`; without
//! it, into `reports/<scenario>-<UTC timestamp>` under the current directory. Adding a
//! scenario is one [`Scenario`] variant, one arm in [`run_scenario`] and one line in [`suite`].

use crate::error::ToolError;
use crate::print_stdout;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use zabflow_bench::compare;
use zabflow_bench::log::{self, LogConfig};
use zabflow_bench::report::Report;
use zabflow_bench::ring::{self, RingConfig};
use zabflow_core::log::BackendKind;

#[derive(Debug, Args)]
#[command(subcommand_value_name = "SCENARIO", subcommand_help_heading = "Scenarios")]
pub struct BenchArgs {
    /// The scenario to run; the default suite when omitted.
    #[command(subcommand)]
    scenario: Option<Scenario>,
    /// Report directory (one scenario) or parent of the report directories (the suite)
    /// [default: reports/<scenario>-<UTC timestamp>].
    #[arg(long, global = true, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Short runs, for smoke tests: results are noisier.
    #[arg(long, global = true)]
    quick: bool,
}

/// The benchmark scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Two pinned threads exchanging 16 B and 64 B items: rtrb (single and chunked) vs
    /// crossbeam-channel vs std mpsc.
    Ring(RingArgs),
    /// The segmented log: record and batch sizes, durable and buffered, io_uring and pwrite,
    /// 1 to 64 group-committing appenders, beside the disk's write+fdatasync floor.
    Log(LogArgs),
}

/// The default suite, in the order it runs.
fn suite() -> Vec<Scenario> {
    vec![Scenario::Ring(RingArgs::default()), Scenario::Log(LogArgs::default())]
}

/// Runs one scenario and returns its (unwritten) report.
fn run_scenario(scenario: &Scenario, quick: bool) -> Result<Report, ToolError> {
    let report = match scenario {
        Scenario::Ring(args) => ring::run(&args.config(quick))?,
        Scenario::Log(args) => log::run(&args.config(quick))?,
    };
    Ok(report)
}

/// Knobs of `zabflow bench ring`; unset knobs take the scenario's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct RingArgs {
    /// Measured time per series (8 series), e.g. `2s` or `50ms` [default: 2s, 250ms quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Slots of every channel, in items [default: 16384].
    #[arg(long)]
    capacity: Option<usize>,
    /// Items per producer batch; one per batch carries a latency stamp [default: 256].
    #[arg(long)]
    batch: Option<usize>,
}

impl RingArgs {
    fn config(&self, quick: bool) -> RingConfig {
        let defaults = if quick { RingConfig::quick() } else { RingConfig::default() };
        RingConfig {
            series_duration: self.duration.unwrap_or(defaults.series_duration),
            capacity: self.capacity.unwrap_or(defaults.capacity),
            batch: self.batch.unwrap_or(defaults.batch),
        }
    }
}

/// Knobs of `zabflow bench log`; unset knobs take the scenario's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Measured time per series (2 floors + 12 per backend), e.g. `1s` [default: 1s, 200ms
    /// quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Directory to write the logs in: put it on the disk you want measured [default: the
    /// system temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Backend to measure; `all` measures those this kernel offers.
    #[arg(long, value_enum, default_value_t = BackendArg::All)]
    backend: BackendArg,
}

/// `--backend` of `zabflow bench log`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    #[default]
    All,
    #[value(name = "io_uring")]
    IoUring,
    Pwrite,
}

impl LogArgs {
    fn config(&self, quick: bool) -> LogConfig {
        let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut config = LogConfig::new(dir, quick);
        if let Some(duration) = self.duration {
            config.series_duration = duration;
        }
        config.backends = match self.backend {
            BackendArg::All => None,
            BackendArg::IoUring => Some(vec![BackendKind::IoUring]),
            BackendArg::Pwrite => Some(vec![BackendKind::Pwrite]),
        };
        config
    }
}

/// Runs the chosen scenario, or the whole suite.
pub fn run(args: BenchArgs) -> Result<(), ToolError> {
    match &args.scenario {
        Some(scenario) => {
            run_and_write(scenario, args.quick, args.out.clone())?;
        }
        None => {
            for scenario in suite() {
                let report = run_scenario(&scenario, args.quick)?;
                let dir = args.out.as_ref().map(|out| out.join(&report.scenario));
                write_and_print(report, dir)?;
            }
        }
    }
    Ok(())
}

fn run_and_write(scenario: &Scenario, quick: bool, dir: Option<PathBuf>) -> Result<(), ToolError> {
    let report = run_scenario(scenario, quick)?;
    write_and_print(report, dir)
}

/// Writes the report (into `dir` or its default directory) and prints its table and path.
fn write_and_print(mut report: Report, dir: Option<PathBuf>) -> Result<(), ToolError> {
    let dir = dir.unwrap_or_else(|| report.default_dir());
    let written = report.write(&dir)?;
    print_stdout(&format!("{}\nreport: {}\n", compare::show(&report), written.display()))
}
