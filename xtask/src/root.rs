//! Root privileges. iolab loads eBPF programs and attaches them to kernel tracepoints, which
//! needs root. Only the finished programs run as root: xtask and cargo stay with the user, so the
//! files in `target/` keep the user as owner. When the user is not root we go through `sudo`,
//! which resets the environment, so nothing from the user's shell leaks into the root process.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// How to run a program as root: `None` when we already are root, else the `sudo` to prefix.
/// Checked before building, so a missing sudo is reported at once, not after the build.
pub fn sudo() -> Result<Option<PathBuf>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(None);
    }
    let sudo = which::which("sudo").ok();
    let sudo = sudo.context("iolab needs root: run this as root, or install sudo")?;
    Ok(Some(sudo))
}
