//! Conclusions drawn from measured numbers, never canned text.
//!
//! The walkthrough says that with many connections the blocking models make one IO call and one
//! context switch per connection, while multiplexing turns "10,000 IOs into 1 call". Each
//! sentence here is computed from a table's own figures, so it says what this run showed —
//! including where the claim is right, and where it is not.

use crate::{document::ModelResult, result::RunResult};

fn per(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

fn reads(r: &RunResult) -> u64 {
    ["read", "recvfrom", "recvmsg", "readv"].iter().map(|n| r.calls(n)).sum()
}

fn writes(r: &RunResult) -> u64 {
    ["write", "sendto", "sendmsg", "writev"].iter().map(|n| r.calls(n)).sum()
}

/// The verdict lines for one table of results at one workload.
pub fn verdict(results: &[ModelResult]) -> Vec<String> {
    let runs: Vec<&RunResult> = results.iter().map(|m| &m.run).collect();
    let mut lines = Vec::new();
    let Some(first) = runs.first() else { return lines };
    let conns = first.connections;
    let idle = first.idle;

    // 1. Who waits how: blocking models block once per IO; multiplexers once per batch.
    for r in &runs {
        let msgs = r.messages;
        if r.wait.calls == 0 {
            lines.push(format!(
                "{}: no wait calls; it blocked inside read/accept instead — {:.2} voluntary context switches per message ({} for {} messages).",
                r.model,
                per(r.context_switches.voluntary, msgs),
                r.context_switches.voluntary,
                msgs
            ));
        } else {
            lines.push(format!(
                "{}: {} wait calls for {} messages ({:.3} per message); each returned {:.1} ready fds on average after being handed {:.0}.",
                r.model,
                r.wait.calls,
                msgs,
                per(r.wait.calls, msgs),
                per(r.wait.ready, r.wait.calls),
                per(r.wait.fds_passed, r.wait.calls),
            ));
        }
    }

    // 2. "10,000 IOs become 1 call": true of the wait, checked for the data calls.
    if let Some(best) = runs.iter().filter(|r| r.wait.calls > 0).max_by(|a, b| {
        per(a.wait.ready, a.wait.calls).total_cmp(&per(b.wait.ready, b.wait.calls))
    }) {
        lines.push(format!(
            "The most ready sockets per wait call: {} with {:.1} (of {} connections). That part of the claim is what multiplexing buys: one wait for many sockets.",
            best.model,
            per(best.wait.ready, best.wait.calls),
            conns
        ));
    }
    let (near_one, not_one): (Vec<&&RunResult>, Vec<&&RunResult>) = runs.iter().partition(|r| {
        let (rd, wr) = (per(reads(r), r.messages), per(writes(r), r.messages));
        (0.8..=1.5).contains(&rd) && (0.8..=1.5).contains(&wr)
    });
    if !near_one.is_empty() {
        lines.push(format!(
            "Reads and writes stayed at about one each per message in {}: multiplexing did not turn the IOs themselves into one call.",
            near_one.iter().map(|r| r.model.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    for r in &not_one {
        lines.push(format!(
            "{}: {:.2} reads and {:.2} writes per message.",
            r.model,
            per(reads(r), r.messages),
            per(writes(r), r.messages)
        ));
    }
    for r in runs.iter().filter(|r| per(r.data_calls(), r.messages) < 0.5) {
        lines.push(format!(
            "{} batched the data calls themselves: {:.3} read/write syscalls per message, the IO travelling in {} io_uring_enter calls ({:.1} submissions each) — the only model where many IOs really are one syscall.",
            r.model,
            per(r.data_calls(), r.messages),
            r.calls("io_uring_enter"),
            per(r.wait.fds_passed, r.wait.calls)
        ));
    }

    // 3. The price of select and poll: every fd on every call.
    for r in runs.iter().filter(|r| r.wait.by_call.keys().any(|k| k.contains("select") || k.contains("poll") && !k.contains("epoll"))) {
        let handed = per(r.wait.fds_passed, r.wait.calls);
        let ready = per(r.wait.ready, r.wait.calls);
        lines.push(format!(
            "{} handed the kernel {:.0} fds per call to learn of {:.1} ready ones ({:.1}%): the scan grows with every open connection{}.",
            r.model,
            handed,
            ready,
            if handed > 0.0 { 100.0 * ready / handed } else { 0.0 },
            if idle > 0 { format!(", the {idle} idle ones included") } else { String::new() }
        ));
    }
    if let Some(epoll) = runs.iter().find(|r| r.model == "epoll") {
        if idle > 0 {
            lines.push(format!(
                "epoll's interest list held {:.0} fds per call, but the kernel only reported ready ones ({:.1} per call): idle connections cost it nothing per call.",
                per(epoll.wait.fds_passed, epoll.wait.calls),
                per(epoll.wait.ready, epoll.wait.calls)
            ));
        }
    }
    lines
}
