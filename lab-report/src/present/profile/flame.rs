//! Flame graphs and folded files of a `--profile`, drawn by `inferno` (the Rust port of Brendan
//! Gregg's FlameGraph): one SVG each, self-contained, its script inline.
//!
//! For a name given by the caller (scan uses `{model}-{fds}`), into a folder checked beforehand
//! with [`check_writable_dir`]:
//! - `{name}.folded`, `{name}.svg`: the on-CPU samples (user frames red, kernel frames `_[k]`
//!   orange: inferno's `java` palette);
//! - `{name}-offcpu.folded`, `{name}-offcpu.svg`: where the threads blocked, in µs (the probe
//!   keeps ns; both files count µs, as `offcputime -f` does);
//! - `{name}-diff.svg`: a differential flame graph of two folded maps ([`write_differential`]).
//!
//! Folded lines are `frame;frame;… count`, one per stack, sorted: what `flamegraph.pl`,
//! `inferno-flamegraph` and speedscope read. A stack with a line break in a frame (a thread
//! may name itself anything) would break the format: line breaks become spaces.

use std::{
    collections::BTreeMap,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use inferno::flamegraph::{self, Options, Palette, color::MultiPalette};
use lab_measure::{error::BadInput, profile::Profile};

/// Creates `dir` if needed and checks a file can be written in it, before anything runs: a
/// one-line [`BadInput`] naming `flag`, the path and why, else.
pub fn check_writable_dir(flag: &str, dir: &Path) -> anyhow::Result<()> {
    let refuse = |why: String| BadInput(format!("{flag} {}: {why}", dir.display()));
    if dir.exists() && !dir.is_dir() {
        return Err(refuse("not a directory".into()).into());
    }
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| refuse(format!("cannot create it: {e}")))?;
        lab_measure::privileges::give_away(dir)?;
    }
    let probe = dir.join(format!(".iolab-write-check-{}", std::process::id()));
    fs::File::create(&probe).map_err(|e| refuse(format!("cannot write into it: {e}")))?;
    fs::remove_file(&probe).map_err(|e| refuse(format!("cannot remove a file from it: {e}")))?;
    Ok(())
}

/// `name` as a file name: every character outside `A–Z a–z 0–9 . _ + -` becomes `_` (a
/// `--server` name may hold a `/`).
pub fn file_stem(name: &str) -> String {
    let stem: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._+-".contains(c) { c } else { '_' }).collect();
    if stem.starts_with('.') { format!("_{stem}") } else { stem }
}

/// The off-CPU map in µs (rounded, stacks under 0.5 µs left out), as its files count it.
pub fn off_cpu_us(profile: &Profile) -> BTreeMap<String, u64> {
    profile.off_cpu_ns.iter().map(|(stack, ns)| (stack.clone(), (ns + 500) / 1000)).filter(|(_, us)| *us > 0).collect()
}

/// A folded map as folded lines.
pub fn folded(stacks: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    for (stack, count) in stacks.iter().filter(|(_, count)| **count > 0) {
        out += &stack.replace(['\n', '\r'], " ");
        out += &format!(" {count}\n");
    }
    out
}

/// Writes `{name}.folded` (on-CPU samples) and `{name}-offcpu.folded` (µs) into `dir`.
pub fn write_folded(dir: &Path, name: &str, profile: &Profile) -> anyhow::Result<Vec<PathBuf>> {
    let stem = file_stem(name);
    Ok(vec![
        write(&dir.join(format!("{stem}.folded")), folded(&profile.on_cpu).as_bytes())?,
        write(&dir.join(format!("{stem}-offcpu.folded")), folded(&off_cpu_us(profile)).as_bytes())?,
    ])
}

/// Writes `{name}.svg` (on-CPU) and `{name}-offcpu.svg` into `dir`, interactive (click to
/// zoom, Ctrl-F to search), titled `title` (the model and the conditions). A graph with nothing
/// in it (a server that never blocked has no off-CPU stack) is not written: the paths returned
/// are the files that were.
pub fn write_flamegraphs(dir: &Path, name: &str, profile: &Profile, title: &str) -> anyhow::Result<Vec<PathBuf>> {
    let stem = file_stem(name);
    let mut written = Vec::new();
    if let Some(svg) = on_cpu_svg(profile, title, true)? {
        written.push(write(&dir.join(format!("{stem}.svg")), svg.as_bytes())?);
    }
    if let Some(svg) = off_cpu_svg(profile, title)? {
        written.push(write(&dir.join(format!("{stem}-offcpu.svg")), svg.as_bytes())?);
    }
    Ok(written)
}

/// Writes `{name}-diff.svg`: `after`'s stacks, each frame red where it has more than in
/// `before` and blue where it has less. `before` is first scaled to `after`'s total, so the
/// colours show shares that moved, not a longer run. `None` when `after` has no stack.
pub fn write_differential(
    dir: &Path,
    name: &str,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    title: &str,
) -> anyhow::Result<Option<PathBuf>> {
    let Some(svg) = differential_svg(before, after, title)? else { return Ok(None) };
    Ok(Some(write(&dir.join(format!("{}-diff.svg", file_stem(name))), svg.as_bytes())?))
}

/// The differential flame graph of [`write_differential`], as SVG text.
pub fn differential_svg(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    title: &str,
) -> anyhow::Result<Option<String>> {
    if after.values().all(|&c| c == 0) {
        return Ok(None);
    }
    let mut lines = Vec::new();
    let options = inferno::differential::Options { normalize: true, strip_hex: false };
    inferno::differential::from_readers(options, folded(before).as_bytes(), folded(after).as_bytes(), &mut lines)
        .context("cannot compare the two profiles")?;
    let lines = String::from_utf8(lines).context("inferno's differential output")?;
    let mut opt = options_for(title, "samples", true);
    opt.subtitle = Some(
        "width: the second profile; red: more than in the first, blue: less (the first scaled to the second's total)"
            .into(),
    );
    draw(&mut opt, lines.lines()).map(Some)
}

/// The on-CPU flame graph as SVG text; `None` without a sample. `interactive`: inferno's script
/// for zoom and search, else none (the HTML page inlines it: tooltips stay, as `<title>`s).
pub fn on_cpu_svg(profile: &Profile, title: &str, interactive: bool) -> anyhow::Result<Option<String>> {
    if profile.on_cpu.values().all(|&c| c == 0) {
        return Ok(None);
    }
    let samples = profile.samples();
    let mut subtitle = format!("on-CPU: {samples} samples at {} Hz per CPU", profile.hz);
    if profile.lost_samples > 0 {
        subtitle += &format!(", {} of them lost (no stack) and not drawn", profile.lost_samples);
    }
    let mut opt = options_for(title, "samples", interactive);
    opt.subtitle = Some(subtitle);
    opt.colors = Palette::Multi(MultiPalette::Java);
    let lines = folded(&profile.on_cpu);
    draw(&mut opt, lines.lines()).map(Some)
}

/// The off-CPU flame graph (µs), interactive; `None` when no thread blocked.
pub fn off_cpu_svg(profile: &Profile, title: &str) -> anyhow::Result<Option<String>> {
    let us = off_cpu_us(profile);
    if us.is_empty() {
        return Ok(None);
    }
    let mut opt = options_for(title, "µs", true);
    opt.subtitle = Some("off-CPU: where the threads blocked, and for how long (µs)".into());
    opt.colors = Palette::Basic(flamegraph::color::BasicPalette::Blue);
    let lines = folded(&us);
    draw(&mut opt, lines.lines()).map(Some)
}

/// The on-CPU flame graph to inline in the HTML page as the `n`th: no script and no event
/// attribute (the page's own script is all it runs), no style sheet (inferno's would style the
/// whole page: `style.css` has `svg.flame`'s), and its ids prefixed `flame-{n}-` so that two
/// graphs share none. Each frame keeps its `<title>`: hovering shows its name and samples.
pub fn inline_svg(profile: &Profile, title: &str, n: usize) -> anyhow::Result<Option<String>> {
    let Some(svg) = on_cpu_svg(profile, title, false)? else { return Ok(None) };
    let svg = &svg[svg.find("<svg").context("inferno's output has no <svg>")?..];
    let svg = without_elements(svg, "<script", "</script>");
    let svg = without_elements(&svg, "<style", "</style>");
    let svg = without_event_attributes(&svg);
    let prefix = format!("flame-{n}-");
    let svg = svg.replace("id=\"", &format!("id=\"{prefix}")).replace("url(#", &format!("url(#{prefix}"));
    Ok(Some(svg.replacen("<svg ", "<svg class=\"flame\" ", 1)))
}

/// `text` without every element from `open` to `close`.
fn without_elements(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out += &rest[..start];
        rest = rest[start..].find(close).map_or("", |end| &rest[start + end + close.len()..]);
    }
    out + rest
}

/// `svg` without its `on…="…"` attributes (inferno escapes `"` inside values).
fn without_event_attributes(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(at) = rest.find(" on") {
        let name_len = rest[at + 3..].find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(0);
        let attribute = &rest[at + 3 + name_len..];
        if name_len > 0 && attribute.starts_with("=\"") {
            out += &rest[..at];
            let end = attribute[2..].find('"').map_or(attribute.len(), |e| e + 3);
            rest = &attribute[end..];
        } else {
            out += &rest[..at + 3];
            rest = &rest[at + 3..];
        }
    }
    out + rest
}

fn options_for<'a>(title: &str, count_name: &str, interactive: bool) -> Options<'a> {
    let mut opt = Options::default();
    opt.title = title.to_owned();
    opt.count_name = count_name.to_owned();
    // The same function gets the same colour in every graph, and the output is reproducible.
    opt.hash = true;
    opt.deterministic = true;
    opt.no_javascript = !interactive;
    opt
}

fn draw<'a>(opt: &mut Options<'_>, lines: impl IntoIterator<Item = &'a str>) -> anyhow::Result<String> {
    let mut svg = Vec::new();
    flamegraph::from_lines(opt, lines, &mut svg).context("cannot draw the flame graph")?;
    String::from_utf8(svg).context("inferno's SVG")
}

/// Writes `bytes` to `path` (theirs under sudo), and gives the path back.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let mut file = fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    lab_measure::privileges::give_away(path)?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            hz: 99,
            on_cpu: BTreeMap::from([
                ("poll;main;poll;do_sys_poll_[k];tcp_poll_[k]".to_owned(), 30),
                ("poll;main;handle".to_owned(), 10),
                ("bad\nname;main".to_owned(), 1),
            ]),
            lost_samples: 2,
            off_cpu_ns: BTreeMap::from([
                ("poll;do_sys_poll_[k];schedule_[k]".to_owned(), 2_500_400),
                ("poll;futex_wait_[k];schedule_[k]".to_owned(), 400),
            ]),
            ..Profile::default()
        }
    }

    #[test]
    fn folded_files_hold_a_line_per_stack_and_off_cpu_in_us() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_folded(dir.path(), "poll-10000", &profile()).unwrap();
        assert_eq!(written, [dir.path().join("poll-10000.folded"), dir.path().join("poll-10000-offcpu.folded")]);
        assert_eq!(
            fs::read_to_string(&written[0]).unwrap(),
            "bad name;main 1\npoll;main;handle 10\npoll;main;poll;do_sys_poll_[k];tcp_poll_[k] 30\n"
        );
        assert_eq!(
            fs::read_to_string(&written[1]).unwrap(),
            "poll;do_sys_poll_[k];schedule_[k] 2500\n",
            "400 ns: 0 µs"
        );
    }

    #[test]
    fn flame_graphs_are_titled_svgs_and_an_empty_one_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let title = "poll at 10000 fds <64 B>";
        let written = write_flamegraphs(dir.path(), "a/b", &profile(), title).unwrap();
        assert_eq!(written, [dir.path().join("a_b.svg"), dir.path().join("a_b-offcpu.svg")]);
        let svg = fs::read_to_string(&written[0]).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<script"), "interactive");
        assert!(svg.contains("poll at 10000 fds &lt;64 B&gt;"), "the title, escaped");
        assert!(svg.contains("<title>tcp_poll (30 samples, 73.17%)</title>"), "inferno drops the _[k] it colours by");
        assert!(svg.contains("43 samples at 99 Hz per CPU, 2 of them lost"), "the subtitle");
        let off = fs::read_to_string(&written[1]).unwrap();
        assert!(off.contains("<title>schedule (2,500 µs, 100.00%)</title>"), "400 ns rounds to no µs: one stack");
        let empty = Profile { hz: 99, ..Profile::default() };
        assert_eq!(write_flamegraphs(dir.path(), "none", &empty, "t").unwrap(), Vec::<PathBuf>::new());
        let inline = inline_svg(&profile(), "t", 3).unwrap().unwrap();
        assert!(inline.starts_with("<svg class=\"flame\" "), "{}", &inline[..80]);
        for gone in ["<script", "<style", "onload", "id=\"frames\"", "url(#background)"] {
            assert!(!inline.contains(gone), "{gone} in the inline graph");
        }
        assert!(inline.contains("id=\"flame-3-frames\"") && inline.contains("url(#flame-3-background)"));
        assert!(inline.contains("<title>tcp_poll (30 samples, 73.17%)</title>"), "its tooltips stay");
    }

    #[test]
    fn the_differential_graph_colours_what_grew_and_what_shrank() {
        let before = BTreeMap::from([("t;a_[k]".to_owned(), 50), ("t;b_[k]".to_owned(), 50)]);
        let after = BTreeMap::from([("t;a_[k]".to_owned(), 180), ("t;b_[k]".to_owned(), 20)]);
        let dir = tempfile::tempdir().unwrap();
        let path = write_differential(dir.path(), "thread-vs-epoll", &before, &after, "thread against epoll").unwrap();
        assert_eq!(path, Some(dir.path().join("thread-vs-epoll-diff.svg")));
        let svg = fs::read_to_string(path.unwrap()).unwrap();
        // a went from half of the samples to 90 %, b from half to 10 %.
        assert!(svg.contains("<title>a (180 samples, 90.00%; +40.00%)</title>"));
        assert!(svg.contains("<title>b (20 samples, 10.00%; -40.00%)</title>"));
        assert_eq!(write_differential(dir.path(), "x", &before, &BTreeMap::new(), "t").unwrap(), None);
    }

    #[test]
    fn a_dir_is_created_and_a_bad_one_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("flames/deeper");
        check_writable_dir("--flamegraph", &new).unwrap();
        assert!(new.is_dir());
        assert_eq!(fs::read_dir(&new).unwrap().count(), 0, "the check leaves nothing behind");
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let error = check_writable_dir("--flamegraph", &file).unwrap_err();
        assert!(error.downcast_ref::<BadInput>().is_some(), "bad input: exit 2");
        assert_eq!(error.to_string(), format!("--flamegraph {}: not a directory", file.display()));
        let error = check_writable_dir("--export-folded", &file.join("sub")).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("--export-folded {}: cannot create it: ", file.join("sub").display())),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn event_attributes_go_and_text_that_looks_like_one_stays() {
        // inferno escapes quotes in text: `on…="` is only ever an attribute.
        let svg = r#"<svg onload="init(evt)" x="1"><text>a onion=&quot;x&quot; on</text><g onclick="f()"/></svg>"#;
        assert_eq!(without_event_attributes(svg), r#"<svg x="1"><text>a onion=&quot;x&quot; on</text><g/></svg>"#);
    }

    #[test]
    fn a_name_becomes_a_file_name() {
        assert_eq!(file_stem("poll-10000"), "poll-10000");
        assert_eq!(file_stem("../my server/x"), "_.._my_server_x");
    }
}
