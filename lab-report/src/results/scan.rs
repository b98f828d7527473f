//! `iolab scan`: what one wait call costs against the number of fds it watches, as data.
//!
//! Each point is a few measured runs with N connections open, one busy and N−1 idle: the busy
//! one plays ping-pong, so every wait call finds exactly one fd ready, and the window holds the
//! messages alone (connecting and closing are outside it). A point is measured in one of two
//! [`Mode`]s: every call sleeping until the message arrives (the default), or every call finding
//! it already queued (`--ready`); each row says which, and how many of its calls slept. A [`ScanRow`] keeps the probe's sums
//! over the wait calls of the point's median run and derives the per-call figures from them when
//! it is made, so the table, JSON and CSV carry the same numbers and cannot disagree with the
//! sums beside them.
//!
//! [`PUBLISHED`] is the classic measurement of the same experiment, kept here as data with its
//! source so that every output quotes it from one place.

use serde::Serialize;

use crate::results::{
    document::Machine,
    mechanism::{Breakdown, Mechanism},
};
use lab_measure::result::RunResult;

/// Whether a point's wait calls sleep until the message arrives or find it queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Ping-pong: each message is sent once the last reply is in, so every call sleeps.
    Sleeps,
    /// The client sends ahead, so every call finds the next message queued and does not sleep.
    Ready,
}

impl Mode {
    /// The mode a run was measured in, from its workload.
    pub fn of(run: &RunResult) -> Mode {
        if run.workload.ahead > 0 { Mode::Ready } else { Mode::Sleeps }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Sleeps => "sleeps",
            Mode::Ready => "ready",
        }
    }
}

/// One model at one number of fds: the sums the probe counted in the median run (by the cost of a
/// call), what they make per call, and the range of that cost over the runs.
#[derive(Clone, Debug, Serialize)]
pub struct ScanRow {
    pub model: String,
    /// Connections open: one busy, `fds - 1` idle. The server also watches its listener.
    pub fds: u64,
    /// `sleeps` (each call waits for the message) or `ready` (each call finds it queued).
    pub mode: Mode,
    /// Messages the busy connection sent and got answered.
    pub messages: u64,
    /// Wait calls that returned inside the window.
    pub wait_calls: u64,
    /// On-CPU nanoseconds inside the wait calls (entry to exit, less the time switched out).
    pub cpu_ns: u64,
    /// Nanoseconds inside the wait calls switched out (asleep until the next message).
    pub blocked_ns: u64,
    /// Descriptors handed in, summed over the calls (epoll: 0).
    pub fds_passed: u64,
    /// Descriptors watched, summed over the calls (epoll: its interest list).
    pub fds_watched: u64,
    /// Ready descriptors returned, summed over the calls.
    pub ready: u64,
    /// Calls whose thread went to sleep inside the call (a select or poll that sleeps walks its
    /// fds twice).
    pub slept: u64,
    /// Load-generator errors in the run (0 in a good one).
    pub errors: u64,
    /// `cpu_ns / wait_calls`: the cost of one call.
    pub cpu_ns_per_wait: f64,
    /// Measured runs at this point; the figures are those of the median one.
    pub runs: u64,
    /// The cheapest and dearest `cpu_ns_per_wait` over the runs.
    pub cpu_ns_per_wait_min: f64,
    pub cpu_ns_per_wait_max: f64,
    /// `cpu_ns_per_wait` over the same model's at its smallest `fds`.
    pub ratio_to_smallest: f64,
    /// `cpu_ns / fds_watched`: what each watched descriptor cost a call.
    pub ns_per_watched_fd: f64,
    pub fds_passed_per_wait: f64,
    pub fds_watched_per_wait: f64,
    /// `ready / wait_calls`: 1 when the scan does what it says.
    pub ready_per_wait: f64,
    /// `slept / wait_calls`: near 1 in the `sleeps` mode, near 0 in the `ready` one.
    pub slept_fraction: f64,
    /// With `--profile`: the median run's sampled CPU by kernel mechanism (see `mechanism`), in
    /// percent, by the mechanism's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_percent: Option<std::collections::BTreeMap<&'static str, f64>>,
}

/// A ratio that is 0 rather than NaN when there is nothing to divide by.
fn per(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// `runs` from the cheapest call to the dearest.
fn by_cost(runs: &[RunResult]) -> Vec<&RunResult> {
    let mut sorted: Vec<&RunResult> = runs.iter().collect();
    sorted.sort_by(|a, b| cpu_ns_per_wait(a).total_cmp(&cpu_ns_per_wait(b)));
    sorted
}

/// The run a point's row is made from: the median by the cost of a call.
pub fn median(runs: &[RunResult]) -> &RunResult {
    let sorted = by_cost(runs);
    sorted[(sorted.len() - 1) / 2]
}

fn cpu_ns_per_wait(r: &RunResult) -> f64 {
    per(r.wait.all.cpu_ns, r.wait.all.calls)
}

impl ScanRow {
    /// The row of one point's runs: the median run by the cost of a call (the lower of the two
    /// middle ones for an even count, so it is always a real run), and the range over all.
    /// `ratio_to_smallest` is filled in by [`ScanReport::new`].
    ///
    /// # Panics
    /// If `runs` is empty: a point with no finished run has no row.
    pub fn from_runs(runs: &[RunResult]) -> ScanRow {
        let sorted = by_cost(runs);
        let r = median(runs);
        let w = &r.wait.all;
        ScanRow {
            model: r.model.clone(),
            fds: r.workload.all_connections() as u64,
            mode: Mode::of(r),
            messages: r.messages_total,
            wait_calls: w.calls,
            cpu_ns: w.cpu_ns,
            blocked_ns: w.blocked_ns,
            fds_passed: w.fds_passed,
            fds_watched: w.fds_watched,
            ready: w.ready,
            slept: w.slept,
            errors: r.errors,
            cpu_ns_per_wait: cpu_ns_per_wait(r),
            runs: runs.len() as u64,
            cpu_ns_per_wait_min: cpu_ns_per_wait(sorted[0]),
            cpu_ns_per_wait_max: cpu_ns_per_wait(sorted[sorted.len() - 1]),
            ratio_to_smallest: 0.0,
            ns_per_watched_fd: per(w.cpu_ns, w.fds_watched),
            fds_passed_per_wait: per(w.fds_passed, w.calls),
            fds_watched_per_wait: per(w.fds_watched, w.calls),
            ready_per_wait: per(w.ready, w.calls),
            slept_fraction: per(w.slept, w.calls),
            profile_percent: r.profile.as_ref().map(|p| {
                let breakdown = Breakdown::of(p);
                Mechanism::ALL.iter().filter_map(|&m| Some((m.key(), breakdown.share(m)?))).collect()
            }),
        }
    }

    /// The share of the median run's sampled CPU that went to `mechanism`, in percent.
    pub fn percent_in(&self, mechanism: Mechanism) -> Option<f64> {
        self.profile_percent.as_ref()?.get(mechanism.key()).copied()
    }
}

/// Everything `iolab scan` shows: the rows, the published reference, and the record's stamp.
#[derive(Clone, Debug, Serialize)]
pub struct ScanReport {
    /// When it was made (UTC, RFC 3339).
    pub created: String,
    pub machine: Machine,
    /// Messages (so wait calls) asked for in each run.
    pub calls: u64,
    /// Measured runs asked for at each point (after one warm-up run per model).
    pub runs_per_point: u64,
    /// True when interrupted: the rows are the points finished until then.
    pub incomplete: bool,
    pub rows: Vec<ScanRow>,
    pub published: Published,
}

impl ScanReport {
    /// The report of `rows` (in the order measured), each ratio taken to the same model's row
    /// in the same mode with the fewest fds.
    pub fn new(mut rows: Vec<ScanRow>, calls: u64, runs_per_point: u64, incomplete: bool) -> ScanReport {
        let smallest: Vec<(String, f64)> = rows
            .iter()
            .map(|row| {
                let base = rows
                    .iter()
                    .filter(|r| r.model == row.model && r.mode == row.mode)
                    .min_by_key(|r| r.fds)
                    .expect("row itself");
                (row.model.clone(), base.cpu_ns_per_wait)
            })
            .collect();
        for (row, (_, base)) in rows.iter_mut().zip(smallest) {
            row.ratio_to_smallest = if base == 0.0 { 0.0 } else { row.cpu_ns_per_wait / base };
        }
        ScanReport {
            created: crate::results::save::now_rfc3339(),
            machine: crate::results::save::this_machine(),
            calls,
            runs_per_point,
            incomplete,
            rows,
            published: PUBLISHED,
        }
    }

    /// The models in the order first measured.
    pub fn models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !models.contains(&r.model.as_str()) {
                models.push(&r.model);
            }
        }
        models
    }
}

/// A published measurement of the same experiment: seconds for `operations` wait calls, each
/// finding one randomly chosen fd of N ready.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Published {
    pub source: &'static str,
    pub url: &'static str,
    /// What the figures are, in the source's words.
    pub measured: &'static str,
    pub operations: u64,
    pub fds: [u64; 4],
    pub seconds: [PublishedModel; 3],
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct PublishedModel {
    pub model: &'static str,
    /// Seconds for all the operations, at each of [`Published::fds`].
    pub seconds: [f64; 4],
}

impl Published {
    /// Microseconds per operation of `model` at `fds`, if published.
    pub fn us_per_operation(&self, model: &str, fds: u64) -> Option<f64> {
        let at = self.fds.iter().position(|&n| n == fds)?;
        let m = self.seconds.iter().find(|m| m.model == model)?;
        Some(m.seconds[at] / self.operations as f64 * 1e6)
    }
}

/// Michael Kerrisk's table comparing poll, select and epoll, from his talk at linux.conf.au 2006
/// (checked against the slide at `url`). The slide's column heads say "CPU time (seconds)", its
/// notes "Measurements are elapsed time for 100 000 operations", with one randomly selected fd
/// ready at each operation.
pub const PUBLISHED: Published = Published {
    source: "Michael Kerrisk, \"The epoll API\", linux.conf.au 2006",
    url: "https://man7.org/conf/lca2006/Linux_2.6_changes/epoll_2d.html",
    measured: "time for 100 000 operations, one randomly selected fd ready at each",
    operations: 100_000,
    fds: [10, 100, 1_000, 10_000],
    seconds: [
        PublishedModel { model: "poll", seconds: [1.12, 6.8, 157.0, 1750.0] },
        PublishedModel { model: "select", seconds: [1.28, 7.1, 151.0, 1087.0] },
        PublishedModel { model: "epoll", seconds: [0.65, 0.68, 0.89, 0.97] },
    ],
};
