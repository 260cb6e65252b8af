//! ACLs: the schemes, the permission check, and `addauth`, as ZooKeeper 3.8's
//! `ZooKeeperServer.checkACL`, `PrepRequestProcessor.fixupACL` and its authentication
//! providers.
//!
//! ```text
//! ACL       = perms (ZooDefs.Perms bits) Id
//! Id        = "world":"anyone"                      ; everyone
//!           | "digest":user ":" base64(sha1(user ":" password))
//!           | "ip":address ["/" prefix-bits]        ; IPv4 or IPv6, CIDR optional
//!           | "auth":""                             ; at create/setACL time only: becomes
//!                                                   ; the session's digest ids
//! session   = list of Id: "ip":its address (added by the driver at connect), one
//!             "digest" id per `addauth digest user:password`, and "super":"" when that
//!             digest equals the configured superDigest
//! ```
//!
//! A session holding a `super` id passes every check. An empty ACL list allows everything
//! (ZooKeeper only ever stores one for nodes restored from old snapshots). Checks are pure
//! functions of the node's ACL and the session's ids; the driver owns the ids.
//!
//! Nodes do not own their ACL: the tree keeps each distinct list once in an [`AclCache`]
//! (ZooKeeper's `ReferenceCountedACLCache`) and each node holds its [`AclId`].

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use zabflow_net::jute::{ErrorCode, Id, ACL};

/// The scheme that matches everyone (with id `anyone`).
pub const SCHEME_WORLD: &str = "world";
/// The id of the world scheme.
pub const WORLD_ANYONE: &str = "anyone";
/// The user:password scheme.
pub const SCHEME_DIGEST: &str = "digest";
/// The client-address scheme.
pub const SCHEME_IP: &str = "ip";
/// The placeholder scheme that `fixup` expands into the session's authenticated ids.
pub const SCHEME_AUTH: &str = "auth";
/// The id scheme of a session that authenticated with the super digest.
pub const SCHEME_SUPER: &str = "super";

/// `ZooDefs.Ids.ANYONE_ID_UNSAFE` with the given perms.
#[must_use]
pub fn world(perms: i32) -> ACL {
    ACL { perms, id: Id { scheme: SCHEME_WORLD.to_owned(), id: WORLD_ANYONE.to_owned() } }
}

/// `DigestAuthenticationProvider.generateDigest`: `user:base64(sha1("user:password"))`.
#[must_use]
pub fn generate_digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// `addauth scheme auth`: the ids a session gains, in the order ZooKeeper adds them.
///
/// `digest` takes `user:password` and yields its digest id, preceded by `super:` when the
/// digest equals `super_digest` (the `zookeeper.DigestAuthenticationProvider.superDigest`
/// setting, itself a digest). `ip` yields nothing: the driver adds the connection's address
/// when it connects, which is all that ZooKeeper's ip provider does.
///
/// # Errors
/// [`ErrorCode::AuthFailed`] for any other scheme (ZooKeeper then closes the connection).
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    super_digest: Option<&str>,
) -> Result<Vec<Id>, ErrorCode> {
    match scheme {
        SCHEME_DIGEST => {
            let digest = generate_digest(&String::from_utf8_lossy(auth));
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(digest.as_str()) {
                ids.push(Id { scheme: SCHEME_SUPER.to_owned(), id: String::new() });
            }
            ids.push(Id { scheme: SCHEME_DIGEST.to_owned(), id: digest });
            Ok(ids)
        }
        SCHEME_IP => Ok(Vec::new()),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// The ids a connection holds before any `addauth`: `ip:<peer address>`, as ZooKeeper's
/// `ServerCnxn` adds for every client, so that `ip` ACLs grant access by host.
#[must_use]
pub fn connection_ids(peer: std::net::SocketAddr) -> Vec<Id> {
    vec![Id { scheme: SCHEME_IP.to_owned(), id: peer.ip().to_string() }]
}

/// Adds `new` ids to a session's ids, skipping ones it already has (`addAuthInfo`), and keeps
/// them in the order ZooKeeper lists them.
///
/// ZooKeeper holds a connection's ids in a `ConcurrentHashMap` key set, so `getAuthInfo()` —
/// and with it the expansion of an `auth` ACL and `whoAmI` — lists them in hash-table order:
/// by bucket (`spread(Id.hashCode()) & (capacity - 1)`), in insertion order within a bucket.
/// (Past 11 ids the table grows; the order of a bucket split by a resize is not modelled.)
pub fn add_auth_ids(session_ids: &mut Vec<Id>, new: Vec<Id>) {
    for id in new {
        if !session_ids.contains(&id) {
            session_ids.push(id);
        }
    }
    let mut capacity = 16;
    while session_ids.len() >= capacity * 3 / 4 {
        capacity *= 2;
    }
    session_ids.sort_by_key(|id| java_id_hash(id) as usize & (capacity - 1));
}

/// The user name `whoAmI` shows for an id (`AuthenticationProvider.getUserName`): a digest
/// id's user, without its hash; any other id as it is.
#[must_use]
pub fn user_name(id: &Id) -> &str {
    match id.scheme.as_str() {
        SCHEME_DIGEST => id.id.split(':').next().unwrap_or_default(),
        _ => &id.id,
    }
}

/// `ConcurrentHashMap.spread(Id.hashCode())`: jute's record hash of the two strings.
fn java_id_hash(id: &Id) -> u32 {
    let string_hash = |text: &str| {
        text.encode_utf16().fold(0u32, |hash, unit| hash.wrapping_mul(31).wrapping_add(unit.into()))
    };
    let hash = 17u32.wrapping_mul(37).wrapping_add(string_hash(&id.scheme));
    let hash = hash.wrapping_mul(37).wrapping_add(string_hash(&id.id));
    (hash ^ (hash >> 16)) & 0x7fff_ffff
}

/// Whether `session_ids` grant `perm` on a node with `acl` (`ZooKeeperServer.checkACL`).
///
/// # Errors
/// [`ErrorCode::NoAuth`] when no entry with a bit of `perm` matches an id of the session.
pub fn check(acl: &[ACL], perm: i32, session_ids: &[Id]) -> Result<(), ErrorCode> {
    if acl.is_empty() || session_ids.iter().any(|id| id.scheme == SCHEME_SUPER) {
        return Ok(());
    }
    let granted = acl.iter().filter(|entry| entry.perms & perm != 0).any(|entry| {
        is_world(&entry.id)
            || session_ids.iter().any(|session_id| {
                session_id.scheme == entry.id.scheme && matches(session_id, &entry.id.id)
            })
    });
    if granted {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn is_world(id: &Id) -> bool {
    id.scheme == SCHEME_WORLD && id.id == WORLD_ANYONE
}

/// A provider's `matches(authenticated id, ACL expression)`.
fn matches(session_id: &Id, expression: &str) -> bool {
    match session_id.scheme.as_str() {
        SCHEME_DIGEST => session_id.id == expression,
        SCHEME_IP => ip_matches(&session_id.id, expression),
        _ => false,
    }
}

/// `PrepRequestProcessor.fixupACL`: drops duplicates, checks every entry's scheme and id,
/// and expands `auth` entries into the session's digest ids.
///
/// # Errors
/// [`ErrorCode::InvalidAcl`] for an empty list, an unknown scheme, a malformed id, or an
/// `auth` entry when the session has no digest identity.
pub fn fixup(acl: &[ACL], session_ids: &[Id]) -> Result<Vec<ACL>, ErrorCode> {
    let mut unique: Vec<&ACL> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        if is_world(&entry.id) {
            fixed.push(entry.clone());
        } else if entry.id.scheme == SCHEME_AUTH {
            let authenticated = session_ids
                .iter()
                .filter(|id| id.scheme == SCHEME_DIGEST)
                .map(|id| ACL { perms: entry.perms, id: id.clone() });
            let before = fixed.len();
            fixed.extend(authenticated);
            if fixed.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid(&entry.id) {
            fixed.push(entry.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// A provider's `isValid(id)`; schemes without a provider (`world` other than `anyone`,
/// `super`, anything unknown) are invalid.
fn is_valid(id: &Id) -> bool {
    match id.scheme.as_str() {
        // Java's `id.split(":").length == 2`: trailing empty parts are dropped.
        SCHEME_DIGEST => java_split_count(&id.id, ':') == 2,
        SCHEME_IP => parse_ip_expression(&id.id).is_some(),
        _ => false,
    }
}

/// The number of parts Java's `String.split` returns (trailing empty parts removed).
fn java_split_count(text: &str, separator: char) -> usize {
    let parts: Vec<&str> = text.split(separator).collect();
    let kept = parts.iter().rposition(|part| !part.is_empty()).map_or(0, |last| last + 1);
    if text.is_empty() {
        1
    } else {
        kept
    }
}

/// Parses `address[/bits]` into the address bytes and the prefix length.
fn parse_ip_expression(expression: &str) -> Option<(Vec<u8>, usize)> {
    let (address, bits) = match expression.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (expression, None),
    };
    let bytes = address_bytes(address)?;
    let bits_max = bytes.len() * 8;
    let bits = match bits {
        None => bits_max,
        Some(bits) => bits.parse::<usize>().ok().filter(|&bits| bits <= bits_max)?,
    };
    Some((bytes, bits))
}

/// IPv4 as ZooKeeper parses it (four decimal parts, each 0..=255), or IPv6.
fn address_bytes(address: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = address.split('.').collect();
    if parts.len() == 4 {
        let octet = |part: &&str| {
            let digits = !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
            digits.then(|| part.parse::<u8>().ok()).flatten()
        };
        return parts.iter().map(octet).collect();
    }
    address.parse::<std::net::Ipv6Addr>().ok().map(|v6| v6.octets().to_vec())
}

/// `IPAuthenticationProvider.matches`: the first `bits` bits of both addresses agree.
fn ip_matches(client_address: &str, expression: &str) -> bool {
    let (Some((network, bits)), Some(client)) =
        (parse_ip_expression(expression), address_bytes(client_address))
    else {
        return false;
    };
    if client.len() != network.len() {
        return false;
    }
    (0..bits).all(|bit| {
        let mask = 0x80u8 >> (bit % 8);
        client[bit / 8] & mask == network[bit / 8] & mask
    })
}

/// The ACL as a reader with READ but not ADMIN sees it: digest ids become `user:x`.
#[must_use]
pub fn mask_digests(acl: &[ACL]) -> Vec<ACL> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme != SCHEME_DIGEST {
                return entry.clone();
            }
            let user = entry.id.id.split(':').next().unwrap_or_default();
            let id = Id { scheme: SCHEME_DIGEST.to_owned(), id: format!("{user}:x") };
            ACL { perms: entry.perms, id }
        })
        .collect()
}

/// A shared ACL list's id in an [`AclCache`] (ZooKeeper's `Long` ACL key; ids start at 1).
pub type AclId = std::num::NonZeroU32;

/// `ReferenceCountedACLCache`: each distinct ACL list is stored once, under an id that
/// nodes keep instead of their own copy, with a count of the nodes using it.
///
/// Lists are equal when their entries are, in order (as Java's `List.equals`), so a node
/// reads back exactly the list it was given. A list is freed when its last node lets go
/// (ZooKeeper waits for the next snapshot's `purgeUnused`), and its id is reused by the
/// next new list. Ids and counts live only in memory: snapshots store each node's full
/// list, and loading one interns them again.
#[derive(Debug, Clone, Default)]
pub struct AclCache {
    /// By id - 1; a free slot has no references and an empty list.
    entries: Vec<AclEntry>,
    /// List hash → the ids of the lists with that hash (almost always one).
    ids_by_hash: HashMap<u64, Vec<AclId>>,
    /// Ids of free slots, reused last freed first.
    free_ids: Vec<AclId>,
}

#[derive(Debug, Clone, Default)]
struct AclEntry {
    list: Box<[ACL]>,
    references: u32,
}

impl AclCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        AclCache::default()
    }

    /// `convertAcls` and `addUsage`: the id of `list`, stored if new, with one more
    /// reference.
    ///
    /// # Panics
    /// If `u32::MAX - 1` lists are stored already, or one list has `u32::MAX` references.
    pub fn acquire(&mut self, list: &[ACL]) -> AclId {
        let hash = list_hash(list);
        let found = self
            .ids_by_hash
            .get(&hash)
            .and_then(|ids| ids.iter().copied().find(|&id| *self.entries[slot(id)].list == *list));
        let id = found.unwrap_or_else(|| {
            let entry = AclEntry { list: list.into(), references: 0 };
            let id = match self.free_ids.pop() {
                Some(id) => {
                    self.entries[slot(id)] = entry;
                    id
                }
                None => {
                    self.entries.push(entry);
                    let id = u32::try_from(self.entries.len()).expect("ACL ids fit a u32");
                    AclId::new(id).expect("ids start at 1")
                }
            };
            self.ids_by_hash.entry(hash).or_default().push(id);
            id
        });
        let entry = &mut self.entries[slot(id)];
        entry.references = entry.references.checked_add(1).expect("references fit a u32");
        id
    }

    /// `removeUsage`: one reference less; the list is freed with its last reference.
    ///
    /// # Panics
    /// If `id` holds no reference: a node released a list it did not hold.
    pub fn release(&mut self, id: AclId) {
        let entry = &mut self.entries[slot(id)];
        assert!(entry.references > 0, "ACL id {id} released with no references");
        entry.references -= 1;
        if entry.references > 0 {
            return;
        }
        let list = std::mem::take(&mut entry.list);
        let hash = list_hash(&list);
        let ids = self.ids_by_hash.get_mut(&hash).expect("a stored list is indexed");
        ids.retain(|&other| other != id);
        if ids.is_empty() {
            self.ids_by_hash.remove(&hash);
        }
        self.free_ids.push(id);
    }

    /// The list stored under `id`.
    ///
    /// # Panics
    /// If `id` holds no reference.
    #[must_use]
    pub fn get(&self, id: AclId) -> &[ACL] {
        let entry = &self.entries[slot(id)];
        assert!(entry.references > 0, "ACL id {id} read with no references");
        &entry.list
    }

    /// How many nodes use the list under `id` (0 for a free or unknown id).
    #[must_use]
    pub fn references(&self, id: AclId) -> u32 {
        self.entries.get(slot(id)).map_or(0, |entry| entry.references)
    }

    /// Number of distinct lists stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len() - self.free_ids.len()
    }

    /// Whether no list is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn slot(id: AclId) -> usize {
    id.get() as usize - 1
}

/// A hash of a list's entries in order (`ACL` itself is not `Hash`).
fn list_hash(list: &[ACL]) -> u64 {
    let mut hasher = DefaultHasher::new();
    list.len().hash(&mut hasher);
    for entry in list {
        entry.perms.hash(&mut hasher);
        entry.id.scheme.hash(&mut hasher);
        entry.id.id.hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zabflow_net::jute::Perms;

    fn id(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }

    fn acl(perms: i32, scheme: &str, expression: &str) -> ACL {
        ACL { perms, id: id(scheme, expression) }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // The digest zkCli's `addauth digest super:test` produces (kazoo's test harness).
        assert_eq!(generate_digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        let ids = authenticate("digest", b"super:test", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert_eq!(ids.map(|ids| ids.len()), Ok(2));
        assert_eq!(authenticate("kerberos", b"x", None), Err(ErrorCode::AuthFailed));
    }

    #[test]
    fn a_connection_holds_its_ip_id() {
        // ZooKeeper's ServerCnxn adds `ip:<client address>` to every connection's authInfo:
        // an `ip:127.0.0.1` ACL lets a loopback client in without any addauth.
        let ids = connection_ids("127.0.0.1:2181".parse().expect("address"));
        assert_eq!(ids, vec![id("ip", "127.0.0.1")]);
        let node = vec![acl(Perms::ALL, "ip", "127.0.0.1")];
        assert_eq!(check(&node, Perms::WRITE, &ids), Ok(()));
        let other = vec![acl(Perms::ALL, "ip", "10.0.0.0/8")];
        assert_eq!(check(&other, Perms::WRITE, &ids), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn session_ids_keep_zookeepers_hash_order() {
        // ZooKeeper keeps a connection's ids in a ConcurrentHashMap key set: an `auth` ACL
        // expands in bucket order, not in the order of the addauth calls (observed on 3.8:
        // addauth alice:wrong, then alice:secret, then setACL auth → secret's id first).
        let mut ids = connection_ids("127.0.0.1:2181".parse().expect("address"));
        add_auth_ids(&mut ids, authenticate("digest", b"alice:wrong", None).expect("digest"));
        add_auth_ids(&mut ids, authenticate("digest", b"alice:secret", None).expect("digest"));
        let secret = id("digest", &generate_digest("alice:secret"));
        let wrong = id("digest", &generate_digest("alice:wrong"));
        assert_eq!(ids, vec![secret.clone(), id("ip", "127.0.0.1"), wrong.clone()]);
        let expanded = fixup(&[acl(31, "auth", "")], &ids).expect("auth expands");
        assert_eq!(expanded, vec![ACL { perms: 31, id: secret }, ACL { perms: 31, id: wrong }]);
    }

    #[test]
    fn who_am_i_names_the_digest_user_only() {
        // DigestAuthenticationProvider.getUserName keeps the part before the first ':', so
        // whoAmI never shows the password hash.
        let alice = authenticate("digest", b"alice:secret", None).expect("digest");
        assert_eq!(user_name(&alice[0]), "alice");
        assert_eq!(user_name(&id("ip", "127.0.0.1")), "127.0.0.1");
    }

    #[test]
    fn check_rules() {
        let alice = authenticate("digest", b"alice:secret", None).expect("digest");
        let node = vec![acl(Perms::READ, "digest", &alice[0].id), world(Perms::CREATE)];
        assert_eq!(check(&node, Perms::READ, &alice), Ok(()));
        assert_eq!(check(&node, Perms::READ, &[]), Err(ErrorCode::NoAuth));
        assert_eq!(check(&node, Perms::CREATE, &[]), Ok(()));
        assert_eq!(check(&node, Perms::WRITE, &alice), Err(ErrorCode::NoAuth));
        assert_eq!(check(&node, Perms::WRITE, &[id("super", "")]), Ok(()));
        assert_eq!(check(&[], Perms::ADMIN, &[]), Ok(()));
        let subnet = vec![acl(Perms::ALL, "ip", "10.1.0.0/16")];
        assert_eq!(check(&subnet, Perms::READ, &[id("ip", "10.1.200.3")]), Ok(()));
        assert_eq!(check(&subnet, Perms::READ, &[id("ip", "10.2.0.3")]), Err(ErrorCode::NoAuth));
        let host = vec![acl(Perms::ALL, "ip", "127.0.0.1")];
        assert_eq!(check(&host, Perms::READ, &[id("ip", "127.0.0.1")]), Ok(()));
        let v6 = vec![acl(Perms::ALL, "ip", "fe80::/64")];
        assert_eq!(check(&v6, Perms::READ, &[id("ip", "fe80::1")]), Ok(()));
    }

    #[test]
    fn fixup_rules() {
        let invalid = Err(ErrorCode::InvalidAcl);
        assert_eq!(fixup(&[], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "world", "everyone")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "kerberos", "x")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "super", "")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "digest", "nocolon")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "digest", "user:")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "digest", "a:b:c")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "ip", "10.0.0.1/33")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "ip", "10.0.0")], &[]), invalid);
        assert_eq!(fixup(&[acl(31, "ip", "300.0.0.1")], &[]), invalid);
        // `auth` needs a digest identity; the connection's ip id does not count.
        assert_eq!(fixup(&[acl(31, "auth", "")], &[id("ip", "127.0.0.1")]), invalid);
        let alice = authenticate("digest", b"alice:secret", None).expect("digest");
        let expanded = fixup(&[acl(5, "auth", ""), acl(5, "auth", "")], &alice);
        assert_eq!(expanded, Ok(vec![ACL { perms: 5, id: alice[0].clone() }]));
        let open = vec![world(31), world(31)];
        assert_eq!(fixup(&open, &[]), Ok(vec![world(31)]));
        assert!(fixup(&[acl(1, "digest", "u:hash")], &[]).is_ok());
        assert!(fixup(&[acl(1, "ip", "10.0.0.0/8")], &[]).is_ok());
    }

    #[test]
    fn masking_keeps_the_user() {
        let masked = mask_digests(&[acl(1, "digest", "alice:abc="), world(1)]);
        assert_eq!(masked, vec![acl(1, "digest", "alice:x"), world(1)]);
    }

    #[test]
    fn cache_stores_each_list_once_and_frees_it_with_its_last_node() {
        let mut cache = AclCache::new();
        let open = vec![world(31)];
        let alice = vec![acl(31, "digest", "alice:abc="), world(1)];
        let reversed: Vec<ACL> = alice.iter().rev().cloned().collect();
        let first = cache.acquire(&open);
        assert_eq!(cache.acquire(&open.clone()), first, "equal lists share an id");
        let alice_id = cache.acquire(&alice);
        let reversed_id = cache.acquire(&reversed);
        assert_ne!(alice_id, reversed_id, "order matters, as in List.equals");
        assert_eq!((cache.len(), cache.references(first)), (3, 2));
        assert_eq!(cache.get(reversed_id), &reversed[..]);
        cache.release(first);
        assert_eq!(cache.get(first), &open[..], "still held once");
        cache.release(first);
        assert_eq!((cache.len(), cache.references(first)), (2, 0));
        let empty = cache.acquire(&[]);
        assert_eq!(empty, first, "a freed id is reused");
        assert!(cache.get(empty).is_empty());
        assert_eq!(cache.acquire(&open), AclId::new(4).unwrap(), "the freed list is gone");
    }

    #[test]
    #[should_panic(expected = "released with no references")]
    fn cache_refuses_a_release_without_a_reference() {
        let mut cache = AclCache::new();
        let id = cache.acquire(&[world(31)]);
        cache.release(id);
        cache.release(id);
    }
}
