//! # io-uring-multishot — one thread, operations that stay armed
//!
//! The `io-uring` model submits one receive per message: every reply is followed by a new
//! receive, a submission the kernel must prepare, arm and complete. Multishot operations stay
//! armed instead and post a completion each time they have something: one multishot accept for
//! the server's whole life (Linux 5.19), and per connection one multishot receive (6.0) that
//! posts a completion for every chunk that arrives until the connection ends. A receive that
//! stays armed cannot own a buffer, so the kernel picks one per completion from a *provided
//! buffer ring* (5.19) we registered: a ring of buffer addresses we refill as we consume them.
//! The buffer id comes back in the completion; we uppercase its bytes into the connection's
//! reply and hand the buffer back at once, so the ring only needs as many buffers as one batch of
//! completions (it starts at [`FIRST_BUFFERS`] and doubles when the kernel runs out).
//!
//! Sends are the only submissions per message, and they are batched: completions are handled
//! first, then one send per connection with reply bytes waiting goes into the queue, and one
//! `io_uring_enter` carries them all. The ring is set up `SINGLE_ISSUER` (6.0) where the kernel
//! has it. Not `DEFER_TASKRUN` (6.1), though it is the usual advice: measured on 6.18 with 500
//! connections all sending at once, it made this loop enter 20 times as often (0.22 calls per
//! message against 0.0095), each call bringing back a few completions where it brought a hundred
//! without it — the deferred task work is run a bounded batch at a time.
//!
//! **One enter per turn, not two.** A send to a client with room in its socket completes during
//! the very `io_uring_enter` that submits it, and its completion would end that call's wait at
//! once: every turn would take a second call just to wait for the next receive. So the call that
//! submits K sends waits for K + 1 completions. A send that cannot complete at once (its client
//! is not reading) would hold that wait up, so it carries a timeout of [`SEND_STUCK`]; it
//! expires only in a turn where some client stopped reading.
//!
//! **Back-pressure:** a multishot receive keeps receiving whether or not the client reads its
//! replies. When a connection holds [`MAX_UNSENT`] reply bytes we cancel its receive
//! (IORING_OP_ASYNC_CANCEL) and arm a new one when they are sent — so a client that never reads
//! costs two submissions per 64 KiB, and everyone else none. Until the cancel lands the receive
//! still fills buffers; if that client alone empties the ring, the ring is not grown for it.
//!
//! **Where it blocks:** only in `io_uring_enter` (waiting for one completion, no timeout).
//!
//! **Syscalls per message:** a share of one `io_uring_enter`, and nothing else: no `recvfrom`,
//! `sendto`, `accept4`, `close`, no re-arming. With one busy client that should be one call per
//! message (it submits the reply and waits for the next request) where `io-uring` makes two or
//! three; measured: 1.64 against 3. With many clients one call carries the sends of every
//! connection whose request arrived meanwhile — but waiting for K + 1 completions ends the wait
//! at the first new request, so the batches are smaller than `io-uring`'s: at 500 connections
//! all sending at once it entered twice as often (0.0095 calls per message against 0.0048).
//! Per connection: a multishot receive, a close, and a buffer or two of the ring.
//!
//! **In production** this is the design io_uring's authors recommend for network servers
//! (liburing's examples, Jens Axboe's "io_uring and networking in 2023"), and what runtimes such
//! as monoio and tokio-uring's successors use; they also register the files and, from 6.10,
//! send from provided buffers too (bundles).

use std::{
    alloc::{Layout, alloc_zeroed, dealloc},
    io,
    net::TcpListener,
    os::{fd::AsRawFd as _, unix::net::UnixStream},
    sync::atomic::{AtomicU16, Ordering},
    time::Duration,
};

use ::io_uring::{
    IoUring, SubmissionQueue, Submitter, cqueue, opcode, squeue,
    types::{BufRingEntry, Fd, SubmitArgs, Timespec},
};

use crate::{
    Model, accept,
    conn_table::FdTable,
    protocol::{MAX_UNSENT, uppercase_in_place},
};

pub const MODEL: Model = Model {
    name: "io-uring-multishot",
    summary: "one thread, io_uring multishot accept and receives into a provided buffer ring, batched sends",
    serve,
    needs: Some("io_uring multishot receive (6.0) and provided buffer rings (5.19)"),
    probe: Some(probe),
};

const SQ_ENTRIES: u32 = 4096;
/// Above the completions one batch posts for the lab's 10,000 connections (see `io-uring`).
const CQ_ENTRIES: u32 = 32768;
/// The buffer group our receives pick from.
const GROUP: u16 = 0;
/// Each provided buffer: a page. A receive takes a whole buffer however little it brings.
const BUF_LEN: usize = 4096;
/// The ring's slots, a power of two: the most buffers it can ever hold.
const RING_SLOTS: usize = 16384;
/// Buffers provided at first; the ring doubles them when a batch needs more.
const FIRST_BUFFERS: usize = 256;
/// How long a wait may be held up by a send that could not complete at once (a client that
/// does not read): see the module doc.
const SEND_STUCK: Duration = Duration::from_millis(10);

/// `user_data`: the accept; connections' operations carry the fd, the operation and the
/// connection's generation, so a completion of a closed connection's fd never reaches its successor.
const ACCEPT: u64 = u64::MAX;
const RECV: u64 = 1;
const SEND: u64 = 2;
/// Completions that need nothing done: a cancel's own, a close's.
const IGNORE: u64 = 3;

fn key(fd: i32, op: u64, generation: u32) -> u64 {
    fd as u32 as u64 | op << 32 | u64::from(generation & 0xff_ffff) << 40
}

/// One connection. `sending` belongs to the send in flight (if `sent < sending.len()`), so new
/// reply bytes go to `pending` and never move it.
#[derive(Default)]
struct Conn {
    generation: u32,
    sending: Vec<u8>,
    sent: usize,
    send_in_flight: bool,
    pending: Vec<u8>,
    receiving: bool,
    cancelling: bool,
    peer_done: bool,
    failed: bool,
    /// Already in this turn's list of connections to settle.
    dirty: bool,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.sending.len() - self.sent + self.pending.len()
    }
}

/// The ring with `SINGLE_ISSUER`, or without it on a kernel that lacks it.
fn ring() -> io::Result<IoUring> {
    let single = IoUring::builder().setup_cqsize(CQ_ENTRIES).setup_single_issuer().build(SQ_ENTRIES);
    match single {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::builder().setup_cqsize(CQ_ENTRIES).build(SQ_ENTRIES)
        }
        ring => ring,
    }
}

fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    let listen_fd = listener.as_raw_fd();
    let mut buffers = Buffers::new(RING_SLOTS)?; // Declared before the ring: dropped after it.
    let mut ring = ring()?;
    let (submitter, mut sq, mut cq) = ring.split();
    buffers.register(&submitter)?;
    buffers.grow(FIRST_BUFFERS);
    let mut conns: FdTable<Conn> = FdTable::default();
    let mut dirty: Vec<i32> = Vec::new();
    let mut generation = 0u32;

    let mut sends = 0; // Sends queued since the last wait.
    let timeout = Timespec::new().nsec(SEND_STUCK.as_nanos() as u32);
    push(&submitter, &mut sq, accept_all(listen_fd))?;
    loop {
        buffers.publish();
        sq.sync();
        // Wait for one completion more than the sends we hand over: they almost always complete
        // at once, and would otherwise end the wait they were submitted with.
        let waited = match sends {
            0 => submitter.submit_and_wait(1),
            _ => submitter.submit_with_args(sends + 1, &SubmitArgs::new().timespec(&timeout)),
        };
        match waited {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EBUSY: completions are waiting for room in the queue; ETIME: a send could not
            // complete at once. Either way, the completions are next.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ETIME)) => {}
            Err(e) => return Err(e),
        }
        sends = 0;
        cq.sync();
        let mut starved = false; // A receive found the buffer ring empty.
        for cqe in &mut cq {
            let (key, result, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            if key == ACCEPT {
                if result >= 0 {
                    generation = generation.wrapping_add(1);
                    conns.insert(result, Conn { generation, ..Conn::default() });
                    mark(&mut conns, &mut dirty, result);
                } else {
                    accept::failed(io::Error::from_raw_os_error(-result))?;
                }
                if !cqueue::more(flags) {
                    push(&submitter, &mut sq, accept_all(listen_fd))?; // The multishot ended: re-arm.
                }
                continue;
            }
            let (fd, op) = (key as u32 as i32, key >> 32 & 0xff);
            let Some(conn) = conns.get_mut(fd).filter(|c| op != IGNORE && key == self::key(fd, op, c.generation))
            else {
                continue;
            };
            if op == RECV {
                if let Some(id) = cqueue::buffer_select(flags) {
                    let bytes = buffers.take(id, result.max(0) as usize);
                    conn.pending.extend_from_slice(bytes);
                    let start = conn.pending.len() - bytes.len();
                    uppercase_in_place(&mut conn.pending[start..]);
                    buffers.give_back(id);
                }
                match result {
                    0 => conn.peer_done = true,
                    // Re-armed below. A connection past its reply limit ran the ring dry by
                    // itself (a client not reading): more buffers would only hold more of it.
                    r if r == -libc::ENOBUFS => starved |= conn.unsent() < MAX_UNSENT,
                    r if r < 0 && r != -libc::ECANCELED => conn.failed = true,
                    _ => {}
                }
                if !cqueue::more(flags) {
                    (conn.receiving, conn.cancelling) = (false, false);
                }
            } else if result < 0 {
                (conn.send_in_flight, conn.failed) = (false, true); // The client reset or went away.
            } else {
                conn.send_in_flight = false;
                conn.sent += result as usize;
            }
            mark(&mut conns, &mut dirty, fd);
        }
        if starved {
            buffers.grow(buffers.count); // Double them (once per batch), before re-arming.
        }
        for fd in dirty.drain(..) {
            sends += settle(&submitter, &mut sq, &mut conns, fd)?;
        }
    }
}

fn mark(conns: &mut FdTable<Conn>, dirty: &mut Vec<i32>, fd: i32) {
    if let Some(conn) = conns.get_mut(fd).filter(|c| !c.dirty) {
        conn.dirty = true;
        dirty.push(fd);
    }
}

/// After a turn's completions: starts the connection's next send, arms or cancels its receive,
/// or closes it once nothing of it is in flight. Returns the sends it queued (0 or 1).
fn settle(
    submitter: &Submitter<'_>,
    sq: &mut SubmissionQueue<'_>,
    conns: &mut FdTable<Conn>,
    fd: i32,
) -> io::Result<usize> {
    let Some(conn) = conns.get_mut(fd) else { return Ok(0) };
    let mut sends = 0;
    conn.dirty = false;
    let generation = conn.generation;
    if !conn.failed && !conn.send_in_flight {
        if conn.sent == conn.sending.len() {
            conn.sending.clear();
            conn.sent = 0;
            std::mem::swap(&mut conn.sending, &mut conn.pending);
        }
        if conn.sent < conn.sending.len() {
            let rest = &conn.sending[conn.sent..];
            let send = opcode::Send::new(Fd(fd), rest.as_ptr(), rest.len() as u32).flags(libc::MSG_NOSIGNAL);
            push(submitter, sq, send.build().user_data(key(fd, SEND, generation)))?;
            conn.send_in_flight = true;
            sends += 1;
        } else if conn.sending.capacity() > 0 {
            (conn.sending, conn.pending) = (Vec::new(), Vec::new()); // Idle connections hold no memory.
        }
    }
    let room = conn.unsent() < MAX_UNSENT;
    if conn.receiving && !conn.cancelling && (conn.failed || !room) {
        push(submitter, sq, opcode::AsyncCancel::new(key(fd, RECV, generation)).build().user_data(key(fd, IGNORE, 0)))?;
        conn.cancelling = true;
    } else if !conn.receiving && !conn.failed && !conn.peer_done && room {
        let recv = opcode::RecvMulti::new(Fd(fd), GROUP).build().user_data(key(fd, RECV, generation));
        push(submitter, sq, recv)?;
        conn.receiving = true;
    }
    let finished = conn.failed || (conn.peer_done && conn.unsent() == 0);
    if finished && !conn.receiving && !conn.send_in_flight {
        conns.remove(fd);
        push(submitter, sq, opcode::Close::new(Fd(fd)).build().user_data(key(fd, IGNORE, 0)))?;
    }
    Ok(sends)
}

/// Queues one operation; if the queue is full, hands it to the kernel first (see `io-uring`).
fn push(submitter: &Submitter<'_>, sq: &mut SubmissionQueue<'_>, entry: squeue::Entry) -> io::Result<()> {
    // SAFETY: a send points into its Conn's `sending`, which is neither changed nor dropped until
    // the send completed (a Conn is removed only when nothing of it is in flight).
    while unsafe { sq.push(&entry) }.is_err() {
        sq.sync();
        submitter.submit()?;
        sq.sync();
    }
    Ok(())
}

fn accept_all(listen_fd: i32) -> squeue::Entry {
    opcode::AcceptMulti::new(Fd(listen_fd)).flags(libc::SOCK_CLOEXEC).build().user_data(ACCEPT)
}

/// The provided buffer ring: `slots` entries shared with the kernel (page-aligned, as it
/// requires), and the buffers they point to, allocated in chunks that never move.
/// Drop it only after the io_uring it was registered with (the kernel reads it until then).
struct Buffers {
    ring: *mut BufRingEntry,
    layout: Layout,
    slots: usize,
    /// Our copy of the ring's tail: entries below it are the kernel's to take.
    tail: u16,
    chunks: Vec<Box<[u8]>>,
    count: usize,
}

impl Buffers {
    fn new(slots: usize) -> io::Result<Buffers> {
        let layout = Layout::from_size_align(slots * size_of::<BufRingEntry>(), 4096).expect("a valid layout");
        // SAFETY: the layout has a non-zero size.
        let ring = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if ring.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        Ok(Buffers { ring, layout, slots, tail: 0, chunks: Vec::new(), count: 0 })
    }

    fn register(&self, submitter: &Submitter<'_>) -> io::Result<()> {
        // SAFETY: the ring's memory is valid for `slots` entries for the rest of the process.
        unsafe { submitter.register_buf_ring_with_flags(self.ring as u64, self.slots as u16, GROUP, 0) }
    }

    /// Provides `more` new buffers (fewer if the ring would overflow).
    fn grow(&mut self, more: usize) {
        let more = more.min(self.slots - self.count);
        if more == 0 {
            return;
        }
        self.chunks.push(vec![0; more * BUF_LEN].into_boxed_slice());
        for id in self.count..self.count + more {
            self.give_back(id as u16);
        }
        self.count += more;
    }

    /// The first `len` bytes the kernel put in buffer `id`.
    fn take(&self, id: u16, len: usize) -> &[u8] {
        let mut id = id as usize;
        for chunk in &self.chunks {
            let buffers = chunk.len() / BUF_LEN;
            if id < buffers {
                return &chunk[id * BUF_LEN..][..len];
            }
            id -= buffers;
        }
        unreachable!("a buffer id the kernel was never given")
    }

    /// Puts buffer `id` back in the ring (the kernel sees it at the next [`publish`](Self::publish)).
    fn give_back(&mut self, id: u16) {
        let address = self.take(id, 0).as_ptr();
        // SAFETY: the slot is within the ring; the kernel does not read slots at or past the tail.
        let entry = unsafe { &mut *self.ring.add(self.tail as usize & (self.slots - 1)) };
        entry.set_addr(address as u64);
        entry.set_len(BUF_LEN as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Hands the kernel every buffer given back since the last call.
    fn publish(&self) {
        // SAFETY: the tail lives in the ring's first entry; the kernel reads it atomically.
        let tail = unsafe { &*BufRingEntry::tail(self.ring).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ring.cast(), self.layout) }
    }
}

/// Sets up the model's ring and buffer ring, and has a multishot receive take one byte from a
/// socket pair: a kernel without multishot receive refuses it (`EINVAL`).
fn probe() -> io::Result<()> {
    let context = |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let mut buffers = Buffers::new(1).map_err(context("allocating a buffer ring"))?;
    let mut ring = ring().map_err(context("setting up io_uring"))?;
    let (submitter, mut sq, mut cq) = ring.split();
    buffers.register(&submitter).map_err(context("registering a buffer ring"))?;
    buffers.grow(1);
    buffers.publish();
    let (ours, theirs) = UnixStream::pair()?;
    push(&submitter, &mut sq, opcode::RecvMulti::new(Fd(ours.as_raw_fd()), GROUP).build().user_data(1))?;
    io::Write::write_all(&mut &theirs, b"?")?;
    sq.sync();
    submitter.submit_and_wait(1).map_err(context("a multishot receive"))?;
    cq.sync();
    let cqe = cq.next().ok_or_else(|| io::Error::other("a multishot receive: no completion"))?;
    if cqe.result() < 0 {
        return Err(context("a multishot receive")(io::Error::from_raw_os_error(-cqe.result())));
    }
    Ok(()) // Dropping the ring cancels the receive and closes everything.
}
