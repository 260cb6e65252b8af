//! Sources and sinks end to end: a text file through a windowed job into CSV and JSON-lines
//! files; generated events into the segmented log (one partition per shard) and back out
//! through the log source; stdout and the counting blackhole.

use std::collections::BTreeMap;
use std::sync::Arc;
use zabflow_core::engine::{
    Count, CountingSink, Event, FileSink, Generator, GeneratorConfig, Job, JobConfig,
    LogPartitions, LogSink, RowFormat, Stamped, StdoutSink, TextFile, Tumbling, VecSource,
    WindowResult,
};

fn generator(events: u64) -> GeneratorConfig {
    GeneratorConfig { seed: 21, events, keys: 40, events_per_second: 1000, ..Default::default() }
}

/// Lines `user,timestamp`: the user and time of a click.
fn clicks_file() -> (TextFile, BTreeMap<(String, u64), u64>) {
    let mut text = String::new();
    let mut expected = BTreeMap::new();
    for index in 0..5000u64 {
        let (user, timestamp) = (format!("user{}", index * 7 % 13), index * 3);
        text.push_str(&format!("{user},{timestamp}\n"));
        *expected.entry((user, timestamp - timestamp % 1000)).or_default() += 1;
    }
    (TextFile::from_text(text), expected)
}

fn timestamp_field(line: &str) -> u64 {
    line.split(',').nth(1).and_then(|field| field.parse().ok()).unwrap_or(0)
}

fn user_field(line: &&'static str) -> &'static str {
    line.split(',').next().unwrap_or("")
}

#[test]
fn a_text_file_through_a_windowed_count_into_csv_and_json_lines_files() {
    let (file, expected) = clicks_file();
    let dir = tempfile::tempdir().unwrap();
    for format in [RowFormat::Csv, RowFormat::JsonLines] {
        let out = dir.path().join(format!("{format:?}"));
        std::fs::create_dir_all(&out).unwrap();
        let sink_dir = out.clone();
        let output = Job::new(JobConfig::new(3))
            .source("clicks", move |partition| file.source(partition, timestamp_field, 0))
            .key_by("by_user", user_field)
            .window(Tumbling::of(1000))
            .aggregate("count", Count)
            .sink("files", move |shard| FileSink::create(&sink_dir, shard, format))
            .run()
            .expect("job runs");
        let mut rows = 0;
        let mut found = BTreeMap::new();
        for report in output.sink_outputs {
            let report = report.expect("the sink wrote its file");
            rows += report.rows;
            let text = std::fs::read_to_string(&report.path).unwrap();
            assert_eq!(text.len() as u64, report.bytes);
            let mut lines = text.lines();
            if format == RowFormat::Csv && report.rows > 0 {
                assert_eq!(lines.next(), Some("key,window_start,window_end,value"));
            }
            for line in lines {
                let (user, start, count) = parse_row(line, format);
                assert!(found.insert((user, start), count).is_none());
            }
        }
        assert_eq!(rows as usize, expected.len());
        assert_eq!(found, expected, "{format:?}");
    }
}

fn parse_row(line: &str, format: RowFormat) -> (String, u64, u64) {
    match format {
        RowFormat::Csv => {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[0].to_string(), fields[1].parse().unwrap(), fields[3].parse().unwrap())
        }
        RowFormat::JsonLines => {
            // {"key":"user3","window_start":0,"window_end":1000,"value":12}
            let field = |name: &str| {
                let at = line.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
                let rest = &line[at..];
                rest[..rest.find([',', '}']).unwrap()].trim_matches('"').to_string()
            };
            (field("key"), field("window_start").parse().unwrap(), field("value").parse().unwrap())
        }
    }
}

#[test]
fn events_round_trip_through_partitioned_logs() {
    let events = generator(20_000);
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().to_path_buf();
    let sink_dir = logs.clone();
    let written = Job::new(JobConfig::new(2))
        .source("generator", move |partition| Generator::new(events, partition))
        .sink("log", move |shard| LogSink::open(&sink_dir, shard))
        .run()
        .expect("the writing job runs");
    let records: u64 = written.sink_outputs.into_iter().map(|r| r.expect("appended").records).sum();
    assert_eq!(records, 20_000);
    for shards in [1, 2, 3] {
        let partitions = LogPartitions::open(&logs).expect("two partitions");
        assert_eq!(partitions.count(), 2);
        let output = Job::new(JobConfig::new(shards))
            .source("log", move |partition| partitions.source::<Event>(partition, 0))
            .key_by("by_key", |event: &Event| event.key)
            .window(Tumbling::of(1000))
            .aggregate("count", Count)
            .sink("count", |_| CountingSink::default())
            .run()
            .expect("the reading job runs");
        assert_eq!(output.records_pulled(), 20_000, "{shards} shards");
    }
    let partitions = LogPartitions::open(&logs).unwrap();
    let read_back = Job::new(JobConfig::new(2))
        .source("log", move |partition| partitions.source::<Event>(partition, 0))
        .sink("collect", |_| zabflow_core::engine::CollectSink::default())
        .run()
        .unwrap();
    let mut read: Vec<Stamped<Event>> = read_back.sink_outputs.into_iter().flatten().collect();
    read.sort();
    let mut all: Vec<Stamped<Event>> = (0..events.events).map(|i| events.event(i)).collect();
    all.sort();
    assert_eq!(read, all);
}

#[test]
fn window_results_go_to_a_log_and_decode_back() {
    let events = generator(5000);
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = dir.path().to_path_buf();
    let output = Job::new(JobConfig::new(2))
        .source("generator", move |partition| Generator::new(events, partition))
        .key_by("by_key", |event: &Event| event.key)
        .window(Tumbling::of(1000))
        .aggregate("count", Count)
        .sink("log", move |shard| LogSink::<WindowResult<u64, u64>>::open(&sink_dir, shard))
        .run()
        .unwrap();
    let written: u64 = output.sink_outputs.into_iter().map(|r| r.unwrap().records).sum();
    let mut total = 0;
    for partition in 0..2 {
        let log = zabflow_core::log::Log::open(
            &dir.path().join(format!("partition-{partition}")),
            Default::default(),
        )
        .unwrap();
        let reader = log.reader();
        for record in reader.iter_from(reader.first_offset()).unwrap() {
            let record = record.unwrap();
            let mut bytes: &[u8] = &record;
            let result: WindowResult<u64, u64> =
                zabflow_core::engine::LogRecord::decode(&mut bytes).unwrap();
            assert!(bytes.is_empty() && result.window_end == result.window_start + 1000);
            total += result.value;
        }
    }
    assert!(written > 0);
    assert_eq!(total, 5000);
}

#[test]
fn stdout_and_the_counting_blackhole_count_what_they_take() {
    let records: Arc<[Stamped<Event>]> = (0..3u64)
        .map(|i| Stamped { timestamp: i, record: Event { key: i, value: 10 * i } })
        .collect();
    let shown = records.clone();
    let output = Job::new(JobConfig::new(1))
        .source("vec", move |partition| VecSource::new(shown.clone(), partition, 0))
        .sink("stdout", |shard| StdoutSink::new(shard, RowFormat::JsonLines))
        .run()
        .unwrap();
    assert_eq!(output.sink_outputs, vec![3]);
    let output = Job::new(JobConfig::new(2))
        .source("vec", move |partition| VecSource::new(records.clone(), partition, 0))
        .sink("blackhole", |_| CountingSink::default())
        .run()
        .unwrap();
    assert_eq!(output.sink_outputs.iter().sum::<u64>(), 3);
}
