//! The cargo commands xtask runs for the user: build, test, and build-then-run iolab. Each starts
//! with `setup` and puts the bpf-linker folder first on PATH, because lab-measure's build script
//! compiles the probes (lab-ebpf) and the nightly compiler looks bpf-linker up on PATH.

use std::{
    env,
    ffi::OsString,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cmd, python, root, say, setup};

/// A cargo command run at the workspace root, with the tools' folder in front of PATH.
fn cargo(root: &Path, tools: &setup::Tools) -> Result<Command> {
    let mut path = vec![tools.bin_dir.clone()];
    path.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    let mut cargo = Command::new(cmd::cargo_program());
    cargo.current_dir(root).env("PATH", env::join_paths(path)?);
    Ok(cargo)
}

/// Builds lab-cli, the `iolab` binary, and returns its path.
pub fn build(root: &Path, debug: bool) -> Result<PathBuf> {
    let tools = setup::setup(root)?;
    let mut build = cargo(root, &tools)?;
    build.arg("build");
    if !debug {
        build.arg("--release");
    }
    build.args(["-p", "lab-cli"]);
    cmd::run(&mut build)?;
    let profile = if debug { "debug" } else { "release" };
    let iolab = target_dir(root)?.join(profile).join("iolab");
    say!("built {}", iolab.display());
    Ok(iolab)
}

/// Builds iolab, then replaces this process with `iolab ARGS…` running as root. Replacing
/// (exec) rather than waiting means Ctrl-C and the exit status go straight to and from iolab.
pub fn run_iolab(root: &Path, args: &[OsString]) -> Result<()> {
    let sudo = root::sudo()?;
    let iolab = build(root, false)?;
    let mut run = match sudo {
        Some(sudo) => {
            let mut run = Command::new(sudo);
            run.arg("--").arg(&iolab);
            run
        }
        None => Command::new(&iolab),
    };
    run.args(args);
    let line = cmd::show(&run);
    say!("{line}");
    let err = run.exec();
    Err(err).with_context(|| format!("cannot start `{line}`"))
}

/// `cargo test --release ARGS…` on the default members (lab-ebpf is not one: it only builds for
/// BPF), after the style gates unless `lint` is false. The tests need root; when we are not
/// root, cargo starts each test binary through sudo (a target "runner"), so compiling still
/// happens as the user.
pub fn test(root: &Path, lint: bool, args: &[OsString]) -> Result<()> {
    let tools = prepare_tests(root, lint)?;
    setup::ensure_chromium()?;
    // The gevent example's tests need it; without it they fail and say so, the others run.
    if let Err(err) = python::ensure_gevent(root) {
        say!("gevent: cannot set it up: {err:#}; the gevent server's tests will fail");
    }
    cmd::run(test_command(root, &tools)?.args(args))
}

/// The tests `test --quick` runs, each a `cargo test --release` argument list: every unit test,
/// the export snapshots, and the probe tests, which load the probes into the running kernel and
/// count known workloads exactly.
const QUICK: &[&[&str]] =
    &[&["--lib", "--bins"], &["-p", "lab-report", "--test", "export"], &["-p", "lab-cli", "--test", "probe"]];

/// `cargo xtask test --quick`: the style gates unless `lint` is false, then [`QUICK`].
pub fn quick_test(root: &Path, lint: bool) -> Result<()> {
    let tools = prepare_tests(root, lint)?;
    for args in QUICK {
        cmd::run(test_command(root, &tools)?.args(*args))?;
    }
    say!("--quick left out: the models' syscall profiles, the CLI, trace, validate, profile, scan, claims, kill,");
    say!("schema, browser and load tests, and lab-server's hostile-client tests; `cargo xtask test` runs them all");
    Ok(())
}

/// Setup, then the style gates unless `lint` is false.
fn prepare_tests(root: &Path, lint: bool) -> Result<setup::Tools> {
    let tools = setup::setup(root)?;
    setup::ensure_test_tools()?;
    if lint {
        gates(root, &tools)?;
    } else {
        say!("style gates skipped (--no-lint)");
    }
    Ok(tools)
}

/// `cargo test --release`, its test binaries run as root (through sudo when we are not root).
fn test_command(root: &Path, tools: &setup::Tools) -> Result<Command> {
    let mut test = cargo(root, tools)?;
    if let Some(sudo) = root::sudo()? {
        let triple = tools.host.to_uppercase().replace('-', "_");
        test.env(format!("CARGO_TARGET_{triple}_RUNNER"), sudo);
    }
    test.args(["test", "--release"]);
    Ok(test)
}

/// `cargo xtask lint`: setup, then the style gates alone.
pub fn lint(root: &Path) -> Result<()> {
    let tools = setup::setup(root)?;
    gates(root, &tools)
}

/// The style gates, quickest first: formatting as rustfmt.toml says, then clippy with warnings as
/// errors on the default members (lab-ebpf, a BPF-only crate, is not one). Clippy runs lab-measure's
/// build script, so it needs the tools on PATH; its first run on a clean tree also builds the
/// probes once for the dev profile, later runs take seconds. A failure names the gate and the
/// command that fixes or shows it; the details are in the tool's output just above.
fn gates(root: &Path, tools: &setup::Tools) -> Result<()> {
    setup::ensure_lint_tools()?;
    let mut fmt = cargo(root, tools)?;
    fmt.args(["fmt", "--all", "--check"]);
    if !cmd::succeeds(&mut fmt)? {
        bail!("style gate `fmt` failed: the code is not formatted; run `cargo fmt --all` to fix it");
    }
    let mut clippy = cargo(root, tools)?;
    clippy.args(["clippy", "--all-targets", "--", "-D", "warnings"]);
    if !cmd::succeeds(&mut clippy)? {
        bail!("style gate `clippy` failed: fix the lints above (`cargo clippy --all-targets` lists them)");
    }
    say!("style gates passed: fmt, clippy");
    Ok(())
}

/// The workspace's target folder, as cargo sees it (CARGO_TARGET_DIR or config may move it).
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    let mut metadata = Command::new(cmd::cargo_program());
    metadata.current_dir(root).args(["metadata", "--no-deps", "--format-version", "1"]);
    let json: serde_json::Value =
        serde_json::from_str(&cmd::output(&mut metadata)?).context("cannot parse `cargo metadata` output")?;
    let dir = json["target_directory"].as_str().context("`cargo metadata` gave no target_directory")?;
    Ok(PathBuf::from(dir))
}
