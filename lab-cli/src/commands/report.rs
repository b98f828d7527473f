//! `iolab report FILE…`: saved results (`--save`, `--format json`) rendered again, in any format,
//! side by side, and with `--html` as one page.

use std::{path::PathBuf, process::ExitCode};

use std::io::Write as _;

use anyhow::{Context as _, Result};
use clap::Args;

use lab_measure::error::BadInput;
use lab_report::{
    present::{
        export::{self, Format},
        html,
    },
    results::save,
};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Saved results: documents written by `--save` or `--format json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// How the results are shown: tables, or JSON, CSV or Markdown for programs and notes.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write the results as one self-contained HTML page to FILE.
    #[arg(long, value_name = "PAGE")]
    pub html: Option<PathBuf>,
}

pub fn report_command(args: ReportArgs) -> Result<ExitCode> {
    let doc = save::merge_files(&args.files).map_err(|e| BadInput(format!("{e:#}")))?;
    if let Some(path) = &args.html {
        let shown = path.display();
        let mut out =
            export::open_output(Some(&path.to_string_lossy())).map_err(|e| BadInput(format!("--html: {e:#}")))?;
        out.write_all(html::document(&doc).as_bytes()).with_context(|| format!("cannot write {shown}"))?;
    }
    print!("{}", export::render_width(&doc, args.format, export::stdout_width()));
    Ok(ExitCode::SUCCESS)
}
