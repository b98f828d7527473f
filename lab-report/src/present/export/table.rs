//! The terminal format: one small table per group of figures, a row per model.
//!
//! Sixteen figures with their ranges would be 300 columns wide, so the figures are split into
//! groups (see `GROUPS`) of 3 to 5, each table under 160 columns. Every table repeats the model
//! and connections columns so it reads on its own. Numbers are shortened (`12.3k`) and right
//! aligned; no colour. Redirected, the tables keep their full width; for a terminal
//! ([`render`] with a width) a table too wide with its ranges shows the medians alone, one still
//! too wide is split in two (each half with the model and connections again) until each fits, and
//! the heading, warnings and verdict wrap too.

use std::fmt::Write as _;

use tabled::{
    Table,
    builder::Builder,
    settings::{Alignment, Style, Width, object::Columns, peaker::Priority},
};

use super::{cell, cell_parts, connections, groups, heading, warnings, wrap};
use crate::results::{document::Document, figures::Figure, stats::Summary};

pub(super) fn render(doc: &Document, width: Option<usize>) -> String {
    if doc.is_one_run() {
        return crate::present::run_table::render(doc);
    }
    let fit = |text: &str, indent: &str| match width {
        Some(width) => wrap(text, width, indent),
        None => text.to_owned(),
    };
    let mut out = fit(&heading(doc), "") + "\n";
    let mut dropped_ranges = false;
    for (title, figures) in groups(doc) {
        let tables = match width {
            Some(width) if grid(doc, &figures).total_width() > width => {
                dropped_ranges |= doc.runs_per_model > 1;
                split_to_fit(doc, &figures, width)
            }
            _ => vec![grid(doc, &figures)],
        };
        for (part, mut table) in tables.into_iter().enumerate() {
            table.with(Style::rounded()).modify(Columns::new(2..), Alignment::right());
            if let Some(width) = width {
                // The last resort, for a single figure wider than the terminal.
                table.with(Width::wrap(width).keep_words(true).priority(Priority::max(false)));
            }
            let more = if part > 0 { " (continued)" } else { "" };
            let _ = write!(out, "\n{}\n{table}\n", fit(&format!("{title}{more}"), ""));
        }
    }
    for m in doc.results.iter().filter(|m| m.run.syscall_times.is_some()) {
        let _ = write!(out, "\n{} (the median run; histograms in --format json or `iolab run --timing`):", m.run.model);
        out += &crate::present::timing_table::table(m.run.syscall_times.as_ref().unwrap_or(&Default::default()));
    }
    out += &crate::present::profile::histograms(doc, width);
    if dropped_ranges {
        out += &fit(
            "\n(medians only where the ranges did not fit this terminal: redirect the output for them, or see --format json or --html)",
            "",
        );
        out.push('\n');
    }
    let warnings = warnings(doc);
    if !warnings.is_empty() {
        out.push('\n');
        for line in warnings {
            out += &fit(&line, "  ");
            out.push('\n');
        }
    }
    if !doc.verdict.is_empty() {
        out += "\nVerdict:\n";
        for line in &doc.verdict {
            let _ = writeln!(out, "  {}", width.map_or_else(|| line.clone(), |w| wrap(line, w - 2, "  ")));
        }
    }
    out
}

/// The unstyled table of `figures`: a header row with units, then a row per model.
pub(super) fn grid(doc: &Document, figures: &[Figure]) -> Table {
    grid_with(doc, figures, cell)
}

/// The medians of `figures` in as few tables as fit `width`: halved until each fits, or holds one
/// figure.
fn split_to_fit(doc: &Document, figures: &[Figure], width: usize) -> Vec<Table> {
    let medians = grid_with(doc, figures, |s| cell_parts(s).0);
    if medians.total_width() <= width || figures.len() == 1 {
        return vec![medians];
    }
    let (first, second) = figures.split_at(figures.len() / 2);
    let mut tables = split_to_fit(doc, first, width);
    tables.extend(split_to_fit(doc, second, width));
    tables
}

/// [`grid`] with each figure's cell written by `cell`.
fn grid_with(doc: &Document, figures: &[Figure], cell: impl Fn(Option<Summary>) -> String) -> Table {
    let mut builder = Builder::default();
    let header = ["model", "conns"].into_iter().map(str::to_owned).chain(figures.iter().map(|f| f.label().to_owned()));
    builder.push_record(header);
    for result in &doc.results {
        let row = [result.run.model.clone(), connections(result)]
            .into_iter()
            .chain(figures.iter().map(|&f| cell(result.summary(f))));
        builder.push_record(row);
    }
    builder.build()
}
