//! The thin syscall helpers the event-loop models share: turning -1 into an error, retrying a
//! call a signal interrupted, and an epoll instance. Each makes exactly the syscalls its name
//! says, so a model's profile still reads straight off its code.

use std::{
    io, mem,
    net::SocketAddr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use libc::epoll_event;

/// A syscall's return value as a `Result`: negative means `errno` holds the error.
pub fn check(result: i32) -> io::Result<i32> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

/// Makes the call `call` makes until a signal does not interrupt it (`EINTR`), and returns its
/// non-negative result. Used for the wait calls (`select`, `poll`, `epoll_wait`) and for
/// `recv`/`send`: each attempt is one syscall.
pub fn restart_on_eintr(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let result = call();
        if result >= 0 {
            return Ok(result as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The most events one `epoll_wait` returns; the rest wait for the next call.
pub const MAX_EVENTS: usize = 1024;

/// An epoll instance whose events carry the fd they are about (`u64` holds the fd).
pub struct Epoll(OwnedFd);

/// Room for the events of one `epoll_wait`.
pub struct Events(Vec<epoll_event>);

impl Default for Events {
    fn default() -> Self {
        Events(vec![epoll_event { events: 0, u64: 0 }; MAX_EVENTS])
    }
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; we own the returned fd.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) }))
    }

    /// One `epoll_ctl(op)` for `fd`, with the fd itself as the event's data.
    pub fn ctl(&self, op: i32, fd: RawFd, events: u32) -> io::Result<()> {
        let mut event = epoll_event { events, u64: fd as u64 };
        // SAFETY: plain syscall with a valid event.
        check(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut event) }).map(drop)
    }

    /// One `epoll_wait` with no timeout (again if a signal interrupts it): each ready fd with
    /// its events.
    pub fn wait<'e>(&self, events: &'e mut Events) -> io::Result<impl Iterator<Item = (RawFd, u32)> + 'e> {
        let (epfd, list) = (self.0.as_raw_fd(), events.0.as_mut_ptr());
        // SAFETY: `list` holds MAX_EVENTS entries; -1: no timeout.
        let ready = restart_on_eintr(|| unsafe { libc::epoll_wait(epfd, list, MAX_EVENTS as i32, -1) } as isize)?;
        Ok(events.0[..ready].iter().map(|event| (event.u64 as RawFd, event.events)))
    }
}

/// `setsockopt(fd, SOL_SOCKET, option, 1)`.
pub fn set_option(fd: RawFd, option: i32) -> io::Result<()> {
    let on: libc::c_int = 1;
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: plain syscall with a valid int option.
    check(unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, option, (&raw const on).cast(), len) }).map(drop)
}

/// `bind(fd, addr)`.
pub fn bind(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than, and aligned for, sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_scope_id = v6.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `storage` holds a valid address of `len` bytes.
    check(unsafe { libc::bind(fd, (&raw const storage).cast(), len as libc::socklen_t) }).map(drop)
}
