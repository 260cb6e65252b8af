//! The coord load generator: what a workload measured, the keys it works on, and a run.
//!
//! The keys are pre-created through full [`Client`]s ([`connect`], [`populate`]); the
//! measured load runs over bare [`Session`]s, split round-robin among at most
//! [`COORD_GENERATOR_THREADS_MAX`] generator threads, each of which owns its sessions'
//! sockets ([`Driver`]: no thread per session, no channel per request).
//!
//! A workload runs a ramp and then a measured window: a reply counts (and its latency is
//! recorded) when it arrives inside the window. After the window no new request is sent and
//! those in flight are drained. Throughput counts successful replies; failed ones are
//! counted by error code, and a connection lost before the window's end counts its requests
//! in flight as `ConnectionLoss` (that session then sits out the rest of the run). The
//! servers' CPU time and the generator's own are sampled at the window's edges.

use super::cpu;
use super::driver::Driver;
use super::session::{Outcome, Session};
use super::workload::{Op, Workload};
use crate::constants::{
    COORD_DRAIN_TIMEOUT, COORD_GENERATOR_THREADS_MAX, COORD_POPULATE_SESSIONS_MAX,
    COORD_TIMELINE_STEP,
};
use crate::error::{BenchError, Result};
use crate::report::latency_histogram;
use crossbeam_channel::Receiver;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use zabflow_net::client::{Client, ClientConfig, Completion};
use zabflow_net::jute::{CreateMode, CreateRequest, ErrorCode, Request, ACL};
use zabflow_net::ZkError;

/// Parent of every node the generator touches on a server it started itself.
pub const ROOT_PATH_DEFAULT: &str = "/bench";
/// Creates in flight per session while pre-creating the keys.
const POPULATE_DEPTH: usize = 256;

/// The data the generator works on, all of it under one root:
///
/// ```text
/// <root>/n0000000 …   the keys: pre-created, read and written by uniformly random key
/// <root>/tmp/…        the create/delete pairs' nodes
/// <root>/seq/s-…      the sequential nodes (they accumulate for the life of the root)
/// ```
#[derive(Debug, Clone)]
pub struct Keyspace {
    /// `/bench` on a fresh target; a per-run root on an external one, removed afterwards.
    pub root: String,
    /// `<root>/n0000000` …, in key order.
    pub paths: Vec<String>,
    /// The value every write stores.
    pub value: Vec<u8>,
    /// Seeds the sessions' generators.
    pub seed: u64,
}

impl Keyspace {
    /// `znodes` keys of `value_bytes` each under [`ROOT_PATH_DEFAULT`].
    pub fn new(znodes: usize, value_bytes: usize, seed: u64) -> Keyspace {
        Keyspace::under(ROOT_PATH_DEFAULT, znodes, value_bytes, seed)
    }

    /// `znodes` keys of `value_bytes` each under `root` (an absolute path, no trailing `/`).
    pub fn under(root: &str, znodes: usize, value_bytes: usize, seed: u64) -> Keyspace {
        let paths = (0..znodes).map(|key| format!("{root}/n{key:07}")).collect();
        Keyspace { root: root.to_owned(), paths, value: vec![b'v'; value_bytes], seed }
    }

    /// Parent of the create/delete pairs' nodes.
    pub fn tmp_path(&self) -> String {
        format!("{}/tmp", self.root)
    }

    /// Parent of the sequential nodes.
    pub fn seq_path(&self) -> String {
        format!("{}/seq", self.root)
    }
}

/// What one op measured in a window.
#[derive(Debug, Clone)]
pub struct OpResult {
    /// Latencies of successful replies, in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Successful replies.
    pub count: u64,
    /// Failed replies by error name (`BadVersion`, `ConnectionLoss`, …).
    pub errors: BTreeMap<String, u64>,
    /// The worst latency (µs) of the replies of each [`COORD_TIMELINE_STEP`] of the window,
    /// in order: a stall shows as a run of high steps, a steady tail as noise everywhere.
    pub worst_us: Vec<u32>,
}

impl OpResult {
    pub(super) fn new() -> OpResult {
        let (histogram, errors) = (latency_histogram(), BTreeMap::new());
        OpResult { histogram, count: 0, errors, worst_us: Vec::new() }
    }

    /// Records a successful reply `since_start` into the window.
    pub(super) fn record(&mut self, since_start: Duration, latency_ns: u64) {
        self.histogram.saturating_record(latency_ns.max(1));
        self.count += 1;
        let step = (since_start.as_nanos() / COORD_TIMELINE_STEP.as_nanos()) as usize;
        if self.worst_us.len() <= step {
            self.worst_us.resize(step + 1, 0);
        }
        let latency_us = u32::try_from(latency_ns / 1_000).unwrap_or(u32::MAX);
        self.worst_us[step] = self.worst_us[step].max(latency_us);
    }

    /// Counts a failed request under its error's name.
    pub(super) fn count_error(&mut self, outcome: Outcome) {
        let Some(name) = outcome.error_name() else { return };
        match self.errors.get_mut(&name) {
            Some(count) => *count += 1,
            None => {
                self.errors.insert(name, 1);
            }
        }
    }

    fn merge(&mut self, other: &OpResult) {
        self.histogram.add(&other.histogram).expect("histograms share bounds");
        self.count += other.count;
        if self.worst_us.len() < other.worst_us.len() {
            self.worst_us.resize(other.worst_us.len(), 0);
        }
        for (mine, theirs) in self.worst_us.iter_mut().zip(&other.worst_us) {
            *mine = (*mine).max(*theirs);
        }
        for (name, count) in &other.errors {
            *self.errors.entry(name.clone()).or_insert(0) += count;
        }
    }

    /// Successful and failed replies.
    pub fn replies(&self) -> u64 {
        self.count + self.errors.values().sum::<u64>()
    }
}

/// What a workload measured.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    /// Indexed by [`Op::index`].
    pub ops: Vec<OpResult>,
    pub window: Duration,
    /// CPU time of the server processes during the window (`None` for external servers).
    pub server_cpu_us: Option<u64>,
    /// CPU time of this process (the generator threads) during the window.
    pub generator_cpu_us: Option<u64>,
    /// Sessions whose connection was lost by the end of the run (they sent nothing more).
    pub sessions_lost: usize,
}

impl WorkloadResult {
    /// Replies (successful or not) of every op in the window.
    pub fn replies(&self) -> u64 {
        self.ops.iter().map(OpResult::replies).sum()
    }
}

/// Opens `sessions` full clients (for [`populate`]), session `i` trying the servers from
/// `hosts[i % hosts.len()]`.
///
/// # Errors
/// [`BenchError::Load`] when a session cannot be established.
pub fn connect(hosts: &[String], sessions: usize, depth: usize) -> Result<Vec<Client>> {
    (0..sessions)
        .map(|index| {
            let mut servers = hosts.to_vec();
            servers.rotate_left(index % hosts.len());
            let mut config = ClientConfig::new(&servers.join(","))
                .map_err(|error| BenchError::Load(error.to_string()))?;
            config.request_queue_capacity = depth.max(POPULATE_DEPTH);
            config.in_flight_max = config.in_flight_max.max(depth);
            Client::connect(config).map_err(|error| BenchError::Load(error.to_string()))
        })
        .collect()
}

/// Creates the parents and the keys (existing ones are kept), the keys spread over at most
/// [`COORD_POPULATE_SESSIONS_MAX`] of `clients`, each with `POPULATE_DEPTH` creates in flight.
/// Returns how long the keys took, from the first create sent to the last reply.
///
/// # Errors
/// [`BenchError::Load`] for any failure but `NodeExists`.
pub fn populate(clients: &[Client], keyspace: &Keyspace) -> Result<Duration> {
    let first = clients.first().ok_or_else(|| BenchError::Load("no session".to_owned()))?;
    for parent in [keyspace.root.clone(), keyspace.tmp_path(), keyspace.seq_path()] {
        match first.create(&parent, b"", &[ACL::open_unsafe()], CreateMode::Persistent) {
            Ok(_) | Err(ZkError::Code(ErrorCode::NodeExists)) => {}
            Err(error) => return Err(BenchError::Load(format!("create {parent}: {error}"))),
        }
    }
    let sessions = clients.len().min(COORD_POPULATE_SESSIONS_MAX);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = clients[..sessions]
            .iter()
            .enumerate()
            .map(|(index, client)| {
                let paths = keyspace.paths.iter().skip(index).step_by(sessions);
                scope.spawn(move || create_keys(client, paths, &keyspace.value))
            })
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle.join().map_err(|_| BenchError::Thread("populate panicked".to_owned()))?
        })
    })?;
    Ok(start.elapsed())
}

/// Creates `paths` through one session, `POPULATE_DEPTH` at a time.
fn create_keys<'a>(
    client: &Client,
    paths: impl Iterator<Item = &'a String>,
    value: &[u8],
) -> Result<()> {
    let (sender, receiver) = crossbeam_channel::bounded(POPULATE_DEPTH);
    let mut in_flight = 0usize;
    for path in paths {
        if in_flight == POPULATE_DEPTH {
            expect_created(&receiver)?;
            in_flight -= 1;
        }
        let request = create(path.clone(), value, CreateMode::Persistent);
        client.submit(request, 0, &sender).map_err(|e| BenchError::Load(e.to_string()))?;
        in_flight += 1;
    }
    (0..in_flight).try_for_each(|_| expect_created(&receiver))
}

fn expect_created(receiver: &Receiver<Completion>) -> Result<()> {
    let completion = receiver
        .recv_timeout(COORD_DRAIN_TIMEOUT)
        .map_err(|_| BenchError::Load("no reply to a create while populating".to_owned()))?;
    match completion.result {
        Ok(_) | Err(ZkError::Code(ErrorCode::NodeExists)) => Ok(()),
        Err(error) => Err(BenchError::Load(format!("populating the keys: {error}"))),
    }
}

fn create(path: String, value: &[u8], mode: CreateMode) -> Request {
    let acl = vec![ACL::open_unsafe()];
    Request::Create(CreateRequest { path, data: Some(value.to_vec()), acl, flags: mode.code() })
}

/// Runs `workload` over `sessions` for `ramp` then a measured `window`, sampling the CPU
/// time of `server_pids` at the window's edges.
///
/// # Errors
/// [`BenchError::Load`] when every session has lost its connection before the run, a
/// generator thread cannot poll, or requests stay unanswered past the drain.
pub fn run(
    sessions: &mut [Session],
    keyspace: &Keyspace,
    workload: &Workload,
    (ramp, window): (Duration, Duration),
    server_pids: &[u32],
) -> Result<WorkloadResult> {
    if let Some(reason) = all_lost(sessions) {
        return Err(BenchError::Load(format!("every session has lost its connection: {reason}")));
    }
    let threads = COORD_GENERATOR_THREADS_MAX.min(sessions.len()).max(1);
    let total = sessions.len();
    let mut shares: Vec<Vec<(usize, &mut Session)>> = (0..threads).map(|_| Vec::new()).collect();
    for (index, session) in sessions.iter_mut().enumerate() {
        shares[index % threads].push((index, session));
    }
    let start = Instant::now();
    let measure_start = start + ramp;
    let measure_end = measure_start + window;
    let outcome = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|mine| {
                let share = (mine.len(), total);
                let window = (measure_start, measure_end);
                scope
                    .spawn(move || Driver::new(mine, keyspace, workload, window)?.run(start, share))
            })
            .collect();
        let cpu = sample_cpu(server_pids, measure_start, measure_end);
        let results: Vec<Result<Vec<OpResult>>> = handles
            .into_iter()
            .map(|handle| {
                handle.join().map_err(|_| BenchError::Thread("generator panicked".to_owned()))?
            })
            .collect();
        (cpu, results)
    });
    let ((server_cpu_us, generator_cpu_us), results) = outcome;
    let mut ops: Vec<OpResult> = Op::ALL.iter().map(|_| OpResult::new()).collect();
    for result in results {
        for (total, part) in ops.iter_mut().zip(result?) {
            total.merge(&part);
        }
    }
    let sessions_lost = sessions.iter().filter(|session| session.lost().is_some()).count();
    Ok(WorkloadResult { ops, window, server_cpu_us, generator_cpu_us, sessions_lost })
}

/// Why the first session was lost, when every one of `sessions` is.
fn all_lost(sessions: &[Session]) -> Option<String> {
    if sessions.iter().any(|session| session.lost().is_none()) {
        return None;
    }
    Some(sessions.first().and_then(Session::lost).unwrap_or("no session").to_owned())
}

/// CPU time of the servers and of this process between `from` and `to`, in microseconds.
fn sample_cpu(server_pids: &[u32], from: Instant, to: Instant) -> (Option<u64>, Option<u64>) {
    std::thread::sleep(from.saturating_duration_since(Instant::now()));
    let servers_before = cpu::processes_cpu_us(server_pids);
    let own_before = cpu::own_cpu_us();
    std::thread::sleep(to.saturating_duration_since(Instant::now()));
    let servers_after = cpu::processes_cpu_us(server_pids);
    let own_after = cpu::own_cpu_us();
    let servers = match (server_pids.is_empty(), servers_before, servers_after) {
        (false, Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let own = own_before.zip(own_after).map(|(before, after)| after.saturating_sub(before));
    (servers, own)
}
