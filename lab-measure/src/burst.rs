//! A burst: a round of messages queued whole before the server may look, so that one wait call
//! can find every connection ready (`iolab prove`; `Counted::Bursts` in `run`, which drives it).
//!
//! Before each round the lab freezes the server's tree ([`Freezer`], a cgroup of its own); the
//! load generator sends the round and says how many bytes it queued; the lab releases the tree
//! once the server's TCP has acknowledged every byte, and the round is counted from the release
//! until the server is idle again. What a hold costs by itself (the interrupted wait calls
//! entered again) is measured once with an empty hold and taken out.

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
}

/// A burst run between the load generator's cues (see the module comment).
pub(super) struct Holds {
    freezer: Freezer,
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
    /// A cgroup of its own for the server's tree; a process the tree creates is born in it.
    pub(super) fn new(root: u32) -> Result<Holds> {
        let freezer = Freezer::new()?;
        for pid in tree::processes(root) {
            freezer.adopt(pid)?;
        }
        Ok(Holds {
            freezer,
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

    /// The rounds' counts, less the syscalls the holds added.
    pub(super) fn counted(&self) -> Delta {
        let mut counted = self.summed;
        if let Some(cost) = &self.empty_hold {
            for (count, per_hold) in counted.syscalls.iter_mut().zip(cost.syscalls) {
                *count = count.saturating_sub(per_hold * self.figures.rounds);
            }
        }
        Delta(counted)
    }
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
