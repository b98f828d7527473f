//! The lab's protocol, and the connection state every model needs to speak it.
//!
//! The protocol is a byte stream with no framing: every byte the client sends comes back once,
//! in order, with ASCII `a`–`z` uppercased and every other byte unchanged. So a server never has
//! to find message boundaries — it can answer whatever one read returned, which is why a partial
//! read (half a message) needs no special care: the other half is answered by the next read.
//!
//! What *does* need care is the other direction. A reply may not fit in the socket's send
//! buffer, because the client is slow or not reading at all. A blocking server simply stops in
//! `write` ([`echo`]), and so stops reading too. A non-blocking server must keep the bytes the
//! kernel did not take, and stop reading while it holds too many of them — otherwise a client
//! that sends without reading makes the server buffer without bound. [`Conn`] is that state for
//! the models that drive raw non-blocking sockets (select, poll, epoll): at most [`MAX_UNSENT`]
//! reply bytes per connection, and reading pauses until they drain.
//!
//! Sends use `MSG_NOSIGNAL`, so writing to a connection the client has reset fails with `EPIPE`
//! instead of killing the server with `SIGPIPE`. (Rust's `TcpStream` does the same.)

use std::{
    io::{self, Read, Write},
    os::fd::{AsRawFd as _, OwnedFd, RawFd},
};

use crate::sys::restart_on_eintr;

/// The most bytes one read asks for; also each blocking connection's buffer.
pub const BUF_SIZE: usize = 16 * 1024;

/// The most reply bytes a non-blocking connection keeps while the client is not reading.
pub const MAX_UNSENT: usize = 64 * 1024;

/// The protocol's one transformation: ASCII `a`–`z` become `A`–`Z`, every other byte is kept.
pub fn uppercase_in_place(bytes: &mut [u8]) {
    bytes.make_ascii_uppercase();
}

/// Serves one connection with blocking calls: read, uppercase, write it all back, until the
/// client finishes sending (read returns 0) or the connection fails.
///
/// Back-pressure is free here: while the client does not read, `write_all` blocks, so we read
/// no more than one `buf` ahead of it.
pub fn echo<S: Read + Write>(stream: &mut S, buf: &mut [u8]) -> io::Result<()> {
    loop {
        let n = match stream.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        uppercase_in_place(&mut buf[..n]);
        stream.write_all(&buf[..n])?;
    }
}

/// One non-blocking connection: its socket, the reply bytes the kernel has not taken yet, and
/// whether the client has finished sending.
///
/// Every method makes the `recv`/`send` calls its name says and no others, so a model's loop
/// shows exactly which syscalls it makes. `WouldBlock` errors are returned, not hidden: what to
/// do about them is the model's business (wait for readiness, or stop because it is edge-triggered).
pub struct Conn {
    socket: OwnedFd,
    /// Uppercased bytes waiting for room in the socket's send buffer, oldest first.
    unsent: Vec<u8>,
    /// `recv` returned 0: the client shut down its sending side (or closed).
    peer_done: bool,
}

impl Conn {
    /// Takes ownership of a connected, non-blocking socket; dropping the `Conn` closes it.
    pub fn new(socket: OwnedFd) -> Conn {
        Conn { socket, unsent: Vec::new(), peer_done: false }
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reply bytes waiting to be sent.
    pub fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// Whether to read: the client may still send, and we have room for the reply.
    pub fn wants_read(&self) -> bool {
        !self.peer_done && self.unsent.len() < MAX_UNSENT
    }

    /// Whether to write: some reply is waiting.
    pub fn wants_write(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// The client finished sending and has every reply byte: time to close.
    pub fn is_finished(&self) -> bool {
        self.peer_done && self.unsent.is_empty()
    }

    /// One `recv`, then the reply: if nothing is queued, one `send` straight away, and whatever
    /// the kernel does not take is queued. Reads at most what fits under [`MAX_UNSENT`].
    ///
    /// Returns the bytes received; 0 means the client finished sending.
    /// Call only when [`wants_read`](Self::wants_read).
    pub fn receive(&mut self, scratch: &mut [u8]) -> io::Result<usize> {
        let room = MAX_UNSENT - self.unsent.len();
        let len = scratch.len().min(room);
        let n = recv(self.fd(), &mut scratch[..len])?;
        if n == 0 {
            self.peer_done = true;
            return Ok(0);
        }
        let reply = &mut scratch[..n];
        uppercase_in_place(reply);
        let sent = if self.unsent.is_empty() {
            match send(self.fd(), reply) {
                Ok(sent) => sent,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            }
        } else {
            0 // Older bytes are still queued; these go behind them.
        };
        self.unsent.extend_from_slice(&reply[sent..]);
        Ok(n)
    }

    /// One `send` of queued reply bytes. Returns how many the kernel took.
    /// Call only when [`wants_write`](Self::wants_write).
    pub fn flush(&mut self) -> io::Result<usize> {
        let sent = send(self.fd(), &self.unsent)?;
        self.unsent.drain(..sent);
        if self.unsent.is_empty() {
            // Give the memory back: 10,000 idle connections should hold no buffers.
            self.unsent = Vec::new();
        }
        Ok(sent)
    }

    /// What a level-triggered model (select, poll, epoll) does with a ready connection: at most
    /// one `send` of queued bytes, then at most one `recv` (and its reply). The readiness API will
    /// report the socket again if more is waiting. `WouldBlock` is not an error here: readiness
    /// was a hint, and the next wait will tell us again.
    pub fn serve_ready(&mut self, readable: bool, writable: bool, scratch: &mut [u8]) -> io::Result<()> {
        if writable && self.wants_write() {
            ignore_would_block(self.flush())?;
        }
        if readable && self.wants_read() {
            ignore_would_block(self.receive(scratch))?;
        }
        Ok(())
    }
}

fn ignore_would_block(result: io::Result<usize>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(()),
    }
}

/// `recv(2)`, retried if a signal interrupts it.
fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    restart_on_eintr(|| unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// `send(2)` with `MSG_NOSIGNAL`, retried if a signal interrupts it.
fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    restart_on_eintr(|| unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn only_a_to_z_change() {
        let mut all: Vec<u8> = (0..=255).collect();
        uppercase_in_place(&mut all);
        let changed: Vec<usize> = (0..256).filter(|&i| all[i] != i as u8).collect();
        assert_eq!(changed, (usize::from(b'a')..=usize::from(b'z')).collect::<Vec<_>>());
        assert_eq!(&all[usize::from(b'a')..=usize::from(b'z')], b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    }

    /// A stream that returns at most 3 bytes per read and takes at most 2 per write.
    struct Trickle {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let len = buf.len().min(3);
            self.input.read(&mut buf[..len])
        }
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let len = buf.len().min(2);
            self.output.extend_from_slice(&buf[..len]);
            Ok(len)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn echo_survives_short_reads_and_writes() {
        let mut stream = Trickle { input: io::Cursor::new(b"hello, World! 123 xyz".to_vec()), output: Vec::new() };
        echo(&mut stream, &mut [0; 8]).unwrap();
        assert_eq!(stream.output, b"HELLO, WORLD! 123 XYZ");
    }

    fn pair() -> (Conn, UnixStream) {
        let (ours, client) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        client.set_nonblocking(true).unwrap();
        (Conn::new(ours.into()), client)
    }

    #[test]
    fn a_client_that_does_not_read_stops_our_reading_at_max_unsent() {
        let (mut conn, mut client) = pair();
        let chunk = [b'q'; 4096];
        let mut scratch = [0; BUF_SIZE];
        let mut written = 0;
        // Bounded: the socket buffers plus MAX_UNSENT fill long before 64 MiB.
        while conn.wants_read() && written < 64 << 20 {
            match client.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            match conn.receive(&mut scratch) {
                Ok(n) => assert!(n > 0),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert!(!conn.wants_read());
        assert_eq!(conn.unsent(), MAX_UNSENT);

        // The client now reads; everything it sent comes back uppercased, in order.
        let mut reply = Vec::new();
        let mut buf = [0; 8192];
        for _ in 0..1_000_000 {
            if reply.len() >= written {
                break;
            }
            if conn.wants_write() {
                let _ = conn.flush();
            }
            if conn.wants_read() {
                let _ = conn.receive(&mut scratch);
            }
            match client.read(&mut buf) {
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!(reply.len(), written);
        assert!(reply.iter().all(|&b| b == b'Q'));
        assert_eq!(conn.unsent(), 0);
    }

    #[test]
    fn a_half_closed_client_gets_its_reply_then_the_connection_is_finished() {
        let (mut conn, mut client) = pair();
        client.write_all(b"last words").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut scratch = [0; BUF_SIZE];
        assert_eq!(conn.receive(&mut scratch).unwrap(), 10);
        assert!(!conn.is_finished());
        assert_eq!(conn.receive(&mut scratch).unwrap(), 0);
        assert!(conn.is_finished());
        assert!(!conn.wants_read());
        let mut reply = [0; 10];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"LAST WORDS");
    }

    #[test]
    fn a_reset_peer_is_an_error_not_a_signal() {
        let (mut conn, client) = pair();
        drop(client);
        conn.unsent.extend_from_slice(b"too late");
        let err = conn.flush().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }
}
