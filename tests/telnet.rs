//! Telnet clients in text mode: commands stripped from what they type, negotiation answered
//! (never looping), Ctrl-C (IAC IP + IAC DO TIMING-MARK) answered without freezing the user, and
//! echo turned off around a password. Raw bytes over TCP first, then Debian's real `telnet` in a
//! tmux pane.

mod common;

use std::process::Command;

use common::tmux::Tmux;
use common::{assert_chat, chat_text, Client, TestServer, PROMPT};

// The bytes of RFC 854, 857 and 860, spelled out as the tests expect them on the wire.
const IAC: u8 = 0xff;
const DONT: u8 = 0xfe;
const DO: u8 = 0xfd;
const WONT: u8 = 0xfc;
const WILL: u8 = 0xfb;
const SB: u8 = 0xfa;
const SE: u8 = 0xf0;
const IP: u8 = 0xf4;
const NOP: u8 = 0xf1;
const ECHO: u8 = 1;
const SGA: u8 = 3;
const TM: u8 = 6;
const NAWS: u8 = 31;

const MIB: usize = 1024 * 1024;

const INTERRUPTED: &str = "[*] Interrupted: the line you were typing was not sent.";

/// Joins `name` and waits until `watcher` has seen it enter.
fn join_watched(server: &TestServer, name: &str, watcher: &mut Client) -> Client {
    let client = server.join(name);
    watcher.expect_line(format!("[*] {name} entered."));
    client
}

/// The next chat line `watcher` gets from `from`, which must say `text`, exactly.
#[track_caller]
fn expect_said(watcher: &mut Client, from: &str, text: &str) {
    let line = watcher.expect_line(|l: &str| chat_text(l, from).is_some());
    assert_chat(&line, from, text);
}

#[test]
fn telnet_commands_and_subnegotiations_never_reach_the_room_and_are_answered() {
    let server = TestServer::start(&[]);
    let mut bob = server.join("bob");
    let mut tel = join_watched(&server, "tel", &mut bob);
    let typed = [
        [IAC, WILL, NAWS, IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE].as_slice(),
        b"hel",
        &[IAC, NOP],
        b"lo ",
        &[IAC, IAC],
        b"there\r\n",
    ]
    .concat();
    tel.send_raw(&typed);
    // The doubled IAC is one 0xFF byte of text, which is not UTF-8.
    expect_said(&mut bob, "tel", "hello \u{FFFD}there");
    // Offered NAWS, refused once; asked for SGA, refused; the client's refusals get nothing.
    tel.send_raw(&[IAC, DO, SGA, IAC, WONT, NAWS, IAC, DONT, SGA]);
    tel.send_line("/users");
    let answer = tel.next_line_raw();
    assert_eq!(
        answer,
        [
            [IAC, DONT, NAWS, IAC, WONT, SGA].as_slice(),
            b"[*] Online (2): bob, tel"
        ]
        .concat(),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn ctrl_c_is_answered_with_the_timing_mark_drops_the_half_line_and_the_next_line_is_clean() {
    let server = TestServer::start(&[]);
    let mut bob = server.join("bob");
    let mut tel = join_watched(&server, "tel", &mut bob);
    // What Debian's telnet sends for Ctrl-C: IAC IP, then IAC DO TIMING-MARK, after which it
    // shows nothing until the server answers the mark.
    tel.send_raw(b"half a li");
    tel.send_raw(&[IAC, IP, IAC, DO, TM]);
    assert_eq!(
        tel.next_line_raw(),
        [IAC, WILL, TM],
        "the mark, then a new line"
    );
    assert_eq!(tel.next_line(), INTERRUPTED);
    tel.send_line("after ctrl-c");
    expect_said(&mut bob, "tel", "after ctrl-c");
    // Not frozen: the user still sees the room, and is still in it.
    bob.send_line("still there?");
    expect_said(&mut tel, "bob", "still there?");
    assert_eq!(bob.sync(), vec!["[*] Online (2): bob, tel"]);
}

#[test]
fn a_plain_client_never_gets_telnet_bytes_and_a_telnet_one_types_its_password_unechoed() {
    let server = TestServer::start(&[]);
    let mut carol = server.join("carol");
    carol.send_line("/register hunter22");
    carol.expect_line("[*] Your name is registered");
    carol.send_line("/quit");
    carol.expect_closed();

    // nc: the prompt exactly as before, no negotiation.
    let mut plain = Client::connect(server.addr());
    plain.expect_line(|l: &str| l == PROMPT);
    plain.send_line("carol");
    assert_eq!(plain.next_line_raw(), b"Password:");
    plain.send_line("hunter22");
    plain.expect_line("[*] Welcome, carol!");
    plain.send_line("/quit");
    plain.expect_closed();

    // telnet (known as one by a command it sent): WILL ECHO with the prompt, WONT ECHO once the
    // password's line is in, before the answer to it.
    let mut tel = Client::connect(server.addr());
    tel.expect_line(|l: &str| l == PROMPT);
    tel.send_raw(&[IAC, DO, TM]);
    tel.send_line("carol");
    assert_eq!(
        tel.next_line_raw(),
        [[IAC, WILL, TM, IAC, WILL, ECHO].as_slice(), b"Password:"].concat()
    );
    // The client agrees (not answered), then types the password.
    tel.send_raw(&[IAC, DO, ECHO]);
    tel.send_raw(b"hunter22\r\n");
    let welcome = tel.next_line_raw();
    assert!(
        welcome.starts_with(&[IAC, WONT, ECHO, b'[', b'*', b']']),
        "{:?}",
        String::from_utf8_lossy(&welcome)
    );
    assert!(String::from_utf8_lossy(&welcome).contains("Welcome, carol!"));
    // Its acknowledgement is not answered: the next line has no telnet bytes.
    tel.send_raw(&[IAC, DONT, ECHO]);
    tel.send_line("/users");
    assert_eq!(tel.next_line_raw(), b"[*] Online (1): carol");
}

/// The real client, when it is installed (the test fails saying how to get it when it is not).
fn telnet_installed() {
    let found = Command::new("sh")
        .args(["-c", "command -v telnet"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "tests/telnet.rs drives Debian's telnet in tmux, and it is not installed \
         (apt-get install telnet; .ci/run installs it when it is missing)"
    );
}

/// Opens `telnet` to `server` in a pane named `name`, at the name prompt.
fn open_telnet(tmux: &Tmux, server: &TestServer, name: &str) {
    telnet_installed();
    let port = server.addr().port().to_string();
    tmux.open(name, 100, 30, &["telnet", "127.0.0.1", &port]);
    tmux.wait_text(name, PROMPT);
}

/// How many rows of `name`'s pane contain `text`.
fn rows_with(tmux: &Tmux, name: &str, text: &str) -> usize {
    tmux.screen(name)
        .iter()
        .filter(|row| row.contains(text))
        .count()
}

/// Waits until the telnet client in `name` has had the server's refusals of character mode:
/// keys typed before that go out one by one, Ctrl-C among them as a plain 0x03. Its `status`
/// command tells which mode it is in.
fn settle_in_line_mode(tmux: &Tmux, name: &str) {
    const LINE_MODE: &str = "Operating in obsolete linemode";
    for asked in 1..=20 {
        tmux.press(name, &["C-]"]);
        tmux.type_text(name, "status");
        tmux.press(name, &["Enter"]);
        tmux.wait_for(name, "telnet's status", |screen| {
            let answers = screen.iter().filter(|row| row.starts_with("Operating in"));
            answers.count() >= asked
        });
        let screen = tmux.screen(name);
        let last = screen
            .iter()
            .rev()
            .find(|row| row.starts_with("Operating in"));
        if last.is_some_and(|row| row.starts_with(LINE_MODE)) {
            return;
        }
    }
    panic!("{name}: telnet never went back to line mode");
}

#[test]
fn ctrl_c_in_the_real_telnet_client_never_freezes_its_user() {
    let server = TestServer::start(&[]);
    let mut bob = server.join("bob");
    let tmux = Tmux::new();
    open_telnet(&tmux, &server, "tel");
    tmux.type_text("tel", "tel");
    tmux.press("tel", &["Enter"]);
    tmux.wait_text("tel", "[*] Welcome, tel!");
    bob.expect_line("[*] tel entered.");

    // Line mode (the client's start): Ctrl-C sends IAC IP and IAC DO TIMING-MARK.
    tmux.type_text("tel", "half a line");
    tmux.press("tel", &["C-c"]);
    tmux.wait_text("tel", INTERRUPTED);
    tmux.type_text("tel", "after ctrl-c");
    tmux.press("tel", &["Enter"]);
    expect_said(&mut bob, "tel", "after ctrl-c");
    bob.send_line("hello tel");
    tmux.wait_text("tel", "bob > hello tel");

    // Asked for character mode (^] then `mode character`), the client asks the server for SGA
    // and ECHO; both are refused, so it stays in line mode and Ctrl-C is IAC IP again.
    tmux.press("tel", &["C-]"]);
    tmux.wait_text("tel", "telnet>");
    tmux.type_text("tel", "mode character");
    tmux.press("tel", &["Enter"]);
    settle_in_line_mode(&tmux, "tel");
    // A line said proves the client is back in its session, taking keys for the server.
    tmux.type_text("tel", "back in line mode");
    tmux.press("tel", &["Enter"]);
    expect_said(&mut bob, "tel", "back in line mode");
    tmux.type_text("tel", "abc");
    tmux.press("tel", &["C-c"]);
    tmux.wait_for("tel", "a second interrupt answered", |screen| {
        screen
            .iter()
            .filter(|row| row.contains(INTERRUPTED))
            .count()
            == 2
    });
    tmux.type_text("tel", "second try");
    tmux.press("tel", &["Enter"]);
    expect_said(&mut bob, "tel", "second try");
    bob.send_line("hello again");
    tmux.wait_text("tel", "bob > hello again");
    let typed = tmux.history("tel");
    let abc = typed.iter().filter(|row| row.contains("abc")).count();
    assert_eq!(abc, 1, "typed once, sent never: {typed:#?}");
    assert_eq!(bob.sync(), vec!["[*] Online (2): bob, tel"]);
}

#[test]
fn a_password_typed_in_the_real_telnet_client_does_not_show() {
    let server = TestServer::start(&[]);
    let mut dave = server.join("dave");
    dave.send_line("/register s3cret-pw");
    dave.expect_line("[*] Your name is registered");
    dave.send_line("/quit");
    dave.expect_closed();

    let tmux = Tmux::new();
    open_telnet(&tmux, &server, "tel");
    // A Ctrl-C at the prompt is what makes the client known as telnet (it sends nothing
    // telnet-specific on its own to a port other than 23).
    tmux.press("tel", &["C-c"]);
    tmux.wait_text("tel", INTERRUPTED);
    tmux.type_text("tel", "dave");
    tmux.press("tel", &["Enter"]);
    tmux.wait_text("tel", "Password:");
    tmux.type_text("tel", "s3cret-pw");
    tmux.press("tel", &["Enter"]);
    tmux.wait_text("tel", "[*] Welcome, dave!");
    assert_eq!(
        rows_with(&tmux, "tel", "s3cret-pw"),
        0,
        "{:#?}",
        tmux.screen("tel")
    );
    // Echo is back: what is typed next shows as it is typed.
    tmux.type_text("tel", "visible");
    tmux.wait_text("tel", "visible");
}

#[test]
fn a_peer_that_asks_for_options_endlessly_and_never_reads_is_cut_as_a_slow_consumer() {
    let server = TestServer::start(&["--max-outbuf", "65536"]);
    let mut bob = server.join("bob");
    let mut evil = join_watched(&server, "evil", &mut bob);
    // Each request gets a refusal of its own: 3 bytes out for 3 in, never read.
    let requests = [IAC, DO, SGA].repeat(MIB / 3);
    let sent = (0..64)
        .take_while(|_| evil.try_send_raw(&requests).is_ok())
        .count();
    assert!(sent < 64, "all of the 64 MiB of requests were taken");
    bob.expect_line("[*] evil exited.");
    bob.send_line("/users");
    assert_eq!(bob.next_line(), "[*] Online (1): bob");
}
