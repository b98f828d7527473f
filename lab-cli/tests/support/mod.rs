//! Shared by the tests that run the real `iolab` binary with the real probes: the runner, the
//! lock that serialises them, and the leak check each of them ends with.
//!
//! The tests of a binary run one at a time: each starts servers and loads probes, and two at
//! once would see each other's as leaks. `serial` also makes the test process a child subreaper,
//! so whatever an iolab it started leaves behind is reparented to it, where
//! `Lab::assert_nothing_left` finds it, along with any of the lab's BPF programs still loaded.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Output, Stdio},
    sync::{Mutex, MutexGuard},
    thread::sleep,
    time::{Duration, Instant},
};

pub const IOLAB: &str = env!("CARGO_BIN_EXE_iolab");

/// Runs `iolab ARGS…` to the end, with nothing on its stdin.
pub fn iolab(args: &[&str]) -> Output {
    Command::new(IOLAB).args(args).stdin(Stdio::null()).output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `iolab ARGS…` as a shell runs it, in a process group of its own, and presses Ctrl-C (a
/// SIGINT to the whole group, the load generator too) once `saved` exists: a run it has finished.
pub fn interrupted_once_saved(args: &[&str], saved: &Path) -> Output {
    let child =
        Command::new(IOLAB).args(args).stdin(Stdio::null()).stderr(Stdio::piped()).process_group(0).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !saved.exists() {
        assert!(Instant::now() < deadline, "nothing saved at {} in 60 s", saved.display());
        sleep(Duration::from_millis(20));
    }
    // SAFETY: plain kill(2) on our child's process group, as the terminal does on Ctrl-C.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    child.wait_with_output().unwrap()
}

/// The test lock, for a test that checks what it leaves behind its own way (see `serial`).
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the test lock, and remembers which of our programs someone else had loaded before.
pub struct Lab {
    _guard: MutexGuard<'static, ()>,
    programs_before: Vec<u32>,
}

/// Takes the test lock and makes this process the reaper of anything iolab leaves behind.
pub fn serial() -> Lab {
    let guard = one_at_a_time();
    // SAFETY: plain prctl(2).
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    Lab { _guard: guard, programs_before: our_bpf_programs() }
}

impl Lab {
    /// No process iolab started is left, and no probe it loaded.
    pub fn assert_nothing_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !our_descendants().is_empty() && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        assert_eq!(our_descendants(), Vec::<i32>::new(), "processes left running");
        // The kernel frees a program shortly after its last fd closes (after an RCU grace period).
        let left =
            || -> Vec<u32> { our_bpf_programs().into_iter().filter(|id| !self.programs_before.contains(id)).collect() };
        while !left().is_empty() && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        assert_eq!(left(), Vec::<u32>::new(), "BPF programs left loaded");
    }
}

/// Living processes whose parent is this test process. The test process is a child subreaper,
/// so anything an iolab it started leaves behind is reparented to it and shows up here.
fn our_descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    // Reap what has already exited (our own iolab children are waited for by the tests).
    // SAFETY: plain waitpid(2) without blocking.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| lab_measure::launch::parent_of(pid) == Some(me))
        .collect()
}

/// Ids of loaded BPF programs with the names of the lab's programs, from the kernel's own list
/// (the kernel keeps the first 15 characters of a name).
fn our_bpf_programs() -> Vec<u32> {
    let ours = lab_measure::probe::program_names();
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| p.name_as_str().is_some_and(|name| ours.iter().any(|ours| ours.starts_with(name))))
        .map(|p| p.id())
        .collect()
}
