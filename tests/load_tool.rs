//! `chatd-load` against the real `chatd`: a tiny burst arrives whole (in one room or spread over
//! several), and the tool refuses to flood a machine other than this one.

mod common;

use std::process::{Command, Output};

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
fn a_burst_spread_over_rooms_reaches_exactly_each_rooms_other_members() {
    // 7 clients in 3 rooms: #load0 has clients 0, 3 and 6, #load1 has 1 and 4, #load2 has 2 and
    // 5. Each line reaches its room's others only: 3 x 2 + 2 x 1 + 2 x 1 receivers, 50 lines each.
    let json = tiny_burst_with("text", 7, &["--rooms", "3"], (3.0 * 2.0 + 2.0 + 2.0) * 50.0);
    assert_eq!(json_number(&json, "rooms"), Some(3.0), "{json}");
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
