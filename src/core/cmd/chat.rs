//! Saying things to the room.

use super::super::{Chat, ConnId, Now, Outbox, Recipients};
use crate::proto::msg::ServerMsg;

/// `conn` says `text` to everyone else and the console; blank text is ignored, nothing is echoed.
pub fn say(chat: &mut Chat, now: &Now, conn: ConnId, text: String, out: &mut Outbox) {
    if text.trim().is_empty() {
        return;
    }
    let Some(from) = chat.sessions.name_of(conn) else {
        return;
    };
    log::debug!("{from} says {text:?}");
    let msg = ServerMsg::Chat {
        at: now.stamp,
        from: from.to_owned(),
        text,
    };
    out.deliver(
        Recipients::Room {
            except: Some(conn),
            console: true,
        },
        msg,
    );
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::Action;
    use super::*;

    #[test]
    fn a_line_goes_to_everyone_else_and_the_console_not_back_to_the_sender() {
        let mut s = Script::new();
        s.join(1, "alice");
        s.join(2, "bob");
        let msg = ServerMsg::Chat {
            at: s.now.stamp,
            from: "alice".into(),
            text: "hi all".into(),
        };
        let expected = vec![Action::Deliver {
            to: Recipients::Room {
                except: Some(ConnId(1)),
                console: true,
            },
            msg,
        }];
        assert_eq!(s.line(1, "hi all"), expected);
        assert_eq!(
            s.line(1, "/bm hi all"),
            expected,
            "/bm says like a plain line"
        );
    }

    #[test]
    fn blank_lines_are_ignored() {
        let mut s = Script::new();
        s.join(1, "alice");
        assert_eq!(s.line(1, ""), vec![]);
        assert_eq!(s.line(1, " \t "), vec![]);
    }
}
