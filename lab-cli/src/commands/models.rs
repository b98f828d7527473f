//! `iolab models`: the server models, in the walkthrough's order, with what each one is.

use std::process::ExitCode;

use anyhow::Result;

pub fn models_command() -> Result<ExitCode> {
    for m in lab_server::models::ALL {
        println!("{:<13} {}", m.name, m.summary);
    }
    Ok(ExitCode::SUCCESS)
}
