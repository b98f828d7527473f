//! The iolab probes.
//!
//! They answer five questions about one process tree, exactly: which syscalls did it make, what
//! did its wait calls hand the kernel and get back, how often were its threads switched out, how
//! long were they on a CPU, and how much of that time went to interrupts, which run on whatever
//! thread is current (on loopback a sender's `sendto()` runs the receiver's TCP stack in a softirq).
//! The interrupt time is counted apart and taken out of each call's own time, never hidden.
//!
//! The design is syscount's: count in the kernel, read the totals from user space, send no
//! per-event records. Everything is decided by one lookup, "is the current thread traced?", and
//! that lookup runs for every syscall and context switch *on the machine* (the load generator's
//! too), so it is an array indexed by thread id — a bounds check and a load, which the verifier
//! inlines — rather than a hash map.
//!
//! | program          | hook                                     | does                              |
//! |------------------|------------------------------------------|-----------------------------------|
//! | `count_syscall`  | raw tracepoint `sys_enter`               | `syscalls[nr] += 1`; for wait calls, `epoll_ctl` and `close` also what they were handed |
//! | `count_switch`   | raw tracepoint `sched_switch`            | voluntary / involuntary switches; the leaving thread's slice on its CPU, and a wait call's time away; with `--profile`, where a thread left and its time away |
//! | `follow_fork`    | tracepoint `task:task_newtask`           | a traced task's child is traced   |
//! | `forget_task`    | raw tracepoint `sched_process_exit`      | an exiting task is forgotten      |
//! | `wait_exit`      | tracepoints `syscalls:sys_exit_<wait call>` | ready fds out (sum, max), time inside |
//! | `epoll_ctl_exit` | tracepoint `syscalls:sys_exit_epoll_ctl` | applies a successful ADD or DEL   |
//! | `count_submission`, `count_completion` | raw tracepoints `io_uring_submit_req`, `io_uring_complete` | io_uring requests taken and completions posted |
//! | `softirq_begins`, `softirq_ends` | raw tracepoints `softirq_entry`, `softirq_exit` | a softirq's time, by vector, when a traced thread is current; every CPU's running totals |
//! | `hardirq_begins`, `hardirq_ends` | raw tracepoints `irq_handler_entry`, `irq_handler_exit` | the same for hard-interrupt handlers |
//! | `time_exit`      | raw tracepoint `sys_exit`, with `--timing` only  | a syscall's on-CPU time, error, histogram (`count_syscall` notes its entry) |
//! | `sample_stack`   | perf event `cpu-clock` of every CPU, with `--profile` only | a traced thread's sample, counted by its kernel and user stacks |
//! | `mark_runnable`  | raw tracepoints `sched_wakeup`, `sched_wakeup_new`, with `--profile` only | a traced thread is runnable from now (`count_switch` adds its off-CPU time and run-queue delay when it runs again) |
//! | `empty_sys_enter`| raw tracepoint `sys_enter`, by `iolab bench` only | nothing: the floor (below)  |
//!
//! Every tracepoint on syscall entry or exit costs every syscall of the machine something, not
//! only the calls it is for: a raw one runs its program, a `syscalls:*` one a perf hook that
//! checks a bitmap. Measured here (BENCHMARKS.md) the nine `sys_exit_*` hooks cost ~25 ns a
//! syscall; the entry side needs none of its own, because `count_syscall` already sees every
//! entry and reads the few arguments it needs from the saved registers.
//!
//! What no syscall probe can avoid is the hook itself: with any program on `sys_enter`, every
//! syscall of the machine takes the kernel's slow path and runs the program. `empty_sys_enter`
//! measures that floor: `iolab bench` attaches it alone, in place of the others, and compares.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// For `atomic_xadd`: see `probes::atomic_add`.
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

#[cfg(target_arch = "bpf")]
mod probes;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    panic!("lab-ebpf is a BPF program: lab-measure's build script compiles it for bpfel-unknown-none");
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Tracing helpers such as `bpf_probe_read_kernel` are GPL-only.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
