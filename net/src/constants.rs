//! Named bounds and fixed values of zabflow-net's wire protocols.
//!
//! Every limit a decoder enforces lives here, so that a reader of the codec can see at a glance
//! how much memory a hostile peer can make us spend. Values that ZooKeeper fixes (reserved xids,
//! the default `jute.maxbuffer`) keep ZooKeeper's numbers, because clients rely on them.

/// Bytes of the big-endian length that prefixes every jute frame.
pub const FRAME_LENGTH_BYTES: usize = 4;

/// ZooKeeper's default `jute.maxbuffer` (0xfffff): the largest frame body, in bytes, that a
/// server accepts. A frame whose declared length is above the configured limit is rejected
/// before any of it is buffered.
pub const PACKET_BYTES_MAX_DEFAULT: usize = 0xfffff;

/// The largest value any frame limit may be configured to: a jute length is an `int`.
pub const PACKET_BYTES_MAX_LIMIT: usize = i32::MAX as usize;

/// The xid of a watch notification (`WatcherEvent`) sent by the server.
pub const XID_NOTIFICATION: i32 = -1;
/// The xid of a ping and of its reply.
pub const XID_PING: i32 = -2;
/// The xid of an `auth` request and of its reply.
pub const XID_AUTH: i32 = -4;
/// The xid of a `setWatches`/`setWatches2` request sent when a client reconnects.
pub const XID_SET_WATCHES: i32 = -8;

/// Smallest encoding of a jute `ustring` or `buffer`: its 4-byte length.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Bytes of a `MultiHeader` (`int type; boolean done; int err`).
pub const MULTI_HEADER_BYTES: usize = 9;

/// Bytes of a four-letter word, the plain-text admin commands on the client port.
pub const FOUR_LETTER_WORD_BYTES: usize = 4;

const _: () = assert!(PACKET_BYTES_MAX_DEFAULT <= PACKET_BYTES_MAX_LIMIT);
const _: () = assert!(FOUR_LETTER_WORD_BYTES == FRAME_LENGTH_BYTES);

/// Bytes of a session password, as ZooKeeper issues it; a new session sends 16 zero bytes.
pub const SESSION_PASSWORD_BYTES: usize = 16;

/// The session timeout a client asks for unless configured otherwise, in milliseconds.
pub const CLIENT_SESSION_TIMEOUT_MS_DEFAULT: u32 = 30_000;

/// Requests a client queues before its I/O thread takes them: a full queue blocks `submit`
/// (or fails `try_submit`), so a fast producer cannot grow memory without limit.
pub const CLIENT_REQUEST_QUEUE_CAPACITY_DEFAULT: usize = 1024;

/// Requests one session keeps in flight (sent, not yet answered) at most; beyond it the I/O
/// thread leaves requests in the queue until replies arrive.
pub const CLIENT_IN_FLIGHT_MAX_DEFAULT: usize = 4096;

/// Watch and session-state events buffered for the application. A full buffer stops the I/O
/// thread (and so reading from the server) until the application drains it.
pub const CLIENT_EVENT_QUEUE_CAPACITY_DEFAULT: usize = 4096;

/// Unsent request bytes above which the I/O thread stops encoding more requests until the
/// socket drains; one request may overshoot it by up to its own frame.
pub const CLIENT_WRITE_BUFFER_BYTES_HIGH: usize = 256 * 1024;

/// Largest `setWatches2` frame body a reconnecting client sends; more watches are split over
/// several frames (ZooKeeper's own client splits at 128 KiB too).
pub const CLIENT_SET_WATCHES_BYTES_MAX: usize = 128 * 1024;

/// Shortest connect-and-handshake attempt to one server, in milliseconds; an attempt
/// otherwise gets the session timeout divided by the number of servers, as ZooKeeper's.
pub const CLIENT_CONNECT_ATTEMPT_MS_MIN: u64 = 500;

/// Longest pause between two rounds over every server while reconnecting, in milliseconds.
pub const CLIENT_RECONNECT_BACKOFF_MS_MAX: u64 = 1000;

/// Most servers a client's connect string may list.
pub const CLIENT_SERVERS_MAX: usize = 64;

const _: () = assert!(CLIENT_SET_WATCHES_BYTES_MAX < PACKET_BYTES_MAX_DEFAULT);
const _: () = assert!(CLIENT_IN_FLIGHT_MAX_DEFAULT <= i32::MAX as usize);
const _: () = assert!(CLIENT_REQUEST_QUEUE_CAPACITY_DEFAULT <= CLIENT_IN_FLIGHT_MAX_DEFAULT);

/// How long a four-letter-word exchange may take, to connect and again to read the answer.
pub const FOUR_LETTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
