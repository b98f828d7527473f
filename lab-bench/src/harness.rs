//! A server started plainly — a model (`iolab serve`), the C reference server, or either under
//! strace, perf trace or the lab's probe attached by pid — and one load generator run against it.
//! Also the getppid spinner of section 2 under the same watchers.
//!
//! The lab's own runs (`experiment::run_model`) start servers through the traced gate; the bench needs
//! the same server under *other* observers too, and a server that is not a model at all, so it
//! has this small harness. Every server gets the same listening socket (fd 3, bound as the lab
//! binds: `lab_server::BACKLOG` deep), so none of them loses a second to a dropped SYN. It also measures what
//! `run_model` does not: the load generator's CPU time and the server's during the drive phase,
//! which tell whether the generator or the server was the limit.

use std::{
    net::SocketAddr,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use lab_load::{Cue, LoadReport, Workload};
use lab_measure::{
    attach::attach,
    launch::{self, LISTEN_FD},
    probe::Probe,
    process::{self, Child, Spawn, Stderr, Stdout},
    run::{bind_loopback, load_generator},
    tree,
};

/// The server to start.
#[derive(Clone, Debug)]
pub enum Target {
    /// `iolab serve --model NAME` on a free loopback port.
    Model(String),
    /// A program that takes `--listen-fd FD` and prints `listening on ADDR`: the C reference.
    Program { name: String, path: PathBuf },
    /// `iolab bench --spin-getppid N`: no server, N getppid calls (see [`spin`]).
    Spinner(u64),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Model(name) | Target::Program { name, .. } => name,
            Target::Spinner(_) => "getppid loop",
        }
    }

    /// The command line, started by us or by a tool; a server serves on the listening socket
    /// at fd [`LISTEN_FD`].
    fn argv(&self, by_tool: bool) -> Vec<String> {
        let fd = LISTEN_FD.to_string();
        // Our own binary. A tool would resolve /proc/self/exe to itself, so it gets ours by pid
        // (tools run as root, who may follow it); not by path: a build may replace that file.
        let iolab = match by_tool {
            true => format!("/proc/{}/exe", std::process::id()),
            false => launch::iolab_exe().display().to_string(),
        };
        match self {
            Target::Model(model) => {
                vec![iolab, "serve".into(), "--model".into(), model.clone(), "--listen-fd".into(), fd]
            }
            Target::Program { path, .. } => vec![path.display().to_string(), "--listen-fd".into(), fd],
            Target::Spinner(calls) => vec![iolab, "bench".into(), "--spin-getppid".into(), calls.to_string()],
        }
    }
}

/// Who watches the server's syscalls while the load runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watcher {
    Nobody,
    /// The lab's probe, loaded for this run only and attached to the server's tasks by pid.
    Lab,
    /// `strace -f -c`: stops the server at every syscall entry and exit (ptrace).
    Strace,
    /// `perf trace -s`: one record per syscall through perf's ring buffer, summed by perf.
    PerfTrace,
}

impl Watcher {
    pub fn name(self) -> &'static str {
        match self {
            Watcher::Nobody => "untraced",
            Watcher::Lab => "iolab probe",
            Watcher::Strace => "strace -f -c",
            Watcher::PerfTrace => "perf trace -s",
        }
    }

    /// The tool's command line in front of the server's, and the program that must be on PATH.
    fn prefix(self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Watcher::Strace => Some(("strace", &["-f", "-c", "-o", "/dev/null", "--"])),
            Watcher::PerfTrace => Some(("perf", &["trace", "-s", "-o", "/dev/null", "--"])),
            Watcher::Nobody | Watcher::Lab => None,
        }
    }

    /// Why this watcher cannot run here, if it cannot: the tool is not installed.
    pub fn missing(self) -> Option<String> {
        let (program, _) = self.prefix()?;
        let package =
            if program == "perf" { "linux-perf (Debian) or linux-tools-$(uname -r) (Ubuntu)" } else { program };
        process::which(program).is_none().then(|| format!("{program} is not installed: apt install {package}"))
    }
}

/// What one run measured. CPU times cover the drive phase only: the generator pauses once
/// every connection is open and once every reply is in (`--pause-between-phases`, as `iolab
/// prove` uses it), and the bench reads both processes' CPU time from /proc in those pauses
/// (see [`cpu_ns`]).
#[derive(Clone, Debug)]
pub struct Outcome {
    pub report: LoadReport,
    /// The generator's and the server tree's CPU time during the drive phase (user + sys, ms).
    pub generator_cpu_ms: f64,
    pub server_cpu_ms: f64,
}

impl Outcome {
    /// The generator's share of one core during the drive phase.
    pub fn generator_share(&self) -> f64 {
        self.generator_cpu_ms / 1e3 / self.report.wall_seconds
    }

    /// The server's share of one core (all its threads: up to the number of cores).
    pub fn server_share(&self) -> f64 {
        self.server_cpu_ms / 1e3 / self.report.wall_seconds
    }
}

/// Starts `target` under `watcher`, runs the load generator against it once, stops it.
pub fn serve_and_load(target: &Target, watcher: Watcher, load: Workload) -> Result<Outcome> {
    // Loaded before the server starts, so loading (verifying the programs) overlaps nothing.
    let mut probe = if watcher == Watcher::Lab { Some(Probe::load()?) } else { None };
    let (listener, addr) = bind_loopback()?;
    let mut server = start(target, watcher, Some(&listener))?;
    drop(listener);
    wait_for(&mut server, watcher, "listening on")?;
    let pid = server_pid(&server, watcher)?;
    if let Some(probe) = probe.as_mut() {
        attach(probe, pid)?;
    }
    let outcome = run_generator(addr, load, pid);
    stop(server, watcher, pid)?;
    drop(probe);
    let outcome = outcome?;
    if outcome.report.errors.total() > 0 {
        bail!("{} under {}: the load generator saw errors ({})", target.name(), watcher.name(), outcome.report.errors);
    }
    Ok(outcome)
}

/// Runs `iolab bench --spin-getppid CALLS` under `watcher`; returns the wall-clock ns per call
/// it measured. Wall clock, not CPU time: under strace most of the cost is the tracer's time
/// and the switches to it and back, which the spinning process's own CPU clock does not see.
pub fn spin_under(watcher: Watcher, calls: u64) -> Result<f64> {
    let mut probe = if watcher == Watcher::Lab { Some(Probe::load()?) } else { None };
    let mut spinner = start(&Target::Spinner(calls), watcher, None)?;
    wait_for(&mut spinner, watcher, "ready")?;
    let pid = server_pid(&spinner, watcher)?;
    if let Some(probe) = probe.as_mut() {
        attach(probe, pid)?;
    }
    spinner.write_line("")?;
    let line = wait_for(&mut spinner, watcher, SPIN_RESULT)?;
    stop(spinner, watcher, pid)?;
    let ns = line[SPIN_RESULT.len()..].trim();
    ns.parse().with_context(|| format!("the spinner said {line:?}"))
}

/// What the spinner prints before its figure.
pub const SPIN_RESULT: &str = "ns per call ";

/// How long a server (or a tool starting one) may take to listen, and a tool to exit after its
/// server is killed.
const READY_LIMIT: Duration = Duration::from_secs(30);
const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// The server (or the tool that starts it) as our child, in a process group of its own, its
/// stdin a pipe (the spinner waits for a line; servers ignore it), the last lines of its stderr
/// kept for error messages.
fn start(target: &Target, watcher: Watcher, listener: Option<&OwnedFd>) -> Result<Child> {
    let server = target.argv(watcher.prefix().is_some());
    let spawn = match watcher.prefix() {
        Some((tool, args)) => {
            let path = process::which(tool).with_context(|| watcher.missing().unwrap_or_default())?;
            // The tools stay root, to trace.
            Spawn::program(&path).args(args).args(&server)
        }
        // Only the probe needs root (see `privileges`).
        None if Path::new(&server[0]) == launch::iolab_exe() => Spawn::iolab(&server[1..]).as_invoking_user(),
        None => Spawn::program(Path::new(&server[0])).args(&server[1..]).as_invoking_user(),
    };
    let spawn = spawn.named(watcher.name()).stdin_pipe().stdout(Stdout::Lines).stderr(Stderr::Tail).own_group();
    match listener {
        Some(listener) => spawn.listener(listener).start(),
        None => spawn.start(),
    }
}

/// Waits until it prints a line starting with `prefix`; returns the line.
fn wait_for(server: &mut Child, watcher: Watcher, prefix: &str) -> Result<String> {
    server.wait_for_line(prefix, Some(READY_LIMIT)).with_context(|| format!("{} did not start it", watcher.name()))
}

/// The server's pid: our child, or the tool's child.
fn server_pid(server: &Child, watcher: Watcher) -> Result<u32> {
    if watcher.prefix().is_none() {
        return Ok(server.pid);
    }
    // The tool has forked and exec'd the server by now: it is listening.
    tree::processes(server.pid).get(1).copied().context("the tool's server process is gone")
}

/// Kills the server; a tool then writes its summary (to /dev/null) and exits by itself. Then
/// the group goes, and whatever of it became our child is reaped.
fn stop(mut server: Child, watcher: Watcher, pid: u32) -> Result<()> {
    if pid == server.pid {
        server.signal(libc::SIGKILL);
    } else {
        // SAFETY: plain kill(2) on the tool's child, in the group of ours that it leads.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    if server.wait_timeout(EXIT_LIMIT)?.is_none() {
        bail!("{} did not exit after its server was killed", watcher.name());
    }
    server.stop()?;
    Ok(())
}

/// Runs `iolab load` once against `addr`, reading its CPU time and the server's (tree at
/// `server`) in the pauses around the drive phase.
fn run_generator(addr: SocketAddr, load: Workload, server: u32) -> Result<Outcome> {
    let mut generator = load_generator(addr, &load).arg("--pause-between-phases").start()?;
    let cpu = |pid: u32| cpu_ns(pid) as f64 / 1e6;
    let (mut at_start, mut at_end) = ((0.0, 0.0), (0.0, 0.0));
    let mut report = None;
    while let Ok(line) = generator.lines()?.recv() {
        match line.parse() {
            Ok(Cue::Connected) => at_start = (cpu(generator.pid), cpu(server)),
            Ok(Cue::Sent) => at_end = (cpu(generator.pid), cpu(server)),
            _ => {
                report = Some(line);
                continue;
            }
        }
        generator.write_line("")?;
    }
    let exit = generator.wait()?;
    if !exit.status.success() {
        bail!("the load generator failed ({})", exit.describe());
    }
    let report = report.context("the load generator printed no report")?;
    Ok(Outcome {
        report: serde_json::from_str(&report).context("reading the load generator's report")?,
        generator_cpu_ms: at_end.0 - at_start.0,
        server_cpu_ms: at_end.1 - at_start.1,
    })
}

/// CPU time (user + sys) of every thread in the tree at `root` so far, in ns, from each thread's
/// /proc/PID/task/TID/schedstat (the scheduler's own nanosecond runtime: /proc/PID/stat counts
/// 10 ms ticks, too coarse for a drive phase of a fraction of a second). Threads that have
/// exited are not in it: fine for the servers measured here, whose threads live as long as they.
fn cpu_ns(root: u32) -> u64 {
    let runtime = |pid: u32| -> u64 {
        let Ok(tasks) = procfs::process::Process::new(pid as i32).and_then(|p| p.tasks()) else { return 0 };
        tasks.filter_map(|task| task.ok()?.schedstat().ok()).map(|s| s.sum_exec_runtime).sum()
    };
    tree::processes(root).into_iter().map(runtime).sum()
}
