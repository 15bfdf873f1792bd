//! The window's state, as a pure model: who is online, the rooms we are in (each with its
//! members and unread lines), what was said, what is being typed, how the connection stands. It
//! changes only through its methods, each given the time by the caller: key presses
//! ([`Model::key`]), what the session shows ([`Model::shown`]), what became of the connection
//! ([`Model::connected`], [`Model::closed`], ...) and the clock ([`Model::tick`] at
//! [`Model::next_deadline`]). It answers with [`Order`]s for the shell to carry out. No terminal,
//! no socket, no clock of its own: every rule is unit-tested below.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::editor::{History, LineEditor};
use super::layout::Areas;
use super::roster::{parse_online, Member, Roster};
use super::split::{split_long, Parts};
use super::wrap::row_count;
use crate::client::{Shown, DEFAULT_ADDR, MAX_LINE};
use crate::proto::framed::{error_code, reply_kind, RoomChange};
use crate::proto::msg::{
    Command, Event, MemberEntry, RoomCommand, RoomLine, RoomTag, ServerMsg, Stamp,
};
use crate::proto::text::{split_line, TypedLine};
use crate::tls::Fingerprint;

/// The first wait before reconnecting; each failure doubles it.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait before reconnecting.
pub const MAX_RETRY: Duration = Duration::from_secs(10);
/// How long a connect may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to welcome us (not counting the user typing a password).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a quiet ping measures the round trip (and `/users` refreshes the marks).
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// How long a quiet ping may go unanswered before the connection counts as lost.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for the server to close after our bye.
pub const LEAVE_LINGER: Duration = Duration::from_secs(2);
/// Entries kept in the chat; older ones are dropped.
pub const MAX_ENTRIES: usize = 5000;
/// Lines kept in the input history.
pub const MAX_HISTORY: usize = 200;
/// Longest line the input box takes, in bytes; chat text over [`MAX_LINE`] is sent in parts.
pub const MAX_INPUT: usize = 8 * MAX_LINE;
/// Longest server address or name typed in the connect form.
const MAX_FIELD: usize = 256;
/// The window's own keys, noted after the server's `/help`.
pub const WINDOW_KEYS: &str = "window keys: Alt-1..9 a room of the list, Ctrl-N / Ctrl-P the \
     next / previous room, PgUp / PgDn scroll, Up / Down earlier lines, Ctrl-C quits";
/// How far back a history line from the server is looked for among what is shown already.
const HISTORY_LOOKBACK: usize = 500;

/// The time, as the shell read it: a monotonic instant for deadlines, a wall-clock stamp for
/// the lines the window writes itself.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// For deadlines and round trips.
    pub instant: Instant,
    /// For timestamps shown.
    pub stamp: Stamp,
}

/// A key press, as the model understands them (the shell maps the terminal's keys to these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A character typed.
    Char(char),
    /// Enter: send the line, or go to the next field.
    Enter,
    /// Delete the character before the cursor.
    Backspace,
    /// Delete the character under the cursor.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor to the start of the line.
    Home,
    /// Cursor to the end of the line.
    End,
    /// The previous line of the history, or the previous field.
    Up,
    /// The next line of the history, or the next field.
    Down,
    /// Scroll the chat back a page.
    PageUp,
    /// Scroll the chat forward a page.
    PageDown,
    /// Scroll to the oldest line kept.
    Top,
    /// Scroll to the newest line.
    Bottom,
    /// The next field of the form.
    Tab,
    /// Delete everything before the cursor.
    DeleteToStart,
    /// Back to the connect form (when not connected), or leave the form.
    Escape,
    /// Ctrl-C: leave; a second one leaves at once.
    Interrupt,
    /// Alt-1 to Alt-9: make the room of that place in the room list (from 0) current.
    Room(u8),
    /// Ctrl-N: the next room of the list.
    NextRoom,
    /// Ctrl-P: the previous room of the list.
    PreviousRoom,
}

/// What the model asks the shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    /// Drop any connection; connect to `addr` and, once connected, log in as `name`.
    Connect {
        /// The server, `HOST:PORT` or `HOST`.
        addr: String,
        /// The name to log in as.
        name: String,
    },
    /// Hand this line to the session as typed (chat, a command, `/quit`, or the password).
    Type(String),
    /// Send a ping whose pong is not shown.
    PingQuietly,
    /// Ask `/users` for the marks; the model keeps the reply out of the chat.
    AskUsersQuietly,
    /// Ask `/who` for a room's members (the current room's if `None`); the model keeps the reply
    /// out of the chat.
    AskWhoQuietly(Option<String>),
    /// Remember that `server` (`host:port`) has the certificate `fingerprint` (the user
    /// trusted it), then tell [`Model::remembered`] how that went.
    Remember {
        /// The server, as the known-servers file names it.
        server: String,
        /// The certificate's fingerprint.
        fingerprint: Fingerprint,
    },
    /// Say bye (Ctrl-C) and wait for the server to close.
    Leave,
    /// Drop the connection at once.
    Drop,
    /// End the program.
    Exit,
}

/// The reconnect delays: 0.5 s, doubling after each failure up to 10 s; back to the start once
/// joined again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The delay before the next attempt; the one after is twice as long, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        delay
    }

    /// Joined again: the next loss waits the shortest time.
    pub fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// Where the connection stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// The connect form is up: no connection.
    Form,
    /// Connecting, until the deadline.
    Connecting {
        /// When the attempt counts as failed.
        deadline: Instant,
    },
    /// Connected; hello sent, no welcome yet.
    LoggingIn {
        /// When the login counts as failed; none while the user types the password.
        deadline: Option<Instant>,
    },
    /// In the room.
    Online,
    /// Lost; connecting again at `at`.
    Retrying {
        /// When to connect again.
        at: Instant,
        /// How long the wait was.
        delay: Duration,
    },
    /// Kicked out, or the server's certificate refused: no retry until the user asks (Enter).
    Offline,
    /// The server's certificate does not verify and is not known: the user is asked whether to
    /// trust it (y / n); no connection meanwhile.
    Trusting {
        /// The server, as the known-servers file names it.
        server: String,
        /// The certificate's fingerprint.
        fingerprint: Fingerprint,
    },
    /// Bye sent; waiting for the server to close.
    Leaving {
        /// When to stop waiting.
        deadline: Instant,
    },
}

/// What an entry of the chat is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A line said to the room (ours included).
    Chat,
    /// A line said before we joined, shown on joining.
    History,
    /// A direct message to us.
    DirectIn,
    /// A direct message we sent.
    DirectOut,
    /// A `[*]` line from the server: an event or the answer to a command.
    Event,
    /// A `[!]` line: a refusal, being kicked, a bad digest.
    Problem,
    /// A `[~]` line from the window itself: the connection's ups and downs.
    Note,
}

/// What a piece of an entry's text is, for the view to style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// `[HH:MM:SS] `.
    Time,
    /// `[dm] `, `[dm to NAME] `, `[history] `.
    Tag,
    /// The sender's name (coloured by the name).
    Name,
    /// ` > `.
    Separator,
    /// What was said.
    Body,
    /// The whole of an event, problem or note line.
    Whole,
}

/// One line of the chat as shown: its text and what each piece of it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// The text, as one line.
    pub text: String,
    /// Byte ranges of `text` and what each is; together they cover it.
    pub parts: Vec<(Range<usize>, Part)>,
    /// For a chat line: when, who, what (to spot a history line shown already).
    said: Option<(i64, String, String)>,
    /// The room it belongs to ([`room_key`]), shown only while that room is current; `None` for
    /// what is shown in every room (direct messages, the window's notes and problems).
    pub room: Option<String>,
    /// A line from someone else that names us.
    pub mention: bool,
}

impl Entry {
    fn whole(kind: EntryKind, text: &str) -> Entry {
        let text = displayable(text);
        Entry {
            kind,
            parts: vec![(0..text.len(), Part::Whole)],
            text,
            said: None,
            room: None,
            mention: false,
        }
    }

    /// The same entry, in `room`.
    fn in_room(mut self, room: &str) -> Entry {
        self.room = Some(room.to_owned());
        self
    }

    fn chat(kind: EntryKind, at: &Stamp, tag: &str, from: &str, body: &str) -> Entry {
        let mut text = String::new();
        let mut parts = Vec::new();
        let mut piece = |piece: &str, part: Part| {
            let start = text.len();
            text.push_str(piece);
            if text.len() > start {
                parts.push((start..text.len(), part));
            }
        };
        piece(&format!("[{}] ", at.hms()), Part::Time);
        piece(tag, Part::Tag);
        piece(&displayable(from), Part::Name);
        piece(" > ", Part::Separator);
        piece(&displayable(body), Part::Body);
        Entry {
            kind,
            text,
            parts,
            said: Some((at.unix, from.to_owned(), body.to_owned())),
            room: None,
            mention: false,
        }
    }

    /// An action line, `[HH:MM:SS] * alice waves` (`tag` after the stamp, e.g. `[history] `).
    fn action(kind: EntryKind, at: &Stamp, tag: &str, from: &str, body: &str) -> Entry {
        let mut entry = Entry::chat(kind, at, &format!("{tag}* "), from, body);
        // " > " becomes a space: the action reads as a sentence.
        let mut text = String::new();
        let mut parts = Vec::new();
        for (range, part) in &entry.parts {
            let piece = if *part == Part::Separator {
                " "
            } else {
                &entry.text[range.clone()]
            };
            let start = text.len();
            text.push_str(piece);
            parts.push((start..text.len(), *part));
        }
        entry.text = text;
        entry.parts = parts;
        entry
    }

    /// The sender's name, for a chat line.
    pub fn sender(&self) -> Option<&str> {
        self.said.as_ref().map(|(_, from, _)| from.as_str())
    }
}

/// Text safe to draw on one terminal line: tabs become spaces, other controls U+FFFD (the codec
/// has already replaced those from the network).
fn displayable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// A field of the connect form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `HOST:PORT` or `HOST`.
    Server,
    /// The name to join under.
    Name,
}

/// The connect form: the server and the name, as the seeds' clients asked for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    /// The server field.
    pub server: LineEditor,
    /// The name field.
    pub name: LineEditor,
    /// The field being typed in.
    pub focus: Field,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
}

impl Form {
    fn focused(&mut self) -> &mut LineEditor {
        match self.focus {
            Field::Server => &mut self.server,
            Field::Name => &mut self.name,
        }
    }

    fn switch(&mut self) {
        self.focus = match self.focus {
            Field::Server => Field::Name,
            Field::Name => Field::Server,
        };
    }
}

/// A room we are in, as the room list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomView {
    /// The name, as created; the default room's is empty until the server names it.
    pub name: String,
    /// Whether it is the server's default room (always the first of the list).
    pub default: bool,
    /// Lines said there since it was last current.
    pub unread: usize,
    /// How many of those name us.
    pub mentions: usize,
    /// Its members (`@` marks moderators); the default room's are [`Model::roster`].
    members: Roster,
}

impl RoomView {
    fn new(name: &str, default: bool) -> RoomView {
        RoomView {
            name: name.to_owned(),
            default,
            unread: 0,
            mentions: 0,
            members: Roster::default(),
        }
    }

    /// The key its lines are kept under: empty for the default room, else the name in lower case.
    fn key(&self) -> String {
        if self.default {
            String::new()
        } else {
            self.name.to_ascii_lowercase()
        }
    }
}

/// The key a room's lines are kept under (see [`Entry::room`]).
pub fn room_key(room: &RoomTag) -> String {
    if room.default {
        String::new()
    } else {
        room.name.to_ascii_lowercase()
    }
}

/// Whether `text` names `name` as a word of its own, ignoring case (`@alice`, `alice:` and
/// `Alice,` do; `malice` does not).
pub fn names(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let lower = text.to_ascii_lowercase();
    let wanted = name.to_ascii_lowercase();
    lower.match_indices(&wanted).any(|(at, _)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + wanted.len()..].chars().next();
        // A trailing dot ends a sentence rather than continuing the name.
        let after_ok = match after {
            None => true,
            Some('.') => !lower[at + wanted.len() + 1..]
                .chars()
                .next()
                .is_some_and(is_name_char),
            Some(c) => !is_name_char(c),
        };
        !before.is_some_and(is_name_char) && after_ok
    })
}

/// The window's state.
#[derive(Debug)]
pub struct Model {
    server: String,
    name: String,
    /// The password typed for the name, kept (in memory only) to log in again after a loss.
    password: Option<String>,
    link: Link,
    /// Whether we joined since the form was last used: losses then retry rather than ask.
    joined_once: bool,
    backoff: Backoff,
    /// The server said we were kicked out: do not come back on our own.
    kicked: bool,
    /// The last error code while logging in.
    login_refusal: Option<u16>,
    /// The password prompt came and the user is typing it (hidden).
    asking_password: bool,
    /// The kept password was sent for this login already.
    password_sent: bool,
    round_trip: Option<Duration>,
    next_ping: Option<Instant>,
    pong_due: Option<Instant>,
    /// Quiet `/users` asked and not yet answered (0 or 1), and whether to ask again after.
    quiet_users: u32,
    users_stale: bool,
    roster: Roster,
    /// The rooms we are in: the default room first, then the others in the order joined.
    rooms: Vec<RoomView>,
    /// The current room's place in `rooms`.
    current: usize,
    /// Quiet `/who`s asked and not yet answered, by room (`None`: the current room when asked).
    quiet_who: VecDeque<Option<String>>,
    /// Room switches asked with a key and not yet answered (their answers stay out of the chat).
    quiet_switches: u32,
    /// The rooms to join again after a lost connection, and the room that was current.
    rejoin: Vec<String>,
    rejoin_current: Option<String>,
    entries: VecDeque<Entry>,
    /// Rows scrolled back from the newest; 0 follows new lines.
    scroll: usize,
    /// Columns and rows of the chat text.
    chat_size: (u16, u16),
    input: LineEditor,
    secret: LineEditor,
    /// A character was refused because the input line is full, and the user told so; cleared
    /// once a character fits again.
    told_full: bool,
    history: History,
    form: Option<Form>,
}

impl Model {
    /// A window for `addr` and `name` as given on the command line; the form asks for what is
    /// missing. `size` is the terminal's, in columns and rows.
    pub fn new(addr: Option<String>, name: Option<String>, size: (u16, u16)) -> Model {
        let mut model = Model {
            server: addr.clone().unwrap_or_default(),
            name: name.clone().unwrap_or_default(),
            password: None,
            link: Link::Form,
            joined_once: false,
            backoff: Backoff::default(),
            kicked: false,
            login_refusal: None,
            asking_password: false,
            password_sent: false,
            round_trip: None,
            next_ping: None,
            pong_due: None,
            quiet_users: 0,
            users_stale: false,
            roster: Roster::default(),
            rooms: vec![RoomView::new("", true)],
            current: 0,
            quiet_who: VecDeque::new(),
            quiet_switches: 0,
            rejoin: Vec::new(),
            rejoin_current: None,
            entries: VecDeque::new(),
            scroll: 0,
            chat_size: (0, 0),
            input: LineEditor::new(MAX_INPUT),
            secret: LineEditor::new(MAX_LINE),
            told_full: false,
            history: History::new(MAX_HISTORY),
            form: None,
        };
        model.resize(size.0, size.1);
        if addr.is_none() || name.is_none() {
            model.open_form(None);
            if let Some(form) = &mut model.form {
                form.server.set(addr.as_deref().unwrap_or(DEFAULT_ADDR));
                // The server is filled in already (the default, or as given): the name is next.
                form.focus = Field::Name;
            }
        }
        model
    }

    /// The first orders: connect at once when the command line said where and as whom.
    pub fn start(&mut self, now: &Now, out: &mut Vec<Order>) {
        if self.form.is_none() {
            self.connect(now, out);
        }
    }

    // ---- what the view reads ----

    /// The server, as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Our name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the connection stands.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The last round trip measured, by `/ping` or the quiet pings.
    pub fn round_trip(&self) -> Option<Duration> {
        self.round_trip
    }

    /// Who is online: the default room's members.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The current room's members, as the user list shows them.
    pub fn members(&self) -> &Roster {
        match self.rooms.get(self.current) {
            Some(room) if !room.default => &room.members,
            _ => &self.roster,
        }
    }

    /// The rooms we are in, the default room first.
    pub fn rooms(&self) -> &[RoomView] {
        &self.rooms
    }

    /// The current room's place in [`Model::rooms`].
    pub fn current_room(&self) -> usize {
        self.current
    }

    /// The chat, oldest first, every room's.
    pub fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    /// The chat as shown: the current room's lines and those shown in every room, oldest first.
    pub fn visible_entries(&self) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        let key = self.current_key();
        self.entries.iter().filter(move |entry| match &entry.room {
            Some(room) => *room == key,
            None => true,
        })
    }

    fn current_key(&self) -> String {
        self.rooms
            .get(self.current)
            .map(RoomView::key)
            .unwrap_or_default()
    }

    /// Rows scrolled back from the newest (0 follows new lines).
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// The input line.
    pub fn input(&self) -> &LineEditor {
        &self.input
    }

    /// Whether the input line is taking the password (drawn hidden).
    pub fn asking_password(&self) -> bool {
        self.asking_password
    }

    /// The connect form, while it is up.
    pub fn form(&self) -> Option<&Form> {
        self.form.as_ref()
    }

    // ---- input ----

    /// The terminal is now `width` by `height`.
    pub fn resize(&mut self, width: u16, height: u16) {
        self.chat_size = Areas::of(width, height).chat_text_size();
        self.scroll = self.scroll.min(self.max_scroll());
    }

    /// A key was pressed.
    pub fn key(&mut self, key: Key, now: &Now, out: &mut Vec<Order>) {
        if key == Key::Interrupt {
            return self.quit(None, now, out);
        }
        if self.form.is_some() {
            return self.form_key(key, now, out);
        }
        if let Link::Trusting {
            server,
            fingerprint,
        } = &self.link
        {
            match key {
                Key::Char('y' | 'Y') => out.push(Order::Remember {
                    server: server.clone(),
                    fingerprint: *fingerprint,
                }),
                Key::Char('n' | 'N') | Key::Escape => {
                    self.link = Link::Offline;
                    self.note(
                        "certificate not trusted: not connecting. Enter asks again, \
                         Esc opens the connect form, Ctrl-C quits.",
                    );
                }
                _ => {}
            }
            return;
        }
        match key {
            Key::PageUp => self.scroll_by(self.page() as isize),
            Key::PageDown => self.scroll_by(-(self.page() as isize)),
            Key::Top => self.scroll = self.max_scroll(),
            Key::Bottom => self.scroll = 0,
            Key::Room(place) => self.switch_to(usize::from(place), out),
            Key::NextRoom | Key::PreviousRoom if self.rooms.len() > 1 => {
                let n = self.rooms.len();
                let step = if key == Key::NextRoom { 1 } else { n - 1 };
                self.switch_to((self.current + step) % n, out);
            }
            Key::NextRoom | Key::PreviousRoom => {}
            Key::Escape => {
                if matches!(self.link, Link::Retrying { .. } | Link::Offline) {
                    out.push(Order::Drop);
                    self.open_form(None);
                }
            }
            Key::Enter if self.asking_password => self.send_password(now, out),
            Key::Enter => self.enter(now, out),
            key => {
                let (editor, max) = if self.asking_password {
                    (&mut self.secret, MAX_LINE)
                } else {
                    (&mut self.input, MAX_INPUT)
                };
                match edit(editor, key) {
                    Edit::Full if !self.told_full => {
                        self.told_full = true;
                        self.problem(&format!(
                            "the input line is full ({max} bytes): \
                             what did not fit was not taken"
                        ));
                    }
                    Edit::Full => {}
                    Edit::Done => self.told_full = false,
                }
                if !self.asking_password {
                    match key {
                        Key::Up => self.history.older(&mut self.input),
                        Key::Down => self.history.newer(&mut self.input),
                        _ => {}
                    }
                }
            }
        }
    }

    /// SIGINT, SIGTERM or SIGHUP: as Ctrl-C.
    pub fn interrupted(&mut self, now: &Now, out: &mut Vec<Order>) {
        self.quit(None, now, out);
    }

    fn form_key(&mut self, key: Key, now: &Now, out: &mut Vec<Order>) {
        let Some(form) = &mut self.form else { return };
        match key {
            Key::Escape => out.push(Order::Exit),
            Key::Tab | Key::Up | Key::Down => form.switch(),
            Key::Enter if form.focus == Field::Server => form.focus = Field::Name,
            Key::Enter => {
                let server = form.server.text().trim().to_owned();
                let name = form.name.text().trim().to_owned();
                if server.is_empty() {
                    form.focus = Field::Server;
                    form.error = Some("the server is needed, e.g. 127.0.0.1:3001".into());
                } else if name.is_empty() {
                    form.error = Some("a name is needed".into());
                } else {
                    self.form = None;
                    self.server = server;
                    self.name = name;
                    self.password = None;
                    self.joined_once = false;
                    self.backoff.reset();
                    self.connect(now, out);
                }
            }
            key => {
                if edit(form.focused(), key) == Edit::Full {
                    form.error = Some(format!("at most {MAX_FIELD} bytes"));
                }
            }
        }
    }

    /// Enter on the chat input.
    fn enter(&mut self, now: &Now, out: &mut Vec<Order>) {
        let line = self.input.text();
        let command = match split_line(&line) {
            TypedLine::Command { name, args } => Some(Command::parse(name, args)),
            TypedLine::Say(_) => None,
        };
        let reconnect = line.trim().eq_ignore_ascii_case("/reconnect");
        if let Some(Command::Quit { .. }) = command {
            self.history.push(&line);
            self.input.take();
            return self.quit(Some(line), now, out);
        }
        if self.link != Link::Online {
            if matches!(self.link, Link::Retrying { .. } | Link::Offline)
                && (line.trim().is_empty() || reconnect)
            {
                self.input.take();
                self.connect(now, out);
            } else if !line.trim().is_empty() {
                self.note(
                    "not connected: the line stays in the input; press Enter again once online",
                );
            }
            return;
        }
        if line.trim().is_empty() {
            return;
        }
        let parts = match split_long(&line, MAX_LINE) {
            Parts::Send(parts) => parts,
            Parts::Refused(command) => {
                return self.problem(&format!(
                    "line too long, not sent: {command} takes at most {MAX_LINE} bytes; \
                     the line stays in the input"
                ));
            }
        };
        self.history.push(&line);
        self.input.take();
        self.told_full = false;
        self.scroll = 0;
        let count = parts.len();
        for part in parts {
            self.send_typed(part, now, out);
        }
        if count > 1 {
            self.note(&format!(
                "that line was over {MAX_LINE} bytes: sent as {count} lines"
            ));
        }
    }

    /// Sends a typed line that fits in one message, and shows it if it is our own chat.
    fn send_typed(&mut self, line: String, now: &Now, out: &mut Vec<Order>) {
        let command = match split_line(&line) {
            TypedLine::Command { name, args } => Some(Command::parse(name, args)),
            TypedLine::Say(_) => None,
        };
        // The server sends no echo: our own lines are shown as we send them.
        let own = match (split_line(&line), command) {
            (TypedLine::Say(text), _) => Some(Entry::chat(
                EntryKind::Chat,
                &now.stamp,
                "",
                &self.name,
                text,
            )),
            (_, Some(Command::Broadcast { text })) => Some(Entry::chat(
                EntryKind::Chat,
                &now.stamp,
                "",
                &self.name,
                &text,
            )),
            (_, Some(Command::Room(RoomCommand::Me { text }))) => Some(Entry::action(
                EntryKind::Chat,
                &now.stamp,
                "",
                &self.name,
                &text,
            )),
            (_, Some(Command::Dm { to, text })) => Some(Entry::chat(
                EntryKind::DirectOut,
                &now.stamp,
                &format!("[dm to {to}] "),
                &self.name,
                &text,
            )),
            _ => None,
        };
        out.push(Order::Type(line));
        if let Some(entry) = own {
            let entry = match entry.kind {
                EntryKind::DirectOut => entry,
                _ => entry.in_room(&self.current_key()),
            };
            self.push(entry);
        }
    }

    /// Makes the room at `place` current, here at once and on the server (`/room`), so plain lines
    /// go where the window shows.
    fn switch_to(&mut self, place: usize, out: &mut Vec<Order>) {
        if self.link != Link::Online || place == self.current {
            return;
        }
        let Some(room) = self.rooms.get(place) else {
            return;
        };
        if room.name.is_empty() {
            return self.problem("the default room's name is not known yet: try again in a moment");
        }
        out.push(Order::Type(format!("/room {}", room.name)));
        self.quiet_switches += 1;
        self.set_current(place);
    }

    fn set_current(&mut self, place: usize) {
        if let Some(room) = self.rooms.get_mut(place) {
            room.unread = 0;
            room.mentions = 0;
            self.current = place;
            self.scroll = 0;
        }
    }

    /// The place of the room named `name` (any case) in the list.
    fn place_of(&self, name: &str) -> Option<usize> {
        self.rooms
            .iter()
            .position(|room| !room.name.is_empty() && room.name.eq_ignore_ascii_case(name))
    }

    /// The place of `room`, added to the list if it is not there yet (its first line may come
    /// before anything else about it).
    fn place_or_add(&mut self, room: &RoomTag) -> usize {
        if room.default {
            if self.rooms[0].name.is_empty() {
                self.rooms[0].name = room.name.clone();
            }
            return 0;
        }
        match self.place_of(&room.name) {
            Some(place) => place,
            None => {
                self.rooms.push(RoomView::new(&room.name, false));
                self.rooms.len() - 1
            }
        }
    }

    fn want_who(&mut self, room: Option<&str>, out: &mut Vec<Order>) {
        let room = room.map(str::to_owned);
        self.quiet_who.push_back(room.clone());
        out.push(Order::AskWhoQuietly(room));
    }

    fn send_password(&mut self, now: &Now, out: &mut Vec<Order>) {
        let password = self.secret.take();
        if password.is_empty() {
            return;
        }
        self.asking_password = false;
        self.password = Some(password.clone());
        self.password_sent = true;
        if let Link::LoggingIn { deadline } = &mut self.link {
            *deadline = Some(now.instant + LOGIN_TIMEOUT);
        }
        out.push(Order::Type(password));
    }

    /// Ctrl-C, a signal, or `/quit` (the typed `line`).
    fn quit(&mut self, line: Option<String>, now: &Now, out: &mut Vec<Order>) {
        match self.link {
            Link::Online => {
                out.push(match line {
                    Some(line) => Order::Type(line),
                    None => Order::Leave,
                });
                self.link = Link::Leaving {
                    deadline: now.instant + LEAVE_LINGER,
                };
                self.note("leaving...");
            }
            _ => out.push(Order::Exit),
        }
    }

    // ---- the connection ----

    fn connect(&mut self, now: &Now, out: &mut Vec<Order>) {
        if !matches!(self.link, Link::Retrying { .. }) {
            self.note(&format!(
                "connecting to {} as {}...",
                self.server, self.name
            ));
        }
        self.link = Link::Connecting {
            deadline: now.instant + CONNECT_TIMEOUT,
        };
        self.kicked = false;
        self.login_refusal = None;
        self.asking_password = false;
        self.password_sent = false;
        out.push(Order::Connect {
            addr: self.server.clone(),
            name: self.name.clone(),
        });
    }

    /// The connection is up; the session has sent its hello.
    pub fn connected(&mut self, now: &Now) {
        if let Link::Connecting { .. } = self.link {
            self.link = Link::LoggingIn {
                deadline: Some(now.instant + LOGIN_TIMEOUT),
            };
        }
    }

    /// The connection could not be made.
    pub fn connect_failed(&mut self, why: &str, now: &Now, out: &mut Vec<Order>) {
        if let Link::Connecting { .. } = self.link {
            self.lost(
                &format!("cannot connect to {}: {why}", self.server),
                now,
                out,
            );
        }
    }

    /// The server closed the connection: `why` it ended, or `None` after our bye.
    pub fn closed(&mut self, why: Option<&str>, now: &Now, out: &mut Vec<Order>) {
        match (&self.link, why) {
            (Link::Form, _) => {}
            (Link::Leaving { .. }, _) | (_, None) => out.push(Order::Exit),
            (_, Some(why)) => self.lost(why, now, out),
        }
    }

    /// The server refused the login (`why`): the session cannot go on; the shell has dropped it.
    pub fn refused(&mut self, why: &str, now: &Now, out: &mut Vec<Order>) {
        out.push(Order::Drop);
        // Our own old session may still hold the name until the server notices it is gone.
        let retry = self.joined_once
            && matches!(
                self.login_refusal,
                Some(error_code::NAME_TAKEN | error_code::TOO_MANY_ATTEMPTS | error_code::BUSY)
            );
        if retry {
            self.lost(why, now, out);
        } else {
            self.reset_connection();
            self.rejoin.clear();
            self.rejoin_current = None;
            self.password = None;
            self.open_form(Some(why.to_owned()));
        }
    }

    /// The server's certificate does not verify (`why`) and `server` is not among the known
    /// servers: show its fingerprint and ask whether to trust it. The shell has dropped the
    /// connection.
    pub fn unknown_certificate(
        &mut self,
        server: &str,
        fingerprint: Fingerprint,
        why: &str,
        out: &mut Vec<Order>,
    ) {
        if let Link::Leaving { .. } = self.link {
            return out.push(Order::Exit);
        }
        self.reset_connection();
        self.problem(&format!(
            "the certificate of {server} is not trusted ({why}), and {server} is not among \
             the known servers."
        ));
        self.problem(&format!("its fingerprint is {fingerprint}"));
        self.note(
            "if that is the server's (its host sees it with `chatd tls fingerprint`), \
             press y to trust it and remember it; n does not connect.",
        );
        self.link = Link::Trusting {
            server: server.to_owned(),
            fingerprint,
        };
    }

    /// The certificate the user trusted was remembered (`Ok`: where, to show) or not (`Err`:
    /// why): connect again with it, or stay offline.
    pub fn remembered(&mut self, result: Result<String, String>, now: &Now, out: &mut Vec<Order>) {
        if !matches!(self.link, Link::Trusting { .. }) {
            return;
        }
        match result {
            Ok(where_) => {
                self.note(&format!("certificate remembered in {where_}"));
                self.connect(now, out);
            }
            Err(why) => {
                self.link = Link::Offline;
                self.problem(&format!("cannot remember the certificate: {why}"));
            }
        }
    }

    /// The server's certificate was refused (a changed certificate, or not the one given):
    /// show `text` loudly, and do not come back on our own. The shell has dropped the
    /// connection.
    pub fn certificate_refused(&mut self, text: &str, out: &mut Vec<Order>) {
        if let Link::Leaving { .. } = self.link {
            return out.push(Order::Exit);
        }
        self.reset_connection();
        for line in text.lines() {
            self.problem(line);
        }
        self.link = Link::Offline;
        self.note("not connected. Enter tries again, Esc opens the connect form, Ctrl-C quits.");
    }

    /// What is left of a lost connection: nothing of it is known any more.
    fn reset_connection(&mut self) {
        self.roster.clear();
        let joined: Vec<String> = self.rooms[1..].iter().map(|r| r.name.clone()).collect();
        if !joined.is_empty() {
            self.rejoin_current = self.rooms.get(self.current).map(|r| r.name.clone());
            self.rejoin = joined;
        }
        self.rooms.truncate(1);
        self.rooms[0].unread = 0;
        self.rooms[0].mentions = 0;
        self.current = 0;
        self.quiet_who.clear();
        self.quiet_switches = 0;
        self.round_trip = None;
        self.next_ping = None;
        self.pong_due = None;
        self.quiet_users = 0;
        self.users_stale = false;
        self.asking_password = false;
        self.secret.take();
    }

    fn lost(&mut self, why: &str, now: &Now, out: &mut Vec<Order>) {
        self.reset_connection();
        if let Link::Leaving { .. } = self.link {
            out.push(Order::Exit);
        } else if self.kicked {
            self.link = Link::Offline;
            self.note(&format!(
                "{why}. Enter joins again, Esc opens the connect form, Ctrl-C quits."
            ));
        } else if self.joined_once {
            let delay = self.backoff.next_delay();
            let connecting = matches!(self.link, Link::Connecting { .. });
            self.link = Link::Retrying {
                at: now.instant + delay,
                delay,
            };
            let retry = seconds(delay);
            self.note(&if connecting {
                format!("{why}; trying again in {retry}")
            } else {
                // `why` says what happened ("connection lost", "the server shut down", ...).
                format!("{why}; reconnecting in {retry}")
            });
        } else {
            self.note(why);
            self.open_form(Some(why.to_owned()));
        }
    }

    fn open_form(&mut self, error: Option<String>) {
        self.link = Link::Form;
        self.form = Some(Form {
            server: LineEditor::with_text(MAX_FIELD, &self.server),
            name: LineEditor::with_text(MAX_FIELD, &self.name),
            focus: if error.is_some() || !self.server.is_empty() {
                Field::Name
            } else {
                Field::Server
            },
            error,
        });
    }

    /// The time reached [`Model::next_deadline`] (early or spurious calls are harmless).
    pub fn tick(&mut self, now: &Now, out: &mut Vec<Order>) {
        let t = now.instant;
        match self.link {
            Link::Connecting { deadline } if t >= deadline => {
                out.push(Order::Drop);
                self.lost(
                    &format!("cannot connect to {}: no answer", self.server),
                    now,
                    out,
                );
            }
            Link::LoggingIn {
                deadline: Some(deadline),
            } if t >= deadline => {
                out.push(Order::Drop);
                self.lost("no welcome from the server", now, out);
            }
            Link::Retrying { at, .. } if t >= at => self.connect(now, out),
            Link::Leaving { deadline } if t >= deadline => out.push(Order::Exit),
            Link::Online => {
                if self.pong_due.is_some_and(|due| t >= due) {
                    out.push(Order::Drop);
                    let why = format!("no answer to a ping in {}", seconds(PONG_TIMEOUT));
                    self.lost(&why, now, out);
                } else if self.next_ping.is_some_and(|at| t >= at) {
                    self.ping(now, out);
                    self.want_users(out);
                }
            }
            _ => {}
        }
    }

    /// When [`Model::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.link {
            Link::Connecting { deadline } | Link::Leaving { deadline } => Some(deadline),
            Link::LoggingIn { deadline } => deadline,
            Link::Retrying { at, .. } => Some(at),
            Link::Online => [self.next_ping, self.pong_due].into_iter().flatten().min(),
            Link::Form | Link::Offline | Link::Trusting { .. } => None,
        }
    }

    fn ping(&mut self, now: &Now, out: &mut Vec<Order>) {
        out.push(Order::PingQuietly);
        self.next_ping = Some(now.instant + PING_EVERY);
        self.pong_due.get_or_insert(now.instant + PONG_TIMEOUT);
    }

    fn want_users(&mut self, out: &mut Vec<Order>) {
        if self.quiet_users == 0 {
            self.quiet_users = 1;
            out.push(Order::AskUsersQuietly);
        } else {
            self.users_stale = true;
        }
    }

    // ---- what the server said ----

    /// Something the session shows.
    pub fn shown(&mut self, shown: Shown, now: &Now, out: &mut Vec<Order>) {
        let text = shown.render();
        if let Shown::Pong { round_trip, .. } = &shown {
            // Any pong shows the connection is alive.
            self.pong_due = None;
            if round_trip.is_some() {
                self.round_trip = *round_trip;
            }
        }
        match shown {
            Shown::Msg(ServerMsg::Welcome { name, others, .. }) => {
                self.link = Link::Online;
                self.joined_once = true;
                self.backoff.reset();
                self.asking_password = false;
                self.roster
                    .reset(others.iter().map(String::as_str).chain([name.as_str()]));
                self.name = name;
                self.event(&text);
                self.ping(now, out);
                self.want_users(out);
                // The default room's name, for the room list and for switching back to it.
                self.want_who(None, out);
                for room in std::mem::take(&mut self.rejoin) {
                    out.push(Order::Type(format!("/join {room}")));
                }
                if let Some(current) = self.rejoin_current.take() {
                    if !current.is_empty() {
                        out.push(Order::Type(format!("/room {current}")));
                        self.quiet_switches += 1;
                    }
                }
            }
            Shown::Msg(ServerMsg::Chat { at, from, text }) => {
                let entry = Entry::chat(EntryKind::Chat, &at, "", &from, &text).in_room("");
                self.push(entry)
            }
            Shown::Msg(ServerMsg::Direct { at, from, text }) => {
                self.push(Entry::chat(EntryKind::DirectIn, &at, "[dm] ", &from, &text))
            }
            Shown::Msg(ServerMsg::Backlog { at, from, text }) => {
                let entry =
                    Entry::chat(EntryKind::History, &at, "[history] ", &from, &text).in_room("");
                let seen = self
                    .entries
                    .iter()
                    .rev()
                    .take(HISTORY_LOOKBACK)
                    .any(|shown| shown.said.is_some() && shown.said == entry.said);
                if !seen {
                    self.push(entry);
                }
            }
            Shown::Msg(ServerMsg::Room { room, line }) => self.room_line(&room, line, &text, out),
            Shown::Msg(ServerMsg::Who { room, members }) => self.who(&room, members, &text),
            Shown::Msg(msg @ (ServerMsg::Done(_) | ServerMsg::Notice(_)))
                if RoomChange::of(&msg).is_some() =>
            {
                if let Some(change) = RoomChange::of(&msg) {
                    self.room_change(change, &text, out);
                }
            }
            Shown::Msg(ServerMsg::Event(event)) => {
                match &event {
                    Event::Entered { name } => {
                        self.roster.add(name);
                        self.want_users(out);
                    }
                    Event::Left { name, .. } => {
                        self.roster.remove(name);
                    }
                    Event::Shutdown => {}
                }
                self.event_in("", &text);
            }
            Shown::Msg(ServerMsg::Kicked { .. }) => {
                self.kicked = true;
                self.push(Entry::whole(EntryKind::Problem, &text));
            }
            Shown::Msg(_) | Shown::Pong { quiet: false, .. } => self.event(&text),
            Shown::DigestMismatch(_) => self.push(Entry::whole(EntryKind::Problem, &text)),
            Shown::Reply { kind, lines } => self.reply(kind, &lines, out),
            Shown::Refused { code, .. } => {
                if let Link::LoggingIn { .. } = self.link {
                    self.login_refusal = Some(code);
                }
                if matches!(code, error_code::NO_SUCH_ROOM | error_code::ROOM_MEMBERSHIP) {
                    self.quiet_switches = self.quiet_switches.saturating_sub(1);
                }
                self.push(Entry::whole(EntryKind::Problem, &text));
            }
            Shown::Pong { .. } => {}
            Shown::Note(_) => self.push(Entry::whole(EntryKind::Problem, &text)),
        }
    }

    fn reply(&mut self, kind: u8, lines: &[String], out: &mut Vec<Order>) {
        match kind {
            reply_kind::USERS => {
                if let Some(listed) = lines.first().and_then(|line| parse_online(line)) {
                    self.roster.replace(listed);
                }
                if self.quiet_users > 0 {
                    self.quiet_users -= 1;
                    if std::mem::take(&mut self.users_stale) {
                        self.want_users(out);
                    }
                    return;
                }
            }
            reply_kind::PASSWORD_PROMPT => {
                if let (Some(password), false) = (&self.password, self.password_sent) {
                    self.password_sent = true;
                    out.push(Order::Type(password.clone()));
                    return;
                }
                self.asking_password = true;
                if let Link::LoggingIn { deadline } = &mut self.link {
                    *deadline = None;
                }
            }
            // A confirmed /away, /back or role change: the marks may have changed.
            reply_kind::DONE => self.want_users(out),
            _ => {}
        }
        for line in lines {
            self.event(line);
        }
        if kind == reply_kind::HELP {
            self.note(WINDOW_KEYS);
        }
    }

    /// A line of a room: said there, or something that happened there.
    fn room_line(&mut self, room: &RoomTag, line: RoomLine, text: &str, out: &mut Vec<Order>) {
        let place = self.place_or_add(room);
        let key = room_key(room);
        fn members(model: &mut Model, place: usize) -> &mut Roster {
            if place == 0 {
                &mut model.roster
            } else {
                &mut model.rooms[place].members
            }
        }
        let said = match line {
            RoomLine::Chat { at, from, text } => {
                Some(Entry::chat(EntryKind::Chat, &at, "", &from, &text))
            }
            RoomLine::Me { at, from, text } => {
                Some(Entry::action(EntryKind::Chat, &at, "", &from, &text))
            }
            RoomLine::History { at, from, text, me } => Some(if me {
                Entry::action(EntryKind::History, &at, "[history] ", &from, &text)
            } else {
                Entry::chat(EntryKind::History, &at, "[history] ", &from, &text)
            }),
            RoomLine::Entered { names, more } => {
                for name in &names {
                    members(self, place).add(name);
                }
                if place == 0 {
                    self.want_users(out);
                } else if more > 0 {
                    self.want_who(Some(&room.name), out);
                }
                None
            }
            RoomLine::Left { names, more, .. } => {
                for name in &names {
                    members(self, place).remove(name);
                }
                match (place, more) {
                    (_, 0) => {}
                    // Those not named are known only from the whole list.
                    (0, _) => self.want_users(out),
                    _ => self.want_who(Some(&room.name), out),
                }
                None
            }
            RoomLine::Removed { name, .. } => {
                members(self, place).remove(&name);
                None
            }
            RoomLine::Moderator { .. } if place != 0 => {
                self.want_who(Some(&room.name), out);
                None
            }
            RoomLine::Moderator { .. } | RoomLine::Topic { .. } => None,
        };
        match said {
            Some(entry) => {
                let entry = entry.in_room(&key);
                let seen = entry.kind == EntryKind::History
                    && self
                        .entries
                        .iter()
                        .rev()
                        .take(HISTORY_LOOKBACK)
                        .any(|shown| shown.said.is_some() && shown.said == entry.said);
                if !seen {
                    self.push(entry);
                }
            }
            None => self.event_in(&key, text),
        }
    }

    /// A `/who` answer: a room's members with their marks.
    fn who(&mut self, room: &str, members: Vec<MemberEntry>, text: &str) {
        let quiet = match self.quiet_who.front() {
            Some(None) => {
                // Asked at the welcome, for the current room then: the default room.
                if self.rooms[0].name.is_empty() {
                    self.rooms[0].name = room.to_owned();
                }
                true
            }
            Some(Some(asked)) => asked.eq_ignore_ascii_case(room),
            None => false,
        };
        if quiet {
            self.quiet_who.pop_front();
        }
        if let Some(place) = self.place_of(room).filter(|&place| place > 0) {
            self.rooms[place].members.replace(
                members
                    .into_iter()
                    .map(|m| Member {
                        name: m.name,
                        admin: m.moderator,
                        away: m.away,
                    })
                    .collect(),
            );
        }
        if !quiet {
            self.event(text);
        }
    }

    /// Our current room changed: joined, switched, left, or taken out of a room.
    fn room_change(&mut self, change: RoomChange, text: &str, out: &mut Vec<Order>) {
        let mut shown = true;
        match &change {
            RoomChange::Joined { room, .. } => {
                let place = self.place_or_add(room);
                self.set_current(place);
                if place > 0 {
                    self.want_who(Some(&room.name), out);
                }
            }
            RoomChange::Switched { room } => {
                let place = self.place_or_add(room);
                self.set_current(place);
                if self.quiet_switches > 0 {
                    self.quiet_switches -= 1;
                    shown = false;
                }
            }
            RoomChange::Parted { room, current } | RoomChange::Removed { room, current, .. } => {
                if let Some(place) = self.place_of(room).filter(|&place| place > 0) {
                    self.rooms.remove(place);
                    if self.current >= place {
                        self.current = self.current.saturating_sub(1);
                    }
                }
                let place = self.place_of(current).unwrap_or(0);
                self.set_current(place);
            }
        }
        if shown {
            self.event(text);
        }
    }

    // ---- the chat ----

    /// Lines from the server, shown in the current room.
    fn event(&mut self, text: &str) {
        let key = self.current_key();
        self.event_in(&key, text);
    }

    /// Lines from the server about the room kept under `key`.
    fn event_in(&mut self, key: &str, text: &str) {
        for line in text.lines() {
            self.push(Entry::whole(EntryKind::Event, line).in_room(key));
        }
    }

    fn note(&mut self, text: &str) {
        self.push(Entry::whole(EntryKind::Note, &format!("[~] {text}")));
    }

    /// A `[!]` line of the window's own: what it did not do, and why.
    fn problem(&mut self, text: &str) {
        self.push(Entry::whole(EntryKind::Problem, &format!("[!] {text}")));
    }

    fn push(&mut self, mut entry: Entry) {
        let current = self.current_key();
        let from_other = entry
            .sender()
            .is_some_and(|from| !from.eq_ignore_ascii_case(&self.name));
        if from_other && matches!(entry.kind, EntryKind::Chat | EntryKind::DirectIn) {
            entry.mention = entry
                .said
                .as_ref()
                .is_some_and(|(_, _, body)| names(body, &self.name));
        }
        let visible = entry.room.as_ref().is_none_or(|room| *room == current);
        if !visible {
            if from_other && entry.kind == EntryKind::Chat {
                let key = entry.room.clone().unwrap_or_default();
                if let Some(room) = self.rooms.iter_mut().find(|room| room.key() == key) {
                    room.unread += 1;
                    room.mentions += usize::from(entry.mention);
                }
            }
            self.entries.push_back(entry);
            self.trim_entries();
            return;
        }
        if self.scroll > 0 {
            // Scrolled back: keep the same lines in view.
            self.scroll += row_count(&entry.text, self.chat_size.0 as usize);
        }
        self.entries.push_back(entry);
        self.trim_entries();
    }

    fn trim_entries(&mut self) {
        if self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
            if self.scroll > 0 {
                self.scroll = self.scroll.min(self.max_scroll());
            }
        }
    }

    fn page(&self) -> usize {
        (self.chat_size.1 as usize).saturating_sub(1).max(1)
    }

    /// Rows the chat takes at the current width, beyond one screenful.
    fn max_scroll(&self) -> usize {
        let width = self.chat_size.0 as usize;
        let rows: usize = self
            .visible_entries()
            .map(|entry| row_count(&entry.text, width))
            .sum();
        rows.saturating_sub(self.chat_size.1 as usize)
    }

    fn scroll_by(&mut self, rows: isize) {
        let wanted = self.scroll.saturating_add_signed(rows);
        self.scroll = wanted.min(self.max_scroll());
    }
}

/// Applies an editing key to `editor`; other keys do nothing.
/// What became of an editing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edit {
    /// Done, or nothing to do.
    Done,
    /// A character refused: the line is full.
    Full,
}

fn edit(editor: &mut LineEditor, key: Key) -> Edit {
    match key {
        Key::Char(c) if !editor.insert(c) && !c.is_control() => return Edit::Full,
        Key::Char(_) => {}
        Key::Backspace => editor.backspace(),
        Key::Delete => editor.delete(),
        Key::Left => editor.left(),
        Key::Right => editor.right(),
        Key::Home => editor.home(),
        Key::End => editor.end(),
        Key::DeleteToStart => editor.delete_to_start(),
        _ => {}
    }
    Edit::Done
}

/// `d` as `0.5 s`, `10 s`.
fn seconds(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::LeaveKind;
    use crate::proto::msg::RoomTag;

    const ADDR: &str = "chat.example:3001";

    /// A fake clock: `ms` milliseconds after `start`.
    fn at(start: Instant, ms: u64) -> Now {
        let secs = ms / 1000;
        Now {
            instant: start + Duration::from_millis(ms),
            stamp: Stamp::new(
                1_700_000_000 + secs as i64,
                9,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
            ),
        }
    }

    fn welcome(name: &str, others: &[&str]) -> Shown {
        Shown::Msg(ServerMsg::Welcome {
            name: name.into(),
            others: others.iter().map(|s| s.to_string()).collect(),
            more: 0,
        })
    }

    fn event(event: Event) -> Shown {
        Shown::Msg(ServerMsg::Event(event))
    }

    fn left(name: &str, kind: LeaveKind) -> Shown {
        event(Event::Left {
            name: name.into(),
            kind,
            reason: None,
        })
    }

    fn reply(kind: u8, line: &str) -> Shown {
        Shown::Reply {
            kind,
            lines: vec![line.into()],
        }
    }

    fn chat(kind: fn(Stamp, String, String) -> ServerMsg, from: &str, text: &str) -> Shown {
        Shown::Msg(kind(
            Stamp::new(1_700_000_000, 9, 0, 0),
            from.into(),
            text.into(),
        ))
    }

    fn room(at: Stamp, from: String, text: String) -> ServerMsg {
        ServerMsg::Chat { at, from, text }
    }

    fn backlog(at: Stamp, from: String, text: String) -> ServerMsg {
        ServerMsg::Backlog { at, from, text }
    }

    fn users(model: &Model) -> Vec<String> {
        model
            .roster()
            .members()
            .iter()
            .map(|m| {
                let mut shown = m.name.clone();
                if m.admin {
                    shown.insert(0, '@');
                }
                if m.away.is_some() {
                    shown.push_str(" (away)");
                }
                shown
            })
            .collect()
    }

    fn texts(model: &Model) -> Vec<&str> {
        model.entries().iter().map(|e| e.text.as_str()).collect()
    }

    fn type_text(model: &mut Model, text: &str, now: &Now, out: &mut Vec<Order>) {
        for c in text.chars() {
            model.key(Key::Char(c), now, out);
        }
    }

    /// A model that has joined `ADDR` as `name` with `others` online, and the orders it gave.
    fn joined(start: Instant, name: &str, others: &[&str]) -> (Model, Vec<Order>) {
        let mut model = Model::new(Some(ADDR.into()), Some(name.into()), (80, 24));
        let mut out = Vec::new();
        let now = at(start, 0);
        model.start(&now, &mut out);
        assert_eq!(
            out,
            vec![Order::Connect {
                addr: ADDR.into(),
                name: name.into()
            }]
        );
        model.connected(&now);
        out.clear();
        model.shown(welcome(name, others), &now, &mut out);
        assert_eq!(*model.link(), Link::Online);
        (model, out)
    }

    #[test]
    fn the_user_list_follows_the_welcome_and_the_room_events() {
        let start = Instant::now();
        let (mut model, out) = joined(start, "alice", &["carol", "bob"]);
        assert_eq!(users(&model), vec!["alice", "bob", "carol"]);
        assert_eq!(
            out,
            vec![
                Order::PingQuietly,
                Order::AskUsersQuietly,
                Order::AskWhoQuietly(None)
            ]
        );
        let now = at(start, 10);
        let mut out = Vec::new();
        model.shown(
            event(Event::Entered {
                name: "dave".into(),
            }),
            &now,
            &mut out,
        );
        model.shown(left("bob", LeaveKind::Exited), &now, &mut out);
        model.shown(left("carol", LeaveKind::Kicked), &now, &mut out);
        assert_eq!(users(&model), vec!["alice", "dave"]);
        assert_eq!(out, vec![], "one quiet /users at a time");
        // The answer to the first quiet /users is kept out of the chat; the marks are taken, and
        // since someone entered meanwhile, the list is asked for again.
        model.shown(
            reply(
                reply_kind::USERS,
                "[*] Online (2): alice (admin), dave (away: tea)",
            ),
            &now,
            &mut out,
        );
        assert_eq!(users(&model), vec!["@alice", "dave (away)"]);
        assert_eq!(out, vec![Order::AskUsersQuietly]);
        assert!(!texts(&model).iter().any(|t| t.contains("Online (")));
        model.shown(
            reply(reply_kind::USERS, "[*] Online (2): alice (admin), dave"),
            &now,
            &mut out,
        );
        assert_eq!(users(&model), vec!["@alice", "dave"]);
        // A /users the user typed is answered in the chat.
        model.shown(
            reply(reply_kind::USERS, "[*] Online (2): alice (admin), dave"),
            &now,
            &mut out,
        );
        assert_eq!(
            texts(&model).last(),
            Some(&"[*] Online (2): alice (admin), dave")
        );
        assert_eq!(
            &texts(&model)[texts(&model).len() - 4..texts(&model).len() - 1],
            &[
                "[*] dave entered.",
                "[*] bob exited.",
                "[*] carol has been kicked out."
            ]
        );
        // Losing the connection forgets who was there.
        model.closed(Some("connection lost"), &now, &mut out);
        assert_eq!(users(&model), Vec::<String>::new());
    }

    fn tag(name: &str) -> RoomTag {
        RoomTag {
            name: name.into(),
            default: name == "#lobby",
        }
    }

    fn in_room(name: &str, line: RoomLine) -> Shown {
        Shown::Msg(ServerMsg::Room {
            room: tag(name),
            line,
        })
    }

    fn said(from: &str, text: &str) -> RoomLine {
        RoomLine::Chat {
            at: Stamp::new(1_700_000_000, 9, 0, 0),
            from: from.into(),
            text: text.into(),
        }
    }

    fn change(change: RoomChange) -> Shown {
        Shown::Msg(change.to_msg())
    }

    fn who(room: &str, members: &[(&str, bool)]) -> Shown {
        Shown::Msg(ServerMsg::Who {
            room: room.into(),
            members: members
                .iter()
                .map(|(name, moderator)| MemberEntry {
                    name: name.to_string(),
                    moderator: *moderator,
                    away: None,
                })
                .collect(),
        })
    }

    fn rooms(model: &Model) -> Vec<(String, usize, usize)> {
        model
            .rooms()
            .iter()
            .map(|r| (r.name.clone(), r.unread, r.mentions))
            .collect()
    }

    fn visible(model: &Model) -> Vec<&str> {
        model.visible_entries().map(|e| e.text.as_str()).collect()
    }

    /// Alice online, the default room named by the quiet `/who`, then in `#dev` and `#ops`
    /// (current), each with its members.
    fn in_two_rooms(start: Instant) -> Model {
        let (mut model, _) = joined(start, "alice", &["bob", "carol"]);
        let now = at(start, 1);
        let mut out = Vec::new();
        model.shown(
            who(
                "#lobby",
                &[("alice", false), ("bob", false), ("carol", false)],
            ),
            &now,
            &mut out,
        );
        assert!(
            !texts(&model).iter().any(|t| t.contains("#lobby (3)")),
            "the quiet /who stays out of the chat"
        );
        for (room, members) in [
            ("#dev", vec![("alice", true), ("bob", false)]),
            ("#ops", vec![("alice", true), ("carol", false)]),
        ] {
            model.shown(
                change(RoomChange::Joined {
                    room: tag(room),
                    members: members.len(),
                    created: false,
                }),
                &now,
                &mut out,
            );
            assert_eq!(out.last(), Some(&Order::AskWhoQuietly(Some(room.into()))));
            model.shown(who(room, &members), &now, &mut out);
        }
        model
    }

    #[test]
    fn rooms_are_listed_with_their_members_and_the_keys_switch_on_the_server_too() {
        let start = Instant::now();
        let mut model = in_two_rooms(start);
        let now = at(start, 2);
        let mut out = Vec::new();
        assert_eq!(
            rooms(&model),
            vec![
                ("#lobby".into(), 0, 0),
                ("#dev".into(), 0, 0),
                ("#ops".into(), 0, 0)
            ]
        );
        assert_eq!(model.current_room(), 2);
        let members = |model: &Model| -> Vec<String> {
            model
                .members()
                .members()
                .iter()
                .map(|m| format!("{}{}", if m.admin { "@" } else { "" }, m.name))
                .collect()
        };
        assert_eq!(members(&model), vec!["@alice", "carol"]);
        assert!(
            !texts(&model).iter().any(|t| t.contains("#ops (2)")),
            "quiet"
        );
        // Alt-2 goes to #dev, here and on the server; the server's answer stays out of the chat.
        model.key(Key::Room(1), &now, &mut out);
        assert_eq!(out, vec![Order::Type("/room #dev".into())]);
        assert_eq!(model.current_room(), 1);
        assert_eq!(members(&model), vec!["@alice", "bob"]);
        model.shown(
            change(RoomChange::Switched { room: tag("#dev") }),
            &now,
            &mut out,
        );
        assert!(!texts(&model)
            .iter()
            .any(|t| t.contains("Your current room")));
        // A typed line is ours in #dev only, and so is an action (the server echoes neither).
        type_text(&mut model, "hello dev", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert!(visible(&model)
            .iter()
            .any(|t| t.ends_with("alice > hello dev")));
        type_text(&mut model, "/me nods", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert!(visible(&model)
            .iter()
            .any(|t| t.ends_with("] * alice nods")));
        // Ctrl-N and Ctrl-P go round the list.
        out.clear();
        model.key(Key::NextRoom, &now, &mut out);
        model.key(Key::NextRoom, &now, &mut out);
        model.key(Key::PreviousRoom, &now, &mut out);
        assert_eq!(
            out,
            vec![
                Order::Type("/room #ops".into()),
                Order::Type("/room #lobby".into()),
                Order::Type("/room #ops".into()),
            ]
        );
        assert!(
            !visible(&model).iter().any(|t| t.ends_with("hello dev")),
            "#dev's line stays in #dev"
        );
        // Alt-9 with no ninth room, or Alt on the current room, does nothing.
        out.clear();
        model.key(Key::Room(8), &now, &mut out);
        model.key(Key::Room(2), &now, &mut out);
        assert_eq!(out, vec![]);
        // Room events keep the members; leaving a room drops it from the list.
        model.shown(
            in_room(
                "#ops",
                RoomLine::Entered {
                    names: vec!["dave".into()],
                    more: 0,
                },
            ),
            &now,
            &mut out,
        );
        assert_eq!(members(&model), vec!["@alice", "carol", "dave"]);
        model.shown(
            change(RoomChange::Parted {
                room: "#ops".into(),
                current: "#dev".into(),
            }),
            &now,
            &mut out,
        );
        assert_eq!(rooms(&model).len(), 2);
        assert_eq!(model.current_room(), 1);
        assert!(visible(&model).iter().any(|t| t.contains("You left #ops")));
    }

    #[test]
    fn a_crowd_notice_names_only_some_so_the_whole_list_is_asked_for_quietly() {
        let start = Instant::now();
        let mut model = in_two_rooms(start);
        let now = at(start, 2);
        let mut out = Vec::new();
        let crowd = |room: &str| {
            in_room(
                room,
                RoomLine::Entered {
                    names: vec!["a".into(), "b".into(), "c".into()],
                    more: 38,
                },
            )
        };
        model.shown(crowd("#dev"), &now, &mut out);
        assert_eq!(out, vec![Order::AskWhoQuietly(Some("#dev".into()))]);
        // The welcome's quiet /users is answered; the crowd in the default room asks again.
        let online = "[*] Online (3): alice, bob, carol";
        model.shown(reply(reply_kind::USERS, online), &now, &mut out);
        out.clear();
        model.shown(crowd("#lobby"), &now, &mut out);
        assert_eq!(out, vec![Order::AskUsersQuietly]);
        assert_eq!(
            rooms(&model)[1],
            ("#dev".into(), 0, 0),
            "events are not unread lines"
        );
    }

    #[test]
    fn help_is_followed_by_the_window_keys() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let mut out = Vec::new();
        model.shown(
            reply(reply_kind::HELP, "[*] /help: list the commands"),
            &at(start, 1),
            &mut out,
        );
        assert_eq!(
            texts(&model)[texts(&model).len() - 2..],
            [
                "[*] /help: list the commands",
                &format!("[~] {WINDOW_KEYS}")
            ]
        );
    }

    #[test]
    fn lines_of_other_rooms_are_counted_unread_and_those_naming_us_as_mentions() {
        let start = Instant::now();
        let mut model = in_two_rooms(start);
        let now = at(start, 2);
        let mut out = Vec::new();
        model.shown(
            in_room("#dev", said("bob", "anyone there?")),
            &now,
            &mut out,
        );
        model.shown(
            in_room("#dev", said("bob", "@Alice, the build is red")),
            &now,
            &mut out,
        );
        model.shown(
            in_room("#dev", said("bob", "malice aforethought")),
            &now,
            &mut out,
        );
        model.shown(chat(room, "carol", "alice: lunch?"), &now, &mut out);
        model.shown(in_room("#ops", said("carol", "hi alice")), &now, &mut out);
        assert_eq!(
            rooms(&model),
            vec![
                ("#lobby".into(), 1, 1),
                ("#dev".into(), 3, 1),
                ("#ops".into(), 0, 0)
            ]
        );
        let ops_line = model.visible_entries().last().unwrap();
        assert!(
            ops_line.mention,
            "a mention in the current room is marked too"
        );
        assert!(!visible(&model).iter().any(|t| t.contains("anyone there")));
        model.key(Key::Room(1), &now, &mut out);
        assert_eq!(rooms(&model)[1], ("#dev".into(), 0, 0), "seen now");
        let shown: Vec<(&str, bool)> = model
            .visible_entries()
            .filter(|e| e.sender() == Some("bob"))
            .map(|e| (e.text.as_str(), e.mention))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("[09:00:00] bob > anyone there?", false),
                ("[09:00:00] bob > @Alice, the build is red", true),
                ("[09:00:00] bob > malice aforethought", false),
            ]
        );
        assert!(names("ping alice.", "alice"));
        assert!(!names("alice.b said", "alice"));
    }

    #[test]
    fn actions_read_as_sentences_and_a_lost_connection_joins_the_rooms_again() {
        let start = Instant::now();
        let mut model = in_two_rooms(start);
        let now = at(start, 2);
        let mut out = Vec::new();
        model.shown(
            in_room(
                "#ops",
                RoomLine::Me {
                    at: Stamp::new(1_700_000_000, 9, 0, 0),
                    from: "carol".into(),
                    text: "waves".into(),
                },
            ),
            &now,
            &mut out,
        );
        assert_eq!(visible(&model).last(), Some(&"[09:00:00] * carol waves"));
        model.closed(Some("connection lost"), &now, &mut out);
        assert_eq!(rooms(&model), vec![("#lobby".into(), 0, 0)]);
        out.clear();
        model.tick(&at(start, 2 + 500), &mut out);
        model.connected(&at(start, 2 + 500));
        out.clear();
        model.shown(welcome("alice", &["bob"]), &at(start, 600), &mut out);
        assert_eq!(
            out[3..],
            [
                Order::Type("/join #dev".into()),
                Order::Type("/join #ops".into()),
                Order::Type("/room #ops".into()),
            ]
        );
    }

    #[test]
    fn a_welcome_that_names_only_some_users_is_completed_by_the_users_reply() {
        let start = Instant::now();
        let mut model = Model::new(Some(ADDR.into()), Some("zed".into()), (80, 24));
        let now = at(start, 0);
        let mut out = Vec::new();
        model.start(&now, &mut out);
        model.connected(&now);
        let welcome = Shown::Msg(ServerMsg::Welcome {
            name: "zed".into(),
            others: vec!["amy".into()],
            more: 2,
        });
        model.shown(welcome, &now, &mut out);
        assert_eq!(users(&model), vec!["amy", "zed"]);
        model.shown(
            reply(reply_kind::USERS, "[*] Online (4): amy, ben, cy, zed"),
            &now,
            &mut out,
        );
        assert_eq!(users(&model), vec!["amy", "ben", "cy", "zed"]);
    }

    #[test]
    fn a_line_over_the_limit_is_sent_in_parts_and_the_window_says_so() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &["bob"]);
        let now = at(start, 1000);
        let mut out = Vec::new();
        let line = "x".repeat(MAX_LINE * 2 + 10);
        type_text(&mut model, &line, &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        let sent: Vec<&str> = out
            .iter()
            .map(|order| match order {
                Order::Type(part) => part.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|part| part.len() <= MAX_LINE));
        assert_eq!(sent.concat(), line);
        let shown = texts(&model);
        assert_eq!(
            shown.last(),
            Some(&"[~] that line was over 8192 bytes: sent as 3 lines")
        );
        assert_eq!(
            shown.iter().filter(|t| t.contains("] alice > x")).count(),
            3
        );
        assert!(model.input().is_empty());
    }

    #[test]
    fn a_command_over_the_limit_is_refused_and_stays_in_the_input() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let now = at(start, 1000);
        let mut out = Vec::new();
        let line = format!("/away {}", "r".repeat(MAX_LINE));
        type_text(&mut model, &line, &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(
            texts(&model).last(),
            Some(
                &"[!] line too long, not sent: /away takes at most 8192 bytes; \
                  the line stays in the input"
            )
        );
        assert_eq!(model.input().text(), line);
    }

    #[test]
    fn a_full_input_line_says_once_that_it_refused_characters() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let now = at(start, 1000);
        let mut out = Vec::new();
        type_text(&mut model, &"y".repeat(MAX_INPUT + 100), &now, &mut out);
        let told = |model: &Model| {
            texts(model)
                .iter()
                .filter(|t| t.starts_with("[!] the input line is full (65536 bytes)"))
                .count()
        };
        assert_eq!(told(&model), 1);
        assert_eq!(model.input().text().len(), MAX_INPUT);
        model.key(Key::Backspace, &now, &mut out);
        type_text(&mut model, "zz", &now, &mut out);
        assert_eq!(told(&model), 2);
    }

    #[test]
    fn typing_edits_the_line_enter_sends_it_and_up_and_down_browse_the_history() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &["bob"]);
        let now = at(start, 1000);
        let mut out = Vec::new();
        type_text(&mut model, "helo", &now, &mut out);
        model.key(Key::Left, &now, &mut out);
        model.key(Key::Char('l'), &now, &mut out);
        model.key(Key::End, &now, &mut out);
        model.key(Key::Char('!'), &now, &mut out);
        model.key(Key::Home, &now, &mut out);
        model.key(Key::Delete, &now, &mut out);
        model.key(Key::Char('H'), &now, &mut out);
        assert_eq!(model.input().text(), "Hello!");
        model.key(Key::Enter, &now, &mut out);
        type_text(&mut model, "/dm bob psst", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        type_text(&mut model, "/time", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(
            out,
            vec![
                Order::Type("Hello!".into()),
                Order::Type("/dm bob psst".into()),
                Order::Type("/time".into()),
            ]
        );
        // No echo comes from the server: our own lines are shown as sent; commands are not.
        assert_eq!(
            &texts(&model)[texts(&model).len() - 2..],
            &[
                "[09:00:01] alice > Hello!",
                "[09:00:01] [dm to bob] alice > psst"
            ]
        );
        assert!(model.input().is_empty());
        type_text(&mut model, "draft", &now, &mut out);
        model.key(Key::Up, &now, &mut out);
        assert_eq!(model.input().text(), "/time");
        model.key(Key::Up, &now, &mut out);
        model.key(Key::Up, &now, &mut out);
        assert_eq!(model.input().text(), "Hello!");
        model.key(Key::Backspace, &now, &mut out);
        assert_eq!(model.input().text(), "Hello");
        model.key(Key::Down, &now, &mut out);
        model.key(Key::Down, &now, &mut out);
        model.key(Key::Down, &now, &mut out);
        assert_eq!(model.input().text(), "draft");
        model.key(Key::DeleteToStart, &now, &mut out);
        assert!(model.input().is_empty());
    }

    #[test]
    fn page_up_and_down_scroll_a_page_at_a_time_within_the_chat() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let now = at(start, 0);
        let mut out = Vec::new();
        // An 80x24 terminal leaves 18 rows of 56 columns for the chat: a page is 17 rows.
        for i in 0..49 {
            model.shown(chat(room, "bob", &format!("line {i}")), &now, &mut out);
        }
        // The welcome is the 50th entry (one row at 56 columns? it wraps to two).
        let rows: usize = model.entries().iter().map(|e| row_count(&e.text, 56)).sum();
        assert_eq!(model.scroll(), 0);
        model.key(Key::PageUp, &now, &mut out);
        assert_eq!(model.scroll(), 17);
        model.key(Key::PageUp, &now, &mut out);
        model.key(Key::PageUp, &now, &mut out);
        model.key(Key::PageUp, &now, &mut out);
        assert_eq!(model.scroll(), rows - 18, "not past the oldest line");
        model.key(Key::PageDown, &now, &mut out);
        let scrolled = model.scroll();
        assert_eq!(scrolled, rows - 18 - 17);
        // A new line while scrolled back keeps the same lines in view.
        model.shown(chat(room, "bob", "new"), &now, &mut out);
        assert_eq!(model.scroll(), scrolled + 1);
        model.key(Key::Bottom, &now, &mut out);
        assert_eq!(model.scroll(), 0);
        model.key(Key::Top, &now, &mut out);
        assert_eq!(model.scroll(), rows + 1 - 18);
        // A narrower terminal wraps more; a taller one may need no scrolling at all.
        model.resize(80, 200);
        assert_eq!(model.scroll(), 0);
        model.resize(80, 24);
        model.key(Key::PageUp, &now, &mut out);
        type_text(&mut model, "back to the bottom", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(model.scroll(), 0, "sending shows the newest");
    }

    #[test]
    fn a_lost_connection_is_retried_after_half_a_second_doubling_up_to_ten() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &["bob"]);
        let mut out = Vec::new();
        model.closed(Some("connection lost"), &at(start, 0), &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(model.next_deadline(), Some(at(start, 500).instant));
        assert_eq!(
            texts(&model).last(),
            Some(&"[~] connection lost; reconnecting in 0.5 s"),
            "said once"
        );
        model.tick(&at(start, 499), &mut out);
        assert_eq!(out, vec![], "not before its time");
        let mut t = 500;
        let mut waits = Vec::new();
        for _ in 0..7 {
            model.tick(&at(start, t), &mut out);
            assert_eq!(
                out,
                vec![Order::Connect {
                    addr: ADDR.into(),
                    name: "alice".into()
                }]
            );
            out.clear();
            model.connect_failed("Connection refused", &at(start, t), &mut out);
            let Link::Retrying { at: when, delay } = model.link().clone() else {
                panic!("{:?}", model.link())
            };
            assert_eq!(when, at(start, t).instant + delay);
            waits.push(delay.as_millis());
            t += delay.as_millis() as u64;
        }
        assert_eq!(waits, vec![1000, 2000, 4000, 8000, 10000, 10000, 10000]);
        // Joined again: the next loss waits the shortest time again.
        model.tick(&at(start, t), &mut out);
        model.connected(&at(start, t));
        model.shown(welcome("alice", &[]), &at(start, t), &mut out);
        model.closed(Some("the server shut down"), &at(start, t), &mut out);
        assert_eq!(model.next_deadline(), Some(at(start, t + 500).instant));
        assert_eq!(
            texts(&model).last(),
            Some(&"[~] the server shut down; reconnecting in 0.5 s")
        );
        // A connect or a login that never answers counts as a failure too.
        model.tick(&at(start, t + 500), &mut out);
        out.clear();
        model.tick(&at(start, t + 500 + 5000), &mut out);
        assert_eq!(out, vec![Order::Drop]);
        assert!(matches!(model.link(), Link::Retrying { .. }));
    }

    /// A model that connected to `ADDR` as alice and was shown an unknown certificate.
    fn asked_to_trust(start: Instant) -> (Model, Fingerprint) {
        let mut model = Model::new(Some(ADDR.into()), Some("alice".into()), (80, 24));
        let mut out = Vec::new();
        let now = at(start, 0);
        model.start(&now, &mut out);
        model.connected(&now);
        let print = Fingerprint::of(b"certificate");
        out.clear();
        model.unknown_certificate(ADDR, print, "self-signed", &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(
            *model.link(),
            Link::Trusting {
                server: ADDR.into(),
                fingerprint: print
            }
        );
        assert_eq!(model.next_deadline(), None, "it waits for the user");
        assert!(texts(&model).contains(&format!("[!] its fingerprint is {print}").as_str()));
        (model, print)
    }

    #[test]
    fn an_unknown_certificate_is_trusted_with_y_then_remembered_and_joined() {
        let start = Instant::now();
        let (mut model, print) = asked_to_trust(start);
        let now = at(start, 10);
        let mut out = Vec::new();
        model.key(Key::Char('x'), &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(out, vec![], "only y or n answers");
        model.key(Key::Char('y'), &now, &mut out);
        assert_eq!(
            out,
            vec![Order::Remember {
                server: ADDR.into(),
                fingerprint: print
            }]
        );
        out.clear();
        model.remembered(
            Ok("/cfg/chatd/known_servers, line 1".into()),
            &now,
            &mut out,
        );
        assert_eq!(
            out,
            vec![Order::Connect {
                addr: ADDR.into(),
                name: "alice".into()
            }]
        );
        assert!(matches!(model.link(), Link::Connecting { .. }));
        assert!(texts(&model)
            .contains(&"[~] certificate remembered in /cfg/chatd/known_servers, line 1"));
    }

    #[test]
    fn an_unknown_certificate_refused_with_n_stays_offline_until_enter() {
        let start = Instant::now();
        let (mut model, _) = asked_to_trust(start);
        let now = at(start, 10);
        let mut out = Vec::new();
        model.key(Key::Char('n'), &now, &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(*model.link(), Link::Offline);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(
            out,
            vec![Order::Connect {
                addr: ADDR.into(),
                name: "alice".into()
            }]
        );
    }

    #[test]
    fn a_failure_to_remember_is_shown_and_nothing_connects() {
        let start = Instant::now();
        let (mut model, _) = asked_to_trust(start);
        let now = at(start, 10);
        let mut out = Vec::new();
        model.key(Key::Char('Y'), &now, &mut out);
        out.clear();
        model.remembered(Err("read-only file system".into()), &now, &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(*model.link(), Link::Offline);
        assert!(
            texts(&model).contains(&"[!] cannot remember the certificate: read-only file system")
        );
    }

    #[test]
    fn a_changed_certificate_is_shown_loudly_and_not_retried() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &["bob"]);
        let now = at(start, 0);
        let mut out = Vec::new();
        model.certificate_refused("WARNING: CHANGED\nexpected A\nreceived B", &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(*model.link(), Link::Offline);
        assert_eq!(model.next_deadline(), None, "no retry on its own");
        let shown = texts(&model);
        for line in ["[!] WARNING: CHANGED", "[!] expected A", "[!] received B"] {
            assert!(shown.contains(&line), "{line} not in {shown:?}");
        }
        assert_eq!(users(&model), Vec::<String>::new());
        model.key(Key::Escape, &now, &mut out);
        assert_eq!(out, vec![Order::Drop]);
        assert_eq!(*model.link(), Link::Form);
    }

    #[test]
    fn kicked_out_it_waits_until_enter_and_escape_opens_the_form() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &["bob"]);
        let now = at(start, 0);
        let mut out = Vec::new();
        model.shown(
            Shown::Msg(ServerMsg::Kicked {
                by: "Host".into(),
                reason: None,
            }),
            &now,
            &mut out,
        );
        model.closed(Some("kicked out by Host"), &now, &mut out);
        assert_eq!(*model.link(), Link::Offline);
        assert_eq!(model.next_deadline(), None, "no retry on its own");
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(
            out,
            vec![Order::Connect {
                addr: ADDR.into(),
                name: "alice".into()
            }]
        );
        out.clear();
        model.connect_failed("Connection refused", &now, &mut out);
        model.key(Key::Escape, &now, &mut out);
        assert_eq!(out, vec![Order::Drop]);
        assert_eq!(*model.link(), Link::Form);
        let form = model.form().expect("the form");
        assert_eq!(
            (form.server.text(), form.name.text()),
            (ADDR.to_owned(), "alice".to_owned())
        );
    }

    #[test]
    fn without_a_name_the_form_asks_and_a_refused_first_login_returns_to_it() {
        let start = Instant::now();
        let now = at(start, 0);
        let mut model = Model::new(None, None, (80, 24));
        let mut out = Vec::new();
        model.start(&now, &mut out);
        assert_eq!(out, vec![]);
        let form = model.form().expect("the form");
        assert_eq!(form.server.text(), crate::client::DEFAULT_ADDR);
        assert_eq!(form.focus, Field::Name);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(
            model.form().and_then(|f| f.error.clone()),
            Some("a name is needed".into())
        );
        model.key(Key::Tab, &now, &mut out);
        model.key(Key::DeleteToStart, &now, &mut out);
        type_text(&mut model, "other:4000", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        type_text(&mut model, "alice", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(
            out,
            vec![Order::Connect {
                addr: "other:4000".into(),
                name: "alice".into()
            }]
        );
        assert!(model.form().is_none());
        out.clear();
        model.connected(&now);
        model.shown(
            Shown::Refused {
                code: error_code::NAME_TAKEN,
                text: "name taken: someone online already uses it".into(),
            },
            &now,
            &mut out,
        );
        model.refused("name taken: someone online already uses it", &now, &mut out);
        assert_eq!(out, vec![Order::Drop]);
        let form = model.form().expect("back to the form");
        assert_eq!(
            form.error.as_deref(),
            Some("name taken: someone online already uses it")
        );
        assert_eq!(form.focus, Field::Name);
        // A server that cannot be reached before ever joining: back to the form too.
        model.key(Key::Enter, &now, &mut out);
        model.connect_failed("Connection refused", &now, &mut out);
        assert!(model.form().is_some_and(
            |f| f.error.as_deref() == Some("cannot connect to other:4000: Connection refused")
        ));
        model.key(Key::Escape, &now, &mut out);
        assert_eq!(out.last(), Some(&Order::Exit));
    }

    #[test]
    fn the_name_taken_at_a_relogin_is_retried_as_our_old_session_may_still_hold_it() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let mut out = Vec::new();
        model.closed(Some("connection lost"), &at(start, 0), &mut out);
        model.tick(&at(start, 500), &mut out);
        model.connected(&at(start, 500));
        out.clear();
        model.shown(
            Shown::Refused {
                code: error_code::NAME_TAKEN,
                text: "name taken".into(),
            },
            &at(start, 501),
            &mut out,
        );
        model.refused("name taken", &at(start, 501), &mut out);
        assert_eq!(out, vec![Order::Drop]);
        assert!(matches!(model.link(), Link::Retrying { delay, .. } if delay.as_millis() == 1000));
    }

    #[test]
    fn the_password_is_typed_hidden_kept_out_of_history_and_sent_again_on_relogin() {
        let start = Instant::now();
        let now = at(start, 0);
        let mut model = Model::new(Some(ADDR.into()), Some("carol".into()), (80, 24));
        let mut out = Vec::new();
        model.start(&now, &mut out);
        model.connected(&now);
        out.clear();
        model.shown(
            reply(reply_kind::PASSWORD_PROMPT, "Password:"),
            &now,
            &mut out,
        );
        assert!(model.asking_password());
        assert_eq!(
            model.next_deadline(),
            None,
            "no login deadline while typing"
        );
        type_text(&mut model, "s3cret", &now, &mut out);
        assert!(model.input().is_empty(), "typed where it is not drawn");
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(out, vec![Order::Type("s3cret".into())]);
        assert!(!model.asking_password());
        out.clear();
        model.shown(welcome("carol", &[]), &now, &mut out);
        model.key(Key::Up, &now, &mut out);
        assert!(
            model.input().is_empty(),
            "the password is not in the history"
        );
        assert!(!texts(&model).iter().any(|t| t.contains("s3cret")));
        // Lost and back: the same password is given without asking.
        model.closed(Some("connection lost"), &now, &mut out);
        model.tick(&at(start, 500), &mut out);
        model.connected(&at(start, 500));
        out.clear();
        model.shown(
            reply(reply_kind::PASSWORD_PROMPT, "Password:"),
            &at(start, 501),
            &mut out,
        );
        assert_eq!(out, vec![Order::Type("s3cret".into())]);
        assert!(!model.asking_password());
        // If it is refused now (the password was changed), the form asks again.
        out.clear();
        model.shown(
            Shown::Refused {
                code: error_code::WRONG_PASSWORD,
                text: "wrong password".into(),
            },
            &at(start, 502),
            &mut out,
        );
        model.refused("wrong password", &at(start, 502), &mut out);
        assert_eq!(out, vec![Order::Drop]);
        assert!(model.form().is_some());
    }

    #[test]
    fn quiet_pings_time_the_round_trip_and_silence_counts_as_a_lost_connection() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let mut out = Vec::new();
        let pong = |ms: u64, quiet: bool| Shown::Pong {
            round_trip: Some(Duration::from_micros(ms)),
            at: Stamp::new(0, 9, 0, 0),
            quiet,
        };
        model.shown(
            reply(reply_kind::USERS, "[*] Online (1): alice"),
            &at(start, 1),
            &mut out,
        );
        let shown_before = model.entries().len();
        model.shown(pong(420, true), &at(start, 1), &mut out);
        assert_eq!(model.round_trip(), Some(Duration::from_micros(420)));
        assert_eq!(
            model.entries().len(),
            shown_before,
            "a quiet pong is not shown"
        );
        model.shown(pong(380, false), &at(start, 2), &mut out);
        assert_eq!(model.round_trip(), Some(Duration::from_micros(380)));
        assert_eq!(
            texts(&model).last(),
            Some(&"[*] pong in 0.380 ms, server time 09:00:00")
        );
        assert_eq!(model.next_deadline(), Some(at(start, 15_000).instant));
        model.tick(&at(start, 15_000), &mut out);
        assert_eq!(out, vec![Order::PingQuietly, Order::AskUsersQuietly]);
        out.clear();
        // No answer for 20 s: the connection is dropped and tried again.
        model.tick(&at(start, 30_000), &mut out);
        assert_eq!(
            out,
            vec![Order::PingQuietly],
            "the /users asked is not answered yet"
        );
        out.clear();
        model.tick(&at(start, 34_999), &mut out);
        assert_eq!(out, vec![]);
        model.tick(&at(start, 35_000), &mut out);
        assert_eq!(out, vec![Order::Drop]);
        assert!(matches!(model.link(), Link::Retrying { .. }));
        assert_eq!(model.round_trip(), None);
    }

    #[test]
    fn ctrl_c_says_bye_and_waits_a_little_then_a_second_one_exits() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let mut out = Vec::new();
        model.key(Key::Interrupt, &at(start, 0), &mut out);
        assert_eq!(out, vec![Order::Leave]);
        assert!(matches!(model.link(), Link::Leaving { .. }));
        model.key(Key::Interrupt, &at(start, 1), &mut out);
        assert_eq!(out, vec![Order::Leave, Order::Exit]);

        let (mut model, _) = joined(start, "alice", &[]);
        out.clear();
        type_text(&mut model, "/quit lunch", &at(start, 0), &mut out);
        model.key(Key::Enter, &at(start, 0), &mut out);
        assert_eq!(out, vec![Order::Type("/quit lunch".into())]);
        model.closed(None, &at(start, 10), &mut out);
        assert_eq!(out.last(), Some(&Order::Exit));

        let (mut model, _) = joined(start, "alice", &[]);
        out.clear();
        model.interrupted(&at(start, 0), &mut out);
        model.tick(&at(start, 2000), &mut out);
        assert_eq!(
            out,
            vec![Order::Leave, Order::Exit],
            "the server never closed"
        );

        let mut model = Model::new(Some(ADDR.into()), Some("alice".into()), (80, 24));
        out.clear();
        model.start(&at(start, 0), &mut out);
        out.clear();
        model.key(Key::Interrupt, &at(start, 0), &mut out);
        assert_eq!(out, vec![Order::Exit], "nothing to say bye to");
    }

    #[test]
    fn a_line_typed_while_disconnected_stays_in_the_input_and_enter_retries_at_once() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let mut out = Vec::new();
        let now = at(start, 0);
        model.closed(Some("connection lost"), &now, &mut out);
        type_text(&mut model, "are you there", &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(model.input().text(), "are you there");
        model.key(Key::DeleteToStart, &now, &mut out);
        model.key(Key::Enter, &now, &mut out);
        assert_eq!(
            out,
            vec![Order::Connect {
                addr: ADDR.into(),
                name: "alice".into()
            }]
        );
    }

    #[test]
    fn history_lines_shown_already_are_not_repeated_after_a_relogin() {
        let start = Instant::now();
        let (mut model, _) = joined(start, "alice", &[]);
        let mut out = Vec::new();
        let now = at(start, 0);
        model.shown(chat(backlog, "bob", "old"), &now, &mut out);
        model.shown(chat(room, "bob", "hi"), &now, &mut out);
        model.shown(chat(backlog, "bob", "hi"), &now, &mut out);
        model.shown(chat(backlog, "bob", "old"), &now, &mut out);
        model.shown(chat(backlog, "bob", "new to us"), &now, &mut out);
        assert_eq!(
            &texts(&model)[texts(&model).len() - 3..],
            &[
                "[09:00:00] [history] bob > old",
                "[09:00:00] bob > hi",
                "[09:00:00] [history] bob > new to us",
            ]
        );
    }

    #[test]
    fn entries_know_their_parts_for_the_view_to_colour() {
        let entry = Entry::chat(
            EntryKind::DirectIn,
            &Stamp::new(0, 1, 2, 3),
            "[dm] ",
            "bob",
            "a\tb",
        );
        assert_eq!(entry.text, "[01:02:03] [dm] bob > a b");
        let parts: Vec<(&str, Part)> = entry
            .parts
            .iter()
            .map(|(range, part)| (&entry.text[range.clone()], *part))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("[01:02:03] ", Part::Time),
                ("[dm] ", Part::Tag),
                ("bob", Part::Name),
                (" > ", Part::Separator),
                ("a b", Part::Body),
            ]
        );
        assert_eq!(entry.sender(), Some("bob"));
    }
}
