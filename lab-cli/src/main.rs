//! The `iolab` command line: parse, dispatch (see [`commands`]), and turn every failure into one
//! line and an exit code: 2 for bad input, 128 + the signal when interrupted, else 1.
//!
//! This crate holds the commands only: each parses its flags, calls the library crates and prints.
//! The layers below it are crates of their own, so Cargo enforces which may use which:
//!
//! | crate         | holds                                                                         |
//! |---------------|-------------------------------------------------------------------------------|
//! | `lab-bench`   | `iolab bench`: what the probe costs, strace and perf beside it, scale, C     |
//! | `lab-report`  | results as data (the document, statistics, figures) and their presentation   |
//! | `lab-measure` | the probes, the processes they watch, one measured run and the experiments   |
//! | `lab-load`    | the load generator (its own process, `iolab load`)                           |
//!
//! `lab-server` (the models) and `lab-common` (the counters the probes and the lab share) are
//! below them all.
mod commands;

use std::process::ExitCode;

use crate::commands::{Cli, dispatch};
use clap::Parser as _;
use lab_measure::{error::BadInput, interrupt};

/// Bad input is one line: clap's message with what it says on the lines below it (which
/// arguments are missing, the valid values, the tip to put a command after `--`), without the
/// usage and the pointer to `--help`.
fn one_line(clap_error: &str) -> String {
    let mut line = String::new();
    for part in clap_error.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if part.starts_with("Usage:") || part.starts_with("For more information") {
            break;
        }
        let part = part.trim_start_matches("error: ");
        if line.is_empty() {
            line = part.to_owned();
        } else if line.ends_with(':') {
            line = format!("{line} {part}");
        } else if part.starts_with("tip:") || part.starts_with('[') {
            line = format!("{line} {}", if part.starts_with('[') { part.to_owned() } else { format!("({part})") });
        } else {
            line = format!("{line}, {part}");
        }
    }
    line
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `iolab` alone: the help, on stderr, exit status 2 (clap's own way).
        Err(err) if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
        Err(err) if err.use_stderr() => {
            let mut line = one_line(&err.render().to_string());
            let trace = std::env::args().nth(1).is_some_and(|c| c == "trace");
            if trace && err.kind() == clap::error::ErrorKind::UnknownArgument && !line.contains("tip:") {
                line += " (the command to trace goes after `--`: iolab trace -- CMD ARGS…)";
            }
            let ready = std::env::args().skip(2).any(|a| a == "--ready");
            if !trace && ready && err.kind() == clap::error::ErrorKind::UnknownArgument && line.contains("'--ready'") {
                line += " (--ready is iolab scan's: iolab scan --ready)";
            }
            eprintln!("iolab: {line}");
            return ExitCode::from(2);
        }
        Err(err) => err.exit(),
    };
    if cli.command.measures()
        && let Err(err) = interrupt::install()
    {
        eprintln!("iolab: cannot install signal handlers: {err}");
        return ExitCode::FAILURE;
    }
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("iolab: {err:#}");
            if let Some(interrupted) = interrupt::cause(&err) {
                ExitCode::from(interrupted.exit_code())
            } else if err.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
