//! Recovery: torn tails are cut and reported, damage in the middle of the log is an error
//! that names the file and byte and leaves the files untouched. Once per backend.

use std::fs;
use std::path::{Path, PathBuf};

use zabflow_core::log::{BackendChoice, Log, LogOptions};
use zabflow_core::Error;
use zabflow_tests::log_records::BACKENDS;

const SEGMENT_BYTES: u64 = 16 << 10;
const HEADER_BYTES: usize = 32;

fn options(backend: BackendChoice) -> LogOptions {
    LogOptions { segment_bytes: SEGMENT_BYTES, backend, ..LogOptions::default() }
}

fn payload(offset: u64) -> Vec<u8> {
    vec![(offset % 251) as u8 + 1; 100 + offset as usize]
}

/// Writes `count` records one batch each; returns the byte position of every frame in the
/// first segment.
fn write_log(dir: &Path, backend: BackendChoice, count: u64) -> Vec<usize> {
    let mut log = Log::open(dir, options(backend)).expect("open");
    let mut positions = Vec::new();
    let mut position = HEADER_BYTES;
    for offset in 0..count {
        let record = payload(offset);
        log.append(&[&record]).expect("append");
        positions.push(position);
        position += 8 + record.len();
    }
    positions
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn edit_segment(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).expect("read segment");
    edit(&mut bytes);
    fs::write(path, bytes).expect("write segment");
}

fn check_records(log: &Log, count: u64) {
    let reader = log.reader();
    for offset in 0..count {
        let record = reader.read(offset).expect("read").expect("present");
        assert_eq!(&*record, payload(offset).as_slice(), "offset {offset}");
    }
}

/// Damages the last of 10 records as `damage` says, then checks the torn tail is cut.
fn torn_tail_case(backend: BackendChoice, name: &str, damage: impl FnOnce(&mut Vec<u8>, usize)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let positions = write_log(dir.path(), backend, 10);
    let segment = segment_path(dir.path(), 0);
    edit_segment(&segment, |bytes| damage(bytes, positions[9]));
    let mut log = Log::open(dir.path(), options(backend)).expect(name);
    let recovery = log.recovery().clone();
    assert!(recovery.torn_bytes_dropped > 0, "{name}: {recovery:?}");
    assert_eq!(recovery.torn_segment.as_deref(), Some(segment.as_path()), "{name}");
    assert_eq!(recovery.torn_position, Some(positions[9] as u64), "{name}");
    assert_eq!(log.next_offset(), 9, "{name}");
    check_records(&log, 9);
    let record = payload(9);
    assert_eq!(log.append(&[&record]).expect("append after recovery"), 9..10);
    drop(log);
    let log = Log::open(dir.path(), options(backend)).expect("reopen");
    assert_eq!(log.recovery().torn_bytes_dropped, 0, "{name}: the tail was zeroed");
    check_records(&log, 10);
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    for backend in BACKENDS {
        torn_tail_case(backend, "partial len", |bytes, last| {
            bytes[last + 2..].fill(0);
        });
        torn_tail_case(backend, "partial payload", |bytes, last| {
            bytes[last + 8 + 50..].fill(0);
        });
        torn_tail_case(backend, "flipped crc byte", |bytes, last| {
            bytes[last + 5] ^= 0x40;
        });
        torn_tail_case(backend, "garbage after the last frame", |bytes, last| {
            bytes[last + 3] ^= 0x01;
            let end = last + 8 + 109 + 300;
            for (index, byte) in bytes[last + 20..end].iter_mut().enumerate() {
                *byte = (index * 13 + 1) as u8 | 0x80;
            }
        });
    }
}

fn expect_corruption(dir: &Path, backend: BackendChoice, segment: &Path, position: usize) {
    let before = fs::read(segment).expect("read");
    let error = Log::open(dir, options(backend)).expect_err("corruption must be refused");
    let message = error.to_string();
    assert!(matches!(error, Error::Corrupt { .. }), "{message}");
    assert!(message.contains(&segment.display().to_string()), "{message}");
    assert!(message.contains(&format!("at byte {position}:")), "{message}");
    assert_eq!(fs::read(segment).expect("read"), before, "a refused open modifies nothing");
}

#[test]
fn corruption_in_the_middle_is_an_error() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let positions = write_log(dir.path(), backend, 20);
        let segment = segment_path(dir.path(), 0);
        edit_segment(&segment, |bytes| bytes[positions[5] + 8 + 40] ^= 0x01);
        expect_corruption(dir.path(), backend, &segment, positions[5]);
        // A damaged header is refused too, whichever record it is.
        edit_segment(&segment, |bytes| {
            bytes[positions[5] + 8 + 40] ^= 0x01;
            bytes[positions[12]] ^= 0x04;
        });
        expect_corruption(dir.path(), backend, &segment, positions[12]);
    }
}

#[test]
fn damage_at_the_end_of_a_sealed_segment_is_an_error() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let positions = write_log(dir.path(), backend, 10);
        let mut log = Log::open(dir.path(), options(backend)).expect("open");
        log.roll().expect("roll");
        log.append(&[b"in the next segment"]).expect("append");
        drop(log);
        let segment = segment_path(dir.path(), 0);
        edit_segment(&segment, |bytes| bytes[positions[9] + 8 + 10] ^= 0x01);
        expect_corruption(dir.path(), backend, &segment, positions[9]);
    }
}
