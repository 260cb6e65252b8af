//! The keyed operator contract: what the shard driver calls behind the exchange.
//!
//! Every keyed operator (the window operators, a user's keyed process function) is a pure
//! state machine over records and watermarks: `on_record` folds one record of a key in and
//! says whether it was on time, `on_watermark` lets time pass and emits what became due.
//! Outputs go to a callback the driver gives (the sink); a late record goes back to the
//! driver, which hands it to the job's late-record side output. The driver owns rings,
//! threads and clocks; an operator never sees them, so it can be tested by feeding it
//! records and watermarks by hand.

use super::window::TimeDomain;

/// What an operator counted, for the shard's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorCounters {
    /// Records refused as late (handed to the side output).
    pub late_records: u64,
    /// Windows fired on time (each counted once per shard holding keys of it).
    pub windows_fired: u64,
    /// Extra firings of (key, window) pairs updated by records within the allowed lateness.
    pub late_firings: u64,
}

/// A keyed, time-aware operator run by a shard on the records of its key groups.
pub trait KeyedOperator<K, T>: Send + 'static {
    /// What the operator emits.
    type Output: Send + 'static;

    /// Takes one record of `key` with its timestamp (event time, or the shard's processing
    /// time for a processing-time operator). Returns false if the record is late: the
    /// operator did not take it, and the driver sends it to the late side output.
    fn on_record<E: FnMut(Self::Output)>(
        &mut self,
        key: K,
        timestamp: u64,
        record: &T,
        emit: &mut E,
    ) -> bool;

    /// Time has reached `watermark` (never lower than before): emit what is due.
    fn on_watermark<E: FnMut(Self::Output)>(&mut self, watermark: u64, emit: &mut E);

    /// Which clock the operator's time comes from.
    fn time_domain(&self) -> TimeDomain {
        TimeDomain::EventTime
    }

    /// What the operator counted so far.
    fn counters(&self) -> OperatorCounters {
        OperatorCounters::default()
    }
}
