//! The simulated disk of one server: its epochs, its transaction log, the snapshot the log
//! follows, and group-committed fsyncs whose latency the simulation chooses.
//!
//! The log is one vector: a durable prefix and an unsynced tail. An `Append` joins the tail;
//! an fsync covers the whole tail as it was when the fsync started (group commit) and, when
//! the simulation completes it, makes that much durable and yields the zxid to report with
//! [`Zab::persisted`](crate::zab::Zab::persisted). `PersistEpochs`, `Truncate` and
//! `InstallSnapshot` are durable at once, as the driver contract asks: a truncate syncs what
//! it keeps (so it may yield a report of its own) and cancels the fsync in flight. A crash
//! drops the unsynced tail.
//!
//! Every entry carries the hash chain of the history up to it ([`AppState`]), so "the state
//! replayed from this log up to zxid z" is one binary search, and two histories agree up to
//! z exactly when their chains at z are equal.

use std::sync::Arc;

use crate::zab::{Entry, Stored, Zxid};

/// The simulated application state: how far it has applied and a hash chain over every
/// entry applied, in order. Two states are equal exactly when they applied the same entries
/// (up to hash collisions), so comparing replicas costs two words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppState {
    /// The zxid of the last entry applied (0 for the empty state).
    pub zxid: Zxid,
    /// The hash chain over every entry applied.
    pub chain: u64,
}

/// Bytes of an encoded [`AppState`]: zxid and chain, little-endian.
const APP_STATE_BYTES: usize = 16;

impl AppState {
    /// The state after applying `entry` to this one.
    #[must_use]
    pub fn next(self, entry: &Entry) -> AppState {
        AppState { zxid: entry.zxid, chain: chain_next(self.chain, entry.zxid, &entry.data) }
    }

    /// The snapshot bytes of this state (what `SendSnapshot` ships).
    #[must_use]
    pub fn encode(self) -> Arc<[u8]> {
        let mut bytes = [0_u8; APP_STATE_BYTES];
        bytes[..8].copy_from_slice(&self.zxid.to_le_bytes());
        bytes[8..].copy_from_slice(&self.chain.to_le_bytes());
        Arc::from(&bytes[..])
    }

    /// The state a snapshot holds; `None` if the bytes are not one.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<AppState> {
        if bytes.len() != APP_STATE_BYTES {
            return None;
        }
        let zxid = Zxid::from_le_bytes(bytes[..8].try_into().ok()?);
        let chain = u64::from_le_bytes(bytes[8..].try_into().ok()?);
        Some(AppState { zxid, chain })
    }
}

/// The chain after appending (`zxid`, `data`) to a history whose chain is `chain`: FNV-1a
/// over the zxid and the data, seeded with the previous chain, then a SplitMix64 finaliser.
#[must_use]
pub fn chain_next(chain: u64, zxid: Zxid, data: &[u8]) -> u64 {
    let mut hash = chain ^ 0xcbf2_9ce4_8422_2325;
    for &byte in zxid.to_le_bytes().iter().chain(data) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// One log entry and the chain of the history up to and including it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub entry: Entry,
    pub chain: u64,
}

impl LogEntry {
    /// The state replayed up to this entry.
    #[must_use]
    pub fn state(&self) -> AppState {
        AppState { zxid: self.entry.zxid, chain: self.chain }
    }
}

/// An fsync in flight: it makes `log[..end]` durable when it completes.
#[derive(Debug, Clone, Copy)]
struct Fsync {
    end: usize,
    generation: u64,
}

/// One server's disk.
#[derive(Debug, Default)]
pub struct Disk {
    accepted_epoch: u32,
    current_epoch: u32,
    /// The snapshot the log follows (the empty state for a log that starts from nothing).
    base: AppState,
    log: Vec<LogEntry>,
    /// `log[..durable_len]` survives a crash.
    durable_len: usize,
    fsync: Option<Fsync>,
    fsync_generation: u64,
    /// The last zxid reported durable to the machine.
    reported: Zxid,
}

/// What a truncate did.
#[derive(Debug)]
pub struct Truncated {
    /// The entries it dropped, oldest first.
    pub removed: Vec<LogEntry>,
    /// A durability report the machine is owed (the truncate synced entries it had not yet
    /// been told about).
    pub report: Option<Zxid>,
}

impl Disk {
    /// The accepted and current epochs.
    #[must_use]
    pub fn epochs(&self) -> (u32, u32) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// The snapshot the log follows.
    #[must_use]
    pub fn base(&self) -> AppState {
        self.base
    }

    /// The zxid of the last entry, durable or not.
    #[must_use]
    pub fn last_zxid(&self) -> Zxid {
        self.log.last().map_or(self.base.zxid, |entry| entry.entry.zxid)
    }

    /// Entries after the base, durable or not.
    #[must_use]
    pub fn entry_count(&self) -> usize {
        self.log.len()
    }

    /// Entries that survive a crash.
    #[must_use]
    pub fn durable_len(&self) -> usize {
        self.durable_len
    }

    /// The state replayed from the whole log (what a restart loads).
    #[must_use]
    pub fn replay(&self) -> AppState {
        self.log.last().map_or(self.base, LogEntry::state)
    }

    /// The state replayed up to `zxid`: `None` if the log holds no entry with that zxid (or
    /// `zxid` is below the snapshot, which subsumes it).
    #[must_use]
    pub fn state_at(&self, zxid: Zxid) -> Option<AppState> {
        if zxid == self.base.zxid {
            return Some(self.base);
        }
        let index = self.log.binary_search_by_key(&zxid, |entry| entry.entry.zxid).ok()?;
        Some(self.log[index].state())
    }

    /// The entries with a zxid in (`after`, `upto`], oldest first.
    #[must_use]
    pub fn entries_between(&self, after: Zxid, upto: Zxid) -> &[LogEntry] {
        let start = self.log.partition_point(|entry| entry.entry.zxid <= after);
        let end = self.log.partition_point(|entry| entry.entry.zxid <= upto);
        &self.log[start..end.max(start)]
    }

    /// Persists the epochs.
    ///
    /// # Errors
    /// If an epoch would go down, or the current epoch would pass the accepted one.
    pub fn persist_epochs(&mut self, accepted: u32, current: u32) -> Result<(), String> {
        if accepted < self.accepted_epoch || current < self.current_epoch || current > accepted {
            return Err(format!(
                "epochs (accepted {}, current {}) persisted as (accepted {accepted}, current \
                 {current})",
                self.accepted_epoch, self.current_epoch
            ));
        }
        self.accepted_epoch = accepted;
        self.current_epoch = current;
        Ok(())
    }

    /// Appends entries to the unsynced tail.
    ///
    /// # Errors
    /// If the entries are empty or their zxids do not grow past the log's last.
    pub fn append(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        if entries.is_empty() {
            return Err("an empty Append".to_owned());
        }
        for entry in entries {
            let previous = self.log.last().map_or(self.base, LogEntry::state);
            if entry.zxid <= previous.zxid {
                return Err(format!(
                    "Append of {} after {}",
                    super::zxid_text(entry.zxid),
                    super::zxid_text(previous.zxid)
                ));
            }
            let chain = previous.next(&entry).chain;
            self.log.push(LogEntry { entry, chain });
        }
        Ok(())
    }

    /// Starts an fsync of the unsynced tail unless one is in flight or nothing is unsynced;
    /// returns its generation, to hand back to [`Disk::fsync_done`].
    pub fn start_fsync(&mut self) -> Option<u64> {
        if self.fsync.is_some() || self.durable_len == self.log.len() {
            return None;
        }
        self.fsync_generation += 1;
        let generation = self.fsync_generation;
        self.fsync = Some(Fsync { end: self.log.len(), generation });
        Some(generation)
    }

    /// The fsync `generation` completed: returns the zxid to report durable, if any (none for
    /// an fsync a truncate, snapshot or crash cancelled).
    pub fn fsync_done(&mut self, generation: u64) -> Option<Zxid> {
        let fsync = self.fsync.filter(|fsync| fsync.generation == generation)?;
        self.fsync = None;
        self.durable_len = fsync.end;
        self.report_durable()
    }

    /// Drops the entries after `after`; what remains is durable.
    ///
    /// # Errors
    /// If `after` is below the snapshot the log follows (the entries it subsumes cannot be
    /// dropped).
    pub fn truncate(&mut self, after: Zxid) -> Result<Truncated, String> {
        if after < self.base.zxid {
            return Err(format!(
                "Truncate after {} below the snapshot at {}",
                super::zxid_text(after),
                super::zxid_text(self.base.zxid)
            ));
        }
        let keep = self.log.partition_point(|entry| entry.entry.zxid <= after);
        let removed = self.log.split_off(keep);
        self.durable_len = self.log.len();
        self.fsync = None;
        self.reported = self.reported.min(after);
        let report = self.report_durable();
        Ok(Truncated { removed, report })
    }

    /// Replaces the log with a snapshot of `state` (durable at once).
    pub fn install_snapshot(&mut self, state: AppState) {
        self.base = state;
        self.log.clear();
        self.durable_len = 0;
        self.fsync = None;
        self.reported = state.zxid;
    }

    /// The power fails: the unsynced tail is lost.
    pub fn crash(&mut self) {
        self.log.truncate(self.durable_len);
        self.fsync = None;
        self.reported = self.last_zxid();
    }

    /// What a server restarting from this disk finds: its epochs and the last `recent_max`
    /// entries of its (durable) log, after the zxid of the entry before them.
    #[must_use]
    pub fn stored(&self, recent_max: usize) -> Stored {
        let durable = &self.log[..self.durable_len];
        let start = durable.len().saturating_sub(recent_max);
        let base_zxid = match start {
            0 => self.base.zxid,
            start => durable[start - 1].entry.zxid,
        };
        Stored {
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            base_zxid,
            recent: durable[start..].iter().map(|entry| entry.entry.clone()).collect(),
            // The only snapshots this disk holds are ones installed from a leader.
            installed_snapshot: self.base.zxid,
        }
    }

    fn report_durable(&mut self) -> Option<Zxid> {
        let durable = match self.durable_len {
            0 => self.base.zxid,
            len => self.log[len - 1].entry.zxid,
        };
        (durable > self.reported).then(|| {
            self.reported = durable;
            durable
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::make_zxid;

    fn entry(epoch: u32, counter: u32) -> Entry {
        Entry { zxid: make_zxid(epoch, counter), data: Arc::from(&counter.to_le_bytes()[..]) }
    }

    fn entries(epoch: u32, counters: std::ops::RangeInclusive<u32>) -> Vec<Entry> {
        counters.map(|counter| entry(epoch, counter)).collect()
    }

    #[test]
    fn group_commit_reports_the_batch_the_fsync_covered() {
        let mut disk = Disk::default();
        disk.append(entries(1, 1..=2)).unwrap();
        let first = disk.start_fsync().expect("unsynced entries");
        disk.append(entries(1, 3..=3)).unwrap();
        assert_eq!(disk.start_fsync(), None, "one fsync at a time");
        assert_eq!(disk.fsync_done(first), Some(make_zxid(1, 2)));
        let second = disk.start_fsync().expect("entry 3 is unsynced");
        assert_eq!(disk.fsync_done(second), Some(make_zxid(1, 3)));
        assert_eq!(disk.durable_len(), 3);
    }

    #[test]
    fn a_crash_loses_what_was_not_fsynced() {
        let mut disk = Disk::default();
        disk.append(entries(1, 1..=2)).unwrap();
        let fsync = disk.start_fsync().unwrap();
        assert_eq!(disk.fsync_done(fsync), Some(make_zxid(1, 2)));
        disk.append(entries(1, 3..=4)).unwrap();
        let lost = disk.start_fsync().unwrap();
        disk.crash();
        assert_eq!(disk.fsync_done(lost), None, "the fsync died with the server");
        assert_eq!(disk.last_zxid(), make_zxid(1, 2));
        let stored = disk.stored(usize::MAX);
        assert_eq!(stored.base_zxid, 0);
        assert_eq!(stored.recent.len(), 2);
        let tail = disk.stored(1);
        assert_eq!((tail.base_zxid, tail.recent.len()), (make_zxid(1, 1), 1));
    }

    #[test]
    fn truncate_syncs_what_it_keeps_and_cancels_the_fsync() {
        let mut disk = Disk::default();
        disk.append(entries(1, 1..=4)).unwrap();
        let fsync = disk.start_fsync().unwrap();
        let truncated = disk.truncate(make_zxid(1, 2)).unwrap();
        assert_eq!(truncated.removed.len(), 2);
        assert_eq!(truncated.report, Some(make_zxid(1, 2)));
        assert_eq!(disk.fsync_done(fsync), None);
        disk.crash();
        assert_eq!(disk.last_zxid(), make_zxid(1, 2), "the kept entries are durable");
        assert!(disk.truncate(make_zxid(1, 1)).unwrap().report.is_none(), "nothing new");
    }

    #[test]
    fn state_at_is_the_replay_of_the_prefix() {
        let mut disk = Disk::default();
        disk.append(entries(1, 1..=3)).unwrap();
        let mut state = AppState::default();
        for entry in entries(1, 1..=2) {
            state = state.next(&entry);
        }
        assert_eq!(disk.state_at(make_zxid(1, 2)), Some(state));
        assert_eq!(disk.state_at(make_zxid(1, 9)), None);
        assert_eq!(disk.state_at(0), Some(AppState::default()));
        assert_eq!(AppState::decode(&state.encode()), Some(state));
        assert_eq!(disk.entries_between(make_zxid(1, 1), make_zxid(1, 3)).len(), 2);
    }

    #[test]
    fn snapshot_replaces_the_log_and_bounds_truncation() {
        let mut disk = Disk::default();
        disk.append(entries(1, 1..=3)).unwrap();
        let snapshot = AppState { zxid: make_zxid(2, 5), chain: 7 };
        disk.install_snapshot(snapshot);
        assert_eq!(disk.replay(), snapshot);
        assert_eq!(disk.state_at(make_zxid(1, 2)), None, "subsumed by the snapshot");
        assert!(disk.truncate(make_zxid(1, 2)).is_err());
        disk.append(entries(2, 6..=6)).unwrap();
        assert!(disk.append(entries(2, 6..=6)).is_err(), "zxids grow");
        disk.crash();
        assert_eq!(disk.replay(), snapshot, "the unsynced entry is gone, the snapshot stays");
    }

    #[test]
    fn epochs_never_go_down() {
        let mut disk = Disk::default();
        disk.persist_epochs(2, 1).unwrap();
        assert!(disk.persist_epochs(1, 1).is_err());
        assert!(disk.persist_epochs(2, 3).is_err());
        disk.persist_epochs(3, 3).unwrap();
        assert_eq!(disk.epochs(), (3, 3));
    }
}
