//! ZooKeeper's client wire protocol (jute), byte-exact, so existing ZooKeeper clients
//! (kazoo, zkCli, Curator) talk to zabflow unchanged and zabflow's client talks to ZooKeeper.
//!
//! ```text
//! client → server: ConnectRequest-frame (RequestHeader body)-frames...
//! server → client: ConnectResponse-frame (ReplyHeader [body])-frames...
//! frame          : length:int (0..=jute.maxbuffer) then length bytes
//! reserved xids  : -1 notification (WatcherEvent), -2 ping, -4 auth, -8 setWatches
//! ```
//!
//! The layers, bottom up: [`Reader`]/[`Writer`] for jute's primitives, [`FrameDecoder`] for
//! the length-prefixed stream, [`Record`] for each record of `zookeeper.jute` (one struct per
//! record, with ZooKeeper's names), [`Request`]/[`Response`] for typed requests and replies,
//! [`MultiRequest`]/[`MultiResponse`] for `multi`, and [`FourLetterWord`] for the text
//! commands that share the client port. Each file documents its records as a grammar.
//!
//! Decoding never panics and never allocates more than the frame could hold; encoding a
//! valid value and decoding it gives it back (both are property-tested). The codec validates
//! structure only: the meaning of values (paths, flags, versions, ACLs) is the server's.

mod codes;
mod four_letter;
mod frame;
mod multi;
mod reader;
pub(crate) mod record;
mod request;
mod response;
mod session;
mod writer;

pub use codes::{
    AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, Perms, WatcherType,
};
pub use four_letter::FourLetterWord;
pub use frame::{Frame, FrameDecoder};
pub use multi::{MultiOp, MultiRequest, MultiResponse, MultiResult};
pub use reader::Reader;
pub use record::{
    ClientInfo, ErrorResponse, Id, MultiHeader, Record, ReplyHeader, RequestHeader, Stat,
    WatcherEvent, ACL,
};
pub use request::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateRequest,
    CreateSessionTxn, CreateTTLRequest, DeleteContainerRequest, DeleteRequest, ExistsRequest,
    GetACLRequest, GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest,
    GetDataRequest, GetEphemeralsRequest, GetSASLRequest, ReconfigRequest, RemoveWatchesRequest,
    Request, SetACLRequest, SetDataRequest, SetWatches, SetWatches2, SyncRequest,
};
pub use response::{
    Create2Response, CreateResponse, ExistsResponse, GetACLResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, Response,
    SetACLResponse, SetDataResponse, SetSASLResponse, SyncResponse, WhoAmIResponse,
};
pub use session::{ConnectRequest, ConnectResponse};
pub use writer::{FrameStart, Writer};

/// Bytes from hex digits, skipping everything else up to the end of each line's first run of
/// hex groups: test vectors are written as `hex  comment` lines.
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let mut digits = Vec::new();
    for line in text.lines() {
        let groups = line.split_whitespace().take_while(|group| {
            group.bytes().all(|byte| byte.is_ascii_hexdigit()) && group.len() % 2 == 0
        });
        groups.for_each(|group| digits.extend(group.bytes()));
    }
    let value = |digit: u8| (digit as char).to_digit(16).expect("hex digit") as u8;
    digits.chunks(2).map(|pair| value(pair[0]) << 4 | value(pair[1])).collect()
}
