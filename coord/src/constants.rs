//! Named bounds and fixed values of the coordination service.
//!
//! Values that ZooKeeper fixes keep ZooKeeper's numbers, because clients and operators rely
//! on them (`%010d` sequence suffixes, the session password length, the default tick); each
//! says which Java constant it mirrors. Bounds of zabflow's own choosing say why they are
//! what they are.

/// Digits of a sequential node's suffix: ZooKeeper formats the parent's child-creation count
/// as `%010d`.
pub const SEQUENCE_SUFFIX_DIGITS: usize = 10;

/// ZooKeeper's default `tickTime`, in milliseconds.
pub const TICK_TIME_MS_DEFAULT: u32 = 2_000;

/// The negotiated session timeout is at least this many ticks unless `minSessionTimeout`
/// says otherwise (`ZooKeeperServer.getMinSessionTimeout`).
pub const SESSION_TIMEOUT_TICKS_MIN: u32 = 2;

/// The negotiated session timeout is at most this many ticks unless `maxSessionTimeout`
/// says otherwise (`ZooKeeperServer.getMaxSessionTimeout`).
pub const SESSION_TIMEOUT_TICKS_MAX: u32 = 20;

/// Bytes of a session password (`ZooKeeperServer`'s 16-byte `passwd`).
pub const SESSION_PASSWORD_BYTES: usize = 16;

/// ZooKeeper's `superSecret`, mixed into a session id to seed its password.
pub const SESSION_PASSWORD_SECRET: i64 = 0xB341_5C00;

/// Bits a session id keeps below the server id (`SessionTrackerImpl.initializeNextSessionId`
/// puts the server id in the top byte).
pub const SESSION_ID_SERVER_SHIFT: u32 = 56;

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`: the stored `ephemeralOwner` of a container.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;

/// `EphemeralType`'s extended-type mask: a stored `ephemeralOwner` with this top byte set is
/// an extended type (a TTL node), not a session.
pub const EPHEMERAL_EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;

/// `EphemeralType.TTL`'s largest time to live, in milliseconds: the 40 low bits of the owner
/// (about 34.8 years).
pub const TTL_MS_MAX: i64 = 0x0000_00ff_ffff_ffff;

/// ZooKeeper's internal subtree, created with every tree.
pub const ZOOKEEPER_PATH: &str = "/zookeeper";
/// `Quotas.quotaZookeeper`.
pub const QUOTA_PATH: &str = "/zookeeper/quota";
/// `ZooDefs.CONFIG_NODE`: readable by anyone, writable by no one.
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// The most ops one `multi` may hold. A multi's ops are bounded by the request frame anyway
/// (each costs at least a 9-byte header); this bound keeps one txn's prepared changes small
/// enough to apply without pausing other sessions for long.
pub const MULTI_OPS_MAX: usize = 0xfffff / 9;

/// The most prepared-but-unapplied changes the preparer tracks. The driver stops reading
/// requests (back-pressure) before this: each write adds at most a few records per op.
pub const OUTSTANDING_CHANGES_MAX: usize = 1 << 20;

/// ZooKeeper's default `clientPort`.
pub const CLIENT_PORT_DEFAULT: u16 = 2181;

/// ZooKeeper's default `maxClientCnxns` (connections per client IP; 0 is unlimited).
pub const MAX_CLIENT_CNXNS_DEFAULT: u32 = 60;

/// ZooKeeper's default `snapCount`: txns between snapshots.
pub const SNAP_COUNT_DEFAULT: u64 = 100_000;

/// ZooKeeper's smallest `autopurge.snapRetainCount` (lower values are raised to it).
pub const SNAP_RETAIN_COUNT_MIN: u32 = 3;

/// ZooKeeper's default `znode.container.checkIntervalMs`.
pub const CONTAINER_CHECK_INTERVAL_MS_DEFAULT: u64 = 60_000;

/// The most client connections the server holds at once, over all IPs: each costs its
/// buffers, so the total is bounded even with `maxClientCnxns=0`.
pub const CONNECTIONS_MAX: usize = 16_384;

/// Bytes one `read` from a client socket asks for.
pub const CONNECTION_READ_CHUNK_BYTES: usize = 64 << 10;

/// Requests of one connection read but not yet answered. At this many the server stops
/// reading the connection (back-pressure) until replies go out.
pub const CONNECTION_PENDING_REQUESTS_MAX: usize = 1_024;

/// Bytes of replies queued for a client that are not yet written. Above this the server
/// stops reading the connection, so a client that does not read its replies cannot make
/// the server queue more than its in-flight requests' replies beyond it.
pub const CONNECTION_OUTPUT_BYTES_HIGH: usize = 1 << 20;

/// Hard bound on a connection's queued output (replies already owed plus watch events). A
/// client that lets this much pile up is disconnected; its session survives until expiry.
pub const CONNECTION_OUTPUT_BYTES_MAX: usize = 64 << 20;

/// Plaintext a TLS connection's rustls session may hold encrypted and unsent; the rest of
/// the output waits in the connection's own buffer, where the output bounds count it.
pub const TLS_PLAINTEXT_PENDING_BYTES_MAX: usize = 256 << 10;

/// Txns prepared but not yet durable and applied, over all sessions. At this many the
/// server stops reading requests until the sync thread catches up.
pub const TXNS_IN_FLIGHT_MAX: usize = 16_384;

/// Txn batches queued for the sync thread (each batch is the txns of one event-loop pass).
pub const SYNC_QUEUE_BATCHES_MAX: usize = 1_024;

/// Bytes the server's encode scratch buffer (txn records, forwarded requests) starts with:
/// a typical write (a path and a value of a few hundred bytes) encodes without growing it.
pub const ENCODE_SCRATCH_BYTES_INITIAL: usize = 4 << 10;

/// Bytes the encode scratch buffer may keep between writes: one large write (up to
/// `jute.maxbuffer`) grows it, and the next write gives the memory back.
pub const ENCODE_SCRATCH_BYTES_RETAINED_MAX: usize = 64 << 10;

/// Most txns the sync thread writes with one append (one fdatasync).
pub const SYNC_BATCH_TXNS_MAX: usize = 4_096;

/// Most txns the event loop appends itself, at the end of a pass, while no append runs
/// (more go to the sync thread, so the loop goes on preparing the next group meanwhile).
pub const SYNC_INLINE_TXNS_MAX: usize = 256;

/// Longest the event loop sleeps in `poll` before it looks at timers and the stop flag.
pub const POLL_TIMEOUT_MS_MAX: u64 = 50;

/// Snapshot files kept when autopurge is off (the newest is always kept; older ones are
/// the fall-back when it is corrupt).
pub const SNAPSHOTS_KEPT_WITHOUT_PURGE: usize = usize::MAX;

/// Bytes of the txn log's segment files.
pub const TXN_LOG_SEGMENT_BYTES: u64 = 64 << 20;

const _: () = assert!(CONNECTION_OUTPUT_BYTES_HIGH < CONNECTION_OUTPUT_BYTES_MAX);
const _: () = assert!(TLS_PLAINTEXT_PENDING_BYTES_MAX <= CONNECTION_OUTPUT_BYTES_HIGH);
const _: () = assert!(SYNC_BATCH_TXNS_MAX <= TXNS_IN_FLIGHT_MAX);
const _: () = assert!(ENCODE_SCRATCH_BYTES_INITIAL <= ENCODE_SCRATCH_BYTES_RETAINED_MAX);
const _: () = assert!(SESSION_TIMEOUT_TICKS_MIN < SESSION_TIMEOUT_TICKS_MAX);
const _: () = assert!(TTL_MS_MAX & EPHEMERAL_EXTENDED_MASK == 0);

/// Committed txns an ensemble member keeps in memory to bring a lagging follower up to date
/// by DIFF (ZooKeeper keeps 500 in `committedLog` and reads further back from the txn log;
/// zabflow keeps more in memory and sends a SNAP beyond them).
pub const ZAB_HISTORY_MAX: usize = 100_000;

/// The longest an ensemble member's event loop sleeps: Zab's timers (election finalize
/// wait, pings every half tick) need a clock this fine.
pub const ZAB_POLL_MS: i64 = 5;

/// The least time a member stays LOOKING before it starts serving read-only clients, in
/// milliseconds (`QuorumPeer` waits `max(2000, tickTime)` before it starts its
/// `ReadOnlyZooKeeperServer`, so that a short election does not flip it into that mode).
pub const READ_ONLY_GRACE_MS_MIN: u32 = 2_000;
