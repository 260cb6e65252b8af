//! The `pipeline` scenario: whole stream jobs on the engine, end to end.
//!
//! Two jobs, each at 1 shard and at 2 shards, read the engine's seeded generator flat out
//! and end in a counting sink:
//!
//! - `stateless`: map + filter, fused into one loop; records never leave their shard, so
//!   its exchange is `pipeline` (no rings);
//! - `tumbling-count`: `key_by` over 100k keys, 1 s tumbling windows, `Count`; every record
//!   crosses the rtrb mesh to the shard owning its key group (exchange `rtrb`).
//!
//! Throughput is generated events over the job's wall time, from `run` to the last shard
//! joined (so it includes thread start, window flushes and the end of stream). Latency is
//! not measured yet: throughput only. The generator itself costs a hash per event and is
//! part of the measured work, as a source is in any real job.

use crate::constants::{
    PIPELINE_EVENTS_DEFAULT, PIPELINE_EVENTS_MAX, PIPELINE_EVENTS_QUICK,
    PIPELINE_EVENT_TIME_DENSITY, PIPELINE_KEYS, PIPELINE_WINDOW_MS,
};
use crate::error::{BenchError, Result};
use crate::progress::Progress;
use crate::report::{Report, Series, Target, Unit};
use serde_json::json;
use std::time::Instant;
use zabflow_core::engine::{
    Count, CountingSink, Event, Generator, GeneratorConfig, Job, JobConfig, Tumbling,
};

/// Knobs of the pipeline scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Events each series generates (over all shards).
    pub events: u64,
    /// Shard counts to measure each job at.
    pub shard_counts: Vec<usize>,
    /// Slots of every exchange ring.
    pub ring_slots: usize,
    /// Records a shard pulls from its source at once.
    pub batch_records: usize,
}

impl PipelineConfig {
    /// The default run, or the short `--quick` one.
    pub fn new(quick: bool) -> PipelineConfig {
        let defaults = JobConfig::new(1);
        PipelineConfig {
            events: if quick { PIPELINE_EVENTS_QUICK } else { PIPELINE_EVENTS_DEFAULT },
            shard_counts: vec![1, 2],
            ring_slots: defaults.ring_slots,
            batch_records: defaults.batch_records,
        }
    }

    /// # Errors
    /// [`BenchError::Param`] naming the knob out of bounds.
    pub fn validate(&self) -> Result<()> {
        if self.events == 0 || self.events > PIPELINE_EVENTS_MAX {
            let events = self.events;
            return Err(BenchError::Param(format!(
                "pipeline events {events} must be in 1..={PIPELINE_EVENTS_MAX}"
            )));
        }
        if self.shard_counts.is_empty() {
            return Err(BenchError::Param("pipeline needs at least one shard count".into()));
        }
        for &shards in &self.shard_counts {
            self.job_config(shards).validate()?;
        }
        Ok(())
    }

    fn job_config(&self, shards: usize) -> JobConfig {
        JobConfig {
            ring_slots: self.ring_slots,
            batch_records: self.batch_records,
            ..JobConfig::new(shards)
        }
    }

    fn generator(&self) -> GeneratorConfig {
        GeneratorConfig {
            seed: 1,
            events: self.events,
            keys: PIPELINE_KEYS,
            events_per_second: PIPELINE_EVENT_TIME_DENSITY,
            out_of_orderness: 100,
            rate_per_second: None,
            skew: 0.0,
        }
    }
}

/// The jobs the scenario measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineJob {
    Stateless,
    TumblingCount,
}

impl PipelineJob {
    pub const ALL: [PipelineJob; 2] = [PipelineJob::Stateless, PipelineJob::TumblingCount];

    pub fn name(self) -> &'static str {
        match self {
            PipelineJob::Stateless => "stateless",
            PipelineJob::TumblingCount => "tumbling-count",
        }
    }

    pub fn exchange(self) -> &'static str {
        match self {
            PipelineJob::Stateless => "pipeline",
            PipelineJob::TumblingCount => "rtrb",
        }
    }
}

/// `tumbling-count/shards=2/rtrb`.
pub fn series_name(job: PipelineJob, shards: usize) -> String {
    format!("{}/shards={shards}/{}", job.name(), job.exchange())
}

/// What one run of a job did.
struct Measured {
    events_per_s: f64,
    records_out: u64,
}

/// Runs every job at every shard count.
///
/// # Errors
/// A bad parameter, or a failed job.
pub fn run(config: &PipelineConfig) -> Result<Report> {
    config.validate()?;
    let generator = config.generator();
    let params = json!({
        "events": config.events, "keys": PIPELINE_KEYS, "window_ms": PIPELINE_WINDOW_MS,
        "event_time_events_per_s": PIPELINE_EVENT_TIME_DENSITY,
        "out_of_orderness_ms": generator.out_of_orderness, "shard_counts": config.shard_counts,
        "ring_slots": config.ring_slots, "batch_records": config.batch_records,
        "latency": "not measured (throughput only)",
    });
    let mut report = Report::new("pipeline", params);
    let steps = PipelineJob::ALL.len() * config.shard_counts.len();
    let progress = Progress::new("pipeline", steps as u64);
    for job in PipelineJob::ALL {
        for &shards in &config.shard_counts {
            progress.start_step(&series_name(job, shards));
            let measured = measure(job, config.job_config(shards), generator)?;
            report.push_series(series_from(job, shards, &measured));
            progress.finish_step();
        }
    }
    progress.finish();
    push_scaling_ratios(&mut report, &config.shard_counts);
    Ok(report)
}

fn measure(job: PipelineJob, config: JobConfig, generator: GeneratorConfig) -> Result<Measured> {
    let started = Instant::now();
    let output = match job {
        PipelineJob::Stateless => Job::new(config)
            .source("generator", move |partition| Generator::new(generator, partition))
            .map("scale", |event: Event| Event { key: event.key, value: event.value * 3 })
            .filter("even", |event: &Event| event.value & 1 == 0)
            .sink("blackhole", |_| CountingSink::default())
            .run()
            .map(|output| (output.records_pulled(), output.sink_outputs.iter().sum::<u64>()))?,
        PipelineJob::TumblingCount => Job::new(config)
            .source("generator", move |partition| Generator::new(generator, partition))
            .key_by("by_key", |event: &Event| event.key)
            .window(Tumbling::of(PIPELINE_WINDOW_MS))
            .aggregate("count", Count)
            .sink("blackhole", |_| CountingSink::default())
            .run()
            .map(|output| (output.records_pulled(), output.sink_outputs.iter().sum::<u64>()))?,
    };
    let elapsed_s = started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let (pulled, records_out) = output;
    assert_eq!(pulled, generator.events, "every generated event was pulled");
    Ok(Measured { events_per_s: pulled as f64 / elapsed_s, records_out })
}

fn series_from(job: PipelineJob, shards: usize, measured: &Measured) -> Series {
    let name = series_name(job, shards);
    Series::new(name, Target::Zabflow, Unit::Records, measured.events_per_s)
        .with_params(json!({ "job": job.name(), "shards": shards, "exchange": job.exchange() }))
        .with_extra("events_per_s_per_shard", measured.events_per_s / shards as f64)
        .with_extra("records_out", measured.records_out)
}

/// `<job>/shards=N/shards=1`: the speed-up of each job from 1 shard to each larger count.
fn push_scaling_ratios(report: &mut Report, shard_counts: &[usize]) {
    for job in PipelineJob::ALL {
        let Some(one) = report.series_named(&series_name(job, 1)).map(|s| s.throughput_per_s)
        else {
            continue;
        };
        for &shards in shard_counts.iter().filter(|&&shards| shards > 1) {
            let name = series_name(job, shards);
            if let Some(many) = report.series_named(&name).map(|s| s.throughput_per_s) {
                let ratio = format!("{}/shards={shards}/shards=1", job.name());
                report.push_ratio(ratio, many / one);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_run_writes_every_series_and_the_scaling_ratios() {
        let config = PipelineConfig { events: 20_000, ..PipelineConfig::new(true) };
        let report = run(&config).unwrap();
        assert_eq!(report.series.len(), 4);
        for series in &report.series {
            assert!(series.throughput_per_s > 0.0, "{}", series.name);
        }
        assert!(report.ratio_named("tumbling-count/shards=2/shards=1").is_some());
        assert!(run(&PipelineConfig { events: 0, ..config }).is_err());
    }
}
