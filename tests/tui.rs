//! The `chat` window end to end: the real `chatd`, and `chat` running in tmux panes, typed at with
//! `send-keys` and read with `capture-pane`. Each test has a tmux server of its own (`tmux -L`
//! with a unique socket name), killed at the end; nothing else of tmux is touched. Every wait
//! polls the screen until the text expected is there, with a deadline, and fails showing the
//! screen.

mod common;
mod framed_common;

use std::io::Write;
use std::process::{Child, Command, Stdio};

use common::tmux::{cooked, Tmux};
use common::DataDir;
use framed_common::{is_chat_line, Lines, Server, TextUser};

/// The user list's rows: the left pane, between its borders.
fn user_list(screen: &[String]) -> Vec<String> {
    screen
        .iter()
        .skip(1)
        .take_while(|row| row.starts_with('│'))
        .filter_map(|row| {
            let inner: String = row.chars().skip(1).take_while(|&c| c != '│').collect();
            let inner = inner.trim();
            (!inner.is_empty()).then(|| inner.to_owned())
        })
        .collect()
}

/// Whether the screen has the window's frame: a user list (if wide enough), the input box and
/// the status line, at `width` columns by `height` rows.
fn has_layout(screen: &[String], width: usize, height: usize, users: bool) -> bool {
    let rows_ok = screen.len() == height && screen.iter().all(|row| row.chars().count() <= width);
    let top = screen.first().map(String::as_str).unwrap_or("");
    let status = screen.last().map(String::as_str).unwrap_or("");
    let input_top = screen.get(height.saturating_sub(4)).map(String::as_str);
    rows_ok
        && top.starts_with("┌ Users (") == users
        && top.ends_with('┐')
        && input_top.is_some_and(|row| row.starts_with("┌ Message"))
        && status.starts_with(" chat │ ")
}

#[test]
fn two_windows_and_a_text_user_see_each_other_and_a_resize_keeps_the_layout() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let tmux = Tmux::new();

    // Alice names everything on the command line.
    tmux.open_chat("alice", 80, 24, &["--name", "alice", &addr]);
    tmux.wait_text("alice", "│ online │");

    // Bob uses the connect form: the server field, then the name.
    tmux.open_chat("bob", 80, 24, &[]);
    tmux.wait_text("bob", "Join a chatd room");
    tmux.press("bob", &["Tab", "C-u"]);
    tmux.type_text("bob", &addr);
    tmux.press("bob", &["Enter"]);
    tmux.type_text("bob", "bob");
    tmux.press("bob", &["Enter"]);
    let screen = tmux.wait_text("bob", "│ online │");
    assert_eq!(user_list(&screen), vec!["alice", "bob"], "{screen:#?}");
    let screen = tmux.wait_for("alice", "bob in the list", |s| {
        user_list(s) == ["alice", "bob"]
    });
    assert!(
        screen.iter().any(|row| row.contains("[*] bob entered.")),
        "{screen:#?}"
    );

    // A line typed in one window appears in the other, stamped and attributed.
    tmux.type_text("bob", "hello from bob");
    tmux.press("bob", &["Enter"]);
    tmux.wait_text("alice", "] bob > hello from bob");
    tmux.wait_text("bob", "] bob > hello from bob");
    tmux.type_text("alice", "hi bob, this is alice");
    tmux.press("alice", &["Enter"]);
    tmux.wait_text("bob", "] alice > hi bob, this is alice");

    // A text user on a raw socket is in both lists, and its lines show in both windows.
    let mut carol = TextUser::join(&server, "carol");
    for window in ["alice", "bob"] {
        tmux.wait_for(window, "carol in the list", |s| {
            user_list(s) == ["alice", "bob", "carol"]
        });
    }
    carol.send("hi both");
    tmux.wait_text("alice", "] carol > hi both");
    tmux.wait_text("bob", "] carol > hi both");
    tmux.type_text("alice", "/dm carol psst");
    tmux.press("alice", &["Enter"]);
    carol.expect_containing("[dm] alice > psst");
    tmux.wait_text("alice", "[dm to carol] alice > psst");

    // Resizes redraw the whole layout at the new size; a narrow window leaves the list out.
    let before = tmux.screen("alice");
    assert!(has_layout(&before, 80, 24, true), "{before:#?}");
    tmux.ok(&["resize-window", "-t", "alice", "-x", "60", "-y", "16"]);
    let screen = tmux.wait_for("alice", "the layout at 60x16", |s| {
        has_layout(s, 60, 16, true)
    });
    assert!(
        screen.iter().any(|row| row.contains("carol > hi both")),
        "{screen:#?}"
    );
    assert_eq!(user_list(&screen), vec!["alice", "bob", "carol"]);
    tmux.ok(&["resize-window", "-t", "alice", "-x", "44", "-y", "12"]);
    let screen = tmux.wait_for("alice", "the layout at 44x12", |s| {
        has_layout(s, 44, 12, false)
    });
    assert!(
        screen.iter().any(|row| row.contains("carol > hi both")),
        "{screen:#?}"
    );
    tmux.ok(&["resize-window", "-t", "alice", "-x", "100", "-y", "30"]);
    tmux.wait_for("alice", "the layout at 100x30", |s| {
        has_layout(s, 100, 30, true)
    });

    // Carol leaves: both lists follow. Bob quits: his window ends well, the terminal put back.
    carol.send("/quit");
    for window in ["alice", "bob"] {
        tmux.wait_for(window, "carol gone from the list", |s| {
            user_list(s) == ["alice", "bob"]
        });
    }
    tmux.type_text("bob", "/quit bye all");
    tmux.press("bob", &["Enter"]);
    let (status, settings) = tmux.wait_exit("bob");
    assert_eq!(status, 0);
    assert!(cooked(&settings), "raw mode left on: {settings}");
    let screen = tmux.wait_text("alice", "[*] bob exited. (bye all)");
    assert_eq!(user_list(&screen), vec!["alice"]);

    // Ctrl-C ends the window too.
    tmux.press("alice", &["C-c"]);
    let (status, settings) = tmux.wait_exit("alice");
    assert_eq!(status, 0);
    assert!(cooked(&settings), "raw mode left on: {settings}");
}

/// A `chatd` on a given address and data directory, killed when dropped.
struct Chatd {
    child: Child,
    _stdout: Lines,
}

impl Chatd {
    /// Starts `chatd --listen LISTEN --data-dir DATA --no-console`; returns it and its address.
    fn start(data: &DataDir, listen: &str) -> (Chatd, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
            .args(["--listen", listen, "--no-console", "--data-dir", data.arg()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chatd starts");
        let mut stdout = Lines::spawn("chatd", child.stdout.take().expect("piped stdout"));
        let line = stdout.expect("saying where it listens", |l| {
            l.starts_with("chatd listening on ")
        });
        let addr = line["chatd listening on ".len()..].to_owned();
        (
            Chatd {
                child,
                _stdout: stdout,
            },
            addr,
        )
    }
}

impl Drop for Chatd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_registered_user_types_the_password_hidden_and_the_window_logs_in_again_after_a_restart() {
    let data = DataDir::new();
    let mut add = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args(["--data-dir", data.arg(), "user", "add", "dora"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chatd user add");
    add.stdin
        .take()
        .expect("piped")
        .write_all(b"hunter22\n")
        .expect("the password");
    assert!(add.wait().expect("chatd user add ends").success());

    let (server, addr) = Chatd::start(&data, "127.0.0.1:0");
    let tmux = Tmux::new();
    tmux.open_chat("dora", 80, 24, &["--name", "dora", &addr]);
    tmux.wait_text("dora", "Password for dora (hidden");
    tmux.type_text("dora", "hunter22");
    let screen = tmux.screen("dora");
    assert!(
        !screen.iter().any(|row| row.contains("hunter22")),
        "the password shows: {screen:#?}"
    );
    tmux.press("dora", &["Enter"]);
    let screen = tmux.wait_text("dora", "│ online │");
    assert!(!screen.iter().any(|row| row.contains("hunter22")));
    assert_eq!(user_list(&screen), vec!["dora"]);

    // The server goes away: the window says so and keeps trying, then logs in again by itself,
    // with the same name and password, once a server is back on the address.
    drop(server);
    let screen = tmux.wait_text("dora", "[~] connection lost; reconnecting in ");
    assert!(
        !screen.iter().any(|row| row.contains("connection lost (")),
        "said twice: {screen:#?}"
    );
    tmux.wait_text("dora", "│ reconnecting (");
    let (_server, _) = Chatd::start(&data, &addr);
    let screen = tmux.wait_for("dora", "the second welcome", |s| {
        s.iter()
            .filter(|row| row.contains("Welcome, dora!"))
            .count()
            == 2
            && s.last().is_some_and(|row| row.contains("│ online │"))
    });
    assert_eq!(user_list(&screen), vec!["dora"]);
    assert!(!screen.iter().any(|row| row.contains("hunter22")));
    tmux.type_text("dora", "/whoami");
    tmux.press("dora", &["Enter"]);
    tmux.wait_text("dora", "[*] You are dora (user, registered).");
    tmux.press("dora", &["C-c"]);
    let (status, settings) = tmux.wait_exit("dora");
    assert_eq!(status, 0);
    assert!(cooked(&settings), "raw mode left on: {settings}");
}

/// The input box's text: the row under its top border, between the borders.
fn input_box(screen: &[String]) -> String {
    let top = screen
        .iter()
        .position(|row| row.starts_with("┌ Message"))
        .expect("the input box");
    let row = screen.get(top + 1).map(String::as_str).unwrap_or("");
    row.trim_start_matches('│')
        .trim_end()
        .trim_end_matches('│')
        .trim()
        .to_owned()
}

#[test]
fn a_paste_of_any_size_is_sent_whole_and_in_order_without_another_key() {
    let server = Server::start(&["--no-flood-control"]);
    let addr = server.addr.to_string();
    let mut tom = TextUser::join(&server, "tom");
    let tmux = Tmux::new();
    tmux.open_chat("alice", 100, 30, &["--name", "alice", &addr]);
    tmux.wait_text("alice", "│ online │");
    tom.expect_containing("[*] alice entered.");

    // 100 lines of 47 bytes (46 and the newline), 4,700 bytes in one paste: each newline is an
    // Enter, and every line reaches tom whole and in order, with no key pressed after.
    let lines: Vec<String> = (0..100)
        .map(|i| format!("ml{i:03} {}", "z".repeat(40)))
        .collect();
    assert!(lines.iter().all(|line| line.len() == 46));
    tmux.paste("alice", &(lines.join("\n") + "\n"));
    for line in &lines {
        let got = tom.expect_line(&format!("alice's {line:.5}"), |l| l.contains("] alice > "));
        assert!(
            is_chat_line(&got, &format!("alice > {line}")),
            "expected {line:?}, got {got:?}"
        );
    }
    let screen = tmux.wait_text("alice", "] alice > ml099 zzz");
    assert_eq!(input_box(&screen), "", "{screen:#?}");

    // One line of 3,000 characters, pasted: it arrives whole.
    let long: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    tmux.paste("alice", &(long.clone() + "\n"));
    let got = tom.expect_line("alice's long line", |l| l.contains("] alice > "));
    assert!(
        is_chat_line(&got, &format!("alice > {long}")),
        "{} bytes came: {got:?}",
        got.len()
    );
    tmux.press("alice", &["C-c"]);
    assert_eq!(tmux.wait_exit("alice").0, 0);
}

/// Takes `tom`'s chat lines from alice until their text adds up to `len` bytes; returns the texts.
fn alice_lines_totalling(tom: &mut TextUser, len: usize) -> Vec<String> {
    let mut texts = Vec::new();
    while texts.iter().map(String::len).sum::<usize>() < len {
        let line = tom.expect_line("alice's next part", |l| l.contains("] alice > "));
        let at = line.find("] alice > ").expect("a chat line") + "] alice > ".len();
        texts.push(line[at..].to_owned());
    }
    texts
}

#[test]
fn a_line_over_8192_bytes_is_sent_in_parts_and_the_window_says_so() {
    let server = Server::start(&["--no-flood-control"]);
    let addr = server.addr.to_string();
    let mut tom = TextUser::join(&server, "tom");
    let tmux = Tmux::new();
    tmux.open_chat("alice", 100, 30, &["--name", "alice", &addr]);
    tmux.wait_text("alice", "│ online │");
    tom.expect_containing("[*] alice entered.");

    // 20,000 bytes of words: cut at spaces into lines of at most 8,192 bytes, every word there.
    let words: Vec<String> = (0..2500).map(|i| format!("w{i:06}")).collect();
    let line = words.join(" ");
    assert!(line.len() > 2 * 8192);
    tmux.paste("alice", &(line.clone() + "\n"));
    let parts = alice_lines_totalling(&mut tom, line.len() - 2);
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(parts.iter().all(|part| part.len() <= 8192));
    assert_eq!(parts.join(" "), line);
    tmux.wait_text(
        "alice",
        "[~] that line was over 8192 bytes: sent as 3 lines",
    );

    // 9,000 bytes with no space: cut between characters, nothing lost.
    let run: String = (0..9000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    tmux.paste("alice", &(run.clone() + "\n"));
    let parts = alice_lines_totalling(&mut tom, run.len());
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts.concat(), run);
    tmux.wait_text("alice", "sent as 2 lines");
    tmux.press("alice", &["C-c"]);
    assert_eq!(tmux.wait_exit("alice").0, 0);
}

/// The room list's rows: the left pane's first box, between its borders, once it is up.
fn room_list(screen: &[String]) -> Vec<String> {
    if !screen
        .first()
        .is_some_and(|row| row.starts_with("┌ Rooms ("))
    {
        return Vec::new();
    }
    user_list(screen)
}

#[test]
fn the_window_lists_its_rooms_counts_unread_lines_and_mentions_and_switches_with_the_keys() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let tmux = Tmux::new();
    tmux.open_chat("alice", 90, 26, &["--name", "alice", &addr]);
    tmux.wait_text("alice", "│ online │");
    let mut bob = TextUser::join(&server, "bob");
    bob.send("/join #dev");
    bob.expect_containing("You made #dev");

    // Alone in the default room, the window looks as it always did: no room list.
    let screen = tmux.screen("alice");
    assert!(screen[0].starts_with("┌ Users ("), "{screen:#?}");
    tmux.type_text("alice", "/join #dev");
    tmux.press("alice", &["Enter"]);
    bob.expect_line("alice entering #dev", |l| l == "[*] #dev: alice entered.");
    tmux.type_text("alice", "/join #ops");
    tmux.press("alice", &["Enter"]);
    let screen = tmux.wait_for("alice", "three rooms, #ops current", |s| {
        room_list(s).starts_with(&["1 #lobby".into(), "2 #dev".into(), "3 #ops".into()])
            && s.iter().any(|row| row.contains("┌ #ops (1) "))
    });
    assert!(
        screen.iter().any(|row| row.contains("You made #ops")),
        "{screen:#?}"
    );

    // Lines in #dev while #ops is shown: counted, and the one naming alice counted as a mention.
    bob.send("hello alice, a review?");
    bob.send("no hurry");
    let screen = tmux.wait_for("alice", "two unread lines in #dev", |s| {
        room_list(s).contains(&"2 #dev (2, @1)".to_owned())
    });
    assert!(
        !screen.iter().any(|row| row.contains("no hurry")),
        "#dev's lines wait in #dev: {screen:#?}"
    );

    // Alt-2: #dev is shown with its members, and the server sends alice's lines there.
    tmux.press("alice", &["M-2"]);
    let screen = tmux.wait_for("alice", "#dev shown", |s| {
        s.iter().any(|row| row.contains("┌ #dev (2) "))
            && s.iter().any(|row| row.contains("bob > no hurry"))
    });
    assert_eq!(room_list(&screen)[1], "2 #dev", "{screen:#?}");
    let members: Vec<String> = screen
        .iter()
        .skip_while(|row| !row.starts_with("┌ #dev (2) "))
        .skip(1)
        .take(2)
        .map(|row| {
            row.chars()
                .skip(1)
                .take_while(|&c| c != '│')
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(members, vec!["alice", "@bob"], "{screen:#?}");
    tmux.type_text("alice", "on it");
    tmux.press("alice", &["Enter"]);
    bob.expect_line("alice's line in #dev", |l| {
        is_chat_line(l, "#dev alice > on it")
    });

    // The mention is highlighted: its text on a yellow background.
    let coloured = tmux.ok(&["capture-pane", "-p", "-e", "-t", "alice"]);
    let row = coloured
        .lines()
        .find(|row| row.contains("hello alice"))
        .expect("the mention's row");
    let before = &row[..row.find("hello alice").expect("the text")];
    let last_style = before.rsplit("\x1b[").next().unwrap_or("");
    assert!(
        last_style.starts_with("43m") || last_style.starts_with("48;5;3m"),
        "a yellow background before the mention: {row:?}"
    );

    // Ctrl-N goes to #ops, Ctrl-P twice back to the default room, where lines are untagged.
    tmux.press("alice", &["C-n"]);
    tmux.wait_text("alice", "┌ #ops (1) ");
    tmux.press("alice", &["C-p", "C-p"]);
    tmux.wait_for("alice", "the default room shown", |s| {
        s[0].starts_with("┌ Rooms (3)") && s.iter().any(|row| row.contains("┌ Users (2) "))
    });
    tmux.type_text("alice", "back in the lobby");
    tmux.press("alice", &["Enter"]);
    bob.expect_line("alice's lobby line", |l| {
        is_chat_line(l, "alice > back in the lobby")
    });
}
