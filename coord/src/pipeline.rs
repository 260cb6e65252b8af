//! `Pipeline`: the server's per-request path — handshake, routing, in-order replies, the
//! apply step and watch delivery (ZooKeeper's `NIOServerCnxn.readRequest`,
//! `ZooKeeperServer.processConnectRequest`/`reopenSession`, `FinalRequestProcessor`).
//!
//! ```text
//! connect  new session  : createSession txn; ConnectResponse once it is applied
//!          resume       : password and liveness checked; a connection already holding the
//!                         session is closed; a failure answers timeout 0, session 0,
//!                         16 zero bytes, then closes (ZooKeeper's finishSessionInit(false))
//!          lastZxidSeen above ours: refused (closed), as ZooKeeper
//! request  touch session (unknown or closing → SessionExpired, close)
//!          bad frame header → close; unknown op → Unimplemented; bad body → MarshallingError
//! apply    tree.apply → prep.applied → watch events (xid -1, zxid -1) → the reply
//!          (ReplyHeader xid, txn zxid, err; body only when err = 0, always for multi)
//!          → then every read queued behind that write
//! ```

use std::time::Instant;

use zabflow_net::constants::{XID_AUTH, XID_NOTIFICATION};
use zabflow_net::jute::{
    ConnectRequest, ConnectResponse, ErrorCode, FourLetterWord, Record, ReplyHeader, Request,
    RequestHeader, Response,
};

use crate::acl;
use crate::connection::{Pending, Phase};
use crate::constants::{SESSION_PASSWORD_BYTES, SESSION_PASSWORD_SECRET};
use crate::four_letter::{self, ConnectionView, ServerView};
use crate::request_processor::{op_abbreviation, route, serve_read, Route};
use crate::server::{log_event, InFlight, Origin, Server};
use crate::session_tracker::session_password;
use crate::txn::Txn;
use crate::watch_manager::{Notification, SessionId};

/// A decoded frame.
enum Decoded {
    Connect(Option<ConnectRequest>),
    Request(zabflow_net::Result<(RequestHeader, Request)>),
}

impl Server {
    /// Handles every complete frame buffered on connection `id` while reading is allowed.
    pub(crate) fn process_frames(&mut self, id: u64) {
        loop {
            let Some(connection) = self.connections.get_mut(&id) else { return };
            if connection.read_blocked() {
                return;
            }
            let phase = connection.phase;
            let input = connection.input();
            if phase == Phase::New {
                if let Some(word) = FourLetterWord::detect(input) {
                    connection.consume(input.len());
                    self.four_letter(id, word);
                    return;
                }
            }
            let (decoded, consumed) = match self.decoder.decode(input) {
                Ok(None) => return,
                Ok(Some(frame)) => {
                    let decoded = match phase {
                        Phase::New => Decoded::Connect(
                            ConnectRequest::read(&mut zabflow_net::jute::Reader::new(frame.body))
                                .ok(),
                        ),
                        _ => Decoded::Request(Request::decode(frame.body)),
                    };
                    (decoded, frame.consumed_bytes)
                }
                Err(error) => {
                    log_event(&format!("connection {}: {error}; closing", connection.peer));
                    self.close_connection(id, "bad frame");
                    return;
                }
            };
            connection.consume(consumed);
            self.stats.packets_received += 1;
            connection.stats.received += 1;
            match decoded {
                Decoded::Connect(request) => self.on_connect(id, request),
                Decoded::Request(request) => self.on_request(id, request),
            }
        }
    }

    fn on_connect(&mut self, id: u64, request: Option<ConnectRequest>) {
        let Some(request) = request else {
            self.close_connection(id, "malformed ConnectRequest");
            return;
        };
        if self.read_only() {
            self.read_only_connect(id, &request);
            return;
        }
        if !self.serving() {
            // ZooKeeper: "ZooKeeperServer not running" — the client tries another server.
            self.close_connection(id, "not serving: no established leader");
            return;
        }
        let last_zxid = self.tree.last_processed_zxid();
        if request.last_zxid_seen > last_zxid {
            log_event(&format!(
                "refusing session: client has seen zxid 0x{:x}, ours is 0x{last_zxid:x}",
                request.last_zxid_seen
            ));
            self.close_connection(id, "client ahead of the server");
            return;
        }
        let timeout_ms = self.config.session_config().negotiate_timeout_ms(request.time_out);
        if request.session_id == 0 {
            let session_id = self.tracker.create_session(timeout_ms, self.clock.now_ms());
            let create = Request::CreateSession(zabflow_net::jute::CreateSessionTxn {
                time_out: timeout_ms,
            });
            let origin =
                Origin::Connect { connection: id, timeout_ms, read_only: request.read_only };
            self.submit_write(session_id, 0, &create, Some(id), origin);
            let connection = self.connections.get_mut(&id).expect("live connection");
            connection.phase = Phase::Connecting;
            connection.stats.timeout_ms = timeout_ms;
            return;
        }
        self.resume_session(id, &request, timeout_ms);
    }

    pub(crate) fn resume_session(&mut self, id: u64, request: &ConnectRequest, timeout_ms: i32) {
        let session_id = request.session_id;
        let password = session_password(session_id, SESSION_PASSWORD_SECRET);
        let valid = request.passwd == password
            && self.sessions.contains_key(&session_id)
            && self.touch_session(session_id);
        if !valid {
            log_event(&format!(
                "session 0x{session_id:x}: resume refused (expired or bad password)"
            ));
            let refusal = ConnectResponse {
                protocol_version: 0,
                time_out: 0,
                session_id: 0,
                passwd: vec![0; SESSION_PASSWORD_BYTES],
                read_only: request.read_only.map(|_| self.read_only()),
            };
            self.send_connect_response(id, &refusal);
            if let Some(connection) = self.connections.get_mut(&id) {
                connection.close_after_flush = true;
            }
            return;
        }
        let previous = self.sessions.get(&session_id).and_then(|entry| entry.connection);
        if let Some(previous) = previous.filter(|&previous| previous != id) {
            self.close_connection(previous, "session resumed on another connection");
        }
        self.establish(id, session_id, timeout_ms, request.read_only);
    }

    pub(crate) fn establish(
        &mut self,
        id: u64,
        session_id: SessionId,
        timeout_ms: i32,
        ro: Option<bool>,
    ) {
        let Some(connection) = self.connections.get_mut(&id) else { return };
        connection.phase = Phase::Session(session_id);
        connection.stats.timeout_ms = timeout_ms;
        if let Some(entry) = self.sessions.get_mut(&session_id) {
            entry.connection = Some(id);
        }
        let response = ConnectResponse {
            protocol_version: 0,
            time_out: timeout_ms,
            session_id,
            passwd: session_password(session_id, SESSION_PASSWORD_SECRET).to_vec(),
            read_only: ro.map(|_| self.read_only()),
        };
        self.send_connect_response(id, &response);
        self.paused.insert(id);
    }

    fn send_connect_response(&mut self, id: u64, response: &ConnectResponse) {
        let Some(connection) = self.connections.get_mut(&id) else { return };
        connection.queue(|writer| {
            let start = writer.begin_frame();
            response.write(writer);
            writer.end_frame(start);
        });
        self.dirty.insert(id);
    }

    fn on_request(&mut self, id: u64, decoded: zabflow_net::Result<(RequestHeader, Request)>) {
        let connection = self.connections.get_mut(&id).expect("live connection");
        let session_id = connection.session_id().expect("requests come after the handshake");
        let (header, request) = match decoded {
            Ok(decoded) => decoded,
            Err(error) => match (error.reply_error_code(), error.xid()) {
                (Some(code), Some(xid)) => {
                    let op = match &error {
                        zabflow_net::Error::UnknownOpCode { op, .. }
                        | zabflow_net::Error::MalformedRequest { op, .. } => *op,
                        _ => 0,
                    };
                    let header = RequestHeader { xid, op };
                    if code == ErrorCode::Unimplemented {
                        // As ZooKeeper's UnimplementedRequestProcessor: answer, then close
                        // the connection (the session lives on and can be resumed).
                        connection.close_after_flush = true;
                    }
                    self.queue_read(id, header, Err(code.code()));
                    return;
                }
                _ => {
                    self.close_connection(id, "undecodable request header");
                    return;
                }
            },
        };
        connection.stats.last_op = op_abbreviation(header.op);
        connection.stats.last_cxid = header.xid;
        if !self.touch_session(session_id) {
            self.reply(
                id,
                header.xid,
                self.tree.last_processed_zxid(),
                ErrorCode::SessionExpired.code(),
                None,
            );
            if let Some(connection) = self.connections.get_mut(&id) {
                connection.close_after_flush = true;
            }
            return;
        }
        if self.read_only() {
            if self.read_only_request(id, session_id, header.clone(), &request) {
                return;
            }
        } else if let Some(ensemble) = &mut self.ensemble {
            let timeout = self.sessions.get(&session_id).map_or(0, |entry| entry.timeout_ms);
            ensemble.touched.insert(session_id, timeout);
            if let Request::Sync(sync) = &request {
                let path = sync.path.clone();
                let connection = self.connections.get_mut(&id).expect("live connection");
                connection.pending.push_back(Pending::Write { xid: header.xid });
                if !self.ensemble_sync(id, header.xid, path) {
                    self.close_connection(id, "sync while not serving");
                }
                return;
            }
        }
        match route(&request) {
            Route::Write => self.on_write(id, session_id, header, &request),
            Route::Auth => self.on_auth(id, &request),
            Route::Connect => self.close_connection(id, "createSession on an open session"),
            Route::Read => self.queue_read(id, header, Ok(request)),
        }
    }

    fn on_write(
        &mut self,
        id: u64,
        session_id: SessionId,
        header: RequestHeader,
        request: &Request,
    ) {
        if matches!(request, Request::CloseSession) {
            self.tracker.set_closing(session_id);
        }
        let origin = Origin::Client {
            connection: id,
            xid: header.xid,
            op: request.op_code(),
            received: Instant::now(),
        };
        self.submit_write(session_id, header.xid, request, Some(id), origin);
        let connection = self.connections.get_mut(&id).expect("live connection");
        connection.pending.push_back(Pending::Write { xid: header.xid });
    }

    fn on_auth(&mut self, id: u64, request: &Request) {
        let Request::Auth(packet) = request else { return };
        let super_digest = self.config.super_digest.as_deref();
        let zxid = self.tree.last_processed_zxid();
        match acl::authenticate(&packet.scheme, &packet.auth, super_digest) {
            Ok(ids) => {
                let connection = self.connections.get_mut(&id).expect("live connection");
                acl::add_auth_ids(&mut connection.auth_ids, ids);
                self.reply(id, XID_AUTH, zxid, 0, None);
            }
            Err(code) => {
                log_event(&format!(
                    "auth scheme {:?} refused; closing the connection",
                    packet.scheme
                ));
                self.reply(id, XID_AUTH, zxid, code.code(), None);
                if let Some(connection) = self.connections.get_mut(&id) {
                    connection.close_after_flush = true;
                }
            }
        }
    }

    /// Answers a read now, or queues it behind the session's unapplied writes.
    pub(crate) fn queue_read(
        &mut self,
        id: u64,
        header: RequestHeader,
        request: Result<Request, i32>,
    ) {
        let connection = self.connections.get_mut(&id).expect("live connection");
        connection.pending.push_back(Pending::Read { header, request, received: Instant::now() });
        self.drain_reads(id);
    }

    /// Serves the reads at the head of the connection's queue.
    fn drain_reads(&mut self, id: u64) {
        loop {
            let Some(connection) = self.connections.get_mut(&id) else { return };
            let Some(session_id) = connection.session_id() else { return };
            if !matches!(connection.pending.front(), Some(Pending::Read { .. })) {
                return;
            }
            let Some(Pending::Read { header, request, received }) = connection.pending.pop_front()
            else {
                unreachable!("checked above");
            };
            let read = match &request {
                Ok(request) => {
                    serve_read(&mut self.tree, session_id, &connection.auth_ids, request)
                }
                Err(code) => {
                    crate::request_processor::ReadReply { err: *code, ..Default::default() }
                }
            };
            self.notify(read.notifications);
            self.stats.record_latency(received.elapsed());
            let zxid = self.tree.last_processed_zxid();
            self.reply(id, header.xid, zxid, read.err, read.body.as_ref());
        }
    }

    /// Queues a reply frame.
    pub(crate) fn reply(
        &mut self,
        id: u64,
        xid: i32,
        zxid: i64,
        err: i32,
        body: Option<&Response>,
    ) {
        let Some(connection) = self.connections.get_mut(&id) else { return };
        let header = ReplyHeader { xid, zxid, err };
        connection.queue(|writer| Response::write_frame(&header, body, writer));
        connection.stats.sent += 1;
        connection.stats.last_zxid = zxid;
        self.stats.packets_sent += 1;
        self.dirty.insert(id);
    }

    /// Sends watch events to the sessions' connections.
    fn notify(&mut self, notifications: Vec<Notification>) {
        for notification in notifications {
            let connection = self.sessions.get(&notification.session_id).and_then(|e| e.connection);
            let Some(id) = connection else { continue };
            let body = Response::Notification(notification.event);
            self.reply(id, XID_NOTIFICATION, -1, 0, Some(&body));
        }
    }

    /// Applies one durable txn and answers whoever waits for it.
    pub(crate) fn apply(&mut self, in_flight: InFlight) {
        let InFlight { header, txn, origin } = in_flight;
        let applied = self.tree.apply(&header, &txn);
        self.prep.applied(header.zxid);
        self.count_applied();
        let session_id = header.client_id;
        match &txn {
            Txn::CreateSession(create) => {
                let entry =
                    crate::server::SessionEntry { timeout_ms: create.time_out, connection: None };
                self.sessions.insert(session_id, entry);
                // In an ensemble every server learns every session here; the leader expires
                // them, followers answer their resumption.
                self.tracker.track_session(session_id, create.time_out, self.clock.now_ms());
            }
            Txn::CloseSession(_) => self.tracker.remove(session_id),
            _ => {}
        }
        self.notify(applied.notifications);
        match origin {
            Origin::Client { connection, xid, op, received } => {
                let (err, body) = applied.result.response(op);
                let body = (!matches!(body, Response::Empty)).then_some(body);
                self.stats.record_latency(received.elapsed());
                self.complete_write(connection, xid, header.zxid, err, body.as_ref());
            }
            Origin::Connect { connection, timeout_ms, read_only } => {
                self.establish(connection, session_id, timeout_ms, read_only);
            }
            Origin::Internal => {}
        }
        if matches!(txn, Txn::CloseSession(_)) {
            self.end_session(session_id);
        }
    }

    /// Answers the write (or ensemble `sync`) at the head of a connection's queue, then the
    /// reads queued behind it.
    pub(crate) fn complete_write(
        &mut self,
        connection: u64,
        xid: i32,
        zxid: i64,
        err: i32,
        body: Option<&Response>,
    ) {
        let Some(pending) = self.connections.get_mut(&connection) else { return };
        let head = pending.pending.pop_front();
        assert!(
            matches!(head, Some(Pending::Write { xid: head_xid }) if head_xid == xid),
            "a session's writes are applied in the order sent"
        );
        self.reply(connection, xid, zxid, err, body);
        self.drain_reads(connection);
    }

    /// A closed or expired session: its connection goes once its last reply is out.
    pub(crate) fn end_session(&mut self, session_id: SessionId) {
        let Some(entry) = self.sessions.remove(&session_id) else { return };
        let Some(id) = entry.connection else { return };
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.close_after_flush = true;
            self.dirty.insert(id);
        }
    }

    fn four_letter(&mut self, id: u64, word: FourLetterWord) {
        if word == FourLetterWord::Srst && self.config.four_letter_enabled("srst") {
            self.stats.reset();
        }
        let text = four_letter::reply(word.name(), &self.view());
        log_event(&format!("four-letter word {}", word.name()));
        let Some(connection) = self.connections.get_mut(&id) else { return };
        match text {
            Some(text) => {
                connection.queue_bytes(text.as_bytes());
                connection.close_after_flush = true;
                self.dirty.insert(id);
            }
            None => self.close_connection(id, "four-letter word not served"),
        }
    }

    fn view(&self) -> ServerView<'_> {
        let connections = self
            .connections
            .values()
            .map(|c| ConnectionView {
                peer: c.peer.to_string(),
                queued: c.pending.len(),
                received: c.stats.received,
                sent: c.stats.sent,
                session_id: c.session_id(),
                last_op: if c.stats.last_op.is_empty() { "NA" } else { c.stats.last_op },
                last_cxid: c.stats.last_cxid,
                last_zxid: c.stats.last_zxid,
                timeout_ms: c.stats.timeout_ms,
            })
            .collect();
        let mut sessions: Vec<(SessionId, i32)> =
            self.sessions.iter().map(|(&id, e)| (id, e.timeout_ms)).collect();
        sessions.sort_unstable();
        let ephemerals = self
            .tree
            .sessions_with_ephemerals()
            .into_iter()
            .map(|id| (id, self.tree.ephemerals(id)))
            .collect();
        let (watching_sessions, watched_paths) = self.tree.watches().summary();
        let mode = match &self.ensemble {
            _ if self.read_only() => four_letter::Mode::ReadOnly,
            None => four_letter::Mode::Standalone,
            Some(ensemble) => match ensemble.zab.role() {
                crate::zab::Role::Leading { .. } => {
                    let stats = ensemble.zab.stats();
                    four_letter::Mode::Leader {
                        followers: stats.followers,
                        synced_followers: stats.synced_followers,
                        pending_syncs: stats.pending_syncs,
                    }
                }
                crate::zab::Role::Following { .. } => four_letter::Mode::Follower,
                _ => four_letter::Mode::NotServing,
            },
        };
        ServerView {
            config: &self.config,
            mode,
            stats: &self.stats,
            connections,
            outstanding: self.in_flight.len(),
            last_zxid: self.tree.last_processed_zxid(),
            node_count: self.tree.node_count(),
            watch_count: self.tree.watches().watch_count(),
            watching_sessions,
            watched_paths,
            ephemerals_count: self.tree.ephemerals_count(),
            approximate_data_size: self.tree.approximate_data_size(),
            sessions,
            ephemerals,
            uptime_ms: self.clock.uptime_ms(),
        }
    }
}
