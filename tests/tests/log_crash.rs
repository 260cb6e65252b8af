//! Crash test: a child appends durably and is SIGKILLed at seeded random moments; after
//! every kill the log must reopen with every acknowledged record present and intact, and
//! accept appends. Single writers and group commit from several threads, both backends.
//!
//! Replay a failure with `ZABFLOW_CRASH_SEED=<seed printed by the failure>`. (The seed
//! fixes the kill delays and batch sizes; where the kill lands still depends on timing.)

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use zabflow_core::log::{BackendChoice, Log, LogOptions};
use zabflow_tests::log_records::{decode_record, encode_record};

const ROUNDS: u64 = 24;
const SEGMENT_BYTES: u64 = 64 << 10;
const CHECKER_WRITER: u32 = u32::MAX;
const DEFAULT_SEED: u64 = 0x7a61_6266_6c6f_7701;

struct Round {
    backend: &'static str,
    group: bool,
    threads: u32,
    kill_after: Duration,
}

fn plan_round(rng: &mut SmallRng, round: u64) -> Round {
    Round {
        backend: if round % 2 == 0 { "pwrite" } else { "io_uring" },
        group: round % 3 == 2,
        threads: rng.gen_range(2..=4),
        kill_after: Duration::from_millis(rng.gen_range(5..120)),
    }
}

/// Runs the child until the kill; returns its complete stdout lines.
fn run_child(dir: &Path, round: &Round, seed: u64) -> Vec<String> {
    let mode = if round.group { "group" } else { "single" };
    let mut child = Command::new(env!("CARGO_BIN_EXE_log_crash_child"))
        .arg(dir)
        .args([round.backend, mode, &round.threads.to_string(), &seed.to_string()])
        .arg(SEGMENT_BYTES.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn log_crash_child");
    let mut stdout = child.stdout.take().expect("stdout");
    let collector = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).expect("read child stdout");
        text
    });
    std::thread::sleep(round.kill_after);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait for the child");
    assert!(!status.success(), "the child ran to completion: {status:?}");
    let text = collector.join().expect("collector");
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    complete.lines().map(str::to_string).collect()
}

/// Checks the reopened log against the acknowledgements; returns the batches checked.
fn check_log(log: &Log, acks: &[String]) -> Result<usize, String> {
    let reader = log.reader();
    for line in acks {
        let fields: Vec<u64> = line.split(' ').map(|f| f.parse().expect("number")).collect();
        let [start, end, writer, first_sequence] = fields[..] else {
            return Err(format!("bad ack line {line:?}"));
        };
        for offset in start..end {
            let record = reader.read(offset).map_err(|e| e.to_string())?;
            let record = record.ok_or(format!("acknowledged offset {offset} is missing"))?;
            let expected = (writer as u32, first_sequence + offset - start);
            if decode_record(&record) != Some(expected) {
                return Err(format!("offset {offset} does not hold record {expected:?}"));
            }
        }
    }
    for record in reader.iter_from(log.first_offset()).map_err(|e| e.to_string())? {
        let record = record.map_err(|e| e.to_string())?;
        if decode_record(&record).is_none() {
            return Err(format!("offset {} holds a damaged record", record.offset()));
        }
    }
    Ok(acks.len())
}

fn crash_round(dir: &Path, rng: &mut SmallRng, round: u64, seed: u64) -> Result<usize, String> {
    let plan = plan_round(rng, round);
    let acks = run_child(dir, &plan, seed.wrapping_add(round));
    let options = LogOptions {
        segment_bytes: SEGMENT_BYTES,
        backend: BackendChoice::Pwrite,
        ..LogOptions::default()
    };
    let mut log = Log::open(dir, options).map_err(|e| format!("reopen: {e}"))?;
    let checked = check_log(&log, &acks)?;
    if log.recovery().torn_bytes_dropped > 0 {
        eprintln!("round {round}: recovery {:?}", log.recovery());
    }
    let record = encode_record(CHECKER_WRITER, round);
    let range = log.append(&[&record]).map_err(|e| format!("append after crash: {e}"))?;
    if range.start + 1 != log.next_offset() {
        return Err(format!("append after crash returned {range:?}"));
    }
    Ok(checked)
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let seed = std::env::var("ZABFLOW_CRASH_SEED")
        .map(|text| text.parse().expect("ZABFLOW_CRASH_SEED is a u64"))
        .unwrap_or(DEFAULT_SEED);
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acknowledged_batches = 0;
    for round in 0..ROUNDS {
        match crash_round(dir.path(), &mut rng, round, seed) {
            Ok(checked) => acknowledged_batches += checked,
            Err(message) => panic!("crash test failed (seed {seed}, round {round}): {message}"),
        }
    }
    eprintln!("{ROUNDS} kills, {acknowledged_batches} acknowledged batches verified (seed {seed})");
    assert!(acknowledged_batches >= ROUNDS as usize, "the children barely ran (seed {seed})");
}
