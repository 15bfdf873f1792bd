//! The typed vocabulary both wire modes map to and from.
//!
//! The core reads [`ClientMsg`] and writes [`ServerMsg`]; the codecs turn bytes into the first and the
//! second into bytes. Nothing here knows about sockets or about how a mode lays out its bytes.

use std::fmt;

/// A wall-clock second as the server shows it: the Unix time and its local `HH:MM:SS` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    hms: [u8; 8],
}

impl Stamp {
    /// A stamp for `unix` shown as the local time `hour:minute:second`.
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
        Stamp { unix, hms }
    }

    /// The local time as `HH:MM:SS`.
    pub fn hms(&self) -> &str {
        // Built only from ASCII digits and colons in `new`.
        std::str::from_utf8(&self.hms).unwrap_or("??:??:??")
    }
}

/// What a client asks for, whatever its wire mode.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// A liveness probe; the server answers [`ServerMsg::Pong`] with the same nonce.
    Ping {
        /// Opaque value echoed back.
        nonce: u64,
    },
}

/// A command a user can give, parsed by [`Command::parse`] from a name and its argument text.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Say text to one user only.
    Dm {
        /// The recipient's name.
        to: String,
        /// What to say.
        text: String,
    },
    /// A known command given with the wrong arguments.
    BadUsage {
        /// The command's usage line, e.g. `/bm TEXT`.
        usage: &'static str,
    },
    /// A name that is no command.
    Unknown {
        /// The name as given, without the slash.
        name: String,
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
}

/// Every user command, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "help",
        aliases: &[],
        usage: "/help",
        summary: "list the commands",
    },
    CommandSpec {
        name: "users",
        aliases: &["list", "viewusers"],
        usage: "/users",
        summary: "list the users online (also /list, /viewusers)",
    },
    CommandSpec {
        name: "bm",
        aliases: &[],
        usage: "/bm TEXT",
        summary: "say TEXT to everyone, as a plain line does",
    },
    CommandSpec {
        name: "dm",
        aliases: &["msg", "messageto"],
        usage: "/dm NAME TEXT",
        summary: "say TEXT to NAME only (also /msg, /messageto)",
    },
    CommandSpec {
        name: "quit",
        aliases: &["exit", "disconnect"],
        usage: "/quit [REASON]",
        summary: "leave the chat (also /exit, /disconnect)",
    },
];

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
        match spec.name {
            "help" => Command::Help,
            "users" => Command::Users,
            "quit" => Command::Quit {
                reason: (!args.is_empty()).then(|| args.to_owned()),
            },
            "bm" if args.is_empty() => Command::BadUsage { usage: spec.usage },
            "bm" => Command::Broadcast {
                text: args.to_owned(),
            },
            "dm" => match args.split_once(char::is_whitespace) {
                Some((to, text)) => Command::Dm {
                    to: to.to_owned(),
                    text: text.trim().to_owned(),
                },
                None => Command::BadUsage { usage: spec.usage },
            },
            _ => Command::Unknown {
                name: name.to_owned(),
            },
        }
    }
}

/// A command typed on the host console (stdin of `chatd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCommand {
    /// List the console commands.
    Help,
    /// Disconnect a user.
    Kick {
        /// Who.
        name: String,
        /// Why, if the host said.
        reason: Option<String>,
    },
    /// Print the users online.
    ListUsers,
    /// Shut the server down.
    Exit,
    /// Say a line to everyone as `Host`.
    Say {
        /// The text.
        text: String,
    },
    /// A console command given with missing arguments.
    BadUsage {
        /// The usage line.
        usage: &'static str,
    },
}

/// The console commands, as `HELP` lists them: usage and summary.
pub const HOST_COMMANDS: &[(&str, &str)] = &[
    ("HELP", "list the console commands"),
    ("KICK NAME [REASON]", "disconnect NAME, telling everyone"),
    ("LIST_USERS", "print the users online"),
    (
        "EXIT",
        "tell everyone, close every connection and stop the server",
    ),
    ("anything else", "said to everyone as Host"),
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

/// A user as listed by `/users`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    /// The user's name.
    pub name: String,
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
    /// The client has joined already.
    AlreadyJoined,
    /// The server has as many clients as it takes.
    ServerFull,
    /// No command has this name.
    UnknownCommand {
        /// The name as given.
        name: String,
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
            Reject::AlreadyJoined => f.write_str("already joined"),
            Reject::ServerFull => f.write_str("server full, try again later"),
            Reject::UnknownCommand { name } => {
                write!(f, "unknown command /{name}: type /help for the list")
            }
            Reject::Usage { usage } => write!(f, "usage: {usage}"),
            Reject::UnknownUser { name } => write!(f, "no user named {name} is online"),
            Reject::BadInput(error) => write!(f, "{error}"),
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
    /// The client joined under `name`.
    Welcome {
        /// The name granted.
        name: String,
        /// Who else is online.
        others: Vec<String>,
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
    /// The user command list.
    Help,
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
    /// The answer to a ping.
    Pong {
        /// The nonce of the ping.
        nonce: u64,
        /// The server's time.
        at: Stamp,
    },
}
