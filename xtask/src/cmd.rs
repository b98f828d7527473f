//! Running external programs. Each command xtask runs for the user is printed first, so a reader
//! sees (and can repeat by hand) exactly what happens; a failure becomes one error line naming it.

use std::{
    ffi::{OsStr, OsString},
    path::Path,
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::say;

/// The cargo that runs us (cargo sets CARGO for `cargo run`), so nested builds use the same one.
/// It lives here, not in `cargo`, because `setup` needs it too and `cargo` depends on `setup`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The command as a shell line: changed environment first, then program and arguments. Paths
/// under the command's working directory are shown relative to it, and a PATH that only adds
/// folders in front of ours is shown as `PATH=folder:$PATH`.
pub fn show(cmd: &Command) -> String {
    let cwd = cmd.get_current_dir().map(|dir| format!("{}/", dir.display()));
    let text = |s: &OsStr| {
        let s = s.to_string_lossy();
        let s = match &cwd {
            Some(cwd) => s.replace(cwd.as_str(), ""),
            None => s.into_owned(),
        };
        if s.is_empty() || s.contains(char::is_whitespace) { format!("'{s}'") } else { s }
    };
    let our_path = std::env::var("PATH").unwrap_or_default();
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        let Some(value) = value else { continue };
        let raw = value.to_string_lossy();
        let value = match raw.strip_suffix(&format!(":{our_path}")) {
            Some(front) if key == "PATH" => format!("{}:$PATH", text(OsStr::new(front))),
            _ => text(value),
        };
        words.push(format!("{}={value}", key.to_string_lossy()));
    }
    // cargo is run by the full path that cargo gave us (see `cargo_program`); name it plainly.
    let program = Path::new(cmd.get_program());
    match program.file_name() {
        Some(name) if name == "cargo" => words.push("cargo".to_owned()),
        _ => words.push(text(program.as_os_str())),
    }
    words.extend(cmd.get_args().map(text));
    words.join(" ")
}

/// Prints `cmd`, runs it with the terminal attached, and fails if it does not succeed.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = show(cmd);
    say!("{line}");
    let status = cmd.status().with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Prints `cmd`, runs it with the terminal attached, and tells whether it succeeded: for checks
/// whose failure the caller explains in its own words.
pub fn succeeds(cmd: &mut Command) -> Result<bool> {
    let line = show(cmd);
    say!("{line}");
    let status = cmd.status().with_context(|| format!("cannot start `{line}`"))?;
    Ok(status.success())
}

/// Runs `cmd` quietly and returns its standard output; on failure, the error quotes its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = show(cmd);
    let out = cmd.output().with_context(|| format!("cannot start `{line}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no error message");
        bail!("`{line}` failed ({}): {}", out.status, why.trim());
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}
