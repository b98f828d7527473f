//! The `iolab` command line: parse, dispatch, and turn every failure into one line and an exit code.
use std::{
    io::Write as _,
    net::{SocketAddr, TcpListener},
    os::fd::FromRawFd as _,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use iolab::{
    exercise, launch, load, selftest,
    probe::Probe,
    report,
    run::{self, RunSpec},
};

#[derive(Parser)]
#[command(name = "iolab", version, about = "What each way of writing a TCP server costs the kernel, measured with eBPF")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one model under the probe, drive it with the load generator, show what it cost.
    Run {
        #[arg(long, short = 'M')]
        model: String,
        #[command(flatten)]
        workload: Workload,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Exit 0 even when the load generator saw errors.
        #[arg(long)]
        allow_errors: bool,
    },
    /// Serve one model, untraced, so you can point strace or perf at it.
    Serve {
        #[arg(long, short = 'M')]
        model: String,
        /// Address to listen on (loopback; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0", conflicts_with = "listen_fd")]
        addr: SocketAddr,
        /// Serve on an already-listening socket at this fd (how the lab starts models).
        #[arg(long, hide = true)]
        listen_fd: Option<i32>,
    },
    /// Drive any echo-uppercase server with the load generator.
    Load {
        #[arg(long)]
        addr: SocketAddr,
        #[command(flatten)]
        workload: Workload,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List the server models.
    Models,
    /// Prove the probe exact on this kernel: known syscall and context-switch counts.
    Selftest {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Internal: workloads with known syscall counts, for selftest (see `exercise`).
    #[command(hide = true, subcommand)]
    Exercise(Exercise),
    /// Internal: wait for the lab's go byte on fd 4, then exec PROGRAM (see `launch`).
    #[command(hide = true)]
    Gate {
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
}

#[derive(Subcommand)]
enum Exercise {
    Io { n: u64, k: u64, j: u64 },
    Block { n: u64 },
}

#[derive(Args, Clone)]
struct Workload {
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    connections: u64,
    /// Messages per connection.
    #[arg(short = 'm', long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Payload bytes per message (at most 16 MiB).
    #[arg(short = 'b', long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=16 * 1024 * 1024))]
    bytes: u64,
    /// Extra connections that stay open and never send.
    #[arg(long, default_value_t = 0)]
    idle: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("iolab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Cmd) -> Result<ExitCode> {
    match command {
        Cmd::Run { model, workload, format, allow_errors } => {
            let spec = RunSpec {
                model,
                connections: workload.connections as usize,
                messages: workload.messages as usize,
                payload: workload.bytes as usize,
                idle: workload.idle as usize,
            };
            if lab_server::model(&spec.model).is_none() {
                return usage_error(format!(
                    "invalid value '{}' for '--model': valid models are {}",
                    spec.model,
                    lab_server::model_names().join(", ")
                ));
            }
            let mut probe = Probe::load()?;
            let result = run::run_model(&mut probe, &spec)?;
            match format {
                Format::Table => print!("{}", report::run_table(&result)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
            }
            if result.errors > 0 && !allow_errors {
                eprintln!("iolab: the load generator saw {} errors (--allow-errors to accept)", result.errors);
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { model, addr, listen_fd } => {
            let Some(m) = lab_server::model(&model) else {
                return usage_error(format!(
                    "invalid value '{model}' for '--model': valid models are {}",
                    lab_server::model_names().join(", ")
                ));
            };
            let listener = match listen_fd {
                // SAFETY: the lab passes a listening socket at this fd (see launch.rs).
                Some(fd) => unsafe { TcpListener::from_raw_fd(fd) },
                None => {
                    if !addr.ip().is_loopback() {
                        return usage_error(format!("invalid value '{addr}' for '--addr': servers bind loopback only"));
                    }
                    TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?
                }
            };
            println!("listening on {}", listener.local_addr()?);
            std::io::stdout().flush()?;
            (m.serve)(listener).with_context(|| format!("model {model}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Load { addr, workload, format } => {
            let spec = load::LoadSpec {
                addr,
                connections: workload.connections as usize,
                messages: workload.messages as usize,
                payload: workload.bytes as usize,
                idle: workload.idle as usize,
                rounds_in_lockstep: false,
                timeout: Duration::from_secs(10),
                allow_remote: false,
            };
            let report = load::run(&spec)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string(&report)?),
                Format::Table => println!(
                    "{} messages in {:.2} s = {:.0} msg/s, latency p50 {:.0} µs, p99 {:.0} µs, errors {}",
                    report.messages_ok,
                    report.wall_seconds,
                    report.msgs_per_sec,
                    report.latency_us.p50,
                    report.latency_us.p99,
                    report.errors.total()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Models => {
            for m in iolab_models() {
                println!("{:<13} {}", m.name, m.summary);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Selftest { format } => selftest(format),
        Cmd::Exercise(Exercise::Io { n, k, j }) => {
            exercise::io(n, k, j)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exercise(Exercise::Block { n }) => {
            exercise::block(n)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Gate { argv } => {
            launch::gate(&argv)?;
            bail!("gate returned")
        }
    }
}

/// Runs both checks and says plainly whether the counts can be trusted.
fn selftest(format: Format) -> Result<ExitCode> {
    let mut probe = Probe::load()?;
    let io = selftest::check_io(&mut probe, 1000, 300, 200)?;
    let switches = selftest::check_switches(&mut probe, 200)?;
    let io_ok = io.reads == io.expected && io.writes == io.expected;
    let diff = switches.probe_voluntary.abs_diff(switches.proc_voluntary);
    let switches_ok = switches.probe_voluntary >= switches.blocks && diff * 100 <= switches.proc_voluntary * 3;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({ "io": io, "switches": switches, "io_ok": io_ok, "switches_ok": switches_ok })
        ),
        Format::Table => {
            let verdict = |ok| if ok { "ok" } else { "MISMATCH" };
            println!(
                "syscalls: expected {} reads and {} writes (process + child + thread), probe counted {} and {}: {}",
                io.expected, io.expected, io.reads, io.writes, verdict(io_ok)
            );
            println!(
                "context switches: {} blocking reads; voluntary: probe {}, /proc {}; involuntary: probe {}, /proc {}: {}",
                switches.blocks,
                switches.probe_voluntary,
                switches.proc_voluntary,
                switches.probe_involuntary,
                switches.proc_involuntary,
                verdict(switches_ok)
            );
        }
    }
    Ok(if io_ok && switches_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn iolab_models() -> &'static [lab_server::Model] {
    lab_server::models::ALL
}

/// Bad input: one line, exit status 2 (as clap does for its own checks).
fn usage_error(message: String) -> Result<ExitCode> {
    eprintln!("iolab: {message}");
    Ok(ExitCode::from(2))
}
