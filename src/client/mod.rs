//! The `chat` client: joins a chatd in framed mode and relays between it and stdin/stdout.
//!
//! [`Session`] decides what to send and what to show; [`run`] is its one-thread mio loop over the
//! socket, stdin and SIGINT/SIGTERM, for scripts; [`ui::run`] is the window a person gets on a
//! terminal, over the same session and [`wire::Wire`] (through [`tls`] for a TLS server). Every line shown is what a text-mode (`nc`) user would see,
//! so the client can be scripted: `printf 'hello\n/quit\n' | chat --name bot` joins, says hello,
//! leaves, waits for the server to close, and exits 0.
//!
//! Stdin is polled non-blocking, and its flags are put back on exit. When it cannot be polled (a
//! regular file, `/dev/null`, a closed fd) a helper thread reads it with blocking reads and hands
//! the chunks over a channel, waking the loop with a `mio::Waker`; the loop stays the only thread
//! that touches the socket or the session. The end of stdin, or a first SIGINT/SIGTERM, means
//! `/quit`; a second signal stops at once.

mod session;
mod target;
pub mod tls;
pub mod ui;
pub mod wire;

pub use session::{Effect, Session, Shown};
pub use target::Target;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::proto::DecodeError;
use crate::stdin::{LineSplitter, PolledStdin, ReadOutcome};
use tls::{TlsFailure, TlsLayer, TlsOptions, TlsSetup};
use wire::{ReadEnd, Wire};

/// The port used when the address names none.
pub const DEFAULT_PORT: u16 = 3001;
/// The server joined when none is named.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3001";
/// Longest line sent, in bytes: a say frame of this size fits any server's frame limit.
pub const MAX_LINE: usize = 8 * 1024;

const SOCKET: Token = Token(0);
const STDIN: Token = Token(1);
const WAKER: Token = Token(2);
const SIGNALS: Token = Token(3);

/// How long to try each address when connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the server to close after our bye.
const LEAVE_LINGER: Duration = Duration::from_secs(5);

/// What the client needs to know to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server, as `HOST:PORT` or `HOST` (port 3001), `tls://` in front for TLS.
    pub addr: String,
    /// The name to join under; asked for on stdin when `None`.
    pub name: Option<String>,
    /// `--tls`: TLS even without `tls://`.
    pub tls: bool,
    /// How TLS trusts the server.
    pub tls_options: TlsOptions,
}

/// Why a session did not end with the user leaving.
#[derive(Debug)]
pub enum Error {
    /// The server could not be reached.
    Connect {
        /// The address as given.
        addr: String,
        /// What the system said.
        source: io::Error,
    },
    /// The server closed the connection, or it was lost, without the user leaving.
    Closed {
        /// What happened, e.g. "connection lost" or "kicked out by Host".
        why: String,
    },
    /// The server refused the name given with `--name`.
    NameRefused {
        /// The name.
        name: String,
        /// The server's reason.
        why: String,
    },
    /// The server sent bytes that are not a frame.
    Protocol(DecodeError),
    /// A local failure: the poll, the signals, the socket's set-up.
    Io {
        /// What was being done.
        context: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// TLS with the server did not work out (see [`TlsFailure`]).
    Tls {
        /// The server, `host:port`.
        server: String,
        /// What went wrong.
        failure: TlsFailure,
    },
    /// The command line asked for something that cannot be set up (an unreadable `--tls-ca`,
    /// an address that is not one).
    Setup(String),
    /// Stopped by a second signal before the server closed.
    Interrupted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            Error::Closed { why } => write!(f, "the server closed the connection: {why}"),
            Error::NameRefused { name, why } => {
                write!(f, "the server refused the name {name}: {why}")
            }
            Error::Protocol(error) => write!(f, "the server sent a bad frame: {error}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Tls { server, failure } => match failure {
                TlsFailure::Refused(refusal) => {
                    f.write_str(&refusal.explain(server))?;
                    match refusal.scripted_hint() {
                        Some(hint) => write!(f, "\n{hint}"),
                        None => Ok(()),
                    }
                }
                TlsFailure::Handshake(why) => {
                    write!(f, "TLS handshake with {server} failed: {why}")
                }
                TlsFailure::Broken(why) => write!(f, "TLS error from {server}: {why}"),
            },
            Error::Setup(why) => f.write_str(why),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Protocol(error) => Some(error),
            _ => None,
        }
    }
}

fn io_context(context: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// Connects, joins, and relays until the session ends; `Ok` when the user left (`/quit` or the end
/// of stdin) and the server closed.
pub fn run(options: Options) -> Result<(), Error> {
    let target = Target::parse(&options.addr, options.tls).map_err(Error::Setup)?;
    let tls = match target.tls {
        true => {
            let setup = TlsSetup::new(options.tls_options).map_err(Error::Setup)?;
            Some(
                setup
                    .start(&target.host, target.port)
                    .map_err(Error::Setup)?,
            )
        }
        false => None,
    };
    let stream = connect(&target)?;
    Client::new(stream, options.name, tls, target.to_string())?.run()
}

/// Connects to the first address of `target` that answers.
fn connect(target: &Target) -> Result<TcpStream, Error> {
    let error = |source| Error::Connect {
        addr: target.to_string(),
        source,
    };
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(error)?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = e,
        }
    }
    Err(error(last_error))
}

/// A chunk of stdin from the reader thread.
enum StdinChunk {
    Bytes(Vec<u8>),
    End,
}

/// Where typed input comes from.
enum Input {
    /// Stdin itself, polled.
    Polled(PolledStdin),
    /// The reader thread, for a stdin that cannot be polled. The loop holds the waker too: when
    /// the thread ends, its wake must not close the eventfd (and lose its event) with it.
    Thread {
        chunks: Receiver<StdinChunk>,
        _waker: Arc<Waker>,
    },
    /// Stdin has ended.
    Ended,
}

/// The client's loop state: the socket, its buffers, stdin, and the session.
struct Client {
    poll: Poll,
    wire: Wire,
    /// The server, `host:port`, for messages.
    server: String,
    input: Input,
    lines: LineSplitter,
    signals: Signals,
    session: Session,
    leave_deadline: Option<Instant>,
    /// SIGINT/SIGTERM received so far.
    signals_taken: usize,
}

impl Client {
    fn new(
        stream: TcpStream,
        name: Option<String>,
        tls: Option<TlsLayer>,
        server: String,
    ) -> Result<Client, Error> {
        let poll = Poll::new().map_err(io_context("cannot create the poll"))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_nonblocking(true)
            .map_err(io_context("cannot configure the socket"))?;
        let socket = mio::net::TcpStream::from_std(stream);
        let wire = Wire::new(socket, poll.registry(), SOCKET, false, tls)
            .map_err(io_context("cannot register the socket"))?;
        let mut signals =
            Signals::new([SIGINT, SIGTERM]).map_err(io_context("cannot catch signals"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(io_context("cannot register signals"))?;
        let input = match PolledStdin::open(poll.registry(), STDIN) {
            Ok(stdin) => Input::Polled(stdin),
            Err(_) => {
                let waker = Waker::new(poll.registry(), WAKER)
                    .map_err(io_context("cannot create a waker"))?;
                let waker = Arc::new(waker);
                Input::Thread {
                    chunks: spawn_stdin_reader(Arc::clone(&waker)),
                    _waker: waker,
                }
            }
        };
        Ok(Client {
            poll,
            wire,
            server,
            input,
            lines: LineSplitter::new(MAX_LINE),
            signals,
            session: Session::new(name),
            leave_deadline: None,
            signals_taken: 0,
        })
    }

    fn run(mut self) -> Result<(), Error> {
        let mut effects = Vec::new();
        self.session.start(&mut effects);
        self.apply(effects);
        let mut events = Events::with_capacity(64);
        loop {
            if let Some(failure) = self.session.take_failure() {
                return Err(failure);
            }
            if !self.flush() {
                return self.finish();
            }
            let now = Instant::now();
            if self.session.is_leaving() && self.leave_deadline.is_none() {
                self.leave_deadline = Some(now + LEAVE_LINGER);
            }
            if self.leave_deadline.is_some_and(|deadline| now >= deadline) {
                // Not eprintln!: stderr may share stdin's non-blocking flag, and must not panic.
                let _ = writeln!(
                    io::stderr(),
                    "chat: the server did not close the connection after bye; leaving anyway"
                );
                return Ok(());
            }
            let timeout = self
                .leave_deadline
                .map(|deadline| deadline.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io_context("poll failed")(e));
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    SOCKET if !self.read_socket(now)? => return self.finish(),
                    STDIN | WAKER => self.read_input(now),
                    SIGNALS => self.take_signals()?,
                    _ => {}
                }
            }
        }
    }

    /// Reads what the server sent and hands each frame to the session; `false` once it has closed.
    fn read_socket(&mut self, now: Instant) -> Result<bool, Error> {
        let mut frames = Vec::new();
        let end = self.wire.read(&mut frames);
        let mut effects = Vec::new();
        for frame in frames {
            self.session.received(frame, now, &mut effects);
        }
        self.apply(effects);
        match end {
            ReadEnd::Open => Ok(true),
            ReadEnd::Closed => Ok(false),
            ReadEnd::Bad(error) => Err(Error::Protocol(error)),
            ReadEnd::Tls(failure) => Err(Error::Tls {
                server: self.server.clone(),
                failure,
            }),
        }
    }

    /// Reads typed input and hands each line to the session.
    fn read_input(&mut self, now: Instant) {
        let mut chunks = Vec::new();
        let ended = match &mut self.input {
            Input::Polled(stdin) => {
                let outcome = stdin.read(|bytes| chunks.push(bytes.to_vec()));
                if outcome == ReadOutcome::Closed {
                    stdin.deregister(self.poll.registry());
                }
                outcome == ReadOutcome::Closed
            }
            Input::Thread {
                chunks: receiver, ..
            } => loop {
                match receiver.try_recv() {
                    Ok(StdinChunk::Bytes(bytes)) => chunks.push(bytes),
                    Ok(StdinChunk::End) | Err(TryRecvError::Disconnected) => break true,
                    Err(TryRecvError::Empty) => break false,
                }
            },
            Input::Ended => false,
        };
        let mut lines = Vec::new();
        for chunk in &chunks {
            self.lines.push(chunk, &mut lines);
        }
        if ended {
            lines.extend(self.lines.finish());
            // Dropping a PolledStdin puts its flags back.
            self.input = Input::Ended;
        }
        let mut effects = Vec::new();
        for line in lines {
            match line {
                Ok(line) => self.session.typed(&line, now, &mut effects),
                Err(_) => self.session.typed_too_long(MAX_LINE, &mut effects),
            }
        }
        if ended {
            self.session.input_ended(&mut effects);
        }
        self.apply(effects);
    }

    /// A first SIGINT/SIGTERM leaves as `/quit` does; a second stops at once.
    fn take_signals(&mut self) -> Result<(), Error> {
        let before = self.signals_taken;
        self.signals_taken += self.signals.pending().count();
        if self.signals_taken > 1 {
            return Err(Error::Interrupted);
        }
        if before == 0 && self.signals_taken == 1 {
            let mut effects = Vec::new();
            self.session.input_ended(&mut effects);
            self.apply(effects);
        }
        Ok(())
    }

    /// Carries out the session's effects: frames to the output buffer, text to stdout.
    fn apply(&mut self, effects: Vec<Effect>) {
        let mut text = Vec::new();
        for effect in effects {
            match effect {
                Effect::Send(frame) => self.wire.send(&frame),
                Effect::Show(shown) => {
                    text.extend_from_slice(shown.render().as_bytes());
                    text.push(b'\n');
                }
            }
        }
        show(&text);
    }

    /// Writes what is queued. `false` if the socket is gone.
    fn flush(&mut self) -> bool {
        self.wire.flush(self.poll.registry())
    }

    /// The server has closed: read what it sent last, then say how the session ended.
    fn finish(mut self) -> Result<(), Error> {
        let _ = self.read_socket(Instant::now());
        self.session.closed(self.wire.preamble())
    }
}

/// Writes `text` to stdout. When stdin and stdout are the same terminal they share the non-blocking
/// flag set for stdin, so a full terminal buffer is waited out (briefly) rather than lost. A closed
/// stdout does not stop the session: there is just nobody to show it to.
fn show(text: &[u8]) {
    const PATIENCE: Duration = Duration::from_secs(2);
    let mut stdout = io::stdout().lock();
    let mut rest = text;
    let mut waited_since = None;
    while !rest.is_empty() {
        match stdout.write(rest) {
            Ok(0) => return,
            Ok(n) => {
                rest = &rest[n..];
                waited_since = None;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let since = *waited_since.get_or_insert_with(Instant::now);
                if since.elapsed() > PATIENCE {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return,
        }
    }
    let _ = stdout.flush();
}

/// Reads stdin with blocking reads on a thread of its own, for a stdin that cannot be polled;
/// each chunk goes over the channel, and `waker` wakes the loop to take it.
fn spawn_stdin_reader(waker: Arc<Waker>) -> Receiver<StdinChunk> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = io::stdin();
        let mut chunk = [0u8; 4096];
        loop {
            let message = match stdin.read(&mut chunk) {
                Ok(0) => StdinChunk::End,
                Ok(n) => StdinChunk::Bytes(chunk[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => StdinChunk::End,
            };
            let end = matches!(message, StdinChunk::End);
            if sender.send(message).is_err() || waker.wake().is_err() || end {
                return;
            }
        }
    });
    receiver
}
