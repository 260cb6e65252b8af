//! End-to-end tests of `zabflow node`: the real binary, raw jute over TCP.

mod coord;

use coord::{create, is_closed, read_frame, Client, Node};
use zabflow_net::jute::{
    AuthPacket, DeleteRequest, ExistsRequest, GetDataRequest, OpCode, Request, Response,
    SetDataRequest,
};

const EPHEMERAL: i32 = 1;

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest { path: path.into(), watch })
}

fn stat_of(body: Option<Response>) -> zabflow_net::jute::Stat {
    match body {
        Some(Response::GetData(reply)) => reply.stat,
        Some(Response::SetData(reply)) => reply.stat,
        Some(Response::Exists(reply)) => reply.stat,
        other => panic!("no stat in {other:?}"),
    }
}

#[test]
fn crud_with_stats() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let mut client = Client::connect(node.port);
    assert_eq!(client.timeout_ms, 4000, "clamped to 20 ticks of 200 ms");
    let (err, body) = client.call(&create("/a", b"one", 0));
    assert_eq!(err, 0);
    assert!(matches!(body, Some(Response::Create(ref r)) if r.path == "/a"));
    assert_eq!(client.call(&create("/a", b"", 0)).0, -110, "NodeExists");
    let (err, body) = client.call(&get("/a", false));
    assert_eq!(err, 0);
    let Some(Response::GetData(reply)) = body else { panic!() };
    assert_eq!(reply.data.as_deref(), Some(&b"one"[..]));
    assert_eq!((reply.stat.version, reply.stat.data_length), (0, 3));
    assert_eq!(reply.stat.czxid, reply.stat.mzxid);
    let set = |version| {
        Request::SetData(SetDataRequest { path: "/a".into(), data: Some(b"two".to_vec()), version })
    };
    let stat = stat_of(client.call(&set(0)).1);
    assert_eq!(stat.version, 1);
    assert!(stat.mzxid > stat.czxid);
    assert_eq!(client.call(&set(7)).0, -103, "BadVersion");
    let delete = Request::Delete(DeleteRequest { path: "/a".into(), version: -1 });
    assert_eq!(client.call(&delete).0, 0);
    assert_eq!(client.call(&get("/a", false)).0, -101, "NoNode");
    assert_eq!(client.call(&Request::Ping).0, 0);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let mut client = Client::connect(node.port);
    let mut sent = Vec::new();
    for i in 0..300 {
        let path = format!("/p{i}");
        sent.push((client.send(&create(&path, b"x", 0)), OpCode::Create));
        sent.push((client.send(&get(&path, false)), OpCode::GetData));
    }
    for (xid, op) in sent {
        let (header, _) = client.receive(op).unwrap();
        assert_eq!(header.xid, xid);
        assert_eq!(header.err, 0, "a read sees the session's earlier write");
    }
}

#[test]
fn ephemerals_go_with_their_session_and_watches_fire() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let mut owner = Client::connect(node.port);
    let mut watcher = Client::connect(node.port);
    assert_eq!(owner.call(&create("/e", b"", EPHEMERAL)).0, 0);
    assert_eq!(watcher.call(&get("/e", true)).0, 0);
    assert_eq!(owner.call(&Request::CloseSession).0, 0);
    let event = watcher.wait_event();
    assert_eq!((event.event_type, event.path.as_str()), (2, "/e"), "NodeDeleted");
    assert!(is_closed(&mut owner.stream));
    // Expiry: a session that goes silent loses its ephemerals after its timeout.
    let mut silent = Client::resume(node.port, 0, vec![0; 16], 400).unwrap();
    assert_eq!(silent.call(&create("/gone", b"", EPHEMERAL)).0, 0);
    let exists = Request::Exists(ExistsRequest { path: "/gone".into(), watch: true });
    assert_eq!(watcher.call(&exists).0, 0);
    drop(silent);
    let event = watcher.wait_event();
    assert_eq!((event.event_type, event.path.as_str()), (2, "/gone"));
}

#[test]
fn resume_checks_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let client = Client::connect(node.port);
    let (id, passwd) = (client.session_id, client.passwd.clone());
    drop(client);
    assert!(Client::resume(node.port, id, vec![1; 16], 30_000).is_none(), "wrong password");
    let mut resumed = Client::resume(node.port, id, passwd, 30_000).expect("resumed");
    assert_eq!(resumed.session_id, id);
    assert_eq!(resumed.call(&Request::Ping).0, 0);
}

#[test]
fn bad_input_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "jute.maxbuffer=1024");
    let mut bystander = Client::connect(node.port);
    let mut big = Client::connect(node.port);
    let (id, passwd) = (big.session_id, big.passwd.clone());
    big.send(&create("/big", &[7; 2000], 0));
    assert!(is_closed(&mut big.stream), "a frame over jute.maxbuffer closes the connection");
    let mut again = Client::resume(node.port, id, passwd, 30_000).expect("the session survives");
    assert_eq!(again.call(&get("/big", false)).0, -101, "the request was not executed");
    // An unknown op code is answered Unimplemented, then the connection is closed (as
    // ZooKeeper's UnimplementedRequestProcessor); the session can be resumed.
    use std::io::Write as _;
    again.stream.write_all(&[0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0x03, 0xe7]).unwrap();
    let body = read_frame(&mut again.stream).unwrap();
    assert_eq!(&body[..4], &[0, 0, 0, 9]);
    assert_eq!(i32::from_be_bytes(body[12..16].try_into().unwrap()), -6);
    assert!(is_closed(&mut again.stream));
    let passwd = again.passwd.clone();
    let mut again = Client::resume(node.port, id, passwd, 30_000).expect("the session survives");
    // Garbage instead of a handshake.
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    garbage.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).unwrap();
    assert!(is_closed(&mut garbage));
    // An unknown auth scheme: AuthFailed on xid -4, then the connection closes.
    let auth = Request::Auth(AuthPacket { auth_type: 0, scheme: "kerberos".into(), auth: vec![] });
    assert_eq!(again.call(&auth).0, -115);
    assert!(is_closed(&mut again.stream));
    assert_eq!(bystander.call(&create("/still", b"", 0)).0, 0);
}

#[test]
fn four_letter_words() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "4lw.commands.whitelist=ruok,mntr,stat,cons,wchs,conf");
    assert_eq!(node.four_letter("ruok"), "imok");
    let srvr = node.four_letter("srvr");
    assert!(srvr.starts_with("Zookeeper version: 3.8.0"), "{srvr}");
    assert!(srvr.contains("Mode: standalone\nNode count: 5\n"), "{srvr}");
    assert!(node.four_letter("mntr").contains("zk_server_state\tstandalone\n"));
    assert!(node.four_letter("stat").contains("Clients:\n"));
    assert!(node.four_letter("wchs").contains("Total watches:0"));
    assert!(node.four_letter("conf").contains(&format!("clientPort={}\n", node.port)));
    assert_eq!(
        node.four_letter("dump"),
        "dump is not executed because it is not in the whitelist.\n"
    );
}
