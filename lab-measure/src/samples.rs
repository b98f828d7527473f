//! What the lab samples beside the probe's counters: the tree's peak size while a run goes on,
//! and, while the server is idle, its memory and its epoll interest lists. Each is read from
//! /proc, so each is read sparingly.

use std::time::Duration;

use lab_common::Counters;

use crate::tree;

/// The largest number of processes and threads the server tree had at once.
///
/// The probe counts tasks started and exited exactly; the live count is sampled every
/// [`SAMPLE_EVERY`] while the load runs (a snapshot is one `bpf()` call), on top of the tree's
/// size at the start, which is read from /proc while the server is idle.
pub(super) struct Peak {
    base: Counters,
    base_processes: u64,
    base_threads: u64,
    pub(super) processes: u64,
    pub(super) threads: u64,
}

/// Each sample wakes the lab on CPUs the server and the generator keep busy, so not too often:
/// a tree that grows per connection stays at its peak for the whole run, and a task that lives
/// less than this may be missed either way.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

impl Peak {
    pub(super) fn at_start(root: u32, now: &Counters) -> Peak {
        let (processes, threads) = tree::size(root);
        Peak { base: *now, base_processes: processes, base_threads: threads, processes, threads }
    }

    pub(super) fn sample(&mut self, now: &Counters) {
        let live = |base: u64, started: u64, exited: u64| (base + started).saturating_sub(exited);
        let processes = live(
            self.base_processes,
            now.tasks.processes_started - self.base.tasks.processes_started,
            now.tasks.processes_exited - self.base.tasks.processes_exited,
        );
        let threads = live(
            self.base_threads,
            now.tasks.started - self.base.tasks.started,
            now.tasks.exited - self.base.tasks.exited,
        );
        self.processes = self.processes.max(processes);
        self.threads = self.threads.max(threads);
    }
}

/// The largest proportional set size (PSS) of the server tree, read from /proc (see
/// [`tree::pss_kib`]): memory the tree really holds, a page shared by N of its processes counted
/// 1/N in each, so that a process per connection is not charged N times for the interpreter they
/// share.
///
/// Reading it is not free: the kernel walks every mapping of every process, so a sample of a tree
/// with a process per connection takes time in proportion to its processes (BENCHMARKS.md has the
/// figure). So it is read only while the load generator pauses with every connection open and the
/// server idle: once when everything is counted (`--pause-when-connected`; the pause is taken out
/// of the window's length), and for the rounds and bursts before the window opens and after it
/// closes.
/// Never while the server works: a sample would take CPU from it and from the generator.
#[derive(Default)]
pub(super) struct Pss {
    pub(super) peak_kib: u64,
}

impl Pss {
    pub(super) fn sample(&mut self, root: u32) {
        self.peak_kib = self.peak_kib.max(tree::pss_kib(root));
    }
}

/// The tree's epoll interest lists at their largest (see [`tree::epoll_interest_lists`]).
///
/// Read only while the server is idle with every connection open (the load generator's pause),
/// never while it works: the kernel formats an epoll fd's fdinfo holding the instance's mutex,
/// which the server's `epoll_wait` needs to hand back what is ready. Read every 250 ms during a
/// scan at 10,000 fds, it made epoll's wait call look 17.7× dearer than at 10 fds: `--profile`
/// put 84 % of epoll's samples in `ep_send_events` spinning on that mutex (`mutex_spin_on_owner`).
#[derive(Default)]
pub(super) struct EpollLists {
    pub(super) largest: Vec<u64>,
}

impl EpollLists {
    pub(super) fn sample(&mut self, root: u32) {
        let lists = tree::epoll_interest_lists(root);
        if lists.iter().sum::<u64>() > self.largest.iter().sum::<u64>() {
            self.largest = lists;
        }
    }
}
