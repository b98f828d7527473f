//! The terminal format: one small table per group of figures, a row per model.
//!
//! Sixteen figures with their ranges would be 300 columns wide, so the figures are split into
//! groups (see `GROUPS`) of 3 to 5, each table under 160 columns. Every table repeats the model
//! and connections columns so it reads on its own. Numbers are shortened (`12.3k`) and right
//! aligned; no colour, so output is the same in a terminal, a pipe or a file.

use std::fmt::Write as _;

use tabled::{
    Table,
    builder::Builder,
    settings::{Alignment, Style, object::Columns},
};

use super::{cell, connections, groups, heading, warnings};
use crate::results::{document::Document, figures::Figure};

pub(super) fn render(doc: &Document) -> String {
    if doc.is_one_run() {
        return crate::present::run_table::render(doc);
    }
    let mut out = heading(doc) + "\n";
    for (title, figures) in groups(doc) {
        let mut table = grid(doc, &figures);
        table.with(Style::rounded()).modify(Columns::new(2..), Alignment::right());
        let _ = write!(out, "\n{title}\n{table}\n");
    }
    for m in doc.results.iter().filter(|m| m.run.syscall_times.is_some()) {
        let _ = write!(out, "\n{} (the median run; histograms in --format json or `iolab run --timing`):", m.run.model);
        out += &crate::present::timing_table::table(m.run.syscall_times.as_ref().unwrap_or(&Default::default()));
    }
    let warnings = warnings(doc);
    if !warnings.is_empty() {
        out.push('\n');
        for line in warnings {
            out += &line;
            out.push('\n');
        }
    }
    if !doc.verdict.is_empty() {
        out += "\nVerdict:\n";
        for line in &doc.verdict {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// The unstyled table of `figures`: a header row with units, then a row per model.
pub(super) fn grid(doc: &Document, figures: &[Figure]) -> Table {
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
