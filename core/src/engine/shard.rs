//! The shard loops: what one thread does, batch by batch, until its stream ends.
//!
//! A keyed shard repeats three steps, none of which ever blocks:
//!
//! 1. **Drain inputs.** Read every input ring empty (one chunked read each), folding
//!    records into the window state and feeding control items to the [`InputTracker`];
//!    fire the windows the watermark has passed.
//! 2. **Flush outputs.** Hand staged items to their rings, as many as fit.
//! 3. **Pull the source**, only if every staged item is in a ring: run one batch through
//!    the fused chain, route each record by key group into the staging of its target
//!    shard, then stage a watermark (`max timestamp - bound`) to every target.
//!
//! So a shard whose target rings are full stops pulling (backpressure reaches the source)
//! but keeps draining its own inputs, which is what keeps the mesh free of deadlock: every
//! ring always has a consumer making progress, even with every key on one shard and rings
//! of two slots. Staging holds at most one source batch (plus control items) per target.
//! When the source is exhausted the shard stages `End` to every target; it stops once
//! `End` has arrived on all its inputs (its watermark is then the end of time, so every
//! window has fired) and its own items are all handed over.

use super::aggregate::Aggregate;
use super::chain::{guarded, Chain};
use super::input_tracker::{Advance, InputTracker};
use super::item::{Item, Stamped};
use super::key_group::KeyGroups;
use super::mesh::{drain, Outbox};
use super::runtime::ShardWork;
use super::sink::Sink;
use super::source::{Source, SourceStatus};
use super::window::{WindowOperator, WindowResult};
use crate::constants::SHARD_IDLE_SPINS_MAX;
use crate::Error;
use rtrb::Consumer;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};

/// What one shard did, for tests, benchmarks and (later) live statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Records the shard's source gave.
    pub records_pulled: u64,
    /// Records that arrived on the shard's input rings (keyed jobs).
    pub records_received: u64,
    /// Results handed to the sink.
    pub results_out: u64,
    /// Records dropped because their window had already fired (the late side output).
    pub late_records: u64,
    /// Windows fired (each counted once per shard holding keys of it).
    pub windows_fired: u64,
    /// Barriers that arrived on every input of the shard.
    pub barriers_aligned: u64,
}

/// The names of a job's operators, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperatorNames {
    pub source: &'static str,
    pub key_by: &'static str,
    pub aggregate: &'static str,
    pub sink: &'static str,
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

/// A shard of a job without an exchange: source → chain → sink.
pub(crate) struct StatelessShard<S: Source, C, Snk> {
    pub index: usize,
    pub names: OperatorNames,
    pub source: S,
    pub chain: C,
    pub sink: Snk,
    pub batch: usize,
}

impl<S, C, Snk> ShardWork for StatelessShard<S, C, Snk>
where
    S: Source,
    C: Chain<S::Record>,
    Snk: Sink<Stamped<C::Out>>,
{
    type Output = (Snk::Output, ShardStats);

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
            back_off(!pulled.is_empty(), &mut idle_spins);
        }
        let sink = self.sink;
        Ok((guarded(self.names.sink, || sink.finish()), stats))
    }
}

/// A shard of a keyed windowed job: source → chain → exchange → window → sink.
pub(crate) struct WindowedShard<S: Source, C: Chain<S::Record>, KF, K, A, Snk>
where
    A: Aggregate<C::Out>,
{
    pub index: usize,
    pub names: OperatorNames,
    pub source: S,
    pub source_status: SourceStatus,
    pub chain: C,
    pub key_fn: KF,
    pub key_groups: KeyGroups,
    pub outboxes: Vec<Outbox<C::Out>>,
    pub inboxes: Vec<Consumer<Item<C::Out>>>,
    pub tracker: InputTracker,
    pub window: WindowOperator<K, C::Out, A>,
    pub sink: Snk,
    pub pulled: Vec<Stamped<S::Record>>,
    pub batch: usize,
    pub max_timestamp: u64,
    pub watermark_sent: u64,
    pub end_staged: bool,
    pub stats: ShardStats,
}

impl<S, C, KF, K, A, Snk> ShardWork for WindowedShard<S, C, KF, K, A, Snk>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Send,
    K: Copy + Eq + Hash + Send,
    A: Aggregate<C::Out>,
    Snk: Sink<WindowResult<K, A::Output>>,
{
    type Output = (Snk::Output, ShardStats);

    fn run(mut self, abort: &AtomicBool) -> Result<Self::Output, Error> {
        let mut idle_spins = 0;
        while !(self.end_staged && self.outboxes_flushed() && self.tracker.all_ended()) {
            check_abort(abort, self.index)?;
            let mut progress = self.drain_inputs();
            progress |= self.flush_outboxes();
            if self.outboxes_flushed() && self.pull_or_end() {
                self.flush_outboxes();
                progress = true;
            }
            back_off(progress, &mut idle_spins);
        }
        self.stats.late_records = self.window.late_records();
        self.stats.windows_fired = self.window.windows_fired();
        let (sink, name) = (self.sink, self.names.sink);
        Ok((guarded(name, || sink.finish()), self.stats))
    }
}

impl<S, C, KF, K, A, Snk> WindowedShard<S, C, KF, K, A, Snk>
where
    S: Source,
    C: Chain<S::Record>,
    KF: Fn(&C::Out) -> K + Send,
    K: Copy + Eq + Hash + Send,
    A: Aggregate<C::Out>,
    Snk: Sink<WindowResult<K, A::Output>>,
{
    fn outboxes_flushed(&self) -> bool {
        self.outboxes.iter().all(Outbox::is_flushed)
    }

    fn flush_outboxes(&mut self) -> bool {
        // Every outbox must be flushed, so no short-circuiting `any`.
        let moved: usize = self.outboxes.iter_mut().map(Outbox::flush).sum();
        moved > 0
    }

    /// Step 1: reads every input ring empty. Returns whether any item arrived.
    fn drain_inputs(&mut self) -> bool {
        let mut progress = false;
        for input in 0..self.inboxes.len() {
            let Self { inboxes, tracker, window, key_fn, names, stats, .. } = self;
            let mut watermark = None;
            let count = drain(&mut inboxes[input], |item| match *item {
                Item::Record(Stamped { timestamp, record }) => {
                    stats.records_received += 1;
                    let key = guarded(names.key_by, || key_fn(&record));
                    guarded(names.aggregate, || window.add(key, timestamp, &record));
                }
                Item::Watermark(timestamp) => {
                    if let Advance::Watermark(raised) = tracker.on_watermark(input, timestamp) {
                        watermark = Some(raised);
                    }
                }
                Item::Barrier(epoch) => {
                    if let Advance::BarrierAligned(_) = tracker.on_barrier(input, epoch) {
                        stats.barriers_aligned += 1;
                    }
                }
                Item::End => {
                    if let Advance::Watermark(raised) = tracker.on_end(input) {
                        watermark = Some(raised);
                    }
                }
            });
            if let Some(watermark) = watermark {
                self.fire(watermark);
            }
            progress |= count > 0;
        }
        progress
    }

    /// Fires the windows `watermark` has passed into the sink.
    fn fire(&mut self, watermark: u64) {
        let Self { window, sink, names, stats, .. } = self;
        guarded(names.aggregate, || {
            window.advance(watermark, |result| {
                stats.results_out += 1;
                guarded(names.sink, || sink.write(&result));
            });
        });
    }

    /// Step 3: pulls and routes one source batch, or stages `End` once the source is
    /// exhausted. Returns whether anything was staged.
    fn pull_or_end(&mut self) -> bool {
        match (self.source_status, self.end_staged) {
            (SourceStatus::Active, _) => self.pull_batch(),
            (SourceStatus::Exhausted, false) => {
                self.outboxes.iter_mut().for_each(|outbox| outbox.stage(Item::End));
                self.end_staged = true;
                true
            }
            (SourceStatus::Exhausted, true) => false,
        }
    }

    fn pull_batch(&mut self) -> bool {
        self.pulled.clear();
        let Self { source, pulled, batch, names, .. } = self;
        self.source_status = guarded(names.source, || source.pull(pulled, *batch));
        if self.pulled.is_empty() {
            return self.source_status == SourceStatus::Exhausted;
        }
        self.route_pulled();
        let watermark = self.max_timestamp.saturating_sub(self.source.out_of_orderness());
        if watermark > self.watermark_sent {
            self.watermark_sent = watermark;
            self.outboxes.iter_mut().for_each(|outbox| outbox.stage(Item::Watermark(watermark)));
        }
        true
    }

    /// Runs the pulled batch through the chain and stages each output for its key's shard.
    fn route_pulled(&mut self) {
        let Self { chain, key_fn, key_groups, outboxes, pulled, names, max_timestamp, .. } = self;
        for stamped in pulled.iter() {
            *max_timestamp = (*max_timestamp).max(stamped.timestamp);
            chain.run(stamped.timestamp, stamped.record, &mut |timestamp, record| {
                let key = guarded(names.key_by, || key_fn(&record));
                let target = key_groups.shard_of(&key);
                outboxes[target].stage(Item::Record(Stamped { timestamp, record }));
            });
        }
        self.stats.records_pulled += self.pulled.len() as u64;
    }
}
