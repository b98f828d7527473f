//! What a child prints, as iolab reads it: its lines on a channel, or its last few lines kept
//! for an error message; and how it ended, in words.

use std::{
    collections::VecDeque,
    io::{BufRead as _, BufReader},
    os::unix::process::ExitStatusExt as _,
    process::ExitStatus,
    sync::{
        Arc, Condvar, Mutex,
        mpsc::{self, Receiver},
    },
    time::Duration,
};

/// Its stdout, line by line, on a channel, read by a thread of ours.
pub(super) fn read_lines(from: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The last [`TAIL_LINES`] lines a child printed, and whether its output has reached its end.
#[derive(Clone, Default)]
pub struct Tail(Arc<(Mutex<TailState>, Condvar)>);

#[derive(Default)]
struct TailState {
    lines: VecDeque<String>,
    open: usize,
}

pub const TAIL_LINES: usize = 5;

impl Tail {
    /// Reads `from` to its end in a thread of its own. The thread ends when every process of
    /// the tree has closed the stream (they are killed by [`Child::stop`] at the latest).
    /// Drained streams count as one output: [`Tail::lines`] waits for all of them.
    pub(super) fn drain(&self, from: impl std::io::Read + Send + 'static) {
        let shared = Arc::clone(&self.0);
        shared.0.lock().unwrap_or_else(|e| e.into_inner()).open += 1;
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                let mut state = shared.0.lock().unwrap_or_else(|e| e.into_inner());
                if state.lines.len() == TAIL_LINES {
                    state.lines.pop_front();
                }
                state.lines.push_back(text);
                line.clear();
            }
            shared.0.lock().unwrap_or_else(|e| e.into_inner()).open -= 1;
            shared.1.notify_all();
        });
    }

    /// The last lines, once the output has ended or `wait` has passed (a stopped child's last
    /// words may still be in the pipe).
    pub fn lines(&self, wait: Duration) -> Vec<String> {
        let (lock, ended) = &*self.0;
        let state = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = ended.wait_timeout_while(state, wait, |s| s.open > 0).unwrap_or_else(|e| e.into_inner());
        state.lines.iter().cloned().collect()
    }
}

pub(super) fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(sig) => format!("killed by signal {sig} ({})", signal_name(sig)),
        None => status.to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}
