//! Whole jobs: generated input against a reference on every shard count, the fused
//! stateless chain, config validation, processing-time windows, keyed state in a custom
//! keyed operator, idle sources and live metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zabflow_core::engine::{
    CollectSink, Count, CountingSink, Emitter, Event, Generator, GeneratorConfig, Job, JobConfig,
    JobMetrics, KeyScope, KeyedProcessFunction, MapState, Sink, Source, SourceStatus, Stamped,
    Tumbling, ValueState, VecSource, WindowResult,
};
use zabflow_core::Error;

fn config(shards: usize, ring_slots: usize, batch_records: usize) -> JobConfig {
    JobConfig { ring_slots, batch_records, ..JobConfig::new(shards) }
}

fn generator(events: u64, keys: u64) -> GeneratorConfig {
    GeneratorConfig {
        seed: 11,
        events,
        keys,
        events_per_second: 50_000,
        out_of_orderness: 200,
        ..GeneratorConfig::default()
    }
}

fn tumbling_counts(config: GeneratorConfig, size: u64) -> Vec<(u64, u64, u64)> {
    let mut counts: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for index in 0..config.events {
        let stamped = config.event(index);
        let start = stamped.timestamp - stamped.timestamp % size;
        *counts.entry((stamped.record.key, start)).or_default() += 1;
    }
    counts.into_iter().map(|((key, start), count)| (key, start, count)).collect()
}

#[test]
fn generator_jobs_match_the_reference_on_every_shard_count() {
    let events = generator(200_000, 1000);
    let expected = tumbling_counts(events, 1000);
    for shards in 1..=4 {
        let output = Job::new(config(shards, 256, 256))
            .source("generator", move |partition| Generator::new(events, partition))
            .key_by("by_key", |event: &Event| event.key)
            .window(Tumbling::of(1000))
            .aggregate("count", Count)
            .sink("collect", |_| CollectSink::default())
            .run()
            .expect("job runs");
        assert_eq!(output.records_pulled(), 200_000);
        let mut results: Vec<_> = output
            .sink_outputs
            .into_iter()
            .flatten()
            .map(|r: WindowResult<u64, u64>| (r.key, r.window_start, r.value))
            .collect();
        results.sort();
        assert_eq!(results, expected, "{shards} shards");
    }
}

#[test]
fn a_stateless_chain_fuses_map_filter_flat_map() {
    let records: Arc<[Stamped<Event>]> = (0..1000u64)
        .map(|index| Stamped { timestamp: index, record: Event { key: index, value: index } })
        .collect();
    let output = Job::new(config(2, 16, 32))
        .source("vec", move |partition| VecSource::new(records.clone(), partition, 0))
        .map("double", |event: Event| event.value * 2)
        .filter("multiple_of_3", |value: &u64| value % 3 == 0)
        .flat_map("twice", |value: u64, out: &mut Emitter<'_, u64>| {
            out.emit(value);
            out.emit(value + 1);
        })
        .sink("collect", |_| CollectSink::default())
        .run()
        .expect("job runs");
    let mut values: Vec<u64> =
        output.sink_outputs.into_iter().flatten().map(|stamped| stamped.record).collect();
    values.sort();
    let mut expected: Vec<u64> =
        (0..1000u64).map(|v| v * 2).filter(|v| v % 3 == 0).flat_map(|v| [v, v + 1]).collect();
    expected.sort();
    assert_eq!(values, expected);
}

#[test]
fn invalid_configs_are_errors() {
    for bad in [config(0, 4, 4), config(2, 0, 4), config(2, 4, 0), config(300, 4, 4)] {
        let result = Job::new(bad)
            .source("vec", |partition| VecSource::<u64>::new(Arc::from(vec![]), partition, 0))
            .sink("collect", |_| CollectSink::default())
            .run();
        assert!(matches!(result, Err(Error::InvalidJob(_))), "{bad:?}");
    }
    let result = Job::new(config(2, 4, 4))
        .source("vec", |partition| VecSource::<u64>::new(Arc::from(vec![]), partition, 0))
        .sink("collect", |_| CollectSink::default())
        .observe(&JobMetrics::new(3))
        .run();
    assert!(matches!(result, Err(Error::InvalidJob(_))), "metrics of the wrong shard count");
}

/// Gives one record per pull, `pause` apart in wall time.
struct Slow {
    records: Vec<Stamped<Event>>,
    pause: Duration,
}

impl Source for Slow {
    type Record = Event;
    fn pull(&mut self, out: &mut Vec<Stamped<Event>>, _max: usize) -> SourceStatus {
        std::thread::sleep(self.pause);
        out.extend(self.records.pop());
        if self.records.is_empty() {
            SourceStatus::Exhausted
        } else {
            SourceStatus::Active
        }
    }
    fn out_of_orderness(&self) -> u64 {
        0
    }
}

#[test]
fn processing_time_windows_count_every_record_once_in_wall_clock_windows() {
    let output = Job::new(config(2, 8, 4))
        .source("slow", |partition| Slow {
            records: (0..60)
                .map(|i| Stamped { timestamp: 0, record: Event { key: i % 3, value: 1 } })
                .filter(|_| partition.index == 0)
                .collect(),
            pause: Duration::from_millis(2),
        })
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(40).in_processing_time())
        .aggregate("count", Count)
        .sink("collect", |_| CollectSink::default())
        .run()
        .expect("job runs");
    let results: Vec<WindowResult<u64, u64>> = output.sink_outputs.into_iter().flatten().collect();
    assert_eq!(results.iter().map(|r| r.value).sum::<u64>(), 60);
    let mut windows = BTreeSet::new();
    for result in &results {
        assert_eq!(result.window_start % 40, 0);
        assert_eq!(result.window_end, result.window_start + 40);
        assert!(windows.insert((result.key, result.window_start)), "fired twice");
    }
    let starts: BTreeSet<u64> = results.iter().map(|r| r.window_start).collect();
    assert!(starts.len() >= 2, "120 ms of records span several 40 ms windows: {starts:?}");
}

/// Per key: a running count (`ValueState`) and the distinct values seen (`MapState`);
/// at the end of the stream, one final line per key read back by key group.
struct Distinct {
    scope: KeyScope,
    counts: ValueState<u64, u64>,
    seen: MapState<u64, u64, ()>,
}

impl KeyedProcessFunction<u64, Event> for Distinct {
    type Output = (u64, u64, u64, bool);

    fn process(&mut self, key: u64, record: Stamped<Event>, out: &mut Emitter<'_, Self::Output>) {
        let count = self.counts.get_or_insert_with(key, || 0);
        *count += 1;
        let count = *count;
        self.seen.insert(key, record.record.value, ());
        out.emit((key, count, self.seen.len_of(&key) as u64, false));
    }

    fn on_watermark(&mut self, watermark: u64, out: &mut Emitter<'_, Self::Output>) {
        if watermark < u64::MAX {
            return;
        }
        for group in self.scope.range() {
            for (key, count) in self.counts.key_group(group) {
                assert_eq!(self.scope.key_group_of(key), group);
                out.emit((*key, *count, self.seen.len_of(key) as u64, true));
            }
        }
    }
}

#[test]
fn keyed_state_follows_each_key_to_its_shard_and_key_group() {
    let events = generator(20_000, 50);
    let mut reference: BTreeMap<u64, (u64, BTreeSet<u64>)> = BTreeMap::new();
    for index in 0..events.events {
        let event = events.event(index).record;
        let entry = reference.entry(event.key).or_default();
        entry.0 += 1;
        entry.1.insert(event.value);
    }
    for shards in [1, 3] {
        let output = Job::new(config(shards, 64, 64))
            .source("generator", move |partition| Generator::new(events, partition))
            .key_by("by_key", |event: &Event| event.key)
            .process("distinct", |scope: KeyScope| Distinct {
                counts: ValueState::new(&scope),
                seen: MapState::new(&scope),
                scope,
            })
            .sink("collect", |_| CollectSink::default())
            .run()
            .expect("job runs");
        let outputs: Vec<_> = output.sink_outputs.into_iter().flatten().collect();
        let mut running: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut last: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for (key, count, distinct, is_final) in outputs {
            if is_final {
                assert!(last.insert(key, (count, distinct)).is_none(), "one final line per key");
            } else {
                running.entry(key).or_default().push(count);
            }
        }
        for (key, (count, values)) in &reference {
            let expected: Vec<u64> = (1..=*count).collect();
            assert_eq!(running[key], expected, "key {key}: counts run 1..=n in order");
            assert_eq!(last[key], (*count, values.len() as u64), "key {key}, {shards} shards");
        }
        assert_eq!(last.len(), reference.len());
    }
}

/// Gives `records`, then waits (active, empty) until `release` is set or `timeout` passes.
struct Waiting {
    records: Vec<Stamped<Event>>,
    release: Arc<AtomicBool>,
    timeout: Duration,
    started: Instant,
}

impl Source for Waiting {
    type Record = Event;
    fn pull(&mut self, out: &mut Vec<Stamped<Event>>, _max: usize) -> SourceStatus {
        out.append(&mut self.records);
        let released = self.release.load(Ordering::SeqCst);
        if released || self.started.elapsed() > self.timeout {
            SourceStatus::Exhausted
        } else {
            std::thread::sleep(Duration::from_millis(1));
            SourceStatus::Active
        }
    }
    fn out_of_orderness(&self) -> u64 {
        0
    }
}

/// Sets `fired` on its first result.
struct Flagging(Arc<AtomicBool>);

impl Sink<WindowResult<u64, u64>> for Flagging {
    type Output = ();
    fn write(&mut self, _result: &WindowResult<u64, u64>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn finish(self) {}
}

/// Runs a 2-shard job where only shard 0's source has records (timestamps 0..50, then
/// silence) and shard 1's source is silent; returns whether a window fired while both
/// sources were still open.
fn fires_while_a_source_is_silent(idleness: Option<Duration>) -> bool {
    let fired = Arc::new(AtomicBool::new(false));
    let (release, sink_flag) = (fired.clone(), fired.clone());
    let timeout = Duration::from_millis(600);
    let stream = Job::new(config(2, 16, 16)).source("waiting", move |partition| Waiting {
        records: (0..50)
            .map(|t| Stamped { timestamp: t, record: Event { key: t % 4, value: 1 } })
            .filter(|_| partition.index == 0)
            .collect(),
        release: release.clone(),
        timeout,
        started: Instant::now(),
    });
    let stream = match idleness {
        Some(timeout) => stream.with_idleness(timeout),
        None => stream,
    };
    let started = Instant::now();
    stream
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(10))
        .aggregate("count", Count)
        .sink("flag", move |_| Flagging(sink_flag.clone()))
        .run()
        .expect("job runs");
    started.elapsed() < timeout
}

#[test]
fn an_idle_source_does_not_hold_the_watermark_back() {
    assert!(fires_while_a_source_is_silent(Some(Duration::from_millis(20))));
    assert!(!fires_while_a_source_is_silent(None), "without idleness the silent source waits");
}

#[test]
fn live_metrics_count_records_windows_and_rings() {
    let events = generator(300_000, 1000);
    let metrics = JobMetrics::new(2);
    let sampled = metrics.clone();
    let done = Arc::new(AtomicBool::new(false));
    let done_flag = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut samples = 0;
        while !done_flag.load(Ordering::SeqCst) {
            let snapshot = sampled.snapshot();
            assert_eq!(snapshot.shards.len(), 2);
            samples += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        samples
    });
    let output = Job::new(config(2, 64, 64))
        .source("generator", move |partition| Generator::new(events, partition))
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(100))
        .aggregate("count", Count)
        .sink("count", |_| CountingSink::default())
        .observe(&metrics)
        .run()
        .expect("job runs");
    done.store(true, Ordering::SeqCst);
    assert!(sampler.join().unwrap() > 0);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.total(|shard| shard.records_pulled), 300_000);
    assert_eq!(snapshot.total(|shard| shard.records_received), 300_000);
    let results: u64 = output.sink_outputs.iter().sum();
    assert_eq!(snapshot.total(|shard| shard.results_out), results);
    assert!(snapshot.total(|shard| shard.windows_fired) > 0);
    assert!(snapshot.shards.iter().all(|shard| shard.watermark == u64::MAX));
    assert!(snapshot.shards.iter().any(|shard| shard.ring_occupancy_max > 0));
    assert!(snapshot.to_string().lines().count() == 3, "{snapshot}");
}
