//! Property test: random operations on a log with tiny segments against a `Vec` model,
//! once per backend and durability.

use proptest::prelude::*;
use zabflow_core::log::{BackendChoice, Durability, Log, LogOptions};
use zabflow_tests::log_records::BACKENDS;

const SEGMENT_BYTES: u64 = 4096;

#[derive(Clone, Debug)]
enum Operation {
    Append(Vec<Vec<u8>>),
    Roll,
    TruncateAfter(u8),
    TruncateBefore(u8),
    Reopen,
    Sync,
}

fn record() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => proptest::collection::vec(any::<u8>(), 1000..4056),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        10 => proptest::collection::vec(record(), 0..12).prop_map(Operation::Append),
        1 => Just(Operation::Roll),
        1 => any::<u8>().prop_map(Operation::TruncateAfter),
        1 => any::<u8>().prop_map(Operation::TruncateBefore),
        1 => Just(Operation::Reopen),
        1 => Just(Operation::Sync),
    ]
}

/// The records the log should hold: `records[i]` has offset `first + i`.
struct Model {
    first: u64,
    records: Vec<Vec<u8>>,
}

impl Model {
    fn next(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    /// The offset `fraction`/255 of the way through the model.
    fn point(&self, fraction: u8) -> u64 {
        self.first + self.records.len() as u64 * u64::from(fraction) / 255
    }
}

fn check(log: &Log, model: &mut Model) {
    assert_eq!(log.next_offset(), model.next());
    let first = log.first_offset();
    assert!(first >= model.first && first <= model.next(), "first {first}");
    model.records.drain(..(first - model.first) as usize);
    model.first = first;
    let reader = log.reader();
    let mut count = 0;
    for (record, expected) in reader.iter_from(first).expect("iter").zip(&model.records) {
        assert_eq!(record.expect("record").payload(), expected.as_slice());
        count += 1;
    }
    assert_eq!(count, model.records.len());
    for (index, expected) in model.records.iter().enumerate().step_by(5) {
        let record = reader.read(first + index as u64).expect("read").expect("present");
        assert_eq!(&*record, expected.as_slice());
    }
}

fn run(backend: BackendChoice, durability: Durability, operations: Vec<Operation>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options =
        LogOptions { segment_bytes: SEGMENT_BYTES, backend, durability, ..LogOptions::default() };
    let mut log = Log::open(dir.path(), options.clone()).expect("open");
    let mut model = Model { first: 0, records: Vec::new() };
    for operation in operations {
        match operation {
            Operation::Append(batch) => {
                let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                let range = log.append(&slices).expect("append");
                assert_eq!(range, model.next()..model.next() + batch.len() as u64);
                model.records.extend(batch);
            }
            Operation::Roll => log.roll().expect("roll"),
            Operation::TruncateAfter(fraction) => {
                let end = model.point(fraction);
                log.truncate_after(end).expect("truncate_after");
                model.records.truncate((end - model.first) as usize);
            }
            Operation::TruncateBefore(fraction) => {
                let offset = model.point(fraction);
                log.truncate_before(offset).expect("truncate_before");
                assert!(log.first_offset() <= offset.max(model.first));
            }
            Operation::Reopen => {
                drop(log);
                log = Log::open(dir.path(), options.clone()).expect("reopen");
                assert_eq!(log.recovery().torn_bytes_dropped, 0);
            }
            Operation::Sync => log.sync().expect("sync"),
        }
        check(&log, &mut model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        operations in proptest::collection::vec(operation(), 1..40),
        durable in any::<bool>(),
    ) {
        let durability = if durable { Durability::Durable } else { Durability::Buffered };
        for backend in BACKENDS {
            run(backend, durability, operations.clone());
        }
    }
}
