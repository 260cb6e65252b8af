//! Server replies: each op's response record, and [`Response`], the typed union of them.
//!
//! ```text
//! reply-frame  = length:int ReplyHeader(xid, zxid, err) [body]
//! body         = present only when err = 0 (multi: always), and then:
//!
//! create 1                                   = CreateResponse = path:ustring
//! create2 15, createTTL 21, createContainer 19 = Create2Response = path:ustring stat:Stat
//! exists 3                                   = ExistsResponse = stat:Stat
//! getData 4, reconfig 16                     = GetDataResponse = data:buffer stat:Stat
//! setData 5                                  = SetDataResponse = stat:Stat
//! getACL 6                                   = GetACLResponse = acl:vector<ACL> stat:Stat
//! setACL 7                                   = SetACLResponse = stat:Stat
//! getChildren 8                              = GetChildrenResponse = children:vector<ustring>
//! sync 9                                     = SyncResponse = path:ustring
//! getChildren2 12                            = GetChildren2Response =
//!                                              children:vector<ustring> stat:Stat
//! multi 14, multiRead 22                     = MultiResponse      ; see `multi`
//! sasl 102                                   = SetSASLResponse = token:buffer
//! getEphemerals 103                          = GetEphemeralsResponse = ephemerals:vector<ustring>
//! getAllChildrenNumber 104                   = GetAllChildrenNumberResponse = totalNumber:int
//! addWatch 106                               = ErrorResponse = err:int   ; always 0
//! whoAmI 107                                 = WhoAmIResponse = clientInfo:vector<ClientInfo>
//! notification (xid -1)                      = WatcherEvent
//! delete, deleteContainer, ping (xid -2), auth (xid -4), setWatches, setWatches2 (xid -8),
//! checkWatches, removeWatches, closeSession  = no body
//! ```
//!
//! The reply does not name its op: a client decodes the body with the op code it sent under
//! that xid ([`Response::read`]).

use super::codes::OpCode;
use super::multi::MultiResponse;
use super::reader::Reader;
use super::record::{
    jute_record, ClientInfo, ErrorResponse, Record, ReplyHeader, Stat, WatcherEvent, ACL,
};
use super::writer::Writer;
use crate::error::{Error, Result};

jute_record! {
    /// `CreateResponse`: the created path (with its sequence suffix, if any).
    CreateResponse { path: ustring, }
}

jute_record! {
    /// `Create2Response`: the created path and the new node's `Stat`.
    Create2Response { path: ustring, stat: record<Stat>, }
}

jute_record! {
    /// `ExistsResponse`.
    ExistsResponse { stat: record<Stat>, }
}

jute_record! {
    /// `GetDataResponse`; `data` is `None` for a node created with null data.
    GetDataResponse { data: buffer_opt, stat: record<Stat>, }
}

jute_record! {
    /// `SetDataResponse`.
    SetDataResponse { stat: record<Stat>, }
}

jute_record! {
    /// `GetACLResponse`.
    GetACLResponse { acl: vector<ACL>, stat: record<Stat>, }
}

jute_record! {
    /// `SetACLResponse`.
    SetACLResponse { stat: record<Stat>, }
}

jute_record! {
    /// `GetChildrenResponse`: child names, not paths.
    GetChildrenResponse { children: vector<ustring>, }
}

jute_record! {
    /// `GetChildren2Response`.
    GetChildren2Response { children: vector<ustring>, stat: record<Stat>, }
}

jute_record! {
    /// `SyncResponse`: the path the client synced.
    SyncResponse { path: ustring, }
}

jute_record! {
    /// `SetSASLResponse`.
    SetSASLResponse { token: buffer, }
}

jute_record! {
    /// `GetEphemeralsResponse`: paths of the session's ephemeral nodes.
    GetEphemeralsResponse { ephemerals: vector<ustring>, }
}

jute_record! {
    /// `GetAllChildrenNumberResponse`: the number of descendants.
    GetAllChildrenNumberResponse { total_number: int, }
}

jute_record! {
    /// `WhoAmIResponse`: the session's identities.
    WhoAmIResponse { client_info: vector<ClientInfo>, }
}

/// The body of a successful reply, typed by the op it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, deleteContainer, ping, auth, setWatches(2), checkWatches,
    /// removeWatches, closeSession.
    Empty,
    Create(CreateResponse),
    /// create2, createTTL and createContainer.
    Create2(Create2Response),
    Exists(ExistsResponse),
    /// getData, and reconfig (the new configuration as data).
    GetData(GetDataResponse),
    SetData(SetDataResponse),
    GetAcl(GetACLResponse),
    SetAcl(SetACLResponse),
    GetChildren(GetChildrenResponse),
    Sync(SyncResponse),
    GetChildren2(GetChildren2Response),
    /// multi and multiRead.
    Multi(MultiResponse),
    Sasl(SetSASLResponse),
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// addWatch: ZooKeeper sends `ErrorResponse(0)`.
    AddWatch(ErrorResponse),
    WhoAmI(WhoAmIResponse),
    /// A watch notification (xid -1).
    Notification(WatcherEvent),
}

impl Response {
    /// An op code whose reply carries this body (the first, where several share it).
    #[must_use]
    pub fn op_code(&self) -> OpCode {
        match self {
            Response::Empty => OpCode::Delete,
            Response::Create(_) => OpCode::Create,
            Response::Create2(_) => OpCode::Create2,
            Response::Exists(_) => OpCode::Exists,
            Response::GetData(_) => OpCode::GetData,
            Response::SetData(_) => OpCode::SetData,
            Response::GetAcl(_) => OpCode::GetAcl,
            Response::SetAcl(_) => OpCode::SetAcl,
            Response::GetChildren(_) => OpCode::GetChildren,
            Response::Sync(_) => OpCode::Sync,
            Response::GetChildren2(_) => OpCode::GetChildren2,
            Response::Multi(_) => OpCode::Multi,
            Response::Sasl(_) => OpCode::Sasl,
            Response::GetEphemerals(_) => OpCode::GetEphemerals,
            Response::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Response::AddWatch(_) => OpCode::AddWatch,
            Response::WhoAmI(_) => OpCode::WhoAmI,
            Response::Notification(_) => OpCode::Notification,
        }
    }

    /// Writes the body (nothing for [`Response::Empty`]).
    pub fn write_body(&self, writer: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Create(body) => body.write(writer),
            Response::Create2(body) => body.write(writer),
            Response::Exists(body) => body.write(writer),
            Response::GetData(body) => body.write(writer),
            Response::SetData(body) => body.write(writer),
            Response::GetAcl(body) => body.write(writer),
            Response::SetAcl(body) => body.write(writer),
            Response::GetChildren(body) => body.write(writer),
            Response::Sync(body) => body.write(writer),
            Response::GetChildren2(body) => body.write(writer),
            Response::Multi(body) => body.write(writer),
            Response::Sasl(body) => body.write(writer),
            Response::GetEphemerals(body) => body.write(writer),
            Response::GetAllChildrenNumber(body) => body.write(writer),
            Response::AddWatch(body) => body.write(writer),
            Response::WhoAmI(body) => body.write(writer),
            Response::Notification(body) => body.write(writer),
        }
    }

    /// Reads the body of a successful reply to a request of op `op_code`.
    ///
    /// # Errors
    /// [`Error::NoResponseFor`] for check and error, which ZooKeeper never answers with a
    /// body of their own; otherwise any decoding error of the body.
    pub fn read(op_code: OpCode, reader: &mut Reader<'_>) -> Result<Self> {
        use Record as R;
        Ok(match op_code {
            OpCode::Delete | OpCode::DeleteContainer | OpCode::Ping | OpCode::Auth => {
                Response::Empty
            }
            OpCode::SetWatches | OpCode::SetWatches2 | OpCode::CheckWatches => Response::Empty,
            OpCode::RemoveWatches | OpCode::CloseSession | OpCode::CreateSession => Response::Empty,
            OpCode::Create => Response::Create(R::read(reader)?),
            OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
                Response::Create2(R::read(reader)?)
            }
            OpCode::Exists => Response::Exists(R::read(reader)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(R::read(reader)?),
            OpCode::SetData => Response::SetData(R::read(reader)?),
            OpCode::GetAcl => Response::GetAcl(R::read(reader)?),
            OpCode::SetAcl => Response::SetAcl(R::read(reader)?),
            OpCode::GetChildren => Response::GetChildren(R::read(reader)?),
            OpCode::Sync => Response::Sync(R::read(reader)?),
            OpCode::GetChildren2 => Response::GetChildren2(R::read(reader)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(R::read(reader)?),
            OpCode::Sasl => Response::Sasl(R::read(reader)?),
            OpCode::GetEphemerals => Response::GetEphemerals(R::read(reader)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(R::read(reader)?),
            OpCode::AddWatch => Response::AddWatch(R::read(reader)?),
            OpCode::WhoAmI => Response::WhoAmI(R::read(reader)?),
            OpCode::Notification => Response::Notification(R::read(reader)?),
            OpCode::Check | OpCode::Error => {
                return Err(Error::NoResponseFor { op: op_code.code() })
            }
        })
    }

    /// Appends a whole reply frame: length, `header`, and `body` unless it is `None`.
    pub fn write_frame(header: &ReplyHeader, body: Option<&Response>, writer: &mut Writer) {
        let start = writer.begin_frame();
        header.write(writer);
        if let Some(body) = body {
            body.write_body(writer);
        }
        writer.end_frame(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::hex;
    use crate::jute::multi::tests::arbitrary_multi_response;
    use proptest::prelude::*;

    fn arbitrary_stat_responses() -> BoxedStrategy<Response> {
        prop_oneof![
            Just(Response::Empty),
            CreateResponse::arbitrary().prop_map(Response::Create),
            Create2Response::arbitrary().prop_map(Response::Create2),
            ExistsResponse::arbitrary().prop_map(Response::Exists),
            GetDataResponse::arbitrary().prop_map(Response::GetData),
            SetDataResponse::arbitrary().prop_map(Response::SetData),
            GetACLResponse::arbitrary().prop_map(Response::GetAcl),
            SetACLResponse::arbitrary().prop_map(Response::SetAcl),
            GetChildrenResponse::arbitrary().prop_map(Response::GetChildren),
        ]
        .boxed()
    }

    fn arbitrary_response() -> BoxedStrategy<Response> {
        let others = prop_oneof![
            SyncResponse::arbitrary().prop_map(Response::Sync),
            GetChildren2Response::arbitrary().prop_map(Response::GetChildren2),
            arbitrary_multi_response().prop_map(Response::Multi),
            SetSASLResponse::arbitrary().prop_map(Response::Sasl),
            GetEphemeralsResponse::arbitrary().prop_map(Response::GetEphemerals),
            GetAllChildrenNumberResponse::arbitrary().prop_map(Response::GetAllChildrenNumber),
            ErrorResponse::arbitrary().prop_map(Response::AddWatch),
            WhoAmIResponse::arbitrary().prop_map(Response::WhoAmI),
            WatcherEvent::arbitrary().prop_map(Response::Notification),
        ];
        prop_oneof![arbitrary_stat_responses(), others].boxed()
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_get_data_response() {
        let stat = Stat {
            czxid: 0x1_0000_0003,
            mzxid: 0x1_0000_0005,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_500,
            version: 2,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 3,
            num_children: 0,
            pzxid: 0x1_0000_0003,
        };
        let body = Response::GetData(GetDataResponse { data: Some(b"abc".to_vec()), stat });
        let header = ReplyHeader { xid: 5, zxid: 0x1_0000_0007, err: 0 };
        let mut writer = Writer::new();
        Response::write_frame(&header, Some(&body), &mut writer);
        let expected = hex("0000005b                  frame length 91
             00000005                  ReplyHeader xid 5
             0000000100000007          zxid
             00000000                  err Ok
             00000003 616263           data \"abc\"
             0000000100000003          czxid
             0000000100000005          mzxid
             0000018bcfe56800          ctime 1700000000000 ms
             0000018bcfe569f4          mtime 1700000000500 ms
             00000002                  version 2
             00000000                  cversion
             00000000                  aversion
             0000000000000000          ephemeralOwner
             00000003                  dataLength 3
             00000000                  numChildren
             0000000100000003          pzxid");
        assert_eq!(writer.as_bytes(), expected);
        let mut reader = Reader::new(&expected[4..]);
        assert_eq!(ReplyHeader::read(&mut reader), Ok(header));
        assert_eq!(Response::read(OpCode::GetData, &mut reader), Ok(body));
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn golden_notification_and_error_reply() {
        let header = ReplyHeader { xid: -1, zxid: -1, err: 0 };
        let event = WatcherEvent { event_type: 2, state: 3, path: "/x".to_owned() };
        let mut writer = Writer::new();
        Response::write_frame(&header, Some(&Response::Notification(event)), &mut writer);
        let expected =
            hex("0000001e ffffffff ffffffffffffffff 00000000   length 30, xid -1, zxid -1, err 0
             00000002 00000003 00000002 2f78             NodeDeleted, SyncConnected, \"/x\"");
        assert_eq!(writer.as_bytes(), expected);
        writer.clear();
        let no_node = ReplyHeader { xid: 9, zxid: 0x10, err: -101 };
        Response::write_frame(&no_node, None, &mut writer);
        assert_eq!(writer.as_bytes(), hex("00000010 00000009 0000000000000010 ffffff9b"));
    }

    proptest! {
        #[test]
        fn responses_round_trip(response in arbitrary_response()) {
            let mut writer = Writer::new();
            response.write_body(&mut writer);
            let bytes = writer.as_bytes();
            let decoded = Response::read(response.op_code(), &mut Reader::new(bytes));
            prop_assert_eq!(decoded, Ok(response.clone()));
            for cut in 0..bytes.len() {
                let cut_bytes = &bytes[..cut];
                prop_assert!(Response::read(response.op_code(), &mut Reader::new(cut_bytes))
                    .is_err());
            }
        }

        #[test]
        fn response_garbage_never_panics(
            op in proptest::sample::select(OpCode::ALL),
            bytes in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            match Response::read(op, &mut Reader::new(&bytes)) {
                Ok(Response::GetChildren(children)) => {
                    prop_assert!(children.children.capacity() <= bytes.len());
                }
                Ok(Response::GetAcl(acl)) => prop_assert!(acl.acl.capacity() <= bytes.len()),
                _ => {}
            }
        }
    }
}
