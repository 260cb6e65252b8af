//! Read-only mode (`-Dreadonlymode.enabled=true`) on the wire, with a raw jute client:
//! a 3-node ensemble loses two members and the third serves read-only clients, refuses
//! every change with NotReadOnly (-119) and every client that did not ask for read-only;
//! once the quorum is back its read-only clients are disconnected. The same checks run
//! against a real ZooKeeper 3.8 ensemble, which makes the expectations ZooKeeper's. Then,
//! zabflow only: without `localSessionsEnabled` a read-only server creates no session
//! (ZooKeeper 3.8 answers with a reply header where a ConnectResponse belongs; zabflow
//! closes the connection).

mod coord;

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use coord::{create, is_closed, read_frame, Client, Ensemble};
use zabflow_net::jute::{
    CheckVersionRequest, ConnectRequest, ConnectResponse, DeleteRequest, ErrorCode, GetDataRequest,
    MultiOp, MultiRequest, Reader, ReconfigRequest, Record, ReplyHeader, Request, SetACLRequest,
    SetDataRequest, SyncRequest, Writer,
};
use zabflow_tests::real_zookeeper::{self, four_letter_word};

const LOCAL_SESSIONS: &str =
    "4lw.commands.whitelist=*\nlocalSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true";

/// Within both servers' timeout bounds (zabflow's tests tick 200 ms, ZooKeeper 2000 ms).
const TIMEOUT_MS: i32 = 4_000;

/// Sends a ConnectRequest; returns the stream and the response (`None`: closed unanswered).
fn connect(
    port: u16,
    session_id: i64,
    passwd: Vec<u8>,
    read_only: Option<bool>,
) -> (TcpStream, Option<ConnectResponse>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: TIMEOUT_MS,
        session_id,
        passwd,
        read_only,
    };
    let mut writer = Writer::new();
    let start = writer.begin_frame();
    request.write(&mut writer);
    writer.end_frame(start);
    stream.write_all(writer.as_bytes()).unwrap();
    let response = read_frame(&mut stream)
        .map(|body| ConnectResponse::read(&mut Reader::new(&body)).expect("a ConnectResponse"));
    (stream, response)
}

/// One request on a raw stream: the reply's header.
fn call(stream: &mut TcpStream, xid: i32, request: &Request) -> ReplyHeader {
    let mut writer = Writer::new();
    request.write_frame(xid, &mut writer);
    stream.write_all(writer.as_bytes()).unwrap();
    let body = read_frame(stream).expect("a reply");
    let header = ReplyHeader::read(&mut Reader::new(&body)).unwrap();
    assert_eq!(header.xid, xid);
    header
}

fn wait_for_word(address: SocketAddr, word: &str, expected: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let answer = four_letter_word(address, word).unwrap_or_default();
        if answer.contains(expected) {
            return;
        }
        assert!(Instant::now() < deadline, "{word} never said {expected:?}; last: {answer:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The checks against `port`, the member left alone; `stop` and `start` act on the others.
fn read_only_checks(name: &str, port: u16, stop: &mut dyn FnMut(), start: &mut dyn FnMut()) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut global = Client::connect(port);
    assert_eq!(global.call(&create("/ro", b"data", 0)).0, 0, "{name}");
    // An ephemeral makes the session global in ZooKeeper too (with localSessionsEnabled its
    // sessions start local and are upgraded by their first ephemeral).
    assert_eq!(global.call(&create("/ro-owner", b"", 1)).0, 0, "{name}");
    assert_eq!(four_letter_word(address, "isro").unwrap(), "rw", "{name}");
    stop();
    wait_for_word(address, "isro", "ro", Duration::from_secs(30));
    let srvr = four_letter_word(address, "srvr").unwrap();
    assert!(srvr.contains("Mode: read-only\n"), "{name}: {srvr}");
    let mntr = four_letter_word(address, "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tread-only\n"), "{name}: {mntr}");

    let refused = |read_only: Option<bool>, session_id: i64, passwd: Vec<u8>, what: &str| {
        let (mut stream, response) = connect(port, session_id, passwd, read_only);
        assert!(response.is_none(), "{name}: {what} got {response:?}");
        assert!(is_closed(&mut stream), "{name}: {what}");
    };
    refused(Some(false), 0, vec![0; 16], "a client that did not ask for read-only");
    refused(None, 0, vec![0; 16], "an old client (no readOnly flag)");
    refused(Some(true), global.session_id, global.passwd.clone(), "a global session");

    let (mut stream, response) = connect(port, 0, vec![0; 16], Some(true));
    let response = response.unwrap_or_else(|| panic!("{name}: no read-only session"));
    assert_ne!(response.session_id, 0, "{name}");
    assert_eq!(response.time_out, TIMEOUT_MS, "{name}");
    assert_eq!(response.read_only, Some(true), "{name}");
    assert_eq!(response.passwd.len(), 16, "{name}");
    let read = Request::GetData(GetDataRequest { path: "/ro".into(), watch: true });
    assert_eq!(call(&mut stream, 1, &read).err, 0, "{name}: a read");
    let multi_read = Request::MultiRead(MultiRequest {
        ops: vec![MultiOp::GetData(GetDataRequest { path: "/ro".into(), watch: false })],
    });
    assert_eq!(call(&mut stream, 2, &multi_read).err, 0, "{name}: a multiRead");
    let changes = [
        create("/ro/child", b"", 0),
        Request::SetData(SetDataRequest { path: "/ro".into(), data: None, version: -1 }),
        Request::Delete(DeleteRequest { path: "/ro".into(), version: -1 }),
        Request::SetAcl(SetACLRequest { path: "/ro".into(), acl: coord::open_acl(), version: -1 }),
        Request::Sync(SyncRequest { path: "/ro".into() }),
        Request::Check(CheckVersionRequest { path: "/ro".into(), version: 0 }),
        Request::Multi(MultiRequest {
            ops: vec![MultiOp::Delete(DeleteRequest { path: "/ro".into(), version: -1 })],
        }),
        Request::Reconfig(ReconfigRequest {
            joining_servers: None,
            leaving_servers: Some("2".into()),
            new_members: None,
            cur_config_id: -1,
        }),
    ];
    for (xid, change) in (3..).zip(&changes) {
        let header = call(&mut stream, xid, change);
        assert_eq!(header.err, ErrorCode::NotReadOnly.code(), "{name}: {change:?}");
    }
    let close = call(&mut stream, 20, &Request::CloseSession);
    assert_eq!(close.err, 0, "{name}: closeSession of a read-only session");
    assert!(is_closed(&mut stream), "{name}: closed after closeSession");
    let (_, again) = connect(port, response.session_id, response.passwd.clone(), Some(true));
    let again = again.unwrap_or_else(|| panic!("{name}: no answer to a closed session"));
    assert_eq!((again.session_id, again.time_out), (0, 0), "{name}: a closed session");
    assert_eq!(again.read_only, Some(true), "{name}: the refusal's flag");

    let (mut stream, response) = connect(port, 0, vec![0; 16], Some(true));
    assert!(response.is_some(), "{name}: a second read-only session");
    start();
    assert!(is_closed(&mut stream), "{name}: read-only clients go when the quorum is back");
    wait_for_word(address, "isro", "rw", Duration::from_secs(60));
}

#[test]
fn a_member_without_quorum_serves_read_only_clients() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let args = vec!["-Dreadonlymode.enabled=true".to_owned()];
    let ensemble =
        std::cell::RefCell::new(Ensemble::start_with(dir.path(), 3, LOCAL_SESSIONS, &args));
    let port = ensemble.borrow().nodes[0].port;
    read_only_checks(
        "zabflow",
        port,
        &mut || ensemble.borrow_mut().nodes[1..].iter_mut().for_each(coord::Node::stop),
        &mut || {
            ensemble.borrow_mut().nodes[1..].iter_mut().for_each(coord::Node::restart);
            ensemble.borrow().wait_serving(Duration::from_secs(30));
        },
    );
    // Member 2 again, without local sessions; alone, it refuses to create a session.
    let mut ensemble = ensemble.into_inner();
    let member = &mut ensemble.nodes[1];
    let config = member.dir.join("zoo.cfg");
    let text = std::fs::read_to_string(&config).unwrap() + "localSessionsEnabled=false\n";
    std::fs::write(&config, text).unwrap();
    member.stop();
    member.restart();
    ensemble.wait_serving(Duration::from_secs(30));
    ensemble.nodes[0].stop();
    ensemble.nodes[2].stop();
    let port = ensemble.nodes[1].port;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_word(address, "isro", "ro", Duration::from_secs(30));
    let (mut stream, response) = connect(port, 0, vec![0; 16], Some(true));
    assert!(response.is_none(), "no session without localSessionsEnabled: {response:?}");
    assert!(is_closed(&mut stream));
    drop(ensemble);

    let options = real_zookeeper::ZooKeeperOptions {
        heap_mib: 256,
        ..real_zookeeper::ZooKeeperOptions::read_only_ensemble()
    };
    let zookeeper = std::cell::RefCell::new(
        real_zookeeper::RealZooKeeper::start_with(options)
            .unwrap_or_else(|error| panic!("a real ZooKeeper ensemble is needed: {error}")),
    );
    let port = zookeeper.borrow().client_address(0).port();
    read_only_checks(
        "ZooKeeper 3.8",
        port,
        &mut || (1..3).for_each(|index| zookeeper.borrow_mut().stop(index)),
        &mut || {
            for index in 1..3 {
                zookeeper.borrow_mut().start(index).expect("the node serves again");
            }
        },
    );
}

#[test]
fn without_the_property_a_member_without_quorum_serves_nobody() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut ensemble = Ensemble::start(dir.path(), 3, LOCAL_SESSIONS);
    ensemble.nodes[1].stop();
    ensemble.nodes[2].stop();
    let address = SocketAddr::from(([127, 0, 0, 1], ensemble.nodes[0].port));
    wait_for_word(address, "isro", "null", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(four_letter_word(address, "isro").unwrap(), "null", "past the grace");
    let (mut stream, response) = connect(ensemble.nodes[0].port, 0, vec![0; 16], Some(true));
    assert!(response.is_none(), "{response:?}");
    assert!(is_closed(&mut stream));
}
