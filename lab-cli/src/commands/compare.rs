//! `iolab compare`, `prove` and `sweep`: one workload over several models, repeated.
//!
//! Each model gets one warm-up run that is thrown away (page cache, CPU frequency, the first
//! accept queue), then `runs` measured runs; the statistics module keeps the median run and the
//! range of every figure. Models run one after another under the same loaded probe, so each
//! run's window contains one server and nothing else.
//!
//! A server of the user's (`--server NAME='CMD … {port}'`) is one more row, after the models,
//! run exactly as a model is: started traced per run, measured, stopped. The one difference: one
//! that does not start (it exits, or never listens on its port) is noted as not run, with its
//! last output, and the others are still measured; the exit status is then 1.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::commands::args::{Output, ServerArg, parse_server};
use lab_load::Workload;
use lab_measure::{
    bad_input,
    error::BadInput,
    experiment::{self, Step},
    interrupt::{self, Interrupted},
    probe::Probe,
    run::{Counted, RunSpec},
};
use lab_report::{
    present::{export, plot, progress::Progress, verdict},
    results::{
        document::{Document, Unsupported, model_result},
        save,
    },
};
use lab_server::parse_models;

/// The flags `compare`, `prove` and `sweep` share: which models, how often, what to do with the
/// results. Each command adds its own workload flags.
#[derive(Args, Debug)]
pub struct Common {
    /// Models: `all`, a comma-separated list, or `none` (with --server: only those servers).
    #[arg(long, default_value = "all", value_parser = parse_models)]
    pub models: std::vec::Vec<String>,
    /// A server of yours beside the models, as a row named NAME (repeatable): `{port}` in CMD
    /// becomes a free loopback port; it is started traced, measured and stopped per run, as a
    /// model is. E.g. --server py='python3 examples/python/thread_server.py {port}'.
    #[arg(long = "server", value_name = "NAME='CMD … {port}'", value_parser = parse_server)]
    pub servers: Vec<ServerArg>,
    /// Payload bytes per message (1 to 16 MiB).
    #[arg(short = 'b', long = "bytes", value_name = "BYTES", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=crate::commands::args::MAX_PAYLOAD))]
    pub payload_bytes: u64,
    /// Extra connections that stay open and never send (the C10K case).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub idle: u64,
    /// Measured runs per model, after one warm-up run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
    /// Exit 0 even when the load generator saw errors.
    #[arg(long)]
    pub allow_errors: bool,
    #[command(flatten)]
    pub timing: crate::commands::args::TimingArg,
    #[command(flatten)]
    pub output: Output,
}

impl Common {
    /// The workload at `connections` × `messages`, free-running.
    fn spec(&self, connections: u64, messages_per_connection: u64) -> RunSpec {
        let workload = Workload {
            connections: connections as usize,
            messages_per_connection: messages_per_connection as usize,
            payload_bytes: self.payload_bytes as usize,
            idle: self.idle as usize,
            lockstep: false,
        };
        RunSpec { model: String::new(), command: None, workload, counted: Counted::Everything }
    }
}

/// The runs of one workload: each model, then each server.
fn specs(models: &[String], servers: &[ServerArg], workload: &RunSpec) -> Vec<RunSpec> {
    let models = models.iter().map(|model| RunSpec { model: model.clone(), ..workload.clone() });
    models.chain(servers.iter().map(|server| server.spec(workload))).collect()
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Concurrent connections, each sending messages in a closed loop.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections: u64,
    /// Messages per connection.
    #[arg(short = 'm', long = "messages", value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub messages_per_connection: u64,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ProveArgs {
    /// Connections, all ready at once in every round.
    #[arg(short = 'c', long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections: u64,
    /// Rounds: in each, every connection sends one message at the same moment.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub rounds: u64,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Connection counts to sweep, comma-separated.
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "10,100,1000,10000",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections: Vec<u64>,
    /// Messages per connection.
    #[arg(short = 'm', long = "messages", value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages_per_connection: u64,
    /// Where to write the plot.
    #[arg(long, default_value = "iolab-sweep.svg")]
    pub plot: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// Runs `workloads` in order (one per sweep point, or just one) and fills `doc`. An interruption
/// is not an error here: `doc` is marked incomplete and keeps what was measured.
fn measure_into(doc: &mut Document, common: &Common, workloads: &[RunSpec]) -> Result<Option<Interrupted>> {
    let (output, runs) = (&common.output, common.runs as usize);
    let (models, unsupported) = crate::commands::args::unsupported(&common.models);
    doc.unsupported = unsupported;
    let mut probe = Probe::load_with(common.timing.timing)?;
    let steps = (workloads.len() * (models.len() + common.servers.len()) * (runs + 1)) as u64;
    let progress = Progress::new(steps, output.quiet);
    let mut outcome = Ok(());
    for workload in workloads {
        let stamp = doc.clone();
        let mut specs = specs(&models, &common.servers, workload);
        // A server that did not start at an earlier sweep point is not tried again.
        specs.retain(|spec| !doc.unsupported.iter().any(|n| n.model == spec.model));
        outcome = experiment::compare(&mut probe, &specs, runs, true, |step| {
            match step {
                Step::Starting { spec, index } => progress.step(describe(spec, index, runs)),
                Step::Finished { spec: _, index, result } => {
                    if let Some(dir) = &output.save {
                        save::save_run(dir, &stamp, result, index)?;
                    }
                }
                Step::Measured { runs, .. } => doc.results.push(model_result(runs)),
                Step::NotStarted(failed) => {
                    eprintln!("iolab: {failed}");
                    doc.unsupported.push(Unsupported { model: failed.name, reason: failed.reason });
                }
            }
            Ok(())
        });
        if outcome.is_err() {
            break;
        }
    }
    progress.finish();
    match outcome {
        Ok(()) => Ok(None),
        Err(err) => match interrupt::cause(&err) {
            Some(interrupted) => {
                doc.incomplete = true;
                Ok(Some(interrupted))
            }
            None => Err(err),
        },
    }
}

fn describe(spec: &RunSpec, index: usize, runs: usize) -> String {
    let run = if index == 0 { "warm-up".to_owned() } else { format!("run {index}/{runs}") };
    format!("{}, {} connections, {run}", spec.model, spec.workload.connections)
}

/// Writes the document and decides the exit status: 128+signal if interrupted, 1 if a
/// `--server` did not start or any run saw load-generator errors (unless allowed), else 0.
fn finish(doc: &mut Document, common: &Common, interrupted: Option<Interrupted>) -> Result<ExitCode> {
    doc.verdict = verdict::verdict(&doc.results);
    common.output.write(doc)?;
    if let Some(interrupted) = interrupted {
        eprintln!("iolab: {interrupted}: the results above are incomplete");
        return Ok(ExitCode::from(interrupted.exit_code()));
    }
    let not_started = common.servers.iter().filter(|s| doc.unsupported.iter().any(|u| u.model == s.name)).count();
    if not_started > 0 {
        eprintln!("iolab: {not_started} of the --server commands did not start (see above)");
        return Ok(ExitCode::FAILURE);
    }
    let errors: u64 = doc.results.iter().map(|m| m.run.errors).sum();
    if errors > 0 && !common.allow_errors {
        eprintln!("iolab: the load generator saw {errors} errors (--allow-errors to accept)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks that cannot wait: something to run, the output file and save folder, and room for
/// the connections.
fn prepare(common: &Common, connections: u64) -> Result<()> {
    if common.models.is_empty() && common.servers.is_empty() {
        bad_input!("nothing to run: --models none needs at least one --server NAME='CMD … {{port}}'");
    }
    for (i, server) in common.servers.iter().enumerate() {
        if common.servers[..i].iter().any(|earlier| earlier.name == server.name) {
            bad_input!(
                "invalid value for '--server': two servers are called '{}': give each its own name",
                server.name
            );
        }
    }
    common.output.check()?;
    let idle = common.idle;
    lab_load::limits::make_room_for((connections + idle) as usize)
        .map_err(|e| BadInput(format!("--connections {connections} --idle {idle}: {e:#}")))?;
    Ok(())
}

pub fn compare_command(args: CompareArgs) -> Result<ExitCode> {
    let c = &args.common;
    prepare(c, args.connections)?;
    let mut doc = save::new_document("compare", c.runs as usize);
    let workload = c.spec(args.connections, args.messages_per_connection);
    let interrupted = measure_into(&mut doc, c, &[workload])?;
    finish(&mut doc, c, interrupted)
}

pub fn prove_command(args: ProveArgs) -> Result<ExitCode> {
    let c = &args.common;
    prepare(c, args.connections)?;
    let mut doc = save::new_document("prove", c.runs as usize);
    let mut workload = c.spec(args.connections, args.rounds);
    (workload.workload.lockstep, workload.counted) = (true, Counted::Bursts);
    let interrupted = measure_into(&mut doc, c, &[workload])?;
    finish(&mut doc, c, interrupted)
}

pub fn sweep_command(args: SweepArgs) -> Result<ExitCode> {
    let c = &args.common;
    let most = args.connections.iter().max().copied().unwrap_or(1);
    prepare(c, most)?;
    export::open_output(Some(&args.plot.to_string_lossy())).map_err(|e| BadInput(format!("--plot: {e:#}")))?;
    let mut doc = save::new_document("sweep", c.runs as usize);
    let workloads: Vec<RunSpec> = args.connections.iter().map(|&n| c.spec(n, args.messages_per_connection)).collect();
    let interrupted = measure_into(&mut doc, c, &workloads)?;
    // The table first: a plot that cannot be written must not cost the measured results.
    let code = finish(&mut doc, c, interrupted)?;
    plot::sweep_svg(&doc.results, &args.plot)
        .with_context(|| format!("writing the plot to {}", args.plot.display()))?;
    lab_measure::privileges::give_away(&args.plot)?;
    eprintln!("iolab: wrote the plot to {}", args.plot.display());
    Ok(code)
}
