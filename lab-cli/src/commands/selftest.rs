//! `iolab selftest`: prove the probe exact on this kernel, and say plainly whether its counts can
//! be trusted (the checks are in `measure::selftest`).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use lab_measure::{probe::Probe, selftest};
use lab_report::present::export::{Format, record};

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// How the results are shown: tables, or JSON, CSV or Markdown for programs and notes.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn selftest_command(args: SelftestArgs) -> Result<ExitCode> {
    let mut probe = Probe::load()?;
    let report = selftest::run_all(&mut probe)?;
    print!("{}", record::render("selftest", &report, args.format, table(&report))?);
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn table(r: &selftest::SelftestReport) -> String {
    let verdict = |ok| if ok { "ok" } else { "MISMATCH" };
    let (io, switches, epoll) = (&r.io, &r.switches, &r.epoll);
    format!(
        "syscalls: expected {} reads and {} writes (process + child + thread), probe counted {} and {}: {}\n\
         context switches: {} blocking reads; voluntary: probe {}, /proc {}; involuntary: probe {}, /proc {}: {}\n\
         epoll interest list: 4 epoll_wait calls over {} registrations (add via a dup'd fd, del, close, failed add): \
         fds watched expected {}, probe {}; ready expected 4, probe {}: {}\n",
        io.expected,
        io.expected,
        io.reads,
        io.writes,
        verdict(r.io_ok),
        switches.blocks,
        switches.probe_voluntary,
        switches.proc_voluntary,
        switches.probe_involuntary,
        switches.proc_involuntary,
        verdict(r.switches_ok),
        epoll.registered,
        epoll.expected_fds_watched,
        epoll.fds_watched,
        epoll.ready,
        verdict(r.epoll_ok),
    )
}
