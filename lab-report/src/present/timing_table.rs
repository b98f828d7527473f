//! `--timing` shown: each syscall's calls, errors and on-CPU time in the layout of `strace -c`,
//! then each syscall's log2 histogram of on-CPU time per call, as BCC's `syscount -L` and
//! `funclatency` draw them.
//!
//! strace's columns are wall time seen through ptrace, which stops the traced thread at every
//! entry and exit; these are the kernel's own time on a CPU inside each call, switched-out time
//! left out, so a read that sleeps 10 ms for data counts only what it did on the CPU. The
//! interrupts that ran inside a call are left out too, and shown in a column of their own: on
//! loopback a `sendto`'s softirq time is the peer's TCP receive.

use std::{collections::BTreeMap, fmt::Write as _};

use lab_common::{HISTOGRAM_BUCKETS, SyscallTime};
use tabled::{
    Table, Tabled,
    settings::{Alignment, Style, object::Columns},
};

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "% time")]
    percent: String,
    #[tabled(rename = "on-CPU seconds")]
    seconds: String,
    #[tabled(rename = "µs/call")]
    us_per_call: String,
    #[tabled(rename = "softirq µs/call")]
    softirq_per_call: String,
    calls: u64,
    errors: u64,
    syscall: String,
}

/// The table and the histograms, busiest syscall first.
pub fn render(times: &BTreeMap<String, SyscallTime>) -> String {
    let mut out = table(times);
    for (name, t) in by_time(times) {
        out += &histogram(name, t);
    }
    out
}

fn by_time(times: &BTreeMap<String, SyscallTime>) -> Vec<(&String, &SyscallTime)> {
    let mut by_time: Vec<(&String, &SyscallTime)> = times.iter().collect();
    by_time.sort_by(|a, b| b.1.cpu_ns.cmp(&a.1.cpu_ns).then(a.0.cmp(b.0)));
    by_time
}

/// The table alone, busiest syscall first, like `strace -c`'s.
pub fn table(times: &BTreeMap<String, SyscallTime>) -> String {
    let total_ns: u64 = times.values().map(|t| t.cpu_ns).sum();
    let row = |name: &str, t: &SyscallTime| Row {
        percent: format!("{:.2}", 100.0 * t.cpu_ns as f64 / total_ns.max(1) as f64),
        seconds: format!("{:.6}", t.cpu_ns as f64 / 1e9),
        us_per_call: format!("{:.2}", t.cpu_ns as f64 / 1e3 / t.calls.max(1) as f64),
        softirq_per_call: format!("{:.2}", t.softirq_ns as f64 / 1e3 / t.calls.max(1) as f64),
        calls: t.calls,
        errors: t.errors,
        syscall: name.to_owned(),
    };
    let mut rows: Vec<Row> = by_time(times).iter().map(|(name, t)| row(name, t)).collect();
    let mut total = SyscallTime::ZERO;
    for t in times.values() {
        lab_common::add_words(&mut total, t);
    }
    rows.push(row("total", &total));
    let mut table = Table::new(rows);
    table.with(Style::rounded()).modify(Columns::new(..5), Alignment::right());
    format!("\nOn-CPU time inside each syscall (--timing; errors: calls that returned < 0):\n{table}\n")
}

/// One syscall's histogram, under a line naming it.
fn histogram(name: &str, t: &SyscallTime) -> String {
    let lines = log2_histogram(&t.histogram);
    if lines.is_empty() {
        return lines;
    }
    format!("\n{name}: {} calls, on-CPU ns per call\n{lines}", t.calls)
}

/// A log2 histogram of ns (`lab_common::histogram_bucket`'s buckets) as `syscount -L` draws it:
/// a line per bucket from the first to the last that holds a count; empty when none does.
pub(crate) fn log2_histogram(histogram: &[u64; HISTOGRAM_BUCKETS]) -> String {
    let used: Vec<usize> = (0..HISTOGRAM_BUCKETS).filter(|&i| histogram[i] > 0).collect();
    let (Some(&first), Some(&last)) = (used.first(), used.last()) else { return String::new() };
    let most = histogram.iter().copied().max().unwrap_or(1).max(1);
    let mut out = String::new();
    for (i, &count) in histogram.iter().enumerate().take(last + 1).skip(first) {
        let bar = "*".repeat((count * 40).div_ceil(most) as usize);
        let _ = writeln!(out, "{:>22} : {count:<9} |{bar:<40}|", bucket_range(i));
    }
    out
}

/// The range of histogram bucket `i`, as `syscount -L` writes it: `256 -> 511`.
fn bucket_range(i: usize) -> String {
    match i {
        0 => "0 -> 0".to_owned(),
        _ if i == HISTOGRAM_BUCKETS - 1 => format!("{} -> ", 1u64 << (i - 1)),
        _ => format!("{} -> {}", 1u64 << (i - 1), (1u64 << i) - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_read_as_syscount_writes_them() {
        assert_eq!(bucket_range(0), "0 -> 0");
        assert_eq!(bucket_range(1), "1 -> 1");
        assert_eq!(bucket_range(9), "256 -> 511");
        assert_eq!(bucket_range(HISTOGRAM_BUCKETS - 1), "1073741824 -> ");
    }

    #[test]
    fn the_table_puts_the_busiest_first_with_its_share_and_errors() {
        let mut read = SyscallTime { calls: 4, errors: 2, cpu_ns: 3_000, ..SyscallTime::ZERO };
        read.histogram[10] = 3;
        read.histogram[11] = 1;
        let write = SyscallTime { calls: 1, errors: 0, cpu_ns: 1_000, softirq_ns: 2_500, ..SyscallTime::ZERO };
        let text = render(&BTreeMap::from([("read".to_owned(), read), ("write".to_owned(), write)]));
        let lines: Vec<&str> = text.lines().collect();
        let row_of = |name: &str| lines.iter().position(|l| l.contains(&format!("│ {name} "))).unwrap();
        let (read_row, write_row) = (row_of("read"), row_of("write"));
        assert!(read_row < write_row, "{text}");
        assert!(lines[read_row].contains("75.00") && lines[read_row].contains("0.75"), "{}", lines[read_row]);
        assert!(
            lines[write_row].contains(" 1.00 │") && lines[write_row].contains(" 2.50 │"),
            "own and softirq µs/call: {}",
            lines[write_row]
        );
        assert!(text.contains("512 -> 1023 : 3"), "{text}");
        assert!(text.contains("1024 -> 2047 : 1"), "{text}");
    }
}
