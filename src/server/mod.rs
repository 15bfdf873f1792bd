//! The mio shell: one thread, one `Poll`, every socket, the console, signals and timers.
//!
//! Each turn of the loop: wait (until the earliest timer), handle every event (accept until
//! `WouldBlock`; read until `WouldBlock` and feed each decoded message to the core; carry out the
//! core's actions by encoding each message once per wire mode and queueing the shared bytes),
//! then write every connection with new output, then drop the connections that are done. The
//! shell decides no chat rule; the core decides nothing about sockets.

mod clock;
mod conn;
mod outqueue;
mod wire;

use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::config::Config;
use crate::console::{ConsoleInput, ConsoleOutput, ReadOutcome};
use crate::core::{Action, Chat, ConnId, Input, Now, Outbox, Recipients};
use crate::proto::msg::{HostCommand, Reject, ServerMsg};
use crate::proto::{text, Mode};
use clock::Clock;
use conn::{conn_id, key_of, Closing, Connection};
use wire::WireBytes;

const LISTENER: Token = Token(usize::MAX - 1);
const CONSOLE: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);

/// How long a connection the server is closing may take to receive what is queued for it.
const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// How long shutdown may take to flush every client.
const SHUTDOWN_LINGER: Duration = Duration::from_secs(2);
/// How long to wait before accepting again after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often an accept failure may be logged.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes read from a socket per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// A failure that stops the whole server (never one caused by a single client).
#[derive(Debug)]
pub struct Error {
    context: &'static str,
    source: io::Error,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn context(context: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error { context, source }
}

/// The running server: the event loop and everything it owns.
pub struct Server {
    poll: Poll,
    listener: Option<TcpListener>,
    signals: Signals,
    console_in: Option<ConsoleInput>,
    console_out: ConsoleOutput,
    conns: Slab<Connection>,
    chat: Chat,
    outbox: Outbox,
    clock: Clock,
    config: Config,
    next_serial: u64,
    read_buf: Vec<u8>,
    /// Connections with output queued since the last flush.
    dirty: Vec<usize>,
    /// Connections marked closing, to drop once done.
    closing: Vec<usize>,
    accept_paused_until: Option<Instant>,
    last_accept_log: Option<Instant>,
    shutdown_deadline: Option<Instant>,
}

impl Server {
    /// Sets up the loop around an already bound listener.
    pub fn new(listener: std::net::TcpListener, config: Config) -> Result<Server, Error> {
        let poll = Poll::new().map_err(context("could not create the poll"))?;
        listener
            .set_nonblocking(true)
            .map_err(context("could not configure the listener"))?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(context("could not register the listener"))?;
        let mut signals =
            Signals::new([SIGINT, SIGTERM]).map_err(context("could not catch signals"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(context("could not register signals"))?;
        let console_in = if config.console {
            match ConsoleInput::open(poll.registry(), CONSOLE) {
                Ok(console) => Some(console),
                Err(e) => {
                    log::warn!("running without a console: stdin cannot be polled ({e})");
                    None
                }
            }
        } else {
            log::info!("running without a console (--no-console)");
            None
        };
        let console_out = ConsoleOutput::new(console_in.is_some());
        Ok(Server {
            poll,
            listener: Some(listener),
            signals,
            console_in,
            console_out,
            conns: Slab::new(),
            chat: Chat::new(),
            outbox: Outbox::new(),
            clock: Clock::new(config.utc_offset),
            config,
            next_serial: 1,
            read_buf: vec![0; READ_CHUNK],
            dirty: Vec::new(),
            closing: Vec::new(),
            accept_paused_until: None,
            last_accept_log: None,
            shutdown_deadline: None,
        })
    }

    /// Runs until the host or a signal stops the server and every client is flushed and closed.
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(1024);
        let now = self.clock.now();
        self.console_out.prompt(now.stamp);
        loop {
            let timeout = self.next_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(context("poll failed")(e));
            }
            let now = self.clock.now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(&now),
                    CONSOLE => self.read_console(&now),
                    SIGNALS => self.take_signals(&now),
                    Token(key) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(key, &now);
                        }
                        if event.is_writable() {
                            self.dirty.push(key);
                        }
                    }
                }
            }
            self.run_timers(&now);
            // Dropping a connection tells the others, which is more output to write.
            self.flush();
            while self.reap(&now) {
                self.flush();
            }
            if self.shutdown_deadline.is_some() && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    /// The poll timeout: until the earliest pending deadline, or none.
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let linger = self
            .closing
            .iter()
            .filter_map(|&key| match self.conns.get(key)?.closing {
                Some(Closing::AfterFlush { deadline }) => Some(deadline),
                _ => None,
            });
        linger
            .chain(self.accept_paused_until)
            .chain(self.shutdown_deadline)
            .min()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    fn run_timers(&mut self, now: &Now) {
        if self
            .accept_paused_until
            .is_some_and(|until| now.instant >= until)
        {
            self.accept_paused_until = None;
            self.accept(now);
        }
        if self
            .shutdown_deadline
            .is_some_and(|deadline| now.instant >= deadline)
        {
            for (key, conn) in self.conns.iter_mut() {
                conn.closing = Some(Closing::Now);
                self.closing.push(key);
            }
        }
    }

    fn accept(&mut self, now: &Now) {
        if self.accept_paused_until.is_some() {
            return;
        }
        while let Some(listener) = &self.listener {
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_resource_exhaustion(&e) => {
                    // Queued connections raise no new edge: come back on a timer or a close.
                    self.accept_paused_until = Some(now.instant + ACCEPT_BACKOFF);
                    self.log_accept_error(now, &e);
                    return;
                }
                Err(e) => {
                    self.log_accept_error(now, &e);
                    continue;
                }
            };
            if self.conns.len() >= self.config.max_clients {
                log::warn!(
                    "refused {peer}: server full ({} clients)",
                    self.config.max_clients
                );
                let mut refusal = Vec::new();
                text::encode(
                    &ServerMsg::Reject(Reject::ServerFull),
                    text::CLIENT_EOL,
                    &mut refusal,
                );
                let _ = io::Write::write(&mut socket, &refusal);
                continue;
            }
            if let Err(e) = socket.set_nodelay(true) {
                log::debug!("could not set TCP_NODELAY for {peer}: {e}");
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let id = conn_id(self.next_serial, key);
            self.next_serial += 1;
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut socket, Token(key), Interest::READABLE)
            {
                log::warn!("could not register {peer}: {e}");
                continue;
            }
            entry.insert(Connection::new(socket, id, self.config.limits));
            log::info!("{id} connected from {peer}");
            self.feed(now, Input::Connected { conn: id });
        }
    }

    fn log_accept_error(&mut self, now: &Now, error: &io::Error) {
        if self
            .last_accept_log
            .is_none_or(|at| now.instant.duration_since(at) >= ACCEPT_LOG_INTERVAL)
        {
            self.last_accept_log = Some(now.instant);
            log::error!("accept failed: {error}");
        }
    }

    fn read_console(&mut self, now: &Now) {
        let Some(console) = &mut self.console_in else {
            return;
        };
        let mut commands = Vec::new();
        let outcome = console.read(&mut commands);
        let typed = !commands.is_empty();
        for command in commands {
            self.feed(now, Input::Host(command));
        }
        if outcome == ReadOutcome::Closed {
            log::info!("console closed (end of input); serving on without it");
            if let Some(console) = self.console_in.take() {
                console.deregister(self.poll.registry());
            }
        } else if typed && self.shutdown_deadline.is_none() {
            self.console_out.prompt(now.stamp);
        }
    }

    fn take_signals(&mut self, now: &Now) {
        let signals: Vec<i32> = self.signals.pending().collect();
        for signal in signals {
            if self.shutdown_deadline.is_some() {
                log::warn!("signal {signal} during shutdown: closing every connection now");
                self.shutdown_deadline = Some(now.instant);
            } else {
                log::info!("signal {signal}: shutting down");
                self.feed(now, Input::Host(HostCommand::Exit));
            }
        }
    }

    fn read(&mut self, key: usize, now: &Now) {
        let mut buf = std::mem::take(&mut self.read_buf);
        while let Some(conn) = self.conns.get_mut(key).filter(|c| c.closing.is_none()) {
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    // A message cut off by the end of the stream is dropped, never decoded.
                    let why = match conn.inbuf.len() {
                        0 => "closed by peer".to_owned(),
                        n => format!("closed by peer, dropping {n} bytes of an unfinished message"),
                    };
                    let deadline = now.instant + CLOSE_LINGER;
                    self.close(key, Closing::AfterFlush { deadline }, &why);
                    break;
                }
                Ok(n) => self.take_input(key, &buf[..n], now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(key, Closing::Now, &format!("read failed: {e}"));
                    break;
                }
            }
        }
        self.read_buf = buf;
    }

    /// Decodes what `key` sent, feeding each message to the core; keeps any partial message.
    fn take_input(&mut self, key: usize, bytes: &[u8], now: &Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.inbuf.is_empty() {
            let used = self.decode(key, bytes, now);
            if let Some(conn) = self.conns.get_mut(key) {
                conn.inbuf.extend_from_slice(&bytes[used..]);
            }
        } else {
            conn.inbuf.extend_from_slice(bytes);
            let pending = std::mem::take(&mut conn.inbuf);
            let used = self.decode(key, &pending, now);
            if let Some(conn) = self.conns.get_mut(key) {
                conn.inbuf = pending;
                conn.inbuf.drain(..used);
            }
        }
    }

    /// Feeds every whole message at the front of `bytes` to the core; returns the bytes used.
    fn decode(&mut self, key: usize, bytes: &[u8], now: &Now) -> usize {
        let mut start = 0;
        while let Some(conn) = self.conns.get_mut(key).filter(|c| c.closing.is_none()) {
            let step = conn.decoder.decode(&bytes[start..]);
            start += step.used;
            let conn = conn.id;
            match step.item {
                None => break,
                Some(Ok(msg)) => self.feed(now, Input::Message { conn, msg }),
                Some(Err(error)) => self.feed(now, Input::BadInput { conn, error }),
            }
        }
        start
    }

    /// Hands one input to the core and carries out what it asks.
    fn feed(&mut self, now: &Now, input: Input) {
        self.chat.handle(now, input, &mut self.outbox);
        let mut outbox = std::mem::take(&mut self.outbox);
        for action in outbox.drain() {
            match action {
                Action::Deliver { to, msg } => self.deliver(to, &msg, now),
                Action::Close { conn } => {
                    if let Some(key) = self.key(conn) {
                        let deadline = now.instant + CLOSE_LINGER;
                        self.close(
                            key,
                            Closing::AfterFlush { deadline },
                            "closed by the server",
                        );
                    }
                }
                Action::Shutdown => self.begin_shutdown(now),
            }
        }
        self.outbox = outbox;
    }

    /// Queues `msg` for every recipient, encoded at most once per wire mode and shared.
    fn deliver(&mut self, to: Recipients, msg: &ServerMsg, now: &Now) {
        let to_console = matches!(
            to,
            Recipients::Console | Recipients::Room { console: true, .. }
        );
        if to_console {
            self.console_out.show(msg, now.stamp);
        }
        let mut wire = WireBytes::new(msg);
        match to {
            Recipients::Console => {}
            Recipients::One(conn) => {
                if let Some(key) = self.key(conn) {
                    self.enqueue_msg(key, &mut wire);
                }
            }
            Recipients::Room { except, .. } => {
                let keys: Vec<usize> = self
                    .chat
                    .members()
                    .filter(|&m| Some(m) != except)
                    .filter_map(|m| self.key(m))
                    .collect();
                for key in keys {
                    self.enqueue_msg(key, &mut wire);
                }
            }
            Recipients::Everyone => {
                let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
                for key in keys {
                    self.enqueue_msg(key, &mut wire);
                }
            }
        }
    }

    /// Queues the message's bytes for `key` in the connection's mode; text until the mode is known.
    fn enqueue_msg(&mut self, key: usize, wire: &mut WireBytes<'_>) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let mode = conn.decoder.mode().unwrap_or(Mode::Text);
        let bytes = wire.for_mode(mode);
        self.enqueue(key, &bytes);
    }

    fn enqueue(&mut self, key: usize, bytes: &Rc<[u8]>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing == Some(Closing::Now) {
            return;
        }
        if conn.out.pending() + bytes.len() > self.config.max_outbuf {
            log::warn!(
                "{}: slow consumer, {} bytes queued past the {} byte limit; disconnecting",
                conn.id,
                conn.out.pending(),
                self.config.max_outbuf
            );
            conn.out.clear();
            self.close(key, Closing::Now, "slow consumer");
            return;
        }
        if conn.out.is_empty() {
            self.dirty.push(key);
        }
        conn.out.push(Rc::clone(bytes));
    }

    /// Writes every connection with new output; WRITABLE interest only for those left with bytes.
    fn flush(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &key in &dirty {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.closing == Some(Closing::Now) {
                continue;
            }
            if let Err(e) = conn.out.write_to(&mut conn.socket) {
                conn.out.clear();
                self.close(key, Closing::Now, &format!("write failed: {e}"));
                continue;
            }
            let wanted = conn.wanted_interest();
            let writable = wanted.is_writable();
            if writable != conn.writable_interest {
                conn.writable_interest = writable;
                if let Err(e) =
                    self.poll
                        .registry()
                        .reregister(&mut conn.socket, Token(key), wanted)
                {
                    self.close(key, Closing::Now, &format!("reregister failed: {e}"));
                }
            }
        }
        dirty.clear();
        self.dirty = dirty;
    }

    /// Marks `key` closing; it is no longer read and is dropped by `reap` once done.
    fn close(&mut self, key: usize, how: Closing, why: &str) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let already = conn.closing.is_some();
        match (conn.closing, how) {
            (Some(Closing::Now), _) => return,
            (Some(Closing::AfterFlush { .. }), Closing::AfterFlush { .. }) => return,
            _ => conn.closing = Some(how),
        }
        log::info!("{} closing: {why}", conn.id);
        if !already {
            self.closing.push(key);
        }
    }

    /// Drops the connections that are done and tells the core they are gone; returns whether any was.
    fn reap(&mut self, now: &Now) -> bool {
        let candidates = std::mem::take(&mut self.closing);
        let mut freed = false;
        for key in candidates {
            match self.conns.get(key) {
                None => continue,
                Some(conn) if !conn.is_done(now.instant) => {
                    self.closing.push(key);
                    continue;
                }
                Some(_) => {}
            }
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.socket);
            let _ = conn.socket.shutdown(std::net::Shutdown::Both);
            log::info!("{} disconnected", conn.id);
            freed = true;
            self.feed(now, Input::Disconnected { conn: conn.id });
        }
        if freed && self.accept_paused_until.is_some() {
            self.accept_paused_until = None;
            self.accept(now);
        }
        freed
    }

    fn begin_shutdown(&mut self, now: &Now) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let deadline = now.instant + SHUTDOWN_LINGER;
        self.shutdown_deadline = Some(deadline);
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.close(
                key,
                Closing::AfterFlush { deadline },
                "server shutting down",
            );
        }
    }

    /// The slab key of `id`, if that connection is still there.
    fn key(&self, id: ConnId) -> Option<usize> {
        let key = key_of(id);
        self.conns
            .get(key)
            .filter(|conn| conn.id == id)
            .map(|_| key)
    }
}

/// Whether an accept error means the process or system is out of descriptors or memory.
fn is_resource_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
            || code == rustix::io::Errno::NOBUFS.raw_os_error()
            || code == rustix::io::Errno::NOMEM.raw_os_error()
    )
}
