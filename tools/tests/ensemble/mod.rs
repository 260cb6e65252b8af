//! Helpers of the ensemble fault tests: a 3-node ensemble of `zabflow node` processes whose
//! peer links run through fault-injecting proxies, a write load that records every
//! operation for the linearizability checker, and the end-of-test checks.
//!
//! ```text
//! node N dials every lower id M (the transport's rule), so node N's zoo.cfg names M's
//! quorum and election ports through two proxies of the pair (N, M); its own line and the
//! lines of higher ids hold real ports (bound by the node; the higher ids dial it)
//! ROOT/node<N>/zoo.cfg · data/myid · node.log (stderr, appended across restarts)
//! ```

#![allow(dead_code)]

pub mod load;
pub mod proxy;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use zabflow_net::client::{four_letter_word, Client, ClientConfig};
use zabflow_net::jute::Stat;

use proxy::{Direction, Proxy};

/// Every znode's data and stat, by path.
pub type Tree = BTreeMap<String, (Vec<u8>, Stat)>;

/// How long a node may take to start answering `ruok`.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Polling period of every wait.
pub const POLL: Duration = Duration::from_millis(10);

/// The ensembles of this file run one at a time: timings are measured, and two ensembles
/// on two cores would measure each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes the file-wide lock (a test that failed while holding it does not poison the rest).
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Nanoseconds since `origin`: the time base of recorded histories.
pub fn since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).expect("a test shorter than 584 years")
}

/// Polls `condition` every [`POLL`] until it holds; panics with `what()` after `timeout`.
pub fn wait_until(
    timeout: Duration,
    what: impl Fn() -> String,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?}: {}", what());
        std::thread::sleep(POLL);
    }
}

/// zoo.cfg settings of an ensemble.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tick_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// More zoo.cfg lines (e.g. `snapCount=100`).
    pub extra: String,
}

impl Settings {
    /// Fast ticks for tests that wait on timeouts: tickTime=200, syncLimit=5.
    pub fn fast() -> Settings {
        Settings { tick_ms: 200, init_limit: 10, sync_limit: 5, extra: String::new() }
    }

    /// ZooKeeper's defaults: tickTime=2000, initLimit=10, syncLimit=5.
    pub fn default_ticks() -> Settings {
        Settings { tick_ms: 2000, init_limit: 10, sync_limit: 5, extra: String::new() }
    }

    /// A session timeout inside the server's bounds (2..20 ticks) that outlives a failover.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.tick_ms) * 15)
    }
}

/// What `srvr` says about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    NotServing,
    /// No answer (killed, starting, or busy beyond the four-letter-word timeout).
    Down,
}

/// One `zabflow node` process and its files.
pub struct Node {
    pub id: u64,
    pub dir: PathBuf,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    child: Option<Child>,
}

impl Node {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn client_address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// The last `lines` lines of the node's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts the process and waits until it answers `ruok`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("open node.log");
        writeln!(log, "---- test: starting node {} ----", self.id).expect("write node.log");
        let child = Command::new(env!("CARGO_BIN_EXE_zabflow"))
            .args(["node", "--config"])
            .arg(self.dir.join("zoo.cfg"))
            .args(["--id", &self.id.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn zabflow node");
        self.child = Some(child);
        let deadline = Instant::now() + NODE_START_TIMEOUT;
        loop {
            if four_letter_word(self.client_address(), "ruok").is_ok_and(|reply| reply == "imok") {
                return;
            }
            let exited = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                panic!("node {} exited with {status}:\n{}", self.id, self.log_tail(40));
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not start:\n{}",
                self.id,
                self.log_tail(40)
            );
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL, and reap the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The node's `srvr` answer, parsed: mode and last zxid.
    pub fn srvr(&self) -> (Mode, i64) {
        if !self.running() {
            return (Mode::Down, -1);
        }
        let Ok(reply) = four_letter_word(self.client_address(), "srvr") else {
            return (Mode::Down, -1);
        };
        if reply.contains("not currently serving") {
            return (Mode::NotServing, -1);
        }
        let field = |name: &str| reply.lines().find_map(|line| line.strip_prefix(name));
        let zxid = field("Zxid:")
            .and_then(|zxid| i64::from_str_radix(zxid.trim().trim_start_matches("0x"), 16).ok())
            .unwrap_or(-1);
        match field("Mode:").map(str::trim) {
            Some("leader") => (Mode::Leader, zxid),
            Some("follower") => (Mode::Follower, zxid),
            _ => (Mode::Down, -1),
        }
    }
}

/// The kind of a peer port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortKind {
    Quorum,
    Election,
}

/// A running 3-node ensemble on loopback, peer links through proxies.
pub struct Ensemble {
    pub settings: Settings,
    pub nodes: Vec<Node>,
    /// (dialer, target, kind) → the proxy the dialer reaches the target through.
    proxies: BTreeMap<(u64, u64, PortKind), Proxy>,
    root: tempfile::TempDir,
}

impl Ensemble {
    /// Writes the configs of `size` nodes, starts them and waits for a leader.
    pub fn start(size: u64, settings: Settings) -> Ensemble {
        let root = tempfile::tempdir().expect("a temporary directory");
        let ports = zabflow_tests::ports::free_loopback_ports(3 * size as usize).unwrap();
        let nodes: Vec<Node> = (1..=size)
            .map(|id| {
                let base = 3 * (id as usize - 1);
                Node {
                    id,
                    dir: root.path().join(format!("node{id}")),
                    client_port: ports[base],
                    quorum_port: ports[base + 1],
                    election_port: ports[base + 2],
                    child: None,
                }
            })
            .collect();
        let mut proxies = BTreeMap::new();
        for dialer in &nodes {
            for target in nodes.iter().filter(|target| target.id < dialer.id) {
                for (kind, port) in [
                    (PortKind::Quorum, target.quorum_port),
                    (PortKind::Election, target.election_port),
                ] {
                    let address = SocketAddr::from(([127, 0, 0, 1], port));
                    proxies.insert((dialer.id, target.id, kind), Proxy::start(address));
                }
            }
        }
        let mut ensemble = Ensemble { settings, nodes, proxies, root };
        for node in &ensemble.nodes {
            ensemble.write_config(node);
        }
        for index in 0..ensemble.nodes.len() {
            ensemble.nodes[index].start();
        }
        ensemble.wait_for_leader(Duration::from_secs(20));
        ensemble
    }

    fn write_config(&self, node: &Node) {
        let settings = &self.settings;
        let mut servers = String::new();
        for peer in &self.nodes {
            let (quorum, election) = if peer.id < node.id {
                let proxy = |kind| self.proxies[&(node.id, peer.id, kind)].port;
                (proxy(PortKind::Quorum), proxy(PortKind::Election))
            } else {
                (peer.quorum_port, peer.election_port)
            };
            servers += &format!("server.{}=127.0.0.1:{quorum}:{election}\n", peer.id);
        }
        let config = format!(
            "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPort={}\n\
             clientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n{}\n{servers}",
            settings.tick_ms,
            settings.init_limit,
            settings.sync_limit,
            node.data_dir().display(),
            node.client_port,
            settings.extra,
        );
        std::fs::create_dir_all(node.data_dir()).expect("create the data dir");
        std::fs::write(node.dir.join("zoo.cfg"), config).expect("write zoo.cfg");
        std::fs::write(node.data_dir().join("myid"), format!("{}\n", node.id)).expect("myid");
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[id as usize - 1]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    /// Every client port, for a client that fails over between servers.
    pub fn connect_string(&self) -> String {
        let hosts: Vec<String> =
            self.nodes.iter().map(|node| format!("127.0.0.1:{}", node.client_port)).collect();
        hosts.join(",")
    }

    /// Each running node's mode and zxid, for failure messages.
    pub fn status(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                let (mode, zxid) = node.srvr();
                format!("node {}: {mode:?} 0x{zxid:x}", node.id)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every node's log tail, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("==== node {} ====\n{}\n", node.id, node.log_tail(60)))
            .collect()
    }

    /// The node that leads with every other running node following it, if any.
    pub fn leader(&self) -> Option<u64> {
        let modes: Vec<(u64, Mode)> = self
            .nodes
            .iter()
            .filter(|node| node.running())
            .map(|node| (node.id, node.srvr().0))
            .collect();
        let leaders: Vec<u64> =
            modes.iter().filter(|(_, mode)| *mode == Mode::Leader).map(|(id, _)| *id).collect();
        let all_settled =
            modes.iter().all(|(_, mode)| matches!(mode, Mode::Leader | Mode::Follower));
        (leaders.len() == 1 && all_settled).then(|| leaders[0])
    }

    /// Waits until one running node leads and all other running nodes follow.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let mut found = None;
        wait_until(
            timeout,
            || format!("no settled leader: {}\n{}", self.status(), self.logs()),
            || {
                found = self.leader();
                found.is_some()
            },
        );
        found.expect("checked")
    }

    /// Some running node that follows.
    pub fn a_follower(&self) -> u64 {
        let leader = self.wait_for_leader(Duration::from_secs(20));
        self.nodes.iter().find(|node| node.running() && node.id != leader).expect("a follower").id
    }

    /// The proxies of every link between `id` and the other nodes.
    fn links_of(&self, id: u64) -> impl Iterator<Item = &Proxy> {
        self.proxies
            .iter()
            .filter(move |((dialer, target, _), _)| *dialer == id || *target == id)
            .map(|(_, proxy)| proxy)
    }

    /// Closes every link of node `id` and refuses new ones.
    pub fn cut(&self, id: u64) {
        self.links_of(id).for_each(Proxy::cut);
    }

    /// Stops every byte on the links of node `id` (connections stay open).
    pub fn stall(&self, id: u64) {
        self.links_of(id).for_each(Proxy::stall);
    }

    /// Stops every byte sent to node `id` by the others; what it sends still arrives.
    pub fn stall_inbound(&self, id: u64) {
        for ((dialer, target, _), proxy) in &self.proxies {
            if *dialer == id {
                proxy.stall_one_way(Direction::ToDialer);
            } else if *target == id {
                proxy.stall_one_way(Direction::ToTarget);
            }
        }
    }

    /// Undoes [`Ensemble::cut`] and [`Ensemble::stall`] everywhere.
    pub fn heal(&self) {
        self.proxies.values().for_each(Proxy::heal);
    }

    /// Waits until every running node serves (one leader) and all report the same zxid.
    pub fn wait_converged(&self, timeout: Duration) -> i64 {
        let mut zxid = -1;
        wait_until(
            timeout,
            || format!("servers did not converge: {}\n{}", self.status(), self.logs()),
            || {
                if self.leader().is_none() {
                    return false;
                }
                let zxids: Vec<i64> = self
                    .nodes
                    .iter()
                    .filter(|node| node.running())
                    .map(|node| node.srvr().1)
                    .collect();
                zxid = zxids[0];
                zxids.iter().all(|&z| z == zxid && z >= 0)
            },
        );
        zxid
    }

    /// A client of node `id` alone.
    pub fn client_of(&self, id: u64) -> Client {
        let address = format!("127.0.0.1:{}", self.node(id).client_port);
        let config = ClientConfig::new(&address)
            .expect("a connect string")
            .with_session_timeout(self.settings.session_timeout());
        Client::connect(config).unwrap_or_else(|error| {
            panic!("connect to node {id}: {error}: {}\n{}", self.status(), self.logs())
        })
    }

    /// Every znode's data and stat as node `id` has them (after a `sync`), but for the
    /// server-local `/zookeeper/config`.
    pub fn dump(&self, id: u64) -> Tree {
        let client = self.client_of(id);
        client.sync("/").expect("sync");
        let mut tree = BTreeMap::new();
        let mut pending = vec!["/".to_owned()];
        while let Some(path) = pending.pop() {
            let (data, stat) = client.get_data(&path, false).expect("getData of a listed znode");
            let children = client.get_children(&path, false).expect("getChildren");
            for child in children {
                let prefix = if path == "/" { "" } else { path.as_str() };
                pending.push(format!("{prefix}/{child}"));
            }
            // Each server writes its membership into /zookeeper/config with its own mtime
            // (as ZooKeeper does), so that node is no replicated state to compare.
            if path != "/zookeeper/config" {
                tree.insert(path, (data, stat));
            }
        }
        let _ = client.close();
        tree
    }

    /// Dumps every running node: their common tree, or the paths where they differ with
    /// what each node holds there.
    pub fn compare_states(&self) -> Result<Tree, (Vec<String>, String)> {
        let dumps: Vec<(u64, Tree)> = self
            .nodes
            .iter()
            .filter(|node| node.running())
            .map(|node| (node.id, self.dump(node.id)))
            .collect();
        let mut paths: Vec<&String> = dumps.iter().flat_map(|(_, tree)| tree.keys()).collect();
        paths.sort();
        paths.dedup();
        let differing: Vec<String> = paths
            .into_iter()
            .filter(|path| dumps.iter().any(|(_, tree)| tree.get(*path) != dumps[0].1.get(*path)))
            .cloned()
            .collect();
        if differing.is_empty() {
            return Ok(dumps.into_iter().next().expect("a running node").1);
        }
        let mut text = format!("servers differ at {} znodes:\n", differing.len());
        for path in differing.iter().take(10) {
            for (id, tree) in &dumps {
                let entry = tree.get(path).map(|(data, stat)| (data.len(), stat));
                text += &format!("  {path} on node {id}: {entry:?}\n");
            }
        }
        Err((differing, text))
    }

    /// Deletes node `id`'s data except `myid` (the node must be stopped).
    pub fn wipe(&self, id: u64) {
        let node = self.node(id);
        assert!(!node.running(), "wipe a running node");
        let data = node.data_dir();
        std::fs::remove_dir_all(&data).expect("remove the data dir");
        std::fs::create_dir_all(&data).expect("create the data dir");
        std::fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("ensemble at failure: {}\n{}", self.status(), self.logs());
        }
        // ZABFLOW_ENSEMBLE_LOGS=DIR keeps every node's whole log as DIR/<test>-node<N>.log.
        if let Some(keep) = std::env::var_os("ZABFLOW_ENSEMBLE_LOGS") {
            let test = std::thread::current().name().unwrap_or("test").replace("::", "-");
            let _ = std::fs::create_dir_all(&keep);
            for node in &self.nodes {
                let target = Path::new(&keep).join(format!("{test}-node{}.log", node.id));
                let _ = std::fs::copy(node.dir.join("node.log"), target);
            }
        }
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
