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
//! reconfig    always an error txn, in the order of [`crate::reconfig`]
//! ```
//!
//! Version -1 matches any version. Two deliberate differences from 3.8.0, both fixes that
//! later ZooKeeper releases made or that make pipelining exact: a prepared setACL publishes
//! its new ACL to later prepares (ZooKeeper 3.9), and a prepared closeSession decrements the
//! child count of the parents of the ephemerals it deletes.

use std::collections::{HashMap, VecDeque};

use zabflow_net::jute::{
    CheckVersionRequest, CreateMode, DeleteRequest, ErrorCode, Id, MultiOp, MultiRequest, OpCode,
    Perms, ReconfigRequest, Request, SetACLRequest, SetDataRequest, ACL,
};
use zabflow_net::path::validate_path;

use crate::acl;
use crate::constants::{
    CONFIG_PATH, OUTSTANDING_CHANGES_MAX, QUOTA_PATH, SEQUENCE_SUFFIX_DIGITS, ZOOKEEPER_PATH,
};
use crate::data_tree::{DataTree, StatPersisted};
use crate::ephemeral_type::EphemeralType;
use crate::reconfig::{self, ReconfigConfig};
use crate::txn::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateTTLTxn, CreateTxn, DeleteTxn,
    ErrorTxn, SetACLTxn, SetDataTxn, Txn, TxnHeader,
};

/// Server settings the preparer needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrepConfig {
    /// zoo.cfg `extendedTypesEnabled`: TTL nodes are refused (Unimplemented) without it.
    pub extended_types_enabled: bool,
    /// What a reconfig request is checked against (it always gets an error txn).
    pub reconfig: ReconfigConfig,
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
            Request::Reconfig(reconfig) => Err(self.prep_reconfig(tree, context, reconfig)),
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

/// The op a multi's create becomes. ZooKeeper's `MultiOperationRecord` rebuilds every create
/// with `Op.create(path, data, acl, flags[, ttl])`, which picks the op from the flags
/// (`CreateMode.fromFlag(flags, PERSISTENT)`), not from the op code sent: TTL modes make a
/// createTTL, the container mode a createContainer, anything else a plain create. So a
/// create2 in a multi answers without a `Stat`, and a createTTL op with a non-TTL mode is a
/// plain create whose ttl is dropped. (A create or create2 op with a TTL mode makes 3.8 fail
/// the whole multi with MarshallingError, a `ClassCastException` in its preparer — a
/// ZooKeeper bug; here it is a createTTL without a ttl, which fails with BadArguments.)
fn multi_create_op(flags: i32) -> OpCode {
    match CreateMode::from_code(flags) {
        Some(mode) if mode.is_ttl() => OpCode::CreateTtl,
        Some(mode) if mode.is_container() => OpCode::CreateContainer,
        _ => OpCode::Create,
    }
}

/// The write op of a multi's op; `None` for a read op.
fn multi_write_op(op: &MultiOp) -> Option<WriteOp<'_>> {
    Some(match op {
        MultiOp::Create(create) | MultiOp::Create2(create) | MultiOp::CreateContainer(create) => {
            create_args(multi_create_op(create.flags), create)
        }
        MultiOp::CreateTtl(create) => match multi_create_op(create.flags) {
            OpCode::CreateTtl => ttl_args(create),
            op => WriteOp::Create(CreateArgs {
                op,
                path: &create.path,
                data: &create.data,
                acl: &create.acl,
                flags: create.flags,
                ttl: -1,
            }),
        },
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

    fn delete_parent(path: &str) -> Result<&str, ErrorCode> {
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

    fn prep_reconfig(
        &self,
        tree: &DataTree,
        context: &RequestContext<'_>,
        request: &ReconfigRequest,
    ) -> ErrorCode {
        let config_acl = self.record(tree, CONFIG_PATH).map(|node| node.acl).unwrap_or_default();
        reconfig::check(&self.config.reconfig, request, &config_acl, context.auth_ids)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch_manager::Notification;
    use proptest::prelude::*;
    use zabflow_net::jute::{
        CreateRequest, CreateTTLRequest, DeleteContainerRequest, Response, Stat,
    };

    const S1: i64 = 0x100;
    const S2: i64 = 0x200;

    /// Prepare + apply, as the standalone pipeline does with one request in flight.
    struct Harness {
        tree: DataTree,
        prep: Prep,
        zxid: i64,
        time_ms: i64,
        auth: Vec<Id>,
    }

    impl Harness {
        fn new() -> Self {
            let config = PrepConfig { extended_types_enabled: true, ..PrepConfig::default() };
            Harness {
                tree: DataTree::new(),
                prep: Prep::new(config),
                zxid: 0,
                time_ms: 1000,
                auth: vec![],
            }
        }

        fn prepare(&mut self, session_id: i64, request: &Request) -> (TxnHeader, Txn) {
            self.zxid += 1;
            let context = RequestContext {
                session_id,
                cxid: 1,
                zxid: self.zxid,
                time_ms: self.time_ms,
                auth_ids: &self.auth,
            };
            self.prep.prepare(&self.tree, &context, request).expect("a write")
        }

        fn apply(
            &mut self,
            header: &TxnHeader,
            txn: &Txn,
            op: OpCode,
        ) -> (i32, Response, Vec<Notification>) {
            let applied = self.tree.apply(header, txn);
            self.prep.applied(header.zxid);
            let (err, body) = applied.result.response(op);
            (err, body, applied.notifications)
        }

        fn run_as(&mut self, session_id: i64, request: &Request) -> (i32, Response) {
            let (header, txn) = self.prepare(session_id, request);
            let (err, body, _) = self.apply(&header, &txn, request.op_code());
            (err, body)
        }

        fn run(&mut self, request: &Request) -> (i32, Response) {
            self.run_as(S1, request)
        }

        fn err(&mut self, request: &Request) -> i32 {
            self.run(request).0
        }

        fn stat(&mut self, path: &str) -> Stat {
            self.tree.exists(path, None).expect("exists")
        }
    }

    fn create_req(path: &str, flags: i32) -> CreateRequest {
        CreateRequest {
            path: path.to_owned(),
            data: Some(b"d".to_vec()),
            acl: vec![acl::world(31)],
            flags,
        }
    }

    fn create(path: &str) -> Request {
        Request::Create(create_req(path, 0))
    }

    fn create_mode(path: &str, flags: i32) -> Request {
        Request::Create(create_req(path, flags))
    }

    fn delete(path: &str, version: i32) -> Request {
        Request::Delete(DeleteRequest { path: path.to_owned(), version })
    }

    fn set(path: &str, version: i32) -> Request {
        Request::SetData(SetDataRequest {
            path: path.to_owned(),
            data: Some(b"x".to_vec()),
            version,
        })
    }

    fn set_acl(path: &str, acl: Vec<ACL>, version: i32) -> Request {
        Request::SetAcl(SetACLRequest { path: path.to_owned(), acl, version })
    }

    fn ttl(path: &str, flags: i32, ttl: i64) -> Request {
        Request::CreateTtl(CreateTTLRequest {
            path: path.to_owned(),
            data: None,
            acl: vec![acl::world(31)],
            flags,
            ttl,
        })
    }

    fn created_path(response: &Response) -> &str {
        match response {
            Response::Create(create) => &create.path,
            Response::Create2(create) => &create.path,
            other => panic!("not a create reply: {other:?}"),
        }
    }

    fn id(scheme: &str, text: &str) -> Id {
        Id { scheme: scheme.to_owned(), id: text.to_owned() }
    }

    use ErrorCode as E;

    #[test]
    fn error_codes_of_every_write() {
        let mut h = Harness::new();
        assert_eq!(h.err(&create("/e")), 0);
        assert_eq!(h.err(&create_mode("/e/eph", 1)), 0);
        let digest_only = vec![ACL { perms: 31, id: id("digest", "bob:hash") }];
        assert_eq!(
            h.err(&Request::Create(CreateRequest {
                acl: digest_only.clone(),
                ..create_req("/locked", 0)
            })),
            0
        );
        let read_only = vec![acl::world(Perms::READ)];
        assert_eq!(
            h.err(&Request::Create(CreateRequest { acl: read_only, ..create_req("/ro", 0) })),
            0
        );
        let table: Vec<(Request, ErrorCode)> = vec![
            (create("/e"), E::NodeExists),
            (create("/missing/x"), E::NoNode),
            (create("relative"), E::BadArguments),
            (create("/a\u{0}b"), E::BadArguments),
            (create("/missing/bad\u{1}"), E::NoNode),
            (create("/e/bad\u{1}"), E::BadArguments),
            (create("/e/"), E::BadArguments),
            (create("/missing/"), E::NoNode),
            (create("/.."), E::BadArguments),
            (create("/e/eph/child"), E::NoChildrenForEphemerals),
            (create("/locked/child"), E::NoAuth),
            (create("/ro/child"), E::NoAuth),
            (create_mode("/f", 9), E::BadArguments),
            (Request::Create(CreateRequest { acl: vec![], ..create_req("/f", 0) }), E::InvalidAcl),
            (
                Request::Create(CreateRequest {
                    acl: vec![ACL { perms: 31, id: id("auth", "") }],
                    ..create_req("/f", 0)
                }),
                E::InvalidAcl,
            ),
            (
                Request::Create(CreateRequest {
                    acl: vec![ACL { perms: 31, id: id("digest", "nocolon") }],
                    ..create_req("/missing/f", 0)
                }),
                E::InvalidAcl,
            ),
            (ttl("/t", 5, 0), E::BadArguments),
            (ttl("/t", 5, crate::constants::TTL_MS_MAX + 1), E::BadArguments),
            (ttl("/t", 0, 100), E::BadArguments),
            (create_mode("/t", 5), E::BadArguments),
            (delete("/missing", -1), E::NoNode),
            (delete("/missing/x", -1), E::NoNode),
            (delete("/e", -1), E::NotEmpty),
            (delete("/e/eph", 7), E::BadVersion),
            (delete("/zookeeper", -1), E::BadArguments),
            (delete("/zookeeper/quota", -1), E::BadArguments),
            (delete("/", -1), E::BadArguments),
            (delete("nope", -1), E::BadArguments),
            // The parent's DELETE permission is checked before the node is looked up.
            (delete("/ro/x", -1), E::NoAuth),
            (set("/missing", -1), E::NoNode),
            (set("/e", 5), E::BadVersion),
            (set("bad", -1), E::BadArguments),
            (set("/locked", -1), E::NoAuth),
            (set("/ro", -1), E::NoAuth),
            (set("/zookeeper/config", -1), E::NoAuth),
            (set_acl("/e", vec![], -1), E::InvalidAcl),
            (set_acl("/missing", vec![acl::world(31)], -1), E::NoNode),
            (set_acl("/e", vec![acl::world(31)], 3), E::BadVersion),
            (set_acl("/locked", vec![acl::world(31)], -1), E::NoAuth),
            (
                Request::DeleteContainer(DeleteContainerRequest { path: "/e/eph".to_owned() }),
                E::BadVersion,
            ),
            (
                Request::DeleteContainer(DeleteContainerRequest { path: "/e".to_owned() }),
                E::NotEmpty,
            ),
            (
                Request::DeleteContainer(DeleteContainerRequest { path: "/gone".to_owned() }),
                E::NoNode,
            ),
        ];
        for (request, expected) in table {
            let zxid_before = h.tree.last_processed_zxid();
            assert_eq!(h.err(&request), expected.code(), "{request:?}");
            assert_eq!(
                h.tree.last_processed_zxid(),
                zxid_before + 1,
                "a failed write takes a zxid"
            );
        }
        let mut off = Harness::new();
        off.prep = Prep::new(PrepConfig::default());
        assert_eq!(off.err(&ttl("/t", 5, 100)), E::Unimplemented.code());
        // `auth` expands to the session's digest ids; the superuser passes every check.
        h.auth = acl::authenticate("digest", b"bob:pw", Some(&acl::generate_digest("bob:pw")))
            .expect("digest");
        assert_eq!(h.err(&set("/locked", -1)), 0);
    }

    #[test]
    fn sequential_suffix_counts_creations() {
        let mut h = Harness::new();
        h.run(&create("/p"));
        let (_, first) = h.run(&create_mode("/p/s-", 2));
        assert_eq!(created_path(&first), "/p/s-0000000000");
        assert_eq!(h.err(&delete("/p/s-0000000000", -1)), 0);
        let (_, second) = h.run(&create_mode("/p/s-", 2));
        assert_eq!(created_path(&second), "/p/s-0000000001");
        let stat = h.stat("/p");
        assert_eq!((stat.cversion, stat.num_children), (3, 1));
        h.run(&create("/p/x"));
        let (_, trailing) = h.run(&create_mode("/p/x/", 2));
        assert_eq!(created_path(&trailing), "/p/x/0000000000");
    }

    #[test]
    fn delete_moves_parent_cversion_and_pzxid_not_mzxid() {
        let mut h = Harness::new();
        h.run(&create("/p"));
        h.run(&create("/p/c"));
        let before = h.stat("/p");
        h.run(&delete("/p/c", 0));
        let after = h.stat("/p");
        assert_eq!(after.mzxid, before.mzxid);
        assert_eq!(after.cversion, before.cversion + 1);
        assert_eq!(after.pzxid, h.zxid);
        assert_eq!(after.num_children, 0);
    }

    #[test]
    fn fresh_tree_matches_zookeeper() {
        let mut h = Harness::new();
        let (root, root_stat) = h.tree.get_children("/", &[], None).expect("root");
        assert_eq!(root, vec!["zookeeper"]);
        assert_eq!(root_stat.cversion, -1);
        let (system, _) = h.tree.get_children("/zookeeper", &[], None).expect("/zookeeper");
        assert_eq!(system, vec!["config", "quota"]);
        assert_eq!(h.tree.get_all_children_number("/", &[]), Ok(3));
        assert_eq!(h.tree.get_data("/", &[], None).map(|(data, _)| data), Ok(Some(vec![])));
    }

    #[test]
    fn container_and_ttl_nodes() {
        let mut h = Harness::new();
        let (err, body) = h.run(&Request::CreateContainer(create_req("/c", 4)));
        assert_eq!(err, 0);
        let Response::Create2(created) = body else { panic!("create2 body") };
        assert_eq!(created.stat.ephemeral_owner, 0);
        assert!(h.tree.reaper_candidates(i64::MAX / 2, None).is_empty(), "never had a child");
        h.run(&create("/c/x"));
        assert!(h.tree.reaper_candidates(i64::MAX / 2, None).is_empty(), "has a child");
        h.run(&delete("/c/x", -1));
        assert_eq!(h.tree.reaper_candidates(h.time_ms, None), vec!["/c"]);
        let reap = Request::DeleteContainer(DeleteContainerRequest { path: "/c".to_owned() });
        assert_eq!(h.run_as(0, &reap).0, 0);
        assert_eq!(h.run(&ttl("/t", 5, 500)).0, 0);
        assert_eq!(h.stat("/t").ephemeral_owner, 0);
        assert!(h.tree.reaper_candidates(h.time_ms + 500, None).is_empty());
        assert_eq!(h.tree.reaper_candidates(h.time_ms + 501, None), vec!["/t"]);
    }

    #[test]
    fn failed_multi_reports_in_zookeepers_order() {
        let mut h = Harness::new();
        let multi = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(create_req("/m", 0)),
                MultiOp::Check(CheckVersionRequest { path: "/m".to_owned(), version: 5 }),
                MultiOp::Delete(DeleteRequest { path: "/m".to_owned(), version: -1 }),
            ],
        });
        let (err, body) = h.run(&multi);
        assert_eq!(err, 0);
        let Response::Multi(response) = body else { panic!("multi body") };
        let codes: Vec<i32> = response
            .results
            .iter()
            .map(|result| match result {
                zabflow_net::jute::MultiResult::Error(error) => error.err,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(codes, vec![0, E::BadVersion.code(), E::RuntimeInconsistency.code()]);
        assert!(h.tree.node("/m").is_none(), "all or nothing");
        assert_eq!(h.tree.last_processed_zxid(), 1);
        assert_eq!(h.prep.outstanding_count(), 0);
    }

    #[test]
    fn multi_creates_take_their_kind_from_the_flags() {
        // ZooKeeper's MultiOperationRecord rebuilds each create with Op.create(…), which
        // picks the op from the flags: a create2 answers without a Stat, a create with the
        // container mode answers with one, a createTTL with a non-TTL mode drops its ttl.
        let mut h = Harness::new();
        let mut plain_ttl = CreateTTLRequest {
            path: "/t".to_owned(),
            data: None,
            acl: vec![acl::world(31)],
            flags: 0,
            ttl: 1 << 41,
        };
        let multi = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create2(create_req("/a", 0)),
                MultiOp::Create(create_req("/c", 4)),
                MultiOp::CreateTtl(plain_ttl.clone()),
            ],
        });
        let (err, body) = h.run(&multi);
        assert_eq!(err, 0);
        let Response::Multi(response) = body else { panic!("multi body") };
        use zabflow_net::jute::MultiResult as R;
        assert!(matches!(&response.results[0], R::Create(created) if created.path == "/a"));
        assert!(matches!(&response.results[1], R::Create2(created) if created.path == "/c"));
        assert!(matches!(&response.results[2], R::Create(created) if created.path == "/t"));
        assert_eq!(h.stat("/c").ephemeral_owner, 0, "a container shows owner 0");
        plain_ttl.path = "/t2".to_owned();
        plain_ttl.flags = 5;
        let bad_ttl = Request::Multi(MultiRequest { ops: vec![MultiOp::CreateTtl(plain_ttl)] });
        let Response::Multi(response) = h.run(&bad_ttl).1 else { panic!("multi body") };
        assert!(matches!(&response.results[0], R::Error(e) if e.err == E::BadArguments.code()));
    }

    #[test]
    fn acl_reading_rules() {
        let mut h = Harness::new();
        let alice = acl::authenticate("digest", b"alice:pw", None).expect("digest");
        let node_acl =
            vec![ACL { perms: Perms::ALL, id: alice[0].clone() }, acl::world(Perms::READ)];
        h.run(&Request::Create(CreateRequest { acl: node_acl, ..create_req("/a", 0) }));
        let (visible, _) = h.tree.get_acl("/a", &[]).expect("READ suffices");
        assert_eq!(visible[0].id.id, "alice:x");
        let (full, _) = h.tree.get_acl("/a", &alice).expect("admin");
        assert_eq!(full[0].id, alice[0]);
        h.run(&create("/n"));
        h.run(&set_acl("/n", vec![acl::world(Perms::WRITE)], -1));
        assert_eq!(h.tree.get_acl("/n", &[]), Err(E::NoAuth));
        assert_eq!(h.tree.get_data("/n", &[], Some(S2)), Err(E::NoAuth));
        assert!(h.tree.exists("/n", Some(S2)).is_ok(), "exists is not ACL-checked");
        assert_eq!(h.tree.get_children("/n", &[], None), Err(E::NoAuth));
    }

    #[test]
    fn ephemerals_die_with_their_session_and_fire_watches() {
        let mut h = Harness::new();
        h.run(&create("/app"));
        h.run_as(S2, &create_mode("/app/worker", 1));
        assert_eq!(h.stat("/app/worker").ephemeral_owner, S2);
        assert_eq!(h.tree.get_ephemerals(S2, "/app"), vec!["/app/worker"]);
        h.tree.get_children("/app", &[], Some(S1)).expect("children");
        h.tree.exists("/app/worker", Some(S1)).expect("exists");
        let (header, txn) = h.prepare(S2, &Request::CloseSession);
        assert_eq!(
            txn,
            Txn::CloseSession(CloseSessionTxn { paths2_delete: vec!["/app/worker".to_owned()] })
        );
        let (_, _, events) = h.apply(&header, &txn, OpCode::CloseSession);
        let kinds: Vec<(i64, i32)> =
            events.iter().map(|n| (n.session_id, n.event.event_type)).collect();
        assert_eq!(kinds, vec![(S1, 2), (S1, 4)]);
        assert!(h.tree.get_ephemerals(S2, "/").is_empty());
    }

    #[test]
    fn set_watches_fires_what_was_missed() {
        let mut h = Harness::new();
        h.run(&create("/a"));
        h.run(&create("/b"));
        let seen = h.zxid;
        h.run(&set("/a", -1));
        h.run(&create("/b/c"));
        h.run(&create("/new"));
        let watches = zabflow_net::jute::SetWatches2 {
            relative_zxid: seen,
            data_watches: vec!["/a".to_owned(), "/b".to_owned(), "/gone".to_owned()],
            exist_watches: vec!["/new".to_owned(), "/absent".to_owned()],
            child_watches: vec!["/b".to_owned(), "/a".to_owned()],
            persistent_watches: vec![],
            persistent_recursive_watches: vec![],
        };
        let events = h.tree.set_watches(S2, &watches);
        let kinds: Vec<(i32, &str)> =
            events.iter().map(|n| (n.event.event_type, n.event.path.as_str())).collect();
        assert_eq!(kinds, vec![(3, "/a"), (2, "/gone"), (1, "/new"), (4, "/b")]);
        assert_eq!(h.tree.watches().watch_count(), 3, "/b data, /absent exist, /a child");
    }

    #[test]
    fn pipelined_writes_see_each_other() {
        let mut h = Harness::new();
        let requests = [
            create("/a"),
            create("/a/b"),
            create_mode("/a/s", 2),
            create_mode("/a/s", 2),
            delete("/a/b", 0),
            set("/a", 0),
        ];
        let prepared: Vec<(TxnHeader, Txn)> = requests.iter().map(|r| h.prepare(S1, r)).collect();
        for (header, txn) in &prepared {
            assert_eq!(txn.error_code(), None, "{txn:?}");
            h.apply(header, txn, OpCode::Create);
        }
        assert_eq!(h.prep.outstanding_count(), 0);
        let mut serial = Harness::new();
        for request in &requests {
            serial.run(request);
        }
        assert_eq!(h.tree.digest(), serial.tree.digest());
    }

    /// A write in the model's terms.
    #[derive(Debug, Clone)]
    enum Op {
        Create(usize, bool),
        Delete(usize, i32),
        Set(usize, i32),
        Multi(Vec<(usize, u8)>),
    }

    const NAMES: [&str; 6] = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z"];

    fn request(op: &Op) -> Request {
        match op {
            Op::Create(index, sequential) => {
                create_mode(NAMES[*index], if *sequential { 2 } else { 0 })
            }
            Op::Delete(index, version) => delete(NAMES[*index], *version),
            Op::Set(index, version) => set(NAMES[*index], *version),
            Op::Multi(ops) => Request::Multi(MultiRequest {
                ops: ops
                    .iter()
                    .map(|(index, kind)| match kind % 3 {
                        0 => MultiOp::Create(create_req(NAMES[*index], 0)),
                        1 => MultiOp::Delete(DeleteRequest {
                            path: NAMES[*index].to_owned(),
                            version: -1,
                        }),
                        _ => MultiOp::SetData(SetDataRequest {
                            path: NAMES[*index].to_owned(),
                            data: None,
                            version: -1,
                        }),
                    })
                    .collect(),
            }),
        }
    }

    fn arbitrary_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..NAMES.len(), any::<bool>()).prop_map(|(i, s)| Op::Create(i, s)),
            (0..NAMES.len(), -1..2i32).prop_map(|(i, v)| Op::Delete(i, v)),
            (0..NAMES.len(), -1..2i32).prop_map(|(i, v)| Op::Set(i, v)),
            proptest::collection::vec((0..NAMES.len(), any::<u8>()), 1..4).prop_map(Op::Multi),
        ]
    }

    /// The model: a set of paths with versions; a create needs its parent, a delete no
    /// children. It predicts each write's success.
    fn model_step(model: &mut std::collections::BTreeMap<String, i32>, op: &Op) -> bool {
        let parent_ok = |model: &std::collections::BTreeMap<String, i32>, path: &str| {
            let parent = &path[..path.rfind('/').unwrap_or(0)];
            parent.is_empty() || model.contains_key(parent)
        };
        let has_children = |model: &std::collections::BTreeMap<String, i32>, path: &str| {
            model.keys().any(|key| key.starts_with(&format!("{path}/")))
        };
        let count_key = |path: &str| format!("\u{0}{}", &path[..path.rfind('/').unwrap_or(0)]);
        match op {
            Op::Create(index, sequential) => {
                let base = NAMES[*index];
                let creations = model.get(&count_key(base)).copied().unwrap_or(0);
                let path =
                    if *sequential { format!("{base}{creations:010}") } else { base.to_owned() };
                let ok = parent_ok(model, base) && !model.contains_key(&path);
                if ok {
                    model.insert(path, 0);
                    model.insert(count_key(base), creations + 1);
                }
                ok
            }
            Op::Delete(index, version) => {
                let path = NAMES[*index];
                let ok = model.get(path).is_some_and(|v| *version == -1 || v == version)
                    && !has_children(model, path);
                if ok {
                    model.remove(path);
                    // A node created again under this path counts its sequential children
                    // from 0 again (the counter lives in the parent node, as ZooKeeper's).
                    model.remove(&format!("\u{0}{path}"));
                }
                ok
            }
            Op::Set(index, version) => match model.get_mut(NAMES[*index]) {
                Some(v) if *version == -1 || v == version => {
                    *v += 1;
                    true
                }
                _ => false,
            },
            Op::Multi(ops) => {
                let mut scratch = model.clone();
                let ok = ops.iter().all(|(index, kind)| {
                    let single = match kind % 3 {
                        0 => Op::Create(*index, false),
                        1 => Op::Delete(*index, -1),
                        _ => Op::Set(*index, -1),
                    };
                    model_step(&mut scratch, &single)
                });
                if ok {
                    *model = scratch;
                }
                ok
            }
        }
    }

    fn is_error_result(result: &zabflow_net::jute::MultiResult) -> bool {
        matches!(result, zabflow_net::jute::MultiResult::Error(_))
    }

    fn check_invariants(tree: &DataTree) -> Result<(), TestCaseError> {
        for path in ["/", "/a", "/b", "/a/x", "/a/y", "/b/x"] {
            if let Some(node) = tree.node(path) {
                let stat = node.stat();
                prop_assert_eq!(stat.num_children as usize, node.children().len());
                let creations = node.stat_persisted().cversion;
                prop_assert_eq!(stat.cversion, 2 * creations - stat.num_children);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn prep_and_apply_agree_with_the_model(
            ops in proptest::collection::vec(arbitrary_op(), 1..30),
        ) {
            let mut h = Harness::new();
            let mut model = std::collections::BTreeMap::new();
            for op in &ops {
                let expected = model_step(&mut model, op);
                let (err, body) = h.run(&request(op));
                let failed = match &body {
                    Response::Multi(multi) => multi.results.iter().any(is_error_result),
                    _ => err != 0,
                };
                prop_assert_eq!(!failed, expected, "{:?} → {} {:?}", op, err, body);
                check_invariants(&h.tree)?;
                if let (Op::Create(index, _), false) = (op, failed) {
                    let parent = &NAMES[*index][..NAMES[*index].rfind('/').unwrap_or(0)];
                    let parent = if parent.is_empty() { "/" } else { parent };
                    prop_assert_eq!(h.stat(parent).pzxid, h.zxid);
                }
            }
            for (path, version) in model.iter().filter(|(path, _)| path.starts_with('/')) {
                prop_assert_eq!(h.stat(path).version, *version);
            }
        }

        #[test]
        fn pipelined_prep_equals_one_by_one(
            ops in proptest::collection::vec(arbitrary_op(), 1..20),
        ) {
            let mut serial = Harness::new();
            let serial_codes: Vec<(i32, Response)> =
                ops.iter().map(|op| serial.run(&request(op))).collect();
            let mut piped = Harness::new();
            let prepared: Vec<(TxnHeader, Txn)> =
                ops.iter().map(|op| piped.prepare(S1, &request(op))).collect();
            let piped_codes: Vec<(i32, Response)> = prepared
                .iter()
                .zip(&ops)
                .map(|((header, txn), op)| {
                    let (err, body, _) = piped.apply(header, txn, request(op).op_code());
                    (err, body)
                })
                .collect();
            prop_assert_eq!(serial_codes, piped_codes);
            prop_assert_eq!(serial.tree.digest(), piped.tree.digest());
            prop_assert_eq!(piped.prep.outstanding_count(), 0);
        }
    }
}
