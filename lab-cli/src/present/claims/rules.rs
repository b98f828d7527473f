//! One function per claim: the figures it rests on, and the rule that gives its verdict.

use super::{Claim, Evidence, Verdict};
use crate::{present::numbers::significant, results::document::ModelResult, results::figures};

/// A figure of a result as its table shows it (median over runs).
fn figure(m: &ModelResult, key: &str) -> f64 {
    m.spread.get(key).map_or_else(|| figures::figure(key).map_or(0.0, |f| (f.value)(&m.run)), |s| s.median)
}

fn find<'a>(results: &'a [ModelResult], model: &str) -> Option<&'a ModelResult> {
    results.iter().find(|m| m.run.model == model)
}

fn pss(m: &ModelResult) -> f64 {
    figure(m, "pss_kib_per_conn")
}

fn cpu(m: &ModelResult) -> f64 {
    figure(m, "window_cpu_us_per_msg")
}

fn switches(m: &ModelResult) -> f64 {
    figure(m, "voluntary_cs_per_msg")
}

fn row(id: &str, claim: &str, command: &str, measured: String, verdict: Verdict, because: &str) -> Claim {
    Claim { id: id.into(), claim: claim.into(), command: command.into(), measured, verdict, because: because.into() }
}

fn missing(id: &str, claim: &str, command: &str, what: &str) -> Claim {
    row(id, claim, command, format!("{what} did not run"), Verdict::NotTested, "a run it needs is missing")
}

/// 1. A process per connection costs a lot, and the OS limits how many.
pub fn process_memory(e: &Evidence) -> Claim {
    let claim = "A process per connection costs a lot of resources; the OS limits how many";
    let (Some(process), Some(epoll)) = (find(e.compare, "process"), find(e.compare, "epoll")) else {
        return missing("1", claim, &e.compare_command, "process or epoll");
    };
    let ratio = pss(process) / pss(epoll).max(f64::MIN_POSITIVE);
    let measured = format!(
        "memory (PSS) per connection: process {} KiB, epoll {} KiB ({}×); at most {} tasks here",
        significant(pss(process)),
        significant(pss(epoll)),
        significant(ratio),
        e.limits.max_tasks()
    );
    row("1", claim, &e.compare_command, measured, Verdict::of_ratio(ratio), "10× epoll's memory per connection holds")
}

/// 2. A thread costs less than a process, but switching between threads costs performance.
pub fn thread_cost(e: &Evidence) -> Claim {
    let claim = "A thread per connection costs less than a process, but switching costs performance";
    let (Some(thread), Some(process), Some(epoll)) =
        (find(e.compare, "thread"), find(e.compare, "process"), find(e.compare, "epoll"))
    else {
        return missing("2", claim, &e.compare_command, "thread, process or epoll");
    };
    let cheaper = pss(thread) < pss(process);
    let dearer = switches(thread) >= 0.5 && cpu(thread) >= 1.2 * cpu(epoll);
    let measured = format!(
        "PSS per connection thread {} KiB vs process {} KiB ({} KiB stacks); CPU per message thread {} µs with {} switches vs epoll {} µs",
        significant(pss(thread)),
        significant(pss(process)),
        e.limits.thread_stack_kib,
        significant(cpu(thread)),
        significant(switches(thread)),
        significant(cpu(epoll))
    );
    let because = "less memory than a process, and ≥ 1.2× epoll's CPU per message with ≥ 0.5 switches";
    row("2", claim, &e.compare_command, measured, Verdict::of_parts(&[cheaper, dearer]), because)
}

/// 3. Coroutines use the fewest resources, can beat threads, but use one CPU.
pub fn coroutines(e: &Evidence) -> Claim {
    let claim = "Coroutines use the fewest resources, are sometimes faster than threads, but use one CPU";
    let (Some(co), Some(thread), Some(process)) =
        (find(e.compare, "coroutine"), find(e.compare, "thread"), find(e.compare, "process"))
    else {
        return missing("3", claim, &e.compare_command, "coroutine, thread or process");
    };
    let fewest = pss(co) <= pss(thread).min(pss(process));
    let faster_at = |results: &[ModelResult]| match (find(results, "coroutine"), find(results, "thread")) {
        (Some(c), Some(t)) => Some((figure(c, "msgs_per_sec"), figure(t, "msgs_per_sec"))),
        _ => None,
    };
    let speeds: Vec<(f64, f64)> = [faster_at(e.compare), faster_at(e.large)].into_iter().flatten().collect();
    let faster = speeds.iter().any(|(c, t)| c >= t);
    let one_core = co.run.peak_threads <= 1 && figure(co, "cores_used") <= 1.05;
    let speeds_text: Vec<String> =
        speeds.iter().map(|(c, t)| format!("{} vs {}", significant(*c), significant(*t))).collect();
    let measured = format!(
        "PSS per connection coroutine {} KiB (thread {}, process {}); msg/s coroutine vs thread {}; coroutine: {} thread, {} cores used",
        significant(pss(co)),
        significant(pss(thread)),
        significant(pss(process)),
        speeds_text.join(", then "),
        co.run.peak_threads,
        significant(figure(co, "cores_used"))
    );
    let because = "fewest KiB per connection; at least as fast as threads at one size; one thread, ≤ 1.05 cores";
    row("3", claim, &e.compare_command, measured, Verdict::of_parts(&[fewest, faster, one_core]), because)
}

/// 4. The blocking designs make one IO syscall per connection, with a large switching cost.
pub fn one_syscall_per_connection(e: &Evidence) -> Claim {
    let claim = "With N connections the blocking designs make N IO syscalls, at a large switching cost";
    let (Some(thread), Some(epoll)) = (find(e.burst, "thread"), find(e.burst, "epoll")) else {
        return missing("4", claim, &e.burst_command, "thread or epoll");
    };
    let reads = figure(thread, "data_syscalls_per_msg") / 2.0;
    let calls = reads >= 0.99 && switches(thread) >= 0.5;
    let large = cpu(thread) >= 1.5 * cpu(epoll);
    let measured = format!(
        "thread: {} reads and {} switches per message, {} µs CPU per message vs epoll {} µs ({}×); one syscall costs {} ns here",
        significant(reads),
        significant(switches(thread)),
        significant(cpu(thread)),
        significant(cpu(epoll)),
        significant(cpu(thread) / cpu(epoll).max(f64::MIN_POSITIVE)),
        significant(e.syscall_ns)
    );
    let because = "one read and one switch per message; large: ≥ 1.5× epoll's CPU per message";
    row("4", claim, &e.burst_command, measured, Verdict::of_parts(&[calls, large]), because)
}

/// 5a. select's 1024 limit can be changed.
pub fn select_limit(e: &Evidence) -> Claim {
    let claim = "select's limit of 1024 connections can be changed";
    let Some(select) = e.select_wide else {
        return missing("5a", claim, &e.select_command, "select past 1024 fds");
    };
    let kernel = select.run.errors == 0 && figure(select, "fds_watched_per_wait_call") > 1024.0;
    let python = match &e.python_select {
        Ok(p) => format!(
            "Python's SelectSelector at {} connections: {} of {} messages answered, {} errors",
            p.run.workload.connections,
            p.run.messages_total,
            p.run.workload.connections * p.run.workload.messages_per_connection,
            p.run.errors
        ),
        Err(why) => format!("Python's SelectSelector not run: {why}"),
    };
    let python_refused = e.python_select.as_ref().is_ok_and(|p| p.run.errors > 0);
    let measured = format!(
        "the select model served {} connections ({} fds watched per call, {} errors); {python}",
        select.run.workload.connections,
        significant(figure(select, "fds_watched_per_wait_call")),
        select.run.errors
    );
    // The kernel has no limit to change; the 1024 is FD_SETSIZE, compiled into the C library's
    // fd_set and into Python: it holds in part when both halves are seen.
    let verdict = match (kernel, python_refused) {
        (true, true) => Verdict::HoldsInPart,
        (true, false) => Verdict::Holds,
        _ => Verdict::DoesNotHold,
    };
    let because = "the kernel takes any nfds; FD_SETSIZE (1024) is fixed in libc's fd_set and Python";
    row("5a", claim, &e.select_command, measured, verdict, because)
}

/// 5b. poll has no limit, because it is based on a linked list.
pub fn poll_limit(e: &Evidence) -> Claim {
    let claim = "poll has no limit: it is based on a linked list";
    let command = "iolab claims (poll with RLIMIT_NOFILE + 1 entries)";
    let nofile = e.limits.open_files.0;
    let (verdict, measured) = match e.poll_beyond_limit {
        Some(errno) if errno == libc::EINVAL => {
            (Verdict::DoesNotHold, format!("poll over {} entries (RLIMIT_NOFILE + 1) failed with EINVAL", nofile + 1))
        }
        Some(errno) => (Verdict::NotTested, format!("poll over {} entries failed with errno {errno}", nofile + 1)),
        None => (Verdict::Holds, format!("poll over {} entries (RLIMIT_NOFILE + 1) succeeded", nofile + 1)),
    };
    let because = "its limit is RLIMIT_NOFILE; the API is an array, copied into page-sized chunks inside";
    row("5b", claim, command, measured, verdict, because)
}

/// 6. select and poll turn N IOs into one call.
pub fn one_call(e: &Evidence) -> Claim {
    let claim = "select and poll turn N IOs into one call";
    let Some(poll) = find(e.burst, "poll") else {
        return missing("6", claim, &e.burst_command, "poll");
    };
    let n = poll.run.workload.connections as f64;
    let one_wait = figure(poll, "max_ready") >= n;
    let io = figure(poll, "data_syscalls_per_msg");
    let measured = format!(
        "one poll call returned {} ready sockets of {}; then {} read+write syscalls per message",
        significant(figure(poll, "max_ready")),
        significant(n),
        significant(io)
    );
    let verdict = match (one_wait, io < 0.5) {
        (true, true) => Verdict::Holds,
        (true, false) => Verdict::HoldsInPart,
        _ => Verdict::DoesNotHold,
    };
    row("6", claim, &e.burst_command, measured, verdict, "one wait for all N, but the reads and writes stay one each")
}

/// 7. Their cost: the whole array handed over and walked on every call.
pub fn scan_cost(e: &Evidence) -> Claim {
    let claim = "select and poll hand over and walk the whole array on every call";
    let points = |model: &'static str| e.scan.iter().filter(move |p| p.model == model);
    let (Some(small), Some(large)) = (points("poll").min_by_key(|p| p.fds), points("poll").max_by_key(|p| p.fds))
    else {
        return missing("7", claim, &e.scan_command, "poll's scan");
    };
    if small.fds == large.fds {
        return missing("7", claim, &e.scan_command, "a second size of poll's scan");
    }
    let ratio = large.cpu_ns_per_wait / small.cpu_ns_per_wait.max(f64::MIN_POSITIVE);
    let fds = large.fds as f64 / small.fds as f64;
    let epoll = match (points("epoll").min_by_key(|p| p.fds), points("epoll").max_by_key(|p| p.fds)) {
        (Some(s), Some(l)) => {
            format!("; epoll {} → {} µs", significant(s.cpu_ns_per_wait / 1e3), significant(l.cpu_ns_per_wait / 1e3))
        }
        _ => String::new(),
    };
    let measured = format!(
        "CPU per poll call with one fd ready: {} µs at {} fds, {} µs at {} ({}× for {}× the fds){epoll}",
        significant(small.cpu_ns_per_wait / 1e3),
        small.fds,
        significant(large.cpu_ns_per_wait / 1e3),
        large.fds,
        significant(ratio),
        significant(fds)
    );
    let verdict = if ratio >= fds / 10.0 {
        Verdict::Holds
    } else if ratio >= 2.0 {
        Verdict::HoldsInPart
    } else {
        Verdict::DoesNotHold
    };
    let because = "CPU per call grows at least a tenth as fast as the fds (in part: at least 2×)";
    row("7", claim, &e.scan_command, measured, verdict, because)
}

/// 8. epoll registers each fd once, a kernel thread watches, user space walks the active ones.
pub fn epoll_claim(e: &Evidence) -> Claim {
    let claim = "epoll registers each fd once, the kernel starts a thread to watch, only the active are walked";
    let Some(epoll) = find(e.compare, "epoll") else {
        return missing("8", claim, &e.compare_command, "epoll");
    };
    let per_connection = epoll.run.calls("epoll_ctl") as f64 / epoll.run.workload.connections as f64;
    let once = per_connection <= 1.0 + 1.0 / epoll.run.workload.connections as f64;
    let nothing_passed = epoll.run.wait.all.fds_passed == 0;
    let no_thread = epoll.run.peak_threads <= 1;
    let measured = format!(
        "{} epoll_ctl per connection, {} fds passed per wait, {} ready of {} watched; peak threads {}",
        significant(per_connection),
        significant(figure(epoll, "fds_passed_per_wait_call")),
        significant(figure(epoll, "ready_per_wait_call")),
        significant(figure(epoll, "fds_watched_per_wait_call")),
        epoll.run.peak_threads
    );
    // Two parts hold when registered once and nothing passed; the thread is not there.
    let verdict = Verdict::of_parts(&[once && nothing_passed, !no_thread]);
    let because =
        "registered once and handed nothing per call; no extra thread: the waker's callback fills the ready list";
    row("8", claim, &e.compare_command, measured, verdict, because)
}
