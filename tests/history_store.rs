//! The history store against the real binary: history after a restart, `/history` paging,
//! `kill -9`, `--history-days`, `--no-history-store` and the offline mailbox.

mod common;
mod framed_common;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use chatd::proto::framed::{chat_kind, reply_kind, ClientFrame, ServerFrame};
use common::{add_user, Client, DataDir, TestServer, TIMEOUT};
use framed_common::{FramedUser, Server};

/// The text of a history line `[HH:MM:SS] [history] FROM > TEXT` from `from`.
fn history_text<'a>(line: &'a str, from: &str) -> Option<&'a str> {
    let rest = line.get(11..)?.strip_prefix("[history] ")?;
    rest.strip_prefix(from)?.strip_prefix(" > ")
}

/// Every history line of `from` among `lines`, in order.
fn history_of(lines: &[String], from: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| history_text(l, from))
        .map(str::to_owned)
        .collect()
}

/// Stops the server from its console and waits for it to exit.
fn stop(mut server: TestServer) {
    server.console("EXIT");
    assert!(server.wait_exit(TIMEOUT).success());
}

/// `name` joins and reads up to the answer of a `/users`: the welcome's history among them.
fn join_and_read(server: &TestServer, name: &str) -> (Client, Vec<String>) {
    let mut client = server.join(name);
    let lines = client.sync();
    (client, lines)
}

/// Says each of `texts` as `client`, then makes sure the server has read them all.
fn say_all(client: &mut Client, texts: impl IntoIterator<Item = String>) {
    for text in texts {
        client.send_line(&text);
    }
    client.sync();
}

fn numbered(prefix: &str, from: usize, to: usize) -> Vec<String> {
    (from..=to).map(|n| format!("{prefix} {n}")).collect()
}

/// Opens the history file as another program would (SQLite recovers a killed writer's log)
/// and checks its structure.
fn assert_store_sound(data: &Path) {
    let db = rusqlite::Connection::open(data.join("history.sqlite")).expect("open the store");
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("check the store");
    assert_eq!(verdict, "ok");
}

#[test]
fn history_on_joining_survives_a_restart_and_numbering_goes_on() {
    let data = DataDir::new();
    let server = TestServer::start_on(&data, &[]);
    let mut alice = server.join("alice");
    say_all(&mut alice, numbered("before", 1, 3));
    alice.send_line("/me waves");
    alice.sync();
    drop(alice);
    stop(server);

    let server = TestServer::start_on(&data, &[]);
    let (mut bob, lines) = join_and_read(&server, "bob");
    assert_eq!(history_of(&lines, "alice"), numbered("before", 1, 3));
    assert!(
        lines.iter().any(|l| l.ends_with("[history] * alice waves")),
        "{lines:#?}"
    );
    bob.send_line("after the restart");
    bob.sync();
    drop(bob);
    stop(server);

    // The third run has both runs' lines, in order: the numbering went on after the first run's.
    let server = TestServer::start_on(&data, &[]);
    let (_carol, lines) = join_and_read(&server, "carol");
    assert_eq!(history_of(&lines, "alice"), numbered("before", 1, 3));
    assert_eq!(history_of(&lines, "bob"), ["after the restart"]);
    let bob_at = lines.iter().position(|l| history_text(l, "bob").is_some());
    let waves_at = lines.iter().position(|l| l.ends_with("* alice waves"));
    assert!(waves_at < bob_at, "{lines:#?}");
}

#[test]
fn history_pages_back_from_the_store_past_what_was_shown_on_joining() {
    let data = DataDir::new();
    let server = TestServer::start_on(&data, &["--no-flood-control"]);
    let mut alice = server.join("alice");
    say_all(&mut alice, numbered("line", 1, 30));
    drop(alice);
    stop(server);

    let server = TestServer::start_on(&data, &["--history", "5"]);
    let (mut bob, lines) = join_and_read(&server, "bob");
    assert_eq!(history_of(&lines, "alice"), numbered("line", 26, 30));
    bob.send_line("/history 10");
    bob.expect_line("[*] 10 earlier lines of #lobby (/history shows more):");
    let page: Vec<String> = (0..10).map(|_| bob.next_line()).collect();
    assert_eq!(history_of(&page, "alice"), numbered("line", 16, 25));
    bob.send_line("/history");
    bob.expect_line("[*] 15 earlier lines of #lobby (the first kept):");
    let page: Vec<String> = (0..15).map(|_| bob.next_line()).collect();
    assert_eq!(history_of(&page, "alice"), numbered("line", 1, 15));
    bob.send_line("/history");
    bob.expect_line("[*] No earlier lines of #lobby are kept.");
    bob.send_line("/history 0");
    bob.expect_line("[!] usage: /history [#ROOM] [N]");
    bob.send_line("/history #nowhere");
    bob.expect_line("[!] no room named #nowhere");
}

#[test]
fn kill_9_keeps_what_was_said_a_second_before_and_leaves_a_sound_store() {
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &["--no-flood-control"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let talking = Duration::from_millis(2500);
    let sender = thread::spawn(move || {
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < talking + Duration::from_secs(1) {
            n += 1;
            if alice.try_send_raw(format!("say {n}\n").as_bytes()).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    // Bob notes when each line reached him; the server is killed while alice still talks.
    let start = Instant::now();
    let mut heard: Vec<(Instant, String)> = Vec::new();
    while start.elapsed() < talking {
        if let Ok(line) = bob.try_expect_line(&|l: &str| l.contains("] alice > say "), TIMEOUT) {
            let text = line.split(" > ").nth(1).unwrap_or_default().to_owned();
            heard.push((Instant::now(), text));
        }
    }
    let killed = Instant::now();
    server.signal(rustix::process::Signal::KILL);
    server.wait_exit(TIMEOUT);
    sender.join().expect("the sender thread");
    assert_store_sound(data.path());

    let server = TestServer::start_on(&data, &["--history", "1000"]);
    let (_carol, lines) = join_and_read(&server, "carol");
    let kept = history_of(&lines, "alice");
    let said_before: Vec<&String> = heard
        .iter()
        .filter(|(at, _)| killed.duration_since(*at) > Duration::from_secs(1))
        .map(|(_, text)| text)
        .collect();
    assert!(said_before.len() > 50, "only {} lines", said_before.len());
    for text in &said_before {
        assert!(
            kept.contains(text),
            "{text} lost; kept {} lines",
            kept.len()
        );
    }
    // What was kept is a prefix of what was said: nothing torn, nothing out of order.
    let all: Vec<&String> = heard.iter().map(|(_, text)| text).collect();
    assert!(
        kept.len() <= all.len() + 5,
        "{} > {}",
        kept.len(),
        all.len()
    );
    for (kept, said) in kept.iter().zip(&all) {
        assert_eq!(kept, *said);
    }
}

#[test]
fn history_days_prunes_older_lines_at_start() {
    let data = DataDir::new();
    let server = TestServer::start_on(&data, &[]);
    let mut alice = server.join("alice");
    say_all(&mut alice, numbered("old", 1, 3));
    drop(alice);
    stop(server);
    // Ten days pass for the lines of the first run (the store prunes by a chunk's newest line).
    let db = rusqlite::Connection::open(data.path().join("history.sqlite")).expect("open");
    let aged = db
        .execute("UPDATE chunks SET at_last = at_last - 10 * 86400", [])
        .expect("age the old lines");
    assert!(aged >= 1);
    drop(db);
    let server = TestServer::start_on(&data, &[]);
    let mut alice = server.join("alice");
    say_all(&mut alice, numbered("new", 1, 2));
    drop(alice);
    stop(server);

    let server = TestServer::start_on(&data, &["--history-days", "30"]);
    let (_bob, lines) = join_and_read(&server, "bob");
    let mut all = numbered("old", 1, 3);
    all.extend(numbered("new", 1, 2));
    assert_eq!(
        history_of(&lines, "alice"),
        all,
        "ten days are kept under 30"
    );
    stop(server);

    let server = TestServer::start_on(&data, &["--history-days", "7"]);
    let (_carol, lines) = join_and_read(&server, "carol");
    assert_eq!(history_of(&lines, "alice"), numbered("new", 1, 2));
    stop(server);

    let server = TestServer::start_on(&data, &[]);
    let (_dave, lines) = join_and_read(&server, "dave");
    assert_eq!(
        history_of(&lines, "alice"),
        numbered("new", 1, 2),
        "pruned lines are gone from the store"
    );
}

#[test]
fn without_the_store_history_is_memory_only_and_no_file_is_made() {
    let data = DataDir::new();
    let server = TestServer::start_on(&data, &["--no-history-store", "--history", "2"]);
    let mut alice = server.join("alice");
    say_all(&mut alice, numbered("line", 1, 5));
    let (mut bob, lines) = join_and_read(&server, "bob");
    assert_eq!(history_of(&lines, "alice"), numbered("line", 4, 5));
    bob.send_line("/history");
    bob.expect_line("[*] 3 earlier lines of #lobby (the first kept):");
    let page: Vec<String> = (0..3).map(|_| bob.next_line()).collect();
    assert_eq!(history_of(&page, "alice"), numbered("line", 1, 3));
    drop((alice, bob));
    stop(server);
    assert!(!data.path().join("history.sqlite").exists());

    let server = TestServer::start_on(&data, &["--no-history-store"]);
    let (_carol, lines) = join_and_read(&server, "carol");
    assert_eq!(history_of(&lines, "alice"), Vec::<String>::new());
}

#[test]
fn a_registered_user_gets_dms_sent_while_offline_once_even_across_a_restart() {
    let data = DataDir::new();
    add_user(&data, "bob", "bob's secret");
    let server = TestServer::start_on(&data, &["--no-flood-control"]);
    let mut alice = server.join("alice");
    alice.send_line("/dm bob are you there?");
    alice.expect_line(
        "[*] bob is offline: your message waits for them and is delivered when they next log in.",
    );
    alice.send_line("/dm carol hello?");
    alice.expect_line(
        "[!] no user named carol is online, and messages wait only for registered users: yours was not kept",
    );
    drop(alice);
    stop(server);

    let server = TestServer::start_on(&data, &[]);
    let mut bob = server.login("bob", "bob's secret");
    bob.expect_line("[*] 1 direct message came while you were offline:");
    let dm = bob.next_line();
    assert!(dm.ends_with("] [dm] alice > are you there?"), "{dm}");
    bob.send_line("/quit");
    bob.expect_closed();
    let mut bob = server.login("bob", "bob's secret");
    let lines = bob.sync();
    assert!(
        !lines.iter().any(|l| l.contains("while you were offline")),
        "delivered once: {lines:#?}"
    );
}

#[test]
fn an_offline_mailbox_holds_a_hundred_messages_and_the_sender_is_told_when_full() {
    let data = DataDir::new();
    add_user(&data, "bob", "bob's secret");
    let server = TestServer::start_on(&data, &["--no-flood-control"]);
    let mut alice = server.join("alice");
    for n in 1..=100 {
        alice.send_line(&format!("/dm bob note {n}"));
        alice.expect_line("[*] bob is offline: your message waits");
    }
    alice.send_line("/dm bob one too many");
    alice.expect_line(
        "[!] bob is offline and has as many messages waiting as the server keeps: yours was not kept",
    );
    let mut bob = server.login("bob", "bob's secret");
    bob.expect_line("[*] 100 direct messages came while you were offline:");
    let first = bob.next_line();
    assert!(first.ends_with("] [dm] alice > note 1"), "{first}");
    let lines = bob.sync();
    assert!(lines.iter().any(|l| l.ends_with("] [dm] alice > note 100")));
    // Delivered: the mailbox has room again.
    bob.send_line("/quit");
    bob.expect_closed();
    alice.send_line("/dm bob again");
    alice.expect_line("[*] bob is offline: your message waits");
}

#[test]
fn a_framed_client_pages_back_with_a_history_command_frame() {
    let server = Server::start(&["--history", "2", "--no-flood-control"]);
    let mut alice = FramedUser::join(&server, "alice");
    for n in 1..=4 {
        alice.send(&ClientFrame::say(n, &format!("line {n}")));
    }
    alice.send(&ClientFrame::Ping { nonce: 1 });
    alice.expect("the pong", |f| matches!(f, ServerFrame::Pong { .. }));
    let mut bob = FramedUser::join(&server, "bob");
    bob.send(&ClientFrame::Command {
        name: "history".into(),
        args: "5".into(),
    });
    let notice = bob.expect(
        "the page's notice",
        |f| matches!(f, ServerFrame::Reply { kind, .. } if *kind == reply_kind::NOTICE),
    );
    let ServerFrame::Reply { lines, .. } = notice else {
        unreachable!()
    };
    assert_eq!(lines, ["[*] 2 earlier lines of #lobby (the first kept):"]);
    for n in 1..=2 {
        let line = bob.expect("a history line", |f| matches!(f, ServerFrame::Chat { .. }));
        let ServerFrame::Chat {
            kind, text, from, ..
        } = line
        else {
            unreachable!()
        };
        assert_eq!(
            (kind, from.as_str(), text),
            (chat_kind::HISTORY, "alice", format!("line {n}"))
        );
    }
}
