//! `RequestProcessor`: how each request is routed and how reads are answered, as
//! ZooKeeper's `FinalRequestProcessor` serves them from the tree.
//!
//! ```text
//! route(request) = write   create* delete setData setACL multi deleteContainer closeSession
//!                          reconfig → Prep::prepare → txn log → DataTree::apply → reply
//!                | auth    answered at once (xid -4); a refused scheme closes the connection
//!                | connect createSession: a protocol error on an open session
//!                | read    everything else, answered from the tree once the session's earlier
//!                          writes are applied (ZooKeeper's per-session order)
//! ```
//!
//! Reads are pure functions of the tree, the session and its auth ids: [`serve_read`]
//! returns the reply's error code, its body and any watch events (setWatches fires the
//! events a reconnecting client missed). Read replies carry the tree's last applied zxid.

use zabflow_net::jute::{
    AddWatchMode, ClientInfo, ErrorCode, ErrorResponse, ExistsResponse, GetACLResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, Id, MultiOp, MultiResponse, MultiResult, OpCode, Request, Response,
    SetWatches, SetWatches2, SyncResponse, WhoAmIResponse,
};

use crate::data_tree::DataTree;
use crate::watch_manager::{Notification, SessionId};

/// How the server handles a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Write,
    Auth,
    Connect,
    Read,
}

/// The route of `request`.
#[must_use]
pub fn route(request: &Request) -> Route {
    match request {
        Request::Create(_)
        | Request::Create2(_)
        | Request::CreateContainer(_)
        | Request::CreateTtl(_)
        | Request::Delete(_)
        | Request::SetData(_)
        | Request::SetAcl(_)
        | Request::Multi(_)
        | Request::DeleteContainer(_)
        | Request::Reconfig(_)
        | Request::CloseSession => Route::Write,
        Request::Auth(_) => Route::Auth,
        Request::CreateSession(_) => Route::Connect,
        _ => Route::Read,
    }
}

/// A read's answer.
#[derive(Debug, Default)]
pub struct ReadReply {
    pub err: i32,
    pub body: Option<Response>,
    pub notifications: Vec<Notification>,
}

fn reply(result: Result<Response, ErrorCode>) -> ReadReply {
    match result {
        Ok(Response::Empty) => ReadReply::default(),
        Ok(body) => ReadReply { body: Some(body), ..ReadReply::default() },
        Err(code) => ReadReply { err: code.code(), ..ReadReply::default() },
    }
}

/// Answers a read of session `session_id` holding `ids`.
pub fn serve_read(
    tree: &mut DataTree,
    session_id: SessionId,
    ids: &[Id],
    request: &Request,
) -> ReadReply {
    let watch = |watch: bool| watch.then_some(session_id);
    let result = match request {
        Request::Ping => Ok(Response::Empty),
        Request::SetWatches(watches) => {
            let notifications = tree.set_watches(session_id, &set_watches2(watches));
            return ReadReply { notifications, ..ReadReply::default() };
        }
        Request::SetWatches2(watches) => {
            let notifications = tree.set_watches(session_id, watches);
            return ReadReply { notifications, ..ReadReply::default() };
        }
        Request::Exists(exists) if exists.path.contains('\0') => Err(ErrorCode::BadArguments),
        Request::Exists(exists) => tree
            .exists(&exists.path, watch(exists.watch))
            .map(|stat| Response::Exists(ExistsResponse { stat })),
        Request::GetData(get) => tree
            .get_data(&get.path, ids, watch(get.watch))
            .map(|(data, stat)| Response::GetData(GetDataResponse { data, stat })),
        Request::GetAcl(get) => tree
            .get_acl(&get.path, ids)
            .map(|(acl, stat)| Response::GetAcl(GetACLResponse { acl, stat })),
        Request::GetChildren(get) => tree
            .get_children(&get.path, ids, watch(get.watch))
            .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
        Request::GetChildren2(get) => {
            tree.get_children(&get.path, ids, watch(get.watch)).map(|(children, stat)| {
                Response::GetChildren2(GetChildren2Response { children, stat })
            })
        }
        Request::Sync(sync) => Ok(Response::Sync(SyncResponse { path: sync.path.clone() })),
        Request::MultiRead(multi) => Ok(Response::Multi(MultiResponse {
            results: multi.ops.iter().map(|op| multi_read(tree, session_id, ids, op)).collect(),
        })),
        Request::GetEphemerals(get) => Ok(Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: tree.get_ephemerals(session_id, &get.prefix_path),
        })),
        Request::GetAllChildrenNumber(get) => {
            tree.get_all_children_number(&get.path, ids).map(|total_number| {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number })
            })
        }
        Request::AddWatch(add) => match AddWatchMode::from_code(add.mode) {
            Some(mode) => {
                tree.watches_mut().add_watch(&add.path, session_id, mode);
                Ok(Response::AddWatch(ErrorResponse { err: 0 }))
            }
            None => Err(ErrorCode::BadArguments),
        },
        Request::RemoveWatches(remove) => tree
            .remove_watches(&remove.path, session_id, remove.watcher_type, true)
            .map(|()| Response::Empty),
        Request::CheckWatches(check) => tree
            .remove_watches(&check.path, session_id, check.watcher_type, false)
            .map(|()| Response::Empty),
        Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
            client_info: ids
                .iter()
                .map(|id| ClientInfo {
                    auth_scheme: id.scheme.clone(),
                    user: crate::acl::user_name(id).to_owned(),
                })
                .collect(),
        })),
        _ => Err(ErrorCode::Unimplemented),
    };
    reply(result)
}

fn set_watches2(watches: &SetWatches) -> SetWatches2 {
    SetWatches2 {
        relative_zxid: watches.relative_zxid,
        data_watches: watches.data_watches.clone(),
        exist_watches: watches.exist_watches.clone(),
        child_watches: watches.child_watches.clone(),
        persistent_watches: Vec::new(),
        persistent_recursive_watches: Vec::new(),
    }
}

fn multi_read(tree: &mut DataTree, session_id: SessionId, ids: &[Id], op: &MultiOp) -> MultiResult {
    let error = |code: ErrorCode| MultiResult::Error(ErrorResponse { err: code.code() });
    let watch = |watch: bool| watch.then_some(session_id);
    match op {
        MultiOp::GetChildren(get) => match tree.get_children(&get.path, ids, watch(get.watch)) {
            Ok((children, _)) => MultiResult::GetChildren(GetChildrenResponse { children }),
            Err(code) => error(code),
        },
        MultiOp::GetData(get) => match tree.get_data(&get.path, ids, watch(get.watch)) {
            Ok((data, stat)) => MultiResult::GetData(GetDataResponse { data, stat }),
            Err(code) => error(code),
        },
        _ => error(ErrorCode::Unimplemented),
    }
}

/// ZooKeeper's four-letter abbreviation of an op (`Request.op2String`), for `cons`.
#[must_use]
pub fn op_abbreviation(op: i32) -> &'static str {
    match OpCode::from_code(op) {
        Some(OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
            "CREA"
        }
        Some(OpCode::Delete | OpCode::DeleteContainer) => "DELE",
        Some(OpCode::Exists) => "EXIS",
        Some(OpCode::GetData) => "GETD",
        Some(OpCode::SetData) => "SETD",
        Some(OpCode::GetAcl) => "GETA",
        Some(OpCode::SetAcl) => "SETA",
        Some(OpCode::GetChildren | OpCode::GetChildren2) => "GETC",
        Some(OpCode::Sync) => "SYNC",
        Some(OpCode::Ping) => "PING",
        Some(OpCode::Multi | OpCode::MultiRead) => "MULT",
        Some(OpCode::CloseSession) => "CLOS",
        Some(OpCode::Auth) => "AUTH",
        Some(OpCode::SetWatches | OpCode::SetWatches2) => "SETW",
        _ => "UNKN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zabflow_net::jute::{ExistsRequest, GetDataRequest};

    #[test]
    fn reads_answer_from_the_tree() {
        let mut tree = DataTree::new();
        let get = Request::GetData(GetDataRequest { path: "/missing".into(), watch: true });
        assert_eq!(serve_read(&mut tree, 1, &[], &get).err, ErrorCode::NoNode.code());
        let exists = Request::Exists(ExistsRequest { path: "/zookeeper".into(), watch: false });
        let reply = serve_read(&mut tree, 1, &[], &exists);
        assert_eq!(reply.err, 0);
        assert!(matches!(reply.body, Some(Response::Exists(_))));
        assert_eq!(route(&Request::CloseSession), Route::Write);
        assert_eq!(route(&Request::Ping), Route::Read);
    }
}
