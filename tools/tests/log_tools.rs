//! `zabflow log gen` and `zabflow log dump [--verify]` as a user runs them: the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zabflow_core::log::{Log, LogOptions};
use zabflow_core::records::{AccessEntry, KeyedEvent};

fn zabflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zabflow")).args(args).output().unwrap()
}

fn succeed(args: &[&str]) -> String {
    let output = zabflow(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "zabflow {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr.
fn refuse(args: &[&str]) -> String {
    let output = zabflow(args);
    assert!(!output.status.success(), "zabflow {args:?} succeeded");
    String::from_utf8(output.stderr).unwrap()
}

fn generate(out: &Path, kind: &str, records: u64, partitions: u32, seed: u64) {
    let (records, partitions, seed) =
        (records.to_string(), partitions.to_string(), seed.to_string());
    let out = out.to_str().unwrap();
    succeed(&[
        "log",
        "gen",
        "--out",
        out,
        "--kind",
        kind,
        "--records",
        &records,
        "--partitions",
        &partitions,
        "--seed",
        &seed,
        "--keys",
        "50",
    ]);
}

/// Every file under `dir` (relative path, bytes), sorted, without the lock files.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().unwrap() != "LOCK" {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path.strip_prefix(dir).unwrap().to_owned(), bytes));
            }
        }
    }
    files.sort();
    files
}

/// The records of a partition, read with the log's own reader.
fn read_partition(dir: &Path) -> Vec<Vec<u8>> {
    let log = Log::open(dir, LogOptions::default()).unwrap();
    let reader = log.reader();
    let records: Vec<Vec<u8>> =
        reader.iter_from(0).unwrap().map(|record| record.unwrap().payload().to_vec()).collect();
    records
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["keyed", "access"] {
        let (first, second, third) =
            (dir.path().join(kind), dir.path().join(format!("{kind}2")), dir.path().join("x"));
        generate(&first, kind, 5_000, 3, 42);
        generate(&second, kind, 5_000, 3, 42);
        let files = tree(&first);
        assert_eq!(files.len(), 4, "a manifest and one segment per partition: {files:?}");
        assert!(files == tree(&second), "{kind}: same seed, different bytes");
        generate(&third, kind, 5_000, 3, 43);
        assert!(files != tree(&third), "{kind}: another seed wrote the same log");
        std::fs::remove_dir_all(&third).unwrap();
    }
    // gen refuses to write over a log.
    let first = dir.path().join("keyed");
    let stderr = refuse(&[
        "log",
        "gen",
        "--out",
        first.to_str().unwrap(),
        "--kind",
        "keyed",
        "--records",
        "1",
    ]);
    assert!(stderr.contains("already holds a log"), "{stderr}");
}

#[test]
fn dump_prints_every_record_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let keyed = dir.path().join("keyed");
    generate(&keyed, "keyed", 1_001, 2, 7);
    let dump = succeed(&["log", "dump", keyed.to_str().unwrap()]);
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 1_001);
    for partition in 0..2 {
        let records = read_partition(&keyed.join(format!("partition-{partition}")));
        assert_eq!(records.len(), if partition == 0 { 501 } else { 500 });
        let prefix = format!("partition-{partition} ");
        let printed: Vec<&&str> = lines.iter().filter(|line| line.starts_with(&prefix)).collect();
        assert_eq!(printed.len(), records.len());
        for (offset, (line, payload)) in printed.iter().zip(&records).enumerate() {
            let event = KeyedEvent::decode(payload).expect("a keyed event");
            assert!(event.key < 50 && event.value < 1000);
            let expected = format!(
                "partition-{partition} {offset} time_ms={} key={} value={}",
                event.event_time_ms, event.key, event.value
            );
            assert_eq!(**line, expected);
        }
    }

    let access = dir.path().join("access");
    generate(&access, "access", 300, 1, 7);
    let dump = succeed(&["log", "dump", access.to_str().unwrap()]);
    let records = read_partition(&access.join("partition-0"));
    let mut statuses = std::collections::BTreeSet::new();
    for (offset, (line, payload)) in dump.lines().zip(&records).enumerate() {
        let text = std::str::from_utf8(payload).unwrap();
        assert_eq!(line, format!("partition-0 {offset} {text}"));
        statuses.insert(AccessEntry::parse(text).unwrap().status);
    }
    assert!(statuses.contains(&200) && statuses.contains(&404) && statuses.contains(&500));

    // A log without a manifest is printed as hex; a single log directory works too.
    let plain = dir.path().join("plain");
    let mut log = Log::open(&plain, LogOptions::default()).unwrap();
    log.append(&[b"\x01\x02", b"hi"]).unwrap();
    drop(log);
    let dump = succeed(&["log", "dump", plain.to_str().unwrap()]);
    assert_eq!(dump, ". 0 0102\n. 1 6869\n");
    let verified = succeed(&["log", "dump", "--verify", plain.to_str().unwrap()]);
    assert!(verified.contains("2 records"), "{verified}");
}

/// Byte position of the frame of `offset` in the first segment of `dir`.
fn frame_position(dir: &Path, offset: u64) -> (PathBuf, usize) {
    let segment = dir.join(format!("{:020}.log", 0));
    let mut position = 32;
    for record in read_partition(dir).iter().take(offset as usize) {
        position += 8 + record.len();
    }
    (segment, position)
}

fn flip(path: &Path, position: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[position] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_names_the_damaged_file_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    generate(&input, "access", 400, 2, 9);
    let report = succeed(&["log", "dump", "--verify", input.to_str().unwrap()]);
    assert!(report.contains("partition-0: 200 records, offsets 0..200 (last 199)"), "{report}");
    assert!(report.contains("partition-1: 200 records"), "{report}");
    let pristine = tree(&input);

    // A byte in the middle of the log: the frame's CRC fails and valid frames follow.
    let partition = input.join("partition-1");
    let (segment, position) = frame_position(&partition, 100);
    flip(&segment, position + 20);
    let stderr = refuse(&["log", "dump", "--verify", input.to_str().unwrap()]);
    assert!(stderr.contains(&format!("{}", segment.display())), "{stderr}");
    assert!(stderr.contains(&format!("at byte {position}")), "{stderr}");
    // Printing stops at the damage too, after the records before it.
    let output = zabflow(&["log", "dump", input.to_str().unwrap()]);
    assert!(!output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 200 + 100);
    flip(&segment, position + 20);

    // The last record's byte: recovery would call it a torn tail and cut it; verify refuses.
    let (segment, position) = frame_position(&partition, 199);
    flip(&segment, position + 9);
    let stderr = refuse(&["log", "dump", "--verify", input.to_str().unwrap()]);
    assert!(stderr.contains(&format!("at byte {position}")), "{stderr}");
    flip(&segment, position + 9);
    assert!(tree(&input) == pristine, "verify must not modify the log");

    // A record that is intact but not of the manifest's kind, and a missing record.
    let mut log = Log::open(&partition, LogOptions::default()).unwrap();
    log.append(&[b"not an access line"]).unwrap();
    drop(log);
    let stderr = refuse(&["log", "dump", "--verify", input.to_str().unwrap()]);
    assert!(stderr.contains("partition-1 offset 200"), "{stderr}");
    let mut log = Log::open(&partition, LogOptions::default()).unwrap();
    log.truncate_after(150).unwrap();
    drop(log);
    let stderr = refuse(&["log", "dump", "--verify", input.to_str().unwrap()]);
    assert!(stderr.contains("holds 150 records") && stderr.contains("says 200"), "{stderr}");

    let stderr = refuse(&["log", "dump", "--verify", dir.path().join("nope").to_str().unwrap()]);
    assert!(stderr.contains("not a directory"), "{stderr}");
}
