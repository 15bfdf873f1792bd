//! The text-mode contract (PROTOCOL.md, issue 2), checked against the real binary over TCP.

mod common;

use common::{assert_chat, Client, TestServer, PROMPT, TIMEOUT};

#[test]
fn the_greeting_counts_the_users_online_and_ends_with_the_name_prompt() {
    let server = TestServer::start(&[]);
    let mut first = Client::connect(server.addr());
    let greeting = first.expect_line(|l: &str| l == PROMPT);
    assert_eq!(greeting, PROMPT);
    let mut before = first.history_lines();
    before.pop();
    assert!(
        before.iter().any(|l| l.contains("Users online: 0")),
        "greeting: {before:?}"
    );
    first.send_line("alice");
    first.expect_line("[*] Welcome, alice!");

    let mut second = Client::connect(server.addr());
    let line = second.next_line();
    assert!(line.contains("Users online: 1"), "{line}");
    assert_eq!(
        second.next_line(),
        PROMPT,
        "the prompt is the greeting's last line"
    );
}

#[test]
fn a_refused_name_gets_one_reason_line_and_the_prompt_again_and_the_connection_stays() {
    let mut server = TestServer::start(&[]);
    let _alice = server.join("Alice");
    let mut bob = Client::connect(server.addr());
    assert_eq!(bob.expect_line(|l: &str| l == PROMPT), PROMPT);
    let too_long = "a".repeat(33);
    for name in [
        "alice",     // taken, in another case
        "ALICE",     // taken
        "Host",      // reserved
        "HOST",      // reserved in any case
        "host",      // reserved
        "two words", // a space
        "b@d",       // not a letter, digit, '_', '-' or '.'
        "bøb",       // not ASCII
        too_long.as_str(),
    ] {
        bob.send_line(name);
        let reason = bob.next_line();
        assert!(
            reason.starts_with("[!] "),
            "name {name:?} got {reason:?} instead of a [!] line"
        );
        assert_eq!(bob.next_line(), PROMPT, "the prompt again after {name:?}");
    }
    let longest = "b".repeat(32);
    bob.send_line(&longest);
    let welcome = bob.next_line();
    assert!(
        welcome.starts_with(&format!("[*] Welcome, {longest}!")),
        "{welcome}"
    );
    server.expect_stdout(format!("[*] {longest} entered."), TIMEOUT);
}

#[test]
fn joining_welcomes_with_who_is_online_and_tells_the_others_and_the_console() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    assert_eq!(
        server.expect_stdout("entered.", TIMEOUT),
        "[*] alice entered."
    );

    let mut bob = Client::connect(server.addr());
    let welcome = bob.join("bob");
    assert!(welcome.starts_with("[*] Welcome, bob!"), "{welcome}");
    assert!(welcome.contains("alice"), "who is online: {welcome}");
    assert!(welcome.contains("/help"), "how to get help: {welcome}");
    assert_eq!(alice.next_line(), "[*] bob entered.");
    assert_eq!(
        server.expect_stdout("entered.", TIMEOUT),
        "[*] bob entered."
    );

    let mut carol = Client::connect(server.addr());
    let welcome = carol.join("carol");
    assert!(
        welcome.contains("alice") && welcome.contains("bob") && !welcome.contains("carol,"),
        "{welcome}"
    );
    assert_eq!(alice.next_line(), "[*] carol entered.");
    assert_eq!(bob.next_line(), "[*] carol entered.");
    assert_eq!(
        server.expect_stdout("entered.", TIMEOUT),
        "[*] carol entered."
    );
}

#[test]
fn a_chat_line_reaches_the_others_and_the_console_but_not_the_sender() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    alice.expect_line("[*] carol entered.");
    bob.expect_line("[*] carol entered.");

    alice.send_line("hello there, how is it going?");
    for other in [&mut bob, &mut carol] {
        assert_chat(&other.next_line(), "alice", "hello there, how is it going?");
    }
    let console = server.expect_stdout(" > ", TIMEOUT);
    assert_chat(&console, "alice", "hello there, how is it going?");

    // The very next line alice sees is the answer to /users: her own line was not echoed.
    alice.send_line("/users");
    assert_eq!(alice.next_line(), "[*] Online (3): alice, bob, carol");

    // A doubled slash escapes a leading slash.
    bob.send_line("//not a command");
    assert_chat(&alice.next_line(), "bob", "/not a command");
    assert_chat(&carol.next_line(), "bob", "/not a command");
}

#[test]
fn room_lines_and_direct_messages_sent_together_arrive_in_the_order_they_were_sent() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    // One write: the server reads and relays them in the same turn of its loop.
    alice.send_raw(b"one\n/dm bob two\nthree\n/dm bob four\n/quit\n");
    assert_chat(&bob.next_line(), "alice", "one");
    assert_chat(&bob.next_line(), "[dm] alice", "two");
    assert_chat(&bob.next_line(), "alice", "three");
    assert_chat(&bob.next_line(), "[dm] alice", "four");
    assert_eq!(bob.next_line(), "[*] alice exited.");
}

#[test]
fn empty_lines_are_ignored_and_crlf_is_accepted() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = Client::connect(server.addr());
    bob.expect_line(|l: &str| l == PROMPT);
    bob.send_raw(b"bob\r\n");
    assert!(bob.next_line().starts_with("[*] Welcome, bob!"));
    assert_eq!(alice.next_line(), "[*] bob entered.");

    bob.send_raw(b"\n\r\n   \n\t\r\nfirst words\r\n");
    assert_chat(&alice.next_line(), "bob", "first words");
    bob.send_raw(b"a line in two\r");
    bob.send_raw(b"\n");
    assert_chat(&alice.next_line(), "bob", "a line in two");
    // Nothing else (no empty chat line) came before the /users answer.
    assert_eq!(alice.sync(), vec!["[*] Online (2): alice, bob"]);
}

#[test]
fn help_lists_every_command_on_a_line_of_its_own() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    alice.send_line("/help");
    let mut lines = alice.sync();
    assert_eq!(lines.pop().as_deref(), Some("[*] Online (1): alice"));
    assert!(lines[0].starts_with("[*] "), "{lines:#?}");
    // A heading, then one line per command, each starting with that command.
    let commands: Vec<&str> = lines[1..]
        .iter()
        .map(|l| {
            let entry = l.strip_prefix("[*]").unwrap_or_else(|| panic!("{l:?}"));
            let entry = entry.trim_start();
            assert!(entry.starts_with('/'), "not a command line: {l:?}");
            entry.split_whitespace().next().unwrap_or_default()
        })
        .collect();
    for command in ["/help", "/users", "/bm", "/quit"] {
        let lines_for = commands.iter().filter(|&&c| c == command).count();
        assert_eq!(lines_for, 1, "{command} in {lines:#?}");
    }
}

#[test]
fn users_and_its_aliases_list_who_is_online() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let _bob = server.join("Bob");
    alice.expect_line("[*] Bob entered.");
    for command in ["/users", "/list", "/viewusers", "/LIST", "/Users"] {
        alice.send_line(command);
        assert_eq!(
            alice.next_line(),
            "[*] Online (2): alice, Bob",
            "answer to {command}"
        );
    }
}

#[test]
fn bm_says_text_to_everyone_else_like_a_plain_line() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    alice.send_line("/bm hi all");
    assert_chat(&bob.next_line(), "alice", "hi all");
    assert_chat(&server.expect_stdout(" > ", TIMEOUT), "alice", "hi all");
    assert_eq!(alice.sync(), vec!["[*] Online (2): alice, bob"], "no echo");
    alice.send_line("/bm");
    let usage = alice.next_line();
    assert!(usage.starts_with("[!] "), "{usage}");
}

#[test]
fn quit_and_its_aliases_close_the_connection_and_tell_the_others_and_the_console() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    for (i, (command, told)) in [
        ("/quit gone home", "exited. (gone home)"),
        ("/exit", "exited."),
        ("/disconnect", "exited."),
        ("/QUIT", "exited."),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("quitter{i}");
        let mut quitter = server.join(&name);
        alice.expect_line(format!("[*] {name} entered."));
        quitter.send_line(command);
        let last = quitter.expect_closed();
        assert!(
            last.iter().all(|l| !l.starts_with("[!]")),
            "{command}: {last:?}"
        );
        assert_eq!(alice.next_line(), format!("[*] {name} {told}"), "{command}");
        assert_eq!(
            server.expect_stdout(" exited.", TIMEOUT),
            format!("[*] {name} {told}")
        );
    }
    assert_eq!(alice.sync(), vec!["[*] Online (1): alice"]);
}

#[test]
fn a_dropped_connection_is_announced_exactly_once() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    let mut carol = server.join("carol");
    alice.expect_line("[*] carol entered.");
    // Bob vanishes without a word; carol vanishes with half a line unsent.
    drop(bob);
    carol.send_raw(b"half a li");
    drop(carol);

    // In either order, each once.
    let mut exits = vec![alice.next_line(), alice.next_line()];
    exits.sort();
    assert_eq!(exits, vec!["[*] bob exited.", "[*] carol exited."]);
    // After both, alice's next lines up to the /users answer hold no second announcement.
    let rest = alice.sync();
    assert_eq!(rest, vec!["[*] Online (1): alice"]);
    // The console, too, saw each exit once, and no half line.
    let console = server.console_sync();
    let exits = console.iter().filter(|l| l.ends_with(" exited.")).count();
    assert_eq!(exits, 2, "{console:#?}");
    assert!(!console.iter().any(|l| l.contains("half")), "{console:#?}");
    // The names are free again.
    let _bob = server.join("BOB");
    assert_eq!(alice.next_line(), "[*] BOB entered.");
}

#[test]
fn a_scripted_session_that_half_closes_still_gets_its_answers() {
    // As `printf 'carol\nhi from a script\n/users\n' | nc -N HOST PORT` does.
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut carol = Client::connect(server.addr());
    carol.send_raw(b"carol\nhi from a script\n/users\n");
    carol.shutdown_write();
    let lines = carol.expect_closed();
    assert!(
        lines.iter().any(|l| l.starts_with("[*] Welcome, carol!")),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("[*] Online (2): alice, carol"),
        "{lines:#?}"
    );
    assert_eq!(alice.next_line(), "[*] carol entered.");
    assert_chat(&alice.next_line(), "carol", "hi from a script");
    assert_eq!(alice.next_line(), "[*] carol exited.");
    server.expect_stdout("[*] carol exited.", TIMEOUT);
}

#[test]
fn an_unknown_command_gets_an_error_line_and_the_connection_stays() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    alice.send_line("/frobnicate now");
    let error = alice.next_line();
    assert!(error.starts_with("[!] "), "{error}");
    assert!(error.contains("frobnicate"), "{error}");
    assert_eq!(alice.sync(), vec!["[*] Online (1): alice"]);
}

#[test]
fn commands_before_a_name_are_refused_and_the_prompt_follows() {
    let server = TestServer::start(&[]);
    let mut alice = Client::connect(server.addr());
    alice.expect_line(|l: &str| l == PROMPT);
    alice.send_line("/users");
    assert!(alice.next_line().starts_with("[!] "));
    assert_eq!(alice.next_line(), PROMPT);
    alice.send_line("alice");
    assert!(alice.next_line().starts_with("[*] Welcome, alice!"));
}

#[test]
fn invalid_utf8_is_replaced_with_the_replacement_character() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    // (0xFF is left out: it starts a telnet command, see tests/telnet.rs.)
    alice.send_raw(b"caf\xe9 \xfe\xc0 ok \xc3\xa9t\xc3\xa9\n");
    let raw = bob.next_line_raw();
    let line = String::from_utf8(raw).expect("the server sends valid UTF-8");
    assert_chat(
        &line,
        "alice",
        "caf\u{FFFD} \u{FFFD}\u{FFFD} ok \u{e9}t\u{e9}",
    );
    let console = server.expect_stdout(" > ", TIMEOUT);
    assert_chat(
        &console,
        "alice",
        "caf\u{FFFD} \u{FFFD}\u{FFFD} ok \u{e9}t\u{e9}",
    );
}

#[test]
fn escape_and_bell_never_reach_another_user_and_names_with_controls_are_refused() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");

    alice.send_raw(b"\x1b[2J\x1b]0;pwned\x07 ring\x07 tab\there \x1b[31mred\n");
    let raw = bob.next_line_raw();
    assert!(
        !raw.contains(&0x1b) && !raw.contains(&0x07),
        "control bytes reached bob: {raw:?}"
    );
    let line = String::from_utf8(raw).expect("valid UTF-8");
    let text = common::chat_text(&line, "alice").unwrap_or_else(|| panic!("{line:?}"));
    assert!(text.contains("pwned") && text.contains("red"), "{text:?}");
    assert!(text.contains('\u{FFFD}'), "{text:?}");
    assert!(text.contains("tab\there"), "a tab is kept: {text:?}");
    let console = server.expect_stdout(" > ", TIMEOUT);
    assert!(
        !console.contains(['\u{1b}', '\u{7}']),
        "control characters reached the console: {console:?}"
    );

    let mut eve = Client::connect(server.addr());
    eve.expect_line(|l: &str| l == PROMPT);
    for name in [&b"ev\x1bil"[..], b"\x07bell", b"e\x7fve", b"\x1b[2Jeve"] {
        let mut line = name.to_vec();
        line.push(b'\n');
        eve.send_raw(&line);
        let reason = eve.next_line_raw();
        assert!(
            reason.starts_with(b"[!] "),
            "{:?}",
            String::from_utf8_lossy(&reason)
        );
        assert_eq!(eve.next_line(), PROMPT);
    }
    eve.send_line("eve");
    assert!(eve.next_line().starts_with("[*] Welcome, eve!"));
    // Everything bob ever received is free of escape and bell.
    let rest = bob.sync();
    assert!(
        rest.iter().all(|l| !l.contains(['\u{1b}', '\u{7}'])),
        "{rest:?}"
    );
    assert_eq!(
        rest.last().map(String::as_str),
        Some("[*] Online (3): alice, bob, eve")
    );
}

#[test]
fn a_command_with_blanks_or_control_bytes_in_front_is_still_a_command_never_a_public_line() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    alice.expect_line("[*] carol entered.");
    bob.expect_line("[*] carol entered.");
    for typed in [
        b" /dm bob secret one\n".as_slice(),
        b"\t /dm bob secret two\r\n",
        b"\x01\x1b/dm bob secret three\n",
    ] {
        alice.send_raw(typed);
    }
    for n in ["one", "two", "three"] {
        let dm = bob.next_line();
        assert!(
            dm.ends_with(&format!("] [dm] alice > secret {n}")),
            "{dm:?}"
        );
    }
    alice.send_raw(b"  /users\n");
    assert_eq!(alice.next_line(), "[*] Online (3): alice, bob, carol");
    // A doubled slash after blanks is still the way to say a line that starts with `/`.
    alice.send_raw(b"  //not a command\n");
    assert_chat(&carol.next_line(), "alice", "/not a command");
    // Nobody else saw the secrets, and a newcomer's history does not hold them.
    assert_eq!(carol.sync(), vec!["[*] Online (3): alice, bob, carol"]);
    let mut dave = Client::connect(server.addr());
    let welcome = dave.join("dave");
    assert!(welcome.contains("[*] Welcome, dave!"));
    let seen = dave.sync();
    assert!(seen.iter().all(|l| !l.contains("secret")), "{seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.ends_with("] [history] alice > /not a command")),
        "{seen:#?}"
    );
}
