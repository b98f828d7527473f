//! iolab: measure, with eBPF, what each way of writing a concurrent TCP server costs the kernel.
//!
//! - [`probe`] loads the probes (lab-ebpf) and reads their counters; [`preflight`] checks the
//!   machine first.
//! - [`launch`] starts a server traced from its first instruction and stops its whole tree.
//! - [`load`] is the load generator; it always runs in a process of its own.
//! - [`run`] is one measured run; [`result`] its figures; [`report`] shows them.
//! - [`selftest`] proves the probe exact with [`exercise`]'s known workloads.
//! - [`trace`] puts any server under the probe (started, or running: `--pid`), [`tree`] reads its
//!   process tree from /proc, [`validate`] checks the counts against strace and perf, and
//!   [`top`] shows a running server's live rates.
pub mod args;
pub mod bench;
pub mod compare;
pub mod document;
pub mod exercise;
pub mod export;
pub mod figures;
pub mod interrupt;
pub mod launch;
pub mod load;
pub mod plot;
pub mod preflight;
pub mod privileges;
pub mod probe;
pub mod progress;
pub mod report;
pub mod result;
pub mod run;
pub mod save;
pub mod selftest;
pub mod soak;
pub mod stats;
pub mod top;
pub mod trace;
pub mod tree;
pub mod validate;
pub mod verdict;
