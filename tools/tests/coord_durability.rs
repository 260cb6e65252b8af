//! Durability of `zabflow node`: SIGKILL loops keep every acknowledged write, and a corrupt
//! newest snapshot falls back to the previous one.

mod coord;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coord::{create, Client, Node};
use zabflow_net::jute::{OpCode, Request};

fn exists(client: &mut Client, path: &str) -> bool {
    let request =
        Request::Exists(zabflow_net::jute::ExistsRequest { path: path.into(), watch: false });
    client.call(&request).0 == 0
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "snapCount=50");
    let port = node.port;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..20 {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                // The node may be killed at any moment, even before the session is made:
                // a failed connect or send ends this round's writes.
                let Some(mut client) = Client::resume(port, 0, vec![0; 16], 30_000) else {
                    return;
                };
                let mut in_flight = std::collections::VecDeque::new();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) && in_flight.is_empty() {
                        break;
                    }
                    if !stop.load(Ordering::Relaxed) && in_flight.len() < 16 {
                        let path = format!("/r{round}-{i}");
                        let Some(xid) = client.try_send(&create(&path, b"v", 0)) else { break };
                        in_flight.push_back((xid, path));
                        continue;
                    }
                    let Some((header, _)) = client.receive(OpCode::Create) else { break };
                    let (xid, path) = in_flight.pop_front().unwrap();
                    assert_eq!((header.xid, header.err), (xid, 0));
                    acked.lock().unwrap().push(path);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(30 + (round * 7) % 60));
        node.kill();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        node = Node::restart_at(dir.path(), port);
    }
    let mut client = Client::connect(port);
    let acked = acked.lock().unwrap();
    assert!(acked.len() > 100, "only {} writes acknowledged", acked.len());
    for path in acked.iter() {
        assert!(exists(&mut client, path), "acknowledged {path} lost");
    }
}

#[test]
fn corrupt_newest_snapshot_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), "snapCount=10");
    let mut client = Client::connect(node.port);
    for i in 0..45 {
        assert_eq!(client.call(&create(&format!("/s{i}"), b"v", 0)).0, 0);
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(client);
    node.stop();
    let snapshots_dir = dir.path().join("data/version-2");
    let mut snapshots: Vec<_> = std::fs::read_dir(&snapshots_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("snapshot."))
        .collect();
    snapshots.sort();
    assert!(snapshots.len() >= 2, "{snapshots:?}");
    let newest = snapshots.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(newest, bytes).unwrap();
    let node = Node::restart_at(dir.path(), node.port);
    let mut client = Client::connect(node.port);
    for i in 0..45 {
        assert!(exists(&mut client, &format!("/s{i}")), "/s{i} lost");
    }
    assert!(node.log().contains("is invalid"), "{}", node.log());
}
