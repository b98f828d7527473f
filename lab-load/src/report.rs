//! What a load run measured: counts, rates, latency percentiles and errors by kind.
//!
//! The report is plain data (serde, JSON round trip) so the `iolab load` process can hand it to
//! the process that formats it. Latencies are recorded in nanoseconds in an HDR histogram
//! (3 significant digits, so every percentile is within 0.1 %) and reported in microseconds.

use std::{fmt, io};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The figures of one load run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
pub struct LoadReport {
    /// The load asked for.
    #[serde(flatten)]
    pub workload: super::Workload,
    /// Busy connections that were opened.
    pub connections_open: usize,
    /// Idle connections that were opened.
    pub idle_open: usize,
    /// Messages whose whole reply came back correct.
    pub messages_ok: u64,
    /// Time to open every connection.
    pub connect_seconds: f64,
    /// From the moment the open connections were released together to the last reply.
    pub wall_seconds: f64,
    /// `messages_ok / wall_seconds`.
    pub msgs_per_sec: f64,
    /// Per-message latency: send start to the last byte of the reply.
    pub latency_us: Latency,
    pub errors: ErrorCounts,
}

/// Latency percentiles, in microseconds. (Documents of schema 1 kept only p50 and p99: the
/// others read as 0.)
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(default)]
pub struct Latency {
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// Summarises a histogram of nanosecond samples.
    pub(crate) fn from_nanos(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            min: us(h.min()),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Errors by kind. A connection stops at its first error, so each counts once per connection
/// (plus, possibly, once more when closing it).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
pub struct ErrorCounts {
    /// Connect refused: nothing listening, or the server's backlog refused it.
    pub refused: u64,
    /// Connection reset, aborted, or a write to a connection the server had closed.
    pub reset: u64,
    /// An operation (connect, one message's exchange, or a close) took longer than the timeout.
    pub timeout: u64,
    /// A reply byte differed from the expected one (or bytes came when none were owed).
    pub mismatch: u64,
    /// The server closed the connection in the middle of a reply.
    pub eof: u64,
    /// Anything else (e.g. out of local ports).
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.refused + self.reset + self.timeout + self.mismatch + self.eof + self.other
    }

    pub(crate) fn count(&mut self, failure: Failure) {
        match failure {
            Failure::Refused => self.refused += 1,
            Failure::Reset => self.reset += 1,
            Failure::Timeout => self.timeout += 1,
            Failure::Mismatch => self.mismatch += 1,
            Failure::Eof => self.eof += 1,
            Failure::Other => self.other += 1,
        }
    }

    /// The kinds that occurred, most first: `9829 timeout, 3 reset`.
    pub fn describe(&self) -> String {
        let mut kinds = [
            (self.timeout, "timeout"),
            (self.reset, "reset"),
            (self.refused, "refused"),
            (self.eof, "eof"),
            (self.mismatch, "mismatch"),
            (self.other, "other"),
        ];
        kinds.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
        let named: Vec<String> = kinds.iter().filter(|(n, _)| *n > 0).map(|(n, kind)| format!("{n} {kind}")).collect();
        named.join(", ")
    }

    pub(crate) fn add(&mut self, other: &ErrorCounts) {
        self.refused += other.refused;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.mismatch += other.mismatch;
        self.eof += other.eof;
        self.other += other.other;
    }
}

/// Lists the non-zero counts, e.g. "3 refused, 1 timeout", or "no errors".
impl fmt::Display for ErrorCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = [
            (self.refused, "refused"),
            (self.reset, "reset"),
            (self.timeout, "timeout"),
            (self.mismatch, "mismatch"),
            (self.eof, "eof"),
            (self.other, "other"),
        ];
        let mut listed = kinds.iter().filter(|(n, _)| *n > 0).map(|(n, kind)| format!("{n} {kind}"));
        match listed.next() {
            None => f.write_str("no errors"),
            Some(first) => {
                f.write_str(&first)?;
                listed.try_for_each(|more| write!(f, ", {more}"))
            }
        }
    }
}

/// Why one connection stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    Refused,
    Reset,
    Timeout,
    Mismatch,
    Eof,
    Other,
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => Failure::Refused,
            ConnectionReset | ConnectionAborted | BrokenPipe => Failure::Reset,
            TimedOut => Failure::Timeout,
            UnexpectedEof => Failure::Eof,
            _ => Failure::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_sums_every_kind() {
        let mut errors = ErrorCounts::default();
        for f in [Failure::Refused, Failure::Reset, Failure::Reset, Failure::Timeout] {
            errors.count(f);
        }
        for f in [Failure::Mismatch, Failure::Eof, Failure::Other] {
            errors.count(f);
        }
        assert_eq!(errors.reset, 2);
        assert_eq!(errors.total(), 7);
    }

    #[test]
    fn latency_is_reported_in_microseconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        // Below 2048 ns the histogram stores every value exactly.
        for ns in [1000, 1500, 2000] {
            h.record(ns).unwrap();
        }
        let l = Latency::from_nanos(&h);
        assert_eq!((l.min, l.p50, l.max, l.mean), (1.0, 1.5, 2.0, 1.5));
    }

    #[test]
    fn display_lists_only_what_happened() {
        let errors = ErrorCounts { refused: 3, timeout: 1, ..ErrorCounts::default() };
        assert_eq!(errors.to_string(), "3 refused, 1 timeout");
        assert_eq!(ErrorCounts::default().to_string(), "no errors");
    }
}
