//! Bounded buffers and connection limits: long lines, endless lines, slow consumers, a full server.

mod common;

use std::time::{Duration, Instant};

use common::{assert_chat, chat_text, Client, TestServer, TIMEOUT};

const MAX_LINE: usize = 8 * 1024;
const MIB: usize = 1024 * 1024;
/// What a joined user is told about a line over the limit: the limit, and that it was not sent.
const TOO_LONG: &str = "[!] line too long (limit 8192 bytes); it was not sent.";

#[test]
fn a_line_longer_than_8_kib_is_refused_and_the_connection_stays_usable() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");

    // At the limit it passes, whole.
    let longest = "x".repeat(MAX_LINE);
    alice.send_line(&longest);
    assert_chat(&bob.next_line(), "alice", &longest);

    // One byte past it is refused, once, and the next line goes through.
    alice.send_line(&"y".repeat(MAX_LINE + 1));
    assert_eq!(alice.next_line(), TOO_LONG);
    alice.send_line("after the long one");
    assert_chat(&bob.next_line(), "alice", "after the long one");

    // A far longer line in one write, with a CRLF, is refused once too.
    let mut huge = vec![b'z'; 10 * MAX_LINE];
    huge.extend_from_slice(b"\r\nstill here\r\n");
    alice.send_raw(&huge);
    assert_eq!(alice.next_line(), TOO_LONG);
    assert_chat(&bob.next_line(), "alice", "still here");
    assert_eq!(alice.sync(), vec!["[*] Online (2): alice, bob"]);
    assert_eq!(bob.sync(), vec!["[*] Online (2): alice, bob"]);
}

#[test]
fn sixteen_mib_without_a_newline_under_a_larger_discard_limit_keeps_the_server_small() {
    let server = TestServer::start(&["--max-line-discard", "33554432"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut big = server.join("big");
    alice.expect_line("[*] big entered.");
    bob.expect_line("[*] big entered.");
    let before = server.memory();

    let chunk = vec![b'a'; MIB];
    for i in 0..16 {
        big.send_raw(&chunk);
        // Meanwhile the others keep chatting, both ways.
        alice.send_line(&format!("alice {i}"));
        assert_chat(&bob.next_line(), "alice", &format!("alice {i}"));
        bob.send_line(&format!("bob {i}"));
        assert_chat(&alice.next_line(), "bob", &format!("bob {i}"));
    }
    assert_eq!(big.next_line(), TOO_LONG, "told once");
    // The end of the endless line ends the discarding; the next line is said.
    big.send_raw(b"aaaa\nback to normal\n");
    assert_chat(&alice.next_line(), "big", "back to normal");
    assert_chat(&bob.next_line(), "big", "back to normal");
    // Big saw the others chat, and no second refusal.
    let rest = big.sync();
    assert_eq!(
        rest.last().map(String::as_str),
        Some("[*] Online (3): alice, big, bob")
    );
    assert_eq!(rest.len(), 2 * 16 + 1, "{rest:#?}");
    assert!(rest.iter().all(|l| !l.starts_with("[!]")), "{rest:#?}");

    let after = server.memory();
    let grew = after.peak.saturating_sub(before.rss);
    assert!(
        grew < 8 * MIB as u64,
        "the server's peak RSS grew by {grew} bytes (before {before:?}, after {after:?})"
    );
}

#[test]
fn an_unfinished_line_past_one_mib_closes_the_connection_and_the_others_stay() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut big = server.join("big");
    alice.expect_line("[*] big entered.");
    // One byte past the 1 MiB default, in two writes, with no line end.
    big.send_raw(&vec![b'a'; MIB]);
    big.send_raw(b"a");
    assert_eq!(big.next_line(), TOO_LONG);
    assert_eq!(
        big.next_line(),
        "[!] line too long: no line end in 1048576 bytes, goodbye"
    );
    big.expect_closed();
    assert_eq!(alice.next_line(), "[*] big exited.");
    assert_eq!(alice.sync(), vec!["[*] Online (1): alice"]);
}

#[test]
fn max_line_discard_sets_how_much_of_an_unfinished_line_is_dropped_before_closing() {
    let server = TestServer::start(&["--max-line-discard", "100000"]);
    let mut alice = server.join("alice");
    // At the limit the line may still end, and the connection stays.
    let mut line = vec![b'b'; 100_000];
    line.push(b'\n');
    alice.send_raw(&line);
    assert_eq!(alice.next_line(), TOO_LONG);
    alice.send_line("/users");
    assert_eq!(alice.next_line(), "[*] Online (1): alice");
    // One byte more, and it is closed.
    alice.send_raw(&[b'c'; 100_001]);
    assert_eq!(alice.next_line(), TOO_LONG);
    assert_eq!(
        alice.next_line(),
        "[!] line too long: no line end in 100000 bytes, goodbye"
    );
    alice.expect_closed();
}

#[test]
fn a_client_that_never_reads_is_cut_at_the_cap_while_two_others_chat() {
    let logged = cut_a_slow_reader(
        &["--max-outbuf", "65536", "--no-flood-control"],
        Duration::ZERO,
    );
    assert!(logged.contains("past the 65536 byte limit"), "{logged}");
}

#[test]
fn a_client_over_the_soft_limit_for_too_long_is_cut_below_the_hard_limit() {
    let args = [
        "--max-outbuf",
        "67108864",
        "--outbuf-soft",
        "65536",
        "--outbuf-soft-secs",
        "1",
        "--no-flood-control",
    ];
    let logged = cut_a_slow_reader(&args, Duration::from_millis(10));
    assert!(
        logged.contains("over 65536 queued bytes for 1s"),
        "{logged}"
    );
}

/// Alice and bob chat in batches of 4 KiB lines while slow reads nothing, until the server cuts
/// slow; checks that alice and bob got every line in order. Returns the server's log line.
fn cut_a_slow_reader(args: &[&str], pause_per_round: Duration) -> String {
    const LINE: usize = 4 * 1024;
    const BATCH: usize = 8;
    // 16 MiB at most, far beyond what loopback socket buffers can hold.
    const MAX_ROUNDS: usize = 16 * MIB / (2 * BATCH * LINE);

    let mut server = TestServer::start(args);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut slow = server.join("slow");
    alice.expect_line("[*] slow entered.");
    bob.expect_line("[*] slow entered.");

    // Alice and bob take turns: a batch from one, read in full by the other (a batch is well under
    // the cap, so neither of them is ever slow). Slow reads nothing.
    let filler = "f".repeat(LINE - 16);
    let mut sent = [0usize; 2];
    let mut received = [0usize; 2];
    let mut slow_exited = [false; 2];
    let mut rounds = 0;
    let started = Instant::now();
    let mut pair = [alice, bob];
    let names = ["alice", "bob"];
    while !(slow_exited[0] && slow_exited[1]) {
        assert!(
            rounds < MAX_ROUNDS && started.elapsed() < Duration::from_secs(60),
            "slow was never cut: {rounds} rounds, {sent:?} lines sent, {:?}",
            started.elapsed()
        );
        rounds += 1;
        std::thread::sleep(pause_per_round);
        for from in 0..2 {
            let to = 1 - from;
            for _ in 0..BATCH {
                let text = format!("{} {:06} {filler}", names[from], sent[from]);
                pair[from].send_line(&text);
                sent[from] += 1;
            }
            // Read until every line sent so far has arrived, noting the leave event on the way.
            while received[to] < sent[from] {
                let line = pair[to].next_line();
                if line == "[*] slow exited." {
                    assert!(!slow_exited[to], "slow exited twice for {}", names[to]);
                    slow_exited[to] = true;
                    continue;
                }
                let text = chat_text(&line, names[from])
                    .unwrap_or_else(|| panic!("{} got {line:?}", names[to]));
                let expected = format!("{} {:06} ", names[from], received[to]);
                assert!(
                    text.starts_with(&expected) && text.len() == expected.len() + filler.len(),
                    "{} expected line {}, got {:?}",
                    names[to],
                    received[to],
                    &text[..text.len().min(40)]
                );
                received[to] += 1;
            }
        }
    }
    // Every line reached its one reader, in order, and both are still served.
    assert_eq!(received[1], sent[0]);
    assert_eq!(received[0], sent[1]);
    let [mut alice, mut bob] = pair;
    assert_eq!(alice.sync(), vec!["[*] Online (2): alice, bob"]);
    assert_eq!(bob.sync(), vec!["[*] Online (2): alice, bob"]);
    alice.send_line("still here");
    assert_chat(&bob.next_line(), "alice", "still here");

    let logged = server.expect_stderr("slow consumer", TIMEOUT);
    server.expect_stdout("[*] slow exited.", TIMEOUT);
    // Slow's connection is closed: what the kernel already held drains, then the end.
    slow.drain_until_closed();
    logged
}

#[test]
fn max_clients_refuses_one_more_connection_with_server_full() {
    let server = TestServer::start(&["--max-clients", "2"]);
    let mut alice = server.join("alice");
    let mut nameless = Client::connect(server.addr());
    nameless.expect_line(|l: &str| l == common::PROMPT);

    let mut third = Client::connect(server.addr());
    let lines = third.expect_closed();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("[!] server full"), "{lines:?}");

    // The two inside are unaffected; once one leaves, a new connection gets in.
    assert_eq!(alice.sync(), vec!["[*] Online (1): alice"]);
    nameless.send_line("/quit");
    nameless.expect_closed();
    // The server closes a connection only once it has dropped it: the slot is free now.
    let mut bob = Client::connect(server.addr());
    bob.expect_line(|l: &str| l == common::PROMPT);
    bob.send_line("bob");
    assert!(bob.next_line().starts_with("[*] Welcome, bob!"));
    assert_eq!(alice.next_line(), "[*] bob entered.");
}
