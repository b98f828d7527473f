//! One record that is not a comparison of models — a load report, a selftest, a bench, an
//! interval of top — in any `--format`: the text a person reads, the record as one JSON line, or
//! its fields flattened (`latency_us.p50`) into one CSV row or a two-column Markdown table. Like
//! a document, it starts with the schema version and the command that made it.

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::Format;
use crate::results::document::SCHEMA_VERSION;

/// `record`, made by `command`, in `format`; `table` is the text shown for people, ending with a
/// newline.
pub fn render(command: &str, record: &impl Serialize, format: Format, table: String) -> Result<String> {
    let mut value = serde_json::json!({ "schema_version": SCHEMA_VERSION, "command": command });
    match serde_json::to_value(record)? {
        Value::Object(fields) => value.as_object_mut().expect("an object").extend(fields),
        other => value["record"] = other,
    }
    Ok(match format {
        Format::Table => table,
        Format::Json => serde_json::to_string(&value)? + "\n",
        Format::Csv => {
            let fields = flatten(&value);
            let mut writer = ::csv::Writer::from_writer(Vec::new());
            writer.write_record(fields.iter().map(|(k, _)| k))?;
            writer.write_record(fields.iter().map(|(_, v)| v))?;
            String::from_utf8(writer.into_inner()?)?
        }
        Format::Markdown => {
            let mut out = String::from("| field | value |\n|---|---:|\n");
            for (k, v) in flatten(&value) {
                out += &format!("| {k} | {v} |\n");
            }
            out
        }
    })
}

/// Every leaf of `value` as `(dotted.path, text)`, in the record's own order.
fn flatten(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Vec<(String, String)>) {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, join(k), out)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| walk(v, join(&i.to_string()), out)),
        Value::String(s) => out.push((path, s.clone())),
        other => out.push((path, other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_flatten_to_dotted_columns() {
        let record = serde_json::json!({ "a": 1, "b": { "c": "x", "d": [true, 2.5] } });
        let csv = render("test", &record, Format::Csv, String::new()).unwrap();
        let head = format!("schema_version,command,a,b.c,b.d.0,b.d.1\n{SCHEMA_VERSION},test,");
        assert_eq!(csv, head + "1,x,true,2.5\n");
        let md = render("test", &record, Format::Markdown, String::new()).unwrap();
        let rows = "| a | 1 |\n| b.c | x |\n| b.d.0 | true |\n| b.d.1 | 2.5 |\n";
        let head =
            format!("| field | value |\n|---|---:|\n| schema_version | {SCHEMA_VERSION} |\n| command | test |\n");
        assert_eq!(md, head + rows);
    }
}
