//! Accepting connections: the main listener and the IRC one, admission (limits per address and
//! in all), and what to do when the process runs out of descriptors.

use std::cmp::Reverse;
use std::io;
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Interest, Token};

use super::admission;
use super::conn::{conn_id, Connection, READ_INTEREST};
use super::flood::Allowance;
use super::stack::refusal::Refusal;
use super::{context, Error, Server, ACCEPT_BACKOFF, ACCEPT_LOG_INTERVAL, IRC_LISTENER};
use crate::core::Now;

impl Server {
    /// Also listens on `listener` (bound by the caller) for IRC clients only: its connections
    /// are IRC from the first byte (after a TLS handshake, if they start one).
    pub fn listen_irc(&mut self, listener: std::net::TcpListener) -> Result<(), Error> {
        listener
            .set_nonblocking(true)
            .map_err(context("could not configure the IRC listener"))?;
        let mut listener = TcpListener::from_std(listener);
        self.poll
            .registry()
            .register(&mut listener, IRC_LISTENER, Interest::READABLE)
            .map_err(context("could not register the IRC listener"))?;
        self.irc_listener = Some(listener);
        Ok(())
    }

    pub(super) fn accept(&mut self, now: &Now) {
        self.accept_on(now, false);
        self.accept_on(now, true);
    }

    /// Accepts what waits on the main listener, or on the IRC one when `irc`.
    pub(super) fn accept_on(&mut self, now: &Now, irc: bool) {
        if self.accept_paused_until.is_some() {
            return;
        }
        while let Some(listener) = if irc {
            &self.irc_listener
        } else {
            &self.listener
        } {
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_resource_exhaustion(&e) => {
                    log_accept_error(&mut self.last_accept_log, now, &e);
                    // Refuse what is queued, one by one, with the spare descriptor; then wait for
                    // a close or a timer: queued connections raise no new edge.
                    let mut refused = 0;
                    while refused < 1024 && self.admission.refuse_one_queued(listener) {
                        refused += 1;
                    }
                    self.accept_paused_until = Some(now.instant + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => {
                    log_accept_error(&mut self.last_accept_log, now, &e);
                    continue;
                }
            };
            if let Err(reject) = self.admission.check(peer.ip(), self.conns.len()) {
                // Told in its own mode once its first bytes (or a silence) say which.
                let refusal = Refusal::new(reject, irc, self.irc);
                let deadline = now.instant + self.config.greeting_delay;
                let registry = self.poll.registry();
                self.admission
                    .refuse_later(registry, socket, peer, refusal, deadline);
                continue;
            }
            if let Err(e) = admission::keep_alive(&socket) {
                log::debug!("could not set TCP keepalive for {peer}: {e}");
            }
            if let Err(e) = socket.set_nodelay(true) {
                log::debug!("could not set TCP_NODELAY for {peer}: {e}");
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let id = conn_id(self.next_serial, key);
            self.next_serial += 1;
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut socket, Token(key), READ_INTEREST)
            {
                log::warn!("could not register {peer}: {e}");
                continue;
            }
            let policy = self.config.flood.unwrap_or_default();
            let allowance = Allowance::new(now.instant, &policy);
            let conn = entry.insert(Connection::new(
                socket,
                id,
                peer,
                self.config.limits,
                allowance,
            ));
            conn.irc_only = irc;
            let deadline =
                conn.opening_deadline(self.config.greeting_delay, self.config.name_timeout);
            self.counters.accepted += 1;
            log::info!("{} connected", conn.label());
            self.admission.admit(peer.ip());
            let check = now.instant + self.config.ping_interval;
            self.liveness.push(Reverse((check, key, id)));
            // The core hears of it once its first bytes (or a silence) tell its mode.
            self.openings.push(Reverse((deadline, key, id)));
        }
    }
}

/// Logs an accept failure, at most once per `ACCEPT_LOG_INTERVAL`.
fn log_accept_error(last: &mut Option<Instant>, now: &Now, error: &io::Error) {
    if last.is_none_or(|at| now.instant.duration_since(at) >= ACCEPT_LOG_INTERVAL) {
        *last = Some(now.instant);
        log::error!("accept failed: {error}");
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
