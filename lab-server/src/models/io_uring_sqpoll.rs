//! # io-uring-sqpoll — io_uring with a kernel thread polling the queue
//!
//! The `io-uring` model's loop — one receive or send in flight per connection, a multishot
//! accept — on a ring set up with `IORING_SETUP_SQPOLL`: the kernel starts a thread
//! (`iou-sqp-PID`) that polls our submission queue, so queuing an operation is a store to shared
//! memory and no syscall at all. The poller also runs the completions' task work, so finished
//! receives and sends appear in the completion queue without our entering the kernel either.
//! Connections are accepted straight into the ring's *registered files* (direct descriptors,
//! 5.19): no fd in the process, no fd lookup per operation, and operations name a slot.
//!
//! **Waiting without a syscall per message.** With nothing in the completion queue the loop
//! polls it [`SPIN_POLLS`] times (about 200 µs on the lab machine), and only then enters
//! `io_uring_enter(GETEVENTS)` to sleep. The spin is counted, not timed: where the clock cannot be
//! read from user space (in a VM without a stable TSC, such as `cargo xtask vm`'s), every
//! `clock_gettime` is a syscall — 8,333 of them in one 1,000-message run before this was changed. Under steady load completions arrive within
//! the spin, so the data path makes no syscalls; the price is CPU: the poller thread spins for up
//! to [`IDLE_MS`] after its last work before it sleeps, and our thread spins once per gap.
//! Both show up as the server's CPU time, not as syscalls — on a machine with few cores they
//! compete with the clients for them.
//!
//! **Where it blocks:** in `io_uring_enter(GETEVENTS)` after a spin found nothing; the poller
//! sleeps in the kernel after `IDLE_MS` without work, and sets `IORING_SQ_NEED_WAKEUP`: the next
//! submission then costs an `io_uring_enter(SQ_WAKEUP)`.
//!
//! **Syscalls per message:** none while completions keep arriving within the spin; one
//! `io_uring_enter` to sleep each time they do not, and one to wake the poller when it slept.
//! Measured on 2 cores: 0.005 per message with 500 connections sending in rounds, but 0.027 with
//! 100 free-running clients and 0.11 with 10,000, where the clients, the poller and our spin share
//! the cores and gaps longer than the spin are common. Per connection: none. The
//! poller is a thread of our process, created by `copy_process` like any thread, so the probe
//! counts its context switches and the run's peak threads include it; what it does for us is
//! work inside the kernel, not syscalls, and appears only as CPU time.
//!
//! **Out of descriptors:** the registered table has as many slots as `RLIMIT_NOFILE` allows
//! (the kernel's cap on it). Accepting into a full table would not leave the connection in the
//! backlog, as `accept4` does on `EMFILE`: the kernel takes it and, finding no slot, closes it.
//! So this model accepts one connection at a time (one submission each, no syscall), and only
//! while a slot is free; the rest wait in the backlog. It never sees an accept fail.
//!
//! **In production** SQPOLL pays off when a core can be dedicated to it (storage engines,
//! high-rate proxies); on shared or small machines the spinning poller costs more than the
//! syscalls it saves.

use std::{hint, io, net::TcpListener};

use ::io_uring::{CompletionQueue, IoUring, Submitter};

use super::io_uring::{CQ_ENTRIES, Files, SQ_ENTRIES, run};
use crate::Model;

pub const MODEL: Model = Model {
    name: "io-uring-sqpoll",
    summary: "io_uring with a kernel thread polling the queue (SQPOLL) and registered files: no syscalls under load",
    serve,
    needs: Some("io_uring SQPOLL without privileges (5.11) and accepting into registered files (5.19)"),
    probe: Some(|| ring().map(drop)),
};

/// How long the poller keeps polling after its last work before it sleeps.
const IDLE_MS: u32 = 10;
/// How often we look at an empty completion queue before sleeping in `io_uring_enter`: each look
/// is an atomic load and a spin-loop hint, 27 ns on the lab's AMD EPYC (so about 200 µs).
const SPIN_POLLS: u32 = 7500;
/// The most registered files the kernel allows (IORING_MAX_FIXED_FILES).
const MAX_FILES: u64 = 1 << 20;

/// The SQPOLL ring with its registered-file table, and the table's size.
fn ring() -> io::Result<(IoUring, usize)> {
    let context = |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let ring = IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .setup_sqpoll(IDLE_MS)
        .build(SQ_ENTRIES)
        .map_err(context("setting up an SQPOLL ring"))?;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscall with a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let slots = limit.rlim_cur.min(MAX_FILES) as usize;
    ring.submitter().register_files_sparse(slots as u32).map_err(context("registering a sparse file table"))?;
    Ok((ring, slots))
}

fn serve(listener: TcpListener) -> io::Result<()> {
    let (ring, slots) = ring()?;
    run(listener, ring, Files::Registered { slots }, wait)
}

/// Wakes the poller if it sleeps (the only syscall submitting can cost), then spins on the
/// completion queue [`SPIN_POLLS`] times, and sleeps in the kernel only if nothing came.
fn wait(submitter: &Submitter<'_>, cq: &mut CompletionQueue<'_>) -> io::Result<()> {
    submitter.submit()?;
    for _ in 0..SPIN_POLLS {
        cq.sync();
        if !CompletionQueue::is_empty(cq) {
            return Ok(());
        }
        hint::spin_loop();
    }
    submitter.submit_and_wait(1).map(drop)
}
