//! # process — one process per connection
//!
//! The oldest design (inetd, the servers in Stevens' *Unix Network Programming*): the parent
//! blocks in `accept`; for each connection it `fork`s a child, closes its own copy of the
//! connection, and goes back to `accept`. The child closes its copy of the listener, serves its
//! one connection with blocking reads and writes, and exits when the client is done.
//!
//! **Where it blocks:** the parent in `accept4`; each child in `recvfrom` (waiting for its client
//! to send) or `sendto` (waiting for its client to read). There are no wait calls: the kernel's
//! scheduler is the multiplexer, and a blocked process costs the others nothing.
//!
//! **Syscalls per message**, in the child: one `recvfrom` + one `sendto`. Per connection: in the
//! parent `accept4`, `clone` (that is `fork`) and `close`; in the child `set_robust_list`
//! (glibc's fork), `close` (the listener), a final `recvfrom` returning 0, and `exit_group`.
//!
//! **Reaping:** an exited child stays a zombie until its parent waits for it. We reap the way
//! Stevens does: a `SIGCHLD` handler calls `waitpid(-1, WNOHANG)` until no exited child is left
//! (usually two `wait4`: one reaps, one finds nothing) and returns through `rt_sigreturn`. The
//! signal interrupts the parent's blocked `accept4`, which `SA_RESTART` restarts — so a second
//! `accept4` per connection is part of the cost too. The cheaper-looking alternatives were
//! rejected: ignoring `SIGCHLD` makes the kernel reap with no syscalls, but then the children's
//! CPU time and memory never reach the parent's rusage, so the server tree would look cheaper than
//! it is; calling `waitpid` after each `accept` leaves zombies whenever no new client arrives.
//!
//! The handler reaps *every* child of the process, so this model needs a process of its own
//! (as the lab gives it): in a process that runs other children, it would steal their exits.
//!
//! **Cost:** a fork (page tables copied, copy-on-write faults after) and a whole process per
//! connection. Production servers that use processes keep a pre-forked pool (Apache prefork,
//! PostgreSQL's connection poolers) or, for 10,000 connections, stop using them: see `epoll`.

use std::{
    io, mem,
    net::{TcpListener, TcpStream},
    os::fd::{AsRawFd as _, RawFd},
    ptr,
};

use crate::{Model, accept, protocol};

pub const MODEL: Model = Model {
    name: "process",
    summary: "a process per connection (fork after accept), blocking read and write",
    serve,
    needs: None,
    probe: None,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    reap_children_on_sigchld()?;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept::failed(e)?;
                continue;
            }
        };
        // SAFETY: the server process is single-threaded (the lab execs it for this model), so
        // the child is a complete copy; it only makes syscalls and never returns from `child`.
        match unsafe { libc::fork() } {
            -1 => accept::back_off("fork", &io::Error::last_os_error()), // `stream` is closed below.
            0 => child(listener.as_raw_fd(), stream),
            _ => {} // The parent: the child owns the connection now.
        }
        drop(stream); // close(2) our copy, or the client would never see the connection end.
    }
}

/// Serves one connection and exits. Nothing here allocates: the buffer is on the stack, and
/// std's socket errors are plain error numbers.
fn child(listener: RawFd, mut stream: TcpStream) -> ! {
    // SAFETY: the listener is ours to close in this process; the parent keeps its copy.
    unsafe { libc::close(listener) };
    let mut buf = [0; protocol::BUF_SIZE];
    let _ = protocol::echo(&mut stream, &mut buf); // An error ends the connection, nothing more.
    // _exit, not exit: no atexit handlers or stdio flushing inherited from the parent.
    // The kernel closes the connection as the process exits.
    unsafe { libc::_exit(0) }
}

/// Installs the SIGCHLD handler that reaps exited children.
fn reap_children_on_sigchld() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; we fill in the handler, an empty mask and flags.
    unsafe {
        let mut action: libc::sigaction = mem::zeroed();
        action.sa_sigaction = reap_children as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGCHLD, &action, ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reaps every exited child. Signals coalesce (two exits may deliver one SIGCHLD), hence the loop.
extern "C" fn reap_children(_signal: libc::c_int) {
    // SAFETY: waitpid is async-signal-safe; errno is saved and restored so the interrupted code
    // never sees waitpid's.
    unsafe {
        let errno = *libc::__errno_location();
        while libc::waitpid(-1, ptr::null_mut(), libc::WNOHANG) > 0 {}
        *libc::__errno_location() = errno;
    }
}
