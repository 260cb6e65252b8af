//! Operator chaining: stateless operators fused into one loop.
//!
//! A [`Chain`] is a composition of map / filter / flat_map built at compile time, one
//! generic type per operator wrapping the previous ([`Identity`] at the bottom). Running a
//! record through it is a nest of inlined calls with no queue, no virtual call and no
//! buffer between the operators, which is what Flink calls operator chaining and what lets
//! a stateless pipeline run at memory speed. Timestamps ride alongside the record unchanged.
//!
//! Every user function runs under an `OperatorGuard`: on the normal path the guard is
//! forgotten (no code runs); if the function panics, unwinding drops the guard, which
//! records the operator's name for the shard to report. So naming the culprit of a panic
//! costs nothing per record.

use std::cell::Cell;

/// A fused chain of stateless operators from `In` records to `Out` records.
pub trait Chain<In>: Clone + Send + 'static {
    /// What the chain emits.
    type Out: Copy + Send + 'static;
    /// Runs one record through every operator, passing each output to `emit`.
    fn run<E: FnMut(u64, Self::Out)>(&mut self, timestamp: u64, record: In, emit: &mut E);
}

/// The empty chain: emits its input.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<T: Copy + Send + 'static> Chain<T> for Identity {
    type Out = T;
    #[inline(always)]
    fn run<E: FnMut(u64, T)>(&mut self, timestamp: u64, record: T, emit: &mut E) {
        emit(timestamp, record);
    }
}

thread_local! {
    static PANICKED_OPERATOR: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Names the operator running on this thread should it panic.
pub(crate) struct OperatorGuard(&'static str);

impl Drop for OperatorGuard {
    fn drop(&mut self) {
        // Only reached while unwinding (the normal path forgets the guard); the innermost
        // operator unwinds first, so the first name set is the one that panicked.
        PANICKED_OPERATOR.with(|cell| {
            if cell.get().is_none() {
                cell.set(Some(self.0));
            }
        });
    }
}

/// Runs `function` as operator `name`.
#[inline(always)]
pub(crate) fn guarded<R>(name: &'static str, function: impl FnOnce() -> R) -> R {
    let guard = OperatorGuard(name);
    let result = function();
    std::mem::forget(guard);
    result
}

/// The operator that panicked on this thread, if one did (and clears it).
pub(crate) fn take_panicked_operator() -> Option<&'static str> {
    PANICKED_OPERATOR.with(|cell| cell.take())
}
