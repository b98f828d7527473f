//! `cargo xtask`: the project's own build tool, written in Rust so it needs nothing but cargo.
//!
//! The probes in lab-ebpf need a nightly compiler and a `bpf-linker` that matches the nightly's
//! LLVM, and iolab must run as root. Instead of a README full of manual steps (or a shell script),
//! each step is a subcommand here, following the "xtask" convention: `.cargo/config.toml`
//! aliases `cargo xtask` to `cargo run --package xtask --`.
//!
//! One module per concern, each using only modules named after it (no cycles): `vm` runs iolab
//! on other kernels in virtual machines and `bench` runs iolab's benchmark, both through `cargo`,
//! which runs cargo (build, test, lint) with the tools on PATH; `setup` finds or installs those
//! tools; `python` makes the virtualenv with gevent that the Python examples need; `root` gets root privileges; `cmd` prints and runs commands, and names the cargo to run.
//! Adding a subcommand means adding a variant to [`Task`] and a line to [`main`].

mod bench;
mod cargo;
mod cmd;
mod python;
mod root;
mod setup;
mod vm;

use std::{ffi::OsString, path::PathBuf};

use clap::{Parser, Subcommand};

/// Prints one progress line, prefixed so it stands out from cargo's own output.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("xtask: {}", format_args!($($arg)*)) };
}
pub(crate) use say;

#[derive(Parser)]
#[command(bin_name = "cargo xtask", about = "Set up, build, test and run iolab")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Check nightly and rust-src; find or build a bpf-linker that matches nightly's LLVM.
    Setup,
    /// Setup, then build iolab (target/release/iolab).
    Build {
        /// Build the debug profile instead (target/debug/iolab).
        #[arg(long)]
        debug: bool,
    },
    /// Build, then run `iolab run ARGS…` as root, e.g. `cargo xtask run --model poll`.
    #[command(disable_help_flag = true)]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Build, then run `iolab ARGS…` as root, e.g. `cargo xtask iolab compare`.
    #[command(disable_help_flag = true)]
    Iolab {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Build, then run `iolab bench ARGS…` as root: probe overhead, strace and perf, scale, the
    /// models against C (a few minutes; `--quick` for a smoke run).
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Setup, the style gates (see `lint`), then `cargo test --release ARGS…` on the default
    /// members, tests running as root.
    #[command(disable_help_flag = true)]
    Test {
        /// Skip the style gates, to iterate on tests (CI runs them). Goes before ARGS.
        #[arg(long)]
        no_lint: bool,
        /// The inner loop, in about two minutes on a built tree: the style gates, every unit test,
        /// the export snapshots and the probe's kernel smoke test; it says what it leaves out.
        /// Goes before ARGS; takes no ARGS.
        #[arg(long)]
        quick: bool,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Setup, then the style gates alone: `cargo fmt --all --check`, then
    /// `cargo clippy --all-targets -- -D warnings` on the default members.
    Lint,
    /// Make `.tools/python` (see `python`), build, then run `iolab claims ARGS…` as root: each
    /// claim of the walkthrough tested, with the Python servers beside the models; the page goes
    /// to docs/report.html unless ARGS has its own --html.
    #[command(disable_help_flag = true)]
    Claims {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Make `.tools/python`, a virtualenv with gevent for `examples/python/gevent_server.py`
    /// (`test` does it first).
    Python,
    /// Boot other Linux kernels in QEMU and run iolab's tests in them, e.g. `cargo xtask vm --all`.
    Vm(vm::VmArgs),
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(cli.task) {
        // `{:#}` puts the whole chain of causes on one line.
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(task: Task) -> anyhow::Result<()> {
    let root = repo_root();
    match task {
        Task::Setup => setup::setup(&root).map(drop),
        Task::Build { debug } => cargo::build(&root, debug).map(drop),
        Task::Run { mut args } => {
            args.insert(0, "run".into());
            cargo::run_iolab(&root, &args)
        }
        Task::Iolab { args } => cargo::run_iolab(&root, &args),
        Task::Bench { args } => bench::bench(&root, args),
        Task::Test { no_lint, quick: true, args } if args.is_empty() => cargo::quick_test(&root, !no_lint),
        Task::Test { quick: true, .. } => {
            eprintln!(
                "xtask: error: --quick runs a fixed set of tests and takes no arguments; drop them, or drop --quick"
            );
            std::process::exit(2);
        }
        Task::Test { no_lint, quick: false, args } => cargo::test(&root, !no_lint, &args),
        Task::Lint => cargo::lint(&root),
        Task::Python => python::ensure_gevent(&root),
        Task::Claims { mut args } => {
            // Without gevent the claims still run; their gevent figures say why they are missing.
            if let Err(err) = python::ensure_gevent(&root) {
                say!("gevent: {err:#}; the claims go on without the gevent server");
            }
            args.insert(0, "claims".into());
            // The page the README links: written unless the arguments name another.
            if !args.iter().any(|a| a == "--html" || a.to_string_lossy().starts_with("--html=")) {
                args.extend(["--html".into(), root.join("docs/report.html").into_os_string()]);
            }
            cargo::run_iolab(&root, &args)
        }
        Task::Vm(args) => vm::vm(&root, args),
    }
}

/// The workspace root: the parent of this crate's folder. Cargo tells us the folder at run time
/// (`cargo run` sets CARGO_MANIFEST_DIR); the compile-time value is the fallback.
fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().expect("xtask lives inside the workspace").to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::{Cli, Parser, Task};

    /// `--no-lint` is ours when it comes first; everything after goes to `cargo test`.
    fn test_args(line: &[&str]) -> (bool, Vec<String>) {
        let cli = Cli::try_parse_from(["cargo xtask", "test"].iter().chain(line)).expect("parses");
        let Task::Test { no_lint, args, .. } = cli.task else { panic!("not the test task") };
        (no_lint, args.iter().map(|arg| arg.to_string_lossy().into_owned()).collect())
    }

    #[test]
    fn quick_is_ours_before_the_arguments() {
        let cli = Cli::try_parse_from(["cargo xtask", "test", "--quick"]).expect("parses");
        assert!(matches!(cli.task, Task::Test { quick: true, no_lint: false, .. }));
        let cli = Cli::try_parse_from(["cargo xtask", "test", "--no-lint", "--quick"]).expect("parses");
        assert!(matches!(cli.task, Task::Test { quick: true, no_lint: true, .. }));
    }

    #[test]
    fn test_task_arguments() {
        assert_eq!(test_args(&[]), (false, vec![]));
        assert_eq!(test_args(&["--no-lint"]), (true, vec![]));
        assert_eq!(
            test_args(&["--no-lint", "-p", "xtask", "--", "--nocapture"]),
            (true, vec!["-p".into(), "xtask".into(), "--".into(), "--nocapture".into()])
        );
        assert_eq!(
            test_args(&["-p", "xtask", "--no-lint"]),
            (false, vec!["-p".into(), "xtask".into(), "--no-lint".into()])
        );
    }
}
