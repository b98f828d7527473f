//! One measured run: a model (or any server given as a command) under the probe, driven by the
//! load generator.
//!
//! The order matters for honest numbers:
//! 1. bind the listener here, so the server is reachable the moment it starts (a `--server`
//!    command binds its own, on a free port the lab picks, and is ready once it listens there);
//! 2. start the model traced (see `launch`) and wait until it is idle (see `settle`): start-up
//!    (the dynamic loader, the runtime) is over and it is blocked waiting for clients;
//! 3. snapshot, run the load generator in a process of its own (never in the traced tree),
//!    wait until the server is idle again (connection teardown counted), snapshot;
//! 4. kill and reap the server tree, which yields its CPU time and peak RSS.
//!
//! Everything between the two snapshots is the cost of serving this load, nothing else.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    os::fd::OwnedFd,
    sync::mpsc::RecvTimeoutError,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use lab_common::Counters;
use socket2::{Domain, Socket, Type};

use crate::{
    load::{LoadReport, Workload},
    measure::launch::LISTEN_FD,
    measure::privileges,
    measure::probe::{Delta, Probe},
    measure::process::{self, Child, Spawn, Stderr, Stdout},
    measure::settle::{NotIdle, QUIET, settle},
    measure::tree,
};

/// What to run: a model or a command, and the workload.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The model, or the name of a `--server` command: what the results call it.
    pub model: String,
    /// A `--server`'s command line, with [`PORT`] where the port goes; `None` for a model.
    pub command: Option<Vec<String>>,
    pub workload: Workload,
    /// Count only the message rounds: connecting and closing happen outside the window.
    pub rounds_only: bool,
}

/// Step 1–2: a traced `iolab serve --model …` on a fresh loopback listener (or the spec's
/// command, see [`start_command`]), ready for clients.
pub fn start_model(probe: &mut Probe, spec: &RunSpec) -> Result<(Child, SocketAddr)> {
    if let Some(command) = &spec.command {
        return start_command(probe, &spec.model, command);
    }
    if lab_server::model(&spec.model).is_none() {
        bail!("unknown model {:?} (valid: {})", spec.model, lab_server::model_names().join(", "));
    }
    let (listener, addr) = bind_loopback(spec.workload.all_connections())?;
    let mut server = serve_model(&spec.model, &listener).start_traced(probe)?;
    drop(listener);
    server.wait_for_line("listening on", None)?;
    Ok((server, addr))
}

/// In a `--server` command, what the lab replaces with the port it picked.
pub const PORT: &str = "{port}";

/// How long a `--server` command may take to listen on its port: generous, because an
/// interpreter importing its libraries on a busy machine can take many seconds (the models have
/// no limit at all: they say when they listen).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `--server` command that never listened on its port: it could not be run, exited first, or
/// took longer than [`READY_TIMEOUT`]. The reason quotes the command and ends with its last output.
#[derive(Debug)]
pub struct NotStarted {
    pub name: String,
    pub reason: String,
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server {} did not start: {}", self.name, self.reason)
    }
}

impl std::error::Error for NotStarted {}

/// Step 1–2 for a `--server` NAME: its command with [`PORT`] replaced by a free loopback port,
/// started traced like a model (through the gate, in a process group of its own, as the user
/// behind sudo), ready once its tree listens on that port (see [`tree::wait_listening`]). It
/// binds its own listener, so the lab only picks the port: bound and closed here, free when the
/// server binds it a moment later.
fn start_command(probe: &mut Probe, name: &str, command: &[String]) -> Result<(Child, SocketAddr)> {
    let addr = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?;
    let port = addr.port().to_string();
    let argv: Vec<String> = command.iter().map(|arg| arg.replace(PORT, &port)).collect();
    let shown = argv.join(" ");
    let (program, args) = argv.split_first().context("an empty --server command")?;
    let not_started = |reason: String| NotStarted { name: name.to_owned(), reason: format!("`{shown}`: {reason}") };
    let Some(path) = process::which(program) else {
        bail!(not_started(format!("cannot run '{program}': no such command")));
    };
    let spawn = Spawn::program(&path).named("the server").args(args);
    let spawn = spawn.stdout(Stdout::Tail).stderr(Stderr::Tail).own_group().as_invoking_user();
    let mut server = spawn.start_traced(probe)?;
    let ready = tree::wait_listening(server.pid, Some(addr), PORT, READY_TIMEOUT, &mut || server.exited());
    match ready {
        Ok(addr) => Ok((server, addr)),
        Err(err) if crate::interrupt::cause(&err).is_some() => Err(err),
        Err(err) => {
            let tail = server.tail();
            let _ = server.stop();
            let lines = tail.map(|t| t.lines(Duration::from_secs(1))).unwrap_or_default();
            let lines: Vec<String> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
            let last = match lines.is_empty() {
                true => "it printed nothing".to_owned(),
                false => format!("its last output: {}", lines.join(" | ")),
            };
            bail!(not_started(format!("{err:#}; {last}")))
        }
    }
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
/// generator's report, and the tree's peak size and memory.
pub struct Measured {
    pub delta: Delta,
    pub load: LoadReport,
    pub peak_processes: u64,
    pub peak_threads: u64,
    /// The tree's largest proportional set size in the window, in KiB (see [`Pss`]).
    pub peak_pss_kib: u64,
    /// Set when the server never went idle after the load (see `settle`).
    pub not_idle: Option<NotIdle>,
    /// From the snapshot that opened the window to the one that closed it.
    pub window_seconds: f64,
}

/// Steps 2–3 above for any traced server listening at `addr` whose tree is rooted at `root`
/// (a model, or any command under `iolab trace`). `alive` fails if the server died.
///
/// With [`RunSpec::rounds_only`] the load generator pauses once every connection is open and
/// again once every message is answered; the snapshots are taken in those pauses, so connecting
/// and closing are left out of the window. Otherwise it pauses once, with every connection open,
/// for the lab to read the tree's memory (see [`Pss`]).
pub fn measure(
    probe: &mut Probe,
    root: u32,
    addr: SocketAddr,
    spec: &RunSpec,
    alive: &mut dyn FnMut() -> Result<()>,
) -> Result<Measured> {
    let mut window = Window::default();
    if !spec.rounds_only {
        window.open(probe, root)?; // before the generator starts: its first connect is counted
    }
    let pause = if spec.rounds_only { "--pause-between-phases" } else { "--pause-when-connected" };
    let mut generator = load_generator(addr, &spec.workload).arg(pause).start()?;
    let report = loop {
        if let Err(interrupted) = crate::interrupt::check() {
            return Err(interrupted.into());
        }
        match generator.lines()?.recv_timeout(SAMPLE_EVERY) {
            Ok(line) if line == "connected" => {
                // Every connection is open: the tree's memory, read while the server is idle.
                settle(probe, root)?;
                let took = window.pss.sample(root);
                match spec.rounds_only {
                    true => window.open(probe, root)?,
                    // Inside the window: the server was idle for at least QUIET and the sample.
                    false => window.paused += QUIET + took,
                }
                generator.write_line("")?; // go on to the next phase
            }
            Ok(line) if line == "sent" => {
                window.after = Some(settle(probe, root)?);
                window.closed = Some(Instant::now());
                window.pss.sample(root); // every connection is still open
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
    let (Some(before), Some(peak)) = (window.before, window.peak) else {
        bail!("the load generator never opened its connections");
    };
    let (after, not_idle) = match window.after {
        Some(after) => after,
        None => settle(probe, root)?,
    };
    let closed = window.closed.unwrap_or_else(Instant::now);
    let window_seconds =
        window.opened.map_or(0.0, |opened| (closed - opened).saturating_sub(window.paused).as_secs_f64());
    let delta = Delta::between(&before, &after);
    let (peak_processes, peak_threads, peak_pss_kib) = (peak.processes, peak.threads, window.pss.peak_kib);
    Ok(Measured { delta, load, peak_processes, peak_threads, peak_pss_kib, not_idle, window_seconds })
}

/// The measurement window: the snapshot that opens it, the one that closes it, and the tree's
/// peak size and memory in between.
#[derive(Default)]
struct Window {
    before: Option<Counters>,
    after: Option<(Counters, Option<NotIdle>)>,
    peak: Option<Peak>,
    pss: Pss,
    /// When the two snapshots were taken.
    opened: Option<Instant>,
    closed: Option<Instant>,
    /// Time inside the window that the lab held the idle server for its own reading.
    paused: Duration,
}

impl Window {
    fn open(&mut self, probe: &mut Probe, root: u32) -> Result<()> {
        let (before, _) = settle(probe, root)?;
        self.opened = Some(Instant::now());
        self.peak = Some(Peak::at_start(root, &before));
        self.before = Some(before);
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

/// The largest proportional set size (PSS) of the server tree, read from /proc (see
/// [`tree::pss_kib`]): memory the tree really holds, a page shared by N of its processes counted
/// 1/N in each, so that a process per connection is not charged N times for the interpreter they
/// share.
///
/// Reading it is not free: the kernel walks every mapping of every process, so a sample of a tree
/// with a process per connection takes time in proportion to its processes (BENCHMARKS.md has the
/// figure). So it is read only while the load generator pauses with every connection open and the
/// server idle: once in a free-running run (`--pause-when-connected`; the pause is taken out of
/// the window's length), and in a `rounds_only` run before the window opens and after it closes.
/// Never while the server works: a sample would take CPU from it and from the generator.
#[derive(Default)]
struct Pss {
    peak_kib: u64,
}

impl Pss {
    /// Reads the tree's PSS; returns how long that took.
    fn sample(&mut self, root: u32) -> Duration {
        let start = Instant::now();
        self.peak_kib = self.peak_kib.max(tree::pss_kib(root));
        start.elapsed()
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
