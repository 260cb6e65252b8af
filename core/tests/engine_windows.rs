//! The engine against a sequential reference: tumbling count/sum/min/max over random
//! inputs with bounded disorder, for 1 to 4 shards and several ring sizes; skew with tiny
//! rings; late records; a panicking operator.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use zabflow_core::engine::{
    Aggregate, CollectSink, Count, Event, Generator, GeneratorConfig, Job, JobConfig, Max, Min,
    Source, SourceStatus, Stamped, Sum, Tumbling, VecSource, WindowResult,
};
use zabflow_core::Error;

type Key = u64;

/// The reference: every record folded sequentially, grouped by (key, window start).
fn reference<A: Aggregate<Event>>(
    records: &[Stamped<Event>],
    size: u64,
    aggregate: &A,
) -> Vec<(Key, u64, A::Output)> {
    let mut groups: BTreeMap<(Key, u64), A::Accumulator> = BTreeMap::new();
    for stamped in records {
        let start = stamped.timestamp - stamped.timestamp % size;
        let accumulator =
            groups.entry((stamped.record.key, start)).or_insert_with(|| aggregate.create());
        aggregate.add(accumulator, &stamped.record);
    }
    groups.into_iter().map(|((key, start), acc)| (key, start, aggregate.result(&acc))).collect()
}

/// Runs the windowed job over `records` (split round-robin over the shards).
fn run_job<A>(
    records: &[Stamped<Event>],
    config: JobConfig,
    bound: u64,
    size: u64,
    aggregate: A,
) -> Vec<(Key, u64, A::Output)>
where
    A: Aggregate<Event>,
    A::Output: PartialOrd,
{
    let records: Arc<[Stamped<Event>]> = records.into();
    let output = Job::new(config)
        .source("vec", move |partition| VecSource::new(records.clone(), partition, bound))
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(size))
        .aggregate("aggregate", aggregate)
        .sink("collect", |_| CollectSink::default())
        .run()
        .expect("job runs");
    assert_eq!(output.late_records(), 0, "disorder within the bound is never late");
    let mut results: Vec<WindowResult<Key, A::Output>> =
        output.sink_outputs.into_iter().flatten().collect();
    for result in &results {
        assert_eq!(result.window_end - result.window_start, size);
    }
    results.sort_by_key(|result| (result.key, result.window_start));
    let fired_once = results
        .windows(2)
        .all(|pair| (pair[0].key, pair[0].window_start) != (pair[1].key, pair[1].window_start));
    assert!(fired_once, "a (key, window) fired twice");
    results.into_iter().map(|r| (r.key, r.window_start, r.value)).collect()
}

/// Records whose timestamps rise with jitter of at most `bound` below the running maximum
/// of every round-robin partition (the base never falls, so any split stays within bound).
fn records_strategy() -> impl Strategy<Value = (Vec<Stamped<Event>>, u64)> {
    (0u64..40).prop_flat_map(|bound| {
        let record = (0u64..4, 0u64..=bound, 0u64..12, 0u64..1000);
        (prop::collection::vec(record, 0..300), Just(bound)).prop_map(|(steps, bound)| {
            let mut base = 0;
            let records = steps
                .into_iter()
                .map(|(step, jitter, key, value)| {
                    base += step;
                    let timestamp = base.saturating_sub(jitter);
                    Stamped { timestamp, record: Event { key, value } }
                })
                .collect();
            (records, bound)
        })
    })
}

fn config(shards: usize, ring_slots: usize, batch_records: usize) -> JobConfig {
    JobConfig { ring_slots, batch_records, ..JobConfig::new(shards) }
}

fn value(event: &Event) -> i64 {
    event.value as i64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tumbling_aggregates_equal_the_sequential_reference(
        (records, bound) in records_strategy(),
        shards in 1usize..=4,
        ring_slots in prop::sample::select(vec![1usize, 2, 7, 64, 4096]),
        batch_records in prop::sample::select(vec![1usize, 3, 64]),
        size in prop::sample::select(vec![1u64, 5, 16, 100]),
    ) {
        let config = config(shards, ring_slots, batch_records);
        prop_assert_eq!(
            run_job(&records, config, bound, size, Count),
            reference(&records, size, &Count)
        );
        prop_assert_eq!(
            run_job(&records, config, bound, size, Sum(value)),
            reference(&records, size, &Sum(value))
        );
        prop_assert_eq!(
            run_job(&records, config, bound, size, Min(value)),
            reference(&records, size, &Min(value))
        );
        prop_assert_eq!(
            run_job(&records, config, bound, size, Max(value)),
            reference(&records, size, &Max(value))
        );
    }
}

fn generated(config: GeneratorConfig) -> Vec<Stamped<Event>> {
    (0..config.events).map(|index| config.event(index)).collect()
}

#[test]
fn generator_jobs_match_the_reference_on_every_shard_count() {
    let generator = GeneratorConfig {
        seed: 11,
        events: 200_000,
        keys: 1000,
        events_per_second: 50_000,
        out_of_orderness: 200,
        rate_per_second: None,
    };
    let expected = reference(&generated(generator), 1000, &Count);
    for shards in 1..=4 {
        let output = Job::new(config(shards, 256, 256))
            .source("generator", move |partition| Generator::new(generator, partition))
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
fn all_keys_on_one_shard_with_two_slot_rings_completes_with_the_same_output() {
    let generator = GeneratorConfig {
        seed: 3,
        events: 100_000,
        keys: 1,
        events_per_second: 10_000,
        out_of_orderness: 50,
        rate_per_second: None,
    };
    let expected = reference(&generated(generator), 100, &Sum(value));
    let output = Job::new(config(4, 2, 64))
        .source("generator", move |partition| Generator::new(generator, partition))
        .key_by("one_key", |event: &Event| event.key)
        .window(Tumbling::of(100))
        .aggregate("sum", Sum(value))
        .sink("collect", |_| CollectSink::default())
        .run()
        .expect("a skewed job with tiny rings completes");
    let received: Vec<u64> = output.shards.iter().map(|stats| stats.records_received).collect();
    assert_eq!(received.iter().filter(|&&count| count > 0).count(), 1, "{received:?}");
    let mut results: Vec<_> = output
        .sink_outputs
        .into_iter()
        .flatten()
        .map(|r: WindowResult<u64, i64>| (r.key, r.window_start, r.value))
        .collect();
    results.sort();
    assert_eq!(results, expected);
}

/// Emits its records in the order given, claiming a disorder bound of 0, so any record
/// behind the running maximum of a fired window is late.
struct Scripted(Vec<Stamped<Event>>);

impl Source for Scripted {
    type Record = Event;
    fn pull(&mut self, out: &mut Vec<Stamped<Event>>, _max: usize) -> SourceStatus {
        // One record per pull, so a watermark follows every record.
        if !self.0.is_empty() {
            out.push(self.0.remove(0));
        }
        if self.0.is_empty() {
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
fn late_records_go_to_the_side_output_and_not_into_fired_windows() {
    let event = |timestamp, key| Stamped { timestamp, record: Event { key, value: 1 } };
    let script = vec![event(1, 0), event(5, 0), event(12, 0), event(3, 0), event(25, 0)];
    let output = Job::new(config(1, 4, 1))
        .source("scripted", move |_| Scripted(script.clone()))
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(10))
        .aggregate("count", Count)
        .sink("collect", |_| CollectSink::default())
        .run()
        .expect("job runs");
    assert_eq!(output.late_records(), 1);
    let mut results: Vec<_> =
        output.sink_outputs[0].iter().map(|r| (r.window_start, r.value)).collect();
    results.sort();
    assert_eq!(results, vec![(0, 2), (10, 1), (20, 1)]);
}

#[test]
fn a_panicking_map_stops_the_job_with_an_error_naming_it() {
    let generator = GeneratorConfig {
        seed: 5,
        events: 1_000_000,
        keys: 100,
        events_per_second: 1000,
        out_of_orderness: 10,
        rate_per_second: None,
    };
    for shards in [1, 3] {
        let result = Job::new(config(shards, 8, 16))
            .source("generator", move |partition| Generator::new(generator, partition))
            .map("explode_on_key_42", |event: Event| {
                assert!(event.key != 42, "key 42 is not allowed");
                event
            })
            .key_by("by_key", |event: &Event| event.key)
            .window(Tumbling::of(100))
            .aggregate("count", Count)
            .sink("collect", |_| CollectSink::default())
            .run();
        match result {
            Err(Error::OperatorPanicked { operator, message, .. }) => {
                assert_eq!(operator, "explode_on_key_42");
                assert!(message.contains("key 42 is not allowed"), "{message}");
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
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
        .flat_map("twice", |value: u64, out: &mut zabflow_core::engine::Emitter<'_, u64>| {
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
}
