//! `iolab soak`: one server, the same load over and over, for minutes. Does it stay healthy?
//!
//! A benchmark, not a test: it answers "does throughput stay flat, and do the server's open fds
//! and memory stay put?" by running one traced model server for `--seconds` and driving it with
//! back-to-back load batches. After each batch (when the server is idle again) it reads the
//! server's fd count and RSS from /proc. It prints the first and last batches side by side, and a
//! row per minute in between.

use std::{
    fs,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::commands::args::workload::{Connections, Messages, Payload};
use lab_load::Workload;
use lab_measure::{
    error::BadInput,
    interrupt,
    probe::Probe,
    run::{RunSpec, measure, start_model},
};

/// No `--idle` (every connection is busy) and no `--allow-errors` (an error is a finding here).
#[derive(Args, Debug)]
#[command(mut_arg("connections", |a| a.default_value("1000")))]
#[command(mut_arg("messages_per_connection", |a| a.default_value("20").help("Messages per connection in each batch")))]
pub struct SoakArgs {
    /// The model to soak (`iolab models` lists them).
    #[arg(long, short = 'M', default_value = "epoll", value_parser = lab_server::parse_model)]
    pub model: String,
    #[command(flatten)]
    pub connections: Connections,
    #[command(flatten)]
    pub messages: Messages,
    #[command(flatten)]
    pub payload: Payload,
    /// How long to keep going, in seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub seconds: u64,
}

/// One batch's figures.
#[derive(Clone, Copy, Debug)]
struct Batch {
    at: Duration,
    msgs_per_sec: f64,
    errors: u64,
    fds: usize,
    rss_kib: u64,
    syscalls_per_msg: f64,
}

pub fn soak_command(args: SoakArgs) -> Result<ExitCode> {
    let workload = Workload::free(args.connections.connections, args.messages.messages_per_connection)
        .with_payload(args.payload.payload_bytes);
    let spec = RunSpec { workload, ..RunSpec::model(&args.model) };
    lab_load::limits::make_room_for(workload.connections)
        .map_err(|e| BadInput(format!("--connections {}: {e:#}", workload.connections)))?;
    let mut probe = Probe::load()?;
    let (mut server, addr) = start_model(&mut probe, &spec)?;
    let start = Instant::now();
    let mut batches = Vec::new();
    println!(
        "soak: model {} at {} connections × {} messages per batch for {} s",
        spec.name, workload.connections, workload.messages_per_connection, args.seconds
    );
    println!("{:>8} {:>10} {:>7} {:>6} {:>10} {:>12}", "time s", "msg/s", "errors", "fds", "RSS KiB", "syscalls/msg");
    let mut last_print = None;
    while start.elapsed() < Duration::from_secs(args.seconds) && interrupt::check().is_ok() {
        let m = match measure(&mut probe, server.pid, addr, &spec, &mut || server.check_alive()) {
            Err(err) if interrupt::cause(&err).is_some() => break,
            other => other.with_context(|| format!("model {}", spec.name))?,
        };
        let total: u64 = m.delta.0.syscalls.iter().sum();
        let batch = Batch {
            at: start.elapsed(),
            msgs_per_sec: m.load.msgs_per_sec,
            errors: m.load.errors.total(),
            fds: fs::read_dir(format!("/proc/{}/fd", server.pid)).map_or(0, |d| d.count()),
            rss_kib: rss_kib(server.pid),
            syscalls_per_msg: total as f64 / m.load.messages_ok.max(1) as f64,
        };
        let minute = batch.at.as_secs() / 60;
        if last_print != Some(minute) {
            print_row(&batch);
            last_print = Some(minute);
        }
        batches.push(batch);
    }
    server.stop()?;
    let interrupted = interrupt::check().err();
    let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
        println!("no batch finished");
        return Ok(interrupted.map_or(ExitCode::FAILURE, |i| ExitCode::from(i.exit_code())));
    };
    print_row(last);
    let errors: u64 = batches.iter().map(|b| b.errors).sum();
    let throughputs: Vec<f64> = batches.iter().map(|b| b.msgs_per_sec).collect();
    let summary = lab_report::results::stats::summarize(&throughputs);
    println!(
        "\n{} batches. First vs last: {:.0} → {:.0} msg/s ({:+.1} %), fds {} → {}, RSS {} → {} KiB, errors {}.",
        batches.len(),
        first.msgs_per_sec,
        last.msgs_per_sec,
        100.0 * (last.msgs_per_sec / first.msgs_per_sec - 1.0),
        first.fds,
        last.fds,
        first.rss_kib,
        last.rss_kib,
        errors
    );
    println!(
        "Throughput over all batches: median {:.0}, min {:.0}, max {:.0} msg/s.",
        summary.median, summary.min, summary.max
    );
    if let Some(interrupted) = interrupted {
        eprintln!("iolab: {interrupted}: the batches above are all that finished (incomplete)");
        return Ok(ExitCode::from(interrupted.exit_code()));
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_row(b: &Batch) {
    println!(
        "{:>8.0} {:>10.0} {:>7} {:>6} {:>10} {:>12.2}",
        b.at.as_secs_f64(),
        b.msgs_per_sec,
        b.errors,
        b.fds,
        b.rss_kib,
        b.syscalls_per_msg
    );
}

fn rss_kib(pid: u32) -> u64 {
    procfs::process::Process::new(pid as i32).and_then(|p| p.status()).ok().and_then(|s| s.vmrss).unwrap_or(0)
}
