//! The accounts and bans files under the data directory.
//!
//! `DIR/accounts` and `DIR/bans` hold the [`Registry`] in the formats of [`crate::accounts::model`];
//! a missing file reads as empty. How they are locked and replaced (atomically, never in place)
//! is [`crate::datadir`]'s, shared with the rooms file: every read-modify-write holds the
//! directory's exclusive lock, so the server and any number of `chatd user` runs can change the
//! files at the same time without losing each other's changes.

use std::path::Path;

use super::model::{Change, Registry};
use crate::datadir::{parse_error, DataDir, FileStamp, Lock};
pub use crate::datadir::{StoreError, StoreErrorCause, LOCK_FILE};

/// The accounts file's name inside the data directory.
pub const ACCOUNTS_FILE: &str = "accounts";
/// The bans file's name inside the data directory.
pub const BANS_FILE: &str = "bans";

/// Where accounts and bans are kept: a data directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: DataDir,
}

/// What the two files looked like at one moment; a different stamp means they were replaced.
///
/// Compare stamps to notice changes made by another process (e.g. `chatd user`): take a stamp
/// *before* [`Store::load`], and reload when [`Store::stamp`] later differs. A change between the
/// stamp and the load then costs one extra reload, never a missed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    accounts: Option<FileStamp>,
    bans: Option<FileStamp>,
}

/// What [`Store::update_stamped`] wrote, and the files' stamps around the write.
#[derive(Clone, Debug)]
pub struct Written {
    /// The registry as written.
    pub registry: Registry,
    /// The stamp just before the write, under the lock.
    pub before: Stamp,
    /// The stamp just after it, under the lock.
    pub after: Stamp,
}

impl Store {
    /// Opens the data directory `dir`, creating it (mode 0700) if it does not exist.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        DataDir::open(dir).map(Store::on)
    }

    /// Opens the data directory `dir` for reading only: `None` if it does not exist, and nothing
    /// is created (not even the lock file: without one, no writer is there to wait for).
    pub fn open_existing(dir: &Path) -> Result<Option<Store>, StoreError> {
        DataDir::open_existing(dir).map(|dir| dir.map(Store::on))
    }

    /// The accounts and bans of a data directory already opened.
    pub fn on(dir: DataDir) -> Store {
        Store { dir }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory, to open the other stores on it.
    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    /// Reads both files under a shared lock (none if no writer ever made the lock file: reading
    /// creates nothing). A missing file is empty; an unreadable or corrupt one is an error naming
    /// it (and the line).
    pub fn load(&self) -> Result<Registry, StoreError> {
        let lock = self.dir.shared_lock()?;
        self.read(&lock)
    }

    /// Applies `changes` to the files as they are now, under the exclusive lock, and returns the
    /// registry as written.
    pub fn apply(&self, changes: &[Change]) -> Result<Registry, StoreError> {
        self.update(|_| Ok::<_, StoreError>(changes.to_vec()))
    }

    /// Under the exclusive lock: reads both files, asks `decide` for the changes to make given
    /// what is there now, applies them, and replaces each file whose text changed. Returns the
    /// registry as written.
    ///
    /// Use this to check and change in one step (e.g. "add bob unless bob exists"), so that two
    /// writers cannot both pass the check. If `decide` fails, nothing is written.
    pub fn update<E, F>(&self, decide: F) -> Result<Registry, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Registry) -> Result<Vec<Change>, E>,
    {
        self.update_stamped(decide).map(|written| written.registry)
    }

    /// [`Store::update`], also giving the files' [`Stamp`] just before and just after, both
    /// under the lock: a watcher that had seen `before` has seen every change but this one, and
    /// can take `after` as seen instead of mistaking its own write for another process's.
    pub fn update_stamped<E, F>(&self, decide: F) -> Result<Written, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Registry) -> Result<Vec<Change>, E>,
    {
        let lock = self.dir.exclusive_lock()?;
        let before = self.stamp();
        for name in [ACCOUNTS_FILE, BANS_FILE] {
            self.dir.remove_stale_temp_file(&lock, name)?;
        }
        let old = self.read(&lock)?;
        let changes = decide(&old)?;
        let mut new = old.clone();
        for change in &changes {
            new.apply(change);
        }
        let mut replaced = false;
        for (name, before, after) in [
            (ACCOUNTS_FILE, old.accounts_file(), new.accounts_file()),
            (BANS_FILE, old.bans_file(), new.bans_file()),
        ] {
            if before != after {
                // A new file is made mode 0600: it holds password hashes.
                self.dir.replace(&lock, name, &after, 0o600)?;
                replaced = true;
            }
        }
        if replaced {
            self.dir.sync(&lock)?;
        }
        Ok(Written {
            registry: new,
            before,
            after: self.stamp(),
        })
    }

    /// The files' current [`Stamp`].
    pub fn stamp(&self) -> Stamp {
        Stamp {
            accounts: self.dir.stamp(ACCOUNTS_FILE),
            bans: self.dir.stamp(BANS_FILE),
        }
    }

    fn read(&self, lock: &Lock) -> Result<Registry, StoreError> {
        let mut registry = Registry::default();
        if let Some(text) = self.dir.read(lock, ACCOUNTS_FILE)? {
            let path = self.dir.file(ACCOUNTS_FILE);
            registry.read_accounts(&text).map_err(parse_error(&path))?;
        }
        if let Some(text) = self.dir.read(lock, BANS_FILE)? {
            let path = self.dir.file(BANS_FILE);
            registry.read_bans(&text).map_err(parse_error(&path))?;
        }
        Ok(registry)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::accounts::model::{Account, Ban, Role};
    use crate::datadir::TempDir;

    fn put(name: &str, role: Role) -> Change {
        Change::PutAccount(Account {
            name: name.into(),
            role,
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${name}"),
        })
    }

    fn names(registry: &Registry) -> Vec<String> {
        registry.accounts().map(|a| a.name.clone()).collect()
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_directory_is_created_and_reads_as_empty() {
        let tmp = TempDir::new("store-new");
        let dir = tmp.0.join("nested").join("data");
        let store = Store::open(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(store.load().unwrap(), Registry::default());
        assert_eq!(store.stamp(), store.stamp());
    }

    #[test]
    fn an_empty_or_file_path_is_no_data_directory() {
        assert!(Store::open(Path::new("")).is_err());
        assert!(Store::open_existing(Path::new("")).is_err());
        let tmp = TempDir::new("store-file");
        fs::write(&tmp.0, "x").unwrap();
        let error = Store::open(&tmp.0).unwrap_err();
        assert!(
            error.to_string().ends_with("it is not a directory"),
            "{error}"
        );
        assert!(Store::open_existing(&tmp.0).is_err());
        fs::remove_file(&tmp.0).unwrap();
        assert!(Store::open_existing(&tmp.0).unwrap().is_none());
        assert!(!tmp.0.exists(), "open_existing creates nothing");
    }

    #[test]
    fn changes_round_trip_through_the_files() {
        let tmp = TempDir::new("store-round-trip");
        let store = Store::open(&tmp.0).unwrap();
        let ban = Ban {
            name: "mallory".into(),
            by: "Host".into(),
            at: 1_700_000_000,
            reason: Some("spam".into()),
        };
        let written = store
            .apply(&[
                put("alice", Role::Admin),
                put("Bob", Role::User),
                Change::PutBan(ban.clone()),
            ])
            .unwrap();
        let read = Store::open(&tmp.0).unwrap().load().unwrap();
        assert_eq!(read, written);
        assert_eq!(names(&read), ["alice", "Bob"]);
        assert_eq!(read.ban("Mallory"), Some(&ban));
        let text = fs::read_to_string(tmp.0.join(ACCOUNTS_FILE)).unwrap();
        assert!(text.contains("\nalice admin $argon2id$"), "{text}");
        let mode = fs::metadata(tmp.0.join(ACCOUNTS_FILE)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);

        let after = store
            .apply(&[
                Change::RemoveAccount { name: "BOB".into() },
                Change::SetRole {
                    name: "alice".into(),
                    role: Role::User,
                },
                Change::RemoveBan {
                    name: "mallory".into(),
                },
            ])
            .unwrap();
        assert_eq!(store.load().unwrap(), after);
        assert_eq!(after.account("alice").map(|a| a.role), Some(Role::User));
        assert_eq!(names(&after), ["alice"]);
        assert_eq!(after.bans().count(), 0);
    }

    #[test]
    fn replacing_leaves_no_temporary_files_and_keeps_the_mode() {
        let tmp = TempDir::new("store-no-temp");
        let store = Store::open(&tmp.0).unwrap();
        for i in 0..5 {
            store
                .apply(&[put(&format!("user{i}"), Role::User)])
                .unwrap();
        }
        store
            .apply(&[Change::PutBan(Ban {
                name: "eve".into(),
                by: "Host".into(),
                at: 1,
                reason: None,
            })])
            .unwrap();
        assert_eq!(listing(&tmp.0), [".lock", "accounts", "bans"]);

        // An operator's chmod survives the next replace.
        let accounts = tmp.0.join(ACCOUNTS_FILE);
        fs::set_permissions(&accounts, fs::Permissions::from_mode(0o640)).unwrap();
        store.apply(&[put("late", Role::User)]).unwrap();
        assert_eq!(fs::metadata(&accounts).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn a_writer_removes_what_a_killed_writer_left() {
        let tmp = TempDir::new("store-stale");
        let store = Store::open(&tmp.0).unwrap();
        store.apply(&[put("alice", Role::User)]).unwrap();
        fs::write(tmp.0.join(".accounts.tmp"), "alice adm").unwrap();
        fs::write(tmp.0.join(".bans.tmp"), "").unwrap();
        assert_eq!(names(&store.load().unwrap()), ["alice"]);
        store.apply(&[put("bob", Role::User)]).unwrap();
        assert_eq!(listing(&tmp.0), [".lock", "accounts"]);
    }

    #[test]
    fn a_corrupt_file_is_named_with_its_line_and_never_replaced() {
        let tmp = TempDir::new("store-corrupt");
        let store = Store::open(&tmp.0).unwrap();
        let accounts = tmp.0.join(ACCOUNTS_FILE);
        let text = "# accounts\nalice admin $argon2id$x\nbob wizard $argon2id$y\n";
        fs::write(&accounts, text).unwrap();
        let error = store.load().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: line 3: the role must be admin or user",
                accounts.display()
            )
        );
        assert!(store.apply(&[put("carol", Role::User)]).is_err());
        assert_eq!(fs::read_to_string(&accounts).unwrap(), text);

        let bans = tmp.0.join(BANS_FILE);
        fs::write(&accounts, "").unwrap();
        fs::write(&bans, b"# bans\neve\tHost\t1\tbad \xff byte\n").unwrap();
        let error = store.load().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{}: line 2: not valid UTF-8", bans.display())
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let tmp = TempDir::new("store-unreadable");
        let store = Store::open(&tmp.0).unwrap();
        let accounts = tmp.0.join(ACCOUNTS_FILE);
        fs::create_dir(&accounts).unwrap();
        let error = store.load().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: cannot read: ", accounts.display())),
            "{error}"
        );
        assert!(matches!(error.cause, StoreErrorCause::Io { .. }));
    }

    #[test]
    fn update_checks_and_changes_in_one_step() {
        let tmp = TempDir::new("store-update");
        let store = Store::open(&tmp.0).unwrap();
        store.apply(&[put("alice", Role::User)]).unwrap();
        let stamp = store.stamp();
        #[derive(Debug)]
        enum Refused {
            Exists,
            Store,
        }
        impl From<StoreError> for Refused {
            fn from(_: StoreError) -> Refused {
                Refused::Store
            }
        }
        let add_alice = |registry: &Registry| {
            if registry.account("ALICE").is_some() {
                return Err(Refused::Exists);
            }
            Ok(vec![put("alice", Role::Admin)])
        };
        assert!(matches!(store.update(add_alice), Err(Refused::Exists)));
        assert_eq!(store.stamp(), stamp, "a refused update writes nothing");
        // A change that changes nothing writes nothing either.
        store.apply(&[put("alice", Role::User)]).unwrap();
        assert_eq!(store.stamp(), stamp);
        store.apply(&[put("bob", Role::User)]).unwrap();
        assert_ne!(store.stamp(), stamp);
    }

    #[test]
    fn an_update_gives_the_stamps_around_its_own_write() {
        let tmp = TempDir::new("store-stamped");
        let store = Store::open(&tmp.0).unwrap();
        let seen = store.stamp();
        let written = store
            .update_stamped(|_| Ok::<_, StoreError>(vec![put("alice", Role::User)]))
            .unwrap();
        assert_eq!(written.before, seen);
        assert_eq!(written.after, store.stamp());
        assert_ne!(written.after, seen);
        // Another writer's change shows as a `before` the watcher had not seen.
        store.apply(&[put("bob", Role::User)]).unwrap();
        let next = store
            .update_stamped(|_| Ok::<_, StoreError>(vec![put("carol", Role::User)]))
            .unwrap();
        assert_ne!(next.before, written.after);
    }

    #[test]
    fn two_handles_writing_at_once_lose_nothing() {
        let tmp = TempDir::new("store-two-handles");
        let first = Store::open(&tmp.0).unwrap();
        let second = Store::open(&tmp.0).unwrap();
        let writers: Vec<_> = [("a", first.clone()), ("b", second)]
            .into_iter()
            .map(|(prefix, store)| {
                std::thread::spawn(move || {
                    for i in 0..25 {
                        store
                            .apply(&[put(&format!("{prefix}{i}"), Role::User)])
                            .unwrap();
                    }
                })
            })
            .collect();
        // A reader meanwhile always sees whole files.
        for _ in 0..25 {
            first.load().unwrap();
        }
        for writer in writers {
            writer.join().unwrap();
        }
        let registry = first.load().unwrap();
        assert_eq!(registry.accounts().count(), 50);
        for i in 0..25 {
            assert!(registry.account(&format!("a{i}")).is_some());
            assert!(registry.account(&format!("b{i}")).is_some());
        }
    }
}
