//! Criterion micro-benchmark of the ring exchange: 16 B items from one pinned thread to
//! another through rtrb (single push/pop and chunked) and a bounded crossbeam channel.
//!
//! Each iteration is one item; a sample moves `iters` items (rounded up to whole batches)
//! through a fresh channel and reports the consumer's time, scaled back to `iters` items.
//! The `zabflow bench ring` scenario is the long-running, reported version of this.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use zabflow_bench::ring::{exchange, Channel, Placement, RingConfig, Stop};

/// Item size measured here, in bytes.
const ITEM_BYTES: usize = 16;
/// Channels compared, in the order they are reported.
const CHANNELS: [Channel; 3] = [Channel::RtrbSingle, Channel::RtrbChunked, Channel::Crossbeam];

fn ring_exchange(criterion: &mut Criterion) {
    let placement = Placement::detect();
    let config = RingConfig::default();
    let mut group = criterion.benchmark_group(format!("ring/{ITEM_BYTES}B"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for channel in CHANNELS {
        group.bench_function(channel.name(), |bencher| {
            bencher.iter_custom(|iters| {
                let measurement =
                    exchange(channel, ITEM_BYTES, &config, Stop::Items(iters), placement)
                        .expect("the default ring config is valid");
                let share = iters as f64 / measurement.items_total.max(1) as f64;
                measurement.elapsed.mul_f64(share.min(1.0))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, ring_exchange);
criterion_main!(benches);
