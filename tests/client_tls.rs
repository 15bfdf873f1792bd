//! The `chat` client over TLS end to end: the real `chatd --tls-self-signed` and the real `chat`,
//! scripted (`--lines`) and in the window (tmux), with a plain `nc`-style text user on the same
//! port. Each test has a config directory of its own (`XDG_CONFIG_HOME`), so the user's
//! `known_servers` is never read or written.

mod common;
mod framed_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatd::tls::Fingerprint;
use common::tmux::Tmux;
use common::DataDir;
use framed_common::{is_chat_line, ChatClient, Server, TextUser};

/// A TLS chatd (a certificate made in its data directory) and the fingerprint `chatd tls
/// fingerprint` prints for it.
fn tls_server() -> (Server, Fingerprint) {
    let server = Server::start(&["--tls-self-signed"]);
    let dir = server.data_dir().to_str().expect("a UTF-8 temp path");
    let (code, out, err) = common::run_chatd(
        &["--data-dir", dir, "tls", "fingerprint"],
        "",
        None,
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "chatd tls fingerprint: {out} {err}");
    let print = out
        .split_whitespace()
        .find(|word| word.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no SHA256: fingerprint in {out:?}"));
    let print = print.parse().expect("a fingerprint chat reads");
    (server, print)
}

/// The known-servers file under `config`.
fn known_servers(config: &Path) -> PathBuf {
    config.join("chatd/known_servers")
}

/// Starts `chat --lines ARGS` with `config` as its XDG_CONFIG_HOME (and HOME, so neither is the
/// user's).
fn chat(config: &DataDir, args: &[&str]) -> ChatClient {
    let mut all = vec!["--lines"];
    all.extend_from_slice(args);
    ChatClient::start_with_env(
        &all,
        &[("XDG_CONFIG_HOME", config.path()), ("HOME", config.path())],
    )
}

#[test]
fn scripted_chat_over_tls_with_the_fingerprint_talks_with_a_plain_text_user() {
    let (server, print) = tls_server();
    let config = DataDir::new();
    let mut nina = TextUser::join(&server, "nina");
    let addr = server.addr.to_string();
    let print_arg = print.to_string();
    let mut bot = chat(
        &config,
        &[
            "--tls",
            "--tls-fingerprint",
            &print_arg,
            "--name",
            "bot",
            &addr,
        ],
    );
    bot.stdout.expect_containing("[*] Welcome, bot!");
    nina.expect_line("bot entering", |l| l == "[*] bot entered.");
    bot.send("hello over tls");
    nina.expect_line("bot's line", |l| is_chat_line(l, "bot > hello over tls"));
    nina.send("hi in plain text");
    bot.stdout.expect("nina's line", |l| {
        is_chat_line(l, "nina > hi in plain text")
    });
    bot.send("/quit");
    nina.expect_line("bot leaving", |l| l == "[*] bot exited.");
    assert!(bot.wait().success());
    assert!(
        !known_servers(config.path()).exists(),
        "the scripted mode never writes the known servers"
    );
}

#[test]
fn a_tls_address_and_a_remembered_certificate_need_no_flag() {
    let (server, print) = tls_server();
    let config = DataDir::new();
    let file = known_servers(config.path());
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("config dir");
    let port = server.addr.port();
    std::fs::write(&file, format!("# mine\n127.0.0.1:{port} {print}\n")).expect("write");
    let addr = format!("tls://127.0.0.1:{port}");
    let mut bot = chat(&config, &["--name", "bot", &addr]);
    bot.stdout.expect_containing("[*] Welcome, bot!");
    bot.close_stdin();
    assert!(bot.wait().success());
}

#[test]
fn a_wrong_fingerprint_is_refused() {
    let (server, print) = tls_server();
    let config = DataDir::new();
    let wrong = Fingerprint::of(b"some other certificate").to_string();
    let addr = server.addr.to_string();
    let mut bot = chat(
        &config,
        &["--tls-fingerprint", &wrong, "--name", "bot", &addr],
    );
    bot.stderr.expect_containing(&format!(
        "chat: the certificate of {addr} is not the one given with --tls-fingerprint"
    ));
    bot.stderr.expect_containing(&format!("expected {wrong}"));
    bot.stderr.expect_containing(&format!("received {print}"));
    assert_eq!(bot.wait().code(), Some(1));
}

#[test]
fn an_unknown_certificate_is_refused_by_a_script_with_its_fingerprint() {
    let (server, print) = tls_server();
    let config = DataDir::new();
    let addr = server.addr.to_string();
    let mut bot = chat(&config, &["--tls", "--name", "bot", &addr]);
    bot.stderr.expect_containing(&format!(
        "chat: the certificate of {addr} is not trusted (not signed by a trusted authority"
    ));
    bot.stderr
        .expect_containing(&format!("Its fingerprint is {print}"));
    bot.stderr
        .expect_containing(&format!("connect with --tls-fingerprint {print}"));
    assert_eq!(bot.wait().code(), Some(1));
    assert!(!known_servers(config.path()).exists());
}

#[test]
fn a_changed_certificate_is_refused_loudly_naming_the_file_and_line() {
    let (server, print) = tls_server();
    let config = DataDir::new();
    let file = known_servers(config.path());
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("config dir");
    let addr = server.addr.to_string();
    let old = Fingerprint::of(b"the certificate it had before");
    std::fs::write(&file, format!("other:1 {print}\n{addr} {old}\n")).expect("write");
    let mut bot = chat(&config, &["--tls", "--name", "bot", &addr]);
    bot.stderr.expect_containing(&format!(
        "chat: WARNING: THE CERTIFICATE OF {addr} HAS CHANGED!"
    ));
    bot.stderr
        .expect_containing(&format!("expected {old} ({}, line 2)", file.display()));
    bot.stderr.expect_containing(&format!("received {print}"));
    bot.stderr
        .expect_containing(&format!("remove line 2 of {}", file.display()));
    assert_eq!(bot.wait().code(), Some(1));
    let kept = std::fs::read_to_string(&file).expect("read");
    assert_eq!(
        kept,
        format!("other:1 {print}\n{addr} {old}\n"),
        "left as it was"
    );
}

#[test]
fn the_servers_certificate_as_ca_verifies_it_by_name() {
    let (server, _) = tls_server();
    let config = DataDir::new();
    let cert = server.data_dir().join("tls/cert.pem");
    let cert = cert.to_str().expect("a UTF-8 temp path");
    let by_name = format!("localhost:{}", server.addr.port());
    let mut bot = chat(&config, &["--tls-ca", cert, "--name", "bot", &by_name]);
    bot.stdout.expect_containing("[*] Welcome, bot!");
    bot.close_stdin();
    assert!(bot.wait().success());
    assert!(!known_servers(config.path()).exists());
}

#[test]
fn tls_to_a_server_without_tls_fails_in_one_line() {
    let server = Server::start(&[]);
    let config = DataDir::new();
    let addr = server.addr.to_string();
    let mut bot = chat(&config, &["--tls", "--name", "bot", &addr]);
    bot.stderr
        .expect_containing(&format!("chat: TLS handshake with {addr} failed: "));
    assert_eq!(bot.wait().code(), Some(1));
}

#[test]
fn the_window_asks_about_an_unknown_certificate_and_y_remembers_it() {
    let (server, print) = tls_server();
    let config = DataDir::new();
    let xdg = format!("XDG_CONFIG_HOME={}", config.path().display());
    let home = format!("HOME={}", config.path().display());
    let addr = server.addr.to_string();
    let tmux = Tmux::new();
    let args = [
        xdg.as_str(),
        home.as_str(),
        env!("CARGO_BIN_EXE_chat"),
        "--tls",
        "--name",
        "alice",
        addr.as_str(),
    ];
    tmux.open_program("alice", 120, 30, "env", &args);
    tmux.wait_text("alice", "trust this certificate? y / n");
    let shown = tmux.wait_text("alice", "[!] its fingerprint is").join("");
    let digits: String = print.to_string().chars().take(30).collect();
    assert!(shown.contains(&digits), "the fingerprint is shown: {shown}");
    let file = known_servers(config.path());
    assert!(!file.exists(), "nothing written before the answer");
    tmux.type_text("alice", "y");
    tmux.wait_text("alice", "│ online │");
    let text = std::fs::read_to_string(&file).expect("the known servers file");
    assert_eq!(text, format!("{addr} {print}\n"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(&file).ok(), Some(0o600));
    assert_eq!(mode(&config.path().join("chatd")).ok(), Some(0o700));
    let mut nina = TextUser::join(&server, "nina");
    nina.send("hello alice");
    tmux.wait_text("alice", "nina > hello alice");
}
