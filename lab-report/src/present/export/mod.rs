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
    present::numbers::{MISSING, compact},
    results::{
        document::{Document, ModelResult},
        figures::Figure,
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
    render_width(doc, format, None)
}

/// [`render`], with the tables fitted to `width` columns when given (a terminal's, see
/// [`stdout_width`]): long cells wrap, ranges go under the median, sentences wrap.
pub fn render_width(doc: &Document, format: Format, width: Option<usize>) -> String {
    match format {
        Format::Table => table::render(doc, width),
        Format::Json => json::render(doc),
        Format::Csv => csv::render(doc),
        Format::Markdown => markdown::render(doc),
    }
}

/// The width of the terminal standard output is, or `None` when it is redirected (a file or a
/// pipe keeps every table at its full width).
pub fn stdout_width() -> Option<usize> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size().map(|(width, _)| usize::from(width.0)).filter(|&w| w >= 40)
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stays whole),
/// every line after the first starting with `indent`.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        if line > 0 && line + 1 + len > width {
            out.push('\n');
            out.push_str(indent);
            line = indent.chars().count();
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += len;
    }
    out
}

/// Checks, before anything is measured, that an output path can be written (`None` and `-` are
/// standard output), without touching it: a run that fails later leaves a file that was there as
/// it was, and no new empty one. [`open_output`] writes it once the results are ready.
pub fn check_writable(path: Option<&str>) -> anyhow::Result<()> {
    let Some(path) = path.filter(|&p| p != "-") else { return Ok(()) };
    let existed = std::fs::symlink_metadata(path).is_ok();
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("cannot write {path}"))?;
    if !existed {
        std::fs::remove_file(path).with_context(|| format!("cannot remove {path} after checking it"))?;
    }
    Ok(())
}

/// Where `--output PATH` writes: standard output for `None` or `-`, else the file, created (or
/// emptied) now. New files get mode 0644.
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

/// Figures shown side by side: all of [`Figure::ALL`] is too wide for one terminal table, so
/// the tables split it into these groups (any figure not named here goes to a last "other" group).
const GROUPS: &[(&str, &[Figure])] = &[
    ("Throughput and latency", &[Figure::MsgsPerSec, Figure::LatencyP50, Figure::LatencyP99]),
    (
        "Syscalls",
        &[
            Figure::SyscallsPerMsg,
            Figure::DataSyscallsPerMsg,
            Figure::WaitCallsPerMsg,
            Figure::FdsPassedPerWait,
            Figure::FdsWatchedPerWait,
            Figure::ReadyPerWait,
            Figure::MaxReady,
            Figure::WaitCpuPerCall,
        ],
    ),
    ("io_uring", &[Figure::SqesPerMsg, Figure::CqesPerMsg, Figure::SqesPerEnter, Figure::CqesPerEnter]),
    (
        "Context switches and tasks",
        &[Figure::VoluntaryCsPerMsg, Figure::InvoluntaryCsPerMsg, Figure::PeakThreads, Figure::PeakProcesses],
    ),
    (
        "Server CPU in the window: its own, and the interrupts on its threads",
        &[
            Figure::OwnCpuPerMsg,
            Figure::NetRxPerMsg,
            Figure::OtherSoftirqPerMsg,
            Figure::HardirqPerMsg,
            Figure::WindowCpuPerMsg,
            Figure::OwnCoresUsed,
            Figure::CoresUsed,
        ],
    ),
    (
        "Server CPU over its life, and memory",
        &[Figure::ServerCpuPerMsg, Figure::ServerUserMs, Figure::ServerSysMs, Figure::PeakRss, Figure::PssPerConn],
    ),
    ("Where the sampled CPU went (--profile): % of the samples with a stack, by kernel mechanism", &Figure::MECHANISM),
    ("Run-queue delay (--profile; p50 and p99 are log2 bucket bounds)", &Figure::RUN_QUEUE),
    (
        "What a context switch costs (--profile): scheduler CPU per switch plus the mean run-queue delay",
        &[Figure::SchedulerCpuPerSwitch, Figure::SwitchCost, Figure::SwitchCostPerMsg],
    ),
];

/// [`GROUPS`] as figures in [`Figure::ALL`]'s order, with every figure in exactly one group; a
/// group whose figures are 0 or missing in every row is left out (the io_uring group, when no
/// server used io_uring).
pub(crate) fn groups(doc: &Document) -> Vec<(&'static str, Vec<Figure>)> {
    let mut groups: Vec<_> = GROUPS
        .iter()
        .map(|(title, figures)| {
            (*title, Figure::ALL.iter().copied().filter(|f| figures.contains(f)).collect::<Vec<_>>())
        })
        .collect();
    let other: Vec<_> =
        Figure::ALL.iter().copied().filter(|f| !GROUPS.iter().any(|(_, figures)| figures.contains(f))).collect();
    if !other.is_empty() {
        groups.push(("Other", other));
    }
    let measured = |f: &Figure| doc.results.iter().any(|r| r.summary(*f).is_some_and(|s| s.max != 0.0));
    groups.retain(|(_, figures)| figures.iter().any(measured));
    groups
}

/// A table cell: the median, then the range when the runs differ at the digits shown,
/// e.g. `12.3k (11.9k–12.8k)`; a figure that was not measured is `–`.
fn cell(s: Option<Summary>) -> String {
    match cell_parts(s) {
        (median, range) if range.is_empty() => median,
        (median, range) => format!("{median} ({range})"),
    }
}

/// A cell's two parts: the median (or `–`), and `min–max` when the runs differ at the digits
/// shown (else empty).
pub(crate) fn cell_parts(s: Option<Summary>) -> (String, String) {
    let Some(s) = s else { return (MISSING.to_owned(), String::new()) };
    let (median, min, max) = (compact(s.median), compact(s.min), compact(s.max));
    if min == max { (median, String::new()) } else { (median, format!("{min}–{max}")) }
}

/// The connections column: `100`, or `100 +1k idle` with idle connections.
pub(crate) fn connections(result: &ModelResult) -> String {
    let r = &result.run;
    if r.workload.idle > 0 {
        format!("{} +{} idle", r.workload.connections, compact(r.workload.idle as f64))
    } else {
        r.workload.connections.to_string()
    }
}

/// The lines shown under the tables: interrupted runs, load errors, probe losses, and one line
/// for all the wide spreads (each is in the JSON's `spread` and on the HTML page).
fn warnings(doc: &Document) -> Vec<String> {
    let mut lines = notes(doc);
    lines.extend(spread_summary(doc));
    lines
}

/// Every warning about `doc`, a wide spread once per model and figure (the HTML page lists them).
pub(crate) fn detailed_warnings(doc: &Document) -> Vec<String> {
    let mut lines = notes(doc);
    lines.extend(spread_warnings(doc));
    lines
}

/// The warnings that are not about spread.
fn notes(doc: &Document) -> Vec<String> {
    let mut lines = Vec::new();
    if doc.incomplete {
        lines.push("warning: interrupted: these are the runs finished before the interruption".to_owned());
    }
    for skipped in &doc.unsupported {
        lines.push(format!("note: {}: not run: {}", skipped.model, skipped.reason));
    }
    // Every run on one kernel misses the same figures: each is said once.
    let mut unmeasured: Vec<&lab_measure::result::Unmeasured> = Vec::new();
    for missing in doc.results.iter().flat_map(|r| &r.run.not_measured) {
        if !unmeasured.contains(&missing) {
            unmeasured.push(missing);
        }
    }
    for missing in unmeasured {
        lines.push(format!("note: {}: {}", missing.figure, missing.cell()));
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
        lines.extend(crate::present::profile::lost_samples(r));
        let d = r.probe_dropped;
        if d.tasks + d.waits + d.epoll_members > 0 {
            lines.push(format!(
                "warning: {} at {} connections: the probe lost track of {} tasks, {} wait calls, {} epoll registrations",
                r.model, r.workload.connections, d.tasks, d.waits, d.epoll_members
            ));
        }
    }
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
pub const WATCHED: &[Figure] =
    &[Figure::MsgsPerSec, Figure::LatencyP50, Figure::SyscallsPerMsg, Figure::ServerCpuPerMsg];

/// One line for every wide spread of [`spread_warnings`]: the models and figures that varied,
/// and the worst spread; `None` when the runs agreed.
pub fn spread_summary(doc: &Document) -> Option<String> {
    let mut models: Vec<&str> = Vec::new();
    let mut figures: Vec<&str> = Vec::new();
    let mut worst: Option<(f64, String)> = None;
    for result in doc.results.iter().filter(|r| r.runs > 1) {
        for &figure in WATCHED {
            let Some(s) = result.spread.get(figure.key()).filter(|s| wide_spread(s)) else { continue };
            let model = result.run.model.as_str();
            if !models.contains(&model) {
                models.push(model);
            }
            if !figures.contains(&figure.label()) {
                figures.push(figure.label());
            }
            let (share, by) = if s.median == 0.0 {
                (f64::INFINITY, "around 0".to_owned())
            } else {
                let share = (s.max - s.min) / s.median.abs();
                (share, format!("by {:.0}%", share * 100.0))
            };
            if worst.as_ref().is_none_or(|(w, _)| share > *w) {
                let what = format!(
                    "{model} at {} connections, {} {by} ({}–{})",
                    result.run.workload.connections,
                    figure.label(),
                    compact(s.min),
                    compact(s.max)
                );
                worst = Some((share, what));
            }
        }
    }
    let (_, worst) = worst?;
    Some(format!(
        "warning: runs varied more than 10% for {} ({}); the most: {worst}; smaller differences are noise \
         (each spread is in --format json and --html)",
        models.join(", "),
        figures.join(", ")
    ))
}

/// One line for each model and watched figure whose runs disagree by more than 10%.
pub fn spread_warnings(doc: &Document) -> Vec<String> {
    let mut lines = Vec::new();
    for result in doc.results.iter().filter(|r| r.runs > 1) {
        for &figure in WATCHED {
            let Some(s) = result.spread.get(figure.key()) else { continue };
            if !wide_spread(s) {
                continue;
            }
            let header = figure.label();
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

    #[test]
    fn a_figure_this_kernel_cannot_give_is_named_once_for_all_runs() {
        let missing = |figure: &str| lab_measure::result::Unmeasured {
            figure: figure.into(),
            needs: format!("needs {figure}, Linux 5.11+"),
        };
        let run = |model: &str| {
            let mut r = RunResult { model: model.into(), messages_total: 100, ..RunResult::default() };
            r.not_measured = vec![missing("io_uring"), missing("wait.by_call.epoll_pwait2")];
            model_result(vec![r])
        };
        let mut doc = new_document("compare", 1);
        doc.results = vec![run("poll"), run("epoll"), run("thread")];
        let said: Vec<String> = notes(&doc).into_iter().filter(|l| l.contains("not measured on this kernel")).collect();
        assert_eq!(
            said,
            [
                "note: io_uring: not measured on this kernel (needs io_uring, Linux 5.11+)",
                "note: wait.by_call.epoll_pwait2: not measured on this kernel (needs wait.by_call.epoll_pwait2, Linux 5.11+)"
            ]
        );
    }
}
