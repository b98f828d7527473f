//! Workloads with known syscall counts, to prove the probe exact (`iolab selftest`, the tests).
//!
//! A counter is only worth trusting if it has been checked against something known. These
//! workloads make an exact number of `read(2)` and `write(2)` calls through raw libc (no buffering
//! in between), split across the process, a forked child and a second thread — the three ways a
//! server grows its tree. Each stops itself (SIGSTOP) once its setup is done, so the checker can
//! take its "before" snapshot at a moment when nothing is in flight.

use std::{fs::File, os::fd::AsRawFd as _};

use anyhow::{Result, bail};

/// Makes `n` writes and `n` reads itself, `k` of each in a forked child and `j` of each in a
/// thread, then exits. Nothing else it does is a read or a write.
pub fn io(n: u64, k: u64, j: u64) -> Result<()> {
    let null = File::options().write(true).open("/dev/null")?;
    let zero = File::open("/dev/zero")?;
    let (w, r) = (null.as_raw_fd(), zero.as_raw_fd());
    stop_self();
    // SAFETY: fork in a single-threaded process; the child only makes raw syscalls and _exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        read_write(w, r, k);
        // SAFETY: leave without running Rust's exit path (no flushing, no atexit).
        unsafe { libc::_exit(0) };
    }
    if child < 0 {
        bail!("fork failed: {}", std::io::Error::last_os_error());
    }
    let thread = std::thread::spawn(move || read_write(w, r, j));
    read_write(w, r, n);
    thread.join().map_err(|_| anyhow::anyhow!("thread panicked"))?;
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    Ok(())
}

fn read_write(w: i32, r: i32, count: u64) {
    let mut byte = [0u8; 1];
    for _ in 0..count {
        // SAFETY: valid fds and a one-byte buffer.
        unsafe {
            libc::write(w, byte.as_ptr().cast(), 1);
            libc::read(r, byte.as_mut_ptr().cast(), 1);
        }
    }
}

/// Blocks `n` times in `read(2)` on stdin, an empty pipe that the checker refills one byte at a
/// time, then stops itself so the checker can compare the probe with /proc before it exits.
pub fn block(n: u64) -> Result<()> {
    stop_self();
    let mut byte = [0u8; 1];
    for _ in 0..n {
        // SAFETY: stdin and a one-byte buffer.
        if unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) } != 1 {
            bail!("stdin closed early");
        }
    }
    stop_self();
    Ok(())
}

fn stop_self() {
    // SAFETY: plain raise(3).
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// Registers `k` pipes with an epoll instance through a `dup` of its fd (as tokio does), then,
/// after the stop, makes four `epoll_wait` calls with the interest list at k, k-1 (one
/// EPOLL_CTL_DEL), k-2 (one registered fd closed) and k-2 (a failing duplicate ADD). The first
/// pipe holds a byte, so each call returns exactly 1 ready fd. Needs k >= 3.
pub fn epoll(k: usize) -> Result<()> {
    if k < 3 {
        bail!("epoll exercise needs at least 3 pipes");
    }
    // SAFETY: raw epoll and pipe calls on fds this function owns; they live until exit.
    unsafe {
        let epfd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        let registry = libc::fcntl(epfd, libc::F_DUPFD_CLOEXEC, 3);
        let mut read_ends = Vec::with_capacity(k);
        for i in 0..k {
            let mut fds = [0; 2];
            libc::pipe(fds.as_mut_ptr());
            let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: i as u64 };
            libc::epoll_ctl(registry, libc::EPOLL_CTL_ADD, fds[0], &mut ev);
            if i == 0 {
                libc::write(fds[1], b"x".as_ptr().cast(), 1);
            }
            read_ends.push(fds[0]);
        }
        stop_self();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let mut wait = || libc::epoll_wait(epfd, events.as_mut_ptr(), 8, 0);
        wait();
        libc::epoll_ctl(registry, libc::EPOLL_CTL_DEL, read_ends[1], std::ptr::null_mut());
        wait();
        libc::close(read_ends[2]);
        wait();
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
        libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, read_ends[0], &mut ev); // EEXIST
        wait();
    }
    Ok(())
}

/// Opens `k` pipes and, after the stop, makes `n` poll calls over their read ends, each waiting
/// `timeout_ms` for data that never comes (the write ends stay open and empty); then exits. With
/// a timeout of 0 no call ever sleeps: all the time inside them is the kernel's work on the CPU.
pub fn poll(k: usize, n: u64, timeout_ms: i32) -> Result<()> {
    let mut ends = Vec::with_capacity(k);
    let mut fds = Vec::with_capacity(k);
    for _ in 0..k {
        let mut pipe = [0; 2];
        // SAFETY: pipe(2) fills two fds, kept open until we exit.
        if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
            bail!("pipe failed: {}", std::io::Error::last_os_error());
        }
        fds.push(libc::pollfd { fd: pipe[0], events: libc::POLLIN, revents: 0 });
        ends.push(pipe);
    }
    stop_self();
    for _ in 0..n {
        // SAFETY: `fds` holds k valid pollfd entries.
        unsafe { libc::poll(fds.as_mut_ptr(), k as libc::nfds_t, timeout_ms) };
    }
    Ok(())
}

/// Connects to the untraced peer at 127.0.0.1:`port` (`TCP_NODELAY`: each write its own
/// segment), stops, then either sends `n` messages of `bytes` (`send`), each after a pause of
/// [`LOOPBACK_PAUSE`], or reads until `n × bytes` have come (`receive`), and stops again before it
/// exits, so the checker reads the probe over the transfer alone.
///
/// On loopback the receiving socket's TCP work runs in the sender's context: a traced sender runs
/// the peer's receive in its NET_RX softirqs; a traced receiver's are only its own ACKs being
/// taken in by the peer's socket. The pause lets the receiver go back to sleep before each
/// message: a message that finds the receiving socket busy (its owner reading) is left on the
/// socket's backlog for the owner to take in, and the sender would not run that receive itself.
pub fn loopback(role: &str, port: u16, n: u64, bytes: usize) -> Result<()> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port))?;
    stream.set_nodelay(true)?;
    let mut buf = vec![b'x'; bytes];
    stop_self();
    match role {
        "send" => {
            for _ in 0..n {
                std::thread::sleep(LOOPBACK_PAUSE);
                stream.write_all(&buf)?;
            }
        }
        "receive" => {
            let mut left = n * bytes as u64;
            while left > 0 {
                let got = stream.read(&mut buf)?;
                if got == 0 {
                    bail!("the peer closed with {left} bytes still to come");
                }
                left -= got as u64;
            }
        }
        other => bail!("loopback: no role {other} (send or receive)"),
    }
    stop_self();
    Ok(())
}

/// The pause before each message of a [`loopback`] transfer.
pub const LOOPBACK_PAUSE: std::time::Duration = std::time::Duration::from_micros(50);

/// After the stop, keeps one CPU busy for `ms` milliseconds (no syscall: the clock is read through
/// the vDSO), then stops again so the checker can read the kernel's own count, and exits.
pub fn spin(ms: u64) -> Result<()> {
    stop_self();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(ms) {
        std::hint::spin_loop();
    }
    stop_self();
    Ok(())
}

/// After the stop, calls `getppid(2)` `n` times (the cheapest syscall: its time is nearly all
/// the kernel's entry and exit around it), then stops again, so the checker can read the probe
/// while the process still lives, and exits.
pub fn getppid(n: u64) -> Result<()> {
    stop_self();
    for _ in 0..n {
        // SAFETY: plain getppid(2).
        unsafe { libc::getppid() };
    }
    stop_self();
    Ok(())
}

/// The fd that [`ready`]'s select sets hold beyond the others, and the `nfds` it passes: the sets
/// span 16 words, and a bit at `nfds` itself (set too) is one the kernel ignores.
pub const SELECT_HIGH_FD: i32 = 990;
pub const SELECT_NFDS: i32 = 1000;

/// Opens `k` socket pairs with a byte waiting in each, so `k` sockets are readable, and after
/// the stop makes `n` calls of `call` (poll, select or epoll_wait) over those `k`, with timeout 0:
/// each returns at once with all `k` ready, never sleeping. Then it says `done` and stops again,
/// so the checker reads the probe before the exit, and exits.
///
/// select's sets hold the `k` sockets (the last one dup'd to [`SELECT_HIGH_FD`]) in both the read
/// and the write set, and a bit at `nfds` ([`SELECT_NFDS`]) in the read set: `k` fds are handed
/// in, each call returns `2k` (readable and writable). epoll registers the `k`.
///
/// It runs at real-time priority (SCHED_FIFO) where it may, so that no task preempts its calls:
/// then no time at all is spent switched out inside them.
pub fn ready(call: &str, k: usize, n: u64) -> Result<()> {
    if k < 2 {
        bail!("the ready exercise needs at least 2 sockets");
    }
    let mut readable = Vec::with_capacity(k);
    for _ in 0..k {
        let mut pair = [0; 2];
        // SAFETY: socketpair(2) fills two fds, kept open until we exit; a one-byte write.
        unsafe {
            if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) != 0 {
                bail!("socketpair failed: {}", std::io::Error::last_os_error());
            }
            libc::write(pair[1], b"x".as_ptr().cast(), 1);
        }
        readable.push(pair[0]);
    }
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain sched_setscheduler on ourselves; it may fail (no privilege), which is fine.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    match call {
        "poll" => {
            let mut fds: Vec<_> =
                readable.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
            stop_self();
            for _ in 0..n {
                // SAFETY: `fds` holds k valid pollfd entries.
                unsafe { libc::poll(fds.as_mut_ptr(), k as libc::nfds_t, 0) };
            }
        }
        "select" => {
            // SAFETY: dup2 onto a free fd number below the fd limit.
            if unsafe { libc::dup2(readable[k - 1], SELECT_HIGH_FD) } != SELECT_HIGH_FD {
                bail!("dup2 to fd {SELECT_HIGH_FD} failed: {}", std::io::Error::last_os_error());
            }
            readable[k - 1] = SELECT_HIGH_FD;
            let words = (SELECT_NFDS as usize + 1).div_ceil(64);
            let mut set = vec![0u64; words];
            for &fd in &readable {
                set[fd as usize / 64] |= 1 << (fd % 64);
            }
            let mut beyond = set.clone();
            beyond[SELECT_NFDS as usize / 64] |= 1 << (SELECT_NFDS % 64);
            stop_self();
            for _ in 0..n {
                let (mut read, mut write) = (beyond.clone(), set.clone());
                let mut timeout = libc::timeval { tv_sec: 0, tv_usec: 0 };
                // SAFETY: two sets of at least nfds bits; select writes back within them.
                unsafe {
                    libc::select(
                        SELECT_NFDS,
                        read.as_mut_ptr().cast(),
                        write.as_mut_ptr().cast(),
                        std::ptr::null_mut(),
                        &mut timeout,
                    )
                };
            }
        }
        "epoll" => {
            // SAFETY: raw epoll calls on fds this function owns.
            let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            for (i, &fd) in readable.iter().enumerate() {
                let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: i as u64 };
                // SAFETY: as above.
                unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
            }
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; k];
            stop_self();
            for _ in 0..n {
                // SAFETY: room for k events.
                unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), k as i32, 0) };
            }
        }
        other => bail!("unknown wait call {other:?} (valid: poll, select, epoll)"),
    }
    println!("done"); // the checker waits for this line, then for the stop
    stop_self();
    Ok(())
}
