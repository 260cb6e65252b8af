//! Zab — ZooKeeper's atomic broadcast — as a pure state machine.
//!
//! ```text
//! inputs   tick(now_ms) · receive(from, Message) · connected/disconnected(peer)
//!          propose(data) · flush() · persisted(zxid) · sync(id) · send_to_leader(msg)
//! outputs  Action: Send · SendSnapshot · PersistEpochs · Append · Truncate
//!          · InstallSnapshot · Apply · Role · Request · Sessions · SyncDone
//! phases   LOOKING   fast leader election on (peer epoch, last zxid, id) votes; a quorum
//!                    agreeing on one vote, then `finalize_wait_ms` without a better one
//!          DISCOVERY followers send FollowerInfo(accepted epoch, last zxid); the leader,
//!                    with a quorum, picks an epoch above all of theirs (LeaderInfo);
//!                    followers persist it and answer AckEpoch(current epoch, last zxid)
//!          SYNC      per follower: DIFF (entries it lacks), TRUNC (drop its entries the
//!                    leader never had, then DIFF) or SNAP (the leader's applied state, when
//!                    the follower is behind the leader's in-memory history); then
//!                    NEWLEADER; the follower persists everything and acks; a quorum of
//!                    acks establishes the epoch (the leader commits its whole history) and
//!                    UPTODATE lets followers serve
//!          BROADCAST PROPOSAL(batch) → follower appends, ACK(zxid) after its fsync →
//!                    COMMIT(zxid) once a quorum (leader included) has it durable; commits
//!                    strictly in zxid order; acks and commits are cumulative
//! liveness  a follower that hears nothing from its leader for `sync_limit` ticks (or whose
//!           connection to it drops) and a leader that has not heard from a quorum for
//!           `sync_limit` ticks go back to LOOKING
//! ```
//!
//! zxid = epoch << 32 | counter. The machine does no I/O and reads no clock; the driver
//! (a real server over mio and the txn log, or the deterministic simulation) executes its
//! actions **in order**, with this contract:
//!
//! - `PersistEpochs`, `Truncate` and `InstallSnapshot` are durable before the next action
//!   runs. `Append` is asynchronous: the driver reports [`Zab::persisted`] with the zxid of
//!   the last entry made durable, in append order (group commit: one report per fsync).
//! - `Apply` entries are committed; the driver applies them to its state in order, at once,
//!   so a later `SendSnapshot` sees exactly the state up to the machine's applied zxid.
//! - At start, the driver's state already reflects every entry in its log (ZooKeeper replays
//!   the whole log on load); after a `Truncate` it rebuilds its state from the truncated log
//!   (every entry left, as at start), as ZooKeeper reloads its database on TRUNC. Entries a
//!   server holds beyond what it knows committed are not served: a follower starts serving
//!   only once the leader's commits cover everything it applied.
//! - Peer links are FIFO and reliable while connected (TCP); a link that breaks is reported
//!   with [`Zab::disconnected`] and everything in flight on it is lost. Election messages
//!   ([`Message::Vote`]) may also be duplicated or reordered: they are idempotent.
//!
//! Client requests, session pings and `sync` are carried for the driver: a follower's
//! driver forwards a write with [`Zab::send_to_leader`] ([`Message::Request`]), the leader's
//! machine hands it back as [`Action::Request`]; the follower learns the outcome when the
//! txn commits (the txn header names its session and cxid).

mod machine;
pub mod sim;
pub mod transport;
pub mod wire;

pub use machine::{Zab, ZabStats};

use std::sync::Arc;

/// A server's id (`server.N` in zoo.cfg, `myid`).
pub type ServerId = u64;

/// A transaction id: epoch in the high 32 bits, counter in the low 32.
pub type Zxid = i64;

/// The zxid of `counter` in `epoch`.
#[must_use]
pub fn make_zxid(epoch: u32, counter: u32) -> Zxid {
    ((u64::from(epoch) << 32) | u64::from(counter)) as Zxid
}

/// The epoch of `zxid`.
#[must_use]
pub fn epoch_of(zxid: Zxid) -> u32 {
    ((zxid as u64) >> 32) as u32
}

/// The counter of `zxid`.
#[must_use]
pub fn counter_of(zxid: Zxid) -> u32 {
    (zxid as u64 & 0xffff_ffff) as u32
}

/// One logged transaction: its zxid and its encoded record (opaque to Zab; the server's txn
/// log record, header + body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub zxid: Zxid,
    pub data: Arc<[u8]>,
}

/// Where a peer stands, as election notifications report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

/// A fast-leader-election notification: the sender's current vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    /// The server voted for.
    pub leader: ServerId,
    /// The voted server's last zxid.
    pub zxid: Zxid,
    /// The voted server's current (accepted history's) epoch.
    pub peer_epoch: u32,
    /// The sender's election round (ZooKeeper's logical clock).
    pub round: u64,
    /// The sender's state.
    pub state: PeerState,
}

/// How the leader brings a follower's log in line with its own before NEWLEADER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMode {
    /// The follower's log is a prefix of the leader's: append `entries`.
    Diff,
    /// Drop the follower's entries after `to` (the leader never had them), then append.
    Trunc { to: Zxid },
    /// Replace the follower's state and log with the leader's state at `zxid`, then append.
    Snap { zxid: Zxid, data: Arc<[u8]> },
}

/// A message between two servers of the ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Election (sent on the election port).
    Vote(Vote),
    /// Discovery: a would-be follower's accepted epoch and last zxid.
    FollowerInfo { accepted_epoch: u32, last_zxid: Zxid },
    /// Discovery: the epoch the leader proposes.
    LeaderInfo { epoch: u32 },
    /// Discovery: the follower accepted the epoch; its current epoch and last zxid.
    /// `counts` is false when the follower had already accepted this epoch (from any
    /// leader, maybe before a restart): Zab lets a server ack an epoch once, so the leader
    /// may sync it but must not count it towards the epoch's quorum (ZooKeeper's -1 ack).
    AckEpoch { current_epoch: u32, last_zxid: Zxid, counts: bool },
    /// Sync: how to fix the follower's log, then the entries it lacks (committed ones and the
    /// leader's outstanding proposals), all before NEWLEADER.
    Sync { mode: SyncMode, entries: Vec<Entry> },
    /// Sync done: the follower persists `epoch` as its current epoch and acks once its log is
    /// durable up to `zxid`.
    NewLeader { epoch: u32, zxid: Zxid },
    /// The follower's log is durable up to `zxid` under the new leader.
    AckNewLeader { zxid: Zxid },
    /// Serve clients: everything up to `committed` is committed.
    UpToDate { committed: Zxid },
    /// Broadcast: proposals in zxid order.
    Proposal { entries: Vec<Entry> },
    /// Broadcast: the follower's log is durable up to `zxid` (cumulative).
    Ack { zxid: Zxid },
    /// Broadcast: everything up to `zxid` is committed (cumulative).
    Commit { zxid: Zxid },
    /// Heartbeat both ways; the leader's carries its committed zxid.
    Ping { committed: Zxid },
    /// A follower's forwarded client write (opaque to Zab).
    Request { payload: Vec<u8> },
    /// A follower's relayed session activity (opaque to Zab).
    Sessions { payload: Vec<u8> },
    /// A follower's `sync`: answer once everything proposed so far is committed.
    SyncRequest { id: u64 },
    /// The leader's answer to [`Message::SyncRequest`], sent after the covering commit.
    SyncReply { id: u64 },
}

/// What a server is doing; `Following` and `Leading` serve clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Electing a leader; clients are refused.
    Looking,
    /// Elected (or following `leader`) but not yet synchronised; clients are refused.
    Syncing { leader: ServerId, epoch: u32 },
    /// Synchronised with `leader`; serves reads, forwards writes.
    Following { leader: ServerId, epoch: u32 },
    /// Leads an established epoch; serves reads, proposes writes.
    Leading { epoch: u32 },
}

impl Role {
    /// Whether clients are served.
    #[must_use]
    pub fn serving(self) -> bool {
        matches!(self, Role::Following { .. } | Role::Leading { .. })
    }
}

/// What the machine asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `message` to `to` (dropped silently if the link is down).
    Send { to: ServerId, message: Message },
    /// Close the link to `peer` (it timed out: a silent partition leaves TCP links up, and
    /// a fresh link must not carry what was queued for the old one).
    Disconnect { peer: ServerId },
    /// Send `to` a [`Message::Sync`] in [`SyncMode::Snap`] built from the driver's state
    /// (which is exactly the state at `zxid`), followed by `entries`.
    SendSnapshot { to: ServerId, zxid: Zxid, entries: Vec<Entry> },
    /// Persist the accepted and current epochs (durable before the next action).
    PersistEpochs { accepted: u32, current: u32 },
    /// Append entries to the log; report [`Zab::persisted`] once durable.
    Append { entries: Vec<Entry> },
    /// Drop log entries after `after` (durable before the next action) and rebuild the state
    /// from the remaining log (all of it).
    Truncate { after: Zxid },
    /// Replace state and log with the snapshot (durable before the next action).
    InstallSnapshot { zxid: Zxid, data: Arc<[u8]> },
    /// Apply a committed entry (in zxid order).
    Apply(Entry),
    /// The role changed.
    Role(Role),
    /// Leader: a follower forwarded a client write.
    Request { from: ServerId, payload: Vec<u8> },
    /// Leader: a follower relayed session activity.
    Sessions { from: ServerId, payload: Vec<u8> },
    /// The `sync` with this id is answered: every write proposed before it is applied here.
    SyncDone { id: u64 },
}

/// Settings of the machine.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    /// This server.
    pub id: ServerId,
    /// Every voting server, this one included.
    pub voters: Vec<ServerId>,
    /// ZooKeeper's `tickTime`.
    pub tick_ms: u64,
    /// Ticks a follower may take to connect and sync (`initLimit`).
    pub init_limit: u64,
    /// Ticks without hearing from the leader (or a quorum) before giving up (`syncLimit`).
    pub sync_limit: u64,
    /// Election: after a quorum agrees, how long to wait for a better vote
    /// (ZooKeeper's `finalizeWait`).
    pub finalize_wait_ms: u64,
    /// Election: resend notifications after this long without progress (doubles up to
    /// `vote_resend_max_ms`).
    pub vote_resend_ms: u64,
    /// Upper bound of the notification resend backoff.
    pub vote_resend_max_ms: u64,
    /// Committed entries the leader keeps in memory to sync followers by DIFF; a follower
    /// further behind gets a SNAP.
    pub history_max: usize,
}

impl ZabConfig {
    /// ZooKeeper-like defaults for `voters` with this server `id`.
    #[must_use]
    pub fn new(id: ServerId, voters: Vec<ServerId>, tick_ms: u64) -> Self {
        ZabConfig {
            id,
            voters,
            tick_ms,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait_ms: 50,
            vote_resend_ms: 100,
            vote_resend_max_ms: 2_000,
            history_max: 100_000,
        }
    }

    /// How many voters make a quorum.
    #[must_use]
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// What a server found on disk at start.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The highest epoch this server accepted (LeaderInfo).
    pub accepted_epoch: u32,
    /// The epoch of the history this server holds (NewLeader).
    pub current_epoch: u32,
    /// The zxid of the state `recent` follows (the snapshot's zxid, or 0 for an empty
    /// history); with `recent` empty it is the server's last zxid.
    pub base_zxid: Zxid,
    /// The log after `base_zxid`, oldest first (all of it, or a tail: then `base_zxid` is
    /// the zxid of the entry before the tail). The leader syncs followers whose last zxid is
    /// at or after `base_zxid` by DIFF.
    pub recent: Vec<Entry>,
    /// The zxid of the newest snapshot this server installed from a leader (SNAP), 0 if
    /// none: its log cannot be cut below it (the driver persists it with the snapshot).
    pub installed_snapshot: Zxid,
}

impl Stored {
    /// The zxid of the last entry in the log.
    #[must_use]
    pub fn last_zxid(&self) -> Zxid {
        self.recent.last().map_or(self.base_zxid, |entry| entry.zxid)
    }
}
