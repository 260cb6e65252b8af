//! `filter`: keeps the records a predicate accepts.

use super::chain::{guarded, Chain};

/// The chain `previous` followed by `predicate`.
#[derive(Clone)]
pub struct Filter<C, F> {
    pub(crate) previous: C,
    pub(crate) predicate: F,
    pub(crate) name: &'static str,
}

impl<In, C, F> Chain<In> for Filter<C, F>
where
    C: Chain<In>,
    F: FnMut(&C::Out) -> bool + Clone + Send + 'static,
{
    type Out = C::Out;
    #[inline(always)]
    fn run<E: FnMut(u64, C::Out)>(&mut self, timestamp: u64, record: In, emit: &mut E) {
        let (predicate, name) = (&mut self.predicate, self.name);
        self.previous.run(timestamp, record, &mut |timestamp, record| {
            if guarded(name, || predicate(&record)) {
                emit(timestamp, record);
            }
        });
    }
}
