//! What a TLS server lets through in plain: `--tls-required` sends a plain client one line saying
//! how to connect securely; passwords (logins and `/register`) cross only inside TLS unless
//! `--allow-plain-passwords`; an IRC client is told in its own protocol that it is not served, in
//! plain or inside TLS, where an HTTP request is answered in HTTP as in plain; a text client is greeted after a short silence, or at once by typing; and SIGHUP
//! re-reads the certificate without dropping anyone.

mod common;

use std::time::{Duration, Instant};

use common::tls::{openssl_fingerprint, served_fingerprint, write_test_cert};
use common::{add_user, chat_line, Client, DataDir, LogFile, Piped, TestServer, PROMPT, TIMEOUT};
use rustix::process::Signal;

/// The start of the line a plain client of a `--tls-required` server gets.
const TLS_ONLY: &str = "[!] this server takes TLS connections only: connect with ";

/// The start of the refusal of a password over a plain connection.
const PLAIN_PASSWORD: &str = "[!] passwords are taken over TLS only on this server";

/// How long the server waits for a silent client before greeting it (`--greeting-delay`'s default).
const GREETING_DELAY: Duration = Duration::from_millis(200);

/// `openssl s_client -quiet` connected to `server`, at its name prompt.
fn tls_client(server: &TestServer) -> Piped {
    let addr = server.addr().to_string();
    let mut client = Piped::spawn("openssl", &["s_client", "-quiet", "-connect", &addr]);
    client.expect_line(|l: &str| l == PROMPT);
    client
}

#[test]
fn tls_required_sends_a_plain_client_one_line_and_serves_tls() {
    let data = DataDir::new();
    let log = LogFile::in_dir(&data);
    let server = TestServer::start_on(
        &data,
        &[
            "--tls-self-signed",
            "--tls-required",
            "--log-file",
            log.arg(),
        ],
    );
    let mut plain = Client::connect(server.addr());
    let lines = plain.expect_closed();
    assert_eq!(lines.len(), 1, "one line, then the close: {lines:#?}");
    let port = server.addr().port();
    assert!(lines[0].starts_with(TLS_ONLY), "{lines:#?}");
    assert!(
        lines[0].contains(&format!("openssl s_client -connect HOST:{port}")),
        "{lines:#?}"
    );
    let conn = log.conn_of(plain.local_addr());
    let why = log.disconnect_reason(&conn);
    assert!(why.contains("TLS is required"), "{why}");

    // A plain client that typed its name at once is refused the same way.
    let mut typed = Client::connect(server.addr());
    typed.send_line("pat");
    let lines = typed.expect_closed();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with(TLS_ONLY), "{lines:#?}");

    let mut secure = tls_client(&server);
    secure.send_line("tess");
    secure.expect_line("[*] Welcome, tess!");
}

/// A server with TLS on (self-signed) over `data`, which holds the account dora / "dora's pw".
fn server_with_dora(data: &DataDir, extra: &[&str]) -> TestServer {
    add_user(data, "dora", "dora's pw");
    let mut args = vec!["--tls-self-signed"];
    args.extend_from_slice(extra);
    TestServer::start_on(data, &args)
}

#[test]
fn a_registered_name_over_plain_is_refused_its_password_and_asked_for_a_name_again() {
    let data = DataDir::new();
    let server = server_with_dora(&data, &[]);
    let mut plain = Client::connect(server.addr());
    plain.expect_line(|l: &str| l == PROMPT);
    plain.send_line("dora");
    let refusal = plain.next_line();
    assert!(refusal.starts_with(PLAIN_PASSWORD), "{refusal}");
    assert!(refusal.contains("openssl s_client"), "{refusal}");
    assert_eq!(plain.next_line(), PROMPT, "asked for a name again");
    // Still a guest may join under another name on the same connection.
    plain.send_line("dorothy");
    plain.expect_line("[*] Welcome, dorothy!");

    let mut secure = tls_client(&server);
    secure.send_line("dora");
    secure.expect_line(|l: &str| l == "Password:");
    secure.send_line("dora's pw");
    secure.expect_line("[*] Welcome, dora!");
    secure.send_line("over TLS");
    plain.expect_line(chat_line("dora", "over TLS"));
}

#[test]
fn allow_plain_passwords_lets_a_registered_name_log_in_over_plain() {
    let data = DataDir::new();
    let server = server_with_dora(&data, &["--allow-plain-passwords"]);
    let mut plain = Client::connect(server.addr());
    plain.expect_line(|l: &str| l == PROMPT);
    plain.send_line("dora");
    plain.expect_line(|l: &str| l == "Password:");
    plain.send_line("dora's pw");
    plain.expect_line("[*] Welcome, dora!");
}

#[test]
fn register_over_plain_is_refused_and_over_tls_is_taken() {
    let data = DataDir::new();
    let server = TestServer::start_on(&data, &["--tls-self-signed"]);
    let mut plain = server.join("gina");
    plain.send_line("/register gina's pw");
    let refusal = plain.next_line();
    assert!(refusal.starts_with(PLAIN_PASSWORD), "{refusal}");
    let listed = plain.sync();
    assert!(
        !listed.iter().any(|l| l.contains("registered")),
        "{listed:#?}"
    );

    let mut secure = tls_client(&server);
    secure.send_line("hana");
    secure.expect_line("[*] Welcome, hana!");
    secure.send_line("/register hana's pw");
    secure.expect_line("[*] Your name is registered");
}

#[test]
fn irc_clients_are_served_plain_and_inside_tls_and_http_is_sniffed_inside_tls_too() {
    let data = DataDir::new();
    let log = LogFile::in_dir(&data);
    let server = TestServer::start_on(&data, &["--tls-self-signed", "--log-file", log.arg()]);
    let mut bystander = server.join("bea");
    let mut listener = server.join("ben");

    let mut irc = Client::connect(server.addr());
    irc.send_raw(b"NICK ivan\r\nUSER ivan 0 * :Ivan\r\n");
    irc.expect_line(" 001 ivan :Welcome");
    listener.expect_line("ivan entered");

    // Inside TLS the plaintext is sniffed again: IRC is served there too...
    let addr = server.addr().to_string();
    let mut ircs = Piped::spawn("openssl", &["s_client", "-quiet", "-connect", &addr]);
    ircs.send_line("NICK ivy");
    ircs.send_line("USER ivy 0 * :Ivy");
    ircs.expect_line(" 001 ivy :Welcome");
    listener.expect_line("ivy entered");

    // ...and a request is answered in HTTP, over TLS.
    let mut https = Piped::spawn("openssl", &["s_client", "-quiet", "-connect", &addr]);
    https.send_line("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r");
    https.send_line("\r");
    https.expect_line(|l: &str| l == "HTTP/1.1 200 OK");
    let rest = https.expect_end();
    assert!(rest.iter().any(|l| l.contains("<html")), "{rest:#?}");

    bystander.send_line("still here");
    listener.expect_line(chat_line("bea", "still here"));
}

#[test]
fn a_silent_plain_client_is_greeted_after_a_short_wait() {
    let server = TestServer::start(&["--tls-self-signed"]);
    let connected = Instant::now();
    let mut client = Client::connect(server.addr());
    // The greeting comes unprompted, no sooner than the delay after the accept (which came after
    // `connected`), and not much later (a generous bound: CI may be loaded).
    let first = client.next_line();
    assert!(first.starts_with("Welcome to chatd!"), "{first}");
    assert_eq!(client.next_line(), PROMPT);
    let waited = connected.elapsed();
    assert!(waited >= GREETING_DELAY, "greeted after {waited:?}");
    assert!(waited < Duration::from_secs(3), "greeted after {waited:?}");
}

#[test]
fn greeting_delay_sets_how_long_a_silent_client_is_waited_for() {
    let delay = Duration::from_millis(1200);
    let server = TestServer::start(&["--tls-self-signed", "--greeting-delay", "1200"]);
    let connected = Instant::now();
    let mut client = Client::connect(server.addr());
    // The server sends it no sooner than the delay after its accept, which came after `connected`.
    let first = client.next_line();
    assert!(first.starts_with("Welcome to chatd!"), "{first}");
    let waited = connected.elapsed();
    assert!(waited >= delay, "greeted after {waited:?}");
    // TLS clients, which speak first, are still served TLS.
    let _ = tls_client(&server);
}

#[test]
fn a_name_typed_before_the_greeting_is_taken_as_the_name() {
    let server = TestServer::start(&["--tls-self-signed"]);
    let mut watcher = server.join("walt");
    let mut client = Client::connect(server.addr());
    client.send_line("quick");
    client.expect_line("[*] Welcome, quick!");
    watcher.expect_line("[*] quick entered.");
}

/// Waits until a new connection to `server` is served the certificate `wanted` (bounded).
fn served_becomes(server: &TestServer, wanted: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let served = served_fingerprint(server.addr());
        if served == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still served {served}, not {wanted}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_rereads_the_certificate_and_keeps_a_tls_user_chatting() {
    let data = DataDir::new();
    let log = LogFile::in_dir(&data);
    let first = write_test_cert(data.path(), "server", &["localhost", "127.0.0.1"]);
    let (cert, key) = (
        first.cert.to_str().expect("UTF-8").to_owned(),
        first.key.to_str().expect("UTF-8").to_owned(),
    );
    let mut server = TestServer::start_on(
        &data,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--log-file",
            log.arg(),
        ],
    );
    let old = openssl_fingerprint(&first.cert);
    assert_eq!(served_fingerprint(server.addr()), old);

    let mut secure = tls_client(&server);
    secure.send_line("sam");
    secure.expect_line("[*] Welcome, sam!");
    let mut plain = server.join("pia");

    let second = write_test_cert(data.path(), "server", &["localhost", "127.0.0.1"]);
    let new = openssl_fingerprint(&second.cert);
    assert_ne!(new, old, "a new certificate");
    server.signal(Signal::HUP);
    log.expect(format!("SIGHUP: TLS certificate {new}"));
    served_becomes(&server, &new);

    secure.send_line("still encrypted");
    plain.expect_line(chat_line("sam", "still encrypted"));
    plain.send_line("and still heard");
    secure.expect_line(chat_line("pia", "and still heard"));
}
