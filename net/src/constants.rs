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
