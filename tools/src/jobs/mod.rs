//! The jobs `zabflow job run` ships: a windowed keyed count ([`windowed_count`]), an
//! access-log analysis ([`log_analysis`]) and a running count per key ([`running_count`],
//! the recovery benchmark's job), all reading a partitioned input log through
//! [`input`].
//!
//! Both are deterministic given their input — every output record is a function of the
//! input's records alone, whatever the shard count and whatever the timing — so the
//! committed output of a run that was killed and restarted any number of times can be
//! compared record for record with an uninterrupted run's.

pub mod fault;
pub mod input;
pub mod log_analysis;
pub mod running_count;
pub mod windowed_count;

use std::sync::Arc;

use zabflow_core::coordinator::Coordinator;
use zabflow_core::engine::{CheckpointSettings, CheckpointedOutput};

/// Checkpointing of a run: its settings and the coordinator.
pub type Checkpoints = (CheckpointSettings, Arc<dyn Coordinator>);

/// What a run hands back: the sinks' outputs and what the checkpoints did.
pub type Outcome<O> = Result<CheckpointedOutput<O>, zabflow_core::Error>;
