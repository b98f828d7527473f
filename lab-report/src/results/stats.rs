//! Statistics over repeated runs: the median and the range, as hyperfine reports them.
//!
//! A handful of runs (3 to 10) is too few for a mean and a standard deviation to mean much, and
//! one slow run drags a mean. So each figure is summarised by its median, with the smallest and
//! largest value beside it: the reader sees the typical run and how far the others strayed. The
//! run shown in full (syscalls by name, wait calls…) is the median run by throughput, a real run
//! rather than an average of several, so its counts still add up.

use serde::{Deserialize, Serialize};

/// Median and range of one figure over the measured runs.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Median, min and max of `values`. With an even count the median is the mean of the two middle
/// values. An empty slice gives all zeros.
pub fn summarize(values: &[f64]) -> Summary {
    if values.is_empty() {
        return Summary::default();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    Summary { median, min: sorted[0], max: sorted[n - 1] }
}

/// How far runs may stray before the reader is warned: 10% of the median.
pub const WIDE_SPREAD: f64 = 0.10;

/// True when the runs disagree by more than [`WIDE_SPREAD`]: (max − min) / |median| > 0.10.
/// A figure whose median is 0 is wide as soon as any run differs from the others.
pub fn wide_spread(s: &Summary) -> bool {
    let range = s.max - s.min;
    if s.median == 0.0 { range > 0.0 } else { range / s.median.abs() > WIDE_SPREAD }
}
