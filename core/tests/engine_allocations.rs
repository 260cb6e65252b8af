//! The engine allocates when a job starts, not per record: a job over ten times the events
//! (same keys, ten times the windows) makes no more allocations than the small one, beyond
//! a small slack for thread-start noise. Tumbling, sliding and session windows alike (a
//! sliding window merges its panes in a reused scratch map; session windows keep their
//! sessions in a slab with a free list and their timers in a wheel whose buckets are lists
//! in one slab, so neither grows with the event-time span the job covers).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use zabflow_core::engine::{
    Count, CountingSink, Event, Generator, GeneratorConfig, Job, JobConfig, Session, Sliding,
    Tumbling, WindowSpec,
};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by a 2-shard windowed count over `events` events of 1000 keys. The
/// shards' sources are aligned (at most 200 ms apart): unaligned, one source may run
/// seconds ahead of the other on a busy machine, and the window state that holds open
/// (and allocates) grows with that drift, not with the records.
fn allocations_of_job<W: WindowSpec>(events: u64, windows: W) -> u64 {
    let generator = GeneratorConfig {
        seed: 9,
        events,
        keys: 1000,
        events_per_second: 100_000,
        out_of_orderness: 100,
        rate_per_second: None,
        pace_from: None,
        skew: 0.0,
    };
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let output =
        Job::new(JobConfig { ring_slots: 512, drift_max_ms: Some(200), ..JobConfig::new(2) })
            .source("generator", move |partition| Generator::new(generator, partition))
            .key_by("by_key", |event: &Event| event.key)
            .window(windows)
            .aggregate("count", Count)
            .sink("blackhole", |_| CountingSink::default())
            .run()
            .expect("job runs");
    assert_eq!(output.records_pulled(), events);
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn allocations_do_not_grow_with_records_or_windows() {
    allocations_of_job(50_000, Tumbling::of(1000)); // warm up lazily initialised state
    let small = allocations_of_job(200_000, Tumbling::of(1000));
    let large = allocations_of_job(2_000_000, Tumbling::of(1000));
    assert!(large <= small + 32, "tumbling: {small} allocations for 200k events, {large} for 2M");
    let small = allocations_of_job(200_000, Sliding::of(1000, 250));
    let large = allocations_of_job(2_000_000, Sliding::of(1000, 250));
    assert!(large <= small + 32, "sliding: {small} allocations for 200k events, {large} for 2M");
    let small = allocations_of_job(200_000, Session::with_gap(20));
    let large = allocations_of_job(2_000_000, Session::with_gap(20));
    assert!(large <= small + 32, "session: {small} allocations for 200k events, {large} for 2M");
}
