//! Framed mode: length-prefixed typed frames for the `chat` client, with a SHA-224 digest on every
//! chat text.
//!
//! A frame is a big-endian `u32` length of the rest, one type byte, then the type's body. Strings
//! are a big-endian `u16` byte length and UTF-8, sanitized on decode as in text mode. Client frame
//! types have the high bit clear; server frame types have it set. `PROTOCOL.md` lays out every
//! frame byte by byte, and the tests check its examples.
//!
//! The server decodes with [`ClientFrameDecoder`] (bytes to [`ClientMsg`]) and encodes with
//! [`encode`] (a [`ServerMsg`] to bytes). A client encodes [`ClientFrame`]s and decodes
//! [`ServerFrame`]s with [`ServerFrameDecoder`], which also skips the text greeting that comes
//! before the first frame.

use sha2::{Digest as _, Sha224};

use super::msg::{
    ClientMsg, Command, Departure, Done, Event, LeaveKind, MemberEntry, Notice, Reject, RoomEntry,
    RoomLine, RoomTag, ServerMsg, Stamp, TopicEntry,
};
use super::{sanitize, text, DecodeError, Decoded};

/// The protocol version this code speaks, sent in the client's hello. Version 2 added the room
/// frames (`0x89` to `0x8d`); a hello of any other version is refused with error 304. The hello
/// and error frames keep their layout in every version, so an old client understands the refusal.
pub const PROTOCOL_VERSION: u16 = 2;
/// Bytes in the length field that starts every frame.
pub const HEADER_LEN: usize = 4;
/// The largest frame length any limit may allow: it keeps the first byte of every frame 0x00.
pub const MAX_FRAME_CAP: usize = 0x00ff_ffff;
/// The longest string a frame can carry, in bytes; longer text is cut at a character boundary.
pub const MAX_STRING: usize = u16::MAX as usize;
/// Bytes in a SHA-224 digest.
pub const DIGEST_LEN: usize = 28;

/// A SHA-224 digest of a message text.
pub type Digest = [u8; DIGEST_LEN];

/// The SHA-224 digest of `text`.
pub fn digest(text: &[u8]) -> Digest {
    Sha224::digest(text).into()
}

/// Frame type bytes: client frames have the high bit clear, server frames have it set.
pub mod frame_type {
    /// Client: protocol version and the name wanted.
    pub const HELLO: u8 = 0x01;
    /// Client: chat text for the room, with its id and digest.
    pub const SAY: u8 = 0x02;
    /// Client: chat text for one user, with its id and digest.
    pub const DM: u8 = 0x03;
    /// Client: a command name and its argument text.
    pub const COMMAND: u8 = 0x04;
    /// Client: a liveness probe with a nonce.
    pub const PING: u8 = 0x05;
    /// Client: leaving, with an optional reason.
    pub const BYE: u8 = 0x06;
    /// Client: the answer to a server's keepalive ping.
    pub const CLIENT_PONG: u8 = 0x07;
    /// Server: the client joined; who else is online.
    pub const WELCOME: u8 = 0x81;
    /// Server: a chat message (room or direct) with the server's time and the text's digest.
    pub const CHAT: u8 = 0x82;
    /// Server: someone entered, exited or was kicked, or the server is shutting down.
    pub const EVENT: u8 = 0x83;
    /// Server: the text lines a text-mode client would be shown for a request.
    pub const REPLY: u8 = 0x84;
    /// Server: a refused request: a code, the message id it concerns, and the text.
    pub const ERROR: u8 = 0x85;
    /// Server: the answer to a ping.
    pub const PONG: u8 = 0x86;
    /// Server: the answer to a bye; the server closes next.
    pub const SERVER_BYE: u8 = 0x87;
    /// Server: a keepalive ping to a client that has been silent; it must answer with a pong.
    pub const SERVER_PING: u8 = 0x88;
    /// Server: a line said in a room (chat, action, history), tagged with the room, with a digest.
    pub const ROOM_CHAT: u8 = 0x89;
    /// Server: something that happened in a room (joins, leaves, removals, topic, moderators).
    pub const ROOM_EVENT: u8 = 0x8a;
    /// Server: every room, for `rooms`.
    pub const ROOMS: u8 = 0x8b;
    /// Server: a room's members, for `who`.
    pub const WHO: u8 = 0x8c;
    /// Server: a room's topic, for `topic` alone.
    pub const TOPIC: u8 = 0x8d;
    /// Server: the client's current room changed (joined, switched, parted, removed).
    pub const CURRENT_ROOM: u8 = 0x8e;
}

/// The flags byte after a room's name in room frames.
pub mod room_flag {
    /// The room is the server's default room.
    pub const DEFAULT: u8 = 0x01;
    /// (Current-room frame, kind joined) the client made the room and moderates it.
    pub const CREATED: u8 = 0x02;
    /// (Rooms frame) the room stays when empty.
    pub const PERSISTENT: u8 = 0x01;
    /// (Who frame) the member moderates the room.
    pub const MODERATOR: u8 = 0x01;
    /// (Who frame) the member is away.
    pub const AWAY: u8 = 0x02;
    /// (Topic frame) the room has a topic.
    pub const TOPIC_SET: u8 = 0x01;
}

/// The kind byte of a room chat frame.
pub mod room_chat_kind {
    /// Said in the room.
    pub const SAID: u8 = 0;
    /// An action (`/me`).
    pub const ACTION: u8 = 1;
    /// Said before the recipient joined the room (its history, shown on joining).
    pub const HISTORY: u8 = 2;
    /// An action said before the recipient joined.
    pub const HISTORY_ACTION: u8 = 3;
}

/// The kind byte of a room event frame.
pub mod room_event_kind {
    /// NAMES entered (and MORE others).
    pub const ENTERED: u8 = 1;
    /// NAMES left the room with `part` (TEXT is the reason).
    pub const PARTED: u8 = 2;
    /// NAMES left the server (TEXT is the reason).
    pub const EXITED: u8 = 3;
    /// NAMES were kicked off the server (TEXT is the reason).
    pub const KICKED: u8 = 4;
    /// BY removed NAME from the room (TEXT is the reason).
    pub const REMOVED: u8 = 5;
    /// BY set the topic to TEXT.
    pub const TOPIC: u8 = 6;
    /// BY made NAME a moderator.
    pub const MODERATOR: u8 = 7;
}

/// The kind byte of a current-room frame.
pub mod current_room_kind {
    /// The client joined ROOM, now its current room.
    pub const JOINED: u8 = 1;
    /// The client switched to ROOM.
    pub const SWITCHED: u8 = 2;
    /// The client left ROOM; CURRENT is its current room now.
    pub const PARTED: u8 = 3;
    /// BY removed the client from ROOM (REASON); CURRENT is its current room now.
    pub const REMOVED: u8 = 4;
}

/// The kind byte of a chat frame.
pub mod chat_kind {
    /// Said to the room.
    pub const ROOM: u8 = 0;
    /// Said to the recipient only.
    pub const DIRECT: u8 = 1;
    /// Said to the room before the recipient joined (the backlog shown on joining).
    pub const HISTORY: u8 = 2;
}

/// The kind byte of an event frame.
pub mod event_kind {
    /// NAME entered.
    pub const ENTERED: u8 = 1;
    /// NAME exited (REASON).
    pub const EXITED: u8 = 2;
    /// NAME has been kicked out (REASON).
    pub const KICKED: u8 = 3;
    /// The server is shutting down; the connection closes next.
    pub const SHUTDOWN: u8 = 4;
    /// You have been kicked out by NAME (REASON); the connection closes next.
    pub const KICKED_YOU: u8 = 5;
}

/// The kind byte of a reply frame. Clients may print the text of any kind, known or not.
pub mod reply_kind {
    /// The greeting (framed clients never get it: it goes out before the mode is known).
    pub const GREETING: u8 = 1;
    /// Asks for a name again after a refused one.
    pub const NAME_PROMPT: u8 = 2;
    /// The command list.
    pub const HELP: u8 = 3;
    /// The console command list.
    pub const HOST_HELP: u8 = 4;
    /// The users online.
    pub const USERS: u8 = 5;
    /// Asks for the password of the registered name just given.
    pub const PASSWORD_PROMPT: u8 = 6;
    /// A request was carried out.
    pub const DONE: u8 = 7;
    /// The recipient of a direct message is away.
    pub const AWAY: u8 = 8;
    /// The asker's own name and role.
    pub const WHOAMI: u8 = 9;
    /// The server's date, time and UTC offset.
    pub const TIME: u8 = 10;
    /// Messages relayed, users online, uptime.
    pub const STATS: u8 = 11;
    /// The bans.
    pub const BANS: u8 = 12;
    /// An explanation of what happens next (a `/passwd` step, a delayed check, a ban, a takeover).
    pub const NOTICE: u8 = 13;
    /// Who a user is (`/whois`).
    pub const WHOIS: u8 = 14;
}

/// The code of an error frame: hundreds group them (1xx names, 2xx commands, 3xx bad input).
pub mod error_code {
    use super::super::msg::Reject;
    use super::super::DecodeError;

    /// The name breaks the name rules.
    pub const NAME_INVALID: u16 = 100;
    /// Someone online has the name.
    pub const NAME_TAKEN: u16 = 101;
    /// The name is kept for the server.
    pub const NAME_RESERVED: u16 = 102;
    /// The request needs a name first.
    pub const NAME_FIRST: u16 = 103;
    /// A hello after joining.
    pub const ALREADY_JOINED: u16 = 104;
    /// The server takes no more clients.
    pub const SERVER_FULL: u16 = 105;
    /// No command has the name.
    pub const UNKNOWN_COMMAND: u16 = 200;
    /// A command with the wrong arguments.
    pub const USAGE: u16 = 201;
    /// No user of that name is online.
    pub const UNKNOWN_USER: u16 = 202;
    /// A text line over the limit.
    pub const LINE_TOO_LONG: u16 = 300;
    /// A frame over the limit; the connection closes.
    pub const FRAME_TOO_LONG: u16 = 301;
    /// A frame type the server does not take; the connection closes.
    pub const UNKNOWN_TYPE: u16 = 302;
    /// A frame body that does not fit its layout; the connection closes.
    pub const MALFORMED: u16 = 303;
    /// A protocol version the server does not speak; the connection closes.
    pub const BAD_VERSION: u16 = 304;
    /// A text that does not match its digest; the message was not relayed.
    pub const BAD_DIGEST: u16 = 305;
    /// Too much unreadable input; the connection closes.
    pub const TOO_MUCH_BAD_INPUT: u16 = 306;
    /// A WebSocket message that is no message of the JSON vocabulary; it was dropped.
    pub const BAD_MESSAGE: u16 = 307;
    /// The password is needed before anything else.
    pub const PASSWORD_FIRST: u16 = 106;
    /// The address has as many connections as it may.
    pub const TOO_MANY_FROM_ADDRESS: u16 = 107;
    /// No name was given in time; the connection closes.
    pub const NAME_TIMEOUT: u16 = 108;
    /// The name is banned.
    pub const BANNED: u16 = 109;
    /// Only registered names may join.
    pub const ACCOUNT_REQUIRED: u16 = 110;
    /// The password was wrong.
    pub const WRONG_PASSWORD: u16 = 111;
    /// Too many wrong passwords on this connection; it closes.
    pub const TOO_MANY_FAILURES: u16 = 112;
    /// Too many failed logins for the name or the address lately.
    pub const TOO_MANY_ATTEMPTS: u16 = 113;
    /// This server takes TLS connections only; the connection closes.
    pub const TLS_REQUIRED: u16 = 114;
    /// Passwords are taken over TLS only.
    pub const PLAIN_PASSWORD: u16 = 115;
    /// The command is for admins.
    pub const PERMISSION_DENIED: u16 = 203;
    /// The name is registered already.
    pub const ALREADY_REGISTERED: u16 = 204;
    /// Registration is closed.
    pub const REGISTRATION_CLOSED: u16 = 205;
    /// The name has no account.
    pub const NOT_REGISTERED: u16 = 206;
    /// The name is not banned.
    pub const NOT_BANNED: u16 = 207;
    /// Busy with this connection's last request.
    pub const BUSY: u16 = 208;
    /// The change could not be made.
    pub const FAILED: u16 = 209;
    /// An admin may not ban their own name.
    pub const CANNOT_BAN_SELF: u16 = 210;
    /// The change would leave no admin account.
    pub const LAST_ADMIN: u16 = 211;
    /// The new password and its confirmation differ.
    pub const PASSWORDS_DIFFER: u16 = 212;
    /// Cluster mode: the chat is degraded; the name or line was not taken.
    pub const DEGRADED: u16 = 213;
    /// A room name that breaks the rules, or no room of that name.
    pub const NO_SUCH_ROOM: u16 = 220;
    /// The user is not in the room, or in it already, or the other user is not in it.
    pub const ROOM_MEMBERSHIP: u16 = 221;
    /// A room limit is reached, or rooms may not be made.
    pub const ROOM_LIMIT: u16 = 222;
    /// The command is for the room's moderators.
    pub const NOT_MODERATOR: u16 = 223;

    /// The code for `reject`.
    pub fn of(reject: &Reject) -> u16 {
        match reject {
            Reject::NameInvalid => NAME_INVALID,
            Reject::NameTaken => NAME_TAKEN,
            Reject::NameReserved => NAME_RESERVED,
            Reject::NameFirst => NAME_FIRST,
            Reject::AlreadyJoined => ALREADY_JOINED,
            Reject::ServerFull => SERVER_FULL,
            Reject::UnknownCommand { .. } | Reject::MistypedHostCommand { .. } => UNKNOWN_COMMAND,
            Reject::Usage { .. } => USAGE,
            Reject::UnknownUser { .. } | Reject::OfflineGuest { .. } => UNKNOWN_USER,
            Reject::MailboxFull { .. } => BUSY,
            Reject::PasswordFirst => PASSWORD_FIRST,
            Reject::TooManyFromAddress => TOO_MANY_FROM_ADDRESS,
            Reject::NameTimeout => NAME_TIMEOUT,
            Reject::Banned { .. } => BANNED,
            Reject::AccountRequired => ACCOUNT_REQUIRED,
            Reject::WrongPassword => WRONG_PASSWORD,
            Reject::TooManyFailures => TOO_MANY_FAILURES,
            Reject::TooManyAttempts { .. } => TOO_MANY_ATTEMPTS,
            Reject::CannotBanSelf => CANNOT_BAN_SELF,
            Reject::LastAdmin { .. } => LAST_ADMIN,
            Reject::PasswordsDiffer => PASSWORDS_DIFFER,
            Reject::PermissionDenied => PERMISSION_DENIED,
            Reject::AlreadyRegistered => ALREADY_REGISTERED,
            Reject::RegistrationClosed => REGISTRATION_CLOSED,
            Reject::NotRegistered { .. } => NOT_REGISTERED,
            Reject::NotBanned { .. } => NOT_BANNED,
            Reject::Busy => BUSY,
            Reject::Degraded => DEGRADED,
            Reject::TlsRequired { .. } => TLS_REQUIRED,
            Reject::PlainPassword => PLAIN_PASSWORD,
            Reject::Failed => FAILED,
            Reject::TooMuchBadInput => TOO_MUCH_BAD_INPUT,
            Reject::RoomNameInvalid { .. } | Reject::NoSuchRoom { .. } => NO_SUCH_ROOM,
            Reject::NotInRoom { .. }
            | Reject::AlreadyInRoom { .. }
            | Reject::UserNotInRoom { .. }
            | Reject::AlreadyModerator { .. }
            | Reject::CannotLeaveDefaultRoom { .. } => ROOM_MEMBERSHIP,
            Reject::RoomExists { .. }
            | Reject::RoomCreationClosed { .. }
            | Reject::TooManyRooms { .. }
            | Reject::TooManyRoomsForUser { .. } => ROOM_LIMIT,
            Reject::NotModerator { .. } => NOT_MODERATOR,
            Reject::BadInput(error) => match error {
                DecodeError::LineTooLong { .. } | DecodeError::EndlessLine { .. } => LINE_TOO_LONG,
                DecodeError::FrameTooLong { .. } => FRAME_TOO_LONG,
                DecodeError::UnknownType { .. } => UNKNOWN_TYPE,
                DecodeError::Malformed { .. } | DecodeError::WebFraming => MALFORMED,
                DecodeError::BadVersion { .. } | DecodeError::WebVersion { .. } => BAD_VERSION,
                DecodeError::BadDigest { .. } => BAD_DIGEST,
                DecodeError::WebTooLong { .. } => FRAME_TOO_LONG,
                DecodeError::WebMessage => BAD_MESSAGE,
            },
        }
    }
}

/// `text` cut to at most [`MAX_STRING`] bytes, at a character boundary.
pub fn fit(text: &str) -> &str {
    if text.len() <= MAX_STRING {
        return text;
    }
    let mut end = MAX_STRING;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A frame a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// The handshake.
    Hello {
        /// The protocol version the client speaks.
        version: u16,
        /// The name it wants.
        name: String,
    },
    /// Chat text for the room.
    Say {
        /// The client's number for the message, named by an error about it.
        id: u32,
        /// The text.
        text: String,
        /// The SHA-224 digest of the text's bytes.
        digest: Digest,
    },
    /// Chat text for one user.
    Dm {
        /// The client's number for the message.
        id: u32,
        /// The recipient's name.
        to: String,
        /// The text.
        text: String,
        /// The SHA-224 digest of the text's bytes.
        digest: Digest,
    },
    /// A command, as text mode's `/NAME ARGS`.
    Command {
        /// The command name, without the slash.
        name: String,
        /// The argument text.
        args: String,
    },
    /// A liveness probe.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Leaving.
    Bye {
        /// Why, if the user said.
        reason: Option<String>,
    },
    /// The answer to the server's keepalive ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
}

impl ClientFrame {
    /// A hello for this protocol version.
    pub fn hello(name: &str) -> ClientFrame {
        ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            name: name.to_owned(),
        }
    }

    /// A say frame with the digest of `text` (cut to [`MAX_STRING`] bytes).
    pub fn say(id: u32, text: &str) -> ClientFrame {
        let text = fit(text);
        ClientFrame::Say {
            id,
            text: text.to_owned(),
            digest: digest(text.as_bytes()),
        }
    }

    /// A dm frame with the digest of `text` (cut to [`MAX_STRING`] bytes).
    pub fn dm(id: u32, to: &str, text: &str) -> ClientFrame {
        let text = fit(text);
        ClientFrame::Dm {
            id,
            to: to.to_owned(),
            text: text.to_owned(),
            digest: digest(text.as_bytes()),
        }
    }

    /// Appends the frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ClientFrame::Hello { version, name } => {
                let mut w = FrameWriter::begin(out, frame_type::HELLO);
                w.u16(*version);
                w.string(name);
                w.finish();
            }
            ClientFrame::Say { id, text, digest } => {
                let mut w = FrameWriter::begin(out, frame_type::SAY);
                w.u32(*id);
                w.string(text);
                w.bytes(digest);
                w.finish();
            }
            ClientFrame::Dm {
                id,
                to,
                text,
                digest,
            } => {
                let mut w = FrameWriter::begin(out, frame_type::DM);
                w.u32(*id);
                w.string(to);
                w.string(text);
                w.bytes(digest);
                w.finish();
            }
            ClientFrame::Command { name, args } => {
                let mut w = FrameWriter::begin(out, frame_type::COMMAND);
                w.string(name);
                w.string(args);
                w.finish();
            }
            ClientFrame::Ping { nonce } => {
                let mut w = FrameWriter::begin(out, frame_type::PING);
                w.u64(*nonce);
                w.finish();
            }
            ClientFrame::Bye { reason } => {
                let mut w = FrameWriter::begin(out, frame_type::BYE);
                w.string(reason.as_deref().unwrap_or(""));
                w.finish();
            }
            ClientFrame::Pong { nonce } => {
                let mut w = FrameWriter::begin(out, frame_type::CLIENT_PONG);
                w.u64(*nonce);
                w.finish();
            }
        }
    }

    /// Parses the body of a client frame of type `code`, checking the version of a hello and the
    /// digest of a say or dm (over the text's bytes as sent, before sanitizing).
    pub fn parse(code: u8, body: &[u8]) -> Result<ClientFrame, DecodeError> {
        let mut r = Reader { code, body };
        match code {
            frame_type::HELLO => {
                // The version comes first: a later version may lay out the rest differently.
                let version = r.u16()?;
                if version != PROTOCOL_VERSION {
                    return Err(DecodeError::BadVersion { version });
                }
                let name = r.string()?;
                r.finish()?;
                Ok(ClientFrame::Hello { version, name })
            }
            frame_type::SAY => {
                let id = r.u32()?;
                let text = r.raw_string()?;
                let sent = r.digest()?;
                r.finish()?;
                check_digest(id, text, &sent)?;
                Ok(ClientFrame::Say {
                    id,
                    text: sanitize(text),
                    digest: sent,
                })
            }
            frame_type::DM => {
                let id = r.u32()?;
                let to = r.string()?;
                let text = r.raw_string()?;
                let sent = r.digest()?;
                r.finish()?;
                check_digest(id, text, &sent)?;
                Ok(ClientFrame::Dm {
                    id,
                    to,
                    text: sanitize(text),
                    digest: sent,
                })
            }
            frame_type::COMMAND => {
                let name = r.string()?;
                let args = r.string()?;
                r.finish()?;
                Ok(ClientFrame::Command { name, args })
            }
            frame_type::PING => {
                let nonce = r.u64()?;
                r.finish()?;
                Ok(ClientFrame::Ping { nonce })
            }
            frame_type::CLIENT_PONG => {
                let nonce = r.u64()?;
                r.finish()?;
                Ok(ClientFrame::Pong { nonce })
            }
            frame_type::BYE => {
                let reason = r.string()?;
                r.finish()?;
                let reason = reason.trim();
                Ok(ClientFrame::Bye {
                    reason: (!reason.is_empty()).then(|| reason.to_owned()),
                })
            }
            _ => Err(DecodeError::UnknownType { code }),
        }
    }
}

impl From<ClientFrame> for ClientMsg {
    fn from(frame: ClientFrame) -> ClientMsg {
        match frame {
            ClientFrame::Hello { name, .. } => ClientMsg::Hello { name },
            ClientFrame::Say { text, .. } => ClientMsg::Say { text },
            ClientFrame::Dm { to, text, .. } => ClientMsg::Command(Command::Dm { to, text }),
            ClientFrame::Command { name, args } => ClientMsg::Command(Command::parse(&name, &args)),
            ClientFrame::Ping { nonce } => ClientMsg::Ping { nonce },
            ClientFrame::Bye { reason } => ClientMsg::Command(Command::Quit { reason }),
            ClientFrame::Pong { nonce } => ClientMsg::Pong { nonce },
        }
    }
}

fn check_digest(id: u32, text: &[u8], sent: &Digest) -> Result<(), DecodeError> {
    if digest(text) == *sent {
        Ok(())
    } else {
        Err(DecodeError::BadDigest { id })
    }
}

/// A frame a server sends, as a client decodes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerFrame {
    /// The client joined under `name`.
    Welcome {
        /// The name granted.
        name: String,
        /// Who else is online: the first names, sorted ignoring case.
        others: Vec<String>,
        /// How many more are online than `others` names.
        more: usize,
    },
    /// A chat message.
    Chat {
        /// Room, direct or history: a [`chat_kind`].
        kind: u8,
        /// When the server relayed it.
        at: Stamp,
        /// Who said it.
        from: String,
        /// What was said.
        text: String,
        /// Whether the text matched the digest that came with it.
        digest_ok: bool,
    },
    /// Something happened in the room.
    Event(Event),
    /// This client has been kicked out; the connection closes next.
    Kicked {
        /// Who kicked it.
        by: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// The text lines a text-mode client would be shown.
    Reply {
        /// What the reply answers (see [`reply_kind`]); the lines are worth printing whatever it is.
        kind: u8,
        /// The lines, without line ends.
        lines: Vec<String>,
    },
    /// A refused request.
    Error {
        /// What went wrong (see [`error_code`]).
        code: u16,
        /// The id of the message it concerns, or 0.
        id: u32,
        /// The text a text-mode client would be shown after `[!] `.
        text: String,
    },
    /// The answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// The server's time.
        at: Stamp,
    },
    /// The answer to a bye; the server closes next.
    Bye,
    /// A keepalive ping: answer with [`ClientFrame::Pong`] or be closed.
    Ping {
        /// To echo in the pong.
        nonce: u64,
    },
    /// A line of a room: said, acted, history, or something that happened there.
    Room {
        /// The room.
        room: RoomTag,
        /// The line.
        line: RoomLine,
        /// Whether a said line's text matched its digest (always true for events).
        digest_ok: bool,
    },
    /// Every room.
    Rooms {
        /// One entry per room.
        rooms: Vec<RoomEntry>,
    },
    /// A room's members.
    Who {
        /// The room.
        room: String,
        /// One entry per member.
        members: Vec<MemberEntry>,
    },
    /// A room's topic.
    Topic {
        /// The room.
        room: String,
        /// The topic, if set.
        topic: Option<TopicEntry>,
    },
    /// The client's current room changed.
    CurrentRoom(RoomChange),
}

/// How the client's current room changed, as a current-room frame tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomChange {
    /// The client joined `room`, now its current room.
    Joined {
        /// The room.
        room: RoomTag,
        /// Its members now, the client included.
        members: usize,
        /// Whether the client made it (and so moderates it).
        created: bool,
    },
    /// The client's current room is now `room`.
    Switched {
        /// The room.
        room: RoomTag,
    },
    /// The client left `room`; `current` is its current room now.
    Parted {
        /// The room left.
        room: String,
        /// The current room now.
        current: String,
    },
    /// A moderator took the client out of `room`; `current` is its current room now.
    Removed {
        /// The room.
        room: String,
        /// Who did it.
        by: String,
        /// Why, if given.
        reason: Option<String>,
        /// The current room now.
        current: String,
    },
}

impl RoomChange {
    /// The change told by `msg`, if `msg` tells one.
    pub fn of(msg: &ServerMsg) -> Option<RoomChange> {
        Some(match msg {
            ServerMsg::Done(Done::JoinedRoom {
                room,
                members,
                created,
            }) => RoomChange::Joined {
                room: room.clone(),
                members: *members,
                created: *created,
            },
            ServerMsg::Done(Done::SwitchedRoom { room }) => {
                RoomChange::Switched { room: room.clone() }
            }
            ServerMsg::Done(Done::PartedRoom { room, current }) => RoomChange::Parted {
                room: room.clone(),
                current: current.clone(),
            },
            ServerMsg::Notice(Notice::RemovedFromRoom {
                room,
                by,
                reason,
                current,
            }) => RoomChange::Removed {
                room: room.clone(),
                by: by.clone(),
                reason: reason.clone(),
                current: current.clone(),
            },
            _ => return None,
        })
    }

    /// The message this change was made from.
    pub fn to_msg(&self) -> ServerMsg {
        match self.clone() {
            RoomChange::Joined {
                room,
                members,
                created,
            } => ServerMsg::Done(Done::JoinedRoom {
                room,
                members,
                created,
            }),
            RoomChange::Switched { room } => ServerMsg::Done(Done::SwitchedRoom { room }),
            RoomChange::Parted { room, current } => {
                ServerMsg::Done(Done::PartedRoom { room, current })
            }
            RoomChange::Removed {
                room,
                by,
                reason,
                current,
            } => ServerMsg::Notice(Notice::RemovedFromRoom {
                room,
                by,
                reason,
                current,
            }),
        }
    }

    /// The client's current room after the change.
    pub fn current(&self) -> &str {
        match self {
            RoomChange::Joined { room, .. } | RoomChange::Switched { room } => &room.name,
            RoomChange::Parted { current, .. } | RoomChange::Removed { current, .. } => current,
        }
    }
}

impl ServerFrame {
    /// The message a server encoded into this frame, as far as the frame tells it (a chat frame's
    /// kind picks room, direct or history; a kick becomes [`ServerMsg::Kicked`]; a reply frame and
    /// an error frame have no one message and give `None`).
    pub fn to_msg(&self) -> Option<ServerMsg> {
        Some(match self.clone() {
            ServerFrame::Welcome { name, others, more } => {
                ServerMsg::Welcome { name, others, more }
            }
            ServerFrame::Chat {
                kind,
                at,
                from,
                text,
                ..
            } => match kind {
                chat_kind::DIRECT => ServerMsg::Direct { at, from, text },
                chat_kind::HISTORY => ServerMsg::Backlog { at, from, text },
                _ => ServerMsg::Chat { at, from, text },
            },
            ServerFrame::Event(event) => ServerMsg::Event(event),
            ServerFrame::Kicked { by, reason } => ServerMsg::Kicked { by, reason },
            ServerFrame::Reply { .. } | ServerFrame::Error { .. } => return None,
            ServerFrame::Pong { nonce, at } => ServerMsg::Pong { nonce, at },
            ServerFrame::Bye => ServerMsg::Bye,
            ServerFrame::Ping { nonce } => ServerMsg::KeepAlive { nonce },
            ServerFrame::Room { room, line, .. } => ServerMsg::Room { room, line },
            ServerFrame::Rooms { rooms } => ServerMsg::Rooms { rooms },
            ServerFrame::Who { room, members } => ServerMsg::Who { room, members },
            ServerFrame::Topic { room, topic } => ServerMsg::Topic { room, topic },
            ServerFrame::CurrentRoom(change) => change.to_msg(),
        })
    }
}

impl ServerFrame {
    /// Parses the body of a server frame of type `code`; a chat frame's digest is checked over the
    /// text's bytes as sent.
    pub fn parse(code: u8, body: &[u8]) -> Result<ServerFrame, DecodeError> {
        let mut r = Reader { code, body };
        let frame = match code {
            frame_type::WELCOME => {
                let name = r.string()?;
                let others = r.strings()?;
                let more = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
                ServerFrame::Welcome { name, others, more }
            }
            frame_type::CHAT => {
                let kind = r.chat_kind()?;
                let at = r.stamp()?;
                let from = r.string()?;
                let text = r.raw_string()?;
                let sent = r.digest()?;
                ServerFrame::Chat {
                    kind,
                    at,
                    from,
                    text: sanitize(text),
                    digest_ok: digest(text) == sent,
                }
            }
            frame_type::EVENT => {
                let kind = r.u8()?;
                let name = r.string()?;
                let reason = r.string()?;
                let reason = (!reason.is_empty()).then_some(reason);
                let left = |kind| Event::Left {
                    name: name.clone(),
                    kind,
                    reason: reason.clone(),
                };
                match kind {
                    event_kind::ENTERED => ServerFrame::Event(Event::Entered { name }),
                    event_kind::EXITED => ServerFrame::Event(left(LeaveKind::Exited)),
                    event_kind::KICKED => ServerFrame::Event(left(LeaveKind::Kicked)),
                    event_kind::SHUTDOWN => ServerFrame::Event(Event::Shutdown),
                    event_kind::KICKED_YOU => ServerFrame::Kicked { by: name, reason },
                    _ => return Err(r.malformed()),
                }
            }
            frame_type::REPLY => {
                let kind = r.u8()?;
                let lines = r.strings()?;
                ServerFrame::Reply { kind, lines }
            }
            frame_type::ERROR => {
                let code = r.u16()?;
                let id = r.u32()?;
                let text = r.string()?;
                ServerFrame::Error { code, id, text }
            }
            frame_type::PONG => {
                let nonce = r.u64()?;
                let at = r.stamp()?;
                ServerFrame::Pong { nonce, at }
            }
            frame_type::SERVER_BYE => ServerFrame::Bye,
            frame_type::SERVER_PING => ServerFrame::Ping { nonce: r.u64()? },
            frame_type::ROOM_CHAT => {
                let room = r.room_tag()?;
                let kind = r.u8()?;
                let at = r.stamp()?;
                let from = r.string()?;
                let raw = r.raw_string()?;
                let sent = r.digest()?;
                let text = sanitize(raw);
                let line = match kind {
                    room_chat_kind::SAID => RoomLine::Chat { at, from, text },
                    room_chat_kind::ACTION => RoomLine::Me { at, from, text },
                    room_chat_kind::HISTORY | room_chat_kind::HISTORY_ACTION => RoomLine::History {
                        at,
                        from,
                        text,
                        me: kind == room_chat_kind::HISTORY_ACTION,
                    },
                    _ => return Err(r.malformed()),
                };
                ServerFrame::Room {
                    room,
                    line,
                    digest_ok: digest(raw) == sent,
                }
            }
            frame_type::ROOM_EVENT => {
                let room = r.room_tag()?;
                let kind = r.u8()?;
                let mut names = r.strings()?;
                let more = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
                let by = r.string()?;
                let text = r.string()?;
                let reason = (!text.is_empty()).then(|| text.clone());
                let left = |how| RoomLine::Left {
                    names: names.clone(),
                    more,
                    how,
                    reason: reason.clone(),
                };
                let line = match kind {
                    room_event_kind::ENTERED => RoomLine::Entered {
                        names: names.clone(),
                        more,
                    },
                    room_event_kind::PARTED => left(Departure::Parted),
                    room_event_kind::EXITED => left(Departure::Exited),
                    room_event_kind::KICKED => left(Departure::Kicked),
                    room_event_kind::REMOVED if names.len() == 1 => RoomLine::Removed {
                        name: names.remove(0),
                        by,
                        reason,
                    },
                    room_event_kind::TOPIC => RoomLine::Topic { text, by },
                    room_event_kind::MODERATOR if names.len() == 1 => RoomLine::Moderator {
                        name: names.remove(0),
                        by,
                    },
                    _ => return Err(r.malformed()),
                };
                ServerFrame::Room {
                    room,
                    line,
                    digest_ok: true,
                }
            }
            frame_type::ROOMS => {
                let count = r.u16()?;
                let rooms = (0..count)
                    .map(|_| {
                        let name = r.string()?;
                        let members = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
                        let flags = r.u8()?;
                        let topic = r.string()?;
                        Ok(RoomEntry {
                            name,
                            members,
                            topic: (!topic.is_empty()).then_some(topic),
                            persistent: flags & room_flag::PERSISTENT != 0,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                ServerFrame::Rooms { rooms }
            }
            frame_type::WHO => {
                let room = r.string()?;
                let count = r.u16()?;
                let members = (0..count)
                    .map(|_| {
                        let name = r.string()?;
                        let flags = r.u8()?;
                        let away = r.string()?;
                        Ok(MemberEntry {
                            name,
                            moderator: flags & room_flag::MODERATOR != 0,
                            away: (flags & room_flag::AWAY != 0).then_some(away),
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                ServerFrame::Who { room, members }
            }
            frame_type::TOPIC => {
                let room = r.string()?;
                let flags = r.u8()?;
                let text = r.string()?;
                let by = r.string()?;
                let at = r.local_stamp()?;
                let topic =
                    (flags & room_flag::TOPIC_SET != 0).then_some(TopicEntry { text, by, at });
                ServerFrame::Topic { room, topic }
            }
            frame_type::CURRENT_ROOM => {
                let kind = r.u8()?;
                let (room, flags) = r.room_tag_flags()?;
                let members = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
                let current = r.string()?;
                let by = r.string()?;
                let reason = r.string()?;
                let reason = (!reason.is_empty()).then_some(reason);
                let created = flags & room_flag::CREATED != 0;
                ServerFrame::CurrentRoom(match kind {
                    current_room_kind::JOINED => RoomChange::Joined {
                        room,
                        members,
                        created,
                    },
                    current_room_kind::SWITCHED => RoomChange::Switched { room },
                    current_room_kind::PARTED => RoomChange::Parted {
                        room: room.name,
                        current,
                    },
                    current_room_kind::REMOVED => RoomChange::Removed {
                        room: room.name,
                        by,
                        reason,
                        current,
                    },
                    _ => return Err(r.malformed()),
                })
            }
            _ => return Err(DecodeError::UnknownType { code }),
        };
        r.finish()?;
        Ok(frame)
    }
}

/// Appends `msg` to `out` as one frame. Chat frames carry the SHA-224 digest of their text,
/// computed here, once per message however many clients get it.
/// The greeting is no frame: a framed client is greeted only once its hello has told the server
/// its mode, and the greeting's name prompt is for people typing.
pub fn encode(msg: &ServerMsg, out: &mut Vec<u8>) {
    match msg {
        ServerMsg::Greeting { .. } => {}
        // The `chat` window's user list takes its away marks from `/users`: no frame (an
        // older client would refuse an unknown frame type).
        ServerMsg::AwayChanged { .. } => {}
        ServerMsg::NamePrompt => encode_reply(reply_kind::NAME_PROMPT, msg, out),
        ServerMsg::Help { .. } => encode_reply(reply_kind::HELP, msg, out),
        ServerMsg::PasswordPrompt => encode_reply(reply_kind::PASSWORD_PROMPT, msg, out),
        ServerMsg::Away { .. } => encode_reply(reply_kind::AWAY, msg, out),
        ServerMsg::WhoAmI { .. } => encode_reply(reply_kind::WHOAMI, msg, out),
        ServerMsg::UserInfo { .. } => encode_reply(reply_kind::WHOIS, msg, out),
        ServerMsg::Time { .. } => encode_reply(reply_kind::TIME, msg, out),
        ServerMsg::Stats { .. } => encode_reply(reply_kind::STATS, msg, out),
        ServerMsg::Bans { .. } => encode_reply(reply_kind::BANS, msg, out),
        ServerMsg::Room { room, line } => encode_room_line(room, line, out),
        ServerMsg::Rooms { rooms } => {
            let mut w = FrameWriter::begin(out, frame_type::ROOMS);
            let count = rooms.len().min(usize::from(u16::MAX));
            w.u16(u16::try_from(count).unwrap_or(u16::MAX));
            for room in &rooms[..count] {
                w.string(&room.name);
                w.u32(u32::try_from(room.members).unwrap_or(u32::MAX));
                w.u8(if room.persistent {
                    room_flag::PERSISTENT
                } else {
                    0
                });
                w.string(room.topic.as_deref().unwrap_or(""));
            }
            w.finish();
        }
        ServerMsg::Who { room, members } => {
            let mut w = FrameWriter::begin(out, frame_type::WHO);
            w.string(room);
            let count = members.len().min(usize::from(u16::MAX));
            w.u16(u16::try_from(count).unwrap_or(u16::MAX));
            for member in &members[..count] {
                w.string(&member.name);
                let mut flags = 0;
                if member.moderator {
                    flags |= room_flag::MODERATOR;
                }
                if member.away.is_some() {
                    flags |= room_flag::AWAY;
                }
                w.u8(flags);
                w.string(member.away.as_deref().unwrap_or(""));
            }
            w.finish();
        }
        ServerMsg::Topic { room, topic } => {
            let mut w = FrameWriter::begin(out, frame_type::TOPIC);
            w.string(room);
            match topic {
                Some(topic) => {
                    w.u8(room_flag::TOPIC_SET);
                    w.string(&topic.text);
                    w.string(&topic.by);
                    w.stamp(&topic.at);
                }
                None => {
                    w.u8(0);
                    w.string("");
                    w.string("");
                    w.stamp(&Stamp::new(0, 0, 0, 0));
                }
            }
            w.finish();
        }
        ServerMsg::Done(_) | ServerMsg::Notice(_) => match RoomChange::of(msg) {
            Some(change) => encode_room_change(&change, out),
            None if matches!(msg, ServerMsg::Done(_)) => encode_reply(reply_kind::DONE, msg, out),
            None => encode_reply(reply_kind::NOTICE, msg, out),
        },
        ServerMsg::Backlog { at, from, text } => {
            encode_chat(chat_kind::HISTORY, at, from, text, out)
        }
        ServerMsg::HostHelp => encode_reply(reply_kind::HOST_HELP, msg, out),
        ServerMsg::Users { .. } => encode_reply(reply_kind::USERS, msg, out),
        ServerMsg::Welcome { name, others, more } => {
            let mut w = FrameWriter::begin(out, frame_type::WELCOME);
            w.string(name);
            w.strings(others.iter().map(String::as_str));
            w.u32(u32::try_from(*more).unwrap_or(u32::MAX));
            w.finish();
        }
        ServerMsg::Chat { at, from, text } => encode_chat(chat_kind::ROOM, at, from, text, out),
        ServerMsg::Direct { at, from, text } => encode_chat(chat_kind::DIRECT, at, from, text, out),
        ServerMsg::Event(Event::Entered { name }) => {
            encode_event(event_kind::ENTERED, name, None, out)
        }
        ServerMsg::Event(Event::Left { name, kind, reason }) => {
            let kind = match kind {
                LeaveKind::Exited => event_kind::EXITED,
                LeaveKind::Kicked => event_kind::KICKED,
            };
            encode_event(kind, name, reason.as_deref(), out)
        }
        ServerMsg::Event(Event::Shutdown) => encode_event(event_kind::SHUTDOWN, "", None, out),
        ServerMsg::Kicked { by, reason } => {
            encode_event(event_kind::KICKED_YOU, by, reason.as_deref(), out)
        }
        ServerMsg::Reject(reject) => {
            let mut w = FrameWriter::begin(out, frame_type::ERROR);
            w.u16(error_code::of(reject));
            w.u32(match reject {
                Reject::BadInput(DecodeError::BadDigest { id }) => *id,
                _ => 0,
            });
            w.string(&reject.to_string());
            w.finish();
        }
        ServerMsg::Bye => FrameWriter::begin(out, frame_type::SERVER_BYE).finish(),
        ServerMsg::KeepAlive { nonce } => {
            let mut w = FrameWriter::begin(out, frame_type::SERVER_PING);
            w.u64(*nonce);
            w.finish();
        }
        ServerMsg::Pong { nonce, at } => {
            let mut w = FrameWriter::begin(out, frame_type::PONG);
            w.u64(*nonce);
            w.stamp(at);
            w.finish();
        }
        // Framed clients never resume: the line goes as it is, without its id.
        ServerMsg::Line { msg, .. } => encode(msg, out),
        ServerMsg::Gap { .. } => encode_reply(reply_kind::NOTICE, msg, out),
    }
}

fn encode_chat(kind: u8, at: &Stamp, from: &str, text: &str, out: &mut Vec<u8>) {
    let text = fit(text);
    let mut w = FrameWriter::begin(out, frame_type::CHAT);
    w.u8(kind);
    w.stamp(at);
    w.string(from);
    w.string(text);
    w.bytes(&digest(text.as_bytes()));
    w.finish();
}

/// The room's name and its flags byte.
fn write_room(w: &mut FrameWriter<'_>, room: &RoomTag, extra_flags: u8) {
    w.string(&room.name);
    w.u8(if room.default { room_flag::DEFAULT } else { 0 } | extra_flags);
}

fn encode_room_line(room: &RoomTag, line: &RoomLine, out: &mut Vec<u8>) {
    let said = |kind: u8, at: &Stamp, from: &str, text: &str, out: &mut Vec<u8>| {
        let text = fit(text);
        let mut w = FrameWriter::begin(out, frame_type::ROOM_CHAT);
        write_room(&mut w, room, 0);
        w.u8(kind);
        w.stamp(at);
        w.string(from);
        w.string(text);
        w.bytes(&digest(text.as_bytes()));
        w.finish();
    };
    let happened = |kind: u8, names: &[String], more: usize, by: &str, text: &str, out| {
        encode_room_event(room, kind, names, more, by, text, out)
    };
    match line {
        RoomLine::Chat { at, from, text } => said(room_chat_kind::SAID, at, from, text, out),
        RoomLine::Me { at, from, text } => said(room_chat_kind::ACTION, at, from, text, out),
        RoomLine::History { at, from, text, me } => {
            let kind = if *me {
                room_chat_kind::HISTORY_ACTION
            } else {
                room_chat_kind::HISTORY
            };
            said(kind, at, from, text, out)
        }
        RoomLine::Entered { names, more } => {
            happened(room_event_kind::ENTERED, names, *more, "", "", out)
        }
        RoomLine::Left {
            names,
            more,
            how,
            reason,
        } => {
            let kind = match how {
                Departure::Parted => room_event_kind::PARTED,
                Departure::Exited => room_event_kind::EXITED,
                Departure::Kicked => room_event_kind::KICKED,
            };
            happened(kind, names, *more, "", reason.as_deref().unwrap_or(""), out)
        }
        RoomLine::Removed { name, by, reason } => happened(
            room_event_kind::REMOVED,
            std::slice::from_ref(name),
            0,
            by,
            reason.as_deref().unwrap_or(""),
            out,
        ),
        RoomLine::Topic { text, by } => happened(room_event_kind::TOPIC, &[], 0, by, text, out),
        RoomLine::Moderator { name, by } => happened(
            room_event_kind::MODERATOR,
            std::slice::from_ref(name),
            0,
            by,
            "",
            out,
        ),
    }
}

fn encode_room_event(
    room: &RoomTag,
    kind: u8,
    names: &[String],
    more: usize,
    by: &str,
    text: &str,
    out: &mut Vec<u8>,
) {
    let mut w = FrameWriter::begin(out, frame_type::ROOM_EVENT);
    write_room(&mut w, room, 0);
    w.u8(kind);
    w.strings(names.iter().map(String::as_str));
    w.u32(u32::try_from(more).unwrap_or(u32::MAX));
    w.string(by);
    w.string(text);
    w.finish();
}

fn encode_room_change(change: &RoomChange, out: &mut Vec<u8>) {
    let plain = |name: &str| RoomTag {
        name: name.to_owned(),
        default: false,
    };
    let (kind, room, flags, members, by, reason) = match change {
        RoomChange::Joined {
            room,
            members,
            created,
        } => (
            current_room_kind::JOINED,
            room.clone(),
            if *created { room_flag::CREATED } else { 0 },
            *members,
            "",
            None,
        ),
        RoomChange::Switched { room } => {
            (current_room_kind::SWITCHED, room.clone(), 0, 0, "", None)
        }
        RoomChange::Parted { room, .. } => (current_room_kind::PARTED, plain(room), 0, 0, "", None),
        RoomChange::Removed {
            room, by, reason, ..
        } => (
            current_room_kind::REMOVED,
            plain(room),
            0,
            0,
            by.as_str(),
            reason.as_deref(),
        ),
    };
    let mut w = FrameWriter::begin(out, frame_type::CURRENT_ROOM);
    w.u8(kind);
    write_room(&mut w, &room, flags);
    w.u32(u32::try_from(members).unwrap_or(u32::MAX));
    w.string(change.current());
    w.string(by);
    w.string(reason.unwrap_or(""));
    w.finish();
}

fn encode_event(kind: u8, name: &str, reason: Option<&str>, out: &mut Vec<u8>) {
    let mut w = FrameWriter::begin(out, frame_type::EVENT);
    w.u8(kind);
    w.string(name);
    w.string(reason.unwrap_or(""));
    w.finish();
}

/// A reply frame holding the lines text mode shows for `msg`, so both kinds of client read the same.
fn encode_reply(kind: u8, msg: &ServerMsg, out: &mut Vec<u8>) {
    let mut lines = Vec::new();
    text::encode(msg, text::CONSOLE_EOL, &mut lines);
    let lines = String::from_utf8_lossy(&lines);
    let mut w = FrameWriter::begin(out, frame_type::REPLY);
    w.u8(kind);
    w.strings(lines.lines());
    w.finish();
}

/// Splits a client's byte stream into [`ClientMsg`]s: the server side of framed mode.
#[derive(Debug)]
pub struct ClientFrameDecoder {
    max_frame: usize,
    /// Set after a fatal error: the framing is lost, and every later byte is dropped.
    failed: bool,
}

impl ClientFrameDecoder {
    /// Changes the frame limit (capped at [`MAX_FRAME_CAP`]).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame.min(MAX_FRAME_CAP);
    }

    /// A decoder that refuses frames longer than `max_frame` (capped at [`MAX_FRAME_CAP`]).
    pub fn new(max_frame: usize) -> ClientFrameDecoder {
        ClientFrameDecoder {
            max_frame: max_frame.min(MAX_FRAME_CAP),
            failed: false,
        }
    }

    /// Decodes the next frame from the front of `input`; see [`super::Decoder::decode`].
    pub fn decode(&mut self, input: &[u8]) -> Decoded {
        decode_frame(input, self.max_frame, &mut self.failed, |code, body| {
            ClientFrame::parse(code, body).map(ClientMsg::from)
        })
    }
}

/// Splits a server's byte stream into [`ServerFrame`]s: the client side of framed mode.
///
/// Everything before the first 0x00 byte is skipped: the server greets every connection in text
/// before it knows the mode, and that greeting never holds a 0x00, while every frame starts with one.
#[derive(Debug)]
pub struct ServerFrameDecoder {
    max_frame: usize,
    in_frames: bool,
    failed: bool,
}

impl ServerFrameDecoder {
    /// A decoder that refuses frames longer than `max_frame` (capped at [`MAX_FRAME_CAP`]).
    pub fn new(max_frame: usize) -> ServerFrameDecoder {
        ServerFrameDecoder {
            max_frame: max_frame.min(MAX_FRAME_CAP),
            in_frames: false,
            failed: false,
        }
    }

    /// Decodes the next frame from the front of `input`, skipping the text before the first frame.
    /// Call again with the unused rest until `item` is `None`.
    pub fn decode(&mut self, input: &[u8]) -> Decoded<ServerFrame> {
        let mut skipped = 0;
        if !self.in_frames {
            match input.iter().position(|&b| b == 0) {
                Some(start) => {
                    self.in_frames = true;
                    skipped = start;
                }
                None => {
                    return Decoded {
                        used: input.len(),
                        item: None,
                    }
                }
            }
        }
        let mut step = decode_frame(
            &input[skipped..],
            self.max_frame,
            &mut self.failed,
            ServerFrame::parse,
        );
        step.used += skipped;
        step
    }
}

/// A chat frame read in place by [`peek_chat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatPeek<'a> {
    /// The whole frame's length, header included.
    pub len: usize,
    /// The text as sent.
    pub text: &'a [u8],
    /// The digest sent with it (not checked).
    pub digest: Digest,
}

/// Reads the whole chat frame (or room chat frame) at the front of `input` in place, for tools
/// that count deliveries and need neither the sender nor the time nor the room (the load
/// generator). `None` if `input` does not start with a whole chat frame with its fields in place
/// (the time and the sender are not checked, nor the digest); [`ServerFrameDecoder`] reads and
/// checks every frame.
pub fn peek_chat(input: &[u8]) -> Option<ChatPeek<'_>> {
    let (header, rest) = input.split_first_chunk::<HEADER_LEN>()?;
    let frame_len = usize::try_from(u32::from_be_bytes(*header)).ok()?;
    let (&code, body) = rest.get(..frame_len)?.split_first()?;
    let mut r = Reader { code, body };
    match code {
        frame_type::CHAT => {
            r.chat_kind().ok()?;
        }
        frame_type::ROOM_CHAT => {
            r.raw_string().ok()?;
            r.u8().ok()?;
            if r.u8().ok()? > room_chat_kind::HISTORY_ACTION {
                return None;
            }
        }
        _ => return None,
    }
    r.stamp_bytes().ok()?;
    r.raw_string().ok()?;
    let text = r.raw_string().ok()?;
    let digest = r.digest().ok()?;
    r.finish().ok()?;
    Some(ChatPeek {
        len: HEADER_LEN + frame_len,
        text,
        digest,
    })
}

/// Takes the frame at the front of `input` and parses it with `parse`. The length is checked
/// against `max_frame` as soon as the header is in, before anything waits for the body. After a
/// fatal error `failed` is set and all input is dropped from then on.
fn decode_frame<T>(
    input: &[u8],
    max_frame: usize,
    failed: &mut bool,
    parse: impl FnOnce(u8, &[u8]) -> Result<T, DecodeError>,
) -> Decoded<T> {
    if *failed {
        return Decoded {
            used: input.len(),
            item: None,
        };
    }
    let Some((header, rest)) = input.split_first_chunk::<HEADER_LEN>() else {
        return Decoded {
            used: 0,
            item: None,
        };
    };
    let len = u32::from_be_bytes(*header);
    let fail = |failed: &mut bool, used, error| {
        *failed = true;
        Decoded {
            used,
            item: Some(Err(error)),
        }
    };
    let Some(frame_len) = usize::try_from(len).ok().filter(|&n| n <= max_frame) else {
        let max = u32::try_from(max_frame).unwrap_or(u32::MAX);
        return fail(failed, input.len(), DecodeError::FrameTooLong { len, max });
    };
    let Some(frame) = rest.get(..frame_len) else {
        return Decoded {
            used: 0,
            item: None,
        };
    };
    let used = HEADER_LEN + frame_len;
    let Some((&code, body)) = frame.split_first() else {
        return fail(failed, used, DecodeError::Malformed { code: 0 });
    };
    match parse(code, body) {
        Err(error) if error.is_fatal() => fail(failed, used, error),
        item => Decoded {
            used,
            item: Some(item),
        },
    }
}

/// Builds one frame at the end of a buffer; `finish` fills in the length.
struct FrameWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> FrameWriter<'a> {
    fn begin(out: &'a mut Vec<u8>, code: u8) -> FrameWriter<'a> {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        out.push(code);
        FrameWriter { out, start }
    }

    fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    fn u16(&mut self, value: u16) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A `u16` length and the UTF-8 bytes, cut to [`MAX_STRING`] at a character boundary.
    fn string(&mut self, text: &str) {
        let text = fit(text);
        self.u16(u16::try_from(text.len()).unwrap_or(u16::MAX));
        self.bytes(text.as_bytes());
    }

    /// A `u16` count, then that many strings; past 65535 the rest are left out.
    fn strings<'s>(&mut self, strings: impl Iterator<Item = &'s str> + Clone) {
        let count = strings.clone().take(usize::from(u16::MAX)).count();
        self.u16(u16::try_from(count).unwrap_or(u16::MAX));
        for string in strings.take(count) {
            self.string(string);
        }
    }

    /// Unix seconds as an `i64`, then the eight bytes of `HH:MM:SS`.
    fn stamp(&mut self, at: &Stamp) {
        self.out.extend_from_slice(&at.unix.to_be_bytes());
        self.bytes(at.hms().as_bytes());
    }

    fn finish(self) {
        let len = self.out.len() - self.start - HEADER_LEN;
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.out[self.start..self.start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    }
}

/// Reads the fields of one frame body; any shortfall or leftover is [`DecodeError::Malformed`].
struct Reader<'a> {
    code: u8,
    body: &'a [u8],
}

impl<'a> Reader<'a> {
    fn malformed(&self) -> DecodeError {
        DecodeError::Malformed { code: self.code }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.body.len() < n {
            return Err(self.malformed());
        }
        let (head, rest) = self.body.split_at(n);
        self.body = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .body
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Malformed { code: self.code })?;
        self.body = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn digest(&mut self) -> Result<Digest, DecodeError> {
        self.array()
    }

    /// A string's bytes as sent.
    fn raw_string(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// A string, made safe to show.
    fn string(&mut self) -> Result<String, DecodeError> {
        Ok(sanitize(self.raw_string()?))
    }

    /// A `u16` count, then that many strings.
    fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        let count = self.u16()?;
        (0..count).map(|_| self.string()).collect()
    }

    /// A room's name and flags byte, as a tag (the default flag read) and the whole flags byte.
    fn room_tag_flags(&mut self) -> Result<(RoomTag, u8), DecodeError> {
        let name = self.string()?;
        let flags = self.u8()?;
        let tag = RoomTag {
            name,
            default: flags & room_flag::DEFAULT != 0,
        };
        Ok((tag, flags))
    }

    fn room_tag(&mut self) -> Result<RoomTag, DecodeError> {
        Ok(self.room_tag_flags()?.0)
    }

    /// A time whose local offset is read back from how far its `HH:MM:SS` is from UTC (to the
    /// minute), for times shown with their date (a topic's).
    fn local_stamp(&mut self) -> Result<Stamp, DecodeError> {
        let stamp = self.stamp()?;
        let (h, m, s) = stamp
            .hms()
            .split(':')
            .map(|part| part.parse::<i64>().unwrap_or(0))
            .fold((0, 0, 0), |(_, a, b), n| (a, b, n));
        let shown = h * 3600 + m * 60 + s;
        let utc = stamp.unix.rem_euclid(86_400);
        // The offset that puts the UTC time of day on the one shown, between -12 h and +14 h.
        let mut offset = (shown - utc).rem_euclid(86_400);
        if offset > 14 * 3600 {
            offset -= 86_400;
        }
        let offset = i32::try_from(offset).unwrap_or(0);
        Ok(match time::UtcOffset::from_whole_seconds(offset) {
            Ok(offset) => Stamp::local(stamp.unix, offset),
            Err(_) => stamp,
        })
    }

    /// A chat frame's kind: room, direct or history.
    fn chat_kind(&mut self) -> Result<u8, DecodeError> {
        match self.u8()? {
            kind @ (chat_kind::ROOM | chat_kind::DIRECT | chat_kind::HISTORY) => Ok(kind),
            _ => Err(self.malformed()),
        }
    }

    /// A time's bytes, unchecked: Unix seconds, then `HH:MM:SS`.
    fn stamp_bytes(&mut self) -> Result<([u8; 8], [u8; 8]), DecodeError> {
        Ok((self.array()?, self.array()?))
    }

    fn stamp(&mut self) -> Result<Stamp, DecodeError> {
        let (unix, hms) = self.stamp_bytes()?;
        parse_hms(i64::from_be_bytes(unix), hms).ok_or(self.malformed())
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.body.is_empty() {
            Ok(())
        } else {
            Err(self.malformed())
        }
    }
}

/// A stamp from `HH:MM:SS` bytes, if they are a time of day.
fn parse_hms(unix: i64, hms: [u8; 8]) -> Option<Stamp> {
    let [h1, h2, colon1, m1, m2, colon2, s1, s2] = hms;
    if colon1 != b':' || colon2 != b':' {
        return None;
    }
    let two_digits = |tens: u8, ones: u8| {
        (tens.is_ascii_digit() && ones.is_ascii_digit()).then(|| (tens - b'0') * 10 + ones - b'0')
    };
    let (hour, minute, second) = (
        two_digits(h1, h2)?,
        two_digits(m1, m2)?,
        two_digits(s1, s2)?,
    );
    (hour < 24 && minute < 60 && second < 60).then(|| Stamp::new(unix, hour, minute, second))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::Role;
    use crate::proto::msg::UserEntry;
    use crate::proto::testing::feed;
    use crate::proto::{Decoder, Limits};

    fn client_stream(chunks: &[&[u8]], max_frame: usize) -> Vec<Result<ClientMsg, DecodeError>> {
        let mut decoder = ClientFrameDecoder::new(max_frame);
        feed(|input| decoder.decode(input), chunks)
    }

    fn server_stream(chunks: &[&[u8]]) -> Vec<Result<ServerFrame, DecodeError>> {
        let mut decoder = ServerFrameDecoder::new(MAX_FRAME_CAP);
        feed(|input| decoder.decode(input), chunks)
    }

    fn encoded(frame: &ClientFrame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(&mut out);
        out
    }

    fn encoded_msg(msg: &ServerMsg) -> Vec<u8> {
        let mut out = Vec::new();
        encode(msg, &mut out);
        out
    }

    /// The frame at the start of `bytes`, parsed as a client frame.
    fn parse_client(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let len = u32::from_be_bytes(header.try_into().unwrap()) as usize;
        assert_eq!(rest.len(), len, "one whole frame");
        ClientFrame::parse(rest[0], &rest[1..])
    }

    /// A frame of type `code` around `body`.
    fn raw_frame(code: u8, body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        out.push(code);
        out.extend_from_slice(body);
        out
    }

    fn stamp() -> Stamp {
        Stamp::new(1_700_000_000, 22, 13, 20)
    }

    /// A small deterministic PRNG (xorshift64*), so failures can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Text without blanks at the ends (decoders trim some fields), with multi-byte characters.
        fn text(&mut self, max_chars: usize) -> String {
            const ALPHABET: &[char] = &[
                'a',
                'b',
                'z',
                'Q',
                '0',
                '9',
                '_',
                '\u{e9}',
                '\u{65e5}',
                '\u{1f600}',
                '/',
            ];
            let len = 1 + self.below(max_chars);
            (0..len)
                .map(|_| ALPHABET[self.below(ALPHABET.len())])
                .collect()
        }

        fn name(&mut self) -> String {
            let len = 1 + self.below(12);
            (0..len)
                .map(|_| (b'a' + self.below(26) as u8) as char)
                .collect()
        }
    }

    fn random_client_frame(rng: &mut Rng) -> ClientFrame {
        let id = rng.next() as u32;
        match rng.below(6) {
            0 => ClientFrame::hello(&rng.name()),
            1 => ClientFrame::say(id, &rng.text(40)),
            2 => ClientFrame::dm(id, &rng.name(), &rng.text(40)),
            3 => ClientFrame::Command {
                name: rng.name(),
                args: rng.text(20),
            },
            4 => ClientFrame::Ping { nonce: rng.next() },
            _ => ClientFrame::Bye {
                reason: (rng.below(2) == 0).then(|| rng.text(10)),
            },
        }
    }

    fn random_server_msg(rng: &mut Rng) -> ServerMsg {
        let at = Stamp::new(rng.next() as i64, 23, 59, 59);
        match rng.below(10) {
            8 => ServerMsg::Room {
                room: RoomTag {
                    name: format!("#{}", rng.name()),
                    default: rng.below(2) == 0,
                },
                line: RoomLine::Me {
                    at,
                    from: rng.name(),
                    text: rng.text(40),
                },
            },
            9 => ServerMsg::Room {
                room: RoomTag {
                    name: format!("#{}", rng.name()),
                    default: false,
                },
                line: RoomLine::Left {
                    names: (0..rng.below(4)).map(|_| rng.name()).collect(),
                    more: rng.below(100),
                    how: Departure::Parted,
                    reason: (rng.below(2) == 0).then(|| rng.text(10)),
                },
            },
            0 => ServerMsg::Chat {
                at,
                from: rng.name(),
                text: rng.text(40),
            },
            1 => ServerMsg::Direct {
                at,
                from: rng.name(),
                text: rng.text(40),
            },
            2 => ServerMsg::Event(Event::Left {
                name: rng.name(),
                kind: LeaveKind::Kicked,
                reason: Some(rng.text(10)),
            }),
            3 => ServerMsg::Welcome {
                name: rng.name(),
                others: (0..rng.below(4)).map(|_| rng.name()).collect(),
                more: rng.below(100_000),
            },
            4 => ServerMsg::Pong {
                nonce: rng.next(),
                at,
            },
            5 => ServerMsg::Reject(Reject::UnknownUser { name: rng.name() }),
            6 => ServerMsg::Users {
                users: vec![UserEntry {
                    name: rng.name(),
                    role: Role::User,
                    away: None,
                }],
            },
            _ => ServerMsg::Bye,
        }
    }

    #[test]
    fn every_client_frame_round_trips_and_maps_to_its_message() {
        let cases = [
            (
                ClientFrame::hello("alice"),
                ClientMsg::Hello {
                    name: "alice".into(),
                },
            ),
            (
                ClientFrame::say(7, "h\u{e9}llo \u{1f600}"),
                ClientMsg::Say {
                    text: "h\u{e9}llo \u{1f600}".into(),
                },
            ),
            (
                ClientFrame::dm(8, "bob", "psst"),
                ClientMsg::Command(Command::Dm {
                    to: "bob".into(),
                    text: "psst".into(),
                }),
            ),
            (
                ClientFrame::Command {
                    name: "LIST".into(),
                    args: String::new(),
                },
                ClientMsg::Command(Command::Users),
            ),
            (
                ClientFrame::Ping { nonce: u64::MAX },
                ClientMsg::Ping { nonce: u64::MAX },
            ),
            (
                ClientFrame::Bye {
                    reason: Some("lunch".into()),
                },
                ClientMsg::Command(Command::Quit {
                    reason: Some("lunch".into()),
                }),
            ),
            (
                ClientFrame::Bye { reason: None },
                ClientMsg::Command(Command::Quit { reason: None }),
            ),
        ];
        for (frame, msg) in cases {
            let bytes = encoded(&frame);
            assert_eq!(bytes[0], 0, "{frame:?} starts with 0x00");
            assert_eq!(parse_client(&bytes), Ok(frame.clone()));
            assert_eq!(client_stream(&[&bytes], 1024), vec![Ok(msg)], "{frame:?}");
        }
    }

    /// Which frame type a message becomes; the match has no catch-all, so a new variant must be
    /// given a frame here and in `encode` before this compiles.
    fn frame_type_of(msg: &ServerMsg) -> u8 {
        match msg {
            ServerMsg::Greeting { .. }
            | ServerMsg::AwayChanged { .. }
            | ServerMsg::NamePrompt
            | ServerMsg::PasswordPrompt
            | ServerMsg::Help { .. }
            | ServerMsg::HostHelp
            | ServerMsg::Users { .. }
            | ServerMsg::Done(_)
            | ServerMsg::Away { .. }
            | ServerMsg::WhoAmI { .. }
            | ServerMsg::UserInfo { .. }
            | ServerMsg::Time { .. }
            | ServerMsg::Stats { .. }
            | ServerMsg::Bans { .. }
            | ServerMsg::Notice(_) => match RoomChange::of(msg) {
                Some(_) => frame_type::CURRENT_ROOM,
                None => frame_type::REPLY,
            },
            ServerMsg::Room { line, .. } => match line {
                RoomLine::Chat { .. } | RoomLine::Me { .. } | RoomLine::History { .. } => {
                    frame_type::ROOM_CHAT
                }
                RoomLine::Entered { .. }
                | RoomLine::Left { .. }
                | RoomLine::Removed { .. }
                | RoomLine::Topic { .. }
                | RoomLine::Moderator { .. } => frame_type::ROOM_EVENT,
            },
            ServerMsg::Rooms { .. } => frame_type::ROOMS,
            ServerMsg::Who { .. } => frame_type::WHO,
            ServerMsg::Topic { .. } => frame_type::TOPIC,
            ServerMsg::Welcome { .. } => frame_type::WELCOME,
            ServerMsg::Chat { .. } | ServerMsg::Direct { .. } | ServerMsg::Backlog { .. } => {
                frame_type::CHAT
            }
            ServerMsg::Event(_) | ServerMsg::Kicked { .. } => frame_type::EVENT,
            ServerMsg::Reject(_) => frame_type::ERROR,
            ServerMsg::Bye => frame_type::SERVER_BYE,
            ServerMsg::KeepAlive { .. } => frame_type::SERVER_PING,
            ServerMsg::Pong { .. } => frame_type::PONG,
            ServerMsg::Line { msg, .. } => frame_type_of(msg),
            ServerMsg::Gap { .. } => frame_type::REPLY,
        }
    }

    fn reply(kind: u8, msg: &ServerMsg) -> ServerFrame {
        let mut text = Vec::new();
        text::encode(msg, b"\n", &mut text);
        let lines = String::from_utf8(text)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        ServerFrame::Reply { kind, lines }
    }

    #[test]
    fn every_server_message_becomes_a_frame_that_decodes_to_the_same_content() {
        let at = stamp();
        let users = ServerMsg::Users {
            users: vec![
                UserEntry {
                    name: "alice".into(),
                    role: Role::Admin,
                    away: None,
                },
                UserEntry {
                    name: "bob".into(),
                    role: Role::User,
                    away: Some("lunch".into()),
                },
            ],
        };
        let bad_digest = Reject::BadInput(DecodeError::BadDigest { id: 7 });
        let left = |kind| Event::Left {
            name: "bob".into(),
            kind,
            reason: Some("lunch".into()),
        };
        let cases = vec![
            (
                ServerMsg::NamePrompt,
                ServerFrame::Reply {
                    kind: reply_kind::NAME_PROMPT,
                    lines: vec!["Enter your name:".into()],
                },
            ),
            (
                ServerMsg::Help { admin: false },
                reply(reply_kind::HELP, &ServerMsg::Help { admin: false }),
            ),
            (
                ServerMsg::HostHelp,
                reply(reply_kind::HOST_HELP, &ServerMsg::HostHelp),
            ),
            (
                users.clone(),
                ServerFrame::Reply {
                    kind: reply_kind::USERS,
                    lines: vec!["[*] Online (2): alice (admin), bob (away: lunch)".into()],
                },
            ),
            (
                ServerMsg::Welcome {
                    name: "carol".into(),
                    others: vec!["alice".into(), "bob".into()],
                    more: 70_000,
                },
                ServerFrame::Welcome {
                    name: "carol".into(),
                    others: vec!["alice".into(), "bob".into()],
                    more: 70_000,
                },
            ),
            (
                ServerMsg::Chat {
                    at,
                    from: "bob".into(),
                    text: "hi \u{1f600}".into(),
                },
                ServerFrame::Chat {
                    kind: chat_kind::ROOM,
                    at,
                    from: "bob".into(),
                    text: "hi \u{1f600}".into(),
                    digest_ok: true,
                },
            ),
            (
                ServerMsg::Direct {
                    at,
                    from: "bob".into(),
                    text: "psst".into(),
                },
                ServerFrame::Chat {
                    kind: chat_kind::DIRECT,
                    at,
                    from: "bob".into(),
                    text: "psst".into(),
                    digest_ok: true,
                },
            ),
            (
                ServerMsg::Event(Event::Entered { name: "bob".into() }),
                ServerFrame::Event(Event::Entered { name: "bob".into() }),
            ),
            (
                ServerMsg::Event(left(LeaveKind::Exited)),
                ServerFrame::Event(left(LeaveKind::Exited)),
            ),
            (
                ServerMsg::Event(left(LeaveKind::Kicked)),
                ServerFrame::Event(left(LeaveKind::Kicked)),
            ),
            (
                ServerMsg::Event(Event::Shutdown),
                ServerFrame::Event(Event::Shutdown),
            ),
            (
                ServerMsg::Kicked {
                    by: "Host".into(),
                    reason: None,
                },
                ServerFrame::Kicked {
                    by: "Host".into(),
                    reason: None,
                },
            ),
            (
                ServerMsg::Reject(bad_digest.clone()),
                ServerFrame::Error {
                    code: error_code::BAD_DIGEST,
                    id: 7,
                    text: "digest mismatch in message 7: not relayed".into(),
                },
            ),
            (
                ServerMsg::Reject(Reject::NameTaken),
                ServerFrame::Error {
                    code: error_code::NAME_TAKEN,
                    id: 0,
                    text: Reject::NameTaken.to_string(),
                },
            ),
            (
                ServerMsg::Reject(Reject::Degraded),
                ServerFrame::Error {
                    code: error_code::DEGRADED,
                    id: 0,
                    text: Reject::Degraded.to_string(),
                },
            ),
            (
                ServerMsg::Notice(Notice::ClusterDegraded),
                ServerFrame::Reply {
                    kind: reply_kind::NOTICE,
                    lines: vec!["[!] The chat is degraded: the servers cannot reach each other, so what you send is refused until it is whole again.".into()],
                },
            ),
            (
                ServerMsg::Notice(Notice::ClusterRestored),
                ServerFrame::Reply {
                    kind: reply_kind::NOTICE,
                    lines: vec!["[*] The chat is whole again.".into()],
                },
            ),
            (ServerMsg::Bye, ServerFrame::Bye),
            (
                ServerMsg::Pong { nonce: 9, at },
                ServerFrame::Pong { nonce: 9, at },
            ),
        ];
        let mut types_seen = Vec::new();
        for (msg, frame) in cases {
            let bytes = encoded_msg(&msg);
            assert_eq!(bytes[HEADER_LEN], frame_type_of(&msg), "{msg:?}");
            types_seen.push(frame_type_of(&msg));
            assert_eq!(server_stream(&[&bytes]), vec![Ok(frame)], "{msg:?}");
        }
        types_seen.sort_unstable();
        types_seen.dedup();
        assert_eq!(types_seen.len(), 7, "every server frame type is exercised");
        let help = server_stream(&[&encoded_msg(&ServerMsg::Help { admin: false })]);
        let [Ok(ServerFrame::Reply { lines, .. })] = &help[..] else {
            panic!("{help:?}")
        };
        let user_commands = crate::proto::msg::COMMANDS
            .iter()
            .filter(|c| !c.admin)
            .count();
        assert_eq!(lines.len(), user_commands + 1, "a line each");
    }

    /// The room frames PROTOCOL.md shows, by example name.
    fn room_examples() -> Vec<(&'static str, ServerMsg)> {
        let dev = RoomTag {
            name: "#dev".into(),
            default: false,
        };
        vec![
            (
                "room chat",
                ServerMsg::Room {
                    room: dev.clone(),
                    line: RoomLine::Chat {
                        at: stamp(),
                        from: "bob".into(),
                        text: "hi".into(),
                    },
                },
            ),
            (
                "room event",
                ServerMsg::Room {
                    room: dev.clone(),
                    line: RoomLine::Left {
                        names: vec!["bob".into()],
                        more: 0,
                        how: Departure::Parted,
                        reason: Some("lunch".into()),
                    },
                },
            ),
            (
                "rooms",
                ServerMsg::Rooms {
                    rooms: vec![RoomEntry {
                        name: "#dev".into(),
                        members: 2,
                        topic: Some("Rust".into()),
                        persistent: false,
                    }],
                },
            ),
            (
                "who",
                ServerMsg::Who {
                    room: "#dev".into(),
                    members: vec![
                        MemberEntry {
                            name: "alice".into(),
                            moderator: true,
                            away: None,
                        },
                        MemberEntry {
                            name: "bob".into(),
                            moderator: false,
                            away: Some("lunch".into()),
                        },
                    ],
                },
            ),
            (
                "topic",
                ServerMsg::Topic {
                    room: "#dev".into(),
                    topic: Some(TopicEntry {
                        text: "Rust".into(),
                        by: "alice".into(),
                        at: stamp(),
                    }),
                },
            ),
            (
                "current room",
                ServerMsg::Done(Done::JoinedRoom {
                    room: dev,
                    members: 2,
                    created: false,
                }),
            ),
        ]
    }

    /// One of each room message, every kind of line and change included.
    fn room_messages() -> Vec<ServerMsg> {
        let at = stamp();
        let dev = RoomTag {
            name: "#dev".into(),
            default: false,
        };
        let lobby = RoomTag {
            name: "#lobby".into(),
            default: true,
        };
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let lines = vec![
            RoomLine::Chat {
                at,
                from: "bob".into(),
                text: "hi \u{1f600}".into(),
            },
            RoomLine::Me {
                at,
                from: "bob".into(),
                text: "waves".into(),
            },
            RoomLine::History {
                at,
                from: "bob".into(),
                text: "earlier".into(),
                me: false,
            },
            RoomLine::History {
                at,
                from: "bob".into(),
                text: "yawns".into(),
                me: true,
            },
            RoomLine::Entered {
                names: names(&["bob"]),
                more: 0,
            },
            RoomLine::Entered {
                names: names(&["a", "b", "c"]),
                more: 38,
            },
            RoomLine::Left {
                names: names(&["bob"]),
                more: 0,
                how: Departure::Parted,
                reason: Some("lunch".into()),
            },
            RoomLine::Left {
                names: names(&["bob"]),
                more: 0,
                how: Departure::Exited,
                reason: None,
            },
            RoomLine::Left {
                names: vec![],
                more: 120,
                how: Departure::Kicked,
                reason: None,
            },
            RoomLine::Removed {
                name: "eve".into(),
                by: "alice".into(),
                reason: Some("spam".into()),
            },
            RoomLine::Topic {
                text: "Rust talk".into(),
                by: "alice".into(),
            },
            RoomLine::Moderator {
                name: "bob".into(),
                by: "alice".into(),
            },
        ];
        let mut msgs: Vec<ServerMsg> = lines
            .into_iter()
            .flat_map(|line| {
                [
                    ServerMsg::Room {
                        room: dev.clone(),
                        line: line.clone(),
                    },
                    ServerMsg::Room {
                        room: lobby.clone(),
                        line,
                    },
                ]
            })
            .collect();
        let plus_one = time::UtcOffset::from_hms(1, 0, 0).unwrap();
        msgs.extend([
            ServerMsg::Rooms {
                rooms: vec![
                    RoomEntry {
                        name: "#dev".into(),
                        members: 1,
                        topic: Some("Rust talk".into()),
                        persistent: false,
                    },
                    RoomEntry {
                        name: "#ops".into(),
                        members: 0,
                        topic: None,
                        persistent: true,
                    },
                ],
            },
            ServerMsg::Rooms { rooms: vec![] },
            ServerMsg::Who {
                room: "#dev".into(),
                members: vec![
                    MemberEntry {
                        name: "alice".into(),
                        moderator: true,
                        away: None,
                    },
                    MemberEntry {
                        name: "bob".into(),
                        moderator: false,
                        away: Some(String::new()),
                    },
                    MemberEntry {
                        name: "carol".into(),
                        moderator: true,
                        away: Some("lunch".into()),
                    },
                ],
            },
            ServerMsg::Topic {
                room: "#dev".into(),
                topic: None,
            },
            ServerMsg::Topic {
                room: "#dev".into(),
                topic: Some(TopicEntry {
                    text: "Rust talk".into(),
                    by: "alice".into(),
                    at: Stamp::local(1_700_000_000, plus_one),
                }),
            },
            ServerMsg::Topic {
                room: "#dev".into(),
                topic: Some(TopicEntry {
                    text: "west".into(),
                    by: "alice".into(),
                    at: Stamp::local(
                        1_700_000_000,
                        time::UtcOffset::from_hms(-9, -30, 0).unwrap(),
                    ),
                }),
            },
            ServerMsg::Done(Done::JoinedRoom {
                room: dev.clone(),
                members: 3,
                created: false,
            }),
            ServerMsg::Done(Done::JoinedRoom {
                room: dev.clone(),
                members: 1,
                created: true,
            }),
            ServerMsg::Done(Done::SwitchedRoom { room: lobby }),
            ServerMsg::Done(Done::SwitchedRoom { room: dev }),
            ServerMsg::Done(Done::PartedRoom {
                room: "#dev".into(),
                current: "#lobby".into(),
            }),
            ServerMsg::Notice(Notice::RemovedFromRoom {
                room: "#dev".into(),
                by: "alice".into(),
                reason: Some("spam".into()),
                current: "#ops".into(),
            }),
            ServerMsg::Notice(Notice::RemovedFromRoom {
                room: "#dev".into(),
                by: "alice".into(),
                reason: None,
                current: "#lobby".into(),
            }),
        ]);
        msgs
    }

    #[test]
    fn every_room_message_gets_its_own_frame_and_decodes_to_the_same_message() {
        let mut types_seen = Vec::new();
        for msg in room_messages() {
            let bytes = encoded_msg(&msg);
            let code = bytes[HEADER_LEN];
            assert_eq!(code, frame_type_of(&msg), "{msg:?}");
            assert_ne!(code, frame_type::REPLY, "{msg:?} has a frame of its own");
            types_seen.push(code);
            let frames = server_stream(&[&bytes]);
            let [Ok(frame)] = &frames[..] else {
                panic!("{msg:?}: {frames:?}")
            };
            assert_eq!(frame.to_msg().as_ref(), Some(&msg), "{msg:?}");
            if let ServerFrame::Room { digest_ok, .. } = frame {
                assert!(digest_ok, "{msg:?}");
            }
            let mut as_text = Vec::new();
            text::encode(&frame.to_msg().unwrap(), b"\n", &mut as_text);
            let mut expected = Vec::new();
            text::encode(&msg, b"\n", &mut expected);
            assert_eq!(as_text, expected, "a client shows what text mode shows");
        }
        types_seen.sort_unstable();
        types_seen.dedup();
        assert_eq!(
            types_seen,
            vec![
                frame_type::ROOM_CHAT,
                frame_type::ROOM_EVENT,
                frame_type::ROOMS,
                frame_type::WHO,
                frame_type::TOPIC,
                frame_type::CURRENT_ROOM,
            ]
        );
        // Other confirmations and notices stay replies.
        for msg in [
            ServerMsg::Done(Done::RoomCreated {
                room: "#ops".into(),
            }),
            ServerMsg::Done(Done::Away),
            ServerMsg::Notice(Notice::Replaced),
        ] {
            assert_eq!(encoded_msg(&msg)[HEADER_LEN], frame_type::REPLY, "{msg:?}");
        }
    }

    #[test]
    fn a_room_chat_frame_with_a_changed_text_is_flagged_and_bad_room_frames_are_malformed() {
        let msg = ServerMsg::Room {
            room: RoomTag {
                name: "#dev".into(),
                default: false,
            },
            line: RoomLine::Chat {
                at: stamp(),
                from: "bob".into(),
                text: "hi".into(),
            },
        };
        let bytes = encoded_msg(&msg);
        let text_at = bytes.len() - DIGEST_LEN - 2;
        assert_eq!(&bytes[text_at..text_at + 2], b"hi");
        let mut flipped = bytes.clone();
        flipped[text_at] = b'H';
        assert!(matches!(
            server_stream(&[&flipped])[..],
            [Ok(ServerFrame::Room {
                digest_ok: false,
                ..
            })]
        ));
        let kind_at = HEADER_LEN + 1 + 2 + 4 + 1;
        let mut bad_kind = bytes.clone();
        bad_kind[kind_at] = 9;
        assert_eq!(
            server_stream(&[&bad_kind]),
            vec![Err(DecodeError::Malformed {
                code: frame_type::ROOM_CHAT
            })]
        );
        // A count of members running past the body: refused before anything is allocated.
        let mut who = 4u16.to_be_bytes().to_vec();
        who.extend_from_slice(b"#dev");
        who.extend_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(
            server_stream(&[&raw_frame(frame_type::WHO, &who)]),
            vec![Err(DecodeError::Malformed {
                code: frame_type::WHO
            })]
        );
        let removed_two = encoded_msg(&ServerMsg::Room {
            room: RoomTag {
                name: "#dev".into(),
                default: false,
            },
            line: RoomLine::Entered {
                names: vec!["a".into(), "b".into()],
                more: 0,
            },
        });
        let mut removed_two = removed_two.clone();
        removed_two[HEADER_LEN + 1 + 2 + 4 + 1] = room_event_kind::REMOVED;
        assert_eq!(
            server_stream(&[&removed_two]),
            vec![Err(DecodeError::Malformed {
                code: frame_type::ROOM_EVENT
            })],
            "a removal names one user"
        );
    }

    #[test]
    fn a_random_client_stream_split_anywhere_decodes_to_the_same_messages() {
        let mut rng = Rng(0x5eed_0003);
        let frames: Vec<ClientFrame> = (0..30).map(|_| random_client_frame(&mut rng)).collect();
        let mut stream = Vec::new();
        for frame in &frames {
            frame.encode(&mut stream);
        }
        let expected: Vec<Result<ClientMsg, DecodeError>> = frames
            .iter()
            .map(|frame| Ok(ClientMsg::from(frame.clone())))
            .collect();
        assert_eq!(client_stream(&[&stream], 1024), expected);
        for split in 0..=stream.len() {
            let (head, tail) = stream.split_at(split);
            assert_eq!(
                client_stream(&[head, tail], 1024),
                expected,
                "split at {split}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(client_stream(&bytes, 1024), expected, "a byte at a time");
    }

    #[test]
    fn a_framed_client_is_sent_no_greeting() {
        let mut out = Vec::new();
        encode(&ServerMsg::Greeting { online: 3 }, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_random_server_stream_after_the_greeting_split_anywhere_decodes_to_the_same_frames() {
        let mut rng = Rng(0x5eed_0004);
        let msgs: Vec<ServerMsg> = (0..30).map(|_| random_server_msg(&mut rng)).collect();
        let mut stream = Vec::new();
        text::encode(
            &ServerMsg::Greeting { online: 3 },
            text::CLIENT_EOL,
            &mut stream,
        );
        let mut expected = Vec::new();
        for msg in &msgs {
            let bytes = encoded_msg(msg);
            expected.extend(server_stream(&[&bytes]));
            stream.extend_from_slice(&bytes);
        }
        assert_eq!(expected.len(), msgs.len());
        assert!(expected.iter().all(Result::is_ok), "{expected:?}");
        assert_eq!(server_stream(&[&stream]), expected);
        for split in 0..=stream.len() {
            let (head, tail) = stream.split_at(split);
            assert_eq!(server_stream(&[head, tail]), expected, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(server_stream(&bytes), expected, "a byte at a time");
    }

    #[test]
    fn each_malformed_client_frame_gets_its_error() {
        let mut short_say = 7u32.to_be_bytes().to_vec();
        short_say.extend_from_slice(&[0, 2, b'h', b'i', 1, 2, 3]);
        let mut bad_hello_string = PROTOCOL_VERSION.to_be_bytes().to_vec();
        bad_hello_string.extend_from_slice(&[0, 10, b'a', b'b', b'c']);
        let mut v3_hello = 3u16.to_be_bytes().to_vec();
        v3_hello.extend_from_slice(b"anything at all, in a layout v2 does not know");
        let mut v1_hello = 1u16.to_be_bytes().to_vec();
        v1_hello.extend_from_slice(&[0, 5, b'a', b'l', b'i', b'c', b'e']);
        let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
            (
                "length over the limit, refused on the header alone",
                vec![0, 0, 4, 1],
                DecodeError::FrameTooLong {
                    len: 1025,
                    max: 1024,
                },
            ),
            (
                "the largest length there is",
                vec![0xff; 4],
                DecodeError::FrameTooLong {
                    len: u32::MAX,
                    max: 1024,
                },
            ),
            (
                "a zero length",
                vec![0; 4],
                DecodeError::Malformed { code: 0 },
            ),
            (
                "an unknown type",
                raw_frame(0x7f, b""),
                DecodeError::UnknownType { code: 0x7f },
            ),
            (
                "a server type sent by a client",
                encoded_msg(&ServerMsg::Bye),
                DecodeError::UnknownType {
                    code: frame_type::SERVER_BYE,
                },
            ),
            (
                "a body cut short",
                raw_frame(frame_type::SAY, &short_say),
                DecodeError::Malformed {
                    code: frame_type::SAY,
                },
            ),
            (
                "bytes left over",
                raw_frame(frame_type::PING, &[0; 9]),
                DecodeError::Malformed {
                    code: frame_type::PING,
                },
            ),
            (
                "a string running past the body",
                raw_frame(frame_type::HELLO, &bad_hello_string),
                DecodeError::Malformed {
                    code: frame_type::HELLO,
                },
            ),
            (
                "a later protocol version",
                raw_frame(frame_type::HELLO, &v3_hello),
                DecodeError::BadVersion { version: 3 },
            ),
            (
                "the version before rooms, as an old client sends it",
                raw_frame(frame_type::HELLO, &v1_hello),
                DecodeError::BadVersion { version: 1 },
            ),
        ];
        for (what, bytes, error) in cases {
            assert!(error.is_fatal(), "{what}");
            let mut after = bytes.clone();
            after.extend_from_slice(&encoded(&ClientFrame::Ping { nonce: 1 }));
            assert_eq!(
                client_stream(&[&after], 1024),
                vec![Err(error)],
                "{what}: the error, then nothing more is read"
            );
        }
    }

    #[test]
    fn a_digest_mismatch_names_the_message_and_the_stream_goes_on() {
        let ClientFrame::Say { digest, .. } = ClientFrame::say(1, "hello") else {
            unreachable!()
        };
        let tampered = ClientFrame::Say {
            id: 42,
            text: "hellO".into(),
            digest,
        };
        let mut stream = encoded(&tampered);
        ClientFrame::say(43, "fine").encode(&mut stream);
        let error = DecodeError::BadDigest { id: 42 };
        assert!(!error.is_fatal());
        assert_eq!(
            client_stream(&[&stream], 1024),
            vec![
                Err(error),
                Ok(ClientMsg::Say {
                    text: "fine".into()
                })
            ]
        );
        let ClientFrame::Dm { digest, .. } = ClientFrame::dm(5, "bob", "one") else {
            unreachable!()
        };
        let tampered = ClientFrame::Dm {
            id: 5,
            to: "bob".into(),
            text: "two".into(),
            digest,
        };
        assert_eq!(
            client_stream(&[&encoded(&tampered)], 1024),
            vec![Err(DecodeError::BadDigest { id: 5 })]
        );
    }

    #[test]
    fn the_digest_covers_the_bytes_as_sent_and_the_text_is_sanitized_after() {
        let raw = b"a\x1b[2Jb";
        let mut body = 9u32.to_be_bytes().to_vec();
        body.extend_from_slice(&(raw.len() as u16).to_be_bytes());
        body.extend_from_slice(raw);
        body.extend_from_slice(&digest(raw));
        assert_eq!(
            client_stream(&[&raw_frame(frame_type::SAY, &body)], 1024),
            vec![Ok(ClientMsg::Say {
                text: "a\u{FFFD}[2Jb".into()
            })]
        );
    }

    #[test]
    fn a_frame_at_the_limit_passes_and_one_byte_more_does_not() {
        let frame = ClientFrame::say(1, &"x".repeat(100));
        let bytes = encoded(&frame);
        let len = bytes.len() - HEADER_LEN;
        assert!(client_stream(&[&bytes], len)[0].is_ok());
        assert_eq!(
            client_stream(&[&bytes], len - 1),
            vec![Err(DecodeError::FrameTooLong {
                len: len as u32,
                max: len as u32 - 1
            })]
        );
    }

    #[test]
    fn a_chat_frame_read_in_place_gives_its_length_text_and_digest() {
        let chat = encoded_msg(&ServerMsg::Chat {
            at: stamp(),
            from: "bob".into(),
            text: "hi \u{1f600}".into(),
        });
        let mut two = chat.clone();
        two.extend_from_slice(&chat);
        let text = "hi \u{1f600}".as_bytes();
        let expected = Some(ChatPeek {
            len: chat.len(),
            text,
            digest: digest(text),
        });
        assert_eq!(peek_chat(&two), expected);
        assert_eq!(peek_chat(&two[chat.len()..]), expected);
        for len in 0..chat.len() {
            assert_eq!(peek_chat(&chat[..len]), None, "{len} bytes");
        }
        let event = encoded_msg(&ServerMsg::Event(Event::Shutdown));
        assert_eq!(peek_chat(&event), None);
        let in_room = encoded_msg(&ServerMsg::Room {
            room: RoomTag {
                name: "#dev".into(),
                default: false,
            },
            line: RoomLine::Me {
                at: stamp(),
                from: "bob".into(),
                text: "hi \u{1f600}".into(),
            },
        });
        assert_eq!(
            peek_chat(&in_room),
            Some(ChatPeek {
                len: in_room.len(),
                text,
                digest: digest(text),
            }),
            "a room's line is a delivery too"
        );
        let mut bad_kind = chat.clone();
        bad_kind[HEADER_LEN + 1] = 9;
        assert_eq!(peek_chat(&bad_kind), None);
    }

    #[test]
    fn malformed_server_frames_get_their_error_and_a_bad_digest_is_flagged() {
        let mut chat = encoded_msg(&ServerMsg::Chat {
            at: stamp(),
            from: "bob".into(),
            text: "hi".into(),
        });
        let kind_at = HEADER_LEN + 1;
        let text_at = kind_at + 1 + 16 + 5 + 2;
        assert_eq!(&chat[text_at..text_at + 2], b"hi");
        let mut flipped = chat.clone();
        flipped[text_at] = b'H';
        assert!(matches!(
            server_stream(&[&flipped])[..],
            [Ok(ServerFrame::Chat {
                digest_ok: false,
                ..
            })]
        ));
        let mut bad_time = chat.clone();
        bad_time[kind_at + 1 + 8] = b'3'; // "32:13:20"
        chat[kind_at] = 9;
        let mut bad_event = encoded_msg(&ServerMsg::Event(Event::Shutdown));
        bad_event[kind_at] = 99;
        for bytes in [chat, bad_time] {
            assert_eq!(
                server_stream(&[&bytes]),
                vec![Err(DecodeError::Malformed {
                    code: frame_type::CHAT
                })]
            );
        }
        assert_eq!(
            server_stream(&[&bad_event]),
            vec![Err(DecodeError::Malformed {
                code: frame_type::EVENT
            })]
        );
        assert_eq!(
            server_stream(&[&encoded(&ClientFrame::Ping { nonce: 1 })]),
            vec![Err(DecodeError::UnknownType {
                code: frame_type::PING
            })]
        );
    }

    #[test]
    fn random_bytes_never_panic_either_decoder() {
        let mut rng = Rng(0x5eed_0005);
        for round in 0..2000 {
            let len = rng.below(64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if round % 2 == 0 && len > HEADER_LEN {
                // A plausible header, so bodies get parsed rather than refused on length.
                bytes[..4].copy_from_slice(&((len - 4) as u32).to_be_bytes());
                bytes[4] = [
                    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
                ][rng.below(13)];
            }
            let split = rng.below(bytes.len() + 1);
            let (head, tail) = bytes.split_at(split);
            let mut decoder = Decoder::new(Limits::default());
            let items = feed(|input| decoder.decode(input), &[head, tail]);
            assert!(items.len() <= bytes.len() + 1);
            let items = server_stream(&[head, tail]);
            assert!(items.len() <= bytes.len() + 1);
        }
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_its_digest_still_matches() {
        let text = format!("{}\u{1f600}tail", "x".repeat(MAX_STRING - 2));
        assert_eq!(fit(&text).len(), MAX_STRING - 2);
        let frame = ClientFrame::say(1, &text);
        let bytes = encoded(&frame);
        assert_eq!(
            client_stream(&[&bytes], MAX_FRAME_CAP),
            vec![Ok(ClientMsg::Say {
                text: "x".repeat(MAX_STRING - 2)
            })]
        );
        let chat = encoded_msg(&ServerMsg::Chat {
            at: stamp(),
            from: "bob".into(),
            text,
        });
        assert!(matches!(
            server_stream(&[&chat])[..],
            [Ok(ServerFrame::Chat {
                digest_ok: true,
                ..
            })]
        ));
    }

    #[test]
    fn room_lines_reach_framed_clients_as_room_frames_and_refusals_as_room_errors() {
        use crate::proto::msg::{RoomLine, RoomTag};
        let line = ServerMsg::Room {
            room: RoomTag {
                name: "#dev".into(),
                default: false,
            },
            line: RoomLine::Chat {
                at: stamp(),
                from: "alice".into(),
                text: "hi".into(),
            },
        };
        let frames = server_stream(&[&encoded_msg(&line)]);
        let [Ok(
            frame @ ServerFrame::Room {
                digest_ok: true, ..
            },
        )] = &frames[..]
        else {
            panic!("{frames:?}");
        };
        assert_eq!(frame.to_msg(), Some(line));
        let refused = Reject::NotModerator {
            room: "#dev".into(),
        };
        assert_eq!(
            server_stream(&[&encoded_msg(&ServerMsg::Reject(refused.clone()))]),
            vec![Ok(ServerFrame::Error {
                code: error_code::NOT_MODERATOR,
                id: 0,
                text: refused.to_string(),
            })]
        );
    }

    /// The hex examples in PROTOCOL.md, by name: each is a fenced block whose first line is
    /// `# frame: NAME`, then hex bytes with `#` comments.
    fn protocol_examples() -> Vec<(String, Vec<u8>)> {
        let doc = include_str!("../../PROTOCOL.md");
        let mut examples = Vec::new();
        let mut current: Option<(String, Vec<u8>)> = None;
        for line in doc.lines() {
            if let Some(name) = line.strip_prefix("# frame: ") {
                current = Some((name.to_owned(), Vec::new()));
            } else if line.starts_with("```") {
                examples.extend(current.take());
            } else if let Some((_, bytes)) = &mut current {
                let hex = line.split('#').next().unwrap_or("");
                for byte in hex.split_whitespace() {
                    bytes.push(u8::from_str_radix(byte, 16).expect("hex byte"));
                }
            }
        }
        examples
    }

    #[test]
    fn the_protocol_examples_are_what_the_codec_writes_and_reads() {
        let examples = protocol_examples();
        let example = |name: &str| -> Vec<u8> {
            let found = examples.iter().find(|(n, _)| n == name);
            found
                .unwrap_or_else(|| panic!("no example {name}"))
                .1
                .clone()
        };
        let client = [
            ("hello", ClientFrame::hello("alice")),
            ("say", ClientFrame::say(7, "hi")),
            ("dm", ClientFrame::dm(8, "bob", "psst")),
            (
                "command",
                ClientFrame::Command {
                    name: "bm".into(),
                    args: "hi all".into(),
                },
            ),
            ("ping", ClientFrame::Ping { nonce: 1 }),
            (
                "bye",
                ClientFrame::Bye {
                    reason: Some("lunch".into()),
                },
            ),
        ];
        for (name, frame) in &client {
            assert_eq!(&encoded(frame), &example(name), "{name}");
            assert_eq!(parse_client(&example(name)).as_ref(), Ok(frame), "{name}");
        }
        let at = stamp();
        let server = [
            (
                "welcome",
                ServerMsg::Welcome {
                    name: "alice".into(),
                    others: vec!["bob".into()],
                    more: 2,
                },
            ),
            (
                "chat",
                ServerMsg::Chat {
                    at,
                    from: "bob".into(),
                    text: "hi".into(),
                },
            ),
            (
                "event",
                ServerMsg::Event(Event::Left {
                    name: "bob".into(),
                    kind: LeaveKind::Exited,
                    reason: Some("lunch".into()),
                }),
            ),
            (
                "reply",
                ServerMsg::Users {
                    users: vec![
                        UserEntry {
                            name: "alice".into(),
                            role: Role::User,
                            away: None,
                        },
                        UserEntry {
                            name: "bob".into(),
                            role: Role::User,
                            away: None,
                        },
                    ],
                },
            ),
            (
                "error",
                ServerMsg::Reject(Reject::BadInput(DecodeError::BadDigest { id: 7 })),
            ),
            ("pong", ServerMsg::Pong { nonce: 1, at }),
            ("server bye", ServerMsg::Bye),
        ];
        let rooms = room_examples();
        for (name, msg) in &rooms {
            assert_eq!(&encoded_msg(msg), &example(name), "{name}");
            let frames = server_stream(&[&example(name)]);
            let [Ok(frame)] = &frames[..] else {
                panic!("{name}: {frames:?}")
            };
            assert_eq!(frame.to_msg().as_ref(), Some(msg), "{name}");
        }
        for (name, msg) in &server {
            assert_eq!(&encoded_msg(msg), &example(name), "{name}");
            assert!(
                matches!(server_stream(&[&example(name)])[..], [Ok(_)]),
                "{name}"
            );
        }
        assert_eq!(
            examples.len(),
            client.len() + server.len() + rooms.len(),
            "one example per frame type, each checked here"
        );
    }
}
