//! Measurement: the probes, the processes they watch, and one measured run.
//!
//! Everything here produces numbers; nothing here formats them. The lowest layer of the lab:
//! it knows nothing of commands, tables or documents.
//!
//! - [`probe`] loads the eBPF programs (lab-ebpf), marks the tasks to trace and reads the
//!   counters; [`preflight`] checks privileges and tracefs first.
//! - [`process`] starts, signals and reaps every process iolab starts (traced through the gate
//!   of [`launch`], or plain), and makes sure none outlives iolab; [`privileges`] keeps root for
//!   the probe only.
//! - [`attach`] puts the probe on a running server's tree.
//! - [`tree`] reads a process tree from /proc (tasks, listening sockets, CPU time).
//! - [`run`] is one measured run: snapshots around the load generator's work, each taken when
//!   the server is idle ([`settle`]), with the tree's size, memory and epoll lists sampled
//!   beside them ([`samples`]); for a [`burst`], [`freeze`] holds the server's tree still while
//!   a round of messages is queued.
//! - [`machine`] reads the limits on processes, threads and fds, and times one syscall.
//! - [`selftest`] proves the probe exact against [`exercise`]'s workloads of known counts;
//!   [`validate`] checks a run's counts against strace and perf.
pub mod attach;
pub mod burst;
pub mod exercise;
pub mod freeze;
pub mod launch;
pub mod machine;
pub mod preflight;
pub mod privileges;
pub mod probe;
pub mod process;
pub mod run;
pub mod samples;
pub mod selftest;
pub mod settle;
pub mod tree;
pub mod validate;
