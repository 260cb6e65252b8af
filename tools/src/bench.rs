//! `zabflow bench [SCENARIO]`: run benchmark scenarios and write their reports.
//!
//! Without a scenario the default suite runs, every scenario in [`suite`] one after the
//! other, into one run directory (`--out DIR`, or `reports/suite-<UTC timestamp>`): each
//! scenario prints its table and writes its report into `<run>/<scenario>`, and the run ends
//! with `<run>/index.md` and `<run>/plots/*.svg` ([`zabflow_bench::index`]) and the headline
//! ratios against the project's goals. A scenario that fails does not stop the suite: its
//! error goes into the index and the suite exits with an error at the end. A single
//! scenario writes into `--out DIR` itself, or `reports/<scenario>-<UTC timestamp>`.
//! Adding a scenario is one [`Scenario`] variant, one arm in [`run_scenario`] and
//! [`Scenario::name`], and one line in [`suite`].

use crate::error::ToolError;
use crate::print_stdout;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use zabflow_bench::compare;
use zabflow_bench::constants::{COORD_DEPTH_DEFAULT, COORD_RAMP_QUICK, REPORTS_DIR_DEFAULT};
use zabflow_bench::coord::memory::{self, MemoryConfig};
use zabflow_bench::coord::{self, CoordConfig, Mix, MixOp, Pacing, TargetSpec, Workload};
use zabflow_bench::index::{self, SuiteEntry};
use zabflow_bench::log::{self, LogConfig};
use zabflow_bench::pipeline::{self, PipelineConfig};
use zabflow_bench::recovery::{self, RecoveryConfig};
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
    /// against a fresh zabflow node or ensemble (`--nodes`), a fresh Apache ZooKeeper of as
    /// many nodes, both (`--compare`), or any running ensemble.
    Coord(CoordArgs),
    /// Resident memory of a fresh zabflow node and a fresh Apache ZooKeeper after loading
    /// the same znodes (1M of 100 B by default) through the coord load generator, and the
    /// time the load took.
    CoordMemory(CoordMemoryArgs),
    /// Stream jobs on the engine at 1 shard and every core: map + filter, and keyed
    /// tumbling (1 s), sliding (10 s every 1 s) and session (20 ms gap) counts over 100k
    /// keys, each keyed job over the rtrb mesh and over crossbeam-channel; flat-out
    /// throughput, then a paced run for latency (window result or record at the sink minus
    /// its due time), peak RSS and shard metrics; each keyed job again with checkpoints
    /// (every 1 s: throughput against the plain run, alignment, snapshot time, state bytes).
    Pipeline(PipelineArgs),
    /// SIGKILL of a running checkpointed job (`job run --job running-count`, keyed state of
    /// 10k, 1M and 10M keys) to the first output of its restarted process, taken apart
    /// (leadership, checkpoint read, state restore, first record), with the checkpoints'
    /// duration, size and alignment.
    Recovery(RecoveryArgs),
}

/// The default suite, in the order it runs.
fn suite() -> Vec<Scenario> {
    vec![
        Scenario::Ring(RingArgs::default()),
        Scenario::Log(LogArgs::default()),
        Scenario::Coord(CoordArgs { suite: true, ..CoordArgs::default() }),
        Scenario::CoordMemory(CoordMemoryArgs { suite: true, ..CoordMemoryArgs::default() }),
        Scenario::Pipeline(PipelineArgs { suite: true, ..PipelineArgs::default() }),
    ]
}

impl Scenario {
    /// The scenario's name, as its report and report directory are called.
    fn name(&self) -> &'static str {
        match self {
            Scenario::Ring(_) => "ring",
            Scenario::Log(_) => "log",
            Scenario::Coord(_) => "coord",
            Scenario::CoordMemory(_) => "coord-memory",
            Scenario::Pipeline(_) => "pipeline",
            Scenario::Recovery(_) => "recovery",
        }
    }
}

/// Runs one scenario and returns its (unwritten) report.
fn run_scenario(scenario: &Scenario, quick: bool) -> Result<Report, ToolError> {
    let report = match scenario {
        Scenario::Ring(args) => ring::run(&args.config(quick))?,
        Scenario::Log(args) => log::run(&args.config(quick))?,
        Scenario::Coord(args) => coord::run(&args.config(quick)?)?,
        Scenario::CoordMemory(args) => memory::run(&args.config(quick)?)?,
        Scenario::Pipeline(args) => pipeline::run(&args.config(quick))?,
        Scenario::Recovery(args) => recovery::run(&args.config(quick)?)?,
    };
    Ok(report)
}

/// Knobs of `zabflow bench pipeline`; unset knobs take the scenario's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct PipelineArgs {
    /// Events per series, over all shards (the session job runs a tenth of them)
    /// [default: 200000000; 20000000 in the suite; 4000000 quick].
    #[arg(long)]
    events: Option<u64>,
    /// Length of each paced latency run, e.g. `3s`; `0s` skips them [default: 3s; 1s in the
    /// suite; 600ms quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    latency_run: Option<Duration>,
    /// Slots of every exchange ring [default: 4096].
    #[arg(long)]
    ring_slots: Option<usize>,
    /// Records a shard pulls from its source at once [default: 1024].
    #[arg(long)]
    batch: Option<usize>,
    /// Jobs to run, comma-separated: stateless, tumbling-count, sliding-count,
    /// session-count [default: all four].
    #[arg(long, value_delimiter = ',', value_parser = parse_pipeline_job)]
    jobs: Vec<pipeline::PipelineJob>,
    /// Shard counts to run each job at, comma-separated [default: 1 and every core].
    #[arg(long, value_delimiter = ',')]
    shards: Vec<usize>,
    /// Skip the crossbeam-channel baseline runs of the keyed jobs.
    #[arg(long)]
    no_baseline: bool,
    /// Checkpoint interval of each keyed job's checkpointed run, e.g. `1s`; `0s` skips them
    /// [default: 1s; 250ms in the suite and quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// Show each run's per-shard metrics live on stderr: a table redrawn every 500 ms on a
    /// terminal, one plain line a second otherwise; final totals when the run ends.
    #[arg(long)]
    live: bool,
    /// The default suite's run (fewer events, shorter latency runs).
    #[arg(skip)]
    suite: bool,
}

fn parse_pipeline_job(name: &str) -> Result<pipeline::PipelineJob, String> {
    pipeline::PipelineJob::from_name(name).map_err(|error| error.to_string())
}

impl PipelineArgs {
    fn config(&self, quick: bool) -> PipelineConfig {
        let defaults =
            if self.suite { PipelineConfig::suite(quick) } else { PipelineConfig::new(quick) };
        PipelineConfig {
            events: self.events.unwrap_or(defaults.events),
            ring_slots: self.ring_slots.unwrap_or(defaults.ring_slots),
            batch_records: self.batch.unwrap_or(defaults.batch_records),
            latency_run: self.latency_run.unwrap_or(defaults.latency_run),
            jobs: if self.jobs.is_empty() { defaults.jobs } else { self.jobs.clone() },
            shard_counts: if self.shards.is_empty() {
                defaults.shard_counts
            } else {
                self.shards.clone()
            },
            baseline: !self.no_baseline,
            checkpoint_interval: match self.checkpoint_interval {
                Some(interval) if interval.is_zero() => None,
                Some(interval) => Some(interval),
                None => defaults.checkpoint_interval,
            },
            live: self.live,
        }
    }
}

/// Knobs of `zabflow bench recovery`; unset knobs take the scenario's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct RecoveryArgs {
    /// Key counts of the job's state, one series each [default: 10000,1000000,10000000;
    /// 10000 quick].
    #[arg(long, value_delimiter = ',')]
    keys: Vec<u64>,
    /// Kills and restarts per key count [default: 5; 1 quick].
    #[arg(long)]
    repetitions: Option<usize>,
    /// Shards of the job [default: the cores, at most 4].
    #[arg(long)]
    shards: Option<usize>,
    /// Time between checkpoints [default: 1s].
    #[arg(long, value_parser = humantime::parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// Session timeout of the job processes: how long a killed job's leadership lingers
    /// [default: 1s].
    #[arg(long, value_parser = humantime::parse_duration)]
    session_timeout: Option<Duration>,
    /// tickTime of the coordination node, in ms (sessions expire within a tick after their
    /// timeout) [default: 100].
    #[arg(long)]
    tick_time: Option<u32>,
    /// Parent of the run's input, output and state: the disk under test [default: the
    /// system temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl RecoveryArgs {
    fn config(&self, quick: bool) -> Result<RecoveryConfig, ToolError> {
        let mut config = RecoveryConfig::new(zabflow_exe()?, quick);
        if !self.keys.is_empty() {
            config.keys = self.keys.clone();
        }
        config.repetitions = self.repetitions.unwrap_or(config.repetitions);
        config.shards = self.shards.unwrap_or(config.shards);
        config.checkpoint_interval = self.checkpoint_interval.unwrap_or(config.checkpoint_interval);
        config.session_timeout = self.session_timeout.unwrap_or(config.session_timeout);
        config.tick_time_ms = self.tick_time.unwrap_or(config.tick_time_ms);
        config.dir = self.dir.clone().unwrap_or(config.dir);
        Ok(config)
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
    /// Servers to measure: a fresh zabflow node or ensemble, a fresh Apache ZooKeeper 3.8
    /// (Debian package `zookeeper`) of as many nodes, or a running ensemble given by `--hosts`.
    #[arg(long, value_enum, default_value_t = CoordTarget::Zabflow)]
    target: CoordTarget,
    /// Run zabflow and ZooKeeper back to back with identical settings into one report.
    #[arg(long, conflicts_with_all = ["target", "hosts"])]
    compare: bool,
    /// `host:port,…` of the servers of `--target external`.
    #[arg(long, value_name = "H:P,…")]
    hosts: Option<String>,
    /// Servers to start: 1 (standalone), or an ensemble of 3 or 5 on loopback (free client,
    /// quorum and election ports; sessions are spread over every server) [default: 1; 3 in
    /// the suite].
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Sessions, spread over the servers [default: 16].
    #[arg(long)]
    sessions: Option<usize>,
    /// Requests in flight per session (series are named by the total, sessions x depth); a
    /// list (`1,8,64`) runs every closed-loop workload once per depth, into one report (open
    /// loop takes one depth: its in-flight cap) [default: the anchors: setData at 64
    /// and 8 per session (1,024 and 128 in flight over 16 sessions) and at 1, getData at 8,
    /// open-loop setData capped at 64; 8 with --mix or --rate].
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
    /// The default suite's run (3-node compare, ZooKeeper installed when root, short windows).
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
        let exe = zabflow_exe()?;
        let mut config =
            if self.suite { CoordConfig::suite(exe) } else { CoordConfig::new(self.targets(exe)?) };
        if quick {
            config.warmup = Duration::from_secs(1);
            config.ramp = COORD_RAMP_QUICK;
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
            let depths =
                if self.depth.is_empty() { vec![COORD_DEPTH_DEFAULT] } else { self.depth.clone() };
            config.workloads = depths
                .into_iter()
                .map(|depth| Workload { mix: mix.clone(), pacing, depth })
                .collect();
        } else if !self.depth.is_empty() {
            config.workloads = coord::compare_workloads(&self.depth);
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

/// Knobs of `zabflow bench coord-memory`; unset knobs take the scenario's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct CoordMemoryArgs {
    /// Measure only this server [default: zabflow and ZooKeeper side by side].
    #[arg(long, value_enum)]
    target: Option<MemoryTarget>,
    /// Znodes to load [default: 1000000; 250000 in the suite; 20000 quick].
    #[arg(long)]
    znodes: Option<usize>,
    /// Bytes of every znode's value [default: 100].
    #[arg(long)]
    value_bytes: Option<usize>,
    /// Pause between the load and the memory sample [default: 5s; 1s quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    settle: Option<Duration>,
    /// Parent of the started servers' data dirs [default: the system temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The default suite's run (ZooKeeper installed when root, fewer znodes).
    #[arg(skip)]
    suite: bool,
}

/// `--target` of `zabflow bench coord-memory`: a server the scenario starts itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MemoryTarget {
    Zabflow,
    Zookeeper,
}

impl CoordMemoryArgs {
    fn config(&self, quick: bool) -> Result<MemoryConfig, ToolError> {
        let exe = zabflow_exe()?;
        let mut config = if self.suite {
            MemoryConfig::suite(exe)
        } else {
            let targets = match self.target {
                None => vec![
                    TargetSpec::Zabflow { exe, nodes: 1 },
                    TargetSpec::Zookeeper { nodes: 1, install: false },
                ],
                Some(MemoryTarget::Zabflow) => vec![TargetSpec::Zabflow { exe, nodes: 1 }],
                Some(MemoryTarget::Zookeeper) => {
                    vec![TargetSpec::Zookeeper { nodes: 1, install: false }]
                }
            };
            MemoryConfig::new(targets)
        };
        if quick {
            config.znodes = QUICK_MEMORY_ZNODES;
            config.settle = Duration::from_secs(1);
        }
        config.znodes = self.znodes.unwrap_or(config.znodes);
        config.value_bytes = self.value_bytes.unwrap_or(config.value_bytes);
        config.settle = self.settle.unwrap_or(config.settle);
        config.data_parent = self.dir.clone().unwrap_or(config.data_parent);
        Ok(config)
    }
}

/// Znodes `coord-memory --quick` loads.
const QUICK_MEMORY_ZNODES: usize = 20_000;

/// This executable, which the coord scenarios start as `zabflow node`.
fn zabflow_exe() -> Result<PathBuf, ToolError> {
    let exe = std::env::current_exe().map_err(|error| {
        zabflow_bench::BenchError::Target(format!("cannot find the zabflow executable: {error}"))
    })?;
    Ok(exe)
}

/// Runs the chosen scenario, or the whole suite.
pub fn run(args: BenchArgs) -> Result<(), ToolError> {
    match &args.scenario {
        Some(scenario) => {
            let mut report = run_scenario(scenario, args.quick)?;
            write_and_print(&mut report, args.out.clone())?;
            Ok(())
        }
        None => run_suite(args.quick, args.out.clone()),
    }
}

/// Runs every scenario of [`suite`] into one run directory, then writes its index and
/// prints the headline ratios; fails at the end if any scenario failed.
fn run_suite(quick: bool, out: Option<PathBuf>) -> Result<(), ToolError> {
    let run_dir = out.unwrap_or_else(default_suite_dir);
    let mut entries = Vec::new();
    for scenario in suite() {
        let name = scenario.name();
        let outcome = run_scenario(&scenario, quick).and_then(|mut report| {
            write_and_print(&mut report, Some(run_dir.join(name)))?;
            Ok(report)
        });
        if let Err(error) = &outcome {
            eprintln!("zabflow bench: {name} failed: {error}");
        }
        let outcome = outcome.map_err(|error| error.to_string());
        entries.push(SuiteEntry { scenario: name.to_owned(), outcome });
    }
    let command = if quick { "zabflow bench --quick" } else { "zabflow bench" };
    let index_path = index::write(&run_dir, &entries, command)?;
    print_stdout(&index::headlines(&entries, &index_path))?;
    let failed: Vec<&str> =
        entries.iter().filter(|e| e.outcome.is_err()).map(|e| e.scenario.as_str()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let message =
        format!("the suite's {} failed (see {})", failed.join(", "), index_path.display());
    Err(ToolError::Bench(zabflow_bench::BenchError::Target(message)))
}

/// `reports/suite-<UTC start, e.g. 20250102T030405Z>` under the current directory.
fn default_suite_dir() -> PathBuf {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    PathBuf::from(REPORTS_DIR_DEFAULT).join(format!("suite-{stamp}"))
}

/// Writes the report (into `dir` or its default directory) and prints its table and path.
fn write_and_print(report: &mut Report, dir: Option<PathBuf>) -> Result<(), ToolError> {
    let dir = dir.unwrap_or_else(|| report.default_dir());
    let written = report.write(&dir)?;
    let table = match report.scenario.as_str() {
        "coord" => format!("{}\n{}", compare::show(report), coord::side_by_side(report)),
        "coord-memory" => memory::table(report),
        "recovery" => recovery::table(report),
        _ => compare::show(report),
    };
    print_stdout(&format!("{table}\nreport: {}\n", written.display()))
}
