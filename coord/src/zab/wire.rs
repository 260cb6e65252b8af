//! The peer protocol's wire format: how a [`Message`] and the connection's [`Hello`] travel
//! between servers of the ensemble.
//!
//! ```text
//! stream   = hello-frame message-frame*      ; each direction; the dialer's hello comes first,
//!                                            ; the acceptor answers with its own
//! frame    = len:u32 crc:u32 body:byte[len]  ; big-endian; crc = crc32c(len bytes ++ body)
//!                                            ; len <= PEER_FRAME_BODY_BYTES_MAX
//! hello    = magic:u32 version:u16 server_id:u64 port:u8
//!            ; magic = HELLO_MAGIC ("ZABF"), version = PROTOCOL_VERSION,
//!            ; port = 0 quorum | 1 election
//! message  = tag:u8 fields                   ; fields fill the body exactly
//!    1 Vote          leader:u64 zxid:i64 peer_epoch:u32 round:u64 state:u8
//!                    ; state = 0 looking | 1 following | 2 leading
//!    2 FollowerInfo  accepted_epoch:u32 last_zxid:i64
//!    3 LeaderInfo    epoch:u32
//!    4 AckEpoch      current_epoch:u32 last_zxid:i64 counts:u8(0|1)
//!    5 Sync          mode entries
//!    6 NewLeader     epoch:u32 zxid:i64
//!    7 AckNewLeader  zxid:i64
//!    8 UpToDate      committed:i64
//!    9 Proposal      entries
//!   10 Ack           zxid:i64
//!   11 Commit        zxid:i64
//!   12 Ping          committed:i64
//!   13 Request       payload:bytes
//!   14 Sessions      payload:bytes
//!   15 SyncRequest   id:u64
//!   16 SyncReply     id:u64
//! mode     = 0                               ; diff
//!          | 1 to:i64                        ; trunc
//!          | 2 zxid:i64 data:bytes           ; snap
//! entries  = count:u32 entry{count}
//! entry    = zxid:i64 data:bytes
//! bytes    = len:u32 byte[len]
//! ```
//!
//! The version is negotiated once, in the hello, rather than repeated in every frame: a
//! server only ever speaks one version, and a peer of another version is refused at the
//! handshake. The CRC covers the length too, so a corrupted length is caught as soon as the
//! bytes it claims have arrived; a length above the bound is refused before any of the body
//! is buffered, so a peer cannot make a link hold more than one frame plus one read.
//!
//! Decoding never panics: every malformed input is a [`WireError`] (wrapped in
//! [`crate::Error::Wire`]), after which the stream cannot be resynchronised and the link is closed.

use std::io::{self, Read};
use std::sync::Arc;

use super::{Entry, Message, PeerState, ServerId, SyncMode, Vote, Zxid};
use crate::error::Result;

/// The first four bytes of every hello: "ZABF".
pub const HELLO_MAGIC: u32 = u32::from_be_bytes(*b"ZABF");

/// The version of the peer protocol this build speaks (the hello carries it).
pub const PROTOCOL_VERSION: u16 = 1;

/// Bytes of a frame's header: `len:u32 crc:u32`.
pub const FRAME_HEADER_BYTES: usize = 8;

/// The largest frame body a peer may send: a SNAP of a large tree travels as one message
/// (a million 100-byte znodes serialise to about 150 MB), so the bound is generous, but
/// bounded so that a broken or hostile peer cannot make a link buffer more than this (plus
/// one read). Buffers grow only as large frames actually arrive.
pub const PEER_FRAME_BODY_BYTES_MAX: usize = 1 << 30;

/// Bytes of a hello's body.
pub const HELLO_BODY_BYTES: usize = 4 + 2 + 8 + 1;

/// Bytes one read from a peer socket asks for, at least (more while a large frame is
/// incomplete, up to [`READ_CHUNK_BYTES_MAX`]).
pub const READ_CHUNK_BYTES: usize = 64 << 10;

/// The most bytes one read asks for while a large frame is incomplete.
pub const READ_CHUNK_BYTES_MAX: usize = 1 << 20;

/// A decoder whose buffer grew above this (for a large frame) gives the memory back once
/// the buffer is empty again.
const DECODER_BUFFER_BYTES_KEPT: usize = 2 * READ_CHUNK_BYTES_MAX;

/// Smallest encoding of an entry: zxid and an empty data length.
const ENTRY_BYTES_MIN: usize = 8 + 4;

const _: () = assert!(READ_CHUNK_BYTES <= READ_CHUNK_BYTES_MAX);
const _: () = assert!(PEER_FRAME_BODY_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(HELLO_BODY_BYTES <= PEER_FRAME_BODY_BYTES_MAX);

/// Which of a server's two peer ports a connection was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// The quorum port: discovery, sync and broadcast.
    Quorum,
    /// The election port: [`Message::Vote`] only.
    Election,
}

impl PortKind {
    /// The port kind that carries `message`.
    #[must_use]
    pub fn of(message: &Message) -> PortKind {
        match message {
            Message::Vote(_) => PortKind::Election,
            _ => PortKind::Quorum,
        }
    }

    fn code(self) -> u8 {
        match self {
            PortKind::Quorum => 0,
            PortKind::Election => 1,
        }
    }
}

/// The first frame each side of a peer connection sends: who it is and which port it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The sender's `server.N` id.
    pub server_id: ServerId,
    /// The port the connection was made to.
    pub port: PortKind,
}

/// Why bytes from a peer are not a valid frame (or a message cannot be framed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A frame's declared body length is above the bound.
    #[error("frame body of {body_bytes} bytes exceeds {body_bytes_max}")]
    FrameTooLarge { body_bytes: usize, body_bytes_max: usize },
    /// The frame's CRC does not match its bytes.
    #[error("frame crc32c {stored:#010x} does not match {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    /// A message body starts with a tag no message has.
    #[error("unknown message tag {tag}")]
    UnknownTag { tag: u8 },
    /// A one-byte enumeration (vote state, sync mode, port kind) holds an unknown value.
    #[error("unknown {field} {value}")]
    UnknownValue { field: &'static str, value: u8 },
    /// The body ended before a field was complete.
    #[error("truncated body: {needed_bytes} bytes needed, {remaining_bytes} remaining")]
    Truncated { needed_bytes: usize, remaining_bytes: usize },
    /// The body holds bytes after the message's last field.
    #[error("{bytes} trailing bytes after the message")]
    TrailingBytes { bytes: usize },
    /// A hello does not start with [`HELLO_MAGIC`]: not a zabflow peer.
    #[error("bad hello magic {magic:#010x}")]
    BadMagic { magic: u32 },
    /// A hello of another protocol version.
    #[error("hello of version {version}; this server speaks version {PROTOCOL_VERSION}")]
    BadVersion { version: u16 },
}

/// Appends `message` as one frame to `out`; returns the frame's bytes.
///
/// # Errors
/// [`WireError::FrameTooLarge`] when the body would exceed [`PEER_FRAME_BODY_BYTES_MAX`];
/// `out` is then left as it was.
pub fn encode(message: &Message, out: &mut Vec<u8>) -> Result<usize> {
    frame(out, |body| write_message(message, body))
}

/// Appends `hello` as one frame to `out`; returns the frame's bytes.
pub fn encode_hello(hello: &Hello, out: &mut Vec<u8>) -> usize {
    frame(out, |body| {
        body.extend_from_slice(&HELLO_MAGIC.to_be_bytes());
        body.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        body.extend_from_slice(&hello.server_id.to_be_bytes());
        body.push(hello.port.code());
    })
    .expect("a hello is far below the frame bound")
}

/// Writes a frame header, the body `write` appends, then fills in the header.
fn frame(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> Result<usize> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    write(out);
    let body_bytes = out.len() - start - FRAME_HEADER_BYTES;
    if body_bytes > PEER_FRAME_BODY_BYTES_MAX {
        out.truncate(start);
        let body_bytes_max = PEER_FRAME_BODY_BYTES_MAX;
        return Err(WireError::FrameTooLarge { body_bytes, body_bytes_max }.into());
    }
    let len_bytes = (body_bytes as u32).to_be_bytes();
    let crc = frame_crc(len_bytes, &out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + FRAME_HEADER_BYTES].copy_from_slice(&crc.to_be_bytes());
    Ok(FRAME_HEADER_BYTES + body_bytes)
}

fn frame_crc(len_bytes: [u8; 4], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), body)
}

fn write_message(message: &Message, out: &mut Vec<u8>) {
    let put_u32 = |out: &mut Vec<u8>, value: u32| out.extend_from_slice(&value.to_be_bytes());
    let put_i64 = |out: &mut Vec<u8>, value: i64| out.extend_from_slice(&value.to_be_bytes());
    let put_u64 = |out: &mut Vec<u8>, value: u64| out.extend_from_slice(&value.to_be_bytes());
    out.push(tag_of(message));
    match message {
        Message::Vote(vote) => {
            put_u64(out, vote.leader);
            put_i64(out, vote.zxid);
            put_u32(out, vote.peer_epoch);
            put_u64(out, vote.round);
            out.push(state_code(vote.state));
        }
        Message::FollowerInfo { accepted_epoch: epoch, last_zxid: zxid }
        | Message::NewLeader { epoch, zxid } => {
            put_u32(out, *epoch);
            put_i64(out, *zxid);
        }
        Message::AckEpoch { current_epoch, last_zxid, counts } => {
            put_u32(out, *current_epoch);
            put_i64(out, *last_zxid);
            out.push(u8::from(*counts));
        }
        Message::LeaderInfo { epoch } => put_u32(out, *epoch),
        Message::Sync { mode, entries } => {
            write_sync_mode(mode, out);
            write_entries(entries, out);
        }
        Message::AckNewLeader { zxid }
        | Message::UpToDate { committed: zxid }
        | Message::Ack { zxid }
        | Message::Commit { zxid }
        | Message::Ping { committed: zxid } => put_i64(out, *zxid),
        Message::Proposal { entries } => write_entries(entries, out),
        Message::Request { payload } | Message::Sessions { payload } => write_bytes(payload, out),
        Message::SyncRequest { id } | Message::SyncReply { id } => put_u64(out, *id),
    }
}

fn tag_of(message: &Message) -> u8 {
    match message {
        Message::Vote(_) => 1,
        Message::FollowerInfo { .. } => 2,
        Message::LeaderInfo { .. } => 3,
        Message::AckEpoch { .. } => 4,
        Message::Sync { .. } => 5,
        Message::NewLeader { .. } => 6,
        Message::AckNewLeader { .. } => 7,
        Message::UpToDate { .. } => 8,
        Message::Proposal { .. } => 9,
        Message::Ack { .. } => 10,
        Message::Commit { .. } => 11,
        Message::Ping { .. } => 12,
        Message::Request { .. } => 13,
        Message::Sessions { .. } => 14,
        Message::SyncRequest { .. } => 15,
        Message::SyncReply { .. } => 16,
    }
}

fn state_code(state: PeerState) -> u8 {
    match state {
        PeerState::Looking => 0,
        PeerState::Following => 1,
        PeerState::Leading => 2,
    }
}

fn write_sync_mode(mode: &SyncMode, out: &mut Vec<u8>) {
    match mode {
        SyncMode::Diff => out.push(0),
        SyncMode::Trunc { to } => {
            out.push(1);
            out.extend_from_slice(&to.to_be_bytes());
        }
        SyncMode::Snap { zxid, data } => {
            out.push(2);
            out.extend_from_slice(&zxid.to_be_bytes());
            write_bytes(data, out);
        }
    }
}

fn write_entries(entries: &[Entry], out: &mut Vec<u8>) {
    // More entries than a u32 counts cannot fit a frame either; the frame check refuses them.
    out.extend_from_slice(&(entries.len().min(u32::MAX as usize) as u32).to_be_bytes());
    for entry in entries {
        out.extend_from_slice(&entry.zxid.to_be_bytes());
        write_bytes(&entry.data, out);
    }
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    // A payload above u32::MAX bytes is above the frame bound: the frame check refuses it.
    out.extend_from_slice(&(bytes.len().min(u32::MAX as usize) as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Decodes one message body (a frame's bytes after its header).
///
/// # Errors
/// [`crate::Error::Wire`] for an unknown tag or enumeration value, a truncated body or trailing
/// bytes.
pub fn decode_message(body: &[u8]) -> Result<Message> {
    let mut reader = Reader { bytes: body };
    let message = read_message(&mut reader)?;
    reader.finish()?;
    Ok(message)
}

/// Decodes one hello body.
///
/// # Errors
/// [`crate::Error::Wire`] for a wrong magic or version, an unknown port kind, a truncated body or
/// trailing bytes.
pub fn decode_hello(body: &[u8]) -> Result<Hello> {
    let mut reader = Reader { bytes: body };
    let magic = reader.u32()?;
    if magic != HELLO_MAGIC {
        return Err(WireError::BadMagic { magic }.into());
    }
    let version = u16::from_be_bytes(reader.array()?);
    if version != PROTOCOL_VERSION {
        return Err(WireError::BadVersion { version }.into());
    }
    let server_id = reader.u64()?;
    let port = match reader.u8()? {
        0 => PortKind::Quorum,
        1 => PortKind::Election,
        value => return Err(WireError::UnknownValue { field: "port kind", value }.into()),
    };
    reader.finish()?;
    Ok(Hello { server_id, port })
}

/// A cursor over a body that refuses to read past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, needed_bytes: usize) -> Result<&[u8], WireError> {
        if self.bytes.len() < needed_bytes {
            let remaining_bytes = self.bytes.len();
            return Err(WireError::Truncated { needed_bytes, remaining_bytes });
        }
        let (taken, rest) = self.bytes.split_at(needed_bytes);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn zxid(&mut self) -> Result<Zxid, WireError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&[u8], WireError> {
        let length = self.u32()? as usize;
        self.take(length)
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.bytes.len() {
            0 => Ok(()),
            bytes => Err(WireError::TrailingBytes { bytes }),
        }
    }
}

fn read_message(reader: &mut Reader<'_>) -> Result<Message, WireError> {
    let message = match reader.u8()? {
        1 => Message::Vote(read_vote(reader)?),
        2 => Message::FollowerInfo { accepted_epoch: reader.u32()?, last_zxid: reader.zxid()? },
        3 => Message::LeaderInfo { epoch: reader.u32()? },
        4 => Message::AckEpoch {
            current_epoch: reader.u32()?,
            last_zxid: reader.zxid()?,
            counts: match reader.u8()? {
                0 => false,
                1 => true,
                value => return Err(WireError::UnknownValue { field: "AckEpoch counts", value }),
            },
        },
        5 => Message::Sync { mode: read_sync_mode(reader)?, entries: read_entries(reader)? },
        6 => Message::NewLeader { epoch: reader.u32()?, zxid: reader.zxid()? },
        7 => Message::AckNewLeader { zxid: reader.zxid()? },
        8 => Message::UpToDate { committed: reader.zxid()? },
        9 => Message::Proposal { entries: read_entries(reader)? },
        10 => Message::Ack { zxid: reader.zxid()? },
        11 => Message::Commit { zxid: reader.zxid()? },
        12 => Message::Ping { committed: reader.zxid()? },
        13 => Message::Request { payload: reader.bytes()?.to_vec() },
        14 => Message::Sessions { payload: reader.bytes()?.to_vec() },
        15 => Message::SyncRequest { id: reader.u64()? },
        16 => Message::SyncReply { id: reader.u64()? },
        tag => return Err(WireError::UnknownTag { tag }),
    };
    Ok(message)
}

fn read_vote(reader: &mut Reader<'_>) -> Result<Vote, WireError> {
    let leader = reader.u64()?;
    let zxid = reader.zxid()?;
    let peer_epoch = reader.u32()?;
    let round = reader.u64()?;
    let state = match reader.u8()? {
        0 => PeerState::Looking,
        1 => PeerState::Following,
        2 => PeerState::Leading,
        value => return Err(WireError::UnknownValue { field: "vote state", value }),
    };
    Ok(Vote { leader, zxid, peer_epoch, round, state })
}

fn read_sync_mode(reader: &mut Reader<'_>) -> Result<SyncMode, WireError> {
    match reader.u8()? {
        0 => Ok(SyncMode::Diff),
        1 => Ok(SyncMode::Trunc { to: reader.zxid()? }),
        2 => Ok(SyncMode::Snap { zxid: reader.zxid()?, data: Arc::from(reader.bytes()?) }),
        value => Err(WireError::UnknownValue { field: "sync mode", value }),
    }
}

fn read_entries(reader: &mut Reader<'_>) -> Result<Vec<Entry>, WireError> {
    let count = reader.u32()? as usize;
    // The count is the peer's word: reserve only what the remaining bytes could hold.
    let mut entries = Vec::with_capacity(count.min(reader.bytes.len() / ENTRY_BYTES_MIN));
    for _ in 0..count {
        let zxid = reader.zxid()?;
        entries.push(Entry { zxid, data: Arc::from(reader.bytes()?) });
    }
    Ok(entries)
}

/// Splits the bytes of one connection, as they arrive, into frames, and decodes them.
///
/// The buffer holds at most one incomplete frame plus one read: [`FrameDecoder::read_from`]
/// sizes its read to the frame in progress, and a declared length above the bound is an
/// error as soon as the header is in. After an error the stream cannot be resynchronised;
/// the caller closes the connection.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    body_bytes_max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(PEER_FRAME_BODY_BYTES_MAX)
    }
}

impl FrameDecoder {
    /// A decoder accepting frame bodies of up to `body_bytes_max` bytes.
    ///
    /// # Panics
    /// If `body_bytes_max` is above [`PEER_FRAME_BODY_BYTES_MAX`]: a configuration bug.
    #[must_use]
    pub fn new(body_bytes_max: usize) -> Self {
        assert!(body_bytes_max <= PEER_FRAME_BODY_BYTES_MAX, "peer frame bound too large");
        FrameDecoder { buffer: Vec::new(), start: 0, end: 0, body_bytes_max }
    }

    /// Bytes received and not yet decoded.
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.end - self.start
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.buffer[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// One `read` from `reader` into the buffer: [`READ_CHUNK_BYTES`], or more (up to
    /// [`READ_CHUNK_BYTES_MAX`]) while a larger frame is incomplete. Returns what `read`
    /// returned (0 at end of stream). Call [`FrameDecoder::next_message`] until it returns
    /// `None` between reads, so that the buffer holds at most one frame.
    ///
    /// # Errors
    /// The reader's error (`WouldBlock` included).
    pub fn read_from(&mut self, reader: &mut impl Read) -> io::Result<usize> {
        let wanted = self.frame_remaining_bytes().clamp(READ_CHUNK_BYTES, READ_CHUNK_BYTES_MAX);
        self.reserve(wanted);
        let read = reader.read(&mut self.buffer[self.end..self.end + wanted])?;
        self.end += read;
        Ok(read)
    }

    /// The next message, or `None` until a whole frame has arrived.
    ///
    /// # Errors
    /// [`crate::Error::Wire`] for an oversized frame, a bad CRC or a body that does not decode.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        match self.next_frame(self.body_bytes_max)? {
            Some(body) => decode_message(&self.buffer[body]).map(Some),
            None => Ok(None),
        }
    }

    /// The next frame as a hello, or `None` until a whole frame has arrived.
    ///
    /// # Errors
    /// As [`FrameDecoder::next_message`], and [`WireError::FrameTooLarge`] for a frame longer
    /// than a hello (so that a stranger cannot make a new connection buffer a big frame).
    pub fn next_hello(&mut self) -> Result<Option<Hello>> {
        match self.next_frame(HELLO_BODY_BYTES)? {
            Some(body) => decode_hello(&self.buffer[body]).map(Some),
            None => Ok(None),
        }
    }

    /// The range of the next complete frame's body (consumed), or `None`.
    fn next_frame(&mut self, body_bytes_max: usize) -> Result<Option<std::ops::Range<usize>>> {
        let Some(body_bytes) = self.peek_body_bytes(body_bytes_max)? else { return Ok(None) };
        let body_start = self.start + FRAME_HEADER_BYTES;
        let body_end = body_start + body_bytes;
        if self.end < body_end {
            return Ok(None);
        }
        let header = &self.buffer[self.start..body_start];
        let len_bytes: [u8; 4] = header[..4].try_into().expect("4 bytes");
        let stored = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        let computed = frame_crc(len_bytes, &self.buffer[body_start..body_end]);
        if stored != computed {
            return Err(WireError::BadCrc { stored, computed }.into());
        }
        self.start = body_end;
        Ok(Some(body_start..body_end))
    }

    /// The declared body length of the frame at the head, once its header is in.
    fn peek_body_bytes(&self, body_bytes_max: usize) -> Result<Option<usize>, WireError> {
        if self.buffered_bytes() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let len_bytes = self.buffer[self.start..].first_chunk::<4>().expect("header is in");
        let body_bytes = u32::from_be_bytes(*len_bytes) as usize;
        if body_bytes > body_bytes_max {
            return Err(WireError::FrameTooLarge { body_bytes, body_bytes_max });
        }
        Ok(Some(body_bytes))
    }

    /// Bytes still missing from the frame at the head (0 when its length is not known yet
    /// or it is bad: the next decode reports that).
    fn frame_remaining_bytes(&self) -> usize {
        match self.peek_body_bytes(self.body_bytes_max) {
            Ok(Some(body_bytes)) => {
                (FRAME_HEADER_BYTES + body_bytes).saturating_sub(self.buffered_bytes())
            }
            _ => 0,
        }
    }

    /// Makes room for `bytes` more after `end`: moves the undecoded tail to the front, and
    /// grows (or, once empty after a large frame, shrinks) the buffer.
    fn reserve(&mut self, bytes: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buffer.len() > DECODER_BUFFER_BYTES_KEPT {
                self.buffer = Vec::new();
            }
        } else if self.start > 0 && self.buffer.len() - self.end < bytes {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buffer.len() - self.end < bytes {
            self.buffer.resize(self.end + bytes, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use proptest::prelude::*;

    fn entries() -> impl Strategy<Value = Vec<Entry>> {
        let entry = (any::<i64>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(zxid, data)| Entry { zxid, data: Arc::from(data) });
        proptest::collection::vec(entry, 0..5)
    }

    fn vote() -> impl Strategy<Value = Vote> {
        let state = prop_oneof![
            Just(PeerState::Looking),
            Just(PeerState::Following),
            Just(PeerState::Leading)
        ];
        (any::<u64>(), any::<i64>(), any::<u32>(), any::<u64>(), state).prop_map(
            |(leader, zxid, peer_epoch, round, state)| Vote {
                leader,
                zxid,
                peer_epoch,
                round,
                state,
            },
        )
    }

    fn sync_mode() -> impl Strategy<Value = SyncMode> {
        prop_oneof![
            Just(SyncMode::Diff),
            any::<i64>().prop_map(|to| SyncMode::Trunc { to }),
            (any::<i64>(), proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(zxid, data)| SyncMode::Snap { zxid, data: Arc::from(data) }),
        ]
    }

    fn message() -> impl Strategy<Value = Message> {
        let payload = || proptest::collection::vec(any::<u8>(), 0..64);
        prop_oneof![
            vote().prop_map(Message::Vote),
            (any::<u32>(), any::<i64>()).prop_map(|(accepted_epoch, last_zxid)| {
                Message::FollowerInfo { accepted_epoch, last_zxid }
            }),
            any::<u32>().prop_map(|epoch| Message::LeaderInfo { epoch }),
            (any::<u32>(), any::<i64>(), any::<bool>()).prop_map(
                |(current_epoch, last_zxid, counts)| Message::AckEpoch {
                    current_epoch,
                    last_zxid,
                    counts
                }
            ),
            (sync_mode(), entries()).prop_map(|(mode, entries)| Message::Sync { mode, entries }),
            (any::<u32>(), any::<i64>())
                .prop_map(|(epoch, zxid)| Message::NewLeader { epoch, zxid }),
            any::<i64>().prop_map(|zxid| Message::AckNewLeader { zxid }),
            any::<i64>().prop_map(|committed| Message::UpToDate { committed }),
            entries().prop_map(|entries| Message::Proposal { entries }),
            any::<i64>().prop_map(|zxid| Message::Ack { zxid }),
            any::<i64>().prop_map(|zxid| Message::Commit { zxid }),
            any::<i64>().prop_map(|committed| Message::Ping { committed }),
            payload().prop_map(|payload| Message::Request { payload }),
            payload().prop_map(|payload| Message::Sessions { payload }),
            any::<u64>().prop_map(|id| Message::SyncRequest { id }),
            any::<u64>().prop_map(|id| Message::SyncReply { id }),
        ]
    }

    fn decode_all(decoder: &mut FrameDecoder) -> Result<Vec<Message>> {
        let mut messages = Vec::new();
        while let Some(message) = decoder.next_message()? {
            messages.push(message);
        }
        Ok(messages)
    }

    /// A frame around `body` as `encode` writes it, for hand-made bad bodies.
    fn raw_frame(body: &[u8]) -> Vec<u8> {
        let len_bytes = (body.len() as u32).to_be_bytes();
        let mut frame = len_bytes.to_vec();
        frame.extend_from_slice(&frame_crc(len_bytes, body).to_be_bytes());
        frame.extend_from_slice(body);
        frame
    }

    fn decode_one(frame: &[u8]) -> Result<Option<Message>> {
        let mut decoder = FrameDecoder::default();
        decoder.push(frame);
        decoder.next_message()
    }

    fn wire_error(result: Result<Option<Message>>) -> WireError {
        match result {
            Err(Error::Wire(error)) => error,
            other => panic!("expected a wire error, got {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn every_message_round_trips(messages in proptest::collection::vec(message(), 1..8)) {
            let mut stream = Vec::new();
            for message in &messages {
                let before = stream.len();
                let frame_bytes = encode(message, &mut stream).unwrap();
                prop_assert_eq!(frame_bytes, stream.len() - before);
            }
            let mut decoder = FrameDecoder::default();
            decoder.push(&stream);
            prop_assert_eq!(decode_all(&mut decoder).unwrap(), messages);
            prop_assert_eq!(decoder.buffered_bytes(), 0);
        }

        #[test]
        fn a_flipped_byte_is_an_error_never_a_panic(
            message in message(),
            index in any::<prop::sample::Index>(),
            flip in 1..=255u8,
        ) {
            let mut frame = Vec::new();
            encode(&message, &mut frame).unwrap();
            let at = index.index(frame.len());
            frame[at] ^= flip;
            // A corrupted length may leave the frame incomplete; anything else fails the CRC.
            prop_assert!(!matches!(decode_one(&frame), Ok(Some(_))));
        }

        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_message(&body);
            let _ = decode_hello(&body);
        }
    }

    #[test]
    fn split_at_every_byte() {
        let messages = vec![
            Message::Vote(Vote {
                leader: 3,
                zxid: 0x1_0000_0007,
                peer_epoch: 1,
                round: 9,
                state: PeerState::Looking,
            }),
            Message::Sync {
                mode: SyncMode::Snap { zxid: 5, data: Arc::from(&b"state"[..]) },
                entries: vec![Entry { zxid: 6, data: Arc::from(&b"txn"[..]) }],
            },
            Message::Commit { zxid: 6 },
            Message::Request { payload: Vec::new() },
        ];
        let mut stream = Vec::new();
        for message in &messages {
            encode(message, &mut stream).unwrap();
        }
        for split in 0..=stream.len() {
            let mut decoder = FrameDecoder::default();
            decoder.push(&stream[..split]);
            let mut decoded = decode_all(&mut decoder).unwrap();
            decoder.push(&stream[split..]);
            decoded.extend(decode_all(&mut decoder).unwrap());
            assert_eq!(decoded, messages, "split at {split}");
        }
        // One byte at a time, too.
        let mut decoder = FrameDecoder::default();
        let mut decoded = Vec::new();
        for byte in &stream {
            decoder.push(std::slice::from_ref(byte));
            decoded.extend(decode_all(&mut decoder).unwrap());
        }
        assert_eq!(decoded, messages);
    }

    #[test]
    fn read_from_sizes_reads_to_the_frame() {
        let big = Message::Request { payload: vec![7; 3 * READ_CHUNK_BYTES_MAX] };
        let mut stream = Vec::new();
        encode(&big, &mut stream).unwrap();
        encode(&Message::Ack { zxid: 1 }, &mut stream).unwrap();
        let mut source = &stream[..];
        let mut decoder = FrameDecoder::default();
        let mut decoded = Vec::new();
        let mut reads = 0;
        while decoder.read_from(&mut source).unwrap() > 0 {
            reads += 1;
            decoded.extend(decode_all(&mut decoder).unwrap());
            assert!(decoder.buffered_bytes() <= stream.len());
        }
        assert_eq!(decoded, vec![big, Message::Ack { zxid: 1 }]);
        assert!(reads <= 5, "{reads} reads for a 3 MiB frame");
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn hello_round_trips_and_checks_magic_and_version() {
        let hello = Hello { server_id: 42, port: PortKind::Election };
        let mut frame = Vec::new();
        let bytes = encode_hello(&hello, &mut frame);
        assert_eq!(bytes, FRAME_HEADER_BYTES + HELLO_BODY_BYTES);
        let mut decoder = FrameDecoder::default();
        decoder.push(&frame[..bytes - 1]);
        assert_eq!(decoder.next_hello(), Ok(None));
        decoder.push(&frame[bytes - 1..]);
        assert_eq!(decoder.next_hello(), Ok(Some(hello)));

        let mut body = frame[FRAME_HEADER_BYTES..].to_vec();
        body[0] = b'X';
        let magic = u32::from_be_bytes(*b"XABF");
        assert_eq!(decode_hello(&body), Err(WireError::BadMagic { magic }.into()));
        let mut body = frame[FRAME_HEADER_BYTES..].to_vec();
        body[5] = 9;
        assert_eq!(decode_hello(&body), Err(WireError::BadVersion { version: 9 }.into()));
        let mut body = frame[FRAME_HEADER_BYTES..].to_vec();
        body[14] = 2;
        let error = WireError::UnknownValue { field: "port kind", value: 2 };
        assert_eq!(decode_hello(&body), Err(error.into()));

        // A stranger's first frame may not be larger than a hello.
        let mut decoder = FrameDecoder::default();
        decoder.push(&raw_frame(&[0; HELLO_BODY_BYTES + 1]));
        let error = WireError::FrameTooLarge {
            body_bytes: HELLO_BODY_BYTES + 1,
            body_bytes_max: HELLO_BODY_BYTES,
        };
        assert_eq!(decoder.next_hello(), Err(error.into()));
    }

    #[test]
    fn unknown_tag() {
        assert_eq!(wire_error(decode_one(&raw_frame(&[0]))), WireError::UnknownTag { tag: 0 });
        assert_eq!(wire_error(decode_one(&raw_frame(&[17]))), WireError::UnknownTag { tag: 17 });
        let error = WireError::UnknownValue { field: "sync mode", value: 3 };
        assert_eq!(wire_error(decode_one(&raw_frame(&[5, 3, 0, 0, 0, 0]))), error);
        let mut vote = vec![1];
        vote.extend_from_slice(&[0; 28]);
        vote.push(3);
        let error = WireError::UnknownValue { field: "vote state", value: 3 };
        assert_eq!(wire_error(decode_one(&raw_frame(&vote))), error);
    }

    #[test]
    fn truncated_body() {
        let mut frame = Vec::new();
        encode(&Message::Commit { zxid: 9 }, &mut frame).unwrap();
        let body = &frame[FRAME_HEADER_BYTES..];
        let error = WireError::Truncated { needed_bytes: 8, remaining_bytes: 7 };
        assert_eq!(wire_error(decode_one(&raw_frame(&body[..body.len() - 1]))), error);
        assert_eq!(
            wire_error(decode_one(&raw_frame(&[]))),
            WireError::Truncated { needed_bytes: 1, remaining_bytes: 0 }
        );
        // An entry count far above what the body holds fails without a huge allocation.
        let lying = [9, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            wire_error(decode_one(&raw_frame(&lying))),
            WireError::Truncated { needed_bytes: 8, remaining_bytes: 0 }
        ));
        // A payload length beyond the body.
        let lying = [13, 0, 0, 1, 0, 1, 2];
        assert!(matches!(
            wire_error(decode_one(&raw_frame(&lying))),
            WireError::Truncated { needed_bytes: 256, remaining_bytes: 2 }
        ));
    }

    #[test]
    fn trailing_bytes_inside_a_frame() {
        let mut frame = Vec::new();
        encode(&Message::LeaderInfo { epoch: 3 }, &mut frame).unwrap();
        let mut body = frame[FRAME_HEADER_BYTES..].to_vec();
        body.extend_from_slice(&[0, 0]);
        let error = WireError::TrailingBytes { bytes: 2 };
        assert_eq!(wire_error(decode_one(&raw_frame(&body))), error);
    }

    #[test]
    fn bad_crc() {
        let mut frame = Vec::new();
        encode(&Message::Ping { committed: 1 }, &mut frame).unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert!(matches!(wire_error(decode_one(&frame)), WireError::BadCrc { .. }));
        // The CRC covers the length: a frame whose length was altered (to a still complete
        // shorter frame) is caught.
        let mut frame = Vec::new();
        encode(&Message::Ping { committed: 1 }, &mut frame).unwrap();
        frame[3] -= 1;
        assert!(matches!(wire_error(decode_one(&frame)), WireError::BadCrc { .. }));
    }

    #[test]
    fn oversized_frames_are_refused_at_the_header() {
        let body_bytes_max = PEER_FRAME_BODY_BYTES_MAX;
        let mut header = ((body_bytes_max + 1) as u32).to_be_bytes().to_vec();
        header.extend_from_slice(&[0; 4]);
        let error = WireError::FrameTooLarge { body_bytes: body_bytes_max + 1, body_bytes_max };
        assert_eq!(wire_error(decode_one(&header)), error);
        // Garbage (an HTTP request) reads as an absurd length.
        assert!(matches!(
            wire_error(decode_one(b"GET / HTTP/1.1\r\n\r\n")),
            WireError::FrameTooLarge { .. }
        ));
        // A smaller configured bound.
        let mut decoder = FrameDecoder::new(16);
        let mut frame = Vec::new();
        encode(&Message::Request { payload: vec![0; 12] }, &mut frame).unwrap();
        decoder.push(&frame[..FRAME_HEADER_BYTES]);
        let error = WireError::FrameTooLarge { body_bytes: 17, body_bytes_max: 16 };
        assert_eq!(decoder.next_message(), Err(error.into()));
    }

    #[test]
    fn an_oversized_message_is_not_encoded() {
        let payload = vec![0; PEER_FRAME_BODY_BYTES_MAX];
        let mut out = vec![1, 2, 3];
        let error = encode(&Message::Request { payload }, &mut out).unwrap_err();
        let body_bytes = PEER_FRAME_BODY_BYTES_MAX + 5;
        let body_bytes_max = PEER_FRAME_BODY_BYTES_MAX;
        assert_eq!(error, WireError::FrameTooLarge { body_bytes, body_bytes_max }.into());
        assert_eq!(out, [1, 2, 3]);
    }
}
