//! The workload flags, each declared once: `-c`, `-m`, `-b`, `--idle`, `--allow-errors`.
//!
//! Each flag is an `Args` struct of its own because the commands take different sets of them:
//! `run`, `trace` and `load` take all five ([`WorkloadArgs`]); `compare`, `prove` and `sweep`
//! put `-c` and `-m` before their model flags and the rest after; `prove` has rounds instead of
//! `-m`; `soak` has no `--idle` or `--allow-errors`. A command whose default or help differs
//! sets it with `#[command(mut_arg(…))]` on its own struct. Counts parse straight to `usize`.

use clap::{Args, builder::RangedU64ValueParser};

use lab_load::{DEFAULT_PAYLOAD_BYTES, Workload};
use lab_measure::run::RunSpec;

/// The largest payload one message may carry.
pub const MAX_PAYLOAD: u64 = 16 * 1024 * 1024;
/// The most connections, busy or idle, one flag may ask for.
pub const MAX_CONNECTIONS: u64 = 1_000_000;

/// A count flag's parser: a whole number in `range`, as a `usize`.
pub fn count(range: impl std::ops::RangeBounds<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(range)
}

/// `-c`: busy connections.
#[derive(Args, Clone, Copy, Debug)]
pub struct Connections {
    /// Concurrent connections, each sending messages in a closed loop.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = count(1..=MAX_CONNECTIONS))]
    pub connections: usize,
}

/// `-m`: messages per connection.
#[derive(Args, Clone, Copy, Debug)]
pub struct Messages {
    /// Messages per connection.
    #[arg(short = 'm', long = "messages", value_name = "N", default_value_t = 100, value_parser = count(1..=1_000_000_000))]
    pub messages_per_connection: usize,
}

/// `-b`: bytes per message.
#[derive(Args, Clone, Copy, Debug)]
pub struct Payload {
    /// Payload bytes per message (1 to 16 MiB).
    #[arg(short = 'b', long = "bytes", value_name = "BYTES", default_value_t = DEFAULT_PAYLOAD_BYTES, value_parser = count(1..=MAX_PAYLOAD))]
    pub payload_bytes: usize,
}

/// `--idle`: connections that never send.
#[derive(Args, Clone, Copy, Debug)]
pub struct Idle {
    /// Extra connections that stay open and never send (the C10K case).
    #[arg(long, default_value_t = 0, value_parser = count(0..=MAX_CONNECTIONS))]
    pub idle: usize,
}

/// `--allow-errors`.
#[derive(Args, Clone, Copy, Debug)]
pub struct AllowErrors {
    /// Exit 0 even when the load generator saw errors (resets, timeouts, wrong bytes).
    #[arg(long)]
    pub allow_errors: bool,
}

/// `--allow-errors` with the shorter help of `compare`, `prove`, `sweep` and `scan`, for
/// `#[command(mut_arg("allow_errors", short_allow_errors))]`.
pub fn short_allow_errors(arg: clap::Arg) -> clap::Arg {
    arg.help("Exit 0 even when the load generator saw errors")
}

/// The workload flags of `run`, `trace` and `load`.
#[derive(Args, Clone, Copy, Debug)]
pub struct WorkloadArgs {
    #[command(flatten)]
    pub connections: Connections,
    #[command(flatten)]
    pub messages: Messages,
    #[command(flatten)]
    pub payload: Payload,
    #[command(flatten)]
    pub idle: Idle,
    #[command(flatten)]
    pub allow_errors: AllowErrors,
}

impl WorkloadArgs {
    /// The workload, free-running or in lockstep rounds.
    pub fn workload(&self, lockstep: bool) -> Workload {
        let (connections, messages) = (self.connections.connections, self.messages.messages_per_connection);
        let workload =
            if lockstep { Workload::lockstep(connections, messages) } else { Workload::free(connections, messages) };
        workload.with_payload(self.payload.payload_bytes).with_idle(self.idle.idle)
    }

    /// One run of `model` on this workload (free-running), the whole run counted.
    pub fn spec(&self, model: &str) -> RunSpec {
        RunSpec { workload: self.workload(false), ..RunSpec::model(model) }
    }
}
