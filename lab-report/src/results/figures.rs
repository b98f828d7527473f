//! The figures a comparison shows, each declared once and computed from one [`RunResult`].
//!
//! Ratios are derived here, at display time, from the counts a run stored, so a table can never
//! disagree with the counts behind it. A figure whose denominator is 0 (no message, no wait
//! call, no `io_uring_enter`, an empty window) was not measured: its value is `None`, never 0.

use lab_measure::result::RunResult;

use crate::results::{
    mechanism::{Breakdown, Mechanism},
    profile::{self, mean_delay_ns, quantile_bound},
};

/// One figure of a comparison. Its facts (key, label, unit, description, how it is computed)
/// are all in [`Figure::def`], one arm per figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Figure {
    MsgsPerSec,
    LatencyP50,
    LatencyP99,
    SyscallsPerMsg,
    DataSyscallsPerMsg,
    WaitCallsPerMsg,
    FdsPassedPerWait,
    FdsWatchedPerWait,
    ReadyPerWait,
    MaxReady,
    WaitCpuPerCall,
    SqesPerMsg,
    CqesPerMsg,
    SqesPerEnter,
    CqesPerEnter,
    VoluntaryCsPerMsg,
    InvoluntaryCsPerMsg,
    PeakThreads,
    PeakProcesses,
    ServerUserMs,
    ServerSysMs,
    PeakRss,
    PssPerConn,
    ServerCpuPerMsg,
    WindowCpuPerMsg,
    OwnCpuPerMsg,
    NetRxPerMsg,
    OtherSoftirqPerMsg,
    HardirqPerMsg,
    OwnCoresUsed,
    CoresUsed,
    ProfileSamples,
    ProfileCpuMs,
    FdWalkShare,
    EpollReadyShare,
    SchedulerShare,
    TcpCopyShare,
    NetSoftirqShare,
    UserShare,
    RestShare,
    RunQueueWaitsPerMsg,
    RunQueueDelayMs,
    RunQueueDelayPerMsg,
    RunQueueMean,
    RunQueueP50,
    RunQueueP99,
    SchedulerCpuPerSwitch,
    SwitchCost,
    SwitchCostPerMsg,
}

/// What a figure is: see the accessors of [`Figure`].
struct Def {
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    description: &'static str,
    value: fn(&RunResult) -> Option<f64>,
}

impl Figure {
    /// Every figure, in the order of `iolab compare`'s columns (and of the CSV's).
    pub const ALL: &'static [Figure] = &[
        Figure::MsgsPerSec,
        Figure::LatencyP50,
        Figure::LatencyP99,
        Figure::SyscallsPerMsg,
        Figure::DataSyscallsPerMsg,
        Figure::WaitCallsPerMsg,
        Figure::FdsPassedPerWait,
        Figure::FdsWatchedPerWait,
        Figure::ReadyPerWait,
        Figure::MaxReady,
        Figure::WaitCpuPerCall,
        Figure::SqesPerMsg,
        Figure::CqesPerMsg,
        Figure::SqesPerEnter,
        Figure::CqesPerEnter,
        Figure::VoluntaryCsPerMsg,
        Figure::InvoluntaryCsPerMsg,
        Figure::PeakThreads,
        Figure::PeakProcesses,
        Figure::ServerUserMs,
        Figure::ServerSysMs,
        Figure::PeakRss,
        Figure::PssPerConn,
        Figure::ServerCpuPerMsg,
        Figure::OwnCpuPerMsg,
        Figure::NetRxPerMsg,
        Figure::OtherSoftirqPerMsg,
        Figure::HardirqPerMsg,
        Figure::WindowCpuPerMsg,
        Figure::OwnCoresUsed,
        Figure::CoresUsed,
        Figure::ProfileSamples,
        Figure::ProfileCpuMs,
        Figure::FdWalkShare,
        Figure::EpollReadyShare,
        Figure::SchedulerShare,
        Figure::TcpCopyShare,
        Figure::NetSoftirqShare,
        Figure::UserShare,
        Figure::RestShare,
        Figure::RunQueueWaitsPerMsg,
        Figure::RunQueueDelayMs,
        Figure::RunQueueDelayPerMsg,
        Figure::RunQueueMean,
        Figure::RunQueueP50,
        Figure::RunQueueP99,
        Figure::SchedulerCpuPerSwitch,
        Figure::SwitchCost,
        Figure::SwitchCostPerMsg,
    ];

    /// Where `--profile`'s samples went, by kernel mechanism, as its tables show it.
    pub const MECHANISM: [Figure; 9] = [
        Figure::ProfileSamples,
        Figure::ProfileCpuMs,
        Figure::FdWalkShare,
        Figure::EpollReadyShare,
        Figure::SchedulerShare,
        Figure::TcpCopyShare,
        Figure::NetSoftirqShare,
        Figure::UserShare,
        Figure::RestShare,
    ];

    /// The run-queue delay of `--profile`, as its tables show it.
    pub const RUN_QUEUE: [Figure; 6] = [
        Figure::RunQueueWaitsPerMsg,
        Figure::RunQueueDelayMs,
        Figure::RunQueueDelayPerMsg,
        Figure::RunQueueMean,
        Figure::RunQueueP50,
        Figure::RunQueueP99,
    ];

    /// Stable name, with its unit: used in JSON, CSV and a document's `spread`.
    pub fn key(self) -> &'static str {
        self.def().key
    }

    /// Column header for tables, with its unit.
    pub fn label(self) -> &'static str {
        self.def().label
    }

    /// The unit of its value.
    pub fn unit(self) -> &'static str {
        self.def().unit
    }

    /// What it measures, in one sentence (a column's tooltip or help line).
    pub fn description(self) -> &'static str {
        self.def().description
    }

    /// Its value in one run; `None` when the run did not measure it.
    pub fn value(self, run: &RunResult) -> Option<f64> {
        (self.def().value)(run)
    }

    /// The share of the sampled CPU this figure gives, if it is one.
    pub fn mechanism(self) -> Option<Mechanism> {
        use Figure::*;
        Some(match self {
            FdWalkShare => Mechanism::FdWalk,
            EpollReadyShare => Mechanism::EpollReady,
            SchedulerShare => Mechanism::Scheduler,
            TcpCopyShare => Mechanism::TcpCopy,
            NetSoftirqShare => Mechanism::NetSoftirq,
            UserShare => Mechanism::User,
            RestShare => Mechanism::Rest,
            _ => return None,
        })
    }

    /// The figure whose key is `key` (a saved document's `spread`), if there is one.
    pub fn from_key(key: &str) -> Option<Figure> {
        Figure::ALL.iter().copied().find(|f| f.key() == key)
    }

    fn def(self) -> Def {
        use Figure::*;
        match self {
            MsgsPerSec => {
                d("msgs_per_sec", "msg/s", "messages/s", "Messages sent and answered per second of the run.", |r| {
                    Some(r.msgs_per_sec)
                })
            }
            LatencyP50 => d(
                "latency_p50_us",
                "p50 µs",
                "µs",
                "Median time from sending a message to reading its answer.",
                |r| per_message(r, 1).map(|_| r.latency_us.p50),
            ),
            LatencyP99 => d(
                "latency_p99_us",
                "p99 µs",
                "µs",
                "99th percentile of the time from sending a message to reading its answer.",
                |r| per_message(r, 1).map(|_| r.latency_us.p99),
            ),
            SyscallsPerMsg => d(
                "syscalls_per_msg",
                "syscalls/msg",
                "syscalls/message",
                "Syscalls of every kind the server made per message.",
                |r| per_message(r, r.syscalls_total),
            ),
            DataSyscallsPerMsg => d(
                "data_syscalls_per_msg",
                "read+write/msg",
                "syscalls/message",
                "Syscalls that read or wrote a socket, per message.",
                |r| per_message(r, r.data_calls()),
            ),
            WaitCallsPerMsg => d(
                "wait_calls_per_msg",
                "waits/msg",
                "calls/message",
                "Wait calls (select, poll, epoll_wait, io_uring waits) per message.",
                |r| per_message(r, r.wait.all.calls),
            ),
            FdsPassedPerWait => d(
                "fds_passed_per_wait_call",
                "fds passed/wait",
                "fds/call",
                "File descriptors handed to the kernel in each wait call (epoll: 0, its list is registered once).",
                |r| per_wait_call(r, r.wait.all.fds_passed),
            ),
            FdsWatchedPerWait => d(
                "fds_watched_per_wait_call",
                "fds watched/wait",
                "fds/call",
                "File descriptors the kernel watched for each wait call.",
                |r| per_wait_call(r, r.wait.all.fds_watched),
            ),
            ReadyPerWait => d(
                "ready_per_wait_call",
                "ready/wait",
                "fds/call",
                "Ready file descriptors a wait call returned, on average.",
                |r| per_wait_call(r, r.wait.all.ready),
            ),
            MaxReady => {
                d("max_ready", "max ready", "fds", "The most ready file descriptors one wait call returned.", |r| {
                    per_wait_call(r, 1).map(|_| r.wait.all.max_ready as f64)
                })
            }
            WaitCpuPerCall => d(
                "wait_cpu_us_per_call",
                "CPU µs/wait",
                "µs/call",
                "On-CPU time inside one wait call, on average.",
                |r| per_wait_call(r, r.wait.all.cpu_ns).map(|ns| ns / 1e3),
            ),
            SqesPerMsg => d(
                "sqes_per_msg",
                "SQEs/msg",
                "requests/message",
                "io_uring requests the kernel took per message.",
                |r| per_message(r, io_uring(r)?.submitted),
            ),
            CqesPerMsg => d(
                "cqes_per_msg",
                "CQEs/msg",
                "completions/message",
                "io_uring completions the kernel posted per message.",
                |r| per_message(r, io_uring(r)?.completed),
            ),
            SqesPerEnter => d(
                "sqes_per_enter",
                "SQEs/enter",
                "requests/call",
                "io_uring requests taken per io_uring_enter call (none: a polling thread submitted them).",
                |r| per_enter(r, io_uring(r)?.submitted),
            ),
            CqesPerEnter => d(
                "cqes_per_enter",
                "CQEs/enter",
                "completions/call",
                "io_uring completions posted per io_uring_enter call.",
                |r| per_enter(r, io_uring(r)?.completed),
            ),
            VoluntaryCsPerMsg => d(
                "voluntary_cs_per_msg",
                "vol cs/msg",
                "switches/message",
                "Times a server thread gave up the CPU to wait (it blocked), per message.",
                |r| per_message(r, r.context_switches.voluntary),
            ),
            InvoluntaryCsPerMsg => d(
                "involuntary_cs_per_msg",
                "invol cs/msg",
                "switches/message",
                "Times the scheduler took the CPU from a runnable server thread, per message.",
                |r| per_message(r, r.context_switches.involuntary),
            ),
            PeakThreads => d(
                "peak_threads",
                "peak threads",
                "threads",
                "The most threads (all tasks) the server had at once.",
                |r| Some(r.peak_threads as f64),
            ),
            PeakProcesses => {
                d("peak_processes", "peak procs", "processes", "The most processes the server had at once.", |r| {
                    Some(r.peak_processes as f64)
                })
            }
            ServerUserMs => d(
                "server_user_ms",
                "user ms",
                "ms",
                "CPU time the server spent in user space over its whole life.",
                |r| Some(r.server.user_ms),
            ),
            ServerSysMs => d(
                "server_sys_ms",
                "sys ms",
                "ms",
                "CPU time the server spent in the kernel over its whole life.",
                |r| Some(r.server.sys_ms),
            ),
            PeakRss => {
                d("peak_rss_kib", "peak RSS KiB", "KiB", "The largest resident set of one server process.", |r| {
                    Some(r.server.max_rss_kib as f64)
                })
            }
            PssPerConn => d(
                "pss_kib_per_conn",
                "PSS KiB/conn",
                "KiB/connection",
                "The server's proportional set size with every connection open, per connection.",
                |r| per(r.peak_pss_kib as f64, r.workload.all_connections() as u64),
            ),
            ServerCpuPerMsg => d(
                "server_cpu_us_per_msg",
                "CPU µs/msg",
                "µs/message",
                "The server's user and kernel CPU time over its whole life, per message.",
                |r| per_message(r, 1).map(|m| m * (r.server.user_ms + r.server.sys_ms) * 1e3),
            ),
            WindowCpuPerMsg => d(
                "window_cpu_us_per_msg",
                "window CPU µs/msg",
                "µs/message",
                "The server's on-CPU time in the measured window, per message, interrupts that ran on its threads included.",
                |r| per_message(r, r.window.server_cpu_ns).map(|ns| ns / 1e3),
            ),
            OwnCpuPerMsg => d(
                "own_cpu_us_per_msg",
                "own CPU µs/msg",
                "µs/message",
                "The server's own on-CPU time in the window, per message: its code and its own syscalls, without the interrupts that ran on its threads.",
                |r| per_message(r, r.window.own_cpu_ns?).map(|ns| ns / 1e3),
            ),
            NetRxPerMsg => d(
                "net_rx_us_per_msg",
                "NET_RX µs/msg",
                "µs/message",
                "NET_RX softirq time on the server's threads in the window, per message: on loopback, the load generator's TCP receive, run inside the server's sends.",
                |r| interrupts(r, r.window.softirq_ns.net_rx),
            ),
            OtherSoftirqPerMsg => d(
                "other_softirq_us_per_msg",
                "other softirq µs/msg",
                "µs/message",
                "The other softirqs on the server's threads in the window (timers, RCU, scheduler, sending), per message.",
                |r| interrupts(r, r.window.softirq_ns.total() - r.window.softirq_ns.net_rx),
            ),
            HardirqPerMsg => d(
                "hardirq_us_per_msg",
                "hardirq µs/msg",
                "µs/message",
                "Hard-interrupt handler time on the server's threads in the window, per message.",
                |r| interrupts(r, r.window.hardirq_ns),
            ),
            OwnCoresUsed => d(
                "own_cores_used",
                "own cores",
                "cores",
                "The server's own CPU time in the window (interrupts apart) over the window's length.",
                |r| cores(r, r.window.own_cpu_ns?),
            ),
            CoresUsed => d(
                "cores_used",
                "cores used",
                "cores",
                "The server's CPU time in the window over the window's length, interrupts included: 1.0 is one core busy all along.",
                |r| cores(r, r.window.server_cpu_ns),
            ),
            ProfileSamples => d(
                "profile_samples",
                "samples",
                "samples",
                "On-CPU samples of the server's threads in the window (--profile), lost ones included.",
                |r| Some(r.profile.as_ref()?.samples() as f64),
            ),
            ProfileCpuMs => d(
                "profile_cpu_ms",
                "CPU ms",
                "ms",
                "The CPU time the samples stand for: samples over the sampling rate.",
                |r| Breakdown::of(r.profile.as_ref()?).total_cpu_ms(),
            ),
            FdWalkShare => {
                share(Mechanism::FdWalk, "profile_fd_walk_pct", "fd walk %", |r| mechanism_share(r, Mechanism::FdWalk))
            }
            EpollReadyShare => share(Mechanism::EpollReady, "profile_epoll_ready_pct", "epoll %", |r| {
                mechanism_share(r, Mechanism::EpollReady)
            }),
            SchedulerShare => share(Mechanism::Scheduler, "profile_scheduler_pct", "sched %", |r| {
                mechanism_share(r, Mechanism::Scheduler)
            }),
            TcpCopyShare => {
                share(Mechanism::TcpCopy, "profile_tcp_copy_pct", "TCP %", |r| mechanism_share(r, Mechanism::TcpCopy))
            }
            NetSoftirqShare => share(Mechanism::NetSoftirq, "profile_net_softirq_pct", "softirq %", |r| {
                mechanism_share(r, Mechanism::NetSoftirq)
            }),
            UserShare => share(Mechanism::User, "profile_user_pct", "user %", |r| mechanism_share(r, Mechanism::User)),
            RestShare => share(Mechanism::Rest, "profile_rest_pct", "rest %", |r| mechanism_share(r, Mechanism::Rest)),
            RunQueueWaitsPerMsg => d(
                "run_queue_waits_per_msg",
                "rq waits/msg",
                "waits/message",
                "Times a server thread was made runnable (woken or preempted) and then waited to run, per message.",
                |r| per_message(r, r.profile.as_ref()?.run_queue.waits),
            ),
            RunQueueDelayMs => d(
                "run_queue_delay_ms",
                "rq delay ms",
                "ms",
                "The server's threads' time in the run queue in the window, summed: runnable, not running.",
                |r| Some(r.profile.as_ref()?.run_queue.delay_ns as f64 / 1e6),
            ),
            RunQueueDelayPerMsg => d(
                "run_queue_delay_us_per_msg",
                "rq delay µs/msg",
                "µs/message",
                "Run-queue delay of the server's threads per message.",
                |r| per_message(r, r.profile.as_ref()?.run_queue.delay_ns).map(|ns| ns / 1e3),
            ),
            RunQueueMean => {
                d("run_queue_mean_us", "rq mean µs", "µs/wait", "The mean run-queue delay of one wait.", |r| {
                    mean_delay_ns(&r.profile.as_ref()?.run_queue).map(|ns| ns / 1e3)
                })
            }
            RunQueueP50 => d(
                "run_queue_p50_bound_us",
                "rq p50 ≤ µs",
                "µs",
                "A bound on the median run-queue delay: the upper end of the log2 bucket it falls in.",
                |r| quantile_bound(&r.profile.as_ref()?.run_queue, 0.5).map(|ns| ns / 1e3),
            ),
            RunQueueP99 => d(
                "run_queue_p99_bound_us",
                "rq p99 ≤ µs",
                "µs",
                "A bound on the 99th percentile of the run-queue delay: the upper end of the log2 bucket it falls in.",
                |r| quantile_bound(&r.profile.as_ref()?.run_queue, 0.99).map(|ns| ns / 1e3),
            ),
            SchedulerCpuPerSwitch => d(
                "scheduler_cpu_us_per_switch",
                "sched CPU µs/switch",
                "µs/switch",
                "The scheduler's sampled CPU time per context switch (voluntary and involuntary).",
                |r| profile::SwitchCost::of(r).map(|c| c.cpu_ns / 1e3),
            ),
            SwitchCost => d(
                "switch_cost_us",
                "switch µs",
                "µs/switch",
                "What a context switch costs: the scheduler's CPU per switch plus the mean run-queue delay.",
                |r| profile::SwitchCost::of(r).map(|c| c.ns() / 1e3),
            ),
            SwitchCostPerMsg => d(
                "switch_cost_us_per_msg",
                "switches µs/msg",
                "µs/message",
                "Every switch at that cost, per message.",
                |r| per_message(r, 1).zip(profile::SwitchCost::of(r)).map(|(m, c)| m * c.total_ns() / 1e3),
            ),
        }
    }
}

/// A mechanism's share of the sampled CPU, described by the mechanism itself.
fn share(mechanism: Mechanism, key: &'static str, label: &'static str, value: fn(&RunResult) -> Option<f64>) -> Def {
    d(key, label, "% of samples", mechanism.description(), value)
}

fn mechanism_share(r: &RunResult, mechanism: Mechanism) -> Option<f64> {
    Breakdown::of(r.profile.as_ref()?).share(mechanism)
}

fn d(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    description: &'static str,
    value: fn(&RunResult) -> Option<f64>,
) -> Def {
    Def { key, label, unit, description, value }
}

/// `n / d`, or `None` when `d` is 0.
fn per(n: f64, d: u64) -> Option<f64> {
    (d > 0).then(|| n / d as f64)
}

fn per_message(r: &RunResult, n: u64) -> Option<f64> {
    per(n as f64, r.messages_total)
}

fn per_wait_call(r: &RunResult, n: u64) -> Option<f64> {
    per(n as f64, r.wait.all.calls)
}

fn per_enter(r: &RunResult, n: u64) -> Option<f64> {
    per(n as f64, r.calls("io_uring_enter"))
}

/// The run's io_uring counts, unless its kernel lacked the tracepoints that count them.
fn io_uring(r: &RunResult) -> Option<&lab_common::IoUring> {
    (!r.not_measured.iter().any(|m| m.figure == "io_uring")).then_some(&r.io_uring)
}

/// Interrupt nanoseconds as µs per message, in a run whose window was split (`own_cpu_ns` set).
fn interrupts(r: &RunResult, ns: u64) -> Option<f64> {
    r.window.own_cpu_ns?;
    per_message(r, ns).map(|ns| ns / 1e3)
}

/// CPU nanoseconds in the window over its length.
fn cores(r: &RunResult, ns: u64) -> Option<f64> {
    (r.window.seconds > 0.0).then(|| ns as f64 / 1e9 / r.window.seconds)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_figure_is_listed_once_with_a_unique_key() {
        assert_eq!(Figure::ALL.len(), Figure::SwitchCostPerMsg as usize + 1, "a variant is missing from ALL");
        let variants: HashSet<Figure> = Figure::ALL.iter().copied().collect();
        assert_eq!(variants.len(), Figure::ALL.len(), "a figure is listed twice");
        let keys: HashSet<&str> = Figure::ALL.iter().map(|f| f.key()).collect();
        assert_eq!(keys.len(), Figure::ALL.len(), "two figures share a key");
        for f in Figure::ALL {
            assert!(!f.label().is_empty() && !f.unit().is_empty(), "{f:?}");
            assert!(f.description().ends_with('.'), "{f:?}: one sentence");
        }
    }

    #[test]
    fn from_key_finds_every_figure_and_nothing_else() {
        for &f in Figure::ALL {
            assert_eq!(Figure::from_key(f.key()), Some(f));
        }
        assert_eq!(Figure::from_key("voluntary_cs_per_message"), None);
    }

    #[test]
    fn the_keys_and_headers_stay_as_saved_documents_have_them() {
        assert_eq!(Figure::ALL[0].key(), "msgs_per_sec");
        assert_eq!(Figure::VoluntaryCsPerMsg.key(), "voluntary_cs_per_msg");
        assert_eq!(Figure::WindowCpuPerMsg.label(), "window CPU µs/msg");
        assert_eq!(Figure::ALL[30].key(), "cores_used", "--profile's figures come after the others");
    }

    #[test]
    fn a_run_without_messages_has_no_per_message_figure() {
        let mut run = RunResult { syscalls_total: 10, ..RunResult::default() };
        run.context_switches.voluntary = 5;
        for f in [Figure::SyscallsPerMsg, Figure::VoluntaryCsPerMsg, Figure::WindowCpuPerMsg, Figure::ServerCpuPerMsg] {
            assert_eq!(f.value(&run), None, "{f:?}");
        }
        assert_eq!(Figure::PeakThreads.value(&run), Some(0.0), "a count is measured even at 0");
        run.messages_total = 5;
        assert_eq!(Figure::SyscallsPerMsg.value(&run), Some(2.0));
        assert_eq!(Figure::WaitCallsPerMsg.value(&run), Some(0.0), "no wait call per message is a measured 0");
    }

    #[test]
    fn per_call_figures_and_cores_need_their_denominator() {
        let mut run = RunResult { messages_total: 100, ..RunResult::default() };
        for f in [Figure::FdsPassedPerWait, Figure::MaxReady, Figure::SqesPerEnter, Figure::CoresUsed] {
            assert_eq!(f.value(&run), None, "{f:?}");
        }
        run.wait.all.stats.calls = 4;
        run.wait.all.stats.ready = 8;
        run.window.seconds = 2.0;
        run.window.server_cpu_ns = 1_000_000_000;
        assert_eq!(Figure::ReadyPerWait.value(&run), Some(2.0));
        assert_eq!(Figure::CoresUsed.value(&run), Some(0.5));
    }

    #[test]
    fn io_uring_figures_are_missing_on_a_kernel_without_its_tracepoints() {
        let mut run = RunResult { messages_total: 10, ..RunResult::default() };
        assert_eq!(Figure::SqesPerMsg.value(&run), Some(0.0), "no io_uring used: a measured 0");
        run.not_measured.push(lab_measure::result::Unmeasured {
            figure: "io_uring".into(),
            needs: "needs the io_uring tracepoints, Linux 5.5+".into(),
        });
        for f in [Figure::SqesPerMsg, Figure::CqesPerMsg] {
            assert_eq!(f.value(&run), None, "{f:?}");
        }
    }

    #[test]
    fn own_cpu_and_the_interrupts_add_up_to_the_window_and_are_missing_before_the_split() {
        let mut run = RunResult { messages_total: 1000, ..RunResult::default() };
        run.window.seconds = 1.0;
        run.window.server_cpu_ns = 10_000_000;
        for f in [Figure::OwnCpuPerMsg, Figure::NetRxPerMsg, Figure::HardirqPerMsg, Figure::OwnCoresUsed] {
            assert_eq!(f.value(&run), None, "{f:?}: a document without the split did not measure it");
        }
        run.window.own_cpu_ns = Some(6_000_000);
        run.window.softirq_ns.net_rx = 3_000_000;
        run.window.softirq_ns.timer = 500_000;
        run.window.hardirq_ns = 500_000;
        let us = |f: Figure| f.value(&run).unwrap();
        assert_eq!(us(Figure::WindowCpuPerMsg), 10.0);
        assert_eq!(us(Figure::OwnCpuPerMsg), 6.0);
        assert_eq!(us(Figure::NetRxPerMsg), 3.0);
        assert_eq!(us(Figure::OtherSoftirqPerMsg), 0.5);
        assert_eq!(us(Figure::HardirqPerMsg), 0.5);
        let parts = us(Figure::OwnCpuPerMsg) + us(Figure::NetRxPerMsg) + us(Figure::OtherSoftirqPerMsg);
        assert_eq!(parts + us(Figure::HardirqPerMsg), us(Figure::WindowCpuPerMsg));
        assert_eq!((us(Figure::OwnCoresUsed), us(Figure::CoresUsed)), (0.006, 0.01));
    }
}
