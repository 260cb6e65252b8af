//! `Connection`: one client socket — its bounded input and output buffers, its handshake
//! phase, its session's auth ids and the requests it has in flight, in the order sent.
//!
//! ```text
//! phase    = new          ; first 4 bytes: a four-letter word, or a ConnectRequest frame
//!          | connecting   ; createSession logged but not applied: no more frames read
//!          | session(id)  ; requests, answered in order
//! pending  = (write xid | read request)*, the head is always an unapplied write
//! ```
//!
//! Bounds: the input buffer holds at most one frame (`4 + jute.maxbuffer`) plus one read
//! chunk; the driver stops reading when `pending` reaches `CONNECTION_PENDING_REQUESTS_MAX`
//! or the output passes `CONNECTION_OUTPUT_BYTES_HIGH`, and disconnects a client whose
//! output passes `CONNECTION_OUTPUT_BYTES_MAX` (it stopped reading its own replies and
//! watch events). The socket is edge-triggered: reads and writes go until `WouldBlock`.
//!
//! A connection of the secure port carries a rustls `ServerConnection` between the socket
//! and the buffers: a read feeds it ciphertext (`read_tls`, `process_new_packets`) and takes
//! out plaintext into the same input buffer, a flush hands it the output (at most
//! `TLS_PLAINTEXT_PENDING_BYTES_MAX` at a time, so the output bound still counts) and writes
//! its records (`write_tls`). Everything above the buffers — frames, sessions, requests —
//! is the same code for both ports. A failed handshake (no or an untrusted client
//! certificate, plain bytes on the TLS port) is logged, an alert is sent and the connection
//! is closed; nothing else is touched.

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use zabflow_net::jute::{Id, Request, RequestHeader, Writer};

use crate::constants::{
    CONNECTION_OUTPUT_BYTES_HIGH, CONNECTION_OUTPUT_BYTES_MAX, CONNECTION_PENDING_REQUESTS_MAX,
    CONNECTION_READ_CHUNK_BYTES, TLS_PLAINTEXT_PENDING_BYTES_MAX,
};
use crate::watch_manager::SessionId;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    New,
    Connecting,
    Session(SessionId),
}

/// A request of a connection not yet answered.
#[derive(Debug)]
pub enum Pending {
    /// A write in the txn pipeline; its reply comes when its txn is applied.
    Write { xid: i32 },
    /// A read (or ping, setWatches, error) waiting for the session's earlier writes.
    Read { header: RequestHeader, request: Result<Request, i32>, received: Instant },
}

/// Counters `cons` shows.
#[derive(Debug, Clone, Default)]
pub struct ConnectionStats {
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub timeout_ms: i32,
}

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    pub id: u64,
    pub socket: TcpStream,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub auth_ids: Vec<Id>,
    pub pending: VecDeque<Pending>,
    pub close_after_flush: bool,
    pub stats: ConnectionStats,
    pub established: Instant,
    /// Read buffer: `input[input_start..input_end]` is read and not yet consumed; the whole
    /// vector stays initialised, so a read does not zero its chunk again (64 KiB per read
    /// was 2-3% of a server's CPU at one request in flight per session).
    input: Vec<u8>,
    input_start: usize,
    input_end: usize,
    output: Vec<u8>,
    output_start: usize,
    /// The TLS session of a secure-port connection.
    tls: Option<Box<rustls::ServerConnection>>,
}

/// What a read from the socket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    Data,
    WouldBlock,
    Closed,
}

impl Connection {
    /// A new connection from `peer`.
    #[must_use]
    pub fn new(
        id: u64,
        socket: TcpStream,
        peer: SocketAddr,
        tls: Option<rustls::ServerConnection>,
        now: Instant,
    ) -> Self {
        let tls = tls.map(|mut tls| {
            tls.set_buffer_limit(Some(TLS_PLAINTEXT_PENDING_BYTES_MAX));
            Box::new(tls)
        });
        Connection {
            id,
            socket,
            peer,
            phase: Phase::New,
            auth_ids: crate::acl::connection_ids(peer),
            pending: VecDeque::new(),
            close_after_flush: false,
            stats: ConnectionStats::default(),
            established: now,
            input: Vec::new(),
            input_start: 0,
            input_end: 0,
            output: Vec::new(),
            output_start: 0,
            tls,
        }
    }

    /// The session, once established.
    #[must_use]
    pub fn session_id(&self) -> Option<SessionId> {
        match self.phase {
            Phase::Session(session_id) => Some(session_id),
            _ => None,
        }
    }

    /// Bytes read but not yet consumed.
    #[must_use]
    pub fn input(&self) -> &[u8] {
        &self.input[self.input_start..self.input_end]
    }

    /// Drops `bytes` consumed bytes from the front of the input.
    pub fn consume(&mut self, bytes: usize) {
        self.input_start += bytes;
        assert!(self.input_start <= self.input_end, "consumed more than was read");
        if self.input_start == self.input_end {
            self.input_start = 0;
            self.input_end = 0;
        }
    }

    /// One read of up to a chunk from the socket.
    pub fn read_chunk(&mut self) -> ReadOutcome {
        if self.input_start > 0 {
            self.input.copy_within(self.input_start..self.input_end, 0);
            self.input_end -= self.input_start;
            self.input_start = 0;
        }
        let filled = self.input_end;
        if self.input.len() < filled + CONNECTION_READ_CHUNK_BYTES {
            self.input.resize(filled + CONNECTION_READ_CHUNK_BYTES, 0);
        }
        let chunk = filled..filled + CONNECTION_READ_CHUNK_BYTES;
        let outcome = match &mut self.tls {
            None => match self.socket.read(&mut self.input[chunk]) {
                Ok(0) => (0, ReadOutcome::Closed),
                Ok(bytes) => (bytes, ReadOutcome::Data),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    (0, ReadOutcome::WouldBlock)
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => (0, ReadOutcome::Data),
                Err(_) => (0, ReadOutcome::Closed),
            },
            Some(tls) => read_tls_chunk(tls, &mut self.socket, self.peer, &mut self.input[chunk]),
        };
        self.input_end = filled + outcome.0;
        outcome.1
    }

    /// Whether the driver should stop reading requests from this connection for now.
    #[must_use]
    pub fn read_blocked(&self) -> bool {
        self.phase == Phase::Connecting
            || self.close_after_flush
            || self.pending.len() >= CONNECTION_PENDING_REQUESTS_MAX
            || self.output_bytes() >= CONNECTION_OUTPUT_BYTES_HIGH
    }

    /// Whether the connection is to be closed and owes the client nothing more: every
    /// request read before the close was decided is answered and written.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.close_after_flush
            && self.pending.is_empty()
            && self.output_bytes() == 0
            && !self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Bytes queued for the client and not yet written.
    #[must_use]
    pub fn output_bytes(&self) -> usize {
        self.output.len() - self.output_start
    }

    /// Whether the client let its output pile up past the hard bound.
    #[must_use]
    pub fn output_overflowed(&self) -> bool {
        self.output_bytes() > CONNECTION_OUTPUT_BYTES_MAX
    }

    /// Appends to the output through a jute writer (one or more whole frames).
    pub fn queue(&mut self, write: impl FnOnce(&mut Writer)) {
        let mut writer = Writer::from_vec(std::mem::take(&mut self.output));
        write(&mut writer);
        self.output = writer.into_vec();
    }

    /// Appends raw bytes (four-letter word replies).
    pub fn queue_bytes(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Sends TLS's close_notify alert, after the last flush and before the socket is closed
    /// (a plain connection has nothing to say). Best effort: the socket may be gone.
    pub fn close_tls(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let _ = write_tls_records(tls, &mut self.socket);
        }
    }

    /// Writes queued output until done or `WouldBlock`.
    ///
    /// # Errors
    /// The socket's error (the connection is then dead).
    pub fn flush(&mut self) -> io::Result<()> {
        while self.output_start < self.output.len() {
            let written = match &mut self.tls {
                None => self.socket.write(&self.output[self.output_start..]),
                Some(tls) => {
                    write_tls_output(tls, &mut self.socket, &self.output[self.output_start..])
                }
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(bytes) => self.output_start += bytes,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        if let Some(tls) = &mut self.tls {
            // Handshake messages and records of plaintext taken above.
            write_tls_records(tls, &mut self.socket)?;
        }
        if self.output_start == self.output.len() {
            self.output.clear();
            self.output_start = 0;
        } else if self.output_start > CONNECTION_OUTPUT_BYTES_HIGH {
            self.output.drain(..self.output_start);
            self.output_start = 0;
        }
        Ok(())
    }
}

/// One read on a TLS connection: plaintext rustls already holds, else ciphertext from the
/// socket, processed, its answer (handshake messages, alerts) written at once.
fn read_tls_chunk(
    tls: &mut rustls::ServerConnection,
    socket: &mut TcpStream,
    peer: SocketAddr,
    chunk: &mut [u8],
) -> (usize, ReadOutcome) {
    loop {
        match tls.reader().read(chunk) {
            Ok(0) => return (0, ReadOutcome::Closed), // close_notify
            Ok(bytes) => return (bytes, ReadOutcome::Data),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return (0, ReadOutcome::Closed), // closed without close_notify
        }
        match tls.read_tls(socket) {
            Ok(0) => return (0, ReadOutcome::Closed),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return (0, ReadOutcome::WouldBlock)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return (0, ReadOutcome::Closed),
        }
        if let Err(error) = tls.process_new_packets() {
            let stage = if tls.is_handshaking() { "handshake" } else { "session" };
            crate::server::log_event(&format!(
                "TLS {stage} with {peer} failed: {error}; connection closed"
            ));
            let _ = write_tls_records(tls, socket); // the alert
            return (0, ReadOutcome::Closed);
        }
        if write_tls_records(tls, socket).is_err() {
            return (0, ReadOutcome::Closed);
        }
    }
}

/// Hands rustls as much of `output` as it takes and writes its records; the bytes taken.
fn write_tls_output(
    tls: &mut rustls::ServerConnection,
    socket: &mut TcpStream,
    output: &[u8],
) -> io::Result<usize> {
    let taken = tls.writer().write(output)?;
    write_tls_records(tls, socket)?;
    if taken == 0 {
        // rustls holds its limit of unsent records (or still handshakes): wait for the socket.
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(taken)
}

/// Writes the records rustls has ready until done or `WouldBlock` (which is no error).
fn write_tls_records(tls: &mut rustls::ServerConnection, socket: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> (Connection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let socket = TcpStream::from_std(server);
        (Connection::new(1, socket, peer, None, Instant::now()), client)
    }

    #[test]
    fn a_closing_connection_is_finished_only_when_it_owes_nothing() {
        let (mut connection, _client) = connection();
        assert!(!connection.finished(), "not closing");
        connection.close_after_flush = true;
        connection.pending.push_back(Pending::Write { xid: 7 });
        assert!(!connection.finished(), "a request read before the close is unanswered");
        connection.pending.clear();
        connection.queue_bytes(b"reply");
        assert!(!connection.finished(), "its reply is not written yet");
        connection.flush().unwrap();
        assert!(connection.finished());
        assert!(connection.read_blocked(), "a closing connection reads nothing more");
    }
}
