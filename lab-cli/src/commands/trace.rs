//! `iolab trace`: any server under the probe — one the lab starts (`-- CMD ARGS…`), or one that
//! is already running (`--pid PID`).
//!
//! - **Started**: through `launch`, like the models, so it is traced from its first instruction
//!   with everything it ever starts. Its stdout and stderr are read by the lab, which keeps the
//!   last lines for error messages.
//! - **Running**: every thread of PID and of its descendants is marked; the probe follows the
//!   tasks they create from then on. Marking races with the server creating tasks, so the lab
//!   marks and looks again until looks find nothing new (see [`attach`]). Dropping the probe at
//!   the end detaches everything; the server never notices.
//!
//! Either way the server is ready when a process of its tree has a LISTEN socket on the address,
//! read from /proc (see `tree`): the lab never connects to find out, since the probe would count
//! that connection as the server's work. Without `--addr` the lab takes the one port the tree
//! listens on (a wildcard address is reached through loopback), so `iolab trace -- ./server`
//! needs no flag for a server that picks its own port; it asks for `--addr` when there are
//! several. Then the same measurement as `iolab run`
//! (`run::measure`) and the same table and JSON, with one difference because the server may not
//! be our child: its CPU time is the tree's user and system time over the measured window, from
//! /proc (`iolab run` reports the whole life, from wait4), and peak RSS is the largest VmHWM in
//! the tree (since each process started).
//!
//! `--validate` adds a second run of the same load under strace (see `validate`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::commands::{args::WorkloadArgs, top};
use lab_measure::{
    attach::attach,
    bad_input,
    error::BadInput,
    interrupt,
    launch::Usage,
    probe::Probe,
    process::{self, Child, Spawn, Stderr, Stdout},
    result::RunResult,
    run::{self, RunSpec},
    tree::{self, wait_listening},
    validate::{self, Validation},
};
use lab_report::present::export::Format;

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// Where the server listens (a loopback address). Default: the one TCP address it listens
    /// on (0.0.0.0 and :: are reached through 127.0.0.1 and ::1).
    #[arg(long, value_parser = crate::commands::args::parse_addr)]
    pub addr: Option<SocketAddr>,
    /// Attach to this running server and its descendants instead of starting one; it keeps
    /// running afterwards.
    #[arg(long, short = 'p', conflicts_with = "command")]
    pub pid: Option<u32>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub timing: crate::commands::args::TimingArg,
    #[command(flatten)]
    pub profile: crate::commands::args::ProfileArgs,
    /// How the results are shown: tables, or JSON, CSV or Markdown for programs and notes.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Serve the load a second time with strace attached (and perf, if installed) and check
    /// that they counted what the probe counted; exit 1 if not.
    #[arg(long, conflicts_with = "interval")]
    pub validate: bool,
    /// Seconds to wait for the server to listen.
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    pub ready_timeout: f64,
    /// With --pid: no load; show live rates every INTERVAL (e.g. 1s), as `iolab top` does.
    #[arg(long, requires = "pid", value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,
    /// With --interval: stop after this many intervals (default: at Ctrl-C).
    #[arg(long, requires = "interval")]
    pub count: Option<u64>,
    /// The server command and its arguments.
    #[arg(last = true, required_unless_present = "pid", value_name = "CMD")]
    pub command: Vec<String>,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds between 0 and 3600")),
    }
}

/// What `iolab trace` measured: the run, and the validation if asked.
pub struct Traced {
    pub run: RunResult,
    pub validation: Option<Validation>,
}

pub fn trace_command(args: TraceArgs) -> Result<ExitCode> {
    if let Some(addr) = args.addr.filter(|a| !a.ip().is_loopback()) {
        bad_input!("invalid value '{addr}' for '--addr': the load generator drives loopback addresses only");
    }
    if args.interval.is_some() && args.pid.is_none() {
        bad_input!("'--interval' shows the live rates of a running server: give its '--pid' (or drop '--interval')");
    }
    if args.interval.is_some() && args.timing.timing {
        bad_input!("'--timing' times the syscalls of one measured window: drop '--interval' (or '--timing')");
    }
    if args.interval.is_some() && args.profile.profile {
        bad_input!("'--profile' samples the stacks of one measured window: drop '--interval' (or '--profile')");
    }
    args.profile.check()?;
    if let (Some(pid), Some(interval)) = (args.pid, args.interval) {
        if matches!(args.format, Format::Csv | Format::Markdown) {
            bad_input!("invalid value for '--format' with '--interval': live rates come as a table or JSON lines");
        }
        return top::watch(pid, interval, args.count, top::DEFAULT_SYSCALLS, args.format);
    }
    if args.validate && process::which("strace").is_none() {
        bad_input!("{}", validate::NO_STRACE);
    }
    // The whole run is the window (connecting and closing included): strace cannot be told to
    // count only part of it, so `--validate` needs the probe to count all of it too.
    let spec = args.workload.spec("");
    let w = spec.workload;
    lab_load::limits::make_room_for(w.all_connections())
        .map_err(|e| BadInput(format!("--connections {} --idle {}: {e:#}", w.connections, w.idle)))?;
    let traced = match args.pid {
        Some(pid) => trace_running(pid, &args, spec)?,
        None => trace_started(&args, spec)?,
    };
    print!("{}", render(&traced, args.format)?);
    if let Some(profile) = &traced.run.profile {
        args.profile.write(&traced.run.model, profile, &crate::commands::run::profile_title(&traced.run));
    }
    let validation_ok = traced.validation.as_ref().is_none_or(|v| v.ok);
    if traced.run.errors > 0 && !args.workload.allow_errors.allow_errors {
        eprintln!("iolab: the load generator saw {} errors (--allow-errors to accept)", traced.run.errors);
        return Ok(ExitCode::FAILURE);
    }
    if !validation_ok {
        eprintln!(
            "iolab: the probe and {} disagree: {}",
            validate::TOOLS,
            traced.validation.as_ref().map_or(String::new(), |v| v.mismatches())
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The run as the one document every command writes, with the validation if there was one.
pub fn render(traced: &Traced, format: Format) -> Result<String> {
    let mut doc = lab_report::results::save::new_document("trace", 1);
    doc.results.push(lab_report::results::document::model_result(vec![traced.run.clone()]));
    doc.validation.clone_from(&traced.validation);
    Ok(lab_report::present::export::render(&doc, format))
}

/// `-- CMD ARGS…`: start it traced, measure, stop it. Every failure names the command and ends
/// with the last lines it printed.
fn trace_started(args: &TraceArgs, mut spec: RunSpec) -> Result<Traced> {
    let (program, rest) = args.command.split_first().context("no command given")?;
    let program = find_program(program)?;
    spec.name = display_name(&args.command);
    let mut probe = Probe::load_with(lab_measure::probe::ProbeOptions {
        timing: args.timing.timing,
        profile: args.profile.options(),
    })?;
    let spawn = Spawn::program(&program).named("the server").args(rest).stdout(Stdout::Tail).stderr(Stderr::Tail);
    let mut server = spawn.own_group().as_invoking_user().start_traced(&mut probe)?;
    let tail = server.tail();
    let traced = measure_started(&mut probe, &mut server, args, &spec);
    let stopped = server.stop();
    let traced = traced.map_err(|err| {
        if interrupt::cause(&err).is_some() {
            return err;
        }
        let lines = tail.map(|t| t.lines(Duration::from_secs(1))).unwrap_or_default();
        let last = if lines.is_empty() {
            "it printed nothing".to_owned()
        } else {
            format!("its last output: {}", lines.join(" | "))
        };
        anyhow!("`{}`: {err:#}; {last}", spec.name)
    })?;
    stopped?;
    Ok(traced)
}

fn measure_started(probe: &mut Probe, server: &mut Child, args: &TraceArgs, spec: &RunSpec) -> Result<Traced> {
    let root = server.pid;
    let want = args.addr.filter(|a| a.port() != 0);
    let timeout = Duration::from_secs_f64(args.ready_timeout);
    let addr = wait_listening(root, want, "--addr", timeout, &mut || server.exited())?;
    let mut alive = || match server.exited()? {
        Some(status) => bail!("it exited ({status}) during the run"),
        None => Ok(()),
    };
    measure_tree(probe, root, addr, spec, args.validate, &mut alive)
}

/// `--pid PID`: attach, measure, detach (dropping the probe); the server keeps running.
fn trace_running(pid: u32, args: &TraceArgs, mut spec: RunSpec) -> Result<Traced> {
    if !tree::is_alive(pid) {
        bad_input!("invalid value '{pid}' for '--pid': no such process");
    }
    spec.name = tree::name(pid);
    let mut probe = Probe::load_with(lab_measure::probe::ProbeOptions {
        timing: args.timing.timing,
        profile: args.profile.options(),
    })?;
    attach(&mut probe, pid)?;
    let want = args.addr.filter(|a| a.port() != 0);
    let timeout = Duration::from_secs_f64(args.ready_timeout);
    // Not our child: its exit status is its parent's to read.
    let gone = |pid| (!tree::is_alive(pid)).then(|| "status unknown".to_owned());
    let addr = wait_listening(pid, want, "--addr", timeout, &mut || Ok(gone(pid)))
        .with_context(|| format!("process {pid} ({})", spec.name))?;
    let mut alive = || match gone(pid) {
        Some(_) => bail!("process {pid} exited during the run (the probes are detached)"),
        None => Ok(()),
    };
    measure_tree(&mut probe, pid, addr, &spec, args.validate, &mut alive)
}

/// One measured run of `spec` against the tree at `root` (with `validate`, perf attached to it),
/// and with `validate` a second one checked against strace (see `validate` for why two runs).
/// `iolab run --validate` measures its model with this too.
pub fn measure_tree(
    probe: &mut Probe,
    root: u32,
    addr: SocketAddr,
    spec: &RunSpec,
    validate: bool,
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<Traced> {
    let perf = if validate { validate::Perf::attach(root)? } else { validate::PerfRun::NotAsked };
    let sampling = if validate { validate::Sampling::attach(root)? } else { validate::Sampling::NotAsked };
    let (user0, sys0) = tree::cpu_ms(root);
    let measured = run::measure(probe, root, addr, spec, alive)?;
    // Again: a server that dies while the load generator finishes may still be exiting when
    // `measure` first asks, and is gone once it has settled.
    alive()?;
    let (user1, sys1) = tree::cpu_ms(root);
    let switches = perf.finish(&measured.delta)?;
    let net_rx = sampling.finish(&measured.delta)?;
    let usage = Usage { user_ms: user1 - user0, sys_ms: sys1 - sys0, max_rss_kib: tree::peak_rss_kib(root) };
    let run = RunResult::from_measured(&spec.name, measured, usage);
    let validation = match validate {
        true => Some(validate::against_strace(probe, root, addr, spec, alive, switches, net_rx)?),
        false => None,
    };
    Ok(Traced { run, validation })
}

/// The program to run: a path as given, or the first match on PATH, as a shell would.
fn find_program(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        if process::which(name).is_some() {
            return Ok(PathBuf::from(name));
        }
        bad_input!("cannot run '{name}': no such executable file");
    }
    match process::which(name) {
        Some(found) => Ok(found),
        None => bad_input!("cannot run '{name}': command not found (PATH has no such executable)"),
    }
}

/// The command as the result names it: file names instead of paths (`python3 echo.py 0`).
fn display_name(command: &[String]) -> String {
    command
        .iter()
        .map(|arg| match arg.contains('/') {
            true => Path::new(arg).file_name().map_or(arg.clone(), |f| f.to_string_lossy().into_owned()),
            false => arg.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_drops_directories() {
        let cmd = ["/usr/bin/python3", "/tmp/x/echo.py", "0"].map(String::from);
        assert_eq!(display_name(&cmd), "python3 echo.py 0");
    }
}
