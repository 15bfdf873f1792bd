//! Room commands: join, switch, make, part, list, who, topic, me, remove, mod; and saying a
//! line in a room other than the default one.

use super::super::rooms::RoomId;
use super::super::{Action, Chat, ConnId, Now, Outbox, Recipients};
use crate::accounts::model::Role;
use crate::proto::msg::{
    Command, Departure, Done, MemberEntry, Notice, Reject, RoomCommand, RoomEntry, RoomLine,
    ServerMsg, TopicEntry,
};

/// Runs a room command for `conn`, who has joined.
pub fn run(chat: &mut Chat, now: &Now, conn: ConnId, command: RoomCommand, out: &mut Outbox) {
    match command {
        RoomCommand::Join { room } => join(chat, conn, &room, out),
        RoomCommand::Switch { room } => switch(chat, conn, &room, out),
        RoomCommand::Create { room } => create(chat, conn, &room, out),
        RoomCommand::Part { room, reason } => part(chat, conn, room.as_deref(), reason, out),
        RoomCommand::List => list(chat, Recipients::One(conn), out),
        RoomCommand::Who { room } => who(chat, conn, room.as_deref(), out),
        RoomCommand::Topic { text: None } => show_topic(chat, conn, out),
        RoomCommand::Topic { text: Some(text) } => set_topic(chat, now, conn, text, out),
        RoomCommand::Me { text } => me(chat, now, conn, text, out),
        RoomCommand::Remove { name, reason } => remove(chat, conn, &name, reason, out),
        RoomCommand::Mod { name } => make_moderator(chat, conn, &name, out),
    }
}

fn reject(conn: ConnId, reject: Reject, out: &mut Outbox) {
    out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
}

fn is_admin(chat: &Chat, conn: ConnId) -> bool {
    chat.sessions
        .get(conn)
        .is_some_and(|s| s.role == Role::Admin)
}

/// Whether `conn` moderates `room`: admins moderate every room.
fn moderates(chat: &Chat, conn: ConnId, room: RoomId) -> bool {
    let name = chat.sessions.name_of(conn).unwrap_or_default();
    is_admin(chat, conn) || chat.rooms.get(room).is_some_and(|r| r.is_moderator(name))
}

/// The room named `name`, or the reason there is none.
fn find(chat: &Chat, name: &str) -> Result<RoomId, Reject> {
    super::super::rooms::validate_room_name(name)?;
    chat.rooms.lookup(name).ok_or_else(|| Reject::NoSuchRoom {
        room: name.to_owned(),
    })
}

/// The room named `name` that `conn` is in, or the reason it is not.
pub(super) fn find_joined(chat: &Chat, conn: ConnId, name: &str) -> Result<RoomId, Reject> {
    let room = find(chat, name)?;
    if !chat.rooms.is_member(conn, room) {
        return Err(Reject::NotInRoom {
            room: chat.rooms.name(room).to_owned(),
        });
    }
    Ok(room)
}

/// `/join #room`: joins it (making it, ad hoc, if there is none and users may) and makes it
/// current; the user is told, sees its topic and history, and the room hears of it.
pub fn join(chat: &mut Chat, conn: ConnId, name: &str, out: &mut Outbox) {
    let Some(me) = chat.sessions.name_of(conn).map(str::to_owned) else {
        return;
    };
    if let Err(e) = super::super::rooms::validate_room_name(name) {
        return reject(conn, e, out);
    }
    let existing = chat.rooms.lookup(name);
    if let Some(room) = existing.filter(|&room| chat.rooms.is_member(conn, room)) {
        let room = chat.rooms.name(room).to_owned();
        return reject(conn, Reject::AlreadyInRoom { room }, out);
    }
    let max = chat.rooms.config().max_rooms_per_user;
    if chat.rooms.joined(conn).len() + 1 >= max {
        return reject(conn, Reject::TooManyRoomsForUser { max }, out);
    }
    let (room, created) = match existing {
        Some(room) => (room, false),
        None if !chat.rooms.config().create_rooms && !is_admin(chat, conn) => {
            let room = name.to_owned();
            return reject(conn, Reject::RoomCreationClosed { room }, out);
        }
        None => match chat.rooms.create(name, false) {
            Ok(room) => (room, true),
            Err(e) => return reject(conn, e, out),
        },
    };
    if created {
        chat.made_room(room, out);
        if let Some(r) = chat.rooms.get_mut(room) {
            r.moderators.insert(me.to_ascii_lowercase());
        }
    }
    let crowded = chat.is_crowded_after_join(room);
    chat.rooms.add_member(room, conn);
    log::info!("{conn} ({me}) joined {}", chat.rooms.name(room));
    out.push(Action::EnteredRoom { conn, room });
    let tag = chat.rooms.tag(room);
    let members = chat.member_count(room);
    out.deliver(
        Recipients::One(conn),
        ServerMsg::Done(Done::JoinedRoom {
            room: tag.clone(),
            members,
            created,
        }),
    );
    if let Some(topic) = chat.rooms.get(room).and_then(|r| r.topic.clone()) {
        let msg = ServerMsg::Topic {
            room: tag.name.clone(),
            topic: Some(topic),
        };
        out.deliver(Recipients::One(conn), msg);
    }
    chat.show_history(conn, room, out);
    if crowded {
        return chat.rooms.gather(room, &me, true, chat.now);
    }
    let line = RoomLine::Entered {
        names: vec![me],
        more: 0,
    };
    chat.broadcast(room, Some(conn), ServerMsg::Room { room: tag, line }, out);
}

/// Runs `command` in the joined room `name` as if it were current, then makes the current room
/// what it was (if the user is still in it).
pub fn within(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    name: &str,
    command: Command,
    out: &mut Outbox,
) {
    let room = match find_joined(chat, conn, name) {
        Ok(room) => room,
        Err(e) => return reject(conn, e, out),
    };
    let current = chat.rooms.current(conn);
    chat.rooms.set_current(conn, room);
    // One level only: a room inside a room names no other room.
    let command = match command {
        Command::In { command, .. } => *command,
        command => command,
    };
    super::dispatch(chat, now, conn, command, out);
    if chat.rooms.is_member(conn, current) {
        chat.rooms.set_current(conn, current);
    }
}

/// `/room #room`: makes a joined room current.
pub fn switch(chat: &mut Chat, conn: ConnId, name: &str, out: &mut Outbox) {
    let room = match find_joined(chat, conn, name) {
        Ok(room) => room,
        Err(e) => return reject(conn, e, out),
    };
    chat.rooms.set_current(conn, room);
    let room = chat.rooms.tag(room);
    out.deliver(
        Recipients::One(conn),
        ServerMsg::Done(Done::SwitchedRoom { room }),
    );
}

/// `/room create #room` (admins): makes a persistent room; the creator does not join it.
pub fn create(chat: &mut Chat, conn: ConnId, name: &str, out: &mut Outbox) {
    if !is_admin(chat, conn) {
        return reject(conn, Reject::PermissionDenied, out);
    }
    match chat.rooms.create(name, true) {
        Ok(room) => {
            chat.made_room(room, out);
            let room = chat.rooms.name(room).to_owned();
            log::info!("{conn} made the persistent room {room}");
            out.push(Action::SaveRooms {
                rooms: chat.rooms.persistent(),
            });
            out.deliver(
                Recipients::One(conn),
                ServerMsg::Done(Done::RoomCreated { room }),
            );
        }
        Err(e) => reject(conn, e, out),
    }
}

/// `/part [#room] [REASON]`: leaves the named room, or the current one. The default room
/// cannot be left.
pub fn part(
    chat: &mut Chat,
    conn: ConnId,
    name: Option<&str>,
    reason: Option<String>,
    out: &mut Outbox,
) {
    let room = match name {
        Some(name) => match find_joined(chat, conn, name) {
            Ok(room) => room,
            Err(e) => return reject(conn, e, out),
        },
        None => chat.rooms.current(conn),
    };
    if room == RoomId::DEFAULT {
        let room = chat.rooms.name(room).to_owned();
        return reject(conn, Reject::CannotLeaveDefaultRoom { room }, out);
    }
    let Some(me) = chat.sessions.name_of(conn).map(str::to_owned) else {
        return;
    };
    let line = RoomLine::Left {
        names: vec![me.clone()],
        more: 0,
        how: Departure::Parted,
        reason,
    };
    // The room may be gone once left: its name is taken before.
    let room_name = chat.rooms.name(room).to_owned();
    leave(chat, conn, &me, room, line, out);
    let current = chat.rooms.tag(chat.rooms.current(conn)).name;
    let left = Done::PartedRoom {
        room: room_name,
        current,
    };
    out.deliver(Recipients::One(conn), ServerMsg::Done(left));
}

/// Takes `conn` (as `name`) out of `room`, telling the room `line` first (the leaver hears it
/// too) unless the room is crowded.
fn leave(
    chat: &mut Chat,
    conn: ConnId,
    name: &str,
    room: RoomId,
    line: RoomLine,
    out: &mut Outbox,
) {
    let crowded = chat.is_crowded(room) && matches!(line, RoomLine::Left { .. });
    if crowded {
        chat.rooms.gather(room, name, false, chat.now);
    } else {
        let tag = chat.rooms.tag(room);
        chat.broadcast(room, None, ServerMsg::Room { room: tag, line }, out);
    }
    log::info!("{conn} ({name}) left {}", chat.rooms.name(room));
    out.push(Action::LeftRoom { conn, room });
    chat.remove_member(room, conn, out);
}

/// `/rooms` and the console's `ROOMS`: every room with its member count and topic.
pub fn list(chat: &Chat, reply_to: Recipients, out: &mut Outbox) {
    let rooms = chat
        .rooms
        .iter()
        .map(|r| RoomEntry {
            name: r.name.clone(),
            members: chat.member_count(r.id),
            topic: r.topic.as_ref().map(|t| t.text.clone()),
            persistent: r.persistent && r.id != RoomId::DEFAULT,
        })
        .collect();
    out.deliver(reply_to, ServerMsg::Rooms { rooms });
}

/// `/who [#room]`: the members of a room (any room, joined or not), with their marks.
pub fn who(chat: &Chat, conn: ConnId, name: Option<&str>, out: &mut Outbox) {
    let room = match name {
        Some(name) => match find(chat, name) {
            Ok(room) => room,
            Err(e) => return reject(conn, e, out),
        },
        None => chat.rooms.current(conn),
    };
    let Some(r) = chat.rooms.get(room) else {
        return;
    };
    let entry = |member: ConnId| {
        let session = chat.sessions.get(member)?;
        let name = chat.sessions.name_of(member)?;
        Some(MemberEntry {
            name: name.to_owned(),
            moderator: session.role == Role::Admin || r.is_moderator(name),
            away: session.away.clone(),
        })
    };
    let members = if room == RoomId::DEFAULT {
        // Sorted already: the sessions keep the names in order.
        chat.sessions.members().filter_map(entry).collect()
    } else {
        let mut members: Vec<MemberEntry> = r.members.iter().filter_map(|&m| entry(m)).collect();
        members.sort_by_cached_key(|m| m.name.to_ascii_lowercase());
        members
    };
    out.deliver(
        Recipients::One(conn),
        ServerMsg::Who {
            room: r.name.clone(),
            members,
        },
    );
}

fn show_topic(chat: &Chat, conn: ConnId, out: &mut Outbox) {
    let room = chat.rooms.current(conn);
    let Some(r) = chat.rooms.get(room) else {
        return;
    };
    let msg = ServerMsg::Topic {
        room: r.name.clone(),
        topic: r.topic.clone(),
    };
    out.deliver(Recipients::One(conn), msg);
}

/// `/topic TEXT` (moderators): sets the current room's topic and tells the room who set it.
fn set_topic(chat: &mut Chat, now: &Now, conn: ConnId, text: String, out: &mut Outbox) {
    let room = chat.rooms.current(conn);
    if !moderates(chat, conn, room) {
        let room = chat.rooms.name(room).to_owned();
        return reject(conn, Reject::NotModerator { room }, out);
    }
    let by = chat.sessions.name_of(conn).unwrap_or_default().to_owned();
    let persistent = match chat.rooms.get_mut(room) {
        Some(r) => {
            r.topic = Some(TopicEntry {
                text: text.clone(),
                by: by.clone(),
                at: now.stamp,
            });
            r.persistent
        }
        None => return,
    };
    if persistent {
        out.push(Action::SaveRooms {
            rooms: chat.rooms.persistent(),
        });
    }
    let tag = chat.rooms.tag(room);
    let line = RoomLine::Topic { text, by };
    chat.broadcast(room, None, ServerMsg::Room { room: tag, line }, out);
}

/// `/me TEXT`: an action line to the current room (not echoed, like a plain line).
fn me(chat: &mut Chat, now: &Now, conn: ConnId, text: String, out: &mut Outbox) {
    let Some(from) = chat.sessions.name_of(conn).map(str::to_owned) else {
        return;
    };
    let room = chat.rooms.current(conn);
    chat.relayed += 1;
    let tag = chat.rooms.tag(room);
    let line = RoomLine::Me {
        at: now.stamp,
        from,
        text,
    };
    let msg = chat.remember_in(room, ServerMsg::Room { room: tag, line }, out);
    chat.broadcast(room, Some(conn), msg, out);
}

/// A plain line to `room` (not the default room) from `from` (`conn`, or the host when `None`).
pub fn say_in(
    chat: &mut Chat,
    now: &Now,
    conn: Option<ConnId>,
    from: &str,
    room: RoomId,
    text: String,
    out: &mut Outbox,
) {
    chat.relayed += 1;
    let tag = chat.rooms.tag(room);
    let line = RoomLine::Chat {
        at: now.stamp,
        from: from.to_owned(),
        text,
    };
    let msg = chat.remember_in(room, ServerMsg::Room { room: tag, line }, out);
    chat.tell_crowd(room, out);
    // The host's own lines are not echoed to the console, as in the default room.
    let to = super::super::to_room(room, conn, conn.is_some());
    out.deliver(to, msg);
}

/// `/remove NAME [REASON]` (moderators): takes NAME out of the current room only.
fn remove(chat: &mut Chat, conn: ConnId, name: &str, reason: Option<String>, out: &mut Outbox) {
    let room = chat.rooms.current(conn);
    let room_name = chat.rooms.name(room).to_owned();
    if !moderates(chat, conn, room) {
        return reject(conn, Reject::NotModerator { room: room_name }, out);
    }
    if room == RoomId::DEFAULT {
        return reject(
            conn,
            Reject::CannotLeaveDefaultRoom { room: room_name },
            out,
        );
    }
    let target = chat
        .sessions
        .find(name)
        .filter(|&t| chat.rooms.is_member(t, room));
    let (Some(target), Some(target_name)) = (
        target,
        target.and_then(|t| chat.sessions.name_of(t).map(str::to_owned)),
    ) else {
        let name = name.to_owned();
        return reject(
            conn,
            Reject::UserNotInRoom {
                name,
                room: room_name,
            },
            out,
        );
    };
    let by = chat.sessions.name_of(conn).unwrap_or_default().to_owned();
    let line = RoomLine::Removed {
        name: target_name.clone(),
        by: by.clone(),
        reason: reason.clone(),
    };
    leave(chat, target, &target_name, room, line, out);
    let current = chat.rooms.tag(chat.rooms.current(target)).name;
    let notice = Notice::RemovedFromRoom {
        room: room_name,
        by,
        reason,
        current,
    };
    out.deliver(Recipients::One(target), ServerMsg::Notice(notice));
}

/// `/mod NAME` (moderators): makes NAME, a member of the current room, a moderator of it.
fn make_moderator(chat: &mut Chat, conn: ConnId, name: &str, out: &mut Outbox) {
    let room = chat.rooms.current(conn);
    let room_name = chat.rooms.name(room).to_owned();
    if !moderates(chat, conn, room) {
        return reject(conn, Reject::NotModerator { room: room_name }, out);
    }
    let target = chat
        .sessions
        .find(name)
        .filter(|&t| chat.rooms.is_member(t, room));
    let Some(target) = target else {
        let name = name.to_owned();
        return reject(
            conn,
            Reject::UserNotInRoom {
                name,
                room: room_name,
            },
            out,
        );
    };
    let target_name = chat.sessions.name_of(target).unwrap_or_default().to_owned();
    if moderates(chat, target, room) {
        let reject_msg = Reject::AlreadyModerator {
            name: target_name,
            room: room_name,
        };
        return reject(conn, reject_msg, out);
    }
    if let Some(r) = chat.rooms.get_mut(room) {
        r.moderators.insert(target_name.to_ascii_lowercase());
    }
    let by = chat.sessions.name_of(conn).unwrap_or_default().to_owned();
    let tag = chat.rooms.tag(room);
    let line = RoomLine::Moderator {
        name: target_name,
        by,
    };
    chat.broadcast(room, None, ServerMsg::Room { room: tag, line }, out);
}

#[cfg(test)]
mod tests {
    use super::super::super::rooms::RoomConfig;
    use super::super::super::testing::*;
    use super::super::super::{ChatConfig, Input};
    use super::*;
    use crate::accounts::model::{Account, Change};
    use crate::proto::msg::{ClientMsg, Event, HostCommand, LeaveKind, RoomTag};
    use std::time::Duration;

    const DEV: RoomId = RoomId(1);

    fn tag(name: &str) -> RoomTag {
        RoomTag {
            name: name.into(),
            default: name == "#lobby",
        }
    }

    fn in_room(room: RoomId, except: Option<u64>, name: &str, line: RoomLine) -> Action {
        let msg = ServerMsg::Room {
            room: tag(name),
            line,
        };
        let to = if room == RoomId::DEFAULT {
            Recipients::Room {
                except: except.map(ConnId),
                console: true,
            }
        } else {
            Recipients::InRoom {
                room,
                except: except.map(ConnId),
                console: true,
            }
        };
        Action::Deliver { to, msg }
    }

    fn entered(name: &str) -> RoomLine {
        RoomLine::Entered {
            names: vec![name.into()],
            more: 0,
        }
    }

    fn refused(id: u64, reject: Reject) -> Vec<Action> {
        vec![to_one(id, ServerMsg::Reject(reject))]
    }

    fn joined(id: u64, name: &str, members: usize, created: bool) -> Action {
        to_one(
            id,
            ServerMsg::Done(Done::JoinedRoom {
                room: tag(name),
                members,
                created,
            }),
        )
    }

    /// alice (1) and bob (2) in #dev, which alice made; carol (3) in the lobby only.
    fn dev() -> Script {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        s.join(3, "carol");
        s.line(1, "/join #dev");
        s.line(2, "/join #dev");
        s
    }

    fn with_admin(mut s: Script, id: u64) -> Script {
        let admin = Account {
            name: "root".into(),
            role: Role::Admin,
            password_hash: "$argon2id$r".into(),
        };
        s.chat.registry.apply(&Change::PutAccount(admin));
        s.login(id, "root");
        s
    }

    #[test]
    fn a_command_in_a_named_room_runs_there_and_keeps_the_current_room() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        s.line(1, "/join #dev");
        s.line(2, "/join #dev");
        s.line(1, "/room #lobby");
        let said = s.input(Input::Message {
            conn: ConnId(1),
            msg: ClientMsg::Command(Command::In {
                room: "#DEV".into(),
                command: Box::new(Command::Broadcast { text: "hi".into() }),
            }),
        });
        assert!(
            matches!(&said[..], [Action::Deliver { msg: ServerMsg::Line { msg, .. }, .. }]
                if matches!(&**msg, ServerMsg::Room { room, .. } if room.name == "#dev")),
            "{said:?}"
        );
        assert_eq!(s.chat.rooms.current(ConnId(1)), RoomId::DEFAULT);
        let refused = s.input(Input::Message {
            conn: ConnId(2),
            msg: ClientMsg::Command(Command::In {
                room: "#ops".into(),
                command: Box::new(Command::Broadcast { text: "hi".into() }),
            }),
        });
        assert_eq!(
            refused,
            vec![to_one(
                2,
                ServerMsg::Reject(Reject::NoSuchRoom {
                    room: "#ops".into()
                })
            )]
        );
    }

    #[test]
    fn join_makes_an_ad_hoc_room_its_creator_moderates_and_makes_it_current() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        assert_eq!(
            s.line(1, "/join #Dev"),
            vec![
                Action::EnteredRoom {
                    conn: ConnId(1),
                    room: DEV
                },
                joined(1, "#Dev", 1, true),
                in_room(DEV, Some(1), "#Dev", entered("alice")),
            ]
        );
        assert_eq!(
            s.line(2, "/join #DEV"),
            vec![
                Action::EnteredRoom {
                    conn: ConnId(2),
                    room: DEV
                },
                joined(2, "#Dev", 2, false),
                in_room(DEV, Some(2), "#Dev", entered("bob")),
            ],
            "names are unique ignoring case and shown as created"
        );
        let said = RoomLine::Chat {
            at: s.now.stamp,
            from: "alice".into(),
            text: "hi".into(),
        };
        assert_eq!(
            s.line(1, "hi"),
            vec![nth(in_room(DEV, Some(1), "#Dev", said), DEV.0, 1)],
            "plain lines go to the current room"
        );
        assert_eq!(
            s.line(2, "/join #dev"),
            refused(
                2,
                Reject::AlreadyInRoom {
                    room: "#Dev".into()
                }
            )
        );
        assert_eq!(
            s.line(2, "/join dev"),
            refused(2, Reject::RoomNameInvalid { room: "dev".into() })
        );
    }

    #[test]
    fn room_switches_the_current_room_among_those_joined() {
        let mut s = dev();
        assert_eq!(
            s.line(1, "/room #lobby"),
            vec![to_one(
                1,
                ServerMsg::Done(Done::SwitchedRoom {
                    room: tag("#lobby")
                })
            )]
        );
        let lobby_line = ServerMsg::Chat {
            at: s.now.stamp,
            from: "alice".into(),
            text: "back here".into(),
        };
        assert_eq!(
            s.line(1, "back here"),
            vec![Action::Deliver {
                to: Recipients::Room {
                    except: Some(ConnId(1)),
                    console: true
                },
                msg: numbered(0, 1, lobby_line)
            }]
        );
        assert_eq!(
            s.line(3, "/room #dev"),
            refused(
                3,
                Reject::NotInRoom {
                    room: "#dev".into()
                }
            )
        );
        assert_eq!(
            s.line(3, "/room #nowhere"),
            refused(
                3,
                Reject::NoSuchRoom {
                    room: "#nowhere".into()
                }
            )
        );
    }

    #[test]
    fn part_leaves_falls_back_and_an_empty_ad_hoc_room_vanishes() {
        let mut s = dev();
        s.line(2, "/join #ops");
        s.line(2, "/room #dev");
        let left = RoomLine::Left {
            names: vec!["bob".into()],
            more: 0,
            how: Departure::Parted,
            reason: Some("lunch".into()),
        };
        assert_eq!(
            s.line(2, "/part lunch"),
            vec![
                in_room(DEV, None, "#dev", left),
                Action::LeftRoom {
                    conn: ConnId(2),
                    room: DEV
                },
                to_one(
                    2,
                    ServerMsg::Done(Done::PartedRoom {
                        room: "#dev".into(),
                        current: "#ops".into()
                    })
                ),
            ],
            "the current room falls back to the room joined last"
        );
        let parted = s.line(2, "/part #ops");
        assert_eq!(
            parted.last(),
            Some(&to_one(
                2,
                ServerMsg::Done(Done::PartedRoom {
                    room: "#ops".into(),
                    current: "#lobby".into()
                })
            )),
            "then the default room"
        );
        assert_eq!(s.chat.rooms.lookup("#ops"), None, "#ops was left empty");
        assert_eq!(
            s.line(2, "/part"),
            refused(
                2,
                Reject::CannotLeaveDefaultRoom {
                    room: "#lobby".into()
                }
            )
        );
        assert_eq!(
            s.line(2, "/part #dev"),
            refused(
                2,
                Reject::NotInRoom {
                    room: "#dev".into()
                }
            )
        );
    }

    #[test]
    fn joining_a_room_shows_its_topic_and_history_as_history() {
        let mut s = dev();
        s.line(1, "/topic Rust talk");
        s.line(1, "first");
        s.line(2, "/me waves");
        let actions = s.line(3, "/join #dev");
        let topic = ServerMsg::Topic {
            room: "#dev".into(),
            topic: Some(TopicEntry {
                text: "Rust talk".into(),
                by: "alice".into(),
                at: s.now.stamp,
            }),
        };
        let history = |from: &str, text: &str, me, seq| {
            let line = ServerMsg::Room {
                room: tag("#dev"),
                line: RoomLine::History {
                    at: s.now.stamp,
                    from: from.into(),
                    text: text.into(),
                    me,
                },
            };
            to_one(3, numbered(DEV.0, seq, line))
        };
        assert_eq!(
            actions[1..],
            [
                joined(3, "#dev", 3, false),
                to_one(3, topic),
                history("alice", "first", false, 1),
                history("bob", "waves", true, 2),
                in_room(DEV, Some(3), "#dev", entered("carol")),
            ]
        );
    }

    #[test]
    fn rooms_lists_every_room_and_who_lists_members_with_marks() {
        let mut s = with_admin(dev(), 4);
        s.line(2, "/away lunch");
        s.line(4, "/room create #ops");
        assert_eq!(
            s.line(3, "/rooms"),
            vec![to_one(
                3,
                ServerMsg::Rooms {
                    rooms: vec![
                        RoomEntry {
                            name: "#dev".into(),
                            members: 2,
                            topic: None,
                            persistent: false
                        },
                        RoomEntry {
                            name: "#lobby".into(),
                            members: 4,
                            topic: None,
                            persistent: false
                        },
                        RoomEntry {
                            name: "#ops".into(),
                            members: 0,
                            topic: None,
                            persistent: true
                        },
                    ]
                }
            )]
        );
        let member = |name: &str, moderator, away: Option<&str>| MemberEntry {
            name: name.into(),
            moderator,
            away: away.map(str::to_owned),
        };
        assert_eq!(
            s.line(3, "/who #DEV"),
            vec![to_one(
                3,
                ServerMsg::Who {
                    room: "#dev".into(),
                    members: vec![
                        member("alice", true, None),
                        member("bob", false, Some("lunch"))
                    ]
                }
            )]
        );
        assert_eq!(
            s.line(3, "/who"),
            vec![to_one(
                3,
                ServerMsg::Who {
                    room: "#lobby".into(),
                    members: vec![
                        member("alice", false, None),
                        member("bob", false, Some("lunch")),
                        member("carol", false, None),
                        member("root", true, None),
                    ]
                }
            )],
            "admins moderate every room"
        );
    }

    #[test]
    fn only_moderators_set_the_topic_and_setting_it_tells_the_room() {
        let mut s = dev();
        assert_eq!(
            s.line(2, "/topic mine"),
            refused(
                2,
                Reject::NotModerator {
                    room: "#dev".into()
                }
            )
        );
        assert_eq!(
            s.line(2, "/topic"),
            vec![to_one(
                2,
                ServerMsg::Topic {
                    room: "#dev".into(),
                    topic: None
                }
            )]
        );
        let set = RoomLine::Topic {
            text: "Rust talk".into(),
            by: "alice".into(),
        };
        assert_eq!(
            s.line(1, "/topic Rust talk"),
            vec![in_room(DEV, None, "#dev", set)],
            "an ad-hoc room's topic is not saved"
        );
        assert_eq!(
            s.line(3, "/topic lobby things"),
            refused(
                3,
                Reject::NotModerator {
                    room: "#lobby".into()
                }
            )
        );
    }

    #[test]
    fn me_is_an_action_line_in_the_current_room_remembered_as_history() {
        let mut s = dev();
        let at = s.now.stamp;
        let waves = |room: RoomId, name: &str| {
            let line = RoomLine::Me {
                at,
                from: "carol".into(),
                text: "waves".into(),
            };
            nth(in_room(room, Some(3), name, line), room.0, 1)
        };
        let lobby = waves(RoomId::DEFAULT, "#lobby");
        assert_eq!(s.line(3, "/me waves"), vec![lobby]);
        s.line(3, "/join #dev");
        assert_eq!(s.line(3, "/me waves"), vec![waves(DEV, "#dev")]);
        assert_eq!(
            s.line(3, "/me"),
            refused(3, Reject::Usage { usage: "/me TEXT" })
        );
        s.join(4, "dave");
        let history = ServerMsg::Room {
            room: tag("#lobby"),
            line: RoomLine::History {
                at: s.now.stamp,
                from: "carol".into(),
                text: "waves".into(),
                me: true,
            },
        };
        s.connect(5);
        let actions = s.line(5, "erin");
        assert!(
            actions.contains(&to_one(5, numbered(0, 1, history))),
            "{actions:?}"
        );
    }

    #[test]
    fn a_moderator_removes_a_user_from_the_room_only_and_makes_moderators() {
        let mut s = dev();
        assert_eq!(
            s.line(2, "/remove alice"),
            refused(
                2,
                Reject::NotModerator {
                    room: "#dev".into()
                }
            )
        );
        assert_eq!(
            s.line(1, "/remove carol"),
            refused(
                1,
                Reject::UserNotInRoom {
                    name: "carol".into(),
                    room: "#dev".into()
                }
            )
        );
        let removed = RoomLine::Removed {
            name: "bob".into(),
            by: "alice".into(),
            reason: Some("noise".into()),
        };
        assert_eq!(
            s.line(1, "/remove BOB noise"),
            vec![
                in_room(DEV, None, "#dev", removed),
                Action::LeftRoom {
                    conn: ConnId(2),
                    room: DEV
                },
                to_one(
                    2,
                    ServerMsg::Notice(Notice::RemovedFromRoom {
                        room: "#dev".into(),
                        by: "alice".into(),
                        reason: Some("noise".into()),
                        current: "#lobby".into()
                    })
                ),
            ]
        );
        assert!(s.chat.sessions.find("bob").is_some(), "still on the server");
        s.line(2, "/join #dev");
        let made = RoomLine::Moderator {
            name: "bob".into(),
            by: "alice".into(),
        };
        assert_eq!(
            s.line(1, "/mod bob"),
            vec![in_room(DEV, None, "#dev", made)]
        );
        assert_eq!(
            s.line(2, "/mod alice"),
            refused(
                2,
                Reject::AlreadyModerator {
                    name: "alice".into(),
                    room: "#dev".into()
                }
            )
        );
        let topic = s.line(2, "/topic bob's now");
        assert_eq!(topic.len(), 1, "a new moderator may set the topic");
    }

    #[test]
    fn the_room_limits_and_no_create_rooms_refuse_clearly() {
        let config = ChatConfig {
            rooms: RoomConfig {
                max_rooms: 3,
                max_rooms_per_user: 3,
                ..RoomConfig::default()
            },
            ..ChatConfig::default()
        };
        let mut s = Script::with_config(config);
        s.join(1, "alice");
        s.join(2, "bob");
        s.line(1, "/join #a");
        s.line(1, "/join #b");
        assert_eq!(
            s.line(1, "/join #c"),
            refused(1, Reject::TooManyRoomsForUser { max: 3 })
        );
        assert_eq!(
            s.line(2, "/join #c"),
            refused(2, Reject::TooManyRooms { max: 3 })
        );
        assert_eq!(s.line(2, "/join #a").len(), 3, "an existing room is fine");

        let closed = ChatConfig {
            rooms: RoomConfig {
                create_rooms: false,
                ..RoomConfig::default()
            },
            ..ChatConfig::default()
        };
        let mut s = Script::with_config(closed);
        s.join(1, "alice");
        assert_eq!(
            s.line(1, "/join #mine"),
            refused(
                1,
                Reject::RoomCreationClosed {
                    room: "#mine".into()
                }
            )
        );
    }

    #[test]
    fn an_admin_makes_persistent_rooms_which_are_saved_and_stay_when_empty() {
        let mut s = with_admin(Script::new(), 1);
        s.join(2, "bob");
        assert_eq!(
            s.line(2, "/room create #ops"),
            refused(2, Reject::PermissionDenied)
        );
        let made = s.line(1, "/room create #Ops");
        let saved = Action::SaveRooms {
            rooms: vec![untitled("#lobby"), untitled("#Ops")],
        };
        assert_eq!(
            made,
            vec![
                saved,
                to_one(
                    1,
                    ServerMsg::Done(Done::RoomCreated {
                        room: "#Ops".into()
                    })
                )
            ]
        );
        assert_eq!(
            s.line(1, "/room create #OPS"),
            refused(
                1,
                Reject::RoomExists {
                    room: "#Ops".into()
                }
            )
        );
        s.line(2, "/join #ops");
        s.line(2, "/part");
        assert!(s.chat.rooms.lookup("#ops").is_some());
        let topic = s.line(1, "/join #ops");
        assert!(topic.len() >= 2);
        let set = s.line(1, "/topic ops only");
        assert!(
            matches!(&set[0], Action::SaveRooms { rooms } if rooms[1].topic.as_ref().is_some_and(|t| t.text == "ops only")),
            "{set:?}"
        );
    }

    /// A persistent room without a topic, for expected actions.
    fn untitled(name: &str) -> super::super::super::rooms::PersistentRoom {
        super::super::super::rooms::PersistentRoom {
            name: name.into(),
            topic: None,
        }
    }

    #[test]
    fn leaving_the_server_is_told_in_every_room_of_the_user() {
        let mut s = dev();
        let exited = RoomLine::Left {
            names: vec!["bob".into()],
            more: 0,
            how: Departure::Exited,
            reason: None,
        };
        let lobby = event_to_room(
            Event::Left {
                name: "bob".into(),
                kind: LeaveKind::Exited,
                reason: None,
            },
            None,
        );
        assert_eq!(
            s.input(Input::Disconnected { conn: ConnId(2) }),
            vec![in_room(DEV, None, "#dev", exited), lobby]
        );
        assert_eq!(s.chat.rooms.joined(ConnId(2)), &[] as &[RoomId]);
        s.input(Input::Disconnected { conn: ConnId(1) });
        assert_eq!(s.chat.rooms.lookup("#dev"), None);
    }

    #[test]
    fn in_a_crowded_room_joins_and_leaves_are_told_together_before_anything_else() {
        let config = ChatConfig {
            rooms: RoomConfig {
                crowd: 2,
                ..RoomConfig::default()
            },
            ..ChatConfig::default()
        };
        let mut s = Script::with_config(config);
        s.join(1, "a");
        s.join(2, "b");
        // A third member makes the lobby crowded: the join is gathered, not told.
        let third = s.line_after_connect(3, "c");
        assert!(
            !third.iter().any(|a| matches!(
                a,
                Action::Deliver {
                    to: Recipients::Room { .. },
                    ..
                }
            )),
            "{third:?}"
        );
        s.line_after_connect(4, "d");
        assert_eq!(
            s.chat.next_deadline(),
            Some(s.now.instant + Duration::from_secs(1))
        );
        s.input(Input::Disconnected { conn: ConnId(4) });
        let crowd = |line| in_room(RoomId::DEFAULT, None, "#lobby", line);
        let entered = RoomLine::Entered {
            names: vec!["c".into(), "d".into()],
            more: 0,
        };
        let exited = RoomLine::Left {
            names: vec!["d".into()],
            more: 0,
            how: Departure::Exited,
            reason: None,
        };
        s.now.instant += Duration::from_millis(999);
        assert_eq!(s.input(Input::Tick), vec![]);
        s.now.instant += Duration::from_millis(1);
        assert_eq!(
            s.input(Input::Tick),
            vec![crowd(entered.clone()), crowd(exited)]
        );
        assert_eq!(s.chat.rooms.next_deadline(), None);
        // Told at once when someone speaks, before the line.
        s.line_after_connect(5, "e");
        let said = s.line(5, "hello");
        let entered = RoomLine::Entered {
            names: vec!["e".into()],
            more: 0,
        };
        assert_eq!(said[0], crowd(entered));
        assert!(matches!(
            &said[1],
            Action::Deliver {
                msg: ServerMsg::Line { .. },
                ..
            }
        ));
    }

    #[test]
    fn the_console_lists_rooms_and_says_in_a_room() {
        let mut s = dev();
        let listed = s.host(HostCommand::Rooms);
        assert!(
            matches!(&listed[..], [Action::Deliver { to: Recipients::Console, msg: ServerMsg::Rooms { rooms } }] if rooms.len() == 2),
            "{listed:?}"
        );
        let said = RoomLine::Chat {
            at: s.now.stamp,
            from: "Host".into(),
            text: "hello dev".into(),
        };
        assert_eq!(
            s.host(HostCommand::SayIn {
                room: "#DEV".into(),
                text: "hello dev".into()
            }),
            vec![Action::Deliver {
                to: Recipients::InRoom {
                    room: DEV,
                    except: None,
                    console: false
                },
                msg: numbered(
                    DEV.0,
                    1,
                    ServerMsg::Room {
                        room: tag("#dev"),
                        line: said
                    }
                )
            }]
        );
        let lobby = s.host(HostCommand::SayIn {
            room: "#lobby".into(),
            text: "hi all".into(),
        });
        assert!(matches!(
            &lobby[..],
            [Action::Deliver {
                to: Recipients::Room { .. },
                msg: ServerMsg::Line { .. }
            }]
        ));
        assert_eq!(
            s.host(HostCommand::SayIn {
                room: "#none".into(),
                text: "x".into()
            }),
            vec![Action::Deliver {
                to: Recipients::Console,
                msg: ServerMsg::Reject(Reject::NoSuchRoom {
                    room: "#none".into()
                })
            }]
        );
    }

    #[test]
    fn dms_stay_server_wide() {
        let mut s = dev();
        let dm = s.line(1, "/dm carol psst");
        assert!(matches!(
            &dm[..],
            [Action::Deliver {
                to: Recipients::One(ConnId(3)),
                msg: ServerMsg::Direct { .. }
            }]
        ));
    }
}
