//! zabflow's ZooKeeper client against a real Apache ZooKeeper 3.8 (standalone, one server
//! shared by every test here; each test works under its own top-level node). Fails, never
//! skips, when ZooKeeper is missing and cannot be installed.

use std::time::Duration;

use zabflow_net::client::{multi_error, Client, ClientConfig, Completion, VERSION_ANY};
use zabflow_net::jute::{
    AddWatchMode, CheckVersionRequest, CreateMode, CreateRequest, DeleteRequest, ErrorCode,
    EventType, GetDataRequest, Id, KeeperState, MultiOp, MultiResult, Perms, Request, Response,
    SetDataRequest, WatcherType, ACL,
};
use zabflow_net::ZkError;
use zabflow_tests::kazoo::Kazoo;
use zabflow_tests::real_zookeeper::shared_standalone;

const EVENT_WAIT: Duration = Duration::from_secs(10);

fn connect() -> Client {
    let hosts = shared_standalone().unwrap_or_else(|error| panic!("real ZooKeeper: {error}"));
    let config = ClientConfig::new(&hosts).unwrap().with_session_timeout(Duration::from_secs(10));
    Client::connect(config).expect("connect to real ZooKeeper")
}

fn open() -> Vec<ACL> {
    vec![ACL::open_unsafe()]
}

fn code(result: Result<impl std::fmt::Debug, ZkError>) -> ErrorCode {
    result.expect_err("expected an error").code().expect("a ZooKeeper error code")
}

/// The next watch event (skipping session-state events).
fn next_watch_event(client: &Client) -> (EventType, String) {
    loop {
        let event = client.events().recv_timeout(EVENT_WAIT).expect("a watch event");
        if let Some(path) = event.path {
            return (event.event_type, path);
        }
    }
}

#[test]
fn crud_and_stat_fields() {
    let client = connect();
    let (path, created) = client.create2("/crud", b"one", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(path, "/crud");
    assert_eq!((created.version, created.cversion, created.aversion), (0, 0, 0));
    assert_eq!((created.data_length, created.num_children, created.ephemeral_owner), (3, 0, 0));
    assert_eq!(created.czxid, created.mzxid);
    assert_eq!(created.czxid, created.pzxid);
    let (data, stat) = client.get_data("/crud", false).unwrap();
    assert_eq!((data.as_slice(), stat), (&b"one"[..], created.clone()));
    let updated = client.set_data("/crud", b"three", 0).unwrap();
    assert_eq!((updated.version, updated.data_length), (1, 5));
    assert!(updated.mzxid > created.mzxid && updated.czxid == created.czxid);
    client.create("/crud/child", b"", &open(), CreateMode::Persistent).unwrap();
    let (children, parent) = client.get_children2("/crud", false).unwrap();
    assert_eq!(children, ["child"]);
    assert_eq!((parent.num_children, parent.cversion), (1, 1));
    assert!(parent.pzxid > updated.mzxid);
    assert_eq!(client.exists("/crud/child", false).unwrap().unwrap().num_children, 0);
    client.delete("/crud/child", VERSION_ANY).unwrap();
    assert_eq!(client.exists("/crud/child", false).unwrap(), None);
    assert_eq!(client.get_all_children_number("/crud").unwrap(), 0);
    client.delete("/crud", 1).unwrap();
    assert_eq!(
        client.get_children("/crud", false).map_err(|e| e.code()),
        Err(Some(ErrorCode::NoNode))
    );
}

#[test]
fn common_error_codes() {
    let client = connect();
    client.create("/errors", b"", &open(), CreateMode::Persistent).unwrap();
    client.create("/errors/a", b"", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(code(client.get_data("/errors/missing", false)), ErrorCode::NoNode);
    assert_eq!(
        code(client.create("/errors/x/y", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NoNode
    );
    assert_eq!(
        code(client.create("/errors/a", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    assert_eq!(code(client.set_data("/errors/a", b"v", 7)), ErrorCode::BadVersion);
    assert_eq!(code(client.delete("/errors/a", 3)), ErrorCode::BadVersion);
    assert_eq!(code(client.delete("/errors", VERSION_ANY)), ErrorCode::NotEmpty);
    client.create("/errors/eph", b"", &open(), CreateMode::Ephemeral).unwrap();
    let under_ephemeral = client.create("/errors/eph/c", b"", &open(), CreateMode::Persistent);
    assert_eq!(code(under_ephemeral), ErrorCode::NoChildrenForEphemerals);
    assert_eq!(
        code(client.create("/errors/bad/", b"", &open(), CreateMode::Persistent)),
        ErrorCode::NoNode
    );
    assert_eq!(
        code(client.create("/errors/a/", b"", &open(), CreateMode::Persistent)),
        ErrorCode::BadArguments
    );
    assert_eq!(code(client.set_acl("/errors/a", &[], VERSION_ANY)), ErrorCode::InvalidAcl);
    // The connection survives every error above.
    assert_eq!(client.sync("/errors/never-existed").unwrap(), "/errors/never-existed");
}

#[test]
fn digest_acls_and_no_auth() {
    let owner = connect();
    let stranger = connect();
    owner.add_auth("digest", b"alice:secret").unwrap();
    let creator_only =
        vec![ACL { perms: Perms::ALL, id: Id { scheme: "auth".to_owned(), id: String::new() } }];
    owner.create("/acl", b"private", &creator_only, CreateMode::Persistent).unwrap();
    let (acl, _) = owner.get_acl("/acl").unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));
    assert_eq!(owner.get_data("/acl", false).unwrap().0, b"private");
    assert_eq!(code(stranger.get_data("/acl", false)), ErrorCode::NoAuth);
    assert_eq!(code(stranger.set_data("/acl", b"x", VERSION_ANY)), ErrorCode::NoAuth);
    assert_eq!(code(stranger.get_acl("/acl")), ErrorCode::NoAuth);
    assert!(stranger.exists("/acl", false).unwrap().is_some(), "exists is not ACL-checked");
    stranger.add_auth("digest", b"alice:secret").unwrap();
    assert_eq!(stranger.get_data("/acl", false).unwrap().0, b"private");
    owner.delete("/acl", VERSION_ANY).unwrap();
}

#[test]
fn sequential_nodes_count_creations() {
    let client = connect();
    client.create("/seq", b"", &open(), CreateMode::Persistent).unwrap();
    let first = client.create("/seq/n-", b"", &open(), CreateMode::PersistentSequential).unwrap();
    assert_eq!(first, "/seq/n-0000000000");
    client.delete(&first, VERSION_ANY).unwrap();
    let second = client.create("/seq/n-", b"", &open(), CreateMode::EphemeralSequential).unwrap();
    assert_eq!(second, "/seq/n-0000000001");
    assert_eq!(client.get_ephemerals("/seq").unwrap(), [second]);
}

fn create_op(path: &str) -> MultiOp {
    let flags = CreateMode::Persistent.code();
    MultiOp::Create(CreateRequest { path: path.to_owned(), data: Some(vec![]), acl: open(), flags })
}

#[test]
fn multi_commits_and_rolls_back() {
    let client = connect();
    client.create("/multi", b"", &open(), CreateMode::Persistent).unwrap();
    let set = SetDataRequest { path: "/multi".into(), data: Some(b"v".to_vec()), version: 0 };
    let ops = vec![create_op("/multi/a"), MultiOp::SetData(set), create_op("/multi/b")];
    let results = client.multi(ops).unwrap();
    assert_eq!(results.len(), 3);
    assert!(matches!(&results[0], MultiResult::Create(created) if created.path == "/multi/a"));
    assert!(matches!(&results[1], MultiResult::SetData(set) if set.stat.version == 1));
    assert_eq!(multi_error(&results), None);
    let check = CheckVersionRequest { path: "/multi".into(), version: 0 };
    let delete = DeleteRequest { path: "/multi/a".into(), version: VERSION_ANY };
    let ops = vec![create_op("/multi/c"), MultiOp::Check(check), MultiOp::Delete(delete)];
    let results = client.multi(ops).unwrap();
    let codes = results
        .iter()
        .map(|result| match result {
            MultiResult::Error(error) => error.err,
            other => panic!("not an error result: {other:?}"),
        })
        .collect::<Vec<_>>();
    assert_eq!(codes, [0, ErrorCode::BadVersion.code(), ErrorCode::RuntimeInconsistency.code()]);
    assert_eq!(multi_error(&results), Some(ErrorCode::BadVersion));
    assert_eq!(client.exists("/multi/c", false).unwrap(), None, "rolled back");
    assert!(client.exists("/multi/a", false).unwrap().is_some());
}

#[test]
fn pipelines_a_thousand_requests_in_order() {
    let client = connect();
    client.create("/pipe", b"", &open(), CreateMode::Persistent).unwrap();
    let (completions, replies) = crossbeam_channel::bounded::<Completion>(1000);
    for tag in 0..1000u64 {
        let request = if tag % 2 == 0 {
            let data = Some(tag.to_be_bytes().to_vec());
            Request::SetData(SetDataRequest { path: "/pipe".into(), data, version: VERSION_ANY })
        } else {
            Request::GetData(GetDataRequest { path: "/pipe".into(), watch: false })
        };
        client.try_submit(request, tag, &completions).unwrap();
    }
    let mut last_zxid = 0;
    for expected_tag in 0..1000u64 {
        let completion = replies.recv_timeout(EVENT_WAIT).expect("a completion");
        assert_eq!(completion.tag, expected_tag, "replies out of submission order");
        assert!(completion.zxid >= last_zxid);
        last_zxid = completion.zxid;
        match completion.result.unwrap() {
            Response::SetData(set) => assert_eq!(set.stat.version as u64, expected_tag / 2 + 1),
            Response::GetData(get) => {
                // A read sees the write submitted just before it.
                assert_eq!(get.data.unwrap(), (expected_tag - 1).to_be_bytes());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn one_shot_watches_fire_once() {
    let client = connect();
    let writer = connect();
    client.create("/watch", b"", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(client.exists("/watch/n", true).unwrap(), None);
    writer.create("/watch/n", b"", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeCreated, "/watch/n".to_owned()));
    client.get_data("/watch/n", true).unwrap();
    client.get_children("/watch", true).unwrap();
    writer.set_data("/watch/n", b"1", VERSION_ANY).unwrap();
    writer.set_data("/watch/n", b"2", VERSION_ANY).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeDataChanged, "/watch/n".to_owned()));
    writer.delete("/watch/n", VERSION_ANY).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeChildrenChanged, "/watch".to_owned()));
    assert!(client.events().recv_timeout(Duration::from_millis(300)).is_err(), "fired twice");
    client.get_data("/watch", true).unwrap();
    client.remove_watches("/watch", WatcherType::Data).unwrap();
    assert_eq!(code(client.remove_watches("/watch", WatcherType::Data)), ErrorCode::NoWatcher);
}

#[test]
fn persistent_and_recursive_watches_keep_firing() {
    let client = connect();
    let writer = connect();
    client.create("/pw", b"", &open(), CreateMode::Persistent).unwrap();
    client.create("/pwr", b"", &open(), CreateMode::Persistent).unwrap();
    client.add_watch("/pw", AddWatchMode::Persistent).unwrap();
    client.add_watch("/pwr", AddWatchMode::PersistentRecursive).unwrap();
    writer.set_data("/pw", b"1", VERSION_ANY).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeDataChanged, "/pw".to_owned()));
    writer.set_data("/pw", b"2", VERSION_ANY).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeDataChanged, "/pw".to_owned()));
    writer.create("/pw/a", b"", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeChildrenChanged, "/pw".to_owned()));
    writer.create("/pwr/a", b"", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeCreated, "/pwr/a".to_owned()));
    writer.create("/pwr/a/b", b"", &open(), CreateMode::Persistent).unwrap();
    assert_eq!(next_watch_event(&client), (EventType::NodeCreated, "/pwr/a/b".to_owned()));
    client.remove_watches("/pw", WatcherType::Any).unwrap();
    client.remove_watches("/pwr", WatcherType::Any).unwrap();
    writer.set_data("/pw", b"3", VERSION_ANY).unwrap();
    writer.set_data("/pwr/a", b"3", VERSION_ANY).unwrap();
    assert!(client.events().recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn ephemerals_go_when_the_session_closes() {
    let owner = connect();
    let observer = connect();
    observer.create("/eph", b"", &open(), CreateMode::Persistent).unwrap();
    owner.create("/eph/mine", b"", &open(), CreateMode::Ephemeral).unwrap();
    let stat = observer.exists("/eph/mine", true).unwrap().expect("ephemeral exists");
    assert_eq!(stat.ephemeral_owner, owner.session_id());
    owner.close().unwrap();
    assert_eq!(owner.state(), KeeperState::Closed);
    assert_eq!(owner.get_data("/eph", false), Err(ZkError::Closed));
    assert_eq!(next_watch_event(&observer), (EventType::NodeDeleted, "/eph/mine".to_owned()));
    assert_eq!(observer.exists("/eph/mine", false).unwrap(), None);
}

#[test]
fn kazoo_writes_and_the_rust_client_reads() {
    let hosts = shared_standalone().unwrap_or_else(|error| panic!("real ZooKeeper: {error}"));
    let kazoo = Kazoo::ensure().unwrap_or_else(|error| panic!("kazoo: {error}"));
    let script = "import os\nfrom kazoo.client import KazooClient\n\
        zk = KazooClient(hosts=os.environ['ZK_HOSTS'])\nzk.start()\n\
        zk.create('/kazoo/hello', b'from kazoo', makepath=True)\n\
        print(zk.get('/kazoo/hello')[1].version)\nzk.stop()\n";
    let output = kazoo.run_script(&hosts, script).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(output.trim(), "0");
    let client = connect();
    assert_eq!(client.get_data("/kazoo/hello", false).unwrap().0, b"from kazoo");
}
