//! `--metrics-listen`: the real server scraped over loopback while text and framed users chat,
//! the scrape checked by value and by `promtool check metrics` (Debian's `prometheus` package);
//! the port serves its two paths and nothing else, and a stalled scraper never holds up the chat.

mod common;
mod framed_common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chatd::proto::framed::{ClientFrame, ServerFrame};
use common::{add_user, chat_line, Client, DataDir, TestServer, PROMPT, TIMEOUT};
use framed_common::FramedUser;

/// Most scrapers the server serves at once (`server::scrape::MAX_SCRAPERS`).
const MAX_SCRAPERS: usize = 16;

/// Starts chatd with `--metrics-listen 127.0.0.1:0` and `args`; returns it and where the metrics
/// are served, read from its `chatd metrics on http://ADDR/metrics` line.
fn start(data: &DataDir, args: &[&str]) -> (TestServer, SocketAddr) {
    let mut all = vec!["--metrics-listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut server = TestServer::start_on(data, &all);
    let line = server.expect_stdout("chatd metrics on http://", TIMEOUT);
    let addr = line
        .trim()
        .strip_prefix("chatd metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (server, addr)
}

/// An HTTP answer read to the end of the connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` to `addr` and reads until the server closes (within [`TIMEOUT`]): every answer
/// on the metrics port ends its connection.
#[track_caller]
fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut socket = TcpStream::connect(addr).expect("connect to the metrics port");
    socket.write_all(request).expect("send the request");
    let bytes = read_to_end(&mut socket);
    let text = String::from_utf8_lossy(&bytes);
    let (head, _) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no whole head in {text:?}"));
    let body = bytes[head.len() + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let answer = Answer {
        status,
        head: head.to_owned(),
        body,
    };
    assert_eq!(answer.header("Connection"), Some("close"), "{answer:?}");
    answer
}

/// Everything the server sends on `socket` until it closes; fails past [`TIMEOUT`].
#[track_caller]
fn read_to_end(socket: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut bytes = Vec::new();
    let mut chunk = [0; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not closed within {TIMEOUT:?}: {bytes:?}");
        socket.set_read_timeout(Some(left)).expect("read timeout");
        match socket.read(&mut chunk) {
            Ok(0) => return bytes,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return bytes,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// `GET /metrics`, checked by promtool, as a map from each sample's name and labels to its value.
#[track_caller]
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        answer.header("Content-Length"),
        Some(answer.body.len().to_string().as_str())
    );
    let text = answer.text();
    promtool_accepts(&text);
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (sample, value) = line.rsplit_once(' ').expect("NAME VALUE");
            let value = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
            (sample.to_owned(), value)
        })
        .collect()
}

/// Pipes `text` through `promtool check metrics`, which must find no problem.
#[track_caller]
fn promtool_accepts(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    let mut stdin = promtool.stdin.take().expect("piped stdin");
    stdin.write_all(text.as_bytes()).expect("feed promtool");
    drop(stdin);
    let output = promtool.wait_with_output().expect("promtool's verdict");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {} {} {}\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The value of `sample` (name and labels as exposed); fails if it is missing.
#[track_caller]
fn value(metrics: &HashMap<String, f64>, sample: &str) -> f64 {
    *metrics
        .get(sample)
        .unwrap_or_else(|| panic!("no {sample} in {metrics:#?}"))
}

#[test]
fn a_scrape_during_traffic_counts_what_happened() {
    let data = DataDir::new();
    add_user(&data, "owner", "the right one");
    // A burst of 3 then 20 a second: five lines at once pause the sender's reading.
    let (server, metrics) = start(&data, &["--flood-burst", "3", "--flood-rate", "20"]);
    let mut alice = server.join("alice");
    let mut bob = FramedUser::join_at(server.addr(), "bob");
    alice.expect_line("[*] bob entered.");
    let mut mallory = Client::connect(server.addr());
    mallory.expect_line(|l: &str| l == PROMPT);
    mallory.send_line("owner");
    mallory.expect_line(|l: &str| l == "Password:");
    mallory.send_line("a guess");
    assert_eq!(mallory.expect_line("[!]"), "[!] wrong password");

    alice.send_raw(b"one\ntwo\nthree\nfour\nfive\n");
    for text in ["one", "two", "three", "four", "five"] {
        bob.expect("alice's line", |f| {
            matches!(f, ServerFrame::Chat { from, text: t, .. } if from == "alice" && t == text)
        });
    }
    bob.send(&ClientFrame::say(1, "hi alice"));
    alice.expect_line(chat_line("bob", "hi alice"));

    let first = scrape(metrics);
    let v = |sample: &str| value(&first, sample);
    assert_eq!(
        v(r#"chatd_connections{mode="text",transport="plain"}"#),
        2.0
    );
    assert_eq!(
        v(r#"chatd_connections{mode="framed",transport="plain"}"#),
        1.0
    );
    for (mode, transport) in [("web", "plain"), ("opening", "plain"), ("text", "tls")] {
        let sample = format!(r#"chatd_connections{{mode="{mode}",transport="{transport}"}}"#);
        assert_eq!(v(&sample), 0.0, "{sample}");
    }
    assert_eq!(v("chatd_connections_accepted_total"), 3.0);
    assert_eq!(v("chatd_users_online"), 2.0, "mallory never joined");
    assert_eq!(v("chatd_rooms"), 1.0);
    assert_eq!(v("chatd_failed_logins_total"), 1.0);
    assert_eq!(v("chatd_password_checks_queued"), 0.0, "the check is done");
    assert!(
        v("chatd_flood_pauses_total") >= 1.0,
        "five lines past a burst of 3"
    );
    // alice: name, five lines; bob: hello, one line; mallory: name, password.
    assert_eq!(v("chatd_messages_received_total"), 10.0);
    assert!(
        v("chatd_deliveries_total") >= 6.0,
        "5 lines to bob, 1 to alice"
    );
    assert_eq!(v(r#"chatd_slow_consumers_total{limit="hard"}"#), 0.0);
    assert_eq!(v(r#"chatd_slow_consumers_total{limit="soft"}"#), 0.0);
    let turns = v("chatd_loop_turn_seconds_count");
    assert!(turns >= 1.0);
    assert_eq!(v(r#"chatd_loop_turn_seconds_bucket{le="+Inf"}"#), turns);
    assert!(v("chatd_loop_turn_seconds_sum") > 0.0);
    assert!(v("process_resident_memory_bytes") > 1e6);
    // Three clients, two listeners, the scraper at least.
    assert!(v("process_open_fds") >= 6.0);
    assert!(v("process_max_fds") >= v("process_open_fds"));

    // One line from bob to alice: exactly its frame in, alice's line out, one delivery.
    let frame = ClientFrame::say(2, "and one more");
    let mut frame_bytes = Vec::new();
    frame.encode(&mut frame_bytes);
    bob.send_raw(&frame_bytes);
    let line = alice.next_line_raw();
    assert!(line.ends_with(b"bob > and one more"), "{line:?}");
    let second = scrape(metrics);
    let delta = |sample: &str| value(&second, sample) - value(&first, sample);
    assert_eq!(delta("chatd_messages_received_total"), 1.0);
    assert_eq!(
        delta("chatd_deliveries_total"),
        1.0,
        "mallory has not joined"
    );
    assert_eq!(
        delta("chatd_received_bytes_total"),
        frame_bytes.len() as f64
    );
    assert_eq!(
        delta("chatd_sent_bytes_total"),
        (line.len() + 2) as f64,
        "the line and its CRLF; scrapes are not counted"
    );
    assert!(delta("chatd_loop_turn_seconds_count") >= 1.0);
}

#[test]
fn the_metrics_port_serves_its_two_paths_and_refuses_the_rest() {
    let data = DataDir::new();
    let (server, metrics) = start(&data, &[]);
    let health = exchange(metrics, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    // PROTOCOL.md's example, byte for byte.
    assert_eq!(
        health.head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\
         Cache-Control: no-store\r\nConnection: close"
    );
    let head = exchange(metrics, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "{head:?}");
    assert!(head.header("Content-Length").is_some_and(|n| n != "0"));
    for path in [
        "/",
        "/metrics/",
        "/metrics.txt",
        "/index.html",
        "/ws",
        "/Metrics",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let answer = exchange(metrics, request.as_bytes());
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
        assert!(answer.text().contains("GET /metrics and GET /healthz only"));
    }
    for method in ["POST", "PUT", "DELETE"] {
        let request = format!("{method} /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        let answer = exchange(metrics, request.as_bytes());
        assert_eq!(answer.status, 405, "{method}: {answer:?}");
        assert_eq!(answer.header("Allow"), Some("GET, HEAD"));
    }
    assert_eq!(exchange(metrics, b"hello there\r\n\r\n").status, 400);
    // A head that never ends is cut at 4 KiB, not read on.
    let mut long = b"GET /metrics HTTP/1.1\r\n".to_vec();
    long.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(exchange(metrics, &long).status, 431);
    // One request a connection: a second one on it gets nothing but the close.
    let both = b"GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n";
    let answer = exchange(metrics, both);
    assert_eq!((answer.status, answer.text().as_str()), (200, "ok\n"));
    // The chat's own port serves the page, never the metrics.
    let on_chat = exchange(server.addr(), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(on_chat.status, 404, "{on_chat:?}");
}

#[test]
fn stalled_scrapers_cost_the_chat_nothing_and_are_closed_in_time() {
    let data = DataDir::new();
    let (server, metrics) = start(&data, &[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_line("[*] bob entered.");
    // One sends half a request, one nothing, one a request it never reads the answer of.
    let started = Instant::now();
    let mut half = TcpStream::connect(metrics).expect("connect");
    half.write_all(b"GET /metr").expect("send");
    let silent = TcpStream::connect(metrics).expect("connect");
    let mut deaf = TcpStream::connect(metrics).expect("connect");
    deaf.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("send");
    for n in 0..20 {
        let sent = Instant::now();
        alice.send_line(&format!("line {n}"));
        bob.expect_line(chat_line("alice", &format!("line {n}")));
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "a line took {:?} beside the stalled scrapers",
            sent.elapsed()
        );
    }
    assert_eq!(value(&scrape(metrics), "chatd_users_online"), 2.0);
    // Up to 16 scrapers at once; the one after them is closed unanswered, and the chat goes on.
    let mut more: Vec<TcpStream> = (3..MAX_SCRAPERS)
        .map(|_| TcpStream::connect(metrics).expect("connect"))
        .collect();
    let mut refused = TcpStream::connect(metrics).expect("connect");
    // Closed at once, maybe before this reaches it.
    let _ = refused.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(read_to_end(&mut refused).is_empty(), "over the limit");
    bob.send_line("still here");
    alice.expect_line(chat_line("bob", "still here"));
    // Their time is up within 5 s of their accept: the half request is told why.
    let answer = String::from_utf8_lossy(&read_to_end(&mut half)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < TIMEOUT,
        "{waited:?}"
    );
    drop(silent);
    let answer = String::from_utf8_lossy(&read_to_end(&mut deaf)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200 "), "answered all the same");
    for socket in &mut more {
        read_to_end(socket);
    }
    assert_eq!(value(&scrape(metrics), "chatd_users_online"), 2.0);
}

#[test]
fn a_metrics_address_that_cannot_work_stops_the_start_naming_the_flag() {
    let data = DataDir::new();
    let run = |address: &str| {
        let args = ["--data-dir", data.arg(), "--listen", "127.0.0.1:0"];
        let mut args = args.to_vec();
        args.extend(["--no-console", "--metrics-listen", address]);
        common::run_chatd(&args, "", None, TIMEOUT)
    };
    let (code, out, err) = run("127.0.0.1");
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.contains("invalid value '127.0.0.1' for --metrics-listen: a port is needed"),
        "{err}"
    );
    assert!(
        !out.contains("listening"),
        "stopped before listening: {out}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let taken = taken.local_addr().expect("its address").to_string();
    let (code, _, err) = run(&taken);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("--metrics-listen {taken}: cannot listen on")),
        "{err}"
    );
}

#[test]
fn connections_are_counted_by_transport_and_those_still_opening_apart() {
    let data = DataDir::new();
    let (server, metrics) = start(&data, &["--tls-self-signed"]);
    let mut plain = server.join("pat");
    let mut tls = common::Piped::spawn(
        "openssl",
        &["s_client", "-quiet", "-connect", &server.addr().to_string()],
    );
    tls.expect_line(PROMPT);
    tls.send_line("tess");
    tls.expect_line("[*] Welcome, tess!");
    plain.expect_line("[*] tess entered.");
    // Half an HTTP request head: opening until it is whole (or the name timeout).
    let mut http = TcpStream::connect(server.addr()).expect("connect");
    http.write_all(b"GET / HTTP/1.1\r\n").expect("send");
    let deadline = Instant::now() + TIMEOUT;
    let opening = r#"chatd_connections{mode="opening",transport="plain"}"#;
    let counts = loop {
        let counts = scrape(metrics);
        // The request's first bytes may not have been read yet.
        if value(&counts, opening) == 1.0 || Instant::now() > deadline {
            break counts;
        }
    };
    assert_eq!(value(&counts, opening), 1.0);
    let v = |sample: &str| value(&counts, sample);
    assert_eq!(v(r#"chatd_connections{mode="text",transport="tls"}"#), 1.0);
    assert_eq!(
        v(r#"chatd_connections{mode="text",transport="plain"}"#),
        1.0
    );
    assert_eq!(
        v(r#"chatd_connections{mode="opening",transport="tls"}"#),
        0.0
    );
    assert_eq!(v("chatd_users_online"), 2.0);
    assert_eq!(v("chatd_connections_accepted_total"), 3.0);
    drop(http);
}

#[test]
fn a_metrics_address_off_loopback_is_served_with_a_warning() {
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &["--metrics-listen", "0.0.0.0:0"]);
    let line = server.expect_stdout("chatd metrics on http://0.0.0.0:", TIMEOUT);
    let warning = server.expect_stderr("--metrics-listen", TIMEOUT);
    assert!(
        warning.contains("is not a loopback address") && warning.contains("127.0.0.1"),
        "{warning}"
    );
    let port: u16 = line
        .trim()
        .trim_start_matches("chatd metrics on http://0.0.0.0:")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line:?}"));
    // Tests talk to loopback only: the wildcard address takes it too.
    let metrics = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(value(&scrape(metrics), "chatd_users_online"), 0.0);
}

#[test]
fn the_settings_file_key_metrics_listen_serves_the_metrics_and_a_bad_one_names_its_line() {
    let data = DataDir::new();
    let file = data.path().join("chatd.toml");
    std::fs::write(&file, "history = 5\nmetrics-listen = \"127.0.0.1:0\"\n").expect("write");
    let file = file.to_str().expect("UTF-8 path").to_owned();
    let mut server = TestServer::start_on(&data, &["--config", &file]);
    let line = server.expect_stdout("chatd metrics on http://127.0.0.1:", TIMEOUT);
    let metrics: SocketAddr = line
        .trim()
        .trim_start_matches("chatd metrics on http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap_or_else(|_| panic!("no address in {line:?}"));
    assert_eq!(value(&scrape(metrics), "chatd_rooms"), 1.0);
    drop(server);

    std::fs::write(&file, "\nmetrics-listen = \"localhost\"\n").expect("write");
    let (code, out, err) = common::run_chatd(
        &["--config", &file, "--data-dir", data.arg(), "--no-console"],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.contains(&format!(
            "{file}:2: metrics-listen: invalid value 'localhost': a port is needed"
        )),
        "{err}"
    );
}
