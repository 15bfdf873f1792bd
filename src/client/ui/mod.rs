//! The `chat` window: what `chat` shows when stdin and stdout are a terminal.
//!
//! Four parts, each depending only on those before it:
//! - [`model`]: the window's state, pure: key presses, what the session shows and what became of
//!   the connection go in, [`model::Order`]s come out. Unit-tested without a terminal.
//! - [`view`]: draws the model with ratatui widgets ([`layout`] places the panes, [`wrap`] cuts
//!   chat lines into rows the same way for the model's scrolling and the drawing; [`split`] cuts a
//!   typed line too long for one message into several).
//! - [`terminal`]: raw mode and the alternate screen, put back on every way out, and the thread
//!   that reads keys and resizes.
//! - [`run`], here: the one-thread mio loop. It owns the connection (a [`Wire`] and a
//!   [`Session`], made anew for each login), carries out the model's orders, feeds it the
//!   session's effects, the keys, the signals and the time, and redraws after each turn.

pub mod editor;
pub mod layout;
pub mod model;
pub mod roster;
pub mod split;
pub mod terminal;
pub mod view;
pub mod wrap;

use std::collections::VecDeque;
use std::io::{self, Stdout};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Poll, Token, Waker};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use time::UtcOffset;

use super::tls::verify::Refusal;
use super::tls::{known, TlsFailure, TlsLayer, TlsOptions, TlsSetup};
use super::wire::{ReadEnd, Wire};
use super::{io_context, Effect, Error, Session, Target};
use crate::proto::msg::Stamp;
use model::{Model, Now, Order};
use terminal::{TerminalGuard, TerminalInput};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);

/// Runs the window until the user quits: connects to `addr` as `name`, or asks for whichever is
/// missing first; with TLS when `tls` or the address says `tls://`, trusting as `tls_options`
/// say. Only a local failure (the terminal, the poll) ends it with an error; a lost connection
/// is retried.
pub fn run(
    addr: Option<String>,
    name: Option<String>,
    tls: bool,
    tls_options: TlsOptions,
) -> Result<(), Error> {
    // An unreadable --tls-ca is the command line's mistake: said before the window opens.
    let tls_setup = if tls || tls_options.ca.is_some() {
        Some(TlsSetup::new(tls_options.clone()).map_err(Error::Setup)?)
    } else {
        None
    };
    // Read before any thread starts: the local offset cannot be read safely after.
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let poll = Poll::new().map_err(io_context("cannot create the poll"))?;
    let waker = Waker::new(poll.registry(), WAKER).map_err(io_context("cannot create a waker"))?;
    let waker = Arc::new(waker);
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(io_context("cannot catch signals"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, mio::Interest::READABLE)
        .map_err(io_context("cannot register signals"))?;
    let guard = TerminalGuard::enter().map_err(io_context("cannot set up the terminal"))?;
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))
        .map_err(io_context("cannot set up the terminal"))?;
    let size = terminal
        .size()
        .map_err(io_context("cannot read the terminal size"))?;
    let keys = terminal::spawn_reader(Arc::clone(&waker))
        .map_err(io_context("cannot start the terminal reader"))?;
    let mut window = Window {
        poll,
        model: Model::new(addr, name, (size.width, size.height)),
        terminal,
        keys,
        keys_ended: false,
        _waker: waker,
        signals,
        signals_taken: 0,
        connection: None,
        tls,
        tls_options,
        tls_setup,
        offset,
        exit: false,
    };
    let result = window.run();
    drop(window);
    drop(guard);
    result
}

/// A connection and the session on it.
struct Connection {
    /// Where it goes.
    target: Target,
    wire: Wire,
    session: Session,
    /// Still connecting; the session starts once connected.
    connecting: bool,
    /// Addresses still to try if this one fails.
    untried: Vec<SocketAddr>,
}

/// The loop's state.
struct Window {
    poll: Poll,
    model: Model,
    terminal: Terminal<CrosstermBackend<Stdout>>,
    keys: Receiver<TerminalInput>,
    keys_ended: bool,
    /// Kept alive as long as the reader thread may wake us.
    _waker: Arc<Waker>,
    signals: Signals,
    signals_taken: usize,
    connection: Option<Connection>,
    /// `--tls`: TLS even without `tls://`.
    tls: bool,
    tls_options: TlsOptions,
    /// Made at the first TLS connection (it loads the system's roots), then kept.
    tls_setup: Option<TlsSetup>,
    offset: UtcOffset,
    exit: bool,
}

impl Window {
    fn run(&mut self) -> Result<(), Error> {
        let now = self.now();
        let mut orders = Vec::new();
        self.model.start(&now, &mut orders);
        self.carry_out(orders, &now);
        let mut events = Events::with_capacity(64);
        loop {
            let now = self.now();
            let mut orders = Vec::new();
            self.model.tick(&now, &mut orders);
            self.carry_out(orders, &now);
            self.flush(&now);
            if self.exit {
                return Ok(());
            }
            self.terminal
                .draw(|frame| view::draw(frame, &self.model))
                .map_err(io_context("cannot draw the window"))?;
            let timeout = self
                .model
                .next_deadline()
                .map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io_context("poll failed")(e));
            }
            let now = self.now();
            for event in events.iter() {
                match event.token() {
                    SOCKET => self.socket_ready(&now),
                    WAKER => self.terminal_input(&now),
                    SIGNALS => self.take_signals(&now),
                    _ => {}
                }
            }
        }
    }

    fn now(&self) -> Now {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Now {
            instant: Instant::now(),
            stamp: Stamp::local(unix, self.offset),
        }
    }

    /// Carries out the model's orders, and the orders that come of them, in turn.
    fn carry_out(&mut self, orders: Vec<Order>, now: &Now) {
        let mut queue = VecDeque::from(orders);
        while let Some(order) = queue.pop_front() {
            let mut more = Vec::new();
            match order {
                Order::Connect { addr, name } => {
                    self.connection = None;
                    match self.open(&addr, name) {
                        Ok(connection) => self.connection = Some(connection),
                        Err(why) => self.model.connect_failed(&why, now, &mut more),
                    }
                }
                Order::Type(line) => self.with_session(now, &mut more, |session, effects| {
                    session.typed(&line, now.instant, effects)
                }),
                Order::PingQuietly => self.with_session(now, &mut more, |session, effects| {
                    session.ping_quietly(now.instant, effects)
                }),
                Order::AskUsersQuietly => self.with_session(now, &mut more, |session, effects| {
                    session.typed("/users", now.instant, effects)
                }),
                Order::AskWhoQuietly(room) => {
                    let line = match room {
                        Some(room) => format!("/who {room}"),
                        None => "/who".to_owned(),
                    };
                    self.with_session(now, &mut more, |session, effects| {
                        session.typed(&line, now.instant, effects)
                    })
                }
                Order::Leave => self.with_session(now, &mut more, |session, effects| {
                    session.input_ended(effects)
                }),
                Order::Remember {
                    server,
                    fingerprint,
                } => {
                    let result =
                        match self.tls_options.known_servers.as_deref() {
                            Some(path) => known::remember(path, &server, fingerprint)
                                .map(|line| format!("{}, line {line}", path.display()))
                                .map_err(|e| format!("{}: {}", path.display(), reason(&e))),
                            None => Err("no config directory: HOME and XDG_CONFIG_HOME are unset"
                                .to_owned()),
                        };
                    self.model.remembered(result, now, &mut more);
                }
                Order::Drop => self.connection = None,
                Order::Exit => self.exit = true,
            }
            queue.extend(more);
        }
    }

    /// Lets `act` drive the session (if connected and started), then carries out its effects.
    fn with_session(
        &mut self,
        now: &Now,
        orders: &mut Vec<Order>,
        act: impl FnOnce(&mut Session, &mut Vec<Effect>),
    ) {
        let Some(connection) = self.connection.as_mut().filter(|c| !c.connecting) else {
            return;
        };
        let mut effects = Vec::new();
        act(&mut connection.session, &mut effects);
        self.apply(effects, now, orders);
    }

    /// Frames to the wire, the rest to the model; a session that failed (its login refused) is
    /// dropped and the model told.
    fn apply(&mut self, effects: Vec<Effect>, now: &Now, orders: &mut Vec<Order>) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        for effect in effects {
            match effect {
                Effect::Send(frame) => connection.wire.send(&frame),
                Effect::Show(shown) => self.model.shown(shown, now, orders),
            }
        }
        if let Some(failure) = connection.session.take_failure() {
            self.connection = None;
            let why = match failure {
                Error::NameRefused { why, .. } => why,
                other => other.to_string(),
            };
            self.model.refused(&why, now, orders);
        }
    }

    /// Starts connecting to the first address of `addr` that takes the attempt.
    fn open(&mut self, addr: &str, name: String) -> Result<Connection, String> {
        let target = Target::parse(addr, self.tls)?;
        if target.tls && self.tls_setup.is_none() {
            self.tls_setup = Some(TlsSetup::new(self.tls_options.clone())?);
        }
        // A name lookup blocks the loop; it is short, and the window is waiting for it anyway.
        let mut untried: Vec<SocketAddr> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| reason(&e))?
            .collect();
        untried.reverse();
        let wire = self.try_next(&target, &mut untried)?;
        Ok(Connection {
            target,
            wire,
            session: Session::new(Some(name)),
            connecting: true,
            untried,
        })
    }

    /// A new TLS session for `target`, if it is TLS.
    fn tls_layer(&self, target: &Target) -> Result<Option<TlsLayer>, String> {
        match (&self.tls_setup, target.tls) {
            (Some(setup), true) => setup.start(&target.host, target.port).map(Some),
            _ => Ok(None),
        }
    }

    /// Starts connecting to the next of `untried`.
    fn try_next(&self, target: &Target, untried: &mut Vec<SocketAddr>) -> Result<Wire, String> {
        let mut last_error = "no address found".to_owned();
        while let Some(addr) = untried.pop() {
            let tls = self.tls_layer(target)?;
            match mio::net::TcpStream::connect(addr)
                .and_then(|socket| Wire::new(socket, self.poll.registry(), SOCKET, true, tls))
            {
                Ok(wire) => return Ok(wire),
                Err(e) => last_error = reason(&e),
            }
        }
        Err(last_error)
    }

    /// The socket is ready: finish connecting, or read what the server sent.
    fn socket_ready(&mut self, now: &Now) {
        let mut orders = Vec::new();
        self.read_socket(now, &mut orders);
        self.carry_out(orders, now);
    }

    fn read_socket(&mut self, now: &Now, orders: &mut Vec<Order>) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        if connection.connecting {
            match connection.wire.connected() {
                Ok(false) => return,
                Ok(true) => {
                    connection.connecting = false;
                    let _ = connection.wire.set_nodelay();
                    self.model.connected(now);
                    let mut effects = Vec::new();
                    connection.session.start(&mut effects);
                    self.apply(effects, now, orders);
                }
                Err(e) => {
                    let mut untried = std::mem::take(&mut connection.untried);
                    let target = connection.target.clone();
                    match self.try_next(&target, &mut untried) {
                        Ok(wire) => {
                            if let Some(connection) = self.connection.as_mut() {
                                connection.wire = wire;
                                connection.untried = untried;
                            }
                        }
                        Err(_) => {
                            self.connection = None;
                            self.model.connect_failed(&reason(&e), now, orders);
                        }
                    }
                    return;
                }
            }
        }
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        let mut frames = Vec::new();
        let end = connection.wire.read(&mut frames);
        let mut effects = Vec::new();
        for frame in frames {
            connection
                .session
                .received(frame, now.instant, &mut effects);
        }
        self.apply(effects, now, orders);
        match end {
            ReadEnd::Open => {}
            ReadEnd::Closed => self.closed(None, now, orders),
            ReadEnd::Bad(error) => self.closed(Some(Error::Protocol(error)), now, orders),
            ReadEnd::Tls(failure) => self.tls_failed(failure, now, orders),
        }
    }

    /// TLS failed: a certificate not taken goes to the model to ask about or to warn of; the
    /// rest is a lost connection.
    fn tls_failed(&mut self, failure: TlsFailure, now: &Now, orders: &mut Vec<Order>) {
        let Some(connection) = self.connection.as_ref() else {
            return;
        };
        let target = connection.target.clone();
        let server = known::server_key(&target.host, target.port);
        match failure {
            TlsFailure::Refused(Refusal::Unknown { seen, why }) => {
                self.connection = None;
                self.model.unknown_certificate(&server, seen, &why, orders);
            }
            TlsFailure::Refused(refusal) => {
                self.connection = None;
                self.model
                    .certificate_refused(&refusal.explain(&target.to_string()), orders);
            }
            failure => {
                let error = Error::Tls {
                    server: target.to_string(),
                    failure,
                };
                self.closed(Some(error), now, orders);
            }
        }
    }

    /// The connection ended: the session says how, unless `error` already does.
    fn closed(&mut self, error: Option<Error>, now: &Now, orders: &mut Vec<Order>) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let ending = match error {
            Some(error) => Err(error),
            None => connection.session.closed(connection.wire.preamble()),
        };
        match ending {
            Ok(()) => self.model.closed(None, now, orders),
            Err(Error::Closed { why }) => self.model.closed(Some(&why), now, orders),
            Err(other) => self.model.closed(Some(&other.to_string()), now, orders),
        }
    }

    /// Writes what is queued; a write failure is a lost connection.
    fn flush(&mut self, now: &Now) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        if connection.connecting || connection.wire.flush(self.poll.registry()) {
            return;
        }
        let mut orders = Vec::new();
        self.closed(None, now, &mut orders);
        self.carry_out(orders, now);
    }

    /// Keys and resizes from the reader thread.
    fn terminal_input(&mut self, now: &Now) {
        let mut orders = Vec::new();
        loop {
            match self.keys.try_recv() {
                Ok(TerminalInput::Key(key)) => self.model.key(key, now, &mut orders),
                Ok(TerminalInput::Resize(columns, rows)) => self.model.resize(columns, rows),
                Ok(TerminalInput::Ended) | Err(TryRecvError::Disconnected) => {
                    if !std::mem::replace(&mut self.keys_ended, true) {
                        self.model.interrupted(now, &mut orders);
                    }
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        self.carry_out(orders, now);
    }

    /// A first SIGINT/SIGTERM/SIGHUP leaves as Ctrl-C does; a second ends at once.
    fn take_signals(&mut self, now: &Now) {
        let before = self.signals_taken;
        self.signals_taken += self.signals.pending().count();
        if self.signals_taken > 1 {
            self.exit = true;
        } else if before == 0 && self.signals_taken == 1 {
            let mut orders = Vec::new();
            self.model.interrupted(now, &mut orders);
            self.carry_out(orders, now);
        }
    }
}

/// What the system said, without its error number: "Connection refused".
fn reason(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
