//! `zabflow log gen|dump`: write a deterministic input log, print or verify a log.
//!
//! ```text
//! DIR/MANIFEST          "zabflow-input-log 1" line, then key=value lines: kind, records,
//!                       partitions, seed, keys, partition-<i>=<records>
//! DIR/partition-<i>/    one zabflow_core::log per partition (encodings: zabflow_core::records)
//! ```
//!
//! **Determinism.** Every byte derives from the seed through SplitMix64 (no library RNG whose
//! sequence could change between versions) and a fixed start time, so two runs with the same
//! arguments write identical segment files.
//!
//! **Reading never writes.** `dump` and `verify` scan the segment files read-only (opening a
//! `Log` would take its lock and repair a torn tail): every frame CRC is checked, and
//! anything after the last valid frame that is not zero is damage, reported with its file
//! and byte position. `verify` also checks the segments' base offsets, that every record
//! decodes as the manifest's kind, and the record counts the manifest promises.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use zabflow_core::log::frame::{check_frame, FrameCheck};
use zabflow_core::log::{Durability, Log, LogOptions};
use zabflow_core::records::{AccessEntry, KeyedEvent};

use crate::error::ToolError;

/// Records appended per `Log::append` call while generating.
const GEN_BATCH_RECORDS: usize = 4096;
/// Largest partition count `log gen` accepts.
const PARTITIONS_MAX: u32 = 1024;
/// Event time of the first generated record: 2024-01-01T00:00:00Z, in milliseconds.
const GEN_START_MS: u64 = 1_704_067_200_000;
/// Event-time step between consecutive records of a partition, in milliseconds.
const GEN_STEP_MS: u64 = 10;
/// Largest backwards jitter of a keyed event's time (bounded disorder), in milliseconds.
const GEN_DISORDER_MS: u64 = 500;
/// Bytes of a segment file header (see `zabflow_core::log`).
const SEGMENT_HEADER_BYTES: usize = 32;
const SEGMENT_MAGIC: &[u8; 8] = b"ZABFLOG\0";
const MANIFEST_NAME: &str = "MANIFEST";
const MANIFEST_FIRST_LINE: &str = "zabflow-input-log 1";

/// `zabflow log …`
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Write a deterministic input log: one log per partition under DIR.
    Gen(GenArgs),
    /// Print a log's committed records (decoded when DIR has a manifest), or verify it.
    Dump(DumpArgs),
}

/// What `log gen` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// 24-byte keyed events: event time, key, value.
    Keyed,
    /// Web access-log lines (common log format): time, client, request, status, bytes.
    Access,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Keyed => "keyed",
            Kind::Access => "access",
        }
    }
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// The directory to create (must not hold a log already).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum)]
    kind: Kind,
    /// Records in all, spread evenly over the partitions.
    #[arg(long)]
    records: u64,
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Distinct keys (keyed) or URLs (access).
    #[arg(long, default_value_t = 1000)]
    keys: u64,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// A log directory, or an input log of `partition-<i>` logs.
    dir: PathBuf,
    /// Check instead of printing: CRCs, clean tails, offsets, record decoding and counts.
    #[arg(long)]
    verify: bool,
    /// Print only the committed records of a job's output (`zabflow job run --output`):
    /// what its recorded checkpoints made visible, through the output's commit files.
    #[arg(long, conflicts_with = "verify")]
    committed: bool,
}

/// Runs a `log` command.
///
/// # Errors
/// I/O failures, bad arguments, and (for `dump`) damage, naming the file and byte.
pub fn run(command: LogCommand) -> Result<(), ToolError> {
    match command {
        LogCommand::Gen(args) => generate(&args),
        LogCommand::Dump(args) => dump(&args),
    }
}

fn fail(message: impl Into<String>) -> ToolError {
    ToolError::Log(message.into())
}

// ---- gen --------------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and its sequence is fixed forever.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn generate(args: &GenArgs) -> Result<(), ToolError> {
    if args.partitions == 0 || args.partitions > PARTITIONS_MAX || args.keys == 0 {
        return Err(fail(format!("need 1..={PARTITIONS_MAX} partitions and at least one key")));
    }
    if args.out.join(MANIFEST_NAME).exists() || args.out.join("partition-0").exists() {
        return Err(fail(format!("{} already holds a log", args.out.display())));
    }
    let partitions = u64::from(args.partitions);
    let mut manifest = format!(
        "{MANIFEST_FIRST_LINE}\nkind={}\nrecords={}\npartitions={}\nseed={}\nkeys={}\n",
        args.kind.name(),
        args.records,
        args.partitions,
        args.seed,
        args.keys
    );
    for partition in 0..partitions {
        let records = args.records / partitions + u64::from(partition < args.records % partitions);
        write_partition(args, partition, records)?;
        let _ = writeln!(manifest, "partition-{partition}={records}");
    }
    let path = args.out.join(MANIFEST_NAME);
    fs::write(&path, manifest).map_err(|e| fail(format!("write {}: {e}", path.display())))?;
    crate::print_stdout(&format!(
        "wrote {} {} records in {} partitions to {}\n",
        args.records,
        args.kind.name(),
        args.partitions,
        args.out.display()
    ))
}

fn write_partition(args: &GenArgs, partition: u64, records: u64) -> Result<(), ToolError> {
    let dir = args.out.join(format!("partition-{partition}"));
    let options = LogOptions { durability: Durability::Buffered, ..LogOptions::default() };
    let mut log = Log::open(&dir, options)?;
    let mut random = SplitMix64(args.seed ^ partition.wrapping_mul(0xa076_1d64_78bd_642f));
    let mut payloads: Vec<Vec<u8>> = Vec::with_capacity(GEN_BATCH_RECORDS);
    let mut line = String::new();
    for index in 0..records {
        let time_ms = GEN_START_MS + index * GEN_STEP_MS;
        let mut payload = Vec::new();
        match args.kind {
            Kind::Keyed => keyed_event(&mut random, time_ms, args.keys).encode(&mut payload),
            Kind::Access => {
                line.clear();
                access_line(&mut random, time_ms, args.keys, &mut line);
                payload.extend_from_slice(line.as_bytes());
            }
        }
        payloads.push(payload);
        if payloads.len() == GEN_BATCH_RECORDS {
            append(&mut log, &mut payloads)?;
        }
    }
    append(&mut log, &mut payloads)?;
    log.sync()?;
    Ok(())
}

fn append(log: &mut Log, payloads: &mut Vec<Vec<u8>>) -> Result<(), ToolError> {
    let batch: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    log.append(&batch)?;
    payloads.clear();
    Ok(())
}

fn keyed_event(random: &mut SplitMix64, time_ms: u64, keys: u64) -> KeyedEvent {
    let disorder = random.below(GEN_DISORDER_MS + 1);
    KeyedEvent {
        event_time_ms: time_ms.saturating_sub(disorder),
        key: random.below(keys),
        value: random.below(1000),
    }
}

/// An access line: popular URLs come up more often (the smaller of two draws), and status
/// codes follow a fixed mix with a few percent of errors.
fn access_line(random: &mut SplitMix64, time_ms: u64, urls: u64, line: &mut String) {
    const PAGES: [&str; 4] = ["/products/", "/api/v1/items/", "/blog/", "/static/img/"];
    const STATUSES: [(u64, u16); 6] =
        [(80, 200), (85, 304), (90, 301), (96, 404), (99, 500), (100, 503)];
    let url_index = random.below(urls).min(random.below(urls));
    let page = PAGES[(url_index % PAGES.len() as u64) as usize];
    let url = format!("{page}{url_index}");
    let roll = random.below(100);
    let status = STATUSES.iter().find(|(bound, _)| roll < *bound).map_or(200, |(_, s)| *s);
    let client = format!("10.{}.{}.{}", random.below(256), random.below(256), random.below(256));
    let method = if random.below(10) == 0 { "POST" } else { "GET" };
    let entry = AccessEntry {
        timestamp_ms: time_ms / 1000 * 1000,
        client: &client,
        method,
        url: &url,
        status,
        bytes: random.below(50_000),
    };
    entry.write_line(line);
}

// ---- dump / verify ----------------------------------------------------------------------

/// What the manifest says about an input log.
#[derive(Debug, Default)]
struct Manifest {
    kind: Option<String>,
    partition_records: Vec<(String, u64)>,
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, ToolError> {
    let path = dir.join(MANIFEST_NAME);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(None);
    };
    let mut lines = text.lines();
    if lines.next() != Some(MANIFEST_FIRST_LINE) {
        return Err(fail(format!("{}: not a zabflow input-log manifest", path.display())));
    }
    let mut manifest = Manifest::default();
    for line in lines {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| fail(format!("{}: bad line {line:?}", path.display())))?;
        if key == "kind" {
            manifest.kind = Some(value.to_owned());
        } else if key.starts_with("partition-") {
            let records = value
                .parse()
                .map_err(|_| fail(format!("{}: bad count in {line:?}", path.display())))?;
            manifest.partition_records.push((key.to_owned(), records));
        }
    }
    Ok(Some(manifest))
}

/// The logs under `dir`: its `partition-<i>` directories, or `dir` itself.
fn log_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, ToolError> {
    if !dir.is_dir() {
        return Err(fail(format!("{} is not a directory", dir.display())));
    }
    let mut partitions = Vec::new();
    while dir.join(format!("partition-{}", partitions.len())).is_dir() {
        let name = format!("partition-{}", partitions.len());
        partitions.push((name.clone(), dir.join(name)));
    }
    if partitions.is_empty() {
        partitions.push((".".to_owned(), dir.to_owned()));
    }
    Ok(partitions)
}

fn dump(args: &DumpArgs) -> Result<(), ToolError> {
    if args.committed {
        let lines = crate::job::committed_output(&args.dir)?;
        let mut out = String::new();
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        return crate::print_stdout(&out);
    }
    let manifest = read_manifest(&args.dir)?;
    let kind = manifest
        .as_ref()
        .and_then(|manifest| manifest.kind.clone())
        .or_else(|| job_output_kind(&args.dir));
    let mut summary = String::new();
    for (name, dir) in log_dirs(&args.dir)? {
        let mut out = String::new();
        let mut decode_error = None;
        let scan = scan_log(&dir, &mut |offset, payload| {
            let decoded = describe(kind.as_deref(), payload);
            if decoded.is_err() && decode_error.is_none() {
                decode_error =
                    Some(format!("{name} offset {offset}: {}", decoded.clone().unwrap_err()));
            }
            if !args.verify {
                let text = decoded.unwrap_or_else(|error| format!("<{error}> {}", hex(payload)));
                let _ = writeln!(out, "{name} {offset} {text}");
                if out.len() > 1 << 16 {
                    crate::print_stdout(&std::mem::take(&mut out))?;
                }
            }
            Ok(())
        });
        // The records before any damage are printed before the damage is reported.
        crate::print_stdout(&out)?;
        let scan = scan?;
        if let Some(error) = decode_error {
            return Err(fail(format!(
                "record does not decode as {}: {error}",
                kind.unwrap_or_default()
            )));
        }
        check_count(manifest.as_ref(), &name, &dir, &scan)?;
        let last = scan.next_offset.checked_sub(1).map_or("none".to_owned(), |o| o.to_string());
        let _ = writeln!(
            summary,
            "{name}: {} records, offsets {}..{} (last {last}), {} segments: ok",
            scan.records, scan.first_offset, scan.next_offset, scan.segments
        );
    }
    if args.verify {
        crate::print_stdout(&summary)?;
    }
    Ok(())
}

fn check_count(
    manifest: Option<&Manifest>,
    name: &str,
    dir: &Path,
    scan: &LogScan,
) -> Result<(), ToolError> {
    let expected = manifest
        .and_then(|manifest| manifest.partition_records.iter().find(|(key, _)| key == name))
        .map(|(_, records)| *records);
    match expected {
        Some(records) if records != scan.records || scan.first_offset != 0 => Err(fail(format!(
            "{}: holds {} records at offsets {}..{}, the manifest says {records} from 0",
            dir.display(),
            scan.records,
            scan.first_offset,
            scan.next_offset
        ))),
        _ => Ok(()),
    }
}

/// A record as text: decoded when the kind is known.
fn describe(kind: Option<&str>, payload: &[u8]) -> Result<String, String> {
    match kind {
        Some("keyed") => {
            let event = KeyedEvent::decode(payload)
                .ok_or_else(|| format!("{} bytes is not a keyed event", payload.len()))?;
            Ok(format!("time_ms={} key={} value={}", event.event_time_ms, event.key, event.value))
        }
        Some("access") => {
            let line = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_owned())?;
            AccessEntry::parse(line).map_err(|error| error.to_string())?;
            Ok(line.to_owned())
        }
        Some("windowed-count") => crate::jobs::windowed_count::describe(payload),
        _ => Ok(hex(payload)),
    }
}

/// The job whose output `dir` holds, from its `JOB` marker (see `zabflow job run`).
fn job_output_kind(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join("JOB")).ok()?;
    let mut lines = text.lines();
    (lines.next() == Some(crate::job::OUTPUT_MARKER_FIRST_LINE)).then_some(())?;
    lines.find_map(|line| line.strip_prefix("job=")).map(str::to_owned)
}

fn hex(payload: &[u8]) -> String {
    let mut text = String::with_capacity(payload.len().min(64) * 2 + 3);
    for byte in payload.iter().take(64) {
        let _ = write!(text, "{byte:02x}");
    }
    if payload.len() > 64 {
        text.push_str("...");
    }
    text
}

/// What a scan calls for every record: its offset and payload.
type RecordVisitor<'a> = dyn FnMut(u64, &[u8]) -> Result<(), ToolError> + 'a;

/// What a read-only scan of one log found.
#[derive(Debug)]
struct LogScan {
    segments: usize,
    records: u64,
    first_offset: u64,
    next_offset: u64,
}

/// Reads every segment of the log in `dir` in order, passing each record to `visit`.
///
/// # Errors
/// Damage: a bad header, a base offset that does not continue the previous segment, a bad
/// frame followed by non-zero bytes (a torn tail counts: verification is stricter than
/// recovery) — each naming the file and byte position.
fn scan_log(dir: &Path, visit: &mut RecordVisitor<'_>) -> Result<LogScan, ToolError> {
    let segments = segment_files(dir)?;
    let mut scan =
        LogScan { segments: segments.len(), records: 0, first_offset: 0, next_offset: 0 };
    for (index, (base_offset, path)) in segments.iter().enumerate() {
        let bytes = fs::read(path).map_err(|e| fail(format!("read {}: {e}", path.display())))?;
        let damage = |position: usize, reason: &str| {
            fail(format!("damaged log segment {} at byte {position}: {reason}", path.display()))
        };
        check_header(&bytes, *base_offset).map_err(|reason| damage(0, reason))?;
        if index == 0 {
            scan.first_offset = *base_offset;
            scan.next_offset = *base_offset;
        } else if *base_offset != scan.next_offset {
            let reason = format!("base offset {base_offset}, expected {}", scan.next_offset);
            return Err(damage(0, &reason));
        }
        let mut position = SEGMENT_HEADER_BYTES;
        let reason = loop {
            match check_frame(&bytes[position..]) {
                FrameCheck::Valid { payload, frame_bytes } => {
                    visit(scan.next_offset, payload)?;
                    scan.records += 1;
                    scan.next_offset += 1;
                    position += frame_bytes as usize;
                }
                FrameCheck::End => break "non-zero bytes after the end of the data",
                FrameCheck::Invalid(reason) => break reason,
            }
        };
        if let Some(at) = bytes[position..].iter().position(|&byte| byte != 0) {
            let reason = format!("{reason} (first non-zero byte at {})", position + at);
            return Err(damage(position, &reason));
        }
    }
    Ok(scan)
}

/// `(base offset, path)` of every segment file in `dir`, in offset order.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, ToolError> {
    let entries = fs::read_dir(dir).map_err(|e| fail(format!("read {}: {e}", dir.display())))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| fail(format!("read {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name.strip_suffix(".log").filter(|digits| {
            digits.len() == 20 && digits.bytes().all(|byte| byte.is_ascii_digit())
        });
        if let Some(base) = base.and_then(|digits| digits.parse().ok()) {
            segments.push((base, entry.path()));
        }
    }
    if segments.is_empty() {
        return Err(fail(format!("{} holds no log segment", dir.display())));
    }
    segments.sort();
    Ok(segments)
}

fn check_header(bytes: &[u8], base_offset: u64) -> Result<(), &'static str> {
    if bytes.len() < SEGMENT_HEADER_BYTES {
        return Err("file shorter than a segment header");
    }
    if &bytes[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic");
    }
    let crc = u32::from_le_bytes(bytes[28..32].try_into().expect("four bytes"));
    if crc32c_of(&bytes[0..28]) != crc {
        return Err("segment header CRC mismatch");
    }
    let stored = u64::from_le_bytes(bytes[16..24].try_into().expect("eight bytes"));
    if stored != base_offset {
        return Err("the header's base offset differs from the file name's");
    }
    Ok(())
}

/// crc32c through the log's own frame CRC: `frame_crc(len, payload)` is
/// `crc32c(len ++ payload)`, so the first four bytes stand in for `len`.
fn crc32c_of(bytes: &[u8]) -> u32 {
    let (head, rest) = bytes.split_at(4);
    zabflow_core::log::frame::frame_crc(head.try_into().expect("four bytes"), rest)
}
