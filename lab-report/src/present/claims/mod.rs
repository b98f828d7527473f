//! The walkthrough's claims, one row each: what was run, what it measured, and the verdict.
//!
//! `iolab claims` runs the experiments (the lab's own comparisons, a burst, a scan) and hands
//! their results here as [`Evidence`]; [`rules`] turns them into rows, one small function per
//! claim, each naming its thresholds, so a rule can be read and tested on fixed figures apart
//! from the runs. A figure that was not measured (a Python server missing) makes a verdict
//! "not tested" or weaker, never a guess.

mod rules;

use serde::{Deserialize, Serialize};
use tabled::{
    Table, Tabled,
    settings::{Style, Width, object::Columns, peaker::Priority},
};

use crate::{
    present::numbers::significant,
    results::{
        document::{Machine, ModelResult, Unsupported},
        scan::ScanRow,
    },
};
pub use lab_measure::machine::MachineLimits;

/// What the experiments measured, for the rules to judge.
pub struct Evidence<'a> {
    /// Every design at the main size, free-running: memory, CPU, switches, epoll_ctl.
    pub compare: &'a [ModelResult],
    pub compare_command: String,
    /// The same designs and servers at the large size, one run each.
    pub large: &'a [ModelResult],
    pub large_command: String,
    /// Coroutine and thread at a small size.
    pub small: &'a [ModelResult],
    /// The burst: every connection's message queued before the server looks.
    pub burst: &'a [ModelResult],
    pub burst_command: String,
    /// The select model past fd 1024, and Python's select-based server there.
    pub select_wide: Option<&'a ModelResult>,
    pub python_select: PythonSelect<'a>,
    /// Python servers of the comparison that did not run, and why.
    pub python_not_run: &'a [Unsupported],
    pub select_command: String,
    /// The errno of a poll over RLIMIT_NOFILE + 1 entries (`None`: it succeeded).
    pub poll_beyond_limit: Option<i32>,
    /// One wait call's CPU against the fds it watches.
    pub scan: &'a [ScanRow],
    pub scan_command: String,
    pub limits: MachineLimits,
    pub syscall_ns: f64,
}

/// Python's `select.SelectSelector` server past fd 1024.
pub enum PythonSelect<'a> {
    /// It served (and its errors say how well).
    Served(&'a ModelResult),
    /// It died or never started: its last words.
    Refused(String),
    /// It could not be run here: why.
    NotRun(String),
}

/// Every claim's row, in the walkthrough's order.
pub fn claims(e: &Evidence) -> Vec<Claim> {
    vec![
        rules::process_memory(e),
        rules::thread_cost(e),
        rules::coroutines(e),
        rules::one_syscall_per_connection(e),
        rules::select_limit(e),
        rules::poll_limit(e),
        rules::one_call(e),
        rules::scan_cost(e),
        rules::epoll_claim(e),
    ]
}

/// How a claim fared against the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Holds,
    HoldsInPart,
    DoesNotHold,
    NotTested,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::HoldsInPart => "holds in part",
            Verdict::DoesNotHold => "does not hold",
            Verdict::NotTested => "not tested here",
        }
    }

    /// A claim made of parts: all of them held, some, or none.
    pub fn of_parts(held: &[bool]) -> Verdict {
        match held.iter().filter(|&&h| h).count() {
            0 => Verdict::DoesNotHold,
            n if n == held.len() => Verdict::Holds,
            _ => Verdict::HoldsInPart,
        }
    }

    /// "Costs a lot more": at least 10× holds, 2× to 10× holds in part, less does not.
    pub fn of_ratio(ratio: f64) -> Verdict {
        if ratio >= 10.0 {
            Verdict::Holds
        } else if ratio >= 2.0 {
            Verdict::HoldsInPart
        } else {
            Verdict::DoesNotHold
        }
    }
}

/// One claim of the walkthrough and what the lab found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    /// The claim's number in the walkthrough's order (5 has two parts: 5a, 5b).
    pub id: String,
    /// The claim, in short.
    pub claim: String,
    /// The `iolab` command that measures it again.
    pub command: String,
    /// The figures the verdict rests on, as a sentence.
    pub measured: String,
    pub verdict: Verdict,
    /// Why, in a few words: the rule, or what could not be run.
    pub because: String,
}

#[derive(Tabled)]
struct Row<'a> {
    #[tabled(rename = "#")]
    id: &'a str,
    claim: &'a str,
    measured: &'a str,
    verdict: &'a str,
    #[tabled(rename = "how to see it")]
    command: String,
}

impl ClaimsReport {
    /// The claims as a table for a terminal (`markdown`: for the README), at full width.
    pub fn table(&self, markdown: bool) -> String {
        self.table_width(markdown, None)
    }

    /// [`ClaimsReport::table`] fitted to `width` columns when given (a terminal's): the commands
    /// move under the table as numbered notes, and the cells wrap.
    pub fn table_width(&self, markdown: bool, width: Option<usize>) -> String {
        let mut commands: Vec<&str> = Vec::new();
        let rows: Vec<Row> = self
            .claims
            .iter()
            .map(|c| {
                let command = match width {
                    Some(_) if !markdown => {
                        if !commands.contains(&c.command.as_str()) {
                            commands.push(&c.command);
                        }
                        let n = commands.iter().position(|k| *k == c.command).unwrap_or(0) + 1;
                        format!("[{n}]")
                    }
                    _ => format!("`{}`", c.command),
                };
                Row { id: &c.id, claim: &c.claim, measured: &c.measured, verdict: c.verdict.text(), command }
            })
            .collect();
        let mut table = Table::new(rows);
        if markdown {
            table.with(Style::markdown());
        } else if let Some(width) = width {
            table.with(Style::rounded()).with(Width::wrap(width).keep_words(true).priority(Priority::max(false)));
        } else {
            table.with(Style::rounded()).modify(Columns::new(1..3), Width::wrap(44).keep_words(true));
        }
        let mut notes = String::new();
        if let Some(width) = width {
            for (i, command) in commands.iter().enumerate() {
                let number = format!("[{}] ", i + 1);
                let indent = " ".repeat(number.len());
                notes += &format!("{number}{}\n", crate::present::export::wrap(command, width - indent.len(), &indent));
            }
        }
        let notes = if notes.is_empty() { notes } else { format!("\n{notes}") };
        let l = &self.limits;
        let open_files = format!("{} (hard {})", l.open_files.0, l.open_files.1);
        let user_tasks = l.max_user_tasks.map_or("unlimited".into(), |n| n.to_string());
        let bound = match self.large {
            0 => String::new(),
            n => format!(
                " The large comparison stops at {n} connections: each holds a socket in the load generator and one in the server, both under RLIMIT_NOFILE, and every server must be taken back cleanly after it."
            ),
        };
        let limits = format!(
            "Limits here: RLIMIT_NPROC {user_tasks}, threads-max {}, pid_max {}, vm.max_map_count {}, RLIMIT_NOFILE {open_files}; one getppid costs {} ns without a probe.{bound}",
            l.threads_max,
            l.pid_max,
            l.max_map_count,
            significant(self.syscall_ns)
        );
        let limits = match width {
            Some(width) => crate::present::export::wrap(&limits, width, ""),
            None => limits,
        };
        format!("{table}\n{notes}\n{limits}\n")
    }
}

/// What `iolab claims` found, claim by claim, with the limits it read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimsReport {
    pub claims: Vec<Claim>,
    pub limits: MachineLimits,
    /// One `getppid` on this kernel, no probe loaded: what a syscall costs at least.
    pub syscall_ns: f64,
    /// The connections of the main comparison (the walkthrough says 10,000; see `--connections`).
    pub connections: u64,
    /// The connections of the large comparison (0: not run, `--quick`).
    #[serde(default)]
    pub large: u64,
    /// When it was made (UTC, RFC 3339).
    #[serde(default)]
    pub created: String,
    /// The kernel and CPUs it ran on.
    #[serde(default = "unknown_machine")]
    pub machine: Machine,
}

fn unknown_machine() -> Machine {
    Machine { kernel: "unknown".into(), cpus: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_give_all_some_or_none() {
        assert_eq!(Verdict::of_parts(&[true, true]), Verdict::Holds);
        assert_eq!(Verdict::of_parts(&[true, false, false]), Verdict::HoldsInPart);
        assert_eq!(Verdict::of_parts(&[false, false]), Verdict::DoesNotHold);
    }

    fn report() -> ClaimsReport {
        let long = "iolab compare -c 1000 -m 50 --models process,thread,coroutine,coroutine-mt,epoll \
                    --server 'py-process=.tools/python/bin/python examples/python/process_server.py {port}' \
                    --server 'py-thread=.tools/python/bin/python examples/python/thread_server.py {port}'";
        let claim = |id: &str, command: &str| Claim {
            id: id.into(),
            claim: "A process per connection costs a lot of resources; the OS limits how many".into(),
            command: command.into(),
            measured: "memory (PSS) per connection, process vs epoll: 50.6 vs 13.4 KiB at 1000 (3.78×); at most \
                       32768 tasks here; Python: py-process 467 KiB at 1000"
                .into(),
            verdict: Verdict::HoldsInPart,
            because: "10× epoll's memory per connection at every size holds".into(),
        };
        ClaimsReport {
            claims: vec![
                claim("1", long),
                claim("2", long),
                claim("7", "iolab scan --fds 10,1000 --models poll,epoll"),
            ],
            limits: MachineLimits::default(),
            syscall_ns: 277.0,
            connections: 1000,
            large: 10_000,
            created: "2026-12-04T05:00:00Z".into(),
            machine: unknown_machine(),
        }
    }

    #[test]
    fn at_a_terminals_width_the_commands_become_numbered_notes_under_the_table() {
        let text = report().table_width(false, Some(100));
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{} wide: {line}", line.chars().count());
        }
        assert!(text.contains("│ [1]") && text.contains("│ [2]"), "{text}");
        assert_eq!(text.matches("\n[1] iolab compare -c 1000").count(), 1, "one note per command: {text}");
        assert!(text.contains("\n[2] iolab scan --fds 10,1000 --models poll,epoll\n"), "{text}");
        let full = report().table(false);
        assert!(full.lines().any(|l| l.chars().count() > 100), "redirected: full width");
        assert!(full.contains("`iolab scan --fds 10,1000 --models poll,epoll`"));
    }

    #[test]
    fn ratios_have_their_boundaries_on_the_side_of_the_claim() {
        assert_eq!(Verdict::of_ratio(10.0), Verdict::Holds);
        assert_eq!(Verdict::of_ratio(9.99), Verdict::HoldsInPart);
        assert_eq!(Verdict::of_ratio(2.0), Verdict::HoldsInPart);
        assert_eq!(Verdict::of_ratio(1.99), Verdict::DoesNotHold);
    }
}
