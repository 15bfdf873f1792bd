//! The handle the event loop keeps on the cluster's helper threads, and what goes between them.
//!
//! [`Link::start`] connects to Redis once on the loop's thread, before the loop runs (a Redis
//! that cannot be reached then stops the start with a clear error), registers the node, appends
//! its `Sync` entry and starts three threads, each with a connection of its own: the
//! [`super::writer`], the [`super::reader`] and the [`super::lease`] keeper. They send
//! [`Event`]s back over one channel and wake the loop through its waker; the loop never waits on
//! them. Each thread reconnects by itself with [`super::backoff`], and says when its connection
//! is lost and found again ([`Event::Link`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::Waker;

use super::keys;
use super::settings::ClusterConfig;

/// How long connecting to Redis may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a reply may take on the writer's and the keeper's connections before the
/// connection is taken for lost.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Something for the writer to append to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Append `entry`; if Redis cannot be reached and `keep` is set, it is kept and appended once
    /// Redis is back (a user's leaving, a console command, a node's entries), else it comes back
    /// as [`Event::Failed`].
    Append {
        /// The entry, encoded.
        entry: Vec<u8>,
        /// Whether to keep it across an outage.
        keep: bool,
    },
    /// Claim the lease of `name` for this node and, only if that succeeded, append `entry`; the
    /// answer comes back as [`Event::Claimed`] with `tag`.
    Claim {
        /// The loop's tag for the answer (the claiming connection).
        tag: u64,
        /// The user name.
        name: String,
        /// The entry, encoded (an Admit).
        entry: Vec<u8>,
    },
    /// Free the lease of `name` if this node holds it, and append `entry` (a Left); kept across
    /// an outage.
    Release {
        /// The user name.
        name: String,
        /// The entry, encoded.
        entry: Vec<u8>,
    },
    /// The node stops: append what is queued, then say the node is gone (its heartbeat deleted,
    /// its own NodeGone entry appended), then end.
    Finish {
        /// The NodeGone entry, encoded.
        entry: Vec<u8>,
    },
}

/// Which of the threads an [`Event::Link`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The writer.
    Writer,
    /// The reader.
    Reader,
    /// The lease keeper.
    Lease,
}

/// What the threads tell the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Entries read from the log, in its order: each stream id and its value (one encoded
    /// entry, or a batch's, one after the other).
    Entries(Vec<(String, Vec<u8>)>),
    /// A claim was answered: `taken` if another node holds the name.
    Claimed {
        /// The tag the claim was sent with.
        tag: u64,
        /// Whether the name was taken (nothing was appended then).
        taken: bool,
    },
    /// Things that could not be appended (Redis unreachable), in the order they were sent.
    Failed(Vec<Outgoing>),
    /// A thread lost its connection to Redis (`up` false) or has it again (`up` true): after
    /// an outage seen by any thread, every thread says it is up again once it has a fresh
    /// connection.
    Link {
        /// Which thread.
        part: Part,
        /// Whether it is connected.
        up: bool,
    },
    /// The node's leases could not be renewed for longer than a lease (or another node holds
    /// some of them, listed by name): its users must be cut off. `None` for all of them.
    LeasesLost(Option<Vec<String>>),
    /// The log was trimmed past what the reader had read: entries after `after` are gone, so
    /// this node can no longer hold the chat the others hold. The reader has stopped.
    LogLost {
        /// The last id read.
        after: String,
    },
}

/// The lease keys of the node's users, shared by the writer (which claims and releases them) and
/// the keeper (which renews them).
pub type Held = Arc<Mutex<HashSet<String>>>;

/// The loop's handle: what to append goes in, events come out.
#[derive(Debug)]
pub struct Link {
    out: Sender<Outgoing>,
    /// How many items were handed to the writer and are not appended (or failed) yet.
    queued: Arc<AtomicUsize>,
    events: Receiver<Event>,
    threads: Vec<JoinHandle<()>>,
    /// Stops the lease keeper (sent or dropped), before the node's last entry.
    stop_keeper: Sender<()>,
    /// The stream id of this node's `Sync` entry.
    pub sync_id: String,
    /// The other nodes alive at start (their heartbeats found), which are to answer the Sync.
    pub peers: Vec<String>,
    /// The cluster's run, for line ids: the one in Redis, or the one this node offered if none
    /// was there.
    pub epoch: u64,
}

/// The channel to the loop: an event sent, the loop woken. It also counts the outages: when
/// one thread loses Redis, the others' connections may be just as dead (a restarted Redis)
/// without their knowing yet, so each of them opens a fresh one before its next use and says it
/// is up again; the loop takes the cluster for whole only once all three have.
#[derive(Clone, Debug)]
pub struct ToLoop {
    events: Sender<Event>,
    waker: Arc<Waker>,
    outages: Arc<AtomicU64>,
}

impl ToLoop {
    /// Sends `event` and wakes the loop; false once the loop is gone.
    pub fn send(&self, event: Event) -> bool {
        if self.events.send(event).is_err() {
            return false;
        }
        let _ = self.waker.wake();
        true
    }

    /// `part` lost Redis: the loop is told (before any thread can say it is up again after
    /// this outage), then the outage is counted.
    pub fn lost(&self, part: Part) -> bool {
        let sent = self.send(Event::Link { part, up: false });
        self.outages.fetch_add(1, Ordering::SeqCst);
        sent
    }

    /// How many outages there were.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::SeqCst)
    }
}

/// A failure to start the link.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Opens a connection to the cluster's Redis with the timeouts the threads use.
pub fn connect(
    config: &ClusterConfig,
    reply_timeout: Duration,
) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(config.url.as_str())?;
    let con = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    con.set_read_timeout(Some(reply_timeout))?;
    con.set_write_timeout(Some(reply_timeout))?;
    Ok(con)
}

impl Link {
    /// Connects, registers the node (its heartbeat and its place in the set of nodes), takes the
    /// cluster's run for line ids (`offer` if Redis has none: `SET NX`, then `GET`), appends
    /// `sync` (the node's Sync entry) and starts the threads, which read the log from just after
    /// it; `waker` wakes the loop for each event.
    pub fn start(
        config: &ClusterConfig,
        sync: Vec<u8>,
        offer: u64,
        waker: Arc<Waker>,
    ) -> Result<Link, StartError> {
        let fail = |what: &str, e: redis::RedisError| {
            StartError(format!("--cluster {}: {what}: {e}", config.url))
        };
        let mut con = connect(config, REPLY_TIMEOUT).map_err(|e| fail("cannot reach Redis", e))?;
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::NODES)
            .query(&mut con)
            .map_err(|e| fail("cannot read the set of nodes", e))?;
        let mut peers = Vec::new();
        for node in members.into_iter().filter(|n| *n != config.node) {
            let alive: bool = redis::cmd("EXISTS")
                .arg(keys::node_key(&node))
                .query(&mut con)
                .map_err(|e| fail("cannot read a heartbeat", e))?;
            if alive {
                peers.push(node);
            }
        }
        // Two nodes of one name would take each other's entries for their own.
        let lease = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX);
        let claimed: Option<String> = redis::cmd("SET")
            .arg(keys::node_key(&config.node))
            .arg(std::process::id())
            .arg("NX")
            .arg("PX")
            .arg(lease)
            .query(&mut con)
            .map_err(|e| fail("cannot register the node", e))?;
        if claimed.is_none() {
            return Err(StartError(format!(
                "--node-name {}: a node of that name is running on this cluster (its heartbeat is \
                 in Redis); give each node a name of its own, or wait a lease ({} ms) if it was \
                 this node that stopped",
                config.node,
                config.lease.as_millis()
            )));
        }
        // Nodes that start together, none restored from another's snapshot, number lines alike.
        let epoch: u64 = redis::pipe()
            .cmd("SET")
            .arg(keys::EPOCH)
            .arg(offer)
            .arg("NX")
            .arg("PX")
            .arg(lease)
            .ignore()
            .cmd("GET")
            .arg(keys::EPOCH)
            .query::<(Option<u64>,)>(&mut con)
            .map_err(|e| fail("cannot read the cluster's epoch", e))?
            .0
            .unwrap_or(offer);
        super::lease::beat(&mut con, config, epoch)
            .map_err(|e| fail("cannot register the node", e))?;
        let sync_id: String = redis::cmd("XADD")
            .arg(keys::LOG)
            .arg("MAXLEN")
            .arg("~")
            .arg(config.log_max)
            .arg("*")
            .arg(keys::FIELD)
            .arg(sync)
            .query(&mut con)
            .map_err(|e| fail("cannot append to the log", e))?;
        let (out, out_queue) = mpsc::channel();
        let (events_in, events) = mpsc::channel();
        let to_loop = ToLoop {
            events: events_in,
            waker,
            outages: Arc::default(),
        };
        let held: Held = Arc::default();
        let queued: Arc<AtomicUsize> = Arc::default();
        let (stop_keeper, keeper_stops) = mpsc::channel();
        let spawn_error =
            |e: std::io::Error| StartError(format!("cannot start a cluster thread: {e}"));
        let threads = vec![
            super::writer::spawn(
                config.clone(),
                sync_id.clone(),
                con,
                out_queue,
                Arc::clone(&queued),
                to_loop.clone(),
                Arc::clone(&held),
            )
            .map_err(spawn_error)?,
            super::reader::spawn(config.clone(), sync_id.clone(), to_loop.clone())
                .map_err(spawn_error)?,
            super::lease::spawn(config.clone(), held, to_loop, epoch, keeper_stops)
                .map_err(spawn_error)?,
        ];
        Ok(Link {
            out,
            queued,
            events,
            threads,
            stop_keeper,
            sync_id,
            peers,
            epoch,
        })
    }

    /// Hands `outgoing` to the writer; false if the writer is gone.
    pub fn send(&self, outgoing: Outgoing) -> bool {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.out.send(outgoing).is_ok()
    }

    /// How many items handed to the writer are not appended (or sent back as failed) yet: they
    /// pile up while Redis is slow to answer.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The events ready now.
    pub fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(event) => events.push(event),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return events,
            }
        }
    }

    /// Waits up to `timeout` for the next event (only before the loop runs: the start's sync).
    pub fn wait(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Says the node is gone (after what is queued) and waits for the writer, at most about
    /// [`REPLY_TIMEOUT`]; the reader ends with the process. The lease keeper is stopped first:
    /// a heartbeat renewed between the last entry's deleting the heartbeat and its script would
    /// keep the node in the set of nodes, alive to the others, for a lease after it ended.
    pub fn finish(mut self, entry: Vec<u8>) {
        let _ = self.stop_keeper.send(());
        if let Some(keeper) = self.threads.pop() {
            let _ = keeper.join();
        }
        if self.send(Outgoing::Finish { entry }) {
            if let Some(writer) = self.threads.drain(..1).next() {
                let _ = writer.join();
            }
        }
    }
}
