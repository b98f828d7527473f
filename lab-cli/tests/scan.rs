//! `iolab scan` as a user meets it: a real scan under the probe with its exact counts, every
//! output it writes, and bad input.
//!
//! Runs the real binary as root with the real probes, one test at a time; each checks afterwards
//! that no process it started is left and no probe it loaded. (Run alone, as CI does: another
//! iolab loading probes at the same time would look like a leak.)

mod support;

use std::{
    fs,
    os::unix::process::CommandExt as _,
    process::{Command, Stdio},
};

use serde_json::Value;
use support::{IOLAB, iolab, serial, stderr};

const CALLS: u64 = 200;

/// A small scan with every output at once. Its counts are exact: the window opens with every
/// connection accepted and the server blocked in its wait call, and closes once the last reply
/// is in, with the server blocked in the next one. Each message ends exactly one wait call (the
/// first ends the call that was blocked when the window opened; the call after the last reply is
/// still blocked when it closes, so not counted), and that call returns its one ready socket. The
/// server watches its listener beside the N connections: N + 1 fds, handed in by poll on every
/// call, registered once with epoll.
#[test]
fn a_small_scan_counts_one_ready_fd_per_wait_call_over_n_plus_the_listener() {
    let lab = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (json, csv, md, svg) = (path("scan.json"), path("scan.csv"), path("scan.md"), path("scan.svg"));
    let calls = CALLS.to_string();
    let out = iolab(&[
        "scan",
        "--fds",
        "100,10",
        "--calls",
        &calls,
        "--runs",
        "2",
        "--models",
        "poll,epoll",
        "--format",
        "json",
        "-q",
        "--export-csv",
        &csv,
        "--export-markdown",
        &md,
        "--output",
        &json,
        "--plot",
        &svg,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!((doc["command"].as_str(), doc["schema_version"].as_u64()), (Some("scan"), Some(3)));
    assert_eq!((doc["calls"].as_u64(), doc["runs_per_point"].as_u64()), (Some(CALLS), Some(2)));
    assert_eq!(doc["incomplete"], false);
    let rows = doc["rows"].as_array().unwrap();
    let points: Vec<(&str, u64)> =
        rows.iter().map(|r| (r["model"].as_str().unwrap(), r["fds"].as_u64().unwrap())).collect();
    assert_eq!(points, [("poll", 10), ("poll", 100), ("epoll", 10), ("epoll", 100)], "models in order, N ascending");
    for r in rows {
        let (model, n) = (r["model"].as_str().unwrap(), r["fds"].as_u64().unwrap());
        let at = format!("{model} at {n} fds: {r}");
        let u = |key: &str| r[key].as_u64().unwrap_or_else(|| panic!("{key} missing, {at}"));
        let f = |key: &str| r[key].as_f64().unwrap_or_else(|| panic!("{key} missing, {at}"));
        assert_eq!((u("messages"), u("errors"), u("runs")), (CALLS, 0, 2), "{at}");
        assert!(f("cpu_ns_per_wait_min") <= f("cpu_ns_per_wait") && f("cpu_ns_per_wait") <= f("cpu_ns_per_wait_max"));
        assert_eq!(u("wait_calls"), CALLS, "one wait call ended per message, {at}");
        assert_eq!(u("ready"), CALLS, "each found exactly one socket ready, {at}");
        assert_eq!(f("ready_per_wait"), 1.0, "{at}");
        assert_eq!(u("fds_watched"), CALLS * (n + 1), "N connections and the listener, {at}");
        let passed = if model == "poll" { CALLS * (n + 1) } else { 0 };
        assert_eq!(u("fds_passed"), passed, "poll is handed every fd on every call, epoll none, {at}");
        assert!(u("cpu_ns") > 0, "a wait call takes CPU time, {at}");
        assert_eq!(f("cpu_ns_per_wait"), u("cpu_ns") as f64 / CALLS as f64, "{at}");
        assert_eq!(f("ns_per_watched_fd"), u("cpu_ns") as f64 / (CALLS * (n + 1)) as f64, "{at}");
        let base = rows.iter().find(|b| b["model"] == model && b["fds"] == 10).unwrap();
        assert_eq!(f("ratio_to_smallest"), f("cpu_ns_per_wait") / base["cpu_ns_per_wait"].as_f64().unwrap(), "{at}");
    }
    let published = &doc["published"];
    assert_eq!(published["url"], "https://man7.org/conf/lca2006/Linux_2.6_changes/epoll_2d.html");
    assert_eq!(published["operations"], 100_000);

    let csv = fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "a header and a line per point: {csv}");
    assert!(lines[0].starts_with("model,fds,mode,messages,wait_calls,cpu_ns,"), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("poll,10,sleeps,{CALLS},{CALLS},")), "{}", lines[1]);
    let md = fs::read_to_string(&md).unwrap();
    assert!(md.contains("| model ") && md.contains("| epoll ") && md.contains("man7.org/conf/lca2006"), "{md}");
    assert!(md.contains("One wait call at 100 fds over one at 10: poll "), "the shape sentence: {md}");
    let svg = fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("poll: on-CPU µs") && svg.contains("epoll: µs per operation"));
    lab.assert_nothing_left();
}

/// With `--ready` each point is measured twice: every call sleeping (a pause after each reply
/// longer than the server takes to go back to sleep), then every call finding a message queued
/// (the client sends 64 ahead). Measured on this 2-CPU machine (poll, 500 calls): sleeping 1.00
/// at 10 and 100 fds (select 0.98 at worst), ready 0.13–0.21 at 10 fds and 0.12 at 100, 0.01 at
/// 1,000. The client and the server do about the same work per message, so the client's lead
/// sometimes runs out at small N: the bounds allow that, and still tell the two cases apart.
#[test]
fn a_ready_scan_measures_sleeping_and_ready_calls_apart() {
    let lab = serial();
    let out = iolab(&[
        "scan", "--fds", "10,100", "--calls", "500", "--runs", "1", "--models", "poll", "--ready", "--format", "json",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let points: Vec<(u64, &str)> =
        rows.iter().map(|r| (r["fds"].as_u64().unwrap(), r["mode"].as_str().unwrap())).collect();
    assert_eq!(points, [(10, "sleeps"), (10, "ready"), (100, "sleeps"), (100, "ready")]);
    for r in rows {
        let (slept, calls) = (r["slept"].as_u64().unwrap(), r["wait_calls"].as_u64().unwrap());
        let fraction = r["slept_fraction"].as_f64().unwrap();
        assert_eq!(fraction, slept as f64 / calls as f64, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        match r["mode"].as_str().unwrap() {
            "sleeps" => assert!(fraction >= 0.9, "every call sleeps: {r}"),
            _ => assert!(fraction <= 0.5, "most calls find the message queued: {r}"),
        }
    }
    lab.assert_nothing_left();
}

/// Bad input is one line naming the flag and the fix, exit status 2, before anything starts.
#[test]
fn bad_scan_input_is_one_line_naming_the_fix_and_exit_status_2() {
    let lab = serial();
    let cases: &[(&[&str], &str)] = &[
        (&["scan", "--fds", "0"], "--fds"),
        (&["scan", "--fds", "10,x"], "--fds"),
        (&["scan", "--fds", "10,100,10"], "--fds: 10 is named twice; name each number once"),
        (
            &["scan", "--models", "thread"],
            "'thread' does not wait for its sockets in one select, poll or epoll loop; \
             scan takes select, poll, epoll, epoll-et, coroutine",
        ),
        (&["scan", "--models", "poll,nope"], "unknown model 'nope'"),
        (&["scan", "--models", "poll,epoll,poll"], "'poll' is named twice"),
        (&["scan", "--calls", "0"], "--calls"),
        (&["scan", "--runs", "0"], "--runs"),
        (&["scan", "--output", "/nonexistent/dir/out.json"], "--output"),
        (&["scan", "--export-csv", "/nonexistent/dir/out.csv"], "--export-csv"),
        (&["scan", "--plot", "/nonexistent/dir/scan.svg"], "--plot"),
        (&["scan", "--format", "xml"], "[possible values: table, json, csv, markdown]"),
        (
            &["scan", "--ready", "--models", "poll,epoll-et"],
            "--ready: 'epoll-et' reads each socket until it is empty before it waits again, so its wait calls \
             cannot find a message queued; --ready takes select, poll, epoll",
        ),
        (&["run", "--ready"], "unexpected argument '--ready' found (--ready is iolab scan's: iolab scan --ready)"),
    ];
    for (args, says) in cases {
        let out = iolab(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("iolab: ") && err.contains(says), "{args:?}: {err}");
    }
    // More fds than the descriptor limit allows: the fix is named. The limit is lowered for the
    // child alone (root may lower its hard limit), so the case holds on any machine.
    let out = Command::new(IOLAB)
        .args(["scan", "--fds", "10,5000", "--models", "poll"])
        .stdin(Stdio::null())
        .pre_exec_nofile(1024)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("iolab: --fds 5000: ") && err.contains("ulimit -n"), "{err}");
    lab.assert_nothing_left();
}

/// Ctrl-C between points: the finished points are printed, marked incomplete, and saved; nothing
/// is left running; exit 130.
#[test]
fn an_interrupted_scan_keeps_the_points_it_finished() {
    let lab = serial();
    let dir = tempfile::tempdir().unwrap();
    let (out_file, save) = (dir.path().join("out.json"), dir.path().join("runs"));
    // poll's point is saved as soon as it is measured (1 busy connection, 9 idle); epoll's
    // warm-up and point, 60,000 messages more, are still to come.
    let (out_path, save_path) = (out_file.to_str().unwrap(), save.to_str().unwrap());
    let args = [
        "scan",
        "--fds",
        "10",
        "--calls",
        "30000",
        "--runs",
        "1",
        "--models",
        "poll,epoll",
        "-q",
        "--format",
        "json",
        "--output",
        out_path,
        "--save",
        save_path,
    ];
    let out = support::interrupted_once_saved(&args, &save.join("scan-poll-c1-i9-1.json"));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("incomplete"), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(doc["incomplete"], true);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only poll's point finished: {doc}");
    assert_eq!((rows[0]["model"].as_str(), rows[0]["wait_calls"].as_u64()), (Some("poll"), Some(30_000)));
    lab.assert_nothing_left();
}

trait NofileLimit {
    /// Runs the command with `RLIMIT_NOFILE` at `limit`, soft and hard.
    fn pre_exec_nofile(&mut self, limit: u64) -> &mut Self;
}

impl NofileLimit for Command {
    fn pre_exec_nofile(&mut self, limit: u64) -> &mut Self {
        // SAFETY: setrlimit is async-signal-safe; it only reads the struct.
        unsafe {
            self.pre_exec(move || {
                let rl = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}
