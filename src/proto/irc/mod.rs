//! IRC: the wire mode of irssi, WeeChat, HexChat and The Lounge (RFC 2812 and the Modern IRC
//! documentation, with a few IRCv3 capabilities).
//!
//! One file per concern: [`line`](mod@line) splits and parses client lines (512 bytes, tags up to 8,191),
//! [`caps`] the capabilities a client may ask for, [`encode`] writes lines (the room lines every
//! IRC recipient shares, split at UTF-8 boundaries to fit), [`replies`] the numerics, and
//! [`session`] the per-connection state (registration with CAP, NICK, USER, PASS and
//! AUTHENTICATE, the negotiated capabilities, the nick, and which reply a core message answers).
//! The core never learns that a user speaks IRC: the session turns lines into [`ClientMsg`]s and
//! [`ServerMsg`]s into lines.
//!
//! [`ClientMsg`]: super::ClientMsg
//! [`ServerMsg`]: super::ServerMsg

pub mod caps;
pub mod encode;
pub mod line;
pub mod replies;
pub mod session;

use std::fmt;

pub use session::IrcSession;

/// What every IRC encoding of this server shares: its name and the default room's. Made once
/// at start and never freed, so that a [`super::Mode`] (which is `Copy`) can point at it.
#[derive(PartialEq, Eq, Hash)]
pub struct IrcContext {
    /// The server's IRC name (`--server-name`): in 001 to 004, PONG, and the source of its lines.
    pub server: String,
    /// The default room, which the core's default-room lines do not name.
    pub default_room: String,
    /// `chatd-VERSION`, for 002 and 004.
    pub version: String,
    /// When the server started, for 003 (text) and 329 (Unix seconds).
    pub started: i64,
    /// Whether IRC users are shown the default room as joined when they register.
    pub autojoin: bool,
}

impl IrcContext {
    /// A context for the server named `server` whose default room is `default_room`, started at
    /// Unix second `started`; leaked once, for the life of the process.
    pub fn leak(server: &str, default_room: &str, started: i64, autojoin: bool) -> &'static Self {
        Box::leak(Box::new(IrcContext {
            server: server.to_owned(),
            default_room: default_room.to_owned(),
            version: format!("chatd-{}", env!("CARGO_PKG_VERSION")),
            started,
            autojoin,
        }))
    }
}

impl fmt::Debug for IrcContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IrcContext({})", self.server)
    }
}

/// Which IRC encoding a connection takes of the lines it shares with others: with message tags
/// (`time`, `msgid`) for clients that asked for `server-time` or `message-tags`, or plain; and
/// with AWAY lines for clients that asked for `away-notify`, or without. (A room whose IRC
/// members differ in `away-notify` encodes its lines once for each; nearly every client asks.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IrcWire {
    /// Whether lines carry tags.
    pub tags: bool,
    /// Whether away changes are shown (`away-notify`).
    pub away_notify: bool,
    /// The server's names.
    pub ctx: &'static IrcContext,
}
