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

use std::{io, net::TcpListener, os::fd::AsRawFd as _};

use libc::{EPOLL_CTL_ADD, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT};

use crate::{
    Model, accept,
    conn_table::FdTable,
    protocol::{BUF_SIZE, Conn},
    sys::{Epoll, Events},
};

pub const MODEL: Model = Model {
    name: "epoll-et",
    summary: "one thread, edge-triggered epoll, reading and writing until EAGAIN",
    serve,
    needs: None,
    probe: None,
};

/// A connection, and which directions may still go on without `EAGAIN`.
struct Slot {
    conn: Conn,
    readable: bool,
    writable: bool,
}

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listen_fd = listener.as_raw_fd();
    let epoll = Epoll::new()?;
    epoll.ctl(EPOLL_CTL_ADD, listen_fd, (EPOLLIN | EPOLLET) as u32)?;

    let mut slots: FdTable<Slot> = FdTable::default();
    // Connections may be waiting in the backlog: set by the listener's edge, cleared by EAGAIN.
    let mut listener_ready = false;
    let mut events = Events::default();
    let mut scratch = vec![0; BUF_SIZE];
    loop {
        for (fd, flags) in epoll.wait(&mut events)? {
            if fd == listen_fd {
                listener_ready = true;
                continue;
            }
            let Some(slot) = slots.get_mut(fd) else {
                continue;
            };
            slot.readable |= flags & EPOLLIN as u32 != 0;
            slot.writable |= flags & EPOLLOUT as u32 != 0;
            // EPOLLERR/EPOLLHUP: the connection was reset or is shut both ways; nothing to deliver.
            let failed = flags & (EPOLLERR | EPOLLHUP) as u32 != 0 || drive(slot, &mut scratch).is_err();
            if failed || slot.conn.is_finished() {
                slots.remove(fd); // Dropping the Conn closes the socket.
            }
        }
        // After serving, so that connections closed above have freed their fds.
        if listener_ready {
            // Each registered once for both directions; the first edges arrive with the first
            // data. If registering fails (out of kernel memory or epoll watches) the connection
            // is closed (dropped), and we stop accepting until after the next wait.
            listener_ready = accept::until_empty(listen_fd, |fd| {
                let conn = Conn::new(fd);
                if let Err(e) = epoll.ctl(EPOLL_CTL_ADD, conn.fd(), (EPOLLIN | EPOLLOUT | EPOLLET) as u32) {
                    accept::back_off("epoll_ctl(ADD)", &e);
                    return false;
                }
                slots.insert(conn.fd(), Slot { conn, readable: false, writable: false });
                true
            })?;
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
