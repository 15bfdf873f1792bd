//! Moderation: removing users from the room.

use super::super::{Action, Chat, Outbox, Recipients};
use crate::proto::msg::{LeaveKind, Reject, ServerMsg};

/// `by` kicks the user named `name`: they are told, closed, and the room is told.
pub fn kick(
    chat: &mut Chat,
    by: &str,
    name: &str,
    reason: Option<String>,
    out: &mut Outbox,
) -> Result<(), Reject> {
    let conn = chat
        .sessions
        .find(name)
        .ok_or_else(|| Reject::UnknownUser {
            name: name.to_owned(),
        })?;
    log::info!(
        "{conn} kicked by {by} ({})",
        reason.as_deref().unwrap_or("no reason given")
    );
    let notice = ServerMsg::Kicked {
        by: by.to_owned(),
        reason: reason.clone(),
    };
    out.deliver(Recipients::One(conn), notice);
    out.push(Action::Close { conn });
    chat.leave(conn, LeaveKind::Kicked, reason, out);
    Ok(())
}
