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

/// A server whose flood control lets a client's lines through one every 200 ms after the first
/// two: what a client sends meanwhile waits in its socket until the lines before it are read.
fn slow_reader() -> TestServer {
    TestServer::start(&["--flood-burst", "2", "--flood-rate", "5"])
}

#[test]
fn bytes_after_urgent_data_are_read_though_the_read_before_them_stopped_short() {
    // A read stops at the urgent mark, short of the buffer, with bytes still queued behind it;
    // the server must not take that short read for an empty socket.
    let server = slow_reader();
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.send_raw(b"one\ntwo\nthree\nfour\n");
    bob.expect_line(chat_line("alice", "one"));
    // Reading is paused now: all of this waits in the socket, the urgent byte in the middle.
    alice.send_raw(b"ab");
    alice.send_urgent(b'!');
    alice.send_raw(b"cd\n");
    for text in ["two", "three", "four"] {
        bob.expect_line(chat_line("alice", text));
    }
    // The urgent byte is not part of the stream (no SO_OOBINLINE): the line is the rest.
    bob.expect_line(chat_line("alice", "abcd"));
}

#[test]
fn the_end_of_a_stream_that_came_with_its_last_line_is_read_and_the_client_leaves() {
    // The last line and the FIN wait in the socket together: the read that takes the line is
    // short of the buffer, and the end of the stream must still be read after it.
    let server = slow_reader();
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.send_raw(b"one\ntwo\nthree\n");
    bob.expect_line(chat_line("alice", "one"));
    alice.send_raw(b"last\n");
    alice.shutdown_write();
    for text in ["two", "three", "last"] {
        bob.expect_line(chat_line("alice", text));
    }
    bob.expect_line("[*] alice exited.");
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

const MIB: usize = 1024 * 1024;

/// What a joined user is told about a line over the limit.
const TOO_LONG: &str = "[!] line too long (limit 8192 bytes); it was not sent.";

#[test]
fn sixty_four_mib_without_a_newline_is_cut_off_after_one_and_an_idle_half_line_costs_nothing() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut big = server.join("big");
    let mut idle = server.join("idle");
    alice.expect_line("[*] idle entered.");
    let before = server.memory();
    // The server stops reading after the first MiB (and a read's worth past it) and closes the
    // connection: writing the rest fails long before 64 MiB have gone.
    let chunk = vec![b'x'; MIB];
    let sent = (0..64)
        .take_while(|_| big.try_send_raw(&chunk).is_ok())
        .count();
    assert!(sent < 64, "all of the 64 MiB were taken");
    alice.expect_line("[*] big exited.");
    bob.send_line("after the flood");
    alice.expect_line(chat_line("bob", "after the flood"));
    let grew = server.memory().peak.saturating_sub(before.rss);
    assert!(
        grew < 8 * MIB as u64,
        "peak RSS grew by {grew} bytes for {sent} MiB of input"
    );
    // Half a line with no end, then silence: the server must not spin on it.
    idle.send_raw(b"half a line with no end");
    alice.sync();
    let cpu = server.cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let burnt = server.cpu_time() - cpu;
    assert!(
        burnt < Duration::from_millis(100),
        "{burnt:?} of CPU while idle"
    );
}

#[test]
fn repeated_over_long_lines_close_the_connection() {
    let server = TestServer::start(&[]);
    let mut big = server.join("big");
    let line = format!("{}\n", "y".repeat(MIB));
    for _ in 0..3 {
        big.send_raw(line.as_bytes());
        assert_eq!(big.expect_line("[!]"), TOO_LONG);
    }
    assert_eq!(
        big.expect_line("[!]"),
        "[!] too much input that could not be read, goodbye"
    );
    big.expect_closed();
}

#[test]
fn a_connection_that_never_names_itself_is_closed_at_the_name_timeout() {
    let server = TestServer::start(&["--name-timeout", "1"]);
    let mut named = server.join("named");
    let mut silent = Client::connect(server.addr());
    silent.expect_line(|l: &str| l == common::PROMPT);
    let started = Instant::now();
    assert_eq!(
        silent.expect_line("[!]"),
        "[!] no name given in time, goodbye"
    );
    silent.expect_closed();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    // A quiet user who did give a name is never cut.
    named.sync();
}

#[test]
fn one_write_with_an_injected_event_line_gives_two_attributed_lines() {
    let server = TestServer::start(&[]);
    let mut mallory = server.join("mallory");
    let mut bob = server.join("bob");
    mallory.send_raw(b"hi\n[*] admin: restarting\r\n[!] you are kicked\n");
    bob.expect_line(chat_line("mallory", "hi"));
    bob.expect_line(chat_line("mallory", "[*] admin: restarting"));
    bob.expect_line(chat_line("mallory", "[!] you are kicked"));
    let rest = bob.sync();
    assert!(
        rest.iter()
            .all(|l| !l.starts_with("[*] admin") && !l.starts_with("[!]")),
        "{rest:?}"
    );
}

#[test]
fn control_ansi_and_bidi_bytes_never_reach_another_terminal() {
    let server = TestServer::start(&[]);
    let mut mallory = server.join("mallory");
    let mut bob = server.join("bob");
    let nasty = "a\u{1b}[2Jb\u{7}c\u{7f}d\u{85}e\u{202e}f\u{2066}g\u{200b}h\rj\u{0}k";
    mallory.send_raw(format!("{nasty}\n").as_bytes());
    let line = bob.next_line_raw();
    for forbidden in [
        "\u{1b}", "\u{7}", "\u{7f}", "\u{85}", "\u{202e}", "\u{2066}", "\u{200b}", "\u{0}",
    ] {
        let text = String::from_utf8_lossy(&line);
        assert!(
            !text.contains(forbidden),
            "{forbidden:?} reached bob: {text:?}"
        );
    }
    assert!(
        !line[..line.len() - 2].contains(&b'\r'),
        "a bare CR reached bob"
    );
    let text = String::from_utf8_lossy(&line);
    assert!(text.contains("a\u{FFFD}[2Jb\u{FFFD}c"), "{text:?}");
    // Names cannot carry any of them.
    let mut sneaky = Client::connect(server.addr());
    sneaky.expect_line(|l: &str| l == common::PROMPT);
    for name in ["ev\u{1b}[1me", "ev\u{202e}e", "ev\u{200b}e", "ev\u{7}e"] {
        sneaky.send_raw(format!("{name}\n").as_bytes());
        assert!(
            sneaky.expect_line("[!]").starts_with("[!] invalid name"),
            "{name:?}"
        );
    }
}

#[test]
fn half_open_connections_leave_the_others_served() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    // Half-open: connected, never reading, never writing; and one that shut its sending side.
    let idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr()).expect("connect"))
        .collect();
    let half_closed = TcpStream::connect(server.addr()).expect("connect");
    half_closed
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    for n in 0..20 {
        alice.send_line(&format!("line {n}"));
        bob.expect_line(chat_line("alice", &format!("line {n}")));
    }
    assert_eq!(idle.len(), 50);
}

#[test]
fn a_slow_reader_beside_twenty_chatters_slows_nobody() {
    let server = TestServer::start(&["--no-flood-control", "--max-outbuf", "65536"]);
    let mut chatters: Vec<Client> = (0..20).map(|n| server.join(&format!("c{n}"))).collect();
    let _slow = server.join("slow");
    let filler = "z".repeat(2000);
    let mut worst = Duration::ZERO;
    for round in 0..40 {
        let from = round % chatters.len();
        let sent = Instant::now();
        chatters[from].send_line(&format!("{round} {filler}"));
        for (n, chatter) in chatters.iter_mut().enumerate() {
            if n != from {
                chatter.expect_line(chat_line(&format!("c{from}"), &format!("{round} {filler}")));
            }
        }
        worst = worst.max(sent.elapsed());
    }
    eprintln!("worst round trip to 19 readers beside a slow one: {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
}

#[test]
fn exit_with_a_thousand_clients_connected_finishes_within_three_seconds() {
    let mut server = TestServer::start(&["--max-clients", "1100"]);
    let clients: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let socket = TcpStream::connect(server.addr()).expect("connect");
            socket.set_read_timeout(Some(TIMEOUT)).expect("timeout");
            socket
        })
        .collect();
    let mut last = Client::connect(server.addr());
    last.expect_line(|l: &str| l == common::PROMPT);
    let started = Instant::now();
    server.console("EXIT");
    let status = server.wait_exit(Duration::from_secs(5));
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    last.expect_line(common::SHUTDOWN_LINE);
    drop(clients);
}

#[test]
fn a_console_nobody_reads_never_blocks_the_server() {
    use std::process::{Command, Stdio};
    // A free port, so the address need not be read from the stdout nobody reads.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let data = common::DataDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.arg(),
            "--no-flood-control",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chatd");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + TIMEOUT;
    let mut alice = loop {
        if let Ok(socket) = TcpStream::connect(addr) {
            drop(socket);
            break Client::connect(addr);
        }
        assert!(Instant::now() < deadline, "chatd did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    };
    alice.join("alice");
    let mut bob = Client::connect(addr);
    bob.join("bob");
    // Every chat line goes to the console too: 2 MiB of it, far past what a pipe holds.
    let filler = "c".repeat(1000);
    for n in 0..2000 {
        alice.send_line(&format!("{n} {filler}"));
        bob.expect_line(chat_line("alice", &format!("{n} {filler}")));
    }
    let sent = Instant::now();
    bob.send_line("still prompt?");
    alice.expect_line(chat_line("bob", "still prompt?"));
    assert!(sent.elapsed() < Duration::from_secs(1));
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("console output is not being read"),
        "{stderr}"
    );
}

#[test]
fn before_joining_a_line_may_hold_4_kib_after_joining_8_kib() {
    let server = TestServer::start(&[]);
    let mut bob = server.join("bob");
    let mut newcomer = Client::connect(server.addr());
    newcomer.expect_line(|l: &str| l == common::PROMPT);
    newcomer.send_line(&"n".repeat(5000));
    assert_eq!(
        newcomer.expect_line("[!]"),
        "[!] line too long (limit 4096 bytes); it was not sent."
    );
    newcomer.send_line("newcomer");
    newcomer.expect_line("[*] Welcome, newcomer");
    let long = "m".repeat(6000);
    newcomer.send_line(&long);
    bob.expect_line(chat_line("newcomer", &long));
}
