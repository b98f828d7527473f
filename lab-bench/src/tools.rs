//! Section 2: the lab against the tools people would otherwise use.
//!
//! **Same server, same load.** One model (epoll by default) is served by the bench's harness
//! four ways in each round, in rotating order: untraced, with the lab's probe attached by pid,
//! under `strace -f -c`, and under `perf trace -s`. Each is compared with the untraced run of the
//! same round. The target is on this ratio: the lab's overhead (1 − ratio) must be at
//! least 10× smaller than strace's. strace's overhead is ~95 %, so the round-to-round noise of
//! whole runs (±10–20 % here) does not matter for it, but it does for the lab's few percent: when
//! section 1 measured the same model in one run (the probe attached and detached in turns), the
//! verdict takes the lab's ratio from there, and says so.
//!
//! **Per syscall.** The same four watch a process making getppid calls (`iolab bench
//! --spin-getppid`), timed by the wall clock: what each adds to one syscall. This number is
//! steady where throughput on a shared machine is not, and it says *why*: strace stops the
//! traced thread twice per syscall (ptrace: a switch to strace and back, each time); perf trace
//! does not stop it but writes a record per syscall entry and exit into a ring buffer that perf
//! reads and sums in user space; the probe adds one to a per-CPU counter and sends nothing.

use anyhow::Result;
use serde::Serialize;

use super::{
    harness::{self, Target, Watcher},
    paired::{Verdict, differences, order, overhead_factor, ratios},
};
use lab_load::Workload;
use lab_report::results::stats::{Summary, summarize};

/// The lab's overhead must be at least this many times smaller than strace's.
pub const TARGET_FACTOR: f64 = 10.0;

#[derive(Clone, Debug, Serialize)]
pub struct ToolOverhead {
    pub watcher: String,
    pub msgs_per_sec: Summary,
    /// Throughput ÷ the same round's untraced throughput (None for untraced itself).
    pub ratio: Option<Summary>,
    /// Wall-clock ns per getppid call under this watcher, and what it adds to the untraced call.
    pub ns_per_syscall: Summary,
    pub added_ns_per_syscall: Option<Summary>,
    /// Why it did not run, or how it failed.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolsSection {
    pub model: String,
    pub getppid_calls: u64,
    pub tools: Vec<ToolOverhead>,
    /// The lab's ratio the verdict uses, and whether it is section 1's one-run measurement
    /// (else this section's whole runs).
    pub lab_ratio: Option<f64>,
    pub lab_ratio_in_one_run: bool,
    /// (1 − strace's ratio) ÷ (1 − the lab's ratio); None when the lab's overhead is not above 0.
    pub strace_vs_lab: Option<f64>,
    pub verdict: Verdict,
    /// strace's added ns per syscall ÷ the lab's.
    pub strace_vs_lab_per_syscall: Option<f64>,
}

const WATCHERS: [Watcher; 4] = [Watcher::Nobody, Watcher::Lab, Watcher::Strace, Watcher::PerfTrace];

/// A figure per watcher per round: None when it did not run that round.
type Runs = Vec<Vec<Option<f64>>>;

/// `lab_in_one_run`: section 1's one-run traced ÷ untraced median for `model`, if it ran.
pub fn tools(
    model: &str,
    load: Workload,
    calls: u64,
    rounds: usize,
    lab_in_one_run: Option<f64>,
    step: &mut dyn FnMut(String),
) -> Result<ToolsSection> {
    let mut notes: Vec<Option<String>> = WATCHERS.iter().map(|w| w.missing()).collect();
    let target = Target::Model(model.to_owned());
    let rates = rotate(rounds, &mut notes, |w, round| {
        step(format!("{model} under {}, round {}/{rounds}", w.name(), round + 1));
        Ok(harness::serve_and_load(&target, w, load)?.report.msgs_per_sec)
    })?;
    let ns = rotate(rounds, &mut notes, |w, round| {
        step(format!("getppid under {}, round {}/{rounds}", w.name(), round + 1));
        harness::spin_under(w, calls)
    })?;
    let tools: Vec<ToolOverhead> = WATCHERS
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let (rate, base) = paired_rounds(&rates, i);
            let (spin, spin_base) = paired_rounds(&ns, i);
            ToolOverhead {
                watcher: w.name().to_owned(),
                msgs_per_sec: summarize(&rates[i].iter().flatten().copied().collect::<Vec<_>>()),
                ratio: (i > 0 && !rate.is_empty()).then(|| ratios(&rate, &base)),
                ns_per_syscall: summarize(&ns[i].iter().flatten().copied().collect::<Vec<_>>()),
                added_ns_per_syscall: (i > 0 && !spin.is_empty()).then(|| differences(&spin, &spin_base)),
                note: notes[i].clone(),
            }
        })
        .collect();
    let lab = &tools[1];
    let strace = &tools[2];
    let lab_ratio = lab_in_one_run.or(lab.ratio.map(|r| r.median));
    let (strace_vs_lab, verdict) = match (lab_ratio, strace.ratio) {
        (Some(lab), Some(strace)) => match overhead_factor(lab, strace.median) {
            Some(factor) => (Some(factor), Verdict::at_least(factor, TARGET_FACTOR)),
            // The lab's overhead is within the noise: no factor, but certainly not a miss.
            None => (None, Verdict::Pass),
        },
        _ => (None, Verdict::NotRun("the lab or strace did not run".into())),
    };
    let per_syscall = match (lab.added_ns_per_syscall, strace.added_ns_per_syscall) {
        (Some(lab), Some(strace)) if lab.median > 0.0 => Some(strace.median / lab.median),
        _ => None,
    };
    Ok(ToolsSection {
        model: model.to_owned(),
        getppid_calls: calls,
        tools,
        lab_ratio,
        lab_ratio_in_one_run: lab_in_one_run.is_some(),
        strace_vs_lab,
        verdict,
        strace_vs_lab_per_syscall: per_syscall,
    })
}

/// Runs `measure` for every watcher in every round, in rotating order. A watcher that is not
/// installed, or fails once, is skipped from then on and its note says why.
fn rotate(
    rounds: usize,
    notes: &mut [Option<String>],
    mut measure: impl FnMut(Watcher, usize) -> Result<f64>,
) -> Result<Runs> {
    let mut runs: Runs = vec![Vec::with_capacity(rounds); WATCHERS.len()];
    for round in 0..rounds {
        let mut this_round = [None; WATCHERS.len()];
        for i in order(WATCHERS.len(), round) {
            lab_measure::interrupt::check()?;
            if notes[i].is_some() {
                continue;
            }
            match measure(WATCHERS[i], round) {
                Ok(value) => this_round[i] = Some(value),
                Err(err) if lab_measure::interrupt::cause(&err).is_some() => return Err(err),
                Err(err) => notes[i] = Some(format!("failed: {err:#}")),
            }
        }
        for (watcher, value) in runs.iter_mut().zip(this_round) {
            watcher.push(value);
        }
    }
    Ok(runs)
}

/// Watcher `i`'s figures and the untraced ones, from the rounds where both ran.
fn paired_rounds(runs: &Runs, i: usize) -> (Vec<f64>, Vec<f64>) {
    runs[i].iter().zip(&runs[0]).filter_map(|(mine, base)| Some(((*mine)?, (*base)?))).unzip()
}
