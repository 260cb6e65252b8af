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

const _: () = assert!(SESSION_TIMEOUT_TICKS_MIN < SESSION_TIMEOUT_TICKS_MAX);
const _: () = assert!(TTL_MS_MAX & EPHEMERAL_EXTENDED_MASK == 0);
