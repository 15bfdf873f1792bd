//! Numeric replies: `:server CODE nick params... :text`, and the lists that take several lines
//! (NAMES), each within 512 bytes.

use super::encode::{line, Source, HOST};
use super::IrcContext;
use crate::proto::msg::MemberEntry;

/// Appends the numeric `code` to `nick` (`*` before it has one).
pub fn numeric(
    out: &mut Vec<u8>,
    ctx: &IrcContext,
    code: &str,
    nick: &str,
    middle: &[&str],
    trailing: Option<&str>,
) {
    let mut params = Vec::with_capacity(middle.len() + 1);
    params.push(nick);
    params.extend_from_slice(middle);
    line(
        out,
        "",
        Source::Server(&ctx.server),
        code,
        &params,
        trailing,
    );
}

/// A member's prefix in NAMES and its flag in WHO: `@` for a moderator.
pub fn prefix(member: &MemberEntry) -> &'static str {
    if member.moderator {
        "@"
    } else {
        ""
    }
}

/// 353 lines (as many as the names take) and the 366 that ends them.
pub fn names(out: &mut Vec<u8>, ctx: &IrcContext, nick: &str, room: &str, members: &[MemberEntry]) {
    // What a 353 line holds besides the names: source, code, nick, "=", room, " :" and CR LF.
    let overhead = 1 + ctx.server.len() + 5 + nick.len() + 3 + room.len() + 2 + 2;
    let room_for_names = super::line::MAX_LINE.saturating_sub(overhead).max(64);
    let mut list = String::new();
    for member in members {
        let entry = format!("{}{}", prefix(member), member.name);
        if !list.is_empty() && list.len() + 1 + entry.len() > room_for_names {
            numeric(out, ctx, "353", nick, &["=", room], Some(&list));
            list.clear();
        }
        if !list.is_empty() {
            list.push(' ');
        }
        list.push_str(&entry);
    }
    if !list.is_empty() {
        numeric(out, ctx, "353", nick, &["=", room], Some(&list));
    }
    numeric(out, ctx, "366", nick, &[room], Some("End of /NAMES list"));
}

/// One 352 (WHO) line for `member` seen in `room` (`*` for none).
pub fn who_line(
    out: &mut Vec<u8>,
    ctx: &IrcContext,
    nick: &str,
    room: &str,
    name: &str,
    flags: &str,
) {
    let realname = format!("0 {name}");
    numeric(
        out,
        ctx,
        "352",
        nick,
        &[room, name, HOST, &ctx.server, name, flags],
        Some(&realname),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fill_lines_within_512_bytes_and_end_with_366() {
        let ctx = IrcContext::leak("irc.test", "#lobby", 0, true);
        let members: Vec<MemberEntry> = (0..120)
            .map(|i| MemberEntry {
                name: format!("user{i:03}"),
                moderator: i == 0,
                away: None,
            })
            .collect();
        let mut out = Vec::new();
        names(&mut out, ctx, "me", "#lobby", &members);
        let text = String::from_utf8(out).expect("UTF-8");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(lines.len() >= 3);
        assert!(lines[0].starts_with(":irc.test 353 me = #lobby :@user000 user001 "));
        assert_eq!(
            lines.last(),
            Some(&":irc.test 366 me #lobby :End of /NAMES list")
        );
        let listed: usize = lines[..lines.len() - 1]
            .iter()
            .map(|l| {
                assert!(l.len() + 2 <= 512);
                l.split_once(" :").map_or(0, |(_, n)| n.split(' ').count())
            })
            .sum();
        assert_eq!(listed, 120);
    }
}
