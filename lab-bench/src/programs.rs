//! Section 6: what each eBPF program costs per run, and what `--profile` costs a server.
//!
//! **Per program.** The kernel's own BPF statistics (`BPF_ENABLE_STATS`, on only while this
//! section holds its file descriptor) count every program's runs and the time spent inside it.
//! One run of epoll on the bench's workload, with the probe and `--profile` at [`PROFILE_HZ`]
//! loaded, gives each program's ns per run and runs per message: per softirq
//! (`softirq_begins` + `softirq_ends`), per stack sample (`sample_stack`), per context switch
//! (`count_switch`), per syscall (`count_syscall`)… Only the time inside each program: the
//! tracepoint's dispatch (~5 ns for a raw one, the kernel notes) and the syscall slow path are what
//! section 1's microbenchmark measures. The statistics add a clock read around each run, so the
//! empty program (`empty_sys_enter`) runs beside the others, timed the same way: its ns per run is
//! what timing a run costs here, and each program's own cost is its figure less that floor.
//!
//! **`--profile`'s throughput.** Rounds of whole runs of the same model: the probe alone, with
//! `--profile` at 99 Hz and at 999 Hz, in an order rotated each round; each ratio is taken within
//! a round (see `paired`).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::paired::{order, ratios};
use lab_measure::{
    experiment::run_model,
    probe::{EmptyProbe, Probe, ProbeOptions},
    profile::ProfileOptions,
    run::RunSpec,
};
use lab_report::results::stats::{Summary, summarize};

/// The rate of the per-program run: the default of `--profile-hz`.
pub const PROFILE_HZ: u32 = 999;

/// The rates whose cost to a server's throughput is measured.
pub const RATES: [u32; 2] = [99, 999];

#[derive(Clone, Debug, Serialize)]
pub struct ProgramsSection {
    pub model: String,
    /// Messages the per-program run served.
    pub messages: u64,
    /// Every program of the probe that ran, by name.
    pub programs: Vec<ProgramCost>,
    /// `softirq_begins` + `softirq_ends`: what one softirq pays.
    pub ns_per_softirq: Option<f64>,
    /// `hardirq_begins` + `hardirq_ends`: what one hard interrupt pays.
    pub ns_per_hardirq: Option<f64>,
    /// `sample_stack`: what one cpu-clock sample pays (on every CPU, traced thread or not).
    pub ns_per_sample: Option<f64>,
    /// `empty_sys_enter`, a program that does nothing: what the statistics' timing of one run
    /// adds to every figure here.
    pub ns_floor: Option<f64>,
    /// Throughput with `--profile` at each of [`RATES`] over the probe alone.
    pub profile: Vec<ProfileOverhead>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProgramCost {
    /// The program's name as the kernel keeps it (its first 15 characters).
    pub program: String,
    pub runs: u64,
    pub ns_per_run: f64,
    pub runs_per_msg: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProfileOverhead {
    pub hz: u32,
    pub msgs_per_sec: Summary,
    /// With the profile ÷ the probe alone, per round.
    pub ratio: Summary,
}

/// Both halves of the section for `spec`'s model.
pub fn programs(spec: &RunSpec, rounds: usize, step: &mut dyn FnMut(String)) -> Result<ProgramsSection> {
    step(format!("{}: every program timed by the kernel", spec.name));
    let (messages, programs) = per_program(spec)?;
    let sum = |names: &[&str]| -> Option<f64> {
        names.iter().map(|name| programs.iter().find(|p| p.program == kernel_name(name)).map(|p| p.ns_per_run)).sum()
    };
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); RATES.len() + 1];
    for round in 0..rounds {
        for contender in order(RATES.len() + 1, round) {
            lab_measure::interrupt::check()?;
            let hz = contender.checked_sub(1).map(|i| RATES[i]);
            let label = hz.map_or_else(|| "probe alone".to_owned(), |hz| format!("--profile at {hz} Hz"));
            step(format!("{}: {label}, round {}/{rounds}", spec.name, round + 1));
            let mut probe =
                Probe::load_with(ProbeOptions { timing: false, profile: hz.map(|hz| ProfileOptions { hz }) })?;
            runs[contender].push(run_model(&mut probe, spec)?.msgs_per_sec);
        }
    }
    let profile = RATES
        .iter()
        .zip(&runs[1..])
        .map(|(&hz, rates)| ProfileOverhead { hz, msgs_per_sec: summarize(rates), ratio: ratios(rates, &runs[0]) })
        .collect();
    Ok(ProgramsSection {
        model: spec.name.clone(),
        messages,
        ns_per_softirq: sum(&["softirq_begins", "softirq_ends"]),
        ns_per_hardirq: sum(&["hardirq_begins", "hardirq_ends"]),
        ns_per_sample: sum(&["sample_stack"]),
        ns_floor: sum(&["empty_sys_enter"]),
        programs,
        profile,
    })
}

/// One run with the statistics on: each program's runs and ns per run over it.
fn per_program(spec: &RunSpec) -> Result<(u64, Vec<ProgramCost>)> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("turning on the kernel's BPF statistics")?;
    let options = ProbeOptions { timing: false, profile: Some(ProfileOptions { hz: PROFILE_HZ }) };
    let mut probe = Probe::load_with(options)?;
    // The floor: a program that does nothing, timed the same way, on every syscall beside them.
    let mut empty = EmptyProbe::load()?;
    empty.set_attached(true)?;
    let before = stats()?;
    let result = run_model(&mut probe, spec)?;
    let after = stats()?;
    drop(empty);
    let messages = result.messages_total.max(1);
    let mut programs: Vec<ProgramCost> = after
        .iter()
        .filter_map(|(name, &(ns, runs))| {
            let (ns0, runs0) = before.get(name).copied().unwrap_or_default();
            let runs = runs - runs0;
            (runs > 0).then(|| ProgramCost {
                program: name.clone(),
                runs,
                ns_per_run: (ns - ns0) as f64 / runs as f64,
                runs_per_msg: runs as f64 / messages as f64,
            })
        })
        .collect();
    programs.sort_by_key(|p| std::cmp::Reverse(p.runs));
    Ok((messages, programs))
}

/// The kernel keeps the first 15 characters of a program's name.
fn kernel_name(name: &str) -> String {
    name.chars().take(15).collect()
}

/// Time inside and runs of each of the lab's loaded programs, by name (summed when one name is
/// loaded more than once).
fn stats() -> Result<BTreeMap<String, (u64, u64)>> {
    let ours: Vec<String> = lab_measure::probe::program_names().iter().map(|n| kernel_name(n)).collect();
    let mut found = BTreeMap::new();
    for info in aya::programs::loaded_programs() {
        let info = info.context("listing the loaded eBPF programs")?;
        let Some(name) = info.name_as_str().filter(|n| ours.iter().any(|o| o == n)) else { continue };
        let entry: &mut (u64, u64) = found.entry(name.to_owned()).or_default();
        entry.0 += info.run_time().as_nanos() as u64;
        entry.1 += info.run_count();
    }
    Ok(found)
}
