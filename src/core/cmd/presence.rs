//! Who is here, and leaving.

use super::super::{Action, Chat, ConnId, Outbox, Recipients};
use crate::proto::msg::{LeaveKind, ServerMsg, UserEntry};

/// Lists the users online to `conn`.
pub fn users(chat: &Chat, conn: ConnId, out: &mut Outbox) {
    let users = chat
        .sessions
        .names()
        .into_iter()
        .map(|name| UserEntry { name })
        .collect();
    out.deliver(Recipients::One(conn), ServerMsg::Users { users });
}

/// `conn` leaves: it gets a goodbye and is closed; the room is told it exited.
pub fn quit(chat: &mut Chat, conn: ConnId, reason: Option<String>, out: &mut Outbox) {
    out.deliver(Recipients::One(conn), ServerMsg::Bye);
    out.push(Action::Close { conn });
    chat.leave(conn, LeaveKind::Exited, reason, out);
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::*;
    use crate::proto::msg::Event;

    #[test]
    fn users_lists_everyone_who_joined() {
        let mut s = Script::new();
        s.join(1, "bob");
        s.join(2, "alice");
        let users = vec![
            UserEntry {
                name: "alice".into(),
            },
            UserEntry { name: "bob".into() },
        ];
        assert_eq!(
            s.line(1, "/list"),
            vec![to_one(1, ServerMsg::Users { users })]
        );
    }

    #[test]
    fn quit_says_bye_closes_and_tells_the_room_with_the_reason() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let exited = Event::Left {
            name: "alice".into(),
            kind: LeaveKind::Exited,
            reason: Some("lunch".into()),
        };
        assert_eq!(
            s.line(1, "/exit lunch"),
            vec![
                to_one(1, ServerMsg::Bye),
                Action::Close { conn: ConnId(1) },
                event_to_room(exited, None)
            ]
        );
        assert_eq!(s.chat.members().collect::<Vec<_>>(), vec![ConnId(2)]);
    }
}
