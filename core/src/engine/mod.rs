//! The stream engine: shard-per-core pipelines over SPSC rings, with keyed event-time
//! windows.
//!
//! A job runs on N shards, one pinned OS thread each (`runtime`). Each shard reads its own
//! source partition, runs the fused stateless chain ([`chain`]: [`map`], [`filter`],
//! [`flat_map`]) and routes every record by key group ([`key_group`]) to the shard that owns
//! it, over an N×N mesh of bounded `rtrb` rings ([`mesh`]) that also carry watermarks,
//! barriers and end-of-stream in band ([`item`]). The owning shard folds the record into
//! its window state ([`window`], [`aggregate`]) and fires windows as the minimum watermark
//! over its inputs ([`input_tracker`]) passes their end, into its sink ([`sink`]).
//!
//! The trade-off throughout is the one of thread-per-core systems (glommio, Seastar): no
//! shared mutable state, so no locks and no contended cache lines per record, paid for by
//! explicit placement (which shard owns which key group) and explicit capacity (ring
//! slots, batch sizes), fixed when the job starts. The shard loop ([`shard`]) never blocks:
//! a shard that cannot push stops pulling its source but keeps draining its inputs, so
//! bounded rings give backpressure without deadlock. Users see only [`job`]'s builder.
//!
//! Windows are tumbling, sliding or session ([`window`]), in event or processing time,
//! folded incrementally or handed whole to a process function ([`window_function`]), with
//! allowed lateness and a late side output; custom keyed operators keep keyed state per
//! key group ([`keyed_process`], [`keyed_state`]). Sources: a seeded generator, in-memory
//! records, text files, the segmented log; sinks: collect, count, CSV / JSON-lines files,
//! stdout, the segmented log ([`file_sink`], [`log_connector`]). Live numbers: [`metrics`].

pub mod aggregate;
pub mod aligned_windows;
pub mod chain;
pub mod checkpoint;
mod checkpoint_driver;
pub mod constants;
pub mod file_sink;
pub mod filter;
pub mod flat_map;
pub mod generator;
pub mod input_tracker;
pub mod item;
pub mod job;
pub mod key_group;
pub mod keyed_process;
pub mod keyed_state;
pub mod log_connector;
pub mod map;
pub mod mesh;
pub mod metrics;
pub mod operator;
pub mod output_commit;
pub mod row;
mod runtime;
pub mod session_windows;
pub mod shard;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod state_codec;
pub mod state_file;
pub mod text_source;
mod timer_wheel;
pub mod window;
pub mod window_function;

pub use aggregate::{Aggregate, Avg, Count, Max, Min, Sum};
pub use checkpoint::{CheckpointReport, CheckpointSettings, CheckpointedOutput};
pub use file_sink::{FileSink, FileSinkReport, StdoutSink};
pub use flat_map::Emitter;
pub use generator::{Event, GeneratedRecord, Generator, GeneratorConfig, Padded};
pub use item::{Item, Stamped};
pub use job::{Job, JobConfig, JobOutput};
pub use keyed_process::KeyedProcessFunction;
pub use keyed_state::{KeyScope, MapState, ValueState};
pub use log_connector::{LogPartitions, LogRecord, LogSink, LogSinkReport, LogSource};
pub use mesh::{ChannelConsumer, ChannelProducer, Exchange, RtrbExchange};
pub use metrics::{render, render_line, render_totals, JobMetrics, MetricsSnapshot, ShardMetrics};
pub use operator::KeyedOperator;
pub use output_commit::{
    committed_decoded, committed_file_bytes, committed_records, read_commit_file, CommitPoint,
    CommittedPartition, SinkCommit,
};
pub use row::{Field, Row, RowFormat, RowWriter};
pub use shard::ShardStats;
pub use sink::{CollectSink, CountingSink, Sink};
pub use snapshot::{KeyGroupWriter, SnapshotState};
pub use source::{Partition, Source, SourceStatus, VecSource};
pub use state_codec::{StateCodec, StateDecodeError};
pub use text_source::{TextFile, TextSource};
pub use window::{Session, Sliding, TimeDomain, Tumbling, Window, WindowResult, WindowSpec};
pub use window_function::WindowFunction;
