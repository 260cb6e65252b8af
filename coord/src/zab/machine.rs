//! The Zab state machine (see the module docs of [`super`]).

use std::sync::Arc;

use super::{Action, Entry, Message, Role, ServerId, Stored, ZabConfig, Zxid};

/// Counters the four-letter words show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZabStats {
    /// Leader: learners connected (in discovery, sync or broadcast).
    pub followers: usize,
    /// Leader: learners synchronised and in broadcast.
    pub synced_followers: usize,
    /// Leader: `sync` requests waiting for their commit.
    pub pending_syncs: usize,
}

/// One server's Zab state.
#[derive(Debug)]
pub struct Zab {
    config: ZabConfig,
}

impl Zab {
    /// A machine over what the server found on disk; call [`Zab::start`] next.
    #[must_use]
    pub fn new(config: ZabConfig, stored: Stored, now_ms: u64) -> Zab {
        let _ = (stored, now_ms);
        Zab { config }
    }

    /// Starts looking for a leader.
    pub fn start(&mut self, out: &mut Vec<Action>) {
        let _ = out;
        todo!()
    }

    /// Time passes (call at least every few milliseconds of `tick_ms`).
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let _ = (now_ms, out);
        todo!()
    }

    /// A message from a peer.
    pub fn receive(&mut self, from: ServerId, message: Message, out: &mut Vec<Action>) {
        let _ = (from, message, out);
        todo!()
    }

    /// The link to `peer` is up.
    pub fn connected(&mut self, peer: ServerId, out: &mut Vec<Action>) {
        let _ = (peer, out);
        todo!()
    }

    /// The link to `peer` broke; everything in flight on it is lost.
    pub fn disconnected(&mut self, peer: ServerId, out: &mut Vec<Action>) {
        let _ = (peer, out);
        todo!()
    }

    /// The zxid the next proposal must carry, when this server leads an established epoch.
    #[must_use]
    pub fn next_zxid(&self) -> Option<Zxid> {
        None
    }

    /// Leader: queues a proposal (sent and appended at the next [`Zab::flush`]); its zxid
    /// must be [`Zab::next_zxid`]. Returns false (and drops it) when not leading.
    pub fn propose(&mut self, entry: Entry) -> bool {
        let _ = entry;
        todo!()
    }

    /// Sends and appends the proposals queued since the last flush (one batch).
    pub fn flush(&mut self, out: &mut Vec<Action>) {
        let _ = out;
        todo!()
    }

    /// The log is durable up to `zxid`.
    pub fn persisted(&mut self, zxid: Zxid, out: &mut Vec<Action>) {
        let _ = (zxid, out);
        todo!()
    }

    /// A client's `sync`: [`Action::SyncDone`] once everything the leader proposed before it
    /// is applied here. Returns false when not serving.
    pub fn sync(&mut self, id: u64, out: &mut Vec<Action>) -> bool {
        let _ = (id, out);
        todo!()
    }

    /// Follower: sends a [`Message::Request`] or [`Message::Sessions`] to the leader.
    /// Returns false when not following a leader.
    pub fn send_to_leader(&mut self, message: Message, out: &mut Vec<Action>) -> bool {
        let _ = (message, out);
        todo!()
    }

    /// The current role.
    #[must_use]
    pub fn role(&self) -> Role {
        Role::Looking
    }

    /// The zxid of the last entry in the log (appended, maybe not yet durable).
    #[must_use]
    pub fn last_zxid(&self) -> Zxid {
        0
    }

    /// The highest zxid known committed.
    #[must_use]
    pub fn committed(&self) -> Zxid {
        0
    }

    /// The highest zxid applied (or reflected in the state at start).
    #[must_use]
    pub fn applied(&self) -> Zxid {
        0
    }

    /// The four-letter-word counters.
    #[must_use]
    pub fn stats(&self) -> ZabStats {
        ZabStats::default()
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ZabConfig {
        &self.config
    }
}

#[allow(dead_code)]
fn unused(_: Arc<[u8]>) {}
