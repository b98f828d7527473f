//! # coroutine — one task per connection on one thread (the gevent model)
//!
//! The code is the thread model's: accept, then per connection a loop of read, uppercase,
//! write. But each connection is a tokio *task* — a coroutine, a state machine the runtime
//! resumes — not a thread, and all of them run on one thread. Python's gevent does the same with
//! greenlets, Go with goroutines. When a task's read would block, the task yields to the runtime
//! instead of the thread sleeping in the kernel.
//!
//! Its syscall profile shows what coroutines run on underneath: an event loop. Every socket is
//! non-blocking and registered with epoll (edge-triggered, `EPOLLET`); when no task can run, the
//! runtime sleeps in `epoll_wait` and resumes the tasks whose sockets became ready.
//!
//! **Where it blocks:** only in `epoll_wait` (no timeout: this runtime has no timers).
//!
//! **Syscalls per message:** `recvfrom` + `sendto` (non-blocking), plus a share of an
//! `epoll_wait` that returns many ready sockets when many clients are active. Tokio knows a read
//! that returned less than it asked for has emptied the socket, so unlike the `epoll-et` model
//! it does not read again just to see `EAGAIN`. Per connection: `accept4` (and one that finds
//! the backlog empty, `EAGAIN`, before the listener task yields), `epoll_ctl(ADD)`, and at the end
//! `epoll_ctl(DEL)` and `close`.
//!
//! **In production** this is the mainstream design (tokio, Go, gevent, Node.js), usually with
//! one such loop per core: see `coroutine-mt`.

use std::{io, net::TcpListener};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    runtime::{Builder, Runtime},
};

use crate::{Model, accept, protocol};

pub const MODEL: Model = Model {
    name: "coroutine",
    summary: "a tokio task per connection on one thread (the gevent model)",
    serve,
    needs: None,
    probe: None,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    // Only the IO driver: with no timer driver, the runtime's epoll_wait never has a timeout.
    let runtime = Builder::new_current_thread().enable_io().build()?;
    run(runtime, listener)
}

/// Accepts on `runtime` forever, one task per connection. Shared with `coroutine-mt`.
pub(super) fn run(runtime: Runtime, listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => drop(tokio::spawn(converse(stream))),
                Err(e) => {
                    // Backing off blocks this thread briefly (see the `accept` module); then
                    // let the connections' tasks run, so closing ones can free their fds.
                    accept::failed(e)?;
                    tokio::task::yield_now().await;
                }
            }
        }
    })
}

async fn converse(mut stream: TcpStream) {
    let mut buf = [0; protocol::BUF_SIZE];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return, // Done, or an error ends the connection, nothing more.
            Ok(n) => n,
        };
        protocol::uppercase_in_place(&mut buf[..n]);
        // While the client does not read, this waits, and the task reads nothing more.
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
