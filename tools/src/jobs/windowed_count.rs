//! The windowed keyed count: how many events each key had in each tumbling event-time
//! window.
//!
//! ```text
//! input  = keyed events (zabflow_core::records::KeyedEvent: event_time_ms, key, value)
//! output = one WindowResult<u64, u64> per (key, window) with events:
//!          key:u64 | window_start:u64 | window_end:u64 | count:u64      (LE, 32 bytes)
//! ```
//!
//! Deterministic given the input: the source declares more out-of-orderness than the
//! generator's disorder ([`INPUT_DISORDER_MS_MAX`]), so no record is ever late, and a
//! (key, window) count depends only on which records the input holds.

use zabflow_core::engine::{
    Count, Event, Job, JobConfig, JobMetrics, LogRecord as _, Sink, Stamped, Tumbling, WindowResult,
};
use zabflow_core::records::{KeyedEvent, KEYED_EVENT_BYTES};

use super::input::{InputLog, INPUT_DISORDER_MS_MAX};
use super::{Checkpoints, Outcome};

/// One output record: (key, window, count).
pub type CountResult = WindowResult<u64, u64>;

/// Decodes a 24-byte keyed event into the engine's `Stamped<Event>`.
///
/// # Errors
/// A payload of the wrong length.
pub fn decode_keyed(payload: &[u8]) -> Result<Stamped<Event>, String> {
    let event = KeyedEvent::decode(payload).ok_or_else(|| {
        format!("{} bytes is not a {KEYED_EVENT_BYTES}-byte keyed event", payload.len())
    })?;
    Ok(Stamped {
        timestamp: event.event_time_ms,
        record: Event { key: event.key, value: event.value },
    })
}

/// An output record's payload as one line of text (for `log dump`).
///
/// # Errors
/// A payload that is not one 32-byte count result.
pub fn describe(payload: &[u8]) -> Result<String, String> {
    let mut bytes = payload;
    let result = CountResult::decode(&mut bytes)
        .filter(|_| bytes.is_empty())
        .ok_or_else(|| format!("{} bytes is not a 32-byte count result", payload.len()))?;
    Ok(format!(
        "key={} window_start={} window_end={} count={}",
        result.key, result.window_start, result.window_end, result.value
    ))
}

/// Runs the job to the end of the input, checkpointed with `checkpoints`, writing through
/// `sink`, publishing its live numbers into `metrics`.
///
/// # Errors
/// What the engine's run fails with (a bad config, a panicked operator, a checkpoint or
/// coordination failure).
pub fn run<Snk: Sink<CountResult>>(
    config: JobConfig,
    input: &InputLog,
    window_ms: u64,
    sink: impl Fn(usize) -> Snk + Send + Sync + 'static,
    checkpoints: Checkpoints,
    metrics: &JobMetrics,
) -> Outcome<Snk::Output> {
    let input = input.clone();
    let job = Job::new(config)
        .source("input", move |partition| {
            input.source(partition, decode_keyed, INPUT_DISORDER_MS_MAX)
        })
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(window_ms))
        .aggregate("count", Count)
        .sink("output", sink)
        .observe(metrics);
    let (settings, coordinator) = checkpoints;
    job.run_checkpointed(settings, coordinator)
}
