//! Every flag of `chatd` and `chatd user`, run as the real binary with values it must refuse:
//! each refusal names the flag, the value and what is allowed, exits 1 and starts no server.
//! And `--listen` takes host names and addresses without a port, as `chat` does; every binary
//! prints its version.

mod common;

use common::{run_chatd, Client, DataDir, TestServer, PROMPT, TIMEOUT};

/// One refused value: the arguments, then what stderr must contain.
struct Case {
    args: &'static [&'static str],
    flag: &'static str,
    value: &'static str,
    allowed: &'static str,
}

const fn case(
    args: &'static [&'static str],
    flag: &'static str,
    value: &'static str,
    allowed: &'static str,
) -> Case {
    Case {
        args,
        flag,
        value,
        allowed,
    }
}

/// Server flags with a value each must refuse (listening on a free loopback port had it been
/// accepted, so a case that wrongly starts a server shows up as a timeout, never a clash).
const SERVER_CASES: &[Case] = &[
    case(
        &["--flood-rate", "0"],
        "--flood-rate",
        "0",
        "from 0.01 to 10000 messages a second",
    ),
    case(
        &["--flood-rate", "fast"],
        "--flood-rate",
        "fast",
        "expected a number",
    ),
    case(
        &["--flood-rate", "inf"],
        "--flood-rate",
        "inf",
        "expected a number",
    ),
    case(
        &["--flood-burst", "0"],
        "--flood-burst",
        "0",
        "from 1 to 10000 messages",
    ),
    case(
        &["--name-timeout", "0"],
        "--name-timeout",
        "0",
        "from 1 to 3600 seconds",
    ),
    case(
        &["--name-timeout", "86401"],
        "--name-timeout",
        "86401",
        "from 1 to 3600 seconds",
    ),
    case(
        &["--name-timeout", "-1"],
        "--name-timeout",
        "-1",
        "a whole number",
    ),
    case(
        &["--ping-interval", "0"],
        "--ping-interval",
        "0",
        "from 1 to 86400 seconds",
    ),
    case(
        &["--ping-misses", "0"],
        "--ping-misses",
        "0",
        "from 1 to 255",
    ),
    case(
        &["--ping-misses", "300"],
        "--ping-misses",
        "300",
        "at most 255",
    ),
    case(
        &["--outbuf-soft-secs", "0"],
        "--outbuf-soft-secs",
        "0",
        "from 1 to 3600 seconds",
    ),
    case(
        &["--outbuf-soft", "0"],
        "--outbuf-soft",
        "0",
        "at least 1 byte",
    ),
    case(
        &["--web-host", "chat.lan:3001"],
        "--web-host",
        "chat.lan:3001",
        "without a port",
    ),
    case(
        &["--web-origin", "https://portal.example.org/chat"],
        "--web-origin",
        "https://portal.example.org/chat",
        "no path",
    ),
    case(&["--max-clients", "0"], "--max-clients", "0", "at least 1"),
    case(
        &["--max-clients", "many"],
        "--max-clients",
        "many",
        "a whole number",
    ),
    case(&["--max-per-ip", "0"], "--max-per-ip", "0", "at least 1"),
    case(
        &["--max-outbuf", "1000"],
        "--max-outbuf",
        "1000",
        "at least 65536 bytes",
    ),
    case(
        &["--max-frame", "100"],
        "--max-frame",
        "100",
        "from 1024 to ",
    ),
    case(
        &["--max-line-discard", "10"],
        "--max-line-discard",
        "10",
        "at least the line limit, 8192 bytes",
    ),
    case(
        &["--max-line-discard", "lots"],
        "--max-line-discard",
        "lots",
        "a whole number",
    ),
    case(
        &["--history", "5000"],
        "--history",
        "5000",
        "from 0 to 1000 lines",
    ),
    case(
        &["--log-level", "loud"],
        "--log-level",
        "loud",
        "off, error, warn, info, debug or trace",
    ),
    case(
        &["--listen", "localhost:99999"],
        "--listen",
        "localhost:99999",
        "port must be a number from 0 to 65535",
    ),
    case(
        &["--listen", ":3001"],
        "--listen",
        ":3001",
        "give HOST:PORT",
    ),
    case(
        &["--listen", "a:b:c"],
        "--listen",
        "a:b:c",
        "give HOST:PORT",
    ),
    case(
        &["--tls-cert", "/etc/chatd/chain.pem"],
        "--tls-cert",
        "/etc/chatd/chain.pem",
        "needs --tls-key FILE too",
    ),
    case(
        &["--tls-key", "/etc/chatd/key.pem"],
        "--tls-key",
        "/etc/chatd/key.pem",
        "needs --tls-cert FILE too",
    ),
    case(
        &[
            "--tls-self-signed",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ],
        "--tls-cert",
        "c.pem",
        "cannot go with --tls-self-signed",
    ),
    case(
        &["--tls-required"],
        "--tls-required",
        "on",
        "needs TLS on: add --tls-cert FILE --tls-key FILE, or --tls-self-signed",
    ),
    case(
        &["--allow-plain-passwords"],
        "--allow-plain-passwords",
        "on",
        "needs TLS on",
    ),
    case(
        &[
            "--tls-self-signed",
            "--tls-required",
            "--allow-plain-passwords",
        ],
        "--allow-plain-passwords",
        "on",
        "cannot go with --tls-required",
    ),
];

/// Runs `chatd ARGS` (it must exit by itself) and checks the refusal.
#[track_caller]
fn assert_refused(args: &[&str], flag: &str, value: &str, allowed: &str) {
    let (code, out, err) = run_chatd(args, "", None, TIMEOUT);
    assert_eq!(code, 1, "chatd {args:?}: exit code; stderr: {err}");
    assert!(!out.contains("listening"), "chatd {args:?} started: {out}");
    for wanted in [flag, &format!("'{value}'"), allowed] {
        assert!(
            err.contains(wanted),
            "chatd {args:?}: stderr does not name {wanted:?}: {err}"
        );
    }
}

#[test]
fn every_refused_server_flag_names_the_flag_the_value_and_what_is_allowed() {
    let data = DataDir::new();
    for case in SERVER_CASES {
        let mut args = vec!["--no-console", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(case.args);
        // A flag given twice is refused by argh: the case's --listen replaces the default.
        if case.flag == "--listen" {
            args.drain(1..3);
        }
        args.extend_from_slice(&["--data-dir", data.arg()]);
        assert_refused(&args, case.flag, case.value, case.allowed);
    }
}

#[test]
fn a_data_dir_or_log_file_of_the_wrong_kind_is_named_with_its_flag() {
    let data = DataDir::new();
    let file = data.path().join("plain-file");
    std::fs::write(&file, "x").expect("write a file");
    let file = file.to_str().expect("UTF-8 temp path");
    let dir = data.arg();
    let server = ["--no-console", "--listen", "127.0.0.1:0"];
    let with = |extra: &[&'static str]| {
        let mut args: Vec<&str> = server.to_vec();
        args.extend_from_slice(extra);
        args
    };
    let mut args = with(&[]);
    args.extend_from_slice(&["--data-dir", file]);
    assert_refused(&args, "--data-dir", file, "it is not a directory");
    let mut args = with(&[]);
    args.extend_from_slice(&["--data-dir", ""]);
    assert_refused(&args, "--data-dir", "", "the path is empty");
    assert_refused(
        &["--data-dir", "", "user", "list"],
        "--data-dir",
        "",
        "the path is empty",
    );
    let mut args = with(&[]);
    args.extend_from_slice(&["--data-dir", dir, "--log-file", dir]);
    assert_refused(&args, "--log-file", dir, "Is a directory");
    assert!(
        !std::path::Path::new(file).is_dir(),
        "the file was left alone"
    );
}

#[test]
fn refused_user_command_values_name_what_is_wrong_and_what_is_allowed() {
    let data = DataDir::new();
    let dir = data.arg();
    assert_refused(
        &["--data-dir", dir, "user", "grant", "alice", "wizard"],
        "role",
        "wizard",
        "admin or user",
    );
    assert_refused(
        &[
            "--data-dir",
            dir,
            "user",
            "--data-dir",
            "/elsewhere",
            "list",
        ],
        "--data-dir",
        "/elsewhere",
        "give it once",
    );
    let (code, _, err) = run_chatd(
        &["--data-dir", dir, "user", "add", "two words"],
        "pw\n",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("\"two words\"") && err.contains("use 1 to 32 letters"),
        "{err}"
    );
}

#[test]
fn listen_takes_host_names_and_addresses_without_a_port() {
    let server = TestServer::start(&["--listen", "localhost:0"]);
    assert!(server.addr().ip().is_loopback());
    Client::connect(server.addr()).expect_line(PROMPT);
    drop(server);
    for text in ["127.0.0.1", "localhost"] {
        // Port 3001 itself: no other test listens on it (they all take port 0).
        let server = TestServer::start(&["--listen", text]);
        assert_eq!(server.addr().port(), 3001, "--listen {text}");
        Client::connect(server.addr()).expect_line(PROMPT);
    }
}

#[test]
fn every_binary_prints_its_name_and_version() {
    for (name, binary) in [
        ("chatd", env!("CARGO_BIN_EXE_chatd")),
        ("chat", env!("CARGO_BIN_EXE_chat")),
        ("chatd-load", env!("CARGO_BIN_EXE_chatd-load")),
    ] {
        let output = std::process::Command::new(binary)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {name}: {e}"));
        assert!(output.status.success(), "{name} --version: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION")),
            "{name} --version"
        );
    }
}
