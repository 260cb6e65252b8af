//! The tumbling-window operator: keyed, event-time, incremental.
//!
//! A pure state machine (records and watermarks in, window results out through a callback);
//! the shard driver owns threads and rings. State is one hash map of accumulators per open
//! window, keyed by the record's key. Bounded out-of-orderness keeps only a few windows open
//! at once (`bound / size + 2`), so finding a record's window is a short scan from the
//! newest, and the maps of fired windows are cleared and kept for reuse: once every key has
//! been seen, the operator allocates nothing.
//!
//! A window `[start, start + size)` fires when the watermark reaches `start + size`, exactly
//! once. A record whose window has already fired is late: with allowed lateness 0 it is
//! counted as a side output and dropped, never folded into a result that has left.

use super::aggregate::Aggregate;
use super::key_group::KeyHashBuilder;
use std::collections::HashMap;
use std::hash::Hash;

/// Fixed-size, non-overlapping event-time windows of `size` milliseconds, aligned to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tumbling {
    size: u64,
}

impl Tumbling {
    /// # Panics
    /// If `size` is zero.
    pub fn of(size: u64) -> Tumbling {
        assert!(size > 0, "a tumbling window needs a positive size");
        Tumbling { size }
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

type Accumulators<K, A, T> = HashMap<K, <A as Aggregate<T>>::Accumulator, KeyHashBuilder>;

/// Open windows of one shard, and the aggregate they fold.
pub struct WindowOperator<K, T, A: Aggregate<T>> {
    window: Tumbling,
    aggregate: A,
    /// Open windows, ascending by start.
    open: Vec<(u64, Accumulators<K, A, T>)>,
    /// Cleared maps of fired windows, kept for reuse.
    spare: Vec<Accumulators<K, A, T>>,
    watermark: u64,
    late_records: u64,
    windows_fired: u64,
}

impl<K: Copy + Eq + Hash, T, A: Aggregate<T>> WindowOperator<K, T, A> {
    pub fn new(window: Tumbling, aggregate: A) -> Self {
        WindowOperator {
            window,
            aggregate,
            open: Vec::new(),
            spare: Vec::new(),
            watermark: 0,
            late_records: 0,
            windows_fired: 0,
        }
    }

    /// Records dropped because their window had fired.
    pub fn late_records(&self) -> u64 {
        self.late_records
    }

    /// (Shard-local) windows fired so far.
    pub fn windows_fired(&self) -> u64 {
        self.windows_fired
    }

    /// Folds one record into its window; returns false if it was late (and dropped).
    #[inline]
    pub fn add(&mut self, key: K, timestamp: u64, record: &T) -> bool {
        let start = self.window.start_of(timestamp);
        if self.window.end_of(start) <= self.watermark {
            self.late_records += 1;
            return false;
        }
        let index = match self.open.iter().rposition(|(open, _)| *open <= start) {
            Some(index) if self.open[index].0 == start => index,
            found => self.open_window(found.map_or(0, |index| index + 1), start),
        };
        let aggregate = &self.aggregate;
        let accumulator = self.open[index].1.entry(key).or_insert_with(|| aggregate.create());
        aggregate.add(accumulator, record);
        true
    }

    fn open_window(&mut self, index: usize, start: u64) -> usize {
        let map = self.spare.pop().unwrap_or_default();
        self.open.insert(index, (start, map));
        index
    }

    /// Raises the watermark and fires, in start order, every window that ends at or below
    /// it, passing each key's result to `emit`.
    pub fn advance(&mut self, watermark: u64, mut emit: impl FnMut(WindowResult<K, A::Output>)) {
        assert!(watermark >= self.watermark, "watermark went back");
        self.watermark = watermark;
        let fired =
            self.open.iter().take_while(|(start, _)| self.window.end_of(*start) <= watermark);
        let fired = fired.count();
        for (start, mut map) in self.open.drain(..fired) {
            let window_end = self.window.end_of(start);
            for (key, accumulator) in map.drain() {
                let value = self.aggregate.result(&accumulator);
                emit(WindowResult { key, window_start: start, window_end, value });
            }
            self.windows_fired += 1;
            self.spare.push(map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::aggregate::Count;

    #[test]
    fn windows_fire_once_when_the_watermark_passes_their_end_and_late_records_are_counted() {
        let mut operator = WindowOperator::new(Tumbling::of(10), Count);
        for (key, timestamp) in [(1u32, 3u64), (1, 12), (2, 9), (1, 0), (1, 25)] {
            assert!(operator.add(key, timestamp, &()));
        }
        let mut out = Vec::new();
        operator.advance(9, |result| out.push(result));
        assert!(out.is_empty());
        operator.advance(10, |result| out.push(result));
        out.sort_by_key(|result| result.key);
        let expected = |key, window_start, value| WindowResult {
            key,
            window_start,
            window_end: window_start + 10,
            value,
        };
        assert_eq!(out, vec![expected(1, 0, 2), expected(2, 0, 1)]);
        assert!(!operator.add(2, 5, &()), "window [0, 10) has fired");
        assert!(operator.add(2, 10, &()));
        out.clear();
        operator.advance(u64::MAX, |result| out.push(result));
        out.sort_by_key(|result| (result.window_start, result.key));
        assert_eq!(out, vec![expected(1, 10, 1), expected(2, 10, 1), expected(1, 20, 1)]);
        assert_eq!((operator.late_records(), operator.windows_fired()), (1, 3));
    }
}
