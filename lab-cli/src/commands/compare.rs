//! `iolab compare`, `prove` and `sweep`: one workload over several models, repeated.
//!
//! Each model gets one warm-up run that is thrown away (page cache, CPU frequency, the first
//! accept queue), then `runs` measured runs; the statistics module keeps the median run and the
//! range of every figure. Models run one after another under the same loaded probe, so each
//! run's window contains one server and nothing else.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{
    commands::args::{Output, parse_models},
    error::BadInput,
    interrupt::{self, Interrupted},
    load::Workload,
    measure::probe::Probe,
    measure::run::{Counted, RunSpec},
    present::export,
    present::plot,
    present::progress::Progress,
    present::verdict,
    results::document::{Document, ModelResult},
    results::run::RunResult,
    results::run::run_model,
    results::save,
};

/// The flags `compare`, `prove` and `sweep` share: which models, how often, what to do with the
/// results. Each command adds its own workload flags.
#[derive(Args, Debug)]
pub struct Common {
    /// Models: `all` or a comma-separated list.
    #[arg(long, default_value = "all", value_parser = parse_models)]
    pub models: std::vec::Vec<String>,
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
        RunSpec { model: String::new(), workload, counted: Counted::Everything }
    }
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

/// What `compare` tells its caller as it goes: for the progress line and `--save`.
pub enum Step<'a> {
    /// Run `index` (0 is the warm-up) of `spec.model` is about to start.
    Starting { spec: &'a RunSpec, index: usize },
    /// Measured run `index` (from 1) finished.
    Finished { spec: &'a RunSpec, index: usize, result: &'a RunResult },
}

/// Runs every model on `workload` (its `model` field is ignored) and appends a summary of each to
/// `results` as soon as it is complete. After an error (Ctrl-C included) `results` holds what was
/// finished, plus the current model's measured runs if there were any.
pub fn compare(
    probe: &mut Probe,
    models: &[String],
    workload: &RunSpec,
    runs: usize,
    results: &mut Vec<ModelResult>,
    mut on_step: impl FnMut(Step<'_>) -> Result<()>,
) -> Result<()> {
    for model in models {
        let spec = RunSpec { model: model.clone(), ..workload.clone() };
        let mut measured = Vec::with_capacity(runs);
        let outcome = (|| -> Result<()> {
            on_step(Step::Starting { spec: &spec, index: 0 })?;
            run_model(probe, &spec)?; // warm-up, not kept
            for index in 1..=runs {
                on_step(Step::Starting { spec: &spec, index })?;
                let result = run_model(probe, &spec)?;
                on_step(Step::Finished { spec: &spec, index, result: &result })?;
                measured.push(result);
            }
            Ok(())
        })();
        if !measured.is_empty() {
            results.push(crate::results::document::model_result(measured));
        }
        outcome?;
    }
    Ok(())
}

/// Runs `workloads` in order (one per sweep point, or just one) and fills `doc`. An interruption
/// is not an error here: `doc` is marked incomplete and keeps what was measured.
fn measure_into(
    doc: &mut Document,
    models: &[String],
    workloads: &[RunSpec],
    runs: usize,
    output: &Output,
    timing: bool,
) -> Result<Option<Interrupted>> {
    let (models, unsupported) = crate::commands::args::unsupported(models);
    doc.unsupported = unsupported;
    let models = models.as_slice();
    let mut probe = Probe::load_with(timing)?;
    let steps = (workloads.len() * models.len() * (runs + 1)) as u64;
    let progress = Progress::new(steps, output.quiet);
    let mut outcome = Ok(());
    for workload in workloads {
        let stamp = doc.clone();
        outcome = compare(&mut probe, models, workload, runs, &mut doc.results, |step| {
            match step {
                Step::Starting { spec, index } => progress.step(describe(spec, index, runs)),
                Step::Finished { spec: _, index, result } => {
                    if let Some(dir) = &output.save {
                        save::save_run(dir, &stamp, result, index)?;
                    }
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

/// Writes the document and decides the exit status: 128+signal if interrupted, 1 if any run saw
/// load-generator errors (unless allowed), else 0.
fn finish(
    doc: &mut Document,
    output: &Output,
    interrupted: Option<Interrupted>,
    allow_errors: bool,
) -> Result<ExitCode> {
    doc.verdict = verdict::verdict(&doc.results);
    output.write(doc)?;
    if let Some(interrupted) = interrupted {
        eprintln!("iolab: {interrupted}: the results above are incomplete");
        return Ok(ExitCode::from(interrupted.exit_code()));
    }
    let errors: u64 = doc.results.iter().map(|m| m.run.errors).sum();
    if errors > 0 && !allow_errors {
        eprintln!("iolab: the load generator saw {errors} errors (--allow-errors to accept)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks that cannot wait: the output file and save folder, and room for the connections.
fn prepare(output: &Output, connections: u64, idle: u64) -> Result<()> {
    output.check()?;
    crate::load::limits::make_room_for((connections + idle) as usize)
        .map_err(|e| BadInput(format!("--connections {connections} --idle {idle}: {e:#}")))?;
    Ok(())
}

pub fn compare_command(args: CompareArgs) -> Result<ExitCode> {
    let c = &args.common;
    prepare(&c.output, args.connections, c.idle)?;
    let mut doc = save::new_document("compare", c.runs as usize);
    let workload = c.spec(args.connections, args.messages_per_connection);
    let interrupted = measure_into(&mut doc, &c.models, &[workload], c.runs as usize, &c.output, c.timing.timing)?;
    finish(&mut doc, &c.output, interrupted, c.allow_errors)
}

pub fn prove_command(args: ProveArgs) -> Result<ExitCode> {
    let c = &args.common;
    prepare(&c.output, args.connections, c.idle)?;
    let mut doc = save::new_document("prove", c.runs as usize);
    let mut workload = c.spec(args.connections, args.rounds);
    (workload.workload.lockstep, workload.counted) = (true, Counted::Bursts);
    let interrupted = measure_into(&mut doc, &c.models, &[workload], c.runs as usize, &c.output, c.timing.timing)?;
    finish(&mut doc, &c.output, interrupted, c.allow_errors)
}

pub fn sweep_command(args: SweepArgs) -> Result<ExitCode> {
    let c = &args.common;
    let most = args.connections.iter().max().copied().unwrap_or(1);
    prepare(&c.output, most, c.idle)?;
    export::open_output(Some(&args.plot.to_string_lossy())).map_err(|e| BadInput(format!("--plot: {e:#}")))?;
    let mut doc = save::new_document("sweep", c.runs as usize);
    let workloads: Vec<RunSpec> = args.connections.iter().map(|&n| c.spec(n, args.messages_per_connection)).collect();
    let interrupted = measure_into(&mut doc, &c.models, &workloads, c.runs as usize, &c.output, c.timing.timing)?;
    // The table first: a plot that cannot be written must not cost the measured results.
    let code = finish(&mut doc, &c.output, interrupted, c.allow_errors)?;
    plot::sweep_svg(&doc.results, &args.plot)
        .with_context(|| format!("writing the plot to {}", args.plot.display()))?;
    crate::measure::privileges::give_away(&args.plot)?;
    eprintln!("iolab: wrote the plot to {}", args.plot.display());
    Ok(code)
}
