//! Booting a kernel in QEMU, relaying its console, and making sure QEMU never outlives us.
//!
//! QEMU runs with `-nographic`: the guest's first serial port (ttyS0, the kernel's and init's
//! console) is QEMU's standard output. Two threads read QEMU's output and errors line by line
//! into a channel; the main thread relays each line, feeds it to [`Console`], and waits with a
//! deadline. Whatever happens (deadline, error, panic), dropping [`Running`] kills QEMU.
//!
//! Acceleration: with KVM the guest runs at nearly native speed, but KVM is not dependable
//! everywhere (nested virtualisation, permissions), so [`choose_accel`] first boots the VM once
//! with KVM doing nothing but powering off, and falls back to TCG, QEMU's CPU emulator, which is
//! many times slower but works on any host.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::guest::{Console, Seen};
use crate::{cmd, say};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// How long one VM may run before it is killed.
    pub fn timeout(self) -> Duration {
        match self {
            Accel::Kvm => Duration::from_secs(5 * 60),
            Accel::Tcg => Duration::from_secs(15 * 60),
        }
    }
}

/// With KVM a boot to the guest's last word takes a few seconds; a probe boot gets this long.
const KVM_PROBE_TIME: Duration = Duration::from_secs(20);

/// After the guest's last word, how long it may take to power off before QEMU is killed.
const POWER_OFF_GRACE: Duration = Duration::from_secs(10);

/// After the guest's first stall report, how long its backtraces get to reach the log.
const STALL_GRACE: Duration = Duration::from_secs(10);

/// What to boot.
pub struct Machine<'a> {
    pub qemu: &'a Path,
    pub vmlinuz: &'a Path,
    pub initrd: &'a Path,
    pub accel: Accel,
}

/// How QEMU ended.
#[derive(Debug)]
pub enum Ending {
    Exited(ExitStatus),
    /// Killed at the deadline, before the guest said PASS or FAIL.
    TimedOut,
    /// The guest said PASS or FAIL but did not power off in time, so QEMU was killed.
    PowerOffHung,
    /// The guest kernel said a CPU was stuck (see `guest::STALL_SIGNS`); QEMU was killed once
    /// the kernel had printed its backtraces.
    Stalled,
}

pub struct Outcome {
    pub console: Console,
    pub ending: Ending,
    pub elapsed: Duration,
}

/// Where the console goes besides [`Console`]: the terminal (each line after `prefix`) and a
/// log file with every line.
pub struct Relay<'a> {
    pub prefix: &'a str,
    pub log: &'a Path,
    /// Print nothing on the terminal (the KVM probe).
    pub quiet: bool,
}

/// Boots `machine` with `extra` on the kernel command line, until the guest powers off or
/// `timeout` passes.
pub fn boot(machine: &Machine, extra: &str, timeout: Duration, relay: &Relay) -> Result<Outcome> {
    let mut qemu = Command::new(machine.qemu);
    qemu.args(["-accel", machine.accel.name()])
        .args(["-m", "1024", "-smp", "2", "-nographic", "-no-reboot"])
        // No network card: the guest needs only loopback (and the card's boot ROM is noise).
        .args(["-nic", "none"])
        .arg("-kernel")
        .arg(machine.vmlinuz)
        .arg("-initrd")
        .arg(machine.initrd)
        // Warnings and worse on the console (`loglevel=5`, not `quiet`), and every CPU's
        // backtrace when one is stuck: a stalled guest then says where it was. `no_timer_check`:
        // an emulated CPU on a busy host can be too slow for the boot's check that the timer
        // interrupt arrives in time, and the kernel then panics ("IO-APIC + timer doesn't
        // work!", seen here with the host's two cores busy).
        .args([
            "-append",
            format!("console=ttyS0 panic=-1 loglevel=5 softlockup_all_cpu_backtrace=1 no_timer_check {extra}")
                .trim_end(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let line = cmd::show(&qemu);
    if !relay.quiet {
        say!("{line}");
    }
    let start = Instant::now();
    let mut running = Running(qemu.spawn().with_context(|| format!("cannot start `{line}`"))?);
    let (tx, rx) = mpsc::channel();
    let stdout = running.0.stdout.take().context("no stdout pipe")?;
    let stderr = running.0.stderr.take().context("no stderr pipe")?;
    for (stream, tag) in [(Box::new(stdout) as Box<dyn Read + Send>, ""), (Box::new(stderr), "qemu: ")] {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n') {
                let Ok(line) = line else { break };
                // The firmware clears the screen with escape sequences; the console ends
                // lines with \r\n. Neither belongs in a line of text.
                let text = String::from_utf8_lossy(&strip_ansi_escapes::strip(&line)).into_owned();
                if tx.send(format!("{tag}{text}")).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(relay.log)
        .with_context(|| format!("cannot open {}", relay.log.display()))?;
    let mut console = Console::default();
    let mut deadline = start + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                writeln!(log, "{line}")?;
                let seen = console.line(&line);
                if !relay.quiet {
                    show(relay.prefix, &line, seen, &console);
                }
                if console.verdict.is_some() {
                    deadline = deadline.min(Instant::now() + POWER_OFF_GRACE);
                }
                if console.stall.is_some() && console.verdict.is_none() {
                    deadline = deadline.min(Instant::now() + STALL_GRACE);
                }
            }
            // Both pipes closed: QEMU has exited.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let ending = match (&console.verdict, &console.stall) {
                    (Some(_), _) => Ending::PowerOffHung,
                    (None, Some(_)) => Ending::Stalled,
                    (None, None) => Ending::TimedOut,
                };
                drop(running);
                return Ok(Outcome { console, ending, elapsed: start.elapsed() });
            }
        }
    }
    let status = running.0.wait().context("waiting for qemu")?;
    Ok(Outcome { console, ending: Ending::Exited(status), elapsed: start.elapsed() })
}

/// Prints one console line. A step's standard output is held until the step ends; JSON (read
/// by the summary, and kept in the log) is then shown as one line, anything else in full.
fn show(prefix: &str, line: &str, seen: Seen, console: &Console) {
    match seen {
        Seen::Show => println!("{prefix}{line}"),
        Seen::Kept => {}
        Seen::OutputEnd => {
            let Some(step) = console.steps.last() else {
                return;
            };
            if step.json().is_some() {
                println!(
                    "{prefix}({} lines of JSON from `{}`, in the log and the summary)",
                    step.output.len(),
                    step.name
                );
            } else {
                for line in &step.output {
                    println!("{prefix}{line}");
                }
            }
        }
    }
}

/// QEMU, killed and reaped when dropped, so no VM outlives xtask.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// KVM when /dev/kvm opens and a probe boot with KVM gets to the guest's last word within
/// [`KVM_PROBE_TIME`]; TCG otherwise.
pub fn choose_accel(qemu: &Path, vmlinuz: &Path, initrd: &Path, log: &Path) -> Result<Accel> {
    if let Err(err) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        say!("qemu: no KVM (/dev/kvm: {err}); emulating the CPU (TCG), which is slow");
        return Ok(Accel::Tcg);
    }
    say!("qemu: trying KVM with a boot that only powers off");
    let machine = Machine { qemu, vmlinuz, initrd, accel: Accel::Kvm };
    let relay = Relay { prefix: "", log, quiet: true };
    let outcome = boot(&machine, "iolab.probe", KVM_PROBE_TIME, &relay)?;
    let why_not = match (&outcome.console.verdict, &outcome.ending) {
        (Some(_), Ending::Exited(_)) => None,
        (Some(_), _) => Some("the guest did not power off".to_owned()),
        (None, Ending::Exited(status)) => Some(format!("qemu stopped early ({status})")),
        (None, _) => Some(format!("the guest did not finish booting within {} s", KVM_PROBE_TIME.as_secs())),
    };
    match why_not {
        None => {
            say!("qemu: KVM works ({:.1} s to boot and power off)", outcome.elapsed.as_secs_f64());
            Ok(Accel::Kvm)
        }
        Some(why) => {
            say!("qemu: not using KVM: {why} (see {}); emulating the CPU (TCG), which is slow", log.display());
            Ok(Accel::Tcg)
        }
    }
}

/// Starts the log of one kernel's boot afresh.
pub fn new_log(path: &Path) -> Result<()> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}
