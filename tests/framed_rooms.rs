//! Rooms in framed mode, end to end: framed users on raw sockets get typed room frames, text users
//! in the same rooms see them as text, the `chat` line mode passes the room commands through and
//! prints their answers as text-mode lines, and a client of the version before rooms is refused.

mod common;
mod framed_common;

use chatd::proto::framed::{error_code, ClientFrame, RoomChange, ServerFrame};
use chatd::proto::msg::{Departure, MemberEntry, RoomLine, RoomTag};
use framed_common::{is_chat_line, ChatClient, FramedUser, Server, TextUser};

fn command(name: &str, args: &str) -> ClientFrame {
    ClientFrame::Command {
        name: name.into(),
        args: args.into(),
    }
}

fn dev() -> RoomTag {
    RoomTag {
        name: "#dev".into(),
        default: false,
    }
}

/// Whether `frame` is a line of `#dev`, and the line matches.
fn in_dev(frame: &ServerFrame, line: impl Fn(&RoomLine) -> bool) -> bool {
    matches!(frame, ServerFrame::Room { room, line: l, digest_ok: true } if *room == dev() && line(l))
}

#[test]
fn framed_and_text_users_in_a_room_get_its_lines_events_list_who_and_topic() {
    let server = Server::start(&[]);
    let mut alice = FramedUser::join(&server, "alice");
    let mut bob = FramedUser::join(&server, "bob");
    let mut carol = TextUser::join(&server, "carol");

    alice.send(&command("join", "#dev"));
    let joined = alice.expect("alice's join", |f| matches!(f, ServerFrame::CurrentRoom(_)));
    assert_eq!(
        joined,
        ServerFrame::CurrentRoom(RoomChange::Joined {
            room: dev(),
            members: 1,
            created: true,
        })
    );
    bob.send(&command("join", "#dev"));
    let joined = bob.expect("bob's join", |f| matches!(f, ServerFrame::CurrentRoom(_)));
    assert_eq!(
        joined,
        ServerFrame::CurrentRoom(RoomChange::Joined {
            room: dev(),
            members: 2,
            created: false,
        })
    );
    alice.expect("bob entering #dev", |f| {
        in_dev(
            f,
            |l| matches!(l, RoomLine::Entered { names, more: 0 } if names == &["bob"]),
        )
    });
    carol.send("/join #dev");
    carol.expect_line("carol's join", |l| {
        l == "[*] You joined #dev (3 members): plain lines go there now."
    });
    for user in [&mut alice, &mut bob] {
        user.expect("carol entering #dev", |f| {
            in_dev(
                f,
                |l| matches!(l, RoomLine::Entered { names, .. } if names == &["carol"]),
            )
        });
    }

    // A text user's line reaches the framed users as a room chat frame, digest checked.
    carol.send("hi from text");
    for user in [&mut alice, &mut bob] {
        user.expect("carol's line", |f| {
            in_dev(f, |l| matches!(l, RoomLine::Chat { from, text, .. } if from == "carol" && text == "hi from text"))
        });
    }
    // A framed user's say goes to its current room; the text user sees it tagged.
    alice.send(&ClientFrame::say(1, "hi from frames"));
    carol.expect_line("alice's line", |l| {
        is_chat_line(l, "#dev alice > hi from frames")
    });
    bob.expect("alice's line", |f| {
        in_dev(f, |l| matches!(l, RoomLine::Chat { from, text, .. } if from == "alice" && text == "hi from frames"))
    });
    alice.send(&command("me", "waves"));
    carol.expect_line("alice's action", |l| is_chat_line(l, "#dev * alice waves"));
    bob.expect("alice's action", |f| {
        in_dev(
            f,
            |l| matches!(l, RoomLine::Me { from, text, .. } if from == "alice" && text == "waves"),
        )
    });

    alice.send(&command("topic", "Rust talk"));
    carol.expect_line("the topic set", |l| {
        l == "[*] #dev: alice set the topic: Rust talk"
    });
    bob.expect("the topic set", |f| {
        in_dev(
            f,
            |l| matches!(l, RoomLine::Topic { text, by } if text == "Rust talk" && by == "alice"),
        )
    });
    bob.send(&command("topic", ""));
    let topic = bob.expect("the topic", |f| matches!(f, ServerFrame::Topic { .. }));
    let ServerFrame::Topic {
        room,
        topic: Some(topic),
    } = topic
    else {
        panic!("{topic:?}")
    };
    assert_eq!(
        (room.as_str(), topic.text.as_str(), topic.by.as_str()),
        ("#dev", "Rust talk", "alice")
    );

    bob.send(&command("rooms", ""));
    let rooms = bob.expect("the rooms", |f| matches!(f, ServerFrame::Rooms { .. }));
    let ServerFrame::Rooms { rooms } = rooms else {
        unreachable!()
    };
    let listed: Vec<(&str, usize, Option<&str>)> = rooms
        .iter()
        .map(|r| (r.name.as_str(), r.members, r.topic.as_deref()))
        .collect();
    assert_eq!(
        listed,
        vec![("#dev", 3, Some("Rust talk")), ("#lobby", 3, None)]
    );

    bob.send(&command("who", ""));
    let who = bob.expect("who", |f| matches!(f, ServerFrame::Who { .. }));
    let member = |name: &str, moderator| MemberEntry {
        name: name.into(),
        moderator,
        away: None,
    };
    assert_eq!(
        who,
        ServerFrame::Who {
            room: "#dev".into(),
            members: vec![
                member("alice", true),
                member("bob", false),
                member("carol", false)
            ],
        }
    );

    bob.send(&command("part", "#dev lunch"));
    let parted = bob.expect("bob's part", |f| matches!(f, ServerFrame::CurrentRoom(_)));
    assert_eq!(
        parted,
        ServerFrame::CurrentRoom(RoomChange::Parted {
            room: "#dev".into(),
            current: "#lobby".into(),
        })
    );
    alice.expect("bob leaving #dev", |f| {
        in_dev(f, |l| {
            matches!(l, RoomLine::Left { names, how: Departure::Parted, reason: Some(r), .. }
                if names == &["bob"] && r == "lunch")
        })
    });
    carol.expect_line("bob leaving #dev", |l| l == "[*] #dev: bob left. (lunch)");
    // Back in the default room, bob's lines reach everyone untagged, as before rooms.
    bob.send(&ClientFrame::say(2, "back in the lobby"));
    carol.expect_line("bob's lobby line", |l| {
        is_chat_line(l, "bob > back in the lobby")
    });
    alice.send(&command("room", "#lobby"));
    let switched = alice.expect("alice's switch", |f| {
        matches!(f, ServerFrame::CurrentRoom(_))
    });
    assert_eq!(
        switched,
        ServerFrame::CurrentRoom(RoomChange::Switched {
            room: RoomTag {
                name: "#lobby".into(),
                default: true,
            }
        })
    );
    alice.send(&command("room", "#nowhere"));
    let refused = alice.expect("the refusal", |f| matches!(f, ServerFrame::Error { .. }));
    assert!(
        matches!(
            &refused,
            ServerFrame::Error {
                code: error_code::NO_SUCH_ROOM,
                ..
            }
        ),
        "{refused:?}"
    );
}

#[test]
fn a_client_of_the_version_before_rooms_is_refused_naming_both_versions() {
    let server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut old = FramedUser::connect(&server);
    old.send(&ClientFrame::Hello {
        version: 1,
        name: "old".into(),
    });
    let frames = old.expect_closed();
    assert_eq!(
        frames,
        vec![ServerFrame::Error {
            code: error_code::BAD_VERSION,
            id: 0,
            text: "unsupported protocol version 1: this server speaks version 2; use a chat client of that version".into(),
        }]
    );
    // Everyone else carries on.
    let mut other = TextUser::join(&server, "omar");
    other.send("still here");
    nina.expect_line("omar's line", |l| is_chat_line(l, "omar > still here"));
}

#[test]
fn the_chat_line_mode_passes_room_commands_and_prints_their_answers_as_text_lines() {
    let server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut chat = ChatClient::join(&server, "cat");
    nina.expect_line("cat entering", |l| l == "[*] cat entered.");

    chat.send("/join #dev");
    chat.stdout
        .expect_containing("[*] You made #dev and moderate it: plain lines go there now.");
    nina.send("/join #dev");
    chat.stdout.expect_containing("[*] #dev: nina entered.");
    chat.send("hello room");
    nina.expect_line("cat's line", |l| is_chat_line(l, "#dev cat > hello room"));
    nina.send("hello cat");
    let line = chat.stdout.expect_containing("hello cat");
    assert!(is_chat_line(&line, "#dev nina > hello cat"), "{line}");
    chat.send("/me waves");
    nina.expect_line("cat's action", |l| is_chat_line(l, "#dev * cat waves"));
    chat.send("/topic Rust talk");
    nina.expect_line("the topic", |l| {
        l == "[*] #dev: cat set the topic: Rust talk"
    });
    chat.send("/topic");
    chat.stdout
        .expect_containing("[*] Topic of #dev: Rust talk (set by cat on ");
    chat.send("/who");
    chat.stdout
        .expect_containing("[*] #dev (2): cat (moderator), nina");
    chat.send("/rooms");
    chat.stdout.expect_containing("[*] Rooms (2):");
    chat.stdout
        .expect_containing("[*]   #dev (2 members): Rust talk");
    chat.stdout.expect_containing("[*]   #lobby (2 members)");
    chat.send("/room #lobby");
    chat.stdout
        .expect_containing("[*] Your current room is #lobby: plain lines go there now.");
    chat.send("/part #dev");
    chat.stdout
        .expect_containing("[*] You left #dev; your current room is #lobby.");
    nina.expect_line("cat leaving", |l| l == "[*] #dev: cat left.");
    chat.send("/quit");
    assert!(chat.wait().success());
}
