//! Command-line arguments shared by several commands: the workload ([`workload`]), the output
//! options ([`OutputArgs`]), `--timing`, `--profile` ([`ProfileArgs`]), `--server` and `--addr`. Every bound is checked by clap,
//! so bad input is one line naming the flag and exit status 2.

mod output;
mod profile;
pub mod workload;

use clap::Args;

use lab_measure::run::{PORT, RunSpec};

pub use output::OutputArgs;
pub use profile::ProfileArgs;
pub use workload::WorkloadArgs;

/// `--timing`, on the commands that measure a server (`run`, `compare`, `prove`, `sweep`, `trace`).
#[derive(Args, Clone, Copy, Debug)]
pub struct TimingArg {
    /// Also time every syscall of the server: calls, errors, on-CPU time and a log2 histogram
    /// of it per syscall (like `strace -c`, but on-CPU, exact, without ptrace). Adds a program
    /// on sys_exit, which costs every syscall of the machine more (BENCHMARKS.md).
    #[arg(long)]
    pub timing: bool,
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
        RunSpec { name: self.name.clone(), command: Some(self.command.clone()), ..spec.clone() }
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
