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
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use libc::{EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, epoll_event};

use crate::{
    Model,
    accept::{self, Accepted},
    protocol::{BUF_SIZE, Conn},
};

pub const MODEL: Model = Model {
    name: "epoll",
    summary: "one thread, level-triggered epoll, non-blocking sockets",
    serve,
    multiplexed: true,
};

/// The most events one epoll_wait returns; the rest wait for the next call.
const MAX_EVENTS: usize = 1024;

/// A connection and the events it is registered for.
struct Slot {
    conn: Conn,
    interest: u32,
}

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listen_fd = listener.as_raw_fd();
    // SAFETY: plain syscall; we own the returned fd.
    let epoll = unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
    let epfd = epoll.as_raw_fd();
    ctl(epfd, EPOLL_CTL_ADD, listen_fd, EPOLLIN as u32)?;

    let mut slots: Vec<Option<Slot>> = Vec::new(); // Indexed by fd.
    let mut events = vec![epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    let mut scratch = vec![0; BUF_SIZE];
    loop {
        // SAFETY: `events` holds MAX_EVENTS entries; -1: no timeout.
        let ready = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), MAX_EVENTS as i32, -1) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        for event in &events[..ready as usize] {
            let (fd, flags) = (event.u64 as RawFd, event.events);
            if fd == listen_fd {
                accept(epfd, listen_fd, &mut slots)?;
                continue;
            }
            let Some(slot) = slots[fd as usize].as_mut() else {
                continue;
            };
            let conn = &mut slot.conn;
            // EPOLLERR/EPOLLHUP: the connection was reset or is shut both ways; nothing to deliver.
            let failed = flags & (EPOLLERR | EPOLLHUP) as u32 != 0
                || conn.serve_ready(flags & EPOLLIN as u32 != 0, flags & EPOLLOUT as u32 != 0, &mut scratch).is_err();
            if failed || conn.is_finished() {
                slots[fd as usize] = None; // Dropping the Conn closes the socket.
                continue;
            }
            let interest = interest(conn);
            if interest != slot.interest {
                ctl(epfd, EPOLL_CTL_MOD, fd, interest)?;
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
fn accept(epfd: RawFd, listen_fd: RawFd, slots: &mut Vec<Option<Slot>>) -> io::Result<()> {
    let Accepted::Conn(fd) = accept::nonblocking(listen_fd)? else {
        return Ok(()); // level-triggered: a connection still waiting wakes us again
    };
    let conn = Conn::new(fd);
    let interest = interest(&conn);
    if let Err(e) = ctl(epfd, EPOLL_CTL_ADD, conn.fd(), interest) {
        // Out of kernel memory or epoll watches: this connection is closed (dropped), others go on.
        accept::back_off("epoll_ctl(ADD)", &e);
        return Ok(());
    }
    let slot = conn.fd() as usize;
    if slots.len() <= slot {
        slots.resize_with(slot + 1, || None);
    }
    slots[slot] = Some(Slot { conn, interest });
    Ok(())
}

/// `epoll_ctl`, with the fd itself as the event's data.
fn ctl(epfd: RawFd, op: i32, fd: RawFd, events: u32) -> io::Result<()> {
    let mut event = epoll_event { events, u64: fd as u64 };
    // SAFETY: plain syscall with a valid event.
    check(unsafe { libc::epoll_ctl(epfd, op, fd, &mut event) }).map(drop)
}

fn check(result: i32) -> io::Result<i32> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}
