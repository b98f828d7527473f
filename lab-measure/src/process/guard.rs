//! The guard of a server's process group (see the parent module, "Nothing left behind"):
//! `iolab guard PGID`, a sibling of the server that kills its group when iolab dies.

use std::{
    fs,
    io::Read as _,
    os::{fd::FromRawFd as _, unix::process::CommandExt as _},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use super::{Child, GUARD_FD, spawn_command};
use crate::launch;

/// `iolab guard PGID` for the group `pgid`, its stdin a pipe from us (see the module comment):
/// in a group of its own, with no death signal (it must outlive iolab to do its work), and root
/// (to kill any group of ours, a tool's included).
pub(super) fn start_guard(pgid: u32) -> Result<Child> {
    let mut command = Command::new(launch::iolab_exe());
    command.arg0("iolab").args(["guard".to_owned(), pgid.to_string()]);
    command.stdin(Stdio::piped()).stdout(Stdio::null()).process_group(0);
    let mut std_child = spawn_command(command).context("starting the guard")?;
    let pid = std_child.id();
    Ok(Child {
        pid,
        what: "the guard".into(),
        stdin: std_child.stdin.take(),
        lines: None,
        tail: None,
        own_group: false,
        exit: None,
        guard: None,
    })
}

/// The `iolab guard PGID` process: blocks on stdin; one byte from iolab means the group is gone
/// and nothing needs doing, end of file means iolab died: kill the group.
pub fn guard(pgid: i32) -> Result<()> {
    if pgid <= 1 {
        bail!("guard: no process group given");
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: plain signal(2): only iolab's pipe decides when the guard ends.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    // SAFETY: the guard's stdin is the pipe iolab holds the other end of.
    let mut pipe = unsafe { fs::File::from_raw_fd(GUARD_FD) };
    let mut byte = [0u8; 1];
    loop {
        match pipe.read(&mut byte) {
            Ok(1) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
    // SAFETY: plain kill(2) on the group iolab named.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    Ok(())
}
