//! Command-line arguments shared by several commands: the workload and the output options.
//! Every bound is checked by clap, so bad input is one line naming the flag and exit status 2.

use std::path::PathBuf;

use clap::Args;

use lab_load::Workload;
use lab_measure::{
    error::BadInput,
    run::{Counted, PORT, RunSpec},
};
use lab_report::{
    present::export::{self, Format},
    results::{document::Document, save},
};

/// The largest payload one message may carry.
pub const MAX_PAYLOAD: u64 = 16 * 1024 * 1024;

/// The workload flags of `run`, `trace` and `load`.
#[derive(Args, Clone, Debug)]
pub struct WorkloadArgs {
    /// Concurrent connections, each sending messages in a closed loop.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections: u64,
    /// Messages per connection.
    #[arg(short = 'm', long = "messages", value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub messages_per_connection: u64,
    /// Payload bytes per message (1 to 16 MiB).
    #[arg(short = 'b', long = "bytes", value_name = "BYTES", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=MAX_PAYLOAD))]
    pub payload_bytes: u64,
    /// Extra connections that stay open and never send (the C10K case).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub idle: u64,
    /// Exit 0 even when the load generator saw errors (resets, timeouts, wrong bytes).
    #[arg(long)]
    pub allow_errors: bool,
}

impl WorkloadArgs {
    /// The workload, free-running (no lockstep).
    pub fn workload(&self) -> Workload {
        Workload {
            connections: self.connections as usize,
            messages_per_connection: self.messages_per_connection as usize,
            payload_bytes: self.payload_bytes as usize,
            idle: self.idle as usize,
            lockstep: false,
        }
    }

    /// One run of `model` on this workload, the whole run counted.
    pub fn spec(&self, model: &str) -> RunSpec {
        RunSpec { model: model.to_owned(), command: None, workload: self.workload(), counted: Counted::Everything }
    }
}

/// `--timing`, on the commands that measure a server (`run`, `compare`, `prove`, `sweep`, `trace`).
#[derive(Args, Clone, Copy, Debug)]
pub struct TimingArg {
    /// Also time every syscall of the server: calls, errors, on-CPU time and a log2 histogram
    /// of it per syscall (like `strace -c`, but on-CPU, exact, without ptrace). Adds a program
    /// on sys_exit, which costs every syscall of the machine more (BENCHMARKS.md).
    #[arg(long)]
    pub timing: bool,
}

/// Where the results go. Every path is created before the first run, so a bad one fails at
/// once; after the runs, one that can no longer be written costs only itself (see [`Output::write`]).
#[derive(Args, Clone, Debug)]
pub struct Output {
    /// How stdout (or --output) shows the results.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the results here instead of stdout (`-` is stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<String>,
    /// Also write the results as JSON to FILE (repeatable), whatever --format is.
    #[arg(long, value_name = "FILE")]
    pub export_json: Vec<PathBuf>,
    /// Also write the results as CSV to FILE (repeatable).
    #[arg(long, value_name = "FILE")]
    pub export_csv: Vec<PathBuf>,
    /// Also write the results as Markdown to FILE (repeatable).
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Vec<PathBuf>,
    /// Keep every measured run's JSON in this folder (for `iolab report`).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// No progress bar (it shows on stderr when stderr is a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Output {
    /// The export files, each with its format.
    fn exports(&self) -> Vec<(&PathBuf, Format)> {
        let mut all: Vec<_> = self.export_json.iter().map(|p| (p, Format::Json)).collect();
        all.extend(self.export_csv.iter().map(|p| (p, Format::Csv)));
        all.extend(self.export_markdown.iter().map(|p| (p, Format::Markdown)));
        all
    }

    /// Creates every output now (emptying files that exist), so that a path that cannot be
    /// written is bad input before anything is measured.
    pub fn check(&self) -> Result<(), BadInput> {
        export::open_output(self.output.as_deref()).map_err(|e| BadInput(format!("--output: {e:#}")))?;
        for (path, format) in self.exports() {
            let name = clap::ValueEnum::to_possible_value(&format).map(|v| v.get_name().to_owned()).unwrap_or_default();
            let flag = format!("--export-{name}");
            export::open_output(Some(&path.to_string_lossy())).map_err(|e| BadInput(format!("{flag}: {e:#}")))?;
        }
        if let Some(dir) = &self.save {
            save::prepare_dir(dir).map_err(|e| BadInput(format!("--save: {e:#}")))?;
        }
        Ok(())
    }

    /// Writes `doc` everywhere it was asked for: stdout or --output first, then every export and
    /// the --save summary. A write that fails is said on stderr and the others still happen;
    /// the error at the end counts the failures.
    pub fn write(&self, doc: &Document) -> anyhow::Result<()> {
        let summary = self.save.as_ref().map(|dir| dir.join(format!("{}.json", doc.command)));
        self.write_each(|format| Ok(export::render(doc, format)), summary)
    }

    /// Writes what `render` makes in each format asked for, as [`Output::write`] does, for a
    /// command whose results are not a [`Document`] (`iolab scan`); `--save` is the command's.
    pub fn write_rendered(&self, render: impl Fn(Format) -> anyhow::Result<String>) -> anyhow::Result<()> {
        self.write_each(render, None)
    }

    /// Stdout or --output, every export, then `json_copy` (if any) in JSON.
    fn write_each(
        &self,
        render: impl Fn(Format) -> anyhow::Result<String>,
        json_copy: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        let mut failed = 0;
        let mut report = |what: &str, result: anyhow::Result<()>| {
            if let Err(err) = result {
                eprintln!("iolab: could not write {what}: {err:#}");
                failed += 1;
            }
        };
        report("the results", render(self.format).and_then(|text| write_to(self.output.as_deref(), &text)));
        let mut files: Vec<(&PathBuf, Format)> = self.exports();
        files.extend(json_copy.as_ref().map(|path| (path, Format::Json)));
        for (path, format) in files {
            report(
                &path.display().to_string(),
                render(format).and_then(|text| write_to(Some(&path.to_string_lossy()), &text)),
            );
        }
        match failed {
            0 => Ok(()),
            n => anyhow::bail!("{n} of the outputs could not be written (the others were)"),
        }
    }
}

fn write_to(path: Option<&str>, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = export::open_output(path)?;
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `--server NAME='CMD … {port}'`: a server of the user's, run and measured as a model is, in a
/// row named NAME. The command is split as a shell would split it (quotes, no expansion) and
/// run without a shell; `{port}` ([`PORT`]) is replaced by the loopback port the lab picks.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerArg {
    pub name: String,
    pub command: Vec<String>,
}

impl ServerArg {
    /// One run of it on `spec`'s workload.
    pub fn spec(&self, spec: &RunSpec) -> RunSpec {
        RunSpec { model: self.name.clone(), command: Some(self.command.clone()), ..spec.clone() }
    }
}

/// Parses and checks `--server NAME='CMD … {port}'`: a NAME that is no model's, a command
/// that contains `{port}` and whose program exists.
pub fn parse_server(text: &str) -> Result<ServerArg, String> {
    let example = "e.g. --server py='python3 server.py {port}'";
    let Some((name, command)) = text.split_once('=') else {
        return Err(format!("'{text}' is not NAME='CMD … {PORT}' ({example})"));
    };
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(format!("'{name}' is not a name: use letters, digits, '.', '_' and '-' ({example})"));
    }
    if lab_server::model(name).is_some() || name == "all" || name == "none" {
        return Err(format!("'{name}' is the name of a model: call the server something else ({example})"));
    }
    let Some(command) = shlex::split(command).filter(|words| !words.is_empty()) else {
        return Err(format!("the command of '{name}' is empty or its quotes do not close ({example})"));
    };
    if !command.iter().any(|word| word.contains(PORT)) {
        return Err(format!(
            "the command of '{name}' has no {PORT}: put {PORT} where its port goes, the lab picks a free one ({example})"
        ));
    }
    if lab_measure::process::which(&command[0]).is_none() {
        return Err(format!("the command of '{name}': cannot run '{}': no such program", command[0]));
    }
    Ok(ServerArg { name: name.to_owned(), command })
}

/// Splits `models` into those this kernel runs and, for the others, why not.
pub fn unsupported(models: &[String]) -> (Vec<String>, Vec<lab_report::results::document::Unsupported>) {
    let mut runnable = Vec::new();
    let mut skipped = Vec::new();
    for name in models {
        match lab_server::model(name).and_then(|m| m.unsupported()) {
            Some(reason) => skipped.push(lab_report::results::document::Unsupported {
                model: name.clone(),
                reason: format!("unsupported on this kernel: {reason}"),
            }),
            None => runnable.push(name.clone()),
        }
    }
    (runnable, skipped)
}

/// `--addr`: an IP and port, or a name and port resolved as the system resolves it
/// (`localhost:8000`); of several addresses a name has, the first loopback one.
pub fn parse_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let addrs: Vec<_> = text
        .to_socket_addrs()
        .map_err(|e| format!("'{text}' is not an address: give IP:PORT or NAME:PORT, e.g. 127.0.0.1:8000 ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.ip().is_loopback())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("'{text}' resolves to no address"))
}
