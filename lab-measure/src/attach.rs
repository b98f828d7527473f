//! Putting the probe on a server that is already running (`iolab trace --pid`, `iolab top`,
//! `iolab bench`): every thread of its tree is marked, and the probe follows the tasks they
//! start from then on.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::{probe::Probe, tree};

/// Marks every thread of `root` and of its descendants as traced; returns how many.
///
/// The probe follows tasks created by marked tasks, so once a look at /proc finds nothing
/// unmarked, any newer task was created by a marked one and is followed. One race remains: a
/// task whose creation began before its parent was marked shows in /proc only when the kernel
/// has finished creating it, microseconds later. So the lab stops only after two looks, 10 ms
/// apart, find nothing new.
pub fn attach(probe: &mut Probe, root: u32) -> Result<usize> {
    let mut marked = std::collections::HashSet::new();
    let mut quiet_looks = 0;
    for _ in 0..1000 {
        let new: Vec<u32> = tree::tasks(root).into_iter().filter(|t| !marked.contains(t)).collect();
        if new.is_empty() && marked.is_empty() {
            bail!("process {root} is gone");
        }
        quiet_looks = if new.is_empty() { quiet_looks + 1 } else { 0 };
        if quiet_looks == 2 {
            return Ok(marked.len());
        }
        for tid in new {
            probe.trace_task(tid)?;
            marked.insert(tid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("process {root} keeps starting tasks faster than they can be marked")
}
