//! Bad input against `zabflow node`: more connections than `maxClientCnxns`, a client that
//! stops reading, fuzzed and truncated frames, invalid paths.
//!
//! Where ZooKeeper's behaviour is the specification, the same bytes go to real Apache
//! ZooKeeper 3.8 (the `real_zookeeper` harness) in the same test and the outcomes must be
//! equal: which connections are closed, which requests are answered and with what error. The
//! fuzz loop is seeded: the seed is in every failure message, and `ZABFLOW_FUZZ_SEED=<u64>`
//! replays it. Bounds the tests assert are named constants below.

mod coord;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use coord::{create, is_closed, Client, Node};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use zabflow_net::jute::{
    AddWatchRequest, ConnectRequest, DeleteRequest, ExistsRequest, GetChildrenRequest,
    GetDataRequest, MultiOp, MultiRequest, Record as _, Request, Response, SetDataRequest,
    SetWatches, Writer,
};
use zabflow_tests::real_zookeeper::{self, RealZooKeeper, ZooKeeperOptions};

/// `maxClientCnxns` of the connection-limit test.
const CONNECTIONS_PER_IP_MAX: usize = 5;
/// Growth of the server's resident memory allowed while clients do not read their replies.
const SLOW_READER_RSS_GROWTH_BYTES_MAX: u64 = 256 << 20;
/// Resident memory the server may keep, above its start, once the slow clients are gone.
const SLOW_READER_RSS_RETAINED_BYTES_MAX: u64 = 64 << 20;
/// Request bytes the slow reader tries to send; the server must push back well before.
const SLOW_READER_REQUEST_BYTES_MAX: usize = 256 << 20;
/// The slowest control round trip allowed while other clients misbehave.
const CONTROL_ROUND_TRIP_MS_MAX: u128 = 250;
/// How long a server may stay silent before a case's outcome is "no reply".
const SILENCE: Duration = Duration::from_millis(400);
/// Random mutations of the fuzz loop (truncation sweeps come on top).
const FUZZ_MUTATIONS: usize = 400;
/// Seed of the fuzz loop unless `ZABFLOW_FUZZ_SEED` says otherwise.
const FUZZ_SEED_DEFAULT: u64 = 0x5eed_0004;
/// Control znodes the fuzz loop's control session writes and checks.
const CONTROL_NODES: usize = 8;

/// What a server did with a case's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A reply frame (watch notifications are skipped).
    Reply { xid: i32, err: i32 },
    /// The connection was closed.
    Closed,
    /// Nothing within [`SILENCE`].
    Silent,
}

/// Reads outcomes until the connection closes or goes silent (at most 3).
fn observe(stream: &mut TcpStream) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while outcomes.len() < 3 {
        let outcome = next_outcome(stream);
        outcomes.push(outcome);
        if outcome == Outcome::Closed || outcome == Outcome::Silent {
            break;
        }
    }
    outcomes
}

fn next_outcome(stream: &mut TcpStream) -> Outcome {
    stream.set_read_timeout(Some(SILENCE)).unwrap();
    loop {
        let mut length = [0u8; 4];
        match stream.read_exact(&mut length) {
            Ok(()) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Outcome::Silent;
            }
            Err(_) => return Outcome::Closed,
        }
        let mut body = vec![0; i32::from_be_bytes(length).max(0) as usize];
        if stream.read_exact(&mut body).is_err() || body.len() < 16 {
            return Outcome::Closed;
        }
        let xid = i32::from_be_bytes(body[0..4].try_into().unwrap());
        let err = i32::from_be_bytes(body[12..16].try_into().unwrap());
        if xid != -1 {
            return Outcome::Reply { xid, err };
        }
    }
}

/// A request frame: length, xid, op, body.
fn frame(xid: i32, request: &Request) -> Vec<u8> {
    let mut writer = Writer::new();
    request.write_frame(xid, &mut writer);
    writer.as_bytes().to_vec()
}

/// A frame of `xid`, `op` and raw body bytes.
fn raw_frame(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12 + body.len());
    bytes.extend_from_slice(&(8 + body.len() as i32).to_be_bytes());
    bytes.extend_from_slice(&xid.to_be_bytes());
    bytes.extend_from_slice(&op.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn connect_frame(session_id: i64, passwd: &[u8]) -> Vec<u8> {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 4_000,
        session_id,
        passwd: passwd.to_vec(),
        read_only: Some(false),
    };
    let mut writer = Writer::new();
    let start = writer.begin_frame();
    request.write(&mut writer);
    writer.end_frame(start);
    writer.as_bytes().to_vec()
}

fn port_of(hosts: &str) -> u16 {
    hosts.rsplit(':').next().unwrap().parse().unwrap()
}

fn real_zookeeper_port() -> u16 {
    let hosts = real_zookeeper::shared_standalone()
        .unwrap_or_else(|error| panic!("real ZooKeeper is needed for this test: {error}"));
    port_of(&hosts)
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest { path: path.into(), watch })
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 })
}

/// Whether the peer closes `stream` (EOF or reset) within [`SILENCE`] × 5.
fn closed_soon(stream: &mut TcpStream) -> bool {
    is_closed(stream)
}

// ---------------------------------------------------------------------------------------
// maxClientCnxns
// ---------------------------------------------------------------------------------------

/// Opens `CONNECTIONS_PER_IP_MAX` sessions and one connection more on `port`; returns what
/// happened to the extra one and whether the first ones still answer, then closes one and
/// reports whether a new session is accepted.
fn connection_limit_outcome(port: u16) -> (bool, bool, bool) {
    let mut sessions: Vec<Client> =
        (0..CONNECTIONS_PER_IP_MAX).map(|_| Client::connect(port)).collect();
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = extra.write_all(&connect_frame(0, &[0; 16]));
    let extra_closed = closed_soon(&mut extra);
    let others_answer = sessions.iter_mut().all(|client| client.call(&Request::Ping).0 == 0);
    drop(sessions.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    let accepted_again = loop {
        // Until the server has noticed the closed session, it closes the new connection
        // at accept, which can surface here as a broken pipe: that is "not yet".
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(SILENCE)).unwrap();
        if stream.write_all(&connect_frame(0, &[0; 16])).is_ok()
            && coord::read_frame(&mut stream).is_some()
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (extra_closed, others_answer, accepted_again)
}

#[test]
fn connections_over_max_client_cnxns_are_closed_at_accept() {
    let options = ZooKeeperOptions {
        extra_config: vec![("maxClientCnxns".into(), CONNECTIONS_PER_IP_MAX.to_string())],
        heap_mib: 256,
        ..ZooKeeperOptions::default()
    };
    let real = RealZooKeeper::start_with(options)
        .unwrap_or_else(|error| panic!("real ZooKeeper is needed for this test: {error}"));
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &format!("maxClientCnxns={CONNECTIONS_PER_IP_MAX}"));
    let expected = connection_limit_outcome(real.client_address(0).port());
    assert_eq!(expected, (true, true, true), "real ZooKeeper's behaviour changed");
    assert_eq!(connection_limit_outcome(node.port), expected, "{}", node.log());
}

// ---------------------------------------------------------------------------------------
// A client that stops reading
// ---------------------------------------------------------------------------------------

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// Writes `chunk` over and over without blocking until the socket pushes back for
/// [`SILENCE`] or `bytes_max` went; returns the bytes written.
fn send_until_pushed_back(stream: &mut TcpStream, chunk: &[u8], bytes_max: usize) -> usize {
    stream.set_nonblocking(true).unwrap();
    let (mut sent, mut offset) = (0, 0);
    let mut blocked_since: Option<Instant> = None;
    while sent < bytes_max {
        match stream.write(&chunk[offset..]) {
            Ok(count) => {
                (sent, offset, blocked_since) =
                    (sent + count, (offset + count) % chunk.len(), None);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > SILENCE {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => panic!("the slow reader's socket failed: {error}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
    sent
}

/// One control round trip, in milliseconds.
fn round_trip_ms(control: &mut Client, request: &Request) -> u128 {
    let start = Instant::now();
    assert_eq!(control.call(request).0, 0);
    start.elapsed().as_millis()
}

#[test]
fn a_client_that_stops_reading_is_bounded_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let pid = node.child.id();
    let mut control = Client::connect(node.port);
    let mut writer = Client::connect(node.port);
    assert_eq!(control.call(&create("/big", &vec![7; 500 << 10], 0)).0, 0);
    // A long path makes each watch event big, so the watcher's backlog passes the
    // disconnect bound after a few thousand writes.
    let hot = format!("/{}", "h".repeat(32 << 10));
    assert_eq!(control.call(&create(&hot, b"", 0)).0, 0);
    let rss_start = rss_bytes(pid);

    // A reader that pipelines getData of the 500 KB node and never reads a reply.
    let mut reader = Client::connect(node.port);
    let chunk: Vec<u8> = (0..4_096).flat_map(|_| frame(10, &get("/big", false))).collect();
    let sent_max = SLOW_READER_REQUEST_BYTES_MAX;
    let sent = send_until_pushed_back(&mut reader.stream, &chunk, sent_max);
    assert!(sent < sent_max, "the server never stopped reading the slow reader");
    // A watcher of everything that never reads its events.
    let mut watcher = Client::connect(node.port);
    let recursive = Request::AddWatch(AddWatchRequest { path: "/".into(), mode: 1 });
    assert_eq!(watcher.call(&recursive).0, 0);

    let mut rss_peak = rss_bytes(pid);
    let mut slowest_ms = 0;
    let mut writes = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !node.log().contains("client does not read its replies") {
        assert!(Instant::now() < deadline, "the watcher was never disconnected: {}", node.log());
        let xids: Vec<i32> = (0..128).map(|_| writer.send(&set(&hot, b"x"))).collect();
        for xid in xids {
            let (header, _) = writer.receive(zabflow_net::jute::OpCode::SetData).unwrap();
            assert_eq!((header.xid, header.err), (xid, 0));
        }
        writes += 128;
        slowest_ms = slowest_ms.max(round_trip_ms(&mut control, &get("/big", false)));
        rss_peak = rss_peak.max(rss_bytes(pid));
    }
    let growth = rss_peak.saturating_sub(rss_start);
    assert!(
        growth < SLOW_READER_RSS_GROWTH_BYTES_MAX,
        "RSS grew {} MiB while clients did not read ({writes} writes)",
        growth >> 20
    );
    assert!(slowest_ms < CONTROL_ROUND_TRIP_MS_MAX, "a control read took {slowest_ms} ms");
    // The slow reader is still connected, held at its bound, and still served by nothing.
    assert!(node.child.id() == pid && rss_bytes(pid) > 0);
    drop(reader);
    drop(watcher);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rss_end = rss_bytes(pid);
    while rss_end.saturating_sub(rss_start) > SLOW_READER_RSS_RETAINED_BYTES_MAX {
        assert!(
            Instant::now() < deadline,
            "the server kept {} MiB after the slow clients left (peak {} MiB over start)",
            rss_end.saturating_sub(rss_start) >> 20,
            growth >> 20
        );
        assert_eq!(control.call(&Request::Ping).0, 0);
        std::thread::sleep(Duration::from_millis(50));
        rss_end = rss_bytes(pid);
    }
    eprintln!(
        "slow reader: {} KiB of getData sent unread, {writes} watched writes; RSS start {} MiB, \
         peak +{} MiB, end +{} MiB; slowest control read {slowest_ms} ms",
        sent >> 10,
        rss_start >> 20,
        growth >> 20,
        rss_end.saturating_sub(rss_start) >> 20
    );
}

// ---------------------------------------------------------------------------------------
// Representative malformed frames, compared with real ZooKeeper
// ---------------------------------------------------------------------------------------

/// A case: its name, whether it runs after a handshake, and its bytes.
struct Case {
    name: &'static str,
    after_handshake: bool,
    bytes: Vec<u8>,
}

/// Cases where zabflow deliberately answers otherwise than ZooKeeper 3.8, with zabflow's
/// outcome and why.
const DELIBERATE_DIFFERENCES: &[(&str, &[Outcome], &str)] = &[
    (
        "check outside a multi",
        &[Outcome::Reply { xid: 5, err: -6 }, Outcome::Reply { xid: -2, err: 0 }, Outcome::Silent],
        "ZooKeeper never answers the check (its client would wait for the reply forever); \
         zabflow answers Unimplemented and keeps the connection",
    ),
    (
        "createSession op after handshake",
        &[Outcome::Closed],
        "ZooKeeper creates a second session and sends a ConnectResponse on the open \
         connection; zabflow closes the connection as a protocol error",
    ),
];

fn representative_cases() -> Vec<Case> {
    let case = |name, after_handshake, bytes| Case { name, after_handshake, bytes };
    let valid_get = frame(5, &get("/", false));
    let mut trailing = valid_get.clone();
    trailing.extend_from_slice(&[1, 2, 3, 4, 5]);
    trailing[3] += 5;
    let mut connect_truncated = connect_frame(0, &[0; 16]);
    connect_truncated.truncate(14);
    connect_truncated[3] = 10;
    let huge_acl = [&[0, 0, 0, 2][..], b"/h", &[0, 0, 0, 0], &[0x7f, 0xff, 0xff, 0xff]].concat();
    let huge_watches = [&[0; 8][..], &[0x7f, 0xff, 0xff, 0xff]].concat();
    let check_then_ping =
        [raw_frame(5, 13, &[0, 0, 0, 1, b'/', 0, 0, 0, 0]), frame(-2, &Request::Ping)].concat();
    vec![
        case("header only, getData", true, raw_frame(5, 4, &[])),
        case("path length past the body", true, raw_frame(5, 4, &[0, 0, 0, 100, b'/', b'a'])),
        case("null path (length -1)", true, raw_frame(5, 4, &[0xff, 0xff, 0xff, 0xff, 0])),
        case("path length -5", true, raw_frame(5, 4, &[0xff, 0xff, 0xff, 0xfb, 0])),
        case("create with 2^31-1 ACLs", true, raw_frame(5, 1, &huge_acl)),
        case("setWatches with 2^31-1 paths", true, raw_frame(5, 101, &huge_watches)),
        case("trailing bytes after the body", true, trailing),
        case("frame length 0", true, vec![0, 0, 0, 0]),
        case("frame length 3", true, vec![0, 0, 0, 3, 1, 2, 3]),
        case("frame length -2", true, vec![0xff, 0xff, 0xff, 0xfe, 1, 2]),
        case("partial frame", true, vec![0, 0, 0, 100, 1, 2, 3]),
        case("unknown op 999", true, raw_frame(5, 999, &[])),
        case("notification op 0", true, raw_frame(5, 0, &[])),
        case("check outside a multi", true, check_then_ping),
        case("createSession op after handshake", true, raw_frame(5, -10, &[0, 0, 0, 5])),
        case("truncated ConnectRequest", false, connect_truncated),
        case("ConnectRequest frame length 0", false, vec![0, 0, 0, 0]),
        case("ConnectRequest frame length -1", false, vec![0xff, 0xff, 0xff, 0xff]),
        case("request before the handshake", false, valid_get),
    ]
}

/// Runs one case on a fresh connection to `port`.
fn run_case(port: u16, case: &Case) -> Vec<Outcome> {
    let mut stream = if case.after_handshake {
        let client = Client::connect(port);
        client.stream
    } else {
        TcpStream::connect(("127.0.0.1", port)).unwrap()
    };
    stream.write_all(&case.bytes).unwrap();
    observe(&mut stream)
}

#[test]
fn malformed_frames_get_zookeepers_answers() {
    let real_port = real_zookeeper_port();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let mut differences = Vec::new();
    for case in representative_cases() {
        let (ours, theirs) = (run_case(node.port, &case), run_case(real_port, &case));
        if let Some((_, expected, why)) = DELIBERATE_DIFFERENCES.iter().find(|d| d.0 == case.name) {
            assert_eq!(ours, *expected, "{}: {why}", case.name);
            assert_ne!(ours, theirs, "{}: ZooKeeper now agrees; drop the difference", case.name);
        } else if ours != theirs {
            differences.push(format!("{}: zabflow {ours:?}, ZooKeeper {theirs:?}", case.name));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Fuzzed and truncated frames
// ---------------------------------------------------------------------------------------

/// Valid request frames the fuzz loop mutates; every path is under `/fuzz`, so no mutation
/// can reach the control session's `/control` nodes.
fn fuzz_bases() -> Vec<Vec<u8>> {
    let multi = Request::Multi(MultiRequest {
        ops: vec![
            MultiOp::Create(zabflow_net::jute::CreateRequest {
                path: "/fuzz/m".into(),
                data: Some(b"m".to_vec()),
                acl: coord::open_acl(),
                flags: 0,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/fuzz".into(),
                data: Some(b"d".to_vec()),
                version: -1,
            }),
        ],
    });
    let watches = Request::SetWatches(SetWatches {
        relative_zxid: 0,
        data_watches: vec!["/fuzz".into()],
        exist_watches: vec!["/fuzz/e".into()],
        child_watches: vec!["/fuzz".into()],
    });
    [
        create("/fuzz/a", b"payload", 0),
        create("/fuzz/s", b"", 3),
        set("/fuzz", b"fuzzed"),
        get("/fuzz", true),
        Request::Exists(ExistsRequest { path: "/fuzz/x".into(), watch: true }),
        Request::GetChildren(GetChildrenRequest { path: "/fuzz".into(), watch: true }),
        Request::Delete(DeleteRequest { path: "/fuzz/a".into(), version: -1 }),
        multi,
        watches,
        Request::AddWatch(AddWatchRequest { path: "/fuzz".into(), mode: 0 }),
    ]
    .iter()
    .enumerate()
    .map(|(index, request)| frame(index as i32 + 1, request))
    .collect()
}

/// One random mutation: its kind and the bytes to send, and whether after a handshake.
fn mutate(rng: &mut SmallRng, bases: &[Vec<u8>]) -> (&'static str, bool, Vec<u8>) {
    let mut bytes = bases[rng.gen_range(0..bases.len())].clone();
    let body_bytes = bytes.len() - 4;
    match rng.gen_range(0..8) {
        0 => {
            for _ in 0..rng.gen_range(1..=4) {
                let bit = rng.gen_range(0..bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            ("bit flips", true, bytes)
        }
        1 => {
            let length = rng.gen_range(0..body_bytes as i32 + 64);
            bytes[..4].copy_from_slice(&length.to_be_bytes());
            ("wrong length", true, bytes)
        }
        2 => {
            let length = rng.gen_range(i32::MIN..0);
            bytes[..4].copy_from_slice(&length.to_be_bytes());
            ("negative length", true, bytes)
        }
        3 => {
            let at = rng.gen_range(12..bytes.len() - 3);
            let count = [i32::MAX, i32::MIN, -1, 0x0100_0000][rng.gen_range(0..4)];
            bytes[at..at + 4].copy_from_slice(&count.to_be_bytes());
            ("huge count", true, bytes)
        }
        4 => {
            let op = if rng.gen_bool(0.5) { rng.gen_range(-12..120) } else { rng.gen() };
            bytes[8..12].copy_from_slice(&i32::to_be_bytes(op));
            ("random op code", true, bytes)
        }
        5 => ("random bytes after the handshake", true, random_bytes(rng)),
        6 => ("random bytes before the handshake", false, random_bytes(rng)),
        _ => {
            let mut connect = connect_frame(rng.gen(), &[rng.gen(); 16]);
            for _ in 0..rng.gen_range(1..=4) {
                let bit = rng.gen_range(0..connect.len() * 8);
                connect[bit / 8] ^= 1 << (bit % 8);
            }
            ("fuzzed ConnectRequest", false, connect)
        }
    }
}

fn random_bytes(rng: &mut SmallRng) -> Vec<u8> {
    let mut bytes = vec![0; rng.gen_range(1..200)];
    rng.fill(&mut bytes[..]);
    bytes
}

/// Sends `bytes` on a fresh connection (after a handshake when asked), half-closes it and
/// waits until the server has closed it, so the server has processed every byte.
fn send_fuzz_case(port: u16, after_handshake: bool, bytes: &[u8]) {
    let mut stream = if after_handshake {
        Client::resume(port, 0, vec![0; 16], 4_000).expect("a session").stream
    } else {
        TcpStream::connect(("127.0.0.1", port)).unwrap()
    };
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(count) if count > 0) {}
}

/// The control session's turn after case `case`: it must answer, and it writes one node.
fn control_step(control: &mut Client, values: &mut [u32], case: usize, context: &str) {
    let index = case % CONTROL_NODES;
    values[index] += 1;
    let path = format!("/control/n{index}");
    let (err, _) = control.call(&set(&path, values[index].to_string().as_bytes()));
    assert_eq!(err, 0, "control setData failed after {context}");
}

#[test]
fn fuzzed_and_truncated_frames_leave_the_server_and_other_sessions_intact() {
    let seed = std::env::var("ZABFLOW_FUZZ_SEED")
        .map_or(FUZZ_SEED_DEFAULT, |seed| seed.parse().expect("ZABFLOW_FUZZ_SEED is a u64"));
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "forceSync=no");
    let mut control = Client::connect(node.port);
    assert_eq!(control.call(&create("/control", b"", 0)).0, 0);
    assert_eq!(control.call(&create("/fuzz", b"", 0)).0, 0);
    for index in 0..CONTROL_NODES {
        assert_eq!(control.call(&create(&format!("/control/n{index}"), b"0", 0)).0, 0);
    }
    let mut values = vec![0u32; CONTROL_NODES];
    let bases = fuzz_bases();
    let mut cases: Vec<(String, bool, Vec<u8>)> = Vec::new();
    for base in bases.iter().take(3) {
        for cut in 1..base.len() {
            cases.push((format!("truncated at {cut}"), true, base[..cut].to_vec()));
        }
    }
    for _ in 0..FUZZ_MUTATIONS {
        let (kind, after_handshake, bytes) = mutate(&mut rng, &bases);
        cases.push((kind.to_owned(), after_handshake, bytes));
    }
    for (case, (kind, after_handshake, bytes)) in cases.iter().enumerate() {
        let context = format!("seed {seed} case {case} ({kind}): {bytes:?}");
        send_fuzz_case(node.port, *after_handshake, bytes);
        assert!(node.child.try_wait().unwrap().is_none(), "server died: {context}");
        control_step(&mut control, &mut values, case, &context);
    }
    for (index, value) in values.iter().enumerate() {
        let (err, body) = control.call(&get(&format!("/control/n{index}"), false));
        let Some(Response::GetData(reply)) = body else { panic!("seed {seed}: err {err}") };
        assert_eq!(reply.data.unwrap(), value.to_string().as_bytes(), "seed {seed}");
        assert_eq!(reply.stat.version as u32, *value, "seed {seed}: only control wrote it");
    }
    let children =
        Request::GetChildren(GetChildrenRequest { path: "/control".into(), watch: false });
    let Some(Response::GetChildren(list)) = control.call(&children).1 else { panic!() };
    assert_eq!(list.children.len(), CONTROL_NODES, "seed {seed}");
    node.stop();
}

// ---------------------------------------------------------------------------------------
// Invalid paths
// ---------------------------------------------------------------------------------------

/// Paths under test; `R` stands for the test's root, which exists on both servers.
const PATHS: &[&str] = &[
    "",
    "R",
    "a",
    "R/",
    "R//a",
    "R/a//b",
    "//",
    "R/.",
    "R/..",
    "R/./a",
    "R/../a",
    "R/.a",
    "R/a.",
    "R/..a",
    "/.",
    "/..",
    "R/a\0b",
    "R/\u{1}",
    "R/\u{1f}",
    "R/\u{7f}",
    "R/\u{9f}",
    "R/\u{a0}",
    "R/\u{d7ff}",
    "R/\u{e000}",
    "R/\u{f8ff}",
    "R/\u{f900}",
    "R/\u{ffef}",
    "R/\u{fff0}",
    "R/\u{fffd}",
    "R/\u{ffff}",
    "R/\u{10000}",
    "R/😀",
    "/missing/\u{1}",
    "/missing/",
    "/missing/..",
    "/",
    "/zookeeper/x",
    "R/ok",
    "R/ok/",
];

/// Raw (non-UTF-8) path bytes under the root: a UTF-16 surrogate as CESU-8, a lone
/// continuation byte, a truncated sequence, an overlong `/`.
const RAW_PATH_SUFFIXES: &[&[u8]] =
    &[&[0xed, 0xa0, 0x80], &[0x80], &[0xe2, 0x82], &[0xc0, 0xaf], &[0xff]];

/// The six ops on `path`, in order (create first, delete last).
fn path_requests(path: &str) -> Vec<Request> {
    vec![
        create(path, b"v", 0),
        Request::Exists(ExistsRequest { path: path.into(), watch: false }),
        get(path, false),
        set(path, b"w"),
        Request::GetChildren(GetChildrenRequest { path: path.into(), watch: false }),
        Request::Delete(DeleteRequest { path: path.into(), version: -1 }),
    ]
}

const PLACEHOLDER: &str = "/PLACEHOLDER";

/// `request`'s frame with its path `PLACEHOLDER` replaced by raw `path` bytes.
fn frame_with_raw_path(xid: i32, request: &Request, path: &[u8]) -> Vec<u8> {
    let bytes = frame(xid, request);
    let at = bytes.windows(PLACEHOLDER.len()).position(|w| w == PLACEHOLDER.as_bytes()).unwrap();
    let mut patched = bytes[..at - 4].to_vec();
    patched.extend_from_slice(&(path.len() as i32).to_be_bytes());
    patched.extend_from_slice(path);
    patched.extend_from_slice(&bytes[at + PLACEHOLDER.len()..]);
    let length = patched.len() as i32 - 4;
    patched[..4].copy_from_slice(&length.to_be_bytes());
    patched
}

/// Error codes of every op on every path, on a server at `port` under `root`.
fn path_errors(port: u16, root: &str) -> Vec<(String, &'static str, Vec<Outcome>)> {
    let mut client = Client::connect(port);
    let (err, _) = client.call(&create(root, b"", 0));
    assert!(err == 0 || err == -110, "create {root}: {err}");
    let names = ["create", "exists", "getData", "setData", "getChildren", "delete"];
    let mut results = Vec::new();
    for pattern in PATHS {
        let path = pattern.replacen('R', root, 1);
        for (request, name) in path_requests(&path).iter().zip(names) {
            results.push((format!("{pattern:?}"), name, vec![call_outcome(&mut client, request)]));
        }
    }
    for suffix in RAW_PATH_SUFFIXES {
        let path = [root.as_bytes(), b"/", suffix].concat();
        for (request, name) in path_requests(PLACEHOLDER).iter().zip(names) {
            let mut stream = Client::connect(port).stream;
            stream.write_all(&frame_with_raw_path(7, request, &path)).unwrap();
            results.push((format!("R/{suffix:x?}"), name, observe(&mut stream)));
        }
    }
    results
}

fn call_outcome(client: &mut Client, request: &Request) -> Outcome {
    let xid = client.send(request);
    match client.receive(request.op_code()) {
        Some((header, _)) => Outcome::Reply { xid: header.xid - xid, err: header.err },
        None => Outcome::Closed,
    }
}

#[test]
fn invalid_paths_get_zookeepers_error_codes() {
    let real_port = real_zookeeper_port();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let root = "/bad_input_paths";
    let ours = path_errors(node.port, root);
    let theirs = path_errors(real_port, root);
    let differences: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|(ours, theirs)| ours != theirs)
        .map(|(ours, theirs)| {
            format!("{} {}: zabflow {:?}, ZooKeeper {:?}", ours.1, ours.0, ours.2, theirs.2)
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
