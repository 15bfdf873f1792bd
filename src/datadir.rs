//! The data directory: locked, atomic replacement of the small text files under it.
//!
//! Shared by the accounts store ([`crate::accounts::store`]) and the rooms store
//! ([`crate::rooms::store`]); each owns its files' formats, this owns how they are read and
//! written. Every read-modify-write holds an exclusive lock on `DIR/.lock` (reads hold a shared
//! one, or none if no writer ever made the lock file), so the server and any number of offline
//! `chatd user` / `chatd room` runs can change the files at the same time without losing each
//! other's changes. A file is never written in place: the new text goes to `DIR/.NAME.tmp`, is
//! synced, renamed over `DIR/NAME`, and the directory is synced, so a crash at any moment leaves
//! the old file or the new one, never a torn one.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory; it stays empty.
pub const LOCK_FILE: &str = ".lock";

/// A data directory, opened.
#[derive(Clone, Debug)]
pub struct DataDir {
    dir: PathBuf,
}

/// A lock held on the data directory: shared (to read) or exclusive (to write); released when
/// dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: Option<File>,
    exclusive: bool,
}

/// A line of a data-directory file that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// A store operation that failed, with the file it failed on.
#[derive(Debug)]
pub struct StoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong with it.
    pub cause: StoreErrorCause,
}

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreErrorCause {
    /// The operating system refused.
    Io {
        /// What was being done, e.g. `read` or `lock`.
        action: &'static str,
        /// The error it gave.
        error: io::Error,
    },
    /// The file's content is not in its format.
    Parse(ParseError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            StoreErrorCause::Io { action, error } => {
                write!(f, "{}: cannot {action}: {error}", self.path.display())
            }
            StoreErrorCause::Parse(error) => write!(f, "{}: {error}", self.path.display()),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            StoreErrorCause::Io { error, .. } => Some(error),
            StoreErrorCause::Parse(error) => Some(error),
        }
    }
}

/// An empty path names no directory (joined with a file name it would be the working one).
fn refuse_empty(dir: &Path) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() {
        return Err(io_error(dir, "use it as the data directory")(
            io::Error::new(io::ErrorKind::InvalidInput, "the path is empty"),
        ));
    }
    Ok(())
}

/// The error of `action` on `path`, for `map_err`.
pub fn io_error<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError {
        path: path.to_owned(),
        cause: StoreErrorCause::Io { action, error },
    }
}

/// Identity and times of one file: every replace makes a new inode with new times, so a
/// different stamp means the file was replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let meta = fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

impl DataDir {
    /// Opens the data directory `dir`, creating it (mode 0700) if it does not exist.
    pub fn open(dir: &Path) -> Result<DataDir, StoreError> {
        refuse_empty(dir)?;
        if fs::metadata(dir).is_ok_and(|meta| !meta.is_dir()) {
            return Err(io_error(dir, "use it as the data directory")(
                io::Error::new(io::ErrorKind::NotADirectory, "it is not a directory"),
            ));
        }
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir, "create the data directory"))?;
        Ok(DataDir {
            dir: dir.to_owned(),
        })
    }

    /// Opens the data directory `dir` for reading only: `None` if it does not exist, and nothing
    /// is created (not even the lock file: without one, no writer is there to wait for).
    pub fn open_existing(dir: &Path) -> Result<Option<DataDir>, StoreError> {
        refuse_empty(dir)?;
        match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(dir, "read the data directory")(e)),
            Ok(meta) if !meta.is_dir() => Err(io_error(dir, "use it as the data directory")(
                io::Error::new(io::ErrorKind::NotADirectory, "it is not a directory"),
            )),
            Ok(_) => Ok(Some(DataDir {
                dir: dir.to_owned(),
            })),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of the file `name` in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The [`FileStamp`] of the file `name`, `None` if it does not exist.
    pub fn stamp(&self, name: &str) -> Option<FileStamp> {
        FileStamp::of(&self.file(name))
    }

    /// Takes the shared lock if the lock file exists (none is needed if it does not: no writer
    /// ever ran, and reading creates nothing).
    pub fn shared_lock(&self) -> Result<Lock, StoreError> {
        let path = self.file(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Lock {
                    _file: None,
                    exclusive: false,
                })
            }
            Err(e) => return Err(io_error(&path, "open the lock file")(e)),
        };
        file.lock_shared().map_err(io_error(&path, "lock"))?;
        Ok(Lock {
            _file: Some(file),
            exclusive: false,
        })
    }

    /// Takes the exclusive lock, making the lock file if needed.
    pub fn exclusive_lock(&self) -> Result<Lock, StoreError> {
        let path = self.file(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            // A lock file made by another user may be read-only to us; a read-only descriptor
            // locks just as well.
            .or_else(|_| File::open(&path))
            .map_err(io_error(&path, "open the lock file"))?;
        file.lock().map_err(io_error(&path, "lock"))?;
        Ok(Lock {
            _file: Some(file),
            exclusive: true,
        })
    }

    /// The text of the file `name`, or `None` if it does not exist. Invalid UTF-8 is a parse
    /// error on its line. Call it holding either lock.
    pub fn read(&self, _lock: &Lock, name: &str) -> Result<Option<String>, StoreError> {
        let path = self.file(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, "read")(e)),
        };
        String::from_utf8(bytes).map(Some).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            parse_error(&path)(ParseError {
                line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                reason: "not valid UTF-8".to_owned(),
            })
        })
    }

    fn temp_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.tmp"))
    }

    /// Removes what a writer killed mid-write left behind for the file `name`.
    pub fn remove_stale_temp_file(&self, lock: &Lock, name: &str) -> Result<(), StoreError> {
        debug_assert!(lock.exclusive, "only under the exclusive lock");
        let temp = self.temp_path(name);
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_error(&temp, "remove the stale temporary file")(e))
            }
            _ => Ok(()),
        }
    }

    /// Replaces the file `name` with `text`: temp file, write, fsync, rename. A new file gets
    /// `mode`; a replaced one keeps its permissions and, where allowed, its owner. Call
    /// [`DataDir::sync`] after the last replace.
    pub fn replace(
        &self,
        lock: &Lock,
        name: &str,
        text: &str,
        mode: u32,
    ) -> Result<(), StoreError> {
        debug_assert!(lock.exclusive, "only under the exclusive lock");
        let path = self.file(name);
        let temp = self.temp_path(name);
        let written = write_synced(&temp, text, mode, fs::metadata(&path).ok());
        let result =
            written.and_then(|()| fs::rename(&temp, &path).map_err(io_error(&path, "replace")));
        if result.is_err() {
            // Best effort: the next writer removes it anyway.
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Syncs the directory, so that the renames of [`DataDir::replace`] survive a crash.
    pub fn sync(&self, _lock: &Lock) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(&self.dir, "sync the data directory"))
    }
}

/// Writes `text` to a new file at `temp` and syncs it. The file gets the permissions and, where
/// allowed, the owner of the file it will replace (`old`), else `mode`.
fn write_synced(
    temp: &Path,
    text: &str,
    mode: u32,
    old: Option<fs::Metadata>,
) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(temp)
        .map_err(io_error(temp, "create"))?;
    if let Some(old) = old {
        file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
            .map_err(io_error(temp, "set the permissions of"))?;
        let mine = file
            .metadata()
            .map_err(io_error(temp, "read the owner of"))?;
        if (mine.uid(), mine.gid()) != (old.uid(), old.gid()) {
            // Keeps a file made by root for the server's user readable by it; without the
            // privilege to do so the new file stays ours, as with any editor.
            let _ = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()));
        }
    }
    file.write_all(text.as_bytes())
        .map_err(io_error(temp, "write"))?;
    file.sync_all().map_err(io_error(temp, "sync"))
}

/// The error of a file `path` whose content is not in its format, for `map_err`.
pub fn parse_error(path: &Path) -> impl FnOnce(ParseError) -> StoreError + '_ {
    move |error| StoreError {
        path: path.to_owned(),
        cause: StoreErrorCause::Parse(error),
    }
}

/// A fresh directory under the system's temp dir for the stores' tests, removed on drop.
#[cfg(test)]
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

#[cfg(test)]
impl TempDir {
    /// `chatd-NAME-PID` under the temp dir, emptied first.
    pub(crate) fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("chatd-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

#[cfg(test)]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
