//! One busy connection: a closed loop of send, read the whole reply, check it, repeat.
//!
//! Each connection is one tokio task. It sends its message and reads the reply at the same time
//! (a message larger than the socket buffers would otherwise deadlock against a server that
//! echoes as it reads), compares the reply chunk by chunk against the expected bytes as it
//! arrives, and records the latency. Nothing is allocated per message: the payload is a slice of
//! a shared pattern, the reply lands in one reusable chunk buffer, and latencies are batched
//! locally and merged into the run's histogram a batch at a time.
//!
//! At its first error a connection counts it and stops; in lockstep mode it still waits at every
//! round's barrier, so the others are not left waiting for it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Barrier,
    time::timeout,
};

use super::payload::Payload;
use super::report::{ErrorCounts, Failure};

/// The largest read the generator does; replies larger than this arrive in several reads.
const CHUNK: usize = 16 * 1024;

/// What every busy connection shares.
pub(crate) struct Shared {
    pub payload: Payload,
    pub messages: usize,
    pub timeout: Duration,
    /// Every busy connection waits here, then all start together.
    pub start: Barrier,
    /// In lockstep mode, every connection waits here before each message.
    pub round: Option<Barrier>,
    /// Per-message latencies, in nanoseconds.
    pub latencies: Mutex<Histogram<u64>>,
    /// With [`super::LoadSpec::pause_between_phases`]: every connection waits here after its
    /// last message, and the last to arrive pauses the run (see `super::pause`) before any closes.
    pub sent: Option<Barrier>,
}

/// What one busy connection did.
#[derive(Default)]
pub(crate) struct Outcome {
    pub messages_ok: u64,
    pub errors: ErrorCounts,
    pub started: Option<Instant>,
    pub last_reply: Option<Instant>,
}

/// Runs connection `id`'s closed loop, then closes it.
pub(crate) async fn drive(id: usize, stream: TcpStream, shared: Arc<Shared>) -> Outcome {
    let mut out = Outcome::default();
    let mut stream = Some(stream);
    let mut chunk = vec![0u8; shared.payload.len().min(CHUNK)];
    let mut batch = Batch::new(&shared.latencies);
    shared.start.wait().await;
    out.started = Some(Instant::now());
    for k in 0..shared.messages {
        if let Some(round) = &shared.round {
            round.wait().await;
        }
        let Some(conn) = stream.as_mut() else {
            if shared.round.is_some() {
                continue; // stopped, but still keeps the others' rounds in step
            }
            break;
        };
        let (message, expected) = shared.payload.message(id, k);
        let sent_at = Instant::now();
        let result = timeout(
            shared.timeout,
            exchange(conn, message, expected, &mut chunk),
        )
        .await;
        match result.unwrap_or(Err(Failure::Timeout)) {
            Ok(()) => {
                let now = Instant::now();
                batch.record(now - sent_at);
                out.messages_ok += 1;
                out.last_reply = Some(now);
            }
            Err(failure) => {
                out.errors.count(failure);
                stream = None; // dropping it closes the connection
            }
        }
    }
    batch.flush();
    if let Some(sent) = &shared.sent {
        if sent.wait().await.is_leader() {
            super::pause("sent");
        }
    }
    if let Some(conn) = stream
        && let Err(failure) = close(conn, shared.timeout).await
    {
        out.errors.count(failure);
    }
    out
}

/// Sends `message` while reading and checking the reply against `expected`.
async fn exchange(
    conn: &mut TcpStream,
    message: &[u8],
    expected: &[u8],
    chunk: &mut [u8],
) -> Result<(), Failure> {
    let (mut reader, mut writer) = conn.split();
    let send = async { writer.write_all(message).await.map_err(Failure::from) };
    let receive = async {
        let mut got = 0;
        while got < expected.len() {
            // Never read past this reply: later bytes belong to no message.
            let want = chunk.len().min(expected.len() - got);
            let n = reader
                .read(&mut chunk[..want])
                .await
                .map_err(Failure::from)?;
            if n == 0 {
                return Err(Failure::Eof);
            }
            if chunk[..n] != expected[got..got + n] {
                return Err(Failure::Mismatch);
            }
            got += n;
        }
        Ok(())
    };
    tokio::try_join!(send, receive).map(|_| ())
}

/// Closes cleanly: shut down our side, then expect the server to close its side with no more
/// bytes. Used for idle connections too.
pub(crate) async fn close(mut conn: TcpStream, limit: Duration) -> Result<(), Failure> {
    let goodbye = async {
        conn.shutdown().await?;
        let mut byte = [0u8; 1];
        conn.read(&mut byte).await
    };
    match timeout(limit, goodbye).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(_)) => Err(Failure::Mismatch),
        Ok(Err(e)) => Err(Failure::from(e)),
        Err(_) => Err(Failure::Timeout),
    }
}

/// Latency samples held locally, so the shared histogram is locked once per batch.
struct Batch<'a> {
    samples: [u64; 64],
    len: usize,
    into: &'a Mutex<Histogram<u64>>,
}

impl<'a> Batch<'a> {
    fn new(into: &'a Mutex<Histogram<u64>>) -> Self {
        Batch {
            samples: [0; 64],
            len: 0,
            into,
        }
    }

    fn record(&mut self, latency: Duration) {
        self.samples[self.len] = latency.as_nanos().try_into().unwrap_or(u64::MAX);
        self.len += 1;
        if self.len == self.samples.len() {
            self.flush();
        }
    }

    fn flush(&mut self) {
        // A poisoned lock only means another task panicked; its samples are still valid.
        let mut histogram = self.into.lock().unwrap_or_else(|e| e.into_inner());
        for &ns in &self.samples[..self.len] {
            histogram.saturating_record(ns);
        }
        self.len = 0;
    }
}
