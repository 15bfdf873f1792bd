//! User commands, one file per family; this file dispatches a parsed [`Command`] by state and role.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod history;
pub mod info;
pub mod presence;
pub mod rooms;

use super::users::State;
use super::{Chat, ConnId, Now, Outbox, Recipients};
use crate::accounts::model::Role;
use crate::proto::msg::{Command, Reject, ServerMsg};
use admin::Actor;

/// Runs `command` for `conn`, who has joined the room.
pub(super) fn dispatch(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    command: Command,
    out: &mut Outbox,
) {
    let Some(session) = chat.sessions.get(conn) else {
        return;
    };
    let is_admin = session.role == Role::Admin;
    match command {
        Command::Help => info::help(is_admin, Recipients::One(conn), out),
        Command::Users => presence::users(chat, conn, out),
        Command::Away { reason } => presence::away(chat, conn, reason, out),
        Command::Back => presence::back(chat, conn, out),
        Command::WhoAmI => info::whoami(chat, conn, out),
        Command::Whois { name } => presence::whois(chat, now, conn, &name, out),
        Command::Time => out.deliver(Recipients::One(conn), ServerMsg::Time { at: now.stamp }),
        Command::Ping => out.deliver(
            Recipients::One(conn),
            ServerMsg::Pong {
                nonce: 0,
                at: now.stamp,
            },
        ),
        Command::Stats => info::stats(chat, now, conn, out),
        Command::Quit { reason } => presence::quit(chat, conn, reason, out),
        Command::Broadcast { text } => chat::say(chat, now, conn, text, out),
        Command::Dm { to, text } => chat::direct(chat, now, conn, &to, text, out),
        Command::Register { password } => auth::register(chat, conn, password, out),
        Command::Passwd { old, new } => auth::passwd(chat, conn, old, new, out),
        Command::PasswdAsk => auth::passwd_ask(chat, conn, out),
        Command::Moderate(_) if !is_admin => reject(conn, Reject::PermissionDenied, out),
        Command::Moderate(request) => {
            let by = chat.sessions.name_of(conn).unwrap_or_default().to_owned();
            let admin = Actor {
                name: &by,
                reply_to: Recipients::One(conn),
            };
            admin::moderate(chat, now, &admin, request, out)
        }
        Command::Room(command) => rooms::run(chat, now, conn, command, out),
        Command::In { room, command } => rooms::within(chat, now, conn, &room, *command, out),
        Command::History { room, count } => {
            history::history(chat, conn, room.as_deref(), count, out)
        }
        Command::ChatHistory { room, span, limit } => {
            history::chathistory(chat, conn, &room, span, limit, out)
        }
        Command::BadUsage { usage } => reject(conn, Reject::Usage { usage }, out),
        Command::Unknown { name } => reject(conn, Reject::UnknownCommand { name }, out),
    }
}

/// Runs `command` for `conn`, who has not joined yet: only help and quit make sense, and the
/// prompt for what is expected follows.
pub(super) fn dispatch_before_join(
    chat: &mut Chat,
    conn: ConnId,
    command: Command,
    out: &mut Outbox,
) {
    let awaiting_password = matches!(
        chat.sessions.get(conn).map(|s| &s.state),
        Some(State::AwaitingPassword { .. })
    );
    match command {
        Command::Help => info::help(false, Recipients::One(conn), out),
        Command::Quit { reason } => return presence::quit(chat, conn, reason, out),
        Command::Unknown { name } => reject(conn, Reject::UnknownCommand { name }, out),
        _ if awaiting_password => reject(conn, Reject::PasswordFirst, out),
        _ => reject(conn, Reject::NameFirst, out),
    }
    let prompt = if awaiting_password {
        ServerMsg::PasswordPrompt
    } else {
        ServerMsg::NamePrompt
    };
    out.deliver(Recipients::One(conn), prompt);
}

fn reject(conn: ConnId, reject: Reject, out: &mut Outbox) {
    out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Action;
    use super::*;

    #[test]
    fn unknown_commands_and_bad_usage_are_refused() {
        let mut s = Script::new();
        s.join(1, "alice");
        assert_eq!(
            s.line(1, "/dance now"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::UnknownCommand {
                    name: "dance".into()
                })
            )]
        );
        assert_eq!(
            s.line(1, "/bm"),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::Usage { usage: "/bm TEXT" })
            )]
        );
    }

    #[test]
    fn help_lists_the_commands() {
        let mut s = Script::new();
        s.join(1, "alice");
        assert_eq!(
            s.line(1, "/help"),
            vec![to_one(1, ServerMsg::Help { admin: false })]
        );
    }

    #[test]
    fn before_joining_only_help_and_quit_work_and_the_prompt_follows() {
        let mut s = Script::new();
        s.connect(1);
        assert_eq!(
            s.line(1, "/users"),
            vec![
                to_one(1, ServerMsg::Reject(Reject::NameFirst)),
                to_one(1, ServerMsg::NamePrompt)
            ]
        );
        assert_eq!(
            s.line(1, "/help"),
            vec![
                to_one(1, ServerMsg::Help { admin: false }),
                to_one(1, ServerMsg::NamePrompt)
            ]
        );
        assert_eq!(
            s.line(1, "/quit"),
            vec![
                to_one(1, ServerMsg::Bye),
                Action::Close {
                    conn: ConnId(1),
                    why: crate::core::CloseReason::Quit(None),
                }
            ],
            "no prompt after the goodbye"
        );
    }
}
