//! The host programs the VM needs, installed with apt-get when missing (as root), or named in
//! one error line with the command that installs them.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, bail};

use super::debian::KEYRING;
use crate::{cmd, say};

pub struct Tools {
    pub qemu: PathBuf,
    /// Any busybox works: a dynamically linked one goes into the VM with its libraries.
    pub busybox: PathBuf,
}

/// What is needed, where it is looked for, and the Debian/Ubuntu package that provides it.
struct Need {
    /// A program on PATH, or an absolute path to a file.
    what: &'static str,
    package: &'static str,
}

const NEEDS: &[Need] = &[
    Need { what: "qemu-system-x86_64", package: "qemu-system-x86" },
    Need { what: "busybox", package: "busybox-static" },
    Need { what: "dpkg-deb", package: "dpkg" },
    Need { what: KEYRING, package: "debian-archive-keyring" },
];

fn locate(what: &str) -> Option<PathBuf> {
    if what.starts_with('/') {
        return Path::new(what).exists().then(|| PathBuf::from(what));
    }
    // Debian's busybox-static installs /bin/busybox, which is not on every PATH.
    which::which(what).ok().or_else(|| {
        ["/bin", "/usr/bin", "/sbin", "/usr/sbin"]
            .iter()
            .map(|dir| Path::new(dir).join(what))
            .find(|path| path.exists())
    })
}

pub fn ensure() -> Result<Tools> {
    let missing: Vec<&str> = NEEDS.iter().filter(|need| locate(need.what).is_none()).map(|need| need.package).collect();
    if !missing.is_empty() {
        install(&missing)?;
    }
    let found = |what: &str| match locate(what) {
        Some(path) => Ok(path),
        None => bail!("{what} is still missing after installing its package"),
    };
    Ok(Tools { qemu: found("qemu-system-x86_64")?, busybox: found("busybox")? })
}

/// `apt-get install` as root; the package lists are fetched first if the install fails.
fn install(packages: &[&str]) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "the VM needs packages that are not installed; install them with \
             `sudo apt-get install -y {}`",
            packages.join(" ")
        );
    }
    say!("vm: installing {} (needed to build and boot the VM)", packages.join(", "));
    let install = || {
        let mut apt = Command::new("apt-get");
        apt.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages);
        apt
    };
    if cmd::run(&mut install()).is_err() {
        cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
        cmd::run(&mut install())?;
    }
    Ok(())
}
