//! Section 1: what the probe costs.
//!
//! **Throughput.** Every model runs the same workload through the lab's own path
//! (`experiment::run_model`: the gate, the settle waits, the load generator in its own process) with the
//! probe loaded and with [`Probe::disabled`], in alternating rounds. The probe is loaded afresh
//! for each traced run and dropped after it, so an untraced run has no eBPF program attached
//! anywhere: the probe runs on *every* syscall and context switch on the machine (the load
//! generator's too, where it only finds out that the thread is not traced), and all of that is
//! what the throughput ratio charges it for.
//!
//! **Per syscall, in the server.** The server's CPU time per message (wait4) traced minus
//! untraced, divided by the syscalls per message the probe counted: what the probe added to each
//! of the server's syscalls (its context-switch and wait-call hooks included). A difference of a
//! few percent of the CPU time, so it is noisy; the microbenchmark below is the clean number.
//!
//! **Per syscall, isolated.** A thread of ours makes N `getppid` calls (the cheapest syscall) and
//! reads its own CPU clock: with no probe loaded, with the probe loaded but the thread not traced
//! (the *miss* path every other process on the machine pays: one array lookup), and with the
//! thread traced (the *hit* path: lookup, then the per-CPU counter increment).

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::{
    alternating::{Alternating, alternating_overhead},
    paired::{Verdict, differences, order, ratios},
};
use lab_measure::{
    experiment::run_model,
    probe::{EmptyProbe, Probe},
    run::RunSpec,
};
use lab_report::results::stats::{Summary, summarize};

/// The throughput ratio every model must reach.
pub const TARGET_RATIO: f64 = 0.95;

/// Rounds of the in-run measurement per round of whole runs (`--pairs`): a round of three phases
/// takes ~1.5 s (detaching the probe takes ~0.45 s of it), a round of two whole runs ~3 s.
const IN_RUN_ROUNDS_PER_PAIR: usize = 8;

#[derive(Clone, Debug, Serialize)]
pub struct ModelOverhead {
    pub model: String,
    pub traced_msgs_per_sec: Summary,
    pub untraced_msgs_per_sec: Summary,
    /// Traced ÷ untraced throughput of whole runs, per round.
    pub ratio: Summary,
    /// The same ratio between phases of one run (see [`super::alternating`]): what the verdict
    /// is taken from.
    pub in_run: Alternating,
    /// Syscalls and context switches per message, as the probe counted them over whole runs.
    pub syscalls_per_msg: f64,
    pub switches_per_msg: f64,
    /// Server CPU time (user + sys) per message, µs.
    pub cpu_us_per_msg_traced: Summary,
    pub cpu_us_per_msg_untraced: Summary,
    /// (traced − untraced CPU per message) ÷ syscalls per message, per round: ns.
    pub ns_per_syscall: Summary,
    pub verdict: Verdict,
}

/// One run's figures.
#[derive(Clone, Copy, Default)]
struct Sample {
    msgs_per_sec: f64,
    cpu_us_per_msg: f64,
    syscalls_per_msg: f64,
    switches_per_msg: f64,
}

/// Runs `pairs` rounds of traced and untraced for one model, after one untraced warm-up run.
pub fn model_overhead(spec: &RunSpec, pairs: usize, step: &mut dyn FnMut(String)) -> Result<ModelOverhead> {
    step(format!("{}: probe attached and detached in turns, one run", spec.name));
    let in_run = alternating_overhead(spec, pairs * IN_RUN_ROUNDS_PER_PAIR)?;
    step(format!("{}: warm-up", spec.name));
    run_model(&mut Probe::disabled(), spec)?;
    let (mut traced, mut untraced) = (Vec::new(), Vec::new());
    for round in 0..pairs {
        for contender in order(2, round) {
            lab_measure::interrupt::check()?;
            if contender == 0 {
                step(format!("{}: traced, round {}/{pairs}", spec.name, round + 1));
                traced.push(traced_run(spec)?);
            } else {
                step(format!("{}: untraced, round {}/{pairs}", spec.name, round + 1));
                untraced.push(sample(&run_model(&mut Probe::disabled(), spec)?, None));
            }
        }
    }
    let field = |runs: &[Sample], f: fn(&Sample) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let rate = |s: &Sample| s.msgs_per_sec;
    let cpu = |s: &Sample| s.cpu_us_per_msg;
    let syscalls = summarize(&field(&traced, |s| s.syscalls_per_msg)).median;
    let ratio = ratios(&field(&traced, rate), &field(&untraced, rate));
    let ns: Vec<f64> = traced
        .iter()
        .zip(&untraced)
        .map(|(t, u)| (t.cpu_us_per_msg - u.cpu_us_per_msg) * 1e3 / t.syscalls_per_msg.max(f64::MIN_POSITIVE))
        .collect();
    Ok(ModelOverhead {
        model: spec.name.clone(),
        traced_msgs_per_sec: summarize(&field(&traced, rate)),
        untraced_msgs_per_sec: summarize(&field(&untraced, rate)),
        verdict: Verdict::at_least(in_run.ratio.median, TARGET_RATIO),
        ratio,
        in_run,
        syscalls_per_msg: syscalls,
        switches_per_msg: summarize(&field(&traced, |s| s.switches_per_msg)).median,
        cpu_us_per_msg_traced: summarize(&field(&traced, cpu)),
        cpu_us_per_msg_untraced: summarize(&field(&untraced, cpu)),
        ns_per_syscall: summarize(&ns),
    })
}

/// A run with the probe loaded for it alone. The syscalls per message come from the probe's
/// totals over the whole run (start-up and teardown of the server included, a few hundred calls
/// against tens of thousands), so they do not depend on where the measurement window falls.
fn traced_run(spec: &RunSpec) -> Result<Sample> {
    let mut probe = Probe::load()?;
    let before = probe.snapshot()?;
    let result = run_model(&mut probe, spec)?;
    let after = probe.snapshot()?;
    let delta = lab_measure::probe::Delta::between(&before, &after).0;
    let calls: u64 = delta.syscalls.iter().sum::<u64>() + delta.syscall_out_of_range;
    let switches = delta.switches.voluntary + delta.switches.involuntary;
    Ok(sample(&result, Some((calls, switches))))
}

fn sample(result: &lab_measure::result::RunResult, counted: Option<(u64, u64)>) -> Sample {
    let messages = result.messages_total.max(1) as f64;
    let (calls, switches) = counted.unwrap_or_default();
    Sample {
        msgs_per_sec: result.msgs_per_sec,
        cpu_us_per_msg: (result.server.user_ms + result.server.sys_ms) * 1e3 / messages,
        syscalls_per_msg: calls as f64 / messages,
        switches_per_msg: switches as f64 / messages,
    }
}

/// The isolated cost of one syscall under the probe.
#[derive(Clone, Debug, Serialize)]
pub struct SyscallCost {
    /// getppid calls per measurement.
    pub calls: u64,
    /// ns per getppid with no probe loaded.
    pub untraced_ns: Summary,
    /// ns per getppid with only the empty program on `sys_enter` (the floor, see `EmptyProbe`).
    pub empty_ns: Summary,
    /// ns per getppid with the probe loaded, the thread not traced.
    pub miss_ns: Summary,
    /// ns per getppid with the thread traced.
    pub hit_ns: Summary,
    /// The same two with the probe loaded for `--timing` (its programs on `sys_exit` too).
    pub timed_miss_ns: Summary,
    pub timed_hit_ns: Summary,
    /// What the empty program and the probe add per syscall (median of the rounds' differences).
    pub empty_cost_ns: Summary,
    pub miss_cost_ns: Summary,
    pub hit_cost_ns: Summary,
    pub timed_miss_cost_ns: Summary,
    pub timed_hit_cost_ns: Summary,
}

/// `rounds` rounds of: no probe, the empty program alone, then the probe loaded with the thread
/// untraced and traced (in alternating order), then the same loaded for `--timing`.
pub fn syscall_cost(calls: u64, rounds: usize) -> Result<SyscallCost> {
    let (mut none, mut empty, mut miss, mut hit) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut timed_miss, mut timed_hit) = (Vec::new(), Vec::new());
    let mut empty_probe = EmptyProbe::load()?;
    getppid_loop(calls / 10, None)?; // warm-up: page in, settle the CPU clock
    for round in 0..rounds {
        lab_measure::interrupt::check()?;
        none.push(getppid_loop(calls, None)?);
        empty_probe.set_attached(true)?;
        empty.push(getppid_loop(calls, None)?);
        empty_probe.set_attached(false)?;
        for (timing, miss, hit) in [(false, &mut miss, &mut hit), (true, &mut timed_miss, &mut timed_hit)] {
            let mut probe = Probe::load_with(lab_measure::probe::ProbeOptions { timing, profile: None })?;
            for traced in order(2, round) {
                if traced == 0 {
                    miss.push(getppid_loop(calls, Some((&mut probe, false)))?);
                } else {
                    hit.push(getppid_loop(calls, Some((&mut probe, true)))?);
                }
            }
        }
    }
    Ok(SyscallCost {
        calls,
        untraced_ns: summarize(&none),
        empty_ns: summarize(&empty),
        miss_ns: summarize(&miss),
        hit_ns: summarize(&hit),
        empty_cost_ns: differences(&empty, &none),
        miss_cost_ns: differences(&miss, &none),
        hit_cost_ns: differences(&hit, &none),
        timed_miss_ns: summarize(&timed_miss),
        timed_hit_ns: summarize(&timed_hit),
        timed_miss_cost_ns: differences(&timed_miss, &none),
        timed_hit_cost_ns: differences(&timed_hit, &none),
    })
}

/// `iolab bench --spin-getppid CALLS`: the process section 2 runs under each tool. Says `ready`,
/// waits for a line on stdin (meanwhile the bench attaches the probe, if that is the watcher),
/// makes CALLS getppid syscalls and prints the wall-clock ns per call.
pub fn spin(calls: u64) -> Result<()> {
    use std::io::{BufRead as _, Write as _};
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    std::io::stdin().lock().read_line(&mut String::new())?;
    let start = std::time::Instant::now();
    getppid_calls(calls);
    let ns = start.elapsed().as_nanos() as f64 / calls.max(1) as f64;
    writeln!(out, "{}{ns:.1}", super::harness::SPIN_RESULT)?;
    Ok(())
}

/// `calls` getppid syscalls: the cheapest syscall there is, so what a watcher adds stands out.
fn getppid_calls(calls: u64) {
    for _ in 0..calls {
        // SAFETY: getppid takes no arguments and cannot fail. Called through syscall(2) so that
        // no libc may answer it from a cache.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

/// A fresh thread makes `calls` getppid syscalls; returns its CPU time per call, in ns. With a
/// probe and `true`, the thread is marked traced before it starts (it forgets itself on exit).
fn getppid_loop(calls: u64, probe: Option<(&mut Probe, bool)>) -> Result<f64> {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let _ = tid_tx.send(unsafe { libc::gettid() } as u32);
        let _ = go_rx.recv();
        let start = thread_cpu_ns();
        getppid_calls(calls);
        thread_cpu_ns() - start
    });
    let tid = tid_rx.recv_timeout(Duration::from_secs(5))?;
    if let Some((probe, true)) = probe {
        probe.trace_task(tid)?;
    }
    go_tx.send(())?;
    let ns = worker.join().map_err(|_| anyhow::anyhow!("the getppid thread panicked"))?;
    Ok(ns as f64 / calls.max(1) as f64)
}

/// This thread's CPU time (user + sys), in ns: a preempted thread does not count the wait.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
