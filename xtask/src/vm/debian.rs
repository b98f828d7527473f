//! Debian's package archive, read with apt's own tools but with a configuration of our own.
//!
//! The kernels the VM boots are Debian's (`linux-image-…-amd64`). Rather than relying on the
//! host's apt sources (an Ubuntu CI runner has none of Debian's kernels), apt-get and apt-cache
//! are pointed at a small folder per Debian release under `target/vm/apt/` that lists only that
//! release ([`SERIES`] says which release carries which kernel series: Debian 11 "bullseye" the
//! 5.10 series, Debian 12 "bookworm" the 6.1 and the 6.12). The package lists and caches live
//! there too, so nothing on the host changes and no root is needed. Only the archive's signing
//! key comes from the host (package `debian-archive-keyring`).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cmd, say};

/// The key Debian signs its archive with, installed by the `debian-archive-keyring` package.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A kernel series the VM can fetch: the Debian release that carries it, and the flavour taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Series {
    /// "5.10", "6.1", "6.12": what `--kernel` takes.
    pub series: &'static str,
    /// The Debian release (code name) whose archive has it.
    pub release: &'static str,
    /// The end of the package's name after the ABI: `amd64` (the standard kernel), or
    /// `cloud-amd64` for bullseye, whose cloud kernel builds in the virtio and serial drivers a
    /// VM needs and leaves out the rest, so it boots faster under emulation.
    pub flavour: &'static str,
}

/// Every series the VM can fetch, oldest first.
pub const SERIES: &[Series] = &[
    Series { series: "5.10", release: "bullseye", flavour: "cloud-amd64" },
    Series { series: "6.1", release: "bookworm", flavour: "amd64" },
    Series { series: "6.12", release: "bookworm", flavour: "amd64" },
];

/// The series of [`SERIES`] named `name`.
pub fn series(name: &str) -> Option<Series> {
    SERIES.iter().find(|series| series.series == name).copied()
}

/// The names of [`SERIES`], for messages: "5.10, 6.1, 6.12".
pub fn series_names() -> String {
    SERIES.iter().map(|series| series.series).collect::<Vec<_>>().join(", ")
}

/// The suites of a release: the release itself, its updates and its security updates (where
/// Debian's long-term support puts its newest kernels).
fn suites(release: &str) -> [(&'static str, String); 3] {
    [
        ("http://deb.debian.org/debian", release.to_owned()),
        ("http://deb.debian.org/debian", format!("{release}-updates")),
        ("http://deb.debian.org/debian-security", format!("{release}-security")),
    ]
}

/// One Debian release's archive, with its lists kept in a folder of its own.
pub struct Archive {
    dir: PathBuf,
    release: &'static str,
}

impl Archive {
    /// Sets up the configuration folder `dir` for `release` (cheap; fetches nothing).
    pub fn new(dir: &Path, release: &'static str) -> Result<Archive> {
        if !Path::new(KEYRING).exists() {
            bail!("{KEYRING} is missing: install the package debian-archive-keyring");
        }
        for sub in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        }
        let sources: String = suites(release)
            .iter()
            .map(|(url, suite)| format!("deb [signed-by={KEYRING}] {url} {suite} main\n"))
            .collect();
        let list = dir.join("sources.list");
        fs::write(&list, sources).with_context(|| format!("cannot write {}", list.display()))?;
        Ok(Archive { dir: dir.to_path_buf(), release })
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
        say!("Debian archive: fetching the package lists of {}", self.release);
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

    /// The newest kernel package of `series` in its flavour ("6.1" → `linux-image-6.1.0-56-amd64`,
    /// "6.12" → `linux-image-6.12.117+deb12-amd64`, "5.10" → `linux-image-5.10.0-39-cloud-amd64`).
    pub fn kernel_package(&self, series: &Series) -> Result<String> {
        if !self.has_lists() {
            self.update()?;
        }
        let pattern = format!("^linux-image-{}\\.[0-9]", series.series.replace('.', "\\."));
        let mut search = self.apt("apt-cache");
        search.args(["search", "--names-only", &pattern]);
        let found = cmd::output(&mut search)?;
        let mut names: Vec<&str> = found
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| is_flavour(name, series.flavour))
            .collect();
        names.sort_by_key(|name| natural_key(name));
        let newest = names.last().with_context(|| {
            format!(
                "Debian {} has no linux-image package of the {} series in the {} flavour",
                self.release, series.series, series.flavour
            )
        })?;
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

/// Whether `name` is a kernel image of `flavour` ("amd64" or "cloud-amd64"): for the standard
/// flavour not `-cloud-` or `-rt-`; never debug symbols or the unsigned twin.
fn is_flavour(name: &str, flavour: &str) -> bool {
    let Some(rest) = name.strip_suffix(flavour).and_then(|rest| rest.strip_suffix('-')) else { return false };
    !rest.ends_with("-cloud") && !rest.ends_with("-rt")
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
    fn picks_the_flavour_asked_for() {
        assert!(is_flavour("linux-image-6.1.0-56-amd64", "amd64"));
        assert!(is_flavour("linux-image-6.12.117+deb12-amd64", "amd64"));
        assert!(!is_flavour("linux-image-6.1.0-56-cloud-amd64", "amd64"));
        assert!(!is_flavour("linux-image-6.1.0-56-rt-amd64", "amd64"));
        assert!(!is_flavour("linux-image-6.1.0-56-amd64-unsigned", "amd64"));
        assert!(!is_flavour("linux-image-6.1.0-56-amd64-dbg", "amd64"));
        assert!(is_flavour("linux-image-5.10.0-39-cloud-amd64", "cloud-amd64"));
        assert!(!is_flavour("linux-image-5.10.0-39-amd64", "cloud-amd64"));
        assert!(!is_flavour("linux-image-5.10.0-39-cloud-amd64-dbg", "cloud-amd64"));
        assert!(!is_flavour("linux-image-5.10.0-39-cloud-amd64-unsigned", "cloud-amd64"));
    }

    #[test]
    fn each_series_once_oldest_first() {
        assert_eq!(series_names(), "5.10, 6.1, 6.12");
        assert_eq!(series("5.10").map(|s| s.release), Some("bullseye"));
        assert_eq!(series("4.19"), None);
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
