//! Issue 4's commands and login flow in framed mode: command frames for every command and alias,
//! and the `chat` client logging in to a registered name.

mod common;
mod framed_common;

use chatd::proto::framed::{error_code, reply_kind, ClientFrame, ServerFrame};
use framed_common::{ChatClient, FramedUser, Server, TextUser};

fn command(name: &str, args: &str) -> ClientFrame {
    ClientFrame::Command {
        name: name.into(),
        args: args.into(),
    }
}

/// Sends a command frame and returns the lines of the reply frame of `kind` that answers it.
fn reply(user: &mut FramedUser, name: &str, args: &str, kind: u8) -> Vec<String> {
    user.send(&command(name, args));
    match user.expect(
        &format!("a reply of kind {kind} to /{name}"),
        |f| matches!(f, ServerFrame::Reply { kind: k, .. } if *k == kind),
    ) {
        ServerFrame::Reply { lines, .. } => lines,
        _ => unreachable!("matched a reply"),
    }
}

/// Sends a command frame and returns the code of the error frame that answers it.
fn error(user: &mut FramedUser, name: &str, args: &str) -> u16 {
    user.send(&command(name, args));
    match user.expect(&format!("an error for /{name}"), |f| {
        matches!(f, ServerFrame::Error { .. })
    }) {
        ServerFrame::Error { code, .. } => code,
        _ => unreachable!("matched an error"),
    }
}

#[test]
fn every_user_command_and_alias_answers_in_framed_mode() {
    let server = Server::start(&[]);
    let mut frank = FramedUser::join(&server, "frank");
    let mut tina = TextUser::join(&server, "tina");
    let lines = reply(&mut frank, "help", "", reply_kind::HELP);
    assert!(
        lines.iter().any(|l| l.contains("/dm NAME TEXT"))
            && !lines.iter().any(|l| l.contains("/kick")),
        "{lines:?}"
    );
    for users in ["users", "list", "viewusers"] {
        assert_eq!(
            reply(&mut frank, users, "", reply_kind::USERS),
            vec!["[*] Online (2): frank, tina"]
        );
    }
    for (away, back) in [("away", "back"), ("busy", "free")] {
        assert_eq!(
            reply(&mut frank, away, "lunch", reply_kind::DONE),
            vec!["[*] You are marked away; /back when you return."]
        );
        assert_eq!(
            reply(&mut frank, "users", "", reply_kind::USERS),
            vec!["[*] Online (2): frank (away: lunch), tina"]
        );
        assert_eq!(
            reply(&mut frank, back, "", reply_kind::DONE),
            vec!["[*] You are back."]
        );
    }
    for whoami in ["whoami", "username"] {
        assert_eq!(
            reply(&mut frank, whoami, "", reply_kind::WHOAMI),
            vec!["[*] You are frank (user, guest)."]
        );
    }
    assert!(reply(&mut frank, "time", "", reply_kind::TIME)[0].starts_with("[*] Server time: "));
    for stats in ["stats", "total"] {
        assert!(reply(&mut frank, stats, "", reply_kind::STATS)[0]
            .starts_with("[*] Messages relayed: "));
    }
    for dm in ["dm", "msg", "messageto"] {
        frank.send(&command(dm, "tina psst"));
        let line = tina.expect_containing("[dm] frank > psst");
        assert!(line.ends_with("] [dm] frank > psst"), "{line}");
    }
    assert_eq!(
        error(&mut frank, "kick", "tina"),
        error_code::PERMISSION_DENIED
    );
    assert_eq!(
        error(&mut frank, "dm", "nobody hi"),
        error_code::UNKNOWN_USER
    );
    assert_eq!(
        error(&mut frank, "frobnicate", ""),
        error_code::UNKNOWN_COMMAND
    );
    assert_eq!(
        reply(&mut frank, "register", "pw", reply_kind::DONE),
        vec!["[*] Your name is registered: from now on it needs your password."]
    );
    assert_eq!(
        reply(&mut frank, "passwd", "pw pw2", reply_kind::DONE),
        vec!["[*] Your password is changed."]
    );
    assert_eq!(
        error(&mut frank, "passwd", "wrong pw3"),
        error_code::WRONG_PASSWORD
    );
}

#[test]
fn the_chat_client_logs_in_to_a_registered_name_with_the_next_line_of_stdin() {
    let server = Server::start(&[]);
    let mut carol = TextUser::join(&server, "carol");
    carol.send("/register s3cret");
    carol.expect_containing("[*] Your name is registered");
    carol.send("/quit");
    drop(carol);
    let mut chat = ChatClient::start(&["--name", "carol", &server.addr.to_string()]);
    chat.stdout
        .expect("the password prompt", |l| l == "Password:");
    chat.send("s3cret");
    chat.stdout
        .expect("the welcome", |l| l.starts_with("[*] Welcome, carol!"));
    chat.send("/whoami");
    chat.stdout.expect("who it is", |l| {
        l == "[*] You are carol (user, registered)."
    });
    chat.send("/quit");
    assert!(chat.wait().success(), "chat exits 0 after /quit");
    let mut wrong = ChatClient::start(&["--name", "carol", &server.addr.to_string()]);
    wrong
        .stdout
        .expect("the password prompt", |l| l == "Password:");
    wrong.send("guess");
    wrong
        .stderr
        .expect("the refusal", |l| l.contains("wrong password"));
}

#[test]
fn passwd_alone_works_in_framed_mode_and_through_the_chat_client() {
    let server = Server::start(&[]);
    let mut frank = FramedUser::join(&server, "frank");
    assert_eq!(
        reply(&mut frank, "register", "old phrase", reply_kind::DONE),
        vec!["[*] Your name is registered: from now on it needs your password."]
    );
    // A command frame with no arguments asks, with a notice before each password prompt; each
    // password goes as a say frame, as at the login.
    assert_eq!(
        reply(&mut frank, "passwd", "", reply_kind::NOTICE),
        vec!["[*] Changing your password: your current password? (an empty line cancels)"]
    );
    let prompt = |user: &mut FramedUser| {
        user.expect("the password prompt", |f| {
            matches!(f, ServerFrame::Reply { kind, .. } if *kind == reply_kind::PASSWORD_PROMPT)
        })
    };
    prompt(&mut frank);
    for line in ["old phrase", "new phrase", "new phrase"] {
        frank.send(&ClientFrame::say(1, line));
    }
    frank.expect("the change", |f| {
        matches!(f, ServerFrame::Reply { kind, lines } if *kind == reply_kind::DONE
            && lines == &["[*] Your password is changed."])
    });
    drop(frank);

    // The chat client: the prompts are shown and the typed lines are sent as the passwords.
    let mut chat = ChatClient::start(&["--name", "frank", &server.addr.to_string()]);
    chat.stdout
        .expect("the password prompt", |l| l == "Password:");
    chat.send("new phrase");
    chat.stdout
        .expect("the welcome", |l| l.starts_with("[*] Welcome, frank!"));
    chat.send("/passwd");
    chat.stdout.expect("the first step", |l| {
        l == "[*] Changing your password: your current password? (an empty line cancels)"
    });
    chat.stdout.expect("its prompt", |l| l == "Password:");
    chat.send("new phrase");
    chat.stdout
        .expect("the second step", |l| l == "[*] Your new password?");
    chat.send("third phrase");
    chat.stdout.expect("the third step", |l| {
        l == "[*] Your new password once more?"
    });
    chat.send("third phrase");
    chat.stdout
        .expect("the change", |l| l == "[*] Your password is changed.");
    chat.send("/quit");
    assert!(chat.wait().success());
    let mut text = TextUser::connect(&server);
    text.expect_line("the prompt", |l| l == "Enter your name:");
    text.send("frank");
    text.expect_line("the password prompt", |l| l == "Password:");
    text.send("third phrase");
    text.expect_containing("[*] Welcome, frank!");
}

#[test]
fn a_takeover_stops_the_chat_client_instead_of_it_logging_in_again() {
    let server = Server::start(&[]);
    let mut carol = TextUser::join(&server, "carol");
    carol.send("/register pw");
    carol.expect_containing("[*] Your name is registered");
    carol.send("/quit");
    drop(carol);
    let mut chat = ChatClient::start(&["--name", "carol", &server.addr.to_string()]);
    chat.stdout
        .expect("the password prompt", |l| l == "Password:");
    chat.send("pw");
    chat.stdout
        .expect("the welcome", |l| l.starts_with("[*] Welcome, carol!"));
    let mut elsewhere = TextUser::connect(&server);
    elsewhere.expect_line("the prompt", |l| l == "Enter your name:");
    elsewhere.send("carol");
    elsewhere.expect_line("the password prompt", |l| l == "Password:");
    elsewhere.send("pw");
    elsewhere.expect_containing("[*] Welcome, carol!");
    chat.stdout.expect("why", |l| {
        l == "[*] You logged in to your name from another connection: this one closes."
    });
    assert!(!chat.wait().success(), "chat ends, reporting why");
    elsewhere.send("/users");
    elsewhere.expect_containing("[*] Online (1): carol");
}
