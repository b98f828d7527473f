//! `iolab` as a user meets it: real runs, bad input, interruptions and crashes.
//!
//! Every test here runs the real binary as root with the real probes. They are serialised, and
//! each checks afterwards that nothing of the lab is left: no process, no BPF program. (Run alone,
//! as CI does: another iolab loading probes at the same time would look like a leak.)

mod support;

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{IOLAB, iolab, serial, stderr};

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `--timing`: every syscall of the window timed as it returns, in JSON by name; the programs
/// that time them go with the run. Without it the document has no `syscall_times`.
#[test]
fn run_with_timing_times_every_syscall_the_probe_counts() {
    let lab = serial();
    let out = iolab(&["run", "--model", "epoll", "-c", "20", "-m", "30", "--timing", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &json(&out)["results"][0];
    let times = r["syscall_times"].as_object().expect("syscall_times with --timing");
    for name in ["recvfrom", "sendto", "accept4"] {
        let t = &times[name];
        assert_eq!(t["calls"], r["syscalls"][name], "{name}: timed at exit = counted at entry");
        let histogram: u64 = t["histogram"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(Some(histogram), t["calls"].as_u64(), "{name}: each call in one bucket");
        assert!(t["cpu_ns"].as_u64().unwrap() > 0, "{name}");
    }
    assert_eq!((times["sendto"]["calls"].as_u64(), times["sendto"]["errors"].as_u64()), (Some(600), Some(0)));
    let out = iolab(&["run", "--model", "epoll", "-c", "2", "-m", "2", "--format", "json"]);
    assert!(json(&out)["results"][0].get("syscall_times").is_none(), "only with --timing");
    lab.assert_nothing_left();
}

#[test]
fn run_json_has_every_figure_and_they_add_up() {
    let lab = serial();
    let out = iolab(&["run", "--model", "epoll", "-c", "50", "-m", "40", "-b", "100", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!((doc["schema_version"].as_u64(), doc["command"].as_str()), (Some(3), Some("run")));
    let r = &doc["results"][0];
    assert_eq!(r["model"], "epoll");
    assert_eq!(r["connections"], 50);
    assert_eq!(r["messages_per_connection"], 40);
    assert_eq!(r["messages_total"], 2000);
    assert_eq!(r["payload_bytes"], 100);
    assert_eq!(r["errors"], 0);
    let syscalls = r["syscalls"].as_object().unwrap();
    let total: u64 = syscalls.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(r["syscalls_total"].as_u64().unwrap(), total);
    // Every message needs a read and a write; each connection also reads its EOF.
    assert_eq!(syscalls["sendto"].as_u64().unwrap(), 2000);
    assert_eq!(syscalls["recvfrom"].as_u64().unwrap(), 2050);
    assert_eq!(syscalls["accept4"].as_u64().unwrap(), 50);
    let wait = &r["wait"];
    assert_eq!(wait["calls"], syscalls["epoll_wait"], "every epoll_wait was seen entering and returning");
    assert!(wait["ready"].as_u64().unwrap() >= 2000, "each message made its socket ready at least once");
    let (p50, p99) = (r["latency_us"]["p50"].as_f64().unwrap(), r["latency_us"]["p99"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p99);
    let rate = 2000.0 / r["wall_seconds"].as_f64().unwrap();
    assert!((r["msgs_per_sec"].as_f64().unwrap() - rate).abs() < 1e-6 * rate);
    assert!(r["context_switches"]["voluntary"].as_u64().is_some());
    // One run's JSON is a document like any other: `iolab report` reads it back.
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), &out.stdout).unwrap();
    let csv = iolab(&["report", file.path().to_str().unwrap(), "--format", "csv"]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    let rows: Vec<String> = String::from_utf8_lossy(&csv.stdout).lines().map(str::to_owned).collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[1].starts_with("epoll,50,0,2000,100,1,"), "{}", rows[1]);
    lab.assert_nothing_left();
}

#[test]
fn compare_runs_every_model_and_says_what_it_measured() {
    let lab = serial();
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("runs");
    let out = iolab(&[
        "compare",
        "--models",
        "all",
        "-c",
        "20",
        "-m",
        "20",
        "--runs",
        "2",
        "--format",
        "json",
        "--quiet",
        "--save",
        save.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["schema_version"], 3);
    assert_eq!(doc["command"], "compare");
    assert_eq!(doc["incomplete"], false);
    let results = doc["results"].as_array().unwrap();
    let models: Vec<&str> = results.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, lab_server::model_names());
    for r in results {
        let model = r["model"].as_str().unwrap();
        assert_eq!(r["messages_total"], 400, "{model}");
        assert_eq!(r["errors"], 0, "{model}");
        assert_eq!(r["runs"], 2, "{model}");
        let spread = &r["spread"]["msgs_per_sec"];
        assert!(
            spread["min"].as_f64() <= spread["median"].as_f64() && spread["median"].as_f64() <= spread["max"].as_f64()
        );
        let blocking = model == "thread" || model == "process";
        assert_eq!(r["wait"]["calls"] == 0, blocking, "{model}: only the blocking models make no wait calls");
    }
    let uring = results.iter().find(|r| r["model"] == "io-uring").unwrap();
    assert!(uring["syscalls"].get("recvfrom").is_none() && uring["syscalls"].get("sendto").is_none());
    assert!(!doc["verdict"].as_array().unwrap().is_empty());
    // Two runs per model saved, plus the summary; `iolab report` reads them back in any format.
    let saved: Vec<_> = fs::read_dir(&save).unwrap().map(|e| e.unwrap().path()).collect();
    let models = lab_server::models::ALL.len();
    assert_eq!(saved.len(), models * 2 + 1);
    let summary = save.join("compare.json");
    let csv = iolab(&["report", summary.to_str().unwrap(), "--format", "csv"]);
    assert!(csv.status.success(), "{}", stderr(&csv));
    assert_eq!(String::from_utf8_lossy(&csv.stdout).lines().count(), 1 + models);
    lab.assert_nothing_left();
}

#[test]
fn bad_input_is_one_line_naming_the_flag_and_exit_status_2() {
    let lab = serial();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--model", "nope"], "--model"),
        (&["run", "--model", "epoll", "-c", "0"], "--connections"),
        (&["run", "--model", "epoll", "-m", "0"], "--messages"),
        (&["run", "--model", "epoll", "-b", "0"], "--bytes"),
        (&["run", "--model", "epoll", "-b", "16777217"], "--bytes"),
        (&["run", "--model", "epoll", "-c", "50000"], "--connections"),
        (&["compare", "--models", "epoll,nope"], "--models"),
        (&["compare", "--output", "/nonexistent/dir/out.json"], "--output"),
        (&["load", "--addr", "not-an-address"], "--addr"),
        (&["load", "--addr", "192.0.2.1:80"], "--allow-remote"),
        (&["serve", "--model", "epoll", "--addr", "0.0.0.0:0"], "--allow-remote"),
        // What clap says below its first line is kept: which argument, which values, the fix.
        (&["run"], "the following required arguments were not provided: --model <MODEL>"),
        (&["load"], "not provided: --addr <ADDR>"),
        (&["trace"], "not provided: <CMD>"),
        (&["top"], "not provided: --pid <PID>"),
        (&["report"], "not provided: <FILE>"),
        (&["run", "--model", "epoll", "--format", "xml"], "[possible values: table, json, csv, markdown]"),
        (&["top", "-p", "1", "--format", "csv"], "[possible values: table, json]"),
        (&["trace", "python3", "x.py"], "goes after `--`: iolab trace -- CMD ARGS"),
        // Checked before the probe loads or anything starts.
        (&["trace", "--interval", "1s", "--", "python3", "x.py"], "give its '--pid'"),
        (&["trace", "-p", "1", "--interval", "1s", "--timing"], "'--timing'"),
        (&["soak", "-M", "bogus"], "--model"),
        (&["soak", "-c", "30000"], "--connections 30000"),
        (&["run", "--model", "epoll", "--export-csv", "/nonexistent/dir/out.csv"], "--export-csv"),
        (&["run", "--model", "epoll", "--save", "/proc/no/such"], "--save"),
        (&["sweep", "-c", "5", "--plot", "/nonexistent/dir/plot.svg"], "--plot"),
        // --server NAME='CMD … {port}': each mistake named, with an example of the right form.
        (&["compare", "--server", "python3 x.py {port}"], "is not NAME='CMD … {port}' (e.g. --server py="),
        (&["compare", "--server", "epoll=python3 x.py {port}"], "'epoll' is the name of a model"),
        (&["prove", "--server", "py=python3 x.py"], "has no {port}: put {port} where its port goes"),
        (&["sweep", "--server", "py='python3 x.py {port}"], "its quotes do not close"),
        (&["compare", "--server", "py=no-such-program-here {port}"], "cannot run 'no-such-program-here'"),
        (&["compare", "--models", "none"], "nothing to run: --models none needs at least one --server"),
        (&["compare", "--server", "a=python3 x.py {port}", "--server", "a=python3 y.py {port}"], "two servers"),
    ];
    for (args, flag) in cases {
        let out = iolab(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("iolab: ") && err.contains(flag), "{args:?}: {err}");
    }
    // std's bind on purpose: without SO_REUSEPORT, no other socket can bind the port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = iolab(&["serve", "--model", "epoll", "--addr", &addr]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("in use") && stderr(&out).contains("--addr"), "{}", stderr(&out));
    // `iolab` alone: the help (on stderr, as clap does it), exit status 2.
    let out = iolab(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage: iolab <COMMAND>"), "{}", stderr(&out));
    let not_a_result = tempfile::NamedTempFile::new().unwrap();
    fs::write(not_a_result.path(), "{\"hello\": 1}").unwrap();
    let out = iolab(&["report", not_a_result.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not an iolab result"));
    lab.assert_nothing_left();
}

/// The Python interpreter itself (a version manager's `python3` may be a shell script).
fn python() -> String {
    let out = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/python");
/// The virtualenv with gevent that `cargo xtask python` makes (`cargo xtask test` makes it first).
const GEVENT_PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/python/bin/python");

#[test]
fn every_python_example_serves_the_protocol_as_a_server_row() {
    let lab = serial();
    let python = python();
    let server = |name: &str, python: &str, file: &str| format!("{name}={python} {EXAMPLES}/{file} {{port}}");
    let servers = [
        server("py-process", &python, "process_server.py"),
        server("py-thread", &python, "thread_server.py"),
        server("py-gevent", GEVENT_PYTHON, "gevent_server.py"),
        server("py-selectors", &python, "selectors_server.py"),
    ];
    // 3,000-byte messages: more than one recv(1024), so a server that assumed one read per
    // message would fail the reply check.
    let mut args = vec!["compare", "--models", "epoll", "-c", "10", "-m", "20", "-b", "3000", "--runs", "1"];
    args.extend(["--format", "json", "--quiet"]);
    for s in &servers {
        args.extend(["--server", s.as_str()]);
    }
    let out = iolab(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    let rows: Vec<&str> = doc["results"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(rows, ["epoll", "py-process", "py-thread", "py-gevent", "py-selectors"], "models first, then servers");
    for r in doc["results"].as_array().unwrap() {
        assert_eq!((r["errors"].as_u64(), r["messages_total"].as_u64()), (Some(0), Some(200)), "{}", r["model"]);
        assert!(r["peak_pss_kib"].as_u64() > Some(0), "{}", r["model"]);
        assert!(r["spread"]["pss_kib_per_conn"]["median"].as_f64() > Some(0.0), "{}", r["model"]);
    }
    lab.assert_nothing_left();
}

#[test]
fn a_server_that_never_listens_is_named_and_the_others_still_run() {
    let lab = serial();
    let python = python();
    let exits = format!("quits={python} -c 'import sys; sys.exit(\"no port for me: \" + sys.argv[1])' {{port}}");
    let out = iolab(&["compare", "--models", "poll", "--server", &exits, "-c", "5", "-m", "5", "--runs", "1", "-q"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("server quits did not start:") && err.contains("before listening on 127.0.0.1:"), "{err}");
    assert!(err.contains("its last output: no port for me: "), "its own words: {err}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("│ poll") && table.contains("note: quits: not run: "), "{table}");
    lab.assert_nothing_left();
}

/// Ctrl-C in the middle of a comparison: what was measured is printed and saved, marked
/// incomplete; every server and load generator is gone, every probe detached; exit 130.
#[test]
fn interrupt_keeps_what_was_measured_and_leaves_nothing_behind() {
    let lab = serial();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.json");
    let save = dir.path().join("runs");
    // Wait for the first measured run of the first model, then interrupt the second one.
    let (out_path, save_path) = (out_file.to_str().unwrap(), save.to_str().unwrap());
    let args = [
        "compare",
        "--models",
        "thread,poll,epoll",
        "-c",
        "50",
        "-m",
        "2000",
        "--runs",
        "2",
        "--quiet",
        "--format",
        "json",
        "--output",
        out_path,
        "--save",
        save_path,
    ];
    let out = support::interrupted_once_saved(&args, &save.join("compare-thread-c50-1.json"));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("incomplete"), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(doc["incomplete"], true);
    let first = &doc["results"][0];
    assert_eq!(first["model"], "thread");
    assert!(first["runs"].as_u64().unwrap() >= 1);
    assert_eq!(first["messages_total"], 100_000, "a finished run is kept whole");
    let saved: Value = serde_json::from_slice(&fs::read(save.join("compare.json")).unwrap()).unwrap();
    assert_eq!(saved["incomplete"], true);
    lab.assert_nothing_left();
}

#[test]
fn sigterm_during_a_run_exits_143_and_leaves_nothing_behind() {
    let lab = serial();
    let child = Command::new(IOLAB)
        .args(["run", "--model", "thread", "-c", "100", "-m", "1000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_server(child.id() as i32);
    sleep(Duration::from_millis(300));
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    lab.assert_nothing_left();
}

/// The server is killed mid-run: a clear error naming the model and the signal, quickly.
#[test]
fn a_server_killed_mid_run_is_reported_by_model_and_signal() {
    let lab = serial();
    let child = Command::new(IOLAB)
        .args(["run", "--model", "poll", "-c", "20", "-m", "10000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = wait_for_server(child.id() as i32);
    sleep(Duration::from_millis(300));
    let killed_at = Instant::now();
    // SAFETY: plain kill(2) on the server, a grandchild of ours.
    unsafe { libc::kill(server, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    assert!(killed_at.elapsed() < Duration::from_secs(5), "took {:?}", killed_at.elapsed());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("model poll") && err.contains("SIGKILL"), "{err}");
    lab.assert_nothing_left();
}

/// The server process of a running `iolab run` (its child running `serve`).
fn wait_for_server(lab: i32) -> i32 {
    wait_for_child(lab, b"serve")
}

/// The child of `lab` whose command line has the word `word` (`serve`, `load`).
fn wait_for_child(lab: i32, word: &[u8]) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_str().unwrap_or("").parse::<i32>() else { continue };
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let parent = lab_measure::launch::parent_of(pid);
            if parent == Some(lab) && cmdline.split(|&b| b == 0).any(|arg| arg == word) {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no {} process started", String::from_utf8_lossy(word));
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn selftest_proves_the_counters_exact_on_this_kernel() {
    let lab = serial();
    let out = iolab(&["selftest", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["io"]["reads"], r["io"]["expected"]);
    assert_eq!(r["io"]["writes"], r["io"]["expected"]);
    assert_eq!(r["epoll"]["fds_watched"], r["epoll"]["expected_fds_watched"]);
    assert_eq!(r["epoll"]["fds_passed"], 0);
    assert_eq!(r["unavailable"], serde_json::json!([]), "this kernel has every tracepoint");
    assert!(Path::new(IOLAB).exists());
    lab.assert_nothing_left();
}

/// Through sudo, only the probes stay root: the server, the load generator and the files written
/// belong to the user who ran sudo.
#[test]
fn under_sudo_servers_load_and_files_belong_to_the_invoking_user() {
    let lab = serial();
    let as_nobody = |args: &[&str]| {
        let mut command = Command::new(IOLAB);
        command.args(args).env("SUDO_UID", "65534").env("SUDO_GID", "65534").stdin(Stdio::null());
        command
    };
    let child = as_nobody(&["run", "--model", "thread", "-c", "5", "-m", "10000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = wait_for_server(child.id() as i32);
    let load = wait_for_child(child.id() as i32, b"load");
    assert_eq!(uid_of(server), "65534\t65534\t65534\t65534");
    assert_eq!(uid_of(load), "65534\t65534\t65534\t65534");
    assert_eq!(uid_of(child.id() as i32), "0\t0\t0\t0", "iolab itself keeps root for the probes");
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    // The results are written once the run is done, as the invoking user's.
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.txt");
    let out = as_nobody(&["run", "--model", "thread", "-c", "2", "-m", "5", "--output", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    use std::os::unix::fs::MetadataExt as _;
    let meta = fs::metadata(&out_file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    assert_eq!(meta.mode() & 0o022, 0, "not group- or world-writable");
    lab.assert_nothing_left();
}

fn uid_of(pid: i32) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().trim().to_owned()
}

/// `--addr` takes a name as well as an IP literal (`localhost:PORT`), resolved to loopback.
#[test]
fn load_resolves_a_host_name() {
    let lab = serial();
    let mut server = Command::new(IOLAB).args(["serve", "--model", "epoll"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(server.stdout.take().unwrap()), &mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    let out = iolab(&["load", "--addr", &format!("localhost:{port}"), "-c", "2", "-m", "3", "--format", "json"]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["messages_ok"], 6);
    lab.assert_nothing_left();
}

/// Ctrl-C in soak follows run's rules: the batches that finished are printed, the run is said to
/// be incomplete, exit 130, nothing left behind.
#[test]
fn soak_interrupted_prints_what_finished_and_exits_130() {
    let lab = serial();
    let mut child = Command::new(IOLAB)
        .args(["soak", "-M", "epoll", "-c", "20", "-m", "50", "--seconds", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    // The first batch's row comes with its minute: wait for it, then interrupt.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while seen.lines().count() < 3 {
        assert_ne!(std::io::BufRead::read_line(&mut stdout, &mut seen).unwrap(), 0, "soak ended early: {seen}");
    }
    // SAFETY: plain kill(2) on our child's process group, as the terminal does on Ctrl-C.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    std::io::Read::read_to_string(&mut stdout, &mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("incomplete"), "{}", stderr(&out));
    assert!(seen.contains("batches. First vs last"), "{seen}");
    lab.assert_nothing_left();
}

/// Under sudo the servers run as the invoking user, and so must the listener the lab hands them:
/// the kernel adds a listener to a SO_REUSEPORT group only when all of them have one owner.
#[test]
fn under_sudo_epoll_reuseport_opens_its_listener_per_thread() {
    let lab = serial();
    let out = Command::new(IOLAB)
        .args(["run", "--model", "epoll-reuseport", "-c", "20", "-m", "20", "--format", "json"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = &json(&out)["results"][0];
    assert_eq!((run["messages_total"].as_u64(), run["errors"].as_u64()), (Some(400), Some(0)));
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(run["peak_threads"].as_u64(), Some(cpus), "a thread and a listener per CPU");
    lab.assert_nothing_left();
}
