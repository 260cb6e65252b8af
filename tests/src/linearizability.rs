//! A linearizability checker for recorded client histories, after Wing & Gong's search with
//! Lowe's memoisation (WGL, "Testing for linearizability", 2017; the algorithm of Porcupine).
//!
//! ```text
//! history   = operation*          each with a call time and, if it returned with a known
//!                                  outcome, a return time and that outcome
//! entries   = call and return events of every operation, by time (calls first on ties);
//!             an operation whose outcome is unknown returns at +∞
//! search    scan the entries: at a call, try to linearize that operation next (the model
//!           takes the step and the pair (linearized set, state) is new): lift it out and
//!           restart from the head; at a return of an operation not yet linearized, undo the
//!           last choice and try the next call after it
//! verdict   linearizable once every operation with a known outcome is linearized
//! ```
//!
//! **Unknown outcomes.** A request whose client lost its connection (or timed out) may have
//! taken effect at any time after its call, or never. Such an operation gets no return event
//! before +∞: the search may linearize it wherever the model allows its effect, or leave it
//! out (an unknown write that never happened is one whose effect the model never needed).
//! The model is asked to step an unknown operation only with its success effect; doing
//! nothing is always possible by leaving it unlinearized.
//!
//! **Locality.** Linearizability is compositional (Herlihy & Wing): a history over
//! independent objects is linearizable iff each object's sub-history is, so callers check
//! one object (one znode) at a time with [`check`] or many with [`check_by_key`], which
//! keeps each search small.
//!
//! [`Znode`] models ZooKeeper's conditional writes on one znode: `create`, `setData` with an
//! expected version, and reads done at a point where they are linearizable (after `sync`
//! with no write in flight).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification: states and the effect of each operation.
pub trait Model {
    /// The object's state; small, as the search memoises (linearized set, state) pairs.
    type State: Clone + Eq + Hash + Debug;
    type Input: Debug;
    type Output: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` returns `output` in `state`, or `None` when that outcome is
    /// impossible there. `output` is `None` for an operation whose outcome is unknown: the
    /// step is then its success effect, `None` when it cannot succeed in `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
}

/// One client operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client (session) that issued it; for reports only.
    pub process: usize,
    /// When the client issued it (any monotonic unit, e.g. ns since the test began).
    pub call: u64,
    /// When its outcome arrived; ignored (treated as +∞) when `output` is `None`.
    pub ret: u64,
    pub input: I,
    /// The outcome, or `None` when unknown (connection lost, timed out).
    pub output: Option<O>,
}

/// An operation of `M`'s history.
pub type ModelOperation<M> = Operation<<M as Model>::Input, <M as Model>::Output>;

/// Why a history is not linearizable, or why the search gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No order of the operations respects real time and the model. `stuck` is an operation
    /// the deepest partial linearization could not place before its return; `linearized` the
    /// operations of that partial linearization, in order (indexes into the history).
    NotLinearizable { stuck: usize, linearized: Vec<usize> },
    /// The search visited `states_max` states without a verdict.
    Exhausted { states_max: usize },
}

/// Search states visited at most per [`check`] call before it reports [`Failure::Exhausted`].
pub const SEARCH_STATES_MAX: usize = 20_000_000;

#[derive(Debug, Clone, Copy)]
struct Event {
    time: u64,
    /// Calls sort before returns at the same time: concurrent, the permissive reading.
    is_return: bool,
    operation: usize,
}

/// A doubly linked list of events over an array, with O(1) lift and unlift.
struct EventList {
    events: Vec<Event>,
    /// Index `events.len()` is the head sentinel.
    next: Vec<usize>,
    previous: Vec<usize>,
    /// Per operation: its call event and return event.
    call_of: Vec<usize>,
    return_of: Vec<usize>,
}

impl EventList {
    fn new<I, O>(history: &[Operation<I, O>]) -> EventList {
        let mut events: Vec<Event> = Vec::with_capacity(history.len() * 2);
        for (index, operation) in history.iter().enumerate() {
            let ret = if operation.output.is_some() { operation.ret } else { u64::MAX };
            assert!(ret >= operation.call, "operation {index} returns before its call");
            events.push(Event { time: operation.call, is_return: false, operation: index });
            events.push(Event { time: ret, is_return: true, operation: index });
        }
        events.sort_by_key(|event| (event.time, event.is_return, event.operation));
        let head = events.len();
        let mut next = vec![0; head + 1];
        let mut previous = vec![0; head + 1];
        let mut order = vec![head];
        order.extend(0..head);
        order.push(usize::MAX);
        for window in order.windows(2) {
            next[window[0]] = window[1];
            if window[1] != usize::MAX {
                previous[window[1]] = window[0];
            }
        }
        let mut call_of = vec![0; history.len()];
        let mut return_of = vec![0; history.len()];
        for (position, event) in events.iter().enumerate() {
            if event.is_return {
                return_of[event.operation] = position;
            } else {
                call_of[event.operation] = position;
            }
        }
        EventList { events, next, previous, call_of, return_of }
    }

    fn head(&self) -> usize {
        self.events.len()
    }

    fn first(&self) -> usize {
        self.next[self.head()]
    }

    fn unlink(&mut self, position: usize) {
        let (previous, next) = (self.previous[position], self.next[position]);
        self.next[previous] = next;
        if next != usize::MAX {
            self.previous[next] = previous;
        }
    }

    fn relink(&mut self, position: usize) {
        let (previous, next) = (self.previous[position], self.next[position]);
        self.next[previous] = position;
        if next != usize::MAX {
            self.previous[next] = position;
        }
    }

    /// Removes an operation's call and return events (return first, so unlift can undo in
    /// the reverse order).
    fn lift(&mut self, operation: usize) {
        self.unlink(self.call_of[operation]);
        self.unlink(self.return_of[operation]);
    }

    fn unlift(&mut self, operation: usize) {
        self.relink(self.return_of[operation]);
        self.relink(self.call_of[operation]);
    }
}

/// A set of operation indexes, hashed with the state for memoisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(size: usize) -> Bits {
        Bits(vec![0; size.div_ceil(64)])
    }

    fn set(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    fn clear(&mut self, index: usize) {
        self.0[index / 64] &= !(1 << (index % 64));
    }
}

/// Checks one object's history against `model`.
///
/// # Errors
/// [`Failure::NotLinearizable`] with a witness, or [`Failure::Exhausted`].
///
/// # Panics
/// When an operation with a known outcome returns before its call.
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
) -> Result<(), Failure> {
    let known = history.iter().filter(|operation| operation.output.is_some()).count();
    let mut list = EventList::new(history);
    let mut linearized = Bits::new(history.len());
    let mut linearized_known = 0usize;
    let mut seen: HashSet<(Bits, M::State)> = HashSet::new();
    let mut state = model.init();
    // (operation, state before it)
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    // The deepest partial linearization that got stuck: (depth, stuck operation, order).
    let mut deepest: Option<(usize, usize, Vec<usize>)> = None;
    let mut position = list.first();
    let mut visited = 0usize;
    loop {
        if linearized_known == known {
            return Ok(());
        }
        assert!(position != usize::MAX, "a known operation's return is always ahead");
        visited += 1;
        if visited > SEARCH_STATES_MAX {
            return Err(Failure::Exhausted { states_max: SEARCH_STATES_MAX });
        }
        let event = list.events[position];
        let operation = &history[event.operation];
        if !event.is_return {
            let stepped = model.step(&state, &operation.input, operation.output.as_ref());
            if let Some(next_state) = stepped {
                let mut next_set = linearized.clone();
                next_set.set(event.operation);
                if seen.insert((next_set.clone(), next_state.clone())) {
                    stack.push((event.operation, std::mem::replace(&mut state, next_state)));
                    linearized = next_set;
                    linearized_known += usize::from(operation.output.is_some());
                    list.lift(event.operation);
                    position = list.first();
                    continue;
                }
            }
            position = list.next[position];
            continue;
        }
        // The return of an operation not linearized yet: undo the last choice.
        if deepest.as_ref().is_none_or(|(depth, _, _)| stack.len() > *depth) {
            let order = stack.iter().map(|(operation, _)| *operation).collect();
            deepest = Some((stack.len(), event.operation, order));
        }
        let Some((undone, previous_state)) = stack.pop() else {
            let (_, stuck, linearized) = deepest.expect("set before the stack empties");
            return Err(Failure::NotLinearizable { stuck, linearized });
        };
        state = previous_state;
        linearized.clear(undone);
        linearized_known -= usize::from(history[undone].output.is_some());
        list.unlift(undone);
        position = list.next[list.call_of[undone]];
    }
}

/// Checks each key's sub-history on its own; the first failure names its key.
///
/// # Errors
/// The key and failure of the first sub-history that is not linearizable.
pub fn check_by_key<K: Ord + Clone, M: Model>(
    model: &M,
    history: &[(K, ModelOperation<M>)],
) -> Result<(), (K, Failure)>
where
    M::Input: Clone,
    M::Output: Clone,
{
    let mut by_key: BTreeMap<K, Vec<ModelOperation<M>>> = BTreeMap::new();
    for (key, operation) in history {
        by_key.entry(key.clone()).or_default().push(operation.clone());
    }
    for (key, operations) in by_key {
        check(model, &operations).map_err(|failure| (key, failure))?;
    }
    Ok(())
}

/// Renders a failure with the operations it names, for a test's panic message.
pub fn explain<I: Debug, O: Debug>(history: &[Operation<I, O>], failure: &Failure) -> String {
    match failure {
        Failure::Exhausted { states_max } => format!("search gave up after {states_max} states"),
        Failure::NotLinearizable { stuck, linearized } => {
            let show = |index: usize| {
                let operation = &history[index];
                format!(
                    "#{index} p{} [{}..{}] {:?} -> {:?}",
                    operation.process,
                    operation.call,
                    if operation.output.is_some() { operation.ret.to_string() } else { "?".into() },
                    operation.input,
                    operation.output
                )
            };
            let mut text = String::from("not linearizable; deepest partial order:\n");
            let shown_from = linearized.len().saturating_sub(20);
            for &index in &linearized[shown_from..] {
                text += &format!("  {}\n", show(index));
            }
            if *stuck < history.len() {
                text += &format!("cannot place before its return:\n  {}\n", show(*stuck));
            }
            text
        }
    }
}

/// An operation on one znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZnodeInput {
    /// `create` with data `value` (a number unique to this write).
    Create { value: u64 },
    /// `setData` to `value` if the version is `expected_version` (-1: any).
    SetData { value: u64, expected_version: i32 },
    /// `getData`, at a point where it is linearizable.
    Read,
}

/// The outcome of a [`ZnodeInput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZnodeOutput {
    Created,
    /// `setData` succeeded; the node's version is now `version`.
    Set {
        version: i32,
    },
    NodeExists,
    BadVersion,
    NoNode,
    /// `getData`: the data and version, or `None` for no node.
    Read(Option<(u64, i32)>),
}

/// ZooKeeper's semantics of one znode under create / conditional setData / read; the state
/// is `None` (absent) or `(data, version)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Znode;

impl Model for Znode {
    type State = Option<(u64, i32)>;
    type Input = ZnodeInput;
    type Output = ZnodeOutput;

    fn init(&self) -> Self::State {
        None
    }

    fn step(
        &self,
        state: &Self::State,
        input: &ZnodeInput,
        output: Option<&ZnodeOutput>,
    ) -> Option<Self::State> {
        use ZnodeOutput as Out;
        let matches = |expected: i32, version: i32| expected == -1 || expected == version;
        match (input, output, *state) {
            (ZnodeInput::Create { value }, Some(Out::Created) | None, None) => {
                Some(Some((*value, 0)))
            }
            (ZnodeInput::Create { .. }, Some(Out::NodeExists), Some(_))
            | (ZnodeInput::SetData { .. }, Some(Out::NoNode), None) => Some(*state),
            (ZnodeInput::SetData { value, expected_version }, output, Some((_, version))) => {
                match output {
                    None if matches(*expected_version, version) => {
                        Some(Some((*value, version + 1)))
                    }
                    Some(Out::Set { version: new }) if matches(*expected_version, version) => {
                        (*new == version + 1).then_some(Some((*value, *new)))
                    }
                    Some(Out::BadVersion) if !matches(*expected_version, version) => Some(*state),
                    _ => None,
                }
            }
            (ZnodeInput::Read, Some(Out::Read(read)), _) => (*read == *state).then_some(*state),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        process: usize,
        call: u64,
        ret: u64,
        input: ZnodeInput,
        output: Option<ZnodeOutput>,
    ) -> Operation<ZnodeInput, ZnodeOutput> {
        Operation { process, call, ret, input, output }
    }

    fn set(value: u64, expected_version: i32) -> ZnodeInput {
        ZnodeInput::SetData { value, expected_version }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let history = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(0, 2, 3, set(2, 0), Some(ZnodeOutput::Set { version: 1 })),
            op(1, 4, 5, set(3, 0), Some(ZnodeOutput::BadVersion)),
            op(1, 6, 7, ZnodeInput::Create { value: 4 }, Some(ZnodeOutput::NodeExists)),
            op(0, 8, 9, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((2, 1))))),
        ];
        assert_eq!(check(&Znode, &history), Ok(()));
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // Both writers read version 0; the one that returned second took effect first.
        let history = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(1, 2, 10, set(2, 0), Some(ZnodeOutput::Set { version: 1 })),
            op(2, 3, 5, set(3, 0), Some(ZnodeOutput::BadVersion)),
            op(3, 4, 8, set(4, 1), Some(ZnodeOutput::Set { version: 2 })),
            op(0, 11, 12, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((4, 2))))),
        ];
        assert_eq!(check(&Znode, &history), Ok(()));
    }

    #[test]
    fn a_stale_conditional_write_is_rejected() {
        // Two non-overlapping writes both succeed against version 0: a lost update.
        let history = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(1, 2, 3, set(2, 0), Some(ZnodeOutput::Set { version: 1 })),
            op(2, 4, 5, set(3, 0), Some(ZnodeOutput::Set { version: 1 })),
        ];
        let failure = check(&Znode, &history).unwrap_err();
        let Failure::NotLinearizable { stuck, .. } = failure else { panic!("{failure:?}") };
        assert!(explain(&history, &failure).contains("cannot place"), "{stuck}");
    }

    #[test]
    fn a_double_create_is_rejected() {
        let history = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(1, 2, 3, ZnodeInput::Create { value: 2 }, Some(ZnodeOutput::Created)),
        ];
        assert!(check(&Znode, &history).is_err());
    }

    #[test]
    fn a_lost_acknowledged_write_is_rejected() {
        // The write was acknowledged, yet a later read sees the state before it.
        let history = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(1, 2, 3, set(2, 0), Some(ZnodeOutput::Set { version: 1 })),
            op(0, 4, 5, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((1, 0))))),
        ];
        assert!(check(&Znode, &history).is_err());
    }

    #[test]
    fn a_read_that_goes_back_in_time_is_rejected() {
        let history = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(1, 2, 20, set(2, 0), Some(ZnodeOutput::Set { version: 1 })),
            op(2, 3, 4, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((2, 1))))),
            op(3, 5, 6, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((1, 0))))),
        ];
        assert!(check(&Znode, &history).is_err());
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_take_effect() {
        let taken = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(1, 2, 3, set(2, 0), None),
            op(0, 10, 11, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((2, 1))))),
        ];
        assert_eq!(check(&Znode, &taken), Ok(()));
        let not_taken = vec![
            op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created)),
            op(1, 2, 3, set(2, 0), None),
            op(0, 10, 11, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((1, 0))))),
        ];
        assert_eq!(check(&Znode, &not_taken), Ok(()));
        // An unknown create may take effect after its client gave up on it...
        let late = vec![
            op(1, 0, 1, ZnodeInput::Create { value: 7 }, None),
            op(0, 5, 6, ZnodeInput::Read, Some(ZnodeOutput::Read(None))),
            op(0, 7, 8, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((7, 0))))),
        ];
        assert_eq!(check(&Znode, &late), Ok(()));
        // ...but never before it was called.
        let early = vec![
            op(0, 0, 1, ZnodeInput::Read, Some(ZnodeOutput::Read(Some((7, 0))))),
            op(1, 2, 3, ZnodeInput::Create { value: 7 }, None),
        ];
        assert!(check(&Znode, &early).is_err());
    }

    #[test]
    fn histories_are_checked_per_key() {
        let history = vec![
            ("/a", op(0, 0, 1, ZnodeInput::Create { value: 1 }, Some(ZnodeOutput::Created))),
            ("/b", op(1, 0, 1, ZnodeInput::Create { value: 2 }, Some(ZnodeOutput::Created))),
            ("/b", op(1, 2, 3, ZnodeInput::Create { value: 3 }, Some(ZnodeOutput::Created))),
        ];
        let (key, _) = check_by_key(&Znode, &history).unwrap_err();
        assert_eq!(key, "/b");
        assert_eq!(check_by_key(&Znode, &history[..2]), Ok(()));
    }

    #[test]
    fn a_long_contended_history_is_checked_quickly() {
        // Four writers race conditional writes on one znode for 4,000 operations, each
        // learning the version from its own last outcome; a few outcomes are unknown.
        let mut history =
            vec![op(0, 0, 1, ZnodeInput::Create { value: 0 }, Some(ZnodeOutput::Created))];
        let mut version = 0;
        let mut known_version = [0i32; 4];
        let mut time = 10;
        for i in 1..4_000u64 {
            let process = (i % 4) as usize;
            let expected = known_version[process];
            let (output, next) = if expected == version {
                (Some(ZnodeOutput::Set { version: version + 1 }), version + 1)
            } else {
                (Some(ZnodeOutput::BadVersion), version)
            };
            let output = if i % 97 == 0 { None } else { output };
            known_version[process] = next;
            version = next;
            history.push(op(process, time, time + 3, set(i, expected), output));
            time += 2;
        }
        assert_eq!(check(&Znode, &history), Ok(()));
    }
}
