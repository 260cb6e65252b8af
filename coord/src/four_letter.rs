//! Four-letter word replies, in ZooKeeper 3.8's formats (`FourLetterCommands` and the
//! `*Command` classes): pure functions of a [`ServerView`] taken when the word arrives.
//!
//! ```text
//! ruok  imok                                   ; no newline
//! srvr  Zookeeper version: V\n Latency min/avg/max: a/b/c\n Received: n\n Sent: n\n
//!       Connections: n\n Outstanding: n\n Zxid: 0xhex\n Mode: standalone\n Node count: n\n
//! stat  as srvr, with "Clients:\n" + one line per connection + "\n" after the version
//! mntr  zk_<key>\t<value>\n per metric
//! conf  key=value\n per setting          envi  Environment:\n key=value\n ...
//! cons  one line per connection, then \n  wchs  N connections watching M paths\n
//!                                             Total watches:W\n
//! isro  rw | ro (read-only mode) | null (not serving)   dump  sessions and their ephemerals
//! not whitelisted: "<word> is not executed because it is not in the whitelist.\n"
//! ```
//!
//! Node count follows ZooKeeper, whose node map holds the root twice (as `""` and `/`).

use std::fmt::Write as _;

use crate::config::ServerConfig;
use crate::server_stats::ServerStats;
use crate::watch_manager::SessionId;

/// The version `srvr`/`mntr` report: ZooKeeper's protocol level, then zabflow's.
pub const VERSION: &str =
    concat!("3.8.0-zabflow-", env!("CARGO_PKG_VERSION"), ", built on unknown");

/// One connection as `stat`/`cons` show it.
#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub peer: String,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    pub session_id: Option<SessionId>,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub timeout_ms: i32,
}

/// The server's part in its ensemble, as `srvr` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Leader {
        followers: usize,
        synced_followers: usize,
        pending_syncs: usize,
    },
    Follower,
    /// A member without a quorum serving read-only clients (`readonlymode.enabled`).
    ReadOnly,
    /// An ensemble member without an established leader.
    NotServing,
}

impl Mode {
    /// `srvr`'s `Mode:` and `mntr`'s `zk_server_state`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Leader { .. } => "leader",
            Mode::Follower => "follower",
            Mode::ReadOnly => "read-only",
            Mode::NotServing => "not serving",
        }
    }
}

/// What the words report, gathered by the server.
#[derive(Debug, Clone)]
pub struct ServerView<'a> {
    pub config: &'a ServerConfig,
    pub mode: Mode,
    pub stats: &'a ServerStats,
    pub connections: Vec<ConnectionView>,
    pub outstanding: usize,
    pub last_zxid: i64,
    /// Nodes of the tree, the root counted once.
    pub node_count: usize,
    pub watch_count: usize,
    pub watching_sessions: usize,
    pub watched_paths: usize,
    pub ephemerals_count: usize,
    pub approximate_data_size: u64,
    pub sessions: Vec<(SessionId, i32)>,
    pub ephemerals: Vec<(SessionId, Vec<String>)>,
    pub uptime_ms: u64,
}

/// The reply to `word` (`None` for a word zabflow does not answer: the connection closes).
#[must_use]
pub fn reply(word: &str, view: &ServerView<'_>) -> Option<String> {
    if !view.config.four_letter_enabled(word) {
        return Some(format!("{word} is not executed because it is not in the whitelist.\n"));
    }
    if view.mode == Mode::NotServing && !matches!(word, "ruok" | "conf" | "envi" | "isro") {
        return Some("This ZooKeeper instance is not currently serving requests\n".to_owned());
    }
    Some(match word {
        "ruok" => "imok".to_owned(),
        "srvr" => stat(view, false),
        "stat" => stat(view, true),
        "mntr" => monitor(view),
        "conf" => conf(view.config),
        "cons" => cons(view),
        "wchs" => format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            view.watching_sessions, view.watched_paths, view.watch_count
        ),
        "envi" => environment(),
        "isro" => match view.mode {
            Mode::ReadOnly => "ro",
            Mode::NotServing => "null",
            _ => "rw",
        }
        .to_owned(),
        "dump" => dump(view),
        "srst" | "crst" => "Server stats reset.\n".to_owned(),
        _ => return None,
    })
}

fn stat(view: &ServerView<'_>, with_clients: bool) -> String {
    let mut out = format!("Zookeeper version: {VERSION}\n");
    if with_clients {
        out.push_str("Clients:\n");
        for connection in &view.connections {
            let _ = writeln!(out, " {}", connection_brief(connection));
        }
        out.push('\n');
    }
    let stats = view.stats;
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{:?}/{}\nReceived: {}\nSent: {}\nConnections: {}\n\
         Outstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        stats.min_latency_ms(),
        stats.avg_latency_ms(),
        stats.max_latency_ms(),
        stats.packets_received,
        stats.packets_sent,
        view.connections.len(),
        view.outstanding,
        view.last_zxid,
        view.mode.name(),
        view.node_count + 1,
    );
    out
}

fn connection_brief(connection: &ConnectionView) -> String {
    format!(
        "/{}[1](queued={},recved={},sent={})",
        connection.peer, connection.queued, connection.received, connection.sent
    )
}

fn cons(view: &ServerView<'_>) -> String {
    let mut out = String::new();
    for c in &view.connections {
        let session = c.session_id.map_or(String::new(), |id| format!(",sid=0x{id:x}"));
        let _ = writeln!(
            out,
            " /{}[1](queued={},recved={},sent={}{session},lop={},to={},lcxid=0x{:x},lzxid=0x{:x})",
            c.peer, c.queued, c.received, c.sent, c.last_op, c.timeout_ms, c.last_cxid, c.last_zxid
        );
    }
    out.push('\n');
    out
}

fn monitor(view: &ServerView<'_>) -> String {
    let stats = view.stats;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    let rows: [(&str, String); 16] = [
        ("version", VERSION.to_owned()),
        ("avg_latency", format!("{:?}", stats.avg_latency_ms())),
        ("max_latency", stats.max_latency_ms().to_string()),
        ("min_latency", stats.min_latency_ms().to_string()),
        ("packets_received", stats.packets_received.to_string()),
        ("packets_sent", stats.packets_sent.to_string()),
        ("num_alive_connections", view.connections.len().to_string()),
        ("outstanding_requests", view.outstanding.to_string()),
        ("server_state", view.mode.name().to_owned()),
        ("znode_count", (view.node_count + 1).to_string()),
        ("watch_count", view.watch_count.to_string()),
        ("ephemerals_count", view.ephemerals_count.to_string()),
        ("approximate_data_size", view.approximate_data_size.to_string()),
        ("open_file_descriptor_count", fds.to_string()),
        ("max_file_descriptor_count", max_open_files().to_string()),
        ("uptime", view.uptime_ms.to_string()),
    ];
    let mut out: String = rows.iter().map(|(key, value)| format!("zk_{key}\t{value}\n")).collect();
    if let Mode::Leader { followers, synced_followers, pending_syncs } = view.mode {
        for (key, value) in [
            ("learners", followers),
            ("followers", followers),
            ("synced_followers", synced_followers),
            ("synced_non_voting_followers", 0),
            ("synced_observers", 0),
            ("pending_syncs", pending_syncs),
        ] {
            let _ = writeln!(out, "zk_{key}\t{value}");
        }
    }
    out
}

fn max_open_files() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|line| line.starts_with("Max open files"));
    line.and_then(|line| line.split_whitespace().nth(3)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn conf(config: &ServerConfig) -> String {
    let session = config.session_config();
    format!(
        "clientPort={}\nsecureClientPort={}\ndataDir={}\ndataDirSize=0\ndataLogDir={}\n\
         dataLogSize=0\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\n\
         maxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n",
        config.client_port.map_or(-1, i32::from),
        config.secure_client_port.map_or(-1, i32::from),
        config.snapshot_dir().display(),
        config.txn_log_dir().display(),
        config.tick_time_ms,
        config.max_client_cnxns,
        session.negotiate_timeout_ms(0),
        session.negotiate_timeout_ms(i32::MAX),
        config.my_id.unwrap_or(0),
    )
}

fn environment() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let rows = [
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", host.trim().to_owned()),
        ("os.name", std::env::consts::OS.to_owned()),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("user.name", std::env::var("USER").unwrap_or_default()),
        ("user.home", std::env::var("HOME").unwrap_or_default()),
        ("user.dir", dir),
    ];
    let mut out = "Environment:\n".to_owned();
    for (key, value) in rows {
        let _ = writeln!(out, "{key}={value}");
    }
    out
}

fn dump(view: &ServerView<'_>) -> String {
    let mut out = format!("SessionTracker dump:\nGlobal Sessions({}):\n", view.sessions.len());
    for (session_id, timeout_ms) in &view.sessions {
        let _ = writeln!(out, "0x{session_id:x}\t{timeout_ms}ms");
    }
    let _ = writeln!(
        out,
        "ephemeral nodes dump:\nSessions with Ephemerals ({}):",
        view.ephemerals.len()
    );
    for (session_id, paths) in &view.ephemerals {
        let _ = writeln!(out, "0x{session_id:x}:");
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(config: &ServerConfig, stats: &ServerStats) -> ServerView<'static> {
        let config: &'static ServerConfig = Box::leak(Box::new(config.clone()));
        let stats: &'static ServerStats = Box::leak(Box::new(stats.clone()));
        ServerView {
            config,
            mode: Mode::Standalone,
            stats,
            connections: Vec::new(),
            outstanding: 0,
            last_zxid: 0x12,
            node_count: 4,
            watch_count: 0,
            watching_sessions: 0,
            watched_paths: 0,
            ephemerals_count: 0,
            approximate_data_size: 0,
            sessions: Vec::new(),
            ephemerals: Vec::new(),
            uptime_ms: 1,
        }
    }

    #[test]
    fn srvr_matches_zookeeper_layout() {
        let (config, _) = ServerConfig::parse("dataDir=/d\n").unwrap();
        let text = reply("srvr", &view(&config, &ServerStats::default())).unwrap();
        assert!(text.starts_with("Zookeeper version: 3.8.0"));
        assert!(text.contains("Latency min/avg/max: 0/0.0/0\n"));
        assert!(text.contains("Zxid: 0x12\nMode: standalone\nNode count: 5\n"));
        let refused = reply("ruok", &view(&config, &ServerStats::default())).unwrap();
        assert_eq!(refused, "ruok is not executed because it is not in the whitelist.\n");
    }

    #[test]
    fn mntr_keys() {
        let (config, _) = ServerConfig::parse("dataDir=/d\n4lw.commands.whitelist=*\n").unwrap();
        let text = reply("mntr", &view(&config, &ServerStats::default())).unwrap();
        assert!(text.contains("zk_server_state\tstandalone\n"));
        assert!(text.contains("zk_znode_count\t5\n"));
        assert_eq!(reply("ruok", &view(&config, &ServerStats::default())).unwrap(), "imok");
    }

    #[test]
    fn isro_and_the_read_only_mode() {
        let (config, _) = ServerConfig::parse("dataDir=/d\n4lw.commands.whitelist=*\n").unwrap();
        let stats = ServerStats::default();
        let in_mode =
            |mode: Mode, word: &str| reply(word, &ServerView { mode, ..view(&config, &stats) });
        assert_eq!(in_mode(Mode::Standalone, "isro").unwrap(), "rw");
        assert_eq!(in_mode(Mode::Follower, "isro").unwrap(), "rw");
        assert_eq!(in_mode(Mode::ReadOnly, "isro").unwrap(), "ro");
        assert_eq!(in_mode(Mode::NotServing, "isro").unwrap(), "null");
        assert!(in_mode(Mode::ReadOnly, "srvr").unwrap().contains("\nMode: read-only\n"));
        let mntr = in_mode(Mode::ReadOnly, "mntr").unwrap();
        assert!(mntr.contains("zk_server_state\tread-only\n"), "{mntr}");
    }
}
