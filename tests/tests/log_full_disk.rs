//! A full disk: appends fail with ENOSPC, nothing acknowledged is lost, and the same log
//! works again once space is freed. Runs on a small tmpfs mounted for the test (tests run
//! as root); if the mount fails, the test fails: it never skips.
//!
//! Both backends, and both preallocated segments (the error comes from creating the next
//! segment) and sparse ones (the error comes from the backend's write itself); and group
//! commit, where a failed group fails only its own requests.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zabflow_core::log::{BackendChoice, Log, LogOptions};
use zabflow_core::Error;
use zabflow_tests::log_records::{decode_record, encode_record, BACKENDS};

const TMPFS_BYTES: u64 = 512 << 10;
const SEGMENT_BYTES: u64 = 64 << 10;

/// A mounted tmpfs, unmounted when dropped (also when the test panics).
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    fn new(path: &Path, bytes: u64) -> TmpfsMount {
        fs::create_dir_all(path).expect("create mount point");
        let target = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
        let data = CString::new(format!("size={bytes}")).expect("no NUL");
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let result = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            result,
            0,
            "mounting a tmpfs at {} failed: {}; the full-disk test needs root (CAP_SYS_ADMIN)",
            path.display(),
            std::io::Error::last_os_error()
        );
        TmpfsMount { path: path.to_path_buf() }
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).expect("path without NUL");
        // SAFETY: `target` is a NUL-terminated string that outlives the call.
        let result = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        if result != 0 {
            eprintln!("umount {} failed: {}", self.path.display(), std::io::Error::last_os_error());
        }
    }
}

/// Writes a file until the filesystem is full.
fn fill(path: &Path) {
    let mut file = File::create(path).expect("create filler");
    let chunk = vec![0xa5u8; 4096];
    loop {
        if let Err(error) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "filler: {error}");
            return;
        }
    }
}

/// Appends batches of 8 records until an append fails; returns the acknowledged count and
/// the error.
fn append_until_error(log: &mut Log, sequence: &mut u64) -> Error {
    for _ in 0..10_000 {
        let records: Vec<Vec<u8>> =
            (*sequence..*sequence + 8).map(|s| encode_record(0, s)).collect();
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        match log.append(&slices) {
            Ok(range) => {
                assert_eq!(range.start, *sequence);
                *sequence = range.end;
            }
            Err(error) => return error,
        }
    }
    panic!("the disk never filled up");
}

fn check_records(log: &Log, count: u64) {
    assert_eq!(log.next_offset(), count);
    let reader = log.reader();
    for (expected, record) in (0..count).zip(reader.iter_from(0).expect("iter")) {
        let record = record.expect("record");
        assert_eq!(decode_record(&record), Some((0, expected)), "offset {expected}");
    }
}

fn full_disk_case(root: &Path, backend: BackendChoice, preallocate: bool) {
    let mount = TmpfsMount::new(root, TMPFS_BYTES);
    let dir = mount.path.join("log");
    let options =
        LogOptions { segment_bytes: SEGMENT_BYTES, backend, preallocate, ..LogOptions::default() };
    let mut log = Log::open(&dir, options.clone()).expect("open");
    let mut acknowledged = 0u64;
    for _ in 0..4 {
        let record = encode_record(0, acknowledged);
        acknowledged = log.append(&[&record]).expect("append before the disk fills").end;
    }
    let filler = mount.path.join("filler");
    fill(&filler);
    let error = append_until_error(&mut log, &mut acknowledged);
    let case = format!("{backend:?}, preallocate {preallocate}");
    eprintln!("{case}: first error: {error}");
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{case}: {error}");
    // The failed batch was undone: the log is not poisoned and keeps failing cleanly.
    let again = append_until_error(&mut log, &mut acknowledged);
    assert_eq!(again.raw_os_error(), Some(libc::ENOSPC), "{case}: {again}");
    check_records(&log, acknowledged);
    drop(log);

    let mut log = Log::open(&dir, options.clone()).expect("reopen on a full disk");
    check_records(&log, acknowledged);
    fs::remove_file(&filler).expect("free space");
    let mut sequence = acknowledged;
    for _ in 0..40 {
        let records: Vec<Vec<u8>> = (sequence..sequence + 8).map(|s| encode_record(0, s)).collect();
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        sequence = log.append(&slices).expect("append after space returned").end;
    }
    check_records(&log, sequence);
    drop(log);
    let log = Log::open(&dir, options).expect("reopen");
    assert_eq!(log.recovery().torn_bytes_dropped, 0, "{case}");
    check_records(&log, sequence);
    eprintln!("{case}: {acknowledged} acknowledged before ENOSPC, {sequence} at the end");
}

#[test]
fn full_disk_fails_appends_and_recovers() {
    let temporary = tempfile::tempdir().expect("tempdir");
    for backend in BACKENDS {
        for preallocate in [true, false] {
            let root = temporary.path().join(format!("{backend:?}-{preallocate}"));
            full_disk_case(&root, backend, preallocate);
        }
    }
}

/// Group commit on a full disk: a group whose write fails reports ENOSPC to its own
/// requests only (groups that fit into space already allocated still succeed), nothing
/// acknowledged is lost, offsets stay exact, and once space is freed every later group
/// succeeds.
fn group_commit_full_disk_case(root: &Path, backend: BackendChoice) {
    const APPENDERS: u32 = 4;
    const SUCCESSES_AFTER_FREE: u64 = 20;
    let mount = TmpfsMount::new(root, TMPFS_BYTES);
    let dir = mount.path.join("log");
    let options = LogOptions {
        segment_bytes: SEGMENT_BYTES,
        backend,
        preallocate: false,
        ..LogOptions::default()
    };
    let log = Log::open(&dir, options.clone()).expect("open");
    let (appender, owner) = log.into_group_commit().expect("group commit");
    let first = encode_record(0, 0);
    assert_eq!(appender.append(&[&first]).expect("append before the disk fills"), 0..1);
    let filler = mount.path.join("filler");
    fill(&filler);
    let errors = Arc::new(AtomicU64::new(0));
    let freed = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (1..=APPENDERS)
        .map(|writer| {
            let (appender, errors, freed) = (appender.clone(), errors.clone(), freed.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let mut successes_after_free = 0;
                for sequence in 0..100_000u64 {
                    let after_free = freed.load(Ordering::Acquire);
                    let record = encode_record(writer, sequence);
                    match appender.append(&[&record]) {
                        Ok(range) => {
                            assert_eq!(range.end - range.start, 1);
                            acknowledged.push((range.start, sequence));
                            successes_after_free += u64::from(after_free);
                            if successes_after_free == SUCCESSES_AFTER_FREE {
                                return acknowledged;
                            }
                        }
                        Err(error) => {
                            assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
                            assert!(!after_free, "a request made after space was freed failed");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                panic!("appender {writer} never finished");
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while errors.load(Ordering::Relaxed) < 8 {
        assert!(Instant::now() < deadline, "no group failed on a full disk");
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::remove_file(&filler).expect("free space");
    freed.store(true, Ordering::Release);

    let reader = appender.reader();
    let mut offsets = vec![0];
    for (thread, writer) in threads.into_iter().zip(1..) {
        for (offset, sequence) in thread.join().expect("appender thread") {
            let record = reader.read(offset).expect("read").expect("acknowledged record");
            assert_eq!(decode_record(&record), Some((writer, sequence)), "offset {offset}");
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    let acknowledged = offsets.len() as u64;
    assert!(offsets.iter().copied().eq(0..acknowledged), "offsets are exact and dense");
    let stats = appender.stats();
    assert_eq!(stats.requests, acknowledged, "{stats:?}");
    assert!(stats.failed_appends > 0, "{stats:?}");
    drop(appender);
    let log = owner.join().expect("owner thread");
    assert_eq!(log.next_offset(), acknowledged);
    drop(log);
    let log = Log::open(&dir, options).expect("reopen");
    assert_eq!(log.recovery().torn_bytes_dropped, 0);
    assert_eq!(log.next_offset(), acknowledged);
    eprintln!(
        "{backend:?}: {acknowledged} acknowledged, {} failed requests",
        errors.load(Ordering::Relaxed)
    );
}

#[test]
fn group_commit_full_disk_fails_only_its_own_groups() {
    let temporary = tempfile::tempdir().expect("tempdir");
    for backend in BACKENDS {
        group_commit_full_disk_case(&temporary.path().join(format!("group-{backend:?}")), backend);
    }
}
