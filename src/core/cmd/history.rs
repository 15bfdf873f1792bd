//! `/history` (paging back through a room's lines) and the offline mailbox: the rules; the
//! history store that answers them is the shell's.
//!
//! - **Paging.** Each user has, per room, the oldest line they were shown (on joining, or by the
//!   last page); `/history [#ROOM] [N]` shows the N lines before it (default [`PAGE`], at most
//!   [`MAX_PAGE`]), oldest first, after a notice saying how many and whether older ones remain.
//!   With a store the page is looked up there (one page at a time per user: another `/history`
//!   meanwhile is refused as busy); without one it comes from the lines kept in memory.
//! - **CHATHISTORY.** IRC clients ask for a [`Span`] of a room's lines (the latest, before, after,
//!   around or between line ids and times) through the same look-up, answered the same way (a
//!   page notice, then the lines) but with the lines' ids, and without moving the `/history`
//!   place; [`select`] chooses the lines, in memory here or in the store.
//! - **Mailbox.** A direct message to a registered user who is offline is put in their mailbox
//!   (bounded: [`MAILBOX_PER_USER`](crate::history::job::MAILBOX_PER_USER) each,
//!   [`MAILBOX_TOTAL`](crate::history::job::MAILBOX_TOTAL) in all) and the sender is told it
//!   waits, or that the mailbox is full; to someone offline who is not registered it is refused
//!   plainly. On logging in, a registered user gets what waits, marked as sent while offline.

use super::super::rooms::{HistoryLine, RoomId};
use super::super::{Action, Chat, ConnId, Now, Outbox, Recipients};
use crate::history::job::{select, Point, Span, MAX_PAGE};
use crate::history::{Answer, Job, KeptDm, KeptLine};
use crate::proto::msg::{HistoryRef, Notice, Reject, ServerMsg};

/// How many lines `/history` shows when not told.
pub const PAGE: usize = 20;

fn reject(conn: ConnId, reject: Reject, out: &mut Outbox) {
    out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
}

/// `/history [#ROOM] [N]`: the N lines of the room (the current one if none is named) before the
/// oldest the user was shown.
pub fn history(
    chat: &mut Chat,
    conn: ConnId,
    room: Option<&str>,
    count: Option<usize>,
    out: &mut Outbox,
) {
    let room = match room {
        Some(name) => match super::rooms::find_joined(chat, conn, name) {
            Ok(room) => room,
            Err(e) => return reject(conn, e, out),
        },
        None => chat.rooms.current(conn),
    };
    let Some(r) = chat.rooms.get(room) else {
        return;
    };
    let next = r.last_seq + 1;
    let Some(session) = chat.sessions.get(conn) else {
        return;
    };
    let before = session
        .seen_from
        .iter()
        .find(|&&(r, _)| r == room)
        .map_or(next, |&(_, seq)| seq);
    let limit = count.unwrap_or(PAGE).min(MAX_PAGE);
    look_up(
        chat,
        conn,
        room,
        Span::Before(Point::Seq(before)),
        limit,
        false,
        out,
    );
}

/// IRC's CHATHISTORY: up to `limit` lines of `room` (one `conn` is in) in `span`, with their
/// ids, after a page notice that says how many (the IRC session makes them a batch). The same
/// look-up as `/history`'s, in memory or in the store; but the user's place for `/history` stays.
/// A line id of another run or room names no line here: the answer is an empty page.
pub fn chathistory(
    chat: &mut Chat,
    conn: ConnId,
    room: &str,
    span: Span<HistoryRef>,
    limit: usize,
    out: &mut Outbox,
) {
    let room = match super::rooms::find_joined(chat, conn, room) {
        Ok(room) => room,
        Err(e) => return reject(conn, e, out),
    };
    let epoch = chat.config.epoch;
    let span = span.try_map(|point| match point {
        HistoryRef::Id(id) => {
            (id.epoch == epoch && id.room == room.0).then_some(Point::Seq(id.seq))
        }
        HistoryRef::Millis(ms) => Some(Point::Millis(ms)),
    });
    let limit = limit.clamp(1, MAX_PAGE);
    match span {
        Some(span) => look_up(chat, conn, room, span, limit, true, out),
        None => show_page(chat, conn, room, Vec::new(), false, true, out),
    }
}

/// Looks up `room`'s lines in `span` for `conn`: in the store if there is one (one look-up at a
/// time per user), else among the lines kept in memory.
fn look_up(
    chat: &mut Chat,
    conn: ConnId,
    room: RoomId,
    span: Span<Point>,
    limit: usize,
    ids: bool,
    out: &mut Outbox,
) {
    let Some(r) = chat.rooms.get(room) else {
        return;
    };
    let key = r.name.to_ascii_lowercase();
    let Some(session) = chat.sessions.get_mut(conn) else {
        return;
    };
    if session.paging {
        return reject(conn, Reject::Busy, out);
    }
    if chat.config.store_history {
        session.paging = true;
        out.push(Action::History(Job::Page {
            conn,
            room,
            key,
            span,
            limit,
            ids,
        }));
        return;
    }
    let keys: Vec<(u64, i64)> = r.history.iter().map(|l| (l.seq, l.at.unix)).collect();
    let (range, more) = select(&keys, span, limit);
    let page = r.history.range(range).cloned().collect();
    show_page(chat, conn, room, page, more, ids, out);
}

/// Shows `conn` a page of `room`'s history: with the lines' ids (CHATHISTORY), or without them
/// and moving its place back to the page's first line (`/history`).
fn show_page(
    chat: &mut Chat,
    conn: ConnId,
    room: RoomId,
    page: Vec<HistoryLine>,
    more: bool,
    ids: bool,
    out: &mut Outbox,
) {
    if let (Some(first), Some(session), false) = (page.first(), chat.sessions.get_mut(conn), ids) {
        session.seen_from.retain(|&(r, _)| r != room);
        session.seen_from.push((room, first.seq));
    }
    let notice = Notice::HistoryPage {
        room: chat.rooms.name(room).to_owned(),
        count: page.len(),
        more,
    };
    out.deliver(Recipients::One(conn), ServerMsg::Notice(notice));
    for line in &page {
        let msg = if ids {
            chat.history_msg(room, line)
        } else {
            chat.history_line(room, line)
        };
        out.deliver(Recipients::One(conn), msg);
    }
}

/// `conn` (as `from`) sends `text` to `to`, who is not online: into their mailbox if they are
/// registered and the server has a store, else refused.
pub fn mail(chat: &mut Chat, now: &Now, conn: ConnId, to: &str, text: String, out: &mut Outbox) {
    let Some(from) = chat.sessions.name_of(conn).map(str::to_owned) else {
        return;
    };
    if !chat.config.store_history {
        let name = to.to_owned();
        return reject(conn, Reject::UnknownUser { name }, out);
    }
    let Some(account) = chat.registry.account(to) else {
        let name = to.to_owned();
        return reject(conn, Reject::OfflineGuest { name }, out);
    };
    let dm = KeptDm {
        at: now.stamp.unix,
        from,
        to: account.name.clone(),
        text,
    };
    out.push(Action::History(Job::Mail { conn, dm }));
}

/// Carries out what the history store answered.
pub fn answered(chat: &mut Chat, now: &Now, answer: Answer, out: &mut Outbox) {
    match answer {
        Answer::Page {
            conn,
            room,
            lines,
            more,
            ids,
        } => {
            let Some(session) = chat.sessions.get_mut(conn) else {
                return;
            };
            session.paging = false;
            if chat.rooms.get(room).is_none() || !chat.rooms.is_member(conn, room) {
                // Left the room (or the server) meanwhile: the page is of no use.
                return;
            }
            let page = lines.into_iter().map(|line| restored(now, line)).collect();
            show_page(chat, conn, room, page, more, ids, out);
        }
        Answer::Mailed { conn, to, kept } => {
            if chat.sessions.name_of(conn).is_none() {
                return;
            }
            let msg = if kept {
                ServerMsg::Notice(Notice::Mailed { name: to })
            } else {
                ServerMsg::Reject(Reject::MailboxFull { name: to })
            };
            out.deliver(Recipients::One(conn), msg);
        }
        Answer::Mailbox { conn, name, mail } => {
            let owner = chat
                .sessions
                .get(conn)
                .is_some_and(|session| session.registered)
                && chat
                    .sessions
                    .name_of(conn)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name));
            let Some(last) = mail.last().map(|m| m.id) else {
                return;
            };
            if !owner {
                // Gone (or someone else's now): it stays in the mailbox for the next login.
                return;
            }
            let count = mail.len();
            out.deliver(
                Recipients::One(conn),
                ServerMsg::Notice(Notice::Mailbox { count }),
            );
            for m in mail {
                let msg = ServerMsg::Direct {
                    at: now.stamp.with_unix(m.at),
                    from: m.from,
                    text: m.text,
                };
                out.deliver(Recipients::One(conn), msg);
            }
            out.push(Action::History(Job::Delivered { name, up_to: last }));
        }
    }
}

/// A line read back from the store, as the core keeps one.
fn restored(now: &Now, line: KeptLine) -> HistoryLine {
    HistoryLine {
        at: now.stamp.with_unix(line.at),
        from: line.from,
        text: line.text,
        me: line.me,
        seq: line.seq,
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::{ChatConfig, Input};
    use super::*;
    use crate::accounts::model::{Account, Change, Role};
    use crate::history::Mail;

    /// A chat with a history store, and the registered users `names`.
    fn stored(names: &[&str]) -> Script {
        let mut s = Script::with_config(ChatConfig {
            history: 5,
            store_history: true,
            ..ChatConfig::default()
        });
        for name in names {
            let account = Account {
                name: (*name).into(),
                role: Role::User,
                password_hash: format!("$argon2id$hash-of-{name}"),
            };
            s.chat.registry.apply(&Change::PutAccount(account));
        }
        s
    }

    fn jobs(actions: &[Action]) -> Vec<Job> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::History(job) => Some(job.clone()),
                _ => None,
            })
            .collect()
    }

    /// The texts of the history lines among `actions`, and the page notices.
    fn shown(actions: &[Action]) -> (Vec<String>, Vec<Notice>) {
        let mut texts = Vec::new();
        let mut notices = Vec::new();
        for action in actions {
            match action {
                Action::Deliver {
                    msg: ServerMsg::Line { msg, .. },
                    ..
                } => match &**msg {
                    ServerMsg::Backlog { text, .. } => texts.push(text.clone()),
                    other => panic!("not a history line: {other:?}"),
                },
                Action::Deliver {
                    msg: ServerMsg::Backlog { text, .. },
                    ..
                } => texts.push(text.clone()),
                Action::Deliver {
                    msg: ServerMsg::Notice(notice @ Notice::HistoryPage { .. }),
                    ..
                } => notices.push(notice.clone()),
                _ => {}
            }
        }
        (texts, notices)
    }

    fn page(count: usize, more: bool) -> Notice {
        Notice::HistoryPage {
            room: "#lobby".into(),
            count,
            more,
        }
    }

    fn lines(from: u64, to: u64) -> Vec<String> {
        (from..=to).map(|n| format!("line {n}")).collect()
    }

    #[test]
    fn chathistory_shows_lines_with_their_ids_and_leaves_the_history_place() {
        let mut s = Script::with_config(ChatConfig {
            history: 5,
            ..ChatConfig::default()
        });
        s.join(1, "alice");
        for n in 1..=10 {
            s.line(1, &format!("line {n}"));
        }
        s.connect(2);
        assert_eq!(shown(&s.line(2, "bob")).0, lines(6, 10));
        let epoch = ChatConfig::default().epoch;
        let ask = |s: &mut Script, room: &str, span| {
            s.input(Input::Message {
                conn: ConnId(2),
                msg: crate::proto::ClientMsg::Command(crate::proto::msg::Command::ChatHistory {
                    room: room.into(),
                    span,
                    limit: 2,
                }),
            })
        };
        let id = |epoch, seq| {
            HistoryRef::Id(crate::proto::msg::LineId {
                epoch,
                room: 0,
                seq,
            })
        };
        let answer = ask(&mut s, "#LOBBY", Span::Before(id(epoch, 4)));
        assert_eq!(shown(&answer), (lines(2, 3), vec![page(2, true)]));
        let seqs: Vec<u64> = answer
            .iter()
            .filter_map(|a| match a {
                Action::Deliver {
                    msg: ServerMsg::Line { id, .. },
                    ..
                } => Some(id.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, [2, 3], "with their ids");
        assert_eq!(
            shown(&s.line(2, "/history 2")),
            (lines(4, 5), vec![page(2, true)]),
            "/history goes on from where joining left it"
        );
        assert_eq!(
            shown(&ask(&mut s, "#lobby", Span::After(id(epoch + 1, 4)))),
            (vec![], vec![page(0, false)]),
            "an id of another run names no line"
        );
        assert_eq!(
            ask(&mut s, "#dev", Span::Latest(None)),
            vec![to_one(
                2,
                ServerMsg::Reject(Reject::NoSuchRoom {
                    room: "#dev".into()
                })
            )]
        );
    }

    #[test]
    fn with_a_store_chathistory_is_a_page_job_for_lines_with_ids() {
        let mut s = stored(&[]);
        s.join(1, "alice");
        let answer = s.input(Input::Message {
            conn: ConnId(1),
            msg: crate::proto::ClientMsg::Command(crate::proto::msg::Command::ChatHistory {
                room: "#lobby".into(),
                span: Span::Around(HistoryRef::Millis(5_000)),
                limit: 1_000,
            }),
        });
        assert_eq!(
            jobs(&answer),
            vec![Job::Page {
                conn: ConnId(1),
                room: RoomId::DEFAULT,
                key: "#lobby".into(),
                span: Span::Around(Point::Millis(5_000)),
                limit: MAX_PAGE,
                ids: true,
            }]
        );
    }

    #[test]
    fn without_a_store_history_pages_back_through_memory_to_the_first_kept_line() {
        let mut s = Script::with_config(ChatConfig {
            history: 5,
            ..ChatConfig::default()
        });
        s.join(1, "alice");
        for n in 1..=30 {
            s.line(1, &format!("line {n}"));
        }
        s.connect(2);
        assert_eq!(shown(&s.line(2, "bob")).0, lines(26, 30));
        assert_eq!(
            shown(&s.line(2, "/history 10")),
            (lines(16, 25), vec![page(10, true)])
        );
        assert_eq!(
            shown(&s.line(2, "/history")),
            (lines(1, 15), vec![page(15, false)]),
            "20 asked, 15 left"
        );
        assert_eq!(
            shown(&s.line(2, "/history")),
            (vec![], vec![page(0, false)])
        );
        assert!(jobs(&s.line(1, "more")).is_empty(), "no store, no jobs");
    }

    #[test]
    fn with_a_store_each_line_is_kept_and_a_page_is_asked_of_it_one_at_a_time() {
        let mut s = stored(&[]);
        s.join(1, "alice");
        let said = s.line(1, "hello");
        assert_eq!(
            jobs(&said),
            vec![Job::Keep(KeptLine {
                room: "#lobby".into(),
                seq: 1,
                at: s.now.stamp.unix,
                from: "alice".into(),
                text: "hello".into(),
                me: false,
            })]
        );
        for n in 2..=30 {
            s.line(1, &format!("line {n}"));
        }
        s.connect(2);
        s.line(2, "bob");
        let lobby = RoomId::DEFAULT;
        let asked = |before, limit| Job::Page {
            conn: ConnId(2),
            room: lobby,
            key: "#lobby".into(),
            span: Span::Before(Point::Seq(before)),
            limit,
            ids: false,
        };
        assert_eq!(jobs(&s.line(2, "/history 500")), vec![asked(26, MAX_PAGE)]);
        assert_eq!(
            s.line(2, "/history"),
            vec![to_one(2, ServerMsg::Reject(Reject::Busy))],
            "one page at a time"
        );
        let from_store = (20..=25)
            .map(|seq| KeptLine {
                room: "#lobby".into(),
                seq,
                at: s.now.stamp.unix - 60,
                from: "alice".into(),
                text: format!("line {seq}"),
                me: false,
            })
            .collect();
        let answer = Input::History(Answer::Page {
            conn: ConnId(2),
            room: lobby,
            lines: from_store,
            more: true,
            ids: false,
        });
        let delivered = s.input(answer);
        assert_eq!(shown(&delivered), (lines(20, 25), vec![page(6, true)]));
        // Without its id: the web page resumes from the last id it has, which an older line
        // must not move back.
        assert_eq!(
            delivered[1],
            to_one(
                2,
                ServerMsg::Backlog {
                    at: s.now.stamp.with_unix(s.now.stamp.unix - 60),
                    from: "alice".into(),
                    text: "line 20".into(),
                }
            )
        );
        assert_eq!(jobs(&s.line(2, "/history 3")), vec![asked(20, 3)]);
    }

    #[test]
    fn a_page_for_a_room_left_meanwhile_is_dropped_and_paging_is_free_again() {
        let mut s = stored(&[]);
        s.join(1, "alice");
        s.line(1, "/join #dev");
        s.line(1, "in dev");
        assert!(matches!(
            jobs(&s.line(1, "/history #dev")).as_slice(),
            [Job::Page {
                span: Span::Before(Point::Seq(1)),
                ..
            }]
        ));
        s.line(1, "/part #dev");
        let dev = s.chat.rooms.lookup("#dev");
        assert_eq!(dev, None, "the ad-hoc room vanished");
        let answer = Input::History(Answer::Page {
            conn: ConnId(1),
            room: RoomId(1),
            lines: vec![],
            more: false,
            ids: false,
        });
        assert_eq!(s.input(answer), vec![]);
        assert_eq!(jobs(&s.line(1, "/history")).len(), 1);
    }

    #[test]
    fn an_ad_hoc_rooms_kept_lines_go_when_it_is_made_and_when_it_vanishes() {
        let mut s = stored(&[]);
        s.join(1, "alice");
        let forget = Job::ForgetRoom {
            room: "#dev".into(),
        };
        assert_eq!(jobs(&s.line(1, "/join #Dev")), vec![forget.clone()]);
        assert_eq!(jobs(&s.line(1, "/part")), vec![forget]);
        s.line(1, "/history #dev");
        assert_eq!(
            s.line(1, "/history #nope 5"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::NoSuchRoom {
                    room: "#nope".into()
                })
            )]
        );
    }

    #[test]
    fn restored_lines_are_shown_on_joining_and_numbering_goes_on_after_them() {
        let mut s = stored(&[]);
        let kept = (8..=10)
            .map(|seq| KeptLine {
                room: "#lobby".into(),
                seq,
                at: 1_600_000_000,
                from: "alice".into(),
                text: format!("line {seq}"),
                me: false,
            })
            .collect();
        s.chat.restore_history(&s.now.clone(), "#LOBBY", kept, 12);
        s.connect(2);
        assert_eq!(shown(&s.line(2, "bob")).0, lines(8, 10));
        assert!(matches!(
            jobs(&s.line(2, "next")).as_slice(),
            [Job::Keep(KeptLine { seq: 13, .. })]
        ));
    }

    #[test]
    fn a_dm_to_someone_offline_waits_if_registered_and_is_refused_plainly_if_not() {
        let mut s = stored(&["bob"]);
        s.join(1, "alice");
        let mail = s.line(1, "/dm BOB are you there?");
        assert_eq!(
            jobs(&mail),
            vec![Job::Mail {
                conn: ConnId(1),
                dm: KeptDm {
                    at: s.now.stamp.unix,
                    from: "alice".into(),
                    to: "bob".into(),
                    text: "are you there?".into(),
                },
            }]
        );
        let told = |kept| {
            Input::History(Answer::Mailed {
                conn: ConnId(1),
                to: "bob".into(),
                kept,
            })
        };
        assert_eq!(
            s.input(told(true)),
            vec![to_one(
                1,
                ServerMsg::Notice(Notice::Mailed { name: "bob".into() })
            )]
        );
        assert_eq!(
            s.input(told(false)),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::MailboxFull { name: "bob".into() })
            )]
        );
        assert_eq!(
            s.line(1, "/dm carol hi"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::OfflineGuest {
                    name: "carol".into()
                })
            )]
        );
        s.join(3, "carol");
        let online = s.line(1, "/dm carol hi");
        assert!(matches!(
            jobs(&online).as_slice(),
            [Job::KeepDm(KeptDm { to, .. })] if to == "carol"
        ));
    }

    #[test]
    fn without_a_store_a_dm_needs_its_recipient_online() {
        let mut s = Script::new();
        let account = Account {
            name: "bob".into(),
            role: Role::User,
            password_hash: "$argon2id$x".into(),
        };
        s.chat.registry.apply(&Change::PutAccount(account));
        s.join(1, "alice");
        assert_eq!(
            s.line(1, "/dm bob hi"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::UnknownUser { name: "bob".into() })
            )]
        );
    }

    #[test]
    fn a_registered_login_gets_its_mail_then_it_is_marked_delivered() {
        let mut s = stored(&["bob"]);
        s.connect(2);
        s.line(2, "bob");
        s.line(2, "the password");
        let joined = s.input(Input::PasswordDone {
            conn: ConnId(2),
            outcome: crate::core::PasswordOutcome::Verified,
        });
        assert_eq!(
            jobs(&joined),
            vec![Job::Mailbox {
                conn: ConnId(2),
                name: "bob".into()
            }]
        );
        let mail = |id, text: &str| Mail {
            id,
            at: 1_600_000_000,
            from: "alice".into(),
            text: text.into(),
        };
        let answer = Input::History(Answer::Mailbox {
            conn: ConnId(2),
            name: "bob".into(),
            mail: vec![mail(4, "one"), mail(9, "two")],
        });
        let at = s.now.stamp.with_unix(1_600_000_000);
        let direct = |text: &str| {
            to_one(
                2,
                ServerMsg::Direct {
                    at,
                    from: "alice".into(),
                    text: text.into(),
                },
            )
        };
        assert_eq!(
            s.input(answer.clone()),
            vec![
                to_one(2, ServerMsg::Notice(Notice::Mailbox { count: 2 })),
                direct("one"),
                direct("two"),
                Action::History(Job::Delivered {
                    name: "bob".into(),
                    up_to: 9
                }),
            ]
        );
        s.input(Input::Disconnected { conn: ConnId(2) });
        assert_eq!(s.input(answer), vec![], "gone: it stays in the mailbox");
        s.join(3, "guest");
        assert!(
            jobs(&s.line(3, "hi")).len() == 1,
            "a guest's join asks for no mail"
        );
    }
}
