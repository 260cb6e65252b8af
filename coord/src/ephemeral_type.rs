//! `EphemeralType`: what a znode's stored `ephemeralOwner` says it is.
//!
//! ZooKeeper packs four kinds of node into one `long`, and the txn log and snapshots store
//! that `long`, so zabflow keeps the same encoding (`EphemeralType.java`):
//!
//! ```text
//! ephemeralOwner = 0                               ; persistent ("void")
//!                | i64::MIN                        ; container
//!                | 0xff << 56 | ttl_ms (1..=2^40-1) ; TTL node
//!                | session id (anything else)      ; ephemeral of that session
//! ```
//!
//! Clients see 0 as the `ephemeralOwner` of a container or TTL node
//! ([`EphemeralType::client_owner`]): only real ephemerals show their session.

use crate::constants::{CONTAINER_EPHEMERAL_OWNER, EPHEMERAL_EXTENDED_MASK, TTL_MS_MAX};

/// The kind of a znode, decoded from its stored `ephemeralOwner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EphemeralType {
    /// A persistent node (owner 0).
    Void,
    /// An ephemeral node of this session.
    Normal(i64),
    /// A container node, deleted by the reaper once it had children and has none.
    Container,
    /// A TTL node with this time to live in milliseconds.
    Ttl(i64),
}

/// A TTL outside `1..=TTL_MS_MAX` (ZooKeeper: `IllegalArgumentException`, BadArguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTtl;

impl EphemeralType {
    /// Decodes a stored `ephemeralOwner`.
    #[must_use]
    pub fn from_owner(owner: i64) -> Self {
        if owner == CONTAINER_EPHEMERAL_OWNER {
            EphemeralType::Container
        } else if owner & EPHEMERAL_EXTENDED_MASK == EPHEMERAL_EXTENDED_MASK {
            EphemeralType::Ttl(owner & TTL_MS_MAX)
        } else if owner == 0 {
            EphemeralType::Void
        } else {
            EphemeralType::Normal(owner)
        }
    }

    /// The stored `ephemeralOwner`.
    #[must_use]
    pub fn to_owner(self) -> i64 {
        match self {
            EphemeralType::Void => 0,
            EphemeralType::Normal(session_id) => session_id,
            EphemeralType::Container => CONTAINER_EPHEMERAL_OWNER,
            EphemeralType::Ttl(ttl_ms) => EPHEMERAL_EXTENDED_MASK | ttl_ms,
        }
    }

    /// The `ephemeralOwner` a client sees in a `Stat`: the session only for real ephemerals.
    #[must_use]
    pub fn client_owner(self) -> i64 {
        match self {
            EphemeralType::Normal(session_id) => session_id,
            _ => 0,
        }
    }

    /// A TTL node's kind, checking the TTL as `EphemeralType.TTL.toEphemeralOwner` does.
    ///
    /// # Errors
    /// [`InvalidTtl`] unless `1 <= ttl_ms <= TTL_MS_MAX`.
    pub fn ttl(ttl_ms: i64) -> Result<Self, InvalidTtl> {
        if (1..=TTL_MS_MAX).contains(&ttl_ms) {
            Ok(EphemeralType::Ttl(ttl_ms))
        } else {
            Err(InvalidTtl)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip() {
        let kinds = [
            EphemeralType::Void,
            EphemeralType::Normal(0x0100_0172_1234_0000),
            EphemeralType::Container,
            EphemeralType::Ttl(1),
            EphemeralType::Ttl(TTL_MS_MAX),
        ];
        for kind in kinds {
            assert_eq!(EphemeralType::from_owner(kind.to_owner()), kind);
        }
        assert_eq!(EphemeralType::Container.client_owner(), 0);
        assert_eq!(EphemeralType::Ttl(5).client_owner(), 0);
        assert_eq!(EphemeralType::Normal(7).client_owner(), 7);
    }

    #[test]
    fn ttl_range_is_zookeepers() {
        assert_eq!(EphemeralType::ttl(0), Err(InvalidTtl));
        assert_eq!(EphemeralType::ttl(-1), Err(InvalidTtl));
        assert_eq!(EphemeralType::ttl(TTL_MS_MAX + 1), Err(InvalidTtl));
        assert_eq!(EphemeralType::ttl(TTL_MS_MAX), Ok(EphemeralType::Ttl(TTL_MS_MAX)));
    }
}
