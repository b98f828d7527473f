//! Side-by-side measurement on a noisy machine: contenders take turns, medians decide.
//!
//! A shared 2-core VM drifts: a build starts next door, the CPU clock changes, the page cache
//! warms up. Running all of A and then all of B would charge that drift to one of them. So every
//! round runs each contender once, in an order rotated by one each round (A B, B A, A B… for
//! two), and a ratio is taken *within* a round, between runs seconds apart. The median of the
//! rounds' ratios is the result: one disturbed round cannot move it, and the smallest and largest
//! ratio are kept beside it so the reader sees how much the rounds disagreed.

use serde::Serialize;

use lab_report::results::stats::{Summary, summarize};

/// The order in which `contenders` run in round `round` (from 0): each round starts one later.
pub fn order(contenders: usize, round: usize) -> Vec<usize> {
    (0..contenders).map(|i| (i + round) % contenders.max(1)).collect()
}

/// The median and range of `a[i] / b[i]` over the rounds that have both (and a non-zero `b`).
pub fn ratios(a: &[f64], b: &[f64]) -> Summary {
    let per_round: Vec<f64> = a.iter().zip(b).filter(|(_, b)| **b != 0.0).map(|(a, b)| a / b).collect();
    summarize(&per_round)
}

/// The median and range of `a[i] - b[i]` over the rounds.
pub fn differences(a: &[f64], b: &[f64]) -> Summary {
    let per_round: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    summarize(&per_round)
}

/// Whether a measured figure reached its target. A miss is a result, not an error: the bench
/// still exits 0. `NotRun` says why nothing could be measured (a tool is missing, say).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Miss,
    NotRun(String),
}

impl Verdict {
    pub fn at_least(value: f64, target: f64) -> Verdict {
        if value >= target { Verdict::Pass } else { Verdict::Miss }
    }

    pub fn below(value: f64, target: f64) -> Verdict {
        if value < target { Verdict::Pass } else { Verdict::Miss }
    }

    pub fn label(&self) -> &str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::NotRun(_) => "not run",
        }
    }
}

/// How many times smaller the lab's overhead (1 − its throughput ratio) is than a tool's.
/// `None` when the lab's overhead is not above zero: the probe's cost is lost in the noise, so
/// no finite factor can be stated (and the lab is certainly not the costlier one).
pub fn overhead_factor(lab_ratio: f64, tool_ratio: f64) -> Option<f64> {
    let lab = 1.0 - lab_ratio;
    (lab > 0.0).then(|| (1.0 - tool_ratio) / lab)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_rotates_each_round() {
        assert_eq!(order(2, 0), [0, 1]);
        assert_eq!(order(2, 1), [1, 0]);
        assert_eq!(order(3, 1), [1, 2, 0]);
        assert_eq!(order(3, 5), [2, 0, 1]);
    }

    #[test]
    fn ratios_are_taken_within_a_round() {
        // Round 2 is disturbed for both: its ratio is still 0.5, the median is round 1's 0.9.
        let r = ratios(&[90.0, 20.0, 95.0], &[100.0, 40.0, 100.0]);
        assert_eq!((r.median, r.min, r.max), (0.9, 0.5, 0.95));
        assert_eq!(ratios(&[1.0], &[0.0]).median, 0.0);
    }

    #[test]
    fn differences_keep_their_sign() {
        let d = differences(&[10.0, 12.0, 9.0], &[11.0, 10.0, 10.0]);
        assert_eq!((d.median, d.min, d.max), (-1.0, -1.0, 2.0));
    }

    #[test]
    fn overhead_factor_compares_what_each_costs() {
        // Lab 0.98 (2 % overhead) against strace 0.20 (80 %): 40 times smaller.
        assert!((overhead_factor(0.98, 0.20).unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(overhead_factor(1.01, 0.20), None);
    }

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::at_least(0.95, 0.95), Verdict::Pass);
        assert_eq!(Verdict::at_least(0.949, 0.95), Verdict::Miss);
        assert_eq!(Verdict::below(60.0, 60.0), Verdict::Miss);
        assert_eq!(Verdict::NotRun("x".into()).label(), "not run");
    }
}
