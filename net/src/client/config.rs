//! `ClientConfig`: what a [`super::Client`] connects to and the bounds it keeps.
//!
//! A connect string is ZooKeeper's: `host:port` entries separated by commas. Chroot suffixes
//! (`host:port/app`) are not supported and are refused rather than ignored.

use std::time::Duration;

use crate::constants::{
    CLIENT_CONNECT_ATTEMPT_MS_MIN, CLIENT_EVENT_QUEUE_CAPACITY_DEFAULT,
    CLIENT_IN_FLIGHT_MAX_DEFAULT, CLIENT_REQUEST_QUEUE_CAPACITY_DEFAULT, CLIENT_SERVERS_MAX,
    CLIENT_SESSION_TIMEOUT_MS_DEFAULT, PACKET_BYTES_MAX_DEFAULT, PACKET_BYTES_MAX_LIMIT,
};
use crate::error::{ZkError, ZkResult};

/// How to connect, and the client's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `host:port` of each server, tried in order (and round-robin when reconnecting).
    pub servers: Vec<String>,
    /// Session timeout asked for, in milliseconds; the server negotiates it into its bounds.
    pub session_timeout_ms: u32,
    /// How long [`super::Client::connect`] tries before giving up, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Requests queued before the I/O thread takes them (`submit` blocks beyond it).
    pub request_queue_capacity: usize,
    /// Requests in flight on the connection at most.
    pub in_flight_max: usize,
    /// Events buffered for the application.
    pub event_queue_capacity: usize,
    /// Largest frame body sent or accepted, in bytes (`jute.maxbuffer`).
    pub packet_bytes_max: usize,
    /// An existing session to resume instead of asking for a new one (ZooKeeper's
    /// `new ZooKeeper(…, sessionId, sessionPasswd)`): the server moves that session to this
    /// client's connection, or refuses with `SessionExpired` if it has ended.
    pub resume: Option<SessionCredentials>,
}

/// What identifies a session to a server: its id and the password the server gave it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// The session id.
    pub id: i64,
    /// The session's password (16 bytes from ZooKeeper and zabflow).
    pub password: Vec<u8>,
}

impl std::fmt::Debug for SessionCredentials {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionCredentials {{ id: {:#x}, password: .. }}", self.id)
    }
}

impl ClientConfig {
    /// Defaults for the servers of `connect_string` (`host:port,host:port,…`).
    ///
    /// # Errors
    /// [`ZkError::Connect`] when the string lists no server, more than
    /// [`CLIENT_SERVERS_MAX`], an entry without a port, or a chroot.
    pub fn new(connect_string: &str) -> ZkResult<ClientConfig> {
        let servers = parse_connect_string(connect_string)?;
        let session_timeout_ms = CLIENT_SESSION_TIMEOUT_MS_DEFAULT;
        Ok(ClientConfig {
            servers,
            session_timeout_ms,
            connect_timeout_ms: u64::from(session_timeout_ms),
            request_queue_capacity: CLIENT_REQUEST_QUEUE_CAPACITY_DEFAULT,
            in_flight_max: CLIENT_IN_FLIGHT_MAX_DEFAULT,
            event_queue_capacity: CLIENT_EVENT_QUEUE_CAPACITY_DEFAULT,
            packet_bytes_max: PACKET_BYTES_MAX_DEFAULT,
            resume: None,
        })
    }

    /// This config resuming the session of `credentials` instead of starting a new one.
    #[must_use]
    pub fn with_session(mut self, credentials: SessionCredentials) -> ClientConfig {
        self.resume = Some(credentials);
        self
    }

    /// This config with a session timeout of `timeout` (whole milliseconds).
    #[must_use]
    pub fn with_session_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.session_timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self
    }

    /// How long one connect-and-handshake attempt to one server may take when the session
    /// timeout is `session_timeout_ms`: the timeout shared among the servers, as ZooKeeper's
    /// client does, but at least [`CLIENT_CONNECT_ATTEMPT_MS_MIN`].
    #[must_use]
    pub fn attempt_timeout(&self, session_timeout_ms: u32) -> Duration {
        let servers = u64::try_from(self.servers.len().max(1)).unwrap_or(u64::MAX);
        let share_ms = u64::from(session_timeout_ms) / servers;
        Duration::from_millis(share_ms.max(CLIENT_CONNECT_ATTEMPT_MS_MIN))
    }

    /// Checks the bounds.
    ///
    /// # Errors
    /// [`ZkError::Connect`] naming the first bound out of range.
    pub fn validate(&self) -> ZkResult<()> {
        let bad = |what: &str| Err(ZkError::Connect(format!("bad client config: {what}")));
        if self.servers.is_empty() || self.servers.len() > CLIENT_SERVERS_MAX {
            return bad("server count");
        }
        if self.request_queue_capacity == 0 || self.event_queue_capacity == 0 {
            return bad("zero queue capacity");
        }
        if self.in_flight_max == 0 || i32::try_from(self.in_flight_max).is_err() {
            return bad("in_flight_max");
        }
        if self.packet_bytes_max > PACKET_BYTES_MAX_LIMIT || self.session_timeout_ms == 0 {
            return bad("packet_bytes_max or session_timeout_ms");
        }
        Ok(())
    }
}

fn parse_connect_string(connect_string: &str) -> ZkResult<Vec<String>> {
    if connect_string.contains('/') {
        return Err(ZkError::Connect(format!("chroot is not supported: {connect_string}")));
    }
    let servers = connect_string
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if let Some(entry) = servers.iter().find(|entry| !entry.contains(':')) {
        return Err(ZkError::Connect(format!("server {entry} has no port")));
    }
    if servers.is_empty() || servers.len() > CLIENT_SERVERS_MAX {
        return Err(ZkError::Connect(format!("bad server count in {connect_string:?}")));
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_strings() {
        let config = ClientConfig::new("127.0.0.1:2181, localhost:2182").unwrap();
        assert_eq!(config.servers, ["127.0.0.1:2181", "localhost:2182"]);
        assert!(config.validate().is_ok());
        assert_eq!(config.attempt_timeout(30_000), Duration::from_millis(15_000));
        assert_eq!(config.attempt_timeout(100), Duration::from_millis(500));
        assert!(ClientConfig::new("").is_err());
        assert!(ClientConfig::new("host").is_err());
        assert!(ClientConfig::new("h:1/chroot").is_err());
    }
}
