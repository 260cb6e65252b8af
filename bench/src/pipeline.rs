//! The `pipeline` scenario: whole stream jobs on the engine, end to end.
//!
//! Four jobs, each at 1 shard and at every core, read the engine's seeded generator and
//! end in a counting probe sink:
//!
//! - `stateless`: map + filter, fused into one loop; records never leave their shard
//!   (exchange `pipeline`, no rings);
//! - `tumbling-count`: `key_by` over 100k keys, 1 s tumbling windows, `Count`;
//! - `sliding-count`: the same keys, 10 s windows every 1 s (pane-based: one state update
//!   per record, ten panes merged per firing);
//! - `session-count`: the same keys, sessions closed by 20 ms without an event (at 10 M
//!   events per second of event time a key sees an event every 10 ms on average).
//!
//! **Throughput** runs go flat out: generated events over the job's wall time, from `run` to
//! the last shard joined (thread start, window flushes and end of stream included). The
//! generator costs a hash per event and is part of the measured work, as a source is in
//! any real job. Each keyed job runs twice in the same report: over the engine's `rtrb`
//! mesh (`target: zabflow`) and over a mesh of bounded `crossbeam-channel` channels moved
//! one item at a time (`target: baseline`), with the ratio `<job>/shards=N/rtrb/crossbeam`.
//! Records of a shard's own key groups skip the exchange, so at 1 shard the two are the
//! same job and the ratio measures only the noise; it means something from 2 shards on.
//! The sources are aligned (`drift_max_ms`), so a source that gets more CPU cannot run
//! seconds of event time ahead of the others and inflate the window state.
//!
//! **Latency** runs pace the generator at a fixed rate (event time advancing with wall
//! time, every partition's clock started at one shared instant) and record, in an
//! HdrHistogram per series (`.hgrm`), for a window result: the time it reached the sink
//! minus the due time of the first event that let the window fire (the event at
//! `window end + out-of-orderness`, so the bound the job waits for by design is not counted);
//! for the stateless chain: the time a record reached the sink minus its due time, one
//! record in 64. Windows flushed by the end of the stream are not counted. The latency
//! run's percentiles go into the throughput series of the same job (`latency_us`, `hgrm`).
//!
//! Each series also carries the peak RSS of its run (`peak_rss_bytes`, the process's high
//! water mark reset before the run), each shard's final statistics and a few samples of
//! the job's live metrics (records pulled, ring occupancy, watermark lag).

mod crossbeam_exchange;

pub use crossbeam_exchange::CrossbeamExchange;

use crate::constants::{
    PIPELINE_EVENTS_DEFAULT, PIPELINE_EVENTS_MAX, PIPELINE_EVENTS_QUICK, PIPELINE_EVENTS_SUITE,
    PIPELINE_EVENT_TIME_DENSITY, PIPELINE_KEYS, PIPELINE_WINDOW_MS,
};
use crate::error::{BenchError, Result};
use crate::machine;
use crate::progress::Progress;
use crate::report::{latency_histogram, Report, Series, Target, Unit};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zabflow_core::engine::{
    Count, Event, Exchange, Generator, GeneratorConfig, Job, JobConfig, JobMetrics, JobOutput,
    Partition, RtrbExchange, Session, ShardStats, Sink, Sliding, Source, SourceStatus, Stamped,
    Tumbling, WindowResult,
};

/// Size and slide of the sliding-window job, in ms.
const SLIDING_SIZE_MS: u64 = 10_000;
const SLIDING_SLIDE_MS: u64 = 1_000;
/// Silence that closes a session of the session-window job, in ms.
const SESSION_GAP_MS: u64 = 20;
/// Disorder of the generated timestamps, in ms.
const OUT_OF_ORDERNESS_MS: u64 = 100;
/// Watermark alignment of every job: the most a source runs ahead of the slowest, in ms.
const DRIFT_MAX_MS: u64 = 500;
/// Pace of the latency runs (whole job), events per second, at most; a job is paced at
/// half the throughput its flat-out run measured if that is lower, so that the latency
/// measured is the engine's, not a queue growing behind an overloaded job.
const LATENCY_RATE_PER_S: u64 = 2_000_000;
/// The session job, the slowest per event, runs this fraction of the events.
const SESSION_EVENTS_DIVISOR: u64 = 10;
/// Length of each latency run, of each in the default suite, and of each in `--quick`.
const LATENCY_RUN: Duration = Duration::from_secs(3);
const LATENCY_RUN_SUITE: Duration = Duration::from_secs(1);
const LATENCY_RUN_QUICK: Duration = Duration::from_millis(600);
/// The stateless latency run stamps one record in this many (a power of two).
const STATELESS_LATENCY_SAMPLE_EVERY: u64 = 64;
const _: () = assert!(STATELESS_LATENCY_SAMPLE_EVERY.is_power_of_two());
/// How often a throughput run samples the job's live metrics.
const METRICS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// Metrics samples kept per series at most (the run's first ones).
const METRICS_SAMPLES_MAX: usize = 64;

/// Knobs of the pipeline scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Events each throughput series generates (over all shards).
    pub events: u64,
    /// Shard counts to measure each job at.
    pub shard_counts: Vec<usize>,
    /// Slots of every exchange ring.
    pub ring_slots: usize,
    /// Records a shard pulls from its source at once.
    pub batch_records: usize,
    /// Length of each latency run; zero skips them.
    pub latency_run: Duration,
}

impl PipelineConfig {
    /// The default run (1 shard and every core), or the short `--quick` one.
    pub fn new(quick: bool) -> PipelineConfig {
        let defaults = JobConfig::new(1);
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        let mut shard_counts = vec![1, cores.max(1)];
        shard_counts.dedup();
        PipelineConfig {
            events: if quick { PIPELINE_EVENTS_QUICK } else { PIPELINE_EVENTS_DEFAULT },
            shard_counts,
            ring_slots: defaults.ring_slots,
            batch_records: defaults.batch_records,
            latency_run: if quick { LATENCY_RUN_QUICK } else { LATENCY_RUN },
        }
    }

    /// The default suite's run: every job and shard count of [`PipelineConfig::new`], with
    /// a tenth of the events and 1 s latency runs, so that the step takes tens of seconds
    /// rather than the minutes a full run takes on a loaded 2-core machine; `quick` as in
    /// [`PipelineConfig::new`].
    pub fn suite(quick: bool) -> PipelineConfig {
        let mut config = PipelineConfig::new(quick);
        if !quick {
            config.events = PIPELINE_EVENTS_SUITE;
            config.latency_run = LATENCY_RUN_SUITE;
        }
        config
    }

    /// # Errors
    /// [`BenchError::Param`] naming the knob out of bounds.
    pub fn validate(&self) -> Result<()> {
        if self.events == 0 || self.events > PIPELINE_EVENTS_MAX {
            let events = self.events;
            return Err(BenchError::Param(format!(
                "pipeline events {events} must be in 1..={PIPELINE_EVENTS_MAX}"
            )));
        }
        if self.shard_counts.is_empty() {
            return Err(BenchError::Param("pipeline needs at least one shard count".into()));
        }
        for &shards in &self.shard_counts {
            self.job_config(shards).validate()?;
        }
        Ok(())
    }

    fn job_config(&self, shards: usize) -> JobConfig {
        JobConfig {
            ring_slots: self.ring_slots,
            batch_records: self.batch_records,
            drift_max_ms: Some(DRIFT_MAX_MS),
            ..JobConfig::new(shards)
        }
    }

    fn generator(&self, job: PipelineJob) -> GeneratorConfig {
        let divisor = if job == PipelineJob::SessionCount { SESSION_EVENTS_DIVISOR } else { 1 };
        GeneratorConfig {
            seed: 1,
            events: (self.events / divisor).max(1),
            keys: PIPELINE_KEYS,
            skew: 0.0,
            events_per_second: PIPELINE_EVENT_TIME_DENSITY,
            out_of_orderness: OUT_OF_ORDERNESS_MS,
            rate_per_second: None,
            pace_from: None,
        }
    }

    /// The generator of a latency run paced at `rate` from `epoch`.
    fn paced_generator(&self, job: PipelineJob, rate: u64, epoch: Instant) -> GeneratorConfig {
        let events = (rate as f64 * self.latency_run.as_secs_f64()) as u64;
        GeneratorConfig {
            events: events.max(1),
            events_per_second: rate,
            rate_per_second: Some(rate),
            pace_from: Some(epoch),
            ..self.generator(job)
        }
    }
}

/// The jobs the scenario measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineJob {
    Stateless,
    TumblingCount,
    SlidingCount,
    SessionCount,
}

impl PipelineJob {
    pub const ALL: [PipelineJob; 4] = [
        PipelineJob::Stateless,
        PipelineJob::TumblingCount,
        PipelineJob::SlidingCount,
        PipelineJob::SessionCount,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PipelineJob::Stateless => "stateless",
            PipelineJob::TumblingCount => "tumbling-count",
            PipelineJob::SlidingCount => "sliding-count",
            PipelineJob::SessionCount => "session-count",
        }
    }

    fn is_keyed(self) -> bool {
        self != PipelineJob::Stateless
    }

    /// Timestamps of the latency run are shifted by this much so that the first window
    /// (which starts at 0) ends one slide into the run.
    fn latency_shift_ms(self) -> u64 {
        match self {
            PipelineJob::SlidingCount => SLIDING_SIZE_MS - SLIDING_SLIDE_MS,
            _ => 0,
        }
    }
}

/// The channel a keyed job exchanges records over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Rtrb,
    Crossbeam,
}

impl ExchangeKind {
    fn name(self) -> &'static str {
        match self {
            ExchangeKind::Rtrb => "rtrb",
            ExchangeKind::Crossbeam => "crossbeam",
        }
    }
}

/// `tumbling-count/shards=2/rtrb`, `stateless/shards=1/pipeline`.
pub fn series_name(job: PipelineJob, shards: usize, exchange: ExchangeKind) -> String {
    let exchange = if job.is_keyed() { exchange.name() } else { "pipeline" };
    format!("{}/shards={shards}/{exchange}", job.name())
}

/// A generated event's value with the time it was due (for the stateless latency; 16
/// bytes, as an [`Event`]).
#[derive(Debug, Clone, Copy)]
struct TimedEvent {
    value: u64,
    /// Nanoseconds after the run's epoch the event was due; `u64::MAX` when not sampled.
    due_ns: u64,
}

/// The paced generator, stamping every 64th event with its due time.
struct TimedSource {
    generator: Generator,
    pulled: Vec<Stamped<Event>>,
    next_index: u64,
    step: u64,
    nanos_per_event: f64,
}

impl Source for TimedSource {
    type Record = TimedEvent;

    fn pull(&mut self, out: &mut Vec<Stamped<TimedEvent>>, max: usize) -> SourceStatus {
        self.pulled.clear();
        let status = self.generator.pull(&mut self.pulled, max);
        for stamped in &self.pulled {
            let sampled = self.next_index & (STATELESS_LATENCY_SAMPLE_EVERY - 1) == 0;
            let due_ns = if sampled {
                (self.next_index as f64 * self.nanos_per_event) as u64
            } else {
                u64::MAX
            };
            let record = TimedEvent { value: stamped.record.value, due_ns };
            out.push(Stamped { timestamp: stamped.timestamp, record });
            self.next_index += self.step;
        }
        status
    }

    fn out_of_orderness(&self) -> u64 {
        self.generator.out_of_orderness()
    }
}

/// Shifts every timestamp of a source by a constant.
struct Shifted<S>(S, u64);

impl<S: Source> Source for Shifted<S> {
    type Record = S::Record;
    fn pull(&mut self, out: &mut Vec<Stamped<S::Record>>, max: usize) -> SourceStatus {
        let start = out.len();
        let status = self.0.pull(out, max);
        out[start..].iter_mut().for_each(|stamped| stamped.timestamp += self.1);
        status
    }
    fn out_of_orderness(&self) -> u64 {
        self.0.out_of_orderness()
    }
}

/// The scenario's sink: counts what it gets and, in a latency run, records latencies.
struct Probe {
    results: u64,
    /// Latency runs: the run's epoch, and how many ms after `epoch + window end` a window
    /// is due.
    clock: Option<(Instant, i64)>,
    histogram: Option<Histogram<u64>>,
}

impl Probe {
    fn new(clock: Option<(Instant, i64)>) -> Probe {
        Probe { results: 0, clock, histogram: clock.map(|_| latency_histogram()) }
    }

    /// Records `now - (epoch + due_ns)` unless the result came before it was due (a flush
    /// at the end of the stream).
    #[inline]
    fn record_since(&mut self, due_ns: i128) {
        let (Some((epoch, _)), Some(histogram)) = (self.clock, self.histogram.as_mut()) else {
            return;
        };
        let now_ns = Instant::now().saturating_duration_since(epoch).as_nanos() as i128;
        if now_ns >= due_ns {
            histogram.saturating_record((now_ns - due_ns) as u64);
        }
    }
}

impl<K: Send + 'static> Sink<WindowResult<K, u64>> for Probe {
    type Output = (u64, Option<Histogram<u64>>);

    #[inline]
    fn write(&mut self, result: &WindowResult<K, u64>) {
        self.results += 1;
        if let Some((_, offset_ms)) = self.clock {
            let due_ms = result.window_end as i128 + i128::from(offset_ms);
            self.record_since(due_ms * 1_000_000);
        }
    }

    fn finish(self) -> (u64, Option<Histogram<u64>>) {
        (self.results, self.histogram)
    }
}

impl Sink<Stamped<TimedEvent>> for Probe {
    type Output = (u64, Option<Histogram<u64>>);

    #[inline]
    fn write(&mut self, stamped: &Stamped<TimedEvent>) {
        self.results += 1;
        if stamped.record.due_ns != u64::MAX {
            self.record_since(i128::from(stamped.record.due_ns));
        }
    }

    fn finish(self) -> (u64, Option<Histogram<u64>>) {
        (self.results, self.histogram)
    }
}

impl Sink<Stamped<Event>> for Probe {
    type Output = (u64, Option<Histogram<u64>>);

    #[inline]
    fn write(&mut self, stamped: &Stamped<Event>) {
        std::hint::black_box(stamped);
        self.results += 1;
    }

    fn finish(self) -> (u64, Option<Histogram<u64>>) {
        (self.results, self.histogram)
    }
}

/// What one run of a job did.
struct Outcome {
    events: u64,
    elapsed: Duration,
    results: u64,
    histogram: Option<Histogram<u64>>,
    shards: Vec<ShardStats>,
    peak_rss_bytes: u64,
    samples: Vec<Value>,
}

type ProbeOutput = JobOutput<(u64, Option<Histogram<u64>>), u64>;

fn stateless_map(event: Event) -> Event {
    Event { key: event.key, value: event.value * 3 }
}

/// Runs the keyed `job` over `exchange` reading `source`, ending in `probe`.
fn run_keyed<S, X>(
    job: PipelineJob,
    config: JobConfig,
    source: impl Fn(Partition) -> S + Send + Sync + 'static,
    exchange: X,
    metrics: &JobMetrics,
    probe: impl Fn() -> Probe + Send + Sync + 'static,
) -> Result<ProbeOutput>
where
    S: Source<Record = Event>,
    X: Exchange,
{
    let keyed = Job::new(config).source("generator", source).key_by("by_key", |e: &Event| e.key);
    let sink = move |_shard| probe();
    let output = match job {
        PipelineJob::TumblingCount => keyed
            .window(Tumbling::of(PIPELINE_WINDOW_MS))
            .aggregate("count", Count)
            .sink("probe", sink)
            .observe(metrics)
            .run_on(exchange)?,
        PipelineJob::SlidingCount => keyed
            .window(Sliding::of(SLIDING_SIZE_MS, SLIDING_SLIDE_MS))
            .aggregate("count", Count)
            .sink("probe", sink)
            .observe(metrics)
            .run_on(exchange)?,
        PipelineJob::SessionCount => keyed
            .window(Session::with_gap(SESSION_GAP_MS))
            .aggregate("count", Count)
            .sink("probe", sink)
            .observe(metrics)
            .run_on(exchange)?,
        PipelineJob::Stateless => unreachable!("the stateless job has no exchange"),
    };
    Ok(output)
}

/// Samples `metrics` every interval until `done` is set.
fn sample_metrics(metrics: JobMetrics, done: Arc<AtomicBool>) -> Vec<Value> {
    let started = Instant::now();
    let mut samples = Vec::new();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(METRICS_SAMPLE_INTERVAL);
        if samples.len() < METRICS_SAMPLES_MAX {
            let snapshot = metrics.snapshot();
            samples.push(json!({
                "t_ms": started.elapsed().as_millis() as u64,
                "records_pulled": snapshot.total(|shard| shard.records_pulled),
                "ring_occupancy": snapshot.total(|shard| shard.ring_occupancy),
                "watermark_lag_ms_max": snapshot.shards.iter()
                    .map(|shard| shard.watermark_lag_ms).max().unwrap_or(0),
                "windows_fired": snapshot.total(|shard| shard.windows_fired),
            }));
        }
    }
    samples
}

/// Resets the process's peak-RSS mark (Linux `clear_refs` 5); a failure leaves the mark
/// covering earlier runs too, which only overstates.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A run's pace: `None` flat out, or events per second from an epoch.
type Pace = Option<(u64, Instant)>;

/// One run: throughput (flat out) or latency (paced).
fn measure(
    job: PipelineJob,
    config: &PipelineConfig,
    shards: usize,
    exchange: ExchangeKind,
    pace: Pace,
) -> Result<Outcome> {
    let job_config = config.job_config(shards);
    let generator = match pace {
        Some((rate, epoch)) => config.paced_generator(job, rate, epoch),
        None => config.generator(job),
    };
    let epoch = pace.map(|(_, epoch)| epoch);
    let metrics = JobMetrics::new(shards);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (metrics, done) = (metrics.clone(), done.clone());
        std::thread::spawn(move || sample_metrics(metrics, done))
    };
    reset_peak_rss();
    let started = Instant::now();
    let shift = if pace.is_some() { job.latency_shift_ms() } else { 0 };
    let clock = epoch.map(|epoch| (epoch, OUT_OF_ORDERNESS_MS as i64 - shift as i64));
    let probe = move || Probe::new(clock);
    let source = move |partition| Shifted(Generator::new(generator, partition), shift);
    let output = match (job, exchange) {
        (PipelineJob::Stateless, _) => run_stateless(job_config, generator, pace, &metrics, probe),
        (_, ExchangeKind::Rtrb) => {
            run_keyed(job, job_config, source, RtrbExchange, &metrics, probe)
        }
        (_, ExchangeKind::Crossbeam) => {
            run_keyed(job, job_config, source, CrossbeamExchange, &metrics, probe)
        }
    };
    let elapsed = started.elapsed();
    let peak_rss_bytes = machine::peak_rss_bytes();
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().expect("the metrics sampler does not panic");
    let output = output?;
    let events = output.records_pulled();
    assert_eq!(events, generator.events, "every generated event was pulled");
    let mut histogram: Option<Histogram<u64>> = None;
    let mut results = 0;
    for (count, shard_histogram) in output.sink_outputs {
        results += count;
        if let Some(shard_histogram) = shard_histogram {
            match &mut histogram {
                Some(merged) => merged.add(&shard_histogram).expect("same bounds"),
                None => histogram = Some(shard_histogram),
            }
        }
    }
    Ok(Outcome {
        events,
        elapsed,
        results,
        histogram,
        shards: output.shards,
        peak_rss_bytes,
        samples,
    })
}

/// The stateless chain: map + filter, on plain events (throughput) or timed ones (latency).
fn run_stateless(
    config: JobConfig,
    generator: GeneratorConfig,
    pace: Pace,
    metrics: &JobMetrics,
    probe: impl Fn() -> Probe + Send + Sync + 'static,
) -> Result<ProbeOutput> {
    let output = match pace {
        None => Job::new(config)
            .source("generator", move |partition| Generator::new(generator, partition))
            .map("scale", stateless_map)
            .filter("even", |event: &Event| event.value & 1 == 0)
            .sink("probe", move |_| probe())
            .observe(metrics)
            .run()?,
        Some((rate, _)) => {
            let nanos_per_event = 1e9 / rate as f64;
            Job::new(config)
                .source("generator", move |partition: Partition| TimedSource {
                    generator: Generator::new(generator, partition),
                    pulled: Vec::new(),
                    next_index: partition.index as u64,
                    step: partition.count as u64,
                    nanos_per_event,
                })
                .map("scale", |event: TimedEvent| TimedEvent { value: event.value * 3, ..event })
                .filter("even", |event: &TimedEvent| event.value & 1 == 0)
                .sink("probe", move |_| probe())
                .observe(metrics)
                .run()?
        }
    };
    let JobOutput { sink_outputs, shards, .. } = output;
    Ok(JobOutput { sink_outputs, late_outputs: vec![0; shards.len()], shards })
}

fn shard_stats_json(shards: &[ShardStats]) -> Value {
    let shard = |stats: &ShardStats| {
        json!({
            "records_pulled": stats.records_pulled,
            "records_received": stats.records_received,
            "results_out": stats.results_out,
            "windows_fired": stats.windows_fired,
            "late_records": stats.late_records,
            "ring_occupancy_max": stats.ring_occupancy_max,
            "watermark_lag_max_ms": stats.watermark_lag_max_ms,
        })
    };
    Value::Array(shards.iter().map(shard).collect())
}

fn series_from(
    job: PipelineJob,
    shards: usize,
    exchange: ExchangeKind,
    throughput: &Outcome,
    latency: Option<&Outcome>,
) -> Series {
    let name = series_name(job, shards, exchange);
    let events_per_s = throughput.events as f64 / throughput.elapsed.as_secs_f64().max(1e-9);
    let target =
        if exchange == ExchangeKind::Crossbeam { Target::Baseline } else { Target::Zabflow };
    let exchange_name = if job.is_keyed() { exchange.name() } else { "pipeline" };
    let mut series = Series::new(name, target, Unit::Records, events_per_s)
        .with_params(json!({ "job": job.name(), "shards": shards, "exchange": exchange_name }))
        .with_extra("events_per_s_per_shard", events_per_s / shards as f64)
        .with_extra("records_out", throughput.results)
        .with_extra("peak_rss_bytes", throughput.peak_rss_bytes)
        .with_extra("shard_stats", shard_stats_json(&throughput.shards))
        .with_extra("metrics_samples", Value::Array(throughput.samples.clone()));
    if let Some(latency) = latency {
        if let Some(histogram) = latency.histogram.as_ref().filter(|h| !h.is_empty()) {
            series = series
                .with_histogram(histogram)
                .with_extra("latency_samples", histogram.len())
                .with_extra(
                    "latency_run_events_per_s",
                    latency.events as f64 / latency.elapsed.as_secs_f64().max(1e-9),
                )
                .with_extra("latency_peak_rss_bytes", latency.peak_rss_bytes);
        }
    }
    series
}

/// Runs every job at every shard count, with its baseline and latency runs.
///
/// # Errors
/// A bad parameter, or a failed job.
pub fn run(config: &PipelineConfig) -> Result<Report> {
    config.validate()?;
    let mut report = Report::new("pipeline", params(config));
    let keyed_jobs = PipelineJob::ALL.iter().filter(|job| job.is_keyed()).count();
    let runs_per_shard_count = PipelineJob::ALL.len() + keyed_jobs;
    let steps = runs_per_shard_count * config.shard_counts.len();
    let progress = Progress::new("pipeline", steps as u64);
    for job in PipelineJob::ALL {
        for &shards in &config.shard_counts {
            progress.start_step(&series_name(job, shards, ExchangeKind::Rtrb));
            let throughput = measure(job, config, shards, ExchangeKind::Rtrb, None)?;
            let latency = if config.latency_run.is_zero() {
                None
            } else {
                let events_per_s = throughput.events as f64 / throughput.elapsed.as_secs_f64();
                let rate = LATENCY_RATE_PER_S.min((events_per_s / 2.0) as u64).max(1000);
                let epoch = Instant::now() + Duration::from_millis(20);
                Some(measure(job, config, shards, ExchangeKind::Rtrb, Some((rate, epoch)))?)
            };
            let series =
                series_from(job, shards, ExchangeKind::Rtrb, &throughput, latency.as_ref());
            report.push_series(series);
            progress.finish_step();
            if job.is_keyed() {
                progress.start_step(&series_name(job, shards, ExchangeKind::Crossbeam));
                let baseline = measure(job, config, shards, ExchangeKind::Crossbeam, None)?;
                report.push_series(series_from(
                    job,
                    shards,
                    ExchangeKind::Crossbeam,
                    &baseline,
                    None,
                ));
                progress.finish_step();
            }
        }
    }
    progress.finish();
    push_ratios(&mut report, &config.shard_counts);
    Ok(report)
}

fn params(config: &PipelineConfig) -> Value {
    json!({
        "events": config.events, "keys": PIPELINE_KEYS, "window_ms": PIPELINE_WINDOW_MS,
        "sliding_size_ms": SLIDING_SIZE_MS, "sliding_slide_ms": SLIDING_SLIDE_MS,
        "session_gap_ms": SESSION_GAP_MS,
        "event_time_events_per_s": PIPELINE_EVENT_TIME_DENSITY,
        "out_of_orderness_ms": OUT_OF_ORDERNESS_MS, "drift_max_ms": DRIFT_MAX_MS,
        "shard_counts": config.shard_counts,
        "ring_slots": config.ring_slots, "batch_records": config.batch_records,
        "baseline": "the keyed jobs over bounded crossbeam-channel channels, item by item",
        "latency": if config.latency_run.is_zero() { "not measured" } else {
            "paced runs: window result at the sink minus the due time of the event at \
             window end + out-of-orderness; stateless: record at the sink minus its due \
             time, 1 in 64"
        },
        "latency_rate_per_s_max": LATENCY_RATE_PER_S,
        "session_events": config.events / SESSION_EVENTS_DIVISOR,
        "latency_run_s": config.latency_run.as_secs_f64(),
    })
}

/// `<job>/shards=N/shards=1` (scaling) and `<job>/shards=N/rtrb/crossbeam` (baseline).
fn push_ratios(report: &mut Report, shard_counts: &[usize]) {
    let throughput = |report: &Report, name: &str| {
        report.series_named(name).map(|series| series.throughput_per_s)
    };
    for job in PipelineJob::ALL {
        let one = throughput(report, &series_name(job, 1, ExchangeKind::Rtrb));
        for &shards in shard_counts {
            let many = throughput(report, &series_name(job, shards, ExchangeKind::Rtrb));
            if let (Some(one), Some(many), true) = (one, many, shards > 1) {
                report.push_ratio(format!("{}/shards={shards}/shards=1", job.name()), many / one);
            }
            let baseline = throughput(report, &series_name(job, shards, ExchangeKind::Crossbeam));
            if let (Some(many), Some(baseline), true) = (many, baseline, job.is_keyed()) {
                let name = format!("{}/shards={shards}/rtrb/crossbeam", job.name());
                report.push_ratio(name, many / baseline);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_run_writes_every_series_the_ratios_and_latencies() {
        let config = PipelineConfig {
            events: 20_000,
            shard_counts: vec![1, 2],
            latency_run: Duration::from_millis(300),
            ..PipelineConfig::new(true)
        };
        let report = run(&config).unwrap();
        assert_eq!(report.series.len(), 2 * (4 + 3));
        for series in &report.series {
            assert!(series.throughput_per_s > 0.0, "{}", series.name);
        }
        assert!(report.ratio_named("tumbling-count/shards=2/shards=1").is_some());
        assert!(report.ratio_named("session-count/shards=2/rtrb/crossbeam").is_some());
        let stateless = report.series_named("stateless/shards=1/pipeline").unwrap();
        assert!(stateless.latency_us.is_some(), "the stateless chain has latencies");
        assert!(run(&PipelineConfig { events: 0, ..config }).is_err());
    }

    #[test]
    fn the_suite_runs_every_job_and_shard_count_on_fewer_events() {
        let (suite, full) = (PipelineConfig::suite(false), PipelineConfig::new(false));
        assert_eq!(suite.shard_counts, full.shard_counts);
        assert!(suite.events * 5 <= full.events, "{} vs {}", suite.events, full.events);
        assert!(suite.latency_run < full.latency_run);
        assert!(!suite.latency_run.is_zero(), "the suite still measures latency");
        assert_eq!(PipelineConfig::suite(true), PipelineConfig::new(true));
        suite.validate().unwrap();
    }
}
