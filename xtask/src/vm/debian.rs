//! Debian's package archive, read with apt's own tools but with a configuration of our own.
//!
//! The kernels the VM boots are Debian's (`linux-image-…-amd64`). Rather than relying on the
//! host's apt sources (an Ubuntu CI runner has none of Debian's kernels), apt-get and apt-cache
//! are pointed at a small folder under `target/vm/apt/` that lists Debian 12 "bookworm", which
//! carries both the 6.1 and the 6.12 series. The package lists and caches live there too, so
//! nothing on the host changes and no root is needed. Only the archive's signing key comes from
//! the host (package `debian-archive-keyring`).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cmd, say};

/// The key Debian signs its archive with, installed by the `debian-archive-keyring` package.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

const SUITES: &[(&str, &str)] = &[
    ("http://deb.debian.org/debian", "bookworm"),
    ("http://deb.debian.org/debian", "bookworm-updates"),
    ("http://deb.debian.org/debian-security", "bookworm-security"),
];

pub struct Archive {
    dir: PathBuf,
}

impl Archive {
    /// Sets up the configuration folder `dir` (cheap; fetches nothing).
    pub fn new(dir: &Path) -> Result<Archive> {
        if !Path::new(KEYRING).exists() {
            bail!("{KEYRING} is missing: install the package debian-archive-keyring");
        }
        for sub in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        }
        let sources: String =
            SUITES.iter().map(|(url, suite)| format!("deb [signed-by={KEYRING}] {url} {suite} main\n")).collect();
        let list = dir.join("sources.list");
        fs::write(&list, sources).with_context(|| format!("cannot write {}", list.display()))?;
        Ok(Archive { dir: dir.to_path_buf() })
    }

    /// `program` (apt-get or apt-cache) with our folder in place of the host's.
    fn apt(&self, program: &str) -> Command {
        let option = |name: &str, value: &Path| format!("{name}={}", value.display());
        let mut apt = Command::new(program);
        for setting in [
            option("Dir::Etc::SourceList", &self.dir.join("sources.list")),
            option("Dir::Etc::SourceParts", &self.dir.join("sources.list.d")),
            option("Dir::State::Lists", &self.dir.join("lists")),
            option("Dir::Cache", &self.dir.join("cache")),
            "APT::Architectures=amd64".to_owned(),
            // The folder is ours alone: no need for the system's lock.
            "Debug::NoLocking=1".to_owned(),
        ] {
            apt.args(["-o", &setting]);
        }
        // As root, apt downloads as the user `_apt`, who may not write into target/.
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            apt.args(["-o", "APT::Sandbox::User=root"]);
        }
        apt
    }

    /// Fetches the package lists (about 15 MB).
    pub fn update(&self) -> Result<()> {
        say!("Debian archive: fetching the package lists of bookworm");
        let mut update = self.apt("apt-get");
        update.args(["-q", "update"]);
        cmd::output(&mut update).map(drop)
    }

    /// True once the package lists have been fetched.
    fn has_lists(&self) -> bool {
        fs::read_dir(self.dir.join("lists")).is_ok_and(|entries| {
            entries
                .flatten()
                // `…_binary-amd64_Packages`, compressed (`.lz4`…) when apt is set to keep it so.
                .any(|entry| entry.file_name().to_string_lossy().contains("_Packages"))
        })
    }

    /// The newest package of Debian's standard amd64 kernel in `series` ("6.1" →
    /// `linux-image-6.1.0-56-amd64`, "6.12" → `linux-image-6.12.117+deb12-amd64`).
    pub fn kernel_package(&self, series: &str) -> Result<String> {
        if !self.has_lists() {
            self.update()?;
        }
        let pattern = format!("^linux-image-{}\\.[0-9]", series.replace('.', "\\."));
        let mut search = self.apt("apt-cache");
        search.args(["search", "--names-only", &pattern]);
        let found = cmd::output(&mut search)?;
        let mut names: Vec<&str> = found
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| is_standard_kernel(name))
            .collect();
        names.sort_by_key(|name| natural_key(name));
        let newest = names
            .last()
            .with_context(|| format!("Debian bookworm has no linux-image package of the {series} series"))?;
        Ok((*newest).to_owned())
    }

    /// Downloads `package` into `folder` and returns the .deb's path. When the lists are old
    /// and the archive has moved on, fetches fresh lists and tries once more.
    pub fn download(&self, package: &str, folder: &Path) -> Result<PathBuf> {
        let mut download = self.apt("apt-get");
        download.args(["-q", "download", package]).current_dir(folder);
        say!("Debian archive: downloading {package}");
        if let Err(err) = cmd::output(&mut download) {
            say!("Debian archive: {err:#}; fetching fresh package lists and trying again");
            self.update()?;
            cmd::output(&mut download)?;
        }
        let prefix = format!("{package}_");
        for entry in fs::read_dir(folder)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".deb") {
                return Ok(path);
            }
        }
        bail!("apt-get download left no {prefix}*.deb in {}", folder.display())
    }
}

/// The standard flavour: not `-cloud-`, `-rt-`, debug symbols or the unsigned twin.
fn is_standard_kernel(name: &str) -> bool {
    name.ends_with("-amd64") && !name.contains("-cloud-") && !name.contains("-rt-")
}

/// Sort key that compares runs of digits as numbers, so `6.1.0-56` comes after `6.1.0-9`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let text_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let (text, tail) = rest.split_at(text_len);
        let digits_len = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
        let (digits, tail) = tail.split_at(digits_len);
        key.push((text.to_owned(), digits.parse().unwrap_or(0)));
        rest = tail;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_standard_flavour() {
        assert!(is_standard_kernel("linux-image-6.1.0-56-amd64"));
        assert!(is_standard_kernel("linux-image-6.12.117+deb12-amd64"));
        assert!(!is_standard_kernel("linux-image-6.1.0-56-cloud-amd64"));
        assert!(!is_standard_kernel("linux-image-6.1.0-56-rt-amd64"));
        assert!(!is_standard_kernel("linux-image-6.1.0-56-amd64-unsigned"));
        assert!(!is_standard_kernel("linux-image-6.1.0-56-amd64-dbg"));
    }

    #[test]
    fn numbers_sort_as_numbers() {
        let mut names = vec![
            "linux-image-6.12.117+deb12-amd64",
            "linux-image-6.12.99+deb12-amd64",
            "linux-image-6.12.100+deb12-amd64",
        ];
        names.sort_by_key(|name| natural_key(name));
        assert_eq!(
            names,
            ["linux-image-6.12.99+deb12-amd64", "linux-image-6.12.100+deb12-amd64", "linux-image-6.12.117+deb12-amd64"]
        );
    }
}
