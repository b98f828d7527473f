//! Section 1, measured inside one run: the probe attached and detached in turns.
//!
//! Two whole runs a few seconds apart differ by ±10–20 % on this VM (other tenants, where the
//! scheduler puts the server and the generator), and a cost of a few percent drowns in that: the
//! run-against-run ratios of [`super::probe_cost`] swing from round to round. So here one traced
//! server serves one long load while the bench detaches and re-attaches the probe's programs
//! ([`Probe::set_attached`]) between phases of [`PHASE`]. The server, its connections, the
//! generator and the CPUs they run on are the same in every phase; three neighbouring phases form
//! a round, in an order rotated each round (T U E, U E T, E T U …), and the median of the rounds'
//! traced ÷ untraced ratios is the result.
//!
//! An untraced phase (U) has no eBPF program attached anywhere on the machine, as with
//! `--no-trace`. A traced phase (T) has all of the probe's attached, and the lab reads the counters
//! as often as `iolab run` does (`samples::SAMPLE_EVERY`), so its own reading is charged too. An empty
//! phase (E) has only [`EmptyProbe`]: a program that does nothing, on `sys_enter`. Its ratio is
//! the floor, what any syscall probe would cost this server before doing any work; the probe's
//! own work is the gap between the two ratios. A phase's throughput is
//! the generator's count of answered messages (`iolab load --answer-progress`) at its end minus
//! at its start, over the time between the two readings; each phase starts [`SETTLE`] after the
//! switch.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::paired::{order, ratios};
use lab_load::Workload;
use lab_measure::{
    probe::{EmptyProbe, Probe},
    process::Child,
    run::{RunSpec, load_generator, start_model},
    samples::SAMPLE_EVERY,
};
use lab_report::results::stats::{Summary, summarize};

/// How long each phase measures. Switching the probe off takes the kernel ~0.45 s (see
/// `probe::detach_all`), once a round; against that fixed cost, phases of 0.3 s gave the
/// steadiest median per second of bench (0.1 s phases scattered ±15 %, 0.5 s ones ±5 %).
pub const PHASE: Duration = Duration::from_millis(300);
/// How long after a switch a phase starts measuring (attaching takes a few ms).
const SETTLE: Duration = Duration::from_millis(20);
/// The generator runs until the bench stops it: more messages than any phase plan needs.
const MESSAGES: usize = 1_000_000;
/// Driving before the first phase.
const WARM_UP: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, Serialize)]
pub struct Alternating {
    pub traced_msgs_per_sec: Summary,
    pub untraced_msgs_per_sec: Summary,
    /// Traced ÷ untraced throughput, per round.
    pub ratio: Summary,
    /// With only the empty program attached, and its ÷ untraced per round: the floor.
    pub empty_msgs_per_sec: Summary,
    pub empty_ratio: Summary,
    pub rounds: usize,
    pub phase_seconds: f64,
}

/// What is attached during a phase.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Traced,
    Untraced,
    Empty,
}

/// `rounds` rounds of a traced, an untraced and an empty phase, in one run of `spec.name` at
/// `spec.workload` (its messages per connection are not used: the load runs until the phases
/// are done).
pub fn alternating_overhead(spec: &RunSpec, rounds: usize) -> Result<Alternating> {
    let mut empty = EmptyProbe::load()?;
    let mut probe = Probe::load()?;
    let (mut server, addr) = start_model(&mut probe, spec)?;
    let mut generator = Generator::start(addr, spec)?;
    generator.wait_until_driving()?;
    std::thread::sleep(WARM_UP); // caches, allocators, the runtimes' first batches
    let (mut traced, mut untraced, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for turn in order(3, round) {
            lab_measure::interrupt::check()?;
            let phase = [Phase::Traced, Phase::Untraced, Phase::Empty][turn];
            switch_to(phase, &mut probe, &mut empty)?;
            let rate =
                generator.phase(&mut probe, phase == Phase::Traced).with_context(|| format!("model {}", spec.name))?;
            match phase {
                Phase::Traced => traced.push(rate),
                Phase::Untraced => untraced.push(rate),
                Phase::Empty => floor.push(rate),
            }
        }
    }
    server.check_alive()?;
    drop(generator); // kills it
    server.stop()?;
    Ok(Alternating {
        traced_msgs_per_sec: summarize(&traced),
        untraced_msgs_per_sec: summarize(&untraced),
        ratio: ratios(&traced, &untraced),
        empty_msgs_per_sec: summarize(&floor),
        empty_ratio: ratios(&floor, &untraced),
        rounds,
        phase_seconds: PHASE.as_secs_f64(),
    })
}

/// Attaches what `phase` needs, detaching the rest first: the probe and the empty program are
/// never on together.
fn switch_to(phase: Phase, probe: &mut Probe, empty: &mut EmptyProbe) -> Result<()> {
    if phase != Phase::Traced {
        probe.set_attached(false)?;
    }
    if phase != Phase::Empty {
        empty.set_attached(false)?;
    }
    match phase {
        Phase::Traced => probe.set_attached(true),
        Phase::Empty => empty.set_attached(true),
        Phase::Untraced => Ok(()),
    }
}

/// `iolab load --answer-progress`, never in the traced tree, running until stopped (dropping
/// it kills it).
struct Generator(Child);

impl Generator {
    fn start(addr: SocketAddr, spec: &RunSpec) -> Result<Generator> {
        let workload = Workload { messages_per_connection: MESSAGES, ..spec.workload };
        Ok(Generator(load_generator(addr, &workload).arg("--answer-progress").start()?))
    }

    /// Messages answered so far, and when that was read.
    fn answered(&mut self) -> Result<(u64, Instant)> {
        self.0.write_line("").context("asking the load generator")?;
        let line = self.0.lines()?.recv().unwrap_or_default();
        let at = Instant::now();
        match line.trim().strip_prefix("answered ").map(str::parse) {
            Some(Ok(n)) => Ok((n, at)),
            _ => bail!("the load generator stopped (it said {:?})", line.trim()),
        }
    }

    /// Waits until every connection is open and the first messages are answered.
    fn wait_until_driving(&mut self) -> Result<()> {
        let limit = Instant::now() + Duration::from_secs(60);
        while self.answered()?.0 == 0 {
            lab_measure::interrupt::check()?;
            if Instant::now() > limit {
                bail!("the load generator answered no message in 60 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// One phase: msg/s between two readings [`PHASE`] apart, [`SETTLE`] after the switch.
    fn phase(&mut self, probe: &mut Probe, attached: bool) -> Result<f64> {
        std::thread::sleep(SETTLE);
        let (first, start) = self.answered()?;
        while start.elapsed() < PHASE {
            if attached {
                probe.snapshot()?;
            }
            std::thread::sleep(if attached { SAMPLE_EVERY } else { PHASE - start.elapsed().min(PHASE) });
        }
        let (last, end) = self.answered()?;
        if last <= first {
            bail!("the load generator answered nothing for {:.1} s", (end - start).as_secs_f64());
        }
        Ok((last - first) as f64 / (end - start).as_secs_f64())
    }
}
