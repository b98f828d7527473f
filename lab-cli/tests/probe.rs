//! The probe is exact: known workloads, counted by the real eBPF programs on this kernel.
//! These need root (CI is root); they load the probes like `iolab` does.

use std::path::Path;

use iolab::{launch, probe::Probe, selftest};

fn probe() -> Probe {
    launch::set_iolab_exe(Path::new(env!("CARGO_BIN_EXE_iolab")));
    Probe::load().expect("loading the probes (the tests run as root, as CI does)")
}

#[test]
fn counts_every_read_and_write_of_process_child_and_thread_and_nothing_outside() {
    let mut probe = probe();
    let (n, k, j) = (5000, 1234, 777);
    let check = selftest::check_io(&mut probe, n, k, j).unwrap();
    assert_eq!(check.expected, 7011);
    assert_eq!(check.reads, 7011, "reads: process {n} + child {k} + thread {j}");
    assert_eq!(check.writes, 7011, "writes: process {n} + child {k} + thread {j}");
}

#[test]
fn tree_without_a_thread_or_child_counts_only_the_process() {
    let mut probe = probe();
    let check = selftest::check_io(&mut probe, 321, 0, 0).unwrap();
    assert_eq!((check.reads, check.writes), (321, 321));
}

#[test]
fn voluntary_switches_match_the_kernels_own_count() {
    let mut probe = probe();
    let blocks = 300;
    let check = selftest::check_switches(&mut probe, blocks).unwrap();
    assert!(check.probe_voluntary >= blocks, "{check:?}");
    // Same window, same task: only a switch racing a snapshot could differ.
    let diff = check.probe_voluntary.abs_diff(check.proc_voluntary);
    assert!(diff * 100 <= check.proc_voluntary * 2, "{check:?}");
    assert!(check.probe_involuntary.abs_diff(check.proc_involuntary) <= 2, "{check:?}");
}

#[test]
fn epoll_interest_list_follows_add_through_a_dup_del_close_and_failed_add() {
    let mut probe = probe();
    let check = selftest::check_epoll(&mut probe, 40).unwrap();
    assert_eq!(check.calls, 4);
    assert_eq!(check.fds_passed, 40 + 39 + 38 + 38);
    assert_eq!(check.ready, 4, "one pipe holds a byte: one ready fd per call");
}
