//! The server's Zab driver: one `zabflow node` of a replicated ensemble (`server.N` lines in
//! zoo.cfg), ZooKeeper's `QuorumPeer` + `Leader`/`Follower` request processors.
//!
//! ```text
//! peers ──PeerTransport events──▶ Zab::receive/connected/disconnected ─┐
//! txn log ──Synced──▶ Zab::persisted                                     ├─▶ actions, in order
//! every pass ──▶ Zab::tick, Zab::flush (this pass's proposals, one batch)┘
//!   Send → transport · Append → sync thread (group commit) · Apply → tree + replies
//!   PersistEpochs → acceptedEpoch/currentEpoch files · Truncate/InstallSnapshot → rewrite
//!   the log (and snapshots), reload the tree · Role → serve or drop every client
//! leader    client write → Prep → Zab::propose;  follower's Request → Prep → propose
//! follower  client write → Request to the leader; the reply goes out when its txn applies
//!           (matched by session and cxid); sessions touched here are relayed every half
//!           tick so the leader, which alone expires sessions, sees them alive
//! sync      Zab::sync → SyncDone once every write proposed before it is applied here
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use zabflow_net::jute::{Id, Reader, Record, Request, RequestHeader, Response, Writer};

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::server::{log_event, Origin};
use crate::txn::read_entry;
use crate::watch_manager::SessionId;
use crate::zab::transport::{PeerEvent, PeerTransport};
use crate::zab::{Action, Entry, Message, Role, Stored, Zab, ZabConfig};

const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
const CURRENT_EPOCH_FILE: &str = "currentEpoch";
/// The zxid of the newest snapshot installed from a leader (SNAP), in hex.
const INSTALLED_SNAPSHOT_FILE: &str = "installedSnapshot";

/// The replication state of a server in an ensemble.
pub(crate) struct Ensemble {
    pub zab: Zab,
    transport: PeerTransport,
    pub out: Vec<Action>,
    /// The action list being executed while `out` collects the next one: the two swap, so a
    /// pass allocates no action list.
    executing: Vec<Action>,
    /// Writes forwarded to the leader, by (session, cxid), waiting for their txn.
    pub origins: HashMap<(SessionId, i32), Origin>,
    /// `sync`s waiting for [`Action::SyncDone`]: id → (connection, xid, path).
    syncs: HashMap<u64, (u64, i32, String)>,
    next_sync_id: u64,
    /// Sessions active on this server since the last report to the leader.
    pub touched: HashMap<SessionId, i32>,
    next_report_ms: u64,
}

/// Reads `acceptedEpoch` and `currentEpoch` from the snapshot directory (0 when absent).
///
/// # Errors
/// [`Error::Io`] on a read failure, [`Error::Config`] for a file that holds no number.
pub(crate) fn read_epochs(dir: &Path) -> Result<(u32, u32)> {
    let read = |name: &str| -> Result<u32> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                Error::Config(format!("{}: not an epoch: {:?}", path.display(), text.trim()))
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(Error::io(format!("read {}", path.display()), &error)),
        }
    };
    Ok((read(ACCEPTED_EPOCH_FILE)?, read(CURRENT_EPOCH_FILE)?))
}

/// Reads `installedSnapshot` (0 when absent).
///
/// # Errors
/// [`Error::Io`] on a read failure, [`Error::Config`] for a file that holds no zxid.
pub(crate) fn read_installed_snapshot(dir: &Path) -> Result<i64> {
    let path = dir.join(INSTALLED_SNAPSHOT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => i64::from_str_radix(text.trim().trim_start_matches("0x"), 16).map_err(|_| {
            Error::Config(format!("{}: not a zxid: {:?}", path.display(), text.trim()))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(Error::io(format!("read {}", path.display()), &error)),
    }
}

/// Writes one epoch file durably (temp file, fsync, rename, fsync of the directory).
fn write_epoch(dir: &Path, name: &str, epoch: u32) -> Result<()> {
    write_durably(dir, name, &format!("{epoch}\n"))
}

/// Writes `text` to `dir/name` durably (temp file, fsync, rename, fsync of the directory).
fn write_durably(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|error| Error::io(format!("create {}", dir.display()), &error))?;
    zabflow_core::durable_file::replace(&dir.join(name), text.as_bytes())
        .map_err(|error| Error::Io { context: "write".to_owned(), message: error.to_string() })
}

/// A follower's forwarded write: session, cxid, auth ids, then the request (header + body),
/// appended to `writer`.
pub(crate) fn encode_forward(
    writer: &mut Writer,
    session_id: SessionId,
    cxid: i32,
    auth_ids: &[Id],
    request: &Request,
) {
    writer.write_long(session_id);
    writer.write_vector(auth_ids, |writer, id| id.write(writer));
    RequestHeader { xid: cxid, op: request.op_code().code() }.write(writer);
    request.write_body(writer);
}

/// The inverse of [`encode_forward`].
fn decode_forward(payload: &[u8]) -> Option<(SessionId, Vec<Id>, RequestHeader, Request)> {
    let mut reader = Reader::new(payload);
    let session_id = reader.read_long().ok()?;
    let auth_ids = reader.read_vector(8, Id::read).ok()?;
    let rest = reader.read_bytes(reader.remaining()).ok()?;
    let (header, request) = Request::decode(rest).ok()?;
    Some((session_id, auth_ids, header, request))
}

fn encode_sessions(sessions: &HashMap<SessionId, i32>) -> Vec<u8> {
    let mut writer = Writer::new();
    for (&id, &timeout) in sessions {
        writer.write_long(id);
        writer.write_int(timeout);
    }
    writer.into_vec()
}

impl Ensemble {
    /// Starts the peer links; the machine starts looking at the first pass.
    pub fn open(
        config: &ServerConfig,
        stored: Stored,
        now_ms: u64,
        registry: &mio::Registry,
        token: mio::Token,
    ) -> Result<Ensemble> {
        let id = config.my_id.ok_or_else(|| {
            Error::Config("an ensemble member needs dataDir/myid naming its server.N".into())
        })?;
        let voters: Vec<u64> = config.peers.iter().map(|peer| peer.id).collect();
        if !voters.contains(&id) {
            return Err(Error::Config(format!("myid {id} has no server.{id} line")));
        }
        let mut zab_config = ZabConfig::new(id, voters, u64::from(config.tick_time_ms));
        zab_config.init_limit = u64::from(config.init_limit);
        zab_config.sync_limit = u64::from(config.sync_limit);
        zab_config.history_max = crate::constants::ZAB_HISTORY_MAX;
        let transport = PeerTransport::start_inline(id, &config.peers, Default::default())?;
        let fd = transport.raw_fd().expect("an inline transport has a poll");
        registry
            .register(&mut mio::unix::SourceFd(&fd), token, mio::Interest::READABLE)
            .map_err(|error| Error::io("register the peer poll", &error))?;
        let mut zab = Zab::new(zab_config, stored, now_ms);
        let mut out = Vec::new();
        zab.start(&mut out);
        Ok(Ensemble {
            zab,
            transport,
            out,
            executing: Vec::new(),
            origins: HashMap::new(),
            syncs: HashMap::new(),
            next_sync_id: 0,
            touched: HashMap::new(),
            next_report_ms: now_ms,
        })
    }

    /// Reads the peer links and feeds their events and the clock to the machine.
    pub fn poll(&mut self, now_ms: u64) {
        self.transport.turn();
        while let Some(event) = self.transport.try_recv() {
            match event {
                PeerEvent::Connected(peer) => self.zab.connected(peer, &mut self.out),
                PeerEvent::Disconnected(peer) => self.zab.disconnected(peer, &mut self.out),
                PeerEvent::Received(peer, message) => {
                    self.zab.receive(peer, message, &mut self.out);
                }
            }
        }
        self.zab.tick(now_ms, &mut self.out);
        if now_ms >= self.next_report_ms {
            self.next_report_ms = now_ms + (self.zab.config().tick_ms / 2).max(1);
            if matches!(self.zab.role(), Role::Following { .. }) && !self.touched.is_empty() {
                let payload = encode_sessions(&self.touched);
                self.touched.clear();
                self.zab.send_to_leader(Message::Sessions { payload }, &mut self.out);
            }
        }
    }

    /// Writes the messages queued for peers since the last turn (the end of a pass).
    pub fn flush_peers(&mut self) {
        self.transport.send_queued();
    }

    /// How long the server may sleep before the peer links need a turn.
    pub fn peers_due_in(&self) -> std::time::Duration {
        self.transport.turn_due_in()
    }

    /// Stops the peer links.
    pub fn stop(&mut self) {
        self.transport.stop();
    }
}

impl crate::server::Server {
    fn ensemble_mut(&mut self) -> &mut Ensemble {
        self.ensemble.as_mut().expect("an ensemble member")
    }

    /// Executes the machine's actions until it has none left.
    pub(crate) fn run_zab(&mut self) -> Result<()> {
        loop {
            let ensemble = self.ensemble_mut();
            let mut actions = std::mem::take(&mut ensemble.executing);
            std::mem::swap(&mut actions, &mut ensemble.out);
            if actions.is_empty() {
                ensemble.executing = actions;
                return Ok(());
            }
            for action in actions.drain(..) {
                self.execute(action)?;
            }
            self.ensemble_mut().executing = actions;
        }
    }

    fn execute(&mut self, action: Action) -> Result<()> {
        match action {
            Action::Send { to, message } => self.ensemble_mut().transport.send(to, message),
            Action::Disconnect { peer } => self.ensemble_mut().transport.disconnect(peer),
            Action::SendSnapshot { to, zxid, entries } => {
                let data = crate::snapshot::serialize(&self.tree, &self.session_list(), 0);
                log_event(&format!(
                    "syncing server {to} by SNAP at 0x{zxid:x} ({} bytes)",
                    data.len()
                ));
                let mode = crate::zab::SyncMode::Snap { zxid, data: data.into() };
                self.ensemble_mut().transport.send(to, Message::Sync { mode, entries });
            }
            Action::PersistEpochs { accepted, current } => {
                let dir = self.config.snapshot_dir();
                let (old_accepted, old_current) = read_epochs(&dir)?;
                if accepted != old_accepted {
                    write_epoch(&dir, ACCEPTED_EPOCH_FILE, accepted)?;
                }
                if current != old_current {
                    write_epoch(&dir, CURRENT_EPOCH_FILE, current)?;
                }
            }
            Action::Append { entries } => {
                let last_zxid = entries.last().map_or(0, |entry| entry.zxid);
                let records = entries.iter().map(|entry| Arc::clone(&entry.data)).collect();
                self.sync_submit(crate::sync_processor::SyncBatch { records, last_zxid });
            }
            Action::Truncate { after } => {
                log_event(&format!("TRUNC: dropping txns after 0x{after:x}"));
                self.rewrite_log(|log| log.truncate_after_zxid(after), Some(after), None)?;
                // Everything kept was made durable when the sync thread stopped.
                let ensemble = self.ensemble_mut();
                ensemble.zab.persisted(after, &mut ensemble.out);
            }
            Action::InstallSnapshot { zxid, data } => {
                log_event(&format!("SNAP: installing the leader's state at 0x{zxid:x}"));
                let snap = crate::snapshot::deserialize(&data).map_err(|message| {
                    Error::Snapshot { path: "SNAP from the leader".into(), message }
                })?;
                self.rewrite_log(|log| log.clear(), Some(zxid), Some(snap))?;
                let dir = self.config.snapshot_dir();
                write_durably(&dir, INSTALLED_SNAPSHOT_FILE, &format!("0x{zxid:x}\n"))?;
            }
            Action::Apply(entry) => self.apply_entry(&entry)?,
            Action::Role(role) => self.on_role(role),
            Action::Request { from, payload } => self.on_forwarded(from, &payload),
            Action::Sessions { payload, .. } => {
                let now = self.clock.now_ms();
                let mut reader = Reader::new(&payload);
                while let (Ok(id), Ok(_timeout)) = (reader.read_long(), reader.read_int()) {
                    self.tracker.touch(id, now);
                }
            }
            Action::SyncDone { id } => self.on_sync_done(id),
        }
        Ok(())
    }

    fn session_list(&self) -> Vec<(SessionId, i32)> {
        let mut sessions: Vec<(SessionId, i32)> =
            self.sessions.iter().map(|(&id, entry)| (id, entry.timeout_ms)).collect();
        sessions.sort_unstable();
        sessions
    }

    /// Applies one committed entry and answers whoever waits for it here.
    fn apply_entry(&mut self, entry: &Entry) -> Result<()> {
        if self.in_flight.front().is_some_and(|f| f.header.zxid == entry.zxid) {
            let in_flight = self.in_flight.pop_front().expect("checked");
            self.apply(in_flight);
            return Ok(());
        }
        let (header, txn) = read_entry(&entry.data)?;
        let origin = self
            .ensemble_mut()
            .origins
            .remove(&(header.client_id, header.cxid))
            .unwrap_or(Origin::Internal);
        self.apply(crate::server::InFlight { header, txn, origin });
        Ok(())
    }

    /// A follower's forwarded write, at the leader.
    fn on_forwarded(&mut self, from: u64, payload: &[u8]) {
        let Some((session_id, auth_ids, header, request)) = decode_forward(payload) else {
            log_event(&format!("server {from} forwarded an undecodable request; dropped"));
            return;
        };
        if matches!(request, Request::CloseSession) {
            self.tracker.set_closing(session_id);
        }
        self.tracker.touch(session_id, self.clock.now_ms());
        self.prepare_and_submit(session_id, header.xid, &request, &auth_ids, Origin::Internal);
    }

    fn on_role(&mut self, role: Role) {
        log_event(&format!("role: {role:?}"));
        self.read_only_on_role(role);
        self.set_sync_inline(matches!(role, Role::Following { .. } | Role::Syncing { .. }));
        if !role.serving() {
            let ids: Vec<u64> = self.connections.keys().copied().collect();
            for id in ids {
                if self.connections.get(&id).is_some_and(|c| c.session_id().is_some()) {
                    self.close_connection(id, "the server lost its quorum (not serving)");
                }
            }
            self.in_flight.clear();
            self.prep.clear();
            let ensemble = self.ensemble_mut();
            ensemble.origins.clear();
            ensemble.syncs.clear();
        }
        if matches!(role, Role::Leading { .. }) {
            // A new leader gives every session a whole timeout from now, as ZooKeeper.
            let now = self.clock.now_ms();
            let sessions: Vec<(SessionId, i32)> = self.session_list();
            for (id, timeout) in sessions {
                self.tracker.track_session(id, timeout, now);
                self.tracker.touch(id, now);
            }
        }
    }

    /// A client's `sync` in an ensemble.
    pub(crate) fn ensemble_sync(&mut self, connection: u64, xid: i32, path: String) -> bool {
        let ensemble = self.ensemble_mut();
        let id = ensemble.next_sync_id;
        ensemble.next_sync_id += 1;
        if !ensemble.zab.sync(id, &mut ensemble.out) {
            return false;
        }
        ensemble.syncs.insert(id, (connection, xid, path));
        true
    }

    fn on_sync_done(&mut self, id: u64) {
        let Some((connection, xid, path)) = self.ensemble_mut().syncs.remove(&id) else { return };
        let body = Response::Sync(zabflow_net::jute::SyncResponse { path });
        self.complete_write(connection, xid, self.tree.last_processed_zxid(), 0, Some(&body));
    }

    /// Rewrites the log (TRUNC, SNAP) with the sync thread stopped, then reloads the tree
    /// from disk: snapshots above `keep_below` are deleted first (they hold dropped txns),
    /// and `snap` (a SNAP from the leader) is written as the newest snapshot.
    fn rewrite_log(
        &mut self,
        edit: impl FnOnce(&mut crate::txn_log::TxnLog) -> Result<()>,
        keep_below: Option<i64>,
        snap: Option<crate::snapshot::Snapshot>,
    ) -> Result<()> {
        self.stop_sync()?;
        let mut log = crate::txn_log::TxnLog::open(&self.config.txn_log_dir(), true)?;
        edit(&mut log)?;
        log.sync()?;
        let offset = log.next_offset();
        drop(log);
        let dir = self.config.snapshot_dir();
        if let Some(keep) = keep_below {
            for (zxid, path) in crate::snapshot::list(&dir)? {
                if zxid > keep {
                    std::fs::remove_file(&path)
                        .map_err(|error| Error::io(format!("remove {}", path.display()), &error))?;
                }
            }
        }
        if let Some(snap) = snap {
            let bytes = crate::snapshot::serialize(&snap.tree, &snap.sessions, offset);
            crate::snapshot::write(&dir, snap.last_zxid, &bytes)?;
        }
        self.reload()?;
        // Only a follower rewrites its log: it appends small groups inline again.
        self.set_sync_inline(true);
        Ok(())
    }
}
