//! Names and passwords: choosing a name, logging in, registering, changing a password.
//!
//! Hashing is slow on purpose, so the core never does it: it asks the shell with
//! [`Action::Password`] and hears back through [`Input::PasswordDone`](super::super::Input).

use super::super::users::{check_join_name, Pending, State};
use super::super::{Action, Chat, ConnId, Now, Outbox, PasswordJob, PasswordOutcome, Recipients};
use super::admin::store;
use crate::accounts::model::{Account, Change, Role};
use crate::proto::msg::{Done, LeaveKind, Reject, ServerMsg};

/// `conn` asks to be called `name`: join as a guest, or ask for the password of a registered name.
pub fn choose_name(chat: &mut Chat, conn: ConnId, name: &str, out: &mut Outbox) {
    let name = name.trim();
    chat.sessions.set_state(conn, State::AwaitingName);
    if name.is_empty() {
        return out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
    }
    if let Err(reject) = check_join_name(name, &chat.sessions, &chat.registry) {
        return refuse(conn, reject, out);
    }
    if let Some(account) = chat.registry.account(name) {
        let name = account.name.clone();
        chat.sessions
            .set_state(conn, State::AwaitingPassword { name });
        return out.deliver(Recipients::One(conn), ServerMsg::PasswordPrompt);
    }
    if chat.config.require_account {
        return refuse(conn, Reject::AccountRequired, out);
    }
    chat.join(conn, name, Role::User, false, out);
}

/// `conn`, awaiting its password, gave `password`: have it checked off the loop.
pub fn check_password(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    password: String,
    out: &mut Outbox,
) {
    let Some(session) = chat.sessions.get(conn) else {
        return;
    };
    let State::AwaitingPassword { name } = session.state.clone() else {
        return;
    };
    if chat
        .failed_logins
        .is_blocked(&throttle_keys(&name, session.peer), now.instant)
    {
        log::warn!("{conn}: login to {name} refused unchecked: too many failures lately");
        chat.sessions.set_state(conn, State::AwaitingName);
        return refuse(conn, Reject::TooManyAttempts, out);
    }
    let Some(account) = chat.registry.account(&name) else {
        // Deleted while we waited: start over.
        chat.sessions.set_state(conn, State::AwaitingName);
        return out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
    };
    let job = PasswordJob::Verify {
        password,
        phc: account.password_hash.clone(),
    };
    chat.sessions.set_state(conn, State::Verifying { name });
    out.push(Action::Password { conn, job });
}

/// A password job for `conn` finished.
pub fn password_done(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    outcome: PasswordOutcome,
    out: &mut Outbox,
) {
    let Some(session) = chat.sessions.get_mut(conn) else {
        return;
    };
    match (session.state.clone(), session.pending.take()) {
        (State::Verifying { name }, _) => login_done(chat, now, conn, &name, outcome, out),
        (State::Chatting { name }, Some(pending)) => {
            account_done(chat, conn, &name, pending, outcome, out)
        }
        _ => {}
    }
}

fn login_done(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    name: &str,
    outcome: PasswordOutcome,
    out: &mut Outbox,
) {
    let Some(session) = chat.sessions.get_mut(conn) else {
        return;
    };
    let held = std::mem::take(&mut session.held);
    if outcome != PasswordOutcome::Verified {
        if outcome == PasswordOutcome::Wrong {
            let keys = throttle_keys(name, session.peer);
            chat.failed_logins.record(&keys, now.instant);
        }
        let Some(session) = chat.sessions.get_mut(conn) else {
            return;
        };
        session.failures += 1;
        log::warn!(
            "{conn}: wrong password for {name} ({} so far)",
            session.failures
        );
        if session.failures >= chat.config.max_login_failures {
            out.deliver(
                Recipients::One(conn),
                ServerMsg::Reject(Reject::TooManyFailures),
            );
            return chat.close(conn, LeaveKind::Exited, None, out);
        }
        chat.sessions.set_state(conn, State::AwaitingName);
        let reject = if outcome == PasswordOutcome::Failed {
            Reject::Busy
        } else {
            Reject::WrongPassword
        };
        refuse(conn, reject, out);
    } else {
        // Someone may have taken the name, or an admin banned it, while the password was checked.
        chat.sessions.set_state(conn, State::AwaitingName);
        match check_join_name(name, &chat.sessions, &chat.registry) {
            Ok(()) => {
                let role = chat
                    .registry
                    .account(name)
                    .map_or(Role::User, |account| account.role);
                chat.join(conn, name, role, true, out);
            }
            Err(reject) => refuse(conn, reject, out),
        }
    }
    // What was typed meanwhile is read now, in the new state: the next attempt, or chat.
    for msg in held {
        chat.handle_message(now, conn, msg, out);
    }
}

fn account_done(
    chat: &mut Chat,
    conn: ConnId,
    name: &str,
    pending: Pending,
    outcome: PasswordOutcome,
    out: &mut Outbox,
) {
    let to = Recipients::One(conn);
    match (pending, outcome) {
        (Pending::Register, PasswordOutcome::Hashed(password_hash)) => {
            let role = chat.sessions.get(conn).map_or(Role::User, |s| s.role);
            let account = Account {
                name: name.to_owned(),
                role,
                password_hash,
            };
            store(
                chat,
                Change::PutAccount(account),
                Some((to, ServerMsg::Done(Done::Registered))),
                out,
            );
            if let Some(session) = chat.sessions.get_mut(conn) {
                session.registered = true;
            }
            log::info!("{conn} registered {name}");
        }
        (Pending::Passwd, PasswordOutcome::Hashed(password_hash)) => {
            let change = Change::SetPassword {
                name: name.to_owned(),
                password_hash,
            };
            store(
                chat,
                change,
                Some((to, ServerMsg::Done(Done::PasswordChanged))),
                out,
            );
            log::info!("{conn} changed the password of {name}");
        }
        (Pending::Passwd, PasswordOutcome::Wrong) => {
            out.deliver(to, ServerMsg::Reject(Reject::WrongPassword))
        }
        _ => out.deliver(to, ServerMsg::Reject(Reject::Failed)),
    }
}

/// `/register PASSWORD`: the guest `conn` claims its current name.
pub fn register(chat: &mut Chat, conn: ConnId, password: String, out: &mut Outbox) {
    let Some(name) = chat.sessions.name_of(conn) else {
        return;
    };
    let reject = if !chat.config.allow_register {
        Some(Reject::RegistrationClosed)
    } else if chat.registry.account(name).is_some() {
        Some(Reject::AlreadyRegistered)
    } else {
        None
    };
    start_job(
        chat,
        conn,
        Pending::Register,
        reject,
        PasswordJob::Hash { password },
        out,
    );
}

/// `/passwd OLD NEW`: a registered user changes their password.
pub fn passwd(chat: &mut Chat, conn: ConnId, old: String, new: String, out: &mut Outbox) {
    let Some(name) = chat.sessions.name_of(conn) else {
        return;
    };
    let Some(account) = chat.registry.account(name) else {
        let reject = Reject::NotRegistered {
            name: name.to_owned(),
        };
        return out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
    };
    let job = PasswordJob::Rehash {
        old,
        phc: account.password_hash.clone(),
        new,
    };
    start_job(chat, conn, Pending::Passwd, None, job, out);
}

fn start_job(
    chat: &mut Chat,
    conn: ConnId,
    pending: Pending,
    reject: Option<Reject>,
    job: PasswordJob,
    out: &mut Outbox,
) {
    let Some(session) = chat.sessions.get_mut(conn) else {
        return;
    };
    let reject = reject.or_else(|| session.pending.is_some().then_some(Reject::Busy));
    if let Some(reject) = reject {
        return out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
    }
    session.pending = Some(pending);
    out.push(Action::Password { conn, job });
}

/// The throttle's keys for a login to `name` from `peer`.
fn throttle_keys(name: &str, peer: std::net::IpAddr) -> [String; 2] {
    [
        format!("account:{}", name.to_lowercase()),
        format!("address:{peer}"),
    ]
}

/// Refuses a name or password: the reason, then the name prompt.
fn refuse(conn: ConnId, reject: Reject, out: &mut Outbox) {
    out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
    out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::{ChatConfig, Input};
    use super::*;
    use crate::proto::msg::ClientMsg;

    fn with_account(name: &str, role: Role) -> Script {
        let mut s = Script::new();
        let account = Account {
            name: name.into(),
            role,
            password_hash: format!("$argon2id$hash-of-{name}"),
        };
        s.chat.registry.apply(&Change::PutAccount(account));
        s
    }

    fn done(s: &mut Script, id: u64, outcome: PasswordOutcome) -> Vec<Action> {
        s.input(Input::PasswordDone {
            conn: ConnId(id),
            outcome,
        })
    }

    #[test]
    fn a_registered_name_asks_for_its_password_and_checks_it_off_the_loop() {
        let mut s = with_account("Alice", Role::Admin);
        s.connect(1);
        assert_eq!(
            s.line(1, "alice"),
            vec![to_one(1, ServerMsg::PasswordPrompt)]
        );
        let verify = PasswordJob::Verify {
            password: "secret".into(),
            phc: "$argon2id$hash-of-Alice".into(),
        };
        assert_eq!(
            s.line(1, "secret"),
            vec![Action::Password {
                conn: ConnId(1),
                job: verify
            }]
        );
        assert_eq!(
            s.chat.sessions.get(ConnId(1)).map(|s| s.state.clone()),
            Some(State::Verifying {
                name: "Alice".into()
            })
        );
        let actions = done(&mut s, 1, PasswordOutcome::Verified);
        assert!(
            matches!(&actions[0], Action::Deliver { msg: ServerMsg::Welcome { name, .. }, .. } if name == "Alice")
        );
        let me = ServerMsg::WhoAmI {
            name: "Alice".into(),
            role: Role::Admin,
            registered: true,
        };
        assert_eq!(s.line(1, "/whoami"), vec![to_one(1, me)]);
    }

    #[test]
    fn lines_typed_while_the_password_is_checked_are_kept_and_replayed() {
        let mut s = with_account("alice", Role::User);
        s.join(2, "bob");
        s.connect(1);
        s.line(1, "alice");
        s.line(1, "pw");
        assert_eq!(s.line(1, "hello bob"), vec![], "held, not lost");
        let actions = done(&mut s, 1, PasswordOutcome::Verified);
        let chat = ServerMsg::Chat {
            at: s.now.stamp,
            from: "alice".into(),
            text: "hello bob".into(),
        };
        assert_eq!(
            actions.last(),
            Some(&Action::Deliver {
                to: Recipients::Room {
                    except: Some(ConnId(1)),
                    console: true
                },
                msg: chat
            })
        );
    }

    #[test]
    fn lines_typed_during_a_failed_check_are_the_next_attempt() {
        let mut s = with_account("alice", Role::User);
        s.connect(1);
        s.line(1, "alice");
        s.line(1, "wrong");
        s.line(1, "alice");
        s.line(1, "right");
        let actions = done(&mut s, 1, PasswordOutcome::Wrong);
        let verify = PasswordJob::Verify {
            password: "right".into(),
            phc: "$argon2id$hash-of-alice".into(),
        };
        assert_eq!(
            actions,
            vec![
                to_one(1, ServerMsg::Reject(Reject::WrongPassword)),
                to_one(1, ServerMsg::NamePrompt),
                to_one(1, ServerMsg::PasswordPrompt),
                Action::Password {
                    conn: ConnId(1),
                    job: verify
                },
            ]
        );
    }

    #[test]
    fn three_wrong_passwords_close_the_connection() {
        let mut s = with_account("alice", Role::User);
        s.connect(1);
        for attempt in 1..=2 {
            s.line(1, "alice");
            s.line(1, "wrong");
            assert_eq!(
                done(&mut s, 1, PasswordOutcome::Wrong),
                vec![
                    to_one(1, ServerMsg::Reject(Reject::WrongPassword)),
                    to_one(1, ServerMsg::NamePrompt)
                ],
                "attempt {attempt}"
            );
        }
        s.line(1, "alice");
        s.line(1, "wrong");
        assert_eq!(
            done(&mut s, 1, PasswordOutcome::Wrong),
            vec![
                to_one(1, ServerMsg::Reject(Reject::TooManyFailures)),
                Action::Close { conn: ConnId(1) }
            ]
        );
        assert_eq!(
            s.line(1, "alice"),
            vec![],
            "a closing connection is not heard"
        );
    }

    #[test]
    fn an_account_with_recent_failures_is_refused_without_a_check_for_a_while() {
        let mut s = with_account("alice", Role::User);
        for id in 1..=3 {
            s.connect(id);
            s.line(id, "alice");
            s.line(id, "guess");
            done(&mut s, id, PasswordOutcome::Wrong);
        }
        s.connect(9);
        s.line(9, "alice");
        assert_eq!(
            s.line(9, "the right one"),
            vec![
                to_one(9, ServerMsg::Reject(Reject::TooManyAttempts)),
                to_one(9, ServerMsg::NamePrompt)
            ],
            "no password job is started"
        );
        s.now.instant += ChatConfig::default().login_window;
        s.line(9, "alice");
        assert!(
            matches!(s.line(9, "the right one")[..], [Action::Password { .. }]),
            "the window has passed"
        );
    }

    #[test]
    fn commands_before_the_password_are_refused_except_help_and_quit() {
        let mut s = with_account("alice", Role::User);
        s.connect(1);
        s.line(1, "alice");
        assert_eq!(
            s.line(1, "/users"),
            vec![
                to_one(1, ServerMsg::Reject(Reject::PasswordFirst)),
                to_one(1, ServerMsg::PasswordPrompt)
            ]
        );
        assert!(s
            .line(1, "/quit")
            .contains(&Action::Close { conn: ConnId(1) }));
    }

    #[test]
    fn require_account_turns_guests_away() {
        let mut s = with_account("alice", Role::User);
        s.chat.config = ChatConfig {
            require_account: true,
            ..ChatConfig::default()
        };
        s.connect(1);
        assert_eq!(
            s.line(1, "guest"),
            vec![
                to_one(1, ServerMsg::Reject(Reject::AccountRequired)),
                to_one(1, ServerMsg::NamePrompt)
            ]
        );
        assert_eq!(
            s.line(1, "alice"),
            vec![to_one(1, ServerMsg::PasswordPrompt)]
        );
    }

    #[test]
    fn a_guest_registers_its_name_and_the_change_is_stored() {
        let mut s = Script::new();
        s.join(1, "carol");
        let hash = PasswordJob::Hash {
            password: "pw one".into(),
        };
        assert_eq!(
            s.line(1, "/register pw one"),
            vec![Action::Password {
                conn: ConnId(1),
                job: hash
            }]
        );
        assert_eq!(
            s.line(1, "/register again"),
            vec![to_one(1, ServerMsg::Reject(Reject::Busy))]
        );
        let account = Account {
            name: "carol".into(),
            role: Role::User,
            password_hash: "$argon2id$new".into(),
        };
        assert_eq!(
            done(&mut s, 1, PasswordOutcome::Hashed("$argon2id$new".into())),
            vec![Action::Store {
                change: Change::PutAccount(account),
                reply: Some((
                    Recipients::One(ConnId(1)),
                    ServerMsg::Done(Done::Registered)
                ))
            }]
        );
        assert_eq!(
            s.line(1, "/register x"),
            vec![to_one(1, ServerMsg::Reject(Reject::AlreadyRegistered))]
        );
    }

    #[test]
    fn registration_can_be_closed() {
        let mut s = Script::new();
        s.chat.config.allow_register = false;
        s.join(1, "carol");
        assert_eq!(
            s.line(1, "/register pw"),
            vec![to_one(1, ServerMsg::Reject(Reject::RegistrationClosed))]
        );
    }

    #[test]
    fn passwd_checks_the_old_password_then_stores_the_new_hash() {
        let mut s = with_account("alice", Role::User);
        s.login(1, "alice");
        let rehash = PasswordJob::Rehash {
            old: "old".into(),
            phc: "$argon2id$hash-of-alice".into(),
            new: "new".into(),
        };
        assert_eq!(
            s.line(1, "/passwd old new"),
            vec![Action::Password {
                conn: ConnId(1),
                job: rehash
            }]
        );
        assert_eq!(
            done(&mut s, 1, PasswordOutcome::Wrong),
            vec![to_one(1, ServerMsg::Reject(Reject::WrongPassword))]
        );
        s.line(1, "/passwd old new");
        let stored = Change::SetPassword {
            name: "alice".into(),
            password_hash: "$argon2id$2".into(),
        };
        assert_eq!(
            done(&mut s, 1, PasswordOutcome::Hashed("$argon2id$2".into())),
            vec![Action::Store {
                change: stored,
                reply: Some((
                    Recipients::One(ConnId(1)),
                    ServerMsg::Done(Done::PasswordChanged)
                ))
            }]
        );
        s.join(2, "guest");
        assert_eq!(
            s.line(2, "/passwd a b"),
            vec![to_one(
                2,
                ServerMsg::Reject(Reject::NotRegistered {
                    name: "guest".into()
                })
            )]
        );
    }

    #[test]
    fn a_late_result_for_a_gone_connection_is_ignored() {
        let mut s = with_account("alice", Role::User);
        s.connect(1);
        s.line(1, "alice");
        s.line(1, "pw");
        s.input(Input::Disconnected { conn: ConnId(1) });
        assert_eq!(done(&mut s, 1, PasswordOutcome::Verified), vec![]);
        let ping = Input::Message {
            conn: ConnId(1),
            msg: ClientMsg::Ping { nonce: 1 },
        };
        assert_eq!(s.input(ping), vec![]);
    }
}
