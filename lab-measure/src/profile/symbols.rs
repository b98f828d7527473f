//! Naming and folding the stacks the probe counted: kernel frames from `/proc/kallsyms`, user
//! frames from the live process (its memory maps and the ELF symbols of what is mapped there),
//! both through `blazesym`, Rust and C++ names demangled.
//!
//! A stack comes from the kernel as instruction pointers, leaf first. Every frame but the leaf
//! is a return address, which may already lie in the next function (after a call that does not
//! return), so it is named one byte back, as perf does.

use std::collections::{BTreeMap, HashMap};

use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Kernel, Process, Source},
};
use lab_common::COMM_LEN;

use super::{HARDIRQ_FRAME, SOFTIRQ_FRAME, UNKNOWN_FRAME};

/// One stack the probe counted, as it came from the kernel.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The process, whose memory maps name the user frames.
    pub tgid: u32,
    /// The thread's name (`comm`), NUL-padded.
    pub comm: [u8; COMM_LEN],
    /// Instruction pointers, leaf first; empty when there is no such stack.
    pub kernel: Vec<u64>,
    pub user: Vec<u64>,
    /// Samples, or ns.
    pub value: u64,
}

/// Where interrupt work begins in a kernel stack: the kernel's entry into it, and the frame
/// inserted before it. Softirqs run from `__do_softirq` (which calls `handle_softirqs` since
/// Linux 6.8, and the interrupt exit calls `handle_softirqs` directly); hard interrupts enter
/// through `common_interrupt` (device interrupts) or a `sysvec_*` handler (the local APIC's
/// timer, IPIs), each behind an `asm_` stub since 5.8.
const INTERRUPT_ENTRIES: &[(Entry, &str)] = &[
    (Entry::Exact("__do_softirq"), SOFTIRQ_FRAME),
    (Entry::Exact("handle_softirqs"), SOFTIRQ_FRAME),
    (Entry::Exact("asm_common_interrupt"), HARDIRQ_FRAME),
    (Entry::Exact("common_interrupt"), HARDIRQ_FRAME),
    (Entry::Prefix("asm_sysvec_"), HARDIRQ_FRAME),
    (Entry::Prefix("sysvec_"), HARDIRQ_FRAME),
    (Entry::Prefix("__sysvec_"), HARDIRQ_FRAME),
];

/// The probe's own frames at the leaf of an off-CPU stack: `bpf_get_stackid` walks it from inside
/// `count_switch`, under the tracepoint's call into the program (`__traceiter_*`, `bpf_trace_run*`,
/// `__bpf_trace_*` as the kernel names them), below `__schedule`. They are not where the thread
/// blocked, so they are cut. (On-CPU samples keep them: there they are the probe's real cost.)
const PROBE_FRAMES: &[&str] = &["bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_"];

/// `kernel`, root first, without the probe's frames at its leaf (see [`PROBE_FRAMES`]).
fn without_probe_frames<'a>(kernel: &'a [&'a str]) -> &'a [&'a str] {
    let keep = kernel.iter().rposition(|name| !PROBE_FRAMES.iter().any(|p| name.starts_with(p)));
    &kernel[..keep.map_or(0, |at| at + 1)]
}

enum Entry {
    Exact(&'static str),
    Prefix(&'static str),
}

/// The frame to insert before kernel function `name`, if interrupt work begins there.
fn interrupt_marker(name: &str) -> Option<&'static str> {
    INTERRUPT_ENTRIES.iter().find_map(|(entry, marker)| {
        let found = match entry {
            Entry::Exact(exact) => name == *exact,
            Entry::Prefix(prefix) => name.starts_with(prefix),
        };
        found.then_some(*marker)
    })
}

/// A folded stack: the thread's name, then the user frames and the kernel frames, each from the
/// root to the leaf, joined by `;`. Kernel frames are suffixed `_[k]`, and the marker of
/// [`INTERRUPT_ENTRIES`] goes before the first frame of each run of entry frames (the `asm_`
/// stub and its handler are one entry). A `;` inside a name (Rust's `[u8; 16]`) would split the
/// frame, so it becomes `:`. A run of user frames that cannot be named is one `[unknown]`: a
/// frame-pointer walk through code built without them (the C library's thread start) follows
/// whatever the stack holds, up to the kernel's depth limit, and draws a tower of nothing.
pub fn fold(thread: &str, user: &[&str], kernel: &[&str]) -> String {
    let clean = |name: &str| if name.is_empty() { UNKNOWN_FRAME.to_owned() } else { name.replace(';', ":") };
    let mut frames: Vec<String> = Vec::with_capacity(1 + user.len() + kernel.len() + 2);
    frames.push(clean(thread));
    for name in user.iter().map(|name| clean(name)) {
        if name != UNKNOWN_FRAME || frames.len() < 2 || frames[frames.len() - 1] != UNKNOWN_FRAME {
            frames.push(name);
        }
    }
    let mut previous = None;
    for name in kernel {
        let marker = interrupt_marker(name);
        if let Some(marker) = marker
            && previous != Some(marker)
        {
            frames.push(marker.to_owned());
        }
        previous = marker;
        frames.push(format!("{}_[k]", clean(name)));
    }
    frames.join(";")
}

/// A thread's name from its NUL-padded `comm`.
pub fn thread_name(comm: &[u8; COMM_LEN]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

/// The address to name for frame `index` of a leaf-first stack (see the module's doc).
fn lookup_address(index: usize, ip: u64) -> u64 {
    if index == 0 { ip } else { ip.saturating_sub(1) }
}

/// Names frames, and folds stacks.
pub struct Symbols {
    symbolizer: Symbolizer,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols::new()
    }
}

impl Symbols {
    pub fn new() -> Symbols {
        Symbols { symbolizer: Symbolizer::builder().enable_demangling(true).build() }
    }

    /// The on-CPU samples and the off-CPU stacks, folded, with their values summed by folded
    /// stack. Called while the processes live: a process gone leaves its user frames unknown.
    pub fn fold(&self, on_cpu: Vec<Sample>, off_cpu: Vec<Sample>) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let all = || on_cpu.iter().chain(&off_cpu);
        // One pass over kallsyms for every kernel frame, one per process for its user frames.
        let kernel: Vec<u64> = addresses(all().map(|s| &s.kernel));
        let kernel_names =
            self.names(&Source::Kernel(Kernel { vmlinux: blazesym::MaybeDefault::None, ..Kernel::default() }), &kernel);
        let mut user_names: HashMap<u32, HashMap<u64, String>> = HashMap::new();
        let mut tgids: Vec<u32> = all().filter(|s| !s.user.is_empty()).map(|s| s.tgid).collect();
        tgids.sort_unstable();
        tgids.dedup();
        for tgid in tgids {
            let user = addresses(all().filter(|s| s.tgid == tgid).map(|s| &s.user));
            user_names.insert(tgid, self.names(&Source::Process(Process::new(tgid.into())), &user));
        }
        let fold_all = |samples: Vec<Sample>, off_cpu: bool| {
            let mut folded = BTreeMap::new();
            for sample in samples {
                let name = |names: Option<&HashMap<u64, String>>, index: usize, ip: u64| -> String {
                    let at = lookup_address(index, ip);
                    names.and_then(|n| n.get(&at)).cloned().unwrap_or_else(|| UNKNOWN_FRAME.to_owned())
                };
                let user: Vec<String> = sample
                    .user
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, &ip)| name(user_names.get(&sample.tgid), i, ip))
                    .collect();
                let kernel: Vec<String> =
                    sample.kernel.iter().enumerate().rev().map(|(i, &ip)| name(Some(&kernel_names), i, ip)).collect();
                let user: Vec<&str> = user.iter().map(String::as_str).collect();
                let kernel: Vec<&str> = kernel.iter().map(String::as_str).collect();
                let kernel = if off_cpu { without_probe_frames(&kernel) } else { &kernel };
                *folded.entry(fold(&thread_name(&sample.comm), &user, kernel)).or_insert(0) += sample.value;
            }
            folded
        };
        (fold_all(on_cpu, false), fold_all(off_cpu, true))
    }

    /// The names of `addresses` in `source`; an address it cannot name is left out.
    fn names(&self, source: &Source, addresses: &[u64]) -> HashMap<u64, String> {
        if addresses.is_empty() {
            return HashMap::new();
        }
        let Ok(found) = self.symbolizer.symbolize(source, Input::AbsAddr(addresses)) else {
            return HashMap::new(); // the process is gone, or kallsyms unreadable: all unknown
        };
        addresses
            .iter()
            .zip(found)
            .filter_map(|(&at, sym)| match sym {
                Symbolized::Sym(sym) => Some((at, sym.name.into_owned())),
                Symbolized::Unknown(_) => None,
            })
            .collect()
    }
}

/// The distinct addresses to name in leaf-first `stacks`.
fn addresses<'a>(stacks: impl Iterator<Item = &'a Vec<u64>>) -> Vec<u64> {
    let mut all: Vec<u64> =
        stacks.flat_map(|stack| stack.iter().enumerate().map(|(i, &ip)| lookup_address(i, ip))).collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_thread_then_user_then_kernel_frames_root_first() {
        let folded = fold("server", &["main", "serve"], &["entry_SYSCALL_64", "do_syscall_64", "__x64_sys_read"]);
        assert_eq!(folded, "server;main;serve;entry_SYSCALL_64_[k];do_syscall_64_[k];__x64_sys_read_[k]");
        assert_eq!(fold("spin", &["main", "spin"], &[]), "spin;main;spin");
        assert_eq!(fold("kworker/0:1", &[], &["worker_thread"]), "kworker/0:1;worker_thread_[k]");
        // A walk gone astray: the unnamed frames in a row are one.
        let astray = ["[unknown]", "thread_start", "", "[unknown]", "[unknown]", "recv"];
        assert_eq!(fold("t", &astray, &[]), "t;[unknown];thread_start;[unknown];recv");
    }

    #[test]
    fn marks_where_a_softirq_and_a_hard_interrupt_begin() {
        // A loopback sendto running the peer's receive: bottom halves re-enabled inside the call.
        let kernel = [
            "__x64_sys_sendto",
            "__local_bh_enable_ip",
            "do_softirq",
            "__do_softirq",
            "handle_softirqs",
            "net_rx_action",
        ];
        assert_eq!(
            fold("t", &[], &kernel),
            "t;__x64_sys_sendto_[k];__local_bh_enable_ip_[k];do_softirq_[k];[softirq];__do_softirq_[k];\
             handle_softirqs_[k];net_rx_action_[k]"
        );
        // The timer interrupt, its stub and handler one entry, and the softirq on its way out.
        let kernel = [
            "asm_sysvec_apic_timer_interrupt",
            "sysvec_apic_timer_interrupt",
            "irq_exit_rcu",
            "handle_softirqs",
            "run_timer_softirq",
        ];
        assert_eq!(
            fold("t", &["spin"], &kernel),
            "t;spin;[hardirq];asm_sysvec_apic_timer_interrupt_[k];sysvec_apic_timer_interrupt_[k];irq_exit_rcu_[k];\
             [softirq];handle_softirqs_[k];run_timer_softirq_[k]"
        );
        assert_eq!(
            fold("t", &[], &["asm_common_interrupt", "common_interrupt"]),
            "t;[hardirq];asm_common_interrupt_[k];common_interrupt_[k]"
        );
    }

    #[test]
    fn a_semicolon_in_a_name_does_not_split_the_frame_and_nameless_is_unknown() {
        assert_eq!(fold("t", &["<[u8; 16] as Debug>::fmt", ""], &[]), "t;<[u8: 16] as Debug>::fmt;[unknown]");
        assert_eq!(fold("", &[], &[]), "[unknown]");
    }

    #[test]
    fn the_probes_own_frames_are_cut_from_the_leaf_of_an_off_cpu_stack() {
        let kernel = [
            "vfs_read",
            "pipe_read",
            "schedule",
            "__schedule",
            "bpf_trace_run4",
            "bpf_prog_d217d3121ea1b9b0_count_switch",
        ];
        assert_eq!(without_probe_frames(&kernel), ["vfs_read", "pipe_read", "schedule", "__schedule"]);
        assert_eq!(without_probe_frames(&["__traceiter_sched_switch", "__bpf_trace_sched_switch"]), [] as [&str; 0]);
        assert_eq!(
            without_probe_frames(&["bpf_prog_1_x", "schedule"]),
            ["bpf_prog_1_x", "schedule"],
            "only at the leaf"
        );
    }

    #[test]
    fn thread_names_end_at_the_first_nul() {
        let mut comm = [0u8; COMM_LEN];
        comm[..5].copy_from_slice(b"iolab");
        assert_eq!(thread_name(&comm), "iolab");
        assert_eq!(thread_name(b"exactly16chars!!"), "exactly16chars!!");
    }

    #[test]
    fn return_addresses_are_named_one_byte_back() {
        let stacks = [vec![0x1000, 0x2000], vec![0x1000, 0x3001]];
        assert_eq!(addresses(stacks.iter()), [0x1000, 0x1fff, 0x3000]);
    }

    /// This process's own frames, named through its memory maps.
    #[test]
    fn names_a_live_processs_own_function() {
        let ip = names_a_live_processs_own_function as fn() as usize as u64;
        let sample = Sample {
            tgid: std::process::id(),
            comm: *b"test\0\0\0\0\0\0\0\0\0\0\0\0",
            kernel: vec![],
            user: vec![ip],
            value: 3,
        };
        let (on_cpu, _) = Symbols::new().fold(vec![sample], vec![]);
        let (stack, count) = on_cpu.into_iter().next().unwrap();
        assert_eq!(count, 3);
        assert!(stack.starts_with("test;") && stack.ends_with("names_a_live_processs_own_function"), "{stack}");
    }
}
