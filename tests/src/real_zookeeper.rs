//! `RealZooKeeper`: a real Apache ZooKeeper 3.8 (the Debian package `zookeeper`), started from
//! its jars on loopback, for differential tests and for benchmarks that compare against it.
//!
//! The harness owns everything it starts: a temp dir holding one directory per node
//! (`zoo.cfg`, `log4j.properties`, `data/myid`, `zookeeper.log`), and one JVM per node whose
//! PID it records. [`RealZooKeeper::stop`] sends SIGTERM and SIGKILL after
//! [`STOP_TIMEOUT`]; dropping the harness stops every node and removes the temp dir. Each JVM
//! also gets `PR_SET_PDEATHSIG`, from a spawner thread that lives as long as the process, so a
//! test process that dies or exits without dropping the harness takes its servers with it.
//!
//! Nothing is skipped quietly: when ZooKeeper is missing and cannot be installed (installing
//! needs root and `apt-get`), every constructor returns a [`HarnessError`] that says how to
//! install it, and callers are expected to fail with it.
//!
//! The configuration is the one the project compares against (see the notes on real
//! ZooKeeper): `tickTime=2000 initLimit=10 syncLimit=5`, loopback client address,
//! `maxClientCnxns=0`, no admin server, every four-letter word, `extendedTypesEnabled=true`,
//! `forceSync=yes`; an ensemble adds `standaloneEnabled=false` and `server.N` lines.

use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub use zabflow_net::client::four_letter_word;

/// How to install the reference server, quoted by every "not installed" error.
pub const INSTALL_HINT: &str = "install Apache ZooKeeper 3.8 with \
    `sudo apt-get update && sudo apt-get install -y zookeeper` (Debian/Ubuntu package \
    `zookeeper`, which pulls in `libzookeeper-java` and a JRE)";

/// How long a node may take from `java` to serving (`srvr` reports a mode).
pub const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a node may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// JVM heap of each node, in MiB (`-Xms` and `-Xmx`), as the project's comparisons use.
pub const HEAP_MIB_DEFAULT: u32 = 1024;
/// Most nodes an ensemble may have.
pub const ENSEMBLE_NODES_MAX: usize = 7;
/// Lines of a node's log quoted in a start-up error.
const LOG_TAIL_LINES: usize = 40;
/// Pause between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// A harness failure, with a message that says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessError(pub String);

impl fmt::Display for HarnessError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

/// Result of a harness operation.
pub type HarnessResult<T> = Result<T, HarnessError>;

fn harness_error(context: &str, error: impl fmt::Display) -> HarnessError {
    HarnessError(format!("{context}: {error}"))
}

/// Where the installed ZooKeeper lives: the server classpath and the `java` to run it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// `zookeeper.jar`, `slf4j-log4j12.jar` and `log4j-1.2.jar`, joined with `:`.
    pub classpath: String,
    /// The directory of the jars (also holds `slf4j-nop.jar` for client tools).
    pub jar_dir: PathBuf,
}

/// Makes sure the `zookeeper` package is installed, installing it with `apt-get` when this
/// process is root, and finds its jars.
///
/// # Errors
/// When it is missing and cannot be installed, or its jars or `java` cannot be found; the
/// message quotes [`INSTALL_HINT`].
pub fn ensure_installed() -> HarnessResult<Installation> {
    static INSTALLED: OnceLock<HarnessResult<Installation>> = OnceLock::new();
    INSTALLED.get_or_init(install_and_locate).clone()
}

fn install_and_locate() -> HarnessResult<Installation> {
    if !package_installed("zookeeper") {
        install_package()?;
    }
    if !command_succeeds(Command::new("java").arg("-version")) {
        return Err(HarnessError(format!("`java` is not on PATH; {INSTALL_HINT}")));
    }
    locate_jars()
}

fn command_succeeds(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn package_installed(package: &str) -> bool {
    let output = Command::new("dpkg-query").args(["-W", "-f=${Status}", package]).output();
    output.is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("install ok"))
}

fn install_package() -> HarnessResult<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        return Err(HarnessError(format!(
            "ZooKeeper is not installed and this is not root; {INSTALL_HINT}"
        )));
    }
    let script =
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper";
    let output = Command::new("sh").args(["-c", script]).output();
    let output = output.map_err(|error| harness_error("cannot run apt-get", error))?;
    if output.status.success() && package_installed("zookeeper") {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(HarnessError(format!("`apt-get install -y zookeeper` failed ({stderr}); {INSTALL_HINT}")))
}

fn locate_jars() -> HarnessResult<Installation> {
    let output = Command::new("dpkg").args(["-L", "libzookeeper-java"]).output();
    let output = output.map_err(|error| harness_error("cannot run dpkg -L", error))?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let server_jar = listing
        .lines()
        .map(Path::new)
        .find(|path| path.file_name().is_some_and(|name| name == "zookeeper.jar"))
        .ok_or_else(|| {
            HarnessError(format!("libzookeeper-java lists no zookeeper.jar; {INSTALL_HINT}"))
        })?;
    let jar_dir = server_jar.parent().unwrap_or(Path::new("/")).to_path_buf();
    let jars = ["zookeeper.jar", "slf4j-log4j12.jar", "log4j-1.2.jar"].map(|jar| jar_dir.join(jar));
    if let Some(missing) = jars.iter().find(|jar| !jar.exists()) {
        return Err(HarnessError(format!("{} is missing; {INSTALL_HINT}", missing.display())));
    }
    let classpath = jars.iter().map(|jar| jar.display().to_string()).collect::<Vec<_>>();
    Ok(Installation { classpath: classpath.join(":"), jar_dir })
}

/// How to start a [`RealZooKeeper`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperOptions {
    /// 1 for standalone mode; more for an ensemble on loopback.
    pub nodes: usize,
    /// `-Xms`/`-Xmx` of each JVM, in MiB.
    pub heap_mib: u32,
    /// The directory to create the temp dir in (the disk under test); the system's temp dir
    /// when `None`.
    pub parent_dir: Option<PathBuf>,
    /// Extra `key=value` lines for every `zoo.cfg`, after the defaults.
    pub extra_config: Vec<(String, String)>,
    /// Extra JVM system properties of every node, as `(name, value)` (`-Dname=value`), e.g.
    /// `readonlymode.enabled`, which ZooKeeper reads only from the JVM.
    pub system_properties: Vec<(String, String)>,
    /// Also serve TLS on a `secureClientPort` of each node, with the Netty connection
    /// factory (whose jars Debian's `zookeeper.jar` manifest partly lacks: they are added
    /// to the classpath). The `ssl.*` keys come in `extra_config`.
    pub secure: bool,
}

impl ZooKeeperOptions {
    /// A 3-node ensemble that serves read-only clients when cut off from its quorum, as
    /// kazoo's harness starts it: `readonlymode.enabled` and local sessions.
    #[must_use]
    pub fn read_only_ensemble() -> ZooKeeperOptions {
        ZooKeeperOptions {
            nodes: 3,
            extra_config: vec![
                ("localSessionsEnabled".into(), "true".into()),
                ("localSessionsUpgradingEnabled".into(), "true".into()),
            ],
            system_properties: vec![("readonlymode.enabled".into(), "true".into())],
            ..ZooKeeperOptions::default()
        }
    }
}

/// Netty jars the Netty connection factory needs beyond `zookeeper.jar`'s manifest.
const NETTY_JARS: [&str; 3] =
    ["netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar"];

impl Default for ZooKeeperOptions {
    fn default() -> Self {
        ZooKeeperOptions {
            nodes: 1,
            heap_mib: HEAP_MIB_DEFAULT,
            parent_dir: None,
            extra_config: Vec::new(),
            system_properties: Vec::new(),
            secure: false,
        }
    }
}

/// One node: its ports, its directory, and its JVM while it runs.
#[derive(Debug)]
struct Node {
    id: usize,
    client_port: u16,
    /// `secureClientPort`, when the options ask for TLS.
    secure_client_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running real ZooKeeper, standalone or an ensemble, stopped and deleted on drop.
#[derive(Debug)]
pub struct RealZooKeeper {
    installation: Installation,
    options: ZooKeeperOptions,
    nodes: Vec<Node>,
    dir: Option<tempfile::TempDir>,
}

impl RealZooKeeper {
    /// Starts a standalone server with the default options and waits until it serves.
    ///
    /// # Errors
    /// As [`RealZooKeeper::start_with`].
    pub fn start_standalone() -> HarnessResult<Self> {
        Self::start_with(ZooKeeperOptions::default())
    }

    /// Starts an ensemble of `nodes` servers on loopback and waits until each serves.
    ///
    /// # Errors
    /// As [`RealZooKeeper::start_with`].
    pub fn start_ensemble(nodes: usize) -> HarnessResult<Self> {
        Self::start_with(ZooKeeperOptions { nodes, ..ZooKeeperOptions::default() })
    }

    /// Installs ZooKeeper if needed, writes each node's configuration into a new temp dir,
    /// starts every node and waits until each answers `ruok` with `imok` and reports a mode.
    ///
    /// # Errors
    /// ZooKeeper missing and not installable, a file that cannot be written, a JVM that
    /// cannot start or does not serve within [`START_TIMEOUT`] (its log tail is quoted).
    ///
    /// # Panics
    /// If `options.nodes` is 0 or above [`ENSEMBLE_NODES_MAX`].
    pub fn start_with(options: ZooKeeperOptions) -> HarnessResult<Self> {
        assert!((1..=ENSEMBLE_NODES_MAX).contains(&options.nodes), "bad node count");
        let installation = ensure_installed()?;
        let dir = match &options.parent_dir {
            Some(parent) => tempfile::Builder::new().prefix("zookeeper-").tempdir_in(parent),
            None => tempfile::Builder::new().prefix("zookeeper-").tempdir(),
        };
        let dir = dir.map_err(|error| harness_error("cannot create a temp dir", error))?;
        let secure_ports = if options.secure { options.nodes } else { 0 };
        let ports = crate::ports::free_loopback_ports(options.nodes * 3 + secure_ports)
            .map_err(|error| harness_error("cannot find free ports", error))?;
        let nodes = (0..options.nodes)
            .map(|index| Node {
                id: index + 1,
                client_port: ports[index * 3],
                secure_client_port: options.secure.then(|| ports[options.nodes * 3 + index]),
                dir: dir.path().join(format!("node{}", index + 1)),
                child: None,
            })
            .collect::<Vec<_>>();
        let mut server = RealZooKeeper { installation, options, nodes, dir: Some(dir) };
        let servers = server.server_lines(&ports);
        for index in 0..server.nodes.len() {
            server.write_node_files(index, &servers)?;
        }
        for index in 0..server.nodes.len() {
            server.spawn(index)?;
        }
        for index in 0..server.nodes.len() {
            server.wait_serving(index)?;
        }
        Ok(server)
    }

    /// `server.N=127.0.0.1:QUORUM:ELECTION` lines, empty for standalone.
    fn server_lines(&self, ports: &[u16]) -> String {
        if self.nodes.len() == 1 {
            return String::new();
        }
        let mut lines = String::from("standaloneEnabled=false\n");
        for node in &self.nodes {
            let (quorum, election) = (ports[(node.id - 1) * 3 + 1], ports[(node.id - 1) * 3 + 2]);
            lines.push_str(&format!("server.{}=127.0.0.1:{quorum}:{election}\n", node.id));
        }
        lines
    }

    fn write_node_files(&self, index: usize, servers: &str) -> HarnessResult<()> {
        let node = &self.nodes[index];
        let data_dir = node.dir.join("data");
        fs::create_dir_all(&data_dir)
            .map_err(|error| harness_error("cannot create a data dir", error))?;
        let mut config = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
             clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\nforceSync=yes\n{servers}",
            data_dir.display(),
            node.client_port,
        );
        if let Some(port) = node.secure_client_port {
            config.push_str(&format!(
                "secureClientPort={port}\n\
                 serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
            ));
        }
        for (key, value) in &self.options.extra_config {
            config.push_str(&format!("{key}={value}\n"));
        }
        let log4j = format!(
            "log4j.rootLogger=INFO, FILE\n\
             log4j.appender.FILE=org.apache.log4j.FileAppender\n\
             log4j.appender.FILE.File={}\n\
             log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t] %c{{1}} - %m%n\n",
            node.dir.join("zookeeper.log").display()
        );
        let files = [
            (node.dir.join("zoo.cfg"), config),
            (node.dir.join("log4j.properties"), log4j),
            (data_dir.join("myid"), format!("{}\n", node.id)),
        ];
        for (path, contents) in files {
            fs::write(&path, contents).map_err(|error| {
                harness_error(&format!("cannot write {}", path.display()), error)
            })?;
        }
        Ok(())
    }

    fn spawn(&mut self, index: usize) -> HarnessResult<()> {
        let node = &self.nodes[index];
        assert!(node.child.is_none(), "node {} is already running", node.id);
        let heap = self.options.heap_mib;
        let mut classpath = self.installation.classpath.clone();
        if self.options.secure {
            for jar in NETTY_JARS {
                classpath.push_str(&format!(":{}", self.installation.jar_dir.join(jar).display()));
            }
        }
        let mut command = Command::new("java");
        command
            .arg(format!("-Xms{heap}m"))
            .arg(format!("-Xmx{heap}m"))
            .arg(format!(
                "-Dlog4j.configuration=file:{}",
                node.dir.join("log4j.properties").display()
            ))
            .arg("-Dzookeeper.log.dir=".to_owned() + &node.dir.display().to_string())
            .args(
                self.options
                    .system_properties
                    .iter()
                    .map(|(name, value)| format!("-D{name}={value}")),
            )
            .arg("-cp")
            .arg(&classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(node.dir.join("zoo.cfg"))
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_tied_to_process(command)
            .map_err(|error| harness_error("cannot start java", error))?;
        self.nodes[index].child = Some(child);
        Ok(())
    }

    fn wait_serving(&mut self, index: usize) -> HarnessResult<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = self.client_address(index);
        loop {
            let exited =
                self.nodes[index].child.as_mut().and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.nodes[index].child = None;
                return Err(self.start_failure(index, &format!("exited with {status}")));
            }
            let ruok = four_letter_word(address, "ruok").unwrap_or_default();
            let srvr = four_letter_word(address, "srvr").unwrap_or_default();
            if ruok == "imok" && srvr.contains("Mode: ") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.start_failure(index, "did not serve in time"));
            }
            thread::sleep(PROBE_INTERVAL);
        }
    }

    fn start_failure(&self, index: usize, what: &str) -> HarnessError {
        let log =
            fs::read_to_string(self.nodes[index].dir.join("zookeeper.log")).unwrap_or_default();
        let lines = log.lines().collect::<Vec<_>>();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        HarnessError(format!("ZooKeeper node {} {what}; its log ends with:\n{tail}", index + 1))
    }

    /// The client address of node `index` (0-based).
    ///
    /// # Panics
    /// If `index` is not a node of this ensemble.
    #[must_use]
    pub fn client_address(&self, index: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[index].client_port))
    }

    /// The TLS client address of node `index`, when the options asked for TLS.
    #[must_use]
    pub fn secure_client_address(&self, index: usize) -> Option<SocketAddr> {
        let port = self.nodes[index].secure_client_port?;
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// `host:port,host:port,…` of every node, the form ZooKeeper clients take.
    #[must_use]
    pub fn connect_string(&self) -> String {
        let addresses = (0..self.nodes.len()).map(|index| self.client_address(index).to_string());
        addresses.collect::<Vec<_>>().join(",")
    }

    /// Number of nodes.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The PID of node `index`'s JVM while it runs.
    #[must_use]
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.nodes[index].child.as_ref().map(Child::id)
    }

    /// The data dir of node `index` (`dataDir` of its `zoo.cfg`).
    #[must_use]
    pub fn data_dir(&self, index: usize) -> PathBuf {
        self.nodes[index].dir.join("data")
    }

    /// The jars' directory and server classpath.
    #[must_use]
    pub fn installation(&self) -> &Installation {
        &self.installation
    }

    /// Sends a four-letter word to node `index` and returns the answer.
    ///
    /// # Errors
    /// When the node cannot be reached.
    pub fn four_letter_word(&self, index: usize, word: &str) -> HarnessResult<String> {
        four_letter_word(self.client_address(index), word)
            .map_err(|error| harness_error(&format!("{word} to node {}", index + 1), error))
    }

    /// Stops node `index`: SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]. Its data stays.
    pub fn stop(&mut self, index: usize) {
        if let Some(child) = self.nodes[index].child.take() {
            stop_child(child, libc::SIGTERM, STOP_TIMEOUT);
        }
    }

    /// Kills node `index` with SIGKILL at once. Its data stays.
    pub fn kill(&mut self, index: usize) {
        if let Some(child) = self.nodes[index].child.take() {
            stop_child(child, libc::SIGKILL, STOP_TIMEOUT);
        }
    }

    /// Starts a stopped node `index` again on the same ports and data dir, and waits until
    /// it serves (for an ensemble node, until it has joined a quorum).
    ///
    /// # Errors
    /// As [`RealZooKeeper::start_with`].
    pub fn start(&mut self, index: usize) -> HarnessResult<()> {
        self.spawn(index)?;
        self.wait_serving(index)
    }
}

impl Drop for RealZooKeeper {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.stop(index);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Sends `signal` to `child`, then SIGKILL if it has not exited after `timeout`, and reaps it.
fn stop_child(mut child: Child, signal: i32, timeout: Duration) {
    let Ok(pid) = i32::try_from(child.id()) else {
        return;
    };
    // SAFETY: `pid` is our own unreaped child, so the PID cannot name another process.
    unsafe { libc::kill(pid, signal) };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` with `PR_SET_PDEATHSIG = SIGKILL` from a thread that lives until the
/// process exits: the death signal follows the spawning *thread*, and test threads end early.
pub fn spawn_tied_to_process(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("process-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in receiver {
                    let _ = reply.send(spawn_with_death_signal(&mut command));
                }
            })
            .expect("spawn the process-spawner thread");
        Mutex::new(sender)
    });
    let (reply, result) = mpsc::channel();
    let sent =
        spawner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send((command, reply));
    sent.map_err(|_| std::io::Error::other("process-spawner thread is gone"))?;
    result.recv().map_err(|_| std::io::Error::other("process-spawner thread is gone"))?
}

fn spawn_with_death_signal(command: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// A standalone server shared by every test of one test binary, started on first use and
/// stopped (its temp dir removed) when the process exits.
///
/// # Errors
/// As [`RealZooKeeper::start_with`]; a failed start is reported to every caller.
pub fn shared_standalone() -> HarnessResult<String> {
    static SHARED: Mutex<Option<HarnessResult<RealZooKeeper>>> = Mutex::new(None);
    extern "C" fn stop_shared() {
        let taken = SHARED.lock().map(|mut shared| shared.take());
        drop(taken);
    }
    let mut shared = SHARED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if shared.is_none() {
        *shared = Some(RealZooKeeper::start_standalone());
        // SAFETY: registering a plain `extern "C"` function with atexit has no preconditions.
        unsafe { libc::atexit(stop_shared) };
    }
    match shared.as_ref() {
        Some(Ok(server)) => Ok(server.connect_string()),
        Some(Err(error)) => Err(error.clone()),
        None => unreachable!("initialised above"),
    }
}
