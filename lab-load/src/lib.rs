//! The load generator: drives any echo-uppercase server and measures what it got back.
//!
//! It runs in a process of its own (`iolab load`), so its syscalls never land in the traced
//! server's process tree. A run has three phases:
//!
//! 1. **Connect.** Open every busy and idle connection, at most [`CONNECTS_IN_FLIGHT`] at a
//!    time so a burst of SYNs does not overrun a server's listen backlog. (On Linux a full
//!    backlog drops the SYN and the kernel retries it, so a refused connect really means nothing
//!    is listening: it is counted, not retried.)
//! 2. **Drive.** All busy connections start together. Each runs a closed loop — send one
//!    message, read and check the whole reply, repeat — either freely or, in lockstep mode,
//!    with message `k` starting on every connection once all have answered `k - 1`; or, with
//!    [`Workload::ahead`], keeps that many more messages in flight than the reply it reads. A busy
//!    connection that is done closes at once: it shuts down its side and expects the server to
//!    close too. See [`connection`].
//! 3. **Close** the idle connections the same way.
//!
//! Every IO has a timeout and an error stops only its own connection, so a run always ends.
//!
//! The generator must not be the bottleneck on a 2-core machine it shares with the server, and
//! it must not make the probe look costlier than it is: the probe runs on every syscall of the
//! machine, the generator's too. So connecting and closing idle connections, done once, use
//! tokio on one thread, but the drive phase runs on one io_uring: a send and a receive per
//! message are operations, not syscalls, and one `io_uring_enter` carries those of every
//! connection that completed meanwhile (BENCHMARKS.md: ~0.03 syscalls per message at 1,000
//! connections, where a task per connection made two).
//!
//! Connects are bounded, but a server that accepts more slowly than the generator connects can
//! still fill its accept queue; Linux then drops the SYN and retries it a second later. That
//! shows as a long `connect_seconds`, not as errors. A listen backlog of at least the number of
//! connections (up to `net.core.somaxconn`) avoids it.

mod connection;
mod cue;
pub mod limits;
mod payload;
mod report;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::{net::TcpStream, sync::Semaphore, time::timeout};

pub use cue::{Cue, NotACue};
pub use report::{ErrorCounts, Latency, LoadReport};

use connection::Shared;
use payload::Payload;
use report::Failure;

/// How many connects may be in progress at once.
pub const CONNECTS_IN_FLIGHT: usize = 256;

/// Bytes per message unless the workload says otherwise (`-b`).
pub const DEFAULT_PAYLOAD_BYTES: usize = 64;

/// The load, in one type for every layer: the command line fills it, a measured run carries it,
/// the generator runs it, and the results repeat it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workload {
    /// Busy connections, each running the closed loop.
    pub connections: usize,
    /// Messages each busy connection sends (the total is this times `connections`). Not in
    /// documents of schema 1, which read as 0.
    #[serde(default)]
    pub messages_per_connection: usize,
    /// Bytes per message (at least 1).
    pub payload_bytes: usize,
    /// Extra connections that connect, never send, and close at the end.
    pub idle: usize,
    /// Whether all busy connections send message `k` at the same moment (not in schema 1).
    #[serde(default)]
    pub lockstep: bool,
    /// Messages each busy connection sends ahead of the reply it is reading: 0 is the closed
    /// loop (send, read the reply, send the next); `n` keeps up to `n + 1` messages in flight, so
    /// the server finds the next one queued when it has answered one. Absent in older documents,
    /// which read as 0.
    #[serde(default)]
    pub ahead: usize,
    /// Microseconds each busy connection waits after a reply before it sends the next message (0:
    /// at once), so a server that answered is already waiting again when the message comes.
    /// Absent in older documents, which read as 0.
    #[serde(default)]
    pub think_us: u64,
}

impl Workload {
    /// `connections` busy connections, each sending `messages_per_connection` messages as fast
    /// as its replies come back, [`DEFAULT_PAYLOAD_BYTES`] each, no idle connections.
    pub fn free(connections: usize, messages_per_connection: usize) -> Workload {
        Workload {
            connections,
            messages_per_connection,
            payload_bytes: DEFAULT_PAYLOAD_BYTES,
            idle: 0,
            lockstep: false,
            ahead: 0,
            think_us: 0,
        }
    }

    /// As [`Workload::free`], but in `rounds` rounds: every connection sends message `k` at the
    /// same moment, once all have answered `k - 1`.
    pub fn lockstep(connections: usize, rounds: usize) -> Workload {
        Workload { lockstep: true, ..Workload::free(connections, rounds) }
    }

    /// The same, with `bytes` per message.
    pub fn with_payload(self, bytes: usize) -> Workload {
        Workload { payload_bytes: bytes, ..self }
    }

    /// The same, with `idle` extra connections that never send.
    pub fn with_idle(self, idle: usize) -> Workload {
        Workload { idle, ..self }
    }

    /// The same, with each busy connection sending `ahead` messages ahead of its replies.
    pub fn with_ahead(self, ahead: usize) -> Workload {
        Workload { ahead, ..self }
    }

    /// The same, with each busy connection waiting `think_us` µs after a reply.
    pub fn with_think_us(self, think_us: u64) -> Workload {
        Workload { think_us, ..self }
    }

    /// Busy and idle connections: the file descriptors and backlog a run needs.
    pub fn all_connections(&self) -> usize {
        self.connections + self.idle
    }
}

/// What load to send, and where.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub workload: Workload,
    /// Limit for each operation: a connect, one message's exchange, a close.
    pub timeout: Duration,
    /// Allow a non-loopback `addr`.
    pub allow_remote: bool,
    /// Stop twice and wait for a line on stdin: once all connections are open (after printing
    /// `connected`) and once every message is answered, before any connection closes (after
    /// printing `sent`). `iolab prove` uses the pauses to measure the message rounds alone.
    pub pause_between_phases: bool,
    /// Stop once all connections are open (after printing `connected`), and go on freely: how
    /// the lab reads a free-running server's memory with every connection open.
    pub pause_when_connected: bool,
    /// Lockstep, with the lab holding the server still while each round is sent: say `round` and
    /// wait before each round, say `queued BYTES` once the round is handed to the kernel.
    pub burst: bool,
    /// Answer every line on stdin with `answered N`: how many messages have been answered so
    /// far. `iolab bench` reads it to measure the throughput of short phases of one long run.
    pub answer_progress: bool,
}

impl LoadSpec {
    /// One connection sending one message of [`DEFAULT_PAYLOAD_BYTES`], 10 s timeout.
    pub fn new(addr: SocketAddr) -> Self {
        LoadSpec {
            addr,
            workload: Workload::free(1, 1),
            timeout: Duration::from_secs(10),
            allow_remote: false,
            pause_between_phases: false,
            pause_when_connected: false,
            burst: false,
            answer_progress: false,
        }
    }

    fn check(&self) -> Result<()> {
        if !self.allow_remote && !self.addr.ip().to_canonical().is_loopback() {
            bail!("refusing to send load to non-loopback address {} (use --allow-remote)", self.addr);
        }
        if self.workload.payload_bytes == 0 {
            bail!("the payload must be at least 1 byte");
        }
        if self.timeout.is_zero() {
            bail!("the timeout must be longer than zero");
        }
        if self.workload.ahead > 0 && self.workload.lockstep {
            bail!("lockstep rounds send one message at a time; sending ahead needs free-running connections");
        }
        if self.workload.think_us > 0 && (self.workload.lockstep || self.workload.ahead > 0) {
            bail!("a pause after each reply needs free-running connections that send one message at a time");
        }
        if self.burst && !(self.workload.lockstep && self.pause_between_phases) {
            bail!("a burst needs lockstep rounds and the pauses between phases");
        }
        if self.workload.all_connections() == 0 {
            bail!("nothing to do: no busy and no idle connections");
        }
        Ok(())
    }
}

/// Runs the load described by `spec` and reports what was measured.
///
/// Errors on a bad spec, too few file descriptors, or when not a single connection could be
/// opened; every other failure is counted in the report. Builds its own runtime, so it must
/// not be called from inside a tokio runtime.
pub fn run(spec: &LoadSpec) -> Result<LoadReport> {
    spec.check()?;
    limits::make_room_for(spec.workload.all_connections())?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the tokio runtime")?;
    runtime.block_on(run_phases(spec))
}

async fn run_phases(spec: &LoadSpec) -> Result<LoadReport> {
    let w = spec.workload;
    let mut report = LoadReport { workload: w, ..LoadReport::default() };

    // Phase 1: connect.
    let connect_start = Instant::now();
    let mut streams = connect_all(spec, w.all_connections(), &mut report.errors).await;
    report.connect_seconds = connect_start.elapsed().as_secs_f64();
    let idle: Vec<TcpStream> = streams.split_off(w.connections).into_iter().flatten().collect();
    let busy: Vec<(usize, TcpStream)> = streams.into_iter().enumerate().filter_map(|(id, s)| Some((id, s?))).collect();
    if busy.is_empty() && idle.is_empty() {
        bail!("could not open any connection to {}: {}", spec.addr, report.errors);
    }
    report.connections_open = busy.len();
    report.idle_open = idle.len();
    if spec.pause_between_phases || spec.pause_when_connected {
        pause(Cue::Connected);
    }

    // Phase 2: drive, and each busy connection closes when done (see `connection`: one io_uring;
    // this thread blocks in it meanwhile).
    let shared = Arc::new(Shared {
        payload: Payload::new(w.payload_bytes),
        messages: w.messages_per_connection,
        timeout: spec.timeout,
        lockstep: w.lockstep,
        ahead: w.ahead,
        think: io_uring::types::Timespec::from(Duration::from_micros(w.think_us)),
        thinks: w.think_us > 0,
        pause_when_sent: spec.pause_between_phases,
        burst: spec.burst,
        answered: AtomicU64::new(0),
    });
    if spec.answer_progress {
        answer_progress(Arc::clone(&shared));
    }
    let mut ids = Vec::with_capacity(busy.len());
    for (id, stream) in busy {
        ids.push((id, stream.into_std()?));
    }
    let (driven, latencies) = connection::drive_all(ids, &shared).context("driving the connections")?;

    let mut started = None::<Instant>;
    let mut last_reply = None::<Instant>;
    for outcome in driven {
        report.messages_ok += outcome.messages_ok;
        report.errors.add(&outcome.errors);
        started = earliest(started, outcome.started);
        last_reply = latest(last_reply, outcome.last_reply);
    }
    if let (Some(start), Some(end)) = (started, last_reply) {
        report.wall_seconds = end.saturating_duration_since(start).as_secs_f64();
    }
    if report.wall_seconds > 0.0 {
        report.msgs_per_sec = report.messages_ok as f64 / report.wall_seconds;
    }
    report.latency_us = Latency::from_nanos(&latencies);

    // Phase 3: close the idle connections.
    let closes: Vec<_> = idle.into_iter().map(|s| tokio::spawn(connection::close(s, spec.timeout))).collect();
    for close in closes {
        if let Err(failure) = close.await.unwrap_or(Err(Failure::Other)) {
            report.errors.count(failure);
        }
    }
    Ok(report)
}

/// Says `cue` on stdout and blocks until a line (or EOF) arrives on stdin. Blocking the
/// runtime is intended: every connection is parked at a barrier meanwhile.
pub(crate) fn pause(cue: Cue) {
    use std::io::BufRead as _;
    say(cue);
    let _ = std::io::stdin().lock().read_line(&mut String::new());
}

/// Says `cue` on stdout at once.
pub(crate) fn say(cue: Cue) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{cue}");
    let _ = stdout.flush();
}

/// A thread that answers every line on stdin with `answered N`, until stdin closes.
fn answer_progress(shared: Arc<Shared>) {
    use std::io::{BufRead as _, Write as _};
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines().map_while(Result::ok) {
            let mut stdout = std::io::stdout().lock();
            let answered = shared.answered.load(Ordering::Relaxed);
            if writeln!(stdout, "answered {answered}").and_then(|_| stdout.flush()).is_err() {
                break;
            }
        }
    });
}

/// Opens `count` connections, at most [`CONNECTS_IN_FLIGHT`] at a time. Slot `i` holds
/// connection `i`, or `None` if it failed (and the failure is counted).
async fn connect_all(spec: &LoadSpec, count: usize, errors: &mut ErrorCounts) -> Vec<Option<TcpStream>> {
    let gate = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let (addr, limit) = (spec.addr, spec.timeout);
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.map_err(|_| Failure::Other)?;
                let stream = match timeout(limit, TcpStream::connect(addr)).await {
                    Ok(connected) => connected?,
                    Err(_) => return Err(Failure::Timeout),
                };
                // Messages are small and the loop is closed: send each one at once.
                stream.set_nodelay(true)?;
                Ok::<_, Failure>(stream)
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(count);
    for task in tasks {
        match task.await.unwrap_or(Err(Failure::Other)) {
            Ok(stream) => streams.push(Some(stream)),
            Err(failure) => {
                errors.count(failure);
                streams.push(None);
            }
        }
    }
    streams
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    a.into_iter().chain(b).min()
}

fn latest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    a.into_iter().chain(b).max()
}
