//! The operator of tumbling and sliding windows: keyed, incremental, pane-based.
//!
//! A pure state machine (records and watermarks in, outputs through a callback). Records
//! are folded into *panes* of `gcd(size, slide)` ms: one state per (key, pane) in one hash
//! map per open pane. A tumbling window is one pane; a sliding window of `size / pane`
//! panes merges them (through a reused scratch map) when it fires. So a record costs one
//! hash-map update whatever the number of windows it belongs to, and the cost of sliding
//! moves to the firing, once per key and window.
//!
//! Bounded out-of-orderness keeps only a few panes open (`(bound + size) / pane + 2`), so
//! finding a record's pane is a short scan from the newest, and the maps of purged panes
//! are cleared and kept for reuse: once every key has been seen, the operator allocates
//! nothing per record or window.
//!
//! Firing and lateness follow the contract in [`window`](super::window): window
//! `[s, s + size)` fires once, when the watermark reaches `s + size`; its panes stay until
//! the watermark reaches the end of the last window holding them plus the allowed
//! lateness, and a record folded into a fired window re-fires that key's window.

use super::key_group::KeyHashBuilder;
use super::operator::{KeyedOperator, OperatorCounters};
use super::snapshot::{KeyGroupWriter, SnapshotState};
use super::state_codec::{StateCodec, StateDecodeError};
use super::window::{TimeDomain, Window};
use super::window_function::WindowFunction;
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

type StateMap<K, S> = HashMap<K, S, KeyHashBuilder>;

/// Open panes of one shard's tumbling or sliding windows, and the function they fold.
pub struct AlignedWindows<K, T, F: WindowFunction<K, T>> {
    size: u64,
    slide: u64,
    /// `gcd(size, slide)`: every pane lies in exactly the same windows.
    pane: u64,
    lateness: u64,
    domain: TimeDomain,
    function: F,
    /// Open panes, ascending by start.
    panes: Vec<(u64, StateMap<K, F::State>)>,
    /// Cleared maps of purged panes, kept for reuse.
    spare: Vec<StateMap<K, F::State>>,
    /// Where a sliding window merges its panes.
    scratch: StateMap<K, F::State>,
    /// Starts of the windows one watermark fires (reused).
    due: Vec<u64>,
    /// The pane the last record went to, so that the next record of the same pane (most
    /// are) skips the division and the scan that find a pane.
    hot: HotPane,
    /// Starts of the panes a record went into since the last snapshot (a pane not listed is
    /// unchanged: the next snapshot may leave it to the previous one's state file). Filled
    /// where a record misses the hot pane, so the snapshot resets `hot`.
    changed: Vec<u64>,
    watermark: u64,
    counters: OperatorCounters,
    record: PhantomData<fn(&T)>,
}

/// An open pane's position and its first window's end; `end == 0` (no timestamp lies
/// below it) when unset. Reset whenever `panes` changes shape.
#[derive(Debug, Clone, Copy, Default)]
struct HotPane {
    start: u64,
    end: u64,
    index: usize,
    earliest_end: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl<K, T, F> AlignedWindows<K, T, F>
where
    K: Copy + Eq + Hash,
    F: WindowFunction<K, T>,
{
    /// # Panics
    /// If `size` or `slide` is zero.
    pub fn new(size: u64, slide: u64, lateness: u64, domain: TimeDomain, function: F) -> Self {
        assert!(size > 0 && slide > 0, "size {size}, slide {slide}");
        AlignedWindows {
            size,
            slide,
            pane: gcd(size, slide),
            lateness,
            domain,
            function,
            panes: Vec::new(),
            spare: Vec::new(),
            scratch: StateMap::default(),
            due: Vec::new(),
            hot: HotPane::default(),
            changed: Vec::new(),
            watermark: 0,
            counters: OperatorCounters::default(),
            record: PhantomData,
        }
    }

    /// Tumbling windows without lateness: a window is one pane, fired and purged at once.
    #[inline]
    fn is_plain_tumbling(&self) -> bool {
        self.slide == self.size && self.lateness == 0
    }

    /// Starts of the first and last window holding the pane (or timestamp) `time`, or `None`
    /// when it falls between windows (a slide longer than the size leaves gaps).
    #[inline]
    fn windows_of(&self, time: u64) -> Option<(u64, u64)> {
        let last = time - time % self.slide;
        let first =
            if time < self.size { 0 } else { ((time - self.size) / self.slide + 1) * self.slide };
        (first <= last).then_some((first, last))
    }

    fn window(&self, start: u64) -> Window {
        Window { start, end: start.saturating_add(self.size) }
    }

    /// Index of the open pane starting at `start`, opening it if needed.
    #[inline]
    fn pane_index(&mut self, start: u64) -> usize {
        match self.panes.iter().rposition(|(open, _)| *open <= start) {
            Some(index) if self.panes[index].0 == start => index,
            found => {
                let index = found.map_or(0, |index| index + 1);
                let map = self.spare.pop().unwrap_or_default();
                self.panes.insert(index, (start, map));
                self.hot = HotPane::default();
                index
            }
        }
    }

    /// Range of open panes inside the window starting at `start`.
    fn panes_of_window(&self, start: u64) -> std::ops::Range<usize> {
        let end = start.saturating_add(self.size);
        let low = self.panes.partition_point(|(pane, _)| *pane < start);
        let high = self.panes.partition_point(|(pane, _)| *pane < end);
        low..high
    }

    /// Fires the window starting at `start` for every key with a record in it.
    fn fire_window<E: FnMut(F::Output)>(&mut self, start: u64, emit: &mut E) {
        let window = self.window(start);
        let range = self.panes_of_window(start);
        let single_pane = self.pane == self.size;
        let Self { panes, scratch, function, .. } = self;
        if single_pane {
            // A tumbling window: its one pane is its state.
            for (key, state) in panes[range].iter().flat_map(|(_, map)| map.iter()) {
                function.fire(key, window, state, emit);
            }
        } else {
            for (key, state) in panes[range].iter().flat_map(|(_, map)| map.iter()) {
                let merged = scratch.entry(*key).or_insert_with(|| function.create());
                function.merge(merged, state);
            }
            for (key, state) in scratch.iter() {
                function.fire(key, window, state, emit);
            }
            scratch.clear();
        }
        self.counters.windows_fired += 1;
    }

    /// Re-fires, for `key` only, every fired window holding the pane `pane_start` (a record
    /// within the allowed lateness was just folded into it).
    fn refire_key<E: FnMut(F::Output)>(&mut self, key: K, pane_start: u64, emit: &mut E) {
        let Some((first, last)) = self.windows_of(pane_start) else { return };
        let mut start = first;
        while start <= last && start.saturating_add(self.size) <= self.watermark {
            let window = self.window(start);
            let range = self.panes_of_window(start);
            let mut state = self.function.create();
            for (_, map) in &self.panes[range] {
                if let Some(pane_state) = map.get(&key) {
                    self.function.merge(&mut state, pane_state);
                }
            }
            self.function.fire(&key, window, &state, emit);
            self.counters.late_firings += 1;
            start += self.slide;
        }
    }

    /// Fires every window whose end lies in `(previous, watermark]` and holds an open pane,
    /// in start order.
    fn fire_due<E: FnMut(F::Output)>(&mut self, previous: u64, watermark: u64, emit: &mut E) {
        self.due.clear();
        for (pane_start, _) in &self.panes {
            let Some((first, last)) = self.windows_of(*pane_start) else { continue };
            if first.saturating_add(self.size) > watermark {
                break; // later panes' windows end later still
            }
            let mut start = first;
            while start <= last {
                let end = start.saturating_add(self.size);
                if end > watermark {
                    break;
                }
                if end > previous && self.due.last().is_none_or(|&fired| fired < start) {
                    self.due.push(start);
                }
                start += self.slide;
            }
        }
        for index in 0..self.due.len() {
            self.fire_window(self.due[index], emit);
        }
    }

    /// Drops the panes every window of which is past its allowed lateness.
    fn purge(&mut self, watermark: u64) {
        let expired = self.panes.iter().take_while(|(start, _)| {
            let last_window = start - start % self.slide;
            last_window.saturating_add(self.size).saturating_add(self.lateness) <= watermark
        });
        let expired = expired.count();
        if expired > 0 {
            self.hot = HotPane::default();
        }
        for (_, mut map) in self.panes.drain(..expired) {
            map.clear();
            self.spare.push(map);
        }
    }

    /// The fast path of plain tumbling windows: fire and purge each due pane in one pass,
    /// draining its map.
    fn fire_tumbling<E: FnMut(F::Output)>(&mut self, watermark: u64, emit: &mut E) {
        let size = self.size;
        let fired =
            self.panes.iter().take_while(|(start, _)| start.saturating_add(size) <= watermark);
        let fired = fired.count();
        if fired > 0 {
            self.hot = HotPane::default();
        }
        let Self { panes, spare, function, counters, .. } = self;
        for (start, mut map) in panes.drain(..fired) {
            let window = Window { start, end: start.saturating_add(size) };
            for (key, state) in map.drain() {
                function.fire(&key, window, &state, emit);
            }
            counters.windows_fired += 1;
            spare.push(map);
        }
    }
}

impl<K, T, F> KeyedOperator<K, T> for AlignedWindows<K, T, F>
where
    K: Copy + Eq + Hash + Send + 'static,
    T: Send + 'static,
    F: WindowFunction<K, T>,
{
    type Output = F::Output;

    #[inline]
    fn on_record<E: FnMut(F::Output)>(
        &mut self,
        key: K,
        timestamp: u64,
        record: &T,
        emit: &mut E,
    ) -> bool {
        let hot = self.hot;
        let (pane_start, earliest_end) = if hot.start <= timestamp && timestamp < hot.end {
            (hot.start, hot.earliest_end)
        } else {
            let pane_start = timestamp - timestamp % self.pane;
            let earliest_end = if self.slide == self.size {
                pane_start.saturating_add(self.size)
            } else {
                match self.windows_of(timestamp) {
                    Some((first, _)) => first.saturating_add(self.size),
                    None => return true, // in no window: nothing to fold, nothing late
                }
            };
            (pane_start, earliest_end)
        };
        if earliest_end.saturating_add(self.lateness) <= self.watermark {
            self.counters.late_records += 1;
            return false;
        }
        let index = if hot.start <= timestamp && timestamp < hot.end {
            hot.index
        } else {
            let index = self.pane_index(pane_start);
            let end = pane_start.saturating_add(self.pane);
            self.hot = HotPane { start: pane_start, end, index, earliest_end };
            if !self.changed.contains(&pane_start) {
                self.changed.push(pane_start);
            }
            index
        };
        let function = &self.function;
        let state = self.panes[index].1.entry(key).or_insert_with(|| function.create());
        function.add(state, record);
        if earliest_end <= self.watermark {
            self.refire_key(key, pane_start, emit);
        }
        true
    }

    fn on_watermark<E: FnMut(F::Output)>(&mut self, watermark: u64, emit: &mut E) {
        assert!(watermark >= self.watermark, "watermark went back");
        let previous = self.watermark;
        self.watermark = watermark;
        if self.is_plain_tumbling() {
            self.fire_tumbling(watermark, emit);
        } else {
            self.fire_due(previous, watermark, emit);
            self.purge(watermark);
        }
    }

    fn time_domain(&self) -> TimeDomain {
        self.domain
    }

    fn counters(&self) -> OperatorCounters {
        self.counters
    }
}

impl<K, T, F> SnapshotState<K, T> for AlignedWindows<K, T, F>
where
    K: Copy + Eq + Hash + StateCodec,
    F: WindowFunction<K, T>,
    F::State: StateCodec,
{
    /// One chunk per open pane (fired panes kept for the allowed lateness included), id
    /// its start, entries `key | state`; a pane no record went into since the previous
    /// snapshot is left to that snapshot's file when it may.
    fn snapshot(&mut self, out: &mut KeyGroupWriter) {
        for (start, map) in &self.panes {
            if !out.begin_chunk(*start, !self.changed.contains(start)) {
                continue;
            }
            for (key, state) in map {
                let buffer = out.buffer_for_key(key);
                key.encode_state(buffer);
                state.encode_state(buffer);
            }
        }
        self.changed.clear();
        // The next record of the hot pane must mark it changed again.
        self.hot = HotPane::default();
    }

    fn restore(
        &mut self,
        _key_group: usize,
        start: u64,
        mut bytes: &[u8],
    ) -> Result<(), StateDecodeError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if start % self.pane != 0 {
            return Err(StateDecodeError(format!("pane start {start} of panes of {}", self.pane)));
        }
        let index = self.pane_index(start);
        if !self.changed.contains(&start) {
            self.changed.push(start);
        }
        while !bytes.is_empty() {
            let key = K::decode_state(&mut bytes)?;
            let state = F::State::decode_state(&mut bytes)?;
            self.panes[index].1.insert(key, state);
        }
        Ok(())
    }

    fn restore_time(&mut self, watermark: u64) {
        assert!(self.watermark == 0, "restore_time on a running operator");
        self.watermark = watermark;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::aggregate::Count;
    use crate::engine::window::WindowResult;
    use crate::engine::window_function::Aggregated;

    type Counts = AlignedWindows<u32, (), Aggregated<Count>>;

    fn results(operator: &mut Counts, watermark: u64) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        operator.on_watermark(watermark, &mut |r: WindowResult<u32, u64>| {
            out.push((r.key, r.window_start, r.value))
        });
        out.sort();
        out
    }

    fn add(operator: &mut Counts, key: u32, timestamp: u64) -> (bool, Vec<(u32, u64, u64)>) {
        let mut out = Vec::new();
        let taken = operator.on_record(key, timestamp, &(), &mut |r: WindowResult<u32, u64>| {
            out.push((r.key, r.window_start, r.value))
        });
        (taken, out)
    }

    #[test]
    fn tumbling_windows_fire_once_and_late_records_are_refused() {
        let mut operator = Counts::new(10, 10, 0, TimeDomain::EventTime, Aggregated(Count));
        for (key, timestamp) in [(1, 3), (1, 12), (2, 9), (1, 0), (1, 25)] {
            assert!(add(&mut operator, key, timestamp).0);
        }
        assert!(results(&mut operator, 9).is_empty());
        assert_eq!(results(&mut operator, 10), vec![(1, 0, 2), (2, 0, 1)]);
        assert!(!add(&mut operator, 2, 5).0, "window [0, 10) has fired");
        assert!(add(&mut operator, 2, 10).0);
        let rest = results(&mut operator, u64::MAX);
        assert_eq!(rest, vec![(1, 10, 1), (1, 20, 1), (2, 10, 1)]);
        assert_eq!(operator.counters().late_records, 1);
        assert_eq!(operator.counters().windows_fired, 3);
    }

    #[test]
    fn sliding_windows_merge_panes_and_start_at_zero() {
        // size 10, slide 4: panes of 2; windows [0,10), [4,14), [8,18), ...
        let mut operator = Counts::new(10, 4, 0, TimeDomain::EventTime, Aggregated(Count));
        for timestamp in [1, 5, 9, 13] {
            assert!(add(&mut operator, 7, timestamp).0);
        }
        assert_eq!(results(&mut operator, 10), vec![(7, 0, 3)]);
        assert_eq!(results(&mut operator, 14), vec![(7, 4, 3)]);
        assert_eq!(results(&mut operator, u64::MAX), vec![(7, 8, 2), (7, 12, 1)]);
        // Timestamp 3 lies only in [0, 10), long purged: late.
        assert!(!add(&mut operator, 7, 3).0);
    }

    #[test]
    fn allowed_lateness_refires_a_window_then_purges_it() {
        let mut operator = Counts::new(10, 10, 5, TimeDomain::EventTime, Aggregated(Count));
        assert!(add(&mut operator, 1, 2).0);
        assert_eq!(results(&mut operator, 12), vec![(1, 0, 1)]);
        assert_eq!(add(&mut operator, 1, 4), (true, vec![(1, 0, 2)]), "a late firing");
        assert!(results(&mut operator, 15).is_empty());
        assert!(!add(&mut operator, 1, 6).0, "past the lateness");
        assert_eq!(operator.counters().late_firings, 1);
    }

    #[test]
    fn snapshots_leave_unchanged_panes_to_the_previous_one_and_restore_by_pane() {
        use crate::engine::key_group::KeyGroups;
        use crate::engine::keyed_state::KeyScope;
        use crate::engine::snapshot::ShardSnapshot;
        let scope = KeyScope::new(KeyGroups::new(8, 1), 0);
        let snapshot = |operator: &mut Counts, incremental: bool| {
            let mut writer = KeyGroupWriter::new(&scope);
            writer.set_incremental(incremental);
            operator.snapshot(&mut writer);
            writer.finish()
        };
        let written = |snapshot: &ShardSnapshot| -> Vec<(u64, bool)> {
            snapshot.chunks.iter().map(|c| (c.id, c.sections.is_some())).collect()
        };
        // Size 10, slide 2: panes of 2.
        let mut operator = Counts::new(10, 2, 0, TimeDomain::EventTime, Aggregated(Count));
        for (key, timestamp) in [(1, 1), (2, 3), (1, 5), (3, 5)] {
            assert!(add(&mut operator, key, timestamp).0);
        }
        let first = snapshot(&mut operator, true);
        assert_eq!(written(&first), vec![(0, true), (2, true), (4, true)]);
        assert!(add(&mut operator, 1, 5).0, "into the hot pane, after the snapshot");
        assert!(add(&mut operator, 4, 7).0);
        let second = snapshot(&mut operator, true);
        assert_eq!(written(&second), vec![(0, false), (2, false), (4, true), (6, true)]);
        let full = snapshot(&mut operator, false);
        assert!(full.chunks.iter().all(|chunk| chunk.sections.is_some()), "not incremental");
        // The panes of the second snapshot: 0 and 2 from the first, 4 and 6 from it.
        let mut restored = Counts::new(10, 2, 0, TimeDomain::EventTime, Aggregated(Count));
        for (source, chunk) in [(&first, 0), (&first, 1), (&second, 2), (&second, 3)] {
            let chunk = &source.chunks[chunk];
            let sections = chunk.sections.as_ref().unwrap();
            for (local, &(start, length)) in sections.iter().enumerate() {
                let bytes = &source.buffers[local][start..start + length];
                restored.restore(local, chunk.id, bytes).unwrap();
            }
        }
        assert_eq!(results(&mut restored, u64::MAX), results(&mut operator, u64::MAX));
        assert!(restored.restore(0, 3, &[0; 16]).is_err(), "3 starts no pane");
    }
}
