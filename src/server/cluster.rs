//! The shell's side of `--cluster`: between the core's [`Action::Publish`] and the log's
//! entries (through [`crate::cluster::Link`]), and back as [`Input::Applied`].
//!
//! - **Ids.** An entry's connection ids are its node's. A remote connection gets a local
//!   **ghost** id the first time its Admit is read: [`GHOST`] set, a counter below it, so it
//!   never equals a real connection's id (whose serial stays far below bit 63) and the shell
//!   tells one apart with a bit test. Deliveries to ghosts find no connection and are dropped;
//!   jobs for them (passwords, history look-ups, mail) are never started: their own node does
//!   them.
//! - **Time.** Each entry is applied with a [`Now`] whose stamp is the entry's, so every node
//!   shows the same time on a line.
//! - **Console.** While another node's console command is applied, what it answers to the
//!   console alone is dropped here (it was shown on that node's console); room lines still
//!   show on every console.
//! - **Faults.** Redis out of reach (any of the three threads): the core is told
//!   [`Health::Degraded`], logins and lines are refused at once ([`Unshared::Degraded`]),
//!   leavings and console commands wait in the writer; all three back: [`Health::Restored`].
//!   A node that lost its leases (renewals failed for longer than a lease, or another node
//!   holds a name) cuts its users off; `NodeGone` about another node is a Left for each of its
//!   ghosts, and about this node a Left for each of its own users (and they are cut off).
//! - **A late node** ([`Server::with_cluster`], before the loop runs) appends `Sync` and waits
//!   (at most [`SYNC_WAIT`]) for a `Snapshot` from every node alive, restores them, then applies
//!   what the log said meanwhile; only then does the loop run and take logins.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use super::conn::Closing;
use super::{Error, Server, CLOSE_LINGER, FLUSH_AFTER};
use crate::cluster::entry::{self, Body, Entry};
use crate::cluster::{ClusterConfig, Event, Link, Outgoing, Part};
use crate::core::cluster::{Health, Shared, Snapshot, Unshared};
use crate::core::rooms::IdMap;
use crate::core::{ConnId, Input, Now};
use crate::history::Job;
use crate::proto::msg::{Notice, ServerMsg, Stamp};

/// The bit that makes a connection id a ghost's.
pub const GHOST: u64 = 1 << 63;
/// How long a late node waits for the other nodes' snapshots.
pub const SYNC_WAIT: Duration = Duration::from_secs(3);

/// Whether `id` is a ghost's (a user of another node).
pub fn is_ghost(id: ConnId) -> bool {
    id.0 & GHOST != 0
}

/// What this node's history store does with a job of the core: `None` for a ghost's page (in
/// a cluster, the ghost's own node answers it). Every node keeps a mail to an offline user (the
/// sender's node tells the sender), so that the recipient gets it on whichever node they log in
/// to; a node where they did not log in drops its copy when it applies their login.
pub fn job_here(job: Job) -> Option<Job> {
    match job {
        Job::Page { conn, .. } if is_ghost(conn) => None,
        Job::Mailbox { conn, name } if is_ghost(conn) => Some(Job::Delivered {
            name,
            up_to: i64::MAX,
        }),
        job => Some(job),
    }
}

/// A late node's wait: the nodes whose snapshot is awaited, and the entries read meanwhile.
type Syncing = (HashSet<String>, Entries);

/// Entries of the log as read: each stream id and its value (one encoded entry, or a batch's).
type Entries = Vec<(String, Vec<u8>)>;

/// The cluster's state in the shell.
#[derive(Debug)]
pub struct Bridge {
    link: Link,
    node: String,
    ghosts: Ghosts,
    /// The name each local connection claimed (its lease is released with its Left).
    names: HashMap<ConnId, String>,
    /// Admits waiting for their claim's answer, by connection.
    claims: HashMap<u64, Shared>,
    /// The threads that cannot reach Redis now.
    down: HashSet<Part>,
    /// Set while another node's console command is applied.
    pub foreign_host: bool,
    /// Set while any entry of another node is applied: what it changes in the accounts, that
    /// node writes.
    pub foreign: bool,
    /// Until synced: the nodes whose snapshot is awaited, and the entries read meanwhile.
    syncing: Option<Syncing>,
    /// Set when the log was trimmed past what this node read: the last id it read.
    log_lost: Option<String>,
    /// Most items waiting for the writer before input is held back (then, past
    /// [`HOLD_MAX`], refused).
    queue_max: usize,
    /// Connections whose input waits for the writer's queue to go below `queue_max`.
    held: Vec<(usize, ConnId)>,
    /// Since when the queue has been full, while it is.
    full_since: Option<Instant>,
    /// The number of this node's last `Shared` entry (see [`Entry::seq`]).
    last_seq: u64,
    /// What was applied of each node.
    applied: Applied,
}

/// The number of the last `Shared` entry applied of each node, since its `Sync`: one appended
/// again (the writer sends what it never heard the answer to again) is dropped.
#[derive(Debug, Default)]
struct Applied(HashMap<String, u64>);

impl Applied {
    /// Whether `node`'s entry `seq` is applied for the first time (entries numbered 0 always
    /// are), noting it.
    fn first_time(&mut self, node: &str, seq: u64) -> bool {
        if seq == 0 {
            return true;
        }
        match self.0.get_mut(node) {
            Some(last) if seq <= *last => false,
            Some(last) => {
                *last = seq;
                true
            }
            None => {
                self.0.insert(node.to_owned(), seq);
                true
            }
        }
    }

    /// `node` started again (its `Sync`) or is gone: its numbers start again.
    fn forget(&mut self, node: &str) {
        self.0.remove(node);
    }
}

/// How long input is held back for a full writer queue (Redis reachable, but slower than the
/// clients) before what needs Redis is refused as when the chat is degraded: a burst slows down,
/// losing nothing; a Redis that stopped answering is told to users within this time.
pub const HOLD_MAX: Duration = Duration::from_millis(500);
/// How often held input looks whether the writer's queue has room again.
const HOLD_CHECK: Duration = Duration::from_millis(2);

impl Server {
    /// Joins the cluster of `config.cluster`, if any: starts the link and catches up with the
    /// other nodes (their snapshots, then what the log said since), before the loop runs.
    pub(super) fn with_cluster(mut self, waker: Arc<Waker>) -> Result<Server, Error> {
        let Some(config) = self.config.cluster.clone() else {
            return Ok(self);
        };
        let sync = Entry {
            node: config.node.clone(),
            seq: 0,
            stamp: entry::unix_now(),
            body: Body::Sync,
        };
        let link =
            Link::start(&config, sync.encode(), super::run_epoch(), waker).map_err(|e| Error {
                context: "could not join the cluster",
                source: std::io::Error::other(e),
            })?;
        // One run for the whole cluster: a line has one id at every node.
        self.chat.set_epoch(link.epoch);
        log::info!(
            "cluster: node {} on {}; waiting for the snapshots of {:?}",
            config.node,
            config.url,
            link.peers
        );
        let waiting: HashSet<String> = link.peers.iter().cloned().collect();
        self.cluster = Some(Bridge::new(link, &config, waiting));
        let deadline = Instant::now() + SYNC_WAIT;
        while self.syncing() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!("cluster: not every node answered within {SYNC_WAIT:?}; going on with what came");
                break;
            }
            let event = self.cluster.as_ref().and_then(|c| c.link.wait(left));
            if let Some(event) = event {
                let now = self.clock.now();
                self.cluster_event(event, &now);
            }
        }
        let now = self.clock.now();
        self.end_sync(&now);
        Ok(self)
    }

    fn syncing(&self) -> bool {
        self.cluster
            .as_ref()
            .and_then(|c| c.syncing.as_ref())
            .is_some_and(|(waiting, _)| !waiting.is_empty())
    }

    /// Applies what the log said while the node waited for the snapshots.
    fn end_sync(&mut self, now: &Now) {
        let Some((_, buffered)) = self.cluster.as_mut().and_then(|c| c.syncing.take()) else {
            return;
        };
        log::info!(
            "cluster: synced ({} entries read meanwhile)",
            buffered.len()
        );
        self.apply_entries(buffered, now);
    }

    /// Takes what the cluster's threads sent.
    pub(super) fn take_cluster(&mut self, now: &Now) {
        let events = self
            .cluster
            .as_ref()
            .map(|c| c.link.events())
            .unwrap_or_default();
        for event in events {
            self.cluster_event(event, now);
        }
    }

    /// Whether the input of `key` (connection `id`) waits, because the writer's queue is full
    /// while Redis is reachable: reading it pauses (TCP slows the sender) until the queue has
    /// room, or for at most [`HOLD_MAX`], after which lines are refused as when degraded.
    pub(super) fn cluster_holds_input(&mut self, key: usize, id: ConnId, now: Instant) -> bool {
        let Some(bridge) = self.cluster.as_mut() else {
            return false;
        };
        if !bridge.down.is_empty() || bridge.link.queued() < bridge.queue_max {
            return false;
        }
        let since = *bridge.full_since.get_or_insert(now);
        if now.duration_since(since) >= HOLD_MAX {
            return false;
        }
        if !bridge.held.contains(&(key, id)) {
            bridge.held.push((key, id));
        }
        true
    }

    /// When held input should look at the writer's queue again (from `now`), if any is held.
    pub(super) fn cluster_hold_deadline(&self, now: Instant) -> Option<Instant> {
        let bridge = self.cluster.as_ref()?;
        let since = bridge.full_since.filter(|_| !bridge.held.is_empty())?;
        Some((now + HOLD_CHECK).min(since + HOLD_MAX))
    }

    /// Serves the held connections again once the writer's queue has room, Redis is lost (then
    /// their lines are refused as degraded) or they waited [`HOLD_MAX`].
    pub(super) fn release_cluster_input(&mut self, now: &Now) {
        let Some(bridge) = self.cluster.as_mut() else {
            return;
        };
        let room = bridge.link.queued() < bridge.queue_max;
        if room {
            bridge.full_since = None;
        }
        let expired = bridge
            .full_since
            .is_some_and(|since| now.instant.duration_since(since) >= HOLD_MAX);
        if bridge.held.is_empty() || !(room || expired || !bridge.down.is_empty()) {
            return;
        }
        for (key, id) in std::mem::take(&mut bridge.held) {
            if self.key(id) == Some(key) {
                self.serve(key, now);
            }
        }
    }

    /// Says the node is gone, after what is queued (at shutdown); an error if it stopped
    /// because the log was trimmed past what it had read.
    pub(super) fn finish_cluster(&mut self) -> Result<(), Error> {
        let Some(bridge) = self.cluster.take() else {
            return Ok(());
        };
        let gone = entry::node_gone(&bridge.node, &bridge.node);
        bridge.link.finish(gone);
        match bridge.log_lost {
            None => Ok(()),
            Some(after) => Err(Error {
                context: "left the cluster",
                source: std::io::Error::other(format!(
                    "its log was trimmed past what this node had read (entries after {after} \
                     are gone); start it again to rebuild from the other nodes"
                )),
            }),
        }
    }

    /// Appends what the core asks to share, or answers at once that it cannot be.
    pub(super) fn publish(&mut self, shared: Shared, now: &Now) {
        let Some(bridge) = self.cluster.as_mut() else {
            return;
        };
        // Redis reachable but slow: past the bound, what may be refused is, as when degraded.
        let degraded = !bridge.down.is_empty() || bridge.link.queued() >= bridge.queue_max;
        bridge.last_seq += 1;
        let entry = entry::encode_shared(&bridge.node, bridge.last_seq, now.stamp.unix, &shared);
        let outgoing = match &shared {
            Shared::Admit { .. } | Shared::Said { .. } if degraded => {
                let why = Unshared::Degraded;
                return self.feed(now, Input::Unshared { shared, why });
            }
            Shared::Admit { conn, name, .. } => {
                bridge.names.insert(*conn, name.clone());
                bridge.claims.insert(conn.0, shared.clone());
                let (tag, name) = (conn.0, name.clone());
                Outgoing::Claim { tag, name, entry }
            }
            Shared::Said { .. } => Outgoing::Append { entry, keep: false },
            Shared::Left { conn } => match bridge.names.remove(conn) {
                Some(name) => Outgoing::Release { name, entry },
                None => Outgoing::Append { entry, keep: true },
            },
            Shared::Host(_) => Outgoing::Append { entry, keep: true },
        };
        if !bridge.link.send(outgoing) {
            log::error!("cluster: the writer thread is gone");
        }
    }

    fn cluster_event(&mut self, event: Event, now: &Now) {
        match event {
            Event::Entries(entries) => {
                if self.cluster.as_ref().is_none_or(|c| c.syncing.is_none()) {
                    return self.apply_entries(entries, now);
                }
                // Snapshots for this node are restored at once, the rest waits for them.
                let (mine, rest) = self.split_snapshots(entries);
                if let Some((_, buffered)) = self.cluster.as_mut().and_then(|c| c.syncing.as_mut())
                {
                    buffered.extend(rest);
                }
                for (from, snapshot) in mine {
                    self.restore(&from, snapshot, now);
                }
            }
            Event::Claimed { tag, taken } => {
                let Some(bridge) = self.cluster.as_mut() else {
                    return;
                };
                let shared = bridge.claims.remove(&tag);
                if let (true, Some(shared)) = (taken, shared) {
                    bridge.names.remove(&ConnId(tag));
                    let why = Unshared::NameTaken;
                    self.feed(now, Input::Unshared { shared, why });
                }
            }
            Event::Failed(items) => {
                for item in items {
                    self.failed(item, now);
                }
            }
            Event::Link { part, up } => self.link_changed(part, up, now),
            Event::LeasesLost(names) => self.cut_off(names.as_deref(), now),
            Event::LogLost { after } => {
                // Entries this node never read are gone: it cannot be a faithful replica any
                // more. Its users are cut off (their Lefts go out), and the node stops with an
                // error, for its service manager to start it again from the others' snapshots.
                log::error!(
                    "cluster: the log was trimmed past what this node had read (entries after \
                     {after} are gone): stopping, to start again from the other nodes' state"
                );
                if let Some(bridge) = self.cluster.as_mut() {
                    bridge.log_lost = Some(after);
                }
                self.cut_off(None, now);
                self.begin_shutdown(now);
            }
        }
    }

    /// Snapshots for this node (while syncing), by the node that sent them, and the other
    /// entries.
    fn split_snapshots(&mut self, entries: Entries) -> (Vec<(String, Snapshot)>, Entries) {
        let Some(bridge) = self.cluster.as_mut() else {
            return (Vec::new(), entries);
        };
        let mut mine = Vec::new();
        let mut rest = Vec::new();
        for (id, value) in entries {
            let mut others = Vec::new();
            for one in entry::entries(&value) {
                match one {
                    Ok(Entry {
                        node,
                        body: Body::Snapshot { for_node, snapshot },
                        ..
                    }) if for_node == bridge.node => {
                        if let Some((waiting, _)) = bridge.syncing.as_mut() {
                            waiting.remove(&node);
                        }
                        mine.push((node, snapshot));
                    }
                    Ok(other) => others.push(other),
                    Err(e) => log::warn!("cluster: entry {id} skipped: {e}"),
                }
            }
            rest.extend(others.into_iter().map(|one| (id.clone(), one.encode())));
        }
        (mine, rest)
    }

    /// Restores `from`'s snapshot, its users as ghosts.
    fn restore(&mut self, from: &str, mut snapshot: Snapshot, now: &Now) {
        let Some(bridge) = self.cluster.as_mut() else {
            return;
        };
        for user in &mut snapshot.users {
            user.conn = bridge.ghosts.ghost(from, user.conn);
        }
        log::info!(
            "cluster: restored {from}'s snapshot ({} users, {} rooms)",
            snapshot.users.len(),
            snapshot.rooms.len()
        );
        self.feed(now, Input::Restore(snapshot));
    }

    /// Applies entries read from the log, in order, writing what they broadcast every
    /// [`FLUSH_AFTER`] broadcasts as a turn of client input does: one read of the log can hold
    /// a thousand batches of lines, and gathering all their deliveries before writing any took
    /// fresh memory each time (page faults were 13% of a node's CPU in a burst, against 1% for
    /// one chatd).
    fn apply_entries(&mut self, entries: Entries, now: &Now) {
        for (id, value) in entries {
            for one in entry::entries(&value) {
                match one {
                    Ok(entry) => self.apply(entry, now),
                    Err(e) => log::warn!("cluster: entry {id} skipped: {e}"),
                }
                if self.fanout.len() >= FLUSH_AFTER {
                    self.flush(now);
                }
            }
        }
    }

    /// Applies one entry of the log.
    fn apply(&mut self, entry: Entry, now: &Now) {
        let Some(bridge) = self.cluster.as_mut() else {
            return;
        };
        let mine = entry.node == bridge.node;
        if !bridge.applied.first_time(&entry.node, entry.seq) {
            log::debug!(
                "cluster: {}'s entry {} came again; dropped",
                entry.node,
                entry.seq
            );
            return;
        }
        // Most entries are of this second: its stamp is at hand.
        let stamp = match entry.stamp == now.stamp.unix {
            true => now.stamp,
            false => Stamp::local(entry.stamp, self.config.utc_offset),
        };
        let at = Now {
            instant: now.instant,
            stamp,
        };
        match entry.body {
            Body::Shared(shared) if mine => self.feed(&at, Input::Applied(shared)),
            Body::Shared(shared) => {
                let Some(shared) = bridge.ghosts.localize(&entry.node, shared) else {
                    return;
                };
                let host = matches!(shared, Shared::Host(_));
                let left = match &shared {
                    Shared::Left { conn } => Some(*conn),
                    _ => None,
                };
                bridge.foreign_host = host;
                bridge.foreign = true;
                self.feed(&at, Input::Applied(shared));
                if let Some(bridge) = self.cluster.as_mut() {
                    bridge.foreign_host = false;
                    bridge.foreign = false;
                    if let Some(ghost) = left {
                        bridge.ghosts.forget(ghost);
                    }
                }
            }
            Body::Sync if !mine => {
                // A new run of that node: it numbers its entries from 1 again.
                bridge.applied.forget(&entry.node);
                let snapshot = self.chat.snapshot(|conn| !is_ghost(conn));
                let Some(bridge) = self.cluster.as_mut() else {
                    return;
                };
                log::info!(
                    "cluster: node {} started; sending it a snapshot",
                    entry.node
                );
                let answer = Entry {
                    node: bridge.node.clone(),
                    seq: 0,
                    stamp: now.stamp.unix,
                    body: Body::Snapshot {
                        for_node: entry.node,
                        snapshot,
                    },
                };
                let entry = answer.encode();
                bridge.link.send(Outgoing::Append { entry, keep: true });
            }
            Body::Sync | Body::Snapshot { .. } => {}
            // Someone changed the cluster's accounts: read them again (off the loop).
            Body::Registry => self.worker.reload(true),
            Body::NodeGone { gone } if gone == bridge.node => {
                log::warn!("cluster: {} said this node is gone", entry.node);
                self.cut_off(None, now);
                // Its users leave here where the log says, as at every other node (which
                // applies a Left for each of its ghosts of this node): else this node would keep
                // them until their own Lefts come, and refuse meanwhile an Admit of one of their
                // names that every other node takes.
                for conn in self.chat.own_users() {
                    self.feed(&at, Input::Applied(Shared::Left { conn }));
                    // The core has forgotten them, so their disconnects publish nothing: the
                    // lease of a name still held here is released now (its Left entry is about
                    // a connection every node has taken out already, and is ignored).
                    if self
                        .cluster
                        .as_ref()
                        .is_some_and(|b| b.names.contains_key(&conn))
                    {
                        self.publish(Shared::Left { conn }, now);
                    }
                }
            }
            Body::NodeGone { gone } => {
                bridge.applied.forget(&gone);
                let ghosts = bridge.ghosts.of_node(&gone);
                log::warn!(
                    "cluster: node {gone} is gone, and its {} users",
                    ghosts.len()
                );
                for conn in ghosts {
                    self.feed(&at, Input::Applied(Shared::Left { conn }));
                    if let Some(bridge) = self.cluster.as_mut() {
                        bridge.ghosts.forget(conn);
                    }
                }
            }
        }
    }

    /// What could not be appended: a login or a line is refused (the user is told), the rest
    /// was kept by the writer.
    fn failed(&mut self, item: Outgoing, now: &Now) {
        let Some(bridge) = self.cluster.as_mut() else {
            return;
        };
        let shared = match item {
            Outgoing::Claim { tag, .. } => {
                bridge.names.remove(&ConnId(tag));
                bridge.claims.remove(&tag)
            }
            Outgoing::Append { entry, .. } => match Entry::decode(&entry) {
                Ok(Entry {
                    body: Body::Shared(shared @ Shared::Said { .. }),
                    ..
                }) => Some(shared),
                _ => None,
            },
            Outgoing::Release { .. } | Outgoing::Finish { .. } => None,
        };
        if let Some(shared) = shared {
            let why = Unshared::Degraded;
            self.feed(now, Input::Unshared { shared, why });
        }
    }

    /// A thread lost Redis or found it again: the users are told when the chat as a whole
    /// changes between degraded and whole.
    fn link_changed(&mut self, part: Part, up: bool, now: &Now) {
        let Some(bridge) = self.cluster.as_mut() else {
            return;
        };
        let was_down = !bridge.down.is_empty();
        if up {
            bridge.down.remove(&part);
        } else {
            // Every thread opens a fresh connection after an outage, and says so.
            bridge
                .down
                .extend([Part::Writer, Part::Reader, Part::Lease]);
        }
        match (was_down, bridge.down.is_empty()) {
            (false, false) => {
                log::warn!("cluster: Redis out of reach: the chat is degraded");
                self.feed(now, Input::Cluster(Health::Degraded));
            }
            (true, true) => {
                log::info!("cluster: Redis reached again: the chat is whole");
                self.feed(now, Input::Cluster(Health::Restored));
            }
            _ => {}
        }
    }

    /// Cuts off the local users holding `names` (all of them for `None`): this node can no
    /// longer be sure their names are theirs alone.
    fn cut_off(&mut self, names: Option<&[String]>, now: &Now) {
        let Some(bridge) = self.cluster.as_mut() else {
            return;
        };
        let conns: Vec<ConnId> = bridge
            .names
            .iter()
            .filter(|(_, name)| {
                names.is_none_or(|names| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            })
            .map(|(&conn, _)| conn)
            .collect();
        for conn in conns {
            self.deliver(
                crate::core::Recipients::One(conn),
                ServerMsg::Notice(Notice::NodeCut),
                now,
            );
            if let Some(key) = self.key(conn) {
                let deadline = now.instant + CLOSE_LINGER;
                self.close(
                    key,
                    Closing::AfterFlush { deadline },
                    "cut off: this node lost its place in the cluster",
                );
            }
        }
    }
}

impl Bridge {
    fn new(link: Link, config: &ClusterConfig, waiting: HashSet<String>) -> Bridge {
        Bridge {
            link,
            node: config.node.clone(),
            ghosts: Ghosts::default(),
            names: HashMap::new(),
            claims: HashMap::new(),
            down: HashSet::new(),
            foreign_host: false,
            foreign: false,
            syncing: Some((waiting, Vec::new())),
            log_lost: None,
            queue_max: config.queue_max,
            held: Vec::new(),
            full_since: None,
            last_seq: 0,
            applied: Applied::default(),
        }
    }
}

/// The ghost ids of the other nodes' connections.
#[derive(Debug)]
pub struct Ghosts {
    /// Ghost ids by node, then by that node's connection id (looked up for every entry of
    /// another node, without making a key).
    ghosts: HashMap<String, IdMap<ConnId, ConnId>>,
    /// The node and remote id of each ghost.
    remotes: IdMap<ConnId, (String, ConnId)>,
    next_ghost: u64,
}

impl Default for Ghosts {
    fn default() -> Ghosts {
        Ghosts {
            ghosts: HashMap::new(),
            remotes: IdMap::default(),
            next_ghost: 1,
        }
    }
}

impl Ghosts {
    /// The ghost id of `node`'s connection `remote`, made on first use.
    fn ghost(&mut self, node: &str, remote: ConnId) -> ConnId {
        if let Some(&ghost) = self.known(node, remote) {
            return ghost;
        }
        let ghost = ConnId(GHOST | self.next_ghost);
        self.next_ghost += 1;
        self.ghosts
            .entry(node.to_owned())
            .or_default()
            .insert(remote, ghost);
        self.remotes.insert(ghost, (node.to_owned(), remote));
        ghost
    }

    /// The ghost of `node`'s connection `remote`, if it was admitted here.
    fn known(&self, node: &str, remote: ConnId) -> Option<&ConnId> {
        self.ghosts.get(node)?.get(&remote)
    }

    /// `shared` from `node` with its ids made this node's: an Admit gives its connection a
    /// ghost; an entry about a connection never admitted here is dropped.
    fn localize(&mut self, node: &str, shared: Shared) -> Option<Shared> {
        let known = |ghosts: &Ghosts, conn: ConnId| ghosts.known(node, conn).copied();
        Some(match shared {
            Shared::Admit {
                conn,
                name,
                role,
                registered,
            } => Shared::Admit {
                conn: self.ghost(node, conn),
                name,
                role,
                registered,
            },
            Shared::Said { conn, msg } => Shared::Said {
                conn: known(self, conn)?,
                msg,
            },
            Shared::Left { conn } => Shared::Left {
                conn: known(self, conn)?,
            },
            Shared::Host(command) => Shared::Host(command),
        })
    }

    /// Forgets a ghost that left.
    fn forget(&mut self, ghost: ConnId) {
        if let Some((node, remote)) = self.remotes.remove(&ghost) {
            if let Some(of_node) = self.ghosts.get_mut(&node) {
                of_node.remove(&remote);
                if of_node.is_empty() {
                    self.ghosts.remove(&node);
                }
            }
        }
    }

    /// Every ghost of `node`.
    fn of_node(&self, node: &str) -> Vec<ConnId> {
        let mut ghosts: Vec<ConnId> = self
            .ghosts
            .get(node)
            .map(|of_node| of_node.values().copied().collect())
            .unwrap_or_default();
        ghosts.sort_unstable();
        ghosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::conn::conn_id;

    #[test]
    fn a_remote_connection_gets_one_ghost_from_its_admit_and_loses_it_when_it_left() {
        let mut ghosts = Ghosts::default();
        let said = |conn| Shared::Left { conn };
        // Nothing about a connection never admitted here gets through.
        assert_eq!(ghosts.localize("a", said(ConnId(5))), None);
        let admit = |conn| Shared::Admit {
            conn,
            name: "bob".into(),
            role: crate::accounts::model::Role::User,
            registered: false,
        };
        let Some(Shared::Admit { conn: ghost, .. }) = ghosts.localize("a", admit(ConnId(5))) else {
            panic!("an admit is always let through");
        };
        assert!(is_ghost(ghost));
        assert_eq!(ghosts.localize("a", said(ConnId(5))), Some(said(ghost)));
        // The same id on another node is another user.
        let Some(Shared::Admit { conn: other, .. }) = ghosts.localize("b", admit(ConnId(5))) else {
            panic!("an admit is always let through");
        };
        assert_ne!(other, ghost);
        assert_eq!(ghosts.of_node("a"), vec![ghost]);
        ghosts.forget(ghost);
        assert_eq!(ghosts.localize("a", said(ConnId(5))), None);
        assert_eq!(ghosts.of_node("b"), vec![other]);
    }

    #[test]
    fn an_entry_of_a_number_applied_already_is_dropped_until_its_node_starts_again() {
        let mut applied = Applied::default();
        assert!(applied.first_time("a", 1));
        assert!(applied.first_time("a", 2));
        assert!(!applied.first_time("a", 2), "a copy");
        assert!(!applied.first_time("a", 1), "an earlier one");
        // Gaps are fine (a refused claim appends nothing); another node numbers its own.
        assert!(applied.first_time("a", 5));
        assert!(applied.first_time("b", 1));
        // Unnumbered entries always apply.
        assert!(applied.first_time("a", 0) && applied.first_time("a", 0));
        applied.forget("a");
        assert!(applied.first_time("a", 1), "a new run of a");
        assert!(!applied.first_time("b", 1));
    }

    #[test]
    fn a_ghost_id_never_equals_a_connection_id_and_is_told_apart_by_one_bit() {
        for (serial, key) in [(1, 0), (2, 5), (u64::from(u32::MAX >> 1), usize::MAX >> 33)] {
            assert!(!is_ghost(conn_id(serial, key)));
        }
        assert!(is_ghost(ConnId(GHOST | 1)));
        assert!(is_ghost(ConnId(GHOST | u64::from(u32::MAX))));
    }
}
