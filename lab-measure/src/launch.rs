//! Starting iolab's own binary, and the gate: the half of a traced start that happens in the new
//! process, which waits there until the probe follows it.
//!
//! Processes themselves are started, signalled and reaped by [`crate::process`]; waiting for a
//! started server to settle is [`crate::settle`].

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context as _, Result, bail};

pub use crate::{
    process::{GATE_FD, LISTEN_FD, Usage},
    tree::parent_of,
};

static IOLAB_EXE: OnceLock<PathBuf> = OnceLock::new();

/// The iolab binary, which the lab runs for the gate, the models and the load generator.
/// `/proc/self/exe` unless set (the tests run as their own binary and name iolab's).
pub fn iolab_exe() -> &'static Path {
    IOLAB_EXE.get_or_init(|| PathBuf::from("/proc/self/exe"))
}

/// Names the iolab binary; for callers that are not iolab themselves (the integration tests).
pub fn set_iolab_exe(path: &Path) {
    let _ = IOLAB_EXE.set(path.to_owned());
}

/// The `iolab gate -- PROGRAM ARGV0 ARGS…` process: wait for the go byte on [`GATE_FD`], then
/// exec PROGRAM with that argv[0] (`iolab` for our own binary: see `process::Spawn::iolab`).
pub fn gate(argv: &[String]) -> Result<()> {
    use std::os::fd::FromRawFd as _;
    let [program, arg0, args @ ..] = argv else { bail!("gate: no program given") };
    // SAFETY: the launcher placed the pipe's read end at GATE_FD.
    let mut go = unsafe { fs::File::from_raw_fd(GATE_FD) };
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut go, &mut byte).context("gate: the lab went away")?;
    drop(go);
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: give the server the
    // default disposition it would have had if started from a shell.
    // SAFETY: plain signal(2).
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let err = Command::new(program).arg0(arg0).args(args).exec();
    bail!("cannot run {program}: {err}")
}
