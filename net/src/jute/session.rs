//! The connect handshake: `ConnectRequest` and `ConnectResponse`.
//!
//! ```text
//! ConnectRequest  = protocolVersion:int lastZxidSeen:long timeOut:int sessionId:long
//!                   passwd:buffer [readOnly:boolean]
//! ConnectResponse = protocolVersion:int timeOut:int sessionId:long passwd:buffer
//!                   [readOnly:boolean]
//! ```
//!
//! They are the first frame each way on a connection and carry no header. Clients older than
//! ZooKeeper 3.4 omit the trailing `readOnly`; ZooKeeper's `ProtocolManager` notices (reading
//! the boolean fails at the end of the frame) and then also omits it from its response, which
//! an old client would otherwise misread. `read_only` is therefore an `Option`: `None` means
//! "absent on the wire", and a server answers with `None` when the request had `None`.

use super::reader::Reader;
use super::record::Record;
use super::writer::Writer;
use crate::constants::LENGTH_PREFIX_BYTES;
use crate::error::Result;

/// `ConnectRequest`: a client opening or resuming a session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds (ZooKeeper's `timeOut`).
    pub time_out: i32,
    /// 0 to create a session, else the session to resume.
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` when the client sent no `readOnly` (pre-3.4 clients).
    pub read_only: Option<bool>,
}

/// `ConnectResponse`: the server's answer to a `ConnectRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    /// Negotiated session timeout in milliseconds; 0 tells the client its session expired.
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` to omit the field, for a client that omitted it.
    pub read_only: Option<bool>,
}

/// Reads the optional trailing `readOnly`: absent when the frame has ended.
fn read_read_only(reader: &mut Reader<'_>) -> Result<Option<bool>> {
    if reader.remaining() == 0 {
        return Ok(None);
    }
    reader.read_bool().map(Some)
}

impl Record for ConnectRequest {
    const WIRE_BYTES_MIN: usize = 4 + 8 + 4 + 8 + LENGTH_PREFIX_BYTES;

    fn write(&self, writer: &mut Writer) {
        writer.write_int(self.protocol_version);
        writer.write_long(self.last_zxid_seen);
        writer.write_int(self.time_out);
        writer.write_long(self.session_id);
        writer.write_buffer(&self.passwd);
        if let Some(read_only) = self.read_only {
            writer.write_bool(read_only);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        Ok(ConnectRequest {
            protocol_version: reader.read_int()?,
            last_zxid_seen: reader.read_long()?,
            time_out: reader.read_int()?,
            session_id: reader.read_long()?,
            passwd: reader.read_buffer()?,
            read_only: read_read_only(reader)?,
        })
    }
}

impl Record for ConnectResponse {
    const WIRE_BYTES_MIN: usize = 4 + 4 + 8 + LENGTH_PREFIX_BYTES;

    fn write(&self, writer: &mut Writer) {
        writer.write_int(self.protocol_version);
        writer.write_int(self.time_out);
        writer.write_long(self.session_id);
        writer.write_buffer(&self.passwd);
        if let Some(read_only) = self.read_only {
            writer.write_bool(read_only);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self> {
        Ok(ConnectResponse {
            protocol_version: reader.read_int()?,
            time_out: reader.read_int()?,
            session_id: reader.read_long()?,
            passwd: reader.read_buffer()?,
            read_only: read_read_only(reader)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::hex;
    use proptest::prelude::*;

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_connect_request() {
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0x1_0000_0002,
            time_out: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        let expected = hex("00000000           protocolVersion 0
             0000000100000002   lastZxidSeen epoch 1 counter 2
             00007530           timeOut 30000 ms
             0000000000000000   sessionId 0 (new session)
             00000010 00000000000000000000000000000000   passwd: 16 zero bytes
             00                 readOnly false");
        assert_eq!(request.to_bytes(), expected);
        assert_eq!(ConnectRequest::from_bytes(&expected), Ok(request.clone()));
        let old_client = &expected[..expected.len() - 1];
        let decoded = ConnectRequest::from_bytes(old_client).expect("pre-3.4 request");
        assert_eq!(decoded, ConnectRequest { read_only: None, ..request });
    }

    // The expected bytes below were also produced by ZooKeeper 3.8.0's own jute classes
    // (BinaryOutputArchive) for the same values, and matched byte for byte.
    #[test]
    fn golden_connect_response() {
        let response = ConnectResponse {
            protocol_version: 0,
            time_out: 4_000,
            session_id: 0x0100_0000_abcd_0001,
            passwd: vec![0xaa; 16],
            read_only: Some(false),
        };
        let expected = hex("00000000           protocolVersion 0
             00000fa0           timeOut 4000 ms
             01000000abcd0001   sessionId
             00000010 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa   passwd: 16 bytes
             00                 readOnly false");
        assert_eq!(response.to_bytes(), expected);
        let old = ConnectResponse { read_only: None, ..response };
        assert_eq!(old.to_bytes(), expected[..expected.len() - 1]);
    }

    fn arbitrary_request() -> impl Strategy<Value = ConnectRequest> {
        let passwd = proptest::collection::vec(any::<u8>(), 0..20);
        (any::<(i32, i64, i32, i64)>(), passwd, any::<Option<bool>>()).prop_map(
            |((protocol_version, last_zxid_seen, time_out, session_id), passwd, read_only)| {
                ConnectRequest {
                    protocol_version,
                    last_zxid_seen,
                    time_out,
                    session_id,
                    passwd,
                    read_only,
                }
            },
        )
    }

    proptest! {
        #[test]
        fn connect_round_trips(request in arbitrary_request()) {
            let bytes = request.to_bytes();
            prop_assert_eq!(ConnectRequest::from_bytes(&bytes), Ok(request.clone()));
            let response = ConnectResponse {
                protocol_version: request.protocol_version,
                time_out: request.time_out,
                session_id: request.session_id,
                passwd: request.passwd,
                read_only: request.read_only,
            };
            prop_assert_eq!(ConnectResponse::from_bytes(&response.to_bytes()), Ok(response));
        }

        #[test]
        fn connect_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(request) = ConnectRequest::from_bytes(&bytes) {
                prop_assert!(request.passwd.capacity() <= bytes.len());
            }
            let _ = ConnectResponse::from_bytes(&bytes);
        }
    }
}
