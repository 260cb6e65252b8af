//! The servers a coord run measures: a fresh zabflow node, a fresh real Apache ZooKeeper, or
//! an ensemble someone else runs.
//!
//! A [`RunningTarget`] owns what it started. A zabflow target is one `zabflow node` child
//! process per server, all in one temp dir; ZooKeeper is the `zabflow-tests` harness's JVMs.
//! Both lay out an ensemble the same way:
//!
//! ```text
//! <data parent>/zabflow-bench-coord-XXXX/node<N>/zoo.cfg    tickTime, forceSync, server.N
//! <data parent>/zabflow-bench-coord-XXXX/node<N>/data       dataDir: myid, txn log, snapshots
//! <data parent>/zabflow-bench-coord-XXXX/node<N>/node.log   the node's stderr
//! ```
//!
//! Every server gets free loopback ports (client, quorum, election), `tickTime`
//! [`COORD_TICK_TIME_MS`] with ZooKeeper's `initLimit`/`syncLimit`, and `forceSync=yes`; a
//! target counts as started once every server answers `srvr` with a mode (an ensemble has
//! elected a leader and every follower has synced with it). Servers are stopped by PID
//! (SIGTERM to all, then SIGKILL after [`COORD_SERVER_WAIT`]) and their data dirs removed
//! when the target is dropped; they are spawned with a parent-death signal, so a generator
//! that dies does not leave them running. An external target only records its connect
//! string: it has no PIDs, so its server CPU is not measured.

use crate::constants::{
    COORD_HOST_PROBE_TIMEOUT, COORD_NODES_MAX, COORD_SERVER_WAIT, COORD_TICK_TIME_MS,
};
use crate::error::{BenchError, Result};
use crate::report::Target;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zabflow_coord::config::LoopbackConfig;
use zabflow_net::client::four_letter_word;
use zabflow_tests::real_zookeeper::{self, RealZooKeeper, ZooKeeperOptions};

/// Which servers to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A fresh zabflow ensemble of `nodes` started from the `zabflow` executable `exe`.
    Zabflow { exe: PathBuf, nodes: usize },
    /// A fresh real Apache ZooKeeper of `nodes`; `install` lets a root process install the
    /// Debian package when it is missing (otherwise the run fails with the install hint).
    Zookeeper { nodes: usize, install: bool },
    /// Servers already running, as `host:port` entries.
    External { hosts: Vec<String> },
}

impl TargetSpec {
    /// The report's name for these servers.
    pub fn target(&self) -> Target {
        match self {
            TargetSpec::Zabflow { .. } => Target::Zabflow,
            TargetSpec::Zookeeper { .. } => Target::Zookeeper,
            TargetSpec::External { .. } => Target::External,
        }
    }

    /// `zabflow`, `zookeeper` or `external`.
    pub fn name(&self) -> &'static str {
        match self {
            TargetSpec::Zabflow { .. } => "zabflow",
            TargetSpec::Zookeeper { .. } => "zookeeper",
            TargetSpec::External { .. } => "external",
        }
    }

    /// Servers in the ensemble.
    pub fn nodes(&self) -> usize {
        match self {
            TargetSpec::Zabflow { nodes, .. } | TargetSpec::Zookeeper { nodes, .. } => *nodes,
            TargetSpec::External { hosts } => hosts.len(),
        }
    }

    /// Starts the servers (writing data under `data_parent`) and waits until they serve.
    ///
    /// # Errors
    /// [`BenchError::Param`] for a node count outside `1..=`[`COORD_NODES_MAX`];
    /// [`BenchError::Target`] when the servers cannot be started or do not all serve within
    /// [`COORD_SERVER_WAIT`] (with the log tail of one that does not), ZooKeeper is not
    /// installed (with the command that installs it), or an external host does not accept
    /// connections within [`COORD_HOST_PROBE_TIMEOUT`].
    pub fn start(&self, data_parent: &Path) -> Result<RunningTarget> {
        self.validate()?;
        match self {
            TargetSpec::Zabflow { exe, nodes } => {
                let ensemble = ZabflowEnsemble::start(exe, *nodes, data_parent)?;
                let hosts = ensemble.nodes.iter().map(|node| node.address.to_string()).collect();
                Ok(RunningTarget { hosts, kept: Kept::Zabflow(ensemble) })
            }
            TargetSpec::Zookeeper { nodes, install } => {
                start_zookeeper(*nodes, *install, data_parent)
            }
            TargetSpec::External { hosts } => {
                probe_hosts(hosts)?;
                Ok(RunningTarget { hosts: hosts.clone(), kept: Kept::External })
            }
        }
    }
}

impl TargetSpec {
    /// Fails for a node count the scenario does not start.
    ///
    /// # Errors
    /// [`BenchError::Param`] for a started target of 0 or more than [`COORD_NODES_MAX`] nodes.
    pub fn validate(&self) -> Result<()> {
        let nodes = self.nodes();
        let started = !matches!(self, TargetSpec::External { .. });
        if started && !(1..=COORD_NODES_MAX).contains(&nodes) {
            return Err(BenchError::Param(format!(
                "--nodes {nodes}: 1 (standalone) or an ensemble of up to {COORD_NODES_MAX}"
            )));
        }
        Ok(())
    }
}

/// Servers serving a run; dropping it stops what it started and removes their data.
#[derive(Debug)]
pub struct RunningTarget {
    /// `host:port` of each server.
    pub hosts: Vec<String>,
    kept: Kept,
}

#[derive(Debug)]
enum Kept {
    Zabflow(ZabflowEnsemble),
    Zookeeper(Box<RealZooKeeper>),
    External,
}

impl RunningTarget {
    /// PIDs of the server processes (none for an external target).
    pub fn pids(&self) -> Vec<u32> {
        match &self.kept {
            Kept::Zabflow(ensemble) => ensemble.nodes.iter().map(|node| node.child.id()).collect(),
            Kept::Zookeeper(zookeeper) => {
                (0..zookeeper.node_count()).filter_map(|index| zookeeper.pid(index)).collect()
            }
            Kept::External => Vec::new(),
        }
    }
}

/// Fails unless every one of `hosts` accepts a TCP connection, naming each that does not.
fn probe_hosts(hosts: &[String]) -> Result<()> {
    if hosts.is_empty() {
        return Err(BenchError::Target("--target external needs --hosts H:P,…".to_owned()));
    }
    let failures: Vec<String> = hosts
        .iter()
        .filter_map(|host| probe_host(host).err().map(|error| format!("{host} ({error})")))
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    Err(BenchError::Target(format!(
        "--target external: cannot reach {} within {COORD_HOST_PROBE_TIMEOUT:?}; is the \
         ensemble running, and are these its client ports? (nothing was measured)",
        failures.join(", ")
    )))
}

fn probe_host(host: &str) -> std::io::Result<()> {
    let addresses: Vec<SocketAddr> = host.to_socket_addrs()?.collect();
    let mut last_error = std::io::Error::other("resolves to no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, COORD_HOST_PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// Whether the Debian package `zookeeper` is installed.
fn zookeeper_installed() -> bool {
    let output = Command::new("dpkg-query").args(["-W", "-f=${Status}", "zookeeper"]).output();
    output.is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("install ok"))
}

fn start_zookeeper(nodes: usize, install: bool, data_parent: &Path) -> Result<RunningTarget> {
    if !install && !zookeeper_installed() {
        return Err(BenchError::Target(format!(
            "--target zookeeper needs Apache ZooKeeper 3.8, which is not installed: {} \
             (nothing was measured)",
            real_zookeeper::INSTALL_HINT
        )));
    }
    real_zookeeper::ensure_installed().map_err(|error| BenchError::Target(error.0))?;
    let options = ZooKeeperOptions {
        nodes,
        parent_dir: Some(data_parent.to_path_buf()),
        extra_config: vec![("forceSync".to_owned(), "yes".to_owned())],
        ..ZooKeeperOptions::default()
    };
    let zookeeper =
        RealZooKeeper::start_with(options).map_err(|error| BenchError::Target(error.0))?;
    let hosts = (0..zookeeper.node_count())
        .map(|index| zookeeper.client_address(index).to_string())
        .collect();
    Ok(RunningTarget { hosts, kept: Kept::Zookeeper(Box::new(zookeeper)) })
}

fn target_error(context: &str, error: impl std::fmt::Display) -> BenchError {
    BenchError::Target(format!("{context}: {error}"))
}

/// The `zabflow node` processes of one target and the temp dir that holds their configs and
/// data. Dropping it stops every node, then removes the dir.
#[derive(Debug)]
struct ZabflowEnsemble {
    /// Dropped (stopped) before `dir` is removed: fields drop in declaration order.
    nodes: Vec<ZabflowNode>,
    dir: tempfile::TempDir,
}

/// One `zabflow node` child process.
#[derive(Debug)]
struct ZabflowNode {
    id: usize,
    child: Child,
    address: SocketAddr,
    /// `node<id>` inside the ensemble's dir.
    dir: PathBuf,
}

/// A node's loopback ports.
#[derive(Debug, Clone, Copy)]
struct NodePorts {
    client: u16,
    quorum: u16,
    election: u16,
}

impl ZabflowEnsemble {
    /// Writes `nodes` configs under a new temp dir in `data_parent`, starts every node and
    /// waits until each serves.
    fn start(exe: &Path, nodes: usize, data_parent: &Path) -> Result<ZabflowEnsemble> {
        let dir = tempfile::Builder::new()
            .prefix("zabflow-bench-coord-")
            .tempdir_in(data_parent)
            .map_err(|error| BenchError::io(data_parent, error))?;
        let ports: Vec<NodePorts> = free_ports(nodes * 3)?
            .chunks_exact(3)
            .map(|p| NodePorts { client: p[0], quorum: p[1], election: p[2] })
            .collect();
        let servers = server_list(&ports);
        let mut ensemble = ZabflowEnsemble { nodes: Vec::with_capacity(nodes), dir };
        for (index, node_ports) in ports.iter().enumerate() {
            let node_dir = ensemble.dir.path().join(format!("node{}", index + 1));
            write_node_files(&node_dir, index + 1, node_ports.client, &servers)?;
            ensemble.nodes.push(ZabflowNode::spawn(exe, index + 1, node_ports.client, node_dir)?);
        }
        let deadline = Instant::now() + COORD_SERVER_WAIT;
        for node in &mut ensemble.nodes {
            node.wait_until_serving(deadline)?;
        }
        Ok(ensemble)
    }
}

impl Drop for ZabflowEnsemble {
    fn drop(&mut self) {
        // SIGTERM to every node first, so they stop in parallel rather than one by one
        // (a follower whose leader is gone would otherwise elect until it is told to stop).
        for node in &mut self.nodes {
            node.signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + COORD_SERVER_WAIT;
        for node in &mut self.nodes {
            node.wait_or_kill(deadline);
        }
    }
}

/// `(id, quorum, election)` of every server of an ensemble, nothing for one node.
fn server_list(ports: &[NodePorts]) -> Vec<(u64, u16, u16)> {
    if ports.len() == 1 {
        return Vec::new();
    }
    let servers = ports.iter().enumerate();
    servers.map(|(index, p)| (index as u64 + 1, p.quorum, p.election)).collect()
}

/// `node_dir/zoo.cfg` (ZooKeeper's comparison settings, `forceSync=yes`, `servers`) and
/// `node_dir/data/myid`.
fn write_node_files(
    node_dir: &Path,
    id: usize,
    client_port: u16,
    servers: &[(u64, u16, u16)],
) -> Result<()> {
    let data = node_dir.join("data");
    let config = LoopbackConfig {
        tick_ms: COORD_TICK_TIME_MS,
        init_limit: 10,
        sync_limit: 5,
        data_dir: &data,
        client_port,
        servers,
        extra: "extendedTypesEnabled=true\nforceSync=yes",
    };
    config.write(node_dir, id as u64).map_err(|error| BenchError::io(node_dir, error))
}

impl ZabflowNode {
    /// Starts `zabflow node` on `node_dir/zoo.cfg`, its stderr into `node_dir/node.log`.
    fn spawn(exe: &Path, id: usize, client_port: u16, node_dir: PathBuf) -> Result<ZabflowNode> {
        let log_path = node_dir.join("node.log");
        let log = std::fs::File::create(&log_path).map_err(|e| BenchError::io(&log_path, e))?;
        let mut command = Command::new(exe);
        command
            .args(["node", "--config"])
            .arg(node_dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = real_zookeeper::spawn_tied_to_process(command)
            .map_err(|error| target_error(&format!("cannot start {}", exe.display()), error))?;
        let address = SocketAddr::from(([127, 0, 0, 1], client_port));
        Ok(ZabflowNode { id, child, address, dir: node_dir })
    }

    /// Waits until the node answers `srvr` with a mode: standalone, or leader or follower
    /// of an ensemble that has a leader (an electing node answers that it is not serving).
    fn wait_until_serving(&mut self, deadline: Instant) -> Result<()> {
        while Instant::now() < deadline {
            let srvr = four_letter_word(self.address, "srvr").unwrap_or_default();
            if srvr.contains("Mode: ") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_failure(&format!("exited with {status}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.start_failure(&format!("did not serve within {COORD_SERVER_WAIT:?}")))
    }

    fn start_failure(&self, what: &str) -> BenchError {
        let log = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::Target(format!(
            "zabflow node {} on {} {what}:\n{}",
            self.id,
            self.address,
            tail.join("\n")
        ))
    }

    /// Sends `signal` unless the node has been reaped already (its PID may name another
    /// process by then).
    fn signal(&mut self, signal: libc::c_int) {
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else { return };
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: `pid` is our own child, not yet reaped, so it names this process.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Reaps the node, SIGKILLing it if it is still running at `deadline`.
    fn wait_or_kill(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` distinct loopback ports that were free a moment ago, outside the ephemeral range.
fn free_ports(count: usize) -> Result<Vec<u16>> {
    zabflow_tests::ports::free_loopback_ports(count)
        .map_err(|error| target_error("cannot find a free port", error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_external_hosts_fail_clearly_and_at_once() {
        let closed_port = free_ports(1).unwrap()[0];
        let host = format!("127.0.0.1:{closed_port}");
        let spec = TargetSpec::External { hosts: vec![host.clone()] };
        let started = Instant::now();
        let error = spec.start(Path::new(".")).unwrap_err().to_string();
        assert!(started.elapsed() < COORD_HOST_PROBE_TIMEOUT, "{error}");
        assert!(error.contains(&format!("cannot reach {host} (")), "{error}");
        assert!(error.contains("nothing was measured"), "{error}");
        let unresolvable = TargetSpec::External { hosts: vec!["no-such-host.invalid:2181".into()] };
        assert!(unresolvable.start(Path::new(".")).is_err());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = TargetSpec::External { hosts: vec![listener.local_addr().unwrap().to_string()] };
        assert!(open.start(Path::new(".")).is_ok());
    }
}
