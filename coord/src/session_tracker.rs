//! `SessionTracker`: sessions, their negotiated timeouts and their expiry, as ZooKeeper's
//! `SessionTrackerImpl` over an `ExpiryQueue` — pure: every call takes the time.
//!
//! ```text
//! session id   = ((now_ms << 24) >>> 8) | (server_id << 56), then +1 per session
//! password     = 16 bytes of java.util.Random(session_id ^ 0xB3415C00).nextBytes
//!                (the secret is the caller's; ZooKeeper's default is 0xB3415C00)
//! timeout      = the client's request clamped to [min, max]
//!                (defaults 2 × tickTime and 20 × tickTime)
//! expiry       = each touch moves the session to bucket
//!                ceil_tick(now_ms + timeout_ms) = (t / tick + 1) × tick;
//!                buckets expire in tick order, one per tick
//! ```
//!
//! Buckets round expiry up to the next tick so that one timer tick expires a whole batch,
//! which is ZooKeeper's trade: a session lives between `timeout` and `timeout + tick`.
//! Because the password is derived from the id, it need not be stored or logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::constants::{
    CONTAINER_EPHEMERAL_OWNER, SESSION_ID_SERVER_SHIFT, SESSION_PASSWORD_BYTES,
    SESSION_TIMEOUT_TICKS_MAX, SESSION_TIMEOUT_TICKS_MIN,
};
use crate::watch_manager::SessionId;

/// Session settings from zoo.cfg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    pub tick_time_ms: u32,
    /// `minSessionTimeout`; `None` is 2 × tickTime.
    pub min_session_timeout_ms: Option<u32>,
    /// `maxSessionTimeout`; `None` is 20 × tickTime.
    pub max_session_timeout_ms: Option<u32>,
}

impl SessionConfig {
    /// The negotiated timeout for a client asking for `requested_ms`.
    #[must_use]
    pub fn negotiate_timeout_ms(&self, requested_ms: i32) -> i32 {
        let tick = self.tick_time_ms;
        let min = self.min_session_timeout_ms.unwrap_or(tick * SESSION_TIMEOUT_TICKS_MIN);
        let max = self.max_session_timeout_ms.unwrap_or(tick * SESSION_TIMEOUT_TICKS_MAX);
        let min = i32::try_from(min).unwrap_or(i32::MAX);
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        requested_ms.max(min).min(max)
    }
}

/// `SessionTrackerImpl.initializeNextSessionId`.
#[must_use]
pub fn initial_session_id(now_ms: i64, server_id: u8) -> i64 {
    let time_part = ((now_ms << 24) as u64 >> 8) as i64;
    let id = time_part | (i64::from(server_id) << SESSION_ID_SERVER_SHIFT);
    if id == CONTAINER_EPHEMERAL_OWNER {
        id + 1
    } else {
        id
    }
}

/// `java.util.Random(seed).nextBytes(16)`: the session password ZooKeeper generates for
/// `session_id` with secret `secret`.
#[must_use]
pub fn session_password(session_id: i64, secret: i64) -> [u8; SESSION_PASSWORD_BYTES] {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ secret) as u64 ^ MULTIPLIER) & MASK;
    let mut password = [0u8; SESSION_PASSWORD_BYTES];
    for chunk in password.chunks_mut(4) {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        let mut random = (seed >> 16) as u32;
        for byte in chunk {
            *byte = random as u8;
            random >>= 8;
        }
    }
    password
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    timeout_ms: i32,
    expiry_ms: i64,
    closing: bool,
}

/// Live sessions and their expiry buckets.
#[derive(Debug, Clone)]
pub struct SessionTracker {
    tick_ms: i64,
    next_session_id: i64,
    sessions: HashMap<SessionId, Session>,
    buckets: BTreeMap<i64, BTreeSet<SessionId>>,
    next_expiration_ms: i64,
}

impl SessionTracker {
    /// A tracker for server `server_id` started at `now_ms`.
    ///
    /// # Panics
    /// If `tick_time_ms` is 0.
    #[must_use]
    pub fn new(tick_time_ms: u32, server_id: u8, now_ms: i64) -> Self {
        assert!(tick_time_ms > 0, "tickTime must be positive");
        let tick_ms = i64::from(tick_time_ms);
        SessionTracker {
            tick_ms,
            next_session_id: initial_session_id(now_ms, server_id),
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            next_expiration_ms: round_to_next_tick(now_ms, tick_ms),
        }
    }

    /// A new session with a negotiated timeout: its id.
    pub fn create_session(&mut self, timeout_ms: i32, now_ms: i64) -> SessionId {
        let session_id = self.next_session_id;
        self.next_session_id += 1;
        self.track_session(session_id, timeout_ms, now_ms);
        session_id
    }

    /// Tracks a session created elsewhere (a replayed createSession txn).
    pub fn track_session(&mut self, session_id: SessionId, timeout_ms: i32, now_ms: i64) {
        let session = Session { timeout_ms, expiry_ms: 0, closing: false };
        self.sessions.entry(session_id).or_insert(session);
        self.touch(session_id, now_ms);
    }

    /// `touchSession`: every request and ping. False when the session is unknown or
    /// closing (ZooKeeper then answers SessionExpired / SessionMoved).
    pub fn touch(&mut self, session_id: SessionId, now_ms: i64) -> bool {
        let tick_ms = self.tick_ms;
        let Some(session) = self.sessions.get_mut(&session_id).filter(|s| !s.closing) else {
            return false;
        };
        let expiry_ms = round_to_next_tick(now_ms + i64::from(session.timeout_ms), tick_ms);
        if expiry_ms != session.expiry_ms {
            if let Some(bucket) = self.buckets.get_mut(&session.expiry_ms) {
                bucket.remove(&session_id);
                if bucket.is_empty() {
                    self.buckets.remove(&session.expiry_ms);
                }
            }
            session.expiry_ms = expiry_ms;
            self.buckets.entry(expiry_ms).or_default().insert(session_id);
        }
        true
    }

    /// The session's negotiated timeout, if it is live.
    #[must_use]
    pub fn timeout_ms(&self, session_id: SessionId) -> Option<i32> {
        self.sessions.get(&session_id).filter(|s| !s.closing).map(|s| s.timeout_ms)
    }

    /// `setSessionClosing`: a closeSession was prepared; later requests are refused.
    pub fn set_closing(&mut self, session_id: SessionId) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.closing = true;
        }
    }

    /// `removeSession`: the closeSession txn was applied.
    pub fn remove(&mut self, session_id: SessionId) {
        if let Some(session) = self.sessions.remove(&session_id) {
            if let Some(bucket) = self.buckets.get_mut(&session.expiry_ms) {
                bucket.remove(&session_id);
                if bucket.is_empty() {
                    self.buckets.remove(&session.expiry_ms);
                }
            }
        }
    }

    /// Milliseconds until the next bucket is due (0 when one is due now).
    #[must_use]
    pub fn wait_ms(&self, now_ms: i64) -> i64 {
        (self.next_expiration_ms - now_ms).max(0)
    }

    /// `ExpiryQueue.poll` until caught up: sessions whose bucket is due, sorted, each
    /// marked closing; the driver submits a closeSession for each.
    pub fn expired(&mut self, now_ms: i64) -> Vec<SessionId> {
        let mut expired = Vec::new();
        while now_ms >= self.next_expiration_ms {
            if let Some(bucket) = self.buckets.remove(&self.next_expiration_ms) {
                expired.extend(bucket);
            }
            self.next_expiration_ms += self.tick_ms;
        }
        expired.sort_unstable();
        for session_id in &expired {
            self.set_closing(*session_id);
        }
        expired
    }
}

/// `ExpiryQueue.roundToNextInterval`.
fn round_to_next_tick(time_ms: i64, tick_ms: i64) -> i64 {
    (time_ms / tick_ms + 1) * tick_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_clamped_to_ticks() {
        let config = SessionConfig {
            tick_time_ms: 2000,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
        };
        assert_eq!(config.negotiate_timeout_ms(100), 4000);
        assert_eq!(config.negotiate_timeout_ms(10_000), 10_000);
        assert_eq!(config.negotiate_timeout_ms(100_000), 40_000);
        let custom = SessionConfig { min_session_timeout_ms: Some(1000), ..config };
        assert_eq!(custom.negotiate_timeout_ms(100), 1000);
    }

    #[test]
    fn session_ids_carry_the_server_id() {
        let id = initial_session_id(1_700_000_000_000, 1);
        assert_eq!(id >> 56, 1);
        assert_eq!(id & 0xff, 0, "the low 8 bits are the per-session counter's room");
        let mut tracker = SessionTracker::new(2000, 1, 1_700_000_000_000);
        let first = tracker.create_session(4000, 0);
        assert_eq!(tracker.create_session(4000, 0), first + 1);
    }

    #[test]
    fn password_is_java_random() {
        // `new java.util.Random(42).nextInt()` is -1170105035 (0xBA419D35); nextBytes
        // takes each int's bytes low first.
        let password = session_password(42 ^ 0xB341_5C00, 0xB341_5C00);
        assert_eq!(password[..4], [0x35, 0x9d, 0x41, 0xba]);
        assert_eq!(session_password(7, 9), session_password(7, 9));
        assert_ne!(session_password(7, 9), session_password(8, 9));
    }

    #[test]
    fn expiry_by_bucket() {
        let mut tracker = SessionTracker::new(1000, 0, 0);
        let session = tracker.create_session(4000, 0);
        assert!(tracker.expired(4999).is_empty());
        assert!(tracker.touch(session, 3000));
        assert!(tracker.expired(7999).is_empty());
        assert_eq!(tracker.expired(8000), vec![session]);
        assert!(!tracker.touch(session, 8000), "a closing session is not touched");
        tracker.remove(session);
        assert_eq!(tracker.timeout_ms(session), None);
    }
}
