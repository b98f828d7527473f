//! `--profile`: where the traced tree's time goes, as stacks.
//!
//! Three things, all for the traced tree only and all inside the measured window:
//! - **on-CPU samples**: a `perf_event` program on the software `cpu-clock` event of every CPU, at
//!   the chosen frequency, keeps a sample only when the interrupted thread is traced, and counts
//!   it by (kernel stack, user stack) in the kernel; user space reads the counts once, when the
//!   window closes, and names the frames;
//! - **off-CPU time** by the kernel stack at which a traced thread blocked;
//! - **run-queue delay**: for each traced thread, from its wake-up (or its preemption) until it
//!   runs again.
//!
//! The programs are loaded and attached only when a profile is asked for: without `--profile`
//! the probe is what it is without this module.
//!
//! Stacks are *folded*, as Brendan Gregg's `stackcollapse` tools write them: the frames from the
//! root to the leaf joined by `;`, starting with the thread's name, then the user frames, then the
//! kernel frames, each kernel frame suffixed `_[k]`. Interrupt work is labelled by a frame of its
//! own where it begins: [`SOFTIRQ_FRAME`] before the softirq's entry, [`HARDIRQ_FRAME`] before a
//! hard interrupt's, so the peer's network receive (run in a softirq inside the server's
//! `sendto()`) stands as a tower of its own.

pub mod symbols;

use std::collections::BTreeMap;

use lab_common::HISTOGRAM_BUCKETS;
use serde::{Deserialize, Serialize};

/// The frame inserted where a softirq begins in a folded stack.
pub const SOFTIRQ_FRAME: &str = "[softirq]";
/// The frame inserted where a hard interrupt begins in a folded stack.
pub const HARDIRQ_FRAME: &str = "[hardirq]";
/// A frame that could not be named.
pub const UNKNOWN_FRAME: &str = "[unknown]";

/// What `--profile` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileOptions {
    /// Samples per second on each CPU (`--profile-hz`, 1–10000).
    pub hz: u32,
}

/// The stacks of one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Profile {
    /// The sampling frequency, per CPU.
    pub hz: u32,
    /// On-CPU samples of the tree's threads, by folded stack.
    pub on_cpu: BTreeMap<String, u64>,
    /// Samples that were taken but whose stack the kernel could not keep (its stack map was
    /// full, or the walk failed): counted, never silently lost.
    pub lost_samples: u64,
    /// Off-CPU time of the tree's threads, in ns, by the folded stack at which each blocked
    /// (thread name, then kernel frames): from the switch-out to the switch back in.
    pub off_cpu_ns: BTreeMap<String, u64>,
    /// The scheduler's delay: from a thread's wake-up (or its preemption) to its next run.
    pub run_queue: RunQueue,
}

/// Run-queue delay of the tree's threads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunQueue {
    /// Times a traced thread became runnable and then ran.
    pub waits: u64,
    /// Their delays, summed.
    pub delay_ns: u64,
    /// The delays by log2 bucket of ns (`lab_common::histogram_bucket`): bucket `i` holds
    /// `2^(i-1) <= ns < 2^i`, the last everything above.
    pub histogram: [u64; HISTOGRAM_BUCKETS],
}

impl Profile {
    /// All on-CPU samples, lost ones included.
    pub fn samples(&self) -> u64 {
        self.on_cpu.values().sum::<u64>() + self.lost_samples
    }
}
