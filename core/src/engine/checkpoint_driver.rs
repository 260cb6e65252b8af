//! The machinery behind [`checkpoint`](super::checkpoint): the trigger the shards poll, the
//! state writer thread, the restore of a completed checkpoint, and the driver loop that
//! draws epochs, collects acknowledgements and records checkpoints.
//!
//! The driver is a state machine over three inputs (the clock, acknowledgements from the
//! writer thread, the shards' progress counters) whose only side effects are coordinator
//! calls and file deletions; it runs on the caller's thread while the shards run on theirs.

use super::checkpoint::{CheckpointReport, CheckpointSettings};
use super::keyed_state::KeyScope;
use super::output_commit::{write_commit_file, CommitPoint, SinkCommit};
use super::snapshot::{KeyGroupWriter, ShardSnapshot};
use super::state_file::{self, ChunkEntry, Expected, FileRef, LoadedStateFile, StateFileHeader};
use crate::constants::{COORDINATION_BACKOFF_MAX, COORDINATION_BACKOFF_MIN};
use crate::coordinator::{
    CompletedCheckpoint, Coordinator, CoordinatorError, CoordinatorResult, SinkPosition,
    SourceOffset, StateFile,
};
use crate::Error;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the driver and the shards share: the epoch to inject, progress counters.
#[derive(Debug)]
pub(crate) struct CheckpointTrigger {
    /// The newest epoch the shards are asked to inject (0: none yet).
    requested: AtomicU64,
    /// Shards that injected `requested` (or cannot any more: their input ended).
    injected: AtomicUsize,
    /// Shards whose loop has ended (every input ended, every window fired).
    finished: AtomicUsize,
    /// The final checkpoint's epoch, once drawn (0 before).
    final_epoch: AtomicU64,
    /// The newest checkpoint recorded by this run (0: none yet).
    last_recorded: AtomicU64,
}

impl CheckpointTrigger {
    fn new() -> CheckpointTrigger {
        CheckpointTrigger {
            requested: AtomicU64::new(0),
            injected: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            final_epoch: AtomicU64::new(0),
            last_recorded: AtomicU64::new(0),
        }
    }

    /// The newest checkpoint this run recorded (0: none). A shard whose previous snapshot
    /// is this epoch may take an incremental one: every shard snapshots every epoch, so no
    /// newer checkpoint can be recorded (and prune its files) before the shard's next one.
    pub(crate) fn last_recorded(&self) -> u64 {
        self.last_recorded.load(Ordering::Acquire)
    }

    /// The epoch to inject, polled by a shard once per loop (one relaxed load).
    #[inline]
    pub(crate) fn requested(&self) -> u64 {
        self.requested.load(Ordering::Acquire)
    }

    pub(crate) fn mark_injected(&self) {
        self.injected.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn mark_finished(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn final_epoch(&self) -> u64 {
        self.final_epoch.load(Ordering::Acquire)
    }
}

/// One shard's snapshot, on its way to the state writer thread.
pub(crate) struct SnapshotTask {
    pub epoch: u64,
    pub shard: usize,
    pub watermark: u64,
    /// The state; its unchanged chunks are in the files of the shard's snapshot `base`.
    pub state: ShardSnapshot,
    /// The shard's previous snapshot, when this one is incremental to it.
    pub base: Option<u64>,
    pub source_offsets: Vec<SourceOffset>,
    pub sink: Option<SinkCommit>,
    pub alignment: Duration,
    /// Time the shard spent copying its state and preparing its sink (its loop stood still).
    pub snapshot: Duration,
    /// Where the buffers go once written.
    pub spare: Sender<SpareBuffers>,
}

/// A shard's acknowledgement of an epoch, once its state file is durable.
struct ShardAck {
    epoch: u64,
    shard: usize,
    state_files: Vec<StateFile>,
    state_bytes: u64,
    /// Epochs of the earlier state files the new one refers to.
    referenced: Vec<u64>,
    source_offsets: Vec<SourceOffset>,
    sink: Option<SinkCommit>,
    alignment: Duration,
    snapshot: Duration,
}

enum WriterMessage {
    Ack(ShardAck),
    Failed { epoch: u64, shard: usize, error: Error },
}

/// A snapshot's buffers, written, on their way back to their shard.
pub(crate) type SpareBuffers = Vec<Vec<u8>>;

/// A shard's handle on the checkpoint machinery.
pub(crate) struct ShardCheckpointing {
    pub trigger: Arc<CheckpointTrigger>,
    pub scope: KeyScope,
    pub tasks: Sender<SnapshotTask>,
    /// The buffers of the shard's snapshots, back from the state writer for reuse.
    spare: (Sender<SpareBuffers>, Receiver<SpareBuffers>),
}

impl ShardCheckpointing {
    pub(crate) fn new(
        trigger: Arc<CheckpointTrigger>,
        scope: KeyScope,
        tasks: Sender<SnapshotTask>,
    ) -> ShardCheckpointing {
        ShardCheckpointing { trigger, scope, tasks, spare: mpsc::channel() }
    }

    /// Empty snapshot buffers for the shard's key groups: the last snapshot's, written and
    /// given back, when they are (their pages are mapped already: no page faults while the
    /// shard's loop stands still).
    pub(crate) fn writer(&self) -> KeyGroupWriter {
        match self.spare.1.try_iter().last() {
            Some(buffers) => KeyGroupWriter::reusing(&self.scope, buffers),
            None => KeyGroupWriter::new(&self.scope),
        }
    }

    /// Where the state writer gives the buffers back.
    pub(crate) fn spare_sender(&self) -> Sender<SpareBuffers> {
        self.spare.0.clone()
    }
}

/// Starts the state writer thread; it ends when every task sender is dropped.
fn spawn_writer(
    settings: &CheckpointSettings,
    key_groups: usize,
    aborted: Arc<Mutex<HashSet<u64>>>,
) -> Result<(Sender<SnapshotTask>, Receiver<WriterMessage>), Error> {
    let (task_sender, tasks) = mpsc::channel::<SnapshotTask>();
    let (ack_sender, acks) = mpsc::channel();
    let dir = settings.job_state_dir();
    let job = settings.job.clone();
    std::thread::Builder::new()
        .name("zabflow-state-writer".into())
        .spawn(move || {
            let mut tables = HashMap::new();
            for task in tasks {
                let (epoch, shard) = (task.epoch, task.shard);
                let message = match write_task(&dir, &job, key_groups, task, &aborted, &mut tables)
                {
                    Ok(ack) => WriterMessage::Ack(ack),
                    // The driver gave the epoch up (and deleted its directory) meanwhile.
                    Err(_) if aborted.lock().expect("poisoned").contains(&epoch) => continue,
                    Err(error) => WriterMessage::Failed { epoch, shard, error },
                };
                if ack_sender.send(message).is_err() {
                    break; // the driver is gone
                }
            }
        })
        .map_err(|error| Error::io("spawning the state writer thread", error))?;
    Ok((task_sender, acks))
}

/// Where the chunks of a shard's last state file lie: what its next, incremental,
/// snapshot refers to.
struct ChunkTable {
    epoch: u64,
    chunks: HashMap<u64, ChunkLocation>,
}

/// A chunk's sections, per key group of the shard (offset, length), in one state file.
#[derive(Clone)]
struct ChunkLocation {
    file: FileRef,
    sections: Vec<(u64, u64)>,
}

fn write_task(
    dir: &Path,
    job: &str,
    key_groups: usize,
    task: SnapshotTask,
    aborted: &Mutex<HashSet<u64>>,
    tables: &mut HashMap<usize, ChunkTable>,
) -> Result<ShardAck, Error> {
    let header = StateFileHeader {
        job: job.to_owned(),
        epoch: task.epoch,
        shard: task.shard as u32,
        key_groups: key_groups as u32,
        watermark: task.watermark,
    };
    let base = match task.base {
        None => None,
        Some(base) => match tables.get(&task.shard) {
            Some(table) if table.epoch == base => Some(table),
            _ => {
                return Err(Error::Checkpoint(format!(
                    "shard {} took an incremental snapshot on checkpoint {base}, whose state \
                     file the writer did not write",
                    task.shard
                )))
            }
        },
    };
    let ShardSnapshot { range, buffers, chunks } = &task.state;
    // The refs, in order of first use, and each chunk's place: this file (sections
    // relative to the start of the sections, for now) or a ref.
    let mut refs: Vec<FileRef> = Vec::new();
    let mut located: Vec<(u32, Option<&ChunkLocation>)> = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        if chunk.sections.is_some() {
            located.push((0, None));
            continue;
        }
        let location = base.and_then(|table| table.chunks.get(&chunk.id)).ok_or_else(|| {
            Error::Checkpoint(format!(
                "shard {} left chunk {} to its previous snapshot, which does not hold it",
                task.shard, chunk.id
            ))
        })?;
        let index = match refs.iter().position(|file| *file == location.file) {
            Some(index) => index,
            None => {
                refs.push(location.file);
                refs.len() - 1
            }
        };
        located.push((index as u32 + 1, Some(location)));
    }
    let mut index: Vec<(usize, Vec<ChunkEntry>)> = Vec::with_capacity(buffers.len());
    let mut base_offset = 0u64;
    for (local, buffer) in buffers.iter().enumerate() {
        let mut entries = Vec::new();
        for (chunk, &(file, location)) in chunks.iter().zip(&located) {
            let (offset, bytes) = match (&chunk.sections, location) {
                (Some(sections), _) => {
                    let (start, length) = sections[local];
                    (base_offset + start as u64, length as u64)
                }
                (None, Some(location)) => location.sections[local],
                (None, None) => unreachable!("located above"),
            };
            if bytes > 0 || chunk.list_empty {
                entries.push(ChunkEntry { id: chunk.id, file, offset, bytes });
            }
        }
        index.push((range.start + local, entries));
        base_offset += buffer.len() as u64;
    }
    let entries = index.iter().map(|(_, entries)| entries.len()).sum();
    let head_bytes = state_file::head_bytes(job, refs.len(), index.len(), entries) as u64;
    for entry in index.iter_mut().flat_map(|(_, entries)| entries.iter_mut()) {
        if entry.file == 0 {
            entry.offset += head_bytes;
        }
    }
    let group_starts: Vec<u64> = (buffers.iter())
        .scan(head_bytes, |at, buffer| {
            let start = *at;
            *at += buffer.len() as u64;
            Some(start)
        })
        .collect();
    let head = state_file::encode_head(&header, &refs, &index);
    let mut parts: Vec<&[u8]> = Vec::with_capacity(buffers.len() + 1);
    parts.push(&head);
    parts.extend(buffers.iter().map(Vec::as_slice));
    let relative = state_file::relative_path(task.epoch, task.shard);
    let path = dir.join(&relative);
    let (bytes, crc32c) = state_file::write_parts(&path, &parts)?;
    if aborted.lock().expect("aborted set poisoned").contains(&task.epoch) {
        // The driver gave the epoch up while the file was being written: leave nothing.
        let _ = std::fs::remove_dir_all(dir.join(state_file::epoch_dir_name(task.epoch)));
    }
    let written = FileRef { epoch: task.epoch, shard: task.shard as u32, bytes, crc32c };
    let mut table = ChunkTable { epoch: task.epoch, chunks: HashMap::new() };
    for (position, (chunk, &(_, location))) in chunks.iter().zip(&located).enumerate() {
        let location = match location {
            Some(location) => location.clone(),
            None => {
                let sections = chunk.sections.as_ref().expect("a chunk written");
                let sections = (sections.iter().zip(&group_starts))
                    .map(|(&(start, length), &at)| (at + start as u64, length as u64))
                    .collect();
                ChunkLocation { file: written, sections }
            }
        };
        if table.chunks.insert(chunk.id, location).is_some() {
            return Err(Error::Checkpoint(format!(
                "shard {} snapshot names chunk {} twice (chunk {position})",
                task.shard, chunk.id
            )));
        }
    }
    tables.insert(task.shard, table);
    let mut referenced: Vec<u64> = refs.iter().map(|file| file.epoch).collect();
    referenced.sort_unstable();
    referenced.dedup();
    let state_files = range
        .clone()
        .map(|group| StateFile { key_group: group as u32, path: relative.clone(), bytes, crc32c })
        .collect();
    let mut buffers = task.state.buffers;
    for buffer in &mut buffers {
        // Kept for the shard's next snapshot, but not far beyond what it holds now.
        buffer.shrink_to(buffer.len() + buffer.len() / 2);
        buffer.clear();
    }
    let _ = task.spare.send(buffers);
    Ok(ShardAck {
        epoch: task.epoch,
        shard: task.shard,
        state_files,
        state_bytes: bytes,
        referenced,
        source_offsets: task.source_offsets,
        sink: task.sink,
        alignment: task.alignment,
        snapshot: task.snapshot,
    })
}

/// Calls `call` until it succeeds, retrying retryable errors with exponential backoff for
/// at most `settings.coordination_retry_max`.
///
/// # Errors
/// [`Error::LeadershipLost`] for an expired session or lost leadership;
/// [`Error::Coordination`] naming `what` otherwise.
pub(crate) fn retry<T>(
    settings: &CheckpointSettings,
    what: &str,
    mut call: impl FnMut() -> CoordinatorResult<T>,
) -> Result<T, Error> {
    let deadline = Instant::now() + settings.coordination_retry_max;
    let mut backoff = COORDINATION_BACKOFF_MIN;
    loop {
        match call() {
            Ok(value) => return Ok(value),
            Err(CoordinatorError::SessionExpired | CoordinatorError::NotLeader { .. }) => {
                return Err(Error::LeadershipLost { job: settings.job.clone() })
            }
            Err(error) if error.is_retryable() && Instant::now() + backoff < deadline => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(COORDINATION_BACKOFF_MAX);
            }
            Err(source) => return Err(Error::Coordination { context: what.to_owned(), source }),
        }
    }
}

/// Campaigns and waits (as long as it takes: a standby waits here) until this process leads.
///
/// # Errors
/// As [`retry`].
pub(crate) fn await_leadership(
    settings: &CheckpointSettings,
    coordinator: &dyn Coordinator,
) -> Result<(), Error> {
    retry(settings, "campaigning for leadership", || coordinator.campaign(&settings.address))?;
    loop {
        let waited = retry(settings, "waiting for leadership", || {
            match coordinator.await_leadership(Duration::from_secs(1)) {
                Err(CoordinatorError::Timeout(..)) => Ok(false),
                other => other.map(|()| true),
            }
        })?;
        if waited {
            return Ok(());
        }
    }
}

/// A chunk of a restored key group: (id, index into the plan's files, offset, bytes).
type LocatedChunk = (u64, usize, u64, u64);

/// A completed checkpoint, verified and loaded, ready to be restored.
pub(crate) struct RestorePlan {
    pub epoch: u64,
    pub source_offsets: Vec<SourceOffset>,
    pub sink_positions: Vec<SinkPosition>,
    /// The least watermark of the checkpoint's shards.
    pub watermark: u64,
    files: Vec<LoadedStateFile>,
    /// For each key group: its chunks.
    chunks_of_group: Vec<Vec<LocatedChunk>>,
}

impl RestorePlan {
    /// The chunks of key group `group`: (chunk id, bytes), in the order written.
    pub(crate) fn chunks(&self, group: usize) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.chunks_of_group[group].iter().map(|&(id, file, offset, bytes)| {
            (id, self.files[file].slice(offset, bytes).expect("verified when the plan was made"))
        })
    }
}

/// A restore plan (if any checkpoint verifies), the failures fallen back past, the epochs
/// recorded.
pub(crate) type FoundPlan = (Option<RestorePlan>, Vec<String>, Vec<u64>);

/// The newest completed checkpoint of the job that verifies, with the failures of the
/// newer ones it fell back past (each naming its epoch and the bad file), and the epochs
/// recorded.
///
/// # Errors
/// As [`retry`] for the coordinator's calls.
pub(crate) fn find_restore_plan(
    settings: &CheckpointSettings,
    coordinator: &dyn Coordinator,
    key_groups: usize,
) -> Result<FoundPlan, Error> {
    let epochs = retry(settings, "listing checkpoints", || coordinator.checkpoints(&settings.job))?;
    let mut failures = Vec::new();
    for &epoch in epochs.iter().rev() {
        let checkpoint = match retry(settings, "reading a checkpoint", || {
            coordinator.checkpoint(&settings.job, epoch)
        }) {
            Ok(checkpoint) => checkpoint,
            Err(Error::Coordination {
                source: CoordinatorError::Corrupt { path, reason }, ..
            }) => {
                failures.push(format!("checkpoint {epoch}: record {path}: {reason}"));
                continue;
            }
            Err(error) => return Err(error),
        };
        match verify(settings, &checkpoint, key_groups) {
            Ok(plan) => return Ok((Some(plan), failures, epochs)),
            Err(error) => failures.push(format!("checkpoint {epoch}: {error}")),
        }
    }
    Ok((None, failures, epochs))
}

fn verify(
    settings: &CheckpointSettings,
    checkpoint: &CompletedCheckpoint,
    key_groups: usize,
) -> Result<RestorePlan, Error> {
    let mut chunks_of_group: Vec<Option<Vec<LocatedChunk>>> = vec![None; key_groups];
    let mut files: Vec<LoadedStateFile> = Vec::new();
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut primaries: Vec<usize> = Vec::new();
    let dir = settings.job_state_dir();
    for entry in &checkpoint.state_files {
        let group = entry.key_group as usize;
        if group >= key_groups || chunks_of_group[group].is_some() {
            return Err(Error::Checkpoint(format!(
                "key group {group} is out of the job's {key_groups} or listed twice"
            )));
        }
        let expected = Expected {
            job: &settings.job,
            epoch: checkpoint.epoch,
            key_groups,
            bytes: entry.bytes,
            crc32c: entry.crc32c,
        };
        let index = load_once(&dir, &entry.path, expected, &mut files, &mut by_path)?;
        if !primaries.contains(&index) {
            primaries.push(index);
        }
        let Some(chunks) = files[index].chunks(group).map(<[ChunkEntry]>::to_vec) else {
            return Err(Error::StateFile {
                path: files[index].path.clone(),
                reason: format!("does not hold key group {group}"),
            });
        };
        let mut located = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let holder = match chunk.file {
                0 => index,
                r => {
                    let file = files[index].refs[r as usize - 1];
                    let expected = Expected {
                        job: &settings.job,
                        epoch: file.epoch,
                        key_groups,
                        bytes: file.bytes,
                        crc32c: file.crc32c,
                    };
                    let path = file.relative_path();
                    let holder = load_once(&dir, &path, expected, &mut files, &mut by_path)?;
                    if files[holder].header.shard != file.shard {
                        return Err(Error::StateFile {
                            path: files[holder].path.clone(),
                            reason: format!(
                                "written by shard {}, referred to as shard {}'s",
                                files[holder].header.shard, file.shard
                            ),
                        });
                    }
                    holder
                }
            };
            if files[holder].slice(chunk.offset, chunk.bytes).is_none() {
                return Err(Error::StateFile {
                    path: files[holder].path.clone(),
                    reason: format!(
                        "chunk {} of key group {group} at {}+{} lies past its end",
                        chunk.id, chunk.offset, chunk.bytes
                    ),
                });
            }
            located.push((chunk.id, holder, chunk.offset, chunk.bytes));
        }
        chunks_of_group[group] = Some(located);
    }
    if let Some(missing) = chunks_of_group.iter().position(Option::is_none) {
        return Err(Error::Checkpoint(format!(
            "it names no state for key group {missing} (taken with another key group count?)"
        )));
    }
    let watermark = primaries.iter().map(|&file| files[file].header.watermark).min().unwrap_or(0);
    Ok(RestorePlan {
        epoch: checkpoint.epoch,
        source_offsets: checkpoint.source_offsets.clone(),
        sink_positions: checkpoint.sink_positions.clone(),
        watermark,
        files,
        chunks_of_group: chunks_of_group.into_iter().map(Option::unwrap_or_default).collect(),
    })
}

/// Loads the state file at `relative` (under `dir`) unless it is loaded already; its
/// index in `files`.
fn load_once(
    dir: &Path,
    relative: &str,
    expected: Expected<'_>,
    files: &mut Vec<LoadedStateFile>,
    by_path: &mut HashMap<String, usize>,
) -> Result<usize, Error> {
    if let Some(&index) = by_path.get(relative) {
        let file = &files[index];
        if file.header.epoch != expected.epoch || file.file_bytes() != expected.bytes {
            return Err(Error::StateFile {
                path: file.path.clone(),
                reason: format!(
                    "named with {} bytes of epoch {}, holds {} bytes of epoch {}",
                    expected.bytes,
                    expected.epoch,
                    file.file_bytes(),
                    file.header.epoch
                ),
            });
        }
        return Ok(index);
    }
    files.push(LoadedStateFile::load(&dir.join(relative), expected)?);
    by_path.insert(relative.to_owned(), files.len() - 1);
    Ok(files.len() - 1)
}

/// The epochs whose state files the state files of checkpoint `epoch` refer to (read from
/// their heads; a file that cannot be read refers to nothing: its checkpoint cannot be
/// restored anyway).
fn epoch_refs(settings: &CheckpointSettings, epoch: u64) -> Vec<u64> {
    let dir = settings.job_state_dir().join(state_file::epoch_dir_name(epoch));
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut epochs: Vec<u64> = entries
        .flatten()
        .filter(|entry| entry.file_name().to_str().is_some_and(|name| name.ends_with(".state")))
        .filter_map(|entry| state_file::read_refs(&entry.path()).ok())
        .flatten()
        .map(|file| file.epoch)
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    epochs
}

/// Deletes the state directories of epochs that are neither recorded checkpoints nor
/// referred to by one (left by a crash or an abort before this run). Returns, for each
/// recorded checkpoint, the epochs its state files refer to (for the driver's pruning).
pub(crate) fn remove_unrecorded_state(
    settings: &CheckpointSettings,
    recorded: &[u64],
) -> BTreeMap<u64, Vec<u64>> {
    let refs: BTreeMap<u64, Vec<u64>> =
        recorded.iter().map(|&epoch| (epoch, epoch_refs(settings, epoch))).collect();
    let needed: HashSet<u64> = refs.keys().chain(refs.values().flatten()).copied().collect();
    let Ok(entries) = std::fs::read_dir(settings.job_state_dir()) else { return refs };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(epoch) = name.to_str().and_then(crate::coordinator::parse_checkpoint_name) else {
            continue;
        };
        if !needed.contains(&epoch) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    refs
}

fn remove_epoch_state(settings: &CheckpointSettings, epoch: u64) {
    let _ =
        std::fs::remove_dir_all(settings.job_state_dir().join(state_file::epoch_dir_name(epoch)));
}

/// A checkpoint in flight.
struct InFlight {
    epoch: u64,
    started: Instant,
    acks: BTreeMap<usize, ShardAck>,
    is_final: bool,
}

/// What the driver hands back when the job ends.
#[derive(Debug, Default)]
pub(crate) struct DriverReport {
    pub completed: Vec<CheckpointReport>,
    pub aborted: Vec<u64>,
}

/// The checkpoint driver of one run.
pub(crate) struct Driver<'a> {
    settings: &'a CheckpointSettings,
    coordinator: &'a dyn Coordinator,
    shards: usize,
    pub trigger: Arc<CheckpointTrigger>,
    acks: Receiver<WriterMessage>,
    tasks: Option<Sender<SnapshotTask>>,
    aborted_set: Arc<Mutex<HashSet<u64>>>,
    in_flight: Vec<InFlight>,
    report: DriverReport,
    next_trigger: Instant,
    /// For each kept checkpoint: the epochs its state files refer to.
    refs: BTreeMap<u64, Vec<u64>>,
    /// Pruned checkpoints whose state directory a kept checkpoint still refers to.
    retained: BTreeSet<u64>,
}

impl<'a> Driver<'a> {
    /// A driver for `shards` shards, with its writer thread started; `refs`: the epochs
    /// each recorded checkpoint's state files refer to (from [`remove_unrecorded_state`]).
    ///
    /// # Errors
    /// If the writer thread cannot be started.
    pub(crate) fn new(
        settings: &'a CheckpointSettings,
        coordinator: &'a dyn Coordinator,
        shards: usize,
        key_groups: usize,
        refs: BTreeMap<u64, Vec<u64>>,
    ) -> Result<Driver<'a>, Error> {
        let aborted_set = Arc::new(Mutex::new(HashSet::new()));
        let (tasks, acks) = spawn_writer(settings, key_groups, aborted_set.clone())?;
        Ok(Driver {
            settings,
            coordinator,
            shards,
            trigger: Arc::new(CheckpointTrigger::new()),
            acks,
            tasks: Some(tasks),
            aborted_set,
            in_flight: Vec::new(),
            report: DriverReport::default(),
            next_trigger: Instant::now() + settings.interval,
            // Epochs kept before this run only because a recorded checkpoint refers to them.
            retained: refs.values().flatten().filter(|e| !refs.contains_key(e)).copied().collect(),
            refs,
        })
    }

    /// A task sender for a shard.
    pub(crate) fn task_sender(&self) -> Sender<SnapshotTask> {
        self.tasks.clone().expect("senders are handed out before the run")
    }

    /// Runs until the final checkpoint is recorded, or the job fails (`abort` raised by a
    /// shard) or loses leadership (then it raises `abort` itself).
    ///
    /// # Errors
    /// [`Error::LeadershipLost`], [`Error::Coordination`], a state writer's error.
    pub(crate) fn run(mut self, abort: &AtomicBool) -> Result<DriverReport, Error> {
        self.tasks = None; // the shards hold the only senders now
        let result = self.drive(abort);
        if result.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        for flight in std::mem::take(&mut self.in_flight) {
            self.abort_epoch(flight.epoch);
        }
        result.map(|()| self.report)
    }

    fn drive(&mut self, abort: &AtomicBool) -> Result<(), Error> {
        loop {
            if abort.load(Ordering::Relaxed) {
                return Ok(()); // a shard failed; the runtime reports why
            }
            if !self.coordinator.is_leader() {
                return Err(Error::LeadershipLost { job: self.settings.job.clone() });
            }
            let now = Instant::now();
            let wait =
                self.next_trigger.saturating_duration_since(now).min(Duration::from_millis(5));
            match self.acks.recv_timeout(wait) {
                Ok(message) => self.on_message(message)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if self.trigger.finished.load(Ordering::Acquire) < self.shards {
                        return Ok(()); // shards gone without finishing: they failed
                    }
                }
            }
            if self.complete_ready()? {
                return Ok(());
            }
            self.abort_timed_out();
            self.maybe_trigger()?;
        }
    }

    fn on_message(&mut self, message: WriterMessage) -> Result<(), Error> {
        match message {
            WriterMessage::Ack(ack) => {
                if let Some(flight) = self.in_flight.iter_mut().find(|f| f.epoch == ack.epoch) {
                    flight.acks.insert(ack.shard, ack);
                }
                Ok(())
            }
            WriterMessage::Failed { epoch, shard, error } => Err(Error::Checkpoint(format!(
                "shard {shard} could not write its state of checkpoint {epoch}: {error}"
            ))),
        }
    }

    /// Records every in-flight checkpoint all shards acknowledged, oldest first. Returns
    /// whether the final one was recorded.
    fn complete_ready(&mut self) -> Result<bool, Error> {
        while let Some(position) = self.in_flight.iter().position(|f| f.acks.len() == self.shards) {
            let flight = self.in_flight.remove(position);
            // Older checkpoints still in flight can no longer be useful.
            let (older, newer): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|f| f.epoch < flight.epoch);
            self.in_flight = newer;
            older.into_iter().for_each(|f| self.abort_epoch(f.epoch));
            let is_final = flight.is_final;
            self.record(flight)?;
            if is_final {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn record(&mut self, flight: InFlight) -> Result<(), Error> {
        let mut checkpoint = CompletedCheckpoint {
            epoch: flight.epoch,
            timestamp_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            source_offsets: Vec::new(),
            state_files: Vec::new(),
            sink_positions: Vec::new(),
        };
        let (mut alignment_max, mut snapshot_max) = (Duration::ZERO, Duration::ZERO);
        let (mut state_bytes, mut commits) = (0, Vec::new());
        let mut referenced = Vec::new();
        for ack in flight.acks.into_values() {
            referenced.extend(ack.referenced);
            checkpoint.source_offsets.extend(ack.source_offsets);
            checkpoint.state_files.extend(ack.state_files);
            if let Some(sink) = ack.sink {
                checkpoint.sink_positions.push(sink.position);
                commits.push(sink);
            }
            alignment_max = alignment_max.max(ack.alignment);
            snapshot_max = snapshot_max.max(ack.snapshot);
            state_bytes += ack.state_bytes;
        }
        checkpoint.source_offsets.sort_by_key(|offset| offset.partition);
        checkpoint.state_files.sort_by_key(|file| file.key_group);
        checkpoint.sink_positions.sort_by_key(|position| position.partition);
        let (settings, coordinator) = (self.settings, self.coordinator);
        retry(settings, "recording a checkpoint", || {
            coordinator.record_checkpoint(&settings.job, &checkpoint)
        })?;
        self.trigger.last_recorded.store(checkpoint.epoch, Ordering::Release);
        referenced.sort_unstable();
        referenced.dedup();
        self.refs.insert(checkpoint.epoch, referenced);
        for commit in &commits {
            let point = CommitPoint { epoch: checkpoint.epoch, end: commit.position.offset };
            write_commit_file(&commit.commit_file, point)?;
        }
        let pruned = retry(settings, "pruning checkpoints", || {
            coordinator.prune(&settings.job, settings.keep)
        })?;
        for old in pruned.checkpoints.iter().map(|c| c.epoch).chain(pruned.corrupt_epochs) {
            self.refs.remove(&old);
            self.retained.insert(old);
        }
        // A pruned checkpoint's files go once no kept checkpoint refers to them.
        let needed: HashSet<u64> =
            self.refs.keys().chain(self.refs.values().flatten()).copied().collect();
        self.retained.retain(|&old| {
            let keep = needed.contains(&old);
            if !keep {
                remove_epoch_state(settings, old);
            }
            keep
        });
        self.report.completed.push(CheckpointReport {
            epoch: checkpoint.epoch,
            duration: flight.started.elapsed(),
            alignment_max,
            snapshot_max,
            state_bytes,
            is_final: flight.is_final,
        });
        Ok(())
    }

    fn abort_epoch(&mut self, epoch: u64) {
        self.aborted_set.lock().expect("aborted set poisoned").insert(epoch);
        remove_epoch_state(self.settings, epoch);
        self.report.aborted.push(epoch);
    }

    fn abort_timed_out(&mut self) {
        let timeout = self.settings.timeout;
        let (late, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|f| !f.is_final && f.started.elapsed() > timeout);
        self.in_flight = live;
        late.into_iter().for_each(|f| self.abort_epoch(f.epoch));
    }

    /// Triggers the final checkpoint once every shard finished, or the next periodic one
    /// when it is due, the previous barrier is injected everywhere and there is room.
    fn maybe_trigger(&mut self) -> Result<(), Error> {
        let trigger = self.trigger.clone();
        if trigger.finished.load(Ordering::Acquire) == self.shards {
            if trigger.final_epoch() == 0 {
                let periodic: Vec<u64> = self.in_flight.iter().map(|f| f.epoch).collect();
                self.in_flight.clear();
                periodic.into_iter().for_each(|epoch| self.abort_epoch(epoch));
                let epoch = self.draw_epoch()?;
                self.in_flight.push(InFlight {
                    epoch,
                    started: Instant::now(),
                    acks: BTreeMap::new(),
                    is_final: true,
                });
                trigger.final_epoch.store(epoch, Ordering::Release);
            }
            return Ok(());
        }
        let all_injected =
            trigger.requested() == 0 || trigger.injected.load(Ordering::Acquire) == self.shards;
        if Instant::now() < self.next_trigger
            || !all_injected
            || self.in_flight.len() >= self.settings.max_concurrent
            || trigger.finished.load(Ordering::Acquire) > 0
        {
            return Ok(());
        }
        let epoch = self.draw_epoch()?;
        self.in_flight.push(InFlight {
            epoch,
            started: Instant::now(),
            acks: BTreeMap::new(),
            is_final: false,
        });
        trigger.injected.store(0, Ordering::Release);
        trigger.requested.store(epoch, Ordering::Release);
        self.next_trigger = Instant::now() + self.settings.interval;
        Ok(())
    }

    fn draw_epoch(&self) -> Result<u64, Error> {
        let (settings, coordinator) = (self.settings, self.coordinator);
        retry(settings, "drawing a checkpoint epoch", || {
            coordinator.next_checkpoint_epoch(&settings.job)
        })
    }
}
