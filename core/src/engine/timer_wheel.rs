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
//! A bucket is a stack of chunks of [`TIMER_WHEEL_CHUNK_TIMERS`] timers, linked, and every
//! chunk lives in one slab whose freed chunks form a free list (the links and the fill of
//! each bucket's first chunk live apart from the timers, in small arrays that stay cached). A `Vec` per bucket would
//! keep its capacity in each of the slots once the front had lapped them all, so the wheel
//! would allocate (and grow) afresh in every bucket on the front's first lap: allocations,
//! and memory, growing with the event time a job covers. Chunks go back to the free list as
//! their bucket drains and serve whichever bucket fills next, so the slab grows, by
//! doubling, only to the most timers set at once, and once it holds that working set the
//! wheel allocates nothing. Within a chunk timers are contiguous, so expiring a bucket
//! streams through memory with a jump per chunk, not per timer. Timers of the same
//! millisecond come out in no particular order (last set, first out); callers that need an
//! order between them must impose it.

use crate::constants::{TIMER_WHEEL_CHUNK_TIMERS, TIMER_WHEEL_SLOTS};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const _: () = assert!(TIMER_WHEEL_SLOTS.is_power_of_two());
const _: () = assert!(TIMER_WHEEL_CHUNK_TIMERS > 0 && TIMER_WHEEL_CHUNK_TIMERS < u32::MAX as usize);
const SLOT_MASK: u64 = TIMER_WHEEL_SLOTS as u64 - 1;

/// End of a bucket's chunk list, or of the free list.
const NIL: u32 = u32::MAX;

/// Where a bucket's timers are: its first chunk (`NIL` when the bucket is empty) and the
/// timers in that chunk. Only the first chunk may be partly filled; the others are full, and
/// no chunk of a bucket is empty (a chunk leaves its bucket with its last timer). Kept apart
/// from the chunks, so that setting or expiring a timer touches this small array and one
/// line of timers.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    head: u32,
    head_len: u32,
}

const EMPTY_BUCKET: Bucket = Bucket { head: NIL, head_len: 0 };

/// Timers of one bucket, on whole cache lines.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct TimerChunk {
    timers: [(u64, u32); TIMER_WHEEL_CHUNK_TIMERS],
}

/// Timers `(time, id)`, expired in time order up to a watermark.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    /// `buckets[t % slots]` holds the timers of time `t`, for `t` in `front..front + slots`
    /// (a timer set before `front` waits in the bucket of `front`, with its own time).
    buckets: Box<[Bucket]>,
    /// Every bucket's chunks, and the free ones.
    chunks: Vec<TimerChunk>,
    /// `next[c]`: the chunk after chunk `c` in its bucket, or in the free list; `NIL` ends
    /// either.
    next: Vec<u32>,
    /// First free chunk, or `NIL`.
    free: u32,
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
            buckets: vec![EMPTY_BUCKET; TIMER_WHEEL_SLOTS].into_boxed_slice(),
            chunks: Vec::new(),
            next: Vec::new(),
            free: NIL,
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
            let slot = (at & SLOT_MASK) as usize;
            let mut bucket = self.buckets[slot];
            if bucket.head == NIL || bucket.head_len as usize == TIMER_WHEEL_CHUNK_TIMERS {
                bucket = Bucket { head: self.chunk_before(bucket.head), head_len: 0 };
            }
            self.chunks[bucket.head as usize].timers[bucket.head_len as usize] = (time, id);
            bucket.head_len += 1;
            self.buckets[slot] = bucket;
            self.in_buckets += 1;
        } else {
            self.overflow.push(Reverse((time, id)));
        }
    }

    /// An empty chunk linked before `next`, from the free list or, while the slab has not
    /// yet seen the working set, new.
    #[cold]
    fn chunk_before(&mut self, next: u32) -> u32 {
        if self.free == NIL {
            assert!(self.chunks.len() < NIL as usize, "too many timer chunks");
            self.chunks.push(TimerChunk { timers: [(0, 0); TIMER_WHEEL_CHUNK_TIMERS] });
            self.next.push(next);
            (self.chunks.len() - 1) as u32
        } else {
            let index = self.free;
            self.free = self.next[index as usize];
            self.next[index as usize] = next;
            index
        }
    }

    /// The next timer at or before `watermark`, if any; timers come out in order of their
    /// millisecond.
    #[inline]
    pub(crate) fn pop_due(&mut self, watermark: u64) -> Option<(u64, u32)> {
        loop {
            let slot = (self.front & SLOT_MASK) as usize;
            let mut bucket = self.buckets[slot];
            if bucket.head != NIL {
                bucket.head_len -= 1;
                let timer = self.chunks[bucket.head as usize].timers[bucket.head_len as usize];
                if bucket.head_len == 0 {
                    let emptied = bucket.head as usize;
                    bucket.head = self.next[emptied];
                    bucket.head_len =
                        if bucket.head == NIL { 0 } else { TIMER_WHEEL_CHUNK_TIMERS as u32 };
                    self.next[emptied] = self.free;
                    self.free = emptied as u32;
                }
                self.buckets[slot] = bucket;
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
    fn its_memory_grows_with_the_timers_set_at_once_not_with_the_time_passed() {
        let mut wheel = TimerWheel::new();
        for time in 0..10 * TIMER_WHEEL_SLOTS as u64 {
            for id in 0..4 {
                wheel.push(time + 20, id);
            }
            while wheel.pop_due(time).is_some() {}
        }
        assert_eq!(wheel.len(), 80, "20 ms of timers, 4 a millisecond, are still set");
        // One chunk per bucket holding timers, and the one drained last, free.
        assert!(wheel.chunks.len() <= 21, "{} chunks for 20 buckets", wheel.chunks.len());
    }

    #[test]
    fn a_bucket_of_many_chunks_gives_back_every_timer() {
        let mut wheel = TimerWheel::new();
        let timers = 5 * TIMER_WHEEL_CHUNK_TIMERS as u32 + 3;
        for id in 0..timers {
            wheel.push(7, id);
        }
        let mut due = drain(&mut wheel, 7);
        due.sort();
        assert_eq!(due, (0..timers).map(|id| (7, id)).collect::<Vec<_>>());
        assert_eq!(wheel.chunks.len(), 6);
        assert!(wheel.buckets.iter().all(|bucket| bucket.head == NIL));
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
