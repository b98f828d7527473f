//! What every model does when `accept` (or starting a worker for a new connection) fails.
//!
//! Some failures belong to one connection — it was reset while waiting in the backlog
//! (`ECONNABORTED`), or a network error was pending on it — and the right response is to
//! accept the next one. Others mean the process is out of something: file descriptors
//! (`EMFILE`, `ENFILE`), kernel memory (`ENOBUFS`, `ENOMEM`), or, for `fork` and thread
//! creation, processes (`EAGAIN`). Retrying at once would spin, since the backlog still holds
//! the connection we could not take. So the server logs once, sleeps briefly, and retries; in an
//! event loop the sleep delays the other connections too, but they are still served. The sleep
//! shows up in the syscall profile only when this happens. Anything else (`EBADF`, `EINVAL`:
//! the listener itself is broken) is fatal.
//!
//! Production servers do similar things: nginx stops accepting for 500 ms; libuv and libev keep
//! a spare descriptor to close, accept with, and close again, so the client at least sees its
//! connection refused.

use std::{
    io,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

/// How long to back off when the process is out of descriptors, memory or processes.
pub const BACKOFF: Duration = Duration::from_millis(10);

static LOGGED: AtomicBool = AtomicBool::new(false);

/// When to call `accept` again after it failed.
pub enum Retry {
    /// Now: that one connection was lost, the next may be fine.
    Now,
    /// After serving the connections we have: we backed off because the process is out of
    /// descriptors or memory, and only closing connections frees them.
    Later,
}

/// Handles a failed `accept`: when to retry, or `Err` if the listener is unusable.
pub fn failed(err: io::Error) -> io::Result<Retry> {
    match err.raw_os_error() {
        // Errors of the one connection (see accept(2), "Error handling").
        Some(
            libc::ECONNABORTED
            | libc::EINTR
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH,
        ) => Ok(Retry::Now),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            back_off("accept", &err);
            Ok(Retry::Later)
        }
        _ => Err(err),
    }
}

/// Logs `what` failed (the first time only) and sleeps [`BACKOFF`].
pub fn back_off(what: &str, err: &io::Error) {
    if !LOGGED.swap(true, Ordering::Relaxed) {
        eprintln!("lab-server: {what} failed: {err}; backing off (logged once)");
    }
    thread::sleep(BACKOFF);
}

/// What one non-blocking `accept4` gave the event-loop models.
pub enum Accepted {
    /// A new connection, already non-blocking and close-on-exec.
    Conn(std::os::fd::OwnedFd),
    /// The backlog is empty (`EAGAIN`).
    Empty,
    /// The process is out of fds or memory and has backed off (see [`failed`]): try again after
    /// serving the connections we have.
    Later,
    /// That one connection was lost before we took it: the next may be fine, try again now.
    Again,
}

/// One `accept4(listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC)`, with its failures sorted out.
pub fn nonblocking(listen_fd: std::os::fd::RawFd) -> io::Result<Accepted> {
    use std::os::fd::FromRawFd as _;
    // SAFETY: plain syscall; we ask for no peer address.
    let fd = unsafe {
        libc::accept4(listen_fd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
    };
    if fd >= 0 {
        // SAFETY: accept4 just returned this fd; nothing else owns it.
        return Ok(Accepted::Conn(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }));
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        return Ok(Accepted::Empty);
    }
    Ok(match failed(err)? {
        Retry::Now => Accepted::Again,
        Retry::Later => Accepted::Later,
    })
}

/// Accepts until the backlog is empty, handing each connection to `take`; `take` returns
/// whether to go on. Returns `Ok(false)` once `accept4` said `EAGAIN`, `Ok(true)` if it stopped
/// before that — the process backed off, or `take` said stop — so connections may still wait.
///
/// Accepting only one connection per wait call would make a burst of N connections cost N wait
/// calls; with select and poll each of those costs O(N) too.
pub fn until_empty(
    listen_fd: std::os::fd::RawFd,
    mut take: impl FnMut(std::os::fd::OwnedFd) -> bool,
) -> io::Result<bool> {
    loop {
        match nonblocking(listen_fd)? {
            Accepted::Conn(fd) => {
                if !take(fd) {
                    return Ok(true);
                }
            }
            Accepted::Again => continue,
            Accepted::Empty => return Ok(false),
            Accepted::Later => return Ok(true),
        }
    }
}
