//! `--profile` shown: where each design's CPU went, by kernel mechanism, how long its threads
//! waited to run, and its flame graphs.
//!
//! The mechanism shares, the run-queue delay and a switch's cost are [`Figure`]s (see
//! `results::mechanism` and `results::profile`), so a comparison shows them as every other
//! figure: a group of columns in the tables, JSON, CSV, Markdown and the HTML page, with their
//! spread over runs. What is here is what a group of columns cannot hold:
//!
//! - [`run`]: one run in detail (`iolab run --profile`): a row per mechanism, the run-queue
//!   delay with its log2 histogram, and what a switch costs;
//! - [`histograms`]: each model's run-queue histogram, under a comparison's tables;
//! - [`verdict`]: the sentences the verdict adds when runs carry profiles;
//! - [`flame`]: folded files and flame graphs (SVG), on-CPU, off-CPU and differential.

pub mod flame;
pub mod verdict;

use std::fmt::Write as _;

use tabled::{
    builder::Builder,
    settings::{Alignment, Style, object::Columns},
};

use crate::{
    present::{
        export::wrap,
        numbers::{compact, significant_or_missing},
        timing_table::log2_histogram,
    },
    results::{
        document::Document,
        figures::Figure,
        mechanism::{Breakdown, Mechanism},
        profile::SwitchCost,
    },
};
use lab_measure::result::RunResult;

/// The warning for a profile that lost samples; `None` when it lost none.
pub fn lost_samples(r: &RunResult) -> Option<String> {
    let p = r.profile.as_ref().filter(|p| p.lost_samples > 0)?;
    Some(format!(
        "warning: {} at {} connections: {} of {} samples had no stack (the probe's stack map was full, or the walk \
         failed): the shares are of the others",
        r.model,
        r.workload.connections,
        p.lost_samples,
        p.samples()
    ))
}

/// One run's profile in full: nothing when it has none.
pub fn run(r: &RunResult) -> String {
    let Some(profile) = &r.profile else { return String::new() };
    let b = Breakdown::of(profile);
    let mut out = format!(
        "\nWhere the sampled CPU went (--profile, {} Hz per CPU: {} samples, {} ms of CPU):\n",
        profile.hz,
        profile.samples(),
        significant_or_missing(b.total_cpu_ms())
    );
    let mut table = Builder::default();
    table.push_record(["mechanism", "% of samples", "samples", "CPU ms"]);
    for m in Mechanism::ALL {
        table.push_record([
            m.label().to_owned(),
            significant_or_missing(b.share(m)),
            b.samples(m).to_string(),
            significant_or_missing(b.cpu_ms(m)),
        ]);
    }
    let mut table = table.build();
    table.with(Style::rounded()).modify(Columns::new(1..), Alignment::right());
    let _ = writeln!(out, "{table}");
    if let Some(line) = lost_samples(r) {
        let _ = writeln!(out, "{line}");
    }
    let rq = &profile.run_queue;
    if rq.waits > 0 {
        let _ = writeln!(out, "\nRun-queue delay (runnable, not running; p50 and p99 are log2 bucket bounds):");
        let figures = Figure::RUN_QUEUE;
        let mut table = Builder::default();
        table.push_record(std::iter::once("waits".to_owned()).chain(figures.iter().map(|f| f.label().to_owned())));
        table.push_record(
            std::iter::once(rq.waits.to_string())
                .chain(figures.iter().map(|f| f.value(r).map_or_else(|| "–".to_owned(), compact))),
        );
        let mut table = table.build();
        table.with(Style::rounded()).modify(Columns::new(..), Alignment::right());
        let _ = writeln!(out, "{table}\nrun-queue delay, ns per wait\n{}", log2_histogram(&rq.histogram));
    }
    if let Some(line) = switch_cost(r) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The row "what a switch costs", for a run with switches, samples and run-queue waits.
pub fn switch_cost(r: &RunResult) -> Option<String> {
    let cost = SwitchCost::of(r)?;
    let per_message = Figure::SwitchCostPerMsg.value(r);
    Some(format!(
        "What a switch costs: {} µs ({} µs of scheduler CPU + {} µs waiting in the run queue); × {} switches = {} ms, \
         {} µs per message",
        compact(cost.ns() / 1e3),
        compact(cost.cpu_ns / 1e3),
        compact(cost.delay_ns / 1e3),
        cost.switches,
        compact(cost.total_ns() / 1e6),
        significant_or_missing(per_message)
    ))
}

/// Each profiled model's run-queue histogram, and what a switch costs for a model that switches
/// about once a message, for under a comparison's tables; the sentence wrapped at `width`.
pub fn histograms(doc: &Document, width: Option<usize>) -> String {
    let mut out = String::new();
    for m in &doc.results {
        let Some(profile) = &m.run.profile else { continue };
        let lines = log2_histogram(&profile.run_queue.histogram);
        if lines.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n{} at {} connections (the median run): run-queue delay, ns per wait\n{lines}",
            m.run.model, m.run.workload.connections
        );
        if let Some(line) = switch_cost(&m.run).filter(|_| verdict::switches_often(&m.run)) {
            let _ = writeln!(out, "{}", width.map_or_else(|| line.clone(), |w| wrap(&line, w, "  ")));
        }
    }
    out
}
