//! The sweep plot: how each model's cost per message grows with the number of connections; and
//! the scan plot (`scan_svg`): what one wait call costs against the fds it watches.
//!
//! The sweep has four panels, each a per-message (or per-call) cost against connections on a log
//! axis, one line per model, so "grows with connections" and "stays flat" are visible at a
//! glance; the scan one panel with both axes logarithmic, as its costs span four decades. plotters
//! writes SVG: text stays text (the viewer's fonts draw it), so no font file or font library is
//! needed here. Each point is the median over the runs.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::{coord::Shift, prelude::*};

use crate::{
    present::numbers::compact,
    results::{document::ModelResult, figures::Figure},
};

/// One panel: a title and the figures whose medians are added up to make its value, and
/// optionally a second value drawn beside it, dashed, in the same colour.
struct Panel {
    title: &'static str,
    figures: &'static [Figure],
    beside: &'static [Figure],
}

const PANELS: [Panel; 4] = [
    Panel { title: "syscalls per message", figures: &[Figure::SyscallsPerMsg], beside: &[] },
    Panel {
        title: "context switches per message (voluntary + involuntary)",
        figures: &[Figure::VoluntaryCsPerMsg, Figure::InvoluntaryCsPerMsg],
        beside: &[],
    },
    Panel {
        title: "fds passed in per wait call (epoll: 0, its list is registered once)",
        figures: &[Figure::FdsPassedPerWait],
        beside: &[],
    },
    Panel {
        title: "own CPU µs per message of the server; dashed: softirqs on its threads",
        figures: &[Figure::OwnCpuPerMsg],
        beside: &[Figure::NetRxPerMsg, Figure::OtherSoftirqPerMsg],
    },
];

/// Okabe–Ito colours (told apart by colour-blind readers too), then purple and grey, so that the
/// nine models get nine colours; the pale yellow comes last.
pub(crate) const COLORS: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(117, 61, 148),
    RGBColor(136, 136, 136),
    RGBColor(240, 228, 66),
];

const SIZE: (u32, u32) = (1200, 900);
const FONT: &str = "sans-serif";
const LEGEND_PER_ROW: usize = 5;

/// Writes the sweep plot of `results` (every model at every connection count) to `path`, as SVG.
pub fn sweep_svg(results: &[ModelResult], path: &Path) -> Result<()> {
    if results.is_empty() {
        return Err(anyhow!("nothing to plot: no results"));
    }
    let lines = lines(results);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let fail = |e: DrawingAreaErrorKind<std::io::Error>| anyhow!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(fail)?;
    let rows = lines.len().div_ceil(LEGEND_PER_ROW) as u32;
    let (top, body) = root.split_vertically(50 + 24 * rows);
    legend(&top, &lines).map_err(fail)?;
    let (lo, hi) = x_range(results);
    for (area, panel) in body.split_evenly((2, 2)).iter().zip(&PANELS) {
        let values: Vec<Vec<(f64, f64)>> = lines.iter().map(|(_, r)| points(r, panel.figures)).collect();
        let beside: Vec<Vec<(f64, f64)>> = lines.iter().map(|(_, r)| points(r, panel.beside)).collect();
        let top_y = values.iter().chain(&beside).flatten().map(|p| p.1).fold(0.0, f64::max);
        let top_y = if top_y > 0.0 { top_y * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..top_y)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("connections")
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .label_style((FONT, 14))
            .draw()
            .map_err(fail)?;
        for (i, (points, beside)) in values.into_iter().zip(beside).enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart.draw_series(LineSeries::new(points, color.filled().stroke_width(2)).point_size(4)).map_err(fail)?;
            chart.draw_series(DashedLineSeries::new(beside, 6, 4, color.stroke_width(1))).map_err(fail)?;
        }
    }
    root.present().map_err(fail)?;
    Ok(())
}

/// An axis label: a short number without trailing zeros (`0.8`, not `0.800`).
fn tick(v: f64) -> String {
    let s = compact(v);
    if !s.contains('.') || s.contains('e') {
        return s;
    }
    let unit_at = s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    let (number, unit) = s.split_at(unit_at);
    format!("{}{unit}", number.trim_end_matches('0').trim_end_matches('.'))
}

/// The results grouped by model, in order of first appearance, each sorted by connections.
fn lines(results: &[ModelResult]) -> Vec<(&str, Vec<&ModelResult>)> {
    let mut lines: Vec<(&str, Vec<&ModelResult>)> = Vec::new();
    for r in results {
        match lines.iter_mut().find(|(model, _)| *model == r.run.model) {
            Some((_, rs)) => rs.push(r),
            None => lines.push((&r.run.model, vec![r])),
        }
    }
    for (_, rs) in &mut lines {
        rs.sort_by_key(|r| r.run.workload.connections);
    }
    lines
}

/// (connections, the sum of `figures`) for each of one model's results that measured them all
/// (a model without wait calls has no point in the wait call panel); none for no figures.
fn points(results: &[&ModelResult], figures: &[Figure]) -> Vec<(f64, f64)> {
    if figures.is_empty() {
        return Vec::new();
    }
    let value = |r: &ModelResult| -> Option<f64> { figures.iter().map(|&f| r.figure(f)).sum() };
    results.iter().filter_map(|r| Some((r.run.workload.connections.max(1) as f64, value(r)?))).collect()
}

/// The x axis: every connection count, with a little room on both sides of the log scale.
fn x_range(results: &[ModelResult]) -> (f64, f64) {
    let conns = results.iter().map(|r| r.run.workload.connections.max(1) as f64);
    let lo = conns.clone().fold(f64::INFINITY, f64::min);
    let hi = conns.fold(0.0, f64::max);
    (lo / 1.5, hi * 1.5)
}

/// The title and one legend entry per model (a line with a marker, then the name).
fn legend(
    area: &DrawingArea<SVGBackend, Shift>,
    lines: &[(&str, Vec<&ModelResult>)],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    area.draw(&Text::new("iolab sweep: what one message costs the kernel, by connections", (20, 12), (FONT, 24)))?;
    for (i, (model, _)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let x = 30 + (i % LEGEND_PER_ROW) as i32 * 230;
        let y = 55 + (i / LEGEND_PER_ROW) as i32 * 24;
        area.draw(&PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(2)))?;
        area.draw(&Circle::new((x + 15, y), 4, color.filled()))?;
        area.draw(&Text::new(model.to_string(), (x + 40, y - 8), (FONT, 17)))?;
    }
    Ok(())
}

/// Writes the scan plot to `path`, as SVG: on-CPU µs per wait call against the fds open, both
/// axes logarithmic, one thick solid line per model for calls that sleep, a thin one with hollow
/// points for calls that find the message ready (a `--ready` scan); the published figures of the
/// same experiment (µs per operation) dashed in the model's colour, for the shape.
pub fn scan_svg(report: &crate::results::scan::ScanReport, path: &Path) -> Result<()> {
    use crate::results::scan::Mode;
    let models = report.models();
    if models.is_empty() {
        return Err(anyhow!("nothing to plot: no results"));
    }
    let p = &report.published;
    let line = |model: &str, mode: Mode| {
        let mut points: Vec<(f64, f64)> = report
            .rows
            .iter()
            .filter(|r| r.model == model && r.mode == mode && r.cpu_ns_per_wait > 0.0)
            .map(|r| (r.fds as f64, r.cpu_ns_per_wait / 1e3))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    let measured: Vec<Vec<(f64, f64)>> = models.iter().map(|m| line(m, Mode::Sleeps)).collect();
    let ready: Vec<Vec<(f64, f64)>> = models.iter().map(|m| line(m, Mode::Ready)).collect();
    let published: Vec<Vec<(f64, f64)>> = models
        .iter()
        .map(|m| p.fds.iter().filter_map(|&n| Some((n as f64, p.us_per_operation(m, n)?))).collect())
        .collect();
    let all = || measured.iter().chain(&ready).chain(&published).flatten();
    let (x_lo, x_hi) = (all().map(|p| p.0).fold(f64::INFINITY, f64::min), all().map(|p| p.0).fold(0.0, f64::max));
    let (y_lo, y_hi) = (all().map(|p| p.1).fold(f64::INFINITY, f64::min), all().map(|p| p.1).fold(0.0, f64::max));
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    let fail = |e: DrawingAreaErrorKind<std::io::Error>| anyhow!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(fail)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("iolab scan: the cost of one wait call, one fd of N ready", (FONT, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((x_lo / 1.5..x_hi * 1.5).log_scale(), (y_lo / 2.0..y_hi * 2.0).log_scale())
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_desc("fds open (one busy, the rest idle)")
        .y_desc("µs per wait call")
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .label_style((FONT, 15))
        .draw()
        .map_err(fail)?;
    for (i, model) in models.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let sleeps = if ready[i].is_empty() { "measured" } else { "measured, every call sleeps" };
        chart
            .draw_series(LineSeries::new(measured[i].clone(), color.filled().stroke_width(3)).point_size(5))
            .map_err(fail)?
            .label(format!("{model}: on-CPU µs inside the call, {sleeps}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        if !ready[i].is_empty() {
            chart
                .draw_series(LineSeries::new(ready[i].clone(), color.stroke_width(1)).point_size(5))
                .map_err(fail)?
                .label(format!("{model}: on-CPU µs inside the call, measured, a message ready at every call"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(1)));
        }
        if published[i].is_empty() {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(published[i].clone(), 8, 6, color.stroke_width(2)))
            .map_err(fail)?
            .label(format!("{model}: µs per operation, Kerrisk, LCA 2006"))
            .legend(move |(x, y)| {
                plotters::element::DashedPathElement::new(vec![(x, y), (x + 24, y)], 5, 3, color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 15))
        .draw()
        .map_err(fail)?;
    root.present().map_err(fail)?;
    Ok(())
}
