//! `Server`: one standalone ZooKeeper-compatible server — the mio event loop that owns the
//! connections, the tree, the preparer and the session tracker, and drives the pipeline.
//!
//! ```text
//! client frame → Connection (bounded buffers) → route
//!   read  → answered from the tree when the session has no unapplied write before it
//!   write → Prep::prepare (zxid, wall time) → txn batch of this loop pass
//!         → SyncProcessor (one append + fdatasync per group; a small group on this thread
//!           at the end of the pass, a large one on the sync thread) → Synced
//!         → DataTree::apply → prep.applied → watch events, then the reply (xid order)
//! timers: session expiry (closeSession txns), container/TTL reaper (deleteContainer txns,
//!         client id 0), autopurge, snapshots every snapCount txns
//! ```
//!
//! One thread owns all state, so the read path takes no lock; the only other threads are
//! the sync thread (the disk, under load) and short-lived snapshot writers. Back-pressure: a connection
//! stops being read while its output is above `CONNECTION_OUTPUT_BYTES_HIGH` or it has
//! `CONNECTION_PENDING_REQUESTS_MAX` requests in flight, and every connection stops while
//! `TXNS_IN_FLIGHT_MAX` txns wait for the disk. On start the server loads the newest valid
//! snapshot, replays the txn log after it and re-tracks the sessions it finds, as ZooKeeper.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{unbounded, Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use zabflow_net::jute::{FrameDecoder, OpCode, Request, Writer};

use crate::zab::Message;

use crate::config::ServerConfig;
use crate::connection::Connection;
use crate::constants::{
    CONNECTIONS_MAX, ENCODE_SCRATCH_BYTES_INITIAL, ENCODE_SCRATCH_BYTES_RETAINED_MAX,
    POLL_TIMEOUT_MS_MAX, TXNS_IN_FLIGHT_MAX,
};
use crate::data_tree::DataTree;
use crate::error::{Error, Result};
use crate::prep::{Prep, PrepConfig, RequestContext};
use crate::session_tracker::SessionTracker;
use crate::snapshot;
use crate::sync_processor::{SyncBatch, SyncProcessor, Synced};
use crate::txn::{write_entry, Txn, TxnHeader};
use crate::txn_log::{encode, TxnLog};
use crate::watch_manager::SessionId;

const LISTENER: Token = Token(usize::MAX - 1);
/// The secure (TLS) client port's listener.
const SECURE_LISTENER: Token = Token(usize::MAX - 4);
const WAKER: Token = Token(usize::MAX - 2);
/// The ensemble's peer links (an inline [`crate::zab::transport::PeerTransport`]'s poll).
const PEERS: Token = Token(usize::MAX - 3);

/// A session whose createSession is applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionEntry {
    pub timeout_ms: i32,
    pub connection: Option<u64>,
}

/// Who waits for a txn.
#[derive(Debug)]
pub(crate) enum Origin {
    Client { connection: u64, xid: i32, op: OpCode, received: Instant },
    Connect { connection: u64, timeout_ms: i32, read_only: Option<bool> },
    Internal,
}

/// A txn prepared and sent to the log, not yet applied.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub header: TxnHeader,
    pub txn: Txn,
    pub origin: Origin,
}

/// Monotonic milliseconds on the wall-clock scale of the start (session ids and expiry).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_wall_ms: i64,
}

impl Clock {
    fn new() -> Self {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Clock { start: Instant::now(), start_wall_ms: wall.as_millis() as i64 }
    }

    /// Milliseconds since the server started.
    pub fn uptime_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Milliseconds: start's wall time plus monotonic time since.
    pub fn now_ms(&self) -> i64 {
        self.start_wall_ms + self.start.elapsed().as_millis() as i64
    }
}

/// The standalone server.
pub struct Server {
    pub(crate) config: ServerConfig,
    poll: Poll,
    listener: Option<TcpListener>,
    local_address: Option<SocketAddr>,
    /// `secureClientPort`: its listener and the TLS configuration of its connections.
    secure_listener: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    secure_address: Option<SocketAddr>,
    pub(crate) decoder: FrameDecoder,
    pub(crate) connections: HashMap<u64, Connection>,
    per_ip: HashMap<IpAddr, u32>,
    next_connection_id: u64,
    pub(crate) dirty: HashSet<u64>,
    pub(crate) paused: HashSet<u64>,
    pub(crate) tree: DataTree,
    pub(crate) prep: Prep,
    pub(crate) tracker: SessionTracker,
    pub(crate) sessions: HashMap<SessionId, SessionEntry>,
    pub(crate) next_zxid: i64,
    pub(crate) in_flight: VecDeque<InFlight>,
    batch: SyncBatch,
    /// Where txn records and forwarded requests are encoded before they are copied once
    /// into a buffer of their exact size (a fresh writer grows through several reallocations
    /// per record; `malloc`/`realloc` were 6-9% of a 3-node server's samples).
    pub(crate) scratch: EncodeScratch,
    sync: SyncProcessor,
    synced: Receiver<Synced>,
    synced_sender: Sender<Synced>,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// Replication, when zoo.cfg names an ensemble (two or more `server.N` lines).
    pub(crate) ensemble: Option<crate::ensemble::Ensemble>,
    pub(crate) stats: crate::server_stats::ServerStats,
    pub(crate) clock: Clock,
    /// The log offset after the last applied txn: where a snapshot's replay starts.
    log_offset_end: u64,
    /// Ensemble: durable groups not yet applied, as (last zxid, log offset after it); a
    /// follower's or leader's log holds txns before they commit.
    durable_groups: VecDeque<(i64, u64)>,
    txns_since_snapshot: u64,
    snapshot_writer: Option<JoinHandle<Result<std::path::PathBuf>>>,
    next_reap_ms: i64,
    next_purge_ms: i64,
    /// The read-only server, while this member serves read-only clients.
    pub(crate) read_only: Option<crate::read_only::ReadOnlyServer>,
    /// When the read-only server starts, while LOOKING with read-only mode enabled.
    pub(crate) read_only_start_ms: Option<i64>,
}

/// A reusable jute writer for records that leave the event loop as buffers of their own.
pub(crate) struct EncodeScratch {
    writer: Writer,
}

impl EncodeScratch {
    fn new() -> Self {
        EncodeScratch { writer: Writer::with_capacity(ENCODE_SCRATCH_BYTES_INITIAL) }
    }

    /// Encodes with `write` and returns the bytes in a `Vec` of their exact size.
    pub(crate) fn encode(&mut self, write: impl FnOnce(&mut Writer)) -> Vec<u8> {
        self.run(write, <[u8]>::to_vec)
    }

    /// Encodes with `write` and returns the bytes in a shared buffer of their exact size.
    pub(crate) fn encode_shared(&mut self, write: impl FnOnce(&mut Writer)) -> Arc<[u8]> {
        self.run(write, |bytes| Arc::from(bytes))
    }

    fn run<T>(&mut self, write: impl FnOnce(&mut Writer), copy: impl FnOnce(&[u8]) -> T) -> T {
        self.writer.clear();
        write(&mut self.writer);
        let bytes = copy(self.writer.as_bytes());
        if self.writer.capacity() > ENCODE_SCRATCH_BYTES_RETAINED_MAX {
            self.writer = Writer::with_capacity(ENCODE_SCRATCH_BYTES_INITIAL);
        }
        bytes
    }
}

/// Prints one event line on stderr.
pub fn log_event(message: &str) {
    eprintln!("zabflow node: {message}");
}

/// Binds `address` and registers the listener under `token`; returns the bound address.
fn listen(poll: &Poll, address: SocketAddr, token: Token) -> Result<(TcpListener, SocketAddr)> {
    let mut listener =
        TcpListener::bind(address).map_err(|e| Error::io(format!("bind {address}"), &e))?;
    poll.registry()
        .register(&mut listener, token, Interest::READABLE)
        .map_err(|e| Error::io("register listener", &e))?;
    let bound = listener.local_addr().map_err(|e| Error::io("local address", &e))?;
    Ok((listener, bound))
}

/// What recovery found on disk.
struct Recovered {
    tree: DataTree,
    sessions: HashMap<SessionId, SessionEntry>,
    log: TxnLog,
    last_zxid: i64,
    /// The zxid before `recent` (the snapshot's, or the last txn dropped from `recent`).
    base_zxid: i64,
    /// The last `keep_recent` txns replayed, for Zab's DIFF.
    recent: VecDeque<crate::zab::Entry>,
}

/// An ensemble's membership into `/zookeeper/config` (a standalone server leaves it empty),
/// with the version a configuration no reconfig has changed has.
fn set_dynamic_config(tree: &mut DataTree, config: &ServerConfig, now_ms: i64) {
    let version = crate::reconfig::CONFIG_VERSION_INITIAL;
    if let Some(text) = config.dynamic_config_text(version) {
        tree.set_config(text.as_bytes(), version, now_ms);
    }
}

fn recover(config: &ServerConfig, keep_recent: usize) -> Result<Recovered> {
    let loaded = snapshot::load_newest(&config.snapshot_dir(), &mut |w| log_event(&w))?;
    let (mut tree, mut sessions, offset, after) = match loaded {
        Some(snap) => {
            log_event(&format!("loaded snapshot at zxid 0x{:x}", snap.last_zxid));
            let sessions = snap
                .sessions
                .iter()
                .map(|&(id, timeout_ms)| (id, SessionEntry { timeout_ms, connection: None }))
                .collect();
            (snap.tree, sessions, snap.log_offset, snap.last_zxid)
        }
        None => (DataTree::new(), HashMap::new(), 0, 0),
    };
    let mut log = TxnLog::open(&config.txn_log_dir(), config.force_sync)?;
    let mut replayed = 0u64;
    let mut base_zxid = after;
    let mut recent = VecDeque::new();
    let last_zxid = log.replay(offset, after, |header, txn| {
        tree.apply(header, txn);
        if keep_recent > 0 {
            if recent.len() == keep_recent {
                let dropped: crate::zab::Entry = recent.pop_front().expect("full");
                base_zxid = dropped.zxid;
            }
            let data: Arc<[u8]> = encode(header, txn).into();
            recent.push_back(crate::zab::Entry { zxid: header.zxid, data });
        }
        match txn {
            Txn::CreateSession(create) => {
                let entry = SessionEntry { timeout_ms: create.time_out, connection: None };
                sessions.insert(header.client_id, entry);
            }
            Txn::CloseSession(_) => {
                sessions.remove(&header.client_id);
            }
            _ => {}
        }
        replayed += 1;
    })?;
    log_event(&format!("replayed {replayed} txns; last zxid 0x{last_zxid:x}"));
    Ok(Recovered { tree, sessions, log, last_zxid, base_zxid, recent })
}

impl Server {
    /// Recovers the data and binds the client port.
    ///
    /// # Errors
    /// Recovery failures and [`Error::Io`] when the port cannot be bound.
    pub fn open(config: ServerConfig) -> Result<Server> {
        // A keystore that cannot be used stops the server before it touches its data.
        let secure_tls = match config.secure_client_address() {
            Some(_) => {
                let (tls, warnings) = config.tls.server_config()?;
                warnings.iter().for_each(|warning| log_event(warning));
                Some(tls)
            }
            None => None,
        };
        let replicated = config.peers.len() > 1;
        let keep_recent = if replicated { crate::constants::ZAB_HISTORY_MAX } else { 0 };
        let Recovered { tree, sessions, log, last_zxid, base_zxid, recent } =
            recover(&config, keep_recent)?;
        let clock = Clock::new();
        let now_ms = clock.now_ms();
        let server_id = config.my_id.unwrap_or(0) as u8;
        let mut tracker = SessionTracker::new(config.tick_time_ms, server_id, now_ms);
        for (&session_id, entry) in &sessions {
            tracker.track_session(session_id, entry.timeout_ms, now_ms);
        }
        let poll = Poll::new().map_err(|e| Error::io("create poll", &e))?;
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("waker", &e))?);
        let (synced_sender, synced) = unbounded();
        let log_offset_end = log.next_offset();
        let wake = Arc::new(move || {
            let _ = waker.wake();
        });
        let sync = SyncProcessor::start(log, synced_sender.clone(), wake.clone())?;
        let ensemble = if replicated {
            let (accepted_epoch, current_epoch) =
                crate::ensemble::read_epochs(&config.snapshot_dir())?;
            let stored = crate::zab::Stored {
                accepted_epoch,
                current_epoch,
                base_zxid,
                recent: recent.into(),
                installed_snapshot: crate::ensemble::read_installed_snapshot(
                    &config.snapshot_dir(),
                )?,
            };
            let registry = poll.registry();
            let uptime_ms = clock.uptime_ms();
            Some(crate::ensemble::Ensemble::open(&config, stored, uptime_ms, registry, PEERS)?)
        } else {
            None
        };
        let (listener, local_address) = match config.client_address() {
            Some(address) => {
                let (listener, bound) = listen(&poll, address, LISTENER)?;
                (Some(listener), Some(bound))
            }
            None => (None, None),
        };
        let (secure_listener, secure_address) = match (config.secure_client_address(), secure_tls) {
            (Some(address), Some(tls)) => {
                let (listener, bound) = listen(&poll, address, SECURE_LISTENER)?;
                (Some((listener, tls)), Some(bound))
            }
            _ => (None, None),
        };
        let mut tree = tree;
        set_dynamic_config(&mut tree, &config, clock.now_ms());
        let prep_config = PrepConfig {
            extended_types_enabled: config.extended_types_enabled,
            reconfig: config.reconfig_config(),
        };
        let mut server = Server {
            decoder: FrameDecoder::new(config.packet_bytes_max),
            poll,
            listener,
            local_address,
            secure_listener,
            secure_address,
            connections: HashMap::new(),
            per_ip: HashMap::new(),
            next_connection_id: 0,
            dirty: HashSet::new(),
            paused: HashSet::new(),
            next_zxid: last_zxid.max(tree.last_processed_zxid()) + 1,
            tree,
            prep: Prep::new(prep_config),
            tracker,
            sessions,
            in_flight: VecDeque::new(),
            batch: SyncBatch::default(),
            scratch: EncodeScratch::new(),
            sync,
            synced,
            synced_sender,
            wake,
            ensemble,
            stats: crate::server_stats::ServerStats::default(),
            clock,
            log_offset_end,
            durable_groups: VecDeque::new(),
            txns_since_snapshot: 0,
            snapshot_writer: None,
            next_reap_ms: now_ms + config.container_check_interval_ms as i64,
            next_purge_ms: now_ms,
            read_only: None,
            read_only_start_ms: None,
            config,
        };
        server.purge_if_due(now_ms);
        if let Some(address) = local_address {
            log_event(&format!("serving clients on {address}"));
        }
        if let Some(address) = secure_address {
            log_event(&format!("serving TLS clients on {address}"));
        }
        Ok(server)
    }

    /// The address the plain client port is bound to (`None`: only the secure port is set).
    #[must_use]
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.local_address
    }

    /// The address the secure (TLS) client port is bound to, when set.
    #[must_use]
    pub fn secure_address(&self) -> Option<SocketAddr> {
        self.secure_address
    }

    /// Serves until `stop` is set, then drains the pipeline and syncs the log.
    ///
    /// # Errors
    /// A failed txn log write (the server cannot acknowledge writes any more).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        let mut events = Events::with_capacity(1024);
        while !stop.load(Ordering::Relaxed) {
            let mut wait_ms =
                self.tracker.wait_ms(self.clock.now_ms()).clamp(1, POLL_TIMEOUT_MS_MAX as i64);
            if let Some(ensemble) = &self.ensemble {
                let peers_ms = ensemble.peers_due_in().as_millis() as i64;
                wait_ms = wait_ms.min(crate::constants::ZAB_POLL_MS).min(peers_ms);
            }
            match self.poll.poll(&mut events, Some(Duration::from_millis(wait_ms as u64))) {
                Err(error) if error.kind() != std::io::ErrorKind::Interrupted => {
                    return Err(Error::io("poll", &error));
                }
                _ => {}
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept_all(false),
                    SECURE_LISTENER => self.accept_all(true),
                    // The pass below turns the peer links.
                    WAKER | PEERS => {}
                    Token(id) => {
                        if event.is_writable() {
                            self.dirty.insert(id as u64);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.drive(id as u64);
                        }
                    }
                }
            }
            self.pass()?;
        }
        self.shutdown()
    }

    /// The work after each poll: apply what is durable, run timers, resume paused
    /// connections, queue this pass's txns for the log, write replies and peer messages,
    /// then get the txns written (a few inline, see [`SyncProcessor::kick`]).
    fn pass(&mut self) -> Result<()> {
        if let Some(ensemble) = &mut self.ensemble {
            ensemble.poll(self.clock.uptime_ms());
            self.run_zab()?;
        }
        self.drain_synced()?;
        self.on_timers();
        self.resume_paused();
        self.flush_batch()?;
        if let Some(ensemble) = &mut self.ensemble {
            ensemble.flush_peers();
        }
        self.flush_dirty();
        self.sync.kick()
    }

    /// Whether clients are served (always, standalone; with an established leader in an
    /// ensemble).
    pub(crate) fn serving(&self) -> bool {
        self.ensemble.as_ref().is_none_or(|e| e.zab.role().serving())
    }

    /// Whether this server runs session expiry and the container reaper (standalone, or the
    /// leader of an ensemble).
    fn reaps(&self) -> bool {
        self.ensemble
            .as_ref()
            .is_none_or(|e| matches!(e.zab.role(), crate::zab::Role::Leading { .. }))
    }

    fn shutdown(&mut self) -> Result<()> {
        log_event("shutting down: draining the pipeline");
        if let Some(ensemble) = &mut self.ensemble {
            ensemble.stop();
            self.in_flight.clear();
        }
        self.flush_batch()?;
        self.sync.kick()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.in_flight.is_empty() && Instant::now() < deadline {
            if let Ok(message) = self.synced.recv_timeout(Duration::from_millis(100)) {
                self.on_synced(message)?;
            }
        }
        self.flush_dirty();
        self.sync.stop()?;
        if let Some(writer) = self.snapshot_writer.take() {
            let _ = writer.join();
        }
        log_event("shutdown complete: txn log synced");
        Ok(())
    }

    /// Accepts every waiting connection of the plain or the secure port.
    fn accept_all(&mut self, secure: bool) {
        loop {
            let accepted = match (secure, &self.listener, &self.secure_listener) {
                (false, Some(listener), _) => listener.accept(),
                (true, _, Some((listener, _))) => listener.accept(),
                _ => return,
            };
            let (mut socket, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let per_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            let max = self.config.max_client_cnxns;
            if self.connections.len() >= CONNECTIONS_MAX || (max > 0 && per_ip >= max) {
                log_event(&format!("too many connections from {}; refused", peer.ip()));
                continue;
            }
            let tls = match &self.secure_listener {
                Some((_, config)) if secure => {
                    match rustls::ServerConnection::new(config.clone()) {
                        Ok(tls) => Some(tls),
                        Err(error) => {
                            log_event(&format!("TLS session for {peer} not created: {error}"));
                            continue;
                        }
                    }
                }
                _ => None,
            };
            let id = self.next_connection_id;
            self.next_connection_id += 1;
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self.poll.registry().register(&mut socket, Token(id as usize), interest).is_err() {
                continue;
            }
            let _ = socket.set_nodelay(true);
            *self.per_ip.entry(peer.ip()).or_default() += 1;
            self.connections.insert(id, Connection::new(id, socket, peer, tls, Instant::now()));
        }
    }

    /// Processes buffered frames and reads until the socket is drained or reading pauses.
    pub(crate) fn drive(&mut self, id: u64) {
        loop {
            self.process_frames(id);
            let in_flight_full = self.in_flight.len() >= TXNS_IN_FLIGHT_MAX;
            let Some(connection) = self.connections.get_mut(&id) else { return };
            if connection.read_blocked() || in_flight_full {
                self.paused.insert(id);
                return;
            }
            match connection.read_chunk() {
                crate::connection::ReadOutcome::Data => {}
                crate::connection::ReadOutcome::WouldBlock => return,
                crate::connection::ReadOutcome::Closed => {
                    self.close_connection(id, "closed by the client");
                    return;
                }
            }
        }
    }

    fn resume_paused(&mut self) {
        if self.paused.is_empty() || self.in_flight.len() >= TXNS_IN_FLIGHT_MAX {
            return;
        }
        let paused: Vec<u64> = self.paused.drain().collect();
        for id in paused {
            if self.connections.get(&id).is_some_and(|c| !c.read_blocked()) {
                self.drive(id);
            } else if self.connections.contains_key(&id) {
                self.paused.insert(id);
            }
        }
    }

    fn flush_dirty(&mut self) {
        let dirty: Vec<u64> = self.dirty.drain().collect();
        for id in dirty {
            let Some(connection) = self.connections.get_mut(&id) else { continue };
            if connection.flush().is_err() {
                self.close_connection(id, "write failed");
            } else if connection.output_overflowed() {
                self.close_connection(id, "client does not read its replies");
            } else if connection.finished() {
                self.close_connection(id, "closed by the server");
            } else if self.paused.contains(&id) && !connection.read_blocked() {
                self.drive(id);
            }
        }
    }

    /// Drops a connection; its session lives on until it expires or is resumed.
    pub(crate) fn close_connection(&mut self, id: u64, why: &str) {
        let Some(mut connection) = self.connections.remove(&id) else { return };
        let _ = connection.flush();
        connection.close_tls();
        let _ = self.poll.registry().deregister(&mut connection.socket);
        if let Some(count) = self.per_ip.get_mut(&connection.peer.ip()) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&connection.peer.ip());
            }
        }
        self.paused.remove(&id);
        if let Some(session_id) = connection.session_id() {
            if let Some(entry) = self.sessions.get_mut(&session_id) {
                if entry.connection == Some(id) {
                    entry.connection = None;
                    self.tree.watches_mut().remove_session(session_id);
                }
            }
            log_event(&format!(
                "connection {} of session 0x{session_id:x}: {why}",
                connection.peer
            ));
        }
    }

    /// Prepares a write and queues its txn for the log (standalone), proposes it (leader)
    /// or forwards it to the leader (follower).
    pub(crate) fn submit_write(
        &mut self,
        session_id: SessionId,
        cxid: i32,
        request: &Request,
        connection: Option<u64>,
        origin: Origin,
    ) {
        let no_ids = Vec::new();
        let auth_ids = connection
            .and_then(|id| self.connections.get(&id))
            .map_or(&no_ids, |c| &c.auth_ids)
            .clone();
        if let Some(ensemble) = &mut self.ensemble {
            if matches!(ensemble.zab.role(), crate::zab::Role::Following { .. }) {
                let payload = self.scratch.encode(|writer| {
                    crate::ensemble::encode_forward(writer, session_id, cxid, &auth_ids, request);
                });
                if ensemble.zab.send_to_leader(Message::Request { payload }, &mut ensemble.out) {
                    ensemble.origins.insert((session_id, cxid), origin);
                }
                return;
            }
        }
        self.prepare_and_submit(session_id, cxid, request, &auth_ids, origin);
    }

    /// Prepares a write at the zxid it gets and queues it: for the log (standalone) or as
    /// a proposal (leader).
    pub(crate) fn prepare_and_submit(
        &mut self,
        session_id: SessionId,
        cxid: i32,
        request: &Request,
        auth_ids: &[zabflow_net::jute::Id],
        origin: Origin,
    ) {
        let zxid = match &self.ensemble {
            None => self.next_zxid,
            Some(ensemble) => match ensemble.zab.next_zxid() {
                Some(zxid) => zxid,
                None => {
                    log_event("a write arrived while not leading; dropped");
                    return;
                }
            },
        };
        let context = RequestContext {
            session_id,
            cxid,
            zxid,
            time_ms: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
                as i64,
            auth_ids,
        };
        let (header, txn) = self.prep.prepare(&self.tree, &context, request).expect("a write");
        let record: Arc<[u8]> =
            self.scratch.encode_shared(|writer| write_entry(&header, &txn, writer));
        match &mut self.ensemble {
            None => {
                self.next_zxid += 1;
                self.batch.records.push(record);
                self.batch.last_zxid = header.zxid;
            }
            Some(ensemble) => {
                let entry = crate::zab::Entry { zxid, data: record };
                assert!(ensemble.zab.propose(entry), "next_zxid said this server leads");
            }
        }
        self.in_flight.push_back(InFlight { header, txn, origin });
    }

    /// Queues a batch for the sync thread.
    pub(crate) fn sync_submit(&mut self, batch: SyncBatch) {
        self.sync.submit(batch);
    }

    /// Whether small txn groups are appended on the event loop (see [`SyncProcessor::kick`]).
    pub(crate) fn set_sync_inline(&mut self, allowed: bool) {
        self.sync.set_inline(allowed);
    }

    /// Stops the sync thread (everything it had is durable) and forgets its reports.
    pub(crate) fn stop_sync(&mut self) -> Result<()> {
        self.sync.stop()?;
        while self.synced.try_recv().is_ok() {}
        Ok(())
    }

    /// Reloads the tree, the sessions and the log from disk and restarts the sync thread
    /// (after the log was rewritten under an ensemble's TRUNC or SNAP).
    pub(crate) fn reload(&mut self) -> Result<()> {
        let recovered = recover(&self.config, 0)?;
        self.tree = recovered.tree;
        set_dynamic_config(&mut self.tree, &self.config, self.clock.now_ms());
        self.sessions = recovered.sessions;
        self.log_offset_end = recovered.log.next_offset();
        self.durable_groups.clear();
        self.next_zxid = recovered.last_zxid.max(self.tree.last_processed_zxid()) + 1;
        self.prep.clear();
        self.in_flight.clear();
        let now_ms = self.clock.now_ms();
        for (&session_id, entry) in &self.sessions {
            self.tracker.track_session(session_id, entry.timeout_ms, now_ms);
        }
        self.sync =
            SyncProcessor::start(recovered.log, self.synced_sender.clone(), self.wake.clone())?;
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if let Some(ensemble) = &mut self.ensemble {
            ensemble.zab.flush(&mut ensemble.out);
            return self.run_zab();
        }
        if !self.batch.records.is_empty() {
            self.sync.submit(std::mem::take(&mut self.batch));
        }
        Ok(())
    }

    fn drain_synced(&mut self) -> Result<()> {
        while let Ok(message) = self.synced.try_recv() {
            self.on_synced(message)?;
        }
        self.snapshot_if_due();
        Ok(())
    }

    fn on_synced(&mut self, message: Synced) -> Result<()> {
        let (last_zxid, offset_end) = match message {
            Synced::Durable { last_zxid, offset_end } => (last_zxid, offset_end),
            Synced::Failed(error) => return Err(error),
        };
        if let Some(ensemble) = &mut self.ensemble {
            self.durable_groups.push_back((last_zxid, offset_end));
            ensemble.zab.persisted(last_zxid, &mut ensemble.out);
            return self.run_zab();
        }
        while self.in_flight.front().is_some_and(|f| f.header.zxid <= last_zxid) {
            let in_flight = self.in_flight.pop_front().expect("checked");
            self.apply(in_flight);
        }
        self.log_offset_end = offset_end;
        Ok(())
    }

    fn on_timers(&mut self) {
        let now_ms = self.clock.now_ms();
        let reaps = self.reaps();
        for session_id in if reaps { self.tracker.expired(now_ms) } else { Vec::new() } {
            log_event(&format!("session 0x{session_id:x} expired"));
            self.submit_write(session_id, 0, &Request::CloseSession, None, Origin::Internal);
        }
        if reaps && now_ms >= self.next_reap_ms {
            self.next_reap_ms = now_ms + self.config.container_check_interval_ms.max(1) as i64;
            for path in self.tree.reaper_candidates(now_ms, None) {
                let request =
                    Request::DeleteContainer(zabflow_net::jute::DeleteContainerRequest { path });
                self.submit_write(0, 0, &request, None, Origin::Internal);
            }
        }
        self.purge_if_due(now_ms);
        self.read_only_timers(now_ms);
        if self.snapshot_writer.as_ref().is_some_and(JoinHandle::is_finished) {
            match self.snapshot_writer.take().expect("checked").join() {
                Ok(Ok(path)) => log_event(&format!("snapshot written: {}", path.display())),
                Ok(Err(error)) => log_event(&format!("snapshot failed: {error}")),
                Err(_) => log_event("snapshot writer panicked"),
            }
        }
    }

    fn purge_if_due(&mut self, now_ms: i64) {
        let hours = self.config.purge_interval_hours;
        if hours == 0 || now_ms < self.next_purge_ms {
            return;
        }
        self.next_purge_ms = now_ms + i64::from(hours) * 3_600_000;
        match snapshot::purge(&self.config.snapshot_dir(), self.config.snap_retain_count as usize) {
            Ok(Some(offset)) => {
                log_event(&format!("purged old snapshots; log kept from offset {offset}"));
                self.sync.truncate_before(offset);
            }
            Ok(None) => {}
            Err(error) => log_event(&format!("purge failed: {error}")),
        }
    }

    fn snapshot_if_due(&mut self) {
        if self.txns_since_snapshot < self.config.snap_count || self.snapshot_writer.is_some() {
            return;
        }
        self.txns_since_snapshot = 0;
        // Replay must start no later than the first txn the tree has not applied.
        let applied = self.tree.last_processed_zxid();
        while self.durable_groups.front().is_some_and(|&(zxid, _)| zxid <= applied) {
            self.log_offset_end = self.durable_groups.pop_front().expect("checked").1;
        }
        let mut sessions: Vec<(SessionId, i32)> =
            self.sessions.iter().map(|(&id, entry)| (id, entry.timeout_ms)).collect();
        sessions.sort_unstable();
        let bytes = snapshot::serialize(&self.tree, &sessions, self.log_offset_end);
        let zxid = self.tree.last_processed_zxid();
        let dir = self.config.snapshot_dir();
        let writer = std::thread::Builder::new()
            .name("zabflow-snapshot".to_owned())
            .spawn(move || snapshot::write(&dir, zxid, &bytes));
        match writer {
            Ok(handle) => self.snapshot_writer = Some(handle),
            Err(error) => log_event(&format!("cannot start a snapshot: {error}")),
        }
    }

    pub(crate) fn count_applied(&mut self) {
        self.txns_since_snapshot += 1;
    }
}
