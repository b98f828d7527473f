//! Sections 3 and 5: are the models real servers, and is the load generator fast enough to tell?
//!
//! The reference is `lab-bench/echo_epoll.c`, the smallest C epoll server that speaks the protocol,
//! compiled here with `gcc -O2` into a temporary folder. It runs in the same rounds as the `epoll`
//! and `coroutine-mt` models (and the fastest model of section 1, if that is another one), all
//! untraced, all driven by the same load generator through the bench's harness.
//!
//! The generator is one thread; on a 2-core machine it shares the CPU with the server. It is
//! not the bottleneck if, driving the fastest model, it still has CPU to spare (its share of a
//! core, from wait4, is below 0.9), and if it drives the C server at least as fast as the fastest
//! model goes (the headroom).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::{
    harness::{self, Target, Watcher},
    paired::{Verdict, order, ratios},
};
use lab_load::Workload;
use lab_measure::process::{self, Spawn, Stderr, Stdout};
use lab_report::results::stats::{Summary, summarize};

/// Rust models must reach this share of the C server's throughput.
pub const TARGET_VS_C: f64 = 0.90;
/// The generator must use less than this share of its one core while driving the fastest model.
pub const TARGET_GENERATOR_SHARE: f64 = 0.90;
/// The generator must drive the C server at least this much faster than the fastest model goes.
pub const TARGET_HEADROOM: f64 = 1.0;

/// The reference server's source, embedded so that `iolab bench` works from any directory.
const ECHO_EPOLL_C: &str = include_str!("../echo_epoll.c");
pub const C_NAME: &str = "C echo_epoll";

#[derive(Clone, Debug, Serialize)]
pub struct Contender {
    pub server: String,
    pub msgs_per_sec: Summary,
    /// Throughput ÷ the C server's in the same round.
    pub vs_c: Option<Summary>,
    /// Target checked for this row: the models the issue names.
    pub verdict: Option<Verdict>,
    /// Load generator: share of one core over its life, and CPU µs per message.
    pub generator_share: Summary,
    pub generator_us_per_msg: Summary,
    /// The server's share of one core (of the cores), over the same time.
    pub server_share: Summary,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContendersSection {
    pub contenders: Vec<Contender>,
    /// Why the C server is missing, if it is.
    pub c_note: Option<String>,
    /// Section 3.
    pub generator: GeneratorHeadroom,
}

#[derive(Clone, Debug, Serialize)]
pub struct GeneratorHeadroom {
    pub fastest_model: String,
    /// The generator's CPU share while it drove the fastest model.
    pub share: f64,
    pub share_verdict: Verdict,
    /// C server throughput ÷ fastest model throughput, per round.
    pub headroom: Option<Summary>,
    pub headroom_verdict: Verdict,
}

/// Compiles the reference server into `dir`; the error says what to install or what gcc said.
fn build_c_server(dir: &Path) -> Result<PathBuf> {
    let gcc = process::which("gcc").context("gcc is not installed: apt install gcc")?;
    let source = dir.join("echo_epoll.c");
    let binary = dir.join("echo_epoll");
    std::fs::write(&source, ECHO_EPOLL_C)?;
    let mut compile = Spawn::program(&gcc)
        .args(["-O2".as_ref(), "-o".as_ref(), binary.as_os_str(), source.as_os_str()])
        .stdout(Stdout::Null)
        .stderr(Stderr::Tail)
        .own_group() // gcc's cc1, as and ld go with it
        .start()?;
    if !compile.wait()?.status.success() {
        let said = compile.tail().map(|t| t.lines(std::time::Duration::from_secs(1))).unwrap_or_default();
        bail!("gcc failed: {}", said.first().map_or("", String::as_str));
    }
    Ok(binary)
}

/// `fastest`: the model with the highest untraced throughput in section 1, if it ran.
pub fn contenders(
    load: Workload,
    rounds: usize,
    fastest: Option<&str>,
    step: &mut dyn FnMut(String),
) -> Result<ContendersSection> {
    // Removed when dropped, at the end of the section (the C server has exited by then).
    let dir = tempfile::Builder::new().prefix("iolab-bench-").tempdir().context("creating a temporary folder")?;
    let (mut targets, c_note) = match build_c_server(dir.path()) {
        Ok(path) => (vec![Target::Program { name: C_NAME.into(), path }], None),
        Err(err) => (vec![], Some(format!("{err:#}"))),
    };
    let has_c = targets.len();
    let mut models = vec!["epoll", "coroutine-mt"];
    let fastest = fastest.unwrap_or("epoll");
    if !models.contains(&fastest) {
        models.push(fastest);
    }
    targets.extend(models.iter().map(|m| Target::Model((*m).to_owned())));

    // outcomes[target][round]
    let mut outcomes: Vec<Vec<harness::Outcome>> = vec![Vec::new(); targets.len()];
    for round in 0..rounds {
        for i in order(targets.len(), round) {
            lab_measure::interrupt::check()?;
            step(format!("{}, round {}/{rounds}", targets[i].name(), round + 1));
            outcomes[i].push(harness::serve_and_load(&targets[i], Watcher::Nobody, load)?);
        }
    }
    let rate = |o: &harness::Outcome| o.report.msgs_per_sec;
    let rates: Vec<Vec<f64>> = outcomes.iter().map(|runs| runs.iter().map(rate).collect()).collect();
    let contenders: Vec<Contender> = targets
        .iter()
        .zip(&outcomes)
        .enumerate()
        .map(|(i, (target, runs))| {
            let vs_c = (has_c == 1 && i > 0).then(|| ratios(&rates[i], &rates[0]));
            let named = matches!(target.name(), "epoll" | "coroutine-mt");
            Contender {
                server: target.name().to_owned(),
                msgs_per_sec: summarize(&rates[i]),
                verdict: vs_c.filter(|_| named).map(|r| Verdict::at_least(r.median, TARGET_VS_C)),
                vs_c,
                generator_share: summarize(&runs.iter().map(harness::Outcome::generator_share).collect::<Vec<_>>()),
                generator_us_per_msg: summarize(
                    &runs
                        .iter()
                        .map(|o| o.generator_cpu_ms * 1e3 / o.report.messages_ok.max(1) as f64)
                        .collect::<Vec<_>>(),
                ),
                server_share: summarize(&runs.iter().map(harness::Outcome::server_share).collect::<Vec<_>>()),
            }
        })
        .collect();
    let fastest_at = targets.iter().position(|t| t.name() == fastest).unwrap_or(has_c);
    let share = contenders[fastest_at].generator_share.median;
    let headroom = (has_c == 1).then(|| ratios(&rates[0], &rates[fastest_at]));
    let generator = GeneratorHeadroom {
        fastest_model: fastest.to_owned(),
        share,
        share_verdict: Verdict::below(share, TARGET_GENERATOR_SHARE),
        headroom_verdict: match headroom {
            Some(h) => Verdict::at_least(h.median, TARGET_HEADROOM),
            None => Verdict::NotRun(c_note.clone().unwrap_or_default()),
        },
        headroom,
    };
    Ok(ContendersSection { contenders, c_note, generator })
}
