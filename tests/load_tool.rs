//! `chatd-load` against the real `chatd`: a tiny burst arrives whole (in one room or spread over
//! several, in plain text or over TLS), idle and new connections are measured over TLS, a
//! certificate other than the pinned one is refused, and the tool refuses to flood a machine
//! other than this one.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::TestServer;

fn chatd_load(args: &[&str]) -> Output {
    // The tool bounds its own run with --timeout, so waiting for it is bounded too.
    Command::new(env!("CARGO_BIN_EXE_chatd-load"))
        .args(args)
        .output()
        .expect("run chatd-load")
}

/// The number after `"key":` in a flat JSON object.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}'])?;
    rest[..end].parse().ok()
}

/// Runs a burst of `clients` clients x 50 lines against a fresh chatd in `mode`, with `extra`
/// flags; checks that every line reached exactly the `expected` receivers it was due to, and
/// returns the JSON figures.
fn tiny_burst_with(mode: &str, clients: usize, extra: &[&str], expected: f64) -> String {
    // Flood control would pace the burst to 5 lines a second per client.
    let server = TestServer::start_with_stdin_null(&["--history", "0", "--no-flood-control"]);
    tiny_burst_against(&server, mode, clients, extra, expected)
}

/// [`tiny_burst_with`] against `server`.
fn tiny_burst_against(
    server: &TestServer,
    mode: &str,
    clients: usize,
    extra: &[&str],
    expected: f64,
) -> String {
    let addr = server.addr().to_string();
    let pid = server.pid().to_string();
    let clients = clients.to_string();
    let mut args = vec![
        "burst",
        "--mode",
        mode,
        "--addr",
        &addr,
        "--clients",
        &clients,
        "--messages",
        "50",
        "--size",
        "64",
        "--server-pid",
        &pid,
        "--timeout",
        "20",
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let output = chatd_load(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chatd-load failed: {:?}\n{stderr}\n{stdout}",
        output.status
    );
    let figure = |key| json_number(&stdout, key).unwrap_or_else(|| panic!("no {key} in {stdout}"));
    assert_eq!(figure("sent"), clients.parse::<f64>().unwrap() * 50.0);
    assert_eq!(figure("delivered"), expected);
    assert_eq!(figure("expected"), expected);
    assert_eq!(figure("lost"), 0.0);
    assert_eq!(figure("duplicated"), 0.0);
    assert_eq!(figure("unexpected"), 0.0);
    assert_eq!(figure("joined"), clients.parse::<f64>().unwrap());
    assert!(figure("cpu_ns") > 0.0, "no server CPU figure: {stdout}");
    assert!(stdout.contains(&format!("\"mode\":\"{mode}\"")), "{stdout}");
    assert!(stdout.trim_end().ends_with("\"passed\":true}"), "{stdout}");
    assert!(stderr.contains("result      PASS"), "{stderr}");
    stdout.into_owned()
}

/// Runs a burst of 4 clients x 50 lines against a fresh chatd in `mode`; checks every count.
fn tiny_burst(mode: &str) {
    // Each of 4 clients sends 50 lines; each line reaches the 3 others.
    tiny_burst_with(mode, 4, &[], 600.0);
}

#[test]
fn a_tiny_burst_reaches_every_other_client_once() {
    tiny_burst("text");
}

#[test]
fn a_tiny_framed_burst_reaches_every_other_client_once() {
    tiny_burst("framed");
}

#[test]
fn a_tiny_websocket_burst_reaches_every_other_client_once() {
    tiny_burst("ws");
}

#[test]
fn a_websocket_burst_spread_over_rooms_and_over_tls_arrives_whole() {
    // 5 clients in 2 rooms: 3 and 2 members, each line to its room's others: 3 x 2 + 2 x 1.
    let json = tiny_burst_with("ws", 5, &["--rooms", "2"], (3.0 * 2.0 + 2.0) * 50.0);
    assert_eq!(json_number(&json, "rooms"), Some(2.0), "{json}");
    let (server, fingerprint) = tls_server();
    let json = tiny_burst_against(
        &server,
        "ws",
        3,
        &["--tls", "--tls-fingerprint", &fingerprint],
        300.0,
    );
    assert!(json.contains("\"tls\":\"pinned"), "{json}");
}

#[test]
fn idle_websocket_connections_all_join_and_report_the_servers_memory() {
    let server = TestServer::start_with_stdin_null(&["--history", "0"]);
    let (addr, pid) = (server.addr().to_string(), server.pid().to_string());
    let output = chatd_load(&[
        "idle",
        "--mode",
        "ws",
        "--addr",
        &addr,
        "--clients",
        "40",
        "--hold",
        "0.2",
        "--server-pid",
        &pid,
        "--timeout",
        "20",
        "--json",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(json_number(&stdout, "joined"), Some(40.0), "{stdout}");
    assert!(stdout.contains("\"mode\":\"ws\""), "{stdout}");
    assert!(
        json_number(&stdout, "rss_per_connection").is_some(),
        "{stdout}"
    );
}

#[test]
fn a_burst_spread_over_rooms_reaches_exactly_each_rooms_other_members() {
    // 7 clients in 3 rooms: #load0 has clients 0, 3 and 6, #load1 has 1 and 4, #load2 has 2 and
    // 5. Each line reaches its room's others only: 3 x 2 + 2 x 1 + 2 x 1 receivers, 50 lines each.
    let json = tiny_burst_with("text", 7, &["--rooms", "3"], (3.0 * 2.0 + 2.0 + 2.0) * 50.0);
    assert_eq!(json_number(&json, "rooms"), Some(3.0), "{json}");
}

#[test]
fn clients_spread_over_several_addresses_report_each_nodes_share_and_the_latency_across() {
    // The same server twice stands in for two nodes of one chat: clients 0 and 2 go to the first
    // address, 1 and 3 to the second, so of each line's 3 receivers 2 are "across"; each node's
    // 2 clients get 150 lines each.
    let server = TestServer::start_with_stdin_null(&["--history", "0", "--no-flood-control"]);
    let (addr, pid) = (server.addr().to_string(), server.pid().to_string());
    let json = tiny_burst_against(
        &server,
        "text",
        4,
        &["--addr", &addr, "--server-pid", &pid],
        600.0,
    );
    assert!(
        json.contains(&format!("\"addr\":\"{addr},{addr}\"")),
        "{json}"
    );
    assert!(!json.contains("\"cross_latency\":null"), "{json}");
    let node = format!("\"pid\":{pid},\"delivered\":300,");
    assert_eq!(json.matches(&node).count(), 2, "{json}");
}

/// A chatd with a self-signed certificate (made in its own data directory), and its fingerprint.
fn tls_server() -> (TestServer, String) {
    // A thousand TLS clients on a loaded machine: one whose ClientHello the tool writes more than
    // the default 200 ms after its connect would be greeted as text and its handshake broken.
    let mut server = TestServer::start_with_stdin_null(&[
        "--history",
        "0",
        "--no-flood-control",
        "--tls-self-signed",
        "--greeting-delay",
        "3000",
    ]);
    let line = server.expect_stdout("chatd TLS certificate ", Duration::from_secs(10));
    let fingerprint = line["chatd TLS certificate ".len()..]
        .split_whitespace()
        .next()
        .expect("a fingerprint")
        .to_owned();
    (server, fingerprint)
}

#[test]
fn a_tiny_tls_burst_with_the_certificate_pinned_reaches_every_other_client_once() {
    let (server, fingerprint) = tls_server();
    let json = tiny_burst_against(
        &server,
        "text",
        4,
        &["--tls", "--tls-fingerprint", &fingerprint],
        600.0,
    );
    assert!(
        json.contains(&format!("\"tls\":\"pinned to {fingerprint}\"")),
        "{json}"
    );
    // Without a fingerprint it says plainly that nothing was verified, and still works.
    let json = tiny_burst_against(&server, "text", 3, &["--tls", "--rooms", "1"], 300.0);
    assert!(
        json.contains("\"tls\":\"no verification, load testing only\""),
        "{json}"
    );
}

#[test]
fn a_certificate_other_than_the_pinned_one_is_refused() {
    let (server, _) = tls_server();
    let addr = server.addr().to_string();
    let wrong = format!("SHA256:{}", ["AB"; 32].join(":"));
    let output = chatd_load(&[
        "burst",
        "--tls",
        "--tls-fingerprint",
        &wrong,
        "--addr",
        &addr,
        "--clients",
        "2",
        "--messages",
        "5",
        "--timeout",
        "10",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("not the pinned"), "{stdout}");
    assert!(stdout.contains("0 of 2"), "{stdout}");
}

#[test]
fn idle_tls_connections_report_the_servers_memory_per_connection() {
    let (server, _) = tls_server();
    let (addr, pid) = (server.addr().to_string(), server.pid().to_string());
    let output = chatd_load(&[
        "idle",
        "--tls",
        "--addr",
        &addr,
        "--clients",
        "20",
        "--hold",
        "0.2",
        "--server-pid",
        &pid,
        "--timeout",
        "20",
        "--json",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(json_number(&stdout, "joined"), Some(20.0), "{stdout}");
    assert!(
        json_number(&stdout, "rss_per_connection").is_some(),
        "{stdout}"
    );
}

#[test]
fn an_idle_tls_connection_costs_the_server_under_8_kib() {
    // The target. rustls's buffered session kept a 4 KiB input buffer for as long as the
    // session lived: 8.4 KiB a connection; the layer now keeps no buffer while idle.
    let (server, _) = tls_server();
    let (addr, pid) = (server.addr().to_string(), server.pid().to_string());
    let output = chatd_load(&[
        "idle",
        "--tls",
        "--addr",
        &addr,
        "--clients",
        "1000",
        "--hold",
        "0.5",
        "--server-pid",
        &pid,
        "--timeout",
        "120",
        "--json",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(json_number(&stdout, "joined"), Some(1000.0), "{stdout}");
    let per_connection = json_number(&stdout, "rss_per_connection").expect("a memory figure");
    assert!(
        per_connection < 8.0 * 1024.0,
        "{per_connection} bytes per idle TLS connection"
    );
}

/// Runs a connect scenario of 30 connections against `server` with `extra` flags; checks that
/// every one was made and returns the JSON figures.
fn connect_run(server: &TestServer, extra: &[&str]) -> String {
    let (addr, pid) = (server.addr().to_string(), server.pid().to_string());
    let mut args = vec![
        "connect",
        "--addr",
        &addr,
        "--clients",
        "30",
        "--connect-batch",
        "10",
        "--server-pid",
        &pid,
        "--timeout",
        "20",
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let output = chatd_load(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let figure = |key| json_number(&stdout, key).unwrap_or_else(|| panic!("no {key} in {stdout}"));
    assert_eq!(figure("joined"), 30.0);
    assert_eq!(figure("join_failures"), 0.0);
    assert!(figure("connections_per_sec") > 0.0, "{stdout}");
    assert!(figure("cpu_us_per_connection") > 0.0, "{stdout}");
    assert!(figure("connections_per_cpu_sec") > 0.0, "{stdout}");
    assert!(stderr.contains("connections per CPU second"), "{stderr}");
    stdout.into_owned()
}

#[test]
fn new_connections_are_counted_to_the_greeting_over_tls_and_plain() {
    let (server, _) = tls_server();
    // Silent clients are greeted after chatd's short wait; one letter of a name, at once.
    let json = connect_run(&server, &["--tls"]);
    assert!(json.contains("\"scenario\":\"connect\""), "{json}");
    assert!(json.contains("\"tls\":\"no verification"), "{json}");
    connect_run(&server, &["--tls", "--connect-send", "l"]);
    let plain = connect_run(&server, &["--connect-send", "l"]);
    assert!(plain.contains("\"tls\":null"), "{plain}");
}

#[test]
fn rooms_need_two_members_each_to_burst() {
    let output = chatd_load(&["burst", "--clients", "4", "--rooms", "3", "--timeout", "1"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--rooms"), "{stderr}");
}

#[test]
fn a_remote_address_is_refused_without_allow_remote() {
    let output = chatd_load(&["burst", "--addr", "192.0.2.7:3001", "--timeout", "1"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}
