//! One measured run: a model under the probe, driven by the load generator.
//!
//! The order matters for honest numbers:
//! 1. bind the listener here, so the server is reachable the moment it starts;
//! 2. start the model traced (see `launch`) and wait until its counters stop moving: start-up
//!    (the dynamic loader, the runtime) is over and it is blocked waiting for clients;
//! 3. snapshot, run the load generator in a process of its own (never in the traced tree),
//!    wait until the server is quiet again (connection teardown counted), snapshot;
//! 4. kill and reap the server tree, which yields its CPU time and peak RSS.
//! Everything between the two snapshots is the cost of serving this load, nothing else.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    os::fd::OwnedFd,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use socket2::{Domain, Socket, Type};

use crate::{
    launch::{self, LISTEN_FD, Launch},
    load::LoadReport,
    probe::Probe,
    result::{Delta, RunResult},
};

/// What to run: a model and the workload.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub model: String,
    pub connections: usize,
    pub messages: usize,
    pub payload: usize,
    pub idle: usize,
}

/// How long the server must make no syscall to count as settled, and how long to wait at most.
const QUIET: Duration = Duration::from_millis(50);
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

pub fn run_model(probe: &mut Probe, spec: &RunSpec) -> Result<RunResult> {
    if lab_server::model(&spec.model).is_none() {
        bail!("unknown model {:?} (valid: {})", spec.model, lab_server::model_names().join(", "));
    }
    let listener = bind_loopback(spec.connections + spec.idle)?;
    let addr = TcpListener::from(listener.try_clone()?).local_addr()?;
    let args = ["serve", "--model", &spec.model, "--listen-fd", &LISTEN_FD.to_string()].map(String::from);
    let what = Launch { program: launch::iolab_exe(), args: args.to_vec(), listener: Some(&listener), stdin_pipe: false };
    let mut server = launch::launch(probe, what)?;
    drop(listener);
    server.wait_for_line("listening on")?;
    let before = launch::settle(probe, QUIET, SETTLE_LIMIT)?;

    let load = run_load_generator(addr, spec);
    server.check_alive().with_context(|| format!("model {}", spec.model))?;
    let load = load?;
    let after = launch::settle(probe, QUIET, SETTLE_LIMIT)?;
    let usage = server.stop()?;
    Ok(RunResult::new(&spec.model, &Delta::between(&before, &after), &load, usage))
}

/// A loopback listener with a backlog large enough for every connection to queue at once.
fn bind_loopback(connections: usize) -> Result<OwnedFd> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.listen(connections.clamp(128, 65_535) as i32)?;
    Ok(socket.into())
}

/// Runs `iolab load` as a separate process and reads its JSON report.
fn run_load_generator(addr: SocketAddr, spec: &RunSpec) -> Result<LoadReport> {
    let output = Command::new(launch::iolab_exe())
        .args(["load", "--addr", &addr.to_string(), "--format", "json"])
        .args(["-c", &spec.connections.to_string(), "-m", &spec.messages.to_string()])
        .args(["-b", &spec.payload.to_string(), "--idle", &spec.idle.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running the load generator")?;
    if !output.status.success() {
        bail!("the load generator failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the load generator's report")
}
