//! Where a command's results go: the flags of every command that writes a results document
//! (`run`, `compare`, `prove`, `sweep`) or a scan (`scan`). `claims` writes one verdict table
//! and takes only `--format`, `-o`, `--html` and `-q`, with help of its own; `load` and `trace`
//! print one record with `--format`.

use std::path::PathBuf;

use clap::Args;

use lab_measure::error::BadInput;
use lab_report::{
    present::{
        export::{self, Format},
        html,
    },
    results::{document::Document, save},
};

/// Where the results go. Every path is checked before the first run, so a bad one fails at
/// once; after the runs, one that can no longer be written costs only itself (see [`OutputArgs::write`]).
#[derive(Args, Clone, Debug)]
pub struct OutputArgs {
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
    /// Also write the results as one self-contained HTML page to FILE (repeatable): the verdict,
    /// the conditions, charts, sortable tables and the data, opening from disk with no network.
    #[arg(long, value_name = "FILE")]
    pub html: Vec<PathBuf>,
    /// Keep every measured run's JSON in this folder (for `iolab report`).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// No progress bar (it shows on stderr when stderr is a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl OutputArgs {
    /// The export files, each with its format.
    fn exports(&self) -> Vec<(&PathBuf, Format)> {
        let mut all: Vec<_> = self.export_json.iter().map(|p| (p, Format::Json)).collect();
        all.extend(self.export_csv.iter().map(|p| (p, Format::Csv)));
        all.extend(self.export_markdown.iter().map(|p| (p, Format::Markdown)));
        all
    }

    /// Checks every output now, so that a path that cannot be written is bad input before
    /// anything is measured; a file that exists keeps what it holds until the results replace it.
    pub fn check(&self) -> Result<(), BadInput> {
        export::check_writable(self.output.as_deref()).map_err(|e| BadInput(format!("--output: {e:#}")))?;
        for (path, format) in self.exports() {
            let name = clap::ValueEnum::to_possible_value(&format).map(|v| v.get_name().to_owned()).unwrap_or_default();
            let flag = format!("--export-{name}");
            export::check_writable(Some(&path.to_string_lossy())).map_err(|e| BadInput(format!("{flag}: {e:#}")))?;
        }
        for path in &self.html {
            export::check_writable(Some(&path.to_string_lossy())).map_err(|e| BadInput(format!("--html: {e:#}")))?;
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
        let render = |format, width| Ok(export::render_width(doc, format, width));
        self.write_each(render, || html::document(doc), summary)
    }

    /// Writes what `render` makes in each format asked for, and `page` to each --html, as
    /// [`OutputArgs::write`] does, for a command whose results are not a [`Document`]
    /// (`iolab scan`); `--save` is the command's.
    pub fn write_rendered(
        &self,
        render: impl Fn(Format) -> anyhow::Result<String>,
        page: impl Fn() -> String,
    ) -> anyhow::Result<()> {
        self.write_each(|format, _| render(format), page, None)
    }

    /// Stdout or --output, every export, every --html page, then `json_copy` (if any) in JSON.
    /// `render` gets the width of the terminal for stdout when it is one (see
    /// `export::stdout_width`), else `None`: a file or a pipe keeps every table at full width.
    fn write_each(
        &self,
        render: impl Fn(Format, Option<usize>) -> anyhow::Result<String>,
        page: impl Fn() -> String,
        json_copy: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        let mut failed = 0;
        let mut report = |what: &str, result: anyhow::Result<()>| {
            if let Err(err) = result {
                eprintln!("iolab: could not write {what}: {err:#}");
                failed += 1;
            }
        };
        let width = if matches!(self.output.as_deref(), None | Some("-")) { export::stdout_width() } else { None };
        report("the results", render(self.format, width).and_then(|text| write_to(self.output.as_deref(), &text)));
        for path in &self.html {
            report(&path.display().to_string(), write_to(Some(&path.to_string_lossy()), &page()));
        }
        let mut files: Vec<(&PathBuf, Format)> = self.exports();
        files.extend(json_copy.as_ref().map(|path| (path, Format::Json)));
        for (path, format) in files {
            report(
                &path.display().to_string(),
                render(format, None).and_then(|text| write_to(Some(&path.to_string_lossy()), &text)),
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
