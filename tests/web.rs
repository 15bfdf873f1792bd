//! The web mode end to end: the real `chatd` serving its page over HTTP and chatting over
//! WebSocket (tungstenite's client over a real TCP socket), with nc-style text users and framed
//! users in the same rooms. Every wait has a deadline; only loopback is used.

mod common;
mod framed_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd::proto::framed::{ClientFrame, ServerFrame};
use chatd::proto::msg::RoomLine;
use common::web::meaning;
use framed_common::{is_chat_line, FramedUser, Server, TextUser, WAIT};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// Sends `request` as it is and reads the answer until the server closes the connection.
fn http(server: &Server, request: &str) -> String {
    let mut socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .write_all(request.as_bytes())
        .expect("send the request");
    socket.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut answer = Vec::new();
    socket
        .read_to_end(&mut answer)
        .expect("the answer, then the close");
    String::from_utf8(answer).expect("a text answer")
}

fn get(server: &Server, path: &str) -> String {
    let host = server.addr;
    http(
        server,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    )
}

/// The answer's head (with the CRLF of its last line) and its body.
fn split(answer: &str) -> (String, &str) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    (format!("{head}\r\n"), body)
}

/// A page user: a WebSocket client speaking the JSON messages, over plain TCP or TLS.
struct WebUser<S: Read + Write = TcpStream> {
    socket: WebSocket<S>,
    /// Every message taken so far, for failure messages.
    seen: Vec<Value>,
    /// The text of the last message taken, as it came.
    last_raw: String,
}

/// A TCP connection to `addr` whose reads time out quickly, so waits can have deadlines.
fn tcp(addr: SocketAddr) -> TcpStream {
    assert!(addr.ip().is_loopback());
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    stream
}

impl WebUser {
    /// Opens the WebSocket as the page at `origin` would (no Origin header when `None`).
    fn try_connect(server: &Server, origin: Option<&str>) -> Result<WebUser, tungstenite::Error> {
        let url = format!("ws://{}/ws", server.addr);
        WebUser::over(tcp(server.addr), &url, origin)
    }

    fn connect(server: &Server) -> WebUser {
        let origin = format!("http://{}", server.addr);
        WebUser::try_connect(server, Some(&origin)).expect("the upgrade")
    }

    /// Connects, says hello as `name`, and waits for the welcome.
    fn join(server: &Server, name: &str) -> WebUser {
        let mut user = WebUser::connect(server);
        user.hello(name);
        user
    }
}

impl<S: Read + Write> WebUser<S> {
    /// Opens the WebSocket at `url` over `stream`, from a page at `origin`.
    fn over(stream: S, url: &str, origin: Option<&str>) -> Result<WebUser<S>, tungstenite::Error> {
        let mut request = url.into_client_request().expect("a request");
        if let Some(origin) = origin {
            let origin = origin.parse().expect("an origin header value");
            request.headers_mut().insert("Origin", origin);
        }
        let (socket, response) = tungstenite::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("a blocking handshake"),
        })?;
        assert_eq!(response.status(), 101);
        Ok(WebUser {
            socket,
            seen: Vec::new(),
            last_raw: String::new(),
        })
    }

    /// Says hello as `name` and waits for the welcome.
    fn hello(&mut self, name: &str) -> Value {
        self.send(&json!({"type":"hello","v":3,"name":name}));
        let welcome = self.expect("the welcome", |m| m["type"] == "welcome");
        assert_eq!(welcome["name"], name);
        welcome
    }

    fn send(&mut self, message: &Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send a message");
    }

    /// The next message or close from the server, or `None` if nothing came by `deadline`.
    fn next(&mut self, deadline: Instant) -> Option<Result<Message, tungstenite::Error>> {
        loop {
            match self.socket.read() {
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                other => return Some(other),
            }
        }
    }

    /// The next JSON message that `matches`, skipping others; panics after [`WAIT`].
    fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next(deadline) {
                Some(Ok(Message::Text(text))) => {
                    let value = meaning(serde_json::from_str(&text).expect("JSON from the server"));
                    self.last_raw = text.as_str().to_owned();
                    self.seen.push(value.clone());
                    if matches(&value) {
                        return value;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("web user: no {what} ({other:?}); saw {:#?}", self.seen),
            }
        }
    }

    /// Sends a ping and returns every message the server sent before its pong.
    fn until_pong(&mut self) -> Vec<Value> {
        let from = self.seen.len();
        self.send(&json!({"type":"ping","nonce":99}));
        self.expect("the pong", |m| m["type"] == "pong" && m["nonce"] == 99);
        let mut got = self.seen.split_off(from);
        got.pop();
        got
    }

    /// Reads until the server's close frame; returns it and the messages before it.
    fn expect_close(&mut self) -> (Option<(CloseCode, String)>, Vec<Value>) {
        let deadline = Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            match self.next(deadline) {
                Some(Ok(Message::Text(text))) => {
                    before.push(meaning(serde_json::from_str(&text).expect("JSON")));
                }
                Some(Ok(Message::Close(frame))) => {
                    let frame = frame.map(|f| (f.code, f.reason.as_str().to_owned()));
                    return (frame, before);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("web user: no close frame ({e}); saw {before:#?}"),
                None => panic!("web user: not closed within {WAIT:?}; saw {before:#?}"),
            }
        }
    }
}

/// Whether `message` is `from` saying `text` in the default room.
fn said(message: &Value, from: &str, text: &str) -> bool {
    matches!(message["type"].as_str(), Some("chat" | "room_chat"))
        && message["from"] == from
        && message["text"] == text
}

#[test]
fn the_page_is_served_with_its_security_headers_and_nothing_else_is() {
    let server = Server::start(&[]);
    let answer = get(&server, "/");
    let (head, body) = split(&answer);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for header in [
        "Content-Type: text/html; charset=utf-8\r\n",
        "Connection: close\r\n",
        "X-Content-Type-Options: nosniff\r\n",
        "Referrer-Policy: no-referrer\r\n",
        &format!("Content-Length: {}\r\n", body.len()),
    ] {
        assert!(head.contains(header), "no {header:?} in {head}");
    }
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Security-Policy: "))
        .expect("a CSP");
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(rule), "{csp}");
    }
    assert!(!head.to_ascii_lowercase().contains("set-cookie"));
    assert!(body.contains("<label for=\"name\">Name</label>"), "{body}");
    assert!(body.contains("<label for=\"message\">Message</label>"));
    let script = get(&server, "/app.js");
    assert!(script.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(script.contains("text/javascript"));
    assert!(
        script.contains(r#"location.protocol === "https:" ? "wss:" : "ws:""#),
        "the page uses wss:// over TLS by itself"
    );
    assert!(script.contains("textContent"), "chat text goes in as text");
    assert!(!script.contains("innerHTML"), "never as HTML");
    // The page names its own icon, so browsers do not ask for /favicon.ico; if one does anyway,
    // it gets the same icon rather than a 404.
    assert!(body.contains(r#"<link rel="icon" href="/favicon.svg" type="image/svg+xml">"#));
    for icon in ["/favicon.svg", "/favicon.ico"] {
        let answer = get(&server, icon);
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{icon}: {head}");
        assert!(head.contains("Content-Type: image/svg+xml\r\n"), "{head}");
        assert!(body.starts_with("<svg "), "{body}");
    }

    let missing = get(&server, "/admin");
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    assert!(missing.contains("Connection: close\r\n"));
    let host = server.addr;
    let post = http(
        &server,
        &format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"),
    );
    assert!(
        post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{post}"
    );
    assert!(post.contains("Allow: GET, HEAD\r\n"));
    // Other clients are still served.
    let mut text = TextUser::join(&server, "nc_user");
    text.send("/whoami");
    text.expect_containing("nc_user");
}

#[test]
fn a_web_user_chats_both_ways_with_a_text_user_and_a_framed_user() {
    let server = Server::start(&[]);
    let mut text = TextUser::join(&server, "tess");
    let mut framed = FramedUser::join(&server, "fred");
    let mut web = WebUser::connect(&server);
    let greeting = web.expect("the greeting", |m| m["type"] == "greeting");
    assert_eq!(greeting["v"], 3);
    web.send(&json!({"type":"hello","v":3,"name":"wendy"}));
    let welcome = web.expect("the welcome", |m| m["type"] == "welcome");
    assert_eq!(welcome["others"], json!(["fred", "tess"]));
    text.expect_containing("wendy");

    web.send(&json!({"type":"say","text":"hello from the browser <b>"}));
    text.expect_line("wendy's line", |l| {
        is_chat_line(l, "wendy > hello from the browser <b>")
    });
    framed.expect("wendy's line", |f| match f {
        ServerFrame::Chat { from, text, .. } => {
            from == "wendy" && text == "hello from the browser <b>"
        }
        ServerFrame::Room {
            line: RoomLine::Chat { from, text, .. },
            ..
        } => from == "wendy" && text == "hello from the browser <b>",
        _ => false,
    });

    text.send("hi wendy, from nc");
    let line = web.expect("tess's line", |m| said(m, "tess", "hi wendy, from nc"));
    // A live line comes as PROTOCOL.md's array: type, id, at, from, text.
    let at = &line["at"];
    let id = &line["id"];
    assert_eq!(
        web.last_raw,
        format!(r#"["chat",{id},{at},"tess","hi wendy, from nc"]"#)
    );
    assert!(
        line["at"].as_i64().is_some_and(|at| at > 1_700_000_000) && line.get("kind").is_none(),
        "{line}"
    );
    framed.send(&ClientFrame::say(1, "and from the chat client"));
    web.expect("fred's line", |m| {
        said(m, "fred", "and from the chat client")
    });

    // A direct message each way, and a slash command typed as in text mode.
    framed.send(&ClientFrame::dm(2, "wendy", "psst"));
    let dm = web.expect("fred's DM", |m| {
        m["type"] == "chat" && m["kind"] == "direct"
    });
    assert_eq!((&dm["from"], &dm["text"]), (&json!("fred"), &json!("psst")));
    web.send(&json!({"type":"line","text":"/dm tess secret"}));
    text.expect_line("the DM", |l| is_chat_line(l, "[dm] wendy > secret"));
    web.send(&json!({"type":"line","text":"/help"}));
    let help = web.expect("the help", |m| m["type"] == "reply" && m["kind"] == "help");
    assert!(
        help["lines"].as_array().is_some_and(|l| l.len() > 5),
        "{help}"
    );

    // Rooms: the page joins #dev, and a line said there comes tagged with the room.
    web.send(&json!({"type":"command","name":"join","args":"#dev"}));
    let joined = web.expect("the join", |m| m["type"] == "current_room");
    assert_eq!(
        (&joined["kind"], &joined["current"]),
        (&json!("joined"), &json!("#dev"))
    );
    text.send("/join #dev");
    web.expect("tess entering #dev", |m| {
        m["type"] == "room_event" && m["kind"] == "entered" && m["names"] == json!(["tess"])
    });
    text.send("in the room");
    let in_dev = web.expect("tess's line in #dev", |m| {
        m["type"] == "room_chat" && m["text"] == "in the room"
    });
    assert_eq!(in_dev["room"], json!({"name":"#dev","default":false}));
    assert!(
        web.last_raw.starts_with(r##"["room_chat","#dev",false,""##),
        "{}",
        web.last_raw
    );
    assert_eq!(
        (in_dev.get("kind"), &in_dev["from"]),
        (None, &json!("tess"))
    );
    web.send(&json!({"type":"line","text":"/room #lobby"}));
    web.expect("back in the lobby", |m| {
        m["type"] == "current_room" && m["kind"] == "switched"
    });

    // A message the vocabulary does not have is refused, and the connection goes on.
    web.send(&json!({"type":"shout","text":"x"}));
    let error = web.expect("the refusal", |m| m["type"] == "error");
    assert_eq!(error["code"], 307);
    web.send(&json!({"type":"say","text":"still here"}));
    text.expect_line("the next line", |l| is_chat_line(l, "wendy > still here"));

    // Leaving: the others are told, and the server closes the WebSocket properly.
    web.send(&json!({"type":"bye","reason":"done"}));
    let (close, _) = web.expect_close();
    assert_eq!(
        close,
        Some((CloseCode::Normal, r#"quit: "done""#.to_owned()))
    );
    text.expect_containing("wendy");
}

#[test]
fn an_answer_to_a_request_with_a_body_is_not_cut_by_a_reset() {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let server = Server::start(&[]);
    let page = get(&server, "/app.js");
    for request in ["GET /app.js", "POST /", "GET /nowhere"] {
        // A client slow to read (a small receive buffer): most of the answer is still in the
        // server's socket when it is done with the request, whose body it never reads; closing
        // over that body would reset the connection and drop the rest of the answer.
        let socket = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
        sockopt::set_socket_recv_buffer_size(&socket, 2048).unwrap();
        rustix::net::connect(&socket, &server.addr).expect("connect");
        let mut stream = TcpStream::from(socket);
        let body = "x".repeat(30_000);
        let head = format!(
            "{request} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            server.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut answer = Vec::new();
        let end = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            end.is_ok(),
            "{request}: {end:?} after {} bytes",
            answer.len()
        );
        match request {
            "GET /app.js" => assert_eq!(answer, page),
            "POST /" => assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}"),
            _ => assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}"),
        }
    }
}

#[test]
fn an_answered_request_holds_no_per_address_slot_while_it_drains() {
    let server = Server::start(&["--max-per-ip", "1", "--limit-loopback"]);
    // The page's request is answered; its socket stays open (a browser closes it when it likes),
    // and the server, draining it, no longer counts it.
    let mut first = tcp(server.addr);
    let host = server.addr;
    first
        .write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    first.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    first
        .read_to_end(&mut answer)
        .expect("the page, then the server's end");
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
    // The page's WebSocket is the one connection from this address that counts.
    let mut web = WebUser::join(&server, "wendy");
    web.send(&json!({"type":"say","text":"in"}));
    let mut second = tcp(server.addr);
    second.set_read_timeout(Some(WAIT)).unwrap();
    let mut refused = String::new();
    second.read_to_string(&mut refused).expect("the refusal");
    assert!(refused.contains("too many connections"), "{refused}");
    drop(first);
}

#[test]
fn a_page_that_never_reads_is_cut_at_the_output_cap_while_others_chat() {
    let server = Server::start(&["--max-outbuf", "65536", "--no-flood-control"]);
    let mut tess = TextUser::join(&server, "tess");
    let mut walt = WebUser::join(&server, "walt");
    // Slow joins and reads nothing more; tess's lines pile up for it past the cap.
    let _slow = WebUser::join(&server, "slow");
    tess.expect_containing("slow entered");
    let filler = "f".repeat(4000);
    let exited = std::cell::Cell::new(false);
    let mut sent = 0;
    while !exited.get() {
        assert!(
            sent < 8 * 1024,
            "slow was never cut after {sent} lines of 4 KB"
        );
        for _ in 0..8 {
            tess.send(&format!("{sent:05} {filler}"));
            sent += 1;
        }
        // Walt reads every line as it comes, so only slow falls behind.
        let last = format!("{:05} ", sent - 1);
        walt.expect("tess's last line", |m| {
            m["text"].as_str().is_some_and(|t| t.starts_with(&last))
        });
        tess.send("/whoami");
        tess.expect_line("the answer", |l| {
            if l.contains("slow exited") {
                exited.set(true);
            }
            l.contains("You are tess")
        });
    }
    walt.send(&json!({"type":"say","text":"still here"}));
    tess.expect_line("walt's line", |l| is_chat_line(l, "walt > still here"));
}

#[test]
fn a_page_of_another_origin_is_refused_with_403() {
    let server = Server::start(&["--web-origin", "https://portal.example.org"]);
    match WebUser::try_connect(&server, Some("http://evil.example")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("not a 403: {other}"),
        Ok(_) => panic!("another site's page opened the chat"),
    }
    let port_differs = format!("http://127.0.0.1:{}", server.addr.port() + 1);
    assert!(WebUser::try_connect(&server, Some(&port_differs)).is_err());
    // A listed origin may, and so may a client that is no browser (no Origin at all).
    WebUser::try_connect(&server, Some("https://portal.example.org")).expect("a listed origin");
    let mut bare = WebUser::try_connect(&server, None).expect("no Origin");
    bare.expect("the greeting", |m| m["type"] == "greeting");
}

#[test]
fn with_web_host_a_request_for_another_host_name_is_refused() {
    let server = Server::start(&["--web-host", "127.0.0.1"]);
    assert!(get(&server, "/").starts_with("HTTP/1.1 200 OK\r\n"));
    let port = server.addr.port();
    let rebound = http(
        &server,
        &format!("GET / HTTP/1.1\r\nHost: attacker.example:{port}\r\n\r\n"),
    );
    assert!(
        rebound.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{rebound}"
    );
}

#[test]
fn an_oversize_message_closes_the_websocket_with_1009_and_others_go_on() {
    let server = Server::start(&[]);
    let mut text = TextUser::join(&server, "tess");
    let mut web = WebUser::join(&server, "wendy");
    // 8 KiB is the line limit: a message of 9000 bytes (JSON included) is too long.
    let long = "x".repeat(9000);
    web.send(&json!({"type":"say","text":long}));
    let (close, before) = web.expect_close();
    let (code, reason) = close.expect("a close frame with a code");
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("too long"), "{reason}");
    assert!(
        before
            .iter()
            .any(|m| m["type"] == "error" && m["text"].as_str().is_some_and(|t| t.contains("8192"))),
        "{before:#?}"
    );
    text.expect_containing("wendy");
    text.send("/whoami");
    text.expect_containing("tess");
    let mut other = WebUser::join(&server, "walt");
    other.send(&json!({"type":"say","text":"fine here"}));
    text.expect_line("walt's line", |l| is_chat_line(l, "walt > fine here"));
}

#[test]
fn a_page_of_an_older_version_is_told_to_reload_and_closed_and_others_go_on() {
    let server = Server::start(&[]);
    let mut text = TextUser::join(&server, "tess");
    // A tab opened before the server was upgraded to version 3 of the vocabulary.
    let mut old = WebUser::connect(&server);
    old.send(&json!({"type":"hello","v":2,"name":"wendy"}));
    let (close, before) = old.expect_close();
    let error = before
        .iter()
        .find(|m| m["type"] == "error")
        .unwrap_or_else(|| panic!("no error before the close: {before:#?}"));
    assert_eq!(error["code"], 304);
    assert_eq!(
        error["text"],
        "unsupported version 2: this server speaks version 3 over WebSocket; reload the page"
    );
    assert!(close.is_some(), "a close frame");
    text.send("/users");
    let users = text.expect_containing("Online");
    assert!(!users.contains("wendy"), "{users}");
    let mut new = WebUser::join(&server, "wendy");
    new.send(&json!({"type":"say","text":"reloaded"}));
    text.expect_line("the reloaded page's line", |l| {
        is_chat_line(l, "wendy > reloaded")
    });
}

#[test]
fn a_silent_websocket_is_pinged_and_closed_and_one_that_answers_stays() {
    let server = Server::start(&["--ping-interval", "1", "--ping-misses", "1"]);
    // A page that reads (tungstenite answers pings by itself, as a browser does) stays.
    let mut alive = WebUser::join(&server, "alive");
    // A page that has joined and then neither reads nor answers is closed.
    let mut silent = WebUser::join(&server, "silent");
    let went_silent = Instant::now();

    // Both are read in turn: the page through tungstenite (which answers its pings), the silent
    // one's socket past it, until the server closes that one.
    let deadline = Instant::now() + WAIT;
    let mut pings = 0;
    let raw = silent.socket.get_mut();
    let mut all = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        assert!(
            Instant::now() < deadline,
            "the silent page was not closed; it got {all:?}"
        );
        match raw.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("the silent page was reset, not closed: {e}"),
        }
        match alive.next(Instant::now() + Duration::from_millis(50)) {
            Some(Ok(Message::Ping(nonce))) if nonce.len() == 8 => pings += 1,
            Some(Ok(_)) | None => {}
            Some(Err(e)) => panic!("the page that answers was closed: {e}"),
        }
    }
    assert!(pings >= 1, "the page that answers was pinged too");
    assert!(
        went_silent.elapsed() >= Duration::from_secs(1),
        "closed before a ping interval"
    );
    assert!(
        all.windows(2).any(|w| w == [0x89, 0x08]),
        "pinged (a ping frame with an 8-byte nonce) before it was closed: {all:?}"
    );
    // Past two ping intervals, the page that answered is still there.
    alive.send(&json!({"type":"line","text":"/whoami"}));
    alive.expect("the answer", |m| m["kind"] == "whoami");
}

#[test]
fn a_request_head_may_trickle_in_until_the_name_timeout_then_it_gets_408() {
    let server = Server::start(&["--name-timeout", "2"]);
    let mut page = tcp(server.addr);
    page.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    // Past the 200 ms in which a silent connection is taken for text: no answer while the head
    // is not whole.
    page.set_read_timeout(Some(Duration::from_millis(600)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    match page.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("answered before the head was whole: {other:?}"),
    }
    page.write_all(b"\r\n").expect("send the end of the head");
    assert!(read_all(&mut page).starts_with("HTTP/1.1 200 OK\r\n"));

    let sent = Instant::now();
    let mut slow = tcp(server.addr);
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    let answer = read_all(&mut slow);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Connection: close\r\n"));
    assert!(
        sent.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        sent.elapsed()
    );
}

/// A TLS client trusting only `der`, to `localhost` at `addr`.
fn tls(addr: SocketAddr, der: &[u8]) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
        .expect("the test certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let session = rustls::ClientConnection::new(Arc::new(config), name).expect("a session");
    rustls::StreamOwned::new(session, tcp(addr))
}

/// Reads from `stream` until the server closes it, or `WAIT` passes.
fn read_all(stream: &mut impl Read) -> String {
    let deadline = Instant::now() + WAIT;
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(all).expect("text")
}

#[test]
fn over_tls_the_page_is_served_and_its_own_https_origin_opens_a_wss_socket() {
    let dir = common::DataDir::new();
    let cert = common::tls::write_test_cert(dir.path(), "web", &["localhost"]);
    let (cert_path, key_path) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    let server = Server::start(&["--tls-cert", cert_path, "--tls-key", key_path]);
    let port = server.addr.port();

    let mut page = tls(server.addr, &cert.der);
    write!(page, "GET / HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n").expect("send");
    let answer = read_all(&mut page);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("<!doctype html>"));

    let mut text = TextUser::join(&server, "tess");
    let url = format!("wss://localhost:{port}/ws");
    let own = format!("https://localhost:{port}");
    let mut web = WebUser::over(tls(server.addr, &cert.der), &url, Some(&own)).expect("wss");
    web.hello("sam");
    web.send(&json!({"type":"say","text":"over wss"}));
    text.expect_line("sam's line", |l| is_chat_line(l, "sam > over wss"));
    text.send("back over plain TCP");
    web.expect("tess's line", |m| said(m, "tess", "back over plain TCP"));

    // The page's origin over TLS is https://: an http:// one is another site.
    let plain_origin = format!("http://localhost:{port}");
    match WebUser::over(tls(server.addr, &cert.der), &url, Some(&plain_origin)) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("not refused: {:?}", other.err()),
    }
}

#[test]
fn a_plain_request_to_a_tls_only_server_is_sent_to_https() {
    let server = Server::start(&["--tls-self-signed", "--tls-required"]);
    let answer = get(&server, "/app.js");
    let (head, _) = split(&answer);
    assert!(
        head.starts_with("HTTP/1.1 307 Temporary Redirect\r\n"),
        "{head}"
    );
    let location = format!("Location: https://{}/app.js\r\n", server.addr);
    assert!(head.contains(&location), "{head}");
}

#[test]
fn when_the_server_stops_a_page_is_told_and_gets_close_1001() {
    let mut server = common::TestServer::start(&[]);
    let addr = server.addr();
    let (url, origin) = (format!("ws://{addr}/ws"), format!("http://{addr}"));
    let mut web = WebUser::over(tcp(addr), &url, Some(&origin)).expect("the upgrade");
    web.hello("wendy");
    server.console("EXIT");
    let (close, before) = web.expect_close();
    assert_eq!(close.map(|(code, _)| code), Some(CloseCode::Away));
    assert!(
        before
            .iter()
            .any(|m| m["type"] == "event" && m["kind"] == "shutdown"),
        "{before:#?}"
    );
    assert!(server.wait_exit(WAIT).success());
}

#[test]
fn pings_from_the_page_are_answered_under_flood_control_like_messages() {
    let server = Server::start(&["--flood-burst", "1", "--flood-rate", "20"]);
    let mut web = WebUser::join(&server, "pinger");
    let sent = Instant::now();
    for n in 0u8..21 {
        web.socket
            .send(Message::Ping(vec![n].into()))
            .expect("a ping");
    }
    let deadline = Instant::now() + WAIT;
    let mut pongs = Vec::new();
    while pongs.len() < 21 {
        match web.next(deadline) {
            Some(Ok(Message::Pong(payload))) => pongs.extend_from_slice(&payload),
            Some(Ok(_)) => {}
            other => panic!("not every pong came: {other:?}; got {pongs:?}"),
        }
    }
    assert_eq!(
        pongs,
        (0u8..21).collect::<Vec<u8>>(),
        "each ping answered, in order"
    );
    // One at once, then 20 a second: about a second for the other 20.
    assert!(
        sent.elapsed() >= Duration::from_millis(700),
        "{:?}",
        sent.elapsed()
    );
}

/// The `(kind, text)` of each message of `type` in `got`, in order.
fn lines_of<'a>(got: &'a [Value], kind: &str) -> Vec<(&'a str, &'a str)> {
    got.iter()
        .filter(|m| m["type"] == kind)
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or(""),
                m["text"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

/// The line number of each id in `got` (the last part of `EPOCH-ROOM-SEQ`).
fn seqs(got: &[Value], kind: &str) -> Vec<u64> {
    got.iter()
        .filter(|m| m["type"] == kind)
        .map(|m| {
            let id = m["id"].as_str().expect("an id on every room line");
            id.rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("EPOCH-ROOM-SEQ")
        })
        .collect()
}

#[test]
fn a_page_back_with_its_last_ids_gets_exactly_the_lines_it_missed_in_order() {
    // A short --history: what comes back is every line missed, not the usual last two.
    let mut server = Server::start(&["--history", "2"]);
    let mut tess = TextUser::join(&server, "tess");
    tess.send("/join #dev");
    let mut web = WebUser::join(&server, "wendy");
    web.send(&json!({"type":"command","name":"join","args":"#dev"}));
    web.expect("the join", |m| m["type"] == "current_room");
    tess.send("dev 0");
    let dev = web.expect("a line in #dev", |m| said(m, "tess", "dev 0"));
    tess.send("/room #lobby");
    tess.send("lobby 0");
    let lobby = web.expect("a line in the lobby", |m| said(m, "tess", "lobby 0"));
    assert_eq!(lobby["type"], "chat");
    // The lost connection: the page's socket is gone, and the others go on talking.
    drop(web);
    tess.expect_containing("wendy exited");
    for n in 1..=4 {
        tess.send(&format!("lobby {n}"));
    }
    tess.send("/room #dev");
    for n in 1..=3 {
        tess.send(&format!("dev {n}"));
    }
    server.console.expect_containing("tess > dev 3");

    let mut web = WebUser::connect(&server);
    web.send(&json!({"type":"resume","after":{"": lobby["id"], "#DEV": dev["id"]}}));
    web.hello("wendy");
    web.send(&json!({"type":"command","name":"join","args":"#dev"}));
    let got = web.until_pong();
    let want: Vec<String> = (1..=4).map(|n| format!("lobby {n}")).collect();
    assert_eq!(
        lines_of(&got, "chat"),
        want.iter()
            .map(|t| ("history", t.as_str()))
            .collect::<Vec<_>>(),
        "{got:#?}"
    );
    assert_eq!(
        lines_of(&got, "room_chat"),
        [
            ("history", "dev 1"),
            ("history", "dev 2"),
            ("history", "dev 3")
        ],
        "{got:#?}"
    );
    let lobby_seq = seqs(std::slice::from_ref(&lobby), "chat")[0];
    let dev_seq = seqs(std::slice::from_ref(&dev), "room_chat")[0];
    assert_eq!(
        seqs(&got, "chat"),
        (lobby_seq + 1..=lobby_seq + 4).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&got, "room_chat"),
        (dev_seq + 1..=dev_seq + 3).collect::<Vec<_>>()
    );
    assert!(
        got.iter().all(|m| m["type"] != "gap"),
        "nothing was lost: {got:#?}"
    );
}

#[test]
fn past_the_backlog_or_after_a_restart_the_page_is_told_what_could_not_be_recovered() {
    let mut server = Server::start(&["--no-flood-control"]);
    let mut tess = TextUser::join(&server, "tess");
    let mut web = WebUser::join(&server, "wendy");
    tess.send("line 0");
    let first = web.expect("the first line", |m| said(m, "tess", "line 0"));
    drop(web);
    tess.expect_containing("wendy exited");
    // 205 more: a room keeps 200, so lines 1 to 5 are lost.
    for n in 1..=205 {
        tess.send(&format!("line {n}"));
    }
    server.console.expect_containing("tess > line 205");
    let kept: Vec<String> = (6..=205).map(|n| format!("line {n}")).collect();

    let mut web = WebUser::connect(&server);
    web.send(&json!({"type":"resume","after":{"#lobby": first["id"]}}));
    web.hello("wendy");
    let got = web.until_pong();
    let gap = got
        .iter()
        .position(|m| m["type"] == "gap")
        .expect("a gap notice");
    assert_eq!(got[gap]["missing"], 5);
    assert!(
        got[gap]["text"].as_str().is_some_and(
            |t| t.starts_with("Some messages in #lobby could not be recovered (5 missing)")
        ),
        "{}",
        got[gap]
    );
    let texts: Vec<&str> = lines_of(&got[gap..], "chat")
        .iter()
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(texts, kept, "the gap first, then every line kept");
    assert!(lines_of(&got[..gap], "chat").is_empty());
    drop(web);
    tess.expect_containing("wendy exited");

    // An id of an earlier run of the server, as a page open across a restart has.
    let mut web = WebUser::connect(&server);
    web.send(&json!({"type":"resume","after":{"#lobby": "1-0-3"}}));
    web.hello("wendy");
    let got = web.until_pong();
    let gap = got
        .iter()
        .find(|m| m["type"] == "gap")
        .expect("a gap notice");
    assert_eq!(gap["missing"], Value::Null);
    assert!(
        gap["text"]
            .as_str()
            .is_some_and(|t| t.contains("the server restarted")),
        "{gap}"
    );
    let texts: Vec<&str> = lines_of(&got, "chat").iter().map(|(_, t)| *t).collect();
    assert_eq!(texts, kept);
}
