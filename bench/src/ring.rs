//! The `ring` scenario: how fast two pinned threads can hand items to each other.
//!
//! This is the physical limit of the engine's exchange: every record that crosses shards goes
//! through one single-producer single-consumer ring. The scenario moves 16-byte and 64-byte
//! items from a producer thread to a consumer thread, each pinned to its own core when there
//! are two, through four channels of the same capacity:
//!
//! - `rtrb-single`: `rtrb` with one `push`/`pop` per item;
//! - `rtrb-chunked`: `rtrb` with `write_chunk_uninit`/`read_chunk`, the engine's way;
//! - `crossbeam`: a bounded `crossbeam-channel` (the baseline most Rust code would pick);
//! - `mpsc`: `std::sync::mpsc::sync_channel`.
//!
//! The producer sends batches of `batch` items until the series' time is up. The first item
//! of every batch carries a monotonic timestamp taken just before the batch is handed over;
//! the consumer records `now - stamp` for it into a histogram. That is one clock read per
//! batch on each side, so the measurement costs well under 1 % of the hand-off at the default
//! batch of 256. The channels run saturated, so the latency is the time a batch waits for room
//! plus its time in the queue: it grows with capacity / throughput, as it would in a full
//! pipeline. Throughput is items received over the consumer's time from the common start to
//! the last item.

use crate::constants::{
    RING_BATCH_DEFAULT, RING_CAPACITY_DEFAULT, RING_CAPACITY_MAX, RING_ITEM_BYTES,
    RING_SERIES_DURATION_DEFAULT, RING_SERIES_DURATION_MAX, RING_SERIES_DURATION_QUICK,
};
use crate::error::{BenchError, Result};
use crate::progress::Progress;
use crate::report::{latency_histogram, Report, Series, Target, Unit};
use core_affinity::CoreId;
use hdrhistogram::Histogram;
use serde_json::json;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Knobs of the ring scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RingConfig {
    /// Measured time of each series.
    pub series_duration: Duration,
    /// Slots of every channel, in items.
    pub capacity: usize,
    /// Items per producer batch (one latency stamp per batch).
    pub batch: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            series_duration: RING_SERIES_DURATION_DEFAULT,
            capacity: RING_CAPACITY_DEFAULT,
            batch: RING_BATCH_DEFAULT,
        }
    }
}

impl RingConfig {
    /// The default configuration with the short `--quick` series time.
    pub fn quick() -> Self {
        RingConfig { series_duration: RING_SERIES_DURATION_QUICK, ..RingConfig::default() }
    }

    /// Checks every knob against its bound.
    ///
    /// # Errors
    /// [`BenchError::Param`] naming the knob out of bounds.
    pub fn validate(&self) -> Result<()> {
        if self.series_duration.is_zero() || self.series_duration > RING_SERIES_DURATION_MAX {
            return Err(BenchError::Param(format!(
                "ring duration {:?} must be above 0 and at most {:?}",
                self.series_duration, RING_SERIES_DURATION_MAX
            )));
        }
        if self.capacity == 0 || self.capacity > RING_CAPACITY_MAX {
            return Err(BenchError::Param(format!(
                "ring capacity {} must be in 1..={RING_CAPACITY_MAX}",
                self.capacity
            )));
        }
        if self.batch == 0 || self.batch > self.capacity {
            return Err(BenchError::Param(format!(
                "ring batch {} must be in 1..=capacity ({})",
                self.batch, self.capacity
            )));
        }
        Ok(())
    }

    fn params_json(&self) -> serde_json::Value {
        json!({
            "series_duration_s": self.series_duration.as_secs_f64(),
            "capacity_items": self.capacity,
            "batch_items": self.batch,
            "item_bytes": RING_ITEM_BYTES,
            "channels": Channel::ALL.map(Channel::name),
        })
    }
}

/// A way to move items from one thread to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    RtrbSingle,
    RtrbChunked,
    Crossbeam,
    Mpsc,
}

impl Channel {
    /// Every channel, in the order the scenario measures them.
    pub const ALL: [Channel; 4] =
        [Channel::RtrbSingle, Channel::RtrbChunked, Channel::Crossbeam, Channel::Mpsc];

    /// The channel's name in series names.
    pub fn name(self) -> &'static str {
        match self {
            Channel::RtrbSingle => "rtrb-single",
            Channel::RtrbChunked => "rtrb-chunked",
            Channel::Crossbeam => "crossbeam",
            Channel::Mpsc => "mpsc",
        }
    }

    /// rtrb is what zabflow's exchange uses; the others are baselines.
    pub fn target(self) -> Target {
        match self {
            Channel::RtrbSingle | Channel::RtrbChunked => Target::Zabflow,
            Channel::Crossbeam | Channel::Mpsc => Target::Baseline,
        }
    }
}

/// When the producer stops sending.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this much time from the common start.
    After(Duration),
    /// After at least this many items (whole batches).
    Items(u64),
}

/// What one exchange measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Items the consumer received.
    pub items_total: u64,
    /// The consumer's time from the common start to the last item.
    pub elapsed: Duration,
    /// Batch hand-off latencies, in nanoseconds.
    pub histogram: Histogram<u64>,
}

impl Measurement {
    /// Items per second.
    pub fn items_per_s(&self) -> f64 {
        self.items_total as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The producer's and the consumer's cores: two different ones when the machine has them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    pub producer: Option<CoreId>,
    pub consumer: Option<CoreId>,
}

impl Placement {
    /// Reads the cores once (before any thread pins itself, which would shrink the list) and
    /// assigns the first two; with fewer than two cores neither thread is pinned.
    pub fn detect() -> Placement {
        match core_affinity::get_core_ids().as_deref() {
            Some([producer, consumer, ..]) => {
                Placement { producer: Some(*producer), consumer: Some(*consumer) }
            }
            _ => Placement::default(),
        }
    }
}

/// An item of `WORDS` 64-bit words; word 0 carries the latency stamp of a batch's first item.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Item<const WORDS: usize>([u64; WORDS]);

const _: () = assert!(std::mem::size_of::<Item<2>>() == 16);
const _: () = assert!(std::mem::size_of::<Item<8>>() == 64);

/// The sending half of a channel.
trait Sending<T: Copy>: Send {
    /// Hands over every item of `batch`, waiting for room as needed.
    fn send_batch(&mut self, batch: &[T]);
}

/// The receiving half of a channel.
trait Receiving<T: Copy>: Send {
    /// Passes the items now available (possibly none) to `visit`; returns `false` once the
    /// sender is gone and every item has been received.
    fn receive(&mut self, visit: &mut impl FnMut(&T)) -> bool;
}

/// `rtrb` with one push per item.
struct RtrbSingle<T>(rtrb::Producer<T>);
/// `rtrb` with chunked writes.
struct RtrbChunked<T>(rtrb::Producer<T>);
/// `rtrb` with one pop per item.
struct RtrbPop<T>(rtrb::Consumer<T>);
/// `rtrb` with chunked reads.
struct RtrbRead<T>(rtrb::Consumer<T>);

impl<T: Copy + Send> Sending<T> for RtrbSingle<T> {
    fn send_batch(&mut self, batch: &[T]) {
        for item in batch {
            while self.0.push(*item).is_err() {
                std::hint::spin_loop();
            }
        }
    }
}

impl<T: Copy + Send> Sending<T> for RtrbChunked<T> {
    fn send_batch(&mut self, mut batch: &[T]) {
        while !batch.is_empty() {
            let count = self.0.slots().min(batch.len());
            if count == 0 {
                std::hint::spin_loop();
                continue;
            }
            let chunk = self.0.write_chunk_uninit(count).expect("slots() promised the room");
            let written = chunk.fill_from_iter(batch[..count].iter().copied());
            debug_assert_eq!(written, count);
            batch = &batch[count..];
        }
    }
}

impl<T: Copy + Send> Receiving<T> for RtrbPop<T> {
    fn receive(&mut self, visit: &mut impl FnMut(&T)) -> bool {
        match self.0.pop() {
            Ok(item) => visit(&item),
            Err(_) => return rtrb_wait(&self.0),
        }
        true
    }
}

impl<T: Copy + Send> Receiving<T> for RtrbRead<T> {
    fn receive(&mut self, visit: &mut impl FnMut(&T)) -> bool {
        let count = self.0.slots();
        if count == 0 {
            return rtrb_wait(&self.0);
        }
        let chunk = self.0.read_chunk(count).expect("slots() promised the items");
        let (first, second) = chunk.as_slices();
        first.iter().chain(second).for_each(&mut *visit);
        chunk.commit_all();
        true
    }
}

/// On an empty ring: `false` if the producer is gone and nothing is left, else spin once.
fn rtrb_wait<T>(consumer: &rtrb::Consumer<T>) -> bool {
    if consumer.is_abandoned() {
        // Items pushed just before the producer left are visible after is_abandoned().
        return !consumer.is_empty();
    }
    std::hint::spin_loop();
    true
}

impl<T: Copy + Send> Sending<T> for crossbeam_channel::Sender<T> {
    fn send_batch(&mut self, batch: &[T]) {
        for item in batch {
            self.send(*item).expect("the consumer outlives the producer");
        }
    }
}

impl<T: Copy + Send> Receiving<T> for crossbeam_channel::Receiver<T> {
    fn receive(&mut self, visit: &mut impl FnMut(&T)) -> bool {
        self.recv().map(|item| visit(&item)).is_ok()
    }
}

impl<T: Copy + Send> Sending<T> for std::sync::mpsc::SyncSender<T> {
    fn send_batch(&mut self, batch: &[T]) {
        for item in batch {
            self.send(*item).expect("the consumer outlives the producer");
        }
    }
}

impl<T: Copy + Send> Receiving<T> for std::sync::mpsc::Receiver<T> {
    fn receive(&mut self, visit: &mut impl FnMut(&T)) -> bool {
        self.recv().map(|item| visit(&item)).is_ok()
    }
}

/// Throughput ratios the scenario reports for every item size, as (numerator, denominator).
const RATIO_PAIRS: [(Channel, Channel); 4] = [
    (Channel::RtrbChunked, Channel::Crossbeam),
    (Channel::RtrbSingle, Channel::Crossbeam),
    (Channel::RtrbChunked, Channel::RtrbSingle),
    (Channel::Crossbeam, Channel::Mpsc),
];

/// Runs every channel at every item size for `config.series_duration` each.
///
/// # Errors
/// [`BenchError::Param`] for a knob out of bounds, [`BenchError::Thread`] when a benchmark
/// thread cannot start or panics.
pub fn run(config: &RingConfig) -> Result<Report> {
    config.validate()?;
    let placement = Placement::detect();
    let mut params = config.params_json();
    params["pinned_cores"] =
        json!([placement.producer.map(|core| core.id), placement.consumer.map(|core| core.id)]);
    let mut report = Report::new("ring", params);
    let steps_total = RING_ITEM_BYTES.len() * Channel::ALL.len();
    let progress = Progress::new("ring", steps_total as u64);
    for item_bytes in RING_ITEM_BYTES {
        for channel in Channel::ALL {
            progress.start_step(&series_name(channel, item_bytes));
            let stop = Stop::After(config.series_duration);
            let measurement = exchange(channel, item_bytes, config, stop, placement)?;
            report.push_series(series_from(channel, item_bytes, &measurement));
            progress.finish_step();
        }
    }
    progress.finish();
    push_ratios(&mut report);
    Ok(report)
}

/// `rtrb-chunked/16B`.
pub fn series_name(channel: Channel, item_bytes: usize) -> String {
    format!("{}/{item_bytes}B", channel.name())
}

fn series_from(channel: Channel, item_bytes: usize, measurement: &Measurement) -> Series {
    let items_per_s = measurement.items_per_s();
    Series::new(series_name(channel, item_bytes), channel.target(), Unit::Items, items_per_s)
        .with_params(json!({ "channel": channel.name(), "item_bytes": item_bytes }))
        .with_histogram(&measurement.histogram)
        .with_extra("items_total", measurement.items_total)
        .with_extra("mb_per_s", items_per_s * item_bytes as f64 / 1e6)
}

/// `rtrb-chunked/crossbeam/16B` and friends for every size, plus the headline
/// `rtrb-chunked/crossbeam` at the smallest item size.
fn push_ratios(report: &mut Report) {
    for item_bytes in RING_ITEM_BYTES {
        for (numerator, denominator) in RATIO_PAIRS {
            let throughput = |channel| {
                report.series_named(&series_name(channel, item_bytes)).map(|s| s.throughput_per_s)
            };
            if let (Some(top), Some(bottom)) = (throughput(numerator), throughput(denominator)) {
                let name = format!("{}/{}/{item_bytes}B", numerator.name(), denominator.name());
                report.push_ratio(name, top / bottom);
            }
        }
    }
    let headline = format!("rtrb-chunked/crossbeam/{}B", RING_ITEM_BYTES[0]);
    if let Some(value) = report.ratio_named(&headline) {
        report.push_ratio("rtrb-chunked/crossbeam", value);
    }
}

/// Moves items of `item_bytes` (16 or 64) through `channel` until `stop`.
///
/// # Errors
/// [`BenchError::Param`] for another item size or a bad config, [`BenchError::Thread`] when
/// a thread cannot start or panics.
pub fn exchange(
    channel: Channel,
    item_bytes: usize,
    config: &RingConfig,
    stop: Stop,
    placement: Placement,
) -> Result<Measurement> {
    config.validate()?;
    match item_bytes {
        16 => exchange_items::<2>(channel, config, stop, placement),
        64 => exchange_items::<8>(channel, config, stop, placement),
        _ => Err(BenchError::Param(format!("ring item size {item_bytes} B is not 16 or 64"))),
    }
}

fn exchange_items<const WORDS: usize>(
    channel: Channel,
    config: &RingConfig,
    stop: Stop,
    placement: Placement,
) -> Result<Measurement> {
    let (capacity, batch) = (config.capacity, config.batch);
    match channel {
        Channel::RtrbSingle => {
            let (producer, consumer) = rtrb::RingBuffer::<Item<WORDS>>::new(capacity);
            run_pair(RtrbSingle(producer), RtrbPop(consumer), batch, stop, placement)
        }
        Channel::RtrbChunked => {
            let (producer, consumer) = rtrb::RingBuffer::<Item<WORDS>>::new(capacity);
            run_pair(RtrbChunked(producer), RtrbRead(consumer), batch, stop, placement)
        }
        Channel::Crossbeam => {
            let (sender, receiver) = crossbeam_channel::bounded::<Item<WORDS>>(capacity);
            run_pair(sender, receiver, batch, stop, placement)
        }
        Channel::Mpsc => {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Item<WORDS>>(capacity);
            run_pair(sender, receiver, batch, stop, placement)
        }
    }
}

/// Runs the producer and the consumer on their own (pinned) threads and joins them.
fn run_pair<const WORDS: usize>(
    sender: impl Sending<Item<WORDS>>,
    receiver: impl Receiving<Item<WORDS>>,
    batch: usize,
    stop: Stop,
    placement: Placement,
) -> Result<Measurement> {
    let barrier = Barrier::new(2);
    let origin = Instant::now();
    let thread_error = |what: &str| BenchError::Thread(format!("ring {what} thread panicked"));
    std::thread::scope(|scope| {
        let spawn_error = |error: std::io::Error| BenchError::Thread(error.to_string());
        let barrier = &barrier;
        let producer = std::thread::Builder::new()
            .name("ring-producer".into())
            .spawn_scoped(scope, move || {
                produce(sender, batch, stop, origin, barrier, placement.producer)
            })
            .map_err(spawn_error)?;
        let consumer = std::thread::Builder::new()
            .name("ring-consumer".into())
            .spawn_scoped(scope, move || {
                consume(receiver, batch, origin, barrier, placement.consumer)
            })
            .map_err(spawn_error)?;
        producer.join().map_err(|_| thread_error("producer"))?;
        consumer.join().map_err(|_| thread_error("consumer"))
    })
}

fn pin(core: Option<CoreId>) {
    if let Some(core) = core {
        // Pinning is best effort: an unpinned run is slower and noisier, not wrong.
        let _ = core_affinity::set_for_current(core);
    }
}

fn nanos_since(origin: Instant, now: Instant) -> u64 {
    u64::try_from(now.duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// Sends whole batches, the first item of each stamped, until `stop`; dropping `sender` at
/// the end tells the consumer that nothing more comes.
fn produce<const WORDS: usize>(
    mut sender: impl Sending<Item<WORDS>>,
    batch: usize,
    stop: Stop,
    origin: Instant,
    barrier: &Barrier,
    core: Option<CoreId>,
) {
    pin(core);
    let mut items = vec![Item([0u64; WORDS]); batch];
    barrier.wait();
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        let done = match stop {
            Stop::After(duration) => now.duration_since(start) >= duration,
            Stop::Items(items_total) => sent >= items_total,
        };
        if done {
            break;
        }
        items[0].0[0] = nanos_since(origin, now);
        sender.send_batch(&items);
        sent += batch as u64;
    }
}

/// Receives until the producer is gone, recording the stamp of every batch's first item.
fn consume<const WORDS: usize>(
    mut receiver: impl Receiving<Item<WORDS>>,
    batch: usize,
    origin: Instant,
    barrier: &Barrier,
    core: Option<CoreId>,
) -> Measurement {
    pin(core);
    let mut histogram = latency_histogram();
    let (mut received, mut next_stamped, mut checksum) = (0u64, 0u64, 0u64);
    barrier.wait();
    let start = Instant::now();
    let mut visit = |item: &Item<WORDS>| {
        if received == next_stamped {
            let latency_ns = nanos_since(origin, Instant::now()).saturating_sub(item.0[0]);
            histogram.saturating_record(latency_ns);
            next_stamped += batch as u64;
        }
        checksum = checksum.wrapping_add(item.0[WORDS - 1]);
        received += 1;
    };
    while receiver.receive(&mut visit) {}
    let elapsed = start.elapsed();
    black_box(checksum);
    Measurement { items_total: received, elapsed, histogram }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::RING_CAPACITY_DEFAULT;

    #[test]
    fn every_channel_delivers_every_item_and_stamp() {
        let config = RingConfig { capacity: 64, batch: 16, ..RingConfig::quick() };
        let placement = Placement::detect();
        for item_bytes in RING_ITEM_BYTES {
            for channel in Channel::ALL {
                let measurement =
                    exchange(channel, item_bytes, &config, Stop::Items(20_000), placement).unwrap();
                assert_eq!(measurement.items_total, 20_000, "{channel:?} {item_bytes}");
                assert_eq!(measurement.histogram.len(), 20_000 / 16, "{channel:?}");
                assert!(measurement.items_per_s() > 0.0);
            }
        }
    }

    #[test]
    fn rejects_bad_knobs() {
        let config = RingConfig { batch: RING_CAPACITY_DEFAULT + 1, ..RingConfig::default() };
        assert!(config.validate().is_err());
        assert!(RingConfig { capacity: 0, ..RingConfig::default() }.validate().is_err());
        let zero = RingConfig { series_duration: Duration::ZERO, ..RingConfig::default() };
        assert!(zero.validate().is_err());
        let placement = Placement::default();
        let stop = Stop::Items(1);
        assert!(exchange(Channel::Mpsc, 32, &RingConfig::quick(), stop, placement).is_err());
    }

    #[test]
    fn ratios_cover_every_size() {
        let mut report = Report::new("ring", json!({}));
        for item_bytes in RING_ITEM_BYTES {
            for (index, channel) in Channel::ALL.iter().enumerate() {
                let name = series_name(*channel, item_bytes);
                let throughput = 10f64.powi(4 - index as i32);
                report.push_series(Series::new(name, channel.target(), Unit::Items, throughput));
            }
        }
        push_ratios(&mut report);
        assert_eq!(report.ratio_named("rtrb-chunked/crossbeam/16B"), Some(10.0));
        assert_eq!(report.ratio_named("rtrb-chunked/crossbeam"), Some(10.0));
        assert_eq!(report.ratio_named("rtrb-single/crossbeam/64B"), Some(100.0));
        assert_eq!(report.ratios.len(), RATIO_PAIRS.len() * RING_ITEM_BYTES.len() + 1);
    }
}
