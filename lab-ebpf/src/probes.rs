//! The programs and maps; see the table in `main.rs`.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use core::ptr::addr_of;

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel,
        generated::bpf_probe_read_user as bpf_probe_read_user_raw,
    },
    macros::{map, perf_event, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, PerCpuArray, StackTrace},
    programs::{PerfEventContext, RawTracePointContext, TracePointContext, tracing::StackIdContext as _},
};
use aya_log_ebpf::warn;
use lab_common::{
    COMM_LEN, Counters, CurrentTask, ERESTART_RESTARTBLOCK, InCall, InterestSize, IrqClock, IrqTotals,
    MAX_EPOLL_MEMBERS, MAX_SELECT_FDS, MAX_SYSCALLS, MAX_TRACED_TASKS, MaxReady, NO_STACK, OffCpuKey, OffCpuSlot,
    OnCpu, PendingEpollCtl, PendingSyscall, PendingWait, ProcessFd, ProfileCounters, StackKey, SyscallTime, TASK_SLOTS,
    WAIT_KINDS, WaitKind, WaitStats, add_words, histogram_bucket, nr,
};

/// 1 at index `tid` for every traced thread. Sized to the kernel's `pid_max` by the loader.
#[map]
static TRACED_TASKS: Array<u8> = Array::with_max_entries(1, 0);

/// Per CPU: when the task running there was switched in (see [`count_switch`]).
#[map]
static ON_CPU: PerCpuArray<OnCpu> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: the softirq and hard-interrupt time that ran there, and the interrupt running now
/// (see [`softirq_ends`]).
#[map]
static IRQ_CLOCK: PerCpuArray<IrqClock> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: is the task running there traced, and its ids (see [`current_task`]).
#[map]
static CURRENT_TASK: PerCpuArray<CurrentTask> = PerCpuArray::with_max_entries(1, 0);

/// All counters, one copy per CPU (see `lab_common::Counters`).
#[map]
static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: the most ready descriptors one wait call returned, by kind (see
/// `lab_common::MaxReady`); user space takes the max over CPUs and zeroes it when a window opens.
#[map]
static MAX_READY: PerCpuArray<MaxReady> = PerCpuArray::with_max_entries(1, 0);

/// Wait calls in flight, in their thread's slot (`tid % TASK_SLOTS`): what was handed in, and
/// when. An array, not a hash map keyed by tid: a wait call is on the hot path of every
/// multiplexing server, and a slot is a plain load and store where a hash map takes a bucket lock
/// to insert and again to delete.
#[map]
static PENDING_WAITS: Array<PendingWait> = Array::with_max_entries(TASK_SLOTS, 0);

/// Under `--timing`: every syscall in flight, in its thread's slot (`tid % TASK_SLOTS`), as
/// [`PENDING_WAITS`] holds the wait calls.
#[map]
static PENDING_SYSCALLS: Array<PendingSyscall> = Array::with_max_entries(TASK_SLOTS, 0);

/// Under `--timing`: calls, errors and on-CPU time by syscall number, one copy per CPU.
#[map]
static SYSCALL_TIMES: PerCpuArray<SyscallTime> = PerCpuArray::with_max_entries(MAX_SYSCALLS as u32, 0);

/// Non-zero when the probe was loaded for `--timing` (set by the loader; read-only, so the
/// verifier drops the code it guards when it is 0: without `--timing`, `count_syscall` and the
/// switch hook run none of the timing code).
#[unsafe(no_mangle)]
static TIMING: u32 = 0;

/// Non-zero when the probe was loaded for `--profile` (set by the loader; read-only, as
/// [`TIMING`]): without it `count_switch` runs none of the off-CPU and run-queue code, and the
/// profile's programs are neither loaded nor attached.
#[unsafe(no_mangle)]
static PROFILE: u32 = 0;

/// Offset of `pid` in `struct task_struct`, from the kernel's BTF (set by the loader under
/// `--profile`): the scheduler's tracepoints pass tasks, and only their pid says if one is traced.
#[unsafe(no_mangle)]
static TASK_PID_OFFSET: u32 = 0;

/// Under `--profile`: every stack a sample or a switch-out recorded, kernel and user, by id. Never
/// cleared, so an id stays valid across windows. 16,384 entries, as bcc's `profile` and
/// `offcputime` use: a server's distinct stacks over a run are a few thousand at most, and the
/// map is hashed by stack, so it fails (a lost sample) on collisions well before it is full.
/// 127 frames of 8 bytes each: 16 MiB, allocated only with `--profile` (the loader sizes it to
/// 1 entry otherwise).
#[map]
static STACK_TRACES: StackTrace = StackTrace::with_max_entries(PROFILE_STACKS, 0);

/// Under `--profile`: on-CPU samples of traced threads by (process, name, kernel stack, user
/// stack). As many keys as stacks: each key holds at least one new stack or a new name.
#[map]
static STACK_SAMPLES: HashMap<StackKey, u64> = HashMap::with_max_entries(PROFILE_STACKS, 0);

/// Under `--profile`: off-CPU ns of traced threads by (process, name, kernel stack as they left).
#[map]
static OFF_CPU: HashMap<OffCpuKey, u64> = HashMap::with_max_entries(PROFILE_STACKS, 0);

/// Under `--profile`: each traced thread away from its CPU, in its slot (`tid % TASK_SLOTS`), an
/// array for the reason [`PENDING_WAITS`] is one: `count_switch` runs at every switch.
#[map]
static OFF_CPU_SLOTS: Array<OffCpuSlot> = Array::with_max_entries(TASK_SLOTS, 0);

/// Under `--profile`: lost samples and run-queue delay, one copy per CPU.
#[map]
static PROFILE_COUNTERS: PerCpuArray<ProfileCounters> = PerCpuArray::with_max_entries(1, 0);

/// Under `--profile`: when the window opened, by this clock (set by user space): time away
/// that began before it counts from it.
#[map]
static PROFILE_SINCE: Array<u64> = Array::with_max_entries(1, 0);

/// Entries of the profile's stack maps (see [`STACK_TRACES`]).
const PROFILE_STACKS: u32 = 16_384;

/// `bpf_get_stackid`'s flag for the user stack; its error when there is no stack to walk (user
/// mode has no kernel stack, a kernel thread no user stack): not a lost sample.
const BPF_F_USER_STACK: u64 = 1 << 8;
const EFAULT: i32 = 14;

/// epoll_ctl calls in flight, by thread id: applied on success only.
#[map]
static PENDING_EPOLL_CTLS: HashMap<u32, PendingEpollCtl> = HashMap::with_max_entries(MAX_TRACED_TASKS, 0);

/// How many epoll registrations each fd of a traced process has: (tgid, fd) -> count (almost
/// always 1). Closing the fd drops them all, without an epoll_ctl call.
#[map]
static EPOLL_MEMBERS: HashMap<ProcessFd, u64> = HashMap::with_max_entries(MAX_EPOLL_MEMBERS, 0);

/// Registered fds per process, in the process's slot (`tgid % TASK_SLOTS`): the size of its epoll
/// interest list, read at every epoll wait.
///
/// Kept per process, not per epoll fd, because one epoll instance often has several fds: tokio
/// (mio) registers through a `dup` of the fd it waits on. Every model here has one instance per
/// process; a server with several would show their sum.
#[map]
static EPOLL_SIZES: Array<InterestSize> = Array::with_max_entries(TASK_SLOTS, 0);

/// Offsets of `pid` and `clone_flags` in the `task:task_newtask` record. Record layouts change
/// between kernels, so the loader reads them from tracefs and sets them here before loading.
#[unsafe(no_mangle)]
static NEWTASK_PID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static NEWTASK_FLAGS_OFFSET: u32 = 0;

/// Where [`count_switch`] finds the leaving task's state. 0 on kernels whose `sched_switch` passes
/// it (`prev_state`, Linux 5.18); before that the tracepoint has three arguments, and this is the
/// offset of the state in `struct task_struct`, which the loader reads from the kernel's BTF.
/// Read-only, so the verifier keeps only the path this kernel takes: a program that reads a
/// fourth argument does not attach where there are three.
#[unsafe(no_mangle)]
static TASK_STATE_OFFSET: u32 = 0;

/// Offset of `ret` in every `syscalls:sys_exit_*` record (stable since the format was added).
const EXIT_RET_OFFSET: usize = 16;

const EPOLL_CTL_ADD: u32 = 1;
const EPOLL_CTL_DEL: u32 = 2;
const BPF_NOEXIST: u64 = 1;
const CLONE_THREAD: u64 = 0x10000;

#[inline(always)]
fn current_ids() -> (u32, u32) {
    let id = bpf_get_current_pid_tgid();
    ((id >> 32) as u32, id as u32)
}

#[inline(always)]
fn is_traced(tid: u32) -> bool {
    matches!(TRACED_TASKS.get(tid), Some(&1))
}

/// The task running on this CPU, if it is traced: its `(tgid, tid)`.
///
/// The hot path's one question, "is the current thread traced?", is asked on every syscall of
/// the machine, but its answer only changes when the CPU switches tasks. So the answer is kept per
/// CPU: the first syscall after a switch asks the kernel for the thread id (a helper call) and
/// looks it up in `TRACED_TASKS`; the next ones read the per-CPU slot, a load the verifier
/// inlines. `count_switch` forgets the answer whenever the CPU switches tasks, and user space
/// resets every CPU's slot after it marks a task or re-attaches the probe.
#[inline(always)]
fn current_task() -> Option<(u32, u32)> {
    // SAFETY: this CPU's slot; programs on one CPU do not preempt each other.
    let slot = unsafe { &mut *CURRENT_TASK.get_ptr_mut(0)? };
    if slot.state == CurrentTask::UNKNOWN {
        let (tgid, tid) = current_ids();
        let state = if is_traced(tid) { CurrentTask::TRACED } else { CurrentTask::UNTRACED };
        *slot = CurrentTask { state, tid, tgid, _pad: 0 };
    }
    (slot.state == CurrentTask::TRACED).then_some((slot.tgid, slot.tid))
}

/// Forgets which task runs on this CPU: it is about to switch to another.
#[inline(always)]
fn forget_current_task() {
    if let Some(slot) = CURRENT_TASK.get_ptr_mut(0) {
        // SAFETY: as in `current_task`.
        unsafe { (*slot).state = CurrentTask::UNKNOWN };
    }
}

#[inline(always)]
fn counters() -> Option<&'static mut Counters> {
    // SAFETY: per-CPU slot; BPF programs do not preempt each other on one CPU.
    COUNTERS.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// Adds `delta` to a value shared by all CPUs (an epoll instance used by several threads).
#[inline(always)]
fn atomic_add(value: *mut u64, delta: u64) {
    // The BPF target has no compare-and-swap, so core's AtomicU64 offers no fetch_add; the
    // intrinsic lowers to BPF's atomic add instruction (the result is unused).
    // SAFETY: `value` points into a live map value.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(value, delta) };
}

/// The hot path: it runs on every syscall of every process on the machine. An untraced thread
/// costs one array load and returns; a traced one adds one to its CPU's own counter (per-CPU: no
/// atomic instruction, no cache line moving between CPUs; user space sums the copies in one
/// `bpf()` call per snapshot). No ring buffer: totals are all the lab needs, and a record per
/// syscall is what `perf trace` does, at a far higher cost (BENCHMARKS.md).
///
/// The ten calls whose arguments matter (the eight wait calls, `epoll_ctl`, `close`) are handled
/// here too, reading the arguments from the saved user registers, rather than by their own
/// `syscalls:sys_enter_*` tracepoints: attaching any of those puts a perf hook on every syscall of
/// the machine (measured: dropping them took a `getppid` from 179 to 121 ns, BENCHMARKS.md).
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn count_syscall(ctx: RawTracePointContext) -> i32 {
    let Some((tgid, tid)) = current_task() else {
        return 0;
    };
    let nr: u64 = ctx.arg(1);
    if let Some(c) = counters() {
        if nr < MAX_SYSCALLS as u64 {
            c.syscalls[nr as usize] += 1;
        } else {
            c.syscall_out_of_range += 1;
        }
    }
    if timing() {
        time_enter(tid, nr);
    }
    let regs: *const pt_regs = ctx.arg(0);
    match nr as u32 {
        nr::EPOLL_CTL => epoll_ctl_enter(tid, regs),
        nr::CLOSE => close_enter(tgid, regs),
        nr::RESTART_SYSCALL => wait_resumed(tid),
        n => {
            if let Some(kind) = WaitKind::from_syscall(n) {
                wait_enter(tgid, tid, kind, regs);
            }
        }
    }
    0
}

// The syscall arguments are read from x86_64's saved registers, and the syscall numbers the probe
// recognises (`lab_common::nr`) are x86_64's: another architecture needs both.
#[cfg(not(bpf_target_arch = "x86_64"))]
compile_error!("the iolab probes read x86_64 syscall registers and numbers; this host is not x86_64");

/// Syscall argument `n` (0-based) from the user registers saved at entry (x86_64 ABI).
#[inline(always)]
fn syscall_arg(regs: *const pt_regs, n: usize) -> u64 {
    // SAFETY: `regs` is the tracepoint's pointer to this task's saved registers; the read is
    // checked by bpf_probe_read_kernel.
    unsafe {
        let field = match n {
            0 => addr_of!((*regs).rdi),
            1 => addr_of!((*regs).rsi),
            2 => addr_of!((*regs).rdx),
            _ => addr_of!((*regs).r10),
        };
        bpf_probe_read_kernel(field).unwrap_or(0)
    }
}

/// `TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)`
/// (without `prev_state` before 5.18: see [`TASK_STATE_OFFSET`]). It fires on the CPU that
/// switches, before the switch, so the current task is `prev`.
///
/// Every switch on a CPU ends the slice of the task leaving it and starts the slice of the one
/// arriving, so the time since the CPU's previous switch ([`ON_CPU`]) is the leaving task's
/// slice: a traced thread's slices sum to the tree's on-CPU time, and a wait call's thread that
/// left inside the call and is leaving again came back when this slice began. Nothing here needs
/// to name the arriving task, so one raw program per switch does it all. (A tracepoint program,
/// which could read the arriving task's pid from the record, runs only when the kernel's
/// recursion guards let it: on a CPU where `bpf_prog_active` is held it is skipped, and a
/// missed arrival would lose that whole slice.)
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn count_switch(ctx: RawTracePointContext) -> i32 {
    let now = unsafe { bpf_ktime_get_ns() };
    let irq_now = irq_totals();
    let began = match ON_CPU.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; programs on one CPU do not preempt each other.
        Some(slot) => unsafe { core::mem::replace(&mut *slot, OnCpu { since_ns: now, irq_at_since: irq_now }) },
        None => OnCpu::default(),
    };
    let current = current_task();
    forget_current_task();
    if profile() {
        comes_back(&ctx, now);
    }
    let Some((tgid, tid)) = current else {
        return 0;
    };
    let preempt: u64 = ctx.arg(0);
    // The kernel's own rule for nvcsw/nivcsw (/proc/PID/status): a switch is voluntary when the
    // task was not preempted and had left TASK_RUNNING, i.e. it went to sleep.
    let voluntary = preempt & 1 == 0 && leaving_state(&ctx) != 0;
    if profile() {
        leaves(&ctx, tgid, tid, now, voluntary);
    }
    // A thread switched out inside a wait call: its off-CPU time starts.
    if let Some(slot) = pending_wait(tid)
        && slot.tid == tid
    {
        switched_out(&mut slot.time, &began, now, &irq_now, voluntary);
    }
    if timing()
        && let Some(slot) = pending_syscall(tid)
        && slot.tid == tid
    {
        switched_out(&mut slot.time, &began, now, &irq_now, voluntary);
    }
    if let Some(c) = counters() {
        if began.since_ns != 0 {
            c.on_cpu_ns += now.saturating_sub(began.since_ns); // 0: the slice began before the probe saw the CPU
        }
        if voluntary {
            c.switches.voluntary += 1;
        } else {
            c.switches.involuntary += 1;
        }
    }
    0
}

/// The state `count_switch`'s leaving task left `TASK_RUNNING` for (0: it did not). Read from the
/// task where the tracepoint does not pass it: that is the state after `__schedule` looked at it,
/// which differs from the argument only when a signal was pending as the task went to sleep (the
/// kernel then puts it back to running, yet counts the switch as voluntary).
#[inline(always)]
fn leaving_state(ctx: &RawTracePointContext) -> u32 {
    // SAFETY: a plain u32 set by the loader before the program is loaded.
    let at = unsafe { core::ptr::read_volatile(&TASK_STATE_OFFSET) };
    if at == 0 {
        let state: u64 = ctx.arg(3);
        return state as u32;
    }
    let prev: *const u8 = ctx.arg(1);
    // SAFETY: `prev` is the tracepoint's task; the read is checked by bpf_probe_read_kernel. The
    // state is a long before 5.14 and an unsigned int after: its low 32 bits hold every state.
    unsafe { bpf_probe_read_kernel(prev.wrapping_add(at as usize).cast::<u32>()) }.unwrap_or(0)
}

/// Fires in the parent while it creates a task — a process or a thread (`CLONE_THREAD`) — before
/// the child first runs: the child is traced from its first instruction.
#[tracepoint(category = "task", name = "task_newtask")]
pub fn follow_fork(ctx: TracePointContext) -> u32 {
    let (_, tid) = current_ids();
    if !is_traced(tid) {
        return 0;
    }
    // SAFETY: plain u32s set by the loader before the program is loaded; the offsets come from
    // this kernel's format file for this tracepoint.
    let (pid_at, flags_at) =
        unsafe { (core::ptr::read_volatile(&NEWTASK_PID_OFFSET), core::ptr::read_volatile(&NEWTASK_FLAGS_OFFSET)) };
    let Ok(child) = (unsafe { ctx.read_at::<u32>(pid_at as usize) }) else {
        return 0;
    };
    let flags = unsafe { ctx.read_at::<u64>(flags_at as usize) }.unwrap_or(0);
    let Some(c) = counters() else { return 0 };
    if TRACED_TASKS.set(child, 1, 0).is_err() {
        warn!(&ctx, "iolab: cannot follow task {}: pid_max grew after load", child);
        c.dropped.tasks += 1;
        return 0;
    }
    c.tasks.started += 1;
    if flags & CLONE_THREAD == 0 {
        c.tasks.processes_started += 1;
    }
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn forget_task(_ctx: RawTracePointContext) -> i32 {
    let (tgid, tid) = current_ids();
    if is_traced(tid) {
        let _ = TRACED_TASKS.set(tid, 0, 0);
        forget_current_task(); // this CPU knew it as traced: its last switch is not counted
        if let Some(pending) = pending_wait(tid)
            && pending.tid == tid
        {
            pending.tid = 0;
        }
        if timing()
            && let Some(pending) = pending_syscall(tid)
            && pending.tid == tid
        {
            pending.tid = 0;
        }
        if profile()
            && let Some(slot) = off_cpu_slot(tid)
            && slot.tid == tid
        {
            slot.tid = 0;
        }
        let _ = PENDING_EPOLL_CTLS.remove(tid);
        if let Some(c) = counters() {
            c.tasks.exited += 1;
            // A process ends when its thread-group leader (tid == tgid) does.
            if tid == tgid {
                c.tasks.processes_exited += 1;
                if let Some(size) = interest_size(tgid)
                    && size.tgid == tgid
                {
                    size.tgid = 0;
                }
            }
        }
    }
    0
}

/// The slot of thread `tid` in [`PENDING_WAITS`].
#[inline(always)]
fn pending_wait(tid: u32) -> Option<&'static mut PendingWait> {
    // SAFETY: a live array value; only its own thread writes a slot it has tagged.
    PENDING_WAITS.get_ptr_mut(tid % TASK_SLOTS).map(|p| unsafe { &mut *p })
}

/// The slot of thread `tid` in [`PENDING_SYSCALLS`].
#[inline(always)]
fn pending_syscall(tid: u32) -> Option<&'static mut PendingSyscall> {
    // SAFETY: a live array value; only its own thread writes a slot it has tagged.
    PENDING_SYSCALLS.get_ptr_mut(tid % TASK_SLOTS).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn profile() -> bool {
    // SAFETY: a plain u32 set by the loader before the program is loaded.
    unsafe { core::ptr::read_volatile(&PROFILE) != 0 }
}

#[inline(always)]
fn timing() -> bool {
    // SAFETY: a plain u32 set by the loader before the program is loaded.
    unsafe { core::ptr::read_volatile(&TIMING) != 0 }
}

/// A call that enters now, on this CPU.
#[inline(always)]
fn call_enters() -> InCall {
    InCall { entered_ns: unsafe { bpf_ktime_get_ns() }, mark: irq_totals(), ..InCall::default() }
}

/// A call returns at `now`, on the CPU whose switch-in is `on_cpu` and whose interrupt totals
/// are `irq_now`: its stretch there ends, and its time from entry is split into (its own on-CPU
/// time, time switched out). The interrupts inside it are left in `call.interrupts`.
#[inline(always)]
fn call_returns(call: &mut InCall, on_cpu: &OnCpu, now: u64, irq_now: &IrqTotals) -> (u64, u64) {
    back_since(call, on_cpu);
    stretch_ends(call, irq_now);
    let inside = now.saturating_sub(call.entered_ns);
    let off_cpu = call.off_cpu_ns.min(inside);
    let interrupts = call.interrupts.softirq_ns + call.interrupts.hardirq_ns;
    ((inside - off_cpu).saturating_sub(interrupts), off_cpu)
}

/// The thread of a call leaves its CPU at `now`, after a slice there that `began`: its stretch
/// on that CPU ends, and its time away starts.
#[inline(always)]
fn switched_out(call: &mut InCall, began: &OnCpu, now: u64, irq_now: &IrqTotals, voluntary: bool) {
    back_since(call, began);
    stretch_ends(call, irq_now);
    call.switched_out_ns = now;
    if voluntary {
        call.slept = 1;
    }
}

/// The thread of a call has been on this CPU since `on_cpu.since_ns` (a switch [`count_switch`]
/// saw): if it had left inside the call, it came back then, the time away is off-CPU time, and
/// its stretch on this CPU began with the CPU's interrupt totals of that switch.
#[inline(always)]
fn back_since(call: &mut InCall, on_cpu: &OnCpu) {
    if call.switched_out_ns != 0 {
        call.off_cpu_ns += on_cpu.since_ns.saturating_sub(call.switched_out_ns);
        call.switched_out_ns = 0;
        call.mark = on_cpu.irq_at_since;
    }
}

/// The call's stretch on a CPU ends: the interrupts that ran there since its mark were inside it.
#[inline(always)]
fn stretch_ends(call: &mut InCall, irq_now: &IrqTotals) {
    call.interrupts.softirq_ns += irq_now.softirq_ns.saturating_sub(call.mark.softirq_ns);
    call.interrupts.hardirq_ns += irq_now.hardirq_ns.saturating_sub(call.mark.hardirq_ns);
    call.mark = *irq_now;
}

/// When the task running on this CPU was switched in (`since_ns` 0 if the probe has not seen it).
#[inline(always)]
fn on_cpu() -> OnCpu {
    // SAFETY: this CPU's slot, read by a program of the task running there.
    ON_CPU.get_ptr_mut(0).map_or(OnCpu::default(), |slot| unsafe { *slot })
}

/// This CPU's interrupt totals so far.
#[inline(always)]
fn irq_totals() -> IrqTotals {
    // SAFETY: this CPU's slot; an interrupt program that updates it runs to completion first.
    IRQ_CLOCK.get_ptr_mut(0).map_or(IrqTotals::default(), |clock| unsafe { (*clock).totals })
}

/// The slot of process `tgid` in [`EPOLL_SIZES`].
#[inline(always)]
fn interest_size(tgid: u32) -> Option<&'static mut InterestSize> {
    // SAFETY: a live array value; the size is changed with atomic adds only.
    EPOLL_SIZES.get_ptr_mut(tgid % TASK_SLOTS).map(|p| unsafe { &mut *p })
}

/// Stashes what a wait call was handed, and when, until its `sys_exit` tracepoint.
#[inline(always)]
fn wait_enter(tgid: u32, tid: u32, kind: WaitKind, regs: *const pt_regs) {
    let (fds_passed, fds_watched) = match kind {
        WaitKind::Select | WaitKind::Pselect6 => {
            let set = select_fds_set(regs);
            (set, set)
        }
        WaitKind::Poll | WaitKind::Ppoll => (syscall_arg(regs, 1), syscall_arg(regs, 1)), // nfds: pollfd entries
        WaitKind::IoUringEnter => (syscall_arg(regs, 1), 0),                              // to_submit
        WaitKind::EpollWait | WaitKind::EpollPwait | WaitKind::EpollPwait2 => match interest_size(tgid) {
            // Nothing handed in; the interest list is watched. A plain read: a concurrent
            // epoll_ctl can only make it off by one.
            Some(size) if size.tgid == tgid => (0, size.fds),
            _ => (0, 0),
        },
    };
    let Some(slot) = pending_wait(tid) else { return };
    if slot.tid != 0 && slot.tid != tid {
        // Another traced thread whose id shares this slot is in a wait call (pid_max > TASK_SLOTS).
        if let Some(c) = counters() {
            c.dropped.waits += 1;
        }
        return;
    }
    *slot = PendingWait { time: call_enters(), fds_passed, fds_watched, kind: kind as u32, tid };
}

/// Words of a select fd set read with one helper call (a 512-fd chunk).
const CHUNK_WORDS: u64 = 8;

/// The fds set in a select call's three sets (read, write, except; each fd once), among its
/// first `nfds`: the fds it hands the kernel. select and pselect6 take `(nfds, readfds, writefds,
/// exceptfds, …)`; each set is `ceil(nfds / 64)` words, bit `fd % 64` of word `fd / 64`, and the
/// kernel reads exactly that many words and ignores the bits from `nfds` up. So does this: whole
/// chunks of 8 words, then the last 1 to 8 words one by one, never past the caller's last word.
///
/// Only select and pselect6 pay for this: three helper calls per 512 fds, and up to 24 for the
/// last words. Nothing inside an iteration branches (a null or unreadable set reads as zeros,
/// which the helper writes when a read faults), so the verifier walks each iteration once.
/// Fds beyond [`MAX_SELECT_FDS`] are not read: they count as set, and in `dropped.select_fds`.
#[inline(always)]
fn select_fds_set(regs: *const pt_regs) -> u64 {
    let nfds = syscall_arg(regs, 0) & 0xffff_ffff; // an int
    let sets = [syscall_arg(regs, 1), syscall_arg(regs, 2), syscall_arg(regs, 3)];
    let read = nfds.min(MAX_SELECT_FDS);
    if read < nfds
        && let Some(c) = counters()
    {
        c.dropped.select_fds += nfds - read;
    }
    let words = read.div_ceil(64);
    // Whole chunks before the last word, which is always read alone (its bits from `read` up
    // must not count): 1 to 8 words are left for the second loop.
    let chunks = words.saturating_sub(1) / CHUNK_WORDS;
    let mut set = nfds - read;
    let mut union = [0u64; CHUNK_WORDS as usize];
    let mut chunk = [0u64; CHUNK_WORDS as usize];
    for i in 0..MAX_SELECT_FDS / 64 / CHUNK_WORDS {
        if i >= chunks {
            break;
        }
        let at = i * CHUNK_WORDS * 8;
        read_user(&mut union, sets[0] + at);
        for &base in &sets[1..] {
            read_user(&mut chunk, base + at);
            for k in 0..CHUNK_WORDS as usize {
                union[k] |= chunk[k];
            }
        }
        for u in union {
            set += u.count_ones() as u64;
        }
    }
    for k in 0..CHUNK_WORDS {
        let word = chunks * CHUNK_WORDS + k;
        if word >= words {
            break;
        }
        let mut union = 0u64;
        for &base in &sets {
            let mut w = 0u64;
            read_user(&mut w, base + word * 8);
            union |= w;
        }
        if word == words - 1 {
            union &= u64::MAX >> (read.wrapping_neg() & 63); // the bits below `read` only
        }
        set += union.count_ones() as u64;
    }
    set
}

/// Reads `*into` from user memory at `at`; zeroes if it faults (a null set).
#[inline(always)]
fn read_user<T>(into: &mut T, at: u64) {
    // SAFETY: the helper writes exactly size_of::<T>() bytes to `into`: the user bytes, or zeros
    // if the read faults. T is u64 or an array of them here, for which any bits are valid.
    unsafe {
        bpf_probe_read_user_raw(
            (into as *mut T).cast(),
            core::mem::size_of::<T>() as u32,
            at as *const core::ffi::c_void,
        )
    };
}

/// A thread resumes an interrupted call through `restart_syscall`: if that call is its pending
/// wait call, time it again from here (its exit comes through `sys_exit_restart_syscall`).
///
/// The kernel does not say which call `restart_syscall` resumes; a pending wait call left
/// waiting to be resumed is taken to be it. That is wrong only if a signal handler turned the
/// interruption into EINTR and the thread's next resumed call is another one (a sleep), with no
/// wait call in between.
#[inline(always)]
fn wait_resumed(tid: u32) {
    if let Some(slot) = pending_wait(tid)
        && slot.tid == tid
        && slot.time.entered_ns == 0
    {
        slot.time = call_enters();
    }
}

/// Attached to `sys_exit_<call>` of every wait call, and of `restart_syscall`. Only threads with
/// a pending entry count.
///
/// A call interrupted with `ERESTART_RESTARTBLOCK` counts as a call that failed (as strace counts
/// it), and its slot stays with the thread, to be timed again when `restart_syscall` resumes it
/// (see [`wait_resumed`]): poll's resumed call, the one that returns the ready fds, is a poll.
#[tracepoint]
pub fn wait_exit(ctx: TracePointContext) -> u32 {
    let Some((_, tid)) = current_task() else { return 0 };
    let Some(slot) = pending_wait(tid) else { return 0 };
    if slot.tid != tid {
        return 0;
    }
    // SAFETY: `ret` is a long at offset 16 in every sys_exit record.
    let ret = unsafe { ctx.read_at::<i64>(EXIT_RET_OFFSET) }.unwrap_or(-1);
    let pending = *slot;
    if pending.time.entered_ns == 0 {
        slot.tid = 0; // an exit of a call whose (re)entry was not seen
        return 0;
    }
    if ret == ERESTART_RESTARTBLOCK {
        slot.time.entered_ns = 0;
    } else {
        slot.tid = 0;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    // Before the counters are looked up: the call's time, settled with this CPU's slice.
    let mut time = pending.time;
    let (own, off_cpu) = call_returns(&mut time, &on_cpu(), now, &irq_totals());
    // Everything the call adds, settled before the counters are looked up, and added in one go.
    let add = WaitStats {
        calls: 1,
        fds_passed: pending.fds_passed,
        fds_watched: pending.fds_watched,
        ready: if ret >= 0 { ret as u64 } else { 0 },
        errors: u64::from(ret < 0),
        blocked_ns: off_cpu,
        cpu_ns: own,
        softirq_ns: time.interrupts.softirq_ns,
        hardirq_ns: time.interrupts.hardirq_ns,
        slept: time.slept,
    };
    if let Some(c) = counters() {
        add_words(&mut c.wait[wait_kind(&pending)], &add);
    }
    // SAFETY: this CPU's slot; programs on one CPU do not preempt each other.
    if ret >= 0
        && let Some(max) = MAX_READY.get_ptr_mut(0).map(|m| unsafe { &mut (*m)[wait_kind(&pending)] })
        && (ret as u64) > *max
    {
        *max = ret as u64;
    }
    0
}

/// The pending call's wait kind as an index below `WAIT_KINDS`, read and bounded where it is
/// used. Bounded once and kept across a helper call, LLVM spills it to the stack and reloads it,
/// and 5.10's verifier does not keep a spilled scalar's bounds (seen in the 5.10 VM pass).
#[inline(always)]
fn wait_kind(pending: &PendingWait) -> usize {
    const { assert!(WAIT_KINDS.is_power_of_two(), "the mask below bounds the kind") };
    // SAFETY: a read of a local.
    (unsafe { core::ptr::read_volatile(&pending.kind) } as usize) & (WAIT_KINDS - 1)
}

/// Under `--timing` (from `count_syscall`): every syscall of a traced thread opens its slot in
/// [`PENDING_SYSCALLS`], for `time_exit`.
#[inline(always)]
fn time_enter(tid: u32, nr: u64) {
    let Some(slot) = pending_syscall(tid) else { return };
    if slot.tid != 0 && slot.tid != tid {
        // Another traced thread whose id shares this slot is in a syscall (pid_max > TASK_SLOTS).
        if let Some(c) = counters() {
            c.dropped.timed_calls += 1;
        }
        return;
    }
    *slot = PendingSyscall { time: call_enters(), nr: nr as u32, tid };
}

/// Under `--timing` only: `TP_PROTO(struct pt_regs *regs, long ret)`. A traced thread's syscall
/// returns: its call, error if `ret` is negative, on-CPU time and histogram bucket are counted.
/// A syscall that never returns (exit, a successful execve's old image) leaves its slot to the
/// thread's next entry.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn time_exit(ctx: RawTracePointContext) -> i32 {
    let Some((_, tid)) = current_task() else { return 0 };
    let Some(slot) = pending_syscall(tid) else { return 0 };
    if slot.tid != tid {
        return 0;
    }
    slot.tid = 0;
    let now = unsafe { bpf_ktime_get_ns() };
    let (own, _) = call_returns(&mut slot.time, &on_cpu(), now, &irq_totals());
    let interrupts = slot.time.interrupts;
    let ret: i64 = ctx.arg(1);
    // SAFETY: this CPU's copy; programs on one CPU do not preempt each other.
    let Some(t) = SYSCALL_TIMES.get_ptr_mut(slot.nr).map(|p| unsafe { &mut *p }) else {
        return 0;
    };
    t.calls += 1;
    if ret < 0 {
        t.errors += 1;
    }
    t.cpu_ns += own;
    t.softirq_ns += interrupts.softirq_ns;
    t.hardirq_ns += interrupts.hardirq_ns;
    // Through the stack, so the bounds check stays for the verifier: LLVM knows the bucket is
    // below 32 and would drop it, and the verifier does not follow leading_zeros.
    let bucket = histogram_bucket(own);
    // SAFETY: a read of a local.
    if let Some(count) = t.histogram.get_mut(unsafe { core::ptr::read_volatile(&bucket) }) {
        *count += 1;
    }
    0
}

/// Stashes an epoll_ctl ADD or DEL until its `sys_exit` tracepoint says whether it succeeded.
#[inline(always)]
fn epoll_ctl_enter(tid: u32, regs: *const pt_regs) {
    let call = PendingEpollCtl {
        epfd: syscall_arg(regs, 0) as u32,
        op: syscall_arg(regs, 1) as u32,
        fd: syscall_arg(regs, 2) as u32,
        _pad: 0,
    };
    if call.op == EPOLL_CTL_ADD || call.op == EPOLL_CTL_DEL {
        if PENDING_EPOLL_CTLS.insert(tid, call, 0).is_err() {
            if let Some(c) = counters() {
                c.dropped.epoll_members += 1; // this change to the interest list goes uncounted
            }
        }
    }
}

#[tracepoint]
pub fn epoll_ctl_exit(ctx: TracePointContext) -> u32 {
    let Some((tgid, tid)) = current_task() else { return 0 };
    let Some(call) = (unsafe { PENDING_EPOLL_CTLS.get(&tid) }).copied() else {
        return 0;
    };
    let _ = PENDING_EPOLL_CTLS.remove(tid);
    if unsafe { ctx.read_at::<i64>(EXIT_RET_OFFSET) }.unwrap_or(-1) != 0 {
        return 0;
    }
    let member = ProcessFd { tgid, fd: call.fd };
    if call.op == EPOLL_CTL_ADD {
        if EPOLL_MEMBERS.insert(member, 0, BPF_NOEXIST).is_err() && EPOLL_MEMBERS.get_ptr_mut(&member).is_none() {
            if let Some(c) = counters() {
                c.dropped.epoll_members += 1;
            }
            return 0;
        }
        if let Some(count) = EPOLL_MEMBERS.get_ptr_mut(&member) {
            atomic_add(count, 1);
            change_interest(tgid, 1);
        }
    } else if let Some(count) = EPOLL_MEMBERS.get_ptr_mut(&member) {
        // SAFETY: a live map value.
        if unsafe { *count } > 0 {
            atomic_add(count, u64::MAX); // -1, wrapping
            change_interest(tgid, u64::MAX);
        }
    }
    0
}

/// Closing a registered fd removes it from every epoll instance without an epoll_ctl call.
#[inline(always)]
fn close_enter(tgid: u32, regs: *const pt_regs) {
    let member = ProcessFd { tgid, fd: syscall_arg(regs, 0) as u32 };
    // SAFETY: copied out before the entry is removed.
    if let Some(count) = unsafe { EPOLL_MEMBERS.get(&member) }.copied() {
        let _ = EPOLL_MEMBERS.remove(member);
        change_interest(tgid, count.wrapping_neg());
    }
}

/// Adds `delta` (wrapping: `u64::MAX` is -1) to a process's interest-list size.
#[inline(always)]
fn change_interest(tgid: u32, delta: u64) {
    let Some(size) = interest_size(tgid) else { return };
    if size.tgid != tgid {
        if size.tgid != 0 {
            // Another traced process whose id shares this slot (pid_max > TASK_SLOTS).
            if let Some(c) = counters() {
                c.dropped.epoll_members += 1;
            }
            return;
        }
        // The process's first registration. Its threads may race here, but they all write the
        // same tag, and the count starts from 0 for a slot that was free.
        size.tgid = tgid;
        size.fds = 0;
    }
    atomic_add(&mut size.fds, delta);
}

/// An io_uring request the traced tree submitted: by `io_uring_enter`, or by its submission
/// queue polling thread without any syscall.
#[raw_tracepoint(tracepoint = "io_uring_submit_req")]
pub fn count_submission(_ctx: RawTracePointContext) -> i32 {
    if current_task().is_some()
        && let Some(c) = counters()
    {
        c.io_uring.submitted += 1;
    }
    0
}

/// A completion the traced tree's io_uring posted. The kernel posts them from the submitting
/// task's own work (or its polling thread's), so the task running is the one to count.
#[raw_tracepoint(tracepoint = "io_uring_complete")]
pub fn count_completion(_ctx: RawTracePointContext) -> i32 {
    if current_task().is_some()
        && let Some(c) = counters()
    {
        c.io_uring.completed += 1;
    }
    0
}

/// This CPU's interrupt clock.
#[inline(always)]
fn irq_clock() -> Option<&'static mut IrqClock> {
    // SAFETY: this CPU's slot; softirqs do not nest on one CPU, and a hard interrupt inside a
    // softirq program touches other fields (see `softirq_ends`).
    IRQ_CLOCK.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// `TP_PROTO(unsigned int vec_nr)`: a softirq starts on this CPU, in whatever task is current
/// (inside a syscall that re-enabled bottom halves, on an interrupt's exit) or in ksoftirqd.
#[raw_tracepoint(tracepoint = "softirq_entry")]
pub fn softirq_begins(_ctx: RawTracePointContext) -> i32 {
    if let Some(clock) = irq_clock() {
        clock.softirq_entered_ns = unsafe { bpf_ktime_get_ns() };
        clock.hardirq_at_softirq_entry = clock.totals.hardirq_ns;
    }
    0
}

/// `TP_PROTO(unsigned int vec_nr)`: the softirq ends. Its time, less the hard interrupts that ran
/// inside it, goes to the CPU's clock, and to the traced tree's counters by vector when a traced
/// thread is current: the work ran on that thread's time without being its own. In ksoftirqd, or
/// with no traced thread current, it is nobody's in the tree.
#[raw_tracepoint(tracepoint = "softirq_exit")]
pub fn softirq_ends(ctx: RawTracePointContext) -> i32 {
    let vec: u32 = ctx.arg(0);
    let Some(clock) = irq_clock() else { return 0 };
    if clock.softirq_entered_ns == 0 {
        return 0; // it began before the probe was attached
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let nested = clock.totals.hardirq_ns.saturating_sub(clock.hardirq_at_softirq_entry);
    let ns = now.saturating_sub(clock.softirq_entered_ns).saturating_sub(nested);
    clock.softirq_entered_ns = 0;
    clock.totals.softirq_ns += ns;
    if current_task().is_some()
        && let Some(c) = counters()
        && let Some(total) = c.interrupts.softirq_ns.get_mut(vec as usize)
    {
        *total += ns;
    }
    0
}

/// `TP_PROTO(int irq, struct irqaction *action)`: a hard-interrupt handler starts on this CPU.
#[raw_tracepoint(tracepoint = "irq_handler_entry")]
pub fn hardirq_begins(_ctx: RawTracePointContext) -> i32 {
    if let Some(clock) = irq_clock() {
        clock.hardirq_entered_ns = unsafe { bpf_ktime_get_ns() };
    }
    0
}

/// `TP_PROTO(int irq, struct irqaction *action, int ret)`: the handler returns; its time goes to
/// the CPU's clock, and to the traced tree's counters when a traced thread is current.
#[raw_tracepoint(tracepoint = "irq_handler_exit")]
pub fn hardirq_ends(_ctx: RawTracePointContext) -> i32 {
    let Some(clock) = irq_clock() else { return 0 };
    if clock.hardirq_entered_ns == 0 {
        return 0;
    }
    let ns = unsafe { bpf_ktime_get_ns() }.saturating_sub(clock.hardirq_entered_ns);
    clock.hardirq_entered_ns = 0;
    clock.totals.hardirq_ns += ns;
    if current_task().is_some()
        && let Some(c) = counters()
    {
        c.interrupts.hardirq_ns += ns;
    }
    0
}

/// Under `--profile`: the software `cpu-clock` event of each CPU fires at the chosen frequency,
/// whatever runs there. A sample of a traced thread is counted by its stacks: the kernel's
/// (from the interrupted registers; none if the thread was in user mode) and the user's (walked
/// by frame pointers from the registers saved at its last entry into the kernel, or the
/// interrupted ones). The stacks are interned in [`STACK_TRACES`] by the kernel; only their ids
/// and a count are kept here, and user space names the frames once, when the window closes.
#[perf_event]
pub fn sample_stack(ctx: PerfEventContext) -> u32 {
    let Some((tgid, _)) = current_task() else { return 0 };
    let kernel_stack = ctx.get_stackid(&STACK_TRACES, 0);
    let user_stack = ctx.get_stackid(&STACK_TRACES, BPF_F_USER_STACK);
    let (Some(kernel_stack), Some(user_stack)) = (stack_id(kernel_stack), stack_id(user_stack)) else {
        return lost_sample();
    };
    if kernel_stack == NO_STACK && user_stack == NO_STACK {
        return lost_sample();
    }
    let key = StackKey { tgid, kernel_stack, user_stack, _pad: 0, comm: current_comm() };
    if !count_by(&STACK_SAMPLES, &key, 1) {
        return lost_sample();
    }
    0
}

/// A stack id from `bpf_get_stackid`'s result: [`NO_STACK`] when there was no stack to walk,
/// `None` when there was one and it could not be kept.
#[inline(always)]
fn stack_id(result: Result<i64, i32>) -> Option<i32> {
    match result {
        Ok(id) => Some(id as i32),
        Err(err) if err == -EFAULT => Some(NO_STACK),
        Err(_) => None,
    }
}

#[inline(always)]
fn lost_sample() -> u32 {
    if let Some(c) = profile_counters() {
        c.lost_samples += 1;
    }
    0
}

#[inline(always)]
fn current_comm() -> [u8; COMM_LEN] {
    bpf_get_current_comm().unwrap_or([0; COMM_LEN])
}

/// Adds `delta` to `map[key]`, creating it at 0 first; false if the map is full.
#[inline(always)]
fn count_by<K>(map: &HashMap<K, u64>, key: &K, delta: u64) -> bool {
    let _ = map.insert(key, 0, BPF_NOEXIST); // fails when it exists (or the map is full)
    match map.get_ptr_mut(key) {
        Some(value) => {
            atomic_add(value, delta); // several CPUs may count the same key
            true
        }
        None => false,
    }
}

#[inline(always)]
fn profile_counters() -> Option<&'static mut ProfileCounters> {
    // SAFETY: per-CPU slot; a program that interrupts another on this CPU touches other fields,
    // or adds to the same one a count that is lost at worst.
    PROFILE_COUNTERS.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// The slot of thread `tid` in [`OFF_CPU_SLOTS`].
#[inline(always)]
fn off_cpu_slot(tid: u32) -> Option<&'static mut OffCpuSlot> {
    // SAFETY: a live array value; its thread is off its CPU while others write it (see `leaves`).
    OFF_CPU_SLOTS.get_ptr_mut(tid % TASK_SLOTS).map(|p| unsafe { &mut *p })
}

/// Under `--profile` (from `count_switch`): traced thread `tid` leaves its CPU at `now`. Its
/// slot keeps when, and where in the kernel (the current task is still the leaving one, so
/// `bpf_get_stackid` walks its stack); preempted, it is runnable from now on.
#[inline(always)]
fn leaves(ctx: &RawTracePointContext, tgid: u32, tid: u32, now: u64, voluntary: bool) {
    let kernel_stack = stack_id(ctx.get_stackid(&STACK_TRACES, 0)).unwrap_or(NO_STACK);
    let Some(slot) = off_cpu_slot(tid) else { return };
    *slot = OffCpuSlot {
        left_ns: now,
        runnable_ns: if voluntary { 0 } else { now },
        tid,
        key: OffCpuKey { tgid, kernel_stack, comm: current_comm() },
        _pad: 0,
    };
}

/// Under `--profile` (from `count_switch`): the task arriving on this CPU (`next`, argument 2),
/// if traced and seen leaving, adds its time away to [`OFF_CPU`] and its wait for a CPU to the
/// run-queue delay.
#[inline(always)]
fn comes_back(ctx: &RawTracePointContext, now: u64) {
    let next: *const u8 = ctx.arg(2);
    let tid = task_pid(next);
    if tid == 0 || !is_traced(tid) {
        return;
    }
    let Some(slot) = off_cpu_slot(tid) else { return };
    if slot.tid != tid {
        return;
    }
    let since = PROFILE_SINCE.get(0).copied().unwrap_or(0);
    if slot.left_ns != 0 {
        let key = slot.key;
        if !count_by(&OFF_CPU, &key, now.saturating_sub(slot.left_ns.max(since)))
            && let Some(c) = profile_counters()
        {
            c.lost_off_cpu += 1;
        }
    }
    if slot.runnable_ns != 0 {
        let delay = now.saturating_sub(slot.runnable_ns.max(since));
        if let Some(c) = profile_counters() {
            c.run_queue_waits += 1;
            c.run_queue_delay_ns += delay;
            // Through the stack, as in `time_exit`, so the bounds check stays for the verifier.
            let bucket = histogram_bucket(delay);
            // SAFETY: a read of a local.
            if let Some(count) = c.run_queue_histogram.get_mut(unsafe { core::ptr::read_volatile(&bucket) }) {
                *count += 1;
            }
        }
    }
    slot.left_ns = 0;
    slot.runnable_ns = 0;
}

/// The pid (thread id) of a task the scheduler passed, read at its BTF offset.
#[inline(always)]
fn task_pid(task: *const u8) -> u32 {
    // SAFETY: a plain u32 set by the loader before the program is loaded.
    let at = unsafe { core::ptr::read_volatile(&TASK_PID_OFFSET) };
    // SAFETY: `task` is the tracepoint's task; the read is checked by bpf_probe_read_kernel.
    unsafe { bpf_probe_read_kernel(task.wrapping_add(at as usize).cast::<u32>()) }.unwrap_or(0)
}

/// Under `--profile`: `TP_PROTO(struct task_struct *p)`, on `sched_wakeup` and
/// `sched_wakeup_new`. A traced thread is made runnable: its wait for a CPU starts now. A new
/// thread takes its slot here; one woken from sleep has it since it left.
#[raw_tracepoint]
pub fn mark_runnable(ctx: RawTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    let tid = task_pid(task);
    if tid == 0 || !is_traced(tid) {
        return 0;
    }
    let Some(slot) = off_cpu_slot(tid) else { return 0 };
    if slot.tid != tid {
        if slot.left_ns != 0 && slot.tid != 0 {
            return 0; // another traced thread whose id shares this slot is away
        }
        *slot = OffCpuSlot { tid, ..OffCpuSlot::default() };
    }
    if slot.runnable_ns == 0 {
        slot.runnable_ns = unsafe { bpf_ktime_get_ns() };
    }
    0
}

/// Does nothing, on the same hook as `count_syscall`. Never attached with the others: `iolab
/// bench` attaches it alone to measure what a syscall probe costs before it does any work.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn empty_sys_enter(_ctx: RawTracePointContext) -> i32 {
    0
}
