//! # io-uring — one thread, many operations per syscall
//!
//! Every other model asks the kernel "which sockets are ready?" and then does each read and
//! write itself, one syscall each. io_uring (Linux 5.1, 2019) turns that around: we hand the
//! kernel the operations themselves — "receive into this buffer", "send these bytes", "accept",
//! "close" — as entries in a submission queue shared with it, and it puts a completion entry in a
//! second shared queue when each is done. One `io_uring_enter` submits everything queued since the
//! last one and waits for at least one completion. This is the one model where "many IOs in one
//! syscall" is literally true.
//!
//! The loop: submit and wait; for each completion, queue the next operation for that connection.
//! Each connection has exactly one operation in flight — a receive, or a send of what that
//! receive brought (again if the kernel took only part) — so its buffer is never in use twice,
//! and a client that stops reading stops its own receives: back-pressure by construction. One
//! multishot accept yields every new connection, each as a completion of its own, until it
//! stops (for example on `EMFILE`) and we re-arm it.
//!
//! **Where it blocks:** only in `io_uring_enter` (waiting for one completion, no timeout).
//!
//! **Syscalls per message:** a share of one `io_uring_enter`; no `recvfrom`, `sendto`,
//! `accept4` or `close` at all — those happen inside the kernel, as IORING_OP_RECV, _SEND,
//! _ACCEPT and _CLOSE. With one busy client that share is two calls per message (one submits the
//! send and returns its completion at once, the next submits the receive and waits); with many,
//! one call carries the sends and receives of every connection that completed meanwhile. SQPOLL,
//! where a kernel thread polls the submission queue so that even `io_uring_enter` disappears, is
//! the `io-uring-sqpoll` model: this loop on such a ring.
//!
//! **In production** (e.g. tokio-uring, glommio, TigerBeetle) servers also register a pool of
//! buffers with the ring (provided buffer rings) instead of parking one buffer per idle
//! connection as this model does (16 KiB each), and use multishot receives: see
//! `io-uring-multishot`.

use std::{
    io,
    net::{TcpListener, TcpStream},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    ptr,
};

use ::io_uring::{
    CompletionQueue, IoUring, SubmissionQueue, Submitter, cqueue, opcode, squeue,
    types::{DestinationSlot, Fd, Fixed},
};

use crate::{
    Model, accept,
    conn_table::FdTable,
    protocol::{BUF_SIZE, uppercase_in_place},
};

pub const MODEL: Model = Model {
    name: "io-uring",
    summary: "one thread, io_uring: many receives and sends per io_uring_enter",
    serve,
    needs: Some("io_uring (5.1) with multishot accept (5.19)"),
    probe: Some(probe),
};

/// Submission queue size: how many operations we can queue before handing them over.
pub(super) const SQ_ENTRIES: u32 = 4096;
/// Completion queue size: above the operations in flight (one per connection, plus closes) for
/// the lab's 10,000 connections, so it does not overflow. (If it did, the kernel would keep the
/// extra completions until there is room: IORING_FEAT_NODROP.)
pub(super) const CQ_ENTRIES: u32 = 32768;

/// `user_data` of the multishot accept's completions. Connections use their fd.
const ACCEPT: u64 = u64::MAX;
/// `user_data` of closes: their completion needs nothing done.
const CLOSED: u64 = u64::MAX - 1;

/// One connection: its buffer, and the reply in it still being sent (`sent..len`).
/// `len == 0` means a receive is in flight instead.
struct Conn {
    buf: Box<[u8]>,
    sent: usize,
    len: usize,
}

fn ring() -> io::Result<IoUring> {
    IoUring::builder().setup_cqsize(CQ_ENTRIES).build(SQ_ENTRIES)
}

/// Sets up the model's ring and has a multishot accept take one connection on a loopback
/// listener: a kernel without multishot accept refuses it (`EINVAL`), one without io_uring the
/// ring.
fn probe() -> io::Result<()> {
    let context = |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let mut ring = ring().map_err(context("setting up io_uring"))?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let (submitter, mut sq, mut cq) = ring.split();
    let accept = opcode::AcceptMulti::new(Fd(listener.as_raw_fd())).flags(libc::SOCK_CLOEXEC).build();
    push(&submitter, &mut sq, accept.user_data(ACCEPT))?;
    // Waits in the backlog for the accept submitted next.
    let _client = TcpStream::connect(listener.local_addr()?)?;
    sq.sync();
    submitter.submit_and_wait(1).map_err(context("a multishot accept"))?;
    cq.sync();
    let cqe = cq.next().ok_or_else(|| io::Error::other("a multishot accept: no completion"))?;
    if cqe.result() < 0 {
        return Err(context("a multishot accept")(io::Error::from_raw_os_error(-cqe.result())));
    }
    // SAFETY: the accepted connection's fd, ours alone.
    drop(unsafe { OwnedFd::from_raw_fd(cqe.result()) });
    Ok(()) // Dropping the ring cancels the accept.
}

fn serve(listener: TcpListener) -> io::Result<()> {
    run(listener, ring()?, Files::Process, |submitter, _| submitter.submit_and_wait(1).map(drop))
}

/// Where accepted connections go.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Files {
    /// The process's fd table, as `accept4` would put them; one multishot accept takes them all.
    Process,
    /// The ring's registered files (direct descriptors, 5.19), `slots` of them: no fd in the
    /// process, and no lookup of the fd in the kernel per operation; operations name a slot. The
    /// kernel takes a connection off the backlog *before* it looks for a free slot, and closes it
    /// if there is none (the client sees a reset), so we accept one at a time, and only while a
    /// slot is free: the others wait in the backlog, as when a process runs out of fds.
    Registered { slots: usize },
}

/// Hands the kernel what is queued and returns once completions are waiting (or a signal came).
pub(super) type Wait = fn(&Submitter<'_>, &mut CompletionQueue<'_>) -> io::Result<()>;

/// The model's loop on `ring`; `io-uring-sqpoll` runs it too, on its own ring, files and wait.
pub(super) fn run(listener: TcpListener, mut ring: IoUring, files: Files, wait: Wait) -> io::Result<()> {
    // io_uring waits for readiness itself; a blocking listener keeps it from handing us EAGAIN.
    listener.set_nonblocking(false)?;
    let listen_fd = listener.as_raw_fd();
    let (submitter, mut sq, mut cq) = ring.split();
    let mut conns: FdTable<Conn> = FdTable::default(); // By fd, or by registered slot.
    let ops = Ops(files);
    // Whether an accept is in flight, and how many connections are open.
    let (mut accepting, mut open) = (false, 0);

    loop {
        if !accepting && ops.room_for(open) {
            push(&submitter, &mut sq, ops.accept(listen_fd))?;
            accepting = true;
        }
        sq.sync(); // Publish what we queued.
        match wait(&submitter, &mut cq) {
            Ok(()) => {}
            // EBUSY: completions are waiting for room in the queue; making room is next anyway.
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => return Err(e),
        }
        cq.sync(); // See what the kernel completed.
        for cqe in &mut cq {
            let (key, result) = (cqe.user_data(), cqe.result());
            match key {
                CLOSED => {}
                ACCEPT => {
                    if result >= 0 {
                        let fd = result;
                        open += 1;
                        let conn = conns.insert(fd, Conn { buf: vec![0; BUF_SIZE].into(), sent: 0, len: 0 });
                        push(&submitter, &mut sq, ops.receive(fd, conn))?;
                    } else {
                        accept::failed(io::Error::from_raw_os_error(-result))?;
                    }
                    // The accept ended (a multishot one after an error): armed again above.
                    accepting &= cqueue::more(cqe.flags());
                }
                fd => {
                    let fd = fd as i32;
                    let Some(conn) = conns.get_mut(fd) else { continue };
                    let next = if conn.len == 0 {
                        // A receive completed: 0 is the client's end of data, negative an error.
                        if result <= 0 {
                            None
                        } else {
                            conn.len = result as usize;
                            uppercase_in_place(&mut conn.buf[..conn.len]);
                            Some(ops.send(fd, conn))
                        }
                    } else if result < 0 {
                        None // A send failed: the client reset or went away.
                    } else {
                        conn.sent += result as usize;
                        if conn.sent < conn.len {
                            Some(ops.send(fd, conn)) // The kernel took part: send the rest.
                        } else {
                            (conn.sent, conn.len) = (0, 0);
                            Some(ops.receive(fd, conn))
                        }
                    };
                    let next = next.unwrap_or_else(|| {
                        // Nothing of this connection is in flight, so its buffer can go.
                        conns.remove(fd);
                        open -= 1;
                        ops.close(fd)
                    });
                    push(&submitter, &mut sq, next)?;
                }
            }
        }
    }
}

/// Queues one operation. If the submission queue is full, hands what is queued to the kernel
/// first (an extra `io_uring_enter`, only when one turn of the loop queues over SQ_ENTRIES).
fn push(submitter: &Submitter<'_>, sq: &mut SubmissionQueue<'_>, entry: squeue::Entry) -> io::Result<()> {
    // SAFETY: the buffer an entry points at belongs to a Conn that is dropped only after the
    // entry completed, and never moves (it is boxed).
    while unsafe { sq.push(&entry) }.is_err() {
        sq.sync();
        submitter.submit()?;
        sq.sync();
    }
    Ok(())
}

/// The operations, on fds or on registered slots.
struct Ops(Files);

impl Ops {
    /// Into the process's fds: one multishot accept, a completion per new connection until it
    /// stops. Into registered files: one connection, into any free slot. (A registered file has
    /// no fd to close on exec: the kernel refuses SOCK_CLOEXEC for it.)
    fn accept(&self, listen_fd: i32) -> squeue::Entry {
        match self.0 {
            Files::Process => opcode::AcceptMulti::new(Fd(listen_fd)).flags(libc::SOCK_CLOEXEC).build(),
            Files::Registered { .. } => opcode::Accept::new(Fd(listen_fd), ptr::null_mut(), ptr::null_mut())
                .file_index(Some(DestinationSlot::auto_target()))
                .build(),
        }
        .user_data(ACCEPT)
    }

    /// Whether a new connection would have somewhere to go.
    fn room_for(&self, open: usize) -> bool {
        match self.0 {
            Files::Process => true, // If not, accepting says EMFILE and leaves it in the backlog.
            Files::Registered { slots } => open < slots,
        }
    }

    /// Receive into the connection's whole buffer.
    fn receive(&self, fd: i32, conn: &mut Conn) -> squeue::Entry {
        self.on(fd, opcode::Recv::new(Fd(fd), conn.buf.as_mut_ptr(), BUF_SIZE as u32).build())
    }

    /// Send what is left of the reply.
    fn send(&self, fd: i32, conn: &Conn) -> squeue::Entry {
        let rest = &conn.buf[conn.sent..conn.len];
        self.on(fd, opcode::Send::new(Fd(fd), rest.as_ptr(), rest.len() as u32).flags(libc::MSG_NOSIGNAL).build())
    }

    fn close(&self, fd: i32) -> squeue::Entry {
        match self.0 {
            Files::Process => opcode::Close::new(Fd(fd)).build(),
            Files::Registered { .. } => opcode::Close::new(Fixed(fd as u32)).build(),
        }
        .user_data(CLOSED)
    }

    /// `entry`, about connection `fd` (a registered slot: IOSQE_FIXED_FILE).
    fn on(&self, fd: i32, entry: squeue::Entry) -> squeue::Entry {
        let entry = entry.user_data(fd as u64);
        if self.0 == Files::Process { entry } else { entry.flags(squeue::Flags::FIXED_FILE) }
    }
}
