//! The coord load generator's session driver against a real zabflow node, run in this
//! process (real sockets, a real txn log in a temp dir): replies are matched to their
//! requests in a mixed workload, a server that goes away mid-window ends the series with
//! `ConnectionLoss` errors instead of a hang, and idle sessions stay alive by pinging.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zabflow_bench::coord::load::{self, Keyspace, WorkloadResult};
use zabflow_bench::coord::session::{self, Session};
use zabflow_bench::coord::{Mix, Op, Pacing, Workload};
use zabflow_coord::config::ServerConfig;
use zabflow_coord::server::Server;
use zabflow_net::client::Client;

/// A zabflow node serving on a thread of this test.
struct Node {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Node {
    /// A standalone node with `tickTime` 100 ms (sessions of 200 ms to 2 s).
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "tickTime=100\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n",
            dir.path().join("data").display()
        );
        let (config, _) = ServerConfig::parse(&text).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = std::sync::mpsc::channel();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut server = Server::open(config).unwrap();
            sender.send(server.local_address().expect("the config sets clientPort")).unwrap();
            server.run(&stopping).unwrap();
            // Dropping the server closes every client connection.
        });
        let address = receiver.recv_timeout(Duration::from_secs(20)).unwrap();
        Node { address, stop, thread: Some(thread), _dir: dir }
    }

    fn hosts(&self) -> Vec<String> {
        vec![self.address.to_string()]
    }

    /// Stops serving and closes every connection.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

fn populated(node: &Node, znodes: usize) -> Keyspace {
    let keyspace = Keyspace::new(znodes, 20, 7);
    let clients = load::connect(&node.hosts(), 2, 1).unwrap();
    load::populate(&clients, &keyspace).unwrap();
    keyspace
}

fn closed(mix: &str, depth: usize) -> Workload {
    Workload { mix: Mix::parse(mix).unwrap(), pacing: Pacing::Closed, depth }
}

fn count(result: &WorkloadResult, op: Op) -> u64 {
    result.ops[op.index()].count
}

#[test]
fn replies_are_matched_to_their_requests_in_a_mixed_workload() {
    let node = Node::start();
    let keyspace = populated(&node, 50);
    let (sessions_count, depth) = (4, 4);
    let mut sessions = session::connect_all(&node.hosts(), sessions_count).unwrap();
    let mix = "getData=3,setData=3,create/delete=2,exists=1,getChildren=1,multi=1,\
               createSequential=1";
    let workload = closed(mix, depth);
    let window = Duration::from_millis(1500);
    let result =
        load::run(&mut sessions, &keyspace, &workload, (Duration::ZERO, window), &[]).unwrap();
    session::close_all(&mut sessions);
    for op in Op::ALL {
        let measured = &result.ops[op.index()];
        assert!(measured.count > 0, "{op:?} never succeeded: {:?}", measured.errors);
        // A reply matched to the wrong request fails its shape check (UnexpectedReply) or
        // the xid check (the session is lost): neither may happen.
        assert!(measured.errors.is_empty(), "{op:?}: {:?}", measured.errors);
    }
    assert_eq!(result.sessions_lost, 0);
    // What the servers did agrees with what the replies said, within the requests that were
    // still in flight when the window ended (answered, but not counted).
    let unmeasured = (sessions_count * depth) as u64;
    let client = Client::connect_to(&node.address.to_string()).unwrap();
    let sequential = client.get_children(&keyspace.seq_path(), false).unwrap().len() as u64;
    let created = count(&result, Op::CreateSequential);
    assert!((created..=created + unmeasured).contains(&sequential), "{sequential} {created}");
    let versions: u64 = keyspace
        .paths
        .iter()
        .map(|path| client.exists(path, false).unwrap().unwrap().version as u64)
        .sum();
    let writes = count(&result, Op::SetData) + 2 * count(&result, Op::Multi);
    assert!((writes..=writes + 2 * unmeasured).contains(&versions), "{versions} {writes}");
    let pairs = client.get_children(&keyspace.tmp_path(), false).unwrap().len();
    assert!(pairs <= sessions_count, "every session deletes what it created: {pairs}");
    let (creates, deletes) = (count(&result, Op::Create), count(&result, Op::Delete));
    assert!(creates.abs_diff(deletes) <= unmeasured, "{creates} creates, {deletes} deletes");
    // Each getData reply carried the stored value (its Stat's dataLength was checked too).
    let (value, _) = client.get_data(&keyspace.paths[0], false).unwrap();
    assert_eq!(value, keyspace.value);
}

#[test]
fn a_server_that_goes_away_mid_window_ends_the_series_with_connection_loss() {
    let mut node = Node::start();
    let keyspace = populated(&node, 20);
    let mut sessions = session::connect_all(&node.hosts(), 4).unwrap();
    let workload = closed("setData", 2);
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let result = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            load::run(&mut sessions, &keyspace, &workload, (Duration::ZERO, window), &[])
        });
        std::thread::sleep(Duration::from_millis(700));
        node.stop();
        run.join().unwrap()
    })
    .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < window + Duration::from_secs(5), "the run hung for {elapsed:?}");
    let set_data = &result.ops[Op::SetData.index()];
    assert!(set_data.count > 0, "replies before the server went away count");
    let lost = set_data.errors.get("ConnectionLoss").copied().unwrap_or(0);
    assert!(lost > 0, "requests in flight count as ConnectionLoss: {:?}", set_data.errors);
    assert!(lost <= 8, "no more than were in flight: {lost}");
    assert_eq!(result.sessions_lost, 4);
    // No more load can run over lost sessions: the next run fails at once, saying why.
    let error = load::run(&mut sessions, &keyspace, &workload, (Duration::ZERO, window), &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("every session has lost its connection"), "{error}");
}

#[test]
fn idle_sessions_ping_to_stay_alive_through_a_slow_open_loop() {
    let node = Node::start();
    let keyspace = populated(&node, 10);
    // A 600 ms session would expire between two requests a second apart without pings.
    let timeout = Duration::from_millis(600);
    let mut sessions: Vec<Session> =
        session::connect_all_with_timeout(&node.hosts(), 2, timeout).unwrap();
    let workload = Workload {
        mix: Mix::parse("getData").unwrap(),
        pacing: Pacing::Open { rate_per_s: 2 },
        depth: 1,
    };
    let window = Duration::from_millis(3200);
    let result =
        load::run(&mut sessions, &keyspace, &workload, (Duration::ZERO, window), &[]).unwrap();
    let get_data = &result.ops[Op::GetData.index()];
    assert_eq!(result.sessions_lost, 0, "{:?}", get_data.errors);
    assert!(get_data.errors.is_empty(), "{:?}", get_data.errors);
    assert!((6..=8).contains(&get_data.count), "2 per second for 3.2 s: {}", get_data.count);
    session::close_all(&mut sessions);
}
