//! # select — one thread, a select(2) loop
//!
//! The original readiness API (4.2BSD, 1983). One thread owns every connection. Each time round
//! the loop it builds two bitsets — bit *fd* set if we want to read from / write to fd — hands
//! them to `select`, and the kernel blocks until some of those fds are ready, then overwrites the
//! bitsets with only the ready ones. We scan them and do one `recvfrom` and/or `sendto` per ready
//! connection ([`Conn::serve_ready`]); anything left over is reported again next time
//! (select is level-triggered).
//!
//! glibc implements `select()` with the `pselect6` syscall, so that is the name in the profile.
//!
//! **Where it blocks:** only in `select` (`pselect6`), with no timeout.
//!
//! **Syscalls per message:** `recvfrom` + `sendto` (non-blocking), plus a share of one `select`
//! that returns many ready fds when many clients are active. Per connection: `accept4` and
//! `close`; when the listener is readable the loop accepts until `EAGAIN` (one extra `accept4` per
//! burst). Accepting only one connection per `select` would make a burst of N connections cost N
//! calls of O(N) each: 10,000 clients connecting at once took longer than their connect timeout. What the syscall count hides is the
//! size of each `select`: the kernel checks every fd below `nfds`, and we rebuild and rescan the
//! bitsets, so each call costs time proportional to the highest fd — 10,000 connections means
//! walking 10,000 bits per call to find the one that is ready.
//!
//! **Past 1024 fds:** `fd_set` is a fixed array of `FD_SETSIZE` = 1024 bits, and libc's
//! `FD_SET` macro writes outside it for larger fds (C's fortified builds abort, Rust's `libc`
//! panics). The kernel has no such limit: it reads `nfds` bits from wherever we point. So we keep
//! our own bitsets ([`FdBits`]), grown to the highest fd, in the kernel's layout (an array of
//! `unsigned long`), and pass them cast to `*mut fd_set`. We never use `FD_SET`.
//!
//! **In production** nobody uses select for many connections; `poll` lifts the fd limit and
//! `epoll` the linear cost.

use std::{
    io,
    net::TcpListener,
    os::fd::{AsRawFd as _, RawFd},
    ptr,
};

use crate::{
    Model, accept,
    conn_table::FdTable,
    protocol::{BUF_SIZE, Conn},
    sys::restart_on_eintr,
};

pub const MODEL: Model = Model {
    name: "select",
    summary: "one thread, a select(2) loop (fd bitsets sized to the highest fd, past 1024)",
    serve,
    needs: None,
    probe: None,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listen_fd = listener.as_raw_fd();
    let mut conns: FdTable<Conn> = FdTable::default();
    let mut scratch = vec![0; BUF_SIZE];
    let mut readable = FdBits::default();
    let mut writable = FdBits::default();
    loop {
        let nfds = conns.len().max(listen_fd as usize + 1);
        readable.clear(nfds);
        writable.clear(nfds);
        readable.insert(listen_fd);
        for conn in conns.values() {
            if conn.wants_read() {
                readable.insert(conn.fd());
            }
            if conn.wants_write() {
                writable.insert(conn.fd());
            }
        }
        // SAFETY: both bitsets hold at least `nfds` bits; no except set, no timeout. On EINTR
        // the kernel leaves them as they were, so the call can simply be made again.
        restart_on_eintr(|| unsafe {
            libc::select(nfds as i32, readable.as_ptr(), writable.as_ptr(), ptr::null_mut(), ptr::null_mut())
        } as isize)?;

        for fd in 0..conns.len() as RawFd {
            let (r, w) = (readable.contains(fd), writable.contains(fd));
            let Some(conn) = conns.get_mut(fd).filter(|_| r || w) else {
                continue;
            };
            // An error (reset, broken pipe) or a finished client: closing is all there is to do.
            if conn.serve_ready(r, w, &mut scratch).is_err() || conn.is_finished() {
                conns.remove(fd); // Dropping the Conn closes the socket.
            }
        }
        if readable.contains(listen_fd) {
            accept::until_empty(listen_fd, |fd| {
                conns.insert(fd.as_raw_fd(), Conn::new(fd));
                true
            })?;
        }
    }
}

/// A select(2) fd set of any size: bit `fd % 64` of word `fd / 64`, as the kernel reads it.
#[derive(Default)]
struct FdBits(Vec<libc::c_ulong>);

const BITS: usize = libc::c_ulong::BITS as usize;

impl FdBits {
    /// Empties the set and sizes it for fds below `nfds`.
    fn clear(&mut self, nfds: usize) {
        self.0.clear();
        self.0.resize(nfds.div_ceil(BITS), 0);
    }

    fn insert(&mut self, fd: RawFd) {
        let fd = fd as usize;
        self.0[fd / BITS] |= 1 << (fd % BITS);
    }

    fn contains(&self, fd: RawFd) -> bool {
        let fd = fd as usize;
        self.0.get(fd / BITS).is_some_and(|word| word & (1 << (fd % BITS)) != 0)
    }

    /// The set as select(2) takes it. The kernel reads and writes `nfds` bits from here.
    fn as_ptr(&mut self) -> *mut libc::fd_set {
        self.0.as_mut_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_bits_reach_past_fd_setsize() {
        let mut bits = FdBits::default();
        bits.clear(20_000);
        assert_eq!(bits.0.len(), 20_000 / 64 + 1);
        for fd in [0, 63, 64, 1023, 1024, 19_999] {
            bits.insert(fd);
        }
        let set: Vec<RawFd> = (0..20_000).filter(|&fd| bits.contains(fd)).collect();
        assert_eq!(set, [0, 63, 64, 1023, 1024, 19_999]);
        assert!(!bits.contains(20_000 + 64)); // Beyond the set is simply "not ready".
    }
}
