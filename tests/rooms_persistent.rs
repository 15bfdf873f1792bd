//! Persistent rooms through the real binary: made offline with `chatd room add` or by an admin
//! with `/room create`, they are there at start, with their topic, and survive a restart; an
//! ad-hoc room does not. The server's writes merge into the rooms file as it is on disk, so a
//! `chatd room` run while it serves is never undone.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{Client, DataDir, TestServer, TIMEOUT};

/// Runs `chatd --data-dir DIR room ARGS`, expecting success; returns stdout.
fn room(data: &DataDir, args: &[&str]) -> String {
    let mut all = vec!["--data-dir", data.arg(), "room"];
    all.extend_from_slice(args);
    let (code, out, err) = common::run_chatd(&all, "", None, Duration::from_secs(60));
    assert_eq!((code, err.as_str()), (0, ""), "chatd {all:?}");
    out
}

/// The rooms file's text.
fn rooms_file(data: &DataDir) -> String {
    fs::read_to_string(data.path().join("rooms")).unwrap_or_default()
}

/// Waits (polling, up to TIMEOUT) until the rooms file satisfies `ready`; returns its text.
#[track_caller]
fn wait_for_file(data: &DataDir, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = rooms_file(data);
        if ready(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the rooms file never {what}:\n{text}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Registers `name`, has the console make it an admin, and returns its connection.
fn admin(server: &mut TestServer, name: &str) -> Client {
    let mut client = server.join(name);
    client.send_line("/register pw");
    client.expect_line("[*] Your name is registered");
    server.console(&format!("GRANT {name} admin"));
    client.expect_line("[*] Host made you admin.");
    client
}

/// Asks for `/rooms` and returns its lines after the count line, which must say `count`.
#[track_caller]
fn rooms(client: &mut Client, count: usize) -> Vec<String> {
    client.send_line("/rooms");
    client.expect_line(|l: &str| l == format!("[*] Rooms ({count}):"));
    (0..count).map(|_| client.next_line()).collect()
}

/// Stops `server` from its console and waits for a clean exit.
fn stop(mut server: TestServer) {
    server.console("EXIT");
    assert!(server.wait_exit(TIMEOUT).success());
}

#[test]
fn a_room_added_offline_is_there_at_start_with_its_topic() {
    let data = DataDir::new();
    room(&data, &["add", "#dev", "--topic", "Rust talk"]);
    // The default room, which always exists, takes its topic from the file too.
    room(&data, &["add", "#Lobby", "--topic", "welcome"]);
    let server = TestServer::start_on(&data, &[]);
    let mut alice = server.join("alice");
    assert_eq!(
        rooms(&mut alice, 2),
        [
            "[*]   #dev (0 members, persistent): Rust talk",
            "[*]   #lobby (1 member): welcome"
        ]
    );
    alice.send_line("/join #dev");
    alice.expect_line("[*] You joined #dev (1 member)");
    alice.send_line("/topic");
    let topic = alice.expect_line("[*] Topic of #dev");
    assert!(
        topic.starts_with("[*] Topic of #dev: Rust talk (set by Host on "),
        "{topic}"
    );
}

#[test]
fn an_admins_room_and_its_topic_survive_a_restart_and_an_ad_hoc_room_does_not() {
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &[]);
    let mut root = admin(&mut server, "root1");
    root.send_line("/room create #ops");
    root.expect_line("[*] #ops is made: it stays when empty.");
    root.send_line("/join #ops");
    root.expect_line("[*] You joined #ops");
    root.send_line("/topic operators only");
    root.expect_line("[*] #ops: root1 set the topic: operators only");
    let mut bob = server.join("bob");
    bob.send_line("/join #tmp");
    bob.expect_line("[*] You made #tmp");
    assert_eq!(rooms(&mut bob, 3).len(), 3);
    stop(server);

    let text = rooms_file(&data);
    assert!(text.contains("\n#ops\troot1\t"), "{text}");
    assert!(text.ends_with("\toperators only\n"), "{text}");
    assert!(!text.contains("#tmp"), "an ad-hoc room is not kept: {text}");
    assert!(
        !text.contains("#lobby"),
        "the default room without a topic is not kept: {text}"
    );
    let listed = room(&data, &["list"]);
    assert!(
        listed.starts_with("#ops: operators only (set by root1, ") && listed.ends_with(" UTC)\n"),
        "{listed}"
    );

    let server = TestServer::start_on(&data, &[]);
    let mut carol = server.join("carol");
    assert_eq!(
        rooms(&mut carol, 2),
        [
            "[*]   #lobby (1 member)",
            "[*]   #ops (0 members, persistent): operators only"
        ]
    );
    carol.send_line("/join #ops");
    carol.expect_line("[*] You joined #ops");
    carol.send_line("/topic");
    let topic = carol.expect_line("[*] Topic of #ops");
    assert!(
        topic.starts_with("[*] Topic of #ops: operators only (set by root1 on "),
        "{topic}"
    );
    carol.send_line("/join #tmp");
    carol.expect_line("[*] You made #tmp");
}

#[test]
fn the_default_rooms_topic_is_kept_and_a_running_servers_writes_keep_offline_changes() {
    let data = DataDir::new();
    room(&data, &["add", "#old"]);
    // Listed without a topic, the default room is written back once it has one.
    room(&data, &["add", "#lobby"]);
    let mut server = TestServer::start_on(&data, &[]);
    let mut root = admin(&mut server, "root1");
    // While it serves: one room added offline, one removed.
    room(&data, &["add", "#side", "--topic", "added offline"]);
    room(&data, &["del", "#old"]);
    root.send_line("/topic welcome all");
    root.expect_line("[*] root1 set the topic: welcome all");
    root.send_line("/room create #more");
    root.expect_line("[*] #more is made");
    let text = wait_for_file(&data, "got #more", |t| t.contains("\n#more\n"));
    assert!(text.contains("\n#lobby\troot1\t"), "{text}");
    assert!(
        text.contains("\n#side\tHost\t"),
        "kept what chatd room added: {text}"
    );
    assert!(
        !text.contains("#old"),
        "kept what chatd room removed: {text}"
    );
    // The running server still has #old and knows nothing of #side until its next start.
    assert_eq!(rooms(&mut root, 3).len(), 3);
    stop(server);

    let server = TestServer::start_on(&data, &[]);
    let mut carol = server.join("carol");
    assert_eq!(
        rooms(&mut carol, 3),
        [
            "[*]   #lobby (1 member): welcome all",
            "[*]   #more (0 members, persistent)",
            "[*]   #side (0 members, persistent): added offline"
        ]
    );
}

#[test]
fn a_corrupt_rooms_file_stops_start_up_naming_the_file_and_line() {
    let data = DataDir::new();
    let path = data.path().join("rooms");
    fs::write(&path, "#dev\nlobby\n").unwrap();
    let (code, out, err) = common::run_chatd(
        &["--listen", "127.0.0.1:0", "--data-dir", data.arg()],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert_eq!(
        err,
        format!(
            "chatd: {}: line 2: invalid room name lobby: use # then 1 to 32 letters, digits, '_', '-' or '.'\n",
            path.display()
        )
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "#dev\nlobby\n",
        "left alone"
    );
}

#[test]
fn persistent_rooms_past_max_rooms_are_all_there_and_no_other_room_can_be_made() {
    let data = DataDir::new();
    room(&data, &["add", "#a"]);
    room(&data, &["add", "#b"]);
    // With the default room that is three rooms, over the limit of two: the operator's rooms
    // are all kept, and the start says why no other room can be made.
    let mut server = TestServer::start_on(&data, &["--max-rooms", "2"]);
    server.expect_stderr(
        |l: &str| l.contains("persistent rooms make 3 rooms") && l.contains("--max-rooms is 2"),
        TIMEOUT,
    );
    let mut alice = server.join("alice");
    alice.send_line("/join #new");
    alice.expect_line("[!] the server has 2 rooms, as many as it takes: join one of them (/rooms)");
    alice.send_line("/join #b");
    alice.expect_line(|l: &str| l.starts_with("[*] You joined #b ("));
    stop(server);
    assert!(rooms_file(&data).contains("#a\n") && rooms_file(&data).contains("#b\n"));
}
