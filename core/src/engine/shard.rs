//! The shard loops: what one thread does, batch by batch, until its stream ends.
//!
//! A keyed shard repeats three steps, none of which ever blocks:
//!
//! 1. **Drain inputs.** Read every input ring empty (one chunked read each), handing
//!    records to the keyed operator (a window operator or the user's keyed process
//!    function; a record it refuses as late goes to the late side output) and control
//!    items to the [`InputTracker`]; let the operator fire what the watermark has passed.
//! 2. **Flush outputs.** Hand staged items to their rings, as many as fit.
//! 3. **Pull the source**, only if every staged item is in a ring: run one batch through
//!    the fused chain, route each record by key group into the staging of its target
//!    shard, then stage a watermark (`max timestamp - bound`) to every target. A shard's
//!    own share goes through its ring to itself like every other share (the ring paces
//!    it: measured, two shards run ~30% slower when a shard handles its own share at
//!    once), except in a one-shard job, whose records go straight to the operator.
//!
//! With watermark alignment, a shard also stops pulling while its source's newest
//! timestamp is more than the allowed drift ahead of its watermark.
//!
//! So a shard whose target rings are full stops pulling (backpressure reaches the source)
//! but keeps draining its own inputs, which is what keeps the mesh free of deadlock: every
//! ring always has a consumer making progress, even with every key on one shard and rings
//! of two slots. Staging holds at most one source batch (plus control items) per target.
//! When the source is exhausted the shard stages `End` to every target; it stops once
//! `End` has arrived on all its inputs (its watermark is then the end of time, so every
//! window has fired) and its own items are all handed over.
//!
//! A source that gives nothing for the job's idle timeout makes its shard stage `Idle` to
//! every target, so the silent source stops holding the watermark back; its next batch
//! ends with a watermark, which makes it count again. A processing-time operator ignores
//! watermarks: the shard reads its wall clock once per loop and advances the operator to
//! it, and stamps records with that time when they arrive.
//!
//! Every loop iteration (one batch, never one record) the shard may publish its numbers to
//! the job's [`JobMetrics`].

use super::chain::{guarded, Chain};
use super::checkpoint_driver::{ShardCheckpointing, SnapshotTask};
use super::input_tracker::{Advance, InputTracker};
use super::item::{Item, Stamped};
use super::key_group::KeyGroups;
use super::mesh::{ChannelConsumer, Exchange, ExchangeOutbox, Outbox};
use super::metrics::{JobMetrics, LiveGauges};
use super::operator::KeyedOperator;
use super::runtime::ShardWork;
use super::sink::Sink;
use super::snapshot::KeyGroupWriter;
use super::source::{Source, SourceStatus};
use super::window::TimeDomain;
use crate::constants::{FINAL_CHECKPOINT_POLL, SHARD_IDLE_SPINS_MAX};
use crate::coordinator::SourceOffset;
use crate::Error;
use std::collections::VecDeque;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What one shard did, for tests, benchmarks and the job's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Records the shard's source gave.
    pub records_pulled: u64,
    /// Records that arrived on the shard's input rings (keyed jobs).
    pub records_received: u64,
    /// Results handed to the sink.
    pub results_out: u64,
    /// Records refused as late, handed to the late side output.
    pub late_records: u64,
    /// Windows fired (each counted once per shard holding keys of it).
    pub windows_fired: u64,
    /// Extra firings caused by records within the allowed lateness.
    pub late_firings: u64,
    /// Barriers that arrived on every input of the shard.
    pub barriers_aligned: u64,
    /// The most items found waiting in the shard's input rings at once.
    pub ring_occupancy_max: u64,
    /// The furthest the shard's watermark trailed the newest event time of its source, ms.
    pub watermark_lag_max_ms: u64,
    /// Times the shard's source went idle.
    pub idle_periods: u64,
}

/// The names of a job's operators, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperatorNames {
    pub source: &'static str,
    pub key_by: &'static str,
    pub operator: &'static str,
    pub sink: &'static str,
    pub late_sink: &'static str,
}

/// Spins, then yields, while a shard finds nothing to do.
fn back_off(progress: bool, idle_spins: &mut u32) {
    if progress {
        *idle_spins = 0;
    } else if *idle_spins < SHARD_IDLE_SPINS_MAX {
        *idle_spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn check_abort(abort: &AtomicBool, shard: usize) -> Result<(), Error> {
    if abort.load(Ordering::Relaxed) {
        return Err(Error::JobAborted { shard });
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: the clock of processing-time windows.
fn processing_time_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

/// A shard of a job without an exchange: source → chain → sink.
pub(crate) struct StatelessShard<S: Source, C, Snk> {
    pub index: usize,
    pub names: OperatorNames,
    pub source: S,
    pub chain: C,
    pub sink: Snk,
    pub batch: usize,
    pub metrics: Option<JobMetrics>,
}

impl<S, C, Snk> ShardWork for StatelessShard<S, C, Snk>
where
    S: Source,
    C: Chain<S::Record>,
    Snk: Sink<Stamped<C::Out>>,
{
    type Output = (Snk::Output, (), ShardStats);

    fn run(mut self, abort: &AtomicBool) -> Result<Self::Output, Error> {
        let mut stats = ShardStats::default();
        let mut pulled = Vec::with_capacity(self.batch);
        let (mut status, mut idle_spins) = (SourceStatus::Active, 0);
        while status == SourceStatus::Active {
            check_abort(abort, self.index)?;
            pulled.clear();
            let Self { source, chain, sink, names, batch, .. } = &mut self;
            status = guarded(names.source, || source.pull(&mut pulled, *batch));
            for stamped in &pulled {
                chain.run(stamped.timestamp, stamped.record, &mut |timestamp, record| {
                    stats.results_out += 1;
                    guarded(names.sink, || sink.write(&Stamped { timestamp, record }));
                });
            }
            stats.records_pulled += pulled.len() as u64;
            if let Some(metrics) = &self.metrics {
                metrics.publish(self.index, &stats, LiveGauges::default());
            }
            back_off(!pulled.is_empty(), &mut idle_spins);
        }
        let sink = self.sink;
        Ok((guarded(self.names.sink, || sink.finish()), (), stats))
    }
}

/// The keyed half of a shard, borrowed for one record: operator, sinks, statistics.
struct Downstream<'a, Op, Snk, LSnk> {
    operator: &'a mut Op,
    sink: &'a mut Snk,
    late_sink: &'a mut LSnk,
    names: &'a OperatorNames,
    stats: &'a mut ShardStats,
}

impl<Op, Snk, LSnk> Downstream<'_, Op, Snk, LSnk> {
    /// Hands one record of the shard's key groups to the operator; a late one goes to the
    /// late side output.
    #[inline(always)]
    fn deliver<K, T>(self, key: K, timestamp: u64, record: T)
    where
        Op: KeyedOperator<K, T>,
        Snk: Sink<Op::Output>,
        LSnk: Sink<Stamped<T>>,
    {
        let Downstream { operator, sink, late_sink, names, stats } = self;
        stats.records_received += 1;
        let mut emit = |output: Op::Output| {
            stats.results_out += 1;
            guarded(names.sink, || sink.write(&output));
        };
        let taken =
            guarded(names.operator, || operator.on_record(key, timestamp, &record, &mut emit));
        if !taken {
            let late = Stamped { timestamp, record };
            guarded(names.late_sink, || late_sink.write(&late));
        }
    }
}

/// How a keyed shard is wired: everything but the per-run bookkeeping.
pub(crate) struct KeyedShardParts<S: Source, C: Chain<S::Record>, KF, Op, Snk, LSnk, X: Exchange> {
    pub index: usize,
    pub names: OperatorNames,
    pub source: S,
    pub chain: C,
    pub key_fn: KF,
    pub key_groups: KeyGroups,
    pub outboxes: Vec<ExchangeOutbox<C::Out, X>>,
    pub inboxes: Vec<X::Consumer<C::Out>>,
    pub operator: Op,
    pub sink: Snk,
    pub late_sink: LSnk,
    pub batch: usize,
    pub idleness: Option<Duration>,
    pub drift_max_ms: Option<u64>,
    pub metrics: Option<JobMetrics>,
    /// For a checkpointed job: the checkpoint machinery and how to snapshot the operator.
    pub checkpointing: Option<(ShardCheckpointing, SnapshotFn<Op>)>,
    /// The operator's time to start from (a restored checkpoint's watermark, or 0).
    pub start_time: u64,
}

/// Copies an operator's state into snapshot buffers (`SnapshotState::snapshot`, named
/// where the operator's type is known to support it).
pub(crate) type SnapshotFn<Op> = fn(&mut Op, &mut KeyGroupWriter);

/// A checkpointed shard's barrier bookkeeping.
struct Alignment<T, Op> {
    checkpointing: ShardCheckpointing,
    snapshot: SnapshotFn<Op>,
    /// Inputs that delivered the barrier being aligned: not read until it completes.
    blocked: Vec<bool>,
    /// Items read behind a barrier in the same chunk, per input, handled after alignment.
    parked: Vec<Vec<Item<T>>>,
    /// Epochs injected and not yet snapshotted, with the source position at injection.
    pending: VecDeque<(u64, Vec<SourceOffset>)>,
    /// The newest epoch injected.
    injected: u64,
    /// When the first barrier of the epoch being aligned arrived.
    first_barrier: Option<Instant>,
    /// Bytes of each key group's buffer in the last snapshot.
    group_bytes: Vec<usize>,
    /// The epoch of the shard's last snapshot (the base of an incremental one).
    previous: Option<u64>,
}

/// A shard of a keyed job: source → chain → exchange → keyed operator → sink.
pub(crate) struct KeyedShard<S: Source, C: Chain<S::Record>, KF, K, Op, Snk, LSnk, X: Exchange> {
    parts: KeyedShardParts<S, C, KF, Op, Snk, LSnk, X>,
    source_status: SourceStatus,
    tracker: InputTracker,
    pulled: Vec<Stamped<S::Record>>,
    /// Largest timestamp the source gave.
    max_timestamp: u64,
    watermark_sent: u64,
    end_staged: bool,
    /// The source gave a record at this time (tracked only with an idle timeout).
    last_record_at: Instant,
    idle_sent: bool,
    processing: bool,
    /// Time the operator was last advanced to.
    operator_time: u64,
    ring_occupancy: u64,
    /// A job of one shard: its items go to `own_staged`, not through a ring to itself.
    own_direct: bool,
    /// Items for the shard's own key groups when `own_direct`, handled right after the pull.
    own_staged: Vec<Item<C::Out>>,
    alignment: Option<Alignment<C::Out, Op>>,
    /// A checkpoint step failed (source position, sink commit): the shard stops with it.
    failure: Option<Error>,
    stats: ShardStats,
    key: PhantomData<fn() -> K>,
}

impl<S, C, KF, K, Op, Snk, LSnk, X> KeyedShard<S, C, KF, K, Op, Snk, LSnk, X>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Send,
    K: Copy + Eq + Hash + Send,
    Op: KeyedOperator<K, C::Out>,
    Snk: Sink<Op::Output>,
    LSnk: Sink<Stamped<C::Out>>,
    X: Exchange,
{
    pub(crate) fn new(mut parts: KeyedShardParts<S, C, KF, Op, Snk, LSnk, X>) -> Self {
        let inputs = parts.inboxes.len();
        let processing = parts.operator.time_domain() == TimeDomain::ProcessingTime;
        let alignment = parts.checkpointing.take().map(|(checkpointing, snapshot)| Alignment {
            checkpointing,
            snapshot,
            blocked: vec![false; inputs],
            parked: (0..inputs).map(|_| Vec::new()).collect(),
            pending: VecDeque::new(),
            injected: 0,
            first_barrier: None,
            group_bytes: Vec::new(),
            previous: None,
        });
        KeyedShard {
            alignment,
            failure: None,
            source_status: SourceStatus::Active,
            tracker: InputTracker::new(inputs),
            pulled: Vec::with_capacity(parts.batch),
            max_timestamp: 0,
            watermark_sent: 0,
            end_staged: false,
            last_record_at: Instant::now(),
            idle_sent: false,
            processing,
            operator_time: parts.start_time,
            ring_occupancy: 0,
            own_direct: inputs == 1,
            own_staged: Vec::with_capacity(parts.batch + 2),
            stats: ShardStats::default(),
            key: PhantomData,
            parts,
        }
    }
}

impl<S, C, KF, K, Op, Snk, LSnk, X> ShardWork for KeyedShard<S, C, KF, K, Op, Snk, LSnk, X>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Send,
    K: Copy + Eq + Hash + Send,
    Op: KeyedOperator<K, C::Out>,
    Snk: Sink<Op::Output>,
    LSnk: Sink<Stamped<C::Out>>,
    X: Exchange,
{
    type Output = (Snk::Output, LSnk::Output, ShardStats);

    fn run(mut self, abort: &AtomicBool) -> Result<Self::Output, Error> {
        let mut idle_spins = 0;
        self.last_record_at = Instant::now();
        while !(self.end_staged && self.outboxes_flushed() && self.tracker.all_ended()) {
            check_abort(abort, self.parts.index)?;
            if self.processing {
                self.advance_operator(processing_time_ms());
            }
            let mut progress = self.drain_inputs();
            if self.alignment.is_some() {
                progress |= self.poll_trigger();
                if let Some(error) = self.failure.take() {
                    return Err(error);
                }
            }
            progress |= self.flush_outboxes();
            if self.outboxes_flushed() && self.is_aligned() && self.pull_or_end() {
                self.flush_outboxes();
                self.process_own();
                progress = true;
            }
            self.publish();
            back_off(progress, &mut idle_spins);
        }
        // Every input has ended: the end of time, for event and processing time alike.
        self.advance_operator(u64::MAX);
        let counters = self.parts.operator.counters();
        self.stats.late_records = counters.late_records;
        self.stats.windows_fired = counters.windows_fired;
        self.stats.late_firings = counters.late_firings;
        self.publish();
        if self.alignment.is_some() {
            self.final_checkpoint(abort)?;
        }
        let KeyedShardParts { sink, late_sink, names, .. } = self.parts;
        let output = guarded(names.sink, || sink.finish());
        let late_output = guarded(names.late_sink, || late_sink.finish());
        Ok((output, late_output, self.stats))
    }
}

impl<S, C, KF, K, Op, Snk, LSnk, X> KeyedShard<S, C, KF, K, Op, Snk, LSnk, X>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Send,
    K: Copy + Eq + Hash + Send,
    Op: KeyedOperator<K, C::Out>,
    Snk: Sink<Op::Output>,
    LSnk: Sink<Stamped<C::Out>>,
    X: Exchange,
{
    fn outboxes_flushed(&self) -> bool {
        self.parts.outboxes.iter().all(Outbox::is_flushed)
    }

    fn flush_outboxes(&mut self) -> bool {
        // Every outbox must be flushed, so no short-circuiting `any`.
        let moved: usize = self.parts.outboxes.iter_mut().map(Outbox::flush).sum();
        moved > 0
    }

    /// False while the shard's source is too far ahead of its watermark to pull more (see
    /// `JobConfig::drift_max_ms`).
    fn is_aligned(&self) -> bool {
        let Some(drift_max) = self.parts.drift_max_ms else { return true };
        let limit = self.tracker.watermark().saturating_add(drift_max);
        self.source_status == SourceStatus::Exhausted || self.max_timestamp <= limit
    }

    /// Publishes the shard's numbers, if the job is observed.
    fn publish(&mut self) {
        let watermark = self.tracker.watermark();
        let lag =
            if watermark == u64::MAX { 0 } else { self.max_timestamp.saturating_sub(watermark) };
        self.stats.watermark_lag_max_ms = self.stats.watermark_lag_max_ms.max(lag);
        if let Some(metrics) = &self.parts.metrics {
            let counters = self.parts.operator.counters();
            let mut stats = self.stats;
            stats.late_records = counters.late_records;
            stats.windows_fired = counters.windows_fired;
            let live = LiveGauges {
                ring_occupancy: self.ring_occupancy,
                watermark,
                watermark_lag_ms: lag,
            };
            metrics.publish(self.parts.index, &stats, live);
        }
    }

    /// Step 1: reads every input ring empty (an input blocked by checkpoint alignment
    /// excepted). Returns whether any item arrived.
    fn drain_inputs(&mut self) -> bool {
        let mut occupancy = 0;
        for input in 0..self.parts.inboxes.len() {
            if let Some(alignment) = &self.alignment {
                if alignment.blocked[input] {
                    continue;
                }
                if !alignment.parked[input].is_empty() && !self.replay_parked(input) {
                    continue;
                }
            }
            let (processing, now) = (self.processing, self.operator_time);
            let KeyedShardParts { inboxes, operator, key_fn, names, sink, late_sink, .. } =
                &mut self.parts;
            let (tracker, stats) = (&mut self.tracker, &mut self.stats);
            let mut parked = self.alignment.as_mut().map(|alignment| &mut alignment.parked[input]);
            let (mut watermark, mut barrier, mut ended) = (None, None, false);
            let count = inboxes[input].drain(|item| {
                if barrier.is_some() {
                    // Behind a barrier: the next epoch's, handled once it is aligned.
                    parked.as_mut().expect("barriers come only to checkpointed jobs").push(*item);
                    return;
                }
                match *item {
                    Item::Record(Stamped { timestamp, record }) => {
                        let key = guarded(names.key_by, || key_fn(&record));
                        let timestamp = if processing { now } else { timestamp };
                        let downstream = Downstream { operator, sink, late_sink, names, stats };
                        downstream.deliver(key, timestamp, record);
                    }
                    Item::Watermark(timestamp) => {
                        if let Advance::Watermark(raised) = tracker.on_watermark(input, timestamp) {
                            watermark = Some(raised);
                        }
                    }
                    Item::Idle => {
                        if let Advance::Watermark(raised) = tracker.on_idle(input) {
                            watermark = Some(raised);
                        }
                    }
                    Item::Barrier(epoch) => barrier = Some(epoch),
                    Item::End => {
                        ended = true;
                        if let Advance::Watermark(raised) = tracker.on_end(input) {
                            watermark = Some(raised);
                        }
                    }
                }
            });
            if let Some(watermark) = watermark.filter(|_| !self.processing) {
                self.advance_operator(watermark);
            }
            if let Some(epoch) = barrier {
                self.on_barrier(input, epoch);
            } else if ended {
                self.try_complete_alignment();
            }
            occupancy += count as u64;
        }
        self.ring_occupancy = occupancy;
        self.stats.ring_occupancy_max = self.stats.ring_occupancy_max.max(occupancy);
        occupancy > 0
    }

    /// Lets the operator's time reach `time` (never back), emitting what fires into the sink.
    fn advance_operator(&mut self, time: u64) {
        if time <= self.operator_time {
            return;
        }
        self.operator_time = time;
        let KeyedShardParts { operator, sink, names, .. } = &mut self.parts;
        let stats = &mut self.stats;
        guarded(names.operator, || {
            operator.on_watermark(time, &mut |output| {
                stats.results_out += 1;
                guarded(names.sink, || sink.write(&output));
            });
        });
    }

    /// Step 3: pulls and routes one source batch, or stages `End` once the source is
    /// exhausted. Returns whether anything was staged.
    fn pull_or_end(&mut self) -> bool {
        match (self.source_status, self.end_staged) {
            (SourceStatus::Active, _) => self.pull_batch(),
            (SourceStatus::Exhausted, false) => {
                self.stage_control(Item::End);
                self.end_staged = true;
                true
            }
            (SourceStatus::Exhausted, true) => false,
        }
    }

    fn pull_batch(&mut self) -> bool {
        self.pulled.clear();
        let KeyedShardParts { source, batch, names, .. } = &mut self.parts;
        let pulled = &mut self.pulled;
        self.source_status = guarded(names.source, || source.pull(pulled, *batch));
        if self.pulled.is_empty() {
            return self.source_status == SourceStatus::Exhausted || self.check_idle();
        }
        if self.parts.idleness.is_some() {
            self.last_record_at = Instant::now();
        }
        self.route_pulled();
        let bound = self.parts.source.out_of_orderness();
        let watermark = self.max_timestamp.saturating_sub(bound);
        if watermark > self.watermark_sent || self.idle_sent {
            // Rising time, or the first batch after idling: the watermark makes the
            // targets count this input again.
            self.watermark_sent = self.watermark_sent.max(watermark);
            self.stage_control(Item::Watermark(self.watermark_sent));
            self.idle_sent = false;
        }
        true
    }

    /// Stages `Idle` to every target once the source has been silent for the idle timeout.
    /// Returns whether it did.
    fn check_idle(&mut self) -> bool {
        let Some(timeout) = self.parts.idleness else { return false };
        if self.idle_sent || self.last_record_at.elapsed() < timeout {
            return false;
        }
        self.stage_control(Item::Idle);
        self.idle_sent = true;
        self.stats.idle_periods += 1;
        true
    }

    /// Stages a control item for every shard (for this one, behind its own records).
    fn stage_control(&mut self, item: Item<C::Out>) {
        if self.own_direct {
            self.own_staged.push(item);
        } else {
            self.parts.outboxes.iter_mut().for_each(|outbox| outbox.stage(item));
        }
    }

    /// Handles the items staged for the shard's own key groups, in order.
    fn process_own(&mut self) {
        let own = self.parts.index;
        let (processing, now) = (self.processing, self.operator_time);
        let mut watermark = None;
        for index in 0..self.own_staged.len() {
            let item = self.own_staged[index];
            let advance = match item {
                Item::Record(Stamped { timestamp, record }) => {
                    let KeyedShardParts { operator, sink, late_sink, names, key_fn, .. } =
                        &mut self.parts;
                    let key = guarded(names.key_by, || key_fn(&record));
                    let timestamp = if processing { now } else { timestamp };
                    let stats = &mut self.stats;
                    Downstream { operator, sink, late_sink, names, stats }
                        .deliver(key, timestamp, record);
                    continue;
                }
                Item::Watermark(timestamp) => self.tracker.on_watermark(own, timestamp),
                Item::Idle => self.tracker.on_idle(own),
                Item::End => self.tracker.on_end(own),
                Item::Barrier(epoch) => {
                    self.on_barrier(own, epoch);
                    Advance::None
                }
            };
            if let Advance::Watermark(raised) = advance {
                watermark = Some(raised);
            }
        }
        self.own_staged.clear();
        if let (Some(watermark), false) = (watermark, processing) {
            self.advance_operator(watermark);
        }
    }

    /// Runs the pulled batch through the chain and stages each output for the shard owning
    /// its key group (in a one-shard job: `own_staged`).
    fn route_pulled(&mut self) {
        let own_direct = self.own_direct;
        let KeyedShardParts { chain, key_fn, key_groups, outboxes, names, .. } = &mut self.parts;
        let (max_timestamp, own_staged) = (&mut self.max_timestamp, &mut self.own_staged);
        for stamped in self.pulled.iter() {
            *max_timestamp = (*max_timestamp).max(stamped.timestamp);
            chain.run(stamped.timestamp, stamped.record, &mut |timestamp, record| {
                let item = Item::Record(Stamped { timestamp, record });
                if own_direct {
                    // One shard owns every key group: no key to hash here.
                    own_staged.push(item);
                } else {
                    let key = guarded(names.key_by, || key_fn(&record));
                    outboxes[key_groups.shard_of(&key)].stage(item);
                }
            });
        }
        self.stats.records_pulled += self.pulled.len() as u64;
    }
}

/// Checkpoints: barrier injection, alignment, snapshots (only for checkpointed jobs).
impl<S, C, KF, K, Op, Snk, LSnk, X> KeyedShard<S, C, KF, K, Op, Snk, LSnk, X>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Send,
    K: Copy + Eq + Hash + Send,
    Op: KeyedOperator<K, C::Out>,
    Snk: Sink<Op::Output>,
    LSnk: Sink<Stamped<C::Out>>,
    X: Exchange,
{
    /// Injects the newest requested epoch's barrier, once: records the source position and
    /// stages `Barrier(e)` to every target behind what is staged already (after `End`, no
    /// barrier: the inputs count it as arrived). Returns whether it injected.
    fn poll_trigger(&mut self) -> bool {
        let alignment = self.alignment.as_mut().expect("a checkpointed shard");
        let requested = alignment.checkpointing.trigger.requested();
        if requested <= alignment.injected {
            return false;
        }
        alignment.injected = requested;
        let mut offsets = Vec::new();
        let position =
            guarded(self.parts.names.source, || self.parts.source.position(&mut offsets));
        if let Err(error) = position {
            self.failure = Some(error);
            return false;
        }
        alignment.pending.push_back((requested, offsets));
        alignment.checkpointing.trigger.mark_injected();
        if !self.end_staged {
            self.stage_control(Item::Barrier(requested));
            if self.own_direct {
                self.process_own();
            }
        }
        self.try_complete_alignment();
        true
    }

    /// Barrier `epoch` arrived on `input`: block the input until the epoch is aligned.
    fn on_barrier(&mut self, input: usize, epoch: u64) {
        self.tracker.on_barrier(input, epoch);
        let alignment = self.alignment.as_mut().expect("barriers come only to checkpointed jobs");
        alignment.first_barrier.get_or_insert_with(Instant::now);
        alignment.blocked[input] = true;
        self.try_complete_alignment();
    }

    /// Snapshots the oldest injected epoch once its barrier arrived on (or the end of)
    /// every input.
    fn try_complete_alignment(&mut self) {
        let Some(alignment) = self.alignment.as_mut() else { return };
        let Some(&(epoch, _)) = alignment.pending.front() else { return };
        if !self.tracker.is_barrier_aligned(epoch) {
            return;
        }
        let (_, offsets) = alignment.pending.pop_front().expect("checked above");
        let waited = alignment.first_barrier.take().map_or(Duration::ZERO, |at| at.elapsed());
        alignment.blocked.iter_mut().for_each(|blocked| *blocked = false);
        self.stats.barriers_aligned += 1;
        let watermark = self.operator_time;
        if let Err(error) = self.snapshot(epoch, watermark, offsets, waited) {
            self.failure = Some(error);
        }
    }

    /// Copies the operator's state, makes the sink's output durable, and hands both to the
    /// state writer.
    fn snapshot(
        &mut self,
        epoch: u64,
        watermark: u64,
        source_offsets: Vec<SourceOffset>,
        alignment_time: Duration,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let alignment = self.alignment.as_mut().expect("a checkpointed shard");
        let mut writer = alignment.checkpointing.writer();
        // Incremental (unchanged chunks left to the previous snapshot's files) when the
        // previous snapshot's checkpoint completed; a full copy after an abort.
        let recorded = alignment.checkpointing.trigger.last_recorded();
        let base = alignment.previous.filter(|&previous| previous == recorded && recorded != 0);
        writer.set_incremental(base.is_some());
        // Sized as the last snapshot was: state changes slowly, and growing a buffer
        // copies it and touches fresh pages while the shard's loop stands still.
        writer.reserve(&alignment.group_bytes);
        let names = self.parts.names;
        let operator = &mut self.parts.operator;
        guarded(names.operator, || (alignment.snapshot)(operator, &mut writer));
        let sink = guarded(names.sink, || self.parts.sink.prepare_commit())?;
        let state = writer.finish();
        alignment.group_bytes.clear();
        alignment.group_bytes.extend(state.buffers.iter().map(Vec::len));
        alignment.previous = Some(epoch);
        let task = SnapshotTask {
            epoch,
            shard: self.parts.index,
            watermark,
            state,
            base,
            source_offsets,
            sink,
            alignment: alignment_time,
            snapshot: started.elapsed(),
            spare: alignment.checkpointing.spare_sender(),
        };
        // The writer outlives every shard; if it is gone the driver is too.
        let _ = alignment.checkpointing.tasks.send(task);
        Ok(())
    }

    /// Handles items parked behind a barrier of `input`, until another barrier blocks it.
    /// Returns whether the input is free to read again.
    fn replay_parked(&mut self, input: usize) -> bool {
        let alignment = self.alignment.as_mut().expect("a checkpointed shard");
        let items = std::mem::take(&mut alignment.parked[input]);
        for (index, item) in items.iter().enumerate() {
            self.handle_item(input, *item);
            let alignment = self.alignment.as_mut().expect("a checkpointed shard");
            if alignment.blocked[input] {
                alignment.parked[input] = items[index + 1..].to_vec();
                return false;
            }
        }
        true
    }

    /// One item of an input, off the hot path (replayed after alignment).
    fn handle_item(&mut self, input: usize, item: Item<C::Out>) {
        let advance = match item {
            Item::Record(Stamped { timestamp, record }) => {
                let KeyedShardParts { operator, sink, late_sink, names, key_fn, .. } =
                    &mut self.parts;
                let key = guarded(names.key_by, || key_fn(&record));
                let timestamp = if self.processing { self.operator_time } else { timestamp };
                let stats = &mut self.stats;
                Downstream { operator, sink, late_sink, names, stats }
                    .deliver(key, timestamp, record);
                Advance::None
            }
            Item::Watermark(timestamp) => self.tracker.on_watermark(input, timestamp),
            Item::Idle => self.tracker.on_idle(input),
            Item::End => {
                let advance = self.tracker.on_end(input);
                if let (Advance::Watermark(raised), false) = (advance, self.processing) {
                    self.advance_operator(raised);
                }
                self.try_complete_alignment();
                return;
            }
            Item::Barrier(epoch) => {
                self.on_barrier(input, epoch);
                return;
            }
        };
        if let (Advance::Watermark(raised), false) = (advance, self.processing) {
            self.advance_operator(raised);
        }
    }

    /// At the end of the input: waits for the final checkpoint's epoch and snapshots it.
    fn final_checkpoint(&mut self, abort: &AtomicBool) -> Result<(), Error> {
        let trigger = self.alignment.as_ref().expect("checkpointed").checkpointing.trigger.clone();
        trigger.mark_finished();
        let epoch = loop {
            check_abort(abort, self.parts.index)?;
            match trigger.final_epoch() {
                0 => std::thread::sleep(FINAL_CHECKPOINT_POLL),
                epoch => break epoch,
            }
        };
        let mut offsets = Vec::new();
        guarded(self.parts.names.source, || self.parts.source.position(&mut offsets))?;
        self.snapshot(epoch, self.operator_time, offsets, Duration::ZERO)
    }
}
