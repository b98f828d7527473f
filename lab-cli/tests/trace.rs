//! `iolab trace` and `iolab top` on servers the lab did not write: Python (`selectors`, a
//! thread per connection, grandchildren that serve) and C (epoll, compiled here with gcc).
//! Each is traced through the real `iolab` binary, most with `--validate`, which must find
//! strace agreeing with the probe on every syscall. They need root, strace, python3 and gcc,
//! as CI has.
//!
//! The servers pick their own port (port 0), so tests can run in parallel.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Child, ChildStdout, Command, Output, Stdio},
    sync::OnceLock,
};

use serde_json::Value;

const SERVERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers");

fn iolab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iolab"))
}

fn server(name: &str) -> String {
    format!("{SERVERS}/{name}")
}

/// The interpreter itself, not a version manager's shim script in front of it.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().expect("python3");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

fn run(command: &mut Command) -> Output {
    let out = command.stdin(Stdio::null()).output().expect("running iolab");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `iolab trace --format json ARGS…`, which must succeed.
/// The traced run of `iolab trace --format json ARGS`, with the document's validation (if any)
/// beside its figures.
fn trace_json(args: &[&str]) -> Value {
    let out = run(iolab().args(["trace", "--format", "json"]).args(args));
    assert!(out.status.success(), "iolab trace failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("trace JSON");
    assert_eq!((doc["command"].as_str(), doc["results"].as_array().map(Vec::len)), (Some("trace"), Some(1)));
    let mut run = doc["results"][0].clone();
    if let Some(validation) = doc.get("validation") {
        run["validation"] = validation.clone();
    }
    run
}

fn calls(run: &Value, syscall: &str) -> u64 {
    run["syscalls"][syscall].as_u64().unwrap_or(0)
}

/// The validation's row for one syscall.
fn checked<'a>(run: &'a Value, syscall: &str) -> &'a Value {
    let rows = run["validation"]["syscalls"].as_array().expect("validation rows");
    rows.iter().find(|r| r["syscall"] == syscall).unwrap_or_else(|| panic!("no {syscall} in {rows:?}"))
}

/// Every syscall agrees with strace within max(0.5 %, 2), and those in `exact` to the call.
fn assert_agrees(run: &Value, exact: &[&str]) {
    assert_eq!(run["validation"]["ok"], true, "{:#}", run["validation"]);
    for row in run["validation"]["syscalls"].as_array().unwrap() {
        assert_eq!(row["ok"], true, "{row}");
    }
    for syscall in exact {
        assert_eq!(checked(run, syscall)["diff"], 0, "{}", checked(run, syscall));
    }
    // perf is installed in CI: context switches are checked too.
    assert_eq!(run["validation"]["switches"]["ok"], true, "{:#}", run["validation"]);
}

#[test]
fn selectors_server_in_python_agrees_with_strace() {
    let run = trace_json(&["-c", "8", "-m", "50", "--validate", "--", python(), &server("selectors_echo.py")]);
    assert_eq!(run["model"], format!("{} selectors_echo.py", file_name(python())));
    assert_eq!(run["messages_total"], 400);
    // One recv per message plus the one that sees each connection's end; one send per message.
    assert_eq!(calls(&run, "recvfrom"), 400 + 8);
    assert_eq!(calls(&run, "sendto"), 400);
    assert_eq!(calls(&run, "accept4"), 8);
    assert_eq!(calls(&run, "close"), 8);
    let waits = run["wait"]["by_call"]["epoll_wait"]["calls"].as_u64().unwrap();
    assert!(waits > 0 && waits == calls(&run, "epoll_wait"), "{:#}", run["wait"]);
    assert_eq!(checked(&run, "recvfrom")["strace"], 408);
    assert_agrees(&run, &["recvfrom", "sendto", "accept4", "close", "epoll_wait"]);
}

#[test]
fn thread_per_connection_server_in_python_agrees_with_strace() {
    let run = trace_json(&["-c", "6", "-m", "50", "--validate", "--", python(), &server("thread_echo.py")]);
    assert_eq!(run["messages_total"], 300);
    assert_eq!(calls(&run, "recvfrom"), 300 + 6);
    assert_eq!(calls(&run, "sendto"), 300);
    assert_eq!(calls(&run, "accept4"), 6);
    // A thread per connection: started, and gone by the end (threads end with `exit`).
    assert_eq!(calls(&run, "clone3") + calls(&run, "clone"), 6);
    assert_eq!(calls(&run, "exit"), 6);
    assert_eq!(run["wait"]["calls"], 0, "blocking reads, no wait calls: {:#}", run["wait"]);
    // `exit` never returns, so strace -c cannot count it: listed, not compared.
    assert_eq!(checked(&run, "exit")["strace"], Value::Null);
    assert_agrees(&run, &["recvfrom", "sendto", "accept4"]);
}

#[test]
fn epoll_server_in_c_agrees_with_strace() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("epoll_echo");
    let gcc = run(Command::new("gcc").args(["-O2", "-Wall", "-Werror", "-o"]).arg(&binary).arg(server("epoll_echo.c")));
    assert!(gcc.status.success(), "gcc failed");
    let run = trace_json(&["-c", "8", "-m", "50", "--validate", "--", binary.to_str().unwrap()]);
    assert_eq!(run["model"], "epoll_echo");
    assert_eq!(calls(&run, "read"), 400 + 8);
    assert_eq!(calls(&run, "write"), 400);
    assert_eq!(calls(&run, "accept4"), 8);
    assert_eq!(calls(&run, "epoll_ctl"), 8, "one registration per connection");
    assert_eq!(calls(&run, "close"), 8);
    assert!(calls(&run, "epoll_wait") > 0);
    assert_agrees(&run, &["read", "write", "accept4", "epoll_ctl", "close", "epoll_wait"]);
}

#[test]
fn grandchildren_that_serve_are_counted() {
    // The master forks 2 children, each forks 1 grandchild; only the grandchildren serve.
    let run = trace_json(&["-c", "4", "-m", "50", "--validate", "--", python(), &server("prefork_echo.py"), "0", "2"]);
    assert_eq!(run["peak_processes"], 5, "master + 2 children + 2 grandchildren");
    assert_eq!(calls(&run, "recvfrom"), 200 + 4);
    assert_eq!(calls(&run, "sendto"), 200);
    assert_eq!(calls(&run, "accept4"), 4);
    assert_agrees(&run, &["recvfrom", "sendto", "accept4"]);
}

#[test]
fn calls_restarted_by_stracing_attach_are_accounted_for() {
    // Blocked in poll(2) with a timeout, the server is moved to `restart_syscall` when strace
    // attaches: strace counts that, the probe counts the poll in progress at the end instead.
    let run =
        trace_json(&["-c", "4", "-m", "20", "--validate", "--", python(), &server("selectors_echo.py"), "0", "poll"]);
    let restart = checked(&run, "restart_syscall");
    assert_eq!(
        (restart["probe"].as_u64(), restart["edges"].as_i64(), restart["strace"].as_u64()),
        (Some(0), Some(1), Some(1))
    );
    let poll = checked(&run, "poll");
    assert_eq!(poll["edges"], -1);
    assert_eq!(poll["strace"].as_u64().unwrap() + 1, poll["probe"].as_u64().unwrap());
    assert_agrees(&run, &["restart_syscall", "poll", "recvfrom", "sendto"]);
}

#[test]
fn a_command_that_exits_at_once_is_reported_with_its_status_and_last_words() {
    let marker = "1234.5"; // a `sleep` it leaves behind, which must not survive
    let script = format!("echo starting; sleep {marker} & echo 'fatal: no config file' >&2; exit 3");
    let out = run(iolab().args(["trace", "--", "sh", "-c", &script]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("exited (exit status: 3) before listening"), "{stderr}");
    assert!(stderr.ends_with("its last output: starting | fatal: no config file\n"), "{stderr}");
    assert!(processes_with(marker).is_empty(), "left running: {:?}", processes_with(marker));
}

#[test]
fn a_server_listening_elsewhere_is_told_where() {
    // Our own listener holds this port, so nothing else can take it (std's bind on purpose:
    // without SO_REUSEPORT no other socket can share the port).
    let ours = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ours.local_addr().unwrap().to_string();
    // A copy at a path of its own, so that no other test's server has the same command line.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("selectors_echo.py").to_str().unwrap().to_owned();
    std::fs::copy(server("selectors_echo.py"), &script).unwrap();
    let out = run(iolab().args(["trace", "--addr", &addr, "--", python(), &script]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let port = stderr.rsplit("listening on 127.0.0.1:").next().unwrap().trim();
    assert!(port.parse::<u16>().is_ok(), "{stderr}");
    assert!(stderr.contains(&format!("it listens on 127.0.0.1:{port}, not on {addr} (--addr)")), "{stderr}");
    assert!(processes_with(&script).is_empty(), "left running: {:?}", processes_with(&script));
}

#[test]
fn a_command_that_does_not_exist_is_bad_input() {
    let out = run(iolab().args(["trace", "--", "iolab-no-such-server"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "iolab: cannot run 'iolab-no-such-server': command not found (PATH has no such executable)\n"
    );
}

#[test]
fn a_pid_that_does_not_exist_is_bad_input() {
    let pid = gone_pid();
    for command in [vec!["trace", "--pid", &pid, "-c", "1"], vec!["top", "--pid", &pid, "--count", "1"]] {
        let out = run(iolab().args(&command));
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("iolab: invalid value '{pid}' for '--pid': no such process\n")
        );
    }
}

#[test]
fn trace_pid_counts_a_running_tree_and_leaves_it_running() {
    let mut server = Background::start(&[python(), &server("prefork_echo.py"), "0", "2"]);
    server.wait_for_processes(5);
    let run = trace_json(&["--pid", &server.pid.to_string(), "--addr", &server.addr, "-c", "4", "-m", "50"]);
    // Marked through /proc at every depth: the grandchildren did all of it.
    assert_eq!(calls(&run, "recvfrom"), 200 + 4);
    assert_eq!(calls(&run, "sendto"), 200);
    assert_eq!(calls(&run, "accept4"), 4);
    server.assert_untouched(5);
}

#[test]
fn trace_pid_follows_threads_started_after_attaching() {
    let mut server = Background::start(&[python(), &server("thread_echo.py")]);
    let run = trace_json(&["--pid", &server.pid.to_string(), "-c", "4", "-m", "50"]);
    // Every connection's thread was started by the probe-followed main thread.
    assert_eq!(calls(&run, "clone3") + calls(&run, "clone"), 4);
    assert_eq!(calls(&run, "recvfrom"), 200 + 4);
    assert_eq!(calls(&run, "sendto"), 200);
    server.assert_untouched(1);
}

#[test]
fn validate_without_strace_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap(); // a PATH with neither strace nor perf
    let out = run(iolab().env("PATH", dir.path()).args([
        "trace",
        "-c",
        "1",
        "-m",
        "1",
        "--validate",
        "--",
        python(),
        &server("selectors_echo.py"),
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "iolab: --validate needs strace, which is not installed (apt-get install strace, or dnf install strace)\n"
    );
}

#[test]
fn trace_pid_of_a_server_that_exits_mid_run_fails_clearly() {
    // It serves one connection, then exits: the second connection never gets an answer.
    let one_shot = "import socket\n\
        listener = socket.create_server(('127.0.0.1', 0))\n\
        print('listening on %s:%d' % listener.getsockname(), flush=True)\n\
        conn, _ = listener.accept()\n\
        while data := conn.recv(65536):\n    conn.sendall(data.upper())\n";
    let mut server = Background::start(&[python(), "-c", one_shot]);
    let pid = server.pid;
    let out = run(iolab().args(["trace", "--pid", &pid.to_string(), "--addr", &server.addr, "-c", "2", "-m", "5"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.ends_with(&format!("process {pid} exited during the run (the probes are detached)\n")), "{stderr}");
    assert!(server.child.try_wait().unwrap().is_some(), "it did exit");
}

#[test]
fn top_shows_the_load_a_running_server_already_has_and_stops_at_ctrl_c() {
    let mut server = Background::start(&[python(), &server("selectors_echo.py")]);
    let mut top = iolab()
        .args(["top", "--pid", &server.pid.to_string(), "--interval", "200ms", "--syscalls", "50", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(top.stdout.take().unwrap()).lines();
    let mut intervals: Vec<Value> = vec![serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()];
    let load = run(iolab().args(["load", "--addr", &server.addr, "-c", "4", "-m", "50"]));
    assert!(load.status.success());
    // The interval the load ended in, and one after it: everything it caused is in.
    for _ in 0..2 {
        intervals.push(serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap());
    }
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(top.id() as i32, libc::SIGINT) };
    let status = top.wait().unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C ends top with 130");
    let total = |syscall: &str| -> u64 {
        let in_one = |i: &Value| -> f64 {
            let rate = i["top_syscalls"].as_array().unwrap().iter().find(|r| r["syscall"] == syscall);
            rate.map_or(0.0, |r| r["per_sec"].as_f64().unwrap() * i["interval_seconds"].as_f64().unwrap())
        };
        intervals.iter().map(in_one).sum::<f64>().round() as u64
    };
    assert_eq!(total("recvfrom"), 200 + 4);
    assert_eq!(total("sendto"), 200);
    server.assert_untouched(1);
}

fn file_name(path: &str) -> &str {
    Path::new(path).file_name().unwrap().to_str().unwrap()
}

/// Pids of live processes whose command line contains `text`.
fn processes_with(text: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && lab_measure::tree::is_alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(text))
        })
        .collect()
}

/// A pid that no process has: one that just exited and was reaped.
fn gone_pid() -> String {
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id().to_string()
}

/// A server started by the test, not by iolab, in a process group of its own.
struct Background {
    child: Child,
    pid: u32,
    addr: String,
    _stdout: BufReader<ChildStdout>,
}

impl Background {
    fn start(argv: &[&str]) -> Background {
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line:?}")).to_owned();
        Background { pid: child.id(), child, addr, _stdout: stdout }
    }

    fn tree(&self) -> Vec<u32> {
        lab_measure::tree::processes(self.pid)
    }

    /// Waits (bounded) until the tree has `n` processes.
    fn wait_for_processes(&mut self, n: usize) {
        for _ in 0..500 {
            if self.tree().len() == n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the tree never had {n} processes: {:?}", self.tree());
    }

    /// Still running with all its processes, traced by nobody, and still serving.
    fn assert_untouched(&mut self, processes: usize) {
        assert!(self.child.try_wait().unwrap().is_none(), "the server exited");
        assert_eq!(self.tree().len(), processes);
        for pid in self.tree() {
            for tid in lab_measure::tree::threads(pid) {
                assert_eq!(lab_measure::tree::tracer(tid), Some(0), "task {tid} is still traced");
            }
        }
        let mut conn = TcpStream::connect(&self.addr).unwrap();
        conn.write_all(b"still there?").unwrap();
        let mut reply = [0; 12];
        conn.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"STILL THERE?");
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on the server's own process group.
        unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn a_server_that_never_goes_idle_is_measured_and_said_to_be_busy() {
    // One connection; after it closes, the server busy-polls for 8 s, longer than the lab waits
    // for idle (5 s): the counts include the polling, and the output says so.
    let out = run(iolab().args(["trace", "-c", "1", "-m", "5", "--", python(), &server("spinning_echo.py")]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("the server never went idle after the load; the lab waited 5."), "{table}");
    let run = trace_json(&["-c", "1", "-m", "5", "--", python(), &server("spinning_echo.py")]);
    let busy = &run["not_idle"];
    assert!(busy["waited_seconds"].as_f64().unwrap() >= 5.0, "{busy}");
    let spun = busy["syscalls"].as_u64().unwrap();
    assert!(spun > 1_000, "it polled while the lab waited: {busy}");
    assert!(
        calls(&run, "select") + calls(&run, "pselect6") >= spun / 2,
        "the polling is in the counts: {}",
        run["syscalls"]
    );
}
