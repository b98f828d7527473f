//! A burst: a round of messages queued whole before the server may look, so that one wait call
//! can find every connection ready (`iolab prove`; `Counted::Bursts` in `run`, which drives it).
//!
//! Before each round the lab freezes the server's tree ([`Freezer`], a cgroup of its own); the
//! load generator sends the round and says how many bytes it queued; the lab releases the tree
//! once the server's TCP has acknowledged every byte, and the round is counted from the release
//! until the server is idle again. What a hold costs by itself is measured once with an empty
//! hold and taken out: the calls the freeze interrupted, entered again, and the threads it woke
//! that had nothing to do (see [`Burst`]).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use lab_common::Counters;
use serde::{Deserialize, Serialize};

use crate::{
    freeze::Freezer,
    probe::{Delta, Probe},
    settle::{Idle, settle},
    tree,
};

/// What the holds of a burst run did, and what they cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Burst {
    /// Rounds held and released.
    pub rounds: u64,
    /// Bytes the rounds sent, summed; each round was released only once the server's TCP had
    /// acknowledged all of its bytes (`/proc/net/tcp`).
    pub bytes_sent: u64,
    /// Of those, the bytes in the server's sockets unread at the releases: all of them for a
    /// server that reads with syscalls; fewer for io_uring, whose receives armed before the hold
    /// are completed by the kernel while the server is frozen.
    pub bytes_unread: u64,
    /// Syscalls one hold adds by itself: the call each blocked thread was in is interrupted by
    /// the freeze and entered again on release. Measured with an empty hold before the rounds;
    /// `rounds` times this, syscall by syscall, is subtracted from the counts.
    pub hold_syscalls: u64,
    /// Voluntary switches one hold adds by itself: every thread blocked in the server is woken by
    /// the freeze and blocks again after the release. Measured with the empty hold.
    #[serde(default)]
    pub hold_switches: u64,
    /// The rounds' switches that only the holds caused, subtracted from the counts. In a round
    /// at most one woken thread per busy connection can have had a message to serve; the others
    /// of `hold_switches` switched only because the lab froze them — a thread per idle
    /// connection, as the thread and process models keep under `--idle`. Their share of the
    /// empty hold's CPU is subtracted with them.
    #[serde(default)]
    pub forced_switches: u64,
}

/// A burst run between the load generator's cues (see the module comment).
pub(super) struct Holds {
    freezer: Freezer,
    /// Connections that send in every round.
    busy: u64,
    /// What an empty hold added: freezing the idle server and releasing it.
    empty_hold: Option<Counters>,
    /// The snapshot that opened the round in progress (taken frozen) and when it was released.
    round_opened: Option<(Counters, Instant)>,
    /// The rounds' counts and windows, summed.
    summed: Counters,
    pub(super) seconds: f64,
    pub(super) figures: Burst,
}

impl Holds {
    /// A cgroup of its own for the server's tree, whose `busy` connections send in every round;
    /// a process the tree creates is born in it.
    pub(super) fn new(root: u32, busy: u64) -> Result<Holds> {
        let freezer = Freezer::new()?;
        for pid in tree::processes(root) {
            freezer.adopt(pid)?;
        }
        Ok(Holds {
            freezer,
            busy,
            empty_hold: None,
            round_opened: None,
            summed: Counters::ZERO,
            seconds: 0.0,
            figures: Burst::default(),
        })
    }

    /// Freezes the idle server and releases it at once: what a hold costs with nothing queued.
    pub(super) fn measure_empty_hold(&mut self, probe: &mut Probe, root: u32) -> Result<()> {
        self.freezer.freeze()?;
        let frozen = probe.snapshot()?;
        self.freezer.thaw()?;
        let idle = settle(probe, root)?.counters;
        let cost = lab_common::sub_words(&idle, &frozen);
        self.figures.hold_syscalls = cost.syscalls.iter().sum::<u64>() + cost.syscall_out_of_range;
        self.figures.hold_switches = cost.switches.voluntary;
        self.empty_hold = Some(cost);
        Ok(())
    }

    /// Before a round: the previous one ends once the server is idle, then the tree is frozen.
    pub(super) fn hold(&mut self, probe: &mut Probe, root: u32) -> Result<()> {
        self.close_round(probe, root)?;
        self.freezer.freeze()?;
        self.round_opened = Some((probe.snapshot()?, Instant::now()));
        Ok(())
    }

    /// The round's `bytes` are sent: once the server's TCP has them all, release the tree.
    pub(super) fn release(&mut self, addr: SocketAddr, bytes: u64) -> Result<()> {
        let unread = wait_until_delivered(addr)?;
        self.figures.rounds += 1;
        self.figures.bytes_sent += bytes;
        self.figures.bytes_unread += unread;
        if let Some((_, at)) = self.round_opened.as_mut() {
            *at = Instant::now(); // the round's time starts at the release
        }
        self.freezer.thaw()
    }

    /// Waits until the server is idle and adds the round in progress, if any, to the sums.
    pub(super) fn close_round(&mut self, probe: &mut Probe, root: u32) -> Result<Idle> {
        let idle = settle(probe, root)?;
        if let Some((opened, at)) = self.round_opened.take() {
            lab_common::add_words(&mut self.summed, &lab_common::sub_words(&idle.counters, &opened));
            self.seconds += idle.since.saturating_duration_since(at).as_secs_f64();
        }
        Ok(idle)
    }

    /// The rounds' counts, less what the holds did by themselves; the switches taken out are
    /// recorded in the figures (`forced_switches`).
    pub(super) fn counted(&mut self) -> Delta {
        let Some(empty) = &self.empty_hold else { return Delta(self.summed) };
        let (counted, forced) = less_holds(&self.summed, empty, self.figures.rounds, self.busy);
        self.figures.forced_switches = forced;
        Delta(counted)
    }
}

/// `summed` over `rounds` less what each hold did by itself, given the `empty` hold's counts:
/// its syscalls, and the switches of the threads it woke beyond one per `busy` connection with
/// their share of its CPU (see [`Burst`]). Returns the counts and the switches taken out.
fn less_holds(summed: &Counters, empty: &Counters, rounds: u64, busy: u64) -> (Counters, u64) {
    let mut counted = *summed;
    for (count, per_hold) in counted.syscalls.iter_mut().zip(empty.syscalls) {
        *count = count.saturating_sub(per_hold * rounds);
    }
    let woken = empty.switches.voluntary;
    let forced = woken.saturating_sub(busy) * rounds;
    if forced == 0 {
        return (counted, 0);
    }
    counted.switches.voluntary = counted.switches.voluntary.saturating_sub(forced);
    // The empty hold's nanoseconds, per thread it woke, times the forced switches.
    let share = |ns: u64| u64::try_from(u128::from(ns) * u128::from(forced) / u128::from(woken)).unwrap_or(u64::MAX);
    counted.on_cpu_ns = counted.on_cpu_ns.saturating_sub(share(empty.on_cpu_ns));
    for (total, per_hold) in counted.interrupts.softirq_ns.iter_mut().zip(empty.interrupts.softirq_ns) {
        *total = total.saturating_sub(share(per_hold));
    }
    counted.interrupts.hardirq_ns = counted.interrupts.hardirq_ns.saturating_sub(share(empty.interrupts.hardirq_ns));
    (counted, forced)
}

/// Waits until the server's TCP has acknowledged every byte the clients sent to `addr` (no
/// client socket has unacknowledged data), and returns how many of them the server's sockets
/// hold unread. The two differ for io_uring: its receives, armed before the hold, are completed
/// by the kernel in the frozen server's task work, which still runs.
fn wait_until_delivered(addr: SocketAddr) -> Result<u64> {
    let started = Instant::now();
    loop {
        let sockets = procfs::net::tcp().context("reading /proc/net/tcp")?;
        let established = sockets.iter().filter(|s| s.state == procfs::net::TcpState::Established);
        let (mut unacknowledged, mut unread) = (0, 0);
        for socket in established {
            if socket.remote_address == addr {
                unacknowledged += u64::from(socket.tx_queue);
            } else if socket.local_address == addr {
                unread += u64::from(socket.rx_queue);
            }
        }
        if unacknowledged == 0 {
            return Ok(unread);
        }
        if started.elapsed() > QUEUE_LIMIT {
            bail!("{unacknowledged} bytes of the round never reached the held server's sockets in {QUEUE_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How long a round's bytes may take to reach the held server's sockets.
const QUEUE_LIMIT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters with `read` syscalls, voluntary switches, on-CPU and NET_RX nanoseconds.
    fn counters(reads: u64, switches: u64, on_cpu_ns: u64, net_rx_ns: u64) -> Counters {
        let mut c = Counters::ZERO;
        c.syscalls[0] = reads;
        c.switches.voluntary = switches;
        c.on_cpu_ns = on_cpu_ns;
        c.interrupts.softirq_ns[lab_common::softirq::NET_RX] = net_rx_ns;
        c
    }

    #[test]
    fn a_thread_per_idle_connection_woken_by_every_hold_is_taken_out() {
        // The thread model, 1,000 busy and 9,000 idle connections, 3 rounds: the empty hold
        // woke the 10,000 connection threads and the acceptor, 1 µs of CPU each. In the rounds
        // each busy thread also read and wrote its message (5 µs more, 1 µs of it NET_RX).
        let empty = counters(10_001, 10_001, 10_001_000, 0);
        let summed = counters(3 * (10_001 + 1_000), 3 * 10_001, 3 * (10_001_000 + 5_000_000), 3 * 1_000_000);
        let (counted, forced) = less_holds(&summed, &empty, 3, 1_000);
        assert_eq!(forced, 3 * 9_001, "every thread beyond one per busy connection");
        assert_eq!(counted.switches.voluntary, 3_000, "one switch per message");
        assert_eq!(counted.syscalls[0], 3_000, "one read per message, the restarted ones out");
        assert_eq!(counted.on_cpu_ns, 3 * (1_000_000 + 5_000_000), "the busy threads' wake-ups and their work");
        assert_eq!(counted.interrupts.softirq_ns[lab_common::softirq::NET_RX], 3_000_000);
    }

    #[test]
    fn one_loop_for_every_connection_loses_nothing_but_the_restarted_call() {
        // epoll: one thread, woken by the hold, has the whole round to serve.
        let empty = counters(1, 1, 2_000, 0);
        let summed = counters(3 * (1 + 2_000), 3, 3 * 4_000_000, 0);
        let (counted, forced) = less_holds(&summed, &empty, 3, 1_000);
        assert_eq!(forced, 0);
        assert_eq!(counted.switches.voluntary, 3);
        assert_eq!(counted.on_cpu_ns, 3 * 4_000_000);
        assert_eq!(counted.syscalls[0], 3 * 2_000);
    }
}
