//! The experiments: runs of models and servers, one after another under one loaded probe.
//!
//! [`run_model`] is one run: start the server traced, drive it, stop it. [`compare`] runs each
//! of several specs (a model or a `--server`) after a warm-up run that is thrown away, `runs`
//! times; [`scan`] runs each model at each number of watched fds. Each tells its caller what it is
//! doing and what it found through a [`Step`], so the caller draws progress, saves runs as they
//! finish and builds its document, and none of that lives here.
//!
//! Models run one after another, so each run's window contains one server and nothing else.

use anyhow::{Context as _, Result};
use lab_load::Workload;

use crate::{
    probe::Probe,
    result::{RunResult, Unmeasured},
    run::{Counted, NotStarted, RunSpec, measure, start_model},
};

/// One run of `spec.name` on `spec.workload`, measured: start it traced, drive it, stop it.
pub fn run_model(probe: &mut Probe, spec: &RunSpec) -> Result<RunResult> {
    let (mut server, addr) = start_model(probe, spec)?;
    let context = || format!("{} {}", if spec.command.is_some() { "server" } else { "model" }, spec.name);
    let measured = measure(probe, server.pid, addr, spec, &mut || server.check_alive()).with_context(context)?;
    let usage = server.stop()?;
    let mut result = RunResult::from_measured(&spec.name, measured, usage);
    result.not_measured = probe
        .not_measured
        .iter()
        .map(|missing| Unmeasured { figure: missing.figure.to_owned(), needs: missing.needs.clone() })
        .collect();
    Ok(result)
}

/// What an experiment tells its caller as it goes.
pub enum Step<'a> {
    /// Run `index` (0 is the warm-up) of `spec` is about to start.
    Starting { spec: &'a RunSpec, index: usize },
    /// Measured run `index` (from 1) of `spec` finished.
    Finished { spec: &'a RunSpec, index: usize, result: &'a RunResult },
    /// Every measured run of `spec` that finished: all of them, or those before an error.
    Measured { spec: &'a RunSpec, runs: Vec<RunResult> },
    /// `spec`, a `--server`, did not start on its first run; the experiment went on without it.
    NotStarted(NotStarted),
}

/// Runs every spec, after a warm-up run if `warm_up`, `runs` times each. A server that does not
/// start on its first run is reported as [`Step::NotStarted`] and the others go on. After an error
/// (Ctrl-C included) the current spec's finished runs, if any, have been reported as
/// [`Step::Measured`] before the error is returned.
pub fn compare(
    probe: &mut Probe,
    specs: &[RunSpec],
    runs: usize,
    warm_up: bool,
    mut on_step: impl FnMut(Step<'_>) -> Result<()>,
) -> Result<()> {
    for spec in specs {
        let warmed = if warm_up { warm_up_run(probe, spec, &mut on_step) } else { Ok(()) };
        let (measured, outcome) = match warmed {
            Ok(()) => measured_runs(probe, spec, runs, &mut on_step),
            Err(err) => (Vec::new(), Err(err)),
        };
        if !measured.is_empty() {
            on_step(Step::Measured { spec, runs: measured })?;
        } else if let Err(err) = outcome {
            match err.downcast::<NotStarted>() {
                Ok(failed) => {
                    on_step(Step::NotStarted(failed))?;
                    continue;
                }
                Err(err) => return Err(err),
            }
        }
        outcome?;
    }
    Ok(())
}

/// One run of `spec` that is not kept: page cache, CPU frequency, the first accept queue.
fn warm_up_run(probe: &mut Probe, spec: &RunSpec, on_step: &mut impl FnMut(Step<'_>) -> Result<()>) -> Result<()> {
    on_step(Step::Starting { spec, index: 0 })?;
    run_model(probe, spec).map(drop)
}

/// `runs` measured runs of `spec`, each reported as it starts and ends: the runs that finished,
/// and how the loop ended (after an error, the runs before it are kept).
fn measured_runs(
    probe: &mut Probe,
    spec: &RunSpec,
    runs: usize,
    on_step: &mut impl FnMut(Step<'_>) -> Result<()>,
) -> (Vec<RunResult>, Result<()>) {
    let mut measured = Vec::with_capacity(runs);
    for index in 1..=runs {
        let run = on_step(Step::Starting { spec, index }).and_then(|()| run_model(probe, spec));
        let ended = run.and_then(|result| {
            on_step(Step::Finished { spec, index, result: &result })?;
            measured.push(result);
            Ok(())
        });
        if let Err(err) = ended {
            return (measured, Err(err));
        }
    }
    (measured, Ok(()))
}

/// The workload of one scan point: one busy connection, `fds - 1` idle, `calls` messages; the
/// window holds the messages alone ([`Counted::Rounds`]).
///
/// By default every wait call sleeps: each message is the default payload (small, so the wait
/// call's cost is not hidden by copying), sent [`think_us`] after the last reply, by when the
/// server has walked its fds and gone to sleep (sent at once, it can arrive during the first walk:
/// the call then does not sleep, yet walks twice). `ready` has every wait call find a message
/// already queued: each message is one full server read ([`lab_server::protocol::BUF_SIZE`]), and
/// the connection keeps [`READY_AHEAD`] more in flight beyond the reply it reads, so when the
/// server has read and answered one, the next is usually in its socket already. A smaller message
/// would not do: the server reads everything queued at once, and its next call would sleep again.
pub fn scan_spec(model: &str, fds: usize, calls: usize, ready: bool) -> RunSpec {
    let workload = Workload::free(1, calls).with_idle(fds - 1);
    let workload = if ready {
        workload.with_payload(lab_server::protocol::BUF_SIZE).with_ahead(READY_AHEAD)
    } else {
        workload.with_think_us(think_us(fds))
    };
    RunSpec { workload, counted: Counted::Rounds, ..RunSpec::model(model) }
}

/// The pause after each reply in a sleeping scan point: longer than a server watching `fds`
/// descriptors takes from its reply to sleeping in the next wait call. poll and select walk about
/// 0.1 µs per fd on this lab's machines (BENCHMARKS.md, the scan); this allows twice that, over
/// 50 µs for the syscalls around it.
pub fn think_us(fds: usize) -> u64 {
    50 + fds as u64 / 5
}

/// Messages the busy connection keeps in flight beyond the reply it reads in a ready scan point.
/// The server only finds the next one queued while the client keeps ahead of it, and the two do
/// about the same work per message, so the lead must absorb their jitter: a deep one.
pub const READY_AHEAD: usize = 64;

/// Every model at every number of fds in `fds` (smallest first), `runs` times, after one warm-up
/// run per model at the smallest; with `ready`, each point once with sleeping calls and once with
/// a message ready ([`scan_spec`]). Each point's runs are reported as [`Step::Measured`] (with the
/// point's spec) once they are done, or as far as they got before an error.
pub fn scan(
    probe: &mut Probe,
    models: &[String],
    fds: &[usize],
    runs: usize,
    calls: usize,
    ready: bool,
    mut on_step: impl FnMut(Step<'_>) -> Result<()>,
) -> Result<()> {
    let cases: &[bool] = if ready { &[false, true] } else { &[false] };
    for model in models {
        warm_up_run(probe, &scan_spec(model, fds[0], calls, false), &mut on_step)?;
        for &n in fds {
            for &ready in cases {
                let spec = scan_spec(model, n, calls, ready);
                let (point, outcome) = measured_runs(probe, &spec, runs, &mut on_step);
                if !point.is_empty() {
                    on_step(Step::Measured { spec: &spec, runs: point })?;
                }
                outcome?;
            }
        }
    }
    Ok(())
}
