//! `iolab report FILE…`: saved results (`--save`, `--format json`) rendered again, in any format,
//! side by side.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;

use lab_measure::error::BadInput;
use lab_report::{present::export::Format, results::save};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Saved results: documents written by `--save` or `--format json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// How the results are shown: tables, or JSON, CSV or Markdown for programs and notes.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub fn report_command(args: ReportArgs) -> Result<ExitCode> {
    let doc = save::merge_files(&args.files).map_err(|e| BadInput(format!("{e:#}")))?;
    print!("{}", lab_report::present::export::render(&doc, args.format));
    Ok(ExitCode::SUCCESS)
}
