//! The probe is exact: known workloads, counted by the real eBPF programs on this kernel.
//! These need root (CI is root); they load the probes like `iolab` does.

use std::path::Path;

use lab_common::softirq;
use lab_measure::{
    launch,
    probe::{EmptyProbe, Probe},
    selftest::{self, Side},
};

/// One test at a time. A child forked by one test holds copies of every fd of this process until
/// it execs, the links of another test's probe included: a probe detached meanwhile would stay
/// attached through that copy, and count (or refuse to attach again, EEXIST).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn probe() -> Probe {
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    Probe::load().expect("loading the probes (the tests run as root, as CI does)")
}

#[test]
fn counts_every_read_and_write_of_process_child_and_thread_and_nothing_outside() {
    let _one = serial();
    let mut probe = probe();
    let (n, k, j) = (5000, 1234, 777);
    let check = selftest::check_io(&mut probe, n, k, j).unwrap();
    assert_eq!(check.expected, 7011);
    assert_eq!(check.reads, 7011, "reads: process {n} + child {k} + thread {j}");
    assert_eq!(check.writes, 7011, "writes: process {n} + child {k} + thread {j}");
}

#[test]
fn tree_without_a_thread_or_child_counts_only_the_process() {
    let _one = serial();
    let mut probe = probe();
    let check = selftest::check_io(&mut probe, 321, 0, 0).unwrap();
    assert_eq!((check.reads, check.writes), (321, 321));
}

#[test]
fn voluntary_switches_match_the_kernels_own_count() {
    let _one = serial();
    let mut probe = probe();
    let blocks = 300;
    let check = selftest::check_switches(&mut probe, blocks).unwrap();
    assert!(check.probe_voluntary >= blocks, "{check:?}");
    // Same window, same task: only a switch racing a snapshot could differ.
    let diff = check.probe_voluntary.abs_diff(check.proc_voluntary);
    assert!(diff * 100 <= check.proc_voluntary * 2, "{check:?}");
    assert!(check.probe_involuntary.abs_diff(check.proc_involuntary) <= 2, "{check:?}");
}

#[test]
fn epoll_interest_list_follows_add_through_a_dup_del_close_and_failed_add() {
    let _one = serial();
    let mut probe = probe();
    let check = selftest::check_epoll(&mut probe, 40).unwrap();
    assert_eq!(check.calls, 4);
    assert_eq!(check.fds_watched, 40 + 39 + 38 + 38);
    assert_eq!(check.fds_passed, 0, "epoll is handed no fds: its interest list is registered");
    assert_eq!(check.ready, 4, "one pipe holds a byte: one ready fd per call");
}

#[test]
fn detached_the_probe_counts_nothing_and_attached_again_it_is_exact() {
    let _one = serial();
    let mut probe = probe();
    probe.set_attached(false).unwrap();
    let check = selftest::check_io(&mut probe, 400, 300, 200).unwrap();
    assert_eq!((check.reads, check.writes), (0, 0));
    probe.set_attached(true).unwrap();
    let check = selftest::check_io(&mut probe, 400, 300, 200).unwrap();
    assert_eq!((check.reads, check.writes), (900, 900));
}

/// The bench's floor program is on `sys_enter` only while attached, and gone with its owner.
#[test]
fn the_empty_program_attaches_alone_and_leaves_nothing_behind() {
    let _one = serial();
    let empty_ids = || -> Vec<u32> {
        aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .filter(|p| p.name_as_str() == Some("empty_sys_enter"))
            .map(|p| p.id())
            .collect()
    };
    let links_to = |ids: &[u32]| {
        aya::programs::loaded_links().filter_map(Result::ok).filter(|l| ids.contains(&l.program_id())).count()
    };
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    let mut empty = EmptyProbe::load().unwrap();
    let ids = empty_ids();
    assert_eq!(ids.len(), 1, "loaded once: {ids:?}");
    assert_eq!(links_to(&ids), 0, "loaded detached");
    empty.set_attached(true).unwrap();
    empty.set_attached(true).unwrap(); // again: still one link
    assert_eq!(links_to(&ids), 1);
    empty.set_attached(false).unwrap();
    assert_eq!(links_to(&ids), 0);
    empty.set_attached(true).unwrap();
    drop(empty);
    assert_eq!(links_to(&ids), 0);
    // The kernel frees a program after an RCU grace period, not within the close.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !empty_ids().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(empty_ids(), [] as [u32; 0], "unloaded with its owner");
}

/// Inside a wait call the probe splits the time into on-CPU (the kernel's work of the call) and
/// switched out. A poll that never waits (timeout 0) is all CPU; one that sleeps out its timeout
/// is nearly all blocked, and it is the same call over the same fds.
#[test]
fn a_wait_call_is_split_into_cpu_and_blocked_time() {
    let _one = serial();
    let mut probe = probe();
    let busy = selftest::check_poll(&mut probe, 100, 2000, 0).unwrap();
    assert_eq!((busy.calls, busy.fds_passed, busy.ready, busy.errors), (2000, 200_000, 0, 0));
    assert!(busy.cpu_ns > 0, "{busy:?}");
    // Nothing to wait for: switched out only if preempted, which a 2-core CI runner does not do
    // to a 2,000-call loop for more than a small part of its time.
    assert!(busy.blocked_ns * 10 < busy.cpu_ns, "a poll with timeout 0 never sleeps: {busy:?}");
    let asleep = selftest::check_poll(&mut probe, 10, 10, 20).unwrap();
    assert_eq!((asleep.calls, asleep.fds_passed, asleep.ready), (10, 100, 0));
    assert!(asleep.blocked_ns >= 10 * 19_000_000, "ten 20 ms timeouts slept out: {asleep:?}");
    assert!(asleep.cpu_ns > 0 && asleep.cpu_ns * 20 < asleep.blocked_ns, "the sleep is not CPU: {asleep:?}");
}

/// The tree's on-CPU time, counted slice by slice at each context switch, is the scheduler's own
/// count (`/proc/PID/schedstat`) for a process that spins for 1 s (less of it on a CPU when
/// the machine is busy: the two counts must agree either way) — except for steal time: in a VM
/// with paravirtual time accounting the scheduler leaves out the time the hypervisor ran
/// something else on our CPU, and the probe's clock does not. So the probe may exceed the kernel
/// by at most the steal time the machine's CPUs saw meanwhile (`/proc/stat`, in clock ticks).
#[test]
fn on_cpu_time_matches_the_schedulers_own_count() {
    let _one = serial();
    let mut probe = probe();
    let steal_ns = || {
        use procfs::CurrentSI as _;
        let ticks = procfs::KernelStats::current().unwrap().total.steal.unwrap_or(0);
        ticks * 1_000_000_000 / procfs::ticks_per_second()
    };
    let steal_before = steal_ns();
    let (counted, kernel) = selftest::check_cpu(&mut probe, 1000, None).unwrap();
    // The counter moves in whole ticks: a difference of two readings is up to a tick per CPU short.
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    let steal = steal_ns() - steal_before + cpus * 1_000_000_000 / procfs::ticks_per_second();
    eprintln!("probe {counted} ns, kernel {kernel} ns, steal up to {steal} ns");
    assert!(kernel >= 100_000_000, "it spun: the kernel counted {kernel} ns");
    assert!(counted * 100 >= kernel * 99, "probe {counted} ns, kernel {kernel} ns: never 1 % under");
    assert!(
        counted <= kernel + kernel / 100 + steal,
        "probe {counted} ns, kernel {kernel} ns, steal up to {steal} ns: over by no more than 1 % and the steal"
    );
}

/// The same on one CPU shared with a thread that reads a BPF map without pause: the spinner and
/// the reader take turns, so the count is a sum of many slices, each ended by a switch, and a
/// switch missed would lose a slice. (The reader's `bpf()` calls hold the kernel's
/// `bpf_prog_active` on that CPU while they run, which tracepoint programs yield to; the on-CPU
/// count is a raw tracepoint program's.)
#[test]
fn on_cpu_time_holds_while_bpf_map_reads_share_its_cpu() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let _one = serial();
    let mut probe = probe();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            selftest::pin(0, 0).unwrap();
            let map = PerCpuMap::create();
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                map.read();
                reads += 1;
            }
            reads
        })
    };
    let (counted, kernel) = selftest::check_cpu(&mut probe, 1000, Some(0)).unwrap();
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    eprintln!("probe {counted} ns, kernel {kernel} ns, {reads} map reads beside it");
    assert!(reads >= 1000, "the reader read: {reads}");
    assert!(kernel >= 100_000_000, "it spun: the kernel counted {kernel} ns");
    assert!(counted * 100 >= kernel * 99, "probe {counted} ns, kernel {kernel} ns: never 1 % under");
}

/// A per-CPU array of one large value, made and read with raw `bpf()` calls.
struct PerCpuMap {
    fd: i32,
    value: Vec<u8>,
}

impl PerCpuMap {
    const VALUE_SIZE: u32 = 16 * 1024;

    fn create() -> PerCpuMap {
        // union bpf_attr for BPF_MAP_CREATE: map_type (6, BPF_MAP_TYPE_PERCPU_ARRAY), key_size,
        // value_size, max_entries (u32s).
        let mut attr = [0u32; 32];
        attr[..4].copy_from_slice(&[6, 4, Self::VALUE_SIZE, 1]);
        // SAFETY: bpf(2) reads `size_of_val(&attr)` bytes of the attr, all of them initialised.
        let fd = unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_ptr(), std::mem::size_of_val(&attr)) };
        assert!(fd >= 0, "BPF_MAP_CREATE: {}", std::io::Error::last_os_error());
        let cpus = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
        let possible = cpus.trim().rsplit(['-', ',']).next().unwrap().parse::<usize>().unwrap() + 1;
        PerCpuMap { fd: fd as i32, value: vec![0; Self::VALUE_SIZE as usize * possible] }
    }

    fn read(&self) {
        let key = 0u32;
        // union bpf_attr for BPF_MAP_LOOKUP_ELEM: map_fd, padding, key and value pointers, flags.
        let attr: [u64; 4] = [self.fd as u64, &key as *const u32 as u64, self.value.as_ptr() as u64, 0];
        // SAFETY: the kernel writes one value per possible CPU into `value`, which holds them all.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, 1, attr.as_ptr(), std::mem::size_of_val(&attr)) };
        assert_eq!(rc, 0, "BPF_MAP_LOOKUP_ELEM: {}", std::io::Error::last_os_error());
    }
}

impl Drop for PerCpuMap {
    fn drop(&mut self) {
        // SAFETY: our own fd.
        unsafe { libc::close(self.fd) };
    }
}

/// poll over K sockets that are all readable, with timeout 0: every call returns K at once and
/// never sleeps. The exercise runs at real-time priority, so no other task preempts it: no time
/// is spent switched out inside a call (see [`assert_not_blocked_unless_preempted`]). The one
/// voluntary switch is the stop that closes the window, outside any call.
#[test]
fn a_poll_over_k_ready_sockets_returns_k_each_call_and_never_blocks() {
    let _one = serial();
    let mut probe = probe();
    let (k, n) = (37, 500);
    let check = selftest::check_ready(&mut probe, "poll", k, n).unwrap();
    let w = check.wait;
    assert_eq!((w.calls, w.errors), (n, 0), "{check:?}");
    assert_eq!((w.fds_passed, w.fds_watched), (n * k as u64, n * k as u64), "poll is handed its K fds: {check:?}");
    assert_eq!(w.ready, n * k as u64, "{check:?}");
    assert_eq!(check.max_ready, k as u64, "one call returned all K: {check:?}");
    assert_eq!(check.switches.voluntary, 1, "{check:?}");
    assert_not_blocked_unless_preempted(&check);
    assert!(w.cpu_ns > 0, "{check:?}");
}

/// A call that never sleeps spends no time switched out, unless the kernel preempted its thread
/// inside it: real-time priority keeps every other task away, but not the kernel's stop-class
/// work (CPU migration). Seen once in CI: select, one involuntary switch, 6.86 µs switched out.
fn assert_not_blocked_unless_preempted(check: &selftest::ReadyCheck) {
    let (blocked, preempted) = (check.wait.blocked_ns, check.switches.involuntary);
    assert!(preempted <= 1, "{check:?}");
    assert_eq!(blocked > 0, preempted > 0, "switched out inside a call only when preempted: {check:?}");
}

/// select is handed the fds set in its sets, not `nfds`: K sockets (one at fd 990) in both the
/// read and the write set, nfds 1000, and a bit at fd 1000 that the kernel ignores. Each call
/// returns 2K (every socket readable and writable) and never blocks.
#[test]
fn a_select_over_k_fds_set_among_a_larger_nfds_is_handed_k() {
    let _one = serial();
    let mut probe = probe();
    let (k, n) = (5, 400);
    let check = selftest::check_ready(&mut probe, "select", k, n).unwrap();
    let w = check.wait;
    assert_eq!((w.calls, w.errors), (n, 0), "{check:?}");
    assert_eq!((w.fds_passed, w.fds_watched), (n * k as u64, n * k as u64), "K set, not nfds 1000: {check:?}");
    assert_eq!((w.ready, check.max_ready), (n * 2 * k as u64, 2 * k as u64), "{check:?}");
    assert_not_blocked_unless_preempted(&check);
}

/// epoll is handed nothing per call; it watches its K registrations, and returns all K.
#[test]
fn an_epoll_with_k_registered_is_handed_none_watches_k_and_returns_k() {
    let _one = serial();
    let mut probe = probe();
    let (k, n) = (64, 300);
    let check = selftest::check_ready(&mut probe, "epoll", k, n).unwrap();
    let w = check.wait;
    assert_eq!((w.calls, w.errors), (n, 0), "{check:?}");
    assert_eq!((w.fds_passed, w.fds_watched), (0, n * k as u64), "{check:?}");
    assert_eq!((w.ready, check.max_ready), (n * k as u64, k as u64), "{check:?}");
    assert_not_blocked_unless_preempted(&check);
}

/// Without `--timing` nothing of it is loaded, and the verifier drops the code that serves it
/// from `count_syscall` and `count_switch` (it is behind a read-only flag): those
/// programs are shorter as the kernel runs them than with `--timing`.
#[test]
fn without_timing_its_program_is_not_loaded_and_its_code_is_dropped() {
    let _one = serial();
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    let sizes = |timing: bool| loaded_sizes(lab_measure::probe::ProbeOptions { timing, profile: None });
    let (off, on) = (sizes(false), sizes(true));
    let size = |programs: &[(String, u32)], name: &str| programs.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    assert_eq!(size(&off, "time_exit"), None, "{off:?}");
    assert!(size(&on, "time_exit").is_some(), "{on:?}");
    for name in ["count_syscall", "count_switch"] {
        let (off, on) = (size(&off, name).unwrap(), size(&on, name).unwrap());
        assert!(off < on, "{name}: {off} bytes without --timing, {on} with");
    }
}

/// On loopback the receiving socket's TCP work runs in the sender's context. A traced process
/// that only sends to an untraced peer runs the peer's receive in its own NET_RX softirqs; the
/// probe counts that time apart, and all of it inside the process's on-CPU slices.
#[test]
fn a_loopback_sender_runs_the_receivers_network_work_in_net_rx() {
    let _one = serial();
    let mut probe = probe();
    let (n, bytes) = (2_000, 64);
    let check = selftest::check_loopback(&mut probe, Side::Sends, n, bytes).unwrap();
    assert_eq!(check.peer_bytes, n * bytes as u64, "the peer got every byte");
    let c = check.delta.0;
    let net_rx = c.interrupts.softirq_ns[softirq::NET_RX];
    let interrupts = c.interrupts.softirq_ns.iter().sum::<u64>() + c.interrupts.hardirq_ns;
    eprintln!("on CPU {} ns, NET_RX {net_rx} ns, all interrupts {interrupts} ns", c.on_cpu_ns);
    assert!(net_rx > 0, "the peer's receive ran in the sender: {:?}", c.interrupts);
    assert!(interrupts <= c.on_cpu_ns, "interrupts are counted inside the slices they ran in");
}

/// A traced receiver's NET_RX is only the peer's socket taking in its ACKs: the data it reads
/// was taken in by the peer's own sends. At the same messages it is less than a sender's (about
/// half here: taking in an ACK costs less than taking in data and waking its reader, not nothing).
#[test]
fn a_loopback_receiver_has_its_receive_work_done_by_the_sender() {
    let _one = serial();
    let mut probe = probe();
    let (n, bytes) = (2_000, 64);
    let sends = selftest::check_loopback(&mut probe, Side::Sends, n, bytes).unwrap().delta.0;
    let receives = selftest::check_loopback(&mut probe, Side::Receives, n, bytes).unwrap().delta.0;
    let (sent, received) =
        (sends.interrupts.softirq_ns[softirq::NET_RX], receives.interrupts.softirq_ns[softirq::NET_RX]);
    eprintln!(
        "NET_RX: sender {sent} ns, receiver {received} ns (on CPU {} and {} ns)",
        sends.on_cpu_ns, receives.on_cpu_ns
    );
    assert!(received > 0, "its ACKs are taken in on its time");
    assert!(received < sent, "the receiver's NET_RX ({received} ns) is under the sender's ({sent} ns)");
}

/// A process that spins in user space makes no syscall and sends nothing: no network softirq
/// runs on its time (a stray packet from outside the machine may: at most 1 % of it).
#[test]
fn a_spinning_process_has_no_network_softirq() {
    let _one = serial();
    let mut probe = probe();
    let before = probe.snapshot().unwrap();
    let (counted, _) = selftest::check_cpu(&mut probe, 500, None).unwrap();
    let after = probe.snapshot().unwrap();
    let net_rx = after.interrupts.softirq_ns[softirq::NET_RX] - before.interrupts.softirq_ns[softirq::NET_RX];
    eprintln!("spun {counted} ns, NET_RX {net_rx} ns");
    assert!(counted >= 100_000_000, "it spun");
    assert!(net_rx * 100 <= counted, "NET_RX {net_rx} ns in a {counted} ns spin");
}

/// Under `--timing` a syscall's own time leaves out the softirqs that ran inside it, and they are
/// shown beside it: a loopback sender's writes carry the peer's receive.
#[test]
fn a_loopback_senders_writes_carry_its_net_rx_beside_their_own_time() {
    let _one = serial();
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    let mut probe = Probe::load_with(lab_measure::probe::ProbeOptions { timing: true, profile: None }).unwrap();
    let before = probe.syscall_times().unwrap().unwrap();
    let check = selftest::check_loopback(&mut probe, Side::Sends, 2_000, 64).unwrap();
    let after = probe.syscall_times().unwrap().unwrap();
    let times = lab_measure::probe::syscall_times_between(&before, &after);
    let writes = times.get("sendto").expect("the sender sends (std's TcpStream writes with send)");
    let net_rx = check.delta.0.interrupts.softirq_ns[softirq::NET_RX];
    eprintln!(
        "write: {} calls, own {} ns, softirq {} ns; window NET_RX {net_rx} ns",
        writes.calls, writes.cpu_ns, writes.softirq_ns
    );
    assert_eq!(writes.calls, 2_000, "{writes:?}");
    assert!(writes.softirq_ns > 0 && writes.cpu_ns > 0, "{writes:?}");
    // NET_RX runs when a write re-enables bottom halves: almost all of it inside the writes.
    assert!(
        writes.softirq_ns * 10 >= net_rx * 9,
        "write's softirq {} ns of the window's {net_rx} ns",
        writes.softirq_ns
    );
}

/// `--profile` at this frequency in the tests: off the 1 kHz of the kernel's tick, so the
/// samples do not beat against it.
const PROFILE_HZ: u32 = 999;

fn profiled_probe() -> Probe {
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    let profile = Some(lab_measure::profile::ProfileOptions { hz: PROFILE_HZ });
    Probe::load_with(lab_measure::probe::ProbeOptions { timing: false, profile }).unwrap()
}

/// The `n` heaviest stacks of `stacks`, for a failing assertion's message.
fn heaviest(stacks: &std::collections::BTreeMap<String, u64>, n: usize) -> Vec<(u64, &str)> {
    let mut all: Vec<(u64, &str)> = stacks.iter().map(|(s, &v)| (v, s.as_str())).collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    all.truncate(n);
    all
}

/// A thread spinning in user space (no syscall: the clock is the vDSO's) is sampled almost only
/// in user frames; the kernel's share is the timer and the interrupts that hit it. Its samples
/// are the frequency times its on-CPU time, as the probe counted it slice by slice.
#[test]
fn a_spinning_thread_is_sampled_in_user_frames_at_the_chosen_frequency() {
    let _one = serial();
    let mut probe = profiled_probe();
    let check = selftest::check_profile(&mut probe, &["spin", "1000"], 0).unwrap();
    let p = &check.profile;
    let user_only: u64 = p.on_cpu.iter().filter(|(s, _)| !s.contains("_[k]")).map(|(_, v)| v).sum();
    let samples = p.samples();
    let expected = u64::from(PROFILE_HZ) * check.delta.on_cpu_ns / 1_000_000_000;
    eprintln!(
        "{samples} samples ({} lost), {user_only} in user frames only; {} ns on CPU: {expected} expected; {:#?}",
        p.lost_samples,
        check.delta.on_cpu_ns,
        heaviest(&p.on_cpu, 5)
    );
    assert!(check.delta.on_cpu_ns >= 100_000_000, "it spun: {check:?}");
    assert!(user_only * 100 >= samples * 95, "{user_only} of {samples} in user frames: {:#?}", heaviest(&p.on_cpu, 8));
    assert!(
        samples.abs_diff(expected) * 10 <= expected,
        "{samples} samples, {expected} expected from {} ns on CPU at {PROFILE_HZ} Hz",
        check.delta.on_cpu_ns
    );
    assert!(
        p.on_cpu.keys().any(|s| s.contains("exercise::spin")),
        "the spin loop is named: {:#?}",
        heaviest(&p.on_cpu, 8)
    );
}

/// A thread looping on getppid spends its kernel time in the syscall: every kernel sample sits
/// under the getppid of the C library (user frame), and some inside the kernel's own
/// `__x64_sys_getppid`.
#[test]
fn a_getppid_loop_is_sampled_under_getppid() {
    let _one = serial();
    let mut probe = profiled_probe();
    let check = selftest::check_profile(&mut probe, &["getppid", "3000000"], 0).unwrap();
    let p = &check.profile;
    let kernel: Vec<(&String, &u64)> = p.on_cpu.iter().filter(|(s, _)| s.contains("_[k]")).collect();
    let in_kernel: u64 = kernel.iter().map(|(_, v)| **v).sum();
    let under: u64 = kernel.iter().filter(|(s, _)| s.contains("getppid")).map(|(_, v)| **v).sum();
    let in_syscall: u64 = kernel.iter().filter(|(s, _)| s.contains("sys_getppid_[k]")).map(|(_, v)| **v).sum();
    let samples = p.samples();
    let expected = u64::from(PROFILE_HZ) * check.delta.on_cpu_ns / 1_000_000_000;
    eprintln!(
        "{samples} samples, {expected} expected, {in_kernel} in the kernel, {under} under getppid, {in_syscall} in \
         sys_getppid; {:#?}",
        heaviest(&p.on_cpu, 8)
    );
    assert!(in_kernel * 2 >= samples, "a syscall loop is mostly kernel: {in_kernel} of {samples}");
    assert!(under * 100 >= in_kernel * 95, "{under} of {in_kernel} kernel samples under getppid");
    assert!(in_syscall > 0, "some in the syscall itself: {:#?}", heaviest(&p.on_cpu, 8));
    assert!(samples.abs_diff(expected) * 10 <= expected, "{samples} samples, {expected} expected");
}

/// A thread that blocks N times reading an empty pipe is off the CPU under `pipe_read`, and
/// waits for a CPU once per wake-up. Off-CPU time also counts a preemption (from the
/// switch-out to the switch back in, as `offcputime` does) and the stop that ends the window, so
/// not all of it is under `pipe_read`: 99.3 % and 99.6 % in two CI runs.
#[test]
fn a_thread_blocking_on_a_pipe_is_off_cpu_under_pipe_read() {
    let _one = serial();
    let mut probe = profiled_probe();
    let blocks = 200;
    let check = selftest::check_profile(&mut probe, &["block", &blocks.to_string()], blocks).unwrap();
    let p = &check.profile;
    let off: u64 = p.off_cpu_ns.values().sum();
    let in_pipe: u64 = p.off_cpu_ns.iter().filter(|(s, _)| s.contains("pipe_read_[k]")).map(|(_, v)| v).sum();
    eprintln!(
        "off CPU {off} ns, {in_pipe} under pipe_read; run queue {:?}; {:#?}",
        p.run_queue,
        heaviest(&p.off_cpu_ns, 5)
    );
    assert!(
        in_pipe > 0 && in_pipe * 10 >= off * 9,
        "{in_pipe} of {off} ns under pipe_read: {:#?}",
        heaviest(&p.off_cpu_ns, 5)
    );
    // Every switch away inside the window but the last (the stop that closes it) is followed by a
    // wake-up and a run, and so is the switch away before it (the stop that opened it): one wait
    // per switch. Measured here: 201 switches and 201 waits for 200 blocks, four runs in four;
    // in CI once 201 switches and 198 waits, a loss not explained yet, so a few may go missing.
    let switches = check.delta.switches;
    let all = switches.voluntary + switches.involuntary;
    eprintln!("switches {switches:?}, run-queue waits {}", p.run_queue.waits);
    assert!(
        p.run_queue.waits <= all && (p.run_queue.waits + 5) * 100 >= all * 98,
        "{:?} for {all} switches",
        p.run_queue
    );
    assert!(switches.voluntary * 10 >= blocks * 9, "{switches:?} for {blocks} blocks");
    assert_eq!(p.run_queue.histogram.iter().sum::<u64>(), p.run_queue.waits);
    assert!(p.run_queue.delay_ns > 0);
}

/// Without `--profile` its programs are not loaded and the verifier drops its code from
/// `count_switch` (behind a read-only flag), as for `--timing`. Loaded with it and detached, it
/// samples nothing; attached again, it samples.
#[test]
fn without_profile_its_programs_are_not_loaded_and_detached_it_samples_nothing() {
    let _one = serial();
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    let sizes = |profile: bool| {
        let profile = profile.then_some(lab_measure::profile::ProfileOptions { hz: PROFILE_HZ });
        loaded_sizes(lab_measure::probe::ProbeOptions { timing: false, profile })
    };
    let (off, on) = (sizes(false), sizes(true));
    let size = |programs: &[(String, u32)], name: &str| programs.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    for name in ["sample_stack", "mark_runnable"] {
        assert_eq!(size(&off, name), None, "{off:?}");
        assert!(size(&on, name).is_some(), "{on:?}");
    }
    let (off, on) = (size(&off, "count_switch").unwrap(), size(&on, "count_switch").unwrap());
    assert!(off < on, "count_switch: {off} bytes without --profile, {on} with");

    let mut probe = profiled_probe();
    probe.set_attached(false).unwrap();
    let check = selftest::check_profile(&mut probe, &["spin", "200"], 0).unwrap();
    assert_eq!(check.profile.samples(), 0, "{check:?}");
    probe.set_attached(true).unwrap();
    let check = selftest::check_profile(&mut probe, &["spin", "200"], 0).unwrap();
    assert!(check.profile.samples() > 0, "{check:?}");
}

/// A measured run of a model carries the window's profile, read while the server lived: the
/// epoll server's threads sleep in `epoll_wait`, and its samples name its own code.
#[test]
fn a_model_run_carries_its_windows_profile() {
    use lab_measure::{
        experiment::run_model,
        run::{Counted, RunSpec},
    };
    let _one = serial();
    let mut probe = profiled_probe();
    let spec = RunSpec {
        name: "epoll".into(),
        command: None,
        workload: lab_load::Workload {
            connections: 50,
            messages_per_connection: 400,
            payload_bytes: lab_load::DEFAULT_PAYLOAD_BYTES,
            ..Default::default()
        },
        counted: Counted::Everything,
    };
    let result = run_model(&mut probe, &spec).unwrap();
    let p = result.profile.expect("a probe loaded with --profile profiles the window");
    let off: u64 = p.off_cpu_ns.values().sum();
    let in_epoll: u64 = p.off_cpu_ns.iter().filter(|(s, _)| s.contains("epoll_wait")).map(|(_, v)| v).sum();
    eprintln!(
        "{} samples, {} lost, off CPU {off} ns ({in_epoll} in epoll_wait), run queue {} waits {} ns; {:#?}; {:#?}",
        p.samples(),
        p.lost_samples,
        p.run_queue.waits,
        p.run_queue.delay_ns,
        heaviest(&p.on_cpu, 6),
        heaviest(&p.off_cpu_ns, 3)
    );
    assert_eq!(p.hz, PROFILE_HZ);
    assert!(p.samples() > 0 && p.run_queue.waits > 0, "{p:?}");
    assert!(in_epoll * 2 >= off, "the server sleeps in epoll_wait: {:#?}", heaviest(&p.off_cpu_ns, 5));
    assert!(p.on_cpu.keys().any(|s| s.contains("lab_server::")), "{:#?}", heaviest(&p.on_cpu, 8));
}

/// The programs a probe loaded with `options` holds, by name, with their size once translated
/// (what the verifier kept), read while it is loaded.
fn loaded_sizes(options: lab_measure::probe::ProbeOptions) -> Vec<(String, u32)> {
    let before: Vec<u32> = aya::programs::loaded_programs().filter_map(Result::ok).map(|p| p.id()).collect();
    let probe = Probe::load_with(options).unwrap();
    let ours = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| !before.contains(&p.id()))
        .map(|p| (p.name_as_str().unwrap_or_default().to_owned(), p.size_translated().unwrap_or(0)))
        .collect();
    drop(probe);
    ours
}
