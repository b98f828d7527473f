//! `iolab bench`: is the lab fast, and are its servers fast? Measured, side by side, in one run.
//!
//! Speed is never asserted by a test (a timed test on a shared 2-core VM fails at random). It is
//! measured here, as ratios between contenders run in alternating rounds on the same machine a
//! few seconds apart (see [`paired`]), and printed with their targets, PASS or MISS:
//!
//! 1. [`probe_cost`]: traced ÷ untraced throughput for every model (target ≥ 0.95), and what the
//!    probe costs per syscall, from the server's CPU time and from an isolated microbenchmark;
//! 2. [`tools`]: the same ratio for `strace -f -c` and `perf trace -s`: the lab's overhead must be
//!    at least 10× smaller than strace's;
//! 3. and 5. [`contenders`]: the `epoll` and `coroutine-mt` models against a minimal C epoll
//!    server (within 10 %), and whether the load generator has headroom;
//! 4. [`scale`]: `iolab compare` over all models at 10,000 connections: wall time (< 60 s) and
//!    iolab's own peak memory (< 100 MiB);
//! 6. [`programs`]: each eBPF program's ns per run, timed by the kernel (per softirq, per stack
//!    sample, per switch…), and what `--profile` at 99 and 999 Hz costs a server's throughput.
//!
//! A miss is reported, not hidden, and is not an error: the command exits 0 unless a section
//! could not run at all. The machine, the kernel and the load average are printed with the
//! numbers, because on a shared VM they are part of the result.

mod alternating;
mod contenders;
mod harness;
mod machine;
mod paired;
mod probe_cost;
mod programs;
mod render;
mod scale;
mod tools;

use std::{process::ExitCode, time::Instant};

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;

use lab_measure::run::RunSpec;
use lab_report::present::{
    export::{Format, record},
    progress::Progress,
};
use lab_server::parse_models;

pub use paired::Verdict;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Rounds of each side-by-side comparison; each round runs every contender once.
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=50))]
    pub pairs: usize,
    /// Messages per connection in the 1,000-connection × 64-byte workload.
    #[arg(short = 'm', long, default_value_t = 50, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub messages: usize,
    /// A smoke run in well under a minute: 1 round, 5 messages per connection, fewer getppid calls,
    /// and the compare at 1,000 connections instead of 10,000. Its numbers are not the targets'.
    #[arg(long)]
    pub quick: bool,
    /// Run only these sections (comma-separated); default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Section>,
    /// Models for the probe-overhead section: `all` or a comma-separated list.
    #[arg(long, default_value = "all", value_parser = parse_models)]
    pub models: std::vec::Vec<String>,
    /// The model served under strace and perf trace.
    #[arg(long, default_value = "epoll", value_parser = parse_models)]
    pub tool_model: std::vec::Vec<String>,
    /// `table`; `json`, `csv` and `markdown` hold every figure measured (csv and markdown flattened).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// No progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Internal: be the getppid loop that section 2 runs under each tool (see `probe_cost::spin`).
    #[arg(long, hide = true)]
    pub spin_getppid: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Section {
    /// 1: traced ÷ untraced throughput per model, probe ns per syscall from server CPU.
    Probe,
    /// 1: the isolated per-syscall cost (getppid microbenchmark).
    Syscall,
    /// 2: strace and perf trace on the same workload.
    Tools,
    /// 3 and 5: the C reference server, epoll, coroutine-mt; load-generator headroom.
    Contenders,
    /// 4: iolab compare at 10,000 connections: wall time and peak RSS.
    Scale,
    /// 6: each eBPF program's ns per run; --profile's cost to throughput.
    Programs,
}

/// Everything one bench measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The command line, for the record.
    pub argv: String,
    pub machine: machine::Conditions,
    pub plan: Plan,
    pub probe: Vec<probe_cost::ModelOverhead>,
    pub syscall: Option<probe_cost::SyscallCost>,
    pub tools: Option<tools::ToolsSection>,
    pub contenders: Option<contenders::ContendersSection>,
    pub scale: Option<scale::ScaleSection>,
    pub programs: Option<programs::ProgramsSection>,
    /// Sections that could not run, and why.
    pub failures: Vec<String>,
    pub total_seconds: f64,
}

#[derive(Clone, Copy, Debug, Serialize)]
/// What the bench runs: the load of its sections and how many rounds of each.
pub struct Plan {
    pub connections: usize,
    pub messages_per_connection: usize,
    pub payload_bytes: usize,
    pub rounds: usize,
    pub getppid_calls: u64,
    /// getppid calls of the process run under each tool in section 2 (strace makes each ~100×
    /// slower, so fewer than for the in-process microbenchmark).
    pub tool_getppid_calls: u64,
    pub scale_connections: usize,
    pub scale_messages: usize,
}

/// The workload of sections 1, 2, 3 and 5: 1,000 connections × 64-byte messages.
const CONNECTIONS: usize = 1_000;
/// The tools are 5–20× slower; three rounds of them are enough to see it.
const TOOL_ROUNDS: usize = 3;

impl Plan {
    fn for_args(args: &BenchArgs) -> Plan {
        let full = Plan {
            connections: CONNECTIONS,
            messages_per_connection: args.messages,
            payload_bytes: lab_load::DEFAULT_PAYLOAD_BYTES,
            rounds: args.pairs,
            getppid_calls: 1_000_000,
            tool_getppid_calls: 50_000,
            scale_connections: 10_000,
            scale_messages: 10,
        };
        if args.quick {
            Plan {
                messages_per_connection: 5,
                rounds: 1,
                getppid_calls: 200_000,
                tool_getppid_calls: 10_000,
                scale_connections: 1_000,
                ..full
            }
        } else {
            full
        }
    }

    /// What sections 1, 2, 3 and 5 send.
    fn load(&self) -> lab_load::Workload {
        lab_load::Workload::free(self.connections, self.messages_per_connection).with_payload(self.payload_bytes)
    }

    fn spec(&self, model: &str) -> RunSpec {
        RunSpec { workload: self.load(), ..RunSpec::model(model) }
    }
}

pub fn bench_command(args: BenchArgs) -> Result<ExitCode> {
    if let Some(calls) = args.spin_getppid {
        probe_cost::spin(calls)?;
        return Ok(ExitCode::SUCCESS);
    }
    lab_measure::preflight::check_privileges()?;
    let workload = Plan::for_args(&args);
    lab_load::limits::make_room_for(workload.connections)
        .map_err(|e| lab_measure::error::BadInput(format!("{e:#}")))?;
    let report = run_sections(&args, workload)?;
    print!("{}", record::render("bench", &report, args.format, render::render(&report))?);
    for failure in &report.failures {
        eprintln!("iolab bench: could not run {failure}");
    }
    Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn run_sections(args: &BenchArgs, workload: Plan) -> Result<BenchReport> {
    let started = Instant::now();
    let wanted = |s: Section| args.only.is_empty() || args.only.contains(&s);
    let rounds = workload.rounds;
    let tool_rounds = TOOL_ROUNDS.min(rounds);
    let steps = wanted(Section::Probe) as usize * args.models.len() * (2 + 2 * rounds)
        + wanted(Section::Syscall) as usize
        + wanted(Section::Tools) as usize * 8 * tool_rounds
        + wanted(Section::Contenders) as usize * 4 * rounds
        + wanted(Section::Scale) as usize
        + wanted(Section::Programs) as usize * (1 + (programs::RATES.len() + 1) * rounds);
    let progress = Progress::new(steps as u64, args.quiet);
    // Before every run: wait for quiet; is anyone else's eBPF program attached right now?
    let seen = std::cell::RefCell::new(machine::Conditions::now());
    let mut step = |msg: String| {
        progress.step(msg);
        seen.borrow_mut().before_run();
    };
    let say = |what: &str| {
        if !args.quiet {
            progress.suspend(|| eprintln!("iolab bench: {what}"));
        }
    };
    let mut report = BenchReport {
        argv: std::env::args().collect::<Vec<_>>().join(" "),
        machine: seen.borrow().clone(),
        plan: workload,
        probe: Vec::new(),
        syscall: None,
        tools: None,
        contenders: None,
        scale: None,
        programs: None,
        failures: Vec::new(),
        total_seconds: 0.0,
    };

    if wanted(Section::Probe) {
        say("1. probe overhead: every model, traced and untraced");
        for model in &args.models {
            let result =
                probe_cost::model_overhead(&workload.spec(model), rounds, &mut step).map(|m| report.probe.push(m));
            record(&format!("probe overhead, {model}"), result, &mut report)?;
        }
    }
    if wanted(Section::Syscall) {
        say("1. probe cost per syscall: getppid microbenchmark");
        step("getppid microbenchmark".into());
        let result = probe_cost::syscall_cost(workload.getppid_calls, rounds).map(|s| report.syscall = Some(s));
        record("syscall microbenchmark", result, &mut report)?;
    }
    if wanted(Section::Tools) {
        say("2. strace and perf trace on the same workload");
        let model = &args.tool_model[0];
        let calls = workload.tool_getppid_calls;
        let in_one_run = report.probe.iter().find(|m| &m.model == model).map(|m| m.in_run.ratio.median);
        let result = tools::tools(model, workload.load(), calls, tool_rounds, in_one_run, &mut step)
            .map(|t| report.tools = Some(t));
        record("strace and perf trace", result, &mut report)?;
    }
    if wanted(Section::Contenders) {
        say("3, 5. the C reference server, epoll, coroutine-mt; load-generator headroom");
        let fastest = report
            .probe
            .iter()
            .max_by(|a, b| a.untraced_msgs_per_sec.median.total_cmp(&b.untraced_msgs_per_sec.median))
            .map(|m| m.model.clone());
        let result = contenders::contenders(workload.load(), rounds, fastest.as_deref(), &mut step)
            .map(|c| report.contenders = Some(c));
        record("contenders", result, &mut report)?;
    }
    if wanted(Section::Scale) {
        say(&format!("4. iolab compare at {} connections", workload.scale_connections));
        step(format!("compare, {} connections", workload.scale_connections));
        let result = scale::scale(workload.scale_connections, workload.scale_messages).map(|s| report.scale = Some(s));
        record("compare at scale", result, &mut report)?;
    }
    if wanted(Section::Programs) {
        say("6. every eBPF program timed by the kernel; --profile's cost");
        let model = &args.tool_model[0];
        let result = programs::programs(&workload.spec(model), rounds, &mut step).map(|p| report.programs = Some(p));
        record("program costs", result, &mut report)?;
    }
    progress.finish();
    report.machine = seen.into_inner();
    report.machine.load_end = machine::load_average();
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Keeps a section's failure in the report so the other sections still run; Ctrl-C stops all.
fn record(name: &str, result: Result<()>, report: &mut BenchReport) -> Result<()> {
    match result {
        Err(err) if lab_measure::interrupt::cause(&err).is_some() => Err(err),
        Err(err) => {
            report.failures.push(format!("{name}: {err:#}"));
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}
