//! `ServerConfig`: a ZooKeeper `zoo.cfg`, read as is.
//!
//! ```text
//! zoo.cfg  = line*
//! line     = blank | comment | entry
//! comment  = ("#" | "!") text                  ; Java properties comments
//! entry    = key ws* ("=" | ":" | ws) ws* value  ; key and value trimmed
//! server.N = host ":" quorum-port ":" election-port [":" role] [";" client-address]
//! ```
//!
//! The keys ZooKeeper's `QuorumPeerConfig` reads for a standalone server are understood, plus
//! four that ZooKeeper takes from JVM system properties (`jute.maxbuffer`,
//! `znode.container.checkIntervalMs`, `zookeeper.DigestAuthenticationProvider.superDigest`,
//! `readonlymode.enabled`), so that one file configures zabflow and a comparison run alike.
//! An unknown key is a warning (returned, for the caller to print), never an error; a known
//! key with a bad value is an error naming the line. `server.N` lines and `dataDir/myid` are
//! kept for replication.
//!
//! ZooKeeper's system properties can also be given as such ([`SYSTEM_PROPERTIES`], the
//! `-Dkey=value` arguments of `zabflow node`): they are applied before the file, so a zoo.cfg
//! line wins over a property, as in ZooKeeper, which turns zoo.cfg's unknown keys into system
//! properties after the JVM started. A property zabflow does not use is a warning.
//!
//! ```text
//! property = "-D" name ["=" value]            ; from arguments, SERVER_JVMFLAGS, JVMFLAGS
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use zabflow_net::constants::{PACKET_BYTES_MAX_DEFAULT, PACKET_BYTES_MAX_LIMIT};

use crate::constants::{
    CLIENT_PORT_DEFAULT, CONTAINER_CHECK_INTERVAL_MS_DEFAULT, MAX_CLIENT_CNXNS_DEFAULT,
    SESSION_TIMEOUT_TICKS_MAX, SESSION_TIMEOUT_TICKS_MIN, SNAP_COUNT_DEFAULT,
    SNAP_RETAIN_COUNT_MIN, TICK_TIME_MS_DEFAULT,
};
use crate::error::{Error, Result};
use crate::keystore::{StoreConfig, StoreType};
use crate::reconfig::ReconfigConfig;
use crate::session_tracker::SessionConfig;
use crate::tls::{ClientAuth, TlsConfig};

/// One `server.N` line of an ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    /// The text after the ports (`participant`, `observer`, `;client-address`), kept as is.
    pub rest: String,
}

/// Everything zabflow reads from a `zoo.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub tick_time_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    /// `dataLogDir`; `None` puts the txn log under `dataDir`.
    pub data_log_dir: Option<PathBuf>,
    /// `clientPort`: the plain port. `None` when only `secureClientPort` is set (with
    /// neither set, the default port 2181).
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    /// `secureClientPort`: the TLS port, configured by `tls`.
    pub secure_client_port: Option<u16>,
    pub secure_client_port_address: Option<IpAddr>,
    /// The `ssl.*` settings of the secure port.
    pub tls: TlsConfig,
    /// Connections per client IP; 0 is unlimited.
    pub max_client_cnxns: u32,
    pub min_session_timeout_ms: Option<u32>,
    pub max_session_timeout_ms: Option<u32>,
    pub snap_count: u64,
    /// `forceSync`: fdatasync each group of txns before acknowledging it.
    pub force_sync: bool,
    pub snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours; 0 disables purging.
    pub purge_interval_hours: u32,
    /// Enabled four-letter words; `srvr` is always on, as in ZooKeeper.
    pub four_letter_whitelist: BTreeSet<String>,
    pub extended_types_enabled: bool,
    /// `reconfigEnabled`: reconfig requests are checked (zabflow still makes no change).
    pub reconfig_enabled: bool,
    /// `standaloneEnabled`: what a reconfig may leave, as in ZooKeeper (one voter or two).
    pub standalone_enabled: bool,
    pub packet_bytes_max: usize,
    pub container_check_interval_ms: u64,
    pub super_digest: Option<String>,
    /// `readonlymode.enabled`: a member cut off from its quorum serves read-only clients.
    pub read_only_mode_enabled: bool,
    /// `localSessionsEnabled`: sessions a read-only server creates are local to it (without
    /// them, as in ZooKeeper 3.8, a read-only server creates no session).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled` (read and shown; zabflow's read-write sessions are
    /// always global, as if every local session were upgraded at once).
    pub local_sessions_upgrading_enabled: bool,
    pub peers: Vec<PeerConfig>,
    /// `dataDir/myid`, when present.
    pub my_id: Option<u64>,
}

/// Every word ZooKeeper's `FourLetterCommands` knows, for `4lw.commands.whitelist=*`.
const FOUR_LETTER_WORDS: [&str; 19] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "icfg", "sysp",
];

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tick_time_ms: TICK_TIME_MS_DEFAULT,
            init_limit: 10,
            sync_limit: 5,
            data_dir: PathBuf::new(),
            data_log_dir: None,
            client_port: None,
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            tls: TlsConfig::default(),
            max_client_cnxns: MAX_CLIENT_CNXNS_DEFAULT,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            snap_count: SNAP_COUNT_DEFAULT,
            force_sync: true,
            snap_retain_count: SNAP_RETAIN_COUNT_MIN,
            purge_interval_hours: 0,
            four_letter_whitelist: BTreeSet::from(["srvr".to_owned()]),
            extended_types_enabled: false,
            reconfig_enabled: false,
            standalone_enabled: true,
            packet_bytes_max: PACKET_BYTES_MAX_DEFAULT,
            container_check_interval_ms: CONTAINER_CHECK_INTERVAL_MS_DEFAULT,
            super_digest: None,
            read_only_mode_enabled: false,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            peers: Vec::new(),
            my_id: None,
        }
    }
}

/// ZooKeeper's JVM system properties that zabflow reads, and the zoo.cfg key each sets.
pub const SYSTEM_PROPERTIES: [(&str, &str); 19] = [
    ("readonlymode.enabled", "readonlymode.enabled"),
    (
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "zookeeper.DigestAuthenticationProvider.superDigest",
    ),
    ("jute.maxbuffer", "jute.maxbuffer"),
    ("znode.container.checkIntervalMs", "znode.container.checkIntervalMs"),
    ("zookeeper.extendedTypesEnabled", "extendedTypesEnabled"),
    ("zookeeper.4lw.commands.whitelist", "4lw.commands.whitelist"),
    ("zookeeper.snapCount", "snapCount"),
    ("zookeeper.forceSync", "forceSync"),
    // X509Util reads the TLS settings from ZKConfig: zoo.cfg keys or these properties.
    ("zookeeper.serverCnxnFactory", "serverCnxnFactory"),
    ("zookeeper.ssl.keyStore.location", "ssl.keyStore.location"),
    ("zookeeper.ssl.keyStore.password", "ssl.keyStore.password"),
    ("zookeeper.ssl.keyStore.type", "ssl.keyStore.type"),
    ("zookeeper.ssl.trustStore.location", "ssl.trustStore.location"),
    ("zookeeper.ssl.trustStore.password", "ssl.trustStore.password"),
    ("zookeeper.ssl.trustStore.type", "ssl.trustStore.type"),
    ("zookeeper.ssl.clientAuth", "ssl.clientAuth"),
    ("zookeeper.ssl.protocol", "ssl.protocol"),
    ("zookeeper.ssl.enabledProtocols", "ssl.enabledProtocols"),
    ("zookeeper.ssl.ciphersuites", "ssl.ciphersuites"),
];

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, Copy)]
enum Place<'a> {
    /// A zoo.cfg line (1-based).
    Line(usize),
    /// A `-D` system property, by name.
    Property(&'a str),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Line(line) => write!(formatter, "line {line}"),
            Place::Property(name) => write!(formatter, "system property {name}"),
        }
    }
}

/// Splits a `-D` argument's text (`name=value`, the `-D` already removed) into name and
/// value; a name without `=` has the empty value, as in Java.
#[must_use]
pub fn split_system_property(text: &str) -> (String, String) {
    let (name, value) = text.split_once('=').unwrap_or((text, ""));
    (name.trim().to_owned(), value.trim().to_owned())
}

/// A bad value: names the line so the operator can fix it.
fn bad(line: Place<'_>, key: &str, value: &str, why: &str) -> Error {
    Error::Config(format!("{line}: {key}={value}: {why}"))
}

fn number<T: std::str::FromStr>(line: Place<'_>, key: &str, value: &str) -> Result<T> {
    value.parse().map_err(|_| bad(line, key, value, "not a number in range"))
}

fn boolean(line: Place<'_>, key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(bad(line, key, value, "expected yes/no or true/false")),
    }
}

/// Splits a properties line into key and value; `None` for blanks and comments.
fn split_entry(text: &str) -> Option<(&str, &str)> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') || text.starts_with('!') {
        return None;
    }
    let end = text.find(|c: char| c == '=' || c == ':' || c.is_whitespace()).unwrap_or(text.len());
    let key = &text[..end];
    let rest = text[end..].trim_start();
    let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest).trim();
    Some((key, rest))
}

fn parse_peer(line: Place<'_>, key: &str, value: &str) -> Result<PeerConfig> {
    let id = number(line, key, &key["server.".len()..])?;
    let (address, client) = value.split_once(';').unwrap_or((value, ""));
    let mut parts = address.split(':');
    let host = parts.next().unwrap_or_default().to_owned();
    let quorum_port = number(line, key, parts.next().unwrap_or_default())?;
    let election_port = number(line, key, parts.next().unwrap_or_default())?;
    let mut rest: String = parts.collect::<Vec<_>>().join(":");
    if !client.is_empty() {
        let _ = write!(rest, ";{client}");
    }
    Ok(PeerConfig { id, host, quorum_port, election_port, rest })
}

impl ServerConfig {
    /// Reads `path` and `dataDir/myid`. Returns the config and the warnings to print.
    ///
    /// # Errors
    /// [`Error::Config`] for an unreadable file, a bad value or a missing `dataDir`.
    pub fn load(path: &Path) -> Result<(ServerConfig, Vec<String>)> {
        ServerConfig::load_with_properties(path, &[])
    }

    /// Reads `path` and `dataDir/myid` over ZooKeeper system properties (`(name, value)`,
    /// see [`SYSTEM_PROPERTIES`]). Returns the config and the warnings to print.
    ///
    /// # Errors
    /// As [`ServerConfig::load`], and a known property with a bad value.
    pub fn load_with_properties(
        path: &Path,
        properties: &[(String, String)],
    ) -> Result<(ServerConfig, Vec<String>)> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Error::Config(format!("cannot read {}: {error}", path.display())))?;
        let (mut config, warnings) = ServerConfig::parse_with_properties(&text, properties)?;
        config.my_id = read_my_id(&config.data_dir)?;
        Ok((config, warnings))
    }

    /// Parses zoo.cfg text (without reading `myid`).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad value or a missing `dataDir`.
    pub fn parse(text: &str) -> Result<(ServerConfig, Vec<String>)> {
        ServerConfig::parse_with_properties(text, &[])
    }

    /// Parses zoo.cfg text over system properties (applied first: the file wins).
    ///
    /// # Errors
    /// As [`ServerConfig::parse`], and a known property with a bad value.
    pub fn parse_with_properties(
        text: &str,
        properties: &[(String, String)],
    ) -> Result<(ServerConfig, Vec<String>)> {
        let mut config = ServerConfig::default();
        let mut warnings = Vec::new();
        for (name, value) in properties {
            match SYSTEM_PROPERTIES.iter().find(|(property, _)| property == name) {
                Some((_, key)) => {
                    config.set(Place::Property(name), key, value)?;
                }
                None => warnings.push(format!("system property {name} ignored (not used)")),
            }
        }
        for (index, raw) in text.lines().enumerate() {
            let Some((key, value)) = split_entry(raw) else { continue };
            if !config.set(Place::Line(index + 1), key, value)? {
                warnings.push(format!("zoo.cfg line {}: unknown setting {key} ignored", index + 1));
            }
        }
        if config.data_dir.as_os_str().is_empty() {
            return Err(Error::Config("dataDir is not set".to_owned()));
        }
        config.check()?;
        Ok((config, warnings))
    }

    /// Applies one entry; false when the key is unknown.
    fn set(&mut self, line: Place<'_>, key: &str, value: &str) -> Result<bool> {
        match key {
            "tickTime" => self.tick_time_ms = number(line, key, value)?,
            "initLimit" => self.init_limit = number(line, key, value)?,
            "syncLimit" => self.sync_limit = number(line, key, value)?,
            "dataDir" => self.data_dir = PathBuf::from(value),
            "dataLogDir" => self.data_log_dir = Some(PathBuf::from(value)),
            "clientPort" => self.client_port = Some(number(line, key, value)?),
            "clientPortAddress" => self.client_port_address = Some(number(line, key, value)?),
            "maxClientCnxns" => self.max_client_cnxns = number(line, key, value)?,
            "minSessionTimeout" => self.min_session_timeout_ms = positive(line, key, value)?,
            "maxSessionTimeout" => self.max_session_timeout_ms = positive(line, key, value)?,
            "snapCount" => self.snap_count = number(line, key, value)?,
            "forceSync" => self.force_sync = boolean(line, key, value)?,
            "autopurge.snapRetainCount" => self.snap_retain_count = number(line, key, value)?,
            "autopurge.purgeInterval" => self.purge_interval_hours = number(line, key, value)?,
            "4lw.commands.whitelist" => self.four_letter_whitelist = whitelist(value),
            "extendedTypesEnabled" => self.extended_types_enabled = boolean(line, key, value)?,
            "reconfigEnabled" => self.reconfig_enabled = boolean(line, key, value)?,
            "standaloneEnabled" => self.standalone_enabled = boolean(line, key, value)?,
            "jute.maxbuffer" | "juteMaxBuffer" => self.packet_bytes_max = max_buffer(line, value)?,
            "znode.container.checkIntervalMs" => {
                self.container_check_interval_ms = number(line, key, value)?;
            }
            "zookeeper.DigestAuthenticationProvider.superDigest" | "superDigest" => {
                self.super_digest = Some(value.to_owned());
            }
            "readonlymode.enabled" => self.read_only_mode_enabled = boolean(line, key, value)?,
            "localSessionsEnabled" => self.local_sessions_enabled = boolean(line, key, value)?,
            "localSessionsUpgradingEnabled" => {
                self.local_sessions_upgrading_enabled = boolean(line, key, value)?;
            }
            "secureClientPort" => self.secure_client_port = Some(number(line, key, value)?),
            "secureClientPortAddress" => {
                self.secure_client_port_address = Some(number(line, key, value)?);
            }
            // zabflow has one connection layer, serving both ports like Netty's factory.
            "serverCnxnFactory" => {}
            _ if key.starts_with("ssl.") && !key.starts_with("ssl.quorum.") => {
                return self.set_tls(line, key, value);
            }
            _ if key.starts_with("server.") => self.peers.push(parse_peer(line, key, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies one `ssl.*` entry; false when the key is unknown.
    fn set_tls(&mut self, line: Place<'_>, key: &str, value: &str) -> Result<bool> {
        let tls = &mut self.tls;
        let field = &key["ssl.".len()..];
        if let Some(field) = field.strip_prefix("keyStore.") {
            return set_store(&mut tls.key_store, line, key, field, value);
        }
        if let Some(field) = field.strip_prefix("trustStore.") {
            return set_store(&mut tls.trust_store, line, key, field, value);
        }
        match field {
            "clientAuth" => {
                tls.client_auth = ClientAuth::from_name(value)
                    .ok_or_else(|| bad(line, key, value, "expected need, want or none"))?;
            }
            "protocol" => tls.protocol = Some(value.to_owned()),
            "enabledProtocols" => {
                let names = value.split(',').map(str::trim).filter(|name| !name.is_empty());
                tls.enabled_protocols = Some(names.map(str::to_owned).collect());
            }
            "ciphersuites" => tls.cipher_suites = Some(value.to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn check(&mut self) -> Result<()> {
        if self.tick_time_ms == 0 {
            return Err(Error::Config("tickTime must be positive".to_owned()));
        }
        if self.snap_count < 2 {
            return Err(Error::Config("snapCount must be at least 2".to_owned()));
        }
        if self.client_port.is_none() && self.secure_client_port.is_none() {
            self.client_port = Some(CLIENT_PORT_DEFAULT);
        }
        if self.client_port.is_none() && self.client_port_address.is_some() {
            return Err(Error::Config("clientPortAddress is set but clientPort is not".to_owned()));
        }
        if self.secure_client_port.is_some() && self.tls.key_store.is_none() {
            return Err(Error::Config(
                "secureClientPort is set but ssl.keyStore.location is not".to_owned(),
            ));
        }
        // ZooKeeper raises a retain count below 3 to 3 (`DatadirCleanupManager`).
        self.snap_retain_count = self.snap_retain_count.max(SNAP_RETAIN_COUNT_MIN);
        let tick = self.tick_time_ms;
        let min = self.min_session_timeout_ms.unwrap_or(tick * SESSION_TIMEOUT_TICKS_MIN);
        let max = self.max_session_timeout_ms.unwrap_or(tick * SESSION_TIMEOUT_TICKS_MAX);
        if min > max {
            return Err(Error::Config(format!(
                "minSessionTimeout {min} is above maxSessionTimeout {max}"
            )));
        }
        Ok(())
    }

    /// What reconfig requests are checked against: `reconfigEnabled` and, for an ensemble,
    /// each member and whether it votes (a standalone server has no members).
    #[must_use]
    pub fn reconfig_config(&self) -> ReconfigConfig {
        let members = if self.peers.len() > 1 {
            let votes = |peer: &PeerConfig| !peer.rest.trim_start().starts_with("observer");
            self.peers.iter().map(|peer| (peer.id, votes(peer))).collect()
        } else {
            BTreeMap::new()
        };
        let voters_min = if self.standalone_enabled { 2 } else { 1 };
        ReconfigConfig { enabled: self.reconfig_enabled, members, voters_min }
    }

    /// An ensemble's `/zookeeper/config` text, as ZooKeeper's `QuorumMaj.toString` writes it:
    /// `server.N=host:quorum:election:role[;clientHost:clientPort]` lines by id, then
    /// `version=<hex>`. `None` for a standalone server (its config node stays empty).
    #[must_use]
    pub fn dynamic_config_text(&self, version: i64) -> Option<String> {
        if self.peers.len() < 2 {
            return None;
        }
        let mut peers: Vec<&PeerConfig> = self.peers.iter().collect();
        peers.sort_by_key(|peer| peer.id);
        let mut text = String::new();
        for peer in peers {
            let (role, client) = peer.rest.split_once(';').unwrap_or((&peer.rest, ""));
            let role = if role.trim() == "observer" { "observer" } else { "participant" };
            let _ = write!(
                text,
                "server.{}={}:{}:{}:{role}",
                peer.id, peer.host, peer.quorum_port, peer.election_port
            );
            match client.trim() {
                "" => {}
                client if client.contains(':') => {
                    let _ = write!(text, ";{client}");
                }
                port => {
                    let _ = write!(text, ";0.0.0.0:{port}");
                }
            }
            text.push('\n');
        }
        let _ = write!(text, "version={version:x}");
        Some(text)
    }

    /// The session settings of this config.
    #[must_use]
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            tick_time_ms: self.tick_time_ms,
            min_session_timeout_ms: self.min_session_timeout_ms,
            max_session_timeout_ms: self.max_session_timeout_ms,
        }
    }

    /// The directory of the txn log: `dataLogDir` (or `dataDir`) + `/version-2/log`.
    #[must_use]
    pub fn txn_log_dir(&self) -> PathBuf {
        self.data_log_dir.as_ref().unwrap_or(&self.data_dir).join("version-2").join("log")
    }

    /// The directory of snapshots: `dataDir/version-2`.
    #[must_use]
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("version-2")
    }

    /// The plain address to listen on: `clientPortAddress` (default all interfaces) :
    /// `clientPort`; `None` when only the secure port is configured.
    #[must_use]
    pub fn client_address(&self) -> Option<SocketAddr> {
        let ip = self.client_port_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.client_port.map(|port| SocketAddr::new(ip, port))
    }

    /// The TLS address to listen on: `secureClientPortAddress` (default all interfaces) :
    /// `secureClientPort`, when set.
    #[must_use]
    pub fn secure_client_address(&self) -> Option<SocketAddr> {
        let ip = self.secure_client_port_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.secure_client_port.map(|port| SocketAddr::new(ip, port))
    }

    /// Whether four-letter word `word` may run.
    #[must_use]
    pub fn four_letter_enabled(&self, word: &str) -> bool {
        word == "srvr" || self.four_letter_whitelist.contains(word)
    }
}

/// One `ssl.keyStore.*` or `ssl.trustStore.*` field; false when the field is unknown.
fn set_store(
    store: &mut Option<StoreConfig>,
    line: Place<'_>,
    key: &str,
    field: &str,
    value: &str,
) -> Result<bool> {
    let store = store.get_or_insert_with(|| StoreConfig {
        location: PathBuf::new(),
        password: None,
        store_type: None,
    });
    match field {
        "location" => store.location = PathBuf::from(value),
        "password" => store.password = Some(value.to_owned()),
        "type" if value.is_empty() => store.store_type = None,
        "type" => {
            let store_type = StoreType::from_name(value)
                .ok_or_else(|| bad(line, key, value, "expected JKS, PEM, PKCS12 or BCFKS"))?;
            store.store_type = Some(store_type);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn positive(line: Place<'_>, key: &str, value: &str) -> Result<Option<u32>> {
    let parsed: i64 = number(line, key, value)?;
    // ZooKeeper treats -1 (and any value <= 0) as "use the tickTime default".
    Ok(u32::try_from(parsed).ok().filter(|&ms| ms > 0))
}

fn max_buffer(line: Place<'_>, value: &str) -> Result<usize> {
    let bytes: usize = if let Some(hex) = value.strip_prefix("0x") {
        usize::from_str_radix(hex, 16).map_err(|_| bad(line, "jute.maxbuffer", value, "bad hex"))?
    } else {
        number(line, "jute.maxbuffer", value)?
    };
    if bytes == 0 || bytes > PACKET_BYTES_MAX_LIMIT {
        return Err(bad(line, "jute.maxbuffer", value, "must be in 1..=2147483647"));
    }
    Ok(bytes)
}

/// `FourLetterCommands.isEnabled`'s list: comma separated, `*` is every word.
fn whitelist(value: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for word in value.split(',').map(str::trim).filter(|word| !word.is_empty()) {
        if word == "*" {
            words.extend(FOUR_LETTER_WORDS.iter().map(|&word| word.to_owned()));
        } else {
            words.insert(word.to_owned());
        }
    }
    words.insert("srvr".to_owned());
    words
}

fn read_my_id(data_dir: &Path) -> Result<Option<u64>> {
    let path = data_dir.join("myid");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            Error::Config(format!("{}: {:?} is not a server id", path.display(), text.trim()))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::Config(format!("cannot read {}: {error}", path.display()))),
    }
}

/// The zoo.cfg of one zabflow server on loopback, as the `cluster` tool, the benchmarks and
/// the tests write them: client address 127.0.0.1, no connection limit, every four-letter
/// word, and for an ensemble `server.N=127.0.0.1:QUORUM:ELECTION` lines.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackConfig<'a> {
    pub tick_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: &'a Path,
    pub client_port: u16,
    /// `(id, quorum port, election port)` of every server of an ensemble (as this server
    /// reaches them); empty for a standalone server.
    pub servers: &'a [(u64, u16, u16)],
    /// Further `key=value` lines, newline-separated.
    pub extra: &'a str,
}

impl LoopbackConfig<'_> {
    /// The zoo.cfg text.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = format!(
            "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPort={}\n\
             clientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n",
            self.tick_ms,
            self.init_limit,
            self.sync_limit,
            self.data_dir.display(),
            self.client_port
        );
        for line in self.extra.lines().filter(|line| !line.trim().is_empty()) {
            let _ = writeln!(text, "{line}");
        }
        for (id, quorum, election) in self.servers {
            let _ = writeln!(text, "server.{id}=127.0.0.1:{quorum}:{election}");
        }
        text
    }

    /// Writes `node_dir/zoo.cfg` and `data_dir/myid` (with `id`), creating
    /// the directories.
    ///
    /// # Errors
    /// What creating or writing them fails with.
    pub fn write(&self, node_dir: &Path, id: u64) -> std::io::Result<()> {
        std::fs::create_dir_all(self.data_dir)?;
        std::fs::create_dir_all(node_dir)?;
        std::fs::write(node_dir.join("zoo.cfg"), self.render())?;
        std::fs::write(self.data_dir.join("myid"), format!("{id}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_zookeeper_config() {
        let text = "# comment\ntickTime=1000\ninitLimit = 7\nsyncLimit: 3\ndataDir=/d\n\
                    dataLogDir /l\nclientPort=2182\nclientPortAddress=127.0.0.1\n\
                    maxClientCnxns=0\nforceSync=no\nsnapCount=100\n\
                    autopurge.snapRetainCount=5\nautopurge.purgeInterval=1\n\
                    4lw.commands.whitelist=ruok, mntr\nextendedTypesEnabled=true\n\
                    jute.maxbuffer=0x1000\nznode.container.checkIntervalMs=500\n\
                    server.1=127.0.0.1:2888:3888;2181\nadmin.enableServer=false\n";
        let (config, warnings) = ServerConfig::parse(text).unwrap();
        assert_eq!(config.tick_time_ms, 1000);
        assert_eq!((config.init_limit, config.sync_limit), (7, 3));
        assert_eq!(config.txn_log_dir(), PathBuf::from("/l/version-2/log"));
        assert_eq!(config.client_address().unwrap().to_string(), "127.0.0.1:2182");
        assert_eq!(config.secure_client_address(), None);
        assert!(!config.force_sync && config.extended_types_enabled);
        assert_eq!((config.snap_count, config.snap_retain_count), (100, 5));
        assert!(config.four_letter_enabled("mntr") && config.four_letter_enabled("srvr"));
        assert!(!config.four_letter_enabled("stat"));
        assert_eq!(config.packet_bytes_max, 0x1000);
        assert_eq!(config.container_check_interval_ms, 500);
        assert_eq!(config.peers[0].quorum_port, 2888);
        assert_eq!(config.peers[0].rest, ";2181");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("admin.enableServer"));
    }

    #[test]
    fn loopback_configs_read_back() {
        let servers = [(1, 2888, 3888), (2, 2889, 3889)];
        let config = LoopbackConfig {
            tick_ms: 200,
            init_limit: 10,
            sync_limit: 5,
            data_dir: Path::new("/d"),
            client_port: 2182,
            servers: &servers,
            extra: "forceSync=yes\n\nsnapCount=100",
        };
        let (read, warnings) = ServerConfig::parse(&config.render()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((read.tick_time_ms, read.init_limit, read.sync_limit), (200, 10, 5));
        assert_eq!(read.client_address().unwrap().to_string(), "127.0.0.1:2182");
        assert!(read.force_sync && read.snap_count == 100 && read.four_letter_enabled("stat"));
        let peers: Vec<(u64, u16, u16)> =
            read.peers.iter().map(|p| (p.id, p.quorum_port, p.election_port)).collect();
        assert_eq!(peers, servers);
    }

    #[test]
    fn bad_values_are_errors() {
        let error = ServerConfig::parse("dataDir=/d\ntickTime=fast\n").unwrap_err();
        assert!(error.to_string().contains("line 2: tickTime=fast"), "{error}");
        assert!(ServerConfig::parse("clientPort=1\n").is_err(), "dataDir is required");
        assert!(ServerConfig::parse("dataDir=/d\nforceSync=maybe\n").is_err());
        let inverted = "dataDir=/d\nminSessionTimeout=9000\nmaxSessionTimeout=5000\n";
        assert!(ServerConfig::parse(inverted).is_err());
    }

    #[test]
    fn reads_the_tls_settings() {
        let text = "dataDir=/d\nsecureClientPort=2281\nsecureClientPortAddress=127.0.0.2\n\
                    serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
                    ssl.keyStore.location=/k/keystore.jks\nssl.keyStore.password=pw\n\
                    ssl.trustStore.location=/k/trust.pem\nssl.trustStore.type=pem\n\
                    ssl.clientAuth=want\nssl.enabledProtocols=TLSv1.2, TLSv1.3\n\
                    ssl.ciphersuites=TLS_AES_128_GCM_SHA256\nssl.quorum.keyStore.location=/q\n";
        let (config, warnings) = ServerConfig::parse(text).unwrap();
        assert_eq!(config.client_address(), None, "only the secure port is set");
        assert_eq!(config.secure_client_address().unwrap().to_string(), "127.0.0.2:2281");
        let key_store = config.tls.key_store.as_ref().unwrap();
        assert_eq!(key_store.location, PathBuf::from("/k/keystore.jks"));
        assert_eq!((key_store.password.as_deref(), key_store.store_type), (Some("pw"), None));
        let trust_store = config.tls.trust_store.as_ref().unwrap();
        assert_eq!(trust_store.store_type, Some(StoreType::Pem));
        assert_eq!(config.tls.client_auth, ClientAuth::Want);
        assert_eq!(config.tls.enabled_protocols, Some(vec!["TLSv1.2".into(), "TLSv1.3".into()]));
        assert_eq!(warnings.len(), 1, "only ssl.quorum.* is unknown: {warnings:?}");
        let (both, _) = ServerConfig::parse(&format!("{text}clientPort=2181\n")).unwrap();
        assert_eq!(both.client_address().unwrap().port(), 2181);
        let (neither, _) = ServerConfig::parse("dataDir=/d\n").unwrap();
        assert_eq!(neither.client_address().unwrap().port(), 2181, "ZooKeeper's default");
        let no_key_store = ServerConfig::parse("dataDir=/d\nsecureClientPort=2281\n");
        assert!(no_key_store.unwrap_err().to_string().contains("ssl.keyStore.location"));
        let bad_auth = ServerConfig::parse("dataDir=/d\nssl.clientAuth=maybe\n").unwrap_err();
        assert!(bad_auth.to_string().contains("need, want or none"), "{bad_auth}");
        assert!(ServerConfig::parse("dataDir=/d\nssl.keyStore.type=XYZ\n").is_err());
    }

    #[test]
    fn star_whitelists_every_word() {
        let (config, _) = ServerConfig::parse("dataDir=/d\n4lw.commands.whitelist=*\n").unwrap();
        assert!(["ruok", "mntr", "cons", "dump", "isro"]
            .iter()
            .all(|word| config.four_letter_enabled(word)));
    }

    #[test]
    fn system_properties_apply_under_the_file() {
        let properties: Vec<(String, String)> = [
            "readonlymode.enabled=true",
            "zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            "zookeeper.snapCount=500",
            "log4j.configuration=file:x",
        ]
        .iter()
        .map(|text| split_system_property(text))
        .collect();
        let text = "dataDir=/d\nsnapCount=700\nlocalSessionsEnabled=true\n";
        let (config, warnings) = ServerConfig::parse_with_properties(text, &properties).unwrap();
        assert!(config.read_only_mode_enabled && config.local_sessions_enabled);
        assert!(!config.local_sessions_upgrading_enabled);
        assert_eq!(config.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert_eq!(config.snap_count, 700, "the zoo.cfg line wins over the property");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("log4j.configuration"), "{warnings:?}");
        let bad = [split_system_property("readonlymode.enabled=maybe")];
        let error = ServerConfig::parse_with_properties("dataDir=/d\n", &bad).unwrap_err();
        assert!(error.to_string().contains("system property readonlymode.enabled"), "{error}");
        assert_eq!(split_system_property("flag"), ("flag".to_owned(), String::new()));
        let (config, _) = ServerConfig::parse("dataDir=/d\n").unwrap();
        assert!(!config.read_only_mode_enabled, "off unless asked for, as in ZooKeeper");
    }

    #[test]
    fn tls_settings_come_from_system_properties_too() {
        let properties: Vec<(String, String)> = [
            "zookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            "zookeeper.ssl.keyStore.location=/k/key.jks",
            "zookeeper.ssl.keyStore.password=from-property",
            "zookeeper.ssl.clientAuth=none",
        ]
        .iter()
        .map(|text| split_system_property(text))
        .collect();
        let text = "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.password=from-file\n";
        let (config, warnings) = ServerConfig::parse_with_properties(text, &properties).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let key_store = config.tls.key_store.unwrap();
        assert_eq!(key_store.location, PathBuf::from("/k/key.jks"));
        assert_eq!(key_store.password.as_deref(), Some("from-file"), "the zoo.cfg line wins");
        assert_eq!(config.tls.client_auth, ClientAuth::None);
    }
}
