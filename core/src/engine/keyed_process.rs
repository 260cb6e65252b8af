//! Custom keyed operators: a user's function over each key's records, with keyed state.
//!
//! A [`KeyedProcessFunction`] (Flink's `KeyedProcessFunction`) is built once per shard
//! from a factory that receives the shard's [`KeyScope`], so it can create its
//! [`ValueState`](super::keyed_state::ValueState) and
//! [`MapState`](super::keyed_state::MapState) for exactly the key groups the shard owns.
//! The shard calls `process` for every record of those groups, in arrival order per input,
//! and `on_watermark` whenever its watermark rises (the place for event-time timers).
//! Late records are the function's to judge: it sees every record and the watermark.
//!
//! In a checkpointed job the function saves and restores its state per key group through
//! [`KeyedProcessFunction::snapshot`] and [`KeyedProcessFunction::restore`]; the keyed
//! state types do the work (`ValueState::snapshot_into` / `restore_from`, likewise for
//! `MapState`), one call per state field, in the same order in both. The defaults refuse,
//! so a function that keeps state outside them cannot silently lose it.

use super::chain::guarded;
use super::flat_map::Emitter;
use super::item::Stamped;
use super::operator::KeyedOperator;
use super::snapshot::{KeyGroupWriter, SnapshotState};
use super::state_codec::StateDecodeError;

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

    /// Whether [`KeyedProcessFunction::snapshot`] and [`KeyedProcessFunction::restore`]
    /// are implemented (false by default: a checkpointed job refuses to start).
    fn is_checkpointable(&self) -> bool {
        false
    }

    /// Copies the function's keyed state into `out` (e.g. `self.seen.snapshot_into(out)`
    /// for each state field).
    fn snapshot(&self, out: &mut KeyGroupWriter) {
        let _ = out;
    }

    /// Adds key group `key_group`'s state, as `snapshot` wrote it (e.g.
    /// `self.seen.restore_from(key_group, bytes)?` for each state field, in the same order).
    ///
    /// # Errors
    /// [`StateDecodeError`] when the bytes do not decode.
    fn restore(&mut self, key_group: usize, bytes: &mut &[u8]) -> Result<(), StateDecodeError> {
        let _ = (key_group, bytes);
        Err(StateDecodeError("the keyed process function does not restore state".into()))
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

impl<K, T, P> SnapshotState<K, T> for ProcessOperator<P>
where
    T: Copy + Send + 'static,
    P: KeyedProcessFunction<K, T>,
{
    fn check_checkpointable(&self) -> Result<(), String> {
        if self.function.is_checkpointable() {
            Ok(())
        } else {
            Err(format!("keyed process function `{}` implements no snapshot/restore", self.name))
        }
    }

    fn snapshot(&mut self, out: &mut KeyGroupWriter) {
        self.function.snapshot(out);
    }

    fn restore(
        &mut self,
        key_group: usize,
        _chunk: u64,
        mut bytes: &[u8],
    ) -> Result<(), StateDecodeError> {
        self.function.restore(key_group, &mut bytes)?;
        if !bytes.is_empty() {
            let left = bytes.len();
            return Err(StateDecodeError(format!("{left} bytes after the function's state")));
        }
        Ok(())
    }

    fn restore_time(&mut self, _watermark: u64) {}
}
