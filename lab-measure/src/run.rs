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
use lab_common::{Counters, MaxReady, SyscallTime};

use crate::{
    burst::{Burst, Holds},
    launch::LISTEN_FD,
    privileges,
    probe::{Delta, Probe, syscall_times_between},
    process::{self, Child, Spawn, Stderr, Stdout},
    profile::Profile,
    samples::{EpollLists, Peak, Pss, SAMPLE_EVERY},
    settle::{Idle, NotIdle, settle},
    tree,
};
use lab_load::{Cue, LoadReport, Workload};

/// What to run: a model or a command, and the workload.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The model, or the name of a `--server` command: what the results call it.
    pub name: String,
    /// A `--server`'s command line, with [`PORT`] where the port goes; `None` for a model.
    pub command: Option<Vec<String>>,
    pub workload: Workload,
    /// What the window counts.
    pub counted: Counted,
}

impl RunSpec {
    /// Model `name`, everything counted; the caller sets the workload.
    pub fn model(name: &str) -> RunSpec {
        RunSpec { name: name.to_owned(), command: None, workload: Workload::default(), counted: Counted::Everything }
    }

    /// The server started by `argv` (with [`PORT`] in it), called `name` in the results.
    pub fn command(name: &str, argv: Vec<String>) -> RunSpec {
        RunSpec { command: Some(argv), ..RunSpec::model(name) }
    }
}

/// What a run's window counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Everything, from the first connect to the last close.
    Everything,
    /// The message rounds only (lockstep): the load generator pauses once every connection is
    /// open and again once every message is answered, and the snapshots are taken in the pauses.
    Rounds,
    /// The rounds, each queued whole before the server may look: the server's tree is frozen
    /// while the generator sends a round and released once every byte is in its sockets, so one
    /// wait call can find every connection ready. Only the time from release to idle is counted,
    /// less what a hold costs by itself (see [`Burst`]).
    Bursts,
}

/// Step 1–2: a traced `iolab serve --model …` on a fresh loopback listener (or the spec's
/// command, see [`start_command`]), ready for clients.
pub fn start_model(probe: &mut Probe, spec: &RunSpec) -> Result<(Child, SocketAddr)> {
    if let Some(command) = &spec.command {
        return start_command(probe, &spec.name, command);
    }
    if lab_server::model(&spec.name).is_none() {
        bail!("unknown model {:?} (valid: {})", spec.name, lab_server::model_names().join(", "));
    }
    let (listener, addr) = bind_loopback()?;
    let mut server = serve_model(&spec.name, &listener).start_traced(probe)?;
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
    // Only to pick a free port, so std's bind: the server binds it as it likes.
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
    /// From the snapshot that opened the window to the one that closed it (a burst: the
    /// rounds' windows, release to idle, summed).
    pub window_seconds: f64,
    /// Set for [`Counted::Bursts`].
    pub burst: Option<Burst>,
    /// The most ready fds one wait call returned in the window, by wait kind.
    pub max_ready: MaxReady,
    /// Fds watched by each of the tree's epoll instances, largest first, when they watched the
    /// most (see [`tree::epoll_interest_lists`]).
    pub epoll_lists: Vec<u64>,
    /// With `--timing`: each syscall's calls, errors and on-CPU time in the window, by name (a
    /// burst's: from the first round's opening to the last one's close, holds included).
    pub syscall_times: Option<std::collections::BTreeMap<String, SyscallTime>>,
    /// With `--profile`: the tree's stacks in the window (a burst's: from the first round's
    /// opening to the last one's close, holds included).
    pub profile: Option<Profile>,
}

/// Steps 2–3 above for any traced server listening at `addr` whose tree is rooted at `root`
/// (a model, or any command under `iolab trace`). `alive` fails if the server died.
///
/// What the window holds is [`RunSpec::counted`]'s choice; the load generator cues each step
/// on its stdout (each a [`Cue`]) and waits for a line where the lab
/// must act first. When everything is counted it pauses once, with every connection open, for
/// the lab to read the tree's memory (see [`Pss`]).
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
        pss: Pss::default(),
        paused: Duration::ZERO,
        times: None,
        max_ready: None,
        profile: None,
    };
    let mut holds = match spec.counted {
        Counted::Bursts => Some(Holds::new(root, spec.workload.connections as u64)?),
        _ => None,
    };
    if spec.counted == Counted::Everything {
        window.open(probe, root)?; // before the generator starts: its first connect is counted
    }
    let pause = match spec.counted {
        Counted::Everything => "--pause-when-connected",
        Counted::Rounds | Counted::Bursts => "--pause-between-phases",
    };
    let mut generator =
        load_generator(addr, &spec.workload).arg(pause).args(holds.is_some().then_some("--burst")).start()?;
    let mut epoll_lists = EpollLists::default();
    let report = loop {
        if let Err(interrupted) = crate::interrupt::check() {
            return Err(interrupted.into());
        }
        // A cue, or the line that is not one: the report.
        let received = generator.lines()?.recv_timeout(SAMPLE_EVERY).map(|line| line.parse::<Cue>().map_err(|_| line));
        match received {
            Ok(Ok(Cue::Connected)) => {
                // Every connection is open: the tree's memory, read while the server is idle.
                let idle = settle(probe, root)?;
                window.pss.sample(root);
                if spec.counted == Counted::Everything {
                    // Inside the window: from the server's last syscall to the release it waited
                    // for the lab, which reads its epoll lists too while it holds it.
                    epoll_lists.sample(root);
                    window.paused += idle.since.elapsed();
                    generator.write_line("")?;
                    continue;
                }
                epoll_lists.sample(root); // idle, every connection accepted
                window.open(probe, root)?;
                if let Some(holds) = holds.as_mut() {
                    holds.measure_empty_hold(probe, root)?;
                }
                generator.write_line("")?; // go on to the next phase
            }
            Ok(Ok(Cue::Round)) => {
                holds.as_mut().context("the load generator paused for a burst nobody asked for")?.hold(probe, root)?;
                generator.write_line("")?;
            }
            Ok(Ok(Cue::Queued(bytes))) => {
                holds.as_mut().context("the load generator queued a burst nobody asked for")?.release(addr, bytes)?;
            }
            Ok(Ok(Cue::Sent)) => {
                window.after = Some(match holds.as_mut() {
                    Some(holds) => holds.close_round(probe, root)?,
                    None => settle(probe, root)?,
                });
                window.close_readings(probe)?;
                window.pss.sample(root); // every connection is still open; the window is closed
                generator.write_line("")?;
            }
            Ok(Err(line)) => break Some(line),
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
    let (Some(before), Some(peak)) = (window.before, window.peak.take()) else {
        bail!("the load generator never opened its connections");
    };
    let after = match window.after {
        Some(after) => after,
        None => {
            let after = settle(probe, root)?;
            window.close_readings(probe)?;
            after
        }
    };
    let syscall_times = window.times.and_then(|(before, after)| Some(syscall_times_between(&before, &after?)));
    let not_idle = after.not_idle;
    let max_ready = window.max_ready.unwrap_or_default();
    let (delta, window_seconds, burst) = match holds {
        Some(mut holds) => (holds.counted(), holds.seconds, Some(holds.figures)),
        None => {
            let seconds =
                window.opened.map_or(0.0, |opened| (after.since - opened).saturating_sub(window.paused).as_secs_f64());
            (Delta::between(&before, &after.counters), seconds, None)
        }
    };
    Ok(Measured {
        delta,
        load,
        peak_processes: peak.processes,
        peak_threads: peak.threads,
        peak_pss_kib: window.pss.peak_kib,
        not_idle,
        window_seconds,
        burst,
        epoll_lists: epoll_lists.largest,
        syscall_times,
        max_ready,
        profile: window.profile,
    })
}

/// The measurement window: the snapshot that opens it, the one that closes it, and the tree's
/// peak size and memory in between. It lasts from the first snapshot to the server's last syscall before
/// the second (the quiet time that shows it idle is not part of it).
struct Window {
    before: Option<Counters>,
    after: Option<Idle>,
    peak: Option<Peak>,
    /// When the first snapshot was taken.
    opened: Option<Instant>,
    pss: Pss,
    /// Time inside the window that the lab held the idle server for its own reading.
    paused: Duration,
    /// With `--timing`: the syscall times when the window opened, and when it closed.
    times: Option<(Vec<SyscallTime>, Option<Vec<SyscallTime>>)>,
    /// The most ready fds one wait call returned, read when the window closed (the probe's
    /// maxima are zeroed when it opens; closing the connections afterwards must not count).
    max_ready: Option<MaxReady>,
    /// With `--profile`: the stacks, read once when the window closed, the server still alive.
    profile: Option<Profile>,
}

impl Window {
    fn open(&mut self, probe: &mut Probe, root: u32) -> Result<()> {
        let before = settle(probe, root)?.counters;
        probe.reset_max_ready()?; // the server is idle: no wait call returns meanwhile
        probe.reset_profile()?;
        self.opened = Some(Instant::now());
        self.times = probe.syscall_times()?.map(|times| (times, None));
        self.peak = Some(Peak::at_start(root, &before));
        self.before = Some(before);
        Ok(())
    }

    /// Reads what the probe keeps apart from the counters, as the window closes: the maxima
    /// and, with `--timing`, the syscall times; with `--profile`, the stacks.
    fn close_readings(&mut self, probe: &mut Probe) -> Result<()> {
        self.max_ready = Some(probe.max_ready()?);
        self.profile = probe.profile()?;
        if let Some((_, after)) = self.times.as_mut() {
            *after = probe.syscall_times()?;
        }
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
        .args((w.ahead > 0).then(|| ["--ahead".to_owned(), w.ahead.to_string()]).into_iter().flatten())
        .args((w.think_us > 0).then(|| ["--think-us".to_owned(), w.think_us.to_string()]).into_iter().flatten())
        .named("the load generator")
        .stdin_pipe()
        .stdout(Stdout::Lines)
        .as_invoking_user()
}

/// A listener on a free loopback port, bound as every server of the lab is ([`lab_server::bind`]:
/// its backlog, and `SO_REUSEPORT` from the start, so a model may open more listeners on the same
/// address, as `epoll-reuseport` does), owned by the user the servers run as; and its address.
pub fn bind_loopback() -> Result<(OwnedFd, SocketAddr)> {
    let listener = privileges::as_invoking_user(|| lab_server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))?;
    let addr = listener.local_addr()?;
    Ok((listener.into(), addr))
}
