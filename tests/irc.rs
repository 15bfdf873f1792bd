//! IRC clients in the same chat, against the real binary: the exchanges irssi and WeeChat make
//! (registration with and without CAP, PASS and SASL PLAIN; the queries that follow a JOIN),
//! messages between IRC, text (nc) and framed users, kicks, away, quit, and the error numerics.
//! Lines are asserted exactly, as RFC 2812 and the Modern IRC documentation give them.

mod common;
mod framed_common;

use std::net::SocketAddr;

use common::{Client, DataDir, TestServer};

const SERVER: &str = "irc.test";

/// What `CAP LS 302` offers.
const CAPS: &str = "away-notify batch cap-notify draft/chathistory echo-message message-tags \
                    multi-prefix sasl=PLAIN server-time";

fn start(extra: &[&str]) -> TestServer {
    let mut args = vec!["--server-name", SERVER];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

/// Reads the next lines, asserting each is exactly the one given.
#[track_caller]
fn lines(client: &mut Client, expected: &[&str]) {
    for want in expected {
        let got = client.next_line();
        assert_eq!(&got, want, "lines so far: {:#?}", client.history_lines());
    }
}

/// Skips lines until one is exactly `want`.
#[track_caller]
fn until(client: &mut Client, want: &str) {
    let want = want.to_owned();
    client.expect_line(move |l: &str| l == want);
}

/// The registration burst for `nick`, from 001 to the end of the default room's names, the
/// names being `names`; `online` users in all.
#[track_caller]
fn burst(client: &mut Client, nick: &str, online: usize, names: &str) {
    lines(
        client,
        &[&format!(
            ":{SERVER} 001 {nick} :Welcome to the {SERVER} IRC Network {nick}!{nick}@chatd"
        )],
    );
    lines(
        client,
        &[&format!(
            ":{SERVER} 002 {nick} :Your host is {SERVER}, running version chatd-{}",
            env!("CARGO_PKG_VERSION")
        )],
    );
    let created = client.next_line();
    assert!(
        created.starts_with(&format!(":{SERVER} 003 {nick} :This server was created 20")),
        "{created}"
    );
    lines(
        client,
        &[
            &format!(
                ":{SERVER} 004 {nick} {SERVER} chatd-{} o bnot bo",
                env!("CARGO_PKG_VERSION")
            ),
            &format!(
                ":{SERVER} 005 {nick} AWAYLEN=390 CASEMAPPING=ascii CHANMODES=b,,,nt CHANNELLEN=33 \
                 CHANTYPES=# CHATHISTORY=200 MSGREFTYPES=msgid,timestamp NICKLEN=32 PREFIX=(o)@ \
                 TOPICLEN=390 NETWORK={SERVER} :are supported by this server"
            ),
            &format!(":{SERVER} 251 {nick} :There are {online} users and 0 invisible on 1 servers"),
            &format!(":{SERVER} 255 {nick} :I have {online} clients and 0 servers"),
            &format!(":{SERVER} 422 {nick} :MOTD File is missing"),
            &format!(":{nick}!{nick}@chatd JOIN #lobby"),
            &format!(":{SERVER} 353 {nick} = #lobby :{names}"),
            &format!(":{SERVER} 366 {nick} #lobby :End of /NAMES list"),
        ],
    );
}

/// Connects and registers as irssi does without CAP: NICK, then USER.
fn register(addr: SocketAddr, nick: &str, online: usize, names: &str) -> Client {
    let mut client = Client::connect(addr);
    client.send_raw(format!("NICK {nick}\r\nUSER {nick} {nick} localhost :{nick}\r\n").as_bytes());
    burst(&mut client, nick, online, names);
    client
}

/// A WHOIS's 317 for `nick` asked by `me`: idle seconds (a few at most here) and a signon time.
#[track_caller]
fn idle_line(client: &mut Client, me: &str, nick: &str) {
    let line = client.next_line();
    let rest = line
        .strip_prefix(&format!(":{SERVER} 317 {me} {nick} "))
        .and_then(|r| r.strip_suffix(" :seconds idle, signon time"))
        .unwrap_or_else(|| panic!("not a 317: {line}"));
    let (idle, signon) = rest.split_once(' ').expect("idle and signon");
    assert!(idle.parse::<u64>().is_ok_and(|s| s < 60), "{line}");
    assert!(
        signon.parse::<i64>().is_ok_and(|s| s > 1_700_000_000),
        "{line}"
    );
}

/// A registered guest: sends a PING and waits for its PONG, so everything before has arrived.
#[track_caller]
fn sync(client: &mut Client) {
    client.send_raw(b"PING :sync\r\n");
    until(client, &format!(":{SERVER} PONG {SERVER} :sync"));
}

#[test]
fn a_client_without_cap_registers_with_nick_and_user_and_is_in_the_default_room() {
    let server = start(&[]);
    let mut alice = register(server.addr(), "alice", 1, "alice");
    sync(&mut alice);
    // A text user sees the IRC user as anyone else.
    let mut bob = server.join("bob");
    until(&mut alice, ":bob!bob@chatd JOIN #lobby");
    bob.send_line("hello irc");
    lines(&mut alice, &[":bob!bob@chatd PRIVMSG #lobby :hello irc"]);
    alice.send_raw(b"PRIVMSG #lobby :hello text\r\n");
    bob.expect_line(common::chat_line("alice", "hello text"));
}

#[test]
fn weechat_negotiates_caps_and_registers_at_cap_end() {
    let server = start(&[]);
    let mut c = Client::connect(server.addr());
    c.send_raw(b"CAP LS 302\r\nNICK wee\r\nUSER wee 0 * :WeeChat user\r\n");
    lines(&mut c, &[&format!(":{SERVER} CAP * LS :{CAPS}")]);
    c.send_raw(b"CAP REQ :multi-prefix server-time extended-join\r\n");
    lines(
        &mut c,
        &[&format!(
            ":{SERVER} CAP wee NAK :multi-prefix server-time extended-join"
        )],
    );
    c.send_raw(b"CAP REQ :multi-prefix server-time\r\nCAP LIST\r\nCAP END\r\n");
    lines(
        &mut c,
        &[
            &format!(":{SERVER} CAP wee ACK :multi-prefix server-time"),
            &format!(":{SERVER} CAP wee LIST :cap-notify multi-prefix server-time"),
        ],
    );
    burst(&mut c, "wee", 1, "wee");
    // server-time: a line from a text user carries its time and id.
    let mut bob = server.join("bob");
    bob.send_line("tagged");
    let line = c.expect_line("PRIVMSG #lobby :tagged");
    assert!(
        line.starts_with("@time=20")
            && line.contains(";msgid=")
            && line.ends_with(":bob!bob@chatd PRIVMSG #lobby :tagged"),
        "{line}"
    );
}

#[test]
fn before_registration_only_registration_commands_work() {
    let server = start(&[]);
    let mut c = Client::connect(server.addr());
    c.send_raw(b"NICK early\r\nJOIN #lobby\r\nPRIVMSG #lobby :hi\r\nPING :x\r\nNICK\r\nUSER a\r\n");
    lines(
        &mut c,
        &[
            &format!(":{SERVER} 451 early :You have not registered"),
            &format!(":{SERVER} 451 early :You have not registered"),
            &format!(":{SERVER} PONG {SERVER} :x"),
            &format!(":{SERVER} 431 early :No nickname given"),
            &format!(":{SERVER} 461 early USER :Not enough parameters"),
        ],
    );
    c.send_raw(b"USER early 0 * :\r\n");
    lines(
        &mut c,
        &[&format!(":{SERVER} 461 early USER :Not enough parameters")],
    );
    c.send_raw(b"USER early 0 * :Early\r\n");
    burst(&mut c, "early", 1, "early");
    c.send_raw(b"USER early 0 * :again\r\nPASS x\r\n");
    lines(
        &mut c,
        &[
            &format!(":{SERVER} 462 early :You may not reregister"),
            &format!(":{SERVER} 462 early :You may not reregister"),
        ],
    );
}

#[test]
fn a_taken_or_invalid_nick_is_refused_the_irc_way_and_another_registers() {
    let server = start(&[]);
    let _bob = server.join("bob");
    let mut c = Client::connect(server.addr());
    c.send_raw(b"NICK BOB\r\nUSER b 0 * :B\r\n");
    lines(
        &mut c,
        &[&format!(":{SERVER} 433 * BOB :Nickname is already in use")],
    );
    c.send_raw(b"NICK b[o]b\r\n");
    let line = c.next_line();
    assert!(
        line.starts_with(&format!(
            ":{SERVER} 432 * b[o]b :Erroneous nickname: invalid name"
        )),
        "{line}"
    );
    c.send_raw(b"NICK bob_\r\n");
    burst(&mut c, "bob_", 2, "bob bob_");
}

fn with_account(name: &str, password: &str) -> DataDir {
    let data = DataDir::new();
    common::add_user(&data, name, password);
    data
}

#[test]
fn sasl_plain_logs_in_to_an_account_and_a_wrong_password_fails_with_904() {
    let data = with_account("carol", "s3cret pass");
    let server = TestServer::start_on(&data, &["--server-name", SERVER]);
    let plain = |user: &str, pass: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{user}\0{user}\0{pass}"))
    };
    // WeeChat's exchange, with a wrong password first.
    let mut c = Client::connect(server.addr());
    c.send_raw(b"CAP LS 302\r\nNICK carol\r\nUSER carol 0 * :Carol\r\nCAP REQ :sasl\r\n");
    lines(
        &mut c,
        &[
            &format!(":{SERVER} CAP * LS :{CAPS}"),
            &format!(":{SERVER} CAP carol ACK :sasl"),
        ],
    );
    c.send_raw(b"AUTHENTICATE PLAIN\r\n");
    lines(&mut c, &["AUTHENTICATE +"]);
    c.send_raw(format!("AUTHENTICATE {}\r\n", plain("carol", "wrong")).as_bytes());
    until(
        &mut c,
        &format!(":{SERVER} 904 carol :SASL authentication failed"),
    );
    c.send_raw(b"AUTHENTICATE PLAIN\r\n");
    lines(&mut c, &["AUTHENTICATE +"]);
    c.send_raw(format!("AUTHENTICATE {}\r\n", plain("carol", "s3cret pass")).as_bytes());
    lines(
        &mut c,
        &[
            &format!(
                ":{SERVER} NOTICE carol :Failed logins to this name from your address lately: \
                 your password is checked in 1 s."
            ),
            &format!(":{SERVER} 900 carol carol!carol@chatd carol :You are now logged in as carol"),
            &format!(":{SERVER} 903 carol :SASL authentication successful"),
        ],
    );
    c.send_raw(b"CAP END\r\n");
    burst(&mut c, "carol", 1, "carol");
}

#[test]
fn pass_logs_in_to_a_registered_nick_and_a_registered_nick_without_it_is_asked() {
    let data = with_account("dave", "pw-of-dave");
    let server = TestServer::start_on(&data, &["--server-name", SERVER]);
    // irssi with a server password: PASS before NICK and USER.
    let mut c = Client::connect(server.addr());
    c.send_raw(b"PASS pw-of-dave\r\nNICK dave\r\nUSER dave dave localhost :Dave\r\n");
    burst(&mut c, "dave", 1, "dave");
    c.send_raw(b"QUIT\r\n");
    c.expect_closed();

    let mut wrong = Client::connect(server.addr());
    wrong.send_raw(b"PASS nope\r\nNICK dave\r\nUSER dave 0 * :Dave\r\n");
    lines(
        &mut wrong,
        &[
            &format!(":{SERVER} NOTICE dave :wrong password"),
            &format!(":{SERVER} 464 dave :Password incorrect"),
        ],
    );

    let mut asked = Client::connect(server.addr());
    asked.send_raw(b"NICK dave\r\nUSER dave 0 * :Dave\r\n");
    let notice = asked.next_line();
    assert!(
        notice.starts_with(&format!(":{SERVER} NOTICE dave :This name is registered")),
        "{notice}"
    );
    asked.send_raw(b"PASS pw-of-dave\r\n");
    // The wrong password before makes the server wait a second before it checks.
    lines(
        &mut asked,
        &[&format!(
            ":{SERVER} NOTICE dave :Failed logins to this name from your address lately: \
             your password is checked in 1 s."
        )],
    );
    burst(&mut asked, "dave", 1, "dave");
}

#[test]
fn a_join_and_the_queries_clients_send_after_it() {
    let server = start(&[]);
    let mut alice = register(server.addr(), "alice", 1, "alice");
    let mut bob = server.join("bob");
    until(&mut alice, ":bob!bob@chatd JOIN #lobby");
    // The first to join an ad-hoc room moderates it: '@'.
    alice.send_raw(b"JOIN #dev\r\n");
    lines(
        &mut alice,
        &[
            ":alice!alice@chatd JOIN #dev",
            &format!(":{SERVER} 353 alice = #dev :@alice"),
            &format!(":{SERVER} 366 alice #dev :End of /NAMES list"),
        ],
    );
    bob.send_line("/join #dev");
    lines(&mut alice, &[":bob!bob@chatd JOIN #dev"]);
    // irssi's queries after a join; WeeChat's are the same with `MODE #dev b`.
    alice.send_raw(b"MODE #dev\r\nWHO #dev\r\nMODE #dev b\r\nNAMES #dev\r\n");
    let mode = alice.next_line();
    assert_eq!(mode, format!(":{SERVER} 324 alice #dev +nt"));
    let created = alice.next_line();
    assert!(
        created.starts_with(&format!(":{SERVER} 329 alice #dev ")),
        "{created}"
    );
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 352 alice #dev alice chatd {SERVER} alice H@ :0 alice"),
            &format!(":{SERVER} 352 alice #dev bob chatd {SERVER} bob H :0 bob"),
            &format!(":{SERVER} 315 alice #dev :End of WHO list"),
            &format!(":{SERVER} 368 alice #dev :End of channel ban list"),
            &format!(":{SERVER} 353 alice = #dev :@alice bob"),
            &format!(":{SERVER} 366 alice #dev :End of /NAMES list"),
        ],
    );
    alice.send_raw(b"VERSION\r\nTIME\r\n");
    lines(
        &mut alice,
        &[&format!(
            ":{SERVER} 351 alice chatd-{} {SERVER} :chatd",
            env!("CARGO_PKG_VERSION")
        )],
    );
    let time = alice.next_line();
    assert!(
        time.starts_with(&format!(":{SERVER} 391 alice {SERVER} :20")),
        "{time}"
    );
    alice.send_raw(b"MODE alice\r\nMODE alice +i\r\nMODE bob\r\n");
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 221 alice +"),
            &format!(":{SERVER} 502 alice :Can't change mode for other users"),
        ],
    );
    // A topic set, shown to a text user and to the next IRC user who joins.
    alice.send_raw(b"TOPIC #dev :Rust talk\r\n");
    lines(&mut alice, &[":alice!alice@chatd TOPIC #dev :Rust talk"]);
    bob.expect_line("alice set the topic: Rust talk");
    let mut carol = register(server.addr(), "carol", 3, "alice bob carol");
    carol.send_raw(b"JOIN #dev\r\n");
    lines(&mut carol, &[":carol!carol@chatd JOIN #dev"]);
    let topic = carol.next_line();
    assert_eq!(topic, format!(":{SERVER} 332 carol #dev :Rust talk"));
    let by = carol.next_line();
    assert!(
        by.starts_with(&format!(":{SERVER} 333 carol #dev alice ")),
        "{by}"
    );
    lines(
        &mut carol,
        &[
            &format!(":{SERVER} 353 carol = #dev :@alice bob carol"),
            &format!(":{SERVER} 366 carol #dev :End of /NAMES list"),
        ],
    );
    // A room line goes to the room's members only, in every mode.
    bob.send_line("/room #dev");
    bob.expect_line("#dev");
    bob.send_line("in dev");
    until(&mut alice, ":bob!bob@chatd PRIVMSG #dev :in dev");
    lines(&mut carol, &[":bob!bob@chatd PRIVMSG #dev :in dev"]);
    carol.send_raw(b"PRIVMSG #dev :\x01ACTION waves\x01\r\n");
    lines(
        &mut alice,
        &[":carol!carol@chatd PRIVMSG #dev :\u{1}ACTION waves\u{1}"],
    );
    bob.expect_line("carol waves");
    carol.send_raw(b"PART #dev :later\r\n");
    lines(&mut carol, &[":carol!carol@chatd PART #dev :later"]);
    lines(&mut alice, &[":carol!carol@chatd PART #dev :later"]);
    carol.send_raw(b"LIST\r\n");
    lines(
        &mut carol,
        &[
            &format!(":{SERVER} 321 carol Channel :Users  Name"),
            &format!(":{SERVER} 322 carol #dev 2 :Rust talk"),
            &format!(":{SERVER} 322 carol #lobby 3 :"),
            &format!(":{SERVER} 323 carol :End of /LIST"),
        ],
    );
}

#[test]
fn direct_messages_away_whois_userhost_and_ison() {
    let server = start(&[]);
    let mut alice = register(server.addr(), "alice", 1, "alice");
    let mut bob = server.join("bob");
    alice.send_raw(b"PRIVMSG bob :psst\r\n");
    bob.expect_line("alice > psst");
    bob.send_line("/dm alice back at you");
    until(&mut alice, ":bob!bob@chatd PRIVMSG alice :back at you");
    alice.send_raw(b"AWAY :lunch\r\n");
    lines(
        &mut alice,
        &[&format!(
            ":{SERVER} 306 alice :You have been marked as being away"
        )],
    );
    bob.send_line("/away meeting");
    bob.expect_line("away");
    alice.send_raw(b"PRIVMSG bob :ping?\r\nNOTICE bob :quiet\r\n");
    lines(&mut alice, &[&format!(":{SERVER} 301 alice bob :meeting")]);
    alice.send_raw(b"WHOIS bob\r\n");
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 311 alice bob bob chatd * :bob"),
            &format!(
                ":{SERVER} 312 alice bob {SERVER} :chatd chatd-{}",
                env!("CARGO_PKG_VERSION")
            ),
        ],
    );
    idle_line(&mut alice, "alice", "bob");
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 319 alice bob :#lobby"),
            &format!(":{SERVER} 301 alice bob :meeting"),
            &format!(":{SERVER} 318 alice bob :End of /WHOIS list"),
        ],
    );
    alice.send_raw(
        b"WHOIS nobody\r\nUSERHOST bob alice nobody\r\nISON bob nobody alice\r\nWHO bob\r\n",
    );
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 401 alice nobody :No such nick/channel"),
            &format!(":{SERVER} 318 alice nobody :End of /WHOIS list"),
            &format!(":{SERVER} 302 alice :bob=-bob@chatd alice=-alice@chatd"),
            &format!(":{SERVER} 303 alice :bob alice"),
            &format!(":{SERVER} 352 alice * bob chatd {SERVER} bob G :0 bob"),
            &format!(":{SERVER} 315 alice bob :End of WHO list"),
        ],
    );
    alice.send_raw(b"AWAY\r\n");
    lines(
        &mut alice,
        &[&format!(
            ":{SERVER} 305 alice :You are no longer marked as being away"
        )],
    );
    // The same question from a text user: /whois, in every mode.
    bob.send_line("/whois ALICE");
    bob.expect_line("[*] alice (user, guest) is in #lobby, here since ");
}

#[test]
fn error_numerics_for_what_cannot_be_done() {
    let server = start(&[]);
    let mut alice = register(server.addr(), "alice", 1, "alice");
    let mut bob = server.join("bob");
    until(&mut alice, ":bob!bob@chatd JOIN #lobby");
    bob.send_line("/join #ops");
    bob.expect_line("#ops");
    alice.send_raw(
        b"PRIVMSG nobody :x\r\nPRIVMSG #nowhere :x\r\nPRIVMSG #ops :x\r\nPRIVMSG\r\nPRIVMSG bob\r\n\
          FROB\r\nNICK other\r\nPART #ops\r\nTOPIC #ops :t\r\nKICK #lobby\r\nJOIN\r\n",
    );
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 401 alice nobody :No such nick/channel"),
            &format!(":{SERVER} 401 alice #nowhere :No such nick/channel"),
            &format!(":{SERVER} 404 alice #ops :Cannot send to channel"),
            &format!(":{SERVER} 411 alice :No recipient given (PRIVMSG)"),
            &format!(":{SERVER} 412 alice :No text to send"),
            &format!(":{SERVER} 421 alice FROB :Unknown command"),
            &format!(
                ":{SERVER} 447 alice other :Names do not change on chatd: reconnect with the new name"
            ),
            &format!(":{SERVER} 442 alice #ops :You're not on that channel"),
            &format!(":{SERVER} 442 alice #ops :You're not on that channel"),
            &format!(":{SERVER} 461 alice KICK :Not enough parameters"),
            &format!(":{SERVER} 461 alice JOIN :Not enough parameters"),
        ],
    );
    alice.send_raw(b"MODE #nowhere\r\n");
    lines(
        &mut alice,
        &[&format!(":{SERVER} 403 alice #nowhere :No such channel")],
    );
    // As ngIRCd answers (RFC 2812, Modern IRC): WHOIS without a nick is 431, OPER without its
    // two parameters 461, MODE of a nick no one has 401 (502 is for someone else's), and LIST
    // with channels lists only those.
    alice.send_raw(
        b"WHOIS\r\nOPER\r\nOPER alice\r\nMODE nobody\r\nMODE bob +i\r\nLIST #ops,#nowhere\r\n",
    );
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 431 alice :No nickname given"),
            &format!(":{SERVER} 461 alice OPER :Not enough parameters"),
            &format!(":{SERVER} 461 alice OPER :Not enough parameters"),
            &format!(":{SERVER} 401 alice nobody :No such nick/channel"),
            &format!(":{SERVER} 502 alice :Can't change mode for other users"),
            &format!(":{SERVER} 321 alice Channel :Users  Name"),
            &format!(":{SERVER} 322 alice #ops 1 :"),
            &format!(":{SERVER} 323 alice :End of /LIST"),
        ],
    );
    alice.send_raw(b"JOIN #ops\r\n");
    until(
        &mut alice,
        &format!(":{SERVER} 366 alice #ops :End of /NAMES list"),
    );
    alice.send_raw(
        b"TOPIC #ops :mine\r\nKICK #ops bob\r\nMODE #ops +o alice\r\nMODE #ops +k key\r\n",
    );
    lines(
        &mut alice,
        &[
            &format!(":{SERVER} 482 alice #ops :You're not channel operator"),
            &format!(":{SERVER} 482 alice #ops :You're not channel operator"),
            &format!(":{SERVER} 482 alice #ops :You're not channel operator"),
            &format!(
                ":{SERVER} 472 alice k :is unknown mode char to me (chatd rooms have +n, +t and +o only)"
            ),
        ],
    );
    // An over-long line is refused and the connection goes on.
    let long = format!("PRIVMSG #lobby :{}\r\n", "x".repeat(600));
    alice.send_raw(long.as_bytes());
    lines(
        &mut alice,
        &[&format!(":{SERVER} 417 alice :Input line was too long")],
    );
    sync(&mut alice);
}

#[test]
fn kicks_and_moderators_between_irc_and_text_users() {
    let server = start(&[]);
    let mut alice = register(server.addr(), "alice", 1, "alice");
    let mut bob = server.join("bob");
    alice.send_raw(b"JOIN #dev\r\n");
    until(
        &mut alice,
        &format!(":{SERVER} 366 alice #dev :End of /NAMES list"),
    );
    bob.send_line("/join #dev");
    until(&mut alice, ":bob!bob@chatd JOIN #dev");
    alice.send_raw(b"KICK #dev bob :too loud\r\n");
    lines(&mut alice, &[":alice!alice@chatd KICK #dev bob :too loud"]);
    bob.expect_line("alice removed you from #dev (too loud)");
    // A text moderator removes an IRC user: a KICK of them, and they are out of the channel.
    let mut carol = register(server.addr(), "carol", 3, "alice bob carol");
    bob.send_line("/join #ops");
    bob.expect_line("#ops");
    carol.send_raw(b"JOIN #ops\r\n");
    until(
        &mut carol,
        &format!(":{SERVER} 366 carol #ops :End of /NAMES list"),
    );
    bob.send_line("/mod carol");
    lines(&mut carol, &[":bob!bob@chatd MODE #ops +o carol"]);
    carol.send_raw(b"NAMES #ops\r\n");
    lines(
        &mut carol,
        &[
            &format!(":{SERVER} 353 carol = #ops :@bob @carol"),
            &format!(":{SERVER} 366 carol #ops :End of /NAMES list"),
        ],
    );
    carol.send_raw(b"KICK #ops bob\r\n");
    lines(&mut carol, &[":carol!carol@chatd KICK #ops bob :carol"]);
}

#[test]
fn quit_ends_with_error_and_the_others_see_a_quit() {
    let server = start(&[]);
    let mut alice = register(server.addr(), "alice", 1, "alice");
    let mut bob = register(server.addr(), "bob", 2, "alice bob");
    until(&mut alice, ":bob!bob@chatd JOIN #lobby");
    let mut carol = server.join("carol");
    bob.send_raw(b"QUIT :see you\r\n");
    let seen = bob.expect_closed();
    assert_eq!(
        seen.last().map(String::as_str),
        Some("ERROR :Closing Link: bob (Quit)")
    );
    until(&mut alice, ":bob!bob@chatd QUIT :Quit: see you");
    carol.expect_line("bob exited. (see you)");
    // A console kick is an ERROR for the one kicked, a QUIT for the others.
    let mut server = server;
    server.console("KICK alice bye now");
    let seen = alice.expect_closed();
    assert_eq!(
        seen.last().map(String::as_str),
        Some("ERROR :Closing Link: alice (Kicked by Host: bye now)")
    );
}

#[test]
fn long_lines_from_other_modes_are_split_at_utf8_boundaries() {
    let server = start(&[]);
    let mut alice = register(server.addr(), "alice", 1, "alice");
    let mut bob = server.join("bob");
    let text = "ü".repeat(700);
    bob.send_line(&text);
    let mut joined = String::new();
    while joined.len() < text.len() {
        let line = alice.expect_line(":bob!bob@chatd PRIVMSG #lobby :");
        assert!(line.len() + 2 <= 512, "{} bytes", line.len() + 2);
        joined.push_str(line.split_once(" :").map_or("", |(_, t)| t));
    }
    assert_eq!(joined, text);
}

#[test]
fn framed_users_and_irc_users_see_each_other() {
    use chatd::proto::framed::{ClientFrame, ServerFrame};
    let server = framed_common::Server::start(&["--server-name", SERVER]);
    let mut alice = register(server.addr, "alice", 1, "alice");
    let mut framed = framed_common::FramedUser::join(&server, "fred");
    until(&mut alice, ":fred!fred@chatd JOIN #lobby");
    framed.send(&ClientFrame::say(1, "from the chat client"));
    lines(
        &mut alice,
        &[":fred!fred@chatd PRIVMSG #lobby :from the chat client"],
    );
    alice.send_raw(b"PRIVMSG #lobby :from irssi\r\n");
    framed.expect("alice's line", |f| {
        matches!(f, ServerFrame::Chat { from, text, .. } if from == "alice" && text == "from irssi")
    });
}

#[test]
fn history_on_join_is_time_tagged_or_a_notice() {
    let server = start(&[]);
    let mut bob = server.join("bob");
    bob.send_line("said before");
    bob.sync();
    let mut plain = register(server.addr(), "plain", 2, "bob plain");
    let line = plain.expect_line("said before");
    assert!(
        line.starts_with(&format!(":{SERVER} NOTICE #lobby :["))
            && line.ends_with("] <bob> said before"),
        "{line}"
    );
    let mut c = Client::connect(server.addr());
    c.send_raw(b"CAP LS\r\nCAP REQ :server-time\r\nNICK timed\r\nUSER t 0 * :T\r\nCAP END\r\n");
    let line = c.expect_line("said before");
    assert!(
        line.starts_with("@time=20")
            && line.ends_with(" :bob!bob@chatd PRIVMSG #lobby :said before"),
        "{line}"
    );
}

#[test]
fn echo_message_gives_a_client_its_own_lines_back_and_only_then() {
    let server = start(&[]);
    let mut c = Client::connect(server.addr());
    c.send_raw(b"CAP LS 302\r\nCAP REQ :echo-message message-tags\r\nNICK echo\r\nUSER e 0 * :E\r\nCAP END\r\n");
    until(
        &mut c,
        &format!(":{SERVER} 366 echo #lobby :End of /NAMES list"),
    );
    let mut bob = server.join("bob");
    until(&mut c, ":bob!bob@chatd JOIN #lobby");
    c.send_raw(b"PRIVMSG #lobby :mine\r\nPRIVMSG bob :just you\r\n");
    let own = c.next_line();
    assert!(
        own.starts_with("@time=20")
            && own.contains(";msgid=")
            && own.ends_with(" :echo!echo@chatd PRIVMSG #lobby :mine"),
        "{own}"
    );
    lines(&mut c, &[":echo!echo@chatd PRIVMSG bob :just you"]);
    bob.expect_line(common::chat_line("echo", "mine"));
    bob.expect_line("just you");
    // Without the capability, nothing comes back.
    let mut plain = register(server.addr(), "plain", 3, "bob echo plain");
    plain.send_raw(b"PRIVMSG #lobby :not echoed\r\n");
    sync(&mut plain);
    assert!(
        !plain
            .history_lines()
            .iter()
            .any(|l| l.contains("not echoed")),
        "{:#?}",
        plain.history_lines()
    );
    c.expect_line(|l: &str| l.ends_with(" :plain!plain@chatd PRIVMSG #lobby :not echoed"));
}

#[test]
fn without_autojoin_the_welcome_has_no_join_and_a_silent_client_is_pinged() {
    let server = start(&[
        "--irc-no-autojoin",
        "--ping-interval",
        "1",
        "--ping-misses",
        "1",
    ]);
    let mut c = Client::connect(server.addr());
    c.send_raw(b"NICK quiet\r\nUSER q 0 * :Q\r\n");
    until(
        &mut c,
        &format!(":{SERVER} 422 quiet :MOTD File is missing"),
    );
    // The server's keepalive: a PING, answered with its token.
    let ping = c.next_line();
    assert!(
        ping.starts_with("PING :"),
        "no JOIN, and a PING once silent: {ping}"
    );
    let token = ping["PING :".len()..].to_owned();
    c.send_raw(format!("PONG :{token}\r\n").as_bytes());
    let again = c.next_line();
    assert!(again.starts_with("PING :"), "still served: {again}");
    // The default room, joined by hand, is shown as any room is.
    c.send_raw(b"JOIN #lobby\r\n");
    lines(
        &mut c,
        &[
            ":quiet!quiet@chatd JOIN #lobby",
            &format!(":{SERVER} 353 quiet = #lobby :quiet"),
            &format!(":{SERVER} 366 quiet #lobby :End of /NAMES list"),
        ],
    );
    // One ping left unanswered closes the connection (at once, as a dead peer's).
    c.expect_closed();
}

#[test]
fn listen_irc_takes_every_connection_for_irc_from_its_first_byte() {
    let mut server = start(&["--listen-irc", "127.0.0.1:0"]);
    let line = server.expect_stdout("chatd listening for IRC on ", common::TIMEOUT);
    let addr: SocketAddr = line["chatd listening for IRC on ".len()..]
        .parse()
        .expect("an address");
    assert_ne!(addr, server.addr());
    let mut c = Client::connect(addr);
    // A first line no sniffer would take for IRC is IRC here.
    c.send_raw(b"HELLO there\r\nNICK ira\r\nUSER ira 0 * :Ira\r\n");
    lines(
        &mut c,
        &[&format!(":{SERVER} 451 * :You have not registered")],
    );
    burst(&mut c, "ira", 1, "ira");
    let mut bob = server.join("bob");
    until(&mut c, ":bob!bob@chatd JOIN #lobby");
    c.send_raw(b"PRIVMSG #lobby :from 6667\r\n");
    bob.expect_line(common::chat_line("ira", "from 6667"));
}

#[test]
fn listen_irc_takes_tls_when_the_server_has_it() {
    let data = DataDir::new();
    let mut server = TestServer::start_on(
        &data,
        &[
            "--server-name",
            SERVER,
            "--tls-self-signed",
            "--listen-irc",
            "127.0.0.1:0",
        ],
    );
    let line = server.expect_stdout("chatd listening for IRC on ", common::TIMEOUT);
    let addr = line["chatd listening for IRC on ".len()..].to_owned();
    let mut ircs = common::Piped::spawn("openssl", &["s_client", "-quiet", "-connect", &addr]);
    ircs.send_line("NICK secure");
    ircs.send_line("USER s 0 * :S");
    ircs.expect_line(format!(":{SERVER} 001 secure :Welcome"));
    ircs.expect_line(format!(":{SERVER} 366 secure #lobby :End of /NAMES list"));
}

#[test]
fn an_admin_is_an_operator_and_others_are_not() {
    let data = with_account("root", "root pw");
    let (code, _, err) = common::run_chatd(
        &["user", "--data-dir", data.arg(), "grant", "root", "admin"],
        "",
        None,
        common::TIMEOUT,
    );
    assert_eq!(code, 0, "{err}");
    let server = TestServer::start_on(&data, &["--server-name", SERVER]);
    let mut root = Client::connect(server.addr());
    root.send_raw(b"PASS :root pw\r\nNICK root\r\nUSER root 0 * :Root\r\n");
    lines(
        &mut root,
        &[&format!(
            ":{SERVER} 001 root :Welcome to the {SERVER} IRC Network root!root@chatd"
        )],
    );
    until(
        &mut root,
        &format!(":{SERVER} 422 root :MOTD File is missing"),
    );
    lines(
        &mut root,
        &[
            ":root!root@chatd MODE root :+o",
            ":root!root@chatd JOIN #lobby",
            &format!(":{SERVER} 353 root = #lobby :@root"),
            &format!(":{SERVER} 366 root #lobby :End of /NAMES list"),
        ],
    );
    root.send_raw(b"OPER root root pw\r\nMODE root\r\n");
    lines(
        &mut root,
        &[
            &format!(":{SERVER} 381 root :You are now an IRC operator"),
            &format!(":{SERVER} 221 root +o"),
        ],
    );
    let mut guest = register(server.addr(), "guest", 2, "guest @root");
    guest.send_raw(b"OPER guest x\r\nWHOIS root\r\n");
    lines(
        &mut guest,
        &[
            &format!(
                ":{SERVER} 491 guest :Only chatd admins are operators: ask an admin for the role"
            ),
            &format!(":{SERVER} 311 guest root root chatd * :root"),
        ],
    );
    lines(
        &mut guest,
        &[
            &format!(
                ":{SERVER} 312 guest root {SERVER} :chatd chatd-{}",
                env!("CARGO_PKG_VERSION")
            ),
            &format!(":{SERVER} 313 guest root :is an IRC operator"),
        ],
    );
    idle_line(&mut guest, "guest", "root");
    lines(
        &mut guest,
        &[
            &format!(":{SERVER} 319 guest root :@#lobby"),
            &format!(":{SERVER} 330 guest root root :is logged in as"),
            &format!(":{SERVER} 318 guest root :End of /WHOIS list"),
        ],
    );
    // An admin's kick from IRC: the console's KICK, the IRC way to the one kicked.
    root.send_raw(b"PRIVMSG #lobby :hi\r\n");
    until(&mut guest, ":root!root@chatd PRIVMSG #lobby :hi");
}

#[test]
fn a_join_of_two_channels_gives_each_join_its_names_and_history_before_the_next() {
    let server = start(&[]);
    let mut bob = server.join("bob");
    bob.send_line("/join #x");
    bob.expect_line("#x");
    bob.send_line("in x");
    bob.sync();
    let mut alice = register(server.addr(), "alice", 2, "alice bob");
    alice.send_raw(b"JOIN #x,#y\r\n");
    lines(
        &mut alice,
        &[
            ":alice!alice@chatd JOIN #x",
            &format!(":{SERVER} 353 alice = #x :alice @bob"),
            &format!(":{SERVER} 366 alice #x :End of /NAMES list"),
        ],
    );
    let old = alice.next_line();
    assert!(
        old.starts_with(&format!(":{SERVER} NOTICE #x :[")) && old.ends_with("] <bob> in x"),
        "{old}"
    );
    lines(
        &mut alice,
        &[
            ":alice!alice@chatd JOIN #y",
            &format!(":{SERVER} 353 alice = #y :@alice"),
            &format!(":{SERVER} 366 alice #y :End of /NAMES list"),
        ],
    );
}

#[test]
fn away_notify_tells_those_who_asked_of_every_away_change_once() {
    let server = start(&[]);
    let mut noti = Client::connect(server.addr());
    noti.send_raw(
        b"CAP LS 302\r\nCAP REQ :away-notify\r\nNICK noti\r\nUSER n 0 * :N\r\nCAP END\r\n",
    );
    until(&mut noti, &format!(":{SERVER} CAP * ACK :away-notify"));
    until(
        &mut noti,
        &format!(":{SERVER} 366 noti #lobby :End of /NAMES list"),
    );
    let mut plain = register(server.addr(), "plain", 2, "noti plain");
    let mut bob = server.join("bob");
    // Bob shares two rooms with noti: each change is still told once.
    noti.send_raw(b"JOIN #dev\r\n");
    until(
        &mut noti,
        &format!(":{SERVER} 366 noti #dev :End of /NAMES list"),
    );
    bob.send_line("/join #dev");
    until(&mut noti, ":bob!bob@chatd JOIN #dev");
    bob.send_line("/away lunch");
    bob.expect_line("away");
    lines(&mut noti, &[":bob!bob@chatd AWAY :lunch"]);
    plain.send_raw(b"AWAY :meeting\r\nAWAY :meeting\r\nAWAY\r\n");
    lines(
        &mut noti,
        &[
            ":plain!plain@chatd AWAY :meeting",
            ":plain!plain@chatd AWAY",
        ],
    );
    // Away with no reason is not "back": IRC's empty AWAY would read so.
    bob.send_line("/busy");
    bob.send_line("/back");
    lines(
        &mut noti,
        &[":bob!bob@chatd AWAY :Away", ":bob!bob@chatd AWAY"],
    );
    noti.send_raw(b"AWAY :gone\r\n");
    lines(
        &mut noti,
        &[&format!(
            ":{SERVER} 306 noti :You have been marked as being away"
        )],
    );
    sync(&mut noti);
    // Without the capability nothing is told; nor to a text user.
    sync(&mut plain);
    let seen = plain.history_lines();
    assert!(!seen.iter().any(|l| l.contains("@chatd AWAY")), "{seen:#?}");
    let seen = bob.sync();
    assert!(
        seen.iter()
            .all(|l| !l.contains("noti") || l.starts_with("[*] Online (")),
        "{seen:#?}"
    );
    assert!(
        !noti
            .history_lines()
            .iter()
            .any(|l| l.contains("noti!noti@chatd AWAY")),
        "its own change comes as 306, not AWAY"
    );
}

#[test]
fn with_batch_the_history_on_joining_is_one_chathistory_batch_after_the_names() {
    let server = start(&[]);
    let mut bob = server.join("bob");
    bob.send_line("first");
    bob.send_line("second");
    bob.sync();
    let mut c = Client::connect(server.addr());
    c.send_raw(
        b"CAP LS 302\r\nCAP REQ :batch server-time\r\nNICK bat\r\nUSER b 0 * :B\r\nCAP END\r\n",
    );
    until(
        &mut c,
        &format!(":{SERVER} 366 bat #lobby :End of /NAMES list"),
    );
    lines(
        &mut c,
        &[&format!(":{SERVER} BATCH +h1 chathistory #lobby")],
    );
    for text in ["first", "second"] {
        let line = c.next_line();
        assert!(
            line.starts_with("@batch=h1;time=20")
                && line.contains(";msgid=")
                && line.ends_with(&format!(" :bob!bob@chatd PRIVMSG #lobby :{text}")),
            "{line}"
        );
    }
    lines(&mut c, &[&format!(":{SERVER} BATCH -h1")]);
}

#[test]
fn a_bad_server_name_or_irc_address_is_refused_naming_its_flag() {
    let (code, _, err) = common::run_chatd(
        &["--listen", "127.0.0.1:0", "--server-name", "irc test"],
        "",
        None,
        common::TIMEOUT,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("invalid value 'irc test' for --server-name: must be 1 to 63 letters"),
        "{err}"
    );
    let (code, _, err) = common::run_chatd(
        &["--listen", "127.0.0.1:0", "--listen-irc", "127.0.0.1:99999"],
        "",
        None,
        common::TIMEOUT,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("for --listen-irc: the port must be a number from 0 to 65535"),
        "{err}"
    );
}

/// Reads batch `h{n}` of `#lobby`'s history: bob's lines `texts`, tagged; returns their ids.
#[track_caller]
fn history_batch(client: &mut Client, n: u32, texts: &[&str]) -> Vec<String> {
    lines(
        client,
        &[&format!(":{SERVER} BATCH +h{n} chathistory #lobby")],
    );
    let mut ids = Vec::new();
    for text in texts {
        let line = client.next_line();
        let id = line
            .strip_prefix(&format!("@batch=h{n};time=20"))
            .and_then(|rest| rest.split_once(";msgid="))
            .and_then(|(_, rest)| rest.split_once(' '))
            .filter(|(_, rest)| *rest == format!(":bob!bob@chatd PRIVMSG #lobby :{text}"))
            .map(|(id, _)| id.to_owned())
            .unwrap_or_else(|| panic!("not {text} in batch h{n}: {line}"));
        ids.push(id);
    }
    lines(client, &[&format!(":{SERVER} BATCH -h{n}")]);
    ids
}

/// CHATHISTORY's subcommands against a room of six lines, answered from `extra`'s server (with
/// the history store or in memory).
fn chathistory_replays(extra: &[&str]) {
    let mut args = vec!["--history", "6"];
    args.extend_from_slice(extra);
    let server = start(&args);
    let mut bob = server.join("bob");
    for n in 1..=6 {
        bob.send_line(&format!("line {n}"));
    }
    bob.sync();
    let mut c = Client::connect(server.addr());
    c.send_raw(
        b"CAP LS 302\r\nCAP REQ :batch draft/chathistory server-time\r\nNICK hist\r\n\
          USER h 0 * :H\r\nCAP END\r\n",
    );
    until(
        &mut c,
        &format!(":{SERVER} 366 hist #lobby :End of /NAMES list"),
    );
    let all = ["line 1", "line 2", "line 3", "line 4", "line 5", "line 6"];
    let ids = history_batch(&mut c, 1, &all);
    let id = |n: usize| ids[n - 1].as_str();
    let cases: Vec<(String, &[&str])> = vec![
        ("LATEST #lobby * 2".into(), &all[4..]),
        (format!("LATEST #lobby msgid={} 10", id(4)), &all[4..]),
        (format!("BEFORE #lobby msgid={} 2", id(4)), &all[1..3]),
        (format!("AFTER #lobby msgid={} 5", id(4)), &all[4..]),
        (format!("AROUND #lobby msgid={} 3", id(4)), &all[2..5]),
        (
            format!("BETWEEN #lobby msgid={} msgid={} 10", id(1), id(5)),
            &all[1..4],
        ),
        (
            format!("BETWEEN #lobby msgid={} msgid={} 2", id(5), id(1)),
            &all[2..4],
        ),
        (
            "AFTER #lobby timestamp=2000-01-01T00:00:00.000Z 2".into(),
            &all[..2],
        ),
        (
            "BEFORE #LOBBY timestamp=2100-01-01T00:00:00Z 1".into(),
            &all[5..],
        ),
        // An id of no line of this run's room: nothing.
        ("BEFORE #lobby msgid=0-9-3 5".into(), &[]),
    ];
    for (n, (query, texts)) in (2..).zip(&cases) {
        c.send_raw(format!("CHATHISTORY {query}\r\n").as_bytes());
        history_batch(&mut c, n, texts);
    }
    c.send_raw(
        b"CHATHISTORY LATEST #nowhere * 5\r\nCHATHISTORY BEFORE #lobby * 5\r\n\
          CHATHISTORY LATEST #lobby\r\nCHATHISTORY FOO\r\nCHATHISTORY LATEST bob * 5\r\n\
          CHATHISTORY AFTER #lobby msgid=x 5\r\nCHATHISTORY LATEST #lobby * 0\r\n\
          CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z 5\r\n",
    );
    let line = c.next_line();
    assert!(
        line.starts_with(&format!(
            ":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere :"
        )),
        "{line}"
    );
    lines(
        &mut c,
        &[
            &format!(":{SERVER} FAIL CHATHISTORY INVALID_PARAMS BEFORE * :Invalid message reference"),
            &format!(":{SERVER} FAIL CHATHISTORY NEED_MORE_PARAMS LATEST :Missing parameters"),
            &format!(":{SERVER} FAIL CHATHISTORY UNKNOWN_COMMAND FOO :Unknown command"),
            &format!(
                ":{SERVER} FAIL CHATHISTORY INVALID_TARGET LATEST bob :Only channels have a history here"
            ),
            &format!(":{SERVER} FAIL CHATHISTORY INVALID_PARAMS AFTER msgid=x :Invalid message reference"),
            &format!(":{SERVER} FAIL CHATHISTORY INVALID_PARAMS LATEST 0 :Invalid limit"),
            &format!(
                ":{SERVER} FAIL CHATHISTORY INVALID_PARAMS TARGETS :TARGETS is not supported: ask for a channel's history"
            ),
        ],
    );
}

#[test]
fn chathistory_answers_from_the_history_store() {
    chathistory_replays(&[]);
}

#[test]
fn chathistory_answers_from_memory_without_a_store() {
    chathistory_replays(&["--no-history-store"]);
}
