//! Sinks: where a shard's results go.
//!
//! Like sources, a sink is a factory called once per shard; each instance sees only its
//! shard's results and hands back an output when the job ends (the collected records, a
//! count), which the job returns per shard. Sinks run on the shard's thread inside its
//! loop, so a sink must not block for long: a slow sink slows its shard, and backpressure
//! carries that upstream.
//!
//! A sink of a checkpointed job takes part in a two-phase commit
//! ([`output_commit`](super::output_commit)): at each checkpoint's barrier
//! [`Sink::prepare_commit`] makes what it wrote durable and says where its output ends, and
//! before the job's first record [`Sink::restore`] rolls its output back to the restored
//! checkpoint. The defaults refuse ([`Error::NotCheckpointable`]), so a checkpointed job
//! will not start with a sink that cannot keep exactly-once output.

use super::output_commit::SinkCommit;
use super::source::Partition;
use crate::coordinator::SinkPosition;
use crate::Error;
use std::hint::black_box;

/// A shard's instance of a job's sink.
pub trait Sink<R>: Send + 'static {
    /// What the sink hands back when the job ends.
    type Output: Send + 'static;
    /// Takes one result.
    fn write(&mut self, record: &R);
    /// The stream has ended (every window has fired).
    fn finish(self) -> Self::Output;

    /// Phase one of a checkpoint, on the shard thread at the barrier: makes every result
    /// written so far durable and returns where the output ends, or `Ok(None)` for a sink
    /// with nothing to commit (it keeps no output beyond the process).
    ///
    /// # Errors
    /// [`Error::NotCheckpointable`] (the default); the sink's I/O error (the checkpoint is
    /// then aborted and the job fails).
    fn prepare_commit(&mut self) -> Result<Option<SinkCommit>, Error> {
        Err(sink_not_checkpointable::<Self>())
    }

    /// Before the first result of a checkpointed job, on the caller's thread: drops output
    /// beyond the restored checkpoint and makes its end the committed one. `positions`
    /// holds every sink partition the checkpoint of `epoch` recorded (empty, with epoch 0,
    /// for a job starting afresh: all output is dropped). `partition` is this sink's shard;
    /// the last shard also rolls back partitions numbered from `partition.count` on that a
    /// run on more shards left behind.
    ///
    /// # Errors
    /// [`Error::NotCheckpointable`] (the default); an error naming the partition when its
    /// output is shorter than the checkpoint says.
    fn restore(
        &mut self,
        epoch: u64,
        positions: &[SinkPosition],
        partition: Partition,
    ) -> Result<(), Error> {
        let _ = (epoch, positions, partition);
        Err(sink_not_checkpointable::<Self>())
    }
}

fn sink_not_checkpointable<S: ?Sized>() -> Error {
    Error::NotCheckpointable(format!(
        "sink type {} has no two-phase commit",
        std::any::type_name::<S>()
    ))
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

    /// Nothing to commit: the records live in this process only (for tests).
    fn prepare_commit(&mut self) -> Result<Option<SinkCommit>, Error> {
        Ok(None)
    }

    fn restore(&mut self, _: u64, _: &[SinkPosition], _: Partition) -> Result<(), Error> {
        Ok(())
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

    /// Nothing to commit: a count is not output.
    fn prepare_commit(&mut self) -> Result<Option<SinkCommit>, Error> {
        Ok(None)
    }

    fn restore(&mut self, _: u64, _: &[SinkPosition], _: Partition) -> Result<(), Error> {
        Ok(())
    }
}
