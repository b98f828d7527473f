//! Results as data and their presentation: nothing here measures.
//!
//! - [`results`]: what the runs found, as data: the one versioned document every command writes,
//!   the figures derived from a run, the statistics over repeated runs, saving and reading.
//! - [`present`]: that data as text and pictures: tables, JSON/CSV/Markdown, plots, verdicts, the
//!   walkthrough's claims, the progress line.
//!
//! It reads `lab-measure`'s result types and never calls its experiments: the `iolab` binary runs
//! those and hands the results here.
pub mod present;
pub mod results;
