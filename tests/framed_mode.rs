//! Framed mode end to end: the real `chatd` and `chat` binaries, text users on raw sockets, and
//! framed users sending frames the `chat` client never would.

mod common;
mod framed_common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use chatd::proto::framed::{self, error_code, ClientFrame, ServerFrame};
use chatd::proto::msg::{ServerMsg, Stamp};
use chatd::proto::text;
use framed_common::{is_chat_line, ChatClient, FramedUser, Server, TextUser};

#[test]
fn past_twenty_users_the_welcome_names_the_first_twenty_and_counts_the_rest() {
    let server = Server::start(&[]);
    let users: Vec<TextUser> = (0..22)
        .rev()
        .map(|n| TextUser::join(&server, &format!("u{n:02}")))
        .collect();
    let mut framed = FramedUser::connect(&server);
    framed.send(&ClientFrame::hello("zed"));
    let welcome = framed.expect("the welcome", |f| matches!(f, ServerFrame::Welcome { .. }));
    let first: Vec<String> = (0..20).map(|n| format!("u{n:02}")).collect();
    assert_eq!(
        welcome,
        ServerFrame::Welcome {
            name: "zed".into(),
            others: first.clone(),
            more: 2,
        }
    );
    let mut text = TextUser::connect(&server);
    text.send("yan");
    text.expect_line("the welcome", |l| {
        l == format!(
            "[*] Welcome, yan! Online: {} and 3 more. Type /help for the commands.",
            first.join(", ")
        )
    });
    drop(users);
}

#[test]
fn a_chat_user_and_two_text_users_talk_both_ways() {
    let server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut omar = TextUser::join(&server, "omar");
    let mut chat = ChatClient::start(&["--name", "cat", &server.addr.to_string()]);
    chat.stdout
        .expect_containing("[*] Welcome, cat! Online: nina, omar. Type /help for the commands.");
    nina.expect_line("cat entering", |l| l == "[*] cat entered.");
    omar.expect_line("cat entering", |l| l == "[*] cat entered.");

    chat.send("hello text users");
    for user in [&mut nina, &mut omar] {
        user.expect_line("cat's line", |l| is_chat_line(l, "cat > hello text users"));
    }

    omar.send("same line for everyone");
    let seen_by_nina = nina.expect_containing("omar > same line for everyone");
    let seen_by_chat = chat
        .stdout
        .expect_containing("omar > same line for everyone");
    assert_eq!(
        seen_by_chat, seen_by_nina,
        "the client shows what nc users see"
    );
    assert!(is_chat_line(&seen_by_chat, "omar > same line for everyone"));

    omar.send("/dm cat psst");
    let dm = chat.stdout.expect_containing("psst");
    assert!(is_chat_line(&dm, "[dm] omar > psst"), "{dm}");
    chat.send("/dm nina secret");
    nina.expect_line("cat's dm", |l| is_chat_line(l, "[dm] cat > secret"));

    chat.send("/users");
    chat.stdout
        .expect_containing("[*] Online (3): cat, nina, omar");

    chat.send("/quit gone fishing");
    chat.stdout.expect_containing("[*] Bye.");
    nina.expect_line("cat exiting", |l| l == "[*] cat exited. (gone fishing)");
    omar.expect_line("cat exiting", |l| l == "[*] cat exited. (gone fishing)");
    assert!(chat.wait().success());
    // Each has read past the point where a stray dm would have arrived.
    assert!(
        !nina.seen.iter().any(|l| l.contains("psst")),
        "{:#?}",
        nina.seen
    );
    assert!(
        !omar.seen.iter().any(|l| l.contains("secret")),
        "{:#?}",
        omar.seen
    );
}

#[test]
fn a_frame_with_a_wrong_digest_is_refused_naming_its_id_and_not_relayed() {
    let mut server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut fred = FramedUser::join(&server, "fred");
    nina.expect_line("fred entering", |l| l == "[*] fred entered.");

    fred.send(&ClientFrame::Say {
        id: 77,
        text: "tampered".into(),
        digest: framed::digest(b"original"),
    });
    let error = fred.expect("an error", |f| matches!(f, ServerFrame::Error { .. }));
    assert_eq!(
        error,
        ServerFrame::Error {
            code: error_code::BAD_DIGEST,
            id: 77,
            text: "digest mismatch in message 77: not relayed".into(),
        }
    );

    // The connection stays, and the next message is the first nina sees from fred.
    fred.send(&ClientFrame::say(78, "after"));
    nina.expect_line("fred's good line", |l| is_chat_line(l, "fred > after"));
    assert!(
        !nina.seen.iter().any(|l| l.contains("tampered")),
        "{:#?}",
        nina.seen
    );
    server.console.expect_containing("fred > after");
    assert!(
        !server.console.seen.iter().any(|l| l.contains("tampered")),
        "the console saw it: {:#?}",
        server.console.seen
    );
}

#[test]
fn an_oversized_length_closes_only_that_connection() {
    let server = Server::start(&["--max-frame", "4096"]);
    let mut nina = TextUser::join(&server, "nina");
    let mut omar = TextUser::join(&server, "omar");
    let mut fred = FramedUser::join(&server, "fred");
    nina.expect_line("fred entering", |l| l == "[*] fred entered.");

    // 4097 bytes announced: refused on the header alone, before any body is sent.
    fred.send_raw(&4097u32.to_be_bytes());
    let frames = fred.expect_closed();
    assert_eq!(
        frames,
        vec![ServerFrame::Error {
            code: error_code::FRAME_TOO_LONG,
            id: 0,
            text: "frame too long: 4097 bytes, the limit is 4096".into(),
        }]
    );
    nina.expect_line("fred exiting", |l| l == "[*] fred exited.");

    nina.send("still here");
    omar.expect_line("nina's line", |l| is_chat_line(l, "nina > still here"));
    let mut late = FramedUser::join(&server, "late");
    late.send(&ClientFrame::say(1, "hi all"));
    omar.expect_line("late's line", |l| is_chat_line(l, "late > hi all"));

    // A connection that never joined is closed the same way, with nobody told.
    let mut stranger = FramedUser::connect(&server);
    stranger.send_raw(&[0, 0, 0xff, 0xff]);
    assert!(matches!(
        stranger.expect_closed()[..],
        [ServerFrame::Error {
            code: error_code::FRAME_TOO_LONG,
            ..
        }]
    ));
    nina.send("and still");
    omar.expect_line("nina's line", |l| is_chat_line(l, "nina > and still"));
}

#[test]
fn an_unknown_version_gets_an_error_frame_then_the_connection_closes() {
    let server = Server::start(&[]);
    let mut future = FramedUser::connect(&server);
    future.send(&ClientFrame::Hello {
        version: 3,
        name: "future".into(),
    });
    let frames = future.expect_closed();
    assert!(
        matches!(
            &frames[..],
            [ServerFrame::Error { code: error_code::BAD_VERSION, text, .. }]
                if text.starts_with("unsupported protocol version 3")
        ),
        "{frames:?}"
    );
}

#[test]
fn a_frame_cut_off_by_the_end_of_the_stream_is_dropped_cleanly() {
    let server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut fred = FramedUser::join(&server, "fred");
    nina.expect_line("fred entering", |l| l == "[*] fred entered.");
    let mut bytes = Vec::new();
    ClientFrame::say(1, "never finished").encode(&mut bytes);
    fred.send_raw(&bytes[..bytes.len() / 2]);
    fred.shutdown_write();
    nina.expect_line("fred exiting", |l| l == "[*] fred exited.");
    assert!(!nina.seen.iter().any(|l| l.contains("never finished")));
    let _omar = TextUser::join(&server, "omar");
    nina.expect_line("omar entering", |l| l == "[*] omar entered.");
}

#[test]
fn ping_prints_the_round_trip_time() {
    let server = Server::start(&[]);
    let mut chat = ChatClient::join(&server, "pinger");
    chat.send("/ping");
    let pong = chat.stdout.expect_containing("[*] pong in ");
    let ms = pong["[*] pong in ".len()..]
        .split(' ')
        .next()
        .and_then(|ms| ms.parse::<f64>().ok());
    assert!(ms.is_some_and(|ms| ms >= 0.0), "{pong}");
    assert!(pong.contains(" ms, server time "), "{pong}");
}

#[test]
fn a_script_is_relayed_and_chat_exits_zero_after_quit() {
    let server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut chat = ChatClient::start(&["--name", "bot", &server.addr.to_string()]);
    // Typed before the welcome, as `printf 'hello\n/quit\n' | chat --name bot` does.
    chat.send("hello");
    chat.send("/quit");
    chat.close_stdin();
    nina.expect_line("bot's line", |l| is_chat_line(l, "bot > hello"));
    nina.expect_line("bot exiting", |l| l == "[*] bot exited.");
    assert!(chat.wait().success());
}

#[test]
fn a_first_interrupt_leaves_as_quit_does() {
    let server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut chat = ChatClient::join(&server, "ctrl");
    nina.expect_line("ctrl entering", |l| l == "[*] ctrl entered.");
    chat.interrupt();
    chat.stdout.expect_containing("[*] Bye.");
    nina.expect_line("ctrl exiting", |l| l == "[*] ctrl exited.");
    assert!(chat.wait().success());
}

#[test]
fn the_end_of_stdin_quits_and_without_a_name_the_first_line_is_the_name() {
    let server = Server::start(&[]);
    let mut nina = TextUser::join(&server, "nina");
    let mut chat = ChatClient::start(&[&server.addr.to_string()]);
    chat.stdout.expect_containing("Enter your name:");
    chat.send("NINA");
    chat.stdout
        .expect_containing("[!] name taken: someone online already uses it");
    chat.stdout.expect_containing("Enter your name:");
    chat.send("zed");
    chat.send("hi from zed");
    chat.close_stdin();
    nina.expect_line("zed entering", |l| l == "[*] zed entered.");
    nina.expect_line("zed's line", |l| is_chat_line(l, "zed > hi from zed"));
    nina.expect_line("zed exiting", |l| l == "[*] zed exited.");
    assert!(chat.wait().success());
}

#[test]
fn chat_exits_non_zero_on_a_refused_name_and_when_no_server_listens() {
    let server = Server::start(&[]);
    let _nina = TextUser::join(&server, "nina");
    let mut taken = ChatClient::start(&["--name", "Nina", &server.addr.to_string()]);
    taken.stdout.expect_containing("[!] name taken");
    taken
        .stderr
        .expect_containing("chat: the server refused the name Nina");
    assert_eq!(taken.wait().code(), Some(1));

    // A port that was just free: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut nobody = ChatClient::start(&["--name", "x", &addr.to_string()]);
    nobody.stderr.expect_containing("chat: cannot connect to");
    assert_eq!(nobody.wait().code(), Some(1));
}

#[test]
fn chat_flags_a_message_whose_digest_does_not_match() {
    // A stand-in server that sends one damaged and one good chat frame, then hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut chat = ChatClient::start(&["--name", "eve", &addr.to_string()]);
    let (mut socket, _) = listener.accept().expect("accept");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut hello = [0u8; 4 + 1 + 2 + 2 + 3];
    socket.read_exact(&mut hello).expect("the hello");
    assert_eq!(hello[4], framed::frame_type::HELLO);

    let mut bytes = Vec::new();
    text::encode(
        &ServerMsg::Greeting { online: 1 },
        text::CLIENT_EOL,
        &mut bytes,
    );
    let at = Stamp::new(1_700_000_000, 8, 0, 1);
    for msg in [
        ServerMsg::Welcome {
            name: "eve".into(),
            others: vec!["mallory".into()],
            more: 0,
        },
        ServerMsg::Chat {
            at,
            from: "mallory".into(),
            text: "hello".into(),
        },
    ] {
        framed::encode(&msg, &mut bytes);
    }
    let damaged = bytes.len() - framed::DIGEST_LEN - 4; // the 'e' of "hello"
    assert_eq!(bytes[damaged], b'e');
    bytes[damaged] = b'x';
    framed::encode(
        &ServerMsg::Chat {
            at,
            from: "mallory".into(),
            text: "fine".into(),
        },
        &mut bytes,
    );
    socket.write_all(&bytes).expect("send");

    chat.stdout
        .expect_containing("[!] digest mismatch: [08:00:01] mallory > hxllo");
    let good = chat.stdout.expect_containing("fine");
    assert_eq!(good, "[08:00:01] mallory > fine");
    drop(socket);
    chat.stderr
        .expect_containing("chat: the server closed the connection: connection lost");
    assert_eq!(chat.wait().code(), Some(1));
}

#[test]
fn text_users_still_get_the_greeting_and_text_once_a_framed_user_is_in() {
    let server = Server::start(&[]);
    let mut fred = FramedUser::join(&server, "fred");
    let mut tia = TextUser::connect(&server);
    tia.expect_line("the greeting", |l| {
        l == "Welcome to chatd! Users online: 1."
    });
    tia.expect_line("the prompt", |l| l == "Enter your name:");
    tia.send("tia");
    tia.expect_line("the welcome", |l| {
        l == "[*] Welcome, tia! Online: fred. Type /help for the commands."
    });
    let entered = fred.expect("tia entering", |f| matches!(f, ServerFrame::Event(_)));
    assert_eq!(
        entered,
        ServerFrame::Event(chatd::proto::msg::Event::Entered { name: "tia".into() })
    );
    fred.send(&ClientFrame::say(1, "hi tia"));
    tia.expect_line("fred's line", |l| is_chat_line(l, "fred > hi tia"));
}
