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
//! **Checkpoints.** Beside each keyed job's plain run, the same job runs with aligned
//! checkpoints every `checkpoint_interval` (series `<job>/shards=N/rtrb/checkpoint=1s`,
//! ratio `<job>/shards=N/checkpoint=1s/plain`): barriers, alignment, per-key-group snapshots
//! and state files written and fsynced by the state writer, recorded through the in-memory
//! coordinator twin (`MemoryCoordinator`, the same checkpoint records as a ZooKeeper-protocol
//! service, without the network round trips, which run off the shards' threads anyway). The
//! series carries the checkpoints completed, their alignment (max and median), snapshot time
//! (how long a shard's loop stood still) and state bytes; the ratio `.../plain/cpu` compares
//! events per CPU-second instead of per second, which a busy shared machine disturbs less. A run shorter than the interval
//! takes only the final checkpoint, so the suite's short runs checkpoint more often.
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
//! the job's live metrics (records pulled, ring occupancy, watermark lag). With
//! [`PipelineConfig::live`] (`--live`) every run also shows those metrics on stderr while it
//! runs and its totals when it ends ([`crate::live_view`]).

mod crossbeam_exchange;

pub use crossbeam_exchange::CrossbeamExchange;

use crate::constants::{
    PIPELINE_EVENTS_DEFAULT, PIPELINE_EVENTS_MAX, PIPELINE_EVENTS_QUICK, PIPELINE_EVENTS_SUITE,
    PIPELINE_EVENT_TIME_DENSITY, PIPELINE_KEYS, PIPELINE_WINDOW_MS,
};
use crate::error::{BenchError, Result};
use crate::live_view::LiveView;
use crate::machine;
use crate::progress::Progress;
use crate::report::{latency_histogram, Report, Series, Target, Unit};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zabflow_core::coordinator::{SinkPosition, SourceOffset};
use zabflow_core::engine::{
    CheckpointReport, CheckpointSettings, Count, Event, Exchange, Generator, GeneratorConfig, Job,
    JobConfig, JobMetrics, JobOutput, Partition, RtrbExchange, Session, ShardStats, Sink,
    SinkCommit, Sliding, Source, SourceStatus, Stamped, Tumbling, WindowResult,
};
use zabflow_core::memory_coordinator::MemoryCoordinator;

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
/// Checkpoint interval of the checkpointed runs, and of the suite's and `--quick`'s shorter
/// runs (which would otherwise take no checkpoint but the final one).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
const CHECKPOINT_INTERVAL_SHORT: Duration = Duration::from_millis(250);
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
    /// The jobs to measure, in order.
    pub jobs: Vec<PipelineJob>,
    /// Whether each keyed job also runs over the crossbeam-channel baseline.
    pub baseline: bool,
    /// Interval of each keyed job's checkpointed run; `None` skips them.
    pub checkpoint_interval: Option<Duration>,
    /// Whether each run shows its live metrics on stderr ([`LiveView`]).
    pub live: bool,
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
            jobs: PipelineJob::ALL.to_vec(),
            baseline: true,
            checkpoint_interval: Some(if quick {
                CHECKPOINT_INTERVAL_SHORT
            } else {
                CHECKPOINT_INTERVAL
            }),
            live: false,
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
            config.checkpoint_interval = Some(CHECKPOINT_INTERVAL_SHORT);
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
        if self.jobs.is_empty() {
            return Err(BenchError::Param("pipeline needs at least one job".into()));
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

    /// The job called `name` (as [`PipelineJob::name`] spells it).
    ///
    /// # Errors
    /// [`BenchError::Param`] listing the jobs there are.
    pub fn from_name(name: &str) -> Result<PipelineJob> {
        PipelineJob::ALL.into_iter().find(|job| job.name() == name).ok_or_else(|| {
            let names: Vec<_> = PipelineJob::ALL.iter().map(|job| job.name()).collect();
            BenchError::Param(format!("no pipeline job `{name}` (jobs: {})", names.join(", ")))
        })
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

/// `checkpoint=1s`, `checkpoint=250ms`.
fn checkpoint_suffix(interval: Duration) -> String {
    format!("checkpoint={}", humantime::format_duration(interval))
}

/// `tumbling-count/shards=2/rtrb/checkpoint=1s`.
pub fn checkpointed_series_name(job: PipelineJob, shards: usize, interval: Duration) -> String {
    format!("{}/{}", series_name(job, shards, ExchangeKind::Rtrb), checkpoint_suffix(interval))
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
    fn position(
        &self,
        out: &mut Vec<SourceOffset>,
    ) -> std::result::Result<(), zabflow_core::Error> {
        self.0.position(out)
    }
    fn seek(&mut self, offsets: &[SourceOffset]) -> std::result::Result<(), zabflow_core::Error> {
        self.0.seek(offsets)
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

    /// Nothing to commit: the probe only counts (and measures).
    fn prepare_commit(&mut self) -> std::result::Result<Option<SinkCommit>, zabflow_core::Error> {
        Ok(None)
    }

    fn restore(
        &mut self,
        _: u64,
        _: &[SinkPosition],
        _: Partition,
    ) -> std::result::Result<(), zabflow_core::Error> {
        Ok(())
    }

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
    /// CPU time the process spent during the run (user + system, every thread).
    cpu: Duration,
    results: u64,
    histogram: Option<Histogram<u64>>,
    shards: Vec<ShardStats>,
    peak_rss_bytes: u64,
    samples: Vec<Value>,
    /// Checkpoints completed by a checkpointed run (the final one last).
    checkpoints: Vec<CheckpointReport>,
}

type ProbeOutput = JobOutput<(u64, Option<Histogram<u64>>), u64>;

fn stateless_map(event: Event) -> Event {
    Event { key: event.key, value: event.value * 3 }
}

/// How a keyed run ends: plainly over an exchange, or checkpointed (over the rtrb mesh).
enum KeyedRun<X> {
    Plain(X),
    Checkpointed(CheckpointSettings),
}

/// Runs the keyed `job` reading `source`, ending in `probe`; a checkpointed run also
/// returns its checkpoints.
fn run_keyed<S, X>(
    job: PipelineJob,
    config: JobConfig,
    source: impl Fn(Partition) -> S + Send + Sync + 'static,
    run: KeyedRun<X>,
    metrics: &JobMetrics,
    probe: impl Fn() -> Probe + Send + Sync + 'static,
) -> Result<(ProbeOutput, Vec<CheckpointReport>)>
where
    S: Source<Record = Event>,
    X: Exchange,
{
    let keyed = Job::new(config).source("generator", source).key_by("by_key", |e: &Event| e.key);
    let sink = move |_shard| probe();
    macro_rules! finish {
        ($job:expr) => {
            match run {
                KeyedRun::Plain(exchange) => ($job.run_on(exchange)?, Vec::new()),
                KeyedRun::Checkpointed(settings) => {
                    let run =
                        $job.run_checkpointed(settings, Arc::new(MemoryCoordinator::new()))?;
                    (run.output, run.completed)
                }
            }
        };
    }
    let output = match job {
        PipelineJob::TumblingCount => finish!(keyed
            .window(Tumbling::of(PIPELINE_WINDOW_MS))
            .aggregate("count", Count)
            .sink("probe", sink)
            .observe(metrics)),
        PipelineJob::SlidingCount => finish!(keyed
            .window(Sliding::of(SLIDING_SIZE_MS, SLIDING_SLIDE_MS))
            .aggregate("count", Count)
            .sink("probe", sink)
            .observe(metrics)),
        PipelineJob::SessionCount => finish!(keyed
            .window(Session::with_gap(SESSION_GAP_MS))
            .aggregate("count", Count)
            .sink("probe", sink)
            .observe(metrics)),
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

/// CPU time this process has used so far, user and system, every thread.
fn process_cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the struct it is given, which is zeroed and ours.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |value: libc::timeval| {
        Duration::from_secs(value.tv_sec as u64) + Duration::from_micros(value.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
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
    checkpoint: Option<Duration>,
) -> Result<Outcome> {
    let job_config = config.job_config(shards);
    // Checkpointed runs write their state files here (removed when the run is over).
    let state_dir = match checkpoint {
        Some(_) => Some(tempfile::tempdir().map_err(|error| {
            BenchError::Param(format!("a temporary directory for state files: {error}"))
        })?),
        None => None,
    };
    let generator = match pace {
        Some((rate, epoch)) => config.paced_generator(job, rate, epoch),
        None => config.generator(job),
    };
    let epoch = pace.map(|(_, epoch)| epoch);
    let metrics = JobMetrics::new(shards);
    let live = match config.live {
        true => Some(start_live_view(job, shards, exchange, pace, checkpoint, &metrics)?),
        false => None,
    };
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (metrics, done) = (metrics.clone(), done.clone());
        std::thread::spawn(move || sample_metrics(metrics, done))
    };
    reset_peak_rss();
    let (started, cpu_started) = (Instant::now(), process_cpu_time());
    let shift = if pace.is_some() { job.latency_shift_ms() } else { 0 };
    let clock = epoch.map(|epoch| (epoch, OUT_OF_ORDERNESS_MS as i64 - shift as i64));
    let probe = move || Probe::new(clock);
    let source = move |partition| Shifted(Generator::new(generator, partition), shift);
    let output = match (job, exchange, &state_dir, checkpoint) {
        (PipelineJob::Stateless, ..) => {
            run_stateless(job_config, generator, pace, &metrics, probe).map(|o| (o, Vec::new()))
        }
        (_, _, Some(dir), Some(interval)) => {
            let settings =
                CheckpointSettings { interval, ..CheckpointSettings::new(job.name(), dir.path()) };
            let run = KeyedRun::<RtrbExchange>::Checkpointed(settings);
            run_keyed(job, job_config, source, run, &metrics, probe)
        }
        (_, ExchangeKind::Rtrb, ..) => {
            let run = KeyedRun::Plain(RtrbExchange);
            run_keyed(job, job_config, source, run, &metrics, probe)
        }
        (_, ExchangeKind::Crossbeam, ..) => {
            let run = KeyedRun::Plain(CrossbeamExchange);
            run_keyed(job, job_config, source, run, &metrics, probe)
        }
    };
    let (elapsed, cpu) = (started.elapsed(), process_cpu_time().saturating_sub(cpu_started));
    let peak_rss_bytes = machine::peak_rss_bytes();
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().expect("the metrics sampler does not panic");
    if let Some(live) = live {
        live.finish();
    }
    let (output, checkpoints) = output?;
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
        cpu,
        results,
        histogram,
        shards: output.shards,
        peak_rss_bytes,
        samples,
        checkpoints,
    })
}

/// A live view of one run's metrics, titled by its series (and `latency` for a paced run).
fn start_live_view(
    job: PipelineJob,
    shards: usize,
    exchange: ExchangeKind,
    pace: Pace,
    checkpoint: Option<Duration>,
    metrics: &JobMetrics,
) -> Result<LiveView> {
    let mut title = match checkpoint {
        Some(interval) => checkpointed_series_name(job, shards, interval),
        None => series_name(job, shards, exchange),
    };
    if pace.is_some() {
        title.push_str(" latency");
    }
    LiveView::start(&title, metrics)
        .map_err(|error| BenchError::Thread(format!("the live view: {error}")))
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
        .with_extra("cpu_s", throughput.cpu.as_secs_f64())
        .with_extra(
            "events_per_cpu_s",
            throughput.events as f64 / throughput.cpu.as_secs_f64().max(1e-9),
        )
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

/// The series of a checkpointed run: throughput as a plain run's, and what its checkpoints
/// cost (the final checkpoint, taken after the input ended, counted apart).
fn checkpointed_series_from(
    job: PipelineJob,
    shards: usize,
    interval: Duration,
    run: &Outcome,
) -> Series {
    let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
    let periodic: Vec<&CheckpointReport> = run.checkpoints.iter().filter(|c| !c.is_final).collect();
    let median_ms = |of: fn(&CheckpointReport) -> Duration| {
        let mut values: Vec<f64> = periodic.iter().map(|c| ms(of(c))).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    let max_ms = |of: fn(&CheckpointReport) -> Duration| {
        run.checkpoints.iter().map(|c| ms(of(c))).fold(0.0, f64::max)
    };
    let state_bytes_max = run.checkpoints.iter().map(|c| c.state_bytes).max().unwrap_or(0);
    let mut series = series_from(job, shards, ExchangeKind::Rtrb, run, None);
    series.name = checkpointed_series_name(job, shards, interval);
    series
        .with_params(json!({
            "job": job.name(), "shards": shards, "exchange": "rtrb",
            "checkpoint_interval_ms": interval.as_millis() as u64,
            "coordinator": "in-memory twin (MemoryCoordinator)",
        }))
        .with_extra("checkpoints_completed", periodic.len())
        .with_extra("final_checkpoint", run.checkpoints.iter().any(|c| c.is_final))
        .with_extra("alignment_ms_max", max_ms(|c| c.alignment_max))
        .with_extra("alignment_ms_median", median_ms(|c| c.alignment_max))
        .with_extra("snapshot_ms_max", max_ms(|c| c.snapshot_max))
        .with_extra("snapshot_ms_median", median_ms(|c| c.snapshot_max))
        .with_extra("checkpoint_ms_median", median_ms(|c| c.duration))
        .with_extra("state_bytes_max", state_bytes_max)
}

/// Runs every job at every shard count, with its baseline and latency runs.
///
/// # Errors
/// A bad parameter, or a failed job.
pub fn run(config: &PipelineConfig) -> Result<Report> {
    config.validate()?;
    let mut report = Report::new("pipeline", params(config));
    let keyed_jobs = config.jobs.iter().filter(|job| job.is_keyed()).count();
    let baselines = if config.baseline { keyed_jobs } else { 0 };
    let checkpointed = if config.checkpoint_interval.is_some() { keyed_jobs } else { 0 };
    let runs_per_shard_count = config.jobs.len() + baselines + checkpointed;
    let steps = runs_per_shard_count * config.shard_counts.len();
    let progress = match config.live {
        true => Progress::hidden("pipeline", steps as u64), // the live view draws on stderr
        false => Progress::new("pipeline", steps as u64),
    };
    for &job in &config.jobs {
        for &shards in &config.shard_counts {
            progress.start_step(&series_name(job, shards, ExchangeKind::Rtrb));
            let throughput = measure(job, config, shards, ExchangeKind::Rtrb, None, None)?;
            let latency = if config.latency_run.is_zero() {
                None
            } else {
                let events_per_s = throughput.events as f64 / throughput.elapsed.as_secs_f64();
                let rate = LATENCY_RATE_PER_S.min((events_per_s / 2.0) as u64).max(1000);
                let epoch = Instant::now() + Duration::from_millis(20);
                Some(measure(job, config, shards, ExchangeKind::Rtrb, Some((rate, epoch)), None)?)
            };
            let series =
                series_from(job, shards, ExchangeKind::Rtrb, &throughput, latency.as_ref());
            report.push_series(series);
            progress.finish_step();
            if let (true, Some(interval)) = (job.is_keyed(), config.checkpoint_interval) {
                progress.start_step(&checkpointed_series_name(job, shards, interval));
                let run = measure(job, config, shards, ExchangeKind::Rtrb, None, Some(interval))?;
                report.push_series(checkpointed_series_from(job, shards, interval, &run));
                progress.finish_step();
            }
            if job.is_keyed() && config.baseline {
                progress.start_step(&series_name(job, shards, ExchangeKind::Crossbeam));
                let baseline = measure(job, config, shards, ExchangeKind::Crossbeam, None, None)?;
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
    push_ratios(&mut report, &config.shard_counts, config.checkpoint_interval);
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
        "jobs": config.jobs.iter().map(|job| job.name()).collect::<Vec<_>>(),
        "ring_slots": config.ring_slots, "batch_records": config.batch_records,
        "baseline": if config.baseline {
            "the keyed jobs over bounded crossbeam-channel channels, item by item"
        } else {
            "not measured"
        },
        "latency": if config.latency_run.is_zero() { "not measured" } else {
            "paced runs: window result at the sink minus the due time of the event at \
             window end + out-of-orderness; stateless: record at the sink minus its due \
             time, 1 in 64"
        },
        "latency_rate_per_s_max": LATENCY_RATE_PER_S,
        "checkpoint_interval_ms": config.checkpoint_interval.map(|i| i.as_millis() as u64),
        "checkpoint_coordinator": "in-memory twin (MemoryCoordinator); state files fsynced",
        "session_events": config.events / SESSION_EVENTS_DIVISOR,
        "latency_run_s": config.latency_run.as_secs_f64(),
    })
}

/// `<job>/shards=N/shards=1` (scaling) and `<job>/shards=N/rtrb/crossbeam` (baseline).
fn push_ratios(report: &mut Report, shard_counts: &[usize], config_interval: Option<Duration>) {
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
            if let Some(interval) = config_interval {
                let name = checkpointed_series_name(job, shards, interval);
                if let (Some(plain), Some(checkpointed)) = (many, throughput(report, &name)) {
                    let ratio = format!(
                        "{}/shards={shards}/{}/plain",
                        job.name(),
                        checkpoint_suffix(interval)
                    );
                    report.push_ratio(ratio.clone(), checkpointed / plain);
                    // On a shared machine wall time swings with the neighbours' load; the
                    // CPU the job burned per event does much less.
                    let cpu = |name: &str| {
                        let series = report.series_named(name)?;
                        series.extra.get("events_per_cpu_s")?.as_f64()
                    };
                    let plain_name = series_name(job, shards, ExchangeKind::Rtrb);
                    if let (Some(plain), Some(checkpointed)) = (cpu(&plain_name), cpu(&name)) {
                        report.push_ratio(format!("{ratio}/cpu"), checkpointed / plain);
                    }
                }
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
        assert_eq!(report.series.len(), 2 * (4 + 3 + 3));
        for series in &report.series {
            assert!(series.throughput_per_s > 0.0, "{}", series.name);
        }
        assert!(report.ratio_named("tumbling-count/shards=2/shards=1").is_some());
        assert!(report.ratio_named("session-count/shards=2/rtrb/crossbeam").is_some());
        for ratio in [
            "tumbling-count/shards=2/checkpoint=250ms/plain",
            "session-count/shards=1/checkpoint=250ms/plain/cpu",
        ] {
            assert!(report.ratio_named(ratio).is_some(), "{ratio}");
        }
        let checkpointed =
            report.series_named("sliding-count/shards=2/rtrb/checkpoint=250ms").unwrap();
        assert_eq!(checkpointed.extra["final_checkpoint"], json!(true), "the final one at least");
        assert!(checkpointed.extra["state_bytes_max"].as_u64().unwrap() > 0);
        let stateless = report.series_named("stateless/shards=1/pipeline").unwrap();
        assert!(stateless.latency_us.is_some(), "the stateless chain has latencies");
        assert!(run(&PipelineConfig { events: 0, ..config }).is_err());
    }

    #[test]
    fn unknown_jobs_and_zero_shards_are_refused_by_name() {
        let error = PipelineJob::from_name("tumbling").unwrap_err().to_string();
        assert!(error.contains("`tumbling`") && error.contains("tumbling-count"), "{error}");
        assert_eq!(PipelineJob::from_name("session-count").unwrap(), PipelineJob::SessionCount);
        let config = PipelineConfig { shard_counts: vec![0], ..PipelineConfig::new(true) };
        assert!(config.validate().is_err());
        assert!(PipelineConfig { jobs: vec![], ..PipelineConfig::new(true) }.validate().is_err());
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
