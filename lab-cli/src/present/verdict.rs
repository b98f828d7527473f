//! Conclusions drawn from measured numbers, never canned text.
//!
//! The walkthrough claims that with many connections the blocking models make one IO call and
//! one context switch per connection, while multiplexing turns "10,000 IOs into 1 call". Each
//! sentence here is computed from the results it sits under — which claim held, by how much,
//! and where it did not — so it cannot disagree with the table above it. Results at different
//! workloads (a sweep) get a verdict each.

use crate::{present::numbers::significant, results::document::ModelResult, results::figures};

fn per(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// A figure as the table shows it: the median over the runs (the kept run's value if the
/// document has no spread for it).
fn median(m: &ModelResult, key: &str) -> f64 {
    match m.spread.get(key) {
        Some(s) => s.median,
        None => figures::figure(key).map_or(0.0, |f| (f.value)(&m.run)),
    }
}

/// Verdict lines for `results`, grouped by workload (connections, idle, messages).
pub fn verdict(results: &[ModelResult]) -> Vec<String> {
    let mut workloads: Vec<(usize, usize, u64)> = Vec::new();
    for m in results {
        let key = (m.run.workload.connections, m.run.workload.idle, m.run.messages_total);
        if !workloads.contains(&key) {
            workloads.push(key);
        }
    }
    let mut lines = Vec::new();
    for key in &workloads {
        let runs: Vec<&ModelResult> = results
            .iter()
            .filter(|m| (m.run.workload.connections, m.run.workload.idle, m.run.messages_total) == *key)
            .collect();
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

fn workload_verdict(models: &[&ModelResult]) -> Vec<String> {
    let mut lines = Vec::new();
    let (blocking, multiplexing): (Vec<&ModelResult>, Vec<&ModelResult>) =
        models.iter().partition(|m| m.run.wait.all.calls == 0);
    let switches = |m: &ModelResult| median(m, "voluntary_cs_per_msg");
    let ready = |m: &ModelResult| median(m, "ready_per_wait_call");
    let handed = |m: &ModelResult| median(m, "fds_passed_per_wait_call");
    let watched = |m: &ModelResult| median(m, "fds_watched_per_wait_call");

    // Claim 1: blocking servers pay one IO call and one context switch per ready connection.
    for m in &blocking {
        let r = &m.run;
        let held = if switches(m) >= 0.5 { "holds" } else { "does not hold here" };
        lines.push(format!(
            "{}: {} reads, {} writes and {} voluntary context switches per message, no wait calls — the claim of one blocking IO and one switch per message {held}.",
            r.model,
            significant(per(r.read_calls(), r.messages_total)),
            significant(per(r.write_calls(), r.messages_total)),
            significant(switches(m))
        ));
    }

    // Claim 2: multiplexing turns many IOs into one call. True of the wait...
    let waiting: Vec<&ModelResult> = multiplexing.iter().copied().filter(|m| m.run.data_calls() > 0).collect();
    if let Some(best) = waiting.iter().max_by(|a, b| ready(a).total_cmp(&ready(b))) {
        lines.push(format!(
            "One wait for many sockets: {} returned {} ready sockets per wait call, of {} connections; {}. How many are ready at once depends on the load: when every connection sends at the same moment (`iolab prove`) a wait finds most of them ready; with free-running clients, as many as sent since the last wait.",
            best.run.model,
            significant(ready(best)),
            best.run.workload.connections,
            waiting
                .iter()
                .filter(|m| m.run.model != best.run.model)
                .map(|m| format!("{} {}", m.run.model, significant(ready(m))))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        // ... but not of the IO itself.
        let data: Vec<String> = waiting
            .iter()
            .map(|m| format!("{} {}", m.run.model, significant(median(m, "data_syscalls_per_msg"))))
            .collect();
        lines.push(format!(
            "But the IO stayed one call each way: read+write syscalls per message were {} — multiplexing batches the waiting, not the reads and writes.",
            data.join(", ")
        ));
    }
    for m in multiplexing.iter().filter(|m| m.run.data_calls() == 0 && m.run.calls("io_uring_enter") > 0) {
        lines.push(format!(
            "{}: 0 read/write syscalls; {} io_uring_enter per message, each carrying {} submissions — the one model where many IOs really travel in one syscall.",
            m.run.model,
            significant(median(m, "syscalls_per_msg")),
            significant(handed(m))
        ));
    }

    // Context switches: the other half of the claim.
    if let (Some(b), Some(m)) = (
        blocking.iter().max_by(|a, b| switches(a).total_cmp(&switches(b))),
        multiplexing.iter().min_by(|a, b| switches(a).total_cmp(&switches(b))),
    ) && switches(m) > 0.0
    {
        lines.push(format!(
            "Context switches: {} {} per message against {} {}, {:.0}× fewer.",
            b.run.model,
            significant(switches(b)),
            m.run.model,
            significant(switches(m)),
            switches(b) / switches(m)
        ));
    }

    // The price of select and poll: every fd on every call.
    let scans = |m: &&&ModelResult| {
        m.run.wait.by_call.keys().any(|k| k.contains("select") || (k.ends_with("poll") && !k.starts_with("epoll")))
    };
    for m in multiplexing.iter().filter(scans) {
        lines.push(format!(
            "{} handed the kernel {} fds per call to learn of {} ready ones ({:.1}%): its cost per call grows with every open connection{}.",
            m.run.model,
            significant(handed(m)),
            significant(ready(m)),
            if handed(m) > 0.0 { 100.0 * ready(m) / handed(m) } else { 0.0 },
            if m.run.workload.idle > 0 { format!(", the {} idle ones included", m.run.workload.idle) } else { String::new() }
        ));
    }
    if let Some(epoll) = multiplexing.iter().find(|m| m.run.model == "epoll")
        && epoll.run.workload.idle > 0
    {
        lines.push(format!(
            "epoll's interest list held {} fds, registered once rather than handed over on every call; each call reported only the ready ones ({}), so the idle connections cost it nothing per call.",
            significant(watched(epoll)),
            significant(ready(epoll))
        ));
    }

    // Server CPU per message, cheapest and dearest.
    let cpu = |m: &&&ModelResult| median(m, "server_cpu_us_per_msg");
    if let (Some(lo), Some(hi)) =
        (models.iter().min_by(|a, b| cpu(a).total_cmp(&cpu(b))), models.iter().max_by(|a, b| cpu(a).total_cmp(&cpu(b))))
        && lo.run.model != hi.run.model
    {
        lines.push(format!(
            "Server CPU per message (its whole life, connecting included): {} {} µs cheapest, {} {} µs dearest.",
            lo.run.model,
            significant(cpu(&lo)),
            hi.run.model,
            significant(cpu(&hi))
        ));
    }
    lines
}
