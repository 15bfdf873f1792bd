//! The core's fan-out: one chat line said in a room of 1,000 joined users, no sockets.
//!
//! Measures `Chat::handle` for the line plus the walk over `Chat::members()` the shell does to
//! find the recipients, reported per delivery (999 per line). What the shell then does with each
//! recipient (encode once, queue, write) is in `benches/e2e.rs`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use chatd::accounts::model::Registry;
use chatd::core::{Action, Chat, ChatConfig, ConnId, Input, Now, Outbox, Recipients};
use chatd::proto::msg::{ClientMsg, Stamp};

const USERS: u64 = 1000;
/// A 64-byte chat line, as the load tool's burst sends.
const LINE: &str = "ld|0|1|2|3|xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// A room with `users` joined guests on connections 1..=users.
fn room(users: u64) -> (Chat, Now) {
    let now = Now {
        instant: Instant::now(),
        stamp: Stamp::new(1_700_000_000, 12, 34, 56),
    };
    let mut chat = Chat::new(ChatConfig::default(), Registry::default(), now.instant);
    let mut out = Outbox::new();
    for id in 1..=users {
        let conn = ConnId(id);
        let peer = IpAddr::from([127, 0, 0, 1]);
        chat.handle(
            &now,
            Input::Connected {
                conn,
                peer,
                secure: false,
            },
            &mut out,
        );
        let name = ClientMsg::Say {
            text: format!("user{id}"),
        };
        chat.handle(&now, Input::Message { conn, msg: name }, &mut out);
        out.drain();
    }
    assert_eq!(chat.members().count() as u64, users, "everyone joined");
    (chat, now)
}

/// One line said by connection 1; returns how many recipients the shell would queue it for.
fn say_once(chat: &mut Chat, now: &Now, out: &mut Outbox) -> usize {
    let msg = ClientMsg::Say { text: LINE.into() };
    chat.handle(
        now,
        Input::Message {
            conn: ConnId(1),
            msg,
        },
        out,
    );
    let mut deliveries = 0;
    for action in out.drain() {
        if let Action::Deliver {
            to: Recipients::Room { except, .. },
            msg,
        } = action
        {
            deliveries += chat.members().filter(|&m| Some(m) != except).count();
            black_box(msg);
        }
    }
    deliveries
}

fn fan_out(c: &mut Criterion) {
    let (mut chat, now) = room(USERS);
    let mut out = Outbox::new();
    assert_eq!(say_once(&mut chat, &now, &mut out) as u64, USERS - 1);
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(USERS - 1));
    group.bench_function("fan_out_one_line_to_1000_users", |b| {
        b.iter(|| black_box(say_once(&mut chat, &now, &mut out)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = fan_out
}
criterion_main!(benches);
