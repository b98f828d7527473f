//! One function per claim: the figures it rests on, and the rule that gives its verdict.
//!
//! A figure that was not measured is `None` (written `–`): a rule that needs it gives
//! "not tested" (see [`judged`]), never a verdict on a 0.

use super::{Claim, Evidence, PythonSelect, Verdict};
use crate::{
    present::numbers::{significant, significant_or_missing as shown},
    results::{document::ModelResult, figures::Figure},
};

fn find<'a>(results: &'a [ModelResult], model: &str) -> Option<&'a ModelResult> {
    results.iter().find(|m| m.run.model == model)
}

fn pss(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::PssPerConn)
}

/// CPU per message that is the design's own: the window's, less the interrupts on its threads
/// (on loopback mostly the load generator's receive, the same for every design).
fn cpu(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::OwnCpuPerMsg)
}

/// NET_RX per message on the server's threads: the peer's network work, shown beside `cpu`.
fn net_rx(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::NetRxPerMsg)
}

fn switches(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::VoluntaryCsPerMsg)
}

fn rate(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::MsgsPerSec)
}

fn cores(m: &ModelResult) -> Option<f64> {
    m.figure(Figure::CoresUsed)
}

/// `a / b` with a floor under `b`, when both were measured.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    all([a, b]).map(|[a, b]| a / b.max(f64::MIN_POSITIVE))
}

/// Every value, when every one was measured.
fn all<const N: usize>(values: [Option<f64>; N]) -> Option<[f64; N]> {
    let mut measured = [0.0; N];
    for (slot, value) in measured.iter_mut().zip(values) {
        *slot = value?;
    }
    Some(measured)
}

/// [`Verdict::of_parts`] when every part could be judged; `None` when a figure was missing.
fn of_parts(held: &[Option<bool>]) -> Option<Verdict> {
    let held: Option<Vec<bool>> = held.iter().copied().collect();
    Some(Verdict::of_parts(&held?))
}

fn row(id: &str, claim: &str, command: &str, measured: String, verdict: Verdict, because: &str) -> Claim {
    Claim { id: id.into(), claim: claim.into(), command: command.into(), measured, verdict, because: because.into() }
}

/// A row whose verdict rests on figures that may not have been measured: `None` is not tested.
fn judged(id: &str, claim: &str, command: &str, measured: String, verdict: Option<Verdict>, because: &str) -> Claim {
    match verdict {
        Some(verdict) => row(id, claim, command, measured, verdict, because),
        None => row(id, claim, command, measured, Verdict::NotTested, "a figure it needs was not measured (–)"),
    }
}

/// The line of a server's last output that says what went wrong (a Python exception's last line).
fn last_words(reason: &str) -> &str {
    reason.rsplit(" | ").next().unwrap_or(reason).trim()
}

/// A Python server's figure: its name, how to read the figure, and the unit.
type PythonFigure<'a> = (&'a str, fn(&ModelResult) -> Option<f64>, &'a str);

/// The walkthrough's own (Python) servers' figures, `; Python: py-gevent 244 KiB, …`, or why
/// they did not run; nothing when none was asked for.
fn python(e: &Evidence, figures: &[PythonFigure]) -> String {
    let mut parts = Vec::new();
    for (name, value, unit) in figures {
        match (find(e.compare, name), e.python_not_run.iter().find(|n| n.model == *name)) {
            (Some(m), _) => parts.push(format!("{name} {} {unit}", shown(value(m)))),
            (None, Some(not_run)) => parts.push(format!("{name} did not run ({})", last_words(&not_run.reason))),
            (None, None) => {}
        }
    }
    if parts.is_empty() { String::new() } else { format!("; Python: {}", parts.join(", ")) }
}

fn missing(id: &str, claim: &str, command: &str, what: &str) -> Claim {
    row(id, claim, command, format!("{what} did not run"), Verdict::NotTested, "a run it needs is missing")
}

/// The comparisons by size: small, main, large.
fn sizes<'a>(e: &Evidence<'a>) -> [&'a [ModelResult]; 3] {
    [e.small, e.compare, e.large]
}

/// A figure of `model` at each size it ran at, with its connections.
fn at_sizes(e: &Evidence, model: &str, value: fn(&ModelResult) -> Option<f64>) -> Vec<(usize, Option<f64>)> {
    sizes(e)
        .into_iter()
        .filter_map(|results| find(results, model))
        .map(|m| (m.run.workload.connections, value(m)))
        .collect()
}

/// Models `a` and `b` at each size both ran at, with the connections.
fn side_by_side<'a>(e: &Evidence<'a>, a: &str, b: &str) -> Vec<(usize, &'a ModelResult, &'a ModelResult)> {
    sizes(e)
        .into_iter()
        .filter_map(|results| Some((find(results, a)?, find(results, b)?)))
        .map(|(x, y)| (x.run.workload.connections, x, y))
        .collect()
}

/// `41.0 KiB at 1000, 40.1 at 10000`: a figure at each size.
fn sizes_text(sizes: &[(usize, Option<f64>)], unit: &str) -> String {
    let parts: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, (n, v))| format!("{}{} at {n}", shown(*v), if i == 0 { unit } else { "" }))
        .collect();
    parts.join(", ")
}

/// Which designs and servers of the large comparison served every connection without an error.
fn reached(e: &Evidence) -> String {
    let Some(first) = e.large.first() else { return String::new() };
    let n = first.run.workload.connections;
    let failed: Vec<String> = e
        .large
        .iter()
        .filter(|m| m.run.errors > 0)
        .map(|m| format!("{}: {}", m.run.model, m.run.error_kinds.describe()))
        .collect();
    if failed.is_empty() {
        format!("; all {} designs and servers served {n} connections without an error", e.large.len())
    } else {
        format!(
            "; at {n} connections {} of {} served without an error ({})",
            e.large.len() - failed.len(),
            e.large.len(),
            failed.join(", ")
        )
    }
}

/// 1. A process per connection costs a lot, and the OS limits how many.
pub fn process_memory(e: &Evidence) -> Claim {
    let claim = "A process per connection costs a lot of resources; the OS limits how many";
    if find(e.compare, "process").is_none() || find(e.compare, "epoll").is_none() {
        return missing("1", claim, &e.compare_command, "process or epoll");
    }
    // Memory per connection at each size both ran at; the verdict takes the smallest ratio.
    let pairs = side_by_side(e, "process", "epoll");
    let ratio_of = |process: &ModelResult, epoll: &ModelResult| ratio(pss(process), pss(epoll));
    // The smallest ratio of the sizes where both were measured.
    let smallest = pairs.iter().filter_map(|(_, p, ep)| ratio_of(p, ep)).reduce(f64::min);
    let at: Vec<String> = pairs
        .iter()
        .map(|(n, p, ep)| format!("{} vs {} KiB at {n} ({}×)", shown(pss(p)), shown(pss(ep)), shown(ratio_of(p, ep))))
        .collect();
    let measured = format!(
        "memory (PSS) per connection, process vs epoll: {}{}; at most {} tasks here",
        at.join(", "),
        reached(e),
        e.limits.max_tasks()
    );
    let python = ["py-process", "py-selectors"]
        .iter()
        .filter_map(|name| {
            let sizes = at_sizes(e, name, pss);
            (!sizes.is_empty()).then(|| format!("{name} {}", sizes_text(&sizes, " KiB")))
        })
        .collect::<Vec<_>>();
    let python = if python.is_empty() { String::new() } else { format!("; Python: {}", python.join("; ")) };
    let command = if e.large.is_empty() { &e.compare_command } else { &e.large_command };
    let because = "10× epoll's memory per connection at every size holds";
    judged("1", claim, command, measured + &python, smallest.map(Verdict::of_ratio), because)
}

/// 2. A thread costs less than a process, but switching between threads costs performance.
pub fn thread_cost(e: &Evidence) -> Claim {
    let claim = "A thread per connection costs less than a process, but switching costs performance";
    let (Some(thread), Some(process), Some(epoll)) =
        (find(e.compare, "thread"), find(e.compare, "process"), find(e.compare, "epoll"))
    else {
        return missing("2", claim, &e.compare_command, "thread, process or epoll");
    };
    let cheaper = all([pss(thread), pss(process)]).map(|[thread, process]| thread < process);
    let dearer = all([switches(thread), cpu(thread), cpu(epoll)])
        .map(|[switches, thread, epoll]| switches >= 0.5 && thread >= 1.2 * epoll);
    let measured = format!(
        "PSS per connection thread {} vs process {} ({} KiB stacks); own CPU per message thread {} µs with {} switches vs epoll {} µs",
        sizes_text(&at_sizes(e, "thread", pss), " KiB"),
        sizes_text(&at_sizes(e, "process", pss), " KiB"),
        e.limits.thread_stack_kib,
        shown(cpu(thread)),
        shown(switches(thread)),
        shown(cpu(epoll))
    );
    let python = match find(e.large, "py-thread") {
        Some(p) => format!(
            "; Python's thread server at {}{}: {} msg/s, {} syscalls and {} switches per message",
            p.run.workload.connections,
            if p.run.errors > 0 { format!(" (load errors: {})", p.run.error_kinds.describe()) } else { String::new() },
            shown(rate(p)),
            shown(p.figure(Figure::SyscallsPerMsg)),
            shown(switches(p))
        ),
        None => String::new(),
    };
    let because = "less memory than a process, and ≥ 1.2× epoll's own CPU per message with ≥ 0.5 switches";
    judged("2", claim, &e.compare_command, measured + &python, of_parts(&[cheaper, dearer]), because)
}

/// 3. Coroutines use the fewest resources, can beat threads, but use one CPU.
pub fn coroutines(e: &Evidence) -> Claim {
    let claim = "Coroutines use the fewest resources, are sometimes faster than threads, but use one CPU";
    let (Some(co), Some(thread), Some(process)) =
        (find(e.compare, "coroutine"), find(e.compare, "thread"), find(e.compare, "process"))
    else {
        return missing("3", claim, &e.compare_command, "coroutine, thread or process");
    };
    let fewest = all([pss(co), pss(thread), pss(process)]).map(|[co, thread, process]| co <= thread.min(process));
    // Throughput and CPU per message, coroutine against thread, at each size both ran at; the
    // sizes where either rate is missing are left out.
    let against = side_by_side(e, "coroutine", "thread");
    let rates: Vec<bool> =
        against.iter().filter_map(|(_, c, t)| all([rate(c), rate(t)])).map(|[co, thread]| co >= thread).collect();
    let faster = (!rates.is_empty()).then(|| rates.contains(&true));
    let against_text: Vec<String> = against
        .iter()
        .map(|(n, c, t)| {
            format!(
                "{} vs {} msg/s and {} vs {} µs own CPU per message at {n}",
                shown(rate(c)),
                shown(rate(t)),
                shown(cpu(c)),
                shown(cpu(t))
            )
        })
        .collect();
    let one_core = cores(co).map(|cores| co.run.peak_threads <= 1 && cores <= 1.05);
    let multi = match find(e.compare, "coroutine-mt") {
        Some(mt) => {
            format!(" (coroutine-mt, a worker per CPU: {} threads, {} cores)", mt.run.peak_threads, shown(cores(mt)))
        }
        None => String::new(),
    };
    let measured = format!(
        "PSS per connection coroutine {} KiB (thread {}, process {}); coroutine vs thread: {}; coroutine: {} thread, {} cores used{multi}",
        shown(pss(co)),
        shown(pss(thread)),
        shown(pss(process)),
        against_text.join("; "),
        co.run.peak_threads,
        shown(cores(co))
    );
    let measured = measured
        + &python(
            e,
            &[
                ("py-gevent", pss, "KiB"),
                ("py-thread", pss, "KiB"),
                ("py-gevent", rate, "msg/s"),
                ("py-thread", rate, "msg/s"),
                ("py-gevent", cores, "cores"),
            ],
        );
    let because = "fewest KiB per connection; at least as fast as threads at one size; one thread, ≤ 1.05 cores";
    judged("3", claim, &e.compare_command, measured, of_parts(&[fewest, faster, one_core]), because)
}

/// 4. The blocking designs make one IO syscall per connection, with a large switching cost.
pub fn one_syscall_per_connection(e: &Evidence) -> Claim {
    let claim = "With N connections the blocking designs make N IO syscalls, at a large switching cost";
    let (Some(thread), Some(epoll)) = (find(e.burst, "thread"), find(e.burst, "epoll")) else {
        return missing("4", claim, &e.burst_command, "thread or epoll");
    };
    let reads = thread.figure(Figure::DataSyscallsPerMsg).map(|calls| calls / 2.0);
    let calls = all([reads, switches(thread)]).map(|[reads, switches]| reads >= 0.99 && switches >= 0.5);
    let large = all([cpu(thread), cpu(epoll)]).map(|[thread, epoll]| thread >= 1.5 * epoll);
    let measured = format!(
        "thread: {} reads and {} switches per message, {} µs own CPU per message vs epoll {} µs ({}×), with the load generator's receive (NET_RX) beside it: thread {} µs, epoll {} µs; one syscall costs {} ns here",
        shown(reads),
        shown(switches(thread)),
        shown(cpu(thread)),
        shown(cpu(epoll)),
        shown(ratio(cpu(thread), cpu(epoll))),
        shown(net_rx(thread)),
        shown(net_rx(epoll)),
        significant(e.syscall_ns)
    );
    let because = "one read and one switch per message; large: ≥ 1.5× epoll's own CPU per message";
    judged("4", claim, &e.burst_command, measured, of_parts(&[calls, large]), because)
}

/// 5a. select's 1024 limit can be changed.
pub fn select_limit(e: &Evidence) -> Claim {
    let claim = "select's limit of 1024 connections can be changed";
    let Some(select) = e.select_wide else {
        return missing("5a", claim, &e.select_command, "select past 1024 fds");
    };
    let watched = select.figure(Figure::FdsWatchedPerWait);
    let kernel = watched.map(|fds| select.run.errors == 0 && fds > 1024.0);
    let (python, python_refused) = match &e.python_select {
        PythonSelect::Served(p) => (
            format!("Python's SelectSelector at {} connections: {} errors", p.run.workload.connections, p.run.errors),
            p.run.errors > 0,
        ),
        PythonSelect::Refused(why) => (format!("Python's SelectSelector refused: {}", last_words(why)), true),
        PythonSelect::NotRun(why) => (format!("Python's SelectSelector not run: {why}"), false),
    };
    let measured = format!(
        "the select model served {} connections ({} fds watched per call, {} errors); {python}",
        select.run.workload.connections,
        shown(watched),
        select.run.errors
    );
    // The kernel has no limit to change; the 1024 is FD_SETSIZE, compiled into the C library's
    // fd_set and into Python: it holds in part when both halves are seen.
    let verdict = kernel.map(|kernel| match (kernel, python_refused) {
        (true, true) => Verdict::HoldsInPart,
        (true, false) => Verdict::Holds,
        _ => Verdict::DoesNotHold,
    });
    let because = "the kernel takes any nfds; FD_SETSIZE (1024) is fixed in libc's fd_set and Python";
    judged("5a", claim, &e.select_command, measured, verdict, because)
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
    let (max_ready, io) = (poll.figure(Figure::MaxReady), poll.figure(Figure::DataSyscallsPerMsg));
    let measured = format!(
        "one poll call returned {} ready sockets of {}; then {} read+write syscalls per message",
        shown(max_ready),
        significant(n),
        shown(io)
    );
    let verdict = all([max_ready, io]).map(|[max_ready, io]| match (max_ready >= n, io < 0.5) {
        (true, true) => Verdict::Holds,
        (true, false) => Verdict::HoldsInPart,
        _ => Verdict::DoesNotHold,
    });
    let because = "one wait for all N, but the reads and writes stay one each";
    judged("6", claim, &e.burst_command, measured, verdict, because)
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
        shown(epoll.figure(Figure::FdsPassedPerWait)),
        shown(epoll.figure(Figure::ReadyPerWait)),
        shown(epoll.figure(Figure::FdsWatchedPerWait)),
        epoll.run.peak_threads
    );
    // Two parts hold when registered once and nothing passed; the thread is not there.
    let verdict = Verdict::of_parts(&[once && nothing_passed, !no_thread]);
    let because =
        "registered once and handed nothing per call; no extra thread: the waker's callback fills the ready list";
    row("8", claim, &e.compare_command, measured, verdict, because)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{scan::ScanRow, stats::Summary};
    use lab_measure::{machine::MachineLimits, result::RunResult};

    /// A result whose figures are the given medians; its run served no message, so every
    /// other per-message figure is missing.
    fn result(model: &str, figures: &[(Figure, f64)]) -> ModelResult {
        let run = RunResult { model: model.into(), ..RunResult::default() };
        let mut result = ModelResult { run, runs: 1, spread: Default::default() };
        set(&mut result, figures);
        result
    }

    /// Gives `result` these figures' medians.
    fn set(result: &mut ModelResult, figures: &[(Figure, f64)]) {
        for &(f, v) in figures {
            result.spread.insert(f.key().to_owned(), Summary { median: v, min: v, max: v });
        }
    }

    /// A scan point of `model` at `fds` whose calls cost `ns` each.
    fn point(model: &str, fds: usize, ns: u64) -> ScanRow {
        let mut run = RunResult { model: model.into(), ..RunResult::default() };
        run.workload.idle = fds - 1;
        run.workload.connections = 1;
        (run.wait.all.stats.calls, run.wait.all.stats.cpu_ns) = (10, 10 * ns);
        ScanRow::from_runs(&[run])
    }

    fn evidence<'a>(compare: &'a [ModelResult], burst: &'a [ModelResult], scan: &'a [ScanRow]) -> Evidence<'a> {
        Evidence {
            compare,
            compare_command: String::new(),
            large: &[],
            large_command: String::new(),
            small: &[],
            burst,
            burst_command: String::new(),
            select_wide: None,
            python_select: PythonSelect::NotRun(String::new()),
            python_not_run: &[],
            select_command: String::new(),
            poll_beyond_limit: None,
            scan,
            scan_command: String::new(),
            limits: MachineLimits::default(),
            syscall_ns: 0.0,
        }
    }

    #[test]
    fn process_memory_is_judged_by_its_ratio_to_epoll() {
        let with = |process: f64| {
            let compare =
                [result("process", &[(Figure::PssPerConn, process)]), result("epoll", &[(Figure::PssPerConn, 5.0)])];
            process_memory(&evidence(&compare, &[], &[])).verdict
        };
        assert_eq!(with(50.0), Verdict::Holds, "10× at the boundary");
        assert_eq!(with(49.0), Verdict::HoldsInPart);
        assert_eq!(with(9.0), Verdict::DoesNotHold);
    }

    #[test]
    fn process_memory_is_not_judged_on_a_memory_that_was_not_measured() {
        let compare = [result("process", &[(Figure::PssPerConn, 40.0)]), result("epoll", &[])];
        let claim = process_memory(&evidence(&compare, &[], &[]));
        assert_eq!(claim.verdict, Verdict::NotTested, "no 0 KiB for epoll, no endless ratio: {}", claim.measured);
        assert!(claim.measured.contains("40.0 vs – KiB at 0 (–×)"), "{}", claim.measured);
        assert!(claim.because.contains("not measured"), "{}", claim.because);
    }

    #[test]
    fn process_memory_takes_the_smaller_ratio_and_names_who_was_not_served() {
        let at = |n: usize, process: f64, epoll: f64| {
            let mut results =
                [result("process", &[(Figure::PssPerConn, process)]), result("epoll", &[(Figure::PssPerConn, epoll)])];
            results.iter_mut().for_each(|r| r.run.workload.connections = n);
            results
        };
        let compare = at(1000, 40.0, 4.0);
        let mut large = at(10_000, 40.0, 1.0).to_vec();
        let mut py = result("py-thread", &[]);
        (py.run.workload.connections, py.run.errors, py.run.error_kinds.timeout) = (10_000, 9829, 9829);
        large.push(py);
        let claim = process_memory(&Evidence { large: &large, ..evidence(&compare, &[], &[]) });
        assert_eq!(claim.verdict, Verdict::Holds, "10× at 1000, 40× at 10000: {}", claim.measured);
        assert!(
            claim.measured.contains("2 of 3 served without an error (py-thread: 9829 timeout)"),
            "{}",
            claim.measured
        );
        let small = at(10_000, 40.0, 5.0);
        let claim = process_memory(&Evidence { large: &small, ..evidence(&compare, &[], &[]) });
        assert_eq!(claim.verdict, Verdict::HoldsInPart, "8× at 10000: {}", claim.measured);
        assert!(claim.measured.contains("all 2 designs and servers served 10000 connections"), "{}", claim.measured);
    }

    #[test]
    fn coroutines_are_compared_with_threads_at_every_size_and_with_their_multithreaded_runtime() {
        let pair = |n: usize, co_rate: f64, thread_rate: f64| {
            let mut pair = [
                result("coroutine", &[(Figure::MsgsPerSec, co_rate)]),
                result("thread", &[(Figure::MsgsPerSec, thread_rate)]),
            ];
            pair.iter_mut().for_each(|r| r.run.workload.connections = n);
            pair
        };
        let (small, large) = (pair(100, 90.0, 100.0), pair(10_000, 40.0, 50.0));
        let mut compare = pair(1000, 70.0, 80.0).to_vec();
        compare[0].run.peak_threads = 1;
        set(&mut compare[0], &[(Figure::PssPerConn, 4.0), (Figure::CoresUsed, 1.0)]);
        set(&mut compare[1], &[(Figure::PssPerConn, 27.0)]);
        compare.push(result("process", &[(Figure::PssPerConn, 40.0)]));
        let mut mt = result("coroutine-mt", &[(Figure::CoresUsed, 1.6)]);
        mt.run.peak_threads = 3;
        compare.push(mt);
        let e = Evidence { small: &small, large: &large, ..evidence(&compare, &[], &[]) };
        let claim = coroutines(&e);
        assert_eq!(claim.verdict, Verdict::HoldsInPart, "slower than threads at every size: {}", claim.measured);
        for text in [
            "90.0 vs 100 msg/s",
            "at 100;",
            "at 1000;",
            "at 10000;",
            "coroutine-mt, a worker per CPU: 3 threads, 1.60 cores",
        ] {
            assert!(claim.measured.contains(text), "{text}: {}", claim.measured);
        }
        let faster_small = pair(100, 110.0, 100.0);
        let e = Evidence { small: &faster_small, large: &large, ..evidence(&compare, &[], &[]) };
        assert_eq!(coroutines(&e).verdict, Verdict::Holds, "faster at one size is enough");
    }

    #[test]
    fn thread_cost_needs_less_memory_than_a_process_and_dearer_messages_than_epoll() {
        let verdict = |thread_pss: f64, thread_cpu: f64, switches: f64| {
            let compare = [
                result(
                    "thread",
                    &[
                        (Figure::PssPerConn, thread_pss),
                        (Figure::OwnCpuPerMsg, thread_cpu),
                        (Figure::VoluntaryCsPerMsg, switches),
                    ],
                ),
                result("process", &[(Figure::PssPerConn, 40.0)]),
                result("epoll", &[(Figure::OwnCpuPerMsg, 10.0)]),
            ];
            thread_cost(&evidence(&compare, &[], &[])).verdict
        };
        assert_eq!(verdict(27.0, 12.0, 0.5), Verdict::Holds, "1.2× epoll and 0.5 switches, at the boundary");
        assert_eq!(verdict(27.0, 11.9, 1.0), Verdict::HoldsInPart, "cheaper, but not 1.2× epoll's CPU");
        assert_eq!(verdict(27.0, 20.0, 0.49), Verdict::HoldsInPart, "cheaper, but too few switches");
        assert_eq!(verdict(40.0, 11.0, 1.0), Verdict::DoesNotHold, "as much memory as a process, and cheap messages");
    }

    #[test]
    fn one_syscall_per_connection_needs_a_read_and_a_switch_per_message_and_1_5_times_epoll() {
        let verdict = |data: f64, switches: f64, thread_cpu: f64| {
            let burst = [
                result(
                    "thread",
                    &[
                        (Figure::DataSyscallsPerMsg, data),
                        (Figure::VoluntaryCsPerMsg, switches),
                        (Figure::OwnCpuPerMsg, thread_cpu),
                    ],
                ),
                result("epoll", &[(Figure::OwnCpuPerMsg, 10.0)]),
            ];
            one_syscall_per_connection(&evidence(&[], &burst, &[])).verdict
        };
        assert_eq!(verdict(2.0, 1.0, 15.0), Verdict::Holds, "1.5× at the boundary");
        assert_eq!(verdict(2.0, 1.0, 14.9), Verdict::HoldsInPart, "the calls, but not the large cost");
        assert_eq!(verdict(1.97, 1.0, 14.9), Verdict::DoesNotHold, "0.985 reads per message is short of one");
    }

    #[test]
    fn poll_limit_does_not_hold_when_poll_refuses_more_than_the_open_files_limit() {
        let verdict = |errno: Option<i32>| {
            let e = Evidence { poll_beyond_limit: errno, ..evidence(&[], &[], &[]) };
            poll_limit(&e).verdict
        };
        assert_eq!(verdict(Some(libc::EINVAL)), Verdict::DoesNotHold);
        assert_eq!(verdict(None), Verdict::Holds, "no limit found");
        assert_eq!(verdict(Some(libc::ENOMEM)), Verdict::NotTested, "another failure says nothing of the limit");
    }

    #[test]
    fn one_call_needs_every_socket_in_one_wait() {
        let burst = |max_ready: f64, io: f64| {
            let mut poll = result("poll", &[(Figure::MaxReady, max_ready), (Figure::DataSyscallsPerMsg, io)]);
            poll.run.workload.connections = 100;
            one_call(&evidence(&[], &[poll], &[])).verdict
        };
        assert_eq!(burst(100.0, 2.0), Verdict::HoldsInPart, "one wait, but a read and a write each");
        assert_eq!(burst(100.0, 0.0), Verdict::Holds);
        assert_eq!(burst(99.0, 2.0), Verdict::DoesNotHold, "one socket short of all");
        let mut waitless = result("poll", &[(Figure::DataSyscallsPerMsg, 2.0)]);
        waitless.run.workload.connections = 100;
        let claim = one_call(&evidence(&[], &[waitless], &[]));
        assert_eq!(claim.verdict, Verdict::NotTested, "no wait call: no max ready, not 0 of 100");
        assert!(claim.measured.starts_with("one poll call returned – ready sockets"), "{}", claim.measured);
    }

    #[test]
    fn scan_cost_holds_when_a_call_grows_a_tenth_as_fast_as_the_fds() {
        let verdict = |large_ns: u64| {
            let scan = [point("poll", 10, 1000), point("poll", 1000, large_ns)];
            scan_cost(&evidence(&[], &[], &scan)).verdict
        };
        assert_eq!(verdict(10_000), Verdict::Holds, "10× for 100× the fds");
        assert_eq!(verdict(9_999), Verdict::HoldsInPart);
        assert_eq!(verdict(1_999), Verdict::DoesNotHold);
    }

    #[test]
    fn select_limit_holds_in_part_when_python_refuses_what_the_kernel_takes() {
        let mut select = result("select", &[(Figure::FdsWatchedPerWait, 2001.0)]);
        select.run.workload.connections = 2000;
        let verdict = |python: PythonSelect| {
            let e = Evidence { select_wide: Some(&select), python_select: python, ..evidence(&[], &[], &[]) };
            select_limit(&e)
        };
        let refused = verdict(PythonSelect::Refused("… | ValueError: filedescriptor out of range in select()".into()));
        assert_eq!(refused.verdict, Verdict::HoldsInPart);
        assert!(refused.measured.ends_with("refused: ValueError: filedescriptor out of range in select()"));
        assert_eq!(verdict(PythonSelect::NotRun("no python3".into())).verdict, Verdict::Holds);
    }

    #[test]
    fn epoll_has_no_thread_of_its_own() {
        let mut epoll = result("epoll", &[]);
        epoll.run.workload.connections = 100;
        epoll.run.syscalls.insert("epoll_ctl".into(), 100);
        epoll.run.peak_threads = 1;
        let claim = epoll_claim(&evidence(std::slice::from_ref(&epoll), &[], &[]));
        assert_eq!(claim.verdict, Verdict::HoldsInPart, "{}", claim.measured);
        epoll.run.syscalls.insert("epoll_ctl".into(), 300); // re-armed on every message
        assert_eq!(epoll_claim(&evidence(&[epoll], &[], &[])).verdict, Verdict::DoesNotHold);
    }
}
