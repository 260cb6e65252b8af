//! The Zab state machine (see the module docs of [`super`]).
//!
//! ```text
//! Looking ──quorum agrees + finalize wait──▶ Leading(Discovery) or Following(AwaitInfo)
//! Leading:   Discovery ─quorum FollowerInfo─▶ epoch chosen ─quorum AckEpoch─▶ Sync
//!            Sync ─quorum AckNewLeader (+ own log durable)─▶ Established
//! Following: AwaitInfo ─LeaderInfo─▶ AwaitSync ─Sync─▶ AwaitNewLeader ─NewLeader, log
//!            durable─▶ Acked ─UpToDate─▶ Broadcast
//! any        lost leader / lost quorum / init timeout ──▶ Looking (a new election round)
//! ```
//!
//! The log is kept as `history`: the entries after `floor` (a zxid known to be in the log),
//! sorted. Entries not yet applied are never dropped from it; applied ones are dropped from
//! the front beyond `history_max`, and a follower whose last zxid is below `floor` is synced
//! by SNAP.

use std::collections::{BTreeMap, VecDeque};

use super::{
    epoch_of, make_zxid, Action, Entry, Message, PeerState, Role, ServerId, Stored, SyncMode, Vote,
    ZabConfig, Zxid,
};

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

/// A vote's content, compared by (peer epoch, zxid, id) as ZooKeeper's
/// `totalOrderPredicate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ballot {
    leader: ServerId,
    zxid: Zxid,
    peer_epoch: u32,
}

impl Ballot {
    fn key(self) -> (u32, Zxid, ServerId) {
        (self.peer_epoch, self.zxid, self.leader)
    }

    fn beats(self, other: Ballot) -> bool {
        self.key() > other.key()
    }

    fn of(vote: &Vote) -> Ballot {
        Ballot { leader: vote.leader, zxid: vote.zxid, peer_epoch: vote.peer_epoch }
    }
}

#[derive(Debug)]
struct Election {
    ballot: Ballot,
    /// Votes of looking peers in this round.
    received: BTreeMap<ServerId, Ballot>,
    /// Votes of peers that follow or lead (any round).
    settled: BTreeMap<ServerId, (Ballot, PeerState, u64)>,
    finalize_at: Option<u64>,
    resend_at: u64,
    resend_interval: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerStage {
    /// FollowerInfo received; LeaderInfo sent once the epoch is known.
    Info { accepted_epoch: u32, last_zxid: Zxid },
    /// AckEpoch received; synced once the leader syncs. `counts`: towards the epoch's
    /// quorum (a server acks each epoch once).
    EpochAcked { current_epoch: u32, last_zxid: Zxid, counts: bool },
    /// Sync and NewLeader sent; in the forwarding set.
    Syncing,
    /// AckNewLeader received (UpToDate sent once established).
    Synced,
}

#[derive(Debug)]
struct Learner {
    stage: LearnerStage,
    acked: Zxid,
    heard_ms: u64,
}

impl Learner {
    fn forwarding(&self) -> bool {
        matches!(self.stage, LearnerStage::Syncing | LearnerStage::Synced)
    }
}

#[derive(Debug)]
struct Leader {
    ballot: Ballot,
    round: u64,
    /// The epoch proposed, once a quorum's FollowerInfo is in.
    epoch: Option<u32>,
    /// AckEpoch quorum reached: learners are synced as they ack.
    syncing: bool,
    /// The zxid NEWLEADER carries (the history the new epoch starts from).
    newleader_zxid: Zxid,
    established: bool,
    learners: BTreeMap<ServerId, Learner>,
    pending: Vec<Entry>,
    /// `sync`s waiting: (follower or None for this server, id, zxid to be committed).
    syncs: VecDeque<(Option<ServerId>, u64, Zxid)>,
    started_ms: u64,
    ping_at: u64,
}

impl Leader {
    /// Drops a learner and the `sync`s it is waiting for (its session with this leader is
    /// over: a later one must not get the answers).
    fn forget(&mut self, id: ServerId) {
        self.learners.remove(&id);
        self.syncs.retain(|&(origin, _, _)| origin != Some(id));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowerStage {
    AwaitInfo,
    AwaitSync,
    /// Sync applied; NewLeader not yet received.
    AwaitNewLeader,
    /// NewLeader received; acked once the log is durable up to `zxid`.
    NewLeader {
        epoch: u32,
        zxid: Zxid,
    },
    /// AckNewLeader sent; waiting for UpToDate.
    Acked {
        epoch: u32,
    },
    Broadcast {
        epoch: u32,
    },
}

#[derive(Debug)]
struct Follower {
    leader: ServerId,
    ballot: Ballot,
    round: u64,
    stage: FollowerStage,
    heard_ms: u64,
    started_ms: u64,
    ping_at: u64,
}

#[derive(Debug)]
enum Phase {
    Looking(Election),
    Leading(Leader),
    Following(Follower),
}

/// One server's Zab state.
#[derive(Debug)]
pub struct Zab {
    config: ZabConfig,
    now_ms: u64,
    accepted_epoch: u32,
    current_epoch: u32,
    floor: Zxid,
    /// The zxid of the leader's snapshot this state was installed from (SNAP), 0 if none,
    /// kept across restarts: the log cannot be cut below it. (A server's own snapshots keep
    /// older ones and the log after them, so the driver can cut below those.)
    base: Zxid,
    history: VecDeque<Entry>,
    durable: Zxid,
    committed: Zxid,
    applied: Zxid,
    round: u64,
    phase: Phase,
    role: Role,
    /// FollowerInfo that arrived while looking, replayed should this server lead.
    early_infos: BTreeMap<ServerId, (u32, Zxid)>,
}

impl Zab {
    /// A machine over what the server found on disk; call [`Zab::start`] next.
    ///
    /// # Panics
    /// If `stored.recent` is not sorted above `stored.base_zxid`.
    #[must_use]
    pub fn new(config: ZabConfig, stored: Stored, now_ms: u64) -> Zab {
        let last = stored.last_zxid();
        let mut previous = stored.base_zxid;
        for entry in &stored.recent {
            assert!(entry.zxid > previous, "stored entries out of order at {:#x}", entry.zxid);
            previous = entry.zxid;
        }
        Zab {
            now_ms,
            accepted_epoch: stored.accepted_epoch.max(stored.current_epoch),
            current_epoch: stored.current_epoch,
            floor: stored.base_zxid,
            base: stored.installed_snapshot,
            history: stored.recent.into(),
            durable: last,
            committed: 0,
            applied: last,
            round: 0,
            phase: Phase::Looking(Election {
                ballot: Ballot { leader: config.id, zxid: last, peer_epoch: stored.current_epoch },
                received: BTreeMap::new(),
                settled: BTreeMap::new(),
                finalize_at: None,
                resend_at: now_ms,
                resend_interval: config.vote_resend_ms,
            }),
            role: Role::Looking,
            early_infos: BTreeMap::new(),
            config,
        }
    }

    /// Starts looking for a leader.
    pub fn start(&mut self, out: &mut Vec<Action>) {
        self.look(out);
    }

    /// Time passes (call at least every few milliseconds of `tick_ms`).
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        self.now_ms = self.now_ms.max(now_ms);
        match &self.phase {
            Phase::Looking(_) => self.tick_looking(out),
            Phase::Following(_) => self.tick_following(out),
            Phase::Leading(_) => self.tick_leading(out),
        }
    }

    fn tick_looking(&mut self, out: &mut Vec<Action>) {
        let now = self.now_ms;
        let Phase::Looking(election) = &mut self.phase else { return };
        if election.finalize_at.is_some_and(|at| now >= at) {
            self.decide(out);
        } else if now >= election.resend_at {
            election.resend_interval =
                (election.resend_interval * 2).min(self.config.vote_resend_max_ms);
            election.resend_at = now + election.resend_interval;
            self.broadcast_vote(out);
        }
    }

    fn tick_following(&mut self, out: &mut Vec<Action>) {
        let now = self.now_ms;
        let tick = self.config.tick_ms;
        let Phase::Following(follower) = &mut self.phase else { return };
        let limit = match follower.stage {
            FollowerStage::Broadcast { .. } => self.config.sync_limit * tick,
            _ => self.config.init_limit * tick,
        };
        if now.saturating_sub(follower.heard_ms.max(follower.started_ms)) > limit {
            out.push(Action::Disconnect { peer: follower.leader });
            self.look(out);
            return;
        }
        if now < follower.ping_at {
            return;
        }
        match follower.stage {
            FollowerStage::Broadcast { .. } => {
                follower.ping_at = now + (tick / 2).max(1);
                let to = follower.leader;
                out.push(Action::Send { to, message: Message::Ping { committed: 0 } });
            }
            FollowerStage::AwaitInfo => {
                // The leader may not have been leading yet when the first one arrived.
                follower.ping_at = now + self.config.vote_resend_ms;
                self.send_follower_info(out);
            }
            _ => {}
        }
    }

    fn tick_leading(&mut self, out: &mut Vec<Action>) {
        let now = self.now_ms;
        let tick = self.config.tick_ms;
        let init_ms = self.config.init_limit * tick;
        let sync_ms = self.config.sync_limit * tick;
        let quorum = self.config.quorum();
        let Phase::Leading(leader) = &mut self.phase else { return };
        if !leader.established {
            if now.saturating_sub(leader.started_ms) > init_ms {
                self.look(out);
            }
            return;
        }
        leader.learners.retain(|&peer, learner| {
            let limit = if learner.stage == LearnerStage::Synced { sync_ms } else { init_ms };
            let alive = now.saturating_sub(learner.heard_ms) <= limit;
            if !alive {
                out.push(Action::Disconnect { peer });
            }
            alive
        });
        let learners = &leader.learners;
        leader.syncs.retain(|(origin, _, _)| origin.is_none_or(|id| learners.contains_key(&id)));
        let synced = leader.learners.values().filter(|l| l.stage == LearnerStage::Synced).count();
        if synced + 1 < quorum {
            self.look(out);
            return;
        }
        if now >= leader.ping_at {
            leader.ping_at = now + (tick / 2).max(1);
            let committed = self.committed;
            for &to in leader.learners.keys() {
                out.push(Action::Send { to, message: Message::Ping { committed } });
            }
        }
    }

    /// A message from a peer.
    pub fn receive(&mut self, from: ServerId, message: Message, out: &mut Vec<Action>) {
        if from == self.config.id || !self.config.voters.contains(&from) {
            return;
        }
        if let Message::Vote(vote) = message {
            self.on_vote(from, vote, out);
            return;
        }
        match &mut self.phase {
            Phase::Looking(_) => {
                if let Message::FollowerInfo { accepted_epoch, last_zxid } = message {
                    self.early_infos.insert(from, (accepted_epoch, last_zxid));
                }
            }
            Phase::Leading(_) => self.leader_receive(from, message, out),
            Phase::Following(follower) => {
                if from != follower.leader {
                    return;
                }
                if matches!(message, Message::FollowerInfo { .. }) {
                    // The server we follow follows someone else (maybe us): elect again
                    // rather than wait for each other until initLimit.
                    self.look(out);
                    return;
                }
                follower.heard_ms = self.now_ms;
                self.follower_receive(message, out);
            }
        }
    }

    /// The link to `peer` is up.
    pub fn connected(&mut self, peer: ServerId, out: &mut Vec<Action>) {
        match &self.phase {
            Phase::Looking(election) => {
                let message = Message::Vote(self.vote_message(election.ballot, PeerState::Looking));
                out.push(Action::Send { to: peer, message });
            }
            Phase::Following(follower) => {
                if follower.leader == peer && follower.stage == FollowerStage::AwaitInfo {
                    self.send_follower_info(out);
                }
            }
            Phase::Leading(_) => {}
        }
    }

    /// The link to `peer` broke; everything in flight on it is lost.
    pub fn disconnected(&mut self, peer: ServerId, out: &mut Vec<Action>) {
        self.early_infos.remove(&peer);
        match &mut self.phase {
            Phase::Looking(election) => {
                election.received.remove(&peer);
                election.settled.remove(&peer);
            }
            Phase::Following(follower) => {
                // Even before LeaderInfo: a leader whose link just broke is not worth
                // waiting initLimit ticks for.
                if follower.leader == peer {
                    self.look(out);
                }
            }
            Phase::Leading(leader) => {
                leader.forget(peer);
                if leader.established {
                    let synced = leader
                        .learners
                        .values()
                        .filter(|l| matches!(l.stage, LearnerStage::Synced))
                        .count();
                    if synced + 1 < self.config.quorum() {
                        self.look(out);
                    }
                }
            }
        }
    }

    /// The zxid the next proposal must carry, when this server leads an established epoch.
    #[must_use]
    pub fn next_zxid(&self) -> Option<Zxid> {
        let Phase::Leading(leader) = &self.phase else { return None };
        let epoch = leader.epoch.filter(|_| leader.established)?;
        let last = leader.pending.last().map_or(self.log_last(), |entry| entry.zxid);
        let counter = if epoch_of(last) == epoch { (last as u64 & 0xffff_ffff) + 1 } else { 1 };
        (counter < 0xffff_ffff).then(|| make_zxid(epoch, counter as u32))
    }

    /// Leader: queues a proposal (sent and appended at the next [`Zab::flush`]); its zxid
    /// must be [`Zab::next_zxid`]. Returns false (and drops it) when not leading.
    ///
    /// # Panics
    /// If the entry's zxid is not the next one.
    pub fn propose(&mut self, entry: Entry) -> bool {
        let Some(next) = self.next_zxid() else { return false };
        assert_eq!(entry.zxid, next, "proposal zxid");
        let Phase::Leading(leader) = &mut self.phase else { return false };
        leader.pending.push(entry);
        true
    }

    /// Sends and appends the proposals queued since the last flush (one batch).
    pub fn flush(&mut self, out: &mut Vec<Action>) {
        let Phase::Leading(leader) = &mut self.phase else { return };
        if leader.pending.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut leader.pending);
        for (&to, learner) in &leader.learners {
            if learner.forwarding() {
                let message = Message::Proposal { entries: entries.clone() };
                out.push(Action::Send { to, message });
            }
        }
        self.history.extend(entries.iter().cloned());
        out.push(Action::Append { entries });
    }

    /// The log is durable up to `zxid`.
    pub fn persisted(&mut self, zxid: Zxid, out: &mut Vec<Action>) {
        let durable = zxid.min(self.log_last());
        if durable <= self.durable {
            return;
        }
        self.durable = durable;
        match &mut self.phase {
            Phase::Looking(_) => {}
            Phase::Leading(_) => self.leader_commit(out),
            Phase::Following(follower) => match follower.stage {
                FollowerStage::NewLeader { .. } => self.follower_ack_newleader(out),
                FollowerStage::Acked { .. } | FollowerStage::Broadcast { .. } => {
                    let to = follower.leader;
                    out.push(Action::Send { to, message: Message::Ack { zxid: durable } });
                }
                _ => {}
            },
        }
    }

    /// A client's `sync`: [`Action::SyncDone`] once everything the leader proposed before it
    /// is applied here. Returns false when not serving.
    pub fn sync(&mut self, id: u64, out: &mut Vec<Action>) -> bool {
        if !self.role.serving() {
            return false;
        }
        let last = self.log_last();
        match &mut self.phase {
            Phase::Leading(leader) => {
                let target = leader.pending.last().map_or(last, |entry| entry.zxid);
                if target <= self.committed && leader.syncs.is_empty() {
                    out.push(Action::SyncDone { id });
                } else {
                    leader.syncs.push_back((None, id, target));
                }
                true
            }
            Phase::Following(follower) => {
                let to = follower.leader;
                out.push(Action::Send { to, message: Message::SyncRequest { id } });
                true
            }
            Phase::Looking(_) => false,
        }
    }

    /// Follower: sends a [`Message::Request`] or [`Message::Sessions`] to the leader.
    /// Returns false when not following a leader.
    pub fn send_to_leader(&mut self, message: Message, out: &mut Vec<Action>) -> bool {
        match &self.phase {
            Phase::Following(follower) if self.role.serving() => {
                out.push(Action::Send { to: follower.leader, message });
                true
            }
            _ => false,
        }
    }

    /// The current role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The zxid of the last entry in the log (appended, maybe not yet durable).
    #[must_use]
    pub fn last_zxid(&self) -> Zxid {
        self.log_last()
    }

    /// The highest zxid known committed.
    #[must_use]
    pub fn committed(&self) -> Zxid {
        self.committed
    }

    /// The highest zxid applied (or reflected in the state at start).
    #[must_use]
    pub fn applied(&self) -> Zxid {
        self.applied
    }

    /// The accepted and current epochs.
    #[must_use]
    pub fn epochs(&self) -> (u32, u32) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// The four-letter-word counters.
    #[must_use]
    pub fn stats(&self) -> ZabStats {
        match &self.phase {
            Phase::Leading(leader) => ZabStats {
                followers: leader.learners.len(),
                synced_followers: leader
                    .learners
                    .values()
                    .filter(|l| matches!(l.stage, LearnerStage::Synced))
                    .count(),
                pending_syncs: leader.syncs.len(),
            },
            _ => ZabStats::default(),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ZabConfig {
        &self.config
    }

    // ---- the log ----

    fn log_last(&self) -> Zxid {
        self.history.back().map_or(self.floor, |entry| entry.zxid)
    }

    /// Whether `zxid` is in the log as far as the history tells (the floor counts).
    fn holds(&self, zxid: Zxid) -> bool {
        zxid == self.floor || self.history.binary_search_by_key(&zxid, |e| e.zxid).is_ok()
    }

    /// Entries after `zxid`.
    fn entries_after(&self, zxid: Zxid) -> Vec<Entry> {
        let start = self.history.partition_point(|entry| entry.zxid <= zxid);
        self.history.range(start..).cloned().collect()
    }

    /// Applies committed entries and trims the history.
    fn apply_committed(&mut self, out: &mut Vec<Action>) {
        let start = self.history.partition_point(|entry| entry.zxid <= self.applied);
        for entry in self.history.range(start..) {
            if entry.zxid > self.committed {
                break;
            }
            self.applied = entry.zxid;
            out.push(Action::Apply(entry.clone()));
        }
        while self.history.len() > self.config.history_max
            && self.history.front().is_some_and(|entry| entry.zxid <= self.applied)
        {
            self.floor = self.history.pop_front().expect("checked").zxid;
        }
    }

    fn set_role(&mut self, role: Role, out: &mut Vec<Action>) {
        if self.role != role {
            self.role = role;
            out.push(Action::Role(role));
        }
    }

    // ---- election ----

    fn own_ballot(&self) -> Ballot {
        Ballot { leader: self.config.id, zxid: self.log_last(), peer_epoch: self.current_epoch }
    }

    fn vote_message(&self, ballot: Ballot, state: PeerState) -> Vote {
        Vote {
            leader: ballot.leader,
            zxid: ballot.zxid,
            peer_epoch: ballot.peer_epoch,
            round: self.round,
            state,
        }
    }

    /// A new election round.
    fn look(&mut self, out: &mut Vec<Action>) {
        self.round += 1;
        self.phase = Phase::Looking(Election {
            ballot: self.own_ballot(),
            received: BTreeMap::new(),
            settled: BTreeMap::new(),
            finalize_at: None,
            resend_at: self.now_ms + self.config.vote_resend_ms,
            resend_interval: self.config.vote_resend_ms,
        });
        self.set_role(Role::Looking, out);
        self.broadcast_vote(out);
        self.check_election(out);
    }

    fn broadcast_vote(&self, out: &mut Vec<Action>) {
        let Phase::Looking(election) = &self.phase else { return };
        let vote = self.vote_message(election.ballot, PeerState::Looking);
        for &to in &self.config.voters {
            if to != self.config.id {
                out.push(Action::Send { to, message: Message::Vote(vote) });
            }
        }
    }

    fn on_vote(&mut self, from: ServerId, vote: Vote, out: &mut Vec<Action>) {
        let ballot = Ballot::of(&vote);
        let own = self.own_ballot();
        let round = self.round;
        let reply = match &mut self.phase {
            Phase::Looking(election) => {
                if vote.state != PeerState::Looking {
                    election.settled.insert(from, (ballot, vote.state, vote.round));
                    if vote.round == round {
                        election.received.insert(from, ballot);
                    }
                    if let Some((leader_ballot, leader_round)) = self.settled_leader() {
                        self.round = self.round.max(leader_round);
                        self.follow_or_lead(leader_ballot, out);
                        return;
                    }
                } else if vote.round > round {
                    self.round = vote.round;
                    election.received.clear();
                    election.finalize_at = None;
                    election.ballot = if ballot.beats(own) { ballot } else { own };
                    election.received.insert(from, ballot);
                    self.broadcast_vote(out);
                } else if vote.round < round {
                    let b = election.ballot;
                    let reply = Vote {
                        leader: b.leader,
                        zxid: b.zxid,
                        peer_epoch: b.peer_epoch,
                        round,
                        state: PeerState::Looking,
                    };
                    out.push(Action::Send { to: from, message: Message::Vote(reply) });
                    return;
                } else {
                    election.received.insert(from, ballot);
                    if ballot.beats(election.ballot) {
                        election.ballot = ballot;
                        election.finalize_at = None;
                        self.broadcast_vote(out);
                    }
                }
                self.check_election(out);
                return;
            }
            Phase::Leading(leader) => Vote {
                leader: leader.ballot.leader,
                zxid: leader.ballot.zxid,
                peer_epoch: leader.ballot.peer_epoch,
                round: leader.round,
                state: PeerState::Leading,
            },
            Phase::Following(follower) => Vote {
                leader: follower.ballot.leader,
                zxid: follower.ballot.zxid,
                peer_epoch: follower.ballot.peer_epoch,
                round: follower.round,
                state: PeerState::Following,
            },
        };
        if vote.state == PeerState::Looking {
            out.push(Action::Send { to: from, message: Message::Vote(reply) });
        }
    }

    /// A quorum of settled peers (and this server's vote) that agree on a leader who says it
    /// leads (ZooKeeper's out-of-election check).
    fn settled_leader(&self) -> Option<(Ballot, u64)> {
        let Phase::Looking(election) = &self.phase else { return None };
        for (&id, &(ballot, state, round)) in &election.settled {
            if state != PeerState::Leading || ballot.leader != id {
                continue;
            }
            let agreeing =
                election.settled.values().filter(|(b, _, _)| b.leader == ballot.leader).count();
            if agreeing + 1 >= self.config.quorum() {
                return Some((ballot, round));
            }
        }
        None
    }

    /// Starts (or cancels) the finalize wait depending on whether a quorum agrees; decides
    /// at once when every voter agrees.
    fn check_election(&mut self, out: &mut Vec<Action>) {
        let quorum = self.config.quorum();
        let voters = self.config.voters.len();
        let now = self.now_ms;
        let wait = self.config.finalize_wait_ms;
        let Phase::Looking(election) = &mut self.phase else { return };
        let agreeing = 1 + election.received.values().filter(|&&b| b == election.ballot).count();
        if agreeing >= quorum {
            if agreeing == voters {
                election.finalize_at = Some(now);
            } else if election.finalize_at.is_none() {
                election.finalize_at = Some(now + wait);
            }
        } else {
            election.finalize_at = None;
        }
        if election.finalize_at.is_some_and(|at| at <= now) {
            self.decide(out);
        }
    }

    fn decide(&mut self, out: &mut Vec<Action>) {
        let Phase::Looking(election) = &self.phase else { return };
        let ballot = election.ballot;
        self.follow_or_lead(ballot, out);
    }

    fn follow_or_lead(&mut self, ballot: Ballot, out: &mut Vec<Action>) {
        let now = self.now_ms;
        if ballot.leader == self.config.id {
            self.phase = Phase::Leading(Leader {
                ballot,
                round: self.round,
                epoch: None,
                syncing: false,
                newleader_zxid: 0,
                established: false,
                learners: BTreeMap::new(),
                pending: Vec::new(),
                syncs: VecDeque::new(),
                started_ms: now,
                ping_at: now,
            });
            self.set_role(Role::Syncing { leader: self.config.id, epoch: 0 }, out);
            let infos = std::mem::take(&mut self.early_infos);
            for (from, (accepted_epoch, last_zxid)) in infos {
                self.leader_receive(from, Message::FollowerInfo { accepted_epoch, last_zxid }, out);
            }
            self.leader_discovery_progress(out);
        } else {
            self.early_infos.clear();
            self.phase = Phase::Following(Follower {
                leader: ballot.leader,
                ballot,
                round: self.round,
                stage: FollowerStage::AwaitInfo,
                heard_ms: now,
                started_ms: now,
                ping_at: now,
            });
            self.set_role(Role::Syncing { leader: ballot.leader, epoch: 0 }, out);
            self.send_follower_info(out);
        }
    }

    // ---- follower ----

    fn send_follower_info(&self, out: &mut Vec<Action>) {
        let Phase::Following(follower) = &self.phase else { return };
        let message = Message::FollowerInfo {
            accepted_epoch: self.accepted_epoch,
            last_zxid: self.log_last(),
        };
        out.push(Action::Send { to: follower.leader, message });
    }

    fn follower_receive(&mut self, message: Message, out: &mut Vec<Action>) {
        let Phase::Following(follower) = &mut self.phase else { return };
        let leader = follower.leader;
        match (follower.stage, message) {
            (FollowerStage::AwaitInfo, Message::LeaderInfo { epoch }) => {
                if epoch < self.accepted_epoch {
                    self.look(out);
                    return;
                }
                follower.stage = FollowerStage::AwaitSync;
                let role = Role::Syncing { leader, epoch };
                let counts = epoch > self.accepted_epoch;
                if counts {
                    self.accepted_epoch = epoch;
                    out.push(Action::PersistEpochs {
                        accepted: epoch,
                        current: self.current_epoch,
                    });
                }
                self.set_role(role, out);
                let message = Message::AckEpoch {
                    current_epoch: self.current_epoch,
                    last_zxid: self.log_last(),
                    counts,
                };
                out.push(Action::Send { to: leader, message });
            }
            (FollowerStage::AwaitSync, Message::Sync { mode, entries }) => {
                follower.stage = FollowerStage::AwaitNewLeader;
                if !self.apply_sync(mode, entries, out) {
                    // A TRUNC below our snapshot (it came from a leader that never
                    // established): we cannot cut a snapshot, and wiping could drop the
                    // only copy of committed txns. Stay out, as ZooKeeper's follower exits;
                    // an operator wipes this server's data to let it resync by SNAP.
                    out.push(Action::Disconnect { peer: leader });
                    self.look(out);
                }
            }
            (FollowerStage::AwaitNewLeader, Message::NewLeader { epoch, zxid }) => {
                follower.stage = FollowerStage::NewLeader { epoch, zxid };
                self.follower_ack_newleader(out);
            }
            (
                FollowerStage::AwaitNewLeader
                | FollowerStage::NewLeader { .. }
                | FollowerStage::Acked { .. }
                | FollowerStage::Broadcast { .. },
                Message::Proposal { entries },
            ) => self.append(entries, out),
            (
                FollowerStage::NewLeader { .. }
                | FollowerStage::Acked { .. }
                | FollowerStage::Broadcast { .. },
                Message::Commit { zxid },
            ) => self.follower_commit(zxid, out),
            (FollowerStage::Acked { epoch }, Message::UpToDate { committed }) => {
                follower.stage = FollowerStage::Broadcast { epoch };
                self.follower_commit(committed, out);
            }
            (FollowerStage::Broadcast { .. }, Message::SyncReply { id }) => {
                out.push(Action::SyncDone { id });
            }
            (_, Message::Ping { .. }) => {}
            _ => {}
        }
    }

    /// Applies a Sync; false when it asks to truncate below the state's snapshot.
    fn apply_sync(&mut self, mode: SyncMode, entries: Vec<Entry>, out: &mut Vec<Action>) -> bool {
        match mode {
            SyncMode::Diff => {}
            SyncMode::Trunc { to } if to < self.base => return false,
            SyncMode::Trunc { to } => {
                if to < self.log_last() {
                    let keep = self.history.partition_point(|entry| entry.zxid <= to);
                    self.history.truncate(keep);
                    if to < self.floor {
                        self.floor = to;
                    }
                    // The state is rebuilt from the whole remaining log (the driver
                    // contract), and the leader holds all of it as committed history.
                    self.durable = self.durable.min(to);
                    self.applied = to;
                    self.committed = to;
                    out.push(Action::Truncate { after: to });
                }
            }
            SyncMode::Snap { zxid, data } => {
                self.history.clear();
                self.floor = zxid;
                self.base = zxid;
                self.durable = zxid;
                self.applied = zxid;
                self.committed = zxid;
                out.push(Action::InstallSnapshot { zxid, data });
            }
        }
        self.append(entries, out);
        true
    }

    fn append(&mut self, entries: Vec<Entry>, out: &mut Vec<Action>) {
        let last = self.log_last();
        let entries: Vec<Entry> = entries.into_iter().filter(|entry| entry.zxid > last).collect();
        if entries.is_empty() {
            return;
        }
        self.history.extend(entries.iter().cloned());
        out.push(Action::Append { entries });
    }

    fn follower_ack_newleader(&mut self, out: &mut Vec<Action>) {
        let Phase::Following(follower) = &mut self.phase else { return };
        let FollowerStage::NewLeader { epoch, zxid } = follower.stage else { return };
        if self.durable < zxid {
            return;
        }
        follower.stage = FollowerStage::Acked { epoch };
        let leader = follower.leader;
        self.current_epoch = epoch;
        self.accepted_epoch = self.accepted_epoch.max(epoch);
        out.push(Action::PersistEpochs { accepted: self.accepted_epoch, current: epoch });
        out.push(Action::Send { to: leader, message: Message::AckNewLeader { zxid } });
        if self.durable > zxid {
            out.push(Action::Send { to: leader, message: Message::Ack { zxid: self.durable } });
        }
    }

    fn follower_commit(&mut self, zxid: Zxid, out: &mut Vec<Action>) {
        let zxid = zxid.min(self.log_last());
        if zxid > self.committed {
            self.committed = zxid;
            self.apply_committed(out);
        }
        // Serve once up to date and once the commits cover what the state holds (a restart
        // loads logged txns the old leader may never have committed).
        let Phase::Following(follower) = &self.phase else { return };
        if let FollowerStage::Broadcast { epoch } = follower.stage {
            if self.committed >= self.applied {
                let role = Role::Following { leader: follower.leader, epoch };
                self.set_role(role, out);
            }
        }
    }

    // ---- leader ----

    fn leader_receive(&mut self, from: ServerId, message: Message, out: &mut Vec<Action>) {
        let now = self.now_ms;
        let last = self.log_last();
        let Phase::Leading(leader) = &mut self.phase else { return };
        if let Some(learner) = leader.learners.get_mut(&from) {
            learner.heard_ms = now;
        }
        match message {
            Message::FollowerInfo { accepted_epoch, last_zxid } => {
                if let Some(learner) = leader.learners.get(&from) {
                    if let LearnerStage::Info { .. } = learner.stage {
                        // A repeated FollowerInfo: answer again below.
                    } else {
                        // The learner started over: forget what it had.
                        leader.forget(from);
                    }
                }
                if leader.established && leader.epoch.is_some_and(|epoch| accepted_epoch > epoch) {
                    // It accepted a later epoch from a leader that never established: it
                    // can never follow this epoch, so elect again (a new epoch above all).
                    self.look(out);
                    return;
                }
                let stage = LearnerStage::Info { accepted_epoch, last_zxid };
                leader.learners.insert(from, Learner { stage, acked: 0, heard_ms: now });
                if let Some(epoch) = leader.epoch {
                    out.push(Action::Send { to: from, message: Message::LeaderInfo { epoch } });
                } else {
                    self.leader_discovery_progress(out);
                }
            }
            Message::AckEpoch { current_epoch, last_zxid, counts } => {
                let Some(learner) = leader.learners.get_mut(&from) else { return };
                if !matches!(learner.stage, LearnerStage::Info { .. }) || leader.epoch.is_none() {
                    return;
                }
                learner.stage = LearnerStage::EpochAcked { current_epoch, last_zxid, counts };
                if leader.syncing {
                    self.sync_learner(from, out);
                } else {
                    self.leader_sync_progress(out);
                }
            }
            Message::AckNewLeader { zxid } => {
                let Some(learner) = leader.learners.get_mut(&from) else { return };
                if learner.stage != LearnerStage::Syncing || zxid != leader.newleader_zxid {
                    return;
                }
                learner.stage = LearnerStage::Synced;
                learner.acked = learner.acked.max(zxid);
                if leader.established {
                    let committed = self.committed;
                    out.push(Action::Send { to: from, message: Message::UpToDate { committed } });
                    self.leader_commit(out);
                } else {
                    self.leader_establish(out);
                }
            }
            Message::Ack { zxid } => {
                let Some(learner) = leader.learners.get_mut(&from) else { return };
                if learner.stage == LearnerStage::Synced && zxid > learner.acked {
                    learner.acked = zxid;
                    if leader.established {
                        self.leader_commit(out);
                    }
                }
            }
            Message::Ping { .. } => {}
            Message::Request { payload }
                if leader.established
                    && leader.learners.get(&from).is_some_and(Learner::forwarding) =>
            {
                out.push(Action::Request { from, payload });
            }
            Message::Sessions { payload }
                if leader.learners.get(&from).is_some_and(Learner::forwarding) =>
            {
                out.push(Action::Sessions { from, payload });
            }
            Message::SyncRequest { id } => {
                if !leader.learners.get(&from).is_some_and(Learner::forwarding) {
                    return;
                }
                let target = leader.pending.last().map_or(last, |e| e.zxid);
                if target <= self.committed && leader.syncs.is_empty() {
                    out.push(Action::Send { to: from, message: Message::SyncReply { id } });
                } else {
                    leader.syncs.push_back((Some(from), id, target));
                }
            }
            _ => {}
        }
    }

    /// Discovery: with a quorum's FollowerInfo, choose the epoch and answer them all.
    fn leader_discovery_progress(&mut self, out: &mut Vec<Action>) {
        let quorum = self.config.quorum();
        let Phase::Leading(leader) = &mut self.phase else { return };
        if leader.epoch.is_some() || leader.learners.len() + 1 < quorum {
            return;
        }
        let highest = leader
            .learners
            .values()
            .filter_map(|learner| match learner.stage {
                LearnerStage::Info { accepted_epoch, .. } => Some(accepted_epoch),
                _ => None,
            })
            .fold(self.accepted_epoch, u32::max);
        let epoch = highest + 1;
        leader.epoch = Some(epoch);
        self.accepted_epoch = epoch;
        out.push(Action::PersistEpochs { accepted: epoch, current: self.current_epoch });
        for &to in leader.learners.keys() {
            out.push(Action::Send { to, message: Message::LeaderInfo { epoch } });
        }
        let role = Role::Syncing { leader: self.config.id, epoch };
        self.set_role(role, out);
        self.leader_sync_progress(out);
    }

    /// With a quorum's AckEpoch, take the epoch as current and sync every acked learner.
    fn leader_sync_progress(&mut self, out: &mut Vec<Action>) {
        let quorum = self.config.quorum();
        let last = self.log_last();
        let own = (self.current_epoch, last);
        let Phase::Leading(leader) = &mut self.phase else { return };
        if leader.epoch.is_none() || leader.syncing {
            return;
        }
        let acked: Vec<(ServerId, (u32, Zxid), bool)> = leader
            .learners
            .iter()
            .filter_map(|(&id, learner)| match learner.stage {
                LearnerStage::EpochAcked { current_epoch, last_zxid, counts } => {
                    Some((id, (current_epoch, last_zxid), counts))
                }
                _ => None,
            })
            .collect();
        if acked.iter().filter(|&&(_, _, counts)| counts).count() + 1 < quorum {
            return;
        }
        if acked.iter().any(|&(_, theirs, _)| theirs > own) {
            // A follower holds a later history than this leader: elect again.
            self.look(out);
            return;
        }
        leader.syncing = true;
        leader.newleader_zxid = last;
        for (id, _, _) in acked {
            self.sync_learner(id, out);
        }
        self.leader_establish(out);
    }

    /// Brings one learner that acked the epoch in line (DIFF, TRUNC or SNAP + NEWLEADER).
    fn sync_learner(&mut self, id: ServerId, out: &mut Vec<Action>) {
        let Phase::Leading(leader) = &self.phase else { return };
        let Some(learner) = leader.learners.get(&id) else { return };
        let LearnerStage::EpochAcked { last_zxid, .. } = learner.stage else { return };
        let epoch = leader.epoch.expect("epoch chosen before sync");
        let last = self.log_last();
        if last_zxid >= self.floor && self.holds(last_zxid) {
            let entries = self.entries_after(last_zxid);
            out.push(Action::Send {
                to: id,
                message: Message::Sync { mode: SyncMode::Diff, entries },
            });
        } else {
            // The largest zxid of ours not above theirs: they hold it (Zab's prefix
            // property), and everything of theirs after it is unknown here.
            let common = if last_zxid > last {
                Some(last)
            } else {
                let at = self.history.partition_point(|entry| entry.zxid <= last_zxid);
                match at {
                    0 if last_zxid >= self.floor => Some(self.floor),
                    0 => None,
                    at => Some(self.history[at - 1].zxid),
                }
            };
            match common {
                Some(to) if to >= self.floor => {
                    let entries = self.entries_after(to);
                    let mode = SyncMode::Trunc { to };
                    out.push(Action::Send { to: id, message: Message::Sync { mode, entries } });
                }
                _ => {
                    let entries = self.entries_after(self.applied);
                    out.push(Action::SendSnapshot { to: id, zxid: self.applied, entries });
                }
            }
        }
        let Phase::Leading(leader) = &mut self.phase else { return };
        let newleader = Message::NewLeader { epoch, zxid: leader.newleader_zxid };
        out.push(Action::Send { to: id, message: newleader });
        // Proposals after NEWLEADER's zxid that were flushed before this sync went out in
        // the Sync's entries; the ones after reach the learner as broadcast.
        let learner = leader.learners.get_mut(&id).expect("checked");
        learner.stage = LearnerStage::Syncing;
        if leader.established && self.committed > leader.newleader_zxid {
            let committed = self.committed;
            out.push(Action::Send { to: id, message: Message::Commit { zxid: committed } });
        }
    }

    /// With a quorum of AckNewLeader and its own log durable, the leader commits its
    /// history and starts serving.
    fn leader_establish(&mut self, out: &mut Vec<Action>) {
        let quorum = self.config.quorum();
        let durable = self.durable;
        let Phase::Leading(leader) = &mut self.phase else { return };
        if leader.established || !leader.syncing || durable < leader.newleader_zxid {
            return;
        }
        let synced =
            leader.learners.values().filter(|l| matches!(l.stage, LearnerStage::Synced)).count();
        if synced + 1 < quorum {
            return;
        }
        leader.established = true;
        let epoch = leader.epoch.expect("established epochs are chosen");
        let committed = leader.newleader_zxid;
        // The epoch becomes current only with its starting history durable here: a server
        // that crashed with a new current epoch over a shorter log would win elections it
        // must lose, and truncate committed txns.
        self.current_epoch = epoch;
        out.push(Action::PersistEpochs { accepted: self.accepted_epoch, current: epoch });
        for (&to, learner) in &leader.learners {
            if learner.stage == LearnerStage::Synced {
                out.push(Action::Send { to, message: Message::UpToDate { committed } });
            }
        }
        self.committed = self.committed.max(committed);
        self.apply_committed(out);
        self.set_role(Role::Leading { epoch }, out);
        self.leader_commit(out);
    }

    /// Commits what a quorum holds durable and answers the syncs it covers.
    fn leader_commit(&mut self, out: &mut Vec<Action>) {
        let quorum = self.config.quorum();
        let durable = self.durable;
        let Phase::Leading(leader) = &mut self.phase else { return };
        if !leader.established {
            if leader.syncing {
                self.leader_establish(out);
            }
            return;
        }
        let mut acks: Vec<Zxid> = leader
            .learners
            .values()
            .filter(|l| l.stage == LearnerStage::Synced)
            .map(|l| l.acked)
            .collect();
        acks.push(durable);
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&candidate) = acks.get(quorum - 1) else { return };
        if candidate > self.committed {
            self.committed = candidate;
            for (&to, learner) in &leader.learners {
                if learner.forwarding() {
                    out.push(Action::Send { to, message: Message::Commit { zxid: candidate } });
                }
            }
            self.apply_committed(out);
        }
        let Phase::Leading(leader) = &mut self.phase else { return };
        while leader.syncs.front().is_some_and(|&(_, _, zxid)| zxid <= self.committed) {
            let (origin, id, _) = leader.syncs.pop_front().expect("checked");
            match origin {
                Some(to) => out.push(Action::Send { to, message: Message::SyncReply { id } }),
                None => out.push(Action::SyncDone { id }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use super::*;

    /// A tiny lock-step ensemble: FIFO links, instant fsync, a clock moved by hand.
    struct Ensemble {
        nodes: Vec<Option<Zab>>,
        logs: Vec<Vec<Entry>>,
        applied: Vec<Vec<Zxid>>,
        epochs: Vec<(u32, u32)>,
        queue: VecDeque<(ServerId, ServerId, Message)>,
        fsyncs: VecDeque<(ServerId, Zxid)>,
        now: u64,
    }

    impl Ensemble {
        fn new(n: u64) -> Ensemble {
            let mut ensemble = Ensemble {
                nodes: (0..n).map(|_| None).collect(),
                logs: vec![Vec::new(); n as usize],
                applied: vec![Vec::new(); n as usize],
                epochs: vec![(0, 0); n as usize],
                queue: VecDeque::new(),
                fsyncs: VecDeque::new(),
                now: 0,
            };
            for id in 1..=n {
                ensemble.start(id);
            }
            ensemble
        }

        fn start(&mut self, id: ServerId) {
            let n = self.nodes.len() as u64;
            let config = ZabConfig::new(id, (1..=n).collect(), 100);
            let i = (id - 1) as usize;
            let stored = Stored {
                accepted_epoch: self.epochs[i].0,
                current_epoch: self.epochs[i].1,
                base_zxid: 0,
                recent: self.logs[i].clone(),
                installed_snapshot: 0,
            };
            self.applied[i] = self.logs[i].iter().map(|e| e.zxid).collect();
            let mut zab = Zab::new(config, stored, self.now);
            let mut out = Vec::new();
            zab.start(&mut out);
            self.nodes[i] = Some(zab);
            for peer in 1..=n {
                if peer != id && self.nodes[(peer - 1) as usize].is_some() {
                    self.with(id, |z, out| z.connected(peer, out));
                    self.with(peer, |z, out| z.connected(id, out));
                }
            }
            self.run(id, out);
        }

        fn crash(&mut self, id: ServerId) {
            self.nodes[(id - 1) as usize] = None;
            self.queue.retain(|(from, to, _)| *from != id && *to != id);
            self.fsyncs.retain(|(node, _)| *node != id);
            for peer in 1..=self.nodes.len() as u64 {
                if peer != id {
                    self.with(peer, |z, out| z.disconnected(id, out));
                }
            }
        }

        fn with(&mut self, id: ServerId, f: impl FnOnce(&mut Zab, &mut Vec<Action>)) {
            let mut out = Vec::new();
            let Some(zab) = self.nodes[(id - 1) as usize].as_mut() else { return };
            f(zab, &mut out);
            self.run(id, out);
        }

        fn run(&mut self, id: ServerId, out: Vec<Action>) {
            let i = (id - 1) as usize;
            for action in out {
                match action {
                    Action::Send { to, message } => self.queue.push_back((id, to, message)),
                    Action::SendSnapshot { to, zxid, entries } => {
                        let data: Vec<u8> =
                            self.applied[i].iter().flat_map(|z| z.to_be_bytes()).collect();
                        let mode = SyncMode::Snap { zxid, data: data.into() };
                        self.queue.push_back((id, to, Message::Sync { mode, entries }));
                    }
                    Action::PersistEpochs { accepted, current } => {
                        self.epochs[i] = (accepted, current);
                    }
                    Action::Append { entries } => {
                        let last = entries.last().expect("non-empty").zxid;
                        self.logs[i].extend(entries);
                        self.fsyncs.push_back((id, last));
                    }
                    Action::Truncate { after } => {
                        self.logs[i].retain(|e| e.zxid <= after);
                        self.applied[i].retain(|&z| z <= after);
                    }
                    Action::InstallSnapshot { zxid, data } => {
                        self.logs[i].clear();
                        self.applied[i] = data
                            .chunks(8)
                            .map(|c| i64::from_be_bytes(c.try_into().unwrap()))
                            .collect();
                        assert_eq!(self.applied[i].last().copied().unwrap_or(0), zxid);
                    }
                    Action::Apply(entry) => {
                        assert!(self.applied[i].last().is_none_or(|&z| z < entry.zxid));
                        self.applied[i].push(entry.zxid);
                    }
                    Action::Role(_)
                    | Action::Disconnect { .. }
                    | Action::Request { .. }
                    | Action::Sessions { .. }
                    | Action::SyncDone { .. } => {}
                }
            }
        }

        /// Delivers messages and fsyncs until quiet, ticking the clock by 10 ms per round.
        fn settle(&mut self, ms: u64) {
            let end = self.now + ms;
            while self.now < end {
                while let Some((from, to, message)) = self.queue.pop_front() {
                    self.with(to, |z, out| z.receive(from, message, out));
                }
                while let Some((id, zxid)) = self.fsyncs.pop_front() {
                    self.with(id, |z, out| z.persisted(zxid, out));
                }
                self.now += 10;
                for id in 1..=self.nodes.len() as u64 {
                    let now = self.now;
                    self.with(id, |z, out| z.tick(now, out));
                }
            }
        }

        fn leader(&self) -> Option<ServerId> {
            self.nodes
                .iter()
                .flatten()
                .find_map(|z| matches!(z.role(), Role::Leading { .. }).then_some(z.config().id))
        }

        fn propose(&mut self, count: usize) {
            let leader = self.leader().expect("a leader");
            self.with(leader, |z, out| {
                for _ in 0..count {
                    let zxid = z.next_zxid().expect("leading");
                    assert!(z.propose(Entry { zxid, data: Arc::from(&b"x"[..]) }));
                }
                z.flush(out);
            });
        }
    }

    #[test]
    fn elects_commits_and_resyncs() {
        let mut ensemble = Ensemble::new(3);
        ensemble.settle(1_000);
        let leader = ensemble.leader().expect("elected");
        assert_eq!(leader, 3, "the highest id wins among equal logs");
        ensemble.propose(5);
        ensemble.settle(200);
        for applied in &ensemble.applied {
            assert_eq!(applied.len(), 5);
        }
        // Kill the leader: the others elect 2, keep the history and commit more.
        ensemble.crash(3);
        ensemble.settle(1_000);
        assert_eq!(ensemble.leader(), Some(2));
        ensemble.propose(3);
        ensemble.settle(200);
        assert_eq!(ensemble.applied[0].len(), 8);
        assert_eq!(ensemble.applied[1], ensemble.applied[0]);
        // The old leader comes back and catches up by DIFF.
        ensemble.start(3);
        ensemble.settle(1_000);
        assert_eq!(ensemble.applied[2], ensemble.applied[0]);
        assert_eq!(ensemble.leader(), Some(2));
    }

    #[test]
    fn uncommitted_tail_is_truncated() {
        let mut ensemble = Ensemble::new(3);
        ensemble.settle(1_000);
        ensemble.propose(2);
        ensemble.settle(200);
        // The leader logs two more proposals that never reach anyone, then dies.
        let leader = ensemble.leader().unwrap();
        ensemble.propose(2);
        ensemble.queue.clear();
        ensemble.crash(leader);
        ensemble.settle(1_000);
        ensemble.propose(1);
        ensemble.settle(200);
        ensemble.start(leader);
        ensemble.settle(1_000);
        let i = (leader - 1) as usize;
        assert_eq!(ensemble.applied[i].len(), 3, "{:x?}", ensemble.applied);
        assert_eq!(ensemble.applied[i], ensemble.applied[(leader % 3) as usize]);
        assert_eq!(ensemble.logs[i].len(), 3);
    }

    #[test]
    fn lagging_follower_gets_a_snapshot() {
        let mut ensemble = Ensemble::new(3);
        for zab in ensemble.nodes.iter_mut().flatten() {
            zab.config.history_max = 4;
        }
        ensemble.settle(1_000);
        ensemble.crash(1);
        for _ in 0..5 {
            ensemble.propose(3);
            ensemble.settle(50);
        }
        ensemble.start(1);
        for zab in ensemble.nodes.iter_mut().flatten() {
            zab.config.history_max = 4;
        }
        ensemble.settle(1_000);
        assert_eq!(ensemble.applied[0].len(), 15);
        assert_eq!(ensemble.applied[0], ensemble.applied[1]);
    }
}
