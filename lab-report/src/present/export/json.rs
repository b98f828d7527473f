//! The JSON format: the [`Document`] itself, pretty-printed.
//!
//! It is exactly what `--save` stores and what `iolab report` reads back, so nothing a program
//! could want is lost in the rendering.

use crate::results::document::Document;

pub(super) fn render(doc: &Document) -> String {
    let mut out = serde_json::to_string_pretty(doc).expect("a Document always serializes");
    out.push('\n');
    out
}
