//! Waiting until a traced server is idle, so that a snapshot of the counters falls between two
//! bursts of its work rather than inside one.
//!
//! Idle means two things at once: the probe's syscall counts have not moved for [`QUIET`], and no
//! thread of the tree is runnable (state R in /proc). The second matters on a busy machine: a
//! server thread preempted between sending a reply and its next read makes no syscall for as long
//! as it waits for a CPU, which can be longer than [`QUIET`]; without the check the snapshot could
//! fall before that read. A server that never goes idle (a timer, a loop spinning on `recv`
//! returning nothing) is given [`LIMIT`], then snapshotted anyway, and the result says so with
//! what it did meanwhile (see [`NotIdle`]).

use std::time::{Duration, Instant};

use anyhow::Result;
use lab_common::Counters;
use serde::{Deserialize, Serialize};

use crate::{interrupt, probe::Probe, tree};

/// How long the syscall counts must stay still.
pub const QUIET: Duration = Duration::from_millis(50);
/// How long to wait for idle at most.
pub const LIMIT: Duration = Duration::from_secs(5);
/// How often the counters are read while waiting.
const POLL: Duration = Duration::from_millis(5);

/// A server that was still busy when the lab stopped waiting: the window includes what it did
/// while the lab waited, up to `syscalls` calls more than serving the load took.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotIdle {
    /// How long the lab waited for it.
    pub waited_seconds: f64,
    /// Syscalls it made while the lab waited.
    pub syscalls: u64,
}

/// What [`settle`] found.
pub struct Idle {
    /// The counters once the tree was idle.
    pub counters: Counters,
    /// Set when it never was.
    pub not_idle: Option<NotIdle>,
    /// When its syscall counts last moved (to [`POLL`]; the start of the wait if they never
    /// did): where a window that ends with this wait really ends, without the quiet time.
    pub since: Instant,
}

/// The counters once the tree at `root` is idle, and whether it ever was.
pub fn settle(probe: &mut Probe, root: u32) -> Result<Idle> {
    let start = Instant::now();
    let first = probe.snapshot()?;
    let mut last = first;
    let mut still_since = start;
    loop {
        interrupt::check()?;
        std::thread::sleep(POLL);
        let now = probe.snapshot()?;
        if now.syscalls != last.syscalls {
            (still_since, last) = (Instant::now(), now);
        } else if still_since.elapsed() >= QUIET && !runnable(root) {
            return Ok(Idle { counters: now, not_idle: None, since: still_since });
        }
        if start.elapsed() >= LIMIT {
            let syscalls = total(&now) - total(&first);
            let not_idle = NotIdle { waited_seconds: start.elapsed().as_secs_f64(), syscalls };
            return Ok(Idle { counters: now, not_idle: Some(not_idle), since: still_since });
        }
    }
}

fn total(c: &Counters) -> u64 {
    c.syscalls.iter().sum::<u64>() + c.syscall_out_of_range
}

/// Whether any thread of the tree is running or waiting for a CPU.
fn runnable(root: u32) -> bool {
    tree::tasks(root).into_iter().any(|tid| tree::state(tid) == Some('R'))
}
