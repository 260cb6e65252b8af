//! Live metrics of a running job: per shard records in and out, ring occupancy, watermark
//! and its lag, window fires.
//!
//! Each shard owns one cache-line-aligned block of relaxed atomics and overwrites it once
//! per loop iteration (a batch, not a record) with plain stores; any other thread (a
//! terminal view, a benchmark sampler) reads a [`MetricsSnapshot`] whenever it likes. No
//! lock, no shared write, nothing per record: observing a job does not slow it down. The
//! numbers of one snapshot are each exact but not taken at one instant.
//!
//! [`render`] and [`render_line`] turn two snapshots into what a live terminal view shows
//! (rates from their difference), and [`render_totals`] the final totals: pure functions of
//! their arguments, so the view's driver (a thread that sleeps and writes) stays thin and
//! the text is tested here.

use super::shard::ShardStats;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// One entry per shard, shard 0 first.
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

/// Rates of one shard (or of all) between two snapshots, and its gauges at the later one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RateRow {
    pulled_per_s: f64,
    received_per_s: f64,
    out_per_s: f64,
    ring_occupancy: u64,
    ring_occupancy_max: u64,
    watermark_lag_ms: u64,
    windows_fired: u64,
    late_records: u64,
}

impl RateRow {
    fn between(prev: &ShardMetrics, now: &ShardMetrics, seconds: f64) -> RateRow {
        let rate = |field: fn(&ShardMetrics) -> u64| {
            if seconds > 0.0 {
                field(now).saturating_sub(field(prev)) as f64 / seconds
            } else {
                0.0
            }
        };
        RateRow {
            pulled_per_s: rate(|shard| shard.records_pulled),
            received_per_s: rate(|shard| shard.records_received),
            out_per_s: rate(|shard| shard.results_out),
            ring_occupancy: now.ring_occupancy,
            ring_occupancy_max: now.ring_occupancy_max,
            watermark_lag_ms: now.watermark_lag_ms,
            windows_fired: now.windows_fired,
            late_records: now.late_records,
        }
    }

    /// The total row: rates, occupancy and counts summed; the highest ring occupancy any
    /// one shard saw; the largest watermark lag.
    fn total(rows: &[RateRow]) -> RateRow {
        rows.iter().fold(RateRow::default(), |total, row| RateRow {
            pulled_per_s: total.pulled_per_s + row.pulled_per_s,
            received_per_s: total.received_per_s + row.received_per_s,
            out_per_s: total.out_per_s + row.out_per_s,
            ring_occupancy: total.ring_occupancy + row.ring_occupancy,
            ring_occupancy_max: total.ring_occupancy_max.max(row.ring_occupancy_max),
            watermark_lag_ms: total.watermark_lag_ms.max(row.watermark_lag_ms),
            windows_fired: total.windows_fired + row.windows_fired,
            late_records: total.late_records + row.late_records,
        })
    }
}

/// Rows of `now` against `prev` (a shard missing from `prev` counts from zero), then the
/// total row.
fn rate_rows(prev: &MetricsSnapshot, now: &MetricsSnapshot, elapsed: Duration) -> Vec<RateRow> {
    let seconds = elapsed.as_secs_f64();
    let zero = ShardMetrics::default();
    let mut rows: Vec<RateRow> = now
        .shards
        .iter()
        .enumerate()
        .map(|(index, shard)| {
            RateRow::between(prev.shards.get(index).unwrap_or(&zero), shard, seconds)
        })
        .collect();
    rows.push(RateRow::total(&rows));
    rows
}

/// A count or rate in at most six characters: `999`, `12.3k`, `4.56M`, `7.89G`.
fn compact(value: f64) -> String {
    match value {
        v if v < 1e3 => format!("{v:.0}"),
        v if v < 1e6 => format!("{:.1}k", v / 1e3),
        v if v < 1e9 => format!("{:.2}M", v / 1e6),
        v => format!("{:.2}G", v / 1e9),
    }
}

/// The live view's table: a header, one line per shard and a `total` line, each line
/// ending in `\n`. Rates (records pulled from the source, received from the rings, results
/// out to the sink, per second) are the differences from `prev` to `now` over `elapsed`;
/// ring occupancy is `now/max` (items waiting at the shard's last read, and the most it
/// ever found); watermark lag (ms), windows fired and late records are as of `now`. The
/// total line sums the shards, except the ring's max and the lag, which are the largest of
/// any shard.
pub fn render(prev: &MetricsSnapshot, now: &MetricsSnapshot, elapsed: Duration) -> String {
    let mut out = format!(
        "{:>5} {:>9} {:>10} {:>9} {:>13} {:>9} {:>9} {:>7}\n",
        "shard", "pulled/s", "received/s", "out/s", "ring now/max", "wm lag ms", "fired", "late"
    );
    let rows = rate_rows(prev, now, elapsed);
    for (index, row) in rows.iter().enumerate() {
        let name = if index + 1 == rows.len() { "total".to_owned() } else { index.to_string() };
        out.push_str(&format!(
            "{name:>5} {:>9} {:>10} {:>9} {:>13} {:>9} {:>9} {:>7}\n",
            compact(row.pulled_per_s),
            compact(row.received_per_s),
            compact(row.out_per_s),
            format!("{}/{}", row.ring_occupancy, row.ring_occupancy_max),
            compact(row.watermark_lag_ms as f64),
            compact(row.windows_fired as f64),
            compact(row.late_records as f64)
        ));
    }
    out
}

/// The same numbers as [`render`] on one line without a trailing newline, for logs: the
/// total first, then each shard (`total pulled/s=… | shard 0 pulled/s=… | …`).
pub fn render_line(prev: &MetricsSnapshot, now: &MetricsSnapshot, elapsed: Duration) -> String {
    let rows = rate_rows(prev, now, elapsed);
    let (total, shards) = rows.split_last().expect("rate_rows ends in the total row");
    let describe = |name: String, row: &RateRow| {
        format!(
            "{name} pulled/s={} received/s={} out/s={} ring={}/{} wm_lag_ms={} fired={} late={}",
            compact(row.pulled_per_s),
            compact(row.received_per_s),
            compact(row.out_per_s),
            row.ring_occupancy,
            row.ring_occupancy_max,
            row.watermark_lag_ms,
            row.windows_fired,
            row.late_records
        )
    };
    let mut parts = vec![describe("total".to_owned(), total)];
    parts.extend(
        shards.iter().enumerate().map(|(index, row)| describe(format!("shard {index}"), row)),
    );
    parts.join(" | ")
}

/// A job's final totals after `elapsed`: per shard and in total, records pulled, received
/// and out, windows fired, late records and the most items its rings held, then one line
/// of average rates over the whole run. Every line ends in `\n`.
pub fn render_totals(now: &MetricsSnapshot, elapsed: Duration) -> String {
    let mut out = format!(
        "{:>5} {:>14} {:>14} {:>12} {:>10} {:>8} {:>8}\n",
        "shard", "pulled", "received", "out", "fired", "late", "ring max"
    );
    let total = ShardMetrics {
        records_pulled: now.total(|shard| shard.records_pulled),
        records_received: now.total(|shard| shard.records_received),
        results_out: now.total(|shard| shard.results_out),
        windows_fired: now.total(|shard| shard.windows_fired),
        late_records: now.total(|shard| shard.late_records),
        ring_occupancy_max: now.shards.iter().map(|s| s.ring_occupancy_max).max().unwrap_or(0),
        ..ShardMetrics::default()
    };
    let names = (0..now.shards.len()).map(|index| index.to_string());
    for (name, shard) in names.chain(["total".to_owned()]).zip(now.shards.iter().chain([&total])) {
        out.push_str(&format!(
            "{name:>5} {:>14} {:>14} {:>12} {:>10} {:>8} {:>8}\n",
            shard.records_pulled,
            shard.records_received,
            shard.results_out,
            shard.windows_fired,
            shard.late_records,
            shard.ring_occupancy_max
        ));
    }
    let zero = MetricsSnapshot { shards: vec![ShardMetrics::default(); now.shards.len()] };
    let average = RateRow::total(&rate_rows(&zero, now, elapsed)[..now.shards.len()]);
    out.push_str(&format!(
        "{:.3} s: {} pulled/s, {} received/s, {} out/s on average\n",
        elapsed.as_secs_f64(),
        compact(average.pulled_per_s),
        compact(average.received_per_s),
        compact(average.out_per_s)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(pulled: u64, received: u64, out: u64, ring: (u64, u64), lag_ms: u64) -> ShardMetrics {
        ShardMetrics {
            records_pulled: pulled,
            records_received: received,
            results_out: out,
            late_records: lag_ms / 100,
            windows_fired: out / 10,
            ring_occupancy: ring.0,
            ring_occupancy_max: ring.1,
            watermark: 1_000,
            watermark_lag_ms: lag_ms,
        }
    }

    fn snapshots() -> (MetricsSnapshot, MetricsSnapshot) {
        let prev = MetricsSnapshot {
            shards: vec![shard(1_000, 900, 10, (0, 5), 0), shard(2_000, 2_000, 20, (1, 3), 0)],
        };
        let now = MetricsSnapshot {
            shards: vec![
                shard(1_000 + 3_000_000, 900 + 1_500_000, 10 + 500, (7, 64), 250),
                shard(2_000 + 1_000_000, 2_000 + 2_500_000, 20 + 1_500, (2, 300), 900),
            ],
        };
        (prev, now)
    }

    /// The whitespace-separated cells of the line that starts with `name`.
    fn row(table: &str, name: &str) -> Vec<String> {
        let line = table.lines().find(|line| line.trim_start().starts_with(name));
        let line = line.unwrap_or_else(|| panic!("no row {name:?} in\n{table}"));
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn render_shows_rates_over_the_interval_gauges_and_a_total_row() {
        let (prev, now) = snapshots();
        let table = render(&prev, &now, Duration::from_millis(500));
        assert_eq!(table.lines().count(), 4, "header, two shards, total:\n{table}");
        let header = row(&table, "shard");
        assert_eq!(header[1..4], ["pulled/s", "received/s", "out/s"]);
        // Shard 0: 3 M pulled, 1.5 M received, 500 out in half a second.
        assert_eq!(row(&table, "0"), ["0", "6.00M", "3.00M", "1.0k", "7/64", "250", "51", "2"]);
        assert_eq!(row(&table, "1"), ["1", "2.00M", "5.00M", "3.0k", "2/300", "900", "152", "9"]);
        // Total: rates, occupancy and counts summed; ring max and lag the largest.
        assert_eq!(
            row(&table, "total"),
            ["total", "8.00M", "8.00M", "4.0k", "9/300", "900", "203", "11"]
        );
        let widths: Vec<usize> = table.lines().map(str::len).collect();
        assert!(widths.windows(2).all(|pair| pair[0] == pair[1]), "aligned columns:\n{table}");
    }

    #[test]
    fn render_line_puts_the_total_and_every_shard_on_one_line() {
        let (prev, now) = snapshots();
        let line = render_line(&prev, &now, Duration::from_secs(1));
        assert!(!line.contains('\n') && !line.contains('\x1b'), "{line:?}");
        let parts: Vec<&str> = line.split(" | ").collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert!(parts[0].starts_with("total pulled/s=4.00M received/s=4.00M out/s=2.0k"), "{line}");
        assert!(parts[0].ends_with("ring=9/300 wm_lag_ms=900 fired=203 late=11"), "{line}");
        assert!(parts[1].starts_with("shard 0 pulled/s=3.00M"), "{line}");
        assert!(parts[2].starts_with("shard 1 pulled/s=1.00M"), "{line}");
    }

    #[test]
    fn render_totals_counts_every_record_and_averages_over_the_run() {
        let (_, now) = snapshots();
        let text = render_totals(&now, Duration::from_secs(2));
        assert_eq!(row(&text, "0")[1..4], ["3001000", "1500900", "510"]);
        assert_eq!(
            row(&text, "total"),
            ["total", "4003000", "4002900", "2030", "203", "11", "300"]
        );
        let average = text.lines().last().expect("an average line");
        assert_eq!(average, "2.000 s: 2.00M pulled/s, 2.00M received/s, 1.0k out/s on average");
    }

    #[test]
    fn a_zero_interval_or_a_new_shard_gives_no_nonsense_rates() {
        let (_, now) = snapshots();
        let table = render(&now, &now, Duration::ZERO);
        assert_eq!(row(&table, "total")[1..4], ["0", "0", "0"]);
        let table = render(&MetricsSnapshot::default(), &now, Duration::from_secs(1));
        assert_eq!(row(&table, "total")[1], "4.00M");
    }
}
