//! Differential test against real Apache ZooKeeper 3.8: seeded random op sequences run on a
//! fresh `zabflow node` and on a real ZooKeeper standalone server, step by step, and every
//! step's outcome must agree — error code, returned path, data, child set, ACL list and
//! `Stat` (zxids by order, session ids by index, times only as `ctime == mtime` at version 0).
//!
//! Each seed works under its own top-level node `/s<seed>` on both servers, so seeds share
//! the two servers without seeing each other (and ZooKeeper's `/zookeeper` node stays out of
//! every answer). A seed stops at its first mismatch, since the two trees may differ after
//! it; the report prints the seed, the step, the op, both outcomes and the steps before it.
//! `ZABFLOW_DIFF_SEED=<seed>` replays one seed; `ZABFLOW_DIFF_SEEDS=<count>` and
//! `ZABFLOW_DIFF_STEPS=<steps>` explore more.
//!
//! ZooKeeper reaps containers and TTL nodes only from a minute after its start (its
//! `znode.container.checkIntervalMs` is a JVM property the harness leaves at 60 s); zabflow's
//! reaper is set to an hour. The whole run stays well inside that first minute, so neither
//! server reaps and both trees follow the ops alone.

mod coord;
#[path = "differential/generator.rs"]
mod generator;
#[path = "differential/outcome.rs"]
mod outcome;

use std::time::{Duration, Instant};

use generator::{Action, Generator, Step, SESSION_SLOTS};
use outcome::{render, Outcome, ZxidOrder};
use zabflow_net::client::Client;
use zabflow_net::jute::{CreateRequest, MultiResult, Request, Response};
use zabflow_net::ZkResult;
use zabflow_tests::real_zookeeper::RealZooKeeper;

/// The seeds a plain `cargo test` runs.
const SEEDS_DEFAULT: [u64; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
/// Steps per seed; with [`SEEDS_DEFAULT`], 6,000 ops.
const STEPS_PER_SEED_DEFAULT: usize = 500;
/// Steps quoted before a mismatch in its report.
const CONTEXT_STEPS: usize = 12;
/// ZooKeeper's first container/TTL reaper pass comes this long after it starts.
const ZOOKEEPER_FIRST_REAP: Duration = Duration::from_secs(60);

/// One server under test: its session slots and every session id it has handed out, in order.
struct Side {
    address: String,
    slots: Vec<Client>,
    sessions: Vec<i64>,
}

impl Side {
    fn open(address: &str) -> Side {
        let mut side =
            Side { address: address.to_owned(), slots: Vec::new(), sessions: Vec::new() };
        for _ in 0..SESSION_SLOTS {
            let client = side.connect();
            side.slots.push(client);
        }
        side
    }

    fn connect(&mut self) -> Client {
        let client = Client::connect_to(&self.address)
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.address));
        self.sessions.push(client.session_id());
        client
    }

    fn run(&mut self, step: &Step) -> (ZkResult<Response>, Outcome) {
        let result = match &step.action {
            Action::Call(request) => self.slots[step.slot].call(request.clone()),
            Action::AddAuth(auth) => {
                self.slots[step.slot].add_auth("digest", auth.as_bytes()).map(|()| Response::Empty)
            }
            Action::Reopen => {
                let closed = self.slots[step.slot].close().map(|()| Response::Empty);
                self.slots[step.slot] = self.connect();
                closed
            }
        };
        for client in &self.slots {
            while client.events().try_recv().is_ok() {}
        }
        let outcome = render(&result, &self.sessions);
        (result, outcome)
    }
}

/// Paths a successful create returned, to aim later steps at.
fn created_paths(result: &ZkResult<Response>) -> Vec<String> {
    match result {
        Ok(Response::Create(created)) => vec![created.path.clone()],
        Ok(Response::Create2(created)) => vec![created.path.clone()],
        Ok(Response::Multi(multi)) => multi
            .results
            .iter()
            .filter_map(|result| match result {
                MultiResult::Create(created) => Some(created.path.clone()),
                MultiResult::Create2(created) => Some(created.path.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The step as text, with each data buffer shown as a string (or its length when long)
/// instead of a list of byte values.
fn describe(step: &Step) -> String {
    const MARKER: &str = "data: Some([";
    let raw = format!("session slot {}: {:?}", step.slot, step.action);
    let mut text = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(start) = rest.find(MARKER) {
        let body = &rest[start + MARKER.len()..];
        let end = body.find(']').unwrap_or(body.len());
        let bytes: Vec<u8> = body[..end].split(", ").filter_map(|byte| byte.parse().ok()).collect();
        text.push_str(&rest[..start]);
        if bytes.len() > 32 {
            text.push_str(&format!("data: {} bytes", bytes.len()));
        } else {
            text.push_str(&format!("data: {:?}", String::from_utf8_lossy(&bytes)));
        }
        rest = body.get(end + 2..).unwrap_or_default();
    }
    text.push_str(rest);
    if text.len() > 600 {
        text.truncate(600);
        text.push('…');
    }
    text
}

/// Runs one seed on both servers; `Err` is the report of its first mismatch.
fn run_seed(seed: u64, steps: usize, zabflow: &str, zookeeper: &str) -> Result<(), String> {
    let mut generator = Generator::new(seed);
    let (mut left, mut right) = (Side::open(zabflow), Side::open(zookeeper));
    let root = Step {
        slot: 0,
        action: Action::Call(Request::Create(CreateRequest {
            path: generator.prefix().to_owned(),
            data: Some(Vec::new()),
            acl: vec![zabflow_coord::acl::world(31)],
            flags: 0,
        })),
    };
    let mut zxids = ZxidOrder::default();
    let mut history: Vec<String> = Vec::new();
    for index in 0..=steps {
        let step = if index == 0 { root.clone() } else { generator.next_step() };
        let (result, left_outcome) = left.run(&step);
        let (_, right_outcome) = right.run(&step);
        let zxid_error = if left_outcome.zxids.len() == right_outcome.zxids.len() {
            let mut pairs = left_outcome.zxids.iter().zip(&right_outcome.zxids);
            pairs.find_map(|(left, right)| zxids.pair(*left, *right).err())
        } else {
            None
        };
        if left_outcome.text != right_outcome.text || zxid_error.is_some() {
            let context = history.iter().rev().take(CONTEXT_STEPS).rev().cloned();
            return Err(format!(
                "seed {seed} (replay: ZABFLOW_DIFF_SEED={seed}), step {index}:\n  op:        {}\n  \
                 zabflow:   {}\n  zookeeper: {}\n  zxids: {:?} vs {:?}{}\n  steps before:\n    {}",
                describe(&step),
                left_outcome.text,
                right_outcome.text,
                left_outcome.zxids,
                right_outcome.zxids,
                zxid_error.map(|error| format!(" ({error})")).unwrap_or_default(),
                context.collect::<Vec<_>>().join("\n    "),
            ));
        }
        for path in created_paths(&result) {
            generator.created(&path);
        }
        history.push(format!("{index}: {} -> {}", describe(&step), left_outcome.text));
    }
    Ok(())
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

#[test]
fn agrees_with_real_zookeeper() {
    let started = Instant::now();
    let zookeeper = RealZooKeeper::start_standalone().unwrap_or_else(|error| panic!("{error}"));
    let zookeeper_started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let node = coord::Node::start(
        dir.path(),
        "tickTime=2000\nextendedTypesEnabled=true\nznode.container.checkIntervalMs=3600000",
    );
    let seeds: Vec<u64> = match (env_number("ZABFLOW_DIFF_SEED"), env_number("ZABFLOW_DIFF_SEEDS"))
    {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (1..=count).collect(),
        (None, None) => SEEDS_DEFAULT.to_vec(),
    };
    let steps = env_number("ZABFLOW_DIFF_STEPS").map_or(STEPS_PER_SEED_DEFAULT, |n| n as usize);
    let zabflow = format!("127.0.0.1:{}", node.port);
    let mut failures = Vec::new();
    for &seed in &seeds {
        if let Err(report) = run_seed(seed, steps, &zabflow, &zookeeper.connect_string()) {
            eprintln!("{report}\n");
            failures.push(report);
        }
    }
    let late = zookeeper_started.elapsed() >= ZOOKEEPER_FIRST_REAP;
    eprintln!(
        "differential: {} seeds x {steps} steps in {:.1} s{}",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        if late {
            " (past ZooKeeper's first reaper pass: container/TTL steps may differ)"
        } else {
            ""
        },
    );
    assert!(
        failures.is_empty(),
        "{} of {} seeds disagree:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n\n")
    );
}

#[test]
fn steps_show_data_as_text() {
    let set = |data: Vec<u8>| Step {
        slot: 1,
        action: Action::Call(Request::SetData(zabflow_net::jute::SetDataRequest {
            path: "/s1/d".to_owned(),
            data: Some(data),
            version: -1,
        })),
    };
    let text = describe(&set(b"ab".to_vec()));
    assert!(text.contains(r#"data: "ab", version: -1"#), "{text}");
    assert!(describe(&set(Vec::new())).contains(r#"data: "", version"#));
    assert!(describe(&set(vec![b'z'; 40])).contains("data: 40 bytes, version"));
}
