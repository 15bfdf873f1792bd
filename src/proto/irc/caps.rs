//! IRCv3 capabilities: which the server offers, and a client's requests for them.

/// One capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// `server-time`: lines carry the time they were said (history in particular).
    ServerTime,
    /// `message-tags`: lines carry tags (`msgid`, the line's id).
    MessageTags,
    /// `multi-prefix`: NAMES and WHO show every prefix (chatd has one, `@`).
    MultiPrefix,
    /// `sasl`: AUTHENTICATE PLAIN logs in to an account.
    Sasl,
    /// `cap-notify`: told of capabilities that come or go (none do here).
    CapNotify,
    /// `echo-message`: the client's own PRIVMSGs and NOTICEs come back to it as the others get
    /// them (with their time and id).
    EchoMessage,
    /// `batch`: a room's history on joining comes as one `chathistory` batch.
    Batch,
    /// `away-notify`: told when someone who shares a channel goes away or comes back
    /// (`:nick!nick@chatd AWAY :reason`, `AWAY` alone for back).
    AwayNotify,
    /// `draft/chathistory`: the CHATHISTORY command (it works without the capability too; the
    /// capability says the client knows it).
    ChatHistory,
}

/// Every capability offered, in the order `CAP LS` lists them (by name).
pub const OFFERED: [Cap; 9] = [
    Cap::AwayNotify,
    Cap::Batch,
    Cap::CapNotify,
    Cap::ChatHistory,
    Cap::EchoMessage,
    Cap::MessageTags,
    Cap::MultiPrefix,
    Cap::Sasl,
    Cap::ServerTime,
];

impl Cap {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Cap::ServerTime => "server-time",
            Cap::MessageTags => "message-tags",
            Cap::MultiPrefix => "multi-prefix",
            Cap::Sasl => "sasl",
            Cap::CapNotify => "cap-notify",
            Cap::EchoMessage => "echo-message",
            Cap::Batch => "batch",
            Cap::AwayNotify => "away-notify",
            Cap::ChatHistory => "draft/chathistory",
        }
    }

    /// The capability called `name` (any case), if it is offered.
    pub fn named(name: &str) -> Option<Cap> {
        OFFERED
            .into_iter()
            .find(|cap| cap.name().eq_ignore_ascii_case(name))
    }

    fn bit(self) -> u16 {
        1 << (self as u8)
    }
}

/// A set of capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(u16);

impl Caps {
    /// Whether `cap` is in the set.
    pub fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Adds or removes `cap`.
    pub fn set(&mut self, cap: Cap, on: bool) {
        if on {
            self.0 |= cap.bit();
        } else {
            self.0 &= !cap.bit();
        }
    }

    /// The names in the set, space-separated, in [`OFFERED`] order.
    pub fn names(self) -> String {
        let names: Vec<&str> = OFFERED
            .into_iter()
            .filter(|&cap| self.has(cap))
            .map(Cap::name)
            .collect();
        names.join(" ")
    }
}

/// What `CAP LS` lists: with values (`sasl=PLAIN`) for version 302 and later.
pub fn ls(v302: bool) -> String {
    let names: Vec<&str> = OFFERED
        .into_iter()
        .map(|cap| match (cap, v302) {
            (Cap::Sasl, true) => "sasl=PLAIN",
            (cap, _) => cap.name(),
        })
        .collect();
    names.join(" ")
}

/// Applies a `CAP REQ` list to `caps`: all of it, or (if any name is not offered) none of it,
/// which is `None`.
pub fn request(caps: Caps, list: &str) -> Option<Caps> {
    let mut after = caps;
    for word in list.split_whitespace() {
        let (on, name) = match word.strip_prefix('-') {
            Some(name) => (false, name),
            None => (true, word),
        };
        after.set(Cap::named(name)?, on);
    }
    Some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lists_every_capability_with_values_from_302() {
        assert_eq!(
            ls(true),
            "away-notify batch cap-notify draft/chathistory echo-message message-tags multi-prefix \
             sasl=PLAIN server-time"
        );
        assert_eq!(
            ls(false),
            "away-notify batch cap-notify draft/chathistory echo-message message-tags multi-prefix sasl server-time"
        );
    }

    #[test]
    fn a_request_is_taken_whole_or_not_at_all() {
        let caps = request(Caps::default(), "server-time SASL").expect("offered");
        assert!(caps.has(Cap::ServerTime) && caps.has(Cap::Sasl));
        assert!(!caps.has(Cap::MessageTags));
        assert_eq!(caps.names(), "sasl server-time");
        assert_eq!(request(caps, "server-time extended-join"), None);
        let less = request(caps, "-sasl").expect("offered");
        assert_eq!(less.names(), "server-time");
    }
}
