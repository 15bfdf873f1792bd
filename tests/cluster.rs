//! `--cluster`: two or three real chatd nodes over a real `redis-server` of the test's own (on a
//! free loopback port, no disk persistence unless the test is about it), talked to over TCP as
//! users would. Leases are short (`--cluster-lease-ms`) so that the fault tests take seconds.
//! Every wait is for a line with a deadline.

mod common;

use std::time::{Duration, Instant};

use common::web::WebClient;
use common::{assert_chat, chat_line, chat_text, Client, RedisServer, TestServer, PROMPT, TIMEOUT};
use rustix::process::Signal;
use serde_json::{json, Value};

/// The lease of the fault tests: a killed or stopped node is gone within about this.
const LEASE_MS: &str = "1500";

/// Starts a node `name` of the cluster on `redis`, with a lease of `lease_ms`.
fn node_with_lease(redis: &RedisServer, name: &str, lease_ms: &str) -> TestServer {
    TestServer::start(&[
        "--cluster",
        &redis.url(),
        "--node-name",
        name,
        "--cluster-lease-ms",
        lease_ms,
        "--no-flood-control",
    ])
}

fn node(redis: &RedisServer, name: &str) -> TestServer {
    node_with_lease(redis, name, LEASE_MS)
}

/// Connects to `server` sending `name` at once, and reads until the name is taken or welcomed;
/// true if it was welcomed.
fn try_join(server: &TestServer, name: &str) -> (Client, bool) {
    let mut client = Client::connect(server.addr());
    client.send_line(name);
    let answer = client
        .expect_line(|l: &str| l.starts_with("[*] Welcome,") || l.starts_with("[!] name taken"));
    (client, answer.starts_with("[*] Welcome,"))
}

/// The answer `server` gives to `name` sent at once, asking again while the chat is degraded (a
/// node finding Redis again), for at most [`TIMEOUT`].
fn answer_when_whole(server: &TestServer, name: &str) -> (Client, String) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut client = Client::connect(server.addr());
        client.send_line(name);
        let answer = client.expect_line(|l: &str| {
            l.starts_with("[*] Welcome,")
                || l.starts_with("[!] name taken")
                || l.starts_with("[!] the chat is degraded")
        });
        if !answer.starts_with("[!] the chat is degraded") || Instant::now() > deadline {
            return (client, answer);
        }
    }
}

/// Collects the chat lines `client` gets (as `from: text`) until it has `count` of them.
fn chat_lines(client: &mut Client, from: &[&str], count: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < count {
        let line = client.next_line();
        for name in from {
            if let Some(text) = chat_text(&line, name) {
                got.push(format!("{name}: {text}"));
            }
        }
    }
    got
}

#[test]
fn a_room_line_and_a_direct_message_cross_nodes() {
    let redis = RedisServer::start(false);
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    alice.expect_line("[*] bob entered.");
    alice.send_line("hello from a");
    let line = bob.expect_line(chat_line("alice", "hello from a"));
    assert_chat(&line, "alice", "hello from a");
    bob.send_line("/dm alice psst from b");
    alice.expect_line(|l: &str| l.ends_with("[dm] bob > psst from b"));
    // Presence is the cluster's: each node lists both.
    let users = bob.sync();
    let online = users.last().unwrap();
    assert!(
        online.contains("alice") && online.contains("bob"),
        "{online}"
    );
}

#[test]
fn every_receiver_sees_concurrent_senders_in_one_order() {
    let redis = RedisServer::start(false);
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    let mut carol = a.join("carol");
    let mut dave = b.join("dave");
    // Everyone has seen everyone join before the burst.
    for client in [&mut alice, &mut bob, &mut carol] {
        client.expect_line("[*] dave entered.");
    }
    const EACH: usize = 40;
    let burst = |who: &str| -> Vec<u8> {
        (0..EACH)
            .map(|i| format!("{who} {i}\n"))
            .collect::<String>()
            .into_bytes()
    };
    alice.send_raw(&burst("a"));
    bob.send_raw(&burst("b"));
    let at_carol = chat_lines(&mut carol, &["alice", "bob"], 2 * EACH);
    let at_dave = chat_lines(&mut dave, &["alice", "bob"], 2 * EACH);
    assert_eq!(at_carol, at_dave, "two orders");
    // Each sender's own lines keep their order within the one order.
    for who in ["alice", "bob"] {
        let mine: Vec<&String> = at_carol.iter().filter(|l| l.starts_with(who)).collect();
        assert_eq!(mine.len(), EACH);
        for (i, line) in mine.iter().enumerate() {
            assert!(
                line.ends_with(&format!(" {i}")),
                "{who}'s lines out of order: {mine:?}"
            );
        }
    }
}

#[test]
fn a_name_raced_for_on_two_nodes_has_exactly_one_winner_each_time() {
    let redis = RedisServer::start(false);
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let started = Instant::now();
    let mut wins = [0; 2];
    for i in 0..100 {
        // Case variants of one name, sent at once to each node.
        let (mut first, mut second) = (Client::connect(a.addr()), Client::connect(b.addr()));
        first.send_line(&format!("racer{i}"));
        second.send_line(&format!("RACER{i}"));
        let won = |client: &mut Client| {
            client
                .expect_line(|l: &str| {
                    l.starts_with("[*] Welcome,") || l.starts_with("[!] name taken")
                })
                .starts_with("[*] Welcome,")
        };
        let (won_a, won_b) = (won(&mut first), won(&mut second));
        assert!(
            won_a ^ won_b,
            "round {i}: node a won {won_a}, node b won {won_b}"
        );
        wins[usize::from(won_b)] += 1;
    }
    eprintln!(
        "100 races in {:?}: node a won {}, node b {}",
        started.elapsed(),
        wins[0],
        wins[1]
    );
}

#[test]
fn a_killed_node_s_users_are_gone_everywhere_and_their_names_free() {
    let redis = RedisServer::start(false);
    let mut a = node(&redis, "a");
    let b = node(&redis, "b");
    let _alice = a.join("alice");
    let mut bob = b.join("bob");
    bob.sync();
    let killed = Instant::now();
    a.signal(Signal::KILL);
    bob.expect_line("[*] alice exited.");
    let gone_after = killed.elapsed();
    // Her name's lease lapsed with the node's heartbeat: it is free on the other node.
    let (_again, welcomed) = try_join(&b, "Alice");
    assert!(welcomed, "alice's name is still taken after her node died");
    eprintln!("kill -9: alice shown gone after {gone_after:?} (lease {LEASE_MS} ms)");
    assert!(gone_after < Duration::from_secs(5), "{gone_after:?}");
}

/// Two nodes after the fault both SIGSTOP tests start from: alice of node a and bob of node b
/// online, a stopped past its lease (bob sees alice go), `ALICE` welcomed on b meanwhile, then a
/// running again, having cut alice off.
struct Stopped {
    a: TestServer,
    b: TestServer,
    bob: Client,
    alice2: Client,
}

fn stop_a_past_its_lease_while_b_takes_alice(redis: &RedisServer) -> Stopped {
    let mut a = node(redis, "a");
    let b = node(redis, "b");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    bob.sync();
    a.signal(Signal::STOP);
    bob.expect_line("[*] alice exited.");
    // While a is stopped the log says it is gone, and the name is free to take on b.
    let (alice2, welcomed) = try_join(&b, "ALICE");
    assert!(welcomed, "the name was not freed");
    a.signal(Signal::CONT);
    // a finds it lost its leases (and reads that it was taken for gone): its users are cut.
    alice.expect_line(|l: &str| l.contains("lost its place in the chat's cluster"));
    assert!(alice.closed_within(TIMEOUT), "alice was not cut off");
    // The two ways a learns it (the log's node_gone, its lease keeper's failed renewals) come in
    // either order, and each cuts a's users; once a has logged both, it is done cutting and the
    // tests' next users are not caught in it.
    let mut waiting = vec!["said this node is gone", "leases not renewed for"];
    while !waiting.is_empty() {
        let line = a.expect_stderr(|l: &str| waiting.iter().any(|w| l.contains(w)), TIMEOUT);
        waiting.retain(|w| !line.contains(w));
    }
    Stopped { a, b, bob, alice2 }
}

#[test]
fn a_node_stopped_past_its_lease_cuts_its_users_and_no_name_is_held_twice() {
    let redis = RedisServer::start(false);
    let Stopped {
        a,
        b: _b,
        mut bob,
        mut alice2,
    } = stop_a_past_its_lease_while_b_takes_alice(&redis);
    // One holder of the name, at every node. (a may still be finding Redis again: its
    // connections' reply timeouts ran out while it was stopped.)
    let (_late, answer) = answer_when_whole(&a, "alice");
    assert!(
        answer.starts_with("[!] name taken"),
        "a let a second alice in: {answer}"
    );
    let users = alice2.sync();
    let online = users.last().unwrap().to_lowercase();
    assert_eq!(online.matches("alice").count(), 1, "{online}");
    bob.send_line("still one chat?");
    alice2.expect_line(chat_line("bob", "still one chat?"));
}

/// A node stopped for less than its lease keeps its users and their names: as it wakes, its
/// waits on Redis end with EINTR and it connects again (its users may be told the chat is
/// degraded, then whole again), and they get what was said while it slept, once.
#[test]
fn a_node_stopped_for_less_than_its_lease_keeps_its_users_and_catches_up_once() {
    let redis = RedisServer::start(false);
    let mut a = node_with_lease(&redis, "a", "10000");
    let mut b = node_with_lease(&redis, "b", "10000");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    alice.expect_line("[*] bob entered.");
    a.signal(Signal::STOP);
    bob.send_line("while you slept");
    b.expect_stdout(|l: &str| l.ends_with("bob > while you slept"), TIMEOUT);
    a.signal(Signal::CONT);
    let (mut degraded, mut whole, mut got) = (false, false, 0);
    while got == 0 || degraded && !whole {
        let line = alice.next_line();
        assert!(
            !line.contains("lost its place"),
            "alice was cut off: {line}"
        );
        degraded |= line.starts_with("[!] The chat is degraded");
        whole |= line.starts_with("[*] The chat is whole again");
        got += usize::from(chat_text(&line, "bob") == Some("while you slept"));
    }
    alice.send_line("awake");
    bob.expect_line(chat_line("alice", "awake"));
    let rest = alice.sync();
    got += rest
        .iter()
        .filter(|l| chat_text(l, "bob") == Some("while you slept"))
        .count();
    assert_eq!(got, 1, "bob's line came {got} times: {rest:?}");
}

/// Redis stops and starts again (with or without its data): users stay connected, are told the
/// chat is degraded and then whole, a line said meanwhile is refused, and nothing comes twice.
fn redis_restart(aof: bool) {
    let mut redis = RedisServer::start(aof);
    // A lease long enough for the restart (past it the nodes would cut their users off).
    let a = node_with_lease(&redis, "a", "4000");
    let b = node_with_lease(&redis, "b", "4000");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    alice.send_line("before");
    bob.expect_line(chat_line("alice", "before"));
    redis.stop();
    for client in [&mut alice, &mut bob] {
        client.expect_line(|l: &str| l.starts_with("[!] The chat is degraded"));
    }
    alice.send_line("during");
    alice.expect_line(|l: &str| l.starts_with("[!]") && l.contains("not sent"));
    redis.restart();
    for client in [&mut alice, &mut bob] {
        client.expect_line(|l: &str| l.starts_with("[*] The chat is whole again"));
    }
    alice.send_line("after");
    let mut from_alice = Vec::new();
    while from_alice.last().map(String::as_str) != Some("after") {
        let line = bob.next_line();
        if let Some(text) = chat_text(&line, "alice") {
            from_alice.push(text.to_owned());
        }
    }
    assert_eq!(
        from_alice,
        ["after"],
        "a line came again, or the refused one came"
    );
    // Nothing more: the next thing bob gets is the answer to his own command.
    let rest = bob.sync();
    assert!(
        rest.iter().all(|l| chat_text(l, "alice").is_none()),
        "delivered twice: {rest:?}"
    );
    // The names held before are still held (taken back if Redis lost them).
    let (_other, welcomed) = try_join(&b, "Alice");
    assert!(!welcomed, "alice's name was free after the restart");
}

#[test]
fn a_redis_restart_without_persistence_keeps_users_connected_and_says_so() {
    redis_restart(false);
}

#[test]
fn a_redis_restart_with_aof_keeps_users_connected_and_says_so() {
    redis_restart(true);
}

#[test]
fn a_node_started_late_knows_who_is_online_and_the_room_s_history() {
    let redis = RedisServer::start(false);
    let a = node(&redis, "a");
    let mut alice = a.join("alice");
    alice.send_line("said before b started");
    alice.sync();
    let b = node(&redis, "b");
    let mut bob = Client::connect(b.addr());
    // The greeting counts who is online, cluster-wide.
    bob.expect_line("Welcome to chatd! Users online: 1.");
    bob.expect_line(|l: &str| l == PROMPT);
    bob.send_line("bob");
    bob.expect_line("[*] Welcome, bob");
    bob.expect_line(|l: &str| l.ends_with("] [history] alice > said before b started"));
    alice.expect_line("[*] bob entered.");
    let users = bob.sync();
    let online = users.last().unwrap();
    assert!(
        online.contains("alice") && online.contains("bob"),
        "{online}"
    );
}

#[test]
fn a_bad_cluster_url_stops_the_start_naming_the_flag() {
    let (code, _, err) = common::run_chatd(
        &["--cluster", "localhost:6379", "--listen", "127.0.0.1:0"],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--cluster") && err.contains("redis://HOST:PORT"),
        "{err}"
    );
}

#[test]
fn an_unreachable_redis_stops_the_start_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let data = common::DataDir::new();
    let url = format!("redis://127.0.0.1:{port}");
    let (code, _, err) = common::run_chatd(
        &[
            "--cluster",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.arg(),
        ],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach Redis"), "{err}");
}

#[test]
fn a_console_kicks_a_user_of_another_node_and_its_answers_stay_on_its_own_console() {
    let redis = RedisServer::start(false);
    let mut a = node(&redis, "a");
    let mut b = node(&redis, "b");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    alice.expect_line("[*] bob entered.");
    b.console("KICK ghost");
    b.expect_stdout("no user named ghost is online", TIMEOUT);
    b.console("KICK alice too loud");
    alice.expect_line("[!] You have been kicked out by Host.");
    assert!(alice.closed_within(TIMEOUT), "alice was not cut off");
    bob.expect_line("[*] alice has been kicked out.");
    // a applied both entries in order; the refusal was b's console's alone.
    let shown = a.console_sync();
    assert!(
        shown.iter().all(|l| !l.contains("no user named ghost")),
        "another node's console answer showed here: {shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|l| l.contains("alice has been kicked out")),
        "{shown:#?}"
    );
}

#[test]
fn nodes_started_by_nodes_are_one_chat_each_with_its_own_name() {
    let redis = RedisServer::start(false);
    let mut first = TestServer::start(&[
        "--cluster",
        &redis.url(),
        "--node-name",
        "n",
        "--nodes",
        "3",
        "--no-flood-control",
    ]);
    let port = format!(":{}", first.addr().port());
    for _ in 1..3 {
        first.expect_stdout(
            |l: &str| l.starts_with("chatd listening on") && l.ends_with(&port),
            TIMEOUT,
        );
    }
    // Each copy joined the cluster under the name given and its number.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let nodes = redis.command(&["SMEMBERS", "chatd:nodes"]);
        if ["$1\r\nn\r\n", "$3\r\nn-1\r\n", "$3\r\nn-2\r\n"]
            .iter()
            .all(|n| nodes.contains(n))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every node registered: {nodes:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Whichever process the kernel gives each user to, they are in one chat.
    let mut users: Vec<Client> = (0..6).map(|i| first.join(&format!("user{i}"))).collect();
    let online = users[5].sync();
    assert!(
        online.last().unwrap().starts_with("[*] Online (6)"),
        "{online:?}"
    );
    users[0].send_line("to everyone");
    for user in &mut users[1..] {
        user.expect_line(chat_line("user0", "to everyone"));
    }
}

#[test]
fn a_second_node_of_a_running_node_s_name_is_refused_at_start() {
    let redis = RedisServer::start(false);
    let a = node(&redis, "a");
    // Once it greets, it has joined the cluster.
    let _alice = a.join("alice");
    let data = common::DataDir::new();
    let (code, _, err) = common::run_chatd(
        &[
            "--cluster",
            &redis.url(),
            "--node-name",
            "a",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.arg(),
        ],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--node-name a: a node of that name is running"),
        "{err}"
    );
}

#[test]
fn redis_out_of_reach_past_the_lease_cuts_users_off_and_they_come_back_after() {
    let mut redis = RedisServer::start(false);
    let a = node(&redis, "a");
    let mut alice = a.join("alice");
    redis.stop();
    alice.expect_line(|l: &str| l.starts_with("[!] The chat is degraded"));
    // Past the lease the node cannot be sure her name is hers alone.
    alice.expect_line(|l: &str| l.contains("lost its place in the chat's cluster"));
    assert!(alice.closed_within(TIMEOUT), "alice was not cut off");
    redis.restart();
    // Her name is free once her Left, kept while Redis was away, is in the log again: at once
    // after the node finds Redis, within the deadline.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_again, answer) = answer_when_whole(&a, "alice");
        if answer.starts_with("[*] Welcome,") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice's name stayed taken: {answer}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_that_stops_cleanly_takes_its_users_out_everywhere_at_once() {
    let redis = RedisServer::start(false);
    let mut a = node(&redis, "a");
    let b = node(&redis, "b");
    let _alice = a.join("alice");
    let mut bob = b.join("bob");
    bob.sync();
    let stopped = Instant::now();
    a.console("EXIT");
    bob.expect_line("[*] alice exited.");
    // Well before a lease would have told the others.
    assert!(
        stopped.elapsed() < Duration::from_millis(1500),
        "{:?}",
        stopped.elapsed()
    );
    assert!(a.wait_exit(TIMEOUT).success());
    // It left the set of nodes and its heartbeat with it: its name may start again at once.
    let nodes = redis.command(&["SMEMBERS", "chatd:nodes"]);
    assert!(!nodes.contains("$1\r\na\r\n"), "{nodes:?}");
    let _again = node(&redis, "a").join("alice");
}

#[test]
fn a_node_taken_for_gone_takes_its_users_out_where_the_log_says_and_holds_the_chat_the_others_do() {
    let redis = RedisServer::start(false);
    let Stopped {
        a,
        b: _b,
        bob: _bob,
        mut alice2,
    } = stop_a_past_its_lease_while_b_takes_alice(&redis);
    // a took alice out where the log said she was gone, so it admitted ALICE as every node
    // did: a user of a sees her online and hears her.
    let (mut carol, answer) = answer_when_whole(&a, "carol");
    assert!(answer.starts_with("[*] Welcome,"), "{answer}");
    let users = carol.sync();
    let online = users.last().unwrap();
    assert!(
        online.contains("ALICE") && online.contains("bob") && !online.contains("alice"),
        "{online}"
    );
    alice2.send_line("one chat");
    carol.expect_line(chat_line("ALICE", "one chat"));
}

/// A page user of `server` welcomed as `name`, asking again while the chat is degraded (a node
/// finding Redis again), for at most [`TIMEOUT`].
fn web_join_when_whole(server: &TestServer, name: &str) -> WebClient {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut page = WebClient::connect(server.addr());
        let answer = page.try_hello(name);
        if answer["type"] == "welcome" {
            return page;
        }
        let degraded = answer["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("the chat is degraded"));
        assert!(degraded && Instant::now() < deadline, "{answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `message` (the page's JSON) is `from` saying `text` in the default room.
fn web_said(message: &Value, from: &str, text: &str) -> bool {
    message["type"] == "chat" && message["from"] == from && message["text"] == text
}

#[test]
fn nodes_that_start_together_give_a_line_one_id_and_a_page_resumes_on_the_other_node() {
    let redis = RedisServer::start(false);
    // A lease longer than b's wait for a's snapshot: a is not taken for gone meanwhile.
    let mut a = node_with_lease(&redis, "a", "10000");
    // Once a is in the cluster, it does not answer b's Sync while b starts: both start from
    // nothing, with no snapshot of each other, as nodes started at the same moment do.
    let deadline = Instant::now() + TIMEOUT;
    while redis.command(&["EXISTS", "chatd:node:a"]) != ":1\r\n" {
        assert!(Instant::now() < deadline, "a did not join the cluster");
        std::thread::sleep(Duration::from_millis(10));
    }
    a.signal(Signal::STOP);
    let mut b = node_with_lease(&redis, "b", "10000");
    b.expect_stderr("not every node answered", TIMEOUT);
    a.signal(Signal::CONT);
    let (mut tess, answer) = answer_when_whole(&a, "tess");
    assert!(answer.starts_with("[*] Welcome,"), "{answer}");
    let mut wendy = web_join_when_whole(&a, "wendy");
    let mut walt = web_join_when_whole(&b, "walt");
    tess.send_line("line 1");
    let on_a = wendy.expect("line 1 on a", |m| web_said(m, "tess", "line 1"));
    let on_b = walt.expect("line 1 on b", |m| web_said(m, "tess", "line 1"));
    assert!(on_a["id"].is_string(), "{on_a}");
    assert_eq!(on_a["id"], on_b["id"], "one line, two ids");
    // Wendy's page loses its connection; the chat goes on; it comes back on the other node.
    drop(wendy);
    tess.expect_line("[*] wendy exited.");
    tess.send_line("line 2");
    tess.send_line("line 3");
    walt.expect("line 3 on b", |m| web_said(m, "tess", "line 3"));
    let mut back = WebClient::connect(b.addr());
    back.send(&json!({"type":"resume","after":{"": on_a["id"]}}));
    back.hello("wendy");
    let got = back.until_pong();
    let texts: Vec<&str> = (got.iter())
        .filter(|m| m["type"] == "chat")
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["line 2", "line 3"], "{got:#?}");
    assert!(got.iter().all(|m| m["type"] != "gap"), "{got:#?}");
}

#[test]
fn a_node_behind_past_what_the_log_keeps_cuts_its_users_off_and_stops_with_an_error() {
    let redis = RedisServer::start(false);
    let url = redis.url();
    // A lease longer than the stop (the node is not taken for gone), and a tiny log.
    let start = |name: &str| {
        TestServer::start(&[
            "--cluster",
            &url,
            "--node-name",
            name,
            "--cluster-lease-ms",
            "10000",
            "--cluster-log-max",
            "100",
            "--no-flood-control",
        ])
    };
    let mut a = start("a");
    let mut b = start("b");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    alice.expect_line("[*] bob entered.");
    a.signal(Signal::STOP);
    // Redis trims whole blocks of 100 entries: 300 entries take the log past what a read. The
    // lines go one at a time, each read by b before the next, so that each is an entry of its own
    // (lines waiting together in the writer share one) and b stays within the log.
    for i in 0..300 {
        bob.send_raw(format!("line {i}\n").as_bytes());
        let last = format!("bob > line {i}");
        b.expect_stdout(|l: &str| l.ends_with(&last), TIMEOUT);
    }
    let len = redis.command(&["XLEN", "chatd:log"]);
    let len: usize = len.trim_start_matches(':').trim().parse().unwrap();
    assert!(len < 300, "the log was not trimmed: {len} entries");
    a.signal(Signal::CONT);
    alice.expect_line(|l: &str| l.contains("lost its place in the chat's cluster"));
    assert!(alice.closed_within(TIMEOUT), "alice was not cut off");
    let status = a.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{status:?}");
    a.expect_stderr(
        |l: &str| l.contains("trimmed past what this node had read"),
        TIMEOUT,
    );
    // It left cleanly: alice is gone at once everywhere, its name free.
    bob.expect_line("[*] alice exited.");
    let (_again, welcomed) = try_join(&b, "alice");
    assert!(welcomed, "alice's name is still held");
}

/// Nodes a and b on `redis` whose writers queue at most 10 entries (with a lease longer than the
/// tests' stalls), alice on a and bob on b, each seeing the other.
fn alice_and_bob_past_a_writer_of_ten(
    redis: &RedisServer,
) -> (TestServer, TestServer, Client, Client) {
    let start = |name: &str| {
        TestServer::start(&[
            "--cluster",
            &redis.url(),
            "--node-name",
            name,
            "--cluster-lease-ms",
            "10000",
            "--cluster-queue-max",
            "10",
            "--no-flood-control",
        ])
    };
    let (a, b) = (start("a"), start("b"));
    let mut alice = a.join("alice");
    let bob = b.join("bob");
    alice.expect_line("[*] bob entered.");
    (a, b, alice, bob)
}

#[test]
fn a_burst_past_the_writer_s_bound_with_redis_answering_waits_and_loses_nothing() {
    let redis = RedisServer::start(false);
    let (_a, _b, mut alice, mut bob) = alice_and_bob_past_a_writer_of_ten(&redis);
    // Far more than the writer may queue, at once: alice's input waits for room instead of
    // being refused, so every line crosses, in order, once.
    const SENT: usize = 2000;
    let lines: String = (0..SENT).map(|i| format!("line {i}\n")).collect();
    alice.send_raw(lines.as_bytes());
    let got = chat_lines(&mut bob, &["alice"], SENT);
    let want: Vec<String> = (0..SENT).map(|i| format!("alice: line {i}")).collect();
    assert_eq!(got, want);
    let rest = alice.sync();
    assert!(
        rest.iter().all(|l| !l.starts_with("[!]")),
        "a line was refused: {rest:?}"
    );
}

#[test]
fn lines_past_the_writer_s_bound_while_redis_is_slow_are_refused_as_not_sent() {
    let redis = RedisServer::start(false);
    let (_a, _b, mut alice, mut bob) = alice_and_bob_past_a_writer_of_ten(&redis);
    // Redis stalls (well within the writer's reply timeout): its port is open, it answers
    // nothing, and what alice says waits in a's writer, at most 10 entries of it.
    redis.signal(Signal::STOP);
    const SENT: usize = 30;
    let lines: String = (0..SENT).map(|i| format!("line {i}\n")).collect();
    alice.send_raw(lines.as_bytes());
    // The first 10 wait; alice's input is held a moment (Redis answers nothing), then the
    // other 20 are refused.
    let mut refused = 0;
    while refused < SENT - 10 {
        let line = alice.next_line();
        if line.starts_with("[!] the chat is degraded: not sent") {
            refused += 1;
        }
    }
    redis.signal(Signal::CONT);
    // Those that waited go once Redis answers, in order, once each; nothing else came.
    let got = chat_lines(&mut bob, &["alice"], 10);
    let want: Vec<String> = (0..10).map(|i| format!("alice: line {i}")).collect();
    assert_eq!(got, want);
    let rest = bob.sync();
    assert!(
        rest.iter().all(|l| chat_text(l, "alice").is_none()),
        "{rest:?}"
    );
    let rest = alice.sync();
    assert!(
        rest.iter().all(|l| !l.starts_with("[!]")),
        "refused more than the bound says: {rest:?}"
    );
}

#[test]
fn an_entry_appended_twice_is_applied_once() {
    // What a writer does when Redis took an append but its answer never came: it sends the
    // entry again. Here the log gets a copy of alice's line, byte for byte.
    let redis = RedisServer::start(false);
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut alice = a.join("alice");
    let mut carol = a.join("carol");
    let mut bob = b.join("bob");
    alice.expect_line("[*] bob entered.");
    carol.expect_line("[*] bob entered.");
    alice.send_line("said once");
    bob.expect_line(chat_line("alice", "said once"));
    carol.expect_line(chat_line("alice", "said once"));
    let mut con = redis.connection();
    // The fields of the last entry, alice's line, as they are.
    let fields: Vec<(String, Vec<u8>)> = redis::cmd("XREVRANGE")
        .arg("chatd:log")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query::<redis::streams::StreamRangeReply>(&mut con)
        .expect("the log's last entry")
        .ids
        .into_iter()
        .flat_map(|entry| entry.map)
        .map(|(field, value)| {
            let bytes: Vec<u8> = redis::from_redis_value(value).expect("a value");
            (field, bytes)
        })
        .collect();
    assert!(!fields.is_empty(), "no entry in the log");
    let mut again = redis::cmd("XADD");
    again.arg("chatd:log").arg("*");
    for (field, value) in &fields {
        again.arg(field).arg(value);
    }
    let _: String = again.query(&mut con).expect("the copy appended");
    alice.send_line("said after");
    // Both nodes read the copy where the log has it, before the next line; neither shows it,
    // to a user of the other node (bob) or of alice's own (carol).
    for client in [&mut bob, &mut carol] {
        let seen = chat_lines(client, &["alice"], 1);
        assert_eq!(seen, ["alice: said after"], "the copy was applied");
    }
}

#[test]
fn a_login_sent_when_redis_stops_answering_is_welcomed_once() {
    // Redis holds every write for 3 s: carol's claim is sent and no answer comes within the
    // writer's 2 s, its fate unknown; the writer sends it again on a fresh connection, and she
    // is welcomed, once, where she was told the chat was degraded before.
    let redis = RedisServer::start(false);
    let a = node_with_lease(&redis, "a", "10000");
    let b = node_with_lease(&redis, "b", "10000");
    let mut bob = b.join("bob");
    bob.sync();
    let paused = redis.command(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    assert_eq!(paused, "+OK\r\n");
    let mut carol = Client::connect(a.addr());
    carol.send_line("carol");
    let answer = carol.expect_line(|l: &str| l.starts_with("[*] Welcome,") || l.starts_with("[!]"));
    assert!(answer.starts_with("[*] Welcome,"), "{answer}");
    bob.expect_line("[*] carol entered.");
    assert_eq!(redis.command(&["GET", "chatd:name:carol"]), "$1\r\na\r\n");
    carol.send_line("here once");
    bob.expect_line(chat_line("carol", "here once"));
    let rest = bob.sync();
    assert!(
        rest.iter().all(|l| !l.contains("carol entered")),
        "carol entered twice: {rest:?}"
    );
}

#[test]
fn a_claim_sent_again_after_it_took_the_name_answers_taken_by_it_without_a_second_entry() {
    // What the writer's second try of a claim whose answer never came meets in Redis.
    let redis = RedisServer::start(false);
    let mut con = redis.connection();
    let mut claim = |tag: u64| -> i64 {
        redis::cmd("EVAL")
            .arg(chatd::cluster::keys::CLAIM)
            .arg(3)
            .arg("chatd:name:zed")
            .arg("chatd:log")
            .arg(chatd::cluster::keys::claim_key("n1", "1-0", tag))
            .arg("n1")
            .arg(10_000)
            .arg("an entry")
            .arg(100)
            .query(&mut con)
            .expect("the claim's answer")
    };
    assert_eq!(claim(7), 1, "a free name is taken");
    assert_eq!(claim(7), 1, "the same claim again: it took the name");
    assert_eq!(claim(8), 0, "another claim of the name: taken");
    assert_eq!(redis.command(&["XLEN", "chatd:log"]), ":1\r\n");
}

#[test]
fn a_line_sent_when_redis_stops_answering_arrives_once_and_is_not_told_as_not_sent() {
    // Redis holds every write for 3 s: alice's line is sent, no answer comes within the
    // writer's 2 s, so a's connection counts as lost (the chat is degraded) with the line's fate
    // unknown; the writer sends it again on a fresh connection, and it arrives once.
    let redis = RedisServer::start(false);
    // A lease longer than the pause: the nodes keep their users.
    let a = node_with_lease(&redis, "a", "10000");
    let b = node_with_lease(&redis, "b", "10000");
    let mut alice = a.join("alice");
    let mut bob = b.join("bob");
    alice.expect_line("[*] bob entered.");
    let paused = redis.command(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    assert_eq!(paused, "+OK\r\n");
    alice.send_line("in flight");
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("[*] The chat is whole again"))
    {
        seen.push(alice.next_line());
    }
    assert!(
        seen.iter()
            .any(|l| l.starts_with("[!] The chat is degraded")),
        "the writer never gave up on its connection: {seen:?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains("not sent")),
        "alice was told her line was not sent: {seen:?}"
    );
    alice.send_line("after");
    assert_eq!(
        chat_lines(&mut bob, &["alice"], 2),
        ["alice: in flight", "alice: after"]
    );
    let rest = bob.sync();
    assert!(
        rest.iter().all(|l| chat_text(l, "alice").is_none()),
        "delivered twice: {rest:?}"
    );
}
