//! One run's figures, as the user sees them and as JSON stores them.
//!
//! A [`RunResult`] is built from two probe snapshots (before and after the load) and the load
//! generator's report. Every field is measured in that run; derived ratios are computed by the
//! report code from these fields, never stored separately, so they cannot disagree.

use std::collections::BTreeMap;

use lab_common::{
    Counters, Dropped, IoUring, MaxReady, SOFTIRQ_VECTORS, Switches, SyscallTime, WaitKind, WaitStats, softirq,
};
use serde::{Deserialize, Serialize};

use crate::{burst::Burst, launch::Usage, probe::Delta, run::Measured, settle::NotIdle};
use lab_load::{ErrorCounts, Latency, LoadReport, Workload};

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunResult {
    pub model: String,
    /// The load the run was asked to serve.
    #[serde(flatten)]
    pub workload: Workload,
    /// Messages sent and answered, over all connections (`messages` in schema 1).
    #[serde(alias = "messages")]
    pub messages_total: u64,
    pub wall_seconds: f64,
    pub msgs_per_sec: f64,
    pub latency_us: Latency,
    /// Syscalls the server tree made during the run, by name.
    pub syscalls: BTreeMap<String, u64>,
    pub syscalls_total: u64,
    pub wait: WaitTotals,
    /// io_uring requests the server tree submitted and completions it was posted (0 without io_uring).
    #[serde(default)]
    pub io_uring: IoUring,
    pub context_switches: Switches,
    /// Load-generator errors (resets, timeouts, wrong bytes…); 0 in a good run.
    pub errors: u64,
    pub error_kinds: ErrorCounts,
    /// CPU time and peak RSS of the server tree, from wait4.
    pub server: Usage,
    /// Most processes and threads (all tasks) the server tree had at once.
    pub peak_processes: u64,
    pub peak_threads: u64,
    /// The server tree's largest proportional set size (PSS, summed over its processes) in the
    /// window, in KiB, read while every connection was open and the server idle (see `measure::run`).
    #[serde(default)]
    pub peak_pss_kib: u64,
    /// Anything the probe could not count (all 0 unless a map filled up).
    pub probe_dropped: Dropped,
    /// Figures this kernel could not give (a hook it lacks), each with what it needs: the figure
    /// is not 0 but missing (see `features`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_measured: Vec<Unmeasured>,
    /// The measured window: how long it lasted and the server tree's CPU time inside it.
    #[serde(default)]
    pub window: Window,
    /// With `--timing`: every syscall the server tree made in the window, by name: calls, errors
    /// and on-CPU time, exact per call (not sampled), with a log2 histogram of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall_times: Option<BTreeMap<String, SyscallTime>>,
    /// Set when the server never went idle after the load: the window holds what it did while
    /// the lab waited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_idle: Option<NotIdle>,
    /// `prove`: each round was queued whole while the server was held still (see `Burst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Burst>,
    /// Fds watched by each epoll instance of the server, largest first, when they watched the
    /// most: how a server with a loop per thread had its connections spread (empty: no epoll).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epoll_lists: Vec<u64>,
    /// With `--profile`: the tree's stacks in the window (see `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::profile::Profile>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WaitTotals {
    /// Every wait call's figures, summed over the kinds of call (field by field, so a new
    /// figure in `WaitStats` is summed here too); `max_ready` is the largest of the kinds'.
    #[serde(flatten)]
    pub all: WaitCall,
    /// The same figures for each wait syscall the server used.
    pub by_call: BTreeMap<String, WaitCall>,
}

/// A figure of a run (a field of its JSON: `io_uring`, `wait.by_call.epoll_pwait2`) that the
/// kernel it ran on could not give, and what it needs ("needs …, Linux 5.11+").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unmeasured {
    pub figure: String,
    pub needs: String,
}

impl Unmeasured {
    /// What a table shows in the figure's place.
    pub fn cell(&self) -> String {
        format!("not measured on this kernel ({})", self.needs)
    }
}

/// The measured window, between the two snapshots (see [`crate::run`]), and whose CPU time the
/// server's tree spent in it: `own_cpu_ns + softirq_ns.total() + hardirq_ns = server_cpu_ns`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Window {
    pub seconds: f64,
    /// On-CPU time of every thread of the server's tree inside the window, from the probe (each
    /// slice from the thread's switch-in to its switch-out); 0 when untraced.
    pub server_cpu_ns: u64,
    /// `server_cpu_ns` less the interrupts that ran on the tree's threads: the design's own code
    /// and its own syscalls. Absent from documents written before the split was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_cpu_ns: Option<u64>,
    /// Softirqs that ran while a thread of the tree was current, by vector: on loopback NET_RX
    /// is mostly the peer's TCP receive, run inside the tree's own `sendto()`.
    #[serde(default)]
    pub softirq_ns: Softirqs,
    /// Hard-interrupt handlers that ran while a thread of the tree was current.
    #[serde(default)]
    pub hardirq_ns: u64,
}

impl Window {
    /// The window of `seconds` over which the probe counted `delta`.
    pub fn measured(seconds: f64, delta: &Counters) -> Window {
        let softirq_ns = Softirqs::from_vectors(&delta.interrupts.softirq_ns);
        let hardirq_ns = delta.interrupts.hardirq_ns;
        let own = delta.on_cpu_ns.saturating_sub(softirq_ns.total() + hardirq_ns);
        Window { seconds, server_cpu_ns: delta.on_cpu_ns, own_cpu_ns: Some(own), softirq_ns, hardirq_ns }
    }
}

/// Softirq nanoseconds by vector: the ones that matter on a server apart, the others together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Softirqs {
    /// NET_RX: receiving packets (on loopback, the receiving socket's TCP stack).
    pub net_rx: u64,
    /// NET_TX: sending queued packets.
    pub net_tx: u64,
    pub timer: u64,
    pub rcu: u64,
    pub sched: u64,
    /// HI, BLOCK, IRQ_POLL, TASKLET and HRTIMER.
    pub other: u64,
}

impl Softirqs {
    /// From the probe's counts by vector number.
    pub fn from_vectors(ns: &[u64; SOFTIRQ_VECTORS]) -> Softirqs {
        let named = [softirq::NET_RX, softirq::NET_TX, softirq::TIMER, softirq::RCU, softirq::SCHED];
        let other = (0..SOFTIRQ_VECTORS).filter(|v| !named.contains(v)).map(|v| ns[v]).sum();
        Softirqs {
            net_rx: ns[softirq::NET_RX],
            net_tx: ns[softirq::NET_TX],
            timer: ns[softirq::TIMER],
            rcu: ns[softirq::RCU],
            sched: ns[softirq::SCHED],
            other,
        }
    }

    pub fn total(&self) -> u64 {
        self.net_rx + self.net_tx + self.timer + self.rcu + self.sched + self.other
    }
}

/// One wait syscall's figures: the probe's counters, summed over its calls, and the most ready
/// fds one of them returned.
// One flat object in JSON; it derefs to the counters, so `w.calls` reads like a field of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WaitCall {
    #[serde(flatten)]
    pub stats: WaitStats,
    /// The most ready descriptors a single call returned in the window (0 in a saved document
    /// older than the figure).
    #[serde(default)]
    pub max_ready: u64,
}

impl std::ops::Deref for WaitCall {
    type Target = WaitStats;
    fn deref(&self) -> &WaitStats {
        &self.stats
    }
}

impl WaitTotals {
    /// The wait calls the server made, by syscall, and their sum; `max_ready` as the probe read
    /// it when the window closed.
    pub fn measured(delta: &Delta, max_ready: &MaxReady) -> WaitTotals {
        let mut totals = WaitTotals::default();
        for kind in WaitKind::ALL {
            let call = WaitCall { stats: delta.0.wait[kind as usize], max_ready: max_ready[kind as usize] };
            if call.calls == 0 {
                continue;
            }
            lab_common::add_words(&mut totals.all.stats, &call.stats);
            totals.all.max_ready = totals.all.max_ready.max(call.max_ready);
            totals.by_call.insert(kind.syscall_name().to_owned(), call);
        }
        totals
    }
}

impl RunResult {
    /// The figures of one measurement of the server `name`, whose tree used `usage`.
    pub fn from_measured(name: &str, measured: Measured, usage: Usage) -> RunResult {
        let Measured {
            delta,
            load,
            peak_processes,
            peak_threads,
            peak_pss_kib,
            not_idle,
            window_seconds,
            burst,
            epoll_lists,
            max_ready,
            syscall_times,
            profile,
        } = measured;
        let window = Window::measured(window_seconds, &delta.0);
        RunResult {
            peak_processes,
            peak_threads,
            peak_pss_kib,
            not_idle,
            window,
            burst,
            epoll_lists,
            syscall_times,
            profile,
            ..RunResult::new(name, &delta, &max_ready, &load, usage)
        }
    }

    fn new(model: &str, delta: &Delta, max_ready: &MaxReady, load: &LoadReport, server: Usage) -> RunResult {
        let syscalls = delta.syscalls_by_name();
        RunResult {
            model: model.to_owned(),
            workload: load.workload,
            messages_total: load.messages_ok,
            wall_seconds: load.wall_seconds,
            msgs_per_sec: load.msgs_per_sec,
            latency_us: load.latency_us.clone(),
            syscalls_total: syscalls.values().sum(),
            syscalls,
            wait: WaitTotals::measured(delta, max_ready),
            io_uring: delta.0.io_uring,
            context_switches: delta.0.switches,
            errors: load.errors.total(),
            error_kinds: load.errors.clone(),
            server,
            peak_processes: 0,
            peak_threads: 0,
            peak_pss_kib: 0,
            probe_dropped: delta.0.dropped,
            not_measured: Vec::new(),
            not_idle: None,
            window: Window::default(),
            burst: None,
            epoll_lists: Vec::new(),
            syscall_times: None,
            profile: None,
        }
    }

    /// Calls of one syscall by name (0 if it was not made).
    pub fn calls(&self, name: &str) -> u64 {
        self.syscalls.get(name).copied().unwrap_or(0)
    }

    /// Calls that move bytes from a socket into user memory.
    pub fn read_calls(&self) -> u64 {
        READ_SYSCALLS.iter().map(|n| self.calls(n)).sum()
    }

    /// Calls that move bytes from user memory into a socket.
    pub fn write_calls(&self) -> u64 {
        WRITE_SYSCALLS.iter().map(|n| self.calls(n)).sum()
    }

    /// read/write-family calls: the syscalls that move the payload.
    pub fn data_calls(&self) -> u64 {
        self.read_calls() + self.write_calls()
    }
}

/// Syscalls that move bytes from a socket (or any fd) into user memory.
pub const READ_SYSCALLS: &[&str] = &["read", "readv", "recvfrom", "recvmsg", "recvmmsg"];
/// Syscalls that move bytes from user memory into a socket (or any fd).
pub const WRITE_SYSCALLS: &[&str] = &["write", "writev", "sendto", "sendmsg", "sendmmsg"];
