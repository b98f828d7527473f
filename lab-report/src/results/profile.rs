//! What a run's `--profile` gives beyond the samples' mechanisms ([`mechanism`](super::mechanism)):
//! the run-queue delay, and what one context switch costs.
//!
//! The delays are kept by the probe as a log2 histogram, so a percentile is known only to its
//! bucket: [`quantile_bound`] gives the bucket's upper bound (`p99 ≤ 16.4 µs`), never a value
//! in between. A switch's cost is its two parts added: the scheduler's own CPU per switch, from
//! the samples, and the time the thread then waited in the run queue to run again, per wait.

use lab_common::HISTOGRAM_BUCKETS;
use lab_measure::{profile::RunQueue, result::RunResult};

use super::mechanism::{Breakdown, Mechanism};

/// The upper bound in ns of the log2 bucket holding the `q` quantile (0 < q ≤ 1) of the delays:
/// bucket `i` holds `2^(i-1) ≤ ns < 2^i`, so `2^i` bounds it; the last bucket is open, and gives
/// its lower bound. `None` with no wait.
pub fn quantile_bound(rq: &RunQueue, q: f64) -> Option<f64> {
    let waits: u64 = rq.histogram.iter().sum();
    if waits == 0 {
        return None;
    }
    let wanted = (q * waits as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &count) in rq.histogram.iter().enumerate() {
        seen += count;
        if seen >= wanted {
            return Some(bucket_bound(i));
        }
    }
    Some(bucket_bound(HISTOGRAM_BUCKETS - 1))
}

fn bucket_bound(i: usize) -> f64 {
    match i {
        0 => 0.0,
        _ if i == HISTOGRAM_BUCKETS - 1 => (1u64 << (i - 1)) as f64,
        _ => (1u64 << i) as f64,
    }
}

/// The mean run-queue delay of one wait, in ns; `None` with no wait.
pub fn mean_delay_ns(rq: &RunQueue) -> Option<f64> {
    (rq.waits > 0).then(|| rq.delay_ns as f64 / rq.waits as f64)
}

/// What one context switch of a run cost, from its profile and its switch counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwitchCost {
    /// Context switches of the tree's threads in the window, voluntary and involuntary.
    pub switches: u64,
    /// Scheduler CPU (the [`Mechanism::Scheduler`] samples) per switch, in ns.
    pub cpu_ns: f64,
    /// Run-queue delay per wait, in ns: how long a thread made runnable waited to run.
    pub delay_ns: f64,
}

impl SwitchCost {
    /// `None` without a profile, a switch, a sample rate or a run-queue wait.
    pub fn of(run: &RunResult) -> Option<SwitchCost> {
        let profile = run.profile.as_ref()?;
        let switches = run.context_switches.voluntary + run.context_switches.involuntary;
        let scheduler_ms = Breakdown::of(profile).cpu_ms(Mechanism::Scheduler)?;
        (switches > 0).then_some(())?;
        Some(SwitchCost {
            switches,
            cpu_ns: scheduler_ms * 1e6 / switches as f64,
            delay_ns: mean_delay_ns(&profile.run_queue)?,
        })
    }

    /// Both parts, in ns.
    pub fn ns(&self) -> f64 {
        self.cpu_ns + self.delay_ns
    }

    /// All the switches at that cost, in ns.
    pub fn total_ns(&self) -> f64 {
        self.ns() * self.switches as f64
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use lab_measure::profile::Profile;

    use super::*;

    #[test]
    fn a_quantile_is_the_upper_bound_of_its_bucket() {
        let mut rq = RunQueue { waits: 100, delay_ns: 0, histogram: [0; HISTOGRAM_BUCKETS] };
        rq.histogram[10] = 50; // 512–1023 ns
        rq.histogram[14] = 49; // 8192–16383 ns
        rq.histogram[20] = 1;
        assert_eq!(quantile_bound(&rq, 0.5), Some(1024.0));
        assert_eq!(quantile_bound(&rq, 0.51), Some(16384.0));
        assert_eq!(quantile_bound(&rq, 0.99), Some(16384.0));
        assert_eq!(quantile_bound(&rq, 1.0), Some(1_048_576.0));
        rq.histogram[HISTOGRAM_BUCKETS - 1] = 1_000;
        assert_eq!(quantile_bound(&rq, 0.99), Some((1u64 << 30) as f64), "the open bucket: its lower bound");
        assert_eq!(quantile_bound(&RunQueue::default(), 0.5), None);
    }

    #[test]
    fn a_switch_costs_its_scheduler_cpu_and_its_run_queue_wait() {
        let mut run = RunResult::default();
        run.context_switches.voluntary = 900;
        run.context_switches.involuntary = 100;
        run.profile = Some(Profile {
            hz: 1000,
            // 2 samples at 1000 Hz: 2 ms of scheduler CPU for 1000 switches, 2 µs each.
            on_cpu: BTreeMap::from([("t;x;schedule_[k]".into(), 2), ("t;main".into(), 8)]),
            run_queue: RunQueue { waits: 500, delay_ns: 1_500_000, ..RunQueue::default() },
            ..Profile::default()
        });
        let cost = SwitchCost::of(&run).unwrap();
        assert_eq!((cost.switches, cost.cpu_ns, cost.delay_ns), (1000, 2000.0, 3000.0));
        assert_eq!(cost.ns(), 5000.0);
        assert_eq!(cost.total_ns(), 5_000_000.0);
        run.context_switches = Default::default();
        assert_eq!(SwitchCost::of(&run), None, "no switch, no cost per switch");
    }
}
