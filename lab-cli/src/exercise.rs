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
