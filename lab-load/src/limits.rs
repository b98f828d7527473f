//! Making room for thousands of sockets before opening any.
//!
//! Every connection is a file descriptor, and the soft `RLIMIT_NOFILE` is often 1024. A process
//! may raise its soft limit up to the hard limit, so the generator does that first; if the
//! connections still won't fit, it stops with an error saying how many descriptors the run needs,
//! rather than failing half-way with some connections open.

use anyhow::{Result, bail};

/// Descriptors kept free for the runtime (epoll, eventfd), stdio and the like.
const SPARE: usize = 64;

/// Raises the soft descriptor limit to the hard one, then checks that `sockets` more fit.
pub fn make_room_for(sockets: usize) -> Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!("cannot read RLIMIT_NOFILE: {}", std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct. If it fails the old limit simply stays.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    let open = open_descriptors();
    let needed = sockets + open + SPARE;
    let soft = limit.rlim_cur;
    if soft != libc::RLIM_INFINITY && (needed as u64) > soft {
        bail!(
            "{sockets} connections need {needed} file descriptors ({open} already open, {SPARE} spare) \
             but the limit is {soft}; raise it with `ulimit -n {needed}` (root is needed above the \
             hard limit, {})",
            limit.rlim_max
        );
    }
    Ok(())
}

/// How many descriptors this process has open now.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|dir| dir.count()).unwrap_or(SPARE)
}
