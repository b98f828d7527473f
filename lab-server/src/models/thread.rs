//! # thread — one OS thread per connection
//!
//! The accepting thread blocks in `accept`; each connection gets a thread of its own that serves
//! it with blocking reads and writes and ends when the client is done. The code reads top to
//! bottom like a conversation, which is why this is the model everyone writes first.
//!
//! **Where it blocks:** the accepting thread in `accept4`; each connection's thread in `recvfrom`
//! (waiting for its client to send) or `sendto` (waiting for its client to read). No wait calls:
//! the kernel's scheduler multiplexes the threads, and every blocked thread is a sleeping task.
//!
//! **Syscalls per message:** one `recvfrom` + one `sendto`, both blocking. Per connection:
//! `accept4`, then creating the thread — `mmap` for its stack, `mprotect` for the guard page,
//! `clone3` between two `rt_sigprocmask` — and in the thread, std's setup (`sched_getaffinity`,
//! `gettid`, and an alternate signal stack for stack-overflow reports: `sigaltstack` with its own
//! `mmap`/`mprotect`). At the end: a `recvfrom` returning 0, `close`, and the thread's teardown
//! (`sigaltstack`, `munmap`, `rt_sigprocmask`, `madvise` to drop its stack pages, `exit`). The
//! first threads also make glibc create per-thread malloc arenas (a large `mmap` trimmed by
//! `munmap`s); after 8 per core they share them.
//!
//! **Cost:** a kernel task and a stack per connection, and a context switch every time a
//! different connection has something to do. Stacks are 64 KiB here so 10,000 threads fit
//! (std's default is 2 MiB of address space each). Production servers with blocking code use a
//! bounded pool of threads (classic Java servlet containers); for 10,000 mostly idle connections
//! they use an event loop per core instead (`epoll`, or tokio in `coroutine-mt`).

use std::{
    io,
    net::{TcpListener, TcpStream},
    thread,
};

use crate::{Model, accept, protocol};

pub const MODEL: Model = Model {
    name: "thread",
    summary: "a thread per connection, blocking read and write",
    serve,
    needs: None,
    probe: None,
};

/// Stack size of a connection's thread: room for its 16 KiB buffer and a few calls.
pub const STACK_SIZE: usize = 64 * 1024;

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept::failed(e)?;
                continue;
            }
        };
        // The thread is detached: nobody joins it; it ends with its connection.
        let spawned = thread::Builder::new().stack_size(STACK_SIZE).spawn(move || converse(stream));
        if let Err(e) = spawned {
            // The closure, and with it the connection, was dropped: the client sees it closed.
            accept::back_off("spawning a thread", &e);
        }
    }
}

fn converse(mut stream: TcpStream) {
    let mut buf = [0; protocol::BUF_SIZE];
    let _ = protocol::echo(&mut stream, &mut buf); // An error ends the connection, nothing more.
}
