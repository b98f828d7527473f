//! The hidden subcommands the lab runs in its own child processes: `iolab gate` (how a traced
//! server starts, see `measure::launch`), `iolab guard` (kills a server's group if iolab dies,
//! see `measure::process`) and `iolab exercise` (workloads of known syscall counts for
//! selftest, see `measure::exercise`).

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use lab_measure::{exercise, launch, process};

#[derive(Subcommand)]
pub enum Exercise {
    Io { n: u64, k: u64, j: u64 },
    Block { n: u64 },
    Epoll { k: usize },
    Poll { k: usize, n: u64, timeout_ms: i32 },
    Spin { ms: u64 },
    Getppid { n: u64 },
    Ready { call: String, k: usize, n: u64 },
    Loopback { role: String, port: u16, n: u64, bytes: usize },
}

#[derive(Args)]
pub struct GateArgs {
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

pub fn exercise_command(exercise: Exercise) -> Result<ExitCode> {
    match exercise {
        Exercise::Io { n, k, j } => exercise::io(n, k, j)?,
        Exercise::Block { n } => exercise::block(n)?,
        Exercise::Epoll { k } => exercise::epoll(k)?,
        Exercise::Poll { k, n, timeout_ms } => exercise::poll(k, n, timeout_ms)?,
        Exercise::Spin { ms } => exercise::spin(ms)?,
        Exercise::Getppid { n } => exercise::getppid(n)?,
        Exercise::Ready { call, k, n } => exercise::ready(&call, k, n)?,
        Exercise::Loopback { role, port, n, bytes } => exercise::loopback(&role, port, n, bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gate_command(args: GateArgs) -> Result<ExitCode> {
    launch::gate(&args.argv)?;
    bail!("gate returned")
}

#[derive(Args)]
pub struct GuardArgs {
    pub pgid: i32,
}

pub fn guard_command(args: GuardArgs) -> Result<ExitCode> {
    process::guard(args.pgid)?;
    Ok(ExitCode::SUCCESS)
}
