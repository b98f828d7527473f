//! The Markdown format: the terminal tables as GitHub tables, for pasting into an issue or a note.
//!
//! Same groups and cells as the terminal tables (see `table.rs`), so both read alike; the
//! warnings and the verdict become bullet lists.

use std::fmt::Write as _;

use tabled::settings::{Alignment, Style, object::Columns};

use super::{groups, heading, table::grid, warnings};
use crate::results::document::Document;

pub(super) fn render(doc: &Document) -> String {
    let mut out = heading(doc) + "\n";
    for (title, figures) in groups(doc) {
        let mut table = grid(doc, &figures);
        table.with(Style::markdown()).modify(Columns::new(2..), Alignment::right());
        let _ = write!(out, "\n**{title}**\n\n{table}\n");
    }
    let warnings = warnings(doc);
    if !warnings.is_empty() {
        out += "\n**Warnings**\n\n";
        for line in warnings {
            let _ = writeln!(out, "- {}", line.trim_start_matches("warning: "));
        }
    }
    if !doc.verdict.is_empty() {
        out += "\n**Verdict**\n\n";
        for line in &doc.verdict {
            let _ = writeln!(out, "- {line}");
        }
    }
    out
}
