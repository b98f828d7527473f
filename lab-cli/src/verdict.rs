//! Conclusions drawn from measured numbers, never canned text.
//!
//! The walkthrough claims that with many connections the blocking models make one IO call and
//! one context switch per connection, while multiplexing turns "10,000 IOs into 1 call". Each
//! sentence here is computed from the results it sits under — which claim held, by how much,
//! and where it did not — so it cannot disagree with the table above it. Results at different
//! workloads (a sweep) get a verdict each.

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

fn cpu_us_per_msg(r: &RunResult) -> f64 {
    (r.server.user_ms + r.server.sys_ms) * 1e3 / r.messages.max(1) as f64
}

/// Verdict lines for `results`, grouped by workload (connections, idle, messages).
pub fn verdict(results: &[ModelResult]) -> Vec<String> {
    let mut workloads: Vec<(usize, usize, u64)> = Vec::new();
    for m in results {
        let key = (m.run.connections, m.run.idle, m.run.messages);
        if !workloads.contains(&key) {
            workloads.push(key);
        }
    }
    let mut lines = Vec::new();
    for key in &workloads {
        let runs: Vec<&RunResult> =
            results.iter().map(|m| &m.run).filter(|r| (r.connections, r.idle, r.messages) == *key).collect();
        if workloads.len() > 1 {
            lines.push(format!("At {} connections{}:", key.0, idle_note(key.1)));
        }
        lines.extend(workload_verdict(&runs));
    }
    lines
}

fn idle_note(idle: usize) -> String {
    if idle > 0 { format!(" (+{idle} idle)") } else { String::new() }
}

fn workload_verdict(runs: &[&RunResult]) -> Vec<String> {
    let mut lines = Vec::new();
    let (blocking, multiplexing): (Vec<&RunResult>, Vec<&RunResult>) = runs.iter().partition(|r| r.wait.calls == 0);

    // Claim 1: blocking servers pay one IO call and one context switch per ready connection.
    for r in &blocking {
        let switches = per(r.context_switches.voluntary, r.messages);
        let held = if switches >= 0.5 { "holds" } else { "does not hold here" };
        lines.push(format!(
            "{}: {:.2} reads, {:.2} writes and {:.2} voluntary context switches per message, no wait calls — the claim of one blocking IO and one switch per message {held}.",
            r.model,
            per(reads(r), r.messages),
            per(writes(r), r.messages),
            switches
        ));
    }

    // Claim 2: multiplexing turns many IOs into one call. True of the wait...
    let waiting: Vec<&RunResult> = multiplexing.iter().copied().filter(|r| r.data_calls() > 0).collect();
    if let Some(best) = waiting.iter().max_by(|a, b| per(a.wait.ready, a.wait.calls).total_cmp(&per(b.wait.ready, b.wait.calls))) {
        lines.push(format!(
            "One wait for many sockets: {} returned {:.1} ready sockets per wait call ({} calls for {} messages); {}.",
            best.model,
            per(best.wait.ready, best.wait.calls),
            best.wait.calls,
            best.messages,
            waiting
                .iter()
                .filter(|r| r.model != best.model)
                .map(|r| format!("{} {:.1}", r.model, per(r.wait.ready, r.wait.calls)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // ... but not of the IO itself.
        let data: Vec<String> =
            waiting.iter().map(|r| format!("{} {:.2}", r.model, per(r.data_calls(), r.messages))).collect();
        lines.push(format!(
            "But the IO stayed one call each way: read+write syscalls per message were {} — multiplexing batches the waiting, not the reads and writes.",
            data.join(", ")
        ));
    }
    for r in multiplexing.iter().filter(|r| r.data_calls() == 0 && r.calls("io_uring_enter") > 0) {
        lines.push(format!(
            "{}: 0 read/write syscalls; {:.3} io_uring_enter per message, each carrying {:.1} submissions — the one model where many IOs really travel in one syscall.",
            r.model,
            per(r.calls("io_uring_enter"), r.messages),
            per(r.wait.fds_passed, r.wait.calls)
        ));
    }

    // Context switches: the other half of the claim.
    if let (Some(b), Some(m)) = (
        blocking.iter().max_by(|a, b| per(a.context_switches.voluntary, a.messages).total_cmp(&per(b.context_switches.voluntary, b.messages))),
        multiplexing.iter().min_by(|a, b| per(a.context_switches.voluntary, a.messages).total_cmp(&per(b.context_switches.voluntary, b.messages))),
    ) {
        let (bs, ms) = (per(b.context_switches.voluntary, b.messages), per(m.context_switches.voluntary, m.messages));
        if ms > 0.0 {
            lines.push(format!(
                "Context switches: {} {:.3} per message against {} {:.4}, {:.0}× fewer.",
                b.model,
                bs,
                m.model,
                ms,
                bs / ms
            ));
        }
    }

    // The price of select and poll: every fd on every call.
    for r in multiplexing.iter().filter(|r| r.wait.by_call.keys().any(|k| k.contains("select") || (k.ends_with("poll") && !k.starts_with("epoll")))) {
        let handed = per(r.wait.fds_passed, r.wait.calls);
        let ready = per(r.wait.ready, r.wait.calls);
        lines.push(format!(
            "{} handed the kernel {:.0} fds per call to learn of {:.1} ready ones ({:.1}%): its cost per call grows with every open connection{}.",
            r.model,
            handed,
            ready,
            if handed > 0.0 { 100.0 * ready / handed } else { 0.0 },
            if r.idle > 0 { format!(", the {} idle ones included", r.idle) } else { String::new() }
        ));
    }
    if let Some(epoll) = multiplexing.iter().find(|r| r.model == "epoll") {
        if epoll.idle > 0 {
            lines.push(format!(
                "epoll's interest list held {:.0} fds, registered once rather than handed over on every call; each call reported only the ready ones ({:.1}), so the idle connections cost it nothing per call.",
                per(epoll.wait.fds_passed, epoll.wait.calls),
                per(epoll.wait.ready, epoll.wait.calls)
            ));
        }
    }

    // Server CPU per message, cheapest and dearest.
    let by_cpu = |a: &&&RunResult, b: &&&RunResult| cpu_us_per_msg(a).total_cmp(&cpu_us_per_msg(b));
    if let (Some(lo), Some(hi)) = (runs.iter().min_by(by_cpu), runs.iter().max_by(by_cpu)) {
        if lo.model != hi.model {
            lines.push(format!(
                "Server CPU per message: {} {:.1} µs cheapest, {} {:.1} µs dearest.",
                lo.model,
                cpu_us_per_msg(lo),
                hi.model,
                cpu_us_per_msg(hi)
            ));
        }
    }
    lines
}
