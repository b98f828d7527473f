//! Which kernel feature each part of the lab needs, the Linux release that brought it, and what
//! the lab does on a kernel without it: the one table the probe's loader consults ([`missing`])
//! and the README's kernel table shows (a test checks that the two agree).
//!
//! A feature the probe cannot do without (a helper every program calls, a hook every figure
//! rests on) makes the probe refuse to load, with the verifier's or the kernel's word. A feature
//! that feeds only some figures degrades by name: the probe loads without it, and those figures
//! are reported as not measured, with what they need ([`NotMeasured`]), never as 0. A feature a
//! server model needs makes that model unsupported (`lab_server::Model::needs` and its probe).

use std::path::Path;

use serde::Serialize;

/// What the lab does on a kernel without a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Without {
    /// The probe does not load: iolab stops with the kernel's reason.
    NoProbe,
    /// The probe loads without the programs that need it; the figures they feed are not measured.
    NotMeasured,
    /// The models that need it are reported unsupported (`iolab models`, `--models all`).
    Unsupported,
    /// The lab does the same another way (said here); nothing changes in what is measured.
    Emulated(&'static str),
}

/// One kernel feature the lab uses.
#[derive(Clone, Copy, Debug)]
pub struct Feature {
    /// What the kernel must have, as the README names it.
    pub name: &'static str,
    /// The first Linux release that has it.
    pub since: &'static str,
    /// What uses it: probe programs (lab-ebpf), models or the load generator.
    pub used_by: &'static str,
    /// The tracepoints that provide it, as the probe names them (`category/name`); any one of
    /// them will do. Empty for a feature that is not a tracepoint.
    pub tracepoints: &'static [&'static str],
    /// The figures it feeds, as fields of a run's JSON (`io_uring`, `wait.by_call.epoll_pwait2`).
    pub figures: &'static [&'static str],
    pub without: Without,
}

/// The lab's oldest tested kernel: Debian 11's 5.10. Every feature of [`FEATURES`] with
/// [`Without::NoProbe`] is at most this old.
pub const OLDEST_TESTED: &str = "5.10";

/// Every feature, oldest first.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "raw tracepoints `sys_enter`, `sys_exit`, `sched_switch`, `sched_process_exit`",
        since: "4.17",
        used_by: "`count_syscall`, `time_exit`, `count_switch`, `forget_task`",
        tracepoints: &[],
        figures: &[],
        without: Without::NoProbe,
    },
    Feature {
        name: "raw tracepoints `softirq_entry`, `softirq_exit`, `irq_handler_entry`, `irq_handler_exit`",
        since: "4.17",
        used_by: "`softirq_begins`, `softirq_ends`, `hardirq_begins`, `hardirq_ends`",
        tracepoints: &[],
        figures: &[],
        without: Without::NoProbe,
    },
    Feature {
        name: "a `perf_event` program on the software `cpu-clock`; `bpf_get_stackid` from it and from raw tracepoints; raw tracepoints `sched_wakeup`, `sched_wakeup_new`",
        since: "4.17",
        used_by: "`sample_stack`, `mark_runnable`, `count_switch` (`--profile` only)",
        tracepoints: &[],
        figures: &[],
        without: Without::NoProbe,
    },
    Feature {
        name: "read-only global data set by the loader (`.rodata`)",
        since: "5.2",
        used_by: "`follow_fork`, `count_syscall` (`--timing`)",
        tracepoints: &[],
        figures: &[],
        without: Without::NoProbe,
    },
    Feature {
        name: "bounded loops in the verifier",
        since: "5.3",
        used_by: "`count_syscall` (select's fd sets)",
        tracepoints: &[],
        figures: &[],
        without: Without::NoProbe,
    },
    Feature {
        name: "helpers `bpf_probe_read_kernel`, `bpf_probe_read_user`",
        since: "5.5",
        used_by: "`count_syscall` (wait calls' arguments)",
        tracepoints: &[],
        figures: &[],
        without: Without::NoProbe,
    },
    Feature {
        name: "tracepoints `io_uring:io_uring_submit_sqe` (`io_uring_submit_req` from 6.2), `io_uring:io_uring_complete`",
        since: "5.5",
        used_by: "`count_submission`, `count_completion`",
        tracepoints: &["io_uring/io_uring_submit_req", "io_uring/io_uring_submit_sqe", "io_uring/io_uring_complete"],
        figures: &["io_uring"],
        without: Without::NotMeasured,
    },
    Feature {
        name: "tracepoint `syscalls:sys_exit_epoll_pwait2`",
        since: "5.11",
        used_by: "`wait_exit`",
        tracepoints: &["syscalls/sys_exit_epoll_pwait2"],
        figures: &["wait.by_call.epoll_pwait2"],
        without: Without::NotMeasured,
    },
    Feature {
        name: "io_uring `io_uring_enter` with a timeout, `IORING_OP_SHUTDOWN`",
        since: "5.11",
        used_by: "the load generator",
        tracepoints: &[],
        figures: &[],
        without: Without::Emulated("a timeout operation on the ring; a `shutdown` syscall"),
    },
    Feature {
        name: "io_uring SQPOLL without privileges",
        since: "5.11",
        used_by: "`io-uring-sqpoll`",
        tracepoints: &[],
        figures: &[],
        without: Without::Unsupported,
    },
    Feature {
        name: "raw tracepoint `sched_switch`'s `prev_state` argument",
        since: "5.18",
        used_by: "`count_switch` (voluntary or involuntary)",
        tracepoints: &[],
        figures: &[],
        without: Without::Emulated("read from the leaving task, where the kernel's BTF says `task_struct` keeps it"),
    },
    Feature {
        name: "io_uring multishot accept, registered files as accept's target",
        since: "5.19",
        used_by: "`io-uring`, `io-uring-multishot`, `io-uring-sqpoll`",
        tracepoints: &[],
        figures: &[],
        without: Without::Unsupported,
    },
    Feature {
        name: "io_uring provided buffer rings",
        since: "5.19",
        used_by: "`io-uring-multishot`",
        tracepoints: &[],
        figures: &[],
        without: Without::Unsupported,
    },
    Feature {
        name: "io_uring multishot receive",
        since: "6.0",
        used_by: "`io-uring-multishot`",
        tracepoints: &[],
        figures: &[],
        without: Without::Unsupported,
    },
];

impl Feature {
    /// "needs tracepoint `syscalls:sys_exit_epoll_pwait2`, Linux 5.11+"
    pub fn needs(&self) -> String {
        format!("needs {}, Linux {}+", self.name, self.since)
    }

    /// What the README's table says the lab does without it.
    pub fn without_text(&self) -> &'static str {
        match self.without {
            Without::NoProbe => "the probe does not load (iolab says why)",
            Without::NotMeasured => "the probe loads without it, and names the figures it feeds as not measured",
            Without::Unsupported => "the models that need it are reported unsupported",
            Without::Emulated(instead) => instead,
        }
    }

    /// Whether the kernel whose tracefs is at `tracefs` has it (features that are not
    /// tracepoints are taken as present: the verifier or the models' probes judge those).
    pub fn present(&self, tracefs: &Path) -> bool {
        if self.tracepoints.is_empty() {
            return true;
        }
        // The io_uring pair: one submission tracepoint (either name) and the completion one.
        let has = |tracepoint: &str| tracefs.join("events").join(tracepoint).exists();
        let (submit, rest): (Vec<&str>, Vec<&str>) =
            self.tracepoints.iter().partition(|tracepoint| tracepoint.contains("io_uring_submit_"));
        (submit.is_empty() || submit.iter().any(|t| has(t))) && rest.iter().all(|t| has(t))
    }
}

/// A figure this kernel cannot give, and why: what the report shows in its place ("not measured
/// on this kernel (needs …)" in tables, `null` and the reason in JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotMeasured {
    /// The figure, as a field of a run's JSON (`io_uring`, `wait.by_call.epoll_pwait2`).
    pub figure: &'static str,
    /// "needs tracepoint `syscalls:sys_exit_epoll_pwait2`, Linux 5.11+"
    pub needs: String,
}

impl NotMeasured {
    /// "not measured on this kernel (needs …, Linux 5.11+)": a table's cell.
    pub fn cell(&self) -> String {
        format!("not measured on this kernel ({})", self.needs)
    }
}

/// The figures the kernel whose tracefs is at `tracefs` cannot give.
pub fn missing(tracefs: &Path) -> Vec<NotMeasured> {
    FEATURES
        .iter()
        .filter(|feature| feature.without == Without::NotMeasured && !feature.present(tracefs))
        .flat_map(|feature| feature.figures.iter().map(|figure| NotMeasured { figure, needs: feature.needs() }))
        .collect()
}

/// The README's kernel table, as it must read.
pub fn markdown_table() -> String {
    let mut table = String::from("| feature | Linux | used by | without it |\n|---|---|---|---|\n");
    for feature in FEATURES {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            feature.name,
            feature.since,
            feature.used_by,
            feature.without_text()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> (u32, u32) {
        let (major, minor) = text.split_once('.').unwrap();
        (major.parse().unwrap(), minor.parse().unwrap())
    }

    #[test]
    fn the_readme_shows_this_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let table = markdown_table();
        assert!(readme.contains(&table), "README.md's kernel table must read:\n{table}");
    }

    #[test]
    fn oldest_first_and_the_probe_loads_on_the_oldest_tested_kernel() {
        let releases: Vec<(u32, u32)> = FEATURES.iter().map(|f| version(f.since)).collect();
        assert!(releases.is_sorted(), "{releases:?}");
        for feature in FEATURES.iter().filter(|f| f.without == Without::NoProbe) {
            assert!(version(feature.since) <= version(OLDEST_TESTED), "{}", feature.name);
        }
    }

    #[test]
    fn every_figure_a_hook_feeds_is_named_missing_without_it() {
        let empty = std::env::temp_dir().join("iolab-no-tracefs");
        let missing = missing(&empty);
        assert_eq!(missing.iter().map(|m| m.figure).collect::<Vec<_>>(), ["io_uring", "wait.by_call.epoll_pwait2"]);
        assert_eq!(
            missing[1].cell(),
            "not measured on this kernel (needs tracepoint `syscalls:sys_exit_epoll_pwait2`, Linux 5.11+)"
        );
    }

    #[test]
    fn either_io_uring_submission_tracepoint_will_do() {
        let tracefs = std::env::temp_dir().join(format!("iolab-features-{}", std::process::id()));
        let events = tracefs.join("events/io_uring");
        std::fs::create_dir_all(events.join("io_uring_submit_sqe")).unwrap();
        let io_uring = FEATURES.iter().find(|f| f.figures == ["io_uring"]).unwrap();
        assert!(!io_uring.present(&tracefs), "no completion tracepoint yet");
        std::fs::create_dir_all(events.join("io_uring_complete")).unwrap();
        assert!(io_uring.present(&tracefs));
        std::fs::remove_dir_all(&tracefs).unwrap();
    }
}
