//! Turning a [`Document`] into text: a table for people, JSON, CSV and Markdown for everything else.
//!
//! Measuring, summarising and showing are kept apart (as hyperfine does): every command builds
//! one [`Document`], and this module only renders it. So `iolab report` can re-render a saved
//! result in any format, and a new format is one new file here. Each format lives in its own
//! file; what they share (which figures go together, how a number is shortened, the warnings)
//! is below.

mod csv;
mod json;
mod markdown;
pub mod record;
mod table;

use std::{fs::OpenOptions, io::Write, os::unix::fs::OpenOptionsExt};

use anyhow::Context;

use crate::{
    present::numbers::compact,
    results::{
        document::{Document, ModelResult},
        figures::{COMPARE, Figure},
        stats::{Summary, wide_spread},
    },
};

/// The output formats of `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables for a terminal.
    Table,
    /// The whole document, as `iolab report` reads it back.
    Json,
    /// One row per model, for spreadsheets and scripts.
    Csv,
    /// GitHub-flavoured Markdown tables, for issues and notes.
    Markdown,
}

/// The document in `format`, ending with a newline.
pub fn render(doc: &Document, format: Format) -> String {
    match format {
        Format::Table => table::render(doc),
        Format::Json => json::render(doc),
        Format::Csv => csv::render(doc),
        Format::Markdown => markdown::render(doc),
    }
}

/// Where `--output PATH` writes: standard output for `None` or `-`, else the file, created (or
/// emptied) now so that a bad path fails before any run starts. New files get mode 0644.
pub fn open_output(path: Option<&str>) -> anyhow::Result<Box<dyn Write>> {
    match path {
        None | Some("-") => Ok(Box::new(std::io::stdout())),
        Some(path) => {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(path)
                .with_context(|| format!("cannot write {path}"))?;
            lab_measure::privileges::give_away(std::path::Path::new(path))?;
            Ok(Box::new(file))
        }
    }
}

/// Figures shown side by side: all of [`COMPARE`] is too wide for one terminal table, so the
/// tables split it into these groups (any figure not named here goes to a last "other" group).
const GROUPS: &[(&str, &[&str])] = &[
    ("Throughput and latency", &["msgs_per_sec", "latency_p50_us", "latency_p99_us"]),
    (
        "Syscalls",
        &[
            "syscalls_per_msg",
            "data_syscalls_per_msg",
            "wait_calls_per_msg",
            "fds_passed_per_wait_call",
            "fds_watched_per_wait_call",
            "ready_per_wait_call",
            "max_ready",
            "wait_cpu_us_per_call",
        ],
    ),
    ("io_uring", &["sqes_per_msg", "cqes_per_msg", "sqes_per_enter", "cqes_per_enter"]),
    (
        "Context switches and tasks",
        &["voluntary_cs_per_msg", "involuntary_cs_per_msg", "peak_threads", "peak_processes"],
    ),
    (
        "Server CPU and memory",
        &[
            "window_cpu_us_per_msg",
            "cores_used",
            "server_cpu_us_per_msg",
            "server_user_ms",
            "server_sys_ms",
            "peak_rss_kib",
            "pss_kib_per_conn",
        ],
    ),
];

/// [`GROUPS`] as figures, with every figure of [`COMPARE`] in exactly one group; a group whose
/// figures are all 0 in every row is left out (the io_uring group, when no server used io_uring).
fn groups(doc: &Document) -> Vec<(&'static str, Vec<&'static Figure>)> {
    let mut groups: Vec<_> = GROUPS
        .iter()
        .map(|(title, keys)| (*title, COMPARE.iter().filter(|f| keys.contains(&f.key)).collect::<Vec<_>>()))
        .collect();
    let other: Vec<_> = COMPARE.iter().filter(|f| !GROUPS.iter().any(|(_, keys)| keys.contains(&f.key))).collect();
    if !other.is_empty() {
        groups.push(("Other", other));
    }
    let measured = |f: &&Figure| doc.results.iter().any(|r| summary(r, f).max != 0.0);
    groups.retain(|(_, figures)| figures.iter().any(measured));
    groups
}

/// A figure's median, min and max for one model. Without a stored spread (a hand-made
/// document), the median run's value stands for all three.
pub fn summary(result: &ModelResult, figure: &Figure) -> Summary {
    result.spread.get(figure.key).copied().unwrap_or_else(|| {
        let v = (figure.value)(&result.run);
        Summary { median: v, min: v, max: v }
    })
}

/// A table cell: the median, then the range when the runs differ at the digits shown,
/// e.g. `12.3k (11.9k–12.8k)`.
fn cell(s: &Summary) -> String {
    let (median, min, max) = (compact(s.median), compact(s.min), compact(s.max));
    if min == max { median } else { format!("{median} ({min}–{max})") }
}

/// The connections column: `100`, or `100 +1k idle` with idle connections.
fn connections(result: &ModelResult) -> String {
    let r = &result.run;
    if r.workload.idle > 0 {
        format!("{} +{} idle", r.workload.connections, compact(r.workload.idle as f64))
    } else {
        r.workload.connections.to_string()
    }
}

/// The lines shown under the tables: interrupted runs, load errors, probe losses, wide spreads.
fn warnings(doc: &Document) -> Vec<String> {
    let mut lines = Vec::new();
    if doc.incomplete {
        lines.push("warning: interrupted: these are the runs finished before the interruption".to_owned());
    }
    for skipped in &doc.unsupported {
        lines.push(format!("note: {}: not run: {}", skipped.model, skipped.reason));
    }
    for result in &doc.results {
        let r = &result.run;
        if r.errors > 0 {
            lines.push(format!(
                "warning: {} at {} connections: {} load errors in the median run; its figures are not comparable",
                r.model, r.workload.connections, r.errors
            ));
        }
        if let Some(busy) = r.not_idle {
            lines.push(crate::present::run_table::not_idle(&r.model, busy));
        }
        let d = r.probe_dropped;
        if d.tasks + d.waits + d.epoll_members > 0 {
            lines.push(format!(
                "warning: {} at {} connections: the probe lost track of {} tasks, {} wait calls, {} epoll registrations",
                r.model, r.workload.connections, d.tasks, d.waits, d.epoll_members
            ));
        }
    }
    lines.extend(spread_warnings(doc));
    lines
}

/// The line above the tables: what was run, how often, where and when.
fn heading(doc: &Document) -> String {
    let runs = if doc.runs_per_model > 1 {
        format!("median of {} runs per model (min–max in brackets)", doc.runs_per_model)
    } else {
        "1 run per model".to_owned()
    };
    format!("iolab {}: {runs}; kernel {}, {} CPUs; {}", doc.command, doc.machine.kernel, doc.machine.cpus, doc.created)
}

/// The figures whose spread is worth a warning: the headline ones a reader compares models by.
pub const WATCHED: &[&str] = &["msgs_per_sec", "latency_p50_us", "syscalls_per_msg", "server_cpu_us_per_msg"];

/// One line for each model and watched figure whose runs disagree by more than 10%.
pub fn spread_warnings(doc: &Document) -> Vec<String> {
    let mut lines = Vec::new();
    for result in doc.results.iter().filter(|r| r.runs > 1) {
        for key in WATCHED {
            let Some(s) = result.spread.get(*key) else { continue };
            if !wide_spread(s) {
                continue;
            }
            let header = crate::results::figures::figure(key).map_or(*key, |f| f.header);
            let varied = if s.median == 0.0 {
                "varied around 0".to_owned()
            } else {
                format!("varied {:.0}%", (s.max - s.min) / s.median.abs() * 100.0)
            };
            lines.push(format!(
                "warning: {} at {} connections: {header} {varied} over {} runs ({}–{}); smaller differences are noise",
                result.run.model,
                result.run.workload.connections,
                result.runs,
                compact(s.min),
                compact(s.max),
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{document::model_result, save::new_document};
    use lab_measure::result::RunResult;

    fn titles(doc: &Document) -> Vec<&'static str> {
        groups(doc).into_iter().map(|(title, _)| title).collect()
    }

    #[test]
    fn the_io_uring_group_shows_only_when_a_server_used_io_uring() {
        let run = |model: &str, submitted| {
            let mut r = RunResult { model: model.into(), messages_total: 100, ..RunResult::default() };
            r.io_uring.submitted = submitted;
            model_result(vec![r])
        };
        let mut doc = new_document("compare", 1);
        doc.results = vec![run("epoll", 0)];
        assert!(!titles(&doc).contains(&"io_uring"), "{:?}", titles(&doc));
        doc.results.push(run("io-uring", 200));
        assert!(titles(&doc).contains(&"io_uring"), "{:?}", titles(&doc));
    }
}
