//! The real-ZooKeeper harness itself: standalone start, restart on the same data dir, and a
//! 3-node ensemble on loopback that elects a leader. Fails (never skips) when ZooKeeper is
//! missing and cannot be installed.

use zabflow_tests::real_zookeeper::{RealZooKeeper, ZooKeeperOptions};

#[test]
fn standalone_serves_restarts_and_cleans_up() {
    let mut server = RealZooKeeper::start_standalone().expect("start real ZooKeeper");
    assert_eq!(server.four_letter_word(0, "ruok").unwrap(), "imok");
    assert!(server.four_letter_word(0, "srvr").unwrap().contains("Mode: standalone"));
    let data_dir = server.data_dir(0);
    assert!(data_dir.join("myid").exists());
    server.stop(0);
    assert!(server.pid(0).is_none());
    assert!(server.four_letter_word(0, "ruok").is_err(), "stopped node still answers");
    server.start(0).expect("restart on the same data dir");
    assert_eq!(server.four_letter_word(0, "ruok").unwrap(), "imok");
    drop(server);
    assert!(!data_dir.exists(), "data dir left behind");
}

#[test]
fn three_node_ensemble_elects_a_leader() {
    let options = ZooKeeperOptions { nodes: 3, heap_mib: 256, ..ZooKeeperOptions::default() };
    let server = RealZooKeeper::start_with(options).expect("start a 3-node ensemble");
    let modes = (0..3)
        .map(|index| server.four_letter_word(index, "srvr").unwrap())
        .map(|srvr| srvr.lines().find(|line| line.starts_with("Mode:")).unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(modes.iter().filter(|mode| mode.contains("leader")).count(), 1, "{modes:?}");
    assert_eq!(modes.iter().filter(|mode| mode.contains("follower")).count(), 2, "{modes:?}");
    assert_eq!(server.connect_string().split(',').count(), 3);
}
