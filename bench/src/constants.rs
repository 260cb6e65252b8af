//! Named bounds of the benchmark crate.
//!
//! Every knob a scenario or a report relies on has a name here, so a reader can see every limit
//! in one place and the compile-time asserts below keep related bounds consistent.

use std::time::Duration;

/// Significant decimal digits every latency histogram keeps (0.1 % value resolution).
pub const HISTOGRAM_SIGFIG: u8 = 3;
/// Largest latency a histogram records, in nanoseconds (60 s); larger values saturate.
pub const HISTOGRAM_LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Percentile ticks per half distance in `.hgrm` files, as HdrHistogram's own tools use.
pub const HGRM_TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Decimal places of values in `.hgrm` files (microseconds, so nanosecond resolution).
pub const HGRM_VALUE_DECIMALS: usize = 3;
/// Name of the report's JSON summary inside its directory.
pub const SUMMARY_FILE_NAME: &str = "summary.json";
/// Parent directory of reports when the caller does not choose one.
pub const REPORTS_DIR_DEFAULT: &str = "reports";

/// Item sizes the ring scenario exchanges, in bytes.
pub const RING_ITEM_BYTES: [usize; 2] = [16, 64];
/// Measured time per ring series in a default run (8 series, so about 16 s in all).
pub const RING_SERIES_DURATION_DEFAULT: Duration = Duration::from_secs(2);
/// Measured time per ring series with `--quick`.
pub const RING_SERIES_DURATION_QUICK: Duration = Duration::from_millis(250);
/// Upper bound on the time per ring series, so a typo cannot run for hours.
pub const RING_SERIES_DURATION_MAX: Duration = Duration::from_secs(600);
/// Slots in every channel of the ring scenario, the same for all of them. On the 2-core
/// reference machine a 4096-slot ring of 16 B items runs full and rtrb tops out near 270 M
/// items/s, bouncing cursor cache lines on every batch; 16384 slots (256 KiB of 16 B items,
/// 1 MiB of 64 B items, both within L2) let the consumer keep up and chunked rtrb reach
/// about 850 M items/s.
pub const RING_CAPACITY_DEFAULT: usize = 16384;
/// Items per producer batch: one item per batch carries a latency stamp, and a chunked
/// producer writes at most this many items at once (a chunked consumer takes all it finds).
pub const RING_BATCH_DEFAULT: usize = 256;
/// Largest capacity the ring scenario accepts (items).
pub const RING_CAPACITY_MAX: usize = 1 << 24;

const _: () = assert!(RING_BATCH_DEFAULT <= RING_CAPACITY_DEFAULT);
const _: () = assert!(RING_CAPACITY_DEFAULT <= RING_CAPACITY_MAX);
const _: () =
    assert!(RING_SERIES_DURATION_QUICK.as_nanos() < RING_SERIES_DURATION_DEFAULT.as_nanos());

/// Write sizes of the log scenario's disk floors: 4 KiB (fsyncs per second) and 1 MiB
/// (durable bandwidth). The first is the denominator of small-record `floor_ratio`s, the
/// second of 64 KiB-record ones.
pub const LOG_FLOOR_BYTES: [usize; 2] = [4096, 1 << 20];
/// Size of the file the floors cycle through (written and synced in full before measuring).
pub const LOG_FLOOR_FILE_BYTES: u64 = 64 << 20;
/// Measured time per log series in a default run (2 floors + 14 cases per backend).
pub const LOG_SERIES_DURATION_DEFAULT: Duration = Duration::from_secs(1);
/// Measured time per log series with `--quick`.
pub const LOG_SERIES_DURATION_QUICK: Duration = Duration::from_millis(200);
/// Upper bound on the time per log series.
pub const LOG_SERIES_DURATION_MAX: Duration = Duration::from_secs(600);
/// Bytes one log series writes at most, so a fast disk cannot fill up during a run.
pub const LOG_SERIES_BYTES_MAX: u64 = 4 << 30;

const _: () =
    assert!(LOG_SERIES_DURATION_QUICK.as_nanos() < LOG_SERIES_DURATION_DEFAULT.as_nanos());
const _: () = assert!(LOG_FLOOR_BYTES[1] as u64 <= LOG_SERIES_BYTES_MAX);

/// Sessions the coord load generator opens by default, spread over the target's servers.
pub const COORD_SESSIONS_DEFAULT: usize = 16;
/// Most sessions the coord load generator opens (each has a client I/O thread).
pub const COORD_SESSIONS_MAX: usize = 256;
/// Requests each session keeps in flight by default (closed loop; the cap in open loop):
/// 128 in flight over the default 16 sessions, the "128 in flight" anchor.
pub const COORD_DEPTH_DEFAULT: usize = 8;
/// Requests each session keeps in flight in the deep closed-loop rows: 1,024 in flight over
/// the default 16 sessions, the "1,024 in flight" anchor.
pub const COORD_DEPTH_DEEP: usize = 64;
/// Requests each session keeps in flight during the warm-up (at most the run's deepest).
pub const COORD_WARMUP_DEPTH: usize = 64;
/// Most requests one session keeps in flight (the client's queue and window are sized to it).
pub const COORD_DEPTH_MAX: usize = 4096;
/// Bytes of every value written, by default.
pub const COORD_VALUE_BYTES_DEFAULT: usize = 100;
/// Largest value the load generator writes (well below `jute.maxbuffer`, 0xfffff).
pub const COORD_VALUE_BYTES_MAX: usize = 512 * 1024;
/// Znodes created before measuring, read and written by key.
pub const COORD_ZNODES_DEFAULT: usize = 1_000;
/// Most znodes the load generator pre-creates.
pub const COORD_ZNODES_MAX: usize = 1_000_000;
/// Load run against a fresh target before any workload: a cold JVM is ~4x slower for its
/// first ~20 s of load, and both targets are warmed the same way.
pub const COORD_WARMUP_DEFAULT: Duration = Duration::from_secs(20);
/// Target warm-up in the default suite (shorter, so the suite stays near 3 minutes).
pub const COORD_WARMUP_SUITE: Duration = Duration::from_secs(8);
/// Load run before each workload's measured window, so the window starts in steady state.
pub const COORD_RAMP: Duration = Duration::from_secs(1);
/// Ramp before each measured window in quick (smoke-test) runs.
pub const COORD_RAMP_QUICK: Duration = Duration::from_millis(250);
/// Measured window of each workload by default.
pub const COORD_WINDOW_DEFAULT: Duration = Duration::from_secs(10);
/// Measured window of each workload in the default suite.
pub const COORD_WINDOW_SUITE: Duration = Duration::from_secs(4);
/// Upper bound on a measured window or a warm-up.
pub const COORD_WINDOW_MAX: Duration = Duration::from_secs(3600);
/// Open-loop rate of the default workloads, in requests per second over all sessions.
pub const COORD_OPEN_RATE_DEFAULT: u64 = 1_000;
/// The step of a coord series' latency timeline (`worst_latency_us_per_100ms`).
pub const COORD_TIMELINE_STEP: Duration = Duration::from_millis(100);
/// Largest open-loop rate accepted, in requests per second.
pub const COORD_OPEN_RATE_MAX: u64 = 10_000_000;
/// Load-generator threads at most; each owns the sockets of a share of the sessions (the
/// reference machine has 2 cores, shared with the servers).
pub const COORD_GENERATOR_THREADS_MAX: usize = 2;
/// How long requests still in flight after a window may take to complete.
pub const COORD_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Session timeout the generator's sessions ask for (ZooKeeper's client default); they ping
/// after a third of the negotiated one without a request.
pub const COORD_SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening one session may take, over rounds of every server.
pub const COORD_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one connect-and-handshake attempt to one server may take.
pub const COORD_CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing the generator's sessions waits for the `closeSession` replies in all.
pub const COORD_CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a started server may take to answer `ruok`, and to exit after SIGTERM.
pub const COORD_SERVER_WAIT: Duration = Duration::from_secs(20);
/// `tickTime` of every server the scenario starts, ZooKeeper's default.
pub const COORD_TICK_TIME_MS: u32 = 2_000;
/// Most servers of a target the scenario starts (zabflow or ZooKeeper).
pub const COORD_NODES_MAX: usize = 7;
/// Servers of each target in the default suite: the anchors are 3-node ensembles.
pub const COORD_NODES_SUITE: usize = 3;

/// Sessions at most that pre-create the keys, each with its own pipelined creates.
pub const COORD_POPULATE_SESSIONS_MAX: usize = 4;
/// How long connecting to each host of `--target external` may take before the run fails.
pub const COORD_HOST_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest reply the session that removes an external run's nodes accepts: listing a parent
/// of many sequential nodes outgrows `jute.maxbuffer`, which only bounds requests.
pub const COORD_CLEANUP_PACKET_BYTES_MAX: usize = 64 << 20;
/// Deletes in flight while removing an external run's nodes.
pub const COORD_CLEANUP_DEPTH: usize = 256;
/// Znodes the `coord-memory` scenario loads by default (the figure).
pub const COORD_MEMORY_ZNODES_DEFAULT: usize = 1_000_000;
/// Znodes `coord-memory` loads in the default suite, to keep the suite near 3 minutes.
pub const COORD_MEMORY_ZNODES_SUITE: usize = 250_000;
/// Bytes of every value `coord-memory` loads.
pub const COORD_MEMORY_VALUE_BYTES_DEFAULT: usize = 100;
/// Pause between the last create's reply and the memory sample, so background work the
/// load caused (snapshots, log rolls, a JVM's concurrent GC cycle) is done.
pub const COORD_MEMORY_SETTLE_DEFAULT: Duration = Duration::from_secs(5);
/// Longest settle `coord-memory` accepts.
pub const COORD_MEMORY_SETTLE_MAX: Duration = Duration::from_secs(600);

const _: () = assert!(COORD_SESSIONS_DEFAULT <= COORD_SESSIONS_MAX);
const _: () = assert!(COORD_DEPTH_DEFAULT <= COORD_DEPTH_DEEP);
const _: () = assert!(COORD_DEPTH_DEEP <= COORD_DEPTH_MAX);
const _: () = assert!(COORD_WARMUP_DEPTH <= COORD_DEPTH_MAX);
const _: () = assert!(COORD_NODES_SUITE <= COORD_NODES_MAX);
// The ZooKeeper harness starts ensembles of at most this many nodes.
const _: () = assert!(COORD_NODES_MAX <= zabflow_tests::real_zookeeper::ENSEMBLE_NODES_MAX);
const _: () = assert!(COORD_VALUE_BYTES_DEFAULT <= COORD_VALUE_BYTES_MAX);
const _: () = assert!(COORD_ZNODES_DEFAULT <= COORD_ZNODES_MAX);
const _: () = assert!(COORD_WARMUP_SUITE.as_nanos() <= COORD_WARMUP_DEFAULT.as_nanos());
const _: () = assert!(COORD_WINDOW_SUITE.as_nanos() <= COORD_WINDOW_DEFAULT.as_nanos());
const _: () = assert!(COORD_RAMP_QUICK.as_nanos() <= COORD_RAMP.as_nanos());
const _: () = assert!(COORD_POPULATE_SESSIONS_MAX <= COORD_SESSIONS_MAX);
const _: () = assert!(COORD_CONNECT_ATTEMPT_TIMEOUT.as_nanos() <= COORD_CONNECT_TIMEOUT.as_nanos());
const _: () = assert!(COORD_MEMORY_ZNODES_SUITE <= COORD_MEMORY_ZNODES_DEFAULT);
const _: () = assert!(COORD_MEMORY_ZNODES_DEFAULT <= COORD_ZNODES_MAX);
const _: () = assert!(COORD_MEMORY_VALUE_BYTES_DEFAULT <= COORD_VALUE_BYTES_MAX);

/// Events per series of the pipeline scenario in a default run.
pub const PIPELINE_EVENTS_DEFAULT: u64 = 200_000_000;
/// Events per series in the default suite: a tenth of a default run, so the whole suite
/// stays near 3 minutes on 2 cores (throughput runs of well under a second each when the
/// machine is quiet; long enough to amortise thread start and window flushes).
pub const PIPELINE_EVENTS_SUITE: u64 = 20_000_000;
/// Events per series with `--quick`.
pub const PIPELINE_EVENTS_QUICK: u64 = 4_000_000;
/// Upper bound on the events of one pipeline series.
pub const PIPELINE_EVENTS_MAX: u64 = 1 << 40;
/// Distinct keys of the pipeline scenario's generator.
pub const PIPELINE_KEYS: u64 = 100_000;
/// Size of the pipeline scenario's tumbling windows, in milliseconds of event time.
pub const PIPELINE_WINDOW_MS: u64 = 1000;
/// Events per second of event time: with 100k keys, about 100 events per key per window.
pub const PIPELINE_EVENT_TIME_DENSITY: u64 = 10_000_000;

const _: () = assert!(PIPELINE_EVENTS_QUICK <= PIPELINE_EVENTS_SUITE);
const _: () = assert!(PIPELINE_EVENTS_SUITE <= PIPELINE_EVENTS_DEFAULT);
const _: () = assert!(PIPELINE_EVENTS_DEFAULT <= PIPELINE_EVENTS_MAX);

/// How often a live view (`--live`) redraws its table in place on a terminal.
pub const LIVE_VIEW_REDRAW_INTERVAL: Duration = Duration::from_millis(500);
/// How often a live view prints its one plain line when stderr is not a terminal (a log).
pub const LIVE_VIEW_LINE_INTERVAL: Duration = Duration::from_secs(1);
