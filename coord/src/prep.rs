//! `Prep`: turns a write request into a [`Txn`], as ZooKeeper's `PrepRequestProcessor`.
//!
//! A write is checked against the tree *plus* the changes prepared but not yet applied
//! (ZooKeeper's `outstandingChanges`), so that pipelined writes see each other: `create /a`
//! then `create /a/b`, prepared back to back, both succeed before either is applied. Every
//! write yields a txn and takes the zxid it is given; a failed write is an error txn.
//!
//! ```text
//! outstanding  = (seq, zxid, path)* in prepare order     ; retired by `applied(zxid)`
//! latest[path] = the newest change record of path        ; what later prepares see
//! record       = deleted | node(stat, child count, acl)
//! ```
//!
//! Checks run in ZooKeeper 3.8's order (each list stops at the first failure):
//!
//! ```text
//! create*     flags known (BadArguments); TTL mode needs extendedTypesEnabled
//!             (Unimplemented) and 1 <= ttl <= 2^40-1 (BadArguments); path has a '/' and
//!             no NUL (BadArguments); ACL (InvalidACL); parent exists (NoNode); CREATE on
//!             parent (NoAuth); sequential suffix %010d of the parent's creation count;
//!             full path valid (BadArguments); node absent (NodeExists); parent not
//!             ephemeral (NoChildrenForEphemerals)
//! delete      path has a '/', no NUL, not /, /zookeeper, /zookeeper/quota or
//!             /zookeeper/config (BadArguments); parent exists (NoNode); DELETE on parent
//!             (NoAuth); node exists (NoNode); version (BadVersion); no children (NotEmpty)
//! deleteContainer  as delete's path rule; node (NoNode); no children (NotEmpty); not an
//!             ephemeral (BadVersion); parent (NoNode) — no ACL check (the reaper asks)
//! setData     path valid (BadArguments); node (NoNode); WRITE (NoAuth); version (BadVersion)
//! setACL      path valid (BadArguments); ACL (InvalidACL); node (NoNode); ADMIN (NoAuth);
//!             aversion (BadVersion)
//! check       path valid (BadArguments); node (NoNode); READ (NoAuth); version (BadVersion)
//! multi       each op in order; on the first failure the multi's own changes are rolled
//!             back, that op becomes ErrorTxn(code) and every later op
//!             ErrorTxn(RuntimeInconsistency); earlier ops keep their txns
//! ```
//!
//! Version -1 matches any version. Two deliberate differences from 3.8.0, both fixes that
//! later ZooKeeper releases made or that make pipelining exact: a prepared setACL publishes
//! its new ACL to later prepares (ZooKeeper 3.9), and a prepared closeSession decrements the
//! child count of the parents of the ephemerals it deletes.

use std::collections::{HashMap, VecDeque};

use zabflow_net::jute::{
    CheckVersionRequest, CreateMode, DeleteRequest, ErrorCode, Id, MultiOp, MultiRequest, OpCode,
    Perms, Request, SetACLRequest, SetDataRequest, ACL,
};
use zabflow_net::path::validate_path;

use crate::acl;
use crate::constants::{
    CONFIG_PATH, OUTSTANDING_CHANGES_MAX, QUOTA_PATH, SEQUENCE_SUFFIX_DIGITS, ZOOKEEPER_PATH,
};
use crate::data_tree::{DataTree, StatPersisted};
use crate::ephemeral_type::EphemeralType;
use crate::txn::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateTTLTxn, CreateTxn, DeleteTxn,
    ErrorTxn, SetACLTxn, SetDataTxn, Txn, TxnHeader,
};

/// Server settings the preparer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrepConfig {
    /// zoo.cfg `extendedTypesEnabled`: TTL nodes are refused (Unimplemented) without it.
    pub extended_types_enabled: bool,
}

/// Who asks, and the zxid and time the txn gets.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub session_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    /// Wall-clock time of the prepare, in ms (the txn's and new nodes' time).
    pub time_ms: i64,
    /// The session's ids (its `ip:` address, `addauth` digests, `super`).
    pub auth_ids: &'a [Id],
}

/// A node as a change record sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeRecord {
    stat: StatPersisted,
    child_count: i32,
    acl: Vec<ACL>,
}

/// `ChangeRecord`: the newest prepared state of one path.
#[derive(Debug, Clone)]
struct ChangeRecord {
    seq: u64,
    zxid: i64,
    node: Option<NodeRecord>,
}

/// The preparer: outstanding changes over a tree the caller owns.
#[derive(Debug, Clone, Default)]
pub struct Prep {
    config: PrepConfig,
    outstanding: VecDeque<(String, ChangeRecord)>,
    latest: HashMap<String, ChangeRecord>,
    next_seq: u64,
}

/// ZooKeeper's node map aliases the root as `""`; records use `/`.
fn key(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// `validatePathForCreate`/`getParentPathAndValidate`'s first rule: the parent is the text
/// before the last `/`; no `/` or a NUL is BadArguments.
fn parent_path(path: &str) -> Result<&str, ErrorCode> {
    match path.rfind('/') {
        Some(slash) if !path.contains('\0') => Ok(key(&path[..slash])),
        _ => Err(ErrorCode::BadArguments),
    }
}

fn check_path(path: &str) -> Result<(), ErrorCode> {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)
}

/// `checkAndIncVersion`: the next version, or BadVersion.
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn is_special(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
}

/// The fields of any create request.
struct CreateArgs<'a> {
    op: OpCode,
    path: &'a str,
    data: &'a Option<Vec<u8>>,
    acl: &'a [ACL],
    flags: i32,
    ttl: i64,
}

impl Prep {
    /// A preparer with no outstanding changes.
    #[must_use]
    pub fn new(config: PrepConfig) -> Self {
        Prep { config, ..Prep::default() }
    }

    /// Prepared changes not yet retired by [`Prep::applied`].
    #[must_use]
    pub fn outstanding_count(&self) -> usize {
        self.outstanding.len()
    }

    /// The txn for a write request, or `None` for a request that is not a write (reads,
    /// ping, auth, watches, sync: the driver serves those itself).
    ///
    /// # Panics
    /// If more than `OUTSTANDING_CHANGES_MAX` changes are outstanding: the driver must stop
    /// preparing (push back on clients) before that.
    pub fn prepare(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        request: &Request,
    ) -> Option<(TxnHeader, Txn)> {
        assert!(self.outstanding.len() < OUTSTANDING_CHANGES_MAX, "outstanding changes full");
        let txn = match request {
            Request::Multi(multi) => Ok(self.prep_multi(tree, context, multi)),
            Request::CreateSession(create) => Ok(Txn::CreateSession(create.clone())),
            Request::CloseSession => Ok(self.prep_close_session(tree, context)),
            Request::DeleteContainer(delete) => {
                self.prep_delete_container(tree, context, &delete.path)
            }
            _ => self.prep_op(tree, context, write_op(request)?),
        };
        let txn = txn.unwrap_or_else(|code| Txn::Error(ErrorTxn { err: code.code() }));
        let header = TxnHeader {
            client_id: context.session_id,
            cxid: context.cxid,
            zxid: context.zxid,
            time_ms: context.time_ms,
            txn_type: txn.op_code().code(),
        };
        Some((header, txn))
    }

    /// `FinalRequestProcessor`'s cleanup once the txn at `zxid` is applied: retires the
    /// records of every txn up to it.
    pub fn applied(&mut self, zxid: i64) {
        while let Some((path, record)) = self.outstanding.front() {
            if record.zxid > zxid {
                break;
            }
            if self.latest.get(path).is_some_and(|latest| latest.seq == record.seq) {
                self.latest.remove(path);
            }
            self.outstanding.pop_front();
        }
    }

    /// Forgets every outstanding change (the driver dropped its pipeline, e.g. on
    /// leadership loss).
    pub fn clear(&mut self) {
        self.outstanding.clear();
        self.latest.clear();
    }

    /// `getRecordForPath`: the newest prepared state, else the tree's; NoNode when absent.
    fn record(&self, tree: &DataTree, path: &str) -> Result<NodeRecord, ErrorCode> {
        if let Some(record) = self.latest.get(key(path)) {
            return record.node.clone().ok_or(ErrorCode::NoNode);
        }
        let node = tree.node(path).ok_or(ErrorCode::NoNode)?;
        Ok(NodeRecord {
            stat: *node.stat_persisted(),
            child_count: i32::try_from(node.children().len()).expect("children fit an int"),
            acl: node.acl().to_vec(),
        })
    }

    /// `addChangeRecord`.
    fn add_change(&mut self, path: &str, zxid: i64, node: Option<NodeRecord>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = ChangeRecord { seq, zxid, node };
        self.outstanding.push_back((key(path).to_owned(), record.clone()));
        self.latest.insert(key(path).to_owned(), record);
    }

    /// `rollbackPendingChanges`: drops the records a failed multi at `zxid` added and
    /// restores, for each of their paths, the newest record still outstanding.
    fn roll_back(&mut self, zxid: i64) {
        let mut paths = Vec::new();
        while self.outstanding.back().is_some_and(|(_, record)| record.zxid == zxid) {
            let (path, _) = self.outstanding.pop_back().expect("checked non-empty");
            paths.push(path);
        }
        for path in paths {
            self.latest.remove(&path);
            let newest = self.outstanding.iter().rev().find(|(other, _)| *other == path);
            if let Some((_, record)) = newest {
                self.latest.insert(path, record.clone());
            }
        }
    }
}

/// A write op, borrowed from a top-level request or a multi's op.
enum WriteOp<'a> {
    Create(CreateArgs<'a>),
    Delete(&'a DeleteRequest),
    SetData(&'a SetDataRequest),
    SetAcl(&'a SetACLRequest),
    Check(&'a CheckVersionRequest),
}

fn create_args(op: OpCode, request: &zabflow_net::jute::CreateRequest) -> WriteOp<'_> {
    WriteOp::Create(CreateArgs {
        op,
        path: &request.path,
        data: &request.data,
        acl: &request.acl,
        flags: request.flags,
        ttl: -1,
    })
}

fn ttl_args(request: &zabflow_net::jute::CreateTTLRequest) -> WriteOp<'_> {
    WriteOp::Create(CreateArgs {
        op: OpCode::CreateTtl,
        path: &request.path,
        data: &request.data,
        acl: &request.acl,
        flags: request.flags,
        ttl: request.ttl,
    })
}

/// The write op of a top-level request; `None` for anything that is not a write.
fn write_op(request: &Request) -> Option<WriteOp<'_>> {
    Some(match request {
        Request::Create(create) => create_args(OpCode::Create, create),
        Request::Create2(create) => create_args(OpCode::Create2, create),
        Request::CreateContainer(create) => create_args(OpCode::CreateContainer, create),
        Request::CreateTtl(create) => ttl_args(create),
        Request::Delete(delete) => WriteOp::Delete(delete),
        Request::SetData(set) => WriteOp::SetData(set),
        Request::SetAcl(set) => WriteOp::SetAcl(set),
        _ => return None,
    })
}

/// The write op of a multi's op; `None` for a read op.
fn multi_write_op(op: &MultiOp) -> Option<WriteOp<'_>> {
    Some(match op {
        MultiOp::Create(create) => create_args(OpCode::Create, create),
        MultiOp::Create2(create) => create_args(OpCode::Create2, create),
        MultiOp::CreateContainer(create) => create_args(OpCode::CreateContainer, create),
        MultiOp::CreateTtl(create) => ttl_args(create),
        MultiOp::Delete(delete) => WriteOp::Delete(delete),
        MultiOp::SetData(set) => WriteOp::SetData(set),
        MultiOp::Check(check) => WriteOp::Check(check),
        MultiOp::GetChildren(_) | MultiOp::GetData(_) => return None,
    })
}

impl Prep {
    fn prep_op(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        op: WriteOp<'_>,
    ) -> Result<Txn, ErrorCode> {
        match op {
            WriteOp::Create(create) => self.prep_create(tree, context, &create),
            WriteOp::Delete(delete) => self.prep_delete(tree, context, delete),
            WriteOp::SetData(set) => self.prep_set_data(tree, context, set),
            WriteOp::SetAcl(set) => self.prep_set_acl(tree, context, set),
            WriteOp::Check(check) => {
                check_path(&check.path)?;
                let node = self.record(tree, &check.path)?;
                acl::check(&node.acl, Perms::READ, context.auth_ids)?;
                let version = next_version(node.stat.version, check.version)?;
                Ok(Txn::Check(CheckVersionTxn { path: check.path.clone(), version }))
            }
        }
    }

    /// `validateCreateRequest`: the mode, and the TTL rules of `EphemeralType.validateTTL`.
    fn create_kind(&self, create: &CreateArgs<'_>) -> Result<CreateMode, ErrorCode> {
        let mode = CreateMode::from_code(create.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.config.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() {
            EphemeralType::ttl(create.ttl).map_err(|_| ErrorCode::BadArguments)?;
        } else if create.ttl >= 0 || create.op == OpCode::CreateTtl {
            // A createTTL request must ask for a TTL mode (ZooKeeper would log a txn its
            // tree then cannot apply).
            return Err(ErrorCode::BadArguments);
        }
        Ok(mode)
    }

    /// `pRequest2TxnCreate`.
    fn prep_create(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        create: &CreateArgs<'_>,
    ) -> Result<Txn, ErrorCode> {
        let mode = self.create_kind(create)?;
        let parent_path = parent_path(create.path)?;
        let node_acl = acl::fixup(create.acl, context.auth_ids)?;
        let mut parent = self.record(tree, parent_path)?;
        acl::check(&parent.acl, Perms::CREATE, context.auth_ids)?;
        let path = if mode.is_sequential() {
            let width = SEQUENCE_SUFFIX_DIGITS;
            format!("{}{:0width$}", create.path, parent.stat.cversion)
        } else {
            create.path.to_owned()
        };
        check_path(&path)?;
        if self.record(tree, &path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(
            EphemeralType::from_owner(parent.stat.ephemeral_owner),
            EphemeralType::Normal(_)
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let parent_cversion = parent.stat.cversion + 1;
        let (txn, kind) = create_txn(create, mode, path.clone(), node_acl.clone(), parent_cversion);
        let owner = match kind {
            EphemeralType::Normal(_) => context.session_id,
            kind => kind.to_owner(),
        };
        parent.child_count += 1;
        parent.stat.cversion = parent_cversion;
        parent.stat.pzxid = context.zxid;
        self.add_change(parent_path, context.zxid, Some(parent));
        let stat = StatPersisted::new(context.zxid, context.time_ms, owner);
        let node = NodeRecord { stat, child_count: 0, acl: node_acl };
        self.add_change(&path, context.zxid, Some(node));
        Ok(txn)
    }

    /// Removes `path` and updates its parent's record (delete, deleteContainer).
    fn record_delete(&mut self, parent_path: &str, mut parent: NodeRecord, path: &str, zxid: i64) {
        parent.child_count -= 1;
        parent.stat.pzxid = zxid;
        self.add_change(parent_path, zxid, Some(parent));
        self.add_change(path, zxid, None);
    }

    fn delete_parent<'p>(path: &'p str) -> Result<&'p str, ErrorCode> {
        let parent = parent_path(path)?;
        if is_special(path) {
            return Err(ErrorCode::BadArguments);
        }
        Ok(parent)
    }

    fn prep_delete(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        delete: &DeleteRequest,
    ) -> Result<Txn, ErrorCode> {
        let parent_path = Self::delete_parent(&delete.path)?;
        let parent = self.record(tree, parent_path)?;
        acl::check(&parent.acl, Perms::DELETE, context.auth_ids)?;
        let node = self.record(tree, &delete.path)?;
        next_version(node.stat.version, delete.version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.record_delete(parent_path, parent, &delete.path, context.zxid);
        Ok(Txn::Delete(DeleteTxn { path: delete.path.clone() }))
    }

    fn prep_delete_container(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        path: &str,
    ) -> Result<Txn, ErrorCode> {
        let parent_path = Self::delete_parent(path)?;
        let node = self.record(tree, path)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if matches!(EphemeralType::from_owner(node.stat.ephemeral_owner), EphemeralType::Normal(_))
        {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self.record(tree, parent_path)?;
        self.record_delete(parent_path, parent, path, context.zxid);
        Ok(Txn::DeleteContainer(DeleteTxn { path: path.to_owned() }))
    }

    fn prep_set_data(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        set: &SetDataRequest,
    ) -> Result<Txn, ErrorCode> {
        check_path(&set.path)?;
        let mut node = self.record(tree, &set.path)?;
        acl::check(&node.acl, Perms::WRITE, context.auth_ids)?;
        let version = next_version(node.stat.version, set.version)?;
        node.stat.version = version;
        node.stat.mtime = context.time_ms;
        node.stat.mzxid = context.zxid;
        self.add_change(&set.path, context.zxid, Some(node));
        Ok(Txn::SetData(SetDataTxn { path: set.path.clone(), data: set.data.clone(), version }))
    }

    fn prep_set_acl(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        set: &SetACLRequest,
    ) -> Result<Txn, ErrorCode> {
        check_path(&set.path)?;
        let new_acl = acl::fixup(&set.acl, context.auth_ids)?;
        let mut node = self.record(tree, &set.path)?;
        acl::check(&node.acl, Perms::ADMIN, context.auth_ids)?;
        let version = next_version(node.stat.aversion, set.version)?;
        node.stat.aversion = version;
        node.acl.clone_from(&new_acl);
        self.add_change(&set.path, context.zxid, Some(node));
        Ok(Txn::SetAcl(SetACLTxn { path: set.path.clone(), acl: new_acl, version }))
    }

    /// A multi: all ops share the zxid; the first failure rolls the multi's changes back.
    fn prep_multi(
        &mut self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        multi: &MultiRequest,
    ) -> Txn {
        let mut txns = Vec::with_capacity(multi.ops.len());
        let mut failed = false;
        for op in &multi.ops {
            if failed {
                let err = ErrorCode::RuntimeInconsistency.code();
                txns.push(Txn::Error(ErrorTxn { err }));
                continue;
            }
            let prepared = match multi_write_op(op) {
                Some(write) => self.prep_op(tree, context, write),
                None => Err(ErrorCode::BadArguments),
            };
            match prepared {
                Ok(txn) => txns.push(txn),
                Err(code) => {
                    failed = true;
                    self.roll_back(context.zxid);
                    txns.push(Txn::Error(ErrorTxn { err: code.code() }));
                }
            }
        }
        Txn::Multi(txns)
    }

    /// closeSession: the session's ephemerals as the tree and the outstanding changes
    /// leave them, each recorded as deleted.
    fn prep_close_session(&mut self, tree: &DataTree, context: &RequestContext<'_>) -> Txn {
        let session_id = context.session_id;
        let mut paths: std::collections::BTreeSet<String> =
            tree.ephemerals(session_id).into_iter().collect();
        for (path, record) in &self.outstanding {
            match &record.node {
                None => {
                    paths.remove(path);
                }
                Some(node) if node.stat.ephemeral_owner == session_id => {
                    paths.insert(path.clone());
                }
                Some(_) => {}
            }
        }
        for path in &paths {
            let parent_path = parent_path(path).expect("an ephemeral's path has a parent");
            if let Ok(parent) = self.record(tree, parent_path) {
                self.record_delete(parent_path, parent, path, context.zxid);
            }
        }
        Txn::CloseSession(CloseSessionTxn { paths2_delete: paths.into_iter().collect() })
    }
}

/// The txn of a create, and the kind of node it makes.
fn create_txn(
    create: &CreateArgs<'_>,
    mode: CreateMode,
    path: String,
    acl: Vec<ACL>,
    parent_cversion: i32,
) -> (Txn, EphemeralType) {
    let data = create.data.clone();
    match create.op {
        OpCode::CreateContainer => {
            let txn = CreateContainerTxn { path, data, acl, parent_cversion };
            (Txn::CreateContainer(txn), EphemeralType::Container)
        }
        OpCode::CreateTtl => {
            let txn = CreateTTLTxn { path, data, acl, parent_cversion, ttl: create.ttl };
            (Txn::CreateTtl(txn), EphemeralType::Ttl(create.ttl))
        }
        op => {
            let ephemeral = mode.is_ephemeral();
            let txn = CreateTxn { path, data, acl, ephemeral, parent_cversion };
            let kind = if ephemeral { EphemeralType::Normal(0) } else { EphemeralType::Void };
            let txn = if op == OpCode::Create2 { Txn::Create2(txn) } else { Txn::Create(txn) };
            (txn, kind)
        }
    }
}
