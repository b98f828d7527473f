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
    maps::{Array, MapData, PerCpuArray},
    programs::{RawTracePoint, TracePoint},
};
use lab_common::{Counters, WaitKind};

use crate::preflight;

/// The compiled probes (lab-ebpf), embedded at build time by `build.rs`.
static PROBES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lab"));

pub struct Probe {
    /// None for [`Probe::disabled`].
    loaded: Option<Loaded>,
    /// Tracepoints this kernel does not have (e.g. epoll_pwait2 before 5.11).
    pub unavailable: Vec<String>,
}

struct Loaded {
    // Dropping `ebpf` detaches the programs; the maps below keep their own fds.
    _ebpf: Ebpf,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    traced: Array<MapData, u8>,
    counters: PerCpuArray<MapData, Counters>,
}

impl Probe {
    /// Checks privileges and tracefs, loads every program and attaches it.
    pub fn load() -> Result<Probe> {
        preflight::check_privileges()?;
        let tracefs = preflight::ensure_tracefs()?;
        let pid_max: u32 = read_trimmed("/proc/sys/kernel/pid_max")?.parse()?;
        let newtask_pid = format_field_offset(&tracefs, "task/task_newtask", "pid")?;
        let newtask_flags = format_field_offset(&tracefs, "task/task_newtask", "clone_flags")?;

        let mut ebpf = EbpfLoader::new()
            .map_max_entries("TRACED_TASKS", pid_max)
            .override_global("NEWTASK_PID_OFFSET", &newtask_pid, true)
            .override_global("NEWTASK_FLAGS_OFFSET", &newtask_flags, true)
            .load(PROBES)
            .context("loading the probes")?;
        let logger = aya_log::EbpfLogger::init(&mut ebpf).ok();

        for (program, hook) in [
            ("count_syscall", "sys_enter"),
            ("count_switch", "sched_switch"),
            ("forget_task", "sched_process_exit"),
        ] {
            let p: &mut RawTracePoint = program_mut(&mut ebpf, program)?;
            p.load().with_context(|| format!("verifying {program}"))?;
            p.attach(hook).with_context(|| format!("attaching {program} to {hook}"))?;
        }

        let mut unavailable = Vec::new();
        let mut tracepoints: Vec<(&str, String, String)> =
            vec![("follow_fork", "task".into(), "task_newtask".into())];
        // Only exits: the entries are read by count_syscall (see lab-ebpf).
        for kind in WaitKind::ALL {
            tracepoints.push(("wait_exit", "syscalls".into(), format!("sys_exit_{}", kind.syscall_name())));
        }
        tracepoints.push(("epoll_ctl_exit", "syscalls".into(), "sys_exit_epoll_ctl".into()));
        let mut loaded = std::collections::HashSet::new();
        for (program, category, name) in tracepoints {
            let p: &mut TracePoint = program_mut(&mut ebpf, program)?;
            // One program serves several tracepoints: load it once, attach it to each.
            if loaded.insert(program) {
                p.load().with_context(|| format!("verifying {program}"))?;
            }
            let exists = tracefs.join("events").join(&category).join(&name).exists();
            if !exists && category == "syscalls" {
                unavailable.push(format!("{category}:{name}"));
                continue;
            }
            p.attach(&category, &name)
                .with_context(|| format!("attaching {program} to {category}:{name}"))?;
        }

        let traced = Array::try_from(take_map(&mut ebpf, "TRACED_TASKS")?)?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, "COUNTERS")?)?;
        Ok(Probe { loaded: Some(Loaded { _ebpf: ebpf, logger, traced, counters }), unavailable })
    }

    /// No probe at all: nothing is loaded, every snapshot reads zero. Runs the same workload
    /// untraced, to measure what tracing costs (`--no-trace`, `iolab bench`).
    pub fn disabled() -> Probe {
        Probe { loaded: None, unavailable: Vec::new() }
    }

    /// Marks one task (thread id) as traced. Tasks it starts from now on are traced too.
    pub fn trace_task(&mut self, tid: u32) -> Result<()> {
        let Some(loaded) = &mut self.loaded else { return Ok(()) };
        loaded.traced.set(tid, 1, 0).with_context(|| format!("marking task {tid} as traced"))
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
            add_into(&mut total, cpu);
        }
        Ok(total)
    }
}

fn add_into(total: &mut Counters, c: &Counters) {
    for (t, v) in total.syscalls.iter_mut().zip(c.syscalls.iter()) {
        *t += v;
    }
    total.syscall_out_of_range += c.syscall_out_of_range;
    for (t, w) in total.wait.iter_mut().zip(c.wait.iter()) {
        t.calls += w.calls;
        t.fds_passed += w.fds_passed;
        t.ready += w.ready;
        t.errors += w.errors;
        t.blocked_ns += w.blocked_ns;
    }
    total.voluntary_switches += c.voluntary_switches;
    total.involuntary_switches += c.involuntary_switches;
    total.tasks_started += c.tasks_started;
    total.processes_started += c.processes_started;
    total.tasks_exited += c.tasks_exited;
    total.processes_exited += c.processes_exited;
    total.tasks_dropped += c.tasks_dropped;
    total.waits_dropped += c.waits_dropped;
    total.epoll_members_dropped += c.epoll_members_dropped;
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
        if name == field {
            if let Some(value) = offset.strip_prefix("offset:") {
                return Ok(value.parse()?);
            }
        }
    }
    bail!("{} has no field {field}", path.display())
}
