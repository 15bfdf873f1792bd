//! Accounts, roles, moderation and the full command set, against the real binary in text mode.

mod common;

use std::time::{Duration, Instant};

use common::{chat_line, Client, DataDir, TestServer, PROMPT, TIMEOUT};

/// Registers `name` with `password` through `/register` on a fresh connection, then quits.
fn register(server: &TestServer, name: &str, password: &str) {
    let mut client = server.join(name);
    client.send_line(&format!("/register {password}"));
    client.expect_line("[*] Your name is registered");
    client.send_line("/quit");
    client.expect_closed();
}

/// Logs in to a registered name; returns the client after the welcome.
fn login(server: &TestServer, name: &str, password: &str) -> Client {
    server.login(name, password)
}

/// `count` connections that gave the registered `name` and wait at its password prompt.
fn at_password_prompt(server: &TestServer, name: &str, count: usize) -> Vec<Client> {
    let mut clients: Vec<Client> = (0..count).map(|_| Client::connect(server.addr())).collect();
    for client in &mut clients {
        client.expect_line(|l: &str| l == PROMPT);
        client.send_line(name);
        client.expect_line(|l: &str| l == "Password:");
    }
    clients
}

/// `count` accounts `NAME0`, `NAME1`, ... with `NAME`'s password hash, so that many logins each
/// try a name of their own (one name from one address would have its checks held one by one);
/// written to the accounts file and read by the running server on SIGHUP.
fn accounts_like(data: &DataDir, server: &mut TestServer, name: &str, count: usize) -> Vec<String> {
    register(server, name, "pw");
    let path = data.path().join("accounts");
    let mut accounts = std::fs::read_to_string(&path).expect("the accounts file");
    let line = accounts
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .expect("the registered account")
        .to_owned();
    let names: Vec<String> = (0..count).map(|n| format!("{name}{n}")).collect();
    for other in &names {
        accounts.push_str(&line.replacen(name, other, 1));
        accounts.push('\n');
    }
    std::fs::write(&path, accounts).expect("write the accounts file");
    server.signal(rustix::process::Signal::HUP);
    drop(answer_to_name(server, &names[count - 1], "Password:"));
    names
}

/// A connection per name in `names`, each waiting at the password prompt of its name.
fn at_password_prompts(server: &TestServer, names: &[String]) -> Vec<Client> {
    names
        .iter()
        .map(|name| at_password_prompt(server, name, 1).remove(0))
        .collect()
}

/// Registers `name` and makes it an admin from the console.
fn admin(server: &mut TestServer, name: &str, password: &str) -> Client {
    register(server, name, password);
    server.console(&format!("GRANT {name} admin"));
    server.expect_stdout(format!("[*] {name} is now admin."), TIMEOUT);
    login(server, name, password)
}

#[test]
fn away_back_and_direct_messages_with_their_aliases() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    for (away, back) in [("/away lunch", "/back"), ("/busy lunch", "/free")] {
        bob.send_line(away);
        bob.expect_line("[*] You are marked away");
        alice.send_line("/users");
        assert_eq!(
            alice.expect_line("[*] Online ("),
            "[*] Online (3): alice, bob (away: lunch), carol"
        );
        for dm in ["/dm", "/msg", "/messageto"] {
            alice.send_line(&format!("{dm} BOB are you there?"));
            assert_eq!(
                alice.expect_line("[*] bob is away"),
                "[*] bob is away: lunch"
            );
            let got = bob.expect_line("[dm]");
            assert!(got.ends_with("] [dm] alice > are you there?"), "{got}");
        }
        bob.send_line(back);
        bob.expect_line("[*] You are back.");
    }
    alice.send_line("/dm bob back?");
    bob.expect_line(chat_line("[dm] alice", "back?"));
    let seen_by_carol = carol.sync();
    assert!(
        seen_by_carol.iter().all(|l| !l.contains("[dm]")),
        "carol saw a DM: {seen_by_carol:?}"
    );
    alice.send_line("/dm nobody hi");
    assert_eq!(
        alice.expect_line("[!]"),
        "[!] no user named nobody is online, and messages wait only for registered users: \
         yours was not kept"
    );
}

#[test]
fn whoami_time_ping_and_stats_answer_the_asker() {
    let server = TestServer::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    for whoami in ["/whoami", "/username"] {
        alice.send_line(whoami);
        assert_eq!(
            alice.expect_line("[*] You are"),
            "[*] You are alice (user, guest)."
        );
    }
    alice.send_line("/time");
    let time = alice.expect_line("[*] Server time: ");
    let words: Vec<&str> = time["[*] Server time: ".len()..].split(' ').collect();
    assert_eq!(words.len(), 4, "{time}");
    assert!(words[0].ends_with("day"), "weekday in {time}");
    assert_eq!(words[1].len(), 10, "date in {time}");
    assert_eq!(words[2].len(), 8, "time in {time}");
    assert!(
        words[3].starts_with("UTC+") || words[3].starts_with("UTC-"),
        "offset in {time}"
    );
    alice.send_line("/ping");
    assert!(alice
        .expect_line("[*] pong")
        .starts_with("[*] pong, server time "));
    alice.send_line("one");
    bob.expect_line(chat_line("alice", "one"));
    bob.send_line("/dm alice two");
    alice.expect_line(chat_line("[dm] bob", "two"));
    for stats in ["/stats", "/total"] {
        alice.send_line(stats);
        let line = alice.expect_line("[*] Messages relayed: ");
        assert!(
            line.starts_with("[*] Messages relayed: 2, users online: 2, uptime: 0d 00:00:"),
            "{line}"
        );
    }
}

#[test]
fn a_registered_name_needs_its_password_and_three_failures_close() {
    let server = TestServer::start(&[]);
    register(&server, "carol", "s3cret pass");
    let mut carol = login(&server, "carol", "s3cret pass");
    carol.send_line("/whoami");
    assert_eq!(
        carol.expect_line("[*] You are"),
        "[*] You are carol (user, registered)."
    );
    drop(carol);

    let mut guess = Client::connect(server.addr());
    guess.expect_line(|l: &str| l == PROMPT);
    for attempt in 1..=3 {
        guess.send_line("CAROL");
        guess.expect_line(|l: &str| l == "Password:");
        guess.send_line("wrong");
        if attempt < 3 {
            assert_eq!(guess.expect_line("[!]"), "[!] wrong password");
            guess.expect_line(|l: &str| l == PROMPT);
        }
    }
    assert_eq!(
        guess.expect_line("[!]"),
        "[!] too many wrong passwords, goodbye"
    );
    guess.expect_closed();
}

#[test]
fn lines_sent_before_the_password_is_checked_are_not_lost() {
    let server = TestServer::start(&[]);
    register(&server, "carol", "pw");
    let mut bob = server.join("bob");
    let mut carol = Client::connect(server.addr());
    carol.expect_line(|l: &str| l == PROMPT);
    carol.send_raw(b"carol\nwrong\ncarol\npw\nhello after login\n");
    assert_eq!(carol.expect_line("[!]"), "[!] wrong password");
    carol.expect_line("[*] Welcome, carol");
    bob.expect_line(chat_line("carol", "hello after login"));
}

#[test]
fn require_account_admits_registered_names_only() {
    let data = DataDir::new();
    {
        let server = TestServer::start_on(&data, &[]);
        register(&server, "carol", "pw");
    }
    let server = TestServer::start_on(&data, &["--require-account"]);
    let mut guest = Client::connect(server.addr());
    guest.expect_line(|l: &str| l == PROMPT);
    guest.send_line("guest");
    assert!(guest
        .expect_line("[!]")
        .starts_with("[!] this server is for registered users only"));
    guest.expect_line(|l: &str| l == PROMPT);
    login(&server, "carol", "pw");
}

#[test]
fn registration_can_be_turned_off() {
    let server = TestServer::start(&["--no-register"]);
    let mut carol = server.join("carol");
    carol.send_line("/register pw");
    assert_eq!(
        carol.expect_line("[!]"),
        "[!] registration is closed on this server"
    );
}

#[test]
fn help_shows_admin_commands_to_admins_only() {
    let mut server = TestServer::start(&[]);
    let mut boss = admin(&mut server, "boss", "pw");
    let mut user = server.join("user");
    user.send_line("/help");
    let help = user.sync();
    assert!(help.iter().any(|l| l.contains("/dm NAME TEXT")), "{help:?}");
    assert!(
        !help
            .iter()
            .any(|l| l.contains("/kick") || l.contains("/ban")),
        "{help:?}"
    );
    boss.send_line("/help");
    let help = boss.sync();
    for admin_command in [
        "/kick NAME",
        "/ban NAME",
        "/unban NAME",
        "/bans",
        "/grant NAME",
    ] {
        assert!(
            help.iter().any(|l| l.contains(admin_command)),
            "{admin_command} missing: {help:?}"
        );
    }
}

#[test]
fn users_may_not_moderate_and_admins_may() {
    let mut server = TestServer::start(&[]);
    let mut boss = admin(&mut server, "boss", "pw");
    let mut eve = server.join("eve");
    let mut bob = server.join("bob");
    for command in [
        "/kick bob",
        "/kickuser bob",
        "/ban bob",
        "/unban bob",
        "/bans",
        "/viewkickusers",
        "/grant bob admin",
        "/changegrant bob 1",
    ] {
        eve.send_line(command);
        assert_eq!(eve.expect_line("[!]"), "[!] permission denied", "{command}");
    }
    boss.send_line("/kickuser eve be nice");
    assert_eq!(
        eve.expect_line("[!]"),
        "[!] You have been kicked out by boss. (be nice)"
    );
    eve.expect_closed();
    bob.expect_line("[*] eve has been kicked out. (be nice)");
    server.expect_stdout("[*] eve has been kicked out. (be nice)", TIMEOUT);
}

#[test]
fn grant_changes_a_registered_users_role_at_once() {
    let mut server = TestServer::start(&[]);
    let mut boss = admin(&mut server, "boss", "pw");
    register(&server, "bob", "pw");
    let mut bob = login(&server, "bob", "pw");
    let mut guest = server.join("guest");
    boss.send_line("/grant guest admin");
    assert_eq!(
        boss.expect_line("[!]"),
        "[!] guest is not a registered name"
    );
    boss.send_line("/changegrant bob 1");
    assert_eq!(boss.expect_line("[*] bob is"), "[*] bob is now admin.");
    assert_eq!(bob.expect_line("made you"), "[*] boss made you admin.");
    bob.send_line("/kick guest");
    guest.expect_line("[!] You have been kicked out by bob.");
    boss.send_line("/grant bob user");
    bob.expect_line("[*] boss made you user.");
    bob.send_line("/bans");
    assert_eq!(bob.expect_line("[!]"), "[!] permission denied");
}

#[test]
fn bans_are_listed_lifted_and_survive_a_restart() {
    let data = DataDir::new();
    {
        let mut server = TestServer::start_on(&data, &[]);
        let mut boss = admin(&mut server, "boss", "pw");
        let mut eve = server.join("eve");
        boss.send_line("/ban eve spamming");
        assert_eq!(boss.expect_line("[*] eve is"), "[*] eve is banned.");
        assert_eq!(
            eve.next_line(),
            "[*] You have been banned by boss (spamming): the name eve is refused here from now on.",
            "told it is a ban, and why, before the kick"
        );
        assert_eq!(
            eve.expect_line("[!]"),
            "[!] You have been kicked out by boss. (spamming)"
        );
        eve.expect_closed();
        server.console("BAN mallory");
        server.expect_stdout("[*] mallory is banned.", TIMEOUT);
        for bans in ["/bans", "/viewkickusers"] {
            boss.send_line(bans);
            assert_eq!(boss.expect_line("[*] Bans"), "[*] Bans (2):");
            let first = boss.expect_line("[*]   ");
            assert!(
                first.starts_with("[*]   eve banned by boss on ") && first.ends_with(" (spamming)"),
                "{first}"
            );
            let second = boss.expect_line("[*]   ");
            assert!(
                second.starts_with("[*]   mallory banned by Host on "),
                "{second}"
            );
        }
        server.console("EXIT");
        assert!(server.wait_exit(TIMEOUT).success());
    }
    let mut server = TestServer::start_on(&data, &[]);
    let mut eve = Client::connect(server.addr());
    eve.expect_line(|l: &str| l == PROMPT);
    eve.send_line("EVE");
    assert_eq!(
        eve.expect_line("[!]"),
        "[!] the name EVE is banned here: spamming"
    );
    server.console("BANS");
    server.expect_stdout("[*] Bans (2):", TIMEOUT);
    server.console("UNBAN eve");
    server.expect_stdout("[*] eve is no longer banned.", TIMEOUT);
    eve.expect_line(|l: &str| l == PROMPT);
    eve.send_line("eve");
    eve.expect_line("[*] Welcome, eve");
}

#[test]
fn server_like_names_are_reserved_unless_registered() {
    let server = TestServer::start(&[]);
    let mut client = Client::connect(server.addr());
    client.expect_line(|l: &str| l == PROMPT);
    for name in [
        "admin", "Server", "ROOT", "system", "console", "operator", "host",
    ] {
        client.send_line(name);
        assert_eq!(
            client.expect_line("[!]"),
            "[!] name reserved for the server",
            "{name}"
        );
        client.expect_line(|l: &str| l == PROMPT);
    }
}

#[test]
fn history_is_shown_on_joining_and_can_be_turned_off() {
    let server = TestServer::start(&["--history", "3"]);
    let mut alice = server.join("alice");
    for n in 1..=5 {
        alice.send_line(&format!("line {n}"));
    }
    alice.send_line("/dm alice private");
    alice.sync();
    let mut bob = Client::connect(server.addr());
    bob.join("bob");
    for n in 3..=5 {
        let line = bob.next_line();
        assert!(
            line.ends_with(&format!("] [history] alice > line {n}")),
            "{line}"
        );
    }
    let rest = bob.sync();
    assert!(rest.iter().all(|l| !l.contains("[history]")), "{rest:?}");

    let server = TestServer::start(&["--history", "0"]);
    let mut alice = server.join("alice");
    alice.send_line("said before");
    alice.sync();
    let mut bob = server.join("bob");
    let seen = bob.sync();
    assert!(seen.iter().all(|l| !l.contains("said before")), "{seen:?}");
}

#[test]
fn chat_flows_while_logins_are_being_verified() {
    const LOGINS: usize = 12;
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &[]);
    let names = accounts_like(&data, &mut server, "carol", LOGINS);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut logins = at_password_prompts(&server, &names);
    // Every password goes in at once: the worker hashes them one after another.
    for client in &mut logins {
        client.send_line("wrong");
    }
    let sent = Instant::now();
    alice.send_line("are you there?");
    bob.expect_line(chat_line("alice", "are you there?"));
    let latency = sent.elapsed();
    // Had the loop hashed the passwords itself, this line would wait behind all of them.
    let mut still_checking = 0;
    for client in &mut logins {
        assert_eq!(client.expect_line("[!]"), "[!] wrong password");
        still_checking += usize::from(sent.elapsed() > latency);
    }
    assert!(
        still_checking > 0,
        "the chat line ({latency:?}) should arrive before the last of {LOGINS} password checks"
    );
    eprintln!("chat line delivered in {latency:?} while {LOGINS} password checks were queued");
    assert!(latency < Duration::from_secs(5));
}

#[test]
fn a_kill_during_a_burst_of_registrations_leaves_a_readable_store() {
    const CLIENTS: usize = 24;
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &[]);
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|n| server.join(&format!("user{n}")))
        .collect();
    for client in &mut clients {
        client.send_line("/register pw");
    }
    // Kill the server while the registrations are being hashed and written.
    let mut confirmed = Vec::new();
    for (n, client) in clients.iter_mut().enumerate().take(CLIENTS / 2) {
        client.expect_line("[*] Your name is registered");
        confirmed.push(format!("user{n}"));
    }
    server.signal(rustix::process::Signal::KILL);
    let status = server.wait_exit(TIMEOUT);
    assert!(!status.success(), "killed, not exited: {status:?}");
    let accounts =
        std::fs::read_to_string(data.path().join("accounts")).expect("the accounts file exists");
    for name in &confirmed {
        assert!(
            accounts
                .lines()
                .any(|l| l.starts_with(&format!("{name} user $argon2id$"))),
            "{name} lost:\n{accounts}"
        );
    }
    // Whatever the moment of the kill, the store reads back whole.
    let restarted = TestServer::start_on(&data, &[]);
    login(&restarted, &confirmed[0], "pw");
}

/// Runs `chatd user --data-dir DATA ARGS` with `stdin` as its input; returns its exit status.
fn user_tool(data: &DataDir, args: &[&str], stdin: &str) -> std::process::ExitStatus {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args(["user", "--data-dir", data.arg()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chatd user");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .expect("write the password");
    }
    child.wait().expect("wait for chatd user")
}

/// Asks for `name` on a fresh connection until the answer is `wanted` (the server rereads the
/// account files every 2 s); fails after `TIMEOUT`.
fn answer_to_name(server: &TestServer, name: &str, wanted: &str) -> Client {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut client = Client::connect(server.addr());
        client.expect_line(|l: &str| l == PROMPT);
        client.send_line(name);
        let answer = client.next_line();
        if answer.starts_with(wanted) {
            return client;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still gets {answer:?}, not {wanted:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_offline_tool_changes_reach_a_running_server() {
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &[]);
    // Picked up on its own, within a few seconds.
    assert!(user_tool(&data, &["add", "dave"], "dave pw\n").success());
    let mut dave = answer_to_name(&server, "dave", "Password:");
    dave.send_line("dave pw");
    dave.expect_line("[*] Welcome, dave");
    // Picked up at once on SIGHUP: a role change applies to a user online.
    assert!(user_tool(&data, &["grant", "dave", "admin"], "").success());
    server.signal(rustix::process::Signal::HUP);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        dave.send_line("/whoami");
        let me = dave.expect_line("[*] You are");
        if me == "[*] You are dave (admin, registered)." {
            break;
        }
        assert!(Instant::now() < deadline, "still {me}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A deleted account is a guest name again.
    assert!(user_tool(&data, &["del", "dave"], "").success());
    server.signal(rustix::process::Signal::HUP);
    drop(dave);
    answer_to_name(&server, "dave", "[*] Welcome, dave");
    // And the server's own changes land in the same files the tool reads.
    let mut eve = server.join("eve");
    eve.send_line("/register eve pw");
    eve.expect_line("[*] Your name is registered");
    let accounts = std::fs::read_to_string(data.path().join("accounts")).expect("accounts file");
    assert!(
        accounts
            .lines()
            .any(|l| l.starts_with("eve user $argon2id$v=19$m=19456,t=2,p=1$")),
        "{accounts}"
    );
    assert!(
        !accounts.contains("eve pw"),
        "a password in clear: {accounts}"
    );
}

#[test]
fn a_corrupt_store_stops_start_up_naming_the_file_and_line() {
    use std::process::{Command, Stdio};
    let data = DataDir::new();
    std::fs::write(
        data.path().join("accounts"),
        "# header\nalice admin $argon2id$x\nbob wizard $argon2id$y\n",
    )
    .expect("write a corrupt accounts file");
    let output = Command::new(env!("CARGO_BIN_EXE_chatd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir", data.arg()])
        .stdin(Stdio::null())
        .output()
        .expect("run chatd");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("accounts") && stderr.contains("line 3"),
        "{stderr}"
    );
    let kept = std::fs::read_to_string(data.path().join("accounts")).expect("still there");
    assert!(
        kept.contains("bob wizard"),
        "the corrupt file was replaced: {kept}"
    );
}

#[test]
fn a_registration_never_replaces_an_account_added_offline_meanwhile() {
    let data = DataDir::new();
    let server = TestServer::start_on(&data, &[]);
    let mut frank = server.join("frank");
    assert!(user_tool(&data, &["add", "frank"], "operator pw\n").success());
    frank.send_line("/register guest pw");
    assert!(frank
        .expect_line("[!]")
        .starts_with("[!] your name is registered already"));
    drop(frank);
    let mut frank = answer_to_name(&server, "frank", "Password:");
    frank.send_line("operator pw");
    frank.expect_line("[*] Welcome, frank");
}

/// Gives `name` and `password` on a fresh connection; returns the lines from the password on up
/// to the answer (a refusal or the welcome), and how long the answer took.
fn try_login(server: &TestServer, name: &str, password: &str) -> (Client, Vec<String>, Duration) {
    let mut client = Client::connect(server.addr());
    client.expect_line(|l: &str| l == PROMPT);
    client.send_line(name);
    client.expect_line(|l: &str| l == "Password:");
    client.send_line(password);
    let sent = Instant::now();
    let mut lines = Vec::new();
    loop {
        let line = client.next_line();
        let answer = line.starts_with("[!]") || line.starts_with("[*] Welcome");
        lines.push(line);
        if answer {
            return (client, lines, sent.elapsed());
        }
    }
}

/// The notice a held password check gets.
fn held_for(secs: u64) -> String {
    format!(
        "[*] Failed logins to this name from your address lately: your password is checked in {secs} s."
    )
}

#[test]
fn one_persons_typos_never_keep_another_out_behind_the_same_address() {
    let mut server = TestServer::start(&[]);
    register(&server, "alice", "a pw");
    register(&server, "bob", "b pw");
    drop(admin(&mut server, "boss", "boss pw"));
    // Everyone here comes from 127.0.0.1, as a class behind one NAT does.
    let (_, lines, _) = try_login(&server, "alice", "typo");
    assert_eq!(lines, ["[!] wrong password"]);
    for _ in 0..2 {
        let (_, lines, _) = try_login(&server, "bob", "typo");
        assert_eq!(lines.last().map(String::as_str), Some("[!] wrong password"));
    }
    let (mut boss, lines, took) = try_login(&server, "boss", "boss pw");
    assert_eq!(lines.len(), 1, "no hold, no refusal: {lines:?}");
    assert!(lines[0].starts_with("[*] Welcome, boss!"), "{lines:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    boss.send_line("/whoami");
    boss.expect_line("[*] You are boss (admin, registered).");
}

#[test]
fn a_name_failing_from_one_address_is_held_longer_each_time_but_its_password_still_works() {
    let server = TestServer::start(&[]);
    register(&server, "carol", "pw");
    let (_, lines, _) = try_login(&server, "carol", "guess 1");
    assert_eq!(
        lines,
        ["[!] wrong password"],
        "the first is checked at once"
    );
    // Each hold runs from the last failure, which the previous answer reports.
    let mut failed_at = Instant::now();
    for (guess, secs) in [("guess 2", 1), ("guess 3", 2)] {
        let (_, lines, _) = try_login(&server, "carol", guess);
        let gap = failed_at.elapsed();
        failed_at = Instant::now();
        assert_eq!(lines, [held_for(secs), "[!] wrong password".to_owned()]);
        let least = Duration::from_secs(secs) - Duration::from_millis(50);
        assert!(
            gap >= least,
            "{guess}: answered {gap:?} after the last failure"
        );
    }
    // Held, never refused: the right password gets in once the hold is over.
    let (_, lines, _) = try_login(&server, "carol", "pw");
    let gap = failed_at.elapsed();
    assert_eq!(lines[0], held_for(4));
    assert!(lines[1].starts_with("[*] Welcome, carol!"), "{lines:?}");
    assert!(gap >= Duration::from_millis(3950), "{gap:?}");
}

#[test]
fn past_thirty_two_queued_password_checks_a_login_is_told_to_try_again() {
    const LOGINS: usize = 40;
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &[]);
    let names = accounts_like(&data, &mut server, "carol", LOGINS);
    let mut logins = at_password_prompts(&server, &names);
    // All at once: at most 32 wait for the worker; the rest are refused at once, unhashed.
    for client in &mut logins {
        client.send_line("wrong");
    }
    let answers: Vec<String> = logins.iter_mut().map(|c| c.expect_line("[!]")).collect();
    let busy = answers
        .iter()
        .filter(|a| *a == "[!] busy, try again")
        .count();
    assert!(busy >= LOGINS - 32, "{busy} told to try again: {answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a == "[!] busy, try again" || a == "[!] wrong password"),
        "{answers:?}"
    );
}

#[test]
fn passwd_alone_changes_a_password_with_spaces_asking_for_each_behind_the_password_prompt() {
    let server = TestServer::start(&[]);
    let mut carol = server.join("carol");
    carol.send_line("/register my secret phrase");
    carol.expect_line("[*] Your name is registered");
    // The one-line form splits at the first space, so it cannot take this password.
    carol.send_line("/passwd my secret phrase newer");
    assert_eq!(carol.expect_line("[!]"), "[!] wrong password");
    carol.send_line("/passwd");
    let asked = [
        "[*] Changing your password: your current password? (an empty line cancels)",
        "Password:",
    ];
    assert_eq!([carol.next_line(), carol.next_line()], asked);
    carol.send_line("my secret phrase");
    assert_eq!(
        [carol.next_line(), carol.next_line()],
        ["[*] Your new password?", "Password:"]
    );
    carol.send_line("a newer secret phrase");
    assert_eq!(
        [carol.next_line(), carol.next_line()],
        ["[*] Your new password once more?", "Password:"]
    );
    carol.send_line("a newer secret phrase");
    assert_eq!(carol.next_line(), "[*] Your password is changed.");
    // A mistyped confirmation changes nothing; an empty line cancels.
    carol.send_line("/passwd");
    carol.send_line("a newer secret phrase");
    carol.send_line("x y");
    carol.send_line("x z");
    assert_eq!(
        carol.expect_line("[!]"),
        "[!] the two new passwords differ: your password is unchanged"
    );
    carol.send_line("/passwd");
    carol.send_line("");
    carol.expect_line("[*] Password change cancelled: your password is unchanged.");
    drop(carol);
    drop(login(&server, "carol", "a newer secret phrase"));
    let (_, lines, _) = try_login(&server, "carol", "my secret phrase");
    assert_eq!(lines.last().map(String::as_str), Some("[!] wrong password"));
}

#[test]
fn admins_cannot_ban_themselves_nor_leave_the_server_without_an_admin() {
    let mut server = TestServer::start(&[]);
    let mut boss = admin(&mut server, "boss", "pw");
    boss.send_line("/ban Boss");
    assert_eq!(boss.expect_line("[!]"), "[!] you cannot ban yourself");
    boss.send_line("/grant boss user");
    assert_eq!(
        boss.expect_line("[!]"),
        "[!] boss is the last admin: make someone else admin first"
    );
    boss.send_line("/whoami");
    boss.expect_line("[*] You are boss (admin, registered).");
    register(&server, "ann", "pw");
    boss.send_line("/grant ann admin");
    boss.expect_line("[*] ann is now admin.");
    boss.send_line("/grant boss user");
    boss.expect_line("[*] boss is now user.");
}

#[test]
fn the_right_password_takes_over_a_name_held_by_a_lost_session() {
    let server = TestServer::start(&[]);
    register(&server, "alice", "alice pw");
    let mut bob = server.join("bob");
    // The old session: its laptop changed networks, so it never answers again.
    let mut lost = login(&server, "alice", "alice pw");
    bob.expect_line("[*] alice entered.");
    let (_, lines, _) = try_login(&server, "alice", "not it");
    assert_eq!(lines, ["[!] wrong password"], "a wrong one takes nothing");
    let (mut alice, lines, took) = try_login(&server, "ALICE", "alice pw");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("[*] Welcome, alice!")),
        "{lines:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    let told = lost.expect_closed();
    assert_eq!(
        told.first().map(String::as_str),
        Some("[*] You logged in to your name from another connection: this one closes."),
        "{told:?}"
    );
    bob.expect_line("[*] alice exited. (logged in again from another connection)");
    bob.expect_line("[*] alice entered.");
    alice.send_line("hello again");
    bob.expect_line(chat_line("alice", "hello again"));
    // A guest's name is not taken over: there is no password to prove it.
    let mut other = Client::connect(server.addr());
    other.expect_line(|l: &str| l == PROMPT);
    other.send_line("bob");
    assert_eq!(
        other.expect_line("[!]"),
        "[!] name taken: someone online already uses it"
    );
}

#[test]
fn an_address_failing_for_twenty_names_is_refused_a_further_one_but_not_its_own_names() {
    let data = DataDir::new();
    let mut server = TestServer::start_on(&data, &[]);
    let names = accounts_like(&data, &mut server, "user", 21);
    for name in &names[..20] {
        let (_, lines, _) = try_login(&server, name, "guess");
        assert_eq!(
            lines,
            ["[!] wrong password"],
            "{name}: each checked at once"
        );
    }
    let (_, lines, took) = try_login(&server, &names[20], "pw");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let wait = lines[0]
        .strip_prefix("[!] too many accounts failed from your address lately: try again in ")
        .and_then(|rest| rest.strip_suffix(" s"))
        .and_then(|secs| secs.parse::<u64>().ok());
    assert!(
        wait.is_some_and(|secs| (880..=900).contains(&secs)),
        "{lines:?}"
    );
    assert!(took < Duration::from_secs(1), "refused unchecked: {took:?}");
    // A name it failed for is not refused: at most held (its 1 s may be over already), and its
    // right password still works.
    let (_, lines, _) = try_login(&server, &names[19], "pw");
    let (welcome, before) = lines.split_last().expect("an answer");
    assert!(welcome.starts_with("[*] Welcome, user19!"), "{lines:?}");
    assert!(before.is_empty() || before == [held_for(1)], "{lines:?}");
}
