//! Rooms (issue 12) through the real binary in text mode: join, part, switch, list, who, topic,
//! actions, moderation, history per room, limits, the console; and a user who never types a room
//! command sees exactly the lines they saw before rooms. The lines checked here are quoted from
//! PROTOCOL.md's Rooms section, so the reference cannot drift from the server.

mod common;

use common::{chat_line, Client, TestServer, TIMEOUT};

const PROTOCOL: &str = include_str!("../PROTOCOL.md");

/// `line` with its stamp, if any, replaced by the one PROTOCOL.md's examples use.
fn as_documented(line: &str) -> String {
    let stamped = line.starts_with('[') && line.get(9..11) == Some("] ");
    if stamped {
        format!("[14:02:09]{}", &line[10..])
    } else {
        line.to_owned()
    }
}

/// Asserts PROTOCOL.md shows `line` (stamp aside) as it is, and returns it.
#[track_caller]
fn documented(line: String) -> String {
    let shown = as_documented(&line);
    assert!(
        PROTOCOL.contains(&shown),
        "PROTOCOL.md does not show the line {shown:?}"
    );
    line
}

/// Waits for the line `expected` exactly; asserts PROTOCOL.md shows it.
#[track_caller]
fn expect_documented(client: &mut Client, expected: &str) {
    let line = client.expect_line(|l: &str| l == expected);
    documented(line);
}

/// Waits for a stamped line that reads `expected` after its stamp; asserts PROTOCOL.md shows it.
#[track_caller]
fn expect_stamped(client: &mut Client, expected: &str) {
    let line = client.expect_line(|l: &str| l.len() > 11 && &l[11..] == expected);
    documented(line);
}

/// The lines `client` got before the answer to `/users`, which is left out.
#[track_caller]
fn lines_before_sync(client: &mut Client) -> Vec<String> {
    let mut seen = client.sync();
    seen.pop();
    seen
}

/// alice made #dev and bob joined it; carol stays in the lobby.
fn dev(server: &TestServer) -> (Client, Client, Client) {
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    alice.send_line("/join #dev");
    expect_documented(
        &mut alice,
        "[*] You made #dev and moderate it: plain lines go there now.",
    );
    bob.send_line("/join #DEV");
    expect_documented(
        &mut bob,
        "[*] You joined #dev (2 members): plain lines go there now.",
    );
    expect_documented(&mut alice, "[*] #dev: bob entered.");
    lines_before_sync(&mut carol);
    (alice, bob, carol)
}

#[test]
fn a_rooms_lines_carry_its_name_and_a_lobby_only_user_sees_exactly_the_lines_of_before() {
    let server = TestServer::start(&[]);
    let (mut alice, mut bob, mut carol) = dev(&server);
    alice.send_line("hi dev");
    expect_stamped(&mut bob, "#dev alice > hi dev");
    bob.send_line("/me waves");
    expect_stamped(&mut alice, "#dev * bob waves");
    // carol, in the lobby only, saw nothing of #dev: not the joins, not the lines.
    assert_eq!(lines_before_sync(&mut carol), Vec::<String>::new());
    carol.send_line("hello lobby");
    for client in [&mut alice, &mut bob] {
        let line = client.expect_line(chat_line("carol", "hello lobby"));
        assert!(line.ends_with("] carol > hello lobby"), "untagged: {line}");
    }
    carol.send_line("/me waves too");
    expect_stamped(&mut alice, "* carol waves too");
    // A newcomer to the server sees what a newcomer saw before rooms.
    let mut dave = Client::connect(server.addr());
    dave.join("dave");
    carol.expect_line(|l: &str| l == "[*] dave entered.");
    drop(dave);
    carol.expect_line(|l: &str| l == "[*] dave exited.");
    assert_eq!(lines_before_sync(&mut carol), Vec::<String>::new());
}

#[test]
fn room_switches_part_falls_back_and_the_default_room_stays() {
    let server = TestServer::start(&[]);
    let (mut alice, mut bob, mut carol) = dev(&server);
    bob.send_line("/join #ops");
    bob.expect_line("[*] You made #ops");
    bob.send_line("/room #dev");
    expect_documented(
        &mut bob,
        "[*] Your current room is #dev: plain lines go there now.",
    );
    bob.send_line("to dev");
    alice.expect_line(chat_line("#dev bob", "to dev"));
    bob.send_line("/part back later");
    expect_documented(&mut alice, "[*] #dev: bob left. (back later)");
    expect_documented(&mut bob, "[*] You left #dev; your current room is #ops.");
    bob.send_line("/part #ops");
    bob.expect_line("[*] You left #ops; your current room is #lobby.");
    bob.send_line("in the lobby again");
    carol.expect_line(chat_line("bob", "in the lobby again"));
    bob.send_line("/part");
    expect_documented(
        &mut bob,
        "[!] #lobby is the server's default room: everyone stays in it (/quit leaves the server)",
    );
    bob.send_line("/room #ops");
    expect_documented(
        &mut bob,
        "[!] no room named #ops: /rooms lists them, /join makes one",
    );
    carol.send_line("/room #dev");
    expect_documented(&mut carol, "[!] you are not in #dev: /join #dev first");
    carol.send_line("/join dev");
    expect_documented(
        &mut carol,
        "[!] invalid room name dev: use # then 1 to 32 letters, digits, '_', '-' or '.'",
    );
}

#[test]
fn rooms_who_topic_and_history_on_joining() {
    let server = TestServer::start(&[]);
    let (mut alice, mut bob, mut carol) = dev(&server);
    bob.send_line("/topic mine now");
    expect_documented(&mut bob, "[!] only moderators of #dev may do that");
    alice.send_line("/topic Rust talk");
    expect_documented(&mut bob, "[*] #dev: alice set the topic: Rust talk");
    expect_documented(&mut alice, "[*] #dev: alice set the topic: Rust talk");
    alice.send_line("first in dev");
    bob.expect_line(chat_line("#dev alice", "first in dev"));
    bob.send_line("/away lunch");
    bob.expect_line("[*] You are marked away");
    carol.send_line("/rooms");
    expect_documented(&mut carol, "[*] Rooms (2):");
    expect_documented(&mut carol, "[*]   #dev (2 members): Rust talk");
    expect_documented(&mut carol, "[*]   #lobby (3 members)");
    carol.send_line("/who #dev");
    expect_documented(
        &mut carol,
        "[*] #dev (2): alice (moderator), bob (away: lunch)",
    );
    carol.send_line("/join #dev");
    carol.expect_line("[*] You joined #dev (3 members)");
    let topic = carol.expect_line("[*] Topic of #dev: Rust talk (set by alice on ");
    assert!(topic.ends_with(')'), "{topic}");
    expect_stamped(&mut carol, "#dev [history] alice > first in dev");
    alice.expect_line(|l: &str| l == "[*] #dev: carol entered.");
    carol.send_line("/topic");
    carol.expect_line("[*] Topic of #dev: Rust talk (set by alice on ");
    carol.send_line("/who");
    carol.expect_line(|l: &str| l == "[*] #dev (3): alice (moderator), bob (away: lunch), carol");
    // /users stays the list of everyone online.
    carol.send_line("/users");
    carol.expect_line(|l: &str| l == "[*] Online (3): alice, bob (away: lunch), carol");
    // Each room keeps its own history: a newcomer to the server sees the default room's only.
    carol.send_line("/room #lobby");
    carol.expect_line("[*] Your current room is #lobby");
    carol.send_line("said in the lobby");
    alice.expect_line(chat_line("carol", "said in the lobby"));
    let mut erin = Client::connect(server.addr());
    erin.join("erin");
    let seen = lines_before_sync(&mut erin);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].ends_with("] [history] carol > said in the lobby"),
        "{seen:?}"
    );
}

#[test]
fn a_moderator_removes_from_the_room_only_and_makes_moderators() {
    let server = TestServer::start(&[]);
    let (mut alice, mut bob, mut carol) = dev(&server);
    bob.send_line("/remove alice");
    bob.expect_line("[!] only moderators of #dev may do that");
    alice.send_line("/remove carol");
    expect_documented(&mut alice, "[!] carol is not in #dev");
    alice.send_line("/remove bob too loud");
    expect_documented(&mut alice, "[*] #dev: bob was removed by alice. (too loud)");
    expect_documented(&mut bob, "[*] #dev: bob was removed by alice. (too loud)");
    expect_documented(
        &mut bob,
        "[*] alice removed you from #dev (too loud); your current room is #lobby.",
    );
    // Still on the server, and in the lobby.
    bob.send_line("still here");
    carol.expect_line(chat_line("bob", "still here"));
    bob.send_line("/join #dev");
    bob.expect_line("[*] You joined #dev");
    alice.send_line("/mod bob");
    expect_documented(&mut bob, "[*] #dev: alice made bob a moderator.");
    bob.send_line("/topic bob's topic");
    alice.expect_line("[*] #dev: bob set the topic: bob's topic");
    bob.send_line("/who");
    bob.expect_line(|l: &str| l == "[*] #dev (2): alice (moderator), bob (moderator)");
}

#[test]
fn leaving_the_server_is_told_in_each_room_and_an_empty_room_vanishes() {
    let server = TestServer::start(&[]);
    let (mut alice, bob, mut carol) = dev(&server);
    drop(bob);
    expect_documented(&mut alice, "[*] #dev: bob exited.");
    alice.expect_line(|l: &str| l == "[*] bob exited.");
    carol.expect_line(|l: &str| l == "[*] bob exited.");
    alice.send_line("/part");
    alice.expect_line("[*] You left #dev");
    carol.send_line("/rooms");
    carol.expect_line(|l: &str| l == "[*] Rooms (1):");
    carol.expect_line(|l: &str| l == "[*]   #lobby (2 members)");
}

#[test]
fn the_room_limits_and_no_create_rooms_refuse_with_a_clear_line() {
    let server = TestServer::start(&["--max-rooms", "3", "--max-rooms-per-user", "2"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.send_line("/join #a");
    alice.expect_line("[*] You made #a");
    alice.send_line("/join #b");
    expect_documented(
        &mut alice,
        "[!] you are in 2 rooms, as many as a user may be: /part one first",
    );
    bob.send_line("/join #b");
    bob.expect_line("[*] You made #b");
    let mut carol = server.join("carol");
    carol.send_line("/join #c");
    expect_documented(
        &mut carol,
        "[!] the server has 3 rooms, as many as it takes: join one of them (/rooms)",
    );

    let server = TestServer::start(&["--no-create-rooms"]);
    let mut alice = server.join("alice");
    alice.send_line("/join #mine");
    expect_documented(
        &mut alice,
        "[!] no room named #mine, and only admins make rooms on this server",
    );
}

#[test]
fn an_admin_makes_a_persistent_room_that_stays_when_empty() {
    let mut server = TestServer::start(&[]);
    let mut root = server.join("root1");
    root.send_line("/register pw");
    root.expect_line("[*] Your name is registered");
    server.console("GRANT root1 admin");
    root.expect_line("[*] Host made you admin.");
    let mut bob = server.join("bob");
    bob.send_line("/room create #ops");
    bob.expect_line(|l: &str| l == "[!] permission denied");
    root.send_line("/room create #ops");
    expect_documented(&mut root, "[*] #ops is made: it stays when empty.");
    bob.send_line("/join #ops");
    bob.expect_line("[*] You joined #ops (1 member)");
    bob.send_line("/part");
    bob.expect_line("[*] You left #ops");
    bob.send_line("/rooms");
    bob.expect_line(|l: &str| l == "[*]   #ops (0 members, persistent)");
    // Admins moderate every room.
    root.send_line("/join #ops");
    root.expect_line("[*] You joined #ops");
    root.send_line("/topic operators");
    root.expect_line("[*] #ops: root1 set the topic: operators");
}

#[test]
fn the_console_lists_rooms_and_says_in_one() {
    let mut server = TestServer::start(&[]);
    let (mut alice, _bob, mut carol) = dev(&server);
    server.console("ROOMS");
    assert_eq!(
        server.expect_stdout("[*]   #dev", TIMEOUT),
        "[*]   #dev (2 members)"
    );
    server.console("SAY #dev hello dev");
    expect_stamped(&mut alice, "#dev Host > hello dev");
    server.console("SAY hello all");
    carol.expect_line(chat_line("Host", "hello all"));
    alice.expect_line(chat_line("Host", "hello all"));
    server.console("SAY #nowhere hi");
    assert_eq!(
        server.expect_stdout("[!]", TIMEOUT),
        "[!] no room named #nowhere: /rooms lists them, /join makes one"
    );
    // Lines said in a room show on the console, tagged.
    alice.send_line("for the console");
    let shown = server.expect_stdout("for the console", TIMEOUT);
    assert!(shown.ends_with("] #dev alice > for the console"), "{shown}");
    // Nothing of #dev reached carol.
    assert_eq!(lines_before_sync(&mut carol), Vec::<String>::new());
}

#[test]
fn the_default_room_is_named_by_a_flag() {
    let server = TestServer::start(&["--default-room", "#Main"]);
    let mut alice = server.join("alice");
    alice.send_line("/rooms");
    alice.expect_line(|l: &str| l == "[*]   #Main (1 member)");
    alice.send_line("/part #main");
    alice.expect_line("[!] #Main is the server's default room");
}

/// How many users a join line names: `[*] a entered.`, `[*] a and b entered.`,
/// `[*] a, b, c and 38 others entered.`
fn joins_told(line: &str) -> usize {
    let names = line
        .strip_prefix("[*] ")
        .and_then(|l| l.strip_suffix(" entered."))
        .unwrap_or_else(|| panic!("not a join line: {line}"));
    let (named, more) = match names.rsplit_once(" and ") {
        Some((named, rest)) => match rest.strip_suffix(" others").or(rest.strip_suffix(" other")) {
            Some(count) => (named, count.parse::<usize>().expect("a count")),
            None => (named, 1),
        },
        None => (names, 0),
    };
    named.split(", ").count() + more
}

#[test]
fn in_a_room_of_more_than_100_joins_are_told_together_and_before_the_newcomers_lines() {
    let server = TestServer::start(&["--no-flood-control"]);
    let mut watcher = server.join("watcher");
    let crowd: Vec<Client> = (0..100).map(|n| server.join(&format!("c{n}"))).collect();
    // Up to here each join was told by itself.
    watcher.expect_line(|l: &str| l == "[*] c99 entered.");
    lines_before_sync(&mut watcher);
    let newcomers: Vec<Client> = (0..5).map(|n| server.join(&format!("new{n}"))).collect();
    let mut told = 0;
    let mut lines = 0;
    while told < 5 {
        let line = watcher.expect_line("[*] ");
        told += joins_told(&line);
        lines += 1;
    }
    assert_eq!(told, 5);
    // Five joins within a second: gathered (in one line unless a second passed among them).
    assert!(lines < 5, "{lines} lines for 5 joins");
    assert!(PROTOCOL.contains("[*] alice, bob, carol and 38 others entered."));
    // A newcomer's first line comes after the line that tells of its join.
    let mut last = server.join("last");
    last.send_line("hello all");
    let first = watcher.next_line();
    assert_eq!(first, "[*] last entered.");
    watcher.expect_line(chat_line("last", "hello all"));
    drop((crowd, newcomers));
}
