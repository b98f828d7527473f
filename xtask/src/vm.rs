//! `cargo xtask vm`: run iolab on other Linux kernels, each booted in a QEMU virtual machine.
//!
//! The probes are only trustworthy if they load and count right on the kernels people run, so
//! this follows the approach of aya's own integration tests: boot a real kernel in QEMU with a
//! tiny root file system in memory (an initramfs) whose init runs the tests, prints one result
//! line and powers off. Nothing is installed in the VM and nothing is left behind: the kernel
//! and the initramfs are files under `target/vm/`, and QEMU is killed if it outlives its time.
//!
//! The steps, one module each:
//! 1. `tools`: make sure QEMU, busybox and Debian's keyring are installed.
//! 2. `kernel`: fetch a Debian kernel of the series asked for (`debian`), or take the host's
//!    image or a file, and check that its configuration builds in what iolab needs.
//! 3. `initramfs`: pack the init script (`xtask/vm/init`), busybox, iolab and its libraries,
//!    and the commands to run (`guest`).
//! 4. `qemu`: boot each kernel, relay the console (also kept in `target/vm/<kernel>.log`), and
//!    collect each step's output. Emulated (no KVM), one kernel takes about a minute.
//! 5. `summary`: one table over all the kernels.

mod debian;
mod guest;
mod initramfs;
mod kernel;
mod qemu;
mod summary;
mod tools;

use std::{fs, path::Path};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{cargo, say};
use guest::Step;
use kernel::{Choice, Found};
use summary::{KernelRun, State};

#[derive(Args)]
pub struct VmArgs {
    /// The kernel to boot: a Debian series (5.10, 6.1, 6.12), `host` (this machine's), or an image
    /// file. Another series is refused (exit status 2) with the ones Debian's archive has.
    #[arg(long, default_value = "6.1", conflicts_with = "all", value_parser = Choice::parse)]
    kernel: Choice,
    /// Boot 5.10, 6.1, 6.12 and this machine's kernel in turn, and compare them in one table.
    #[arg(long)]
    all: bool,
    /// How QEMU runs the guest's CPU: kvm, or tcg (emulated: slow, but works anywhere).
    /// Default: kvm if a quick probe boot works here, else tcg.
    #[arg(long)]
    accel: Option<qemu::Accel>,
    /// Give up on a guest after this many seconds (default: 15 min under tcg, 5 under kvm). An
    /// emulated guest now and then stalls (RCU "timer handling" warnings) and never finishes; CI
    /// bounds each try with this and tries again.
    #[arg(long)]
    timeout: Option<u64>,
    /// Run `iolab ARGS…` in the VM instead of the default steps (selftest and a comparison).
    #[arg(last = true, value_name = "ARGS")]
    iolab_args: Vec<String>,
}

pub fn vm(root: &Path, args: VmArgs) -> Result<()> {
    let tools = tools::ensure()?;
    let work = cargo::target_dir(root)?.join("vm");
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    // The kernels first: a wrong --kernel fails before a long build.
    // `--all`: every Debian series, oldest first, then the host's kernel.
    let choices: Vec<Choice> = if args.all {
        debian::SERIES.iter().map(|series| Choice::Series(*series)).chain([Choice::Host]).collect()
    } else {
        vec![args.kernel.clone()]
    };
    let archive = |release: &'static str| debian::Archive::new(&work.join("apt").join(release), release);
    let mut found = Vec::new();
    for choice in &choices {
        let label = choice.label();
        match kernel::find(choice, &work.join("kernels"), &archive) {
            Ok(Found::Unavailable(why)) if !args.all => bail!("kernel {label}: {why}"),
            Err(err) if !args.all => return Err(err.context(format!("kernel {label}"))),
            Err(err) => {
                say!("vm: kernel {label}: {err:#}");
                found.push((label, Err(format!("{err:#}"))));
            }
            Ok(kernel) => found.push((label, Ok(kernel))),
        }
    }

    let iolab = cargo::build(root, false)?;
    let steps = if args.iolab_args.is_empty() { Step::defaults() } else { vec![Step::iolab(&args.iolab_args)] };
    let initrd = work.join("initrd.gz");
    initramfs::build(&initrd, &iolab, &tools.busybox, &guest::steps_script(&steps))?;
    let size = fs::metadata(&initrd)?.len();
    say!("vm: wrote {} ({:.1} MB)", initrd.display(), size as f64 / 1e6);

    let mut accel = args.accel;
    let mut runs = Vec::new();
    for (label, kernel) in found {
        let state = match kernel {
            Err(err) => State::Error(err),
            Ok(Found::Unavailable(why)) => {
                say!("vm: skipping kernel {label}: {why}");
                State::Skipped(why)
            }
            Ok(Found::Kernel(kernel)) => {
                let log = work.join(format!("{}.log", label.replace('/', "_")));
                qemu::new_log(&log)?;
                let accel = match accel {
                    Some(accel) => accel,
                    None => *accel.insert(qemu::choose_accel(&tools.qemu, &kernel.vmlinuz, &initrd, &log)?),
                };
                let machine = qemu::Machine { qemu: &tools.qemu, vmlinuz: &kernel.vmlinuz, initrd: &initrd, accel };
                let prefix = format!("{label} | ");
                let relay = qemu::Relay { prefix: &prefix, log: &log, quiet: false };
                let timeout = args.timeout.map_or_else(|| accel.timeout(), std::time::Duration::from_secs);
                let outcome = qemu::boot(&machine, "", timeout, &relay)?;
                say!(
                    "vm: kernel {label} done in {:.0} s; console log: {}",
                    outcome.elapsed.as_secs_f64(),
                    log.display()
                );
                State::Booted { source: kernel.source, accel, outcome }
            }
        };
        runs.push(KernelRun { label, state });
    }

    println!();
    print!("{}", summary::render(&runs));
    let failed: Vec<&str> = runs.iter().filter(|run| !run.ok()).map(|run| run.label.as_str()).collect();
    if !failed.is_empty() {
        bail!("the VM run failed on kernel {}", failed.join(", "));
    }
    Ok(())
}
