//! One run shown in full (`iolab run`, `iolab trace` as a table): every syscall by name, every
//! wait call, the context switches and the server's CPU.
//!
//! The tables put every count beside its per-message ratio, because the walkthrough's claim is a
//! per-message claim ("one IO call per connection" versus "one call for many").

use std::fmt::Write as _;

use tabled::{
    Table, Tabled,
    settings::{Alignment, Style, object::Columns},
};

use crate::{present::numbers::ratio, results::document::Document};
use lab_measure::result::RunResult;

#[derive(Tabled)]
struct SyscallRow {
    syscall: String,
    calls: u64,
    #[tabled(rename = "per message")]
    per_message: String,
}

#[derive(Tabled)]
struct WaitRow {
    #[tabled(rename = "wait call")]
    call: String,
    calls: u64,
    #[tabled(rename = "fds passed / call")]
    fds_per_call: String,
    #[tabled(rename = "fds watched / call")]
    watched_per_call: String,
    #[tabled(rename = "ready / call")]
    ready_per_call: String,
    #[tabled(rename = "max ready")]
    max_ready: u64,
    #[tabled(rename = "errors")]
    errors: u64,
    #[tabled(rename = "on-CPU µs / call")]
    cpu_us_per_call: String,
    #[tabled(rename = "blocked (ms)")]
    blocked_ms: String,
}

/// The document's one run in full; for `iolab trace`, where the CPU figures come from, and the
/// validation if there was one.
pub fn render(doc: &Document) -> String {
    let mut text = doc.results.iter().map(|m| run_table(&m.run)).collect::<String>();
    if doc.command == "trace" {
        text += "(server CPU over the measured window, from /proc; peak RSS: the tree's largest VmHWM)\n";
    }
    if let Some(v) = &doc.validation {
        text += &crate::present::validation::table(v);
    }
    text
}

fn run_table(r: &RunResult) -> String {
    let msgs = r.messages_total as f64;
    let mut out = String::new();
    match lab_server::model(&r.model) {
        Some(model) => writeln!(out, "model {}: {}", r.model, model.summary),
        None => writeln!(out, "server: {}", r.model),
    }
    .ok();
    let _ = writeln!(
        out,
        "{} connections{} × {} B: {} messages in {:.2} s = {:.0} msg/s, latency p50 {:.0} µs, p99 {:.0} µs, errors {}",
        r.workload.connections,
        if r.workload.idle > 0 { format!(" (+{} idle)", r.workload.idle) } else { String::new() },
        r.workload.payload_bytes,
        r.messages_total,
        r.wall_seconds,
        r.msgs_per_sec,
        r.latency_us.p50,
        r.latency_us.p99,
        r.errors,
    );
    if r.syscalls_total == 0 {
        let _ = writeln!(out, "\nNo syscalls counted: the server ran untraced (--no-trace).");
        return out;
    }
    let _ = writeln!(out, "\nSyscalls made by the server's process tree:");
    let mut rows: Vec<_> = r.syscalls.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut table_rows: Vec<SyscallRow> = rows
        .into_iter()
        .map(|(name, &calls)| SyscallRow { syscall: name.clone(), calls, per_message: ratio(calls as f64, msgs) })
        .collect();
    table_rows.push(SyscallRow {
        syscall: "total".into(),
        calls: r.syscalls_total,
        per_message: ratio(r.syscalls_total as f64, msgs),
    });
    out += &numeric_table(Table::new(table_rows));

    if r.wait.by_call.is_empty() {
        let _ = writeln!(out, "\nWait calls: none (this model blocks in read/write/accept instead).");
    } else {
        let _ = writeln!(out, "\nWait calls:");
        let waits: Vec<WaitRow> = r
            .wait
            .by_call
            .iter()
            .map(|(name, w)| WaitRow {
                call: name.clone(),
                calls: w.calls,
                fds_per_call: ratio(w.fds_passed as f64, w.calls as f64),
                watched_per_call: ratio(w.fds_watched as f64, w.calls as f64),
                ready_per_call: ratio(w.ready as f64, w.calls as f64),
                max_ready: w.max_ready,
                errors: w.errors,
                cpu_us_per_call: ratio(w.cpu_ns as f64 / 1e3, w.calls as f64),
                blocked_ms: format!("{:.1}", w.blocked_ns as f64 / 1e6),
            })
            .collect();
        out += &numeric_table(Table::new(waits));
    }
    let rings = r.io_uring;
    if rings.submitted + rings.completed > 0 {
        let enters = r.calls("io_uring_enter") as f64;
        let _ = writeln!(
            out,
            "\nio_uring: {} requests submitted ({} per message, {} per io_uring_enter), {} completions ({} per message, {} per io_uring_enter)",
            rings.submitted,
            ratio(rings.submitted as f64, msgs),
            ratio(rings.submitted as f64, enters),
            rings.completed,
            ratio(rings.completed as f64, msgs),
            ratio(rings.completed as f64, enters),
        );
    }
    let cs = r.context_switches;
    let _ = writeln!(
        out,
        "\nContext switches: {} voluntary ({} per message), {} involuntary ({} per message)",
        cs.voluntary,
        ratio(cs.voluntary as f64, msgs),
        cs.involuntary,
        ratio(cs.involuntary as f64, msgs)
    );
    let _ = writeln!(
        out,
        "Server CPU: {:.0} ms user, {:.0} ms sys; peak RSS {} KiB",
        r.server.user_ms, r.server.sys_ms, r.server.max_rss_kib
    );
    let w = r.window;
    if w.server_cpu_ns > 0 {
        let _ = writeln!(
            out,
            "In the measured window ({:.2} s): {:.1} ms on a CPU, {} µs per message, {:.2} cores used",
            w.seconds,
            w.server_cpu_ns as f64 / 1e6,
            ratio(w.server_cpu_ns as f64 / 1e3, msgs),
            w.server_cpu_ns as f64 / 1e9 / w.seconds.max(1e-9)
        );
        if let Some(own) = w.own_cpu_ns {
            let s = w.softirq_ns;
            let _ = writeln!(
                out,
                "  of which its own {} µs per message; interrupts on its threads: NET_RX {} µs (on loopback \
                 mostly the load generator's receive, run inside the server's sends), other softirqs {} µs, \
                 hard interrupts {} µs per message",
                ratio(own as f64 / 1e3, msgs),
                ratio(s.net_rx as f64 / 1e3, msgs),
                ratio((s.total() - s.net_rx) as f64 / 1e3, msgs),
                ratio(w.hardirq_ns as f64 / 1e3, msgs)
            );
        }
    }
    if let Some(times) = &r.syscall_times {
        out += &crate::present::timing_table::render(times);
    }
    out += &crate::present::profile::run(r);
    if let Some(busy) = r.not_idle {
        let _ = writeln!(out, "{}", not_idle(&r.model, busy));
    }
    for missing in &r.not_measured {
        let _ = writeln!(out, "note: {}: {}", missing.figure, missing.cell());
    }
    let d = r.probe_dropped;
    if d.tasks + d.waits + d.epoll_members > 0 {
        let _ = writeln!(
            out,
            "warning: the probe could not follow {} tasks, {} wait calls, {} epoll registrations (map full)",
            d.tasks, d.waits, d.epoll_members
        );
    }
    if d.select_fds > 0 {
        let _ = writeln!(
            out,
            "warning: {} fds of select calls lay beyond the {} the probe reads, and count as set",
            d.select_fds,
            lab_common::MAX_SELECT_FDS
        );
    }
    out
}

fn numeric_table(mut table: Table) -> String {
    table.with(Style::rounded()).modify(Columns::new(1..), Alignment::right());
    format!("{table}\n")
}

/// The warning for a server that never went idle after the load.
pub fn not_idle(model: &str, busy: lab_measure::settle::NotIdle) -> String {
    format!(
        "warning: {model}: the server never went idle after the load; the lab waited {:.1} s, in which it made {} \
         syscalls, and they are in the counts",
        busy.waited_seconds, busy.syscalls
    )
}
