//! Reconnect against a real Apache ZooKeeper 3.8: the server is stopped and started again on
//! the same data dir; the client keeps its session (and its ephemeral node), re-registers its
//! watches with `setWatches2`, and reports Disconnected then SyncConnected. A request queued
//! while disconnected is sent after the reconnect. Own server: this test restarts it.

use std::time::Duration;

use zabflow_net::client::{Client, ClientConfig, Completion, VERSION_ANY};
use zabflow_net::jute::{
    AddWatchMode, CreateMode, EventType, GetDataRequest, KeeperState, Request, ACL,
};
use zabflow_tests::real_zookeeper::RealZooKeeper;

const EVENT_WAIT: Duration = Duration::from_secs(30);

fn next_event(client: &Client) -> (EventType, KeeperState, Option<String>) {
    let event = client.events().recv_timeout(EVENT_WAIT).expect("an event");
    (event.event_type, event.state, event.path)
}

fn watch(event_type: EventType, path: &str) -> (EventType, KeeperState, Option<String>) {
    (event_type, KeeperState::SyncConnected, Some(path.to_owned()))
}

fn state(state: KeeperState) -> (EventType, KeeperState, Option<String>) {
    (EventType::None, state, None)
}

#[test]
fn session_and_watches_survive_a_server_restart() {
    let mut server = RealZooKeeper::start_standalone().unwrap_or_else(|e| panic!("{e}"));
    let config = ClientConfig::new(&server.connect_string()).unwrap();
    // The session timeout also bounds one connection attempt (shared among the servers, as
    // ZooKeeper's client does): 10 s, so that an attempt the restarting server never
    // answers is retried well within EVENT_WAIT, and the session outlives the restart.
    let client = Client::connect(config.with_session_timeout(Duration::from_secs(10))).unwrap();
    assert_eq!(next_event(&client), state(KeeperState::SyncConnected));
    let open = [ACL::open_unsafe()];
    client.create("/r", b"", &open, CreateMode::Persistent).unwrap();
    client.create("/r/data", b"0", &open, CreateMode::Persistent).unwrap();
    client.create("/r/tree", b"", &open, CreateMode::Persistent).unwrap();
    client.create("/r/mine", b"", &open, CreateMode::Ephemeral).unwrap();
    client.get_data("/r/data", true).unwrap();
    client.get_children("/r", true).unwrap();
    assert_eq!(client.exists("/r/later", true).unwrap(), None);
    client.add_watch("/r/tree", AddWatchMode::PersistentRecursive).unwrap();
    let session_id = client.session_id();

    server.stop(0);
    assert_eq!(next_event(&client), state(KeeperState::Disconnected));
    assert_eq!(client.state(), KeeperState::Disconnected);
    let (completions, replies) = crossbeam_channel::bounded::<Completion>(1);
    let queued = Request::GetData(GetDataRequest { path: "/r/data".into(), watch: false });
    client.submit(queued, 7, &completions).unwrap();
    server.start(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next_event(&client), state(KeeperState::SyncConnected));
    let completion = replies.recv_timeout(EVENT_WAIT).expect("queued request answered");
    assert_eq!(completion.tag, 7);
    assert!(completion.result.is_ok(), "{completion:?}");
    assert_eq!(client.session_id(), session_id, "session resumed");

    let writer = Client::connect_to(&server.connect_string()).unwrap();
    let mine = writer.exists("/r/mine", false).unwrap().expect("ephemeral kept");
    assert_eq!(mine.ephemeral_owner, session_id);
    writer.set_data("/r/data", b"1", VERSION_ANY).unwrap();
    assert_eq!(next_event(&client), watch(EventType::NodeDataChanged, "/r/data"));
    writer.create("/r/later", b"", &open, CreateMode::Persistent).unwrap();
    let mut seen = vec![next_event(&client), next_event(&client)];
    seen.sort_by_key(|event| event.2.clone());
    assert_eq!(
        seen,
        [watch(EventType::NodeChildrenChanged, "/r"), watch(EventType::NodeCreated, "/r/later")]
    );
    writer.create("/r/tree/leaf", b"", &open, CreateMode::Persistent).unwrap();
    assert_eq!(next_event(&client), watch(EventType::NodeCreated, "/r/tree/leaf"));
    client.close().unwrap();
    assert_eq!(writer.exists("/r/mine", false).unwrap(), None);
}
