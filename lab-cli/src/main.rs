//! The `iolab` command line: parse, dispatch (see `iolab::commands`), and turn every failure
//! into one line and an exit code: 2 for bad input, 128 + the signal when interrupted, else 1.
use std::process::ExitCode;

use clap::Parser as _;
use iolab::{
    commands::{Cli, dispatch},
    error::BadInput,
    interrupt,
};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Bad input is one line (clap adds a usage hint; the line names the flag and the range).
        Err(err) if err.use_stderr() => {
            let text = err.render().to_string();
            let line = text.lines().next().unwrap_or_default();
            eprintln!("iolab: {}", line.trim_start_matches("error: "));
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
