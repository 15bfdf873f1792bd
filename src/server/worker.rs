//! The worker thread: password hashing, the account files and the rooms file, so the event loop
//! never waits on them.
//!
//! Jobs go in over a channel; results come back over another, and a [`mio::Waker`] tells the loop
//! to collect them. One thread, first in first out: a change written before a reload is read back
//! by it.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::Waker;

use crate::accounts::hash::{hash_password, verify_password};
use crate::accounts::model::{Change, Registry};
use crate::accounts::store::{Stamp as FilesStamp, Store, StoreError};
use crate::cluster::registry::{ClusterRegistry, RegistryError};
use crate::core::{ConnId, PasswordJob, PasswordOutcome, Recipients};
use crate::datadir::StoreError as RoomsError;
use crate::proto::ServerMsg;
use crate::rooms::model::{RoomList, SavedRoom};
use crate::rooms::RoomStore;

/// Most password jobs waiting at once; past it a job fails at once ("busy, try again").
pub const MAX_QUEUED_PASSWORDS: usize = 32;

/// Work for the thread.
#[derive(Debug)]
enum Job {
    Password {
        conn: ConnId,
        job: PasswordJob,
    },
    Store {
        change: Change,
        reply: Option<Reply>,
    },
    Reload {
        force: bool,
    },
    SaveRooms {
        rooms: Vec<SavedRoom>,
    },
}

/// A confirmation to send once a change is on disk.
pub type Reply = (Recipients, ServerMsg);

/// What came of a job.
#[derive(Debug)]
pub enum Finished {
    /// A password job for `conn` is done.
    Password {
        /// Whose.
        conn: ConnId,
        /// How it went.
        outcome: PasswordOutcome,
    },
    /// A change was written (or not).
    Stored {
        /// Whether it was.
        result: Result<(), WriteError>,
        /// The confirmation to send if it was (its recipients are told of a failure otherwise).
        reply: Option<Reply>,
    },
    /// The files were read again (or could not be): because they changed on disk, or, if
    /// `changed` is false, because a reload was forced (SIGHUP).
    Reloaded {
        /// Whether they changed since last seen.
        changed: bool,
        /// What they hold now.
        result: Result<Registry, WriteError>,
    },
    /// The persistent rooms were written to the rooms file (or not).
    RoomsSaved {
        /// How many rooms the file holds now, or why it could not be written.
        result: Result<usize, RoomsError>,
    },
}

/// Where the accounts and bans are kept: the data directory's files, or (in a cluster) Redis.
pub enum Accounts {
    /// The `accounts` and `bans` files.
    Files(Store),
    /// The cluster's Redis ([`ClusterRegistry`]).
    Cluster(ClusterRegistry),
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accounts::Files(_) => "Accounts::Files",
            Accounts::Cluster(_) => "Accounts::Cluster",
        })
    }
}

/// Why a change was not written, or the accounts not read.
#[derive(Debug)]
pub enum WriteError {
    /// The files could not be read or written.
    Store(StoreError),
    /// The cluster's Redis could not be read or written.
    Cluster(RegistryError),
    /// The name was registered on disk meanwhile (by `chatd user add`); the disk wins, and this
    /// is what the disk holds.
    Taken(Registry),
}

impl From<StoreError> for WriteError {
    fn from(error: StoreError) -> WriteError {
        WriteError::Store(error)
    }
}

impl From<RegistryError> for WriteError {
    fn from(error: RegistryError) -> WriteError {
        WriteError::Cluster(error)
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Store(e) => e.fmt(f),
            WriteError::Cluster(e) => e.fmt(f),
            WriteError::Taken(_) => f.write_str("the name was registered meanwhile"),
        }
    }
}

/// The handle the event loop keeps.
#[derive(Debug)]
pub struct Worker {
    jobs: Option<Sender<Job>>,
    finished: Receiver<Finished>,
    thread: Option<JoinHandle<()>>,
    queued_passwords: usize,
    queued_stores: usize,
}

impl Worker {
    /// Starts the thread on the accounts in `store` and the rooms file of `rooms`, which
    /// held `saved` when read at start; `waker` wakes the loop when results are ready.
    pub fn start(
        store: Accounts,
        rooms: RoomStore,
        saved: Vec<SavedRoom>,
        waker: Arc<Waker>,
    ) -> std::io::Result<Worker> {
        let (jobs, job_queue) = mpsc::channel();
        let (done, finished) = mpsc::channel();
        let rooms = RoomsFile { rooms, saved };
        let thread = thread::Builder::new()
            .name("chatd-worker".into())
            .spawn(move || work(store, rooms, job_queue, done, waker))?;
        Ok(Worker {
            jobs: Some(jobs),
            finished,
            thread: Some(thread),
            queued_passwords: 0,
            queued_stores: 0,
        })
    }

    /// Queues a password job; `false` when too many are waiting already (or the thread is gone).
    pub fn password(&mut self, conn: ConnId, job: PasswordJob) -> bool {
        if self.queued_passwords >= MAX_QUEUED_PASSWORDS {
            return false;
        }
        let sent = self.send(Job::Password { conn, job });
        self.queued_passwords += usize::from(sent);
        sent
    }

    /// Queues a change to write to the account files, and the confirmation to send after.
    pub fn store(&mut self, change: Change, reply: Option<Reply>) {
        let sent = self.send(Job::Store { change, reply });
        self.queued_stores += usize::from(sent);
    }

    /// Asks for the files to be read again if they changed on disk (or in any case, if `force`).
    pub fn reload(&mut self, force: bool) {
        self.send(Job::Reload { force });
    }

    /// Queues the persistent rooms, as the core now has them, to write to the rooms file.
    pub fn save_rooms(&mut self, rooms: Vec<SavedRoom>) {
        self.send(Job::SaveRooms { rooms });
    }

    /// How many password jobs are queued or being done.
    pub fn passwords_queued(&self) -> usize {
        self.queued_passwords
    }

    /// Whether a change is still waiting to be written (a reload read now may miss it).
    pub fn stores_pending(&self) -> bool {
        self.queued_stores > 0
    }

    /// Takes every result that is ready.
    pub fn finished(&mut self) -> Vec<Finished> {
        let mut results = Vec::new();
        loop {
            match self.finished.try_recv() {
                Ok(result) => {
                    match &result {
                        Finished::Password { .. } => self.queued_passwords -= 1,
                        Finished::Stored { .. } => self.queued_stores -= 1,
                        Finished::Reloaded { .. } | Finished::RoomsSaved { .. } => {}
                    }
                    results.push(result);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return results,
            }
        }
    }

    /// Lets the thread finish what is queued (changes must reach the disk) and waits for it.
    pub fn finish(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the worker thread panicked");
            }
        }
    }

    fn send(&mut self, job: Job) -> bool {
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            log::error!("the worker thread is gone; a job was dropped");
        }
        sent
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The rooms file, and what the server last had in it.
struct RoomsFile {
    rooms: RoomStore,
    /// The persistent rooms as last read or written by the server.
    saved: Vec<SavedRoom>,
}

impl RoomsFile {
    /// Writes what changed between the rooms last saved and `rooms` into the rooms file as it
    /// is on disk now, so that a room added or removed there meanwhile (by `chatd room`) stays
    /// added or removed. Only a write that worked moves the base on: a failed one is tried
    /// again with the next change.
    fn save(&mut self, rooms: Vec<SavedRoom>) -> Option<Result<usize, RoomsError>> {
        let changes = RoomList::changes(&self.saved, &rooms);
        if changes.is_empty() {
            return None;
        }
        let written = self.rooms.apply(&changes).map(|list| list.len());
        if written.is_ok() {
            self.saved = rooms;
        }
        Some(written)
    }
}

fn work(
    mut accounts: Accounts,
    mut rooms_file: RoomsFile,
    jobs: Receiver<Job>,
    done: Sender<Finished>,
    waker: Arc<Waker>,
) {
    let mut seen: Option<FilesStamp> = match &accounts {
        Accounts::Files(store) => Some(store.stamp()),
        Accounts::Cluster(_) => None,
    };
    for job in jobs {
        let result = match job {
            Job::Password { conn, job } => Finished::Password {
                conn,
                outcome: run_password_job(job),
            },
            Job::Store { change, reply } => {
                // A new account must not replace one added on disk since the core last read it.
                let decide = |on_disk: &Registry| match &change {
                    Change::PutAccount(account) if on_disk.account(&account.name).is_some() => {
                        Err(WriteError::Taken(on_disk.clone()))
                    }
                    _ => Ok(vec![change.clone()]),
                };
                let result = match &mut accounts {
                    Accounts::Files(store) => {
                        let written = store.update_stamped(decide);
                        // Our own write is not a change on disk to read back; one made by
                        // another process before it (the stamp before differs from the one
                        // seen) still is.
                        seen = match &written {
                            Ok(w) if seen == Some(w.before) => Some(w.after),
                            _ => None,
                        };
                        written.map(|_| ())
                    }
                    // The write appends a registry entry to the log: every node reads again.
                    Accounts::Cluster(registry) => registry.update(decide).map(|_| ()),
                };
                Finished::Stored { result, reply }
            }
            Job::Reload { force } => match &mut accounts {
                Accounts::Files(store) => {
                    let stamp = store.stamp();
                    let changed = seen.as_ref() != Some(&stamp);
                    if !force && !changed {
                        continue;
                    }
                    seen = Some(stamp);
                    Finished::Reloaded {
                        changed,
                        result: store.load().map_err(WriteError::from),
                    }
                }
                // Nothing to watch: a registry entry in the log asks for a forced reload.
                Accounts::Cluster(_) if !force => continue,
                Accounts::Cluster(registry) => Finished::Reloaded {
                    changed: true,
                    result: registry
                        .load()
                        .map(|versioned| versioned.registry)
                        .map_err(WriteError::from),
                },
            },
            Job::SaveRooms { rooms } => match rooms_file.save(rooms) {
                Some(result) => Finished::RoomsSaved { result },
                None => continue,
            },
        };
        if done.send(result).is_err() {
            return;
        }
        if let Err(e) = waker.wake() {
            log::error!("cannot wake the event loop: {e}");
        }
    }
}

fn run_password_job(job: PasswordJob) -> PasswordOutcome {
    let hashed = |password: &str| match hash_password(password) {
        Ok(phc) => PasswordOutcome::Hashed(phc),
        Err(e) => {
            log::error!("password hashing failed: {e}");
            PasswordOutcome::Failed
        }
    };
    match job {
        PasswordJob::Verify { password, phc } if verify_password(&password, &phc) => {
            PasswordOutcome::Verified
        }
        PasswordJob::Verify { .. } => PasswordOutcome::Wrong,
        PasswordJob::Hash { password } => hashed(&password),
        PasswordJob::Rehash { old, phc, new } if verify_password(&old, &phc) => hashed(&new),
        PasswordJob::Rehash { .. } => PasswordOutcome::Wrong,
    }
}
