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
use zabflow_bench::coord::{self, CoordConfig, Mix, MixOp, Pacing, TargetSpec, Workload};
use zabflow_bench::log::{self, LogConfig};
use zabflow_bench::pipeline::{self, PipelineConfig};
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
    /// ZooKeeper-protocol load (sessions, pipelining depth, op mix, open or closed loop)
    /// against a fresh zabflow node, a fresh Apache ZooKeeper, both (`--compare`), or any
    /// running ensemble.
    Coord(CoordArgs),
    /// Stream jobs on the engine: map + filter, and a keyed 1 s tumbling count over 100k
    /// keys through the rtrb mesh, at 1 and 2 shards (throughput only).
    Pipeline(PipelineArgs),
}

/// The default suite, in the order it runs.
fn suite() -> Vec<Scenario> {
    vec![
        Scenario::Ring(RingArgs::default()),
        Scenario::Log(LogArgs::default()),
        Scenario::Coord(CoordArgs { suite: true, ..CoordArgs::default() }),
        Scenario::Pipeline(PipelineArgs::default()),
    ]
}

/// Runs one scenario and returns its (unwritten) report.
fn run_scenario(scenario: &Scenario, quick: bool) -> Result<Report, ToolError> {
    let report = match scenario {
        Scenario::Ring(args) => ring::run(&args.config(quick))?,
        Scenario::Log(args) => log::run(&args.config(quick))?,
        Scenario::Coord(args) => coord::run(&args.config(quick)?)?,
        Scenario::Pipeline(args) => pipeline::run(&args.config(quick))?,
    };
    Ok(report)
}

/// Knobs of `zabflow bench pipeline`; unset knobs take the scenario's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct PipelineArgs {
    /// Events per series, over all shards [default: 200000000, 4000000 quick].
    #[arg(long)]
    events: Option<u64>,
    /// Slots of every exchange ring [default: 4096].
    #[arg(long)]
    ring_slots: Option<usize>,
    /// Records a shard pulls from its source at once [default: 1024].
    #[arg(long)]
    batch: Option<usize>,
}

impl PipelineArgs {
    fn config(&self, quick: bool) -> PipelineConfig {
        let defaults = PipelineConfig::new(quick);
        PipelineConfig {
            events: self.events.unwrap_or(defaults.events),
            ring_slots: self.ring_slots.unwrap_or(defaults.ring_slots),
            batch_records: self.batch.unwrap_or(defaults.batch_records),
            ..defaults
        }
    }
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
    /// Measured time per series (2 floors + 14 per backend), e.g. `1s` [default: 1s, 200ms
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

/// Knobs of `zabflow bench coord`; unset knobs take the scenario's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct CoordArgs {
    /// Servers to measure: a fresh zabflow node, a fresh Apache ZooKeeper 3.8 (Debian package
    /// `zookeeper`), or a running ensemble given by `--hosts`.
    #[arg(long, value_enum, default_value_t = CoordTarget::Zabflow)]
    target: CoordTarget,
    /// Run zabflow and ZooKeeper back to back with identical settings into one report.
    #[arg(long, conflicts_with_all = ["target", "hosts"])]
    compare: bool,
    /// `host:port,…` of the servers of `--target external`.
    #[arg(long, value_name = "H:P,…")]
    hosts: Option<String>,
    /// Servers to start (zabflow runs standalone until replication lands).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Sessions, spread over the servers [default: 16].
    #[arg(long)]
    sessions: Option<usize>,
    /// Requests in flight per session; a list (`1,128,1024`) runs one workload per depth
    /// [default: 128].
    #[arg(long, value_delimiter = ',')]
    depth: Vec<usize>,
    /// Op mix by weight, e.g. `getData=9,setData=1`; ops: getData, setData, create/delete,
    /// exists, getChildren, multi, createSequential [default: the compare workloads].
    #[arg(long)]
    mix: Option<String>,
    /// Open loop at this many requests per second over all sessions (closed loop without).
    #[arg(long, value_name = "PER_S")]
    rate: Option<u64>,
    /// Bytes of every value written [default: 100].
    #[arg(long)]
    value_bytes: Option<usize>,
    /// Znodes pre-created and addressed by key [default: 1000].
    #[arg(long)]
    znodes: Option<usize>,
    /// Load before the first workload, the same for every target [default: 20s; 8s in the
    /// suite; 1s quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    warmup: Option<Duration>,
    /// Measured window per workload [default: 10s; 4s in the suite; 1s quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Parent of the started servers' data dirs: the disk under test [default: the system
    /// temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Seed of the sessions' op and key choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The default suite's run (compare, ZooKeeper installed when root, short windows).
    #[arg(skip)]
    suite: bool,
}

/// `--target` of `zabflow bench coord`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CoordTarget {
    #[default]
    Zabflow,
    Zookeeper,
    External,
}

impl CoordArgs {
    fn config(&self, quick: bool) -> Result<CoordConfig, ToolError> {
        let exe = std::env::current_exe().map_err(|error| {
            zabflow_bench::BenchError::Target(format!(
                "cannot find the zabflow executable: {error}"
            ))
        })?;
        let mut config =
            if self.suite { CoordConfig::suite(exe) } else { CoordConfig::new(self.targets(exe)?) };
        if quick {
            config.warmup = Duration::from_secs(1);
            config.window = Duration::from_secs(1);
        }
        config.warmup = self.warmup.unwrap_or(config.warmup);
        config.window = self.duration.unwrap_or(config.window);
        config.sessions = self.sessions.unwrap_or(config.sessions);
        config.value_bytes = self.value_bytes.unwrap_or(config.value_bytes);
        config.znodes = self.znodes.unwrap_or(config.znodes);
        config.data_parent = self.dir.clone().unwrap_or(config.data_parent);
        config.seed = self.seed;
        if self.mix.is_some() || self.rate.is_some() {
            let mix = match &self.mix {
                Some(text) => Mix::parse(text)?,
                None => Mix::only(MixOp::SetData),
            };
            let pacing = self.rate.map_or(Pacing::Closed, |rate_per_s| Pacing::Open { rate_per_s });
            let depths = if self.depth.is_empty() { vec![128] } else { self.depth.clone() };
            config.workloads = depths
                .into_iter()
                .map(|depth| Workload { mix: mix.clone(), pacing, depth })
                .collect();
        } else if !self.depth.is_empty() {
            config.workloads =
                self.depth.iter().flat_map(|&d| coord::compare_workloads(d)).collect();
        }
        Ok(config)
    }

    fn targets(&self, exe: PathBuf) -> Result<Vec<TargetSpec>, ToolError> {
        let nodes = self.nodes;
        if self.compare {
            let zookeeper = TargetSpec::Zookeeper { nodes, install: false };
            return Ok(vec![TargetSpec::Zabflow { exe, nodes }, zookeeper]);
        }
        let target = match self.target {
            CoordTarget::Zabflow => TargetSpec::Zabflow { exe, nodes },
            CoordTarget::Zookeeper => TargetSpec::Zookeeper { nodes, install: false },
            CoordTarget::External => {
                let hosts = self.hosts.as_deref().ok_or_else(|| {
                    zabflow_bench::BenchError::Param("--target external needs --hosts H:P,…".into())
                })?;
                let hosts = hosts.split(',').map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
                TargetSpec::External { hosts: hosts.collect() }
            }
        };
        Ok(vec![target])
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
    let side_by_side =
        if report.scenario == "coord" { coord::side_by_side(&report) } else { String::new() };
    print_stdout(&format!(
        "{}\n{side_by_side}report: {}\n",
        compare::show(&report),
        written.display()
    ))
}
