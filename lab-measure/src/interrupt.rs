//! Ctrl-C and SIGTERM: stop cleanly and keep what was measured.
//!
//! The handlers only set a flag (the one thing a signal handler may safely do). Every loop that
//! waits — for a server to settle, for the load generator, between runs — checks it and returns
//! [`Interrupted`]; the `Drop` of the server kills and reaps its tree, dropping the probe detaches
//! every program. The commands that gather several runs print what they have, marked incomplete,
//! and `main` exits with 128 + the signal number, as a shell does.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicUsize, Ordering},
};

static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the SIGINT and SIGTERM handlers (once).
pub fn install() -> std::io::Result<()> {
    let flag = SIGNAL.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        signal_hook::flag::register_usize(sig, Arc::clone(flag), sig as usize)?;
    }
    Ok(())
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    match SIGNAL.get()?.load(Ordering::Relaxed) {
        0 => None,
        sig => Some(sig as i32),
    }
}

/// `Err(Interrupted)` once a signal has arrived.
pub fn check() -> Result<(), Interrupted> {
    received().map_or(Ok(()), |sig| Err(Interrupted(sig)))
}

/// The error every waiting loop returns after Ctrl-C or SIGTERM.
#[derive(Debug, Clone, Copy)]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// 130 for SIGINT, 143 for SIGTERM.
    pub fn exit_code(self) -> u8 {
        128 + self.0 as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.0 == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
        write!(f, "interrupted by {name}")
    }
}

impl std::error::Error for Interrupted {}

/// The interruption behind `err`, if that is what it is.
pub fn cause(err: &anyhow::Error) -> Option<Interrupted> {
    err.chain().find_map(|e| e.downcast_ref::<Interrupted>().copied())
}
