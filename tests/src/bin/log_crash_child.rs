//! Child program of the log crash test: appends to a log durably until it is killed, and
//! prints one line per acknowledged batch (flushed before the next append):
//!
//! ```text
//! line = start " " end " " writer " " first_sequence "\n"
//! ```
//!
//! meaning offsets `start..end` hold records (`writer`, `first_sequence + i`) as encoded by
//! `zabflow_tests::log_records`. Usage:
//! `log_crash_child DIR pwrite|io_uring single|group THREADS SEED SEGMENT_BYTES`.

use std::io::Write;
use std::path::PathBuf;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use zabflow_core::log::{BackendChoice, Log, LogOptions};
use zabflow_tests::log_records::encode_record;

const BATCH_RECORDS_MAX: u64 = 8;

struct Arguments {
    dir: PathBuf,
    backend: BackendChoice,
    group: bool,
    threads: u32,
    seed: u64,
    segment_bytes: u64,
}

fn parse_arguments() -> Arguments {
    let arguments: Vec<String> = std::env::args().collect();
    assert_eq!(arguments.len(), 7, "usage: DIR BACKEND MODE THREADS SEED SEGMENT_BYTES");
    let backend = match arguments[2].as_str() {
        "pwrite" => BackendChoice::Pwrite,
        "io_uring" => BackendChoice::IoUring,
        other => panic!("unknown backend {other}"),
    };
    Arguments {
        dir: PathBuf::from(&arguments[1]),
        backend,
        group: arguments[3] == "group",
        threads: arguments[4].parse().expect("THREADS"),
        seed: arguments[5].parse().expect("SEED"),
        segment_bytes: arguments[6].parse().expect("SEGMENT_BYTES"),
    }
}

fn print_ack(range: std::ops::Range<u64>, writer: u32, first_sequence: u64) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{} {} {writer} {first_sequence}", range.start, range.end).expect("stdout");
    stdout.flush().expect("flush stdout");
}

fn batch(writer: u32, first_sequence: u64, count: u64) -> Vec<Vec<u8>> {
    (first_sequence..first_sequence + count).map(|s| encode_record(writer, s)).collect()
}

fn run_single(mut log: Log, seed: u64) -> ! {
    let mut rng = SmallRng::seed_from_u64(seed);
    loop {
        let first = log.next_offset();
        let records = batch(0, first, rng.gen_range(1..=BATCH_RECORDS_MAX));
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let range = log.append(&slices).expect("append");
        assert_eq!(range.start, first);
        print_ack(range, 0, first);
    }
}

fn run_group(log: Log, threads: u32, seed: u64) -> ! {
    let (appender, _writer) = log.into_group_commit().expect("group commit");
    for writer in 1..=threads {
        let appender = appender.clone();
        std::thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(seed ^ u64::from(writer) << 32);
            let mut sequence = 0u64;
            loop {
                let records = batch(writer, sequence, rng.gen_range(1..=BATCH_RECORDS_MAX));
                let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                let range = appender.append(&slices).expect("append");
                print_ack(range, writer, sequence);
                sequence += records.len() as u64;
            }
        });
    }
    loop {
        std::thread::park();
    }
}

fn main() {
    let arguments = parse_arguments();
    let options = LogOptions {
        segment_bytes: arguments.segment_bytes,
        backend: arguments.backend,
        ..LogOptions::default()
    };
    let log = Log::open(&arguments.dir, options).expect("open");
    if arguments.group {
        run_group(log, arguments.threads, arguments.seed)
    } else {
        run_single(log, arguments.seed)
    }
}
