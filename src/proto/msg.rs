//! The typed vocabulary both wire modes map to and from.
//!
//! The core reads [`ClientMsg`] and writes [`ServerMsg`]; the codecs turn bytes into the first and the
//! second into bytes. Nothing here knows about sockets or about how a mode lays out its bytes.

use std::fmt;

use time::{OffsetDateTime, UtcOffset};

/// What a user may do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Role {
    /// May chat.
    User,
    /// May also kick, ban, unban and grant roles.
    Admin,
}

impl Role {
    /// The role's name in files and commands.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses `admin` or `user` (any case), or `1`/`0` as the seeds' `/changegrant` did.
    pub fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_lowercase().as_str() {
            "admin" | "1" => Some(Role::Admin),
            "user" | "0" => Some(Role::User),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most names a welcome lists; the count of the others follows them.
pub const WELCOME_NAMES: usize = 20;

/// A wall-clock second as the server shows it: the Unix time, its local `HH:MM:SS` text, and the
/// local offset from UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    hms: [u8; 8],
    offset: UtcOffset,
}

impl Stamp {
    /// The stamp of `unix` in the local offset `offset`.
    pub fn local(unix: i64, offset: UtcOffset) -> Stamp {
        let local = OffsetDateTime::from_unix_timestamp(unix)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset);
        Stamp {
            offset,
            ..Stamp::new(unix, local.hour(), local.minute(), local.second())
        }
    }

    /// The same instant as a date and time in the local offset.
    pub fn to_local(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.unix)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(self.offset)
    }

    /// Another Unix time shown in this stamp's offset.
    pub fn with_unix(&self, unix: i64) -> Stamp {
        Stamp::local(unix, self.offset)
    }

    /// A stamp for `unix` shown as `hour:minute:second`, in UTC.
    pub fn new(unix: i64, hour: u8, minute: u8, second: u8) -> Stamp {
        let digit = |n: u8| b'0' + n % 10;
        let hms = [
            digit(hour / 10),
            digit(hour),
            b':',
            digit(minute / 10),
            digit(minute),
            b':',
            digit(second / 10),
            digit(second),
        ];
        Stamp {
            unix,
            hms,
            offset: UtcOffset::UTC,
        }
    }

    /// The local time as `HH:MM:SS`.
    pub fn hms(&self) -> &str {
        // Built only from ASCII digits and colons in `new`.
        std::str::from_utf8(&self.hms).unwrap_or("??:??:??")
    }
}

/// What a client asks for, whatever its wire mode.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClientMsg {
    /// A plain line: chat text once joined; before that, in text mode, the name the client wants.
    Say {
        /// The text, already free of control characters.
        text: String,
    },
    /// The framed handshake: the name the client wants (the codec has checked the version).
    Hello {
        /// The requested name.
        name: String,
    },
    /// A slash command (text mode) or a command frame (framed mode).
    Command(Command),
    /// A registered name and its password in one step (an IRC client's `PASS` or SASL): the
    /// name's password is checked, with no prompt; a name with no account is refused
    /// ([`Reject::NotRegistered`]) rather than joined as a guest.
    Login {
        /// The name.
        name: String,
        /// Its password.
        password: String,
    },
    /// A liveness probe; the server answers [`ServerMsg::Pong`] with the same nonce.
    Ping {
        /// Opaque value echoed back.
        nonce: u64,
    },
    /// The answer to a [`ServerMsg::KeepAlive`]; it only shows the client is alive.
    Pong {
        /// The nonce of the keepalive.
        nonce: u64,
    },
    /// Per room, the last line the client has (the web page after a reconnect): the next time
    /// this connection joins each room (the default room when its name is accepted), it is
    /// sent the lines after that one instead of the usual history, or told of a gap.
    Resume {
        /// Room name as typed (`""` is the default room), and the last line's id (`None`: an
        /// id the codec could not read, treated as one from another run of the server).
        rooms: Vec<(String, Option<LineId>)>,
    },
}

/// The id of a room's chat line: unique across rooms and runs of the server. `epoch` is drawn
/// once per run of the server, `room` is the room's id in that run (never reused), `seq` counts
/// the room's lines from 1. Written `EPOCH-ROOM-SEQ` (hex, decimal, decimal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LineId {
    /// The run of the server.
    pub epoch: u64,
    /// The room, in that run.
    pub room: u32,
    /// The line's number in the room, from 1.
    pub seq: u64,
}

impl LineId {
    /// Reads an id as [`fmt::Display`] writes it.
    pub fn parse(text: &str) -> Option<LineId> {
        let mut parts = text.split('-');
        let epoch = u64::from_str_radix(parts.next()?, 16).ok()?;
        let room = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        parts
            .next()
            .is_none()
            .then_some(LineId { epoch, room, seq })
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}-{}", self.epoch, self.room, self.seq)
    }
}

/// Which of a room's lines a look-up asks for, counted from points `P` (IRC's CHATHISTORY
/// subcommands): at most a limit of them, always oldest first. Every point is exclusive but
/// [`Span::Around`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Span<P> {
    /// The newest lines, only those after the point if one is given.
    Latest(Option<P>),
    /// The newest lines before the point.
    Before(P),
    /// The oldest lines after the point.
    After(P),
    /// Up to half the limit before the point, the rest from the point on (a line at the point
    /// included).
    Around(P),
    /// The lines between the two points: the oldest after the first when it is the earlier one,
    /// else the newest before it.
    Between(P, P),
}

impl<P> Span<P> {
    /// The same span with each point turned into another kind, or `None` if one cannot be.
    pub fn try_map<Q>(self, mut f: impl FnMut(P) -> Option<Q>) -> Option<Span<Q>> {
        Some(match self {
            Span::Latest(p) => Span::Latest(match p {
                Some(p) => Some(f(p)?),
                None => None,
            }),
            Span::Before(p) => Span::Before(f(p)?),
            Span::After(p) => Span::After(f(p)?),
            Span::Around(p) => Span::Around(f(p)?),
            Span::Between(a, b) => Span::Between(f(a)?, f(b)?),
        })
    }
}

/// A place in a room's lines as a client names it (IRC's `msgid=` and `timestamp=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HistoryRef {
    /// The line with this id (a line of another run or room is no place in this one).
    Id(LineId),
    /// This time, in Unix milliseconds.
    Millis(i64),
}

/// A command a user can give, parsed by [`Command::parse`] from a name and its argument text.
///
/// Serialized (for a cluster's log): every variant but [`Command::BadUsage`], whose usage line
/// is a `&'static str` (the core answers it where it was typed and never shares it). It comes
/// last: serde numbers a skipped variant when it writes but not when it reads, so one before a
/// shared variant would shift the meaning of every variant after it in the log's binary form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// List the commands.
    Help,
    /// List the users online.
    Users,
    /// Leave the room.
    Quit {
        /// Why, if the user said.
        reason: Option<String>,
    },
    /// Say text to everyone, exactly like a plain line.
    Broadcast {
        /// The text to say.
        text: String,
    },
    /// Mark oneself away, with an optional reason.
    Away {
        /// Why, if given.
        reason: Option<String>,
    },
    /// Mark oneself back.
    Back,
    /// Show one's own name and role.
    WhoAmI,
    /// Show who a user online is: role, account, rooms, away.
    Whois {
        /// The user's name.
        name: String,
    },
    /// Show the server's date, time and UTC offset.
    Time,
    /// Ask the server for a pong with its time.
    Ping,
    /// Show messages relayed, users online and uptime.
    Stats,
    /// Register one's current (guest) name with a password.
    Register {
        /// The password.
        password: String,
    },
    /// `/passwd` alone: change one's password, asked for step by step (so it may hold spaces).
    PasswdAsk,
    /// Change one's password, both given on the command line (one word each).
    Passwd {
        /// The current password.
        old: String,
        /// The new password.
        new: String,
    },
    /// Moderate (admins only).
    Moderate(Moderation),
    /// Rooms: join, switch, leave, list, topic, actions, room moderation.
    Room(RoomCommand),
    /// Show older lines of a room than those shown so far (`/history [#ROOM] [N]`).
    History {
        /// The room, if named (else the current room).
        room: Option<String>,
        /// How many lines, if given.
        count: Option<usize>,
    },
    /// IRC's CHATHISTORY: up to `limit` lines of `room` in `span`, oldest first, with their ids
    /// (no other mode asks this way).
    ChatHistory {
        /// The room.
        room: String,
        /// Which lines.
        span: Span<HistoryRef>,
        /// At most this many.
        limit: usize,
    },
    /// Say text to one user only.
    Dm {
        /// The recipient's name.
        to: String,
        /// What to say.
        text: String,
    },
    /// Run `command` in `room`, one the user is in, as if it were the current room; the current
    /// room stays as it is (an IRC client names the channel of every message).
    In {
        /// The room's name, as typed.
        room: String,
        /// What to do there: a line (`Broadcast`) or a room command.
        command: Box<Command>,
    },
    /// A name that is no command.
    Unknown {
        /// The name as given, without the slash.
        name: String,
    },
    #[serde(skip)]
    /// A known command given with the wrong arguments.
    BadUsage {
        /// The command's usage line, e.g. `/bm TEXT`.
        #[serde(skip)]
        usage: &'static str,
    },
}

/// One entry of the command table: what `/help` shows and what [`Command::parse`] accepts.
#[derive(Debug)]
pub struct CommandSpec {
    /// The main name, without the slash.
    pub name: &'static str,
    /// Other names for the same command.
    pub aliases: &'static [&'static str],
    /// The usage line shown by `/help` and in usage errors.
    pub usage: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Whether only admins may use it.
    pub admin: bool,
}

/// Every user command, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    spec("help", &[], "/help", "list the commands you may use", false),
    spec(
        "users",
        &["list", "viewusers"],
        "/users",
        "list the users online",
        false,
    ),
    spec(
        "dm",
        &["msg", "messageto"],
        "/dm NAME TEXT",
        "say TEXT to NAME only",
        false,
    ),
    spec(
        "bm",
        &[],
        "/bm TEXT",
        "say TEXT in your current room, as a plain line does",
        false,
    ),
    spec(
        "me",
        &[],
        "/me TEXT",
        "an action line to your current room: * you TEXT",
        false,
    ),
    spec(
        "history",
        &[],
        "/history [#ROOM] [N]",
        "show N (20, at most 200) lines of ROOM from before those you have seen",
        false,
    ),
    spec(
        "join",
        &[],
        "/join #ROOM",
        "join ROOM (made if it does not exist) and make it your current room",
        false,
    ),
    spec(
        "room",
        &[],
        "/room #ROOM",
        "make ROOM, one you joined, your current room (plain lines go there)",
        false,
    ),
    spec(
        "part",
        &["leave"],
        "/part [#ROOM] [REASON]",
        "leave ROOM (your current room if none is named)",
        false,
    ),
    spec(
        "rooms",
        &[],
        "/rooms",
        "list every room: members and topic",
        false,
    ),
    spec(
        "who",
        &[],
        "/who [#ROOM]",
        "list a room's members (your current room if none is named)",
        false,
    ),
    spec(
        "topic",
        &[],
        "/topic [TEXT]",
        "show your current room's topic; with TEXT, set it (moderators)",
        false,
    ),
    spec(
        "remove",
        &[],
        "/remove NAME [REASON]",
        "take NAME out of your current room (moderators)",
        false,
    ),
    spec(
        "mod",
        &[],
        "/mod NAME",
        "make NAME a moderator of your current room (moderators)",
        false,
    ),
    spec(
        "away",
        &["busy"],
        "/away [REASON]",
        "mark yourself away",
        false,
    ),
    spec("back", &["free"], "/back", "mark yourself back", false),
    spec(
        "whoami",
        &["username"],
        "/whoami",
        "show your name and role",
        false,
    ),
    spec(
        "whois",
        &[],
        "/whois NAME",
        "show who NAME is: role, account, rooms, away",
        false,
    ),
    spec(
        "time",
        &[],
        "/time",
        "show the server's date, time and UTC offset",
        false,
    ),
    spec("ping", &[], "/ping", "ask the server for a pong", false),
    spec(
        "stats",
        &["total"],
        "/stats",
        "messages relayed, users online, uptime",
        false,
    ),
    spec(
        "register",
        &[],
        "/register PASSWORD",
        "register your name with a password",
        false,
    ),
    spec(
        "passwd",
        &[],
        "/passwd [OLD NEW]",
        "change your password; alone, it asks for each (passwords with spaces)",
        false,
    ),
    spec(
        "quit",
        &["exit", "disconnect"],
        "/quit [REASON]",
        "leave the chat",
        false,
    ),
    spec(
        "kick",
        &["kickuser"],
        "/kick NAME [REASON]",
        "disconnect NAME",
        true,
    ),
    spec(
        "ban",
        &[],
        "/ban NAME [REASON]",
        "disconnect NAME and refuse the name from now on",
        true,
    ),
    spec("unban", &[], "/unban NAME", "lift the ban on NAME", true),
    spec(
        // Two words, so never matched as a command name: `/room` reads `create`.
        "room create",
        &[],
        "/room create #ROOM",
        "make a persistent room: it stays when empty",
        true,
    ),
    spec(
        "bans",
        &["viewkickusers"],
        "/bans",
        "list the bans: who, by whom, when, why",
        true,
    ),
    spec(
        "grant",
        &["changegrant"],
        "/grant NAME admin|user",
        "set a registered user's role (1|0 also work)",
        true,
    ),
];

const fn spec(
    name: &'static str,
    aliases: &'static [&'static str],
    usage: &'static str,
    summary: &'static str,
    admin: bool,
) -> CommandSpec {
    CommandSpec {
        name,
        aliases,
        usage,
        summary,
        admin,
    }
}

impl Command {
    /// Parses a command from its name (without the slash, any case) and the rest of the line.
    pub fn parse(name: &str, args: &str) -> Command {
        let args = args.trim();
        let Some(spec) = COMMANDS.iter().find(|spec| {
            spec.name.eq_ignore_ascii_case(name)
                || spec.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        }) else {
            return Command::Unknown {
                name: name.to_owned(),
            };
        };
        let usage = Command::BadUsage { usage: spec.usage };
        let optional = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        let (first, rest) = split_word(args);
        match (spec.name, first.is_empty(), rest.is_empty()) {
            ("help", ..) => Command::Help,
            ("users", ..) => Command::Users,
            ("back", ..) => Command::Back,
            ("whoami", ..) => Command::WhoAmI,
            ("time", ..) => Command::Time,
            ("ping", ..) => Command::Ping,
            ("stats", ..) => Command::Stats,
            ("bans", ..) => Command::Moderate(Moderation::Bans),
            ("quit", ..) => Command::Quit {
                reason: optional(args),
            },
            ("away", ..) => Command::Away {
                reason: optional(args),
            },
            ("bm", false, _) => Command::Broadcast {
                text: args.to_owned(),
            },
            ("register", false, _) => Command::Register {
                password: args.to_owned(),
            },
            ("dm", false, false) => Command::Dm {
                to: first.to_owned(),
                text: rest.to_owned(),
            },
            ("passwd", true, _) => Command::PasswdAsk,
            ("passwd", false, false) => Command::Passwd {
                old: first.to_owned(),
                new: rest.to_owned(),
            },
            ("kick", false, _) => Command::Moderate(Moderation::Kick {
                name: first.to_owned(),
                reason: optional(rest),
            }),
            ("ban", false, _) => Command::Moderate(Moderation::Ban {
                name: first.to_owned(),
                reason: optional(rest),
            }),
            ("unban", false, true) => Command::Moderate(Moderation::Unban {
                name: first.to_owned(),
            }),
            ("whois", false, true) => Command::Whois {
                name: first.to_owned(),
            },
            ("me", false, _) => Command::Room(RoomCommand::Me {
                text: args.to_owned(),
            }),
            ("join", false, true) => Command::Room(RoomCommand::Join {
                room: first.to_owned(),
            }),
            ("room", false, false) if first.eq_ignore_ascii_case("create") => {
                match split_word(rest) {
                    (room, "") => Command::Room(RoomCommand::Create {
                        room: room.to_owned(),
                    }),
                    _ => Command::BadUsage {
                        usage: "/room create #ROOM",
                    },
                }
            }
            ("room", false, true) if first.eq_ignore_ascii_case("create") => Command::BadUsage {
                usage: "/room create #ROOM",
            },
            ("room", false, true) => Command::Room(RoomCommand::Switch {
                room: first.to_owned(),
            }),
            ("part", ..) if first.starts_with('#') => Command::Room(RoomCommand::Part {
                room: Some(first.to_owned()),
                reason: optional(rest),
            }),
            ("part", ..) => Command::Room(RoomCommand::Part {
                room: None,
                reason: optional(args),
            }),
            ("rooms", ..) => Command::Room(RoomCommand::List),
            ("history", ..) => {
                let (room, count) = match (first.starts_with('#'), first, rest) {
                    (true, room, count) => (Some(room.to_owned()), count),
                    (false, count, "") => (None, count),
                    (false, ..) => return usage,
                };
                match count {
                    "" => Command::History { room, count: None },
                    count => match count.parse::<usize>() {
                        Ok(n) if n > 0 => Command::History {
                            room,
                            count: Some(n),
                        },
                        _ => usage,
                    },
                }
            }
            ("who", _, true) => Command::Room(RoomCommand::Who {
                room: optional(first),
            }),
            ("topic", ..) => Command::Room(RoomCommand::Topic {
                text: optional(args),
            }),
            ("remove", false, _) => Command::Room(RoomCommand::Remove {
                name: first.to_owned(),
                reason: optional(rest),
            }),
            ("mod", false, true) => Command::Room(RoomCommand::Mod {
                name: first.to_owned(),
            }),
            ("grant", false, false) => match Role::parse(rest) {
                Some(role) => Command::Moderate(Moderation::Grant {
                    name: first.to_owned(),
                    role,
                }),
                None => usage,
            },
            _ => usage,
        }
    }
}

/// Splits off the first word of `text`; the rest is trimmed.
pub fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, rest.trim()),
        None => (text, ""),
    }
}

/// What a user can do with rooms. Room names are as typed (`#dev`); the core checks them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RoomCommand {
    /// Join a room (made ad hoc if it does not exist) and make it the current room.
    Join {
        /// The room's name.
        room: String,
    },
    /// Make a joined room the current room.
    Switch {
        /// The room's name.
        room: String,
    },
    /// Make a persistent room (admins).
    Create {
        /// The room's name.
        room: String,
    },
    /// Leave a room: the named one, or the current one.
    Part {
        /// The room, if named.
        room: Option<String>,
        /// Why, if given.
        reason: Option<String>,
    },
    /// List every room.
    List,
    /// List a room's members: the named one, or the current one.
    Who {
        /// The room, if named.
        room: Option<String>,
    },
    /// Show the current room's topic, or set it.
    Topic {
        /// The new topic, if given.
        text: Option<String>,
    },
    /// An action line to the current room.
    Me {
        /// What the user does.
        text: String,
    },
    /// Take a user out of the current room (moderators).
    Remove {
        /// Who.
        name: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// Make a user a moderator of the current room (moderators).
    Mod {
        /// Who.
        name: String,
    },
}

/// What an admin (or the console) can do to users and names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Moderation {
    /// Disconnect a user.
    Kick {
        /// Who.
        name: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// Disconnect a user and refuse the name from now on.
    Ban {
        /// Who.
        name: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// Lift a ban.
    Unban {
        /// The banned name.
        name: String,
    },
    /// List the bans.
    Bans,
    /// Set a registered user's role.
    Grant {
        /// Who.
        name: String,
        /// The new role.
        role: Role,
    },
}

/// A command typed on the host console (stdin of `chatd`).
///
/// Serialized (for a cluster's log): every variant but [`HostCommand::BadUsage`] and
/// [`HostCommand::Mistyped`], which hold `&'static str`s (the core answers them on the console
/// they were typed on and never shares them); they come last, as [`Command::BadUsage`] does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HostCommand {
    /// List the console commands.
    Help,
    /// Print the users online.    /// Print the users online.
    ListUsers,
    /// Moderate: the console is always an admin.
    Moderate(Moderation),
    /// Shut the server down.
    Exit,
    /// Say a line to everyone as `Host`.
    Say {
        /// The text.
        text: String,
    },
    /// List every room.
    Rooms,
    /// Say a line to one room as `Host`.
    SayIn {
        /// The room's name, as typed.
        room: String,
        /// The text.
        text: String,
    },
    #[serde(skip)]
    /// A console command given with missing arguments.
    BadUsage {
        /// The usage line.
        #[serde(skip)]
        usage: &'static str,
    },
    #[serde(skip)]
    /// A first word in capitals that is a typo of a console command: refused, not said.
    Mistyped {
        /// The word as typed.
        word: String,
        /// The command it is closest to.
        #[serde(skip)]
        meant: &'static str,
    },
}

/// The console commands, as `HELP` lists them: usage and summary.
pub const HOST_COMMANDS: &[(&str, &str)] = &[
    ("HELP", "list the console commands"),
    ("KICK NAME [REASON]", "disconnect NAME, telling everyone"),
    ("LIST_USERS", "print the users online"),
    ("ROOMS", "print every room: members and topic"),
    (
        "BAN NAME [REASON]",
        "disconnect NAME and refuse the name from now on",
    ),
    ("UNBAN NAME", "lift the ban on NAME"),
    ("BANS", "list the bans: who, by whom, when, why"),
    ("GRANT NAME admin|user", "set a registered user's role"),
    (
        "EXIT",
        "tell everyone, close every connection and stop the server",
    ),
    (
        "SAY [#ROOM] TEXT",
        "say TEXT to everyone (or in ROOM) as Host, as it is (even if it reads like a command)",
    ),
    (
        "anything else",
        "said to everyone as Host; a first word in capitals one typo from a command is refused",
    ),
];

/// How a connection ended, as far as the others are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveKind {
    /// The user quit or the connection was lost.
    Exited,
    /// The user was kicked out.
    Kicked,
}

/// Something that happened in the room, shown as a `[*]` line in text mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A user joined.
    Entered {
        /// Who.
        name: String,
    },
    /// A user left or was kicked.
    Left {
        /// Who.
        name: String,
        /// Whether they left or were kicked.
        kind: LeaveKind,
        /// The reason given, if any.
        reason: Option<String>,
    },
    /// The server is shutting down; the connection closes next.
    Shutdown,
}

/// Which room a line belongs to: its name as created, and whether it is the server's default
/// room (whose lines text mode shows without the name, as before rooms existed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomTag {
    /// The room's name, with its `#`, as created.
    pub name: String,
    /// Whether it is the default room.
    pub default: bool,
}

/// A room's topic: what, who set it, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicEntry {
    /// The topic.
    pub text: String,
    /// Who set it.
    pub by: String,
    /// When.
    pub at: Stamp,
}

/// A line of a room, said or happened there ([`ServerMsg::Room`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomLine {
    /// A chat line (the default room's use [`ServerMsg::Chat`], as before rooms).
    Chat {
        /// When the server relayed it.
        at: Stamp,
        /// Who said it.
        from: String,
        /// What was said.
        text: String,
    },
    /// An action line (`/me`).
    Me {
        /// When the server relayed it.
        at: Stamp,
        /// Who did it.
        from: String,
        /// What they do.
        text: String,
    },
    /// A line said before the user joined the room, shown on joining (the default room's chat
    /// lines use [`ServerMsg::Backlog`], as before rooms).
    History {
        /// When it was said.
        at: Stamp,
        /// Who said it.
        from: String,
        /// What was said.
        text: String,
        /// Whether it was an action line.
        me: bool,
    },
    /// Users joined the room. One name is one join; in a crowded room the joins of a second come
    /// as one line: the first names, and how many more.
    Entered {
        /// Who, the first few.
        names: Vec<String>,
        /// How many more than `names`.
        more: usize,
    },
    /// Users left the room, put together in a crowded room as [`RoomLine::Entered`] is.
    Left {
        /// Who, the first few.
        names: Vec<String>,
        /// How many more than `names`.
        more: usize,
        /// How they left.
        how: Departure,
        /// The reason given, if any (never for a crowd).
        reason: Option<String>,
    },
    /// A moderator took a user out of the room.
    Removed {
        /// Who was taken out.
        name: String,
        /// Who did it.
        by: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// The topic was set.
    Topic {
        /// The new topic.
        text: String,
        /// Who set it.
        by: String,
    },
    /// A user was made a moderator of the room.
    Moderator {
        /// Who.
        name: String,
        /// By whom.
        by: String,
    },
}

/// How users left a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// With `/part`: they left the room only.
    Parted,
    /// They left the server (quit, or the connection was lost).
    Exited,
    /// They were kicked off the server.
    Kicked,
}

/// A room as listed by `/rooms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEntry {
    /// The room's name, as created.
    pub name: String,
    /// How many users are in it.
    pub members: usize,
    /// Its topic, if set.
    pub topic: Option<String>,
    /// Whether it stays when empty.
    pub persistent: bool,
}

/// A member of a room as listed by `/who`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    /// The user's name.
    pub name: String,
    /// Whether they moderate the room (admins moderate every room).
    pub moderator: bool,
    /// Set while the user is away: the reason, possibly empty.
    pub away: Option<String>,
}

/// A user as listed by `/users`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    /// The user's name.
    pub name: String,
    /// The user's role.
    pub role: Role,
    /// Set while the user is away: the reason, possibly empty.
    pub away: Option<String>,
}

/// A ban as listed by `/bans`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanEntry {
    /// The banned name.
    pub name: String,
    /// Who banned it.
    pub by: String,
    /// When.
    pub at: Stamp,
    /// Why, if given.
    pub reason: Option<String>,
}

/// A request that was carried out, confirmed to whoever asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// The user is marked away.
    Away,
    /// The user is marked back.
    Back,
    /// The user's name is now registered.
    Registered,
    /// The user's password was changed.
    PasswordChanged,
    /// A user's role was set.
    Granted {
        /// Whose.
        name: String,
        /// The new role.
        role: Role,
    },
    /// A name was banned.
    Banned {
        /// The name.
        name: String,
    },
    /// A ban was lifted.
    Unbanned {
        /// The name.
        name: String,
    },
    /// The user's own role was changed by someone else.
    RoleChanged {
        /// The new role.
        role: Role,
        /// Who changed it.
        by: String,
    },
    /// The user joined a room, now their current room.
    JoinedRoom {
        /// The room.
        room: RoomTag,
        /// How many users are in it now, the user included.
        members: usize,
        /// Whether the user made it (and so moderates it).
        created: bool,
    },
    /// The user's current room is now `room`.
    SwitchedRoom {
        /// The room.
        room: RoomTag,
    },
    /// The user left `room`; `current` is their current room now.
    PartedRoom {
        /// The room left.
        room: String,
        /// The current room now.
        current: String,
    },
    /// A persistent room was made.
    RoomCreated {
        /// Its name.
        room: String,
    },
}

/// What the server explains to one user, shown as a `[*]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// `/passwd` asks for the current password next.
    PasswdCurrent,
    /// `/passwd` asks for the new password next.
    PasswdNew,
    /// `/passwd` asks for the new password once more.
    PasswdAgain,
    /// `/passwd` was cancelled (an empty line or a command); the password is unchanged.
    PasswdCancelled,
    /// The password is checked only in `secs`, after failed logins for this name from this address.
    CheckDelayed {
        /// Seconds until the check.
        secs: u64,
    },
    /// The user's name was banned by `by`; the connection closes next.
    Banned {
        /// The banned name.
        name: String,
        /// Who banned it.
        by: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// The user logged in to this name again from another connection, which takes it over; this
    /// connection closes next.
    Replaced,
    /// Cluster mode: this node lost its place in the cluster (its name leases could not be
    /// renewed in time, or the other nodes took it for gone); the connection closes next.
    NodeCut,
    /// A moderator took the user out of `room`; `current` is their current room now.
    RemovedFromRoom {
        /// The room.
        room: String,
        /// Who did it.
        by: String,
        /// Why, if given.
        reason: Option<String>,
        /// The user's current room now.
        current: String,
    },
    /// What a `/history` page holds: `count` lines of `room` follow, older than those shown so
    /// far; `more` says whether the room has older lines still.
    HistoryPage {
        /// The room.
        room: String,
        /// How many lines follow.
        count: usize,
        /// Whether older lines remain (for IRC's CHATHISTORY: more lines of the span asked for).
        more: bool,
    },
    /// A direct message to `name`, who is offline, waits in their mailbox.
    Mailed {
        /// The recipient.
        name: String,
    },
    /// Direct messages came while the user was offline: `count` of them follow.
    Mailbox {
        /// How many follow.
        count: usize,
    },
    /// Cluster mode: the servers of the chat cannot reach their shared log; what needs it
    /// (lines, logins, moderation) is refused until it is whole again. Text mode shows it as a
    /// `[!]` line.
    ClusterDegraded,
    /// Cluster mode: the chat is whole again after [`Notice::ClusterDegraded`].
    ClusterRestored,
}

/// The plain words of a [`ServerMsg::Gap`], the same in every mode that shows it.
pub fn gap_text(room: &str, missing: Option<u64>, since: Option<&Stamp>) -> String {
    let why = match missing {
        Some(1) => "1 missing".to_owned(),
        Some(n) => format!("{n} missing"),
        None => "the server restarted or no longer has your last line".to_owned(),
    };
    let rest = match since {
        Some(at) => format!("the lines it has since {} follow", at.hms()),
        None => "it has no line to show".to_owned(),
    };
    format!("Some messages in {room} could not be recovered ({why}): {rest}.")
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::PasswdCurrent => {
                f.write_str("Changing your password: your current password? (an empty line cancels)")
            }
            Notice::PasswdNew => f.write_str("Your new password?"),
            Notice::PasswdAgain => f.write_str("Your new password once more?"),
            Notice::PasswdCancelled => {
                f.write_str("Password change cancelled: your password is unchanged.")
            }
            Notice::CheckDelayed { secs } => write!(
                f,
                "Failed logins to this name from your address lately: your password is checked in {secs} s."
            ),
            Notice::Banned { name, by, reason } => {
                write!(f, "You have been banned by {by}")?;
                if let Some(reason) = reason {
                    write!(f, " ({reason})")?;
                }
                write!(f, ": the name {name} is refused here from now on.")
            }
            Notice::Replaced => f.write_str(
                "You logged in to your name from another connection: this one closes.",
            ),
            Notice::NodeCut => f.write_str(
                "This server lost its place in the chat's cluster (it could not reach Redis, or \
                 stalled, for longer than its lease), so it cannot be sure your name is still \
                 yours alone: please connect again.",
            ),
            Notice::RemovedFromRoom {
                room,
                by,
                reason,
                current,
            } => {
                write!(f, "{by} removed you from {room}")?;
                if let Some(reason) = reason {
                    write!(f, " ({reason})")?;
                }
                write!(f, "; your current room is {current}.")
            }
            Notice::HistoryPage {
                room,
                count: 0,
                more: _,
            } => write!(f, "No earlier lines of {room} are kept."),
            Notice::HistoryPage { room, count, more } => {
                let lines = if *count == 1 { "line" } else { "lines" };
                let then = if *more {
                    "/history shows more"
                } else {
                    "the first kept"
                };
                write!(f, "{count} earlier {lines} of {room} ({then}):")
            }
            Notice::Mailed { name } => write!(
                f,
                "{name} is offline: your message waits for them and is delivered when they next log in."
            ),
            Notice::Mailbox { count: 1 } => {
                f.write_str("1 direct message came while you were offline:")
            }
            Notice::Mailbox { count } => {
                write!(f, "{count} direct messages came while you were offline:")
            }
            Notice::ClusterDegraded => f.write_str(
                "The chat is degraded: the servers cannot reach each other, so what you send is refused until it is whole again.",
            ),
            Notice::ClusterRestored => f.write_str("The chat is whole again."),
        }
    }
}

/// Why a request was refused: the user is told with a `[!]` line (text) or an error frame (framed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    /// The name breaks the name rules.
    NameInvalid,
    /// Someone online already has the name (ignoring case).
    NameTaken,
    /// The name is kept for the server.
    NameReserved,
    /// The command needs a name first.
    NameFirst,
    /// The command needs the password first.
    PasswordFirst,
    /// The client has joined already.
    AlreadyJoined,
    /// The server has as many clients as it takes.
    ServerFull,
    /// The peer's address has as many connections as it may.
    TooManyFromAddress,
    /// No command has this name.
    UnknownCommand {
        /// The name as given.
        name: String,
    },
    /// A console line whose first word, in capitals, is a typo of a console command.
    MistypedHostCommand {
        /// The word as typed.
        word: String,
        /// The command it is closest to.
        meant: &'static str,
    },
    /// A known command with the wrong arguments.
    Usage {
        /// The usage line.
        usage: &'static str,
    },
    /// No user of that name is online.
    UnknownUser {
        /// The name asked for.
        name: String,
    },
    /// The input could not be read.
    BadInput(crate::proto::DecodeError),
    /// The command is for admins.
    PermissionDenied,
    /// The password was wrong.
    WrongPassword,
    /// Too many wrong passwords; the connection closes.
    TooManyFailures,
    /// This address has failed logins for too many accounts lately; try another in `retry_secs`.
    TooManyAttempts {
        /// Seconds until a login to a further account is checked again.
        retry_secs: u64,
    },
    /// No name was given in time; the connection closes.
    NameTimeout,
    /// Too much input that could not be read; the connection closes.
    TooMuchBadInput,
    /// Only registered names may join this server.
    AccountRequired,
    /// The name is banned.
    Banned {
        /// The name.
        name: String,
        /// Why, if the ban gave a reason.
        reason: Option<String>,
    },
    /// An admin may not ban their own name.
    CannotBanSelf,
    /// The change would leave no admin account.
    LastAdmin {
        /// The last admin's name.
        name: String,
    },
    /// The new password and its confirmation differ.
    PasswordsDiffer,
    /// The name is registered already.
    AlreadyRegistered,
    /// This server does not let guests register.
    RegistrationClosed,
    /// The name has no account.
    NotRegistered {
        /// The name.
        name: String,
    },
    /// The name is not banned.
    NotBanned {
        /// The name.
        name: String,
    },
    /// The server is busy with this connection's last request; try again.
    Busy,
    /// Cluster mode: the chat is degraded (its nodes cannot reach their shared log), so the
    /// name or the line was not taken; try again once it is whole.
    Degraded,
    /// This server takes TLS connections only; the connection closes.
    TlsRequired {
        /// The port to connect to with TLS.
        port: u16,
    },
    /// A password may not cross a plain connection on this server: it has TLS.
    PlainPassword,
    /// A room name that breaks the room name rules.
    RoomNameInvalid {
        /// The name as given.
        room: String,
    },
    /// No room has this name.
    NoSuchRoom {
        /// The name as given.
        room: String,
    },
    /// The user is not in this room.
    NotInRoom {
        /// The room.
        room: String,
    },
    /// The user is in this room already.
    AlreadyInRoom {
        /// The room.
        room: String,
    },
    /// A room of that name exists already.
    RoomExists {
        /// The room, as created.
        room: String,
    },
    /// Users may not make rooms on this server (`--no-create-rooms`).
    RoomCreationClosed {
        /// The room asked for.
        room: String,
    },
    /// The server has as many rooms as it takes (`--max-rooms`).
    TooManyRooms {
        /// The limit.
        max: usize,
    },
    /// The user is in as many rooms as a user may be (`--max-rooms-per-user`).
    TooManyRoomsForUser {
        /// The limit.
        max: usize,
    },
    /// The default room cannot be left (but the server can, with `/quit`).
    CannotLeaveDefaultRoom {
        /// The default room.
        room: String,
    },
    /// The command is for the room's moderators.
    NotModerator {
        /// The room.
        room: String,
    },
    /// The named user is not in the room.
    UserNotInRoom {
        /// Who.
        name: String,
        /// The room.
        room: String,
    },
    /// The named user moderates the room already.
    AlreadyModerator {
        /// Who.
        name: String,
        /// The room.
        room: String,
    },
    /// The account could not be changed (the password could not be hashed).
    Failed,
    /// A direct message to someone offline who is not a registered user: only registered users
    /// get messages while offline.
    OfflineGuest {
        /// The name asked for.
        name: String,
    },
    /// A direct message to an offline user whose mailbox (or the server's) is full.
    MailboxFull {
        /// The recipient.
        name: String,
    },
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::NameInvalid => {
                f.write_str("invalid name: use 1 to 32 letters, digits, '_', '-' or '.'")
            }
            Reject::NameTaken => f.write_str("name taken: someone online already uses it"),
            Reject::NameReserved => f.write_str("name reserved for the server"),
            Reject::NameFirst => f.write_str("choose a name first"),
            Reject::PasswordFirst => f.write_str("enter your password first"),
            Reject::AlreadyJoined => f.write_str("already joined"),
            Reject::ServerFull => f.write_str("server full, try again later"),
            Reject::TooManyFromAddress => f.write_str("too many connections from your address"),
            Reject::UnknownCommand { name } => {
                write!(f, "unknown command /{name}: type /help for the list")
            }
            Reject::MistypedHostCommand { word, meant } => write!(
                f,
                "unknown command {word}; did you mean {meant}? (SAY TEXT says TEXT as it is)"
            ),
            Reject::Usage { usage } => write!(f, "usage: {usage}"),
            Reject::UnknownUser { name } => write!(f, "no user named {name} is online"),
            Reject::BadInput(error) => write!(f, "{error}"),
            Reject::PermissionDenied => f.write_str("permission denied"),
            Reject::WrongPassword => f.write_str("wrong password"),
            Reject::TooManyFailures => f.write_str("too many wrong passwords, goodbye"),
            Reject::TooManyAttempts { retry_secs } => write!(
                f,
                "too many accounts failed from your address lately: try again in {retry_secs} s"
            ),
            Reject::NameTimeout => f.write_str("no name given in time, goodbye"),
            Reject::TooMuchBadInput => {
                f.write_str("too much input that could not be read, goodbye")
            }
            Reject::AccountRequired => {
                f.write_str("this server is for registered users only: ask an admin for an account")
            }
            Reject::Banned { name, reason } => {
                write!(f, "the name {name} is banned here")?;
                match reason {
                    Some(reason) => write!(f, ": {reason}"),
                    None => Ok(()),
                }
            }
            Reject::CannotBanSelf => f.write_str("you cannot ban yourself"),
            Reject::LastAdmin { name } => {
                write!(f, "{name} is the last admin: make someone else admin first")
            }
            Reject::PasswordsDiffer => {
                f.write_str("the two new passwords differ: your password is unchanged")
            }
            Reject::AlreadyRegistered => {
                f.write_str("your name is registered already: use /passwd to change the password")
            }
            Reject::RegistrationClosed => f.write_str("registration is closed on this server"),
            Reject::NotRegistered { name } => write!(f, "{name} is not a registered name"),
            Reject::NotBanned { name } => write!(f, "{name} is not banned"),
            Reject::Busy => f.write_str("busy, try again"),
            Reject::Degraded => f.write_str(
                "the chat is degraded: not sent, as nothing can reach the other servers now; try again when it is whole",
            ),
            Reject::TlsRequired { port } => write!(
                f,
                "this server takes TLS connections only: connect with `chat --tls HOST:{port}`, \
                 `openssl s_client -connect HOST:{port}` or `socat - OPENSSL:HOST:{port}`, goodbye"
            ),
            Reject::PlainPassword => f.write_str(
                "passwords are taken over TLS only on this server, so that no one on the way reads \
                 them: reconnect with `chat --tls` (or openssl s_client), or choose another name",
            ),
            Reject::RoomNameInvalid { room } => write!(
                f,
                "invalid room name {room}: use # then 1 to 32 letters, digits, '_', '-' or '.'"
            ),
            Reject::NoSuchRoom { room } => {
                write!(f, "no room named {room}: /rooms lists them, /join makes one")
            }
            Reject::NotInRoom { room } => write!(f, "you are not in {room}: /join {room} first"),
            Reject::AlreadyInRoom { room } => write!(f, "you are in {room} already"),
            Reject::RoomExists { room } => write!(f, "there is a room named {room} already"),
            Reject::RoomCreationClosed { room } => write!(
                f,
                "no room named {room}, and only admins make rooms on this server"
            ),
            Reject::TooManyRooms { max } => write!(
                f,
                "the server has {max} rooms, as many as it takes: join one of them (/rooms)"
            ),
            Reject::TooManyRoomsForUser { max } => write!(
                f,
                "you are in {max} rooms, as many as a user may be: /part one first"
            ),
            Reject::CannotLeaveDefaultRoom { room } => write!(
                f,
                "{room} is the server's default room: everyone stays in it (/quit leaves the server)"
            ),
            Reject::NotModerator { room } => write!(f, "only moderators of {room} may do that"),
            Reject::UserNotInRoom { name, room } => write!(f, "{name} is not in {room}"),
            Reject::AlreadyModerator { name, room } => {
                write!(f, "{name} moderates {room} already")
            }
            Reject::Failed => f.write_str("that did not work, try again later"),
            Reject::OfflineGuest { name } => write!(
                f,
                "no user named {name} is online, and messages wait only for registered users: \
                 yours was not kept"
            ),
            Reject::MailboxFull { name } => write!(
                f,
                "{name} is offline and has as many messages waiting as the server keeps: yours was not kept"
            ),
        }
    }
}

/// What the server tells a client or the console, whatever its wire mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMsg {
    /// First words on a new connection; asks for a name.
    Greeting {
        /// How many users are online.
        online: usize,
    },
    /// Asks for a name again after a refused one.
    NamePrompt,
    /// Asks for a password: of the registered name just given, or a step of `/passwd` (a
    /// [`Notice`] before it says which). Telnet hides what is typed after it.
    PasswordPrompt,
    /// A line that explains what happens next.
    Notice(Notice),
    /// The client joined under `name`.
    Welcome {
        /// The name granted.
        name: String,
        /// Who else is online: the first [`WELCOME_NAMES`] by name; `/users` lists everyone.
        others: Vec<String>,
        /// How many more are online than `others` names.
        more: usize,
    },
    /// A chat line.
    Chat {
        /// When the server relayed it.
        at: Stamp,
        /// Who said it.
        from: String,
        /// What was said.
        text: String,
    },
    /// A chat line said before the user joined, shown on joining.
    Backlog {
        /// When it was said.
        at: Stamp,
        /// Who said it.
        from: String,
        /// What was said.
        text: String,
    },
    /// A direct message, shown only to its recipient.
    Direct {
        /// When the server relayed it.
        at: Stamp,
        /// Who sent it.
        from: String,
        /// What was said.
        text: String,
    },
    /// Something happened in the room.
    Event(Event),
    /// A request was refused.
    Reject(Reject),
    /// The user command list; admin commands only for admins.
    Help {
        /// Whether to list the admin commands.
        admin: bool,
    },
    /// The console command list.
    HostHelp,
    /// The users online.
    Users {
        /// One entry per user, by name.
        users: Vec<UserEntry>,
    },
    /// Told to a user who is being kicked, just before the connection closes.
    Kicked {
        /// Who kicked them.
        by: String,
        /// Why, if given.
        reason: Option<String>,
    },
    /// Told to a user who quit, just before the connection closes.
    Bye,
    /// A request was carried out.
    Done(Done),
    /// The sender of a direct message learns that its recipient is away.
    Away {
        /// The recipient.
        name: String,
        /// Why, possibly empty.
        reason: String,
    },
    /// A user went away, changed their reason, or came back: told once to everyone who shares
    /// a room with them (everyone is in the default room). Shown by IRC clients that asked for
    /// `away-notify` and by the web page's user list; text and framed clients show nothing.
    AwayChanged {
        /// The user.
        name: String,
        /// The reason (possibly empty) while away; `None` once back.
        away: Option<String>,
    },
    /// The asker's own name and role.
    WhoAmI {
        /// The name.
        name: String,
        /// The role.
        role: Role,
        /// Whether the name is registered.
        registered: bool,
    },
    /// Who a user is, for `/whois`.
    UserInfo {
        /// The user's name, role and away reason.
        user: UserEntry,
        /// Whether the name is registered.
        registered: bool,
        /// The rooms the user is in, the default room first.
        rooms: Vec<String>,
        /// Seconds since the user last said or asked something.
        idle_secs: u64,
        /// When the user connected.
        since: Stamp,
    },
    /// The server's date, time and UTC offset.
    Time {
        /// Now.
        at: Stamp,
    },
    /// Server figures.
    Stats {
        /// Chat lines and direct messages relayed since start.
        relayed: u64,
        /// Users in the room.
        online: usize,
        /// Seconds since start.
        uptime_secs: u64,
        /// Framed messages dropped because their text did not match its digest.
        bad_digests: u64,
    },
    /// The bans.
    Bans {
        /// One entry per banned name.
        bans: Vec<BanEntry>,
    },
    /// A line of a room: said, acted or happened there.
    Room {
        /// The room.
        room: RoomTag,
        /// The line.
        line: RoomLine,
    },
    /// Every room, for `/rooms` and the console's `ROOMS`.
    Rooms {
        /// One entry per room, by name ignoring case.
        rooms: Vec<RoomEntry>,
    },
    /// A room's members, for `/who`.
    Who {
        /// The room.
        room: String,
        /// One entry per member, by name ignoring case.
        members: Vec<MemberEntry>,
    },
    /// A room's topic, for `/topic` alone.
    Topic {
        /// The room.
        room: String,
        /// The topic, if set.
        topic: Option<TopicEntry>,
    },
    /// A keepalive ping from the shell to a silent framed client (text clients never get one).
    KeepAlive {
        /// To be echoed in the client's pong.
        nonce: u64,
    },
    /// The answer to a ping.
    Pong {
        /// The nonce of the ping.
        nonce: u64,
        /// The server's time.
        at: Stamp,
    },
    /// A room's chat line (said, acted, or history) with its id: the wire modes that resume
    /// (the web page) carry the id; the others show `msg` as it is.
    Line {
        /// The line's id.
        id: LineId,
        /// The line: [`ServerMsg::Chat`], [`ServerMsg::Backlog`] or a [`ServerMsg::Room`] chat,
        /// action or history line.
        msg: Box<ServerMsg>,
    },
    /// Told on rejoining a room with [`ClientMsg::Resume`] when the lines after the client's
    /// last one are not all kept any more (or its id is from another run): the lines the
    /// server has follow.
    Gap {
        /// The room.
        room: RoomTag,
        /// How many lines are lost, when known (the id is of this run).
        missing: Option<u64>,
        /// When the first line that follows was said, if any follows.
        since: Option<Stamp>,
    },
}

impl ServerMsg {
    /// Whether the user's answer to this message is a secret that should not show as it is
    /// typed: every password prompt, wherever it is sent from. A telnet client is asked not to
    /// echo it.
    pub fn hides_input(&self) -> bool {
        matches!(self, ServerMsg::PasswordPrompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str, args: &str) -> Command {
        Command::parse(name, args)
    }

    #[test]
    fn history_takes_a_room_a_count_both_or_neither_and_refuses_anything_else() {
        let history = |room: Option<&str>, count| Command::History {
            room: room.map(str::to_owned),
            count,
        };
        let usage = Command::BadUsage {
            usage: "/history [#ROOM] [N]",
        };
        assert_eq!(room("history", ""), history(None, None));
        assert_eq!(room("HISTORY", " 50 "), history(None, Some(50)));
        assert_eq!(room("history", "#dev"), history(Some("#dev"), None));
        assert_eq!(room("history", "#dev 7"), history(Some("#dev"), Some(7)));
        for bad in ["0", "-3", "lots", "5 #dev", "#dev x", "#dev 1 2"] {
            assert_eq!(room("history", bad), usage, "{bad}");
        }
    }

    #[test]
    fn room_commands_read_their_arguments_and_refuse_wrong_ones_with_their_usage() {
        let usage = |usage| Command::BadUsage { usage };
        let cmd = Command::Room;
        assert_eq!(
            room("JOIN", " #dev "),
            cmd(RoomCommand::Join {
                room: "#dev".into()
            })
        );
        assert_eq!(room("join", ""), usage("/join #ROOM"));
        assert_eq!(room("join", "#a #b"), usage("/join #ROOM"));
        assert_eq!(
            room("room", "#dev"),
            cmd(RoomCommand::Switch {
                room: "#dev".into()
            })
        );
        assert_eq!(
            room("room", "CREATE #ops"),
            cmd(RoomCommand::Create {
                room: "#ops".into()
            })
        );
        assert_eq!(room("room", "create"), usage("/room create #ROOM"));
        assert_eq!(room("room", "create #a #b"), usage("/room create #ROOM"));
        assert_eq!(room("room", ""), usage("/room #ROOM"));
        assert_eq!(
            room("roomcreate", "#x"),
            Command::Unknown {
                name: "roomcreate".into()
            }
        );
        assert_eq!(
            room("part", "#dev see you"),
            cmd(RoomCommand::Part {
                room: Some("#dev".into()),
                reason: Some("see you".into())
            })
        );
        assert_eq!(
            room("leave", "see you"),
            cmd(RoomCommand::Part {
                room: None,
                reason: Some("see you".into())
            })
        );
        assert_eq!(
            room("part", ""),
            cmd(RoomCommand::Part {
                room: None,
                reason: None
            })
        );
        assert_eq!(room("rooms", ""), cmd(RoomCommand::List));
        assert_eq!(room("who", ""), cmd(RoomCommand::Who { room: None }));
        assert_eq!(
            room("who", "#dev"),
            cmd(RoomCommand::Who {
                room: Some("#dev".into())
            })
        );
        assert_eq!(room("who", "#a #b"), usage("/who [#ROOM]"));
        assert_eq!(room("topic", ""), cmd(RoomCommand::Topic { text: None }));
        assert_eq!(
            room("topic", " Rust  talk "),
            cmd(RoomCommand::Topic {
                text: Some("Rust  talk".into())
            })
        );
        assert_eq!(
            room("me", "waves hello"),
            cmd(RoomCommand::Me {
                text: "waves hello".into()
            })
        );
        assert_eq!(room("me", " "), usage("/me TEXT"));
        assert_eq!(
            room("remove", "bob too loud"),
            cmd(RoomCommand::Remove {
                name: "bob".into(),
                reason: Some("too loud".into())
            })
        );
        assert_eq!(room("remove", ""), usage("/remove NAME [REASON]"));
        assert_eq!(
            room("mod", "bob"),
            cmd(RoomCommand::Mod { name: "bob".into() })
        );
        assert_eq!(room("mod", "bob carol"), usage("/mod NAME"));
    }
}
