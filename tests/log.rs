//! The log file as an operator reads it, from the real binary: made 0600, an RFC 3339 stamp on
//! every line, `conn N ADDR` on connection lines, exactly one disconnect line per connection
//! with a human reason, and no "account files changed" after chatd's own writes.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{run_chatd, Client, DataDir, TestServer, PROMPT, TIMEOUT};
use rustix::process::Signal;

/// The log file's path in `data`, as an argument.
fn log_path(data: &DataDir) -> PathBuf {
    data.path().join("chatd.log")
}

/// Waits, bounded, until the log holds a line for which `wanted` is true; returns all lines.
#[track_caller]
fn wait_for_line(log: &Path, what: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    wait_for_lines(log, what, |lines| lines.iter().any(|l| wanted(l)))
}

/// Waits, bounded, until the log's whole lines are as `wanted` says; returns them.
#[track_caller]
fn wait_for_lines(log: &Path, what: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        // The logger writes a line in pieces: one still being written is left for the next look.
        let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        let lines: Vec<String> = whole.lines().map(str::to_owned).collect();
        if wanted(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "no {what} in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `line` starts with `YYYY-MM-DDTHH:MM:SS.mmm+HH:MM ` (RFC 3339, local offset).
fn has_rfc3339_stamp(line: &str) -> bool {
    let pattern = "dddd-dd-ddTdd:dd:dd.ddd+dd:dd ";
    line.len() > pattern.len()
        && line.chars().zip(pattern.chars()).all(|(c, p)| match p {
            'd' => c.is_ascii_digit(),
            '+' => c == '+' || c == '-',
            p => c == p,
        })
}

/// The `conn N` of the log line `line`, if it names one.
fn conn_of(line: &str) -> Option<&str> {
    let at = line.find("] conn ")? + 2;
    let rest = &line[at..];
    let end = rest[5..].find(|c: char| !c.is_ascii_digit())? + 5;
    Some(&rest[..end])
}

#[test]
fn the_log_stamps_every_line_and_gives_one_disconnect_line_per_connection_with_its_reason() {
    let data = DataDir::new();
    let log = log_path(&data);
    let log_arg = log.to_str().expect("UTF-8 temp path");
    let mut server = TestServer::start_on(
        &data,
        &[
            "--log-file",
            log_arg,
            "--log-level",
            "info",
            "--name-timeout",
            "1",
        ],
    );
    let mode = fs::metadata(&log)
        .expect("the log file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the log file's mode");

    let mut alice = server.join("alice");
    let bob = server.join("bob");
    let mut carol = server.join("carol");
    let mut dave = Client::connect(server.addr());
    dave.expect_line(PROMPT);
    let peers = [
        ("alice", alice.local_addr(), "quit: \"gone for lunch\""),
        ("bob", bob.local_addr(), "closed by peer"),
        ("carol", carol.local_addr(), "kicked by Host: \"spam\""),
        ("dave", dave.local_addr(), "name timeout"),
    ];
    alice.send_line("/quit gone for lunch");
    alice.expect_closed();
    drop(bob);
    server.console("KICK carol spam");
    carol.expect_closed();
    dave.expect_closed();
    let lines = wait_for_lines(&log, "four disconnect lines", |lines| {
        lines
            .iter()
            .filter(|l| l.contains(" disconnected: "))
            .count()
            >= 4
    });

    for line in &lines {
        assert!(has_rfc3339_stamp(line), "no RFC 3339 stamp: {line:?}");
    }
    for (name, addr, reason) in peers {
        let connected = format!(" {addr} connected");
        let line = lines
            .iter()
            .find(|l| l.ends_with(&connected))
            .unwrap_or_else(|| panic!("no `conn N {addr} connected` line for {name}: {lines:#?}"));
        let conn = conn_of(line).unwrap_or_else(|| panic!("no conn id in {line:?}"));
        let disconnects: Vec<&String> = lines
            .iter()
            .filter(|l| conn_of(l) == Some(conn) && l.contains("disconnected"))
            .collect();
        assert_eq!(
            disconnects.len(),
            1,
            "one disconnect line for {name} ({conn}): {lines:#?}"
        );
        assert!(
            disconnects[0].contains(&format!("] {conn} {addr} disconnected: {reason}")),
            "{name}: {:?}",
            disconnects[0]
        );
        if name != "dave" {
            assert!(
                lines
                    .iter()
                    .any(|l| l.ends_with(&format!("] {conn} joined as {name} (user, guest)"))),
                "{name}'s join under the same id: {lines:#?}"
            );
        }
    }
    server.signal(Signal::TERM);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
}

/// How long chatd surely takes to look at its account files twice (it looks every 2 s).
const TWO_RELOAD_CHECKS: Duration = Duration::from_millis(4500);

#[test]
fn chatds_own_account_writes_are_not_logged_as_changes_on_disk() {
    let data = DataDir::new();
    let log = log_path(&data);
    let log_arg = log.to_str().expect("UTF-8 temp path");
    let mut server = TestServer::start_on(&data, &["--log-file", log_arg, "--log-level", "info"]);
    let mut alice = server.join("alice");
    alice.send_line("/register pw");
    alice.expect_line("Your name is registered");
    server.console("BAN mallory spam");
    server.expect_stdout("mallory is banned.", TIMEOUT);

    // Nothing else wrote the files: the watcher must stay quiet through two of its checks.
    let changed = |line: &str| line.contains("account files changed");
    let quiet_until = Instant::now() + TWO_RELOAD_CHECKS;
    while Instant::now() < quiet_until {
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !text.lines().any(changed),
            "chatd's own writes were logged as changes on disk:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A forced reload says the files did not change.
    server.signal(Signal::HUP);
    let lines = wait_for_line(&log, "the SIGHUP reload", |l| {
        l.contains("account files read again (unchanged on disk)")
    });
    assert!(!lines.iter().any(|l| changed(l)), "{lines:#?}");

    // Another process's write still is.
    let (code, _, err) = run_chatd(
        &["--data-dir", data.arg(), "user", "add", "zed"],
        "pw\n",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 0, "{err}");
    let lines = wait_for_line(&log, "the change by `chatd user add`", changed);
    assert_eq!(lines.iter().filter(|l| changed(l)).count(), 1, "{lines:#?}");
    server.signal(Signal::TERM);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
}
