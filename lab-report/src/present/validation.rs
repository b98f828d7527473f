//! The validation (`iolab trace --validate`, `iolab run --validate`) as a table, after the run's,
//! with perf's checks of the reported run under it.

use std::fmt::Write as _;

use tabled::{
    Table, Tabled,
    settings::{Alignment, Style, object::Columns},
};

use lab_measure::validate::{SyscallAgreement, Validation};

#[derive(Tabled)]
struct Row {
    syscall: String,
    probe: u64,
    #[tabled(rename = "edges")]
    edges: String,
    strace: String,
    diff: String,
    allowed: String,
    #[tabled(rename = "")]
    verdict: String,
}

/// The validation as text, after the run's table.
pub fn table(v: &Validation) -> String {
    let mut out = String::from(
        "\nValidation: the same load again with `strace -f -c` attached. strace counts a call when it \
         returns, the probe when it enters: `edges` moves the calls in progress at the start (+) and \
         end (−) of the window.\n",
    );
    let rows: Vec<Row> = v.syscalls.iter().map(row).collect();
    let mut table = Table::new(rows);
    table.with(Style::rounded()).modify(Columns::new(1..6), Alignment::right());
    let _ = writeln!(out, "{table}");
    match (&v.switches, &v.switches_note) {
        (Some(s), _) => {
            let _ = writeln!(
                out,
                "Context switches in the reported run: probe {}, perf stat {}, difference {} (allowed {}): {}",
                s.probe,
                s.perf,
                s.diff,
                s.allowed,
                verdict(s.ok)
            );
        }
        (None, Some(note)) => {
            let _ = writeln!(out, "Context switches: {note}");
        }
        (None, None) => {}
    }
    match (&v.net_rx, &v.net_rx_note) {
        (Some(n), _) => {
            let _ = writeln!(
                out,
                "NET_RX share of the tree's CPU in the reported run: probe {:.1} % (softirq time / on-CPU time), \
                 perf record {:.1} % ({} of {} cpu-clock samples under net_rx_action), difference {:+.1} points \
                 (allowed {}): {}; the tree's CPU time: probe {:.2} s, perf's samples {:.2} s",
                n.probe_percent,
                n.perf_percent,
                n.net_rx_samples,
                n.samples,
                n.diff_points,
                n.allowed_points,
                verdict(n.ok),
                n.probe_cpu_ns as f64 / 1e9,
                n.perf_cpu_ns as f64 / 1e9
            );
        }
        (None, Some(note)) => {
            let _ = writeln!(out, "NET_RX share: {note}");
        }
        (None, None) => {}
    }
    let _ = writeln!(out, "validation: {}", if v.ok { "ok, every count agrees" } else { "FAILED" });
    out
}

fn row(c: &SyscallAgreement) -> Row {
    let signed = |n: i64| if n == 0 { String::new() } else { format!("{n:+}") };
    match c.strace {
        None => Row {
            syscall: c.syscall.clone(),
            probe: c.probe,
            edges: String::new(),
            strace: "-".into(),
            diff: String::new(),
            allowed: String::new(),
            verdict: "not compared: never returns".into(),
        },
        Some(s) => Row {
            syscall: c.syscall.clone(),
            probe: c.probe,
            edges: signed(c.edges),
            strace: s.to_string(),
            diff: if c.diff == 0 { "0".into() } else { format!("{:+}", c.diff) },
            allowed: c.allowed.to_string(),
            verdict: verdict(c.ok).into(),
        },
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISMATCH" }
}
