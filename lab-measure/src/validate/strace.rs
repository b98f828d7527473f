//! `strace -f -c` attached to the tree for the second run: every syscall it saw returning.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};

use super::{Attached, NO_STRACE};
use crate::tree;

pub(super) struct Strace(Attached);

impl Strace {
    /// `strace -f -c -p PID…` on every process of the tree, ready once it traces every thread.
    pub(super) fn attach(root: u32) -> Result<Strace> {
        let mut args: Vec<String> = ["-f", "-c", "-q", "-o", "/dev/stdout"].map(String::from).to_vec();
        for pid in tree::processes(root) {
            args.extend(["-p".to_owned(), pid.to_string()]);
        }
        let Some(mut strace) = Attached::start("strace", &args)? else {
            bail!(NO_STRACE);
        };
        strace.wait_until(|tracer| tree::tasks(root).into_iter().all(|tid| tree::tracer(tid) == Some(tracer)))?;
        Ok(Strace(strace))
    }

    /// Stops strace and reads its summary.
    pub(super) fn finish(self) -> Result<BTreeMap<String, u64>> {
        let (summary, said) = self.0.finish()?;
        parse_strace_summary(&summary).with_context(|| format!("reading strace's summary ({})", said.trim()))
    }
}

/// `strace -c`'s table: `% time  seconds  usecs/call  calls  [errors]  syscall`, between dashed
/// lines, then a `total` row. The errors column is blank for calls that never failed.
pub fn parse_strace_summary(text: &str) -> Result<BTreeMap<String, u64>> {
    if !text.lines().any(|l| l.trim_start().starts_with("% time")) {
        bail!("no summary table in {:?}", text.lines().next().unwrap_or(""));
    }
    let mut calls = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('%') && !l.starts_with('-')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), true) = (fields.last(), fields.len() >= 5) else { continue };
        if *name != "total" {
            let count = fields[3].parse().with_context(|| format!("odd line {line:?}"))?;
            calls.insert(name.to_string(), count);
        }
    }
    Ok(calls)
}
