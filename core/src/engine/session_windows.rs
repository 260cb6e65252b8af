//! The operator of session windows: per key, windows that grow and merge.
//!
//! A record at `t` opens the window `[t, t + gap)`; windows of one key that overlap merge
//! into one (their states merged by the window function), so a session is
//! `[first record, last record + gap)`. Records exactly `gap` apart do not overlap and stay
//! in separate sessions (Flink merges windows that merely touch; here a silence of `gap`
//! closes a session, which keeps the lateness contract of [`window`](super::window) exact).
//!
//! State lives in a slab of session nodes, each key's sessions a doubly linked list from a
//! hash map of heads, **newest first** (by start; sessions of a key never overlap, so by end
//! too). A record almost always lands in its key's newest session, and the order lets the
//! search stop there: once a session that starts at or before the record has been seen, no
//! older one can overlap it. So a record costs one hash lookup and one node, and freeing a
//! node is O(1) (no walk to find its predecessor).
//!
//! Firing is driven by timers `(time, node)` in a [`TimerWheel`], lazily maintained: a node
//! has at most one *valid* timer (the one whose time equals its `timer` field) and it is
//! never later than the node's next due time (its end, or its end plus the allowed lateness
//! once fired). Growing a session never sets a timer; the old one fires early, finds the
//! session extended and re-arms itself. A merge leaves the absorbed node's timer stale,
//! which an expiry recognises and skips. So the wheel holds about one timer per open
//! session, not one per record, and each costs O(1) to set and to expire.

use super::key_group::KeyHashBuilder;
use super::operator::{KeyedOperator, OperatorCounters};
use super::snapshot::{KeyGroupWriter, SnapshotState};
use super::state_codec::{StateCodec, StateDecodeError};
use super::timer_wheel::TimerWheel;
use super::window::{TimeDomain, Window};
use super::window_function::WindowFunction;
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

/// End of a key's list of sessions.
const NIL: u32 = u32::MAX;

struct SessionNode<K, S> {
    key: K,
    start: u64,
    end: u64,
    /// Time of this node's valid timer.
    timer: u64,
    /// Older session of the same key, or `NIL`.
    next: u32,
    /// Newer session of the same key, or `NIL` (the node is the head).
    prev: u32,
    /// Fired and waiting out the allowed lateness.
    fired: bool,
    state: S,
}

/// Open sessions of one shard, and the function they fold.
pub struct SessionWindows<K, T, F: WindowFunction<K, T>> {
    gap: u64,
    lateness: u64,
    domain: TimeDomain,
    function: F,
    heads: HashMap<K, u32, KeyHashBuilder>,
    nodes: Vec<Option<SessionNode<K, F::State>>>,
    free: Vec<u32>,
    timers: TimerWheel,
    watermark: u64,
    counters: OperatorCounters,
    record: PhantomData<fn(&T)>,
}

impl<K, T, F> SessionWindows<K, T, F>
where
    K: Copy + Eq + Hash,
    F: WindowFunction<K, T>,
{
    /// # Panics
    /// If `gap` is zero.
    pub fn new(gap: u64, lateness: u64, domain: TimeDomain, function: F) -> Self {
        assert!(gap > 0, "a session window needs a positive gap");
        SessionWindows {
            gap,
            lateness,
            domain,
            function,
            heads: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            timers: TimerWheel::new(),
            watermark: 0,
            counters: OperatorCounters::default(),
            record: PhantomData,
        }
    }

    #[inline]
    fn node(&self, index: u32) -> &SessionNode<K, F::State> {
        self.nodes[index as usize].as_ref().expect("a linked node is live")
    }

    #[inline]
    fn node_mut(&mut self, index: u32) -> &mut SessionNode<K, F::State> {
        self.nodes[index as usize].as_mut().expect("a linked node is live")
    }

    /// Creates the session `[start, end)` of `key` between the nodes `prev` (newer, or
    /// `NIL`: it becomes the head) and `next` (older, or `NIL`), with a timer at its end.
    fn allocate(&mut self, key: K, start: u64, end: u64, prev: u32, next: u32) -> u32 {
        let state = self.function.create();
        let node = SessionNode { key, start, end, timer: end, next, prev, fired: false, state };
        let index = match self.free.pop() {
            Some(index) => {
                self.nodes[index as usize] = Some(node);
                index
            }
            None => {
                assert!(self.nodes.len() < NIL as usize, "too many open sessions");
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as u32
            }
        };
        if prev == NIL {
            self.heads.insert(key, index);
        } else {
            self.node_mut(prev).next = index;
        }
        if next != NIL {
            self.node_mut(next).prev = index;
        }
        self.timers.push(end, index);
        index
    }

    /// Unlinks a node from its key's list and frees its slot, returning it.
    fn release(&mut self, index: u32) -> SessionNode<K, F::State> {
        let node = self.nodes[index as usize].take().expect("released once");
        if node.prev == NIL {
            if node.next == NIL {
                self.heads.remove(&node.key);
            } else {
                self.heads.insert(node.key, node.next);
            }
        } else {
            self.node_mut(node.prev).next = node.next;
        }
        if node.next != NIL {
            self.node_mut(node.next).prev = node.prev;
        }
        self.free.push(index);
        node
    }

    /// Arms a timer for `index` at `time` unless its valid timer is already as early (a
    /// timer that comes early re-arms itself).
    #[inline]
    fn schedule(&mut self, index: u32, time: u64) {
        let node = self.node_mut(index);
        if time < node.timer {
            node.timer = time;
            self.timers.push(time, index);
        }
    }

    /// Where `[.., end)` belongs in `key`'s list: `(newer, cursor)`, the last session
    /// starting at or after `end` (or `NIL`) and the one after it, the newest that may
    /// overlap (or `NIL`).
    #[inline]
    fn locate(&self, key: K, end: u64) -> (u32, u32) {
        let (mut newer, mut cursor) = (NIL, self.heads.get(&key).copied().unwrap_or(NIL));
        while cursor != NIL && self.node(cursor).start >= end {
            newer = cursor;
            cursor = self.node(cursor).next;
        }
        (newer, cursor)
    }

    /// The session of `key` holding `[start, end)`: the newest session overlapping it,
    /// grown to cover it and every other overlapping session merged in, or a new one.
    #[inline]
    fn merge_into_session(&mut self, key: K, start: u64, end: u64) -> u32 {
        let (newer, cursor) = self.locate(key, end);
        if cursor == NIL || self.node(cursor).end <= start {
            return self.allocate(key, start, end, newer, cursor);
        }
        let target = cursor;
        // Older sessions overlap only if the target starts after the record does.
        let mut older = self.node(target).next;
        while self.node(target).start > start && older != NIL && self.node(older).end > start {
            let next = self.node(older).next;
            let absorbed = self.release(older);
            let Self { nodes, function, .. } = self;
            let node = nodes[target as usize].as_mut().expect("the target is live");
            function.merge(&mut node.state, &absorbed.state);
            node.start = node.start.min(absorbed.start);
            node.fired &= absorbed.fired;
            older = next;
        }
        let node = self.node_mut(target);
        node.start = node.start.min(start);
        node.end = node.end.max(end);
        target
    }

    fn fire_node<E: FnMut(F::Output)>(&mut self, index: u32, emit: &mut E) {
        let Self { nodes, function, .. } = self;
        let node = nodes[index as usize].as_ref().expect("a fired node is live");
        let window = Window { start: node.start, end: node.end };
        function.fire(&node.key, window, &node.state, emit);
    }

    /// A timer of `index` at `time` is due: fire, purge or re-arm the node.
    fn on_timer<E: FnMut(F::Output)>(&mut self, index: u32, time: u64, emit: &mut E) {
        let valid = self.nodes[index as usize].as_ref().is_some_and(|node| node.timer == time);
        if !valid {
            return; // stale: the node was merged away or re-armed since
        }
        let watermark = self.watermark;
        let (end, fired) = (self.node(index).end, self.node(index).fired);
        if !fired && end <= watermark {
            self.fire_node(index, emit);
            self.counters.windows_fired += 1;
            self.node_mut(index).fired = true;
        }
        let node = self.node(index);
        let due = if node.fired { node.end.saturating_add(self.lateness) } else { node.end };
        if node.fired && due <= watermark {
            self.release(index);
        } else {
            self.node_mut(index).timer = due;
            self.timers.push(due, index);
        }
    }
}

impl<K, T, F> KeyedOperator<K, T> for SessionWindows<K, T, F>
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
        if timestamp.saturating_add(self.lateness) < self.watermark {
            self.counters.late_records += 1;
            return false;
        }
        let index = self.merge_into_session(key, timestamp, timestamp.saturating_add(self.gap));
        let Self { nodes, function, .. } = self;
        let node = nodes[index as usize].as_mut().expect("the session is live");
        function.add(&mut node.state, record);
        if node.end > self.watermark {
            // Open (again): it fires at its end.
            node.fired = false;
            let end = node.end;
            self.schedule(index, end);
        } else {
            // Within the allowed lateness, behind the watermark: fire now, purge later.
            node.fired = true;
            self.fire_node(index, emit);
            self.counters.late_firings += 1;
            let due = self.node(index).end.saturating_add(self.lateness);
            self.schedule(index, due);
        }
        true
    }

    fn on_watermark<E: FnMut(F::Output)>(&mut self, watermark: u64, emit: &mut E) {
        assert!(watermark >= self.watermark, "watermark went back");
        self.watermark = watermark;
        while let Some((time, index)) = self.timers.pop_due(watermark) {
            self.on_timer(index, time, emit);
        }
    }

    fn time_domain(&self) -> TimeDomain {
        self.domain
    }

    fn counters(&self) -> OperatorCounters {
        self.counters
    }
}

impl<K, T, F> SnapshotState<K, T> for SessionWindows<K, T, F>
where
    K: Copy + Eq + Hash + StateCodec,
    F: WindowFunction<K, T>,
    F::State: StateCodec,
{
    /// Entries `key | start | end | fired | state`, one per live session.
    fn snapshot(&mut self, out: &mut KeyGroupWriter) {
        for node in self.nodes.iter().flatten() {
            let buffer = out.buffer_for_key(&node.key);
            node.key.encode_state(buffer);
            node.start.encode_state(buffer);
            node.end.encode_state(buffer);
            node.fired.encode_state(buffer);
            node.state.encode_state(buffer);
        }
    }

    fn restore(
        &mut self,
        _key_group: usize,
        _chunk: u64,
        mut bytes: &[u8],
    ) -> Result<(), StateDecodeError> {
        while !bytes.is_empty() {
            let key = K::decode_state(&mut bytes)?;
            let (start, end) = (u64::decode_state(&mut bytes)?, u64::decode_state(&mut bytes)?);
            let fired = bool::decode_state(&mut bytes)?;
            let state = F::State::decode_state(&mut bytes)?;
            if start >= end {
                return Err(StateDecodeError(format!("session [{start}, {end})")));
            }
            let (newer, cursor) = self.locate(key, end);
            if cursor != NIL && self.node(cursor).end > start {
                return Err(StateDecodeError(format!("session [{start}, {end}) overlaps another")));
            }
            let index = self.allocate(key, start, end, newer, cursor);
            let lateness = self.lateness;
            let node = self.node_mut(index);
            node.state = state;
            node.fired = fired;
            if fired {
                // Its valid timer is the end of its allowed lateness, not its end.
                let due = end.saturating_add(lateness);
                node.timer = due;
                self.timers.push(due, index);
            }
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

    type Sessions = SessionWindows<u32, (), Aggregated<Count>>;

    fn fire(operator: &mut Sessions, watermark: u64) -> Vec<(u32, u64, u64, u64)> {
        let mut out = Vec::new();
        operator.on_watermark(watermark, &mut |r: WindowResult<u32, u64>| {
            out.push((r.key, r.window_start, r.window_end, r.value))
        });
        out.sort();
        out
    }

    fn add(operator: &mut Sessions, key: u32, timestamp: u64) -> bool {
        operator.on_record(key, timestamp, &(), &mut |_| panic!("no late firing expected"))
    }

    #[test]
    fn sessions_grow_merge_and_fire_once_at_their_end() {
        let mut operator = Sessions::new(10, 0, TimeDomain::EventTime, Aggregated(Count));
        for (key, timestamp) in [(1, 0), (1, 5), (2, 3), (1, 30), (1, 14), (1, 22)] {
            assert!(add(&mut operator, key, timestamp));
        }
        // Key 1: 0, 5, 14, 22, 30 chain into one session [0, 40) (each < 10 apart);
        // 22 arrived after 30 and bridged the two sessions it overlapped.
        assert_eq!(fire(&mut operator, 13), vec![(2, 3, 13, 1)]);
        assert!(add(&mut operator, 2, 13), "exactly `gap` after: a new session");
        assert_eq!(fire(&mut operator, 39), vec![(2, 13, 23, 1)]);
        assert_eq!(fire(&mut operator, 40), vec![(1, 0, 40, 5)]);
        assert!(!add(&mut operator, 1, 39), "behind the watermark");
        assert!(add(&mut operator, 1, 45));
        assert_eq!(fire(&mut operator, u64::MAX), vec![(1, 45, 55, 1)]);
        assert_eq!(operator.counters().windows_fired, 4);
        assert!(operator.heads.is_empty() && operator.free.len() == operator.nodes.len());
    }
}
