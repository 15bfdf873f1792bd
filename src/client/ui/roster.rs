//! Who is online, kept from the server's messages: the welcome names the first 20, `entered`,
//! `exited` and `kicked` events add and remove, and each `/users` reply line
//! (`[*] Online (3): alice (admin), bob (away: lunch), carol`, read by [`parse_online`]) gives
//! the whole list with the admin and away marks.

/// A user in the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The name.
    pub name: String,
    /// Whether the user is an admin, as far as the last `/users` reply said; in the list of a room
    /// other than the default one, whether the user moderates that room (from `/who`).
    pub admin: bool,
    /// The away reason (possibly empty) while away, as far as the last `/users` reply said.
    pub away: Option<String>,
}

impl Member {
    fn new(name: &str) -> Member {
        Member {
            name: name.to_owned(),
            admin: false,
            away: None,
        }
    }
}

/// The users online, sorted by name ignoring case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    members: Vec<Member>,
}

impl Roster {
    /// The users, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Starts over with `names`, no marks (a welcome).
    pub fn reset<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        self.members.clear();
        for name in names {
            self.add(name);
        }
    }

    /// Empties the list (the connection is gone: nobody is known to be online).
    pub fn clear(&mut self) {
        self.members.clear();
    }

    /// Adds `name` in its place; `false` if it was there already.
    pub fn add(&mut self, name: &str) -> bool {
        match self.search(name) {
            Ok(_) => false,
            Err(at) => {
                self.members.insert(at, Member::new(name));
                true
            }
        }
    }

    /// Removes `name` (any case); `false` if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.search(name) {
            Ok(at) => {
                self.members.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Starts over with `listed`, marks and all (a `/users` reply: the server's whole list, as of
    /// the reply; later events follow it on the wire).
    pub fn replace(&mut self, mut listed: Vec<Member>) {
        listed.sort_by_cached_key(|member| member.name.to_ascii_lowercase());
        listed.dedup_by(|a, b| a.name.eq_ignore_ascii_case(&b.name));
        self.members = listed;
    }

    fn search(&self, name: &str) -> Result<usize, usize> {
        let key = name.to_ascii_lowercase();
        self.members
            .binary_search_by(|member| member.name.to_ascii_lowercase().cmp(&key))
    }
}

/// Whether `c` may be part of a name (ASCII letters, digits, `_`, `-`, `.`).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The length of the name at the start of `text`.
fn name_len(text: &str) -> usize {
    text.find(|c| !is_name_char(c)).unwrap_or(text.len())
}

/// Whether `rest` (just after a `)`) ends the marks: the end of the line, or `, ` and a name that
/// is followed by `, `, ` (` or the end.
fn ends_marks(rest: &str) -> bool {
    if rest.is_empty() {
        return true;
    }
    let Some(next) = rest.strip_prefix(", ") else {
        return false;
    };
    let len = name_len(next);
    let after = &next[len..];
    len > 0 && (after.is_empty() || after.starts_with(", ") || after.starts_with(" ("))
}

/// The users of a `/users` reply line, with their marks; `None` if it is not one, or if it does not
/// read as the count of users it announces (an away reason that looks like the end of an entry,
/// `), bob (`, can make a line unreadable).
pub fn parse_online(line: &str) -> Option<Vec<Member>> {
    let rest = line.strip_prefix("[*] Online (")?;
    let (count, mut rest) = rest.split_once("): ")?;
    let count = count.parse::<usize>().ok()?;
    let mut members = Vec::new();
    while !rest.is_empty() {
        let len = name_len(rest);
        if len == 0 {
            return None;
        }
        let mut member = Member::new(&rest[..len]);
        rest = &rest[len..];
        if let Some(marked) = rest.strip_prefix(" (") {
            let close = marked
                .match_indices(')')
                .map(|(at, _)| at)
                .find(|&at| ends_marks(&marked[at + 1..]))?;
            let marks = &marked[..close];
            let marks = match marks.strip_prefix("admin") {
                Some(after) => {
                    member.admin = true;
                    after.strip_prefix(", ").unwrap_or(after)
                }
                None => marks,
            };
            if marks == "away" {
                member.away = Some(String::new());
            } else if let Some(reason) = marks.strip_prefix("away: ") {
                member.away = Some(reason.to_owned());
            }
            rest = &marked[close + 1..];
        }
        members.push(member);
        rest = rest.strip_prefix(", ").unwrap_or(rest);
    }
    (members.len() == count).then_some(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, admin: bool, away: Option<&str>) -> Member {
        Member {
            name: name.into(),
            admin,
            away: away.map(Into::into),
        }
    }

    fn names(roster: &Roster) -> Vec<&str> {
        roster.members().iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn the_list_is_sorted_ignoring_case_and_names_are_unique_ignoring_case() {
        let mut roster = Roster::default();
        roster.reset(["carol", "Alice", "bob"]);
        assert_eq!(names(&roster), vec!["Alice", "bob", "carol"]);
        assert!(!roster.add("BOB"));
        assert!(roster.add("dave"));
        assert!(roster.remove("ALICE"));
        assert!(!roster.remove("nobody"));
        assert_eq!(names(&roster), vec!["bob", "carol", "dave"]);
    }

    #[test]
    fn the_users_reply_is_read_with_its_marks() {
        assert_eq!(
            parse_online(
                "[*] Online (4): a, b (admin, away), c (away: lunch, then tea), d (admin)"
            ),
            Some(vec![
                member("a", false, None),
                member("b", true, Some("")),
                member("c", false, Some("lunch, then tea")),
                member("d", true, None),
            ])
        );
        assert_eq!(
            parse_online("[*] Online (1): x (away: (brb) ok)"),
            Some(vec![member("x", false, Some("(brb) ok"))])
        );
        assert_eq!(parse_online("[*] Online (0): "), Some(vec![]));
        assert_eq!(parse_online("[*] Bye."), None);
        assert_eq!(parse_online("[*] Online (1): (x"), None);
    }

    #[test]
    fn a_users_reply_replaces_the_list_with_its_names_and_marks() {
        let mut roster = Roster::default();
        roster.reset(["alice", "bob", "gone"]);
        roster.replace(vec![
            member("dave", false, None),
            member("Alice", true, None),
            member("bob", false, Some("lunch")),
            member("BOB", false, None),
        ]);
        assert_eq!(
            roster.members(),
            &[
                member("Alice", true, None),
                member("bob", false, Some("lunch")),
                member("dave", false, None),
            ]
        );
    }

    #[test]
    fn a_users_line_that_does_not_add_up_to_its_count_is_not_read() {
        assert_eq!(parse_online("[*] Online (3): a, b"), None);
        assert_eq!(
            parse_online("[*] Online (2): a, b"),
            Some(vec![member("a", false, None), member("b", false, None)])
        );
    }
}
