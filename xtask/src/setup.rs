//! `cargo xtask setup`: make sure the tools that build the probes are here.
//!
//! lab-ebpf is compiled by the nightly compiler (with `-Z build-std`, hence `rust-src`) into LLVM
//! bitcode, and `bpf-linker` turns that bitcode into a BPF object file. bpf-linker is a small
//! driver around LLVM, and its LLVM must have the same major version as the nightly's, or it
//! cannot read the bitcode. So instead of asking for a system LLVM, we reuse the libLLVM that
//! ships inside the nightly toolchain: `.tools/llvm-<major>/lib/` gets two symlinks to it
//! (`libLLVM.so` for the linker, the library's own name for the loader), `cargo install` builds
//! bpf-linker against that folder, and bpf-linker's build script writes the folder into the
//! binary's RUNPATH, so it finds libLLVM at run time without LD_LIBRARY_PATH.
//!
//! Each step checks before it acts, so a second `setup` changes nothing.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cmd, say};

/// The bpf-linker release we build; any 0.13.x found on PATH is accepted too.
const BPF_LINKER_VERSION: &str = "0.13.0";
const BPF_LINKER_SERIES: &str = "0.13.";

/// What the rest of xtask needs from setup.
pub struct Tools {
    /// The folder holding a working `bpf-linker`, to put in front of PATH.
    pub bin_dir: PathBuf,
    /// The host's target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub host: String,
}

pub fn setup(root: &Path) -> Result<Tools> {
    let nightly = Nightly::find()?;
    say!("nightly: rustc {} with LLVM {}", nightly.release, nightly.llvm_version);
    ensure_rust_src(&nightly)?;
    let bpf_linker = ensure_bpf_linker(root, &nightly)?;
    let bin_dir = bpf_linker.parent().context("bpf-linker path has no folder")?.to_path_buf();
    Ok(Tools { bin_dir, host: nightly.host })
}

/// Makes sure the toolchain running us has rustfmt and clippy, which the style gates run (a
/// `--profile minimal` install, as in CI, has neither).
pub fn ensure_lint_tools() -> Result<()> {
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(command, _)| cmd::output(Command::new(cmd::cargo_program()).args([command, "--version"])).is_err())
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    say!("{}: installing for the current toolchain (the style gates run them)", missing.join(", "));
    cmd::run(Command::new("rustup").args(["component", "add"]).args(&missing))
}

/// Makes sure a Chromium is on PATH: the browser test (`lab-cli/tests/browser.rs`) opens the HTML
/// pages in it, headless. Missing, it is installed with Debian's `apt-get install -y chromium`
/// (through sudo when we are not root), and xtask says so.
pub fn ensure_chromium() -> Result<()> {
    if ["chromium", "chromium-browser", "google-chrome"].iter().any(|name| which::which(name).is_ok()) {
        return Ok(());
    }
    say!("chromium: installing with apt-get (the browser test opens the HTML pages in it)");
    let apt = |args: &[&str]| -> Result<()> {
        let mut command = match crate::root::sudo()? {
            Some(sudo) => {
                let mut c = Command::new(sudo);
                c.arg("apt-get");
                c
            }
            None => Command::new("apt-get"),
        };
        cmd::run(command.env("DEBIAN_FRONTEND", "noninteractive").args(args))
    };
    apt(&["update"])?;
    apt(&["install", "-y", "--no-install-recommends", "chromium"]).context("cannot install chromium with apt-get")
}

/// The validation tests need strace and perf (`--validate` checks the probe against them), and
/// the profile tests rsvg-convert (a flame graph must render outside a browser too), so
/// `cargo xtask test` installs them with apt-get when missing and root, as on a fresh CI machine.
pub fn ensure_test_tools() -> Result<()> {
    let missing: Vec<&str> = [("strace", "strace"), ("perf", "linux-perf"), ("rsvg-convert", "librsvg2-bin")]
        .into_iter()
        .filter(|(p, _)| which::which(p).is_err())
        .map(|(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        say!(
            "{}: not installed, and not root to install them; the --validate and profile tests will fail",
            missing.join(", ")
        );
        return Ok(());
    }
    say!(
        "{}: installing (the --validate tests compare the probe with them; the profile tests draw with rsvg-convert)",
        missing.join(", ")
    );
    let install = || {
        let mut apt = Command::new("apt-get");
        apt.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing);
        apt
    };
    if cmd::run(&mut install()).is_err() {
        cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
        cmd::run(&mut install())?;
    }
    Ok(())
}

/// The facts about the nightly toolchain that setup depends on.
struct Nightly {
    release: String,
    host: String,
    llvm_version: String,
    llvm_major: u32,
    sysroot: PathBuf,
}

impl Nightly {
    fn find() -> Result<Nightly> {
        let version = cmd::output(Command::new("rustc").args(["+nightly", "-vV"]))
            .context("no nightly toolchain; install it with `rustup toolchain install nightly`")?;
        let field = |name: &str| {
            version
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                .map(str::to_owned)
                .with_context(|| format!("`rustc +nightly -vV` has no `{name}:` line"))
        };
        let llvm_version = field("LLVM version")?;
        let llvm_major = llvm_version
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .with_context(|| format!("cannot read LLVM version `{llvm_version}`"))?;
        let sysroot = cmd::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
        Ok(Nightly {
            release: field("release")?,
            host: field("host")?,
            llvm_version,
            llvm_major,
            sysroot: PathBuf::from(sysroot.trim()),
        })
    }

    /// The nightly's own LLVM library, e.g. `lib/libLLVM.so.22.1-rust-1.97.0-nightly`.
    fn libllvm(&self) -> Result<PathBuf> {
        let lib = self.sysroot.join("lib");
        let prefix = format!("libLLVM.so.{}.", self.llvm_major);
        let mut found = Vec::new();
        for entry in fs::read_dir(&lib).with_context(|| format!("cannot list {}", lib.display()))? {
            let path = entry?.path();
            if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(&prefix)) {
                found.push(path);
            }
        }
        match <[PathBuf; 1]>::try_from(found) {
            Ok([path]) => Ok(path),
            Err(found) => bail!("expected one {prefix}* in {}, found {}", lib.display(), found.len()),
        }
    }
}

fn ensure_rust_src(nightly: &Nightly) -> Result<()> {
    let library = nightly.sysroot.join("lib/rustlib/src/rust/library");
    if library.is_dir() {
        say!("rust-src: already installed for nightly");
        return Ok(());
    }
    say!("rust-src: installing it for nightly (build-std needs the standard library's sources)");
    cmd::run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// Returns the path of a bpf-linker that works with the nightly's LLVM: ours in `.tools/bin`,
/// else one on PATH, else a new one built into `.tools/bin`.
fn ensure_bpf_linker(root: &Path, nightly: &Nightly) -> Result<PathBuf> {
    let tools = root.join(".tools");
    let ours = tools.join("bin/bpf-linker");
    let mut candidates = Vec::new();
    if ours.exists() {
        candidates.push(ours.clone());
    }
    if let Ok(on_path) = which::which("bpf-linker")
        && on_path != ours
    {
        candidates.push(on_path);
    }
    for candidate in candidates {
        match check_bpf_linker(&candidate, nightly.llvm_major) {
            Ok(version) => {
                say!("bpf-linker: already there: {} ({version}, LLVM {})", candidate.display(), nightly.llvm_major);
                return Ok(candidate);
            }
            Err(why) => say!("bpf-linker: not using {}: {why:#}", candidate.display()),
        }
    }
    install_bpf_linker(&tools, nightly)?;
    let version = check_bpf_linker(&ours, nightly.llvm_major).context("the bpf-linker just built does not work")?;
    say!("bpf-linker: installed {} ({version}, LLVM {})", ours.display(), nightly.llvm_major);
    say!("bpf-linker: no need to add .tools/bin to your PATH: xtask does it for its builds");
    Ok(ours)
}

/// Succeeds, returning its version, if the bpf-linker at `path` runs, is a 0.13.x, and loads a
/// shared libLLVM of major version `llvm_major`. Running it proves its libLLVM can be found;
/// `ldd` tells which one it is. (A statically linked one cannot be checked, so it is refused.)
fn check_bpf_linker(path: &Path, llvm_major: u32) -> Result<String> {
    let version = cmd::output(Command::new(path).arg("--version"))?;
    let version = version.trim().trim_start_matches("bpf-linker ").to_owned();
    if !version.starts_with(BPF_LINKER_SERIES) {
        bail!("version {version}, need {BPF_LINKER_SERIES}x");
    }
    let libs = cmd::output(Command::new("ldd").arg(path))?;
    let libllvm = libs
        .split_whitespace()
        .find(|word| word.starts_with("libLLVM"))
        .context("no shared libLLVM in `ldd` output, so its LLVM version is unknown")?;
    match llvm_major_of(libllvm) {
        Some(major) if major == llvm_major => Ok(version),
        _ => bail!("it uses {libllvm}, but nightly's LLVM is {llvm_major}"),
    }
}

/// The LLVM major version in a libLLVM file name: `libLLVM.so.22.1-rust-1.97.0-nightly` (Rust's),
/// `libLLVM.so.22.1` or `libLLVM-22.so` (Linux distributions') all give 22.
fn llvm_major_of(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix("libLLVM")?;
    let rest = rest.strip_prefix(".so.").or_else(|| rest.strip_prefix('-'))?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// Builds bpf-linker into `tools/bin`, linked against the nightly's libLLVM (see the module doc).
fn install_bpf_linker(tools: &Path, nightly: &Nightly) -> Result<()> {
    let major = nightly.llvm_major;
    let libllvm = nightly.libllvm()?;
    let prefix = tools.join(format!("llvm-{major}"));
    let lib = prefix.join("lib");
    // Start from an empty folder: old links may point into a nightly that rustup has replaced.
    if prefix.exists() {
        fs::remove_dir_all(&prefix).with_context(|| format!("cannot remove {}", prefix.display()))?;
    }
    fs::create_dir_all(&lib).with_context(|| format!("cannot create {}", lib.display()))?;
    let own_name = libllvm.file_name().context("libLLVM path has no file name")?;
    for link in [lib.join("libLLVM.so"), lib.join(own_name)] {
        symlink(&libllvm, &link).with_context(|| format!("cannot create {}", link.display()))?;
    }
    say!("bpf-linker: building {BPF_LINKER_VERSION} against nightly's LLVM {major} into .tools/ (about a minute)");
    // A build folder of its own: the workspace's `target/` may be locked by another cargo.
    let build_dir = tools.join("build");
    let mut install = Command::new(cmd::cargo_program());
    install
        .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
        .args(["--locked", "--force", "--no-default-features"])
        .args(["--features", &format!("llvm-{major}")])
        .arg("--root")
        .arg(tools)
        .env("LLVM_PREFIX", &prefix)
        .env("CARGO_TARGET_DIR", &build_dir)
        .current_dir(tools.parent().context(".tools has no parent")?);
    cmd::run(&mut install)?;
    // Hundreds of megabytes of intermediate files; only the binary is needed.
    fs::remove_dir_all(&build_dir).with_context(|| format!("cannot remove {}", build_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::llvm_major_of;

    #[test]
    fn llvm_major_from_library_names() {
        assert_eq!(llvm_major_of("libLLVM.so.22.1-rust-1.97.0-nightly"), Some(22));
        assert_eq!(llvm_major_of("libLLVM.so.21.1"), Some(21));
        assert_eq!(llvm_major_of("libLLVM-19.so"), Some(19));
        assert_eq!(llvm_major_of("libLLVM.so"), None);
        assert_eq!(llvm_major_of("libLLVMCore.a"), None);
    }
}
