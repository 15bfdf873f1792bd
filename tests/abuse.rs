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
