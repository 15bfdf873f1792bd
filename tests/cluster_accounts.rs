//! A cluster's accounts and bans live in Redis: `chatd user ... --cluster URL` manages them as
//! `chatd user` manages a data directory's, `chatd user import` moves a data directory's into
//! the cluster, and a change made while nodes run reaches every node.

mod common;

use std::time::Duration;

use common::{add_user, run_chatd, Client, DataDir, RedisServer, TestServer, PROMPT};

const TIMEOUT: Duration = Duration::from_secs(20);

/// `chatd user --cluster URL ARGS` with `stdin`; its exit code, stdout and stderr.
fn user(url: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut all = vec!["user", "--cluster", url];
    all.extend_from_slice(args);
    run_chatd(&all, stdin, None, TIMEOUT)
}

#[test]
fn accounts_are_added_listed_changed_and_removed_in_the_clusters_redis() {
    let redis = RedisServer::start(false);
    let url = redis.url();
    let (code, out, err) = user(&url, &["list"], "");
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(
        err.contains(&format!("no accounts in the cluster at {url}")),
        "{err}"
    );
    let (code, out, err) = user(&url, &["add", "alice", "--admin"], "secret-one\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "added alice as admin\n");
    let (code, _, err) = user(&url, &["add", "ALICE"], "other\n");
    assert_eq!(code, 1);
    assert!(
        err.contains("an account named \"alice\" exists already"),
        "{err}"
    );
    assert_eq!(user(&url, &["add", "bob"], "secret-two\n").0, 0);
    assert_eq!(
        user(&url, &["grant", "bob", "admin"], "").1,
        "bob is now admin\n"
    );
    assert_eq!(user(&url, &["passwd", "bob"], "secret-three\n").0, 0);
    assert_eq!(user(&url, &["del", "alice"], "").1, "removed alice\n");
    assert_eq!(user(&url, &["list"], "").1, "bob admin\n");
    // The data directory was never touched.
    let data = DataDir::new();
    let (code, out, _) = run_chatd(
        &["user", "--data-dir", data.arg(), "list"],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn two_writers_adding_one_name_at_once_make_one_account() {
    let redis = RedisServer::start(false);
    let url = redis.url();
    for round in 0..5 {
        let name = format!("carol{round}");
        let handles: Vec<_> = [name.clone(), name.to_uppercase()]
            .into_iter()
            .map(|name| {
                let url = url.clone();
                std::thread::spawn(move || user(&url, &["add", &name], "pw-pw-pw\n").0)
            })
            .collect();
        let codes: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1], "round {round}: {codes:?}");
    }
    let listing = user(&url, &["list"], "").1;
    assert_eq!(listing.lines().count(), 5, "{listing}");
}

#[test]
fn import_moves_a_data_directorys_accounts_into_the_cluster_once() {
    let redis = RedisServer::start(false);
    let url = redis.url();
    let data = DataDir::new();
    add_user(&data, "dave", "dave-secret");
    add_user(&data, "erin", "erin-secret");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "user",
            "--data-dir",
            data.arg(),
            "--cluster",
            &url,
            "import",
        ];
        args.extend_from_slice(extra);
        run_chatd(&args, "", None, TIMEOUT)
    };
    let (code, out, err) = import(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("imported 2 accounts and 0 bans from "),
        "{out}"
    );
    assert_eq!(user(&url, &["list"], "").1, "dave user\nerin user\n");
    let (code, _, err) = import(&[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the cluster holds 2 accounts already; give --replace"),
        "{err}"
    );
    assert_eq!(import(&["--replace"]).0, 0);
    let (code, _, err) = run_chatd(
        &["user", "--data-dir", data.arg(), "import"],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 1);
    assert!(err.contains("give --cluster URL"), "{err}");
}

#[test]
fn a_cluster_that_cannot_be_reached_or_named_is_a_clear_error() {
    let (code, _, err) = user("http://nowhere", &["list"], "");
    assert_eq!(code, 1);
    assert!(err.contains("--cluster"), "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let (code, _, err) = user(&format!("redis://127.0.0.1:{port}"), &["list"], "");
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach Redis"), "{err}");
}

/// A node `name` of the cluster on `redis`.
fn node(redis: &RedisServer, name: &str) -> TestServer {
    TestServer::start(&[
        "--cluster",
        &redis.url(),
        "--node-name",
        name,
        "--no-flood-control",
    ])
}

/// Connects to `server` as `name` and reads up to the name's answer, which is returned.
fn try_name(server: &TestServer, name: &str) -> (Client, String) {
    let mut client = Client::connect(server.addr());
    client.expect_line(|l: &str| l == PROMPT);
    client.send_line(name);
    let answer = client.expect_line(|l: &str| {
        l.starts_with("[*] Welcome") || l.starts_with("[!]") || l == "Password:"
    });
    (client, answer)
}

#[test]
fn an_account_added_while_nodes_run_logs_in_on_each_of_them() {
    let redis = RedisServer::start(false);
    let (a, b) = (node(&redis, "a"), node(&redis, "b"));
    assert_eq!(user(&redis.url(), &["add", "alice"], "alice-pw\n").0, 0);
    // Each node hears of the new account through the log and reads the accounts again.
    for server in [&a, &b] {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let (mut client, answer) = try_name(server, "alice");
            if answer == "Password:" {
                client.send_line("alice-pw");
                client.expect_line("[*] Welcome");
                client.send_line("/quit");
                client.expect_closed();
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "alice never needed a password: {answer}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_name_registered_on_one_node_needs_its_password_on_the_other_and_after_restarts() {
    let redis = RedisServer::start(false);
    let mut a = node(&redis, "a");
    let mut bob = a.join("bob");
    bob.send_line("/register bob-secret");
    bob.expect_line("[*] Your name is registered: from now on it needs your password.");
    // Stopped cleanly, the node says bob left, which frees his name at once.
    a.console("EXIT");
    assert!(a.wait_exit(TIMEOUT).success());
    let b = node(&redis, "b");
    let (mut again, answer) = try_name(&b, "bob");
    assert_eq!(answer, "Password:");
    again.send_line("bob-secret");
    again.expect_line("[*] Welcome");
    assert_eq!(user(&redis.url(), &["list"], "").1, "bob user\n");
}

#[test]
fn a_ban_made_on_one_node_holds_on_the_other_and_is_written_once() {
    let redis = RedisServer::start(false);
    assert_eq!(
        user(&redis.url(), &["add", "root", "--admin"], "root-pw\n").0,
        0
    );
    let (a, b) = (node(&redis, "a"), node(&redis, "b"));
    let mut root = a.login("root", "root-pw");
    root.send_line("/ban mallory spam");
    root.expect_line("[*] mallory is banned.");
    let (_, answer) = try_name(&b, "mallory");
    assert_eq!(answer, "[!] the name mallory is banned here: spam");
    // Written by the node whose admin banned, once: one registry entry after the account's.
    let versions = std::process::Command::new("redis-cli")
        .args(["-u", &redis.url(), "GET", "chatd:registry:version"])
        .output()
        .expect("run redis-cli");
    assert_eq!(String::from_utf8_lossy(&versions.stdout).trim(), "2");
    // A node started afterwards reads the ban from Redis.
    let c = node(&redis, "c");
    let (_, answer) = try_name(&c, "MALLORY");
    assert!(answer.starts_with("[!] the name"), "{answer}");
}

#[test]
fn a_dm_to_a_registered_user_offline_waits_for_them_on_every_node_and_comes_once() {
    let redis = RedisServer::start(false);
    assert_eq!(user(&redis.url(), &["add", "bob"], "bob-pw\n").0, 0);
    let (a, b) = (node(&redis, "a"), node(&redis, "b"));
    let mut alice = a.join("alice");
    alice.send_line("/dm bob are you there?");
    alice.expect_line(
        "[*] bob is offline: your message waits for them and is delivered when they next log in.",
    );
    // bob logs in on the other node: the mail is there too.
    let mut bob = b.login("bob", "bob-pw");
    bob.expect_line("[*] 1 direct message came while you were offline:");
    let dm = bob.next_line();
    assert!(dm.ends_with("] [dm] alice > are you there?"), "{dm}");
    bob.send_line("/quit");
    bob.expect_closed();
    // On the sender's node, which dropped its copy when bob logged in on b, it does not come
    // again.
    let mut bob = a.login("bob", "bob-pw");
    let lines = bob.sync();
    assert!(
        !lines.iter().any(|l| l.contains("while you were offline")),
        "delivered once: {lines:#?}"
    );
}
