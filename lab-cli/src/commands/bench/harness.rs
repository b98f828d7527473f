//! A server started plainly — a model (`iolab serve`), the C reference server, or either under
//! strace, perf trace or the lab's probe attached by pid — and one load generator run against it.
//! Also the getppid spinner of section 2 under the same watchers.
//!
//! The lab's own runs (`run::run_model`) start servers through the traced gate; the bench needs
//! the same server under *other* observers too, and a server that is not a model at all, so it
//! has this small harness. Every server gets the same listening socket (fd 3, a backlog for every
//! connection), so none of them loses a second to a dropped SYN. It also measures what
//! `run_model` does not: the load generator's CPU time and the server's during the drive phase,
//! which tell whether the generator or the server was the limit.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr},
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use socket2::{Domain, Socket, Type};

use crate::{
    load::{LoadReport, Workload},
    measure::attach::attach,
    measure::launch::{self, LISTEN_FD},
    measure::privileges,
    measure::probe::Probe,
    measure::tree,
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
        which(program).is_none().then(|| format!("{program} is not installed: apt install {package}"))
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
    let (listener, addr) = bind_loopback(load.connections)?;
    let mut server = Running::start(target, watcher, Some(&listener))?;
    drop(listener);
    server.wait_for("listening on")?;
    let pid = server.server_pid()?;
    if let Some(probe) = probe.as_mut() {
        attach(probe, pid)?;
    }
    let outcome = run_generator(addr, load, pid);
    server.stop(pid)?;
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
    let mut spinner = Running::start(&Target::Spinner(calls), watcher, None)?;
    spinner.wait_for("ready")?;
    let pid = spinner.server_pid()?;
    if let Some(probe) = probe.as_mut() {
        attach(probe, pid)?;
    }
    let stdin = spinner.stdin.as_mut().context("spinner stdin")?;
    stdin.write_all(b"\n")?;
    stdin.flush()?;
    let line = spinner.wait_for(SPIN_RESULT)?;
    spinner.stop(pid)?;
    let ns = line[SPIN_RESULT.len()..].trim();
    ns.parse().with_context(|| format!("the spinner said {line:?}"))
}

/// What the spinner prints before its figure.
pub const SPIN_RESULT: &str = "ns per call ";

/// A loopback listener with a backlog for every connection at once (as `run` makes them), so
/// no SYN is dropped and retried a second later while the generator connects.
fn bind_loopback(connections: usize) -> Result<(OwnedFd, SocketAddr)> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.listen(connections.clamp(128, 65_535) as i32)?;
    let addr = socket.local_addr()?.as_socket().context("the listener has no IP address")?;
    Ok((socket.into(), addr))
}

/// The server (or the tool that started it) as our child, in a process group of its own.
struct Running {
    child: Child,
    watcher: Watcher,
    /// Our end of its stdin (the spinner waits for a line; servers ignore it).
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// The last thing it said on stderr, for error messages.
    stderr: Arc<Mutex<String>>,
    stopped: bool,
}

/// How long a server (or a tool starting one) may take to listen, and a tool to exit after its
/// server is killed.
const READY_LIMIT: Duration = Duration::from_secs(30);
const EXIT_LIMIT: Duration = Duration::from_secs(30);

impl Running {
    fn start(target: &Target, watcher: Watcher, listener: Option<&OwnedFd>) -> Result<Running> {
        let server = target.argv(watcher.prefix().is_some());
        let mut command = match watcher.prefix() {
            Some((tool, args)) => {
                let mut command = Command::new(which(tool).with_context(|| watcher.missing().unwrap_or_default())?);
                command.args(args).args(&server);
                command
            }
            None => {
                let mut command = Command::new(&server[0]);
                command.args(&server[1..]);
                // Only the probe needs root (see `privileges`); the tools stay root to trace.
                privileges::drop_for(&mut command);
                command
            }
        };
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let fd = listener.map_or(-1, |l| l.as_raw_fd());
        // SAFETY: only dup2 and fcntl (async-signal-safe) between fork and exec. The socket
        // must survive exec (into the server, or into the tool and from it into the server):
        // dup2 clears FD_CLOEXEC on the copy, fcntl when it is at LISTEN_FD already.
        unsafe {
            command.pre_exec(move || {
                let rc = match fd {
                    -1 => 0,
                    LISTEN_FD => libc::fcntl(fd, libc::F_SETFD, 0),
                    _ => libc::dup2(fd, LISTEN_FD),
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", server[0]))?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().context("server stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().context("server stderr")?;
        let last = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_owned();
            *last.lock().unwrap_or_else(|e| e.into_inner()) = line;
        });
        Ok(Running { child, watcher, stdin, lines, stderr, stopped: false })
    }

    /// Waits until it prints a line starting with `prefix`; returns the line.
    fn wait_for(&mut self, prefix: &str) -> Result<String> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            crate::interrupt::check()?;
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    let status = self.child.try_wait()?.map_or("still running".into(), |s| s.to_string());
                    // Give the stderr reader a moment to catch the last words.
                    std::thread::sleep(Duration::from_millis(100));
                    let said = self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    bail!("{} did not start it ({status}): {said}", self.watcher.name());
                }
            }
        }
    }

    /// The server's pid: our child, or the tool's child.
    fn server_pid(&self) -> Result<u32> {
        let ours = self.child.id();
        if self.watcher.prefix().is_none() {
            return Ok(ours);
        }
        // The tool has forked and exec'd the server by now: it is listening.
        tree::processes(ours).get(1).copied().context("the tool's server process is gone")
    }

    /// Kills the server; a tool then writes its summary (to /dev/null) and exits by itself.
    fn stop(&mut self, server: u32) -> Result<()> {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(server as i32, libc::SIGKILL) };
        let deadline = Instant::now() + EXIT_LIMIT;
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("{} did not exit after its server was killed", self.watcher.name());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stopped = true;
        reap_group(self.child.id());
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.stopped {
            // SAFETY: plain kill(2) on the group we created.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            let _ = self.child.wait();
            reap_group(self.child.id());
        }
    }
}

/// Reaps whatever of process group `pgid` became our child (we may be a subreaper, see
/// `launch`): nothing is left as a zombie.
fn reap_group(pgid: u32) {
    // SAFETY: plain waitpid(2) on our own children of that group; returns -1 (ECHILD) when none.
    while unsafe { libc::waitpid(-(pgid as i32), std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// Runs `iolab load` once against `addr`, reading its CPU time and the server's (tree at
/// `server`) in the pauses around the drive phase.
fn run_generator(addr: SocketAddr, load: Workload, server: u32) -> Result<Outcome> {
    let mut child = crate::measure::run::load_command(addr, &load)
        .arg("--pause-between-phases")
        .spawn()
        .context("running the load generator")?;
    let generator = child.id();
    let mut stdin = child.stdin.take().context("generator stdin")?;
    let stdout = BufReader::new(child.stdout.take().context("generator stdout")?);
    let cpu = |pid: u32| cpu_ns(pid) as f64 / 1e6;
    let (mut at_start, mut at_end) = ((0.0, 0.0), (0.0, 0.0));
    let mut report = None;
    for line in stdout.lines() {
        let line = line?;
        match line.as_str() {
            "connected" => at_start = (cpu(generator), cpu(server)),
            "sent" => at_end = (cpu(generator), cpu(server)),
            _ => {
                report = Some(line);
                continue;
            }
        }
        stdin.write_all(b"\n")?;
        stdin.flush()?;
    }
    let reaped = wait4(generator)?;
    if reaped.status != 0 {
        bail!("the load generator failed (wait status {})", reaped.status);
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
    let runtime = |pid: u32, tid: u32| -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    };
    tree::processes(root)
        .into_iter()
        .flat_map(|pid| tree::threads(pid).into_iter().map(move |tid| (pid, tid)))
        .filter_map(|(pid, tid)| runtime(pid, tid))
        .sum()
}

/// What wait4 tells about a reaped child.
pub struct Reaped {
    pub status: i32,
    /// ru_maxrss, KiB: the largest of the child and the descendants it reaped.
    pub max_rss_kib: u64,
}

/// Reaps our child `pid` with wait4.
pub fn wait4(pid: u32) -> Result<Reaped> {
    let mut status = 0;
    // SAFETY: rusage is plain data filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is our child, not yet reaped.
        if unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) } >= 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("waiting for process {pid}"));
        }
    }
    Ok(Reaped { status, max_rss_kib: usage.ru_maxrss as u64 })
}

/// `program`'s path if it is on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
