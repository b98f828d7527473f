//! The subcommands, one file each: parse the flags, measure, present. [`Cli`] is the whole
//! command line; [`dispatch`] runs one subcommand and says how the process should exit.
//!
//! A subcommand's file holds its flags (a clap `Args` struct) and one `*_command` function.
//! Flags several commands share are in [`args`].

pub mod args;

pub mod claims;
pub mod compare;
pub mod internal;
pub mod load;
pub mod models;
pub mod report;
pub mod run;
pub mod scan;
pub mod selftest;
pub mod serve;
pub mod soak;
pub mod top;
pub mod trace;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "iolab",
    version,
    about = "What each way of writing a TCP server costs the kernel, measured with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one model under the probe, drive it with the load generator, show what it cost.
    Run(run::RunArgs),
    /// Run models on the same workload and compare them, a row per model.
    Compare(compare::CompareArgs),
    /// The walkthrough's scenario: C connections all ready at once, every round. What did it take?
    Prove(compare::ProveArgs),
    /// The same workload at several connection counts: a table and an SVG plot.
    Sweep(compare::SweepArgs),
    /// Test each claim of the walkthrough with an experiment: a verdict per claim, from the figures.
    Claims(claims::ClaimsArgs),
    /// The cost of one wait call against the fds it watches: select, poll, epoll at N fds, one ready.
    Scan(scan::ScanArgs),
    /// Re-render saved results (`--save`, `--format json`) in any format, side by side.
    Report(report::ReportArgs),
    /// Endurance: one traced server, the same load again and again; throughput, fds and RSS over time.
    Soak(soak::SoakArgs),
    /// Serve one model, untraced, so you can point strace or perf at it.
    Serve(serve::ServeArgs),
    /// Drive any echo-uppercase server with the load generator.
    Load(load::LoadArgs),
    /// List the server models.
    Models,
    /// Any server under the probe: `-- CMD ARGS…` started traced, or `--pid` of a running one.
    Trace(trace::TraceArgs),
    /// Live syscall and context-switch rates of a running server (`--pid`), until Ctrl-C.
    Top(top::TopArgs),
    /// Measure the lab's own speed: probe overhead, strace and perf, scale, the models against C.
    Bench(lab_bench::BenchArgs),
    /// Prove the probe exact on this kernel: known syscall and context-switch counts.
    Selftest(selftest::SelftestArgs),
    /// Internal: workloads with known syscall counts, for selftest (see `measure::exercise`).
    #[command(hide = true, subcommand)]
    Exercise(internal::Exercise),
    /// Internal: wait for the lab's go byte on fd 4, then exec PROGRAM (see `measure::launch`).
    #[command(hide = true)]
    Gate(internal::GateArgs),
    /// Internal: kill process group PGID if iolab dies before it says otherwise (see
    /// `measure::process`).
    #[command(hide = true)]
    Guard(internal::GuardArgs),
}

impl Command {
    /// Whether the command measures, and so turns Ctrl-C and SIGTERM into a clean stop that
    /// keeps what was measured. The others keep the default: the signal ends them.
    pub fn measures(&self) -> bool {
        !matches!(
            self,
            Command::Serve(_)
                | Command::Load(_)
                | Command::Gate(_)
                | Command::Guard(_)
                | Command::Exercise(_)
                | Command::Models
                | Command::Report(_)
        )
    }
}

/// Runs one subcommand.
pub fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(args) => run::run_command(args),
        Command::Compare(args) => compare::compare_command(args),
        Command::Prove(args) => compare::prove_command(args),
        Command::Sweep(args) => compare::sweep_command(args),
        Command::Claims(args) => claims::claims_command(args),
        Command::Scan(args) => scan::scan_command(args),
        Command::Report(args) => report::report_command(args),
        Command::Soak(args) => soak::soak_command(args),
        Command::Serve(args) => serve::serve_command(args),
        Command::Load(args) => load::load_command(args),
        Command::Models => models::models_command(),
        Command::Trace(args) => trace::trace_command(args),
        Command::Top(args) => top::top_command(args),
        Command::Bench(args) => lab_bench::bench_command(args),
        Command::Selftest(args) => selftest::selftest_command(args),
        Command::Exercise(exercise) => internal::exercise_command(exercise),
        Command::Gate(args) => internal::gate_command(args),
        Command::Guard(args) => internal::guard_command(args),
    }
}
