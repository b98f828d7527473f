//! `iolab load`: the load generator on its own, against any server that answers each message
//! with the message uppercased. The lab runs it the same way, in a process of its own, and reads
//! its report as JSON (see `measure::run::load_command`).

use std::{io::Write as _, net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::Result;
use clap::Args;

use crate::commands::args::{WorkloadArgs, parse_addr};
use lab_load::{self, LoadSpec};
use lab_measure::{bad_input, error::BadInput};
use lab_report::present::export::{Format, record};

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The server's address: a loopback IP and port, or a name that resolves to one
    /// (`localhost:8000`).
    #[arg(long, value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Every connection sends message k at the same moment (a barrier between rounds).
    #[arg(long)]
    pub lockstep: bool,
    /// Messages each connection sends ahead of the reply it reads (0: one at a time), so the
    /// server finds the next one queued when it has answered one.
    #[arg(long, default_value_t = 0, value_parser = crate::commands::args::workload::count(0..=1_000_000), conflicts_with = "lockstep")]
    pub ahead: usize,
    /// Microseconds each connection waits after a reply before it sends the next message.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000_000), conflicts_with_all = ["lockstep", "ahead"])]
    pub think_us: u64,
    /// Allow a non-loopback --addr.
    #[arg(long)]
    pub allow_remote: bool,
    /// Print `connected` and `sent` at the phase boundaries, each time waiting for a line on
    /// stdin (how the lab measures the message rounds alone).
    #[arg(long, hide = true)]
    pub pause_between_phases: bool,
    /// Print `connected` once every connection is open and wait for a line on stdin, then run
    /// freely (how the lab reads the server's memory with every connection open).
    #[arg(long, hide = true, conflicts_with = "pause_between_phases")]
    pub pause_when_connected: bool,
    /// With --lockstep and --pause-between-phases: print `round` and wait for a line before each
    /// round, and `queued BYTES` once the round is sent (how `iolab prove` holds the server still
    /// while a round is queued).
    #[arg(long, hide = true, requires_all = ["lockstep", "pause_between_phases"])]
    pub burst: bool,
    /// Answer every line on stdin with `answered N`, the messages answered so far (how
    /// `iolab bench` reads the throughput of short phases inside one run).
    #[arg(long, hide = true, conflicts_with = "pause_between_phases")]
    pub answer_progress: bool,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// `json` is one line, the report the lab reads; `csv` and `markdown` one row of it.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn load_command(args: LoadArgs) -> Result<ExitCode> {
    let addr = args.addr;
    if !addr.ip().is_loopback() && !args.allow_remote {
        bad_input!("invalid value '{addr}' for '--addr': load goes to loopback addresses only unless --allow-remote");
    }
    let spec = LoadSpec {
        addr,
        workload: args.workload.workload(args.lockstep).with_ahead(args.ahead).with_think_us(args.think_us),
        timeout: Duration::from_secs(10),
        allow_remote: args.allow_remote,
        pause_between_phases: args.pause_between_phases,
        pause_when_connected: args.pause_when_connected,
        burst: args.burst,
        answer_progress: args.answer_progress,
    };
    lab_load::limits::make_room_for(spec.workload.all_connections()).map_err(|e| BadInput(format!("{e:#}")))?;
    let report = lab_load::run(&spec)?;
    let summary = format!(
        "{} messages in {:.2} s = {:.0} msg/s, latency p50 {:.0} µs, p99 {:.0} µs, errors {}\n",
        report.messages_ok,
        report.wall_seconds,
        report.msgs_per_sec,
        report.latency_us.p50,
        report.latency_us.p99,
        report.errors.total()
    );
    let text = record::render("load", &report, args.format, summary)?;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The lab that started us is gone (killed): nobody to report to, nothing to say.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::FAILURE),
        Err(err) => Err(err.into()),
    }
}
