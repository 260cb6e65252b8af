//! Real-process fault tests of a 3-node Zab ensemble (`zabflow node` ×3 on loopback, peer
//! links through fault-injecting proxies), under a steady write load from several sessions
//! whose every operation is recorded and checked for linearizability:
//!
//! 1. the leader is SIGKILLed → a new leader serves writes within a bound ("failover: N ms",
//!    measured with fast ticks and with ZooKeeper's default tickTime=2000), clients move on,
//!    no acknowledged write is lost;
//! 2. a follower is killed and restarted → it catches up by DIFF;
//! 3. the leader is cut off from both followers (links closed, or stalled as a silent
//!    partition) → it stops serving within syncLimit × tickTime, the majority elects a leader
//!    and takes writes, and after healing the old leader follows again, its uncommitted
//!    txns truncated;
//! 4. all three are SIGKILLed together and restarted → the same committed state; then a
//!    follower whose data dir is wiped catches up by SNAP.
//!
//! Every test ends with the same checks: all servers converge to one tree (data and stats),
//! every acknowledged create and setData is in it, and the recorded history of conditional
//! writes, closed by a read of every znode, is linearizable.
//!
//! The ensembles run one at a time (their timings are measured). `--nocapture` shows the
//! measurements; `ZABFLOW_ENSEMBLE_LOGS=DIR` keeps every node's whole log in DIR.

mod coord;
mod ensemble;

use std::time::{Duration, Instant};

use ensemble::load::{self, Load, Record};
use ensemble::{one_at_a_time, since, wait_until, Ensemble, Mode, Settings};
use zabflow_net::jute::{OpCode, Request, SetDataRequest};
use zabflow_tests::linearizability::{Operation, ZnodeInput, ZnodeOutput};

/// The bound asserted on a leader failover (the target is 0.3 s; ZooKeeper takes 0.5–1 s).
const FAILOVER_BOUND: Duration = Duration::from_secs(5);

/// Slack over syncLimit × tickTime for a cut-off leader to stop serving on a noisy machine.
const STEP_DOWN_SLACK: Duration = Duration::from_millis(2_000);

/// What a leader kill measured.
struct Failover {
    /// From the SIGKILL to the first write acknowledged by the new leader (a probe session
    /// retrying on the survivors every few milliseconds).
    probe: Duration,
    /// From the SIGKILL to the first acknowledgement of a load write issued after it.
    clients: Duration,
}

/// SIGKILLs the leader and measures how long until a write is acknowledged again.
fn kill_leader(ensemble: &mut Ensemble, load: &Load) -> (u64, Failover) {
    let leader = ensemble.wait_for_leader(Duration::from_secs(20));
    let survivors: Vec<u16> = ensemble
        .nodes
        .iter()
        .filter(|node| node.running() && node.id != leader)
        .map(|node| node.client_port)
        .collect();
    // The probe's session exists before the kill, so a write is all it needs afterwards.
    let probe = coord::Client::connect(survivors[0]);
    let (session_id, passwd, timeout_ms) =
        (probe.session_id, probe.passwd.clone(), probe.timeout_ms);
    drop(probe);
    let killed_at = Instant::now();
    let killed_ns = since(load.origin);
    ensemble.node_mut(leader).kill();
    let request = Request::SetData(SetDataRequest {
        path: "/probe".into(),
        data: Some(b"after the kill".to_vec()),
        version: -1,
    });
    let mut acknowledged = None;
    'probe: while killed_at.elapsed() < Duration::from_secs(30) {
        for &port in &survivors {
            let Some(mut client) =
                coord::Client::resume(port, session_id, passwd.clone(), timeout_ms)
            else {
                continue;
            };
            client.stream.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
            if client.try_send(&request).is_none() {
                continue;
            }
            if let Some((header, _)) = client.receive(OpCode::SetData) {
                if header.err == 0 {
                    acknowledged = Some(killed_at.elapsed());
                    break 'probe;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let probe = acknowledged.unwrap_or_else(|| {
        panic!(
            "no write acknowledged within 30 s of killing leader {leader}: {}",
            ensemble.status()
        )
    });
    // The load's writers go on by themselves; wait until one of them has a write acked.
    let mut clients = None;
    wait_until(
        Duration::from_secs(30),
        || format!("no load write acknowledged after the kill: {}", ensemble.status()),
        || {
            clients = load.first_ack_after(killed_ns);
            clients.is_some()
        },
    );
    let clients = Duration::from_nanos(clients.expect("checked") - killed_ns);
    (leader, Failover { probe, clients })
}

/// Creates the probe's znode.
fn create_probe(ensemble: &Ensemble) {
    let client = load::connect(
        &ensemble.connect_string(),
        ensemble.settings.session_timeout(),
        Duration::from_secs(20),
    );
    client
        .create(
            "/probe",
            b"",
            &[zabflow_coord::acl::world(31)],
            zabflow_net::jute::CreateMode::Persistent,
        )
        .expect("create /probe");
    let _ = client.close();
}

/// Runs the end-of-test checks and prints what they covered.
fn finish(name: &str, ensemble: &Ensemble, load: Load, extra: Vec<Record>) {
    let origin = load.origin;
    let mut records = load.stop();
    records.extend(extra);
    let (operations, acked, unknown) = load::check_history(ensemble, records, origin);
    println!(
        "{name}: {operations} operations linearizable, {acked} acknowledged writes on every \
         server, {unknown} outcomes unknown"
    );
}

fn kill_leader_rounds(settings: Settings, rounds: usize, name: &str) -> Vec<Duration> {
    let mut ensemble = Ensemble::start(3, settings);
    create_probe(&ensemble);
    let load = Load::start(&ensemble, 6);
    load.wait_for_acks(300, Duration::from_secs(30), &ensemble);
    let mut measured = Vec::new();
    for round in 1..=rounds {
        let (leader, failover) = kill_leader(&mut ensemble, &load);
        println!(
            "{name}: failover: {} ms (round {round}: leader {leader} SIGKILLed → first write \
             acknowledged by the new leader); load clients' first acked write after it: {} ms",
            failover.probe.as_millis(),
            failover.clients.as_millis()
        );
        assert!(
            failover.probe <= FAILOVER_BOUND,
            "failover took {:?}\n{}",
            failover.probe,
            ensemble.logs()
        );
        measured.push(failover.probe);
        // Clients move on: the load keeps being acknowledged without the old leader.
        load.wait_for_acks(200, Duration::from_secs(30), &ensemble);
        ensemble.node_mut(leader).start();
        let new_leader = ensemble.wait_for_leader(Duration::from_secs(30));
        assert_ne!(new_leader, leader, "the restarted node cannot lead an established epoch");
        load.wait_for_acks(100, Duration::from_secs(30), &ensemble);
    }
    finish(name, &ensemble, load, Vec::new());
    measured
}

#[test]
fn leader_sigkill_fails_over_without_losing_acknowledged_writes() {
    let _serial = one_at_a_time();
    kill_leader_rounds(Settings::fast(), 2, "leader kill (tickTime=200)");
}

#[test]
fn leader_failover_with_default_ticks() {
    let _serial = one_at_a_time();
    let mut measured =
        kill_leader_rounds(Settings::default_ticks(), 3, "leader kill (tickTime=2000)");
    measured.sort();
    println!(
        "failover with default ticks (tickTime=2000, syncLimit=5): median {} ms, max {} ms \
         (target ≤ 300 ms; ZooKeeper 500–1050 ms)",
        measured[measured.len() / 2].as_millis(),
        measured[measured.len() - 1].as_millis()
    );
}

/// The new part of a node's log since `offset` bytes.
fn log_since(ensemble: &Ensemble, id: u64, offset: usize) -> String {
    ensemble.node(id).log().get(offset..).unwrap_or_default().to_owned()
}

#[test]
fn restarted_follower_catches_up_by_diff() {
    let _serial = one_at_a_time();
    let mut ensemble = Ensemble::start(3, Settings::fast());
    let load = Load::start(&ensemble, 6);
    load.wait_for_acks(300, Duration::from_secs(30), &ensemble);
    let follower = ensemble.a_follower();
    let leader = ensemble.wait_for_leader(Duration::from_secs(20));
    ensemble.node_mut(follower).kill();
    // The other two are a quorum: writes go on, and the follower falls behind.
    load.wait_for_acks(300, Duration::from_secs(30), &ensemble);
    let (follower_offset, leader_offset) =
        (ensemble.node(follower).log().len(), ensemble.node(leader).log().len());
    ensemble.node_mut(follower).start();
    wait_until(
        Duration::from_secs(20),
        || format!("node {follower} did not rejoin: {}", ensemble.status()),
        || ensemble.node(follower).srvr().0 == Mode::Follower,
    );
    load.wait_for_acks(200, Duration::from_secs(30), &ensemble);
    finish("follower restart", &ensemble, load, Vec::new());
    let follower_log = log_since(&ensemble, follower, follower_offset);
    let leader_log = log_since(&ensemble, leader, leader_offset);
    assert!(
        !follower_log.contains("SNAP: installing") && !follower_log.contains("TRUNC"),
        "a follower that only missed committed txns is synced by DIFF:\n{follower_log}"
    );
    assert!(!leader_log.contains("by SNAP"), "the leader sent a SNAP:\n{leader_log}");
}

/// SIGKILLs every node at once and starts them again; returns each node's log offset
/// before the restart.
fn kill_all_and_restart(ensemble: &mut Ensemble) -> Vec<usize> {
    let offsets: Vec<usize> = ensemble.nodes.iter().map(|node| node.log().len()).collect();
    for node in &mut ensemble.nodes {
        node.kill();
    }
    for node in &mut ensemble.nodes {
        node.start();
    }
    ensemble.wait_for_leader(Duration::from_secs(30));
    offsets
}

/// Checks that each node, restarted from a snapshot, replayed every txn of its log after
/// it: "loaded snapshot at zxid S" then "replayed N txns; last zxid L" with N = L − S when
/// both are of one epoch (zxids are dense within an epoch). Returns how many loaded one.
fn assert_replays_complete(ensemble: &Ensemble, offsets: &[usize]) -> usize {
    let mut loaded = 0;
    for (node, offset) in ensemble.nodes.iter().zip(offsets) {
        let log = log_since(ensemble, node.id, *offset);
        let lines: Vec<&str> = log.lines().collect();
        let Some(at) = lines.iter().position(|line| line.contains("loaded snapshot at zxid"))
        else {
            continue;
        };
        loaded += 1;
        let hex = |text: &str| i64::from_str_radix(text.trim().trim_start_matches("0x"), 16);
        let snapshot = lines[at].rsplit(' ').next().map(hex).and_then(Result::ok);
        let replayed = lines.get(at + 1).and_then(|line| {
            let (count, last) = line.split_once(" txns; last zxid ")?;
            Some((count.rsplit(' ').next()?.parse::<i64>().ok()?, hex(last).ok()?))
        });
        let (Some(snapshot), Some((count, last))) = (snapshot, replayed) else {
            panic!("node {}: unexpected recovery lines:\n{log}", node.id);
        };
        if snapshot >> 32 == last >> 32 {
            assert_eq!(
                count,
                last - snapshot,
                "node {} recovered from the snapshot at 0x{snapshot:x} to 0x{last:x} but \
                 replayed only {count} txns: txns of its log were skipped\n{log}",
                node.id
            );
        }
    }
    loaded
}

#[test]
fn all_killed_together_restart_with_the_committed_state() {
    let _serial = one_at_a_time();
    let mut ensemble = Ensemble::start(3, Settings::fast());
    let load = Load::start(&ensemble, 6);
    for round in 1..=2 {
        load.wait_for_acks(300, Duration::from_secs(30), &ensemble);
        let acked = load.acks.load(std::sync::atomic::Ordering::Relaxed);
        kill_all_and_restart(&mut ensemble);
        // Clients move on once the ensemble is back.
        load.wait_for_acks(200, Duration::from_secs(30), &ensemble);
        println!("all killed (round {round}): {acked} writes acknowledged before, serving again");
    }
    finish("all killed", &ensemble, load, Vec::new());
}

#[test]
fn all_killed_under_load_with_snapshots() {
    let _serial = one_at_a_time();
    let mut settings = Settings::fast();
    settings.extra = "snapCount=50".into();
    let mut ensemble = Ensemble::start(3, settings);
    let load = Load::start(&ensemble, 6);
    for _ in 0..3 {
        load.wait_for_acks(300, Duration::from_secs(30), &ensemble);
        let offsets = kill_all_and_restart(&mut ensemble);
        assert_replays_complete(&ensemble, &offsets);
    }
    load.wait_for_acks(200, Duration::from_secs(30), &ensemble);
    finish("all killed under load with snapshots", &ensemble, load, Vec::new());
}

#[test]
fn wiped_follower_catches_up_by_snap() {
    let _serial = one_at_a_time();
    let mut settings = Settings::fast();
    settings.extra = "snapCount=100".into();
    let mut ensemble = Ensemble::start(3, settings);
    let load = Load::start(&ensemble, 6);
    load.wait_for_acks(300, Duration::from_secs(30), &ensemble);
    // A leader syncs by DIFF from the log it holds in memory, from zxid 0 unless it started
    // from a snapshot. So restart every node from one, taken while quiet: sequential writes
    // (the log never runs ahead of the tree; see all_killed_under_load_with_snapshots).
    load.pause(&ensemble);
    let quiet = load::connect(
        &ensemble.connect_string(),
        ensemble.settings.session_timeout(),
        Duration::from_secs(20),
    );
    let acl = [zabflow_coord::acl::world(31)];
    for i in 0..150 {
        let path = format!("/quiet{i}");
        quiet.create(&path, b"q", &acl, zabflow_net::jute::CreateMode::Persistent).expect("create");
    }
    let _ = quiet.close();
    ensemble.wait_converged(Duration::from_secs(20));
    let offsets = kill_all_and_restart(&mut ensemble);
    let loaded = assert_replays_complete(&ensemble, &offsets);
    assert_eq!(loaded, 3, "every node restarts from a snapshot (snapCount=100)");
    load.resume();
    load.wait_for_acks(200, Duration::from_secs(30), &ensemble);
    let follower = ensemble.a_follower();
    ensemble.node_mut(follower).kill();
    ensemble.wipe(follower);
    load.wait_for_acks(100, Duration::from_secs(30), &ensemble);
    let offset = ensemble.node(follower).log().len();
    ensemble.node_mut(follower).start();
    wait_until(
        Duration::from_secs(20),
        || format!("wiped node {follower} did not rejoin: {}", ensemble.status()),
        || ensemble.node(follower).srvr().0 == Mode::Follower,
    );
    load.wait_for_acks(200, Duration::from_secs(30), &ensemble);
    finish("wiped follower", &ensemble, load, Vec::new());
    let log = log_since(&ensemble, follower, offset);
    assert!(log.contains("SNAP: installing"), "the wiped follower was not synced by SNAP:\n{log}");
}

/// Writes to an isolated leader without waiting: it may log them, it must acknowledge none.
/// Returns them as unknown-outcome operations.
fn write_to_isolated(client: &mut coord::Client, load: &Load, ensemble: &Ensemble) -> Vec<Record> {
    let mut sent = Vec::new();
    for i in 0..20u64 {
        let key = format!("/lin/isolated{i}");
        let value = (1 << 50) | i;
        let call = since(load.origin);
        let request = coord::create(&key, &value.to_be_bytes(), 0);
        let Some(xid) = client.try_send(&request) else { break };
        sent.push((xid, key, value, call));
    }
    client.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut records = Vec::new();
    for (xid, key, value, call) in sent {
        let output = match client.receive(OpCode::Create) {
            Some((header, _)) if header.err == 0 && header.xid == xid => Some(ZnodeOutput::Created),
            _ => None,
        };
        let ret = since(load.origin);
        let input = ZnodeInput::Create { value };
        records.push((key, Operation { process: usize::MAX - 2, call, ret, input, output }));
    }
    let acknowledged = records.iter().filter(|(_, op)| op.output.is_some()).count();
    assert_eq!(acknowledged, 0, "the isolated leader acknowledged writes\n{}", ensemble.logs());
    records
}

/// Isolates the leader from both followers (closing its links, or stalling them) and checks
/// that it stops serving within syncLimit × tickTime, that the majority elects a leader and
/// takes writes, and that the old leader follows after healing, its uncommitted tail
/// truncated. A stalled leader serves on until it misses its quorum: the test writes to it
/// then, so it must have such a tail. A closed link is noticed at once: the load is paused
/// over the cut, so that the old leader has no tail (TRUNC is the stalled test's).
fn partition_leader(stall: bool) {
    let name = if stall { "stalled leader" } else { "cut-off leader" };
    let ensemble = Ensemble::start(3, Settings::fast());
    let load = Load::start(&ensemble, 6);
    load.wait_for_acks(300, Duration::from_secs(30), &ensemble);
    let leader = ensemble.wait_for_leader(Duration::from_secs(20));
    let mut isolated = coord::Client::connect(ensemble.node(leader).client_port);
    let offset = ensemble.node(leader).log().len();
    if !stall {
        load.pause(&ensemble);
    }
    let partitioned_at = Instant::now();
    let mut extra = Vec::new();
    if stall {
        // First the followers' acks stop reaching the leader while its proposals still
        // reach them: they log txns the leader never commits (the new leader will), then
        // nothing gets through.
        ensemble.stall_inbound(leader);
        std::thread::sleep(Duration::from_millis(100));
        ensemble.stall(leader);
        extra = write_to_isolated(&mut isolated, &load, &ensemble);
    } else {
        ensemble.cut(leader);
    }
    // The minority stops serving within syncLimit × tickTime.
    let settings = &ensemble.settings;
    let sync_limit_ms = u64::from(settings.sync_limit * settings.tick_ms);
    let bound = Duration::from_millis(sync_limit_ms) + STEP_DOWN_SLACK;
    wait_until(
        bound.saturating_sub(partitioned_at.elapsed()),
        || format!("isolated leader {leader} still serving: {}", ensemble.status()),
        || ensemble.node(leader).srvr().0 == Mode::NotServing,
    );
    let stepped_down = partitioned_at.elapsed();
    load.resume();
    // The majority elects a leader among themselves and takes writes.
    wait_until(
        Duration::from_secs(20),
        || format!("the majority elected no leader: {}", ensemble.status()),
        || ensemble.nodes.iter().any(|node| node.id != leader && node.srvr().0 == Mode::Leader),
    );
    let elected = partitioned_at.elapsed();
    load.wait_for_acks(200, Duration::from_secs(30), &ensemble);
    println!(
        "{name}: leader {leader} stopped serving after {} ms (syncLimit × tickTime = \
         {sync_limit_ms} ms), the majority elected a leader after {} ms",
        stepped_down.as_millis(),
        elected.as_millis()
    );
    ensemble.heal();
    wait_until(
        Duration::from_secs(30),
        || format!("old leader {leader} did not rejoin: {}", ensemble.status()),
        || ensemble.node(leader).srvr().0 == Mode::Follower,
    );
    load.wait_for_acks(100, Duration::from_secs(30), &ensemble);
    let keys: Vec<String> = extra.iter().map(|(key, _)| key.clone()).collect();
    finish(name, &ensemble, load, extra);
    let tree = ensemble.dump(leader);
    for key in &keys {
        assert!(!tree.contains_key(key), "{key}, never replicated, survived on the old leader");
    }
    let log = log_since(&ensemble, leader, offset);
    if stall {
        assert!(log.contains("TRUNC"), "the old leader rejoined without TRUNC:\n{log}");
    }
}

#[test]
fn stalled_leader_steps_down_and_is_truncated_after_healing() {
    let _serial = one_at_a_time();
    partition_leader(true);
}

#[test]
fn cut_off_leader_steps_down_and_rejoins_after_healing() {
    let _serial = one_at_a_time();
    partition_leader(false);
}
