//! Custom keyed operators: a user's function over each key's records, with keyed state.
//!
//! A [`KeyedProcessFunction`] (Flink's `KeyedProcessFunction`) is built once per shard
//! from a factory that receives the shard's [`KeyScope`], so it can create its
//! [`ValueState`](super::keyed_state::ValueState) and
//! [`MapState`](super::keyed_state::MapState) for exactly the key groups the shard owns.
//! The shard calls `process` for every record of those groups, in arrival order per input,
//! and `on_watermark` whenever its watermark rises (the place for event-time timers).
//! Late records are the function's to judge: it sees every record and the watermark.

use super::chain::guarded;
use super::flat_map::Emitter;
use super::item::Stamped;
use super::operator::KeyedOperator;

/// A user's keyed operator.
pub trait KeyedProcessFunction<K, T>: Send + 'static {
    /// What it emits.
    type Output: Send + 'static;

    /// One record of `key`.
    fn process(&mut self, key: K, record: Stamped<T>, out: &mut Emitter<'_, Self::Output>);

    /// The shard's watermark rose to `watermark` (`u64::MAX` at the end of the stream).
    fn on_watermark(&mut self, watermark: u64, out: &mut Emitter<'_, Self::Output>) {
        let _ = (watermark, out);
    }
}

/// Runs a [`KeyedProcessFunction`] as the shard's keyed operator.
pub struct ProcessOperator<P> {
    pub(crate) function: P,
    pub(crate) name: &'static str,
}

impl<K, T, P> KeyedOperator<K, T> for ProcessOperator<P>
where
    T: Copy + Send + 'static,
    P: KeyedProcessFunction<K, T>,
{
    type Output = P::Output;

    #[inline]
    fn on_record<E: FnMut(P::Output)>(
        &mut self,
        key: K,
        timestamp: u64,
        record: &T,
        emit: &mut E,
    ) -> bool {
        let mut emitter = Emitter::new(emit);
        let stamped = Stamped { timestamp, record: *record };
        guarded(self.name, || self.function.process(key, stamped, &mut emitter));
        true
    }

    fn on_watermark<E: FnMut(P::Output)>(&mut self, watermark: u64, emit: &mut E) {
        let mut emitter = Emitter::new(emit);
        guarded(self.name, || self.function.on_watermark(watermark, &mut emitter));
    }
}
