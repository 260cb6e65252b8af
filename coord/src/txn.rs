//! `Txn`: the transactions that writes become, as the txn log stores them.
//!
//! The preparer ([`crate::prep`]) turns every write request into one txn, and the tree
//! ([`crate::data_tree`]) applies txns in zxid order; the log between them stores exactly
//! these bytes. The records and their type numbers are ZooKeeper's (`zookeeper.jute`'s
//! `org.apache.zookeeper.txn` module), in jute's binary encoding:
//!
//! ```text
//! entry              = TxnHeader body
//! TxnHeader          = clientId:long cxid:int zxid:long time:long type:int
//! body               = the record named below for the header's type
//!
//! create 1, create2 15 = CreateTxn = path:ustring data:buffer acl:vector<ACL>
//!                        ephemeral:boolean parentCVersion:int
//! createContainer 19 = CreateContainerTxn = path:ustring data:buffer acl:vector<ACL>
//!                      parentCVersion:int
//! createTTL 21       = CreateTTLTxn = path:ustring data:buffer acl:vector<ACL>
//!                      parentCVersion:int ttl:long
//! delete 2, deleteContainer 20 = DeleteTxn = path:ustring
//! setData 5          = SetDataTxn = path:ustring data:buffer version:int
//! setACL 7           = SetACLTxn = path:ustring acl:vector<ACL> version:int
//! check 13           = CheckVersionTxn = path:ustring version:int
//! error -1           = ErrorTxn = err:int
//! multi 14           = MultiTxn = txns:vector<Txn>
//!   Txn              = type:int data:buffer   ; data holds the sub-txn's body
//! createSession -10  = CreateSessionTxn = timeOut:int
//! closeSession -11   = CloseSessionTxn = paths2Delete:vector<ustring>
//! ```
//!
//! `parentCVersion` is the parent's count of child creations after this create (ZooKeeper
//! stores that count as the parent's `cversion`; clients see a value derived from it). A
//! failed write is an `ErrorTxn` under a header of type error, and still takes a zxid. A
//! failed multi keeps its header type multi: the ops before the failure keep their own txns
//! (the tree applies them as rolled back), the failing op and the ops after it are error
//! txns. `data` keeps null (-1) apart from empty, as znode data does.

use zabflow_net::jute::{CreateSessionTxn, OpCode, Reader, Record, Writer, ACL};

use crate::error::{Error, Result};

/// `TxnHeader`: who asked, under which zxid and at what time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxnHeader {
    /// ZooKeeper's `clientId`: the session id (0 for the container reaper).
    pub client_id: i64,
    /// The request's xid.
    pub cxid: i32,
    pub zxid: i64,
    /// ZooKeeper's `time`: the leader's wall clock when the txn was prepared, in ms.
    pub time_ms: i64,
    /// ZooKeeper's `type`: the [`Txn::op_code`] number.
    pub txn_type: i32,
}

/// `CreateTxn`: create and create2 (persistent, ephemeral, sequential already resolved).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTxn {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<ACL>,
    /// Whether the node belongs to the header's session.
    pub ephemeral: bool,
    pub parent_cversion: i32,
}

/// `CreateContainerTxn`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateContainerTxn {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<ACL>,
    pub parent_cversion: i32,
}

/// `CreateTTLTxn`; `ttl` in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTTLTxn {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<ACL>,
    pub parent_cversion: i32,
    pub ttl: i64,
}

/// `DeleteTxn`: delete and deleteContainer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteTxn {
    pub path: String,
}

/// `SetDataTxn`; `version` is the node's new version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetDataTxn {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub version: i32,
}

/// `SetACLTxn`; `version` is the node's new `aversion`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetACLTxn {
    pub path: String,
    pub acl: Vec<ACL>,
    pub version: i32,
}

/// `CheckVersionTxn`: the check op of a multi.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckVersionTxn {
    pub path: String,
    pub version: i32,
}

/// `ErrorTxn`: a failed write, or a failed or rolled-back op of a multi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorTxn {
    /// An `ErrorCode` number.
    pub err: i32,
}

/// `CloseSessionTxn`: the ephemerals the session owned when it was prepared for closing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloseSessionTxn {
    pub paths2_delete: Vec<String>,
}

/// One transaction, typed by its txn type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    Create(CreateTxn),
    Create2(CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTTLTxn),
    Delete(DeleteTxn),
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    SetAcl(SetACLTxn),
    Check(CheckVersionTxn),
    Error(ErrorTxn),
    Multi(Vec<Txn>),
    CreateSession(CreateSessionTxn),
    CloseSession(CloseSessionTxn),
}

fn write_acl(writer: &mut Writer, acl: &[ACL]) {
    writer.write_vector(acl, |writer, entry| entry.write(writer));
}

fn read_acl(reader: &mut Reader<'_>) -> Result<Vec<ACL>> {
    Ok(reader.read_vector(ACL::WIRE_BYTES_MIN, ACL::read)?)
}

impl Txn {
    /// The txn type: the op code ZooKeeper puts in the `TxnHeader`.
    #[must_use]
    pub fn op_code(&self) -> OpCode {
        match self {
            Txn::Create(_) => OpCode::Create,
            Txn::Create2(_) => OpCode::Create2,
            Txn::CreateContainer(_) => OpCode::CreateContainer,
            Txn::CreateTtl(_) => OpCode::CreateTtl,
            Txn::Delete(_) => OpCode::Delete,
            Txn::DeleteContainer(_) => OpCode::DeleteContainer,
            Txn::SetData(_) => OpCode::SetData,
            Txn::SetAcl(_) => OpCode::SetAcl,
            Txn::Check(_) => OpCode::Check,
            Txn::Error(_) => OpCode::Error,
            Txn::Multi(_) => OpCode::Multi,
            Txn::CreateSession(_) => OpCode::CreateSession,
            Txn::CloseSession(_) => OpCode::CloseSession,
        }
    }

    /// The error code of an error txn, or of the first failed op of a multi.
    #[must_use]
    pub fn error_code(&self) -> Option<i32> {
        match self {
            Txn::Error(error) => Some(error.err),
            Txn::Multi(txns) => txns.iter().find_map(Txn::error_code),
            _ => None,
        }
    }

    /// Writes the body (no header).
    pub fn write_body(&self, writer: &mut Writer) {
        match self {
            Txn::Create(txn) | Txn::Create2(txn) => {
                writer.write_ustring(&txn.path);
                writer.write_buffer_opt(txn.data.as_deref());
                write_acl(writer, &txn.acl);
                writer.write_bool(txn.ephemeral);
                writer.write_int(txn.parent_cversion);
            }
            Txn::CreateContainer(txn) => {
                writer.write_ustring(&txn.path);
                writer.write_buffer_opt(txn.data.as_deref());
                write_acl(writer, &txn.acl);
                writer.write_int(txn.parent_cversion);
            }
            Txn::CreateTtl(txn) => {
                writer.write_ustring(&txn.path);
                writer.write_buffer_opt(txn.data.as_deref());
                write_acl(writer, &txn.acl);
                writer.write_int(txn.parent_cversion);
                writer.write_long(txn.ttl);
            }
            Txn::Delete(txn) | Txn::DeleteContainer(txn) => writer.write_ustring(&txn.path),
            Txn::SetData(txn) => {
                writer.write_ustring(&txn.path);
                writer.write_buffer_opt(txn.data.as_deref());
                writer.write_int(txn.version);
            }
            Txn::SetAcl(txn) => {
                writer.write_ustring(&txn.path);
                write_acl(writer, &txn.acl);
                writer.write_int(txn.version);
            }
            Txn::Check(txn) => {
                writer.write_ustring(&txn.path);
                writer.write_int(txn.version);
            }
            Txn::Error(txn) => writer.write_int(txn.err),
            Txn::Multi(txns) => write_multi(writer, txns),
            Txn::CreateSession(txn) => txn.write(writer),
            Txn::CloseSession(txn) => writer.write_ustring_vector(&txn.paths2_delete),
        }
    }

    /// Reads the body of a txn of type `txn_type`.
    ///
    /// # Errors
    /// [`Error::UnknownTxnType`] for a type no txn has, [`Error::Decode`] for bad bytes,
    /// [`Error::NotAMultiOp`] for a multi holding a multi or a session txn.
    pub fn read_body(txn_type: i32, reader: &mut Reader<'_>) -> Result<Self> {
        let op_code = OpCode::from_code(txn_type).ok_or(Error::UnknownTxnType { txn_type })?;
        Ok(match op_code {
            OpCode::Create => Txn::Create(read_create(reader)?),
            OpCode::Create2 => Txn::Create2(read_create(reader)?),
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn {
                path: reader.read_ustring()?,
                data: reader.read_buffer_opt()?,
                acl: read_acl(reader)?,
                parent_cversion: reader.read_int()?,
            }),
            OpCode::CreateTtl => Txn::CreateTtl(CreateTTLTxn {
                path: reader.read_ustring()?,
                data: reader.read_buffer_opt()?,
                acl: read_acl(reader)?,
                parent_cversion: reader.read_int()?,
                ttl: reader.read_long()?,
            }),
            OpCode::Delete => Txn::Delete(DeleteTxn { path: reader.read_ustring()? }),
            OpCode::DeleteContainer => {
                Txn::DeleteContainer(DeleteTxn { path: reader.read_ustring()? })
            }
            OpCode::SetData => Txn::SetData(SetDataTxn {
                path: reader.read_ustring()?,
                data: reader.read_buffer_opt()?,
                version: reader.read_int()?,
            }),
            OpCode::SetAcl => Txn::SetAcl(SetACLTxn {
                path: reader.read_ustring()?,
                acl: read_acl(reader)?,
                version: reader.read_int()?,
            }),
            OpCode::Check => Txn::Check(CheckVersionTxn {
                path: reader.read_ustring()?,
                version: reader.read_int()?,
            }),
            OpCode::Error => Txn::Error(ErrorTxn { err: reader.read_int()? }),
            OpCode::Multi => Txn::Multi(read_multi(reader)?),
            OpCode::CreateSession => Txn::CreateSession(CreateSessionTxn::read(reader)?),
            OpCode::CloseSession => {
                Txn::CloseSession(CloseSessionTxn { paths2_delete: reader.read_ustring_vector()? })
            }
            _ => return Err(Error::UnknownTxnType { txn_type }),
        })
    }

    /// Whether a multi may hold this txn.
    fn is_multi_op(&self) -> bool {
        !matches!(self, Txn::Multi(_) | Txn::CreateSession(_) | Txn::CloseSession(_))
    }
}

fn read_create(reader: &mut Reader<'_>) -> Result<CreateTxn> {
    Ok(CreateTxn {
        path: reader.read_ustring()?,
        data: reader.read_buffer_opt()?,
        acl: read_acl(reader)?,
        ephemeral: reader.read_bool()?,
        parent_cversion: reader.read_int()?,
    })
}

/// `MultiTxn`: each sub-txn as `type:int data:buffer`, its body encoded inside the buffer.
fn write_multi(writer: &mut Writer, txns: &[Txn]) {
    writer.write_vector(txns, |writer, txn| {
        assert!(txn.is_multi_op(), "a multi cannot hold {:?}", txn.op_code());
        writer.write_int(txn.op_code().code());
        let mut body = Writer::new();
        txn.write_body(&mut body);
        writer.write_buffer(body.as_bytes());
    });
}

/// Smallest encoding of one `Txn` inside a `MultiTxn`: its type and an empty buffer.
const MULTI_ENTRY_BYTES_MIN: usize = 8;

fn read_multi(reader: &mut Reader<'_>) -> Result<Vec<Txn>> {
    let mut failure = None;
    let txns = reader.read_vector(MULTI_ENTRY_BYTES_MIN, |reader| {
        let txn_type = reader.read_int()?;
        let body = reader.read_buffer_slice()?.unwrap_or_default();
        match Txn::read_body(txn_type, &mut Reader::new(body)) {
            Ok(txn) if txn.is_multi_op() => Ok(Some(txn)),
            Ok(_) => {
                failure.get_or_insert(Error::NotAMultiOp { txn_type });
                Ok(None)
            }
            Err(error) => {
                failure.get_or_insert(error);
                Ok(None)
            }
        }
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(txns.into_iter().flatten().collect()),
    }
}

impl TxnHeader {
    /// Appends the header's fields.
    pub fn write(&self, writer: &mut Writer) {
        writer.write_long(self.client_id);
        writer.write_int(self.cxid);
        writer.write_long(self.zxid);
        writer.write_long(self.time_ms);
        writer.write_int(self.txn_type);
    }

    /// Reads a header.
    ///
    /// # Errors
    /// [`Error::Decode`] when the bytes end early.
    pub fn read(reader: &mut Reader<'_>) -> Result<Self> {
        Ok(TxnHeader {
            client_id: reader.read_long()?,
            cxid: reader.read_int()?,
            zxid: reader.read_long()?,
            time_ms: reader.read_long()?,
            txn_type: reader.read_int()?,
        })
    }
}

/// Appends one log entry: `header` then `txn`'s body.
///
/// # Panics
/// If the header's type is not the txn's: the caller built an inconsistent entry.
pub fn write_entry(header: &TxnHeader, txn: &Txn, writer: &mut Writer) {
    assert_eq!(header.txn_type, txn.op_code().code(), "txn header type mismatch");
    header.write(writer);
    txn.write_body(writer);
}

/// Decodes one log entry written by [`write_entry`].
///
/// # Errors
/// As [`TxnHeader::read`] and [`Txn::read_body`].
pub fn read_entry(bytes: &[u8]) -> Result<(TxnHeader, Txn)> {
    let mut reader = Reader::new(bytes);
    let header = TxnHeader::read(&mut reader)?;
    let txn = Txn::read_body(header.txn_type, &mut reader)?;
    Ok((header, txn))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use zabflow_net::jute::Id;

    fn arbitrary_acl() -> impl Strategy<Value = Vec<ACL>> {
        let entry = (any::<i32>(), "[a-z]{0,6}", "\\PC{0,8}")
            .prop_map(|(perms, scheme, id)| ACL { perms, id: Id { scheme, id } });
        proptest::collection::vec(entry, 0..3)
    }

    fn arbitrary_data() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16))
    }

    fn arbitrary_create() -> impl Strategy<Value = Txn> {
        let fields = ("\\PC{0,10}", arbitrary_data(), arbitrary_acl(), any::<i32>());
        (fields, any::<bool>(), any::<i64>(), 0..4u8).prop_map(
            |((path, data, acl, parent_cversion), ephemeral, ttl, kind)| match kind {
                0 => Txn::Create(CreateTxn { path, data, acl, ephemeral, parent_cversion }),
                1 => Txn::Create2(CreateTxn { path, data, acl, ephemeral, parent_cversion }),
                2 => Txn::CreateContainer(CreateContainerTxn { path, data, acl, parent_cversion }),
                _ => Txn::CreateTtl(CreateTTLTxn { path, data, acl, parent_cversion, ttl }),
            },
        )
    }

    fn arbitrary_simple() -> impl Strategy<Value = Txn> {
        prop_oneof![
            arbitrary_create(),
            "\\PC{0,10}".prop_map(|path| Txn::Delete(DeleteTxn { path })),
            "\\PC{0,10}".prop_map(|path| Txn::DeleteContainer(DeleteTxn { path })),
            ("\\PC{0,10}", arbitrary_data(), any::<i32>())
                .prop_map(|(path, data, version)| Txn::SetData(SetDataTxn { path, data, version })),
            ("\\PC{0,10}", arbitrary_acl(), any::<i32>())
                .prop_map(|(path, acl, version)| Txn::SetAcl(SetACLTxn { path, acl, version })),
            ("\\PC{0,10}", any::<i32>())
                .prop_map(|(path, version)| Txn::Check(CheckVersionTxn { path, version })),
            any::<i32>().prop_map(|err| Txn::Error(ErrorTxn { err })),
        ]
    }

    pub(crate) fn arbitrary_txn() -> impl Strategy<Value = Txn> {
        prop_oneof![
            arbitrary_simple(),
            proptest::collection::vec(arbitrary_simple(), 0..4).prop_map(Txn::Multi),
            any::<i32>().prop_map(|time_out| Txn::CreateSession(CreateSessionTxn { time_out })),
            proptest::collection::vec("\\PC{0,8}", 0..3)
                .prop_map(|paths2_delete| Txn::CloseSession(CloseSessionTxn { paths2_delete })),
        ]
    }

    #[test]
    fn golden_delete_entry() {
        let header = TxnHeader {
            client_id: 1,
            cxid: 2,
            zxid: 3,
            time_ms: 4,
            txn_type: OpCode::Delete.code(),
        };
        let mut writer = Writer::new();
        write_entry(&header, &Txn::Delete(DeleteTxn { path: "/a".to_owned() }), &mut writer);
        let mut expected = Vec::new();
        expected.extend_from_slice(&1i64.to_be_bytes());
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&3i64.to_be_bytes());
        expected.extend_from_slice(&4i64.to_be_bytes());
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 2, b'/', b'a']);
        assert_eq!(writer.as_bytes(), expected);
    }

    #[test]
    fn unknown_and_nested_types_are_refused() {
        let header = TxnHeader { txn_type: 99, ..TxnHeader::default() };
        let mut writer = Writer::new();
        header.write(&mut writer);
        assert_eq!(read_entry(writer.as_bytes()), Err(Error::UnknownTxnType { txn_type: 99 }));
        let mut writer = Writer::new();
        TxnHeader { txn_type: OpCode::Multi.code(), ..TxnHeader::default() }.write(&mut writer);
        writer.write_int(1);
        writer.write_int(OpCode::Multi.code());
        writer.write_buffer(&0i32.to_be_bytes());
        assert_eq!(
            read_entry(writer.as_bytes()),
            Err(Error::NotAMultiOp { txn_type: OpCode::Multi.code() })
        );
    }

    proptest! {
        #[test]
        fn entries_round_trip(txn in arbitrary_txn(), client_id in any::<i64>(),
                              cxid in any::<i32>(), zxid in any::<i64>(), time_ms in any::<i64>()) {
            let txn_type = txn.op_code().code();
            let header = TxnHeader { client_id, cxid, zxid, time_ms, txn_type };
            let mut writer = Writer::new();
            write_entry(&header, &txn, &mut writer);
            let bytes = writer.as_bytes();
            prop_assert_eq!(read_entry(bytes), Ok((header, txn)));
            for cut in 0..bytes.len() {
                prop_assert!(read_entry(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = read_entry(&bytes);
        }
    }
}
