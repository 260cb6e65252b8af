//! Window specifications: how a keyed stream is cut into windows, and in which time.
//!
//! - [`Tumbling`]: fixed-size, non-overlapping windows `[k·size, (k+1)·size)`;
//! - [`Sliding`]: windows of `size` starting every `slide`, `[k·slide, k·slide + size)` for
//!   `k ≥ 0` (so a record near time 0 belongs to fewer windows: none start before 0);
//! - [`Session`]: per key, records closer than `gap` to each other form one window
//!   `[first, last + gap)`; a silence of at least `gap` ends it.
//!
//! Each runs in event time (the records' timestamps, fired by watermarks) or, with
//! `in_processing_time()`, in processing time (the shard's wall clock in milliseconds
//! since the Unix epoch, read when the record reaches its window shard).
//!
//! **When a window fires, and what is late.** A window `[start, end)` fires once, when the
//! watermark reaches `end`. With an allowed lateness `L`, its state is kept until the
//! watermark reaches `end + L`; a record arriving for it meanwhile is folded in and the
//! window of that key fires again with the updated result (a *late firing*, as Flink's
//! accumulating event-time trigger). A record is late, and goes to the late side output
//! instead, when it can no longer be folded into every window it belongs to:
//!
//! - tumbling and sliding: when the *earliest* window holding it has been purged
//!   (`end + L ≤ watermark`). This is stricter than Flink for sliding windows (Flink folds
//!   the record into its windows still open and drops it from the others), and it buys a
//!   simple contract: every record is in all of its windows or in the side output;
//! - session: when `timestamp + L < watermark`. A record that is not late therefore never
//!   overlaps a session that has been purged (or, with `L = 0`, fired), so sessions are
//!   never split by what was already emitted.
//!
//! A window spec builds its operator ([`WindowSpec::operator`]) with the window function
//! and the lateness; the shard drives that operator through [`KeyedOperator`].

use super::aligned_windows::AlignedWindows;
use super::operator::KeyedOperator;
use super::session_windows::SessionWindows;
use super::window_function::WindowFunction;
use std::hash::Hash;

/// Which clock drives a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeDomain {
    /// Record timestamps, advanced by watermarks.
    EventTime,
    /// The shard's wall clock (milliseconds since the Unix epoch).
    ProcessingTime,
}

/// One window: the half-open interval `[start, end)` of timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First timestamp of the window.
    pub start: u64,
    /// First timestamp after the window.
    pub end: u64,
}

/// One fired window's value for one key.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct WindowResult<K, V> {
    pub key: K,
    /// First timestamp of the window.
    pub window_start: u64,
    /// First timestamp after the window.
    pub window_end: u64,
    pub value: V,
}

/// A way of cutting a keyed stream into windows.
pub trait WindowSpec: Copy + Send + Sync + 'static {
    /// The operator that keeps the windows of one shard.
    type Operator<K, T, F>: KeyedOperator<K, T, Output = F::Output>
    where
        K: Copy + Eq + Hash + Send + 'static,
        T: Send + 'static,
        F: WindowFunction<K, T>;

    /// A fresh operator folding with `function`, keeping fired state for
    /// `allowed_lateness` (in the spec's time unit, milliseconds).
    fn operator<K, T, F>(&self, function: F, allowed_lateness: u64) -> Self::Operator<K, T, F>
    where
        K: Copy + Eq + Hash + Send + 'static,
        T: Send + 'static,
        F: WindowFunction<K, T>;

    /// The clock of the windows.
    fn time_domain(&self) -> TimeDomain;
}

/// Fixed-size, non-overlapping windows of `size` milliseconds, aligned to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tumbling {
    size: u64,
    domain: TimeDomain,
}

impl Tumbling {
    /// Event-time windows of `size` ms.
    ///
    /// # Panics
    /// If `size` is zero.
    pub fn of(size: u64) -> Tumbling {
        assert!(size > 0, "a tumbling window needs a positive size");
        Tumbling { size, domain: TimeDomain::EventTime }
    }

    /// The same windows in processing time.
    pub fn in_processing_time(self) -> Tumbling {
        Tumbling { domain: TimeDomain::ProcessingTime, ..self }
    }

    /// The window's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Start of the window holding `timestamp`.
    #[inline]
    pub fn start_of(&self, timestamp: u64) -> u64 {
        timestamp - timestamp % self.size
    }

    /// End (exclusive) of the window starting at `start`; saturates at the end of time.
    #[inline]
    pub fn end_of(&self, start: u64) -> u64 {
        start.saturating_add(self.size)
    }
}

/// `WindowSpec` for a spec of aligned windows (fields `size`, `domain`), sliding by `$slide`.
macro_rules! aligned_window_spec {
    ($spec:ty, |$this:ident| $slide:expr) => {
        impl WindowSpec for $spec {
            type Operator<K, T, F>
                = AlignedWindows<K, T, F>
            where
                K: Copy + Eq + Hash + Send + 'static,
                T: Send + 'static,
                F: WindowFunction<K, T>;

            fn operator<K, T, F>(&self, function: F, lateness: u64) -> AlignedWindows<K, T, F>
            where
                K: Copy + Eq + Hash + Send + 'static,
                T: Send + 'static,
                F: WindowFunction<K, T>,
            {
                let $this = self;
                AlignedWindows::new($this.size, $slide, lateness, $this.domain, function)
            }

            fn time_domain(&self) -> TimeDomain {
                self.domain
            }
        }
    };
}

aligned_window_spec!(Tumbling, |spec| spec.size);

/// Windows of `size` ms starting every `slide` ms: `[k·slide, k·slide + size)`, `k ≥ 0`.
///
/// Records are folded into panes of `gcd(size, slide)` ms, one state per key and pane, and a
/// firing window merges its `size / pane` panes: a record costs one state update however
/// many windows it belongs to (a 10 s / 1 s window: one, not ten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliding {
    size: u64,
    slide: u64,
    domain: TimeDomain,
}

impl Sliding {
    /// Event-time windows of `size` ms every `slide` ms.
    ///
    /// # Panics
    /// If `size` or `slide` is zero.
    pub fn of(size: u64, slide: u64) -> Sliding {
        assert!(size > 0 && slide > 0, "a sliding window needs a positive size and slide");
        Sliding { size, slide, domain: TimeDomain::EventTime }
    }

    /// The same windows in processing time.
    pub fn in_processing_time(self) -> Sliding {
        Sliding { domain: TimeDomain::ProcessingTime, ..self }
    }

    /// Length of each window.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Distance between the starts of consecutive windows.
    pub fn slide(&self) -> u64 {
        self.slide
    }
}

aligned_window_spec!(Sliding, |spec| spec.slide);

/// Session windows: a key's records less than `gap` ms apart share a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    gap: u64,
    domain: TimeDomain,
}

impl Session {
    /// Event-time sessions closed by `gap` ms without a record.
    ///
    /// # Panics
    /// If `gap` is zero.
    pub fn with_gap(gap: u64) -> Session {
        assert!(gap > 0, "a session window needs a positive gap");
        Session { gap, domain: TimeDomain::EventTime }
    }

    /// The same sessions in processing time.
    pub fn in_processing_time(self) -> Session {
        Session { domain: TimeDomain::ProcessingTime, ..self }
    }

    /// The silence that ends a session.
    pub fn gap(&self) -> u64 {
        self.gap
    }
}

impl WindowSpec for Session {
    type Operator<K, T, F>
        = SessionWindows<K, T, F>
    where
        K: Copy + Eq + Hash + Send + 'static,
        T: Send + 'static,
        F: WindowFunction<K, T>;

    fn operator<K, T, F>(&self, function: F, allowed_lateness: u64) -> SessionWindows<K, T, F>
    where
        K: Copy + Eq + Hash + Send + 'static,
        T: Send + 'static,
        F: WindowFunction<K, T>,
    {
        SessionWindows::new(self.gap, allowed_lateness, self.domain, function)
    }

    fn time_domain(&self) -> TimeDomain {
        self.domain
    }
}
