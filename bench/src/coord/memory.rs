//! The `coord-memory` scenario: how much memory a server needs to hold N znodes.
//!
//! Each target is started fresh ([`super::target`]; ZooKeeper with the same JVM heap as in
//! `coord`, `-Xms`/`-Xmx` of the harness's default), its idle resident memory sampled, then
//! N keys of `value_bytes` each are created under `/bench` by the coord load generator's
//! populate step (up to [`COORD_POPULATE_SESSIONS_MAX`] sessions of pipelined creates), the
//! count checked, the sessions closed, and after a settle the server's memory is sampled
//! from `/proc/<pid>/status` ([`super::rss`]). For a JVM the scenario then also forces a
//! full GC through `jcmd` (when the JDK's `jcmd` is installed) and records the live heap:
//! the JVM's resident memory is mostly the heap it was allowed, so the live heap says how
//! much of it the tree really needs.
//!
//! One series per target, `populate/znodes=<N>` (`@<target>` appended with two targets):
//! its throughput is creates per second during the load, its extras the memory figures.
//! With two targets the report gets `… rss_bytes|rss_anon_bytes|hwm_bytes|load_s
//! zabflow/zookeeper` ratios; the goal is `rss_bytes` at most 1/2.

use super::load::{self, Keyspace};
use super::rss::{self, Rss};
use super::target::{RunningTarget, TargetSpec};
use crate::constants::{
    COORD_MEMORY_SETTLE_DEFAULT, COORD_MEMORY_SETTLE_MAX, COORD_MEMORY_VALUE_BYTES_DEFAULT,
    COORD_MEMORY_ZNODES_DEFAULT, COORD_MEMORY_ZNODES_SUITE, COORD_POPULATE_SESSIONS_MAX,
    COORD_VALUE_BYTES_MAX, COORD_ZNODES_MAX,
};
use crate::error::{BenchError, Result};
use crate::goal;
use crate::progress::Progress;
use crate::report::{Report, Series, Unit};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use zabflow_tests::real_zookeeper::HEAP_MIB_DEFAULT;

/// Every knob of a `coord-memory` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// One target, or two side by side (the first is the numerator of every ratio); each
    /// must be one server the scenario starts itself.
    pub targets: Vec<TargetSpec>,
    pub znodes: usize,
    pub value_bytes: usize,
    /// Pause between the load and the memory sample.
    pub settle: Duration,
    /// Where started servers keep their data.
    pub data_parent: PathBuf,
}

impl MemoryConfig {
    /// The defaults against `targets`: 1M znodes of 100 B, a 5 s settle.
    pub fn new(targets: Vec<TargetSpec>) -> MemoryConfig {
        MemoryConfig {
            targets,
            znodes: COORD_MEMORY_ZNODES_DEFAULT,
            value_bytes: COORD_MEMORY_VALUE_BYTES_DEFAULT,
            settle: COORD_MEMORY_SETTLE_DEFAULT,
            data_parent: std::env::temp_dir(),
        }
    }

    /// The default suite's run: zabflow beside ZooKeeper (installed when this is root) with
    /// [`COORD_MEMORY_ZNODES_SUITE`] znodes; `exe` is the `zabflow` executable.
    pub fn suite(exe: PathBuf) -> MemoryConfig {
        let targets = vec![
            TargetSpec::Zabflow { exe, nodes: 1 },
            TargetSpec::Zookeeper { nodes: 1, install: true },
        ];
        MemoryConfig { znodes: COORD_MEMORY_ZNODES_SUITE, ..MemoryConfig::new(targets) }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(BenchError::Param(what));
        if self.targets.is_empty() || self.targets.len() > 2 {
            return bad(format!("{} targets: give one, or two side by side", self.targets.len()));
        }
        for spec in &self.targets {
            if matches!(spec, TargetSpec::External { .. }) || spec.nodes() != 1 {
                return bad("coord-memory samples one server it starts itself: --target \
                            zabflow or zookeeper, --nodes 1"
                    .to_owned());
            }
        }
        if !(1..=COORD_ZNODES_MAX).contains(&self.znodes) {
            return bad(format!("--znodes {}: 1..={COORD_ZNODES_MAX}", self.znodes));
        }
        if self.value_bytes > COORD_VALUE_BYTES_MAX || self.settle > COORD_MEMORY_SETTLE_MAX {
            return bad(format!(
                "--value-bytes ≤ {COORD_VALUE_BYTES_MAX}, --settle ≤ {COORD_MEMORY_SETTLE_MAX:?}"
            ));
        }
        Ok(())
    }

    fn params(&self) -> serde_json::Value {
        let targets: Vec<&str> = self.targets.iter().map(TargetSpec::name).collect();
        json!({
            "targets": targets,
            "nodes": 1,
            "znodes": self.znodes,
            "value_bytes": self.value_bytes,
            "populate_sessions": COORD_POPULATE_SESSIONS_MAX,
            "settle_s": self.settle.as_secs_f64(),
            "zookeeper_jvm_heap": format!("-Xms{HEAP_MIB_DEFAULT}m -Xmx{HEAP_MIB_DEFAULT}m"),
            "force_sync": true,
        })
    }
}

/// What one server measured.
#[derive(Debug, Clone, Copy)]
struct Loaded {
    idle: Rss,
    loaded: Rss,
    load: Duration,
    /// A JVM's heap in use after a full GC, in bytes.
    heap_live_bytes: Option<u64>,
}

/// Runs the scenario and returns its report (unwritten).
///
/// # Errors
/// A bad knob, a target that cannot be started, sessions that fail, or a server whose
/// memory cannot be read.
pub fn run(config: &MemoryConfig) -> Result<Report> {
    config.validate()?;
    let mut report = Report::new("coord-memory", config.params());
    let progress = Progress::new("coord-memory", config.targets.len() as u64 * 2);
    let keyspace = Keyspace::new(config.znodes, config.value_bytes, 1);
    let mut measured = Vec::new();
    for spec in &config.targets {
        let loaded = measure(config, spec, &keyspace, &progress)?;
        report.push_series(series(config, spec, &loaded));
        measured.push(loaded);
    }
    progress.finish();
    if let [first, second] = measured.as_slice() {
        let names = format!("{}/{}", config.targets[0].name(), config.targets[1].name());
        let label = series_label(config);
        let pairs = [
            ("rss_bytes", first.loaded.rss_bytes, second.loaded.rss_bytes),
            ("rss_anon_bytes", first.loaded.anon_bytes, second.loaded.anon_bytes),
            ("hwm_bytes", first.loaded.hwm_bytes, second.loaded.hwm_bytes),
        ];
        for (metric, a, b) in pairs.into_iter().filter(|(_, _, b)| *b > 0) {
            report.push_ratio(format!("{label} {metric} {names}"), a as f64 / b as f64);
        }
        let load_ratio = first.load.as_secs_f64() / second.load.as_secs_f64().max(1e-9);
        report.push_ratio(format!("{label} load_s {names}"), load_ratio);
    }
    Ok(report)
}

/// Starts `spec`, samples it idle, loads the keys, settles, samples it loaded, stops it.
fn measure(
    config: &MemoryConfig,
    spec: &TargetSpec,
    keyspace: &Keyspace,
    progress: &Progress,
) -> Result<Loaded> {
    progress.start_step(&format!("{}: start, load {} znodes", spec.name(), config.znodes));
    let running = spec.start(&config.data_parent)?;
    let pid = single_pid(&running, spec)?;
    let idle = sample(pid, spec)?;
    let load = {
        let clients = load::connect(&running.hosts, COORD_POPULATE_SESSIONS_MAX, 1)?;
        let load = load::populate(&clients, keyspace)?;
        check_count(&clients[0], keyspace)?;
        load
    };
    progress.finish_step();
    progress.start_step(&format!("{}: settle {:?}, sample", spec.name(), config.settle));
    std::thread::sleep(config.settle);
    let loaded = sample(pid, spec)?;
    let heap_live_bytes =
        matches!(spec, TargetSpec::Zookeeper { .. }).then(|| jvm_heap_live_bytes(pid)).flatten();
    progress.finish_step();
    drop(running);
    Ok(Loaded { idle, loaded, load, heap_live_bytes })
}

fn single_pid(running: &RunningTarget, spec: &TargetSpec) -> Result<u32> {
    match running.pids().as_slice() {
        [pid] => Ok(*pid),
        pids => {
            Err(BenchError::Target(format!("{}: {} server PIDs, not 1", spec.name(), pids.len())))
        }
    }
}

fn sample(pid: u32, spec: &TargetSpec) -> Result<Rss> {
    rss::process_rss(pid).ok_or_else(|| {
        BenchError::Target(format!("{}: cannot read /proc/{pid}/status", spec.name()))
    })
}

/// Fails unless the root holds every key (and the two parents of the other workloads).
fn check_count(client: &zabflow_net::client::Client, keyspace: &Keyspace) -> Result<()> {
    let stat = client
        .exists(&keyspace.root, false)
        .map_err(|error| BenchError::Load(format!("exists {}: {error}", keyspace.root)))?;
    let children = stat.map_or(0, |stat| stat.num_children as usize);
    if children != keyspace.paths.len() + 2 {
        return Err(BenchError::Load(format!(
            "{} holds {children} children after loading {} keys",
            keyspace.root,
            keyspace.paths.len()
        )));
    }
    Ok(())
}

/// Forces a full GC in JVM `pid` and returns its heap in use after it (`jcmd GC.run`, then
/// `GC.heap_info`); `None` without `jcmd` (a JRE without the JDK tools) or on any failure.
fn jvm_heap_live_bytes(pid: u32) -> Option<u64> {
    let jcmd = |command: &str| {
        let output = Command::new("jcmd").arg(pid.to_string()).arg(command).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    jcmd("GC.run")?;
    parse_heap_used_bytes(&jcmd("GC.heap_info")?)
}

/// The `used NNNK` of the first heap line of `jcmd GC.heap_info`, in bytes.
fn parse_heap_used_bytes(heap_info: &str) -> Option<u64> {
    let after = heap_info.split(" used ").nth(1)?;
    let kb: u64 = after.split('K').next()?.trim().parse().ok()?;
    Some(kb * 1024)
}

/// `populate/znodes=<N>`.
fn series_label(config: &MemoryConfig) -> String {
    format!("populate/znodes={}", config.znodes)
}

fn series(config: &MemoryConfig, spec: &TargetSpec, loaded: &Loaded) -> Series {
    let mut name = series_label(config);
    if config.targets.len() > 1 {
        name = format!("{name}@{}", spec.name());
    }
    let load_s = loaded.load.as_secs_f64();
    let grown = loaded.loaded.rss_bytes.saturating_sub(loaded.idle.rss_bytes);
    let params = json!({
        "target": spec.name(), "nodes": 1, "znodes": config.znodes,
        "value_bytes": config.value_bytes, "sessions": COORD_POPULATE_SESSIONS_MAX,
    });
    Series::new(name, spec.target(), Unit::Ops, config.znodes as f64 / load_s.max(1e-9))
        .with_params(params)
        .with_extra("load_s", load_s)
        .with_extra("rss_bytes", loaded.loaded.rss_bytes)
        .with_extra("hwm_bytes", loaded.loaded.hwm_bytes)
        .with_extra("rss_anon_bytes", loaded.loaded.anon_bytes)
        .with_extra("rss_file_bytes", loaded.loaded.file_bytes)
        .with_extra("idle_rss_bytes", loaded.idle.rss_bytes)
        .with_extra("rss_bytes_per_znode", grown as f64 / config.znodes as f64)
        .with_extra("jvm_heap_live_bytes", json!(loaded.heap_live_bytes))
}

/// The table of a `coord-memory` report: per target, load time and memory; then its
/// ratios with the goal's verdict.
pub fn table(report: &Report) -> String {
    let mib = |series: &Series, key: &str| {
        let value = series.extra.get(key).and_then(serde_json::Value::as_f64);
        value.map_or("-".to_owned(), |bytes| format!("{:.1}", bytes / f64::from(1u32 << 20)))
    };
    let number = |series: &Series, key: &str| {
        series.extra.get(key).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
    };
    let mut text = format!(
        "{:<34} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>12}\n",
        "series",
        "load s",
        "creates/s",
        "RSS MiB",
        "HWM MiB",
        "anon MiB",
        "file MiB",
        "B/znode",
        "JVM live MiB"
    );
    for series in &report.series {
        let _ = writeln!(
            text,
            "{:<34} {:>8.1} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>8.0} {:>12}",
            series.name,
            number(series, "load_s"),
            series.throughput_per_s,
            mib(series, "rss_bytes"),
            mib(series, "hwm_bytes"),
            mib(series, "rss_anon_bytes"),
            mib(series, "rss_file_bytes"),
            number(series, "rss_bytes_per_znode"),
            mib(series, "jvm_heap_live_bytes"),
        );
    }
    for ratio in &report.ratios {
        let verdict = goal::goal_for(&ratio.name)
            .map(|goal| format!("  (goal {}: {})", goal.text, goal.verdict(ratio.value)))
            .unwrap_or_default();
        let _ = writeln!(text, "{:<60} {:>8.3}{verdict}", ratio.name, ratio.value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jcmd_heap_info() {
        let info = "26414:\n garbage-first heap   total 888832K, used 417892K [0x00000000c18)\n  \
                    region size 1024K, 1 young (1024K), 0 survivors (0K)\n Metaspace       \
                    used 7152K, committed 7360K, reserved 1114112K\n";
        assert_eq!(parse_heap_used_bytes(info), Some(417_892 * 1024));
        assert_eq!(parse_heap_used_bytes("26414:\nno such command"), None);
    }

    #[test]
    fn rejects_targets_it_cannot_sample() {
        let external = TargetSpec::External { hosts: vec!["127.0.0.1:2181".to_owned()] };
        assert!(MemoryConfig::new(vec![external]).validate().is_err());
        let three = TargetSpec::Zookeeper { nodes: 3, install: false };
        assert!(MemoryConfig::new(vec![three]).validate().is_err());
        let config = MemoryConfig { znodes: 0, ..MemoryConfig::suite(PathBuf::from("zabflow")) };
        assert!(config.validate().is_err());
        assert!(MemoryConfig::suite(PathBuf::from("zabflow")).validate().is_ok());
    }
}
