//! `ZkCoordinator` against real servers: every scenario runs once against a `zabflow node`
//! and once against a real Apache ZooKeeper 3.8 (the shared standalone server of this test
//! binary). Nothing is skipped: a missing ZooKeeper fails the `zookeeper_*` tests with the
//! harness's install hint.
//!
//! Each test uses its own cluster name, so tests sharing the ZooKeeper server never see
//! each other's znodes.

mod coord;
#[allow(dead_code)]
#[path = "ensemble/proxy.rs"]
mod proxy;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zabflow_core::coordinator::{
    CompletedCheckpoint, Coordinator, CoordinatorError, SessionState, SinkPosition, SourceOffset,
    StateFile, Worker,
};
use zabflow_net::client::{Client, ClientConfig, VERSION_ANY};
use zabflow_net::coordinator::{end_session, ZkCoordinator};
use zabflow_net::jute::{CreateMode, ACL};

/// Session timeout of every coordinator: the smallest real ZooKeeper grants with its
/// `tickTime=2000` (2 ticks), and within the `zabflow node` test config's bounds.
const SESSION_TIMEOUT: Duration = Duration::from_millis(4_000);

/// How long a leadership hand-over may take after the leader's session is closed.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(15);

/// A server under test: a `zabflow node` we own, or the shared real ZooKeeper.
enum Server {
    Zabflow { node: coord::Node, _dir: tempfile::TempDir },
    ZooKeeper { connect_string: String },
}

impl Server {
    fn zabflow() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let node = coord::Node::start(dir.path(), "");
        Server::Zabflow { node, _dir: dir }
    }

    fn zookeeper() -> Server {
        let connect_string = zabflow_tests::real_zookeeper::shared_standalone()
            .unwrap_or_else(|error| panic!("real ZooKeeper is required: {error}"));
        Server::ZooKeeper { connect_string }
    }

    fn connect_string(&self) -> String {
        match self {
            Server::Zabflow { node, .. } => format!("127.0.0.1:{}", node.port),
            Server::ZooKeeper { connect_string } => connect_string.clone(),
        }
    }

    fn address(&self) -> SocketAddr {
        let first = self.connect_string().split(',').next().unwrap().to_owned();
        first.parse().unwrap()
    }

    fn coordinator(&self, cluster: &str) -> ZkCoordinator {
        ZkCoordinator::connect(&self.connect_string(), cluster, SESSION_TIMEOUT).unwrap()
    }
}

/// A cluster name no other test (or earlier run against the same server) uses.
fn unique_cluster(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let serial = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{test}-{}-{nanos}-{serial}", std::process::id())
}

fn checkpoint(epoch: u64) -> CompletedCheckpoint {
    CompletedCheckpoint {
        epoch,
        timestamp_ms: 1_700_000_000_000 + epoch,
        source_offsets: vec![
            SourceOffset { partition: 0, offset: epoch * 100 },
            SourceOffset { partition: 1, offset: epoch * 100 + 7 },
        ],
        state_files: (0..4)
            .map(|key_group| StateFile {
                key_group,
                path: format!("state/{epoch:019}/kg-{key_group}"),
                bytes: u64::from(key_group) * 1000 + epoch,
                crc32c: 0x1234_5678 ^ key_group,
            })
            .collect(),
        sink_positions: vec![SinkPosition { partition: 0, offset: epoch * 10 }],
    }
}

/// Polls `condition` until it holds or `within` passes.
fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- scenarios -------------------------------------------------------------------------

fn election_hands_over_in_order(server: &Server) {
    let cluster = unique_cluster("election");
    let contenders: Vec<ZkCoordinator> = (0..3).map(|_| server.coordinator(&cluster)).collect();
    for (index, contender) in contenders.iter().enumerate() {
        assert_eq!(contender.leader_address().unwrap().is_none(), index == 0);
        contender.campaign(&format!("host-{index}:7000")).unwrap();
        contender.campaign("ignored: campaigning twice is a no-op").unwrap();
    }
    contenders[0].await_leadership(HANDOVER_TIMEOUT).unwrap();
    // The others must not lead, now or a moment later.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!contenders[1].is_leader() && !contenders[2].is_leader());
    let waited = contenders[1].await_leadership(Duration::from_millis(200));
    assert!(matches!(waited, Err(CoordinatorError::Timeout(..))), "{waited:?}");
    for contender in &contenders {
        assert_eq!(contender.leader_address().unwrap().as_deref(), Some("host-0:7000"));
    }

    // The leader's session ends: the next contender (and only it) takes over.
    let mut contenders = contenders.into_iter();
    let first = contenders.next().unwrap();
    first.close().unwrap();
    assert!(!first.is_leader());
    let (second, third) = (contenders.next().unwrap(), contenders.next().unwrap());
    second.await_leadership(HANDOVER_TIMEOUT).unwrap();
    assert!(!third.is_leader());
    assert_eq!(third.leader_address().unwrap().as_deref(), Some("host-1:7000"));

    // Resigning hands over too, and a resigned contender may campaign again (at the back).
    second.resign().unwrap();
    assert!(!second.is_leader());
    third.await_leadership(HANDOVER_TIMEOUT).unwrap();
    assert_eq!(second.leader_address().unwrap().as_deref(), Some("host-2:7000"));
    second.campaign("host-1b:7000").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(third.is_leader() && !second.is_leader());
}

fn expired_leader_loses_leadership(server: &Server) {
    let cluster = unique_cluster("expiry");
    let link = proxy::Proxy::start(server.address());
    let through_proxy = format!("127.0.0.1:{}", link.port);
    let leader = ZkCoordinator::connect(&through_proxy, &cluster, SESSION_TIMEOUT).unwrap();
    leader.campaign("old-leader:1").unwrap();
    leader.await_leadership(HANDOVER_TIMEOUT).unwrap();
    leader.register_worker("old-worker", "old-leader:1").unwrap();
    let job = "job";
    leader.record_checkpoint(job, &checkpoint(1)).unwrap();
    let standby = server.coordinator(&cluster);
    standby.campaign("standby:2").unwrap();
    assert!(!standby.is_leader());

    // Partition the leader from the service until its session expires.
    link.cut();
    eventually(SESSION_TIMEOUT, "the cut-off leader to stop leading", || !leader.is_leader());
    standby.await_leadership(SESSION_TIMEOUT * 4).unwrap();
    assert_eq!(standby.leader_address().unwrap().as_deref(), Some("standby:2"));
    assert_eq!(standby.workers().unwrap(), Vec::<Worker>::new());
    link.heal();

    // Reconnecting, the old leader learns that its session expired, and can do nothing.
    eventually(SESSION_TIMEOUT * 4, "the old session to be reported expired", || {
        leader.session_state() == SessionState::Expired
    });
    assert!(!leader.is_leader());
    let recorded = leader.record_checkpoint(job, &checkpoint(2));
    assert_eq!(recorded, Err(CoordinatorError::SessionExpired));
    let waited = leader.await_leadership(Duration::from_secs(1));
    assert_eq!(waited, Err(CoordinatorError::SessionExpired));
    assert_eq!(leader.next_checkpoint_epoch(job), Err(CoordinatorError::SessionExpired));
    // The new leader carries on from what the old one recorded.
    assert_eq!(standby.latest_checkpoint(job).unwrap(), Some(checkpoint(1)));
    standby.record_checkpoint(job, &checkpoint(2)).unwrap();
}

fn membership_follows_sessions(server: &Server) {
    let cluster = unique_cluster("members");
    let (first, second, observer) =
        (server.coordinator(&cluster), server.coordinator(&cluster), server.coordinator(&cluster));
    assert!(observer.workers().unwrap().is_empty());
    first.register_worker("w1", "10.0.0.1:9000").unwrap();
    first.register_worker("w1", "10.0.0.1:9000").unwrap();
    second.register_worker("w2", "10.0.0.2:9000").unwrap();
    let both = vec![
        Worker { id: "w1".into(), address: "10.0.0.1:9000".into() },
        Worker { id: "w2".into(), address: "10.0.0.2:9000".into() },
    ];
    assert_eq!(observer.workers().unwrap(), both);
    let taken = second.register_worker("w1", "elsewhere:1");
    assert!(matches!(&taken, Err(CoordinatorError::Service(m)) if m.contains("w1")), "{taken:?}");
    let invalid = second.register_worker("../w", "x");
    assert!(matches!(invalid, Err(CoordinatorError::InvalidArgument(_))), "{invalid:?}");

    first.close().unwrap();
    let remaining = vec![both[1].clone()];
    eventually(SESSION_TIMEOUT, "w1 to vanish with its session", || {
        observer.workers().unwrap() == remaining
    });
    drop(second);
    eventually(SESSION_TIMEOUT, "w2 to vanish", || observer.workers().unwrap().is_empty());
}

/// A successor ends its dead predecessor's session at once with the saved credentials: the
/// worker and the candidacy vanish without waiting for the session timeout, the successor
/// leads, the predecessor (cut off like a dead process, then back) finds its session ended
/// and is fenced, and ending it again says it had ended.
fn a_successor_ends_its_predecessors_session(server: &Server) {
    let cluster = unique_cluster("takeover");
    let job = "takeover-job";
    let link = proxy::Proxy::start(server.address());
    let through_proxy = format!("127.0.0.1:{}", link.port);
    let predecessor = ZkCoordinator::connect(&through_proxy, &cluster, SESSION_TIMEOUT).unwrap();
    predecessor.register_worker("w1", "old").unwrap();
    predecessor.campaign("old").unwrap();
    predecessor.await_leadership(HANDOVER_TIMEOUT).unwrap();
    let credentials = predecessor.session_credentials();
    assert_eq!(credentials.password.len(), 16, "{credentials:?}");
    // The predecessor dies: its session lingers on the server (a live client would resume
    // it again at once, taking it back from the successor).
    link.cut();

    let config = ClientConfig::new(&server.connect_string()).unwrap();
    let started = Instant::now();
    assert!(end_session(&config, credentials.clone()).unwrap());
    let successor = server.coordinator(&cluster);
    successor.register_worker("w1", "new").unwrap();
    successor.campaign("new").unwrap();
    successor.await_leadership(HANDOVER_TIMEOUT).unwrap();
    let taken_over = started.elapsed();
    assert!(taken_over < SESSION_TIMEOUT / 2, "took {taken_over:?}, as long as an expiry");
    assert_eq!(
        successor.workers().unwrap(),
        vec![Worker { id: "w1".into(), address: "new".into() }]
    );
    assert_eq!(successor.leader_address().unwrap().as_deref(), Some("new"));

    link.heal();
    eventually(SESSION_TIMEOUT * 4, "the predecessor to learn its session ended", || {
        predecessor.session_state() == SessionState::Expired
    });
    let fenced = predecessor.record_checkpoint(job, &checkpoint(1));
    assert_eq!(fenced, Err(CoordinatorError::SessionExpired));
    assert!(!end_session(&config, credentials).unwrap(), "an ended session ended again");
}

fn concurrent_epochs_are_unique(server: &Server) {
    let cluster = unique_cluster("epochs");
    const DRAWS_PER_THREAD: usize = 150;
    let coordinators = [server.coordinator(&cluster), server.coordinator(&cluster)];
    let drawn: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let threads: Vec<_> = coordinators
            .iter()
            .flat_map(|coordinator| [coordinator, coordinator])
            .map(|coordinator| {
                scope.spawn(move || {
                    (0..DRAWS_PER_THREAD)
                        .map(|_| coordinator.next_checkpoint_epoch("job").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap()).collect()
    });
    let mut all = HashSet::new();
    for epochs in &drawn {
        assert!(epochs.windows(2).all(|pair| pair[0] < pair[1]), "not increasing: {epochs:?}");
        for &epoch in epochs {
            assert!(epoch >= 1);
            assert!(all.insert(epoch), "epoch {epoch} was handed out twice");
        }
    }
    assert_eq!(all.len(), 4 * DRAWS_PER_THREAD);
    // Another job has its own counter.
    assert_eq!(coordinators[0].next_checkpoint_epoch("other-job").unwrap(), 1);
    let next = coordinators[1].next_checkpoint_epoch("job").unwrap();
    assert!(next > *all.iter().max().unwrap());
}

fn records_latest_and_prune(server: &Server) {
    let cluster = unique_cluster("records");
    let (leader, follower) = (server.coordinator(&cluster), server.coordinator(&cluster));
    let job = "wordcount";
    assert_eq!(leader.latest_checkpoint(job).unwrap(), None);
    assert!(leader.checkpoints(job).unwrap().is_empty());
    let not_leader = leader.record_checkpoint(job, &checkpoint(1));
    assert!(matches!(not_leader, Err(CoordinatorError::NotLeader { .. })), "{not_leader:?}");
    leader.campaign("leader:1").unwrap();
    leader.await_leadership(HANDOVER_TIMEOUT).unwrap();
    follower.campaign("follower:1").unwrap();

    for _ in 0..5 {
        let epoch = leader.next_checkpoint_epoch(job).unwrap();
        leader.record_checkpoint(job, &checkpoint(epoch)).unwrap();
    }
    assert_eq!(follower.checkpoints(job).unwrap(), vec![1, 2, 3, 4, 5]);
    assert_eq!(follower.latest_checkpoint(job).unwrap(), Some(checkpoint(5)));
    assert_eq!(follower.checkpoint(job, 3).unwrap(), checkpoint(3));
    let missing = follower.checkpoint(job, 9);
    assert!(matches!(missing, Err(CoordinatorError::NoSuchCheckpoint { epoch: 9, .. })));

    // Recording the same record again is harmless (a retry); other contents are refused.
    leader.record_checkpoint(job, &checkpoint(5)).unwrap();
    let other = CompletedCheckpoint { timestamp_ms: 1, ..checkpoint(5) };
    let refused = leader.record_checkpoint(job, &other);
    assert!(matches!(refused, Err(CoordinatorError::CheckpointExists { epoch: 5, .. })));
    let follower_write = follower.record_checkpoint(job, &checkpoint(6));
    assert!(matches!(follower_write, Err(CoordinatorError::NotLeader { .. })));
    assert!(matches!(follower.prune(job, 1), Err(CoordinatorError::NotLeader { .. })));
    assert!(matches!(leader.prune(job, 0), Err(CoordinatorError::InvalidArgument(_))));

    let pruned = leader.prune(job, 2).unwrap();
    assert_eq!(pruned.checkpoints, vec![checkpoint(1), checkpoint(2), checkpoint(3)]);
    assert!(pruned.corrupt_epochs.is_empty());
    assert_eq!(follower.checkpoints(job).unwrap(), vec![4, 5]);
    assert!(leader.prune(job, 2).unwrap().checkpoints.is_empty());
    assert_eq!(follower.latest_checkpoint(job).unwrap(), Some(checkpoint(5)));
}

fn corrupt_records_are_reported(server: &Server) {
    let cluster = unique_cluster("corrupt");
    let leader = server.coordinator(&cluster);
    leader.campaign("leader:1").unwrap();
    leader.await_leadership(HANDOVER_TIMEOUT).unwrap();
    let job = "job";
    leader.record_checkpoint(job, &checkpoint(1)).unwrap();
    leader.record_checkpoint(job, &checkpoint(3)).unwrap();

    // Damage records behind the coordinator's back, with a plain client.
    let raw = Client::connect_to(&server.connect_string()).unwrap();
    let layout = leader.layout().clone();
    let create = |path: &str, data: &[u8]| {
        raw.create(path, data, &[ACL::open_unsafe()], CreateMode::Persistent).unwrap();
    };
    let mut damaged = checkpoint(4).encode().unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    create(&layout.checkpoint(job, 4).unwrap(), &damaged);
    let latest = leader.latest_checkpoint(job);
    let Err(CoordinatorError::Corrupt { path, reason }) = &latest else {
        panic!("expected a corrupt-record error, got {latest:?}");
    };
    assert!(path.ends_with("/checkpoints/0000000000000000004"), "{path}");
    assert!(reason.contains("CRC"), "{reason}");
    // The older records still read, so a caller can fall back.
    assert_eq!(leader.checkpoint(job, 3).unwrap(), checkpoint(3));

    create(&layout.checkpoint(job, 5).unwrap(), &checkpoint(6).encode().unwrap());
    let misfiled = leader.checkpoint(job, 5);
    assert!(
        matches!(&misfiled, Err(CoordinatorError::Corrupt { reason, .. }) if reason.contains("epoch 6")),
        "{misfiled:?}"
    );
    create(&layout.checkpoint(job, 7).unwrap(), b"{\"epoch\": 7}");
    let foreign = leader.checkpoint(job, 7);
    assert!(matches!(foreign, Err(CoordinatorError::Corrupt { .. })), "{foreign:?}");

    // Pruning deletes corrupt records too and says which.
    let pruned = leader.prune(job, 1).unwrap();
    assert_eq!(pruned.checkpoints, vec![checkpoint(1), checkpoint(3)]);
    assert_eq!(pruned.corrupt_epochs, vec![4, 5]);
    assert_eq!(leader.checkpoints(job).unwrap(), vec![7]);

    // A counter that does not hold a number.
    assert_eq!(leader.next_checkpoint_epoch(job).unwrap(), 1);
    raw.set_data(&layout.checkpoint_counter(job).unwrap(), b"seven", VERSION_ANY).unwrap();
    let counter = leader.next_checkpoint_epoch(job);
    assert!(matches!(counter, Err(CoordinatorError::Corrupt { .. })), "{counter:?}");
}

// ---- one test per scenario and server ---------------------------------------------------

macro_rules! against_both {
    ($($scenario:ident => $zabflow:ident, $zookeeper:ident;)*) => {$(
        #[test]
        fn $zabflow() {
            $scenario(&Server::zabflow());
        }

        #[test]
        fn $zookeeper() {
            $scenario(&Server::zookeeper());
        }
    )*};
}

against_both! {
    election_hands_over_in_order => zabflow_election, zookeeper_election;
    expired_leader_loses_leadership => zabflow_leader_expiry, zookeeper_leader_expiry;
    membership_follows_sessions => zabflow_membership, zookeeper_membership;
    a_successor_ends_its_predecessors_session => zabflow_session_takeover, zookeeper_session_takeover;
    concurrent_epochs_are_unique => zabflow_concurrent_epochs, zookeeper_concurrent_epochs;
    records_latest_and_prune => zabflow_records_and_prune, zookeeper_records_and_prune;
    corrupt_records_are_reported => zabflow_corrupt_records, zookeeper_corrupt_records;
}
