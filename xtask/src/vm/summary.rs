//! The tables printed after the VMs ran: one row per kernel saying what worked, then the
//! headline figures of each model with one column per kernel, so a reader sees at a glance
//! whether the conclusions hold across kernels.
//!
//! Everything comes from the steps' JSON output (`iolab … --format json`), read as plain JSON
//! values rather than iolab's own types, so the summary survives fields being added to them.

use std::collections::BTreeMap;

use serde_json::Value;
use tabled::{
    builder::Builder,
    settings::{Style, Width, object::Columns},
};

use super::{
    guest::{Console, StepOutput, Verdict},
    qemu::{Accel, Ending, Outcome},
};

/// What happened to one kernel.
pub struct KernelRun {
    /// As asked for: "6.1", "6.12", "host" or a path.
    pub label: String,
    pub state: State,
}

pub enum State {
    /// Nothing to boot here (the host's kernel image is missing or unreadable).
    Skipped(String),
    /// The kernel could not be fetched or booted.
    Error(String),
    Booted {
        source: String,
        accel: Accel,
        outcome: Outcome,
    },
}

impl KernelRun {
    /// False when the kernel could not be had or its VM did not say PASS. A skipped kernel
    /// does not fail the run.
    pub fn ok(&self) -> bool {
        match &self.state {
            State::Skipped(_) => true,
            State::Error(_) => false,
            State::Booted { outcome, .. } => outcome.console.verdict == Some(Verdict::Pass),
        }
    }
}

pub fn render(runs: &[KernelRun]) -> String {
    let mut out = status_table(runs);
    let reasons: Vec<String> = runs
        .iter()
        .filter_map(|run| match &run.state {
            State::Booted { outcome, .. } => Some((run.label.as_str(), unsupported(&outcome.console))),
            _ => None,
        })
        .flat_map(|(label, models)| models.into_iter().map(move |(model, why)| format!("- {label}: {model}: {why}\n")))
        .collect();
    if !reasons.is_empty() {
        out.push_str("\nModels a kernel cannot run, with the feature each needs:\n");
        out.extend(reasons);
    }
    if let Some(figures) = figures_table(runs) {
        out.push_str("\nPer message, over the whole run: syscalls / context switches\n");
        out.push_str(&figures);
    }
    out
}

fn status_table(runs: &[KernelRun]) -> String {
    let mut builder = Builder::default();
    builder.push_record(["kernel", "probes loaded", "exactness tests", "models that ran", "--profile", "result"]);
    for run in runs {
        let row = match &run.state {
            State::Skipped(why) => {
                [run.label.clone(), "-".into(), "-".into(), "-".into(), "-".into(), format!("skipped: {why}")]
            }
            State::Error(err) => {
                [run.label.clone(), "-".into(), "-".into(), "-".into(), "-".into(), format!("error: {err}")]
            }
            State::Booted { source, accel, outcome } => {
                let console = &outcome.console;
                let release = console.kernel_release.as_deref().unwrap_or(source);
                [
                    format!("{} ({release})", run.label),
                    probes_loaded(console),
                    exactness(console),
                    models_that_ran(console),
                    profiled(console),
                    result(outcome, *accel),
                ]
            }
        };
        builder.push_record(row);
    }
    let mut table = builder.build();
    table.with(Style::rounded()).modify(Columns::new(1..), Width::wrap(40).keep_words(true));
    table.to_string() + "\n"
}

/// Any step that printed JSON had the probes loaded, and may list the tracepoints this kernel
/// lacks (`unavailable`); otherwise a step's error says why not (such as the verifier's
/// complaint).
fn probes_loaded(console: &Console) -> String {
    let outputs: Vec<Value> = console.steps.iter().filter_map(StepOutput::json).collect();
    if outputs.is_empty() {
        return match console.steps.iter().find_map(StepOutput::error) {
            Some(error) => format!("no: {error}"),
            None if console.steps.is_empty() => "no step ran".into(),
            None => "not known (no JSON output)".into(),
        };
    }
    let mut unavailable: Vec<&str> =
        outputs.iter().filter_map(|json| json["unavailable"].as_array()).flatten().filter_map(Value::as_str).collect();
    unavailable.sort();
    unavailable.dedup();
    if unavailable.is_empty() { "yes".into() } else { format!("yes; not on this kernel: {}", unavailable.join(", ")) }
}

/// The verdict of `iolab selftest`.
fn exactness(console: &Console) -> String {
    let Some(step) = console.step("selftest") else {
        return "not run".into();
    };
    let Some(json) = step.json() else {
        return match step.error() {
            Some(error) => format!("did not run: {error}"),
            None => "did not run".into(),
        };
    };
    let io = &json["io"];
    let switches = &json["switches"];
    let mut findings = Vec::new();
    if json["io_ok"] != Value::Bool(true) {
        findings.push(format!(
            "syscalls: {} reads, {} writes counted, {} expected",
            io["reads"], io["writes"], io["expected"]
        ));
    }
    if json["switches_ok"] != Value::Bool(true) {
        findings.push(format!(
            "voluntary switches: probe {}, /proc {}",
            switches["probe_voluntary"], switches["proc_voluntary"]
        ));
    }
    if findings.is_empty() { "passed".into() } else { format!("FAILED: {}", findings.join("; ")) }
}

/// What the `--profile` step sampled: its stacks, or why it did not run.
fn profiled(console: &Console) -> String {
    let Some(step) = console.step(PROFILE_STEP) else {
        return "not run".into();
    };
    let Some(json) = step.json() else {
        return match step.error() {
            Some(error) => format!("FAILED: {error}"),
            None => "FAILED".into(),
        };
    };
    let profile = &json["results"][0]["profile"];
    let count = |key: &str| profile[key].as_object().map_or(0, |stacks| stacks.len());
    let samples: u64 = profile["on_cpu"].as_object().map_or(0, |s| s.values().filter_map(Value::as_u64).sum());
    format!(
        "{samples} samples in {} stacks, {} off-CPU stacks, {} run-queue waits",
        count("on_cpu"),
        count("off_cpu_ns"),
        profile["run_queue"]["waits"]
    )
}

/// The step that runs a model with `--profile` (see `guest::DEFAULT_STEPS`): its run is not one of
/// the models' rows.
const PROFILE_STEP: &str = "profile";

fn models_that_ran(console: &Console) -> String {
    let names: Vec<String> = models(console).into_keys().collect();
    let ran = if names.is_empty() { "none".into() } else { names.join(", ") };
    let unsupported: Vec<String> = unsupported(console).into_keys().collect();
    if unsupported.is_empty() { ran } else { format!("{ran}; unsupported here: {}", unsupported.join(", ")) }
}

/// The models a step reported unsupported on this kernel (`unsupported` in `compare`'s JSON),
/// with the reason: the feature the model needs and what refused it.
fn unsupported(console: &Console) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for json in console.steps.iter().filter_map(StepOutput::json) {
        for entry in json["unsupported"].as_array().into_iter().flatten() {
            if let (Some(model), Some(reason)) = (entry["model"].as_str(), entry["reason"].as_str()) {
                let reason = reason.strip_prefix("unsupported on this kernel: ").unwrap_or(reason);
                found.insert(model.to_owned(), reason.to_owned());
            }
        }
    }
    found
}

/// Every model's run in the steps' output: documents (`iolab run`, `iolab compare`) whose
/// `results` hold one run per model, or a bare run as iolab's schema 1 printed for `iolab run`.
fn models(console: &Console) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    for json in console.steps.iter().filter(|step| step.name != PROFILE_STEP).filter_map(StepOutput::json) {
        let runs = match json["results"].as_array() {
            Some(results) => results.clone(),
            None => vec![json],
        };
        for run in runs {
            if let Some(model) = run["model"].as_str() {
                found.insert(model.to_owned(), run.clone());
            }
        }
    }
    found
}

fn result(outcome: &Outcome, accel: Accel) -> String {
    let verdict = match (&outcome.console.verdict, &outcome.ending) {
        (Some(Verdict::Pass), _) => "PASS".to_owned(),
        (Some(Verdict::Fail(code)), _) => format!("FAIL (exit {code})"),
        (None, Ending::TimedOut) => "TIMED OUT".to_owned(),
        (None, Ending::Exited(status)) => format!("NO RESULT: qemu ended ({status})"),
        (None, Ending::PowerOffHung) => "NO RESULT".to_owned(),
        (None, Ending::Stalled) => "STALLED (a CPU stuck in the guest kernel; backtraces in the log)".to_owned(),
    };
    format!("{verdict} after {} s ({})", outcome.elapsed.as_secs(), accel.name())
}

/// The headline figures of one run: syscalls and context switches per message. The total of
/// messages is `messages_total` (iolab's schema 2) or `messages` (schema 1).
fn headline(run: &Value) -> Option<String> {
    let messages = run["messages_total"].as_f64().or(run["messages"].as_f64()).filter(|&n| n > 0.0)?;
    let syscalls = run["syscalls_total"].as_f64()?;
    let switches = &run["context_switches"];
    let switches = switches["voluntary"].as_f64()? + switches["involuntary"].as_f64()?;
    Some(format!("{:.2} / {:.2}", syscalls / messages, switches / messages))
}

/// Models down, kernels across; None when no kernel ran a model.
fn figures_table(runs: &[KernelRun]) -> Option<String> {
    type Column<'a> = (&'a str, BTreeMap<String, Value>, BTreeMap<String, String>);
    let columns: Vec<Column> = runs
        .iter()
        .filter_map(|run| match &run.state {
            State::Booted { outcome, .. } => {
                Some((run.label.as_str(), models(&outcome.console), unsupported(&outcome.console)))
            }
            _ => None,
        })
        .collect();
    let mut names: Vec<&String> = columns.iter().flat_map(|(_, models, _)| models.keys()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return None;
    }
    let mut builder = Builder::default();
    builder.push_record(std::iter::once("model").chain(columns.iter().map(|(label, _, _)| *label)));
    for name in names {
        let cells = columns.iter().map(|(_, models, unsupported)| match models.get(name) {
            Some(run) => headline(run).unwrap_or_else(|| "-".to_owned()),
            None if unsupported.contains_key(name) => "unsupported".to_owned(),
            None => "-".to_owned(),
        });
        builder.push_record(std::iter::once(name.clone()).chain(cells));
    }
    let mut table = builder.build();
    table.with(Style::rounded());
    Some(table.to_string() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn booted(lines: &[&str]) -> KernelRun {
        let mut console = Console::default();
        for line in lines {
            console.line(line);
        }
        KernelRun {
            label: "6.1".into(),
            state: State::Booted {
                source: "linux-image-6.1.0-56-amd64".into(),
                accel: Accel::Tcg,
                outcome: Outcome { console, ending: Ending::TimedOut, elapsed: Duration::from_secs(900) },
            },
        }
    }

    #[test]
    fn probes_that_fail_to_load_are_reported_with_the_reason() {
        let run = booted(&[
            "IOLAB-VM: step selftest: iolab selftest --format json",
            "iolab: verifying count_syscall: the BPF_PROG_LOAD syscall failed",
            "IOLAB-VM-OUTPUT-BEGIN selftest",
            "IOLAB-VM-OUTPUT-END selftest",
            "IOLAB-VM: step selftest exited 1",
        ]);
        let State::Booted { outcome, .. } = &run.state else { unreachable!() };
        assert_eq!(probes_loaded(&outcome.console), "no: verifying count_syscall: the BPF_PROG_LOAD syscall failed");
        assert_eq!(
            exactness(&outcome.console),
            "did not run: verifying count_syscall: the BPF_PROG_LOAD syscall failed"
        );
        assert_eq!(result(outcome, Accel::Tcg), "TIMED OUT after 900 s (tcg)");
        assert!(!run.ok());
    }

    #[test]
    fn figures_per_message_from_a_run() {
        let run = serde_json::json!({
            "model": "epoll", "messages_total": 400, "syscalls_total": 1210,
            "context_switches": {"voluntary": 300, "involuntary": 10}
        });
        assert_eq!(headline(&run).as_deref(), Some("3.02 / 0.78"));
        let schema_1 = serde_json::json!({
            "model": "epoll", "messages": 400, "syscalls_total": 1210,
            "context_switches": {"voluntary": 300, "involuntary": 10}
        });
        assert_eq!(headline(&schema_1).as_deref(), Some("3.02 / 0.78"));
        assert_eq!(headline(&serde_json::json!({"model": "epoll", "messages_total": 0})), None);
    }

    #[test]
    fn unsupported_models_are_named_with_what_they_need() {
        let run = booted(&[
            "IOLAB-VM: step compare: iolab compare --models all --format json",
            "IOLAB-VM-OUTPUT-BEGIN compare",
            r#"{"results": [{"model": "epoll", "messages_total": 400, "syscalls_total": 800,"#,
            r#"  "context_switches": {"voluntary": 4, "involuntary": 0}}],"#,
            r#" "unsupported": [{"model": "io-uring","#,
            r#"  "reason": "unsupported on this kernel: io_uring (5.1) with multishot accept (5.19): a multishot accept: Invalid argument (os error 22)"}]}"#,
            "IOLAB-VM-OUTPUT-END compare",
            "IOLAB-VM: step compare exited 0",
            "IOLAB-VM: PASS",
        ]);
        let State::Booted { outcome, .. } = &run.state else { unreachable!() };
        assert_eq!(models_that_ran(&outcome.console), "epoll; unsupported here: io-uring");
        let out = render(&[run]);
        assert!(
            out.contains(
                "- 6.1: io-uring: io_uring (5.1) with multishot accept (5.19): a multishot accept: Invalid argument \
                 (os error 22)"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_mismatch_names_the_counts() {
        let run = booted(&[
            "IOLAB-VM: step selftest: iolab selftest --format json",
            "IOLAB-VM-OUTPUT-BEGIN selftest",
            r#"{"io": {"expected": 1500, "reads": 1500, "writes": 1499}, "io_ok": false,"#,
            r#" "switches": {"probe_voluntary": 200, "proc_voluntary": 201}, "switches_ok": true,"#,
            r#" "unavailable": ["syscalls:sys_enter_epoll_pwait2", "syscalls:sys_exit_epoll_pwait2"]}"#,
            "IOLAB-VM-OUTPUT-END selftest",
            "IOLAB-VM: step selftest exited 1",
            "IOLAB-VM: FAIL (exit 1)",
        ]);
        let State::Booted { outcome, .. } = &run.state else { unreachable!() };
        assert_eq!(exactness(&outcome.console), "FAILED: syscalls: 1500 reads, 1499 writes counted, 1500 expected");
        assert_eq!(
            probes_loaded(&outcome.console),
            "yes; not on this kernel: syscalls:sys_enter_epoll_pwait2, syscalls:sys_exit_epoll_pwait2"
        );
    }
}
