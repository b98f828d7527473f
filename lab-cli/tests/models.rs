//! Every model, measured by the real probe: the counts must be what the model's design says.
//!
//! The runs use the walkthrough's scenario (`iolab prove`): all connections open, then rounds in
//! which every connection sends one message at the same moment, and only the rounds are counted.
//! That makes most counts exact: a blocking server reads and writes exactly once per message.
//! Runs are serialised: two servers at 10,000 connections would only measure each other.

use std::{path::Path, sync::Mutex};

use lab_load::Workload;
use lab_measure::{
    experiment::run_model,
    launch,
    probe::Probe,
    result::RunResult,
    run::{Counted, RunSpec},
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn rounds(model: &str, connections: usize, rounds: usize) -> RunResult {
    rounds_of(model, None, connections, rounds, false)
}

/// [`rounds`] of a model, or with `command` of a `--server` of that name; every syscall timed if
/// `timing` (`--timing`).
fn rounds_of(model: &str, command: Option<Vec<String>>, connections: usize, rounds: usize, timing: bool) -> RunResult {
    bursts(model, command, Workload::lockstep(connections, rounds), timing)
}

/// `workload` sent in bursts (a round per message) to a model, or to `command` as a `--server`.
fn bursts(model: &str, command: Option<Vec<String>>, workload: Workload, timing: bool) -> RunResult {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    let fds_before = open_fds();
    let messages = (workload.connections * workload.messages_per_connection) as u64;
    let result = {
        let mut probe = Probe::load_with(lab_measure::probe::ProbeOptions { timing, profile: None })
            .expect("loading the probes (tests run as root)");
        let spec = RunSpec { name: model.into(), command, workload, counted: Counted::Bursts };
        run_model(&mut probe, &spec).unwrap_or_else(|e| panic!("{model}: {e:#}"))
    };
    assert_eq!(result.errors, 0, "{model}: {:?}", result.error_kinds);
    assert_eq!(result.messages_total, messages, "{model}: every reply verified");
    assert_nothing_left_behind(model, fds_before);
    result
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// No child process (the lab is a subreaper: anything the server tree left would be ours), and no
/// fd of ours left open: the probe's maps and programs, pipes, listener all closed.
fn assert_nothing_left_behind(model: &str, fds_before: usize) {
    let me = std::process::id() as i32;
    let children: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| launch::parent_of(pid) == Some(me))
        .collect();
    assert!(children.is_empty(), "{model}: processes left behind: {children:?}");
    assert_eq!(open_fds(), fds_before, "{model}: fds leaked");
}

fn per_call(n: u64, calls: u64) -> f64 {
    n as f64 / calls as f64
}

#[test]
fn thread_blocks_in_read_once_per_message_with_a_thread_per_connection() {
    let r = rounds("thread", 500, 20);
    assert_eq!(r.wait.all.calls, 0, "no wait calls: it blocks in read");
    assert_eq!((r.calls("recvfrom"), r.calls("sendto")), (10_000, 10_000), "one read and one write per message");
    assert_eq!(r.syscalls_total, 20_000, "nothing else while serving: {:?}", r.syscalls);
    assert_eq!(r.peak_threads, 501, "a thread per connection, plus the accepting one");
    assert_eq!(r.peak_processes, 1);
    assert!(r.context_switches.voluntary >= 9_500, "a blocking read per message: {:?}", r.context_switches);
}

/// The Python interpreter itself (a version manager's `python3` may be a shell script). Asked
/// once, under the lock: its pipes must not be open while another test counts its fds.
fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
            let out = std::process::Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output();
            String::from_utf8(out.expect("python3").stdout).unwrap().trim().to_owned()
        })
        .clone()
}

/// `--server NAME='python3 examples/python/FILE {port}'` as the spec carries it.
fn python_example(file: &str) -> Option<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/python/");
    Some(vec![python(), format!("{path}{file}"), "{port}".into()])
}

#[test]
fn a_server_command_is_counted_exactly_as_the_model_of_its_design() {
    // CPython's sock.recv is one recvfrom and sendall one sendto: the same two calls per message
    // as the Rust thread model, and the same thread per connection.
    let model = rounds("thread", 200, 10);
    let python = rounds_of("py-thread", python_example("thread_server.py"), 200, 10, false);
    assert_eq!(python.model, "py-thread");
    for r in [&model, &python] {
        assert_eq!((r.calls("recvfrom"), r.calls("sendto")), (2_000, 2_000), "{}: {:?}", r.model, r.syscalls);
        assert_eq!(r.wait.all.calls, 0, "{}: blocking reads", r.model);
        assert_eq!((r.peak_threads, r.peak_processes), (201, 1), "{}: a thread per connection", r.model);
    }
    // The selectors server: the same two calls per message, and epoll_wait instead of a thread each.
    let selectors = rounds_of("py-selectors", python_example("selectors_server.py"), 200, 10, false);
    assert_eq!((selectors.calls("recvfrom"), selectors.calls("sendto")), (2_000, 2_000), "{:?}", selectors.syscalls);
    assert_eq!(selectors.wait.all.calls, selectors.calls("epoll_wait"), "{:?}", selectors.wait.by_call);
    assert!(selectors.wait.all.calls > 0 && selectors.wait.all.fds_passed == 0, "{:?}", selectors.wait.all);
    assert_eq!(selectors.calls("epoll_ctl"), 0, "registered once, when it connected (outside the rounds)");
    assert_eq!((selectors.peak_threads, selectors.peak_processes), (1, 1));
    // Its memory: a process per connection holds far more than a thread per connection.
    let process = rounds_of("py-process", python_example("process_server.py"), 200, 10, false);
    assert_eq!((process.calls("recvfrom"), process.calls("sendto")), (2_000, 2_000), "{:?}", process.syscalls);
    assert_eq!(process.peak_processes, 201, "a process per connection");
    assert!(python.peak_pss_kib > 0, "the thread server's PSS was sampled");
    assert!(
        process.peak_pss_kib > 5 * python.peak_pss_kib,
        "200 Python processes hold more than 200 threads: {} KiB against {} KiB",
        process.peak_pss_kib,
        python.peak_pss_kib
    );
}

#[test]
fn process_blocks_in_read_once_per_message_with_a_process_per_connection() {
    let r = rounds("process", 500, 20);
    assert_eq!(r.wait.all.calls, 0);
    assert_eq!((r.calls("recvfrom"), r.calls("sendto")), (10_000, 10_000));
    assert_eq!(r.peak_processes, 501, "a process per connection, plus the accepting one");
    assert!(r.context_switches.voluntary >= 9_500, "{:?}", r.context_switches);
}

#[test]
fn coroutine_runs_every_connection_on_one_os_thread_over_epoll() {
    let r = rounds("coroutine", 500, 20);
    assert_eq!(r.peak_threads, 1, "coroutines: one OS thread");
    assert!(r.wait.by_call.contains_key("epoll_wait"), "tokio waits in epoll: {:?}", r.wait.by_call);
    assert_eq!(r.calls("sendto"), 10_000);
    assert!((10_000..=20_000).contains(&r.calls("recvfrom")), "{:?}", r.syscalls);
    assert!(per_call(r.wait.all.ready, r.wait.all.calls) > 1.0, "many ready sockets per wait");
}

#[test]
fn coroutine_mt_spreads_tasks_over_worker_threads() {
    let r = rounds("coroutine-mt", 500, 20);
    assert!(r.peak_threads >= 2, "a worker per core: {}", r.peak_threads);
    assert_eq!(r.calls("sendto"), 10_000);
    assert!(r.wait.all.calls > 0);
}

#[test]
fn select_hands_the_kernel_every_fd_on_every_call() {
    let r = rounds("select", 500, 20);
    assert_eq!((r.calls("recvfrom"), r.calls("sendto")), (10_000, 10_000));
    // nfds is the highest fd + 1: at least the 500 connections and the listener.
    assert!(per_call(r.wait.all.fds_passed, r.wait.all.calls) >= 501.0, "{:?}", r.wait);
    assert_eq!(r.wait.all.fds_watched, r.wait.all.fds_passed, "select watches what it is handed");
    assert!(per_call(r.wait.all.ready, r.wait.all.calls) > 1.0, "{:?}", r.wait);
}

#[test]
fn poll_hands_the_kernel_every_connection_on_every_call() {
    let r = rounds("poll", 500, 20);
    assert_eq!((r.calls("recvfrom"), r.calls("sendto")), (10_000, 10_000));
    assert_eq!(r.wait.all.fds_passed, 501 * r.wait.all.calls, "listener + 500 connections in every call");
    assert_eq!(r.wait.all.fds_watched, r.wait.all.fds_passed);
    assert!(per_call(r.wait.all.ready, r.wait.all.calls) > 1.0, "{:?}", r.wait);
}

#[test]
fn epoll_returns_many_ready_fds_per_call_from_a_registered_interest_list() {
    let r = rounds("epoll", 500, 20);
    assert_eq!((r.calls("recvfrom"), r.calls("sendto")), (10_000, 10_000));
    assert_eq!(r.wait.all.fds_watched, 501 * r.wait.all.calls, "interest list: listener + 500 connections");
    assert_eq!(r.wait.all.fds_passed, 0, "nothing handed in: the list was registered once");
    assert!(per_call(r.wait.all.ready, r.wait.all.calls) > 1.0, "{:?}", r.wait);
    assert_eq!(r.calls("epoll_ctl"), 0, "registered once, outside the rounds");
}

/// A hold freezes the whole tree, which wakes every blocked thread: with idle connections the
/// thread model's idle threads (and its acceptor) switch once a round with nothing to serve. The
/// lab takes those out, and one switch per message is left.
#[test]
fn the_switches_of_idle_threads_woken_by_the_holds_are_taken_out() {
    let r = bursts("thread", None, Workload { idle: 80, ..Workload::lockstep(20, 3) }, false);
    let burst = r.burst.expect("a burst run");
    assert_eq!(burst.hold_switches, 101, "a hold wakes every connection's thread and the acceptor");
    assert_eq!(burst.forced_switches, 3 * 81, "the 80 idle threads and the acceptor, each round");
    assert_eq!(r.context_switches.voluntary, 60, "one per message");
    assert_eq!(r.data_calls(), 120, "a read and a write per message, the restarted reads out");
}

#[test]
fn epoll_et_reads_until_eagain() {
    let r = rounds("epoll-et", 500, 20);
    assert_eq!(r.calls("recvfrom"), 20_000, "each message: one read with data, one that says EAGAIN");
    assert_eq!(r.calls("sendto"), 10_000);
    assert_eq!(r.wait.all.fds_watched, 501 * r.wait.all.calls);
    assert_eq!(r.wait.all.fds_passed, 0);
}

/// `--timing` counts each syscall's errors as it returns. epoll-et reads until EAGAIN: every read
/// in the rounds returns one message or EAGAIN (EOF comes at close, outside them), so its errors
/// are exactly its reads less the messages: one per message. Nothing else fails.
#[test]
fn epoll_et_eagain_reads_are_errors_under_timing() {
    let r = rounds_of("epoll-et", None, 200, 20, true);
    let times = r.syscall_times.as_ref().expect("--timing gives syscall times");
    let (recv, send) = (times["recvfrom"], times["sendto"]);
    assert_eq!(recv.calls - recv.errors, 4_000, "one read with data per message: {recv:?}");
    // Exactly one each: a round is sent while the server is held, after it went idle, so no
    // message arrives before the read that says EAGAIN.
    assert_eq!(recv.errors, 4_000, "one EAGAIN per message: {recv:?}");
    assert_eq!((send.calls, send.errors), (4_000, 0), "{send:?}");
    assert_eq!((recv.calls, send.calls), (r.calls("recvfrom"), r.calls("sendto")), "timed = counted");
    assert_eq!(recv.histogram.iter().sum::<u64>(), recv.calls, "every call in one bucket");
    assert!(recv.cpu_ns > 0 && send.cpu_ns > 0);
    assert!(rounds("epoll-et", 20, 5).syscall_times.is_none(), "without --timing: none");
}

#[test]
fn io_uring_carries_every_read_and_write_inside_io_uring_enter() {
    let r = rounds("io-uring", 500, 20);
    assert_eq!(r.data_calls(), 0, "no read/write syscalls at all: {:?}", r.syscalls);
    let enters = r.calls("io_uring_enter");
    assert!(enters > 0 && enters < 10_000, "fewer than one syscall per message: {enters}");
    assert_eq!(r.syscalls_total, enters, "io_uring_enter is the only syscall: {:?}", r.syscalls);
    // Each message: its receive completes, the send is submitted and completes, the next
    // receive is submitted (each connection's first was armed before the rounds).
    assert_eq!((r.io_uring.submitted, r.io_uring.completed), (20_000, 20_000), "a send and a receive per message");
}

/// Multishot receives stay armed: the only submission per message is the reply's send, where
/// `io-uring` submits a send and a new receive. (The issue also expected at most half of
/// io-uring's io_uring_enter calls; that is not met — measured with one busy client 930–1499
/// against 1296–1315 for 500 messages, and more than io-uring with many clients: see
/// BENCHMARKS.md. So this only prints them.)
#[test]
fn io_uring_multishot_submits_only_the_sends() {
    let plain = rounds("io-uring", 1, 500);
    let multishot = rounds("io-uring-multishot", 1, 500);
    let (before, after) = (plain.calls("io_uring_enter"), multishot.calls("io_uring_enter"));
    eprintln!("io_uring_enter for 500 messages on one connection: io-uring {before}, io-uring-multishot {after}");
    assert_eq!(multishot.data_calls(), 0, "no read/write syscalls: {:?}", multishot.syscalls);
    assert_eq!(multishot.syscalls_total, after, "io_uring_enter is the only syscall: {:?}", multishot.syscalls);
    // For io_uring_enter the probe's "fds passed" is what the call submitted.
    assert_eq!(plain.wait.all.fds_passed, 1000, "io-uring: a send and a receive per message: {:?}", plain.wait);
    assert_eq!(multishot.wait.all.fds_passed, 500, "multishot: the send alone: {:?}", multishot.wait);
    // The io_uring tracepoints agree, and the armed receive still completes once per message.
    assert_eq!((plain.io_uring.submitted, plain.io_uring.completed), (1000, 1000));
    assert_eq!(
        (multishot.io_uring.submitted, multishot.io_uring.completed),
        (500, 1000),
        "a receive and a send completed"
    );
    assert_eq!(multishot.peak_threads, 1);
}

/// SQPOLL: a kernel thread polls the queue, so under load the server makes (almost) no
/// syscalls. The poller is a thread of the server's process, created through copy_process:
/// the probe follows it, and the peak thread count includes it.
#[test]
fn io_uring_sqpoll_makes_no_syscalls_under_load_and_its_poller_is_counted() {
    let r = rounds("io-uring-sqpoll", 500, 20);
    eprintln!("io-uring-sqpoll: {:?}, {:?}, peak threads {}", r.syscalls, r.context_switches, r.peak_threads);
    assert_eq!(r.data_calls(), 0, "{:?}", r.syscalls);
    // A handful per round of 500 messages: between rounds the lab waits for the server to go
    // idle, longer than the poller's 10 ms before it sleeps, so each round starts by waking it,
    // and the server enters to sleep when completions pause. None per message.
    assert!(r.syscalls_total <= 10 * 20, "at most 10 per round: {:?}", r.syscalls);
    assert_eq!(r.peak_threads, 2, "the server's thread and its SQ poller");
    // The poller submits without a syscall; the probe follows it, so it counts every request.
    assert_eq!((r.io_uring.submitted, r.io_uring.completed), (20_000, 20_000), "a send and a receive per message");
    assert!(r.context_switches.voluntary + r.context_switches.involuntary > 0, "{:?}", r.context_switches);
}

/// epoll-reuseport: the epoll model's exact counts, on a thread per CPU.
#[test]
fn epoll_reuseport_runs_an_epoll_loop_per_cpu() {
    let r = rounds("epoll-reuseport", 500, 20);
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!((r.calls("recvfrom"), r.calls("sendto")), (10_000, 10_000), "one read and one write per message");
    assert_eq!(r.calls("epoll_ctl"), 0, "registered once, outside the rounds");
    assert_eq!(r.peak_threads, cpus, "a thread per CPU");
    assert_eq!(r.peak_processes, 1);
    assert!(per_call(r.wait.all.ready, r.wait.all.calls) > 1.0, "{:?}", r.wait);
}

/// The C10K scale: every model at 10,000 connections (select past FD_SETSIZE's 1024).
#[test]
fn every_model_serves_ten_thousand_connections() {
    for model in lab_server::model_names() {
        let r = rounds(model, 10_000, 5);
        if model == "select" {
            assert!(per_call(r.wait.all.fds_passed, r.wait.all.calls) > 10_000.0, "select past 1024: {:?}", r.wait);
        }
        if model == "thread" {
            assert_eq!(r.peak_threads, 10_001);
        }
    }
}
