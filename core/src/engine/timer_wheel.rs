//! A timer wheel for event-time timers: a ring of one-millisecond buckets, with a min-heap
//! behind it for timers too far ahead.
//!
//! Window timers cluster just ahead of the watermark (a session's end is at most the
//! out-of-orderness bound plus the gap past the newest record), and the watermark only moves
//! forward, so a ring of [`TIMER_WHEEL_SLOTS`] buckets indexed by `time % slots` holds
//! nearly all of them: setting a timer is a push onto a bucket and expiring one a pop, both
//! O(1) and on a few cache lines, where a binary heap of a million timers pays a cache miss
//! per level of every pop. A timer further than the ring's span goes to the `overflow` heap
//! and moves into the ring once the ring's front comes within reach (processing-time timers,
//! in milliseconds since the Unix epoch, start there: the ring starts at 0).
//!
//! Buckets keep their capacity, so once the ring has seen its working set it allocates
//! nothing. Timers of the same millisecond come out in no particular order (last set, first
//! out); callers that need an order between them must impose it.

use crate::constants::TIMER_WHEEL_SLOTS;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const _: () = assert!(TIMER_WHEEL_SLOTS.is_power_of_two());
const SLOT_MASK: u64 = TIMER_WHEEL_SLOTS as u64 - 1;

/// Timers `(time, id)`, expired in time order up to a watermark.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    /// `buckets[t % slots]` holds the timers of time `t`, for `t` in `front..front + slots`
    /// (a timer set before `front` waits in the bucket of `front`, with its own time).
    buckets: Vec<Vec<(u64, u32)>>,
    /// Timers in the buckets.
    in_buckets: usize,
    /// Timers at or past `front + slots`.
    overflow: BinaryHeap<Reverse<(u64, u32)>>,
    /// The earliest time a bucket may still hold timers of.
    front: u64,
}

impl TimerWheel {
    pub(crate) fn new() -> TimerWheel {
        TimerWheel {
            buckets: (0..TIMER_WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            in_buckets: 0,
            overflow: BinaryHeap::new(),
            front: 0,
        }
    }

    /// Timers set and not yet expired.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.in_buckets + self.overflow.len()
    }

    /// Sets a timer for `id` at `time` (one already due comes out of the next
    /// [`TimerWheel::pop_due`]).
    #[inline]
    pub(crate) fn push(&mut self, time: u64, id: u32) {
        let at = time.max(self.front);
        if at - self.front < TIMER_WHEEL_SLOTS as u64 {
            self.buckets[(at & SLOT_MASK) as usize].push((time, id));
            self.in_buckets += 1;
        } else {
            self.overflow.push(Reverse((time, id)));
        }
    }

    /// The next timer at or before `watermark`, if any; timers come out in order of their
    /// millisecond.
    #[inline]
    pub(crate) fn pop_due(&mut self, watermark: u64) -> Option<(u64, u32)> {
        loop {
            if let Some(timer) = self.buckets[(self.front & SLOT_MASK) as usize].pop() {
                self.in_buckets -= 1;
                return Some(timer);
            }
            if self.front >= watermark {
                return None;
            }
            self.advance_front(watermark);
        }
    }

    /// Moves the front one millisecond on (or, with the ring empty, straight to the next
    /// overflow timer or the watermark) and pulls the overflow timers now within reach.
    fn advance_front(&mut self, watermark: u64) {
        if self.in_buckets > 0 {
            self.front += 1;
        } else {
            let next_overflow = self.overflow.peek().map_or(u64::MAX, |Reverse((time, _))| *time);
            self.front = next_overflow.min(watermark).max(self.front + 1);
        }
        while let Some(&Reverse((time, id))) = self.overflow.peek() {
            if time.max(self.front) - self.front >= TIMER_WHEEL_SLOTS as u64 {
                break;
            }
            self.overflow.pop();
            self.push(time, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(wheel: &mut TimerWheel, watermark: u64) -> Vec<(u64, u32)> {
        std::iter::from_fn(|| wheel.pop_due(watermark)).collect()
    }

    #[test]
    fn timers_come_out_by_millisecond_up_to_the_watermark_near_or_far() {
        let mut wheel = TimerWheel::new();
        let far = 10 * TIMER_WHEEL_SLOTS as u64;
        for (time, id) in [(5, 1), (3, 2), (far, 3), (5, 4), (far + 1, 5), (u64::MAX, 6)] {
            wheel.push(time, id);
        }
        assert_eq!(drain(&mut wheel, 2), vec![]);
        let mut due = drain(&mut wheel, 5);
        due.sort();
        assert_eq!(due, vec![(3, 2), (5, 1), (5, 4)]);
        wheel.push(4, 7); // behind the front: due at once
        assert_eq!(drain(&mut wheel, 5), vec![(4, 7)]);
        assert_eq!(drain(&mut wheel, far - 1), vec![]);
        assert_eq!(drain(&mut wheel, far + 1), vec![(far, 3), (far + 1, 5)]);
        assert_eq!(wheel.len(), 1);
        assert_eq!(drain(&mut wheel, u64::MAX), vec![(u64::MAX, 6)]);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn it_matches_a_sorted_reference_for_random_timers_and_watermarks() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |range: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % range
        };
        let (mut wheel, mut reference) = (TimerWheel::new(), Vec::new());
        let mut watermark = 0;
        for round in 0..2_000u32 {
            for id in 0..next(8) as u32 {
                let time = watermark + 1 + next(3 * TIMER_WHEEL_SLOTS as u64);
                wheel.push(time, round * 8 + id);
                reference.push((time, round * 8 + id));
            }
            watermark += next(64);
            let mut due = drain(&mut wheel, watermark);
            let mut expected: Vec<_> =
                reference.iter().copied().filter(|t| t.0 <= watermark).collect();
            reference.retain(|t| t.0 > watermark);
            assert!(due.windows(2).all(|pair| pair[0].0 <= pair[1].0), "in time order");
            due.sort();
            expected.sort();
            assert_eq!(due, expected, "round {round}, watermark {watermark}");
        }
        assert_eq!(wheel.len(), reference.len());
    }
}
