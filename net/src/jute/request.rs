//! Client requests: each op's request record, and [`Request`], the typed union of them.
//!
//! ```text
//! request-frame = length:int RequestHeader(xid, type) body
//! body          = the record named below for the header's type (none where "-")
//!
//! create 1, create2 15, createContainer 19 = CreateRequest
//!   CreateRequest    = path:ustring data:buffer acl:vector<ACL> flags:int
//! createTTL 21       = CreateTTLRequest = CreateRequest's fields, then ttl:long
//! delete 2           = DeleteRequest = path:ustring version:int
//! exists 3           = ExistsRequest = path:ustring watch:boolean
//! getData 4          = GetDataRequest = path:ustring watch:boolean
//! setData 5          = SetDataRequest = path:ustring data:buffer version:int
//! getACL 6           = GetACLRequest = path:ustring
//! setACL 7           = SetACLRequest = path:ustring acl:vector<ACL> version:int
//! getChildren 8      = GetChildrenRequest = path:ustring watch:boolean
//! sync 9             = SyncRequest = path:ustring
//! ping 11            = -                                 ; xid -2
//! getChildren2 12    = GetChildren2Request = path:ustring watch:boolean
//! check 13           = CheckVersionRequest = path:ustring version:int
//! multi 14, multiRead 22 = MultiRequest                  ; see `multi`
//! reconfig 16        = ReconfigRequest = joiningServers:ustring leavingServers:ustring
//!                      newMembers:ustring curConfigId:long   ; the strings may be null
//! checkWatches 17    = CheckWatchesRequest = path:ustring type:int
//! removeWatches 18   = RemoveWatchesRequest = path:ustring type:int
//! deleteContainer 20 = DeleteContainerRequest = path:buffer (UTF-8)
//! auth 100           = AuthPacket = type:int scheme:ustring auth:buffer   ; xid -4
//! setWatches 101     = SetWatches = relativeZxid:long dataWatches:vector<ustring>
//!                      existWatches:vector<ustring> childWatches:vector<ustring>  ; xid -8
//! sasl 102           = GetSASLRequest = token:buffer
//! getEphemerals 103  = GetEphemeralsRequest = prefixPath:ustring
//! getAllChildrenNumber 104 = GetAllChildrenNumberRequest = path:ustring
//! setWatches2 105    = SetWatches2 = SetWatches's fields, then
//!                      persistentWatches:vector<ustring>
//!                      persistentRecursiveWatches:vector<ustring>
//! addWatch 106       = AddWatchRequest = path:ustring mode:int
//! whoAmI 107         = -
//! createSession -10  = CreateSessionTxn = timeOut:int     ; server-internal
//! closeSession -11   = -
//! ```
//!
//! Decoding a frame separates two failures the way ZooKeeper's server does: an op code it
//! does not know is [`Error::UnknownOpCode`] (ZooKeeper replies `Unimplemented` and closes the
//! session), a known op whose body does not decode is [`Error::MalformedRequest`] (ZooKeeper
//! replies `MarshallingError`); both carry the xid to reply with. Bytes after the body are
//! ignored, as ZooKeeper ignores them. Field values are not validated here (paths, flags,
//! modes): the server does that in ZooKeeper's order.

use super::codes::OpCode;
use super::multi::MultiRequest;
use super::reader::Reader;
use super::record::{jute_record, Record, RequestHeader, ACL};
use super::writer::Writer;
use crate::error::{Error, Result};

jute_record! {
    /// `CreateRequest`: create, create2 and createContainer. `flags` is a `CreateMode`.
    CreateRequest { path: ustring, data: buffer_opt, acl: vector<ACL>, flags: int, }
}

jute_record! {
    /// `CreateTTLRequest`: createTTL; `ttl` in milliseconds.
    CreateTTLRequest {
        path: ustring,
        data: buffer_opt,
        acl: vector<ACL>,
        flags: int,
        ttl: long,
    }
}

jute_record! {
    /// `DeleteRequest`; `version` -1 matches any version.
    DeleteRequest { path: ustring, version: int, }
}

jute_record! {
    /// `ExistsRequest`.
    ExistsRequest { path: ustring, watch: boolean, }
}

jute_record! {
    /// `GetDataRequest`.
    GetDataRequest { path: ustring, watch: boolean, }
}

jute_record! {
    /// `SetDataRequest`; `version` -1 matches any version.
    SetDataRequest { path: ustring, data: buffer_opt, version: int, }
}

jute_record! {
    /// `GetACLRequest`.
    GetACLRequest { path: ustring, }
}

jute_record! {
    /// `SetACLRequest`; `version` is the ACL version (`aversion`).
    SetACLRequest { path: ustring, acl: vector<ACL>, version: int, }
}

jute_record! {
    /// `GetChildrenRequest`.
    GetChildrenRequest { path: ustring, watch: boolean, }
}

jute_record! {
    /// `SyncRequest`.
    SyncRequest { path: ustring, }
}

jute_record! {
    /// `GetChildren2Request`: getChildren that also returns the parent's `Stat`.
    GetChildren2Request { path: ustring, watch: boolean, }
}

jute_record! {
    /// `CheckVersionRequest`: the check op of a multi.
    CheckVersionRequest { path: ustring, version: int, }
}

jute_record! {
    /// `ReconfigRequest`: decoded so the server can answer it (zabflow does not reconfigure).
    ReconfigRequest {
        joining_servers: ustring_opt,
        leaving_servers: ustring_opt,
        new_members: ustring_opt,
        cur_config_id: long,
    }
}

jute_record! {
    /// `CheckWatchesRequest`; `watcher_type` (ZooKeeper's `type`) is a `WatcherType`.
    CheckWatchesRequest { path: ustring, watcher_type: int, }
}

jute_record! {
    /// `RemoveWatchesRequest`; `watcher_type` (ZooKeeper's `type`) is a `WatcherType`.
    RemoveWatchesRequest { path: ustring, watcher_type: int, }
}

jute_record! {
    /// `DeleteContainerRequest`: the path as a `buffer`, which is a `ustring` on the wire.
    DeleteContainerRequest { path: ustring, }
}

jute_record! {
    /// `AuthPacket`: `auth_type` (ZooKeeper's `type`) is unused and sent as 0.
    AuthPacket { auth_type: int, scheme: ustring, auth: buffer, }
}

jute_record! {
    /// `SetWatches`: the watches a reconnecting client still holds.
    SetWatches {
        relative_zxid: long,
        data_watches: vector<ustring>,
        exist_watches: vector<ustring>,
        child_watches: vector<ustring>,
    }
}

jute_record! {
    /// `SetWatches2`: `SetWatches` plus persistent and persistent recursive watches.
    SetWatches2 {
        relative_zxid: long,
        data_watches: vector<ustring>,
        exist_watches: vector<ustring>,
        child_watches: vector<ustring>,
        persistent_watches: vector<ustring>,
        persistent_recursive_watches: vector<ustring>,
    }
}

jute_record! {
    /// `GetSASLRequest`: a SASL token (decoded only; zabflow answers it as unsupported).
    GetSASLRequest { token: buffer, }
}

jute_record! {
    /// `GetEphemeralsRequest`.
    GetEphemeralsRequest { prefix_path: ustring, }
}

jute_record! {
    /// `GetAllChildrenNumberRequest`.
    GetAllChildrenNumberRequest { path: ustring, }
}

jute_record! {
    /// `AddWatchRequest`; `mode` is an `AddWatchMode`.
    AddWatchRequest { path: ustring, mode: int, }
}

jute_record! {
    /// `CreateSessionTxn`'s body as a createSession request carries it: the timeout in ms.
    CreateSessionTxn { time_out: int, }
}

/// A client request, typed by its op code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetACLRequest),
    SetAcl(SetACLRequest),
    GetChildren(GetChildrenRequest),
    Sync(SyncRequest),
    Ping,
    GetChildren2(GetChildren2Request),
    Check(CheckVersionRequest),
    Multi(MultiRequest),
    Create2(CreateRequest),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    CreateContainer(CreateRequest),
    DeleteContainer(DeleteContainerRequest),
    CreateTtl(CreateTTLRequest),
    MultiRead(MultiRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    Sasl(GetSASLRequest),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    SetWatches2(SetWatches2),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CreateSession(CreateSessionTxn),
    CloseSession,
}

impl Request {
    /// The op code of this request's `RequestHeader`.
    #[must_use]
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Create2(_) => OpCode::Create2,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CreateSession(_) => OpCode::CreateSession,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Writes the request's body (no header).
    pub fn write_body(&self, writer: &mut Writer) {
        match self {
            Request::Create(body) | Request::Create2(body) | Request::CreateContainer(body) => {
                body.write(writer);
            }
            Request::Delete(body) => body.write(writer),
            Request::Exists(body) => body.write(writer),
            Request::GetData(body) => body.write(writer),
            Request::SetData(body) => body.write(writer),
            Request::GetAcl(body) => body.write(writer),
            Request::SetAcl(body) => body.write(writer),
            Request::GetChildren(body) => body.write(writer),
            Request::Sync(body) => body.write(writer),
            Request::GetChildren2(body) => body.write(writer),
            Request::Check(body) => body.write(writer),
            Request::Multi(body) | Request::MultiRead(body) => body.write(writer),
            Request::Reconfig(body) => body.write(writer),
            Request::CheckWatches(body) => body.write(writer),
            Request::RemoveWatches(body) => body.write(writer),
            Request::DeleteContainer(body) => body.write(writer),
            Request::CreateTtl(body) => body.write(writer),
            Request::Auth(body) => body.write(writer),
            Request::SetWatches(body) => body.write(writer),
            Request::Sasl(body) => body.write(writer),
            Request::GetEphemerals(body) => body.write(writer),
            Request::GetAllChildrenNumber(body) => body.write(writer),
            Request::SetWatches2(body) => body.write(writer),
            Request::AddWatch(body) => body.write(writer),
            Request::CreateSession(body) => body.write(writer),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// Reads the body of a request of op `op_code`.
    ///
    /// # Errors
    /// Any decoding error of the body's record.
    pub fn read_body(op_code: OpCode, reader: &mut Reader<'_>) -> Result<Self> {
        use Record as R;
        Ok(match op_code {
            OpCode::Create => Request::Create(R::read(reader)?),
            OpCode::Delete => Request::Delete(R::read(reader)?),
            OpCode::Exists => Request::Exists(R::read(reader)?),
            OpCode::GetData => Request::GetData(R::read(reader)?),
            OpCode::SetData => Request::SetData(R::read(reader)?),
            OpCode::GetAcl => Request::GetAcl(R::read(reader)?),
            OpCode::SetAcl => Request::SetAcl(R::read(reader)?),
            OpCode::GetChildren => Request::GetChildren(R::read(reader)?),
            OpCode::Sync => Request::Sync(R::read(reader)?),
            OpCode::Ping => Request::Ping,
            OpCode::GetChildren2 => Request::GetChildren2(R::read(reader)?),
            OpCode::Check => Request::Check(R::read(reader)?),
            OpCode::Multi => Request::Multi(R::read(reader)?),
            OpCode::Create2 => Request::Create2(R::read(reader)?),
            OpCode::Reconfig => Request::Reconfig(R::read(reader)?),
            OpCode::CheckWatches => Request::CheckWatches(R::read(reader)?),
            OpCode::RemoveWatches => Request::RemoveWatches(R::read(reader)?),
            OpCode::CreateContainer => Request::CreateContainer(R::read(reader)?),
            OpCode::DeleteContainer => Request::DeleteContainer(R::read(reader)?),
            OpCode::CreateTtl => Request::CreateTtl(R::read(reader)?),
            OpCode::MultiRead => Request::MultiRead(R::read(reader)?),
            OpCode::Auth => Request::Auth(R::read(reader)?),
            OpCode::SetWatches => Request::SetWatches(R::read(reader)?),
            OpCode::Sasl => Request::Sasl(R::read(reader)?),
            OpCode::GetEphemerals => Request::GetEphemerals(R::read(reader)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(R::read(reader)?),
            OpCode::SetWatches2 => Request::SetWatches2(R::read(reader)?),
            OpCode::AddWatch => Request::AddWatch(R::read(reader)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CreateSession => Request::CreateSession(R::read(reader)?),
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::Error => {
                return Err(Error::UnknownOpCode { xid: 0, op: op_code.code() })
            }
        })
    }

    /// Decodes a request frame body (after the length prefix): header, then body.
    ///
    /// # Errors
    /// [`Error::Truncated`] when even the header is incomplete, [`Error::UnknownOpCode`] for
    /// an op code ZooKeeper does not define (or one that is never a request: notification 0,
    /// error -1), [`Error::MalformedRequest`] when the body does not decode.
    pub fn decode(frame_body: &[u8]) -> Result<(RequestHeader, Request)> {
        let mut reader = Reader::new(frame_body);
        let header = RequestHeader::read(&mut reader)?;
        let unknown = Error::UnknownOpCode { xid: header.xid, op: header.op };
        let op_code = OpCode::from_code(header.op).ok_or_else(|| unknown.clone())?;
        match Request::read_body(op_code, &mut reader) {
            Ok(request) => Ok((header, request)),
            Err(Error::UnknownOpCode { .. }) => Err(unknown),
            Err(source) => Err(Error::MalformedRequest {
                xid: header.xid,
                op: header.op,
                source: Box::new(source),
            }),
        }
    }

    /// Appends a whole frame (length, `RequestHeader{xid, op}`, body) to `writer`.
    pub fn write_frame(&self, xid: i32, writer: &mut Writer) {
        let start = writer.begin_frame();
        RequestHeader { xid, op: self.op_code().code() }.write(writer);
        self.write_body(writer);
        writer.end_frame(start);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jute::hex;
    use crate::jute::multi::tests::arbitrary_multi_request;
    use crate::jute::record::Id;
    use proptest::prelude::*;

    fn arbitrary_create() -> BoxedStrategy<Request> {
        prop_oneof![
            CreateRequest::arbitrary().prop_map(Request::Create),
            CreateRequest::arbitrary().prop_map(Request::Create2),
            CreateRequest::arbitrary().prop_map(Request::CreateContainer),
            CreateTTLRequest::arbitrary().prop_map(Request::CreateTtl),
            DeleteContainerRequest::arbitrary().prop_map(Request::DeleteContainer),
            CreateSessionTxn::arbitrary().prop_map(Request::CreateSession),
            Just(Request::Ping),
            Just(Request::WhoAmI),
            Just(Request::CloseSession),
        ]
        .boxed()
    }

    fn arbitrary_read() -> BoxedStrategy<Request> {
        prop_oneof![
            DeleteRequest::arbitrary().prop_map(Request::Delete),
            ExistsRequest::arbitrary().prop_map(Request::Exists),
            GetDataRequest::arbitrary().prop_map(Request::GetData),
            SetDataRequest::arbitrary().prop_map(Request::SetData),
            GetACLRequest::arbitrary().prop_map(Request::GetAcl),
            SetACLRequest::arbitrary().prop_map(Request::SetAcl),
            GetChildrenRequest::arbitrary().prop_map(Request::GetChildren),
            SyncRequest::arbitrary().prop_map(Request::Sync),
            GetChildren2Request::arbitrary().prop_map(Request::GetChildren2),
            CheckVersionRequest::arbitrary().prop_map(Request::Check),
        ]
        .boxed()
    }

    fn arbitrary_other() -> BoxedStrategy<Request> {
        prop_oneof![
            arbitrary_multi_request().prop_map(Request::Multi),
            arbitrary_multi_request().prop_map(Request::MultiRead),
            ReconfigRequest::arbitrary().prop_map(Request::Reconfig),
            CheckWatchesRequest::arbitrary().prop_map(Request::CheckWatches),
            RemoveWatchesRequest::arbitrary().prop_map(Request::RemoveWatches),
            AuthPacket::arbitrary().prop_map(Request::Auth),
            SetWatches::arbitrary().prop_map(Request::SetWatches),
            GetSASLRequest::arbitrary().prop_map(Request::Sasl),
            GetEphemeralsRequest::arbitrary().prop_map(Request::GetEphemerals),
            GetAllChildrenNumberRequest::arbitrary().prop_map(Request::GetAllChildrenNumber),
            SetWatches2::arbitrary().prop_map(Request::SetWatches2),
            AddWatchRequest::arbitrary().prop_map(Request::AddWatch),
        ]
        .boxed()
    }

    pub(crate) fn arbitrary_request() -> BoxedStrategy<Request> {
        prop_oneof![arbitrary_create(), arbitrary_read(), arbitrary_other()].boxed()
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_create_request() {
        let request = Request::Create(CreateRequest {
            path: "/app".to_owned(),
            data: Some(b"hi".to_vec()),
            acl: vec![ACL::open_unsafe()],
            flags: 1,
        });
        let mut writer = Writer::new();
        request.write_frame(7, &mut writer);
        let expected = hex("00000035                  frame length 53
             00000007 00000001         RequestHeader xid 7, type create(1)
             00000004 2f617070         path \"/app\"
             00000002 6869             data \"hi\"
             00000001                  acl: 1 entry
             0000001f                  perms ALL (31)
             00000005 776f726c64       scheme \"world\"
             00000006 616e796f6e65     id \"anyone\"
             00000001                  flags EPHEMERAL (1)");
        assert_eq!(writer.as_bytes(), expected);
        let (header, decoded) = Request::decode(&expected[4..]).expect("decodes");
        assert_eq!(header, RequestHeader { xid: 7, op: 1 });
        assert_eq!(decoded, request);
    }

    #[test]
    fn unknown_and_malformed_carry_the_xid() {
        let unknown = hex("0000002a 0000000a");
        let error = Request::decode(&unknown).unwrap_err();
        assert_eq!(error, Error::UnknownOpCode { xid: 42, op: 10 });
        assert_eq!(error.reply_error_code(), Some(super::super::ErrorCode::Unimplemented));
        let notification = hex("0000002a 00000000");
        assert_eq!(Request::decode(&notification).unwrap_err().xid(), Some(42));
        let truncated = hex("0000002b 00000004 00000005 2f61");
        let error = Request::decode(&truncated).unwrap_err();
        assert!(matches!(error, Error::MalformedRequest { xid: 43, op: 4, .. }));
        assert_eq!(error.reply_error_code(), Some(super::super::ErrorCode::MarshallingError));
        assert!(matches!(Request::decode(&[0, 0, 0]), Err(Error::Truncated { .. })));
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn null_data_stays_null() {
        let request = SetDataRequest { path: "/a".to_owned(), data: None, version: -1 };
        assert_eq!(request.to_bytes(), hex("00000002 2f61 ffffffff ffffffff"));
        let id = Id { scheme: "digest".to_owned(), id: "u:x".to_owned() };
        assert_eq!(Id::from_bytes(&id.to_bytes()), Ok(id));
    }

    proptest! {
        #[test]
        fn requests_round_trip(request in arbitrary_request(), xid in any::<i32>()) {
            let mut writer = Writer::new();
            request.write_frame(xid, &mut writer);
            let bytes = writer.as_bytes();
            let (header, decoded) = Request::decode(&bytes[4..]).expect("decodes");
            prop_assert_eq!(header, RequestHeader { xid, op: request.op_code().code() });
            prop_assert_eq!(&decoded, &request);
            for cut in 4..bytes.len() {
                prop_assert!(Request::decode(&bytes[4..cut]).is_err());
            }
        }

        #[test]
        fn request_garbage_never_panics(
            op in prop_oneof![
                proptest::sample::select(OpCode::ALL).prop_map(OpCode::code),
                any::<i32>(),
            ],
            body in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let mut bytes = RequestHeader { xid: 1, op }.to_bytes();
            bytes.extend_from_slice(&body);
            match Request::decode(&bytes) {
                Ok((_, Request::SetWatches(watches))) => {
                    prop_assert!(watches.data_watches.capacity() <= body.len());
                }
                Ok((_, Request::Create(create))) => {
                    prop_assert!(create.acl.capacity() <= body.len());
                    prop_assert!(create.data.map_or(0, |data| data.capacity()) <= body.len());
                }
                Ok(_) => {}
                Err(error) => prop_assert!(error.xid().is_some() || bytes.len() < 8),
            }
        }
    }
}
