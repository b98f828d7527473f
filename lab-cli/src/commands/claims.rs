//! `iolab claims`: the walkthrough's claims, each tested by an experiment here and given a
//! verdict its figures compute (the rules are in `present::claims`).
//!
//! The experiments are the lab's own commands, smaller: a comparison of the designs, the same
//! once at a large size (memory per connection, and whether every connection was served), a
//! small one of coroutines against threads, a burst, select past fd 1024, poll past
//! RLIMIT_NOFILE, and a scan of one wait call against the fds it watches. Each row says which
//! `iolab` command shows its figures in full.

use std::{fs, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::commands::args::workload::count;
use lab_load::Workload;
use lab_measure::{
    error::BadInput,
    experiment::{self, Step},
    machine,
    probe::Probe,
    run::{Counted, RunSpec},
};
use lab_report::{
    present::{
        claims::{ClaimsReport, Evidence, PythonSelect, claims},
        export::{self, Format, record},
        html,
        progress::Progress,
    },
    results::{
        document::{ModelResult, Unsupported, model_result},
        save,
        scan::ScanRow,
    },
};

#[derive(Args, Debug)]
pub struct ClaimsArgs {
    /// Connections of the main comparison and the burst.
    #[arg(short = 'c', long, default_value_t = 1000, value_parser = count(10..=10_000))]
    pub connections: usize,
    /// Connections of the large comparison: every design once, and the walkthrough's servers
    /// (the walkthrough's 10,000).
    #[arg(long, default_value_t = 10_000, value_parser = count(10..=10_000))]
    pub large: usize,
    /// Small sizes throughout (100 connections, no large or small comparison, a scan to 100
    /// fds): under a minute, for a test; the verdicts then rest on less.
    #[arg(long)]
    pub quick: bool,
    /// `table` for a terminal, `markdown` for the README, `json` or `csv` for programs.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the result to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the claims as one self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The sizes the experiments run at.
struct Plan {
    connections: usize,
    messages: usize,
    large: Option<usize>,
    /// Coroutines against threads at a small size.
    small: Option<usize>,
    /// Past select's FD_SETSIZE of 1024.
    wide: usize,
    scan_fds: [usize; 2],
    scan_calls: usize,
}

impl Plan {
    fn of(args: &ClaimsArgs) -> Plan {
        if args.quick {
            return Plan {
                connections: 100,
                messages: 20,
                large: None,
                small: None,
                wide: 1100,
                scan_fds: [10, 100],
                scan_calls: 200,
            };
        }
        Plan {
            connections: args.connections,
            messages: 50,
            large: Some(args.large),
            small: Some(100),
            wide: 2000,
            scan_fds: [10, 1000],
            scan_calls: 1000,
        }
    }

    /// Runs, warm-ups included, for the progress line, with the Python servers found: each runs
    /// in the main comparison (after a warm-up) and in the large one (once).
    fn steps(&self, python: &PythonServers) -> u64 {
        let designs = (COMPARED.len() + python.servers.len()) as u64;
        let large = if self.large.is_some() { designs } else { 0 };
        let small = if self.small.is_some() { 2 * SMALL.len() as u64 } else { 0 };
        let wide = 2 * (1 + u64::from(python.select.is_some()));
        2 * designs + large + small + 2 * BURST.len() as u64 + wide + self.scan_fds.len() as u64 * SCANNED.len() as u64
    }
}

/// The designs of the main comparison and of the burst.
const COMPARED: &[&str] = &["process", "thread", "coroutine", "coroutine-mt", "epoll"];
const BURST: &[&str] = &["thread", "poll", "epoll"];
const SMALL: &[&str] = &["thread", "coroutine"];
/// Messages per connection at the large size: enough to see every connection served.
const LARGE_MESSAGES: usize = 2;
const SCANNED: &[&str] = &["poll", "epoll"];

pub fn claims_command(args: ClaimsArgs) -> Result<ExitCode> {
    if let Some(path) = &args.output {
        export::check_writable(Some(&path.to_string_lossy())).map_err(|e| BadInput(format!("--output: {e:#}")))?;
    }
    if let Some(path) = &args.html {
        export::check_writable(Some(&path.to_string_lossy())).map_err(|e| BadInput(format!("--html: {e:#}")))?;
    }
    let plan = Plan::of(&args);
    let most = plan.large.unwrap_or(0).max(plan.connections).max(plan.wide);
    lab_load::limits::make_room_for(most)
        .map_err(|e| BadInput(format!("--connections {} --large {}: {e:#}", plan.connections, args.large)))?;

    // Before the probe: with any syscall tracepoint attached every syscall takes the slow path.
    let syscall_ns = machine::syscall_ns();
    let limits = machine::limits(lab_server::models::THREAD_STACK_SIZE);
    let poll_beyond_limit = machine::poll_beyond_open_files_limit();

    let python = PythonServers::find(plan.wide);
    let mut probe = Probe::load()?;
    let progress = Progress::new(plan.steps(&python), args.quiet);
    // Runs `specs` (their workload and window are those given) once, after a warm-up if `warm_up`.
    let mut run = |specs: Vec<RunSpec>,
                   workload: Workload,
                   counted: Counted,
                   warm_up: bool|
     -> Result<(Vec<ModelResult>, Vec<Unsupported>)> {
        let specs: Vec<RunSpec> = specs.into_iter().map(|s| RunSpec { workload, counted, ..s }).collect();
        let (mut results, mut not_run) = (Vec::new(), Vec::new());
        experiment::compare(&mut probe, &specs, 1, warm_up, |step| {
            match step {
                Step::Starting { spec, index } => {
                    let what = if index == 0 { "warm-up" } else { "run" };
                    progress.step(format!("{}, {} connections, {what}", spec.name, spec.workload.connections));
                }
                Step::Finished { .. } => {}
                Step::Measured { runs, .. } => results.push(model_result(runs)),
                Step::NotStarted(failed) => {
                    eprintln!("iolab: {failed}");
                    not_run.push(Unsupported { model: failed.name, reason: failed.reason });
                }
            }
            Ok(())
        })?;
        Ok((results, not_run))
    };
    let models = |names: &[&str]| -> Vec<RunSpec> { names.iter().map(|m| RunSpec::model(m)).collect() };
    let mut designs = models(COMPARED);
    designs.extend(python.servers.iter().cloned());
    let (compared, python_not_run) =
        run(designs.clone(), Workload::free(plan.connections, plan.messages), Counted::Everything, true)?;
    // Once, without a warm-up: at 10,000 connections a run is long, and memory needs no warming.
    let large = match plan.large {
        Some(n) => run(designs, Workload::free(n, LARGE_MESSAGES), Counted::Everything, false)?.0,
        None => Vec::new(),
    };
    let small = match plan.small {
        Some(n) => run(models(SMALL), Workload::free(n, plan.messages), Counted::Everything, true)?.0,
        None => Vec::new(),
    };
    let burst_load = Workload::lockstep(plan.connections, 3);
    let burst = run(models(BURST), burst_load, Counted::Bursts, true)?.0;
    // A burst, so that every call watches every connection at once.
    let wide_load = Workload::lockstep(plan.wide, 3);
    let wide = run(models(&["select"]), wide_load, Counted::Bursts, true)?.0;
    // Expected to fail: a server that dies mid-run is an error of the run, and here the finding.
    let python_wide = match &python.select {
        Some(spec) => match run(vec![spec.clone()], wide_load, Counted::Bursts, true) {
            Ok((served, refused)) => Ok((served, refused.into_iter().next().map(|r| r.reason))),
            Err(err) if lab_measure::interrupt::cause(&err).is_some() => return Err(err),
            Err(err) => Err(format!("{err:#}")),
        },
        None => Ok((Vec::new(), None)),
    };
    let python_select = match &python_wide {
        Ok((served, _)) if !served.is_empty() => PythonSelect::Served(&served[0]),
        Ok((_, Some(refused))) | Err(refused) => PythonSelect::Refused(refused.clone()),
        Ok(_) => PythonSelect::NotRun(python.missing.clone().unwrap_or_default()),
    };
    let mut scan = Vec::new();
    for model in SCANNED {
        for fds in plan.scan_fds {
            progress.step(format!("{model}, scan at {fds} fds"));
            scan.push(scan_point(&mut probe, model, fds, plan.scan_calls)?);
        }
    }
    progress.finish();

    let c = plan.connections;
    let servers = python.servers.iter().map(server_flag).collect::<String>();
    let evidence = Evidence {
        compare: &compared,
        compare_command: format!("iolab compare -c {c} -m {} --models {}{servers}", plan.messages, COMPARED.join(",")),
        large: &large,
        large_command: format!(
            "iolab compare -c {} -m {LARGE_MESSAGES} --runs 1 --models {}{servers}",
            plan.large.unwrap_or(0),
            COMPARED.join(",")
        ),
        small: &small,
        burst: &burst,
        burst_command: format!("iolab prove -c {c} --rounds 3 --models {}", BURST.join(",")),
        select_wide: wide.first(),
        python_select,
        python_not_run: &python_not_run,
        select_command: format!(
            "iolab prove -c {} --rounds 3 --models select{}",
            plan.wide,
            python.select.iter().map(server_flag).collect::<String>()
        ),
        poll_beyond_limit,
        scan: &scan,
        scan_command: format!(
            "iolab scan --fds {} --models {}",
            plan.scan_fds.map(|n| n.to_string()).join(","),
            SCANNED.join(",")
        ),
        limits,
        syscall_ns,
    };
    let report = ClaimsReport {
        claims: claims(&evidence),
        limits,
        syscall_ns,
        connections: c as u64,
        large: plan.large.unwrap_or(0) as u64,
        created: save::now_rfc3339(),
        machine: save::this_machine(),
    };
    // For a terminal the table fits its width; to a file or a pipe it keeps its full width.
    let width = if args.output.is_none() { export::stdout_width() } else { None };
    let table = report.table_width(args.format == Format::Markdown, width);
    let text = match args.format {
        Format::Markdown => table,
        format => record::render("claims", &report, format, table)?,
    };
    match &args.output {
        Some(path) => fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    if let Some(path) = &args.html {
        fs::write(path, html::claims(&report)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The walkthrough's own servers (`examples/python`), found beside this build's source, run
/// with the virtualenv's Python (`cargo xtask python` puts gevent there) or else `python3`.
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/python");
const VENV_PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/python/bin/python");

struct PythonServers {
    /// py-process, py-thread, py-selectors, and py-gevent where gevent imports.
    servers: Vec<RunSpec>,
    /// The selectors server on `select.SelectSelector`.
    select: Option<RunSpec>,
    /// Why some or all of them cannot run here.
    missing: Option<String>,
}

impl PythonServers {
    fn find(wide: usize) -> PythonServers {
        let venv = std::path::Path::new(VENV_PYTHON);
        let python = if venv.exists() { Some(venv.to_path_buf()) } else { which::which("python3").ok() };
        let Some(python) = python.filter(|_| std::path::Path::new(EXAMPLES).is_dir()) else {
            let missing = format!("no python3, or no {EXAMPLES}");
            return PythonServers { servers: Vec::new(), select: None, missing: Some(missing) };
        };
        let server = |name: &str, file: &str, extra: &[&str]| {
            let mut argv = vec![python.display().to_string(), format!("{EXAMPLES}/{file}"), "{port}".to_owned()];
            argv.extend(extra.iter().map(|s| (*s).to_owned()));
            RunSpec::command(name, argv)
        };
        let mut servers = vec![
            server("py-process", "process_server.py", &[]),
            server("py-thread", "thread_server.py", &[]),
            server("py-selectors", "selectors_server.py", &[]),
        ];
        let gevent = std::process::Command::new(&python)
            .args(["-c", "import gevent"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let missing = if gevent {
            servers.push(server("py-gevent", "gevent_server.py", &[]));
            None
        } else {
            Some(format!("gevent does not import in {} (`cargo xtask python` installs it)", python.display()))
        };
        let select = Some(server(&format!("py-select-{wide}"), "selectors_server.py", &["select"]));
        PythonServers { servers, select, missing }
    }
}

/// ` --server 'NAME=CMD'` as a user would type it from the project's folder.
fn server_flag(spec: &RunSpec) -> String {
    let argv = spec.command.as_deref().unwrap_or_default().join(" ");
    let argv = argv.replace(VENV_PYTHON, ".tools/python/bin/python").replace(EXAMPLES, "examples/python");
    format!(" --server '{}={argv}'", spec.name)
}

/// One point of a scan (see `iolab scan`): one busy connection, `fds - 1` idle, one run.
fn scan_point(probe: &mut Probe, model: &str, fds: usize, calls: usize) -> Result<ScanRow> {
    let run = experiment::run_model(probe, &experiment::scan_spec(model, fds, calls, false))?;
    Ok(ScanRow::from_runs(&[run]))
}
