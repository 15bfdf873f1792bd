//! The SQLite file of the history: `DATA_DIR/history.sqlite`.
//!
//! Written by one thread only (the server's history thread), in batches: one transaction for many
//! lines. The journal is a write-ahead log and `synchronous` is `NORMAL`: a committed batch
//! survives the process being killed (`kill -9`), only a power cut may lose the last batches, and
//! the file is never left torn either way (SQLite replays or drops the log's tail on open).

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::job::{KeptDm, KeptLine, Mail, MAILBOX_PER_USER, MAILBOX_TOTAL};

/// The history file's name inside the data directory.
pub const HISTORY_FILE: &str = "history.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lines (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    me INTEGER NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lines_at ON lines (at);
CREATE TABLE IF NOT EXISTS dms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    sender TEXT NOT NULL,
    sender_key TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipient_key TEXT NOT NULL,
    text TEXT NOT NULL,
    pending INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dms_at ON dms (at);
CREATE INDEX IF NOT EXISTS dms_pending ON dms (recipient_key, id) WHERE pending = 1;
CREATE INDEX IF NOT EXISTS dms_pair ON dms (sender_key, recipient_key, id);
";

/// A history store operation that failed, with the file.
#[derive(Debug)]
pub struct HistoryError {
    /// The SQLite file.
    pub path: PathBuf,
    /// What was being done.
    pub action: &'static str,
    /// What SQLite said.
    pub cause: rusqlite::Error,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: cannot {}: {}",
            self.path.display(),
            self.action,
            self.cause
        )
    }
}

impl std::error::Error for HistoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// The history file, opened.
#[derive(Debug)]
pub struct HistoryStore {
    db: Connection,
    path: PathBuf,
}

/// A line number as SQLite keeps it (a signed 64-bit integer).
fn to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A line number as SQLite gave it back.
fn from_sql(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

impl HistoryStore {
    /// Opens (creating if need be) the history file in the data directory `dir`, in WAL mode
    /// with `synchronous=NORMAL`, and checks that it is a history file SQLite can read.
    pub fn open(dir: &Path) -> Result<HistoryStore, HistoryError> {
        let path = dir.join(HISTORY_FILE);
        let fail = |action| {
            let path = path.clone();
            move |cause| HistoryError {
                path,
                action,
                cause,
            }
        };
        let db = Connection::open(&path).map_err(fail("open"))?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail("use a write-ahead log"))?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail("set synchronous=NORMAL"))?;
        // Another process (a second server by mistake) holding a write: wait a little, not fail.
        db.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(fail("set the busy timeout"))?;
        db.execute_batch(SCHEMA)
            .map_err(fail("create the tables"))?;
        Ok(HistoryStore { db, path })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> HistoryError + '_ {
        move |cause| HistoryError {
            path: self.path.clone(),
            action,
            cause,
        }
    }

    /// Runs `write` in one transaction: everything in it is kept, or nothing.
    pub fn batch<T>(
        &mut self,
        write: impl FnOnce(&Batch<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<T, HistoryError> {
        let path = &self.path;
        let fail = |action| {
            move |cause| HistoryError {
                path: path.clone(),
                action,
                cause,
            }
        };
        let tx = self.db.transaction().map_err(fail("begin a batch"))?;
        let result = write(&Batch { tx: &tx }).map_err(fail("write a batch"))?;
        tx.commit().map_err(fail("commit a batch"))?;
        Ok(result)
    }

    /// The last `limit` lines of `room` (lower-cased), oldest first, and the room's last line
    /// number (0 if it has none).
    pub fn recent(&self, room: &str, limit: usize) -> Result<(Vec<KeptLine>, u64), HistoryError> {
        let last: Option<i64> = self
            .db
            .query_row(
                "SELECT MAX(seq) FROM lines WHERE room = ?1",
                [room],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.fail("read a room's last line"))?
            .flatten();
        let Some(last) = last else {
            return Ok((Vec::new(), 0));
        };
        let (lines, _) = self.before(room, from_sql(last) + 1, limit)?;
        Ok((lines, from_sql(last)))
    }

    /// Up to `limit` lines of `room` (lower-cased) numbered below `before`, oldest first, and
    /// whether older ones remain.
    pub fn before(
        &self,
        room: &str,
        before: u64,
        limit: usize,
    ) -> Result<(Vec<KeptLine>, bool), HistoryError> {
        let mut query = self
            .db
            .prepare_cached(
                "SELECT seq, at, sender, text, me FROM lines WHERE room = ?1 AND seq < ?2 \
                 ORDER BY seq DESC LIMIT ?3",
            )
            .map_err(self.fail("read a room's lines"))?;
        let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = query
            .query_map(params![room, to_sql(before), take], |row| {
                Ok(KeptLine {
                    room: room.to_owned(),
                    seq: from_sql(row.get(0)?),
                    at: row.get(1)?,
                    from: row.get(2)?,
                    text: row.get(3)?,
                    me: row.get(4)?,
                })
            })
            .map_err(self.fail("read a room's lines"))?;
        let mut lines = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.fail("read a room's lines"))?;
        let more = lines.len() > limit;
        lines.truncate(limit);
        lines.reverse();
        Ok((lines, more))
    }

    /// The direct messages waiting for `name` (any case), oldest first.
    pub fn mailbox(&self, name: &str) -> Result<Vec<Mail>, HistoryError> {
        let key = name.to_lowercase();
        let mut query = self
            .db
            .prepare_cached(
                "SELECT id, at, sender, text FROM dms WHERE recipient_key = ?1 AND pending = 1 \
                 ORDER BY id LIMIT ?2",
            )
            .map_err(self.fail("read a mailbox"))?;
        let rows = query
            .query_map(params![key, MAILBOX_PER_USER as i64], |row| {
                Ok(Mail {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    from: row.get(2)?,
                    text: row.get(3)?,
                })
            })
            .map_err(self.fail("read a mailbox"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.fail("read a mailbox"))
    }

    /// The last `limit` direct messages between `a` and `b` (any case, either way), oldest
    /// first.
    pub fn dms_between(&self, a: &str, b: &str, limit: usize) -> Result<Vec<KeptDm>, HistoryError> {
        let (a, b) = (a.to_lowercase(), b.to_lowercase());
        let mut query = self
            .db
            .prepare_cached(
                "SELECT at, sender, recipient, text FROM dms \
                 WHERE (sender_key = ?1 AND recipient_key = ?2) OR (sender_key = ?2 AND recipient_key = ?1) \
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(self.fail("read direct messages"))?;
        let take = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = query
            .query_map(params![a, b, take], |row| {
                Ok(KeptDm {
                    at: row.get(0)?,
                    from: row.get(1)?,
                    to: row.get(2)?,
                    text: row.get(3)?,
                })
            })
            .map_err(self.fail("read direct messages"))?;
        let mut dms = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.fail("read direct messages"))?;
        dms.reverse();
        Ok(dms)
    }

    /// Deletes the lines and direct messages said before `cutoff` (Unix seconds), mail not yet
    /// delivered included; returns how many rows went.
    pub fn prune(&mut self, cutoff: i64) -> Result<usize, HistoryError> {
        self.batch(|batch| {
            let lines = batch
                .tx
                .execute("DELETE FROM lines WHERE at < ?1", [cutoff])?;
            let dms = batch
                .tx
                .execute("DELETE FROM dms WHERE at < ?1", [cutoff])?;
            Ok(lines + dms)
        })
    }

    /// Checks the file's structure (SQLite's `integrity_check`): `Ok(true)` if it is sound.
    pub fn is_sound(&self) -> Result<bool, HistoryError> {
        let verdict: String = self
            .db
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(self.fail("check the file"))?;
        Ok(verdict == "ok")
    }
}

/// One open transaction of [`HistoryStore::batch`].
#[derive(Debug)]
pub struct Batch<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Batch<'_> {
    /// Keeps a room's line (replacing one of the same room and number, left by a run that was
    /// killed before it could keep the rest of its lines).
    pub fn keep(&self, line: &KeptLine) -> Result<(), rusqlite::Error> {
        let mut insert = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO lines (room, seq, at, sender, text, me) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        insert.execute(params![
            line.room,
            to_sql(line.seq),
            line.at,
            line.from,
            line.text,
            line.me
        ])?;
        Ok(())
    }

    /// Keeps a direct message; `pending` puts it in the recipient's mailbox.
    pub fn keep_dm(&self, dm: &KeptDm, pending: bool) -> Result<(), rusqlite::Error> {
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO dms (at, sender, sender_key, recipient, recipient_key, text, pending) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        insert.execute(params![
            dm.at,
            dm.from,
            dm.from.to_lowercase(),
            dm.to,
            dm.to.to_lowercase(),
            dm.text,
            pending
        ])?;
        Ok(())
    }

    /// Puts a direct message in its recipient's mailbox if both it and all mailboxes together
    /// have room ([`MAILBOX_PER_USER`], [`MAILBOX_TOTAL`]); returns whether it did.
    pub fn mail(&self, dm: &KeptDm) -> Result<bool, rusqlite::Error> {
        let key = dm.to.to_lowercase();
        let mine: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM dms WHERE recipient_key = ?1 AND pending = 1",
            [&key],
            |row| row.get(0),
        )?;
        let all: i64 =
            self.tx
                .query_row("SELECT COUNT(*) FROM dms WHERE pending = 1", [], |row| {
                    row.get(0)
                })?;
        if mine >= MAILBOX_PER_USER as i64 || all >= MAILBOX_TOTAL as i64 {
            return Ok(false);
        }
        self.keep_dm(dm, true)?;
        Ok(true)
    }

    /// Takes `name`'s mail up to id `up_to` out of the mailbox (it stays as history).
    pub fn delivered(&self, name: &str, up_to: i64) -> Result<(), rusqlite::Error> {
        self.tx.execute(
            "UPDATE dms SET pending = 0 WHERE recipient_key = ?1 AND pending = 1 AND id <= ?2",
            params![name.to_lowercase(), up_to],
        )?;
        Ok(())
    }

    /// Forgets every line of `room` (lower-cased).
    pub fn forget_room(&self, room: &str) -> Result<(), rusqlite::Error> {
        self.tx
            .execute("DELETE FROM lines WHERE room = ?1", [room])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatd-history-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn line(room: &str, seq: u64, at: i64) -> KeptLine {
        KeptLine {
            room: room.into(),
            seq,
            at,
            from: "alice".into(),
            text: format!("line {seq}"),
            me: seq % 2 == 0,
        }
    }

    fn dm(from: &str, to: &str, text: &str, at: i64) -> KeptDm {
        KeptDm {
            at,
            from: from.into(),
            to: to.into(),
            text: text.into(),
        }
    }

    #[test]
    fn lines_come_back_by_room_newest_last_and_page_backwards() {
        let dir = temp_dir("page");
        let mut store = HistoryStore::open(&dir).unwrap();
        store
            .batch(|b| {
                for seq in 1..=10 {
                    b.keep(&line("#lobby", seq, 100 + seq as i64))?;
                }
                b.keep(&line("#dev", 1, 5))
            })
            .unwrap();
        let (recent, last) = store.recent("#lobby", 3).unwrap();
        assert_eq!(last, 10);
        assert_eq!(
            recent,
            (8..=10)
                .map(|s| line("#lobby", s, 100 + s as i64))
                .collect::<Vec<_>>()
        );
        let (page, more) = store.before("#lobby", 8, 5).unwrap();
        assert_eq!(
            page.iter().map(|l| l.seq).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7]
        );
        assert!(more);
        let (page, more) = store.before("#lobby", 3, 5).unwrap();
        assert_eq!(page.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(!more);
        assert_eq!(store.recent("#none", 5).unwrap(), (vec![], 0));
        store.batch(|b| b.forget_room("#lobby")).unwrap();
        assert_eq!(store.recent("#lobby", 5).unwrap(), (vec![], 0));
        assert_eq!(store.recent("#dev", 5).unwrap().1, 1);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_mailbox_is_bounded_delivered_up_to_an_id_and_kept_as_history() {
        let dir = temp_dir("mail");
        let mut store = HistoryStore::open(&dir).unwrap();
        let kept = store
            .batch(|b| {
                let mut kept = 0;
                for n in 0..MAILBOX_PER_USER + 5 {
                    kept += usize::from(b.mail(&dm("alice", "Bob", &format!("m{n}"), 1))?);
                }
                Ok(kept)
            })
            .unwrap();
        assert_eq!(kept, MAILBOX_PER_USER, "the rest are refused");
        let mail = store.mailbox("BOB").unwrap();
        assert_eq!(mail.len(), MAILBOX_PER_USER);
        assert_eq!(mail[0].text, "m0");
        let up_to = mail[9].id;
        store.batch(|b| b.delivered("bob", up_to)).unwrap();
        let left = store.mailbox("bob").unwrap();
        assert_eq!(left.len(), MAILBOX_PER_USER - 10);
        assert_eq!(left[0].text, "m10");
        let between = store.dms_between("bob", "ALICE", 3).unwrap();
        assert_eq!(
            between.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(),
            ["m97", "m98", "m99"]
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pruning_drops_what_is_older_than_the_cutoff_only() {
        let dir = temp_dir("prune");
        let mut store = HistoryStore::open(&dir).unwrap();
        store
            .batch(|b| {
                for seq in 1..=4 {
                    b.keep(&line("#lobby", seq, seq as i64 * 100))?;
                }
                b.keep_dm(&dm("a", "b", "old", 50), true)?;
                b.keep_dm(&dm("a", "b", "new", 500), true)
            })
            .unwrap();
        assert_eq!(store.prune(250).unwrap(), 3);
        let (lines, last) = store.recent("#lobby", 10).unwrap();
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(last, 4);
        assert_eq!(store.mailbox("b").unwrap().len(), 1);
        assert!(store.is_sound().unwrap());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
