//! `iolab scan`: the cost of one wait call against the number of fds it watches — the classic
//! select/poll/epoll experiment.
//!
//! Each point is `--runs` measured runs (the median kept, as `compare` does) with one busy
//! connection and N−1 idle ones: the busy one plays ping-pong, so each wait call finds one fd
//! ready, and the load generator pauses with every connection open and again once the last reply is
//! in, so the window holds the messages alone (the same pauses as `prove`).
//!
//! In ping-pong every call sleeps until the next message arrives, and a poll or select that
//! sleeps walks its fds twice (before sleeping and after the wake-up). `--ready` measures each
//! point a second time with a message already queued at every call (one walk, no sleep; see
//! `experiment::scan_spec`), so one scan holds both cases: each row says which (`mode`) and how
//! many of its calls slept (`slept_fraction`), the table and the plot show both, and the sentence
//! under the table compares them. Only models that wait again after one read per ready socket
//! (select, poll, epoll) can find the next message queued: the edge-triggered ones read until
//! the socket is empty first. Models run one after
//! another under one loaded probe, each after one warm-up run at its smallest N that is not kept.
//! Everything that can be wrong with the command line — the lists, the outputs, the descriptors N
//! needs — is checked before the probe loads.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::commands::args::{
    OutputArgs, ProfileArgs,
    workload::{AllowErrors, MAX_CONNECTIONS, count, short_allow_errors},
};
use lab_measure::{
    bad_input,
    error::BadInput,
    experiment::{self, Step},
    interrupt,
    probe::Probe,
    result::RunResult,
    run::RunSpec,
};
use lab_report::{
    present::{export, html, plot, progress::Progress, scan},
    results::{
        save,
        scan::{Mode as ScanMode, ScanReport, ScanRow, median as scan_median},
    },
};
use lab_server::parse_models;

/// The models whose server waits for its sockets in one loop with select, poll or epoll: the
/// ones where "one wait call over N fds" is what the server does.
pub const SCANNED_MODELS: &[&str] = &["select", "poll", "epoll", "epoll-et", "coroutine"];

#[derive(Args, Debug)]
#[command(mut_arg("allow_errors", short_allow_errors))]
pub struct ScanArgs {
    /// Fds to watch at each point, comma-separated: N connections, one busy and N−1 idle.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000,10000",
          value_parser = count(1..=MAX_CONNECTIONS))]
    pub fds: Vec<usize>,
    /// Models, comma-separated, of select, poll, epoll, epoll-et, coroutine.
    #[arg(long, default_value = "select,poll,epoll", value_parser = parse_scanned_models)]
    pub models: std::vec::Vec<String>,
    /// Messages the busy connection sends at each point: one wait call each.
    #[arg(long, default_value_t = 10_000, value_parser = count(1..=100_000_000))]
    pub calls: usize,
    /// Measured runs at each point; the row is the median one, with the range of its cost.
    #[arg(long, default_value_t = 3, value_parser = count(1..=100))]
    pub runs: usize,
    /// Also measure each point with a message already queued at every wait call, so no call
    /// sleeps (select, poll, epoll), beside the default where every call sleeps.
    #[arg(long)]
    pub ready: bool,
    /// Also draw the scan as an SVG here (log–log, one line per model).
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub allow_errors: AllowErrors,
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--models`: a list of [`SCANNED_MODELS`], each once.
fn parse_scanned_models(list: &str) -> Result<Vec<String>, String> {
    let models = parse_models(list)?;
    if let Some(other) = models.iter().find(|m| !SCANNED_MODELS.contains(&m.as_str())) {
        return Err(format!(
            "'{other}' does not wait for its sockets in one select, poll or epoll loop; scan takes {}",
            SCANNED_MODELS.join(", ")
        ));
    }
    if let Some(twice) = models.iter().enumerate().find(|(i, m)| models[..*i].contains(m)) {
        return Err(format!("'{}' is named twice; name each model once", twice.1));
    }
    Ok(models)
}

/// The models `--ready` takes: those that read once per ready socket and wait again, so their
/// next wait call can find the next message queued.
pub const READY_MODELS: &[&str] = &["select", "poll", "epoll"];

/// The checks that cannot wait: each N once, `--ready` with models it works for, room for the
/// largest N, every output writable.
fn prepare(args: &mut ScanArgs) -> Result<()> {
    if args.ready
        && let Some(other) = args.models.iter().find(|m| !READY_MODELS.contains(&m.as_str()))
    {
        bad_input!(
            "--ready: '{other}' reads each socket until it is empty before it waits again, so its wait calls \
             cannot find a message queued; --ready takes {}",
            READY_MODELS.join(", ")
        );
    }
    args.fds.sort_unstable();
    if let Some(twice) = args.fds.windows(2).find(|w| w[0] == w[1]) {
        bad_input!("--fds: {} is named twice; name each number once", twice[0]);
    }
    let most = *args.fds.last().expect("clap gives at least the default");
    lab_load::limits::make_room_for(most).map_err(|e| BadInput(format!("--fds {most}: {e:#}")))?;
    args.output.check()?;
    args.profile.check()?;
    if let Some(path) = &args.plot {
        export::check_writable(Some(&path.to_string_lossy())).map_err(|e| BadInput(format!("--plot: {e:#}")))?;
    }
    Ok(())
}

pub fn scan_command(mut args: ScanArgs) -> Result<ExitCode> {
    prepare(&mut args)?;
    let stamp = save::new_document("scan", args.runs);
    let mut points: Vec<Vec<RunResult>> = Vec::new();
    let outcome = measure(&args, &mut points, |result, number| match &args.output.save {
        Some(dir) => save::save_run(dir, &stamp, result, number).map(drop),
        None => Ok(()),
    });
    let interrupted = match outcome {
        Ok(()) => None,
        Err(err) => Some(interrupt::cause(&err).ok_or(err)?),
    };
    let rows = points.iter().filter(|runs| !runs.is_empty()).map(|runs| ScanRow::from_runs(runs)).collect();
    let report = ScanReport::new(rows, args.calls as u64, args.runs as u64, interrupted.is_some());
    // The table first: a plot that cannot be written must not cost the measured results.
    args.output.write_rendered(|format| scan::render(&report, format), || html::scan(&report))?;
    write_profiles(&args.profile, &points);
    if let Some(path) = args.plot.as_ref().filter(|_| !report.rows.is_empty()) {
        plot::scan_svg(&report, path).with_context(|| format!("writing the plot to {}", path.display()))?;
        lab_measure::privileges::give_away(path)?;
        eprintln!("iolab: wrote the plot to {}", path.display());
    }
    if let Some(interrupted) = interrupted {
        eprintln!("iolab: {interrupted}: the results above are incomplete");
        return Ok(ExitCode::from(interrupted.exit_code()));
    }
    let errors: u64 = report.rows.iter().map(|r| r.errors).sum();
    if errors > 0 && !args.allow_errors.allow_errors {
        eprintln!("iolab: the load generator saw {errors} errors (--allow-errors to accept)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Each point's stacks (its median run's) as `{model}-{fds}` (`{model}-{fds}-ready` for the
/// `--ready` case), and per model and case a differential flame graph from its fewest fds to its
/// most, `{model}-{fewest}-{most}[-ready]-diff.svg`: what grew with N is red.
fn write_profiles(profile: &ProfileArgs, points: &[Vec<RunResult>]) {
    let medians: Vec<&RunResult> = points.iter().filter(|runs| !runs.is_empty()).map(|r| scan_median(r)).collect();
    let case = |r: &RunResult| if ScanMode::of(r) == ScanMode::Ready { "-ready" } else { "" };
    let fds = |r: &RunResult| r.workload.all_connections();
    for run in &medians {
        if let Some(stacks) = &run.profile {
            profile.write(&format!("{}-{}{}", run.model, fds(run), case(run)), stacks, &super::run::profile_title(run));
        }
    }
    for (i, first) in medians.iter().enumerate() {
        let same = |r: &&&RunResult| r.model == first.model && ScanMode::of(r) == ScanMode::of(first);
        if medians[..i].iter().any(|r| same(&r)) {
            continue; // not the model's first point in this case
        }
        let Some(last) = medians.iter().filter(same).max_by_key(|r| fds(r)) else { continue };
        if let (Some(before), Some(after)) = (&first.profile, &last.profile)
            && fds(last) > fds(first)
        {
            let (few, most) = (fds(first), fds(last));
            let title =
                format!("{}: {most} fds against {few} (red: a larger share of the samples at {most})", first.model);
            profile.write_differential(&format!("{}-{few}-{most}{}", first.model, case(first)), before, after, &title);
        }
    }
}

/// Every model at every N, `--runs` times, into `points` (one list of runs per point) as each
/// point finishes; `on_run` sees each run with its number (from 1). After an error (Ctrl-C
/// included) `points` holds what finished.
fn measure(
    args: &ScanArgs,
    points: &mut Vec<Vec<RunResult>>,
    mut on_run: impl FnMut(&RunResult, usize) -> Result<()>,
) -> Result<()> {
    let mut probe =
        Probe::load_with(lab_measure::probe::ProbeOptions { timing: false, profile: args.profile.options() })?;
    let cases = if args.ready { 2 } else { 1 };
    let steps = args.models.len() * (args.fds.len() * cases * args.runs + 1);
    let progress = Progress::new(steps as u64, args.output.quiet);
    let outcome = experiment::scan(&mut probe, &args.models, &args.fds, args.runs, args.calls, args.ready, |step| {
        match step {
            Step::Starting { spec, index: 0 } => progress.step(format!("{}, {} fds, warm-up", spec.name, fds(spec))),
            Step::Starting { spec, index } => {
                let case = if spec.workload.ahead > 0 { ", message ready" } else { "" };
                progress.step(format!("{}, {} fds{case}, run {index}/{}", spec.name, fds(spec), args.runs))
            }
            Step::Finished { index, result, .. } => on_run(result, index)?,
            Step::Measured { runs, .. } => points.push(runs),
            Step::NotStarted(_) => unreachable!("a scan runs models, which start"),
        }
        Ok(())
    });
    progress.finish();
    outcome
}

/// The fds a scan point watches: its busy connection and its idle ones.
fn fds(spec: &RunSpec) -> usize {
    spec.workload.connections + spec.workload.idle
}
