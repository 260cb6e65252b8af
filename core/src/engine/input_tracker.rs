//! Per-input bookkeeping of a shard's control items: watermarks, barriers, end of stream.
//!
//! A pure state machine: the shard feeds it the control items it reads from each input
//! ring and it answers what changed for the shard as a whole. The shard's watermark is the
//! minimum over its inputs (a window may only fire once *every* producer has promised to
//! send nothing older); an ended input counts as `u64::MAX`, so when all inputs end the
//! watermark jumps to the end of time and every window flushes. An idle input (its source
//! had nothing for a while) is left out of the minimum until it sends a watermark again, so
//! a silent source does not hold time back; when every live input is idle the watermark
//! moves to the largest of theirs (as Flink's `StatusWatermarkValve`). A barrier of epoch `e` is
//! aligned once it has arrived on every input; this module reports alignment, the
//! exactly-once work will snapshot on it.

/// What a control item changed for the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Nothing visible to the shard.
    None,
    /// The shard's watermark rose to this value.
    Watermark(u64),
    /// Barrier `epoch` has now arrived on every input.
    BarrierAligned(u64),
}

/// The control state of every input ring of one shard.
#[derive(Debug, Clone)]
pub struct InputTracker {
    watermarks: Vec<u64>,
    barriers: Vec<Option<u64>>,
    ended: Vec<bool>,
    idle: Vec<bool>,
    watermark: u64,
}

impl InputTracker {
    /// # Panics
    /// If `inputs` is zero.
    pub fn new(inputs: usize) -> InputTracker {
        assert!(inputs > 0);
        InputTracker {
            watermarks: vec![0; inputs],
            barriers: vec![None; inputs],
            ended: vec![false; inputs],
            idle: vec![false; inputs],
            watermark: 0,
        }
    }

    /// The shard's watermark: the minimum over its inputs.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// True once `End` has arrived on every input.
    pub fn all_ended(&self) -> bool {
        self.ended.iter().all(|&ended| ended)
    }

    /// Input `input` promises nothing older than `timestamp` will follow.
    ///
    /// # Panics
    /// If the input has already ended (a producer bug).
    pub fn on_watermark(&mut self, input: usize, timestamp: u64) -> Advance {
        assert!(!self.ended[input], "watermark after End on input {input}");
        let slot = &mut self.watermarks[input];
        *slot = (*slot).max(timestamp);
        self.idle[input] = false;
        self.recompute()
    }

    /// Input `input` went idle: its watermark no longer holds the minimum back.
    ///
    /// # Panics
    /// If the input has already ended (a producer bug).
    pub fn on_idle(&mut self, input: usize) -> Advance {
        assert!(!self.ended[input], "idle after End on input {input}");
        self.idle[input] = true;
        self.recompute()
    }

    /// Input `input` has ended.
    pub fn on_end(&mut self, input: usize) -> Advance {
        assert!(!self.ended[input], "End twice on input {input}");
        self.ended[input] = true;
        self.idle[input] = false;
        self.watermarks[input] = u64::MAX;
        self.recompute()
    }

    /// Barrier `epoch` arrived on input `input`.
    ///
    /// # Panics
    /// If epochs on one input do not rise, or an input skips ahead while another still
    /// lacks the previous barrier (barriers are injected in the same order everywhere).
    pub fn on_barrier(&mut self, input: usize, epoch: u64) -> Advance {
        let previous = self.barriers[input];
        assert!(previous.is_none_or(|p| p < epoch), "barrier {epoch} after {previous:?}");
        self.barriers[input] = Some(epoch);
        let aligned = self.barriers.iter().zip(&self.ended).all(|(b, &ended)| {
            assert!(b.is_none_or(|b| b <= epoch), "input ahead of barrier {epoch}");
            ended || *b == Some(epoch)
        });
        if aligned {
            Advance::BarrierAligned(epoch)
        } else {
            Advance::None
        }
    }

    /// Whether barrier `epoch` has arrived on every input that has not ended (so the
    /// epoch is aligned, also when the last missing input ended instead).
    pub fn is_barrier_aligned(&self, epoch: u64) -> bool {
        self.barriers.iter().zip(&self.ended).all(|(b, &ended)| ended || *b == Some(epoch))
    }

    fn recompute(&mut self) -> Advance {
        let live = || self.watermarks.iter().zip(&self.ended).filter(|(_, &ended)| !ended);
        let active = live().zip(&self.idle).filter(|(_, &idle)| !idle);
        let minimum = match active.map(|((&watermark, _), _)| watermark).min() {
            Some(minimum) => minimum,
            // No live input is active: time moves to the furthest idle one, or to the end
            // of time once every input has ended.
            None => live().map(|(&watermark, _)| watermark).max().unwrap_or(u64::MAX),
        };
        if minimum > self.watermark {
            self.watermark = minimum;
            Advance::Watermark(minimum)
        } else {
            Advance::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_the_minimum_over_inputs_and_end_releases_an_input() {
        let mut tracker = InputTracker::new(3);
        assert_eq!(tracker.on_watermark(0, 10), Advance::None);
        assert_eq!(tracker.on_watermark(1, 20), Advance::None);
        assert_eq!(tracker.on_watermark(2, 5), Advance::Watermark(5));
        assert_eq!(tracker.on_watermark(2, 3), Advance::None, "watermarks never go back");
        assert_eq!(tracker.on_end(2), Advance::Watermark(10));
        assert_eq!(tracker.on_end(0), Advance::Watermark(20));
        assert!(!tracker.all_ended());
        assert_eq!(tracker.on_end(1), Advance::Watermark(u64::MAX));
        assert!(tracker.all_ended());
    }

    #[test]
    fn an_idle_input_does_not_hold_the_watermark_back_until_it_speaks_again() {
        let mut tracker = InputTracker::new(3);
        tracker.on_watermark(0, 50);
        tracker.on_watermark(1, 70);
        assert_eq!(tracker.on_idle(2), Advance::Watermark(50));
        assert_eq!(tracker.on_idle(0), Advance::Watermark(70));
        assert_eq!(tracker.on_idle(1), Advance::None, "all idle: the largest, 70");
        assert_eq!(tracker.on_watermark(2, 10), Advance::None, "back, behind: time stays");
        assert_eq!(tracker.on_watermark(2, 90), Advance::Watermark(90), "2 alone is active");
        assert_eq!(tracker.on_end(2), Advance::None, "0 and 1 idle at 50 and 70");
        assert_eq!(tracker.on_watermark(0, 80), Advance::None);
        assert_eq!(tracker.on_watermark(0, 100), Advance::Watermark(100));
    }

    #[test]
    fn a_barrier_aligns_once_it_arrived_on_every_live_input() {
        let mut tracker = InputTracker::new(3);
        assert_eq!(tracker.on_barrier(0, 1), Advance::None);
        assert_eq!(tracker.on_barrier(2, 1), Advance::None);
        assert_eq!(tracker.on_barrier(1, 1), Advance::BarrierAligned(1));
        tracker.on_end(1);
        assert_eq!(tracker.on_barrier(0, 2), Advance::None);
        assert_eq!(tracker.on_barrier(2, 2), Advance::BarrierAligned(2));
    }

    #[test]
    #[should_panic(expected = "barrier 1 after Some(1)")]
    fn a_repeated_barrier_is_a_bug() {
        let mut tracker = InputTracker::new(2);
        tracker.on_barrier(0, 1);
        tracker.on_barrier(0, 1);
    }
}
