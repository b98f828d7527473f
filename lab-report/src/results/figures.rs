//! The figures a comparison shows, each computed from one [`RunResult`].
//!
//! Ratios are derived here, at display time, from the counts a run stored, so a table can never
//! disagree with the counts behind it. The key of each figure carries its unit.

use lab_measure::result::RunResult;

pub struct Figure {
    /// Stable name, with its unit: used in JSON/CSV and in `spread`.
    pub key: &'static str,
    /// Column header for tables, with its unit.
    pub header: &'static str,
    pub value: fn(&RunResult) -> f64,
}

fn per_message(r: &RunResult, n: u64) -> f64 {
    if r.messages_total == 0 { 0.0 } else { n as f64 / r.messages_total as f64 }
}

fn per_wait_call(r: &RunResult, n: u64) -> f64 {
    if r.wait.all.calls == 0 { 0.0 } else { n as f64 / r.wait.all.calls as f64 }
}

/// Per `io_uring_enter` call (0 when there were none: a polling thread submitted everything).
fn per_enter(r: &RunResult, n: u64) -> f64 {
    let enters = r.calls("io_uring_enter");
    if enters == 0 { 0.0 } else { n as f64 / enters as f64 }
}

/// The columns of `iolab compare`, in order.
pub const COMPARE: &[Figure] = &[
    Figure { key: "msgs_per_sec", header: "msg/s", value: |r| r.msgs_per_sec },
    Figure { key: "latency_p50_us", header: "p50 µs", value: |r| r.latency_us.p50 },
    Figure { key: "latency_p99_us", header: "p99 µs", value: |r| r.latency_us.p99 },
    Figure { key: "syscalls_per_msg", header: "syscalls/msg", value: |r| per_message(r, r.syscalls_total) },
    Figure { key: "data_syscalls_per_msg", header: "read+write/msg", value: |r| per_message(r, r.data_calls()) },
    Figure { key: "wait_calls_per_msg", header: "waits/msg", value: |r| per_message(r, r.wait.all.calls) },
    Figure {
        key: "fds_passed_per_wait_call",
        header: "fds passed/wait",
        value: |r| per_wait_call(r, r.wait.all.fds_passed),
    },
    Figure {
        key: "fds_watched_per_wait_call",
        header: "fds watched/wait",
        value: |r| per_wait_call(r, r.wait.all.fds_watched),
    },
    Figure { key: "ready_per_wait_call", header: "ready/wait", value: |r| per_wait_call(r, r.wait.all.ready) },
    Figure { key: "max_ready", header: "max ready", value: |r| r.wait.all.max_ready as f64 },
    Figure {
        key: "wait_cpu_us_per_call", header: "CPU µs/wait", value: |r| per_wait_call(r, r.wait.all.cpu_ns) / 1e3
    },
    Figure { key: "sqes_per_msg", header: "SQEs/msg", value: |r| per_message(r, r.io_uring.submitted) },
    Figure { key: "cqes_per_msg", header: "CQEs/msg", value: |r| per_message(r, r.io_uring.completed) },
    Figure { key: "sqes_per_enter", header: "SQEs/enter", value: |r| per_enter(r, r.io_uring.submitted) },
    Figure { key: "cqes_per_enter", header: "CQEs/enter", value: |r| per_enter(r, r.io_uring.completed) },
    Figure {
        key: "voluntary_cs_per_msg",
        header: "vol cs/msg",
        value: |r| per_message(r, r.context_switches.voluntary),
    },
    Figure {
        key: "involuntary_cs_per_msg",
        header: "invol cs/msg",
        value: |r| per_message(r, r.context_switches.involuntary),
    },
    Figure { key: "peak_threads", header: "peak threads", value: |r| r.peak_threads as f64 },
    Figure { key: "peak_processes", header: "peak procs", value: |r| r.peak_processes as f64 },
    Figure { key: "server_user_ms", header: "user ms", value: |r| r.server.user_ms },
    Figure { key: "server_sys_ms", header: "sys ms", value: |r| r.server.sys_ms },
    Figure { key: "peak_rss_kib", header: "peak RSS KiB", value: |r| r.server.max_rss_kib as f64 },
    Figure {
        key: "pss_kib_per_conn",
        header: "PSS KiB/conn",
        value: |r| r.peak_pss_kib as f64 / r.workload.all_connections().max(1) as f64,
    },
    Figure {
        key: "server_cpu_us_per_msg",
        header: "CPU µs/msg",
        value: |r| per_message(r, 1) * (r.server.user_ms + r.server.sys_ms) * 1e3,
    },
    Figure {
        key: "window_cpu_us_per_msg",
        header: "window CPU µs/msg",
        value: |r| per_message(r, r.window.server_cpu_ns) / 1e3,
    },
    Figure { key: "cores_used", header: "cores used", value: |r| cores_used(r) },
];

/// The server's CPU time in the window over the window's length: 1.0 is one core busy all along.
fn cores_used(r: &RunResult) -> f64 {
    if r.window.seconds == 0.0 { 0.0 } else { r.window.server_cpu_ns as f64 / 1e9 / r.window.seconds }
}

pub fn figure(key: &str) -> Option<&'static Figure> {
    COMPARE.iter().find(|f| f.key == key)
}
