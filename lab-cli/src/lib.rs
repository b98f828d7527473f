//! iolab: measure, with eBPF, what each way of writing a concurrent TCP server costs the kernel.
//!
//! The crate is in four layers; each uses only the ones below it:
//!
//! | layer        | holds                                                              |
//! |--------------|--------------------------------------------------------------------|
//! | [`commands`] | one file per subcommand: parse the flags, measure, present          |
//! | [`present`]  | tables, JSON/CSV/Markdown, the plot, the verdict, the progress line |
//! | [`results`]  | one run's figures, the statistics over runs, the saved document     |
//! | [`measure`]  | the probes, starting and stopping servers, one measured run         |
//!
//! Beside them: [`load`], the load generator (its own process, `iolab load`), and two small
//! modules every layer may use: [`error`] (bad input: one line, exit status 2) and
//! [`interrupt`] (Ctrl-C and SIGTERM: stop cleanly, keep what was measured).
pub mod commands;
pub mod error;
pub mod interrupt;
pub mod load;
pub mod measure;
pub mod present;
pub mod results;
