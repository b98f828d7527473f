//! The CSV format: one row per model, one column per figure, for spreadsheets and scripts.
//!
//! Columns are named by the figure keys (which carry their units) rather than the table headers,
//! so scripts can rely on them; each figure has its median and then `<key>_min`, `<key>_max`.
//! Numbers keep full precision; a figure that was not measured is three empty fields. The `csv`
//! crate does the quoting.

use crate::results::{document::Document, figures::Figure};

pub(super) fn render(doc: &Document) -> String {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> =
        ["model", "connections", "idle", "messages_total", "payload_bytes", "runs"].map(str::to_owned).to_vec();
    for f in Figure::ALL {
        header.extend([f.key().to_owned(), format!("{}_min", f.key()), format!("{}_max", f.key())]);
    }
    writer.write_record(&header).expect("writing to memory");
    for result in &doc.results {
        let r = &result.run;
        let mut row = vec![
            r.model.clone(),
            r.workload.connections.to_string(),
            r.workload.idle.to_string(),
            r.messages_total.to_string(),
            r.workload.payload_bytes.to_string(),
            result.runs.to_string(),
        ];
        for &f in Figure::ALL {
            match result.summary(f) {
                Some(s) => row.extend([s.median.to_string(), s.min.to_string(), s.max.to_string()]),
                None => row.extend([String::new(), String::new(), String::new()]),
            }
        }
        writer.write_record(&row).expect("writing to memory");
    }
    String::from_utf8(writer.into_inner().expect("writing to memory")).expect("the fields are UTF-8")
}
