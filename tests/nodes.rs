//! Several chatd processes behind one port: `--reuse-port` lets a second process listen where the
//! first does, and `--nodes N` starts N - 1 copies of the server on its port, which stop when it
//! stops and end when it is killed.

mod common;

use std::time::{Duration, Instant};

use common::{run_chatd, RedisServer, TestServer};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The processes `pid` started (its main thread's children).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Waits until `check` holds, failing with `what` after [`TIMEOUT`].
#[track_caller]
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The flags `pid` was started with.
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Starts `--nodes COUNT` of a cluster on `redis` and waits until every node it starts listens
/// (each says so on the shared stdout); returns the server and the started nodes' pids.
fn start_nodes(redis: &RedisServer, count: usize) -> (TestServer, Vec<u32>) {
    let (nodes, url) = (count.to_string(), redis.url());
    let args = ["--nodes", &nodes, "--cluster", &url];
    let mut server = TestServer::start(&args);
    let port = format!(":{}", server.addr().port());
    for _ in 1..count {
        server.expect_stdout(
            |line: &str| line.starts_with("chatd listening on") && line.ends_with(&port),
            TIMEOUT,
        );
    }
    let started = children(server.pid());
    assert_eq!(started.len(), count - 1, "started nodes: {started:?}");
    (server, started)
}

#[test]
fn a_second_server_with_reuse_port_listens_on_the_first_ones_port_and_a_plain_one_cannot() {
    let first = TestServer::start_with_stdin_null(&["--reuse-port"]);
    let addr = first.addr().to_string();
    let mut second = TestServer::start_with_stdin_null(&["--reuse-port", "--listen", &addr]);
    assert_eq!(second.addr(), first.addr());
    assert!(second.is_running());
    let (code, _out, err) = run_chatd(&["--listen", &addr, "--no-console"], "", None, TIMEOUT);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}

#[test]
fn nodes_are_started_on_the_one_port_without_a_console_and_stopped_with_the_first() {
    let redis = RedisServer::start(false);
    let (mut server, started) = start_nodes(&redis, 3);
    let port = server.addr().port().to_string();
    let mut indexes = Vec::new();
    for &pid in &started {
        let args = cmdline(pid);
        let listen = args
            .iter()
            .position(|a| a == "--listen")
            .map(|i| &args[i + 1]);
        assert!(
            listen.is_some_and(|l| l.ends_with(&format!(":{port}"))),
            "{args:?}"
        );
        assert!(args.iter().any(|a| a == "--no-console"), "{args:?}");
        assert!(!args.iter().any(|a| a == "--nodes"), "{args:?}");
        let index = args
            .iter()
            .position(|a| a == "--node-index")
            .map(|i| args[i + 1].clone());
        indexes.push(index.unwrap_or_default());
    }
    indexes.sort();
    assert_eq!(indexes, ["1", "2"]);
    // Every node keeps every line, so each has a history file of its own in the data directory.
    let data = cmdline(started[0]);
    let dir = data
        .iter()
        .position(|a| a == "--data-dir")
        .map(|i| data[i + 1].clone());
    let dir = std::path::PathBuf::from(dir.expect("a --data-dir"));
    for file in [
        "history.sqlite",
        "history-node1.sqlite",
        "history-node2.sqlite",
    ] {
        wait_for(&format!("{file} made"), || dir.join(file).exists());
    }
    // Clients reach the port whichever node the kernel gives them to.
    for i in 0..6 {
        let mut client = common::Client::connect(server.addr());
        client.join(&format!("user{i}"));
    }
    server.console("EXIT");
    assert!(server.wait_exit(TIMEOUT).success());
    for pid in started {
        wait_for(&format!("node {pid} ends"), || ended(pid));
    }
}

#[test]
fn nodes_end_when_the_first_is_killed() {
    let redis = RedisServer::start(false);
    let (mut server, started) = start_nodes(&redis, 2);
    server.signal(rustix::process::Signal::KILL);
    server.wait_exit(TIMEOUT);
    for pid in started {
        wait_for(&format!("node {pid} ends after its parent"), || ended(pid));
    }
}

#[test]
fn a_node_count_out_of_range_or_without_a_cluster_is_refused() {
    let (code, _out, err) = run_chatd(&["--nodes", "0", "--no-console"], "", None, TIMEOUT);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--nodes"), "{err}");
    let (code, _out, err) = run_chatd(&["--nodes", "2", "--no-console"], "", None, TIMEOUT);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("needs --cluster"), "{err}");
}
