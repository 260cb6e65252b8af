//! `map`: one output record per input record.

use super::chain::{guarded, Chain};
use std::marker::PhantomData;

/// The chain `previous` followed by `function`.
pub struct Map<C, F, O> {
    pub(crate) previous: C,
    pub(crate) function: F,
    pub(crate) name: &'static str,
    pub(crate) output: PhantomData<fn() -> O>,
}

impl<C: Clone, F: Clone, O> Clone for Map<C, F, O> {
    fn clone(&self) -> Self {
        Map {
            previous: self.previous.clone(),
            function: self.function.clone(),
            name: self.name,
            output: PhantomData,
        }
    }
}

impl<In, C, F, O> Chain<In> for Map<C, F, O>
where
    C: Chain<In>,
    F: FnMut(C::Out) -> O + Clone + Send + 'static,
    O: Copy + Send + 'static,
{
    type Out = O;
    #[inline(always)]
    fn run<E: FnMut(u64, O)>(&mut self, timestamp: u64, record: In, emit: &mut E) {
        let (function, name) = (&mut self.function, self.name);
        self.previous.run(timestamp, record, &mut |timestamp, record| {
            let output = guarded(name, || function(record));
            emit(timestamp, output);
        });
    }
}
