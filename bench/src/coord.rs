//! The `coord` scenario: one ZooKeeper-protocol load generator against zabflow, against a
//! real Apache ZooKeeper, or against any running ensemble — and the two side by side.
//!
//! A run starts each target fresh ([`target`]: a standalone server or an ensemble of
//! `--nodes`), pre-creates the keys, opens the sessions (spread round-robin over its
//! servers; each generator thread owns its sessions' sockets, [`driver`]), warms the target
//! up (the same closed-loop `getData`/`setData` load for every target: a cold JVM is several
//! times slower for its first ~20 s), then runs each [`Workload`]: a ramp ([`COORD_RAMP`] by
//! default) and a measured window. Every op of every workload becomes a series
//! `<op>/<N>-node/<loop>` with the target, its knobs in `params`, and extras: errors by code,
//! the servers' CPU time per reply (`server_cpu_us_per_op`, summed over every server process
//! of the target, from `/proc/<pid>/stat`) and the generator's, and a latency timeline (the
//! worst latency of each 100 ms of the window, `worst_latency_us_per_100ms`: a stall shows
//! as a run of high steps, a steady tail as noise spread over the whole window). The loop part names what the
//! servers see: `closed/inflight=128` is closed loop with 128 requests in flight over all
//! sessions (sessions × `--depth`, as the issue's anchors count them), `open/rate=1000` is
//! open loop at 1,000 requests per second.
//!
//! With two targets (`--compare`) the series names end in `@<target>` so that both fit one
//! report, and the report gets ratios `zabflow/zookeeper` per workload: throughput, p99 (the
//! figure of merit in open loop) and server CPU per op. Single-target runs keep the plain
//! names, so `zabflow report compare` of a zabflow run and a ZooKeeper run lines them up.

pub mod cleanup;
pub mod cpu;
pub mod driver;
pub mod load;
pub mod memory;
pub mod rss;
pub mod session;
pub mod target;
pub mod workload;

use crate::constants::{
    COORD_DEPTH_DEEP, COORD_DEPTH_DEFAULT, COORD_DEPTH_MAX, COORD_NODES_SUITE,
    COORD_OPEN_RATE_DEFAULT, COORD_OPEN_RATE_MAX, COORD_POPULATE_SESSIONS_MAX, COORD_RAMP,
    COORD_SESSIONS_DEFAULT, COORD_SESSIONS_MAX, COORD_VALUE_BYTES_DEFAULT, COORD_VALUE_BYTES_MAX,
    COORD_WARMUP_DEFAULT, COORD_WARMUP_DEPTH, COORD_WARMUP_SUITE, COORD_WINDOW_DEFAULT,
    COORD_WINDOW_MAX, COORD_WINDOW_SUITE, COORD_ZNODES_DEFAULT, COORD_ZNODES_MAX,
};
use crate::error::{BenchError, Result};
use crate::progress::Progress;
use crate::report::{Report, Series, Unit};
use load::{Keyspace, WorkloadResult, ROOT_PATH_DEFAULT};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
pub use target::TargetSpec;
pub use workload::{Mix, MixOp, Op, Pacing, Workload};

/// Every knob of a coord run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordConfig {
    /// One target, or two to compare (the first is the numerator of every ratio).
    pub targets: Vec<TargetSpec>,
    pub sessions: usize,
    /// Run in order against each target.
    pub workloads: Vec<Workload>,
    pub value_bytes: usize,
    /// Keys pre-created before the warm-up.
    pub znodes: usize,
    /// Load before the first workload, the same for every target.
    pub warmup: Duration,
    /// Load before each workload's measured window ([`COORD_RAMP`]; shorter in quick runs).
    pub ramp: Duration,
    /// Measured window of each workload (after the ramp).
    pub window: Duration,
    /// Where started servers keep their data (the disk under test), for every target alike.
    pub data_parent: PathBuf,
    /// Seeds the sessions' op and key choices.
    pub seed: u64,
}

impl CoordConfig {
    /// The defaults against `targets`: the issue's anchor workloads with one in flight per
    /// session added ([`anchor_workloads`]), 16 sessions, 100 B values, 1,000 keys, 20 s of
    /// warm-up and 10 s windows.
    pub fn new(targets: Vec<TargetSpec>) -> CoordConfig {
        let mut workloads = anchor_workloads();
        let one_in_flight =
            Workload { mix: Mix::only(MixOp::SetData), pacing: Pacing::Closed, depth: 1 };
        workloads.insert(2, one_in_flight);
        CoordConfig {
            targets,
            sessions: COORD_SESSIONS_DEFAULT,
            workloads,
            value_bytes: COORD_VALUE_BYTES_DEFAULT,
            znodes: COORD_ZNODES_DEFAULT,
            warmup: COORD_WARMUP_DEFAULT,
            ramp: COORD_RAMP,
            window: COORD_WINDOW_DEFAULT,
            data_parent: std::env::temp_dir(),
            seed: 1,
        }
    }

    /// The default suite's run: a zabflow ensemble of [`COORD_NODES_SUITE`] against a
    /// ZooKeeper ensemble of as many (installed when this is root), the workloads of
    /// [`CoordConfig::new`] (every anchor row of the issue, one in flight per session
    /// included) with shorter warm-up and windows; `exe` is the `zabflow` executable.
    pub fn suite(exe: PathBuf) -> CoordConfig {
        let nodes = COORD_NODES_SUITE;
        let targets = vec![
            TargetSpec::Zabflow { exe, nodes },
            TargetSpec::Zookeeper { nodes, install: true },
        ];
        CoordConfig { warmup: COORD_WARMUP_SUITE, window: COORD_WINDOW_SUITE, ..Self::new(targets) }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(BenchError::Param(what));
        if self.targets.is_empty() || self.targets.len() > 2 {
            return bad(format!("{} targets: give one, or two to compare", self.targets.len()));
        }
        for spec in &self.targets {
            spec.validate()?;
        }
        if self.targets.iter().any(|spec| spec.nodes() != self.targets[0].nodes()) {
            return bad("compared targets must have as many servers".to_owned());
        }
        if !(1..=COORD_SESSIONS_MAX).contains(&self.sessions) {
            return bad(format!("--sessions {}: 1..={COORD_SESSIONS_MAX}", self.sessions));
        }
        if self.value_bytes > COORD_VALUE_BYTES_MAX || self.znodes == 0 {
            return bad(format!("--value-bytes ≤ {COORD_VALUE_BYTES_MAX} and --znodes ≥ 1"));
        }
        if self.znodes > COORD_ZNODES_MAX || self.workloads.is_empty() {
            return bad(format!("--znodes ≤ {COORD_ZNODES_MAX}, and at least one workload"));
        }
        let too_long = self.warmup.max(self.ramp) > COORD_WINDOW_MAX;
        if self.window.is_zero() || self.window > COORD_WINDOW_MAX || too_long {
            return bad(format!("--duration in (0, {COORD_WINDOW_MAX:?}], --warmup ≤ that"));
        }
        for (index, workload) in self.workloads.iter().enumerate() {
            let same =
                |other: &Workload| other.mix == workload.mix && other.label() == workload.label();
            if self.workloads[..index].iter().any(same) {
                return bad(format!(
                    "two workloads would both be {} {}: an open-loop run takes one --depth \
                     (its in-flight cap)",
                    workload.mix,
                    workload.label()
                ));
            }
            if !(1..=COORD_DEPTH_MAX).contains(&workload.depth) {
                return bad(format!("--depth {}: 1..={COORD_DEPTH_MAX}", workload.depth));
            }
            if let Pacing::Open { rate_per_s } = workload.pacing {
                if !(1..=COORD_OPEN_RATE_MAX).contains(&rate_per_s) {
                    return bad(format!("--rate {rate_per_s}: 1..={COORD_OPEN_RATE_MAX}"));
                }
            }
        }
        Ok(())
    }

    /// The distinct depths of the closed-loop workloads, in order of first appearance.
    fn depths(&self) -> Vec<usize> {
        let mut depths: Vec<usize> = Vec::new();
        let closed = self.workloads.iter().filter(|w| w.pacing == Pacing::Closed);
        for depth in closed.map(|w| w.depth) {
            if !depths.contains(&depth) {
                depths.push(depth);
            }
        }
        depths
    }

    fn params(&self) -> serde_json::Value {
        let targets: Vec<&str> = self.targets.iter().map(TargetSpec::name).collect();
        let workloads: Vec<String> =
            self.workloads.iter().map(|w| format!("{} {}", w.mix, w.label())).collect();
        json!({
            "targets": targets,
            "nodes": self.nodes(),
            "sessions": self.sessions,
            "workloads": workloads,
            "value_bytes": self.value_bytes,
            "znodes": self.znodes,
            "warmup_s": self.warmup.as_secs_f64(),
            "warmup_mix": warmup_workload(self.warmup_depth()).mix.to_string(),
            "warmup_in_flight": self.sessions * self.warmup_depth(),
            "ramp_s": self.ramp.as_secs_f64(),
            "window_s": self.window.as_secs_f64(),
            "force_sync": true,
            "seed": self.seed,
            "depths": self.depths(),
            "in_flight": self.depths().iter().map(|depth| depth * self.sessions).collect::<Vec<_>>(),
        })
    }

    /// Servers of each target (compared targets have as many).
    pub fn nodes(&self) -> usize {
        self.targets.first().map_or(0, TargetSpec::nodes)
    }

    /// Requests in flight per session during the warm-up: [`COORD_WARMUP_DEPTH`], at most
    /// the deepest workload.
    fn warmup_depth(&self) -> usize {
        let depth_max = self.workloads.iter().map(|w| w.depth).max().unwrap_or(1);
        COORD_WARMUP_DEPTH.min(depth_max)
    }

    /// `<N>-node/closed/inflight=<sessions × depth>` or `<N>-node/open/rate=<per s>`: the
    /// part of a series or ratio name after the op.
    pub fn workload_label(&self, workload: &Workload) -> String {
        let nodes = self.nodes();
        match workload.pacing {
            Pacing::Closed => {
                format!("{nodes}-node/closed/inflight={}", self.sessions * workload.depth)
            }
            Pacing::Open { rate_per_s } => format!("{nodes}-node/open/rate={rate_per_s}"),
        }
    }
}

/// The issue's anchor rows, over [`COORD_SESSIONS_DEFAULT`] sessions: `setData` closed loop
/// at [`COORD_DEPTH_DEEP`] and [`COORD_DEPTH_DEFAULT`] per session (1,024 and 128 in
/// flight), `getData` at [`COORD_DEPTH_DEFAULT`], and `setData` in open loop at
/// [`COORD_OPEN_RATE_DEFAULT`] per second (capped at [`COORD_DEPTH_DEEP`] per session).
pub fn anchor_workloads() -> Vec<Workload> {
    let closed = |op, depth| Workload { mix: Mix::only(op), pacing: Pacing::Closed, depth };
    let open_rate = Pacing::Open { rate_per_s: COORD_OPEN_RATE_DEFAULT };
    vec![
        closed(MixOp::SetData, COORD_DEPTH_DEEP),
        closed(MixOp::SetData, COORD_DEPTH_DEFAULT),
        closed(MixOp::GetData, COORD_DEPTH_DEFAULT),
        Workload { mix: Mix::only(MixOp::SetData), pacing: open_rate, depth: COORD_DEPTH_DEEP },
    ]
}

/// The comparison's workloads: write-heavy (`setData`) closed loop at each of `depths`, then
/// read-heavy (`getData`) at each, then `setData` in open loop at [`COORD_OPEN_RATE_DEFAULT`]
/// per second once, capped at the deepest of `depths` in flight per session (latency counts
/// from the scheduled send, so the cap only matters if the server stalls).
///
/// # Panics
/// If `depths` is empty.
pub fn compare_workloads(depths: &[usize]) -> Vec<Workload> {
    let depth_max = *depths.iter().max().expect("at least one depth");
    let closed = |op| {
        depths.iter().map(move |&depth| Workload {
            mix: Mix::only(op),
            pacing: Pacing::Closed,
            depth,
        })
    };
    let open_rate = Pacing::Open { rate_per_s: COORD_OPEN_RATE_DEFAULT };
    let open = Workload { mix: Mix::only(MixOp::SetData), pacing: open_rate, depth: depth_max };
    closed(MixOp::SetData).chain(closed(MixOp::GetData)).chain([open]).collect()
}

/// The warm-up load: half `getData`, half `setData`, closed loop.
fn warmup_workload(depth: usize) -> Workload {
    let mix = Mix::parse("getData=1,setData=1").expect("constant mix parses");
    Workload { mix, pacing: Pacing::Closed, depth }
}

/// Runs the scenario and returns its report (unwritten).
///
/// # Errors
/// A bad knob, a target that cannot be started (ZooKeeper not installed: with the command
/// that installs it), sessions that cannot connect or end during the run.
pub fn run(config: &CoordConfig) -> Result<Report> {
    config.validate()?;
    let mut report = Report::new("coord", config.params());
    let steps = config.targets.len() * (config.workloads.len() + 2);
    let progress = Progress::new("coord", steps as u64);
    let external = config.targets.iter().any(|t| matches!(t, TargetSpec::External { .. }));
    let root = if external { cleanup::unique_root() } else { ROOT_PATH_DEFAULT.to_owned() };
    let keyspace = Keyspace::under(&root, config.znodes, config.value_bytes, config.seed);
    let suffix_targets = config.targets.len() > 1;
    let mut measured: Vec<Vec<WorkloadResult>> = Vec::new();
    for spec in &config.targets {
        let results = run_target(config, spec, &keyspace, &progress)?;
        for (workload, result) in config.workloads.iter().zip(&results) {
            push_series(&mut report, config, spec, workload, result, suffix_targets);
        }
        measured.push(results);
    }
    progress.finish();
    if let [first, second] = measured.as_slice() {
        push_ratios(&mut report, config, first, second);
    }
    Ok(report)
}

/// Starts `spec`, loads and warms it, runs every workload, and stops it; on an external
/// target, removes the run's nodes afterwards (also when the run failed).
fn run_target(
    config: &CoordConfig,
    spec: &TargetSpec,
    keyspace: &Keyspace,
    progress: &Progress,
) -> Result<Vec<WorkloadResult>> {
    progress.start_step(&format!("{}: start and populate", spec.name()));
    let running = spec.start(&config.data_parent)?;
    let measured = measure_target(config, spec, &running, keyspace, progress);
    if let TargetSpec::External { .. } = spec {
        let removed = cleanup::remove_keyspace(&running.hosts, keyspace);
        let results = measured?;
        removed?;
        return Ok(results);
    }
    drop(running);
    measured
}

/// Connects, populates, warms up and runs every workload against `running`.
fn measure_target(
    config: &CoordConfig,
    spec: &TargetSpec,
    running: &target::RunningTarget,
    keyspace: &Keyspace,
    progress: &Progress,
) -> Result<Vec<WorkloadResult>> {
    let pids = running.pids();
    let populating = config.sessions.min(COORD_POPULATE_SESSIONS_MAX);
    let clients = load::connect(&running.hosts, populating, 1)?;
    load::populate(&clients, keyspace)?;
    drop(clients);
    let mut sessions = session::connect_all(&running.hosts, config.sessions)?;
    progress.finish_step();
    let results = run_workloads(config, spec, &mut sessions, keyspace, &pids, progress);
    session::close_all(&mut sessions);
    results
}

/// The warm-up, then every workload, over `sessions`.
fn run_workloads(
    config: &CoordConfig,
    spec: &TargetSpec,
    sessions: &mut [session::Session],
    keyspace: &Keyspace,
    pids: &[u32],
    progress: &Progress,
) -> Result<Vec<WorkloadResult>> {
    progress.start_step(&format!("{}: warm-up {:?}", spec.name(), config.warmup));
    let warmup = warmup_workload(config.warmup_depth());
    load::run(sessions, keyspace, &warmup, (config.warmup, Duration::ZERO), pids)?;
    progress.finish_step();
    let mut results = Vec::new();
    for workload in &config.workloads {
        let label = config.workload_label(workload);
        progress.start_step(&format!("{}: {} {label}", spec.name(), workload.mix));
        results.push(load::run(sessions, keyspace, workload, (config.ramp, config.window), pids)?);
        progress.finish_step();
    }
    Ok(results)
}

fn series_name(
    op: Op,
    config: &CoordConfig,
    workload: &Workload,
    spec: &TargetSpec,
    suffix_target: bool,
) -> String {
    let name = format!("{}/{}", op.name(), config.workload_label(workload));
    if suffix_target {
        format!("{name}@{}", spec.name())
    } else {
        name
    }
}

fn push_series(
    report: &mut Report,
    config: &CoordConfig,
    spec: &TargetSpec,
    workload: &Workload,
    result: &WorkloadResult,
    suffix_target: bool,
) {
    let window_s = result.window.as_secs_f64();
    let replies = result.replies().max(1) as f64;
    let per_op = |cpu_us: Option<u64>| cpu_us.map(|us| us as f64 / replies);
    for op in Op::ALL {
        let op_result = &result.ops[op.index()];
        if op_result.replies() == 0 {
            continue;
        }
        let (loop_name, rate) = match workload.pacing {
            Pacing::Closed => ("closed", None),
            Pacing::Open { rate_per_s } => ("open", Some(rate_per_s)),
        };
        let params = json!({
            "target": spec.name(), "nodes": spec.nodes(), "sessions": config.sessions,
            "depth": workload.depth, "in_flight_max": config.sessions * workload.depth,
            "value_bytes": config.value_bytes, "loop": loop_name,
            "open_rate_per_s": rate, "mix": workload.mix.to_string(),
        });
        let name = series_name(op, config, workload, spec, suffix_target);
        let throughput = op_result.count as f64 / window_s;
        let mut series = Series::new(name, spec.target(), Unit::Ops, throughput)
            .with_params(params)
            .with_extra("errors", json!(op_result.errors))
            .with_extra("errors_total", op_result.replies() - op_result.count)
            .with_extra("workload_replies_per_s", replies / window_s)
            .with_extra("server_cpu_us_per_op", json!(per_op(result.server_cpu_us)))
            .with_extra(
                "server_cpu_cores",
                json!(result.server_cpu_us.map(|us| us as f64 / 1e6 / window_s)),
            )
            .with_extra("generator_cpu_us_per_op", json!(per_op(result.generator_cpu_us)))
            .with_extra("sessions_lost", result.sessions_lost)
            .with_extra("worst_latency_us_per_100ms", json!(op_result.worst_us));
        if op_result.count > 0 {
            series = series.with_histogram(&op_result.histogram);
        }
        report.push_series(series);
    }
}

/// `<op>/<workload> throughput|p99|server_cpu_us_per_op <first>/<second>` per workload.
fn push_ratios(
    report: &mut Report,
    config: &CoordConfig,
    first: &[WorkloadResult],
    second: &[WorkloadResult],
) {
    let names = format!("{}/{}", config.targets[0].name(), config.targets[1].name());
    for ((workload, a), b) in config.workloads.iter().zip(first).zip(second) {
        let Some(op) = workload_op(workload, a) else { continue };
        let label = format!("{}/{}", op.name(), config.workload_label(workload));
        let (a_op, b_op) = (&a.ops[op.index()], &b.ops[op.index()]);
        let ratio = |x: f64, y: f64| (y > 0.0).then(|| x / y);
        if let Pacing::Open { .. } = workload.pacing {
            let p99 = |r: &load::OpResult| r.histogram.value_at_quantile(0.99) as f64;
            if let Some(value) = ratio(p99(a_op), p99(b_op)) {
                report.push_ratio(format!("{label} p99 {names}"), value);
            }
        } else if let Some(value) = ratio(a_op.count as f64, b_op.count as f64) {
            report.push_ratio(format!("{label} throughput {names}"), value);
        }
        let cpu =
            |r: &WorkloadResult| r.server_cpu_us.map(|us| us as f64 / r.replies().max(1) as f64);
        if let (Some(x), Some(y)) = (cpu(a), cpu(b)) {
            if let Some(value) = ratio(x, y) {
                report.push_ratio(format!("{label} server_cpu_us_per_op {names}"), value);
            }
        }
    }
}

/// The op a workload's ratios compare: its only op, or for a mix the one most replied to.
fn workload_op(workload: &Workload, result: &WorkloadResult) -> Option<Op> {
    let op = match workload.mix.single() {
        Some(MixOp::CreateDelete) | None => {
            Op::ALL.into_iter().max_by_key(|op| result.ops[op.index()].replies())?
        }
        Some(mix_op) => Op::ALL.into_iter().find(|op| op.name() == mix_op.name())?,
    };
    Some(op)
}

/// The compare table of a two-target report: a line on the setup, then per workload both
/// targets' throughput, p50/p99, server CPU per op (summed over the servers), and the
/// throughput ratio; then every ratio of the report.
pub fn side_by_side(report: &Report) -> String {
    let targets: Vec<String> = report.params["targets"]
        .as_array()
        .map(|list| list.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let [first, second] = targets.as_slice() else { return String::new() };
    let suffix = format!("@{first}");
    let pairs: Vec<(&str, &Series, &Series)> = report
        .series
        .iter()
        .filter_map(|a| {
            let base = a.name.strip_suffix(&suffix)?;
            Some((base, a, report.series_named(&format!("{base}@{second}"))?))
        })
        .collect();
    let width = pairs.iter().map(|(base, ..)| base.chars().count()).max().unwrap_or(0).max(28);
    let mut text = format!(
        "{} server(s) per target, {} sessions spread over them; inflight = sessions x depth; \
         cpu/op = CPU of all server processes / replies\n",
        report.params["nodes"], report.params["sessions"]
    );
    let _ = writeln!(
        text,
        "{:<width$} {:>10} {:>10} {:>7} | {:>9} {:>9} | {:>9} {:>9} | {:>7} {:>7}",
        "series",
        format!("{first}/s"),
        format!("{second}/s"),
        "ratio",
        format!("p50 {}", &first[..2]),
        format!("p50 {}", &second[..2]),
        format!("p99 {}", &first[..2]),
        format!("p99 {}", &second[..2]),
        "cpu/op",
        "cpu/op"
    );
    for (base, a, b) in pairs {
        let latency = |s: &Series| s.latency_us.map(|l| (l.p50, l.p99)).unwrap_or((0.0, 0.0));
        let cpu = |s: &Series| s.extra.get("server_cpu_us_per_op").and_then(|v| v.as_f64());
        let cpu_text = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}us"));
        let ratio =
            if b.throughput_per_s > 0.0 { a.throughput_per_s / b.throughput_per_s } else { 0.0 };
        let _ = writeln!(
            text,
            "{base:<width$} {:>10.0} {:>10.0} {ratio:>6.2}x | {:>7.0}us {:>7.0}us | {:>7.0}us {:>7.0}us | {:>7} {:>7}",
            a.throughput_per_s, b.throughput_per_s, latency(a).0, latency(b).0,
            latency(a).1, latency(b).1, cpu_text(cpu(a)), cpu_text(cpu(b))
        );
    }
    for ratio in &report.ratios {
        let _ = writeln!(text, "{:<72} {:>8.3}", ratio.name, ratio.value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_depth_sweep_runs_each_closed_workload_per_depth_and_open_loop_once() {
        let workloads = compare_workloads(&[1, 128, 1024]);
        let labels: Vec<String> =
            workloads.iter().map(|w| format!("{} {}", w.mix, w.label())).collect();
        assert_eq!(
            labels,
            [
                "setData closed/depth=1",
                "setData closed/depth=128",
                "setData closed/depth=1024",
                "getData closed/depth=1",
                "getData closed/depth=128",
                "getData closed/depth=1024",
                "setData open/rate=1000",
            ]
        );
        assert_eq!(workloads[6].depth, 1024);
        let mut config = CoordConfig::new(Vec::new());
        config.targets = vec![TargetSpec::External { hosts: vec!["127.0.0.1:1".to_owned()] }];
        config.workloads = workloads;
        assert!(config.validate().is_ok());
        assert_eq!(config.depths(), [1, 128, 1024]);
    }

    #[test]
    fn the_suite_runs_the_issues_anchor_rows_on_three_node_ensembles() {
        let config = CoordConfig::suite(PathBuf::from("zabflow"));
        assert!(config.validate().is_ok());
        assert_eq!(config.targets.iter().map(TargetSpec::nodes).collect::<Vec<_>>(), [3, 3]);
        let labels: Vec<String> = config
            .workloads
            .iter()
            .map(|w| format!("{} {}", w.mix, config.workload_label(w)))
            .collect();
        assert_eq!(
            labels,
            [
                "setData 3-node/closed/inflight=1024",
                "setData 3-node/closed/inflight=128",
                "setData 3-node/closed/inflight=16",
                "getData 3-node/closed/inflight=128",
                "setData 3-node/open/rate=1000",
            ]
        );
        assert_eq!(config.params()["nodes"], 3);
        assert_eq!(config.params()["in_flight"], json!([1024, 128, 16]));
        let mut standalone =
            CoordConfig::new(vec![TargetSpec::Zookeeper { nodes: 1, install: false }]);
        assert_eq!(
            standalone.workload_label(&standalone.workloads[2]),
            "1-node/closed/inflight=16"
        );
        standalone.targets.push(TargetSpec::Zookeeper { nodes: 3, install: false });
        assert!(standalone.validate().unwrap_err().to_string().contains("as many servers"));
        standalone.targets = vec![TargetSpec::Zookeeper { nodes: 8, install: false }];
        assert!(standalone.validate().unwrap_err().to_string().contains("--nodes 8"));
    }

    #[test]
    fn two_workloads_with_one_name_are_refused() {
        let open = Pacing::Open { rate_per_s: 500 };
        let workload = |depth| Workload { mix: Mix::only(MixOp::SetData), pacing: open, depth };
        let mut config = CoordConfig::new(Vec::new());
        config.targets = vec![TargetSpec::External { hosts: vec!["127.0.0.1:1".to_owned()] }];
        config.workloads = vec![workload(1), workload(8)];
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("setData open/rate=500"), "{error}");
    }
}
