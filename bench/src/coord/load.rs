//! The coord load generator: sessions, pipelined requests, and what they measured.
//!
//! Sessions are [`Client`]s spread round-robin over the target's servers. At most
//! [`COORD_GENERATOR_THREADS_MAX`] generator threads each drive a share of them through
//! [`Client::submit`] and one completion channel sized for every request they may keep in
//! flight, so the I/O threads never wait on the generator. A session answers in submission
//! order, so each keeps its sent requests (scheduled time and op) in a FIFO of `depth` slots
//! and a completion's tag only needs to name the session.
//!
//! A workload runs a ramp and then a measured window: a completion counts (and its latency is
//! recorded) when it arrives inside the window. After the window no new request is sent and
//! those in flight are drained. Throughput counts successful replies; failed ones are
//! counted by error code. The servers' CPU time and the generator's own are sampled at the
//! window's edges.

use super::cpu;
use super::workload::{Mix, MixOp, Op, Pacing, Workload};
use crate::constants::{
    COORD_DRAIN_TIMEOUT, COORD_GENERATOR_THREADS_MAX, COORD_POPULATE_SESSIONS_MAX,
    COORD_TIMELINE_STEP,
};
use crate::error::{BenchError, Result};
use crate::report::latency_histogram;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use zabflow_net::client::{Client, ClientConfig, Completion, VERSION_ANY};
use zabflow_net::jute::{
    CreateMode, CreateRequest, DeleteRequest, ErrorCode, ExistsRequest, GetChildrenRequest,
    GetDataRequest, MultiOp, MultiRequest, Request, SetDataRequest, ACL,
};
use zabflow_net::ZkError;

/// Parent of every node the generator touches on a server it started itself.
pub const ROOT_PATH_DEFAULT: &str = "/bench";
/// Longest a generator thread blocks on its completion channel before it looks at the clock.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
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
    fn new() -> OpResult {
        let (histogram, errors) = (latency_histogram(), BTreeMap::new());
        OpResult { histogram, count: 0, errors, worst_us: Vec::new() }
    }

    /// Records a successful reply `since_start` into the window.
    fn record(&mut self, since_start: Duration, latency_ns: u64) {
        self.histogram.saturating_record(latency_ns.max(1));
        self.count += 1;
        let step = (since_start.as_nanos() / COORD_TIMELINE_STEP.as_nanos()) as usize;
        if self.worst_us.len() <= step {
            self.worst_us.resize(step + 1, 0);
        }
        let latency_us = u32::try_from(latency_ns / 1_000).unwrap_or(u32::MAX);
        self.worst_us[step] = self.worst_us[step].max(latency_us);
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
    /// CPU time of this process (generator and client I/O threads) during the window.
    pub generator_cpu_us: Option<u64>,
}

impl WorkloadResult {
    /// Replies (successful or not) of every op in the window.
    pub fn replies(&self) -> u64 {
        self.ops.iter().map(OpResult::replies).sum()
    }
}

/// Opens `sessions` sessions, session `i` trying the servers from `hosts[i % hosts.len()]`.
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

/// Runs `workload` over `clients` for `ramp` then a measured `window`, sampling the CPU time
/// of `server_pids` at the window's edges.
///
/// # Errors
/// [`BenchError::Load`] when a session ends or requests stay unanswered past the drain.
pub fn run(
    clients: &[Client],
    keyspace: &Keyspace,
    workload: &Workload,
    (ramp, window): (Duration, Duration),
    server_pids: &[u32],
) -> Result<WorkloadResult> {
    let threads = COORD_GENERATOR_THREADS_MAX.min(clients.len()).max(1);
    let start = Instant::now();
    let measure_start = start + ramp;
    let measure_end = measure_start + window;
    let outcome = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let mine: Vec<(usize, &Client)> =
                    clients.iter().enumerate().skip(thread).step_by(threads).collect();
                let share = (mine.len(), clients.len());
                let driver = Driver::new(mine, keyspace, workload, (measure_start, measure_end));
                scope.spawn(move || driver.run(start, share))
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
    Ok(WorkloadResult { ops, window, server_cpu_us, generator_cpu_us })
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

/// A request sent and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// When it was due: its send time in closed loop, its scheduled time in open loop.
    due: Instant,
    op: Op,
}

/// One session as a generator thread drives it.
struct Session<'a> {
    client: &'a Client,
    sent: VecDeque<Sent>,
    rng: u64,
    /// The node its last `create` of a create/delete pair made, to delete next.
    created: Option<String>,
    created_count: u64,
    tmp_prefix: String,
}

/// One generator thread: its sessions, their completion channel, and what it measured.
struct Driver<'a> {
    sessions: Vec<Session<'a>>,
    sender: Sender<Completion>,
    completions: Receiver<Completion>,
    keyspace: &'a Keyspace,
    mix: &'a Mix,
    pacing: Pacing,
    depth: usize,
    window: (Instant, Instant),
    results: Vec<OpResult>,
    in_flight: usize,
    next_session: usize,
}

impl<'a> Driver<'a> {
    fn new(
        clients: Vec<(usize, &'a Client)>,
        keyspace: &'a Keyspace,
        workload: &'a Workload,
        window: (Instant, Instant),
    ) -> Driver<'a> {
        let depth = workload.depth;
        let capacity = clients.len() * depth;
        let (sender, completions) = crossbeam_channel::bounded(capacity.max(1));
        let sessions = clients
            .into_iter()
            .map(|(index, client)| Session {
                client,
                sent: VecDeque::with_capacity(depth),
                rng: splitmix64(keyspace.seed ^ (index as u64).wrapping_mul(0x9E37_79B9)),
                created: None,
                created_count: 0,
                tmp_prefix: format!("{}/s{:x}-", keyspace.tmp_path(), client.session_id()),
            })
            .collect();
        Driver {
            sessions,
            sender,
            completions,
            keyspace,
            mix: &workload.mix,
            pacing: workload.pacing,
            depth,
            window,
            results: Op::ALL.iter().map(|_| OpResult::new()).collect(),
            in_flight: 0,
            next_session: 0,
        }
    }

    /// Sends until the window ends, then drains; `share` is (my sessions, all sessions).
    fn run(mut self, start: Instant, share: (usize, usize)) -> Result<Vec<OpResult>> {
        let end = self.window.1;
        let mut schedule = match self.pacing {
            Pacing::Closed => {
                for session in 0..self.sessions.len() {
                    (0..self.depth).try_for_each(|_| self.send(session, Instant::now()))?;
                }
                None
            }
            Pacing::Open { rate_per_s } => {
                let rate = rate_per_s as f64 * share.0 as f64 / share.1 as f64;
                Some((start, Duration::from_secs_f64(1.0 / rate.max(1e-3))))
            }
        };
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            let mut wait = (end - now).min(POLL_INTERVAL);
            if let Some((next_due, interval)) = schedule.as_mut() {
                while *next_due <= now && *next_due < end {
                    let Some(session) = self.session_with_room() else { break };
                    self.send(session, *next_due)?;
                    *next_due += *interval;
                }
                wait = wait.min(next_due.saturating_duration_since(now));
            }
            match self.completions.recv_timeout(wait) {
                Ok(completion) => self.complete(completion, schedule.is_none())?,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => unreachable!("the driver holds a sender"),
            }
            while let Ok(completion) = self.completions.try_recv() {
                self.complete(completion, schedule.is_none())?;
            }
        }
        self.drain()?;
        Ok(self.results)
    }

    fn drain(&mut self) -> Result<()> {
        let deadline = Instant::now() + COORD_DRAIN_TIMEOUT;
        while self.in_flight > 0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            let completion = self.completions.recv_timeout(wait).map_err(|_| {
                BenchError::Load(format!("{} requests unanswered after the window", self.in_flight))
            })?;
            self.complete(completion, false)?;
        }
        Ok(())
    }

    /// The next session, round-robin, with fewer than `depth` requests in flight.
    fn session_with_room(&mut self) -> Option<usize> {
        let count = self.sessions.len();
        let start = self.next_session;
        let session = (0..count)
            .map(|step| (start + step) % count)
            .find(|&session| self.sessions[session].sent.len() < self.depth)?;
        self.next_session = (session + 1) % count;
        Some(session)
    }

    /// Records a reply and, in closed loop before the window's end, sends the next request.
    fn complete(&mut self, completion: Completion, send_next: bool) -> Result<()> {
        let now = Instant::now();
        let session = usize::try_from(completion.tag).expect("tags are session indexes");
        let sent = self.sessions[session].sent.pop_front().expect("replies come in FIFO order");
        self.in_flight -= 1;
        if now >= self.window.0 && now < self.window.1 {
            let result = &mut self.results[sent.op.index()];
            match completion.result {
                Ok(_) => {
                    let latency_ns = u64::try_from((now - sent.due).as_nanos()).unwrap_or(u64::MAX);
                    result.record(now - self.window.0, latency_ns);
                }
                Err(error) => *result.errors.entry(error_name(&error)).or_insert(0) += 1,
            }
        }
        if send_next && now < self.window.1 {
            self.send(session, now)?;
        }
        Ok(())
    }

    fn send(&mut self, session: usize, due: Instant) -> Result<()> {
        let (op, request) = self.next_request(session);
        let tag = session as u64;
        let state = &mut self.sessions[session];
        state.client.submit(request, tag, &self.sender).map_err(|error| {
            BenchError::Load(format!("session {:x}: {error}", state.client.session_id()))
        })?;
        state.sent.push_back(Sent { due, op });
        self.in_flight += 1;
        Ok(())
    }

    fn next_request(&mut self, session: usize) -> (Op, Request) {
        let keyspace = self.keyspace;
        let state = &mut self.sessions[session];
        let roll = next_random(&mut state.rng);
        let mut key = || {
            let roll = next_random(&mut state.rng);
            keyspace.paths[(roll % keyspace.paths.len() as u64) as usize].clone()
        };
        let set = |path: String| SetDataRequest {
            path,
            data: Some(keyspace.value.clone()),
            version: VERSION_ANY,
        };
        match self.mix.pick(roll) {
            MixOp::GetData => {
                (Op::GetData, Request::GetData(GetDataRequest { path: key(), watch: false }))
            }
            MixOp::SetData => (Op::SetData, Request::SetData(set(key()))),
            MixOp::Exists => {
                (Op::Exists, Request::Exists(ExistsRequest { path: key(), watch: false }))
            }
            MixOp::GetChildren => (
                Op::GetChildren,
                Request::GetChildren(GetChildrenRequest { path: key(), watch: false }),
            ),
            MixOp::Multi => {
                let ops = vec![MultiOp::SetData(set(key())), MultiOp::SetData(set(key()))];
                (Op::Multi, Request::Multi(MultiRequest { ops }))
            }
            MixOp::CreateSequential => {
                let path = format!("{}/s-", keyspace.seq_path());
                (
                    Op::CreateSequential,
                    create(path, &keyspace.value, CreateMode::PersistentSequential),
                )
            }
            MixOp::CreateDelete => match state.created.take() {
                Some(path) => {
                    (Op::Delete, Request::Delete(DeleteRequest { path, version: VERSION_ANY }))
                }
                None => {
                    state.created_count += 1;
                    let path = format!("{}{}", state.tmp_prefix, state.created_count);
                    state.created = Some(path.clone());
                    (Op::Create, create(path, &keyspace.value, CreateMode::Persistent))
                }
            },
        }
    }
}

/// `NoNode`, `ConnectionLoss`, … for a server's code; the client error's kind otherwise.
fn error_name(error: &ZkError) -> String {
    match error {
        ZkError::Code(code) => format!("{code:?}"),
        ZkError::UnknownCode(code) => format!("code{code}"),
        ZkError::Closed => "Closed".to_owned(),
        ZkError::QueueFull => "QueueFull".to_owned(),
        ZkError::RequestTooLarge { .. } => "RequestTooLarge".to_owned(),
        ZkError::Connect(_) => "Connect".to_owned(),
        ZkError::Codec(_) => "Codec".to_owned(),
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*: a fast generator, good enough to pick keys and ops.
fn next_random(state: &mut u64) -> u64 {
    if *state == 0 {
        *state = 0x2545_F491_4F6C_DD1D;
    }
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}
