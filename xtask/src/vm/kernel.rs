//! Finding a kernel to boot: a Debian kernel of a given series, the host's own, or a file.
//!
//! A Debian kernel package holds the kernel image (`/boot/vmlinuz-*`), its build configuration
//! (`/boot/config-*`) and hundreds of megabytes of modules. The VM loads no modules: everything
//! iolab needs must be built into the kernel, which [`check_config`] verifies against the
//! configuration. So only the image and the configuration are kept, in
//! `target/vm/kernels/<package>/`, and a second run downloads nothing.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use super::debian::{self, Archive, Series};
use crate::{cmd, say};

/// What the user asked for with `--kernel`.
#[derive(Clone, Debug)]
pub enum Choice {
    /// A Debian series of [`debian::SERIES`], such as "5.10" or "6.1".
    Series(Series),
    /// The running kernel's image from /boot.
    Host,
    /// A kernel image file, taken as it is.
    File(PathBuf),
}

impl Choice {
    /// `host`, a series ("6.1": two numbers and a dot) or else a file. A series Debian's archive
    /// does not carry is refused with the ones it does (clap makes that exit status 2).
    pub fn parse(text: &str) -> Result<Choice, String> {
        let is_series = text.split('.').count() == 2
            && text.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
        Ok(match text {
            "host" => Choice::Host,
            _ if is_series => Choice::Series(debian::series(text).ok_or_else(|| {
                format!(
                    "no kernel {text} to fetch: Debian's archive has the series {}; or give `host` or a kernel \
                     image file",
                    debian::series_names()
                )
            })?),
            _ => Choice::File(PathBuf::from(text)),
        })
    }

    /// How the summary names it.
    pub fn label(&self) -> String {
        match self {
            Choice::Series(series) => series.series.to_owned(),
            Choice::Host => "host".to_owned(),
            Choice::File(path) => path.display().to_string(),
        }
    }
}

/// A kernel image ready to boot.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub vmlinuz: PathBuf,
    /// Where it came from: the Debian package or the file.
    pub source: String,
}

/// A kernel, or the reason there is none to boot here (only for the host's kernel, which is
/// shown as skipped in the summary rather than failing the run).
pub enum Found {
    Kernel(Kernel),
    Unavailable(String),
}

/// Options iolab needs built in (`=y`), and why.
const NEEDED: &[(&str, &str)] = &[
    ("CONFIG_BPF_SYSCALL", "the bpf() syscall"),
    ("CONFIG_BPF_EVENTS", "BPF programs on tracepoints"),
    ("CONFIG_FTRACE_SYSCALLS", "the syscalls:sys_enter_*/sys_exit_* tracepoints"),
    ("CONFIG_DEBUG_INFO_BTF", "the kernel's type information"),
    ("CONFIG_IO_URING", "the io_uring model"),
    ("CONFIG_EPOLL", "the epoll models"),
    ("CONFIG_INET", "TCP over loopback"),
    ("CONFIG_DEVTMPFS", "/dev in the VM"),
    ("CONFIG_BLK_DEV_INITRD", "booting from the initramfs"),
    ("CONFIG_RD_GZIP", "the gzip-compressed initramfs"),
    ("CONFIG_SERIAL_8250_CONSOLE", "the console on ttyS0"),
];

/// Every option of [`NEEDED`] that `config` (a kernel .config) does not build in, with why.
pub fn check_config(config: &str) -> Vec<String> {
    NEEDED
        .iter()
        .filter_map(|(option, why)| {
            let value =
                config.lines().find_map(|line| line.strip_prefix(option).and_then(|rest| rest.strip_prefix('=')));
            match value {
                Some("y") => None,
                Some("m") => Some(format!("{option} ({why}) is a module, and the VM loads none")),
                _ => Some(format!("{option} ({why}) is not set")),
            }
        })
        .collect()
}

/// Checks the configuration at `path`, if there is one.
fn check_config_file(path: &Path) -> Result<()> {
    let Ok(config) = fs::read_to_string(path) else {
        say!("kernel: no readable {}, so its options are not checked", path.display());
        return Ok(());
    };
    let missing = check_config(&config);
    if !missing.is_empty() {
        bail!("{} lacks what iolab needs: {}", path.display(), missing.join("; "));
    }
    Ok(())
}

/// `archive` opens the archive of a Debian release (only called for a series).
pub fn find(choice: &Choice, cache: &Path, archive: &dyn Fn(&'static str) -> Result<Archive>) -> Result<Found> {
    match choice {
        Choice::Series(series) => debian(series, cache, &archive(series.release)?).map(Found::Kernel),
        Choice::Host => host(),
        Choice::File(path) => {
            if !path.is_file() {
                bail!("{} is not a kernel image file", path.display());
            }
            if let Some(config) = config_beside(path) {
                check_config_file(&config)?;
            }
            Ok(Found::Kernel(Kernel { vmlinuz: path.clone(), source: path.display().to_string() }))
        }
    }
}

/// `/boot/config-X` for `/boot/vmlinuz-X`, as distributions lay them out.
fn config_beside(vmlinuz: &Path) -> Option<PathBuf> {
    let name = vmlinuz.file_name()?.to_str()?;
    let release = name.strip_prefix("vmlinuz-")?;
    Some(vmlinuz.with_file_name(format!("config-{release}")))
}

/// The running kernel's image, where distributions keep it.
fn host() -> Result<Found> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").context("cannot read /proc/sys/kernel/osrelease")?;
    let release = release.trim();
    let candidates =
        [PathBuf::from(format!("/boot/vmlinuz-{release}")), PathBuf::from(format!("/lib/modules/{release}/vmlinuz"))];
    let Some(vmlinuz) = candidates.iter().find(|path| path.exists()) else {
        return Ok(Found::Unavailable(format!(
            "no image of the running kernel {release} (looked for {})",
            candidates.map(|path| path.display().to_string()).join(", ")
        )));
    };
    if fs::File::open(vmlinuz).is_err() {
        return Ok(Found::Unavailable(format!(
            "{} is not readable: run as root, or `sudo chmod a+r {0}`",
            vmlinuz.display()
        )));
    }
    if let Some(config) = config_beside(vmlinuz) {
        check_config_file(&config)?;
    }
    Ok(Found::Kernel(Kernel { vmlinuz: vmlinuz.clone(), source: format!("this machine's {release}") }))
}

/// The newest Debian kernel of `series`, downloaded and unpacked once into `cache`.
fn debian(series: &Series, cache: &Path, archive: &Archive) -> Result<Kernel> {
    let package = archive.kernel_package(series)?;
    let kept = cache.join(&package);
    let vmlinuz = kept.join("vmlinuz");
    if !vmlinuz.exists() {
        unpack(archive, &package, cache, &kept)?;
    }
    say!("kernel {}: {package} ({})", series.series, vmlinuz.display());
    check_config_file(&kept.join("config"))?;
    Ok(Kernel { vmlinuz, source: package })
}

/// Downloads `package`, unpacks it in a scratch folder, and moves the image and the
/// configuration to `kept`. The scratch folder goes, with the package and its modules.
fn unpack(archive: &Archive, package: &str, cache: &Path, kept: &Path) -> Result<()> {
    let scratch = cache.join(format!("{package}.partial"));
    if scratch.exists() {
        fs::remove_dir_all(&scratch).with_context(|| format!("cannot remove {}", scratch.display()))?;
    }
    fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let deb = archive.download(package, &scratch)?;
    let tree = scratch.join("tree");
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
    let boot = tree.join("boot");
    let file_in_boot = |prefix: &str| -> Result<PathBuf> {
        let entries = fs::read_dir(&boot).with_context(|| format!("{package} has no /boot"))?;
        for entry in entries {
            let path = entry?.path();
            if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(prefix)) {
                return Ok(path);
            }
        }
        bail!("{package} has no /boot/{prefix}*")
    };
    let (image, config) = (file_in_boot("vmlinuz-")?, file_in_boot("config-")?);
    fs::create_dir_all(kept).with_context(|| format!("cannot create {}", kept.display()))?;
    fs::rename(config, kept.join("config"))?;
    // The image last: its presence is what tells a later run that the folder is complete.
    fs::rename(image, kept.join("vmlinuz"))?;
    fs::remove_dir_all(&scratch).with_context(|| format!("cannot remove {}", scratch.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        assert!(matches!(Choice::parse("5.10"), Ok(Choice::Series(s)) if s.release == "bullseye"));
        assert!(matches!(Choice::parse("6.1"), Ok(Choice::Series(s)) if s.series == "6.1"));
        assert!(matches!(Choice::parse("6.12"), Ok(Choice::Series(s)) if s.series == "6.12"));
        assert!(matches!(Choice::parse("host"), Ok(Choice::Host)));
        assert!(matches!(Choice::parse("6.1.2"), Ok(Choice::File(_))));
        assert!(matches!(Choice::parse("/boot/vmlinuz"), Ok(Choice::File(_))));
        let err = Choice::parse("4.19").unwrap_err();
        assert!(err.contains("no kernel 4.19") && err.contains("5.10, 6.1, 6.12"), "{err}");
    }

    #[test]
    fn config_must_build_in_what_iolab_needs() {
        let good: String = NEEDED.iter().map(|(option, _)| format!("{option}=y\n")).collect();
        assert_eq!(check_config(&good), Vec::<String>::new());
        let bad = good
            .replace("CONFIG_IO_URING=y", "# CONFIG_IO_URING is not set")
            .replace("CONFIG_SERIAL_8250_CONSOLE=y", "CONFIG_SERIAL_8250_CONSOLE=m");
        assert_eq!(
            check_config(&bad),
            [
                "CONFIG_IO_URING (the io_uring model) is not set",
                "CONFIG_SERIAL_8250_CONSOLE (the console on ttyS0) is a module, and the VM loads none",
            ]
        );
    }

    #[test]
    fn config_file_beside_the_image() {
        assert_eq!(
            config_beside(Path::new("/boot/vmlinuz-6.1.0-56-amd64")),
            Some(PathBuf::from("/boot/config-6.1.0-56-amd64"))
        );
        assert_eq!(config_beside(Path::new("/tmp/bzImage")), None);
    }
}
