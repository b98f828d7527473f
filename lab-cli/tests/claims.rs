//! `iolab claims --quick`: every claim of the walkthrough gets a verdict from a real experiment,
//! and the claims whose answer does not depend on the machine's speed get the answer they must.

mod support;

use serde_json::Value;
use support::{iolab, stderr};

#[test]
fn every_claim_gets_a_verdict_from_its_figures() {
    let lab = support::serial();
    let out = iolab(&["claims", "--quick", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["command"], "claims");
    let claims = report["claims"].as_array().unwrap();
    let ids: Vec<&str> = claims.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5a", "5b", "6", "7", "8"]);
    let verdict = |id: &str| {
        let claim = claims.iter().find(|c| c["id"] == id).unwrap();
        (claim["verdict"].as_str().unwrap().to_owned(), claim["measured"].as_str().unwrap().to_owned())
    };
    for claim in claims {
        assert_ne!(claim["verdict"], "not_tested", "{claim}");
    }
    // The kernel's select takes fds past 1024; Python's select.select refuses them (python3 is
    // on every machine the lab runs on; the gevent server is not needed here).
    let (select, measured) = verdict("5a");
    assert_eq!(select, "holds_in_part", "{measured}");
    assert!(measured.contains("served 1100 connections (1101 fds watched per call, 0 errors)"), "{measured}");
    assert!(measured.ends_with("refused: ValueError: filedescriptor out of range in select()"), "{measured}");
    // poll over RLIMIT_NOFILE + 1 entries fails: its limit is the open-files limit.
    let (poll, measured) = verdict("5b");
    assert_eq!(poll, "does_not_hold", "{measured}");
    assert!(measured.contains("failed with EINVAL"), "{measured}");
    // The burst: one poll call returns every one of the 100 sockets, then a read and a write each.
    let (one_call, measured) = verdict("6");
    assert_eq!(one_call, "holds_in_part", "{measured}");
    assert!(
        measured.starts_with("one poll call returned 100 ready sockets of 100; then 2.00 read+write"),
        "{measured}"
    );
    // epoll: registered once, nothing passed per call, and no thread of its own.
    let (epoll, measured) = verdict("8");
    assert_eq!(epoll, "holds_in_part", "{measured}");
    assert!(measured.starts_with("1.00 epoll_ctl per connection, 0 fds passed per wait"), "{measured}");
    assert!(measured.ends_with("peak threads 1"), "{measured}");
    // The blocking designs: one read and one switch per message, whatever the CPU it cost.
    let (blocking, measured) = verdict("4");
    assert_ne!(blocking, "does_not_hold", "{measured}");
    assert!(measured.starts_with("thread: 1.00 reads and 1."), "{measured}");
    assert!(report["limits"]["open_files"][0].as_u64().unwrap() > 1024);
    lab.assert_nothing_left();
}
