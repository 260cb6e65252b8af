//! `zabflow`: the command-line entry point of zabflow.
//!
//! One `clap` derive tree; each command group lives in its own module (`bench`, `report`) and
//! owns its arguments and its `run` function, so adding a group (`node`, `cluster`, `cli`,
//! `job`) is one module, one [`Command`] variant and one match arm. Errors print as
//! `zabflow: error: …` and exit with status 1; usage errors are clap's (status 2).

mod bench;
mod cli;
mod cluster;
mod error;
mod job;
mod jobs;
mod log;
mod node;
mod report;
mod sim;
mod worker;

use clap::{Parser, Subcommand};
use error::ToolError;
use std::process::ExitCode;

/// zabflow: a shard-per-core stream engine and a ZooKeeper-compatible coordination service.
#[derive(Debug, Parser)]
#[command(name = "zabflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run benchmark scenarios and write their reports.
    Bench(bench::BenchArgs),
    /// Run one coordination server (ZooKeeper-compatible) in the foreground.
    Node(node::NodeArgs),
    /// Start, inspect and stop a local coordination cluster in the background.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// A zkCli-like shell: interactive, or scripted with `-c "cmd; cmd"`.
    Cli(cli::CliArgs),
    /// Read, tabulate and compare benchmark reports.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Generate a deterministic input log, or print or verify a log.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Run a shipped job under the coordination service, or read its checkpoints.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Run the deterministic simulation of Zab ensembles over many seeds, or replay one.
    Sim(sim::SimArgs),
    /// Run the jobs submitted to a cluster (`job submit`); one worker leads, others stand by.
    Worker(worker::WorkerArgs),
}

/// Prints `text` to stdout; a reader that closed the pipe early (`| head`) is not an error.
pub fn print_stdout(text: &str) -> Result<(), ToolError> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(ToolError::Stdout(error))
        }
        _ => Ok(()),
    }
}

fn run(cli: Cli) -> Result<(), ToolError> {
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Report(command) => report::run(command),
        Command::Node(args) => node::run(args),
        Command::Cluster(command) => cluster::run(command),
        Command::Cli(args) => cli::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Log(command) => log::run(command),
        Command::Job(command) => job::run(command),
        Command::Worker(args) => worker::run(&args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zabflow: error: {error}");
            match error {
                ToolError::CoordinationUnavailable(_) => {
                    ExitCode::from(job::EXIT_COORDINATION_UNAVAILABLE)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
