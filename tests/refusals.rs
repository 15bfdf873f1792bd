//! Connections refused when they are accepted (the server full, too many from one address) are
//! told why in their own wire mode, over real TCP: the `[!]` line for nc, `503` for a browser,
//! `ERROR` for IRC, a reject frame for the chat client, a TLS alert for a ClientHello. A flood of
//! refused connections waits in a small pool; past it they are told in text at once. Everyone
//! inside chats on throughout.

mod common;
mod framed_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chatd::proto::framed::{error_code, ClientFrame, ServerFrame};
use common::tls::client_hello;
use common::{Client, TestServer, TIMEOUT};
use framed_common::{ChatClient, FramedUser};

const FULL: &str = "server full, try again later";
const ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80];

/// Connects to `addr`, sends `bytes` at once, and reads everything until the server closes.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    assert!(addr.ip().is_loopback());
    let mut socket = TcpStream::connect(addr).expect("connect");
    socket.write_all(bytes).expect("send");
    socket
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    let mut answer = Vec::new();
    socket
        .read_to_end(&mut answer)
        .expect("the answer, then the close");
    answer
}

fn as_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("a text answer")
}

fn get(addr: SocketAddr) -> String {
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\r\n");
    as_text(&exchange(addr, request.as_bytes())).to_owned()
}

/// The address after `prefix` in the server's stdout.
fn announced(server: &mut TestServer, prefix: &str) -> SocketAddr {
    let line = server.expect_stdout(prefix, TIMEOUT);
    line[line.find(prefix).expect("the prefix") + prefix.len()..]
        .trim()
        .parse()
        .expect("an address")
}

#[test]
fn a_full_server_tells_each_wire_mode_in_its_own_form() {
    let mut server = TestServer::start(&[
        "--max-clients",
        "1",
        "--tls-self-signed",
        "--listen-irc",
        "127.0.0.1:0",
    ]);
    let irc_addr = announced(&mut server, "chatd listening for IRC on ");
    let addr = server.addr();
    let mut alice = server.join("alice");

    // nc, silent: after the greeting delay, the line it always got.
    let mut silent = Client::connect(addr);
    assert_eq!(silent.expect_closed(), vec![format!("[!] {FULL}")]);
    // A name typed before any prompt: told at once, the same line.
    let typed = exchange(addr, b"bob\n");
    assert_eq!(as_text(&typed), format!("[!] {FULL}\r\n"));

    // A browser: an HTTP answer it can show.
    let answer = get(addr);
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 503 Service Unavailable"));
    let headers: Vec<&str> = lines.collect();
    for header in [
        "Retry-After: 30",
        "Connection: close",
        "Content-Type: text/plain; charset=utf-8",
    ] {
        assert!(headers.contains(&header), "{header} missing: {headers:?}");
    }
    assert_eq!(body, format!("503 Service Unavailable: {FULL}\n"));
    let length = format!("Content-Length: {}", body.len());
    assert!(headers.contains(&length.as_str()), "{headers:?}");
    // HEAD: the same head, no body.
    let head_only = exchange(addr, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let head_only = as_text(&head_only);
    assert!(head_only.starts_with("HTTP/1.1 503 "), "{head_only}");
    assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");

    // IRC, on the main port and on the IRC listener (where even silence is IRC).
    let irc = exchange(addr, b"NICK ira\r\nUSER ira 0 * :Ira\r\n");
    assert_eq!(as_text(&irc), format!("ERROR :{FULL}\r\n"));
    let mut quiet_irc = Client::connect(irc_addr);
    assert_eq!(quiet_irc.expect_closed(), vec![format!("ERROR :{FULL}")]);

    // The chat client's framed mode: a reject frame.
    let mut framed = FramedUser::connect_to(addr);
    framed.send(&ClientFrame::hello("fred"));
    let frames = framed.expect_closed();
    match &frames[..] {
        [ServerFrame::Error { code, text, .. }] => {
            assert_eq!(*code, error_code::SERVER_FULL);
            assert_eq!(text, FULL);
        }
        other => panic!("{other:?}"),
    }

    // The chat client itself says the server is full (not that it refused the name).
    let mut chat = ChatClient::start(&["--lines", "--name", "fred", &addr.to_string()]);
    chat.stderr
        .expect_containing(&format!("chat: the server closed the connection: {FULL}"));
    assert_eq!(chat.wait().code(), Some(1));

    // TLS: a fatal internal_error alert in the clear, with no handshake; openssl says so.
    assert_eq!(exchange(addr, &client_hello()), ALERT);
    assert_eq!(exchange(irc_addr, &client_hello()), ALERT);
    let openssl = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    let said = String::from_utf8_lossy(&openssl.stderr);
    assert!(said.contains("alert internal error"), "{said}");

    // Alice was never disturbed; once she leaves, a browser gets the page.
    alice.send_line("/who");
    alice.expect_line("alice");
    drop(alice);
    server.expect_stdout("[*] alice exited.", TIMEOUT);
    let deadline = Instant::now() + TIMEOUT;
    while !get(addr).starts_with("HTTP/1.1 200 OK") {
        assert!(Instant::now() < deadline, "no page once alice left");
    }
}

#[test]
fn the_per_address_limit_is_503_without_retry_after() {
    let server = TestServer::start(&["--max-per-ip", "1", "--limit-loopback"]);
    let addr = server.addr();
    let _alice = server.join("alice");
    let answer = get(addr);
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(!answer.contains("Retry-After"), "{answer}");
    assert!(
        answer
            .ends_with("\r\n\r\n503 Service Unavailable: too many connections from your address\n"),
        "{answer}"
    );
    let typed = exchange(addr, b"bob\n");
    assert_eq!(
        as_text(&typed),
        "[!] too many connections from your address\r\n"
    );
}

#[test]
fn past_sixteen_waiting_refusals_one_more_is_told_in_text_at_once() {
    // A long greeting delay: silent refused connections wait for it.
    let mut server = TestServer::start(&["--max-clients", "1", "--greeting-delay", "5000"]);
    let addr = server.addr();
    let mut alice = server.join("alice");
    let mut waiting: Vec<Client> = Vec::new();
    for _ in 0..16 {
        let client = Client::connect(addr);
        let peer = client.local_addr();
        server.expect_stderr(format!("refused {peer}: {FULL}").as_str(), TIMEOUT);
        waiting.push(client);
    }
    // The seventeenth is not waited for: the text line at once, long before the greeting delay.
    let started = Instant::now();
    let mut seventeenth = Client::connect(addr);
    assert_eq!(seventeenth.expect_closed(), vec![format!("[!] {FULL}")]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}: it waited",
        started.elapsed()
    );
    let peer = seventeenth.local_addr();
    server.expect_stderr(
        format!("refused {peer}: {FULL} (told in text at once: 16 refusals wait already)").as_str(),
        TIMEOUT,
    );
    // Those waiting are still told, each in its mode, as soon as it speaks.
    for (i, client) in waiting.iter_mut().enumerate() {
        if i % 2 == 0 {
            client.send_raw(b"NICK x\r\nUSER x 0 * :x\r\n");
            assert_eq!(client.expect_closed(), vec![format!("ERROR :{FULL}")]);
        } else {
            client.send_line("someone");
            assert_eq!(client.expect_closed(), vec![format!("[!] {FULL}")]);
        }
    }
    // And the pool is free again: a browser now gets its 503.
    assert!(get(addr).starts_with("HTTP/1.1 503 "));
    alice.send_line("/who");
    alice.expect_line("alice");
}

#[test]
fn a_refused_connection_waiting_when_the_server_stops_is_still_told() {
    let mut server = TestServer::start(&["--max-clients", "1", "--greeting-delay", "5000"]);
    let _alice = server.join("alice");
    let mut waiting = Client::connect(server.addr());
    let peer = waiting.local_addr();
    server.expect_stderr(format!("refused {peer}: {FULL}").as_str(), TIMEOUT);
    let started = Instant::now();
    server.console("EXIT");
    assert_eq!(waiting.expect_closed(), vec![format!("[!] {FULL}")]);
    assert!(started.elapsed() < Duration::from_secs(4), "it waited");
    server.wait_exit(TIMEOUT);
}
