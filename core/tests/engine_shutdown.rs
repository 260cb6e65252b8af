//! How jobs end: the end of the stream flushes every window and joins every shard thread;
//! a panic in any operator stops the job with an error naming that operator, not a hang;
//! skew with tiny rings and a slow sink still completes with the same output.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use zabflow_core::engine::{
    Aggregate, CollectSink, Count, Emitter, Event, Generator, GeneratorConfig, Job, JobConfig,
    KeyScope, KeyedProcessFunction, Partition, Session, Sink, Source, SourceStatus, Stamped, Sum,
    Tumbling, Window, WindowResult,
};
use zabflow_core::Error;

fn config(shards: usize, ring_slots: usize, batch_records: usize) -> JobConfig {
    JobConfig { ring_slots, batch_records, ..JobConfig::new(shards) }
}

fn generator(events: u64, keys: u64) -> GeneratorConfig {
    GeneratorConfig {
        seed: 5,
        events,
        keys,
        events_per_second: 1000,
        out_of_orderness: 10,
        ..GeneratorConfig::default()
    }
}

fn value(event: &Event) -> i64 {
    event.value as i64
}

/// Serialises the tests of this file, so each sees only its own job's threads.
static ONE_JOB_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_job_at_a_time() -> MutexGuard<'static, ()> {
    ONE_JOB_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Shard threads of this process still alive (their names start `zabflow-shard`).
fn shard_threads_alive() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("procfs");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("zabflow-shard"))
        .count()
}

/// Counts how many instances were dropped.
struct Dropped<S>(S, Arc<AtomicUsize>);

impl<S> Drop for Dropped<S> {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

impl<S: Source> Source for Dropped<S> {
    type Record = S::Record;
    fn pull(&mut self, out: &mut Vec<Stamped<S::Record>>, max: usize) -> SourceStatus {
        self.0.pull(out, max)
    }
    fn out_of_orderness(&self) -> u64 {
        self.0.out_of_orderness()
    }
}

#[test]
fn the_end_of_the_stream_fires_every_window_and_joins_every_thread() {
    let _serial = one_job_at_a_time();
    let events = generator(50_000, 7);
    let sources_dropped = Arc::new(AtomicUsize::new(0));
    let dropped = sources_dropped.clone();
    // Windows longer than the whole stream and sessions that never close by themselves:
    // only the end of the stream can fire them.
    let output = Job::new(config(3, 16, 32))
        .source("generator", move |partition| {
            Dropped(Generator::new(events, partition), dropped.clone())
        })
        .key_by("by_key", |event: &Event| event.key)
        .window(Session::with_gap(1 << 40))
        .aggregate("count", Count)
        .sink("collect", |_| CollectSink::default())
        .run()
        .expect("job runs");
    assert_eq!(sources_dropped.load(Ordering::SeqCst), 3, "every shard dropped its source");
    assert_eq!(shard_threads_alive(), 0, "every shard thread has been joined");
    let mut counts: Vec<(u64, u64)> =
        output.sink_outputs.into_iter().flatten().map(|r| (r.key, r.value)).collect();
    counts.sort();
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    (0..events.events).for_each(|i| *expected.entry(events.event(i).record.key).or_default() += 1);
    assert_eq!(counts, expected.into_iter().collect::<Vec<_>>());
    assert!(output.shards.iter().all(|stats| stats.windows_fired == stats.results_out));
}

/// What a test job makes panic.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Culprit {
    Source,
    Map,
    KeyBy,
    Aggregate,
    Reduce,
    ProcessWindow,
    KeyedProcess,
    Sink,
}

const POISON: u64 = 42;

/// Panics on the poisoned key.
struct PanickingSource(Generator);

impl Source for PanickingSource {
    type Record = Event;
    fn pull(&mut self, out: &mut Vec<Stamped<Event>>, max: usize) -> SourceStatus {
        let status = self.0.pull(out, max);
        assert!(out.iter().all(|s| s.record.key != POISON), "source hit key {POISON}");
        status
    }
    fn out_of_orderness(&self) -> u64 {
        self.0.out_of_orderness()
    }
}

#[derive(Debug, Clone, Copy)]
struct PanickingCount;

impl Aggregate<Event> for PanickingCount {
    type Accumulator = u64;
    type Output = u64;
    fn create(&self) -> u64 {
        0
    }
    fn add(&self, accumulator: &mut u64, record: &Event) {
        assert!(record.key != POISON, "aggregate hit key {POISON}");
        *accumulator += 1;
    }
    fn merge(&self, accumulator: &mut u64, other: &u64) {
        *accumulator += other;
    }
    fn result(&self, accumulator: &u64) -> u64 {
        *accumulator
    }
}

struct PanickingProcess;

impl KeyedProcessFunction<u64, Event> for PanickingProcess {
    type Output = WindowResult<u64, u64>;
    fn process(&mut self, key: u64, _record: Stamped<Event>, _out: &mut Emitter<'_, Self::Output>) {
        assert!(key != POISON, "keyed process hit key {POISON}");
    }
}

struct PanickingSink;

impl Sink<WindowResult<u64, u64>> for PanickingSink {
    type Output = ();
    fn write(&mut self, result: &WindowResult<u64, u64>) {
        assert!(result.key != POISON, "sink hit key {POISON}");
    }
    fn finish(self) {}
}

fn poison_key(culprit: Culprit, key: u64) -> u64 {
    assert!(!(culprit == Culprit::KeyBy && key == POISON), "key_by hit key {POISON}");
    key
}

fn run_with_culprit(culprit: Culprit, shards: usize) -> Result<(), Error> {
    let events = generator(1_000_000, 100);
    let keyed = Job::new(config(shards, 8, 16))
        .source("events", move |partition: Partition| {
            PanickingSource(Generator::new(
                GeneratorConfig {
                    keys: if culprit == Culprit::Source { 100 } else { 42 },
                    ..events
                },
                partition,
            ))
        })
        .map("shift", move |event: Event| {
            assert!(!(culprit == Culprit::Map && event.key == 7), "map hit key 7");
            let key = if event.key == 7 { POISON } else { event.key };
            Event { key, value: event.value }
        })
        .key_by("by_key", move |event: &Event| poison_key(culprit, event.key));
    match culprit {
        Culprit::Aggregate => keyed
            .window(Tumbling::of(100))
            .aggregate("count", PanickingCount)
            .sink("collect", |_| CollectSink::default())
            .run()
            .map(drop),
        Culprit::Reduce => keyed
            .window(Tumbling::of(100))
            .reduce("reduce", |left: Event, right: &Event| {
                assert!(right.key != POISON, "reduce hit key {POISON}");
                left
            })
            .sink("collect", |_| CollectSink::default())
            .run()
            .map(drop),
        Culprit::ProcessWindow => keyed
            .window(Tumbling::of(100))
            .process("process", |key: &u64, _: Window, _: &[Event], out: &mut Emitter<'_, u64>| {
                assert!(*key != POISON, "process window hit key {POISON}");
                out.emit(*key);
            })
            .sink("collect", |_| CollectSink::default())
            .run()
            .map(drop),
        Culprit::KeyedProcess => keyed
            .process("keyed", |_: KeyScope| PanickingProcess)
            .sink("collect", |_| CollectSink::default())
            .run()
            .map(drop),
        Culprit::Sink => keyed
            .window(Tumbling::of(100))
            .aggregate("count", Count)
            .sink("out", |_| PanickingSink)
            .run()
            .map(drop),
        Culprit::Source | Culprit::Map | Culprit::KeyBy => keyed
            .window(Tumbling::of(100))
            .aggregate("count", Count)
            .sink("collect", |_| CollectSink::default())
            .run()
            .map(drop),
    }
}

#[test]
fn a_panicking_operator_stops_the_job_with_an_error_naming_it() {
    let _serial = one_job_at_a_time();
    let cases = [
        (Culprit::Source, "events", "source hit"),
        (Culprit::Map, "shift", "map hit"),
        (Culprit::KeyBy, "by_key", "key_by hit"),
        (Culprit::Aggregate, "count", "aggregate hit"),
        (Culprit::Reduce, "reduce", "reduce hit"),
        (Culprit::ProcessWindow, "process", "process window hit"),
        (Culprit::KeyedProcess, "keyed", "keyed process hit"),
        (Culprit::Sink, "out", "sink hit"),
    ];
    for (culprit, name, text) in cases {
        for shards in [1, 3] {
            match run_with_culprit(culprit, shards) {
                Err(Error::OperatorPanicked { operator, message, .. }) => {
                    assert_eq!(operator, name, "{culprit:?}");
                    assert!(message.contains(text), "{culprit:?}: {message}");
                }
                other => panic!("{culprit:?} on {shards} shards: expected a panic, got {other:?}"),
            }
            assert_eq!(shard_threads_alive(), 0, "{culprit:?}: threads joined after the error");
        }
    }
}

/// A sink that takes its time: a pause every few results.
struct SlowSink<R> {
    records: Vec<R>,
}

impl<R: Copy + Send + 'static> Sink<R> for SlowSink<R> {
    type Output = Vec<R>;
    fn write(&mut self, record: &R) {
        if self.records.len() % 64 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        self.records.push(*record);
    }
    fn finish(self) -> Vec<R> {
        self.records
    }
}

/// Passes every record through (so the sink sees as many results as there are records).
struct PassThrough;

impl KeyedProcessFunction<u64, Event> for PassThrough {
    type Output = Stamped<Event>;
    fn process(&mut self, _key: u64, record: Stamped<Event>, out: &mut Emitter<'_, Self::Output>) {
        out.emit(record);
    }
}

#[test]
fn all_keys_on_one_shard_with_two_slot_rings_and_a_slow_sink_completes_with_the_same_output() {
    let _serial = one_job_at_a_time();
    let events = GeneratorConfig { keys: 1, events_per_second: 10_000, ..generator(40_000, 1) };
    let mut expected: BTreeMap<u64, i64> = BTreeMap::new();
    for index in 0..events.events {
        let stamped = events.event(index);
        *expected.entry(stamped.timestamp - stamped.timestamp % 100).or_default() +=
            stamped.record.value as i64;
    }
    let output = Job::new(config(4, 2, 64))
        .source("generator", move |partition| Generator::new(events, partition))
        .key_by("one_key", |event: &Event| event.key)
        .window(Tumbling::of(100))
        .aggregate("sum", Sum(value))
        .sink("slow", |_| SlowSink { records: Vec::new() })
        .run()
        .expect("a skewed job with tiny rings completes");
    let received: Vec<u64> = output.shards.iter().map(|stats| stats.records_received).collect();
    assert_eq!(received.iter().filter(|&&count| count > 0).count(), 1, "{received:?}");
    let results: BTreeMap<u64, i64> =
        output.sink_outputs.into_iter().flatten().map(|r| (r.window_start, r.value)).collect();
    assert_eq!(results, expected);

    let passed = Job::new(config(4, 2, 64))
        .source("generator", move |partition| Generator::new(events, partition))
        .key_by("one_key", |event: &Event| event.key)
        .process("pass", |_| PassThrough)
        .sink("slow", |_| SlowSink { records: Vec::new() })
        .run()
        .expect("a skewed pass-through with a slow sink completes");
    let mut records: Vec<Stamped<Event>> = passed.sink_outputs.into_iter().flatten().collect();
    records.sort();
    let mut all: Vec<Stamped<Event>> = (0..events.events).map(|i| events.event(i)).collect();
    all.sort();
    assert_eq!(records, all);
    assert!(passed.shards.iter().any(|stats| stats.ring_occupancy_max >= 2));
}
