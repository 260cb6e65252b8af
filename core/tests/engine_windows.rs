//! The engine against a sequential reference: tumbling, sliding and session windows, each
//! with count / sum / min / max / avg / a user aggregate / reduce / a process-window
//! function, over random inputs with bounded disorder plus some late records, for 1 to 4
//! shards, several ring sizes and batch sizes, with and without allowed lateness.
//!
//! Which records are late depends on how the shards interleave, so the check is stated
//! against what the job says was late: every late record reaches the side output, and the
//! windows equal the reference over the other records. Without lateness each (key, window)
//! fires exactly once; with it, the last firing of each (key, window) is the reference.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use zabflow_core::engine::{
    Aggregate, Avg, CollectSink, Count, Emitter, Event, Job, JobConfig, Max, Min, Session, Sliding,
    Stamped, Sum, Tumbling, VecSource, Window, WindowResult,
};

type Key = u64;

/// A user-defined aggregate: count and sum of values together.
#[derive(Debug, Clone, Copy)]
struct CountAndSum;

impl Aggregate<Event> for CountAndSum {
    type Accumulator = (u64, u64);
    type Output = (u64, u64);
    fn create(&self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&self, accumulator: &mut (u64, u64), record: &Event) {
        accumulator.0 += 1;
        accumulator.1 += record.value;
    }
    fn merge(&self, accumulator: &mut (u64, u64), other: &(u64, u64)) {
        accumulator.0 += other.0;
        accumulator.1 += other.1;
    }
    fn result(&self, accumulator: &(u64, u64)) -> (u64, u64) {
        *accumulator
    }
}

/// How a test cuts the stream.
#[derive(Debug, Clone, Copy)]
enum Windows {
    Tumbling(u64),
    Sliding(u64, u64),
    Session(u64),
}

impl Windows {
    /// The windows (start, end) holding `timestamp`: the reference's own assignment.
    fn aligned_windows(self, timestamp: u64) -> Vec<(u64, u64)> {
        let (size, slide) = match self {
            Windows::Tumbling(size) => (size, size),
            Windows::Sliding(size, slide) => (size, slide),
            Windows::Session(_) => unreachable!("sessions are not aligned"),
        };
        (0..=timestamp / slide)
            .map(|k| (k * slide, k * slide + size))
            .filter(|&(start, end)| start <= timestamp && timestamp < end)
            .collect()
    }
}

/// The reference: (key, window start, window end) → the records of that window, grouped
/// sequentially by the plain definition of each window type.
fn reference_groups(
    records: &[Stamped<Event>],
    windows: Windows,
) -> BTreeMap<(Key, u64, u64), Vec<Event>> {
    let mut groups: BTreeMap<(Key, u64, u64), Vec<Event>> = BTreeMap::new();
    if let Windows::Session(gap) = windows {
        let mut by_key: BTreeMap<Key, Vec<Stamped<Event>>> = BTreeMap::new();
        for stamped in records {
            by_key.entry(stamped.record.key).or_default().push(*stamped);
        }
        for (key, mut stamped) in by_key {
            stamped.sort_by_key(|s| s.timestamp);
            let mut session: Vec<Stamped<Event>> = Vec::new();
            for record in stamped {
                let last = session.last().map(|s| s.timestamp);
                if last.is_some_and(|last| record.timestamp >= last + gap) {
                    close_session(&mut groups, key, gap, &mut session);
                }
                session.push(record);
            }
            close_session(&mut groups, key, gap, &mut session);
        }
    } else {
        for stamped in records {
            for (start, end) in windows.aligned_windows(stamped.timestamp) {
                groups.entry((stamped.record.key, start, end)).or_default().push(stamped.record);
            }
        }
    }
    groups
}

fn close_session(
    groups: &mut BTreeMap<(Key, u64, u64), Vec<Event>>,
    key: Key,
    gap: u64,
    session: &mut Vec<Stamped<Event>>,
) {
    if let (Some(first), Some(last)) = (session.first(), session.last()) {
        let records = session.iter().map(|s| s.record).collect();
        groups.insert((key, first.timestamp, last.timestamp + gap), records);
    }
    session.clear();
}

fn fold<A: Aggregate<Event>>(aggregate: &A, records: &[Event]) -> A::Output {
    let mut accumulator = aggregate.create();
    records.iter().for_each(|record| aggregate.add(&mut accumulator, record));
    aggregate.result(&accumulator)
}

fn value(event: &Event) -> i64 {
    event.value as i64
}

/// A commutative reduce: keeps the key, sums the values.
fn reduce_sum(left: Event, right: &Event) -> Event {
    Event { key: left.key, value: left.value + right.value }
}

/// A process-window function: one summary (count, sum, min) per window, order-independent.
fn summarise(key: &Key, window: Window, elements: &[Event], out: &mut Emitter<'_, Summary>) {
    let sum = elements.iter().map(|event| event.value).sum();
    let min = elements.iter().map(|event| event.value).min().expect("a window has elements");
    out.emit(Summary { key: *key, window, count: elements.len() as u64, sum, min });
}

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct Summary {
    key: Key,
    window: Window,
    count: u64,
    sum: u64,
    min: u64,
}

/// One test input: records, the disorder bound the source claims, a job shape.
#[derive(Debug, Clone)]
struct Case {
    records: Vec<Stamped<Event>>,
    bound: u64,
    windows: Windows,
    lateness: u64,
    config: JobConfig,
}

/// What one job gave: firings as (key, start, end, value) in emission order per shard,
/// and the late side output.
struct Run<V> {
    firings: Vec<(Key, u64, u64, V)>,
    late: Vec<Stamped<Event>>,
}

macro_rules! run_windowed {
    ($case:expr, $function:ident, $name:expr, $argument:expr) => {{
        let case: &Case = $case;
        let records: Arc<[Stamped<Event>]> = case.records.as_slice().into();
        let bound = case.bound;
        let keyed = Job::new(case.config)
            .source("vec", move |partition| VecSource::new(records.clone(), partition, bound))
            .key_by("by_key", |event: &Event| event.key);
        match case.windows {
            Windows::Tumbling(size) => collect_run(
                keyed
                    .window(Tumbling::of(size))
                    .allowed_lateness(case.lateness)
                    .late_sink("late", |_| CollectSink::default())
                    .$function($name, $argument)
                    .sink("collect", |_| CollectSink::default())
                    .run(),
            ),
            Windows::Sliding(size, slide) => collect_run(
                keyed
                    .window(Sliding::of(size, slide))
                    .allowed_lateness(case.lateness)
                    .late_sink("late", |_| CollectSink::default())
                    .$function($name, $argument)
                    .sink("collect", |_| CollectSink::default())
                    .run(),
            ),
            Windows::Session(gap) => collect_run(
                keyed
                    .window(Session::with_gap(gap))
                    .allowed_lateness(case.lateness)
                    .late_sink("late", |_| CollectSink::default())
                    .$function($name, $argument)
                    .sink("collect", |_| CollectSink::default())
                    .run(),
            ),
        }
    }};
}

type Output<R> = zabflow_core::engine::JobOutput<Vec<R>, Vec<Stamped<Event>>>;

fn collect_run<V: Copy>(
    output: Result<Output<WindowResult<Key, V>>, zabflow_core::Error>,
) -> Run<V> {
    let output = output.expect("job runs");
    let late: Vec<Stamped<Event>> = output.late_outputs.into_iter().flatten().collect();
    assert_eq!(late.len() as u64, output.shards.iter().map(|s| s.late_records).sum::<u64>());
    let firings = output
        .sink_outputs
        .into_iter()
        .flatten()
        .map(|r| (r.key, r.window_start, r.window_end, r.value))
        .collect();
    Run { firings, late }
}

fn collect_summaries(output: Result<Output<Summary>, zabflow_core::Error>) -> Run<(u64, u64, u64)> {
    let output = output.expect("job runs");
    let late = output.late_outputs.into_iter().flatten().collect();
    let firings = output
        .sink_outputs
        .into_iter()
        .flatten()
        .map(|s| (s.key, s.window.start, s.window.end, (s.count, s.sum, s.min)))
        .collect();
    Run { firings, late }
}

/// The records that were not late: `records` minus the multiset `late`.
fn accepted(records: &[Stamped<Event>], late: &[Stamped<Event>]) -> Vec<Stamped<Event>> {
    let mut late_count: BTreeMap<(u64, Event), usize> = BTreeMap::new();
    for stamped in late {
        *late_count.entry((stamped.timestamp, stamped.record)).or_default() += 1;
    }
    let mut kept = Vec::new();
    for stamped in records {
        match late_count.get_mut(&(stamped.timestamp, stamped.record)) {
            Some(count) if *count > 0 => *count -= 1,
            _ => kept.push(*stamped),
        }
    }
    assert!(late_count.values().all(|&count| count == 0), "a late record that was not sent");
    kept
}

/// Checks a run against the reference folded with `result`.
fn check<V: Copy + PartialEq + std::fmt::Debug>(
    case: &Case,
    run: Run<V>,
    result: impl Fn(&[Event]) -> V,
) -> Result<(), TestCaseError> {
    let kept = accepted(&case.records, &run.late);
    let expected: BTreeMap<(Key, u64, u64), V> = reference_groups(&kept, case.windows)
        .into_iter()
        .map(|(window, records)| (window, result(&records)))
        .collect();
    let mut last: BTreeMap<(Key, u64, u64), V> = BTreeMap::new();
    for (key, start, end, value) in &run.firings {
        let previous = last.insert((*key, *start, *end), *value);
        prop_assert!(
            previous.is_none() || case.lateness > 0,
            "({key}, [{start}, {end})) fired twice without allowed lateness"
        );
    }
    if let (Windows::Session(_), true) = (case.windows, case.lateness > 0) {
        // Late records may merge sessions that already fired: each final session fired,
        // and every firing lies inside a final session of its key.
        for (window, value) in &expected {
            prop_assert_eq!(last.get(window), Some(value), "session {:?}", window);
        }
        for (key, start, end) in last.keys() {
            let inside = expected.keys().any(|(k, s, e)| k == key && s <= start && end <= e);
            prop_assert!(inside, "({key}, [{start}, {end})) lies in no final session");
        }
    } else {
        prop_assert_eq!(last, expected);
    }
    Ok(())
}

fn check_every_function(case: &Case) -> Result<(), TestCaseError> {
    check(case, run_windowed!(case, aggregate, "count", Count), |records| records.len() as u64)?;
    check(case, run_windowed!(case, aggregate, "sum", Sum(value)), |r| fold(&Sum(value), r))?;
    check(case, run_windowed!(case, aggregate, "min", Min(value)), |r| fold(&Min(value), r))?;
    check(case, run_windowed!(case, aggregate, "max", Max(value)), |r| fold(&Max(value), r))?;
    check(case, run_windowed!(case, aggregate, "avg", Avg(value)), |r| fold(&Avg(value), r))?;
    check(case, run_windowed!(case, aggregate, "user", CountAndSum), |r| fold(&CountAndSum, r))?;
    check(case, run_windowed!(case, reduce, "reduce", reduce_sum), |records| {
        records.iter().skip(1).fold(records[0], reduce_sum)
    })?;
    let summaries = {
        let records: Arc<[Stamped<Event>]> = case.records.as_slice().into();
        let bound = case.bound;
        let keyed = Job::new(case.config)
            .source("vec", move |partition| VecSource::new(records.clone(), partition, bound))
            .key_by("by_key", |event: &Event| event.key);
        let output = match case.windows {
            Windows::Tumbling(size) => keyed
                .window(Tumbling::of(size))
                .allowed_lateness(case.lateness)
                .late_sink("late", |_| CollectSink::default())
                .process("summarise", summarise)
                .sink("collect", |_| CollectSink::default())
                .run(),
            Windows::Sliding(size, slide) => keyed
                .window(Sliding::of(size, slide))
                .allowed_lateness(case.lateness)
                .late_sink("late", |_| CollectSink::default())
                .process("summarise", summarise)
                .sink("collect", |_| CollectSink::default())
                .run(),
            Windows::Session(gap) => keyed
                .window(Session::with_gap(gap))
                .allowed_lateness(case.lateness)
                .late_sink("late", |_| CollectSink::default())
                .process("summarise", summarise)
                .sink("collect", |_| CollectSink::default())
                .run(),
        };
        collect_summaries(output)
    };
    check(case, summaries, |records| {
        let values = records.iter().map(|event| event.value);
        (records.len() as u64, values.clone().sum(), values.min().expect("not empty"))
    })
}

/// Records whose timestamps rise with jitter of at most `bound` below the running maximum
/// of every round-robin partition (the base never falls, so any split stays within bound),
/// plus about one in twenty thrown far behind: candidates for lateness.
fn records_strategy() -> impl Strategy<Value = (Vec<Stamped<Event>>, u64)> {
    (0u64..40).prop_flat_map(|bound| {
        let record = (0u64..4, 0u64..=bound, 0u64..12, 0u64..1000, 0u32..20, 0u64..200);
        (prop::collection::vec(record, 0..300), Just(bound)).prop_map(|(steps, bound)| {
            let mut base = 0;
            let records = steps
                .into_iter()
                .map(|(step, jitter, key, value, late_die, behind)| {
                    base += step;
                    let timestamp = if late_die == 0 {
                        base.saturating_sub(bound + 1 + behind)
                    } else {
                        base.saturating_sub(jitter)
                    };
                    Stamped { timestamp, record: Event { key, value } }
                })
                .collect();
            (records, bound)
        })
    })
}

fn windows_strategy() -> impl Strategy<Value = Windows> {
    prop_oneof![
        prop::sample::select(vec![1u64, 5, 16, 100]).prop_map(Windows::Tumbling),
        prop::sample::select(vec![(10u64, 5u64), (16, 4), (100, 30), (7, 3), (5, 10), (3, 1)])
            .prop_map(|(size, slide)| Windows::Sliding(size, slide)),
        prop::sample::select(vec![1u64, 5, 20]).prop_map(Windows::Session),
    ]
}

fn config(shards: usize, ring_slots: usize, batch_records: usize) -> JobConfig {
    JobConfig { ring_slots, batch_records, ..JobConfig::new(shards) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_window_type_and_function_equals_the_sequential_reference(
        (records, bound) in records_strategy(),
        windows in windows_strategy(),
        lateness in prop::sample::select(vec![0u64, 0, 15]),
        shards in 1usize..=4,
        ring_slots in prop::sample::select(vec![1usize, 2, 7, 64, 4096]),
        batch_records in prop::sample::select(vec![1usize, 3, 64]),
    ) {
        let case = Case { records, bound, windows, lateness, config: config(shards, ring_slots, batch_records) };
        check_every_function(&case)?;
    }
}

#[test]
fn records_behind_the_watermark_reach_the_late_side_output_exactly() {
    // One shard, one record per pull: the watermark each record meets is known exactly.
    let event = |timestamp, value| Stamped { timestamp, record: Event { key: 0, value } };
    let script = vec![event(1, 1), event(5, 2), event(12, 3), event(3, 4), event(25, 5)];
    let records: Arc<[Stamped<Event>]> = script.into();
    let output = Job::new(config(1, 4, 1))
        .source("scripted", move |partition| VecSource::new(records.clone(), partition, 0))
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(10))
        .late_sink("late", |_| CollectSink::default())
        .aggregate("count", Count)
        .sink("collect", |_| CollectSink::default())
        .run()
        .expect("job runs");
    assert_eq!(output.late_outputs, vec![vec![event(3, 4)]]);
    let mut results: Vec<_> =
        output.sink_outputs[0].iter().map(|r| (r.window_start, r.value)).collect();
    results.sort();
    assert_eq!(results, vec![(0, 2), (10, 1), (20, 1)]);
}
