//! `multi` and `multiRead`: a list of ops and a list of results, each ended by a header.
//!
//! ```text
//! MultiRequest  = (MultiHeader(type=op, done=false, err=-1) op-body)*
//!                 MultiHeader(type=-1, done=true, err=-1)
//! op-body       = CreateRequest        ; create 1, create2 15, createContainer 19
//!               | CreateTTLRequest     ; createTTL 21
//!               | DeleteRequest        ; delete 2
//!               | SetDataRequest       ; setData 5
//!               | CheckVersionRequest  ; check 13
//!               | GetChildrenRequest   ; getChildren 8 (multiRead only)
//!               | GetDataRequest       ; getData 4 (multiRead only)
//! MultiResponse = (MultiHeader(type=result, done=false, err) result-body)*
//!                 MultiHeader(type=-1, done=true, err=-1)
//! result-body   = CreateResponse       ; create 1
//!               | Create2Response      ; create2 15 (also for createTTL, createContainer)
//!               | (nothing)            ; delete 2, check 13
//!               | SetDataResponse      ; setData 5
//!               | GetChildrenResponse  ; getChildren 8
//!               | GetDataResponse      ; getData 4
//!               | ErrorResponse        ; error -1, and the header's err is the same code
//! ```
//!
//! The lists have no count: decoding loops until a header with `done`. Each op or result
//! consumes at least a 9-byte header, so the list can hold no more entries than the frame has
//! bytes. As in ZooKeeper's `MultiOperationRecord`, one multi holds only write ops or only
//! read ops. A failed multi answers, in order: `ErrorResult(0)` (rolled back) for each op
//! before the failing one, the real error, then `ErrorResult(RuntimeInconsistency)` for the
//! rest; the `ReplyHeader.err` of a multi stays 0.

use super::codes::OpCode;
use super::reader::Reader;
use super::record::{ErrorResponse, MultiHeader, Record};
use super::request::{
    CheckVersionRequest, CreateRequest, CreateTTLRequest, DeleteRequest, GetChildrenRequest,
    GetDataRequest, SetDataRequest,
};
use super::response::{
    Create2Response, CreateResponse, GetChildrenResponse, GetDataResponse, SetDataResponse,
};
use super::writer::Writer;
use crate::constants::MULTI_HEADER_BYTES;
use crate::error::{Error, Result};

/// One op of a `multi` (writes) or `multiRead` (reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTTLRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

/// One result of a `multi` or `multiRead` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(CreateResponse),
    Create2(Create2Response),
    Delete,
    SetData(SetDataResponse),
    Check,
    GetChildren(GetChildrenResponse),
    GetData(GetDataResponse),
    /// `ErrorResult`: the op failed with this code (0 when rolled back).
    Error(ErrorResponse),
}

/// `MultiOperationRecord`: the body of a `multi` or `multiRead` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

/// `MultiResponse`: the body of a successful-or-failed `multi` reply, or a `multiRead` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<MultiResult>,
}

impl MultiOp {
    /// The op code in this op's `MultiHeader`.
    #[must_use]
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// Whether this op only reads (`multiRead`) rather than writes (`multi`).
    #[must_use]
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    fn write_body(&self, writer: &mut Writer) {
        match self {
            MultiOp::Create(body) | MultiOp::Create2(body) | MultiOp::CreateContainer(body) => {
                body.write(writer);
            }
            MultiOp::CreateTtl(body) => body.write(writer),
            MultiOp::Delete(body) => body.write(writer),
            MultiOp::SetData(body) => body.write(writer),
            MultiOp::Check(body) => body.write(writer),
            MultiOp::GetChildren(body) => body.write(writer),
            MultiOp::GetData(body) => body.write(writer),
        }
    }

    fn read_body(op: i32, reader: &mut Reader<'_>) -> Result<Self> {
        let op_code = OpCode::from_code(op).ok_or(Error::MultiOpType { op })?;
        Ok(match op_code {
            OpCode::Create => MultiOp::Create(Record::read(reader)?),
            OpCode::Create2 => MultiOp::Create2(Record::read(reader)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(Record::read(reader)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(Record::read(reader)?),
            OpCode::Delete => MultiOp::Delete(Record::read(reader)?),
            OpCode::SetData => MultiOp::SetData(Record::read(reader)?),
            OpCode::Check => MultiOp::Check(Record::read(reader)?),
            OpCode::GetChildren => MultiOp::GetChildren(Record::read(reader)?),
            OpCode::GetData => MultiOp::GetData(Record::read(reader)?),
            _ => return Err(Error::MultiOpType { op }),
        })
    }
}

impl MultiResult {
    /// The `MultiHeader` in front of this result.
    #[must_use]
    pub fn header(&self) -> MultiHeader {
        let (op_code, err) = match self {
            MultiResult::Create(_) => (OpCode::Create, 0),
            MultiResult::Create2(_) => (OpCode::Create2, 0),
            MultiResult::Delete => (OpCode::Delete, 0),
            MultiResult::SetData(_) => (OpCode::SetData, 0),
            MultiResult::Check => (OpCode::Check, 0),
            MultiResult::GetChildren(_) => (OpCode::GetChildren, 0),
            MultiResult::GetData(_) => (OpCode::GetData, 0),
            MultiResult::Error(error) => (OpCode::Error, error.err),
        };
        MultiHeader { op: op_code.code(), done: false, err }
    }

    fn write_body(&self, writer: &mut Writer) {
        match self {
            MultiResult::Create(body) => body.write(writer),
            MultiResult::Create2(body) => body.write(writer),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(body) => body.write(writer),
            MultiResult::GetChildren(body) => body.write(writer),
            MultiResult::GetData(body) => body.write(writer),
            MultiResult::Error(body) => body.write(writer),
        }
    }

    fn read_body(op: i32, reader: &mut Reader<'_>) -> Result<Self> {
        let op_code = OpCode::from_code(op).ok_or(Error::MultiOpType { op })?;
        Ok(match op_code {
            OpCode::Create => MultiResult::Create(Record::read(reader)?),
            OpCode::Create2 => MultiResult::Create2(Record::read(reader)?),
            OpCode::Delete => MultiResult::Delete,
            OpCode::SetData => MultiResult::SetData(Record::read(reader)?),
            OpCode::Check => MultiResult::Check,
            OpCode::GetChildren => MultiResult::GetChildren(Record::read(reader)?),
            OpCode::GetData => MultiResult::GetData(Record::read(reader)?),
            OpCode::Error => MultiResult::Error(Record::read(reader)?),
            _ => return Err(Error::MultiOpType { op }),
        })
    }
}

/// Reads entries until a `done` header. Each entry costs at least a header's bytes and the
/// vector only grows by doubling, so its capacity stays below the frame's length.
fn read_until_done<T>(
    reader: &mut Reader<'_>,
    mut read_body: impl FnMut(i32, &mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut entries = Vec::new();
    loop {
        let header = MultiHeader::read(reader)?;
        if header.done {
            return Ok(entries);
        }
        entries.push(read_body(header.op, reader)?);
    }
}

impl Record for MultiRequest {
    const WIRE_BYTES_MIN: usize = MULTI_HEADER_BYTES;

    fn write(&self, writer: &mut Writer) {
        for op in &self.ops {
            MultiHeader { op: op.op_code().code(), done: false, err: -1 }.write(writer);
            op.write_body(writer);
        }
        MultiHeader::END.write(writer);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        let ops = read_until_done(reader, MultiOp::read_body)?;
        let reads = ops.iter().filter(|op| op.is_read()).count();
        if reads != 0 && reads != ops.len() {
            return Err(Error::MultiMixedKinds);
        }
        Ok(MultiRequest { ops })
    }
}

impl Record for MultiResponse {
    const WIRE_BYTES_MIN: usize = MULTI_HEADER_BYTES;

    fn write(&self, writer: &mut Writer) {
        for result in &self.results {
            result.header().write(writer);
            result.write_body(writer);
        }
        MultiHeader::END.write(writer);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        Ok(MultiResponse { results: read_until_done(reader, MultiResult::read_body)? })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jute::hex;
    use crate::jute::record::Stat;
    use proptest::prelude::*;

    pub(crate) fn arbitrary_write_op() -> BoxedStrategy<MultiOp> {
        prop_oneof![
            CreateRequest::arbitrary().prop_map(MultiOp::Create),
            CreateRequest::arbitrary().prop_map(MultiOp::Create2),
            CreateRequest::arbitrary().prop_map(MultiOp::CreateContainer),
            CreateTTLRequest::arbitrary().prop_map(MultiOp::CreateTtl),
            DeleteRequest::arbitrary().prop_map(MultiOp::Delete),
            SetDataRequest::arbitrary().prop_map(MultiOp::SetData),
            CheckVersionRequest::arbitrary().prop_map(MultiOp::Check),
        ]
        .boxed()
    }

    pub(crate) fn arbitrary_multi_request() -> BoxedStrategy<MultiRequest> {
        let read_op = prop_oneof![
            GetChildrenRequest::arbitrary().prop_map(MultiOp::GetChildren),
            GetDataRequest::arbitrary().prop_map(MultiOp::GetData),
        ];
        prop_oneof![
            proptest::collection::vec(arbitrary_write_op(), 0..4),
            proptest::collection::vec(read_op, 0..4),
        ]
        .prop_map(|ops| MultiRequest { ops })
        .boxed()
    }

    pub(crate) fn arbitrary_multi_response() -> BoxedStrategy<MultiResponse> {
        let result = prop_oneof![
            CreateResponse::arbitrary().prop_map(MultiResult::Create),
            Create2Response::arbitrary().prop_map(MultiResult::Create2),
            Just(MultiResult::Delete),
            SetDataResponse::arbitrary().prop_map(MultiResult::SetData),
            Just(MultiResult::Check),
            GetChildrenResponse::arbitrary().prop_map(MultiResult::GetChildren),
            GetDataResponse::arbitrary().prop_map(MultiResult::GetData),
            ErrorResponse::arbitrary().prop_map(MultiResult::Error),
        ];
        proptest::collection::vec(result, 0..4)
            .prop_map(|results| MultiResponse { results })
            .boxed()
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_multi_request() {
        let request = MultiRequest {
            ops: vec![
                MultiOp::Check(CheckVersionRequest { path: "/a".to_owned(), version: 1 }),
                MultiOp::Delete(DeleteRequest { path: "/b".to_owned(), version: -1 }),
            ],
        };
        let expected = hex("0000000d 00 ffffffff     MultiHeader type check(13) done false err -1
             00000002 2f61 00000001  CheckVersionRequest path \"/a\" version 1
             00000002 00 ffffffff     MultiHeader type delete(2) done false err -1
             00000002 2f62 ffffffff  DeleteRequest path \"/b\" version -1
             ffffffff 01 ffffffff     MultiHeader type -1 done true err -1");
        assert_eq!(request.to_bytes(), expected);
        assert_eq!(MultiRequest::from_bytes(&expected), Ok(request));
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_failed_multi_response() {
        let response = MultiResponse {
            results: vec![
                MultiResult::Error(ErrorResponse { err: 0 }),
                MultiResult::Error(ErrorResponse { err: -101 }),
                MultiResult::Error(ErrorResponse { err: -2 }),
            ],
        };
        let expected =
            hex("ffffffff 00 00000000 00000000   error, err 0 (rolled back); ErrorResponse 0
             ffffffff 00 ffffff9b ffffff9b   error, err -101 (NoNode); ErrorResponse -101
             ffffffff 00 fffffffe fffffffe   error, err -2 (RuntimeInconsistency)
             ffffffff 01 ffffffff            end: type -1 done true err -1");
        assert_eq!(response.to_bytes(), expected);
        assert_eq!(MultiResponse::from_bytes(&expected), Ok(response));
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_multi_response() {
        let response = MultiResponse {
            results: vec![
                MultiResult::Create(CreateResponse { path: "/a".to_owned() }),
                MultiResult::SetData(SetDataResponse {
                    stat: Stat { version: 1, ..Stat::default() },
                }),
            ],
        };
        let mut expected = hex("00000001 00 00000000   create, err 0
             00000002 2f61          CreateResponse path \"/a\"
             00000005 00 00000000   setData, err 0");
        let mut stat = vec![0u8; 68];
        stat[35] = 1; // version (after czxid, mzxid, ctime, mtime: 32 bytes) = 1
        expected.extend_from_slice(&stat);
        expected.extend_from_slice(&hex("ffffffff 01 ffffffff"));
        assert_eq!(response.to_bytes(), expected);
        assert_eq!(MultiResponse::from_bytes(&expected), Ok(response));
    }

    #[test]
    fn mixed_and_unknown_ops_are_refused() {
        let request = MultiRequest {
            ops: vec![
                MultiOp::Delete(DeleteRequest { path: "/b".to_owned(), version: -1 }),
                MultiOp::GetData(GetDataRequest { path: "/b".to_owned(), watch: false }),
            ],
        };
        assert_eq!(MultiRequest::from_bytes(&request.to_bytes()), Err(Error::MultiMixedKinds));
        let unknown = hex("00000003 00 ffffffff");
        assert_eq!(MultiRequest::from_bytes(&unknown), Err(Error::MultiOpType { op: 3 }));
    }

    proptest! {
        #[test]
        fn multi_round_trips(
            request in arbitrary_multi_request(),
            response in arbitrary_multi_response(),
        ) {
            prop_assert_eq!(MultiRequest::from_bytes(&request.to_bytes()), Ok(request));
            prop_assert_eq!(MultiResponse::from_bytes(&response.to_bytes()), Ok(response));
        }

        #[test]
        fn multi_garbage_is_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(request) = MultiRequest::from_bytes(&bytes) {
                prop_assert!(request.ops.capacity() <= bytes.len());
            }
            if let Ok(response) = MultiResponse::from_bytes(&bytes) {
                prop_assert!(response.results.capacity() <= bytes.len());
            }
        }
    }
}
