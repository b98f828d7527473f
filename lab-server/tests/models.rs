//! Every model, put through the same conversations: many clients at once, broken clients,
//! half-closed clients, every byte value, a client that never reads, more than 1024
//! connections, and running out of file descriptors.
//!
//! Models run in this process on a background thread, except `process` (fork is unsafe in a
//! multithreaded test harness) and the tests that measure the server's memory or limit its fds:
//! those run the `lab-serve` binary (see `support`).

mod support;

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::{sleep, spawn},
    time::Duration,
};

use socket2::{Domain, SockRef, Socket, Type};
use support::{Server, ServerProcess, connect, converse, payload, reply_to, round_trip};

/// The tests below are instantiated per model by a macro (so each has its own name in the test
/// output); this fails when a model is registered in `models::ALL` but not in the macro's list,
/// or listed in a different order.
#[test]
fn every_registered_model_is_tested_in_registry_order() {
    assert_eq!(TESTED, lab_server::model_names());
    assert!(lab_server::model("fork").is_none());
}

/// Every model says what it needs from the kernel exactly when it probes for something.
#[test]
fn models_that_need_a_kernel_feature_name_it() {
    for model in lab_server::models::ALL {
        match (model.needs, model.unsupported()) {
            (None, reason) => assert_eq!(reason, None, "{}: unsupported without needing anything", model.name),
            (Some(needs), Some(reason)) => assert!(reason.starts_with(needs), "{}: {reason}", model.name),
            (Some(_), None) => {}
        }
    }
}

/// Whether `model` can run on this kernel; if not, says why, and (outside CI) the test passes
/// without it.
fn runs_here(model: &str) -> bool {
    let reason = lab_server::model(model).expect("a model name").unsupported();
    if let Some(reason) = &reason {
        // CI's kernels have every feature: a model it cannot run there is a failure, not a skip.
        assert!(std::env::var_os("CI").is_none(), "{model} does not run in CI: {reason}");
        eprintln!("{model}: not run, unsupported on this kernel: {reason}");
    }
    reason.is_none()
}

/// 200 clients at once, 50 messages of 64 bytes each, every reply checked.
fn two_hundred_clients(model: &str) {
    let mut server = Server::start(model);
    converse(server.addr(), 200, 50, 64);
    server.assert_running();
}

/// Clients that vanish with a reset — mid-message, or with replies still unsent — cost the
/// server only that connection.
fn resets(model: &str) {
    let mut server = Server::start(model);
    let addr = server.addr();
    for i in 0..20 {
        let stream = connect(addr);
        (&stream).write_all(&payload(i, 32)).unwrap(); // Half a 64-byte message.
        reset(stream);
    }
    // Sends without reading until the kernel pushes back, so replies are queued; then resets.
    let stream = connect(addr);
    stream.set_nonblocking(true).unwrap();
    let chunk = payload(7, 16 * 1024);
    let mut sent = 0;
    while sent < 8 << 20 {
        match (&stream).write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    reset(stream);

    converse(addr, 5, 10, 64);
    server.assert_running();
}

/// Closes with SO_LINGER 0: the kernel sends RST instead of FIN.
fn reset(stream: TcpStream) {
    SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// A client that sends 300 KiB, shuts down its sending side, and only then reads: it gets every
/// byte back, then the server closes the connection.
fn half_close(model: &str) {
    let server = Server::start(model);
    let stream = connect(server.addr());
    let request = payload(3, 300 * 1024);
    let expected = reply_to(&request);
    let mut writer = stream.try_clone().unwrap();
    let sender = spawn(move || {
        writer.write_all(&request).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut reply = Vec::new();
    (&stream).read_to_end(&mut reply).unwrap(); // Ends only when the server closes.
    sender.join().unwrap();
    assert_eq!(reply.len(), expected.len());
    assert!(reply == expected, "the reply differs from the request uppercased");
}

/// Every byte value, four times over: exactly the 4 × 26 lowercase letters change.
fn binary(model: &str) {
    let server = Server::start(model);
    let mut stream = connect(server.addr());
    let request: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
    stream.write_all(&request).unwrap();
    let mut reply = vec![0; request.len()];
    stream.read_exact(&mut reply).unwrap();
    let changed: Vec<(u8, u8)> = request.iter().zip(&reply).filter(|(a, b)| a != b).map(|(&a, &b)| (a, b)).collect();
    assert_eq!(changed.len(), 4 * 26);
    assert!(changed.iter().all(|&(a, b)| a.is_ascii_lowercase() && b == a - 32));
}

/// How much one client sends without reading.
const HOG_BYTES: usize = 16 << 20;
/// How much the server may grow meanwhile: its bound is MAX_UNSENT (64 KiB) of replies plus a
/// 16 KiB buffer per connection; the rest is room for allocator noise. A server that buffered
/// the client's bytes would grow by most of HOG_BYTES.
const HOG_GROWTH_LIMIT_KIB: u64 = 4 * 1024;

/// A client sends 16 MiB without reading. The server stops reading from it — its memory does
/// not grow by more than a few buffers — and keeps serving everyone else. Then the client reads
/// and gets all 16 MiB back.
fn never_reading_client(model: &str) {
    let server = ServerProcess::spawn(model);
    let addr = server.addr;
    converse(addr, 20, 10, 64); // Warm up: the same traffic as below, before measuring.
    let before = server.peak_rss_kib();

    let hog = small_buffered_client(addr);
    let progress = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (mut writer, progress, done) = (hog.try_clone().unwrap(), progress.clone(), done.clone());
        spawn(move || {
            for chunk in hog_request().chunks(64 * 1024) {
                writer.write_all(chunk).unwrap();
                progress.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    wait_until_stuck_or_done(&progress, &done);
    let stuck_at = progress.load(Ordering::Relaxed);

    converse(addr, 20, 10, 64); // Everyone else is still served.
    let peak = server.peak_rss_kib();

    let mut reply = vec![0; HOG_BYTES];
    (&hog).read_exact(&mut reply).unwrap();
    sender.join().unwrap();
    assert!(reply == reply_to(&hog_request()), "the hog's reply differs from its request uppercased");
    assert!(
        peak - before < HOG_GROWTH_LIMIT_KIB,
        "{model}: peak RSS grew by {} KiB while a client sent {stuck_at} bytes without reading",
        peak - before
    );
}

fn hog_request() -> Vec<u8> {
    payload(99, HOG_BYTES)
}

/// A client with small socket buffers, so the kernel holds little of what it sends: the rest
/// has to wait in the client, or be buffered by the server.
fn small_buffered_client(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(support::TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(support::TIMEOUT)).unwrap();
    stream
}

/// Waits until the sender finished, or made no progress for 200 ms (it is blocked: the server
/// stopped reading). Either way is fine; the wait only gives an unbounded server time to show.
fn wait_until_stuck_or_done(progress: &AtomicUsize, done: &AtomicBool) {
    let (mut last, mut still) = (usize::MAX, 0);
    for _ in 0..600 {
        sleep(Duration::from_millis(50));
        let now = progress.load(Ordering::Relaxed);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        if done.load(Ordering::Relaxed) || still == 4 {
            return;
        }
    }
}

/// 1,100 connections open at once, one message each. In this process the server's fds and the
/// clients' share one table, so the server's reach past 2,000 — beyond select's FD_SETSIZE.
fn beyond_fd_setsize(model: &str) {
    let _fds = support::many_fds();
    let mut server = Server::start(model);
    let addr = server.addr();
    let mut streams: Vec<TcpStream> = (0..1100).map(|_| connect(addr)).collect();
    let requests: Vec<Vec<u8>> = (0..streams.len()).map(|i| payload(i as u64, 64)).collect();
    for (stream, request) in streams.iter_mut().zip(&requests) {
        stream.write_all(request).unwrap();
    }
    for (stream, request) in streams.iter_mut().zip(&requests) {
        let mut reply = vec![0; 64];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(reply, reply_to(request));
    }
    server.assert_running();
}

/// With RLIMIT_NOFILE at 24, 40 clients connect and send at once. The server accepts until it
/// runs out of fds and says so, once; then, as clients finish and their fds are freed, it takes
/// the rest from the backlog. Every client gets its reply, whichever order they come in.
fn out_of_fds(model: &str) {
    let mut server = ServerProcess::spawn_with_fd_limit(model, 24);
    let streams: Vec<TcpStream> = (0..40).map(|_| connect(server.addr)).collect();
    let requests: Vec<Vec<u8>> = (0..streams.len()).map(|i| payload(i as u64, 64)).collect();
    for (mut stream, request) in streams.iter().zip(&requests) {
        stream.write_all(request).unwrap();
    }
    // Before any client closes, the server has taken every fd it can get. (The process model's
    // parent holds one connection at a time: it never runs out, and never says so.)
    // (io-uring-sqpoll accepts into registered files, a table the kernel sizes by the same limit,
    // and only while it has a free slot: it never sees an accept fail either.)
    if !["process", "io-uring-sqpoll"].contains(&model) {
        assert_eq!(
            server.next_stderr_line(),
            "lab-server: accept failed: Too many open files (os error 24); backing off (logged once)"
        );
    }
    // Each client reads its reply and leaves on its own thread: a client whose connection waits
    // in one listener's backlog (epoll-reuseport has one per thread) must not wait for another
    // client queued behind it on a different listener.
    std::thread::scope(|scope| {
        for (mut stream, request) in streams.into_iter().zip(&requests) {
            scope.spawn(move || {
                let mut reply = vec![0; 64];
                stream.read_exact(&mut reply).unwrap();
                assert_eq!(reply, reply_to(request));
                drop(stream); // Frees the server's fd for a client still waiting in a backlog.
            });
        }
    });
    round_trip(&mut connect(server.addr), b"still here");
    server.assert_running();
    assert_eq!(server.stop(), Vec::<String>::new()); // Logged once, and nothing else.
}

/// A module of tests per model, and [`TESTED`]: the models it was given, in order.
macro_rules! model_tests {
    ($($module:ident => $name:literal),* $(,)?) => {
        const TESTED: &[&str] = &[$($name),*];
        $(
        mod $module {
            #[test]
            fn two_hundred_clients_fifty_messages_each() {
                if super::runs_here($name) {
                    super::two_hundred_clients($name);
                }
            }
            #[test]
            fn resets_cost_only_their_connection() {
                if super::runs_here($name) {
                    super::resets($name);
                }
            }
            #[test]
            fn half_closed_client_gets_its_whole_reply() {
                if super::runs_here($name) {
                    super::half_close($name);
                }
            }
            #[test]
            fn only_lowercase_ascii_changes() {
                if super::runs_here($name) {
                    super::binary($name);
                }
            }
            #[test]
            fn client_that_never_reads_is_bounded() {
                if super::runs_here($name) {
                    super::never_reading_client($name);
                }
            }
            #[test]
            fn serves_1100_connections() {
                if super::runs_here($name) {
                    super::beyond_fd_setsize($name);
                }
            }
            #[test]
            fn survives_running_out_of_fds() {
                if super::runs_here($name) {
                    super::out_of_fds($name);
                }
            }
            #[test]
            fn slow_client_delays_no_one() {
                if super::runs_here($name) {
                    super::slow_client_delays_no_one($name);
                }
            }
        }
        )*
    };
}

model_tests! {
    process => "process",
    thread => "thread",
    coroutine => "coroutine",
    coroutine_mt => "coroutine-mt",
    select => "select",
    poll => "poll",
    epoll => "epoll",
    epoll_et => "epoll-et",
    io_uring => "io-uring",
    io_uring_multishot => "io-uring-multishot",
    io_uring_sqpoll => "io-uring-sqpoll",
    epoll_reuseport => "epoll-reuseport",
}

/// One process per connection, and every one reaped when its client is done: zombies would
/// stay listed as the server's children.
#[test]
fn process_model_forks_per_connection_and_reaps_every_child() {
    let server = ServerProcess::spawn("process");
    let mut streams: Vec<TcpStream> = (0..10).map(|_| connect(server.addr)).collect();
    for stream in &mut streams {
        round_trip(stream, b"are you a process of your own?");
    }
    assert_eq!(server.children().len(), 10);
    drop(streams);
    let mut children = server.children();
    for _ in 0..3000 {
        if children.is_empty() {
            break;
        }
        sleep(Duration::from_millis(10)); // The children exit once they read EOF.
        children = server.children();
    }
    assert_eq!(children, []);
}

/// p99 round-trip latency (µs) of `clients` clients, each making `trips` round trips in turn.
fn p99_latency_us(addr: SocketAddr, clients: usize, trips: usize) -> u128 {
    let mut samples: Vec<u128> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut stream = connect(addr);
                    (0..trips)
                        .map(|t| {
                            let message = payload((c * 1000 + t) as u64, 64);
                            let start = std::time::Instant::now();
                            round_trip(&mut stream, &message);
                            start.elapsed().as_micros()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    samples.sort_unstable();
    samples[samples.len() * 99 / 100]
}

/// A client that trickles one byte every 100 ms must not hold up anyone else: a multiplexed
/// server that waited for its whole message would stall every other client for 100 ms a byte.
/// (The blocking models pass trivially: the slow client has a thread or process of its own.)
/// The others' p99 is measured without and with it; with it, it must stay far below 100 ms.
fn slow_client_delays_no_one(model: &str) {
    let mut server = Server::start(model);
    let addr = server.addr();
    let without = p99_latency_us(addr, 8, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = Arc::clone(&stop);
        spawn(move || {
            let mut slow = connect(addr);
            let mut echoed = [0u8; 1];
            while !stop.load(Ordering::Relaxed) {
                slow.write_all(b"s").unwrap();
                slow.read_exact(&mut echoed).unwrap();
                assert_eq!(&echoed, b"S");
                sleep(Duration::from_millis(100));
            }
        })
    };
    sleep(Duration::from_millis(150)); // the slow client is connected and mid-trickle
    let with = p99_latency_us(addr, 8, 200);
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    eprintln!("{model}: others' p99 {without} µs without the slow client, {with} µs with it");
    assert!(with < 50_000, "{model}: the slow client held others up: p99 {with} µs (without it: {without} µs)");
    server.assert_running();
}

/// epoll-reuseport: a thread per CPU, each with its own listener, and the kernel spreads the
/// connections over them: every thread gets some of 200.
#[test]
fn epoll_reuseport_spreads_connections_over_a_thread_per_cpu() {
    let mut server = Server::start("epoll-reuseport");
    converse(server.addr(), 200, 5, 64);
    let per_thread = lab_server::models::accepted_per_thread(server.addr()).expect("the server's counts");
    let cpus = std::thread::available_parallelism().unwrap().get();
    eprintln!("epoll-reuseport: connections accepted per thread: {per_thread:?}");
    assert_eq!(per_thread.len(), cpus, "a thread per CPU");
    assert_eq!(per_thread.iter().sum::<u64>(), 200);
    assert!(cpus == 1 || per_thread.iter().all(|&n| n > 0), "the kernel spread them: {per_thread:?}");
    server.assert_running();
}
