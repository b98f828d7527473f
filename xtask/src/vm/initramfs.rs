//! The VM's root file system: an initramfs, i.e. a gzip-compressed cpio archive ("newc" format)
//! that the kernel unpacks into memory and runs `/init` from.
//!
//! It holds only what the steps need: the init script, busybox (the shell and the few commands
//! the script uses), iolab, and the shared libraries iolab is linked against, at the same paths
//! as on the host, so the dynamic loader finds them as it does here. `ldd` lists them. The
//! archive is written directly (owner root, time 0), so building it needs no root and no
//! staging folder.

use std::{
    collections::BTreeSet,
    fs::{self, File},
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};
use cpio::newc::{Builder, ModeFileType, trailer};
use flate2::{Compression, write::GzEncoder};

/// The init script, built into xtask so the archive never picks up a stale copy.
const INIT: &str = include_str!("../../vm/init");

/// Writes the initramfs for `steps_script` (see `guest::steps_script`) to `out`.
pub fn build(out: &Path, iolab: &Path, busybox: &Path, steps_script: &str) -> Result<()> {
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut archive =
        Archive { out: GzEncoder::new(BufWriter::new(file), Compression::fast()), names: BTreeSet::new(), next_ino: 1 };
    // The kernel opens /dev/console for init before init can mount anything on /dev.
    archive.char_device("dev/console", 0o600, (5, 1))?;
    archive.file("init", INIT.as_bytes(), 0o755)?;
    archive.program(busybox, "bin/busybox")?;
    archive.symlink("bin/sh", "busybox")?;
    archive.program(iolab, "bin/iolab")?;
    archive.file("vm/steps", steps_script.as_bytes(), 0o644)?;
    let gzip = trailer(archive.out)?;
    gzip.finish()?.flush()?;
    Ok(())
}

struct Archive {
    out: GzEncoder<BufWriter<File>>,
    /// Entries already in the archive. Each goes in once, and folders before what they hold:
    /// the kernel creates no missing parent folders.
    names: BTreeSet<String>,
    next_ino: u32,
}

impl Archive {
    /// The header of the next entry, owned by root (uid and gid are 0 by default).
    fn entry(&mut self, name: &str, mode: u32, kind: ModeFileType) -> Result<Builder> {
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.next_ino += 1;
        Ok(Builder::new(name).ino(self.next_ino).mode(mode).set_mode_file_type(kind))
    }

    fn write(&mut self, name: &str, entry: Builder, data: &[u8]) -> Result<()> {
        self.names.insert(name.to_owned());
        let size = u32::try_from(data.len()).context("file over 4 GiB")?;
        let mut writer = entry.write(&mut self.out, size);
        writer.write_all(data)?;
        writer.finish()?;
        Ok(())
    }

    /// `path` and its parents, each once.
    fn dir(&mut self, path: &str) -> Result<()> {
        if self.names.contains(path) {
            return Ok(());
        }
        let entry = self.entry(path, 0o755, ModeFileType::Directory)?.nlink(2);
        self.write(path, entry, &[])
    }

    fn file(&mut self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        if self.names.contains(name) {
            return Ok(());
        }
        let entry = self.entry(name, mode, ModeFileType::Regular)?;
        self.write(name, entry, data)
    }

    fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        let entry = self.entry(name, 0o777, ModeFileType::Symlink)?;
        self.write(name, entry, target.as_bytes())
    }

    fn char_device(&mut self, name: &str, mode: u32, (major, minor): (u32, u32)) -> Result<()> {
        let entry = self.entry(name, mode, ModeFileType::Char)?.rdev_major(major).rdev_minor(minor);
        self.write(name, entry, &[])
    }

    /// The executable at `path` as `name`, and every shared library it loads at its own path.
    fn program(&mut self, path: &Path, name: &str) -> Result<()> {
        let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        self.file(name, &data, 0o755)?;
        for library in shared_libraries(path)? {
            let data = fs::read(&library).with_context(|| format!("cannot read {}", library.display()))?;
            let inside = library.to_string_lossy().trim_start_matches('/').to_owned();
            self.file(&inside, &data, 0o755)?;
        }
        Ok(())
    }
}

/// The shared libraries and the dynamic loader that `ldd` lists for `program`; none for a
/// static one (for which ldd says "not a dynamic executable" and fails).
fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(program).output().context("cannot run ldd")?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, or
/// `/lib64/ld-linux-x86-64.so.2 (0x…)` for the loader; `linux-vdso.so.1 (0x…)` is in the
/// kernel, not a file.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let target = line.split_once("=>").map_or(line, |(_, target)| target);
            let path = target.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_from_ldd() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f89)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f88)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f8a)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert_eq!(parse_ldd("\tnot a dynamic executable\n"), Vec::<PathBuf>::new());
    }
}
