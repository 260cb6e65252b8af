//! `SessionLoop`: the I/O thread of one [`super::Client`], owner of its session.
//!
//! The thread owns the socket, the queue of requests in flight, the watch registry and the
//! session's identity (id, password, last zxid seen). Application threads reach it only
//! through the bounded request queue (and a `mio::Waker`); it answers through each request's
//! completion channel and the event channel. No lock is shared with the application.
//!
//! ```text
//! serve     : loop { take queued requests while in-flight < max and unsent < high-water;
//!                    ping if nothing was sent for timeout/3; write; poll; read replies }
//! reply     : xid -1 → watch event; -2 ping; -4 auth; -8 setWatches;
//!             else the oldest request in flight (replies come in xid order) completes
//! lost      : in-flight requests fail with ConnectionLoss, Disconnected is reported, the
//!             next server is tried with the same session id, password and last zxid
//! resumed   : auth packets and setWatches2 are sent first, then queued requests; expired
//!             (the server answers timeout 0): everything fails with SessionExpired
//! ```
//!
//! A connection is declared lost when nothing has been received for 2/3 of the negotiated
//! timeout, as ZooKeeper's own client does; pings every timeout/3 keep an idle one alive.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Interest, Poll, Token};

use super::connection::{handshake, Connection, ConnectionLost};
use super::watch_registry::{WatchRegistration, WatchRegistry};
use super::{ClientConfig, Completion, WatchedEvent};
use crate::constants::{
    CLIENT_RECONNECT_BACKOFF_MS_MAX, CLIENT_WRITE_BUFFER_BYTES_HIGH, FRAME_LENGTH_BYTES,
    SESSION_PASSWORD_BYTES, XID_AUTH, XID_NOTIFICATION, XID_PING, XID_SET_WATCHES,
};
use crate::error::{ZkError, ZkResult};
use crate::jute::{
    AuthPacket, ConnectRequest, ConnectResponse, ErrorCode, EventType, FrameDecoder, KeeperState,
    OpCode, Reader, Record, ReplyHeader, Request, Response, WatcherEvent, Writer,
};

/// The poll token of the socket.
const SOCKET: Token = Token(0);
/// The poll token of the waker that application threads use after queueing a request.
pub(crate) const WAKER: Token = Token(1);
/// Readiness events taken per poll.
const POLL_EVENTS_CAPACITY: usize = 16;

/// Where a completion goes: the application's channel, with its tag.
#[derive(Debug)]
pub(crate) struct Sink {
    pub(crate) tag: u64,
    pub(crate) sender: Sender<Completion>,
}

impl Sink {
    fn complete(self, zxid: i64, result: ZkResult<Response>) {
        // A receiver that is gone no longer wants the answer.
        let _ = self.sender.send(Completion { tag: self.tag, zxid, result });
    }
}

/// A request queued by the application.
#[derive(Debug)]
pub(crate) struct Submission {
    pub(crate) request: Request,
    pub(crate) sink: Sink,
}

/// State the application threads read (and `shutdown`/`io_idle`, which they also write).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: AtomicI32,
    pub(crate) session_id: AtomicI64,
    pub(crate) session_timeout_ms: AtomicI32,
    /// Set by the I/O thread before it sleeps in `poll`: a submitter that finds it set wakes
    /// the thread, so a busy thread costs submitters no system call.
    pub(crate) io_idle: AtomicBool,
    /// Asks the I/O thread to stop without closing the session.
    pub(crate) shutdown: AtomicBool,
    /// The session's password, once a server has given it.
    pub(crate) password: std::sync::Mutex<Vec<u8>>,
}

/// A request sent and not yet answered.
#[derive(Debug)]
struct Pending {
    xid: i32,
    op: OpCode,
    watch: Option<WatchRegistration>,
    sink: Sink,
}

/// The I/O thread's state.
#[derive(Debug)]
pub(crate) struct SessionLoop {
    config: ClientConfig,
    decoder: FrameDecoder,
    poll: Poll,
    shared: Arc<Shared>,
    submissions: Receiver<Submission>,
    events: Sender<WatchedEvent>,
    session_id: i64,
    passwd: Vec<u8>,
    timeout_ms: i32,
    last_zxid: i64,
    next_server: usize,
    next_xid: i32,
    pending: VecDeque<Pending>,
    auth_pending: VecDeque<(AuthPacket, Sink)>,
    /// Auth packets re-sent on this connection whose replies have not come yet.
    auth_replays: usize,
    auths: Vec<AuthPacket>,
    watches: WatchRegistry,
    close_sent: bool,
    closed: bool,
}

impl SessionLoop {
    pub(crate) fn new(
        config: ClientConfig,
        poll: Poll,
        shared: Arc<Shared>,
        submissions: Receiver<Submission>,
        events: Sender<WatchedEvent>,
    ) -> SessionLoop {
        let in_flight_max = config.in_flight_max;
        let (session_id, passwd) = match &config.resume {
            Some(credentials) => (credentials.id, credentials.password.clone()),
            None => (0, vec![0; SESSION_PASSWORD_BYTES]),
        };
        SessionLoop {
            decoder: FrameDecoder::new(config.packet_bytes_max),
            timeout_ms: i32::try_from(config.session_timeout_ms).unwrap_or(i32::MAX),
            config,
            poll,
            shared,
            submissions,
            events,
            session_id,
            passwd,
            last_zxid: 0,
            next_server: 0,
            next_xid: 1,
            pending: VecDeque::with_capacity(in_flight_max),
            auth_pending: VecDeque::new(),
            auth_replays: 0,
            auths: Vec::new(),
            watches: WatchRegistry::default(),
            close_sent: false,
            closed: false,
        }
    }

    /// Establishes a new session, trying each server in turn until `connect_timeout_ms`.
    ///
    /// # Errors
    /// [`ZkError::Connect`] with the last server's failure.
    pub(crate) fn connect_first(&mut self) -> ZkResult<Connection> {
        let deadline = Instant::now() + Duration::from_millis(self.config.connect_timeout_ms);
        loop {
            match self.attempt() {
                Ok(connection) => return Ok(connection),
                Err(ZkError::Connect(_)) if Instant::now() < deadline => {
                    self.back_off_after_round()
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One handshake with the next server.
    fn attempt(&mut self) -> ZkResult<Connection> {
        let server = self.config.servers[self.next_server].clone();
        self.next_server = (self.next_server + 1) % self.config.servers.len();
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            time_out: i32::try_from(self.config.session_timeout_ms).unwrap_or(i32::MAX),
            session_id: self.session_id,
            passwd: self.passwd.clone(),
            read_only: Some(false),
        };
        let timeout = self.config.attempt_timeout(self.config.session_timeout_ms);
        let (stream, response) = handshake(&server, &request, timeout, self.decoder)?;
        if response.time_out <= 0 {
            return Err(ZkError::Code(ErrorCode::SessionExpired));
        }
        Ok(self.resume(stream, &response, &server))
    }

    /// Pauses after a failed round over every server (not after each server).
    fn back_off_after_round(&self) {
        if self.next_server == 0 {
            let pause = Duration::from_millis(CLIENT_RECONNECT_BACKOFF_MS_MAX / 4);
            std::thread::sleep(pause);
        }
    }

    /// Adopts the session of `response` on a new connection, queueing auth replays and
    /// `setWatches2` ahead of any request.
    fn resume(
        &mut self,
        stream: std::net::TcpStream,
        response: &ConnectResponse,
        server: &str,
    ) -> Connection {
        self.session_id = response.session_id;
        self.passwd.clone_from(&response.passwd);
        if let Ok(mut password) = self.shared.password.lock() {
            password.clone_from(&response.passwd);
        }
        self.timeout_ms = response.time_out;
        self.shared.session_id.store(self.session_id, Ordering::Release);
        self.shared.session_timeout_ms.store(self.timeout_ms, Ordering::Release);
        let mut connection = Connection::new(stream, self.decoder, server);
        for auth in &self.auths {
            encode(&mut connection, |writer| {
                Request::Auth(auth.clone()).write_frame(XID_AUTH, writer)
            });
        }
        self.auth_replays = self.auths.len();
        let set_watches = if self.watches.is_empty() {
            Vec::new()
        } else {
            self.watches.set_watches(self.last_zxid)
        };
        for set_watches in set_watches {
            let request = Request::SetWatches2(set_watches);
            encode(&mut connection, |writer| request.write_frame(XID_SET_WATCHES, writer));
        }
        connection
    }

    /// Runs the session until it is closed, expires or is shut down.
    pub(crate) fn run(mut self, mut connection: Connection) {
        self.report(KeeperState::SyncConnected);
        let end = loop {
            // Why the connection was lost does not change what happens next.
            if self.serve(&mut connection).is_ok() {
                break KeeperState::Closed;
            }
            self.fail_in_flight(&ZkError::Code(ErrorCode::ConnectionLoss));
            if self.close_sent {
                break KeeperState::Closed;
            }
            self.report(KeeperState::Disconnected);
            match self.reconnect() {
                Ok(resumed) => connection = resumed,
                Err(end) => break end,
            }
            self.report(KeeperState::SyncConnected);
        };
        self.finish(end);
    }

    fn reconnect(&mut self) -> Result<Connection, KeeperState> {
        loop {
            if self.shared.shutdown.load(Ordering::Acquire) {
                return Err(KeeperState::Closed);
            }
            match self.attempt() {
                Ok(connection) => return Ok(connection),
                Err(ZkError::Code(ErrorCode::SessionExpired)) => return Err(KeeperState::Expired),
                Err(_) => self.back_off_after_round(),
            }
        }
    }

    /// Fails everything still queued or in flight with the error of `end` and reports it.
    fn finish(&mut self, end: KeeperState) {
        self.shared.state.store(end.code(), Ordering::Release);
        let error = match end {
            KeeperState::Expired => ZkError::Code(ErrorCode::SessionExpired),
            _ => ZkError::Closed,
        };
        self.fail_in_flight(&error);
        while let Ok(submission) = self.submissions.try_recv() {
            submission.sink.complete(-1, Err(error.clone()));
        }
        let _ = self.events.try_send(WatchedEvent {
            event_type: EventType::None,
            state: end,
            path: None,
        });
    }

    fn report(&mut self, state: KeeperState) {
        self.shared.state.store(state.code(), Ordering::Release);
        let _ = self.events.send(WatchedEvent { event_type: EventType::None, state, path: None });
    }

    fn fail_in_flight(&mut self, error: &ZkError) {
        for pending in self.pending.drain(..) {
            pending.sink.complete(-1, Err(error.clone()));
        }
        for (_, sink) in self.auth_pending.drain(..) {
            sink.complete(-1, Err(error.clone()));
        }
    }

    /// Serves one connection until it is lost (`Err`) or the session ends (`Ok`).
    fn serve(&mut self, connection: &mut Connection) -> Result<(), ConnectionLost> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registry = self.poll.registry();
        registry.register(&mut connection.stream, SOCKET, interest).map_err(lost)?;
        let mut events = Events::with_capacity(POLL_EVENTS_CAPACITY);
        loop {
            self.encode_submissions(connection);
            self.ping_if_idle(connection);
            connection.flush()?;
            if self.closed || self.shared.shutdown.load(Ordering::Acquire) {
                return Ok(());
            }
            let room = self.has_room(connection);
            self.poll_once(&mut events, self.poll_timeout(connection), room)?;
            let readable = events.iter().any(|event| event.token() == SOCKET);
            if readable {
                connection.read_frames(self.decoder, |body| self.on_frame(body))?;
            }
            if connection.last_receive.elapsed() > self.read_timeout() {
                return Err(ConnectionLost(format!("nothing from {} in time", connection.server)));
            }
        }
    }

    fn read_timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.timeout_ms).unwrap_or(0) * 2 / 3)
    }

    fn ping_interval(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.timeout_ms).unwrap_or(0) / 3)
    }

    fn poll_timeout(&self, connection: &Connection) -> Duration {
        let ping_due = connection.last_send + self.ping_interval();
        let receive_due = connection.last_receive + self.read_timeout();
        ping_due.min(receive_due).saturating_duration_since(Instant::now())
    }

    fn has_room(&self, connection: &Connection) -> bool {
        !self.close_sent
            && self.pending.len() < self.config.in_flight_max
            && connection.unsent_bytes() < CLIENT_WRITE_BUFFER_BYTES_HIGH
    }

    fn poll_once(
        &mut self,
        events: &mut Events,
        timeout: Duration,
        room: bool,
    ) -> Result<(), ConnectionLost> {
        self.shared.io_idle.store(true, Ordering::SeqCst);
        // Checked after announcing idleness: a submitter that queued before it saw the flag
        // unset and did not wake us, so its request must be noticed here.
        let queued = room && !self.submissions.is_empty();
        let timeout = if queued { Duration::ZERO } else { timeout };
        let result = self.poll.poll(events, Some(timeout));
        self.shared.io_idle.store(false, Ordering::SeqCst);
        match result {
            Err(error) if error.kind() != std::io::ErrorKind::Interrupted => Err(lost(error)),
            _ => Ok(()),
        }
    }

    fn encode_submissions(&mut self, connection: &mut Connection) {
        while self.has_room(connection) {
            let Ok(submission) = self.submissions.try_recv() else { break };
            self.encode_submission(submission, connection);
        }
    }

    fn encode_submission(&mut self, submission: Submission, connection: &mut Connection) {
        let Submission { request, sink } = submission;
        if let Request::Auth(auth) = &request {
            encode(connection, |writer| request.write_frame(XID_AUTH, writer));
            self.auth_pending.push_back((auth.clone(), sink));
            return;
        }
        let xid = self.next_xid;
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        let frame_start = connection.write_buffer.len();
        encode(connection, |writer| request.write_frame(xid, writer));
        let body_bytes = connection.write_buffer.len() - frame_start - FRAME_LENGTH_BYTES;
        if body_bytes > self.config.packet_bytes_max {
            connection.write_buffer.truncate(frame_start);
            let bytes_max = self.config.packet_bytes_max;
            sink.complete(-1, Err(ZkError::RequestTooLarge { bytes: body_bytes, bytes_max }));
            return;
        }
        let op = request.op_code();
        self.close_sent |= op == OpCode::CloseSession;
        let watch = WatchRegistration::of(&request);
        self.pending.push_back(Pending { xid, op, watch, sink });
    }

    fn ping_if_idle(&mut self, connection: &mut Connection) {
        let idle = connection.last_send.elapsed() >= self.ping_interval();
        if idle && connection.unsent_bytes() == 0 && !self.close_sent {
            encode(connection, |writer| Request::Ping.write_frame(XID_PING, writer));
        }
    }

    fn on_frame(&mut self, body: &[u8]) -> Result<(), ConnectionLost> {
        let mut reader = Reader::new(body);
        let header = ReplyHeader::read(&mut reader).map_err(lost)?;
        if header.zxid > 0 {
            self.last_zxid = header.zxid;
        }
        match header.xid {
            XID_NOTIFICATION => self.on_notification(&mut reader),
            XID_PING | XID_SET_WATCHES => Ok(()),
            XID_AUTH => {
                self.on_auth_reply(header.err);
                Ok(())
            }
            _ => self.on_reply(&header, &mut reader),
        }
    }

    fn on_notification(&mut self, reader: &mut Reader<'_>) -> Result<(), ConnectionLost> {
        let event = WatcherEvent::read(reader).map_err(lost)?;
        let event_type = EventType::from_code(event.event_type).unwrap_or(EventType::None);
        let state = KeeperState::from_code(event.state).unwrap_or(KeeperState::Unknown);
        self.watches.on_event(event_type, &event.path);
        let path = Some(event.path);
        let _ = self.events.send(WatchedEvent { event_type, state, path });
        Ok(())
    }

    fn on_auth_reply(&mut self, err: i32) {
        if self.auth_replays > 0 {
            self.auth_replays -= 1;
            return;
        }
        let Some((auth, sink)) = self.auth_pending.pop_front() else { return };
        if err == 0 {
            self.auths.push(auth);
            sink.complete(-1, Ok(Response::Empty));
        } else {
            sink.complete(-1, Err(ZkError::from_code(err)));
            let state = KeeperState::AuthFailed;
            let _ =
                self.events.send(WatchedEvent { event_type: EventType::None, state, path: None });
        }
    }

    fn on_reply(
        &mut self,
        header: &ReplyHeader,
        reader: &mut Reader<'_>,
    ) -> Result<(), ConnectionLost> {
        let Some(pending) = self.pending.pop_front() else {
            return Err(ConnectionLost(format!("reply xid {} with nothing in flight", header.xid)));
        };
        if pending.xid != header.xid {
            let expected = pending.xid;
            self.pending.push_front(pending);
            return Err(ConnectionLost(format!(
                "reply xid {} where {expected} was due",
                header.xid
            )));
        }
        if let Some(watch) = pending.watch {
            self.watches.on_reply(watch, header.err);
        }
        let result = if header.err == 0 {
            Response::read(pending.op, reader).map_err(ZkError::Codec)
        } else {
            Err(ZkError::from_code(header.err))
        };
        self.closed |= pending.op == OpCode::CloseSession;
        pending.sink.complete(header.zxid, result);
        Ok(())
    }
}

/// Appends frames to `connection`'s write buffer through a jute writer.
fn encode(connection: &mut Connection, write: impl FnOnce(&mut Writer)) {
    let mut writer = Writer::from_vec(std::mem::take(&mut connection.write_buffer));
    write(&mut writer);
    connection.write_buffer = writer.into_vec();
}

fn lost(error: impl std::fmt::Display) -> ConnectionLost {
    ConnectionLost(error.to_string())
}
