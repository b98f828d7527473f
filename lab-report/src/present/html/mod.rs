//! The report as one self-contained HTML page: `--html FILE` on every command that writes
//! results, and `iolab report --html` for saved ones.
//!
//! Top to bottom: the question and the verdict, the conditions (machine, date, command, runs,
//! warnings), one chart per group of figures, every table (a tooltip per column from the figure's
//! own description), and the whole JSON record embedded, so the page is also the data. The CSS,
//! the charts (SVG) and the small script that sorts a table by any column are all inline: the page
//! opens from disk with no network, and prints.
//!
//! Everything that comes from the user (server names, commands, paths) goes through [`esc`], or
//! [`json_script`] inside the embedded JSON, so it shows as text and runs nothing.

mod charts;

use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    present::{
        claims::ClaimsReport,
        export::{self, cell_parts, connections},
        numbers::{MISSING, compact},
        scan as scan_text,
    },
    results::{document::Document, figures::Figure, scan::ScanReport},
};

const STYLE: &str = include_str!("style.css");
const SORT: &str = include_str!("sort.js");

/// `text` safe inside HTML text and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON that can sit inside `<script type="application/json">`: `<`, `>` and `&` are
/// written `\u003c`, `\u003e`, `\u0026` (still the same JSON), so no string in it can close the
/// element.
pub fn json_script(value: &impl Serialize) -> String {
    let json = serde_json::to_string_pretty(value).expect("a report always serializes");
    json.replace('&', "\\u0026").replace('<', "\\u003c").replace('>', "\\u003e")
}

/// A command line as a user would type it: words with spaces or shell characters in single quotes.
fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:@+%".contains(c));
            if plain { word.clone() } else { format!("'{}'", word.replace('\'', r"'\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The page around `body`: title, style, the sorting script and the embedded record.
fn page(title: &str, body: &str, data: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}\
         <h2 id=\"data\">The data</h2>\n<p>The whole record is embedded in this page as JSON \
         (<code>script#iolab-data</code>): it is what <code>--format json</code> writes.</p>\n\
         <script type=\"application/json\" id=\"iolab-data\">\n{data}\n</script>\n\
         <footer>Made by iolab. Click a column heading to sort by it; hover it for what it measures.</footer>\n\
         <script>\n{SORT}</script>\n</body>\n</html>\n",
        title = esc(title)
    )
}

/// A `<dl>` of label and (already escaped) value pairs.
fn conditions(rows: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"conditions\">\n");
    for (label, value) in rows {
        let _ = writeln!(out, "<dt>{}</dt><dd>{value}</dd>", esc(label));
    }
    out + "</dl>\n"
}

/// A bullet list of `lines`, escaped, with `class`; nothing when there are none.
fn list(class: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!("<ul class=\"{class}\">\n");
    for line in lines {
        let _ = writeln!(out, "<li>{}</li>", esc(line));
    }
    out + "</ul>\n"
}

/// A table heading cell: the label, the unit under it, the description as its tooltip.
fn th(label: &str, unit: &str, description: &str, numeric: bool) -> String {
    let unit = if unit.is_empty() || label.contains(unit) {
        String::new()
    } else {
        format!("<span class=\"unit\">{}</span>", esc(unit))
    };
    let class = if numeric { " class=\"num\"" } else { "" };
    format!("<th{class} title=\"{}\" scope=\"col\">{}{unit}</th>", esc(description), esc(label))
}

/// A numeric cell: its shown text, and its value to sort by (`None`: not measured, sorted last).
fn td_num(value: Option<f64>, shown: &str, range: &str) -> String {
    let v = value.map_or_else(String::new, |v| v.to_string());
    let range = if range.is_empty() { String::new() } else { format!("<span class=\"range\">{}</span>", esc(range)) };
    format!("<td class=\"num\" data-v=\"{v}\">{}{range}</td>", esc(shown))
}

fn td_text(text: &str) -> String {
    format!("<td class=\"text\">{}</td>", esc(text))
}

/// The question a command answers, as the page's first line.
fn question(command: &str) -> &'static str {
    match command {
        "compare" => "What does each way of writing a concurrent TCP server cost the kernel, for the same load?",
        "prove" => "What does each server cost when every connection is ready at the same moment?",
        "sweep" => "How does each server's cost per message grow with the number of connections?",
        "run" | "trace" => "What did one run of this server cost the kernel?",
        "report" => "What did the saved runs cost the kernel, side by side?",
        _ => "What did each server cost the kernel?",
    }
}

/// The page of a results document (`run`, `compare`, `prove`, `sweep`, `report`).
pub fn document(doc: &Document) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<h1>iolab {}</h1>", esc(&doc.command));
    let _ = writeln!(body, "<p class=\"question\">{}</p>", esc(question(&doc.command)));
    if !doc.verdict.is_empty() {
        body += "<section class=\"verdict\" id=\"verdict\">\n<h2>Verdict</h2>\n";
        body += &list("verdict-lines", &doc.verdict);
        body += "</section>\n";
    }
    body += "<h2 id=\"conditions\">Conditions</h2>\n";
    let runs = if doc.runs_per_model > 1 {
        format!("median of {} runs per model, after one warm-up run (min–max under each figure)", doc.runs_per_model)
    } else {
        "1 run per model".to_owned()
    };
    let mut rows = vec![
        ("kernel", esc(&doc.machine.kernel)),
        ("CPUs", doc.machine.cpus.to_string()),
        ("date", esc(&doc.created)),
        ("command", format!("<code class=\"cmd\">{}</code>", esc(&shell_line(&doc.argv)))),
        ("runs", esc(&runs)),
    ];
    if let Some(r) = doc.results.first() {
        let w = &r.run.workload;
        let mut counts: Vec<usize> = doc.results.iter().map(|r| r.run.workload.connections).collect();
        counts.sort_unstable();
        counts.dedup();
        let counts = counts.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        let load = if w.lockstep {
            format!("{counts} connections in lockstep rounds")
        } else {
            format!("{counts} connections × {} messages of {} bytes", w.messages_per_connection, w.payload_bytes)
        };
        rows.push(("load", esc(&load)));
    }
    if doc.incomplete {
        rows.push(("status", "interrupted: these are the runs finished before the interruption".into()));
    }
    body += &conditions(&rows);
    body += &list("warnings", &export::detailed_warnings(doc));

    let groups = export::groups(doc);
    if !doc.results.is_empty() {
        body += "<h2 id=\"charts\">Charts</h2>\n";
        let sweep = charts::is_sweep(doc);
        for (title, figures) in &groups {
            let svg = if sweep { charts::lines(doc, figures) } else { charts::bars(doc, figures) };
            let caption = if sweep {
                "Median per model against connections (log scale)."
            } else {
                "Median per model; the thin line is the range over the runs."
            };
            let _ = writeln!(
                body,
                "<figure class=\"chart\"><h3>{}</h3>\n{svg}<figcaption>{caption}</figcaption></figure>",
                esc(title)
            );
        }
        body += "<h2 id=\"tables\">Tables</h2>\n";
        for (title, figures) in &groups {
            let _ = writeln!(body, "<h3>{}</h3>", esc(title));
            body += &figure_table(doc, figures);
        }
        body += &flame_graphs(doc);
    }
    page(&format!("iolab {}", doc.command), &body, &json_script(doc))
}

/// Each profiled run's on-CPU flame graph, static (inferno's script is the file's, not the
/// page's): its frames' tooltips give their samples.
fn flame_graphs(doc: &Document) -> String {
    let mut out = String::new();
    for (n, result) in doc.results.iter().enumerate() {
        let r = &result.run;
        let Some(profile) = &r.profile else { continue };
        let title = format!("{} at {} connections", r.model, connections(result));
        let svg = match crate::present::profile::flame::inline_svg(profile, &title, n) {
            Ok(Some(svg)) => svg,
            Ok(None) => continue,
            Err(e) => format!("<p class=\"warnings\">{}</p>\n", esc(&format!("no flame graph: {e:#}"))),
        };
        if out.is_empty() {
            out += "<h2 id=\"flame-graphs\">Flame graphs</h2>\n";
        }
        let _ = writeln!(
            out,
            "<figure class=\"flame\"><h3>{}</h3>\n{svg}<figcaption>On-CPU samples of the median run, the root at \
             the bottom; kernel frames orange, user frames red. Hover a frame for its samples; \
             <code>--flamegraph DIR</code> writes it as an SVG to zoom and search.</figcaption></figure>",
            esc(&title)
        );
    }
    out
}

/// One group's table: model, connections, then each figure (median, range under it).
fn figure_table(doc: &Document, figures: &[Figure]) -> String {
    let mut out = String::from("<table class=\"sortable figures\">\n<thead><tr>");
    out += &th("model", "", "The server model, or a --server of yours.", false);
    out += &th("conns", "", "Connections open (busy, then idle ones).", true);
    for f in figures {
        out += &th(f.label(), f.unit(), f.description(), true);
    }
    out += "</tr></thead>\n<tbody>\n";
    for (i, result) in doc.results.iter().enumerate() {
        let model = &result.run.model;
        let key = charts::color(charts::model_index(doc, model).unwrap_or(i));
        let _ = write!(
            out,
            "<tr><td class=\"text\"><span class=\"key\" style=\"background:{key}\"></span>{}</td>",
            esc(model)
        );
        out += &td_num(Some(result.run.workload.all_connections() as f64), &connections(result), "");
        for &f in figures {
            let s = result.summary(f);
            let (median, range) = cell_parts(s);
            out += &td_num(s.map(|s| s.median), &median, &range);
        }
        out += "</tr>\n";
    }
    out + "</tbody>\n</table>\n"
}

/// The page of `iolab scan`: the sentence, the conditions, the log–log chart with the published
/// reference, the table.
pub fn scan(report: &ScanReport) -> String {
    let mut body = String::from("<h1>iolab scan</h1>\n");
    body += "<p class=\"question\">What does one wait call cost against the number of fds it watches?</p>\n";
    if let Some(sentence) = scan_text::shape(report) {
        let _ = writeln!(
            body,
            "<section class=\"verdict\" id=\"verdict\">\n<h2>Verdict</h2>\n<p>{}</p>\n</section>",
            esc(&sentence)
        );
    }
    body += "<h2 id=\"conditions\">Conditions</h2>\n";
    let p = &report.published;
    let mut rows = vec![
        ("kernel", esc(&report.machine.kernel)),
        ("CPUs", report.machine.cpus.to_string()),
        ("date", esc(&report.created)),
        ("load", esc(&format!("one busy connection of N, {} messages per run", report.calls))),
        ("runs", esc(&format!("median of {} runs per point", report.runs_per_point))),
        (
            "published",
            format!(
                "{} (<a href=\"{}\">{}</a>): {}. Elapsed time per operation on 2006 hardware, against our \
                 on-CPU time inside the call: compare the ratios, not the µs.",
                esc(p.source),
                esc(p.url),
                esc(p.url),
                esc(p.measured)
            ),
        ),
    ];
    if report.incomplete {
        rows.push(("status", "interrupted: these are the points finished before the interruption".into()));
    }
    body += &conditions(&rows);
    body += &list("warnings", &scan_text::warnings(report));
    if !report.rows.is_empty() {
        body += "<h2 id=\"charts\">Charts</h2>\n";
        let _ = writeln!(
            body,
            "<figure class=\"chart\"><h3>CPU µs per wait call against fds watched</h3>\n{}<figcaption>Both axes \
             logarithmic. Solid: measured here (median); dashed: published (µs per operation).</figcaption></figure>",
            charts::scan(report)
        );
    }
    body += "<h2 id=\"tables\">Tables</h2>\n<h3>The cost of one wait call against the fds it watches</h3>\n";
    body += &scan_table(report);
    page("iolab scan", &body, &json_script(report))
}

fn scan_table(report: &ScanReport) -> String {
    let heads: [(&str, &str, &str, bool); 11] = [
        ("model", "", "The server model.", false),
        ("fds", "", "Connections open: one busy, the others idle.", true),
        ("wait calls", "", "Wait calls that returned inside the window.", true),
        ("CPU", "µs/wait", "On-CPU time inside one wait call (median run; range over the runs under it).", true),
        ("× fewest fds", "ratio", "This cost over the same model's at its fewest fds.", true),
        ("per watched fd", "ns", "On-CPU time inside the calls over the fds they watched.", true),
        ("fds passed", "per wait", "Descriptors handed in per call (epoll: 0).", true),
        ("fds watched", "per wait", "Descriptors watched per call (epoll: its interest list).", true),
        ("ready", "per wait", "Ready descriptors returned per call: 1 when the scan does what it says.", true),
        ("published", "µs/op", "The published time per operation at this N, where there is one.", true),
        ("published ×", "ratio", "The published time over the same model's at the fewest fds.", true),
    ];
    let mut out = String::from("<table class=\"sortable scan\">\n<thead><tr>");
    for (label, unit, description, numeric) in heads {
        out += &th(label, unit, description, numeric);
    }
    out += "</tr></thead>\n<tbody>\n";
    let p = &report.published;
    let models = report.models();
    for r in &report.rows {
        let smallest = report.rows.iter().filter(|o| o.model == r.model).map(|o| o.fds).min().unwrap_or(r.fds);
        let published = p.us_per_operation(&r.model, r.fds);
        let published_ratio = published.zip(p.us_per_operation(&r.model, smallest)).map(|(a, b)| a / b);
        let key = charts::color(models.iter().position(|m| *m == r.model).unwrap_or(0));
        let _ = write!(
            out,
            "<tr><td class=\"text\"><span class=\"key\" style=\"background:{key}\"></span>{}</td>",
            esc(&r.model)
        );
        let us = r.cpu_ns_per_wait / 1e3;
        let (min, max) = (compact(r.cpu_ns_per_wait_min / 1e3), compact(r.cpu_ns_per_wait_max / 1e3));
        let range = if min == max { String::new() } else { format!("{min}–{max}") };
        out += &td_num(Some(r.fds as f64), &r.fds.to_string(), "");
        out += &td_num(Some(r.wait_calls as f64), &r.wait_calls.to_string(), "");
        out += &td_num(Some(us), &compact(us), &range);
        for v in
            [r.ratio_to_smallest, r.ns_per_watched_fd, r.fds_passed_per_wait, r.fds_watched_per_wait, r.ready_per_wait]
        {
            out += &td_num(Some(v), &compact(v), "");
        }
        for v in [published, published_ratio] {
            out += &td_num(v, &v.map_or_else(|| MISSING.to_owned(), compact), "");
        }
        out += "</tr>\n";
    }
    out + "</tbody>\n</table>\n"
}

/// A verdict's CSS class: its JSON name (`holds_in_part`).
fn verdict_class(verdict: crate::present::claims::Verdict) -> String {
    serde_json::to_value(verdict).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The page of `iolab claims`: the verdicts first, each with its badge, then the limits read.
pub fn claims(report: &ClaimsReport) -> String {
    let mut body = String::from("<h1>iolab claims</h1>\n");
    body += "<p class=\"question\">Do the walkthrough's claims about concurrent servers hold on this machine?</p>\n";
    body += "<section class=\"verdict\" id=\"verdict\">\n<h2>Verdict</h2>\n";
    let count = |v| report.claims.iter().filter(|c| c.verdict == v).count();
    use crate::present::claims::Verdict::*;
    let tally: Vec<String> = [Holds, HoldsInPart, DoesNotHold, NotTested]
        .into_iter()
        .filter(|&v| count(v) > 0)
        .map(|v| format!("{} {}", count(v), v.text()))
        .collect();
    let _ = writeln!(
        body,
        "<p>Of {} claims: {}.</p>\n<ul class=\"verdict-lines\">",
        report.claims.len(),
        esc(&tally.join(", "))
    );
    for c in &report.claims {
        let _ = writeln!(
            body,
            "<li><span class=\"badge {}\">{}</span> {}. {}: {}</li>",
            verdict_class(c.verdict),
            esc(c.verdict.text()),
            esc(&c.id),
            esc(&c.claim),
            esc(&c.because)
        );
    }
    body += "</ul>\n</section>\n";
    body += "<h2 id=\"conditions\">Conditions</h2>\n";
    let l = &report.limits;
    let mut rows = vec![
        ("kernel", esc(&report.machine.kernel)),
        ("CPUs", report.machine.cpus.to_string()),
        ("date", esc(&report.created)),
        ("connections", report.connections.to_string()),
        (
            "large comparison",
            if report.large == 0 { "not run".to_owned() } else { format!("{} connections", report.large) },
        ),
        (
            "one getppid",
            format!("{} ns without a probe", esc(&crate::present::numbers::significant(report.syscall_ns))),
        ),
        ("RLIMIT_NOFILE", format!("{} (hard {})", l.open_files.0, l.open_files.1)),
        ("RLIMIT_NPROC", l.max_user_tasks.map_or("unlimited".into(), |n| n.to_string())),
        ("threads-max", l.threads_max.to_string()),
    ];
    rows.push(("pid_max", l.pid_max.to_string()));
    rows.push(("vm.max_map_count", l.max_map_count.to_string()));
    body += &conditions(&rows);
    body += "<h2 id=\"tables\">Tables</h2>\n<h3>The claims</h3>\n";
    let mut table = String::from("<table class=\"sortable claims\">\n<thead><tr>");
    for (label, description) in [
        ("#", "The claim's number in the walkthrough's order."),
        ("claim", "The claim, in short."),
        ("measured", "The figures the verdict rests on."),
        ("verdict", "How the claim fared against the figures, and why."),
        ("how to see it", "The iolab command that measures it again."),
    ] {
        table += &th(label, "", description, false);
    }
    table += "</tr></thead>\n<tbody>\n";
    for c in &report.claims {
        let class = verdict_class(c.verdict);
        let _ = writeln!(
            table,
            "<tr>{}{}{}<td data-v=\"{}\"><span class=\"badge {class}\">{}</span><br><small>{}</small></td>\
             <td class=\"text\"><code class=\"cmd\">{}</code></td></tr>",
            td_text(&c.id),
            td_text(&c.claim),
            td_text(&c.measured),
            esc(c.verdict.text()),
            esc(c.verdict.text()),
            esc(&c.because),
            esc(&c.command)
        );
    }
    table += "</tbody>\n</table>\n";
    body += &table;
    page("iolab claims", &body, &json_script(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("</script><img src=x onerror='a&b'>"),
            "&lt;/script&gt;&lt;img src=x onerror=&#39;a&amp;b&#39;&gt;"
        );
        let json = json_script(&serde_json::json!({ "cmd": "</script><b>&" }));
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["cmd"], "</script><b>&");
    }

    #[test]
    fn a_command_line_is_quoted_as_typed() {
        let argv = ["iolab", "compare", "--server", "py=python3 x.py {port}", "it's"].map(str::to_owned);
        assert_eq!(shell_line(&argv), r"iolab compare --server 'py=python3 x.py {port}' 'it'\''s'");
    }
}
