//! A steady write load whose every operation is recorded for the linearizability checker.
//!
//! ```text
//! /lin/r<k>   registers: each writer reads one (unrecorded, maybe stale), then
//!             setData with the version it believes current (BadVersion when stale)
//! /lin/s<n>   slots: writers race to create the slot at a shared frontier; the first
//!             create wins, the others get NodeExists; each slot is written once
//! ```
//!
//! Every writer is one session of the Rust client with every server in its connect
//! string, issuing one request at a time. An outcome the client could not learn
//! (ConnectionLoss, a closed or expired session) is recorded as unknown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zabflow_net::client::{Client, ClientConfig};
use zabflow_net::error::ZkError;
use zabflow_net::jute::{CreateMode, ErrorCode};
use zabflow_tests::linearizability::{self, Operation, Znode, ZnodeInput, ZnodeOutput};

use super::{since, wait_until, Ensemble};

/// Registers under `/lin`.
pub const REGISTERS: usize = 4;

/// A recorded operation on the znode at `.0`.
pub type Record = (String, Operation<ZnodeInput, ZnodeOutput>);

/// Writers and what they recorded so far.
pub struct Load {
    pub origin: Instant,
    stop: Arc<AtomicBool>,
    /// Writers hold off while set; `busy` counts the ones with a request out.
    paused: Arc<AtomicBool>,
    busy: Arc<AtomicUsize>,
    writers: Vec<JoinHandle<()>>,
    /// What the writers recorded so far.
    records: Arc<Mutex<Vec<Record>>>,
    /// Writes acknowledged so far (successful create and setData).
    pub acks: Arc<AtomicU64>,
    /// Operations recorded outside the writers (setup, probes, final reads).
    pub extra: Vec<Record>,
}

fn register(k: usize) -> String {
    format!("/lin/r{k}")
}

fn value_bytes(value: u64) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// The value a recorded write stored, from a znode's data.
pub fn value_of(data: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(data.try_into().ok()?))
}

fn open_acl() -> Vec<zabflow_net::jute::ACL> {
    vec![zabflow_coord::acl::world(31)]
}

/// Connects a session to any server of `connect_string`, retrying until `timeout`.
pub fn connect(connect_string: &str, session_timeout: Duration, timeout: Duration) -> Client {
    let deadline = Instant::now() + timeout;
    loop {
        let config = ClientConfig::new(connect_string)
            .expect("a connect string")
            .with_session_timeout(session_timeout);
        match Client::connect(config) {
            Ok(client) => return client,
            Err(error) => {
                assert!(Instant::now() < deadline, "no session with {connect_string}: {error}")
            }
        }
    }
}

/// Whether an error leaves the outcome unknown (the request may have been applied).
fn unknown(error: &ZkError) -> bool {
    !matches!(
        error,
        ZkError::Code(ErrorCode::NodeExists | ErrorCode::BadVersion | ErrorCode::NoNode)
    )
}

/// Whether the session is over and the writer needs a new one.
fn session_over(error: &ZkError) -> bool {
    matches!(error, ZkError::Closed | ZkError::Code(ErrorCode::SessionExpired))
}

struct Writer {
    id: usize,
    connect_string: String,
    session_timeout: Duration,
    origin: Instant,
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    busy: Arc<AtomicUsize>,
    acks: Arc<AtomicU64>,
    frontier: Arc<AtomicU64>,
    records: Arc<Mutex<Vec<Record>>>,
    versions: [i32; REGISTERS],
    /// xorshift state: which register to write.
    random: u64,
}

impl Writer {
    fn run(mut self) {
        let mut client =
            connect(&self.connect_string, self.session_timeout, Duration::from_secs(30));
        for i in 1u64.. {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            self.busy.fetch_add(1, Ordering::SeqCst);
            if self.paused.load(Ordering::SeqCst) {
                self.busy.fetch_sub(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let value = ((self.id as u64 + 1) << 40) | i;
            let outcome =
                if i % 3 == 0 { self.create(&client, value) } else { self.set(&client, value) };
            if let Err(error) = outcome {
                if session_over(&error) {
                    client = connect(
                        &self.connect_string,
                        self.session_timeout,
                        Duration::from_secs(30),
                    );
                }
            }
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
        let _ = client.close();
    }

    fn record(&mut self, key: String, call: u64, input: ZnodeInput, output: Option<ZnodeOutput>) {
        if matches!(output, Some(ZnodeOutput::Created | ZnodeOutput::Set { .. })) {
            self.acks.fetch_add(1, Ordering::Relaxed);
        }
        let ret = since(self.origin);
        let operation = Operation { process: self.id, call, ret, input, output };
        self.records.lock().unwrap_or_else(PoisonError::into_inner).push((key, operation));
    }

    /// A conditional setData on a register.
    fn set(&mut self, client: &Client, value: u64) -> Result<(), ZkError> {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let k = (self.random % REGISTERS as u64) as usize;
        let key = register(k);
        let expected_version = self.versions[k];
        let input = ZnodeInput::SetData { value, expected_version };
        let call = since(self.origin);
        let result = client.set_data(&key, &value_bytes(value), expected_version);
        let output = match &result {
            Ok(stat) => {
                self.versions[k] = stat.version;
                Some(ZnodeOutput::Set { version: stat.version })
            }
            Err(ZkError::Code(ErrorCode::BadVersion)) => Some(ZnodeOutput::BadVersion),
            Err(ZkError::Code(ErrorCode::NoNode)) => Some(ZnodeOutput::NoNode),
            Err(_) => None,
        };
        self.record(key.clone(), call, input, output);
        match result {
            Err(error) if unknown(&error) => Err(error),
            Ok(_) => Ok(()),
            Err(_) => {
                // Stale: learn the version (this server's view, maybe stale too).
                if let Ok((_, stat)) = client.get_data(&key, false) {
                    self.versions[k] = stat.version;
                }
                Ok(())
            }
        }
    }

    /// A create of the slot at the frontier, raced by every writer.
    fn create(&mut self, client: &Client, value: u64) -> Result<(), ZkError> {
        let slot = self.frontier.load(Ordering::Acquire);
        let key = format!("/lin/s{slot}");
        let call = since(self.origin);
        let result = client.create(&key, &value_bytes(value), &open_acl(), CreateMode::Persistent);
        let output = match &result {
            Ok(_) => Some(ZnodeOutput::Created),
            Err(ZkError::Code(ErrorCode::NodeExists)) => Some(ZnodeOutput::NodeExists),
            Err(_) => None,
        };
        self.frontier.fetch_max(slot + 1, Ordering::AcqRel);
        self.record(key, call, ZnodeInput::Create { value }, output);
        match result {
            Err(error) if unknown(&error) => Err(error),
            _ => Ok(()),
        }
    }
}

impl Load {
    /// Creates `/lin` and the registers (recorded), then starts `writers` sessions.
    pub fn start(ensemble: &Ensemble, writers: usize) -> Load {
        let origin = Instant::now();
        let connect_string = ensemble.connect_string();
        let session_timeout = ensemble.settings.session_timeout();
        let setup = connect(&connect_string, session_timeout, Duration::from_secs(20));
        setup.create("/lin", b"", &open_acl(), CreateMode::Persistent).expect("create /lin");
        let mut extra = Vec::new();
        for k in 0..REGISTERS {
            let call = since(origin);
            setup
                .create(&register(k), &value_bytes(0), &open_acl(), CreateMode::Persistent)
                .expect("create a register");
            let ret = since(origin);
            let input = ZnodeInput::Create { value: 0 };
            let output = Some(ZnodeOutput::Created);
            extra.push((register(k), Operation { process: usize::MAX, call, ret, input, output }));
        }
        let _ = setup.close();
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicUsize::new(0));
        let acks = Arc::new(AtomicU64::new(0));
        let frontier = Arc::new(AtomicU64::new(0));
        let records = Arc::new(Mutex::new(Vec::new()));
        let writers = (0..writers)
            .map(|id| {
                // Each writer starts at another server, so sessions spread over the ensemble.
                let mut hosts: Vec<&str> = connect_string.split(',').collect();
                let first = id % hosts.len();
                hosts.rotate_left(first);
                let writer = Writer {
                    id,
                    connect_string: hosts.join(","),
                    session_timeout,
                    origin,
                    stop: stop.clone(),
                    paused: paused.clone(),
                    busy: busy.clone(),
                    acks: acks.clone(),
                    frontier: frontier.clone(),
                    records: records.clone(),
                    versions: [0; REGISTERS],
                    random: 0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1),
                };
                std::thread::Builder::new()
                    .name(format!("writer-{id}"))
                    .spawn(move || writer.run())
                    .expect("spawn a writer")
            })
            .collect();
        Load { origin, stop, paused, busy, writers, records, acks, extra }
    }

    /// Waits until `count` more writes than now are acknowledged.
    pub fn wait_for_acks(&self, count: u64, timeout: Duration, ensemble: &Ensemble) {
        let target = self.acks.load(Ordering::Relaxed) + count;
        wait_until(
            timeout,
            || {
                let acks = self.acks.load(Ordering::Relaxed);
                format!(
                    "{acks} of {target} writes acknowledged: {}\n{}",
                    ensemble.status(),
                    ensemble.logs()
                )
            },
            || self.acks.load(Ordering::Relaxed) >= target,
        );
    }

    /// Holds the writers off and waits until none has a request out.
    pub fn pause(&self, ensemble: &Ensemble) {
        self.paused.store(true, Ordering::SeqCst);
        wait_until(
            Duration::from_secs(30),
            || format!("writers still busy: {}", ensemble.status()),
            || self.busy.load(Ordering::SeqCst) == 0,
        );
    }

    /// Lets the writers go on.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Stops the writers; returns every recorded operation.
    pub fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        for writer in self.writers {
            writer.join().expect("a writer panicked");
        }
        let mut records = self.extra;
        records.append(&mut self.records.lock().unwrap_or_else(PoisonError::into_inner));
        records
    }

    /// The earliest acknowledgement of a write called after `after_ns`, in ns since the
    /// origin.
    pub fn first_ack_after(&self, after_ns: u64) -> Option<u64> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        first_ack_after(&records, after_ns)
    }
}

/// The earliest acknowledgement of a write called after `after_ns`, in ns since the origin.
pub fn first_ack_after(records: &[Record], after_ns: u64) -> Option<u64> {
    records
        .iter()
        .filter(|(_, op)| op.call > after_ns)
        .filter(|(_, op)| matches!(op.output, Some(ZnodeOutput::Created | ZnodeOutput::Set { .. })))
        .map(|(_, op)| op.ret)
        .min()
}

/// The end-of-test checks on a converged ensemble: every server holds the same tree; every
/// acknowledged create is there with its value and every acknowledged setData's version is
/// reached on every server; the history with a final read of each znode is linearizable.
/// Returns (operations, acknowledged writes, unknown outcomes).
pub fn check_history(
    ensemble: &Ensemble,
    mut records: Vec<Record>,
    origin: Instant,
) -> (usize, usize, usize) {
    ensemble.wait_converged(Duration::from_secs(30));
    let tree = match ensemble.compare_states() {
        Ok(tree) => tree,
        Err((paths, text)) => {
            let mut history = String::new();
            for (key, op) in records.iter().filter(|(key, _)| paths.contains(key)).take(40) {
                history += &format!("  {key}: {op:?}\n");
            }
            panic!("{text}their recorded operations:\n{history}{}", ensemble.logs());
        }
    };
    let mut acked = 0;
    let mut unknown_outcomes = 0;
    let mut highest_set: BTreeMap<&str, i32> = BTreeMap::new();
    let overwritten: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|(_, op)| matches!(op.input, ZnodeInput::SetData { .. }))
        .map(|(key, _)| key.as_str())
        .collect();
    for (key, op) in &records {
        match (&op.input, &op.output) {
            (ZnodeInput::Create { value }, Some(ZnodeOutput::Created)) => {
                acked += 1;
                let stored = tree.get(key).map(|(data, _)| value_of(data));
                // Registers are overwritten later; slots keep what their creator wrote.
                let kept = if overwritten.contains(key.as_str()) {
                    stored.is_some()
                } else {
                    stored == Some(Some(*value))
                };
                assert!(
                    kept,
                    "acknowledged create of {key} lost ({stored:?})\n{}",
                    ensemble.logs()
                );
            }
            (_, Some(ZnodeOutput::Set { version })) => {
                acked += 1;
                let highest = highest_set.entry(key).or_default();
                *highest = (*highest).max(*version);
            }
            (_, None) => unknown_outcomes += 1,
            _ => {}
        }
    }
    for (key, version) in &highest_set {
        let stored = tree.get(*key).map(|(_, stat)| stat.version);
        assert!(
            stored.is_some_and(|stored| stored >= *version),
            "{key} is at version {stored:?} but setData to version {version} was acknowledged\n{}",
            ensemble.logs()
        );
    }
    let keys: Vec<String> = {
        let mut keys: Vec<String> = records.iter().map(|(key, _)| key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    };
    for key in keys {
        let read = tree.get(&key).map(|(data, stat)| {
            (value_of(data).expect("a recorded znode holds a recorded value"), stat.version)
        });
        let call = since(origin);
        let output = Some(ZnodeOutput::Read(read));
        let op = Operation {
            process: usize::MAX - 1,
            call,
            ret: call + 1,
            input: ZnodeInput::Read,
            output,
        };
        records.push((key, op));
    }
    if let Err((key, failure)) = linearizability::check_by_key(&Znode, &records) {
        let history: Vec<_> =
            records.iter().filter(|(k, _)| *k == key).map(|(_, op)| op.clone()).collect();
        panic!("history of {key}: {}", linearizability::explain(&history, &failure));
    }
    (records.len(), acked, unknown_outcomes)
}
