//! What the VM runs, and reading back what it printed.
//!
//! xtask writes the steps into the initramfs as `/vm/steps`, a shell file of `step NAME COMMAND…`
//! lines that the init script (`xtask/vm/init`) runs. The guest's console is the only channel
//! back, so the init frames everything xtask needs with lines that start with `IOLAB-VM`:
//!
//! ```text
//! IOLAB-VM: kernel 6.1.0-56-amd64
//! IOLAB-VM: step selftest: iolab selftest --format json
//! iolab: …                               <- the step's errors, as they happen
//! IOLAB-VM-OUTPUT-BEGIN selftest
//! {"io": …}                              <- the step's standard output
//! IOLAB-VM-OUTPUT-END selftest
//! IOLAB-VM: step selftest exited 0
//! IOLAB-VM: PASS                         <- or `IOLAB-VM: FAIL (exit N)`
//! ```
//!
//! [`Console`] reads those lines one at a time while the VM runs and keeps each step's output.

/// The default steps: prove the counters exact, then a small comparison of the models, then one
/// run with `--profile` (its programs load only with it, so only a run with it shows this kernel
/// takes them). Kept small because without KVM the guest runs on an emulated CPU, many times
/// slower than the host. Each step's output is JSON, which the summary table is made from.
pub const DEFAULT_STEPS: &[(&str, &[&str])] = &[
    ("selftest", &["iolab", "selftest", "--format", "json"]),
    (
        "compare",
        &["iolab", "compare", "--models", "all", "-c", "20", "-m", "50", "--runs", "3", "--quiet", "--format", "json"],
    ),
    ("profile", &["iolab", "run", "--model", "thread", "-c", "20", "-m", "50", "--profile", "--format", "json"]),
];

/// One command for the guest to run, named for the markers and the summary.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub argv: Vec<String>,
}

impl Step {
    pub fn defaults() -> Vec<Step> {
        DEFAULT_STEPS
            .iter()
            .map(|(name, argv)| Step {
                name: (*name).to_owned(),
                argv: argv.iter().map(|arg| (*arg).to_owned()).collect(),
            })
            .collect()
    }

    /// `iolab ARGS…`, as the user typed it after `--`.
    pub fn iolab(args: &[String]) -> Step {
        let mut argv = vec!["iolab".to_owned()];
        argv.extend(args.iter().cloned());
        Step { name: "iolab".to_owned(), argv }
    }
}

/// The `/vm/steps` file: one `step NAME COMMAND…` line per step, every word quoted for sh.
pub fn steps_script(steps: &[Step]) -> String {
    let mut script = String::new();
    for step in steps {
        let words: Vec<String> = std::iter::once(&step.name).chain(&step.argv).map(|word| sh_quote(word)).collect();
        script.push_str(&format!("step {}\n", words.join(" ")));
    }
    script
}

/// `word` in single quotes, where sh takes every character literally; a `'` inside becomes `'\''`
/// (close the quote, an escaped quote, reopen).
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The guest's final word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The exit status of the first step that failed.
    Fail(i32),
}

/// What one step printed and how it ended.
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    pub name: String,
    /// Lines on its standard error (and anything the kernel printed meanwhile).
    pub errors: Vec<String>,
    pub output: Vec<String>,
    /// None when the VM stopped before the step finished.
    pub exit: Option<i32>,
}

impl StepOutput {
    /// The step's standard output as JSON, if that is what it was.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.output.join("\n")).ok()
    }

    /// The step's last error line from iolab (`iolab: …`), which says why it failed.
    pub fn error(&self) -> Option<&str> {
        self.errors.iter().rev().find_map(|line| line.strip_prefix("iolab: "))
    }
}

/// What a line of console output is, for the one who relays it.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// A line to show as it is.
    Show,
    /// A line of a step's standard output, kept until the step ends.
    Kept,
    /// A step's output just ended: show it, or a note that it was JSON (read by the summary).
    OutputEnd,
}

/// What the guest kernel prints when a CPU has made no progress for many seconds: a task stuck
/// in the kernel (the soft-lockup watchdog) or a grace period that cannot end. An emulated guest
/// on a busy host has been seen to stall this way (CI, Debian's 6.1 under TCG: both CPUs stuck,
/// and nothing moved until the timeout); a guest that says it is stuck does not recover, so
/// waiting longer only costs time.
pub const STALL_SIGNS: &[&str] =
    &["watchdog: BUG: soft lockup", "rcu_preempt detected stalls", "rcu_sched detected stalls"];

/// Reads the console line by line (see the module doc) and keeps what the summary needs.
#[derive(Debug, Default)]
pub struct Console {
    pub kernel_release: Option<String>,
    pub steps: Vec<StepOutput>,
    pub verdict: Option<Verdict>,
    /// The guest kernel's first report that a CPU stopped making progress (see [`STALL_SIGNS`]).
    pub stall: Option<String>,
    /// Inside a step's output block.
    in_output: bool,
}

impl Console {
    pub fn line(&mut self, line: &str) -> Seen {
        if self.in_output {
            if line.starts_with("IOLAB-VM-OUTPUT-END ") {
                self.in_output = false;
                return Seen::OutputEnd;
            }
            if let Some(step) = self.steps.last_mut() {
                step.output.push(line.to_owned());
            }
            return Seen::Kept;
        }
        if line.starts_with("IOLAB-VM-OUTPUT-BEGIN ") {
            self.in_output = true;
            return Seen::Kept;
        }
        if self.stall.is_none() && STALL_SIGNS.iter().any(|sign| line.contains(sign)) {
            self.stall = Some(line.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("IOLAB-VM: ") {
            self.marker(rest);
        } else if let Some(step) = self.steps.last_mut()
            && step.exit.is_none()
        {
            step.errors.push(line.to_owned());
        }
        Seen::Show
    }

    fn marker(&mut self, rest: &str) {
        if let Some(release) = rest.strip_prefix("kernel ") {
            self.kernel_release = Some(release.trim().to_owned());
        } else if rest == "PASS" {
            self.verdict = Some(Verdict::Pass);
        } else if let Some(code) = rest.strip_prefix("FAIL (exit ").and_then(|rest| rest.strip_suffix(')')) {
            self.verdict = Some(Verdict::Fail(code.parse().unwrap_or(-1)));
        } else if let Some(rest) = rest.strip_prefix("step ") {
            // `step NAME: COMMAND…` starts a step, `step NAME exited N` ends it.
            if let Some((name, _command)) = rest.split_once(": ") {
                self.steps.push(StepOutput { name: name.to_owned(), ..StepOutput::default() });
            } else if let Some((_name, code)) = rest.rsplit_once(" exited ")
                && let Some(step) = self.steps.last_mut()
            {
                step.exit = code.trim().parse().ok();
            }
        }
    }

    /// The output of the step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepOutput> {
        self.steps.iter().find(|step| step.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_quoted_for_sh() {
        let steps = [Step::iolab(&["run".into(), "--model".into(), "it's".into()])];
        assert_eq!(steps_script(&steps), "step 'iolab' 'iolab' 'run' '--model' 'it'\\''s'\n");
    }

    #[test]
    fn console_notes_the_first_stall() {
        let mut console = Console::default();
        console.line("IOLAB-VM: step selftest: iolab selftest --format json");
        assert_eq!(console.stall, None);
        console.line("[   52.5] watchdog: BUG: soft lockup - CPU#0 stuck for 44s! [iolab:99]");
        console.line("[   80.5] watchdog: BUG: soft lockup - CPU#0 stuck for 71s! [iolab:99]");
        assert_eq!(
            console.stall.as_deref(),
            Some("[   52.5] watchdog: BUG: soft lockup - CPU#0 stuck for 44s! [iolab:99]")
        );
    }

    #[test]
    fn console_keeps_each_steps_output_and_the_verdict() {
        let mut console = Console::default();
        let lines = [
            "[    0.5] Run /init as init process",
            "IOLAB-VM: kernel 6.1.0-56-amd64",
            "IOLAB-VM: step selftest: iolab selftest --format json",
            "iolab: mounted tracefs at /sys/kernel/tracing",
            "IOLAB-VM-OUTPUT-BEGIN selftest",
            "{\"io_ok\": true,",
            " \"switches_ok\": false}",
            "IOLAB-VM-OUTPUT-END selftest",
            "IOLAB-VM: step selftest exited 1",
            "IOLAB-VM: FAIL (exit 1)",
        ];
        let seen: Vec<Seen> = lines.iter().map(|line| console.line(line)).collect();
        use Seen::*;
        assert_eq!(seen, [Show, Show, Show, Show, Kept, Kept, Kept, OutputEnd, Show, Show]);
        assert_eq!(console.kernel_release.as_deref(), Some("6.1.0-56-amd64"));
        assert_eq!(console.verdict, Some(Verdict::Fail(1)));
        let step = console.step("selftest").unwrap();
        assert_eq!(step.exit, Some(1));
        assert_eq!(step.error(), Some("mounted tracefs at /sys/kernel/tracing"));
        assert_eq!(step.json(), Some(serde_json::json!({"io_ok": true, "switches_ok": false})));
    }
}
