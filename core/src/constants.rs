//! Named bounds of zabflow-core. Every limit the crate enforces lives here, so that a
//! reader can see at a glance how big anything may grow.

/// Size of a newly created log segment file when the caller does not choose one.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;

/// Smallest segment size a log accepts (tests use tiny segments to exercise rolling).
pub const SEGMENT_BYTES_MIN: u64 = 4 << 10;

/// Largest segment size a log accepts: one io_uring write covers at most a whole segment,
/// and the kernel caps a single write below 2 GiB.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;

/// Bytes of the fixed header at the start of every segment file.
pub const SEGMENT_HEADER_BYTES: u64 = 32;

/// Bytes of a record frame's header: `len: u32 LE | crc32c: u32 LE`.
pub const FRAME_HEADER_BYTES: u64 = 8;

/// Largest payload of one log record. A record must also fit into an empty segment, so the
/// effective limit of a log with tiny segments is smaller (see `Log::record_bytes_max`).
pub const RECORD_BYTES_MAX: usize = 16 << 20;

/// The sparse in-memory index of a segment remembers the byte position of every
/// `INDEX_INTERVAL_RECORDS`-th record, so a read walks at most this many frames.
pub const INDEX_INTERVAL_RECORDS: u64 = 64;

/// Submission queue entries of the io_uring backend's ring (one batch needs two: the write
/// and the linked fdatasync).
pub const URING_ENTRIES: u32 = 8;

/// Requests one group commit (one write submission, one fdatasync) takes at most; a request
/// that finds the pending group this full waits for the next one (backpressure).
pub const GROUP_COMMIT_REQUESTS_MAX: usize = 256;

/// Frame bytes (payloads plus frame headers) the pending group-commit batch holds at most;
/// a request that would overflow it waits for the next batch (backpressure). A request
/// alone is always admitted, so this bounds batching, not the size of one request.
pub const GROUP_COMMIT_PENDING_BYTES_MAX: usize = 1 << 20;

/// Group-commit batches kept for reuse: one filling, one being written, one being answered.
pub const GROUP_COMMIT_BATCHES: usize = 3;

/// Upper bound on the CRC work recovery spends proving that a torn tail hides no valid
/// frame. Past it, recovery reports corruption instead of guessing (nothing is lost).
pub const TORN_TAIL_CRC_BYTES_MAX: u64 = 1 << 30;

/// Bytes zeroed per write when the filesystem cannot zero a range in place.
pub const ZERO_CHUNK_BYTES: usize = 64 << 10;

const _: () = assert!(
    RECORD_BYTES_MAX as u64 + FRAME_HEADER_BYTES + SEGMENT_HEADER_BYTES < SEGMENT_BYTES_DEFAULT
);
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_DEFAULT);
const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MIN > SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES);
const _: () = assert!(SEGMENT_BYTES_MAX < u32::MAX as u64);
const _: () = assert!(INDEX_INTERVAL_RECORDS > 0);
const _: () = assert!(GROUP_COMMIT_REQUESTS_MAX > 0 && GROUP_COMMIT_BATCHES >= 2);
const _: () = assert!(GROUP_COMMIT_PENDING_BYTES_MAX as u64 > FRAME_HEADER_BYTES);

/// Key groups of a job when the caller does not choose: the job's maximum parallelism, the
/// unit in which keyed state is assigned to shards (and, later, snapshotted and rescaled).
pub const KEY_GROUPS_DEFAULT: usize = 128;

/// Largest number of key groups a job may have.
pub const KEY_GROUPS_MAX: usize = 1 << 15;

/// Largest number of shards (threads) of one job; the exchange mesh has `shards²` rings.
pub const SHARDS_MAX: usize = 256;

/// Slots of every exchange ring when the caller does not choose (items, not bytes).
pub const RING_SLOTS_DEFAULT: usize = 4096;

/// Largest number of slots of one exchange ring.
pub const RING_SLOTS_MAX: usize = 1 << 20;

/// Records a shard pulls from its source at once, and so the most records a shard stages
/// for one target before it must hand them to that target's ring.
pub const SOURCE_BATCH_RECORDS_DEFAULT: usize = 1024;

/// Largest source batch a job accepts.
pub const SOURCE_BATCH_RECORDS_MAX: usize = 1 << 16;

/// Empty polls of a shard's loop before it yields its core (then it keeps polling, yielding
/// after each empty round): spinning keeps latency low on a dedicated core, yielding keeps
/// an oversubscribed machine (more shards than cores) moving.
pub const SHARD_IDLE_SPINS_MAX: u32 = 64;

/// Millisecond buckets of an event-time timer wheel (session windows): timers up to this
/// far past the wheel's front cost O(1), later ones wait in a heap. Spans the watermark's
/// usual distance to a session's end (out-of-orderness + source drift + gap) several times.
pub const TIMER_WHEEL_SLOTS: usize = 4096;

/// Timers in one chunk of a timer-wheel bucket: the wheel's unit of memory (a bucket is a
/// list of chunks from one slab). Expiring a bucket's timers streams through a chunk and
/// jumps elsewhere in the slab once per this many timers; a bucket wastes at most one
/// partly filled chunk.
pub const TIMER_WHEEL_CHUNK_TIMERS: usize = 64;

const _: () = assert!(KEY_GROUPS_DEFAULT <= KEY_GROUPS_MAX && KEY_GROUPS_DEFAULT > 0);
const _: () = assert!(SHARDS_MAX <= KEY_GROUPS_MAX);
const _: () = assert!(RING_SLOTS_DEFAULT <= RING_SLOTS_MAX);
const _: () = assert!(SOURCE_BATCH_RECORDS_DEFAULT <= SOURCE_BATCH_RECORDS_MAX);

/// Shortest interval between checkpoints a job accepts.
pub const CHECKPOINT_INTERVAL_MIN: std::time::Duration = std::time::Duration::from_millis(10);

/// Most checkpoints a job may have in flight at once.
pub const CHECKPOINTS_CONCURRENT_MAX: usize = 8;

/// First pause before retrying a coordination call that failed with a retryable error; it
/// doubles on each retry up to [`COORDINATION_BACKOFF_MAX`].
pub const COORDINATION_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(50);

/// Longest pause between two retries of a coordination call.
pub const COORDINATION_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Longest a shard sleeps between two looks for the final checkpoint's epoch at the end of
/// its input.
pub const FINAL_CHECKPOINT_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Largest state file a restore reads (a damaged length must not make it allocate more).
pub const STATE_FILE_BYTES_MAX: u64 = 1 << 34;

const _: () = assert!(CHECKPOINTS_CONCURRENT_MAX >= 1);
const _: () = assert!(COORDINATION_BACKOFF_MIN.as_nanos() < COORDINATION_BACKOFF_MAX.as_nanos());
