//! Starting a server under the probe, and stopping it with everything it started.
//!
//! The probe follows a traced task's children by itself, so the server only has to be traced
//! *before* it starts anything. The lab therefore starts `iolab gate`, a process that waits on a
//! pipe: the lab marks the gate's pid as traced, writes one byte, and the gate execs the server.
//! From its first instruction the server — and every thread and process it creates — is counted.
//!
//! The server runs in a process group of its own, and the lab is a child subreaper, so stopping it
//! is exact too: kill the group, then kill and reap whatever the tree left reparented to us.

use std::{
    collections::VecDeque,
    fs,
    io::{BufRead as _, BufReader, Write as _},
    os::{
        fd::{AsRawFd as _, OwnedFd, RawFd},
        unix::process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{Arc, Condvar, Mutex, OnceLock},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::measure::probe::Probe;

/// The fd on which `iolab gate` waits for the go byte.
pub const GATE_FD: RawFd = 4;
/// The fd on which a model server finds its listening socket.
pub const LISTEN_FD: RawFd = 3;

/// A running, traced server tree.
pub struct Server {
    child: Child,
    pub pid: u32,
    stdout: Option<BufReader<ChildStdout>>,
    /// Our end of the server's stdin, with [`Launch::stdin_pipe`].
    pub stdin: Option<ChildStdin>,
    stopped: bool,
    /// The last lines it printed, with [`launch_tailed`].
    tail: Option<Tail>,
}

/// CPU time and peak memory of a stopped server tree, from the kernel (wait4's rusage).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Usage {
    pub user_ms: f64,
    pub sys_ms: f64,
    pub max_rss_kib: u64,
}

/// What to start under the probe.
pub struct Launch<'a> {
    pub program: &'a Path,
    pub args: Vec<String>,
    /// Becomes fd [`LISTEN_FD`] in the server.
    pub listener: Option<&'a OwnedFd>,
    /// Give the server a pipe from us as stdin (else /dev/null).
    pub stdin_pipe: bool,
}

static IOLAB_EXE: OnceLock<PathBuf> = OnceLock::new();

/// The iolab binary, which the lab runs for the gate, the models and the load generator.
/// `/proc/self/exe` unless set (the tests run as their own binary and name iolab's).
pub fn iolab_exe() -> &'static Path {
    IOLAB_EXE.get_or_init(|| PathBuf::from("/proc/self/exe"))
}

/// Names the iolab binary; for callers that are not iolab themselves (the integration tests).
pub fn set_iolab_exe(path: &Path) {
    let _ = IOLAB_EXE.set(path.to_owned());
}

/// Starts `program args…` traced.
pub fn launch(probe: &mut Probe, what: Launch<'_>) -> Result<Server> {
    start(probe, what, Stdio::piped(), Stdio::inherit())
}

/// Starts a server that is not one of ours (`iolab trace`): like [`launch`], but its stdout and
/// stderr go to one pipe (in the order it wrote them, as `2>&1` would), read by a thread of
/// ours that keeps the last lines for error messages ([`Server::tail`]) — and a chatty server
/// never blocks on a full pipe.
pub fn launch_tailed(probe: &mut Probe, what: Launch<'_>) -> Result<Server> {
    let (output, output_write) = pipe()?;
    let mut server = start(probe, what, Stdio::from(output_write.try_clone()?), Stdio::from(output_write))?;
    let tail = Tail::default();
    tail.drain(fs::File::from(output));
    server.tail = Some(tail);
    Ok(server)
}

fn start(probe: &mut Probe, what: Launch<'_>, stdout: Stdio, stderr: Stdio) -> Result<Server> {
    become_subreaper();
    let (go_read, go_write) = pipe()?;
    let mut gate = Command::new(iolab_exe());
    gate.arg("gate").arg("--").arg(what.program).args(&what.args);
    let stdin = if what.stdin_pipe { Stdio::piped() } else { Stdio::null() };
    gate.stdin(stdin).stdout(stdout).stderr(stderr);
    gate.process_group(0);
    // Only the probe needs root: the server runs as the user behind sudo, if any.
    crate::measure::privileges::drop_for(&mut gate);
    let go_fd = go_read.as_raw_fd();
    let listen_fd = what.listener.map(|l| l.as_raw_fd());
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        gate.pre_exec(move || {
            // Move both fds out of the way first, so that dup2 cannot clobber one with the other.
            let go = libc::fcntl(go_fd, libc::F_DUPFD, 10);
            let listen = listen_fd.map(|fd| libc::fcntl(fd, libc::F_DUPFD, 10));
            if go < 0 || libc::dup2(go, GATE_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = listen {
                if fd < 0 || libc::dup2(fd, LISTEN_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = gate.spawn().context("starting the server")?;
    drop(go_read);
    let pid = child.id();
    if let Err(err) = probe.trace_task(pid) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(err);
    }
    let mut go = fs::File::from(go_write);
    go.write_all(b"g").context("releasing the server")?;
    let stdout = child.stdout.take().map(BufReader::new);
    let stdin = child.stdin.take();
    Ok(Server { child, pid, stdout, stdin, stopped: false, tail: None })
}

impl Server {
    /// How the server's first process ended, if it has. Unlike [`Server::check_alive`] this
    /// leaves the rest of the tree to [`Server::stop`] (or drop), which still kill and reap it.
    pub fn exited(&mut self) -> Result<Option<String>> {
        Ok(self.child.try_wait()?.map(describe))
    }

    /// The last lines it printed, with [`launch_tailed`].
    pub fn tail(&self) -> Option<Tail> {
        self.tail.clone()
    }

    /// Reads the server's stdout up to a line that starts with `prefix` (e.g. "listening on").
    /// Fails with the server's exit status if it exits first.
    pub fn wait_for_line(&mut self, prefix: &str) -> Result<String> {
        let stdout = self.stdout.as_mut().context("server stdout is not captured")?;
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                let status = self.child.wait()?;
                self.stopped = true;
                bail!("the server exited before it was ready ({status})");
            }
            if line.starts_with(prefix) {
                return Ok(line.trim_end().to_owned());
            }
        }
    }

    /// Whether the server is still running; an error names how it ended if not.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.stopped = true;
            bail!("the server died during the run ({})", describe(status));
        }
        Ok(())
    }

    /// Waits for the server to exit by itself; fails unless it exits with status 0.
    pub fn wait_exit(mut self) -> Result<()> {
        let status = self.child.wait()?;
        self.stopped = true;
        if !status.success() {
            bail!("{} exited with {}", self.pid, describe(status));
        }
        Ok(())
    }

    /// Kills the whole tree and reaps it; returns its CPU time and peak RSS.
    pub fn stop(mut self) -> Result<Usage> {
        self.stopped = true;
        kill_tree(self.pid);
        let mut usage = wait4(self.pid as i32)?;
        // Anything the tree left behind was reparented to us (subreaper): kill and reap it too.
        for _ in 0..100 {
            let orphans = children_of_self();
            if orphans.is_empty() {
                break;
            }
            for pid in orphans {
                // SAFETY: plain kill(2).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let u = wait4(pid)?;
                usage.user_ms += u.user_ms;
                usage.sys_ms += u.sys_ms;
                usage.max_rss_kib = usage.max_rss_kib.max(u.max_rss_kib);
            }
        }
        Ok(usage)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            kill_tree(self.pid);
            let _ = self.child.wait();
            for pid in children_of_self() {
                // SAFETY: plain kill(2) and waitpid(2) on our own children.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
        }
    }
}

/// The last [`TAIL_LINES`] lines a server printed, and whether its output has reached its end.
#[derive(Clone, Default)]
pub struct Tail(Arc<(Mutex<TailState>, Condvar)>);

#[derive(Default)]
struct TailState {
    lines: VecDeque<String>,
    open: usize,
}

pub const TAIL_LINES: usize = 5;

impl Tail {
    /// Reads `from` to its end in a thread of its own. The thread ends when every process of
    /// the tree has closed the stream (they are killed by [`Server::stop`] at the latest).
    /// Drained streams count as one output: [`Tail::lines`] waits for all of them.
    fn drain(&self, from: impl std::io::Read + Send + 'static) {
        let shared = Arc::clone(&self.0);
        shared.0.lock().unwrap_or_else(|e| e.into_inner()).open += 1;
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                let mut state = shared.0.lock().unwrap_or_else(|e| e.into_inner());
                if state.lines.len() == TAIL_LINES {
                    state.lines.pop_front();
                }
                state.lines.push_back(text);
                line.clear();
            }
            shared.0.lock().unwrap_or_else(|e| e.into_inner()).open -= 1;
            shared.1.notify_all();
        });
    }

    /// The last lines, once the output has ended or `wait` has passed (a stopped server's last
    /// words may still be in the pipe).
    pub fn lines(&self, wait: Duration) -> Vec<String> {
        let (lock, ended) = &*self.0;
        let state = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = ended.wait_timeout_while(state, wait, |s| s.open > 0).unwrap_or_else(|e| e.into_inner());
        state.lines.iter().cloned().collect()
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match status.signal() {
        Some(sig) => format!("killed by signal {sig} ({})", signal_name(sig)),
        None => status.to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

fn kill_tree(pid: u32) {
    // SAFETY: plain kill(2) on the server's process group.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
}

fn become_subreaper() {
    // SAFETY: plain prctl(2).
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

fn wait4(pid: i32) -> Result<Usage> {
    let mut status = 0;
    // SAFETY: rusage is plain data filled by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if rc >= 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(Usage::default()),
            _ => return Err(err).context("reaping the server"),
        }
    }
    let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3;
    Ok(Usage { user_ms: ms(ru.ru_utime), sys_ms: ms(ru.ru_stime), max_rss_kib: ru.ru_maxrss as u64 })
}

/// Our living children, from /proc (each `/proc/PID/stat` names its parent).
fn children_of_self() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

/// Processes and threads in the tree rooted at `root`, from /proc.
pub fn tree_size(root: u32) -> (u64, u64) {
    let Ok(dir) = fs::read_dir("/proc") else { return (0, 0) };
    let pids: Vec<i32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    let in_tree = |mut pid: i32| loop {
        if pid == root as i32 {
            return true;
        }
        match parent_of(pid) {
            Some(parent) if parent > 1 => pid = parent,
            _ => return false,
        }
    };
    let (mut processes, mut threads) = (0, 0);
    for pid in pids.into_iter().filter(|&p| in_tree(p)) {
        processes += 1;
        threads += fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count() as u64);
    }
    (processes, threads)
}

pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds on success; we own them from then on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    use std::os::fd::FromRawFd as _;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The `iolab gate -- PROGRAM ARGS…` process: wait for the go byte on [`GATE_FD`], then exec.
pub fn gate(argv: &[String]) -> Result<()> {
    use std::os::fd::FromRawFd as _;
    let Some((program, args)) = argv.split_first() else { bail!("gate: no program given") };
    // SAFETY: the launcher placed the pipe's read end at GATE_FD.
    let mut go = unsafe { fs::File::from_raw_fd(GATE_FD) };
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut go, &mut byte).context("gate: the lab went away")?;
    drop(go);
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: give the server the
    // default disposition it would have had if started from a shell.
    // SAFETY: plain signal(2).
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let err = Command::new(program).args(args).exec();
    bail!("cannot run {program}: {err}")
}

/// Waits until the server's counters stop moving for `quiet`: it has finished starting up (or
/// tearing down) and is blocked, waiting for clients. Gives up after `limit` (a server with a
/// timer never goes quiet) and returns the last snapshot either way.
pub fn settle(probe: &mut Probe, quiet: Duration, limit: Duration) -> Result<lab_common::Counters> {
    let start = std::time::Instant::now();
    let mut last = probe.snapshot()?;
    let mut still_since = std::time::Instant::now();
    loop {
        crate::interrupt::check()?;
        std::thread::sleep(Duration::from_millis(5));
        let now = probe.snapshot()?;
        if now.syscalls != last.syscalls {
            still_since = std::time::Instant::now();
            last = now;
        } else if still_since.elapsed() >= quiet || start.elapsed() >= limit {
            return Ok(now);
        }
    }
}
