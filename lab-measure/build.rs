//! Compiles the probes (lab-ebpf) for the BPF target with nightly and bpf-linker, so that
//! `src/probe.rs` can embed them with `include_bytes_aligned!`. `cargo xtask` puts both on PATH.
//!
//! This does what `aya_build::build_ebpf` (aya-build 0.2.0) does for us, with the same command,
//! target, flags and output file (`OUT_DIR/lab`), but quietly: aya-build relays every line of the
//! nested cargo as a build-script warning, about fifty `Compiling …` lines on a clean build.
//! Here a build that works prints one line (plus any compiler warnings about the
//! probes), and a build that fails prints all of its output.

use std::{env, fs, path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, Result};

/// The probes' package, and its one binary: the BPF object file that lab-cli embeds.
const PACKAGE: &str = "lab-ebpf";
const BINARY: &str = "lab";

fn main() -> Result<()> {
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../lab-ebpf");
    // The build-dependency on lab-ebpf reruns us when its library changes; this, when its binary does.
    println!("cargo:rerun-if-changed={root_dir}");
    // aya-build's switch to skip the probes (then `src/probe.rs` has nothing to embed).
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if env::var("AYA_BUILD_SKIP").is_ok_and(|skip| skip == "1" || skip.eq_ignore_ascii_case("true")) {
        println!("cargo:warning=AYA_BUILD_SKIP is set: not building the eBPF probes");
        return Ok(());
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let endian = if env::var("CARGO_CFG_TARGET_ENDIAN")? == "big" { "bpfeb" } else { "bpfel" };
    let target = format!("{endian}-unknown-none");
    let arch = env::var("CARGO_CFG_TARGET_ARCH")?;
    let arch = if arch.starts_with("riscv64") { "riscv64" } else { &arch };
    // Kept apart from OUT_DIR/lab, as aya-build does (a folder named like the binary would clash).
    let target_dir = out_dir.join("aya-build/target").join(PACKAGE);

    // aya-build's command, less `--message-format=json` (we want the compiler's own text, to show
    // it if the build fails) and an empty `--features` (which changes nothing). `-Z build-std`:
    // there is no prebuilt `core` for the BPF targets, so nightly compiles it from rust-src.
    let mut cargo = Command::new("rustup");
    cargo
        .args(["run", "nightly", "cargo", "build", "--package", PACKAGE, "--bins", "--release"])
        .args(["--target", &target, "-Z", "build-std=core", "--target-dir"])
        .arg(&target_dir)
        // The flags are separated by 0x1f in this variable.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!("--cfg=bpf_target_arch=\"{arch}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf"),
        )
        // These name the outer build's (stable) compiler and clippy; the nested build is nightly's.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");

    let started = Instant::now();
    let out = cargo.output().context("cannot run `rustup run nightly cargo` to build the eBPF probes")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Cargo shows a failed build script's stderr: the nested cargo's, compiler errors included.
        // Exit rather than return an error, whose backtrace would bury them.
        eprint!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("building the eBPF probes ({PACKAGE}) failed ({}): its output is above", out.status);
        std::process::exit(1);
    }
    // Keep what the compiler said about the probes (warnings); drop cargo's progress lines.
    let said: Vec<&str> = stderr.lines().filter(|line| !is_progress(line)).collect();
    if said.iter().any(|line| !line.trim().is_empty()) {
        for line in said {
            println!("cargo:warning={line}");
        }
    }
    let binary = target_dir.join(&target).join("release").join(BINARY);
    let dst = out_dir.join(BINARY);
    fs::copy(&binary, &dst).with_context(|| format!("cannot copy {} to {}", binary.display(), dst.display()))?;
    // Cargo prints build-script warnings when the script ends, and again on every build that
    // finds it up to date: hence the past tense.
    println!(
        "cargo:warning=eBPF probes ({PACKAGE}) built with nightly and bpf-linker in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A status line of cargo's (`   Compiling core v0.0.0 …`, `    Finished …`): indented, then one
/// of its verbs. Compiler messages never start that way.
fn is_progress(line: &str) -> bool {
    const VERBS: &[&str] =
        &["Compiling", "Finished", "Fresh", "Blocking", "Updating", "Locking", "Adding", "Downloading", "Downloaded"];
    line.starts_with(' ') && line.split_whitespace().next().is_some_and(|word| VERBS.contains(&word))
}
