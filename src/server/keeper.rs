//! The history thread: writes every kept line and direct message to the history store, and
//! answers the core's look-ups (`/history` pages, mailboxes), so that the event loop never
//! waits on the disk.
//!
//! The loop gathers the core's [`Job`]s during a turn and sends them as one batch at its end (one
//! channel message per turn, however many lines a burst says). The thread writes in
//! transactions of many lines: at the latest [`COMMIT_AFTER`] after the first line not yet
//! written, or as soon as [`COMMIT_LINES`] wait. So `kill -9` loses at most the lines of the
//! last half second or so, and the store itself (SQLite, write-ahead log) is never torn. A
//! look-up first writes what waits, so it sees every line said before it was asked. While lines
//! wait for their commit, the thread naps ([`POLL`]) instead of waiting on the channel, so the
//! loop's batches meanwhile wake no thread (no system call per turn of a burst); idle, it waits
//! on the channel and the first batch wakes it. Answers
//! come back over a channel and the loop's [`Waker`] (shared with the worker: mio has one waker
//! per poll) tells the loop to collect them. Every hour the thread prunes what is older than
//! `--history-days`.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::Waker;

use crate::config::Config;
use crate::core::rooms::RESUME_LINES;
use crate::core::{Chat, Now};
use crate::history::{Answer, HistoryStore, Job, KeptLine};

/// The longest a kept line waits before its transaction is committed.
pub const COMMIT_AFTER: Duration = Duration::from_millis(500);
/// How many lines waiting make a transaction be committed at once.
pub const COMMIT_LINES: usize = 2000;
/// How long the thread naps while lines wait for their commit, before it takes what came
/// meanwhile (so a look-up is answered within about this).
pub const POLL: Duration = Duration::from_millis(50);
/// How often the thread prunes lines older than `--history-days`.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The handle the event loop keeps.
#[derive(Debug)]
pub struct Keeper {
    jobs: Option<Sender<Vec<Job>>>,
    answers: Receiver<Answer>,
    /// This turn's jobs, sent at its end.
    queued: Vec<Job>,
    thread: Option<JoinHandle<()>>,
}

/// The Unix time now, in seconds.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Opens the history store of `config` (none with `--no-history-store`) and prunes it, before
/// the loop runs.
pub fn open(config: &Config) -> std::io::Result<Option<HistoryStore>> {
    if !config.history_store {
        log::info!("history kept in memory only (--no-history-store)");
        return Ok(None);
    }
    let path = config.data_dir.join(&config.history_file);
    let mut store = HistoryStore::open_file(&path).map_err(std::io::Error::other)?;
    // Pruned first, so that nothing too old comes back at start.
    prune(&mut store, config.history_days);
    Ok(Some(store))
}

/// Gives every room of `chat` its last lines from `store` (as many as it keeps in memory with
/// `--history` `history`), before the loop runs.
pub fn restore(chat: &mut Chat, store: &HistoryStore, now: &Now, history: usize) {
    let keep = history.max(RESUME_LINES);
    let mut restored = 0;
    for room in chat.room_names() {
        match store.recent(&room.to_ascii_lowercase(), keep) {
            Ok((lines, last)) => {
                restored += lines.len();
                chat.restore_history(now, &room, lines, last);
            }
            Err(e) => log::error!("history of {room} not restored: {e}"),
        }
    }
    log::info!(
        "history kept in {} ({restored} lines restored)",
        store.path().display()
    );
}

/// Deletes from `store` what is older than `days` days (none if `days` is 0), logging how much.
pub fn prune(store: &mut HistoryStore, days: u32) {
    if days == 0 {
        return;
    }
    let cutoff = unix_now().saturating_sub(i64::from(days) * 86_400);
    match store.prune(cutoff) {
        Ok(0) => {}
        Ok(gone) => log::info!("history: pruned {gone} lines and messages older than {days} days"),
        Err(e) => log::error!("history: could not prune: {e}"),
    }
}

impl Keeper {
    /// Starts the thread on `store`, pruning every hour what is older than `days` (0: never);
    /// `waker` wakes the loop when answers are ready.
    pub fn start(store: HistoryStore, days: u32, waker: Arc<Waker>) -> std::io::Result<Keeper> {
        let (jobs, job_queue) = mpsc::channel();
        let (done, answers) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("chatd-history".into())
            .spawn(move || work(store, days, job_queue, done, waker))?;
        Ok(Keeper {
            jobs: Some(jobs),
            answers,
            queued: Vec::new(),
            thread: Some(thread),
        })
    }

    /// Queues a job for the end of the turn.
    pub fn push(&mut self, job: Job) {
        self.queued.push(job);
    }

    /// Sends the turn's jobs to the thread, as one batch.
    pub fn send(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.queued);
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(batch).is_ok());
        if !sent {
            log::error!("history: the thread is gone; lines were not kept");
        }
    }

    /// Takes every answer that is ready.
    pub fn answers(&mut self) -> Vec<Answer> {
        let mut answers = Vec::new();
        loop {
            match self.answers.try_recv() {
                Ok(answer) => answers.push(answer),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return answers,
            }
        }
    }

    /// Sends what is queued, lets the thread write it all, and waits for it.
    pub fn finish(&mut self) {
        self.send();
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the history thread panicked");
            }
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether `job` only writes (and so may wait for the next commit).
fn is_write(job: &Job) -> bool {
    matches!(
        job,
        Job::Keep(_) | Job::KeepDm(_) | Job::ForgetRoom { .. } | Job::Delivered { .. }
    )
}

/// Writes the waiting jobs in one transaction; on failure they are dropped (and logged), so
/// that one bad moment of the disk does not hold every later line back.
fn commit(store: &mut HistoryStore, waiting: &mut Vec<Job>) {
    if waiting.is_empty() {
        return;
    }
    let count = waiting.len();
    let written = store.batch(|batch| {
        // Room lines are written a run at a time (in chunks); a forgotten room in between ends
        // the run, so that its lines before are forgotten and those after kept.
        let mut run: Vec<KeptLine> = Vec::new();
        for job in waiting.drain(..) {
            match job {
                Job::Keep(line) => run.push(line),
                Job::ForgetRoom { room } => {
                    batch.keep(&run)?;
                    run.clear();
                    batch.forget_room(&room)?;
                }
                Job::KeepDm(dm) => batch.keep_dm(&dm, false)?,
                Job::Delivered { name, up_to } => batch.delivered(&name, up_to)?,
                Job::Mail { .. } | Job::Page { .. } | Job::Mailbox { .. } => {}
            }
        }
        batch.keep(&run)
    });
    if let Err(e) = written {
        log::error!("history: {count} lines and changes not kept: {e}");
    }
    waiting.clear();
}

/// Answers a look-up (or a mail, which is written at once: its sender is told).
fn answer(store: &mut HistoryStore, job: Job) -> Option<Answer> {
    Some(match job {
        Job::Page {
            conn,
            room,
            key,
            span,
            limit,
            ids,
        } => {
            let (lines, more) = store.page(&key, span, limit).unwrap_or_else(|e| {
                log::error!("history: could not read a page: {e}");
                (Vec::new(), false)
            });
            Answer::Page {
                conn,
                room,
                lines,
                more,
                ids,
            }
        }
        Job::Mailbox { conn, name } => {
            let mail = store.mailbox(&name).unwrap_or_else(|e| {
                log::error!("history: could not read {name}'s mailbox: {e}");
                Vec::new()
            });
            Answer::Mailbox { conn, name, mail }
        }
        Job::Mail { conn, dm } => {
            let kept = store.batch(|batch| batch.mail(&dm)).unwrap_or_else(|e| {
                log::error!("history: could not keep a message for {}: {e}", dm.to);
                false
            });
            Answer::Mailed {
                conn,
                to: dm.to,
                kept,
            }
        }
        Job::Keep(_) | Job::KeepDm(_) | Job::ForgetRoom { .. } | Job::Delivered { .. } => {
            return None
        }
    })
}

fn work(
    mut store: HistoryStore,
    days: u32,
    jobs: Receiver<Vec<Job>>,
    done: Sender<Answer>,
    waker: Arc<Waker>,
) {
    let mut waiting: Vec<Job> = Vec::new();
    let mut since: Option<Instant> = None;
    let mut next_prune = Instant::now() + PRUNE_EVERY;
    loop {
        let now = Instant::now();
        let due = since.map_or(next_prune, |since| (since + COMMIT_AFTER).min(next_prune));
        let left = due.saturating_duration_since(now);
        let received = if waiting.is_empty() {
            // Idle: parked on the channel, the loop's next batch wakes the thread.
            jobs.recv_timeout(left)
        } else {
            // Lines wait for their commit: the thread naps and then takes what came, so the
            // loop's batches meanwhile find no one to wake (a wake-up a turn was a system call
            // and a context switch for every few lines of a burst).
            thread::sleep(left.min(POLL));
            jobs.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        };
        match received {
            Ok(first) => {
                let mut answered = false;
                let more = std::iter::from_fn(|| jobs.try_recv().ok());
                for job in std::iter::once(first).chain(more).flatten() {
                    if is_write(&job) {
                        since.get_or_insert_with(Instant::now);
                        waiting.push(job);
                        continue;
                    }
                    commit(&mut store, &mut waiting);
                    since = None;
                    if let Some(answer) = answer(&mut store, job) {
                        answered |= done.send(answer).is_ok();
                    }
                }
                if answered {
                    if let Err(e) = waker.wake() {
                        log::error!("cannot wake the event loop: {e}");
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                commit(&mut store, &mut waiting);
                return;
            }
        }
        let now = Instant::now();
        if waiting.len() >= COMMIT_LINES || since.is_some_and(|since| now >= since + COMMIT_AFTER) {
            commit(&mut store, &mut waiting);
            since = None;
        }
        if now >= next_prune {
            next_prune = now + PRUNE_EVERY;
            prune(&mut store, days);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(room: &str, seq: u64, text: &str) -> Job {
        Job::Keep(KeptLine {
            room: room.into(),
            seq,
            at: 1,
            from: "alice".into(),
            text: text.into(),
            me: false,
        })
    }

    #[test]
    fn a_room_forgotten_in_a_batch_keeps_only_its_lines_after() {
        let dir = std::env::temp_dir().join(format!("chatd-keeper-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = HistoryStore::open(&dir).unwrap();
        let mut waiting = vec![
            line("#dev", 1, "old room"),
            line("#lobby", 1, "lobby"),
            Job::ForgetRoom {
                room: "#dev".into(),
            },
            line("#dev", 1, "new room"),
        ];
        commit(&mut store, &mut waiting);
        assert!(waiting.is_empty());
        let texts = |room| -> Vec<String> {
            let (lines, _) = store.recent(room, 10).unwrap();
            lines.into_iter().map(|l| l.text).collect()
        };
        assert_eq!(texts("#dev"), ["new room"]);
        assert_eq!(texts("#lobby"), ["lobby"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_look_up_sees_every_line_sent_before_it() {
        let dir = std::env::temp_dir().join(format!("chatd-keeper-ask-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = HistoryStore::open(&dir).unwrap();
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let mut keeper = Keeper::start(store, 0, waker).unwrap();
        keeper.push(line("#lobby", 1, "one"));
        keeper.push(line("#lobby", 2, "two"));
        keeper.push(Job::Page {
            conn: crate::core::ConnId(7),
            room: crate::core::rooms::RoomId::DEFAULT,
            key: "#lobby".into(),
            span: crate::history::job::Span::Before(crate::history::job::Point::Seq(3)),
            limit: 5,
            ids: false,
        });
        keeper.send();
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = loop {
            if let Some(answer) = keeper.answers().pop() {
                break answer;
            }
            assert!(Instant::now() < deadline, "no answer");
            thread::sleep(Duration::from_millis(5));
        };
        let Answer::Page { lines, more, .. } = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(lines.len(), 2, "not waiting for the next commit");
        assert!(!more);
        keeper.finish();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
