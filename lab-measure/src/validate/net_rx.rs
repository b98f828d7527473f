//! `perf record -a -e cpu-clock -g` over the reported run: the share of the tree's CPU time that
//! went to NET_RX softirqs, from perf's samples, beside the probe's.
//!
//! perf samples every CPU at [`FREQUENCY`], whatever runs there, with its kernel stack; the
//! samples of the tree's processes are kept (the tree is followed through perf's own fork
//! records, so a child that exits before the end is kept too). A sample taken while the NET_RX
//! softirq runs on one of the tree's threads (on loopback, inside its own `sendto()`, see the
//! kernel notes) has `net_rx_action` on its stack. The probe times the same softirq between
//! `softirq_entry` and `softirq_exit` on the tree's threads. Both count time on the tree's
//! threads alone, so the two shares must agree; perf's is a sample (about a thousand per
//! CPU-second), so they may part by a few points: [`ALLOWED_POINTS`].
//!
//! Every CPU, not the tree's threads (`perf record -p`): a per-thread event is switched in and
//! out with its thread, and where the tree switches on every message that is both a cost and a
//! blind spot. Measured with `iolab run --model thread -c 100 -m 2000 --validate`: with `-p`
//! the probe counted 6.12 s of the tree's CPU and perf's samples 4.38 s (the switches' own
//! perf work, unsampled), and the NET_RX shares parted by 3.5 points; sampling every CPU, the
//! same run had 2.39 s and 2.34 s, and NET_RX 21.6 % and 21.7 %.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::{Attached, NetRxAgreement};
use crate::{
    interrupt,
    probe::Delta,
    process::{self, Spawn, Stderr, Stdout},
    result::Window,
    tree,
};

/// Samples per second on each CPU.
const FREQUENCY: u64 = 999;

/// How far apart, in percentage points, the two shares may be.
pub const ALLOWED_POINTS: f64 = 5.0;

/// Fewer samples than this make too rough a share to check within [`ALLOWED_POINTS`]: at a
/// share near 35 % (epoll's, measured here), 400 samples put one standard error at 2.4 points.
pub const MIN_SAMPLES: u64 = 400;

/// The function every NET_RX softirq runs under.
const NET_RX: &str = "net_rx_action";

/// perf record during the first run, if asked and installed.
pub enum Sampling {
    NotAsked,
    /// Why the NET_RX share cannot be checked here.
    Unavailable(String),
    Attached(Recording),
}

/// perf record attached, the file it writes, and the tree whose samples count: `root` and the
/// processes it had when perf started.
pub struct Recording {
    perf: Attached,
    file: PathBuf,
    root: u32,
    processes: Vec<u32>,
}

impl Sampling {
    /// `perf record -a -e cpu-clock -F 999 -g -o FILE`, ready once it has an event on every
    /// CPU; `root`'s tree is picked out of the samples at the end.
    pub fn attach(root: u32) -> Result<Sampling> {
        let file = std::env::temp_dir().join(format!("iolab-perf-{}-{root}.data", std::process::id()));
        let path = file.to_string_lossy().into_owned();
        let args = ["record", "-q", "-a", "-e", "cpu-clock", "-F", &FREQUENCY.to_string(), "-g", "-o", &path];
        let Some(mut perf) = Attached::start("perf", &args.map(String::from))? else {
            return Ok(Sampling::Unavailable(
                "perf is not installed (apt-get install linux-perf): NET_RX share not checked".into(),
            ));
        };
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        match perf.wait_until(|perf| super::perf::perf_counters(perf) >= cpus) {
            Ok(()) => Ok(Sampling::Attached(Recording { perf, file, root, processes: tree::processes(root) })),
            Err(err) if interrupt::cause(&err).is_some() => Err(err),
            Err(err) => Ok(Sampling::Unavailable(format!("{err:#}: NET_RX share not checked"))),
        }
    }

    /// Stops perf, counts its samples and those under `net_rx_action`, and compares the share
    /// with the probe's over the same run.
    pub fn finish(self, delta: &Delta) -> Result<Result<NetRxAgreement, String>> {
        let recording = match self {
            Sampling::NotAsked => return Ok(Err("not asked".into())),
            Sampling::Unavailable(why) => return Ok(Err(why)),
            Sampling::Attached(recording) => recording,
        };
        let Recording { perf, file, root, mut processes } = recording;
        let _ = perf.finish()?;
        let script = read_script(&file);
        let _ = std::fs::remove_file(&file);
        processes.push(root);
        let (samples, net_rx) = match script {
            Ok(text) => count_samples(&text, &processes),
            Err(err) => return Ok(Err(format!("{err:#}: NET_RX share not checked"))),
        };
        if samples < MIN_SAMPLES {
            return Ok(Err(format!(
                "perf took {samples} samples of the tree, fewer than {MIN_SAMPLES}: too few to check the NET_RX share \
                 within {ALLOWED_POINTS} points (a longer run takes more)"
            )));
        }
        let window = Window::measured(0.0, &delta.0);
        if window.server_cpu_ns == 0 {
            return Ok(Err("the probe saw no CPU time: NET_RX share not checked".into()));
        }
        let probe_percent = 100.0 * window.softirq_ns.net_rx as f64 / window.server_cpu_ns as f64;
        let perf_percent = 100.0 * net_rx as f64 / samples as f64;
        let diff_points = perf_percent - probe_percent;
        Ok(Ok(NetRxAgreement {
            probe_percent,
            perf_percent,
            samples,
            net_rx_samples: net_rx,
            probe_cpu_ns: window.server_cpu_ns,
            perf_cpu_ns: samples * 1_000_000_000 / FREQUENCY,
            diff_points,
            allowed_points: ALLOWED_POINTS,
            ok: diff_points.abs() <= ALLOWED_POINTS,
        }))
    }
}

/// `perf script -F pid,tid,ip,sym --show-task-events -i FILE`: each sample's `PID/TID` line and
/// its stack, one frame a line, samples apart; and a line per task created
/// (`PERF_RECORD_FORK(PID:TID):(PARENT_PID:PARENT_TID)`).
fn read_script(file: &std::path::Path) -> Result<String> {
    let perf = process::which("perf").context("perf is gone")?;
    let args =
        ["script", "-F", "pid,tid,ip,sym", "--show-task-events", "-i", &file.to_string_lossy()].map(String::from);
    let mut child =
        Spawn::program(&perf).named("perf script").args(&args).stdout(Stdout::Lines).stderr(Stderr::Tail).start()?;
    let exit = child.wait()?;
    let out: Vec<String> = child.lines()?.iter().collect();
    if !exit.status.success() {
        let said = child.tail().map(|t| t.lines(std::time::Duration::from_secs(1))).unwrap_or_default();
        anyhow::bail!("perf script failed ({}): {}", exit.status, said.join(" | "));
    }
    Ok(out.join("\n"))
}

/// The samples of the tree in `perf script` output (see [`read_script`]), and those with
/// `net_rx_action` on their stack. The tree is `roots` and every process any of them (or their
/// children) forked, by perf's fork records.
pub(super) fn count_samples(text: &str, roots: &[u32]) -> (u64, u64) {
    let tree = follow_forks(text, roots);
    let (mut samples, mut net_rx) = (0, 0);
    // The process of the sample being read, and whether `net_rx_action` is on its stack so far.
    let mut sample: Option<(u32, bool)> = None;
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() || line.contains("PERF_RECORD_") {
            if let Some((pid, under_net_rx)) = sample.take()
                && tree.contains(&pid)
            {
                samples += 1;
                net_rx += u64::from(under_net_rx);
            }
            continue;
        }
        if !line.starts_with('\t') {
            // A sample's header: `PID/TID`.
            sample = line.split('/').next().and_then(|pid| pid.trim().parse().ok()).map(|pid| (pid, false));
            continue;
        }
        // A frame: `ADDRESS SYMBOL+OFFSET (DSO)`.
        let symbol = line.split_whitespace().nth(1).unwrap_or("");
        if let Some((_, under_net_rx)) = &mut sample {
            *under_net_rx |= symbol.split('+').next() == Some(NET_RX);
        }
    }
    (samples, net_rx)
}

/// `roots` and every process forked from them, by the fork records in `perf script` output (a
/// thread's record names its own process as the parent, so it adds nothing).
fn follow_forks(text: &str, roots: &[u32]) -> std::collections::HashSet<u32> {
    let mut tree: std::collections::HashSet<u32> = roots.iter().copied().collect();
    for line in text.lines() {
        let Some(record) = line.split("PERF_RECORD_FORK(").nth(1) else { continue };
        // `CHILD_PID:CHILD_TID):(PARENT_PID:PARENT_TID)`
        let pid =
            |part: &str| part.trim_start_matches([':', '(']).split(':').next().and_then(|p| p.parse::<u32>().ok());
        let mut parts = record.split(')');
        if let (Some(child), Some(parent)) = (parts.next().and_then(pid), parts.next().and_then(pid))
            && tree.contains(&parent)
        {
            tree.insert(child);
        }
    }
    tree
}
