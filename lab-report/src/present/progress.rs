//! A progress line on stderr while runs go by: `⠙ [3/12] epoll, 100 connections, run 2 (0:14)`.
//!
//! A thin wrapper over indicatif so that commands only say which step starts. It draws on stderr
//! so stdout keeps only the results: `--format json > file` stays clean and still shows progress,
//! as hyperfine does. It draws nothing when stderr is not a terminal (a log, a script, CI) or
//! with `--quiet`: then every call is a no-op. It has no colour, so `NO_COLOR` changes nothing.

use std::{borrow::Cow, io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress line for `total_steps` steps, hidden when `quiet` or not on a terminal.
    pub fn new(total_steps: u64, quiet: bool) -> Progress {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total_steps), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})").expect("the template is valid"),
        );
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress { bar }
    }

    /// Starts the next step, described by `msg`: the counter shows the step in progress.
    pub fn step(&self, msg: impl Into<Cow<'static, str>>) {
        self.bar.inc(1);
        self.bar.set_message(msg);
    }

    /// Runs `f` with the progress line cleared, e.g. to `eprintln!` a warning without tearing it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the progress line: the results follow on a clean screen.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
