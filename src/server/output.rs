//! The output half of the shell: each message encoded once per wire mode and its shared bytes
//! queued for every recipient (a room's broadcasts taken by each member just before it is
//! written), the output limits, and the writes through each connection's transport.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::Instant;

use mio::Token;

use super::conn::{key_of, Closing, Connection};
use super::metrics::{Counted, SlowLimit};
use super::wire::WireBytes;
use super::Server;
use crate::config::Config;
use crate::core::rooms::RoomId;
use crate::core::{ConnId, Now, Recipients};
use crate::proto::msg::ServerMsg;
use crate::proto::Mode;

impl Server {
    /// Queues `msg` for its recipients, encoded at most once per wire mode and shared; a room
    /// broadcast goes to its room's log for the turn, which members take from as they are written.
    pub(super) fn deliver(&mut self, to: Recipients, msg: ServerMsg, now: &Now) {
        if to == Recipients::Console && self.cluster.as_ref().is_some_and(|c| c.foreign_host) {
            // Another node's console command: its answer was shown on that node's console.
            return;
        }
        let to_console = matches!(
            to,
            Recipients::Console
                | Recipients::Room { console: true, .. }
                | Recipients::InRoom { console: true, .. }
        );
        if to_console {
            self.console_out.show(&msg, now.stamp);
        }
        // A chat line (one with an id) is not sent back to its sender, unless the sender asked
        // for its own lines (IRC's echo-message): then it gets the bytes everyone gets.
        let echo = |except: Option<ConnId>| match except {
            Some(id) if matches!(msg, ServerMsg::Line { .. }) => self
                .key(id)
                .and_then(|key| self.conns.get(key))
                .filter(|conn| conn.echoes())
                .map_or(except, |_| None),
            _ => except,
        };
        match to {
            Recipients::Console => {}
            Recipients::Room { except, .. } => {
                let except = echo(except);
                self.fanout.push(RoomId::DEFAULT, msg, except)
            }
            Recipients::InRoom { room, except, .. } => {
                let except = echo(except);
                self.fanout.push(room, msg, except)
            }
            Recipients::One(conn) => {
                if let Some(key) = self.key(conn) {
                    self.enqueue_msg(key, &mut WireBytes::new(msg), now);
                }
            }
            Recipients::Everyone => {
                let mut wire = WireBytes::new(msg);
                // Only those the core knows: one still being sniffed has not been greeted.
                let keys: Vec<usize> = self
                    .conns
                    .iter()
                    .filter(|(_, conn)| conn.mode().is_some())
                    .map(|(key, _)| key)
                    .collect();
                for key in keys {
                    self.enqueue_msg(key, &mut wire, now);
                }
            }
        }
    }

    /// Queues the message's bytes for `key` in the connection's mode (text until the mode is
    /// known), after the room broadcasts it has not taken yet.
    pub(super) fn enqueue_msg(&mut self, key: usize, wire: &mut WireBytes, now: &Now) {
        self.take_broadcasts(key, now);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // After a WebSocket's close frame, nothing more may be sent.
        if conn.closing == Some(Closing::Now) || conn.is_sealed() {
            return;
        }
        let bytes = match conn.encode_own(wire.msg()) {
            Some(own) => Rc::from(own),
            None => wire.for_mode(conn.mode().unwrap_or(Mode::Text)),
        };
        if conn.out.is_empty() {
            self.dirty.push(key);
        }
        conn.before_message(wire.msg());
        conn.out.push(bytes);
        self.counters.deliveries += 1;
        if conn.makes_input() {
            // A reply its IRC session follows with a query of its own (a JOIN's names).
            self.ready.push((key, conn.id));
        }
        self.check_queued(key, now);
    }

    /// Moves into `key`'s queue the room broadcasts it has not taken yet.
    pub(super) fn take_broadcasts(&mut self, key: usize, now: &Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !self.fanout.is_behind(&conn.rooms) {
            return;
        }
        if conn.closing == Some(Closing::Now) || conn.is_sealed() {
            self.fanout.skip(&mut conn.rooms);
            return;
        }
        if conn.out.is_empty() {
            self.dirty.push(key);
        }
        let mode = conn.mode().unwrap_or(Mode::Text);
        self.fanout
            .take(&mut conn.rooms, conn.id, mode, &mut conn.out);
        self.check_queued(key, now);
    }

    /// Cuts `key` off if more than `--max-outbuf` is queued for it, and watches the soft limit.
    pub(super) fn check_queued(&mut self, key: usize, now: &Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.out.pending() > self.config.max_outbuf {
            let why = format!(
                "slow consumer: {} bytes queued past the {} byte limit",
                conn.out.pending(),
                self.config.max_outbuf
            );
            conn.out.clear();
            self.counters.slow_consumer(SlowLimit::Hard);
            self.close_with(key, Closing::Now, log::Level::Warn, why);
            return;
        }
        watch_soft_limit(conn, key, &self.config, now, &mut self.soft_checks);
    }

    /// Writes every connection with new output, each member taking the turn's broadcasts just
    /// before it is written (at the end of a turn, or during one once a room's senders are read);
    /// WRITABLE interest only for those left with bytes.
    pub(super) fn flush(&mut self, now: &Now) {
        let mut dirty = std::mem::take(&mut self.dirty);
        let fanout = &self.fanout;
        if fanout.lobby_has_news() {
            let behind = self
                .conns
                .iter()
                .filter(|(_, c)| fanout.is_behind(&c.rooms));
            dirty.extend(behind.map(|(key, _)| key));
        } else {
            // Only the members of the rooms with news: a turn flushed room by room (see
            // `Server::serve_grouped`) looks at 20 connections, not at all of them.
            for room in fanout.rooms_with_news() {
                let conns = &self.conns;
                let behind = self.chat.room_members(room).filter_map(|id| {
                    let key = key_of(id);
                    conns
                        .get(key)
                        .filter(|c| c.id == id && fanout.is_behind(&c.rooms))
                        .map(|_| key)
                });
                dirty.extend(behind);
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        if !self.fanout.is_empty() {
            // Room by room: each member reads its room's log and its lines' bytes, still in the
            // cache from the member before it in the same room. A burst's turn is 30 to 45
            // thousand lines (30 MiB) with 1,000 members in 50 rooms: in key order each member
            // found its room's lines gone from the cache.
            let conns = &self.conns;
            dirty.sort_by_cached_key(|&key| (conns.get(key).map(|c| c.rooms.group().0), key));
        }
        for &key in &dirty {
            self.take_broadcasts(key, now);
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.closing == Some(Closing::Now) {
                continue;
            }
            let mut socket = Counted::new(&mut conn.socket, &mut self.counters.bytes_out);
            let written = conn.transport.write(&mut conn.out, &mut socket);
            watch_soft_limit(conn, key, &self.config, now, &mut self.soft_checks);
            if let Err(e) = written {
                conn.out.clear();
                self.close(key, Closing::Now, format!("write failed: {e}"));
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
                    self.close(key, Closing::Now, format!("reregister failed: {e}"));
                }
            }
        }
        self.fanout.clear();
        dirty.clear();
        // Taking broadcasts may have marked some dirty again; they were all written above.
        self.dirty.clear();
        std::mem::swap(&mut self.dirty, &mut dirty);
    }
}

/// Notes when `conn`'s queue went over the soft limit (and schedules a check), or that it is
/// back under it: over it for too long is a slow consumer too, below the hard limit.
pub(super) fn watch_soft_limit(
    conn: &mut Connection,
    key: usize,
    config: &Config,
    now: &Now,
    checks: &mut BinaryHeap<Reverse<(Instant, usize, ConnId)>>,
) {
    if conn.out.pending() <= config.outbuf_soft {
        conn.over_soft_since = None;
    } else if conn.over_soft_since.is_none() {
        conn.over_soft_since = Some(now.instant);
        checks.push(Reverse((
            now.instant + config.outbuf_soft_time,
            key,
            conn.id,
        )));
    }
}
