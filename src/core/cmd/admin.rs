//! Moderation: kick, ban, unban, bans, grant. The console and admins share these.

use super::super::users::validate_name;
use super::super::{Action, Chat, CloseReason, Now, Outbox, Recipients};
use crate::accounts::model::{Ban, Change, Role};
use crate::proto::msg::{BanEntry, Done, LeaveKind, Moderation, Notice, Reject, ServerMsg};

/// Who is moderating: the name they act under and where their replies go.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    /// `Host` for the console, else the admin's name.
    pub name: &'a str,
    /// The console or the admin's connection.
    pub reply_to: Recipients,
}

/// Carries out a moderation request from `by`.
pub fn moderate(chat: &mut Chat, now: &Now, by: &Actor<'_>, request: Moderation, out: &mut Outbox) {
    match request {
        Moderation::Kick { name, reason } => kick(chat, by, &name, reason, out),
        Moderation::Ban { name, reason } => ban(chat, now, by, &name, reason, out),
        Moderation::Unban { name } => unban(chat, by.reply_to, &name, out),
        Moderation::Bans => bans(chat, now, by.reply_to, out),
        Moderation::Grant { name, role } => grant(chat, by, &name, role, out),
    }
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
    let why = CloseReason::Kicked {
        by: by.name.to_owned(),
        reason: reason.clone(),
    };
    chat.close(conn, why, LeaveKind::Kicked, reason, out);
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
    if name.eq_ignore_ascii_case(by.name) {
        return out.deliver(by.reply_to, ServerMsg::Reject(Reject::CannotBanSelf));
    }
    let ban = Ban {
        name: name.to_owned(),
        by: by.name.to_owned(),
        at: now.stamp.unix,
        reason: reason.clone(),
    };
    let done = ServerMsg::Done(Done::Banned {
        name: name.to_owned(),
    });
    store(chat, Change::PutBan(ban), Some((by.reply_to, done)), out);
    log::info!("{name} banned by {}", by.name);
    if let Some(conn) = chat.sessions.find(name) {
        let banned = Notice::Banned {
            name: chat.sessions.name_of(conn).unwrap_or(name).to_owned(),
            by: by.name.to_owned(),
            reason: reason.clone(),
        };
        out.deliver(Recipients::One(conn), ServerMsg::Notice(banned));
        kick(chat, by, name, reason, out);
    }
}

/// Lifts the ban on `name`.
pub fn unban(chat: &mut Chat, reply_to: Recipients, name: &str, out: &mut Outbox) {
    if chat.registry.ban(name).is_none() {
        let reject = Reject::NotBanned {
            name: name.to_owned(),
        };
        return out.deliver(reply_to, ServerMsg::Reject(reject));
    }
    let done = ServerMsg::Done(Done::Unbanned {
        name: name.to_owned(),
    });
    store(
        chat,
        Change::RemoveBan {
            name: name.to_owned(),
        },
        Some((reply_to, done)),
        out,
    );
    log::info!("{name} unbanned");
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
        let reject = Reject::NotRegistered {
            name: name.to_owned(),
        };
        return out.deliver(by.reply_to, ServerMsg::Reject(reject));
    };
    let name = account.name.clone();
    if role != Role::Admin && chat.registry.is_last_admin(&name) {
        return out.deliver(by.reply_to, ServerMsg::Reject(Reject::LastAdmin { name }));
    }
    let done = ServerMsg::Done(Done::Granted {
        name: name.clone(),
        role,
    });
    store(
        chat,
        Change::SetRole {
            name: name.clone(),
            role,
        },
        Some((by.reply_to, done)),
        out,
    );
    log::info!("{name} made {role} by {}", by.name);
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

/// Applies `change` in memory and asks the shell to persist it. `reply` goes out only once the
/// change is on disk, so a confirmation is never lost to a crash.
pub(crate) fn store(
    chat: &mut Chat,
    change: Change,
    reply: Option<(Recipients, ServerMsg)>,
    out: &mut Outbox,
) {
    chat.registry.apply(&change);
    out.push(Action::Store { change, reply });
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::ConnId;
    use super::*;
    use crate::accounts::model::Account;
    use crate::core::Input;
    use crate::proto::msg::{Event, HostCommand};

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
                Action::Close {
                    conn: ConnId(2),
                    why: CloseReason::Kicked {
                        by: "root".into(),
                        reason: Some("be nice".into())
                    },
                },
                event_to_room(kicked, None),
            ]
        );
    }

    /// A store action whose confirmation goes to connection `id` once written.
    fn stored(change: Change, id: u64, done: Done) -> Action {
        Action::Store {
            change,
            reply: Some((Recipients::One(ConnId(id)), ServerMsg::Done(done))),
        }
    }

    #[test]
    fn a_ban_is_stored_kicks_the_holder_and_refuses_the_name_until_lifted() {
        let mut s = admin_script();
        let actions = s.line(1, "/ban carol spam");
        let ban = Ban {
            name: "carol".into(),
            by: "root".into(),
            at: s.now.stamp.unix,
            reason: Some("spam".into()),
        };
        assert_eq!(
            actions[0],
            stored(
                Change::PutBan(ban),
                1,
                Done::Banned {
                    name: "carol".into()
                }
            )
        );
        let kicked = ServerMsg::Kicked {
            by: "root".into(),
            reason: Some("spam".into()),
        };
        let told = Notice::Banned {
            name: "carol".into(),
            by: "root".into(),
            reason: Some("spam".into()),
        };
        assert_eq!(actions[1], to_one(2, ServerMsg::Notice(told)), "told why");
        assert_eq!(actions[2], to_one(2, kicked));
        assert_eq!(
            actions[3],
            Action::Close {
                conn: ConnId(2),
                why: CloseReason::Kicked {
                    by: "root".into(),
                    reason: Some("spam".into())
                },
            }
        );
        s.connect(3);
        let banned = ServerMsg::Reject(Reject::Banned {
            name: "Carol".into(),
            reason: Some("spam".into()),
        });
        assert_eq!(s.line(3, "Carol")[0], to_one(3, banned));
        let bans = s.line(1, "/bans");
        assert!(
            matches!(&bans[0], Action::Deliver { msg: ServerMsg::Bans { bans }, .. } if bans.len() == 1 && bans[0].by == "root")
        );
        let unban = Change::RemoveBan {
            name: "CAROL".into(),
        };
        assert_eq!(
            s.line(1, "/unban CAROL"),
            vec![stored(
                unban,
                1,
                Done::Unbanned {
                    name: "CAROL".into()
                }
            )]
        );
        let not_banned = ServerMsg::Reject(Reject::NotBanned {
            name: "carol".into(),
        });
        assert_eq!(s.line(1, "/unban carol"), vec![to_one(1, not_banned)]);
        s.join(4, "carol");
    }

    #[test]
    fn grant_needs_a_registered_name_and_tells_the_user() {
        let mut s = admin_script();
        let not_registered = ServerMsg::Reject(Reject::NotRegistered {
            name: "carol".into(),
        });
        assert_eq!(
            s.line(1, "/grant carol admin"),
            vec![to_one(1, not_registered)]
        );
        s.login(3, "bob");
        let change = Change::SetRole {
            name: "bob".into(),
            role: Role::Admin,
        };
        assert_eq!(
            s.line(1, "/changegrant BOB 1"),
            vec![
                stored(
                    change,
                    1,
                    Done::Granted {
                        name: "bob".into(),
                        role: Role::Admin
                    }
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

    #[test]
    fn an_admin_may_not_ban_themself_and_the_console_still_may_ban_anyone() {
        let mut s = admin_script();
        assert_eq!(
            s.line(1, "/ban ROOT oops"),
            vec![to_one(1, ServerMsg::Reject(Reject::CannotBanSelf))]
        );
        assert!(s.chat.registry.ban("root").is_none());
        assert!(s.chat.sessions.find("root").is_some(), "still online");
    }

    #[test]
    fn the_last_admin_cannot_be_made_a_user_but_one_of_two_can() {
        let mut s = admin_script();
        let last = ServerMsg::Reject(Reject::LastAdmin {
            name: "root".into(),
        });
        assert_eq!(s.line(1, "/grant root user"), vec![to_one(1, last.clone())]);
        assert_eq!(
            s.input(Input::Host(HostCommand::Moderate(Moderation::Grant {
                name: "root".into(),
                role: Role::User
            }))),
            vec![Action::Deliver {
                to: Recipients::Console,
                msg: last
            }],
            "the console too: the rule is about the accounts, whoever asks"
        );
        s.line(1, "/grant bob admin");
        let demoted = s.line(1, "/grant root user");
        assert!(
            matches!(
                &demoted[0],
                Action::Store {
                    change: Change::SetRole {
                        role: Role::User,
                        ..
                    },
                    ..
                }
            ),
            "{demoted:?}"
        );
        assert_eq!(
            s.line(1, "/kick carol"),
            vec![to_one(1, ServerMsg::Reject(Reject::PermissionDenied))]
        );
    }
}
