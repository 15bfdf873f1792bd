//! Framed clients are pinged when silent and closed when they stop answering; text clients are
//! never cut for being quiet.

mod common;
mod framed_common;

use std::time::Instant;

use chatd::proto::framed::ServerFrame;
use framed_common::{ChatClient, FramedUser, Server, TextUser};

#[test]
fn a_silent_framed_client_is_pinged_then_closed_while_answering_and_text_clients_stay() {
    let server = Server::start(&["--ping-interval", "1", "--ping-misses", "2"]);
    let mut tina = TextUser::join(&server, "tina");
    let _cat = ChatClient::join(&server, "cat");
    let mut mute = FramedUser::join(&server, "mute");
    let started = Instant::now();
    for n in 1..=2 {
        mute.expect(&format!("keepalive ping {n}"), |f| {
            matches!(f, ServerFrame::Ping { .. })
        });
    }
    let frames = mute.expect_closed();
    let closed_after = started.elapsed();
    assert!(
        frames
            .iter()
            .all(|f| !matches!(f, ServerFrame::Ping { .. })),
        "{frames:?}"
    );
    assert!(
        closed_after.as_secs_f64() >= 2.5,
        "closed after {closed_after:?}: 2 pings a second apart, then a second more"
    );
    tina.expect_containing("[*] mute exited.");
    // The chat client answered its pings; quiet tina was never pinged.
    tina.send("/users");
    assert_eq!(
        tina.expect_containing("[*] Online ("),
        "[*] Online (2): cat, tina"
    );
}
