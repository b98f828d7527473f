//! `iolab models`: the server models, in the walkthrough's order: what each one is, the kernel
//! feature it needs, and whether this kernel has it.

use std::process::ExitCode;

use anyhow::Result;

pub fn models_command() -> Result<ExitCode> {
    let width = lab_server::models::ALL.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in lab_server::models::ALL {
        println!("{:<width$}  {}", m.name, m.summary);
        if let Some(needs) = m.needs {
            let here = match m.unsupported() {
                None => "this kernel has it".to_owned(),
                Some(reason) => format!("unsupported on this kernel: {reason}"),
            };
            println!("{:<width$}  needs {needs}: {here}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}
