//! Saying things: to the room, or to one user.

use super::super::rooms::RoomId;
use super::super::users::State;
use super::super::{Action, Chat, ConnId, Now, Outbox, Recipients};
use crate::history::{Job, KeptDm};
use crate::proto::msg::ServerMsg;

/// `conn` says `text` to everyone else and the console; blank text is ignored, nothing is echoed.
pub fn say(chat: &mut Chat, now: &Now, conn: ConnId, text: String, out: &mut Outbox) {
    if text.trim().is_empty() {
        return;
    }
    let Some(from) = chat.sessions.name_of(conn) else {
        return;
    };
    log::debug!("{from} says {text:?}");
    let from = from.to_owned();
    let room = chat.rooms.current(conn);
    if room != RoomId::DEFAULT {
        return super::rooms::say_in(chat, now, Some(conn), &from, room, text, out);
    }
    chat.relayed += 1;
    let msg = chat.remember(
        ServerMsg::Chat {
            at: now.stamp,
            from,
            text,
        },
        out,
    );
    chat.broadcast(RoomId::DEFAULT, Some(conn), msg, out);
}

/// `conn` says `text` to the user named `to` only; nobody else, not even the console, sees it.
/// If `to` is away, the sender is told why.
pub fn direct(chat: &mut Chat, now: &Now, conn: ConnId, to: &str, text: String, out: &mut Outbox) {
    let Some(from) = chat.sessions.name_of(conn) else {
        return;
    };
    let Some(target) = chat.sessions.find(to) else {
        return super::history::mail(chat, now, conn, to, text, out);
    };
    if chat.config.store_history {
        let to = chat.sessions.name_of(target).unwrap_or(to).to_owned();
        let dm = KeptDm {
            at: now.stamp.unix,
            from: from.to_owned(),
            to,
            text: text.clone(),
        };
        out.push(Action::History(Job::KeepDm(dm)));
    }
    let msg = ServerMsg::Direct {
        at: now.stamp,
        from: from.to_owned(),
        text,
    };
    out.deliver(Recipients::One(target), msg);
    chat.relayed += 1;
    if let Some(session) = chat.sessions.get(target) {
        if let (Some(reason), State::Chatting { name }) = (&session.away, &session.state) {
            let away = ServerMsg::Away {
                name: name.clone(),
                reason: reason.clone(),
            };
            out.deliver(Recipients::One(conn), away);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::Action;
    use super::*;
    use crate::proto::msg::Reject;

    #[test]
    fn a_line_goes_to_everyone_else_and_the_console_not_back_to_the_sender() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let msg = ServerMsg::Chat {
            at: s.now.stamp,
            from: "alice".into(),
            text: "hi all".into(),
        };
        let expected = |seq| {
            vec![Action::Deliver {
                to: Recipients::Room {
                    except: Some(ConnId(1)),
                    console: true,
                },
                msg: numbered(0, seq, msg.clone()),
            }]
        };
        assert_eq!(s.line(1, "hi all"), expected(1));
        assert_eq!(
            s.line(1, "/bm hi all"),
            expected(2),
            "/bm says like a plain line"
        );
    }

    #[test]
    fn a_direct_message_goes_to_its_recipient_only() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        s.join(3, "carol");
        let msg = ServerMsg::Direct {
            at: s.now.stamp,
            from: "alice".into(),
            text: "psst".into(),
        };
        assert_eq!(s.line(1, "/dm BOB psst"), vec![to_one(2, msg)]);
        assert_eq!(
            s.line(1, "/msg dave psst"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::UnknownUser {
                    name: "dave".into()
                })
            )]
        );
    }

    #[test]
    fn a_direct_message_to_someone_away_gets_the_reason_back() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        s.line(2, "/away lunch");
        let msg = ServerMsg::Direct {
            at: s.now.stamp,
            from: "alice".into(),
            text: "psst".into(),
        };
        let away = ServerMsg::Away {
            name: "bob".into(),
            reason: "lunch".into(),
        };
        assert_eq!(
            s.line(1, "/dm bob psst"),
            vec![to_one(2, msg), to_one(1, away)]
        );
    }

    #[test]
    fn joining_users_see_the_recent_lines_marked_as_history() {
        let mut s = Script::new();
        s.join(1, "alice");
        for n in 0..25 {
            s.line(1, &format!("line {n}"));
        }
        s.line(1, "/dm alice not kept");
        s.connect(2);
        let actions = s.line(2, "bob");
        let backlog: Vec<&ServerMsg> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Deliver {
                    msg: ServerMsg::Line { msg, .. },
                    ..
                } if matches!(**msg, ServerMsg::Backlog { .. }) => Some(&**msg),
                _ => None,
            })
            .collect();
        assert_eq!(backlog.len(), 20, "the default history is 20 lines");
        assert_eq!(
            backlog[0],
            &ServerMsg::Backlog {
                at: s.now.stamp,
                from: "alice".into(),
                text: "line 5".into()
            }
        );
        assert!(
            matches!(
                actions[0],
                Action::Deliver {
                    msg: ServerMsg::Welcome { .. },
                    ..
                }
            ),
            "welcome first"
        );
    }

    #[test]
    fn blank_lines_are_ignored() {
        let mut s = Script::new();
        s.join(1, "alice");
        assert_eq!(s.line(1, ""), vec![]);
        assert_eq!(s.line(1, " \t "), vec![]);
    }
}
