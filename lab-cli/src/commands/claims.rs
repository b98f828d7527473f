//! `iolab claims`: the walkthrough's claims, each tested by an experiment here and given a
//! verdict its figures compute (the rules are in `present::claims`).
//!
//! The experiments are the lab's own commands, smaller: a comparison of the designs, the same
//! at a large size for coroutines against threads, a burst, select past fd 1024, poll past
//! RLIMIT_NOFILE, and a scan of one wait call against the fds it watches. Each row says which
//! `iolab` command shows its figures in full.

use std::{fs, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{
    commands::compare::{Step, compare},
    error::BadInput,
    load::Workload,
    measure::{
        machine,
        probe::Probe,
        run::{Counted, RunSpec},
    },
    present::{
        claims::{ClaimsReport, Evidence, ScanPoint, claims},
        export::{Format, record},
        progress::Progress,
    },
    results::{document::ModelResult, run::run_model},
};

#[derive(Args, Debug)]
pub struct ClaimsArgs {
    /// Connections of the main comparison and the burst.
    #[arg(short = 'c', long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub connections: u64,
    /// Connections of the large comparison, coroutines against threads (the walkthrough's 10,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub large: u64,
    /// Small sizes throughout (100 connections, no large comparison, a scan to 100 fds): about a
    /// minute, for a test; the verdicts then rest on less.
    #[arg(long)]
    pub quick: bool,
    /// `table` for a terminal, `markdown` for the README, `json` or `csv` for programs.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the result to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The sizes the experiments run at.
struct Plan {
    connections: u64,
    messages: u64,
    large: Option<u64>,
    /// Past select's FD_SETSIZE of 1024.
    wide: u64,
    scan_fds: [u64; 2],
    scan_calls: u64,
}

impl Plan {
    fn of(args: &ClaimsArgs) -> Plan {
        if args.quick {
            return Plan {
                connections: 100,
                messages: 20,
                large: None,
                wide: 1100,
                scan_fds: [10, 100],
                scan_calls: 200,
            };
        }
        Plan {
            connections: args.connections,
            messages: 50,
            large: Some(args.large),
            wide: 2000,
            scan_fds: [10, 1000],
            scan_calls: 1000,
        }
    }

    /// Measured runs, warm-ups included, for the progress line.
    fn steps(&self) -> u64 {
        let compare = 2 * COMPARED.len() as u64;
        let large = if self.large.is_some() { 4 } else { 0 };
        compare + large + 2 * BURST.len() as u64 + 2 + 2 * self.scan_fds.len() as u64
    }
}

/// The designs of the main comparison and of the burst.
const COMPARED: &[&str] = &["process", "thread", "coroutine", "coroutine-mt", "epoll"];
const BURST: &[&str] = &["thread", "poll", "epoll"];
const SCANNED: &[&str] = &["poll", "epoll"];

pub fn claims_command(args: ClaimsArgs) -> Result<ExitCode> {
    if let Some(path) = &args.output {
        fs::File::create(path).map_err(|e| BadInput(format!("--output {}: {e}", path.display())))?;
    }
    let plan = Plan::of(&args);
    let most = plan.large.unwrap_or(0).max(plan.connections).max(plan.wide);
    crate::load::limits::make_room_for(most as usize)
        .map_err(|e| BadInput(format!("--connections {} --large {}: {e:#}", plan.connections, args.large)))?;

    // Before the probe: with any syscall tracepoint attached every syscall takes the slow path.
    let syscall_ns = machine::syscall_ns();
    let limits = machine::limits(lab_server::models::THREAD_STACK_SIZE);
    let poll_beyond_limit = machine::poll_beyond_open_files_limit();

    let mut probe = Probe::load()?;
    let progress = Progress::new(plan.steps(), args.quiet);
    let mut run = |models: &[&str], workload: Workload, counted: Counted| -> Result<Vec<ModelResult>> {
        let specs: Vec<RunSpec> =
            models.iter().map(|m| RunSpec { model: (*m).to_owned(), command: None, workload, counted }).collect();
        let (mut results, mut not_run) = (Vec::new(), Vec::new());
        compare(&mut probe, &specs, 1, &mut results, &mut not_run, |step| {
            if let Step::Starting { spec, index } = step {
                let what = if index == 0 { "warm-up" } else { "run" };
                progress.step(format!("{}, {} connections, {what}", spec.model, spec.workload.connections));
            }
            Ok(())
        })?;
        Ok(results)
    };
    let free = |connections: u64, messages: u64| Workload {
        connections: connections as usize,
        messages_per_connection: messages as usize,
        payload_bytes: 64,
        idle: 0,
        lockstep: false,
    };
    let compared = run(COMPARED, free(plan.connections, plan.messages), Counted::Everything)?;
    let large = match plan.large {
        Some(n) => run(&["thread", "coroutine"], free(n, 5), Counted::Everything)?,
        None => Vec::new(),
    };
    let burst_load = Workload { lockstep: true, ..free(plan.connections, 3) };
    let burst = run(BURST, burst_load, Counted::Bursts)?;
    // A burst, so that every call watches every connection at once.
    let wide = run(&["select"], Workload { lockstep: true, ..free(plan.wide, 3) }, Counted::Bursts)?;
    let mut scan = Vec::new();
    for model in SCANNED {
        for fds in plan.scan_fds {
            progress.step(format!("{model}, scan at {fds} fds"));
            scan.push(scan_point(&mut probe, model, fds, plan.scan_calls)?);
        }
    }
    progress.finish();

    let c = plan.connections;
    let evidence = Evidence {
        compare: &compared,
        compare_command: format!("iolab compare -c {c} -m {} --models {}", plan.messages, COMPARED.join(",")),
        large: &large,
        burst: &burst,
        burst_command: format!("iolab prove -c {c} --rounds 3 --models {}", BURST.join(",")),
        select_wide: wide.first(),
        python_select: Err("Python's selectors server is not part of this build".into()),
        select_command: format!("iolab prove -c {} --rounds 3 --models select", plan.wide),
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
    let report = ClaimsReport { claims: claims(&evidence), limits, syscall_ns, connections: c };
    let table = report.table(args.format == Format::Markdown);
    let text = match args.format {
        Format::Markdown => table,
        format => record::render("claims", &report, format, table)?,
    };
    match &args.output {
        Some(path) => fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One wait call's CPU at `fds` fds, one of them active: one busy connection and `fds - 1` idle.
fn scan_point(probe: &mut Probe, model: &str, fds: u64, calls: u64) -> Result<ScanPoint> {
    let workload = Workload {
        connections: 1,
        messages_per_connection: calls as usize,
        payload_bytes: 64,
        idle: fds as usize - 1,
        lockstep: false,
    };
    let spec = RunSpec { model: model.to_owned(), command: None, workload, counted: Counted::Rounds };
    let r = run_model(probe, &spec)?;
    let per_wait = if r.wait.all.calls == 0 { 0.0 } else { r.wait.all.cpu_ns as f64 / r.wait.all.calls as f64 };
    Ok(ScanPoint { model: model.to_owned(), fds, cpu_ns_per_wait: per_wait })
}
