//! Room commands: join, switch, make, part, list, who, topic, me, remove, mod; and saying a
//! line in a room other than the default one.

use super::super::rooms::RoomId;
use super::super::{Action, Chat, ConnId, Now, Outbox, Recipients};
use crate::accounts::model::Role;
use crate::proto::msg::{
    Departure, Done, MemberEntry, Notice, Reject, RoomCommand, RoomEntry, RoomLine, ServerMsg,
    TopicEntry,
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
fn find_joined(chat: &Chat, conn: ConnId, name: &str) -> Result<RoomId, Reject> {
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
        if let Some(r) = chat.rooms.get_mut(room) {
            r.moderators.insert(me.to_ascii_lowercase());
        }
    }
    let crowded = chat.is_crowded_after_join(room);
    chat.rooms.add_member(room, conn, &me);
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
    leave(chat, conn, &me, room, line, out);
    let current = chat.rooms.tag(chat.rooms.current(conn)).name;
    let left = Done::PartedRoom {
        room: chat.rooms.name(room).to_owned(),
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
    // The room's name is needed after it may be gone: take it before.
    chat.rooms.remove_member(room, conn, name);
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
        chat.sessions.members().filter_map(entry).collect()
    } else {
        r.members.values().filter_map(|&m| entry(m)).collect()
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
    chat.remember_in(room, now.stamp, &from, &text, true);
    chat.relayed += 1;
    let tag = chat.rooms.tag(room);
    let line = RoomLine::Me {
        at: now.stamp,
        from,
        text,
    };
    chat.broadcast(room, Some(conn), ServerMsg::Room { room: tag, line }, out);
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
    chat.remember_in(room, now.stamp, from, &text, false);
    chat.relayed += 1;
    let tag = chat.rooms.tag(room);
    let line = RoomLine::Chat {
        at: now.stamp,
        from: from.to_owned(),
        text,
    };
    chat.tell_crowd(room, out);
    // The host's own lines are not echoed to the console, as in the default room.
    let to = Recipients::InRoom {
        room,
        except: conn,
        console: conn.is_some(),
    };
    out.deliver(to, ServerMsg::Room { room: tag, line });
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
