//! The host console's commands. The host is always an admin and speaks as `Host`.

use super::cmd::admin::{self, Actor};
use super::rooms::RoomId;
use super::{Chat, Now, Outbox, Recipients};
use crate::proto::msg::{Event, HostCommand, Reject, ServerMsg};

/// The name the host speaks under.
pub const HOST_NAME: &str = "Host";

const HOST: Actor<'static> = Actor {
    name: HOST_NAME,
    reply_to: Recipients::Console,
};

pub(super) fn handle(chat: &mut Chat, now: &Now, command: HostCommand, out: &mut Outbox) {
    match command {
        HostCommand::Help => out.deliver(Recipients::Console, ServerMsg::HostHelp),
        HostCommand::ListUsers => {
            out.deliver(
                Recipients::Console,
                ServerMsg::Users {
                    users: chat.sessions.entries(),
                },
            );
        }
        HostCommand::Moderate(request) => admin::moderate(chat, now, &HOST, request, out),
        HostCommand::Say { text } => {
            chat.relayed += 1;
            let msg = chat.remember(
                ServerMsg::Chat {
                    at: now.stamp,
                    from: HOST_NAME.to_owned(),
                    text,
                },
                out,
            );
            chat.tell_crowd(RoomId::DEFAULT, out);
            out.deliver(
                Recipients::Room {
                    except: None,
                    console: false,
                },
                msg,
            );
        }
        HostCommand::Rooms => super::cmd::rooms::list(chat, Recipients::Console, out),
        HostCommand::SayIn { room, text } => {
            let found = super::rooms::validate_room_name(&room).and_then(|()| {
                chat.rooms
                    .lookup(&room)
                    .ok_or(Reject::NoSuchRoom { room: room.clone() })
            });
            match found {
                Ok(RoomId::DEFAULT) => handle(chat, now, HostCommand::Say { text }, out),
                Ok(id) => super::cmd::rooms::say_in(chat, now, None, HOST_NAME, id, text, out),
                Err(reject) => out.deliver(Recipients::Console, ServerMsg::Reject(reject)),
            }
        }
        HostCommand::BadUsage { usage } => {
            out.deliver(
                Recipients::Console,
                ServerMsg::Reject(Reject::Usage { usage }),
            );
        }
        HostCommand::Mistyped { word, meant } => {
            out.deliver(
                Recipients::Console,
                ServerMsg::Reject(Reject::MistypedHostCommand { word, meant }),
            );
        }
        HostCommand::Exit => {
            log::info!("shutting down at the host's request");
            chat.shutting_down = true;
            out.deliver(Recipients::Everyone, ServerMsg::Event(Event::Shutdown));
            out.push(super::Action::Shutdown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Action, ConnId, Input};
    use super::*;
    use crate::accounts::model::Role;
    use crate::proto::msg::{Done, LeaveKind, Moderation, UserEntry};

    #[test]
    fn the_host_speaks_to_the_room_as_host_without_echo_to_the_console() {
        let mut s = Script::new();
        s.join(1, "alice");
        let msg = ServerMsg::Chat {
            at: s.now.stamp,
            from: "Host".into(),
            text: "hello".into(),
        };
        assert_eq!(
            s.host(HostCommand::Say {
                text: "hello".into()
            }),
            vec![Action::Deliver {
                to: Recipients::Room {
                    except: None,
                    console: false
                },
                msg: numbered(0, 1, msg)
            }]
        );
    }

    #[test]
    fn kick_tells_the_user_closes_them_and_tells_the_others() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let actions = s.host(HostCommand::Moderate(Moderation::Kick {
            name: "BOB".into(),
            reason: Some("spam".into()),
        }));
        let kicked = Event::Left {
            name: "bob".into(),
            kind: LeaveKind::Kicked,
            reason: Some("spam".into()),
        };
        assert_eq!(
            actions,
            vec![
                to_one(
                    2,
                    ServerMsg::Kicked {
                        by: "Host".into(),
                        reason: Some("spam".into())
                    }
                ),
                Action::Close {
                    conn: ConnId(2),
                    why: crate::core::CloseReason::Kicked {
                        by: "Host".into(),
                        reason: Some("spam".into())
                    },
                },
                event_to_room(kicked, None),
            ]
        );
        assert_eq!(
            s.input(Input::Disconnected { conn: ConnId(2) }),
            vec![],
            "no second leave event"
        );
        assert_eq!(s.chat.members().collect::<Vec<_>>(), vec![ConnId(1)]);
    }

    #[test]
    fn a_mistyped_command_is_refused_on_the_console_and_said_to_nobody() {
        let mut s = Script::new();
        s.join(1, "bob");
        assert_eq!(
            s.host(HostCommand::Mistyped {
                word: "KIKC".into(),
                meant: "KICK"
            }),
            vec![Action::Deliver {
                to: Recipients::Console,
                msg: ServerMsg::Reject(Reject::MistypedHostCommand {
                    word: "KIKC".into(),
                    meant: "KICK"
                })
            }]
        );
        assert_eq!(s.chat.members().collect::<Vec<_>>(), vec![ConnId(1)]);
    }

    #[test]
    fn kicking_nobody_tells_the_console() {
        let mut s = Script::new();
        assert_eq!(
            s.host(HostCommand::Moderate(Moderation::Kick {
                name: "ghost".into(),
                reason: None
            })),
            vec![Action::Deliver {
                to: Recipients::Console,
                msg: ServerMsg::Reject(Reject::UnknownUser {
                    name: "ghost".into()
                })
            }]
        );
    }

    #[test]
    fn list_users_goes_to_the_console_sorted() {
        let mut s = Script::new();
        s.join(1, "zed");
        s.join(2, "Amy");
        s.connect(3);
        let user = |name: &str| UserEntry {
            name: name.into(),
            role: Role::User,
            away: None,
        };
        let users = vec![user("Amy"), user("zed")];
        assert_eq!(
            s.host(HostCommand::ListUsers),
            vec![Action::Deliver {
                to: Recipients::Console,
                msg: ServerMsg::Users { users }
            }]
        );
    }

    #[test]
    fn the_console_bans_and_lists_bans() {
        let mut s = Script::new();
        s.join(1, "eve");
        let actions = s.host(HostCommand::Moderate(Moderation::Ban {
            name: "eve".into(),
            reason: Some("spam".into()),
        }));
        let done = ServerMsg::Done(Done::Banned { name: "eve".into() });
        assert!(
            matches!(&actions[0], Action::Store { reply: Some((Recipients::Console, msg)), .. } if *msg == done),
            "{actions:?}"
        );
        assert!(actions.contains(&Action::Close {
            conn: ConnId(1),
            why: crate::core::CloseReason::Kicked {
                by: "Host".into(),
                reason: Some("spam".into())
            },
        }));
        let bans = s.host(HostCommand::Moderate(Moderation::Bans));
        assert!(
            matches!(&bans[0], Action::Deliver { to: Recipients::Console, msg: ServerMsg::Bans { bans } } if bans[0].by == "Host")
        );
    }

    #[test]
    fn exit_tells_every_connection_then_ignores_everything() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.connect(2);
        assert_eq!(
            s.host(HostCommand::Exit),
            vec![
                Action::Deliver {
                    to: Recipients::Everyone,
                    msg: ServerMsg::Event(Event::Shutdown)
                },
                Action::Shutdown,
            ]
        );
        assert_eq!(s.input(Input::Disconnected { conn: ConnId(1) }), vec![]);
        assert_eq!(s.line(2, "late"), vec![]);
    }
}
