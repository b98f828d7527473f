//! The load generator against small servers written here, each one thread per connection:
//! one that speaks the protocol, and others that break it in one precise way, so every count
//! in the report can be checked exactly.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use lab_load::*;
use serde_json::Value;

/// How a test server answers each connection.
#[derive(Clone)]
enum Behaviour {
    /// The protocol: uppercase whatever arrives, as it arrives.
    Uppercase,
    /// The protocol, but each reply goes out 7 bytes at a time.
    Trickle,
    /// The protocol, except that byte number `n` of each connection's replies is wrong.
    CorruptByte(usize),
    /// Read one `n`-byte message, then reset the connection.
    ResetAfter(usize),
    /// Read one `n`-byte message, send back half the reply, then close.
    CloseMidReply(usize),
    /// Read everything, reply nothing.
    Silent,
    /// The protocol, plus one byte nobody asked for when the client closes.
    ExtraByteAtClose,
    /// Reads whole `payload`-byte messages and tracks how far apart the connections get.
    Rounds { payload: usize, progress: Arc<Mutex<Progress>> },
}

/// Messages read per connection, and the largest gap seen between the most and least advanced.
struct Progress {
    read: Vec<usize>,
    widest_gap: usize,
}

struct TestServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(behaviour: Behaviour) -> TestServer {
        let listener = lab_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = thread::spawn({
            let (accepted, stop) = (accepted.clone(), stop.clone());
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let index = accepted.fetch_add(1, Ordering::SeqCst);
                    let behaviour = behaviour.clone();
                    thread::spawn(move || serve(stream, index, behaviour));
                }
            }
        });
        TestServer { addr, accepted, stop, acceptor: Some(acceptor) }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn spec(&self, connections: usize, messages_per_connection: usize, payload_bytes: usize) -> LoadSpec {
        let mut spec = LoadSpec::new(self.addr);
        spec.workload = Workload::free(connections, messages_per_connection).with_payload(payload_bytes);
        spec
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the acceptor so it sees `stop`
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
    }
}

/// Serves one connection until the client closes it (or 10 s of silence).
fn serve(mut stream: TcpStream, index: usize, behaviour: Behaviour) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0; // bytes of this connection's stream answered so far
    match behaviour.clone() {
        Behaviour::ResetAfter(n) => {
            if stream.read_exact(&mut buf[..n]).is_ok() {
                socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
            }
        }
        Behaviour::CloseMidReply(n) => {
            if stream.read_exact(&mut buf[..n]).is_ok() {
                buf[..n].make_ascii_uppercase();
                let _ = stream.write_all(&buf[..n / 2]);
            }
        }
        Behaviour::Rounds { payload, progress } => {
            while stream.read_exact(&mut buf[..payload]).is_ok() {
                {
                    let mut p = progress.lock().unwrap();
                    p.read[index] += 1;
                    let gap = p.read.iter().max().unwrap() - p.read.iter().min().unwrap();
                    p.widest_gap = p.widest_gap.max(gap);
                }
                if index == 0 {
                    thread::sleep(Duration::from_millis(1)); // one slow connection
                }
                buf[..payload].make_ascii_uppercase();
                if stream.write_all(&buf[..payload]).is_err() {
                    return;
                }
            }
        }
        _ => loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if matches!(behaviour, Behaviour::Silent) {
                continue;
            }
            let reply = &mut buf[..n];
            reply.make_ascii_uppercase();
            if let Behaviour::CorruptByte(wrong) = behaviour
                && (offset..offset + n).contains(&wrong)
            {
                reply[wrong - offset] ^= 1;
            }
            offset += n;
            let sent = if matches!(behaviour, Behaviour::Trickle) {
                reply.chunks(7).try_for_each(|piece| stream.write_all(piece))
            } else {
                stream.write_all(reply)
            };
            if sent.is_err() {
                return;
            }
        },
    }
    if matches!(behaviour, Behaviour::ExtraByteAtClose) {
        let _ = stream.write_all(b"!");
    }
}

fn no_errors() -> ErrorCounts {
    ErrorCounts::default()
}

#[test]
fn every_message_comes_back_right() {
    let server = TestServer::start(Behaviour::Uppercase);
    let report = run(&server.spec(8, 50, 100)).unwrap();
    assert_eq!(report.errors, no_errors());
    assert_eq!(report.messages_ok, 8 * 50);
    assert_eq!(report.connections_open, 8);
    assert_eq!(server.accepted(), 8);
    let l = &report.latency_us;
    assert!(0.0 < l.min && l.min <= l.p50, "{l:?}");
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, "{l:?}");
    assert!(l.min <= l.mean && l.mean <= l.max, "{l:?}");
    assert!(report.wall_seconds > 0.0);
    assert_eq!(report.msgs_per_sec, 400.0 / report.wall_seconds);
}

#[test]
fn replies_arriving_in_pieces_are_put_back_together() {
    let server = TestServer::start(Behaviour::Trickle);
    let report = run(&server.spec(3, 20, 1000)).unwrap();
    assert_eq!(report.errors, no_errors());
    assert_eq!(report.messages_ok, 3 * 20);
}

#[test]
fn a_message_larger_than_the_socket_buffers_does_not_deadlock() {
    // The client must read the reply while it is still sending: with a send-then-read loop,
    // both sides would fill their buffers and wait for each other forever.
    let server = TestServer::start(Behaviour::Uppercase);
    let report = run(&server.spec(2, 2, 16 << 20)).unwrap();
    assert_eq!(report.errors, no_errors());
    assert_eq!(report.messages_ok, 4);
}

#[test]
fn one_wrong_reply_byte_is_one_mismatch_and_stops_that_connection() {
    // Byte 100 of each connection's stream lies in its second 64-byte message.
    let server = TestServer::start(Behaviour::CorruptByte(100));
    let report = run(&server.spec(4, 5, 64)).unwrap();
    assert_eq!(report.errors, ErrorCounts { mismatch: 4, ..no_errors() });
    assert_eq!(report.messages_ok, 4);
}

#[test]
fn a_reset_is_counted_as_reset() {
    let server = TestServer::start(Behaviour::ResetAfter(64));
    let report = run(&server.spec(5, 3, 64)).unwrap();
    assert_eq!(report.errors, ErrorCounts { reset: 5, ..no_errors() });
    assert_eq!(report.messages_ok, 0);
}

#[test]
fn a_server_closing_mid_reply_is_counted_as_eof() {
    let server = TestServer::start(Behaviour::CloseMidReply(64));
    let report = run(&server.spec(5, 3, 64)).unwrap();
    assert_eq!(report.errors, ErrorCounts { eof: 5, ..no_errors() });
    assert_eq!(report.messages_ok, 0);
}

#[test]
fn a_silent_server_times_out() {
    let server = TestServer::start(Behaviour::Silent);
    let spec = LoadSpec { timeout: Duration::from_millis(200), ..server.spec(3, 2, 64) };
    let report = run(&spec).unwrap();
    assert_eq!(report.errors, ErrorCounts { timeout: 3, ..no_errors() });
    assert_eq!(report.messages_ok, 0);
    assert_eq!(report.wall_seconds, 0.0);
    assert_eq!(report.latency_us, Latency::default());
}

#[test]
fn bytes_sent_after_the_last_reply_are_a_mismatch() {
    let server = TestServer::start(Behaviour::ExtraByteAtClose);
    let report = run(&server.spec(2, 3, 64)).unwrap();
    assert_eq!(report.errors, ErrorCounts { mismatch: 2, ..no_errors() });
    assert_eq!(report.messages_ok, 6);
}

#[test]
fn idle_connections_are_opened_held_and_closed() {
    let server = TestServer::start(Behaviour::Uppercase);
    let mut spec = server.spec(3, 4, 64);
    spec.workload.idle = 20;
    let report = run(&spec).unwrap();
    assert_eq!(server.accepted(), 23);
    assert_eq!((report.connections_open, report.idle_open), (3, 20));
    assert_eq!(report.messages_ok, 12);
    assert_eq!(report.errors, no_errors());
}

#[test]
fn in_lockstep_no_connection_gets_a_message_ahead() {
    // Connection 0 is slow; in lockstep the others must wait for it before every message.
    let progress = Arc::new(Mutex::new(Progress { read: vec![0; 6], widest_gap: 0 }));
    let server = TestServer::start(Behaviour::Rounds { payload: 32, progress: progress.clone() });
    let mut spec = server.spec(6, 20, 32);
    spec.workload.lockstep = true;
    let report = run(&spec).unwrap();
    assert_eq!(report.errors, no_errors());
    assert_eq!(report.messages_ok, 6 * 20);
    let progress = progress.lock().unwrap();
    assert_eq!(progress.read, vec![20; 6]);
    assert_eq!(progress.widest_gap, 1);
}

#[test]
fn a_non_loopback_address_is_refused() {
    let spec = LoadSpec::new("192.0.2.1:7".parse().unwrap());
    let error = run(&spec).unwrap_err().to_string();
    assert_eq!(error, "refusing to send load to non-loopback address 192.0.2.1:7 (use --allow-remote)");
}

#[test]
fn nothing_listening_is_an_error() {
    // A port that was free a moment ago and has no listener now: std's bind is enough to pick it.
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut spec = LoadSpec::new(addr);
    spec.workload.connections = 3;
    let error = run(&spec).unwrap_err();
    assert_eq!(error.to_string(), format!("could not open any connection to {addr}: 3 refused"));
}

#[test]
fn too_many_connections_for_the_fd_limit_fail_before_connecting() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    let listener = lab_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut spec = LoadSpec::new(listener.local_addr().unwrap());
    (spec.workload.connections, spec.workload.idle) = (limit.rlim_max as usize, 1);
    let error = run(&spec).unwrap_err().to_string();
    assert!(error.contains("file descriptors"), "{error}");
    assert!(error.contains("ulimit -n"), "{error}");
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn the_report_survives_a_json_round_trip() {
    let server = TestServer::start(Behaviour::Uppercase);
    let report = run(&server.spec(2, 10, 64)).unwrap();
    let json = serde_json::to_string(&report).unwrap();
    let back: LoadReport = serde_json::from_str(&json).unwrap();
    // serde_json may parse a float one unit in the last place off; everything else is exact.
    assert!(same(&serde_json::to_value(&back).unwrap(), &serde_json::to_value(&report).unwrap()));
    assert_eq!(back.messages_ok, 20);
    assert_eq!(back.errors, report.errors);
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= x.abs() * 1e-15
        }
        _ => a == b,
    }
}
