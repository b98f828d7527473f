//! `--profile` and what it writes: the flags of every command that measures a server (`run`,
//! `compare`, `prove`, `sweep`, `scan`, `trace`).
//!
//! Without `--profile` nothing of the profiler is loaded. The folders are created before the
//! probe loads, so one that cannot be written is bad input before anything runs.

use std::path::PathBuf;

use clap::Args;

use lab_measure::profile::{Profile, ProfileOptions};
use lab_report::present::profile::flame;

/// The highest `--profile-hz`: above it the sampling itself, not the server, is what is measured.
pub const MAX_PROFILE_HZ: u32 = 10_000;

#[derive(Args, Clone, Debug)]
pub struct ProfileArgs {
    /// Also sample the server tree's stacks (kernel and user) on the CPU, its off-CPU time by
    /// where it blocked, and the scheduler's delay; prints where its CPU went by mechanism (the
    /// per-fd walk, epoll's ready list, the scheduler, TCP, network softirqs, user code).
    #[arg(long)]
    pub profile: bool,
    /// Samples per second on each CPU, 1–10000 (the software cpu-clock: no hardware PMU needed).
    #[arg(long, value_name = "HZ", default_value_t = 999, requires = "profile",
          value_parser = clap::value_parser!(u32).range(1..=MAX_PROFILE_HZ as i64))]
    pub profile_hz: u32,
    /// Write a flame graph (interactive SVG) per model into DIR, on-CPU and off-CPU.
    #[arg(long, value_name = "DIR", requires = "profile")]
    pub flamegraph: Option<PathBuf>,
    /// Write the folded stacks per model into DIR (`{model}.folded`, `{model}-offcpu.folded`),
    /// the input of flamegraph.pl, inferno and speedscope.
    #[arg(long, value_name = "DIR", requires = "profile")]
    pub export_folded: Option<PathBuf>,
}

impl ProfileArgs {
    /// What the probe is asked to profile: nothing without `--profile`.
    pub fn options(&self) -> Option<ProfileOptions> {
        self.profile.then_some(ProfileOptions { hz: self.profile_hz })
    }

    /// Creates the folders now, so one that cannot be written fails before anything runs.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(dir) = &self.flamegraph {
            flame::check_writable_dir("--flamegraph", dir)?;
        }
        if let Some(dir) = &self.export_folded {
            flame::check_writable_dir("--export-folded", dir)?;
        }
        Ok(())
    }

    /// Writes `name`'s folded stacks and flame graphs where they were asked for, and says
    /// where on stderr. A file that cannot be written is said and skipped: it must not cost the
    /// results that were measured.
    pub fn write(&self, name: &str, profile: &Profile, title: &str) {
        if let Some(dir) = &self.export_folded {
            said(flame::write_folded(dir, name, profile), "folded stacks");
        }
        if let Some(dir) = &self.flamegraph {
            said(flame::write_flamegraphs(dir, name, profile, title), "flame graphs");
        }
    }

    /// Writes `{name}-diff.svg` into the --flamegraph folder: `after` against `before`.
    pub fn write_differential(&self, name: &str, before: &Profile, after: &Profile, title: &str) {
        if let Some(dir) = &self.flamegraph {
            let written = flame::write_differential(dir, name, &before.on_cpu, &after.on_cpu, title);
            said(written.map(|path| path.into_iter().collect()), "differential flame graph");
        }
    }
}

fn said(written: anyhow::Result<Vec<PathBuf>>, what: &str) {
    match written {
        Ok(paths) => {
            for path in paths {
                eprintln!("iolab: wrote {}", path.display());
            }
        }
        Err(err) => eprintln!("iolab: could not write the {what}: {err:#}"),
    }
}
