//! The output side: statistics over runs, every export format, saved results and the sweep plot.
//!
//! `fixtures/compare.json` is a rendering fixture: made-up but self-consistent numbers (3 models,
//! 3 runs each; every `spread` entry is the median/min/max of the three runs' figures, with none
//! for a figure no run measured, as thread's per-wait-call ones; the stored run is the median run
//! by msg/s), not a measurement. The rendered formats are compared with the snapshots in
//! `snapshots/` (review changes with `cargo insta review`, or rerun with `INSTA_UPDATE=always` and
//! read the diff).

use std::{
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use lab_load::Workload;
use lab_measure::result::RunResult;
use lab_report::{
    present::{
        export::{Format, check_writable, open_output, render, render_width, spread_summary, spread_warnings},
        plot::sweep_svg,
    },
    results::{
        document::{Document, ModelResult, SCHEMA_VERSION, model_result},
        figures::Figure,
        save::{load_document, merge, merge_files, new_document, save_run},
        stats::{Summary, summarize, wide_spread},
    },
};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compare.json")
}

fn fixture() -> Document {
    load_document(&fixture_path()).expect("the fixture is a valid document")
}

fn error_of<T>(result: anyhow::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn table_snapshot() {
    insta::assert_snapshot!("table", render(&fixture(), Format::Table));
}

#[test]
fn table_at_100_columns_snapshot() {
    let text = render_width(&fixture(), Format::Table, Some(100));
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "{} wide: {line}", line.chars().count());
    }
    insta::assert_snapshot!("table_100", text);
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("markdown", render(&fixture(), Format::Markdown));
}

#[test]
fn csv_snapshot() {
    insta::assert_snapshot!("csv", render(&fixture(), Format::Csv));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("json", render(&fixture(), Format::Json));
}

#[test]
fn json_output_reads_back_as_the_same_document() {
    let doc = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.json");
    fs::write(&path, render(&doc, Format::Json)).unwrap();
    let again = load_document(&path).unwrap();
    assert_eq!(render(&again, Format::Csv), render(&doc, Format::Csv));
    assert_eq!(again.verdict, doc.verdict);
}

#[test]
fn csv_parses_back_with_a_row_per_model() {
    let text = render(&fixture(), Format::Csv);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.len(), 6 + 3 * Figure::ALL.len());
    assert_eq!(&header[0], "model");
    assert_eq!(&header[6], "msgs_per_sec");
    assert_eq!(&header[7], "msgs_per_sec_min");
    assert_eq!(&header[8], "msgs_per_sec_max");
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let models: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(models, ["thread", "poll", "epoll"]);
    let thread = &rows[0];
    assert_eq!(&thread[column("connections")], "100");
    assert_eq!(&thread[column("runs")], "3");
    assert_eq!(thread[column("msgs_per_sec")].parse::<f64>().unwrap(), 41250.0);
    assert_eq!(thread[column("msgs_per_sec_min")].parse::<f64>().unwrap(), 38790.0);
    assert_eq!(thread[column("msgs_per_sec_max")].parse::<f64>().unwrap(), 46830.0);
    assert_eq!(rows[1][column("fds_passed_per_wait_call")].parse::<f64>().unwrap(), 101.0, "poll: every fd");
    assert_eq!(rows[2][column("fds_passed_per_wait_call")].parse::<f64>().unwrap(), 0.0, "epoll: none handed in");
    assert_eq!(rows[2][column("fds_watched_per_wait_call")].parse::<f64>().unwrap(), 101.0, "epoll: its list");
    assert_eq!(rows[1][column("max_ready")].parse::<f64>().unwrap(), 100.0, "poll: the most one call returned");
    assert_eq!(&rows[0][column("max_ready")], "", "thread: no wait calls, so nothing to measure");
    assert_eq!(&rows[0][column("ready_per_wait_call_max")], "");
}

#[test]
fn summarize_odd_count() {
    assert_eq!(summarize(&[3.0, 1.0, 2.0]), Summary { median: 2.0, min: 1.0, max: 3.0 });
    assert_eq!(summarize(&[7.5]), Summary { median: 7.5, min: 7.5, max: 7.5 });
}

#[test]
fn summarize_even_count_takes_the_mean_of_the_middle_two() {
    assert_eq!(summarize(&[4.0, 1.0, 3.0, 2.0]), Summary { median: 2.5, min: 1.0, max: 4.0 });
    assert_eq!(summarize(&[10.0, 20.0]), Summary { median: 15.0, min: 10.0, max: 20.0 });
}

#[test]
fn summarize_nothing_is_zero() {
    assert_eq!(summarize(&[]), Summary { median: 0.0, min: 0.0, max: 0.0 });
}

fn run(msgs_per_sec: f64, syscalls_total: u64) -> RunResult {
    RunResult {
        model: "epoll".into(),
        workload: Workload { connections: 10, ..Workload::default() },
        messages_total: 1000,
        msgs_per_sec,
        syscalls_total,
        ..Default::default()
    }
}

#[test]
fn model_result_keeps_the_median_run_and_every_figures_spread() {
    let result = model_result(vec![run(300.0, 3000), run(100.0, 2500), run(200.0, 2100)]);
    assert_eq!(result.runs, 3);
    assert_eq!(result.run.msgs_per_sec, 200.0);
    assert_eq!(result.run.syscalls_total, 2100, "the median run itself, not a mix");
    for f in Figure::ALL {
        let measured = f.value(&result.run).is_some();
        assert_eq!(result.spread.contains_key(f.key()), measured, "{}: an entry when the runs measured it", f.key());
    }
    assert!(!result.spread.contains_key("ready_per_wait_call"), "no wait calls");
    assert_eq!(result.spread["msgs_per_sec"], Summary { median: 200.0, min: 100.0, max: 300.0 });
    assert_eq!(result.spread["syscalls_per_msg"], Summary { median: 2.5, min: 2.1, max: 3.0 });
}

#[test]
fn model_result_of_an_even_count_keeps_the_slower_middle_run() {
    let result = model_result(vec![run(400.0, 4000), run(100.0, 1000), run(300.0, 3000), run(200.0, 2000)]);
    assert_eq!(result.run.msgs_per_sec, 200.0);
    assert_eq!(result.spread["msgs_per_sec"].median, 250.0);
}

#[test]
fn wide_spread_is_more_than_ten_percent_of_the_median() {
    assert!(!wide_spread(&Summary { median: 100.0, min: 95.0, max: 105.0 }), "exactly 10% is not wide");
    assert!(wide_spread(&Summary { median: 100.0, min: 94.0, max: 106.0 }));
    assert!(!wide_spread(&Summary { median: 0.0, min: 0.0, max: 0.0 }));
    assert!(wide_spread(&Summary { median: 0.0, min: 0.0, max: 0.5 }));
}

#[test]
fn spread_warnings_name_the_noisy_model_and_figure() {
    assert_eq!(
        spread_warnings(&fixture()),
        [
            "warning: thread at 100 connections: msg/s varied 19% over 3 runs (38.8k–46.8k); smaller differences are noise",
            "warning: thread at 100 connections: p50 µs varied 19% over 3 runs (2047–2489); smaller differences are noise",
        ]
    );
}

#[test]
fn the_spread_warnings_are_one_line_naming_the_models_figures_and_worst() {
    assert_eq!(
        spread_summary(&fixture()).unwrap(),
        "warning: runs varied more than 10% for thread (msg/s, p50 µs); the most: thread at 100 connections, \
         msg/s by 19% (38.8k–46.8k); smaller differences are noise (each spread is in --format json and --html)"
    );
    let text = render(&fixture(), Format::Table);
    assert_eq!(text.matches("varied").count(), 1, "{text}");
}

#[test]
fn load_document_rejects_json_that_is_not_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.json");
    fs::write(&path, r#"{"name": "something else"}"#).unwrap();
    assert_eq!(
        error_of(load_document(&path)),
        format!("{} is not an iolab result: it has no schema_version", path.display())
    );
    fs::write(&path, r#"{"schema_version": 1, "command": "run"}"#).unwrap();
    assert_eq!(
        error_of(load_document(&path)),
        format!("{} is not an iolab result: missing field `created`", path.display())
    );
}

#[test]
fn a_schema_1_document_reads_its_messages_as_the_total() {
    let mut value: serde_json::Value = serde_json::from_str(&fs::read_to_string(fixture_path()).unwrap()).unwrap();
    value["schema_version"] = 1.into();
    for r in value["results"].as_array_mut().unwrap() {
        let r = r.as_object_mut().unwrap();
        let total = r.remove("messages_total").unwrap();
        r.insert("messages".into(), total);
        r.remove("messages_per_connection");
        r.remove("lockstep");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    fs::write(&path, value.to_string()).unwrap();
    let doc = load_document(&path).unwrap();
    assert_eq!(doc.results[0].run.messages_total, 100_000);
    assert_eq!(doc.results[0].run.workload.messages_per_connection, 0, "schema 1 did not record it");
}

#[test]
fn load_document_rejects_a_file_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    fs::write(&path, "model,msgs_per_sec\n").unwrap();
    let error = error_of(load_document(&path));
    assert!(error.starts_with(&format!("{} is not an iolab result: not JSON (", path.display())), "{error}");
}

#[test]
fn load_document_rejects_a_newer_schema() {
    let mut value: serde_json::Value = serde_json::from_str(&fs::read_to_string(fixture_path()).unwrap()).unwrap();
    value["schema_version"] = (SCHEMA_VERSION + 1).into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.json");
    fs::write(&path, value.to_string()).unwrap();
    assert_eq!(
        error_of(load_document(&path)),
        format!("{} was written by a newer iolab (schema {} > {SCHEMA_VERSION})", path.display(), SCHEMA_VERSION + 1)
    );
}

#[test]
fn open_output_fails_on_a_bad_path_naming_it() {
    let error = error_of(open_output(Some("/nonexistent-iolab-dir/out.csv")));
    assert_eq!(error, "cannot write /nonexistent-iolab-dir/out.csv: No such file or directory (os error 2)");
}

#[test]
fn check_writable_leaves_an_old_file_as_it_was_and_no_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.md");
    fs::write(&old, "earlier results\n").unwrap();
    check_writable(Some(old.to_str().unwrap())).unwrap();
    assert_eq!(fs::read_to_string(&old).unwrap(), "earlier results\n", "a failed run must not empty it");
    let new = dir.path().join("new.md");
    check_writable(Some(new.to_str().unwrap())).unwrap();
    assert!(!new.exists(), "checked, not created");
    check_writable(Some("-")).unwrap();
    let error = error_of(check_writable(Some("/nonexistent-iolab-dir/out.csv")));
    assert_eq!(error, "cannot write /nonexistent-iolab-dir/out.csv: No such file or directory (os error 2)");
}

#[test]
fn open_output_creates_the_file_at_once_and_not_writable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let mut out = open_output(Some(path.to_str().unwrap())).unwrap();
    assert!(path.exists(), "created before anything is written");
    out.write_all(b"hello\n").unwrap();
    drop(out);
    assert_eq!(fs::read_to_string(&path).unwrap(), "hello\n");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o022, 0, "mode {mode:o} is writable by group or others");
    assert_eq!(mode & 0o600, 0o600);
}

#[test]
fn save_run_writes_one_document_per_run_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let doc = fixture();
    let run = doc.results[0].run.clone();
    let path = save_run(dir.path(), &doc, &run, 2).unwrap();
    assert_eq!(path, dir.path().join("compare-thread-c100-2.json"));
    let saved = load_document(&path).unwrap();
    assert_eq!(saved.command, "compare");
    assert_eq!(saved.runs_per_model, 1);
    assert_eq!(saved.results.len(), 1);
    assert_eq!(saved.results[0].runs, 1);
    assert_eq!(saved.results[0].run.msgs_per_sec, 41250.0);
    assert_eq!(saved.results[0].spread["msgs_per_sec"], Summary { median: 41250.0, min: 41250.0, max: 41250.0 });
    assert!(saved.verdict.is_empty());
}

#[test]
fn new_document_is_stamped_with_this_machine_and_the_time() {
    let doc = new_document("sweep", 5);
    assert_eq!((doc.schema_version, doc.command.as_str(), doc.runs_per_model), (SCHEMA_VERSION, "sweep", 5));
    let created = humantime::parse_rfc3339(&doc.created).expect("created is RFC 3339");
    let age = std::time::SystemTime::now().duration_since(created).unwrap();
    assert!(age.as_secs() < 60, "created {} is not now", doc.created);
    assert_eq!(doc.machine.kernel, fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim());
    assert_eq!(doc.machine.cpus, std::thread::available_parallelism().unwrap().get());
}

#[test]
fn report_of_two_files_labels_each_row_and_verdict_line() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("before.json"), dir.path().join("after.json"));
    fs::copy(fixture_path(), &a).unwrap();
    fs::copy(fixture_path(), &b).unwrap();
    let text = render(&merge_files(&[a, b]).unwrap(), Format::Csv);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let models: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
    assert_eq!(
        models,
        ["thread [before]", "poll [before]", "epoll [before]", "thread [after]", "poll [after]", "epoll [after]"]
    );
    let merged = merge(vec![("before".into(), fixture()), ("after".into(), fixture())]);
    assert_eq!(merged.command, "report");
    assert_eq!(merged.verdict.len(), 4);
    assert!(merged.verdict[2].starts_with("after: epoll made 0.11 wait calls"), "{}", merged.verdict[2]);
}

#[test]
fn report_of_one_file_keeps_its_names() {
    let text = render(&merge_files(&[fixture_path()]).unwrap(), Format::Csv);
    assert_eq!(text.lines().nth(1).unwrap().split(',').next(), Some("thread"));
}

#[test]
fn report_names_the_bad_file() {
    let error = error_of(merge_files(&[fixture_path(), PathBuf::from("/nonexistent-iolab.json")]));
    assert_eq!(error, "cannot read /nonexistent-iolab.json: No such file or directory (os error 2)");
}

/// The fixture's models at 10, 100 and 1000 connections, scaled so the lines differ.
fn sweep() -> Vec<ModelResult> {
    let mut results = Vec::new();
    for result in fixture().results {
        for (i, conns) in [10usize, 100, 1000].into_iter().enumerate() {
            let mut r = result.clone();
            r.run.workload.connections = conns;
            r.spread.get_mut("syscalls_per_msg").unwrap().median *= 1.0 + i as f64 / 10.0;
            // The fixture predates the split of the window's CPU: give each point one.
            r.run.window.own_cpu_ns = Some(1_000_000 * (i as u64 + 1));
            r.run.window.softirq_ns.net_rx = 500_000;
            results.push(r);
        }
    }
    results
}

#[test]
fn sweep_svg_draws_four_panels_and_a_legend_entry_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.svg");
    sweep_svg(&sweep(), &path).unwrap();
    let svg = fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    for text in [
        "syscalls per message",
        "context switches per message",
        "fds passed in per wait call",
        "own CPU µs per message of the server",
    ] {
        assert_eq!(svg.matches(text).count(), 1, "panel title {text:?}");
    }
    // plotters writes each text on a line of its own.
    for model in ["thread", "poll", "epoll"] {
        assert_eq!(svg.lines().filter(|l| *l == model).count(), 1, "legend entry {model}");
    }
    // Model lines are 2 px wide (the softirqs beside the CPU are dashed, 1 px): 3 legend
    // samples, then a line per model in each panel but the wait call one, where thread (no wait
    // call) has none…
    assert_eq!(svg.matches(r#"stroke-width="2" points="#).count(), 3 + 3 * 4 - 1);
    // …with a marker at each of its 3 points (and one in each legend sample).
    assert_eq!(svg.matches("<circle").count(), 3 + (3 * 4 - 1) * 3);
}

#[test]
fn sweep_svg_fails_on_a_bad_path_naming_it() {
    let error = error_of(sweep_svg(&sweep(), Path::new("/nonexistent-iolab-dir/sweep.svg")));
    assert!(error.starts_with("cannot draw /nonexistent-iolab-dir/sweep.svg: "), "{error}");
}

/// A page's structure, for a snapshot: the style sheet and scripts elided, each chart reduced to
/// its size and how many bars, lines and labels it holds.
fn html_structure(page: &str) -> String {
    let mut out = String::new();
    let mut rest = page;
    let elide = |rest: &mut &str, out: &mut String, open: &str, close: &str, what: &dyn Fn(&str) -> String| {
        let Some(start) = rest.find(open) else { return false };
        let end = start + rest[start..].find(close).expect("closed") + close.len();
        let (head, body) = (&rest[..start], &rest[start..end]);
        out.push_str(head);
        out.push_str(&what(body));
        *rest = &rest[end..];
        true
    };
    loop {
        let next = ["<style>", "<script", "<svg"].iter().filter_map(|t| rest.find(t).map(|i| (i, *t))).min();
        let Some((_, tag)) = next else { break };
        let count = |body: &str, t: &str| body.matches(t).count();
        match tag {
            "<style>" => elide(&mut rest, &mut out, "<style>", "</style>", &|_| "<style>…</style>".into()),
            "<script" => elide(&mut rest, &mut out, "<script", "</script>", &|body: &str| {
                let open = &body[..body.find('>').unwrap() + 1];
                format!("{open}…{} bytes…</script>", body.len())
            }),
            _ => elide(&mut rest, &mut out, "<svg", "</svg>", &|body: &str| {
                let view = body.split("viewBox=\"").nth(1).and_then(|v| v.split('"').next()).unwrap_or("");
                format!(
                    "<svg viewBox=\"{view}\">{} rect, {} path, {} circle, {} text</svg>",
                    count(body, "<rect"),
                    count(body, "<path"),
                    count(body, "<circle"),
                    count(body, "<text")
                )
            }),
        };
    }
    out + rest
}

#[test]
fn html_snapshot() {
    if let Ok(path) = std::env::var("IOLAB_HTML_SAMPLE") {
        fs::write(path, lab_report::present::html::document(&fixture())).unwrap();
    }
    insta::assert_snapshot!("html", html_structure(&lab_report::present::html::document(&fixture())));
}

#[test]
fn html_embeds_the_whole_document_and_every_table() {
    let doc = fixture();
    let page = lab_report::present::html::document(&doc);
    let start = page.find("id=\"iolab-data\">").unwrap() + "id=\"iolab-data\">".len();
    let json = &page[start..start + page[start..].find("</script>").unwrap()];
    let back: Document = serde_json::from_str(json).unwrap();
    assert_eq!(render(&back, Format::Json), render(&doc, Format::Json));
    let markdown_tables = render(&doc, Format::Markdown).matches("\n| model").count();
    assert_eq!(page.matches("<table").count(), markdown_tables, "a table per group, as in Markdown");
    for figure in [Figure::MsgsPerSec, Figure::SyscallsPerMsg] {
        assert!(page.contains(&format!("title=\"{}\"", figure.description())), "{figure:?}'s tooltip");
    }
}

#[test]
fn html_shows_what_the_user_typed_as_text() {
    let evil = "</script><img src=x onerror=alert(1)>";
    let mut doc = fixture();
    doc.argv = vec!["iolab".into(), "compare".into(), "--server".into(), format!("x=sh -c '{evil}' {{port}}")];
    doc.results[0].run.model = evil.into();
    doc.unsupported.push(lab_report::results::document::Unsupported { model: evil.into(), reason: evil.into() });
    let page = lab_report::present::html::document(&doc);
    assert!(!page.contains("<img"), "an injected element");
    assert_eq!(page.matches("</script>").count(), 2, "only the page's own scripts end");
    assert!(page.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn html_of_a_sweep_draws_lines_over_connections() {
    let mut doc = fixture();
    doc.command = "sweep".into();
    doc.results = sweep();
    let page = lab_report::present::html::document(&doc);
    if let Ok(path) = std::env::var("IOLAB_HTML_SWEEP") {
        fs::write(path, &page).unwrap();
    }
    insta::assert_snapshot!("html_sweep", html_structure(&page));
}

/// The fixture with a made-up `--profile` on each model (1000 Hz, so a sample is 1 ms): thread
/// in the scheduler, poll walking its fds, epoll on its ready list and in TCP. Its verdict is
/// computed again, so it has the profile's sentences.
fn profiled() -> Document {
    use lab_measure::profile::{Profile, RunQueue};
    let k = |frames: &str| frames.split(';').map(|f| format!("{f}_[k]")).collect::<Vec<_>>().join(";");
    let mut doc = fixture();
    for result in &mut doc.results {
        let model = result.run.model.clone();
        let stack = |user: &str, kernel: &str| {
            if kernel.is_empty() {
                format!("{model};main;{user}")
            } else {
                format!("{model};main;{user};{}", k(kernel))
            }
        };
        let read = "entry_SYSCALL_64;ksys_read;sock_read_iter;tcp_recvmsg;skb_copy_datagram_iter;_copy_to_iter";
        let send = "entry_SYSCALL_64;ksys_write;sock_write_iter;tcp_sendmsg;__local_bh_enable_ip";
        let softirq = format!("{};[softirq];{}", stack("write", send), k("handle_softirqs;net_rx_action;tcp_v4_rcv"));
        let (samples, waits, histogram): ([u64; 7], u64, &[(usize, u64)]) = match model.as_str() {
            // fd walk, epoll, scheduler, TCP, net softirq, user, rest
            "thread" => {
                ([0, 0, 350, 200, 250, 100, 100], 99_000, &[(11, 40_000), (12, 50_000), (14, 8_000), (17, 1_000)])
            }
            "poll" => ([600, 0, 50, 150, 150, 50, 0], 1_300, &[(10, 1_000), (12, 300)]),
            _ => ([0, 50, 50, 400, 350, 100, 50], 1_100, &[(10, 1_000), (12, 100)]),
        };
        let stacks = [
            stack("poll", "entry_SYSCALL_64;__x64_sys_poll;do_sys_poll;sock_poll;tcp_poll"),
            stack("epoll_wait", "entry_SYSCALL_64;do_epoll_wait;ep_send_events;ep_item_poll.isra.0;sock_poll"),
            stack("read", "entry_SYSCALL_64;ksys_read;schedule;__schedule;finish_task_switch.isra.0"),
            stack("read", read),
            softirq,
            stack("handle", ""),
            stack("read", "entry_SYSCALL_64;ksys_read;__fdget_pos"),
        ];
        let mut rq = RunQueue { waits, ..RunQueue::default() };
        for &(bucket, count) in histogram {
            rq.histogram[bucket] = count;
            rq.delay_ns += count * (3 << bucket) / 4;
        }
        result.run.profile = Some(Profile {
            hz: 1000,
            on_cpu: stacks.into_iter().zip(samples).filter(|(_, n)| *n > 0).collect(),
            lost_samples: if model == "poll" { 10 } else { 0 },
            off_cpu_ns: [(format!("{model};{}", k("ksys_read;schedule")), 5_000_000)].into(),
            run_queue: rq,
        });
    }
    doc.verdict = lab_report::present::verdict::verdict(&doc.results);
    doc
}

#[test]
fn profiled_table_snapshot() {
    insta::assert_snapshot!("profiled_table", render(&profiled(), Format::Table));
}

#[test]
fn profiled_table_at_100_columns_snapshot() {
    let text = render_width(&profiled(), Format::Table, Some(100));
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "{} wide: {line}", line.chars().count());
    }
    insta::assert_snapshot!("profiled_table_100", text);
}

#[test]
fn profiled_markdown_snapshot() {
    insta::assert_snapshot!("profiled_markdown", render(&profiled(), Format::Markdown));
}

#[test]
fn profiled_csv_snapshot() {
    insta::assert_snapshot!("profiled_csv", render(&profiled(), Format::Csv));
}

#[test]
fn profiled_json_snapshot() {
    insta::assert_snapshot!("profiled_json", render(&profiled(), Format::Json));
}

#[test]
fn one_profiled_run_snapshot() {
    let mut doc = profiled();
    doc.command = "run".into();
    doc.results.truncate(1);
    insta::assert_snapshot!("profiled_run", render(&doc, Format::Table));
}

#[test]
fn the_mechanism_shares_add_up_to_100_in_every_row() {
    let doc = profiled();
    for result in &doc.results {
        let shares: f64 = Figure::ALL.iter().filter_map(|f| f.mechanism().and(result.figure(*f))).sum();
        assert!((shares - 100.0).abs() < 1e-9, "{}: {shares}", result.run.model);
    }
    let poll = &doc.results[1];
    assert_eq!(poll.figure(Figure::FdWalkShare), Some(60.0));
    assert_eq!(poll.figure(Figure::ProfileCpuMs), Some(1010.0), "lost samples are CPU time too");
    assert!(
        doc.verdict.iter().any(|l| l.starts_with("Profile: poll at 100 connections spent 60.0 % of its sampled CPU in the per-fd walk; epoll: none in a per-fd walk, 5.00 % in its ready list.")),
        "{:#?}",
        doc.verdict
    );
}

#[test]
fn html_shows_each_flame_graph_and_the_threads_names_as_text() {
    let evil = "</script><img src=x onerror=alert(1)>";
    let mut doc = profiled();
    let profile = doc.results[0].run.profile.as_mut().unwrap();
    profile.on_cpu.insert(format!("{evil};main"), 5);
    let page = lab_report::present::html::document(&doc);
    assert_eq!(page.matches("<svg class=\"flame\"").count(), 3, "a flame graph per model");
    assert!(!page.contains("<img"), "an injected element");
    assert_eq!(page.matches("</script>").count(), 2, "only the page's own scripts end");
    assert!(!page.contains("onload="), "no event attribute from inferno's SVG");
    assert!(page.contains("Where the sampled CPU went"), "the mechanism table");
    let flames = page.find("id=\"flame-graphs\"").unwrap();
    assert!(page.find("id=\"tables\"").unwrap() < flames && flames < page.find("id=\"data\"").unwrap());
}
