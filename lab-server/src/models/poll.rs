//! # poll — one thread, a poll(2) loop
//!
//! select with its worst limit removed (System V, 1986): instead of bitsets capped at 1024 fds,
//! we pass an array of `pollfd` — one entry per connection with the events we want
//! (`POLLIN`, `POLLOUT`) — and the kernel fills in each entry's `revents`. Like select it is
//! level-triggered: after one `recvfrom` and/or `sendto` per ready connection
//! ([`Conn::serve_ready`]), anything left over is reported again next time.
//!
//! **Where it blocks:** only in `poll`, with no timeout.
//!
//! **Syscalls per message:** `recvfrom` + `sendto` (non-blocking), plus a share of one `poll`
//! that returns many ready fds when many clients are active. Per connection: `accept4` and
//! `close`; when the listener is readable the loop accepts until `EAGAIN` (one extra `accept4` per
//! burst). Like select, each call costs time
//! in proportion to the number of connections, ready or not: the kernel copies in the whole
//! array and checks every socket, and we scan every `revents` afterwards.
//!
//! **In production** poll is fine for tens of fds (many clients and small daemons use it);
//! for thousands of connections, `epoll` keeps the interest list in the kernel.

use std::{io, net::TcpListener, os::fd::AsRawFd as _};

use libc::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, pollfd};

use crate::{
    Model, accept,
    protocol::{BUF_SIZE, Conn},
    sys::restart_on_eintr,
};

pub const MODEL: Model = Model {
    name: "poll",
    summary: "one thread, a poll(2) loop over an array of pollfd",
    serve,
    needs: None,
    probe: None,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listen_fd = listener.as_raw_fd();
    // `fds[0]` is the listener; `fds[i + 1]` belongs to `conns[i]`.
    let mut fds = vec![pollfd { fd: listen_fd, events: POLLIN, revents: 0 }];
    let mut conns: Vec<Conn> = Vec::new();
    let mut scratch = vec![0; BUF_SIZE];
    loop {
        for (entry, conn) in fds[1..].iter_mut().zip(&conns) {
            entry.events = if conn.wants_read() { POLLIN } else { 0 } | if conn.wants_write() { POLLOUT } else { 0 };
        }
        // SAFETY: `fds` is an array of `fds.len()` pollfds; no timeout.
        restart_on_eintr(|| unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } as isize)?;

        // Backwards, so swap_remove only moves entries we have already visited.
        for i in (0..conns.len()).rev() {
            let revents = fds[i + 1].revents;
            if revents == 0 {
                continue;
            }
            let conn = &mut conns[i];
            // POLLERR/POLLHUP: the connection was reset or is shut both ways; nothing to deliver.
            let failed = revents & (POLLERR | POLLHUP | POLLNVAL) != 0
                || conn.serve_ready(revents & POLLIN != 0, revents & POLLOUT != 0, &mut scratch).is_err();
            if failed || conn.is_finished() {
                conns.swap_remove(i); // Dropping the Conn closes the socket.
                fds.swap_remove(i + 1);
            }
        }
        if fds[0].revents & POLLIN != 0 {
            // Drain the backlog: one accept per poll would make a burst of N connections cost
            // N calls of O(N) each.
            accept::until_empty(listen_fd, |fd| {
                fds.push(pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 });
                conns.push(Conn::new(fd));
                true
            })?;
        }
    }
}
