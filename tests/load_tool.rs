//! `chatd-load` against the real `chatd`: a tiny burst arrives whole, and the tool refuses to
//! flood a machine other than this one.

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

/// Runs a burst of 4 clients x 50 lines against a fresh chatd in `mode`; checks every count.
fn tiny_burst(mode: &str) {
    // Flood control would pace the burst to 5 lines a second per client.
    let server = TestServer::start_with_stdin_null(&["--history", "0", "--no-flood-control"]);
    let addr = server.addr().to_string();
    let pid = server.pid().to_string();
    let output = chatd_load(&[
        "burst",
        "--mode",
        mode,
        "--addr",
        &addr,
        "--clients",
        "4",
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
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chatd-load failed: {:?}\n{stderr}\n{stdout}",
        output.status
    );
    let figure = |key| json_number(&stdout, key).unwrap_or_else(|| panic!("no {key} in {stdout}"));
    // Each of 4 clients sends 50 lines; each line reaches the 3 others.
    assert_eq!(figure("sent"), 200.0);
    assert_eq!(figure("delivered"), 600.0);
    assert_eq!(figure("expected"), 600.0);
    assert_eq!(figure("lost"), 0.0);
    assert_eq!(figure("duplicated"), 0.0);
    assert_eq!(figure("unexpected"), 0.0);
    assert_eq!(figure("joined"), 4.0);
    assert!(figure("cpu_ns") > 0.0, "no server CPU figure: {stdout}");
    assert!(stdout.contains(&format!("\"mode\":\"{mode}\"")), "{stdout}");
    assert!(stdout.trim_end().ends_with("\"passed\":true}"), "{stdout}");
    assert!(stderr.contains("result      PASS"), "{stderr}");
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
fn a_remote_address_is_refused_without_allow_remote() {
    let output = chatd_load(&["burst", "--addr", "192.0.2.7:3001", "--timeout", "1"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}
