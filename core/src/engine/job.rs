//! The job API: how a user describes a stream job, in the style of Flink's DataStream API.
//!
//! ```text
//! Job::new(config)
//!     .source("events", |partition| Generator::new(..., partition))
//!     .map("parse", ..).filter("valid", ..).flat_map("split", ..)   // fused, one loop
//!     .with_idleness(Duration::from_millis(200))                     // optional
//!     .key_by("by_user", |event| event.key)                          // the exchange
//!     .window(Sliding::of(10_000, 1000))          // or Tumbling, Session; event or processing time
//!     .allowed_lateness(500)                                         // optional
//!     .late_sink("late", |_shard| CollectSink::default())            // optional side output
//!     .aggregate("count", Count)              // or .reduce(..), .process(..) (all elements)
//!     .sink("out", |_shard| CollectSink::default())
//!     .run()?
//! ```
//!
//! A custom keyed operator takes the place of `window(..).aggregate(..)`:
//! `.key_by(..).process("dedup", |scope| Dedup { seen: ValueState::new(&scope) })`, where
//! the function implements [`KeyedProcessFunction`] over keyed state
//! ([`keyed_state`](super::keyed_state)) scoped to the shard's key groups.
//!
//! Each step returns a new type that carries the whole pipeline in its generic
//! parameters, so `run` compiles to one specialised loop per shard: no boxed operator and
//! no virtual call per record. Every operator has a name, used in error messages. The
//! routing contract is explicit in the shape of the pipeline, as timely's `pact`: records
//! stay on their shard (pipeline) until `key_by`, which exchanges them over the mesh by
//! key group; a stream without `key_by` runs source → chain → sink on each shard alone.
//! Sources and sinks are factories called once per shard, on the caller's thread.
//! `run` exchanges over the engine's `rtrb` mesh; `run_on` takes another [`Exchange`] (the
//! benchmark's crossbeam baseline), and `observe` attaches live [`JobMetrics`].

use super::aggregate::Aggregate;
use super::chain::{Chain, Identity};
use super::checkpoint::{CheckpointSettings, CheckpointedOutput};
use super::checkpoint_driver::{self, Driver, RestorePlan, ShardCheckpointing};
use super::filter::Filter;
use super::flat_map::{Emitter, FlatMap};
use super::item::Stamped;
use super::key_group::KeyGroups;
use super::keyed_process::{KeyedProcessFunction, ProcessOperator};
use super::keyed_state::KeyScope;
use super::map::Map;
use super::mesh::{Exchange, MeshBuilder, RtrbExchange};
use super::metrics::JobMetrics;
use super::operator::KeyedOperator;
use super::runtime::{run_on_shards, run_supervised};
use super::shard::{
    KeyedShard, KeyedShardParts, OperatorNames, ShardStats, SnapshotFn, StatelessShard,
};
use super::sink::{CountingSink, Sink};
use super::snapshot::SnapshotState;
use super::source::{Partition, Source};
use super::window::{Window, WindowSpec};
use super::window_function::{Aggregated, Processed, Reduced, WindowFunction};
use crate::constants::{
    KEY_GROUPS_DEFAULT, KEY_GROUPS_MAX, RING_SLOTS_DEFAULT, RING_SLOTS_MAX, SHARDS_MAX,
    SOURCE_BATCH_RECORDS_DEFAULT, SOURCE_BATCH_RECORDS_MAX,
};
use crate::coordinator::Coordinator;
use crate::Error;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Placement and capacity of a job: every bound it allocates with, chosen up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobConfig {
    /// Shards (pinned threads).
    pub shards: usize,
    /// Slots of each of the `shards²` exchange rings.
    pub ring_slots: usize,
    /// Key groups (the maximum parallelism); at least `shards`.
    pub key_groups: usize,
    /// Records pulled from a source at once.
    pub batch_records: usize,
    /// Watermark alignment (Flink's `withWatermarkAlignment`): a shard stops pulling its
    /// source while the newest timestamp it pulled is more than this many ms ahead of its
    /// watermark, so no source runs ahead of the slowest one by more than that. Rings only
    /// bound the records in flight, not how far one source's event time gets ahead of
    /// another's (a consumer drains a whole ring per loop but pulls one batch of its own),
    /// and every ms of drift is window state held and latency added. `None`: unaligned. A
    /// source that stays silent without ending then holds the others back, unless the job
    /// declares idleness.
    pub drift_max_ms: Option<u64>,
}

impl JobConfig {
    /// `shards` shards with the default ring size, key groups and batch.
    pub fn new(shards: usize) -> JobConfig {
        JobConfig {
            shards,
            ring_slots: RING_SLOTS_DEFAULT,
            key_groups: KEY_GROUPS_DEFAULT,
            batch_records: SOURCE_BATCH_RECORDS_DEFAULT,
            drift_max_ms: None,
        }
    }

    /// # Errors
    /// [`Error::InvalidJob`] naming the knob out of its bounds.
    pub fn validate(&self) -> Result<(), Error> {
        let check = |ok: bool, message: String| if ok { Ok(()) } else { Err(message) };
        check((1..=SHARDS_MAX).contains(&self.shards), format!("shards {}", self.shards))
            .and_then(|()| {
                let ok = (self.shards..=KEY_GROUPS_MAX).contains(&self.key_groups);
                check(ok, format!("key groups {} (shards..={KEY_GROUPS_MAX})", self.key_groups))
            })
            .and_then(|()| {
                let ok = (1..=RING_SLOTS_MAX).contains(&self.ring_slots);
                check(ok, format!("ring slots {} (1..={RING_SLOTS_MAX})", self.ring_slots))
            })
            .and_then(|()| {
                let ok = (1..=SOURCE_BATCH_RECORDS_MAX).contains(&self.batch_records);
                let bound = SOURCE_BATCH_RECORDS_MAX;
                check(ok, format!("batch records {} (1..={bound})", self.batch_records))
            })
            .map_err(|message| Error::InvalidJob(format!("{message} out of bounds")))
    }
}

/// What a finished job hands back: each shard's sink output, late side output (`L`; for a
/// job without one, the number of late records) and statistics, in shard order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput<O, L = u64> {
    pub sink_outputs: Vec<O>,
    pub late_outputs: Vec<L>,
    pub shards: Vec<ShardStats>,
}

impl<O, L> JobOutput<O, L> {
    /// Records sent to the late side output, over all shards.
    pub fn late_records(&self) -> u64 {
        self.shards.iter().map(|stats| stats.late_records).sum()
    }

    /// Records the sources gave, over all shards.
    pub fn records_pulled(&self) -> u64 {
        self.shards.iter().map(|stats| stats.records_pulled).sum()
    }
}

type Factory<P, T> = Arc<dyn Fn(P) -> T + Send + Sync>;

/// The start of every job.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    config: JobConfig,
}

impl Job {
    pub fn new(config: JobConfig) -> Job {
        Job { config }
    }

    /// Reads from `factory(partition)` on every shard.
    pub fn source<S: Source>(
        self,
        name: &'static str,
        factory: impl Fn(Partition) -> S + Send + Sync + 'static,
    ) -> Stream<S, Identity> {
        Stream {
            config: self.config,
            source_name: name,
            source: Arc::new(factory),
            chain: Identity,
            idleness: None,
        }
    }
}

/// A stream of records before `key_by`: each shard processes its own source partition.
pub struct Stream<S, C> {
    config: JobConfig,
    source_name: &'static str,
    source: Factory<Partition, S>,
    chain: C,
    idleness: Option<Duration>,
}

impl<S: Source, C: Chain<S::Record>> Stream<S, C> {
    fn with_chain<D>(self, chain: D) -> Stream<S, D> {
        let Stream { config, source_name, source, idleness, .. } = self;
        Stream { config, source_name, source, chain, idleness }
    }

    /// A source partition that gives no record for `timeout` is idle: it stops holding the
    /// watermark back until it gives records again (Flink's `withIdleness`).
    pub fn with_idleness(self, timeout: Duration) -> Self {
        Stream { idleness: Some(timeout), ..self }
    }

    /// One output per record.
    pub fn map<F, O>(self, name: &'static str, function: F) -> Stream<S, Map<C, F, O>>
    where
        F: FnMut(C::Out) -> O + Clone + Send + 'static,
        O: Copy + Send + 'static,
    {
        let chain = Map { previous: self.chain.clone(), function, name, output: PhantomData };
        self.with_chain(chain)
    }

    /// Keeps the records `predicate` accepts.
    pub fn filter<F>(self, name: &'static str, predicate: F) -> Stream<S, Filter<C, F>>
    where
        F: FnMut(&C::Out) -> bool + Clone + Send + 'static,
    {
        let chain = Filter { previous: self.chain.clone(), predicate, name };
        self.with_chain(chain)
    }

    /// Zero or more outputs per record, through an [`Emitter`].
    pub fn flat_map<F, O>(self, name: &'static str, function: F) -> Stream<S, FlatMap<C, F, O>>
    where
        F: FnMut(C::Out, &mut Emitter<'_, O>) + Clone + Send + 'static,
        O: Copy + Send + 'static,
    {
        let chain = FlatMap { previous: self.chain.clone(), function, name, output: PhantomData };
        self.with_chain(chain)
    }

    /// Partitions the stream by key: records travel to the shard owning their key group.
    pub fn key_by<KF, K>(self, name: &'static str, key_fn: KF) -> KeyedStream<S, C, KF, K>
    where
        KF: Fn(&C::Out) -> K + Clone + Send + 'static,
        K: Copy + Eq + Hash + Send + 'static,
    {
        KeyedStream { stream: self, name, key_fn, key: PhantomData }
    }

    /// Ends the (unkeyed) stream in a sink on each shard.
    pub fn sink<Snk: Sink<Stamped<C::Out>>>(
        self,
        name: &'static str,
        factory: impl Fn(usize) -> Snk + Send + Sync + 'static,
    ) -> StatelessJob<S, C, Snk> {
        StatelessJob { stream: self, sink_name: name, sink: Arc::new(factory), metrics: None }
    }
}

/// A stream partitioned by key.
pub struct KeyedStream<S, C, KF, K> {
    stream: Stream<S, C>,
    name: &'static str,
    key_fn: KF,
    key: PhantomData<fn() -> K>,
}

impl<S: Source, C: Chain<S::Record>, KF, K> KeyedStream<S, C, KF, K> {
    /// Groups each key's records into windows.
    pub fn window<W: WindowSpec>(self, spec: W) -> WindowedStream<S, C, KF, K, W, CountingSink> {
        WindowedStream {
            keyed: self,
            spec,
            lateness: 0,
            late_sink_name: "late",
            late_sink: Arc::new(|_| CountingSink::default()),
        }
    }

    /// Runs a custom keyed operator: `factory(scope)` builds each shard's instance, with
    /// keyed state for the key groups of `scope`.
    pub fn process<P, PF>(
        self,
        name: &'static str,
        factory: PF,
    ) -> OperatorStream<S, C, KF, K, ProcessFactory<PF>, CountingSink>
    where
        PF: Fn(KeyScope) -> P,
        P: KeyedProcessFunction<K, C::Out>,
    {
        OperatorStream {
            keyed: self,
            operator_name: name,
            operator: ProcessFactory { factory, name },
            late_sink_name: "late",
            late_sink: Arc::new(|_| CountingSink::default()),
        }
    }
}

/// A keyed stream cut into windows.
pub struct WindowedStream<S, C, KF, K, W, LSnk> {
    keyed: KeyedStream<S, C, KF, K>,
    spec: W,
    lateness: u64,
    late_sink_name: &'static str,
    late_sink: Factory<usize, LSnk>,
}

impl<S, C, KF, K, W, LSnk> WindowedStream<S, C, KF, K, W, LSnk>
where
    S: Source,
    C: Chain<S::Record>,
    K: Copy + Eq + Hash + Send + 'static,
    W: WindowSpec,
{
    /// Keeps fired windows for `lateness` ms more, re-firing a window when a record within
    /// that time arrives for it (see [`window`](super::window) for what is late).
    pub fn allowed_lateness(self, lateness: u64) -> Self {
        WindowedStream { lateness, ..self }
    }

    /// Sends late records to `factory(shard)`'s sink instead of only counting them.
    pub fn late_sink<L: Sink<Stamped<C::Out>>>(
        self,
        name: &'static str,
        factory: impl Fn(usize) -> L + Send + Sync + 'static,
    ) -> WindowedStream<S, C, KF, K, W, L> {
        let WindowedStream { keyed, spec, lateness, .. } = self;
        WindowedStream { keyed, spec, lateness, late_sink_name: name, late_sink: Arc::new(factory) }
    }

    fn with_function<F>(
        self,
        name: &'static str,
        function: F,
    ) -> WindowedOperator<S, C, KF, K, W, F, LSnk> {
        let WindowedStream { keyed, spec, lateness, late_sink_name, late_sink } = self;
        let operator = WindowFactory { spec, function, lateness };
        OperatorStream { keyed, operator_name: name, operator, late_sink_name, late_sink }
    }

    /// Folds each (key, window) with an incremental `aggregate`.
    pub fn aggregate<A: Aggregate<C::Out>>(
        self,
        name: &'static str,
        aggregate: A,
    ) -> WindowedOperator<S, C, KF, K, W, Aggregated<A>, LSnk> {
        self.with_function(name, Aggregated(aggregate))
    }

    /// Folds each (key, window) pairwise with `function(accumulated, next)`.
    pub fn reduce<F>(
        self,
        name: &'static str,
        function: F,
    ) -> WindowedOperator<S, C, KF, K, W, Reduced<F, C::Out>, LSnk>
    where
        F: Fn(C::Out, &C::Out) -> C::Out + Clone + Send + 'static,
    {
        self.with_function(name, Reduced::new(function))
    }

    /// Calls `function(key, window, elements, out)` once per (key, window) with every
    /// element of the window (which the window keeps until it fires).
    #[allow(clippy::type_complexity)]
    pub fn process<F, O>(
        self,
        name: &'static str,
        function: F,
    ) -> WindowedOperator<S, C, KF, K, W, Processed<F, C::Out, O>, LSnk>
    where
        F: FnMut(&K, Window, &[C::Out], &mut Emitter<'_, O>) + Clone + Send + 'static,
        O: Send + 'static,
    {
        self.with_function(name, Processed { function, name, types: PhantomData })
    }
}

/// A windowed stream with its window function.
pub type WindowedOperator<S, C, KF, K, W, F, LSnk> =
    OperatorStream<S, C, KF, K, WindowFactory<W, F>, LSnk>;

/// Builds a shard's keyed operator.
pub trait OperatorFactory<K, T> {
    /// The operator.
    type Operator: KeyedOperator<K, T>;
    /// A fresh operator for the shard owning the key groups of `scope`.
    fn build(&self, scope: &KeyScope) -> Self::Operator;
}

/// Builds window operators: a spec, a window function, an allowed lateness.
pub struct WindowFactory<W, F> {
    spec: W,
    function: F,
    lateness: u64,
}

impl<K, T, W, F> OperatorFactory<K, T> for WindowFactory<W, F>
where
    K: Copy + Eq + Hash + Send + 'static,
    T: Send + 'static,
    W: WindowSpec,
    F: WindowFunction<K, T>,
{
    type Operator = W::Operator<K, T, F>;
    fn build(&self, _scope: &KeyScope) -> Self::Operator {
        self.spec.operator(self.function.clone(), self.lateness)
    }
}

/// Builds a user's keyed process function per shard.
pub struct ProcessFactory<PF> {
    factory: PF,
    name: &'static str,
}

impl<K, T, P, PF> OperatorFactory<K, T> for ProcessFactory<PF>
where
    T: Copy + Send + 'static,
    PF: Fn(KeyScope) -> P,
    P: KeyedProcessFunction<K, T>,
{
    type Operator = ProcessOperator<P>;
    fn build(&self, scope: &KeyScope) -> ProcessOperator<P> {
        ProcessOperator { function: (self.factory)(scope.clone()), name: self.name }
    }
}

/// A keyed stream with its operator, waiting for a sink.
pub struct OperatorStream<S, C, KF, K, OF, LSnk> {
    keyed: KeyedStream<S, C, KF, K>,
    operator_name: &'static str,
    operator: OF,
    late_sink_name: &'static str,
    late_sink: Factory<usize, LSnk>,
}

impl<S, C, KF, K, OF, LSnk> OperatorStream<S, C, KF, K, OF, LSnk> {
    /// Ends the stream in a sink on each shard.
    pub fn sink<Snk>(
        self,
        name: &'static str,
        factory: impl Fn(usize) -> Snk + Send + Sync + 'static,
    ) -> KeyedJob<S, C, KF, K, OF, Snk, LSnk> {
        KeyedJob { operated: self, sink_name: name, sink: Arc::new(factory), metrics: None }
    }
}

/// A complete job without an exchange, ready to run.
pub struct StatelessJob<S, C, Snk> {
    stream: Stream<S, C>,
    sink_name: &'static str,
    sink: Factory<usize, Snk>,
    metrics: Option<JobMetrics>,
}

impl<S, C, Snk> StatelessJob<S, C, Snk>
where
    S: Source,
    C: Chain<S::Record>,
    Snk: Sink<Stamped<C::Out>>,
{
    /// Publishes live numbers into `metrics` while the job runs.
    pub fn observe(self, metrics: &JobMetrics) -> Self {
        StatelessJob { metrics: Some(metrics.clone()), ..self }
    }

    /// Runs the job to the end of its sources on `config.shards` pinned threads.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for a bad config, [`Error::OperatorPanicked`] naming the
    /// operator if one panicked (after every shard thread has stopped).
    pub fn run(self) -> Result<JobOutput<Snk::Output, ()>, Error> {
        let config = self.stream.config;
        config.validate()?;
        check_metrics(&self.metrics, config)?;
        let names = OperatorNames {
            source: self.stream.source_name,
            key_by: "(none)",
            operator: "(none)",
            sink: self.sink_name,
            late_sink: "(none)",
        };
        let work: Vec<_> = (0..config.shards)
            .map(|index| StatelessShard {
                index,
                names,
                source: (self.stream.source)(Partition { index, count: config.shards }),
                chain: self.stream.chain.clone(),
                sink: (self.sink)(index),
                batch: config.batch_records,
                metrics: self.metrics.clone(),
            })
            .collect();
        Ok(collect_output(run_on_shards(work)?))
    }
}

fn check_metrics(metrics: &Option<JobMetrics>, config: JobConfig) -> Result<(), Error> {
    match metrics {
        Some(metrics) if metrics.shards() != config.shards => Err(Error::InvalidJob(format!(
            "metrics for {} shards observe a job of {}",
            metrics.shards(),
            config.shards
        ))),
        _ => Ok(()),
    }
}

/// A complete keyed job (windows or a keyed process function), ready to run.
pub struct KeyedJob<S, C, KF, K, OF, Snk, LSnk> {
    operated: OperatorStream<S, C, KF, K, OF, LSnk>,
    sink_name: &'static str,
    sink: Factory<usize, Snk>,
    metrics: Option<JobMetrics>,
}

impl<S, C, KF, K, OF, Snk, LSnk> KeyedJob<S, C, KF, K, OF, Snk, LSnk>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Clone + Send + 'static,
    K: Copy + Eq + Hash + Send + 'static,
    OF: OperatorFactory<K, C::Out>,
    Snk: Sink<<OF::Operator as KeyedOperator<K, C::Out>>::Output>,
    LSnk: Sink<Stamped<C::Out>>,
{
    /// Publishes live numbers into `metrics` while the job runs.
    pub fn observe(self, metrics: &JobMetrics) -> Self {
        KeyedJob { metrics: Some(metrics.clone()), ..self }
    }

    /// Runs the job over the `rtrb` mesh to the end of its sources on `config.shards`
    /// pinned threads; every window has fired when it returns.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for a bad config, [`Error::OperatorPanicked`] naming the
    /// operator if one panicked (after every shard thread has stopped).
    pub fn run(self) -> Result<JobOutput<Snk::Output, LSnk::Output>, Error> {
        self.run_on(RtrbExchange)
    }

    /// [`KeyedJob::run`] over another kind of exchange channel.
    ///
    /// # Errors
    /// As [`KeyedJob::run`].
    pub fn run_on<X: Exchange>(
        self,
        exchange: X,
    ) -> Result<JobOutput<Snk::Output, LSnk::Output>, Error> {
        let config = self.stream_config();
        config.validate()?;
        check_metrics(&self.metrics, config)?;
        let names = self.names();
        let KeyedJob { operated, sink, metrics, .. } = self;
        let work = build_shards(&operated, &sink, &exchange, names, metrics, |_, _| Ok(None))?;
        Ok(collect_output(run_on_shards(work)?))
    }
}

impl<S, C, KF, K, OF, Snk, LSnk> KeyedJob<S, C, KF, K, OF, Snk, LSnk>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Clone + Send + 'static,
    K: Copy + Eq + Hash + Send + 'static,
    OF: OperatorFactory<K, C::Out>,
    OF::Operator: SnapshotState<K, C::Out>,
    Snk: Sink<<OF::Operator as KeyedOperator<K, C::Out>>::Output>,
    LSnk: Sink<Stamped<C::Out>>,
{
    /// Runs the job with exactly-once checkpoints through `coordinator` (see
    /// [`checkpoint`](super::checkpoint) for the whole protocol): waits for leadership,
    /// restores the latest completed checkpoint onto `config.shards` shards, checkpoints
    /// every `settings.interval`, and ends with a final checkpoint that commits all output.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for bad config or settings; [`Error::NotCheckpointable`] for a
    /// source, sink or operator without checkpoint support; [`Error::LeadershipLost`] when
    /// the coordination session expired or another process leads; [`Error::Coordination`]
    /// when the service stayed unreachable past `settings.coordination_retry_max`; what a
    /// shard failed with.
    pub fn run_checkpointed(
        self,
        settings: CheckpointSettings,
        coordinator: Arc<dyn Coordinator>,
    ) -> Result<CheckpointedOutput<Snk::Output, LSnk::Output>, Error> {
        let config = self.stream_config();
        config.validate()?;
        settings.validate()?;
        check_metrics(&self.metrics, config)?;
        let coordinator: &dyn Coordinator = &*coordinator;
        checkpoint_driver::await_leadership(&settings, coordinator)?;
        let restore_started = Instant::now();
        let (plan, restore_failures, recorded) =
            checkpoint_driver::find_restore_plan(&settings, coordinator, config.key_groups)?;
        let refs = checkpoint_driver::remove_unrecorded_state(&settings, &recorded);
        let driver = Driver::new(&settings, coordinator, config.shards, config.key_groups, refs)?;
        let names = self.names();
        let KeyedJob { operated, sink, metrics, .. } = self;
        let (trigger, plan_ref) = (driver.trigger.clone(), plan.as_ref());
        let work =
            build_shards(&operated, &sink, &RtrbExchange, names, metrics, |parts, scope| {
                restore_shard(parts, plan_ref, names)?;
                let checkpointing =
                    ShardCheckpointing::new(trigger.clone(), scope.clone(), driver.task_sender());
                let snapshot: SnapshotFn<OF::Operator> = |operator, out| operator.snapshot(out);
                Ok(Some((checkpointing, snapshot)))
            })?;
        let restore_duration = restore_started.elapsed();
        let (shard_results, driven) = run_supervised(work, |abort| driver.run(abort));
        let report = driven?;
        let output = collect_output(shard_results?);
        Ok(CheckpointedOutput {
            output,
            restored_from: plan.map(|plan| plan.epoch),
            restore_failures,
            restore_duration,
            completed: report.completed,
            aborted: report.aborted,
        })
    }
}

/// Restores one shard's parts from `plan` (or, without one, starts its sink afresh), after
/// checking that its source, sink and operator can take part in checkpoints.
fn restore_shard<S, T, Op, Snk, K>(
    parts: &mut ShardSetup<'_, S, Op, Snk>,
    plan: Option<&RestorePlan>,
    names: OperatorNames,
) -> Result<(), Error>
where
    S: Source,
    Op: SnapshotState<K, T>,
    Snk: Sink<<Op as KeyedOperator<K, T>>::Output>,
    Op: KeyedOperator<K, T>,
{
    let not_checkpointable = |reason: String| Error::NotCheckpointable(reason);
    parts.operator.check_checkpointable().map_err(not_checkpointable)?;
    parts.source.position(&mut Vec::new()).map_err(|error| named(names.source, error))?;
    let (epoch, positions) =
        plan.map_or((0, &[][..]), |plan| (plan.epoch, &plan.sink_positions[..]));
    parts
        .sink
        .restore(epoch, positions, parts.partition)
        .map_err(|error| named(names.sink, error))?;
    let Some(plan) = plan else { return Ok(()) };
    parts.source.seek(&plan.source_offsets).map_err(|error| named(names.source, error))?;
    parts.operator.restore_time(plan.watermark);
    *parts.start_time = plan.watermark;
    for group in parts.scope.range() {
        for (chunk, bytes) in plan.chunks(group) {
            parts.operator.restore(group, chunk, bytes).map_err(|error| {
                Error::Checkpoint(format!(
                    "checkpoint {}: key group {group} (chunk {chunk}) of operator `{}` does \
                     not decode: {error}",
                    plan.epoch, names.operator
                ))
            })?;
        }
    }
    Ok(())
}

/// Prefixes an error about a source or sink with its name.
fn named(name: &str, error: Error) -> Error {
    match error {
        Error::NotCheckpointable(message) => {
            Error::NotCheckpointable(format!("`{name}`: {message}"))
        }
        Error::Checkpoint(message) => Error::Checkpoint(format!("`{name}`: {message}")),
        other => other,
    }
}

/// A shard's parts as a checkpointed run restores them, before the shard is built.
struct ShardSetup<'a, S, Op, Snk> {
    partition: Partition,
    scope: &'a KeyScope,
    source: &'a mut S,
    operator: &'a mut Op,
    sink: &'a mut Snk,
    start_time: &'a mut u64,
}

impl<S, C, KF, K, OF, Snk, LSnk> KeyedJob<S, C, KF, K, OF, Snk, LSnk>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Clone + Send + 'static,
{
    fn stream_config(&self) -> JobConfig {
        self.operated.keyed.stream.config
    }

    fn names(&self) -> OperatorNames {
        let keyed = &self.operated.keyed;
        OperatorNames {
            source: keyed.stream.source_name,
            key_by: keyed.name,
            operator: self.operated.operator_name,
            sink: self.sink_name,
            late_sink: self.operated.late_sink_name,
        }
    }
}

type Work<S, C, KF, K, OF, Snk, LSnk, X> = KeyedShard<
    S,
    C,
    KF,
    K,
    <OF as OperatorFactory<K, <C as Chain<<S as Source>::Record>>::Out>>::Operator,
    Snk,
    LSnk,
    X,
>;

/// Builds every shard of a keyed job over `exchange`; `checkpointing` may restore a shard's
/// parts and gives its checkpoint machinery (`None` for a plain run).
#[allow(clippy::type_complexity)]
fn build_shards<S, C, KF, K, OF, Snk, LSnk, X>(
    operated: &OperatorStream<S, C, KF, K, OF, LSnk>,
    sink: &Factory<usize, Snk>,
    exchange: &X,
    names: OperatorNames,
    metrics: Option<JobMetrics>,
    mut checkpointing: impl FnMut(
        &mut ShardSetup<'_, S, OF::Operator, Snk>,
        &KeyScope,
    ) -> Result<
        Option<(ShardCheckpointing, SnapshotFn<OF::Operator>)>,
        Error,
    >,
) -> Result<Vec<Work<S, C, KF, K, OF, Snk, LSnk, X>>, Error>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Clone + Send + 'static,
    K: Copy + Eq + Hash + Send + 'static,
    OF: OperatorFactory<K, C::Out>,
    Snk: Sink<<OF::Operator as KeyedOperator<K, C::Out>>::Output>,
    LSnk: Sink<Stamped<C::Out>>,
    X: Exchange,
{
    let keyed = &operated.keyed;
    let stream = &keyed.stream;
    let config = stream.config;
    let key_groups = KeyGroups::new(config.key_groups, config.shards);
    let ports = MeshBuilder::new(config.shards, config.ring_slots)
        .build::<C::Out, X>(exchange, config.batch_records + 2);
    let mut work = Vec::with_capacity(config.shards);
    for (index, ports) in ports.into_iter().enumerate() {
        let partition = Partition { index, count: config.shards };
        let scope = KeyScope::new(key_groups, index);
        let mut source = (stream.source)(partition);
        let mut operator = operated.operator.build(&scope);
        let mut sink = (sink)(index);
        let mut start_time = 0;
        let mut setup = ShardSetup {
            partition,
            scope: &scope,
            source: &mut source,
            operator: &mut operator,
            sink: &mut sink,
            start_time: &mut start_time,
        };
        let checkpointing = checkpointing(&mut setup, &scope)?;
        work.push(KeyedShard::<_, _, _, K, _, _, _, X>::new(KeyedShardParts {
            index,
            names,
            source,
            chain: stream.chain.clone(),
            key_fn: keyed.key_fn.clone(),
            key_groups,
            outboxes: ports.outboxes,
            inboxes: ports.inboxes,
            operator,
            sink,
            late_sink: (operated.late_sink)(index),
            batch: config.batch_records,
            idleness: stream.idleness,
            drift_max_ms: config.drift_max_ms,
            metrics: metrics.clone(),
            checkpointing,
            start_time,
        }));
    }
    Ok(work)
}

fn collect_output<O, L>(outputs: Vec<(O, L, ShardStats)>) -> JobOutput<O, L> {
    let mut output =
        JobOutput { sink_outputs: Vec::new(), late_outputs: Vec::new(), shards: Vec::new() };
    for (sink_output, late_output, stats) in outputs {
        output.sink_outputs.push(sink_output);
        output.late_outputs.push(late_output);
        output.shards.push(stats);
    }
    output
}
