//! Root only where root is needed.
//!
//! Loading and reading the probes needs CAP_BPF and CAP_PERFMON; nothing else the lab does
//! should run with them. When iolab is started through sudo, the servers, the load generator
//! and every file written belong to the user who ran sudo (`SUDO_UID`/`SUDO_GID`); iolab itself
//! keeps root only to load the probes and read their counters.

use std::{os::unix::process::CommandExt as _, path::Path, process::Command};

use anyhow::{Context as _, Result};

/// The user behind `sudo`, if we are root because of it: (uid, gid).
pub fn invoking_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |name: &str| std::env::var(name).ok()?.parse::<u32>().ok();
    match (id("SUDO_UID")?, id("SUDO_GID")?) {
        (0, _) => None,
        ids => Some(ids),
    }
}

/// Makes `cmd` run as the invoking user (no-op without sudo).
pub fn drop_for(cmd: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = invoking_user() {
        // std calls setgroups([]) first, then setgid, then setuid: no supplementary groups.
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Gives a file or folder we created to the invoking user (no-op without sudo).
pub fn give_away(path: &Path) -> Result<()> {
    if let Some((uid, gid)) = invoking_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("giving {} to uid {uid}", path.display()))?;
    }
    Ok(())
}

/// Runs `f` with the filesystem ids of the user behind sudo, on this thread only: what `f`
/// creates is theirs. A socket takes its owner from them (`sk_uid`), and the kernel lets a
/// process add a listener to a `SO_REUSEPORT` group only when every listener has the same
/// owner: the listener the lab hands a server it runs as that user must be theirs too.
pub fn as_invoking_user<T>(f: impl FnOnce() -> T) -> T {
    let Some((uid, gid)) = invoking_user() else { return f() };
    // SAFETY: setfsuid/setfsgid change this thread's filesystem ids and return the old ones.
    let (old_gid, old_uid) = unsafe { (libc::setfsgid(gid), libc::setfsuid(uid)) };
    let result = f();
    // SAFETY: as above, restoring what they were.
    unsafe {
        libc::setfsuid(old_uid as u32);
        libc::setfsgid(old_gid as u32);
    }
    result
}
