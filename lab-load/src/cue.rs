//! The cues the load generator says on its stdout, one a line, where the lab may have to act:
//! the lab reads them (see `lab_measure::run::measure`) and, after those that pause, answers
//! with a line on the generator's stdin.

use std::{fmt, str::FromStr};

/// One line on the load generator's stdout, other than its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cue {
    /// Every connection is open (`connected`); the generator waits for a line.
    Connected,
    /// A burst round is about to be sent (`round`); the generator waits for a line.
    Round,
    /// A burst round is handed to the kernel whole: this many bytes (`queued N`).
    Queued(u64),
    /// Every message is answered, no connection closed yet (`sent`); the generator waits.
    Sent,
}

impl fmt::Display for Cue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cue::Connected => f.write_str("connected"),
            Cue::Round => f.write_str("round"),
            Cue::Queued(bytes) => write!(f, "queued {bytes}"),
            Cue::Sent => f.write_str("sent"),
        }
    }
}

/// A line that is no cue (the report, say), or a `queued` without a number.
#[derive(Debug, PartialEq, Eq)]
pub struct NotACue;

impl fmt::Display for NotACue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a load generator cue")
    }
}

impl std::error::Error for NotACue {}

impl FromStr for Cue {
    type Err = NotACue;

    fn from_str(line: &str) -> Result<Cue, NotACue> {
        match line {
            "connected" => Ok(Cue::Connected),
            "round" => Ok(Cue::Round),
            "sent" => Ok(Cue::Sent),
            _ => match line.strip_prefix("queued ") {
                Some(bytes) => bytes.parse().map(Cue::Queued).map_err(|_| NotACue),
                None => Err(NotACue),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cue_reads_back_as_itself() {
        for cue in [Cue::Connected, Cue::Round, Cue::Queued(0), Cue::Queued(640_000), Cue::Sent] {
            assert_eq!(cue.to_string().parse(), Ok(cue));
        }
    }

    #[test]
    fn other_lines_are_not_cues() {
        for line in ["", "{\"workload\":{}}", "queued", "queued x", "Connected", "sent "] {
            assert_eq!(line.parse::<Cue>(), Err(NotACue), "{line:?}");
        }
    }
}
