//! Who is here: the user list, away status, and leaving.

use super::super::rooms::RoomId;
use super::super::{Chat, CloseReason, ConnId, Now, Outbox, Recipients};
use crate::proto::msg::{Done, LeaveKind, Reject, ServerMsg, UserEntry};

/// Lists the users online to `conn`.
pub fn users(chat: &Chat, conn: ConnId, out: &mut Outbox) {
    out.deliver(
        Recipients::One(conn),
        ServerMsg::Users {
            users: chat.sessions.entries(),
        },
    );
}

/// Tells `conn` who the user named `name` is: role, account, rooms, away.
pub fn whois(chat: &Chat, now: &Now, conn: ConnId, name: &str, out: &mut Outbox) {
    let uptime = chat.uptime(now.instant);
    let found = chat.sessions.find(name).and_then(|target| {
        let session = chat.sessions.get(target)?;
        let name = chat.sessions.name_of(target)?.to_owned();
        let rooms = std::iter::once(RoomId::DEFAULT)
            .chain(chat.rooms.joined(target).iter().copied())
            .map(|room| chat.rooms.name(room).to_owned())
            .collect();
        Some(ServerMsg::UserInfo {
            user: UserEntry {
                name,
                role: session.role,
                away: session.away.clone(),
            },
            registered: session.registered,
            rooms,
            idle_secs: u64::from(uptime.saturating_sub(session.active)),
            since: {
                let secs = uptime.saturating_sub(session.connected);
                now.stamp.with_unix(now.stamp.unix - i64::from(secs))
            },
        })
    });
    let msg = found.unwrap_or_else(|| {
        ServerMsg::Reject(Reject::UnknownUser {
            name: name.to_owned(),
        })
    });
    out.deliver(Recipients::One(conn), msg);
}

/// Marks `conn` away; `/users` shows it, direct messages get the reason back, and everyone
/// else is told of the change (once each, in one broadcast to the default room).
pub fn away(chat: &mut Chat, conn: ConnId, reason: Option<String>, out: &mut Outbox) {
    let reason = reason.unwrap_or_default();
    set_away(chat, conn, Some(reason), Done::Away, out);
}

/// Marks `conn` back, and tells everyone else if it was away.
pub fn back(chat: &mut Chat, conn: ConnId, out: &mut Outbox) {
    set_away(chat, conn, None, Done::Back, out);
}

fn set_away(chat: &mut Chat, conn: ConnId, away: Option<String>, done: Done, out: &mut Outbox) {
    let Some(session) = chat.sessions.get_mut(conn) else {
        return;
    };
    let changed = session.away != away;
    session.away.clone_from(&away);
    out.deliver(Recipients::One(conn), ServerMsg::Done(done));
    if changed {
        tell_away(chat, conn, away, out);
    }
}

/// Tells everyone who shares a room with `conn` that its away state is now `away`: once each,
/// whatever the number of rooms shared. Everyone who has joined is in the default room, so
/// they are its members (but `conn`), in one broadcast; the console is not told. Joins gathered
/// for a crowd notice are told first, so that a newcomer is known before its change.
fn tell_away(chat: &mut Chat, conn: ConnId, away: Option<String>, out: &mut Outbox) {
    let Some(name) = chat.sessions.name_of(conn).map(str::to_owned) else {
        return;
    };
    chat.tell_crowd(RoomId::DEFAULT, out);
    let to = Recipients::Room {
        except: Some(conn),
        console: false,
    };
    out.deliver(to, ServerMsg::AwayChanged { name, away });
}

/// `conn` leaves: it gets a goodbye and is closed; the room is told it exited.
pub fn quit(chat: &mut Chat, conn: ConnId, reason: Option<String>, out: &mut Outbox) {
    out.deliver(Recipients::One(conn), ServerMsg::Bye);
    let why = CloseReason::Quit(reason.clone());
    chat.close(conn, why, LeaveKind::Exited, reason, out);
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::Action;
    use super::*;
    use crate::accounts::model::Role;
    use crate::proto::msg::{Event, UserEntry};

    fn user(name: &str, away: Option<&str>) -> UserEntry {
        UserEntry {
            name: name.into(),
            role: Role::User,
            away: away.map(Into::into),
        }
    }

    #[test]
    fn whois_tells_the_role_account_rooms_and_away_of_someone_online() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        s.line(2, "/join #dev");
        s.line(2, "/away lunch");
        s.now.instant += std::time::Duration::from_secs(5);
        s.now.stamp = s.now.stamp.with_unix(s.now.stamp.unix + 5);
        let info = ServerMsg::UserInfo {
            user: UserEntry {
                name: "bob".into(),
                role: Role::User,
                away: Some("lunch".into()),
            },
            registered: false,
            rooms: vec!["#lobby".into(), "#dev".into()],
            idle_secs: 5,
            since: s.now.stamp.with_unix(s.now.stamp.unix - 5),
        };
        assert_eq!(s.line(1, "/whois BOB"), vec![to_one(1, info)]);
        assert_eq!(
            s.line(1, "/whois nobody"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::UnknownUser {
                    name: "nobody".into()
                })
            )]
        );
    }

    #[test]
    fn users_lists_everyone_who_joined_with_their_away_status() {
        let mut s = Script::new();
        s.join(1, "bob");
        s.join(2, "alice");
        assert_eq!(
            s.line(2, "/busy"),
            vec![
                to_one(2, ServerMsg::Done(Done::Away)),
                away_told(2, "alice", Some(""))
            ]
        );
        let users = vec![user("alice", Some("")), user("bob", None)];
        assert_eq!(
            s.line(1, "/list"),
            vec![to_one(1, ServerMsg::Users { users })]
        );
        assert_eq!(
            s.line(2, "/free"),
            vec![
                to_one(2, ServerMsg::Done(Done::Back)),
                away_told(2, "alice", None)
            ]
        );
        let users = vec![user("alice", None), user("bob", None)];
        assert_eq!(
            s.line(1, "/viewusers"),
            vec![to_one(1, ServerMsg::Users { users })]
        );
    }

    /// Everyone but `id` (not the console) told that `name`'s away state is now `away`.
    fn away_told(id: u64, name: &str, away: Option<&str>) -> Action {
        Action::Deliver {
            to: Recipients::Room {
                except: Some(ConnId(id)),
                console: false,
            },
            msg: ServerMsg::AwayChanged {
                name: name.into(),
                away: away.map(Into::into),
            },
        }
    }

    #[test]
    fn an_away_change_is_told_once_to_everyone_else_and_only_when_it_changes() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        s.join(3, "carol");
        // Bob shares two rooms with alice: still one message for her.
        s.line(1, "/join #dev");
        s.line(2, "/join #dev");
        let away = to_one(2, ServerMsg::Done(Done::Away));
        let back = to_one(2, ServerMsg::Done(Done::Back));
        assert_eq!(
            s.line(2, "/away lunch"),
            vec![away.clone(), away_told(2, "bob", Some("lunch"))]
        );
        assert_eq!(s.line(2, "/away lunch"), vec![away.clone()], "no change");
        assert_eq!(
            s.line(2, "/away tea"),
            vec![away, away_told(2, "bob", Some("tea"))],
            "a new reason is a change"
        );
        assert_eq!(
            s.line(2, "/back"),
            vec![back.clone(), away_told(2, "bob", None)]
        );
        assert_eq!(s.line(2, "/back"), vec![back], "was not away");
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
                Action::Close {
                    conn: ConnId(1),
                    why: CloseReason::Quit(Some("lunch".into())),
                },
                event_to_room(exited, None)
            ]
        );
        assert_eq!(s.chat.members().collect::<Vec<_>>(), vec![ConnId(2)]);
        assert_eq!(
            s.line(1, "still here?"),
            vec![],
            "a closing connection is not heard"
        );
    }
}
