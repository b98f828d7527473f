//! `iolab selftest`: prove the probe exact on this kernel, against workloads with known counts.
//!
//! 1. Syscalls: a process makes exactly N reads and N writes, a child it forks K of each, a thread
//!    it starts J of each; the probe must report exactly N+K+J of each, while an identical
//!    process running at the same time outside the tree adds nothing.
//! 2. Context switches: a process blocks N times on an empty pipe; the probe's voluntary switches
//!    must match the kernel's own `voluntary_ctxt_switches` in /proc/PID/status.

use std::{
    fs,
    io::Write as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use lab_common::nr;
use serde::Serialize;

use crate::{
    measure::launch::{self, Launch},
    measure::probe::Probe,
    results::run::Delta,
};

#[derive(Debug, Serialize)]
pub struct IoCheck {
    /// N + K + J: what each of `reads` and `writes` must be.
    pub expected: u64,
    pub reads: u64,
    pub writes: u64,
}

#[derive(Debug, Serialize)]
pub struct SwitchCheck {
    pub blocks: u64,
    /// The probe's count over the window.
    pub probe_voluntary: u64,
    /// The kernel's own count (/proc/PID/status) over the same window.
    pub proc_voluntary: u64,
    pub probe_involuntary: u64,
    pub proc_involuntary: u64,
}

#[derive(Debug, Serialize)]
pub struct EpollCheck {
    pub registered: u64,
    /// The four calls' interest-list sizes, summed: k + (k-1) + (k-2) + (k-2).
    pub expected_fds_passed: u64,
    pub calls: u64,
    pub fds_passed: u64,
    pub ready: u64,
}

fn exercise_args(args: &[&str]) -> Vec<String> {
    std::iter::once("exercise").chain(args.iter().copied()).map(String::from).collect()
}

/// Check 1. The untraced twin runs concurrently, so a filter leak would show as extra counts.
pub fn check_io(probe: &mut Probe, n: u64, k: u64, j: u64) -> Result<IoCheck> {
    let args = exercise_args(&["io", &n.to_string(), &k.to_string(), &j.to_string()]);
    let what = Launch { program: launch::iolab_exe(), args: args.clone(), listener: None, stdin_pipe: false };
    let traced = launch::launch(probe, what)?;
    let mut twin = Command::new(launch::iolab_exe()).args(&args).stdout(Stdio::null()).spawn()?;
    wait_stopped(traced.pid)?;
    wait_stopped(twin.id())?;
    let before = probe.snapshot()?;
    resume(twin.id());
    resume(traced.pid);
    traced.wait_exit()?;
    let status = twin.wait()?;
    if !status.success() {
        bail!("the untraced twin failed: {status}");
    }
    let after = probe.snapshot()?;
    let delta = Delta::between(&before, &after);
    Ok(IoCheck {
        expected: n + k + j,
        reads: delta.0.syscalls[nr::READ as usize],
        writes: delta.0.syscalls[nr::WRITE as usize],
    })
}

/// Check 2. Each byte is written only once the reader has drained the pipe and gone back to
/// sleep, so every one of its reads blocks.
pub fn check_switches(probe: &mut Probe, blocks: u64) -> Result<SwitchCheck> {
    let what = Launch {
        program: launch::iolab_exe(),
        args: exercise_args(&["block", &blocks.to_string()]),
        listener: None,
        stdin_pipe: true,
    };
    let mut traced = launch::launch(probe, what)?;
    let pid = traced.pid;
    wait_stopped(pid)?;
    let (proc_v0, proc_i0) = proc_switches(pid)?;
    let before = probe.snapshot()?;
    resume(pid);
    let mut pipe = traced.stdin.take().context("no stdin pipe")?;
    for _ in 0..blocks {
        // Asleep with the pipe empty: the last byte was read and the next read is blocking.
        wait_until(pid, |state| state == 'S' && unread_bytes(&pipe) == 0)?;
        pipe.write_all(b"x")?;
    }
    wait_stopped(pid)?;
    let (proc_v1, proc_i1) = proc_switches(pid)?;
    let after = probe.snapshot()?;
    resume(pid);
    traced.wait_exit()?;
    let delta = Delta::between(&before, &after);
    Ok(SwitchCheck {
        blocks,
        probe_voluntary: delta.0.voluntary_switches,
        proc_voluntary: proc_v1 - proc_v0,
        probe_involuntary: delta.0.involuntary_switches,
        proc_involuntary: proc_i1 - proc_i0,
    })
}

/// Check 3: epoll interest-list tracking through ADD via a dup'd fd, DEL, close, and a failed
/// ADD; four calls, one ready fd each.
pub fn check_epoll(probe: &mut Probe, registered: u64) -> Result<EpollCheck> {
    let what = Launch {
        program: launch::iolab_exe(),
        args: exercise_args(&["epoll", &registered.to_string()]),
        listener: None,
        stdin_pipe: false,
    };
    let traced = launch::launch(probe, what)?;
    wait_stopped(traced.pid)?;
    let before = probe.snapshot()?;
    resume(traced.pid);
    traced.wait_exit()?;
    let after = probe.snapshot()?;
    let wait = Delta::between(&before, &after).0.wait[lab_common::WaitKind::EpollWait as usize];
    let k = registered;
    Ok(EpollCheck {
        registered: k,
        expected_fds_passed: k + (k - 1) + 2 * (k - 2),
        calls: wait.calls,
        fds_passed: wait.fds_passed,
        ready: wait.ready,
    })
}

fn unread_bytes(pipe: &impl std::os::fd::AsRawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    n
}

fn resume(pid: u32) {
    // SAFETY: plain kill(2) on a child of ours.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
}

/// The process's state letter from /proc/PID/stat (R, S, T, Z…).
fn state(pid: u32) -> Result<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid} is gone"))?;
    let after_name = &stat[stat.rfind(')').context("odd /proc stat")? + 2..];
    after_name.chars().next().context("odd /proc stat")
}

fn wait_stopped(pid: u32) -> Result<()> {
    wait_until(pid, |s| s == 'T')
}

/// Polls the process state until `ok`; ten seconds at most.
fn wait_until(pid: u32, ok: impl Fn(char) -> bool) -> Result<()> {
    let start = Instant::now();
    loop {
        crate::interrupt::check()?;
        let s = state(pid)?;
        if ok(s) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("process {pid} stuck in state {s}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn proc_switches(pid: u32) -> Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(name)).with_context(|| format!("no {name}"))?;
        Ok(line.trim().parse()?)
    };
    Ok((field("voluntary_ctxt_switches:")?, field("nonvoluntary_ctxt_switches:")?))
}

/// All three checks, and whether each agreed.
#[derive(Debug, Serialize)]
pub struct SelftestReport {
    pub io: IoCheck,
    pub switches: SwitchCheck,
    pub epoll: EpollCheck,
    /// Tracepoints this kernel does not have.
    pub unavailable: Vec<String>,
    pub io_ok: bool,
    pub switches_ok: bool,
    pub epoll_ok: bool,
}

impl SelftestReport {
    pub fn ok(&self) -> bool {
        self.io_ok && self.switches_ok && self.epoll_ok
    }
}

/// Runs the three checks with known answers: syscalls exact, voluntary switches within 3% of the
/// kernel's own count (and at least one per blocking read), epoll's interest list exact.
pub fn run_all(probe: &mut Probe) -> Result<SelftestReport> {
    let io = check_io(probe, 1000, 300, 200)?;
    let switches = check_switches(probe, 200)?;
    let epoll = check_epoll(probe, 50)?;
    let io_ok = io.reads == io.expected && io.writes == io.expected;
    let epoll_ok = epoll.calls == 4 && epoll.fds_passed == epoll.expected_fds_passed && epoll.ready == 4;
    let diff = switches.probe_voluntary.abs_diff(switches.proc_voluntary);
    let switches_ok = switches.probe_voluntary >= switches.blocks && diff * 100 <= switches.proc_voluntary * 3;
    let unavailable = probe.unavailable.clone();
    Ok(SelftestReport { io, switches, epoll, unavailable, io_ok, switches_ok, epoll_ok })
}
