//! Section 4: the lab at 10,000 connections — `iolab compare` over every model, timed, and the
//! peak memory of `iolab` itself.
//!
//! The compare runs as a child process, exactly as a user would type it. Its wall time is ours
//! to measure. Its memory is not as simple: wait4's `ru_maxrss` for a child is the largest of the
//! child *and every descendant it reaped* — and `iolab compare` reaps its servers, one of which
//! holds 10,000 threads. So the bench reads the child's own high-water mark (`VmHWM` in
//! /proc/PID/status) every 20 ms while it runs. VmHWM only grows, so the last reading is the peak
//! up to 20 ms before exit; the wait4 figure is shown beside it for the whole tree.
//!
//! The kernel's `ListenOverflows` counter is read before and after: every overflow is a SYN
//! dropped at a full accept queue, which the client retries a second later, so a large count
//! explains connect phases that take seconds.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use procfs::process::Process;
use serde::Serialize;

use super::{machine, paired::Verdict};
use lab_measure::process::{Spawn, Stderr, Stdout};

pub const TARGET_WALL_S: f64 = 60.0;
pub const TARGET_RSS_MIB: f64 = 100.0;

#[derive(Clone, Debug, Serialize)]
pub struct ScaleSection {
    pub command: String,
    pub wall_s: f64,
    pub wall_verdict: Verdict,
    /// iolab's own peak resident set (VmHWM), MiB.
    pub iolab_peak_rss_mib: f64,
    pub rss_verdict: Verdict,
    /// wait4's ru_maxrss: the largest of iolab and the descendants it reaped, MiB.
    pub tree_max_rss_mib: f64,
    pub models: usize,
    /// Load-generator errors over all models (0 in a good run).
    pub errors: u64,
    /// SYNs dropped at full accept queues during the compare.
    pub listen_overflows: u64,
    /// Each model's figures from the compare's own report: msg/s of its measured run.
    pub msgs_per_sec: Vec<(String, f64)>,
    /// Each model's share of the wall time: from its first server's start to its last one's
    /// exit (the warm-up run and the measured run), as seen every 20 ms.
    pub seconds_per_model: Vec<(String, f64)>,
}

/// When each model's servers were first and last seen among the compare's children.
#[derive(Default)]
struct ModelTimes(Vec<(String, f64, f64)>);

impl ModelTimes {
    /// Reads the compare's direct children (`/proc/PID/task/PID/children`: cheap even when a
    /// server has 10,000 processes) and notes `now` for the model each one serves.
    fn look(&mut self, compare: u32, now: f64) {
        let children = std::fs::read_to_string(format!("/proc/{compare}/task/{compare}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            let Ok(cmdline) = std::fs::read(format!("/proc/{child}/cmdline")) else { continue };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let Some(at) = args.iter().position(|a| *a == b"--model") else { continue };
            let Some(model) = args.get(at + 1).map(|m| String::from_utf8_lossy(m).into_owned()) else { continue };
            match self.0.iter_mut().find(|(m, ..)| *m == model) {
                Some((_, _, last)) => *last = now,
                None => self.0.push((model, now, now)),
            }
        }
    }

    fn seconds(&self) -> Vec<(String, f64)> {
        self.0.iter().map(|(model, first, last)| (model.clone(), last - first)).collect()
    }
}

pub fn scale(connections: usize, messages: usize) -> Result<ScaleSection> {
    let args = ["compare", "--models", "all", "-c", &connections.to_string(), "-m", &messages.to_string()]
        .into_iter()
        .chain(["--runs", "1", "--quiet", "--format", "json"])
        .map(String::from)
        .collect::<Vec<_>>();
    let command = format!("iolab {}", args.join(" "));
    let overflows_before = machine::tcp_ext().get("ListenOverflows").copied().unwrap_or(0);
    let start = Instant::now();
    let mut child = Spawn::iolab(&args).named("iolab compare").stdout(Stdout::Lines).stderr(Stderr::Tail).start()?;
    let pid = child.pid;
    let mut hwm_kib = 0;
    let mut models = ModelTimes::default();
    // Poll until the child has exited (a zombie: no memory left to read), then reap it.
    let exit = loop {
        models.look(pid, start.elapsed().as_secs_f64());
        lab_measure::interrupt::check()?; // dropping the child kills it
        if let Some(hwm) = Process::new(pid as i32).and_then(|p| p.status()).ok().and_then(|s| s.vmhwm) {
            hwm_kib = hwm_kib.max(hwm);
        }
        if let Some(exit) = child.try_wait()? {
            break exit;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let maxrss_kib = exit.usage.max_rss_kib;
    let wall_s = start.elapsed().as_secs_f64();
    let overflows = machine::tcp_ext().get("ListenOverflows").copied().unwrap_or(0) - overflows_before;
    // Its stdout has ended with it: every line is in the channel.
    let text = child.lines()?.iter().collect::<Vec<_>>().join("\n");
    if !exit.status.success() {
        let said = child.tail().map(|t| t.lines(Duration::from_secs(1))).unwrap_or_default();
        let line = said.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_default();
        bail!("`{command}` failed ({}): {line}", exit.describe());
    }
    let doc: serde_json::Value = serde_json::from_str(&text).context("reading the compare's JSON")?;
    let results = doc["results"].as_array().cloned().unwrap_or_default();
    let iolab_peak_rss_mib = hwm_kib as f64 / 1024.0;
    Ok(ScaleSection {
        command,
        wall_s,
        wall_verdict: Verdict::below(wall_s, TARGET_WALL_S),
        iolab_peak_rss_mib,
        rss_verdict: Verdict::below(iolab_peak_rss_mib, TARGET_RSS_MIB),
        tree_max_rss_mib: maxrss_kib as f64 / 1024.0,
        models: results.len(),
        errors: results.iter().map(|r| r["errors"].as_u64().unwrap_or(0)).sum(),
        listen_overflows: overflows,
        seconds_per_model: models.seconds(),
        msgs_per_sec: results
            .iter()
            .map(|r| (r["model"].as_str().unwrap_or("?").to_owned(), r["msgs_per_sec"].as_f64().unwrap_or(0.0)))
            .collect(),
    })
}
