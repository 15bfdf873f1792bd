//! One IRC connection's state, with no socket and no clock: registration (CAP, NICK, USER,
//! PASS, AUTHENTICATE) answered here until the core can be asked to log the user in; the
//! capabilities negotiated; the nick; and which command the core's next replies answer, so that
//! a [`ServerMsg::Who`] becomes NAMES or WHO lines and a refusal the right numeric.
//!
//! The connection calls [`IrcSession::receive`] with its input (it answers some lines itself
//! and turns the others into [`ClientMsg`]s, one at a time, some of its own making: a JOIN is a
//! join, then a members query for the names), and [`IrcSession::encode`] with every message
//! the core sends to this user alone. Room lines, shared by every recipient, are
//! [`super::encode::shared`]'s.

use std::collections::VecDeque;

use base64::Engine;

use super::caps::{self, Cap, Caps};
use super::encode::{self, line, server_time, text_lines, Source, HOST};
use super::line::{next_line, parse, Framed, Message, MAX_LINE};
use super::replies::{names, numeric, prefix, who_line};
use super::{IrcContext, IrcWire};
use crate::proto::msg::{
    Command, Done, HistoryRef, LineId, Notice, Reject, Role, RoomCommand, ServerMsg, Span, Stamp,
    UserEntry,
};
use crate::proto::{ClientMsg, DecodeError, Decoded};

/// Longest nick, channel name and topic the ISUPPORT line announces (chatd's own rules).
const ISUPPORT: &str = "AWAYLEN=390 CASEMAPPING=ascii CHANMODES=b,,,nt CHANNELLEN=33 CHANTYPES=# \
                        CHATHISTORY=200 MSGREFTYPES=msgid,timestamp NICKLEN=32 PREFIX=(o)@ \
                        TOPICLEN=390";

/// Where registration is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// NICK, USER (and CAP END, once CAP was used) not all in yet.
    Waiting,
    /// The core was asked to log the user in.
    LoggingIn,
    /// The core welcomed the user (after SASL), and the client has not ended registration.
    Welcomed,
    /// Registered: the welcome burst was sent.
    Registered,
}

/// Where SASL is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sasl {
    Idle,
    /// `AUTHENTICATE PLAIN` was answered; the base64 comes in pieces of 400.
    Reading(String),
    /// The credentials are with the core.
    Checking,
    /// Logged in.
    Done,
}

/// What the core's next replies answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Purpose {
    Other,
    Register,
    Join(String),
    TopicOnJoin,
    Names(String),
    Who(String),
    WhoNick(String),
    Whois(String),
    Userhost(Vec<String>),
    Ison(Vec<String>),
    Lusers,
    Privmsg,
    Notice,
    Part,
    Topic(String),
    Kick,
    Mode,
    /// A channel's modes asked for (the room must exist).
    ModeOf,
    /// A CHATHISTORY look-up: the subcommand and the target.
    ChatHistory(String, String),
    /// LIST, of these rooms only if any are named.
    List(Vec<String>),
    /// Another user's modes asked for or changed (the user must exist).
    UserModeOf,
    Role,
    Oper,
}

/// The IRC side of one connection.
#[derive(Debug)]
pub struct IrcSession {
    ctx: &'static super::IrcContext,
    caps: Caps,
    negotiating: bool,
    v302: bool,
    nick: Option<String>,
    user: bool,
    pass: Option<String>,
    sasl: Sasl,
    phase: Phase,
    awaiting_password: bool,
    admin: bool,
    /// The room whose JOIN was sent and whose names are not yet: its history waits in `held`
    /// until they are, as a client expects the names right after its JOIN.
    joining: Option<String>,
    held: Vec<u8>,
    /// Whether the client was shown the default room as joined.
    lobby_shown: bool,
    /// Batches opened so far, for their ids.
    batches: u32,
    /// The CHATHISTORY batch open (its id) and how many of its lines are still to come.
    history_batch: Option<(String, usize)>,
    /// Users online when it was welcomed, for the LUSERS of its registration.
    online: usize,
    purpose: Purpose,
    pending: VecDeque<(ClientMsg, Purpose)>,
    discarding: bool,
    error_sent: bool,
}

/// What one step of [`IrcSession::receive`] did.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes of the input used up.
    pub used: usize,
    /// A message for the core, or an input error; `None` when nothing is for the core.
    pub item: Option<Result<ClientMsg, DecodeError>>,
    /// A line was taken (and maybe answered) with nothing for the core: the caller counts it
    /// as a message for flood control and calls again.
    pub taken: bool,
}

impl IrcSession {
    /// A session for a new connection of the server `ctx` describes.
    pub fn new(ctx: &'static IrcContext) -> IrcSession {
        IrcSession {
            ctx,
            caps: Caps::default(),
            negotiating: false,
            v302: false,
            nick: None,
            user: false,
            pass: None,
            sasl: Sasl::Idle,
            phase: Phase::Waiting,
            awaiting_password: false,
            admin: false,
            joining: None,
            held: Vec::new(),
            batches: 0,
            history_batch: None,
            lobby_shown: false,
            online: 1,
            purpose: Purpose::Other,
            pending: VecDeque::new(),
            discarding: false,
            error_sent: false,
        }
    }

    /// The encoding its shared lines take: with tags once it asked for `server-time` or
    /// `message-tags`, with away changes once it asked for `away-notify`.
    pub fn wire(&self) -> IrcWire {
        IrcWire {
            tags: self.caps.has(Cap::ServerTime) || self.caps.has(Cap::MessageTags),
            away_notify: self.caps.has(Cap::AwayNotify),
            ctx: self.ctx,
        }
    }

    /// Whether the client asked for its own messages back (`echo-message`): the shell then
    /// gives it its own room lines as every member gets them.
    pub fn echoes(&self) -> bool {
        self.caps.has(Cap::EchoMessage)
    }

    /// Whether it holds messages for the core of its own making, to be taken before any more
    /// input is read (they are not the client's, so flood control does not count them).
    pub fn holds_input(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The nick, or `*` before there is one.
    fn me(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }

    /// Takes the next line (or a message of its own making) from the front of `input`; answers
    /// to lines it handles itself go to `reply`.
    pub fn receive(&mut self, input: &[u8], reply: &mut Vec<u8>) -> Received {
        if let Some((msg, purpose)) = self.pending.pop_front() {
            self.purpose = purpose;
            return Received {
                used: 0,
                item: Some(Ok(msg)),
                taken: false,
            };
        }
        if self.discarding {
            return match input.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.discarding = false;
                    Received {
                        used: end + 1,
                        taken: true,
                        ..Received::default()
                    }
                }
                None => Received {
                    used: input.len(),
                    taken: !input.is_empty(),
                    ..Received::default()
                },
            };
        }
        match next_line(input) {
            Framed::Partial => Received::default(),
            Framed::TooLong { used, ended } => {
                self.discarding = !ended;
                self.purpose = Purpose::Other;
                Received {
                    used,
                    item: Some(Err(DecodeError::LineTooLong { max: MAX_LINE })),
                    taken: false,
                }
            }
            Framed::Line { line, used } => {
                let item = parse(line).and_then(|msg| self.handle(msg, reply));
                match item {
                    Some((msg, purpose)) => {
                        self.purpose = purpose;
                        Received {
                            used,
                            item: Some(Ok(msg)),
                            taken: false,
                        }
                    }
                    None => Received {
                        used,
                        item: None,
                        taken: true,
                    },
                }
            }
        }
    }

    /// [`IrcSession::receive`] as a [`Decoded`] step, for callers that want one shape (a
    /// fuzz target): what is answered locally is dropped.
    pub fn decode(&mut self, input: &[u8]) -> Decoded {
        let step = self.receive(input, &mut Vec::new());
        Decoded {
            used: step.used,
            item: step.item,
        }
    }

    fn server_line(&self, out: &mut Vec<u8>, command: &str, middle: &[&str], trailing: &str) {
        line(
            out,
            "",
            Source::Server(&self.ctx.server),
            command,
            middle,
            Some(trailing),
        );
    }

    fn num(&self, out: &mut Vec<u8>, code: &str, middle: &[&str], trailing: &str) {
        numeric(out, self.ctx, code, self.me(), middle, Some(trailing));
    }

    fn notice(&self, out: &mut Vec<u8>, text: &str) {
        text_lines(
            out,
            "",
            Source::Server(&self.ctx.server),
            "NOTICE",
            self.me(),
            text,
        );
    }

    /// Handles one parsed line: answered here, or turned into a message for the core.
    fn handle(&mut self, msg: Message, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        let registered = self.phase == Phase::Registered;
        match msg.command.as_str() {
            "CAP" => return self.cap(&msg, out),
            "PING" => {
                match msg.param(0) {
                    Some(token) => {
                        let server = self.ctx.server.clone();
                        self.server_line(out, "PONG", &[&server], token);
                    }
                    None => self.num(out, "409", &[], "No origin specified"),
                }
                return None;
            }
            "PONG" => {
                let nonce = msg.params.last().and_then(|n| n.parse().ok())?;
                return Some((ClientMsg::Pong { nonce }, Purpose::Other));
            }
            "QUIT" => {
                let reason = msg.param(0).filter(|r| !r.trim().is_empty());
                let quit = Command::Quit {
                    reason: reason.map(str::to_owned),
                };
                return Some((ClientMsg::Command(quit), Purpose::Other));
            }
            "NICK" => return self.nick(&msg, out),
            "USER" => {
                if registered || self.user {
                    self.num(out, "462", &[], "You may not reregister");
                } else if msg.params.len() < 4 || msg.params[3].is_empty() {
                    self.num(out, "461", &["USER"], "Not enough parameters");
                } else {
                    self.user = true;
                    return self.try_register(out);
                }
                return None;
            }
            "PASS" => {
                // A password with spaces sent without its `:` is still one password.
                let password = msg.params.join(" ");
                if password.is_empty() {
                    self.num(out, "461", &["PASS"], "Not enough parameters");
                    return None;
                }
                let password = password.as_str();
                if self.awaiting_password {
                    self.awaiting_password = false;
                    let say = ClientMsg::Say {
                        text: password.to_owned(),
                    };
                    return Some((say, Purpose::Register));
                }
                if registered || self.phase != Phase::Waiting {
                    self.num(out, "462", &[], "You may not reregister");
                    return None;
                }
                self.pass = Some(password.to_owned());
                return self.try_register(out);
            }
            "AUTHENTICATE" => return self.authenticate(&msg, out),
            _ if !registered => {
                self.num(out, "451", &[], "You have not registered");
                return None;
            }
            _ => {}
        }
        self.command(msg, out)
    }

    fn cap(&mut self, msg: &Message, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        // CAP names the client by its nick once it has given one, `*` before.
        let me = self.me().to_owned();
        let before = self.phase == Phase::Waiting;
        match msg.param(0).map(str::to_ascii_uppercase).as_deref() {
            Some("LS") => {
                self.negotiating |= before;
                if msg.param(1).and_then(|v| v.parse::<u32>().ok()) >= Some(302) {
                    self.v302 = true;
                    self.caps.set(Cap::CapNotify, true);
                }
                self.server_line(out, "CAP", &[&me, "LS"], &caps::ls(self.v302));
            }
            Some("LIST") => {
                let names = self.caps.names();
                self.server_line(out, "CAP", &[&me, "LIST"], &names);
            }
            Some("REQ") => {
                self.negotiating |= before;
                let list = msg.param(1).unwrap_or_default();
                match caps::request(self.caps, list) {
                    Some(caps) => {
                        self.caps = caps;
                        self.server_line(out, "CAP", &[&me, "ACK"], list);
                    }
                    None => self.server_line(out, "CAP", &[&me, "NAK"], list),
                }
            }
            Some("END") => {
                self.negotiating = false;
                return self.try_register(out);
            }
            _ => {
                let sub = msg.param(0).unwrap_or_default().to_owned();
                self.num(out, "410", &[&sub], "Invalid CAP command");
            }
        }
        None
    }

    fn nick(&mut self, msg: &Message, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        let Some(nick) = msg.param(0).map(str::trim).filter(|n| !n.is_empty()) else {
            self.num(out, "431", &[], "No nickname given");
            return None;
        };
        match self.phase {
            Phase::Waiting => {
                self.nick = Some(nick.to_owned());
                self.try_register(out)
            }
            Phase::Registered if nick.eq_ignore_ascii_case(self.me()) => None,
            Phase::Registered => {
                let nick = nick.to_owned();
                self.num(
                    out,
                    "447",
                    &[&nick],
                    "Names do not change on chatd: reconnect with the new name",
                );
                None
            }
            // A registered nick given without its password: another nick instead.
            Phase::LoggingIn if self.awaiting_password => {
                self.awaiting_password = false;
                self.nick = Some(nick.to_owned());
                let hello = ClientMsg::Hello {
                    name: nick.to_owned(),
                };
                Some((hello, Purpose::Register))
            }
            // The core is logging the user in, or did under the SASL account's name.
            Phase::LoggingIn | Phase::Welcomed => None,
        }
    }

    fn authenticate(&mut self, msg: &Message, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        let arg = msg.param(0).unwrap_or_default();
        if matches!(self.phase, Phase::Registered | Phase::Welcomed) || self.sasl == Sasl::Done {
            self.num(out, "907", &[], "You have already authenticated using SASL");
            return None;
        }
        if arg == "*" {
            self.sasl = Sasl::Idle;
            self.num(out, "906", &[], "SASL authentication aborted");
            return None;
        }
        match std::mem::replace(&mut self.sasl, Sasl::Idle) {
            Sasl::Idle | Sasl::Checking if arg.eq_ignore_ascii_case("PLAIN") => {
                self.sasl = Sasl::Reading(String::new());
                out.extend_from_slice(b"AUTHENTICATE +\r\n");
                None
            }
            Sasl::Idle | Sasl::Checking => {
                self.num(out, "908", &["PLAIN"], "are available SASL mechanisms");
                self.num(out, "904", &[], "SASL authentication failed");
                None
            }
            Sasl::Reading(mut data) => {
                if arg != "+" {
                    data.push_str(arg);
                }
                if arg.len() == 400 && data.len() < 4096 {
                    self.sasl = Sasl::Reading(data);
                    return None;
                }
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .ok();
                let mut parts = decoded.as_deref().unwrap_or_default().split(|&b| b == 0);
                let (_, name, password) = (parts.next(), parts.next(), parts.next());
                match (name, password, parts.next()) {
                    (Some(name), Some(password), None) if !name.is_empty() => {
                        self.sasl = Sasl::Checking;
                        self.phase = Phase::LoggingIn;
                        let login = ClientMsg::Login {
                            name: crate::proto::sanitize(name),
                            password: String::from_utf8_lossy(password).into_owned(),
                        };
                        Some((login, Purpose::Register))
                    }
                    _ => {
                        self.num(out, "904", &[], "SASL authentication failed");
                        None
                    }
                }
            }
            Sasl::Done => None,
        }
    }

    /// Asks the core to log the user in once NICK, USER (and CAP END) are in; after a SASL
    /// login, sends the welcome burst instead.
    fn try_register(&mut self, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        if self.negotiating || !self.user {
            return None;
        }
        match self.phase {
            Phase::Welcomed => {
                self.burst(out);
                None
            }
            Phase::Waiting => {
                let name = self.nick.clone()?;
                self.phase = Phase::LoggingIn;
                let msg = match self.pass.take() {
                    Some(password) => ClientMsg::Login { name, password },
                    None => ClientMsg::Hello { name },
                };
                Some((msg, Purpose::Register))
            }
            Phase::LoggingIn | Phase::Registered => None,
        }
    }

    /// 001 to 005, LUSERS, the MOTD, and the default room shown as joined.
    fn burst(&mut self, out: &mut Vec<u8>) {
        self.phase = Phase::Registered;
        let ctx = self.ctx;
        let me = self.me().to_owned();
        let welcome = format!("Welcome to the {} IRC Network {me}!{me}@{HOST}", ctx.server);
        self.num(out, "001", &[], &welcome);
        let host = format!(
            "Your host is {}, running version {}",
            ctx.server, ctx.version
        );
        self.num(out, "002", &[], &host);
        let started = Stamp::new(ctx.started, 0, 0, 0);
        let created = format!("This server was created {}", server_time(&started));
        self.num(out, "003", &[], &created);
        numeric(
            out,
            ctx,
            "004",
            &me,
            &[&ctx.server, &ctx.version, "o", "bnot", "bo"],
            None,
        );
        let isupport = format!("{ISUPPORT} NETWORK={}", ctx.server);
        let words: Vec<&str> = isupport.split(' ').collect();
        numeric(
            out,
            ctx,
            "005",
            &me,
            &words,
            Some("are supported by this server"),
        );
        self.lusers(self.online, out);
        self.num(out, "422", &[], "MOTD File is missing");
        self.pending
            .push_back((ClientMsg::Command(Command::WhoAmI), Purpose::Role));
        if ctx.autojoin {
            // Its JOIN follows the user modes (the answer to the role asked for above); the
            // default room's history waits for its names.
            self.joining = Some(ctx.default_room.clone());
        }
    }

    /// What a client is sent after its JOIN line: the topic (if set), the names.
    fn after_join(&mut self, room: &str) {
        let topic = Command::In {
            room: room.to_owned(),
            command: Box::new(Command::Room(RoomCommand::Topic { text: None })),
        };
        self.pending
            .push_back((ClientMsg::Command(topic), Purpose::TopicOnJoin));
        let who = RoomCommand::Who {
            room: Some(room.to_owned()),
        };
        self.pending.push_back((
            ClientMsg::Command(Command::Room(who)),
            Purpose::Names(room.to_owned()),
        ));
    }

    /// A command of a registered user.
    fn command(&mut self, msg: Message, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        let cmd = |c: Command| ClientMsg::Command(c);
        let room_cmd = |c: RoomCommand| ClientMsg::Command(Command::Room(c));
        let need = |n: usize| msg.params.len() >= n;
        let name = msg.command.as_str();
        if !need(min_params(name)) {
            self.num(out, "461", &[name], "Not enough parameters");
            return None;
        }
        if name == "PRIVMSG" && is_plain_room_line(&msg.params) {
            // The usual line of a busy channel: its two strings are moved into the message
            // (the general path below copies the text three times, the target twice).
            let mut params = msg.params;
            let text = params.pop().unwrap_or_default();
            let room = params.pop().unwrap_or_default();
            let say = Command::In {
                room,
                command: Box::new(Command::Broadcast { text }),
            };
            return Some((cmd(say), Purpose::Privmsg));
        }
        let p0 = msg.param(0).unwrap_or_default().to_owned();
        let mut items: Vec<(ClientMsg, Purpose)> = Vec::new();
        match name {
            "JOIN" if p0 == "0" => {
                self.notice(out, "JOIN 0 is not supported: PART each channel");
            }
            "JOIN" => {
                for room in p0.split(',').filter(|r| !r.is_empty()) {
                    let join = room_cmd(RoomCommand::Join {
                        room: room.to_owned(),
                    });
                    items.push((join, Purpose::Join(room.to_owned())));
                }
            }
            "PART" => {
                let reason = msg.param(1).filter(|r| !r.is_empty()).map(str::to_owned);
                for room in p0.split(',').filter(|r| !r.is_empty()) {
                    let part = room_cmd(RoomCommand::Part {
                        room: Some(room.to_owned()),
                        reason: reason.clone(),
                    });
                    items.push((part, Purpose::Part));
                }
            }
            "PRIVMSG" | "NOTICE" => {
                let notice = name == "NOTICE";
                let purpose = if notice {
                    Purpose::Notice
                } else {
                    Purpose::Privmsg
                };
                let Some(text) = msg.param(1).filter(|t| !t.is_empty()) else {
                    if !notice {
                        if msg.params.is_empty() {
                            self.num(out, "411", &[], "No recipient given (PRIVMSG)");
                        } else {
                            self.num(out, "412", &[], "No text to send");
                        }
                    }
                    return None;
                };
                let (action, text) = match text
                    .strip_prefix("\u{1}ACTION ")
                    .map(|t| t.trim_end_matches('\u{1}'))
                {
                    Some(action) => (true, action.to_owned()),
                    None if text.starts_with('\u{1}') => return None,
                    None => (false, text.to_owned()),
                };
                // No CTCP marker reaches the other modes.
                let text = text.replace('\u{1}', "");
                for target in p0.split(',').filter(|t| !t.is_empty()) {
                    let item = if target.starts_with('#') {
                        let inner = if action {
                            Command::Room(RoomCommand::Me { text: text.clone() })
                        } else {
                            Command::Broadcast { text: text.clone() }
                        };
                        cmd(Command::In {
                            room: target.to_owned(),
                            command: Box::new(inner),
                        })
                    } else {
                        let text = if action {
                            format!("* {} {text}", self.me())
                        } else {
                            text.clone()
                        };
                        if self.echoes() {
                            // A direct message has no room line to share: it is echoed here.
                            let me = self.me().to_owned();
                            text_lines(out, "", Source::User(&me), name, target, &text);
                        }
                        cmd(Command::Dm {
                            to: target.to_owned(),
                            text,
                        })
                    };
                    items.push((item, purpose.clone()));
                }
            }
            "TOPIC" => {
                let text = msg.param(1).map(str::to_owned);
                let topic = Command::In {
                    room: p0.clone(),
                    command: Box::new(Command::Room(RoomCommand::Topic { text })),
                };
                items.push((cmd(topic), Purpose::Topic(p0.clone())));
            }
            "NAMES" => {
                let rooms = if p0.is_empty() {
                    self.ctx.default_room.clone()
                } else {
                    p0.clone()
                };
                for room in rooms.split(',').filter(|r| !r.is_empty()) {
                    let who = room_cmd(RoomCommand::Who {
                        room: Some(room.to_owned()),
                    });
                    items.push((who, Purpose::Names(room.to_owned())));
                }
            }
            "LIST" => {
                let named = p0.split(',').filter(|r| !r.is_empty());
                let named = named.map(str::to_owned).collect();
                items.push((room_cmd(RoomCommand::List), Purpose::List(named)));
            }
            "KICK" => {
                let reason = msg.param(2).filter(|r| !r.is_empty()).map(str::to_owned);
                let nick = msg.param(1).unwrap_or_default();
                for target in nick.split(',').filter(|t| !t.is_empty()) {
                    let remove = Command::In {
                        room: p0.clone(),
                        command: Box::new(Command::Room(RoomCommand::Remove {
                            name: target.to_owned(),
                            reason: reason.clone(),
                        })),
                    };
                    items.push((cmd(remove), Purpose::Kick));
                }
            }
            "MODE" => return self.mode(&msg, out),
            "AWAY" => {
                let away = match msg.param(0).filter(|r| !r.trim().is_empty()) {
                    Some(reason) => Command::Away {
                        reason: Some(reason.to_owned()),
                    },
                    None => Command::Back,
                };
                items.push((cmd(away), Purpose::Other));
            }
            "WHO" => {
                let mask = if p0.is_empty() { "*".to_owned() } else { p0 };
                if mask.starts_with('#') {
                    let who = room_cmd(RoomCommand::Who {
                        room: Some(mask.clone()),
                    });
                    items.push((who, Purpose::Who(mask)));
                } else {
                    items.push((cmd(Command::Users), Purpose::WhoNick(mask)));
                }
            }
            "WHOIS" if msg.params.is_empty() => self.num(out, "431", &[], "No nickname given"),
            "WHOIS" => {
                let nick = msg.params.last().cloned().unwrap_or_default();
                let nick = nick.split(',').next().unwrap_or_default().to_owned();
                let whois = Command::Whois { name: nick.clone() };
                items.push((cmd(whois), Purpose::Whois(nick)));
            }
            "USERHOST" => {
                let nicks = msg.params.iter().take(5).cloned().collect();
                items.push((cmd(Command::Users), Purpose::Userhost(nicks)));
            }
            "ISON" => {
                let nicks = msg
                    .params
                    .iter()
                    .flat_map(|p| p.split(' '))
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect();
                items.push((cmd(Command::Users), Purpose::Ison(nicks)));
            }
            "LUSERS" => items.push((cmd(Command::Users), Purpose::Lusers)),
            "MOTD" => self.num(out, "422", &[], "MOTD File is missing"),
            "OPER" => items.push((cmd(Command::WhoAmI), Purpose::Oper)),
            "VERSION" => {
                let (version, server) = (self.ctx.version.clone(), self.ctx.server.clone());
                self.num(out, "351", &[&version, &server], "chatd");
            }
            "TIME" => items.push((cmd(Command::Time), Purpose::Other)),
            "CHATHISTORY" => return self.chathistory(&msg, out),
            _ => {
                let name = msg.command.clone();
                self.num(out, "421", &[&name], "Unknown command");
            }
        }
        let mut items = items.into_iter();
        let first = items.next();
        self.pending.extend(items);
        first
    }

    fn mode(&mut self, msg: &Message, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        let target = msg.param(0).unwrap_or_default().to_owned();
        let change = msg.param(1).unwrap_or_default().to_owned();
        if !target.starts_with('#') {
            if !target.eq_ignore_ascii_case(self.me()) {
                // 401 if no one has the nick, else 502: the core is asked which.
                let whois = Command::Whois { name: target };
                return Some((ClientMsg::Command(whois), Purpose::UserModeOf));
            } else if change.is_empty() {
                let modes = if self.admin { "+o" } else { "+" };
                numeric(out, self.ctx, "221", self.me(), &[modes], None);
            }
            // A change of one's own modes (+i, ...) changes nothing here.
            return None;
        }
        match change.as_str() {
            "" => {
                // The room's members are asked for only to learn that it exists.
                let who = RoomCommand::Who {
                    room: Some(target.clone()),
                };
                return Some((ClientMsg::Command(Command::Room(who)), Purpose::ModeOf));
            }
            "b" | "+b" if msg.params.len() == 2 => {
                self.num(out, "368", &[&target], "End of channel ban list")
            }
            "e" | "+e" if msg.params.len() == 2 => {
                self.num(out, "349", &[&target], "End of channel exception list")
            }
            "I" | "+I" if msg.params.len() == 2 => {
                self.num(out, "347", &[&target], "End of channel invite list")
            }
            "+o" => {
                let Some(name) = msg.param(2) else {
                    self.num(out, "461", &["MODE"], "Not enough parameters");
                    return None;
                };
                let moderate = Command::In {
                    room: target.clone(),
                    command: Box::new(Command::Room(RoomCommand::Mod {
                        name: name.to_owned(),
                    })),
                };
                return Some((ClientMsg::Command(moderate), Purpose::Mode));
            }
            other => {
                let letter = other.trim_start_matches(['+', '-']);
                let letter = letter.chars().next().map(String::from).unwrap_or_default();
                self.num(
                    out,
                    "472",
                    &[&letter],
                    "is unknown mode char to me (chatd rooms have +n, +t and +o only)",
                );
            }
        }
        None
    }

    /// Appends what `msg`, sent by the core to this user alone, is in IRC.
    pub fn encode(&mut self, msg: &ServerMsg, out: &mut Vec<u8>) {
        let batching = self.history_batch.is_some() && is_history(msg);
        if let Some((id, left)) = self.history_batch.take_if(|_| batching) {
            let mut lines = Vec::new();
            let wire = IrcWire {
                tags: true,
                ..self.wire()
            };
            encode::encode(wire, None, msg, self.me(), &mut lines);
            batched(&id, &lines, out);
            match left.saturating_sub(1) {
                0 => self.close_batch(&id, out),
                left => self.history_batch = Some((id, left)),
            }
            return;
        }
        if self.joining.is_some() && is_history(msg) {
            let mut held = std::mem::take(&mut self.held);
            self.encode_now(msg, &mut held);
            self.held = held;
            return;
        }
        self.encode_now(msg, out);
    }

    fn encode_now(&mut self, msg: &ServerMsg, out: &mut Vec<u8>) {
        let ctx = self.ctx;
        let me = self.me().to_owned();
        match msg {
            ServerMsg::Greeting { .. } | ServerMsg::NamePrompt | ServerMsg::Pong { .. } => {}
            ServerMsg::PasswordPrompt if self.phase == Phase::LoggingIn => {
                self.awaiting_password = true;
                self.notice(
                    out,
                    "This name is registered: send its password with /quote PASS <password>, \
                     or reconnect with a password (PASS) or SASL",
                );
            }
            ServerMsg::Welcome { name, others, more } => {
                self.online = others.len() + more + 1;
                self.nick = Some(name.clone());
                self.awaiting_password = false;
                if self.sasl == Sasl::Checking {
                    self.sasl = Sasl::Done;
                    let mask = format!("{name}!{name}@{HOST}");
                    let text = format!("You are now logged in as {name}");
                    numeric(out, ctx, "900", name, &[&mask, name], Some(&text));
                    numeric(
                        out,
                        ctx,
                        "903",
                        name,
                        &[],
                        Some("SASL authentication successful"),
                    );
                }
                if self.negotiating || !self.user {
                    self.phase = Phase::Welcomed;
                } else {
                    self.burst(out);
                }
            }
            ServerMsg::Reject(reject) => self.reject(reject, out),
            ServerMsg::Bye => {
                self.error_sent = true;
                encode::error(out, &format!("Closing Link: {me} (Quit)"));
            }
            ServerMsg::Kicked { by, reason } => {
                self.error_sent = true;
                let why = match reason {
                    Some(reason) => format!("Closing Link: {me} (Kicked by {by}: {reason})"),
                    None => format!("Closing Link: {me} (Kicked by {by})"),
                };
                encode::error(out, &why);
            }
            ServerMsg::Event(crate::proto::msg::Event::Shutdown) => {
                self.error_sent = true;
                encode::error(out, "Server shutting down");
            }
            ServerMsg::KeepAlive { nonce } => {
                out.extend_from_slice(format!("PING :{nonce}\r\n").as_bytes())
            }
            ServerMsg::Done(done) => self.done(done, out),
            ServerMsg::Notice(Notice::RemovedFromRoom { .. }) => {}
            // The answer to a CHATHISTORY (IRC users have no /history): its lines follow.
            ServerMsg::Notice(Notice::HistoryPage { room, count, .. }) => {
                if self.caps.has(Cap::Batch) {
                    let id = self.open_batch(room, out);
                    match count {
                        0 => self.close_batch(&id, out),
                        &count => self.history_batch = Some((id, count)),
                    }
                }
            }
            ServerMsg::Notice(banned @ Notice::Banned { .. }) => {
                self.num(out, "465", &[], &banned.to_string())
            }
            ServerMsg::Topic { room, topic } => match (topic, &self.purpose) {
                (Some(topic), _) => {
                    self.num(out, "332", &[room], &topic.text);
                    let when = topic.at.unix.to_string();
                    numeric(out, ctx, "333", &me, &[room, &topic.by, &when], None);
                }
                (None, Purpose::TopicOnJoin) => {}
                (None, _) => self.num(out, "331", &[room], "No topic is set"),
            },
            ServerMsg::Who { room, .. } if self.purpose == Purpose::ModeOf => {
                numeric(out, ctx, "324", &me, &[room, "+nt"], None);
                let started = ctx.started.to_string();
                numeric(out, ctx, "329", &me, &[room, &started], None);
            }
            ServerMsg::Who { room, members } => match &self.purpose {
                Purpose::Who(mask) => {
                    for m in members {
                        let flags =
                            format!("{}{}", if m.away.is_some() { "G" } else { "H" }, prefix(m));
                        who_line(out, ctx, &me, room, &m.name, &flags);
                    }
                    let mask = mask.clone();
                    self.num(out, "315", &[&mask], "End of WHO list");
                }
                _ => {
                    names(out, ctx, &me, room, members);
                    if self
                        .joining
                        .as_ref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(room))
                    {
                        self.joining = None;
                        self.release_history(room, out);
                    }
                }
            },
            ServerMsg::Users { users } => self.users(users, out),
            ServerMsg::Time { at } => {
                let when = at.to_local();
                let text = format!(
                    "{:04}-{:02}-{:02} {} (UTC{})",
                    when.year(),
                    u8::from(when.month()),
                    when.day(),
                    at.hms(),
                    when.offset()
                );
                let server = ctx.server.clone();
                self.num(out, "391", &[&server], &text);
            }
            ServerMsg::UserInfo { .. } if self.purpose == Purpose::UserModeOf => {
                self.num(out, "502", &[], "Can't change mode for other users")
            }
            ServerMsg::UserInfo {
                user,
                registered,
                rooms,
                idle_secs,
                since,
            } => {
                let name = user.name.as_str();
                numeric(out, ctx, "311", &me, &[name, name, HOST, "*"], Some(name));
                let info = format!("chatd {}", ctx.version);
                numeric(out, ctx, "312", &me, &[name, &ctx.server], Some(&info));
                if user.role == Role::Admin {
                    numeric(out, ctx, "313", &me, &[name], Some("is an IRC operator"));
                }
                let (idle, signon) = (idle_secs.to_string(), since.unix.to_string());
                numeric(
                    out,
                    ctx,
                    "317",
                    &me,
                    &[name, &idle, &signon],
                    Some("seconds idle, signon time"),
                );
                if !rooms.is_empty() {
                    // Admins moderate every room.
                    let mark = if user.role == Role::Admin { "@" } else { "" };
                    let list: Vec<String> = rooms.iter().map(|r| format!("{mark}{r}")).collect();
                    numeric(out, ctx, "319", &me, &[name], Some(&list.join(" ")));
                }
                if let Some(reason) = &user.away {
                    numeric(out, ctx, "301", &me, &[name], Some(reason));
                }
                if *registered {
                    numeric(out, ctx, "330", &me, &[name, name], Some("is logged in as"));
                }
                numeric(out, ctx, "318", &me, &[name], Some("End of /WHOIS list"));
            }
            ServerMsg::Rooms { rooms } if matches!(self.purpose, Purpose::List(_)) => {
                let named = match &self.purpose {
                    Purpose::List(named) => named.clone(),
                    _ => Vec::new(),
                };
                self.num(out, "321", &["Channel"], "Users  Name");
                let asked = |name: &str| {
                    named.is_empty() || named.iter().any(|n| n.eq_ignore_ascii_case(name))
                };
                for room in rooms.iter().filter(|room| asked(&room.name)) {
                    let count = room.members.to_string();
                    let topic = room.topic.as_deref().unwrap_or_default();
                    self.num(out, "322", &[&room.name, &count], topic);
                }
                self.num(out, "323", &[], "End of /LIST");
            }
            ServerMsg::Away { name, reason } => {
                if self.purpose != Purpose::Notice {
                    self.num(out, "301", &[name], reason);
                }
            }
            ServerMsg::WhoAmI { role, .. } => {
                self.admin = *role == Role::Admin;
                match self.purpose {
                    Purpose::Role => {
                        if self.admin {
                            line(out, "", Source::User(&me), "MODE", &[&me], Some("+o"));
                        }
                        if ctx.autojoin {
                            self.lobby_shown = true;
                            let room = ctx.default_room.clone();
                            line(out, "", Source::User(&me), "JOIN", &[&room], None);
                            self.after_join(&room);
                        }
                    }
                    Purpose::Oper if self.admin => {
                        self.num(out, "381", &[], "You are now an IRC operator")
                    }
                    Purpose::Oper => self.num(
                        out,
                        "491",
                        &[],
                        "Only chatd admins are operators: ask an admin for the role",
                    ),
                    _ => encode::notices(ctx, &me, msg, out),
                }
            }
            ServerMsg::Direct { at, from, text } => {
                let tags = if self.wire().tags {
                    format!("@time={} ", server_time(at))
                } else {
                    String::new()
                };
                text_lines(out, &tags, Source::User(from), "PRIVMSG", &me, text);
            }
            other => encode::encode(self.wire(), None, other, &me, out),
        }
    }

    fn done(&mut self, done: &Done, out: &mut Vec<u8>) {
        let me = self.me().to_owned();
        match done {
            Done::JoinedRoom { room, .. } => {
                line(out, "", Source::User(&me), "JOIN", &[&room.name], None);
                self.joining = Some(room.name.clone());
                // The topic came with the join, if there is one: only the names are asked for,
                // before the next room of the same JOIN is joined (each JOIN line is followed
                // by its own names, and the history held is of this room).
                let who = RoomCommand::Who {
                    room: Some(room.name.clone()),
                };
                self.pending.push_front((
                    ClientMsg::Command(Command::Room(who)),
                    Purpose::Names(room.name.clone()),
                ));
            }
            Done::SwitchedRoom { .. } | Done::PartedRoom { .. } => {}
            Done::Away => self.num(out, "306", &[], "You have been marked as being away"),
            Done::Back => self.num(out, "305", &[], "You are no longer marked as being away"),
            other => encode::notices(self.ctx, &me, &ServerMsg::Done(other.clone()), out),
        }
    }

    fn users(&mut self, users: &[UserEntry], out: &mut Vec<u8>) {
        let ctx = self.ctx;
        let me = self.me().to_owned();
        let find = |nick: &str| users.iter().find(|u| u.name.eq_ignore_ascii_case(nick));
        match self.purpose.clone() {
            Purpose::Lusers => self.lusers(users.len(), out),
            Purpose::WhoNick(mask) => {
                let all = mask == "*" || mask == "0";
                for user in users
                    .iter()
                    .filter(|u| all || u.name.eq_ignore_ascii_case(&mask))
                {
                    let flags = format!(
                        "{}{}",
                        if user.away.is_some() { "G" } else { "H" },
                        if user.role == Role::Admin { "*" } else { "" }
                    );
                    who_line(out, ctx, &me, "*", &user.name, &flags);
                }
                self.num(out, "315", &[&mask], "End of WHO list");
            }
            Purpose::Userhost(nicks) => {
                let found: Vec<String> = nicks
                    .iter()
                    .filter_map(|n| find(n))
                    .map(|u| {
                        format!(
                            "{}{}={}{}@{HOST}",
                            u.name,
                            if u.role == Role::Admin { "*" } else { "" },
                            if u.away.is_some() { '-' } else { '+' },
                            u.name
                        )
                    })
                    .collect();
                self.num(out, "302", &[], &found.join(" "));
            }
            Purpose::Ison(nicks) => {
                let on: Vec<&str> = nicks
                    .iter()
                    .filter_map(|n| find(n))
                    .map(|u| u.name.as_str())
                    .collect();
                self.num(out, "303", &[], &on.join(" "));
            }
            _ => encode::notices(
                ctx,
                &me,
                &ServerMsg::Users {
                    users: users.to_vec(),
                },
                out,
            ),
        }
    }

    /// The history held while `room`'s names were awaited: as a `chathistory` batch for a
    /// client that asked for batches, else as it is.
    fn release_history(&mut self, room: &str, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return;
        }
        if !self.caps.has(Cap::Batch) {
            out.extend_from_slice(&held);
            return;
        }
        let id = self.open_batch(room, out);
        batched(&id, &held, out);
        self.close_batch(&id, out);
    }

    /// Opens a `chathistory` batch of `target`; returns its id.
    fn open_batch(&mut self, target: &str, out: &mut Vec<u8>) -> String {
        self.batches += 1;
        let id = format!("h{}", self.batches);
        let open = format!("+{id}");
        let server = Source::Server(&self.ctx.server);
        line(
            out,
            "",
            server,
            "BATCH",
            &[&open, "chathistory", target],
            None,
        );
        id
    }

    fn close_batch(&self, id: &str, out: &mut Vec<u8>) {
        let close = format!("-{id}");
        line(
            out,
            "",
            Source::Server(&self.ctx.server),
            "BATCH",
            &[&close],
            None,
        );
    }

    /// CHATHISTORY SUBCOMMAND TARGET REFERENCE [REFERENCE] LIMIT, for a channel: a look-up for
    /// the core; what is wrong with it, a FAIL.
    fn chathistory(&mut self, msg: &Message, out: &mut Vec<u8>) -> Option<(ClientMsg, Purpose)> {
        let sub = msg.param(0).unwrap_or_default().to_ascii_uppercase();
        let server = self.ctx.server.clone();
        let fail = |out: &mut Vec<u8>, code: &str, context: &[&str], text: &str| {
            let mut middle = vec!["CHATHISTORY", code, sub.as_str()];
            middle.extend_from_slice(context);
            line(
                out,
                "",
                Source::Server(&server),
                "FAIL",
                &middle,
                Some(text),
            );
        };
        let needed = match sub.as_str() {
            "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 4,
            "BETWEEN" => 5,
            _ => {
                fail(out, "UNKNOWN_COMMAND", &[], "Unknown command");
                return None;
            }
        };
        if msg.params.len() < needed {
            fail(out, "NEED_MORE_PARAMS", &[], "Missing parameters");
            return None;
        }
        if sub == "TARGETS" {
            fail(
                out,
                "INVALID_PARAMS",
                &[],
                "TARGETS is not supported: ask for a channel's history",
            );
            return None;
        }
        let target = msg.params[1].clone();
        if !target.starts_with('#') {
            let text = "Only channels have a history here";
            fail(out, "INVALID_TARGET", &[&target], text);
            return None;
        }
        let point = |word: &str| match word.split_once('=') {
            Some(("msgid", id)) => LineId::parse(id).map(HistoryRef::Id),
            Some(("timestamp", at)) => encode::parse_server_time(at).map(HistoryRef::Millis),
            _ => None,
        };
        let refs = &msg.params[2..needed - 1];
        let mut points = Vec::new();
        for word in refs {
            match point(word) {
                Some(p) => points.push(Some(p)),
                None if sub == "LATEST" && word == "*" => points.push(None),
                None => {
                    fail(out, "INVALID_PARAMS", &[word], "Invalid message reference");
                    return None;
                }
            }
        }
        let limit_word = &msg.params[needed - 1];
        let Some(limit) = limit_word.parse::<usize>().ok().filter(|&n| n > 0) else {
            fail(out, "INVALID_PARAMS", &[limit_word], "Invalid limit");
            return None;
        };
        let span = match (sub.as_str(), points.as_slice()) {
            ("LATEST", &[p]) => Span::Latest(p),
            ("BEFORE", &[Some(p)]) => Span::Before(p),
            ("AFTER", &[Some(p)]) => Span::After(p),
            ("AROUND", &[Some(p)]) => Span::Around(p),
            ("BETWEEN", &[Some(a), Some(b)]) => Span::Between(a, b),
            _ => return None,
        };
        let look_up = Command::ChatHistory {
            room: target.clone(),
            span,
            limit,
        };
        Some((
            ClientMsg::Command(look_up),
            Purpose::ChatHistory(sub, target),
        ))
    }

    /// LUSERS (251, 255) for `online` users.
    fn lusers(&self, online: usize, out: &mut Vec<u8>) {
        let there = format!("There are {online} users and 0 invisible on 1 servers");
        self.num(out, "251", &[], &there);
        let have = format!("I have {online} clients and 0 servers");
        self.num(out, "255", &[], &have);
    }

    /// A refusal, as the numeric for the command it answers.
    fn reject(&mut self, reject: &Reject, out: &mut Vec<u8>) {
        let text = reject.to_string();
        if self.purpose == Purpose::Register {
            return self.refused_login(reject, out);
        }
        let purpose = self.purpose.clone();
        match (reject, &purpose) {
            (Reject::BadInput(DecodeError::LineTooLong { .. }), _) => {
                self.num(out, "417", &[], "Input line was too long")
            }
            (_, Purpose::ChatHistory(sub, target)) => {
                let code = match reject {
                    Reject::NoSuchRoom { .. }
                    | Reject::RoomNameInvalid { .. }
                    | Reject::NotInRoom { .. } => "INVALID_TARGET",
                    _ => "MESSAGE_ERROR",
                };
                let server = Source::Server(&self.ctx.server);
                let middle = ["CHATHISTORY", code, sub, target];
                line(out, "", server, "FAIL", &middle, Some(&text));
            }
            (_, Purpose::Notice) => {}
            (Reject::UnknownUser { name }, Purpose::Whois(_)) => {
                self.num(out, "401", &[name], "No such nick/channel");
                self.num(out, "318", &[name], "End of /WHOIS list");
            }
            // No one of that name is online, and a guest's messages are not kept for later.
            (Reject::UnknownUser { name } | Reject::OfflineGuest { name }, _) => {
                self.num(out, "401", &[name], "No such nick/channel")
            }
            (Reject::NoSuchRoom { room } | Reject::RoomNameInvalid { room }, Purpose::Names(_)) => {
                self.num(out, "366", &[room], "End of /NAMES list");
                if self.joining.take().is_some() {
                    self.release_history(room, out);
                }
            }
            (Reject::NoSuchRoom { room } | Reject::RoomNameInvalid { room }, Purpose::Who(_)) => {
                self.num(out, "315", &[room], "End of WHO list")
            }
            // A message's target that is no one and no room: RFC 2812 has 401 for both.
            (Reject::NoSuchRoom { room } | Reject::RoomNameInvalid { room }, Purpose::Privmsg) => {
                self.num(out, "401", &[room], "No such nick/channel")
            }
            (Reject::NoSuchRoom { room } | Reject::RoomNameInvalid { room }, _) => {
                self.num(out, "403", &[room], "No such channel")
            }
            (Reject::RoomCreationClosed { room }, _) => self.num(out, "403", &[room], &text),
            (Reject::NotInRoom { room }, Purpose::Privmsg) => {
                self.num(out, "404", &[room], "Cannot send to channel")
            }
            (Reject::NotInRoom { room }, _) => {
                self.num(out, "442", &[room], "You're not on that channel")
            }
            // Everyone is in the default room; a client not shown it (--irc-no-autojoin) joins
            // it in its own eyes now.
            (Reject::AlreadyInRoom { room }, Purpose::Join(_))
                if !self.lobby_shown && room.eq_ignore_ascii_case(&self.ctx.default_room) =>
            {
                self.lobby_shown = true;
                let me = self.me().to_owned();
                line(out, "", Source::User(&me), "JOIN", &[room], None);
                self.after_join(room);
            }
            (Reject::AlreadyInRoom { .. } | Reject::AlreadyModerator { .. }, _) => {}
            (Reject::NotModerator { room }, _) => {
                self.num(out, "482", &[room], "You're not channel operator")
            }
            (Reject::UserNotInRoom { name, room }, _) => {
                self.num(out, "441", &[name, room], "They aren't on that channel")
            }
            (Reject::TooManyRoomsForUser { .. }, Purpose::Join(room)) => {
                self.num(out, "405", &[room], "You have joined too many channels")
            }
            (Reject::PermissionDenied, _) => self.num(
                out,
                "481",
                &[],
                "Permission Denied- You're not an IRC operator",
            ),
            (Reject::TooMuchBadInput | Reject::TooManyFailures, _) => {
                self.error_sent = true;
                encode::error(out, &text);
            }
            _ => self.notice(out, &text),
        }
    }

    /// A refusal of the login: the name, the password, or the connection itself.
    fn refused_login(&mut self, reject: &Reject, out: &mut Vec<u8>) {
        let text = reject.to_string();
        let sasl = self.sasl == Sasl::Checking;
        self.phase = Phase::Waiting;
        self.awaiting_password = false;
        let nick = self.nick.clone().unwrap_or_default();
        match reject {
            _ if sasl => {
                self.sasl = Sasl::Idle;
                self.notice(out, &text);
                self.num(out, "904", &[], "SASL authentication failed");
            }
            Reject::NameTaken => {
                self.nick = None;
                self.num(out, "433", &[&nick], "Nickname is already in use");
            }
            Reject::NameInvalid | Reject::NameReserved => {
                self.nick = None;
                let why = format!("Erroneous nickname: {text}");
                self.num(out, "432", &[&nick], &why);
            }
            Reject::Banned { .. } => {
                self.nick = None;
                let why = format!("You are banned from this server: {text}");
                self.num(out, "465", &[], &why);
            }
            Reject::WrongPassword
            | Reject::NotRegistered { .. }
            | Reject::AccountRequired
            | Reject::PlainPassword
            | Reject::TooManyAttempts { .. }
            | Reject::Busy => {
                self.notice(out, &text);
                self.num(out, "464", &[], "Password incorrect");
            }
            Reject::NameTimeout
            | Reject::ServerFull
            | Reject::TooManyFromAddress
            | Reject::TooManyFailures
            | Reject::TooMuchBadInput => {
                self.error_sent = true;
                encode::error(out, &text);
            }
            Reject::BadInput(DecodeError::LineTooLong { .. }) => {
                self.phase = Phase::LoggingIn;
                self.num(out, "417", &[], "Input line was too long");
            }
            _ => {
                self.phase = Phase::LoggingIn;
                self.notice(out, &text);
            }
        }
    }

    /// The last line of a connection the server closes for `why`, unless one was sent.
    pub fn seal(&mut self, why: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.error_sent {
            self.error_sent = true;
            encode::error(&mut out, &format!("Closing Link: {} ({why})", self.me()));
        }
        out
    }
}

/// Whether `msg` is a line said before the user joined (shown after a JOIN's names).
fn is_history(msg: &ServerMsg) -> bool {
    match msg {
        ServerMsg::Line { msg, .. } => is_history(msg),
        ServerMsg::Backlog { .. } | ServerMsg::Gap { .. } => true,
        ServerMsg::Room { line, .. } => matches!(line, crate::proto::msg::RoomLine::History { .. }),
        _ => false,
    }
}

/// Appends `lines` (whole IRC lines) to `out`, each tagged as part of batch `id`.
fn batched(id: &str, lines: &[u8], out: &mut Vec<u8>) {
    for l in lines.split_inclusive(|&b| b == b'\n') {
        match l.strip_prefix(b"@") {
            Some(tags) => {
                out.extend_from_slice(format!("@batch={id};").as_bytes());
                out.extend_from_slice(tags);
            }
            None => {
                out.extend_from_slice(format!("@batch={id} ").as_bytes());
                out.extend_from_slice(l);
            }
        }
    }
}

/// Whether PRIVMSG parameters are one room and text with no CTCP marker: the general path gives
/// them one `In` message with the text as it is.
fn is_plain_room_line(params: &[String]) -> bool {
    match params {
        [target, text] => {
            target.starts_with('#')
                && !target.contains(',')
                && !text.is_empty()
                && memchr::memchr(1, text.as_bytes()).is_none()
        }
        _ => false,
    }
}

/// Parameters each command needs at least.
fn min_params(command: &str) -> usize {
    match command {
        "KICK" => 2,
        "OPER" => 2,
        "JOIN" | "PART" | "TOPIC" | "MODE" | "USERHOST" | "ISON" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{LineId, RoomTag};

    fn session() -> IrcSession {
        IrcSession::new(IrcContext::leak("irc.test", "#lobby", 0, true))
    }

    /// Feeds `input` whole; returns the messages for the core and the local answers.
    fn feed(s: &mut IrcSession, input: &str) -> (Vec<ClientMsg>, String) {
        let mut rest = input.as_bytes();
        let mut msgs = Vec::new();
        let mut reply = Vec::new();
        loop {
            let step = s.receive(rest, &mut reply);
            rest = &rest[step.used..];
            match step.item {
                Some(Ok(msg)) => msgs.push(msg),
                Some(Err(e)) => panic!("{e}"),
                None if step.taken => {}
                None => break,
            }
        }
        (msgs, String::from_utf8(reply).expect("UTF-8"))
    }

    fn encoded(s: &mut IrcSession, msg: ServerMsg) -> String {
        let mut out = Vec::new();
        s.encode(&msg, &mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    fn welcome(name: &str) -> ServerMsg {
        ServerMsg::Welcome {
            name: name.into(),
            others: vec![],
            more: 0,
        }
    }

    #[test]
    fn the_cluster_notices_and_refusal_come_as_server_notices_with_the_text_modes_words() {
        let mut s = session();
        feed(&mut s, "NICK alice\r\nUSER a 0 * :A\r\n");
        encoded(&mut s, welcome("alice"));
        for (msg, words) in [
            (
                ServerMsg::Notice(Notice::ClusterDegraded),
                Notice::ClusterDegraded.to_string(),
            ),
            (
                ServerMsg::Notice(Notice::ClusterRestored),
                Notice::ClusterRestored.to_string(),
            ),
            (
                ServerMsg::Reject(Reject::Degraded),
                Reject::Degraded.to_string(),
            ),
        ] {
            let out = encoded(&mut s, msg);
            assert!(out.starts_with(":irc.test NOTICE alice :"), "{out:?}");
            assert!(out.contains(&words), "{out:?}");
            assert!(out.split_terminator("\r\n").all(|l| l.len() + 2 <= 512));
        }
    }

    #[test]
    fn nick_and_user_become_the_cores_login_and_cap_holds_it_until_end() {
        let mut s = session();
        let (msgs, reply) = feed(&mut s, "NICK alice\r\nUSER a 0 * :A\r\n");
        assert_eq!(
            msgs,
            vec![ClientMsg::Hello {
                name: "alice".into()
            }]
        );
        assert_eq!(reply, "");

        let mut s = session();
        let (msgs, _) = feed(
            &mut s,
            "CAP LS 302\r\nPASS pw\r\nNICK bob\r\nUSER b 0 * :B\r\n",
        );
        assert_eq!(msgs, vec![], "waits for CAP END");
        let (msgs, _) = feed(&mut s, "CAP END\r\n");
        assert_eq!(
            msgs,
            vec![ClientMsg::Login {
                name: "bob".into(),
                password: "pw".into()
            }]
        );
        let burst = encoded(&mut s, welcome("bob"));
        assert!(burst.starts_with(":irc.test 001 bob :Welcome"), "{burst}");
        assert!(
            burst.ends_with(":irc.test 422 bob :MOTD File is missing\r\n"),
            "{burst}"
        );
        assert!(s.holds_input(), "the role is asked for");
        let (msgs, _) = feed(&mut s, "");
        assert_eq!(msgs, vec![ClientMsg::Command(Command::WhoAmI)]);
        let joined = encoded(
            &mut s,
            ServerMsg::WhoAmI {
                name: "bob".into(),
                role: Role::User,
                registered: true,
            },
        );
        assert_eq!(joined, ":bob!bob@chatd JOIN #lobby\r\n");
        assert!(s.holds_input(), "the topic and the names are asked for");
    }

    #[test]
    fn sasl_plain_is_a_login_and_its_success_900_903_waits_for_cap_end() {
        let mut s = session();
        let (_, reply) = feed(&mut s, "CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n");
        assert_eq!(reply, ":irc.test CAP * ACK :sasl\r\nAUTHENTICATE +\r\n");
        // "\0carol\0pw" in base64.
        let (msgs, _) = feed(&mut s, "AUTHENTICATE AGNhcm9sAHB3\r\n");
        assert_eq!(
            msgs,
            vec![ClientMsg::Login {
                name: "carol".into(),
                password: "pw".into()
            }]
        );
        let told = encoded(&mut s, welcome("carol"));
        assert_eq!(
            told,
            ":irc.test 900 carol carol!carol@chatd carol :You are now logged in as carol\r\n\
             :irc.test 903 carol :SASL authentication successful\r\n"
        );
        let (msgs, reply) = feed(&mut s, "NICK other\r\nUSER c 0 * :C\r\nCAP END\r\n");
        assert_eq!(msgs, vec![ClientMsg::Command(Command::WhoAmI)]);
        assert!(reply.starts_with(":irc.test 001 carol "), "{reply}");
        let (_, reply) = feed(&mut s, "AUTHENTICATE PLAIN\r\n");
        assert_eq!(
            reply,
            ":irc.test 907 carol :You have already authenticated using SASL\r\n"
        );
    }

    #[test]
    fn a_line_to_one_room_is_the_message_a_list_of_rooms_gives_that_room() {
        let mut s = session();
        feed(&mut s, "NICK al\r\nUSER a 0 * :A\r\n");
        encoded(&mut s, welcome("al"));
        feed(&mut s, "");
        for text in [
            "hi",
            "a \u{2}bold\u{2} word",
            "x:y :z",
            "\u{1}ACTION waves\u{1}",
        ] {
            let (one, _) = feed(&mut s, &format!("PRIVMSG #dev :{text}\r\n"));
            let (listed, _) = feed(&mut s, &format!("PRIVMSG #dev,#ops :{text}\r\n"));
            assert_eq!(one.len(), 1, "{text:?}");
            assert_eq!(one[0], listed[0], "{text:?}");
        }
        let (one, _) = feed(&mut s, "PRIVMSG #dev :hi\r\n");
        assert_eq!(
            one,
            vec![ClientMsg::Command(Command::In {
                room: "#dev".into(),
                command: Box::new(Command::Broadcast { text: "hi".into() })
            })]
        );
    }

    #[test]
    fn messages_name_their_room_or_nick_and_actions_are_me_lines() {
        let mut s = session();
        feed(&mut s, "NICK al\r\nUSER a 0 * :A\r\n");
        encoded(&mut s, welcome("al"));
        feed(&mut s, "");
        let (msgs, _) = feed(
            &mut s,
            "PRIVMSG #dev,bob :hi\r\nPRIVMSG #dev :\x01ACTION waves\x01\r\nPRIVMSG bob :\x01VERSION\x01\r\n",
        );
        let msgs: Vec<ClientMsg> = msgs
            .into_iter()
            .filter(|m| !matches!(m, ClientMsg::Command(Command::In { command, .. }) if matches!(**command, Command::Room(RoomCommand::Topic { .. }))))
            .filter(|m| !matches!(m, ClientMsg::Command(Command::Room(RoomCommand::Who { .. }) | Command::WhoAmI)))
            .collect();
        assert_eq!(
            msgs,
            vec![
                ClientMsg::Command(Command::In {
                    room: "#dev".into(),
                    command: Box::new(Command::Broadcast { text: "hi".into() })
                }),
                ClientMsg::Command(Command::Dm {
                    to: "bob".into(),
                    text: "hi".into()
                }),
                ClientMsg::Command(Command::In {
                    room: "#dev".into(),
                    command: Box::new(Command::Room(RoomCommand::Me {
                        text: "waves".into()
                    }))
                }),
            ]
        );
    }

    #[test]
    fn a_joins_history_waits_for_its_names() {
        let mut s = session();
        feed(&mut s, "NICK al\r\nUSER a 0 * :A\r\n");
        encoded(&mut s, welcome("al"));
        feed(&mut s, "");
        let dev = RoomTag {
            name: "#dev".into(),
            default: false,
        };
        let joined = encoded(
            &mut s,
            ServerMsg::Done(Done::JoinedRoom {
                room: dev.clone(),
                members: 2,
                created: false,
            }),
        );
        assert_eq!(joined, ":al!al@chatd JOIN #dev\r\n");
        let old = ServerMsg::Line {
            id: LineId {
                epoch: 1,
                room: 1,
                seq: 1,
            },
            msg: Box::new(ServerMsg::Room {
                room: dev,
                line: crate::proto::msg::RoomLine::History {
                    at: Stamp::new(0, 0, 0, 0),
                    from: "bob".into(),
                    text: "before".into(),
                    me: false,
                },
            }),
        };
        assert_eq!(encoded(&mut s, old), "", "held");
        let (msgs, _) = feed(&mut s, "");
        assert_eq!(
            msgs,
            vec![ClientMsg::Command(Command::Room(RoomCommand::Who {
                room: Some("#dev".into())
            }))]
        );
        let names = encoded(
            &mut s,
            ServerMsg::Who {
                room: "#dev".into(),
                members: vec![],
            },
        );
        assert_eq!(
            names,
            ":irc.test 366 al #dev :End of /NAMES list\r\n\
             :irc.test NOTICE #dev :[00:00:00] <bob> before\r\n"
        );
    }

    #[test]
    fn a_chathistory_answer_is_one_batch_whatever_comes_between_its_lines() {
        let mut s = session();
        feed(
            &mut s,
            "CAP REQ :batch\r\nNICK al\r\nUSER a 0 * :A\r\nCAP END\r\n",
        );
        encoded(&mut s, welcome("al"));
        let (msgs, _) = feed(&mut s, "CHATHISTORY LATEST #dev * 5\r\n");
        assert!(
            msgs.contains(&ClientMsg::Command(Command::ChatHistory {
                room: "#dev".into(),
                span: Span::Latest(None),
                limit: 5,
            })),
            "{msgs:?}"
        );
        let old = |seq, text: &str| ServerMsg::Line {
            id: LineId {
                epoch: 1,
                room: 1,
                seq,
            },
            msg: Box::new(ServerMsg::Room {
                room: RoomTag {
                    name: "#dev".into(),
                    default: false,
                },
                line: crate::proto::msg::RoomLine::History {
                    at: Stamp::new(0, 0, 0, 0),
                    from: "bob".into(),
                    text: text.into(),
                    me: false,
                },
            }),
        };
        let page = ServerMsg::Notice(Notice::HistoryPage {
            room: "#dev".into(),
            count: 2,
            more: false,
        });
        let direct = ServerMsg::Direct {
            at: Stamp::new(0, 0, 0, 0),
            from: "bob".into(),
            text: "psst".into(),
        };
        let mut out = String::new();
        for msg in [page, old(1, "one"), direct, old(2, "two")] {
            out += &encoded(&mut s, msg);
        }
        assert_eq!(
            out,
            ":irc.test BATCH +h1 chathistory #dev\r\n\
             @batch=h1;time=1970-01-01T00:00:00.000Z;msgid=1-1-1 :bob!bob@chatd PRIVMSG #dev :one\r\n\
             :bob!bob@chatd PRIVMSG al :psst\r\n\
             @batch=h1;time=1970-01-01T00:00:00.000Z;msgid=1-1-2 :bob!bob@chatd PRIVMSG #dev :two\r\n\
             :irc.test BATCH -h1\r\n"
        );
        let empty = ServerMsg::Notice(Notice::HistoryPage {
            room: "#dev".into(),
            count: 0,
            more: false,
        });
        assert_eq!(
            encoded(&mut s, empty),
            ":irc.test BATCH +h2 chathistory #dev\r\n:irc.test BATCH -h2\r\n"
        );
    }

    #[test]
    fn any_lines_in_any_order_never_panic_and_every_answer_is_whole_lines() {
        const WORDS: &[&str] = &[
            "CAP",
            "LS",
            "302",
            "REQ",
            ":sasl",
            "END",
            "LIST",
            "NICK",
            "USER",
            "PASS",
            "AUTHENTICATE",
            "PLAIN",
            "+",
            "*",
            "AGNhcm9sAHB3",
            "JOIN",
            "PART",
            "PRIVMSG",
            "NOTICE",
            "#dev",
            "#lobby,#x",
            "bob",
            ":\u{1}ACTION hi\u{1}",
            ":",
            "MODE",
            "+o",
            "b",
            "-o",
            "TOPIC",
            "KICK",
            "WHO",
            "WHOIS",
            "USERHOST",
            "ISON",
            "AWAY",
            "LIST",
            "NAMES",
            "PING",
            "PONG",
            "OPER",
            "QUIT",
            "CHATHISTORY",
            "LATEST",
            "BETWEEN",
            "AROUND",
            "msgid=1-0-1",
            "timestamp=2026-12-01T15:04:05.000Z",
            "0",
            "@a=b",
            ":src",
            "\u{3}4,5x",
            "é",
        ];
        let replies = [
            welcome("carol"),
            ServerMsg::PasswordPrompt,
            ServerMsg::Reject(Reject::NameTaken),
            ServerMsg::Reject(Reject::WrongPassword),
            ServerMsg::Reject(Reject::NotInRoom {
                room: "#dev".into(),
            }),
            ServerMsg::Who {
                room: "#dev".into(),
                members: vec![],
            },
            ServerMsg::Users { users: vec![] },
            ServerMsg::Done(Done::JoinedRoom {
                room: RoomTag {
                    name: "#dev".into(),
                    default: false,
                },
                members: 1,
                created: true,
            }),
            ServerMsg::Bye,
            ServerMsg::KeepAlive { nonce: 3 },
            ServerMsg::Notice(Notice::HistoryPage {
                room: "#dev".into(),
                count: 2,
                more: false,
            }),
            ServerMsg::Line {
                id: LineId {
                    epoch: 1,
                    room: 1,
                    seq: 1,
                },
                msg: Box::new(ServerMsg::Room {
                    room: RoomTag {
                        name: "#dev".into(),
                        default: false,
                    },
                    line: crate::proto::msg::RoomLine::History {
                        at: Stamp::new(0, 0, 0, 0),
                        from: "bob".into(),
                        text: "old".into(),
                        me: false,
                    },
                }),
            },
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut s = session();
            for _ in 0..40 {
                let words: Vec<&str> = (0..next() % 6)
                    .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                    .collect();
                let (_, reply) = feed(&mut s, &format!("{}\r\n", words.join(" ")));
                assert!(reply.is_empty() || reply.ends_with("\r\n"), "{reply:?}");
                if next() % 3 == 0 {
                    let msg = replies[(next() % replies.len() as u64) as usize].clone();
                    let out = encoded(&mut s, msg);
                    assert!(out.is_empty() || out.ends_with("\r\n"), "{out:?}");
                    assert!(out.split_terminator("\r\n").all(|l| l.len() + 2 <= 512));
                }
            }
        }
    }

    #[test]
    fn a_registered_nick_without_a_password_may_give_it_or_another_nick() {
        let mut s = session();
        let (msgs, _) = feed(&mut s, "NICK dave\r\nUSER d 0 * :D\r\n");
        assert_eq!(
            msgs,
            vec![ClientMsg::Hello {
                name: "dave".into()
            }]
        );
        let asked = encoded(&mut s, ServerMsg::PasswordPrompt);
        assert!(
            asked.starts_with(":irc.test NOTICE dave :This name is registered"),
            "{asked}"
        );
        let (msgs, _) = feed(&mut s, "NICK dave_\r\n");
        assert_eq!(
            msgs,
            vec![ClientMsg::Hello {
                name: "dave_".into()
            }]
        );
        encoded(&mut s, ServerMsg::PasswordPrompt);
        let (msgs, _) = feed(&mut s, "PASS :two words\r\n");
        assert_eq!(
            msgs,
            vec![ClientMsg::Say {
                text: "two words".into()
            }]
        );
    }
}
