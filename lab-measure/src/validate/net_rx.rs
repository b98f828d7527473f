//! `perf record -e cpu-clock -g` attached to the tree during the reported run: the share of the
//! tree's CPU time that went to NET_RX softirqs, from perf's samples, beside the probe's.
//!
//! perf samples each thread of the tree's processes at [`FREQUENCY`] while it is on a CPU, with
//! its kernel stack; a sample taken while the NET_RX softirq runs on the thread (on loopback,
//! inside its own `sendto()`, see the kernel notes) has `net_rx_action` on that stack. The
//! probe times the same softirq between `softirq_entry` and `softirq_exit` on the tree's threads.
//! Both count time on the tree's threads alone, so the two shares must agree; perf's is a sample
//! (about a thousand per CPU-second), so they may part by a few points: [`ALLOWED_POINTS`].
//! Where the tree switches on every message (a thread per connection), perf's samples add up to
//! less CPU time than the probe counts and the shares part by more, perf's the higher; the check
//! reports both denominators (`probe_cpu_ns`, `perf_cpu_ns`) so that a mismatch shows which.

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

/// Samples per second per thread on a CPU.
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

/// perf record attached, and the file it writes.
pub struct Recording(Attached, PathBuf);

impl Sampling {
    /// `perf record -e cpu-clock -F 999 -g -p PID,… -o FILE`, ready once it has an event on
    /// every thread.
    pub fn attach(root: u32) -> Result<Sampling> {
        let pids: Vec<String> = tree::processes(root).iter().map(u32::to_string).collect();
        let file = std::env::temp_dir().join(format!("iolab-perf-{}-{root}.data", std::process::id()));
        let path = file.to_string_lossy().into_owned();
        let args =
            ["record", "-q", "-e", "cpu-clock", "-F", &FREQUENCY.to_string(), "-g", "-p", &pids.join(","), "-o", &path];
        let Some(mut perf) = Attached::start("perf", &args.map(String::from))? else {
            return Ok(Sampling::Unavailable(
                "perf is not installed (apt-get install linux-perf): NET_RX share not checked".into(),
            ));
        };
        let threads = tree::tasks(root).len();
        match perf.wait_until(|perf| super::perf::perf_counters(perf) >= threads) {
            Ok(()) => Ok(Sampling::Attached(Recording(perf, file))),
            Err(err) if interrupt::cause(&err).is_some() => Err(err),
            Err(err) => Ok(Sampling::Unavailable(format!("{err:#}: NET_RX share not checked"))),
        }
    }

    /// Stops perf, counts its samples and those under `net_rx_action`, and compares the share
    /// with the probe's over the same run.
    pub fn finish(self, delta: &Delta) -> Result<Result<NetRxAgreement, String>> {
        let (perf, file) = match self {
            Sampling::NotAsked => return Ok(Err("not asked".into())),
            Sampling::Unavailable(why) => return Ok(Err(why)),
            Sampling::Attached(Recording(perf, file)) => (perf, file),
        };
        let _ = perf.finish()?;
        let script = read_script(&file);
        let _ = std::fs::remove_file(&file);
        let (samples, net_rx) = match script {
            Ok(text) => count_samples(&text),
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

/// `perf script -F ip,sym -i FILE`: each sample's stack, one frame a line, samples apart.
fn read_script(file: &std::path::Path) -> Result<String> {
    let perf = process::which("perf").context("perf is gone")?;
    let args = ["script", "-F", "ip,sym", "-i", &file.to_string_lossy()].map(String::from);
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

/// Samples in `perf script` output (stacks separated by blank lines), and those with
/// `net_rx_action` on their stack.
pub(super) fn count_samples(text: &str) -> (u64, u64) {
    let (mut samples, mut net_rx) = (0, 0);
    let mut in_sample = false;
    let mut under_net_rx = false;
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if in_sample {
                samples += 1;
                net_rx += u64::from(under_net_rx);
            }
            (in_sample, under_net_rx) = (false, false);
            continue;
        }
        in_sample = true;
        // A frame: `ADDRESS SYMBOL+OFFSET (DSO)`.
        let symbol = line.split_whitespace().nth(1).unwrap_or("");
        under_net_rx |= symbol.split('+').next() == Some(NET_RX);
    }
    (samples, net_rx)
}
