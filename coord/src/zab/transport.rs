//! `PeerTransport`: the links between the servers of an ensemble, on the quorum and election
//! ports of their `server.N=host:quorumPort:electionPort` lines, over their own `mio::Poll`,
//! run either by a background thread ([`PeerTransport::start`]) or by the owner's thread
//! ([`PeerTransport::start_inline`]).
//!
//! **Inline mode** is what a server uses: the owner registers the transport's poll
//! ([`PeerTransport::raw_fd`], an epoll fd that turns readable when a link has an event) in
//! its own poll and calls [`PeerTransport::turn`] after each wake-up and again after queueing
//! sends. Every message then costs no thread hand-off: on a 2-core machine running three
//! servers and a load generator, the two wake-ups per message (owner → transport thread →
//! socket, socket → transport thread → owner) were a third of all context switches and most
//! of a write's latency at one request in flight per session. The links, bounds and events
//! are the same in both modes; only who runs the loop differs.
//!
//! ```text
//! owner thread                              transport thread ("zabflow-peers")
//!   send(to, message) ─── channel + Waker ──▶  encode into the link's output (batched)
//!   disconnect(peer)                          → one write per link and pass
//!   try_recv() ◀── channel + wake callback ──  Connected · Disconnected · Received
//! per peer pair, per port kind: one TCP connection, dialled by the higher id
//! connection = hello ▶ (dialer) · ◀ hello (acceptor) · frames both ways (see [`super::wire`])
//! ```
//!
//! **Connection rule.** For each pair of servers and each port kind, the server with the
//! higher id dials and the one with the lower id accepts — the direction of the connection
//! that survives in ZooKeeper's `QuorumCnxManager`, decided up front rather than by dropping
//! the loser after both dialled. An acceptor refuses a hello from a lower id, from an id not
//! in its `server.N` lines, from itself, of another protocol version or for the other port
//! kind, logging why. A new valid connection from a peer replaces the one it had (the peer
//! restarted, or the old connection is half-open on this side), so a restart is noticed even
//! when no FIN arrived. The dialer checks that the acceptor's answering hello names the
//! server it meant to reach. A dial that fails, or a link that breaks, is retried after a
//! backoff that doubles from `reconnect_delay_ms_min` to `reconnect_delay_ms_max` and is reset
//! once a handshake succeeds; a connection whose handshake does not finish within
//! `handshake_timeout_ms` (a peer or a network that swallows packets) is closed. The owner
//! may close a quorum link itself ([`PeerTransport::disconnect`]), e.g. when the peer has
//! stopped answering: no keepalive is set, so a silent network partition otherwise leaves a
//! link open until TCP gives up retransmitting or the peer's new connection replaces it.
//!
//! **Events.** `Connected`/`Disconnected` report the quorum link only (the Zab machine treats
//! a quorum-link break as "everything in flight is lost"); election links come and go
//! silently, as votes are idempotent and resent. [`Message::Vote`]s travel on the election
//! link, everything else on the quorum link; each link is FIFO.
//!
//! **Link generations.** A message is sent on the quorum link the owner knows about, or not
//! at all: the owner counts the `Connected`/`Disconnected` events it has taken for each peer,
//! `send` tags each message with that count, and the thread drops a message whose count is
//! not the link's current one. So a message sent before the owner has seen a link break never
//! travels on the link that replaced it (where the peer would take it for the first words of
//! a new conversation). That is why events are taken through [`PeerTransport::try_recv`]
//! rather than from a bare channel.
//!
//! **Bounds.** Each link's unwritten output is bounded by `output_bytes_max`: a peer that
//! stops reading is disconnected (and reported) instead of growing memory without end. Input
//! holds at most one frame plus one read per link (see [`FrameDecoder`]); once the owner
//! has `RECEIVED_BYTES_HIGH` bytes of received messages not yet taken, the thread stops
//! reading sockets (TCP pushes back on the peers) until it catches up. At most
//! `HANDSHAKES_MAX` accepted connections may be waiting for their hello.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write as _};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::wire::{
    self, FrameDecoder, Hello, PortKind, FRAME_HEADER_BYTES, PEER_FRAME_BODY_BYTES_MAX,
};
use super::{Message, ServerId};
use crate::config::PeerConfig;
use crate::constants::POLL_TIMEOUT_MS_MAX;
use crate::error::{Error, Result};
use crate::server::log_event;

/// Default bound on a link's unwritten output: two of the largest frames, so that a maximal
/// message (a large SNAP) can be queued behind another one.
pub const OUTPUT_BYTES_MAX_DEFAULT: usize = 2 * (FRAME_HEADER_BYTES + PEER_FRAME_BODY_BYTES_MAX);

/// Default first delay before redialling a peer.
pub const RECONNECT_DELAY_MS_MIN_DEFAULT: u64 = 10;

/// Default longest delay between dials of an unreachable peer.
pub const RECONNECT_DELAY_MS_MAX_DEFAULT: u64 = 1_000;

/// Default time a new connection has to finish its handshake.
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 2_000;

/// Bytes of received messages the owner has not taken yet above which the thread stops
/// reading peer sockets.
pub const RECEIVED_BYTES_HIGH: usize = 64 << 20;

/// Accepted connections that have not sent their hello yet, at most; more are refused.
pub const HANDSHAKES_MAX: usize = 64;

/// Reads from one socket before the others get their turn.
const READS_PER_TURN_MAX: usize = 16;

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 256;

/// Polls per inline turn at most (each takes up to `EVENTS_CAPACITY` events).
const TURN_POLLS_MAX: usize = 4;

/// A link's output buffer that grew above this (for a large message) is freed once empty.
const OUTPUT_CAPACITY_KEPT_BYTES: usize = 4 << 20;

const _: () = assert!(OUTPUT_BYTES_MAX_DEFAULT >= FRAME_HEADER_BYTES + PEER_FRAME_BODY_BYTES_MAX);
const _: () = assert!(RECONNECT_DELAY_MS_MIN_DEFAULT <= RECONNECT_DELAY_MS_MAX_DEFAULT);

const WAKER: Token = Token(0);
const QUORUM_LISTENER: Token = Token(1);
const ELECTION_LISTENER: Token = Token(2);
const FIRST_LINK: usize = 3;

/// What the transport reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// The quorum link to the peer is up (handshake done); messages sent from now on go on it.
    Connected(ServerId),
    /// The quorum link to the peer broke; whatever was in flight on it is lost.
    Disconnected(ServerId),
    /// A message from the peer (on either link).
    Received(ServerId, Message),
}

/// Settings of a [`PeerTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// A link whose unwritten output exceeds this many bytes is dropped.
    pub output_bytes_max: usize,
    /// First delay before redialling.
    pub reconnect_delay_ms_min: u64,
    /// Longest delay between dials.
    pub reconnect_delay_ms_max: u64,
    /// Time a new connection has to connect and exchange hellos.
    pub handshake_timeout_ms: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            output_bytes_max: OUTPUT_BYTES_MAX_DEFAULT,
            reconnect_delay_ms_min: RECONNECT_DELAY_MS_MIN_DEFAULT,
            reconnect_delay_ms_max: RECONNECT_DELAY_MS_MAX_DEFAULT,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS_DEFAULT,
        }
    }
}

impl TransportConfig {
    fn check(&self) -> Result<()> {
        if self.output_bytes_max == 0
            || self.reconnect_delay_ms_min == 0
            || self.reconnect_delay_ms_min > self.reconnect_delay_ms_max
            || self.handshake_timeout_ms == 0
        {
            return Err(Error::Config(format!("bad peer transport settings: {self:?}")));
        }
        Ok(())
    }
}

/// What the owner asks of the thread, tagged with the quorum link generation it knew.
enum Command {
    Send { to: ServerId, generation: u64, message: Message },
    Disconnect { peer: ServerId, generation: u64 },
}

/// An event on its way to the owner, with the received bytes it accounts for.
struct Delivery {
    event: PeerEvent,
    bytes: usize,
}

/// What the owner and the thread share.
struct Shared {
    waker: Waker,
    stop: AtomicBool,
    /// Set by `send` when it wakes the thread, cleared by the thread before it drains the
    /// channel: a burst of sends costs one wake-up.
    wake_pending: AtomicBool,
    /// Bytes of `Received` events delivered and not yet taken by the owner.
    received_bytes: AtomicUsize,
}

/// The owner's handle on the peer links; see the module docs.
pub struct PeerTransport {
    my_id: ServerId,
    commands: Sender<Command>,
    deliveries: Receiver<Delivery>,
    shared: Arc<Shared>,
    /// Per peer, the `Connected`/`Disconnected` events taken so far.
    seen_generations: HashMap<ServerId, u64>,
    thread: Option<JoinHandle<()>>,
    /// Inline mode: the loop the owner turns, and its event buffer.
    inline: Option<(Box<Driver>, Events)>,
}

impl std::fmt::Debug for PeerTransport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("PeerTransport").field("my_id", &self.my_id).finish()
    }
}

impl PeerTransport {
    /// Binds this server's quorum and election ports (from its line in `peers`), starts the
    /// thread, which dials every peer with a lower id and accepts the others. The thread
    /// calls `wake` after delivering events (the owner's mio `Waker`).
    ///
    /// # Errors
    /// [`Error::Config`] when `my_id` is not in `peers` or an id appears twice;
    /// [`Error::Io`] naming the address when a port cannot be bound.
    pub fn start(
        my_id: ServerId,
        peers: &[PeerConfig],
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<PeerTransport> {
        PeerTransport::start_with(my_id, peers, wake, TransportConfig::default())
    }

    /// [`PeerTransport::start`] with explicit settings.
    ///
    /// # Errors
    /// As [`PeerTransport::start`], and [`Error::Config`] for inconsistent settings.
    pub fn start_with(
        my_id: ServerId,
        peers: &[PeerConfig],
        wake: Arc<dyn Fn() + Send + Sync>,
        config: TransportConfig,
    ) -> Result<PeerTransport> {
        let (mut transport, driver) = PeerTransport::build(my_id, peers, wake, config)?;
        let thread = std::thread::Builder::new()
            .name("zabflow-peers".to_owned())
            .spawn(move || driver.run())
            .map_err(|error| Error::io("spawn the peer transport thread", &error))?;
        transport.thread = Some(thread);
        Ok(transport)
    }

    /// Binds the ports as [`PeerTransport::start_with`] does, but starts no thread: the
    /// owner runs the links with [`PeerTransport::turn`], after registering
    /// [`PeerTransport::raw_fd`] (readable) in its own poll.
    ///
    /// # Errors
    /// As [`PeerTransport::start_with`].
    pub fn start_inline(
        my_id: ServerId,
        peers: &[PeerConfig],
        config: TransportConfig,
    ) -> Result<PeerTransport> {
        let (mut transport, driver) = PeerTransport::build(my_id, peers, Arc::new(|| {}), config)?;
        transport.inline = Some((Box::new(driver), Events::with_capacity(EVENTS_CAPACITY)));
        Ok(transport)
    }

    /// Inline mode: the transport's poll, to register for readability in the owner's poll
    /// (it turns readable when any link or listener has an event). `None` with a thread.
    #[must_use]
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.inline.as_ref().map(|(driver, _)| driver.poll.as_raw_fd())
    }

    /// Inline mode: takes every socket event that is ready (without waiting), sends what
    /// the owner queued, dials, times out handshakes. Received messages are then waiting
    /// for [`PeerTransport::try_recv`]. Nothing happens with a thread.
    pub fn turn(&mut self) {
        let Some((driver, events)) = &mut self.inline else { return };
        // A full event buffer may have left events in the poll: take them too.
        for _ in 0..TURN_POLLS_MAX {
            driver.poll_once(events, Some(Duration::ZERO));
            if events.iter().count() < EVENTS_CAPACITY {
                break;
            }
        }
        driver.pass(Instant::now());
    }

    /// Inline mode: writes what the owner queued since the last turn, without reading (the
    /// end of an owner's pass, so that nothing read is left untaken while it sleeps).
    pub fn send_queued(&mut self) {
        let Some((driver, _)) = &mut self.inline else { return };
        driver.drain_commands();
        driver.flush_dirty();
    }

    /// Inline mode: how long the owner may sleep before the next [`PeerTransport::turn`] is
    /// due (a dial, a handshake deadline; zero while a link has unread input or events wait
    /// to be taken).
    #[must_use]
    pub fn turn_due_in(&self) -> Duration {
        match &self.inline {
            Some(_) if !self.deliveries.is_empty() => Duration::ZERO,
            Some((driver, _)) => driver.poll_timeout(Instant::now()),
            None => Duration::from_millis(POLL_TIMEOUT_MS_MAX),
        }
    }

    fn build(
        my_id: ServerId,
        peers: &[PeerConfig],
        wake: Arc<dyn Fn() + Send + Sync>,
        config: TransportConfig,
    ) -> Result<(PeerTransport, Driver)> {
        config.check()?;
        let me = check_peers(my_id, peers)?;
        let poll = Poll::new().map_err(|error| Error::io("create the peer poll", &error))?;
        let mut listeners = [
            bind(&me.host, me.quorum_port, PortKind::Quorum)?,
            bind(&me.host, me.election_port, PortKind::Election)?,
        ];
        for (listener, token) in listeners.iter_mut().zip([QUORUM_LISTENER, ELECTION_LISTENER]) {
            poll.registry()
                .register(listener, token, Interest::READABLE)
                .map_err(|error| Error::io("register a peer listener", &error))?;
        }
        let waker = Waker::new(poll.registry(), WAKER)
            .map_err(|error| Error::io("create the peer waker", &error))?;
        let shared = Arc::new(Shared {
            waker,
            stop: AtomicBool::new(false),
            wake_pending: AtomicBool::new(false),
            received_bytes: AtomicUsize::new(0),
        });
        let (commands, commands_receiver) = unbounded();
        let (deliveries_sender, deliveries) = unbounded();
        let now = Instant::now();
        let peers = peers
            .iter()
            .filter(|peer| peer.id != my_id)
            .map(|peer| (peer.id, Peer::new(peer, my_id, &config, now)))
            .collect();
        let driver = Driver {
            my_id,
            config,
            poll,
            listeners,
            peers,
            links: HashMap::new(),
            next_token: FIRST_LINK,
            commands: commands_receiver,
            deliveries: deliveries_sender,
            shared: Arc::clone(&shared),
            wake,
            delivered: false,
            dirty: HashSet::new(),
            unread: HashSet::new(),
        };
        let transport = PeerTransport {
            my_id,
            commands,
            deliveries,
            shared,
            seen_generations: HashMap::new(),
            thread: None,
            inline: None,
        };
        Ok((transport, driver))
    }

    /// Queues `message` for `to` without blocking. It goes out on the link the owner last
    /// heard of: dropped silently when that link is down or has been replaced (the owner
    /// learns that from the events it has not taken yet), or when `to` is not a peer.
    pub fn send(&self, to: ServerId, message: Message) {
        let generation = self.generation(to);
        self.command(Command::Send { to, generation, message });
    }

    /// Closes the quorum link to `peer` the owner last heard of, as if it broke (ZooKeeper's
    /// leader closing a learner that stopped answering): `Disconnected` is reported and the
    /// higher id redials. Nothing happens if that link is already gone.
    pub fn disconnect(&self, peer: ServerId) {
        let generation = self.generation(peer);
        self.command(Command::Disconnect { peer, generation });
    }

    fn generation(&self, peer: ServerId) -> u64 {
        self.seen_generations.get(&peer).copied().unwrap_or(0)
    }

    fn command(&self, command: Command) {
        if self.commands.send(command).is_err() {
            return; // Stopped: every link is down.
        }
        if self.inline.is_some() {
            return; // The owner's next turn sends it.
        }
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = self.shared.waker.wake();
        }
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&mut self) -> Option<PeerEvent> {
        let delivery = self.deliveries.try_recv().ok()?;
        Some(self.take(delivery))
    }

    /// The next event, waiting up to `timeout` for one.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<PeerEvent> {
        let delivery = self.deliveries.recv_timeout(timeout).ok()?;
        Some(self.take(delivery))
    }

    /// Counts link generations and received bytes as the owner takes an event.
    fn take(&mut self, delivery: Delivery) -> PeerEvent {
        if let PeerEvent::Connected(id) | PeerEvent::Disconnected(id) = delivery.event {
            *self.seen_generations.entry(id).or_default() += 1;
        }
        if delivery.bytes > 0 {
            let before = self.shared.received_bytes.fetch_sub(delivery.bytes, Ordering::AcqRel);
            if before >= RECEIVED_BYTES_HIGH && before - delivery.bytes < RECEIVED_BYTES_HIGH {
                let _ = self.shared.waker.wake(); // The thread resumes reading.
            }
        }
        delivery.event
    }

    /// Closes every link and joins the thread (peers see the connections end). Idempotent;
    /// dropping the transport does the same.
    pub fn stop(&mut self) {
        if self.inline.is_some() {
            // Write what was queued (best effort), then close every link.
            self.send_queued();
            self.inline = None;
            return;
        }
        let Some(thread) = self.thread.take() else { return };
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.shared.waker.wake();
        if thread.join().is_err() {
            log_event("peer transport thread panicked");
        }
    }
}

impl Drop for PeerTransport {
    fn drop(&mut self) {
        self.stop();
    }
}

/// This server's line, after checking that ids are unique.
fn check_peers(my_id: ServerId, peers: &[PeerConfig]) -> Result<&PeerConfig> {
    let mut ids = HashSet::new();
    if let Some(peer) = peers.iter().find(|peer| !ids.insert(peer.id)) {
        return Err(Error::Config(format!("server.{} appears twice", peer.id)));
    }
    peers
        .iter()
        .find(|peer| peer.id == my_id)
        .ok_or_else(|| Error::Config(format!("server.{my_id} (this server) is not configured")))
}

fn bind(host: &str, port: u16, kind: PortKind) -> Result<TcpListener> {
    let address = resolve(host, port).map_err(|error| {
        Error::io(format!("resolve {host}:{port} ({})", kind_name(kind)), &error)
    })?;
    TcpListener::bind(address)
        .map_err(|error| Error::io(format!("bind the {} port {address}", kind_name(kind)), &error))
}

/// The first address `host:port` resolves to (the system resolver; an IP is parsed as is).
fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{host} resolves to no address"))
    })
}

fn kind_name(kind: PortKind) -> &'static str {
    match kind {
        PortKind::Quorum => "quorum",
        PortKind::Election => "election",
    }
}

fn slot_index(kind: PortKind) -> usize {
    match kind {
        PortKind::Quorum => 0,
        PortKind::Election => 1,
    }
}

const KINDS: [PortKind; 2] = [PortKind::Quorum, PortKind::Election];

/// One other server of the ensemble.
struct Peer {
    host: String,
    ports: [u16; 2],
    /// This server dials the peer (it has the higher id); otherwise it waits for the peer.
    dials: bool,
    slots: [Slot; 2],
    /// `Connected`/`Disconnected` events delivered for the peer so far.
    generation: u64,
}

impl Peer {
    fn new(config: &PeerConfig, my_id: ServerId, settings: &TransportConfig, now: Instant) -> Self {
        let dials = my_id > config.id;
        let slot = || Slot {
            link: None,
            dial_at: dials.then_some(now),
            delay_ms: settings.reconnect_delay_ms_min,
            unreachable_logged: false,
        };
        Peer {
            host: config.host.clone(),
            ports: [config.quorum_port, config.election_port],
            dials,
            slots: [slot(), slot()],
            generation: 0,
        }
    }
}

/// A peer's connection of one port kind.
struct Slot {
    /// The link: dialled (from the dial on) or accepted (once its hello is valid).
    link: Option<Token>,
    /// When to dial next (dialling side, no link).
    dial_at: Option<Instant>,
    /// The delay before the dial after the next failure.
    delay_ms: u64,
    /// A failure to reach the peer was logged since the last success (one line per outage).
    unreachable_logged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Dialled, TCP connect in progress.
    Connecting,
    /// Waiting for the other side's hello.
    AwaitingHello,
    Established,
}

/// One TCP connection to a peer (or to a stranger that has not said who it is).
struct Link {
    socket: TcpStream,
    address: SocketAddr,
    kind: PortKind,
    /// Known from the dial, or from the hello of an accepted connection.
    peer: Option<ServerId>,
    dialled: bool,
    state: LinkState,
    /// The handshake must be done by then.
    deadline: Instant,
    decoder: FrameDecoder,
    output: Vec<u8>,
    output_start: usize,
}

impl Link {
    fn unwritten_bytes(&self) -> usize {
        self.output.len() - self.output_start
    }

    fn describe(&self) -> String {
        match self.peer {
            Some(id) => format!("{} link to server {id} ({})", kind_name(self.kind), self.address),
            None => format!("{} connection from {}", kind_name(self.kind), self.address),
        }
    }
}

/// The thread's state.
struct Driver {
    my_id: ServerId,
    config: TransportConfig,
    poll: Poll,
    listeners: [TcpListener; 2],
    peers: BTreeMap<ServerId, Peer>,
    links: HashMap<Token, Link>,
    next_token: usize,
    commands: Receiver<Command>,
    deliveries: Sender<Delivery>,
    shared: Arc<Shared>,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// Events were delivered in this pass: call `wake` at its end.
    delivered: bool,
    /// Links with output to write.
    dirty: HashSet<Token>,
    /// Links that may have unread input: waiting for the owner to take events
    /// (`RECEIVED_BYTES_HIGH`), or for their next turn (`READS_PER_TURN_MAX`).
    unread: HashSet<Token>,
}

impl Driver {
    fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        while !self.shared.stop.load(Ordering::Acquire) {
            let timeout = self.poll_timeout(Instant::now());
            if !self.poll_once(&mut events, Some(timeout)) {
                return;
            }
            self.pass(Instant::now());
        }
    }

    /// Waits up to `timeout` for socket events and handles them; false (logged) when the
    /// poll itself failed.
    fn poll_once(&mut self, events: &mut Events, timeout: Option<Duration>) -> bool {
        if let Err(error) = self.poll.poll(events, timeout) {
            if error.kind() != io::ErrorKind::Interrupted {
                log_line(self.my_id, &format!("peer transport stops: poll failed: {error}"));
                return false;
            }
            events.clear();
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                QUORUM_LISTENER => self.accept_all(PortKind::Quorum),
                ELECTION_LISTENER => self.accept_all(PortKind::Election),
                token => self.on_socket_event(token, event),
            }
        }
        true
    }

    /// The work after each poll: queue what the owner sent (and close what it asked to),
    /// dial, time out handshakes, resume reading, write, and wake the owner if events wait.
    fn pass(&mut self, now: Instant) {
        self.drain_commands();
        self.dial_due(now);
        self.expire_handshakes(now);
        self.resume_unread();
        self.flush_dirty();
        if std::mem::take(&mut self.delivered) {
            (self.wake)();
        }
    }

    /// Sleep until the next dial is due, but no longer than `POLL_TIMEOUT_MS_MAX` (handshake
    /// deadlines are checked at that granularity); not at all while a link that had its turn
    /// may have more to read.
    fn poll_timeout(&self, now: Instant) -> Duration {
        if !self.unread.is_empty() && !self.reads_paused() {
            return Duration::ZERO;
        }
        let dial_times = self.peers.values().flat_map(|peer| &peer.slots).filter_map(|s| s.dial_at);
        dial_times
            .map(|at| at.saturating_duration_since(now))
            .fold(Duration::from_millis(POLL_TIMEOUT_MS_MAX), Duration::min)
    }

    fn on_socket_event(&mut self, token: Token, event: &Event) {
        let Some(link) = self.links.get(&token) else { return };
        if link.state == LinkState::Connecting {
            if event.is_writable() || event.is_error() || event.is_write_closed() {
                self.finish_connect(token);
            }
            return;
        }
        if event.is_writable() {
            self.dirty.insert(token);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(token);
        }
    }

    fn accept_all(&mut self, kind: PortKind) {
        loop {
            let (mut socket, address) = match self.listeners[slot_index(kind)].accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    log_line(
                        self.my_id,
                        &format!("accept on the {} port: {error}", kind_name(kind)),
                    );
                    return;
                }
            };
            let handshakes = self.links.values().filter(|link| link.peer.is_none()).count();
            if handshakes >= HANDSHAKES_MAX {
                log_line(
                    self.my_id,
                    &format!("refused {address}: {handshakes} handshakes pending"),
                );
                continue;
            }
            let token = self.register(&mut socket);
            let Some(token) = token else { continue };
            let _ = socket.set_nodelay(true);
            let deadline = Instant::now() + Duration::from_millis(self.config.handshake_timeout_ms);
            let link = Link::new(socket, address, kind, None, LinkState::AwaitingHello, deadline);
            self.links.insert(token, link);
        }
    }

    fn register(&mut self, socket: &mut TcpStream) -> Option<Token> {
        let token = Token(self.next_token);
        self.next_token += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        match self.poll.registry().register(socket, token, interest) {
            Ok(()) => Some(token),
            Err(error) => {
                log_line(self.my_id, &format!("cannot register a socket: {error}"));
                None
            }
        }
    }

    fn dial_due(&mut self, now: Instant) {
        let due: Vec<(ServerId, PortKind)> = self
            .peers
            .iter()
            .flat_map(|(&id, peer)| KINDS.iter().map(move |&kind| (id, peer, kind)))
            .filter(|(_, peer, kind)| {
                let slot = &peer.slots[slot_index(*kind)];
                slot.link.is_none() && slot.dial_at.is_some_and(|at| at <= now)
            })
            .map(|(id, _, kind)| (id, kind))
            .collect();
        for (id, kind) in due {
            self.dial(id, kind, now);
        }
    }

    fn dial(&mut self, id: ServerId, kind: PortKind, now: Instant) {
        let peer = &self.peers[&id];
        let port = peer.ports[slot_index(kind)];
        let address = match resolve(&peer.host, port) {
            Ok(address) => address,
            Err(error) => {
                let target = format!("{}:{port}", peer.host);
                return self.retry_later(id, kind, &target, &error.to_string(), now);
            }
        };
        let mut socket = match TcpStream::connect(address) {
            Ok(socket) => socket,
            Err(error) => {
                return self.retry_later(id, kind, &address.to_string(), &error.to_string(), now);
            }
        };
        let Some(token) = self.register(&mut socket) else {
            return self.retry_later(id, kind, &address.to_string(), "cannot register", now);
        };
        let deadline = now + Duration::from_millis(self.config.handshake_timeout_ms);
        let link = Link::new(socket, address, kind, Some(id), LinkState::Connecting, deadline);
        self.links.insert(token, link);
        let slot = self.slot_mut(id, kind);
        slot.link = Some(token);
        slot.dial_at = None;
    }

    /// Schedules the next dial of a peer this server could not reach (logged once an outage).
    fn retry_later(&mut self, id: ServerId, kind: PortKind, target: &str, why: &str, now: Instant) {
        let (my_id, delay_ms_max) = (self.my_id, self.config.reconnect_delay_ms_max);
        assert!(self.peers[&id].dials, "server {id} has the higher id: it dials this server");
        let slot = self.slot_mut(id, kind);
        if !slot.unreachable_logged {
            slot.unreachable_logged = true;
            let kind = kind_name(kind);
            log_line(my_id, &format!("cannot reach server {id}'s {kind} port {target}: {why}"));
        }
        slot.dial_at = Some(now + Duration::from_millis(slot.delay_ms));
        slot.delay_ms = (slot.delay_ms * 2).min(delay_ms_max);
    }

    fn slot_mut(&mut self, id: ServerId, kind: PortKind) -> &mut Slot {
        &mut self.peers.get_mut(&id).expect("a configured peer").slots[slot_index(kind)]
    }

    /// A dialled socket became writable: connected (send the hello) or failed.
    fn finish_connect(&mut self, token: Token) {
        let link = self.links.get_mut(&token).expect("checked by the caller");
        let failure = match (link.socket.take_error(), link.socket.peer_addr()) {
            (Ok(Some(error)) | Err(error), _) => Some(error),
            (Ok(None), Ok(_)) => None,
            (Ok(None), Err(error)) if error.kind() == io::ErrorKind::NotConnected => return,
            (Ok(None), Err(error)) => Some(error),
        };
        if let Some(error) = failure {
            return self.close(token, &format!("connect: {error}"));
        }
        let _ = link.socket.set_nodelay(true);
        let hello = Hello { server_id: self.my_id, port: link.kind };
        wire::encode_hello(&hello, &mut link.output);
        link.state = LinkState::AwaitingHello;
        self.dirty.insert(token);
    }

    /// Whether the owner has so many received bytes to take that reading stops.
    fn reads_paused(&self) -> bool {
        self.shared.received_bytes.load(Ordering::Acquire) >= RECEIVED_BYTES_HIGH
    }

    /// Reads until the socket is drained or the link closes; or, while reading is paused or
    /// after `READS_PER_TURN_MAX` reads (so that one busy peer cannot starve the others),
    /// leaves the rest for a later pass.
    fn read(&mut self, token: Token) {
        for _ in 0..READS_PER_TURN_MAX {
            let paused = self.reads_paused();
            let Some(link) = self.links.get_mut(&token) else { return };
            if paused && link.state == LinkState::Established {
                break;
            }
            match link.decoder.read_from(&mut link.socket) {
                Ok(0) => return self.close(token, "closed by the peer"),
                Ok(_) => {
                    if !self.decode(token) {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return self.close(token, &format!("read: {error}")),
            }
        }
        self.unread.insert(token);
    }

    /// Handles every complete frame buffered; false when the link was closed.
    fn decode(&mut self, token: Token) -> bool {
        loop {
            let Some(link) = self.links.get_mut(&token) else { return false };
            if link.state != LinkState::Established {
                match link.decoder.next_hello() {
                    Ok(None) => return true,
                    Ok(Some(hello)) => {
                        if !self.on_hello(token, hello) {
                            return false;
                        }
                    }
                    Err(error) => {
                        self.close(token, &format!("bad hello: {error}"));
                        return false;
                    }
                }
                continue;
            }
            let buffered_before = link.decoder.buffered_bytes();
            let message = match link.decoder.next_message() {
                Ok(None) => return true,
                Ok(Some(message)) => message,
                Err(error) => {
                    self.close(token, &error.to_string());
                    return false;
                }
            };
            if PortKind::of(&message) != link.kind {
                self.close(token, &format!("{} on the wrong link", tag_name(&message)));
                return false;
            }
            let bytes = buffered_before - link.decoder.buffered_bytes();
            let from = link.peer.expect("an established link knows its peer");
            self.deliver(PeerEvent::Received(from, message), bytes);
        }
    }

    /// Checks a hello; establishes the link or closes it (false).
    fn on_hello(&mut self, token: Token, hello: Hello) -> bool {
        let link = &self.links[&token];
        if let Some(expected) = link.peer {
            if hello.server_id != expected || hello.port != link.kind {
                let why = format!(
                    "answered as server {} for its {} port",
                    hello.server_id,
                    kind_name(hello.port)
                );
                self.close(token, &why);
                return false;
            }
            self.establish(token, expected);
            return true;
        }
        if let Some(why) = self.refusal(link.kind, hello) {
            self.close(token, &format!("refused: {why}"));
            return false;
        }
        let id = hello.server_id;
        if let Some(old) = self.peers[&id].slots[slot_index(link.kind)].link {
            self.close(old, "replaced by a new connection from the peer");
        }
        let link = self.links.get_mut(&token).expect("still open");
        link.peer = Some(id);
        wire::encode_hello(&Hello { server_id: self.my_id, port: link.kind }, &mut link.output);
        self.dirty.insert(token);
        self.establish(token, id);
        true
    }

    /// Why an accepted connection's hello is refused, if it is.
    fn refusal(&self, kind: PortKind, hello: Hello) -> Option<String> {
        let id = hello.server_id;
        if id == self.my_id {
            Some(format!("the peer claims this server's own id {id}"))
        } else if !self.peers.contains_key(&id) {
            Some(format!("unknown server id {id}"))
        } else if id < self.my_id {
            Some(format!("server {id} has a lower id: this server dials it, not the reverse"))
        } else if hello.port != kind {
            Some(format!("a hello for the {} port", kind_name(hello.port)))
        } else {
            None
        }
    }

    fn establish(&mut self, token: Token, id: ServerId) {
        let delay_ms_min = self.config.reconnect_delay_ms_min;
        let link = self.links.get_mut(&token).expect("an open link");
        link.state = LinkState::Established;
        let kind = link.kind;
        log_line(self.my_id, &format!("{} up", link.describe()));
        let peer = self.peers.get_mut(&id).expect("a configured peer");
        let slot = &mut peer.slots[slot_index(kind)];
        slot.link = Some(token);
        slot.dial_at = None;
        slot.delay_ms = delay_ms_min;
        slot.unreachable_logged = false;
        if kind == PortKind::Quorum {
            peer.generation += 1;
            self.deliver(PeerEvent::Connected(id), 0);
        }
    }

    /// Closes a link: reports a lost quorum link, schedules the redial of a dialled one.
    fn close(&mut self, token: Token, why: &str) {
        let Some(mut link) = self.links.remove(&token) else { return };
        let _ = self.poll.registry().deregister(&mut link.socket);
        self.dirty.remove(&token);
        self.unread.remove(&token);
        let established = link.state == LinkState::Established;
        let Some(id) =
            link.peer.filter(|id| self.peers[id].slots[slot_index(link.kind)].link == Some(token))
        else {
            log_line(self.my_id, &format!("{} closed: {why}", link.describe()));
            return;
        };
        let peer = self.peers.get_mut(&id).expect("a configured peer");
        let slot = &mut peer.slots[slot_index(link.kind)];
        slot.link = None;
        if established {
            // This line reports the outage; failed redials add none.
            slot.unreachable_logged = true;
            log_line(self.my_id, &format!("{} lost: {why}", link.describe()));
            if link.kind == PortKind::Quorum {
                peer.generation += 1;
                self.deliver(PeerEvent::Disconnected(id), 0);
            }
        }
        if link.dialled {
            let now = Instant::now();
            self.retry_later(id, link.kind, &link.address.to_string(), why, now);
        }
    }

    fn deliver(&mut self, event: PeerEvent, bytes: usize) {
        self.shared.received_bytes.fetch_add(bytes, Ordering::AcqRel);
        // The owner holds the receiver until it has joined this thread.
        let _ = self.deliveries.send(Delivery { event, bytes });
        self.delivered = true;
    }

    /// Encodes every message the owner queued into its link's output.
    fn drain_commands(&mut self) {
        // Swap (not store) so that this reads the owner's `true` and sees its commands.
        self.shared.wake_pending.swap(false, Ordering::AcqRel);
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Send { to, generation, message } => self.enqueue(to, generation, message),
                Command::Disconnect { peer, generation } => {
                    if let Some(token) = self.current_link(peer, PortKind::Quorum, generation) {
                        self.close(token, "closed by this server");
                    }
                }
            }
        }
    }

    /// The peer's link of this kind, if it is established and (for the quorum link) still
    /// the one of the owner's `generation`.
    fn current_link(&self, id: ServerId, kind: PortKind, generation: u64) -> Option<Token> {
        let peer = self.peers.get(&id)?;
        let token = peer.slots[slot_index(kind)].link?;
        if kind == PortKind::Quorum && generation != peer.generation {
            return None; // The owner has not yet learnt that its link is gone.
        }
        (self.links[&token].state == LinkState::Established).then_some(token)
    }

    fn enqueue(&mut self, to: ServerId, generation: u64, message: Message) {
        let kind = PortKind::of(&message);
        let Some(token) = self.current_link(to, kind, generation) else { return };
        let link = self.links.get_mut(&token).expect("a slot's link is open");
        if let Err(error) = wire::encode(&message, &mut link.output) {
            return self.close(token, &format!("cannot send {}: {error}", tag_name(&message)));
        }
        self.dirty.insert(token);
        if link.unwritten_bytes() > self.config.output_bytes_max && self.flush(token) {
            let unwritten_bytes = self.links[&token].unwritten_bytes();
            if unwritten_bytes > self.config.output_bytes_max {
                let why = format!("the peer does not read ({unwritten_bytes} bytes unwritten)");
                self.close(token, &why);
            }
        }
    }

    fn flush_dirty(&mut self) {
        let dirty: Vec<Token> = self.dirty.drain().collect();
        for token in dirty {
            self.flush(token);
        }
    }

    /// Writes the link's output until done or the socket is full; false if it closed.
    fn flush(&mut self, token: Token) -> bool {
        let Some(link) = self.links.get_mut(&token) else { return false };
        if link.state == LinkState::Connecting {
            return true;
        }
        while link.output_start < link.output.len() {
            match link.socket.write(&link.output[link.output_start..]) {
                Ok(0) => {
                    self.close(token, "write: the socket takes no more bytes");
                    return false;
                }
                Ok(written) => link.output_start += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.close(token, &format!("write: {error}"));
                    return false;
                }
            }
        }
        link.compact_output();
        true
    }

    fn expire_handshakes(&mut self, now: Instant) {
        let expired: Vec<Token> = self
            .links
            .iter()
            .filter(|(_, link)| link.state != LinkState::Established && link.deadline <= now)
            .map(|(&token, _)| token)
            .collect();
        for token in expired {
            self.close(token, "handshake timed out");
        }
    }

    fn resume_unread(&mut self) {
        if self.unread.is_empty() || self.reads_paused() {
            return;
        }
        let unread: Vec<Token> = self.unread.drain().collect();
        for token in unread {
            self.read(token);
        }
    }
}

impl Link {
    fn new(
        socket: TcpStream,
        address: SocketAddr,
        kind: PortKind,
        peer: Option<ServerId>,
        state: LinkState,
        deadline: Instant,
    ) -> Link {
        Link {
            socket,
            address,
            kind,
            dialled: peer.is_some(),
            peer,
            state,
            deadline,
            decoder: FrameDecoder::default(),
            output: Vec::new(),
            output_start: 0,
        }
    }

    /// Drops written bytes: all of them when done (freeing a large buffer), else the front
    /// once it is more than half the buffer (amortised, each byte moves at most once).
    fn compact_output(&mut self) {
        if self.output_start == self.output.len() {
            self.output.clear();
            self.output_start = 0;
            if self.output.capacity() > OUTPUT_CAPACITY_KEPT_BYTES {
                self.output = Vec::new();
            }
        } else if self.output_start > self.output.len() / 2 {
            self.output.drain(..self.output_start);
            self.output_start = 0;
        }
    }
}

/// One log line, naming this server (several may share a log).
fn log_line(my_id: ServerId, line: &str) {
    log_event(&format!("server {my_id}: {line}"));
}

/// The message's name, for log lines.
fn tag_name(message: &Message) -> &'static str {
    match message {
        Message::Vote(_) => "Vote",
        Message::FollowerInfo { .. } => "FollowerInfo",
        Message::LeaderInfo { .. } => "LeaderInfo",
        Message::AckEpoch { .. } => "AckEpoch",
        Message::Sync { .. } => "Sync",
        Message::NewLeader { .. } => "NewLeader",
        Message::AckNewLeader { .. } => "AckNewLeader",
        Message::UpToDate { .. } => "UpToDate",
        Message::Proposal { .. } => "Proposal",
        Message::Ack { .. } => "Ack",
        Message::Commit { .. } => "Commit",
        Message::Ping { .. } => "Ping",
        Message::Request { .. } => "Request",
        Message::Sessions { .. } => "Sessions",
        Message::SyncRequest { .. } => "SyncRequest",
        Message::SyncReply { .. } => "SyncReply",
    }
}
