//! Shared by the model tests: starting a server (in this process, or as a `lab-serve` child
//! when the test must fork or measure memory) and clients that check every byte of every reply.
//!
//! Client sockets get a 60 s timeout. It is a safety net, not a measurement: a server that
//! stops answering fails the test with a timeout error instead of hanging it.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    os::unix::process::CommandExt as _,
    process::{Child, Command, Stdio},
    sync::{
        Barrier, Mutex, MutexGuard, Once,
        mpsc::{self, Receiver},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A running server: a thread of this process, or a `lab-serve` child process.
pub enum Server {
    InProcess { addr: SocketAddr, thread: JoinHandle<std::io::Result<()>> },
    Child(ServerProcess),
}

impl Server {
    /// Starts `model` on a background thread — except `process`, which forks, and fork in a
    /// multithreaded test harness is unsafe: it runs as a `lab-serve` child.
    pub fn start(model: &str) -> Server {
        raise_fd_limit();
        if model == "process" {
            return Server::Child(ServerProcess::spawn(model));
        }
        let model = lab_server::model(model).expect("a model name");
        let listener = lab_server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        // The thread outlives the test: models serve until their process ends.
        let thread = thread::spawn(move || (model.serve)(listener));
        Server::InProcess { addr, thread }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::InProcess { addr, .. } => *addr,
            Server::Child(child) => child.addr,
        }
    }

    /// Panics if the server has stopped serving (its `serve` returned, or its process exited).
    pub fn assert_running(&mut self) {
        match self {
            Server::InProcess { thread, .. } => {
                assert!(!thread.is_finished(), "the model's serve() returned")
            }
            Server::Child(child) => child.assert_running(),
        }
    }
}

/// A `lab-serve MODEL` child in a process group of its own; dropping it kills the group.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// The server's stderr, line by line, read by a thread of its own.
    stderr: Receiver<String>,
}

impl ServerProcess {
    pub fn spawn(model: &str) -> ServerProcess {
        Self::spawn_with(model, None)
    }

    /// With `RLIMIT_NOFILE` set to `limit`, so the server runs out of fds.
    pub fn spawn_with_fd_limit(model: &str, limit: u64) -> ServerProcess {
        Self::spawn_with(model, Some(limit))
    }

    fn spawn_with(model: &str, fd_limit: Option<u64>) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lab-serve"));
        command.arg(model).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        if let Some(limit) = fd_limit {
            // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("lab-serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("lab-serve said {line:?}"));
        let pid = child.id();
        let (lines, stderr) = mpsc::channel();
        let pipe = BufReader::new(child.stderr.take().unwrap());
        thread::spawn(move || pipe.lines().map_while(Result::ok).try_for_each(|line| lines.send(line)));
        ServerProcess { child, addr: addr.parse().unwrap(), pid, stderr }
    }

    pub fn assert_running(&mut self) {
        assert_eq!(self.child.try_wait().unwrap(), None, "the server process exited");
    }

    /// The server's children (the `process` model's connection processes, zombies included).
    pub fn children(&self) -> Vec<u32> {
        let list = fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid)).unwrap();
        list.split_whitespace().map(|pid| pid.parse().unwrap()).collect()
    }

    /// The largest peak resident set (VmHWM, KiB) of the server and its children.
    pub fn peak_rss_kib(&self) -> u64 {
        let pids = std::iter::once(self.pid).chain(self.children());
        // A child may exit between listing and reading: skip it.
        pids.filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                line.split_whitespace().nth(1)?.parse().ok()
            })
            .max()
            .unwrap()
    }

    /// Waits for the server's next line on stderr.
    pub fn next_stderr_line(&self) -> String {
        self.stderr.recv_timeout(TIMEOUT).expect("a line on the server's stderr")
    }

    /// Kills the server and returns the lines it wrote to stderr that were not read yet.
    pub fn stop(mut self) -> Vec<String> {
        self.kill();
        self.stderr.iter().collect() // Ends at the pipe's end: the whole group is gone.
    }

    fn kill(&mut self) {
        // SAFETY: plain syscall; the group is the one we created for this child.
        unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Connects with the safety-net timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

/// `len` pseudo-random bytes (every value occurs, lowercase letters included), different for
/// every `seed`.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// What the server must answer to `request`.
pub fn reply_to(request: &[u8]) -> Vec<u8> {
    request.to_ascii_uppercase()
}

/// Sends `message` and checks the reply, byte for byte.
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).unwrap();
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, reply_to(message));
}

/// `connections` clients, all connected at once, each sending `messages` messages of `size`
/// bytes and checking every reply. The clients run on a few threads, each taking its
/// connections in turn: send on all of them, then read on all of them.
pub fn converse(addr: SocketAddr, connections: usize, messages: usize, size: usize) {
    const THREADS: usize = 8;
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        for t in 0..THREADS {
            let barrier = &barrier;
            scope.spawn(move || {
                let ids: Vec<usize> = (t..connections).step_by(THREADS).collect();
                let mut streams: Vec<TcpStream> = ids.iter().map(|_| connect(addr)).collect();
                barrier.wait(); // Every connection is open before any message is sent.
                for m in 0..messages {
                    let sent: Vec<Vec<u8>> = ids
                        .iter()
                        .zip(&mut streams)
                        .map(|(&id, stream)| {
                            let message = payload((id * 1_000_000 + m) as u64, size);
                            stream.write_all(&message).unwrap();
                            message
                        })
                        .collect();
                    for (message, stream) in sent.iter().zip(&mut streams) {
                        let mut reply = vec![0; size];
                        stream.read_exact(&mut reply).unwrap();
                        assert_eq!(reply, reply_to(message));
                    }
                }
            });
        }
    });
}

/// Serializes the tests that open thousands of fds, so they fit under the fd limit together.
pub fn many_fds() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    raise_fd_limit();
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (1024 is a common soft limit).
pub fn raise_fd_limit() {
    static RAISE: Once = Once::new();
    RAISE.call_once(|| {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: plain syscalls with a valid rlimit.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            assert!(
                limit.rlim_max >= 8192,
                "these tests need RLIMIT_NOFILE >= 8192; the hard limit is {}",
                limit.rlim_max
            );
            limit.rlim_cur = limit.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    });
}
