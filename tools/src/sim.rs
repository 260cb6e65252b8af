//! `zabflow sim`: the deterministic simulation of Zab ensembles, over many seeds or one.
//!
//! `--seeds N [--start S]` runs seeds S..S+N (even seeds on 3 servers, odd on 5, unless
//! `--nodes` fixes the size) on every core, prints progress, and for each failing seed its
//! invariant, a trace tail and the command that replays it; it exits with status 1 if any
//! seed failed. `--seed S --verbose` replays one seed and prints its whole trace.

use crate::error::ToolError;
use crate::print_stdout;
use clap::Args;
use std::time::{Duration, Instant};
use zabflow_coord::zab::sim::{self, Summary, TraceMode};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 10_000, conflicts_with = "seed")]
    seeds: u64,
    /// The first seed of the run.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Run this one seed only (with `--verbose`: print its trace).
    #[arg(long)]
    seed: Option<u64>,
    /// Servers in the ensemble [default: 3 for even seeds, 5 for odd ones].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["3", "5"]))]
    nodes: Option<String>,
    /// Print every event of the seed (with `--seed`).
    #[arg(long, requires = "seed")]
    verbose: bool,
    /// Threads to run seeds on [default: every core].
    #[arg(long)]
    threads: Option<usize>,
}

/// How often a long run reports progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// Runs `zabflow sim`.
pub fn run(args: SimArgs) -> Result<(), ToolError> {
    let nodes = args.nodes.as_deref().map(|nodes| nodes.parse().expect("3 or 5"));
    match args.seed {
        Some(seed) => run_one(seed, sim::nodes_of_seed(seed, nodes), args.verbose),
        None => run_many(args.start, args.seeds, nodes, args.threads),
    }
}

fn run_one(seed: u64, nodes: usize, verbose: bool) -> Result<(), ToolError> {
    let started = Instant::now();
    let result = if verbose {
        sim::run_traced(seed, nodes, TraceMode::Print)
    } else {
        sim::run_seed(seed, nodes)
    };
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok(outcome) => print_stdout(&format!(
            "seed {seed} ({nodes} nodes) passed in {elapsed:.2} s: {outcome}\n"
        )),
        Err(failure) => fail(&format!("{failure}\n"), "the seed failed"),
    }
}

fn run_many(
    start: u64,
    count: u64,
    nodes: Option<usize>,
    threads: Option<usize>,
) -> Result<(), ToolError> {
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let started = Instant::now();
    let mut reported = Instant::now();
    let mut failures_printed = 0;
    let summary = sim::run_seeds(start, count, nodes, threads, |summary: &Summary| {
        for failure in &summary.failures[failures_printed..] {
            let _ = print_stdout(&format!("{failure}\n"));
        }
        failures_printed = summary.failures.len();
        if reported.elapsed() >= PROGRESS_INTERVAL || summary.seeds == count {
            reported = Instant::now();
            let _ = print_stdout(&format!(
                "sim: {}/{count} seeds, {} failed, {:.1} s\n",
                summary.seeds,
                summary.failures.len(),
                started.elapsed().as_secs_f64()
            ));
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    print_stdout(&format!(
        "sim: seeds {start}..{} in {elapsed:.1} s on {threads} threads: {}\n",
        start + count,
        summary.totals
    ))?;
    if summary.failures.is_empty() {
        return Ok(());
    }
    let mut text =
        format!("{} of {count} seeds failed; replay them with:\n", summary.failures.len());
    for failure in &summary.failures {
        text.push_str(&format!("  {}   # {}\n", failure.replay_command(), failure.invariant));
    }
    fail(&text, "seeds failed")
}

/// Prints `text` and exits with status 1 (the failures are the report; there is no error to
/// add).
fn fail(text: &str, what: &str) -> Result<(), ToolError> {
    print_stdout(text)?;
    eprintln!("zabflow: error: sim: {what}");
    std::process::exit(1);
}
