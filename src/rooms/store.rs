//! The rooms file under the data directory: `DIR/rooms`, in the format of
//! [`crate::rooms::model`]; a missing file reads as no rooms.
//!
//! Locked and replaced as the accounts files are ([`crate::datadir`], the same lock file), so
//! the server and any number of `chatd room` runs can change it at once without losing each
//! other's changes, and a crash leaves the old file or the new one.

use std::path::Path;

use super::model::{RoomChange, RoomList};
use crate::datadir::{parse_error, DataDir, Lock, StoreError};

/// The rooms file's name inside the data directory.
pub const ROOMS_FILE: &str = "rooms";

/// Where the persistent rooms are kept: a data directory.
#[derive(Clone, Debug)]
pub struct RoomStore {
    dir: DataDir,
}

impl RoomStore {
    /// Opens the data directory `dir`, creating it (mode 0700) if it does not exist.
    pub fn open(dir: &Path) -> Result<RoomStore, StoreError> {
        DataDir::open(dir).map(RoomStore::on)
    }

    /// Opens the data directory `dir` for reading only: `None` if it does not exist, and nothing
    /// is created.
    pub fn open_existing(dir: &Path) -> Result<Option<RoomStore>, StoreError> {
        DataDir::open_existing(dir).map(|dir| dir.map(RoomStore::on))
    }

    /// The rooms of a data directory already opened.
    pub fn on(dir: DataDir) -> RoomStore {
        RoomStore { dir }
    }

    /// The rooms file's path.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir.file(ROOMS_FILE)
    }

    /// Reads the rooms under the shared lock (none if no writer ever made the lock file). A
    /// missing file is no rooms; an unreadable or corrupt one is an error naming it and the line.
    pub fn load(&self) -> Result<RoomList, StoreError> {
        let lock = self.dir.shared_lock()?;
        self.read(&lock)
    }

    /// Applies `changes` to the file as it is now, under the exclusive lock; returns the rooms
    /// as written.
    pub fn apply(&self, changes: &[RoomChange]) -> Result<RoomList, StoreError> {
        self.update(|_| Ok::<_, StoreError>(changes.to_vec()))
    }

    /// Under the exclusive lock: reads the file, asks `decide` for the changes to make given what
    /// is there now, applies them, and replaces the file if its text changed. Returns the rooms
    /// as written. If `decide` fails, nothing is written.
    pub fn update<E, F>(&self, decide: F) -> Result<RoomList, E>
    where
        E: From<StoreError>,
        F: FnOnce(&RoomList) -> Result<Vec<RoomChange>, E>,
    {
        let lock = self.dir.exclusive_lock()?;
        self.dir.remove_stale_temp_file(&lock, ROOMS_FILE)?;
        let old = self.read(&lock)?;
        let changes = decide(&old)?;
        let mut new = old.clone();
        for change in &changes {
            new.apply(change);
        }
        let text = new.file();
        if text != old.file() {
            self.dir.replace(&lock, ROOMS_FILE, &text, 0o600)?;
            self.dir.sync(&lock)?;
        }
        Ok(new)
    }

    fn read(&self, lock: &Lock) -> Result<RoomList, StoreError> {
        match self.dir.read(lock, ROOMS_FILE)? {
            None => Ok(RoomList::default()),
            Some(text) => RoomList::parse(&text).map_err(parse_error(&self.path())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::accounts::model::{Account, Change, Role};
    use crate::accounts::Store;
    use crate::datadir::TempDir;
    use crate::datadir::{StoreErrorCause, LOCK_FILE};
    use crate::rooms::model::{SavedRoom, SavedTopic};

    fn add(name: &str, topic: Option<&str>) -> RoomChange {
        RoomChange::Add(SavedRoom {
            name: name.into(),
            topic: topic.map(|text| SavedTopic {
                text: text.into(),
                by: "Host".into(),
                at: 1,
            }),
        })
    }

    #[test]
    fn rooms_round_trip_beside_the_accounts_under_one_lock() {
        let tmp = TempDir::new("rooms-round-trip");
        let rooms = RoomStore::open(&tmp.0).unwrap();
        assert!(rooms.load().unwrap().is_empty(), "no file is no rooms");
        let written = rooms
            .apply(&[add("#dev", Some("Rust talk")), add("#ops", None)])
            .unwrap();
        assert_eq!(RoomStore::open(&tmp.0).unwrap().load().unwrap(), written);
        assert_eq!(fs::metadata(rooms.path()).unwrap().mode() & 0o777, 0o600);
        // The accounts share the directory and its lock file, and neither touches the other.
        let accounts = Store::on(DataDir::open(&tmp.0).unwrap());
        accounts
            .apply(&[Change::PutAccount(Account {
                name: "alice".into(),
                role: Role::User,
                password_hash: "$argon2id$x".into(),
            })])
            .unwrap();
        assert_eq!(rooms.load().unwrap(), written);
        let mut names: Vec<String> = fs::read_dir(&tmp.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [LOCK_FILE, "accounts", ROOMS_FILE]);
    }

    #[test]
    fn an_unchanged_list_is_not_written_and_a_refused_update_writes_nothing() {
        let tmp = TempDir::new("rooms-unchanged");
        let rooms = RoomStore::open(&tmp.0).unwrap();
        rooms.apply(&[add("#dev", None)]).unwrap();
        let inode = fs::metadata(rooms.path()).unwrap().ino();
        rooms
            .apply(&[add("#DEV", Some("ignored: it exists"))])
            .unwrap();
        let refused: Result<RoomList, StoreError> = rooms.update(|_| {
            Err(crate::datadir::io_error(&tmp.0, "test")(
                std::io::Error::other("no"),
            ))
        });
        assert!(refused.is_err());
        assert_eq!(fs::metadata(rooms.path()).unwrap().ino(), inode);
        assert!(rooms.load().unwrap().get("#dev").unwrap().topic.is_none());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it_and_the_line() {
        let tmp = TempDir::new("rooms-corrupt");
        let rooms = RoomStore::open(&tmp.0).unwrap();
        fs::write(rooms.path(), "#dev\nnot-a-room\n").unwrap();
        let error = rooms.load().unwrap_err();
        assert!(matches!(error.cause, StoreErrorCause::Parse(ref e) if e.line == 2));
        assert_eq!(
            error.to_string(),
            format!(
                "{}: line 2: invalid room name not-a-room: use # then 1 to 32 letters, digits, '_', '-' or '.'",
                rooms.path().display()
            )
        );
        assert!(rooms.apply(&[add("#ops", None)]).is_err(), "never replaced");
        assert_eq!(
            fs::read_to_string(rooms.path()).unwrap(),
            "#dev\nnot-a-room\n"
        );
    }

    #[test]
    fn reading_a_missing_directory_creates_nothing() {
        let tmp = TempDir::new("rooms-missing");
        assert!(RoomStore::open_existing(&tmp.0).unwrap().is_none());
        assert!(!tmp.0.exists());
        fs::create_dir(&tmp.0).unwrap();
        let rooms = RoomStore::open_existing(&tmp.0).unwrap().unwrap();
        assert!(rooms.load().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(&tmp.0).unwrap().count(),
            0,
            "not even a lock file"
        );
    }

    #[test]
    fn two_handles_writing_at_once_lose_nothing() {
        let tmp = TempDir::new("rooms-two-handles");
        let writers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|prefix| {
                let rooms = RoomStore::open(&tmp.0).unwrap();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        rooms.apply(&[add(&format!("#{prefix}{i}"), None)]).unwrap();
                    }
                })
            })
            .collect();
        let reader = RoomStore::open(&tmp.0).unwrap();
        // A reader meanwhile always sees a whole file.
        for _ in 0..25 {
            reader.load().unwrap();
        }
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(reader.load().unwrap().len(), 50);
    }
}
