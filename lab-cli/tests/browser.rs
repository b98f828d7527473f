//! The HTML pages, opened in a real browser: headless Chromium, with the network off, loads each
//! page iolab writes (compare, a saved compare re-rendered by `report`, scan, claims --quick).
//!
//! A copy of each page gets `browser/check.js` at the top of its head; Chromium's `--dump-dom`
//! runs it and prints the DOM with its findings: no error, no request (everything is inline),
//! every table and chart drawn with a size, nothing wider than 1280 px, a click on a column
//! heading sorts the rows both ways, and the `--server` command holding markup is shown as text
//! with no element injected. Then a screenshot of each page lands in
//! `target/tmp/browser/NAME.png`. The compare runs with `--profile`, so its page holds flame
//! graphs too, and the flame graph files it writes are drawn by Chromium and by rsvg-convert.
//! `cargo xtask test` installs Chromium and rsvg-convert when they are missing.

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use support::{iolab, serial, stderr};

const CHECK: &str = include_str!("browser/check.js");
const WIDTH: u64 = 1280;
/// Markup in a server's command, which every page must show as text.
const EVIL: &str = "</script><img src=x onerror=window.__pwned=1>";

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(lab_measure::process::which)
        .expect("no chromium on PATH: `cargo xtask test` installs it (apt-get install chromium)")
}

/// Chromium, headless, in a network namespace of its own (no network at all), with a fresh profile.
fn browser(profile: &Path) -> Command {
    let mut command = Command::new("unshare");
    command.arg("--net").arg(chromium()).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        &format!("--user-data-dir={}", profile.display()),
    ]);
    command
}

/// What check.js found in `page`, opened 1280 px wide.
fn check(page: &Path, profile: &Path) -> Value {
    let html = fs::read_to_string(page).unwrap();
    let checked = page.with_extension("checked.html");
    fs::write(&checked, html.replacen("<head>", &format!("<head>\n<script>\n{CHECK}</script>"), 1)).unwrap();
    let out = browser(profile)
        .args([&format!("--window-size={WIDTH},1000"), "--dump-dom", &format!("file://{}", checked.display())])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.rfind("<pre id=\"iolab-check\">").unwrap_or_else(|| {
        panic!("{}: no findings in the DOM; chromium said: {}", page.display(), String::from_utf8_lossy(&out.stderr))
    });
    let json = &dom[start + "<pre id=\"iolab-check\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    let json = json.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: findings are not JSON ({e}): {json}", page.display()))
}

/// A full-page screenshot of `page` at 1280 px into `target/tmp/browser/NAME.png`.
fn screenshot(page: &Path, name: &str, height: u64, profile: &Path) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    fs::create_dir_all(&dir).unwrap();
    let png = dir.join(format!("{name}.png"));
    let _ = fs::remove_file(&png);
    let out = browser(profile)
        .args([
            &format!("--window-size={WIDTH},{}", height.clamp(600, 16_000)),
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", page.display()),
        ])
        .output()
        .unwrap();
    let bytes = fs::read(&png)
        .unwrap_or_else(|e| panic!("no screenshot {} ({e}): {}", png.display(), String::from_utf8_lossy(&out.stderr)));
    assert!(bytes.starts_with(b"\x89PNG"), "{} is not a PNG", png.display());
    png
}

/// Every check that holds for any page; `tables` and `charts`: how many there must be at least.
fn assert_page(name: &str, found: &Value, tables: usize, charts: usize) {
    let list = |key: &str| found[key].as_array().unwrap_or_else(|| panic!("{name}: no {key}: {found}")).clone();
    assert_eq!(list("errors"), Vec::<Value>::new(), "{name}: errors while loading");
    assert_eq!(list("requests"), Vec::<Value>::new(), "{name}: requests (the page must need none)");
    for (what, least) in [("tables", tables), ("charts", charts)] {
        let sizes = list(what);
        assert!(sizes.len() >= least, "{name}: {} {what}, expected at least {least}", sizes.len());
        for size in sizes {
            assert!(size[0].as_u64() > Some(0) && size[1].as_u64() > Some(0), "{name}: one of the {what} is {size}");
            assert!(size[0].as_u64() <= Some(WIDTH), "{name}: one of the {what} is wider than {WIDTH} px: {size}");
        }
    }
    assert!(
        found["scroll_width"].as_u64() <= found["inner_width"].as_u64(),
        "{name}: scrolls sideways at {WIDTH} px ({} > {})",
        found["scroll_width"],
        found["inner_width"]
    );
    assert_eq!(found["injected"], 0, "{name}: an element that is no part of the page");
    assert_eq!(found["pwned"], false, "{name}: the user's markup ran");
    assert_eq!(found["sort"]["sorted"], true, "{name}: clicking a heading did not sort: {}", found["sort"]);
    let text = found["text"].as_str().unwrap();
    let at = |heading: &str| text.find(heading).unwrap_or_else(|| panic!("{name}: no {heading} section"));
    assert!(at("Verdict") < at("Conditions") && at("Conditions") < at("Tables"), "{name}: sections out of order");
    assert!(at("Tables") < at("The data"), "{name}: the data is not last");
}

#[test]
fn pages_open_offline_sort_and_show_the_users_markup_as_text() {
    let lab = serial();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let page = |name: &str| dir.path().join(format!("{name}.html"));
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    let saved = dir.path().join("compare.json");
    let graphs = dir.path().join("flamegraphs");
    let server = format!("evil=sh -c 'exit 3' '{EVIL}' {{port}}");
    let out = iolab(&[
        "compare",
        "--models",
        "thread,poll,epoll",
        "-c",
        "100",
        "-m",
        "50",
        "--runs",
        "1",
        "-q",
        "--profile",
        "--flamegraph",
        &path(&graphs),
        "--server",
        &server,
        "--html",
        &path(&page("compare")),
        "--export-json",
        &path(&saved),
    ]);
    assert_eq!(out.status.code(), Some(1), "the evil server does not start: {}", stderr(&out));
    let out = iolab(&["report", "--html", &path(&page("report")), &path(&saved)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = iolab(&[
        "scan",
        "--fds",
        "10,100",
        "--models",
        "poll,epoll",
        "--calls",
        "200",
        "--runs",
        "1",
        "-q",
        "--html",
        &path(&page("scan")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = iolab(&["claims", "--quick", "-q", "--html", &path(&page("claims"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    lab.assert_nothing_left();

    for (name, tables, charts) in [("compare", 4, 4), ("report", 4, 4), ("scan", 1, 1), ("claims", 1, 0)] {
        let found = check(&page(name), &profile);
        assert_page(name, &found, tables, charts);
        if name == "compare" {
            let text = found["text"].as_str().unwrap();
            assert!(text.contains(EVIL), "{name}: the server's command is not shown as text");
        }
        if matches!(name, "compare" | "report") {
            assert_eq!(found["data_command"], name, "{name}: the embedded document");
        }
        if name == "compare" {
            let text = found["text"].as_str().unwrap();
            assert!(text.contains("Flame graphs"), "{name}: --profile ran, so the page shows its flame graphs");
        }
        let png = screenshot(&page(name), name, found["height"].as_u64().unwrap_or(2000), &profile);
        eprintln!("{name}: {}", png.display());
    }
    // A flame graph file on its own: drawn by the browser and by rsvg-convert.
    for model in ["thread", "epoll"] {
        let svg = graphs.join(format!("{model}.svg"));
        let png = screenshot(&svg, &format!("flamegraph-{model}"), 1200, &profile);
        eprintln!("{model}.svg: {}", png.display());
        let drawn = dir.path().join(format!("{model}-rsvg.png"));
        let out = Command::new("rsvg-convert")
            .args(["-w", "1200", "-o", drawn.to_str().unwrap(), svg.to_str().unwrap()])
            .output()
            .expect("rsvg-convert: `cargo xtask test` installs it (apt-get install librsvg2-bin)");
        assert!(out.status.success(), "rsvg-convert {}: {}", svg.display(), String::from_utf8_lossy(&out.stderr));
        assert!(fs::read(&drawn).unwrap().starts_with(b"\x89PNG"), "{} drawn", svg.display());
    }
}
