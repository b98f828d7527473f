//! `--profile` as a user meets it: what the stacks say about each design, the files it writes,
//! and bad input.
//!
//! Runs the real binary as root with the real probes, one test at a time; each checks afterwards
//! that no process it started is left and no probe it loaded. The stacks' mechanisms are read
//! back from the folded files with the report's own classifier, so the files and the tables are
//! held to the same sets of kernel functions.

mod support;

use std::{collections::BTreeMap, fs, path::Path};

use lab_report::results::mechanism::{Mechanism, classify};
use serde_json::Value;
use support::{iolab, serial, stderr};

/// A folded file: `frame;frame;… count` per line.
fn folded(path: &Path) -> BTreeMap<String, u64> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let (stack, count) = line.rsplit_once(' ').expect("a folded line ends with its count");
            (stack.to_owned(), count.parse().expect("a count"))
        })
        .collect()
}

/// Samples in `stacks` that `mechanism` paid for, and all of them.
fn samples_in(stacks: &BTreeMap<String, u64>, mechanism: Mechanism) -> (u64, u64) {
    let of = stacks.iter().filter(|(stack, _)| classify(stack) == mechanism).map(|(_, n)| n).sum();
    (of, stacks.values().sum())
}

/// The walkthrough's mechanism, seen in the stacks: poll at 5,000 fds spends most of its CPU
/// walking them (`do_sys_poll` and the per-fd `sock_poll`/`tcp_poll` under it); epoll has no
/// per-fd walk at all. Measured here: poll 5,000 fds 80–90 % in the walk.
#[test]
fn a_scan_shows_poll_walking_every_fd_and_epoll_none() {
    let lab = serial();
    let dir = tempfile::tempdir().unwrap();
    let (graphs, stacks) = (dir.path().join("graphs"), dir.path().join("folded"));
    let (graphs_arg, stacks_arg) = (graphs.to_str().unwrap(), stacks.to_str().unwrap());
    let out = iolab(&[
        "scan",
        "--fds",
        "10,5000",
        "--models",
        "poll,epoll",
        "--calls",
        "2000",
        "--runs",
        "1",
        "--profile",
        "--flamegraph",
        graphs_arg,
        "--export-folded",
        stacks_arg,
        "--format",
        "json",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for point in ["poll-10", "poll-5000", "epoll-10", "epoll-5000"] {
        for file in [format!("{point}.folded"), format!("{point}-offcpu.folded")] {
            assert!(stacks.join(&file).exists(), "{file} written");
        }
        assert!(graphs.join(format!("{point}.svg")).exists(), "{point}.svg written");
    }
    for diff in ["poll-10-5000-diff.svg", "epoll-10-5000-diff.svg"] {
        let svg = fs::read_to_string(graphs.join(diff)).unwrap_or_else(|e| panic!("{diff}: {e}"));
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{diff} is an SVG");
    }
    let (walk, all) = samples_in(&folded(&stacks.join("poll-5000.folded")), Mechanism::FdWalk);
    eprintln!("poll at 5000 fds: {walk} of {all} samples in the per-fd walk");
    assert!(all >= 200, "enough samples to judge: {all}");
    assert!(walk * 2 >= all, "poll at 5,000 fds: {walk} of {all} samples in the per-fd walk");
    let (walk, all) = samples_in(&folded(&stacks.join("epoll-5000.folded")), Mechanism::FdWalk);
    eprintln!("epoll at 5000 fds: {walk} of {all} samples in a per-fd walk");
    assert_eq!(walk, 0, "epoll walks no fds");
    assert!(all > 0, "epoll was sampled");
    // The table's figure is the folded file's share.
    let doc: Value = serde_json::from_slice(&out.stdout).expect("scan JSON");
    let poll = doc["rows"].as_array().unwrap().iter().find(|r| r["model"] == "poll" && r["fds"] == 5000).unwrap();
    let (walk, all) = samples_in(&folded(&stacks.join("poll-5000.folded")), Mechanism::FdWalk);
    let percent = poll["profile_percent"]["fd_walk"].as_f64().unwrap();
    assert!((percent - 100.0 * walk as f64 / all as f64).abs() < 1.0, "{percent} against {walk}/{all}");
    lab.assert_nothing_left();
}

/// A thread per connection pays for its switches in the scheduler; epoll does not. The folded
/// files hold exactly the samples the tables are made of, and both models have a run-queue
/// delay histogram.
#[test]
fn a_compare_shows_threads_in_the_scheduler_with_the_same_samples_as_the_files() {
    let lab = serial();
    let dir = tempfile::tempdir().unwrap();
    let stacks = dir.path().join("folded");
    let out = iolab(&[
        "compare",
        "--models",
        "thread,epoll",
        "-c",
        "1000",
        "-m",
        "50",
        "--runs",
        "1",
        "--profile",
        "--export-folded",
        stacks.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("compare JSON");
    let mut scheduler = BTreeMap::new();
    for model in ["thread", "epoll"] {
        let result = doc["results"].as_array().unwrap().iter().find(|r| r["model"] == model).unwrap();
        let on_cpu = folded(&stacks.join(format!("{model}.folded")));
        let samples: u64 = on_cpu.values().sum();
        let figure = &result["spread"]["profile_samples"]["median"];
        let lost = result["profile"]["lost_samples"].as_u64().unwrap();
        assert_eq!(figure.as_f64(), Some((samples + lost) as f64), "{model}: the table counts the file's samples");
        let (sched, all) = samples_in(&on_cpu, Mechanism::Scheduler);
        let percent = result["spread"]["profile_scheduler_pct"]["median"].as_f64().unwrap();
        assert!(
            (percent - 100.0 * sched as f64 / all as f64).abs() < 0.5,
            "{model}: {percent} % against {sched}/{all}"
        );
        scheduler.insert(model, percent);
        let run_queue = &result["profile"]["run_queue"];
        let histogram: u64 = run_queue["histogram"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).sum();
        assert!(run_queue["waits"].as_u64().unwrap() > 0, "{model}: {run_queue}");
        assert_eq!(histogram, run_queue["waits"].as_u64().unwrap(), "{model}: every wait is in the histogram");
    }
    eprintln!("scheduler share: {scheduler:?}");
    assert!(scheduler["thread"] > scheduler["epoll"], "threads switch on every message: {scheduler:?}");
    lab.assert_nothing_left();
}

#[test]
fn a_bad_profile_rate_or_folder_is_refused_before_anything_runs() {
    let lab = serial();
    for hz in ["0", "10001"] {
        let out = iolab(&["run", "--model", "epoll", "--profile", "--profile-hz", hz]);
        assert_eq!(out.status.code(), Some(2), "--profile-hz {hz}: {}", stderr(&out));
        assert!(stderr(&out).contains("--profile-hz"), "{}", stderr(&out));
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    for flag in ["--flamegraph", "--export-folded"] {
        let out = iolab(&["run", "--model", "epoll", "--profile", flag, file.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{flag} to a file: {}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains(flag) && said.contains("not a directory") && said.lines().count() == 1, "{said}");
    }
    let out = iolab(&["run", "--model", "epoll", "--flamegraph", "/tmp/iolab-unused"]);
    assert_eq!(out.status.code(), Some(2), "--flamegraph needs --profile: {}", stderr(&out));
    lab.assert_nothing_left();
}
