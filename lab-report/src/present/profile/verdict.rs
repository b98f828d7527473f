//! What the profiles say about the lab's claims, as sentences for the verdict: computed from the
//! mechanism shares of the runs they sit under, and only for runs that carry a profile.
//!
//! - the per-fd walk: the share select and poll spent walking their fds, against epoll's (none,
//!   its ready list instead);
//! - the scheduler: the share the blocking designs spent switching, against epoll's;
//! - a switch's price, for the designs that switch about once a message or more.

use lab_measure::result::RunResult;

use crate::{
    present::numbers::significant,
    results::{document::ModelResult, figures::Figure, profile::SwitchCost},
};

/// A model switches "often" from one switch in two messages, as the blocking claim's rule.
const OFTEN: f64 = 0.5;

/// Whether `r` switched often enough for a switch's price to matter.
pub fn switches_often(r: &RunResult) -> bool {
    let switches = r.context_switches.voluntary + r.context_switches.involuntary;
    r.messages_total > 0 && switches as f64 / r.messages_total as f64 >= OFTEN
}

/// The verdict's sentences about the profiles of `models` (one workload); none without profiles.
pub fn verdict(models: &[&ModelResult]) -> Vec<String> {
    let profiled: Vec<&ModelResult> =
        models.iter().copied().filter(|m| m.figure(Figure::FdWalkShare).is_some()).collect();
    let mut lines = Vec::new();
    lines.extend(walk(&profiled));
    lines.extend(scheduler(&profiled));
    lines.extend(profiled.iter().filter_map(|m| switch_price(m)));
    lines
}

fn pct(m: &ModelResult, f: Figure) -> f64 {
    m.figure(f).unwrap_or(0.0)
}

fn percent(v: f64) -> String {
    if v == 0.0 { "none".to_owned() } else { format!("{} %", significant(v)) }
}

fn is_epoll(m: &ModelResult) -> bool {
    pct(m, Figure::EpollReadyShare) > pct(m, Figure::FdWalkShare)
}

/// The epoll model to compare with: `epoll` itself when it ran, else the first of its kind.
fn epoll<'a>(profiled: &[&'a ModelResult]) -> Option<&'a ModelResult> {
    let epolls: Vec<&ModelResult> = profiled.iter().copied().filter(|m| is_epoll(m)).collect();
    epolls.iter().copied().find(|m| m.run.model == "epoll").or(epolls.first().copied())
}

/// "Profile: poll at 10000 connections spent 62.0 % of its sampled CPU in the per-fd walk; epoll: none in
/// a per-fd walk, 3.10 % in its ready list."
fn walk(profiled: &[&ModelResult]) -> Option<String> {
    let mut walkers: Vec<&ModelResult> =
        profiled.iter().copied().filter(|m| !is_epoll(m) && pct(m, Figure::FdWalkShare) > 0.0).collect();
    walkers.sort_by(|a, b| pct(b, Figure::FdWalkShare).total_cmp(&pct(a, Figure::FdWalkShare)));
    let epoll = epoll(profiled);
    let (first, others) = walkers.split_first()?;
    let others: Vec<String> =
        others.iter().map(|m| format!("{} {}", m.run.model, percent(pct(m, Figure::FdWalkShare)))).collect();
    let others = if others.is_empty() { String::new() } else { format!(" ({})", others.join(", ")) };
    let against = epoll.map_or_else(String::new, |e| {
        format!(
            "; {}: {} in a per-fd walk, {} in its ready list",
            e.run.model,
            percent(pct(e, Figure::FdWalkShare)),
            percent(pct(e, Figure::EpollReadyShare))
        )
    });
    Some(format!(
        "Profile: {} at {} connections spent {} of its sampled CPU in the per-fd walk{others}{against}.",
        first.run.model,
        first.run.workload.all_connections(),
        percent(pct(first, Figure::FdWalkShare)),
    ))
}

/// "Profile: thread spent 31.0 % of its sampled CPU in the scheduler, against epoll's 4.20 %."
fn scheduler(profiled: &[&ModelResult]) -> Option<String> {
    let blocking: Vec<&ModelResult> = profiled.iter().copied().filter(|m| m.run.wait.all.calls == 0).collect();
    let (first, others) = blocking.split_first()?;
    let others: Vec<String> =
        others.iter().map(|m| format!("{} {}", m.run.model, percent(pct(m, Figure::SchedulerShare)))).collect();
    let others = if others.is_empty() { String::new() } else { format!(" ({})", others.join(", ")) };
    let against = epoll(profiled).map_or_else(String::new, |e| {
        format!(", against {}'s {}", e.run.model, percent(pct(e, Figure::SchedulerShare)))
    });
    Some(format!(
        "Profile: {} spent {} of its sampled CPU in the scheduler{others}{against}.",
        first.run.model,
        percent(pct(first, Figure::SchedulerShare))
    ))
}

/// A switch's price, for a model that switches at least once in two messages.
fn switch_price(m: &ModelResult) -> Option<String> {
    let r = &m.run;
    let cost = SwitchCost::of(r)?;
    let per_message = cost.switches as f64 / r.messages_total as f64;
    switches_often(r).then(|| {
        format!(
            "Profile: a context switch of {} cost {} µs ({} µs of scheduler CPU, {} µs waiting in the run queue); at {} \
             switches per message, {} µs per message.",
            r.model,
            significant(cost.ns() / 1e3),
            significant(cost.cpu_ns / 1e3),
            significant(cost.delay_ns / 1e3),
            significant(per_message),
            significant(per_message * cost.ns() / 1e3)
        )
    })
}
