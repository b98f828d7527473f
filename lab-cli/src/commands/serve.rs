//! `iolab serve`: one model, untraced, on a loopback address (or, as the lab starts models, on
//! a listening socket it hands over at a file descriptor), so strace or perf can watch it.

use std::{
    io::Write as _,
    net::{SocketAddr, TcpListener},
    os::fd::FromRawFd as _,
    process::ExitCode,
};

use anyhow::{Context as _, Result};
use clap::Args;

use lab_measure::bad_input;
use lab_server::parse_model;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The model to serve (`iolab models` lists them).
    #[arg(long, short = 'M', value_parser = parse_model)]
    pub model: String,
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0", conflicts_with = "listen_fd")]
    pub addr: SocketAddr,
    /// Serve on an already-listening socket at this fd (how the lab starts models).
    #[arg(long, hide = true)]
    pub listen_fd: Option<i32>,
    /// Allow a non-loopback --addr.
    #[arg(long)]
    pub allow_remote: bool,
}

pub fn serve_command(args: ServeArgs) -> Result<ExitCode> {
    let ServeArgs { model, addr, listen_fd, allow_remote } = args;
    let m = lab_server::model(&model).expect("checked by clap");
    name_the_process(&model);
    let listener = match listen_fd {
        // SAFETY: the lab passes a listening socket at this fd (see `lab_measure::launch`).
        Some(fd) => unsafe { TcpListener::from_raw_fd(fd) },
        None => {
            if !addr.ip().is_loopback() && !allow_remote {
                bad_input!("invalid value '{addr}' for '--addr': servers bind loopback only unless --allow-remote");
            }
            // As the lab binds a model's listener: same backlog, same socket options.
            match lab_server::bind(addr) {
                Ok(listener) => listener,
                Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
                    bad_input!("invalid value '{addr}' for '--addr': the address is in use (port 0 picks a free one)")
                }
                Err(err) => return Err(err).with_context(|| format!("cannot listen on {addr}")),
            }
        }
    };
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    (m.serve)(listener).with_context(|| format!("model {model}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Names this process (and the threads and processes it starts, which inherit the name) for the
/// model, where `ps`, `top` and a flame graph's root show it: started through `/proc/self/exe`,
/// it would be called `exe`. The kernel keeps the first 15 bytes.
fn name_the_process(model: &str) {
    let Ok(name) = std::ffi::CString::new(model) else { return };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string, which `name` is, and keeps a copy.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}
