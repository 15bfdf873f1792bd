//! Who may connect: the client limits, the per-address limit, and what to do when the process
//! runs out of file descriptors.
//!
//! A refused connection is told why in its own wire mode ([`Refusal`]), which its first bytes
//! tell: it waits for them (or for the greeting delay's silence, which makes it text) outside the
//! client slab, with its own tokens, at most [`MAX_WAITING`] at once. One more refused while that
//! many wait (a flood) is told in text at once and closed, as is one refused for want of a file
//! descriptor (there is none to keep it open with).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::stack::refusal::{Refusal, MAX_HEAD};
use crate::proto::msg::{Reject, ServerMsg};
use crate::proto::text;

/// Most refused connections waiting to be told in their mode; one more is told in text at once.
pub const MAX_WAITING: usize = 16;
/// Tokens of refused connections are this plus their slot: far above the clients' keys, below
/// the metrics scrapers' ([`super::scrape::FIRST_SCRAPER`]).
pub const FIRST_REFUSED: usize = usize::MAX - 2048;

/// A refused connection waiting for the bytes that tell its mode.
#[derive(Debug)]
struct Waiting {
    socket: TcpStream,
    peer: SocketAddr,
    refusal: Refusal,
    /// When its silence makes it text (or cuts an unfinished request head short).
    deadline: Instant,
}

/// The connection limits, and the count of connections per address.
#[derive(Debug)]
pub struct Admission {
    max_clients: usize,
    max_per_ip: usize,
    limit_loopback: bool,
    per_ip: HashMap<IpAddr, usize>,
    /// A descriptor held in reserve: closed to accept-and-refuse when descriptors run out.
    spare: Option<File>,
    /// Refused connections not yet told, by their slot.
    waiting: Slab<Waiting>,
}

impl Admission {
    /// Limits of `max_clients` connections in all and `max_per_ip` per address (loopback exempt
    /// unless `limit_loopback`).
    pub fn new(max_clients: usize, max_per_ip: usize, limit_loopback: bool) -> Admission {
        Admission {
            max_clients,
            max_per_ip,
            limit_loopback,
            per_ip: HashMap::new(),
            spare: open_spare(),
            waiting: Slab::new(),
        }
    }

    /// Whether a connection from `peer` may join the `open` ones; the reason if not.
    pub fn check(&self, peer: IpAddr, open: usize) -> Result<(), Reject> {
        if open >= self.max_clients {
            return Err(Reject::ServerFull);
        }
        let limited = self.limit_loopback || !peer.is_loopback();
        if limited && self.per_ip.get(&peer).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(Reject::TooManyFromAddress);
        }
        Ok(())
    }

    /// Counts a connection from `peer`.
    pub fn admit(&mut self, peer: IpAddr) {
        *self.per_ip.entry(peer).or_default() += 1;
    }

    /// Uncounts a connection from `peer`.
    pub fn release(&mut self, peer: IpAddr) {
        if let Some(count) = self.per_ip.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&peer);
            }
        }
    }

    /// Out of descriptors with connections queued: frees the spare descriptor to accept one
    /// queued connection, refuses it, and takes the spare back. Returns whether one was refused
    /// (call again while it does: each call drains one).
    pub fn refuse_one_queued(&mut self, listener: &TcpListener) -> bool {
        let Some(spare) = self.spare.take() else {
            return false;
        };
        drop(spare);
        let refused = match listener.accept() {
            Ok((socket, peer)) => {
                log::warn!("refused {peer}: out of file descriptors");
                refuse(socket, Reject::ServerFull);
                true
            }
            Err(_) => false,
        };
        self.spare = open_spare();
        refused
    }

    /// Refuses `socket` (from `peer`) in its mode once its first bytes or its silence until
    /// `deadline` tell it; beyond [`MAX_WAITING`], in text at once.
    pub fn refuse_later(
        &mut self,
        registry: &Registry,
        mut socket: TcpStream,
        peer: SocketAddr,
        refusal: Refusal,
        deadline: Instant,
    ) {
        if self.waiting.len() >= MAX_WAITING {
            log::warn!(
                "refused {peer}: {} (told in text at once: {MAX_WAITING} refusals wait already)",
                refusal.reject()
            );
            return refuse(socket, refusal.reject().clone());
        }
        let entry = self.waiting.vacant_entry();
        let token = Token(FIRST_REFUSED + entry.key());
        if let Err(e) = registry.register(&mut socket, token, Interest::READABLE) {
            log::warn!(
                "refused {peer}: {} (could not wait for it: {e})",
                refusal.reject()
            );
            return refuse(socket, refusal.reject().clone());
        }
        log::warn!("refused {peer}: {}", refusal.reject());
        let key = entry.key();
        entry.insert(Waiting {
            socket,
            peer,
            refusal,
            deadline,
        });
        // Its first bytes may be there already, with no edge to come for them.
        self.read_refused(registry, key);
    }

    /// Reads what the refused connection in `slot` sent (its token's event); answers and closes
    /// it once that tells its mode, or once it ends.
    pub fn read_refused(&mut self, registry: &Registry, slot: usize) {
        let Some(waiting) = self.waiting.get_mut(slot) else {
            return;
        };
        let mut buf = [0; 2048];
        let mut answer = None;
        let mut read = 0;
        // Everything there is read before the answer, so that the close leaves nothing unread
        // (which would reset the connection, and the peer could lose the answer).
        let ended = loop {
            match waiting.socket.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    read += n;
                    if answer.is_none() {
                        answer = waiting.refusal.receive(&buf[..n]);
                    }
                    if read > MAX_HEAD + buf.len() {
                        break false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close_refused(registry, slot, None),
            }
        };
        // An end (or a head past its limit) is answered by what came, as silence is.
        if answer.is_none() && (ended || read > MAX_HEAD) {
            answer = Some(waiting.refusal.silence());
        }
        if answer.is_some() {
            self.close_refused(registry, slot, answer);
        }
    }

    /// Tells the refused connections whose deadline has come, by what they sent so far.
    pub fn expire_refused(&mut self, registry: &Registry, now: Instant) {
        self.tell_refused(registry, |w| w.deadline <= now);
    }

    /// Tells every refused connection still waiting, by what it sent so far (the server stops).
    pub fn tell_all_refused(&mut self, registry: &Registry) {
        self.tell_refused(registry, |_| true);
    }

    fn tell_refused(&mut self, registry: &Registry, due: impl Fn(&Waiting) -> bool) {
        if self.waiting.is_empty() {
            return;
        }
        let due: Vec<usize> = self
            .waiting
            .iter()
            .filter(|(_, w)| due(w))
            .map(|(slot, _)| slot)
            .collect();
        for slot in due {
            let answer = self.waiting[slot].refusal.silence();
            self.close_refused(registry, slot, Some(answer));
        }
    }

    /// The earliest deadline of a refused connection waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|(_, w)| w.deadline).min()
    }

    /// Writes `answer` (one try: it is a few hundred bytes on a fresh socket) to the refused
    /// connection in `slot` and closes it.
    fn close_refused(&mut self, registry: &Registry, slot: usize, answer: Option<Vec<u8>>) {
        let mut waiting = self.waiting.remove(slot);
        let _ = registry.deregister(&mut waiting.socket);
        if let Some(answer) = answer {
            if let Err(e) = waiting.socket.write(&answer) {
                log::debug!("could not tell {} it is refused: {e}", waiting.peer);
            }
        }
    }
}

/// Tells a connection it cannot be served, best effort, and closes it.
pub fn refuse(mut socket: mio::net::TcpStream, reject: Reject) {
    // What the peer sent already is read first (one try): closing over unread bytes resets the
    // connection, and the peer may lose the line. (Bytes still on their way do that all the same.)
    let _ = socket.read(&mut [0; 1024]);
    let mut line = Vec::new();
    text::encode(&ServerMsg::Reject(reject), text::CLIENT_EOL, &mut line);
    let _ = socket.write(&line);
}

fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

/// Raises the soft limit on open files as far as the hard limit allows, and returns how many
/// clients fit in it with `reserve` descriptors kept for everything else.
pub fn raise_fd_limit(wanted_clients: usize, reserve: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = (wanted_clients + reserve) as u64;
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let soft = limit.current.unwrap_or(u64::MAX);
    let target = wanted.min(hard).max(soft);
    if target > soft {
        let raised = Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            log::warn!("could not raise the open-file limit from {soft} to {target}: {e}");
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let fits = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserve);
    if fits < wanted_clients {
        log::warn!("the open-file limit ({soft}) allows only {fits} clients; --max-clients lowered from {wanted_clients}");
        return fits.max(1);
    }
    wanted_clients
}

/// Turns on TCP keepalive so a peer that vanished is found in about five minutes.
pub fn keep_alive(socket: &mio::net::TcpStream) -> io::Result<()> {
    use rustix::net::sockopt;
    use std::time::Duration;
    sockopt::set_socket_keepalive(socket, true)?;
    sockopt::set_tcp_keepidle(socket, Duration::from_secs(240))?;
    sockopt::set_tcp_keepintvl(socket, Duration::from_secs(20))?;
    sockopt::set_tcp_keepcnt(socket, 3)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_per_address_and_spare_loopback() {
        let far = IpAddr::from([192, 0, 2, 7]);
        let here = IpAddr::from([127, 0, 0, 1]);
        let mut admission = Admission::new(10, 2, false);
        admission.admit(far);
        admission.admit(far);
        assert_eq!(admission.check(far, 2), Err(Reject::TooManyFromAddress));
        admission.release(far);
        assert_eq!(admission.check(far, 1), Ok(()));
        for _ in 0..5 {
            admission.admit(here);
        }
        assert_eq!(admission.check(here, 6), Ok(()), "loopback is exempt");
        assert_eq!(admission.check(here, 10), Err(Reject::ServerFull));
        let strict = Admission {
            limit_loopback: true,
            ..Admission::new(10, 2, true)
        };
        let mut strict = strict;
        strict.admit(here);
        strict.admit(here);
        assert_eq!(strict.check(here, 2), Err(Reject::TooManyFromAddress));
    }
}
