//! The `--metrics-listen` listener, on the same loop as the chat: `GET /metrics` (the Prometheus
//! text format) and `GET /healthz`, nothing else, one request per connection.
//!
//! A scraper costs the chat nothing it could hold on to: at most [`MAX_SCRAPERS`] at once (more
//! are closed at once), a request head of at most [`MAX_HEAD`] bytes, and [`SCRAPE_TIMEOUT`] from
//! its accept to the end of its answer; a scraper that stalls is closed then, with `408` if its
//! request never came whole. The answer is made in one go from the counters when the request is
//! whole and written as far as the socket takes it; the rest when it is writable again.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};
use slab::Slab;

use super::metrics::{mode_index, Snapshot};
use super::{context, Error, Server};
use crate::core::Now;

/// Most scrapers served at once; one more is closed as soon as it is accepted.
pub const MAX_SCRAPERS: usize = 16;
/// The longest request head taken (a Prometheus scrape's is about 300 bytes).
pub const MAX_HEAD: usize = 4096;
/// How long a scraper may take, from its accept, to send its request and take the answer.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes read and dropped after the answer, waiting for the scraper to close.
const MAX_DRAIN: usize = 64 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 32;
/// Scraper tokens are this plus their slab key: far above the clients' keys (32-bit) and below
/// the loop's fixed tokens.
pub const FIRST_SCRAPER: usize = usize::MAX - 1024;

/// What a whole request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `GET /metrics` (`HEAD`: without the body).
    Metrics {
        /// A `HEAD` request.
        head_only: bool,
    },
    /// `GET /healthz` (`HEAD`: without the body).
    Healthz {
        /// A `HEAD` request.
        head_only: bool,
    },
    /// Anything else: answered with this status and closed.
    Refused(u16),
}

/// What the bytes a scraper sent so far are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole request head yet.
    Partial,
    /// A whole head, or one that cannot become a request.
    Whole(Request),
}

/// Reads the request head at the front of `input` (pure: httparse over the bytes so far).
pub fn parse(input: &[u8]) -> Parsed {
    let window = &input[..input.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(window) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if window.len() < MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Whole(Request::Refused(431))
        }
        Err(_) => return Parsed::Whole(Request::Refused(400)),
    }
    let path = request.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let head_only = match request.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ if matches!(path, "/metrics" | "/healthz") => {
            return Parsed::Whole(Request::Refused(405))
        }
        _ => return Parsed::Whole(Request::Refused(404)),
    };
    Parsed::Whole(match path {
        "/metrics" => Request::Metrics { head_only },
        "/healthz" => Request::Healthz { head_only },
        _ => Request::Refused(404),
    })
}

/// A whole HTTP/1.1 answer with `body`, closing the connection.
pub fn answer(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut bytes = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// A refusal with a one-line body saying what is served.
fn refusal(status: u16) -> Vec<u8> {
    let text = match status {
        404 => "404 Not Found: this port serves GET /metrics and GET /healthz only\n",
        405 => "405 Method Not Allowed: GET or HEAD only\n",
        408 => "408 Request Timeout: the request did not come in time\n",
        431 => "431 Request Header Fields Too Large: the request head is too long\n",
        _ => "400 Bad Request: not an HTTP request\n",
    };
    answer(status, "text/plain; charset=utf-8", text.as_bytes(), false)
}

/// Where a scraper is in its one exchange.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// Its request head is awaited.
    Reading,
    /// Its answer is being written.
    Writing,
    /// Answered and our side shut: what it still sends is dropped until it closes.
    Draining,
}

/// One scraper's connection.
#[derive(Debug)]
struct Scraper {
    socket: TcpStream,
    peer: SocketAddr,
    stage: Stage,
    /// The request so far, then the answer.
    buf: Vec<u8>,
    /// How much of the answer is written, or how much was dropped while draining.
    done: usize,
    deadline: Instant,
}

/// The metrics listener and its scrapers.
#[derive(Debug)]
pub struct Scrape {
    listener: TcpListener,
    scrapers: Slab<Scraper>,
}

impl Scrape {
    /// The earliest scraper deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.scrapers.iter().map(|(_, s)| s.deadline).min()
    }
}

/// What reading or writing a scraper came to.
enum Next {
    Wait,
    Answer(Request),
    Drop,
}

impl Server {
    /// Serves `--metrics-listen` on `listener` (already bound) from this loop.
    pub fn serve_metrics(&mut self, listener: std::net::TcpListener) -> Result<(), Error> {
        listener
            .set_nonblocking(true)
            .map_err(context("could not configure the metrics listener"))?;
        let mut listener = TcpListener::from_std(listener);
        self.poll
            .registry()
            .register(&mut listener, super::METRICS, Interest::READABLE)
            .map_err(context("could not register the metrics listener"))?;
        self.scrape = Some(Scrape {
            listener,
            scrapers: Slab::with_capacity(MAX_SCRAPERS),
        });
        Ok(())
    }

    /// Accepts scrapers until the listener would block.
    pub(super) fn accept_scrapers(&mut self, now: &Now) {
        let Some(scrape) = &mut self.scrape else {
            return;
        };
        loop {
            let (mut socket, peer) = match scrape.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: the chat's accept logs and backs off.
                    log::debug!("metrics: accept failed: {e}");
                    return;
                }
            };
            if scrape.scrapers.len() >= MAX_SCRAPERS {
                log::warn!("metrics: refused {peer}: {MAX_SCRAPERS} scrapers already connected");
                continue;
            }
            let entry = scrape.scrapers.vacant_entry();
            let token = Token(FIRST_SCRAPER + entry.key());
            // Edge-triggered both ways from the start: a readiness the scraper waits for is
            // never missed, and an idle one raises no event.
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut socket, token, interest) {
                log::warn!("metrics: could not register {peer}: {e}");
                continue;
            }
            log::debug!("metrics: {peer} connected");
            entry.insert(Scraper {
                socket,
                peer,
                stage: Stage::Reading,
                buf: Vec::new(),
                done: 0,
                deadline: now.instant + SCRAPE_TIMEOUT,
            });
        }
    }

    /// Reads and writes scraper `key` as far as its socket goes.
    pub(super) fn serve_scraper(&mut self, key: usize) {
        let next = match self.scrape.as_mut().and_then(|s| s.scrapers.get_mut(key)) {
            Some(scraper) => scraper.advance(),
            None => return,
        };
        match next {
            Next::Wait => {}
            Next::Drop => self.drop_scraper(key),
            Next::Answer(request) => {
                let bytes = self.answer_scrape(request);
                let next = match self.scrape.as_mut().and_then(|s| s.scrapers.get_mut(key)) {
                    Some(scraper) => {
                        scraper.respond(bytes);
                        scraper.advance()
                    }
                    None => return,
                };
                if let Next::Drop = next {
                    self.drop_scraper(key);
                }
            }
        }
    }

    /// Closes the scrapers whose time is up: one still sending its request is told `408`.
    pub(super) fn check_scrapers(&mut self, now: &Now) {
        let Some(scrape) = &self.scrape else {
            return;
        };
        let late: Vec<usize> = scrape
            .scrapers
            .iter()
            .filter(|(_, s)| s.deadline <= now.instant)
            .map(|(key, _)| key)
            .collect();
        for key in late {
            if let Some(scraper) = self.scrape.as_mut().and_then(|s| s.scrapers.get_mut(key)) {
                log::info!("metrics: {} timed out ({:?})", scraper.peer, scraper.stage);
                if scraper.stage == Stage::Reading {
                    // One try: a scraper that sends nothing may still read.
                    let _ = scraper.socket.write(&refusal(408));
                }
            }
            self.drop_scraper(key);
        }
    }

    fn drop_scraper(&mut self, key: usize) {
        let Some(scrape) = &mut self.scrape else {
            return;
        };
        if let Some(mut scraper) = scrape.scrapers.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut scraper.socket);
            log::debug!("metrics: {} closed", scraper.peer);
        }
    }

    /// The answer to a whole request.
    fn answer_scrape(&self, request: Request) -> Vec<u8> {
        match request {
            Request::Metrics { head_only } => {
                let text = self.snapshot().encode();
                let content_type = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
                answer(200, content_type, text.as_bytes(), head_only)
            }
            // The loop answered: it turns.
            Request::Healthz { head_only } => {
                answer(200, "text/plain; charset=utf-8", b"ok\n", head_only)
            }
            Request::Refused(status) => refusal(status),
        }
    }

    /// The counters, and what the core, the worker and the process say now.
    fn snapshot(&self) -> Snapshot {
        let mut counters = self.counters.clone();
        counters.deliveries += self.fanout.delivered();
        let mut connections = [[0; 2]; super::metrics::MODES.len()];
        for (_, conn) in &self.conns {
            connections[mode_index(conn.mode())][usize::from(conn.transport.is_tls())] += 1;
        }
        let counts = self.chat.counts();
        Snapshot {
            counters,
            connections,
            users_online: counts.users_online as u64,
            rooms: counts.rooms as u64,
            failed_logins: counts.failed_logins,
            password_checks_held: counts.password_checks_held as u64,
            password_checks_queued: self.worker.passwords_queued() as u64,
            rss_bytes: resident_bytes(),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                // The directory's own descriptor is among them while it is read.
                .map(|dir| dir.count().saturating_sub(1) as u64),
            max_fds: rustix::process::getrlimit(rustix::process::Resource::Nofile).current,
        }
    }
}

/// The process's resident memory, from the `VmRSS` line of `/proc/self/status` (in KiB).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Scraper {
    /// Goes as far as the socket lets it: reads the request, writes the answer, drains.
    fn advance(&mut self) -> Next {
        loop {
            match self.stage {
                Stage::Reading => {
                    let mut chunk = [0; 1024];
                    match self.socket.read(&mut chunk) {
                        Ok(0) => return Next::Drop,
                        Ok(n) => {
                            self.buf.extend_from_slice(&chunk[..n]);
                            if let Parsed::Whole(request) = parse(&self.buf) {
                                return Next::Answer(request);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Next::Drop,
                    }
                }
                Stage::Writing => match self.socket.write(&self.buf[self.done..]) {
                    Ok(n) => {
                        self.done += n;
                        if self.done == self.buf.len() {
                            // Our side ends here; what the scraper still sends is read and
                            // dropped, so closing never resets the answer away.
                            let _ = self.socket.shutdown(std::net::Shutdown::Write);
                            self.stage = Stage::Draining;
                            self.buf = Vec::new();
                            self.done = 0;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Next::Drop,
                },
                Stage::Draining => {
                    let mut chunk = [0; 1024];
                    match self.socket.read(&mut chunk) {
                        Ok(0) => return Next::Drop,
                        Ok(n) => {
                            self.done += n;
                            if self.done > MAX_DRAIN {
                                return Next::Drop;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Next::Drop,
                    }
                }
            }
        }
    }

    /// Starts writing `answer`.
    fn respond(&mut self, answer: Vec<u8>) {
        self.stage = Stage::Writing;
        self.buf = answer;
        self.done = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(request: &str) -> Request {
        match parse(request.as_bytes()) {
            Parsed::Whole(request) => request,
            Parsed::Partial => panic!("partial: {request:?}"),
        }
    }

    #[test]
    fn only_the_two_paths_are_served_and_only_to_get_and_head() {
        let get = |path: &str| whole(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(get("/metrics"), Request::Metrics { head_only: false });
        assert_eq!(
            get("/metrics?name[]=x"),
            Request::Metrics { head_only: false }
        );
        assert_eq!(get("/healthz"), Request::Healthz { head_only: false });
        for path in ["/", "/metrics/", "/Metrics", "/healthz/x", "/index.html"] {
            assert_eq!(get(path), Request::Refused(404), "{path}");
        }
        assert_eq!(
            whole("HEAD /metrics HTTP/1.0\r\n\r\n"),
            Request::Metrics { head_only: true }
        );
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let request = format!("{method} /metrics HTTP/1.1\r\n\r\n");
            assert_eq!(whole(&request), Request::Refused(405), "{method}");
        }
        assert_eq!(whole("POST /other HTTP/1.1\r\n\r\n"), Request::Refused(404));
        assert_eq!(whole("\x16\x03\x01\x00\r\n\r\n"), Request::Refused(400));
    }

    #[test]
    fn a_head_is_awaited_until_whole_and_at_most_max_head_bytes() {
        assert_eq!(parse(b"GET /metr"), Parsed::Partial);
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Partial
        );
        let mut long = b"GET /metrics HTTP/1.1\r\n".to_vec();
        while long.len() < MAX_HEAD {
            long.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(parse(&long), Parsed::Whole(Request::Refused(431)));
        let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for n in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{n}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Parsed::Whole(Request::Refused(431)));
    }

    #[test]
    fn every_answer_closes_and_says_its_length() {
        let ok = String::from_utf8(answer(200, "text/plain", b"ok\n", false)).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("\r\nContent-Length: 3\r\n"), "{ok}");
        assert!(ok.contains("\r\nConnection: close\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nok\n"), "{ok}");
        let head = String::from_utf8(answer(200, "text/plain", b"ok\n", true)).unwrap();
        assert!(
            head.ends_with(
                "Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            ),
            "{head}"
        );
        let refused = String::from_utf8(refusal(405)).unwrap();
        assert!(refused.contains("\r\nAllow: GET, HEAD\r\n"), "{refused}");
    }
}
