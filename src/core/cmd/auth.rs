//! Names and passwords: choosing a name, logging in, registering, changing a password.
//!
//! Hashing is slow on purpose, so the core never does it: it asks the shell with
//! [`Action::Password`] and hears back through [`Input::PasswordDone`](super::super::Input).
//! Wrong passwords slow down further checks of the same name from the same address (see
//! [`throttle`](super::super::throttle)): such a check is held here until its time comes.

use std::time::Instant;

use super::super::throttle::{Finished, Gate};
use super::super::users::{check_join_name, PasswdEntry, Pending, State};
use super::super::{
    Action, Chat, CloseReason, ConnId, Now, Outbox, PasswordJob, PasswordOutcome, Recipients,
};
use super::admin::store;
use crate::accounts::model::{Account, Change, Role};
use crate::proto::msg::{ClientMsg, Done, LeaveKind, Notice, Reject, ServerMsg};

/// Why the connection that held a name is closed when its owner logs in again elsewhere.
pub const REPLACED_REASON: &str = "logged in again from another connection";

/// A login's password check the throttle holds back.
#[derive(Debug)]
pub struct HeldCheck {
    /// The connection logging in.
    pub conn: ConnId,
    /// When to ask the throttle again; `None`: when a check under way for its pair finishes.
    pub until: Option<Instant>,
    job: PasswordJob,
}

/// Whether a password may be sent over `conn`: over TLS always, over a plain connection only
/// where the server allows it (it has no TLS, or the operator said so).
fn password_may_cross(chat: &Chat, conn: ConnId) -> bool {
    chat.config.plain_passwords || chat.sessions.get(conn).is_some_and(|s| s.secure)
}

/// `conn` asks to be called `name`: join as a guest, or ask for the password of a registered name.
/// A registered name held by another connection is asked for its password too: the right one
/// takes the name over (the owner's old connection may be lost without TCP noticing yet).
pub fn choose_name(chat: &mut Chat, conn: ConnId, name: &str, out: &mut Outbox) {
    let name = name.trim();
    chat.sessions.set_state(conn, State::AwaitingName);
    if name.is_empty() {
        return out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
    }
    match check_join_name(name, &chat.sessions, &chat.registry) {
        Ok(()) => {}
        Err(Reject::NameTaken) if chat.registry.account(name).is_some() => {}
        Err(reject) => return refuse(conn, reject, out),
    }
    if let Some(account) = chat.registry.account(name) {
        if !password_may_cross(chat, conn) {
            return refuse(conn, Reject::PlainPassword, out);
        }
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

/// `conn` gave a registered `name` and its `password` at once: checked as a name then its
/// password are, with no prompt between; a name without an account is refused.
pub fn login(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    name: &str,
    password: String,
    out: &mut Outbox,
) {
    let name = name.trim();
    if chat.registry.account(name).is_none() {
        chat.sessions.set_state(conn, State::AwaitingName);
        let name = name.to_owned();
        return refuse(conn, Reject::NotRegistered { name }, out);
    }
    let mut asked = Outbox::new();
    choose_name(chat, conn, name, &mut asked);
    let awaiting = matches!(
        chat.sessions.get(conn).map(|s| &s.state),
        Some(State::AwaitingPassword { .. })
    );
    if awaiting {
        // The prompt is not needed: the password is here.
        return check_password(chat, now, conn, password, out);
    }
    for action in asked.drain() {
        out.push(action);
    }
}

/// `conn`, awaiting its password, gave `password`: have it checked off the loop, now or once the
/// throttle's hold is over.
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
    let peer = session.peer;
    let Some(account) = chat.registry.account(&name) else {
        // Deleted while we waited: start over.
        chat.sessions.set_state(conn, State::AwaitingName);
        return out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
    };
    let job = PasswordJob::Verify {
        password,
        phc: account.password_hash.clone(),
    };
    match chat.logins.gate(peer, &name, now.instant) {
        Gate::Refuse(wait) => {
            log::warn!("{conn}: login to {name} refused unchecked: {peer} failed for many names");
            chat.sessions.set_state(conn, State::AwaitingName);
            let retry_secs = wait.as_secs().max(1);
            refuse(conn, Reject::TooManyAttempts { retry_secs }, out)
        }
        Gate::Go => {
            chat.sessions
                .set_state(conn, State::Verifying { name: name.clone() });
            chat.logins.started(conn, peer, &name, now.instant);
            out.push(Action::Password { conn, job });
        }
        Gate::Hold(until) => {
            log::info!("{conn}: login to {name} held after failures from {peer}");
            chat.sessions.set_state(conn, State::Verifying { name });
            chat.held_checks.push(HeldCheck { conn, until, job });
            let secs = until.map_or(1, |until| {
                until
                    .saturating_duration_since(now.instant)
                    .as_secs_f64()
                    .ceil() as u64
            });
            let notice = Notice::CheckDelayed { secs: secs.max(1) };
            out.deliver(Recipients::One(conn), ServerMsg::Notice(notice));
        }
    }
}

/// Starts the held checks the throttle now lets through (on a tick, and whenever a check ends).
pub(crate) fn release_checks(chat: &mut Chat, now: &Now, out: &mut Outbox) {
    let mut still_held = Vec::new();
    for mut held in std::mem::take(&mut chat.held_checks) {
        let Some(session) = chat.sessions.get(held.conn) else {
            continue;
        };
        let State::Verifying { name } = &session.state else {
            continue;
        };
        let (peer, name) = (session.peer, name.clone());
        match chat.logins.gate(peer, &name, now.instant) {
            Gate::Hold(until) => {
                held.until = until;
                still_held.push(held);
            }
            // A held check is for a pair that has failed; it is never refused, only held.
            Gate::Go | Gate::Refuse(_) => {
                chat.logins.started(held.conn, peer, &name, now.instant);
                out.push(Action::Password {
                    conn: held.conn,
                    job: held.job,
                });
            }
        }
    }
    still_held.append(&mut chat.held_checks);
    chat.held_checks = still_held;
}

/// `conn` is gone: its held check is dropped, and a check under way for it no longer holds
/// others back (its answer, if it comes, is not heard).
pub(crate) fn forget_checks(chat: &mut Chat, now: &Now, conn: ConnId, out: &mut Outbox) {
    chat.held_checks.retain(|held| held.conn != conn);
    chat.logins.finished(conn, Finished::Undone, now.instant);
    release_checks(chat, now, out);
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
        (State::Verifying { name }, _) => {
            let finished = match outcome {
                PasswordOutcome::Verified => Finished::Right,
                PasswordOutcome::Wrong => Finished::Wrong,
                _ => Finished::Undone,
            };
            if finished == Finished::Wrong {
                chat.failed_logins += 1;
            }
            chat.logins.finished(conn, finished, now.instant);
            login_done(chat, now, conn, &name, outcome, out);
            release_checks(chat, now, out);
        }
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
            return chat.close(
                conn,
                CloseReason::TooManyFailures,
                LeaveKind::Exited,
                None,
                out,
            );
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
        let result = match check_join_name(name, &chat.sessions, &chat.registry) {
            Err(Reject::NameTaken) => take_over(chat, conn, name, out),
            result => result,
        };
        match result {
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

/// The owner of the registered `name` proved it on `conn`: the connection holding the name is
/// told why and closed, so the name is free for `conn`. Not in cluster mode: there the name is
/// refused as taken while anyone holds it.
fn take_over(chat: &mut Chat, conn: ConnId, name: &str, out: &mut Outbox) -> Result<(), Reject> {
    if chat.config.cluster {
        // The holder may be on another node: a take-over would change the chat outside the
        // cluster's log. The name is taken while it is held anywhere (see `core::cluster`).
        return Err(Reject::NameTaken);
    }
    let Some(old) = chat.sessions.find(name).filter(|&old| old != conn) else {
        return Err(Reject::NameTaken);
    };
    if chat.registry.account(name).is_none() {
        return Err(Reject::NameTaken);
    }
    log::info!("{conn} takes over {name} from {old}");
    let to_old = Recipients::One(old);
    out.deliver(to_old, ServerMsg::Notice(Notice::Replaced));
    out.deliver(
        to_old,
        ServerMsg::Kicked {
            by: name.to_owned(),
            reason: Some(REPLACED_REASON.to_owned()),
        },
    );
    let why = CloseReason::Replaced {
        name: name.to_owned(),
        by: conn,
    };
    chat.close(
        old,
        why,
        LeaveKind::Exited,
        Some(REPLACED_REASON.to_owned()),
        out,
    );
    check_join_name(name, &chat.sessions, &chat.registry)
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
    } else if !password_may_cross(chat, conn) {
        Some(Reject::PlainPassword)
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
    if !password_may_cross(chat, conn) {
        let reject = Reject::PlainPassword;
        return out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
    }
    let job = PasswordJob::Rehash {
        old,
        phc: account.password_hash.clone(),
        new,
    };
    start_job(chat, conn, Pending::Passwd, None, job, out);
}

/// `/passwd` alone: asks for the current password, then the new one twice, each behind the
/// password prompt (so telnet hides it); the lines are taken whole, spaces and all.
pub fn passwd_ask(chat: &mut Chat, conn: ConnId, out: &mut Outbox) {
    let Some(name) = chat.sessions.name_of(conn) else {
        return;
    };
    let reject = if chat.registry.account(name).is_none() {
        Some(Reject::NotRegistered {
            name: name.to_owned(),
        })
    } else if !password_may_cross(chat, conn) {
        Some(Reject::PlainPassword)
    } else if chat.sessions.get(conn).is_some_and(|s| s.pending.is_some()) {
        Some(Reject::Busy)
    } else {
        None
    };
    if let Some(reject) = reject {
        return out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
    }
    ask(chat, conn, PasswdEntry::Current, Notice::PasswdCurrent, out);
}

/// The next message of `conn` during `/passwd` alone: a line is the password asked for; an
/// empty line cancels, and so does anything else, which is then handled as usual.
pub(crate) fn passwd_step(
    chat: &mut Chat,
    now: &Now,
    conn: ConnId,
    msg: ClientMsg,
    out: &mut Outbox,
) {
    let Some(session) = chat.sessions.get_mut(conn) else {
        return;
    };
    let Some(entry) = session.passwd.take() else {
        return;
    };
    let ClientMsg::Say { text } = msg else {
        out.deliver(
            Recipients::One(conn),
            ServerMsg::Notice(Notice::PasswdCancelled),
        );
        return chat.handle_message(now, conn, msg, out);
    };
    if text.trim().is_empty() {
        return out.deliver(
            Recipients::One(conn),
            ServerMsg::Notice(Notice::PasswdCancelled),
        );
    }
    match *entry {
        PasswdEntry::Current => ask(
            chat,
            conn,
            PasswdEntry::New { old: text },
            Notice::PasswdNew,
            out,
        ),
        PasswdEntry::New { old } => ask(
            chat,
            conn,
            PasswdEntry::Again { old, new: text },
            Notice::PasswdAgain,
            out,
        ),
        PasswdEntry::Again { old, new } if new == text => passwd(chat, conn, old, new, out),
        PasswdEntry::Again { .. } => out.deliver(
            Recipients::One(conn),
            ServerMsg::Reject(Reject::PasswordsDiffer),
        ),
    }
}

/// Sets the `/passwd` step of `conn` and asks for it: what is asked, then the password prompt.
fn ask(chat: &mut Chat, conn: ConnId, entry: PasswdEntry, notice: Notice, out: &mut Outbox) {
    if let Some(session) = chat.sessions.get_mut(conn) {
        session.passwd = Some(Box::new(entry));
        out.deliver(Recipients::One(conn), ServerMsg::Notice(notice));
        out.deliver(Recipients::One(conn), ServerMsg::PasswordPrompt);
    }
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

/// Refuses a name or password: the reason, then the name prompt.
fn refuse(conn: ConnId, reject: Reject, out: &mut Outbox) {
    out.deliver(Recipients::One(conn), ServerMsg::Reject(reject));
    out.deliver(Recipients::One(conn), ServerMsg::NamePrompt);
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::throttle::LoginPolicy;
    use super::super::super::{ChatConfig, Input};
    use super::*;
    use std::time::Duration;

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
    fn a_login_checks_the_password_with_no_prompt_and_refuses_a_name_without_account() {
        let mut s = with_account("Alice", Role::User);
        s.connect(1);
        let login = |name: &str| Input::Message {
            conn: ConnId(1),
            msg: ClientMsg::Login {
                name: name.into(),
                password: "secret".into(),
            },
        };
        assert_eq!(
            s.input(login("bob")),
            vec![
                to_one(
                    1,
                    ServerMsg::Reject(Reject::NotRegistered { name: "bob".into() })
                ),
                to_one(1, ServerMsg::NamePrompt),
            ],
            "never joined as a guest"
        );
        let verify = PasswordJob::Verify {
            password: "secret".into(),
            phc: "$argon2id$hash-of-Alice".into(),
        };
        assert_eq!(
            s.input(login("alice")),
            vec![Action::Password {
                conn: ConnId(1),
                job: verify
            }]
        );
        let actions = done(&mut s, 1, PasswordOutcome::Verified);
        assert!(
            matches!(&actions[0], Action::Deliver { msg: ServerMsg::Welcome { name, .. }, .. } if name == "Alice")
        );
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
                msg: numbered(0, 1, chat)
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
                to_one(1, ServerMsg::Notice(Notice::CheckDelayed { secs: 1 })),
            ]
        );
        s.now.instant += Duration::from_secs(1);
        assert_eq!(
            s.input(Input::Tick),
            vec![Action::Password {
                conn: ConnId(1),
                job: verify
            }]
        );
    }

    #[test]
    fn wrong_passwords_at_login_are_counted_and_nothing_else_is() {
        let mut s = with_account("alice", Role::User);
        s.join(2, "bob");
        s.connect(1);
        s.line(1, "alice");
        s.line(1, "wrong");
        assert_eq!(s.chat.counts().password_checks_held, 0);
        done(&mut s, 1, PasswordOutcome::Wrong);
        // Busy (the worker's queue full) is no failed login, nor is the right password.
        s.now.instant += Duration::from_secs(60);
        s.line(1, "alice");
        s.line(1, "pw");
        done(&mut s, 1, PasswordOutcome::Failed);
        s.now.instant += Duration::from_secs(60);
        s.line(1, "alice");
        s.line(1, "pw");
        done(&mut s, 1, PasswordOutcome::Verified);
        // A wrong old password in /passwd is not a login.
        s.line(1, "/passwd old new");
        done(&mut s, 1, PasswordOutcome::Wrong);
        let counts = s.chat.counts();
        assert_eq!(counts.failed_logins, 1);
        assert_eq!((counts.users_online, counts.rooms), (2, 1));
    }

    #[test]
    fn three_wrong_passwords_close_the_connection() {
        let mut s = with_account("alice", Role::User);
        s.connect(1);
        for attempt in 1..=2 {
            // Past the throttle's hold, so each check starts at once.
            s.now.instant += Duration::from_secs(60);
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
        s.now.instant += Duration::from_secs(60);
        s.line(1, "alice");
        s.line(1, "wrong");
        assert_eq!(
            done(&mut s, 1, PasswordOutcome::Wrong),
            vec![
                to_one(1, ServerMsg::Reject(Reject::TooManyFailures)),
                Action::Close {
                    conn: ConnId(1),
                    why: CloseReason::TooManyFailures,
                }
            ]
        );
        assert_eq!(
            s.line(1, "alice"),
            vec![],
            "a closing connection is not heard"
        );
    }

    /// `id` (connected) gives `name` and `password`; returns what the password line produced.
    fn attempt(s: &mut Script, id: u64, name: &str, password: &str) -> Vec<Action> {
        s.line(id, name);
        s.line(id, password)
    }

    /// A wrong password for `name` on a new connection `id` from `peer`, checked at once.
    fn wrong_from(s: &mut Script, id: u64, peer: std::net::IpAddr, name: &str) {
        s.connect_from(id, peer);
        let started = attempt(s, id, name, "guess");
        assert!(
            matches!(started[..], [Action::Password { .. }]),
            "{started:?}"
        );
        done(s, id, PasswordOutcome::Wrong);
    }

    fn is_job(actions: &[Action]) -> bool {
        matches!(actions, [Action::Password { .. }])
    }

    fn delayed(id: u64, secs: u64) -> Vec<Action> {
        vec![to_one(id, ServerMsg::Notice(Notice::CheckDelayed { secs }))]
    }

    const NAT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    fn accounts(names: &[&str]) -> Script {
        let mut s = Script::new();
        for name in names {
            let account = Account {
                name: (*name).into(),
                role: Role::User,
                password_hash: format!("$argon2id$hash-of-{name}"),
            };
            s.chat.registry.apply(&Change::PutAccount(account));
        }
        s
    }

    #[test]
    fn others_typos_behind_one_address_never_hold_a_right_password() {
        let mut s = accounts(&["alice", "bob", "admin"]);
        wrong_from(&mut s, 1, NAT, "alice");
        wrong_from(&mut s, 2, NAT, "bob");
        s.now.instant += Duration::from_secs(1);
        s.connect_from(3, NAT);
        assert!(is_job(&attempt(&mut s, 3, "bob", "guess")), "bob's 2nd");
        done(&mut s, 3, PasswordOutcome::Wrong);
        s.connect_from(4, NAT);
        assert!(
            is_job(&attempt(&mut s, 4, "admin", "right")),
            "checked at once"
        );
        let welcome = done(&mut s, 4, PasswordOutcome::Verified);
        assert!(
            matches!(&welcome[0], Action::Deliver { msg: ServerMsg::Welcome { name, .. }, .. } if name == "admin"),
            "{welcome:?}"
        );
    }

    #[test]
    fn a_pair_that_failed_has_its_next_check_held_for_a_doubling_delay() {
        let mut s = accounts(&["carol"]);
        let start = s.now.instant;
        wrong_from(&mut s, 1, NAT, "carol");
        s.connect_from(2, NAT);
        assert_eq!(
            attempt(&mut s, 2, "carol", "pw"),
            delayed(2, 1),
            "held, not refused"
        );
        assert_eq!(s.line(2, "typed meanwhile"), vec![], "held with the check");
        assert_eq!(s.chat.next_deadline(), Some(start + Duration::from_secs(1)));
        s.now.instant = start + Duration::from_millis(999);
        assert_eq!(s.input(Input::Tick), vec![], "not yet");
        s.now.instant = start + Duration::from_secs(1);
        assert!(is_job(&s.input(Input::Tick)), "released on time");
        done(&mut s, 2, PasswordOutcome::Wrong);
        // The second failure of the pair: two seconds from it.
        s.connect_from(3, NAT);
        assert_eq!(attempt(&mut s, 3, "carol", "pw"), delayed(3, 2));
        s.now.instant += Duration::from_secs(2);
        assert!(is_job(&s.input(Input::Tick)));
        let welcome = done(&mut s, 3, PasswordOutcome::Verified);
        assert!(matches!(
            &welcome[0],
            Action::Deliver {
                msg: ServerMsg::Welcome { .. },
                ..
            }
        ));
    }

    #[test]
    fn a_failed_pair_has_one_check_at_a_time_and_the_next_waits_for_its_answer() {
        let mut s = accounts(&["carol"]);
        wrong_from(&mut s, 1, NAT, "carol");
        s.now.instant += Duration::from_secs(1);
        s.connect_from(2, NAT);
        s.connect_from(3, NAT);
        assert!(is_job(&attempt(&mut s, 2, "carol", "a")));
        assert_eq!(attempt(&mut s, 3, "carol", "b"), delayed(3, 1));
        assert_eq!(s.chat.held_checks[0].until, None, "it waits for 2's answer");
        // 2's answer: a third failure... no, the pair's second: held two seconds from now.
        let answered = done(&mut s, 2, PasswordOutcome::Wrong);
        assert!(!answered
            .iter()
            .any(|a| matches!(a, Action::Password { .. })));
        s.now.instant += Duration::from_secs(2);
        assert!(is_job(&s.input(Input::Tick)));
    }

    #[test]
    fn an_account_under_attack_slows_its_guessers_but_not_its_owner() {
        let mut s = accounts(&["admin"]);
        for n in 0..6u8 {
            wrong_from(&mut s, 10 + u64::from(n), [192, 0, 2, n].into(), "admin");
        }
        // A guesser that failed once waits for the account's 2^5 s, not its own 1 s.
        s.now.instant += Duration::from_secs(1);
        s.connect_from(20, [192, 0, 2, 0].into());
        assert_eq!(attempt(&mut s, 20, "admin", "guess"), delayed(20, 31));
        // The owner, from an address that never failed, is checked at once.
        s.connect_from(21, NAT);
        assert!(is_job(&attempt(&mut s, 21, "admin", "right")));
        assert!(matches!(
            done(&mut s, 21, PasswordOutcome::Verified)[0],
            Action::Deliver {
                msg: ServerMsg::Welcome { .. },
                ..
            }
        ));
    }

    #[test]
    fn an_address_failing_for_many_names_is_refused_further_names_for_a_while() {
        let names: Vec<String> = (0..21).map(|n| format!("user{n}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut s = accounts(&refs);
        for (n, name) in names[..20].iter().enumerate() {
            wrong_from(&mut s, n as u64 + 1, NAT, name);
        }
        s.connect_from(99, NAT);
        assert_eq!(
            attempt(&mut s, 99, "user20", "guess"),
            vec![
                to_one(
                    99,
                    ServerMsg::Reject(Reject::TooManyAttempts { retry_secs: 900 })
                ),
                to_one(99, ServerMsg::NamePrompt)
            ],
            "no password job is started"
        );
        s.connect_from(100, [192, 0, 2, 1].into());
        assert!(
            is_job(&attempt(&mut s, 100, "user20", "pw")),
            "another address"
        );
        s.now.instant += LoginPolicy::default().memory;
        s.input(Input::Tick);
        s.connect_from(101, NAT);
        assert!(is_job(&attempt(&mut s, 101, "user20", "pw")), "forgotten");
    }

    #[test]
    fn a_connection_whose_check_outlasts_the_name_timeout_gets_another_while_after_it() {
        let mut s = accounts(&["carol"]);
        let timeout = ChatConfig::default().name_timeout;
        s.connect(1);
        attempt(&mut s, 1, "carol", "pw");
        s.now.instant += timeout;
        assert_eq!(s.input(Input::Tick), vec![], "not closed while checking");
        done(&mut s, 1, PasswordOutcome::Wrong);
        s.now.instant += timeout - Duration::from_millis(1);
        assert_eq!(s.input(Input::Tick), vec![]);
        s.now.instant += Duration::from_millis(1);
        assert_eq!(
            s.input(Input::Tick),
            vec![
                to_one(1, ServerMsg::Reject(Reject::NameTimeout)),
                Action::Close {
                    conn: ConnId(1),
                    why: CloseReason::NameTimeout
                }
            ],
            "no name for a while after the failed check"
        );
    }

    #[test]
    fn a_held_check_of_a_connection_that_left_is_dropped() {
        let mut s = accounts(&["carol"]);
        wrong_from(&mut s, 1, NAT, "carol");
        s.connect_from(2, NAT);
        assert_eq!(attempt(&mut s, 2, "carol", "pw"), delayed(2, 1));
        s.input(Input::Disconnected { conn: ConnId(2) });
        assert_eq!(
            s.chat.next_deadline(),
            Some(s.now.instant + ChatConfig::default().name_timeout)
        );
        s.now.instant += Duration::from_secs(1);
        assert_eq!(s.input(Input::Tick), vec![]);
    }

    #[test]
    fn the_right_password_takes_a_registered_name_over_from_its_old_connection() {
        let mut s = accounts(&["alice"]);
        s.join(5, "bob");
        s.login(1, "alice");
        s.connect(2);
        assert_eq!(
            s.line(2, "ALICE"),
            vec![to_one(2, ServerMsg::PasswordPrompt)],
            "asked for the password though the name is held"
        );
        s.line(2, "pw");
        let actions = done(&mut s, 2, PasswordOutcome::Verified);
        let reason = Some(REPLACED_REASON.to_owned());
        assert_eq!(
            actions[..4],
            [
                to_one(1, ServerMsg::Notice(Notice::Replaced)),
                to_one(
                    1,
                    ServerMsg::Kicked {
                        by: "alice".into(),
                        reason: reason.clone()
                    }
                ),
                Action::Close {
                    conn: ConnId(1),
                    why: CloseReason::Replaced {
                        name: "alice".into(),
                        by: ConnId(2)
                    }
                },
                event_to_room(
                    crate::proto::msg::Event::Left {
                        name: "alice".into(),
                        kind: LeaveKind::Exited,
                        reason
                    },
                    None
                ),
            ]
        );
        assert!(
            matches!(&actions[4], Action::Deliver { to: Recipients::One(ConnId(2)), msg: ServerMsg::Welcome { name, others, .. } } if name == "alice" && others == &["bob".to_owned()]),
            "{actions:?}"
        );
        assert_eq!(s.chat.sessions.find("alice"), Some(ConnId(2)));
    }

    #[test]
    fn a_wrong_password_or_a_guest_name_takes_nothing_over() {
        let mut s = accounts(&["alice"]);
        s.login(1, "alice");
        s.join(3, "guest");
        s.connect(2);
        s.line(2, "alice");
        s.line(2, "wrong");
        assert_eq!(
            done(&mut s, 2, PasswordOutcome::Wrong)[0],
            to_one(2, ServerMsg::Reject(Reject::WrongPassword))
        );
        assert_eq!(s.chat.sessions.find("alice"), Some(ConnId(1)));
        assert_eq!(
            s.line(2, "GUEST"),
            vec![
                to_one(2, ServerMsg::Reject(Reject::NameTaken)),
                to_one(2, ServerMsg::NamePrompt)
            ]
        );
    }

    #[test]
    fn passwd_alone_asks_for_each_password_whole_spaces_and_all() {
        let mut s = accounts(&["alice"]);
        s.join(2, "bob");
        s.login(1, "alice");
        let asks = |id: u64, notice: Notice| {
            vec![
                to_one(id, ServerMsg::Notice(notice)),
                to_one(id, ServerMsg::PasswordPrompt),
            ]
        };
        assert_eq!(s.line(1, "/passwd"), asks(1, Notice::PasswdCurrent));
        assert_eq!(s.line(1, "my secret phrase"), asks(1, Notice::PasswdNew));
        assert_eq!(s.line(1, "a newer  phrase"), asks(1, Notice::PasswdAgain));
        let rehash = PasswordJob::Rehash {
            old: "my secret phrase".into(),
            phc: "$argon2id$hash-of-alice".into(),
            new: "a newer  phrase".into(),
        };
        assert_eq!(
            s.line(1, "a newer  phrase"),
            vec![Action::Password {
                conn: ConnId(1),
                job: rehash
            }],
            "nothing said to the room"
        );
        let changed = done(&mut s, 1, PasswordOutcome::Hashed("$argon2id$new".into()));
        assert!(matches!(
            &changed[0],
            Action::Store {
                change: Change::SetPassword { .. },
                ..
            }
        ));
        assert!(
            matches!(
                &s.line(1, "hi")[0],
                Action::Deliver {
                    msg: ServerMsg::Line { .. },
                    ..
                }
            ),
            "chat again"
        );
    }

    #[test]
    fn passwd_alone_is_cancelled_by_an_empty_line_a_command_or_two_new_passwords_that_differ() {
        let mut s = accounts(&["alice"]);
        s.login(1, "alice");
        let cancelled = to_one(1, ServerMsg::Notice(Notice::PasswdCancelled));
        s.line(1, "/passwd");
        assert_eq!(s.line(1, ""), vec![cancelled.clone()]);
        s.line(1, "/passwd");
        s.line(1, "old");
        let me = ServerMsg::WhoAmI {
            name: "alice".into(),
            role: Role::User,
            registered: true,
        };
        assert_eq!(s.line(1, "/whoami"), vec![cancelled, to_one(1, me)]);
        s.line(1, "/passwd");
        s.line(1, "old");
        s.line(1, "new one");
        assert_eq!(
            s.line(1, "new on"),
            vec![to_one(1, ServerMsg::Reject(Reject::PasswordsDiffer))]
        );
        s.join(2, "guest");
        assert_eq!(
            s.line(2, "/passwd"),
            vec![to_one(
                2,
                ServerMsg::Reject(Reject::NotRegistered {
                    name: "guest".into()
                })
            )]
        );
    }

    #[test]
    fn at_a_passwd_step_a_slash_is_doubled_as_at_the_login_prompt_and_a_command_cancels() {
        let mut s = accounts(&["alice"]);
        s.login(1, "alice");
        s.line(1, "/passwd");
        s.line(1, "//old");
        s.line(1, "//new one");
        let rehash = PasswordJob::Rehash {
            old: "/old".into(),
            phc: "$argon2id$hash-of-alice".into(),
            new: "/new one".into(),
        };
        assert_eq!(
            s.line(1, "//new one"),
            vec![Action::Password {
                conn: ConnId(1),
                job: rehash
            }]
        );
        done(&mut s, 1, PasswordOutcome::Wrong);
        s.line(1, "/passwd");
        assert_eq!(
            s.line(1, "/new"),
            vec![
                to_one(1, ServerMsg::Notice(Notice::PasswdCancelled)),
                to_one(
                    1,
                    ServerMsg::Reject(Reject::UnknownCommand { name: "new".into() })
                )
            ]
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
        assert!(s.line(1, "/quit").contains(&Action::Close {
            conn: ConnId(1),
            why: CloseReason::Quit(None),
        }));
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
