//! A progress bar for long benchmark runs that only a person watching a terminal sees.
//!
//! When stderr is a terminal the bar counts the steps of a run (for example one per series)
//! and shows the step in progress; otherwise (CI logs, pipes, tests) it draws nothing, so the
//! output of scripted runs stays exactly the human table and the report path.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A step counter drawn on stderr when it is a terminal, silent otherwise.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `steps_total` steps titled `title`.
    pub fn new(title: &str, steps_total: u64) -> Progress {
        Progress::drawn_if(std::io::stderr().is_terminal(), title, steps_total)
    }

    /// A bar that counts but never draws (something else draws on stderr).
    pub fn hidden(title: &str, steps_total: u64) -> Progress {
        Progress::drawn_if(false, title, steps_total)
    }

    fn drawn_if(drawn: bool, title: &str, steps_total: u64) -> Progress {
        let target =
            if drawn { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(steps_total), target);
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("constant progress template is valid")
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(title.to_string());
        Progress { bar }
    }

    /// Whether the bar is drawn (stderr is a terminal).
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Names the step now running.
    pub fn start_step(&self, message: &str) {
        self.bar.set_message(message.to_string());
    }

    /// Marks one step done.
    pub fn finish_step(&self) {
        self.bar.inc(1);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_steps_even_when_hidden() {
        let progress = Progress::new("test", 2);
        progress.start_step("one");
        progress.finish_step();
        progress.finish_step();
        assert_eq!(progress.bar.position(), 2);
        progress.finish();
    }
}
