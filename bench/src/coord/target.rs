//! The servers a coord run measures: a fresh zabflow node, a fresh real Apache ZooKeeper, or
//! an ensemble someone else runs.
//!
//! A [`RunningTarget`] owns what it started. A zabflow node is a `zabflow node` child process
//! in a temp dir (its `zoo.cfg` and `dataDir`); ZooKeeper is the `zabflow-tests` harness's
//! JVM. Both write their data under the same parent directory (the disk under test), use
//! `tickTime` [`COORD_TICK_TIME_MS`] and `forceSync=yes`, and are stopped by PID (SIGTERM,
//! then SIGKILL after [`COORD_SERVER_WAIT`]) with their data dirs removed when the target is
//! dropped. An external target only records its connect string: it has no PIDs, so its
//! server CPU is not measured.

use crate::constants::{COORD_HOST_PROBE_TIMEOUT, COORD_SERVER_WAIT, COORD_TICK_TIME_MS};
use crate::error::{BenchError, Result};
use crate::report::Target;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
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
    /// [`BenchError::Target`] when the servers cannot be started, ZooKeeper is not installed
    /// (with the command that installs it), a zabflow ensemble of more than one node is
    /// asked for before replication exists, or an external host does not accept connections
    /// within [`COORD_HOST_PROBE_TIMEOUT`].
    pub fn start(&self, data_parent: &Path) -> Result<RunningTarget> {
        match self {
            TargetSpec::Zabflow { exe, nodes } => {
                if *nodes != 1 {
                    return Err(BenchError::Target(format!(
                        "--nodes {nodes}: zabflow runs standalone (--nodes 1) until the \
                         replication issue lands; 3- and 5-node runs come with it"
                    )));
                }
                let node = ZabflowNode::start(exe, data_parent)?;
                let hosts = vec![node.address.to_string()];
                Ok(RunningTarget { hosts, kept: Kept::Zabflow(vec![node]) })
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

/// Servers serving a run; dropping it stops what it started and removes their data.
#[derive(Debug)]
pub struct RunningTarget {
    /// `host:port` of each server.
    pub hosts: Vec<String>,
    kept: Kept,
}

#[derive(Debug)]
enum Kept {
    Zabflow(Vec<ZabflowNode>),
    Zookeeper(Box<RealZooKeeper>),
    External,
}

impl RunningTarget {
    /// PIDs of the server processes (none for an external target).
    pub fn pids(&self) -> Vec<u32> {
        match &self.kept {
            Kept::Zabflow(nodes) => nodes.iter().map(|node| node.child.id()).collect(),
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

/// One `zabflow node` child process and its temp dir.
#[derive(Debug)]
struct ZabflowNode {
    child: Child,
    address: SocketAddr,
    /// Removed on drop, after the process has exited.
    dir: tempfile::TempDir,
}

fn target_error(context: &str, error: impl std::fmt::Display) -> BenchError {
    BenchError::Target(format!("{context}: {error}"))
}

impl ZabflowNode {
    fn start(exe: &Path, data_parent: &Path) -> Result<ZabflowNode> {
        let dir = tempfile::Builder::new()
            .prefix("zabflow-bench-coord-")
            .tempdir_in(data_parent)
            .map_err(|error| BenchError::io(data_parent, error))?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|error| BenchError::io(&data, error))?;
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = format!(
            "tickTime={COORD_TICK_TIME_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             clientPort={}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\nforceSync=yes\n",
            data.display(),
            address.port()
        );
        let config_path = dir.path().join("zoo.cfg");
        std::fs::write(&config_path, config)
            .map_err(|error| BenchError::io(&config_path, error))?;
        std::fs::write(data.join("myid"), "1\n").map_err(|error| BenchError::io(&data, error))?;
        let log_path = dir.path().join("node.log");
        let log = std::fs::File::create(&log_path).map_err(|e| BenchError::io(&log_path, e))?;
        let child = Command::new(exe)
            .args(["node", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| target_error(&format!("cannot start {}", exe.display()), error))?;
        let mut node = ZabflowNode { child, address, dir };
        node.wait_until_serving()?;
        Ok(node)
    }

    fn wait_until_serving(&mut self) -> Result<()> {
        let deadline = Instant::now() + COORD_SERVER_WAIT;
        while Instant::now() < deadline {
            if four_letter_word(self.address, "ruok").is_ok_and(|reply| reply == "imok") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_failure(&format!("exited with {status}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.start_failure("did not answer ruok"))
    }

    fn start_failure(&self, what: &str) -> BenchError {
        let log = std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::Target(format!("zabflow node on {} {what}:\n{}", self.address, tail.join("\n")))
    }
}

impl Drop for ZabflowNode {
    fn drop(&mut self) {
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else { return };
        // SAFETY: `pid` is our own child, not yet reaped, so it names this process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + COORD_SERVER_WAIT;
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

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|error| target_error("cannot find a free port", error))?;
    let port = listener.local_addr().map_err(|e| target_error("cannot find a free port", e))?;
    Ok(port.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_external_hosts_fail_clearly_and_at_once() {
        let closed_port = free_port().unwrap();
        let host = format!("127.0.0.1:{closed_port}");
        let spec = TargetSpec::External { hosts: vec![host.clone()] };
        let started = Instant::now();
        let error = spec.start(Path::new(".")).unwrap_err().to_string();
        assert!(started.elapsed() < COORD_HOST_PROBE_TIMEOUT, "{error}");
        assert!(error.contains(&format!("cannot reach {host} (")), "{error}");
        assert!(error.contains("nothing was measured"), "{error}");
        let unresolvable = TargetSpec::External { hosts: vec!["no-such-host.invalid:2181".into()] };
        assert!(unresolvable.start(Path::new(".")).is_err());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = TargetSpec::External { hosts: vec![listener.local_addr().unwrap().to_string()] };
        assert!(open.start(Path::new(".")).is_ok());
    }
}
