//! Shared helpers of the coordination-server tests: start `zabflow node` on a free port
//! with a generated zoo.cfg, and a minimal raw-jute client built on zabflow-net's codec.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zabflow_net::jute::{
    ConnectRequest, ConnectResponse, CreateRequest, OpCode, Reader, Record, ReplyHeader, Request,
    Response, WatcherEvent, Writer, ACL,
};

/// A running `zabflow node`.
pub struct Node {
    pub child: Child,
    pub dir: PathBuf,
    pub port: u16,
    /// Extra arguments of `zabflow node` (e.g. `-Dreadonlymode.enabled=true`).
    pub args: Vec<String>,
}

fn free_port() -> u16 {
    zabflow_tests::ports::free_loopback_ports(1).unwrap()[0]
}

impl Node {
    /// Writes `dir/zoo.cfg` (with `extra` lines) and starts a node on a free port.
    pub fn start(dir: &Path, extra: &str) -> Node {
        let port = free_port();
        let config = format!(
            "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n{extra}\n",
            dir.join("data").display()
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("zoo.cfg"), config).unwrap();
        Node::restart_at(dir, port)
    }

    /// Starts a node on an existing `dir/zoo.cfg` listening on `port`.
    pub fn restart_at(dir: &Path, port: u16) -> Node {
        Node::restart_with(dir, port, &[])
    }

    /// [`Node::restart_at`] with extra arguments of `zabflow node`.
    pub fn restart_with(dir: &Path, port: u16, args: &[String]) -> Node {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zabflow"))
            .args(["node", "--config"])
            .arg(dir.join("zoo.cfg"))
            .args(args)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let node = Node { child, dir: dir.to_owned(), port, args: args.to_vec() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "node did not start: {}", node.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        node
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    /// Starts the node again (after [`Node::stop`] or [`Node::kill`]) with the same
    /// directory, port and arguments.
    pub fn restart(&mut self) {
        let _ = self.child.try_wait();
        *self = Node::restart_with(&self.dir.clone(), self.port, &self.args.clone());
    }

    pub fn stop(&mut self) {
        // SAFETY: signals our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "node exited with {status}: {}", self.log());
    }

    /// Sends a four-letter word; returns the reply.
    pub fn four_letter(&self, word: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.write_all(word.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running ensemble of `zabflow node`s on loopback, one directory per node.
pub struct Ensemble {
    pub nodes: Vec<Node>,
}

impl Ensemble {
    /// Writes `dir/node<N>/zoo.cfg` (free client, quorum and election ports; `extra` lines)
    /// and `myid` for `count` nodes, starts them and waits until one leads and every node
    /// serves.
    pub fn start(dir: &Path, count: u64, extra: &str) -> Ensemble {
        Ensemble::start_with(dir, count, extra, &[])
    }

    /// [`Ensemble::start`] with extra arguments of every `zabflow node`.
    pub fn start_with(dir: &Path, count: u64, extra: &str, args: &[String]) -> Ensemble {
        let ports: Vec<(u16, u16, u16)> =
            zabflow_tests::ports::free_loopback_ports(3 * count as usize)
                .unwrap()
                .chunks_exact(3)
                .map(|p| (p[0], p[1], p[2]))
                .collect();
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, quorum, election))| {
                format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1)
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let node_dir = dir.join(format!("node{}", i + 1));
            let data = node_dir.join("data");
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            let config = format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\n\
                 clientPortAddress=127.0.0.1\nmaxClientCnxns=0\n{extra}\n{servers}",
                data.display()
            );
            std::fs::write(node_dir.join("zoo.cfg"), config).unwrap();
            nodes.push(Node::restart_with(&node_dir, *client, args));
        }
        let ensemble = Ensemble { nodes };
        ensemble.wait_serving(Duration::from_secs(30));
        ensemble
    }

    /// Waits until every running node serves (leader or follower).
    pub fn wait_serving(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for node in &self.nodes {
            loop {
                let reply = std::panic::catch_unwind(|| node.four_letter("srvr"));
                if reply.is_ok_and(|r| r.contains("Mode: leader") || r.contains("Mode: follower")) {
                    break;
                }
                assert!(Instant::now() < deadline, "ensemble does not serve: {}", node.log());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// `127.0.0.1:port,...` of every node.
    pub fn hosts(&self) -> String {
        let hosts: Vec<String> =
            self.nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
        hosts.join(",")
    }
}

/// A raw jute client: one session on one connection.
pub struct Client {
    pub stream: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    next_xid: i32,
    pub events: Vec<WatcherEvent>,
}

pub fn open_acl() -> Vec<ACL> {
    vec![zabflow_coord::acl::world(31)]
}

pub fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: open_acl(),
        flags,
    })
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::resume(port, 0, vec![0; 16], 30_000).expect("session")
    }

    /// Connects with a session id and password; `None` when the server refuses (or is gone).
    pub fn resume(port: u16, session_id: i64, passwd: Vec<u8>, timeout_ms: i32) -> Option<Client> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        // Generous: under a full test run the disk's fsyncs (a session is a logged txn) and a
        // freshly started JVM can take seconds.
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: timeout_ms,
            session_id,
            passwd,
            read_only: Some(false),
        };
        let mut writer = Writer::new();
        let start = writer.begin_frame();
        request.write(&mut writer);
        writer.end_frame(start);
        stream.write_all(writer.as_bytes()).ok()?;
        let body = read_frame(&mut stream)?;
        let response = ConnectResponse::read(&mut Reader::new(&body)).unwrap();
        if response.session_id == 0 {
            return None;
        }
        Some(Client {
            stream,
            session_id: response.session_id,
            passwd: response.passwd,
            timeout_ms: response.time_out,
            next_xid: 1,
            events: Vec::new(),
        })
    }

    /// Sends a request without waiting; returns its xid.
    pub fn send(&mut self, request: &Request) -> i32 {
        self.try_send(request).expect("send a request")
    }

    /// Like [`Client::send`], but `None` when the connection is gone (the server was killed).
    pub fn try_send(&mut self, request: &Request) -> Option<i32> {
        let xid = match request {
            Request::Ping => -2,
            Request::Auth(_) => -4,
            _ => {
                self.next_xid += 1;
                self.next_xid
            }
        };
        let mut writer = Writer::new();
        request.write_frame(xid, &mut writer);
        self.stream.write_all(writer.as_bytes()).ok()?;
        Some(xid)
    }

    /// The next reply that is not a watch event (events are kept in `events`).
    pub fn receive(&mut self, op: OpCode) -> Option<(ReplyHeader, Option<Response>)> {
        loop {
            let body = read_frame(&mut self.stream)?;
            let mut reader = Reader::new(&body);
            let header = ReplyHeader::read(&mut reader).unwrap();
            if header.xid == -1 {
                self.events.push(WatcherEvent::read(&mut reader).unwrap());
                continue;
            }
            let response = (header.err == 0 && reader.remaining() > 0)
                .then(|| Response::read(op, &mut reader).unwrap());
            return Some((header, response));
        }
    }

    /// Sends and waits: (err, body).
    pub fn call(&mut self, request: &Request) -> (i32, Option<Response>) {
        let xid = self.send(request);
        let (header, body) = self.receive(request.op_code()).expect("a reply");
        assert_eq!(header.xid, xid);
        (header.err, body)
    }

    /// Waits for a watch event.
    pub fn wait_event(&mut self) -> WatcherEvent {
        if self.events.is_empty() {
            let body = read_frame(&mut self.stream).expect("an event");
            let mut reader = Reader::new(&body);
            let header = ReplyHeader::read(&mut reader).unwrap();
            assert_eq!(header.xid, -1, "expected a notification");
            self.events.push(WatcherEvent::read(&mut reader).unwrap());
        }
        self.events.remove(0)
    }
}

/// Reads one frame body; `None` when the server closed the connection.
pub fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut body = vec![0; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

/// Whether the server closed this stream (reads EOF or reset within the timeout).
pub fn is_closed(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}
