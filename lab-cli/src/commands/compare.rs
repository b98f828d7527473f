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

use crate::commands::args::{
    OutputArgs, ProfileArgs, ServerArg, parse_server,
    workload::{AllowErrors, Connections, Idle, MAX_CONNECTIONS, Messages, Payload, count, short_allow_errors},
};
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
/// results, and the workload flags that come after those. Each command adds its own `-c` (and
/// `-m` or `--rounds`) before them.
#[derive(Args, Debug)]
#[command(mut_arg("allow_errors", short_allow_errors))]
pub struct Common {
    /// Models: `all`, a comma-separated list, or `none` (with --server: only those servers).
    #[arg(long, default_value = "all", value_parser = parse_models)]
    pub models: std::vec::Vec<String>,
    /// A server of yours beside the models, as a row named NAME (repeatable): `{port}` in CMD
    /// becomes a free loopback port; it is started traced, measured and stopped per run, as a
    /// model is. E.g. --server py='python3 examples/python/thread_server.py {port}'.
    #[arg(long = "server", value_name = "NAME='CMD … {port}'", value_parser = parse_server)]
    pub servers: Vec<ServerArg>,
    #[command(flatten)]
    pub payload: Payload,
    #[command(flatten)]
    pub idle: Idle,
    /// Measured runs per model, after one warm-up run.
    #[arg(long, default_value_t = 3, value_parser = count(1..=100))]
    pub runs: usize,
    #[command(flatten)]
    pub allow_errors: AllowErrors,
    #[command(flatten)]
    pub timing: crate::commands::args::TimingArg,
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl Common {
    /// The runs of `workload` with this payload and these idle connections, everything counted
    /// (the name is each model's or server's, see [`specs`]).
    fn spec(&self, workload: Workload) -> RunSpec {
        let workload = workload.with_payload(self.payload.payload_bytes).with_idle(self.idle.idle);
        RunSpec { workload, ..RunSpec::model("") }
    }
}

/// The runs of one workload: each model, then each server.
fn specs(models: &[String], servers: &[ServerArg], workload: &RunSpec) -> Vec<RunSpec> {
    let models = models.iter().map(|model| RunSpec { name: model.clone(), ..workload.clone() });
    models.chain(servers.iter().map(|server| server.spec(workload))).collect()
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub connections: Connections,
    #[command(flatten)]
    pub messages: Messages,
    #[command(flatten)]
    pub common: Common,
}

/// Lockstep rounds instead of `-m`, and by default the walkthrough's 10,000 connections.
#[derive(Args, Debug)]
#[command(mut_arg("connections", |a| a.default_value("10000").help("Connections, all ready at once in every round")))]
pub struct ProveArgs {
    #[command(flatten)]
    pub connections: Connections,
    /// Rounds: in each, every connection sends one message at the same moment.
    #[arg(long, default_value_t = 3, value_parser = count(1..=10_000))]
    pub rounds: usize,
    #[command(flatten)]
    pub common: Common,
}

/// `-c` is a list here, one point of the sweep each, so it is a flag of its own (with the bounds
/// of [`Connections`]).
#[derive(Args, Debug)]
#[command(mut_arg("messages_per_connection", |a| a.default_value("10")))]
pub struct SweepArgs {
    /// Connection counts to sweep, comma-separated.
    #[arg(short = 'c', long, value_delimiter = ',', default_value = "10,100,1000,10000",
          value_parser = count(1..=MAX_CONNECTIONS))]
    pub connections: Vec<usize>,
    #[command(flatten)]
    pub messages: Messages,
    /// Where to write the plot.
    #[arg(long, default_value = "iolab-sweep.svg")]
    pub plot: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// Runs `workloads` in order (one per sweep point, or just one) and fills `doc`. An interruption
/// is not an error here: `doc` is marked incomplete and keeps what was measured.
fn measure_into(doc: &mut Document, common: &Common, workloads: &[RunSpec]) -> Result<Option<Interrupted>> {
    let (output, runs) = (&common.output, common.runs);
    let (models, unsupported) = crate::commands::args::unsupported(&common.models);
    doc.unsupported = unsupported;
    let mut probe = Probe::load_with(lab_measure::probe::ProbeOptions {
        timing: common.timing.timing,
        profile: common.profile.options(),
    })?;
    let steps = (workloads.len() * (models.len() + common.servers.len()) * (runs + 1)) as u64;
    let progress = Progress::new(steps, output.quiet);
    let mut outcome = Ok(());
    for workload in workloads {
        let stamp = doc.clone();
        let mut specs = specs(&models, &common.servers, workload);
        // A server that did not start at an earlier sweep point is not tried again.
        specs.retain(|spec| !doc.unsupported.iter().any(|n| n.model == spec.name));
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
    format!("{}, {} connections, {run}", spec.name, spec.workload.connections)
}

/// Writes the document and decides the exit status: 128+signal if interrupted, 1 if a
/// `--server` did not start or any run saw load-generator errors (unless allowed), else 0.
fn finish(doc: &mut Document, common: &Common, interrupted: Option<Interrupted>) -> Result<ExitCode> {
    doc.verdict = verdict::verdict(&doc.results);
    common.output.write(doc)?;
    write_profiles(doc, &common.profile);
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
    if errors > 0 && !common.allow_errors.allow_errors {
        eprintln!("iolab: the load generator saw {errors} errors (--allow-errors to accept)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Each model's stacks (its median run's), where --flamegraph and --export-folded asked: named
/// for the model, and for its connections too when the document holds several loads (sweep).
fn write_profiles(doc: &Document, profile: &ProfileArgs) {
    let loads: std::collections::BTreeSet<usize> = doc.results.iter().map(|m| m.run.workload.connections).collect();
    for m in &doc.results {
        let Some(stacks) = &m.run.profile else { continue };
        let name = match loads.len() {
            1 => m.run.model.clone(),
            _ => format!("{}-{}", m.run.model, m.run.workload.connections),
        };
        profile.write(&name, stacks, &crate::commands::run::profile_title(&m.run));
    }
}

/// Checks that cannot wait: something to run, the output file and save folder, and room for
/// the connections.
fn prepare(common: &Common, connections: usize) -> Result<()> {
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
    common.profile.check()?;
    let idle = common.idle.idle;
    lab_load::limits::make_room_for(connections + idle)
        .map_err(|e| BadInput(format!("--connections {connections} --idle {idle}: {e:#}")))?;
    Ok(())
}

pub fn compare_command(args: CompareArgs) -> Result<ExitCode> {
    let c = &args.common;
    let connections = args.connections.connections;
    prepare(c, connections)?;
    let mut doc = save::new_document("compare", c.runs);
    let workload = c.spec(Workload::free(connections, args.messages.messages_per_connection));
    let interrupted = measure_into(&mut doc, c, &[workload])?;
    finish(&mut doc, c, interrupted)
}

pub fn prove_command(args: ProveArgs) -> Result<ExitCode> {
    let c = &args.common;
    let connections = args.connections.connections;
    prepare(c, connections)?;
    let mut doc = save::new_document("prove", c.runs);
    let workload = RunSpec { counted: Counted::Bursts, ..c.spec(Workload::lockstep(connections, args.rounds)) };
    let interrupted = measure_into(&mut doc, c, &[workload])?;
    finish(&mut doc, c, interrupted)
}

pub fn sweep_command(args: SweepArgs) -> Result<ExitCode> {
    let c = &args.common;
    let most = args.connections.iter().max().copied().unwrap_or(1);
    prepare(c, most)?;
    export::check_writable(Some(&args.plot.to_string_lossy())).map_err(|e| BadInput(format!("--plot: {e:#}")))?;
    let mut doc = save::new_document("sweep", c.runs);
    let messages = args.messages.messages_per_connection;
    let workloads: Vec<RunSpec> = args.connections.iter().map(|&n| c.spec(Workload::free(n, messages))).collect();
    let interrupted = measure_into(&mut doc, c, &workloads)?;
    // The table first: a plot that cannot be written must not cost the measured results.
    let code = finish(&mut doc, c, interrupted)?;
    plot::sweep_svg(&doc.results, &args.plot)
        .with_context(|| format!("writing the plot to {}", args.plot.display()))?;
    lab_measure::privileges::give_away(&args.plot)?;
    eprintln!("iolab: wrote the plot to {}", args.plot.display());
    Ok(code)
}
