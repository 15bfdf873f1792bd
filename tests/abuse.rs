//! Hostile and careless clients: every promise of README's limits table, held with real sockets.
//! Each test asserts a figure (bytes, counts, CPU time), not just that the server survived.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{chat_line, Client, TestServer, TIMEOUT};

/// Connects up to `count` clients and reads each one's first line: the greeting or a refusal.
fn connect_many(server: &TestServer, count: usize) -> (Vec<Client>, usize) {
    let mut greeted = Vec::new();
    let mut refused = 0;
    for _ in 0..count {
        let mut client = Client::connect(server.addr());
        let first = client.next_line();
        if first.starts_with("[!] server full") {
            client.expect_closed();
            refused += 1;
        } else {
            assert!(first.starts_with("Welcome to chatd"), "{first}");
            greeted.push(client);
        }
    }
    (greeted, refused)
}

#[test]
fn out_of_descriptors_refuses_cleanly_never_spins_and_recovers() {
    // 64 descriptors, 30 of them held: the server runs out long before --max-clients.
    let mut server = TestServer::start_with_fd_limit(64, 30, &["--max-clients", "1000"]);
    let started = Instant::now();
    let (mut greeted, refused) = connect_many(&server, 60);
    assert!(
        refused > 0,
        "no connection was refused ({} greeted)",
        greeted.len()
    );
    assert!(!greeted.is_empty());
    eprintln!(
        "{} greeted, {refused} refused at the descriptor limit",
        greeted.len()
    );
    // Idle at the limit: CPU time must not climb (a spinning accept loop burns a whole core).
    let before = server.cpu_time();
    let idle_from = Instant::now();
    while idle_from.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let burnt = server.cpu_time() - before;
    assert!(
        burnt < Duration::from_millis(200),
        "{burnt:?} of CPU in a second of idling at the limit"
    );
    // Free some descriptors: new clients get in again.
    greeted.truncate(greeted.len() / 2);
    let deadline = Instant::now() + TIMEOUT;
    let mut newcomer = loop {
        let mut client = Client::connect(server.addr());
        if client.next_line().starts_with("Welcome to chatd") {
            break client;
        }
        assert!(
            Instant::now() < deadline,
            "no room again after closing connections"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    newcomer.join("newcomer");
    let errors = server
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count();
    // At most one a second (plus the first).
    let allowed = started.elapsed().as_secs() + 1;
    assert!(
        errors as u64 <= allowed,
        "{errors} accept errors logged in {:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_that_connects_and_resets_two_thousand_times_leaves_the_others_served() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let before = server.memory().rss;
    for n in 0..2000 {
        let socket = TcpStream::connect(server.addr()).expect("connect");
        if n % 2 == 0 {
            // An RST instead of a FIN: close with data unread.
            rustix::net::sockopt::set_socket_linger(&socket, Some(Duration::ZERO))
                .expect("SO_LINGER");
        }
        drop(socket);
    }
    alice.send_line("still here");
    bob.expect_line(chat_line("alice", "still here"));
    let after = server.memory().rss;
    assert!(
        after < before + 4 * 1024 * 1024,
        "RSS grew from {before} to {after}"
    );
}

/// The 99th percentile of `samples`.
fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

#[test]
fn a_flooder_is_slowed_without_loss_and_a_paced_sender_beside_it_stays_fast() {
    const FLOOD: usize = 40;
    let server = TestServer::start(&[]);
    let mut flooder = server.join("flooder");
    let mut paced = server.join("paced");
    let mut reader = server.join("reader");
    // The flooder writes everything at once; the server reads it at the allowed rate.
    let flood: String = (0..FLOOD).map(|n| format!("flood {n}\n")).collect();
    let flood_started = Instant::now();
    flooder.send_raw(flood.as_bytes());
    let mut latencies = Vec::new();
    let mut flood_seen = 0;
    for n in 0..10 {
        let text = format!("paced {n}");
        let sent = Instant::now();
        paced.send_line(&text);
        // Flood lines may arrive meanwhile; the paced line must not wait behind them.
        loop {
            let line = reader.next_line();
            if line.ends_with(&format!("paced > {text}")) {
                latencies.push(sent.elapsed());
                break;
            }
            assert!(
                line.ends_with(&format!("flooder > flood {flood_seen}")),
                "out of order: {line}"
            );
            flood_seen += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    while flood_seen < FLOOD {
        let line = reader.next_line();
        assert!(
            line.ends_with(&format!("flooder > flood {flood_seen}")),
            "lost or out of order: {line}"
        );
        flood_seen += 1;
    }
    let flood_took = flood_started.elapsed();
    let p99 = p99(&mut latencies);
    eprintln!("paced p99 {p99:?}; {FLOOD} flood lines took {flood_took:?}");
    assert!(p99 < Duration::from_millis(10), "paced p99 {p99:?}");
    // A burst of 10, then 5 a second: the other 30 take about 6 s.
    assert!(
        flood_took >= Duration::from_secs(5),
        "the flood went through in {flood_took:?}"
    );
}
