//! `DataTree`: the znode tree — applies txns, answers reads, fires watches.
//!
//! The tree is ZooKeeper's `DataTree`: a map from absolute path to [`DataNode`], each node
//! holding its data, ACL, persisted stat and child names, plus indexes of ephemerals by
//! session and of container and TTL paths (for the reaper). It owns the [`WatchManager`],
//! so applying a txn returns the reply's [`TxnResult`] *and* the notifications to send.
//!
//! What a node stores and what a client sees differ in two fields, as in ZooKeeper
//! (`DataNode.copyStat`):
//!
//! ```text
//! stored cversion  = number of children ever created under the node (names the next
//!                    sequential child)
//! client cversion  = 2 * stored cversion - numChildren  ; every create and every delete
//! client ephemeralOwner = 0 for containers and TTL nodes (see `EphemeralType`)
//! dataLength       = 0 for null data
//! ```
//!
//! So the root of a fresh tree (one child, `zookeeper`, never "created") shows cversion -1,
//! and `/zookeeper` (children `config`, `quota`) shows -2, as on a fresh ZooKeeper.
//!
//! Children are kept sorted by name. ZooKeeper returns them in `HashSet` order, which no
//! client may rely on; sorted order is deterministic, so two trees built by the same txns
//! answer byte for byte alike. Applying a txn never fails as a whole: a txn the tree cannot
//! apply (only possible when replaying a log over a fuzzy snapshot) yields an error result,
//! as in ZooKeeper. Quotas (`/zookeeper/quota` bookkeeping) are not enforced.
//!
//! Memory per znode is what bounds the tree, so a node stores little (ZooKeeper keeps the
//! first two of these too):
//!
//! ```text
//! paths     path → slot, one Box<str> key per node        ; the only copy of the path
//! nodes     slab of DataNode by slot (u32), free slots reused
//! DataNode  data: Option<Box<[u8]>>, stat, ACL id (u32) into the tree's AclCache,
//!           children: None until the first child, then a boxed set of Box<str> names
//! ```
//!
//! Nodes sharing an ACL list (nearly all: `world:anyone` or one application's list) share
//! one stored copy, counted by reference ([`AclCache`], ZooKeeper's
//! `ReferenceCountedACLCache`). `tree_memory` in `coord/examples` measures the bytes per
//! znode.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zabflow_net::jute::{
    AddWatchMode, Create2Response, CreateResponse, ErrorCode, ErrorResponse, MultiResponse,
    MultiResult, OpCode, Perms, Response, SetACLResponse, SetDataResponse, SetWatches2, Stat,
    WatcherType, Writer, ACL,
};

use crate::acl::{self, AclCache, AclId};
use crate::constants::{CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH};
use crate::ephemeral_type::EphemeralType;
use crate::txn::{Txn, TxnHeader};
use crate::watch_manager::{event, Notification, SessionId, WatchManager};

/// `StatPersisted`: a node's stat as stored (`cversion` counts child creations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl StatPersisted {
    /// `DataTree.createStat`: a new node's stat.
    #[must_use]
    pub fn new(zxid: i64, time_ms: i64, ephemeral_owner: i64) -> Self {
        StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            ephemeral_owner,
            pzxid: zxid,
            ..StatPersisted::default()
        }
    }
}

/// Child names of a node that has none.
static NO_CHILDREN: BTreeSet<Box<str>> = BTreeSet::new();

/// One znode as stored: its ACL is an id into the tree's [`AclCache`]; [`NodeRef`] is the
/// node with its ACL list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataNode {
    data: Option<Box<[u8]>>,
    stat: StatPersisted,
    /// `None` until the first child arrives, and again once the last one goes. Boxed so
    /// that the many childless nodes spend 8 bytes on it, not a set's 24.
    #[allow(clippy::box_collection, reason = "a pointer, not a set, in every leaf node")]
    children: Option<Box<BTreeSet<Box<str>>>>,
    acl: AclId,
}

impl DataNode {
    fn new(data: Option<&[u8]>, acl: AclId, stat: StatPersisted) -> Self {
        DataNode { data: data.map(Box::from), stat, children: None, acl }
    }

    /// The node's data; `None` when created with null data.
    #[must_use]
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }

    /// The id of the node's ACL list in the tree's [`AclCache`].
    #[must_use]
    pub fn acl_id(&self) -> AclId {
        self.acl
    }

    /// The stored stat.
    #[must_use]
    pub fn stat_persisted(&self) -> &StatPersisted {
        &self.stat
    }

    /// Child names, sorted.
    #[must_use]
    pub fn children(&self) -> &BTreeSet<Box<str>> {
        self.children.as_deref().unwrap_or(&NO_CHILDREN)
    }

    fn has_child(&self, name: &str) -> bool {
        self.children.as_ref().is_some_and(|children| children.contains(name))
    }

    fn add_child(&mut self, name: &str) {
        self.children.get_or_insert_with(Box::default).insert(name.into());
    }

    fn remove_child(&mut self, name: &str) {
        if let Some(children) = &mut self.children {
            children.remove(name);
            if children.is_empty() {
                self.children = None;
            }
        }
    }

    fn data_bytes(&self) -> usize {
        self.data.as_ref().map_or(0, |data| data.len())
    }

    /// The kind of node its `ephemeralOwner` encodes.
    #[must_use]
    pub fn ephemeral_type(&self) -> EphemeralType {
        EphemeralType::from_owner(self.stat.ephemeral_owner)
    }

    /// `DataNode.copyStat`: the `Stat` clients see.
    #[must_use]
    pub fn stat(&self) -> Stat {
        let num_children = i32::try_from(self.children().len()).expect("children fit an int");
        let stat = &self.stat;
        Stat {
            czxid: stat.czxid,
            mzxid: stat.mzxid,
            ctime: stat.ctime,
            mtime: stat.mtime,
            version: stat.version,
            cversion: stat.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: stat.aversion,
            ephemeral_owner: self.ephemeral_type().client_owner(),
            data_length: self.data_bytes() as i32,
            num_children,
            pzxid: stat.pzxid,
        }
    }
}

/// A node of a tree together with its ACL list, as [`DataTree::node`] returns it.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'tree> {
    node: &'tree DataNode,
    acl: &'tree [ACL],
}

impl<'tree> NodeRef<'tree> {
    /// The stored node.
    #[must_use]
    pub fn node(&self) -> &'tree DataNode {
        self.node
    }

    /// The node's data; `None` when created with null data.
    #[must_use]
    pub fn data(&self) -> Option<&'tree [u8]> {
        self.node.data()
    }

    /// The node's ACL.
    #[must_use]
    pub fn acl(&self) -> &'tree [ACL] {
        self.acl
    }

    /// The stored stat.
    #[must_use]
    pub fn stat_persisted(&self) -> &'tree StatPersisted {
        self.node.stat_persisted()
    }

    /// Child names, sorted.
    #[must_use]
    pub fn children(&self) -> &'tree BTreeSet<Box<str>> {
        self.node.children()
    }

    /// The kind of node its `ephemeralOwner` encodes.
    #[must_use]
    pub fn ephemeral_type(&self) -> EphemeralType {
        self.node.ephemeral_type()
    }

    /// `DataNode.copyStat`: the `Stat` clients see.
    #[must_use]
    pub fn stat(&self) -> Stat {
        self.node.stat()
    }
}

/// `ProcessTxnResult`: what applying one txn did, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    /// The txn type applied (error for a failed op, even inside a multi).
    pub txn_type: OpCode,
    /// An `ErrorCode` number; for a multi, the first failed op's.
    pub err: i32,
    pub path: String,
    pub stat: Option<Stat>,
    /// A multi's results, one per op.
    pub multi: Vec<TxnResult>,
}

impl TxnResult {
    fn new(header: &TxnHeader, txn_type: OpCode) -> Self {
        TxnResult {
            client_id: header.client_id,
            cxid: header.cxid,
            zxid: header.zxid,
            txn_type,
            err: 0,
            path: String::new(),
            stat: None,
            multi: Vec::new(),
        }
    }

    /// The reply to the request of op `request_op` that this txn came from
    /// (`FinalRequestProcessor`): the `ReplyHeader.err` and the body. A multi answers err 0
    /// and carries its failure in its results.
    #[must_use]
    pub fn response(&self, request_op: OpCode) -> (i32, Response) {
        if request_op == OpCode::Multi {
            let results = self.multi.iter().map(TxnResult::multi_result).collect();
            return (0, Response::Multi(MultiResponse { results }));
        }
        if self.err != 0 {
            return (self.err, Response::Empty);
        }
        let stat = self.stat.clone().unwrap_or_default();
        let path = self.path.clone();
        let body = match request_op {
            OpCode::Create => Response::Create(CreateResponse { path }),
            OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
                Response::Create2(Create2Response { path, stat })
            }
            OpCode::SetData => Response::SetData(SetDataResponse { stat }),
            OpCode::SetAcl => Response::SetAcl(SetACLResponse { stat }),
            _ => Response::Empty,
        };
        (0, body)
    }

    fn multi_result(&self) -> MultiResult {
        let stat = self.stat.clone().unwrap_or_default();
        let path = self.path.clone();
        match self.txn_type {
            OpCode::Create => MultiResult::Create(CreateResponse { path }),
            OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
                MultiResult::Create2(Create2Response { path, stat })
            }
            OpCode::Delete | OpCode::DeleteContainer => MultiResult::Delete,
            OpCode::SetData => MultiResult::SetData(SetDataResponse { stat }),
            OpCode::Check => MultiResult::Check,
            _ => MultiResult::Error(ErrorResponse { err: self.err }),
        }
    }
}

/// What applying a txn produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub result: TxnResult,
    /// Watch events to deliver, in order.
    pub notifications: Vec<Notification>,
}

/// The znode tree of one server.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// Path → slot in `nodes`.
    paths: HashMap<Box<str>, u32>,
    /// The nodes by slot; `None` for a free slot.
    nodes: Vec<Option<DataNode>>,
    /// Free slots of `nodes`, reused last freed first.
    free_slots: Vec<u32>,
    /// The ACL lists the nodes' ids name.
    acls: AclCache,
    ephemerals: HashMap<SessionId, BTreeSet<Box<str>>>,
    containers: BTreeSet<Box<str>>,
    ttls: BTreeSet<Box<str>>,
    watches: WatchManager,
    last_processed_zxid: i64,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

/// The parent key and child name of a path, as ZooKeeper splits at the last `/`.
fn split(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/')?;
    let parent = if slash == 0 { "/" } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` (open) and `/zookeeper/config`
    /// (read-only, aversion -1), all with zero stats and empty data.
    #[must_use]
    pub fn new() -> Self {
        let mut tree = DataTree {
            paths: HashMap::new(),
            nodes: Vec::new(),
            free_slots: Vec::new(),
            acls: AclCache::new(),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            watches: WatchManager::new(),
            last_processed_zxid: 0,
        };
        let open = [acl::world(Perms::ALL)];
        let system = [
            ("/", &open),
            (ZOOKEEPER_PATH, &open),
            (QUOTA_PATH, &open),
            (CONFIG_PATH, &[acl::world(Perms::READ)]),
        ];
        for (path, node_acl) in system {
            let acl_id = tree.acls.acquire(node_acl);
            // ZooKeeper's `addConfigNode` sets the config node's ACL with version -1, so
            // its aversion reads -1 on every server.
            let aversion = if path == CONFIG_PATH { -1 } else { 0 };
            let stat = StatPersisted { aversion, ..StatPersisted::default() };
            tree.insert(path, DataNode::new(Some(&[]), acl_id, stat));
            if let Some((parent, name)) = split(path).filter(|_| path != "/") {
                tree.stored_mut(parent).expect("parent").add_child(name);
            }
        }
        tree
    }

    /// `initConfigInZKDatabase`: an ensemble's `/zookeeper/config` holds its membership,
    /// written outside the txn log as ZooKeeper writes it (mzxid the configuration's
    /// version, version -1, every server with its own mtime).
    pub fn set_config(&mut self, data: &[u8], version_zxid: i64, time_ms: i64) {
        let node = self.stored_mut(CONFIG_PATH).expect("a tree always has its config node");
        node.data = Some(Box::from(data));
        node.stat.mzxid = version_zxid;
        node.stat.mtime = time_ms;
        node.stat.version = -1;
    }

    /// The node at `path` (`""` is the root, as in ZooKeeper's node map).
    #[must_use]
    pub fn node(&self, path: &str) -> Option<NodeRef<'_>> {
        let node = self.stored(if path.is_empty() { "/" } else { path })?;
        Some(NodeRef { node, acl: self.acls.get(node.acl) })
    }

    /// Number of nodes, the root included.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.paths.len()
    }

    /// The shared ACL lists of the nodes.
    #[must_use]
    pub fn acls(&self) -> &AclCache {
        &self.acls
    }

    /// The highest zxid applied.
    #[must_use]
    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    /// The watch tables (addWatch, removeWatches, checkWatches go straight to them).
    pub fn watches_mut(&mut self) -> &mut WatchManager {
        &mut self.watches
    }

    /// The watch tables, read-only.
    #[must_use]
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    /// Restores one node read from a snapshot: parents before children. A node that exists
    /// (the system nodes of a fresh tree) takes the snapshot's data, ACL and stat.
    ///
    /// # Panics
    /// If the node's parent is missing: snapshots list parents first.
    pub fn restore_node(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        acl: Vec<ACL>,
        stat: StatPersisted,
    ) {
        let acl_id = self.acls.acquire(&acl);
        if let Some(node) = self.stored_mut(path) {
            node.data = data.map(Vec::into_boxed_slice);
            let old_acl_id = std::mem::replace(&mut node.acl, acl_id);
            node.stat = stat;
            self.acls.release(old_acl_id);
            return;
        }
        let (parent, name) = split(path).expect("an absolute path");
        self.stored_mut(parent).expect("snapshot lists parents first").add_child(name);
        let node =
            DataNode { data: data.map(Vec::into_boxed_slice), stat, children: None, acl: acl_id };
        self.index_ephemeral_type(path, node.ephemeral_type());
        self.insert(path, node);
    }

    /// Sets the last applied zxid of a tree restored from a snapshot.
    pub fn set_last_processed_zxid(&mut self, zxid: i64) {
        self.last_processed_zxid = zxid;
    }

    /// Sum of path and data bytes (`approximateDataSize`, for `mntr`).
    #[must_use]
    pub fn approximate_data_size(&self) -> u64 {
        self.paths
            .iter()
            .map(|(path, &slot)| path.len() + self.slot(slot).data_bytes())
            .sum::<usize>() as u64
    }

    /// Number of ephemeral nodes.
    #[must_use]
    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Paths of a session's ephemerals, sorted.
    #[must_use]
    pub fn ephemerals(&self, session_id: SessionId) -> Vec<String> {
        self.ephemerals
            .get(&session_id)
            .map(|paths| paths.iter().map(|path| String::from(&**path)).collect())
            .unwrap_or_default()
    }

    /// Sessions that own ephemerals.
    #[must_use]
    pub fn sessions_with_ephemerals(&self) -> Vec<SessionId> {
        let mut sessions: Vec<SessionId> = self.ephemerals.keys().copied().collect();
        sessions.sort_unstable();
        sessions
    }
}

/// The node store: the path index over the slab, and the indexes by ephemeral type.
impl DataTree {
    fn slot(&self, slot: u32) -> &DataNode {
        self.nodes[slot as usize].as_ref().expect("an indexed slot holds a node")
    }

    fn stored(&self, path: &str) -> Option<&DataNode> {
        self.paths.get(path).map(|&slot| self.slot(slot))
    }

    fn stored_mut(&mut self, path: &str) -> Option<&mut DataNode> {
        let slot = *self.paths.get(path)?;
        Some(self.nodes[slot as usize].as_mut().expect("an indexed slot holds a node"))
    }

    /// Stores `node` at `path`, which must be new; its ACL reference is the caller's.
    fn insert(&mut self, path: &str, node: DataNode) {
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                assert!(self.nodes[slot as usize].is_none(), "free slot {slot} in use");
                self.nodes[slot as usize] = Some(node);
                slot
            }
            None => {
                let slot = u32::try_from(self.nodes.len()).expect("node slots fit a u32");
                self.nodes.push(Some(node));
                slot
            }
        };
        let replaced = self.paths.insert(path.into(), slot);
        assert!(replaced.is_none(), "{path} stored twice");
    }

    /// Takes the node at `path` out of the store, releasing its ACL reference.
    fn take(&mut self, path: &str) -> Option<DataNode> {
        let slot = self.paths.remove(path)?;
        let node = self.nodes[slot as usize].take().expect("an indexed slot holds a node");
        self.free_slots.push(slot);
        self.acls.release(node.acl);
        Some(node)
    }

    fn index_ephemeral_type(&mut self, path: &str, kind: EphemeralType) {
        match kind {
            EphemeralType::Container => {
                self.containers.insert(path.into());
            }
            EphemeralType::Ttl(_) => {
                self.ttls.insert(path.into());
            }
            EphemeralType::Normal(session_id) => {
                self.ephemerals.entry(session_id).or_default().insert(path.into());
            }
            EphemeralType::Void => {}
        }
    }
}

/// Whether an error code is the result of a failed apply, not a success.
fn code(error: ErrorCode) -> i32 {
    error.code()
}

impl DataTree {
    /// `DataTree.processTxn`: applies `txn` under `header`, returning the reply's result and
    /// the watch events it fires.
    ///
    /// # Panics
    /// If `header.zxid` goes backwards (below the last applied zxid) for a non-session txn:
    /// txns must be applied in log order.
    pub fn apply(&mut self, header: &TxnHeader, txn: &Txn) -> Applied {
        assert!(
            header.zxid >= self.last_processed_zxid,
            "zxid {:#x} applied after {:#x}",
            header.zxid,
            self.last_processed_zxid
        );
        let mut notifications = Vec::new();
        let result = self.apply_one(header, txn, &mut notifications);
        self.last_processed_zxid = header.zxid;
        Applied { result, notifications }
    }

    fn apply_one(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        out: &mut Vec<Notification>,
    ) -> TxnResult {
        let mut result = TxnResult::new(header, txn.op_code());
        let outcome = match txn {
            Txn::Create(create) | Txn::Create2(create) => {
                let owner = if create.ephemeral { header.client_id } else { 0 };
                let node = NewNode { path: &create.path, data: &create.data, acl: &create.acl };
                let created = self.create_node(node, owner, create.parent_cversion, header, out);
                if created == Err(ErrorCode::NodeExists) && matches!(txn, Txn::Create(_)) {
                    self.adjust_parent_on_replay(&create.path, create.parent_cversion, header);
                }
                created.map(Some)
            }
            Txn::CreateContainer(create) => {
                let node = NewNode { path: &create.path, data: &create.data, acl: &create.acl };
                let owner = EphemeralType::Container.to_owner();
                self.create_node(node, owner, create.parent_cversion, header, out).map(Some)
            }
            Txn::CreateTtl(create) => match EphemeralType::ttl(create.ttl) {
                Ok(kind) => {
                    let node = NewNode { path: &create.path, data: &create.data, acl: &create.acl };
                    let owner = kind.to_owner();
                    self.create_node(node, owner, create.parent_cversion, header, out).map(Some)
                }
                Err(_) => Err(ErrorCode::BadArguments),
            },
            Txn::Delete(delete) | Txn::DeleteContainer(delete) => {
                self.delete_node(&delete.path, header.zxid, out).map(|()| None)
            }
            Txn::SetData(set) => self.set_data(set, header, out).map(Some),
            Txn::SetAcl(set) => self.set_acl(&set.path, &set.acl, set.version).map(Some),
            Txn::CloseSession(close) => {
                self.kill_session(header.client_id, header.zxid, &close.paths2_delete, out);
                Ok(None)
            }
            Txn::Error(error) => {
                result.err = error.err;
                Ok(None)
            }
            Txn::Check(_) | Txn::CreateSession(_) => Ok(None),
            Txn::Multi(txns) => {
                result.multi = self.apply_multi(header, txns, out);
                result.err =
                    result.multi.iter().map(|sub| sub.err).find(|&err| err != 0).unwrap_or(0);
                Ok(None)
            }
        };
        result.path = txn_path(txn).to_owned();
        match outcome {
            Ok(stat) => result.stat = stat,
            Err(error) => result.err = code(error),
        }
        result
    }

    /// A multi: when any op failed, every op that did not becomes an error result —
    /// rolled back (0) before the first failure, RuntimeInconsistency after it.
    fn apply_multi(
        &mut self,
        header: &TxnHeader,
        txns: &[Txn],
        out: &mut Vec<Notification>,
    ) -> Vec<TxnResult> {
        let failed = txns.iter().any(|txn| matches!(txn, Txn::Error(_)));
        let mut post_failed = false;
        let mut results = Vec::with_capacity(txns.len());
        for txn in txns {
            post_failed |= matches!(txn, Txn::Error(_));
            let sub_header = TxnHeader { txn_type: txn.op_code().code(), ..*header };
            let result = if failed && !matches!(txn, Txn::Error(_)) {
                let err = if post_failed { ErrorCode::RuntimeInconsistency } else { ErrorCode::Ok };
                let mut result = TxnResult::new(&sub_header, OpCode::Error);
                result.err = err.code();
                result
            } else {
                self.apply_one(&sub_header, txn, out)
            };
            results.push(result);
        }
        results
    }
}

/// The path a txn acts on, for its result.
fn txn_path(txn: &Txn) -> &str {
    match txn {
        Txn::Create(create) | Txn::Create2(create) => &create.path,
        Txn::CreateContainer(create) => &create.path,
        Txn::CreateTtl(create) => &create.path,
        Txn::Delete(delete) | Txn::DeleteContainer(delete) => &delete.path,
        Txn::SetData(set) => &set.path,
        Txn::SetAcl(set) => &set.path,
        Txn::Check(check) => &check.path,
        Txn::Error(_) | Txn::Multi(_) | Txn::CreateSession(_) | Txn::CloseSession(_) => "",
    }
}

/// The caller-given parts of a new node.
#[derive(Clone, Copy)]
struct NewNode<'a> {
    path: &'a str,
    data: &'a Option<Vec<u8>>,
    acl: &'a [ACL],
}

impl DataTree {
    /// `DataTree.createNode`.
    fn create_node(
        &mut self,
        node: NewNode<'_>,
        owner: i64,
        parent_cversion: i32,
        header: &TxnHeader,
        out: &mut Vec<Notification>,
    ) -> Result<Stat, ErrorCode> {
        let (parent_path, name) = split(node.path).ok_or(ErrorCode::NoNode)?;
        let parent = self.stored_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        if parent.has_child(name) {
            return Err(ErrorCode::NodeExists);
        }
        let cversion =
            if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
        if cversion > parent.stat.cversion {
            parent.stat.cversion = cversion;
            parent.stat.pzxid = header.zxid;
        }
        parent.add_child(name);
        let stat = StatPersisted::new(header.zxid, header.time_ms, owner);
        let acl_id = self.acls.acquire(node.acl);
        let child = DataNode::new(node.data.as_deref(), acl_id, stat);
        let client_stat = child.stat();
        self.insert(node.path, child);
        self.index_ephemeral_type(node.path, EphemeralType::from_owner(owner));
        self.watches.node_created(node.path, parent_path, out);
        Ok(client_stat)
    }

    /// Replaying a create over a fuzzy snapshot that already holds the node: bring the
    /// parent's cversion and pzxid up to the txn's (`setCversionPzxid`).
    fn adjust_parent_on_replay(&mut self, path: &str, parent_cversion: i32, header: &TxnHeader) {
        let Some(parent) = split(path).and_then(|(parent, _)| self.stored_mut(parent)) else {
            return;
        };
        let cversion =
            if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
        if cversion > parent.stat.cversion {
            parent.stat.cversion = cversion;
            parent.stat.pzxid = header.zxid;
        }
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves (never back), not its mzxid.
    fn delete_node(
        &mut self,
        path: &str,
        zxid: i64,
        out: &mut Vec<Notification>,
    ) -> Result<(), ErrorCode> {
        let (parent_path, name) = split(path).ok_or(ErrorCode::NoNode)?;
        let parent = self.stored_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        parent.remove_child(name);
        parent.stat.pzxid = parent.stat.pzxid.max(zxid);
        let node = self.take(path).ok_or(ErrorCode::NoNode)?;
        match node.ephemeral_type() {
            EphemeralType::Container => {
                self.containers.remove(path);
            }
            EphemeralType::Ttl(_) => {
                self.ttls.remove(path);
            }
            EphemeralType::Normal(session_id) => {
                if let Some(paths) = self.ephemerals.get_mut(&session_id) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&session_id);
                    }
                }
            }
            EphemeralType::Void => {}
        }
        self.watches.node_deleted(path, parent_path, out);
        Ok(())
    }

    fn set_data(
        &mut self,
        set: &crate::txn::SetDataTxn,
        header: &TxnHeader,
        out: &mut Vec<Notification>,
    ) -> Result<Stat, ErrorCode> {
        let node = self.stored_mut(&set.path).ok_or(ErrorCode::NoNode)?;
        node.data = set.data.as_deref().map(Box::from);
        node.stat.mtime = header.time_ms;
        node.stat.mzxid = header.zxid;
        node.stat.version = set.version;
        let stat = node.stat();
        self.watches.node_data_changed(&set.path, out);
        Ok(stat)
    }

    fn set_acl(&mut self, path: &str, new_acl: &[ACL], version: i32) -> Result<Stat, ErrorCode> {
        let slot = *self.paths.get(path).ok_or(ErrorCode::NoNode)?;
        let acl_id = self.acls.acquire(new_acl);
        let node = self.nodes[slot as usize].as_mut().expect("an indexed slot holds a node");
        node.stat.aversion = version;
        let old_acl_id = std::mem::replace(&mut node.acl, acl_id);
        let stat = node.stat();
        self.acls.release(old_acl_id);
        Ok(stat)
    }

    /// `DataTree.killSession`: the session's watches go first (no one will read its
    /// notifications), then the ephemerals the txn lists, then any others the tree knows.
    fn kill_session(
        &mut self,
        session_id: SessionId,
        zxid: i64,
        listed: &[String],
        out: &mut Vec<Notification>,
    ) {
        self.watches.remove_session(session_id);
        let mut known = self.ephemerals.remove(&session_id).unwrap_or_default();
        for path in listed {
            known.remove(path.as_str());
            let _ = self.delete_node(path, zxid, out);
        }
        for path in known {
            let _ = self.delete_node(&path, zxid, out);
        }
    }
}

/// Reads, as `FinalRequestProcessor` serves them: NoNode first, then the ACL check, then
/// the watch (so a refused read leaves no watch), except `exists`, which is not
/// ACL-checked and leaves its watch even on a missing node.
impl DataTree {
    fn readable(
        &self,
        path: &str,
        perm: i32,
        ids: &[zabflow_net::jute::Id],
    ) -> Result<NodeRef<'_>, ErrorCode> {
        let node = self.node(path).ok_or(ErrorCode::NoNode)?;
        acl::check(node.acl(), perm, ids)?;
        Ok(node)
    }

    /// getData: the data (`None` for null) and stat; READ needed.
    ///
    /// # Errors
    /// NoNode, NoAuth.
    pub fn get_data(
        &mut self,
        path: &str,
        ids: &[zabflow_net::jute::Id],
        watch: Option<SessionId>,
    ) -> Result<(Option<Vec<u8>>, Stat), ErrorCode> {
        let node = self.readable(path, Perms::READ, ids)?;
        let reply = (node.data().map(<[u8]>::to_vec), node.stat());
        if let Some(session_id) = watch {
            self.watches.add_data_watch(path, session_id);
        }
        Ok(reply)
    }

    /// exists: the stat; no ACL check; the watch is left even when the node is missing.
    ///
    /// # Errors
    /// NoNode.
    pub fn exists(&mut self, path: &str, watch: Option<SessionId>) -> Result<Stat, ErrorCode> {
        if let Some(session_id) = watch {
            self.watches.add_data_watch(path, session_id);
        }
        self.node(path).map(|node| node.stat()).ok_or(ErrorCode::NoNode)
    }

    /// getChildren/getChildren2: child names (sorted) and the node's stat; READ needed.
    ///
    /// # Errors
    /// NoNode, NoAuth.
    pub fn get_children(
        &mut self,
        path: &str,
        ids: &[zabflow_net::jute::Id],
        watch: Option<SessionId>,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let node = self.readable(path, Perms::READ, ids)?;
        let names = node.children().iter().map(|name| String::from(&**name)).collect();
        let reply = (names, node.stat());
        if let Some(session_id) = watch {
            self.watches.add_child_watch(path, session_id);
        }
        Ok(reply)
    }

    /// getACL: READ or ADMIN needed; without ADMIN, digest ids come back as `user:x`.
    ///
    /// # Errors
    /// NoNode, NoAuth.
    pub fn get_acl(
        &self,
        path: &str,
        ids: &[zabflow_net::jute::Id],
    ) -> Result<(Vec<ACL>, Stat), ErrorCode> {
        let node = self.readable(path, Perms::READ | Perms::ADMIN, ids)?;
        let visible = match acl::check(node.acl(), Perms::ADMIN, ids) {
            Ok(()) => node.acl().to_vec(),
            Err(_) => acl::mask_digests(node.acl()),
        };
        Ok((visible, node.stat()))
    }

    /// getEphemerals: the session's ephemerals whose path starts with `prefix` (a plain
    /// string prefix, as ZooKeeper's; empty or `/` means all), sorted.
    #[must_use]
    pub fn get_ephemerals(&self, session_id: SessionId, prefix: &str) -> Vec<String> {
        let prefix = prefix.trim();
        let all = prefix.is_empty() || prefix == "/";
        self.ephemerals(session_id)
            .into_iter()
            .filter(|path| all || path.starts_with(prefix))
            .collect()
    }

    /// getAllChildrenNumber: descendants of `path` (for `/`, every node but the root);
    /// READ needed.
    ///
    /// # Errors
    /// NoNode, NoAuth.
    pub fn get_all_children_number(
        &self,
        path: &str,
        ids: &[zabflow_net::jute::Id],
    ) -> Result<i32, ErrorCode> {
        self.readable(path, Perms::READ, ids)?;
        let count = if path == "/" {
            self.paths.len() - 1
        } else {
            let prefix = format!("{path}/");
            self.paths.keys().filter(|key| key.starts_with(&prefix)).count()
        };
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// setWatches/setWatches2 on reconnect (`DataTree.setWatches`): events the client
    /// missed since `relative_zxid` fire now; the other watches are re-registered.
    pub fn set_watches(
        &mut self,
        session_id: SessionId,
        watches: &SetWatches2,
    ) -> Vec<Notification> {
        use zabflow_net::jute::EventType as E;
        let relative_zxid = watches.relative_zxid;
        let mut out = Vec::new();
        let mut fire = |kind: E, path: &str| {
            out.push(Notification { session_id, event: event(kind, path) });
        };
        for path in &watches.data_watches {
            match self.node(path).map(|node| node.stat_persisted().mzxid) {
                None => fire(E::NodeDeleted, path),
                Some(mzxid) if mzxid > relative_zxid => fire(E::NodeDataChanged, path),
                Some(_) => self.watches.add_data_watch(path, session_id),
            }
        }
        for path in &watches.exist_watches {
            match self.node(path) {
                Some(_) => fire(E::NodeCreated, path),
                None => self.watches.add_data_watch(path, session_id),
            }
        }
        for path in &watches.child_watches {
            match self.node(path).map(|node| node.stat_persisted().pzxid) {
                None => fire(E::NodeDeleted, path),
                Some(pzxid) if pzxid > relative_zxid => fire(E::NodeChildrenChanged, path),
                Some(_) => self.watches.add_child_watch(path, session_id),
            }
        }
        for path in &watches.persistent_watches {
            self.watches.add_watch(path, session_id, AddWatchMode::Persistent);
        }
        for path in &watches.persistent_recursive_watches {
            self.watches.add_watch(path, session_id, AddWatchMode::PersistentRecursive);
        }
        out
    }

    /// removeWatches / checkWatches (`remove` false only checks).
    ///
    /// # Errors
    /// NoWatcher when the session holds no such watch; BadArguments for an unknown type.
    pub fn remove_watches(
        &mut self,
        path: &str,
        session_id: SessionId,
        watcher_type: i32,
        remove: bool,
    ) -> Result<(), ErrorCode> {
        let watcher_type = WatcherType::from_code(watcher_type).ok_or(ErrorCode::BadArguments)?;
        let found = if remove {
            self.watches.remove(path, session_id, watcher_type)
        } else {
            self.watches.contains(path, session_id, watcher_type)
        };
        if found {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// `ContainerManager.getCandidates`: containers that had children and have none (or,
    /// when `never_used_ms_max` is set, never had any for that long since their last
    /// change), and TTL nodes childless and unmodified for more than their TTL. The driver
    /// turns each into a deleteContainer request.
    #[must_use]
    pub fn reaper_candidates(&self, now_ms: i64, never_used_ms_max: Option<i64>) -> Vec<String> {
        let mut candidates = Vec::new();
        for path in &self.containers {
            let Some(node) = self.stored(path).filter(|node| node.children.is_none()) else {
                continue;
            };
            let elapsed_ms = now_ms - node.stat.mtime;
            let never_used_expired = never_used_ms_max.is_some_and(|max| elapsed_ms > max);
            if node.stat.cversion > 0 || never_used_expired {
                candidates.push(String::from(&**path));
            }
        }
        for path in &self.ttls {
            let Some(node) = self.stored(path).filter(|node| node.children.is_none()) else {
                continue;
            };
            if let EphemeralType::Ttl(ttl_ms) = node.ephemeral_type() {
                if now_ms - node.stat.mtime > ttl_ms {
                    candidates.push(String::from(&**path));
                }
            }
        }
        candidates
    }

    /// A digest of the whole tree (paths, data, client stats, ACLs) for comparing two trees
    /// in tests: FNV-1a over the nodes in path order.
    #[must_use]
    pub fn digest(&self) -> u64 {
        let sorted: BTreeMap<&str, u32> =
            self.paths.iter().map(|(path, &slot)| (&**path, slot)).collect();
        let mut writer = Writer::new();
        for (path, slot) in sorted {
            let node = self.slot(slot);
            writer.write_ustring(path);
            writer.write_buffer_opt(node.data());
            zabflow_net::jute::Record::write(&node.stat(), &mut writer);
            writer.write_vector(self.acls.get(node.acl), |writer, entry| {
                zabflow_net::jute::Record::write(entry, writer);
            });
        }
        writer.as_bytes().iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{CloseSessionTxn, CreateTxn, DeleteTxn, SetACLTxn, SetDataTxn};
    use zabflow_net::jute::Id;

    const SESSION: SessionId = 7;

    struct Harness {
        tree: DataTree,
        zxid: i64,
    }

    impl Harness {
        fn new() -> Self {
            Harness { tree: DataTree::new(), zxid: 0 }
        }

        fn apply(&mut self, txn: Txn) -> TxnResult {
            self.zxid += 1;
            let header = TxnHeader {
                client_id: SESSION,
                cxid: 0,
                zxid: self.zxid,
                time_ms: self.zxid,
                txn_type: txn.op_code().code(),
            };
            self.tree.apply(&header, &txn).result
        }

        fn create(&mut self, path: &str, data: &[u8], acl: Vec<ACL>, ephemeral: bool) {
            let txn = Txn::Create(CreateTxn {
                path: path.into(),
                data: Some(data.to_vec()),
                acl,
                ephemeral,
                parent_cversion: -1,
            });
            assert_eq!(self.apply(txn).err, 0, "create {path}");
        }

        fn delete(&mut self, path: &str) {
            assert_eq!(self.apply(Txn::Delete(DeleteTxn { path: path.into() })).err, 0);
        }

        /// Every stored node holds one reference to its list, and nothing else does.
        fn assert_acl_references(&self) {
            let mut counted: HashMap<AclId, u32> = HashMap::new();
            for node in self.tree.nodes.iter().flatten() {
                *counted.entry(node.acl).or_default() += 1;
            }
            assert_eq!(counted.len(), self.tree.acls.len(), "lists stored");
            for (id, count) in counted {
                assert_eq!(self.tree.acls.references(id), count, "references of {id}");
            }
        }

        /// `approximate_data_size` as its definition says, from the public view.
        fn data_size_walked(&self) -> u64 {
            let mut stack = vec!["/".to_owned()];
            let mut bytes = 0;
            while let Some(path) = stack.pop() {
                let node = self.tree.node(&path).expect("walked");
                bytes += (path.len() + node.data().map_or(0, <[u8]>::len)) as u64;
                let prefix = if path == "/" { String::new() } else { path.clone() };
                stack.extend(node.children().iter().map(|name| format!("{prefix}/{name}")));
            }
            bytes
        }
    }

    fn digest_acl(user: &str) -> ACL {
        ACL { perms: Perms::ALL, id: Id { scheme: "digest".into(), id: format!("{user}:x=") } }
    }

    #[test]
    fn nodes_share_their_acl_list_until_the_last_one_goes() {
        let mut h = Harness::new();
        assert_eq!(h.tree.acls().len(), 2, "open and read-only system nodes");
        for key in 0..100 {
            h.create(&format!("/n{key}"), b"v", vec![acl::world(Perms::ALL)], false);
        }
        h.create("/alice", b"", vec![digest_acl("alice")], false);
        h.create("/alice/eph", b"", vec![digest_acl("alice")], true);
        assert_eq!(h.tree.acls().len(), 3);
        let open_id = h.tree.node("/n0").unwrap().node().acl_id();
        assert_eq!(h.tree.acls().references(open_id), 103, "/, /zookeeper, quota, 100 nodes");
        h.assert_acl_references();

        let set = SetACLTxn { path: "/n1".into(), acl: vec![digest_acl("bob")], version: 1 };
        assert_eq!(h.apply(Txn::SetAcl(set)).err, 0);
        assert_eq!(h.tree.node("/n1").unwrap().acl(), &[digest_acl("bob")][..]);
        assert_eq!(h.tree.acls().references(open_id), 102);
        h.assert_acl_references();

        h.delete("/n1");
        assert_eq!(h.tree.acls().len(), 3, "bob's list went with its only node");
        assert_eq!(h.apply(Txn::CloseSession(CloseSessionTxn { paths2_delete: vec![] })).err, 0);
        assert!(h.tree.node("/alice/eph").is_none());
        h.delete("/alice");
        assert_eq!(h.tree.acls().len(), 2, "alice's list went with her last node");
        h.assert_acl_references();
        let (visible, _) = h.tree.get_acl("/n2", &[]).expect("world-readable");
        assert_eq!(visible, vec![acl::world(Perms::ALL)]);
    }

    #[test]
    fn slots_are_reused_and_children_allocated_only_while_there_are_some() {
        let mut h = Harness::new();
        h.create("/p", b"", vec![acl::world(Perms::ALL)], false);
        assert!(h.tree.stored("/p").unwrap().children.is_none());
        assert!(h.tree.node("/p").unwrap().children().is_empty());
        h.create("/p/b", b"", vec![acl::world(Perms::ALL)], false);
        h.create("/p/a", b"", vec![acl::world(Perms::ALL)], false);
        let names: Vec<&str> = h.tree.node("/p").unwrap().children().iter().map(|n| &**n).collect();
        assert_eq!(names, ["a", "b"]);
        let slots = h.tree.nodes.len();
        h.delete("/p/a");
        h.delete("/p/b");
        assert!(h.tree.stored("/p").unwrap().children.is_none(), "freed with the last child");
        assert_eq!(h.tree.node("/p").unwrap().stat().num_children, 0);
        h.create("/q", b"", vec![acl::world(Perms::ALL)], false);
        h.create("/p/c", b"", vec![acl::world(Perms::ALL)], false);
        assert_eq!(h.tree.nodes.len(), slots, "freed slots are reused");
        assert_eq!(h.tree.node_count(), 4 + 3);
        assert_eq!(h.tree.get_all_children_number("/p", &[]), Ok(1));
        h.assert_acl_references();
    }

    #[test]
    fn approximate_data_size_counts_paths_and_data() {
        let mut h = Harness::new();
        assert_eq!(h.tree.approximate_data_size(), h.data_size_walked());
        assert_eq!(h.tree.approximate_data_size(), 44, "/, /zookeeper, its quota and config");
        h.create("/a", &[1; 100], vec![acl::world(Perms::ALL)], false);
        h.create("/a/b", b"xyz", vec![acl::world(Perms::ALL)], false);
        assert_eq!(h.tree.approximate_data_size(), 44 + 2 + 100 + 4 + 3);
        let set = SetDataTxn { path: "/a".into(), data: None, version: 1 };
        assert_eq!(h.apply(Txn::SetData(set)).err, 0);
        assert_eq!(h.tree.node("/a").unwrap().stat().data_length, 0);
        assert_eq!(h.tree.approximate_data_size(), 44 + 2 + 4 + 3);
        h.delete("/a/b");
        assert_eq!(h.tree.approximate_data_size(), h.data_size_walked());
    }
}
