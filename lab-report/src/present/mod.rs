//! Presentation: turning results into text and pictures. Nothing here measures.
//!
//! - [`export`]: the [`document`](crate::results::document) as a table, JSON, CSV or Markdown.
//! - [`html`]: the results as one self-contained HTML page (charts, sortable tables, the data).
//! - [`run_table`]: one run in detail (syscalls by name, wait calls, switches).
//! - [`timing_table`]: `--timing`'s per-syscall on-CPU time, errors and histograms.
//! - [`validation`]: strace's and perf's counts beside the probe's (`trace --validate`).
//! - [`profile`]: `--profile`'s run-queue delay and switch cost in detail, its verdict
//!   sentences, and its flame graphs and folded files.
//! - [`plot`]: the SVGs of sweep and scan.
//! - [`scan`]: `iolab scan` in every format.
//! - [`verdict`]: sentences computed from the numbers.
//! - [`claims`]: the walkthrough's claims, each with the verdict its figures give.
//! - [`progress`]: the progress line on stderr.
//! - [`numbers`]: how every number is written.
pub mod claims;
pub mod export;
pub mod html;
pub mod numbers;
pub mod plot;
pub mod profile;
pub mod progress;
pub mod run_table;
pub mod scan;
pub mod timing_table;
pub mod validation;
pub mod verdict;
