//! A deterministic, seeded event generator: the engine's synthetic source.
//!
//! Event `i` of a job is a pure function of `(seed, i)` (the `i`-th draw of a SplitMix64
//! stream), and shard `s` of `n` generates the events `i ≡ s (mod n)`. So the same configuration
//! yields the same multiset of events on any number of shards, which is what lets tests
//! compare a parallel run with a sequential reference, and costs one 64-bit hash per event.
//!
//! Timestamps advance evenly with the event index (`events_per_second` of event time) and
//! each is pulled back by a random jitter of at most `out_of_orderness` ms, so no event is
//! ever late against the source's own `max - bound` watermark. Optionally the generator
//! paces itself to a wall-clock rate; otherwise it runs as fast as the shard pulls.
//!
//! Keys are uniform over `0..keys`, or skewed (`skew > 0`): a Zipf-like power law with
//! that exponent, key 0 the hottest, drawn by inverting the continuous law's CDF (two
//! `powf` per event, so skew costs speed; uniform keys cost a multiply). The record size
//! is the record type's: [`Event`] is 16 bytes, [`Padded<N>`] adds `N` bytes
//! (`Generator::<Padded<48>>::of_records`).

use super::item::Stamped;
use super::source::{own_offset, Partition, Source, SourceStatus};
use crate::coordinator::SourceOffset;
use crate::Error;
use std::marker::PhantomData;
use std::time::Instant;

/// One generated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event {
    /// In `0..keys`.
    pub key: u64,
    /// A value in `0..1000`, for sums and extremes.
    pub value: u64,
}

/// An event padded to a larger record: `16 + BYTES` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Padded<const BYTES: usize> {
    pub event: Event,
    /// Filler, all zero.
    pub padding: [u8; BYTES],
}

/// A record type the generator can produce from its events.
pub trait GeneratedRecord: Copy + Send + 'static {
    /// The record carrying `event`.
    fn from_event(event: Event) -> Self;
}

impl GeneratedRecord for Event {
    #[inline]
    fn from_event(event: Event) -> Event {
        event
    }
}

impl<const BYTES: usize> GeneratedRecord for Padded<BYTES> {
    #[inline]
    fn from_event(event: Event) -> Self {
        Padded { event, padding: [0; BYTES] }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Events of the whole job (over all partitions).
    pub events: u64,
    /// Distinct keys.
    pub keys: u64,
    /// 0 for uniform keys; otherwise the exponent of a Zipf-like law (1.0: key `k` is drawn
    /// about `1 / (k + 1)` as often as key 0).
    pub skew: f64,
    /// Event-time density: events per second of event time (timestamps are milliseconds).
    pub events_per_second: u64,
    /// Largest jitter pulling a timestamp back, in milliseconds.
    pub out_of_orderness: u64,
    /// Wall-clock pace of the whole job in events per second; `None` runs flat out.
    pub rate_per_second: Option<u64>,
    /// With a pace: the instant event 0 is due, shared by every partition (so event `i` is
    /// due at `pace_from + i / rate`); `None` starts each partition's clock at its first
    /// pull. A benchmark sets it to measure latency from each event's due time.
    pub pace_from: Option<Instant>,
}

impl Default for GeneratorConfig {
    /// One million events over 1000 uniform keys, 100k events per second of event time,
    /// 100 ms of disorder, unpaced.
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            events: 1_000_000,
            keys: 1000,
            skew: 0.0,
            events_per_second: 100_000,
            out_of_orderness: 100,
            rate_per_second: None,
            pace_from: None,
        }
    }
}

/// The generator's instance for one partition.
#[derive(Debug, Clone)]
pub struct Generator<R = Event> {
    config: GeneratorConfig,
    partition: Partition,
    next: u64,
    step: u64,
    base: BaseClock,
    started: Option<Instant>,
    record: PhantomData<fn() -> R>,
}

/// SplitMix64's increment (the golden ratio in 64-bit fixed point).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a good 64-bit hash of a counter.
#[inline]
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `value * range / 2^32` for a 32-bit `value`: a uniform draw in `0..range` without a
/// division.
#[inline]
fn scale(value: u64, range: u64) -> u64 {
    ((u128::from(value & 0xFFFF_FFFF) * u128::from(range)) >> 32) as u64
}

impl GeneratorConfig {
    /// Event `index` of the job: a pure function of the seed and the index.
    #[inline]
    pub fn event(&self, index: u64) -> Stamped<Event> {
        self.event_at(index, self.base_timestamp(index))
    }

    /// The timestamp of event `index` before its jitter.
    fn base_timestamp(&self, index: u64) -> u64 {
        (u128::from(index) * 1000 / u128::from(self.events_per_second.max(1))) as u64
    }

    /// Event `index`, given its base timestamp (which the generator keeps incrementally,
    /// saving a 128-bit division per event).
    #[inline]
    fn event_at(&self, index: u64, base: u64) -> Stamped<Event> {
        // SplitMix64's own stream: draw `index` is the mix of `seed + index * gamma`.
        let random = splitmix64(self.seed.wrapping_add(index.wrapping_mul(GAMMA)));
        let key =
            if self.skew > 0.0 { self.skewed_key(random) } else { scale(random, self.keys.max(1)) };
        let jitter = scale(random >> 32, self.out_of_orderness + 1);
        let value = (((random >> 20) & 0x3FF) * 1000) >> 10;
        Stamped { timestamp: base.saturating_sub(jitter), record: Event { key, value } }
    }
}

impl GeneratorConfig {
    /// A key under the power law, from the low 32 bits of `random`: the inverse CDF of the
    /// continuous law on `[1, keys + 1)`, floored.
    fn skewed_key(&self, random: u64) -> u64 {
        let keys = self.keys.max(1);
        let uniform = (random & 0xFFFF_FFFF) as f64 / 4_294_967_296.0;
        let top = (keys + 1) as f64;
        let x = if (self.skew - 1.0).abs() < 1e-9 {
            top.powf(uniform)
        } else {
            let power = 1.0 - self.skew;
            ((top.powf(power) - 1.0) * uniform + 1.0).powf(1.0 / power)
        };
        (x as u64).saturating_sub(1).min(keys - 1)
    }
}

/// `index * 1000 / events_per_second` kept as quotient and remainder, advanced by `step`
/// events at a time with additions only.
#[derive(Debug, Clone, Copy)]
struct BaseClock {
    quotient: u64,
    remainder: u64,
    step_quotient: u64,
    step_remainder: u64,
    divisor: u64,
}

impl BaseClock {
    fn new(first: u64, step: u64, events_per_second: u64) -> BaseClock {
        let divisor = events_per_second.max(1);
        let split = |value: u128| {
            let divisor = u128::from(divisor);
            ((value / divisor) as u64, (value % divisor) as u64)
        };
        let (quotient, remainder) = split(u128::from(first) * 1000);
        let (step_quotient, step_remainder) = split(u128::from(step) * 1000);
        BaseClock { quotient, remainder, step_quotient, step_remainder, divisor }
    }

    #[inline]
    fn advance(&mut self) {
        self.quotient += self.step_quotient;
        self.remainder += self.step_remainder;
        if self.remainder >= self.divisor {
            self.remainder -= self.divisor;
            self.quotient += 1;
        }
    }
}

impl Generator<Event> {
    /// The generator of [`Event`]s for `partition`.
    pub fn new(config: GeneratorConfig, partition: Partition) -> Generator<Event> {
        Generator::of_records(config, partition)
    }
}

impl<R: GeneratedRecord> Generator<R> {
    /// The generator of `R` records (events wrapped by [`GeneratedRecord::from_event`]).
    pub fn of_records(config: GeneratorConfig, partition: Partition) -> Generator<R> {
        let (next, step) = (partition.index as u64, partition.count as u64);
        let base = BaseClock::new(next, step, config.events_per_second);
        Generator { config, partition, next, step, base, started: None, record: PhantomData }
    }

    /// The first index the pace does not yet allow (the end of input when unpaced).
    fn allowed_end(&mut self) -> u64 {
        let Some(rate) = self.config.rate_per_second else { return self.config.events };
        let origin = self.config.pace_from;
        let started = *self.started.get_or_insert_with(|| origin.unwrap_or_else(Instant::now));
        let due = Instant::now().saturating_duration_since(started).as_secs_f64() * rate as f64;
        (due as u64).min(self.config.events)
    }
}

impl<R: GeneratedRecord> Source for Generator<R> {
    type Record = R;

    fn pull(&mut self, out: &mut Vec<Stamped<R>>, max: usize) -> SourceStatus {
        let end = self.allowed_end();
        while out.len() < max && self.next < end {
            debug_assert_eq!(self.base.quotient, self.config.base_timestamp(self.next));
            let Stamped { timestamp, record } = self.config.event_at(self.next, self.base.quotient);
            out.push(Stamped { timestamp, record: R::from_event(record) });
            self.next += self.step;
            self.base.advance();
        }
        if self.next < self.config.events {
            SourceStatus::Active
        } else {
            SourceStatus::Exhausted
        }
    }

    fn out_of_orderness(&self) -> u64 {
        self.config.out_of_orderness
    }

    /// One offset: the index of the next event this partition generates (events are a
    /// pure function of their index, so resuming there repeats the same stream).
    fn position(&self, out: &mut Vec<SourceOffset>) -> Result<(), Error> {
        out.push(SourceOffset { partition: self.partition.index as u32, offset: self.next });
        Ok(())
    }

    fn seek(&mut self, offsets: &[SourceOffset]) -> Result<(), Error> {
        let next = own_offset("generator", self.partition, offsets)?;
        if next % self.step != self.partition.index as u64 {
            return Err(Error::Checkpoint(format!(
                "generator partition {}: event {next} is another partition's",
                self.partition.index
            )));
        }
        self.next = next;
        self.base = BaseClock::new(next, self.step, self.config.events_per_second);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GeneratorConfig {
        GeneratorConfig {
            seed: 7,
            events: 1000,
            keys: 10,
            events_per_second: 100,
            out_of_orderness: 50,
            ..GeneratorConfig::default()
        }
    }

    #[test]
    fn skewed_keys_favour_the_first_keys_and_stay_in_range() {
        let skewed = GeneratorConfig { keys: 1000, skew: 1.0, events: 100_000, ..config() };
        let mut counts = vec![0u64; 1000];
        (0..skewed.events).for_each(|index| counts[skewed.event(index).record.key as usize] += 1);
        assert!(counts[0] > 10 * counts[500].max(1), "{} vs {}", counts[0], counts[500]);
        assert!(counts[0] > counts[1] && counts[1] > counts[9]);
        let mut padded = Vec::new();
        let partition = Partition { index: 0, count: 1 };
        Generator::<Padded<48>>::of_records(config(), partition).pull(&mut padded, 10);
        assert_eq!(std::mem::size_of::<Padded<48>>(), 64);
        assert_eq!(padded[3].record.event, config().event(3).record);
    }

    #[test]
    fn partitions_together_generate_the_same_events_in_bounded_disorder() {
        let mut single = Vec::new();
        Generator::new(config(), Partition { index: 0, count: 1 }).pull(&mut single, 5000);
        let mut parts = Vec::new();
        for index in 0..3 {
            let (mut part, mut batch) = (Vec::new(), Vec::new());
            let mut generator = Generator::new(config(), Partition { index, count: 3 });
            let mut status = SourceStatus::Active;
            while status == SourceStatus::Active {
                batch.clear();
                status = generator.pull(&mut batch, 64);
                assert!(batch.len() <= 64);
                part.extend_from_slice(&batch);
            }
            let mut max_timestamp = 0;
            for stamped in &part {
                assert!(stamped.timestamp + config().out_of_orderness >= max_timestamp);
                max_timestamp = max_timestamp.max(stamped.timestamp);
                assert!(stamped.record.key < 10 && stamped.record.value < 1000);
            }
            parts.extend(part);
        }
        single.sort();
        parts.sort();
        assert_eq!(single.len(), 1000);
        assert_eq!(single, parts);
    }
}
