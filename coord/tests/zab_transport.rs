//! `PeerTransport` over real loopback sockets: a mesh of transports (and hand-driven fake
//! peers) on free ports chosen at run time.
//!
//! Covered: messages of both kinds arrive in order; a stopped server is reported and, once
//! restarted on the same ports, reconnected; messages sent for a link the owner has not seen
//! come up are dropped; strangers, garbage and bad hellos are refused without disturbing the
//! mesh; multi-MiB messages arrive intact; a peer that stops reading is disconnected; a
//! corrupt frame drops the link; a peer's new connection replaces its old one; an owner that
//! takes no events pushes back on the sender; the owner can close a link itself; inline
//! transports, turned by their owners, wake the owner's poll for every message.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zabflow_coord::config::PeerConfig;
use zabflow_coord::zab::transport::{
    PeerEvent, PeerTransport, TransportConfig, RECEIVED_BYTES_HIGH,
};
use zabflow_coord::zab::wire::{self, FrameDecoder, Hello, PortKind, FRAME_HEADER_BYTES};
use zabflow_coord::zab::{Entry, Message, PeerState, ServerId, SyncMode, Vote};

/// How long any one expectation may take (generous: 2 shared cores, unoptimised builds).
const WAIT: Duration = Duration::from_secs(30);

/// `server.N=127.0.0.1:quorum:election` for ids 1..=count.
fn ensemble(count: usize) -> Vec<PeerConfig> {
    let ports = zabflow_tests::ports::free_loopback_ports(2 * count).unwrap();
    (0..count)
        .map(|index| PeerConfig {
            id: index as u64 + 1,
            host: "127.0.0.1".to_owned(),
            quorum_port: ports[2 * index],
            election_port: ports[2 * index + 1],
            rest: String::new(),
        })
        .collect()
}

/// A transport and every event it delivered so far.
struct Node {
    id: ServerId,
    transport: PeerTransport,
    log: Vec<PeerEvent>,
    wakes: Arc<AtomicUsize>,
}

impl Node {
    fn start(id: ServerId, peers: &[PeerConfig]) -> Node {
        Node::start_with(id, peers, TransportConfig::default())
    }

    fn start_with(id: ServerId, peers: &[PeerConfig], config: TransportConfig) -> Node {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let wake = Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let transport = PeerTransport::start_with(id, peers, wake, config).unwrap();
        Node { id, transport, log: Vec::new(), wakes }
    }

    /// Takes events for up to `timeout`.
    fn pump(&mut self, timeout: Duration) {
        if let Some(event) = self.transport.recv_timeout(timeout) {
            self.log.push(event);
        }
        while let Some(event) = self.transport.try_recv() {
            self.log.push(event);
        }
    }

    /// Takes events until `done` holds for the log.
    fn wait(&mut self, what: &str, done: impl Fn(&[PeerEvent]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.log) {
            assert!(Instant::now() < deadline, "server {}: no {what}; events: {}", self.id, {
                summary(&self.log)
            });
            self.pump(Duration::from_millis(20));
        }
    }

    fn wait_connected(&mut self, peer: ServerId) {
        self.wait(&format!("Connected({peer})"), |log| last_link_event(log, peer) == Some(true));
    }

    fn wait_disconnected(&mut self, peer: ServerId) {
        self.wait(&format!("Disconnected({peer})"), |log| {
            last_link_event(log, peer) == Some(false)
        });
    }

    fn received_from(&self, peer: ServerId) -> Vec<&Message> {
        self.log
            .iter()
            .filter_map(|event| match event {
                PeerEvent::Received(from, message) if *from == peer => Some(message),
                _ => None,
            })
            .collect()
    }
}

/// Whether the last link event for `peer` is Connected (true) or Disconnected (false).
fn last_link_event(log: &[PeerEvent], peer: ServerId) -> Option<bool> {
    log.iter().rev().find_map(|event| match event {
        PeerEvent::Connected(id) if *id == peer => Some(true),
        PeerEvent::Disconnected(id) if *id == peer => Some(false),
        _ => None,
    })
}

fn summary(log: &[PeerEvent]) -> String {
    let received = log.iter().filter(|e| matches!(e, PeerEvent::Received(..))).count();
    let links: Vec<&PeerEvent> =
        log.iter().filter(|e| !matches!(e, PeerEvent::Received(..))).collect();
    format!("{links:?} and {received} messages")
}

fn vote(round: u64) -> Message {
    Message::Vote(Vote {
        leader: 7,
        zxid: 0x1_0000_0002,
        peer_epoch: 1,
        round,
        state: PeerState::Looking,
    })
}

fn round_of(message: &Message) -> Option<u64> {
    match message {
        Message::Vote(vote) => Some(vote.round),
        _ => None,
    }
}

/// Election links report no events: votes sent before theirs is up are dropped. Sends a
/// probe vote (round `u64::MAX`) from every node to every other until all have one.
fn await_election_links(nodes: &mut [Node]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let ids: Vec<ServerId> = nodes.iter().map(|node| node.id).collect();
        let missing = |node: &Node| {
            ids.iter().any(|&peer| {
                peer != node.id
                    && !node.received_from(peer).iter().any(|m| round_of(m) == Some(u64::MAX))
            })
        };
        if !nodes.iter().any(missing) {
            return;
        }
        assert!(Instant::now() < deadline, "election links did not come up");
        for node in nodes.iter() {
            for &peer in ids.iter().filter(|&&peer| peer != node.id) {
                node.transport.send(peer, vote(u64::MAX));
            }
        }
        for node in nodes.iter_mut() {
            node.pump(Duration::from_millis(20));
        }
    }
}

fn connect_mesh(nodes: &mut [Node]) {
    let ids: Vec<ServerId> = nodes.iter().map(|node| node.id).collect();
    for node in nodes.iter_mut() {
        let me = node.id;
        for &peer in ids.iter().filter(|&&peer| peer != me) {
            node.wait_connected(peer);
        }
    }
}

#[test]
fn three_servers_exchange_votes_and_quorum_messages_in_order() {
    const COUNT: u64 = 2_000;
    let peers = ensemble(3);
    let mut nodes: Vec<Node> = (1..=3).map(|id| Node::start(id, &peers)).collect();
    connect_mesh(&mut nodes);
    await_election_links(&mut nodes);
    for node in &nodes {
        for peer in (1..=3).filter(|&peer| peer != node.id) {
            for index in 0..COUNT {
                node.transport.send(peer, Message::Ping { committed: index as i64 });
                node.transport.send(peer, vote(index));
                if index % 100 == 0 {
                    let data = Arc::from(format!("{}->{peer} #{index}", node.id).into_bytes());
                    let entries = vec![Entry { zxid: index as i64, data }];
                    node.transport.send(peer, Message::Proposal { entries });
                }
            }
        }
    }
    for node in &mut nodes {
        let me = node.id;
        for peer in (1..=3).filter(|&peer| peer != me) {
            node.wait(&format!("{COUNT} pings from {peer}"), |log| {
                let pings = log.iter().filter(|event| match event {
                    PeerEvent::Received(from, Message::Ping { .. }) => *from == peer,
                    _ => false,
                });
                pings.count() as u64 == COUNT
            });
            node.wait(&format!("{COUNT} votes from {peer}"), |log| {
                let votes = log.iter().filter(|event| {
                    matches!(event, PeerEvent::Received(from, Message::Vote(v))
                        if *from == peer && v.round != u64::MAX)
                });
                votes.count() as u64 == COUNT
            });
            let received = node.received_from(peer);
            let pings: Vec<i64> = received
                .iter()
                .filter_map(|m| match m {
                    Message::Ping { committed } => Some(*committed),
                    _ => None,
                })
                .collect();
            assert_eq!(pings, (0..COUNT as i64).collect::<Vec<_>>(), "pings {peer}->{}", node.id);
            let rounds: Vec<u64> =
                received.iter().filter_map(|m| round_of(m)).filter(|&r| r != u64::MAX).collect();
            assert_eq!(rounds, (0..COUNT).collect::<Vec<_>>(), "votes {peer}->{}", node.id);
            // Proposals travel on the quorum link, in order with the pings around them.
            let quorum: Vec<&Message> =
                received.iter().copied().filter(|m| round_of(m).is_none()).collect();
            for (position, message) in quorum.iter().enumerate() {
                if let Message::Proposal { entries } = message {
                    let index = entries[0].zxid;
                    assert_eq!(quorum[position - 1], &Message::Ping { committed: index });
                    let text = format!("{peer}->{} #{index}", node.id);
                    assert_eq!(&entries[0].data[..], text.as_bytes());
                }
            }
        }
        assert!(node.wakes.load(Ordering::Relaxed) > 0, "the wake callback was called");
        assert_eq!(summary(&node.log).matches("Disconnected").count(), 0);
    }
}

#[test]
fn a_stopped_server_is_reported_and_reconnects_after_a_restart() {
    let peers = ensemble(3);
    let mut nodes: Vec<Node> = (1..=3).map(|id| Node::start(id, &peers)).collect();
    connect_mesh(&mut nodes);

    let mut stopped = nodes.remove(1);
    stopped.transport.stop();
    drop(stopped);
    nodes[0].wait_disconnected(2);
    nodes[1].wait_disconnected(2);
    // Sent while the owner knows the link is down: dropped, never delivered after restart.
    nodes[0].transport.send(2, Message::Commit { zxid: -1 });

    let mut restarted = Node::start(2, &peers);
    restarted.wait_connected(1);
    restarted.wait_connected(3);
    nodes[0].wait_connected(2);
    nodes[1].wait_connected(2);
    nodes[0].transport.send(2, Message::Commit { zxid: 1 });
    nodes[1].transport.send(2, Message::Commit { zxid: 3 });
    restarted.transport.send(1, Message::Ack { zxid: 21 });
    restarted.transport.send(3, Message::Ack { zxid: 23 });
    restarted.wait("commits from 1 and 3", |log| {
        log.iter().filter(|e| matches!(e, PeerEvent::Received(_, Message::Commit { .. }))).count()
            == 2
    });
    assert_eq!(restarted.received_from(1), vec![&Message::Commit { zxid: 1 }]);
    assert_eq!(restarted.received_from(3), vec![&Message::Commit { zxid: 3 }]);
    nodes[0].wait("the ack of 2", |log| {
        log.contains(&PeerEvent::Received(2, Message::Ack { zxid: 21 }))
    });
    nodes[1].wait("the ack of 2", |log| {
        log.contains(&PeerEvent::Received(2, Message::Ack { zxid: 23 }))
    });
    // Server 1 and 3 were not disturbed.
    assert_eq!(last_link_event(&nodes[0].log, 3), Some(true));
    assert_eq!(summary(&nodes[0].log).matches("Disconnected(3)").count(), 0);
}

/// Connects to `port` and sends `bytes`.
fn stranger(port: u16, bytes: &[u8]) -> TcpStream {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.write_all(bytes).unwrap();
    socket
}

/// Whether the server closes `socket` (end of stream or reset) without sending a byte.
fn closed_without_answer(mut socket: TcpStream) -> bool {
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut buffer = [0; 64];
    match socket.read(&mut buffer) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn hello_frame(server_id: ServerId, port: PortKind) -> Vec<u8> {
    let mut frame = Vec::new();
    wire::encode_hello(&Hello { server_id, port }, &mut frame);
    frame
}

/// A frame around `body` with a correct CRC.
fn raw_frame(body: &[u8]) -> Vec<u8> {
    let len_bytes = (body.len() as u32).to_be_bytes();
    let mut frame = len_bytes.to_vec();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), body);
    frame.extend_from_slice(&crc.to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

#[test]
fn strangers_garbage_and_bad_hellos_are_refused_without_disturbing_the_mesh() {
    let peers = ensemble(3);
    let mut nodes: Vec<Node> = (1..=3).map(|id| Node::start(id, &peers)).collect();
    connect_mesh(&mut nodes);
    let quorum_port = |id: usize| peers[id - 1].quorum_port;

    let good = hello_frame(2, PortKind::Quorum);
    let body = &good[FRAME_HEADER_BYTES..];
    let mut bad_magic = body.to_vec();
    bad_magic[0] ^= 0xff;
    let mut bad_version = body.to_vec();
    bad_version[5] = 99;
    let mut bad_port = body.to_vec();
    bad_port[14] = 7;
    let mut bad_crc = good.clone();
    bad_crc[FRAME_HEADER_BYTES + 3] ^= 1;
    let cases: Vec<(&str, u16, Vec<u8>)> = vec![
        ("HTTP", quorum_port(1), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("bad magic", quorum_port(1), raw_frame(&bad_magic)),
        ("bad version", quorum_port(1), raw_frame(&bad_version)),
        ("bad port kind", quorum_port(1), raw_frame(&bad_port)),
        ("bad crc", quorum_port(1), bad_crc),
        ("oversized hello", quorum_port(1), raw_frame(&[0; 64])),
        ("unknown id", quorum_port(1), hello_frame(9, PortKind::Quorum)),
        ("own id", quorum_port(1), hello_frame(1, PortKind::Quorum)),
        ("lower id dialling", quorum_port(3), hello_frame(1, PortKind::Quorum)),
        ("election hello on the quorum port", quorum_port(1), hello_frame(2, PortKind::Election)),
        ("silence", quorum_port(2), Vec::new()),
    ];
    let sockets: Vec<(&str, TcpStream)> =
        cases.iter().map(|(name, port, bytes)| (*name, stranger(*port, bytes))).collect();
    for (name, socket) in sockets {
        assert!(closed_without_answer(socket), "{name}: not refused");
    }

    // The mesh is as it was: no link event since, and messages flow.
    for node in &mut nodes {
        node.pump(Duration::from_millis(50));
        assert!(!summary(&node.log).contains("Disconnected"), "{}", summary(&node.log));
    }
    nodes[0].transport.send(3, Message::LeaderInfo { epoch: 4 });
    let ack = Message::AckEpoch { current_epoch: 3, last_zxid: 9, counts: true };
    nodes[2].transport.send(1, ack);
    nodes[2].wait("LeaderInfo", |log| {
        log.contains(&PeerEvent::Received(1, Message::LeaderInfo { epoch: 4 }))
    });
    nodes[0].wait("AckEpoch", |log| {
        log.contains(&PeerEvent::Received(
            3,
            Message::AckEpoch { current_epoch: 3, last_zxid: 9, counts: true },
        ))
    });
}

#[test]
fn multi_megabyte_messages_arrive_intact() {
    let peers = ensemble(2);
    let mut nodes: Vec<Node> = (1..=2).map(|id| Node::start(id, &peers)).collect();
    connect_mesh(&mut nodes);
    let snapshot: Vec<u8> =
        (0..12u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let entries: Vec<Entry> =
        (0..200).map(|zxid| Entry { zxid, data: Arc::from(vec![zxid as u8; 20 << 10]) }).collect();
    let sync = Message::Sync {
        mode: SyncMode::Snap { zxid: 99, data: Arc::from(snapshot) },
        entries: entries.clone(),
    };
    let proposal = Message::Proposal { entries };
    for (from, to) in [(0, 2), (1, 1)] {
        nodes[from].transport.send(to, sync.clone());
        nodes[from].transport.send(to, proposal.clone());
        nodes[from].transport.send(to, Message::NewLeader { epoch: 2, zxid: 299 });
    }
    for (index, peer) in [(0, 2), (1, 1)] {
        nodes[index].wait("a Sync, a Proposal and NewLeader", |log| {
            log.iter().filter(|e| matches!(e, PeerEvent::Received(..))).count() == 3
        });
        let received = nodes[index].received_from(peer);
        assert!(received[0] == &sync, "the Sync differs");
        assert!(received[1] == &proposal, "the Proposal differs");
        assert_eq!(received[2], &Message::NewLeader { epoch: 2, zxid: 299 });
    }
}

/// A fake server `id` that dials `port` and completes the handshake.
fn fake_peer(id: ServerId, port: u16) -> (TcpStream, FrameDecoder) {
    let mut socket = stranger(port, &hello_frame(id, PortKind::Quorum));
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut decoder = FrameDecoder::default();
    let mut buffer = [0; 256];
    loop {
        let read = socket.read(&mut buffer).unwrap();
        assert!(read > 0, "the server closed the connection");
        decoder.push(&buffer[..read]);
        if let Some(hello) = decoder.next_hello().unwrap() {
            assert_eq!(hello.port, PortKind::Quorum);
            return (socket, decoder);
        }
    }
}

#[test]
fn a_peer_that_stops_reading_is_disconnected() {
    let peers = ensemble(2);
    let config = TransportConfig { output_bytes_max: 1 << 20, ..TransportConfig::default() };
    let mut node = Node::start_with(1, &peers, config);
    let (idle, _) = fake_peer(2, peers[0].quorum_port);
    node.wait_connected(2);
    let payload = vec![0x5a; 64 << 10];
    let deadline = Instant::now() + WAIT;
    let mut sent_bytes = 0usize;
    while last_link_event(&node.log, 2) != Some(false) {
        assert!(Instant::now() < deadline, "still connected after {sent_bytes} bytes");
        for _ in 0..16 {
            node.transport.send(2, Message::Request { payload: payload.clone() });
            sent_bytes += payload.len();
        }
        node.pump(Duration::from_millis(5));
    }
    // Bounded: the socket buffers plus `output_bytes_max`, far below what was sent.
    assert!(sent_bytes < 1 << 30, "{sent_bytes}");
    drop(idle);
}

#[test]
fn a_corrupt_frame_drops_the_link_and_a_new_connection_replaces_the_old() {
    let peers = ensemble(2);
    let mut node = Node::start(1, &peers);
    let port = peers[0].quorum_port;

    let (mut fake, _) = fake_peer(2, port);
    node.wait_connected(2);
    let mut frame = Vec::new();
    wire::encode(&Message::Ping { committed: 5 }, &mut frame).unwrap();
    let last = frame.len() - 1;
    frame[last] ^= 0x10;
    fake.write_all(&frame).unwrap();
    node.wait_disconnected(2);
    assert!(closed_without_answer(fake));

    // A valid peer again; then a second connection of the same peer replaces the first.
    let (mut first, _) = fake_peer(2, port);
    node.wait_connected(2);
    let (mut second, mut decoder) = fake_peer(2, port);
    node.wait("the replacement", |log| {
        log.iter().filter(|e| matches!(e, PeerEvent::Connected(2))).count() == 3
    });
    assert!(closed_without_answer(first.try_clone().unwrap()));
    let _ = first.shutdown(Shutdown::Both);
    let _ = first.flush();
    let mut frame = Vec::new();
    wire::encode(&Message::Ping { committed: 6 }, &mut frame).unwrap();
    second.write_all(&frame).unwrap();
    node.wait("the ping on the new connection", |log| {
        log.contains(&PeerEvent::Received(2, Message::Ping { committed: 6 }))
    });
    // Sends go on the new connection.
    node.transport.send(2, Message::Commit { zxid: 8 });
    let mut buffer = [0; 256];
    let message = loop {
        if let Some(message) = decoder.next_message().unwrap() {
            break message;
        }
        let read = second.read(&mut buffer).unwrap();
        assert!(read > 0);
        decoder.push(&buffer[..read]);
    };
    assert_eq!(message, Message::Commit { zxid: 8 });
    let links: Vec<&PeerEvent> =
        node.log.iter().filter(|e| !matches!(e, PeerEvent::Received(..))).collect();
    let expected = [
        PeerEvent::Connected(2),
        PeerEvent::Disconnected(2),
        PeerEvent::Connected(2),
        PeerEvent::Disconnected(2),
        PeerEvent::Connected(2),
    ];
    assert_eq!(links, expected.iter().collect::<Vec<_>>());
}

#[test]
fn an_owner_that_does_not_take_events_pushes_back_on_the_sender() {
    let peers = ensemble(2);
    let mut receiver = Node::start(1, &peers);
    let config = TransportConfig { output_bytes_max: 1 << 20, ..TransportConfig::default() };
    let mut sender = Node::start_with(2, &peers, config);
    sender.wait_connected(1);
    receiver.wait_connected(2);
    let taken = receiver.log.len();
    // The receiver's owner takes nothing now: its thread stops reading at
    // RECEIVED_BYTES_HIGH, TCP fills up, and the sender's bounded output overflows.
    let payload = vec![0xa5; 256 << 10];
    let deadline = Instant::now() + WAIT;
    let mut sent_bytes = 0usize;
    while last_link_event(&sender.log, 1) != Some(false) {
        assert!(Instant::now() < deadline, "still connected after {sent_bytes} bytes");
        for _ in 0..4 {
            sender.transport.send(1, Message::Request { payload: payload.clone() });
            sent_bytes += payload.len();
        }
        sender.pump(Duration::from_millis(5));
    }
    assert!(sent_bytes >= RECEIVED_BYTES_HIGH, "{sent_bytes}");
    // Taking the events lets the receiver read on; the link comes back (possibly before the
    // receiver looks, so look for the drop anywhere in what it had not taken yet).
    receiver.wait("a Disconnected(2)", |log| {
        log[taken..].iter().any(|event| matches!(event, PeerEvent::Disconnected(2)))
    });
    receiver.wait_connected(2);
    sender.wait_connected(1);
    let received = receiver.received_from(2).len() * payload.len();
    assert!(received >= RECEIVED_BYTES_HIGH, "{received}");
}

#[test]
fn the_owner_can_close_a_quorum_link_and_the_dialer_comes_back() {
    let peers = ensemble(2);
    let mut nodes: Vec<Node> = (1..=2).map(|id| Node::start(id, &peers)).collect();
    connect_mesh(&mut nodes);
    // The acceptor closes: the dialer notices and redials.
    nodes[0].transport.disconnect(2);
    nodes[1].wait_disconnected(1);
    nodes[1].wait_connected(1);
    // Server 1's thread has the new link up, but its owner has not taken the events yet: a
    // message it sends now was meant for the old link and is dropped, not sent on the new.
    nodes[0].transport.send(2, Message::Commit { zxid: -1 });
    nodes[0].wait("Disconnected(2), Connected(2)", |log| {
        log.iter().filter(|e| matches!(e, PeerEvent::Connected(2))).count() == 2
    });
    assert_eq!(summary(&nodes[0].log).matches("Disconnected(2)").count(), 1);
    // The dialer closes: it redials itself.
    nodes[1].transport.disconnect(1);
    nodes[1].wait_disconnected(1);
    nodes[1].wait_connected(1);
    nodes[0].wait("the second reconnection", |log| {
        log.iter().filter(|e| matches!(e, PeerEvent::Connected(2))).count() == 3
    });
    nodes[0].transport.send(2, Message::Commit { zxid: 1 });
    nodes[1].wait("the commit", |log| log.iter().any(|e| matches!(e, PeerEvent::Received(..))));
    assert_eq!(nodes[1].received_from(1), vec![&Message::Commit { zxid: 1 }]);
}

/// One server's side of the inline ping-pong: an owner thread that sleeps only in its own
/// poll (the transport's fd registered in it), as a server does. Server 1 starts with
/// `Commit { zxid: 0 }`; each side answers `n` with `n + 1` until it has received `rounds`
/// messages between them. Returns the time from the first message to the last.
fn inline_owner(id: ServerId, peers: Vec<PeerConfig>, rounds: i64) -> Duration {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    let other = 3 - id;
    let mut transport =
        PeerTransport::start_inline(id, &peers, TransportConfig::default()).unwrap();
    assert!(
        PeerTransport::start_inline(id, &peers, TransportConfig::default()).is_err(),
        "the ports are taken"
    );
    let mut poll = Poll::new().unwrap();
    let fd = transport.raw_fd().expect("inline");
    poll.registry().register(&mut SourceFd(&fd), Token(0), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(8);
    let (deadline, mut started) = (Instant::now() + WAIT, None);
    let mut expected = if id == 1 { 1 } else { 0 };
    while expected < rounds {
        assert!(Instant::now() < deadline, "server {id}: stuck before {expected}");
        poll.poll(&mut events, Some(transport.turn_due_in())).unwrap();
        transport.turn();
        while let Some(event) = transport.try_recv() {
            let answer = match event {
                PeerEvent::Connected(peer) if peer == other && id == 1 => 0,
                PeerEvent::Received(from, Message::Commit { zxid }) if from == other => {
                    assert_eq!(zxid, expected, "server {id}: messages in order");
                    expected += 2;
                    zxid + 1
                }
                _ => continue,
            };
            started.get_or_insert_with(Instant::now);
            transport.send(other, Message::Commit { zxid: answer });
        }
        transport.send_queued();
    }
    let elapsed = started.expect("messages flowed").elapsed();
    // The peer may still be waiting for its last message.
    std::thread::sleep(Duration::from_millis(200));
    elapsed
}

#[test]
fn inline_transports_wake_their_owners_poll_for_every_message() {
    // Were a message not to make the transport's fd readable, every hop would wait out the
    // owner's idle poll timeout (tens of ms): 800 hops would take many seconds, not a
    // fraction of one.
    const ROUNDS: i64 = 800;
    let peers = ensemble(2);
    let owners: Vec<_> = (1..=2)
        .map(|id| {
            let peers = peers.clone();
            std::thread::spawn(move || inline_owner(id, peers, ROUNDS))
        })
        .collect();
    for owner in owners {
        let elapsed = owner.join().unwrap();
        assert!(elapsed < Duration::from_secs(4), "{ROUNDS} messages took {elapsed:?}");
    }
}
