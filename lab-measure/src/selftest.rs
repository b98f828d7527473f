//! `iolab selftest`: prove the probe exact on this kernel, against workloads with known counts.
//!
//! 1. Syscalls: a process makes exactly N reads and N writes, a child it forks K of each, a thread
//!    it starts J of each; the probe must report exactly N+K+J of each, while an identical
//!    process running at the same time outside the tree adds nothing.
//! 2. Context switches: a process blocks N times on an empty pipe; the probe's voluntary switches
//!    must match the kernel's own `voluntary_ctxt_switches` in /proc/PID/status.
//! 3. epoll's interest list: registrations added through a dup'd fd, removed by DEL and by
//!    close, and a failed ADD; the probe's interest-list size at each of four epoll_wait calls
//!    must be exact.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use lab_common::nr;
use procfs::process::Process;
use serde::Serialize;

use crate::{
    probe::{Delta, Probe},
    process::{Child, Spawn, Stdout},
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
    pub expected_fds_watched: u64,
    pub calls: u64,
    pub fds_watched: u64,
    /// Handed in with the calls: none, the interest list was registered before.
    pub fds_passed: u64,
    pub ready: u64,
}

/// `iolab exercise ARGS…`, started as the servers are (see `run::serve_model`).
fn exercise(args: &[&str]) -> Spawn<'static> {
    Spawn::iolab(std::iter::once("exercise").chain(args.iter().copied()))
        .named("the exercise")
        .stdout(Stdout::Lines)
        .own_group()
        .as_invoking_user()
}

/// Check 1. The untraced twin runs concurrently, so a filter leak would show as extra counts.
pub fn check_io(probe: &mut Probe, n: u64, k: u64, j: u64) -> Result<IoCheck> {
    let (n_, k_, j_) = (n.to_string(), k.to_string(), j.to_string());
    let args = ["io", &n_, &k_, &j_];
    let mut traced = exercise(&args).start_traced(probe)?;
    let mut twin = exercise(&args).named("the untraced twin").stdout(Stdout::Null).start()?;
    wait_stopped(traced.pid)?;
    wait_stopped(twin.pid)?;
    let before = probe.snapshot()?;
    resume(&twin);
    resume(&traced);
    traced.wait_success()?;
    twin.wait_success()?;
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
    let mut traced = exercise(&["block", &blocks.to_string()]).stdin_pipe().start_traced(probe)?;
    let pid = traced.pid;
    wait_stopped(pid)?;
    let (proc_v0, proc_i0) = proc_switches(pid)?;
    let before = probe.snapshot()?;
    resume(&traced);
    let mut pipe = traced.take_stdin().context("no stdin pipe")?;
    for _ in 0..blocks {
        // Asleep with the pipe empty: the last byte was read and the next read is blocking.
        wait_until(pid, |state| state == 'S' && unread_bytes(&pipe) == 0)?;
        pipe.write_all(b"x")?;
    }
    wait_stopped(pid)?;
    let (proc_v1, proc_i1) = proc_switches(pid)?;
    let after = probe.snapshot()?;
    resume(&traced);
    traced.wait_success()?;
    let delta = Delta::between(&before, &after);
    Ok(SwitchCheck {
        blocks,
        probe_voluntary: delta.0.switches.voluntary,
        proc_voluntary: proc_v1 - proc_v0,
        probe_involuntary: delta.0.switches.involuntary,
        proc_involuntary: proc_i1 - proc_i0,
    })
}

/// Check 3: epoll interest-list tracking through ADD via a dup'd fd, DEL, close, and a failed
/// ADD; four calls, one ready fd each.
pub fn check_epoll(probe: &mut Probe, registered: u64) -> Result<EpollCheck> {
    let mut traced = exercise(&["epoll", &registered.to_string()]).start_traced(probe)?;
    wait_stopped(traced.pid)?;
    let before = probe.snapshot()?;
    resume(&traced);
    traced.wait_success()?;
    let after = probe.snapshot()?;
    let wait = Delta::between(&before, &after).0.wait[lab_common::WaitKind::EpollWait as usize];
    let k = registered;
    Ok(EpollCheck {
        registered: k,
        expected_fds_watched: k + (k - 1) + 2 * (k - 2),
        calls: wait.calls,
        fds_watched: wait.fds_watched,
        fds_passed: wait.fds_passed,
        ready: wait.ready,
    })
}

/// `n` poll calls over `k` pipes that never become ready, each waiting `timeout_ms`: what the
/// probe counted for them (calls, fds passed, on-CPU and blocked time).
pub fn check_poll(probe: &mut Probe, k: usize, n: u64, timeout_ms: i32) -> Result<lab_common::WaitStats> {
    let args = ["poll".to_owned(), k.to_string(), n.to_string(), timeout_ms.to_string()];
    let mut traced = exercise(&args.each_ref().map(String::as_str)).start_traced(probe)?;
    wait_stopped(traced.pid)?;
    let before = probe.snapshot()?;
    resume(&traced);
    traced.wait_success()?;
    let after = probe.snapshot()?;
    Ok(Delta::between(&before, &after).0.wait[lab_common::WaitKind::Poll as usize])
}

/// What the probe saw of [`exercise::ready`](crate::exercise::ready): its wait calls
/// (every kind of them summed: glibc's `select` is the `pselect6` syscall), the most ready fds
/// one returned, and the process's context switches, over the window from its first stop to
/// its second.
#[derive(Debug)]
pub struct ReadyCheck {
    pub wait: lab_common::WaitStats,
    pub max_ready: u64,
    pub switches: lab_common::Switches,
}

/// `n` calls of `call` (poll, select, epoll) with timeout 0 over `k` ready sockets.
pub fn check_ready(probe: &mut Probe, call: &str, k: usize, n: u64) -> Result<ReadyCheck> {
    let args = ["ready".to_owned(), call.to_owned(), k.to_string(), n.to_string()];
    let mut traced = exercise(&args.each_ref().map(String::as_str)).start_traced(probe)?;
    let pid = traced.pid;
    wait_stopped(pid)?;
    let before = probe.snapshot()?;
    probe.reset_max_ready()?;
    resume(&traced);
    traced.wait_for_line("done", Some(Duration::from_secs(10)))?;
    wait_stopped(pid)?;
    let (after, max) = (probe.snapshot()?, probe.max_ready()?);
    resume(&traced);
    traced.wait_success()?;
    let delta = Delta::between(&before, &after).0;
    let mut check = ReadyCheck { wait: lab_common::WaitStats::ZERO, max_ready: 0, switches: delta.switches };
    for kind in lab_common::WaitKind::ALL {
        lab_common::add_words(&mut check.wait, &delta.wait[kind as usize]);
        check.max_ready = check.max_ready.max(max[kind as usize]);
    }
    Ok(check)
}

/// A process busy on a CPU for `ms` milliseconds (on CPU `cpu` alone, if given): its on-CPU time
/// as the probe counted it, and as the kernel's scheduler did (`/proc/PID/schedstat`,
/// nanoseconds), over the same stretch.
pub fn check_cpu(probe: &mut Probe, ms: u64, cpu: Option<usize>) -> Result<(u64, u64)> {
    let mut traced = exercise(&["spin", &ms.to_string()]).start_traced(probe)?;
    let pid = traced.pid;
    wait_stopped(pid)?;
    if let Some(cpu) = cpu {
        pin(pid, cpu)?;
    }
    let (kernel0, before) = (run_time_ns(pid)?, probe.snapshot()?);
    resume(&traced);
    // Running, then stopped again once it has spun: switched out, so its last slice is counted.
    wait_until(pid, |s| s != 'T')?;
    wait_stopped(pid)?;
    let (kernel1, after) = (run_time_ns(pid)?, probe.snapshot()?);
    resume(&traced);
    traced.wait_success()?;
    Ok((Delta::between(&before, &after).0.on_cpu_ns, kernel1 - kernel0))
}

/// Which side of a loopback transfer the traced process is (see [`check_loopback`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sends,
    Receives,
}

/// What the probe counted over a loopback transfer: the whole [`Delta`], and the peer's bytes.
pub struct LoopbackCheck {
    pub delta: Delta,
    pub peer_bytes: u64,
}

/// A traced process that sends (or receives) `n` messages of `bytes` over one loopback TCP
/// connection to a peer that is not traced: a thread of this process, which sends only once the
/// window is open. The window holds the transfer alone.
pub fn check_loopback(probe: &mut Probe, side: Side, n: u64, bytes: usize) -> Result<LoopbackCheck> {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let (open, window_open) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buf = vec![b'y'; bytes];
        match side {
            Side::Sends => {
                let mut got = 0;
                loop {
                    match stream.read(&mut buf)? {
                        0 => return Ok(got),
                        k => got += k as u64,
                    }
                }
            }
            Side::Receives => {
                let _ = window_open.recv();
                for _ in 0..n {
                    std::thread::sleep(crate::exercise::LOOPBACK_PAUSE);
                    stream.write_all(&buf)?;
                }
                Ok(n * bytes as u64)
            }
        }
    });
    let role = if side == Side::Sends { "send" } else { "receive" };
    let args = ["loopback", role, &port.to_string(), &n.to_string(), &bytes.to_string()];
    let mut traced = exercise(&args).start_traced(probe)?;
    let pid = traced.pid;
    wait_stopped(pid)?;
    let before = probe.snapshot()?;
    resume(&traced);
    let _ = open.send(());
    wait_until(pid, |s| s != 'T')?;
    wait_stopped(pid)?;
    let after = probe.snapshot()?;
    resume(&traced);
    traced.wait_success()?;
    let peer_bytes = peer.join().map_err(|_| anyhow::anyhow!("the peer thread panicked"))??;
    Ok(LoopbackCheck { delta: Delta::between(&before, &after), peer_bytes })
}

/// What `--profile` saw of an exercise, over the window from its first stop to its second.
#[derive(Debug)]
pub struct ProfileCheck {
    pub profile: crate::profile::Profile,
    /// The probe's counters over the same window (its on-CPU ns, its switches).
    pub delta: lab_common::Counters,
}

/// `iolab exercise ARGS…` (one that stops, works, and stops again: spin, getppid, block) under
/// a probe loaded with `--profile`: the profile is reset at its first stop and read at its
/// second, while it still lives. For `block N` (`blocks` > 0) its stdin is refilled one byte
/// at a time, each once it sleeps, as [`check_switches`] does.
pub fn check_profile(probe: &mut Probe, args: &[&str], blocks: u64) -> Result<ProfileCheck> {
    let spawn = exercise(args);
    let mut traced = if blocks > 0 { spawn.stdin_pipe() } else { spawn }.start_traced(probe)?;
    let pid = traced.pid;
    wait_stopped(pid)?;
    probe.reset_profile()?;
    let before = probe.snapshot()?;
    resume(&traced);
    if blocks > 0 {
        let mut pipe = traced.take_stdin().context("no stdin pipe")?;
        for _ in 0..blocks {
            wait_until(pid, |state| state == 'S' && unread_bytes(&pipe) == 0)?;
            pipe.write_all(b"x")?;
        }
    } else {
        wait_until(pid, |s| s != 'T')?;
    }
    wait_stopped(pid)?;
    let after = probe.snapshot()?;
    let profile = probe.profile()?.context("the probe was not loaded with --profile")?;
    resume(&traced);
    traced.wait_success()?;
    Ok(ProfileCheck { profile, delta: Delta::between(&before, &after).0 })
}

/// Lets thread `tid` (0: the caller) run on CPU `cpu` only.
pub fn pin(tid: u32, cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET and sched_setaffinity take it by pointer.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid as i32, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!("pinning task {tid} to CPU {cpu}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The time a process has run on a CPU, in ns, by the scheduler's own count.
fn run_time_ns(pid: u32) -> Result<u64> {
    let stat =
        Process::new(pid as i32).and_then(|p| p.schedstat()).with_context(|| format!("process {pid} is gone"))?;
    Ok(stat.sum_exec_runtime)
}

fn unread_bytes(pipe: &impl std::os::fd::AsRawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    n
}

fn resume(child: &Child) {
    child.signal(libc::SIGCONT);
}

/// The process's state letter from /proc/PID/stat (R, S, T, Z…).
fn state(pid: u32) -> Result<char> {
    Ok(Process::new(pid as i32).and_then(|p| p.stat()).with_context(|| format!("process {pid} is gone"))?.state)
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

/// The kernel's own voluntary and involuntary context switches of a process.
fn proc_switches(pid: u32) -> Result<(u64, u64)> {
    let status = Process::new(pid as i32).and_then(|p| p.status()).with_context(|| format!("process {pid} is gone"))?;
    let voluntary = status.voluntary_ctxt_switches.context("no voluntary_ctxt_switches")?;
    Ok((voluntary, status.nonvoluntary_ctxt_switches.context("no nonvoluntary_ctxt_switches")?))
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
    let epoll_ok = epoll.calls == 4
        && epoll.fds_watched == epoll.expected_fds_watched
        && epoll.fds_passed == 0
        && epoll.ready == 4;
    let diff = switches.probe_voluntary.abs_diff(switches.proc_voluntary);
    let switches_ok = switches.probe_voluntary >= switches.blocks && diff * 100 <= switches.proc_voluntary * 3;
    let unavailable = probe.unavailable.clone();
    Ok(SelftestReport { io, switches, epoll, unavailable, io_ok, switches_ok, epoll_ok })
}
