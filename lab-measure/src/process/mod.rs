//! The one way iolab starts a process: a server (traced through the gate, or plain, or under a
//! tool such as strace or perf), the load generator, a tool attached to a server, a compiler.
//! [`Spawn`] says what to start; [`Child`] is the running process: it waits for a line, writes
//! to its stdin, signals it, and reaps it (with `wait4`, so its CPU time and peak memory come
//! from the kernel).
//!
//! # Traced from the first instruction: the gate
//!
//! The probe follows a traced task's children by itself, so a server only has to be traced
//! *before* it starts anything. [`Spawn::start_traced`] therefore starts `iolab gate`, a process
//! that waits on a pipe (fd [`GATE_FD`]): the lab marks the gate's pid as traced, writes one byte,
//! and the gate execs the server. From its first instruction the server — and every thread and
//! process it creates — is counted. Everything below happens before the gate is marked, or in
//! processes that are never marked, so none of it is in a count.
//!
//! # Nothing left behind, however iolab ends
//!
//! On a normal exit, an error or Ctrl-C, every [`Child`] is stopped by its `Drop` at the latest:
//! SIGKILL to its process group (when it has one of its own), then `wait4`; and iolab is a child
//! subreaper, so whatever the tree left behind was reparented to iolab and is killed and reaped
//! too. None of that runs when iolab is killed with SIGKILL, so three things do not depend on it:
//!
//! 1. **Every child gets `PR_SET_PDEATHSIG(SIGKILL)`**, set between fork and exec — after the
//!    switch to the user behind sudo, which would clear it — and then checked: if `getppid()` is
//!    no longer the pid iolab had before the fork, iolab died before the signal was armed, and the
//!    child fails instead of starting. The signal is sent when the *thread* that forked the child
//!    exits, so children are forked only by threads that live as long as iolab: the main thread,
//!    or else one spawner thread that never exits ([`spawn_command`]). The signal survives the
//!    gate's exec of the server, so the server's first process dies with iolab.
//! 2. **A server's tree is one process group, watched by a guard.** What the server itself starts
//!    (the process model's forks, a tool's tracee) inherits neither the death signal nor any
//!    link to iolab. It does inherit the process group, so a child started with
//!    [`Spawn::own_group`] gets a guard: `iolab guard PGID`, a second child of iolab — a sibling
//!    of the server, never in the traced tree, so it adds nothing to any count — that blocks
//!    reading a pipe only iolab can write to. When iolab stops the group itself it writes one byte
//!    and the guard exits quietly; when iolab dies, however it dies, the kernel closes the pipe,
//!    the guard reads end-of-file, kills the whole group with SIGKILL and exits. The guard sits in
//!    a process group of its own, so a signal to iolab's group (a terminal's Ctrl-C or hang-up)
//!    does not reach it. It is started before the gate is released, so no server runs unguarded.
//! 3. **The load generator and the tools attached by pid** (strace, perf) have no children of
//!    their own; (1) is all they need. They stay in iolab's process group: Ctrl-C in a terminal
//!    reaches the load generator, as it always did.
//!
//! What this cannot catch: a process that leaves the server's process group (`setsid`, a
//! daemon) and outlives a SIGKILLed iolab. On any other exit the subreaper still reaps it.
//!
//! Why not a supervisor between iolab and the server? It would be in the traced tree (the
//! probe follows every task a traced task creates) or be the server's parent, and either adds
//! its own syscalls or changes who reaps the server. Why not a cgroup killed through
//! `cgroup.kill`? Someone still has to write to it after iolab is gone (a guard, again), and a
//! writable cgroup v2 hierarchy is not there on every machine iolab runs on (hybrid hierarchies,
//! containers); the process group is.
//!
//! In `ps` every child started from iolab's own binary shows as `iolab serve …`, `iolab load …`,
//! `iolab guard …` (its argv[0] is set to `iolab`; the program stays `/proc/self/exe`).

use std::{
    collections::HashSet,
    ffi::{OsStr, OsString},
    fs,
    io::Write as _,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::process::{CommandExt as _, ExitStatusExt as _},
    },
    path::{Path, PathBuf},
    process::{ChildStdin, Command, ExitStatus, Stdio},
    sync::{
        Mutex, OnceLock,
        mpsc::{self, Receiver, RecvTimeoutError},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{launch, privileges, probe::Probe};

mod guard;
mod output;

pub use guard::guard;
use guard::start_guard;
pub use output::{TAIL_LINES, Tail};
use output::{describe, read_lines};

/// The fd on which `iolab gate` waits for the go byte.
pub const GATE_FD: RawFd = 4;
/// The fd on which a model server finds its listening socket.
pub const LISTEN_FD: RawFd = 3;
/// The fd on which `iolab guard` waits for iolab's release byte or end of file: its stdin.
const GUARD_FD: RawFd = 0;

/// CPU time and peak memory of a stopped process tree, from the kernel (wait4's rusage).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Usage {
    pub user_ms: f64,
    pub sys_ms: f64,
    pub max_rss_kib: u64,
}

impl Usage {
    /// Adds a reaped descendant's CPU time; the peak is the larger of the two.
    fn add(&mut self, other: Usage) {
        self.user_ms += other.user_ms;
        self.sys_ms += other.sys_ms;
        self.max_rss_kib = self.max_rss_kib.max(other.max_rss_kib);
    }
}

/// Where a child's stdout goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdout {
    /// Read line by line by a thread of ours: [`Child::lines`], [`Child::wait_for_line`].
    Lines,
    /// Into [`Child::tail`], in one pipe with stderr when that is tailed too (as `2>&1`).
    Tail,
    Inherit,
    Null,
}

/// Where a child's stderr goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stderr {
    /// Its last [`TAIL_LINES`] lines are kept: [`Child::tail`], and error messages.
    Tail,
    Inherit,
    Null,
}

/// What to start, and how. Nothing runs until [`Spawn::start`] or [`Spawn::start_traced`].
pub struct Spawn<'a> {
    program: PathBuf,
    arg0: OsString,
    args: Vec<OsString>,
    /// Named in errors: "the server", "the load generator", "strace"…
    what: String,
    listener: Option<&'a OwnedFd>,
    stdin: bool,
    stdout: Stdout,
    stderr: Stderr,
    own_group: bool,
    as_user: bool,
}

impl<'a> Spawn<'a> {
    /// iolab's own binary (see [`launch::iolab_exe`]) with `args`, shown as `iolab ARGS…`.
    pub fn iolab<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Spawn<'a> {
        let mut spawn = Spawn::program(launch::iolab_exe());
        spawn.arg0 = "iolab".into();
        spawn.args(args)
    }

    /// Any program, by path (see [`which`] for a name on PATH).
    pub fn program(program: &Path) -> Spawn<'a> {
        Spawn {
            program: program.to_owned(),
            arg0: program.as_os_str().to_owned(),
            args: Vec::new(),
            what: program.file_name().map_or("the program".into(), |n| n.to_string_lossy().into_owned()),
            listener: None,
            stdin: false,
            stdout: Stdout::Inherit,
            stderr: Stderr::Inherit,
            own_group: false,
            as_user: false,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// How errors name it.
    pub fn named(mut self, what: impl Into<String>) -> Self {
        self.what = what.into();
        self
    }

    /// Becomes fd [`LISTEN_FD`] in the child.
    pub fn listener(mut self, listener: &'a OwnedFd) -> Self {
        self.listener = Some(listener);
        self
    }

    /// A pipe from us as stdin ([`Child::write_line`]), else /dev/null.
    pub fn stdin_pipe(mut self) -> Self {
        self.stdin = true;
        self
    }

    pub fn stdout(mut self, stdout: Stdout) -> Self {
        self.stdout = stdout;
        self
    }

    pub fn stderr(mut self, stderr: Stderr) -> Self {
        self.stderr = stderr;
        self
    }

    /// A process group of its own, killed as a whole when the child is stopped, and watched by a
    /// guard that kills it if iolab dies first (see the module comment). For anything that
    /// starts processes of its own: servers, and tools that start servers.
    pub fn own_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// Runs as the user behind sudo, if any (see [`privileges`]): everything but the tools.
    pub fn as_invoking_user(mut self) -> Self {
        self.as_user = true;
        self
    }

    /// Starts it untraced.
    pub fn start(self) -> Result<Child> {
        let (mut child, guard) = self.spawn(None)?;
        child.guard = guard.map(Box::new);
        Ok(child)
    }

    /// Starts it through the gate, traced by `probe` from its first instruction.
    pub fn start_traced(mut self, probe: &mut Probe) -> Result<Child> {
        // `iolab gate -- PROGRAM ARGV0 ARGS…`: the gate execs PROGRAM with that argv[0].
        let mut gated = vec![OsString::from("gate"), "--".into(), self.program.into_os_string(), self.arg0];
        gated.append(&mut self.args);
        self.program = launch::iolab_exe().to_owned();
        self.arg0 = "iolab".into();
        self.args = gated;
        let (go_read, go_write) = pipe()?;
        let (mut child, guard) = self.spawn(Some(&go_read))?;
        drop(go_read);
        child.guard = guard.map(Box::new);
        // Dropping `child` on an error kills and reaps it.
        probe.trace_task(child.pid)?;
        let mut go = fs::File::from(go_write);
        go.write_all(b"g").with_context(|| format!("releasing {}", child.what))?;
        Ok(child)
    }

    /// Forks and execs; with `gate`, that pipe's read end becomes [`GATE_FD`].
    fn spawn(self, gate: Option<&OwnedFd>) -> Result<(Child, Option<Child>)> {
        become_subreaper();
        let mut command = Command::new(&self.program);
        command.arg0(&self.arg0).args(&self.args);
        if self.as_user {
            // Only the probe needs root: the child runs as the user behind sudo, if any.
            privileges::drop_for(&mut command);
        }
        command.stdin(if self.stdin { Stdio::piped() } else { Stdio::null() });
        let mut merged = None;
        match (self.stdout, self.stderr) {
            (Stdout::Tail, Stderr::Tail) => {
                let (read, write) = pipe()?;
                command.stdout(Stdio::from(write.try_clone()?)).stderr(Stdio::from(write));
                merged = Some(read);
            }
            (stdout, stderr) => {
                command.stdout(match stdout {
                    Stdout::Lines | Stdout::Tail => Stdio::piped(),
                    Stdout::Inherit => Stdio::inherit(),
                    Stdout::Null => Stdio::null(),
                });
                command.stderr(match stderr {
                    Stderr::Tail => Stdio::piped(),
                    Stderr::Inherit => Stdio::inherit(),
                    Stderr::Null => Stdio::null(),
                });
            }
        }
        if self.own_group {
            command.process_group(0);
        }
        // Moved into place in the child: the gate's pipe, then the listener (in this order, so
        // that the fd numbers the server sees stay what they always were).
        let moves: Vec<(RawFd, RawFd)> = gate
            .map(|fd| (fd.as_raw_fd(), GATE_FD))
            .into_iter()
            .chain(self.listener.map(|fd| (fd.as_raw_fd(), LISTEN_FD)))
            .collect();
        prepare_child(&mut command, moves);
        let mut std_child = spawn_command(command).with_context(|| format!("starting {}", self.what))?;
        let pid = std_child.id();
        let tail = Tail::default();
        let mut child = Child {
            pid,
            what: self.what,
            stdin: std_child.stdin.take(),
            lines: None,
            tail: None,
            own_group: self.own_group,
            exit: None,
            guard: None,
        };
        if let Some(out) = std_child.stdout.take() {
            match self.stdout {
                Stdout::Lines => child.lines = Some(read_lines(out)),
                _ => tail.drain(out),
            }
        }
        if let Some(err) = std_child.stderr.take() {
            tail.drain(err);
        }
        if let Some(merged) = merged {
            tail.drain(fs::File::from(merged));
        }
        if self.stdout == Stdout::Tail || self.stderr == Stderr::Tail {
            child.tail = Some(tail);
        }
        // With the child in its own group, its guard: started before it can run anything.
        let guard = match self.own_group {
            true => Some(start_guard(pid)?),
            false => None,
        };
        Ok((child, guard))
    }
}

/// The pre-exec steps every child takes (async-signal-safe calls only: prctl, getppid, fcntl,
/// dup2): the death signal, checked against a parent that already died, then the fd moves.
fn prepare_child(command: &mut Command, moves: Vec<(RawFd, RawFd)>) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: only async-signal-safe calls between fork and exec, on fds that are open in the
    // child (inherited copies of ours). std runs this after it switched uid and gid, which
    // would have cleared the death signal.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // iolab died before the signal was armed: do not start an orphan.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            // Move every fd out of the way first, so that dup2 cannot clobber one with another.
            // The copies stay open in the child, as they always have (the traced servers' fd
            // numbers, which select's counts show, must not change).
            let mut moved = [(-1, -1); 2];
            for (slot, &(fd, target)) in moved.iter_mut().zip(&moves) {
                let copy = libc::fcntl(fd, libc::F_DUPFD, 10);
                if copy < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                *slot = (copy, target);
            }
            for &(copy, target) in moved.iter().take(moves.len()) {
                if libc::dup2(copy, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// A running child of ours. Dropping it kills it (its group, if it has one) and reaps it with
/// whatever its tree left behind.
pub struct Child {
    pub pid: u32,
    what: String,
    stdin: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
    tail: Option<Tail>,
    own_group: bool,
    /// Set once reaped.
    exit: Option<Exit>,
    /// The guard of its group (see the module comment).
    guard: Option<Box<Child>>,
}

/// How a child ended, and what it used.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub usage: Usage,
}

impl Exit {
    /// "exit status: 3", "killed by signal 9 (SIGKILL)".
    pub fn describe(&self) -> String {
        describe(self.status)
    }
}

impl Child {
    /// What errors call it.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Its stdout lines, as they arrive, with [`Stdout::Lines`]; the channel disconnects when
    /// it closes its stdout.
    pub fn lines(&self) -> Result<&Receiver<String>> {
        self.lines.as_ref().with_context(|| format!("{}'s stdout is not read", self.what))
    }

    /// The last lines it wrote, with [`Stdout::Tail`] or [`Stderr::Tail`].
    pub fn tail(&self) -> Option<Tail> {
        self.tail.clone()
    }

    /// Our end of its stdin, with [`Spawn::stdin_pipe`].
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Writes one line to its stdin (a cue for the load generator or the spinner).
    pub fn write_line(&mut self, line: &str) -> Result<()> {
        let what = &self.what;
        let stdin = self.stdin.as_mut().with_context(|| format!("{what}'s stdin is not piped"))?;
        stdin.write_all(line.as_bytes()).and_then(|()| stdin.write_all(b"\n")).and_then(|()| stdin.flush())?;
        Ok(())
    }

    /// Reads its stdout up to a line that starts with `prefix` (e.g. "listening on"); gives up
    /// after `limit`, if any, and at Ctrl-C. Fails with its exit status (and last words) if it
    /// closes its stdout first.
    pub fn wait_for_line(&mut self, prefix: &str, limit: Option<Duration>) -> Result<String> {
        let start = Instant::now();
        loop {
            crate::interrupt::check()?;
            match self.lines()?.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with(prefix) => return Ok(line.trim_end().to_owned()),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if limit.is_none_or(|l| start.elapsed() < l) => {}
                Err(RecvTimeoutError::Timeout) => {
                    bail!("{} printed no {prefix:?} line within {:.0} s", self.what, start.elapsed().as_secs_f64())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // It closed its stdout: it is exiting, or has.
                    let status = match self.wait_timeout(Duration::from_secs(5))? {
                        Some(exit) => exit.status.to_string(),
                        None => "it closed its output".to_owned(),
                    };
                    let said = self.last_words();
                    bail!("{} exited before it was ready ({status}){said}", self.what);
                }
            }
        }
    }

    /// ": LINE | LINE" from [`Child::tail`], or nothing.
    fn last_words(&self) -> String {
        let lines = self.tail.as_ref().map(|t| t.lines(Duration::from_millis(200))).unwrap_or_default();
        let lines: Vec<String> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() { String::new() } else { format!(": {}", lines.join(" | ")) }
    }

    /// Sends `signal` to it (only to it, not its group), unless it has been reaped.
    pub fn signal(&self, signal: i32) {
        if self.exit.is_none() {
            // SAFETY: plain kill(2) on our own child, not yet reaped (so the pid is still its).
            unsafe { libc::kill(self.pid as i32, signal) };
        }
    }

    /// How it ended, if it has: reaps it without waiting. Unlike [`Child::stop`] this leaves
    /// the rest of its tree to `stop` (or drop), which still kill and reap it.
    pub fn try_wait(&mut self) -> Result<Option<Exit>> {
        if self.exit.is_none() {
            self.exit = wait4(self.pid, libc::WNOHANG)?;
        }
        Ok(self.exit)
    }

    /// Waits for it to exit by itself.
    pub fn wait(&mut self) -> Result<Exit> {
        if self.exit.is_none() {
            self.exit = wait4(self.pid, 0)?;
        }
        self.exit.with_context(|| format!("{} was reaped by someone else", self.what))
    }

    /// Waits at most `limit` for it to exit.
    pub fn wait_timeout(&mut self, limit: Duration) -> Result<Option<Exit>> {
        let start = Instant::now();
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(Some(exit));
            }
            if start.elapsed() >= limit {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// How it ended, described, if it has ended ("killed by signal 9 (SIGKILL)").
    pub fn exited(&mut self) -> Result<Option<String>> {
        Ok(self.try_wait()?.map(|e| e.describe()))
    }

    /// Whether it is still running; an error names how it ended if not.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(exit) = self.try_wait()? {
            bail!("{} died during the run ({}){}", self.what, exit.describe(), self.last_words());
        }
        Ok(())
    }

    /// Waits for it to exit by itself; fails unless it exits with status 0.
    pub fn wait_success(&mut self) -> Result<Exit> {
        let exit = self.wait()?;
        if !exit.status.success() {
            bail!("{} ({}) exited with {}{}", self.what, self.pid, exit.describe(), self.last_words());
        }
        Ok(exit)
    }

    /// Kills it — its whole process group if it has one — and reaps it and whatever its tree
    /// left reparented to us; returns the tree's CPU time and peak RSS.
    pub fn stop(mut self) -> Result<Usage> {
        self.kill_and_reap()
    }

    fn kill_and_reap(&mut self) -> Result<Usage> {
        self.kill();
        let mut usage = self.wait()?.usage;
        // Anything the tree left behind was reparented to us (subreaper): kill and reap it too.
        for _ in 0..100 {
            let orphans = orphans();
            if orphans.is_empty() {
                break;
            }
            for pid in orphans {
                // SAFETY: plain kill(2) on a child of ours that no `Child` owns.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                if let Some(exit) = wait4(pid, 0)? {
                    usage.add(exit.usage);
                }
            }
        }
        self.release_guard();
        Ok(usage)
    }

    /// SIGKILL to its group, or to it alone unless it has been reaped. A group outlives a
    /// leader that died by itself while the rest of its tree runs on (the process model's
    /// children), and as long as it has a member its id is not reused.
    fn kill(&self) {
        let target = match (self.own_group, self.exit) {
            (true, _) => -(self.pid as i32),
            (false, None) => self.pid as i32,
            (false, Some(_)) => return,
        };
        // SAFETY: plain kill(2) on our own child or the group it leads.
        unsafe { libc::kill(target, libc::SIGKILL) };
    }

    /// The group is gone: tell its guard, and reap it.
    fn release_guard(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            let _ = guard.write_release();
            let _ = guard.wait_timeout(Duration::from_secs(5));
            // Dropping it kills and reaps it if it has not exited.
        }
    }

    fn write_release(&mut self) -> Result<()> {
        let stdin = self.stdin.as_mut().context("the guard's pipe")?;
        stdin.write_all(b"r")?;
        Ok(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() || self.guard.is_some() {
            let _ = self.kill_and_reap();
        }
    }
}

/// Pids of the children that a [`Child`] owns and has not reaped yet: the rest of our children
/// are orphans of some tree, reparented to us.
fn live() -> std::sync::MutexGuard<'static, HashSet<u32>> {
    static LIVE: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    LIVE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Our living children that no [`Child`] owns.
fn orphans() -> Vec<u32> {
    let me = std::process::id() as i32;
    // Held while reading /proc: a child being spawned now is in the set once it is in /proc.
    let owned = live();
    let Ok(all) = procfs::process::all_processes() else { return vec![] };
    all.filter_map(|p| p.ok()?.stat().ok())
        .filter(|s| s.ppid == me && !owned.contains(&(s.pid as u32)))
        .map(|s| s.pid as u32)
        .collect()
}

/// Reaps our child `pid` with wait4 (`flags`: 0 or WNOHANG); `None` if it is still running.
/// A child someone else reaped (ECHILD) counts as exited with nothing used.
pub fn wait4(pid: u32, flags: i32) -> Result<Option<Exit>> {
    let mut status = 0;
    // SAFETY: rusage is plain data filled by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals.
        let rc = unsafe { libc::wait4(pid as i32, &mut status, flags, &mut ru) };
        if rc == 0 {
            return Ok(None);
        }
        if rc > 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => {
                live().remove(&pid);
                return Ok(Some(Exit { status: ExitStatus::from_raw(0), usage: Usage::default() }));
            }
            _ => return Err(err).with_context(|| format!("waiting for process {pid}")),
        }
    }
    live().remove(&pid);
    let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3;
    let usage = Usage { user_ms: ms(ru.ru_utime), sys_ms: ms(ru.ru_stime), max_rss_kib: ru.ru_maxrss as u64 };
    Ok(Some(Exit { status: ExitStatus::from_raw(status), usage }))
}

/// Forks and execs `command` from a thread that lives as long as iolab: the death signal is
/// sent when the thread that forked a child exits, not the process. The main thread does; any
/// other thread hands the command to one spawner thread that never exits. The child is in the
/// set of owned children before anyone can look for orphans.
fn spawn_command(command: Command) -> std::io::Result<std::process::Child> {
    fn spawn_owned(mut command: Command) -> std::io::Result<std::process::Child> {
        let mut owned = live();
        let child = command.spawn()?;
        owned.insert(child.id());
        Ok(child)
    }
    // SAFETY: gettid and getpid have no preconditions.
    if unsafe { libc::gettid() == libc::getpid() } {
        return spawn_owned(command);
    }
    type Job = (Command, mpsc::SyncSender<std::io::Result<std::process::Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("iolab-spawner".into())
            .spawn(move || {
                for (command, reply) in queue {
                    let _ = reply.send(spawn_owned(command));
                }
            })
            .expect("starting the spawner thread");
        Mutex::new(jobs)
    });
    let (reply, answer) = mpsc::sync_channel(1);
    let sent = spawner.lock().unwrap_or_else(|e| e.into_inner()).send((command, reply));
    sent.map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// `program`'s path: as given if it names a path (has a `/`), else the first match on PATH.
pub fn which(program: impl AsRef<OsStr>) -> Option<PathBuf> {
    ::which::which(program).ok()
}

fn become_subreaper() {
    // SAFETY: plain prctl(2).
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds on success; we own them from then on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
