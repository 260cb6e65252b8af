//! `flat_map`: zero or more output records per input record.
//!
//! The user function gets an emitter instead of returning a collection, so a record that
//! expands into several costs no allocation.

use super::chain::{guarded, Chain};
use std::marker::PhantomData;

/// Where a `flat_map` function puts its outputs.
pub struct Emitter<'a, O> {
    emit: &'a mut dyn FnMut(O),
}

impl<'a, O> Emitter<'a, O> {
    /// An emitter passing each output to `emit`.
    pub(crate) fn new(emit: &'a mut dyn FnMut(O)) -> Self {
        Emitter { emit }
    }

    /// Emits one output record (with the input record's timestamp).
    #[inline]
    pub fn emit(&mut self, record: O) {
        (self.emit)(record);
    }
}

/// The chain `previous` followed by `function`.
pub struct FlatMap<C, F, O> {
    pub(crate) previous: C,
    pub(crate) function: F,
    pub(crate) name: &'static str,
    pub(crate) output: PhantomData<fn() -> O>,
}

impl<C: Clone, F: Clone, O> Clone for FlatMap<C, F, O> {
    fn clone(&self) -> Self {
        FlatMap {
            previous: self.previous.clone(),
            function: self.function.clone(),
            name: self.name,
            output: PhantomData,
        }
    }
}

impl<In, C, F, O> Chain<In> for FlatMap<C, F, O>
where
    C: Chain<In>,
    F: FnMut(C::Out, &mut Emitter<'_, O>) + Clone + Send + 'static,
    O: Copy + Send + 'static,
{
    type Out = O;
    #[inline(always)]
    fn run<E: FnMut(u64, O)>(&mut self, timestamp: u64, record: In, emit: &mut E) {
        let (function, name) = (&mut self.function, self.name);
        self.previous.run(timestamp, record, &mut |timestamp, record| {
            let mut forward = |output| emit(timestamp, output);
            let mut emitter = Emitter { emit: &mut forward };
            guarded(name, || function(record, &mut emitter));
        });
    }
}
