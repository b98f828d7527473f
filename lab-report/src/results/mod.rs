//! Results: what a measurement found, as data. No text, no terminal.
//!
//! One run's counts are `lab_measure::result::RunResult`, built where they are measured.
//!
//! - [`figures`]: the derived figures (per message, per wait call), each computed in one place.
//! - [`stats`]: median and range over repeated runs.
//! - [`document`]: the one versioned document every command writes; [`save`] writes and reads it.
//! - [`mechanism`]: `--profile`'s samples by the kernel mechanism they paid for.
//! - [`profile`]: `--profile`'s run-queue delay, and what a context switch costs.
//! - [`scan`]: `iolab scan`'s rows: the cost of one wait call against the fds it watches.
pub mod document;
pub mod figures;
pub mod mechanism;
pub mod profile;
pub mod save;
pub mod scan;
pub mod stats;
