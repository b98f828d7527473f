//! `cargo xtask bench`: build iolab, then run `iolab bench ARGS…` as root.
//!
//! The benchmark itself lives in the `lab-bench` crate and runs as `iolab bench`, so that it
//! measures the very binary users run and needs nothing from this crate; xtask only does what every iolab command
//! needs first: set up the tools, build the release binary, and get root (see `cargo`).

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;

use crate::cargo;

/// Builds iolab and replaces this process with `iolab bench ARGS…` (as root).
pub fn bench(root: &Path, args: Vec<OsString>) -> Result<()> {
    let mut iolab_args: Vec<OsString> = vec!["bench".into()];
    iolab_args.extend(args);
    cargo::run_iolab(root, &iolab_args)
}
