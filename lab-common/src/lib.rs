//! What the probes count, laid out once for both sides.
//!
//! The kernel side (`lab-ebpf`) writes these `repr(C)` structs into BPF maps and the user side
//! (`lab-measure`) reads them back, so both must agree byte for byte. Keeping them here, in a `no_std`
//! crate with no logic, is the aya-template split: the probe and the loader cannot drift apart.
//!
//! All counters live in one per-CPU struct, [`Counters`]. A per-CPU slot needs no atomic
//! instruction and no lock on the hot path; user space sums the CPUs when it takes a snapshot,
//! which is one `bpf()` call for the whole struct.
#![no_std]

/// Syscall numbers below this are counted one by one; larger ones land in
/// [`Counters::syscall_out_of_range`]. x86_64's highest number is in the 460s.
pub const MAX_SYSCALLS: usize = 512;

/// How many descriptors of a select call's sets the probe reads (the bits set are its
/// `fds_passed`): 40 chunks of 512, each one iteration of lab-ebpf's bounded loop. The kernel
/// scans no fd beyond the caller's fd table, so the sets of a process whose `RLIMIT_NOFILE` is at
/// most this are always read whole. Should a call's `nfds` exceed it, the fds beyond are counted
/// as set (the most the kernel could scan) and in [`Dropped::select_fds`].
pub const MAX_SELECT_FDS: u64 = 20_480;

/// How many tasks (threads and processes) the probe can follow at once.
/// 10,000 connections in the process- or thread-per-connection model need 10,001.
pub const MAX_TRACED_TASKS: u32 = 65_536;

/// How many epoll registrations (process, fd) the probe can track at once.
pub const MAX_EPOLL_MEMBERS: u32 = 65_536;

/// The wait syscalls whose arguments and results the probe records, in [`Counters::wait`] order.
///
/// These are the calls a server blocks in when it multiplexes: "hand the kernel many fds, get back
/// the ready ones". `io_uring_enter` is here because it is where an io_uring server waits.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitKind {
    Select = 0,
    Pselect6,
    Poll,
    Ppoll,
    EpollWait,
    EpollPwait,
    EpollPwait2,
    IoUringEnter,
}

/// Number of [`WaitKind`] variants.
pub const WAIT_KINDS: usize = 8;

/// x86_64 syscall numbers the probe needs to recognise in the kernel, where no name lookup is
/// possible. User space names syscalls with the `syscalls` crate; a unit test checks these
/// numbers against it.
pub mod nr {
    pub const READ: u32 = 0;
    pub const WRITE: u32 = 1;
    pub const CLOSE: u32 = 3;
    pub const POLL: u32 = 7;
    pub const SELECT: u32 = 23;
    pub const EPOLL_WAIT: u32 = 232;
    pub const EPOLL_CTL: u32 = 233;
    pub const PSELECT6: u32 = 270;
    pub const PPOLL: u32 = 271;
    pub const EPOLL_PWAIT: u32 = 281;
    pub const IO_URING_ENTER: u32 = 426;
    pub const EPOLL_PWAIT2: u32 = 441;
    /// What a thread calls, without knowing it, to resume a call the kernel interrupted with
    /// [`super::ERESTART_RESTARTBLOCK`] (poll and ppoll always are; select only with a timeout).
    pub const RESTART_SYSCALL: u32 = 219;
}

/// The return value, seen only by tracers, of a call that a signal (or the freezer) interrupted
/// and that the kernel will resume through `restart_syscall` (include/linux/errno.h).
pub const ERESTART_RESTARTBLOCK: i64 = -516;

impl WaitKind {
    pub const ALL: [WaitKind; WAIT_KINDS] = [
        WaitKind::Select,
        WaitKind::Pselect6,
        WaitKind::Poll,
        WaitKind::Ppoll,
        WaitKind::EpollWait,
        WaitKind::EpollPwait,
        WaitKind::EpollPwait2,
        WaitKind::IoUringEnter,
    ];

    /// The wait kind of syscall number `nr`, if it is one.
    #[inline(always)]
    pub const fn from_syscall(nr: u32) -> Option<WaitKind> {
        Some(match nr {
            nr::SELECT => WaitKind::Select,
            nr::PSELECT6 => WaitKind::Pselect6,
            nr::POLL => WaitKind::Poll,
            nr::PPOLL => WaitKind::Ppoll,
            nr::EPOLL_WAIT => WaitKind::EpollWait,
            nr::EPOLL_PWAIT => WaitKind::EpollPwait,
            nr::EPOLL_PWAIT2 => WaitKind::EpollPwait2,
            nr::IO_URING_ENTER => WaitKind::IoUringEnter,
            _ => return None,
        })
    }

    /// The syscall's name, which is also the name of its `syscalls:sys_{enter,exit}_*` tracepoints.
    pub const fn syscall_name(self) -> &'static str {
        match self {
            WaitKind::Select => "select",
            WaitKind::Pselect6 => "pselect6",
            WaitKind::Poll => "poll",
            WaitKind::Ppoll => "ppoll",
            WaitKind::EpollWait => "epoll_wait",
            WaitKind::EpollPwait => "epoll_pwait",
            WaitKind::EpollPwait2 => "epoll_pwait2",
            WaitKind::IoUringEnter => "io_uring_enter",
        }
    }
}

/// Plain 64-bit counters: what a counter struct may be made of. A struct of these, `repr(C)`, is
/// a flat run of `u64`s with no padding, so it can be summed and subtracted word by word
/// ([`add_words`], [`sub_words`]) without naming its fields: a counter added to [`Counters`] is
/// summed over the CPUs and differenced between snapshots with no further line of code.
///
/// # Safety
/// Implement it only for `u64`, arrays of it, and structs declared with `counters!`.
pub unsafe trait Words: Copy {}
// SAFETY: a u64 is one word; an array of word types is words with no padding.
unsafe impl Words for u64 {}
unsafe impl<T: Words, const N: usize> Words for [T; N] {}

/// Declares a `repr(C)` struct whose fields are all [`Words`] (checked at compile time), and
/// implements [`Words`] for it.
macro_rules! counters {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }
        // SAFETY: repr(C), and every field is Words (the check below fails to compile if not).
        unsafe impl Words for $name {}
        const _: () = {
            const fn is_words<T: Words>() {}
            $(is_words::<$ty>();)*
        };
        impl $name {
            /// Every counter at 0.
            // SAFETY: all-zero bits are a valid u64.
            pub const ZERO: $name = unsafe { core::mem::zeroed() };
        }
        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }
    };
}

fn words<T: Words>(value: &T) -> &[u64] {
    // SAFETY: a Words type is a run of u64s with no padding (see the trait).
    unsafe { core::slice::from_raw_parts((value as *const T).cast::<u64>(), core::mem::size_of::<T>() / 8) }
}

fn words_mut<T: Words>(value: &mut T) -> &mut [u64] {
    // SAFETY: as in `words`; any bit pattern is a valid u64.
    unsafe { core::slice::from_raw_parts_mut((value as *mut T).cast::<u64>(), core::mem::size_of::<T>() / 8) }
}

/// `total += other`, counter by counter: how user space sums the CPUs' copies.
pub fn add_words<T: Words>(total: &mut T, other: &T) {
    for (t, o) in words_mut(total).iter_mut().zip(words(other)) {
        *t = t.wrapping_add(*o);
    }
}

/// `after - before`, counter by counter: what was counted between two snapshots.
pub fn sub_words<T: Words>(after: &T, before: &T) -> T {
    let mut delta = *after;
    for (d, b) in words_mut(&mut delta).iter_mut().zip(words(before)) {
        *d = d.wrapping_sub(*b);
    }
    delta
}

counters! {
    /// What one kind of wait call did, summed over calls.
    /// A figure missing from a saved document (one older than the figure) reads as 0.
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema))]
    #[cfg_attr(feature = "user", serde(default))]
    pub struct WaitStats {
        /// Calls that returned.
        pub calls: u64,
        /// What the call was handed, in that call: for select, the fds set in its sets (read,
        /// write and except, each fd once, read from the caller's memory at entry); poll's
        /// `nfds`; 0 for epoll (its interest list was registered beforehand, with epoll_ctl);
        /// io_uring_enter's `to_submit` (submissions, not fds).
        pub fds_passed: u64,
        /// Descriptors the call watches: the same as `fds_passed` for select and poll, the size
        /// of the epoll instance's interest list at the call; 0 for io_uring_enter.
        pub fds_watched: u64,
        /// Sum of non-negative return values: ready fds (select, poll, epoll) or SQEs consumed (io_uring).
        pub ready: u64,
        /// Calls that returned an error (EINTR, ...).
        pub errors: u64,
        /// Nanoseconds inside the calls with the thread switched out: asleep, or waiting for a CPU.
        pub blocked_ns: u64,
        /// Nanoseconds inside the calls with the thread on a CPU, doing the call's own work
        /// (copying the fds in, scanning them, copying the results out): entry to exit, less
        /// `blocked_ns`, less the interrupts below.
        pub cpu_ns: u64,
        /// Nanoseconds of softirqs that ran inside the calls, on the thread's CPU while it was
        /// current (on loopback, mostly another socket's network receive).
        pub softirq_ns: u64,
        /// Nanoseconds of hard-interrupt handlers that ran inside the calls.
        pub hardirq_ns: u64,
        /// Calls that went to sleep at least once: their thread was switched out voluntarily
        /// inside the call. A select or poll that sleeps walks its fds twice.
        pub slept: u64,
    }
}

/// Softirq vectors (`NR_SOFTIRQS`, include/linux/interrupt.h): HI, TIMER, NET_TX, NET_RX, BLOCK,
/// IRQ_POLL, TASKLET, SCHED, HRTIMER, RCU, in this order; stable since Linux 4.1.
pub const SOFTIRQ_VECTORS: usize = 10;

/// The softirq vectors the lab names apart; the others are shown together.
pub mod softirq {
    pub const TIMER: usize = 1;
    pub const NET_TX: usize = 2;
    pub const NET_RX: usize = 3;
    pub const SCHED: usize = 7;
    pub const RCU: usize = 9;
}

counters! {
    /// Interrupt work that ran on a traced thread's CPU while the thread was current: its time is
    /// in the thread's on-CPU slices, but the work is not the thread's. On loopback a sender's
    /// `sendto()` runs the receiving socket's TCP stack in the NET_RX softirq.
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema))]
    #[cfg_attr(feature = "user", serde(default))]
    pub struct Interrupts {
        /// Softirq nanoseconds by vector ([`SOFTIRQ_VECTORS`]), less any hard interrupt that
        /// ran inside them (counted once, in `hardirq_ns`).
        pub softirq_ns: [u64; SOFTIRQ_VECTORS],
        /// Nanoseconds of hard-interrupt handlers (`irq_handler_entry` to `irq_handler_exit`).
        pub hardirq_ns: u64,
    }
}

counters! {
    /// Switches away from a traced thread, split by the kernel's own rule (`/proc/PID/status`).
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema))]
    pub struct Switches {
        /// It blocked: sleeping, waiting on IO or a lock.
        pub voluntary: u64,
        /// It was still runnable: preempted, or sched_yield.
        pub involuntary: u64,
    }
}

counters! {
    /// io_uring requests of the traced tree, from the kernel's `io_uring` tracepoints: counted
    /// when a traced thread submits one (its submission-polling thread included) and when one of
    /// them posts a completion (the kernel posts them from the task's own work: in
    /// `io_uring_enter`, on its way back to user space, or in the polling thread).
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema))]
    #[cfg_attr(feature = "user", serde(default))]
    pub struct IoUring {
        /// Submission queue entries the kernel took (`io_uring_submit_req`).
        pub submitted: u64,
        /// Completion queue entries posted (`io_uring_complete`): a multishot request posts many.
        pub completed: u64,
    }
}

counters! {
    /// Tasks (processes and threads) the traced tree created, and traced tasks that exited.
    pub struct Tasks {
        pub started: u64,
        /// How many of `started` were processes.
        pub processes_started: u64,
        pub exited: u64,
        /// How many of `exited` were thread-group leaders (processes).
        pub processes_exited: u64,
    }
}

counters! {
    /// What the probe could not count. A field missing from an older saved document reads as 0.
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema))]
    #[cfg_attr(feature = "user", serde(default))]
    pub struct Dropped {
        /// New tasks that could not be followed (tid beyond the map, i.e. pid_max grew after load).
        pub tasks: u64,
        /// Wait calls whose entry could not be stashed (pending map full): not in `wait`.
        pub waits: u64,
        /// epoll_ctl changes that could not be tracked (member or pending map full).
        pub epoll_members: u64,
        /// Descriptors of select calls beyond [`MAX_SELECT_FDS`], not read: counted as set.
        pub select_fds: u64,
        /// Syscalls not timed under `--timing` (another traced thread held their slot).
        pub timed_calls: u64,
    }
}

counters! {
    /// Everything the probe counts for the traced tree. One per CPU; user space sums them.
    ///
    /// A new counter is one field here (in the group it belongs to) and the line in lab-ebpf that
    /// counts it: summing the CPUs and taking differences work on every field (see [`Words`]),
    /// and the groups the results show (`WaitStats`, `Switches`, `Dropped`, `IoUring`) are stored whole.
    pub struct Counters {
        /// Syscalls entered, by number.
        pub syscalls: [u64; MAX_SYSCALLS],
        /// Syscalls entered whose number is `>= MAX_SYSCALLS` (none on x86_64 today).
        pub syscall_out_of_range: u64,
        /// Wait calls, by [`WaitKind`].
        pub wait: [WaitStats; WAIT_KINDS],
        /// Context switches away from traced threads.
        pub switches: Switches,
        /// Tasks the traced tree created and ended.
        pub tasks: Tasks,
        /// What the probe could not follow (all 0 unless a map filled up).
        pub dropped: Dropped,
        /// io_uring submissions and completions.
        pub io_uring: IoUring,
        /// Softirqs and hard interrupts that ran while a traced thread was current.
        pub interrupts: Interrupts,
        /// Nanoseconds the traced tree's threads spent on a CPU, each slice counted when its
        /// thread is switched out (so a thread running at a snapshot is counted at its next switch).
        pub on_cpu_ns: u64,
    }
}

/// The most ready descriptors a single wait call returned, by [`WaitKind`], in lab-ebpf's
/// `MAX_READY` map, one copy per CPU.
///
/// A maximum is not a counter: it cannot be summed over CPUs or differenced between snapshots, so
/// it is not in [`Counters`]. User space takes the largest of the CPUs' copies, and zeroes them
/// all when a measured window opens, so the maximum is over that window's calls.
pub type MaxReady = [u64; WAIT_KINDS];

/// Slots of the probe's per-thread and per-process arrays: an id `i` uses slot `i % TASK_SLOTS`
/// and writes its id there as a tag. Below this `pid_max` (32,768 is the classic default) every id
/// has a slot of its own; above it two traced ids may share one, which the probe notices by the
/// tag and counts as dropped.
pub const TASK_SLOTS: u32 = 65_536;

/// The time of a syscall between its entry and exit: when it entered, how long its thread has
/// been switched out since, and the interrupts that ran on its CPU while it was on one. Entry to
/// exit, less `off_cpu_ns`, less the interrupts, is the call's own on-CPU time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct InCall {
    pub entered_ns: u64,
    /// Time switched out since the entry, and when the thread was last switched out (0 while it
    /// runs).
    pub off_cpu_ns: u64,
    pub switched_out_ns: u64,
    /// The CPU's [`IrqClock`] totals when the thread's current stretch on it began (the entry,
    /// or its return to a CPU), and the interrupt time of the stretches that ended.
    pub mark: IrqTotals,
    pub interrupts: IrqTotals,
    /// 1 once the thread went to sleep inside the call.
    pub slept: u64,
}

/// Softirq and hard-interrupt nanoseconds: a CPU's running totals, or a call's share of them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqTotals {
    pub softirq_ns: u64,
    pub hardirq_ns: u64,
}

/// One CPU's interrupt clock, kept by lab-ebpf's softirq and hard-interrupt programs: what ran
/// there so far, whoever was current, and the interrupt running now.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqClock {
    pub totals: IrqTotals,
    /// When the running softirq began (0 when none), and `totals.hardirq_ns` then: a hard
    /// interrupt inside a softirq is the hard interrupt's time, not the softirq's.
    pub softirq_entered_ns: u64,
    pub hardirq_at_softirq_entry: u64,
    /// When the running hard-interrupt handler began (0 when none).
    pub hardirq_entered_ns: u64,
}

/// A wait call between its entry and exit, in the slot of its thread.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingWait {
    /// `blocked_ns` (switched out) and `cpu_ns` of [`WaitStats`]; `time.entered_ns` is 0 while
    /// the call waits to be resumed by `restart_syscall` (see [`ERESTART_RESTARTBLOCK`]).
    pub time: InCall,
    pub fds_passed: u64,
    pub fds_watched: u64,
    pub kind: u32,
    /// The thread in the wait call; 0 when the slot is free (thread 0 is never traced).
    pub tid: u32,
}

/// Any syscall between its entry and exit under `--timing`, in the slot of its thread.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingSyscall {
    pub time: InCall,
    pub nr: u32,
    /// The thread in the syscall; 0 when the slot is free.
    pub tid: u32,
}

/// Buckets of [`SyscallTime::histogram`]: the last holds every call of 2^30 ns (~1.07 s) or more.
pub const HISTOGRAM_BUCKETS: usize = 32;

/// Which bucket of [`SyscallTime::histogram`] `ns` falls in: 0 for 0 ns, else `i` with
/// `2^(i-1) <= ns < 2^i`, up to the last.
#[inline(always)]
pub const fn histogram_bucket(ns: u64) -> usize {
    let bits = (64 - ns.leading_zeros()) as usize;
    if bits < HISTOGRAM_BUCKETS { bits } else { HISTOGRAM_BUCKETS - 1 }
}

counters! {
    /// One syscall's calls under `--timing`, from each call's entry to its exit (lab-ebpf's
    /// `count_syscall` and `time_exit`). Kept per syscall number in their own per-CPU map, not in
    /// [`Counters`], which would grow by 140 KiB past what one per-CPU map value may hold (32 KiB).
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema))]
    pub struct SyscallTime {
        /// Calls that returned.
        pub calls: u64,
        /// Calls that returned an error (a negative value: EAGAIN, EINTR…).
        pub errors: u64,
        /// Nanoseconds on a CPU inside the calls doing their own work: entry to exit, less the
        /// time switched out, less the interrupts below.
        pub cpu_ns: u64,
        /// Nanoseconds of softirqs inside the calls (a loopback `sendto`'s is the peer's receive).
        #[cfg_attr(feature = "user", serde(default))]
        pub softirq_ns: u64,
        /// Nanoseconds of hard-interrupt handlers inside the calls.
        #[cfg_attr(feature = "user", serde(default))]
        pub hardirq_ns: u64,
        /// Calls by their own on-CPU time, in powers of two: entry 0 counts calls of 0 ns, entry
        /// `i` calls of `2^(i-1)` to `2^i - 1` ns; the last entry also every longer call.
        pub histogram: [u64; HISTOGRAM_BUCKETS],
    }
}

/// When the task running on one CPU was switched in, as lab-ebpf's `count_switch` saw it (0
/// until the probe has seen a switch there), and the CPU's interrupt totals then.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct OnCpu {
    pub since_ns: u64,
    pub irq_at_since: IrqTotals,
}

/// What the probe knows about the task running on one CPU, found out at its first syscall after
/// it was switched in and forgotten when it is switched out (see lab-ebpf's `current_task`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CurrentTask {
    /// [`CurrentTask::UNKNOWN`], [`CurrentTask::UNTRACED`] or [`CurrentTask::TRACED`].
    pub state: u32,
    pub tid: u32,
    pub tgid: u32,
    pub _pad: u32,
}

impl CurrentTask {
    /// Not looked up since the CPU last switched tasks (all-zero: what user space writes to reset).
    pub const UNKNOWN: u32 = 0;
    pub const UNTRACED: u32 = 1;
    pub const TRACED: u32 = 2;
}

/// The size of one process's epoll interest list, in the slot of its process id.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct InterestSize {
    /// The process; 0 when the slot is free.
    pub tgid: u32,
    pub _pad: u32,
    pub fds: u64,
}

/// An epoll_ctl call between entry and exit: the change is applied only if the call succeeds.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingEpollCtl {
    pub epfd: u32,
    pub op: u32,
    pub fd: u32,
    pub _pad: u32,
}

/// A descriptor in a process: `(tgid, fd)`. Keys the epoll maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessFd {
    pub tgid: u32,
    pub fd: u32,
}

/// The kernel's `TASK_COMM_LEN`: a thread's name, NUL-padded.
pub const COMM_LEN: usize = 16;

/// Stack ids in lab-ebpf's `STACK_TRACES` map are non-negative; this one means "no stack": a
/// sample taken in user mode has no kernel stack, a kernel thread no user stack.
pub const NO_STACK: i32 = -1;

/// Under `--profile`: what one on-CPU sample is counted by, in lab-ebpf's `STACK_SAMPLES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackKey {
    pub tgid: u32,
    /// Ids in `STACK_TRACES`, or [`NO_STACK`].
    pub kernel_stack: i32,
    pub user_stack: i32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

/// Under `--profile`: what off-CPU time is counted by, in lab-ebpf's `OFF_CPU`: the thread's
/// process and name, and its kernel stack as it left the CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffCpuKey {
    pub tgid: u32,
    pub kernel_stack: i32,
    pub comm: [u8; COMM_LEN],
}

/// Under `--profile`: a traced thread away from its CPU, in its slot (`tid % TASK_SLOTS`) of
/// lab-ebpf's `OFF_CPU_SLOTS`, from its switch-out to its switch back in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct OffCpuSlot {
    /// When it left (0: it has not left since it last came back).
    pub left_ns: u64,
    /// Since when it has been runnable, waiting for a CPU (0: it is not).
    pub runnable_ns: u64,
    /// The thread; 0 when the slot is free.
    pub tid: u32,
    pub key: OffCpuKey,
    pub _pad: u32,
}

counters! {
    /// Under `--profile`, one per CPU in lab-ebpf's `PROFILE_COUNTERS`: what is not counted by
    /// stack. Zeroed when a window opens.
    pub struct ProfileCounters {
        /// Samples of traced threads whose stacks the kernel could not keep (stack map full, a
        /// hash collision there, a failed walk) or whose key did not fit in `STACK_SAMPLES`.
        pub lost_samples: u64,
        /// Switch-outs whose off-CPU time could not be counted (`OFF_CPU` full).
        pub lost_off_cpu: u64,
        /// Times a traced thread became runnable (woken, or preempted) and then ran.
        pub run_queue_waits: u64,
        /// Their delays, summed, in ns.
        pub run_queue_delay_ns: u64,
        /// The delays by [`histogram_bucket`].
        pub run_queue_histogram: [u64; HISTOGRAM_BUCKETS],
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are repr(C), Copy, with no padding that is read and no pointers.
    unsafe impl aya::Pod for super::Counters {}
    unsafe impl aya::Pod for super::ProcessFd {}
    unsafe impl aya::Pod for super::PendingWait {}
    unsafe impl aya::Pod for super::PendingSyscall {}
    unsafe impl aya::Pod for super::SyscallTime {}
    unsafe impl aya::Pod for super::InterestSize {}
    unsafe impl aya::Pod for super::CurrentTask {}
    unsafe impl aya::Pod for super::OnCpu {}
    unsafe impl aya::Pod for super::IrqClock {}
    unsafe impl aya::Pod for super::PendingEpollCtl {}
    unsafe impl aya::Pod for super::StackKey {}
    unsafe impl aya::Pod for super::OffCpuKey {}
    unsafe impl aya::Pod for super::OffCpuSlot {}
    unsafe impl aya::Pod for super::ProfileCounters {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use syscalls::Sysno;

    #[test]
    fn counters_add_and_subtract_field_by_field() {
        let mut a = Counters::ZERO;
        a.syscalls[0] = 5;
        a.wait[2].ready = 7;
        a.dropped.epoll_members = 1;
        let mut total = Counters::ZERO;
        add_words(&mut total, &a);
        add_words(&mut total, &a);
        assert_eq!((total.syscalls[0], total.wait[2].ready, total.dropped.epoll_members), (10, 14, 2));
        assert_eq!(sub_words(&total, &a), a);
    }

    #[test]
    fn syscall_numbers_match_the_syscalls_crate() {
        assert_eq!(nr::READ, Sysno::read as u32);
        assert_eq!(nr::WRITE, Sysno::write as u32);
        assert_eq!(nr::CLOSE, Sysno::close as u32);
        assert_eq!(nr::EPOLL_CTL, Sysno::epoll_ctl as u32);
        assert_eq!(nr::RESTART_SYSCALL, Sysno::restart_syscall as u32);
        for kind in WaitKind::ALL {
            let sysno: Sysno = kind.syscall_name().parse().unwrap();
            assert_eq!(WaitKind::from_syscall(sysno as u32), Some(kind));
        }
        assert!((Sysno::last() as usize) < MAX_SYSCALLS);
    }

    #[test]
    fn the_profiles_keys_and_slots_have_no_hidden_padding() {
        // The kernel hashes a key's every byte: padding left uninitialised would split one key in two.
        use core::mem::size_of;
        assert_eq!(size_of::<StackKey>(), 4 * 4 + COMM_LEN);
        assert_eq!(size_of::<OffCpuKey>(), 2 * 4 + COMM_LEN);
        assert_eq!(size_of::<OffCpuSlot>(), 2 * 8 + 4 + size_of::<OffCpuKey>() + 4);
    }

    #[test]
    fn histogram_buckets_are_powers_of_two() {
        let buckets = [0, 1, 2, 3, 4, 1023, 1024, 1 << 29, (1 << 30) - 1, 1 << 30, u64::MAX].map(histogram_bucket);
        assert_eq!(buckets, [0, 1, 2, 2, 3, 10, 11, 30, 30, 31, 31]);
    }
}
