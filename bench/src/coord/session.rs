//! `Session`: one generator session as a bare non-blocking socket, with no thread of its own.
//!
//! The generator thread that drives a session ([`super::driver`]) owns its socket: it encodes
//! requests with jute straight into the session's write buffer and decodes each reply where
//! it landed in the read buffer. A reply is matched to the request at the head of the
//! session's FIFO by xid (a server answers a session in order), and its body is checked
//! against the op's shape without being copied out, so a reply that belongs to another
//! request cannot pass for a success.
//!
//! ```text
//! connect : ConnectRequest(timeOut, sessionId 0, passwd 16 zero bytes) → ConnectResponse
//!           with timeOut > 0; session i tries its servers from hosts[i % hosts] on
//! request : RequestHeader(xid 1, 2, …, op) body              ; FIFO of (xid, due, op)
//! reply   : ReplyHeader(xid, zxid, err) body                 ; err ≠ 0: no body (but multi)
//!           xid -1 (notification), -2 (ping) and other negative xids are skipped
//! ping    : xid -2 when nothing was sent for a third of the negotiated timeout
//! lost    : end of stream, a socket error, a frame over the limit, a reply out of xid
//!           order, or nothing received for 2/3 of the timeout while requests wait: those
//!           requests fail with ConnectionLoss and the session sends nothing more
//! close   : closeSession, then its reply (or the end of the stream) within a bound
//! ```
//!
//! The read buffer starts at [`READ_BUFFER_BYTES`] and grows only to hold a frame the
//! decoder accepts (at most `jute.maxbuffer`); the write buffer holds at most the requests
//! in flight, which the workload's depth bounds.

use super::workload::Op;
use crate::constants::{
    COORD_CLOSE_WAIT, COORD_CONNECT_ATTEMPT_TIMEOUT, COORD_CONNECT_TIMEOUT, COORD_SESSION_TIMEOUT,
};
use crate::error::{BenchError, Result};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};
use zabflow_net::client::handshake;
use zabflow_net::constants::{FRAME_LENGTH_BYTES, SESSION_PASSWORD_BYTES, XID_PING};
use zabflow_net::jute::{
    ConnectRequest, ErrorCode, FrameDecoder, OpCode, Record, RequestHeader, Writer,
};

/// Bytes a session's read buffer starts with: many replies per `read`.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Bytes of a `ReplyHeader` (xid int, zxid long, err int).
const REPLY_HEADER_BYTES: usize = 16;
/// Bytes of a `Stat`.
const STAT_BYTES: usize = 68;
/// Bytes of a `MultiHeader` (type int, done boolean, err int).
const MULTI_HEADER_BYTES: usize = 9;
/// Pause between two rounds over every server while connecting.
const CONNECT_ROUND_PAUSE: Duration = Duration::from_millis(250);

/// A request sent and not yet answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub xid: i32,
    /// When it was due: its send time in closed loop, its scheduled time in open loop.
    pub due: Instant,
    pub op: Op,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A reply without error whose body has the op's shape.
    Ok,
    /// The server's error code (`ReplyHeader.err`, or the first failed op of a `multi`).
    Failed(i32),
    /// A reply without error whose body does not fit the op: another request's reply.
    Unexpected,
    /// The connection was lost with the request in flight.
    Lost,
}

impl Outcome {
    /// The name errors are counted under: ZooKeeper's code name (`BadVersion`,
    /// `ConnectionLoss`, `code-999` for an unknown one), or `UnexpectedReply`.
    pub fn error_name(self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::Failed(code) => Some(match ErrorCode::from_code(code) {
                Some(code) => format!("{code:?}"),
                None => format!("code{code}"),
            }),
            Outcome::Unexpected => Some("UnexpectedReply".to_owned()),
            Outcome::Lost => Some(format!("{:?}", ErrorCode::ConnectionLoss)),
        }
    }
}

/// A request's end, as the session saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    pub sent: Sent,
    pub outcome: Outcome,
    /// When the reply was read (or the connection was found lost).
    pub at: Instant,
}

/// What a `create` reply's path must start with: the session's own create/delete prefix or
/// the sequential nodes' prefix.
#[derive(Debug, Clone, Copy)]
pub struct CreatedPaths<'a> {
    pub pair_prefix: &'a [u8],
    pub sequential_prefix: &'a [u8],
}

/// One generator session: a handshaken non-blocking socket and its buffers.
#[derive(Debug)]
pub struct Session {
    stream: TcpStream,
    id: i64,
    timeout: Duration,
    server: String,
    decoder: FrameDecoder,
    read_buffer: Vec<u8>,
    read_bytes: usize,
    write_buffer: Vec<u8>,
    written_bytes: usize,
    next_xid: i32,
    sent: VecDeque<Sent>,
    last_send: Instant,
    /// The last reply, or the send that ended a silence (the read timeout runs from it).
    last_receive: Instant,
    lost: Option<String>,
    /// The number of this session's create/delete node awaiting its delete, if any.
    pub pair_created: Option<u64>,
    /// Create/delete nodes this session has created, to number the next.
    pub pair_count: u64,
}

impl Session {
    /// Opens a session on the first of `servers` that accepts one, asking for `timeout`,
    /// trying them in rounds for up to [`COORD_CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// [`BenchError::Load`] with the last server's failure, or when a server says the new
    /// session expired at once.
    pub fn connect(servers: &[String], timeout: Duration) -> Result<Session> {
        let time_out = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out,
            session_id: 0,
            passwd: vec![0; SESSION_PASSWORD_BYTES],
            read_only: Some(false),
        };
        let decoder = FrameDecoder::default();
        let deadline = Instant::now() + COORD_CONNECT_TIMEOUT;
        let mut last_error = String::from("no server");
        loop {
            for server in servers {
                match handshake(server, &request, COORD_CONNECT_ATTEMPT_TIMEOUT, decoder) {
                    Ok((_, response)) if response.time_out <= 0 => {
                        return Err(BenchError::Load(format!("{server}: new session expired")));
                    }
                    Ok((stream, response)) => {
                        let timeout =
                            Duration::from_millis(response.time_out.unsigned_abs().into());
                        return Ok(Session::new(stream, response.session_id, timeout, server));
                    }
                    Err(error) => last_error = error.to_string(),
                }
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Load(format!("cannot open a session: {last_error}")));
            }
            std::thread::sleep(CONNECT_ROUND_PAUSE);
        }
    }

    fn new(stream: TcpStream, id: i64, timeout: Duration, server: &str) -> Session {
        let now = Instant::now();
        Session {
            stream,
            id,
            timeout,
            server: server.to_owned(),
            decoder: FrameDecoder::default(),
            read_buffer: vec![0; READ_BUFFER_BYTES],
            read_bytes: 0,
            write_buffer: Vec::new(),
            written_bytes: 0,
            next_xid: 1,
            sent: VecDeque::new(),
            last_send: now,
            last_receive: now,
            lost: None,
            pair_created: None,
            pair_count: 0,
        }
    }

    /// The session id the server gave.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The socket, to register with a poll.
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Why the connection was lost, if it was.
    pub fn lost(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.sent.len()
    }

    /// Appends a request frame of `op` (its body written by `body`) to the write buffer and
    /// queues it as due at `due`; [`Session::flush`] sends it.
    pub fn send(&mut self, op: Op, due: Instant, body: impl FnOnce(&mut Writer)) {
        debug_assert!(self.lost.is_none(), "a lost session sends nothing");
        let xid = self.next_xid;
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        let op_code = match op {
            Op::GetData => OpCode::GetData,
            Op::SetData => OpCode::SetData,
            Op::Create | Op::CreateSequential => OpCode::Create,
            Op::Delete => OpCode::Delete,
            Op::Exists => OpCode::Exists,
            Op::GetChildren => OpCode::GetChildren,
            Op::Multi => OpCode::Multi,
        };
        self.encode(xid, op_code, body);
        if self.sent.is_empty() {
            // The read timeout counts from when a reply became due, not from an idle spell.
            self.last_receive = due.max(self.last_receive);
        }
        self.sent.push_back(Sent { xid, due, op });
    }

    fn encode(&mut self, xid: i32, op_code: OpCode, body: impl FnOnce(&mut Writer)) {
        let mut writer = Writer::from_vec(std::mem::take(&mut self.write_buffer));
        let start = writer.begin_frame();
        RequestHeader { xid, op: op_code.code() }.write(&mut writer);
        body(&mut writer);
        writer.end_frame(start);
        self.write_buffer = writer.into_vec();
    }

    /// Bytes encoded and not yet written to the socket.
    pub fn unsent_bytes(&self) -> usize {
        self.write_buffer.len() - self.written_bytes
    }

    /// Writes what is buffered until it is all out or the socket would block; a failed
    /// write loses the connection (its requests are pushed to `completions`).
    pub fn flush(&mut self, now: Instant, completions: &mut Vec<Completed>) {
        while self.lost.is_none() && self.written_bytes < self.write_buffer.len() {
            match (&self.stream).write(&self.write_buffer[self.written_bytes..]) {
                Ok(0) => self.lose("socket closed while writing".to_owned(), now, completions),
                Ok(bytes) => {
                    self.written_bytes += bytes;
                    self.last_send = now;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.lose(format!("write: {error}"), now, completions),
            }
        }
        self.write_buffer.clear();
        self.written_bytes = 0;
    }

    /// Reads what has arrived and ends the requests it answers, in order, into
    /// `completions`; losing the connection ends every request in flight there too.
    pub fn receive(&mut self, paths: CreatedPaths<'_>, completions: &mut Vec<Completed>) {
        while self.lost.is_none() {
            let room = self.read_buffer.len() - self.read_bytes;
            match (&self.stream).read(&mut self.read_buffer[self.read_bytes..]) {
                Ok(0) => {
                    let reason = format!("{} closed the connection", self.server);
                    self.lose(reason, Instant::now(), completions);
                }
                Ok(bytes) => {
                    let now = Instant::now();
                    self.read_bytes += bytes;
                    self.last_receive = now;
                    if let Err(reason) = self.split_frames(paths, now, completions) {
                        self.lose(reason, now, completions);
                    }
                    // A short read emptied the socket: data arriving later raises a new
                    // (edge-triggered) readiness event, so there is no need for one more
                    // read to see `WouldBlock`.
                    if bytes < room {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => self.lose(format!("read: {error}"), Instant::now(), completions),
            }
        }
    }

    /// Handles every whole frame in the read buffer and keeps the partial one; makes the
    /// buffer large enough for the next frame.
    fn split_frames(
        &mut self,
        paths: CreatedPaths<'_>,
        now: Instant,
        completions: &mut Vec<Completed>,
    ) -> std::result::Result<(), String> {
        let mut offset = 0;
        loop {
            let buffered = &self.read_buffer[offset..self.read_bytes];
            let Some(frame) = self.decoder.decode(buffered).map_err(|e| e.to_string())? else {
                break;
            };
            let consumed = frame.consumed_bytes;
            let completed = answer(&mut self.sent, frame.body, paths, now)?;
            completions.extend(completed);
            offset += consumed;
        }
        self.read_buffer.copy_within(offset..self.read_bytes, 0);
        self.read_bytes -= offset;
        let buffered = &self.read_buffer[..self.read_bytes];
        if let Some(body_bytes) = self.decoder.peek_length(buffered).map_err(|e| e.to_string())? {
            let frame_bytes = FRAME_LENGTH_BYTES + body_bytes;
            if frame_bytes > self.read_buffer.len() {
                self.read_buffer.resize(frame_bytes, 0);
            }
        }
        // The buffer holds the partial frame's whole length, so the next read has room.
        assert!(self.read_bytes < self.read_buffer.len(), "read buffer full without a frame");
        Ok(())
    }

    /// Ends the connection: every request in flight becomes [`Outcome::Lost`] at `now`.
    pub fn lose(&mut self, reason: String, now: Instant, completions: &mut Vec<Completed>) {
        if self.lost.is_some() {
            return;
        }
        let outcome = Outcome::Lost;
        completions.extend(self.sent.drain(..).map(|sent| Completed { sent, outcome, at: now }));
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.write_buffer.clear();
        self.written_bytes = 0;
        self.lost = Some(reason);
    }

    /// Keeps an idle session alive and notices a silent server: sends a ping when nothing
    /// was sent for a third of the timeout, and loses the connection when requests have
    /// waited 2/3 of it with nothing received. True when a ping was queued (flush it).
    pub fn keep_alive(&mut self, now: Instant, completions: &mut Vec<Completed>) -> bool {
        if self.lost.is_some() {
            return false;
        }
        let silent = now.saturating_duration_since(self.last_receive);
        if !self.sent.is_empty() && silent > self.timeout * 2 / 3 {
            let reason = format!("nothing from {} for {silent:?}", self.server);
            self.lose(reason, now, completions);
            return false;
        }
        let idle = now.saturating_duration_since(self.last_send) >= self.timeout / 3;
        if idle && self.unsent_bytes() == 0 {
            self.encode(XID_PING, OpCode::Ping, |_| {});
            self.last_send = now;
            return true;
        }
        false
    }

    /// Ends the session politely: `closeSession`, then waits (blocking) for its reply or the
    /// end of the stream until `deadline`. Nothing may be in flight.
    fn close_send(&mut self) -> io::Result<i32> {
        let xid = self.next_xid;
        self.encode(xid, OpCode::CloseSession, |_| {});
        self.stream.set_nonblocking(false)?;
        self.stream.write_all(&self.write_buffer[self.written_bytes..])?;
        self.write_buffer.clear();
        self.written_bytes = 0;
        Ok(xid)
    }

    fn close_wait(&mut self, xid: i32, deadline: Instant) -> io::Result<()> {
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(());
            }
            self.stream.set_read_timeout(Some(remaining))?;
            let buffered = &self.read_buffer[..self.read_bytes];
            if let Ok(Some(frame)) = self.decoder.decode(buffered) {
                let replied = frame.body.get(..4) == Some(&xid.to_be_bytes()[..]);
                let consumed = frame.consumed_bytes;
                self.read_buffer.copy_within(consumed..self.read_bytes, 0);
                self.read_bytes -= consumed;
                if replied {
                    return Ok(());
                }
                continue;
            }
            if self.read_bytes == self.read_buffer.len() {
                return Ok(());
            }
            match self.stream.read(&mut self.read_buffer[self.read_bytes..])? {
                0 => return Ok(()),
                bytes => self.read_bytes += bytes,
            }
        }
    }
}

/// Closes every session that still has its connection, all `closeSession`s first, waiting
/// at most [`COORD_CLOSE_WAIT`] in all for the replies. Failures only mean the servers
/// expire the sessions themselves.
pub fn close_all(sessions: &mut [Session]) {
    let deadline = Instant::now() + COORD_CLOSE_WAIT;
    let xids: Vec<Option<i32>> = sessions
        .iter_mut()
        .map(|session| match session.lost {
            None if session.sent.is_empty() => session.close_send().ok(),
            _ => None,
        })
        .collect();
    for (session, xid) in sessions.iter_mut().zip(xids) {
        if let Some(xid) = xid {
            let _ = session.close_wait(xid, deadline);
        }
        let _ = session.stream.shutdown(std::net::Shutdown::Both);
        session.lost.get_or_insert_with(|| "closed".to_owned());
    }
}

/// Opens `count` sessions, session `i` trying the servers from `hosts[i % hosts.len()]` on,
/// each asking for [`COORD_SESSION_TIMEOUT`].
///
/// # Errors
/// [`BenchError::Load`] when a session cannot be opened.
pub fn connect_all(hosts: &[String], count: usize) -> Result<Vec<Session>> {
    connect_all_with_timeout(hosts, count, COORD_SESSION_TIMEOUT)
}

/// As [`connect_all`], asking for a session timeout of `timeout`.
///
/// # Errors
/// As [`connect_all`].
pub fn connect_all_with_timeout(
    hosts: &[String],
    count: usize,
    timeout: Duration,
) -> Result<Vec<Session>> {
    if hosts.is_empty() {
        return Err(BenchError::Load("no server to connect to".to_owned()));
    }
    (0..count)
        .map(|index| {
            let mut servers = hosts.to_vec();
            servers.rotate_left(index % hosts.len());
            Session::connect(&servers, timeout)
        })
        .collect()
}

/// Ends the request a reply frame answers: `None` for a frame that answers none of ours
/// (a notification, a ping's reply), an error for a reply out of order.
fn answer(
    sent: &mut VecDeque<Sent>,
    body: &[u8],
    paths: CreatedPaths<'_>,
    now: Instant,
) -> std::result::Result<Option<Completed>, String> {
    let Some(header) = body.first_chunk::<REPLY_HEADER_BYTES>() else {
        return Err(format!("a reply of {} bytes has no header", body.len()));
    };
    let xid = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let err = i32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    if xid < 0 {
        // -1 a watch notification, -2 a ping's reply, -4/-8 auth and setWatches: none
        // answers a request of the generator, which sets no watch.
        return Ok(None);
    }
    let Some(&head) = sent.front() else {
        return Err(format!("a reply with xid {xid} and nothing in flight"));
    };
    if head.xid != xid {
        return Err(format!("a reply with xid {xid} where {} was due", head.xid));
    }
    sent.pop_front();
    let outcome = if err != 0 {
        Outcome::Failed(err)
    } else {
        check_body(head.op, &body[REPLY_HEADER_BYTES..], paths)
    };
    Ok(Some(Completed { sent: head, outcome, at: now }))
}

/// Whether a reply body without error has the shape of `op`'s reply, read in place:
///
/// ```text
/// getData     : data:buffer Stat          ; Stat.dataLength = the data's length
/// setData, exists : Stat
/// getChildren : children:vector<ustring>
/// create      : path:ustring              ; starting with the expected prefix
/// delete      : (nothing)
/// multi       : (MultiHeader(type 5 setData, done false) Stat)* MultiHeader(done true)
///               a failed multi: MultiHeader(type -1) ErrorResponse(err) per op
/// ```
pub fn check_body(op: Op, body: &[u8], paths: CreatedPaths<'_>) -> Outcome {
    let mut cursor = Cursor { bytes: body };
    let fits = match op {
        Op::GetData => {
            let data_bytes = cursor.buffer().map(<[u8]>::len);
            let stat = cursor.take(STAT_BYTES);
            match (data_bytes, stat) {
                // Stat.dataLength is the 9th field, 52 bytes in.
                (Some(length), Some(stat)) => read_int(&stat[52..]) == length as i64,
                _ => false,
            }
        }
        Op::SetData | Op::Exists => cursor.take(STAT_BYTES).is_some(),
        Op::GetChildren => cursor.int().is_some_and(|count| {
            (0..count).all(|_| cursor.buffer().is_some_and(|child| !child.is_empty()))
        }),
        Op::Create => cursor.buffer().is_some_and(|path| path.starts_with(paths.pair_prefix)),
        Op::CreateSequential => {
            cursor.buffer().is_some_and(|path| path.starts_with(paths.sequential_prefix))
        }
        Op::Delete => true,
        Op::Multi => return check_multi(&mut cursor),
    };
    if fits && cursor.bytes.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Unexpected
    }
}

/// A `multi` of two `setData`s: both results `Stat`s, or the failure's error code.
fn check_multi(cursor: &mut Cursor<'_>) -> Outcome {
    let mut results = 0;
    let mut failure = None;
    loop {
        let Some(header) = cursor.take(MULTI_HEADER_BYTES) else { return Outcome::Unexpected };
        let op = read_int(&header[..4]);
        if header[4] != 0 {
            break;
        }
        results += 1;
        let fits = match OpCode::from_code(op as i32) {
            Some(OpCode::SetData) => cursor.take(STAT_BYTES).is_some(),
            Some(OpCode::Error) => cursor.int().is_some_and(|err| {
                // The op that failed has its code; the others are Ok or RuntimeInconsistency.
                let code = err as i32;
                let rolled_back = [0, ErrorCode::RuntimeInconsistency.code()].contains(&code);
                if failure.is_none() && !rolled_back {
                    failure = Some(code);
                }
                true
            }),
            _ => false,
        };
        if !fits {
            return Outcome::Unexpected;
        }
    }
    match failure {
        _ if results != 2 || !cursor.bytes.is_empty() => Outcome::Unexpected,
        Some(code) => Outcome::Failed(code),
        None => Outcome::Ok,
    }
}

/// Reads jute values off the front of a reply body, in place.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < count {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Some(taken)
    }

    fn int(&mut self) -> Option<i64> {
        self.take(4).map(read_int)
    }

    /// A `buffer` or `ustring`; null (-1) reads as empty.
    fn buffer(&mut self) -> Option<&'a [u8]> {
        match self.int()? {
            -1 => Some(&[]),
            length => self.take(usize::try_from(length).ok()?),
        }
    }
}

fn read_int(bytes: &[u8]) -> i64 {
    i64::from(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zabflow_net::jute::{
        CreateResponse, ErrorResponse, GetChildrenResponse, GetDataResponse, MultiResponse,
        MultiResult, Response, SetDataResponse, Stat,
    };

    fn body(response: &Response) -> Vec<u8> {
        let mut writer = Writer::new();
        response.write_body(&mut writer);
        writer.into_vec()
    }

    const PATHS: CreatedPaths<'static> =
        CreatedPaths { pair_prefix: b"/bench/tmp/s1-", sequential_prefix: b"/bench/seq/s-" };

    #[test]
    fn reply_bodies_are_checked_against_the_op() {
        let stat = Stat { data_length: 3, version: 7, ..Stat::default() };
        let data = Some(b"abc".to_vec());
        let get_data = body(&Response::GetData(GetDataResponse { data, stat: stat.clone() }));
        let set_data = body(&Response::SetData(SetDataResponse { stat: stat.clone() }));
        let children = body(&Response::GetChildren(GetChildrenResponse {
            children: vec!["a".into(), "b".into()],
        }));
        let created = |path: &str| body(&Response::Create(CreateResponse { path: path.into() }));
        let ok = |results| body(&Response::Multi(MultiResponse { results }));
        let set = || MultiResult::SetData(SetDataResponse { stat: stat.clone() });
        let multi = ok(vec![set(), set()]);
        let failed = ok(vec![
            MultiResult::Error(ErrorResponse { err: ErrorCode::BadVersion.code() }),
            MultiResult::Error(ErrorResponse { err: ErrorCode::RuntimeInconsistency.code() }),
        ]);
        let cases: [(Op, &[u8], Outcome); 16] = [
            (Op::GetData, &get_data, Outcome::Ok),
            (Op::SetData, &set_data, Outcome::Ok),
            (Op::Exists, &set_data, Outcome::Ok),
            (Op::GetChildren, &children, Outcome::Ok),
            (Op::Create, &created("/bench/tmp/s1-4"), Outcome::Ok),
            (Op::CreateSequential, &created("/bench/seq/s-0000000001"), Outcome::Ok),
            (Op::Delete, &[], Outcome::Ok),
            (Op::Multi, &multi, Outcome::Ok),
            (Op::Multi, &failed, Outcome::Failed(ErrorCode::BadVersion.code())),
            // Another op's reply never passes for this one's.
            (Op::GetData, &set_data, Outcome::Unexpected),
            (Op::SetData, &get_data, Outcome::Unexpected),
            (Op::Delete, &set_data, Outcome::Unexpected),
            (Op::Create, &created("/bench/seq/s-0000000001"), Outcome::Unexpected),
            (Op::CreateSequential, &set_data, Outcome::Unexpected),
            (Op::GetChildren, &get_data, Outcome::Unexpected),
            (Op::Multi, &set_data, Outcome::Unexpected),
        ];
        for (op, bytes, expected) in cases {
            assert_eq!(check_body(op, bytes, PATHS), expected, "{op:?} {bytes:?}");
        }
    }

    #[test]
    fn replies_end_requests_in_xid_order_and_skip_notifications() {
        let now = Instant::now();
        let mut sent: VecDeque<Sent> =
            [1, 2].map(|xid| Sent { xid, due: now, op: Op::Delete }).into();
        let frame = |xid: i32, err: i32| {
            let mut bytes = xid.to_be_bytes().to_vec();
            bytes.extend(5i64.to_be_bytes());
            bytes.extend(err.to_be_bytes());
            bytes
        };
        assert_eq!(answer(&mut sent, &frame(-1, 0), PATHS, now), Ok(None));
        assert_eq!(answer(&mut sent, &frame(XID_PING, 0), PATHS, now), Ok(None));
        let first = answer(&mut sent, &frame(1, ErrorCode::NoNode.code()), PATHS, now).unwrap();
        let first = first.unwrap();
        assert_eq!((first.sent.xid, first.outcome), (1, Outcome::Failed(-101)));
        assert_eq!(first.outcome.error_name().as_deref(), Some("NoNode"));
        assert!(answer(&mut sent, &frame(3, 0), PATHS, now).unwrap_err().contains("2 was due"));
        assert!(answer(&mut sent, &[0; 4], PATHS, now).is_err());
    }
}
