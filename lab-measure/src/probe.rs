//! Loading the probes, pointing them at a process tree, and reading what they counted.
//!
//! The probes count for every task whose thread id is marked in `TRACED_TASKS`; they mark a
//! traced task's children themselves (see lab-ebpf). So user space does three things: load and
//! attach, mark the first task, and read `COUNTERS`. Nothing is pinned: dropping [`Probe`]
//! detaches every program and frees every map.
//!
//! Reading is one `bpf()` lookup of a per-CPU struct; the CPUs' copies are summed here.

use std::{fs, path::Path};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuValues, StackTraceMap},
    programs::{
        PerfEvent, RawTracePoint, TracePoint,
        perf_event::{PerfEventConfig, PerfEventLink, PerfEventScope, SamplePolicy, SoftwareEvent},
        raw_trace_point::RawTracePointLink,
        trace_point::TracePointLink,
    },
    util::{nr_cpus, online_cpus},
};
use lab_common::{
    Counters, CurrentTask, MAX_SYSCALLS, MaxReady, OffCpuKey, OnCpu, ProfileCounters, StackKey, SyscallTime, WaitKind,
};

use crate::{
    btf::Btf,
    features::{self, NotMeasured},
    preflight,
    profile::{Profile, ProfileOptions, symbols},
};

/// The compiled probes (lab-ebpf), embedded at build time by `build.rs`.
static PROBES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lab"));

pub struct Probe {
    /// None for [`Probe::disabled`].
    loaded: Option<Loaded>,
    /// Tracepoints this kernel does not have (e.g. epoll_pwait2 before 5.11).
    pub unavailable: Vec<String>,
    /// The figures this kernel cannot give, with what they need (see [`features`]): a report
    /// shows each as not measured, never as 0.
    pub not_measured: Vec<NotMeasured>,
}

struct Loaded {
    // The maps below keep their own fds; the links in `hooks` are detached by `Drop`.
    ebpf: Ebpf,
    /// Every hook, with its link while attached (see [`Probe::set_attached`]).
    hooks: Vec<(Hook, Option<Link>)>,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    traced: Array<MapData, u8>,
    counters: PerCpuArray<MapData, Counters>,
    current: PerCpuArray<MapData, CurrentTask>,
    on_cpu: PerCpuArray<MapData, OnCpu>,
    max_ready: PerCpuArray<MapData, MaxReady>,
    /// With `--timing` only.
    syscall_times: Option<PerCpuArray<MapData, SyscallTime>>,
    /// With `--profile` only.
    profile: Option<ProfileMaps>,
}

/// What the probe can be loaded with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeOptions {
    /// `--timing`: every syscall timed (see [`Probe::syscall_times`]).
    pub timing: bool,
    /// `--profile`: stacks sampled on the CPU, off-CPU time and run-queue delay (see
    /// [`Probe::profile`]).
    pub profile: Option<ProfileOptions>,
}

/// The maps `--profile` reads (see lab-ebpf's `sample_stack` and `count_switch`).
struct ProfileMaps {
    hz: u32,
    stacks: StackTraceMap<MapData>,
    samples: HashMap<MapData, StackKey, u64>,
    off_cpu: HashMap<MapData, OffCpuKey, u64>,
    counters: PerCpuArray<MapData, ProfileCounters>,
    /// When the window opened, by the probe's clock: time away before it is not counted.
    since: Array<MapData, u64>,
}

/// The profile's maps that hold one entry per stack or per thread; sized to 1 without
/// `--profile`, so they cost no memory (a map cannot have 0 entries).
const PROFILE_MAPS: [&str; 4] = ["STACK_TRACES", "STACK_SAMPLES", "OFF_CPU", "OFF_CPU_SLOTS"];

/// Zeroes every CPU's copy of a per-CPU slot. For `CURRENT_TASK`: every CPU looks up its current
/// task afresh at its next syscall (lab-ebpf's `current_task` keeps the answer until the CPU
/// switches tasks), needed after a running task is marked and after re-attaching, when switches
/// went unseen. For `ON_CPU`: a slice that began before the probe saw it is not counted.
fn reset_per_cpu<T: aya::Pod + Default + Clone>(map: &mut PerCpuArray<MapData, T>, what: &str) -> Result<()> {
    let zeros = PerCpuValues::try_from(vec![T::default(); nr_cpus().map_err(|(_, e)| e)?])?;
    map.set(0, zeros, 0).with_context(|| format!("resetting the per-CPU {what}"))
}

impl Probe {
    /// Checks privileges and tracefs, loads every program and attaches it.
    pub fn load() -> Result<Probe> {
        Probe::load_with(ProbeOptions::default())
    }

    /// [`Probe::load`], with what `options` ask for.
    ///
    /// With `timing` (`--timing`) every syscall is timed (see [`Probe::syscall_times`]): a
    /// program on `sys_exit` is attached too, and `count_syscall` notes each entry. With
    /// `profile` (`--profile`) a `perf_event` program samples every CPU's `cpu-clock` and
    /// programs on the wake-up tracepoints mark threads runnable (see [`Probe::profile`]).
    /// Without them their programs are neither verified nor attached, and the verifier drops
    /// the code that serves them from the others (it is behind read-only flags).
    pub fn load_with(options: ProbeOptions) -> Result<Probe> {
        let ProbeOptions { timing, profile } = options;
        preflight::check_privileges()?;
        let tracefs = preflight::ensure_tracefs()?;
        let pid_max: u32 = read_trimmed("/proc/sys/kernel/pid_max")?.parse()?;
        let newtask_pid = format_field_offset(&tracefs, "task/task_newtask", "pid")?;
        let newtask_flags = format_field_offset(&tracefs, "task/task_newtask", "clone_flags")?;
        let task_state = task_state_offset()?;
        let task_pid = match profile {
            Some(_) => task_pid_offset()?,
            None => 0,
        };
        let sampled = match profile {
            Some(options) => {
                anyhow::ensure!(options.hz > 0, "--profile samples at 1 Hz or more");
                let cpus = online_cpus().map_err(|(what, err)| anyhow!("reading {what}: {err}"))?;
                Some((u64::from(options.hz), cpus))
            }
            None => None,
        };

        let (timing_flag, profile_flag) = (u32::from(timing), u32::from(profile.is_some()));
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries("TRACED_TASKS", pid_max)
            .override_global("NEWTASK_PID_OFFSET", &newtask_pid, true)
            .override_global("NEWTASK_FLAGS_OFFSET", &newtask_flags, true)
            .override_global("TIMING", &timing_flag, true)
            .override_global("TASK_STATE_OFFSET", &task_state, true)
            .override_global("PROFILE", &profile_flag, true)
            .override_global("TASK_PID_OFFSET", &task_pid, true);
        if profile.is_none() {
            for map in PROFILE_MAPS {
                loader.map_max_entries(map, 1);
            }
        }
        let mut ebpf = loader.load(PROBES).context("loading the probes")?;
        let logger = aya_log::EbpfLogger::init(&mut ebpf).ok();

        let hooks = hooks(&tracefs, timing, sampled.as_ref().map(|(hz, cpus)| (*hz, cpus.as_slice())));
        let not_measured = features::missing(&tracefs);
        let unavailable = hooks.iter().filter(|h| !h.exists).map(|h| h.to_string()).collect();
        let mut verified = std::collections::HashSet::new();
        for hook in &hooks {
            // One program serves several tracepoints: load it once, attach it to each.
            if verified.insert(hook.program) {
                hook.load(&mut ebpf)?;
            }
        }
        let hooks = hooks.into_iter().filter(|h| h.exists).map(|h| (h, None)).collect();

        let traced = Array::try_from(take_map(&mut ebpf, "TRACED_TASKS")?)?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, "COUNTERS")?)?;
        let current = PerCpuArray::try_from(take_map(&mut ebpf, "CURRENT_TASK")?)?;
        let on_cpu = PerCpuArray::try_from(take_map(&mut ebpf, "ON_CPU")?)?;
        let max_ready = PerCpuArray::try_from(take_map(&mut ebpf, "MAX_READY")?)?;
        let syscall_times =
            if timing { Some(PerCpuArray::try_from(take_map(&mut ebpf, "SYSCALL_TIMES")?)?) } else { None };
        let profile = match profile {
            Some(options) => Some(ProfileMaps {
                hz: options.hz,
                stacks: StackTraceMap::try_from(take_map(&mut ebpf, "STACK_TRACES")?)?,
                samples: HashMap::try_from(take_map(&mut ebpf, "STACK_SAMPLES")?)?,
                off_cpu: HashMap::try_from(take_map(&mut ebpf, "OFF_CPU")?)?,
                counters: PerCpuArray::try_from(take_map(&mut ebpf, "PROFILE_COUNTERS")?)?,
                since: Array::try_from(take_map(&mut ebpf, "PROFILE_SINCE")?)?,
            }),
            None => None,
        };
        let loaded =
            Loaded { ebpf, hooks, logger, traced, counters, current, on_cpu, max_ready, syscall_times, profile };
        let mut probe = Probe { loaded: Some(loaded), unavailable, not_measured };
        probe.set_attached(true)?;
        Ok(probe)
    }

    /// No probe at all: nothing is loaded, every snapshot reads zero. Runs the same workload
    /// untraced, to measure what tracing costs (`--no-trace`, `iolab bench`).
    pub fn disabled() -> Probe {
        Probe { loaded: None, unavailable: Vec::new(), not_measured: Vec::new() }
    }

    /// Detaches every program (`false`) or attaches them again (`true`); the maps and what they
    /// counted stay. Detached, the probe costs nothing: no program runs anywhere, and with no
    /// syscall tracepoint left the kernel takes every task off its syscall slow path again. A
    /// task started while detached is not followed. `iolab bench` uses this to measure the
    /// probe's cost in phases of one run.
    pub fn set_attached(&mut self, attached: bool) -> Result<()> {
        let Some(loaded) = &mut self.loaded else { return Ok(()) };
        if !attached {
            detach_all(loaded.hooks.iter_mut().filter_map(|(_, link)| link.take()).collect());
            return Ok(());
        }
        for (hook, link) in loaded.hooks.iter_mut().filter(|(_, link)| link.is_none()) {
            *link = Some(hook.attach(&mut loaded.ebpf)?);
            if hook.program == "count_switch" {
                // From here on every switch is seen: forget what the CPUs knew before.
                reset_per_cpu(&mut loaded.current, "current task")?;
                reset_per_cpu(&mut loaded.on_cpu, "on-CPU slice")?;
            }
        }
        Ok(())
    }

    /// Marks one task (thread id) as traced. Tasks it starts from now on are traced too.
    pub fn trace_task(&mut self, tid: u32) -> Result<()> {
        let Some(loaded) = &mut self.loaded else { return Ok(()) };
        loaded.traced.set(tid, 1, 0).with_context(|| format!("marking task {tid} as traced"))?;
        // The task may be running right now, on a CPU that already looked it up.
        reset_per_cpu(&mut loaded.current, "current task")
    }

    /// Sum of every CPU's counters, as of now.
    pub fn snapshot(&mut self) -> Result<Counters> {
        let Some(loaded) = &mut self.loaded else { return Ok(Counters::ZERO) };
        if let Some(logger) = &mut loaded.logger {
            logger.flush();
        }
        let per_cpu = loaded.counters.get(&0, 0).context("reading the counters")?;
        let mut total = Counters::ZERO;
        for cpu in per_cpu.iter() {
            lab_common::add_words(&mut total, cpu);
        }
        Ok(total)
    }

    /// Forgets the most ready fds any wait call returned: from now on [`Probe::max_ready`] is the
    /// maximum over the calls that return after this. Called when a measured window opens, with
    /// the server idle: a call returning while the CPUs' copies are zeroed one by one could
    /// otherwise be kept or lost.
    pub fn reset_max_ready(&mut self) -> Result<()> {
        let Some(loaded) = &mut self.loaded else { return Ok(()) };
        reset_per_cpu(&mut loaded.max_ready, "most ready fds")
    }

    /// The most ready descriptors one wait call returned since [`Probe::reset_max_ready`], by
    /// [`WaitKind`]: the largest of the CPUs' copies.
    pub fn max_ready(&mut self) -> Result<MaxReady> {
        let Some(loaded) = &mut self.loaded else { return Ok(MaxReady::default()) };
        let per_cpu = loaded.max_ready.get(&0, 0).context("reading the most ready fds")?;
        let mut max = MaxReady::default();
        for cpu in per_cpu.iter() {
            for (m, c) in max.iter_mut().zip(cpu) {
                *m = (*m).max(*c);
            }
        }
        Ok(max)
    }

    /// With `--timing`: every syscall's calls, errors and on-CPU time so far, by number (each
    /// summed over the CPUs; one `bpf()` call per syscall number). None without it.
    pub fn syscall_times(&mut self) -> Result<Option<Vec<SyscallTime>>> {
        let Some(times) = self.loaded.as_mut().and_then(|l| l.syscall_times.as_mut()) else { return Ok(None) };
        let mut all = vec![SyscallTime::ZERO; MAX_SYSCALLS];
        for (nr, total) in all.iter_mut().enumerate() {
            let per_cpu = times.get(&(nr as u32), 0).context("reading the syscall times")?;
            for cpu in per_cpu.iter() {
                lab_common::add_words(total, cpu);
            }
        }
        Ok(Some(all))
    }
}

impl Probe {
    /// With `--profile`: starts the profile afresh, as a window opens. The samples and the
    /// off-CPU time counted so far are forgotten, and time away from a CPU before now will not
    /// count (a thread asleep since before the window adds only its time asleep inside it). The
    /// stacks themselves stay interned: their ids are only names.
    pub fn reset_profile(&mut self) -> Result<()> {
        let Some(maps) = self.loaded.as_mut().and_then(|l| l.profile.as_mut()) else { return Ok(()) };
        maps.since.set(0, monotonic_ns(), 0).context("setting the profile's start")?;
        let samples: Vec<StackKey> = maps.samples.keys().filter_map(Result::ok).collect();
        for key in samples {
            let _ = maps.samples.remove(&key); // gone already if another reset raced it
        }
        let off_cpu: Vec<OffCpuKey> = maps.off_cpu.keys().filter_map(Result::ok).collect();
        for key in off_cpu {
            let _ = maps.off_cpu.remove(&key);
        }
        reset_per_cpu(&mut maps.counters, "profile counters")
    }

    /// With `--profile`: the stacks since [`Probe::reset_profile`], their frames named. Read it
    /// once, as the window closes, while the traced processes still live: their user frames are
    /// named from their own memory maps. None without `--profile`.
    pub fn profile(&mut self) -> Result<Option<Profile>> {
        let Some(maps) = self.loaded.as_mut().and_then(|l| l.profile.as_mut()) else { return Ok(None) };
        let mut counters = ProfileCounters::ZERO;
        for cpu in maps.counters.get(&0, 0).context("reading the profile counters")?.iter() {
            lab_common::add_words(&mut counters, cpu);
        }
        if counters.lost_off_cpu > 0 {
            log::warn!("--profile: {} switch-outs not counted off the CPU (its map is full)", counters.lost_off_cpu);
        }
        let samples: Vec<(StackKey, u64)> = maps.samples.iter().filter_map(Result::ok).collect();
        let off_cpu: Vec<(OffCpuKey, u64)> = maps.off_cpu.iter().filter_map(Result::ok).collect();
        let stacks = &maps.stacks;
        let frames = |id: i32| -> Vec<u64> {
            if id < 0 {
                return Vec::new();
            }
            stacks.get(&(id as u32), 0).map(|s| s.frames().iter().map(|f| f.ip).collect()).unwrap_or_default()
        };
        let samples = samples
            .into_iter()
            .map(|(key, count)| symbols::Sample {
                tgid: key.tgid,
                comm: key.comm,
                kernel: frames(key.kernel_stack),
                user: frames(key.user_stack),
                value: count,
            })
            .collect();
        let off_cpu = off_cpu
            .into_iter()
            .map(|(key, ns)| symbols::Sample {
                tgid: key.tgid,
                comm: key.comm,
                kernel: frames(key.kernel_stack),
                user: Vec::new(),
                value: ns,
            })
            .collect();
        let (on_cpu, off_cpu) = symbols::Symbols::new().fold(samples, off_cpu);
        Ok(Some(Profile {
            hz: maps.hz,
            on_cpu,
            lost_samples: counters.lost_samples,
            off_cpu_ns: off_cpu,
            run_queue: crate::profile::RunQueue {
                waits: counters.run_queue_waits,
                delay_ns: counters.run_queue_delay_ns,
                histogram: counters.run_queue_histogram,
            },
        }))
    }
}

/// `CLOCK_MONOTONIC` in ns: the clock of the probe's `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Syscall `nr`'s name (the `syscalls` crate names them).
pub fn syscall_name(nr: usize) -> String {
    syscalls::Sysno::new(nr).map_or_else(|| format!("syscall_{nr}"), |s| s.name().to_owned())
}

/// The syscalls timed between two readings of [`Probe::syscall_times`], by name: those called.
pub fn syscall_times_between(
    before: &[SyscallTime],
    after: &[SyscallTime],
) -> std::collections::BTreeMap<String, SyscallTime> {
    let mut named = std::collections::BTreeMap::new();
    for (nr, (b, a)) in before.iter().zip(after).enumerate() {
        let delta = lab_common::sub_words(a, b);
        if delta.calls > 0 {
            named.insert(syscall_name(nr), delta);
        }
    }
    named
}

/// The program that does nothing (see [`EmptyProbe`]).
const EMPTY_PROGRAM: &str = "empty_sys_enter";

/// `empty_sys_enter` alone on `sys_enter`: a program that does nothing, on the hook every syscall
/// probe needs. `iolab bench` attaches it in place of [`Probe`] to measure the floor: what the
/// hook costs before the probe does any work. Loaded from the same object; its maps go unused.
pub struct EmptyProbe {
    // Field order: the link detaches before the object goes.
    link: Option<Link>,
    hook: Hook,
    ebpf: Ebpf,
}

impl EmptyProbe {
    /// Loads it, detached.
    pub fn load() -> Result<EmptyProbe> {
        preflight::check_privileges()?;
        let mut ebpf = EbpfLoader::new().load(PROBES).context("loading the probes")?;
        let hook = Hook { program: EMPTY_PROGRAM, kind: HookKind::Raw("sys_enter"), exists: true };
        hook.load(&mut ebpf)?;
        Ok(EmptyProbe { link: None, hook, ebpf })
    }

    pub fn set_attached(&mut self, attached: bool) -> Result<()> {
        if !attached {
            self.link = None;
        } else if self.link.is_none() {
            self.link = Some(self.hook.attach(&mut self.ebpf)?);
        }
        Ok(())
    }
}

/// The names of every program iolab loads (the kernel keeps their first 15 characters): how a
/// test or a user tells the lab's programs from others in `bpftool prog`.
pub fn program_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = hooks(Path::new(""), true, Some((1, &[0]))).iter().map(|h| h.program).collect();
    names.push(EMPTY_PROGRAM);
    names.sort_unstable();
    names.dedup();
    names
}

/// Where each program attaches. `sampled`: with `--profile`, the frequency and the CPUs to sample.
fn hooks(tracefs: &Path, timing: bool, sampled: Option<(u64, &[u32])>) -> Vec<Hook> {
    let raw = |program, name| Hook { program, kind: HookKind::Raw(name), exists: true };
    let tracepoint = |program, category: &'static str, name: String| {
        // Per-syscall tracepoints vary by kernel (epoll_pwait2 came in 5.11: see `features`); the
        // others do not.
        let exists = category != "syscalls" || tracefs.join("events").join(category).join(&name).exists();
        Hook { program, kind: HookKind::Tracepoint(category, name), exists }
    };
    let mut hooks = vec![
        // count_switch first: it keeps count_syscall's per-CPU answer fresh (see `reset_per_cpu`).
        raw("count_switch", "sched_switch"),
        raw("count_syscall", "sys_enter"),
        raw("forget_task", "sched_process_exit"),
        tracepoint("follow_fork", "task", "task_newtask".into()),
    ];
    // Only exits: the entries are read by count_syscall (see lab-ebpf).
    for kind in WaitKind::ALL {
        hooks.push(tracepoint("wait_exit", "syscalls", format!("sys_exit_{}", kind.syscall_name())));
    }
    // An interrupted poll is resumed by restart_syscall, and returns there (see lab-ebpf).
    hooks.push(tracepoint("wait_exit", "syscalls", "sys_exit_restart_syscall".into()));
    hooks.push(tracepoint("epoll_ctl_exit", "syscalls", "sys_exit_epoll_ctl".into()));
    // io_uring's own tracepoints: requests submitted (named io_uring_submit_sqe before Linux 6.2)
    // and completions posted (both 5.5: see `features`).
    let io_uring: [(&str, &[&str]); 2] = [
        ("count_submission", &["io_uring_submit_req", "io_uring_submit_sqe"]),
        ("count_completion", &["io_uring_complete"]),
    ];
    for (program, names) in io_uring {
        let found = names.iter().find(|name| tracefs.join("events/io_uring").join(name).exists());
        hooks.push(Hook { program, kind: HookKind::Raw(found.unwrap_or(&names[0])), exists: found.is_some() });
    }
    // Interrupts: time that runs on whatever thread is current, to be told apart from its own.
    hooks.extend([
        raw("softirq_begins", "softirq_entry"),
        raw("softirq_ends", "softirq_exit"),
        raw("hardirq_begins", "irq_handler_entry"),
        raw("hardirq_ends", "irq_handler_exit"),
    ]);
    if timing {
        hooks.push(raw("time_exit", "sys_exit"));
    }
    if let Some((hz, cpus)) = sampled {
        // A new thread is first made runnable by sched_wakeup_new, a sleeping one by sched_wakeup.
        hooks.push(raw("mark_runnable", "sched_wakeup"));
        hooks.push(raw("mark_runnable", "sched_wakeup_new"));
        for &cpu in cpus {
            hooks.push(Hook { program: "sample_stack", kind: HookKind::Perf { cpu, hz }, exists: true });
        }
    }
    hooks
}

/// One program on one hook.
struct Hook {
    program: &'static str,
    kind: HookKind,
    /// Whether this kernel has the tracepoint.
    exists: bool,
}

enum HookKind {
    Raw(&'static str),
    Tracepoint(&'static str, String),
    /// The software `cpu-clock` event of one CPU, every task there, `hz` times a second.
    Perf {
        cpu: u32,
        hz: u64,
    },
}

/// An attachment; dropping it detaches the program.
#[allow(dead_code)] // held for its Drop
enum Link {
    Raw(RawTracePointLink),
    Tracepoint(TracePointLink),
    Perf(PerfEventLink),
}

/// Detaches all of `links` at once. Detaching a `syscalls:*` or `task:*` tracepoint waits for the
/// kernel (~40-80 ms each here: ~0.9 s for the eleven one after the other); dropped from a thread
/// each they take ~0.45 s, as the kernel still serializes part of the work.
fn detach_all(links: Vec<Link>) {
    std::thread::scope(|scope| {
        for link in links {
            scope.spawn(move || drop(link));
        }
    });
}

impl Drop for Loaded {
    fn drop(&mut self) {
        detach_all(self.hooks.iter_mut().filter_map(|(_, link)| link.take()).collect());
    }
}

impl Hook {
    /// Loads (verifies) its program.
    fn load(&self, ebpf: &mut Ebpf) -> Result<()> {
        match self.kind {
            HookKind::Raw(_) => program_mut::<RawTracePoint>(ebpf, self.program)?.load(),
            HookKind::Tracepoint(..) => program_mut::<TracePoint>(ebpf, self.program)?.load(),
            HookKind::Perf { .. } => program_mut::<PerfEvent>(ebpf, self.program)?.load(),
        }
        .with_context(|| format!("verifying {}", self.program))
    }

    fn attach(&self, ebpf: &mut Ebpf) -> Result<Link> {
        let context = || format!("attaching {} to {self}", self.program);
        Ok(match &self.kind {
            HookKind::Raw(name) => {
                let program = program_mut::<RawTracePoint>(ebpf, self.program)?;
                let id = program.attach(name).with_context(context)?;
                Link::Raw(program.take_link(id)?)
            }
            HookKind::Tracepoint(category, name) => {
                let program = program_mut::<TracePoint>(ebpf, self.program)?;
                let id = program.attach(category, name).with_context(context)?;
                Link::Tracepoint(program.take_link(id)?)
            }
            &HookKind::Perf { cpu, hz } => {
                let program = program_mut::<PerfEvent>(ebpf, self.program)?;
                let event = PerfEventConfig::Software(SoftwareEvent::CpuClock);
                let scope = PerfEventScope::AllProcessesOneCpu { cpu };
                let id = program.attach(event, scope, SamplePolicy::Frequency(hz), false).with_context(|| {
                    format!(
                        "{}; the kernel takes at most kernel.perf_event_max_sample_rate samples a second",
                        context()
                    )
                })?;
                Link::Perf(program.take_link(id)?)
            }
        })
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            HookKind::Raw(name) => write!(f, "{name}"),
            HookKind::Tracepoint(category, name) => write!(f, "{category}:{name}"),
            HookKind::Perf { cpu, hz } => write!(f, "cpu-clock of CPU {cpu} at {hz} Hz"),
        }
    }
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let program = ebpf.program_mut(name).ok_or_else(|| anyhow!("probe has no program {name}"))?;
    Ok(program.try_into()?)
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<aya::maps::Map> {
    ebpf.take_map(name).ok_or_else(|| anyhow!("probe has no map {name}"))
}

/// Where `count_switch` reads the leaving task's state (lab-ebpf's `TASK_STATE_OFFSET`): 0 when
/// `sched_switch` passes it as its fourth argument (5.18), else the offset of the state in
/// `struct task_struct` (`__state` from 5.14, `state` before), from the kernel's BTF. Without
/// BTF the argument is taken, and a kernel without it refuses to attach `count_switch`.
fn task_state_offset() -> Result<u32> {
    let Ok(btf) = Btf::from_sys_fs() else { return Ok(0) };
    match btf.raw_tracepoint_args("sched_switch") {
        Some(args) if args < 4 => btf
            .member_offset("task_struct", &["__state", "state"])
            .map(|(_, offset)| offset)
            .context("sched_switch passes no prev_state here, and the kernel's BTF has no task_struct state"),
        _ => Ok(0),
    }
}

/// Where the probe reads a task's pid (lab-ebpf's `TASK_PID_OFFSET`), from the kernel's BTF.
fn task_pid_offset() -> Result<u32> {
    let btf = Btf::from_sys_fs().context("--profile reads where a task's pid is from the kernel's BTF")?;
    let (_, offset) = btf.member_offset("task_struct", &["pid"]).context("the kernel's BTF has no task_struct pid")?;
    Ok(offset)
}

fn read_trimmed(path: &str) -> Result<String> {
    Ok(fs::read_to_string(path).with_context(|| format!("reading {path}"))?.trim().to_owned())
}

/// The byte offset of `field` in a tracepoint's record, from its tracefs `format` file:
/// `\tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;`
pub fn format_field_offset(tracefs: &Path, event: &str, field: &str) -> Result<u32> {
    let path = tracefs.join("events").join(event).join("format");
    let format = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for line in format.lines() {
        let mut parts = line.trim().split(';').map(str::trim);
        let (Some(decl), Some(offset)) = (parts.next(), parts.next()) else { continue };
        let name = decl.rsplit(' ').next().unwrap_or_default();
        if name == field
            && let Some(value) = offset.strip_prefix("offset:")
        {
            return Ok(value.parse()?);
        }
    }
    bail!("{} has no field {field}", path.display())
}

/// What the probe counted between two snapshots.
pub struct Delta(pub Counters);

impl Delta {
    pub fn between(before: &Counters, after: &Counters) -> Delta {
        Delta(lab_common::sub_words(after, before))
    }

    /// Non-zero syscall counts by name (the `syscalls` crate names them).
    pub fn syscalls_by_name(&self) -> std::collections::BTreeMap<String, u64> {
        let mut named = std::collections::BTreeMap::new();
        for (nr, &count) in self.0.syscalls.iter().enumerate() {
            if count > 0 {
                named.insert(syscall_name(nr), count);
            }
        }
        if self.0.syscall_out_of_range > 0 {
            named.insert("out_of_range".to_owned(), self.0.syscall_out_of_range);
        }
        named
    }
}
