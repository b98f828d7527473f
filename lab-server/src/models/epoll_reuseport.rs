//! # epoll-reuseport — a level-triggered epoll loop per CPU, each with its own listener
//!
//! nginx's design since 1.9.1 (`listen ... reuseport`): one worker per core, each with its own
//! listening socket on the same address (`SO_REUSEPORT`, Linux 3.9) and its own event loop —
//! here the `epoll` model's loop, unchanged, on a thread per CPU
//! (`std::thread::available_parallelism`). The kernel spreads incoming connections over the
//! listeners by a hash of the connection's addresses and ports, so each thread accepts and serves
//! its own share, and no two threads ever wait on, or wake up for, the same socket. One shared
//! listener in several epoll sets would instead wake the waiters in turn or all at once, and
//! concentrate the connections on whichever thread waits most often (Cloudflare, "Why does one
//! NGINX worker take all the load?", 2017).
//!
//! **The listeners.** The lab hands a model one listening socket; we turn `SO_REUSEPORT` on for
//! it, then open one more per other thread with `SO_REUSEADDR` and `SO_REUSEPORT`, bind it to the
//! same address and listen, and the kernel makes them a group. The kernel checks the options when
//! a socket binds, against every socket on the port — the listener, and the connections it took,
//! which inherit its options at the time. A connection that arrived before the first listener had
//! `SO_REUSEPORT` lacks it, and would hold the port against a socket with `SO_REUSEPORT` only;
//! `SO_REUSEADDR` on both sides lets the new socket past it (a listener only conflicts with a
//! listener). So the model works whether or not the listener was bound with `SO_REUSEPORT`, as
//! long as it was bound with `SO_REUSEADDR` (the lab's and `lab_server::bind`'s are) or had no
//! connection yet. The kernel also wants every listener of a group to belong to one user: a server
//! running as another user than the listener's creator cannot join it, and fails saying so.
//! Connections queued on the first listener before the others existed are served by thread 0.
//!
//! **Where it blocks:** each thread in its own `epoll_wait`, no timeout.
//!
//! **Syscalls per message:** as in `epoll` — `recvfrom` + `sendto` and a share of an
//! `epoll_wait` — in whichever thread owns the connection. Per connection: `accept4` and
//! `epoll_ctl(ADD)` in that thread, `close` at the end. At start: `setsockopt`, and per extra
//! thread `socket`, two `setsockopt`, `bind`, `listen` and the thread's creation.
//!
//! **How the kernel spread the connections:** each thread counts what it accepted
//! ([`accepted_per_thread`], read by the tests); the lab sees the same split from outside, in
//! each thread's epoll interest list (`epoll_lists` in its results, from the epoll fds' fdinfo).
//!
//! **In production** nginx (`reuseport`), HAProxy (`nbthread`, a listener per thread), Envoy
//! and most per-core Rust servers (one current-thread runtime per core) work this way.

use std::{
    io,
    net::{SocketAddr, TcpListener},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread,
};

use super::epoll::EventLoop;
use crate::{
    BACKLOG, Model,
    sys::{self, check},
};

pub const MODEL: Model = Model {
    name: "epoll-reuseport",
    summary: "a level-triggered epoll loop per CPU, each on its own SO_REUSEPORT listener (nginx)",
    serve,
    needs: None,
    probe: None,
};

/// Connections accepted by each thread of each server in this process, by listening address.
/// (The lab kills its servers, so only code in the server's process reads them: the tests.)
static ACCEPTED: Mutex<Vec<(SocketAddr, Vec<&'static AtomicU64>)>> = Mutex::new(Vec::new());

/// How many connections each thread of the `epoll-reuseport` server listening on `addr` in this
/// process has accepted so far, the first listener's thread first.
pub fn accepted_per_thread(addr: SocketAddr) -> Option<Vec<u64>> {
    let servers = ACCEPTED.lock().unwrap_or_else(|e| e.into_inner());
    let (_, counts) = servers.iter().rev().find(|(a, _)| *a == addr)?;
    Some(counts.iter().map(|n| n.load(Ordering::Relaxed)).collect())
}

fn serve(listener: TcpListener) -> io::Result<()> {
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    let addr = listener.local_addr()?;
    // Already on if whoever bound the listener set it (lab_server::bind does); see the module doc.
    sys::set_option(listener.as_raw_fd(), libc::SO_REUSEPORT)?;
    let mut listeners = vec![listener];
    for _ in 1..threads {
        listeners.push(listen_again(addr)?);
    }
    // A counter per thread, leaked: they live as long as the server, which is the process.
    let counters: Vec<&'static AtomicU64> = listeners.iter().map(|_| &*Box::leak(Box::default())).collect();
    ACCEPTED.lock().unwrap_or_else(|e| e.into_inner()).push((addr, counters.clone()));
    // Every loop's epoll instance before any loop accepts (see `EventLoop`).
    let loops = listeners.into_iter().map(EventLoop::new).collect::<io::Result<Vec<_>>>()?;
    let mut workers = loops.into_iter().zip(counters).map(|(event_loop, accepted)| move || event_loop.run(accepted));
    let first = workers.next().expect("at least one listener");
    let others: Vec<_> = workers.map(thread::spawn).collect();
    let result = first(); // Returns only on a fatal error; so do the others.
    drop(others);
    result
}

/// One more listening socket on `addr`, in the same `SO_REUSEPORT` group.
fn listen_again(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall; we own the returned fd.
    let socket =
        unsafe { OwnedFd::from_raw_fd(check(libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0))?) };
    // SO_REUSEADDR too: connections the first listener took before it had SO_REUSEPORT lack it,
    // and hold the port against a socket that has only SO_REUSEPORT; against one with
    // SO_REUSEADDR as well, only the listener they came from counts (they inherit its options).
    sys::set_option(socket.as_raw_fd(), libc::SO_REUSEADDR)?;
    sys::set_option(socket.as_raw_fd(), libc::SO_REUSEPORT)?;
    sys::bind(socket.as_raw_fd(), addr).map_err(|e| {
        let why = "does the first have SO_REUSEADDR or SO_REUSEPORT, and the same owner?";
        io::Error::new(e.kind(), format!("binding another listener to {addr} ({why}): {e}"))
    })?;
    // SAFETY: plain syscall on a socket we own.
    check(unsafe { libc::listen(socket.as_raw_fd(), BACKLOG) })?;
    Ok(TcpListener::from(socket))
}
