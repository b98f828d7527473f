//! The `iolab` command line: parse, dispatch, and turn every failure into one line and an exit code.
use std::{
    io::Write as _,
    net::{SocketAddr, TcpListener},
    os::fd::FromRawFd as _,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use iolab::{
    commands::args::{Output, Workload},
    commands::compare,
    error::BadInput,
    interrupt, load,
    measure::exercise,
    measure::launch,
    measure::probe::Probe,
    measure::run,
    measure::selftest,
    present::export,
    present::run_table,
    results::save,
};

#[derive(Parser)]
#[command(
    name = "iolab",
    version,
    about = "What each way of writing a TCP server costs the kernel, measured with eBPF"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one model under the probe, drive it with the load generator, show what it cost.
    Run {
        #[arg(long, short = 'M', value_parser = parse_model)]
        model: String,
        /// Run the same workload without the probes (to see what tracing costs).
        #[arg(long)]
        no_trace: bool,
        #[command(flatten)]
        workload: Workload,
        #[command(flatten)]
        output: Output,
    },
    /// Run models on the same workload and compare them, a row per model.
    Compare(compare::CompareArgs),
    /// The walkthrough's scenario: C connections all ready at once, every round. What did it take?
    Prove(compare::ProveArgs),
    /// The same workload at several connection counts: a table and an SVG plot.
    Sweep(compare::SweepArgs),
    /// Re-render saved results (`--save`, `--format json`) in any format, side by side.
    Report {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long, value_enum, default_value_t = export::Format::Table)]
        format: export::Format,
    },
    /// Endurance: one traced server, the same load again and again; throughput, fds and RSS over time.
    Soak(iolab::commands::soak::SoakArgs),
    /// Serve one model, untraced, so you can point strace or perf at it.
    Serve {
        #[arg(long, short = 'M', value_parser = parse_model)]
        model: String,
        /// Address to listen on (loopback; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0", conflicts_with = "listen_fd")]
        addr: SocketAddr,
        /// Serve on an already-listening socket at this fd (how the lab starts models).
        #[arg(long, hide = true)]
        listen_fd: Option<i32>,
        /// Allow a non-loopback --addr.
        #[arg(long)]
        allow_remote: bool,
    },
    /// Drive any echo-uppercase server with the load generator.
    Load {
        #[arg(long)]
        addr: SocketAddr,
        /// Every connection sends message k at the same moment (a barrier between rounds).
        #[arg(long)]
        lockstep: bool,
        /// Allow a non-loopback --addr.
        #[arg(long)]
        allow_remote: bool,
        /// Print `connected` and `sent` at the phase boundaries, each time waiting for a line on
        /// stdin (how the lab measures the message rounds alone).
        #[arg(long, hide = true)]
        pause_between_phases: bool,
        /// Answer every line on stdin with `answered N`, the messages answered so far (how
        /// `iolab bench` reads the throughput of short phases inside one run).
        #[arg(long, hide = true, conflicts_with = "pause_between_phases")]
        answer_progress: bool,
        #[command(flatten)]
        workload: Workload,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List the server models.
    Models,
    /// Any server under the probe: `-- CMD ARGS…` started traced, or `--pid` of a running one.
    Trace(iolab::commands::trace::TraceArgs),
    /// Live syscall and context-switch rates of a running server (`--pid`), until Ctrl-C.
    Top(iolab::commands::top::TopArgs),
    /// Measure the lab's own speed: probe overhead, strace and perf, scale, the models against C.
    Bench(iolab::commands::bench::BenchArgs),
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
    /// Internal: kill process group PGID if iolab dies before it says otherwise (see `process`).
    #[command(hide = true)]
    Guard { pgid: i32 },
}

#[derive(Subcommand)]
enum Exercise {
    Io { n: u64, k: u64, j: u64 },
    Block { n: u64 },
    Epoll { k: usize },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

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
    // Commands that measure turn Ctrl-C and SIGTERM into a clean stop. The others (serve, load,
    // the internal gate and exercises) keep the default: the signal ends them.
    let measures = !matches!(
        cli.command,
        Cmd::Serve { .. }
            | Cmd::Load { .. }
            | Cmd::Gate { .. }
            | Cmd::Guard { .. }
            | Cmd::Exercise(_)
            | Cmd::Models
            | Cmd::Report { .. }
    );
    if measures && let Err(err) = interrupt::install() {
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

fn dispatch(command: Cmd) -> Result<ExitCode> {
    match command {
        Cmd::Run { model, no_trace, workload, output } => {
            run_command(&workload.spec(&model), no_trace, workload.allow_errors, &output)
        }
        Cmd::Compare(args) => compare::compare_command(args),
        Cmd::Prove(args) => compare::prove_command(args),
        Cmd::Sweep(args) => compare::sweep_command(args),
        Cmd::Report { files, format } => {
            let text = save::report(&files, format).map_err(|e| BadInput(format!("{e:#}")))?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { model, addr, listen_fd, allow_remote } => {
            let m = lab_server::model(&model).expect("checked by clap");
            let listener = match listen_fd {
                // SAFETY: the lab passes a listening socket at this fd (see launch.rs).
                Some(fd) => unsafe { TcpListener::from_raw_fd(fd) },
                None => {
                    if !addr.ip().is_loopback() && !allow_remote {
                        iolab::bad_input!(
                            "invalid value '{addr}' for '--addr': servers bind loopback only unless --allow-remote"
                        );
                    }
                    match TcpListener::bind(addr) {
                        Ok(listener) => listener,
                        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
                            iolab::bad_input!(
                                "invalid value '{addr}' for '--addr': the address is in use (port 0 picks a free one)"
                            )
                        }
                        Err(err) => return Err(err).with_context(|| format!("cannot listen on {addr}")),
                    }
                }
            };
            println!("listening on {}", listener.local_addr()?);
            std::io::stdout().flush()?;
            (m.serve)(listener).with_context(|| format!("model {model}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Load { addr, lockstep, allow_remote, pause_between_phases, answer_progress, workload, format } => {
            let spec = load::LoadSpec {
                addr,
                connections: workload.connections as usize,
                messages: workload.messages as usize,
                payload: workload.bytes as usize,
                idle: workload.idle as usize,
                rounds_in_lockstep: lockstep,
                timeout: Duration::from_secs(10),
                allow_remote,
                pause_between_phases,
                answer_progress,
            };
            if !addr.ip().is_loopback() && !allow_remote {
                iolab::bad_input!(
                    "invalid value '{addr}' for '--addr': load goes to loopback addresses only unless --allow-remote"
                );
            }
            load::limits::make_room_for(spec.connections + spec.idle).map_err(|e| BadInput(format!("{e:#}")))?;
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
        Cmd::Trace(args) => iolab::commands::trace::trace_command(args),
        Cmd::Top(args) => iolab::commands::top::top_command(args),
        Cmd::Bench(args) => iolab::commands::bench::bench_command(args),
        Cmd::Selftest { format } => selftest(format),
        Cmd::Soak(args) => iolab::commands::soak::soak_command(args),
        Cmd::Exercise(Exercise::Io { n, k, j }) => {
            exercise::io(n, k, j)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exercise(Exercise::Epoll { k }) => {
            exercise::epoll(k)?;
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
        Cmd::Guard { pgid } => {
            iolab::measure::process::guard(pgid)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_model(name: &str) -> Result<String, String> {
    match iolab::commands::args::parse_models(name)?.as_slice() {
        [one] if name != "all" => Ok(one.clone()),
        _ => Err(format!("one model, not a list (valid: {})", lab_server::model_names().join(", "))),
    }
}

/// `iolab run`: one model, one measured run (no warm-up: what you see is what one run cost).
fn run_command(spec: &run::RunSpec, no_trace: bool, allow_errors: bool, output: &Output) -> Result<ExitCode> {
    let mut out = export::open_output(output.output.as_deref()).map_err(|e| BadInput(format!("--output: {e:#}")))?;
    load::limits::make_room_for(spec.connections + spec.idle)
        .map_err(|e| BadInput(format!("--connections {} --idle {}: {e:#}", spec.connections, spec.idle)))?;
    let mut probe = if no_trace { Probe::disabled() } else { Probe::load()? };
    let result = run::run_model(&mut probe, spec)?;
    let text = match output.format {
        export::Format::Table => run_table::run_table(&result),
        export::Format::Json => serde_json::to_string_pretty(&result)? + "\n",
        format => {
            let mut doc = save::new_document("run", 1);
            doc.results.push(iolab::results::stats::model_result(vec![result.clone()]));
            export::render(&doc, format)
        }
    };
    out.write_all(text.as_bytes())?;
    if let Some(dir) = &output.save {
        save::prepare_dir(dir)?;
        save::save_run(dir, &save::new_document("run", 1), &result, 1)?;
    }
    if result.errors > 0 && !allow_errors {
        eprintln!("iolab: the load generator saw {} errors (--allow-errors to accept)", result.errors);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs both checks and says plainly whether the counts can be trusted.
fn selftest(format: Format) -> Result<ExitCode> {
    let mut probe = Probe::load()?;
    let io = selftest::check_io(&mut probe, 1000, 300, 200)?;
    let switches = selftest::check_switches(&mut probe, 200)?;
    let epoll = selftest::check_epoll(&mut probe, 50)?;
    let io_ok = io.reads == io.expected && io.writes == io.expected;
    let epoll_ok = epoll.calls == 4 && epoll.fds_passed == epoll.expected_fds_passed && epoll.ready == 4;
    let diff = switches.probe_voluntary.abs_diff(switches.proc_voluntary);
    let switches_ok = switches.probe_voluntary >= switches.blocks && diff * 100 <= switches.proc_voluntary * 3;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({ "io": io, "switches": switches, "epoll": epoll, "unavailable": probe.unavailable,
                "io_ok": io_ok, "switches_ok": switches_ok, "epoll_ok": epoll_ok })
        ),
        Format::Table => {
            let verdict = |ok| if ok { "ok" } else { "MISMATCH" };
            println!(
                "syscalls: expected {} reads and {} writes (process + child + thread), probe counted {} and {}: {}",
                io.expected,
                io.expected,
                io.reads,
                io.writes,
                verdict(io_ok)
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
            println!(
                "epoll interest list: 4 epoll_wait calls over {} registrations (add via a dup'd fd, del, close, failed add): fds passed expected {}, probe {}; ready expected 4, probe {}: {}",
                epoll.registered,
                epoll.expected_fds_passed,
                epoll.fds_passed,
                epoll.ready,
                verdict(epoll_ok)
            );
        }
    }
    Ok(if io_ok && switches_ok && epoll_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn iolab_models() -> &'static [lab_server::Model] {
    lab_server::models::ALL
}
