//! The log file as an operator reads it, from the real binary: made 0600, an RFC 3339 stamp on
//! every line, `conn N ADDR` on connection lines, exactly one disconnect line per connection
//! with a human reason, and no "account files changed" after chatd's own writes. SIGHUP opens a
//! moved log file again at its path (contrib/chatd.logrotate does the moving), and under systemd
//! the log goes to stderr with the journal's priority prefixes and no stamps of ours.

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

#[test]
fn sighup_opens_the_log_file_again_at_its_path_after_logrotate_moved_it() {
    let data = DataDir::new();
    let log = log_path(&data);
    let log_arg = log.to_str().expect("UTF-8 temp path");
    let mut server = TestServer::start_on(&data, &["--log-file", log_arg]);
    wait_for_line(&log, "the listening line", |l| {
        l.contains("] listening on ")
    });
    let rotated = data.path().join("chatd.log.1");
    fs::rename(&log, &rotated).expect("move the log away, as logrotate does");
    let before = server.join("before");
    wait_for_line(&rotated, "the join before SIGHUP", |l| {
        l.contains("joined as before")
    });

    server.signal(Signal::HUP);
    let lines = wait_for_line(&log, "the reopen line in a new file", |l| {
        l.contains("log file") && l.contains("opened again")
    });
    assert!(has_rfc3339_stamp(&lines[0]), "{lines:#?}");
    let mode = fs::metadata(&log)
        .expect("the new file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the new log file's mode");
    let _after = server.join("after");
    let lines = wait_for_line(&log, "the join after SIGHUP", |l| {
        l.contains("joined as after")
    });
    assert!(
        !lines.iter().any(|l| l.contains("joined as before")),
        "{lines:#?}"
    );
    let old = fs::read_to_string(&rotated).expect("the moved file");
    assert!(
        !old.contains("joined as after"),
        "written to the moved file: {old}"
    );
    drop(before);
    server.signal(Signal::TERM);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
}

#[test]
fn under_systemd_the_log_goes_to_stderr_with_priorities_and_without_our_stamps() {
    let data = DataDir::new();
    let path = data.path().join("journal-stream");
    let stderr = fs::File::create(&path).expect("a file for stderr");
    // systemd names the stream's device and inode; stderr is that file here.
    let st = rustix::fs::fstat(&stderr).expect("fstat");
    let stream = format!("{}:{}", st.st_dev, st.st_ino);
    let mut server = TestServer::start_with_env(
        &[("JOURNAL_STREAM", &stream)],
        Some(stderr),
        &["--data-dir", data.arg()],
    );
    let alice = server.join("alice");
    let listening = format!("<6>listening on {}", server.addr());
    let connected = format!("{} connected", alice.local_addr());
    let lines = wait_for_lines(&path, "alice's join in the journal", |lines| {
        lines.iter().any(|l| l.contains("joined as alice"))
    });
    assert!(lines.contains(&listening), "{lines:#?}");
    for line in &lines {
        assert!(
            line.starts_with('<') && !has_rfc3339_stamp(&line[3..]),
            "not a journal line: {line:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>conn ") && l.ends_with(&connected)),
        "{lines:#?}"
    );
    server.signal(Signal::TERM);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
}

#[test]
fn contrib_logrotate_rotates_the_log_and_chatd_writes_a_new_one() {
    let data = DataDir::new();
    let log = log_path(&data);
    let log_arg = log.to_str().expect("UTF-8 temp path");
    let mut server = TestServer::start_on(&data, &["--log-file", log_arg]);
    let _alice = server.join("alice");
    wait_for_line(&log, "alice's join", |l| l.contains("joined as alice"));

    // The shipped rules, for this log and this server (systemctl reload sends it SIGHUP).
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/chatd.logrotate");
    let rules = fs::read_to_string(shipped).expect("read contrib/chatd.logrotate");
    assert!(rules.contains("/var/log/chatd/*.log {"), "{rules}");
    assert!(rules.contains("systemctl reload chatd.service"), "{rules}");
    let rules = rules.replace("/var/log/chatd/*.log", log_arg).replace(
        "systemctl reload chatd.service",
        &format!("kill -HUP {}", server.pid()),
    );
    let conf = data.path().join("logrotate.conf");
    fs::write(&conf, rules).expect("write the rules");
    let state = data.path().join("logrotate.state");
    let logrotate = Path::new("/usr/sbin/logrotate");
    let logrotate = if logrotate.exists() {
        logrotate
    } else {
        Path::new("logrotate")
    };
    let output = std::process::Command::new(logrotate)
        .arg("--force")
        .arg("--state")
        .arg(&state)
        .arg(&conf)
        .output()
        .expect("run logrotate (Debian's logrotate package)");
    assert!(
        output.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rotated = fs::read_to_string(data.path().join("chatd.log.1")).expect("chatd.log.1");
    assert!(rotated.contains("joined as alice"), "{rotated}");
    let _bob = server.join("bob");
    let lines = wait_for_line(&log, "bob's join in the new file", |l| {
        l.contains("joined as bob")
    });
    assert!(
        !lines.iter().any(|l| l.contains("joined as alice")),
        "{lines:#?}"
    );
    let mode = fs::metadata(&log)
        .expect("the new file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "made by chatd, not logrotate");
    server.signal(Signal::TERM);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
}
