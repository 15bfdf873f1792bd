//! The connect scenario: new connections, one after another, at most `connect_batch` at once.
//! Each connects, makes a full TLS handshake with `--tls`, sends `connect_send` (nothing by
//! default), waits for the server's first whole line (chatd's greeting) and closes (with TLS,
//! after a close_notify). The run ends when every connection has been made, or at `--timeout`.
//!
//! It measures how many connections a second the server takes (wall time, limited by the batch
//! and by how soon the server greets) and, with `--server-pid`, the server's CPU time per
//! connection: how many connections one core of the server could take a second.

use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConnection;
use slab::Slab;

use super::driver::{context, LoadError, Progress, Stage};
use super::histogram::Histogram;
use super::procfs::{MachineSample, Process, ProcessGroup, Sample};
use super::report::{Latency, MachineUse, Report, ServerUse};
use super::settings::Settings;

/// Bytes read from a socket per call (a greeting, or a handshake flight, is far less).
const READ_CHUNK: usize = 16 * 1024;
/// How often progress is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// One connection being made.
struct Attempt {
    socket: TcpStream,
    tls: Option<Box<ClientConnection>>,
    started: Instant,
    connected: bool,
    /// How much of `connect_send` is written (or handed to the TLS session).
    sent: usize,
}

/// What an event did to an attempt.
enum Step {
    /// Still waiting (for the connect, the handshake or the line).
    Pending,
    /// The server's first line came.
    Greeted,
    /// It failed; why.
    Failed(String),
}

/// Runs a connect scenario; calls `progress` about once a second.
pub fn run(settings: &Settings, progress: &mut dyn FnMut(&Progress)) -> Result<Report, LoadError> {
    let mut poll = Poll::new().map_err(context("cannot create a poll"))?;
    let server = ProcessGroup::new(&settings.server_pids);
    let server_before =
        match &server {
            Some(group) => Some(group.sample_each().map_err(|(pid, e)| {
                context(format!("--server-pid: cannot read /proc/{pid}"))(e)
            })?),
            None => None,
        }
        .and_then(|samples| Sample::total(&samples));
    let tool_before = Process::current().sample().ok();
    let machine_before = MachineSample::read().ok();
    let origin = Instant::now();
    let deadline = origin + settings.timeout;
    let mut events = Events::with_capacity(1024);
    let mut attempts: Slab<Attempt> = Slab::with_capacity(settings.connect_batch);
    let mut buf = vec![0; READ_CHUNK];
    let mut latency = Histogram::default();
    let (mut started, mut greeted, mut failed) = (0usize, 0usize, 0usize);
    let mut first_error: Option<String> = None;
    let mut stopped = false;
    let mut timed_out = false;
    let mut last_greeting = origin;
    let mut next_progress = origin + PROGRESS_INTERVAL;
    let mut last_progress = (origin, 0usize);
    loop {
        while attempts.len() < settings.connect_batch && started < settings.clients && !stopped {
            match start(&mut poll, &mut attempts, settings, started) {
                Ok(()) => started += 1,
                Err(why) => {
                    // Out of descriptors or ports: the rest would fail the same way.
                    failed += settings.clients - started;
                    stopped = true;
                    first_error.get_or_insert(format!("connection {started}: {why}"));
                }
            }
        }
        let now = Instant::now();
        if attempts.is_empty() && (started == settings.clients || stopped) {
            break;
        }
        if now >= deadline {
            timed_out = true;
            break;
        }
        if now >= next_progress {
            let (then, greeted_then) = last_progress;
            let secs = now.duration_since(then).as_secs_f64();
            progress(&Progress {
                elapsed: now.duration_since(origin),
                stage: Stage::Connecting,
                joined: greeted,
                clients: settings.clients,
                sent: 0,
                planned: 0,
                delivered: 0,
                recent_rate: (greeted - greeted_then) as f64 / secs.max(1e-9),
            });
            last_progress = (now, greeted);
            next_progress = now + PROGRESS_INTERVAL;
        }
        let timeout = next_progress.min(deadline).saturating_duration_since(now);
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(context("poll failed")(e)),
        }
        for event in events.iter() {
            let Token(key) = event.token();
            let Some(attempt) = attempts.get_mut(key) else {
                continue;
            };
            let step = advance(attempt, settings, &mut buf);
            match step {
                Step::Pending => continue,
                Step::Greeted => {
                    let now = Instant::now();
                    latency.record(now.duration_since(attempt.started).as_nanos() as u64);
                    last_greeting = now;
                    greeted += 1;
                }
                Step::Failed(why) => {
                    failed += 1;
                    first_error.get_or_insert(format!("connection {key}: {why}"));
                }
            }
            let mut attempt = attempts.remove(key);
            finish(&mut poll, &mut attempt);
        }
    }
    for mut attempt in attempts.drain() {
        finish(&mut poll, &mut attempt);
        failed += 1;
    }
    let finished = Instant::now();
    let server_after = server
        .as_ref()
        .and_then(|group| group.sample_settled().ok())
        .and_then(|samples| Sample::total(&samples));
    let tool_after = Process::current().sample().ok();
    let machine_after = MachineSample::read().ok();
    let end = if greeted > 0 { last_greeting } else { finished };
    let run_secs = end.duration_since(origin).as_secs_f64();
    Ok(report(
        settings,
        Figures {
            greeted,
            failed,
            first_error,
            timed_out,
            run_secs,
            latency: Latency::of(&latency),
            server: server_use(server_before, server_after),
            tool: tool_before.zip(tool_after),
            machine: machine_before.zip(machine_after),
            window_secs: finished.duration_since(origin).as_secs_f64(),
        },
    ))
}

/// Starts connection `index` (registered under its slab key).
fn start(
    poll: &mut Poll,
    attempts: &mut Slab<Attempt>,
    settings: &Settings,
    index: usize,
) -> Result<(), String> {
    let tls = match settings.tls.as_ref().map(|tls| tls.session()) {
        None => None,
        Some(Ok(session)) => Some(Box::new(session)),
        Some(Err(e)) => return Err(format!("no TLS session: {e}")),
    };
    let entry = attempts.vacant_entry();
    let mut socket =
        TcpStream::connect(settings.addr_of(index)).map_err(|e| format!("cannot connect: {e}"))?;
    poll.registry()
        .register(
            &mut socket,
            Token(entry.key()),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| format!("cannot register a socket: {e}"))?;
    entry.insert(Attempt {
        socket,
        tls,
        started: Instant::now(),
        connected: false,
        sent: 0,
    });
    Ok(())
}

/// Does what an event allows: finish the connect, write, read.
fn advance(attempt: &mut Attempt, settings: &Settings, buf: &mut [u8]) -> Step {
    if !attempt.connected {
        match attempt.socket.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return Step::Failed(format!("cannot connect: {e}")),
        }
        match attempt.socket.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Step::Pending,
            Err(e) => return Step::Failed(format!("cannot connect: {e}")),
        }
        attempt.connected = true;
        let _ = attempt.socket.set_nodelay(true);
    }
    if let Err(why) = write(attempt, &settings.connect_send) {
        return Step::Failed(why);
    }
    loop {
        let n = match attempt.socket.read(buf) {
            Ok(0) => return Step::Failed("closed by the server before its first line".into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Pending,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Step::Failed(format!("read failed: {e}")),
        };
        let Some(tls) = attempt.tls.as_deref_mut() else {
            if memchr::memchr(b'\n', &buf[..n]).is_some() {
                return Step::Greeted;
            }
            continue;
        };
        let mut rest = &buf[..n];
        let mut line = false;
        while !rest.is_empty() {
            if let Err(e) = tls.read_tls(&mut rest) {
                return Step::Failed(format!("TLS input refused: {e}"));
            }
            if let Err(e) = tls.process_new_packets() {
                return Step::Failed(format!("TLS failed: {e}"));
            }
            let mut plain = tls.reader();
            while let Ok(chunk) = plain.fill_buf() {
                if chunk.is_empty() {
                    break;
                }
                line |= memchr::memchr(b'\n', chunk).is_some();
                let len = chunk.len();
                plain.consume(len);
            }
        }
        if line {
            return Step::Greeted;
        }
        // The handshake's next flight (the client's Finished), and the plaintext once it is done.
        if let Err(why) = write(attempt, &settings.connect_send) {
            return Step::Failed(why);
        }
    }
}

/// Writes what is due: the rest of `send`, and with TLS the session's records.
fn write(attempt: &mut Attempt, send: &[u8]) -> Result<(), String> {
    let Some(tls) = attempt.tls.as_deref_mut() else {
        while attempt.sent < send.len() {
            match attempt.socket.write(&send[attempt.sent..]) {
                Ok(0) => return Err("the connection accepts no more bytes".into()),
                Ok(n) => attempt.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        return Ok(());
    };
    if attempt.sent < send.len() {
        tls.writer()
            .write_all(&send[attempt.sent..])
            .map_err(|e| format!("TLS refused the plaintext: {e}"))?;
        attempt.sent = send.len();
    }
    while tls.wants_write() {
        match tls.write_tls(&mut attempt.socket) {
            Ok(0) => return Err("the connection accepts no more bytes".into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    Ok(())
}

/// Ends a connection: with TLS a close_notify first (as a polite client sends), then the socket.
fn finish(poll: &mut Poll, attempt: &mut Attempt) {
    if let Some(tls) = attempt.tls.as_deref_mut() {
        if !tls.is_handshaking() {
            tls.send_close_notify();
            let _ = tls.write_tls(&mut attempt.socket);
        }
    }
    let _ = poll.registry().deregister(&mut attempt.socket);
    let _ = attempt.socket.shutdown(Shutdown::Both);
}

/// The server's CPU and memory over the whole run.
fn server_use(before: Option<Sample>, after: Option<Sample>) -> Option<ServerUse> {
    let (before, after) = before.zip(after)?;
    Some(ServerUse {
        cpu: after.cpu_since(&before),
        rss_before: before.rss_bytes,
        rss_after: after.rss_bytes,
        peak_rss: after.peak_rss_bytes,
    })
}

/// What a connect run measured, before it is a [`Report`].
struct Figures {
    greeted: usize,
    failed: usize,
    first_error: Option<String>,
    timed_out: bool,
    run_secs: f64,
    latency: Option<Latency>,
    server: Option<ServerUse>,
    tool: Option<(Sample, Sample)>,
    machine: Option<(MachineSample, MachineSample)>,
    window_secs: f64,
}

fn report(s: &Settings, f: Figures) -> Report {
    let tool_cpu = f.tool.map(|(before, after)| after.cpu_since(&before));
    let machine = match (f.server, tool_cpu, f.machine) {
        (Some(server), Some(tool), Some((before, after))) if f.window_secs > 0.0 => {
            let busy = after.busy_ns.saturating_sub(before.busy_ns);
            let others = busy.saturating_sub(server.cpu.total_ns + tool.total_ns);
            Some(MachineUse {
                other_cores: others as f64 / 1e9 / f.window_secs,
                steal_cores: after.steal_ns.saturating_sub(before.steal_ns) as f64
                    / 1e9
                    / f.window_secs,
            })
        }
        _ => None,
    };
    let mut notes = Vec::new();
    if f.timed_out {
        notes.push(format!(
            "the run hit --timeout ({} s) with {} of {} connections made",
            s.timeout.as_secs(),
            f.greeted,
            s.clients
        ));
    }
    if let Some(m) = machine.filter(|m| m.other_cores + m.steal_cores > 0.1) {
        notes.push(format!(
            "other processes used {:.2} cores and the hypervisor stole {:.2} during the run: expect noisy figures",
            m.other_cores, m.steal_cores
        ));
    }
    let mut report = Report::new(s);
    report.joined = f.greeted;
    report.join_failures = f.failed;
    report.first_error = f.first_error;
    report.timed_out = f.timed_out;
    report.join_secs = f.run_secs;
    report.run_secs = f.run_secs;
    report.latency = f.latency;
    report.server = f.server;
    report.tool_cpu = tool_cpu;
    report.machine = machine;
    report.notes = notes;
    if report.tool_busy().is_some_and(|busy| busy > 0.9) {
        report.notes.push(
            "the load tool was busy over 90% of the run and may be the bottleneck: give it a core of its own"
                .into(),
        );
    }
    report
}
