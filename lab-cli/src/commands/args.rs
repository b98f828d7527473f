//! Command-line arguments shared by several commands: the workload and the output options.
//! Every bound is checked by clap, so bad input is one line naming the flag and exit status 2.

use std::path::PathBuf;

use clap::Args;

use crate::{
    error::BadInput,
    load::Workload,
    measure::run::{Counted, RunSpec},
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
        RunSpec { model: model.to_owned(), workload: self.workload(), counted: Counted::Everything }
    }
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

/// `--models all` or a comma-separated list, checked against the model names. A model named in a
/// list must run on this kernel; `all` keeps every model, and the commands report those this
/// kernel cannot run (see [`unsupported`]).
pub fn parse_models(list: &str) -> Result<Vec<String>, String> {
    if list == "all" {
        return Ok(lab_server::model_names().into_iter().map(String::from).collect());
    }
    list.split(',')
        .map(|name| match lab_server::model(name.trim()) {
            Some(m) => match m.unsupported() {
                None => Ok(m.name.to_owned()),
                Some(reason) => Err(format!("model '{}' is unsupported on this kernel: {reason}", m.name)),
            },
            None => Err(format!("unknown model '{name}' (valid: all, {})", lab_server::model_names().join(", "))),
        })
        .collect()
}

/// Splits `models` into those this kernel runs and, for the others, why not.
pub fn unsupported(models: &[String]) -> (Vec<String>, Vec<crate::results::document::Unsupported>) {
    let mut runnable = Vec::new();
    let mut skipped = Vec::new();
    for name in models {
        match lab_server::model(name).and_then(|m| m.unsupported()) {
            Some(reason) => skipped.push(crate::results::document::Unsupported { model: name.clone(), reason }),
            None => runnable.push(name.clone()),
        }
    }
    (runnable, skipped)
}

/// `--model`: one model name, checked against the models (`all` or a list is refused).
pub fn parse_model(name: &str) -> Result<String, String> {
    match parse_models(name)?.as_slice() {
        [one] if name != "all" => Ok(one.clone()),
        _ => Err(format!("one model, not a list (valid: {})", lab_server::model_names().join(", "))),
    }
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
