//! [`ZkCoordinator`]: zabflow-core's [`Coordinator`] over the ZooKeeper client, so the stream
//! engine runs against a zabflow ensemble or a real Apache ZooKeeper alike. The znode layout
//! and the checkpoint record format are zabflow-core's (`zabflow_core::coordinator`).
//!
//! **Threads.** Besides the client's I/O thread, a coordinator runs an *event thread* that
//! drains [`Client::events`] (the client stalls if nobody does) and only updates flags, and,
//! once it campaigns, an *election thread* that does the election's reads. The split keeps
//! the event thread from ever waiting on a reply that the I/O thread could only deliver after
//! handing it another event.
//!
//! **Election** (ZooKeeper's recipe, no herd effect). Each contender creates an ephemeral
//! sequential znode `leader/c_<session:016x>-<seq>` holding its address. The lowest sequence
//! leads; every other contender watches only its predecessor and looks again when that one
//! goes. The session id in the name lets a contender find its own znode after a connection
//! loss hid the create's reply, instead of creating a second one.
//!
//! **Fencing.** A leader that lost its session must not write: `record_checkpoint` and
//! `prune` run as a `multi` whose first op checks that the contender's znode still exists.
//! Once a contender was lowest, nobody can become lower, so existence is enough.
//!
//! **Counter.** `checkpoint-counter` holds the next epoch. Drawing reads it and sets it one
//! higher on the read version; a lost race (`BadVersion`) or a lost reply reads again. Only a
//! successful compare-and-set hands out an epoch, so no epoch is handed out twice; a reply
//! lost after the set applied leaves a gap, never a duplicate.
//!
//! **Retries.** Calls that fail with `ConnectionLoss` are retried up to
//! [`CALL_ATTEMPTS_MAX`] times (the client reconnects meanwhile); every write is written so
//! that a retry after an applied-but-unanswered attempt is harmless.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zabflow_core::coordinator::{
    parse_candidate_sequence, parse_checkpoint_name, CompletedCheckpoint, Coordinator,
    CoordinatorError, CoordinatorResult, Pruned, SessionState, Worker, ZnodeLayout,
    CANDIDATE_PREFIX, EPOCH_MAX,
};

use crate::client::{
    multi_error, Client, ClientConfig, SessionCredentials, WatchedEvent, VERSION_ANY,
};
use crate::error::ZkError;
use crate::jute::{
    CheckVersionRequest, CreateMode, CreateRequest, DeleteRequest, ErrorCode, EventType,
    KeeperState, MultiOp, MultiResult, SetDataRequest, ACL,
};

/// Attempts of one call that keeps failing with a connection loss.
pub const CALL_ATTEMPTS_MAX: u32 = 8;

/// Pause before the first retry of a call; each retry waits one pause longer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Compare-and-set attempts of one epoch draw before it reports contention as an error.
pub const EPOCH_DRAW_ATTEMPTS_MAX: u32 = 10_000;

/// How often the event thread looks at the stop flag while no event arrives.
const EVENT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long the election thread waits before looking again after a failed look.
const ELECTION_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The election and session flags the threads share.
#[derive(Debug, Default)]
struct ElectionState {
    /// This contender's znode name under `leader`, while it campaigns.
    candidate: Option<String>,
    /// Whether the candidate's znode was the lowest at the last look.
    leader: bool,
    /// The election must be looked at again (a watch fired, the session reconnected).
    recheck: bool,
    /// The session expired or was closed.
    ended: bool,
    /// The coordinator is closing: threads exit.
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<ElectionState>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ElectionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut ElectionState)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }
}

/// A [`Coordinator`] on one ZooKeeper session. Dropping it closes the session.
#[derive(Debug)]
pub struct ZkCoordinator {
    client: Arc<Client>,
    layout: ZnodeLayout,
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    election_started: AtomicBool,
    /// Persistent paths known to exist, so each is created at most once per coordinator.
    ensured: Mutex<HashSet<String>>,
}

impl ZkCoordinator {
    /// Connects to `connect_string` (`host:port,…`) with `session_timeout` and serves
    /// `cluster`.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad cluster name; `Unavailable` when no server accepts.
    pub fn connect(
        connect_string: &str,
        cluster: &str,
        session_timeout: Duration,
    ) -> CoordinatorResult<ZkCoordinator> {
        let layout = ZnodeLayout::new(cluster)?;
        let config = ClientConfig::new(connect_string).map_err(|error| unavailable(&error))?;
        let client = Client::connect(config.with_session_timeout(session_timeout))
            .map_err(|error| unavailable(&error))?;
        Ok(ZkCoordinator::start(client, layout))
    }

    /// Serves `cluster` on an open `client`, taking over its event channel.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad cluster name.
    pub fn new(client: Client, cluster: &str) -> CoordinatorResult<ZkCoordinator> {
        Ok(ZkCoordinator::start(client, ZnodeLayout::new(cluster)?))
    }

    fn start(client: Client, layout: ZnodeLayout) -> ZkCoordinator {
        let shared = Arc::new(Shared::default());
        let events = client.events().clone();
        let event_shared = shared.clone();
        let leader_path = layout.leader();
        let event_thread = std::thread::Builder::new()
            .name("zk-coordinator-events".to_owned())
            .spawn(move || run_event_thread(&events, &event_shared, &leader_path))
            .expect("spawn the coordinator's event thread");
        ZkCoordinator {
            client: Arc::new(client),
            layout,
            shared,
            threads: Mutex::new(vec![event_thread]),
            election_started: AtomicBool::new(false),
            ensured: Mutex::new(HashSet::new()),
        }
    }

    /// The znode layout of this coordinator's cluster.
    #[must_use]
    pub fn layout(&self) -> &ZnodeLayout {
        &self.layout
    }

    /// The session id of the underlying client.
    #[must_use]
    pub fn session_id(&self) -> i64 {
        self.client.session_id()
    }

    /// The id and password of the underlying session, which a later process can hand to
    /// [`end_session`] to remove this one's workers and candidacy at once.
    #[must_use]
    pub fn session_credentials(&self) -> SessionCredentials {
        self.client.session_credentials()
    }

    /// Closes the session (its workers and candidacy vanish at once) and stops the threads.
    /// Closing twice is a no-op.
    ///
    /// # Errors
    /// As [`Client::close`], mapped.
    pub fn close(&self) -> CoordinatorResult<()> {
        self.shared.update(|state| state.stop = true);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
        let result = self.client.close().map_err(|error| map_error("close", &error));
        self.shared.update(|state| {
            state.ended = true;
            state.leader = false;
        });
        result
    }

    fn candidate_path(&self) -> Option<String> {
        let candidate = self.shared.lock().candidate.clone()?;
        Some(format!("{}/{candidate}", self.layout.leader()))
    }

    /// Creates every missing persistent znode from the root to `path`.
    fn ensure_path(&self, path: &str) -> CoordinatorResult<()> {
        if self.ensured.lock().unwrap_or_else(PoisonError::into_inner).contains(path) {
            return Ok(());
        }
        let mut prefix = String::new();
        for segment in path.split('/').filter(|segment| !segment.is_empty()) {
            prefix.push('/');
            prefix.push_str(segment);
            let created = retry(&prefix, || {
                self.client.create(&prefix, b"", &open_acl(), CreateMode::Persistent)
            });
            match created {
                Ok(_) | Err(ZkError::Code(ErrorCode::NodeExists)) => {}
                Err(error) => return Err(map_error(&prefix, &error)),
            }
        }
        self.ensured.lock().unwrap_or_else(PoisonError::into_inner).insert(path.to_owned());
        Ok(())
    }

    /// The contenders' znode names, lowest sequence first.
    fn candidates(&self) -> CoordinatorResult<Vec<String>> {
        let leader = self.layout.leader();
        let children = match retry(&leader, || self.client.get_children(&leader, false)) {
            Ok(children) => children,
            Err(ZkError::Code(ErrorCode::NoNode)) => Vec::new(),
            Err(error) => return Err(map_error(&leader, &error)),
        };
        let mut candidates: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|name| parse_candidate_sequence(&name).map(|sequence| (sequence, name)))
            .collect();
        candidates.sort();
        Ok(candidates.into_iter().map(|(_, name)| name).collect())
    }

    /// Creates this session's candidate znode, or finds the one an unanswered create made.
    fn create_candidate(&self, address: &str) -> CoordinatorResult<String> {
        let leader = self.layout.leader();
        self.ensure_path(&leader)?;
        let prefix = format!("{CANDIDATE_PREFIX}{:016x}-", self.client.session_id());
        let path_prefix = format!("{leader}/{prefix}");
        for attempt in 0..CALL_ATTEMPTS_MAX {
            let created = self.client.create(
                &path_prefix,
                address.as_bytes(),
                &open_acl(),
                CreateMode::EphemeralSequential,
            );
            match created {
                Ok(path) => return Ok(last_segment(&path).to_owned()),
                Err(error) if is_connection_loss(&error) => {
                    let mine =
                        self.candidates()?.into_iter().find(|name| name.starts_with(&prefix));
                    if let Some(name) = mine {
                        return Ok(name);
                    }
                    std::thread::sleep(RETRY_PAUSE * (attempt + 1));
                }
                Err(error) => return Err(map_error(&leader, &error)),
            }
        }
        Err(CoordinatorError::Unavailable(format!("cannot create a candidate under {leader}")))
    }

    fn start_election_thread(&self) {
        if self.election_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let election = Election {
            client: self.client.clone(),
            shared: self.shared.clone(),
            leader_path: self.layout.leader(),
        };
        let thread = std::thread::Builder::new()
            .name("zk-coordinator-election".to_owned())
            .spawn(move || election.run())
            .expect("spawn the coordinator's election thread");
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).push(thread);
    }

    /// `NotLeader` unless this contender leads now; its znode path otherwise.
    fn require_leadership(&self) -> CoordinatorResult<String> {
        self.check_session()?;
        match self.candidate_path() {
            Some(path) if self.is_leader() => Ok(path),
            _ => Err(CoordinatorError::NotLeader { cluster: self.layout.cluster().to_owned() }),
        }
    }

    fn check_session(&self) -> CoordinatorResult<()> {
        match self.session_state() {
            SessionState::Expired => Err(CoordinatorError::SessionExpired),
            SessionState::Closed => Err(closed()),
            _ => Ok(()),
        }
    }

    /// Runs `ops` after a check that this contender's znode exists, as one `multi`.
    fn fenced_multi(&self, candidate: &str, ops: Vec<MultiOp>) -> CoordinatorResult<FencedOutcome> {
        let mut fenced = vec![MultiOp::Check(CheckVersionRequest {
            path: candidate.to_owned(),
            version: VERSION_ANY,
        })];
        fenced.extend(ops);
        let results = retry(candidate, || self.client.multi(fenced.clone()))
            .map_err(|error| map_error(candidate, &error))?;
        let Some(code) = multi_error(&results) else {
            return Ok(FencedOutcome::Done);
        };
        let check_failed = matches!(results.first(), Some(MultiResult::Error(e)) if e.err != 0);
        if check_failed {
            self.shared.update(|state| state.leader = false);
            return Err(CoordinatorError::NotLeader { cluster: self.layout.cluster().to_owned() });
        }
        Ok(FencedOutcome::Failed(code))
    }

    fn read_checkpoint(&self, job: &str, epoch: u64) -> CoordinatorResult<CompletedCheckpoint> {
        let path = self.layout.checkpoint(job, epoch)?;
        let data = match retry(&path, || self.client.get_data(&path, false)) {
            Ok((data, _)) => data,
            Err(ZkError::Code(ErrorCode::NoNode)) => {
                return Err(CoordinatorError::NoSuchCheckpoint { job: job.to_owned(), epoch });
            }
            Err(error) => return Err(map_error(&path, &error)),
        };
        let record = CompletedCheckpoint::decode(&data)
            .map_err(|reason| CoordinatorError::Corrupt { path: path.clone(), reason })?;
        if record.epoch != epoch {
            let reason = format!("the record names epoch {}", record.epoch);
            return Err(CoordinatorError::Corrupt { path, reason });
        }
        Ok(record)
    }

    /// One compare-and-set attempt on the counter: `Some(epoch)` when it won.
    fn try_draw_epoch(&self, path: &str) -> CoordinatorResult<Option<u64>> {
        let (data, stat) = match retry(path, || self.client.get_data(path, false)) {
            Ok(found) => found,
            Err(ZkError::Code(ErrorCode::NoNode)) => {
                let created = retry(path, || {
                    self.client.create(path, b"1", &open_acl(), CreateMode::Persistent)
                });
                return match created {
                    Ok(_) | Err(ZkError::Code(ErrorCode::NodeExists)) => Ok(None),
                    Err(error) => Err(map_error(path, &error)),
                };
            }
            Err(error) => return Err(map_error(path, &error)),
        };
        let next = parse_counter(&data).ok_or_else(|| CoordinatorError::Corrupt {
            path: path.to_owned(),
            reason: format!("the counter holds {:?}, not an epoch", String::from_utf8_lossy(&data)),
        })?;
        if next >= EPOCH_MAX {
            return Err(CoordinatorError::InvalidArgument(format!("epochs exhausted at {path}")));
        }
        let following = (next + 1).to_string();
        match self.client.set_data(path, following.as_bytes(), stat.version) {
            Ok(_) => Ok(Some(next)),
            Err(ZkError::Code(ErrorCode::BadVersion)) => Ok(None),
            Err(error) if is_connection_loss(&error) => Ok(None),
            Err(error) => Err(map_error(path, &error)),
        }
    }
}

enum FencedOutcome {
    Done,
    Failed(ErrorCode),
}

/// A job submitted to a cluster's workers: its `spec` znode's data and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpecZnode {
    /// The job's name (its znode under `jobs`).
    pub job: String,
    /// The spec's bytes (the tools' text format; opaque here).
    pub data: Vec<u8>,
    /// The znode's data version, for compare-and-set updates.
    pub version: i32,
}

/// Job submission: `jobs/<job>/spec` znodes that `zabflow job submit` writes and the
/// cluster's leading worker runs and updates. Not part of the engine's [`Coordinator`]: the
/// engine runs one job; what to run is the tools' business.
impl ZkCoordinator {
    /// Submits `job` with `spec` (creating or replacing its spec znode; any session may).
    ///
    /// # Errors
    /// `InvalidArgument` for a bad job name; the service's errors, mapped.
    pub fn put_job_spec(&self, job: &str, spec: &[u8]) -> CoordinatorResult<()> {
        let path = self.layout.job_spec(job)?;
        self.ensure_path(&self.layout.job(job)?)?;
        let created =
            retry(&path, || self.client.create(&path, spec, &open_acl(), CreateMode::Persistent));
        match created {
            Ok(_) => Ok(()),
            Err(ZkError::Code(ErrorCode::NodeExists)) => {
                retry(&path, || self.client.set_data(&path, spec, VERSION_ANY))
                    .map(|_| ())
                    .map_err(|error| map_error(&path, &error))
            }
            Err(error) => Err(map_error(&path, &error)),
        }
    }

    /// Every job that has a spec, in name order.
    ///
    /// # Errors
    /// The service's errors, mapped.
    pub fn job_specs(&self) -> CoordinatorResult<Vec<JobSpecZnode>> {
        let parent = self.layout.jobs();
        let mut jobs = match retry(&parent, || self.client.get_children(&parent, false)) {
            Ok(jobs) => jobs,
            Err(ZkError::Code(ErrorCode::NoNode)) => return Ok(Vec::new()),
            Err(error) => return Err(map_error(&parent, &error)),
        };
        jobs.sort();
        let mut specs = Vec::new();
        for job in jobs {
            let Ok(path) = self.layout.job_spec(&job) else { continue };
            match retry(&path, || self.client.get_data(&path, false)) {
                Ok((data, stat)) => specs.push(JobSpecZnode { job, data, version: stat.version }),
                // A job with checkpoints but no spec (run by `job run`), or one just removed.
                Err(ZkError::Code(ErrorCode::NoNode)) => {}
                Err(error) => return Err(map_error(&path, &error)),
            }
        }
        Ok(specs)
    }

    /// As the leader: replaces `job`'s spec if its version is still `version` (`Ok(false)`
    /// when it moved: someone resubmitted the job), fenced like a checkpoint record so a
    /// deposed leader cannot write.
    ///
    /// # Errors
    /// `NotLeader` unless this contender leads; the service's errors, mapped.
    pub fn update_job_spec(&self, job: &str, spec: &[u8], version: i32) -> CoordinatorResult<bool> {
        let path = self.layout.job_spec(job)?;
        let candidate = self.require_leadership()?;
        let set = MultiOp::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(spec.to_vec()),
            version,
        });
        match self.fenced_multi(&candidate, vec![set])? {
            FencedOutcome::Done => Ok(true),
            FencedOutcome::Failed(ErrorCode::BadVersion | ErrorCode::NoNode) => Ok(false),
            FencedOutcome::Failed(code) => {
                Err(CoordinatorError::Service(format!("{path}: {code:?}")))
            }
        }
    }
}

impl Coordinator for ZkCoordinator {
    fn session_state(&self) -> SessionState {
        match self.client.state() {
            KeeperState::SyncConnected => SessionState::Connected,
            KeeperState::Expired => SessionState::Expired,
            KeeperState::Closed => SessionState::Closed,
            _ => SessionState::Disconnected,
        }
    }

    fn register_worker(&self, id: &str, address: &str) -> CoordinatorResult<()> {
        let path = self.layout.worker(id)?;
        self.ensure_path(&self.layout.workers())?;
        let created = retry(&path, || {
            self.client.create(&path, address.as_bytes(), &open_acl(), CreateMode::Ephemeral)
        });
        match created {
            Ok(_) => Ok(()),
            Err(ZkError::Code(ErrorCode::NodeExists)) => {
                let owner = retry(&path, || self.client.exists(&path, false))
                    .map_err(|error| map_error(&path, &error))?
                    .map(|stat| stat.ephemeral_owner);
                if owner == Some(self.client.session_id()) {
                    return Ok(());
                }
                Err(CoordinatorError::Service(format!(
                    "worker id {id} is registered by another session ({path})"
                )))
            }
            Err(error) => Err(map_error(&path, &error)),
        }
    }

    fn workers(&self) -> CoordinatorResult<Vec<Worker>> {
        let parent = self.layout.workers();
        let ids = match retry(&parent, || self.client.get_children(&parent, false)) {
            Ok(ids) => ids,
            Err(ZkError::Code(ErrorCode::NoNode)) => return Ok(Vec::new()),
            Err(error) => return Err(map_error(&parent, &error)),
        };
        let mut workers = Vec::with_capacity(ids.len());
        for id in ids {
            let path = format!("{parent}/{id}");
            match retry(&path, || self.client.get_data(&path, false)) {
                Ok((data, _)) => {
                    workers.push(Worker { id, address: String::from_utf8_lossy(&data).into() });
                }
                // The worker left between the listing and the read.
                Err(ZkError::Code(ErrorCode::NoNode)) => {}
                Err(error) => return Err(map_error(&path, &error)),
            }
        }
        workers.sort();
        Ok(workers)
    }

    fn campaign(&self, address: &str) -> CoordinatorResult<()> {
        self.check_session()?;
        if self.shared.lock().candidate.is_some() {
            return Ok(());
        }
        let name = self.create_candidate(address)?;
        self.shared.update(|state| {
            state.candidate = Some(name);
            state.recheck = true;
        });
        self.start_election_thread();
        Ok(())
    }

    fn is_leader(&self) -> bool {
        let leader = {
            let state = self.shared.lock();
            state.leader && !state.ended && state.candidate.is_some()
        };
        leader && self.client.state() == KeeperState::SyncConnected
    }

    fn await_leadership(&self, timeout: Duration) -> CoordinatorResult<()> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state.ended || self.client.state() == KeeperState::Expired {
                return Err(CoordinatorError::SessionExpired);
            }
            if state.candidate.is_none() {
                let reason = "await_leadership without campaign".to_owned();
                return Err(CoordinatorError::InvalidArgument(reason));
            }
            if state.leader && self.client.state() == KeeperState::SyncConnected {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CoordinatorError::Timeout(timeout, "leadership"));
            }
            // Bounded waits: the connection state is read from the client, not signalled.
            let wait = (deadline - now).min(EVENT_POLL_INTERVAL);
            state =
                self.shared.changed.wait_timeout(state, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn resign(&self) -> CoordinatorResult<()> {
        let Some(path) = self.candidate_path() else {
            return Ok(());
        };
        self.shared.update(|state| {
            state.candidate = None;
            state.leader = false;
        });
        match retry(&path, || self.client.delete(&path, VERSION_ANY)) {
            Ok(()) | Err(ZkError::Code(ErrorCode::NoNode)) => Ok(()),
            Err(error) => Err(map_error(&path, &error)),
        }
    }

    fn leader_address(&self) -> CoordinatorResult<Option<String>> {
        let leader = self.layout.leader();
        for _ in 0..CALL_ATTEMPTS_MAX {
            let Some(lowest) = self.candidates()?.into_iter().next() else {
                return Ok(None);
            };
            let path = format!("{leader}/{lowest}");
            match retry(&path, || self.client.get_data(&path, false)) {
                Ok((data, _)) => return Ok(Some(String::from_utf8_lossy(&data).into_owned())),
                // The leader left between the listing and the read: look again.
                Err(ZkError::Code(ErrorCode::NoNode)) => {}
                Err(error) => return Err(map_error(&path, &error)),
            }
        }
        Err(CoordinatorError::Unavailable(format!("the leader under {leader} keeps changing")))
    }

    fn next_checkpoint_epoch(&self, job: &str) -> CoordinatorResult<u64> {
        let path = self.layout.checkpoint_counter(job)?;
        self.ensure_path(&self.layout.job(job)?)?;
        for _ in 0..EPOCH_DRAW_ATTEMPTS_MAX {
            if let Some(epoch) = self.try_draw_epoch(&path)? {
                return Ok(epoch);
            }
        }
        Err(CoordinatorError::Unavailable(format!(
            "{EPOCH_DRAW_ATTEMPTS_MAX} compare-and-set attempts on {path} all lost"
        )))
    }

    fn record_checkpoint(
        &self,
        job: &str,
        checkpoint: &CompletedCheckpoint,
    ) -> CoordinatorResult<()> {
        let path = self.layout.checkpoint(job, checkpoint.epoch)?;
        let data = checkpoint.encode()?;
        let candidate = self.require_leadership()?;
        self.ensure_path(&self.layout.checkpoints(job)?)?;
        let create = MultiOp::Create(CreateRequest {
            path: path.clone(),
            data: Some(data.clone()),
            acl: open_acl(),
            flags: CreateMode::Persistent.code(),
        });
        match self.fenced_multi(&candidate, vec![create])? {
            FencedOutcome::Done => Ok(()),
            FencedOutcome::Failed(ErrorCode::NodeExists) => {
                // Ours, if an earlier attempt applied but its reply was lost.
                let existing = retry(&path, || self.client.get_data(&path, false))
                    .map_err(|error| map_error(&path, &error))?;
                if existing.0 == data {
                    return Ok(());
                }
                let epoch = checkpoint.epoch;
                Err(CoordinatorError::CheckpointExists { job: job.to_owned(), epoch })
            }
            FencedOutcome::Failed(code) => {
                Err(CoordinatorError::Service(format!("{path}: {code:?}")))
            }
        }
    }

    fn checkpoints(&self, job: &str) -> CoordinatorResult<Vec<u64>> {
        let parent = self.layout.checkpoints(job)?;
        let names = match retry(&parent, || self.client.get_children(&parent, false)) {
            Ok(names) => names,
            Err(ZkError::Code(ErrorCode::NoNode)) => return Ok(Vec::new()),
            Err(error) => return Err(map_error(&parent, &error)),
        };
        let mut epochs: Vec<u64> =
            names.iter().filter_map(|name| parse_checkpoint_name(name)).collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    fn checkpoint(&self, job: &str, epoch: u64) -> CoordinatorResult<CompletedCheckpoint> {
        self.read_checkpoint(job, epoch)
    }

    fn latest_checkpoint(&self, job: &str) -> CoordinatorResult<Option<CompletedCheckpoint>> {
        for _ in 0..CALL_ATTEMPTS_MAX {
            let Some(&epoch) = self.checkpoints(job)?.last() else {
                return Ok(None);
            };
            match self.read_checkpoint(job, epoch) {
                // Pruned between the listing and the read: look again.
                Err(CoordinatorError::NoSuchCheckpoint { .. }) => {}
                other => return other.map(Some),
            }
        }
        Err(CoordinatorError::Unavailable(format!("the checkpoints of {job} keep changing")))
    }

    fn prune(&self, job: &str, keep: usize) -> CoordinatorResult<Pruned> {
        if keep == 0 {
            let reason = "prune must keep at least one checkpoint".to_owned();
            return Err(CoordinatorError::InvalidArgument(reason));
        }
        let candidate = self.require_leadership()?;
        let epochs = self.checkpoints(job)?;
        let mut pruned = Pruned::default();
        for &epoch in &epochs[..epochs.len().saturating_sub(keep)] {
            let record = self.read_checkpoint(job, epoch);
            let path = self.layout.checkpoint(job, epoch)?;
            let delete =
                MultiOp::Delete(DeleteRequest { path: path.clone(), version: VERSION_ANY });
            match self.fenced_multi(&candidate, vec![delete])? {
                FencedOutcome::Done | FencedOutcome::Failed(ErrorCode::NoNode) => {}
                FencedOutcome::Failed(code) => {
                    return Err(CoordinatorError::Service(format!("{path}: {code:?}")));
                }
            }
            match record {
                Ok(record) => pruned.checkpoints.push(record),
                Err(CoordinatorError::Corrupt { .. }) => pruned.corrupt_epochs.push(epoch),
                Err(CoordinatorError::NoSuchCheckpoint { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(pruned)
    }
}

impl Drop for ZkCoordinator {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The election thread's handles.
struct Election {
    client: Arc<Client>,
    shared: Arc<Shared>,
    leader_path: String,
}

/// What one look at the election found.
enum Look {
    /// This contender leads (`true`) or waits on a watched predecessor (`false`).
    Settled(bool),
    /// The predecessor vanished before the watch was set: look again at once.
    Again,
    /// This contender's znode is gone (resigned, or the session ended).
    Gone,
}

impl Election {
    /// Looks at the election whenever asked to, until the coordinator stops or the session
    /// ends.
    fn run(self) {
        loop {
            let candidate = {
                let mut state = self.shared.lock();
                while !state.recheck && !state.stop && !state.ended {
                    state = self.shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if state.stop || state.ended {
                    return;
                }
                state.recheck = false;
                state.candidate.clone()
            };
            let Some(candidate) = candidate else { continue };
            match self.look(&candidate) {
                Ok(Look::Settled(leader)) => self.settle(&candidate, leader),
                Ok(Look::Again) => self.shared.update(|state| state.recheck = true),
                Ok(Look::Gone) => self.settle(&candidate, false),
                Err(ZkError::Code(ErrorCode::SessionExpired)) | Err(ZkError::Closed) => {
                    self.shared.update(|state| {
                        state.ended = true;
                        state.leader = false;
                    });
                    return;
                }
                Err(_) => {
                    self.settle(&candidate, false);
                    std::thread::sleep(ELECTION_RETRY_PAUSE);
                    self.shared.update(|state| state.recheck = true);
                }
            }
        }
    }

    /// Records the outcome of a look, unless the candidacy changed meanwhile.
    fn settle(&self, candidate: &str, leader: bool) {
        self.shared.update(|state| {
            if state.candidate.as_deref() == Some(candidate) {
                state.leader = leader;
            }
        });
    }

    fn look(&self, candidate: &str) -> Result<Look, ZkError> {
        let children = self.client.get_children(&self.leader_path, false)?;
        let mut candidates: Vec<(i64, &str)> = children
            .iter()
            .filter_map(|name| parse_candidate_sequence(name).map(|seq| (seq, name.as_str())))
            .collect();
        candidates.sort();
        let Some(position) = candidates.iter().position(|(_, name)| *name == candidate) else {
            return Ok(Look::Gone);
        };
        if position == 0 {
            return Ok(Look::Settled(true));
        }
        let predecessor = format!("{}/{}", self.leader_path, candidates[position - 1].1);
        match self.client.exists(&predecessor, true)? {
            Some(_) => Ok(Look::Settled(false)),
            None => Ok(Look::Again),
        }
    }
}

/// Drains the client's events: session changes and election watches become flags.
fn run_event_thread(
    events: &crossbeam_channel::Receiver<WatchedEvent>,
    shared: &Shared,
    leader_path: &str,
) {
    loop {
        if shared.lock().stop {
            return;
        }
        let event = match events.recv_timeout(EVENT_POLL_INTERVAL) {
            Ok(event) => event,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                shared.update(|state| {
                    state.ended = true;
                    state.leader = false;
                });
                return;
            }
        };
        let election_watch =
            event.path.as_deref().is_some_and(|path| path.starts_with(leader_path));
        shared.update(|state| match (event.event_type, event.state) {
            (EventType::None, KeeperState::Expired | KeeperState::Closed) => {
                state.ended = true;
                state.leader = false;
            }
            (EventType::None, KeeperState::SyncConnected) => state.recheck = true,
            (EventType::None, _) => {}
            _ if election_watch => state.recheck = true,
            _ => {}
        });
    }
}

/// Runs `call` again while it fails with a connection loss, up to [`CALL_ATTEMPTS_MAX`].
fn retry<T>(_path: &str, mut call: impl FnMut() -> Result<T, ZkError>) -> Result<T, ZkError> {
    let mut attempt = 1;
    loop {
        match call() {
            Err(error) if is_connection_loss(&error) && attempt < CALL_ATTEMPTS_MAX => {
                std::thread::sleep(RETRY_PAUSE * attempt);
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn is_connection_loss(error: &ZkError) -> bool {
    matches!(error, ZkError::Code(ErrorCode::ConnectionLoss | ErrorCode::OperationTimeout))
}

/// Ends the session of `credentials` now, as its owner closing it would: its ephemeral
/// znodes (worker registration, election candidacy) are deleted in the same transaction.
/// A restarted process uses it on its dead predecessor's session so it need not wait out the
/// session timeout. Returns false if that session had already ended (true if a close was
/// attempted and may have landed before its reply was lost).
///
/// Safe for fencing: the predecessor, if it still runs, finds its session expired, and its
/// checkpoint records (conditional on its election znode) fail from then on.
///
/// # Errors
/// `Unavailable` when no server answers; `Service` for other failures.
pub fn end_session(
    config: &ClientConfig,
    credentials: SessionCredentials,
) -> CoordinatorResult<bool> {
    // A predecessor that still runs reconnects and takes its session back, which closes our
    // connection before the close lands (ConnectionLoss): try again; once the close has
    // landed, the predecessor's reconnects fail and so does our next resume.
    let mut resumed = false;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match Client::connect(config.clone().with_session(credentials.clone())) {
            Ok(client) => {
                resumed = true;
                match client.close() {
                    Ok(()) => return Ok(true),
                    Err(error) => error,
                }
            }
            Err(ZkError::Code(ErrorCode::SessionExpired)) => return Ok(resumed),
            Err(error) => error,
        };
        let retryable = is_connection_loss(&error) || matches!(error, ZkError::Closed);
        if attempts >= END_SESSION_ATTEMPTS_MAX || !retryable {
            return Err(map_error("end session", &error));
        }
    }
}

/// How many times [`end_session`] resumes and closes a session that keeps being taken back.
const END_SESSION_ATTEMPTS_MAX: u32 = 10;

fn map_error(path: &str, error: &ZkError) -> CoordinatorError {
    match error {
        ZkError::Code(ErrorCode::SessionExpired) => CoordinatorError::SessionExpired,
        ZkError::Closed => closed(),
        error if is_connection_loss(error) => unavailable(error),
        ZkError::Connect(_) => unavailable(error),
        error => CoordinatorError::Service(format!("{path}: {error}")),
    }
}

fn unavailable(error: &ZkError) -> CoordinatorError {
    CoordinatorError::Unavailable(error.to_string())
}

fn closed() -> CoordinatorError {
    CoordinatorError::Service("the coordinator is closed".to_owned())
}

fn open_acl() -> Vec<ACL> {
    vec![ACL::open_unsafe()]
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The epoch a counter znode holds: decimal ASCII, at least 1.
fn parse_counter(data: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(data).ok()?;
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&epoch| epoch >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_strictly() {
        assert_eq!(parse_counter(b"1"), Some(1));
        assert_eq!(parse_counter(b"123"), Some(123));
        for bad in [&b""[..], b"0", b"-1", b" 1", b"1\n", b"x", b"99999999999999999999999"] {
            assert_eq!(parse_counter(bad), None, "{bad:?}");
        }
    }
}
