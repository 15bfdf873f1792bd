//! Moderation: kick, ban, unban, bans, grant. The console and admins share these.

use super::super::users::validate_name;
use super::super::{Action, Chat, Now, Outbox, Recipients};
use crate::accounts::model::{Ban, Change, Role};
use crate::proto::msg::{BanEntry, Done, LeaveKind, Reject, ServerMsg};

/// Who is moderating: the name they act under and where their replies go.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    /// `Host` for the console, else the admin's name.
    pub name: &'a str,
    /// The console or the admin's connection.
    pub reply_to: Recipients,
}

/// Disconnects the user named `name`: they are told, closed, and the room is told.
pub fn kick(chat: &mut Chat, by: &Actor<'_>, name: &str, reason: Option<String>, out: &mut Outbox) {
    let Some(conn) = chat.sessions.find(name) else {
        return out.deliver(
            by.reply_to,
            ServerMsg::Reject(Reject::UnknownUser {
                name: name.to_owned(),
            }),
        );
    };
    log::info!(
        "{conn} ({name}) kicked by {} ({})",
        by.name,
        reason.as_deref().unwrap_or("no reason given")
    );
    out.deliver(
        Recipients::One(conn),
        ServerMsg::Kicked {
            by: by.name.to_owned(),
            reason: reason.clone(),
        },
    );
    chat.close(conn, LeaveKind::Kicked, reason, out);
}

/// Refuses `name` from now on, persistently, and kicks its holder if online.
pub fn ban(
    chat: &mut Chat,
    now: &Now,
    by: &Actor<'_>,
    name: &str,
    reason: Option<String>,
    out: &mut Outbox,
) {
    if let Err(reject) = validate_name(name) {
        return out.deliver(by.reply_to, ServerMsg::Reject(reject));
    }
    let ban = Ban {
        name: name.to_owned(),
        by: by.name.to_owned(),
        at: now.stamp.unix,
        reason: reason.clone(),
    };
    store(chat, Change::PutBan(ban), out);
    log::info!("{name} banned by {}", by.name);
    out.deliver(
        by.reply_to,
        ServerMsg::Done(Done::Banned {
            name: name.to_owned(),
        }),
    );
    if chat.sessions.find(name).is_some() {
        kick(chat, by, name, reason, out);
    }
}

/// Lifts the ban on `name`.
pub fn unban(chat: &mut Chat, reply_to: Recipients, name: &str, out: &mut Outbox) {
    if chat.registry.ban(name).is_none() {
        return out.deliver(
            reply_to,
            ServerMsg::Reject(Reject::NotBanned {
                name: name.to_owned(),
            }),
        );
    }
    store(
        chat,
        Change::RemoveBan {
            name: name.to_owned(),
        },
        out,
    );
    log::info!("{name} unbanned");
    out.deliver(
        reply_to,
        ServerMsg::Done(Done::Unbanned {
            name: name.to_owned(),
        }),
    );
}

/// Lists the bans: who, by whom, when, why.
pub fn bans(chat: &Chat, now: &Now, reply_to: Recipients, out: &mut Outbox) {
    let bans = chat
        .registry
        .bans()
        .map(|ban| BanEntry {
            name: ban.name.clone(),
            by: ban.by.clone(),
            at: now.stamp.with_unix(ban.at),
            reason: ban.reason.clone(),
        })
        .collect();
    out.deliver(reply_to, ServerMsg::Bans { bans });
}

/// Sets the role of the registered user `name`, telling them if they are online.
pub fn grant(chat: &mut Chat, by: &Actor<'_>, name: &str, role: Role, out: &mut Outbox) {
    let Some(account) = chat.registry.account(name) else {
        return out.deliver(
            by.reply_to,
            ServerMsg::Reject(Reject::NotRegistered {
                name: name.to_owned(),
            }),
        );
    };
    let name = account.name.clone();
    store(
        chat,
        Change::SetRole {
            name: name.clone(),
            role,
        },
        out,
    );
    log::info!("{name} made {role} by {}", by.name);
    out.deliver(
        by.reply_to,
        ServerMsg::Done(Done::Granted {
            name: name.clone(),
            role,
        }),
    );
    if let Some(conn) = chat.sessions.find(&name) {
        if let Some(session) = chat.sessions.get_mut(conn) {
            session.role = role;
        }
        let changed = Done::RoleChanged {
            role,
            by: by.name.to_owned(),
        };
        out.deliver(Recipients::One(conn), ServerMsg::Done(changed));
    }
}

/// Applies `change` in memory and asks the shell to persist it.
pub(crate) fn store(chat: &mut Chat, change: Change, out: &mut Outbox) {
    chat.registry.apply(&change);
    out.push(Action::Store(change));
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::ConnId;
    use super::*;
    use crate::accounts::model::Account;
    use crate::proto::msg::Event;

    fn admin_script() -> Script {
        let mut s = Script::new();
        let admin = Account {
            name: "root".into(),
            role: Role::Admin,
            password_hash: "$argon2id$r".into(),
        };
        let bob = Account {
            name: "bob".into(),
            role: Role::User,
            password_hash: "$argon2id$b".into(),
        };
        s.chat.registry.apply(&Change::PutAccount(admin));
        s.chat.registry.apply(&Change::PutAccount(bob));
        s.login(1, "root");
        s.join(2, "carol");
        s
    }

    #[test]
    fn users_may_not_moderate() {
        let mut s = admin_script();
        for command in [
            "/kick root",
            "/kickuser root",
            "/ban root",
            "/unban x",
            "/bans",
            "/viewkickusers",
            "/grant carol admin",
            "/changegrant carol 1",
        ] {
            assert_eq!(
                s.line(2, command),
                vec![to_one(2, ServerMsg::Reject(Reject::PermissionDenied))],
                "{command}"
            );
        }
    }

    #[test]
    fn an_admin_kicks_and_the_room_hears_it() {
        let mut s = admin_script();
        let actions = s.line(1, "/kickuser carol be nice");
        let kicked = Event::Left {
            name: "carol".into(),
            kind: LeaveKind::Kicked,
            reason: Some("be nice".into()),
        };
        assert_eq!(
            actions,
            vec![
                to_one(
                    2,
                    ServerMsg::Kicked {
                        by: "root".into(),
                        reason: Some("be nice".into())
                    }
                ),
                Action::Close { conn: ConnId(2) },
                event_to_room(kicked, None),
            ]
        );
    }

    #[test]
    fn a_ban_is_stored_kicks_the_holder_and_refuses_the_name_until_lifted() {
        let mut s = admin_script();
        let actions = s.line(1, "/ban carol spam");
        let stored = Action::Store(Change::PutBan(Ban {
            name: "carol".into(),
            by: "root".into(),
            at: s.now.stamp.unix,
            reason: Some("spam".into()),
        }));
        assert_eq!(actions[0], stored);
        assert_eq!(
            actions[1],
            to_one(
                1,
                ServerMsg::Done(Done::Banned {
                    name: "carol".into()
                })
            )
        );
        assert!(
            actions.contains(&Action::Close { conn: ConnId(2) }),
            "{actions:?}"
        );
        s.connect(3);
        assert_eq!(
            s.line(3, "Carol")[0],
            to_one(
                3,
                ServerMsg::Reject(Reject::Banned {
                    name: "Carol".into()
                })
            )
        );
        let bans = s.line(1, "/bans");
        assert!(
            matches!(&bans[0], Action::Deliver { msg: ServerMsg::Bans { bans }, .. } if bans.len() == 1 && bans[0].by == "root")
        );
        assert_eq!(
            s.line(1, "/unban CAROL")[0],
            Action::Store(Change::RemoveBan {
                name: "CAROL".into()
            })
        );
        assert_eq!(
            s.line(1, "/unban carol"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::NotBanned {
                    name: "carol".into()
                })
            )]
        );
        s.join(4, "carol");
    }

    #[test]
    fn grant_needs_a_registered_name_and_tells_the_user() {
        let mut s = admin_script();
        assert_eq!(
            s.line(1, "/grant carol admin"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::NotRegistered {
                    name: "carol".into()
                })
            )]
        );
        s.login(3, "bob");
        let actions = s.line(1, "/changegrant BOB 1");
        assert_eq!(
            actions,
            vec![
                Action::Store(Change::SetRole {
                    name: "bob".into(),
                    role: Role::Admin
                }),
                to_one(
                    1,
                    ServerMsg::Done(Done::Granted {
                        name: "bob".into(),
                        role: Role::Admin
                    })
                ),
                to_one(
                    3,
                    ServerMsg::Done(Done::RoleChanged {
                        role: Role::Admin,
                        by: "root".into()
                    })
                ),
            ]
        );
        assert_eq!(
            s.line(3, "/kick carol")[0],
            to_one(
                2,
                ServerMsg::Kicked {
                    by: "bob".into(),
                    reason: None
                }
            )
        );
    }
}
