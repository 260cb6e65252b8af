//! Exactly-once checkpoints end to end, in one process, against the in-memory coordinator
//! (the ZooKeeper-protocol one is tested by the tools' multi-process tests).
//!
//! A "crash" here is the coordination session expiring under a running job: the job is
//! fenced and stops where it is, with output written past its last checkpoint, just as a
//! killed process leaves it. A new session then restores and finishes the job. Every test
//! compares the committed output with an uninterrupted run's, record for record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zabflow_core::coordinator::{CompletedCheckpoint, Coordinator};
use zabflow_core::engine::state_file;
use zabflow_core::engine::{
    committed_decoded, committed_records, CheckpointSettings, CheckpointedOutput, Count, Event,
    GeneratorConfig, Job, JobConfig, LogPartitions, LogSink, LogSinkReport, Session, Sliding,
    Stamped, Tumbling, WindowResult,
};
use zabflow_core::log::{Durability, Log, LogOptions};
use zabflow_core::memory_coordinator::MemoryCoordinator;
use zabflow_core::Error;

type Counted = WindowResult<u64, u64>;

/// Writes `events` generated events into `partitions` input log partitions.
fn write_input(dir: &Path, events: u64, keys: u64, skew: f64, partitions: usize) {
    let config = GeneratorConfig {
        seed: 5,
        events,
        keys,
        skew,
        events_per_second: 10_000,
        out_of_orderness: 50,
        ..GeneratorConfig::default()
    };
    for partition in 0..partitions {
        let path = dir.join(format!("partition-{partition}"));
        let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
        let mut log = Log::open(&path, options).unwrap();
        let mut payloads = Vec::new();
        for index in (partition as u64..events).step_by(partitions) {
            let stamped = config.event(index);
            let mut bytes = Vec::new();
            zabflow_core::engine::LogRecord::encode(&stamped, &mut bytes);
            payloads.push(bytes);
        }
        for chunk in payloads.chunks(4096) {
            let batch: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            log.append(&batch).unwrap();
        }
        log.sync().unwrap();
    }
}

/// The sliding windows: 2 s every 100 ms. A pane stays open for 2 s of event time, so the
/// panes a checkpoint finds unchanged since the previous one are many, however fast the
/// job runs between two checkpoints (the input is 4–6 s of event time).
const SLIDING_SIZE: u64 = 2000;
const SLIDING_SLIDE: u64 = 100;

struct Setup {
    _dir: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
    state: PathBuf,
    /// Sliding windows (panes of 100 ms, incremental snapshots) instead of tumbling
    /// windows of 100 ms.
    sliding: bool,
}

fn setup(events: u64, keys: u64, skew: f64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    write_input(&input, events, keys, skew, 2);
    let (output, state) = (dir.path().join("output"), dir.path().join("state"));
    Setup { input, output, state, _dir: dir, sliding: false }
}

fn setup_sliding(events: u64, keys: u64) -> Setup {
    Setup { sliding: true, ..setup(events, keys, 0.0) }
}

fn settings(setup: &Setup, interval_ms: u64) -> CheckpointSettings {
    CheckpointSettings {
        interval: Duration::from_millis(interval_ms),
        ..CheckpointSettings::new("count", &setup.state)
    }
}

/// A slow map keeps the job running long enough to be interrupted mid-way.
fn slow(event: Event, spin: u32) -> Event {
    for _ in 0..spin {
        std::hint::spin_loop();
    }
    event
}

type Outcome = Result<CheckpointedOutput<Result<LogSinkReport, Error>>, Error>;

/// The windowed count over the input log, on `shards` shards, checkpointed.
fn run_count(
    setup: &Setup,
    config: JobConfig,
    settings: CheckpointSettings,
    coordinator: Arc<dyn Coordinator>,
    spin: u32,
) -> Outcome {
    let input = LogPartitions::open(&setup.input).unwrap();
    let output = setup.output.clone();
    let keyed = Job::new(config)
        .source("input", move |partition| input.source::<Event>(partition, 50))
        .map("slow", move |event| slow(event, spin))
        .key_by("by_key", |event: &Event| event.key);
    if setup.sliding {
        return keyed
            .window(Sliding::of(SLIDING_SIZE, SLIDING_SLIDE))
            .aggregate("count", Count)
            .sink("output", move |shard| LogSink::open(&output, shard))
            .run_checkpointed(settings, coordinator);
    }
    keyed
        .window(Tumbling::of(100))
        .aggregate("count", Count)
        .sink("output", move |shard| LogSink::open(&output, shard))
        .run_checkpointed(settings, coordinator)
}

/// The uninterrupted, unchecked reference: the same job with a collecting sink.
fn reference(setup: &Setup) -> Vec<Counted> {
    let input = LogPartitions::open(&setup.input).unwrap();
    let keyed = Job::new(JobConfig::new(2))
        .source("input", move |partition| input.source::<Event>(partition, 50))
        .key_by("by_key", |event: &Event| event.key);
    let collect = |_| zabflow_core::engine::CollectSink::default();
    let output = if setup.sliding {
        let windowed =
            keyed.window(Sliding::of(SLIDING_SIZE, SLIDING_SLIDE)).aggregate("count", Count);
        windowed.sink("collect", collect).run().unwrap()
    } else {
        let windowed = keyed.window(Tumbling::of(100)).aggregate("count", Count);
        windowed.sink("collect", collect).run().unwrap()
    };
    sorted(output.sink_outputs.into_iter().flatten().collect())
}

fn sorted(mut records: Vec<Counted>) -> Vec<Counted> {
    records.sort_by_key(|r| (r.key, r.window_start));
    records
}

fn committed(setup: &Setup) -> Vec<Counted> {
    sorted(committed_decoded::<Counted>(&setup.output).unwrap())
}

/// Runs the job until `checkpoints` checkpoints are recorded, then expires its session
/// (the crash). Returns what the run returned.
fn run_until_crash(
    setup: &Setup,
    shards: usize,
    checkpoints: usize,
    memory: &MemoryCoordinator,
) -> Outcome {
    let until = move |recorded: &[u64]| recorded.len() >= checkpoints;
    run_until_crash_with(setup, shards, until, memory, settings(setup, 20), 1500)
}

/// [`run_until_crash`] with its settings and spin, until `until` holds for the epochs
/// recorded.
fn run_until_crash_with(
    setup: &Setup,
    shards: usize,
    until: impl Fn(&[u64]) -> bool + Send + 'static,
    memory: &MemoryCoordinator,
    settings: CheckpointSettings,
    spin: u32,
) -> Outcome {
    let session = memory.session();
    session.expire_when(until);
    run_count(setup, JobConfig::new(shards), settings, Arc::new(session), spin)
}

#[test]
fn a_job_fenced_mid_way_resumes_and_commits_every_result_exactly_once() {
    let setup = setup(60_000, 200, 0.0);
    let expected = reference(&setup);
    let memory = MemoryCoordinator::new();
    let crashed = run_until_crash(&setup, 2, 2, &memory);
    assert!(matches!(crashed, Err(Error::LeadershipLost { .. })), "{crashed:?}");
    let partial = committed(&setup);
    assert!(partial.len() < expected.len(), "the crash came before the end");
    let held: u64 = committed_records(&setup.output).unwrap().iter().map(|p| p.records_held).sum();
    assert!(held >= partial.len() as u64);
    // Visible output is a prefix of the full output: every committed record is expected.
    assert!(partial.iter().all(|record| expected
        .binary_search_by_key(&(record.key, record.window_start), |r| (r.key, r.window_start))
        .is_ok()));
    let resumed =
        run_count(&setup, JobConfig::new(2), settings(&setup, 20), Arc::new(memory.session()), 0)
            .expect("the resumed run finishes");
    assert!(resumed.restored_from.is_some());
    assert!(resumed.completed.last().is_some_and(|c| c.is_final));
    assert_eq!(committed(&setup), expected);
}

#[test]
fn a_checkpoint_of_two_shards_restores_onto_one_two_and_three() {
    let setup = setup(40_000, 300, 0.0);
    let expected = reference(&setup);
    let memory = MemoryCoordinator::new();
    let _ = run_until_crash(&setup, 2, 1, &memory);
    let epochs = memory.checkpoints("count").unwrap();
    let snapshot = copy_dir(&setup);
    let latest = memory.checkpoint("count", *epochs.last().unwrap()).unwrap();
    restores_on(&setup, &snapshot, &latest, &[1, 2, 3], &expected);
}

/// Restores `latest` (with the files of `snapshot`) on each of `shard_counts` in turn and
/// checks each run resumes from it and commits `expected`. Each restore starts from the same
/// files and a store holding only that checkpoint.
fn restores_on(
    setup: &Setup,
    snapshot: &tempfile::TempDir,
    latest: &CompletedCheckpoint,
    shard_counts: &[usize],
    expected: &[Counted],
) {
    for &shards in shard_counts {
        restore_dir(setup, snapshot);
        let store = MemoryCoordinator::new();
        store.campaign("seed").unwrap();
        while store.next_checkpoint_epoch("count").unwrap() <= latest.epoch {}
        store.record_checkpoint("count", latest).unwrap();
        store.resign().unwrap();
        let session = Arc::new(store.session());
        let outcome = run_count(setup, JobConfig::new(shards), settings(setup, 20), session, 0)
            .unwrap_or_else(|error| panic!("{shards} shards: {error}"));
        let failures = &outcome.restore_failures;
        assert_eq!(outcome.restored_from, Some(latest.epoch), "{shards} shards: {failures:?}");
        assert_eq!(committed(setup), expected, "restored on {shards} shards");
    }
}

/// Copies output and state so several restores start from the same files.
fn copy_dir(setup: &Setup) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for (from, name) in [(&setup.output, "output"), (&setup.state, "state")] {
        copy_tree(from, &copy.path().join(name));
    }
    copy
}

fn restore_dir(setup: &Setup, copy: &tempfile::TempDir) {
    for (to, name) in [(&setup.output, "output"), (&setup.state, "state")] {
        let _ = std::fs::remove_dir_all(to);
        copy_tree(&copy.path().join(name), to);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_corrupt_state_file_falls_back_to_the_previous_checkpoint() {
    let setup = setup(60_000, 200, 0.0);
    let expected = reference(&setup);
    let memory = MemoryCoordinator::new();
    let _ = run_until_crash(&setup, 2, 2, &memory);
    let epochs = memory.checkpoints("count").unwrap();
    assert!(epochs.len() >= 2, "{epochs:?}");
    let latest = memory.checkpoint("count", *epochs.last().unwrap()).unwrap();
    let damaged = setup.state.join("count").join(&latest.state_files[0].path);
    let mut bytes = std::fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&damaged, bytes).unwrap();
    let outcome =
        run_count(&setup, JobConfig::new(2), settings(&setup, 20), Arc::new(memory.session()), 0)
            .expect("falls back and finishes");
    assert_eq!(outcome.restored_from, Some(epochs[epochs.len() - 2]));
    let failure = &outcome.restore_failures[0];
    assert!(
        failure.contains("crc32c") && failure.contains(&latest.state_files[0].path),
        "{failure}"
    );
    assert_eq!(committed(&setup), expected);
}

#[test]
fn a_timed_out_checkpoint_is_aborted_without_files_and_the_job_completes() {
    let setup = setup(30_000, 100, 0.0);
    let expected = reference(&setup);
    let settings = CheckpointSettings { timeout: Duration::from_nanos(1), ..settings(&setup, 10) };
    let outcome =
        run_count(&setup, JobConfig::new(2), settings, Arc::new(MemoryCoordinator::new()), 300)
            .expect("the job completes");
    assert!(!outcome.aborted.is_empty(), "no checkpoint timed out");
    assert_eq!(outcome.completed.len(), 1, "only the final checkpoint completes");
    let epochs: Vec<_> = std::fs::read_dir(setup.state.join("count")).unwrap().collect();
    assert_eq!(epochs.len(), 1, "only the final checkpoint's state is left");
    assert_eq!(committed(&setup), expected);
}

#[test]
fn alignment_with_skewed_keys_and_tiny_rings_does_not_deadlock() {
    let setup = setup(40_000, 1000, 1.3);
    let input = LogPartitions::open(&setup.input).unwrap();
    let reference_input = input.clone();
    let reference = Job::new(JobConfig::new(3))
        .source("input", move |partition| reference_input.source::<Event>(partition, 50))
        .key_by("by_key", |event: &Event| event.key)
        .window(Session::with_gap(20))
        .aggregate("count", Count)
        .sink("collect", |_| zabflow_core::engine::CollectSink::default())
        .run()
        .unwrap();
    let expected = sorted(reference.sink_outputs.into_iter().flatten().collect());
    let output = setup.output.clone();
    let config = JobConfig { ring_slots: 2, batch_records: 16, ..JobConfig::new(3) };
    let outcome = Job::new(config)
        .source("input", move |partition| input.source::<Event>(partition, 50))
        .key_by("by_key", |event: &Event| event.key)
        .window(Session::with_gap(20))
        .aggregate("count", Count)
        .sink("output", move |shard| LogSink::open(&output, shard))
        .run_checkpointed(settings(&setup, 10), Arc::new(MemoryCoordinator::new()))
        .expect("no deadlock");
    assert!(outcome.completed.len() >= 2, "{:?}", outcome.completed);
    let aligned: u64 = outcome.output.shards.iter().map(|s| s.barriers_aligned).sum();
    assert!(aligned >= 3 * (outcome.completed.len() as u64 - 1));
    assert_eq!(committed(&setup), expected);
}

#[test]
fn a_source_without_positions_is_refused_by_name() {
    let setup = setup(10, 5, 0.0);
    let output = setup.output.clone();
    let records: Arc<[Stamped<Event>]> = Arc::from(vec![]);
    let error = Job::new(JobConfig::new(1))
        .source("opaque", move |partition| {
            Opaque(zabflow_core::engine::VecSource::new(records.clone(), partition, 0))
        })
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(100))
        .aggregate("count", Count)
        .sink("output", move |shard| LogSink::open(&output, shard))
        .run_checkpointed(settings(&setup, 10), Arc::new(MemoryCoordinator::new()))
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("not checkpointable") && message.contains("opaque"), "{message}");
}

struct Opaque(zabflow_core::engine::VecSource<Event>);

impl zabflow_core::engine::Source for Opaque {
    type Record = Event;
    fn pull(
        &mut self,
        out: &mut Vec<Stamped<Event>>,
        max: usize,
    ) -> zabflow_core::engine::SourceStatus {
        self.0.pull(out, max)
    }
    fn out_of_orderness(&self) -> u64 {
        0
    }
}

/// The epochs the state files of checkpoint `epoch` refer to (incremental snapshots).
fn referenced_epochs(setup: &Setup, epoch: u64) -> Vec<u64> {
    refs_under(&setup.state, epoch).unwrap()
}

fn refs_under(state: &Path, epoch: u64) -> Option<Vec<u64>> {
    let dir = state.join("count").join(format!("{epoch:019}"));
    let mut epochs = Vec::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let refs = state_file::read_refs(&entry.ok()?.path()).ok()?;
        epochs.extend(refs.iter().map(|file| file.epoch));
    }
    epochs.sort_unstable();
    epochs.dedup();
    Some(epochs)
}

/// Until at least `checkpoints` epochs were drawn and the newest recorded checkpoint is
/// incremental (its state files refer to earlier ones).
fn incremental_after(setup: &Setup, checkpoints: u64) -> impl Fn(&[u64]) -> bool + Send {
    let state = setup.state.clone();
    move |recorded: &[u64]| {
        let Some(&newest) = recorded.last() else { return false };
        newest >= checkpoints && refs_under(&state, newest).is_some_and(|refs| !refs.is_empty())
    }
}

fn epoch_dirs(setup: &Setup) -> Vec<u64> {
    let mut epochs: Vec<u64> = std::fs::read_dir(setup.state.join("count"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    epochs.sort_unstable();
    epochs
}

#[test]
fn a_sliding_job_restores_from_incremental_snapshots_whose_base_was_pruned() {
    let setup = setup_sliding(60_000, 200);
    let expected = reference(&setup);
    let memory = MemoryCoordinator::new();
    // Keep one checkpoint: every older one is pruned, and only what the newest refers to
    // may stay on disk.
    let settings = CheckpointSettings { keep: 1, ..settings(&setup, 20) };
    let until = incremental_after(&setup, 6);
    let crashed = run_until_crash_with(&setup, 2, until, &memory, settings.clone(), 3000);
    assert!(matches!(crashed, Err(Error::LeadershipLost { .. })), "{crashed:?}");
    // The newest, and the one before if the crash came between a record and its pruning.
    let recorded = memory.checkpoints("count").unwrap();
    assert!(!recorded.is_empty() && recorded.len() <= 2, "{recorded:?}");
    let latest = *recorded.last().unwrap();
    let referenced = referenced_epochs(&setup, latest);
    assert!(!referenced.is_empty(), "checkpoint {latest} is not incremental");
    assert!(referenced.iter().all(|&epoch| epoch < latest));
    let on_disk = epoch_dirs(&setup);
    for epoch in &referenced {
        assert!(on_disk.contains(epoch), "{epoch} pruned though {latest} refers to it");
    }
    let needed: Vec<u64> =
        recorded.iter().flat_map(|&epoch| referenced_epochs(&setup, epoch)).collect();
    assert!(
        on_disk.iter().all(|e| *e > latest || recorded.contains(e) || needed.contains(e)),
        "left behind: {on_disk:?}, checkpoints {recorded:?} refer to {needed:?}"
    );
    let resumed = run_count(&setup, JobConfig::new(2), settings, Arc::new(memory.session()), 0)
        .expect("the resumed run finishes");
    assert_eq!(resumed.restored_from, Some(latest), "{:?}", resumed.restore_failures);
    assert_eq!(committed(&setup), expected);
    // Only the final checkpoint and what it refers to are left.
    let last = *memory.checkpoints("count").unwrap().last().unwrap();
    let mut left = referenced_epochs(&setup, last);
    left.push(last);
    assert_eq!(epoch_dirs(&setup), left);
}

#[test]
fn an_incremental_sliding_checkpoint_of_two_shards_restores_onto_three_and_one() {
    let setup = setup_sliding(40_000, 300);
    let expected = reference(&setup);
    let memory = MemoryCoordinator::new();
    let until = incremental_after(&setup, 3);
    let crashed = run_until_crash_with(&setup, 2, until, &memory, settings(&setup, 20), 3000);
    assert!(matches!(crashed, Err(Error::LeadershipLost { .. })), "{crashed:?}");
    let epochs = memory.checkpoints("count").unwrap();
    let latest = memory.checkpoint("count", *epochs.last().unwrap()).unwrap();
    assert!(!referenced_epochs(&setup, latest.epoch).is_empty(), "not incremental");
    let snapshot = copy_dir(&setup);
    restores_on(&setup, &snapshot, &latest, &[3, 1], &expected);
}

#[test]
fn a_missing_referenced_state_file_fails_the_checkpoint_by_name() {
    let setup = setup_sliding(40_000, 200);
    let expected = reference(&setup);
    let memory = MemoryCoordinator::new();
    let until = incremental_after(&setup, 3);
    let crashed = run_until_crash_with(&setup, 2, until, &memory, settings(&setup, 20), 3000);
    assert!(matches!(crashed, Err(Error::LeadershipLost { .. })), "{crashed:?}");
    let latest = *memory.checkpoints("count").unwrap().last().unwrap();
    let referenced = referenced_epochs(&setup, latest);
    let gone = *referenced.first().expect("an incremental checkpoint");
    std::fs::remove_dir_all(setup.state.join("count").join(format!("{gone:019}"))).unwrap();
    let outcome =
        run_count(&setup, JobConfig::new(2), settings(&setup, 20), Arc::new(memory.session()), 0)
            .expect("falls back and finishes");
    assert_ne!(outcome.restored_from, Some(latest));
    let failure = &outcome.restore_failures[0];
    assert!(
        failure.contains(&format!("{gone:019}/shard-")) && failure.contains("cannot be read"),
        "{failure}"
    );
    assert_eq!(committed(&setup), expected);
}
