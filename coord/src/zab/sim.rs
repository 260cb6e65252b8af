//! Deterministic simulation of a Zab ensemble (see the module docs of [`super`]).
//!
//! One `u64` seed drives everything: the ensemble's settings (tick length, history bound,
//! how much of its log a restarting server hands the machine), the network (delays, spikes,
//! broken connections, partitions, duplicated and reordered election notifications), the
//! disks (fsync latency and stalls; a crash loses what was not fsynced), the servers' clocks
//! (each drifts at its own rate), the processes (crashes, restarts, pauses that leave a
//! server's inbound events waiting) and the clients (writes at the leader, writes forwarded
//! by followers, session pings, `sync`). A fault phase of random length is followed by a
//! heal. The simulation is a single-threaded event loop over a queue ordered by (time,
//! sequence number); nothing in it iterates a hash map or reads a real clock, so a seed
//! replays exactly, and a failing seed prints the one command that replays it with a full
//! trace.
//!
//! The simulation is the machine's driver: it executes every [`Action`] in order as the
//! driver contract of [`super`] says, with a simulated disk (`sim/disk.rs`) as the txn log
//! and a hash chain over the applied entries as the application state (so "two states are
//! equal" costs two words). `sim/network.rs` holds the links, `sim/params.rs` what a seed
//! draws, `sim/checker.rs` the ensemble-wide facts and `sim/trace.rs` the trace. After every
//! step it checks:
//!
//! - **one leader per epoch**: no two servers establish the same epoch;
//! - **committed prefixes agree**: every zxid any server holds committed (in its log up to
//!   [`Zab::committed`], or applied) has the same history hash chain everywhere, no
//!   committed zxid is filled in after a later one, no client request commits twice, and no
//!   truncate drops a committed entry;
//! - **acknowledged writes survive**: a server that establishes epoch e holds every write
//!   of epoch e or earlier acknowledged to a client so far (a write is acknowledged when the
//!   server its client wrote to applies it);
//! - **applied state is the replay of the committed log**: a server's state equals the
//!   replay of its log up to [`Zab::applied`], and a serving server's state is a committed
//!   history;
//! - **sync**: when `sync` returns in epoch e, every write of epoch e or earlier acknowledged
//!   before it was issued, and every write the leader of e had proposed when the sync
//!   reached it, is applied at that server;
//! - **the driver contract**: zxids of appends grow, epochs never go down, snapshots carry
//!   the zxid they claim, and the machine's role, last zxid and applied zxid match what its
//!   actions told the driver;
//! - **liveness**: once the fault phase ends (every server restarted, every partition
//!   healed, every connection re-established, no more spikes or stalls), within a bounded
//!   simulated time every server serves and has applied a client write issued after the
//!   heal.
//!
//! A panic (the machine asserts its own invariants) is a failure like any other.

mod checker;
mod disk;
mod network;
mod params;
mod trace;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Once};

use rand::rngs::SmallRng;
use rand::Rng as _;

use super::{Action, Entry, Message, Role, ServerId, SyncMode, Zab, ZabConfig, Zxid};
use checker::{invariant, Checker};
use disk::{AppState, Disk};
use network::Network;
use params::{Params, Streams};
pub use trace::TraceMode;
use trace::{entries_text, message_text, side_text, zxid_text, zxids_text, Trace};

/// The most events one seed may take; a run that needs more is stuck in a loop.
const STEPS_MAX: u64 = 20_000_000;

/// The longest a connection takes to be (re-)established after it may be, in milliseconds.
const CONNECT_MS_MAX: u64 = 200;

/// The longest a crashed server stays down once the fault phase is over, in milliseconds.
const RESTART_AFTER_HEAL_MS_MAX: u64 = 500;

/// Client writes one burst at the leader proposes at most (then one flush).
const WRITE_BURST_MAX: usize = 4;

/// Bytes of a client write's payload: request id and the server the client wrote to.
const REQUEST_BYTES: usize = 16;

/// The command that replays `seed` with a full trace.
#[must_use]
pub fn replay_command(seed: u64, nodes: usize) -> String {
    format!("cargo run --release --bin zabflow -- sim --seed {seed} --nodes {nodes} --verbose")
}

/// The ensemble size of `seed`: `nodes` if given, else 3 for even seeds and 5 for odd ones.
#[must_use]
pub fn nodes_of_seed(seed: u64, nodes: Option<usize>) -> usize {
    nodes.unwrap_or(if seed & 1 == 0 { 3 } else { 5 })
}

/// What a passing seed did (summed over seeds by [`run_seeds`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events handled.
    pub steps: u64,
    /// Simulated time, in milliseconds.
    pub simulated_ms: u64,
    /// Zxids committed.
    pub committed: u64,
    /// Client writes acknowledged.
    pub acknowledged: u64,
    /// Epochs established.
    pub epochs: u64,
    /// Servers crashed.
    pub crashes: u64,
    /// Connections broken by a fault (partitions and crashes aside).
    pub link_breaks: u64,
    /// Partitions.
    pub partitions: u64,
    /// Servers paused.
    pub pauses: u64,
    /// Snapshots installed (SNAP syncs).
    pub snapshots: u64,
    /// Truncates executed (TRUNC syncs).
    pub truncations: u64,
    /// `sync`s answered.
    pub syncs: u64,
    /// Writes forwarded by a follower and proposed by the leader.
    pub forwarded: u64,
}

impl Outcome {
    fn add(&mut self, other: &Outcome) {
        self.steps += other.steps;
        self.simulated_ms += other.simulated_ms;
        self.committed += other.committed;
        self.acknowledged += other.acknowledged;
        self.epochs += other.epochs;
        self.crashes += other.crashes;
        self.link_breaks += other.link_breaks;
        self.partitions += other.partitions;
        self.pauses += other.pauses;
        self.snapshots += other.snapshots;
        self.truncations += other.truncations;
        self.syncs += other.syncs;
        self.forwarded += other.forwarded;
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} steps, {:.1} s simulated, {} committed, {} acknowledged, {} epochs, {} crashes, \
             {} link breaks, {} partitions, {} pauses, {} snapshots, {} truncations, {} syncs, \
             {} forwarded",
            self.steps,
            self.simulated_ms as f64 / 1_000.0,
            self.committed,
            self.acknowledged,
            self.epochs,
            self.crashes,
            self.link_breaks,
            self.partitions,
            self.pauses,
            self.snapshots,
            self.truncations,
            self.syncs,
            self.forwarded
        )
    }
}

/// A seed that broke an invariant.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub nodes: usize,
    /// Simulated time of the failing step, in milliseconds.
    pub at_ms: u64,
    /// The failing step's number.
    pub step: u64,
    /// The invariant broken.
    pub invariant: &'static str,
    /// What broke it.
    pub detail: String,
    /// The last lines of the trace (empty unless traced).
    pub trace_tail: Vec<String>,
}

impl Failure {
    /// The command that replays this failure with a full trace.
    #[must_use]
    pub fn replay_command(&self) -> String {
        replay_command(self.seed, self.nodes)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} ({} nodes) failed at {} ms, step {}: {}\n  {}",
            self.seed, self.nodes, self.at_ms, self.step, self.invariant, self.detail
        )?;
        if !self.trace_tail.is_empty() {
            writeln!(f, "  trace tail:")?;
            for line in &self.trace_tail {
                writeln!(f, "    {line}")?;
            }
        }
        write!(f, "  replay: {}", self.replay_command())
    }
}

/// Runs `seed` on `nodes` servers. A failure is replayed with tracing on, to report the
/// trace's tail; the replay must fail the same way, or the failure is non-determinism.
///
/// # Errors
/// The first invariant the seed breaks.
pub fn run_seed(seed: u64, nodes: usize) -> Result<Outcome, Failure> {
    let first = match run_traced(seed, nodes, TraceMode::Off) {
        Ok(outcome) => return Ok(outcome),
        Err(failure) => failure,
    };
    match run_traced(seed, nodes, TraceMode::Tail) {
        Err(again)
            if (again.invariant, again.at_ms, again.step)
                == (first.invariant, first.at_ms, first.step) =>
        {
            Err(again)
        }
        other => {
            let replay = match other {
                Ok(_) => "passed".to_owned(),
                Err(again) => format!("failed at step {}: {}", again.step, again.invariant),
            };
            let detail = format!(
                "failed at step {} ({}: {}), but its traced replay {replay}",
                first.step, first.invariant, first.detail
            );
            Err(Failure { invariant: invariant::DETERMINISM, detail, ..first })
        }
    }
}

/// Runs `seed` on `nodes` servers with the given tracing.
///
/// # Errors
/// The first invariant the seed breaks.
///
/// # Panics
/// If `nodes` is not 3 or 5.
pub fn run_traced(seed: u64, nodes: usize, trace: TraceMode) -> Result<Outcome, Failure> {
    assert!(nodes == 3 || nodes == 5, "ensembles of 3 or 5 servers");
    Sim::new(seed, nodes, trace).run()
}

/// Seeds run so far by [`run_seeds`].
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seeds finished.
    pub seeds: u64,
    /// Failed seeds, in the order they finished (sorted by seed at the end).
    pub failures: Vec<Failure>,
    /// Sums over the passing seeds.
    pub totals: Outcome,
}

/// Runs `count` seeds from `first` on `threads` threads; [`nodes_of_seed`] picks each
/// seed's ensemble size. `progress` sees the summary after every seed.
pub fn run_seeds(
    first: u64,
    count: u64,
    nodes: Option<usize>,
    threads: usize,
    mut progress: impl FnMut(&Summary),
) -> Summary {
    let next = AtomicU64::new(first);
    let end = first.saturating_add(count);
    let mut summary = Summary::default();
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        for _ in 0..threads.max(1) {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let result = run_seed(seed, nodes_of_seed(seed, nodes));
                if sender.send(result).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for result in receiver {
            summary.seeds += 1;
            match result {
                Ok(outcome) => summary.totals.add(&outcome),
                Err(failure) => summary.failures.push(failure),
            }
            progress(&summary);
        }
    });
    summary.failures.sort_by_key(|failure| failure.seed);
    summary
}

/// A broken invariant, before it becomes a [`Failure`].
#[derive(Debug, Clone)]
struct Violation {
    invariant: &'static str,
    detail: String,
}

impl Violation {
    fn new(invariant: &'static str, detail: String) -> Violation {
        Violation { invariant, detail }
    }

    fn contract(detail: String) -> Violation {
        Violation::new(invariant::CONTRACT, detail)
    }
}

/// A client write's payload: its request id and the server its client wrote to.
fn request_payload(request: u64, origin: ServerId) -> Vec<u8> {
    let mut payload = Vec::with_capacity(REQUEST_BYTES);
    payload.extend_from_slice(&request.to_le_bytes());
    payload.extend_from_slice(&origin.to_le_bytes());
    payload
}

/// The request id and origin server of a client write's payload.
fn request_of(data: &[u8]) -> Option<(u64, ServerId)> {
    if data.len() != REQUEST_BYTES {
        return None;
    }
    let request = u64::from_le_bytes(data[..8].try_into().ok()?);
    let origin = u64::from_le_bytes(data[8..].try_into().ok()?);
    Some((request, origin))
}

// ---- panics ----

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that, on threads running a simulation, records the message
/// and location instead of printing them; other threads get the previous hook.
fn capture_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CAPTURING.with(Cell::get) {
                previous(info);
                return;
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            let location = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
            PANIC_MESSAGE.with(|slot| *slot.borrow_mut() = Some(format!("{message}{location}")));
        }));
    });
}

// ---- the simulation ----

/// One event of the simulation. Server fields are indices (id - 1).
#[derive(Debug)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        generation: u64,
        message: Message,
    },
    Tick {
        server: usize,
        incarnation: u64,
    },
    FsyncDone {
        server: usize,
        incarnation: u64,
        generation: u64,
    },
    Persisted {
        server: usize,
        incarnation: u64,
        zxid: Zxid,
    },
    Connect {
        a: usize,
        b: usize,
    },
    Restart {
        server: usize,
    },
    /// A broken connection, told to a server that was paused when it broke.
    Disconnected {
        server: usize,
        incarnation: u64,
        peer: ServerId,
    },
    /// A paused server runs again: it handles what arrived meanwhile, in order.
    Resume {
        server: usize,
        incarnation: u64,
    },
    Fault,
    HealPartition,
    ClientWrite,
    ClientSync,
    /// The fault phase ends.
    Heal,
}

/// An event at a time; the queue pops the earliest (and, at equal times, the first
/// scheduled).
#[derive(Debug)]
struct Scheduled {
    at_ms: u64,
    sequence: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.sequence) == (other.at_ms, other.sequence)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so that the max-heap pops the earliest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at_ms, other.sequence).cmp(&(self.at_ms, self.sequence))
    }
}

/// One simulated server: its machine (none while crashed), disk and application state.
#[derive(Debug)]
struct Server {
    id: ServerId,
    zab: Option<Zab>,
    /// Grows at every crash and restart; events of an older incarnation are dropped.
    incarnation: u64,
    disk: Disk,
    state: AppState,
    /// The role the last `Role` action announced.
    role: Role,
    /// Log entries up to here have been compared with the committed history.
    checked_upto: Zxid,
    /// The snapshot the log follows has been compared with the committed history.
    base_checked: bool,
    /// Established an epoch in this step: check it holds every acknowledged write.
    check_leader: bool,
    /// While the process is paused (a long GC or VM stall): the events that reached it, in
    /// the order they arrived.
    backlog: Option<Vec<Event>>,
}

/// A `sync` waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct PendingSync {
    server: usize,
    incarnation: u64,
    epoch: u32,
    /// The last write of `epoch` or earlier acknowledged when the sync was issued.
    acknowledged: Option<Zxid>,
    /// The leader's epoch and last proposal when the sync reached it.
    proposed: Option<(u32, Zxid)>,
}

/// Adds a trace line (formatted only when tracing).
macro_rules! trace {
    ($sim:expr, $($arg:tt)*) => {
        if $sim.trace.on() {
            let line = format!("{:>9} ms  {}", $sim.now_ms, format_args!($($arg)*));
            $sim.trace.line(line);
        }
    };
}

/// A simulated ensemble.
struct Sim {
    seed: u64,
    params: Params,
    now_ms: u64,
    steps: u64,
    sequence: u64,
    queue: BinaryHeap<Scheduled>,
    servers: Vec<Server>,
    network: Network,
    checker: Checker,
    rng: Streams,
    trace: Trace,
    next_request: u64,
    next_sync: u64,
    pending_syncs: BTreeMap<u64, PendingSync>,
    /// The fault phase is over.
    healed: bool,
    /// Requests from this id on were issued after the heal.
    heal_request: u64,
    deadline_ms: Option<u64>,
    /// The first zxid that committed a request issued after the heal.
    live_zxid: Option<Zxid>,
    outcome: Outcome,
}

impl Sim {
    fn new(seed: u64, nodes: usize, trace: TraceMode) -> Sim {
        let mut rng = Streams::new(seed);
        let params = Params::draw(&mut rng.faults, nodes);
        let servers = (0..nodes)
            .map(|index| Server {
                id: index as ServerId + 1,
                zab: None,
                incarnation: 0,
                disk: Disk::default(),
                state: AppState::default(),
                role: Role::Looking,
                checked_upto: 0,
                base_checked: true,
                check_leader: false,
                backlog: None,
            })
            .collect();
        Sim {
            seed,
            network: Network::new(nodes, params.network.clone()),
            params,
            now_ms: 0,
            steps: 0,
            sequence: 0,
            queue: BinaryHeap::new(),
            servers,
            checker: Checker::default(),
            rng,
            trace: Trace { mode: trace, tail: std::collections::VecDeque::new() },
            next_request: 1,
            next_sync: 1,
            pending_syncs: BTreeMap::new(),
            healed: false,
            heal_request: u64::MAX,
            deadline_ms: None,
            live_zxid: None,
            outcome: Outcome::default(),
        }
    }

    fn run(mut self) -> Result<Outcome, Failure> {
        capture_panics();
        CAPTURING.with(|capturing| capturing.set(true));
        let result = catch_unwind(AssertUnwindSafe(|| self.run_events()));
        CAPTURING.with(|capturing| capturing.set(false));
        let violation = match result {
            Ok(Ok(())) => return Ok(self.finish()),
            Ok(Err(violation)) => violation,
            Err(_) => {
                let message = PANIC_MESSAGE.with(|slot| slot.borrow_mut().take());
                Violation::new(invariant::NO_PANIC, message.unwrap_or_default())
            }
        };
        trace!(self, "FAILED: {}: {}", violation.invariant, violation.detail);
        Err(Failure {
            seed: self.seed,
            nodes: self.servers.len(),
            at_ms: self.now_ms,
            step: self.steps,
            invariant: violation.invariant,
            detail: violation.detail,
            trace_tail: self.trace.tail.drain(..).collect(),
        })
    }

    fn finish(&mut self) -> Outcome {
        trace!(self, "done: every server serves and applied a write issued after the heal");
        Outcome {
            steps: self.steps,
            simulated_ms: self.now_ms,
            committed: self.checker.committed_len() as u64,
            acknowledged: self.checker.acknowledged_len() as u64,
            epochs: self.checker.epochs_established() as u64,
            ..self.outcome
        }
    }

    fn run_events(&mut self) -> Result<(), Violation> {
        self.boot()?;
        while !self.live() {
            let Some(next) = self.queue.pop() else {
                return Err(Violation::new(invariant::LIVENESS, "no events left".to_owned()));
            };
            self.now_ms = next.at_ms;
            self.steps += 1;
            if self.steps > STEPS_MAX {
                let detail = format!("no end after {STEPS_MAX} steps: {}", self.describe());
                return Err(Violation::new(invariant::LIVENESS, detail));
            }
            if self.deadline_ms.is_some_and(|deadline| self.now_ms > deadline) {
                let detail =
                    format!("{} ms after the heal: {}", self.params.liveness_ms, self.describe());
                return Err(Violation::new(invariant::LIVENESS, detail));
            }
            self.step(next.event)?;
            self.check()?;
        }
        Ok(())
    }

    fn schedule(&mut self, at_ms: u64, event: Event) {
        self.sequence += 1;
        self.queue.push(Scheduled { at_ms, sequence: self.sequence, event });
    }

    /// A uniform draw in 1..=2·mean (mean `mean`), from the fault stream.
    fn interval_ms(rng: &mut SmallRng, mean: u64) -> u64 {
        rng.gen_range(1..=2 * mean.max(1))
    }

    fn boot(&mut self) -> Result<(), Violation> {
        let params = &self.params;
        trace!(
            self,
            "seed {}: {} servers, tick {} ms, history_max {}, recent_max {}, fault phase {} ms, \
             {:?}",
            self.seed,
            self.servers.len(),
            params.tick_ms,
            params.history_max,
            params.recent_max,
            params.fault_phase_ms,
            params
        );
        for index in 0..self.servers.len() {
            self.start_server(index)?;
        }
        for a in 0..self.servers.len() {
            for b in a + 1..self.servers.len() {
                let at_ms = self.now_ms + self.rng.network.gen_range(1..=CONNECT_MS_MAX);
                self.schedule(at_ms, Event::Connect { a, b });
            }
        }
        let fault = Self::interval_ms(&mut self.rng.faults, self.params.fault_interval_ms_mean);
        self.schedule(fault, Event::Fault);
        self.schedule(self.params.fault_phase_ms, Event::Heal);
        let write = Self::interval_ms(&mut self.rng.clients, self.params.write_interval_ms_mean);
        self.schedule(write, Event::ClientWrite);
        let sync = Self::interval_ms(&mut self.rng.clients, self.params.sync_interval_ms_mean);
        self.schedule(sync, Event::ClientSync);
        Ok(())
    }

    fn step(&mut self, event: Event) -> Result<(), Violation> {
        let target = match &event {
            Event::Deliver { to, .. } => Some(*to),
            Event::Tick { server, .. }
            | Event::FsyncDone { server, .. }
            | Event::Persisted { server, .. }
            | Event::Disconnected { server, .. } => Some(*server),
            _ => None,
        };
        if let Some(backlog) = target.and_then(|index| self.servers[index].backlog.as_mut()) {
            backlog.push(event);
            return Ok(());
        }
        match event {
            Event::Deliver { from, to, generation, message } => {
                self.deliver(from, to, generation, message)
            }
            Event::Tick { server, incarnation } => self.tick(server, incarnation),
            Event::FsyncDone { server, incarnation, generation } => {
                self.fsync_done(server, incarnation, generation)
            }
            Event::Persisted { server, incarnation, zxid } => {
                if self.servers[server].incarnation != incarnation {
                    return Ok(());
                }
                trace!(self, "s{} persisted {} (truncate synced)", server + 1, zxid_text(zxid));
                self.call(server, |zab, out| zab.persisted(zxid, out))
            }
            Event::Connect { a, b } => self.connect(a, b),
            Event::Restart { server } => self.restart(server),
            Event::Disconnected { server, incarnation, peer } => {
                if self.servers[server].incarnation != incarnation {
                    return Ok(());
                }
                self.call(server, |zab, out| zab.disconnected(peer, out))
            }
            Event::Resume { server, incarnation } => self.resume(server, incarnation),
            Event::Fault => self.fault(),
            Event::HealPartition => self.heal_partition(),
            Event::ClientWrite => self.client_write(),
            Event::ClientSync => self.client_sync(),
            Event::Heal => self.heal(),
        }
    }

    // ---- servers ----

    fn alive(&self, index: usize) -> bool {
        self.servers[index].zab.is_some()
    }

    fn local_ms(&self, index: usize) -> u64 {
        let rate = self.params.clock_rate_ppm[index];
        self.params.clock_offset_ms[index] + self.now_ms * rate / 1_000_000
    }

    fn start_server(&mut self, index: usize) -> Result<(), Violation> {
        let now_local = self.local_ms(index);
        let params = &self.params;
        let voters: Vec<ServerId> = self.servers.iter().map(|server| server.id).collect();
        let server = &mut self.servers[index];
        let mut config = ZabConfig::new(server.id, voters, params.tick_ms);
        config.history_max = params.history_max;
        let stored = server.disk.stored(params.recent_max);
        server.state = server.disk.replay();
        server.incarnation += 1;
        server.role = Role::Looking;
        server.checked_upto = server.disk.base().zxid;
        server.base_checked = false;
        server.check_leader = false;
        server.zab = Some(Zab::new(config, stored, now_local));
        let incarnation = server.incarnation;
        trace!(
            self,
            "s{} starts: epochs {:?}, log {} entries after {}, state at {}",
            index + 1,
            self.servers[index].disk.epochs(),
            self.servers[index].disk.durable_len(),
            zxid_text(self.servers[index].disk.base().zxid),
            zxid_text(self.servers[index].state.zxid)
        );
        let first_tick =
            self.now_ms + self.rng.disk.gen_range(0..=self.params.tick_interval_ms[index]);
        self.schedule(first_tick, Event::Tick { server: index, incarnation });
        self.call(index, |zab, out| zab.start(out))
    }

    fn crash(&mut self, index: usize) -> Result<(), Violation> {
        if !self.alive(index) {
            return Ok(());
        }
        let server = &mut self.servers[index];
        server.zab = None;
        server.incarnation += 1;
        server.backlog = None;
        server.disk.crash();
        server.role = Role::Looking;
        self.outcome.crashes += 1;
        trace!(
            self,
            "s{} CRASHES: log keeps {} durable entries, last {}",
            index + 1,
            self.servers[index].disk.durable_len(),
            zxid_text(self.servers[index].disk.last_zxid())
        );
        for peer in 0..self.servers.len() {
            if peer != index && self.network.disconnect(index, peer) {
                let id = self.servers[index].id;
                self.tell_disconnected(peer, id)?;
            }
        }
        Ok(())
    }

    fn restart(&mut self, index: usize) -> Result<(), Violation> {
        if self.alive(index) {
            return Ok(());
        }
        self.start_server(index)?;
        for peer in 0..self.servers.len() {
            if peer != index && self.alive(peer) && !self.network.separated(index, peer) {
                let at_ms = self.now_ms + self.rng.network.gen_range(1..=CONNECT_MS_MAX);
                self.schedule(at_ms, Event::Connect { a: index, b: peer });
            }
        }
        Ok(())
    }

    fn tick(&mut self, index: usize, incarnation: u64) -> Result<(), Violation> {
        if self.servers[index].incarnation != incarnation || !self.alive(index) {
            return Ok(());
        }
        let interval = self.params.tick_interval_ms[index];
        let next = self.now_ms + interval + self.rng.disk.gen_range(0..=interval / 2);
        self.schedule(next, Event::Tick { server: index, incarnation });
        let now_local = self.local_ms(index);
        self.call(index, |zab, out| zab.tick(now_local, out))
    }

    fn fsync_done(
        &mut self,
        index: usize,
        incarnation: u64,
        generation: u64,
    ) -> Result<(), Violation> {
        if self.servers[index].incarnation != incarnation {
            return Ok(());
        }
        if let Some(zxid) = self.servers[index].disk.fsync_done(generation) {
            trace!(self, "s{} persisted {}", index + 1, zxid_text(zxid));
            self.call(index, |zab, out| zab.persisted(zxid, out))?;
        }
        self.start_fsync(index);
        Ok(())
    }

    fn start_fsync(&mut self, index: usize) {
        let server = &mut self.servers[index];
        let Some(generation) = server.disk.start_fsync() else { return };
        let incarnation = server.incarnation;
        let params = &self.params;
        let rng = &mut self.rng.disk;
        let mut latency = rng.gen_range(params.fsync_ms_min..=params.fsync_ms_max);
        if !self.healed && rng.gen_bool(params.fsync_stall_probability) {
            latency += rng.gen_range(0..=params.fsync_stall_ms_max);
        }
        self.schedule(
            self.now_ms + latency,
            Event::FsyncDone { server: index, incarnation, generation },
        );
    }

    /// Feeds one input to server `index`'s machine and executes the actions it returns.
    fn call(
        &mut self,
        index: usize,
        input: impl FnOnce(&mut Zab, &mut Vec<Action>),
    ) -> Result<(), Violation> {
        let Some(zab) = self.servers[index].zab.as_mut() else { return Ok(()) };
        let mut actions = Vec::new();
        input(zab, &mut actions);
        self.execute(index, actions)
    }

    /// Executes actions in order; forwarded writes become proposals, flushed as one batch
    /// after the actions that carried them.
    fn execute(&mut self, index: usize, mut actions: Vec<Action>) -> Result<(), Violation> {
        loop {
            let mut requests = Vec::new();
            for action in std::mem::take(&mut actions) {
                self.perform(index, action, &mut requests)?;
            }
            if requests.is_empty() {
                return Ok(());
            }
            let Some(zab) = self.servers[index].zab.as_mut() else { return Ok(()) };
            let mut proposed = Vec::new();
            for payload in requests {
                let Some(zxid) = zab.next_zxid() else { break };
                if zab.propose(Entry { zxid, data: payload.into() }) {
                    proposed.push(zxid);
                }
            }
            zab.flush(&mut actions);
            self.outcome.forwarded += proposed.len() as u64;
            trace!(self, "s{} proposes forwarded {}", index + 1, zxids_text(&proposed));
        }
    }

    fn perform(
        &mut self,
        index: usize,
        action: Action,
        requests: &mut Vec<Vec<u8>>,
    ) -> Result<(), Violation> {
        match action {
            Action::Send { to, message } => self.send(index, to, message),
            Action::Disconnect { peer } => self.close_link(index, peer),
            Action::SendSnapshot { to, zxid, entries } => {
                self.send_snapshot(index, to, zxid, entries)
            }
            Action::PersistEpochs { accepted, current } => {
                trace!(
                    self,
                    "s{} persists epochs accepted {accepted} current {current}",
                    index + 1
                );
                let server = &mut self.servers[index];
                server.disk.persist_epochs(accepted, current).map_err(|detail| {
                    Violation::contract(format!("server {}: {detail}", server.id))
                })
            }
            Action::Append { entries } => {
                trace!(self, "s{} appends {}", index + 1, entries_text(&entries));
                let server = &mut self.servers[index];
                server.disk.append(entries).map_err(|detail| {
                    Violation::contract(format!("server {}: {detail}", server.id))
                })?;
                self.start_fsync(index);
                Ok(())
            }
            Action::Truncate { after } => self.truncate(index, after),
            Action::InstallSnapshot { zxid, data } => self.install_snapshot(index, zxid, &data),
            Action::Apply(entry) => self.apply(index, &entry),
            Action::Role(role) => {
                trace!(self, "s{} is {role:?}", index + 1);
                let server = &mut self.servers[index];
                server.role = role;
                if let Role::Leading { epoch } = role {
                    server.check_leader = true;
                    self.checker.establish(epoch, server.id)?;
                }
                Ok(())
            }
            Action::Request { from, payload } => {
                trace!(self, "s{} gets a write forwarded by s{from}", index + 1);
                requests.push(payload);
                Ok(())
            }
            Action::Sessions { from, .. } => {
                trace!(self, "s{} gets session pings relayed by s{from}", index + 1);
                Ok(())
            }
            Action::SyncDone { id } => self.sync_done(index, id),
        }
    }

    fn send(&mut self, index: usize, to: ServerId, message: Message) -> Result<(), Violation> {
        let from = self.servers[index].id;
        let target = to.checked_sub(1).map(|to| to as usize);
        let Some(target) = target.filter(|&t| t < self.servers.len() && t != index) else {
            return Err(Violation::contract(format!("server {from} sends to server {to}")));
        };
        let vote = matches!(message, Message::Vote(_));
        let sent = self.network.send(&mut self.rng.network, self.now_ms, index, target, vote);
        let Some((delivery, duplicate)) = sent else {
            trace!(self, "s{from} -> s{to} {} (link down: dropped)", message_text(&message));
            return Ok(());
        };
        if let Some(duplicate) = duplicate {
            let message = message.clone();
            let generation = duplicate.generation;
            let event = Event::Deliver { from: index, to: target, generation, message };
            self.schedule(duplicate.at_ms, event);
        }
        let generation = delivery.generation;
        self.schedule(
            delivery.at_ms,
            Event::Deliver { from: index, to: target, generation, message },
        );
        Ok(())
    }

    fn send_snapshot(
        &mut self,
        index: usize,
        to: ServerId,
        zxid: Zxid,
        entries: Vec<Entry>,
    ) -> Result<(), Violation> {
        let server = &self.servers[index];
        if server.state.zxid != zxid {
            let detail = format!(
                "server {} sends a snapshot at {} but its state is at {}",
                server.id,
                zxid_text(zxid),
                zxid_text(server.state.zxid)
            );
            return Err(Violation::contract(detail));
        }
        let mode = SyncMode::Snap { zxid, data: server.state.encode() };
        self.send(index, to, Message::Sync { mode, entries })
    }

    fn truncate(&mut self, index: usize, after: Zxid) -> Result<(), Violation> {
        trace!(self, "s{} truncates after {}", index + 1, zxid_text(after));
        self.outcome.truncations += 1;
        let server = &mut self.servers[index];
        let id = server.id;
        let truncated = server
            .disk
            .truncate(after)
            .map_err(|detail| Violation::contract(format!("server {id}: {detail}")))?;
        for removed in &truncated.removed {
            if self.checker.is_committed(removed.entry.zxid, removed.chain) {
                let detail =
                    format!("server {id} truncates committed {}", zxid_text(removed.entry.zxid));
                return Err(Violation::new(invariant::PREFIXES_AGREE, detail));
            }
        }
        // The contract: after a Truncate the state reflects every entry left in the log.
        server.state = server.disk.replay();
        server.checked_upto = server.checked_upto.min(after);
        if let Some(zxid) = truncated.report {
            let event = Event::Persisted { server: index, incarnation: server.incarnation, zxid };
            self.schedule(self.now_ms, event);
        }
        Ok(())
    }

    fn install_snapshot(&mut self, index: usize, zxid: Zxid, data: &[u8]) -> Result<(), Violation> {
        trace!(self, "s{} installs a snapshot at {}", index + 1, zxid_text(zxid));
        self.outcome.snapshots += 1;
        let server = &mut self.servers[index];
        let state = AppState::decode(data).filter(|state| state.zxid == zxid);
        let Some(state) = state else {
            let detail = format!(
                "server {} installs a snapshot at {} whose data is {:?}",
                server.id,
                zxid_text(zxid),
                AppState::decode(data)
            );
            return Err(Violation::contract(detail));
        };
        server.disk.install_snapshot(state);
        server.state = state;
        server.checked_upto = zxid;
        server.base_checked = false;
        Ok(())
    }

    fn apply(&mut self, index: usize, entry: &Entry) -> Result<(), Violation> {
        let server = &mut self.servers[index];
        let id = server.id;
        if entry.zxid <= server.state.zxid {
            let detail = format!(
                "server {id} applies {} after {}",
                zxid_text(entry.zxid),
                zxid_text(server.state.zxid)
            );
            return Err(Violation::new(invariant::APPLIED_IS_REPLAY, detail));
        }
        server.state = server.state.next(entry);
        if server.disk.state_at(entry.zxid) != Some(server.state) {
            let detail = format!(
                "server {id} applies {}, but its state then is not the replay of its log ({})",
                zxid_text(entry.zxid),
                if server.disk.state_at(entry.zxid).is_some() {
                    "the histories differ"
                } else {
                    "the entry is not in its log"
                }
            );
            return Err(Violation::new(invariant::APPLIED_IS_REPLAY, detail));
        }
        let chain = server.state.chain;
        // The entry must be committed: compare what the server holds committed first (a
        // leader applying its history compares the entries before this one), then look.
        self.check_committed_log(index)?;
        if self.checker.chain_at(entry.zxid) != Some(chain) {
            let detail = format!(
                "server {id} applies {}, which it does not hold committed",
                zxid_text(entry.zxid)
            );
            return Err(Violation::new(invariant::APPLIED_IS_REPLAY, detail));
        }
        if let Some((request, origin)) = request_of(&entry.data) {
            if origin == id {
                self.checker.acknowledge(entry.zxid);
            }
            if request >= self.heal_request && self.live_zxid.is_none() {
                self.live_zxid = Some(entry.zxid);
            }
        }
        trace!(self, "s{id} applies {}", zxid_text(entry.zxid));
        Ok(())
    }

    fn sync_done(&mut self, index: usize, id: u64) -> Result<(), Violation> {
        let server = &self.servers[index];
        trace!(self, "s{} sync {id} done at {}", server.id, zxid_text(server.state.zxid));
        let pending = self.pending_syncs.remove(&id);
        let Some(pending) = pending
            .filter(|p| (p.server, p.incarnation) == (index, self.servers[index].incarnation))
        else {
            let detail = format!("server {} answers sync {id}, which it never issued", server.id);
            return Err(Violation::contract(detail));
        };
        self.outcome.syncs += 1;
        let Some(epoch) = role_epoch(server.role) else { return Ok(()) };
        let acknowledged = pending.acknowledged.filter(|_| epoch == pending.epoch);
        let proposed = pending.proposed.filter(|&(leader_epoch, _)| epoch == leader_epoch);
        let missing = [
            acknowledged.map(|zxid| (zxid, "acknowledged before the sync was issued")),
            proposed.map(|(_, zxid)| (zxid, "proposed before the sync reached the leader")),
        ];
        for (zxid, what) in missing.into_iter().flatten() {
            if server.state.zxid < zxid {
                let detail = format!(
                    "server {} answers sync {id} in epoch {epoch} at {}, but {} was {what}",
                    server.id,
                    zxid_text(server.state.zxid),
                    zxid_text(zxid)
                );
                return Err(Violation::new(invariant::SYNC, detail));
            }
        }
        Ok(())
    }

    /// Notes what the leader had proposed when a sync reaches it.
    fn sync_reaches(&mut self, index: usize, id: u64) {
        let Some(zab) = self.servers[index].zab.as_ref() else { return };
        let Role::Leading { epoch } = zab.role() else { return };
        let last = zab.last_zxid();
        if let Some(pending) = self.pending_syncs.get_mut(&id) {
            pending.proposed = Some((epoch, last));
        }
    }

    // ---- the network ----

    fn deliver(
        &mut self,
        from: usize,
        to: usize,
        generation: u64,
        message: Message,
    ) -> Result<(), Violation> {
        if !self.network.deliverable(from, to, generation) {
            trace!(self, "s{} <- s{} {} (lost)", to + 1, from + 1, message_text(&message));
            return Ok(());
        }
        trace!(self, "s{} <- s{} {}", to + 1, from + 1, message_text(&message));
        if let Message::SyncRequest { id } = message {
            self.sync_reaches(to, id);
        }
        let from_id = self.servers[from].id;
        self.call(to, |zab, out| zab.receive(from_id, message, out))
    }

    fn connect(&mut self, a: usize, b: usize) -> Result<(), Violation> {
        if self.paused(a) || self.paused(b) {
            // Both ends take part in the handshake: try again later.
            let at_ms = self.now_ms + self.rng.network.gen_range(1..=CONNECT_MS_MAX);
            self.schedule(at_ms, Event::Connect { a, b });
            return Ok(());
        }
        if !self.alive(a) || !self.alive(b) || !self.network.connect(a, b) {
            return Ok(());
        }
        trace!(self, "s{} and s{} connect", a + 1, b + 1);
        let (id_a, id_b) = (self.servers[a].id, self.servers[b].id);
        self.call(a, |zab, out| zab.connected(id_b, out))?;
        self.call(b, |zab, out| zab.connected(id_a, out))
    }

    /// Breaks the connection between `a` and `b` (if up) and tells both ends.
    fn disconnect(&mut self, a: usize, b: usize) -> Result<bool, Violation> {
        if !self.network.disconnect(a, b) {
            return Ok(false);
        }
        trace!(self, "s{} and s{} disconnect", a + 1, b + 1);
        let (id_a, id_b) = (self.servers[a].id, self.servers[b].id);
        self.tell_disconnected(a, id_b)?;
        self.tell_disconnected(b, id_a)?;
        Ok(true)
    }

    /// Server `index` closes its connection to `peer` (it timed out). The peer learns at
    /// once; the closing server in a step of its own, after the actions it is executing (as
    /// a transport reports a closed socket); the connection is re-established later, as the
    /// peers dial each other again.
    fn close_link(&mut self, index: usize, peer: ServerId) -> Result<(), Violation> {
        let target = peer.checked_sub(1).map(|peer| peer as usize);
        let Some(other) = target.filter(|&t| t < self.servers.len() && t != index) else {
            let id = self.servers[index].id;
            return Err(Violation::contract(format!("server {id} disconnects server {peer}")));
        };
        if !self.network.disconnect(index, other) {
            return Ok(());
        }
        trace!(self, "s{} closes its connection to s{peer}", index + 1);
        let id = self.servers[index].id;
        self.tell_disconnected(other, id)?;
        let incarnation = self.servers[index].incarnation;
        self.schedule(self.now_ms, Event::Disconnected { server: index, incarnation, peer });
        let at_ms = self.now_ms + self.rng.network.gen_range(1..=CONNECT_MS_MAX);
        self.schedule(at_ms, Event::Connect { a: index, b: other });
        Ok(())
    }

    /// Tells server `index` that its connection to `peer` broke (once it runs, if paused).
    fn tell_disconnected(&mut self, index: usize, peer: ServerId) -> Result<(), Violation> {
        let server = &mut self.servers[index];
        if let Some(backlog) = server.backlog.as_mut() {
            let incarnation = server.incarnation;
            backlog.push(Event::Disconnected { server: index, incarnation, peer });
            return Ok(());
        }
        self.call(index, |zab, out| zab.disconnected(peer, out))
    }

    /// Schedules a connection attempt for every pair that is down, alive and not separated.
    fn reconnect_all(&mut self) {
        let servers = self.servers.len();
        for a in 0..servers {
            for b in a + 1..servers {
                let down = !self.network.is_up(a, b) && !self.network.separated(a, b);
                if down && self.alive(a) && self.alive(b) {
                    let at_ms = self.now_ms + self.rng.network.gen_range(1..=CONNECT_MS_MAX);
                    self.schedule(at_ms, Event::Connect { a, b });
                }
            }
        }
    }

    // ---- faults ----

    fn fault(&mut self) -> Result<(), Violation> {
        if self.healed {
            return Ok(());
        }
        let next = Self::interval_ms(&mut self.rng.faults, self.params.fault_interval_ms_mean);
        self.schedule(self.now_ms + next, Event::Fault);
        let weights = self.params.fault_weights;
        let total: u32 = weights.iter().sum();
        if total == 0 {
            return Ok(());
        }
        let mut pick = self.rng.faults.gen_range(0..total);
        let kind = weights.iter().position(|&weight| {
            let hit = pick < weight;
            pick = pick.saturating_sub(weight);
            hit
        });
        match kind {
            Some(0) => self.break_random_link(),
            Some(1) => self.partition(),
            Some(2) => self.crash_random(false),
            Some(3) => self.crash_random(true),
            _ => self.pause_random(),
        }
    }

    fn break_random_link(&mut self) -> Result<(), Violation> {
        let servers = self.servers.len();
        let up: Vec<(usize, usize)> = (0..servers)
            .flat_map(|a| (a + 1..servers).map(move |b| (a, b)))
            .filter(|&(a, b)| self.network.is_up(a, b))
            .collect();
        if up.is_empty() {
            return Ok(());
        }
        let (a, b) = up[self.rng.faults.gen_range(0..up.len())];
        trace!(self, "FAULT: the connection s{} - s{} breaks", a + 1, b + 1);
        self.outcome.link_breaks += 1;
        self.disconnect(a, b)?;
        let at_ms = self.now_ms + self.rng.faults.gen_range(1..=self.params.reconnect_ms_max);
        self.schedule(at_ms, Event::Connect { a, b });
        Ok(())
    }

    fn partition(&mut self) -> Result<(), Violation> {
        if self.network.partitioned() {
            return Ok(());
        }
        let servers = self.servers.len();
        let mut sides: Vec<bool> = (0..servers).map(|_| self.rng.faults.gen_bool(0.5)).collect();
        if sides.iter().all(|&side| side == sides[0]) {
            let flip = self.rng.faults.gen_range(0..servers);
            sides[flip] = !sides[flip];
        }
        trace!(self, "FAULT: partition {:?}", side_text(&sides));
        self.outcome.partitions += 1;
        for (a, b) in self.network.partition(sides) {
            trace!(self, "s{} and s{} disconnect", a + 1, b + 1);
            let (id_a, id_b) = (self.servers[a].id, self.servers[b].id);
            self.tell_disconnected(a, id_b)?;
            self.tell_disconnected(b, id_a)?;
        }
        let at_ms = self.now_ms + self.rng.faults.gen_range(1..=self.params.partition_ms_max);
        self.schedule(at_ms, Event::HealPartition);
        Ok(())
    }

    fn heal_partition(&mut self) -> Result<(), Violation> {
        if self.network.partitioned() {
            trace!(self, "the partition heals");
            self.network.heal();
            self.reconnect_all();
        }
        Ok(())
    }

    /// A server to hit with a fault: the leader if `leader` and there is one, else any
    /// running server.
    fn victim(&mut self, leader: bool) -> Option<usize> {
        let running: Vec<usize> =
            (0..self.servers.len()).filter(|&i| self.alive(i) && !self.paused(i)).collect();
        let leading =
            running.iter().copied().find(|&i| matches!(self.servers[i].role, Role::Leading { .. }));
        match leading {
            Some(index) if leader => Some(index),
            _ if running.is_empty() => None,
            _ => Some(running[self.rng.faults.gen_range(0..running.len())]),
        }
    }

    fn crash_random(&mut self, leader: bool) -> Result<(), Violation> {
        let Some(victim) = self.victim(leader) else { return Ok(()) };
        self.crash(victim)?;
        let at_ms = self.now_ms + self.rng.faults.gen_range(1..=self.params.restart_ms_max);
        self.schedule(at_ms, Event::Restart { server: victim });
        Ok(())
    }

    fn paused(&self, index: usize) -> bool {
        self.servers[index].backlog.is_some()
    }

    /// Pauses a server (the leader half the time): it stops handling events until it
    /// resumes.
    fn pause_random(&mut self) -> Result<(), Violation> {
        let leader = self.rng.faults.gen_bool(0.5);
        let Some(victim) = self.victim(leader) else { return Ok(()) };
        let pause_ms = self.rng.faults.gen_range(1..=self.params.pause_ms_max);
        trace!(self, "FAULT: s{} pauses for {pause_ms} ms", victim + 1);
        self.outcome.pauses += 1;
        let server = &mut self.servers[victim];
        server.backlog = Some(Vec::new());
        let event = Event::Resume { server: victim, incarnation: server.incarnation };
        self.schedule(self.now_ms + pause_ms, event);
        Ok(())
    }

    /// A paused server runs again and handles its backlog, one step per event.
    fn resume(&mut self, index: usize, incarnation: u64) -> Result<(), Violation> {
        let server = &mut self.servers[index];
        if server.incarnation != incarnation {
            return Ok(());
        }
        let Some(backlog) = server.backlog.take() else { return Ok(()) };
        trace!(self, "s{} resumes with {} events waiting", index + 1, backlog.len());
        for event in backlog {
            self.step(event)?;
            self.check()?;
        }
        Ok(())
    }

    /// The fault phase ends: partitions heal, crashed servers restart, paused ones resume,
    /// connections come back, spikes and stalls stop.
    fn heal(&mut self) -> Result<(), Violation> {
        trace!(self, "HEAL: no more faults");
        self.healed = true;
        self.heal_request = self.next_request;
        self.deadline_ms = Some(self.now_ms + self.params.liveness_ms);
        self.network.heal();
        self.network.set_spikes(false);
        for index in 0..self.servers.len() {
            if !self.alive(index) {
                let at_ms = self.now_ms + self.rng.faults.gen_range(0..=RESTART_AFTER_HEAL_MS_MAX);
                self.schedule(at_ms, Event::Restart { server: index });
            }
            if self.paused(index) {
                let incarnation = self.servers[index].incarnation;
                self.schedule(self.now_ms, Event::Resume { server: index, incarnation });
            }
        }
        self.reconnect_all();
        Ok(())
    }

    // ---- clients ----

    fn client_write(&mut self) -> Result<(), Violation> {
        let next = Self::interval_ms(&mut self.rng.clients, self.params.write_interval_ms_mean);
        self.schedule(self.now_ms + next, Event::ClientWrite);
        let index = self.rng.clients.gen_range(0..self.servers.len());
        let burst = self.rng.clients.gen_range(1..=WRITE_BURST_MAX);
        let session_ping = self.rng.clients.gen_bool(0.1);
        let id = self.servers[index].id;
        let Some(zab) = self.servers[index].zab.as_ref() else { return Ok(()) };
        match zab.role() {
            Role::Leading { .. } => self.write_at_leader(index, burst),
            Role::Following { .. } => {
                let request = self.next_request;
                self.next_request += 1;
                let payload = request_payload(request, id);
                let message = if session_ping {
                    Message::Sessions { payload }
                } else {
                    Message::Request { payload }
                };
                trace!(self, "client writes {request} at s{id} (follower)");
                self.call(index, |zab, out| {
                    zab.send_to_leader(message, out);
                })
            }
            _ => Ok(()),
        }
    }

    fn write_at_leader(&mut self, index: usize, burst: usize) -> Result<(), Violation> {
        let id = self.servers[index].id;
        let first = self.next_request;
        let Some(zab) = self.servers[index].zab.as_mut() else { return Ok(()) };
        let mut proposed = Vec::new();
        for request in first..first + burst as u64 {
            let Some(zxid) = zab.next_zxid() else { break };
            let data: Arc<[u8]> = request_payload(request, id).into();
            if zab.propose(Entry { zxid, data }) {
                proposed.push(zxid);
            }
        }
        self.next_request += burst as u64;
        let mut actions = Vec::new();
        zab.flush(&mut actions);
        trace!(self, "client writes {first}.. at s{id} (leader): {}", zxids_text(&proposed));
        self.execute(index, actions)
    }

    fn client_sync(&mut self) -> Result<(), Violation> {
        let next = Self::interval_ms(&mut self.rng.clients, self.params.sync_interval_ms_mean);
        self.schedule(self.now_ms + next, Event::ClientSync);
        let index = self.rng.clients.gen_range(0..self.servers.len());
        let server = &self.servers[index];
        let Some(epoch) = server.zab.as_ref().and_then(|zab| role_epoch(zab.role())) else {
            return Ok(());
        };
        let id = self.next_sync;
        self.next_sync += 1;
        let acknowledged = self.checker.last_acknowledged_by_epoch(epoch);
        let incarnation = server.incarnation;
        let pending =
            PendingSync { server: index, incarnation, epoch, acknowledged, proposed: None };
        self.pending_syncs.insert(id, pending);
        self.sync_reaches(index, id);
        trace!(self, "client syncs ({id}) at s{}", index + 1);
        let mut issued = false;
        self.call(index, |zab, out| issued = zab.sync(id, out))?;
        if !issued {
            self.pending_syncs.remove(&id);
        }
        Ok(())
    }

    // ---- invariants ----

    /// Checks every server after a step.
    fn check(&mut self) -> Result<(), Violation> {
        for index in 0..self.servers.len() {
            self.check_committed_base(index)?;
            self.check_committed_log(index)?;
        }
        for index in 0..self.servers.len() {
            self.check_server(index)?;
        }
        Ok(())
    }

    /// Compares the snapshot the server's log follows with the committed history, once the
    /// server holds it committed.
    ///
    /// A follower holds a SNAP committed as soon as it installs it, but the snapshot is the
    /// leader's applied state, which after a restart reflects the leader's whole log,
    /// committed or not: it becomes committed history only when that leader establishes its
    /// epoch. So a follower's snapshot is compared once the history at its zxid is known and
    /// never taken as committed on its own; a leader's is committed with its epoch.
    fn check_committed_base(&mut self, index: usize) -> Result<(), Violation> {
        let server = &mut self.servers[index];
        let Some(zab) = server.zab.as_ref() else { return Ok(()) };
        let base = server.disk.base();
        if server.base_checked || base.zxid == 0 || zab.committed() < base.zxid {
            return Ok(());
        }
        match self.checker.chain_at(base.zxid) {
            Some(chain) if chain == base.chain => server.base_checked = true,
            Some(chain) => {
                let detail = format!(
                    "server {} holds a snapshot at {} with history {:016x}, the committed \
                     history there is {chain:016x}",
                    server.id,
                    zxid_text(base.zxid),
                    base.chain
                );
                return Err(Violation::new(invariant::PREFIXES_AGREE, detail));
            }
            None if matches!(zab.role(), Role::Leading { .. }) => {
                self.checker.commit(server.id, base.zxid, base.chain, None)?;
                server.base_checked = true;
            }
            None => {}
        }
        Ok(())
    }

    /// Compares the log entries the server holds committed (and not yet compared) with the
    /// committed history.
    fn check_committed_log(&mut self, index: usize) -> Result<(), Violation> {
        let server = &mut self.servers[index];
        let Some(zab) = server.zab.as_ref() else { return Ok(()) };
        let upto = zab.committed().min(server.disk.last_zxid());
        let after = server.checked_upto;
        if upto <= after {
            return Ok(());
        }
        for entry in server.disk.entries_between(after, upto) {
            let data = Some(&entry.entry.data[..]);
            self.checker.commit(server.id, entry.entry.zxid, entry.chain, data)?;
        }
        server.checked_upto = upto;
        Ok(())
    }

    fn check_server(&mut self, index: usize) -> Result<(), Violation> {
        let server = &self.servers[index];
        let Some(zab) = server.zab.as_ref() else { return Ok(()) };
        let id = server.id;
        if zab.role() != server.role {
            let detail = format!(
                "server {id}: role() is {:?}, the last Role action said {:?}",
                zab.role(),
                server.role
            );
            return Err(Violation::contract(detail));
        }
        if zab.last_zxid() != server.disk.last_zxid() || zab.applied() != server.state.zxid {
            let detail = format!(
                "server {id}: last_zxid() {} and applied() {}, but its log ends at {} and its \
                 state is at {}",
                zxid_text(zab.last_zxid()),
                zxid_text(zab.applied()),
                zxid_text(server.disk.last_zxid()),
                zxid_text(server.state.zxid)
            );
            return Err(Violation::contract(detail));
        }
        if server.disk.state_at(server.state.zxid) != Some(server.state) {
            let detail = format!(
                "server {id}: its state at {} is not the replay of its log",
                zxid_text(server.state.zxid)
            );
            return Err(Violation::new(invariant::APPLIED_IS_REPLAY, detail));
        }
        if zab.role().serving() && server.state.zxid > 0 {
            let committed = self.checker.chain_at(server.state.zxid);
            if committed != Some(server.state.chain) {
                let detail = format!(
                    "server {id} serves a state at {} that {}",
                    zxid_text(server.state.zxid),
                    if committed.is_some() {
                        "differs from the committed history"
                    } else {
                        "no server holds committed"
                    }
                );
                return Err(Violation::new(invariant::APPLIED_IS_REPLAY, detail));
            }
        }
        if server.check_leader {
            self.servers[index].check_leader = false;
            self.check_leader_history(index)?;
        }
        Ok(())
    }

    /// A server that established epoch e holds every write of an epoch up to e acknowledged
    /// so far. (A leader that stalled while establishing e may finish after a later epoch
    /// acknowledged writes; it cannot commit anything, as its quorum has moved on, and
    /// steps down after `sync_limit` ticks.)
    fn check_leader_history(&self, index: usize) -> Result<(), Violation> {
        let server = &self.servers[index];
        let Role::Leading { epoch } = server.role else { return Ok(()) };
        let Some(last) = self.checker.last_acknowledged_by_epoch(epoch) else { return Ok(()) };
        let base = server.disk.base();
        // The committed history at `last` (or at the snapshot, which subsumes it) must be
        // the leader's.
        let at = last.max(base.zxid);
        let held = server.disk.state_at(at);
        if held.is_none() || held.map(|state| state.chain) != self.checker.chain_at(at) {
            let detail = format!(
                "server {} establishes {:?} without the acknowledged write {} (its log: {} \
                 entries after {}, last {})",
                server.id,
                server.role,
                zxid_text(last),
                server.disk.entry_count(),
                zxid_text(base.zxid),
                zxid_text(server.disk.last_zxid())
            );
            return Err(Violation::new(invariant::ACKED_SURVIVE, detail));
        }
        Ok(())
    }

    /// Done: the faults healed, every server serves and applied a write issued after.
    fn live(&self) -> bool {
        let Some(live_zxid) = self.live_zxid else { return false };
        self.servers.iter().all(|server| {
            server.zab.as_ref().is_some_and(|zab| zab.role().serving())
                && server.state.zxid >= live_zxid
        })
    }

    /// Where every server stands (for liveness failures).
    fn describe(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|server| match &server.zab {
                None => format!("s{} down", server.id),
                Some(zab) => format!(
                    "s{} {:?} applied {} committed {} last {}",
                    server.id,
                    zab.role(),
                    zxid_text(zab.applied()),
                    zxid_text(zab.committed()),
                    zxid_text(zab.last_zxid())
                ),
            })
            .collect();
        let live = self.live_zxid.map_or_else(|| "none".to_owned(), zxid_text);
        format!("{}; first write after the heal applied: {live}", servers.join("; "))
    }
}

/// The epoch of a serving role.
fn role_epoch(role: Role) -> Option<u32> {
    match role {
        Role::Following { epoch, .. } | Role::Leading { epoch } => Some(epoch),
        Role::Looking | Role::Syncing { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pop_in_time_then_schedule_order() {
        let mut sim = Sim::new(1, 3, TraceMode::Off);
        sim.schedule(20, Event::Fault);
        sim.schedule(10, Event::ClientWrite);
        sim.schedule(10, Event::ClientSync);
        let order: Vec<u64> =
            std::iter::from_fn(|| sim.queue.pop()).map(|s| s.at_ms * 100 + s.sequence).collect();
        assert_eq!(order, vec![1_002, 1_003, 2_001]);
    }

    #[test]
    fn params_are_a_function_of_the_seed() {
        let draw = |seed| format!("{:?}", Params::draw(&mut Streams::new(seed).faults, 5));
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn request_payloads_round_trip() {
        assert_eq!(request_of(&request_payload(17, 3)), Some((17, 3)));
        assert_eq!(request_of(b"short"), None);
        assert_eq!(nodes_of_seed(4, None), 3);
        assert_eq!(nodes_of_seed(5, None), 5);
        assert_eq!(nodes_of_seed(5, Some(3)), 3);
        assert!(replay_command(9, 5).ends_with("sim --seed 9 --nodes 5 --verbose"));
    }
}
