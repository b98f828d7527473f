//! The bench's tables: one per section, each figure with its target and PASS or MISS.
//! Ratios are shown as "median (min–max over the rounds)".

use std::fmt::Write as _;

use tabled::{
    builder::Builder,
    settings::{Alignment, Style, object::Columns},
};

use super::{
    BenchReport, contenders, machine,
    paired::Verdict,
    probe_cost, programs, scale,
    tools::{self, ToolsSection},
};
use lab_report::results::stats::Summary;

pub fn render(r: &BenchReport) -> String {
    let m = &r.machine;
    let w = &r.plan;
    let mut out = String::new();
    let _ = writeln!(out, "iolab bench, {}", m.date);
    let _ = writeln!(out, "machine: {}, {} cores; kernel {}", m.cpu, m.cores, m.kernel);
    let _ = writeln!(out, "load average (1 min): {:.2} at the start, {:.2} at the end", m.load_start, m.load_end);
    let _ = writeln!(
        out,
        "quiet: before each run the bench waited up to {} s for others to use < {:.0} % of the CPUs ({:.0} s in \
         all); {} of {} runs started busy anyway",
        machine::QUIET_WAIT.as_secs(),
        machine::QUIET_BUSY * 100.0,
        m.waited_s,
        m.runs_started_busy,
        m.runs
    );
    if !m.foreign_bpf.is_empty() {
        let _ = writeln!(
            out,
            "note: other processes held tracing eBPF programs before {} of {} runs ({}): their cost was in \
             those runs' baselines too",
            m.runs_with_foreign_bpf,
            m.runs,
            m.foreign_bpf.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "workload: {} connections × {} messages × {} B, {} rounds per comparison (medians; A B, B A, …)",
        w.connections, w.messages_per_connection, w.payload_bytes, w.rounds
    );
    if !r.probe.is_empty() {
        out += &probe_section(&r.probe);
    }
    if let Some(s) = &r.syscall {
        out += &syscall_section(s);
    }
    if let Some(t) = &r.tools {
        out += &tools_section(t, &r.probe);
    }
    if let Some(p) = &r.programs {
        out += &programs_section(p);
    }
    if let Some(c) = &r.contenders {
        out += &generator_section(c);
    }
    if let Some(s) = &r.scale {
        out += &scale_section(s);
    }
    if let Some(c) = &r.contenders {
        out += &contenders_section(c);
    }
    for failure in &r.failures {
        let _ = writeln!(out, "\nnot run: {failure}");
    }
    let _ = writeln!(out, "\ntotal bench time: {:.0} s", r.total_seconds);
    out
}

fn table(title: &str, rows: Vec<Vec<String>>) -> String {
    let mut builder = Builder::default();
    for row in rows {
        builder.push_record(row);
    }
    let mut table = builder.build();
    table.with(Style::rounded()).modify(Columns::new(1..), Alignment::right());
    format!("\n{title}\n{table}\n")
}

fn strings<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|s| (*s).to_owned()).collect()
}

/// 35312 -> "35.3k".
fn rate(x: f64) -> String {
    if x >= 1e3 { format!("{:.1}k", x / 1e3) } else { format!("{x:.0}") }
}

fn ratio(s: &Summary) -> String {
    format!("{:.3} ({:.3}–{:.3})", s.median, s.min, s.max)
}

fn spread(s: &Summary, digits: usize) -> String {
    format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
}

fn verdict(v: &Verdict) -> String {
    v.label().to_owned()
}

fn probe_section(models: &[probe_cost::ModelOverhead]) -> String {
    let mut rows = vec![strings([
        "model",
        "untraced msg/s",
        "traced msg/s",
        "traced ÷ untraced, one run",
        &format!("target ≥ {}", probe_cost::TARGET_RATIO),
        "empty program ÷ untraced",
        "whole runs: untraced msg/s",
        "traced msg/s",
        "traced ÷ untraced",
    ])];
    for m in models {
        rows.push(vec![
            m.model.clone(),
            rate(m.in_run.untraced_msgs_per_sec.median),
            rate(m.in_run.traced_msgs_per_sec.median),
            ratio(&m.in_run.ratio),
            verdict(&m.verdict),
            ratio(&m.in_run.empty_ratio),
            rate(m.untraced_msgs_per_sec.median),
            rate(m.traced_msgs_per_sec.median),
            ratio(&m.ratio),
        ]);
    }
    let phases = models.first().map(|m| (m.in_run.rounds, m.in_run.phase_seconds)).unwrap_or_default();
    let title = format!(
        "1. Probe overhead: throughput with the probe ÷ without. One run: the probe, nothing, and an empty \
         sys_enter program (the floor any syscall probe pays) attached in turns, {} rounds of three {:.1} s phases; \
         whole runs: iolab run vs run --no-trace, alternating",
        phases.0, phases.1
    );
    let mut out = table(&title, rows);
    let below: Vec<String> = models
        .iter()
        .filter(|m| m.in_run.empty_ratio.median < probe_cost::TARGET_RATIO)
        .map(|m| format!("{} ({:.3})", m.model, m.in_run.empty_ratio.median))
        .collect();
    if !below.is_empty() {
        out += &format!(
            "Below {} with only the empty program attached: {}. In this run the hook alone cost them more than \
             the target allows, before any counting.\n",
            probe_cost::TARGET_RATIO,
            below.join(", ")
        );
    }
    let mut rows = vec![strings([
        "model",
        "syscalls/msg",
        "switches/msg",
        "server CPU µs/msg untraced",
        "traced",
        "probe ns per server syscall",
    ])];
    for m in models {
        rows.push(vec![
            m.model.clone(),
            format!("{:.2}", m.syscalls_per_msg),
            format!("{:.2}", m.switches_per_msg),
            format!("{:.2}", m.cpu_us_per_msg_untraced.median),
            format!("{:.2}", m.cpu_us_per_msg_traced.median),
            spread(&m.ns_per_syscall, 0),
        ]);
    }
    out +=
        &table("1. Probe cost in the server: (traced − untraced server CPU per message) ÷ syscalls per message", rows);
    out
}

fn syscall_section(s: &probe_cost::SyscallCost) -> String {
    let rows = vec![
        strings(["getppid, thread CPU time", "ns per call", "probe adds, ns per call"]),
        vec!["no probe loaded".into(), spread(&s.untraced_ns, 1), "–".into()],
        vec!["an empty sys_enter program only (the floor)".into(), spread(&s.empty_ns, 1), spread(&s.empty_cost_ns, 1)],
        vec!["probe loaded, thread not traced (miss)".into(), spread(&s.miss_ns, 1), spread(&s.miss_cost_ns, 1)],
        vec!["probe loaded, thread traced (hit)".into(), spread(&s.hit_ns, 1), spread(&s.hit_cost_ns, 1)],
        vec![
            "probe with --timing, thread not traced".into(),
            spread(&s.timed_miss_ns, 1),
            spread(&s.timed_miss_cost_ns, 1),
        ],
        vec!["probe with --timing, thread traced".into(), spread(&s.timed_hit_ns, 1), spread(&s.timed_hit_cost_ns, 1)],
    ];
    table(&format!("1. Probe cost per syscall, isolated: {} getppid calls per measurement", s.calls), rows)
}

fn programs_section(p: &programs::ProgramsSection) -> String {
    let mut rows = vec![strings(["program", "runs", "runs per message", "ns per run"])];
    for program in &p.programs {
        rows.push(vec![
            program.program.clone(),
            program.runs.to_string(),
            format!("{:.3}", program.runs_per_msg),
            format!("{:.1}", program.ns_per_run),
        ]);
    }
    let title = format!(
        "6. Each program's cost, timed by the kernel (inside the program only): one {} run of {} messages with \
         --profile at {} Hz",
        p.model,
        p.messages,
        programs::PROFILE_HZ
    );
    let mut out = table(&title, rows);
    let ns = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.1} ns"));
    let _ = writeln!(
        out,
        "per softirq {}, per hard interrupt {}, per stack sample {}; the empty program, timed the same way: {} per run \
         (what the kernel's timing adds to each figure)",
        ns(p.ns_per_softirq),
        ns(p.ns_per_hardirq),
        ns(p.ns_per_sample),
        ns(p.ns_floor)
    );
    let mut rows = vec![strings(["--profile", "msg/s", "÷ the probe alone"])];
    for o in &p.profile {
        rows.push(vec![format!("{} Hz", o.hz), spread(&o.msgs_per_sec, 0), ratio(&o.ratio)]);
    }
    out += &table(&format!("6. What --profile costs {}'s throughput, whole runs in rotated order", p.model), rows);
    out
}

fn tools_section(t: &ToolsSection, probe: &[probe_cost::ModelOverhead]) -> String {
    let mut rows = vec![strings(["watcher", "msg/s", "÷ untraced", "overhead", "ns per getppid", "adds ns"])];
    for tool in &t.tools {
        let (r, overhead) = match &tool.ratio {
            Some(r) => (ratio(r), format!("{:.1} %", (1.0 - r.median) * 100.0)),
            None if tool.note.is_none() => ("1".into(), "–".into()),
            None => ("–".into(), "–".into()),
        };
        let shown = |x: f64, f: &dyn Fn(f64) -> String| if x > 0.0 { f(x) } else { "–".into() };
        rows.push(vec![
            tool.watcher.clone(),
            shown(tool.msgs_per_sec.median, &rate),
            r,
            overhead,
            shown(tool.ns_per_syscall.median, &|x| format!("{x:.0}")),
            tool.added_ns_per_syscall.as_ref().map_or("–".into(), |a| spread(a, 0)),
        ]);
    }
    let title = format!(
        "2. The tools people would otherwise use: the {} model at the workload above, and a process making {} getppid calls",
        t.model, t.getppid_calls
    );
    let mut out = table(&title, rows);
    for tool in t.tools.iter().filter(|t| t.note.is_some()) {
        let _ = writeln!(out, "{}: {}", tool.watcher, tool.note.as_deref().unwrap_or_default());
    }
    let source = if t.lab_ratio_in_one_run { "section 1, in one run" } else { "whole runs above" };
    let line = match (t.strace_vs_lab, t.lab_ratio) {
        (Some(factor), Some(lab)) => format!(
            "the lab's throughput overhead ({:.1} %, {source}) is {factor:.0}× smaller than strace's",
            (1.0 - lab) * 100.0
        ),
        (None, Some(_)) if t.verdict == Verdict::Pass => {
            format!("the lab's throughput overhead is within the noise (ratio ≥ 1, {source})")
        }
        _ => "not compared".to_owned(),
    };
    let _ = writeln!(out, "{line} (target ≥ {}×): {}", tools::TARGET_FACTOR, verdict(&t.verdict));
    if let Some(factor) = t.strace_vs_lab_per_syscall {
        let _ = writeln!(out, "per syscall, strace adds {factor:.0}× what the lab adds");
    }
    if let Some(m) = probe.iter().find(|m| m.model == t.model) {
        let _ = writeln!(
            out,
            "(section 1, same model: traced ÷ untraced {} in one run, {} in whole runs)",
            ratio(&m.in_run.ratio),
            ratio(&m.ratio)
        );
    }
    out
}

fn generator_section(c: &contenders::ContendersSection) -> String {
    let mut rows = vec![strings([
        "load generator driving",
        "msg/s",
        "generator CPU, cores",
        "generator µs/msg",
        "server CPU, cores",
    ])];
    for s in &c.contenders {
        rows.push(vec![
            s.server.clone(),
            rate(s.msgs_per_sec.median),
            format!("{:.2}", s.generator_share.median),
            format!("{:.2}", s.generator_us_per_msg.median),
            format!("{:.2}", s.server_share.median),
        ]);
    }
    let mut out = table("3. The load generator (one thread: at most 1 core)", rows);
    let g = &c.generator;
    let mut rows = vec![strings(["figure", "measured", "target", ""])];
    rows.push(vec![
        format!("generator CPU while driving {} (fastest model)", g.fastest_model),
        format!("{:.2} cores", g.share),
        format!("< {}", contenders::TARGET_GENERATOR_SHARE),
        verdict(&g.share_verdict),
    ]);
    rows.push(vec![
        format!("headroom: C server msg/s ÷ {} msg/s", g.fastest_model),
        g.headroom.as_ref().map_or("–".into(), ratio),
        format!("≥ {}", contenders::TARGET_HEADROOM),
        verdict(&g.headroom_verdict),
    ]);
    out += &table("3. Is the generator the bottleneck?", rows);
    out
}

fn scale_section(s: &scale::ScaleSection) -> String {
    let rows = vec![
        strings(["figure", "measured", "target", ""]),
        vec![
            "wall time".into(),
            format!("{:.1} s", s.wall_s),
            format!("< {} s", scale::TARGET_WALL_S),
            verdict(&s.wall_verdict),
        ],
        vec![
            "iolab's own peak RSS (VmHWM)".into(),
            format!("{:.1} MiB", s.iolab_peak_rss_mib),
            format!("< {} MiB", scale::TARGET_RSS_MIB),
            verdict(&s.rss_verdict),
        ],
        vec![
            "largest RSS in iolab's tree (wait4 maxrss)".into(),
            format!("{:.1} MiB", s.tree_max_rss_mib),
            "–".into(),
            "".into(),
        ],
        vec![
            "models / load-generator errors".into(),
            format!("{} / {}", s.models, s.errors),
            "9 / 0".into(),
            "".into(),
        ],
        vec!["SYNs dropped at full accept queues".into(), s.listen_overflows.to_string(), "–".into(), "".into()],
    ];
    let mut out = table(&format!("4. The lab at scale: `{}`", s.command), rows);
    let each: Vec<String> = s.msgs_per_sec.iter().map(|(m, r)| format!("{m} {}", rate(*r))).collect();
    let _ = writeln!(out, "msg/s in that compare: {}", each.join(", "));
    let each: Vec<String> = s.seconds_per_model.iter().map(|(m, t)| format!("{m} {t:.1}")).collect();
    let _ = writeln!(out, "seconds per model (warm-up and measured run): {}", each.join(", "));
    out
}

fn contenders_section(c: &contenders::ContendersSection) -> String {
    let mut rows = vec![strings(["server (untraced)", "msg/s", "÷ C server", "target", ""])];
    for s in &c.contenders {
        rows.push(vec![
            s.server.clone(),
            rate(s.msgs_per_sec.median),
            s.vs_c.as_ref().map_or("–".into(), ratio),
            if s.verdict.is_some() { format!("≥ {}", contenders::TARGET_VS_C) } else { "".into() },
            s.verdict.as_ref().map_or(String::new(), verdict),
        ]);
    }
    let mut out =
        table("5. Real contenders: the models against a minimal C epoll server (lab-bench/echo_epoll.c)", rows);
    if let Some(note) = &c.c_note {
        let _ = writeln!(out, "C server: {note}");
    }
    out
}
