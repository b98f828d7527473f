//! `iolab run`: one model, one measured run (no warm-up: what you see is what one run cost),
//! shown in full.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::commands::args::{OutputArgs, ProfileArgs, WorkloadArgs};
use crate::commands::trace::measure_tree;
use anyhow::Context as _;
use lab_measure::{
    bad_input,
    error::BadInput,
    experiment::run_model,
    probe::Probe,
    result::RunResult,
    run::{RunSpec, start_model},
    validate::{self, Validation},
};
use lab_report::results::{document::model_result, save};
use lab_server::parse_model;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The model to run (`iolab models` lists them).
    #[arg(long, short = 'M', value_parser = parse_model)]
    pub model: String,
    /// Run the same workload without the probes (to see what tracing costs).
    #[arg(long, conflicts_with_all = ["profile", "timing"])]
    pub no_trace: bool,
    /// As `iolab trace --validate`: serve the load a second time with strace attached, check the
    /// first run against perf (context switches, the NET_RX share of the CPU) if installed, and
    /// check that they counted what the probe counted; exit 1 if not.
    #[arg(long, conflicts_with = "no_trace")]
    pub validate: bool,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub timing: crate::commands::args::TimingArg,
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_command(args: RunArgs) -> Result<ExitCode> {
    let spec = args.workload.spec(&args.model);
    let output = &args.output;
    output.check()?;
    args.profile.check()?;
    let w = spec.workload;
    lab_load::limits::make_room_for(w.all_connections())
        .map_err(|e| BadInput(format!("--connections {} --idle {}: {e:#}", w.connections, w.idle)))?;
    if args.validate && lab_measure::process::which("strace").is_none() {
        bad_input!("{}", validate::NO_STRACE);
    }
    let mut probe = if args.no_trace {
        Probe::disabled()
    } else {
        Probe::load_with(lab_measure::probe::ProbeOptions {
            timing: args.timing.timing,
            profile: args.profile.options(),
        })?
    };
    let (result, validation) =
        if args.validate { validated(&mut probe, &spec)? } else { (run_model(&mut probe, &spec)?, None) };
    let mut doc = save::new_document("run", 1);
    doc.results.push(model_result(vec![result.clone()]));
    doc.validation.clone_from(&validation);
    output.write(&doc)?;
    if let Some(profile) = &result.profile {
        args.profile.write(&spec.name, profile, &profile_title(&result));
    }
    if let Some(dir) = &output.save {
        save::save_run(dir, &doc, &result, 1)?;
    }
    if result.errors > 0 && !args.workload.allow_errors.allow_errors {
        eprintln!("iolab: the load generator saw {} errors (--allow-errors to accept)", result.errors);
        return Ok(ExitCode::FAILURE);
    }
    if let Some(v) = validation.as_ref().filter(|v| !v.ok) {
        eprintln!("iolab: the probe and {} disagree: {}", validate::TOOLS, v.mismatches());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What a flame graph of `run` is titled: the model, its load and the sampling rate.
pub fn profile_title(run: &RunResult) -> String {
    let w = &run.workload;
    let (what, hz) = (if w.lockstep { "rounds" } else { "messages each" }, run.profile.as_ref().map_or(0, |p| p.hz));
    format!("{}: {} connections, {} {what}, sampled at {hz} Hz", run.model, w.connections, w.messages_per_connection)
}

/// The model started traced and measured as `iolab trace --validate` measures a command: the
/// reported run with perf attached, then the strace run.
fn validated(probe: &mut Probe, spec: &RunSpec) -> Result<(RunResult, Option<Validation>)> {
    let (mut server, addr) = start_model(probe, spec)?;
    let root = server.pid;
    let traced = measure_tree(probe, root, addr, spec, true, &mut || server.check_alive())
        .with_context(|| format!("model {}", spec.name));
    server.stop()?;
    let traced = traced?;
    Ok((traced.run, traced.validation))
}
