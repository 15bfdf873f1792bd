//! The SQLite file of the history: `DATA_DIR/history.sqlite`.
//!
//! Written by one thread only (the server's history thread), in batches: one transaction for many
//! lines. The journal is a write-ahead log and `synchronous` is `NORMAL`: a committed batch
//! survives the process being killed (`kill -9`), only a power cut may lose the last batches, and
//! the file is never left torn either way (SQLite replays or drops the log's tail on open).
//!
//! A room's lines are kept in **chunks**: one row holds the consecutive lines of one room written
//! in one batch (at most [`CHUNK_LINES`] lines or about [`CHUNK_BYTES`] bytes), packed in a blob.
//! A row per line cost SQLite about 5 us a line, more than relaying it to 50 users; a row per
//! chunk makes a burst's lines nearly free to keep, and paging back reads a few rows. A chunk is
//! pruned once its newest line is older than the cutoff.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::job::{select, KeptDm, KeptLine, Mail, Point, Span, MAILBOX_PER_USER, MAILBOX_TOTAL};

/// The history file's name inside the data directory.
pub const HISTORY_FILE: &str = "history.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    at_last INTEGER NOT NULL,
    lines BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_room ON chunks (room, first);
CREATE INDEX IF NOT EXISTS chunks_at ON chunks (at_last);
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

/// Most lines in one chunk.
pub const CHUNK_LINES: usize = 256;

/// A chunk is closed once its names and texts hold this many bytes.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Packs `lines` (of one room) into a chunk's blob: per line its number (8 bytes), time (8),
/// action flag (1), then the sender and the text, each a 4-byte length and UTF-8; little-endian.
fn pack(lines: &[&KeptLine]) -> Vec<u8> {
    let size: usize = lines.iter().map(|l| 25 + l.from.len() + l.text.len()).sum();
    let mut out = Vec::with_capacity(size);
    for line in lines {
        out.extend_from_slice(&line.seq.to_le_bytes());
        out.extend_from_slice(&line.at.to_le_bytes());
        out.push(u8::from(line.me));
        for text in [&line.from, &line.text] {
            // Lines are far under 4 GiB (the codecs cap them at kilobytes).
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&text.as_bytes()[..len as usize]);
        }
    }
    out
}

/// A chunk's blob that is not what [`pack`] writes.
#[derive(Debug)]
struct BadChunk;

impl fmt::Display for BadChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk of lines is damaged")
    }
}

impl std::error::Error for BadChunk {}

/// Unpacks a chunk of `room` packed by [`pack`].
fn unpack(room: &str, mut blob: &[u8]) -> Result<Vec<KeptLine>, BadChunk> {
    fn take<'a>(blob: &mut &'a [u8], n: usize) -> Result<&'a [u8], BadChunk> {
        if blob.len() < n {
            return Err(BadChunk);
        }
        let (head, rest) = blob.split_at(n);
        *blob = rest;
        Ok(head)
    }
    fn word<const N: usize>(blob: &mut &[u8]) -> Result<[u8; N], BadChunk> {
        take(blob, N)?.try_into().map_err(|_| BadChunk)
    }
    fn text(blob: &mut &[u8]) -> Result<String, BadChunk> {
        let len = u32::from_le_bytes(word(blob)?) as usize;
        String::from_utf8(take(blob, len)?.to_vec()).map_err(|_| BadChunk)
    }
    let mut lines = Vec::new();
    while !blob.is_empty() {
        let seq = u64::from_le_bytes(word(&mut blob)?);
        let at = i64::from_le_bytes(word(&mut blob)?);
        let me = word::<1>(&mut blob)?[0] != 0;
        let from = text(&mut blob)?;
        let text = text(&mut blob)?;
        lines.push(KeptLine {
            room: room.to_owned(),
            seq,
            at,
            from,
            text,
            me,
        });
    }
    Ok(lines)
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
    /// Opens (creating if need be) the history file [`HISTORY_FILE`] in the data directory
    /// `dir`, in WAL mode with `synchronous=NORMAL`, and checks that it is a history file SQLite
    /// can read.
    pub fn open(dir: &Path) -> Result<HistoryStore, HistoryError> {
        HistoryStore::open_file(&dir.join(HISTORY_FILE))
    }

    /// [`HistoryStore::open`] for the file at `path`.
    pub fn open_file(path: &Path) -> Result<HistoryStore, HistoryError> {
        let path = path.to_path_buf();
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
                "SELECT MAX(last) FROM chunks WHERE room = ?1",
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
        let mut lines = self.back(room, Some(Point::Seq(before)), limit + 1)?;
        let more = lines.len() > limit;
        lines.drain(..lines.len() - lines.len().min(limit));
        Ok((lines, more))
    }

    /// Up to `limit` lines of `room` (lower-cased) in `span`, oldest first, and whether more
    /// of the span remain: the lines the core would choose among its own (see [`select`]).
    /// Only the lines next to the span's point are read: at most `limit` and one on each side.
    pub fn page(
        &self,
        room: &str,
        span: Span<Point>,
        limit: usize,
    ) -> Result<(Vec<KeptLine>, bool), HistoryError> {
        let want = limit + 1;
        let window = match span {
            Span::Latest(_) => self.back(room, None, want)?,
            Span::Before(p) => self.back(room, Some(p), want)?,
            Span::After(p) => self.forth(room, p, true, want)?,
            Span::Around(p) => {
                let mut window = self.back(room, Some(p), limit / 2 + 1)?;
                window.extend(self.forth(room, p, false, want)?);
                window
            }
            Span::Between(a, _) => {
                let mut window = self.back(room, Some(a), want)?;
                window.extend(self.forth(room, a, true, want)?);
                window
            }
        };
        let keys: Vec<(u64, i64)> = window.iter().map(|l| (l.seq, l.at)).collect();
        let (range, more) = select(&keys, span, limit);
        let lines = window
            .into_iter()
            .skip(range.start)
            .take(range.len())
            .collect();
        Ok((lines, more))
    }

    /// The newest `n` lines of `room` before `below` (any if `None`), oldest first.
    fn back(
        &self,
        room: &str,
        below: Option<Point>,
        n: usize,
    ) -> Result<Vec<KeptLine>, HistoryError> {
        let first_below = match below {
            Some(Point::Seq(seq)) => to_sql(seq),
            _ => i64::MAX,
        };
        let sql = "SELECT lines FROM chunks WHERE room = ?1 AND first < ?2 ORDER BY first DESC";
        let keep = |line: &KeptLine| below.is_none_or(|p| p.follows(line.seq, line.at));
        let mut lines = self.scan(room, sql, first_below, keep, n)?;
        lines.reverse();
        Ok(lines)
    }

    /// The oldest `n` lines of `room` after `from` (or at it, unless `strict`), oldest first.
    fn forth(
        &self,
        room: &str,
        from: Point,
        strict: bool,
        n: usize,
    ) -> Result<Vec<KeptLine>, HistoryError> {
        let (sql, bound) = match from {
            Point::Seq(seq) => (
                "SELECT lines FROM chunks WHERE room = ?1 AND last >= ?2 ORDER BY first",
                to_sql(seq),
            ),
            Point::Millis(ms) => (
                "SELECT lines FROM chunks WHERE room = ?1 AND at_last >= ?2 ORDER BY first",
                ms.div_euclid(1000),
            ),
        };
        let keep = |line: &KeptLine| {
            if strict {
                from.precedes(line.seq, line.at)
            } else {
                !from.follows(line.seq, line.at)
            }
        };
        self.scan(room, sql, bound, keep, n)
    }

    /// The first `n` lines `keep` takes, chunk by chunk in the order `sql` (with the room and
    /// `bound` as its parameters) gives the chunks, each chunk's lines in that order too.
    fn scan(
        &self,
        room: &str,
        sql: &str,
        bound: i64,
        keep: impl Fn(&KeptLine) -> bool,
        n: usize,
    ) -> Result<Vec<KeptLine>, HistoryError> {
        let action = "read a room's lines";
        let newest_first = sql.ends_with("DESC");
        let mut query = self.db.prepare_cached(sql).map_err(self.fail(action))?;
        let mut rows = query
            .query(params![room, bound])
            .map_err(self.fail(action))?;
        let mut lines: Vec<KeptLine> = Vec::new();
        while lines.len() < n {
            let Some(row) = rows.next().map_err(self.fail(action))? else {
                break;
            };
            let blob: Vec<u8> = row.get(0).map_err(self.fail(action))?;
            let chunk = unpack(room, &blob).map_err(|e| HistoryError {
                path: self.path.clone(),
                action,
                cause: rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                ),
            })?;
            let room_left = n - lines.len();
            if newest_first {
                lines.extend(chunk.into_iter().rev().filter(&keep).take(room_left));
            } else {
                lines.extend(chunk.into_iter().filter(&keep).take(room_left));
            }
        }
        Ok(lines)
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
    /// delivered included (a chunk of lines goes once its newest is older); returns how many
    /// chunks and messages went.
    pub fn prune(&mut self, cutoff: i64) -> Result<usize, HistoryError> {
        self.batch(|batch| {
            let lines = batch
                .tx
                .execute("DELETE FROM chunks WHERE at_last < ?1", [cutoff])?;
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

/// `lines` cut into chunks of at most [`CHUNK_LINES`] lines, each closed once it holds
/// [`CHUNK_BYTES`] bytes of names and texts (never empty).
fn chunks<'a, 'b>(lines: &'b [&'a KeptLine]) -> impl Iterator<Item = &'b [&'a KeptLine]> {
    let mut rest = lines;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        let mut bytes = 0;
        while end < rest.len() && end < CHUNK_LINES && bytes < CHUNK_BYTES {
            bytes += rest[end].from.len() + rest[end].text.len();
            end += 1;
        }
        let (chunk, after) = rest.split_at(end);
        rest = after;
        Some(chunk)
    })
}

/// One open transaction of [`HistoryStore::batch`].
#[derive(Debug)]
pub struct Batch<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Batch<'_> {
    /// Keeps room lines, in the order said: each room's consecutive lines among them go into as
    /// few chunks as their size allows.
    pub fn keep(&self, lines: &[KeptLine]) -> Result<(), rusqlite::Error> {
        // A batch of a busy server's lines spans many rooms: each found by its name at once.
        let mut rooms: Vec<(&str, Vec<&KeptLine>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for line in lines {
            let i = *index.entry(&line.room).or_insert_with(|| {
                rooms.push((&line.room, Vec::new()));
                rooms.len() - 1
            });
            rooms[i].1.push(line);
        }
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO chunks (room, first, last, at_last, lines) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (room, room_lines) in rooms {
            for chunk in chunks(&room_lines) {
                let (first, last) = (chunk[0].seq, chunk[chunk.len() - 1].seq);
                let at_last = chunk.iter().map(|l| l.at).max().unwrap_or_default();
                insert.execute(params![
                    room,
                    to_sql(first),
                    to_sql(last),
                    at_last,
                    pack(chunk)
                ])?;
            }
        }
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
            .execute("DELETE FROM chunks WHERE room = ?1", [room])?;
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
            me: seq.is_multiple_of(2),
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
        let lobby = |from: u64, to: u64| -> Vec<KeptLine> {
            (from..=to)
                .map(|s| line("#lobby", s, 100 + s as i64))
                .collect()
        };
        // Three batches, the middle one in several chunks, another room's line among them.
        let many = CHUNK_LINES as u64 * 2 + 5;
        store.batch(|b| b.keep(&lobby(1, 3))).unwrap();
        let mut both = lobby(4, many);
        both.insert(2, line("#dev", 1, 5));
        store.batch(|b| b.keep(&both)).unwrap();
        store.batch(|b| b.keep(&lobby(many + 1, many + 5))).unwrap();
        let (all, more) = store.before("#lobby", u64::MAX, 10_000).unwrap();
        assert!(!more);
        assert_eq!(all, lobby(1, many + 5));
        let (recent, last) = store.recent("#lobby", 3).unwrap();
        assert_eq!(last, many + 5);
        assert_eq!(recent, lobby(many + 3, many + 5));
        let (page, more) = store.before("#lobby", 8, 5).unwrap();
        assert_eq!(page, lobby(3, 7));
        assert!(more);
        let (page, more) = store.before("#lobby", 3, 5).unwrap();
        assert_eq!(page, lobby(1, 2));
        assert!(!more);
        assert_eq!(store.recent("#none", 5).unwrap(), (vec![], 0));
        store.batch(|b| b.forget_room("#lobby")).unwrap();
        assert_eq!(store.recent("#lobby", 5).unwrap(), (vec![], 0));
        assert_eq!(store.recent("#dev", 5).unwrap().1, 1);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_page_of_any_span_is_what_the_core_chooses_among_every_line() {
        let dir = temp_dir("span");
        let mut store = HistoryStore::open(&dir).unwrap();
        // Lines 1 to N in several chunks, two a second.
        let n = CHUNK_LINES as u64 * 2 + 7;
        let all: Vec<KeptLine> = (1..=n)
            .map(|s| line("#lobby", s, 1000 + s as i64 / 2))
            .collect();
        store.batch(|b| b.keep(&all[..40])).unwrap();
        store.batch(|b| b.keep(&all[40..])).unwrap();
        store.batch(|b| b.keep(&[line("#dev", 1, 5)])).unwrap();
        let keys: Vec<(u64, i64)> = all.iter().map(|l| (l.seq, l.at)).collect();
        let points = [
            Point::Seq(0),
            Point::Seq(1),
            Point::Seq(39),
            Point::Seq(41),
            Point::Seq(n / 2),
            Point::Seq(n),
            Point::Seq(n + 5),
            Point::Millis(0),
            Point::Millis(1_020_000),
            Point::Millis(1_020_500),
            Point::Millis(i64::MAX),
        ];
        for p in points {
            for q in points {
                for limit in [1, 5, 1000] {
                    let spans = [
                        Span::Latest(None),
                        Span::Latest(Some(p)),
                        Span::Before(p),
                        Span::After(p),
                        Span::Around(p),
                        Span::Between(p, q),
                    ];
                    for span in spans {
                        let (range, more) = select(&keys, span, limit);
                        let (lines, told) = store.page("#lobby", span, limit).unwrap();
                        assert_eq!(lines, all[range], "{span:?} {limit}");
                        if !matches!(span, Span::Around(_) | Span::Between(..)) {
                            assert_eq!(told, more, "{span:?} {limit}");
                        }
                    }
                }
            }
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_lines_close_a_chunk_early() {
        let mut long = line("#a", 1, 0);
        long.text = "x".repeat(CHUNK_BYTES);
        let short = line("#a", 2, 0);
        let lines = [&long, &short, &short];
        let sizes: Vec<usize> = chunks(&lines).map(<[_]>::len).collect();
        assert_eq!(sizes, [1, 2]);
        let many: Vec<KeptLine> = (0..CHUNK_LINES as u64 + 1)
            .map(|s| line("#a", s, 0))
            .collect();
        let many: Vec<&KeptLine> = many.iter().collect();
        let sizes: Vec<usize> = chunks(&many).map(<[_]>::len).collect();
        assert_eq!(sizes, [CHUNK_LINES, 1]);
    }

    #[test]
    fn a_chunk_unpacks_to_what_was_packed_and_a_damaged_one_is_an_error() {
        let lines = [line("#a", 7, -3), line("#a", 8, i64::MAX)];
        let blob = pack(&lines.iter().collect::<Vec<_>>());
        assert_eq!(unpack("#a", &blob).unwrap(), lines);
        // Cut anywhere: an error, or (cut between two lines) the lines before the cut.
        for cut in 1..blob.len() {
            if let Ok(some) = unpack("#a", &blob[..cut]) {
                assert_eq!(some, lines[..1], "cut at {cut}");
            }
        }
        let mut bad = blob.clone();
        bad[17 + 4] = 0xff;
        assert!(unpack("#a", &bad).is_err(), "not UTF-8");
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
        // One batch a line (so a chunk each), and a chunk of two whose newest line is new.
        for seq in 1..=4 {
            let kept = [line("#lobby", seq, seq as i64 * 100)];
            store.batch(|b| b.keep(&kept)).unwrap();
        }
        let mixed = [line("#dev", 1, 100), line("#dev", 2, 300)];
        store.batch(|b| b.keep(&mixed)).unwrap();
        store
            .batch(|b| {
                b.keep_dm(&dm("a", "b", "old", 50), true)?;
                b.keep_dm(&dm("a", "b", "new", 500), true)
            })
            .unwrap();
        assert_eq!(store.prune(250).unwrap(), 3, "two chunks and a message");
        assert_eq!(store.recent("#dev", 10).unwrap().0, mixed);
        let (lines, last) = store.recent("#lobby", 10).unwrap();
        assert_eq!(lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(last, 4);
        assert_eq!(store.mailbox("b").unwrap().len(), 1);
        assert!(store.is_sound().unwrap());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
