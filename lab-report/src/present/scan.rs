//! `iolab scan` in every `--format`: a table of the cost of one wait call against the fds it
//! watches, the published figures beside it in the same unit, and a sentence comparing the shapes.
//!
//! The JSON is the report as one record (see `export::record`), so a script finds `rows[].model`,
//! `fds`, `wait_calls` and `cpu_ns_per_wait` with the published reference after them; the CSV is
//! one line per row, its columns named by the row's fields. The table and the Markdown share one
//! grid. Published figures are elapsed time per operation on 2006 hardware, ours on-CPU time
//! inside the call: the magnitudes are not comparable, the shapes (the ratio from the fewest fds
//! to the most) are, and the sentence compares those. A scan with `--ready` has each point in
//! both modes (`mode` column: calls that sleep, calls that find the message queued) and a second
//! sentence saying what sleeping costs a call of each model, and why.

use std::fmt::Write as _;

use tabled::{
    builder::Builder,
    settings::{Alignment, Style, object::Columns},
};

use crate::{
    present::{
        export::{Format, record},
        numbers::compact,
    },
    results::{
        mechanism::Mechanism,
        scan::{Mode, ScanReport, ScanRow},
        stats::{Summary, wide_spread},
    },
};

/// `report` in `format`, ending with a newline.
pub fn render(report: &ScanReport, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => record::render("scan", report, Format::Json, String::new())?,
        Format::Csv => csv(&report.rows)?,
        Format::Table => text(report, false),
        Format::Markdown => text(report, true),
    })
}

fn csv(rows: &[ScanRow]) -> anyhow::Result<String> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// The table (or Markdown) with its heading, the reference's source, the shape sentence and the
/// warnings.
fn text(report: &ScanReport, markdown: bool) -> String {
    let m = &report.machine;
    let p = &report.published;
    let mut out = format!(
        "iolab scan: one busy connection of N, {} messages per run, median of {} runs per point (min–max in \
         brackets); kernel {}, {} CPUs; {}\n",
        report.calls, report.runs_per_point, m.kernel, m.cpus, report.created
    );
    let mut table = grid(report).build();
    if markdown {
        table.with(Style::markdown());
    } else {
        table.with(Style::rounded());
    }
    table.modify(Columns::new(1..), Alignment::right());
    let title = "The cost of one wait call against the fds it watches (on-CPU time inside the call)";
    out += &if markdown { format!("\n**{title}**\n\n") } else { format!("\n{title}\n") };
    let _ = writeln!(out, "{table}");
    let _ = writeln!(
        out,
        "\npublished: {} ({}): {}.\n\
         µs/op is the slide's seconds ÷ {} operations: elapsed time per operation on 2006 hardware, against \
         our on-CPU time inside the call; compare the ratios, not the µs.",
        p.source,
        p.url,
        p.measured,
        compact(p.operations as f64)
    );
    if let Some(sentence) = shape(report) {
        let _ = writeln!(out, "\n{sentence}");
    }
    if let Some(sentence) = sleeping(report) {
        let _ = writeln!(out, "\n{sentence}");
    }
    if let Some(sentence) = mechanisms(report) {
        let _ = writeln!(out, "\n{sentence}");
    }
    for line in warnings(report) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The header and one row per measured point, the published figure beside it where there is one.
fn grid(report: &ScanReport) -> Builder {
    let mut builder = Builder::default();
    builder.push_record([
        "model",
        "fds",
        "mode",
        "wait calls",
        "CPU µs/wait",
        "× fewest fds",
        "ns/watched fd",
        "fds passed/wait",
        "fds watched/wait",
        "ready/wait",
        "slept/wait",
        "published µs/op",
        "published ×",
    ]);
    let p = &report.published;
    for r in &report.rows {
        let smallest =
            report.rows.iter().filter(|o| o.model == r.model && o.mode == r.mode).map(|o| o.fds).min().unwrap_or(r.fds);
        let published = p.us_per_operation(&r.model, r.fds);
        let published_ratio = published.zip(p.us_per_operation(&r.model, smallest)).map(|(a, b)| a / b);
        builder.push_record([
            r.model.clone(),
            r.fds.to_string(),
            r.mode.name().to_owned(),
            r.wait_calls.to_string(),
            cost(r),
            compact(r.ratio_to_smallest),
            compact(r.ns_per_watched_fd),
            compact(r.fds_passed_per_wait),
            compact(r.fds_watched_per_wait),
            compact(r.ready_per_wait),
            compact(r.slept_fraction),
            published.map_or_else(String::new, compact),
            published_ratio.map_or_else(String::new, compact),
        ]);
    }
    builder
}

/// The cost of one call in µs, with its range over the runs when they differ at the digits shown.
fn cost(r: &ScanRow) -> String {
    let (median, min, max) =
        (compact(r.cpu_ns_per_wait / 1e3), compact(r.cpu_ns_per_wait_min / 1e3), compact(r.cpu_ns_per_wait_max / 1e3));
    if min == max { median } else { format!("{median} ({min}–{max})") }
}

/// A ratio from the fewest fds to the most at or above which a call's cost "grows with N"; at or
/// below [`FLAT`] it "stays flat". Over three orders of magnitude of N the published poll and
/// select grew by 849× and more, epoll by 1.5×.
const GROWS: f64 = 10.0;
const FLAT: f64 = 2.0;

fn class(ratio: f64) -> &'static str {
    if ratio >= GROWS {
        "grows with N"
    } else if ratio <= FLAT {
        "stays flat"
    } else {
        "grows a little"
    }
}

/// One sentence per scan: for each model the slide also measured, its cost at the most fds over
/// the fewest, measured and published, over the largest range of N both have, and where the two
/// agree on the shape (grows with N, stays flat) and where not. The slide's calls each found an fd
/// ready, so the `ready` rows are compared when the scan has them, the `sleeps` ones otherwise.
/// `None` when no such model was measured at two of the slide's N.
pub fn shape(report: &ScanReport) -> Option<String> {
    let p = &report.published;
    let mode = if report.rows.iter().any(|r| r.mode == Mode::Ready) { Mode::Ready } else { Mode::Sleeps };
    let mut ratios = Vec::new();
    let mut agree: Vec<(&str, &str)> = Vec::new();
    let mut disagree = Vec::new();
    let mut range = None;
    for model in report.models() {
        let shared: Vec<&ScanRow> = report
            .rows
            .iter()
            .filter(|r| r.model == model && r.mode == mode && p.us_per_operation(model, r.fds).is_some())
            .collect();
        let (Some(lo), Some(hi)) = (shared.iter().min_by_key(|r| r.fds), shared.iter().max_by_key(|r| r.fds)) else {
            continue;
        };
        if lo.fds == hi.fds || lo.cpu_ns_per_wait == 0.0 {
            continue;
        }
        let measured = hi.cpu_ns_per_wait / lo.cpu_ns_per_wait;
        let published = p.us_per_operation(model, hi.fds)? / p.us_per_operation(model, lo.fds)?;
        ratios.push(format!("{model} {}× (published {}×)", compact(measured), compact(published)));
        if class(measured) == class(published) {
            agree.push((model, class(measured)));
        } else {
            disagree.push(format!("{model} {} here but {} in the slide", class(measured), class(published)));
        }
        range.get_or_insert((lo.fds, hi.fds));
    }
    let (lo, hi) = range?;
    let mut shape = Vec::new();
    for kind in ["grows with N", "grows a little", "stays flat"] {
        let models: Vec<&str> = agree.iter().filter(|(_, c)| *c == kind).map(|(m, _)| *m).collect();
        if !models.is_empty() {
            let verb = if models.len() > 1 {
                kind.replacen("grows", "grow", 1).replacen("stays", "stay", 1)
            } else {
                kind.to_owned()
            };
            shape.push(format!("{} {verb}", models.join(" and ")));
        }
    }
    let mut sentence = format!(
        "One wait call{} at {} fds over one at {}: {}.",
        if mode == Mode::Ready { " that finds a message ready" } else { "" },
        compact(hi as f64),
        compact(lo as f64),
        ratios.join(", ")
    );
    if !shape.is_empty() {
        sentence += &format!(" The shape agrees: {}, here as in the slide", shape.join(", "));
        sentence += if disagree.is_empty() { "." } else { ";" };
    }
    if !disagree.is_empty() {
        let lead = if shape.is_empty() { " The shape disagrees" } else { " it disagrees" };
        sentence += &format!("{lead}: {}.", disagree.join("; "));
    }
    sentence += &format!(" (At least {GROWS}× counts as growing with N, at most {FLAT}× as flat.)");
    Some(sentence)
}

/// With both modes measured: for each model, what a call that sleeps costs over one that finds
/// the message ready, at the most fds both were measured at, and why. poll and select that sleep
/// walk every fd twice: the first walk also puts the caller on each socket's wait queue (undone
/// on the way out), the second collects what is ready after the wake-up. One that finds an fd
/// ready walks once, and stops registering at that fd (`_qproc` set to NULL in `do_poll` and
/// `do_select`); the busy connection is among the first fds here, so it registers almost none.
/// Two walks make 2×, the registering more. epoll looks at its ready list either way, and
/// sleeping adds only the wake-up path. `None` without a model in both modes.
pub fn sleeping(report: &ScanReport) -> Option<String> {
    let mut ratios = Vec::new();
    let mut at = None;
    for model in report.models() {
        let both = report.rows.iter().filter(|r| r.model == model && r.mode == Mode::Sleeps).filter_map(|s| {
            let ready = report.rows.iter().find(|r| r.model == model && r.mode == Mode::Ready && r.fds == s.fds)?;
            (ready.cpu_ns_per_wait > 0.0).then_some((s, ready))
        });
        let Some((sleeps, ready)) = both.max_by_key(|(s, _)| s.fds) else { continue };
        ratios.push(format!(
            "{model} {}× at {} fds (slept {} vs {} of its calls)",
            compact(sleeps.cpu_ns_per_wait / ready.cpu_ns_per_wait),
            compact(sleeps.fds as f64),
            percent(sleeps.slept_fraction),
            percent(ready.slept_fraction)
        ));
        at.get_or_insert(());
    }
    at?;
    Some(format!(
        "A wait call that sleeps over one that finds the message ready: {}. A poll or select that sleeps walks \
         every fd twice, putting itself on each socket's wait queue in the first walk (and taking itself off on \
         the way out) and collecting what is ready in the second; one that finds an fd ready walks once and stops \
         registering at that fd, among the first here: two walks make 2×, the registering the rest. epoll looks \
         only at its ready list either way; sleeping adds the wake-up path alone (switched out, woken by the \
         socket's callback, switched back in).",
        ratios.join(", ")
    ))
}

/// With `--profile`: where each model's CPU went at its most fds (the default mode), from the
/// stacks: the per-fd walk, epoll's ready list and the scheduler. `None` without a profile.
pub fn mechanisms(report: &ScanReport) -> Option<String> {
    let mut parts = Vec::new();
    for model in report.models() {
        let most = report.rows.iter().filter(|r| r.model == model && r.mode == Mode::Sleeps).max_by_key(|r| r.fds);
        let Some(row) = most.filter(|r| r.profile_percent.is_some()) else { continue };
        let share = |m| row.percent_in(m).map_or_else(|| "none".to_owned(), |p| format!("{} %", compact(p)));
        parts.push(format!(
            "{model} at {} fds: {} in the per-fd walk, {} in epoll's ready list, {} in the scheduler",
            compact(row.fds as f64),
            share(Mechanism::FdWalk),
            share(Mechanism::EpollReady),
            share(Mechanism::Scheduler)
        ));
    }
    (!parts.is_empty())
        .then(|| format!("Where the sampled CPU went (--profile, the calls that slept): {}.", parts.join("; ")))
}

/// `fraction` as a whole percentage.
fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// A ready point whose calls slept more often than this did not keep a message queued.
const READY_SLEPT_AT_MOST: f64 = 0.1;

/// Lines under the table: an interrupted scan, load errors, runs that disagree by more than 10%,
/// a point where a call did not find exactly one fd ready, a ready point whose calls slept.
pub(crate) fn warnings(report: &ScanReport) -> Vec<String> {
    let mut lines = Vec::new();
    if report.incomplete {
        lines.push("warning: interrupted: these are the points finished before the interruption".to_owned());
    }
    for r in &report.rows {
        let point = match r.mode {
            Mode::Sleeps => format!("{} at {} fds", r.model, r.fds),
            Mode::Ready => format!("{} at {} fds, ready", r.model, r.fds),
        };
        if r.errors > 0 {
            lines.push(format!("warning: {point}: {} load errors; its figures are not comparable", r.errors));
        }
        let spread = Summary { median: r.cpu_ns_per_wait, min: r.cpu_ns_per_wait_min, max: r.cpu_ns_per_wait_max };
        if wide_spread(&spread) {
            lines.push(format!(
                "warning: {point}: one call cost {}–{} µs over {} runs; smaller differences are noise",
                compact(spread.min / 1e3),
                compact(spread.max / 1e3),
                r.runs
            ));
        }
        if r.wait_calls != r.ready {
            lines.push(format!(
                "note: {point}: {} wait calls returned {} ready fds in all, not one each",
                r.wait_calls, r.ready
            ));
        }
        if r.mode == Mode::Ready && r.slept_fraction > READY_SLEPT_AT_MOST {
            lines.push(format!(
                "warning: {point}: {} of the calls slept; the message was not always queued, so their cost mixes \
                 both cases",
                percent(r.slept_fraction)
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of `model` at `fds` whose 1,000 calls took `ns_per_call` each.
    fn row(model: &str, fds: u64, ns_per_call: u64) -> ScanRow {
        let run = lab_measure::result::RunResult {
            model: model.to_owned(),
            workload: lab_load::Workload { connections: 1, idle: fds as usize - 1, ..Default::default() },
            messages_total: 1_000,
            wait: lab_measure::result::WaitTotals {
                all: lab_measure::result::WaitCall {
                    stats: lab_common::WaitStats {
                        calls: 1_000,
                        ready: 1_000,
                        cpu_ns: 1_000 * ns_per_call,
                        fds_watched: 1_000 * (fds + 1),
                        ..Default::default()
                    },
                    max_ready: 1,
                },
                ..Default::default()
            },
            ..Default::default()
        };
        ScanRow::from_runs(&[run])
    }

    #[test]
    fn the_shape_sentence_compares_the_ratios_over_the_widest_shared_range() {
        let rows = vec![
            row("poll", 10, 4_000),
            row("poll", 20, 5_000), // not on the slide: left out of the comparison
            row("poll", 10_000, 6_000_000),
            row("epoll", 10, 2_000),
            row("epoll", 10_000, 2_400),
        ];
        let report = ScanReport::new(rows, 1_000, 1, false);
        assert_eq!(report.rows[2].ratio_to_smallest, 1500.0);
        assert_eq!(report.rows[4].ratio_to_smallest, 1.2);
        assert_eq!(
            shape(&report).unwrap(),
            "One wait call at 10.0k fds over one at 10: poll 1500× (published 1562×), epoll 1.20× (published 1.49×). \
             The shape agrees: poll grows with N, epoll stays flat, here as in the slide. \
             (At least 10× counts as growing with N, at most 2× as flat.)"
        );
    }

    /// `row`, measured with a message ready, `slept` of its 1,000 calls having slept.
    fn ready_row(model: &str, fds: u64, ns_per_call: u64, slept: u64) -> ScanRow {
        let mut r = row(model, fds, ns_per_call);
        (r.mode, r.slept, r.slept_fraction) = (Mode::Ready, slept, slept as f64 / 1_000.0);
        r
    }

    #[test]
    fn the_sleeping_sentence_compares_each_model_at_its_most_fds_in_both_modes() {
        let mut sleeps = vec![row("poll", 10, 6_000), row("poll", 1_000, 120_000), row("epoll", 1_000, 3_000)];
        for r in &mut sleeps {
            (r.slept, r.slept_fraction) = (1_000, 1.0);
        }
        let rows = vec![
            sleeps[0].clone(),
            ready_row("poll", 10, 2_000, 200),
            sleeps[1].clone(),
            ready_row("poll", 1_000, 40_000, 10),
            sleeps[2].clone(),
            ready_row("epoll", 1_000, 1_000, 5),
            ready_row("select", 10, 2_000, 0), // ready alone: nothing to compare
        ];
        let report = ScanReport::new(rows, 1_000, 1, false);
        assert_eq!(report.rows[3].ratio_to_smallest, 20.0, "ready rows are compared with ready rows");
        let sentence = sleeping(&report).unwrap();
        assert!(
            sentence.starts_with(
                "A wait call that sleeps over one that finds the message ready: poll 3× at 1000 fds (slept 100% vs \
                 1% of its calls), epoll 3× at 1000 fds (slept 100% vs 0% of its calls). A poll or select"
            ),
            "{sentence}"
        );
        assert!(
            shape(&report).unwrap().starts_with("One wait call that finds a message ready at 1000 fds over one at 10")
        );
        assert_eq!(sleeping(&ScanReport::new(vec![row("poll", 10, 1)], 1_000, 1, false)), None);
        let lines = warnings(&report);
        assert_eq!(
            lines,
            [
                "warning: poll at 10 fds, ready: 20% of the calls slept; the message was not always queued, so their cost mixes both cases"
            ]
        );
    }

    #[test]
    fn a_shape_that_differs_from_the_slide_is_said() {
        let rows = vec![row("select", 100, 8_000), row("select", 1_000, 16_000)];
        let report = ScanReport::new(rows, 1_000, 1, false);
        assert_eq!(
            shape(&report).unwrap(),
            "One wait call at 1000 fds over one at 100: select 2× (published 21.3×). \
             The shape disagrees: select stays flat here but grows with N in the slide. \
             (At least 10× counts as growing with N, at most 2× as flat.)"
        );
        let one_point = ScanReport::new(vec![row("select", 100, 8_000)], 1_000, 1, false);
        assert_eq!(shape(&one_point), None, "one N is no shape");
    }
}
