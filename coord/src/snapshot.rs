//! `Snapshot`: the znode tree and the sessions at one zxid, in one file, as ZooKeeper's
//! `FileSnap` — written atomically, checked on load, purged by age.
//!
//! ```text
//! file      = "snapshot." zxid:016x                     ; in dataDir/version-2
//! snapshot  = magic:"ZABSNAP1" last_zxid:long log_offset:long
//!             session_count:int session* node_count:int node* crc:int
//! session   = session_id:long timeout_ms:int
//! node      = path:ustring data:buffer(-1 = null) acl:vector<ACL> stat
//! stat      = czxid:long mzxid:long ctime:long mtime:long version:int cversion:int
//!             aversion:int ephemeralOwner:long pzxid:long   ; StatPersisted, stored cversion
//! crc       = crc32c of every byte before it
//! ```
//!
//! All numbers are jute's big-endian. Nodes come parents first (a depth-first walk from
//! `/`), so loading inserts each under a parent already there. Each node carries its whole
//! ACL list (ZooKeeper instead writes its ACL cache once and an id per node); the tree's
//! shared lists ([`crate::acl::AclCache`]) are rebuilt as the nodes load, so their ids never
//! reach the disk. `log_offset` is the txn log offset after the last txn the snapshot
//! holds: replay starts there, and purge may cut the log below the oldest snapshot kept.
//!
//! A snapshot is written to `snapshot.<zxid>.tmp`, fsynced, renamed into place and the
//! directory fsynced, so a crash leaves either no file or a whole one; the CRC catches a
//! file damaged later. Loading tries snapshots newest first and falls back past any that
//! do not verify (with a warning), which is why purge always keeps several.
//!
//! The tree is serialised on the event loop between two applies (so it is consistent at
//! `last_zxid`, not fuzzy) and written by a background thread; ZooKeeper instead walks the
//! live tree from its snapshot thread and relies on idempotent replay.

use std::fs;
use std::path::{Path, PathBuf};

use zabflow_net::jute::{Reader, Record, Writer, ACL};

use crate::data_tree::{DataTree, StatPersisted};
use crate::error::{Error, Result};
use crate::watch_manager::SessionId;

const MAGIC: &[u8; 8] = b"ZABSNAP1";
const PREFIX: &str = "snapshot.";
const CRC_BYTES: usize = 4;

/// A loaded snapshot.
#[derive(Debug)]
pub struct Snapshot {
    pub last_zxid: i64,
    pub log_offset: u64,
    pub sessions: Vec<(SessionId, i32)>,
    pub tree: DataTree,
}

/// Serialises `tree` and `sessions` (sorted for determinism) into a snapshot file's bytes.
#[must_use]
pub fn serialize(tree: &DataTree, sessions: &[(SessionId, i32)], log_offset: u64) -> Vec<u8> {
    let mut writer = Writer::from_vec(MAGIC.to_vec());
    writer.write_long(tree.last_processed_zxid());
    writer.write_long(log_offset as i64);
    writer.write_int(i32::try_from(sessions.len()).expect("sessions fit an int"));
    for &(session_id, timeout_ms) in sessions {
        writer.write_long(session_id);
        writer.write_int(timeout_ms);
    }
    writer.write_int(i32::try_from(tree.node_count()).expect("nodes fit an int"));
    let mut stack = vec!["/".to_owned()];
    while let Some(path) = stack.pop() {
        let node = tree.node(&path).expect("walked nodes exist");
        write_node(&mut writer, &path, node.data(), node.acl(), node.stat_persisted());
        for child in node.children().iter().rev() {
            stack.push(if path == "/" { format!("/{child}") } else { format!("{path}/{child}") });
        }
    }
    let mut bytes = writer.into_vec();
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

fn write_node(
    writer: &mut Writer,
    path: &str,
    data: Option<&[u8]>,
    acl: &[ACL],
    stat: &StatPersisted,
) {
    writer.write_ustring(path);
    writer.write_buffer_opt(data);
    writer.write_vector(acl, |writer, entry| entry.write(writer));
    writer.write_long(stat.czxid);
    writer.write_long(stat.mzxid);
    writer.write_long(stat.ctime);
    writer.write_long(stat.mtime);
    writer.write_int(stat.version);
    writer.write_int(stat.cversion);
    writer.write_int(stat.aversion);
    writer.write_long(stat.ephemeral_owner);
    writer.write_long(stat.pzxid);
}

fn read_stat(reader: &mut Reader<'_>) -> Result<StatPersisted> {
    Ok(StatPersisted {
        czxid: reader.read_long()?,
        mzxid: reader.read_long()?,
        ctime: reader.read_long()?,
        mtime: reader.read_long()?,
        version: reader.read_int()?,
        cversion: reader.read_int()?,
        aversion: reader.read_int()?,
        ephemeral_owner: reader.read_long()?,
        pzxid: reader.read_long()?,
    })
}

/// Parses and verifies a snapshot file's bytes.
///
/// # Errors
/// A message saying what does not verify (magic, CRC, structure).
pub fn deserialize(bytes: &[u8]) -> std::result::Result<Snapshot, String> {
    if bytes.len() < MAGIC.len() + CRC_BYTES || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a zabflow snapshot (bad magic)".to_owned());
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_BYTES);
    let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
    if crc32c::crc32c(body) != stored {
        return Err("CRC mismatch".to_owned());
    }
    parse_body(&body[MAGIC.len()..]).map_err(|error| error.to_string())
}

fn parse_body(body: &[u8]) -> Result<Snapshot> {
    let mut reader = Reader::new(body);
    let last_zxid = reader.read_long()?;
    let log_offset = reader.read_long()? as u64;
    let session_count = reader.read_int()?;
    let mut sessions = Vec::new();
    for _ in 0..session_count.max(0) {
        sessions.push((reader.read_long()?, reader.read_int()?));
    }
    let node_count = reader.read_int()?;
    let mut tree = DataTree::new();
    for _ in 0..node_count.max(0) {
        let path = reader.read_ustring()?;
        let data = reader.read_buffer_opt()?;
        let acl = reader.read_vector(ACL::WIRE_BYTES_MIN, ACL::read)?;
        let stat = read_stat(&mut reader)?;
        let parent_known = match path.rfind('/') {
            Some(0) => true,
            Some(slash) => tree.node(&path[..slash]).is_some(),
            None => false,
        };
        if path != "/" && !parent_known {
            return Err(Error::Snapshot { path: path.clone(), message: "orphan node".into() });
        }
        tree.restore_node(&path, data, acl, stat);
    }
    tree.set_last_processed_zxid(last_zxid);
    Ok(Snapshot { last_zxid, log_offset, sessions, tree })
}

fn file_name(zxid: i64) -> String {
    format!("{PREFIX}{zxid:016x}")
}

/// Snapshot files in `dir`, newest (highest zxid) first.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed.
pub fn list(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Error::io(format!("list {}", dir.display()), &error)),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(hex) = name.strip_prefix(PREFIX) else { continue };
        if let Ok(zxid) = i64::from_str_radix(hex, 16) {
            found.push((zxid, entry.path()));
        }
    }
    found.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    Ok(found)
}

/// The newest snapshot that verifies; each one that does not is reported to `warn`.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed.
pub fn load_newest(dir: &Path, warn: &mut dyn FnMut(String)) -> Result<Option<Snapshot>> {
    for (_, path) in list(dir)? {
        let loaded =
            fs::read(&path).map_err(|error| error.to_string()).and_then(|b| deserialize(&b));
        match loaded {
            Ok(snapshot) => return Ok(Some(snapshot)),
            Err(message) => warn(format!(
                "snapshot {} is invalid ({message}); falling back to an older one",
                path.display()
            )),
        }
    }
    Ok(None)
}

/// Writes a snapshot atomically: tmp file, fsync, rename, directory fsync.
///
/// # Errors
/// [`Error::Io`] for any failed step (the tmp file is then left for the next write).
pub fn write(dir: &Path, zxid: i64, bytes: &[u8]) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), &e))?;
    let target = dir.join(file_name(zxid));
    zabflow_core::durable_file::replace(&target, bytes).map_err(|error| Error::Io {
        context: "snapshot".to_owned(),
        message: error.to_string(),
    })?;
    Ok(target)
}

/// Purge: deletes all but the `retain` newest snapshots; returns the log offset below which
/// the txn log is no longer needed (the oldest kept snapshot's), if any snapshot was
/// deleted.
///
/// # Errors
/// [`Error::Io`] when listing or deleting fails.
pub fn purge(dir: &Path, retain: usize) -> Result<Option<u64>> {
    let snapshots = list(dir)?;
    if snapshots.len() <= retain || retain == 0 {
        return Ok(None);
    }
    for (_, path) in &snapshots[retain..] {
        fs::remove_file(path).map_err(|e| Error::io(format!("remove {}", path.display()), &e))?;
    }
    let oldest_kept = &snapshots[retain - 1].1;
    let bytes = fs::read(oldest_kept).map_err(|e| Error::io("read snapshot", &e))?;
    Ok(deserialize(&bytes).ok().map(|snapshot| snapshot.log_offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{CreateTxn, Txn, TxnHeader};

    fn tree_with_nodes() -> DataTree {
        let mut tree = DataTree::new();
        for (zxid, path) in [(1, "/a"), (2, "/a/b"), (3, "/c")] {
            let txn = Txn::Create(CreateTxn {
                path: path.into(),
                data: Some(vec![zxid as u8]),
                acl: vec![crate::acl::world(31)],
                ephemeral: path == "/c",
                parent_cversion: -1,
            });
            let header = TxnHeader { client_id: 7, cxid: 0, zxid, time_ms: 5, txn_type: 1 };
            tree.apply(&header, &txn);
        }
        tree
    }

    #[test]
    fn round_trips_the_tree_and_sessions() {
        let tree = tree_with_nodes();
        let bytes = serialize(&tree, &[(7, 4000)], 3);
        let snapshot = deserialize(&bytes).unwrap();
        assert_eq!((snapshot.last_zxid, snapshot.log_offset), (3, 3));
        assert_eq!(snapshot.sessions, vec![(7, 4000)]);
        assert_eq!(snapshot.tree.digest(), tree.digest());
        assert_eq!(snapshot.tree.ephemerals(7), vec!["/c".to_owned()]);
    }

    #[test]
    fn loading_shares_acl_lists_again() {
        let mut tree = tree_with_nodes();
        let alice = ACL {
            perms: 31,
            id: zabflow_net::jute::Id { scheme: "digest".into(), id: "alice:x=".into() },
        };
        let set =
            crate::txn::SetACLTxn { path: "/a/b".into(), acl: vec![alice.clone()], version: 1 };
        let header = TxnHeader { client_id: 7, cxid: 0, zxid: 4, time_ms: 5, txn_type: 7 };
        assert_eq!(tree.apply(&header, &Txn::SetAcl(set)).result.err, 0);
        let loaded = deserialize(&serialize(&tree, &[], 4)).unwrap().tree;
        assert_eq!(loaded.digest(), tree.digest());
        assert_eq!(loaded.node("/a/b").unwrap().acl(), &[alice][..]);
        assert_eq!(loaded.acls().len(), 3, "open, read-only, alice's");
        let open = loaded.node("/a").unwrap().node().acl_id();
        assert_eq!(loaded.acls().references(open), 5, "/, /zookeeper, quota, /a, /c");
    }

    #[test]
    fn corrupt_newest_falls_back_and_purge_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let tree = tree_with_nodes();
        for zxid in 1..=4 {
            write(dir.path(), zxid, &serialize(&tree, &[], zxid as u64)).unwrap();
        }
        let newest = dir.path().join(file_name(4));
        let mut bytes = fs::read(&newest).unwrap();
        bytes[20] ^= 1;
        fs::write(&newest, bytes).unwrap();
        let mut warnings = Vec::new();
        let loaded = load_newest(dir.path(), &mut |w| warnings.push(w)).unwrap().unwrap();
        assert_eq!(loaded.log_offset, 3);
        assert_eq!(warnings.len(), 1);
        assert_eq!(purge(dir.path(), 3).unwrap(), Some(2));
        assert_eq!(list(dir.path()).unwrap().len(), 3);
    }
}
