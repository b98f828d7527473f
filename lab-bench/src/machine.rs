//! What the bench ran on, and what else was running: numbers from a shared VM mean little
//! without the CPU, the kernel, the load average, and whether someone else's eBPF programs
//! were attached (their cost lands in our untraced baselines too).
//!
//! Before every run the bench also waits, a few seconds at most, for the machine to be quiet:
//! someone else's build on a 2-core VM takes a core from the server or the generator, and a
//! round that starts during it compares a disturbed run with an undisturbed one. The runs that
//! started busy anyway are counted and printed.

use std::{
    collections::BTreeMap,
    fs,
    time::{Duration, Instant},
};

use procfs::{CpuInfo, Current as _, CurrentSI as _, KernelStats, LoadAverage, process::FDTarget};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
/// The conditions a bench ran under: the machine (CPU, kernel) and what else was using it.
pub struct Conditions {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    /// When the bench started (UTC, RFC 3339).
    pub date: String,
    /// 1-minute load average at the start and at the end.
    pub load_start: f32,
    pub load_end: f32,
    /// Runs the bench started, and how many of them while others kept the CPUs busy (see
    /// [`QUIET_BUSY`]) even after waiting; the total time spent waiting for quiet.
    pub runs: usize,
    pub runs_started_busy: usize,
    pub waited_s: f64,
    /// Other processes that held tracing eBPF programs at some point during the bench (pid and
    /// name), and before how many of the runs they were seen.
    pub foreign_bpf: Vec<String>,
    pub runs_with_foreign_bpf: usize,
}

/// Quiet: less than this share of all CPUs busy over [`QUIET_SAMPLE`] (our own processes are
/// idle between runs, so what is busy is someone else).
pub const QUIET_BUSY: f64 = 0.15;
const QUIET_SAMPLE: Duration = Duration::from_millis(200);
/// The longest wait for quiet before one run.
pub const QUIET_WAIT: Duration = Duration::from_secs(5);

impl Conditions {
    pub fn now() -> Conditions {
        let cpu = CpuInfo::current().ok();
        let model = cpu.as_ref().and_then(|c| c.model_name(0)).unwrap_or("unknown").trim().to_owned();
        let cores = cpu.map_or(0, |c| c.num_cores());
        Conditions {
            cpu: model,
            cores,
            kernel: lab_report::results::save::this_machine().kernel,
            date: lab_report::results::save::now_rfc3339(),
            load_start: load_average(),
            load_end: 0.0,
            runs: 0,
            runs_started_busy: 0,
            waited_s: 0.0,
            foreign_bpf: Vec::new(),
            runs_with_foreign_bpf: 0,
        }
    }

    /// Called before every run: waits for quiet, and notes anyone else's eBPF programs.
    pub fn before_run(&mut self) {
        self.runs += 1;
        let start = Instant::now();
        while busy_share(QUIET_SAMPLE) >= QUIET_BUSY {
            if start.elapsed() >= QUIET_WAIT {
                self.runs_started_busy += 1;
                break;
            }
        }
        self.waited_s += start.elapsed().as_secs_f64();
        self.look_for_foreign_bpf();
    }

    /// Notes any process but us that holds a tracing eBPF program now.
    fn look_for_foreign_bpf(&mut self) {
        let holders = foreign_bpf_holders();
        if !holders.is_empty() {
            self.runs_with_foreign_bpf += 1;
        }
        for holder in holders {
            if !self.foreign_bpf.contains(&holder) {
                self.foreign_bpf.push(holder);
            }
        }
    }
}

/// The share of all CPUs that was busy (not idle, not waiting for IO) over `over`.
fn busy_share(over: Duration) -> f64 {
    let first = cpu_jiffies();
    std::thread::sleep(over);
    match (first, cpu_jiffies()) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            (busy1 - busy0) as f64 / (total1 - total0) as f64
        }
        _ => 0.0,
    }
}

/// (busy, total) jiffies of all CPUs, from /proc/stat: user, nice, system, idle, iowait, irq,
/// softirq and steal (guest time is already in user); busy is all but idle and iowait.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let t = KernelStats::current().ok()?.total;
    let idle = t.idle + t.iowait.unwrap_or(0);
    let total = t.user + t.nice + t.system + idle + t.irq.unwrap_or(0) + t.softirq.unwrap_or(0) + t.steal.unwrap_or(0);
    Some((total - idle, total))
}

pub fn load_average() -> f32 {
    LoadAverage::current().map_or(0.0, |l| l.one)
}

/// Processes other than this one (and its children, e.g. the `compare` the bench runs) with an
/// fd on a tracing eBPF program, as "pid (name)". Other program types (systemd's cgroup filters,
/// say) do not run on syscalls and are left out.
fn foreign_bpf_holders() -> Vec<String> {
    let me = std::process::id();
    let Ok(all) = procfs::process::all_processes() else { return vec![] };
    let mut found = Vec::new();
    for process in all.flatten() {
        let pid = process.pid as u32;
        if pid == me || process.stat().is_ok_and(|s| s.ppid == me as i32) {
            continue;
        }
        let Ok(fds) = process.fd() else { continue };
        let holds = fds.flatten().any(|fd| {
            matches!(&fd.target, FDTarget::AnonInode(name) if name == "bpf-prog")
                && is_tracing(&format!("/proc/{pid}/fdinfo/{}", fd.fd))
        });
        if holds {
            found.push(format!("{pid} ({})", lab_measure::tree::name(pid)));
        }
    }
    found
}

/// Whether the program behind an fd (its /proc fdinfo) is a kprobe, tracepoint, perf-event,
/// raw-tracepoint or BTF tracing program (`prog_type` 2, 5, 7, 17, 26 in uapi/linux/bpf.h).
fn is_tracing(fdinfo: &str) -> bool {
    let Ok(text) = fs::read_to_string(fdinfo) else { return false };
    let prog_type = text.lines().find_map(|l| l.strip_prefix("prog_type:")).and_then(|v| v.trim().parse().ok());
    matches!(prog_type, Some(2 | 5 | 7 | 17 | 26))
}

/// The kernel's TCP extension counters (`TcpExt:` in /proc/net/netstat), e.g. `ListenOverflows`:
/// SYNs dropped because a listener's accept queue was full.
pub fn tcp_ext() -> BTreeMap<String, u64> {
    fs::read_to_string("/proc/net/netstat").map(|text| parse_netstat(&text, "TcpExt:")).unwrap_or_default()
}

/// /proc/net/netstat is pairs of lines, `Prefix: Name1 Name2…` then `Prefix: 1 2…`.
fn parse_netstat(text: &str, prefix: &str) -> BTreeMap<String, u64> {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
    let [names, values] = lines[..] else { return BTreeMap::new() };
    let words = |line: &str| line[prefix.len()..].split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    words(names).into_iter().zip(words(values)).filter_map(|(name, value)| Some((name, value.parse().ok()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_pairs_names_with_values() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 3 18370 18371\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        let counters = parse_netstat(text, "TcpExt:");
        assert_eq!(counters.get("ListenOverflows"), Some(&18370));
        assert_eq!(counters.get("ListenDrops"), Some(&18371));
        assert_eq!(counters.len(), 3);
        assert!(parse_netstat("nothing", "TcpExt:").is_empty());
    }
}
