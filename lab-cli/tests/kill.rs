//! iolab killed with SIGKILL in the middle of a run: no handler runs, no `Drop`, no process group
//! kill. Within 2 s nothing it started may be left — not the server nor what the server started
//! (the process model's children, a preforking server's grandchildren), not the load generator,
//! not the guard — and none of its BPF programs may still be loaded.
//!
//! Every process iolab starts inherits its environment, so each run carries a marker of its own
//! in an environment variable, and the processes of that run are the ones whose
//! `/proc/PID/environ` has it. iolab's BPF programs are the ones its fds held before the kill
//! (`prog_id` in `/proc/PID/fdinfo`), so nobody else's probes are mistaken for ours. The runs are
//! serialised: each drives a server on a 2-core machine.

mod support;

use std::{
    fs,
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use support::{IOLAB, one_at_a_time};

const MARKER_VAR: &str = "IOLAB_KILL_TEST";
/// How long after the kill everything must be gone.
const GONE_WITHIN: Duration = Duration::from_secs(2);

#[test]
fn process_model_run() {
    // 20 connections: 20 forked children beside the server, none of them ours.
    killed_mid_run(&["run", "--model", "process", "-c", "20", "-m", "10000000"], "serve", 1 + 20);
}

#[test]
fn thread_model_compare() {
    // The thread model's server, asleep in accept, must not outlive a killed iolab.
    let args = ["compare", "--models", "thread", "-c", "200", "-m", "1000000", "--runs", "1", "--quiet"];
    killed_mid_run(&args, "serve", 1);
}

#[test]
fn epoll_model_run() {
    killed_mid_run(&["run", "--model", "epoll", "-c", "20", "-m", "10000000"], "serve", 1);
}

/// A server that is not ours, whose work is done by grandchildren.
#[test]
fn preforking_server_under_trace() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/prefork_echo.py");
    // Master, 2 children, 2 grandchildren.
    killed_mid_run(&["trace", "-c", "2", "-m", "10000000", "--", "python3", script, "0", "2"], "prefork_echo.py", 5);
}

/// A server with a process in its group that has nothing to do with any connection, so it
/// does not end when the load generator's connections do: only the process group reaches it
/// (the death signal of the server's first process is not inherited by its children).
#[test]
fn a_server_with_a_background_child_under_trace() {
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/selectors_echo.py");
    let script = format!("sleep 4321.5 & exec python3 {server} 0");
    killed_mid_run(&["trace", "-c", "2", "-m", "10000000", "--", "sh", "-c", &script], "4321.5", 1);
}

/// Starts `iolab ARGS…`, waits until its load generator runs and the server's tree (the
/// processes whose command line has `server_word`) has `server_processes` processes, kills
/// iolab with SIGKILL and checks that everything goes.
fn killed_mid_run(args: &[&str], server_word: &str, server_processes: usize) {
    // Only the lock, not `support::serial`: after the kill, iolab's orphans must be reparented as
    // they are outside a test, not to this process.
    let _one = one_at_a_time();
    let marker = format!("{}-{}", std::process::id(), args.join("-"));
    let mut iolab = Command::new(IOLAB)
        .args(args)
        .env(MARKER_VAR, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let lab = iolab.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let seen = marked(&marker);
        let servers = seen.iter().filter(|p| p.pid != lab && p.has(server_word)).count();
        if servers >= server_processes && seen.iter().any(|p| p.has("load")) {
            break seen;
        }
        assert!(Instant::now() < deadline, "never running: {seen:#?}");
        assert!(iolab.try_wait().unwrap().is_none(), "iolab exited: {seen:#?}");
        sleep(Duration::from_millis(20));
    };
    sleep(Duration::from_millis(300)); // messages flowing
    let programs = bpf_programs_held_by(lab);
    assert!(!programs.is_empty(), "iolab holds no BPF program");
    // Every child shows what it is in `ps`.
    for (word, argv0) in [("load", "iolab"), ("guard", "iolab"), ("serve", "iolab")] {
        if let Some(p) = seen.iter().find(|p| p.argv.get(1).is_some_and(|a| a == word)) {
            assert_eq!(p.argv[0], argv0, "{p:?}");
        }
    }
    assert!(seen.iter().any(|p| p.has("guard")), "no guard: {seen:#?}");

    kill_iolab(&mut iolab);
    let killed = Instant::now();
    let mut left = marked(&marker);
    let mut loaded = still_loaded(&programs);
    while (!left.is_empty() || !loaded.is_empty()) && killed.elapsed() < GONE_WITHIN {
        sleep(Duration::from_millis(20));
        left = marked(&marker);
        loaded = still_loaded(&programs);
    }
    eprintln!("{}: {} processes before the kill, gone in {:?}", args.join(" "), seen.len(), killed.elapsed());
    assert!(left.is_empty(), "left running {GONE_WITHIN:?} after iolab was killed: {left:#?}");
    assert!(loaded.is_empty(), "BPF programs still loaded: {loaded:?}");
}

fn kill_iolab(iolab: &mut Child) {
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(iolab.id() as i32, libc::SIGKILL) };
    iolab.wait().unwrap();
}

/// A living process of one run.
#[derive(Debug)]
struct Marked {
    pid: u32,
    argv: Vec<String>,
}

impl Marked {
    fn has(&self, word: &str) -> bool {
        self.argv.iter().any(|a| a.contains(word))
    }
}

/// The living (not zombie) processes whose environment has `MARKER_VAR=marker`.
fn marked(marker: &str) -> Vec<Marked> {
    let wanted = format!("{MARKER_VAR}={marker}").into_bytes();
    let mut found = Vec::new();
    for pid in fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else { continue };
        if !environ.split(|&b| b == 0).any(|var| var == wanted) || !lab_measure::tree::is_alive(pid) {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty());
        found.push(Marked { pid, argv: argv.map(|a| String::from_utf8_lossy(a).into_owned()).collect() });
    }
    found
}

/// The ids of the BPF programs a process has fds on (`prog_id:` in each fd's fdinfo).
fn bpf_programs_held_by(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().filter_map(Result::ok) {
        let is_prog = fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf-prog");
        let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()));
        if let (true, Ok(info)) = (is_prog, info) {
            ids.extend(
                info.lines().find_map(|l| l.strip_prefix("prog_id:")).and_then(|v| v.trim().parse::<u32>().ok()),
            );
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Which of `ids` the kernel still has loaded.
fn still_loaded(ids: &[u32]) -> Vec<u32> {
    aya::programs::loaded_programs().filter_map(Result::ok).map(|p| p.id()).filter(|id| ids.contains(id)).collect()
}
