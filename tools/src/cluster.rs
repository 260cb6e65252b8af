//! `zabflow cluster`: a local coordination cluster in the background.
//!
//! ```text
//! DIR/node<N>/zoo.cfg    the node's config (readable, editable; `start` reuses it)
//! DIR/node<N>/data       its dataDir (myid, snapshots, txn log)
//! DIR/node<N>/node.log   its stderr
//! DIR/node<N>/pid        the running process, removed by `down`
//! DIR/worker<N>/          a stream worker (`zabflow worker`): worker.log, pid, its state
//! ```
//!
//! `up` writes the configs, starts each node with `zabflow node`, waits until it answers
//! `ruok` (and, for an ensemble, until one node leads) and prints the connect string.
//! `status` shows each node's mode (leader, follower, standalone) and last zxid; `down`
//! sends SIGTERM (SIGKILL after a grace period); `kill N` sends SIGKILL and waits until the
//! node is gone; `start N` starts a
//! stopped node again. `--nodes 1` is a standalone server; 3 or 5 make an ensemble on
//! loopback (`server.N=127.0.0.1:QUORUM+N-1:ELECTION+N-1` in every zoo.cfg). `up` also
//! starts `--workers` stream workers (default 1) of the cluster `default` on the ensemble,
//! which run the jobs `zabflow job submit` hands them; `status` lists them and `down`
//! stops them before the nodes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::error::ToolError;
use zabflow_coord::config::LoopbackConfig;
use zabflow_net::client::four_letter_word;

/// How long `up`/`start` wait for a node to answer, and `down` for one to exit.
const NODE_WAIT: Duration = Duration::from_secs(15);

/// `zabflow cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Write configs and start the nodes; prints the connect string.
    Up(UpArgs),
    /// Show each node's `srvr` answer.
    Status(DirArgs),
    /// Stop every worker and node (SIGTERM, then SIGKILL after 15 s).
    Down(DirArgs),
    /// SIGKILL node N.
    Kill(NodeArgs),
    /// Start node N again with its existing config and data.
    Start(NodeArgs),
}

/// The cluster directory.
#[derive(Debug, Args)]
pub struct DirArgs {
    /// The cluster's directory.
    #[arg(long, default_value = "zabflow-cluster")]
    pub dir: PathBuf,
}

/// Arguments of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of nodes (1: a standalone server).
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    #[command(flatten)]
    pub dir: DirArgs,
    /// Client port of node 1 (node N uses PORT + N - 1).
    #[arg(long, default_value_t = 2181)]
    pub port: u16,
    /// Quorum port of node 1 (node N uses PORT + N - 1).
    #[arg(long, default_value_t = 2888)]
    pub quorum_port: u16,
    /// Election port of node 1 (node N uses PORT + N - 1).
    #[arg(long, default_value_t = 3888)]
    pub election_port: u16,
    /// zoo.cfg tickTime in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub tick_ms: u32,
    /// Stream workers (`zabflow worker`, cluster `default`) started on the ensemble: one
    /// leads and runs submitted jobs, the others stand by.
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
}

/// A node of the cluster.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node number (1-based).
    pub node: u32,
    #[command(flatten)]
    pub dir: DirArgs,
}

fn fail(message: impl Into<String>) -> ToolError {
    ToolError::Cluster(message.into())
}

/// Runs a cluster command.
///
/// # Errors
/// Files that cannot be written, nodes that do not start or stop.
pub fn run(command: ClusterCommand) -> Result<(), ToolError> {
    match command {
        ClusterCommand::Up(args) => up(&args),
        ClusterCommand::Status(args) => status(&args.dir),
        ClusterCommand::Down(args) => down(&args.dir),
        ClusterCommand::Kill(args) => kill(&node_dir(&args.dir.dir, args.node), args.node),
        ClusterCommand::Start(args) => {
            let dir = node_dir(&args.dir.dir, args.node);
            start_node(&dir, args.node)?;
            println!("{}", client_address(&dir)?);
            Ok(())
        }
    }
}

fn node_dir(dir: &Path, node: u32) -> PathBuf {
    dir.join(format!("node{node}"))
}

fn up(args: &UpArgs) -> Result<(), ToolError> {
    if args.nodes == 0 || args.nodes > 9 {
        return Err(fail("--nodes must be 1 (standalone) or an ensemble of up to 9"));
    }
    let dir = std::path::absolute(&args.dir.dir).map_err(|e| fail(e.to_string()))?;
    let port = |base: u16, id: u32| base + id as u16 - 1;
    let servers: Vec<(u64, u16, u16)> = match args.nodes {
        1 => Vec::new(),
        nodes => (1..=nodes)
            .map(|id| (id.into(), port(args.quorum_port, id), port(args.election_port, id)))
            .collect(),
    };
    for id in 1..=args.nodes {
        let node = node_dir(&dir, id);
        let data = node.join("data");
        let config = LoopbackConfig {
            tick_ms: args.tick_ms,
            init_limit: 10,
            sync_limit: 5,
            data_dir: &data,
            client_port: port(args.port, id),
            servers: &servers,
            extra: "extendedTypesEnabled=true",
        };
        config
            .write(&node, id.into())
            .map_err(|e| fail(format!("write {}: {e}", node.display())))?;
    }
    for id in 1..=args.nodes {
        start_node(&node_dir(&dir, id), id)?;
    }
    if args.nodes > 1 {
        wait_for_leader(&dir)?;
    }
    let hosts: Vec<String> =
        (1..=args.nodes).map(|id| format!("127.0.0.1:{}", port(args.port, id))).collect();
    let connect_string = hosts.join(",");
    for id in 1..=args.workers {
        start_worker(&dir.join(format!("worker{id}")), id, &connect_string)?;
    }
    println!("{connect_string}");
    Ok(())
}

/// Starts stream worker `id` in `dir` on the ensemble at `connect_string`.
fn start_worker(dir: &Path, id: u32, connect_string: &str) -> Result<(), ToolError> {
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
    let worker_id = format!("worker{id}");
    let args = ["worker", "--coord", connect_string, "--worker-id", &worker_id, "--state-dir"];
    spawn_in(dir, "worker.log", Command::new(current_exe()?).args(args).arg(dir))
}

fn current_exe() -> Result<PathBuf, ToolError> {
    std::env::current_exe().map_err(|e| fail(e.to_string()))
}

/// Spawns `command` in the background, its stderr appended to `dir/log_name`, and writes its
/// pid to `dir/pid`.
fn spawn_in(dir: &Path, log_name: &str, command: &mut Command) -> Result<(), ToolError> {
    let log_path = dir.join(log_name);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| fail(format!("open {}: {e}", log_path.display())))?;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| fail(format!("start {}: {e}", dir.display())))?;
    write_file(&dir.join("pid"), &format!("{}\n", child.id()))
}

/// Waits until a node of the ensemble says it leads.
fn wait_for_leader(dir: &Path) -> Result<(), ToolError> {
    let deadline = Instant::now() + NODE_WAIT;
    while Instant::now() < deadline {
        for (_, node) in nodes(dir) {
            let Ok(address) = client_address(&node) else { continue };
            if four_letter_word(address, "srvr").is_ok_and(|r| r.contains("Mode: leader")) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(fail(format!("no node of {} became leader; see its node.log files", dir.display())))
}

fn write_file(path: &Path, text: &str) -> Result<(), ToolError> {
    std::fs::write(path, text).map_err(|e| fail(format!("write {}: {e}", path.display())))
}

fn read_pid(node: &Path) -> Option<i32> {
    std::fs::read_to_string(node.join("pid")).ok()?.trim().parse().ok()
}

/// Whether the process runs (a zombie, killed but not yet reaped by its parent, does not).
fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    // SAFETY: signal 0 only checks that the process exists; no signal is delivered.
    let exists = unsafe { libc::kill(pid, 0) == 0 };
    exists && state != Some('Z')
}

fn client_address(node: &Path) -> Result<SocketAddr, ToolError> {
    let path = node.join("zoo.cfg");
    let (config, _) = zabflow_coord::config::ServerConfig::load(&path)?;
    let mut address = config
        .client_address()
        .ok_or_else(|| fail(format!("{} sets no clientPort", path.display())))?;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(address)
}

fn start_node(node: &Path, id: u32) -> Result<(), ToolError> {
    if read_pid(node).is_some_and(alive) {
        return Err(fail(format!("node {id} is already running")));
    }
    let mut command = Command::new(current_exe()?);
    command.args(["node", "--config"]).arg(node.join("zoo.cfg")).args(["--id", &id.to_string()]);
    spawn_in(node, "node.log", &mut command)?;
    let address = client_address(node)?;
    let deadline = Instant::now() + NODE_WAIT;
    while Instant::now() < deadline {
        if four_letter_word(address, "ruok").is_ok_and(|reply| reply == "imok") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(fail(format!(
        "node {id} did not answer on {address}; see {}",
        node.join("node.log").display()
    )))
}

fn nodes(dir: &Path) -> Vec<(u32, PathBuf)> {
    members(dir, "node")
}

/// The `<prefix><N>` directories of the cluster, by N.
fn members(dir: &Path, prefix: &str) -> Vec<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            Some((name.strip_prefix(prefix)?.parse().ok()?, entry.path()))
        })
        .collect();
    found.sort();
    found
}

fn status(dir: &Path) -> Result<(), ToolError> {
    for (id, node) in nodes(dir) {
        let address = client_address(&node)?;
        let pid = read_pid(&node).filter(|&pid| alive(pid));
        match (pid, four_letter_word(address, "srvr")) {
            (Some(pid), Ok(reply)) => {
                let field = |name: &str| {
                    reply.lines().find_map(|line| line.strip_prefix(name)).unwrap_or("?").trim()
                };
                if reply.contains("not currently serving") {
                    println!("node {id} (pid {pid}) {address}: not serving (electing)");
                } else {
                    let (mode, zxid) = (field("Mode:"), field("Zxid:"));
                    println!("node {id} (pid {pid}) {address}: {mode}, zxid {zxid}");
                }
            }
            (Some(pid), Err(error)) => println!("node {id} (pid {pid}) {address}: {error}"),
            (None, _) => println!("node {id} {address}: down"),
        }
    }
    for (id, worker) in members(dir, "worker") {
        match read_pid(&worker).filter(|&pid| alive(pid)) {
            Some(pid) => println!(
                "worker {id} (pid {pid}): running; log {}",
                worker.join("worker.log").display()
            ),
            None => println!("worker {id}: down"),
        }
    }
    Ok(())
}

fn signal(pid: i32, signal: libc::c_int) {
    // SAFETY: sends a signal to a process id read from our own pid file.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// SIGKILLs a node and returns once it is gone (its ports free for `cluster start`).
fn kill(node: &Path, id: u32) -> Result<(), ToolError> {
    let pid = read_pid(node).ok_or_else(|| fail(format!("no pid file in {}", node.display())))?;
    if !alive(pid) {
        let _ = std::fs::remove_file(node.join("pid"));
        return Err(fail(format!("node {id} (pid {pid}) is not running")));
    }
    signal(pid, libc::SIGKILL);
    let deadline = Instant::now() + NODE_WAIT;
    while alive(pid) {
        if Instant::now() >= deadline {
            return Err(fail(format!("node {id} (pid {pid}) still runs after SIGKILL")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(node.join("pid"));
    println!("node {id} killed");
    Ok(())
}

fn down(dir: &Path) -> Result<(), ToolError> {
    let workers = members(dir, "worker").into_iter().map(|(id, path)| ("worker", id, path));
    let nodes = nodes(dir).into_iter().map(|(id, path)| ("node", id, path));
    for (kind, id, node) in workers.chain(nodes) {
        let Some(pid) = read_pid(&node) else { continue };
        if alive(pid) {
            signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + NODE_WAIT;
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive(pid) {
                signal(pid, libc::SIGKILL);
            }
            println!("{kind} {id} stopped");
        }
        let _ = std::fs::remove_file(node.join("pid"));
    }
    Ok(())
}
