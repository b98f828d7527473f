//! iolab: measure, with eBPF, what each way of writing a concurrent TCP server costs the kernel.
//!
//! - [`probe`] loads the probes (lab-ebpf) and reads their counters; [`preflight`] checks the
//!   machine first.
//! - [`launch`] starts a server traced from its first instruction and stops its whole tree.
//! - [`load`] is the load generator; it always runs in a process of its own.
//! - [`run`] is one measured run; [`result`] its figures; [`report`] shows them.
//! - [`selftest`] proves the probe exact with [`exercise`]'s known workloads.
pub mod exercise;
pub mod launch;
pub mod load;
pub mod preflight;
pub mod probe;
pub mod report;
pub mod result;
pub mod run;
pub mod selftest;
