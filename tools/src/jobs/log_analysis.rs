//! The access-log analysis: the stream half of a log → stream processor → search index
//! pipeline. Parses common-log-format lines and, for every 10 s tumbling event-time window,
//! counts requests and errors per URL and per status code and ranks the top URLs.
//!
//! ```text
//! input  = access-log lines (zabflow_core::records::AccessEntry), one per log record
//! output = JSON lines, one object per result, fields always in this order:
//!   {"window_start":ms,"window_end":ms,"kind":"url","url":"/a","requests":n,"errors":n}
//!   {"window_start":ms,"window_end":ms,"kind":"status","status":404,"requests":n}
//!   {"window_start":ms,"window_end":ms,"kind":"summary","requests":n,"errors":n,
//!    "statuses":{"200":n,...},"top_urls":[{"url":"/a","requests":n,"errors":n},...]}
//! ```
//!
//! An error is a status of 400 or more. `statuses` lists codes in ascending order; the top
//! URLs are the [`TOP_URLS`] with the most requests, ties broken by URL, so every object is
//! a function of the window's records alone: the output is deterministic given the input.
//!
//! **How it is spread over shards.** Every line becomes three keyed records — one for its
//! URL, one for its status code, one for the window summary — keyed by an
//! [`AnalysisKey`]. URL and status counts spread over all shards by key group; the summary
//! (which needs every URL of the window to rank them) lands on one key, so one shard a
//! window does the ranking. Records travel by value (the engine's records are `Copy`), so
//! a URL is held inline, at most [`URL_BYTES_MAX`] bytes: a longer one is cut there and
//! ends in `...`.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use zabflow_core::engine::state_codec::{take_bytes, DecodeResult};
use zabflow_core::engine::{
    Emitter, Field, Job, JobConfig, JobMetrics, Row, RowWriter, Sink, Stamped, StateCodec,
    StateDecodeError, Tumbling, Window,
};
use zabflow_core::records::AccessEntry;

use super::input::{InputLog, INPUT_DISORDER_MS_MAX};
use super::{Checkpoints, Outcome};

/// The window size, in milliseconds.
pub const WINDOW_MS: u64 = 10_000;
/// URLs ranked in each window's summary.
pub const TOP_URLS: usize = 5;
/// Longest URL kept, in bytes.
pub const URL_BYTES_MAX: usize = 96;

/// A URL held inline (records are `Copy`).
#[derive(Clone, Copy)]
pub struct InlineUrl {
    bytes: [u8; URL_BYTES_MAX],
    len: u8,
}

const _: () = assert!(URL_BYTES_MAX <= u8::MAX as usize);

impl InlineUrl {
    /// `url`, cut to [`URL_BYTES_MAX`] bytes (at a character boundary, ending in `...`).
    pub fn new(url: &str) -> InlineUrl {
        let mut bytes = [0; URL_BYTES_MAX];
        let kept = if url.len() <= URL_BYTES_MAX {
            url
        } else {
            let mut end = URL_BYTES_MAX - 3;
            while !url.is_char_boundary(end) {
                end -= 1;
            }
            &url[..end]
        };
        bytes[..kept.len()].copy_from_slice(kept.as_bytes());
        let mut len = kept.len();
        if kept.len() < url.len() {
            bytes[len..len + 3].copy_from_slice(b"...");
            len += 3;
        }
        InlineUrl { bytes, len: len as u8 }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("built from a str")
    }
}

impl PartialEq for InlineUrl {
    fn eq(&self, other: &InlineUrl) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for InlineUrl {}

impl Hash for InlineUrl {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for InlineUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One parsed access-log line, as much of it as the analysis uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRecord {
    pub status: u16,
    pub url: InlineUrl,
}

impl AccessRecord {
    fn is_error(&self) -> bool {
        self.status >= 400
    }
}

/// Which result a keyed record counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnalysisKey {
    Url(InlineUrl),
    Status(u16),
    Summary,
}

/// Which of the three results a copy of a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Dimension {
    Url,
    Status,
    Summary,
}

/// A record on its way to one of its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensioned {
    pub dimension: Dimension,
    pub record: AccessRecord,
}

impl Dimensioned {
    fn key(&self) -> AnalysisKey {
        match self.dimension {
            Dimension::Url => AnalysisKey::Url(self.record.url),
            Dimension::Status => AnalysisKey::Status(self.record.status),
            Dimension::Summary => AnalysisKey::Summary,
        }
    }
}

// State codecs: window state holds keys and records, so a checkpoint can snapshot them.
//   InlineUrl = len:u8 | bytes[len]      AccessRecord = status:u16 | url
//   Dimension = tag:u8 (0 url, 1 status, 2 summary)     Dimensioned = dimension | record
//   AnalysisKey = tag:u8 (0 url | 1 status | 2 summary) | url? | status?

impl StateCodec for InlineUrl {
    fn encode_state(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        out.extend_from_slice(&self.bytes[..usize::from(self.len)]);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let len = usize::from(u8::decode_state(bytes)?);
        if len > URL_BYTES_MAX {
            return Err(StateDecodeError(format!("URL of {len} bytes (at most {URL_BYTES_MAX})")));
        }
        let text = std::str::from_utf8(take_bytes(bytes, len)?)
            .map_err(|_| StateDecodeError("URL is not UTF-8".to_owned()))?;
        Ok(InlineUrl::new(text))
    }
}

impl StateCodec for AccessRecord {
    fn encode_state(&self, out: &mut Vec<u8>) {
        self.status.encode_state(out);
        self.url.encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        Ok(AccessRecord { status: u16::decode_state(bytes)?, url: InlineUrl::decode_state(bytes)? })
    }
}

impl StateCodec for Dimension {
    fn encode_state(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        match u8::decode_state(bytes)? {
            0 => Ok(Dimension::Url),
            1 => Ok(Dimension::Status),
            2 => Ok(Dimension::Summary),
            tag => Err(StateDecodeError(format!("dimension tag {tag}"))),
        }
    }
}

impl StateCodec for Dimensioned {
    fn encode_state(&self, out: &mut Vec<u8>) {
        self.dimension.encode_state(out);
        self.record.encode_state(out);
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        let dimension = Dimension::decode_state(bytes)?;
        Ok(Dimensioned { dimension, record: AccessRecord::decode_state(bytes)? })
    }
}

impl StateCodec for AnalysisKey {
    fn encode_state(&self, out: &mut Vec<u8>) {
        match self {
            AnalysisKey::Url(url) => {
                out.push(0);
                url.encode_state(out);
            }
            AnalysisKey::Status(status) => {
                out.push(1);
                status.encode_state(out);
            }
            AnalysisKey::Summary => out.push(2),
        }
    }
    fn decode_state(bytes: &mut &[u8]) -> DecodeResult<Self> {
        match u8::decode_state(bytes)? {
            0 => Ok(AnalysisKey::Url(InlineUrl::decode_state(bytes)?)),
            1 => Ok(AnalysisKey::Status(u16::decode_state(bytes)?)),
            2 => Ok(AnalysisKey::Summary),
            tag => Err(StateDecodeError(format!("analysis key tag {tag}"))),
        }
    }
}

/// Parses one access-log line.
///
/// # Errors
/// A payload that is not UTF-8 or not a common-log-format line.
pub fn decode_access(payload: &[u8]) -> Result<Stamped<AccessRecord>, String> {
    let line = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_owned())?;
    let entry = AccessEntry::parse(line).map_err(|error| error.to_string())?;
    let record = AccessRecord { status: entry.status, url: InlineUrl::new(entry.url) };
    Ok(Stamped { timestamp: entry.timestamp_ms, record })
}

/// One output object (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalysisRow {
    Url {
        window: (u64, u64),
        url: String,
        requests: u64,
        errors: u64,
    },
    Status {
        window: (u64, u64),
        status: u16,
        requests: u64,
    },
    Summary {
        window: (u64, u64),
        requests: u64,
        errors: u64,
        statuses: Vec<(u16, u64)>,
        top: Vec<(String, u64, u64)>,
    },
}

/// JSON written as it is (a nested object or array built by [`AnalysisRow`]).
struct RawJson(String);

impl Field for RawJson {
    fn write_field(&self, buffer: &mut Vec<u8>, _json: bool) {
        buffer.extend_from_slice(self.0.as_bytes());
    }
}

fn json_string(text: &str) -> String {
    let mut buffer = Vec::new();
    text.write_field(&mut buffer, true);
    String::from_utf8(buffer).expect("escaped UTF-8")
}

impl Row for AnalysisRow {
    fn write_row(&self, out: &mut RowWriter<'_>) {
        let window = match self {
            AnalysisRow::Url { window, .. }
            | AnalysisRow::Status { window, .. }
            | AnalysisRow::Summary { window, .. } => *window,
        };
        out.field("window_start", &window.0);
        out.field("window_end", &window.1);
        match self {
            AnalysisRow::Url { url, requests, errors, .. } => {
                out.field("kind", &"url");
                out.field("url", &url.as_str());
                out.field("requests", requests);
                out.field("errors", errors);
            }
            AnalysisRow::Status { status, requests, .. } => {
                out.field("kind", &"status");
                out.field("status", status);
                out.field("requests", requests);
            }
            AnalysisRow::Summary { requests, errors, statuses, top, .. } => {
                out.field("kind", &"summary");
                out.field("requests", requests);
                out.field("errors", errors);
                let statuses: Vec<String> = statuses
                    .iter()
                    .map(|(status, count)| format!("\"{status}\":{count}"))
                    .collect();
                out.field("statuses", &RawJson(format!("{{{}}}", statuses.join(","))));
                let top: Vec<String> = top
                    .iter()
                    .map(|(url, requests, errors)| {
                        let url = json_string(url);
                        format!("{{\"url\":{url},\"requests\":{requests},\"errors\":{errors}}}")
                    })
                    .collect();
                out.field("top_urls", &RawJson(format!("[{}]", top.join(","))));
            }
        }
    }
}

/// What a window of one key emits.
fn analyse(
    key: &AnalysisKey,
    window: Window,
    records: &[Dimensioned],
    out: &mut Emitter<'_, AnalysisRow>,
) {
    let window = (window.start, window.end);
    let requests = records.len() as u64;
    let errors = records.iter().filter(|copy| copy.record.is_error()).count() as u64;
    match key {
        AnalysisKey::Url(url) => {
            out.emit(AnalysisRow::Url { window, url: url.as_str().to_owned(), requests, errors });
        }
        AnalysisKey::Status(status) => {
            out.emit(AnalysisRow::Status { window, status: *status, requests });
        }
        AnalysisKey::Summary => {
            let mut statuses = BTreeMap::new();
            let mut urls: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            for Dimensioned { record, .. } in records {
                *statuses.entry(record.status).or_insert(0) += 1;
                let counts = urls.entry(record.url.as_str()).or_insert((0, 0));
                counts.0 += 1;
                counts.1 += u64::from(record.is_error());
            }
            let mut ranked: Vec<(&str, (u64, u64))> = urls.into_iter().collect();
            // Most requests first; equal counts by URL (the BTreeMap order, kept by a stable sort).
            ranked.sort_by_key(|(_, (requests, _))| std::cmp::Reverse(*requests));
            let top = ranked
                .into_iter()
                .take(TOP_URLS)
                .map(|(url, (requests, errors))| (url.to_owned(), requests, errors))
                .collect();
            let statuses = statuses.into_iter().collect();
            out.emit(AnalysisRow::Summary { window, requests, errors, statuses, top });
        }
    }
}

/// Runs the job to the end of the input, checkpointed with `checkpoints`, writing through
/// `sink`, publishing its live numbers into `metrics`.
///
/// # Errors
/// What the engine's run fails with (a bad config, a panicked operator, a checkpoint or
/// coordination failure).
pub fn run<Snk: Sink<AnalysisRow>>(
    config: JobConfig,
    input: &InputLog,
    sink: impl Fn(usize) -> Snk + Send + Sync + 'static,
    checkpoints: Checkpoints,
    metrics: &JobMetrics,
) -> Outcome<Snk::Output> {
    let input = input.clone();
    let job = Job::new(config)
        .source("input", move |partition| {
            input.source(partition, decode_access, INPUT_DISORDER_MS_MAX)
        })
        .flat_map("dimensions", |record: AccessRecord, out: &mut Emitter<'_, Dimensioned>| {
            for dimension in [Dimension::Url, Dimension::Status, Dimension::Summary] {
                out.emit(Dimensioned { dimension, record });
            }
        })
        .key_by("by_dimension", Dimensioned::key)
        .window(Tumbling::of(WINDOW_MS))
        .process("analyse", analyse)
        .sink("output", sink)
        .observe(metrics);
    let (settings, coordinator) = checkpoints;
    job.run_checkpointed(settings, coordinator)
}
