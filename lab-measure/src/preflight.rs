//! What loading the probes needs from the machine, checked up front so that a missing piece is
//! one clear sentence instead of an `EPERM` from deep inside `bpf()`.

use std::{ffi::CString, fs, path::PathBuf};

use anyhow::Result;

use crate::bad_input;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Loading tracing programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN, which implies both).
pub fn check_privileges() -> Result<()> {
    let caps = procfs::process::Process::myself()?.status()?.capeff;
    let has = |cap: u32| caps & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    bad_input!(
        "loading the probes needs root or CAP_BPF+CAP_PERFMON: run it through `cargo xtask run`, \
         with sudo, or after `setcap cap_bpf,cap_perfmon,cap_dac_override+ep target/release/iolab`"
    )
}

/// Classic tracepoints are found through tracefs. A fresh machine may not have it mounted:
/// mount it (we are privileged by now) and say so.
pub fn ensure_tracefs() -> Result<PathBuf> {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if fs::metadata(format!("{dir}/events")).is_ok() {
            return Ok(dir.into());
        }
    }
    let target = "/sys/kernel/tracing";
    let (src, dst, fstype) = (c"nodev", CString::new(target)?, c"tracefs");
    // SAFETY: plain mount(2) with valid C strings.
    let rc = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bad_input!(
            "tracefs is not mounted and mounting it at {target} failed ({err}): mount it with `mount -t tracefs nodev {target}`"
        );
    }
    eprintln!("iolab: mounted tracefs at {target}");
    Ok(target.into())
}
