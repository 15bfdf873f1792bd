//! The chat core: every rule of the chat, with no sockets and no clock of its own.
//!
//! [`Chat`] is a state machine. The shell calls [`Chat::handle`] once for each [`Input`], with the
//! time it read for that batch, then drains the [`Outbox`] and carries out each [`Action`] in order:
//! deliveries, closes, shutdown. The core never blocks, never fails, and never looks at bytes:
//! how a [`ServerMsg`](crate::proto::ServerMsg) looks on the wire is the codecs' business.

pub mod cmd;
mod host;
pub mod input;
pub mod output;
pub mod users;

pub use input::{ConnId, Input, Now};
pub use output::{Action, Outbox, Recipients};

use crate::proto::msg::{ClientMsg, Event, LeaveKind, Reject, ServerMsg};
use crate::proto::DecodeError;
use users::{Sessions, State};

/// The room and everyone in it.
#[derive(Debug, Default)]
pub struct Chat {
    sessions: Sessions,
    shutting_down: bool,
    /// Say and dm frames dropped because their text did not match its digest.
    bad_digests: u64,
}

impl Chat {
    /// An empty room.
    pub fn new() -> Chat {
        Chat::default()
    }

    /// Applies one input, appending what must happen to `out`.
    pub fn handle(&mut self, now: &Now, input: Input, out: &mut Outbox) {
        if self.shutting_down {
            return;
        }
        match input {
            Input::Connected { conn } => {
                self.sessions.connect(conn);
                let online = self.sessions.joined_count();
                out.deliver(Recipients::One(conn), ServerMsg::Greeting { online });
            }
            Input::Message { conn, msg } => self.handle_message(now, conn, msg, out),
            Input::BadInput { conn, error } => self.bad_input(conn, error, out),
            Input::Disconnected { conn } => self.leave(conn, LeaveKind::Exited, None, out),
            Input::Host(command) => host::handle(self, now, command, out),
        }
    }

    /// How many say or dm frames were dropped because their text did not match its digest.
    pub fn bad_digests(&self) -> u64 {
        self.bad_digests
    }

    /// The connections of everyone in the room, for the shell to deliver room messages to.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.sessions.members()
    }

    fn handle_message(&mut self, now: &Now, conn: ConnId, msg: ClientMsg, out: &mut Outbox) {
        let Some(state) = self.sessions.state(conn) else {
            // Closed by the core already; what it still sent is moot.
            return;
        };
        match (state, msg) {
            (_, ClientMsg::Ping { nonce }) => {
                out.deliver(
                    Recipients::One(conn),
                    ServerMsg::Pong {
                        nonce,
                        at: now.stamp,
                    },
                );
            }
            (State::AwaitingName, ClientMsg::Say { text: name } | ClientMsg::Hello { name }) => {
                self.join(conn, &name, out)
            }
            (State::AwaitingName, ClientMsg::Command(command)) => {
                cmd::dispatch_before_join(self, conn, command, out)
            }
            (State::Chatting { .. }, ClientMsg::Say { text }) => {
                cmd::chat::say(self, now, conn, text, out)
            }
            (State::Chatting { .. }, ClientMsg::Hello { .. }) => {
                out.deliver(
                    Recipients::One(conn),
                    ServerMsg::Reject(Reject::AlreadyJoined),
                );
            }
            (State::Chatting { .. }, ClientMsg::Command(command)) => {
                cmd::dispatch(self, now, conn, command, out)
            }
        }
    }

    /// Tells `conn` what was wrong with its input; if its stream cannot be read on, closes it and
    /// tells the room it exited. A message whose digest did not match is dropped and counted.
    fn bad_input(&mut self, conn: ConnId, error: DecodeError, out: &mut Outbox) {
        log::info!("{conn}: bad input: {error}");
        if let DecodeError::BadDigest { .. } = error {
            self.bad_digests += 1;
        }
        out.deliver(
            Recipients::One(conn),
            ServerMsg::Reject(Reject::BadInput(error)),
        );
        if error.is_fatal() {
            out.push(Action::Close { conn });
            self.leave(conn, LeaveKind::Exited, None, out);
        }
    }

    fn join(&mut self, conn: ConnId, name: &str, out: &mut Outbox) {
        let name = name.trim();
        if name.is_empty() {
            out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
            return;
        }
        if let Err(reject) = self.sessions.check_name(name) {
            out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
            out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
            return;
        }
        let others = self.sessions.names();
        self.sessions.join(conn, name);
        log::info!("{conn} joined as {name}");
        out.deliver(
            Recipients::One(conn),
            ServerMsg::Welcome {
                name: name.to_owned(),
                others,
            },
        );
        let entered = Event::Entered {
            name: name.to_owned(),
        };
        out.deliver(
            Recipients::Room {
                except: Some(conn),
                console: true,
            },
            ServerMsg::Event(entered),
        );
    }

    /// Forgets `conn`; if it had joined, tells the room and the console how it left.
    fn leave(&mut self, conn: ConnId, kind: LeaveKind, reason: Option<String>, out: &mut Outbox) {
        if let Some(name) = self.sessions.remove(conn) {
            log::info!("{conn} ({name}) left: {kind:?}");
            let left = Event::Left { name, kind, reason };
            out.deliver(
                Recipients::Room {
                    except: None,
                    console: true,
                },
                ServerMsg::Event(left),
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A scripted room for the core's tests: a fixed clock, fake connections, recorded actions.

    use super::*;
    use crate::proto::msg::{HostCommand, Stamp};
    use std::time::Instant;

    /// A chat with a fixed clock whose every step returns the actions it produced.
    pub struct Script {
        pub chat: Chat,
        pub now: Now,
    }

    impl Script {
        pub fn new() -> Script {
            Script {
                chat: Chat::new(),
                now: Now {
                    instant: Instant::now(),
                    stamp: Stamp::new(1_700_000_000, 12, 34, 56),
                },
            }
        }

        pub fn input(&mut self, input: Input) -> Vec<Action> {
            let mut out = Outbox::new();
            self.chat.handle(&self.now, input, &mut out);
            out.drain().collect()
        }

        pub fn connect(&mut self, id: u64) -> Vec<Action> {
            self.input(Input::Connected { conn: ConnId(id) })
        }

        pub fn line(&mut self, id: u64, line: &str) -> Vec<Action> {
            let msg = crate::proto::text::parse_line(line);
            self.input(Input::Message {
                conn: ConnId(id),
                msg,
            })
        }

        pub fn host(&mut self, command: HostCommand) -> Vec<Action> {
            self.input(Input::Host(command))
        }

        /// Connects `id` and joins it as `name`.
        pub fn join(&mut self, id: u64, name: &str) {
            self.connect(id);
            let actions = self.line(id, name);
            assert!(
                matches!(
                    actions.first(),
                    Some(Action::Deliver {
                        msg: ServerMsg::Welcome { .. },
                        ..
                    })
                ),
                "{name} could not join: {actions:?}"
            );
        }
    }

    pub fn to_one(id: u64, msg: ServerMsg) -> Action {
        Action::Deliver {
            to: Recipients::One(ConnId(id)),
            msg,
        }
    }

    pub fn event_to_room(event: Event, except: Option<u64>) -> Action {
        let to = Recipients::Room {
            except: except.map(ConnId),
            console: true,
        };
        Action::Deliver {
            to,
            msg: ServerMsg::Event(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_new_connection_is_greeted_with_the_count_online() {
        let mut s = Script::new();
        s.join(1, "alice");
        assert_eq!(
            s.connect(2),
            vec![to_one(2, ServerMsg::Greeting { online: 1 })]
        );
    }

    #[test]
    fn joining_welcomes_the_user_and_tells_the_others_and_the_console() {
        let mut s = Script::new();
        s.join(1, "bob");
        s.connect(2);
        assert_eq!(
            s.line(2, "alice"),
            vec![
                to_one(
                    2,
                    ServerMsg::Welcome {
                        name: "alice".into(),
                        others: vec!["bob".into()]
                    }
                ),
                event_to_room(
                    Event::Entered {
                        name: "alice".into()
                    },
                    Some(2)
                ),
            ]
        );
        let mut members: Vec<ConnId> = s.chat.members().collect();
        members.sort();
        assert_eq!(members, vec![ConnId(1), ConnId(2)]);
    }

    #[test]
    fn a_refused_name_gets_the_reason_and_the_prompt_and_the_connection_stays() {
        let mut s = Script::new();
        s.join(1, "Bob");
        s.connect(2);
        for (name, reject) in [
            ("BOB", Reject::NameTaken),
            ("host", Reject::NameReserved),
            ("a b", Reject::NameInvalid),
        ] {
            assert_eq!(
                s.line(2, name),
                vec![
                    to_one(2, ServerMsg::Reject(reject)),
                    to_one(2, ServerMsg::NamePrompt)
                ],
                "{name}"
            );
        }
        assert_eq!(s.line(2, "   "), vec![to_one(2, ServerMsg::NamePrompt)]);
        s.join(3, "carol");
    }

    #[test]
    fn leaving_frees_the_name_and_tells_the_room_once() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let gone = Input::Disconnected { conn: ConnId(1) };
        let exited = Event::Left {
            name: "alice".into(),
            kind: LeaveKind::Exited,
            reason: None,
        };
        assert_eq!(s.input(gone.clone()), vec![event_to_room(exited, None)]);
        assert_eq!(s.input(gone), vec![]);
        s.join(3, "ALICE");
    }

    #[test]
    fn a_connection_that_never_named_itself_leaves_silently() {
        let mut s = Script::new();
        s.connect(1);
        assert_eq!(s.input(Input::Disconnected { conn: ConnId(1) }), vec![]);
    }

    #[test]
    fn a_line_too_long_is_refused_and_the_connection_stays() {
        let mut s = Script::new();
        s.join(1, "alice");
        let bad = Input::BadInput {
            conn: ConnId(1),
            error: DecodeError::LineTooLong,
        };
        assert_eq!(
            s.input(bad),
            vec![to_one(
                1,
                ServerMsg::Reject(Reject::BadInput(DecodeError::LineTooLong))
            )]
        );
        assert_eq!(s.chat.members().count(), 1);
    }

    #[test]
    fn a_digest_mismatch_is_refused_naming_the_message_counted_and_not_relayed() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let error = DecodeError::BadDigest { id: 42 };
        let bad = Input::BadInput {
            conn: ConnId(1),
            error,
        };
        assert_eq!(
            s.input(bad.clone()),
            vec![to_one(1, ServerMsg::Reject(Reject::BadInput(error)))]
        );
        s.input(bad);
        assert_eq!(s.chat.bad_digests(), 2);
        assert_eq!(s.chat.members().count(), 2, "nobody is closed");
    }

    #[test]
    fn a_fatal_decode_error_is_told_then_closes_and_the_room_hears_an_exit() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let error = DecodeError::FrameTooLong {
            len: 1 << 20,
            max: 1 << 16,
        };
        let exited = Event::Left {
            name: "alice".into(),
            kind: LeaveKind::Exited,
            reason: None,
        };
        assert_eq!(
            s.input(Input::BadInput {
                conn: ConnId(1),
                error
            }),
            vec![
                to_one(1, ServerMsg::Reject(Reject::BadInput(error))),
                Action::Close { conn: ConnId(1) },
                event_to_room(exited, None),
            ]
        );
        assert_eq!(s.chat.bad_digests(), 0);
        assert_eq!(s.chat.members().collect::<Vec<_>>(), vec![ConnId(2)]);
        assert_eq!(s.input(Input::Disconnected { conn: ConnId(1) }), vec![]);
    }

    #[test]
    fn a_bad_version_closes_a_connection_that_never_joined_silently() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.connect(2);
        let error = DecodeError::BadVersion { version: 9 };
        assert_eq!(
            s.input(Input::BadInput {
                conn: ConnId(2),
                error
            }),
            vec![
                to_one(2, ServerMsg::Reject(Reject::BadInput(error))),
                Action::Close { conn: ConnId(2) },
            ]
        );
    }

    #[test]
    fn a_framed_hello_joins_like_a_typed_name() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.connect(2);
        let hello = |name: &str| Input::Message {
            conn: ConnId(2),
            msg: ClientMsg::Hello { name: name.into() },
        };
        assert_eq!(
            s.input(hello("ALICE")),
            vec![
                to_one(2, ServerMsg::Reject(Reject::NameTaken)),
                to_one(2, ServerMsg::NamePrompt)
            ]
        );
        let joined = s.input(hello("bob"));
        assert_eq!(
            joined.first(),
            Some(&to_one(
                2,
                ServerMsg::Welcome {
                    name: "bob".into(),
                    others: vec!["alice".into()]
                }
            ))
        );
        assert_eq!(
            s.input(hello("carol")),
            vec![to_one(2, ServerMsg::Reject(Reject::AlreadyJoined))]
        );
    }

    #[test]
    fn ping_is_answered_with_the_server_time_in_any_state() {
        let mut s = Script::new();
        s.connect(1);
        let ping = Input::Message {
            conn: ConnId(1),
            msg: ClientMsg::Ping { nonce: 7 },
        };
        assert_eq!(
            s.input(ping),
            vec![to_one(
                1,
                ServerMsg::Pong {
                    nonce: 7,
                    at: s.now.stamp
                }
            )]
        );
    }
}
