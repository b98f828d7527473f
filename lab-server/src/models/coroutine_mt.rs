//! # coroutine-mt — one task per connection on tokio's multi-thread runtime
//!
//! The `coroutine` model's code, run by tokio's work-stealing scheduler: one worker thread per
//! core, each with its own queue of tasks, stealing from the others when idle. This is how
//! production Rust servers run, and the contrast with `coroutine` is the cost of sharing work
//! between threads.
//!
//! The accept loop runs on the main thread (`block_on`, as under `#[tokio::main]`); the
//! connections' tasks run on the workers.
//!
//! **Where it blocks:** one thread at a time waits in `epoll_wait` for the IO driver; the
//! others park on a futex (`futex` wait) until there is work.
//!
//! **Syscalls per message:** as in `coroutine`, `recvfrom` + `sendto` plus a share of an
//! `epoll_wait` — and on top, the cost of handing work between threads. When the thread in
//! `epoll_wait` finds a ready socket, it wakes a parked worker to run the task (`futex` wake, and
//! the worker's `futex` wait returning); when a worker must wake the thread that sits in
//! `epoll_wait`, it writes to the driver's `eventfd`. With little load these wakeups can
//! outnumber the reads and writes, and the task of one connection may run on either worker.
//!
//! **In production** this is the default tokio setup (`#[tokio::main]`); servers that want the
//! `coroutine` profile run one current-thread runtime per core with `SO_REUSEPORT` instead.

use std::{io, net::TcpListener};

use tokio::runtime::Builder;

use crate::Model;

pub const MODEL: Model = Model {
    name: "coroutine-mt",
    summary: "a tokio task per connection on the multi-thread runtime (a worker per core)",
    serve,
    needs: None,
    probe: None,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    // Only the IO driver: with no timer driver, epoll_wait never has a timeout.
    let runtime = Builder::new_multi_thread().enable_io().build()?;
    super::coroutine::run(runtime, listener)
}
