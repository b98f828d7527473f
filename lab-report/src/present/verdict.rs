//! Conclusions drawn from measured numbers, never canned text.
//!
//! The walkthrough claims that with many connections the blocking models make one IO call and
//! one context switch per connection, while multiplexing turns "10,000 IOs into 1 call". Each
//! sentence here is computed from the results it sits under — which claim held, by how much,
//! and where it did not — so it cannot disagree with the table above it. Results at different
//! workloads (a sweep) get a verdict each.

//!
//! A figure that was not measured (per message with no message…) is written `–`, and a claim
//! that rests on it is said not to be judged, never judged on a 0.

use crate::{
    present::numbers::{significant, significant_or_missing as shown},
    results::{document::ModelResult, figures::Figure},
};

fn per(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
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
    let (blocking, multiplexing): (Vec<&ModelResult>, Vec<&ModelResult>) =
        models.iter().partition(|m| m.run.wait.all.calls == 0);
    let mut lines: Vec<String> = blocking.iter().map(|m| blocking_claim(m)).collect();
    lines.extend(one_wait_for_many(&multiplexing));
    lines.extend(io_per_message(&multiplexing));
    lines.extend(multiplexing.iter().filter_map(|m| no_syscall_per_message(m)));
    lines.extend(fewer_switches(&blocking, &multiplexing));
    lines.extend(wait_call_cost(&multiplexing));
    lines.extend(switching_cost(models));
    lines.extend(cores(models));
    lines.extend(models.iter().filter_map(|m| epoll_spread(m)));
    lines.extend(crate::present::profile::verdict::verdict(models));
    lines
}

fn switches(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::VoluntaryCsPerMsg)
}

fn ready(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::ReadyPerWait)
}

/// CPU per message that is the design's own: the interrupts on its threads apart.
fn own_cpu(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::OwnCpuPerMsg)
}

fn cores_used(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::CoresUsed)
}

/// The model whose `value` is largest, of those that measured it.
fn most<'a>(
    models: impl IntoIterator<Item = &'a ModelResult>,
    value: impl Fn(&ModelResult) -> Option<f64>,
) -> Option<&'a ModelResult> {
    let measured = models.into_iter().filter_map(|m| Some((m, value(m)?)));
    measured.max_by(|a, b| a.1.total_cmp(&b.1)).map(|(m, _)| m)
}

/// A blocking model pays one IO call each way and one context switch per message: it holds
/// when at least one voluntary switch in two messages was measured.
fn blocking_claim(m: &ModelResult) -> String {
    let r = &m.run;
    let held = match switches(m) {
        Some(s) if s >= 0.5 => "holds",
        Some(_) => "does not hold here",
        None => "cannot be judged: no message was served",
    };
    let taken_out = match r.burst {
        Some(burst) if burst.forced_switches > 0 => format!(
            " ({} more switches, of threads the lab's holds woke with nothing to serve, taken out with their CPU)",
            burst.forced_switches
        ),
        _ => String::new(),
    };
    format!(
        "{}: {} reads, {} writes and {} voluntary context switches per message, no wait calls{taken_out} — the claim of one blocking IO and one switch per message {held}.",
        r.model,
        shown(per(r.read_calls(), r.messages_total)),
        shown(per(r.write_calls(), r.messages_total)),
        shown(switches(m))
    )
}

/// How many sockets one wait call found ready: in a burst every message was queued before the
/// server could look, so the most one call returned is the walkthrough's "10,000 IOs into 1 call"
/// itself; with free-running clients, the average per call.
fn one_wait_for_many(multiplexing: &[&ModelResult]) -> Option<String> {
    let waiting: Vec<&&ModelResult> = multiplexing.iter().filter(|m| m.run.data_calls() > 0).collect();
    let burst = waiting.iter().all(|m| m.run.burst.is_some());
    let found = |m: &ModelResult| if burst { m.figure(Figure::MaxReady) } else { ready(m) };
    let best = most(waiting.iter().map(|m| **m), found)?;
    let others = waiting
        .iter()
        .filter(|m| m.run.model != best.run.model)
        .map(|m| format!("{} {}", m.run.model, shown(found(m))))
        .collect::<Vec<_>>();
    let others = if others.is_empty() { String::new() } else { format!("; {}", others.join(", ")) };
    let connections = best.run.workload.connections;
    Some(if burst {
        format!(
            "One wait for many sockets: one {} call returned {} ready sockets, of {connections} connections{others} (the most one call returned). Every round was queued whole before the server could look.",
            best.run.model,
            shown(found(best)),
        )
    } else {
        format!(
            "One wait for many sockets: {} found {} ready sockets per wait call, of {connections} connections{others}. With free-running clients a wait finds as many as sent since the last one; `iolab prove` queues every message before the server looks.",
            best.run.model,
            shown(found(best)),
        )
    })
}

/// Multiplexing batches the waiting; the reads and writes are still syscalls of their own.
fn io_per_message(multiplexing: &[&ModelResult]) -> Option<String> {
    let data: Vec<String> = multiplexing
        .iter()
        .filter(|m| m.run.data_calls() > 0)
        .map(|m| format!("{} {}", m.run.model, shown(m.figure(Figure::DataSyscallsPerMsg))))
        .collect();
    (!data.is_empty()).then(|| {
        format!(
            "The IO itself was not batched: read+write syscalls per message were {} — multiplexing saves the waiting, not the reads and writes.",
            data.join(", ")
        )
    })
}

/// A model that moves the messages with no read/write syscall at all (io_uring).
fn no_syscall_per_message(m: &ModelResult) -> Option<String> {
    if m.run.data_calls() > 0 || m.run.calls("io_uring_enter") == 0 {
        return None;
    }
    let cpu = if m.run.window.server_cpu_ns > 0 {
        format!(
            "; what it pays instead: {} µs of its own CPU per message, {} cores busy in the window",
            shown(own_cpu(m)),
            shown(cores_used(m))
        )
    } else {
        String::new()
    };
    let requests = if m.run.io_uring.submitted + m.run.io_uring.completed > 0 {
        format!(
            " (the kernel took {} requests and posted {} completions per message)",
            shown(m.figure(Figure::SqesPerMsg)),
            shown(m.figure(Figure::CqesPerMsg))
        )
    } else {
        String::new()
    };
    Some(format!(
        "{}: 0 read/write syscalls and {} syscalls per message in all, io_uring_enter included{requests}{cpu}.",
        m.run.model,
        shown(m.figure(Figure::SyscallsPerMsg)),
    ))
}

/// The blocking model that switched most against the multiplexing one that switched least.
fn fewer_switches(blocking: &[&ModelResult], multiplexing: &[&ModelResult]) -> Option<String> {
    let b = most(blocking.iter().copied(), switches)?;
    let m = most(multiplexing.iter().copied(), |m| switches(m).map(|s| -s))?;
    let (most, least) = (switches(b)?, switches(m)?);
    (least > 0.0).then(|| {
        format!(
            "Context switches: {} {} per message against {} {}, {:.0}× fewer.",
            b.run.model,
            significant(most),
            m.run.model,
            significant(least),
            most / least
        )
    })
}

/// What one wait call cost in CPU, against the fds it was handed and the fds it watched.
fn wait_call_cost(multiplexing: &[&ModelResult]) -> Option<String> {
    let parts: Vec<String> = multiplexing
        .iter()
        .filter(|m| m.run.wait.all.cpu_ns > 0 && m.run.calls("io_uring_enter") == 0)
        .map(|m| {
            format!(
                "{} {} µs ({} fds passed, {} watched)",
                m.run.model,
                shown(m.figure(Figure::WaitCpuPerCall)),
                shown(m.figure(Figure::FdsPassedPerWait)),
                shown(m.figure(Figure::FdsWatchedPerWait))
            )
        })
        .collect();
    let scanning = multiplexing.iter().any(|m| m.run.wait.all.fds_passed > 0 && m.run.calls("io_uring_enter") == 0);
    let why = if scanning {
        " select and poll are handed every fd on every call and scan them all; epoll is handed none"
    } else {
        ""
    };
    (!parts.is_empty()).then(|| {
        format!(
            "CPU inside one wait call: {}.{why} (`iolab scan` shows the cost against the number of fds).",
            parts.join(", ")
        )
    })
}

/// The price of a context switch per message, in CPU: the blocking models against epoll (or the
/// cheapest multiplexing model), from the window's own CPU time, with the NET_RX softirq on
/// their threads beside it (on loopback, the load generator's receive: about the same for every
/// design, so counting it in would shrink every ratio).
fn switching_cost(models: &[&ModelResult]) -> Option<String> {
    let measured: Vec<&ModelResult> =
        models.iter().copied().filter(|m| m.run.window.server_cpu_ns > 0 && own_cpu(m).is_some()).collect();
    let (blocking, multiplexing): (Vec<&ModelResult>, Vec<&ModelResult>) =
        measured.iter().partition(|m| m.run.wait.all.calls == 0);
    // epoll is the walkthrough's answer; without it, the cheapest multiplexing model.
    let cheapest = multiplexing
        .iter()
        .copied()
        .find(|m| m.run.model == "epoll")
        .or_else(|| most(multiplexing.iter().copied(), |m| own_cpu(m).map(|c| -c)))?;
    let cheapest_cpu = own_cpu(cheapest)?;
    let dear: Vec<&ModelResult> = blocking.iter().copied().filter(|m| switches(m).is_some_and(|s| s >= 0.5)).collect();
    let costs: Vec<String> = dear
        .iter()
        .filter_map(|m| Some((m, own_cpu(m)?, switches(m)?)))
        .map(|(m, cpu, switches)| {
            format!(
                "{} {} µs ({}×, {} switches per message)",
                m.run.model,
                significant(cpu),
                significant(cpu / cheapest_cpu),
                significant(switches)
            )
        })
        .collect();
    let net_rx: Vec<String> = dear
        .iter()
        .chain([&cheapest])
        .map(|m| format!("{} {} µs", m.run.model, shown(m.figure(Figure::NetRxPerMsg))))
        .collect();
    (!costs.is_empty()).then(|| {
        format!(
            "Server CPU of its own per message in the window: {} against {} {} µs with {} switches per message. \
             Apart, the NET_RX softirq on their threads (on loopback mostly the load generator's receive, run inside the server's sends): {}.",
            costs.join(", "),
            cheapest.run.model,
            significant(cheapest_cpu),
            shown(switches(cheapest)),
            net_rx.join(", ")
        )
    })
}

/// Cores a single thread may appear to use: one, and what sampling adds at the window's edges.
const SINGLE_CORE: f64 = 1.05;

/// A model and the cores it used in the window.
type ModelCores<'a> = (&'a ModelResult, f64);

/// Which servers ran on one thread, and so on one core at most, against those that used more.
fn cores(models: &[&ModelResult]) -> Option<String> {
    let measured: Vec<(&ModelResult, f64)> =
        models.iter().filter(|m| m.run.window.server_cpu_ns > 0).filter_map(|m| Some((*m, cores_used(m)?))).collect();
    // io_uring can run work on kernel threads of the server's own (io-wq workers) that come and
    // go between samples of the tree: a model is single-threaded by its CPU too.
    let (single, multi): (Vec<ModelCores>, Vec<ModelCores>) = measured
        .iter()
        .partition(|(m, cores)| m.run.peak_threads <= 1 && m.run.peak_processes <= 1 && *cores <= SINGLE_CORE);
    let (busiest, busiest_cores) = multi.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let most_single = single.iter().map(|(_, cores)| *cores).fold(0.0, f64::max);
    (!single.is_empty()).then(|| {
        format!(
            "One thread, one core at most: {} ran on a single thread (at most {} cores used in the window); {} used {}.",
            single.iter().map(|(m, _)| m.run.model.as_str()).collect::<Vec<_>>().join(", "),
            significant(most_single),
            busiest.run.model,
            significant(*busiest_cores)
        )
    })
}

/// How the connections were spread over a server's epoll instances (one per thread in the
/// per-core design), when it had several.
fn epoll_spread(m: &ModelResult) -> Option<String> {
    let lists = &m.run.epoll_lists;
    (lists.len() > 1).then(|| {
        let sizes: Vec<String> = lists.iter().map(u64::to_string).collect();
        format!(
            "{}: {} epoll instances watched {} fds — how the kernel spread the connections over its loops; {} cores used.",
            m.run.model,
            lists.len(),
            sizes.join(", "),
            shown(cores_used(m))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_measure::result::{RunResult, Window};

    /// A model's result from its counts alone (no spread: each figure is computed from the run).
    fn model(name: &str, messages: u64, syscalls: &[(&str, u64)], edit: impl FnOnce(&mut RunResult)) -> ModelResult {
        let mut run = RunResult { model: name.into(), messages_total: messages, ..RunResult::default() };
        run.workload.connections = 100;
        for &(call, n) in syscalls {
            run.syscalls.insert(call.into(), n);
        }
        edit(&mut run);
        ModelResult { run, runs: 1, spread: Default::default() }
    }

    fn blocking(name: &str, voluntary: u64) -> ModelResult {
        model(name, 1000, &[("read", 1000), ("write", 1000)], |r| r.context_switches.voluntary = voluntary)
    }

    #[test]
    fn one_switch_per_message_holds_from_one_in_two() {
        assert!(blocking_claim(&blocking("thread", 1000)).ends_with("one switch per message holds."));
        assert!(blocking_claim(&blocking("thread", 500)).ends_with("holds."), "the boundary: 0.5 per message");
        assert!(blocking_claim(&blocking("thread", 499)).ends_with("does not hold here."));
    }

    #[test]
    fn switches_the_holds_forced_are_named_beside_the_claim() {
        let held = model("thread", 3000, &[("read", 3000), ("write", 3000)], |r| {
            r.context_switches.voluntary = 3000;
            r.burst = Some(lab_measure::burst::Burst { rounds: 3, forced_switches: 27_003, ..Default::default() });
        });
        let line = blocking_claim(&held);
        assert!(
            line.contains("1.00 voluntary context switches per message, no wait calls (27003 more switches, of threads the lab's holds woke with nothing to serve, taken out with their CPU) — the claim"),
            "{line}"
        );
        assert!(line.ends_with("holds."), "{line}");
        assert!(!blocking_claim(&blocking("thread", 1000)).contains("holds woke"), "no burst, nothing to name");
    }

    #[test]
    fn a_blocking_model_that_served_nothing_is_not_judged() {
        let idle = model("thread", 0, &[("read", 10)], |r| r.context_switches.voluntary = 0);
        let line = blocking_claim(&idle);
        assert!(line.ends_with("cannot be judged: no message was served."), "{line}");
        assert!(line.contains("– reads, – writes and – voluntary"), "{line}");
    }

    #[test]
    fn the_io_sentence_quotes_every_model_as_its_table_does() {
        let poll = model("poll", 1000, &[("recvfrom", 1000), ("sendto", 1000)], |r| r.wait.all.stats.calls = 10);
        let et = model("epoll-et", 1000, &[("recvfrom", 2000), ("sendto", 1000)], |r| r.wait.all.stats.calls = 10);
        let line = io_per_message(&[&poll, &et]).unwrap();
        assert!(line.contains("poll 2.00, epoll-et 3.00"), "{line}");
    }

    #[test]
    fn switching_cost_is_against_epoll_when_it_ran() {
        let window = |cpu_ns: u64| {
            let mut window =
                Window { seconds: 1.0, server_cpu_ns: cpu_ns, own_cpu_ns: Some(cpu_ns / 2), ..Window::default() };
            window.softirq_ns.net_rx = cpu_ns / 2;
            window
        };
        let thread = model("thread", 1000, &[], |r| {
            r.context_switches.voluntary = 1000;
            r.window = window(30_000_000);
        });
        let epoll = model("epoll", 1000, &[], |r| {
            r.wait.all.stats.calls = 10;
            r.window = window(10_000_000);
        });
        let uring = model("io-uring", 1000, &[], |r| {
            r.wait.all.stats.calls = 10;
            r.window = window(5_000_000);
        });
        let line = switching_cost(&[&thread, &uring, &epoll]).unwrap();
        assert_eq!(
            line,
            "Server CPU of its own per message in the window: thread 15.0 µs (3.00×, 1.00 switches per message) against epoll 5.00 µs with 0 switches per message. Apart, the NET_RX softirq on their threads (on loopback mostly the load generator's receive, run inside the server's sends): thread 15.0 µs, epoll 5.00 µs."
        );
    }

    #[test]
    fn cores_name_the_single_threaded_models() {
        let window = Window { seconds: 1.0, server_cpu_ns: 900_000_000, ..Window::default() };
        let epoll = model("epoll", 1000, &[], |r| (r.peak_threads, r.peak_processes, r.window) = (1, 1, window));
        let wide = Window { seconds: 1.0, server_cpu_ns: 1_800_000_000, ..Window::default() };
        let reuseport =
            model("epoll-reuseport", 1000, &[], |r| (r.peak_threads, r.peak_processes, r.window) = (2, 1, wide));
        let line = cores(&[&epoll, &reuseport]).unwrap();
        assert_eq!(
            line,
            "One thread, one core at most: epoll ran on a single thread (at most 0.900 cores used in the window); epoll-reuseport used 1.80."
        );
    }
}
