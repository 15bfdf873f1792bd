//! The mio shell: one thread, one `Poll`, every socket, the console, signals and timers.
//!
//! Each turn of the loop: wait (until the earliest timer), handle every event (accept until
//! `WouldBlock`; read until `WouldBlock` or a read that does not fill the buffer (see
//! `Connection::drained_by`), room by room, pass the bytes up each connection's [`stack`] and
//! feed each decoded message to the core; carry out the core's actions by encoding each message
//! once per wire mode and queueing the shared bytes, a room broadcast once in its room's log;
//! once a room's senders are read and the turn holds enough, write its members), then write
//! every connection with new output (each member taking its rooms' broadcasts just before; TLS
//! encrypting at that point), then drop the connections that are done. The shell decides no chat
//! rule; the core decides nothing about sockets.
//!
//! `input.rs` is the reading half (and a new connection's opening: sniffing, greeting),
//! `output.rs` the writing half; this file has the loop, accepting, timers and closing.
//! `metrics.rs` is what the loop counts, `scrape.rs` the `--metrics-listen` listener.

mod accept;
mod admission;
mod clock;
mod cluster;
mod conn;
mod fanout;
mod flood;
mod input;
mod keeper;
mod metrics;
mod output;
mod outqueue;
pub mod roomfile;
mod scrape;
pub mod stack;
mod wire;
mod worker;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::ServerConfig;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::accounts::model::Registry;
use crate::accounts::store::Store;
use crate::cluster::registry::ClusterRegistry;
use crate::config::Config;
use crate::console::{ConsoleInput, ConsoleOutput};
use crate::core::rooms::{IdMap, RoomId};
use crate::core::{
    Action, Chat, ChatConfig, ConnId, Input, Now, Outbox, PasswordOutcome, Recipients,
};
use crate::proto::irc::IrcContext;
use crate::proto::msg::{HostCommand, Reject, ServerMsg};
use crate::proto::Mode;
use crate::rooms::RoomStore;
use admission::Admission;
use clock::Clock;
use conn::{key_of, Closing, Connection};
use fanout::Fanout;
use keeper::Keeper;
use worker::{Accounts, Finished, Reply, Worker, WriteError};

const LISTENER: Token = Token(usize::MAX - 1);
const CONSOLE: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
const WAKER: Token = Token(usize::MAX - 4);
const STDOUT: Token = Token(usize::MAX - 5);
const METRICS: Token = Token(usize::MAX - 6);
const IRC_LISTENER: Token = Token(usize::MAX - 7);

/// Most connection slots reserved at start (about 27 MiB of address space); a server allowed more
/// grows its slab past them.
const MAX_RESERVED_CONNECTIONS: usize = 65_536;

/// How long a connection the server is closing may take to receive what is queued for it.
const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// How long an answered HTTP connection reads what its peer still sends before it is dropped.
const DRAIN_LINGER: Duration = Duration::from_secs(2);
/// The most bytes an answered HTTP connection reads (and drops) before it is dropped.
const MAX_DRAIN: usize = 64 * 1024;
/// How long shutdown may take to flush every client.
const SHUTDOWN_LINGER: Duration = Duration::from_secs(2);
/// How long to wait before accepting again after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often an accept failure may be logged.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// How often the account files are checked for changes made by `chatd user`.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Most messages taken from one client in one turn of the loop; the rest wait for the next turn.
const MAX_MESSAGES_PER_TURN: usize = 32;
/// Broadcasts a turn gathers before the rooms they went to are written, once the senders of one
/// room are read (a few hundred lines and their bytes stay in the cache until they are written).
const FLUSH_AFTER: usize = 512;
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
    /// `--listen-irc`: its connections are IRC from the first byte.
    irc_listener: Option<TcpListener>,
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
    /// This turn's room broadcasts, taken by each member as it is written.
    fanout: Fanout,
    /// Connections marked closing, to drop once done.
    closing: Vec<usize>,
    /// Connections with input left to serve next turn (edge-triggered: no new event will come).
    ready: Vec<(usize, ConnId)>,
    /// The connections to read this turn (kept from turn to turn for its allocation).
    to_serve: Vec<usize>,
    /// The TLS settings new connections get, if the server has TLS.
    tls: Option<Arc<ServerConfig>>,
    /// The server's IRC names, shared by every IRC connection's encodings.
    irc: &'static IrcContext,
    /// Sniffing connections by their deadline (silence makes them text; an unfinished TLS
    /// handshake closes them).
    openings: BinaryHeap<Reverse<(Instant, usize, ConnId)>>,
    /// When to look at each connection's silence again (framed clients get keepalive pings).
    liveness: BinaryHeap<Reverse<(Instant, usize, ConnId)>>,
    next_keepalive: u64,
    /// Connections over the soft output limit, by when to check they still are.
    soft_checks: BinaryHeap<Reverse<(Instant, usize, ConnId)>>,
    /// Connections whose flood allowance ran out, by when it is back.
    paused: BinaryHeap<Reverse<(Instant, usize, ConnId)>>,
    admission: Admission,
    accept_paused_until: Option<Instant>,
    last_accept_log: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    worker: Worker,
    /// The history thread, if the server keeps history on disk.
    keeper: Option<Keeper>,
    next_reload: Instant,
    /// What the shell counts for the metrics.
    counters: metrics::Counters,
    /// The `--metrics-listen` listener and its scrapers, if it was asked for.
    scrape: Option<scrape::Scrape>,
    /// The link to the cluster's other nodes (`--cluster`), if any.
    cluster: Option<cluster::Bridge>,
}

impl Server {
    /// Sets up the loop around an already bound listener, with the accounts in `store` (already
    /// read as `registry`), and the TLS settings `tls` when `config` asks for TLS.
    pub fn new(
        listener: std::net::TcpListener,
        config: Config,
        store: Store,
        registry: Registry,
        tls: Option<Arc<ServerConfig>>,
    ) -> Result<Server, Error> {
        let mut config = config;
        // Descriptors beyond the clients': listener, poll, console, signals, waker, store, logs
        // (about ten), the metrics listener and its scrapers (at most 17), and the refused
        // connections waiting to be told (at most 16): the unit's LimitNOFILE= is max-clients + 48.
        config.max_clients = admission::raise_fd_limit(config.max_clients, 48);
        config.outbuf_soft = config.outbuf_soft.min(config.max_outbuf);
        let poll = Poll::new().map_err(context("could not create the poll"))?;
        let waker =
            Waker::new(poll.registry(), WAKER).map_err(context("could not create the waker"))?;
        let rooms = RoomStore::on(store.data_dir().clone());
        // What the file held at start, the default room included, as the base of each write.
        let saved = roomfile::saved(&config.rooms.persistent);
        let waker = Arc::new(waker);
        let history = keeper::open(&config).map_err(context("could not open the history store"))?;
        // A cluster's accounts are in its Redis; a lone server's in the data directory.
        let accounts = match &config.cluster {
            Some(cluster) => Accounts::Cluster(
                ClusterRegistry::connect(&cluster.url, &cluster.node).map_err(|e| Error {
                    context: "could not reach the cluster's accounts",
                    source: io::Error::other(e),
                })?,
            ),
            None => Accounts::Files(store),
        };
        let worker = Worker::start(accounts, rooms, saved, Arc::clone(&waker))
            .map_err(context("could not start the worker thread"))?;
        listener
            .set_nonblocking(true)
            .map_err(context("could not configure the listener"))?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(context("could not register the listener"))?;
        let mut signals =
            Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(context("could not catch signals"))?;
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
        let mut clock = Clock::new(config.utc_offset);
        let editing = console_in.as_ref().is_some_and(ConsoleInput::edits);
        let console_out = ConsoleOutput::new(editing, clock.now().stamp, poll.registry(), STDOUT);
        let admission =
            Admission::new(config.max_clients, config.max_per_ip, config.limit_loopback);
        let irc = IrcContext::leak(
            &config.server_name,
            &config.rooms.default_room,
            clock.now().stamp.unix,
            config.irc_autojoin,
        );
        Server {
            admission,
            poll,
            listener: Some(listener),
            irc_listener: None,
            signals,
            console_in,
            console_out,
            // Reserved, not touched: the slots never used stay out of the RSS, and the slab is not
            // copied to grow while thousands join.
            conns: Slab::with_capacity(config.max_clients.min(MAX_RESERVED_CONNECTIONS)),
            chat: Chat::new(
                ChatConfig {
                    require_account: config.require_account,
                    allow_register: config.allow_register,
                    history: config.history,
                    name_timeout: config.name_timeout,
                    rooms: config.rooms.clone(),
                    plain_passwords: config
                        .tls
                        .as_ref()
                        .is_none_or(|tls| tls.allow_plain_passwords),
                    epoch: run_epoch(),
                    store_history: history.is_some(),
                    cluster: config.cluster.is_some(),
                    ..ChatConfig::default()
                },
                registry,
                Instant::now(),
            ),
            outbox: Outbox::new(),
            clock,
            config,
            next_serial: 1,
            read_buf: vec![0; READ_CHUNK],
            dirty: Vec::new(),
            fanout: Fanout::default(),
            closing: Vec::new(),
            ready: Vec::new(),
            to_serve: Vec::new(),
            paused: BinaryHeap::new(),
            tls,
            irc,
            openings: BinaryHeap::new(),
            soft_checks: BinaryHeap::new(),
            liveness: BinaryHeap::new(),
            next_keepalive: 1,
            accept_paused_until: None,
            last_accept_log: None,
            shutdown_deadline: None,
            worker,
            keeper: None,
            next_reload: Instant::now() + RELOAD_INTERVAL,
            counters: metrics::Counters::default(),
            scrape: None,
            cluster: None,
        }
        .with_history(history, Arc::clone(&waker))?
        .with_cluster(waker)
    }

    /// Gives every room the lines the store kept of it, and starts the history thread on it.
    fn with_history(
        mut self,
        history: Option<crate::history::HistoryStore>,
        waker: Arc<Waker>,
    ) -> Result<Server, Error> {
        if let Some(history) = history {
            let now = self.clock.now();
            keeper::restore(&mut self.chat, &history, &now, self.config.history);
            let keeper = Keeper::start(history, self.config.history_days, waker)
                .map_err(context("could not start the history thread"))?;
            self.keeper = Some(keeper);
        }
        Ok(self)
    }

    /// Runs until the host or a signal stops the server and every client is flushed and closed.
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(1024);
        self.console_out.flush();
        loop {
            let timeout = self.next_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(context("poll failed")(e));
            }
            let now = self.clock.now();
            let mut readable = std::mem::take(&mut self.to_serve);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_on(&now, false),
                    IRC_LISTENER => self.accept_on(&now, true),
                    CONSOLE => self.read_console(&now),
                    SIGNALS => self.take_signals(&now),
                    WAKER => {
                        self.take_finished(&now);
                        self.take_cluster(&now);
                    }
                    STDOUT => self.console_out.flush(),
                    METRICS => self.accept_scrapers(&now),
                    Token(token) if token >= scrape::FIRST_SCRAPER => {
                        self.serve_scraper(token - scrape::FIRST_SCRAPER)
                    }
                    Token(token) if token >= admission::FIRST_REFUSED => self
                        .admission
                        .read_refused(self.poll.registry(), token - admission::FIRST_REFUSED),
                    Token(key) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            if let Some(conn) = self.conns.get_mut(key) {
                                conn.read_ready(event);
                            }
                            readable.push(key);
                        }
                        if event.is_writable() {
                            self.dirty.push(key);
                        }
                    }
                }
            }
            // With what was left unread last turn (edge-triggered: no new event will come).
            let ready = std::mem::take(&mut self.ready);
            readable.extend(ready.into_iter().filter_map(|(_, id)| self.key(id)));
            self.serve_grouped(&mut readable, &now);
            self.to_serve = readable;
            self.run_timers(&now);
            // Dropping a connection tells the others, which is more output to write.
            self.flush(&now);
            while self.reap(&now) {
                self.flush(&now);
            }
            self.fanout.end_turn();
            self.console_out.flush();
            self.counters.turns.record(now.instant.elapsed());
            if let Some(keeper) = &mut self.keeper {
                keeper.send();
            }
            if self.shutdown_deadline.is_some() && self.conns.is_empty() {
                // Changes still queued (a ban, a registration) must reach the disk.
                self.worker.finish();
                if let Some(keeper) = &mut self.keeper {
                    keeper.finish();
                }
                return self.finish_cluster();
            }
        }
    }

    /// Serves the connections in `keys` (then empties it) room by room: each one its share of
    /// the turn, and those with input left a second share (then they wait on the ready list for
    /// the next turn); what a room's senders said is written to its members before the next
    /// room's senders are read, once the turn holds [`FLUSH_AFTER`] broadcasts. Measured: with
    /// 1,000 users in 50 rooms, reading everyone before writing anyone made a burst's turn 30,000
    /// to 45,000 lines (30 MiB) that every member's write found gone from the cache, and freed
    /// and faulted in again turn after turn; a member's write still carries its room's lines of
    /// the whole turn.
    fn serve_grouped(&mut self, keys: &mut Vec<usize>, now: &Now) {
        let conns = &self.conns;
        by_room(keys, |key| {
            conns.get(key).map_or(RoomId::DEFAULT, |c| c.rooms.group())
        });
        let mut start = 0;
        while start < keys.len() {
            let group = self.conns.get(keys[start]).map(|c| c.rooms.group());
            let end = keys[start..]
                .iter()
                .position(|&key| self.conns.get(key).map(|c| c.rooms.group()) != group)
                .map_or(keys.len(), |n| start + n);
            let waiting = self.ready.len();
            for &key in &keys[start..end] {
                self.serve(key, now);
            }
            let again: Vec<(usize, ConnId)> = self.ready.drain(waiting..).collect();
            for (_, id) in again {
                if let Some(key) = self.key(id) {
                    self.serve(key, now);
                }
            }
            if self.fanout.len() >= FLUSH_AFTER {
                self.flush(now);
            }
            start = end;
        }
        keys.clear();
    }

    /// The poll timeout: until the earliest pending deadline, or none.
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let linger = self
            .closing
            .iter()
            .filter_map(|&key| match self.conns.get(key)?.closing {
                Some(Closing::AfterFlush { deadline } | Closing::Draining { deadline, .. }) => {
                    Some(deadline)
                }
                _ => None,
            });
        linger
            .chain(self.accept_paused_until)
            .chain(self.shutdown_deadline)
            .chain(Some(self.next_reload))
            .chain(self.paused.peek().map(|Reverse((at, _, _))| *at))
            .chain(self.soft_checks.peek().map(|Reverse((at, _, _))| *at))
            .chain(self.liveness.peek().map(|Reverse((at, _, _))| *at))
            .chain(self.openings.peek().map(|Reverse((at, _, _))| *at))
            .chain(self.chat.next_deadline())
            .chain(self.scrape.as_ref().and_then(scrape::Scrape::next_deadline))
            .chain(self.admission.next_deadline())
            .chain(self.cluster_hold_deadline(now))
            .min()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    fn run_timers(&mut self, now: &Now) {
        self.check_openings(now);
        self.check_scrapers(now);
        self.admission
            .expire_refused(self.poll.registry(), now.instant);
        while let Some(&Reverse((at, key, id))) = self.liveness.peek() {
            if at > now.instant {
                break;
            }
            self.liveness.pop();
            self.check_liveness(key, id, now);
        }
        while let Some(&Reverse((at, key, id))) = self.soft_checks.peek() {
            if at > now.instant {
                break;
            }
            self.soft_checks.pop();
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.id == id) else {
                continue;
            };
            let limit = self.config.outbuf_soft_time;
            if conn
                .over_soft_since
                .is_some_and(|since| now.instant.duration_since(since) >= limit)
            {
                let why = format!(
                    "slow consumer: over {} queued bytes for {limit:?} ({} now)",
                    self.config.outbuf_soft,
                    conn.out.pending()
                );
                conn.out.clear();
                self.counters.slow_consumer(metrics::SlowLimit::Soft);
                self.close_with(key, Closing::Now, log::Level::Warn, why);
            }
        }
        self.release_cluster_input(now);
        while let Some(&Reverse((at, key, id))) = self.paused.peek() {
            if at > now.instant {
                break;
            }
            self.paused.pop();
            if self.key(id) == Some(key) {
                self.serve(key, now);
            }
        }
        if self
            .chat
            .next_deadline()
            .is_some_and(|deadline| now.instant >= deadline)
        {
            self.feed(now, Input::Tick);
        }
        if now.instant >= self.next_reload {
            self.next_reload = now.instant + RELOAD_INTERVAL;
            self.worker.reload(false);
        }
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

    fn read_console(&mut self, now: &Now) {
        let Some(console) = &mut self.console_in else {
            return;
        };
        let mut commands = Vec::new();
        let closed = console.read(&mut self.console_out, now.stamp, &mut commands);
        for command in commands {
            self.feed(now, Input::Host(command));
        }
        if let Some(why) = closed {
            log::info!("console closed ({why}); serving on without it");
            if let Some(console) = self.console_in.take() {
                console.deregister(self.poll.registry());
            }
        }
    }

    fn take_signals(&mut self, now: &Now) {
        let signals: Vec<i32> = self.signals.pending().collect();
        for signal in signals {
            if signal == SIGHUP {
                crate::service::log::reopen();
                log::info!("SIGHUP: reading the account files again");
                self.worker.reload(true);
                self.reload_certificate();
            } else if self.shutdown_deadline.is_some() {
                log::warn!("signal {signal} during shutdown: closing every connection now");
                self.shutdown_deadline = Some(now.instant);
            } else {
                log::info!("signal {signal}: shutting down");
                self.feed(now, Input::Host(HostCommand::Exit));
            }
        }
    }

    /// Reads the TLS certificate and key again: new connections get the new ones, connections
    /// already open keep theirs; if the files cannot be used, the old ones go on serving.
    fn reload_certificate(&mut self) {
        let Some(settings) = &self.config.tls else {
            return;
        };
        match crate::tls::server::load(&settings.cert, &self.config.data_dir) {
            Ok(cert) => {
                log::info!("SIGHUP: {}", cert.announcement());
                self.tls = Some(cert.config);
            }
            Err(e) => log::error!("SIGHUP: kept the TLS certificate in use: {e}"),
        }
    }

    /// Hands the worker's results and the history thread's answers to the core.
    fn take_finished(&mut self, now: &Now) {
        let answers = self
            .keeper
            .as_mut()
            .map(Keeper::answers)
            .unwrap_or_default();
        for answer in answers {
            self.feed(now, Input::History(answer));
        }
        for finished in self.worker.finished() {
            match finished {
                // A result for a connection that is gone (its key maybe reused) is dropped here.
                Finished::Password { conn, outcome } if self.key(conn).is_some() => {
                    self.feed(now, Input::PasswordDone { conn, outcome });
                }
                Finished::Password { .. } => {}
                Finished::Stored { result, reply } => self.stored(result, reply, now),
                Finished::Reloaded {
                    changed,
                    result: Ok(registry),
                } if !self.worker.stores_pending() => {
                    if changed {
                        log::info!("account files changed on disk; read them again");
                    } else {
                        log::info!("account files read again (unchanged on disk)");
                    }
                    self.feed(now, Input::RegistryLoaded(registry));
                }
                Finished::Reloaded { result: Ok(_), .. } => {}
                Finished::RoomsSaved { result: Ok(count) } => {
                    log::info!("persistent rooms saved ({count} in the rooms file)");
                }
                Finished::RoomsSaved { result: Err(e) } => {
                    log::error!("could not save the persistent rooms: {e}");
                }
                Finished::Reloaded { result: Err(e), .. } => {
                    log::error!("could not read the accounts again: {e}")
                }
            }
        }
    }

    /// Sends a change's confirmation once it is on disk, or tells its recipients it failed.
    fn stored(&mut self, result: Result<(), WriteError>, reply: Option<Reply>, now: &Now) {
        let answer = match result {
            Ok(()) => reply,
            Err(WriteError::Taken(on_disk)) => {
                log::warn!("kept an account registered on disk meanwhile");
                // The core forgets its own version before anyone can log in against it.
                self.feed(now, Input::RegistryLoaded(on_disk));
                reply.map(|(to, _)| (to, ServerMsg::Reject(Reject::AlreadyRegistered)))
            }
            Err(e @ (WriteError::Store(_) | WriteError::Cluster(_))) => {
                log::error!("could not save an account change: {e}");
                reply.map(|(to, _)| (to, ServerMsg::Reject(Reject::Failed)))
            }
        };
        if let Some((to, msg)) = answer {
            self.deliver(to, msg, now);
        }
    }

    /// A framed, WebSocket or IRC client silent for `--ping-interval` gets a keepalive ping (a
    /// WebSocket ping frame for the page, which the browser answers by itself; a PING line for
    /// IRC); one that has let
    /// `--ping-misses` of them go unanswered is closed. Text clients are never pinged (TCP
    /// keepalive finds their dead peers).
    fn check_liveness(&mut self, key: usize, id: ConnId, now: &Now) {
        let interval = self.config.ping_interval;
        let Some(conn) = self
            .conns
            .get_mut(key)
            .filter(|c| c.id == id && c.closing.is_none())
        else {
            return;
        };
        if !matches!(conn.mode(), Some(Mode::Framed | Mode::Web | Mode::Irc(_))) {
            return;
        }
        let silent = now.instant.saturating_duration_since(conn.last_heard);
        if silent < interval {
            let next = conn.last_heard + interval;
            self.liveness.push(Reverse((next, key, id)));
            return;
        }
        if conn.pings_unanswered >= self.config.ping_misses {
            let why = format!(
                "idle timeout: no answer to {} keepalive pings",
                conn.pings_unanswered
            );
            return self.close(key, Closing::Now, &why);
        }
        conn.pings_unanswered += 1;
        let nonce = self.next_keepalive;
        self.next_keepalive += 1;
        self.liveness
            .push(Reverse((now.instant + interval, key, id)));
        self.deliver(Recipients::One(id), ServerMsg::KeepAlive { nonce }, now);
    }

    /// Hands one input to the core and carries out what it asks.
    fn feed(&mut self, now: &Now, input: Input) {
        self.chat.handle(now, input, &mut self.outbox);
        let mut outbox = std::mem::take(&mut self.outbox);
        for action in outbox.drain() {
            match action {
                Action::Deliver { to, msg } => self.deliver(to, msg, now),
                Action::Joined { conn } => {
                    if let Some(conn) = self.key(conn).and_then(|key| self.conns.get_mut(key)) {
                        // The tighter input limit of a connection without a name is lifted.
                        conn.joined();
                        conn.rooms.enter(RoomId::DEFAULT, self.fanout.end());
                    }
                }
                Action::EnteredRoom { conn, room } => {
                    if let Some(key) = self.key(conn) {
                        // What its other rooms had before comes first: then one number says
                        // where it is in all of them.
                        self.take_broadcasts(key, now);
                        if let Some(conn) = self.conns.get_mut(key) {
                            conn.rooms.enter(room, self.fanout.end());
                        }
                    }
                }
                Action::LeftRoom { conn, room } => {
                    if let Some(key) = self.key(conn) {
                        // It still gets what was broadcast to the room before.
                        self.take_broadcasts(key, now);
                        if let Some(conn) = self.conns.get_mut(key) {
                            conn.rooms.leave(room);
                        }
                    }
                }
                Action::SaveRooms { rooms } => {
                    let default = &self.config.rooms.default_room;
                    self.worker.save_rooms(roomfile::from_core(&rooms, default));
                }
                Action::Close { conn, why } => {
                    if let Some(key) = self.key(conn) {
                        // It leaves the room: it still gets what was broadcast before.
                        self.take_broadcasts(key, now);
                        if let Some(conn) = self.conns.get_mut(key) {
                            conn.rooms.leave_all();
                        }
                        let deadline = now.instant + CLOSE_LINGER;
                        self.close(key, Closing::AfterFlush { deadline }, why.to_string());
                    }
                }
                // A ghost's jobs are its own node's.
                Action::Password { conn, .. } if cluster::is_ghost(conn) => {}
                Action::Password { conn, job } => {
                    if !self.worker.password(conn, job) {
                        self.feed(
                            now,
                            Input::PasswordDone {
                                conn,
                                outcome: PasswordOutcome::Failed,
                            },
                        );
                    }
                }
                // In a cluster the node whose user or console made a change writes it, once.
                Action::Store { .. } if self.cluster.as_ref().is_some_and(|b| b.foreign) => {}
                Action::Store { change, reply } => self.worker.store(change, reply),
                Action::History(job) => {
                    if let (Some(keeper), Some(job)) = (&mut self.keeper, cluster::job_here(job)) {
                        keeper.push(job);
                    }
                }
                Action::Shutdown => self.begin_shutdown(now),
                Action::Publish(shared) => self.publish(shared, now),
            }
        }
        self.outbox = outbox;
    }

    /// Marks `key` closing; it is no longer read and is dropped by `reap` once done. The first
    /// reason given is the one its disconnect line shows.
    fn close(&mut self, key: usize, how: Closing, why: impl Into<String>) {
        self.close_with(key, how, log::Level::Info, why);
    }

    /// [`Server::close`], its disconnect line logged at `level`.
    fn close_with(&mut self, key: usize, how: Closing, level: log::Level, why: impl Into<String>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let why = why.into();
        log::debug!("{} closing: {why}", conn.label());
        conn.why.get_or_insert_with(|| Box::new((level, why)));
        let already = conn.closing.is_some();
        match (conn.closing, how) {
            (Some(Closing::Now), _) => return,
            (
                Some(Closing::AfterFlush { .. } | Closing::Draining { .. }),
                Closing::AfterFlush { .. },
            ) => return,
            _ => conn.closing = Some(how),
        }
        if let Closing::AfterFlush { .. } = how {
            // A WebSocket ends with a close frame, after everything queued before it.
            let reason = conn
                .why
                .as_ref()
                .map(|why| why.1.clone())
                .unwrap_or_default();
            if conn.seal(&reason, self.shutdown_deadline.is_some()) {
                self.dirty.push(key);
            }
        }
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
                Some(conn) if conn.should_drain() => {
                    self.begin_drain(key, now);
                    continue;
                }
                Some(_) => {}
            }
            let mut conn = self.conns.remove(key);
            if !conn.released {
                self.admission.release(conn.peer());
                end_stream(&mut conn);
            }
            let _ = self.poll.registry().deregister(&mut conn.socket);
            let _ = conn.socket.shutdown(std::net::Shutdown::Both);
            let (level, why) = conn
                .why
                .take()
                .map_or_else(|| (log::Level::Info, "closed".to_owned()), |why| *why);
            log::log!(level, "{} disconnected: {why}", conn.label());
            freed = true;
            if conn.mode().is_some() {
                self.feed(now, Input::Disconnected { conn: conn.id });
            }
        }
        if freed && self.accept_paused_until.is_some() {
            self.accept_paused_until = None;
            self.accept(now);
        }
        freed
    }

    /// Shuts the sending side of `key`, whose answer is written, and reads (and drops) what the
    /// peer still sends until it closes, [`MAX_DRAIN`] bytes or [`DRAIN_LINGER`]: closing a socket
    /// with unread bytes resets the connection, and the peer may then lose the answer. It no
    /// longer counts toward the per-address limit.
    fn begin_drain(&mut self, key: usize, now: &Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        end_stream(conn);
        let _ = conn.socket.shutdown(std::net::Shutdown::Write);
        conn.closing = Some(Closing::Draining {
            deadline: now.instant + DRAIN_LINGER,
            left: MAX_DRAIN,
        });
        conn.released = true;
        conn.readable = true;
        self.admission.release(conn.peer());
        self.closing.push(key);
        // Bytes that came before may be waiting with no new event to tell of them.
        self.drain(key);
    }

    /// Reads and drops what a draining connection's peer sent; its end, or the budget used up,
    /// makes it done.
    pub(super) fn drain(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut buf = std::mem::take(&mut self.read_buf);
        while let Some(Closing::Draining { deadline, left }) = conn.closing {
            if !conn.readable {
                break;
            }
            match io::Read::read(&mut conn.socket, &mut buf[..left.min(READ_CHUNK)]) {
                Ok(0) => conn.closing = Some(Closing::Now),
                Ok(n) => {
                    let left = left - n;
                    conn.closing = Some(Closing::Draining { deadline, left });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => conn.closing = Some(Closing::Now),
            }
        }
        self.read_buf = buf;
    }

    fn begin_shutdown(&mut self, now: &Now) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        for mut listener in [self.listener.take(), self.irc_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        crate::service::notify::stopping();
        self.admission.tell_all_refused(self.poll.registry());
        let deadline = now.instant + SHUTDOWN_LINGER;
        self.shutdown_deadline = Some(deadline);
        self.console_out.end_typing();
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

/// Orders `keys` (the connections to read this turn, in the order they came) room by room: each
/// room's senders in the order they came, the rooms in the order their first sender came, so
/// that lines are still taken in the order they arrived within a room; a key listed twice is
/// kept where it came first. `room` says which room a key's connection is read with.
fn by_room(keys: &mut Vec<usize>, room: impl Fn(usize) -> RoomId) {
    let mut order: Vec<(usize, usize)> = keys.iter().enumerate().map(|(at, &k)| (k, at)).collect();
    order.sort_unstable();
    order.dedup_by_key(|&mut (key, _)| key);
    order.sort_unstable_by_key(|&(_, at)| at);
    let mut rank: IdMap<RoomId, usize> = IdMap::default();
    let mut ranked: Vec<(usize, usize, usize)> = order
        .into_iter()
        .map(|(key, at)| {
            let next = rank.len();
            (*rank.entry(room(key)).or_insert(next), at, key)
        })
        .collect();
    ranked.sort_unstable();
    keys.clear();
    keys.extend(ranked.into_iter().map(|(_, _, key)| key));
}

/// Ends a TLS stream properly (one try at telling the peer it ends here, not cut short).
fn end_stream(conn: &mut Connection) {
    if conn.transport.is_tls() && !conn.transport.is_handshaking() {
        conn.transport.close_notify();
        let _ = conn
            .transport
            .write(&mut Default::default(), &mut conn.socket);
    }
}

/// A number for this run of the server, so that the line ids of an earlier run (a page that
/// was open across a restart) are known as such: the start time in nanoseconds and the pid, in
/// 32 bits (at most eight hex digits in every line id the WebSocket mode sends).
fn run_epoch() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    // The low 32 bits of the nanoseconds change at every start (a restart that drew the same
    // ones, one in four billion, would resume across it); the pid tells apart two servers
    // started in the same nanosecond.
    u64::from((nanos as u32) ^ std::process::id().rotate_left(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_ordered_room_by_room_in_the_order_they_came_and_listed_once() {
        // Keys 7 and 3 are in room 2, 5 and 1 in the default room, 9 in room 1; 3 came twice.
        let room = |key: usize| match key {
            7 | 3 => RoomId(2),
            9 => RoomId(1),
            _ => RoomId::DEFAULT,
        };
        let mut keys = vec![7, 5, 3, 9, 1, 3];
        by_room(&mut keys, room);
        assert_eq!(keys, vec![7, 3, 5, 1, 9]);
    }
}
