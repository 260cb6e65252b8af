//! A live view of a running job's [`JobMetrics`] on stderr (`--live` of `zabflow job run`
//! and `zabflow bench pipeline`).
//!
//! A thread samples the metrics every [`LIVE_VIEW_REDRAW_INTERVAL`] and, when stderr is a
//! terminal, redraws a table in place (one line per shard and a total, rates from the
//! difference of two snapshots; see [`render`]); when stderr is not a terminal it prints
//! one plain line every [`LIVE_VIEW_LINE_INTERVAL`] instead ([`render_line`]), without
//! escape codes, so a log stays readable. [`LiveView::finish`] stops the thread and prints
//! the final totals once ([`render_totals`]).
//!
//! Other lines a command prints while the view runs go through [`print_line`], which
//! erases the table first and lets the next tick draw it again below: a line printed
//! straight to stderr would be overwritten by the next redraw. The view only reads relaxed
//! atomics, so watching a job costs its shards nothing.

use crate::constants::{LIVE_VIEW_LINE_INTERVAL, LIVE_VIEW_REDRAW_INTERVAL};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zabflow_core::engine::{render, render_line, render_totals, JobMetrics};

/// Lines of the table now drawn on the terminal, below the cursor's line start; every
/// write to stderr by a view or by [`print_line`] holds this lock.
static DRAWN_LINES: Mutex<usize> = Mutex::new(0);

fn drawn_lines() -> MutexGuard<'static, usize> {
    // The count stays meaningful even if a writer panicked while holding it.
    DRAWN_LINES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The escape codes that move the cursor up over a drawn table and erase it.
fn erase(lines: usize) -> String {
    if lines == 0 {
        String::new()
    } else {
        format!("\x1b[{lines}A\x1b[J")
    }
}

/// Writes `text` to stderr in one call; a failed write (stderr closed) is not worth
/// stopping a job for, so it is ignored.
fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// Prints `line` on stderr above a live view's table (or plainly, when none is drawn).
pub fn print_line(line: &str) {
    let mut drawn = drawn_lines();
    write_stderr(&format!("{}{line}\n", erase(*drawn)));
    *drawn = 0;
}

/// How the view shows itself: a table redrawn in place, or plain lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Terminal,
    Plain,
}

/// Set by [`LiveView::finish`] or drop; the view's thread waits on it between ticks.
type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// A running live view; [`LiveView::finish`] it when the job ends.
pub struct LiveView {
    title: String,
    metrics: JobMetrics,
    mode: Mode,
    started: Instant,
    stop: StopSignal,
    thread: Option<JoinHandle<()>>,
}

impl LiveView {
    /// Starts showing `metrics` on stderr under `title` (a job's or series' name).
    ///
    /// # Errors
    /// When the view's thread cannot be spawned.
    pub fn start(title: &str, metrics: &JobMetrics) -> std::io::Result<LiveView> {
        let mode = if std::io::stderr().is_terminal() { Mode::Terminal } else { Mode::Plain };
        let stop: StopSignal = Arc::new((Mutex::new(false), Condvar::new()));
        let started = Instant::now();
        let thread = {
            let (title, metrics, stop) = (title.to_owned(), metrics.clone(), stop.clone());
            std::thread::Builder::new()
                .name("live-view".into())
                .spawn(move || show(&title, &metrics, mode, started, &stop))?
        };
        Ok(LiveView {
            title: title.to_owned(),
            metrics: metrics.clone(),
            mode,
            started,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the view (erasing its table on a terminal) and prints the job's final totals.
    pub fn finish(mut self) {
        self.stop_thread();
        let now = self.metrics.snapshot();
        let elapsed = self.started.elapsed();
        let mut drawn = drawn_lines();
        let text = format!("{}: final totals\n{}", self.title, render_totals(&now, elapsed));
        write_stderr(&format!("{}{text}", erase(*drawn)));
        *drawn = 0;
    }

    fn stop_thread(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the view's thread is the view's bug; the job's result stands.
            let _ = thread.join();
        }
        if self.mode == Mode::Terminal {
            let mut drawn = drawn_lines();
            write_stderr(&erase(*drawn));
            *drawn = 0;
        }
    }
}

/// Stops the view without totals (the job failed or panicked).
impl Drop for LiveView {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_thread();
        }
    }
}

/// The view's thread: a tick per interval until stopped.
fn show(title: &str, metrics: &JobMetrics, mode: Mode, started: Instant, stop: &StopSignal) {
    let interval = match mode {
        Mode::Terminal => LIVE_VIEW_REDRAW_INTERVAL,
        Mode::Plain => LIVE_VIEW_LINE_INTERVAL,
    };
    let mut prev = metrics.snapshot();
    let mut prev_at = Instant::now();
    while !wait_stopped(stop, interval) {
        let (now, now_at) = (metrics.snapshot(), Instant::now());
        let elapsed = now_at.duration_since(prev_at);
        let since_start = now_at.duration_since(started).as_secs_f64();
        let mut drawn = drawn_lines();
        match mode {
            Mode::Terminal => {
                let table = render(&prev, &now, elapsed);
                let text = format!("{title} {since_start:.1} s\n{table}");
                write_stderr(&format!("{}{text}", erase(*drawn)));
                *drawn = text.lines().count();
            }
            Mode::Plain => {
                let line = render_line(&prev, &now, elapsed);
                write_stderr(&format!("live {title} {since_start:.1} s: {line}\n"));
            }
        }
        drop(drawn);
        (prev, prev_at) = (now, now_at);
    }
}

/// Waits up to `interval` for the stop signal; whether it came.
fn wait_stopped(stop: &StopSignal, interval: Duration) -> bool {
    let (stopped, wake) = &**stop;
    let deadline = Instant::now() + interval;
    let mut guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    while !*guard {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        guard = wake.wait_timeout(guard, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasing_nothing_writes_no_escape_codes() {
        assert_eq!(erase(0), "");
        assert_eq!(erase(4), "\x1b[4A\x1b[J");
    }

    #[test]
    fn a_view_stops_promptly_when_finished() {
        let metrics = JobMetrics::new(2);
        let view = LiveView::start("test", &metrics).expect("a thread");
        let started = Instant::now();
        view.finish();
        assert!(started.elapsed() < LIVE_VIEW_LINE_INTERVAL, "finish does not wait a tick");
    }
}
