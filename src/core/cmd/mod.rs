//! User commands, one file per family; this file dispatches a parsed [`Command`].

pub mod admin;
pub mod chat;
pub mod presence;

use super::{Chat, ConnId, Now, Outbox, Recipients};
use crate::proto::msg::{Command, Reject, ServerMsg};

/// Runs `command` for `conn`, who has joined the room.
pub(super) fn dispatch(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    command: Command,
    out: &mut Outbox,
) {
    match command {
        Command::Help => out.deliver(Recipients::One(conn), ServerMsg::Help),
        Command::Users => presence::users(chat, conn, out),
        Command::Quit { reason } => presence::quit(chat, conn, reason, out),
        Command::Broadcast { text } => chat::say(chat, now, conn, text, out),
        Command::Dm { to, text } => chat::direct(chat, now, conn, &to, text, out),
        Command::BadUsage { usage } => reject(conn, Reject::Usage { usage }, out),
        Command::Unknown { name } => reject(conn, Reject::UnknownCommand { name }, out),
    }
}

/// Runs `command` for `conn`, who has not chosen a name yet: only help and quit make sense.
pub(super) fn dispatch_before_join(
    chat: &mut Chat,
    conn: ConnId,
    command: Command,
    out: &mut Outbox,
) {
    match command {
        Command::Help => out.deliver(Recipients::One(conn), ServerMsg::Help),
        // Leaving: no prompt after the goodbye.
        Command::Quit { reason } => return presence::quit(chat, conn, reason, out),
        Command::Unknown { name } => reject(conn, Reject::UnknownCommand { name }, out),
        Command::Users
        | Command::Broadcast { .. }
        | Command::Dm { .. }
        | Command::BadUsage { .. } => reject(conn, Reject::NameFirst, out),
    }
    out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
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
        assert_eq!(s.line(1, "/help"), vec![to_one(1, ServerMsg::Help)]);
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
            vec![to_one(1, ServerMsg::Help), to_one(1, ServerMsg::NamePrompt)]
        );
        assert_eq!(
            s.line(1, "/quit"),
            vec![to_one(1, ServerMsg::Bye), Action::Close { conn: ConnId(1) }],
            "no prompt after the goodbye"
        );
    }
}
