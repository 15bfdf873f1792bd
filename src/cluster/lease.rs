//! The lease keeper thread: every fifth of a lease it renews the node's heartbeat and the leases
//! of its users' names (taking a lease back that Redis lost in a restart, if it is still within
//! a lease of the last renewal); every tenth of a lease it looks for other nodes whose heartbeat
//! has expired and says so in the log (a `NodeGone` entry, appended by exactly one node).
//!
//! A node whose renewals have failed for longer than a lease (Redis unreachable, or the process
//! stopped) can no longer be sure nobody else holds its users' names: the keeper tells the loop
//! ([`Event::LeasesLost`]), which cuts those users off. After its own connection comes back
//! (or after such a pause), it waits a lease before it judges the other nodes, whose heartbeats
//! may not have been renewed meanwhile for the same reason.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use super::backoff::Backoff;
use super::entry;
use super::keys::{self, LOG, NODES};
use super::link::{connect, Event, Held, Part, ToLoop, REPLY_TIMEOUT};
use super::settings::ClusterConfig;

/// Renews the node's heartbeat (its key, living a lease), its place in the set of nodes and the
/// cluster's run `epoch` (set again if Redis lost it).
pub fn beat(
    con: &mut redis::Connection,
    config: &ClusterConfig,
    epoch: u64,
) -> redis::RedisResult<()> {
    let lease = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX);
    redis::pipe()
        .cmd("SET")
        .arg(keys::EPOCH)
        .arg(epoch)
        .arg("NX")
        .arg("PX")
        .arg(lease)
        .ignore()
        .cmd("PEXPIRE")
        .arg(keys::EPOCH)
        .arg(lease)
        .ignore()
        .cmd("SET")
        .arg(keys::node_key(&config.node))
        .arg(std::process::id())
        .arg("PX")
        .arg(lease)
        .ignore()
        .cmd("SADD")
        .arg(NODES)
        .arg(&config.node)
        .ignore()
        .query(con)
}

/// Starts the thread; `held` is the set of lease keys the writer keeps, `epoch` the cluster's
/// run; it ends when `stop` gets a message or its sender is dropped.
pub fn spawn(
    config: ClusterConfig,
    held: Held,
    to_loop: ToLoop,
    epoch: u64,
    stop: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("chatd-cluster-lease".into())
        .spawn(move || Keeper::new(config, held, to_loop, epoch).run(&stop))
}

struct Keeper {
    config: ClusterConfig,
    held: Held,
    to_loop: ToLoop,
    con: Option<redis::Connection>,
    backoff: Backoff,
    /// When the leases were last renewed.
    renewed: Instant,
    /// Whether the loop was told they are lost (since the last renewal).
    lost_told: bool,
    /// Until when the other nodes are not judged.
    grace_until: Instant,
    /// The outages counted when the connection was opened (see [`ToLoop::outages`]).
    seen: u64,
    /// The cluster's run, renewed with the heartbeat.
    epoch: u64,
}

impl Keeper {
    fn new(config: ClusterConfig, held: Held, to_loop: ToLoop, epoch: u64) -> Keeper {
        let now = Instant::now();
        Keeper {
            grace_until: now + config.lease,
            config,
            held,
            to_loop,
            con: None,
            backoff: Backoff::default(),
            renewed: now,
            lost_told: false,
            seen: 0,
            epoch,
        }
    }

    fn run(mut self, stop: &Receiver<()>) {
        let beat = self.config.beat();
        let check = self.config.check();
        let mut next_beat = Instant::now();
        let mut next_check = Instant::now() + check;
        let mut retry_at = Instant::now();
        let mut up = true;
        loop {
            let wake = next_beat.min(next_check);
            match stop.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if self.con.is_some() && self.to_loop.outages() != self.seen {
                // Another thread lost Redis: this connection may be as dead; a fresh one is sure.
                self.con = None;
                up = false;
                retry_at = now;
            }
            if self.con.is_none() && now >= retry_at {
                match connect(&self.config, REPLY_TIMEOUT) {
                    Ok(con) => {
                        self.con = Some(con);
                        self.seen = self.to_loop.outages();
                        self.backoff.reset();
                        self.grace_until = now + self.config.lease;
                        // Said after every connection opened, the first too: an outage another
                        // thread counted before it may be waiting for this thread's word.
                        up = true;
                        self.to_loop.send(Event::Link {
                            part: Part::Lease,
                            up,
                        });
                    }
                    Err(_) => retry_at = now + self.backoff.next_wait(),
                }
            }
            if now >= next_beat {
                next_beat = now + beat;
                let away = now.saturating_duration_since(self.renewed);
                if away > self.config.lease {
                    // Stopped or cut off for longer than a lease: the others have judged this
                    // node; it waits a lease before it judges them.
                    self.grace_until = now + self.config.lease;
                    if !self.lost_told {
                        log::warn!("cluster: leases not renewed for {away:?} (more than a lease): cutting this node's users off");
                        self.lost_told = true;
                        if !self.to_loop.send(Event::LeasesLost(None)) {
                            return;
                        }
                    }
                }
                if self.con.is_some() {
                    match self.renew(away <= self.config.lease) {
                        Ok(lost) => {
                            self.renewed = now;
                            self.lost_told = false;
                            if !lost.is_empty() {
                                log::warn!("cluster: names held by another node now: {lost:?}");
                                self.to_loop.send(Event::LeasesLost(Some(lost)));
                            }
                        }
                        Err(e) => {
                            log::warn!("cluster: the lease keeper lost Redis: {e}");
                            self.con = None;
                            retry_at = now;
                            if up {
                                up = false;
                                self.to_loop.lost(Part::Lease);
                            }
                            self.seen = self.to_loop.outages();
                        }
                    }
                }
            }
            if now >= next_check {
                next_check = now + check;
                if self.con.is_some() && now >= self.grace_until {
                    if let Err(e) = self.judge() {
                        log::warn!("cluster: could not check the other nodes: {e}");
                        self.con = None;
                        if up {
                            up = false;
                            self.to_loop.lost(Part::Lease);
                        }
                        self.seen = self.to_loop.outages();
                    }
                }
            }
        }
    }

    /// Renews the heartbeat and the leases; returns the names another node holds now.
    fn renew(&mut self, may_take_back: bool) -> redis::RedisResult<Vec<String>> {
        let Some(con) = self.con.as_mut() else {
            return Ok(Vec::new());
        };
        beat(con, &self.config, self.epoch)?;
        let held: Vec<String> = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned()
            .collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let lease = u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX);
        let lost: Vec<String> = redis::cmd("EVAL")
            .arg(keys::RENEW)
            .arg(held.len())
            .arg(&held)
            .arg(&self.config.node)
            .arg(lease)
            .arg(if may_take_back { "1" } else { "0" })
            .query(con)?;
        Ok(lost
            .into_iter()
            .map(|key| key.trim_start_matches("chatd:name:").to_owned())
            .collect())
    }

    /// Says in the log that each node whose heartbeat has expired is gone.
    fn judge(&mut self) -> redis::RedisResult<()> {
        let Some(con) = self.con.as_mut() else {
            return Ok(());
        };
        let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(NODES).query(con)?;
        for node in nodes.iter().filter(|node| **node != self.config.node) {
            let gone = entry::node_gone(&self.config.node, node);
            let said: i64 = redis::cmd("EVAL")
                .arg(keys::NODE_GONE)
                .arg(3)
                .arg(keys::node_key(node))
                .arg(NODES)
                .arg(LOG)
                .arg(node)
                .arg(gone)
                .arg(self.config.log_max)
                .query(con)?;
            if said == 1 {
                log::warn!("cluster: node {node} is gone (no heartbeat for a lease)");
            }
        }
        Ok(())
    }
}
