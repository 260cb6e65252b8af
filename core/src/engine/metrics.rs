//! Live metrics of a running job: per shard records in and out, ring occupancy, watermark
//! and its lag, window fires.
//!
//! Each shard owns one cache-line-aligned block of relaxed atomics and overwrites it once
//! per loop iteration (a batch, not a record) with plain stores; any other thread (a
//! terminal view, a benchmark sampler) reads a [`MetricsSnapshot`] whenever it likes. No
//! lock, no shared write, nothing per record: observing a job does not slow it down. The
//! numbers of one snapshot are each exact but not taken at one instant.

use super::shard::ShardStats;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One shard's published numbers, on its own cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct ShardGauges {
    records_pulled: AtomicU64,
    records_received: AtomicU64,
    results_out: AtomicU64,
    late_records: AtomicU64,
    windows_fired: AtomicU64,
    ring_occupancy: AtomicU64,
    ring_occupancy_max: AtomicU64,
    watermark: AtomicU64,
    watermark_lag_ms: AtomicU64,
}

/// A handle on a job's live metrics; clone it to read them from another thread while the
/// job runs (see `observe` on the job builders).
#[derive(Debug, Clone)]
pub struct JobMetrics {
    shards: Arc<[ShardGauges]>,
}

/// What one shard reported last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardMetrics {
    /// Records its source gave.
    pub records_pulled: u64,
    /// Records that arrived on its input rings.
    pub records_received: u64,
    /// Results handed to its sink.
    pub results_out: u64,
    /// Records sent to the late side output.
    pub late_records: u64,
    /// Windows fired.
    pub windows_fired: u64,
    /// Items waiting in its input rings at its last read.
    pub ring_occupancy: u64,
    /// The most items it ever found waiting in its input rings at once.
    pub ring_occupancy_max: u64,
    /// Its watermark (`u64::MAX` once every input ended).
    pub watermark: u64,
    /// How far its watermark trails the newest event time its source gave, in ms.
    pub watermark_lag_ms: u64,
}

/// The gauges of a shard that are not running totals.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LiveGauges {
    pub ring_occupancy: u64,
    pub watermark: u64,
    pub watermark_lag_ms: u64,
}

/// Every shard's metrics, in shard order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub shards: Vec<ShardMetrics>,
}

impl JobMetrics {
    /// Metrics for a job of `shards` shards (it must be run with that many).
    pub fn new(shards: usize) -> JobMetrics {
        JobMetrics { shards: (0..shards).map(|_| ShardGauges::default()).collect() }
    }

    /// Shards the metrics are for.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The numbers each shard published last.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let load = |gauge: &AtomicU64| gauge.load(Ordering::Relaxed);
        let shards = self
            .shards
            .iter()
            .map(|gauges| ShardMetrics {
                records_pulled: load(&gauges.records_pulled),
                records_received: load(&gauges.records_received),
                results_out: load(&gauges.results_out),
                late_records: load(&gauges.late_records),
                windows_fired: load(&gauges.windows_fired),
                ring_occupancy: load(&gauges.ring_occupancy),
                ring_occupancy_max: load(&gauges.ring_occupancy_max),
                watermark: load(&gauges.watermark),
                watermark_lag_ms: load(&gauges.watermark_lag_ms),
            })
            .collect();
        MetricsSnapshot { shards }
    }

    /// Shard `shard` publishes its numbers.
    pub(crate) fn publish(&self, shard: usize, stats: &ShardStats, live: LiveGauges) {
        let gauges = &self.shards[shard];
        let store = |gauge: &AtomicU64, value: u64| gauge.store(value, Ordering::Relaxed);
        store(&gauges.records_pulled, stats.records_pulled);
        store(&gauges.records_received, stats.records_received);
        store(&gauges.results_out, stats.results_out);
        store(&gauges.late_records, stats.late_records);
        store(&gauges.windows_fired, stats.windows_fired);
        store(&gauges.ring_occupancy, live.ring_occupancy);
        store(&gauges.ring_occupancy_max, stats.ring_occupancy_max);
        store(&gauges.watermark, live.watermark);
        store(&gauges.watermark_lag_ms, live.watermark_lag_ms);
    }
}

impl MetricsSnapshot {
    /// Sum of one number over the shards.
    pub fn total(&self, field: impl Fn(&ShardMetrics) -> u64) -> u64 {
        self.shards.iter().map(field).sum()
    }
}

/// A small table, one line per shard: what a terminal view prints.
impl fmt::Display for MetricsSnapshot {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "shard {:>14} {:>14} {:>12} {:>8} {:>8} {:>9} {:>10}",
            "pulled", "received", "out", "late", "fired", "ring", "wm lag ms"
        )?;
        for (index, shard) in self.shards.iter().enumerate() {
            writeln!(
                formatter,
                "{index:>5} {:>14} {:>14} {:>12} {:>8} {:>8} {:>9} {:>10}",
                shard.records_pulled,
                shard.records_received,
                shard.results_out,
                shard.late_records,
                shard.windows_fired,
                shard.ring_occupancy,
                shard.watermark_lag_ms
            )?;
        }
        Ok(())
    }
}
