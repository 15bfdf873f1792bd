//! Real TLS clients that no one here wrote (`openssl s_client`, `socat OPENSSL:`, `ncat --ssl`;
//! Debian packages openssl, socat and ncat) join a `--tls-self-signed` server as text users and
//! chat both ways with a plain nc-style user on the same port. Each is driven through its stdin
//! and stdout pipes, as a person at a terminal would type into it.

mod common;

use common::{chat_line, DataDir, LogFile, Piped, TestServer};

/// A server with TLS on and a log to tell which connections were TLS.
fn tls_server(data: &DataDir, log: &LogFile) -> TestServer {
    TestServer::start_on(
        data,
        &[
            "--tls-self-signed",
            "--log-file",
            log.arg(),
            "--log-level",
            "info",
        ],
    )
}

/// `client`, already started against the server, joins as `name` and chats with a plain user,
/// both ways; the log shows `name`'s connection finished a TLS handshake.
fn chats_with_a_plain_user(server: &TestServer, log: &LogFile, mut client: Piped, name: &str) {
    let mut plain = server.join("bob");
    client.expect_line("Welcome to chatd!");
    client.expect_line(|l: &str| l == common::PROMPT);
    client.send_line(name);
    client.expect_line(format!("[*] Welcome, {name}!"));
    plain.expect_line(format!("[*] {name} entered."));

    client.send_line("hello from inside TLS");
    plain.expect_line(chat_line(name, "hello from inside TLS"));
    plain.send_line("and hello from plain text");
    client.expect_line(chat_line("bob", "and hello from plain text"));

    let conn = log.conn_logging(format!(" joined as {name} (user, guest)"));
    log.expect(|l: &str| l.contains(&format!("] {conn} ")) && l.contains("TLS handshake done"));

    client.send_line("/quit");
    client.expect_end();
    plain.expect_line(format!("[*] {name} exited."));
    assert!(
        log.disconnect_reason(&conn).starts_with("quit"),
        "{name} quit: {:#?}",
        log.lines()
    );
}

#[test]
fn openssl_s_client_chats_with_a_plain_user() {
    let (data, log) = (DataDir::new(), DataDir::new());
    let log = LogFile::in_dir(&log);
    let server = tls_server(&data, &log);
    let addr = server.addr().to_string();
    let client = Piped::spawn("openssl", &["s_client", "-quiet", "-connect", &addr]);
    chats_with_a_plain_user(&server, &log, client, "olga");
}

#[test]
fn socat_openssl_chats_with_a_plain_user() {
    let (data, log) = (DataDir::new(), DataDir::new());
    let log = LogFile::in_dir(&log);
    let server = tls_server(&data, &log);
    let address = format!("OPENSSL:{},verify=0", server.addr());
    let client = Piped::spawn("socat", &["-", &address]);
    chats_with_a_plain_user(&server, &log, client, "sonja");
}

#[test]
fn ncat_ssl_chats_with_a_plain_user() {
    let (data, log) = (DataDir::new(), DataDir::new());
    let log = LogFile::in_dir(&log);
    let server = tls_server(&data, &log);
    let (host, port) = (server.addr().ip().to_string(), server.addr().port());
    let client = Piped::spawn("ncat", &["--ssl", &host, &port.to_string()]);
    chats_with_a_plain_user(&server, &log, client, "nadia");
}
