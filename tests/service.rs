//! chatd as a systemd service: contrib/chatd.service passes `systemd-analyze verify` (and its
//! offline security review), and chatd speaks `Type=notify` to a socket the test binds as
//! systemd would: READY=1 only once its port accepts, STOPPING=1 when SIGTERM stops it.

mod common;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;

use common::{DataDir, TestServer, TIMEOUT};
use rustix::process::Signal;

/// The unit file shipped in contrib/.
fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/chatd.service");
    std::fs::read_to_string(path).expect("read contrib/chatd.service")
}

/// Where the unit expects the binary (`cargo install --path . --root /usr/local`).
const INSTALLED: &str = "/usr/local/bin/chatd";

/// The descriptors chatd keeps beside its clients (`Server::new` reserves them).
const RESERVED_FDS: usize = 48;

#[test]
fn the_unit_file_passes_systemd_analyze_verify_and_its_security_review() {
    let text = unit_text();
    assert!(
        text.contains(&format!("ExecStart={INSTALLED} ")),
        "the unit runs {INSTALLED}"
    );
    // verify wants the binary to exist: the unit as shipped, run from the one just built.
    let dir = DataDir::new();
    let unit = dir.path().join("chatd.service");
    std::fs::write(&unit, text.replace(INSTALLED, env!("CARGO_BIN_EXE_chatd"))).expect("write");
    let unit = unit.to_str().expect("UTF-8 temp path");
    for args in [
        vec!["verify", unit],
        // The offline review's exposure, 0 (locked down) to 10 (none): at most 2.0.
        vec!["security", "--offline=yes", "--threshold=20", unit],
    ] {
        let output = Command::new("systemd-analyze")
            .args(&args)
            .output()
            .expect("run systemd-analyze (Debian's systemd package)");
        let err = String::from_utf8_lossy(&output.stderr);
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "systemd-analyze {args:?}: {err}{out}"
        );
        // Unknown keys and values it cannot parse are only warnings, on stderr.
        if args[0] == "verify" {
            assert_eq!(err, "", "systemd-analyze verify warns");
        }
    }

    for line in [
        "Type=notify",
        "User=chatd",
        "StateDirectory=chatd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "StandardInput=null",
        "StandardOutput=null",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in the unit");
    }
    // The open-file limit fits the default --max-clients and chatd's own descriptors.
    let limit: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("LimitNOFILE=")
        .parse()
        .expect("a number");
    let (code, out, err) = common::run_chatd(&["check-config"], "", None, TIMEOUT);
    assert_eq!(code, 0, "{err}");
    let max_clients: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("max-clients = "))
        .expect("max-clients")
        .parse()
        .expect("a number");
    assert_eq!(limit, max_clients + RESERVED_FDS);
}

/// A loopback port that was free a moment ago.
fn free_port() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("its address")
}

/// The next datagram on `socket` as text, within `TIMEOUT`.
#[track_caller]
fn next_notice(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no notification within {TIMEOUT:?}")
        }
        Err(e) => panic!("receive a notification: {e}"),
    }
}

#[test]
fn chatd_notifies_ready_once_its_port_accepts_and_stopping_on_sigterm() {
    let dir = DataDir::new();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(TIMEOUT)).expect("a timeout");
    let addr = free_port();

    // As systemd does: wait for READY=1, and only then use the service.
    let (tx, rx) = mpsc::channel();
    let watcher = std::thread::spawn(move || {
        let ready = next_notice(&socket);
        let accepted = std::net::TcpStream::connect(addr).is_ok();
        tx.send((ready, accepted)).expect("report");
        socket
    });
    let mut server = TestServer::start_with_env(
        &[("NOTIFY_SOCKET", path.to_str().expect("UTF-8 temp path"))],
        None,
        &["--listen", &addr.to_string()],
    );
    let (ready, accepted) = rx.recv_timeout(TIMEOUT).expect("the watcher's report");
    let socket = watcher.join().expect("the watcher");
    let lines: Vec<&str> = ready.lines().collect();
    assert!(lines.contains(&"READY=1"), "{ready:?}");
    assert!(
        lines.contains(&format!("STATUS=listening on {addr}").as_str()),
        "{ready:?}"
    );
    assert!(accepted, "READY=1 came before port {addr} accepted");

    let mut alice = server.join("alice");
    server.signal(Signal::TERM);
    let stopping = next_notice(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    alice.expect_line(common::SHUTDOWN_LINE);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
}
