//! The mio loop that runs every connection of a load run on one thread.
//!
//! A run goes through stages: **joining** (connect at most `connect_batch` at a time, send the join
//! bytes, wait for the welcome; with `--rooms`, then join the client's room and wait for the
//! confirmation), **probing** (client 0, or the first member of each room, says a probe until
//! every other client has seen one, so the server is known to relay to everyone before anything
//! is measured), then
//! **running** (burst or rate), **draining** (until every delivery has come, or nothing has come
//! for a while), or for an idle run **holding**. Reads are handled before writes in each turn, so
//! the tool drains the server before it adds more.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConnection;

use super::histogram::Histogram;
use super::payload::{Kind, Marker};
use super::procfs::{MachineSample, Process, ProcessGroup, Sample};
use super::report::{addrs_text, si, Latency, MachineUse, NodeUse, Report, ServerUse};
use super::settings::{Scenario, Settings};
use super::tally::{Delivery, Tally};
use super::wire::{Incoming, Reader, Wire};

/// Bytes read from a socket per call.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes of messages a bursting client generates at a time, so send times stay close to the write.
const BURST_CHUNK: usize = 16 * 1024;
/// How often client 0 says another probe while waiting for everyone to see one.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// How long draining waits with nothing new arriving before it counts the rest as lost.
const DRAIN_QUIET: Duration = Duration::from_secs(2);
/// How often progress is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// A failure that stops a run before it can measure anything.
#[derive(Debug)]
pub struct LoadError {
    context: String,
    source: io::Error,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps an I/O error with what was being done.
pub(super) fn context(context: impl Into<String>) -> impl FnOnce(io::Error) -> LoadError {
    let context = context.into();
    move |source| LoadError { context, source }
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Connecting and joining.
    Joining,
    /// Connect: making new connections one after another.
    Connecting,
    /// Waiting for a probe to reach every client.
    Probing,
    /// Sending the measured messages.
    Running,
    /// Everything is sent; waiting for the last deliveries.
    Draining,
    /// Idle: every connection joined; holding them.
    Holding,
    /// Finished.
    Done,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Joining => "joining",
            Stage::Connecting => "connecting",
            Stage::Probing => "probing",
            Stage::Running => "running",
            Stage::Draining => "draining",
            Stage::Holding => "holding",
            Stage::Done => "done",
        })
    }
}

/// A look at a run in progress, for the progress line.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// The stage.
    pub stage: Stage,
    /// Connections joined so far.
    pub joined: usize,
    /// Connections asked for.
    pub clients: usize,
    /// Messages written out whole so far.
    pub sent: u64,
    /// Messages to send in all.
    pub planned: u64,
    /// Distinct deliveries so far.
    pub delivered: u64,
    /// Deliveries per second since the previous progress report.
    pub recent_rate: f64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:6.1} s] {}: joined {}/{}",
            self.elapsed.as_secs_f64(),
            self.stage,
            self.joined,
            self.clients
        )?;
        if self.planned > 0 {
            write!(
                f,
                ", sent {}/{}, delivered {} ({}/s)",
                self.sent,
                self.planned,
                self.delivered,
                si(self.recent_rate)
            )?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    Connecting,
    Joining,
    /// Welcomed; joining its room.
    JoiningRoom,
    Joined,
    Closed,
}

struct Client {
    socket: TcpStream,
    /// With `--tls`, its session: `out` is plaintext handed to it, the socket carries records.
    tls: Option<Box<ClientConnection>>,
    state: ClientState,
    /// Whether it ever joined (it may have been closed since).
    was_joined: bool,
    /// Bytes to write, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// Measured messages in `out`, counted as sent once `out` is written whole.
    lines_in_out: u64,
    next_seq: u64,
    reader: Reader,
    /// The last write would have blocked; wait for a WRITABLE event.
    blocked: bool,
    /// In the ready list.
    queued: bool,
    probe_seen: bool,
    /// While joining, the last line the server sent, to explain a refusal.
    last_line: Option<String>,
}

impl Client {
    fn all_written(&self) -> bool {
        self.written == self.out.len()
            && self
                .tls
                .as_ref()
                .is_none_or(|tls| !tls.wants_write() && !tls.is_handshaking())
    }
}

enum Written {
    /// Everything queued is written; this many measured messages with it.
    All(u64),
    Blocked,
    /// TLS: the plaintext waits in the session until the handshake is done.
    Handshaking,
    Failed(String),
}

fn write_out(client: &mut Client) -> Written {
    if client.tls.is_some() {
        return write_tls(client);
    }
    while client.written < client.out.len() {
        match client.socket.write(&client.out[client.written..]) {
            Ok(0) => return Written::Failed("the connection accepts no more bytes".into()),
            Ok(n) => client.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                client.blocked = true;
                return Written::Blocked;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Written::Failed(format!("write failed: {e}")),
        }
    }
    client.out.clear();
    client.written = 0;
    Written::All(std::mem::take(&mut client.lines_in_out))
}

/// [`write_out`] through the client's TLS session: the plaintext goes into the session whole (it
/// is encrypted at once, or once the handshake is done), then its records to the socket.
fn write_tls(client: &mut Client) -> Written {
    let Client {
        socket,
        tls: Some(tls),
        out,
        written,
        blocked,
        lines_in_out,
        ..
    } = client
    else {
        return Written::Failed("no TLS session".into());
    };
    if *written < out.len() {
        if let Err(e) = tls.writer().write_all(&out[*written..]) {
            return Written::Failed(format!("TLS refused the plaintext: {e}"));
        }
        out.clear();
        *written = 0;
    }
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(0) => return Written::Failed("the connection accepts no more bytes".into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *blocked = true;
                return Written::Blocked;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Written::Failed(format!("write failed: {e}")),
        }
    }
    if tls.is_handshaking() {
        return Written::Handshaking;
    }
    Written::All(std::mem::take(lines_in_out))
}

/// What one read's lines meant to a client, taken into its state once the bytes are fed.
#[derive(Default)]
struct Fed {
    welcomed: bool,
    in_room: bool,
    probed: bool,
    last_line: Option<String>,
}

/// Feeding one read's bytes of client `i` to its reader, with the accounting they go to.
struct Feeding<'a> {
    wire: &'a Wire,
    received: &'a mut Received,
    i: usize,
    joining: bool,
    now_ns: u64,
    fed: Fed,
}

impl Feeding<'_> {
    /// Feeds `bytes` (the next received, or their plaintext) to `reader`, accounting for every
    /// line.
    fn bytes(&mut self, reader: &mut Reader, bytes: &[u8]) {
        let Feeding {
            wire,
            received,
            i,
            joining,
            now_ns,
            fed,
        } = self;
        reader.feed(wire, bytes, |item| match item {
            Incoming::Welcome => fed.welcomed = true,
            Incoming::Other => received.other_lines += 1,
            Incoming::Line(line) => {
                if *joining {
                    fed.last_line = Some(String::from_utf8_lossy(line).into_owned());
                }
                fed.probed |= received.line(*i, line, *now_ns);
            }
            Incoming::RoomJoined => fed.in_room = true,
        });
    }
}

/// The receiving side's accounting.
struct Received {
    run: u32,
    tally: Tally,
    latency: Histogram,
    /// Latency of the deliveries between clients of different servers.
    cross_latency: Histogram,
    /// The server each client is connected to ([`Settings::server_of`]).
    server_of: Vec<u32>,
    /// Deliveries to each server's clients.
    node_delivered: Vec<u64>,
    other_lines: u64,
    last_delivery_ns: Option<u64>,
}

impl Received {
    /// Accounts for one line `receiver` got at `now_ns`; returns whether it was a probe.
    fn line(&mut self, receiver: usize, line: &[u8], now_ns: u64) -> bool {
        let marker = Marker::find(line).filter(|m| m.run == self.run);
        let Some(marker) = marker else {
            self.other_lines += 1;
            return false;
        };
        match marker.kind {
            Kind::Probe => {
                self.other_lines += 1;
                true
            }
            Kind::Data => {
                let delivery = self
                    .tally
                    .receive(receiver, marker.sender as usize, marker.seq);
                if delivery == Delivery::New {
                    let latency = now_ns.saturating_sub(marker.sent_ns);
                    self.latency.record(latency);
                    let node = |client: usize| self.server_of.get(client).copied();
                    let (to, from) = (node(receiver), node(marker.sender as usize));
                    if to != from {
                        self.cross_latency.record(latency);
                    }
                    if let Some(count) = to.and_then(|n| self.node_delivered.get_mut(n as usize)) {
                        *count += 1;
                    }
                    self.last_delivery_ns = Some(now_ns);
                }
                false
            }
        }
    }
}

/// A load run: its sockets, its stage and its accounting.
struct Load<'a> {
    settings: &'a Settings,
    poll: Poll,
    clients: Vec<Client>,
    /// The one clock every send and receive time is read from.
    origin: Instant,
    deadline: Instant,
    stage: Stage,
    received: Received,
    /// Bursting clients that may write now.
    ready: VecDeque<usize>,
    read_buf: Vec<u8>,
    payload: Vec<u8>,
    burst_lines: u64,
    in_flight: usize,
    /// A connect failed at once; no more are started.
    connect_stopped: bool,
    joined: usize,
    join_failures: usize,
    dropped: usize,
    first_error: Option<String>,
    joins_done: Option<Instant>,
    probes_sent: u64,
    next_probe: Instant,
    run_started: Option<Instant>,
    rate_next: u64,
    max_lag_ns: u64,
    drain_started: Option<Instant>,
    hold_until: Option<Instant>,
    finished: Option<Instant>,
    timed_out: bool,
    server: Option<ProcessGroup>,
    server_before: Option<Vec<Sample>>,
    server_run: Option<Vec<Sample>>,
    server_after: Option<Vec<Sample>>,
    tool_run: Option<Sample>,
    tool_after: Option<Sample>,
    /// The whole machine's CPU time, sampled with the tool's, and when the measured part began.
    machine_run: Option<(MachineSample, Instant)>,
    machine_after: Option<MachineSample>,
    notes: Vec<String>,
    next_progress: Instant,
    /// When progress was last reported, and the deliveries then.
    last_progress: (Instant, u64),
}

/// Runs the load `settings` describe; calls `progress` about once a second.
pub fn run(settings: &Settings, progress: &mut dyn FnMut(&Progress)) -> Result<Report, LoadError> {
    if settings.scenario == Scenario::Connect {
        return super::connect::run(settings, progress);
    }
    let mut load = Load::new(settings)?;
    load.drive(progress)?;
    Ok(load.report())
}

impl<'a> Load<'a> {
    fn new(settings: &'a Settings) -> Result<Load<'a>, LoadError> {
        let poll = Poll::new().map_err(context("cannot create a poll"))?;
        let server = ProcessGroup::new(&settings.server_pids);
        let server_before = match &server {
            Some(group) => Some(group.sample_each().map_err(|(pid, e)| {
                context(format!("--server-pid: cannot read /proc/{pid}"))(e)
            })?),
            None => None,
        };
        let tool_before = Process::current().sample().ok();
        let machine_before = MachineSample::read().ok();
        let origin = Instant::now();
        let idle = settings.scenario == Scenario::Idle;
        let said = settings.wire.said_len(settings.size).max(1);
        Ok(Load {
            settings,
            poll,
            clients: Vec::with_capacity(settings.clients),
            origin,
            deadline: origin + settings.timeout,
            stage: Stage::Joining,
            received: Received {
                run: run_id(origin),
                tally: Tally::in_groups(settings.groups(), settings.planned_per_client()),
                latency: Histogram::default(),
                cross_latency: Histogram::default(),
                server_of: (0..settings.clients)
                    .map(|i| settings.server_of(i) as u32)
                    .collect(),
                node_delivered: vec![0; settings.addrs.len()],
                other_lines: 0,
                last_delivery_ns: None,
            },
            ready: VecDeque::new(),
            read_buf: vec![0; READ_CHUNK],
            payload: Vec::with_capacity(settings.size),
            burst_lines: (BURST_CHUNK / said).max(1) as u64,
            in_flight: 0,
            connect_stopped: false,
            joined: 0,
            join_failures: 0,
            dropped: 0,
            first_error: None,
            joins_done: None,
            probes_sent: 0,
            next_probe: origin,
            run_started: None,
            rate_next: 0,
            max_lag_ns: 0,
            drain_started: None,
            hold_until: None,
            finished: None,
            timed_out: false,
            server,
            server_before,
            server_run: None,
            server_after: None,
            // An idle run is measured from the start; the others from the first measured message.
            tool_run: tool_before.filter(|_| idle),
            tool_after: None,
            machine_run: machine_before.filter(|_| idle).map(|m| (m, origin)),
            machine_after: None,
            notes: Vec::new(),
            next_progress: origin + PROGRESS_INTERVAL,
            last_progress: (origin, 0),
        })
    }

    fn drive(&mut self, progress: &mut dyn FnMut(&Progress)) -> Result<(), LoadError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                self.timed_out = true;
                self.finish(now);
            }
            self.advance(now);
            if now >= self.next_progress {
                let seen = self.progress(now);
                progress(&seen);
                self.last_progress = (now, seen.delivered);
                self.next_progress = now + PROGRESS_INTERVAL;
            }
            if self.stage == Stage::Done {
                return Ok(());
            }
            let timeout = if self.ready.is_empty() {
                self.next_wake().saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(context("poll failed")(e)),
            }
            for event in events.iter() {
                let Token(i) = event.token();
                if self.clients[i].state == ClientState::Connecting {
                    self.finish_connect(i);
                    continue;
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.on_readable(i);
                }
                if event.is_writable() {
                    self.on_writable(i);
                }
            }
        }
    }

    /// The next time the loop must wake without any event.
    fn next_wake(&self) -> Instant {
        let stage_wake = match self.stage {
            Stage::Probing => Some(self.next_probe),
            Stage::Running if self.settings.scenario == Scenario::Rate => self
                .run_started
                .map(|start| start + self.rate_due(self.rate_next)),
            Stage::Draining => self.quiet_deadline(),
            Stage::Holding => self.hold_until,
            _ => None,
        };
        stage_wake
            .into_iter()
            .chain([self.next_progress, self.deadline])
            .min()
            .unwrap_or(self.deadline)
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn advance(&mut self, now: Instant) {
        match self.stage {
            Stage::Joining => self.advance_joining(now),
            Stage::Probing => {
                let everyone_saw_one = self
                    .clients
                    .iter()
                    .skip(self.settings.probers())
                    .all(|c| c.probe_seen || c.state != ClientState::Joined);
                if everyone_saw_one {
                    self.start_running(now);
                } else if now >= self.next_probe {
                    self.send_probe();
                    self.next_probe = now + PROBE_INTERVAL;
                }
            }
            Stage::Running => match self.settings.scenario {
                Scenario::Burst => self.send_burst(),
                Scenario::Rate => self.send_due(now),
                Scenario::Idle | Scenario::Connect => {}
            },
            Stage::Draining => {
                let written = self.clients.iter().all(Client::all_written);
                let live = self
                    .clients
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.state == ClientState::Joined)
                    .map(|(i, _)| i);
                if written && self.received.tally.all_delivered(live) {
                    self.finish(now);
                } else if self.quiet_deadline().is_some_and(|quiet| now >= quiet) {
                    self.notes.push(format!(
                        "nothing new arrived for {} s after the last send: the rest is counted as lost",
                        DRAIN_QUIET.as_secs()
                    ));
                    self.finish(now);
                }
            }
            Stage::Holding => {
                if self.hold_until.is_some_and(|until| now >= until) {
                    self.finish(now);
                }
            }
            Stage::Connecting | Stage::Done => {}
        }
    }

    fn advance_joining(&mut self, now: Instant) {
        while self.in_flight < self.settings.connect_batch
            && self.clients.len() < self.settings.clients
            && !self.connect_stopped
        {
            self.connect();
        }
        if self.joined + self.join_failures < self.settings.clients {
            return;
        }
        self.joins_done = Some(now);
        if self.settings.scenario == Scenario::Idle {
            self.hold_until = Some(now + self.settings.hold);
            self.stage = Stage::Holding;
            return;
        }
        if self.join_failures > 0 {
            self.notes.push(format!(
                "{} of {} clients could not join; nothing was measured",
                self.join_failures, self.settings.clients
            ));
            self.finish(now);
            return;
        }
        self.stage = Stage::Probing;
        self.next_probe = now;
    }

    /// When draining gives up: a while after the last send or delivery, whichever is later.
    fn quiet_deadline(&self) -> Option<Instant> {
        let last_delivery = self
            .received
            .last_delivery_ns
            .map(|ns| self.origin + Duration::from_nanos(ns));
        let since = self.drain_started.into_iter().chain(last_delivery).max()?;
        Some(since + DRAIN_QUIET)
    }

    /// Rate: how long after the start message `k` is due.
    fn rate_due(&self, k: u64) -> Duration {
        let ns = u128::from(k) * 1_000_000_000 / u128::from(self.settings.rate.max(1));
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    fn connect(&mut self) {
        let index = self.clients.len();
        let tls = match self.settings.tls.as_ref().map(|tls| tls.session()) {
            None => None,
            Some(Ok(session)) => Some(Box::new(session)),
            Some(Err(e)) => {
                self.connect_stopped = true;
                self.join_failures += self.settings.clients - index;
                self.first_error
                    .get_or_insert_with(|| format!("client {index}: no TLS session: {e}"));
                return;
            }
        };
        let socket = TcpStream::connect(self.settings.addr_of(index)).and_then(|mut socket| {
            self.poll.registry().register(
                &mut socket,
                Token(index),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(socket)
        });
        match socket {
            Ok(socket) => {
                self.clients.push(Client {
                    socket,
                    tls,
                    state: ClientState::Connecting,
                    was_joined: false,
                    out: Vec::new(),
                    written: 0,
                    lines_in_out: 0,
                    next_seq: 0,
                    reader: self.settings.wire.reader(),
                    blocked: false,
                    queued: false,
                    probe_seen: false,
                    last_line: None,
                });
                self.in_flight += 1;
            }
            Err(e) => {
                // Out of descriptors or ports: the rest would fail the same way.
                let rest = self.settings.clients - index;
                self.join_failures += rest;
                self.connect_stopped = true;
                self.first_error
                    .get_or_insert_with(|| format!("client {index}: cannot connect: {e}"));
            }
        }
    }

    fn finish_connect(&mut self, i: usize) {
        let client = &mut self.clients[i];
        match client.socket.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                self.close(i, &format!("cannot connect: {e}"));
                return;
            }
        }
        match client.socket.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => {
                self.close(i, &format!("cannot connect: {e}"));
                return;
            }
        }
        // Lines leave at once, as a person's would; nothing waits for an ACK.
        let _ = client.socket.set_nodelay(true);
        client.state = ClientState::Joining;
        let name = format!("{}{i}", self.settings.name_prefix);
        self.settings.wire.join(&name, &mut client.out);
        self.flush(i);
        // Whatever arrived meanwhile (a greeting) is read now; the edge may have passed.
        self.on_readable(i);
    }

    fn on_readable(&mut self, i: usize) {
        loop {
            let client = &mut self.clients[i];
            if client.state == ClientState::Closed {
                return;
            }
            let n = match client.socket.read(&mut self.read_buf) {
                Ok(0) => {
                    self.close(i, "closed by the server");
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.close(i, &format!("read failed: {e}"));
                    return;
                }
            };
            let now_ns = self.origin.elapsed().as_nanos() as u64;
            let joining = matches!(
                client.state,
                ClientState::Joining | ClientState::JoiningRoom
            );
            let mut feeding = Feeding {
                wire: &self.settings.wire,
                received: &mut self.received,
                i,
                joining,
                now_ns,
                fed: Fed::default(),
            };
            let Some(tls) = client.tls.as_deref_mut() else {
                feeding.bytes(&mut client.reader, &self.read_buf[..n]);
                let fed = feeding.fed;
                self.take_fed(i, fed);
                continue;
            };
            // TLS: the records read go through the session; its plaintext is fed in place.
            let was_handshaking = tls.is_handshaking();
            let mut rest = &self.read_buf[..n];
            let mut failure = None;
            let mut peer_closed = false;
            while !rest.is_empty() && failure.is_none() {
                if let Err(e) = tls.read_tls(&mut rest) {
                    failure = Some(format!("TLS input refused: {e}"));
                    break;
                }
                match tls.process_new_packets() {
                    Ok(state) => peer_closed |= state.peer_has_closed(),
                    Err(e) => failure = Some(format!("TLS failed: {e}")),
                }
                let mut plain = tls.reader();
                while let Ok(chunk) = plain.fill_buf() {
                    if chunk.is_empty() {
                        break;
                    }
                    let len = chunk.len();
                    feeding.bytes(&mut client.reader, chunk);
                    plain.consume(len);
                }
            }
            let answer = tls.wants_write() || (was_handshaking && !tls.is_handshaking());
            let fed = feeding.fed;
            self.take_fed(i, fed);
            if let Some(why) = failure {
                self.close(i, &why);
                return;
            }
            if peer_closed {
                self.close(i, "closed by the server (TLS close_notify)");
                return;
            }
            if answer && self.clients[i].state != ClientState::Closed {
                self.flush(i);
            }
        }
    }

    /// Takes what a read's lines meant into client `i`'s state.
    fn take_fed(&mut self, i: usize, fed: Fed) {
        let client = &mut self.clients[i];
        if fed.last_line.is_some() {
            client.last_line = fed.last_line;
        }
        client.probe_seen |= fed.probed;
        if fed.welcomed && client.state == ClientState::Joining {
            self.welcomed(i);
        }
        if fed.in_room && self.clients[i].state == ClientState::JoiningRoom {
            self.set_joined(i);
        }
    }

    fn on_writable(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if client.state == ClientState::Closed {
            return;
        }
        client.blocked = false;
        self.flush(i);
        if self.stage == Stage::Running && self.settings.scenario == Scenario::Burst {
            self.make_ready(i);
        }
    }

    /// Writes what `i` has queued; accounts for what went out whole.
    fn flush(&mut self, i: usize) {
        match write_out(&mut self.clients[i]) {
            Written::All(lines) => {
                self.received.tally.sent(i, lines);
                let wire = &self.settings.wire;
                match self.clients[i].state {
                    ClientState::Joining if !wire.has_welcome() => self.welcomed(i),
                    ClientState::JoiningRoom if !wire.has_room_confirmation() => self.set_joined(i),
                    _ => {}
                }
            }
            Written::Blocked | Written::Handshaking => {}
            Written::Failed(why) => self.close(i, &why),
        }
    }

    /// Client `i` has its welcome: it is joined, or with `--rooms` it joins its room now.
    fn welcomed(&mut self, i: usize) {
        let Some(room) = self.settings.room_of(i) else {
            return self.set_joined(i);
        };
        let room = self.settings.room_name(room);
        let wire = &self.settings.wire;
        let client = &mut self.clients[i];
        client.state = ClientState::JoiningRoom;
        client.reader.await_room(wire, &room);
        wire.join_room(&room, &mut client.out);
        self.flush(i);
    }

    fn set_joined(&mut self, i: usize) {
        let client = &mut self.clients[i];
        client.state = ClientState::Joined;
        client.was_joined = true;
        client.last_line = None;
        self.joined += 1;
        self.in_flight -= 1;
    }

    fn close(&mut self, i: usize, why: &str) {
        let client = &mut self.clients[i];
        let was = client.state;
        if was == ClientState::Closed {
            return;
        }
        let _ = self.poll.registry().deregister(&mut client.socket);
        let _ = client.socket.shutdown(Shutdown::Both);
        client.state = ClientState::Closed;
        let after = client
            .last_line
            .take()
            .map_or(String::new(), |line| format!(" after {line:?}"));
        match was {
            ClientState::Connecting | ClientState::Joining | ClientState::JoiningRoom => {
                self.join_failures += 1;
                self.in_flight -= 1;
            }
            ClientState::Joined => self.dropped += 1,
            ClientState::Closed => {}
        }
        self.first_error
            .get_or_insert_with(|| format!("client {i}: {why}{after}"));
    }

    /// Each prober (client 0, or the first member of each room) says a probe.
    fn send_probe(&mut self) {
        for sender in 0..self.settings.probers() {
            let marker = Marker {
                kind: Kind::Probe,
                run: self.received.run,
                sender: sender as u32,
                seq: self.probes_sent,
                sent_ns: self.now_ns(),
            };
            self.say(sender, marker);
            self.flush(sender);
        }
        self.probes_sent += 1;
    }

    /// Queues `marker`'s payload on client `i`.
    fn say(&mut self, i: usize, marker: Marker) {
        self.payload.clear();
        marker.write(self.settings.size, &mut self.payload);
        let client = &mut self.clients[i];
        self.settings.wire.say(&self.payload, &mut client.out);
        if marker.kind == Kind::Data {
            client.lines_in_out += 1;
        }
    }

    fn start_running(&mut self, now: Instant) {
        self.server_run = self.sample_server(false);
        self.tool_run = Process::current().sample().ok();
        let started = Instant::now().max(now);
        self.machine_run = MachineSample::read().ok().map(|m| (m, started));
        self.run_started = Some(started);
        self.stage = Stage::Running;
        if self.settings.scenario == Scenario::Burst {
            for i in 0..self.clients.len() {
                self.make_ready(i);
            }
        }
    }

    fn make_ready(&mut self, i: usize) {
        let planned = self.settings.messages;
        let client = &mut self.clients[i];
        if client.state == ClientState::Joined
            && !client.queued
            && !client.blocked
            && client.next_seq < planned
        {
            client.queued = true;
            self.ready.push_back(i);
        }
    }

    /// Burst: each ready client generates and writes one chunk of its messages.
    fn send_burst(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(i) = self.ready.pop_front() else {
                break;
            };
            self.clients[i].queued = false;
            if self.clients[i].all_written() {
                let remaining = self.settings.messages - self.clients[i].next_seq;
                let sent_ns = self.now_ns();
                for _ in 0..remaining.min(self.burst_lines) {
                    let seq = self.clients[i].next_seq;
                    self.clients[i].next_seq += 1;
                    self.say(i, self.data_marker(i, seq, sent_ns));
                }
            }
            self.flush(i);
            self.make_ready(i);
        }
        let all_generated = self
            .clients
            .iter()
            .all(|c| c.state != ClientState::Joined || c.next_seq >= self.settings.messages);
        if all_generated {
            self.start_draining();
        }
    }

    /// Rate: sends every message whose time has come.
    fn send_due(&mut self, now: Instant) {
        let Some(start) = self.run_started else {
            return;
        };
        let total = self.settings.rate_total();
        let clients = self.clients.len() as u64;
        while self.rate_next < total {
            let due = start + self.rate_due(self.rate_next);
            if due > now {
                break;
            }
            self.max_lag_ns = self
                .max_lag_ns
                .max(now.duration_since(due).as_nanos() as u64);
            let i = (self.rate_next % clients) as usize;
            self.rate_next += 1;
            if self.clients[i].state != ClientState::Joined {
                continue;
            }
            let seq = self.clients[i].next_seq;
            self.clients[i].next_seq += 1;
            let marker = self.data_marker(i, seq, self.now_ns());
            self.say(i, marker);
            if !self.clients[i].blocked {
                self.flush(i);
            }
        }
        if self.rate_next >= total {
            self.start_draining();
        }
    }

    fn data_marker(&self, sender: usize, seq: u64, sent_ns: u64) -> Marker {
        Marker {
            kind: Kind::Data,
            run: self.received.run,
            sender: sender as u32,
            seq,
            sent_ns,
        }
    }

    fn start_draining(&mut self) {
        self.stage = Stage::Draining;
        self.drain_started = Some(Instant::now());
    }

    fn finish(&mut self, now: Instant) {
        if self.stage == Stage::Done {
            return;
        }
        self.stage = Stage::Done;
        self.finished = Some(now);
        self.server_after = self.sample_server(true);
        self.tool_after = Process::current().sample().ok();
        self.machine_after = MachineSample::read().ok();
    }

    /// The servers' samples now, or (`settled`, after a run) once their CPU times stop moving.
    fn sample_server(&mut self, settled: bool) -> Option<Vec<Sample>> {
        let group = self.server.as_ref()?;
        let samples = match settled {
            true => group.sample_settled(),
            false => group.sample_each(),
        };
        match samples {
            Ok(samples) => Some(samples),
            Err((pid, e)) => {
                self.notes.push(format!(
                    "could not read the /proc files of server {pid}: {e}"
                ));
                None
            }
        }
    }

    fn progress(&self, now: Instant) -> Progress {
        let delivered = self.received.tally.delivered();
        let (then, delivered_then) = self.last_progress;
        let secs = now.duration_since(then).as_secs_f64();
        let recent_rate = if secs > 0.0 {
            delivered.saturating_sub(delivered_then) as f64 / secs
        } else {
            0.0
        };
        Progress {
            elapsed: now.duration_since(self.origin),
            stage: self.stage,
            joined: self.joined,
            clients: self.settings.clients,
            sent: self.received.tally.total_sent(),
            planned: self.settings.planned_per_client() * self.settings.clients as u64,
            delivered,
            recent_rate,
        }
    }

    fn report(mut self) -> Report {
        let s = self.settings;
        let finished = self.finished.unwrap_or_else(Instant::now);
        let joined_ever = || {
            self.clients
                .iter()
                .enumerate()
                .filter(|(_, c)| c.was_joined)
                .map(|(i, _)| i)
        };
        let tally = &self.received.tally;
        let (expected, lost) = (tally.expected(joined_ever()), tally.lost(joined_ever()));
        let join_secs = self
            .joins_done
            .unwrap_or(finished)
            .duration_since(self.origin)
            .as_secs_f64();
        let run_secs = match (s.scenario, self.run_started) {
            (Scenario::Idle | Scenario::Connect, _) => {
                finished.duration_since(self.origin).as_secs_f64()
            }
            (_, Some(start)) => {
                let end = self
                    .received
                    .last_delivery_ns
                    .map_or(finished, |ns| self.origin + Duration::from_nanos(ns));
                end.saturating_duration_since(start).as_secs_f64()
            }
            (_, None) => 0.0,
        };
        let h = &self.received.latency;
        let latency = Latency::of(h);
        let measured_from = match s.scenario {
            Scenario::Idle | Scenario::Connect => self.server_before.as_ref(),
            _ => self.server_run.as_ref(),
        };
        let nodes = match (&self.server, measured_from, &self.server_after) {
            (Some(group), Some(from), Some(after)) if s.addrs.len() > 1 => group
                .pids()
                .into_iter()
                .zip(from.iter().zip(after))
                .zip(&self.received.node_delivered)
                .map(|((pid, (from, after)), &delivered)| NodeUse {
                    pid,
                    cpu: after.cpu_since(from),
                    delivered,
                })
                .collect(),
            _ => Vec::new(),
        };
        let total = |samples: Option<&Vec<Sample>>| samples.and_then(|s| Sample::total(s));
        let server = match (
            total(self.server_before.as_ref()),
            total(measured_from),
            total(self.server_after.as_ref()),
        ) {
            (Some(before), Some(from), Some(after)) => Some(ServerUse {
                cpu: after.cpu_since(&from),
                rss_before: before.rss_bytes,
                rss_after: after.rss_bytes,
                peak_rss: after.peak_rss_bytes,
            }),
            _ => None,
        };
        let tool_cpu = match (self.tool_run, self.tool_after) {
            (Some(from), Some(after)) => Some(after.cpu_since(&from)),
            _ => None,
        };
        let machine = match (server, tool_cpu, self.machine_run, self.machine_after) {
            (Some(server), Some(tool), Some((from, started)), Some(after)) => {
                let window = finished.duration_since(started).as_secs_f64();
                let busy = after.busy_ns.saturating_sub(from.busy_ns);
                let others = busy.saturating_sub(server.cpu.total_ns + tool.total_ns);
                let steal = after.steal_ns.saturating_sub(from.steal_ns);
                (window > 0.0).then(|| MachineUse {
                    other_cores: others as f64 / 1e9 / window,
                    steal_cores: steal as f64 / 1e9 / window,
                })
            }
            _ => None,
        };
        if self.timed_out {
            self.notes.push(format!(
                "the run hit --timeout ({} s) during {}",
                s.timeout.as_secs(),
                self.stage_at_timeout()
            ));
        }
        let mut report = Report {
            label: s.label.clone(),
            addr: addrs_text(s),
            scenario: s.scenario,
            mode: s.mode,
            clients: s.clients,
            planned_per_client: s.planned_per_client(),
            rooms: s.rooms,
            size: s.size,
            rate: (s.scenario == Scenario::Rate).then_some(s.rate),
            joined: self.joined,
            join_failures: self.join_failures,
            dropped: self.dropped,
            first_error: self.first_error.take(),
            timed_out: self.timed_out,
            join_secs,
            run_secs,
            sent: self.received.tally.total_sent(),
            expected,
            delivered: self.received.tally.delivered(),
            lost,
            duplicated: self.received.tally.duplicates(),
            unexpected: self.received.tally.unexpected(),
            other_lines: self.received.other_lines,
            latency,
            cross_latency: Latency::of(&self.received.cross_latency),
            nodes,
            max_send_lag_ns: (s.scenario == Scenario::Rate).then_some(self.max_lag_ns),
            server,
            tool_cpu,
            machine,
            notes: std::mem::take(&mut self.notes),
            tls: s.tls.as_ref().map(|tls| tls.trust().to_string()),
        };
        if report.tool_busy().is_some_and(|busy| busy > 0.9) {
            report.notes.push(
                "the load tool was busy over 90% of the run and may be the bottleneck: give it a core of its own"
                    .into(),
            );
        }
        if let Some(m) = machine.filter(|m| m.other_cores + m.steal_cores > 0.1) {
            report.notes.push(format!(
                "other processes used {:.2} cores and the hypervisor stole {:.2} during the run: expect noisy figures",
                m.other_cores, m.steal_cores
            ));
        }
        if report.max_send_lag_ns.is_some_and(|lag| lag > 1_000_000) {
            report.notes.push(
                "the tool fell over 1 ms behind its schedule: latencies include its own delay"
                    .into(),
            );
        }
        if server.is_some_and(|s| !s.cpu.precise) {
            report.notes.push(
                "the server's CPU time is to the 10 ms tick only (no scheduler statistics): prefer long runs"
                    .into(),
            );
        }
        report
    }

    fn stage_at_timeout(&self) -> &'static str {
        if self.joins_done.is_none() {
            "joining"
        } else if self.run_started.is_none() {
            "probing"
        } else {
            "the measured part"
        }
    }
}

/// A number that tells this run's lines from an earlier run's (a server's backlog).
fn run_id(origin: Instant) -> u32 {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = wall ^ (u64::from(std::process::id()) << 32) ^ origin.elapsed().as_nanos() as u64;
    (mixed ^ (mixed >> 32)) as u32
}
