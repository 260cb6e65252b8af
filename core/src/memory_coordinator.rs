//! An in-memory [`Coordinator`]: the simulated twin of the ZooKeeper-protocol one in
//! `zabflow-net`, for the engine's own tests (no network in this crate).
//!
//! Several [`MemoryCoordinator`]s made with [`MemoryCoordinator::session`] share one store,
//! as several sessions share one ensemble: each is a contender in the leader election (the
//! earliest live campaign leads), draws epochs from the same counter and sees the same
//! checkpoint records. A test can expire a session ([`MemoryCoordinator::expire`], as when
//! a process stops sending pings; [`MemoryCoordinator::expire_when`] at an exact point of a
//! job's progress) or make the next calls fail as if the service were
//! unreachable ([`MemoryCoordinator::fail_next_calls`]). Records are stored encoded, so
//! every checkpoint goes through the same encoding as on a real service.

use crate::coordinator::{
    validate_name, CompletedCheckpoint, Coordinator, CoordinatorError, CoordinatorResult, Pruned,
    SessionState, Worker,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Store {
    next_session: u64,
    /// Contenders in campaign order: (session, address).
    candidates: Vec<(u64, String)>,
    expired: Vec<u64>,
    workers: BTreeMap<String, (u64, String)>,
    counters: HashMap<String, u64>,
    checkpoints: HashMap<String, BTreeMap<u64, Vec<u8>>>,
    /// Calls still to fail with `Unavailable`.
    failures_left: u64,
    /// A session that expires as soon as a checkpoint it records makes the job's recorded
    /// epochs satisfy the condition.
    expire_when: Option<(u64, ExpiryCondition)>,
}

type ExpiryCondition = Box<dyn Fn(&[u64]) -> bool + Send>;

struct Shared {
    store: Mutex<Store>,
    changed: Condvar,
}

/// One session with an in-memory coordination store (see the module doc).
#[derive(Clone)]
pub struct MemoryCoordinator {
    shared: Arc<Shared>,
    session: u64,
}

impl Default for MemoryCoordinator {
    fn default() -> Self {
        MemoryCoordinator::new()
    }
}

impl MemoryCoordinator {
    /// A session with a new, empty store.
    pub fn new() -> MemoryCoordinator {
        let shared =
            Arc::new(Shared { store: Mutex::new(Store::default()), changed: Condvar::new() });
        let session = MemoryCoordinator { shared, session: 0 };
        session.session()
    }

    /// Another session with the same store (another process of the same cluster).
    pub fn session(&self) -> MemoryCoordinator {
        let mut store = self.lock();
        store.next_session += 1;
        MemoryCoordinator { shared: self.shared.clone(), session: store.next_session }
    }

    /// Expires this session: its candidacy and membership are gone, every later call fails
    /// with `SessionExpired`.
    pub fn expire(&self) {
        let mut store = self.lock();
        store.expired.push(self.session);
        store.candidates.retain(|(session, _)| *session != self.session);
        store.workers.retain(|_, (session, _)| *session != self.session);
        self.shared.changed.notify_all();
    }

    /// Expires this session right after it records a checkpoint that makes the job's
    /// recorded epochs (ascending) satisfy `condition`: a crash at an exact point of the
    /// job's progress, whatever the threads' scheduling.
    pub fn expire_when(&self, condition: impl Fn(&[u64]) -> bool + Send + 'static) {
        self.lock().expire_when = Some((self.session, Box::new(condition)));
    }

    /// Makes the next `calls` calls (of any session) fail with `Unavailable`.
    pub fn fail_next_calls(&self, calls: u64) {
        self.lock().failures_left = calls;
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.shared.store.lock().expect("memory coordinator lock poisoned")
    }

    /// The store, once the call is allowed: not expired, not failing.
    fn call(&self) -> CoordinatorResult<MutexGuard<'_, Store>> {
        let mut store = self.lock();
        if store.expired.contains(&self.session) {
            return Err(CoordinatorError::SessionExpired);
        }
        if store.failures_left > 0 {
            store.failures_left -= 1;
            return Err(CoordinatorError::Unavailable("simulated connection loss".into()));
        }
        Ok(store)
    }

    fn leads(&self, store: &Store) -> bool {
        store.candidates.first().is_some_and(|(session, _)| *session == self.session)
    }

    fn require_leader(&self, store: &Store) -> CoordinatorResult<()> {
        if self.leads(store) {
            Ok(())
        } else {
            Err(CoordinatorError::NotLeader { cluster: "memory".into() })
        }
    }
}

impl Coordinator for MemoryCoordinator {
    fn session_state(&self) -> SessionState {
        if self.lock().expired.contains(&self.session) {
            SessionState::Expired
        } else {
            SessionState::Connected
        }
    }

    fn register_worker(&self, id: &str, address: &str) -> CoordinatorResult<()> {
        validate_name("worker id", id)?;
        let mut store = self.call()?;
        match store.workers.get(id) {
            Some((session, _)) if *session != self.session => {
                Err(CoordinatorError::Service(format!("worker {id} is registered")))
            }
            _ => {
                store.workers.insert(id.to_owned(), (self.session, address.to_owned()));
                Ok(())
            }
        }
    }

    fn workers(&self) -> CoordinatorResult<Vec<Worker>> {
        let store = self.call()?;
        let workers = store.workers.iter();
        Ok(workers
            .map(|(id, (_, address))| Worker { id: id.clone(), address: address.clone() })
            .collect())
    }

    fn campaign(&self, address: &str) -> CoordinatorResult<()> {
        let mut store = self.call()?;
        if !store.candidates.iter().any(|(session, _)| *session == self.session) {
            store.candidates.push((self.session, address.to_owned()));
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    fn is_leader(&self) -> bool {
        let store = self.lock();
        !store.expired.contains(&self.session) && self.leads(&store)
    }

    fn await_leadership(&self, timeout: Duration) -> CoordinatorResult<()> {
        let deadline = Instant::now() + timeout;
        let mut store = self.call()?;
        if !store.candidates.iter().any(|(session, _)| *session == self.session) {
            return Err(CoordinatorError::InvalidArgument(
                "await_leadership without campaign".into(),
            ));
        }
        loop {
            if store.expired.contains(&self.session) {
                return Err(CoordinatorError::SessionExpired);
            }
            if self.leads(&store) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CoordinatorError::Timeout(timeout, "leadership"));
            }
            store = self.shared.changed.wait_timeout(store, left).expect("lock poisoned").0;
        }
    }

    fn resign(&self) -> CoordinatorResult<()> {
        let mut store = self.call()?;
        store.candidates.retain(|(session, _)| *session != self.session);
        self.shared.changed.notify_all();
        Ok(())
    }

    fn leader_address(&self) -> CoordinatorResult<Option<String>> {
        let store = self.call()?;
        Ok(store.candidates.first().map(|(_, address)| address.clone()))
    }

    fn next_checkpoint_epoch(&self, job: &str) -> CoordinatorResult<u64> {
        validate_name("job", job)?;
        let mut store = self.call()?;
        let counter = store.counters.entry(job.to_owned()).or_insert(1);
        let epoch = *counter;
        *counter += 1;
        Ok(epoch)
    }

    fn record_checkpoint(
        &self,
        job: &str,
        checkpoint: &CompletedCheckpoint,
    ) -> CoordinatorResult<()> {
        validate_name("job", job)?;
        let record = checkpoint.encode()?;
        let mut store = self.call()?;
        self.require_leader(&store)?;
        let records = store.checkpoints.entry(job.to_owned()).or_default();
        match records.get(&checkpoint.epoch) {
            Some(existing) if *existing != record => Err(CoordinatorError::CheckpointExists {
                job: job.to_owned(),
                epoch: checkpoint.epoch,
            }),
            _ => {
                records.insert(checkpoint.epoch, record);
                let epochs: Vec<u64> = records.keys().copied().collect();
                let expires = store.expire_when.as_ref().is_some_and(|(session, condition)| {
                    *session == self.session && condition(&epochs)
                });
                if expires {
                    drop(store);
                    self.expire();
                }
                Ok(())
            }
        }
    }

    fn checkpoints(&self, job: &str) -> CoordinatorResult<Vec<u64>> {
        validate_name("job", job)?;
        let store = self.call()?;
        Ok(store
            .checkpoints
            .get(job)
            .map_or_else(Vec::new, |records| records.keys().copied().collect()))
    }

    fn checkpoint(&self, job: &str, epoch: u64) -> CoordinatorResult<CompletedCheckpoint> {
        validate_name("job", job)?;
        let store = self.call()?;
        let record = store.checkpoints.get(job).and_then(|records| records.get(&epoch));
        let record = record
            .ok_or_else(|| CoordinatorError::NoSuchCheckpoint { job: job.to_owned(), epoch })?;
        decode(job, epoch, record)
    }

    fn latest_checkpoint(&self, job: &str) -> CoordinatorResult<Option<CompletedCheckpoint>> {
        validate_name("job", job)?;
        let store = self.call()?;
        let latest = store.checkpoints.get(job).and_then(|records| records.iter().next_back());
        latest.map(|(epoch, record)| decode(job, *epoch, record)).transpose()
    }

    fn prune(&self, job: &str, keep: usize) -> CoordinatorResult<Pruned> {
        validate_name("job", job)?;
        if keep == 0 {
            return Err(CoordinatorError::InvalidArgument("keep 0".into()));
        }
        let mut store = self.call()?;
        self.require_leader(&store)?;
        let mut pruned = Pruned::default();
        let Some(records) = store.checkpoints.get_mut(job) else { return Ok(pruned) };
        while records.len() > keep {
            let (epoch, record) = records.pop_first().expect("more than keep records");
            match decode(job, epoch, &record) {
                Ok(checkpoint) => pruned.checkpoints.push(checkpoint),
                Err(_) => pruned.corrupt_epochs.push(epoch),
            }
        }
        Ok(pruned)
    }
}

fn decode(job: &str, epoch: u64, record: &[u8]) -> CoordinatorResult<CompletedCheckpoint> {
    let path = format!("memory:/jobs/{job}/checkpoints/{epoch:019}");
    let checkpoint = CompletedCheckpoint::decode(record)
        .map_err(|reason| CoordinatorError::Corrupt { path: path.clone(), reason })?;
    if checkpoint.epoch != epoch {
        let reason = format!("holds epoch {}", checkpoint.epoch);
        return Err(CoordinatorError::Corrupt { path, reason });
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_live_campaign_leads_and_expiry_hands_over() {
        let first = MemoryCoordinator::new();
        let second = first.session();
        first.campaign("a").unwrap();
        second.campaign("b").unwrap();
        assert!(first.is_leader() && !second.is_leader());
        assert_eq!(second.leader_address().unwrap().as_deref(), Some("a"));
        let checkpoint = CompletedCheckpoint {
            epoch: first.next_checkpoint_epoch("job").unwrap(),
            timestamp_ms: 0,
            source_offsets: Vec::new(),
            state_files: Vec::new(),
            sink_positions: Vec::new(),
        };
        assert!(matches!(
            second.record_checkpoint("job", &checkpoint),
            Err(CoordinatorError::NotLeader { .. })
        ));
        first.record_checkpoint("job", &checkpoint).unwrap();
        first.expire();
        assert_eq!(
            first.record_checkpoint("job", &checkpoint),
            Err(CoordinatorError::SessionExpired)
        );
        second.await_leadership(Duration::from_secs(1)).unwrap();
        assert_eq!(second.latest_checkpoint("job").unwrap(), Some(checkpoint));
        assert_eq!(second.next_checkpoint_epoch("job").unwrap(), 2);
        second.fail_next_calls(1);
        assert!(second.checkpoints("job").unwrap_err().is_retryable());
        assert_eq!(second.checkpoints("job").unwrap(), vec![1]);
    }
}
