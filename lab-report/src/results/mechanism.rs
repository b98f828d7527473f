//! Which kernel mechanism a sampled stack was paying for: the lab's claims as sets of kernel
//! functions, so that `--profile` can say how much of a design's CPU went where.
//!
//! The sets are declared once, in [`SYMBOLS`]; a folded stack (see `lab_measure::profile`) is
//! given to one [`Mechanism`] by this rule:
//!
//! 1. Under an interrupt frame (`[softirq]`, `[hardirq]`; the innermost one, nearest the leaf):
//!    [`Mechanism::NetSoftirq`] when a frame after it is `net_rx_action` or `net_tx_action`,
//!    else [`Mechanism::Rest`]. Interrupt work is whoever's it is, not the code it interrupted.
//! 2. No kernel frame (`_[k]`): [`Mechanism::User`].
//! 3. Else walk the kernel frames from the leaf to the root; the first frame in [`SYMBOLS`]
//!    decides. A frame marked [`Role::Callee`] (a per-fd poll callback, a copy to or from user
//!    memory) does the work of whoever called it: the walk goes on to the root, and the first
//!    [`Role::Owner`] frame found decides instead; with none, the callee's own set does. So
//!    `tcp_poll` under `do_select` is the per-fd walk, under `ep_send_events` epoll's ready list;
//!    a copy under `tcp_recvmsg` is TCP's, under `do_sys_poll` the copy of poll's array.
//! 4. No frame in a set: [`Mechanism::Rest`].
//!
//! The scheduler owns its frames wherever they are: `schedule` under `do_sys_poll` is a sleep,
//! and `try_to_wake_up` under `tcp_sendmsg` the wake-up of the peer, both scheduler work.
//!
//! Names are matched without the compiler's suffixes (`finish_task_switch.isra.0` is
//! `finish_task_switch`). A function this kernel inlined has no frame of its own: its work shows
//! under its caller, which is why each set names the callers too (`do_poll` is inlined into
//! `do_sys_poll` on Linux 6.18, `ep_poll` into `do_epoll_wait`). Such symbols are marked
//! optional; a test checks that every other one is in the running kernel's `/proc/kallsyms`.

use lab_measure::profile::{HARDIRQ_FRAME, Profile, SOFTIRQ_FRAME};

/// A kernel mechanism the lab's claims are about, and the two places a sample can be outside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// select's and poll's walk over every fd they are handed.
    FdWalk,
    /// epoll's work on its ready list.
    EpollReady,
    /// Switching, waking and queueing threads.
    Scheduler,
    /// TCP send and receive, and the copies to and from user memory.
    TcpCopy,
    /// The network softirq.
    NetSoftirq,
    /// The server's own code, in user space.
    User,
    /// Everything else.
    Rest,
}

/// What a mechanism is: see the accessors of [`Mechanism`].
struct Def {
    key: &'static str,
    label: &'static str,
    description: &'static str,
}

impl Mechanism {
    /// Every mechanism, in the order of the tables' columns.
    pub const ALL: [Mechanism; 7] = [
        Mechanism::FdWalk,
        Mechanism::EpollReady,
        Mechanism::Scheduler,
        Mechanism::TcpCopy,
        Mechanism::NetSoftirq,
        Mechanism::User,
        Mechanism::Rest,
    ];

    /// Stable name (JSON, CSV).
    pub fn key(self) -> &'static str {
        self.def().key
    }

    /// Short name for a table.
    pub fn label(self) -> &'static str {
        self.def().label
    }

    /// What its samples were doing, in one sentence.
    pub fn description(self) -> &'static str {
        self.def().description
    }

    fn def(self) -> Def {
        use Mechanism::*;
        let (key, label, description) = match self {
            FdWalk => (
                "fd_walk",
                "fd walk",
                "select's and poll's walk over every fd handed in: each fd's poll callback, registering on its wait queue and unregistering, and copying the fd sets or array in and out.",
            ),
            EpollReady => (
                "epoll_ready",
                "epoll ready list",
                "epoll_wait's work: its ready list, polling each ready item again, and the callback that queues a ready fd.",
            ),
            Scheduler => (
                "scheduler",
                "scheduler",
                "Switching threads (schedule, the switch itself, picking the next), waking them and queueing them.",
            ),
            TcpCopy => (
                "tcp_copy",
                "TCP + copies",
                "TCP send and receive on the socket, and the copies of the payload to and from user memory.",
            ),
            NetSoftirq => (
                "net_softirq",
                "net softirq",
                "The network softirq on the server's threads: on loopback mostly the peer's TCP receive.",
            ),
            User => ("user", "user", "The server's own code, in user space (no kernel frame)."),
            Rest => ("rest", "rest", "Kernel work in none of the sets: syscall entry, fd lookup, other interrupts."),
        };
        Def { key, label, description }
    }
}

/// How a frame of [`SYMBOLS`] claims a stack (see the module's rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The frame's set takes the stack.
    Owner,
    /// The frame works for its caller: the nearest owner frame towards the root takes the stack.
    Callee,
}

/// One kernel function of a set.
#[derive(Clone, Copy, Debug)]
pub struct Symbol {
    pub mechanism: Mechanism,
    pub name: &'static str,
    pub role: Role,
    /// Static or inlined on some kernels (6.18 among them): it may have no frame of its own.
    pub optional: bool,
}

const fn owner(mechanism: Mechanism, name: &'static str) -> Symbol {
    Symbol { mechanism, name, role: Role::Owner, optional: false }
}

const fn callee(mechanism: Mechanism, name: &'static str) -> Symbol {
    Symbol { mechanism, name, role: Role::Callee, optional: false }
}

const fn optional(symbol: Symbol) -> Symbol {
    Symbol { optional: true, ..symbol }
}

use Mechanism::{EpollReady, FdWalk, NetSoftirq, Scheduler, TcpCopy};

/// Every set, declared once. Optional: inlined or static on 6.18, or gone from recent kernels.
pub const SYMBOLS: &[Symbol] = &[
    // select and poll: the calls themselves, then the per-fd callbacks they make.
    owner(FdWalk, "do_sys_poll"),
    optional(owner(FdWalk, "do_poll")), // inlined into do_sys_poll
    owner(FdWalk, "core_sys_select"),
    owner(FdWalk, "do_select"),
    owner(FdWalk, "poll_freewait"),
    owner(FdWalk, "poll_select_finish"),
    callee(FdWalk, "__pollwait"),
    optional(callee(FdWalk, "vfs_poll")), // static inline in <linux/poll.h>
    callee(FdWalk, "sock_poll"),
    callee(FdWalk, "tcp_poll"),
    callee(FdWalk, "pipe_poll"),
    // epoll: the wait, the ready list, the callback that fills it.
    owner(EpollReady, "do_epoll_wait"),
    optional(owner(EpollReady, "ep_poll")), // inlined into do_epoll_wait
    owner(EpollReady, "ep_send_events"),
    optional(owner(EpollReady, "ep_item_poll")), // static: ep_item_poll.isra.0 on 6.18
    owner(EpollReady, "ep_start_scan"),
    owner(EpollReady, "ep_done_scan"),
    owner(EpollReady, "ep_poll_callback"),
    owner(EpollReady, "ep_eventpoll_poll"),
    // The scheduler: switching, picking, waking, queueing.
    owner(Scheduler, "schedule"),
    owner(Scheduler, "__schedule"),
    owner(Scheduler, "schedule_idle"),
    owner(Scheduler, "preempt_schedule"),
    owner(Scheduler, "schedule_hrtimeout_range"),
    owner(Scheduler, "schedule_timeout"),
    optional(owner(Scheduler, "context_switch")), // static inline in kernel/sched/core.c
    optional(owner(Scheduler, "finish_task_switch")), // static: finish_task_switch.isra.0
    owner(Scheduler, "__switch_to"),
    owner(Scheduler, "__switch_to_asm"),
    optional(owner(Scheduler, "pick_next_task")), // inlined into __schedule
    owner(Scheduler, "pick_next_task_fair"),
    owner(Scheduler, "pick_task_fair"),
    owner(Scheduler, "put_prev_task_fair"),
    owner(Scheduler, "set_next_task_fair"),
    owner(Scheduler, "psi_task_switch"),
    owner(Scheduler, "try_to_wake_up"),
    owner(Scheduler, "ttwu_do_activate"),
    owner(Scheduler, "ttwu_queue_wakelist"),
    optional(owner(Scheduler, "ttwu_do_wakeup")), // inlined into ttwu_do_activate
    owner(Scheduler, "sched_ttwu_pending"),
    owner(Scheduler, "wake_up_q"),
    owner(Scheduler, "activate_task"),
    owner(Scheduler, "enqueue_task"),
    owner(Scheduler, "enqueue_task_fair"),
    owner(Scheduler, "dequeue_task"),
    owner(Scheduler, "dequeue_task_fair"),
    owner(Scheduler, "dequeue_entities"),
    optional(owner(Scheduler, "enqueue_entity")), // static, inlined into enqueue_task_fair
    optional(owner(Scheduler, "dequeue_entity")), // static, inlined into dequeue_entities
    owner(Scheduler, "update_curr"),
    owner(Scheduler, "wakeup_preempt"),
    owner(Scheduler, "select_task_rq_fair"),
    // TCP send and receive, the socket calls above them, and the copies.
    owner(TcpCopy, "tcp_sendmsg"),
    owner(TcpCopy, "tcp_sendmsg_locked"),
    owner(TcpCopy, "tcp_recvmsg"),
    owner(TcpCopy, "tcp_recvmsg_locked"),
    owner(TcpCopy, "inet_sendmsg"),
    owner(TcpCopy, "inet_recvmsg"),
    owner(TcpCopy, "sock_sendmsg"),
    owner(TcpCopy, "sock_recvmsg"),
    owner(TcpCopy, "sock_read_iter"),
    owner(TcpCopy, "sock_write_iter"),
    owner(TcpCopy, "__sys_sendto"),
    owner(TcpCopy, "__sys_recvfrom"),
    callee(TcpCopy, "skb_copy_datagram_iter"),
    callee(TcpCopy, "__skb_datagram_iter"),
    callee(TcpCopy, "simple_copy_to_iter"),
    callee(TcpCopy, "skb_copy_datagram_from_iter"),
    callee(TcpCopy, "_copy_to_iter"),
    callee(TcpCopy, "_copy_from_iter"),
    callee(TcpCopy, "_copy_to_user"),
    callee(TcpCopy, "_copy_from_user"),
    callee(TcpCopy, "rep_movs_alternative"),
    optional(callee(TcpCopy, "copy_user_generic")), // an inline function since 6.1
    optional(callee(TcpCopy, "copy_user_enhanced_fast_string")), // before 6.1
    optional(callee(TcpCopy, "copy_user_generic_string")), // before 6.1
    // The network softirq, recognised under an interrupt frame (the module's rule 1).
    owner(NetSoftirq, "net_rx_action"),
    owner(NetSoftirq, "net_tx_action"),
];

/// The kernel frame's suffix in a folded stack.
const KERNEL: &str = "_[k]";

/// A frame's function name as the sets write it: without `_[k]` and the compiler's suffixes.
fn function(frame: &str) -> &str {
    let name = frame.strip_suffix(KERNEL).unwrap_or(frame);
    // `[softirq]` has no compiler suffix; `name.isra.0`, `name.cold` have.
    if name.starts_with('[') { name } else { name.split('.').next().unwrap_or(name) }
}

fn is_interrupt(frame: &str) -> bool {
    matches!(function(frame), f if f == SOFTIRQ_FRAME || f == HARDIRQ_FRAME)
}

fn lookup(frame: &str) -> Option<&'static Symbol> {
    let name = function(frame);
    SYMBOLS.iter().find(|s| s.name == name)
}

/// The mechanism one folded stack (thread;user frames;kernel frames, root to leaf) paid for.
pub fn classify(stack: &str) -> Mechanism {
    let frames: Vec<&str> = stack.split(';').collect();
    if let Some(at) = frames.iter().rposition(|f| is_interrupt(f)) {
        let networking = frames[at + 1..].iter().any(|f| matches!(function(f), "net_rx_action" | "net_tx_action"));
        return if networking { Mechanism::NetSoftirq } else { Mechanism::Rest };
    }
    let kernel: Vec<&str> = frames.iter().copied().filter(|f| f.ends_with(KERNEL)).collect();
    if kernel.is_empty() {
        return Mechanism::User;
    }
    let mut found: Option<Mechanism> = None;
    for frame in kernel.iter().rev() {
        let Some(symbol) = lookup(frame) else { continue };
        match (symbol.role, found) {
            (Role::Owner, _) => return symbol.mechanism,
            (Role::Callee, None) => found = Some(symbol.mechanism),
            (Role::Callee, Some(_)) => {}
        }
    }
    found.unwrap_or(Mechanism::Rest)
}

/// One profile's samples by mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breakdown {
    /// Samples per mechanism, in [`Mechanism::ALL`]'s order.
    pub samples: [u64; 7],
    /// Samples whose stack was lost (see `Profile::lost_samples`): in no mechanism.
    pub lost: u64,
    /// Samples per second per CPU.
    pub hz: u32,
}

impl Breakdown {
    pub fn of(profile: &Profile) -> Breakdown {
        let mut samples = [0; 7];
        for (stack, &count) in &profile.on_cpu {
            samples[classify(stack) as usize] += count;
        }
        Breakdown { samples, lost: profile.lost_samples, hz: profile.hz }
    }

    /// The samples given to `mechanism`.
    pub fn samples(&self, mechanism: Mechanism) -> u64 {
        self.samples[mechanism as usize]
    }

    /// Samples with a stack: the denominator of every share.
    pub fn classified(&self) -> u64 {
        self.samples.iter().sum()
    }

    /// `mechanism`'s percentage of the samples with a stack; `None` with no such sample.
    pub fn share(&self, mechanism: Mechanism) -> Option<f64> {
        let all = self.classified();
        (all > 0).then(|| 100.0 * self.samples(mechanism) as f64 / all as f64)
    }

    /// CPU time in ms the samples of `mechanism` stand for (a sample is `1/hz` s of one CPU).
    pub fn cpu_ms(&self, mechanism: Mechanism) -> Option<f64> {
        samples_ms(self.samples(mechanism), self.hz)
    }

    /// CPU time in ms all samples stand for, lost ones included.
    pub fn total_cpu_ms(&self) -> Option<f64> {
        samples_ms(self.classified() + self.lost, self.hz)
    }
}

/// `samples` at `hz` per CPU as ms of CPU; `None` at 0 Hz.
pub fn samples_ms(samples: u64, hz: u32) -> Option<f64> {
    (hz > 0).then(|| samples as f64 * 1e3 / f64::from(hz))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    const POLL: &str = "server;main;poll;entry_SYSCALL_64_[k];do_syscall_64_[k];__x64_sys_poll_[k];do_sys_poll_[k]";
    const EPOLL: &str = "server;main;epoll_wait;entry_SYSCALL_64_[k];__x64_sys_epoll_wait_[k];do_epoll_wait_[k]";

    #[test]
    fn each_mechanism_gets_its_hand_written_stacks() {
        let cases = [
            (format!("{POLL};sock_poll_[k];tcp_poll_[k]"), Mechanism::FdWalk),
            (format!("{POLL};poll_freewait_[k];remove_wait_queue_[k]"), Mechanism::FdWalk),
            (format!("{POLL};_copy_from_user_[k];rep_movs_alternative_[k]"), Mechanism::FdWalk),
            ("s;select;__x64_sys_select_[k];core_sys_select_[k];do_select_[k];__pollwait_[k]".into(), Mechanism::FdWalk),
            (format!("{EPOLL};ep_send_events_[k];ep_item_poll.isra.0_[k];sock_poll_[k];tcp_poll_[k]"), Mechanism::EpollReady),
            (format!("{EPOLL};_raw_spin_lock_irqsave_[k]"), Mechanism::EpollReady),
            (format!("{POLL};schedule_hrtimeout_range_[k];schedule_[k];__schedule_[k];finish_task_switch.isra.0_[k]"), Mechanism::Scheduler),
            ("s;write;ksys_write_[k];sock_write_iter_[k];tcp_sendmsg_[k];sock_def_readable_[k];__wake_up_sync_key_[k];try_to_wake_up_[k]".into(), Mechanism::Scheduler),
            ("s;read;ksys_read_[k];sock_read_iter_[k];tcp_recvmsg_[k];skb_copy_datagram_iter_[k];_copy_to_iter_[k];rep_movs_alternative_[k]".into(), Mechanism::TcpCopy),
            ("s;sendto;__sys_sendto_[k];tcp_sendmsg_locked_[k];tcp_write_xmit_[k];ip_finish_output2_[k]".into(), Mechanism::TcpCopy),
            ("s;read;_copy_to_iter_[k]".into(), Mechanism::TcpCopy),
            ("s;sendto;tcp_sendmsg_[k];__local_bh_enable_ip_[k];[softirq];handle_softirqs_[k];net_rx_action_[k];__napi_poll_[k];tcp_v4_rcv_[k]".into(), Mechanism::NetSoftirq),
            (format!("{POLL};sock_poll_[k];[hardirq];__sysvec_apic_timer_interrupt_[k]"), Mechanism::Rest),
            ("s;read;[softirq];handle_softirqs_[k];net_rx_action_[k];[hardirq];hrtimer_interrupt_[k]".into(), Mechanism::Rest),
            ("server;main;handle;memcpy".into(), Mechanism::User),
            ("server;[unknown]".into(), Mechanism::User),
            ("s;read;ksys_read_[k];__fdget_pos_[k]".into(), Mechanism::Rest),
            ("schedule;tcp_poll".into(), Mechanism::User), // a user frame is never a kernel one
        ];
        for (stack, mechanism) in cases {
            assert_eq!(classify(&stack), mechanism, "{stack}");
        }
    }

    #[test]
    fn the_shares_add_up_to_100_and_lost_samples_are_apart() {
        let profile = Profile {
            hz: 100,
            on_cpu: BTreeMap::from([
                (format!("{POLL};tcp_poll_[k]"), 30),
                (format!("{POLL};schedule_[k]"), 10),
                ("s;main".into(), 7),
                ("s;read;ksys_read_[k]".into(), 3),
            ]),
            lost_samples: 50,
            ..Profile::default()
        };
        let b = Breakdown::of(&profile);
        assert_eq!(b.classified(), 50);
        let total: f64 = Mechanism::ALL.iter().map(|&m| b.share(m).unwrap()).sum();
        assert!((total - 100.0).abs() < 1e-9, "{total}");
        assert_eq!(b.share(Mechanism::FdWalk), Some(60.0));
        assert_eq!(b.share(Mechanism::User), Some(14.0));
        assert_eq!(b.cpu_ms(Mechanism::FdWalk), Some(300.0), "30 samples at 100 Hz");
        assert_eq!(b.total_cpu_ms(), Some(1000.0), "lost samples were CPU time too");
        assert_eq!(Breakdown::of(&Profile::default()).share(Mechanism::User), None, "no sample: no share");
    }

    #[test]
    fn every_symbol_is_declared_once_and_every_mechanism_has_a_line() {
        let names: HashSet<&str> = SYMBOLS.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), SYMBOLS.len(), "a symbol in two sets");
        for m in Mechanism::ALL {
            assert!(m.description().ends_with('.'), "{m:?}");
            assert_eq!(Mechanism::ALL[m as usize], m, "ALL is in declaration order");
        }
    }

    /// Every symbol not marked optional is a function of the running kernel, so a renamed one
    /// fails here instead of silently emptying its set. Tests run as root: kallsyms has names.
    #[test]
    fn every_required_symbol_is_in_this_kernels_kallsyms() {
        let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms is readable on Linux");
        let kernel: HashSet<&str> =
            kallsyms.lines().filter_map(|l| l.split_whitespace().nth(2)).map(function).collect();
        assert!(kernel.contains("schedule"), "kallsyms lists no names: {} lines", kallsyms.lines().count());
        let missing: Vec<&str> =
            SYMBOLS.iter().filter(|s| !s.optional && !kernel.contains(s.name)).map(|s| s.name).collect();
        assert!(
            missing.is_empty(),
            "not in /proc/kallsyms: {missing:?} (mark them optional if this kernel inlines them)"
        );
    }
}
