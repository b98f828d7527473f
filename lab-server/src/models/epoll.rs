//! # epoll — one thread, level-triggered epoll
//!
//! Linux's answer (2.6, 2003) to select's and poll's cost per call. The interest list lives in
//! the kernel: `epoll_ctl` adds a socket once, and the kernel keeps a ready list that sockets
//! put themselves on when data arrives. `epoll_wait` then costs time in proportion to the
//! *ready* sockets, not to all of them. Level-triggered (the default) means a socket stays on the
//! ready list while it is readable (or writable, if we asked), so like select and poll we do one
//! `recvfrom` and/or `sendto` per ready connection ([`Conn::serve_ready`]) and let the next wait
//! report whatever is left. This is what Python's `selectors.DefaultSelector` uses on Linux.
//!
//! **Where it blocks:** only in `epoll_wait`, with no timeout.
//!
//! **Syscalls per message:** `recvfrom` + `sendto` (non-blocking), plus a share of one
//! `epoll_wait` that returns many ready fds when many clients are active. Per connection:
//! `accept4` (one per readiness of the listener) and `epoll_ctl(ADD)`, and at the end `close`
//! (closing removes the socket from the interest list). `epoll_ctl(MOD)` appears only when a
//! reply does not fit in the socket: we then ask for `EPOLLOUT` (and stop asking for `EPOLLIN`
//! while [`MAX_UNSENT`](crate::protocol::MAX_UNSENT) bytes wait), and drop it when they are sent.
//!
//! **In production** event loops (nginx, libuv, Redis's ae) are built on epoll, one loop per
//! core. Most register sockets edge-triggered to save the interest changes: see `epoll-et`.

use std::{
    io,
    net::TcpListener,
    os::fd::{AsRawFd as _, RawFd},
    sync::atomic::{AtomicU64, Ordering},
};

use libc::{EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT};

use crate::{
    Model,
    accept::{self, Accepted},
    conn_table::FdTable,
    protocol::{BUF_SIZE, Conn},
    sys::{Epoll, Events},
};

pub const MODEL: Model = Model {
    name: "epoll",
    summary: "one thread, level-triggered epoll, non-blocking sockets",
    serve,
    needs: None,
    probe: None,
};

/// A connection and the events it is registered for.
struct Slot {
    conn: Conn,
    interest: u32,
}

fn serve(listener: TcpListener) -> io::Result<()> {
    EventLoop::new(listener)?.run(&AtomicU64::new(0))
}

/// An epoll instance with a listener registered, ready to serve. Shared with `epoll-reuseport`,
/// which makes one per thread before any thread accepts: a thread that could not get its epoll fd
/// because another had accepted up to RLIMIT_NOFILE would drop its listener, and with it the
/// connections waiting there.
pub(super) struct EventLoop {
    listener: TcpListener,
    epoll: Epoll,
}

impl EventLoop {
    pub(super) fn new(listener: TcpListener) -> io::Result<EventLoop> {
        listener.set_nonblocking(true)?;
        let epoll = Epoll::new()?;
        epoll.ctl(EPOLL_CTL_ADD, listener.as_raw_fd(), EPOLLIN as u32)?;
        Ok(EventLoop { listener, epoll })
    }

    /// The loop, on the calling thread, counting accepted connections in `accepted`.
    pub(super) fn run(self, accepted: &AtomicU64) -> io::Result<()> {
        serve_loop(&self.listener, &self.epoll, accepted)
    }
}

fn serve_loop(listener: &TcpListener, epoll: &Epoll, accepted: &AtomicU64) -> io::Result<()> {
    let listen_fd = listener.as_raw_fd();
    let mut slots: FdTable<Slot> = FdTable::default();
    let mut events = Events::default();
    let mut scratch = vec![0; BUF_SIZE];
    loop {
        for (fd, flags) in epoll.wait(&mut events)? {
            if fd == listen_fd {
                accept(epoll, listen_fd, &mut slots, accepted)?;
                continue;
            }
            let Some(slot) = slots.get_mut(fd) else {
                continue;
            };
            let conn = &mut slot.conn;
            // EPOLLERR/EPOLLHUP: the connection was reset or is shut both ways; nothing to deliver.
            let failed = flags & (EPOLLERR | EPOLLHUP) as u32 != 0
                || conn.serve_ready(flags & EPOLLIN as u32 != 0, flags & EPOLLOUT as u32 != 0, &mut scratch).is_err();
            if failed || conn.is_finished() {
                slots.remove(fd); // Dropping the Conn closes the socket.
                continue;
            }
            let interest = interest(conn);
            if interest != slot.interest {
                epoll.ctl(EPOLL_CTL_MOD, fd, interest)?;
                slot.interest = interest;
            }
        }
    }
}

/// The events a connection should be woken for now.
fn interest(conn: &Conn) -> u32 {
    (if conn.wants_read() { EPOLLIN as u32 } else { 0 }) | if conn.wants_write() { EPOLLOUT as u32 } else { 0 }
}

/// One `accept4` and one `epoll_ctl(ADD)`.
fn accept(epoll: &Epoll, listen_fd: RawFd, slots: &mut FdTable<Slot>, accepted: &AtomicU64) -> io::Result<()> {
    let Accepted::Conn(fd) = accept::nonblocking(listen_fd)? else {
        return Ok(()); // level-triggered: a connection still waiting wakes us again
    };
    let conn = Conn::new(fd);
    let interest = interest(&conn);
    if let Err(e) = epoll.ctl(EPOLL_CTL_ADD, conn.fd(), interest) {
        // Out of kernel memory or epoll watches: this connection is closed (dropped), others go on.
        accept::back_off("epoll_ctl(ADD)", &e);
        return Ok(());
    }
    slots.insert(conn.fd(), Slot { conn, interest });
    accepted.fetch_add(1, Ordering::Relaxed); // Memory only: no syscall.
    Ok(())
}
