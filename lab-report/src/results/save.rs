//! Saved results: `--save DIR` keeps every run, `iolab report FILE…` shows saved results again.
//!
//! Everything on disk is a [`Document`], the same schema `--format json` prints, so there is one
//! reader for all of it. A saved run is a Document holding one result with `runs: 1`, named
//! `DIR/<command>-<model>-c<connections>[-i<idle>]-<run>.json` (run numbers from 1): a sweep or
//! a compare leaves one file per model, workload and run, sorted together by name.
//!
//! Loading checks the schema version before anything else, so an older iolab says plainly that a
//! file is too new instead of failing on a field it does not know.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow, bail};

use crate::results::document::{Document, Machine, SCHEMA_VERSION, model_result};
use lab_measure::result::RunResult;

/// A new, empty document for `command`, stamped with this machine, the time and the command line.
pub fn new_document(command: &str, runs_per_model: usize) -> Document {
    Document {
        schema_version: SCHEMA_VERSION,
        command: command.to_owned(),
        created: now_rfc3339(),
        machine: this_machine(),
        argv: std::env::args().collect(),
        incomplete: false,
        runs_per_model,
        results: Vec::new(),
        verdict: Vec::new(),
        unsupported: Vec::new(),
        validation: None,
    }
}

/// The current UTC time, to the second, as RFC 3339 (`2025-11-27T08:48:00Z`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// This machine's kernel release and the CPUs this process may use.
pub fn this_machine() -> Machine {
    let kernel =
        fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |s| s.trim().into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Machine { kernel, cpus }
}

/// Creates `dir` (and its parents) now, so that a bad `--save` path fails before any run starts.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    lab_measure::privileges::give_away(dir)
}

/// Writes run number `number` (from 1) of `run` into `dir`, as a Document with `doc`'s command,
/// time, machine and command line. Returns the file's path. An existing file of the same name is
/// replaced.
pub fn save_run(dir: &Path, doc: &Document, run: &RunResult, number: usize) -> Result<PathBuf> {
    let path = dir.join(file_name(&doc.command, run, number));
    let single = Document {
        runs_per_model: 1,
        incomplete: false,
        results: vec![model_result(vec![run.clone()])],
        verdict: Vec::new(),
        ..doc.clone()
    };
    let json = serde_json::to_string_pretty(&single)?;
    fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    lab_measure::privileges::give_away(&path)?;
    Ok(path)
}

/// `<command>-<model>-c<connections>[-i<idle>][-a<ahead>]-<number>.json`, with anything but
/// letters, digits, `-` and `_` in the names replaced by `_`.
fn file_name(command: &str, run: &RunResult, number: usize) -> String {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect::<String>()
    };
    let idle = if run.workload.idle > 0 { format!("-i{}", run.workload.idle) } else { String::new() };
    let ahead = if run.workload.ahead > 0 { format!("-a{}", run.workload.ahead) } else { String::new() };
    format!("{}-{}-c{}{idle}{ahead}-{number}.json", clean(command), clean(&run.model), run.workload.connections)
}

/// Reads a saved Document (or one run printed by `iolab run/trace --format json`), refusing files
/// that are not iolab results or come from a newer iolab.
pub fn load_document(path: &Path) -> Result<Document> {
    let shown = path.display();
    let text = fs::read_to_string(path).map_err(|e| anyhow!("cannot read {shown}: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("{shown} is not an iolab result: not JSON ({e})"))?;
    let Some(version) = value.get("schema_version").and_then(|v| v.as_u64()) else {
        // `iolab run --format json` and `iolab trace --format json` print one run, not a document.
        if value.get("model").is_some() && value.get("syscalls").is_some() {
            let run: RunResult =
                serde_json::from_value(value).map_err(|e| anyhow!("{shown} is not an iolab result: {e}"))?;
            let mut doc = new_document("run", 1);
            doc.results.push(model_result(vec![run]));
            return Ok(doc);
        }
        bail!("{shown} is not an iolab result: it has no schema_version");
    };
    if version > u64::from(SCHEMA_VERSION) {
        bail!("{shown} was written by a newer iolab (schema {version} > {SCHEMA_VERSION})");
    }
    serde_json::from_value(value).map_err(|e| anyhow!("{shown} is not an iolab result: {e}"))
}

/// The saved documents at `paths`, merged into one (see [`merge`]), as `iolab report` shows them.
pub fn merge_files(paths: &[PathBuf]) -> Result<Document> {
    if paths.is_empty() {
        bail!("iolab report needs at least one saved result file");
    }
    let sources = paths.iter().map(|p| Ok((label(p), load_document(p)?))).collect::<Result<Vec<_>>>()?;
    let mut merged = merge(sources);
    merged.argv = ["iolab", "report"]
        .into_iter()
        .map(str::to_owned)
        .chain(paths.iter().map(|p| p.display().to_string()))
        .collect();
    Ok(merged)
}

/// A file's name without `.json`, to label its rows.
fn label(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// Several documents as one, to show side by side. With more than one source, each model is
/// named `model [label]` and each verdict line starts with `label: `, so nothing is mixed up.
/// The merged document is as recent as the newest source and interrupted if any source was.
pub fn merge(sources: Vec<(String, Document)>) -> Document {
    let labelled = sources.len() > 1;
    let first_machine = sources.first().map(|(_, d)| d.machine.clone());
    let mut merged = Document {
        schema_version: SCHEMA_VERSION,
        command: "report".to_owned(),
        created: sources.iter().map(|(_, d)| d.created.clone()).max().unwrap_or_default(),
        machine: first_machine.clone().unwrap_or(Machine { kernel: "unknown".into(), cpus: 0 }),
        argv: Vec::new(),
        incomplete: sources.iter().any(|(_, d)| d.incomplete),
        runs_per_model: sources.iter().map(|(_, d)| d.runs_per_model).max().unwrap_or(0),
        results: Vec::new(),
        verdict: Vec::new(),
        unsupported: Vec::new(),
        validation: None,
    };
    for (label, doc) in sources {
        if let Some(first) = &first_machine
            && (doc.machine.kernel != first.kernel || doc.machine.cpus != first.cpus)
        {
            merged.verdict.push(format!(
                "note: {label} comes from another machine (kernel {}, {} CPUs)",
                doc.machine.kernel, doc.machine.cpus
            ));
        }
        for mut result in doc.results {
            if labelled {
                result.run.model = format!("{} [{label}]", result.run.model);
            }
            merged.results.push(result);
        }
        for line in doc.verdict {
            merged.verdict.push(if labelled { format!("{label}: {line}") } else { line });
        }
    }
    merged
}
