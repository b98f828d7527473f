//! `iolab run`: one model, one measured run (no warm-up: what you see is what one run cost),
//! shown in full.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::commands::args::{OutputArgs, WorkloadArgs};
use lab_measure::{error::BadInput, experiment::run_model, probe::Probe};
use lab_report::results::{document::model_result, save};
use lab_server::parse_model;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The model to run (`iolab models` lists them).
    #[arg(long, short = 'M', value_parser = parse_model)]
    pub model: String,
    /// Run the same workload without the probes (to see what tracing costs).
    #[arg(long)]
    pub no_trace: bool,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub timing: crate::commands::args::TimingArg,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run_command(args: RunArgs) -> Result<ExitCode> {
    let spec = args.workload.spec(&args.model);
    let output = &args.output;
    output.check()?;
    let w = spec.workload;
    lab_load::limits::make_room_for(w.all_connections())
        .map_err(|e| BadInput(format!("--connections {} --idle {}: {e:#}", w.connections, w.idle)))?;
    let mut probe = if args.no_trace { Probe::disabled() } else { Probe::load_with(args.timing.timing)? };
    let result = run_model(&mut probe, &spec)?;
    let mut doc = save::new_document("run", 1);
    doc.results.push(model_result(vec![result.clone()]));
    output.write(&doc)?;
    if let Some(dir) = &output.save {
        save::save_run(dir, &doc, &result, 1)?;
    }
    if result.errors > 0 && !args.workload.allow_errors.allow_errors {
        eprintln!("iolab: the load generator saw {} errors (--allow-errors to accept)", result.errors);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
