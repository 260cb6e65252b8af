//! Sinks: where a shard's results go.
//!
//! Like sources, a sink is a factory called once per shard; each instance sees only its
//! shard's results and hands back an output when the job ends (the collected records, a
//! count), which the job returns per shard. Sinks run on the shard's thread inside its
//! loop, so a sink must not block for long: a slow sink slows its shard, and backpressure
//! carries that upstream.

use std::hint::black_box;

/// A shard's instance of a job's sink.
pub trait Sink<R>: Send + 'static {
    /// What the sink hands back when the job ends.
    type Output: Send + 'static;
    /// Takes one result.
    fn write(&mut self, record: &R);
    /// The stream has ended (every window has fired).
    fn finish(self) -> Self::Output;
}

/// Keeps every result in memory (for tests and examples).
#[derive(Debug, Clone)]
pub struct CollectSink<R> {
    records: Vec<R>,
}

impl<R> Default for CollectSink<R> {
    fn default() -> Self {
        CollectSink { records: Vec::new() }
    }
}

impl<R: Copy + Send + 'static> Sink<R> for CollectSink<R> {
    type Output = Vec<R>;
    fn write(&mut self, record: &R) {
        self.records.push(*record);
    }
    fn finish(self) -> Vec<R> {
        self.records
    }
}

/// Counts results and throws them away (for benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingSink {
    records: u64,
}

impl<R: Send + 'static> Sink<R> for CountingSink {
    type Output = u64;
    #[inline]
    fn write(&mut self, record: &R) {
        black_box(record);
        self.records += 1;
    }
    fn finish(self) -> u64 {
        self.records
    }
}
