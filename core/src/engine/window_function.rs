//! Window functions: what a window does with its records, from the first record to the
//! result it emits when it fires.
//!
//! A [`WindowFunction`] keeps one `State` per (key, window) or per (key, pane): it creates
//! it, folds records in, merges two partial states (sliding windows combine panes, session
//! windows combine sessions), and turns a state into outputs when the window fires. Three
//! adapters cover what a job asks for:
//!
//! - [`Aggregated`]: an incremental [`Aggregate`] (count, sum, …, or the user's own); the
//!   state is the aggregate's `Copy` accumulator, so a window's memory is one accumulator
//!   per key and adding a record never allocates;
//! - [`Reduced`]: a reduce function `(T, &T) -> T` over the records themselves;
//! - [`Processed`]: a process-window function that sees every element of the window at
//!   once (Flink's `ProcessWindowFunction`). Its state is the window's records, so it pays
//!   memory per record: the price of seeing them all.

use super::aggregate::Aggregate;
use super::chain::guarded;
use super::flat_map::Emitter;
use super::window::{Window, WindowResult};
use std::marker::PhantomData;

/// What a window keeps per key and emits when it fires.
pub trait WindowFunction<K, T>: Clone + Send + 'static {
    /// The running state of one (key, window) or (key, pane).
    type State: Send + 'static;
    /// What the window emits, zero or more times per (key, window).
    type Output: Send + 'static;
    /// A state before any record.
    fn create(&self) -> Self::State;
    /// Folds one record in.
    fn add(&self, state: &mut Self::State, record: &T);
    /// Folds another partial state in (records of the same key, another pane or session).
    fn merge(&self, state: &mut Self::State, other: &Self::State);
    /// The window `window` of `key` fires with `state`: emit its outputs.
    fn fire<E: FnMut(Self::Output)>(
        &mut self,
        key: &K,
        window: Window,
        state: &Self::State,
        emit: &mut E,
    );
}

/// An incremental aggregate as a window function: one [`WindowResult`] per (key, window).
#[derive(Debug, Clone, Copy)]
pub struct Aggregated<A>(pub A);

impl<K, T, A> WindowFunction<K, T> for Aggregated<A>
where
    K: Copy + Send + 'static,
    A: Aggregate<T>,
{
    type State = A::Accumulator;
    type Output = WindowResult<K, A::Output>;

    #[inline]
    fn create(&self) -> A::Accumulator {
        self.0.create()
    }

    #[inline]
    fn add(&self, state: &mut A::Accumulator, record: &T) {
        self.0.add(state, record);
    }

    #[inline]
    fn merge(&self, state: &mut A::Accumulator, other: &A::Accumulator) {
        self.0.merge(state, other);
    }

    #[inline]
    fn fire<E: FnMut(Self::Output)>(
        &mut self,
        key: &K,
        window: Window,
        state: &A::Accumulator,
        emit: &mut E,
    ) {
        let value = self.0.result(state);
        emit(WindowResult { key: *key, window_start: window.start, window_end: window.end, value });
    }
}

/// A reduce function as a window function: the window's records folded pairwise, one
/// [`WindowResult`] per (key, window).
pub struct Reduced<F, T> {
    pub(crate) function: F,
    pub(crate) record: PhantomData<fn() -> T>,
}

impl<F: Clone, T> Clone for Reduced<F, T> {
    fn clone(&self) -> Self {
        Reduced { function: self.function.clone(), record: PhantomData }
    }
}

impl<F, T> Reduced<F, T> {
    /// Reduces with `function(accumulated, next)`.
    pub fn new(function: F) -> Self {
        Reduced { function, record: PhantomData }
    }
}

impl<K, T, F> WindowFunction<K, T> for Reduced<F, T>
where
    K: Copy + Send + 'static,
    T: Copy + Send + 'static,
    F: Fn(T, &T) -> T + Clone + Send + 'static,
{
    type State = Option<T>;
    type Output = WindowResult<K, T>;

    fn create(&self) -> Option<T> {
        None
    }

    #[inline]
    fn add(&self, state: &mut Option<T>, record: &T) {
        *state = Some(match state.take() {
            Some(accumulated) => (self.function)(accumulated, record),
            None => *record,
        });
    }

    fn merge(&self, state: &mut Option<T>, other: &Option<T>) {
        if let Some(other) = other {
            *state = Some(match state.take() {
                Some(accumulated) => (self.function)(accumulated, other),
                None => *other,
            });
        }
    }

    fn fire<E: FnMut(Self::Output)>(
        &mut self,
        key: &K,
        window: Window,
        state: &Option<T>,
        emit: &mut E,
    ) {
        if let Some(value) = *state {
            let (window_start, window_end) = (window.start, window.end);
            emit(WindowResult { key: *key, window_start, window_end, value });
        }
    }
}

/// A process-window function: called once per (key, window) with every element of the
/// window, in arrival order within each pane (panes, and so the elements of a sliding
/// window, in time order), emitting any number of outputs.
pub struct Processed<F, T, O> {
    pub(crate) function: F,
    pub(crate) name: &'static str,
    pub(crate) types: PhantomData<fn(T) -> O>,
}

impl<F: Clone, T, O> Clone for Processed<F, T, O> {
    fn clone(&self) -> Self {
        Processed { function: self.function.clone(), name: self.name, types: PhantomData }
    }
}

impl<K, T, O, F> WindowFunction<K, T> for Processed<F, T, O>
where
    K: Copy + Send + 'static,
    T: Copy + Send + 'static,
    O: Send + 'static,
    F: FnMut(&K, Window, &[T], &mut Emitter<'_, O>) + Clone + Send + 'static,
{
    type State = Vec<T>;
    type Output = O;

    fn create(&self) -> Vec<T> {
        Vec::new()
    }

    #[inline]
    fn add(&self, state: &mut Vec<T>, record: &T) {
        state.push(*record);
    }

    fn merge(&self, state: &mut Vec<T>, other: &Vec<T>) {
        state.extend_from_slice(other);
    }

    fn fire<E: FnMut(O)>(&mut self, key: &K, window: Window, state: &Vec<T>, emit: &mut E) {
        let (function, name) = (&mut self.function, self.name);
        let mut forward = |output| emit(output);
        let mut emitter = Emitter::new(&mut forward);
        guarded(name, || function(key, window, state, &mut emitter));
    }
}
