//! The job API: how a user describes a stream job, in the style of Flink's DataStream API.
//!
//! ```text
//! Job::new(config)
//!     .source("events", |partition| Generator::new(..., partition))
//!     .map("parse", ..).filter("valid", ..).flat_map("split", ..)   // fused, one loop
//!     .key_by("by_user", |event| event.key)                          // the exchange
//!     .window(Tumbling::of(1000))
//!     .aggregate("count", Count)
//!     .sink("out", |_shard| CollectSink::default())
//!     .run()?
//! ```
//!
//! Each step returns a new type that carries the whole pipeline in its generic
//! parameters, so `run` compiles to one specialised loop per shard: no boxed operator and
//! no virtual call per record. Every operator has a name, used in error messages. The
//! routing contract is explicit in the shape of the pipeline, as timely's `pact`: records
//! stay on their shard (pipeline) until `key_by`, which exchanges them over the mesh by
//! key group; a stream without `key_by` runs source → chain → sink on each shard alone.
//! Sources and sinks are factories called once per shard, on the caller's thread.

use super::aggregate::Aggregate;
use super::chain::{Chain, Identity};
use super::filter::Filter;
use super::flat_map::{Emitter, FlatMap};
use super::input_tracker::InputTracker;
use super::item::Stamped;
use super::key_group::KeyGroups;
use super::map::Map;
use super::mesh::MeshBuilder;
use super::runtime::run_on_shards;
use super::shard::{OperatorNames, ShardStats, StatelessShard, WindowedShard};
use super::sink::Sink;
use super::source::{Partition, Source, SourceStatus};
use super::window::{Tumbling, WindowOperator, WindowResult};
use crate::constants::{
    KEY_GROUPS_DEFAULT, KEY_GROUPS_MAX, RING_SLOTS_DEFAULT, RING_SLOTS_MAX, SHARDS_MAX,
    SOURCE_BATCH_RECORDS_DEFAULT, SOURCE_BATCH_RECORDS_MAX,
};
use crate::Error;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

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
}

impl JobConfig {
    /// `shards` shards with the default ring size, key groups and batch.
    pub fn new(shards: usize) -> JobConfig {
        JobConfig {
            shards,
            ring_slots: RING_SLOTS_DEFAULT,
            key_groups: KEY_GROUPS_DEFAULT,
            batch_records: SOURCE_BATCH_RECORDS_DEFAULT,
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

/// What a finished job hands back: each shard's sink output and statistics, in shard order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput<O> {
    pub sink_outputs: Vec<O>,
    pub shards: Vec<ShardStats>,
}

impl<O> JobOutput<O> {
    /// Records dropped as late, over all shards.
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
        }
    }
}

/// A stream of records before `key_by`: each shard processes its own source partition.
pub struct Stream<S, C> {
    config: JobConfig,
    source_name: &'static str,
    source: Factory<Partition, S>,
    chain: C,
}

impl<S: Source, C: Chain<S::Record>> Stream<S, C> {
    fn with_chain<D>(self, chain: D) -> Stream<S, D> {
        Stream { config: self.config, source_name: self.source_name, source: self.source, chain }
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
    pub fn key_by<KF, K>(self, name: &'static str, key_fn: KF) -> KeyedStream<S, C, KF>
    where
        KF: Fn(&C::Out) -> K + Clone + Send + 'static,
        K: Copy + Eq + Hash + Send + 'static,
    {
        KeyedStream { stream: self, name, key_fn }
    }

    /// Ends the (unkeyed) stream in a sink on each shard.
    pub fn sink<Snk: Sink<Stamped<C::Out>>>(
        self,
        name: &'static str,
        factory: impl Fn(usize) -> Snk + Send + Sync + 'static,
    ) -> StatelessJob<S, C, Snk> {
        StatelessJob { stream: self, sink_name: name, sink: Arc::new(factory) }
    }
}

/// A stream partitioned by key.
pub struct KeyedStream<S, C, KF> {
    stream: Stream<S, C>,
    name: &'static str,
    key_fn: KF,
}

impl<S, C, KF> KeyedStream<S, C, KF> {
    /// Groups each key's records into event-time windows.
    pub fn window(self, window: Tumbling) -> WindowedStream<S, C, KF> {
        WindowedStream { keyed: self, window }
    }
}

/// A keyed stream cut into windows.
pub struct WindowedStream<S, C, KF> {
    keyed: KeyedStream<S, C, KF>,
    window: Tumbling,
}

impl<S, C, KF> WindowedStream<S, C, KF> {
    /// Folds each (key, window) with `aggregate`.
    pub fn aggregate<A>(self, name: &'static str, aggregate: A) -> AggregatedStream<S, C, KF, A> {
        AggregatedStream { windowed: self, name, aggregate }
    }
}

/// Window results, one per key and window.
pub struct AggregatedStream<S, C, KF, A> {
    windowed: WindowedStream<S, C, KF>,
    name: &'static str,
    aggregate: A,
}

impl<S, C, KF, A> AggregatedStream<S, C, KF, A> {
    /// Ends the stream in a sink on each shard.
    pub fn sink<Snk>(
        self,
        name: &'static str,
        factory: impl Fn(usize) -> Snk + Send + Sync + 'static,
    ) -> WindowedJob<S, C, KF, A, Snk> {
        WindowedJob { aggregated: self, sink_name: name, sink: Arc::new(factory) }
    }
}

/// A complete job without an exchange, ready to run.
pub struct StatelessJob<S, C, Snk> {
    stream: Stream<S, C>,
    sink_name: &'static str,
    sink: Factory<usize, Snk>,
}

impl<S, C, Snk> StatelessJob<S, C, Snk>
where
    S: Source,
    C: Chain<S::Record>,
    Snk: Sink<Stamped<C::Out>>,
{
    /// Runs the job to the end of its sources on `config.shards` pinned threads.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for a bad config, [`Error::OperatorPanicked`] naming the
    /// operator if one panicked (after every shard thread has stopped).
    pub fn run(self) -> Result<JobOutput<Snk::Output>, Error> {
        let config = self.stream.config;
        config.validate()?;
        let names = OperatorNames {
            source: self.stream.source_name,
            key_by: "(none)",
            aggregate: "(none)",
            sink: self.sink_name,
        };
        let work: Vec<_> = (0..config.shards)
            .map(|index| StatelessShard {
                index,
                names,
                source: (self.stream.source)(Partition { index, count: config.shards }),
                chain: self.stream.chain.clone(),
                sink: (self.sink)(index),
                batch: config.batch_records,
            })
            .collect();
        Ok(collect_output(run_on_shards(work)?))
    }
}

/// A complete keyed, windowed job, ready to run.
pub struct WindowedJob<S, C, KF, A, Snk> {
    aggregated: AggregatedStream<S, C, KF, A>,
    sink_name: &'static str,
    sink: Factory<usize, Snk>,
}

impl<S, C, KF, K, A, Snk> WindowedJob<S, C, KF, A, Snk>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Clone + Send + 'static,
    K: Copy + Eq + Hash + Send + 'static,
    A: Aggregate<C::Out>,
    Snk: Sink<WindowResult<K, A::Output>>,
{
    /// Runs the job to the end of its sources on `config.shards` pinned threads; every
    /// window has fired when it returns.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for a bad config, [`Error::OperatorPanicked`] naming the
    /// operator if one panicked (after every shard thread has stopped).
    pub fn run(self) -> Result<JobOutput<Snk::Output>, Error> {
        let aggregated = &self.aggregated;
        let keyed = &aggregated.windowed.keyed;
        let stream = &keyed.stream;
        let config = stream.config;
        config.validate()?;
        let names = OperatorNames {
            source: stream.source_name,
            key_by: keyed.name,
            aggregate: aggregated.name,
            sink: self.sink_name,
        };
        let key_groups = KeyGroups::new(config.key_groups, config.shards);
        let ports = MeshBuilder::new(config.shards, config.ring_slots)
            .build::<C::Out>(config.batch_records + 2);
        let work: Vec<_> = ports
            .into_iter()
            .enumerate()
            .map(|(index, ports)| WindowedShard {
                index,
                names,
                source: (stream.source)(Partition { index, count: config.shards }),
                source_status: SourceStatus::Active,
                chain: stream.chain.clone(),
                key_fn: keyed.key_fn.clone(),
                key_groups,
                outboxes: ports.outboxes,
                inboxes: ports.inboxes,
                tracker: InputTracker::new(config.shards),
                window: WindowOperator::new(
                    aggregated.windowed.window,
                    aggregated.aggregate.clone(),
                ),
                sink: (self.sink)(index),
                pulled: Vec::with_capacity(config.batch_records),
                batch: config.batch_records,
                max_timestamp: 0,
                watermark_sent: 0,
                end_staged: false,
                stats: ShardStats::default(),
            })
            .collect();
        Ok(collect_output(run_on_shards(work)?))
    }
}

fn collect_output<O>(outputs: Vec<(O, ShardStats)>) -> JobOutput<O> {
    let (sink_outputs, shards) = outputs.into_iter().unzip();
    JobOutput { sink_outputs, shards }
}
