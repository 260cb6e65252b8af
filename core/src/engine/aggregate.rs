//! Incremental aggregates: how a window folds its records into one value per key.
//!
//! An [`Aggregate`] keeps a small accumulator per (key, window) and never stores records, so
//! a window's memory is one accumulator per key no matter how many records it sees. The
//! accumulator is `Copy`: adding a record is a read-modify-write of a hash-map slot, with no
//! allocation. `merge` combines two partial accumulators (session windows and pre-aggregation
//! need it). The built-ins take a value extractor, a plain function of the record.

/// A user-defined incremental aggregate, as Flink's `AggregateFunction`.
pub trait Aggregate<T>: Clone + Send + 'static {
    /// The running state of one (key, window).
    type Accumulator: Copy + Send + 'static;
    /// What the window emits.
    type Output: Copy + Send + 'static;
    /// A fresh accumulator, before any record.
    fn create(&self) -> Self::Accumulator;
    /// Folds one record in.
    fn add(&self, accumulator: &mut Self::Accumulator, record: &T);
    /// Folds another partial accumulator in.
    fn merge(&self, accumulator: &mut Self::Accumulator, other: &Self::Accumulator);
    /// The window's value.
    fn result(&self, accumulator: &Self::Accumulator) -> Self::Output;
}

/// Number of records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<T> Aggregate<T> for Count {
    type Accumulator = u64;
    type Output = u64;
    fn create(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, accumulator: &mut u64, _record: &T) {
        *accumulator += 1;
    }
    fn merge(&self, accumulator: &mut u64, other: &u64) {
        *accumulator += other;
    }
    fn result(&self, accumulator: &u64) -> u64 {
        *accumulator
    }
}

macro_rules! extracting_aggregate {
    ($(#[$doc:meta])* $name:ident, $accumulator:ty, $output:ty, $create:expr,
     |$acc:ident, $value:ident| $add:expr, |$left:ident, $right:ident| $merge:expr,
     |$result_acc:ident| $result:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<F>(pub F);

        impl<T, F> Aggregate<T> for $name<F>
        where
            F: Fn(&T) -> i64 + Clone + Send + 'static,
        {
            type Accumulator = $accumulator;
            type Output = $output;
            fn create(&self) -> $accumulator {
                $create
            }
            #[inline]
            fn add(&self, $acc: &mut $accumulator, record: &T) {
                let $value = (self.0)(record);
                $add
            }
            fn merge(&self, $left: &mut $accumulator, $right: &$accumulator) {
                $merge
            }
            fn result(&self, $result_acc: &$accumulator) -> $output {
                $result
            }
        }
    };
}

extracting_aggregate!(
    /// Sum of an `i64` value of the records (wrapping on overflow).
    Sum, i64, i64, 0,
    |acc, value| *acc = acc.wrapping_add(value),
    |left, right| *left = left.wrapping_add(*right),
    |acc| *acc
);

extracting_aggregate!(
    /// Smallest `i64` value of the records.
    Min, i64, i64, i64::MAX,
    |acc, value| *acc = (*acc).min(value),
    |left, right| *left = (*left).min(*right),
    |acc| *acc
);

extracting_aggregate!(
    /// Largest `i64` value of the records.
    Max, i64, i64, i64::MIN,
    |acc, value| *acc = (*acc).max(value),
    |left, right| *left = (*left).max(*right),
    |acc| *acc
);

extracting_aggregate!(
    /// Mean of an `i64` value of the records (sum and count kept exactly; the division
    /// happens once, in `result`).
    Avg, (i128, u64), f64, (0, 0),
    |acc, value| { acc.0 += i128::from(value); acc.1 += 1; },
    |left, right| { left.0 += right.0; left.1 += right.1; },
    |acc| if acc.1 == 0 { 0.0 } else { acc.0 as f64 / acc.1 as f64 }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn fold<A: Aggregate<i64>>(aggregate: &A, values: &[i64]) -> A::Output {
        let (left, right) = values.split_at(values.len() / 2);
        let mut first = aggregate.create();
        left.iter().for_each(|value| aggregate.add(&mut first, value));
        let mut second = aggregate.create();
        right.iter().for_each(|value| aggregate.add(&mut second, value));
        aggregate.merge(&mut first, &second);
        aggregate.result(&first)
    }

    #[test]
    fn built_ins_fold_and_merge_to_the_plain_result() {
        let values = [5, -3, 12, 7, 0];
        let value = |record: &i64| *record;
        assert_eq!(fold(&Count, &values), 5);
        assert_eq!(fold(&Sum(value), &values), 21);
        assert_eq!(fold(&Min(value), &values), -3);
        assert_eq!(fold(&Max(value), &values), 12);
        assert!((fold(&Avg(value), &values) - 4.2).abs() < 1e-12);
    }
}
