//! The host console (chatd's stdin and stdout), and stopping the server: EXIT, signals, and a
//! console that closes or was never there. Most tests pipe the console; the terminal's editing
//! and redrawing are tested with `chatd` in a tmux pane.

mod common;

use std::time::{Duration, Instant};

use common::tmux::{cooked, Tmux};
use common::{
    assert_chat, chat_line, chat_text, Client, DataDir, TestServer, PROMPT, SHUTDOWN_LINE, TIMEOUT,
};
use rustix::process::Signal;

/// How long a clean stop may take: flushing has a short deadline.
const STOP_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn list_users_prints_the_users_online_in_any_case() {
    let mut server = TestServer::start(&[]);
    server.console("LIST_USERS");
    assert_eq!(
        server.expect_stdout("[*] Online", TIMEOUT),
        "[*] Online (0): "
    );
    let _bob = server.join("bob");
    let _alice = server.join("alice");
    for command in ["LIST_USERS", "list_users", "List_Users"] {
        server.console(command);
        assert_eq!(
            server.expect_stdout("[*] Online", TIMEOUT),
            "[*] Online (2): alice, bob",
            "{command}"
        );
    }
}

#[test]
fn help_prints_the_console_commands() {
    let mut server = TestServer::start(&[]);
    for command in ["HELP", "help", "Help"] {
        server.console(command);
        let mut lines = server.console_sync();
        lines.pop(); // The LIST_USERS answer.
        let heading = lines
            .iter()
            .position(|l| l.starts_with("[*] Console commands"))
            .unwrap_or_else(|| panic!("no heading after {command}: {lines:#?}"));
        let entries: Vec<&str> = lines[heading + 1..]
            .iter()
            .map(|l| {
                l.strip_prefix("[*] ")
                    .unwrap_or_else(|| panic!("{l:?}"))
                    .trim_start()
            })
            .collect();
        for name in ["HELP", "KICK", "LIST_USERS", "SAY", "EXIT"] {
            let lines_for = entries.iter().filter(|e| e.starts_with(name)).count();
            assert_eq!(lines_for, 1, "{name} after {command}: {lines:#?}");
        }
    }
}

#[test]
fn kick_tells_the_user_closes_it_and_tells_the_others_and_the_console() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");

    server.console("KICK bob too loud");
    let told = bob.next_line();
    assert!(
        told.starts_with("[!] You have been kicked out") && told.contains("too loud"),
        "{told}"
    );
    let after = bob.expect_closed();
    assert!(after.is_empty(), "lines after the kick notice: {after:?}");
    assert_eq!(alice.next_line(), "[*] bob has been kicked out. (too loud)");
    assert_eq!(
        server.expect_stdout("kicked", TIMEOUT),
        "[*] bob has been kicked out. (too loud)"
    );
    // Exactly once: nothing else (no "exited") before the /users answer.
    assert_eq!(alice.sync(), vec!["[*] Online (1): alice"]);

    // Any case, no reason; and the name is free again.
    let mut bob = server.join("Bob");
    alice.expect_line("[*] Bob entered.");
    server.console("kick BOB");
    assert_eq!(bob.next_line(), "[!] You have been kicked out by Host.");
    bob.expect_closed();
    assert_eq!(alice.next_line(), "[*] Bob has been kicked out.");

    // Kicking nobody is refused on the console.
    server.console("KICK ghost");
    let refusal = server.expect_stdout("ghost", TIMEOUT);
    assert!(refusal.starts_with("[!] "), "{refusal}");
    assert_eq!(alice.sync(), vec!["[*] Online (1): alice"]);
}

#[test]
fn any_other_line_is_said_to_everyone_as_host() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    server.console("hello everyone, welcome");
    assert_chat(&alice.next_line(), "Host", "hello everyone, welcome");
    assert_chat(&bob.next_line(), "Host", "hello everyone, welcome");
    // Words that start like a command but are not one are said too.
    server.console("exit the building by the back door");
    assert_chat(
        &alice.next_line(),
        "Host",
        "exit the building by the back door",
    );
    assert_chat(
        &bob.next_line(),
        "Host",
        "exit the building by the back door",
    );
    // The host's own line is not echoed to the console: the next thing it shows is LIST_USERS.
    let shown = server.console_sync();
    assert!(!shown.iter().any(|l| l.contains("Host >")), "{shown:#?}");
}

#[test]
fn a_capitalised_typo_of_a_command_is_refused_with_a_hint_and_not_said() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    for (typed, word, meant) in [
        ("KIKC bob", "KIKC", "KICK"),
        ("KICKK bob", "KICKK", "KICK"),
        ("EXTI", "EXTI", "EXIT"),
        ("LIST_USRES", "LIST_USRES", "LIST_USERS"),
        ("LISTUSER", "LISTUSER", "LIST_USERS"),
        ("BNA eve spam", "BNA", "BAN"),
    ] {
        server.console(typed);
        assert_eq!(
            server.expect_stdout("unknown command", TIMEOUT),
            format!(
                "[!] unknown command {word}; did you mean {meant}? (SAY TEXT says TEXT as it is)"
            ),
            "{typed}"
        );
    }
    // Nothing was said and nobody was kicked: the next thing each user gets is its /users answer.
    assert_eq!(alice.sync(), vec!["[*] Online (2): alice, bob"]);
    assert_eq!(bob.sync(), vec!["[*] Online (2): alice, bob"]);

    // Shouting that is not near a command, and typos not in capitals, are said as before.
    for line in [
        "LOL that was close",
        "HELLO everyone",
        "kikc is not a word",
        "OK",
    ] {
        server.console(line);
        assert_chat(&alice.next_line(), "Host", line);
        assert_chat(&bob.next_line(), "Host", line);
    }
}

#[test]
fn say_says_the_rest_of_the_line_as_it_is_even_a_command() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    for (typed, said) in [
        ("SAY KIKC bob", "KIKC bob"),
        ("SAY KICK bob, please behave", "KICK bob, please behave"),
        ("say EXIT is at the back", "EXIT is at the back"),
        ("SAY   HELP", "HELP"),
    ] {
        server.console(typed);
        assert_chat(&alice.next_line(), "Host", said);
        assert_chat(&bob.next_line(), "Host", said);
    }
    // Bob is still there, and SAY with nothing to say gets its usage.
    server.console("SAY");
    assert_eq!(
        server.expect_stdout("usage", TIMEOUT),
        "[!] usage: SAY TEXT"
    );
    assert_eq!(alice.sync(), vec!["[*] Online (2): alice, bob"]);
}

#[test]
fn several_lines_written_at_once_are_all_handled() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    server.console_raw(b"first\nLIST_USERS\r\nsecond\r\nKICK bob\nthird\n");
    assert_chat(&alice.next_line(), "Host", "first");
    assert_chat(&alice.next_line(), "Host", "second");
    assert_eq!(alice.next_line(), "[*] bob has been kicked out.");
    assert_chat(&alice.next_line(), "Host", "third");
    assert_eq!(
        server.expect_stdout("[*] Online", TIMEOUT),
        "[*] Online (2): alice, bob"
    );
    server.expect_stdout("[*] bob has been kicked out.", TIMEOUT);
    bob.expect_line(chat_line("Host", "second"));
    bob.expect_line("[!] You have been kicked out");
    bob.expect_closed();

    // A paste far bigger than one read: every line of it is handled without more input.
    let mut paste = String::new();
    for i in 0..400 {
        paste.push_str(&format!(
            "pasted line {i:03} with some words to make it longer\n"
        ));
    }
    paste.push_str("LIST_USERS\n");
    assert!(paste.len() > 16 * 1024);
    server.console_raw(paste.as_bytes());
    for i in 0..400 {
        let text = format!("pasted line {i:03} with some words to make it longer");
        assert_chat(&alice.next_line(), "Host", &text);
    }
    assert_eq!(
        server.expect_stdout("[*] Online", TIMEOUT),
        "[*] Online (1): alice"
    );
}

/// Asserts every client gets the shutdown line and then the end of its connection.
fn assert_told_and_closed(clients: &mut [&mut Client]) {
    for client in clients.iter_mut() {
        client.expect_line(|l: &str| l == SHUTDOWN_LINE);
        let after = client.expect_closed();
        assert!(after.is_empty(), "lines after the shutdown line: {after:?}");
    }
}

#[test]
fn exit_tells_every_client_closes_them_and_exits_zero() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut nameless = Client::connect(server.addr());
    nameless.expect_line(|l: &str| l == PROMPT);
    alice.expect_line("[*] bob entered.");

    let asked = Instant::now();
    server.console("EXIT");
    assert_told_and_closed(&mut [&mut alice, &mut bob, &mut nameless]);
    let status = server.wait_exit(STOP_WITHIN);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(asked.elapsed() < STOP_WITHIN, "took {:?}", asked.elapsed());
}

#[test]
fn exit_in_lower_case_stops_the_server_too() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    server.console("exit");
    assert_told_and_closed(&mut [&mut alice]);
    assert_eq!(server.wait_exit(STOP_WITHIN).code(), Some(0));
}

#[test]
fn sigterm_stops_the_server_like_exit() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    server.signal(Signal::TERM);
    assert_told_and_closed(&mut [&mut alice, &mut bob]);
    let status = server.wait_exit(STOP_WITHIN);
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn sigint_stops_the_server_like_exit() {
    let mut server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    server.signal(Signal::INT);
    assert_told_and_closed(&mut [&mut alice]);
    let status = server.wait_exit(STOP_WITHIN);
    assert_eq!(status.code(), Some(0), "{status}");
}

/// Two users chat both ways through `server`.
fn assert_serves(server: &TestServer) {
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    alice.send_line("ping from alice");
    assert_chat(&bob.next_line(), "alice", "ping from alice");
    bob.send_line("pong from bob");
    assert_chat(&alice.next_line(), "bob", "pong from bob");
}

#[test]
fn a_closed_console_leaves_the_server_serving() {
    let dir = std::env::temp_dir().join(format!("chatd-test-console-eof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("make a temporary directory");
    let log = dir.join("chatd.log");
    let _ = std::fs::remove_file(&log);
    let log_arg = log.to_str().expect("a UTF-8 temporary path");
    let mut server = TestServer::start(&["--log-file", log_arg, "--log-level", "info"]);
    server.close_console();
    // Wait, bounded, until the server has seen the end of its console.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("console closed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log never said the console closed: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_serves(&server);
    assert!(server.is_running());
    server.signal(Signal::TERM);
    assert_eq!(server.wait_exit(STOP_WITHIN).code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdin_from_dev_null_still_serves_clients() {
    let mut server = TestServer::start_with_stdin_null(&[]);
    server.expect_stderr("without a console", TIMEOUT);
    assert_serves(&server);
    // The room is still shown on stdout.
    server.expect_stdout("[*] bob entered.", TIMEOUT);
    server.signal(Signal::TERM);
    assert_eq!(server.wait_exit(STOP_WITHIN).code(), Some(0));
}

/// What follows the prompt `[HH:MM:SS] Host > ` on a console row, if the row starts with one.
fn after_prompt(row: &str) -> Option<&str> {
    common::chat_text(row, "Host")
}

/// The rows that start with the console's prompt, in order, with what was typed after each.
fn prompt_rows(screen: &[String]) -> Vec<(usize, String)> {
    screen
        .iter()
        .enumerate()
        .filter_map(|(at, row)| {
            // capture-pane drops trailing spaces: a bare prompt reads `[HH:MM:SS] Host >`.
            let row = format!("{} ", row.trim_end());
            after_prompt(&row).map(|typed| (at, typed.trim_end().to_owned()))
        })
        .collect()
}

/// The last row with anything on it, and its index.
fn last_row(screen: &[String]) -> (usize, &str) {
    screen
        .iter()
        .enumerate()
        .rev()
        .find(|(_, row)| !row.trim().is_empty())
        .map(|(at, row)| (at, row.trim_end()))
        .unwrap_or((0, ""))
}

/// Whether the screen ends with one bare prompt (no text typed, none repeated on its row).
fn ends_with_a_bare_prompt(screen: &[String]) -> bool {
    let (_, row) = last_row(screen);
    // capture-pane drops trailing spaces: a bare prompt reads `[HH:MM:SS] Host >`.
    after_prompt(&format!("{row} ")) == Some("")
}

/// `chatd` started in a tmux pane with its console on the pane's terminal, and its address.
fn chatd_in_tmux(tmux: &Tmux, name: &str, data: &DataDir) -> std::net::SocketAddr {
    let args = ["--listen", "127.0.0.1:0", "--data-dir", data.arg()];
    tmux.open_program(name, 100, 30, env!("CARGO_BIN_EXE_chatd"), &args);
    let screen = tmux.wait_for(name, "the first prompt", ends_with_a_bare_prompt);
    let line = screen
        .iter()
        .find_map(|row| row.trim().strip_prefix("chatd listening on "))
        .unwrap_or_else(|| panic!("no address on the screen: {screen:#?}"));
    line.parse()
        .unwrap_or_else(|e| panic!("bad address {line:?}: {e}"))
}

/// Asserts no row shows the prompt twice (`[..] Host > [..] Host > `).
#[track_caller]
fn assert_no_double_prompt(screen: &[String]) {
    for (_, typed) in prompt_rows(screen) {
        assert!(
            after_prompt(&typed).is_none() && !typed.contains("Host >"),
            "a prompt is repeated on its row: {screen:#?}"
        );
    }
}

/// `chatd` in a tmux pane named `name`, and alice joined to it (the pane has shown her entering).
fn chatd_in_tmux_with_alice(tmux: &Tmux, name: &str, data: &DataDir) -> Client {
    let addr = chatd_in_tmux(tmux, name, data);
    let mut alice = Client::connect(addr);
    alice.join("alice");
    tmux.wait_text(name, "[*] alice entered.");
    alice
}

/// Waits until `name`'s pane shows alice's chat line `text` above a last row that is the prompt
/// with `typed` after it; returns the screen.
#[track_caller]
fn wait_line_above_prompt(tmux: &Tmux, name: &str, text: &str, typed: &str) -> Vec<String> {
    tmux.wait_for(name, &format!("{text:?} above the prompt {typed:?}"), |s| {
        let (at, row) = last_row(s);
        let above = s[..at].iter().any(|r| chat_text(r, "alice") == Some(text));
        let row = format!("{row} ");
        above && after_prompt(&row).map(str::trim_end) == Some(typed)
    })
}

#[test]
fn on_a_terminal_a_half_typed_line_stays_under_incoming_lines_and_is_sent_whole() {
    let tmux = Tmux::new();
    let data = DataDir::new();
    let mut alice = chatd_in_tmux_with_alice(&tmux, "host", &data);

    // The host has typed half a line when alice's line arrives: it shows above, and the half
    // line is still in the prompt, the cursor after it.
    tmux.type_text("host", "hello wor");
    tmux.wait_for("host", "the half line", |s| {
        after_prompt(last_row(s).1) == Some("hello wor")
    });
    alice.send_line("a line from alice");
    let screen = wait_line_above_prompt(&tmux, "host", "a line from alice", "hello wor");
    let (at, row) = last_row(&screen);
    let end = row.chars().count();
    assert_eq!(tmux.cursor("host"), (end, at), "{screen:#?}");

    // With the cursor moved back into the text, a line arriving leaves it where it was.
    tmux.press("host", &["Left", "Left", "Left"]);
    tmux.wait_for("host", "the cursor moved", |_| {
        tmux.cursor("host").0 == end - 3
    });
    alice.send_line("another from alice");
    let screen = wait_line_above_prompt(&tmux, "host", "another from alice", "hello wor");
    let (at, _) = last_row(&screen);
    assert_eq!(tmux.cursor("host"), (end - 3, at), "{screen:#?}");

    // Finishing the line sends it whole; it stays on the screen as typed.
    tmux.press("host", &["End"]);
    tmux.type_text("host", "ld");
    tmux.press("host", &["Enter"]);
    assert_chat(&alice.next_line(), "Host", "hello world");
    let screen = tmux.wait_for(
        "host",
        "a bare prompt after the line",
        ends_with_a_bare_prompt,
    );
    assert!(
        prompt_rows(&screen)
            .iter()
            .any(|(_, typed)| typed == "hello world"),
        "{screen:#?}"
    );
}

#[test]
fn on_a_terminal_the_prompt_shows_once_after_each_line() {
    let tmux = Tmux::new();
    let data = DataDir::new();
    let mut alice = chatd_in_tmux_with_alice(&tmux, "host", &data);

    // A line said: the row as typed, then exactly one fresh prompt on the next row.
    tmux.type_text("host", "hello all");
    tmux.press("host", &["Enter"]);
    assert_chat(&alice.next_line(), "Host", "hello all");
    let screen = tmux.wait_for(
        "host",
        "a bare prompt after the line",
        ends_with_a_bare_prompt,
    );
    let rows = prompt_rows(&screen);
    let sent = rows
        .iter()
        .position(|(_, typed)| typed == "hello all")
        .unwrap_or_else(|| panic!("the line typed is not on the screen: {screen:#?}"));
    assert_eq!(rows.len(), sent + 2, "{screen:#?}");
    assert_eq!(
        rows[sent + 1],
        (rows[sent].0 + 1, String::new()),
        "{screen:#?}"
    );
    assert_no_double_prompt(&screen);

    // A command with an answer: the command as typed, the answer, then one prompt.
    tmux.type_text("host", "KICK nobody");
    tmux.press("host", &["Enter"]);
    let screen = tmux.wait_for("host", "the refusal, then a bare prompt", |s| {
        s.iter()
            .any(|r| r.contains("[!] no user named nobody is online"))
            && ends_with_a_bare_prompt(s)
    });
    assert_no_double_prompt(&screen);
    assert!(
        prompt_rows(&screen)
            .iter()
            .any(|(_, typed)| typed == "KICK nobody"),
        "{screen:#?}"
    );
    // The next line typed is on a row with one prompt too, and lines arriving keep it so.
    tmux.type_text("host", "LIST_USERS");
    tmux.press("host", &["Enter"]);
    alice.send_line("a line from alice");
    let screen = wait_line_above_prompt(&tmux, "host", "a line from alice", "");
    assert!(
        screen.iter().any(|r| r == "[*] Online (1): alice"),
        "{screen:#?}"
    );
    assert_no_double_prompt(&screen);
    let rows = prompt_rows(&screen);
    assert_eq!(
        rows.iter()
            .map(|(_, typed)| typed.as_str())
            .collect::<Vec<_>>(),
        vec!["hello all", "KICK nobody", "LIST_USERS", ""],
        "{screen:#?}"
    );
}

#[test]
fn on_a_terminal_ctrl_d_says_the_console_closed_and_chatd_serves_on() {
    let tmux = Tmux::new();
    let data = DataDir::new();
    let mut alice = chatd_in_tmux_with_alice(&tmux, "host", &data);
    tmux.press("host", &["C-d"]);
    tmux.wait_text(
        "host",
        "[*] Console closed (Ctrl-D): chatd keeps serving; stop it with Ctrl-C or SIGTERM.",
    );
    alice.send_line("still here");
    tmux.wait_for("host", "a line after the console closed", |s| {
        s.iter()
            .any(|r| chat_text(r, "alice") == Some("still here"))
    });
    assert_eq!(alice.sync(), vec!["[*] Online (1): alice"]);
    // No prompt any more, and Ctrl-C stops chatd with the terminal as it was.
    let screen = tmux.screen("host");
    assert!(!ends_with_a_bare_prompt(&screen), "{screen:#?}");
    tmux.press("host", &["C-c"]);
    let (status, settings) = tmux.wait_exit("host");
    assert_eq!(status, 0);
    assert!(cooked(&settings), "terminal modes not put back: {settings}");
}

#[test]
fn on_a_terminal_exit_and_ctrl_c_put_the_terminal_back() {
    let tmux = Tmux::new();
    let data = DataDir::new();
    // EXIT typed on the console.
    let addr = chatd_in_tmux(&tmux, "exit", &data);
    let mut alice = Client::connect(addr);
    alice.join("alice");
    tmux.type_text("exit", "EXIT");
    tmux.press("exit", &["Enter"]);
    alice.expect_line(|l: &str| l == SHUTDOWN_LINE);
    let (status, settings) = tmux.wait_exit("exit");
    assert_eq!(status, 0);
    assert!(cooked(&settings), "terminal modes not put back: {settings}");

    // Ctrl-C (SIGINT from the terminal) with half a line typed.
    let data = DataDir::new();
    let addr = chatd_in_tmux(&tmux, "sigint", &data);
    let mut bob = Client::connect(addr);
    bob.join("bob");
    tmux.type_text("sigint", "half a li");
    tmux.wait_for("sigint", "the half line", |s| {
        after_prompt(last_row(s).1) == Some("half a li")
    });
    tmux.press("sigint", &["C-c"]);
    bob.expect_line(|l: &str| l == SHUTDOWN_LINE);
    let (status, settings) = tmux.wait_exit("sigint");
    assert_eq!(status, 0);
    assert!(cooked(&settings), "terminal modes not put back: {settings}");
}
