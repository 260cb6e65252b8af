//! A windowed job: how many clicks each user made per second of event time.
//!
//! Run with `cargo run --release -p zabflow-core --example windowed_count`.
//!
//! The job reads a seeded generator (one partition per shard), drops bot traffic,
//! partitions by user, counts each user's events in 1-second tumbling windows, and collects
//! the results. `run` returns once every window has fired and every shard thread has
//! joined; a panic in any operator would come back as an error naming that operator.

use zabflow_core::engine::{
    CollectSink, Count, Event, Generator, GeneratorConfig, Job, JobConfig, Tumbling, WindowResult,
};

/// The record our operators see after parsing.
#[derive(Debug, Clone, Copy)]
struct Click {
    user: u64,
    is_bot: bool,
}

fn main() -> Result<(), zabflow_core::Error> {
    let events = GeneratorConfig {
        seed: 42,
        events: 1_000_000,
        keys: 1000,                 // distinct users
        events_per_second: 100_000, // event-time density: 10 s of event time in all
        out_of_orderness: 500,      // timestamps may lag the newest by up to 500 ms
        rate_per_second: None,      // as fast as the shards pull
        skew: 0.0,                  // uniform keys
        pace_from: None,
    };
    let shards = std::thread::available_parallelism().map_or(1, |cores| cores.get().min(4));
    let output = Job::new(JobConfig::new(shards))
        .source("clicks", move |partition| Generator::new(events, partition))
        .map("parse", |event: Event| Click { user: event.key, is_bot: event.value < 50 })
        .filter("humans_only", |click: &Click| !click.is_bot)
        .key_by("by_user", |click: &Click| click.user)
        .window(Tumbling::of(1000))
        .aggregate("count", Count)
        .sink("collect", |_shard| CollectSink::default())
        .run()?;

    let late_records = output.late_records();
    let mut results: Vec<WindowResult<u64, u64>> =
        output.sink_outputs.into_iter().flatten().collect();
    results.sort_by_key(|result| (result.window_start, result.key));
    println!("{} (user, window) counts on {shards} shards; the first five:", results.len());
    for result in results.iter().take(5) {
        let (user, start, end, clicks) =
            (result.key, result.window_start, result.window_end, result.value);
        println!("user {user:>4}  [{start:>5} ms, {end:>5} ms)  {clicks} clicks");
    }
    let total: u64 = results.iter().map(|result| result.value).sum();
    println!("{total} human clicks counted, {late_records} late");
    Ok(())
}
