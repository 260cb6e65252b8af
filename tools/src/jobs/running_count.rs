//! The running count: how many events each key has had so far, emitted anew for every
//! event — keyed state that grows with the key space and output that follows every input
//! record at once. It is the job `zabflow bench recovery` kills and restarts: a restarted
//! run shows that it works again with its very first record.
//!
//! ```text
//! input  = keyed events (zabflow_core::records::KeyedEvent: event_time_ms, key, value)
//! state  = ValueState<key:u64, count:u64>, snapshotted per key group
//! output = one KeyCount per input record:  key:u64 | count:u64          (LE, 16 bytes)
//! ```
//!
//! **Paced by event time.** The job replays its input as it happened: each shard's source
//! hands out records no faster than their event times advance, measured from the first
//! record this process pulled. Records that share one time (the bench's warm-up, which
//! touches every key once at one instant) go at full speed; a tail whose times advance
//! 1 ms per record runs at 1,000 records per second, so the job stays up, with all its
//! state, for as long as the tail spans. A restarted run anchors at its first record
//! (the first one after the restored checkpoint), so it resumes at once. A source is at
//! most [`PACE_CHUNK_RECORDS`] records ahead of the clock.
//!
//! **Timeline lines.** So that a recovery can be taken apart from outside, the job prints
//! what it does on stderr, each line with the wall-clock time (µs since the Unix epoch)
//! that a benchmark can set beside the moment it sent SIGKILL:
//!
//! ```text
//! line  = "running-count: " event " at_us=" wall_us (" " name "=" value)*
//! event = "leader"                                      this process leads the job
//!       | "checkpoint-read"  dur_us epoch               listing + reading the newest record
//!       | "sink-restore"     shard dur_us               output truncated to the checkpoint
//!       | "source-seek"      shard dur_us               input seeked to its offsets
//!       | "state-restored"   shard begin_us dur_us keys bytes groups
//!       | "first-pull"       shard                      the shard runs
//!       | "first-output"     shard                      its first output record, to the sink
//!       | "barrier"          shard                      its source position taken (barrier)
//!       | "snapshot"         shard dur_us keys          its state copied at the barrier
//!       | "epoch-drawn"      epoch                      a checkpoint starts
//!       | "recorded"         epoch state_bytes offsets  it is recorded (offsets: their sum)
//! ```
//!
//! Nothing printed changes what the job computes: like the other jobs its output is a
//! function of its input alone.

use std::fmt::Arguments;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zabflow_core::coordinator::{CompletedCheckpoint, Coordinator, SinkPosition, SourceOffset};
use zabflow_core::engine::{
    Emitter, Event, Job, JobConfig, JobMetrics, KeyGroupWriter, KeyScope, KeyedProcessFunction,
    LogRecord, Partition, Sink, SinkCommit, Source, SourceStatus, Stamped, StateDecodeError,
    ValueState,
};

use super::fault::{CoordinatorObserver, ObservedCoordinator};
use super::input::{InputLog, MergedSource, INPUT_DISORDER_MS_MAX};
use super::windowed_count::decode_keyed;
use super::{Checkpoints, Outcome};

/// The prefix of every timeline line.
pub const LINE_PREFIX: &str = "running-count: ";
/// Records a paced source hands out between two looks at the clock.
pub const PACE_CHUNK_RECORDS: usize = 64;
/// How long a paced source that is ahead of the clock gives its shard back.
const PACE_WAIT: Duration = Duration::from_micros(500);

/// One output record: a key and its count so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCount {
    pub key: u64,
    pub count: u64,
}

/// Bytes of an encoded [`KeyCount`].
pub const KEY_COUNT_BYTES: usize = 16;

impl LogRecord for KeyCount {
    fn encode(&self, out: &mut Vec<u8>) {
        self.key.encode(out);
        self.count.encode(out);
    }

    fn decode(bytes: &mut &[u8]) -> Option<Self> {
        Some(KeyCount { key: u64::decode(bytes)?, count: u64::decode(bytes)? })
    }
}

/// An output record's payload as one line of text (for `log dump`).
///
/// # Errors
/// A payload that is not one 16-byte key count.
pub fn describe(payload: &[u8]) -> Result<String, String> {
    let mut bytes = payload;
    let result = KeyCount::decode(&mut bytes).filter(|_| bytes.is_empty()).ok_or_else(|| {
        format!("{} bytes is not a {KEY_COUNT_BYTES}-byte key count", payload.len())
    })?;
    Ok(format!("key={} count={}", result.key, result.count))
}

/// Runs the job to the end of the input, checkpointed with `checkpoints`, writing through
/// `sink`, publishing its live numbers into `metrics`.
///
/// # Errors
/// What the engine's run fails with (a bad config, a panicked operator, a checkpoint or
/// coordination failure).
pub fn run<Snk: Sink<KeyCount>>(
    config: JobConfig,
    input: &InputLog,
    sink: impl Fn(usize) -> Snk + Send + Sync + 'static,
    checkpoints: Checkpoints,
    metrics: &JobMetrics,
) -> Outcome<Snk::Output> {
    let input = input.clone();
    let job = Job::new(config)
        .source("input", move |partition: Partition| PacedSource {
            inner: input.source(partition, decode_keyed, INPUT_DISORDER_MS_MAX),
            shard: partition.index,
            started: false,
            anchor: None,
            last_timestamp: 0,
        })
        .key_by("by_key", |event: &Event| event.key)
        .process("running_count", CountFunction::new)
        .sink("output", move |shard| TimedSink { inner: sink(shard), shard, wrote: false })
        .observe(metrics);
    let (settings, coordinator) = checkpoints;
    let timed: Arc<dyn Coordinator> =
        Arc::new(ObservedCoordinator::new(coordinator, Timeline::default()));
    job.run_checkpointed(settings, timed)
}

/// Microseconds since the Unix epoch, by the wall clock (comparable across processes).
pub fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros() as u64)
}

/// Prints one timeline line, stamped now.
fn line(event: &str, fields: Arguments<'_>) {
    eprintln!("{LINE_PREFIX}{event} at_us={} {fields}", wall_us());
}

// ---- the keyed function ------------------------------------------------------------------

/// What restoring a shard's key groups took.
#[derive(Debug, Default)]
struct RestoreStats {
    begin: Option<(u64, Instant)>,
    took: Duration,
    bytes: u64,
    groups: u32,
}

/// Counts events per key in a `ValueState`.
struct CountFunction {
    counts: ValueState<u64, u64>,
    shard: usize,
    restore: RestoreStats,
    reported: bool,
}

impl CountFunction {
    fn new(scope: KeyScope) -> CountFunction {
        CountFunction {
            counts: ValueState::new(&scope),
            shard: scope.shard(),
            restore: RestoreStats::default(),
            reported: false,
        }
    }

    /// Says once, at the first record, what the restore took (it ended before any record).
    fn report_restore(&mut self) {
        self.reported = true;
        let Some((begin_us, _)) = self.restore.begin else { return };
        let stats = &self.restore;
        line(
            "state-restored",
            format_args!(
                "shard={} begin_us={begin_us} dur_us={} keys={} bytes={} groups={}",
                self.shard,
                stats.took.as_micros(),
                self.counts.len(),
                stats.bytes,
                stats.groups
            ),
        );
    }
}

impl KeyedProcessFunction<u64, Event> for CountFunction {
    type Output = KeyCount;

    #[inline]
    fn process(&mut self, key: u64, _record: Stamped<Event>, out: &mut Emitter<'_, KeyCount>) {
        if !self.reported {
            self.report_restore();
        }
        let count = self.counts.get_or_insert_with(key, || 0);
        *count += 1;
        out.emit(KeyCount { key, count: *count });
    }

    fn is_checkpointable(&self) -> bool {
        true
    }

    fn snapshot(&self, out: &mut KeyGroupWriter) {
        let started = Instant::now();
        self.counts.snapshot_into(out);
        let took = started.elapsed();
        let keys = self.counts.len();
        line(
            "snapshot",
            format_args!("shard={} dur_us={} keys={keys}", self.shard, took.as_micros()),
        );
    }

    fn restore(&mut self, key_group: usize, bytes: &mut &[u8]) -> Result<(), StateDecodeError> {
        let started = Instant::now();
        self.restore.begin.get_or_insert((wall_us(), started));
        let length = bytes.len();
        self.counts.restore_from(key_group, bytes)?;
        let stats = &mut self.restore;
        stats.bytes += (length - bytes.len()) as u64;
        stats.groups += 1;
        stats.took += started.elapsed();
        Ok(())
    }
}

// ---- the paced source --------------------------------------------------------------------

/// A shard's input, handed out no faster than its event times advance (module doc).
pub struct PacedSource {
    inner: MergedSource<Event>,
    shard: usize,
    /// Whether the shard pulled once (its `first-pull` line is out).
    started: bool,
    /// When this process handed out its first record, and that record's time.
    anchor: Option<(Instant, u64)>,
    /// The time of the last record handed out.
    last_timestamp: u64,
}

impl PacedSource {
    /// The latest event time the clock allows now.
    fn allowed(&self) -> u64 {
        match self.anchor {
            None => u64::MAX,
            Some((wall, time)) => time.saturating_add(wall.elapsed().as_millis() as u64),
        }
    }
}

impl Source for PacedSource {
    type Record = Event;

    fn pull(&mut self, out: &mut Vec<Stamped<Event>>, max: usize) -> SourceStatus {
        if !self.started {
            self.started = true;
            line("first-pull", format_args!("shard={}", self.shard));
        }
        let allowed = self.allowed();
        if self.anchor.is_some() && self.last_timestamp > allowed {
            std::thread::sleep(PACE_WAIT);
            return SourceStatus::Active;
        }
        while out.len() < max {
            let start = out.len();
            let chunk = (max - start).min(PACE_CHUNK_RECORDS);
            let status = self.inner.pull(out, start + chunk);
            if let Some(first) = out.get(start) {
                self.anchor.get_or_insert((Instant::now(), first.timestamp));
            }
            if let Some(last) = out.last() {
                self.last_timestamp = self.last_timestamp.max(last.timestamp);
            }
            if status == SourceStatus::Exhausted {
                return SourceStatus::Exhausted;
            }
            if out.len() == start || self.last_timestamp > self.allowed() {
                break;
            }
        }
        SourceStatus::Active
    }

    fn out_of_orderness(&self) -> u64 {
        self.inner.out_of_orderness()
    }

    fn position(&self, out: &mut Vec<SourceOffset>) -> Result<(), zabflow_core::Error> {
        if self.started {
            line("barrier", format_args!("shard={}", self.shard));
        }
        self.inner.position(out)
    }

    fn seek(&mut self, offsets: &[SourceOffset]) -> Result<(), zabflow_core::Error> {
        let started = Instant::now();
        let result = self.inner.seek(offsets);
        let took = started.elapsed().as_micros();
        line("source-seek", format_args!("shard={} dur_us={took}", self.shard));
        result
    }
}

// ---- the timed sink ----------------------------------------------------------------------

/// The job's sink, saying when the first output record reaches it.
pub struct TimedSink<S> {
    inner: S,
    shard: usize,
    wrote: bool,
}

impl<S: Sink<KeyCount>> Sink<KeyCount> for TimedSink<S> {
    type Output = S::Output;

    #[inline]
    fn write(&mut self, record: &KeyCount) {
        self.inner.write(record);
        if !self.wrote {
            self.wrote = true;
            line("first-output", format_args!("shard={}", self.shard));
        }
    }

    fn finish(self) -> S::Output {
        self.inner.finish()
    }

    fn prepare_commit(&mut self) -> Result<Option<SinkCommit>, zabflow_core::Error> {
        self.inner.prepare_commit()
    }

    fn restore(
        &mut self,
        epoch: u64,
        positions: &[SinkPosition],
        partition: Partition,
    ) -> Result<(), zabflow_core::Error> {
        let started = Instant::now();
        let result = self.inner.restore(epoch, positions, partition);
        let took = started.elapsed().as_micros();
        line("sink-restore", format_args!("shard={} dur_us={took}", self.shard));
        result
    }
}

// ---- the checkpoint timeline ---------------------------------------------------------------

/// Prints the checkpoint timeline lines of the job's coordinator calls.
#[derive(Default)]
struct Timeline {
    led: AtomicBool,
    /// When the first listing of checkpoints started (µs; 0 before), for `checkpoint-read`.
    listing_us: AtomicU64,
    read: AtomicBool,
}

impl Timeline {
    /// Says once that the newest checkpoint has been read (or that there is none).
    fn say_read(&self, epoch: u64) {
        if !self.read.swap(true, Ordering::Relaxed) {
            let took = wall_us().saturating_sub(self.listing_us.load(Ordering::Relaxed));
            line("checkpoint-read", format_args!("dur_us={took} epoch={epoch}"));
        }
    }
}

impl CoordinatorObserver for Timeline {
    fn led(&self) {
        if !self.led.swap(true, Ordering::Relaxed) {
            line("leader", format_args!(""));
        }
    }

    fn epoch_drawn(&self, epoch: u64) {
        line("epoch-drawn", format_args!("epoch={epoch}"));
    }

    fn recorded(&self, checkpoint: &CompletedCheckpoint) {
        let (_, state_bytes) = checkpoint.state_totals();
        let offsets: u64 = checkpoint.source_offsets.iter().map(|source| source.offset).sum();
        line(
            "recorded",
            format_args!("epoch={} state_bytes={state_bytes} offsets={offsets}", checkpoint.epoch),
        );
    }

    fn listing(&self) {
        let _ =
            self.listing_us.compare_exchange(0, wall_us(), Ordering::Relaxed, Ordering::Relaxed);
    }

    fn listed(&self, epochs: &[u64]) {
        if epochs.is_empty() {
            self.say_read(0);
        }
    }

    fn read(&self, epoch: u64) {
        self.say_read(epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_counts_round_trip_and_bad_lengths_are_refused() {
        let mut bytes = Vec::new();
        KeyCount { key: 7, count: 3 }.encode(&mut bytes);
        assert_eq!(bytes.len(), KEY_COUNT_BYTES);
        assert_eq!(describe(&bytes).unwrap(), "key=7 count=3");
        let error = describe(&bytes[..15]).unwrap_err();
        assert!(error.contains("15 bytes is not a 16-byte key count"), "{error}");
        bytes.push(0);
        assert!(describe(&bytes).is_err());
    }
}
