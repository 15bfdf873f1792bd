//! Hostile and broken TLS input: garbage after 0x16, a ClientHello cut short, a handshake that
//! drips a byte a second, one that never finishes, TLS to a server without TLS, a client that
//! rejects the server's name. Each closes only its own connection, quickly, with exactly one
//! disconnect line in the log giving the reason; a plain user on the same server chats
//! throughout, and the server does not spin on a connection that is slow on purpose.

mod common;

use std::time::{Duration, Instant};

use common::tls::client_hello;
use common::{chat_line, Client, DataDir, LogFile, Piped, TestServer, PROMPT, TIMEOUT};

/// A server, its log, and two plain users who chat while the hostile client does its worst.
struct Scene {
    server: TestServer,
    log: LogFile,
    data: DataDir,
    alice: Client,
    bob: Client,
    said: usize,
}

impl Scene {
    /// A server started with `args` (a data directory and a log file are added).
    fn new(args: &[&str]) -> Scene {
        let data = DataDir::new();
        let log = LogFile::in_dir(&data);
        let mut all = vec!["--log-file", log.arg()];
        all.extend_from_slice(args);
        let server = TestServer::start_on(&data, &all);
        let alice = server.join("alice");
        let bob = server.join("bob");
        Scene {
            server,
            log,
            data,
            alice,
            bob,
            said: 0,
        }
    }

    /// Alice says a new line and Bob hears it.
    #[track_caller]
    fn still_chatting(&mut self) {
        self.said += 1;
        let text = format!("line {} while someone misbehaves", self.said);
        self.alice.send_line(&text);
        self.bob.expect_line(chat_line("alice", &text));
    }

    /// A new raw connection, and the `conn N` the log knows it by.
    fn connect(&self) -> (Client, String) {
        let client = Client::connect(self.server.addr());
        let conn = self.log.conn_of(client.local_addr());
        (client, conn)
    }

    /// How many disconnect lines the log holds.
    fn disconnects(&self) -> usize {
        let lines = self.log.lines();
        lines
            .iter()
            .filter(|l| l.contains(" disconnected: "))
            .count()
    }
}

/// Waits (bounded) for the server to close `client`; returns how long it took from `since`.
#[track_caller]
fn closed(client: &mut Client, since: Instant) -> Duration {
    assert!(
        client.closed_within(TIMEOUT),
        "the server did not close the connection within {TIMEOUT:?}"
    );
    since.elapsed()
}

#[test]
fn garbage_after_0x16_and_a_hello_cut_short_close_only_that_connection() {
    // The default name timeout (30 s) is far above TIMEOUT: a close in time is not the timeout.
    let mut scene = Scene::new(&["--tls-self-signed"]);

    let (mut garbage, conn) = scene.connect();
    let sent = Instant::now();
    garbage.send_raw(b"\x16 is where a TLS record starts, but this is not one\r\n");
    closed(&mut garbage, sent);
    let why = scene.log.disconnect_reason(&conn);
    assert!(why.starts_with("TLS "), "{why}");
    scene.still_chatting();

    let hello = client_hello();
    let (mut cut, conn) = scene.connect();
    cut.send_raw(&hello[..hello.len() / 2]);
    cut.shutdown_write();
    closed(&mut cut, Instant::now());
    let why = scene.log.disconnect_reason(&conn);
    assert_eq!(why, "closed by peer during the TLS handshake");
    scene.still_chatting();

    // A record header promising more than TLS allows is refused at once, not waited for.
    let (mut huge, conn) = scene.connect();
    huge.send_raw(b"\x16\x03\x01\xff\xff");
    closed(&mut huge, Instant::now());
    let why = scene.log.disconnect_reason(&conn);
    assert!(why.starts_with("TLS "), "{why}");
    scene.still_chatting();
    assert_eq!(scene.disconnects(), 3, "{:#?}", scene.log.lines());
}

#[test]
fn a_dripping_handshake_and_one_that_never_ends_are_closed_by_the_name_timeout_without_spinning() {
    let mut scene = Scene::new(&["--tls-self-signed", "--name-timeout", "2"]);
    let cpu_before = scene.server.cpu_time();
    let hello = client_hello();

    let (mut stalled, stalled_conn) = scene.connect();
    let started = Instant::now();
    stalled.send_raw(&hello[..hello.len() - 10]);

    let (mut drip, drip_conn) = scene.connect();
    let mut dripped = 0;
    for byte in &hello {
        if drip.try_send_raw(&[*byte]).is_err() {
            break;
        }
        dripped += 1;
        scene.still_chatting();
        // One byte a second, unless the server closes first.
        if drip.closed_within(Duration::from_secs(1)) {
            break;
        }
    }
    let drip_took = closed(&mut drip, started);
    let stall_took = closed(&mut stalled, started);
    assert!(dripped < hello.len(), "the drip was cut off");
    for (took, conn) in [(drip_took, &drip_conn), (stall_took, &stalled_conn)] {
        assert!(
            took >= Duration::from_secs(2),
            "{conn} closed after {took:?}"
        );
        let why = scene.log.disconnect_reason(conn);
        assert_eq!(
            why, "TLS handshake not finished within the name timeout (2 s)",
            "{conn}"
        );
    }
    scene.still_chatting();
    let cpu = scene.server.cpu_time() - cpu_before;
    assert!(
        cpu < Duration::from_millis(500),
        "the server used {cpu:?} of CPU"
    );
    assert_eq!(scene.disconnects(), 2, "{:#?}", scene.log.lines());
}

#[test]
fn tls_to_a_server_without_tls_is_closed_and_logged() {
    let mut scene = Scene::new(&[]);
    let (mut client, conn) = scene.connect();
    client.send_raw(&client_hello());
    closed(&mut client, Instant::now());
    let why = scene.log.disconnect_reason(&conn);
    assert!(why.contains("this server has no TLS"), "{why}");
    assert!(why.contains("--tls-self-signed"), "{why}");
    scene.still_chatting();

    // openssl s_client tells its user the handshake failed.
    let addr = scene.server.addr().to_string();
    let mut openssl = Piped::spawn("openssl", &["s_client", "-connect", &addr]);
    openssl.close_stdin();
    openssl.expect_end();
    let (status, _) = openssl.wait_exit();
    assert!(!status.success(), "s_client: {status}");
    scene.still_chatting();
    assert_eq!(scene.disconnects(), 2, "{:#?}", scene.log.lines());
}

#[test]
fn a_client_refusing_the_servers_name_is_logged_once_and_the_server_serves_on() {
    let mut scene = Scene::new(&["--tls-self-signed"]);
    let addr = scene.server.addr().to_string();
    let cert = scene.data.path().join("tls/cert.pem");
    let cert = cert.to_str().expect("UTF-8");
    let verifying = |name: &str| -> Piped {
        let args = [
            "s_client",
            "-quiet",
            "-connect",
            &addr,
            "-servername",
            name,
            "-CAfile",
            cert,
            "-verify_hostname",
            name,
            "-verify_return_error",
        ];
        Piped::spawn("openssl", &args)
    };

    let mut wrong = verifying("wrong.example");
    wrong.close_stdin();
    wrong.expect_end();
    let (status, stderr) = wrong.wait_exit();
    assert!(!status.success(), "s_client: {status}");
    assert!(
        stderr.iter().any(|l| l.contains("hostname mismatch")),
        "{stderr:#?}"
    );
    let alert = scene
        .log
        .expect(" disconnected: TLS alert from the client: ");
    let alerts = scene.log.lines();
    let alerts = alerts.iter().filter(|l| l.contains("TLS alert")).count();
    assert_eq!(alerts, 1, "the alert logged once: {alert}");
    scene.still_chatting();

    let mut right = verifying("localhost");
    right.expect_line(|l: &str| l == PROMPT);
    right.send_line("vera");
    right.expect_line("[*] Welcome, vera!");
    scene.bob.expect_line("[*] vera entered.");
    scene.still_chatting();
    assert_eq!(scene.disconnects(), 1, "{:#?}", scene.log.lines());
}
