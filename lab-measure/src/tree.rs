//! A server's process tree as /proc shows it: its processes and threads, the TCP addresses it
//! listens on, its CPU time, and the syscall each of its threads is in.
//!
//! The probe counts the tree from inside the kernel; these are the facts the lab needs from
//! outside it, for servers it did not start the usual way (`iolab trace`):
//! - which tasks to mark when attaching to a running server;
//! - when a server is ready ([`wait_listening`]): a LISTEN socket whose inode is one of the
//!   tree's fds. This needs no test connection, which the probe would count as part of the
//!   server's work;
//! - CPU time when the server is not our child, so wait4 cannot tell;
//! - what each thread is blocked in, which `validate` needs to line strace's window up with the
//!   probe's.
//!
//! Everything here is a snapshot: the tree can change while it is read. Callers that need a
//! stable answer read again (see `attach`).

use std::{
    collections::{HashMap, HashSet},
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use procfs::{
    net::TcpState,
    process::{FDTarget, Process},
};

/// `root` and every process descended from it, root first.
pub fn processes(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(all) = procfs::process::all_processes() {
        for stat in all.filter_map(|p| p.ok()?.stat().ok()) {
            children.entry(stat.ppid as u32).or_default().push(stat.pid as u32);
        }
    }
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        tree.extend(children.get(&tree[next]).into_iter().flatten());
        next += 1;
    }
    tree.retain(|&pid| is_alive(pid));
    tree
}

/// How many fds each epoll instance of the tree watches (its interest list, from the `tfd:`
/// lines of its fdinfo), largest first: how a server with an epoll loop per thread had its
/// connections spread. An instance open under several fds (mio's dup) is counted once: `kcmp`
/// says whether two fds are the same open file.
pub fn epoll_interest_lists(root: u32) -> Vec<u64> {
    let mut sizes = Vec::new();
    for pid in processes(root) {
        let Ok(fds) = Process::new(pid as i32).and_then(|p| p.fd()) else { continue };
        let mut instances: Vec<i32> = Vec::new();
        for fd in fds.flatten() {
            let is_epoll = matches!(&fd.target, FDTarget::AnonInode(name) if name == "[eventpoll]");
            if !is_epoll || instances.iter().any(|&seen| same_file(pid, seen, fd.fd)) {
                continue;
            }
            instances.push(fd.fd);
            if let Ok(info) = fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.fd)) {
                sizes.push(info.lines().filter(|l| l.starts_with("tfd:")).count() as u64);
            }
        }
    }
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

/// Whether fds `a` and `b` of process `pid` are the same open file (kcmp(2), KCMP_FILE).
fn same_file(pid: u32, a: i32, b: i32) -> bool {
    const KCMP_FILE: libc::c_long = 0;
    let pid = pid as libc::c_long;
    // SAFETY: kcmp only compares kernel objects; it reads and writes no memory of ours.
    unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a as libc::c_long, b as libc::c_long) == 0 }
}

/// How many processes and threads the tree has.
pub fn size(root: u32) -> (u64, u64) {
    let processes = self::processes(root);
    let threads = processes.iter().map(|&pid| threads(pid).len() as u64).sum();
    (processes.len() as u64, threads)
}

/// The parent of a process, if it exists.
pub fn parent_of(pid: i32) -> Option<i32> {
    Process::new(pid).and_then(|p| p.stat()).ok().map(|s| s.ppid)
}

/// Every thread (task id) of every process in the tree.
pub fn tasks(root: u32) -> Vec<u32> {
    processes(root).into_iter().flat_map(threads).collect()
}

/// The threads of one process.
pub fn threads(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Whether `pid` exists and has not exited (a zombie has).
pub fn is_alive(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// The state letter of a process or thread (R running or runnable, S sleeping, T stopped, Z…).
pub fn state(tid: u32) -> Option<char> {
    Process::new(tid as i32).and_then(|p| p.stat()).ok().map(|s| s.state)
}

/// The program name of a process (`/proc/PID/comm`).
pub fn name(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).map_or_else(|_| pid.to_string(), |s| s.trim().to_owned())
}

/// The TCP addresses the tree listens on (IPv4 and IPv6), sorted.
pub fn listening(root: u32) -> Vec<SocketAddr> {
    let inodes: HashSet<u64> = processes(root).into_iter().flat_map(socket_inodes).collect();
    let tables = [procfs::net::tcp(), procfs::net::tcp6()];
    let mut addrs: Vec<SocketAddr> = tables
        .into_iter()
        .flat_map(|table| table.unwrap_or_default())
        .filter(|entry| entry.state == TcpState::Listen && inodes.contains(&entry.inode))
        .map(|entry| entry.local_address)
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = Process::new(pid as i32).and_then(|p| p.fd()) else { return vec![] };
    fds.filter_map(|fd| match fd.ok()?.target {
        FDTarget::Socket(inode) => Some(inode),
        _ => None,
    })
    .collect()
}

/// Whether a socket listening on `listener` accepts connections made to `addr`: same port, and
/// the same IP or a wildcard one (`0.0.0.0`; `::` also takes IPv4 unless the socket is v6-only,
/// which /proc does not show).
pub fn accepts(listener: SocketAddr, addr: SocketAddr) -> bool {
    let ip_ok = match (listener.ip(), addr.ip()) {
        (l, a) if l == a => true,
        (IpAddr::V4(l), IpAddr::V4(_)) => l.is_unspecified(),
        (IpAddr::V6(l), _) => l.is_unspecified(),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    };
    listener.port() == addr.port() && ip_ok
}

/// CPU time the tree has used so far, in ms: its processes' own time plus that of the children
/// they have reaped (a process that exits and is reaped inside the tree moves from the first to
/// the second, so differences between two readings stay right).
pub fn cpu_ms(root: u32) -> (f64, f64) {
    let tick_ms = 1000.0 / procfs::ticks_per_second() as f64;
    let (mut user, mut sys) = (0.0, 0.0);
    for pid in processes(root) {
        if let Ok(s) = Process::new(pid as i32).and_then(|p| p.stat()) {
            user += (s.utime as i64 + s.cutime) as f64 * tick_ms;
            sys += (s.stime as i64 + s.cstime) as f64 * tick_ms;
        }
    }
    (user, sys)
}

/// The largest peak resident set (VmHWM) of any process in the tree, in KiB.
pub fn peak_rss_kib(root: u32) -> u64 {
    processes(root)
        .into_iter()
        .filter_map(|pid| Process::new(pid as i32).and_then(|p| p.status()).ok()?.vmhwm)
        .max()
        .unwrap_or(0)
}

/// The proportional set size of the tree, in KiB: the `Pss` line of each process's
/// /proc/PID/smaps_rollup, summed. A page that N processes share counts 1/N in each, so the sum
/// is what the tree holds, shared pages once. The kernel walks every mapping to answer: about as
/// slow as the tree is big (see `run::Pss`).
pub fn pss_kib(root: u32) -> u64 {
    let pss_bytes = |pid: u32| {
        let rollup = Process::new(pid as i32).and_then(|p| p.smaps_rollup()).ok()?;
        rollup.memory_map_rollup.iter().next()?.extension.map.get("Pss").copied()
    };
    processes(root).into_iter().filter_map(pss_bytes).sum::<u64>() / 1024
}

/// The tracer of a thread (`TracerPid` in /proc/TID/status), 0 if none.
pub fn tracer(tid: u32) -> Option<u32> {
    let status = Process::new(tid as i32).and_then(|p| p.status()).ok()?;
    Some(status.tracerpid as u32)
}

/// The syscall a thread is in right now, by number, from /proc/TID/syscall: `None` when it is
/// running in user space or not in a syscall ("running", or "-1 …"), or is gone.
pub fn in_syscall(tid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// How long a server must listen elsewhere (and not on `--addr`) before that is an error: it
/// may open another port first (an admin port, say) and the asked one a moment later.
const ELSEWHERE_GRACE: Duration = Duration::from_secs(1);
/// Without `--addr`: how long the set of listening addresses must stay the same before the
/// lab picks one.
const STABLE: Duration = Duration::from_millis(200);

/// Waits until the tree at `root` listens where the load can reach it; returns that address.
/// `want` is the address it must listen on, if one was given, and `given_by` how it was given
/// (`--addr`), for the error when it listens elsewhere. `exited` says how the server ended, if
/// it did.
pub fn wait_listening(
    root: u32,
    want: Option<SocketAddr>,
    given_by: &str,
    timeout: Duration,
    exited: &mut dyn FnMut() -> Result<Option<String>>,
) -> Result<SocketAddr> {
    let start = Instant::now();
    let (mut seen, mut seen_since) = (Vec::new(), Instant::now());
    loop {
        crate::interrupt::check()?;
        let where_ = want.map_or("any TCP port".to_owned(), |a| a.to_string());
        if let Some(status) = exited()? {
            bail!("it exited ({status}) before listening on {where_}");
        }
        let listening = listening(root);
        if listening != seen {
            (seen, seen_since) = (listening.clone(), Instant::now());
        }
        let stable_for = seen_since.elapsed();
        match want {
            Some(addr) if listening.iter().any(|&l| accepts(l, addr)) => return Ok(addr),
            Some(addr) if !listening.is_empty() && stable_for >= ELSEWHERE_GRACE => {
                bail!("it listens on {}, not on {addr} ({given_by})", list(&listening))
            }
            None if !listening.is_empty() && stable_for >= STABLE => return pick(&listening),
            _ => {}
        }
        if start.elapsed() >= timeout {
            let also =
                if listening.is_empty() { String::new() } else { format!(" (it listens on {})", list(&listening)) };
            bail!("it did not listen on {where_} within {:.1} s{also}", timeout.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Without `--addr`: the one port the server listens on, as a loopback address.
fn pick(listening: &[SocketAddr]) -> Result<SocketAddr> {
    let mut reachable: Vec<SocketAddr> = listening.iter().filter_map(|&l| loopback_for(l)).collect();
    reachable.sort_by_key(|a| (a.port(), a.is_ipv6()));
    reachable.dedup_by_key(|a| a.port());
    match reachable.as_slice() {
        [one] => Ok(*one),
        [] => bail!("it listens on {} only; the load generator drives loopback addresses only", list(listening)),
        _ => bail!("it listens on {}: choose one with --addr", list(listening)),
    }
}

/// The loopback address that reaches a listening socket, if one does.
fn loopback_for(listener: SocketAddr) -> Option<SocketAddr> {
    let ip: IpAddr = match listener.ip() {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        _ => return None,
    };
    Some(SocketAddr::new(ip, listener.port()))
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_wildcard_listener_is_reached_through_loopback() {
        assert_eq!(pick(&[addr("0.0.0.0:8080")]).unwrap(), addr("127.0.0.1:8080"));
        assert_eq!(pick(&[addr("[::]:8080")]).unwrap(), addr("[::1]:8080"));
        assert_eq!(pick(&[addr("0.0.0.0:80"), addr("[::]:80")]).unwrap(), addr("127.0.0.1:80"));
    }

    #[test]
    fn several_ports_or_a_remote_address_need_the_user() {
        let err = pick(&[addr("127.0.0.1:80"), addr("127.0.0.1:81")]).unwrap_err().to_string();
        assert_eq!(err, "it listens on 127.0.0.1:80, 127.0.0.1:81: choose one with --addr");
        let err = pick(&[addr("10.1.2.3:80")]).unwrap_err().to_string();
        assert_eq!(err, "it listens on 10.1.2.3:80 only; the load generator drives loopback addresses only");
    }
}
