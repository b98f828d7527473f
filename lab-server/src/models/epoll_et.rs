//! # epoll-et — one thread, edge-triggered epoll
//!
//! The `epoll` model with `EPOLLET`: the kernel reports a socket when it *becomes* readable or
//! writable (an edge), not while it *is*. So each socket is registered once, for both directions,
//! and never modified — but a report means "something changed", and we must read until `recv`
//! says `EAGAIN` and write until `send` says `EAGAIN` (or we have nothing left to do), because no
//! second report comes for data already waiting. We remember per connection which direction
//! has not yet said `EAGAIN` since its last edge ([`Slot`]), and drive both until they do.
//!
//! **Where it blocks:** only in `epoll_wait`, with no timeout.
//!
//! **Syscalls per message:** `recvfrom` + `sendto` + one more `recvfrom` that returns `EAGAIN`
//! — the price of edge-triggering done by the book — plus a share of one `epoll_wait` that
//! returns many ready fds when many clients are active. Per connection: `accept4` and
//! `epoll_ctl(ADD)`, plus an `accept4` returning `EAGAIN` at the end of each burst of
//! connections, and at the end `close`. No `epoll_ctl(MOD)` ever. Back-pressure costs nothing
//! either: while [`MAX_UNSENT`](crate::protocol::MAX_UNSENT) bytes wait we simply stop reading, and
//! the `EPOLLOUT` edge that comes when the client reads tells us to go on.
//!
//! **In production** edge-triggered epoll is what mio (under tokio) and nginx use; they also
//! skip the extra read when a `recv` returned less than asked for — then the socket is empty —
//! which is why the `coroutine` model makes one `recvfrom` per message, not two.

use std::{
    io,
    net::TcpListener,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use libc::{EPOLL_CTL_ADD, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, epoll_event};

use crate::{
    Model,
    accept::{self, Accepted},
    protocol::{BUF_SIZE, Conn},
};

pub const MODEL: Model = Model {
    name: "epoll-et",
    summary: "one thread, edge-triggered epoll, reading and writing until EAGAIN",
    serve,
    multiplexed: true,
};

/// The most events one epoll_wait returns; the rest wait for the next call.
const MAX_EVENTS: usize = 1024;

/// A connection, and which directions may still go on without `EAGAIN`.
struct Slot {
    conn: Conn,
    readable: bool,
    writable: bool,
}

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listen_fd = listener.as_raw_fd();
    // SAFETY: plain syscall; we own the returned fd.
    let epoll = unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
    let epfd = epoll.as_raw_fd();
    ctl_add(epfd, listen_fd, (EPOLLIN | EPOLLET) as u32)?;

    let mut slots: Vec<Option<Slot>> = Vec::new(); // Indexed by fd.
    // Connections may be waiting in the backlog: set by the listener's edge, cleared by EAGAIN.
    let mut listener_ready = false;
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
                listener_ready = true;
                continue;
            }
            let Some(slot) = slots[fd as usize].as_mut() else {
                continue;
            };
            slot.readable |= flags & EPOLLIN as u32 != 0;
            slot.writable |= flags & EPOLLOUT as u32 != 0;
            // EPOLLERR/EPOLLHUP: the connection was reset or is shut both ways; nothing to deliver.
            let failed = flags & (EPOLLERR | EPOLLHUP) as u32 != 0 || drive(slot, &mut scratch).is_err();
            if failed || slot.conn.is_finished() {
                slots[fd as usize] = None; // Dropping the Conn closes the socket.
            }
        }
        // After serving, so that connections closed above have freed their fds.
        if listener_ready {
            listener_ready = accept_all(epfd, listen_fd, &mut slots)?;
        }
    }
}

/// Sends and receives until each direction says `EAGAIN` or has nothing to do.
fn drive(slot: &mut Slot, scratch: &mut [u8]) -> io::Result<()> {
    loop {
        if slot.writable && slot.conn.wants_write() {
            match slot.conn.flush() {
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => slot.writable = false,
                Err(e) => return Err(e),
            }
        }
        if slot.readable && slot.conn.wants_read() {
            match slot.conn.receive(scratch) {
                Ok(_) => continue, // 0 (the client is done) turns wants_read off.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => slot.readable = false,
                Err(e) => return Err(e),
            }
        }
        return Ok(()); // Both directions are blocked or have nothing to do: wait for an edge.
    }
}

/// `accept4` until the backlog is empty (`EAGAIN`: returns false) or we must back off (true:
/// try again after serving the connections we have).
fn accept_all(epfd: RawFd, listen_fd: RawFd, slots: &mut Vec<Option<Slot>>) -> io::Result<bool> {
    loop {
        let conn = match accept::nonblocking(listen_fd)? {
            Accepted::Conn(fd) => Conn::new(fd),
            Accepted::Again => continue,
            Accepted::Empty => return Ok(false),
            Accepted::Later => return Ok(true),
        };
        let fd = conn.fd();
        // Registered once for both directions; the first edges arrive with the first data.
        if let Err(e) = ctl_add(epfd, fd, (EPOLLIN | EPOLLOUT | EPOLLET) as u32) {
            // Out of kernel memory or epoll watches: this connection is closed (dropped).
            accept::back_off("epoll_ctl(ADD)", &e);
            return Ok(true);
        }
        let slot = fd as usize;
        if slots.len() <= slot {
            slots.resize_with(slot + 1, || None);
        }
        slots[slot] = Some(Slot { conn, readable: false, writable: false });
    }
}

/// `epoll_ctl(ADD)`, with the fd itself as the event's data.
fn ctl_add(epfd: RawFd, fd: RawFd, events: u32) -> io::Result<()> {
    let mut event = epoll_event { events, u64: fd as u64 };
    // SAFETY: plain syscall with a valid event.
    check(unsafe { libc::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &mut event) }).map(drop)
}

fn check(result: i32) -> io::Result<i32> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}
