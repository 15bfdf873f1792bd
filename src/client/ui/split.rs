//! Cutting a typed line too long for one message into lines the server takes, as IRC clients do
//! with long messages: chat text, `/bm` and `/dm` are sent in parts, each under the same command;
//! any other command is refused, as its arguments mean nothing cut in two.

use crate::proto::msg::Command;
use crate::proto::text::{split_line, TypedLine};

/// The fewest bytes of text a part may carry; a command prefix longer than the limit less this
/// leaves no room, and the line is refused.
const MIN_PART: usize = 64;

/// What becomes of a typed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parts {
    /// The lines to send in turn, each at most the limit, together all of the text (one line when
    /// it fits; between two parts cut at a space, that space is the break).
    Send(Vec<String>),
    /// A command too long to send that cannot be cut (its text is not chat, or its name or
    /// recipient leaves no room): `/NAME`, as typed.
    Refused(String),
}

/// `line` as lines of at most `max` bytes. Chat text, `/bm TEXT` and `/dm NAME TEXT` too long for
/// one line are cut at the last space in the second half of a part's room, else between
/// characters; each part keeps the command, and a chat part that starts with `/` is escaped as
/// `//`, so no part turns into a command.
pub fn split_long(line: &str, max: usize) -> Parts {
    if line.len() <= max {
        return Parts::Send(vec![line.to_owned()]);
    }
    let (command, prefix, text) = match split_line(line) {
        TypedLine::Say(text) => ("", String::new(), text),
        TypedLine::Command { name, args } => match Command::parse(name, args) {
            Command::Broadcast { .. } => (name, format!("/{name} "), args.trim()),
            Command::Dm { to, .. } => {
                let text = args.trim()[to.len()..].trim_start();
                (name, format!("/{name} {to} "), text)
            }
            _ => return Parts::Refused(format!("/{name}")),
        },
    };
    // One byte kept for the `/` that escapes a chat part starting with one.
    let room = max.saturating_sub(prefix.len() + 1);
    if room < MIN_PART {
        return Parts::Refused(format!("/{command}"));
    }
    let parts = cut(text, room)
        .into_iter()
        .map(|part| {
            let escape = prefix.is_empty() && part.starts_with('/');
            format!("{prefix}{}{part}", if escape { "/" } else { "" })
        })
        .collect();
    Parts::Send(parts)
}

/// `text` in pieces of at most `room` bytes, cut at a space where one is in the second half.
fn cut(mut text: &str, room: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    while text.len() > room {
        let mut end = room;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        match text[..end].rfind(' ').filter(|&space| space >= room / 2) {
            Some(space) => {
                pieces.push(&text[..space]);
                text = &text[space + 1..];
            }
            None => {
                pieces.push(&text[..end]);
                text = &text[end..];
            }
        }
    }
    pieces.push(text);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(parts: Parts) -> Vec<String> {
        match parts {
            Parts::Send(lines) => lines,
            Parts::Refused(command) => panic!("refused {command}"),
        }
    }

    #[test]
    fn a_line_that_fits_is_sent_as_it_is() {
        assert_eq!(sent(split_long("hello", 100)), ["hello"]);
        let full = "x".repeat(100);
        assert_eq!(sent(split_long(&full, 100)), [full]);
    }

    #[test]
    fn long_chat_text_is_cut_at_spaces_and_nothing_is_lost() {
        let words: Vec<String> = (0..100).map(|i| format!("w{i:03}")).collect();
        let line = words.join(" ");
        let parts = sent(split_long(&line, 100));
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= 100), "{parts:?}");
        assert!(parts
            .iter()
            .all(|p| !p.starts_with(' ') && !p.ends_with(' ')));
        assert_eq!(parts.join(" "), line);
    }

    #[test]
    fn text_without_spaces_is_cut_between_characters() {
        let line = "é".repeat(150);
        let parts = sent(split_long(&line, 101));
        assert!(parts.iter().all(|p| p.len() <= 101), "{parts:?}");
        assert_eq!(parts.concat(), line);
    }

    #[test]
    fn a_chat_part_that_starts_with_a_slash_is_escaped() {
        let line = format!("{}/quit{}", "a".repeat(99), "b".repeat(99));
        let parts = sent(split_long(&line, 100));
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert!(parts[1].starts_with("//quit"), "{parts:?}");
        let escaped = format!("//{}", "c".repeat(150));
        let parts = sent(split_long(&escaped, 100));
        assert_eq!(parts[0], format!("//{}", "c".repeat(98)));
        assert_eq!(parts[1], "c".repeat(52));
    }

    #[test]
    fn dm_and_bm_parts_each_keep_the_command() {
        let text = "y".repeat(300);
        let parts = sent(split_long(&format!("/msg  carol  {text}"), 100));
        assert!(parts.iter().all(|p| p.starts_with("/msg carol ")));
        assert!(parts.iter().all(|p| p.len() <= 100));
        let joined: String = parts.iter().map(|p| &p["/msg carol ".len()..]).collect();
        assert_eq!(joined, text);
        let parts = sent(split_long(&format!("/bm {text}"), 100));
        assert!(parts
            .iter()
            .all(|p| p.starts_with("/bm ") && p.len() <= 100));
    }

    #[test]
    fn other_commands_too_long_are_refused() {
        let reason = "r".repeat(200);
        assert_eq!(
            split_long(&format!("/away {reason}"), 100),
            Parts::Refused("/away".into())
        );
        assert_eq!(
            split_long(&format!("/dm {reason} hi"), 100),
            Parts::Refused("/dm".into())
        );
    }
}
