//! The drive phase: every busy connection's closed loop — send one message, read and check the
//! whole reply, repeat — on one io_uring.
//!
//! Why io_uring and not a task per connection: the generator shares the machine with the server
//! it measures, and the probe runs on every syscall *on the machine*. A generator that makes a
//! send and a receive syscall per message makes as many syscalls as the server, so half of what
//! tracing costs would be the generator's, and half of its CPU time would go to syscall entry and
//! exit. Here the sends and receives are io_uring operations: each `io_uring_enter` hands the
//! kernel every operation queued since the last one and returns every completion since, so the
//! generator makes a small fraction of a syscall per message.
//!
//! Each connection has its send and its receive in flight at the same time (a message larger
//! than the socket buffers would otherwise deadlock against a server that echoes as it reads).
//! The reply is compared chunk by chunk against the expected bytes as it arrives, and never read
//! past: later bytes belong to no message. Nothing is allocated per message: the payload is a
//! slice of a shared pattern and the reply lands in one reusable chunk per connection.
//!
//! A connection that has sent its last message closes at once, without waiting for the others
//! (a server that serves one connection per worker gets to the next): it shuts down its sending
//! side and expects the server to close too, with no more bytes. With `pause_when_sent` all
//! connections wait for each other, and the pause, before any closes.
//!
//! A connection's first error is counted and stops it: its socket is shut down (so its
//! operations in flight complete) and closed at the end of the phase. In lockstep mode message
//! `k` starts on every connection once every connection still running has answered `k - 1`.
//! A message, or a close, that takes longer than the timeout fails with a timeout.

use std::{
    io,
    net::TcpStream,
    os::fd::{AsRawFd as _, RawFd},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use io_uring::{IoUring, Probe, opcode, squeue, types};
use tokio::{io::AsyncReadExt, io::AsyncWriteExt, time::timeout};

use super::Cue;
use super::payload::Payload;
use super::report::{ErrorCounts, Failure};

/// The largest read the generator does; replies larger than this arrive in several reads.
const CHUNK: usize = 16 * 1024;
/// Submission queue size; a turn of the loop that queues more hands them over in several calls.
const SQ_ENTRIES: u32 = 4096;
/// How often the loop wakes up to look for messages past their timeout.
const TICK: Duration = Duration::from_millis(100);

/// What every busy connection shares.
pub(crate) struct Shared {
    pub payload: Payload,
    pub messages: usize,
    pub timeout: Duration,
    /// Whether message `k` starts on all connections together.
    pub lockstep: bool,
    /// Messages each connection sends ahead of the reply it reads (see `Workload::ahead`).
    pub ahead: usize,
    /// The pause after each reply before the next message (see `Workload::think_us`); zero: none.
    pub think: types::Timespec,
    pub thinks: bool,
    /// Once every message is answered, before any connection closes: say `sent` and wait for a
    /// line on stdin (see `super::pause`).
    pub pause_when_sent: bool,
    /// Lockstep, with the lab holding the server still while each round is sent: before a round,
    /// say `round` and wait for a line on stdin; once every message of the round is handed to the
    /// kernel, say `queued BYTES` and go on (see `measure::run`).
    pub burst: bool,
    /// Messages answered so far, by all connections (see `LoadSpec::answer_progress`).
    pub answered: AtomicU64,
}

/// What one busy connection did.
#[derive(Default)]
pub(crate) struct Outcome {
    pub messages_ok: u64,
    pub errors: ErrorCounts,
    pub started: Option<Instant>,
    pub last_reply: Option<Instant>,
}

/// One busy connection in the drive phase.
struct Conn {
    id: usize,
    stream: TcpStream,
    /// The message whose reply is being read (or, when finished, the number answered).
    k: usize,
    /// The message being sent: `k` in the closed loop, up to `k + ahead` when sending ahead.
    ks: usize,
    /// Bytes of message `ks` sent, and of reply `k` received.
    sent: usize,
    got: usize,
    sending: bool,
    receiving: bool,
    /// When each message in flight started, message `m` at `m % sent_at.len()`.
    sent_at: Box<[Instant]>,
    /// Set while a message or the close is in progress.
    deadline: Option<Instant>,
    /// The close is in progress: a shutdown in place of the send, a receive that must see EOF.
    closing: bool,
    failed: bool,
    chunk: Box<[u8]>,
    outcome: Outcome,
}

impl Conn {
    fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    fn in_flight(&self) -> bool {
        self.sending || self.receiving
    }
}

/// The operations of a connection: `user_data` is its index shifted left twice, plus this.
const SEND: u64 = 0;
const RECV: u64 = 1;
/// The pause after a reply (`Workload::think_us`) before the next message.
const THINK: u64 = 2;
/// `user_data` of the tick's timeout, on a kernel whose `io_uring_enter` takes no timeout (see
/// [`Driver::submit_and_wait`]); no connection's index is that large.
const TICK_TIMEOUT: u64 = u64::MAX;

/// Runs the closed loop of every `(id, stream)` to the end, and closes it. Returns each
/// connection's outcome, and the latency of every answered message in nanoseconds.
pub(crate) fn drive_all(busy: Vec<(usize, TcpStream)>, shared: &Shared) -> io::Result<(Vec<Outcome>, Histogram<u64>)> {
    let mut conns = Vec::with_capacity(busy.len());
    for (id, stream) in busy {
        // io_uring waits for readiness itself; a non-blocking socket would hand back EAGAIN.
        stream.set_nonblocking(false)?;
        let chunk = vec![0u8; shared.payload.len().min(CHUNK)].into_boxed_slice();
        conns.push(Conn {
            id,
            stream,
            k: 0,
            ks: 0,
            sent: 0,
            got: 0,
            sending: false,
            receiving: false,
            sent_at: vec![Instant::now(); shared.ahead + 1].into_boxed_slice(),
            deadline: None,
            closing: false,
            failed: false,
            chunk,
            outcome: Outcome::default(),
        });
    }
    let mut driver = Driver::new(shared, conns.len())?;
    driver.run(&mut conns)?;
    // Dropping the streams closes the fds.
    Ok((conns.into_iter().map(|c| c.outcome).collect(), driver.latencies))
}

struct Driver<'a> {
    shared: &'a Shared,
    ring: IoUring,
    /// Operations handed to the ring and not completed yet: the loop runs until none are left.
    in_flight: usize,
    /// The completions of one turn of the loop (kept to reuse its allocation).
    completed: Vec<(u64, i32)>,
    latencies: Histogram<u64>,
    /// Lockstep: the message every connection is on, and how many have yet to answer it.
    round: usize,
    round_left: usize,
    /// Burst: connections still sending this round's message, and the bytes the round sends.
    round_unsent: usize,
    round_bytes: usize,
    /// What this kernel's io_uring has: `io_uring_enter` with a timeout and the shutdown
    /// operation (both 5.11). Without them a timeout operation stands for the first and a
    /// `shutdown` syscall for the second.
    has_wait_timeout: bool,
    has_shutdown: bool,
    /// The tick's timeout operation is in flight (kernels without `has_wait_timeout`).
    tick_armed: bool,
    /// What that operation points at; boxed so that it stays put while the kernel reads it.
    tick: Box<types::Timespec>,
}

impl<'a> Driver<'a> {
    fn new(shared: &'a Shared, connections: usize) -> io::Result<Driver<'a>> {
        // Two operations in flight per connection; NODROP keeps any overflow in the kernel.
        let cq = (2 * connections as u32).next_power_of_two().clamp(2 * SQ_ENTRIES, 65_536);
        // Completions are run only when we ask for them (one thread submits and reaps), which
        // spares the generator the interrupts that would run them at once; kernels before 6.1
        // lack these flags and get a plain ring.
        let ring = IoUring::builder()
            .setup_cqsize(cq)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(SQ_ENTRIES)
            .or_else(|_| IoUring::builder().setup_cqsize(cq).build(SQ_ENTRIES))?;
        let has_wait_timeout = ring.params().is_feature_ext_arg();
        let mut probe = Probe::new();
        let has_shutdown =
            ring.submitter().register_probe(&mut probe).is_ok() && probe.is_supported(opcode::Shutdown::CODE);
        let latencies = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).map_err(io::Error::other)?;
        Ok(Driver {
            shared,
            ring,
            in_flight: 0,
            completed: Vec::new(),
            latencies,
            round: 0,
            round_left: 0,
            round_unsent: 0,
            round_bytes: 0,
            has_wait_timeout,
            has_shutdown,
            tick_armed: false,
            tick: Box::new(types::Timespec::from(TICK)),
        })
    }

    fn run(&mut self, conns: &mut [Conn]) -> io::Result<()> {
        if self.shared.burst && self.shared.messages > 0 {
            super::pause(Cue::Round);
        }
        let started = Instant::now();
        for (index, conn) in conns.iter_mut().enumerate() {
            conn.outcome.started = Some(started);
            if self.shared.messages > 0 && self.shared.ahead > 0 {
                conn.deadline = Some(started + self.shared.timeout);
                self.send_ahead(index, conn)?;
                self.receive(index, conn)?;
            } else if self.shared.messages > 0 {
                self.start_message(index, conn)?;
            } else {
                self.finished(index, conn)?;
            }
        }
        self.until_nothing_in_flight(conns)?;
        if self.shared.pause_when_sent {
            super::pause(Cue::Sent);
            for (index, conn) in conns.iter_mut().enumerate() {
                if !conn.failed {
                    self.start_close(index, conn)?;
                }
            }
            self.until_nothing_in_flight(conns)?;
        }
        Ok(())
    }

    fn until_nothing_in_flight(&mut self, conns: &mut [Conn]) -> io::Result<()> {
        let mut next_tick = Instant::now() + TICK;
        while self.in_flight > 0 {
            self.submit_and_wait()?;
            let mut completed = std::mem::take(&mut self.completed);
            for c in self.ring.completion() {
                if c.user_data() == TICK_TIMEOUT {
                    self.tick_armed = false;
                } else {
                    completed.push((c.user_data(), c.result()));
                }
            }
            self.in_flight -= completed.len();
            for &(user_data, result) in &completed {
                let index = (user_data >> 2) as usize;
                self.complete(index, &mut conns[index], user_data & 3, result)?;
                if self.shared.lockstep && self.round_left == 0 {
                    self.next_round(conns)?;
                }
            }
            completed.clear();
            self.completed = completed;
            if Instant::now() >= next_tick {
                self.time_out(conns)?;
                next_tick = Instant::now() + TICK;
            }
        }
        Ok(())
    }

    /// Hands over what is queued and waits for a completion, or at most [`TICK`]: a timeout of
    /// `io_uring_enter`, or on a kernel without one a timeout operation that completes when the
    /// tick passes (not counted in flight; its completion is dropped).
    fn submit_and_wait(&mut self) -> io::Result<()> {
        let waited = if self.has_wait_timeout {
            let args = types::SubmitArgs::new().timespec(&self.tick);
            self.ring.submitter().submit_with_args(1, &args)
        } else {
            if !self.tick_armed {
                let entry = opcode::Timeout::new(&*self.tick).build().user_data(TICK_TIMEOUT);
                // SAFETY: `tick` lives as long as the ring (a field of the same driver).
                while unsafe { self.ring.submission().push(&entry) }.is_err() {
                    self.ring.submit()?;
                }
                self.tick_armed = true;
            }
            self.ring.submit_and_wait(1)
        };
        match waited {
            Ok(_) => Ok(()),
            // ETIME: the tick passed with no completion. EINTR: a signal. EBUSY: completions
            // are waiting for room in the queue, and reaping them is next anyway.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: every buffer an entry points at (a payload slice or a connection's chunk) lives
        // until the end of `drive_all`, and the loop ends only when nothing is in flight.
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.ring.submit()?;
        }
        self.in_flight += 1;
        Ok(())
    }

    fn start_message(&mut self, index: usize, conn: &mut Conn) -> io::Result<()> {
        if self.shared.lockstep {
            self.round_left += 1;
        }
        if self.shared.burst {
            self.round_unsent += 1;
            self.round_bytes += self.shared.payload.message(conn.id, conn.k).0.len();
        }
        (conn.ks, conn.sent, conn.got) = (conn.k, 0, 0);
        let now = Instant::now();
        conn.sent_at[0] = now;
        conn.deadline = Some(now + self.shared.timeout);
        self.send(index, conn)?;
        self.receive(index, conn)
    }

    /// Sending ahead: starts message `ks` unless one is being sent, all are, or `ahead` messages
    /// are already in flight beyond reply `k`.
    fn send_ahead(&mut self, index: usize, conn: &mut Conn) -> io::Result<()> {
        if conn.sending || conn.ks >= self.shared.messages || conn.ks > conn.k + self.shared.ahead {
            return Ok(());
        }
        conn.sent = 0;
        let slot = conn.ks % conn.sent_at.len();
        conn.sent_at[slot] = Instant::now();
        self.send(index, conn)
    }

    fn send(&mut self, index: usize, conn: &mut Conn) -> io::Result<()> {
        let (message, _) = self.shared.payload.message(conn.id, conn.ks);
        let rest = &message[conn.sent..];
        let entry = opcode::Send::new(types::Fd(conn.fd()), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data((index as u64) << 2 | SEND);
        conn.sending = true;
        self.push(entry)
    }

    fn receive(&mut self, index: usize, conn: &mut Conn) -> io::Result<()> {
        let (_, expected) = self.shared.payload.message(conn.id, conn.k);
        let want = conn.chunk.len().min(expected.len() - conn.got);
        let entry = opcode::Recv::new(types::Fd(conn.fd()), conn.chunk.as_mut_ptr(), want as u32)
            .build()
            .user_data((index as u64) << 2 | RECV);
        conn.receiving = true;
        self.push(entry)
    }

    fn complete(&mut self, index: usize, conn: &mut Conn, op: u64, result: i32) -> io::Result<()> {
        if op == THINK {
            // The pause is over (its -ETIME is how a timeout ends).
            return if conn.failed { Ok(()) } else { self.start_message(index, conn) };
        }
        if op == SEND {
            conn.sending = false;
        } else {
            conn.receiving = false;
        }
        if conn.failed {
            return Ok(()); // an operation of a stopped connection, ending
        }
        if result < 0 {
            return self.fail(conn, Failure::from(io::Error::from_raw_os_error(-result)));
        }
        if conn.closing {
            return self.close_completed(conn, op, result);
        }
        let n = result as usize;
        if self.shared.ahead > 0 {
            return self.complete_ahead(index, conn, op, n);
        }
        let (message, expected) = self.shared.payload.message(conn.id, conn.k);
        if op == SEND {
            conn.sent += n;
            if conn.sent < message.len() {
                self.send(index, conn)?; // the kernel took part: send the rest
            } else {
                self.round_sent();
            }
        } else {
            if n == 0 {
                return self.fail(conn, Failure::Eof);
            }
            if conn.chunk[..n] != expected[conn.got..conn.got + n] {
                return self.fail(conn, Failure::Mismatch);
            }
            conn.got += n;
            if conn.got < expected.len() {
                self.receive(index, conn)?;
            }
        }
        if conn.sent == message.len() && conn.got == expected.len() && !conn.in_flight() {
            self.answered(index, conn)?;
        }
        Ok(())
    }

    /// Sending ahead, the send and the receive are two chains: a finished send starts the next
    /// message if the window has room, a finished reply makes room and reads the next one. The
    /// last reply can be read before its send's completion is reaped; the close waits for both.
    fn complete_ahead(&mut self, index: usize, conn: &mut Conn, op: u64, n: usize) -> io::Result<()> {
        if op == SEND {
            conn.sent += n;
            if conn.sent < self.shared.payload.message(conn.id, conn.ks).0.len() {
                return self.send(index, conn); // the kernel took part: send the rest
            }
            conn.ks += 1;
            if conn.k == self.shared.messages {
                return self.finished(index, conn);
            }
            return self.send_ahead(index, conn);
        }
        if n == 0 {
            return self.fail(conn, Failure::Eof);
        }
        let (_, expected) = self.shared.payload.message(conn.id, conn.k);
        if conn.chunk[..n] != expected[conn.got..conn.got + n] {
            return self.fail(conn, Failure::Mismatch);
        }
        conn.got += n;
        if conn.got < expected.len() {
            return self.receive(index, conn);
        }
        let now = Instant::now();
        let started = conn.sent_at[conn.k % conn.sent_at.len()];
        self.latencies.saturating_record((now - started).as_nanos().try_into().unwrap_or(u64::MAX));
        conn.outcome.messages_ok += 1;
        conn.outcome.last_reply = Some(now);
        self.shared.answered.fetch_add(1, Ordering::Relaxed);
        (conn.k, conn.got) = (conn.k + 1, 0);
        if conn.k == self.shared.messages {
            conn.deadline = None;
            return if conn.sending { Ok(()) } else { self.finished(index, conn) };
        }
        conn.deadline = Some(now + self.shared.timeout);
        self.receive(index, conn)?;
        self.send_ahead(index, conn)
    }

    /// A whole reply is in: count it, then start the next message unless in lockstep.
    fn answered(&mut self, index: usize, conn: &mut Conn) -> io::Result<()> {
        let now = Instant::now();
        self.latencies.saturating_record((now - conn.sent_at[0]).as_nanos().try_into().unwrap_or(u64::MAX));
        conn.outcome.messages_ok += 1;
        conn.outcome.last_reply = Some(now);
        conn.deadline = None;
        conn.k += 1;
        self.shared.answered.fetch_add(1, Ordering::Relaxed);
        if self.shared.lockstep {
            self.round_left -= 1;
        }
        if conn.k == self.shared.messages {
            self.finished(index, conn)
        } else if !self.shared.lockstep && self.shared.thinks {
            let pause = opcode::Timeout::new(&self.shared.think).build().user_data((index as u64) << 2 | THINK);
            self.push(pause)
        } else if !self.shared.lockstep {
            self.start_message(index, conn)
        } else {
            Ok(())
        }
    }

    /// Every message is answered: close now, or after the pause.
    fn finished(&mut self, index: usize, conn: &mut Conn) -> io::Result<()> {
        if self.shared.pause_when_sent { Ok(()) } else { self.start_close(index, conn) }
    }

    /// Shut down our sending side and wait for the server's end of data.
    fn start_close(&mut self, index: usize, conn: &mut Conn) -> io::Result<()> {
        conn.closing = true;
        conn.deadline = Some(Instant::now() + self.shared.timeout);
        let eof = opcode::Recv::new(types::Fd(conn.fd()), conn.chunk.as_mut_ptr(), 1)
            .build()
            .user_data((index as u64) << 2 | RECV);
        if self.has_shutdown {
            let shutdown = opcode::Shutdown::new(types::Fd(conn.fd()), libc::SHUT_WR)
                .build()
                .user_data((index as u64) << 2 | SEND);
            conn.sending = true;
            self.push(shutdown)?;
        } else if let Err(err) = conn.stream.shutdown(std::net::Shutdown::Write) {
            return self.fail(conn, Failure::from(err));
        }
        conn.receiving = true;
        self.push(eof)
    }

    /// The shutdown is done, or the server's end of data came: any byte now is one too many.
    fn close_completed(&mut self, conn: &mut Conn, op: u64, result: i32) -> io::Result<()> {
        if op == RECV && result > 0 {
            return self.fail(conn, Failure::Mismatch);
        }
        if !conn.in_flight() {
            conn.deadline = None;
        }
        Ok(())
    }

    /// Lockstep: everyone still running answered this round; start the next.
    fn next_round(&mut self, conns: &mut [Conn]) -> io::Result<()> {
        self.round += 1;
        if self.round >= self.shared.messages {
            return Ok(());
        }
        if self.shared.burst {
            super::pause(Cue::Round);
        }
        for (index, conn) in conns.iter_mut().enumerate() {
            if !conn.failed {
                self.start_message(index, conn)?;
            }
        }
        Ok(())
    }

    /// Burst: one more connection has handed its whole message to the kernel; after the last,
    /// say how many bytes the round sent.
    fn round_sent(&mut self) {
        if !self.shared.burst {
            return;
        }
        self.round_unsent -= 1;
        if self.round_unsent == 0 {
            super::say(Cue::Queued(self.round_bytes as u64));
            self.round_bytes = 0;
        }
    }

    /// Stops a connection at its first error: counted, its socket shut down so that what it has
    /// in flight completes.
    fn fail(&mut self, conn: &mut Conn, failure: Failure) -> io::Result<()> {
        conn.outcome.errors.count(failure);
        conn.failed = true;
        if conn.sending && !conn.closing {
            self.round_sent(); // it will send no more of this round
        }
        if conn.deadline.take().is_some() && self.shared.lockstep && !conn.closing {
            self.round_left -= 1; // it will not answer this round
        }
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        Ok(())
    }

    fn time_out(&mut self, conns: &mut [Conn]) -> io::Result<()> {
        let now = Instant::now();
        for conn in conns.iter_mut() {
            if !conn.failed && conn.deadline.is_some_and(|d| now >= d) {
                self.fail(conn, Failure::Timeout)?;
            }
        }
        if self.shared.lockstep && self.round_left == 0 {
            self.next_round(conns)?;
        }
        Ok(())
    }
}

/// Closes cleanly: shut down our side, then expect the server to close its side with no more
/// bytes. Used for idle connections too.
pub(crate) async fn close(mut conn: tokio::net::TcpStream, limit: Duration) -> Result<(), Failure> {
    let goodbye = async {
        conn.shutdown().await?;
        let mut byte = [0u8; 1];
        conn.read(&mut byte).await
    };
    match timeout(limit, goodbye).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(_)) => Err(Failure::Mismatch),
        Ok(Err(e)) => Err(Failure::from(e)),
        Err(_) => Err(Failure::Timeout),
    }
}
