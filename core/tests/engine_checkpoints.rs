//! Exactly-once checkpoints end to end, in one process, against the in-memory coordinator
//! (the ZooKeeper-protocol one is tested by the tools' multi-process tests).
//!
//! A "crash" here is the coordination session expiring under a running job: the job is
//! fenced and stops where it is, with output written past its last checkpoint, just as a
//! killed process leaves it. A new session then restores and finishes the job. Every test
//! compares the committed output with an uninterrupted run's, record for record.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zabflow_core::coordinator::Coordinator;
use zabflow_core::engine::{
    committed_decoded, committed_records, CheckpointSettings, CheckpointedOutput, Count, Event,
    GeneratorConfig, Job, JobConfig, LogPartitions, LogSink, LogSinkReport, Session, Stamped,
    Tumbling, WindowResult,
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

struct Setup {
    _dir: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
    state: PathBuf,
}

fn setup(events: u64, keys: u64, skew: f64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    write_input(&input, events, keys, skew, 2);
    let (output, state) = (dir.path().join("output"), dir.path().join("state"));
    Setup { input, output, state, _dir: dir }
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
    Job::new(config)
        .source("input", move |partition| input.source::<Event>(partition, 50))
        .map("slow", move |event| slow(event, spin))
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(100))
        .aggregate("count", Count)
        .sink("output", move |shard| LogSink::open(&output, shard))
        .run_checkpointed(settings, coordinator)
}

/// The uninterrupted, unchecked reference: the same job with a collecting sink.
fn reference(setup: &Setup) -> Vec<Counted> {
    let input = LogPartitions::open(&setup.input).unwrap();
    let output = Job::new(JobConfig::new(2))
        .source("input", move |partition| input.source::<Event>(partition, 50))
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(100))
        .aggregate("count", Count)
        .sink("collect", |_| zabflow_core::engine::CollectSink::default())
        .run()
        .unwrap();
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
    let session = memory.session();
    let watcher = session.clone();
    let done = Arc::new(AtomicBool::new(false));
    let watching = done.clone();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !watching.load(Ordering::Relaxed) && Instant::now() < deadline {
            if watcher.checkpoints("count").map_or(0, |c| c.len()) >= checkpoints {
                watcher.expire();
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let outcome =
        run_count(setup, JobConfig::new(shards), settings(setup, 20), Arc::new(session), 1500);
    done.store(true, Ordering::Relaxed);
    killer.join().unwrap();
    outcome
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
    for shards in [1, 2, 3] {
        // Each restore starts from the same files and the same single recorded checkpoint.
        restore_dir(&setup, &snapshot);
        let store = MemoryCoordinator::new();
        store.campaign("seed").unwrap();
        while store.next_checkpoint_epoch("count").unwrap() <= latest.epoch {}
        store.record_checkpoint("count", &latest).unwrap();
        store.resign().unwrap();
        let session = Arc::new(store.session());
        let outcome = run_count(&setup, JobConfig::new(shards), settings(&setup, 20), session, 0)
            .unwrap_or_else(|error| panic!("{shards} shards: {error}"));
        let failures = &outcome.restore_failures;
        assert_eq!(outcome.restored_from, Some(latest.epoch), "{shards} shards: {failures:?}");
        assert_eq!(committed(&setup), expected, "restored on {shards} shards");
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
