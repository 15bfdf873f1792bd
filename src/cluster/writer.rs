//! The writer thread: appends what the loop sends, in the order sent, as pipelines (everything
//! waiting goes in one round trip); claims and releases run as Lua scripts, atomic with their
//! entry. While Redis cannot be reached, what must not be lost (a user's leaving, a console
//! command, a node's entries) waits and is appended once Redis is back, and so does every append
//! and claim that was sent when the connection was lost (Redis may have taken it already: a copy
//! of an append is dropped where it is applied, a claim sent again finds its mark); the rest goes
//! back to the loop at once as [`Event::Failed`], so that its user is told.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::keys::{self, BATCH_FIELD, FIELD, LOG};
use super::link::{connect, Event, Held, Outgoing, Part, ToLoop, REPLY_TIMEOUT};
use super::settings::ClusterConfig;

/// Most items appended in one pipeline.
const MAX_BATCH: usize = 1024;
/// How often an idle writer looks whether another thread lost Redis.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// Starts the thread on the connection `con` the start opened, for the node's run `run` (the
/// stream id of its `Sync` entry).
pub fn spawn(
    config: ClusterConfig,
    run: String,
    con: redis::Connection,
    queue: Receiver<Outgoing>,
    queued: Arc<AtomicUsize>,
    to_loop: ToLoop,
    held: Held,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("chatd-cluster-writer".into())
        .spawn(move || {
            Writer {
                config,
                run,
                con: Some(con),
                to_loop,
                held,
                kept: Vec::new(),
                queued,
                backoff: Backoff::default(),
                retry_at: Instant::now(),
                seen: 0,
            }
            .run(&queue)
        })
}

struct Writer {
    config: ClusterConfig,
    /// The node's run, for the marks of its claims ([`keys::claim_key`]).
    run: String,
    con: Option<redis::Connection>,
    to_loop: ToLoop,
    held: Held,
    /// What waits for Redis to be back.
    kept: Vec<Outgoing>,
    /// How many items the loop handed over that are not done with yet (queued, being written,
    /// or kept).
    queued: Arc<AtomicUsize>,
    backoff: Backoff,
    retry_at: Instant,
    /// The outages counted when the connection was opened (see [`ToLoop::outages`]).
    seen: u64,
}

impl Writer {
    fn run(mut self, queue: &Receiver<Outgoing>) {
        let mut batch = Vec::new();
        loop {
            let wait = if self.con.is_some() && self.kept.is_empty() {
                IDLE_CHECK
            } else {
                self.retry_at.saturating_duration_since(Instant::now())
            };
            let first = queue.recv_timeout(wait);
            if self.con.is_some() && self.to_loop.outages() != self.seen {
                // Another thread lost Redis: this connection may be as dead; a fresh one is sure.
                self.con = None;
                self.retry_at = Instant::now();
            }
            match first {
                Ok(item) => batch.push(item),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let finish = batch
                .iter()
                .any(|item| matches!(item, Outgoing::Finish { .. }));
            if self.con.is_none() && (finish || Instant::now() >= self.retry_at) {
                self.reconnect();
            }
            if self.con.is_none() {
                let failed = self.keep_or_fail(std::mem::take(&mut batch), false);
                self.done(failed.len());
                if !failed.is_empty() && !self.to_loop.send(Event::Failed(failed)) {
                    return;
                }
                if finish {
                    return;
                }
                continue;
            }
            let mut items = std::mem::take(&mut self.kept);
            items.append(&mut batch);
            if items.is_empty() {
                continue;
            }
            self.write(items);
            if finish {
                return;
            }
        }
    }

    /// `count` items handed over are done with (appended, or sent back as failed); those kept
    /// for after an outage still count until they are appended.
    fn done(&self, count: usize) {
        self.queued.fetch_sub(count, Ordering::Relaxed);
    }

    /// Tries Redis again; the next try is later each time it fails.
    fn reconnect(&mut self) {
        match connect(&self.config, REPLY_TIMEOUT) {
            Ok(con) => {
                log::info!("cluster: the writer reached Redis again");
                self.con = Some(con);
                self.seen = self.to_loop.outages();
                self.backoff.reset();
                self.to_loop.send(Event::Link {
                    part: Part::Writer,
                    up: true,
                });
            }
            Err(e) => {
                log::debug!("cluster: the writer cannot reach Redis: {e}");
                self.retry_at = Instant::now() + self.backoff.next_wait();
            }
        }
    }

    /// Keeps what waits for Redis to be back; returns the rest. What was `sent` (its answer
    /// never came) may be in the log already: every append and claim of it is kept, to be sent
    /// again, since telling a user "not sent" of a line the others may see, or "degraded" of a
    /// login the others may have admitted, would be false (a second copy of an append is
    /// dropped where it is applied, by its number; a claim sent again finds its mark).
    fn keep_or_fail(&mut self, items: Vec<Outgoing>, sent: bool) -> Vec<Outgoing> {
        let mut failed = Vec::new();
        for item in items {
            match item {
                Outgoing::Append { keep: true, .. } | Outgoing::Release { .. } => {
                    self.kept.push(item)
                }
                Outgoing::Append { .. } | Outgoing::Claim { .. } if sent => self.kept.push(item),
                Outgoing::Append { .. } | Outgoing::Claim { .. } => failed.push(item),
                Outgoing::Finish { .. } => {}
            }
        }
        failed
    }

    /// Appends `items` in one pipeline and answers the claims; if the connection is lost, what
    /// must not be lost waits, and the rest is sent back.
    fn write(&mut self, items: Vec<Outgoing>) {
        let Some(con) = self.con.as_mut() else {
            return;
        };
        let node = self.config.node.as_str();
        let lease = u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX);
        let log_max = self.config.log_max;
        let mut pipe = redis::pipe();
        for (i, item) in items.iter().enumerate() {
            match item {
                // A run of appends goes as one stream entry, written by its first.
                Outgoing::Append { .. } if follows_append(&items, i) => {}
                Outgoing::Append { entry, .. } => {
                    let run: Vec<&[u8]> = items[i..]
                        .iter()
                        .map_while(|item| match item {
                            Outgoing::Append { entry, .. } => Some(entry.as_slice()),
                            _ => None,
                        })
                        .collect();
                    let add = pipe
                        .cmd("XADD")
                        .arg(LOG)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(log_max)
                        .arg("*");
                    match run.as_slice() {
                        [_] => add.arg(FIELD).arg(entry),
                        _ => add.arg(BATCH_FIELD).arg(run.concat()),
                    };
                }
                Outgoing::Claim { tag, name, entry } => {
                    pipe.cmd("EVAL")
                        .arg(keys::CLAIM)
                        .arg(3)
                        .arg(keys::name_key(name))
                        .arg(LOG)
                        .arg(keys::claim_key(node, &self.run, *tag))
                        .arg(node)
                        .arg(lease)
                        .arg(entry)
                        .arg(log_max);
                }
                Outgoing::Release { name, entry } => {
                    pipe.cmd("EVAL")
                        .arg(keys::RELEASE)
                        .arg(2)
                        .arg(keys::name_key(name))
                        .arg(LOG)
                        .arg(node)
                        .arg(entry)
                        .arg(log_max);
                }
                Outgoing::Finish { entry } => {
                    pipe.cmd("DEL").arg(keys::node_key(node));
                    pipe.cmd("EVAL")
                        .arg(keys::NODE_GONE)
                        .arg(3)
                        .arg(keys::node_key(node))
                        .arg(keys::NODES)
                        .arg(LOG)
                        .arg(node)
                        .arg(entry)
                        .arg(log_max);
                }
            }
        }
        match pipe.query::<Vec<redis::Value>>(con) {
            Ok(replies) => {
                self.answer(&items, &replies);
                self.done(items.len());
            }
            Err(e) => {
                log::warn!("cluster: lost Redis while appending: {e}");
                self.con = None;
                self.retry_at = Instant::now() + self.backoff.next_wait();
                self.to_loop.lost(Part::Writer);
                self.seen = self.to_loop.outages();
                let failed = self.keep_or_fail(items, true);
                self.done(failed.len());
                if !failed.is_empty() {
                    self.to_loop.send(Event::Failed(failed));
                }
            }
        }
    }

    /// Tells the loop how its claims went and keeps the set of held leases.
    fn answer(&mut self, items: &[Outgoing], replies: &[redis::Value]) {
        let mut replies = replies.iter();
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (i, item) in items.iter().enumerate() {
            match item {
                Outgoing::Append { .. } if follows_append(items, i) => {}
                Outgoing::Append { .. } => {
                    replies.next();
                }
                Outgoing::Claim { tag, name, .. } => {
                    let won = replies
                        .next()
                        .is_some_and(|reply| matches!(reply, redis::Value::Int(1)));
                    if won {
                        held.insert(keys::name_key(name));
                    }
                    self.to_loop.send(Event::Claimed {
                        tag: *tag,
                        taken: !won,
                    });
                }
                Outgoing::Release { name, .. } => {
                    replies.next();
                    held.remove(&keys::name_key(name));
                }
                Outgoing::Finish { .. } => {
                    replies.next();
                    replies.next();
                }
            }
        }
    }
}

/// Whether `items[i]` comes right after an append, and so goes in that append's stream entry.
fn follows_append(items: &[Outgoing], i: usize) -> bool {
    i > 0 && matches!(items[i - 1], Outgoing::Append { .. })
}
