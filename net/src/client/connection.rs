//! `Connection`: one TCP connection of a session, from handshake to its last byte.
//!
//! ```text
//! handshake: client → ConnectRequest-frame; server → ConnectResponse-frame
//! then     : client → request-frames; server → reply-frames (xid order) and notifications
//! ```
//!
//! The handshake is done with a blocking socket and timeouts (it is one round trip, and the
//! I/O thread has nothing else to do while it is not connected); the socket then turns
//! non-blocking and moves under `mio`. The read buffer is allocated once, large enough for the
//! largest frame allowed ([`ClientConfig::packet_bytes_max`](super::ClientConfig)), so any
//! complete frame fits and reading never grows it. Outgoing bytes collect in a write buffer
//! that the I/O thread keeps under [`CLIENT_WRITE_BUFFER_BYTES_HIGH`] plus one frame.
//!
//! [`CLIENT_WRITE_BUFFER_BYTES_HIGH`]: crate::constants::CLIENT_WRITE_BUFFER_BYTES_HIGH

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::constants::FRAME_LENGTH_BYTES;
use crate::error::{ZkError, ZkResult};
use crate::jute::{ConnectRequest, ConnectResponse, FrameDecoder, Record, Writer};

/// Connects to `server` (`host:port`) and exchanges the connect handshake within `timeout`;
/// the socket comes back non-blocking, with `TCP_NODELAY` set. [`super::Client`] uses it, and
/// so does a driver that owns its sockets itself (the `bench coord` load generator).
///
/// # Errors
/// [`ZkError::Connect`] for an address that does not resolve, a connection refused or timed
/// out, or a response that does not decode.
pub fn handshake(
    server: &str,
    request: &ConnectRequest,
    timeout: Duration,
    decoder: FrameDecoder,
) -> ZkResult<(TcpStream, ConnectResponse)> {
    let failed = |error: &dyn std::fmt::Display| ZkError::Connect(format!("{server}: {error}"));
    let address = server
        .to_socket_addrs()
        .map_err(|error| failed(&error))?
        .next()
        .ok_or_else(|| failed(&"resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(|e| failed(&e))?;
    let deadline = Instant::now() + timeout;
    stream.set_nodelay(true).map_err(|error| failed(&error))?;
    stream.set_write_timeout(Some(timeout)).map_err(|error| failed(&error))?;
    let mut writer = Writer::new();
    let start = writer.begin_frame();
    request.write(&mut writer);
    writer.end_frame(start);
    stream.write_all(writer.as_bytes()).map_err(|error| failed(&error))?;
    let body = read_frame_blocking(&mut stream, deadline, decoder).map_err(|e| failed(&e))?;
    let response = ConnectResponse::from_bytes(&body).map_err(|error| failed(&error))?;
    stream.set_nonblocking(true).map_err(|error| failed(&error))?;
    Ok((stream, response))
}

fn read_frame_blocking(
    stream: &mut TcpStream,
    deadline: Instant,
    decoder: FrameDecoder,
) -> io::Result<Vec<u8>> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    stream.set_read_timeout(Some(remaining.max(Duration::from_millis(1))))?;
    let mut prefix = [0; FRAME_LENGTH_BYTES];
    stream.read_exact(&mut prefix)?;
    let body_bytes = decoder
        .peek_length(&prefix)
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other("no length"))?;
    let mut body = vec![0; body_bytes];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// A connected, handshaken socket and its buffers.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: mio::net::TcpStream,
    read_buffer: Vec<u8>,
    read_bytes: usize,
    /// Encoded frames not yet written; `written_bytes` of them are on the wire already.
    pub(crate) write_buffer: Vec<u8>,
    written_bytes: usize,
    pub(crate) last_send: Instant,
    pub(crate) last_receive: Instant,
    pub(crate) server: String,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionLost(pub(crate) String);

impl Connection {
    /// Wraps a handshaken non-blocking `stream`, with room for frames of `decoder`'s limit.
    pub(crate) fn new(stream: TcpStream, decoder: FrameDecoder, server: &str) -> Connection {
        let now = Instant::now();
        Connection {
            stream: mio::net::TcpStream::from_std(stream),
            read_buffer: vec![0; FRAME_LENGTH_BYTES + decoder.packet_bytes_max()],
            read_bytes: 0,
            write_buffer: Vec::new(),
            written_bytes: 0,
            last_send: now,
            last_receive: now,
            server: server.to_owned(),
        }
    }

    /// Bytes encoded but not yet written to the socket.
    pub(crate) fn unsent_bytes(&self) -> usize {
        self.write_buffer.len() - self.written_bytes
    }

    /// Writes buffered bytes until they are all out or the socket would block.
    ///
    /// # Errors
    /// The socket failed; the connection is lost.
    pub(crate) fn flush(&mut self) -> Result<(), ConnectionLost> {
        while self.written_bytes < self.write_buffer.len() {
            match self.stream.write(&self.write_buffer[self.written_bytes..]) {
                Ok(0) => return Err(ConnectionLost("socket closed while writing".to_owned())),
                Ok(bytes) => {
                    self.written_bytes += bytes;
                    self.last_send = Instant::now();
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(ConnectionLost(format!("write: {error}"))),
            }
        }
        self.write_buffer.clear();
        self.written_bytes = 0;
        Ok(())
    }

    /// Reads until the socket would block, handing each complete frame body to `on_frame`.
    ///
    /// # Errors
    /// End of stream, a socket error, a frame over the limit, or an error of `on_frame`.
    pub(crate) fn read_frames(
        &mut self,
        decoder: FrameDecoder,
        mut on_frame: impl FnMut(&[u8]) -> Result<(), ConnectionLost>,
    ) -> Result<(), ConnectionLost> {
        loop {
            match self.stream.read(&mut self.read_buffer[self.read_bytes..]) {
                Ok(0) => return Err(ConnectionLost("server closed the connection".to_owned())),
                Ok(bytes) => {
                    self.read_bytes += bytes;
                    self.last_receive = Instant::now();
                    self.split_frames(decoder, &mut on_frame)?;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(ConnectionLost(format!("read: {error}"))),
            }
        }
    }

    fn split_frames(
        &mut self,
        decoder: FrameDecoder,
        on_frame: &mut impl FnMut(&[u8]) -> Result<(), ConnectionLost>,
    ) -> Result<(), ConnectionLost> {
        let mut offset = 0;
        loop {
            let buffered = &self.read_buffer[offset..self.read_bytes];
            let frame = decoder.decode(buffered).map_err(|e| ConnectionLost(e.to_string()))?;
            let Some(frame) = frame else { break };
            on_frame(frame.body)?;
            offset += frame.consumed_bytes;
        }
        self.read_buffer.copy_within(offset..self.read_bytes, 0);
        self.read_bytes -= offset;
        // The buffer holds the largest allowed frame, so a full buffer holds a whole frame
        // and the loop above has consumed it: reading always makes progress.
        assert!(self.read_bytes < self.read_buffer.len(), "read buffer full without a frame");
        Ok(())
    }
}
