//! One measured run: a model under the probe, driven by the load generator.
//!
//! The order matters for honest numbers:
//! 1. bind the listener here, so the server is reachable the moment it starts;
//! 2. start the model traced (see `launch`) and wait until it is idle (see `settle`): start-up
//!    (the dynamic loader, the runtime) is over and it is blocked waiting for clients;
//! 3. snapshot, run the load generator in a process of its own (never in the traced tree),
//!    wait until the server is idle again (connection teardown counted), snapshot;
//! 4. kill and reap the server tree, which yields its CPU time and peak RSS.
//!
//! Everything between the two snapshots is the cost of serving this load, nothing else.

use std::{
    net::{Ipv4Addr, SocketAddr},
    os::fd::OwnedFd,
    sync::mpsc::RecvTimeoutError,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use lab_common::{Counters, MaxReady, SyscallTime};
use socket2::{Domain, Socket, Type};

use crate::{
    load::{LoadReport, Workload},
    measure::launch::LISTEN_FD,
    measure::privileges,
    measure::probe::{Delta, Probe, syscall_times_between},
    measure::process::{Child, Spawn, Stdout},
    measure::settle::{NotIdle, settle},
    measure::tree,
};

/// What to run: a model and the workload.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub model: String,
    pub workload: Workload,
    /// Count only the message rounds: connecting and closing happen outside the window.
    pub rounds_only: bool,
}

/// Step 1–2: a traced `iolab serve --model …` on a fresh loopback listener, ready for clients.
pub fn start_model(probe: &mut Probe, spec: &RunSpec) -> Result<(Child, SocketAddr)> {
    if lab_server::model(&spec.model).is_none() {
        bail!("unknown model {:?} (valid: {})", spec.model, lab_server::model_names().join(", "));
    }
    let (listener, addr) = bind_loopback(spec.workload.all_connections())?;
    let mut server = serve_model(&spec.model, &listener).start_traced(probe)?;
    drop(listener);
    server.wait_for_line("listening on", None)?;
    Ok((server, addr))
}

/// `iolab serve --model MODEL` on `listener` (at fd [`LISTEN_FD`]), as the user behind sudo, in
/// a process group of its own; its stdout lines are read (it says `listening on ADDR`).
pub fn serve_model<'a>(model: &str, listener: &'a OwnedFd) -> Spawn<'a> {
    Spawn::iolab(["serve", "--model", model, "--listen-fd", &LISTEN_FD.to_string()])
        .named("the server")
        .listener(listener)
        .stdout(Stdout::Lines)
        .own_group()
        .as_invoking_user()
}

/// What one load cost a traced server: the probe's counts between the two snapshots, the load
/// generator's report, and the tree's peak size.
pub struct Measured {
    pub delta: Delta,
    pub load: LoadReport,
    pub peak_processes: u64,
    pub peak_threads: u64,
    /// Set when the server never went idle after the load (see `settle`).
    pub not_idle: Option<NotIdle>,
    /// From the snapshot that opened the window to the one that closed it.
    pub window_seconds: f64,
    /// The most ready fds one wait call returned in the window, by wait kind.
    pub max_ready: MaxReady,
    /// With `--timing`: each syscall's calls, errors and on-CPU time in the window, by name.
    pub syscall_times: Option<std::collections::BTreeMap<String, SyscallTime>>,
}

/// Steps 2–3 above for any traced server listening at `addr` whose tree is rooted at `root`
/// (a model, or any command under `iolab trace`). `alive` fails if the server died.
///
/// With [`RunSpec::rounds_only`] the load generator pauses once every connection is open and
/// again once every message is answered; the snapshots are taken in those pauses, so connecting
/// and closing are left out of the window.
pub fn measure(
    probe: &mut Probe,
    root: u32,
    addr: SocketAddr,
    spec: &RunSpec,
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<Measured> {
    let mut window = Window {
        before: None,
        after: None,
        peak: None,
        opened: None,
        closed: None,
        max_ready: None,
        times_before: None,
        times_after: None,
    };
    if !spec.rounds_only {
        window.open(probe, root)?; // before the generator starts: its first connect is counted
    }
    let mut generator =
        load_generator(addr, &spec.workload).args(spec.rounds_only.then_some("--pause-between-phases")).start()?;
    let report = loop {
        if let Err(interrupted) = crate::interrupt::check() {
            return Err(interrupted.into());
        }
        match generator.lines()?.recv_timeout(SAMPLE_EVERY) {
            Ok(line) if line == "connected" => {
                window.open(probe, root)?;
                generator.write_line("")?; // go on to the next phase
            }
            Ok(line) if line == "sent" => {
                window.close(probe, root)?;
                generator.write_line("")?;
            }
            Ok(line) => break Some(line),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(peak) = window.peak.as_mut() {
                    peak.sample(&probe.snapshot()?);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break None,
        }
    };
    let status = generator.wait()?.status;
    // Ctrl-C in a terminal reaches the generator too (it shares our process group): say
    // "interrupted", not "the load generator failed".
    crate::interrupt::check()?;
    alive()?;
    if !status.success() {
        bail!("the load generator failed ({status})");
    }
    let report = report.context("the load generator printed no report")?;
    let load: LoadReport = serde_json::from_str(&report).context("reading the load generator's report")?;
    if window.before.is_none() {
        bail!("the load generator never opened its connections");
    }
    if window.after.is_none() {
        window.close(probe, root)?;
    }
    let Window {
        before: Some(before),
        peak: Some(peak),
        after: Some((after, not_idle)),
        closed: Some(closed),
        max_ready: Some(max_ready),
        opened,
        times_before,
        times_after,
    } = window
    else {
        bail!("the measured window was never closed");
    };
    let window_seconds = opened.map_or(0.0, |opened| (closed - opened).as_secs_f64());
    let delta = Delta::between(&before, &after);
    let (peak_processes, peak_threads) = (peak.processes, peak.threads);
    let syscall_times = times_before.zip(times_after).map(|(b, a)| syscall_times_between(&b, &a));
    Ok(Measured { delta, load, peak_processes, peak_threads, not_idle, window_seconds, max_ready, syscall_times })
}

/// The measurement window: the snapshot that opens it, the one that closes it, and the tree's
/// peak size in between.
struct Window {
    before: Option<Counters>,
    after: Option<(Counters, Option<NotIdle>)>,
    peak: Option<Peak>,
    /// When the two snapshots were taken.
    opened: Option<Instant>,
    closed: Option<Instant>,
    /// Read when the window closes; the probe's maxima are zeroed when it opens.
    max_ready: Option<MaxReady>,
    /// With `--timing`, read when it opens and when it closes.
    times_before: Option<Vec<SyscallTime>>,
    times_after: Option<Vec<SyscallTime>>,
}

impl Window {
    fn open(&mut self, probe: &mut Probe, root: u32) -> Result<()> {
        let (before, _) = settle(probe, root)?;
        probe.reset_max_ready()?; // the server is idle: no wait call returns meanwhile
        self.times_before = probe.syscall_times()?;
        self.opened = Some(Instant::now());
        self.peak = Some(Peak::at_start(root, &before));
        self.before = Some(before);
        Ok(())
    }

    fn close(&mut self, probe: &mut Probe, root: u32) -> Result<()> {
        self.after = Some(settle(probe, root)?);
        self.closed = Some(Instant::now());
        self.max_ready = Some(probe.max_ready()?);
        self.times_after = probe.syscall_times()?;
        Ok(())
    }
}

/// `iolab load --format json` at `addr` with `workload`, run as the user behind sudo, with stdin
/// and stdout piped for its cues and its report; never in the traced tree. Each caller adds its
/// own flags.
pub fn load_generator(addr: SocketAddr, workload: &Workload) -> Spawn<'static> {
    let w = workload;
    Spawn::iolab(["load", "--addr", &addr.to_string(), "--format", "json"])
        .args(["-c", &w.connections.to_string(), "-m", &w.messages_per_connection.to_string()])
        .args(["-b", &w.payload_bytes.to_string(), "--idle", &w.idle.to_string()])
        .args(w.lockstep.then_some("--lockstep"))
        .named("the load generator")
        .stdin_pipe()
        .stdout(Stdout::Lines)
        .as_invoking_user()
}

/// The largest number of processes and threads the server tree had at once.
///
/// The probe counts tasks started and exited exactly; the live count is sampled every
/// [`SAMPLE_EVERY`] while the load runs (a snapshot is one `bpf()` call), on top of the tree's
/// size at the start, which is read from /proc while the server is idle.
struct Peak {
    base: Counters,
    base_processes: u64,
    base_threads: u64,
    processes: u64,
    threads: u64,
}

/// Each sample wakes the lab on CPUs the server and the generator keep busy, so not too often:
/// a tree that grows per connection stays at its peak for the whole run, and a task that lives
/// less than this may be missed either way.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

impl Peak {
    fn at_start(root: u32, now: &Counters) -> Peak {
        let (processes, threads) = tree::size(root);
        Peak { base: *now, base_processes: processes, base_threads: threads, processes, threads }
    }

    fn sample(&mut self, now: &Counters) {
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

/// A loopback listener with a backlog large enough for every connection to queue at once (no
/// SYN is dropped and retried a second later while the generator connects), and its address.
/// `SO_REUSEPORT` is on from the start, so a model may open more listeners on the same address
/// (`epoll-reuseport`: one per thread); the socket belongs to the user the servers run as.
pub fn bind_loopback(connections: usize) -> Result<(OwnedFd, SocketAddr)> {
    let socket = privileges::as_invoking_user(|| Socket::new(Domain::IPV4, Type::STREAM, None))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.listen(connections.clamp(128, 65_535) as i32)?;
    let addr = socket.local_addr()?.as_socket().context("the listener has no IP address")?;
    Ok((socket.into(), addr))
}
