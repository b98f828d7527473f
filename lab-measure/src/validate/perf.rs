//! `perf stat -e context-switches` attached to the tree during the reported run.

use anyhow::Result;

use super::{Attached, SwitchAgreement, allowed};
use crate::{interrupt, probe::Delta, tree};

/// perf during the first run, if asked and installed.
pub enum PerfRun {
    NotAsked,
    /// Why context switches cannot be checked here.
    Unavailable(String),
    Attached(Perf),
}

pub struct Perf(Attached);

impl Perf {
    /// `perf stat -e context-switches -p PID,…`, ready once it has a counter on every thread.
    pub fn attach(root: u32) -> Result<PerfRun> {
        let pids: Vec<String> = tree::processes(root).iter().map(u32::to_string).collect();
        let args = ["stat", "-e", "context-switches", "-x", ",", "-o", "/dev/stdout", "-p", &pids.join(",")];
        let Some(mut perf) = Attached::start("perf", &args.map(String::from))? else {
            return Ok(PerfRun::Unavailable(
                "perf is not installed (apt-get install linux-perf): context switches not checked".into(),
            ));
        };
        let threads = tree::tasks(root).len();
        match perf.wait_until(|perf| perf_counters(perf) >= threads) {
            Ok(()) => Ok(PerfRun::Attached(Perf(perf))),
            Err(err) if interrupt::cause(&err).is_some() => Err(err),
            Err(err) => Ok(PerfRun::Unavailable(format!("{err:#}: context switches not checked"))),
        }
    }
}

impl PerfRun {
    /// Stops perf and compares its count with the probe's over the same run.
    pub fn finish(self, delta: &Delta) -> Result<Result<SwitchAgreement, String>> {
        let perf = match self {
            PerfRun::NotAsked => return Ok(Err("not asked".into())),
            PerfRun::Unavailable(why) => return Ok(Err(why)),
            PerfRun::Attached(Perf(perf)) => perf,
        };
        let (out, said) = perf.finish()?;
        let Some(count) = parse_perf_count(&out) else {
            return Ok(Err(format!("perf counted nothing ({}): context switches not checked", said.trim())));
        };
        let probe = delta.0.switches.voluntary + delta.0.switches.involuntary;
        let diff = count as i64 - probe as i64;
        let allowed = allowed(count.max(probe));
        Ok(Ok(SwitchAgreement { probe, perf: count, diff, allowed, ok: diff.unsigned_abs() <= allowed }))
    }
}

/// `perf stat -x,` prints `COUNT,UNIT,EVENT,RUNTIME,…`. `<not counted>` means the counter
/// never ran: the tasks never ran, so they never switched.
pub(super) fn parse_perf_count(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.contains(",context-switches,"))?;
    match line.split(',').next()? {
        "<not counted>" => Some(0),
        count => count.parse().ok(),
    }
}

/// perf's counters: its `anon_inode:[perf_event]` fds.
pub(super) fn perf_counters(perf: u32) -> usize {
    let Ok(fds) = procfs::process::Process::new(perf as i32).and_then(|p| p.fd()) else { return 0 };
    fds.filter_map(|fd| fd.ok())
        .filter(|fd| matches!(&fd.target, procfs::process::FDTarget::AnonInode(name) if name == "[perf_event]"))
        .count()
}
