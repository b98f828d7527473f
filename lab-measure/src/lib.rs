//! Measurement: the probes, the processes they watch, one measured run and the experiments made
//! of runs.
//!
//! Everything here produces numbers; nothing here formats them. It knows nothing of commands,
//! tables or documents: `lab-report` turns what it measured into those, and the `iolab` binary
//! calls both. Below it are only `lab-load` (the load generator), `lab-server` (the models) and
//! `lab-common` (the counters it shares with the probes).
//!
//! - [`probe`] loads the eBPF programs (lab-ebpf), marks the tasks to trace and reads the
//!   counters; [`preflight`] checks privileges and tracefs first; [`features`] says which kernel
//!   feature each program, figure and model needs, and what the probe does without it.
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
//! - [`profile`] (`--profile`) is where the tree's time went, as stacks: sampled on the CPU,
//!   off it by where each thread blocked, and the scheduler's delay.
//! - [`result`] is what one run found, as data ([`result::RunResult`]); [`experiment`] makes
//!   results: one run of a model ([`experiment::run_model`]), and the loops of `compare` and
//!   `scan` over models and workloads.
//!
//! Beside them, two small modules every layer above may use: [`error`] (bad input: one line, exit
//! status 2) and [`interrupt`] (Ctrl-C and SIGTERM: stop cleanly, keep what was measured).
pub mod attach;
pub mod btf;
pub mod burst;
pub mod error;
pub mod exercise;
pub mod experiment;
pub mod features;
pub mod freeze;
pub mod interrupt;
pub mod launch;
pub mod machine;
pub mod preflight;
pub mod privileges;
pub mod probe;
pub mod process;
pub mod profile;
pub mod result;
pub mod run;
pub mod samples;
pub mod selftest;
pub mod settle;
pub mod tree;
pub mod validate;
