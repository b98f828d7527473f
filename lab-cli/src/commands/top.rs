//! `iolab top --pid PID`: live syscall and context-switch rates of a running server, under
//! whatever load it already has — the everyday use, once the counts are trusted.
//!
//! It attaches as `iolab trace --pid` does (every thread of the tree is marked, and the probe
//! follows the tasks they start), then at every interval reads the counters once and shows the
//! difference divided by the time that really passed (a sleep can overshoot). It drives no load.
//! Ctrl-C ends it: the loop sees the flag set by the signal handler (see `interrupt`) between
//! two intervals, prints nothing more, and returns 130 as a shell would; dropping the probe
//! detaches it, and the server keeps running.

use std::{
    io::Write as _,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use lab_common::Counters;
use serde::Serialize;

use lab_measure::{
    attach::attach,
    bad_input, interrupt,
    probe::{Delta, Probe},
    result::WaitTotals,
    tree,
};
use lab_report::present::{
    export::{Format, record},
    numbers::ratio,
};

/// How many of the busiest syscalls each interval shows.
pub const DEFAULT_SYSCALLS: usize = 8;

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// The server's pid; its threads and descendants are counted too.
    #[arg(long, short = 'p')]
    pub pid: u32,
    /// How often to show the rates (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Stop after this many intervals (default: at Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// How many of the busiest syscalls to show.
    #[arg(long, default_value_t = DEFAULT_SYSCALLS)]
    pub syscalls: usize,
    /// `table`, or `json`: one object per interval, one per line. (Live rates come line by line:
    /// no CSV or Markdown, which need the whole table first.)
    #[arg(long, default_value = "table", value_parser = live_format)]
    pub format: Format,
}

/// One interval's rates, per second.
#[derive(Debug, Serialize)]
pub struct Rates {
    /// Since the start, at the end of this interval.
    pub at_seconds: f64,
    pub interval_seconds: f64,
    pub syscalls_per_sec: f64,
    /// The busiest syscalls, busiest first.
    pub top_syscalls: Vec<Rate>,
    pub voluntary_switches_per_sec: f64,
    pub involuntary_switches_per_sec: f64,
    pub wait_calls: Vec<WaitRate>,
}

#[derive(Debug, Serialize)]
pub struct Rate {
    pub syscall: String,
    pub per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct WaitRate {
    pub call: String,
    pub per_sec: f64,
    pub fds_passed_per_call: f64,
    pub fds_watched_per_call: f64,
    pub ready_per_call: f64,
}

/// `--format` of top: the one Format, but only the formats that can be written line by line.
fn live_format(text: &str) -> Result<Format, String> {
    match text {
        "table" => Ok(Format::Table),
        "json" => Ok(Format::Json),
        _ => Err(format!("'{text}' is not a live format [possible values: table, json]")),
    }
}

pub fn top_command(args: TopArgs) -> Result<ExitCode> {
    watch(args.pid, args.interval, args.count, args.syscalls, args.format)
}

/// Attaches to `pid` and prints its rates every `interval`, `count` times or until Ctrl-C.
pub fn watch(pid: u32, interval: Duration, count: Option<u64>, syscalls: usize, format: Format) -> Result<ExitCode> {
    if interval < Duration::from_millis(10) {
        bad_input!("invalid value for '--interval': at least 10ms");
    }
    if !tree::is_alive(pid) {
        bad_input!("invalid value '{pid}' for '--pid': no such process");
    }
    let mut probe = Probe::load()?;
    attach(&mut probe, pid)?;
    let start = Instant::now();
    let (mut last, mut last_at) = (probe.snapshot()?, Instant::now());
    for n in 1..=count.unwrap_or(u64::MAX) {
        if let Some(sig) = sleep_until(start + interval * n as u32, pid)? {
            return Ok(ExitCode::from(128 + sig as u8));
        }
        let (now, now_at) = (probe.snapshot()?, Instant::now());
        let rates = rates(&last, &now, now_at - last_at, now_at - start, syscalls);
        show(&rates, format)?;
        (last, last_at) = (now, now_at);
    }
    Ok(ExitCode::SUCCESS)
}

/// Sleeps until `deadline`; returns the signal if one arrives first, fails if `pid` exits.
fn sleep_until(deadline: Instant, pid: u32) -> Result<Option<i32>> {
    loop {
        if let Some(sig) = interrupt::received() {
            return Ok(Some(sig));
        }
        if !tree::is_alive(pid) {
            bail!("process {pid} exited (the probes are detached)");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

pub fn rates(before: &Counters, after: &Counters, interval: Duration, at: Duration, syscalls: usize) -> Rates {
    let delta = Delta::between(before, after);
    let secs = interval.as_secs_f64().max(1e-9);
    let per_sec = |n: u64| n as f64 / secs;
    let mut by_name: Vec<(String, u64)> = delta.syscalls_by_name().into_iter().collect();
    by_name.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: u64 = by_name.iter().map(|(_, n)| n).sum();
    let top_syscalls =
        by_name.into_iter().take(syscalls).map(|(syscall, n)| Rate { syscall, per_sec: per_sec(n) }).collect();
    let wait_calls = WaitTotals::measured(&delta, &Default::default()) // rates only: no maxima
        .by_call
        .into_iter()
        .map(|(call, w)| WaitRate {
            call,
            per_sec: per_sec(w.calls),
            fds_passed_per_call: w.fds_passed as f64 / w.calls as f64,
            fds_watched_per_call: w.fds_watched as f64 / w.calls as f64,
            ready_per_call: w.ready as f64 / w.calls as f64,
        })
        .collect();
    Rates {
        at_seconds: at.as_secs_f64(),
        interval_seconds: secs,
        syscalls_per_sec: per_sec(total),
        top_syscalls,
        voluntary_switches_per_sec: per_sec(delta.0.switches.voluntary),
        involuntary_switches_per_sec: per_sec(delta.0.switches.involuntary),
        wait_calls,
    }
}

/// One interval, written at once so that Ctrl-C never cuts a line.
fn show(rates: &Rates, format: Format) -> Result<()> {
    let text = record::render("top", rates, format, table_text(rates))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

pub fn table_text(r: &Rates) -> String {
    let at = format!("{:>7.1} s", r.at_seconds);
    let pad = " ".repeat(at.len());
    if r.syscalls_per_sec == 0.0 && r.voluntary_switches_per_sec + r.involuntary_switches_per_sec == 0.0 {
        return format!("{at}  idle: no syscalls, no context switches\n");
    }
    let mut out = format!(
        "{at}  {:.0} syscalls/s; context switches {:.0}/s voluntary, {:.0}/s involuntary\n",
        r.syscalls_per_sec, r.voluntary_switches_per_sec, r.involuntary_switches_per_sec
    );
    let top: Vec<String> = r.top_syscalls.iter().map(|s| format!("{} {:.0}/s", s.syscall, s.per_sec)).collect();
    out += &format!("{pad}  {}\n", top.join(", "));
    for w in &r.wait_calls {
        out += &format!(
            "{pad}  {}: {:.0} calls/s, {} fds passed, {} watched and {} ready per call\n",
            w.call,
            w.per_sec,
            ratio(w.fds_passed_per_call, 1.0),
            ratio(w.fds_watched_per_call, 1.0),
            ratio(w.ready_per_call, 1.0)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_of_the_real_interval() {
        let before = Counters::ZERO;
        let mut after = Counters::ZERO;
        after.syscalls[0] = 500; // read
        after.syscalls[1] = 250; // write
        after.switches.voluntary = 100;
        let r = rates(&before, &after, Duration::from_millis(500), Duration::from_secs(3), 1);
        assert_eq!(r.syscalls_per_sec, 1500.0);
        assert_eq!(r.top_syscalls.len(), 1);
        assert_eq!((r.top_syscalls[0].syscall.as_str(), r.top_syscalls[0].per_sec), ("read", 1000.0));
        assert_eq!(r.voluntary_switches_per_sec, 200.0);
        assert_eq!(
            table_text(&r),
            "    3.0 s  1500 syscalls/s; context switches 200/s voluntary, 0/s involuntary\n           read 1000/s\n"
        );
    }

    #[test]
    fn an_idle_interval_says_so() {
        let r = rates(&Counters::ZERO, &Counters::ZERO, Duration::from_secs(1), Duration::from_secs(1), 8);
        assert_eq!(table_text(&r), "    1.0 s  idle: no syscalls, no context switches\n");
    }
}
