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
        result: Result<Registry, StoreError>,
    },
    /// The persistent rooms were written to the rooms file (or not).
    RoomsSaved {
        /// How many rooms the file holds now, or why it could not be written.
        result: Result<usize, RoomsError>,
    },
}

/// Why a change was not written.
#[derive(Debug)]
pub enum WriteError {
    /// The files could not be read or written.
    Store(StoreError),
    /// The name was registered on disk meanwhile (by `chatd user add`); the disk wins, and this
    /// is what the disk holds.
    Taken(Registry),
}

impl From<StoreError> for WriteError {
    fn from(error: StoreError) -> WriteError {
        WriteError::Store(error)
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
    /// Starts the thread on the account files of `store` and the rooms file of `rooms`, which
    /// held `saved` when read at start; `waker` wakes the loop when results are ready.
    pub fn start(
        store: Store,
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
    store: Store,
    mut rooms_file: RoomsFile,
    jobs: Receiver<Job>,
    done: Sender<Finished>,
    waker: Arc<Waker>,
) {
    let mut seen: Option<FilesStamp> = Some(store.stamp());
    for job in jobs {
        let result = match job {
            Job::Password { conn, job } => Finished::Password {
                conn,
                outcome: run_password_job(job),
            },
            Job::Store { change, reply } => {
                // A new account must not replace one added on disk since the core last read it.
                let written = store.update_stamped(|on_disk| match &change {
                    Change::PutAccount(account) if on_disk.account(&account.name).is_some() => {
                        Err(WriteError::Taken(on_disk.clone()))
                    }
                    _ => Ok(vec![change.clone()]),
                });
                // Our own write is not a change on disk to read back; one made by another
                // process before it (the stamp before differs from the one seen) still is.
                seen = match &written {
                    Ok(w) if seen == Some(w.before) => Some(w.after),
                    _ => None,
                };
                Finished::Stored {
                    result: written.map(|_| ()),
                    reply,
                }
            }
            Job::Reload { force } => {
                let stamp = store.stamp();
                let changed = seen.as_ref() != Some(&stamp);
                if !force && !changed {
                    continue;
                }
                seen = Some(stamp);
                Finished::Reloaded {
                    changed,
                    result: store.load(),
                }
            }
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
