//! Deterministic tests of `Log`, `LogReader` and group commit, once per backend.

use std::path::Path;

use zabflow_core::log::{BackendChoice, BackendKind, Durability, Log, LogOptions};
use zabflow_core::Error;
use zabflow_tests::log_records::BACKENDS;

fn options(backend: BackendChoice, segment_bytes: u64) -> LogOptions {
    LogOptions { segment_bytes, backend, ..LogOptions::default() }
}

fn payload(offset: u64) -> Vec<u8> {
    let len = (offset * 37 % 500) as usize;
    (0..len).map(|i| (offset as usize + i) as u8).collect()
}

fn append_range(log: &mut Log, count: u64, batch: u64) {
    let mut offset = log.next_offset();
    let end = offset + count;
    while offset < end {
        let records: Vec<Vec<u8>> = (offset..(offset + batch).min(end)).map(payload).collect();
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let range = log.append(&slices).expect("append");
        assert_eq!(range, offset..offset + records.len() as u64);
        offset = range.end;
    }
}

fn check_all(log: &Log) {
    let reader = log.reader();
    let first = log.first_offset();
    let mut expected = first;
    for record in reader.iter_from(first).expect("iter") {
        let record = record.expect("record");
        assert_eq!(record.offset(), expected);
        assert_eq!(record.payload(), payload(expected).as_slice(), "offset {expected}");
        expected += 1;
    }
    assert_eq!(expected, log.next_offset());
    for offset in (first..log.next_offset()).step_by(7) {
        let record = reader.read(offset).expect("read").expect("present");
        assert_eq!(&*record, payload(offset).as_slice());
    }
    assert!(reader.read(log.next_offset()).expect("read").is_none());
}

#[test]
fn append_read_roll_reopen_truncate() {
    for backend in BACKENDS {
        roll_reopen_truncate(options(backend, 4096));
    }
}

/// Zero-filled segments (prepared by a background spare) behave exactly like reserved ones,
/// and need reserved space.
#[test]
fn zero_filled_segments_roll_reopen_truncate() {
    for backend in BACKENDS {
        roll_reopen_truncate(LogOptions { zero_fill: true, ..options(backend, 4096) });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sparse = LogOptions { zero_fill: true, preallocate: false, ..LogOptions::default() };
    assert!(matches!(Log::open(dir.path(), sparse), Err(Error::InvalidOptions(_))));
}

fn roll_reopen_truncate(options: LogOptions) {
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), options.clone()).expect("open");
        assert_eq!((log.first_offset(), log.next_offset()), (0, 0));
        append_range(&mut log, 300, 7);
        log.roll().expect("roll");
        log.roll().expect("roll on an empty segment is a no-op");
        append_range(&mut log, 50, 50);
        check_all(&log);
        drop(log);
        let mut log = Log::open(dir.path(), options.clone()).expect("reopen");
        assert_eq!(log.recovery().torn_bytes_dropped, 0);
        assert_eq!(log.next_offset(), 350);
        check_all(&log);
        log.truncate_after(123).expect("truncate_after");
        assert_eq!(log.next_offset(), 123);
        check_all(&log);
        append_range(&mut log, 40, 3);
        log.truncate_before(200).expect("truncate_before");
        assert!(log.first_offset() > 0 && log.first_offset() <= 200);
        check_all(&log);
        let first = log.first_offset();
        assert!(matches!(log.reader().read(first - 1), Err(Error::OffsetOutOfRange { .. })));
        drop(log);
        let log = Log::open(dir.path(), options.clone()).expect("reopen");
        assert_eq!((log.first_offset(), log.next_offset()), (first, 163));
        check_all(&log);
    }
}

#[test]
fn auto_backend_and_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), LogOptions::default()).expect("open");
    eprintln!("Auto chose {}", log.backend());
    assert_eq!(BackendKind::IoUring.name(), "io_uring");
    assert_eq!(BackendKind::Pwrite.to_string(), "pwrite");
    let other = Log::open(dir.path(), LogOptions::default());
    assert!(matches!(other, Err(Error::Locked { .. })), "a second writer is refused");
}

#[test]
fn record_too_large_is_refused_without_writing() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), options(backend, 4096)).expect("open");
        let limit = log.record_bytes_max();
        let big = vec![1u8; limit];
        log.append(&[&big]).expect("a record of exactly the limit fits");
        let too_big = vec![1u8; limit + 1];
        let error = log.append(&[b"ok", &too_big]).expect_err("too large");
        assert!(matches!(error, Error::RecordTooLarge { .. }));
        assert_eq!(log.next_offset(), 1);
    }
}

#[test]
fn reader_on_another_thread_sees_appends() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), options(backend, 8192)).expect("open");
        let reader = log.reader();
        let total = 3000u64;
        let tail = std::thread::spawn(move || {
            let mut iter = reader.iter_from(0).expect("iter");
            let mut expected = 0;
            while expected < total {
                match iter.next() {
                    Some(record) => {
                        let record = record.expect("record");
                        assert_eq!(record.offset(), expected);
                        assert_eq!(record.payload(), payload(expected).as_slice());
                        expected += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
        });
        let buffered = LogOptions { durability: Durability::Buffered, ..options(backend, 8192) };
        assert_eq!(buffered.durability, Durability::Buffered);
        append_range(&mut log, total, 5);
        tail.join().expect("reader thread");
    }
}

#[test]
fn group_commit_many_appenders() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), options(backend, 16 << 10)).expect("open");
        let (appender, writer) = log.into_group_commit().expect("group commit");
        let threads: Vec<_> = (0..4u8)
            .map(|thread| {
                let appender = appender.clone();
                std::thread::spawn(move || {
                    let mut ranges = Vec::new();
                    for round in 0..50u8 {
                        let record = vec![thread; 10 + round as usize];
                        let range = appender.append(&[&record, &record]).expect("append");
                        assert_eq!(range.end - range.start, 2);
                        ranges.push((range, record));
                    }
                    ranges
                })
            })
            .collect();
        let reader = appender.reader();
        for thread in threads {
            for (range, record) in thread.join().expect("appender thread") {
                for offset in range {
                    assert_eq!(&*reader.read(offset).expect("read").expect("present"), &record[..]);
                }
            }
        }
        let stats = appender.stats();
        assert_eq!((stats.requests, stats.records), (200, 400));
        assert!(stats.fsyncs >= 1 && stats.fsyncs <= 200 + 10, "{stats:?}");
        eprintln!("{backend:?}: {stats:?}");
        drop(appender);
        let log = writer.join().expect("writer thread");
        assert_eq!(log.next_offset(), 400);
        drop(log);
        assert_eq!(
            Log::open(Path::new(dir.path()), options(backend, 16 << 10))
                .expect("reopen")
                .next_offset(),
            400
        );
    }
}

#[test]
fn reopening_with_larger_segments_admits_larger_records() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), options(backend, 4096)).expect("open");
        log.append(&[b"small"]).expect("append");
        log.roll().expect("roll");
        drop(log);
        let mut log = Log::open(dir.path(), options(backend, 64 << 10)).expect("reopen");
        let big = vec![9u8; 32 << 10];
        assert_eq!(log.append(&[&big]).expect("a large record fits"), 1..2);
        log.append(&[&big, &big, b"tail"]).expect("append across segments");
        drop(log);
        let log = Log::open(dir.path(), options(backend, 4096)).expect("reopen small");
        assert_eq!(log.next_offset(), 5);
        assert_eq!(&*log.reader().read(3).expect("read").expect("present"), &big[..]);
    }
}
