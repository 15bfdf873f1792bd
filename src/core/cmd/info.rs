//! Information: help, who am I, server figures.

use super::super::{Chat, ConnId, Now, Outbox, Recipients};
use crate::proto::msg::ServerMsg;

/// The command list for `to`; admin commands only for admins.
pub fn help(admin: bool, to: Recipients, out: &mut Outbox) {
    out.deliver(to, ServerMsg::Help { admin });
}

/// `conn`'s own name and role.
pub fn whoami(chat: &Chat, conn: ConnId, out: &mut Outbox) {
    let (Some(name), Some(session)) = (chat.sessions.name_of(conn), chat.sessions.get(conn)) else {
        return;
    };
    let msg = ServerMsg::WhoAmI {
        name: name.to_owned(),
        role: session.role,
        registered: session.registered,
    };
    out.deliver(Recipients::One(conn), msg);
}

/// Messages relayed since start, users online, uptime.
pub fn stats(chat: &Chat, now: &Now, conn: ConnId, out: &mut Outbox) {
    let msg = ServerMsg::Stats {
        relayed: chat.relayed,
        online: chat.sessions.joined_count(),
        uptime_secs: now
            .instant
            .saturating_duration_since(chat.started)
            .as_secs(),
        bad_digests: chat.bad_digests,
    };
    out.deliver(Recipients::One(conn), msg);
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::*;
    use crate::accounts::model::Role;
    use std::time::Duration;

    #[test]
    fn whoami_time_ping_and_stats_answer_the_asker() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let me = ServerMsg::WhoAmI {
            name: "alice".into(),
            role: Role::User,
            registered: false,
        };
        assert_eq!(s.line(1, "/username"), vec![to_one(1, me)]);
        assert_eq!(
            s.line(1, "/time"),
            vec![to_one(1, ServerMsg::Time { at: s.now.stamp })]
        );
        assert_eq!(
            s.line(1, "/ping"),
            vec![to_one(
                1,
                ServerMsg::Pong {
                    nonce: 0,
                    at: s.now.stamp
                }
            )]
        );
        s.line(1, "one");
        s.line(2, "two");
        s.line(1, "/dm bob three");
        s.now.instant += Duration::from_secs(61);
        let stats = ServerMsg::Stats {
            relayed: 3,
            online: 2,
            uptime_secs: 61,
            bad_digests: 0,
        };
        assert_eq!(s.line(1, "/total"), vec![to_one(1, stats)]);
    }
}
