//! Every way of writing a concurrent TCP server, one file each.
//!
//! Each model in [`models`] is a function `fn(TcpListener) -> io::Result<()>` that serves the
//! lab's protocol ([`protocol`]: the reply is the request with ASCII a–z uppercased) on an
//! already-bound listener until its process is killed. The lab runs each model in a process of
//! its own and stops it by terminating that process, so a model needs no shutdown machinery —
//! and its syscall profile contains only what the model itself does.
mod accept;
mod conn_table;
pub mod models;
pub mod protocol;
mod sys;

use std::{
    io,
    net::{SocketAddr, TcpListener},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

/// The listen backlog [`bind`] asks for: 10,000 clients may connect at once, and the kernel caps
/// the backlog at `net.core.somaxconn` (4096 by default) anyway.
pub const BACKLOG: i32 = 4096;

/// One server model: what `--model` takes, a one-line description, and its entry point.
pub struct Model {
    pub name: &'static str,
    pub summary: &'static str,
    /// Serves on `listener` until the process is killed. Returns only on a fatal error.
    pub serve: fn(TcpListener) -> io::Result<()>,
    /// The kernel feature the model needs beyond what every model needs, with the Linux release
    /// that brought it, e.g. "io_uring multishot receive (6.0) and buffer rings (5.19)"; `None`
    /// if it runs on any kernel the lab runs on. What [`Model::unsupported`] checks.
    pub needs: Option<&'static str>,
    /// Tries [`needs`](Self::needs) on the running kernel: `Err` says what refused.
    probe: Option<fn() -> io::Result<()>>,
}

impl Model {
    /// Why this model cannot run on the running kernel — `None` if it can.
    ///
    /// Probes the kernel, not its version: it sets up what the model sets up (a ring with the
    /// model's flags, a buffer ring, an SQPOLL thread...) in the calling process, and tears it
    /// down again. Cheap (a handful of syscalls, a millisecond at most), but not free: call it
    /// when listing models or before starting one, not in a measured process.
    ///
    /// The reason reads "<needs>: <what failed>", e.g. "io_uring multishot receive (6.0) and
    /// buffer rings (5.19): registering a buffer ring: Invalid argument (os error 22)".
    pub fn unsupported(&self) -> Option<String> {
        let probe = self.probe?;
        let err = probe().err()?;
        Some(format!("{}: {err}", self.needs.unwrap_or(self.name)))
    }
}

/// Looks a model up by its `--model` name.
pub fn model(name: &str) -> Option<&'static Model> {
    models::ALL.iter().find(|m| m.name == name)
}

/// The valid `--model` names, for error messages.
pub fn model_names() -> Vec<&'static str> {
    models::ALL.iter().map(|m| m.name).collect()
}

/// `--models all`, `none` or a comma-separated list, checked against the model names. A model
/// named in a list must run on this kernel; `all` keeps every model, and the commands report
/// those this kernel cannot run (see [`Model::unsupported`]). `none` is for `--server` commands alone.
pub fn parse_models(list: &str) -> Result<Vec<String>, String> {
    if list == "all" {
        return Ok(model_names().into_iter().map(String::from).collect());
    }
    if list == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|name| match model(name.trim()) {
            Some(m) => match m.unsupported() {
                None => Ok(m.name.to_owned()),
                Some(reason) => Err(format!("model '{}' is unsupported on this kernel: {reason}", m.name)),
            },
            None => Err(format!("unknown model '{name}' (valid: all, none, {})", model_names().join(", "))),
        })
        .collect()
}

/// `--model`: one model name, checked against the models (`all` or a list is refused).
pub fn parse_model(name: &str) -> Result<String, String> {
    match parse_models(name)?.as_slice() {
        [one] if name != "all" => Ok(one.clone()),
        _ => Err(format!("one model, not a list (valid: {})", model_names().join(", "))),
    }
}

/// Binds a listener with a [`BACKLOG`]-deep accept queue (std's `bind` asks for 128), and
/// `SO_REUSEADDR` and `SO_REUSEPORT` set before binding, so that `epoll-reuseport` can open more
/// listeners on its address. (`SO_REUSEPORT` must be on before the first connection arrives: a
/// connection inherits the option from its listener, and one without it keeps any other socket
/// from binding the port.)
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall; we own the returned fd.
    let socket =
        unsafe { OwnedFd::from_raw_fd(sys::check(libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0))?) };
    sys::set_option(socket.as_raw_fd(), libc::SO_REUSEADDR)?;
    sys::set_option(socket.as_raw_fd(), libc::SO_REUSEPORT)?;
    sys::bind(socket.as_raw_fd(), addr)?;
    // SAFETY: plain syscall on a socket we own.
    sys::check(unsafe { libc::listen(socket.as_raw_fd(), BACKLOG) })?;
    Ok(TcpListener::from(socket))
}
