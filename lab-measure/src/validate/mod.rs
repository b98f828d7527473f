//! `iolab trace --validate`: the probe's counts checked against tools that count independently:
//! strace for the syscalls ([`strace`]), perf for the context switches ([`perf`]). This file
//! holds what they share: the checks, the tolerance, and a tool attached to the tree.
//!
//! **Syscalls, against `strace -f -c`.** strace stops the server at every syscall, which
//! changes its timing and its context switches (each stop is one), so the validation is a
//! *second* run of the same load with strace attached; the reported run is the first one,
//! untouched. In that second run both count the same calls, so they must agree to within
//! max(0.5 %, 2 calls) per syscall. Lining up the two windows needs care:
//! - strace is attached (every thread of the tree shows it as `TracerPid`) before the probe's
//!   first snapshot, and stopped (SIGINT) after the second, so its window holds the probe's.
//!   Outside the probe's window the server is idle (`run::measure` waits for that), so the
//!   extra time adds no calls.
//! - But attaching interrupts the call each thread is blocked in: the kernel restarts it (as
//!   the same call, or as `restart_syscall` for one with a timeout), or it fails with EINTR and
//!   the program calls again. Either way a new call enters right after the attach, before the
//!   probe's window. And strace counts a call when it *returns*, the probe when it *enters*. So a call in progress at the first snapshot is
//!   counted by strace only, and one in progress at the second by the probe only. The lab
//!   reads which call each thread is in at both edges (/proc/TID/syscall) and moves them:
//!   strace should equal probe + (in progress at the start) − (in progress at the end). A thread
//!   blocked in the same call through the whole window adds +1 and −1: neither counts it.
//! - `exit` and `exit_group` never return, so strace -c never counts them: they are listed,
//!   not compared.
//!
//! **Context switches, against `perf stat -e context-switches`** (when perf is installed),
//! attached to the same tree during the *first* run: perf reads kernel counters and does not
//! stop the server, so it checks the switches the reported run really made (with strace
//! attached there would be two more per syscall, which both would count alike, proving less).
//! Both count every switch away from a task of the tree, and an idle server does not switch, so
//! the windows agree. Same tolerance, max(0.5 %, 2), for the one place they can part: a task
//! that switches while it exits (closing its sockets, say) after `sched_process_exit`, where the
//! probe stops following it, and before the kernel retires its perf counter. On every model
//! and test server here the two were equal.
//!
//! **The NET_RX share of the tree's CPU, against `perf record -e cpu-clock -g`** (when perf is
//! installed), attached during the first run beside `perf stat`: the probe's softirq time over
//! the tree's on-CPU time, and perf's samples with `net_rx_action` on the stack over all its
//! samples of the tree, within 5 points ([`net_rx`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use syscalls::Sysno;

use crate::{
    interrupt,
    probe::Probe,
    process::{self, Child, Spawn, Stderr, Stdout},
    run,
    run::RunSpec,
    settle::settle,
    tree,
};

mod net_rx;
mod perf;
mod strace;

pub use net_rx::Sampling;
pub use perf::{Perf, PerfRun};
use strace::Strace;
#[cfg(test)]
use {net_rx::count_samples, perf::parse_perf_count, strace::parse_strace_summary};

/// The tools named in messages.
pub const TOOLS: &str = "strace/perf";

/// What to do without strace.
pub const NO_STRACE: &str =
    "--validate needs strace, which is not installed (apt-get install strace, or dnf install strace)";

/// Calls that never return: strace -c does not count them.
const NEVER_RETURN: &[&str] = &["exit", "exit_group"];

/// How long strace or perf may take to attach to every thread.
const ATTACH_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Validation {
    pub syscalls: Vec<SyscallAgreement>,
    /// None when perf is not installed or cannot count here; `switches_note` says why.
    pub switches: Option<SwitchAgreement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switches_note: Option<String>,
    /// The NET_RX share of the tree's CPU in the reported run, from the probe and from perf's
    /// samples. None when perf is not installed or cannot sample here (`net_rx_note` says why),
    /// and in documents written before it was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_rx: Option<NetRxAgreement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_rx_note: Option<String>,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetRxAgreement {
    /// NET_RX softirq time over the tree's on-CPU time, from the probe, in percent.
    pub probe_percent: f64,
    /// perf's samples of the tree with `net_rx_action` on the stack over all of them, in percent.
    pub perf_percent: f64,
    pub samples: u64,
    pub net_rx_samples: u64,
    /// The tree's on-CPU time by the probe, and by perf (its samples over its frequency): the two
    /// denominators. They agree where the server switches rarely; where it switches on every
    /// message perf's is the shorter, and the shares part by more.
    pub probe_cpu_ns: u64,
    pub perf_cpu_ns: u64,
    /// perf − probe, in percentage points.
    pub diff_points: f64,
    pub allowed_points: f64,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SyscallAgreement {
    pub syscall: String,
    pub probe: u64,
    /// Calls in progress at the start of the window minus those at its end: what strace should
    /// count beyond the probe (see the module comment).
    pub edges: i64,
    /// None: not compared (the call never returns).
    pub strace: Option<u64>,
    /// strace − (probe + edges).
    pub diff: i64,
    pub allowed: u64,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SwitchAgreement {
    /// Voluntary + involuntary, in the reported run.
    pub probe: u64,
    pub perf: u64,
    pub diff: i64,
    pub allowed: u64,
    pub ok: bool,
}

impl Validation {
    /// The checks that failed, for a one-line error.
    pub fn mismatches(&self) -> String {
        let mut bad: Vec<String> = self
            .syscalls
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{} differs by {} (allowed {})", c.syscall, c.diff, c.allowed))
            .collect();
        if let Some(s) = self.switches.as_ref().filter(|s| !s.ok) {
            bad.push(format!("context switches differ by {} (allowed {})", s.diff, s.allowed));
        }
        if let Some(n) = self.net_rx.as_ref().filter(|n| !n.ok) {
            bad.push(format!(
                "the NET_RX share differs by {:.1} points (probe {:.1} %, perf {:.1} %; allowed {})",
                n.diff_points, n.probe_percent, n.perf_percent, n.allowed_points
            ));
        }
        bad.join(", ")
    }
}

/// The larger of 0.5 % of the count and 2 calls.
pub fn allowed(count: u64) -> u64 {
    count.div_ceil(200).max(2)
}

/// The second run, with strace attached; `switches` and `net_rx` are the first run's checks
/// against perf.
pub fn against_strace(
    probe: &mut Probe,
    root: u32,
    addr: SocketAddr,
    spec: &RunSpec,
    alive: &mut dyn FnMut() -> Result<()>,
    switches: Result<SwitchAgreement, String>,
    net_rx: Result<NetRxAgreement, String>,
) -> Result<Validation> {
    let strace = Strace::attach(root)?;
    settle(probe, root)?;
    let at_start = in_progress(root);
    let measured = run::measure(probe, root, addr, spec, alive)?;
    alive()?;
    let at_end = in_progress(root);
    let counted = strace.finish()?;
    let syscalls = compare(&measured.delta.syscalls_by_name(), &at_start, &at_end, &counted);
    let (switches, switches_note) = match switches {
        Ok(check) => (Some(check), None),
        Err(note) => (None, Some(note)),
    };
    let (net_rx, net_rx_note) = match net_rx {
        Ok(check) => (Some(check), None),
        Err(note) => (None, Some(note)),
    };
    let ok =
        syscalls.iter().all(|c| c.ok) && switches.as_ref().is_none_or(|s| s.ok) && net_rx.as_ref().is_none_or(|n| n.ok);
    Ok(Validation { syscalls, switches, switches_note, net_rx, net_rx_note, ok })
}

/// Per syscall: what the probe counted, what strace counted, and whether they agree.
pub fn compare(
    probe: &BTreeMap<String, u64>,
    at_start: &BTreeMap<String, u64>,
    at_end: &BTreeMap<String, u64>,
    strace: &BTreeMap<String, u64>,
) -> Vec<SyscallAgreement> {
    let names: BTreeSet<&String> =
        probe.keys().chain(strace.keys()).chain(at_start.keys()).chain(at_end.keys()).collect();
    let get = |map: &BTreeMap<String, u64>, name: &str| map.get(name).copied().unwrap_or(0);
    let mut checks: Vec<SyscallAgreement> = names
        .into_iter()
        .filter_map(|name| {
            let p = get(probe, name);
            let edges = get(at_start, name) as i64 - get(at_end, name) as i64;
            let s = get(strace, name);
            if NEVER_RETURN.contains(&name.as_str()) {
                return (p > 0).then(|| SyscallAgreement {
                    syscall: name.clone(),
                    probe: p,
                    edges: 0,
                    strace: None,
                    diff: 0,
                    allowed: 0,
                    ok: true,
                });
            }
            if p == 0 && s == 0 && edges == 0 {
                return None;
            }
            let expected = p as i64 + edges;
            let diff = s as i64 - expected;
            let allowed = allowed(s.max(expected.max(0) as u64));
            Some(SyscallAgreement {
                syscall: name.clone(),
                probe: p,
                edges,
                strace: Some(s),
                diff,
                allowed,
                ok: diff.unsigned_abs() <= allowed,
            })
        })
        .collect();
    checks.sort_by(|a, b| b.probe.cmp(&a.probe).then(a.syscall.cmp(&b.syscall)));
    checks
}

/// How many threads of the tree are inside each syscall right now.
fn in_progress(root: u32) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for nr in tree::tasks(root).into_iter().filter_map(tree::in_syscall) {
        let name = Sysno::new(nr as usize).map_or_else(|| format!("syscall_{nr}"), |s| s.name().to_owned());
        *calls.entry(name).or_insert(0) += 1;
    }
    calls
}

/// A tool attached to the tree: strace or perf. Stopping it (SIGINT) makes it print its counts
/// and let go of the server; dropping it unfinished does the same and discards them.
struct Attached {
    tool: &'static str,
    child: Option<Child>,
}

impl Attached {
    /// Starts `tool ARGS…` (as root, to trace), whose counts go to its stdout. `None` if the
    /// tool is not installed.
    fn start(tool: &'static str, args: &[String]) -> Result<Option<Attached>> {
        let Some(path) = process::which(tool) else { return Ok(None) };
        let spawn = Spawn::program(&path).named(tool).args(args).stdout(Stdout::Lines).stderr(Stderr::Tail);
        Ok(Some(Attached { tool, child: Some(spawn.start()?) }))
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.pid)
    }

    /// Waits until `ready` holds; fails with the tool's own words if it exits first.
    fn wait_until(&mut self, mut ready: impl FnMut(u32) -> bool) -> Result<()> {
        let start = Instant::now();
        while !ready(self.pid()) {
            interrupt::check()?;
            let child = self.child.as_mut().context("already stopped")?;
            if let Some(exit) = child.try_wait()? {
                let said = stderr_of(child);
                bail!("{} exited ({}) before it attached: {}", self.tool, exit.status, said.trim());
            }
            if start.elapsed() > ATTACH_LIMIT {
                bail!("{} did not attach within {} s", self.tool, ATTACH_LIMIT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// SIGINT, wait, and return what it printed (stdout, stderr).
    fn finish(mut self) -> Result<(String, String)> {
        let mut child = self.child.take().context("already stopped")?;
        child.signal(libc::SIGINT);
        child.wait().with_context(|| format!("waiting for {}", self.tool))?;
        // Its stdout has ended with it: every line is in the channel.
        let out: Vec<String> = child.lines()?.iter().collect();
        Ok((out.join("\n"), stderr_of(&child)))
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT lets a tracer detach cleanly; dropping the child kills it if it has not.
            child.signal(libc::SIGINT);
            let _ = child.wait_timeout(Duration::from_secs(5));
        }
    }
}

/// The last lines a tool wrote on stderr.
fn stderr_of(child: &Child) -> String {
    child.tail().map(|t| t.lines(Duration::from_secs(1))).unwrap_or_default().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 52.31    0.004466           4      1010           recvfrom
 40.02    0.003417           3      1000           sendto
  7.21    0.000616          61        10         2 accept4
------ ----------- ----------- --------- --------- ----------------
100.00    0.008538           4      2020         2 total
";

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn reads_the_strace_summary_with_and_without_errors() {
        let calls = parse_strace_summary(SUMMARY).unwrap();
        assert_eq!(calls, map(&[("accept4", 10), ("recvfrom", 1010), ("sendto", 1000)]));
        assert!(parse_strace_summary("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted").is_err());
    }

    #[test]
    fn edges_move_calls_in_progress_and_exit_is_not_compared() {
        let probe = map(&[("epoll_wait", 300), ("read", 1000), ("exit", 4), ("poll", 10)]);
        // At the start one thread was in a restarted poll; at the end one in epoll_wait and one in poll.
        let start = map(&[("restart_syscall", 1), ("epoll_wait", 1)]);
        let end = map(&[("epoll_wait", 1), ("poll", 1)]);
        let strace = map(&[("epoll_wait", 300), ("read", 1003), ("restart_syscall", 1), ("poll", 9)]);
        let checks = compare(&probe, &start, &end, &strace);
        let by_name = |n: &str| checks.iter().find(|c| c.syscall == n).unwrap();
        assert_eq!((by_name("epoll_wait").edges, by_name("epoll_wait").diff), (0, 0));
        assert_eq!((by_name("restart_syscall").edges, by_name("restart_syscall").diff), (1, 0));
        assert_eq!((by_name("poll").edges, by_name("poll").diff), (-1, 0));
        let read = by_name("read");
        assert_eq!((read.diff, read.allowed, read.ok), (3, 6, true));
        assert_eq!(by_name("exit").strace, None);
        assert!(checks.iter().all(|c| c.ok));
    }

    #[test]
    fn a_real_difference_fails() {
        let checks = compare(&map(&[("read", 100)]), &map(&[]), &map(&[]), &map(&[("read", 97)]));
        assert_eq!((checks[0].diff, checks[0].allowed, checks[0].ok), (-3, 2, false));
    }

    #[test]
    fn tolerance_is_half_a_percent_or_two_calls() {
        assert_eq!(allowed(0), 2);
        assert_eq!(allowed(400), 2);
        assert_eq!(allowed(401), 3);
        assert_eq!(allowed(10_000), 50);
    }

    /// `perf script -F ip,sym` as perf 6.1 prints it: three samples, the second inside a NET_RX
    /// softirq run from the thread's own `sendto()`, the third with `net_rx_action` in a frame's
    /// offset only (not the function).
    #[test]
    fn counts_the_trees_samples_and_those_under_net_rx_action() {
        // 100 is the root; it forks 200, which forks 300; 400 is another process; 101 is a
        // thread of 100.
        let script = "\
    0/0     PERF_RECORD_FORK(200:200):(100:100)
    0/0     PERF_RECORD_FORK(101:101):(100:100)
    0/0     PERF_RECORD_FORK(300:300):(200:200)
   100/100 
\tffffffff81a2b3c4 do_sys_poll+0x2a4 ([kernel.kallsyms])
\tffffffff81a2c000 __x64_sys_poll+0xa4 ([kernel.kallsyms])
\t    7f1e2d3c4b5a __poll+0x1a (/usr/lib/x86_64-linux-gnu/libc.so.6)

   300/300 
\tffffffff81c0ffee tcp_v4_rcv+0x10 ([kernel.kallsyms])
\tffffffff81c0bbbb net_rx_action+0x1b2 ([kernel.kallsyms])
\tffffffff81c0cccc __do_softirq+0xd0 ([kernel.kallsyms])
\tffffffff81c0dddd __x64_sys_sendto+0x24 ([kernel.kallsyms])

   400/400 
\tffffffff81c0bbbb net_rx_action+0x1b2 ([kernel.kallsyms])

   100/101 
\t    55d0c0ffee00 lab_server::models::poll::serve+0x99 (/work/target/release/iolab)
\t    55d0c0ffee01 not_net_rx_action_wrapper+0x9 (/work/target/release/iolab)
";
        assert_eq!(count_samples(script, &[100]), (3, 1));
        assert_eq!(count_samples(script, &[400]), (1, 1));
        assert_eq!(count_samples("", &[100]), (0, 0));
    }

    #[test]
    fn reads_perf_counts() {
        assert_eq!(parse_perf_count("# started on x\n\n282,,context-switches,6938957,100.00,,\n"), Some(282));
        assert_eq!(parse_perf_count("<not counted>,,context-switches,0,100.00,,\n"), Some(0));
        assert_eq!(parse_perf_count("<not supported>,,context-switches,0,100.00,,\n"), None);
    }
}
