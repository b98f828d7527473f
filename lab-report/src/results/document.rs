//! The one document every command writes: `run`, `compare`, `prove` and `sweep` results alike.
//!
//! Each model's entry is a [`RunResult`] (the keys of `iolab run --format json`, flattened) plus
//! the spread of every figure over the repeated runs. One schema serves all commands, so
//! `iolab report` can re-render and compare any saved results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::{
    figures::Figure,
    stats::{Summary, summarize},
};
use lab_measure::{result::RunResult, validate::Validation};

/// Bumped when a field changes meaning or disappears; `iolab report` refuses newer documents
/// and reads older ones. 2: a result's `messages` is `messages_total`, beside the workload's
/// `messages_per_connection` and `lockstep`; `latency_us` has every percentile the load
/// generator measured, not only p50 and p99. 3: a wait call's and a timed syscall's `cpu_ns` is
/// their own time, the interrupts that ran inside them beside it (`softirq_ns`, `hardirq_ns`);
/// the window splits the server's CPU into `own_cpu_ns`, `softirq_ns` and `hardirq_ns`.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Document {
    pub schema_version: u32,
    /// The command that made it: "run", "trace", "compare", "prove", "sweep" or "report".
    pub command: String,
    /// When it was made (UTC, RFC 3339).
    pub created: String,
    pub machine: Machine,
    /// The command line, for the record.
    pub argv: Vec<String>,
    /// True when the run was interrupted: the results are what was gathered until then.
    pub incomplete: bool,
    /// Measured runs per model (after one warm-up run that is not kept).
    pub runs_per_model: usize,
    pub results: Vec<ModelResult>,
    /// Conclusions computed from `results` (see `verdict`).
    pub verdict: Vec<String>,
    /// Models asked for (`--models all`) that this kernel cannot run, and `--server` commands
    /// that did not start, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<Unsupported>,
    /// `iolab trace --validate`: the same load counted again by strace (and perf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

impl Document {
    /// Whether this is one run shown in full (`iolab run`, `iolab trace`) rather than a
    /// comparison of models.
    pub fn is_one_run(&self) -> bool {
        matches!(self.command.as_str(), "run" | "trace") && self.results.len() == 1
    }
}

/// A model this kernel cannot run (see `lab_server::Model::unsupported`), or a `--server`
/// command that did not start (`measure::run::NotStarted`): not in the results, and why.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unsupported {
    pub model: String,
    /// For a model, the feature it needs and what failed when the lab tried it; for a server,
    /// its command, what went wrong and its last output.
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Machine {
    pub kernel: String,
    pub cpus: usize,
}

/// One model at one workload: the median run, and every figure's median and range over the runs.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelResult {
    #[serde(flatten)]
    pub run: RunResult,
    pub runs: usize,
    /// Figure key (see `figures::Figure`) -> median, min, max over the runs that measured it;
    /// a figure no run measured (per message with no message…) has no entry.
    pub spread: BTreeMap<String, Summary>,
}

impl ModelResult {
    /// A figure as the tables show it: the median over the runs, or the kept run's own value
    /// when the document has no spread for it; `None` when it was not measured.
    pub fn figure(&self, figure: Figure) -> Option<f64> {
        self.summary(figure).map(|s| s.median)
    }

    /// A figure's median, min and max. Without a spread entry (a hand-made document, or a
    /// figure no run measured), the kept run's own value stands for all three.
    pub fn summary(&self, figure: Figure) -> Option<Summary> {
        match self.spread.get(figure.key()) {
            Some(s) => Some(*s),
            None => figure.value(&self.run).map(|v| Summary { median: v, min: v, max: v }),
        }
    }
}

/// One model's result from its measured runs: the median run by msg/s (the lower of the two
/// middle runs for an even count, so it is always a real run), and the spread of every figure
/// over the runs that measured it.
///
/// # Panics
/// If `runs` is empty: a model with no finished run has no result.
pub fn model_result(mut runs: Vec<RunResult>) -> ModelResult {
    assert!(!runs.is_empty(), "model_result needs at least one run");
    let spread = Figure::ALL
        .iter()
        .filter_map(|f| {
            let values: Vec<f64> = runs.iter().filter_map(|r| f.value(r)).collect();
            (!values.is_empty()).then(|| (f.key().to_owned(), summarize(&values)))
        })
        .collect::<BTreeMap<_, _>>();
    let count = runs.len();
    runs.sort_by(|a, b| a.msgs_per_sec.total_cmp(&b.msgs_per_sec));
    let run = runs.swap_remove((count - 1) / 2);
    ModelResult { run, runs: count, spread }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(messages_total: u64, msgs_per_sec: f64) -> RunResult {
        RunResult { messages_total, msgs_per_sec, syscalls_total: 2 * messages_total, ..RunResult::default() }
    }

    #[test]
    fn a_figure_without_a_spread_entry_is_computed_from_the_kept_run() {
        let result = ModelResult { run: run(100, 50.0), runs: 1, spread: BTreeMap::new() };
        assert_eq!(result.figure(Figure::SyscallsPerMsg), Some(2.0));
        assert_eq!(result.figure(Figure::MsgsPerSec), Some(50.0));
        assert_eq!(result.figure(Figure::ReadyPerWait), None, "no wait call: not measured, not 0");
    }

    #[test]
    fn the_spread_skips_the_runs_that_did_not_measure_a_figure() {
        let result = model_result(vec![run(100, 30.0), run(0, 10.0), run(50, 20.0)]);
        assert_eq!(result.summary(Figure::SyscallsPerMsg), Some(Summary { median: 2.0, min: 2.0, max: 2.0 }));
        assert_eq!(result.summary(Figure::MsgsPerSec).map(|s| s.min), Some(10.0));
        assert!(!result.spread.contains_key(Figure::ReadyPerWait.key()), "measured in no run: no entry");
        assert_eq!(result.figure(Figure::ReadyPerWait), None);
    }
}
