//! Holding a server's whole tree still, with the cgroup v2 freezer.
//!
//! `iolab prove` wants every connection's message in the server's sockets before the server may
//! look, so that one wait call can find them all ready. SIGSTOP would stop the tree process by
//! process (and tell a forking server's parent with SIGCHLD); the freezer stops every task of a
//! cgroup at once, quietly, and says when it is done (`frozen 1` in `cgroup.events`).
//!
//! A hold is not free: freezing interrupts the call each thread was blocked in, and on thaw the
//! kernel restarts it (or the call returns EINTR and the server calls again), one more syscall
//! entry per blocked thread. `measure::run` counts what a hold costs with an empty one and
//! subtracts it; see [`super::run`].

use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

/// How long the freezer may take to stop or release every task.
const LIMIT: Duration = Duration::from_secs(10);

/// A cgroup of its own for one server tree, removed when dropped (its tasks are moved back).
pub struct Freezer {
    dir: PathBuf,
    /// The cgroup the adopted processes came from, to move them back.
    home: PathBuf,
}

impl Freezer {
    /// A new cgroup `iolab-PID-N` at the root of the cgroup v2 hierarchy (mounted if need be).
    pub fn new() -> Result<Freezer> {
        let root = cgroup2_root()?;
        remove_stale(&root);
        let (mut n, pid) = (0, std::process::id());
        let dir = loop {
            let dir = root.join(format!("iolab-{pid}-{n}"));
            match fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e).with_context(|| format!("creating the cgroup {}", dir.display())),
            }
        };
        Ok(Freezer { dir, home: root })
    }

    /// Moves process `pid` (all its threads) into the cgroup; the tasks it creates are born there.
    pub fn adopt(&self, pid: u32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    /// Stops every task of the cgroup, and returns once the kernel says they all are.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        write(&self.dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        let started = Instant::now();
        loop {
            let events = fs::read_to_string(self.dir.join("cgroup.events")).context("reading cgroup.events")?;
            if events.lines().any(|line| line == want) {
                return Ok(());
            }
            if started.elapsed() > LIMIT {
                bail!("the server's tree did not {} within {LIMIT:?}", if frozen { "stop" } else { "resume" });
            }
            sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        let _ = self.thaw();
        if let Ok(procs) = fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = write(&self.home.join("cgroup.procs"), pid);
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

/// Where the cgroup v2 hierarchy is mounted; a machine with only cgroup v1 gets it mounted at
/// `/run/iolab/cgroup2` (any number of cgroup2 mounts show the same one hierarchy).
fn cgroup2_root() -> Result<PathBuf> {
    let mounts =
        procfs::process::Process::myself().and_then(|me| me.mountinfo()).context("reading /proc/self/mountinfo")?;
    if let Some(mount) = mounts.into_iter().find(|m| m.fs_type == "cgroup2") {
        return Ok(mount.mount_point);
    }
    let target = Path::new("/run/iolab/cgroup2");
    fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    let dst = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?;
    // SAFETY: plain mount(2) with valid C strings.
    let rc = unsafe { libc::mount(c"cgroup2".as_ptr(), dst.as_ptr(), c"cgroup2".as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "the burst needs the cgroup v2 freezer, and mounting cgroup2 at {} failed ({err}): mount it with \
             `mount -t cgroup2 none {}`",
            target.display(),
            target.display()
        );
    }
    eprintln!("iolab: mounted cgroup2 at {}", target.display());
    Ok(target.into())
}

/// Removes the empty cgroups of iolab runs that were killed before they could (a populated one
/// is refused by the kernel, and kept).
fn remove_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(|n| n.strip_prefix("iolab-")).and_then(|n| n.split('-').next()) else {
            continue;
        };
        if owner.parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir(entry.path());
        }
    }
}
