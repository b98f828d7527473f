//! The page's charts, as inline SVG written by hand: bars with the min–max range over the runs
//! (compare, prove, report), lines over connections (sweep), and the scan's log–log lines with
//! the published reference dashed. Each model keeps one colour from the SVG plots' palette.

use std::fmt::Write as _;

use super::esc;
use crate::{
    present::{numbers::compact, plot::COLORS},
    results::{document::Document, figures::Figure, scan::ScanReport},
};

/// The width of every chart's viewBox: the page's content width at 1280 px.
const WIDTH: f64 = 1232.0;
const ROW: f64 = 20.0;

/// The colour of the `i`th model, as CSS.
pub(super) fn color(i: usize) -> String {
    let c = COLORS[i % COLORS.len()];
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The models of `doc` in the order first seen (a sweep has each at several connection counts).
fn models(doc: &Document) -> Vec<&str> {
    let mut models: Vec<&str> = Vec::new();
    for r in &doc.results {
        if !models.contains(&r.run.model.as_str()) {
            models.push(&r.run.model);
        }
    }
    models
}

pub(super) fn model_index(doc: &Document, model: &str) -> Option<usize> {
    models(doc).iter().position(|m| *m == model)
}

/// A sweep: some model was measured at more than one connection count.
pub(super) fn is_sweep(doc: &Document) -> bool {
    doc.results.iter().any(|a| {
        doc.results
            .iter()
            .any(|b| a.run.model == b.run.model && a.run.workload.connections != b.run.workload.connections)
    })
}

/// The figures of `figures` measured in some row.
fn measured(doc: &Document, figures: &[Figure]) -> Vec<Figure> {
    figures.iter().copied().filter(|&f| doc.results.iter().any(|r| r.summary(f).is_some())).collect()
}

/// A panel's title: the figure's label, with its unit when the label does not already say it.
fn titled(figure: Figure) -> String {
    if figure.label().contains(figure.unit()) {
        figure.label().to_owned()
    } else {
        format!("{} ({})", figure.label(), figure.unit())
    }
}

/// `text` cut to `chars` characters, with an ellipsis when cut.
fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        text.chars().take(chars.saturating_sub(1)).collect::<String>() + "…"
    }
}

fn svg_open(height: f64, label: &str) -> String {
    format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" \
         aria-label=\"{}\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\n",
        esc(label)
    )
}

/// One panel per figure, a bar per model: the median, and a thin line from the min to the max.
pub(super) fn bars(doc: &Document, figures: &[Figure]) -> String {
    let figures = measured(doc, figures);
    let cols = figures.len().clamp(1, 4);
    let panel_w = WIDTH / cols as f64;
    let panel_h = 30.0 + ROW * doc.results.len() as f64 + 10.0;
    let rows = figures.len().div_ceil(cols);
    let label_w = (panel_w * 0.34).min(130.0);
    let chars = (label_w / 7.0) as usize;
    let mut out = svg_open(panel_h * rows as f64, "bar chart");
    for (i, &figure) in figures.iter().enumerate() {
        let (x0, y0) = ((i % cols) as f64 * panel_w, (i / cols) as f64 * panel_h);
        let top = doc.results.iter().filter_map(|r| r.summary(figure)).map(|s| s.max).fold(0.0, f64::max);
        let top = if top > 0.0 { top } else { 1.0 };
        let bar_x = x0 + label_w + 6.0;
        let bar_w = panel_w - label_w - 60.0;
        let title = titled(figure);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"600\">{}<title>{}</title></text>",
            x0 + 4.0,
            y0 + 16.0,
            esc(&clip(&title, (panel_w / 7.0) as usize)),
            esc(figure.description())
        );
        let _ = writeln!(
            out,
            "<line x1=\"{bar_x:.1}\" y1=\"{:.1}\" x2=\"{bar_x:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>",
            y0 + 24.0,
            y0 + 26.0 + ROW * doc.results.len() as f64
        );
        for (j, result) in doc.results.iter().enumerate() {
            let y = y0 + 26.0 + ROW * j as f64;
            let model = &result.run.model;
            let fill = color(model_index(doc, model).unwrap_or(j));
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333\">{}<title>{}</title></text>",
                x0 + label_w,
                y + 14.0,
                esc(&clip(model, chars)),
                esc(model)
            );
            let Some(s) = result.summary(figure) else {
                let _ = writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#777\">–</text>", bar_x + 4.0, y + 14.0);
                continue;
            };
            let scale = |v: f64| bar_x + (v.max(0.0) / top) * bar_w;
            let _ = writeln!(
                out,
                "<rect x=\"{bar_x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\">\
                 <title>{}: {} (min {}, max {})</title></rect>",
                y + 3.0,
                scale(s.median) - bar_x,
                ROW - 6.0,
                esc(model),
                compact(s.median),
                compact(s.min),
                compact(s.max)
            );
            if s.min != s.max {
                let (a, b, m) = (scale(s.min), scale(s.max), y + ROW / 2.0);
                let _ = writeln!(
                    out,
                    "<path d=\"M{a:.1},{m:.1}H{b:.1}M{a:.1},{:.1}V{:.1}M{b:.1},{:.1}V{:.1}\" stroke=\"#222\" stroke-width=\"1.2\" fill=\"none\"/>",
                    m - 4.0,
                    m + 4.0,
                    m - 4.0,
                    m + 4.0
                );
            }
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{}</text>",
                scale(s.max) + 4.0,
                y + 14.0,
                compact(s.median)
            );
        }
    }
    out + "</svg>\n"
}

/// A legend row of the models, each in its colour.
fn legend(out: &mut String, names: &[&str], y: f64) {
    let step = (WIDTH / names.len().max(1) as f64).min(180.0);
    for (i, name) in names.iter().enumerate() {
        let x = 8.0 + step * i as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\">{}<title>{}</title></text>",
            y - 9.0,
            color(i),
            x + 18.0,
            esc(&clip(name, ((step - 24.0) / 7.0) as usize)),
            esc(name)
        );
    }
}

/// `v` on a log axis from `lo` to `hi` onto `a..b`.
fn log_scale(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi <= lo {
        return (a + b) / 2.0;
    }
    a + (v.ln() - lo.ln()) / (hi.ln() - lo.ln()) * (b - a)
}

/// One panel per figure: each model's median against connections (log scale), a line per model.
pub(super) fn lines(doc: &Document, figures: &[Figure]) -> String {
    let figures = measured(doc, figures);
    let names = models(doc);
    let cols = figures.len().clamp(1, 3);
    let panel_w = WIDTH / cols as f64;
    let panel_h = 230.0;
    let rows = figures.len().div_ceil(cols);
    let mut out = svg_open(28.0 + panel_h * rows as f64, "line chart");
    legend(&mut out, &names, 16.0);
    let mut xs: Vec<f64> = doc.results.iter().map(|r| r.run.workload.connections as f64).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (lo, hi) = (xs[0].max(1.0), xs[xs.len() - 1].max(1.0));
    for (i, &figure) in figures.iter().enumerate() {
        let (x0, y0) = ((i % cols) as f64 * panel_w, 28.0 + (i / cols) as f64 * panel_h);
        let (left, right, top_px, bottom) = (x0 + 56.0, x0 + panel_w - 16.0, y0 + 30.0, y0 + panel_h - 34.0);
        let top = doc.results.iter().filter_map(|r| r.figure(figure)).fold(0.0, f64::max);
        let top = if top > 0.0 { top * 1.1 } else { 1.0 };
        let y = |v: f64| bottom - v / top * (bottom - top_px);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"600\">{}<title>{}</title></text>",
            x0 + 8.0,
            y0 + 18.0,
            esc(&clip(&titled(figure), (panel_w / 7.0) as usize)),
            esc(figure.description())
        );
        let _ =
            writeln!(out, "<path d=\"M{left:.1},{top_px:.1}V{bottom:.1}H{right:.1}\" stroke=\"#999\" fill=\"none\"/>");
        for v in [0.0, top / 2.0, top] {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
                left - 4.0,
                y(v) + 4.0,
                compact(v)
            );
        }
        for &x in &xs {
            let px = log_scale(x.max(1.0), lo, hi, left + 10.0, right - 10.0);
            let _ = writeln!(
                out,
                "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
                bottom + 16.0,
                compact(x)
            );
        }
        for (m, name) in names.iter().enumerate() {
            let mut points: Vec<(f64, f64)> = doc
                .results
                .iter()
                .filter(|r| r.run.model == *name)
                .filter_map(|r| Some((r.run.workload.connections as f64, r.figure(figure)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let path: Vec<String> = points
                .iter()
                .enumerate()
                .map(|(k, &(x, v))| {
                    let px = log_scale(x.max(1.0), lo, hi, left + 10.0, right - 10.0);
                    format!("{}{px:.1},{:.1}", if k == 0 { "M" } else { "L" }, y(v))
                })
                .collect();
            if path.is_empty() {
                continue;
            }
            let c = color(m);
            let _ = writeln!(out, "<path d=\"{}\" stroke=\"{c}\" stroke-width=\"2\" fill=\"none\"/>", path.join(""));
            for &(x, v) in &points {
                let px = log_scale(x.max(1.0), lo, hi, left + 10.0, right - 10.0);
                let _ = writeln!(
                    out,
                    "<circle cx=\"{px:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"><title>{} at {}: {}</title></circle>",
                    y(v),
                    esc(name),
                    compact(x),
                    compact(v)
                );
            }
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">connections</text>",
            (left + right) / 2.0,
            bottom + 30.0
        );
    }
    out + "</svg>\n"
}

/// One line of the scan chart: a model's points (fds, µs per call), measured or published.
struct Series {
    model: usize,
    published: bool,
    points: Vec<(f64, f64)>,
}

/// The scan: µs per wait call against fds, both axes logarithmic; measured solid, published dashed.
pub(super) fn scan(report: &ScanReport) -> String {
    let names = report.models();
    let height = 460.0;
    let mut out = svg_open(height, "log-log chart of the scan");
    legend(&mut out, &names, 16.0);
    let p = &report.published;
    let mut series: Vec<Series> = Vec::new();
    for (m, name) in names.iter().enumerate() {
        let measured: Vec<(f64, f64)> = report
            .rows
            .iter()
            .filter(|r| r.model == *name && r.cpu_ns_per_wait > 0.0)
            .map(|r| (r.fds as f64, r.cpu_ns_per_wait / 1e3))
            .collect();
        series.push(Series { model: m, published: false, points: measured });
        let published: Vec<(f64, f64)> =
            p.fds.iter().filter_map(|&n| Some((n as f64, p.us_per_operation(name, n)?))).collect();
        series.push(Series { model: m, published: true, points: published });
    }
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let decade = |v: f64, up: bool| 10f64.powf(if up { v.log10().ceil() } else { v.log10().floor() });
    let (x_lo, x_hi) = (
        decade(all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min), false),
        decade(all.iter().map(|p| p.0).fold(1.0, f64::max), true),
    );
    let (y_lo, y_hi) = (
        decade(all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min), false),
        decade(all.iter().map(|p| p.1).fold(f64::MIN_POSITIVE, f64::max), true),
    );
    let (left, right, top, bottom) = (70.0, WIDTH - 20.0, 40.0, height - 50.0);
    let x = |v: f64| log_scale(v, x_lo, x_hi.max(x_lo * 10.0), left, right);
    let y = |v: f64| log_scale(v, y_lo, y_hi.max(y_lo * 10.0), bottom, top);
    let _ = writeln!(out, "<path d=\"M{left},{top}V{bottom}H{right}\" stroke=\"#999\" fill=\"none\"/>");
    let mut tick = x_lo;
    while tick <= x_hi.max(x_lo * 10.0) * 1.001 {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            x(tick),
            bottom + 18.0,
            compact(tick)
        );
        tick *= 10.0;
    }
    let mut tick = y_lo;
    while tick <= y_hi.max(y_lo * 10.0) * 1.001 {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>\
             <line x1=\"{left}\" x2=\"{right}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
            left - 6.0,
            y(tick) + 4.0,
            compact(tick),
            y(tick),
            y(tick)
        );
        tick *= 10.0;
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">fds watched</text>\
         <text x=\"14\" y=\"{:.1}\" fill=\"#555\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">µs per wait call</text>",
        (left + right) / 2.0,
        bottom + 38.0,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
    for Series { model: m, published, points } in &series {
        if points.is_empty() {
            continue;
        }
        let c = color(*m);
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(k, &(a, b))| format!("{}{:.1},{:.1}", if k == 0 { "M" } else { "L" }, x(a), y(b)))
            .collect();
        let dash = if *published { " stroke-dasharray=\"6 4\"" } else { "" };
        let _ = writeln!(out, "<path d=\"{}\" stroke=\"{c}\" stroke-width=\"2\"{dash} fill=\"none\"/>", path.join(""));
        let what = if *published { "published" } else { "measured" };
        for &(a, b) in points {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\" stroke=\"{c}\"><title>{} {what} at {}: {} µs</title></circle>",
                x(a),
                y(b),
                if *published { "#fff" } else { c.as_str() },
                esc(names[*m]),
                compact(a),
                compact(b)
            );
        }
    }
    out + "</svg>\n"
}
