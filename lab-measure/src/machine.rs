//! What this machine allows and what a syscall costs on it, read before the experiments.
//!
//! The walkthrough says the OS limits how many processes and threads a server can have, and that
//! a syscall is costly; these are the limits as the kernel reports them and one syscall timed in
//! a loop, without a probe (any syscall tracepoint puts every task on the slow path).

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The limits that bound how many processes, threads and fds a server can have here.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct MachineLimits {
    /// RLIMIT_NPROC (soft) of the user the servers run as: processes and threads, per user.
    pub max_user_tasks: Option<u64>,
    /// `kernel.threads-max`: tasks on the whole machine.
    pub threads_max: u64,
    /// `kernel.pid_max`: the highest task id.
    pub pid_max: u64,
    /// `vm.max_map_count`: memory mappings per process (a thread's stack and guard are two).
    pub max_map_count: u64,
    /// RLIMIT_NOFILE (soft, hard): fds per process, one per connection.
    pub open_files: (u64, u64),
    /// The stack each of the `thread` model's threads gets.
    pub thread_stack_kib: u64,
}

impl MachineLimits {
    /// The fewest tasks the machine allows: the bound on processes or threads per connection.
    pub fn max_tasks(&self) -> u64 {
        let machine = self.threads_max.min(self.pid_max);
        self.max_user_tasks.map_or(machine, |user| user.min(machine))
    }
}

/// The limits as this machine has them for iolab, whose servers inherit them.
pub fn limits(thread_stack_bytes: usize) -> MachineLimits {
    let own = procfs::process::Process::myself().and_then(|p| p.limits()).ok();
    let value = |v: procfs::process::LimitValue| match v {
        procfs::process::LimitValue::Unlimited => None,
        procfs::process::LimitValue::Value(n) => Some(n),
    };
    let (max_user_tasks, open_files) = match own {
        Some(l) => (
            value(l.max_processes.soft_limit),
            (
                value(l.max_open_files.soft_limit).unwrap_or(u64::MAX),
                value(l.max_open_files.hard_limit).unwrap_or(u64::MAX),
            ),
        ),
        None => (None, (0, 0)),
    };
    MachineLimits {
        max_user_tasks,
        threads_max: procfs::sys::kernel::threads_max().map_or(0, u64::from),
        pid_max: procfs::sys::kernel::pid_max().map_or(0, |n| n as u64),
        max_map_count: procfs::sys::vm::max_map_count().unwrap_or(0),
        open_files,
        thread_stack_kib: (thread_stack_bytes / 1024) as u64,
    }
}

/// What one `getppid` costs, in ns: the cheapest syscall, timed over a million calls.
pub fn syscall_ns() -> f64 {
    const CALLS: u32 = 1_000_000;
    let started = Instant::now();
    for _ in 0..CALLS {
        // SAFETY: getppid has no arguments and cannot fail.
        std::hint::black_box(unsafe { libc::getppid() });
    }
    started.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

/// poll over more entries than RLIMIT_NOFILE: the errno it fails with (`None` if it did not).
/// The entries are fd -1, which poll skips, so only the count is tested.
pub fn poll_beyond_open_files_limit() -> Option<i32> {
    let (soft, _) = limits(0).open_files;
    let entries = usize::try_from(soft).ok()?.checked_add(1)?;
    let mut fds = vec![libc::pollfd { fd: -1, events: libc::POLLIN, revents: 0 }; entries];
    // SAFETY: `fds` holds `entries` valid pollfd structs; timeout 0 never blocks.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), entries as libc::nfds_t, 0) };
    (rc < 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_bound_is_the_smallest_limit() {
        let limits =
            MachineLimits { max_user_tasks: Some(500), threads_max: 1000, pid_max: 4_000_000, ..Default::default() };
        assert_eq!(limits.max_tasks(), 500);
        assert_eq!(MachineLimits { max_user_tasks: None, ..limits }.max_tasks(), 1000);
    }

    #[test]
    fn poll_refuses_more_entries_than_open_files() {
        assert_eq!(poll_beyond_open_files_limit(), Some(libc::EINVAL));
    }
}
