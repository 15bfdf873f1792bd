//! The log's two destinations beside stderr's warnings: a `--log-file` that SIGHUP opens again
//! at its path (logrotate moves the file, then signals), and the journal, when systemd started
//! chatd with stderr connected to it.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Every log file opened with [`LogFile::open`], for [`reopen`].
static OPEN: Mutex<Vec<Arc<Shared>>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    file: Mutex<File>,
}

/// A log file that [`reopen`] can open again at its path; a writer for a logger.
#[derive(Debug)]
pub struct LogFile {
    shared: Arc<Shared>,
}

/// Opens `path` to append to it, made mode 0600 if new (at debug level it holds chat text).
fn open_append(path: &Path) -> io::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl LogFile {
    /// Opens `path` for appending (made mode 0600 if new) and keeps it for [`reopen`].
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            file: Mutex::new(open_append(path)?),
        });
        OPEN.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&shared));
        Ok(LogFile { shared })
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self
            .shared
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut file = self
            .shared
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        file.flush()
    }
}

/// Opens every log file again at its path, so that lines from now on go to a new file there
/// when the old one was moved away. A file that cannot be opened again keeps the old one, and
/// the failure is logged.
pub fn reopen() {
    let open: Vec<Arc<Shared>> = OPEN.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for shared in open {
        // The new file is swapped in before anything is logged: the logger writes through the
        // same lock.
        let outcome = open_append(&shared.path).map(|file| {
            *shared.file.lock().unwrap_or_else(PoisonError::into_inner) = file;
        });
        match outcome {
            Ok(()) => log::info!("SIGHUP: log file {} opened again", shared.path.display()),
            Err(e) => log::error!(
                "SIGHUP: cannot open the log file {} again, still writing the old one: {e}",
                shared.path.display()
            ),
        }
    }
}

/// Whether stderr is connected to the journal: `JOURNAL_STREAM` (set by systemd) names the
/// device and inode of stderr. A `JOURNAL_STREAM` inherited by a process whose stderr went
/// elsewhere does not count.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    rustix::fs::fstat(io::stderr()).is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
}

/// Log lines for the journal on stderr: no time stamp (the journal adds its own), and the
/// level as the `<N>` syslog priority prefix that systemd reads (sd-daemon(3)).
#[derive(Debug)]
pub struct JournalLogger {
    level: LevelFilter,
    config: simplelog::Config,
}

impl JournalLogger {
    /// Logs at `level` and above.
    pub fn new(level: LevelFilter) -> Box<JournalLogger> {
        Box::new(JournalLogger {
            level,
            config: simplelog::Config::default(),
        })
    }
}

/// The syslog priority of `level`: err, warning, info, debug.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for JournalLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("<{}>{}\n", priority(record.level()), record.args());
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        let _ = io::stderr().flush();
    }
}

impl simplelog::SharedLogger for JournalLogger {
    fn level(&self) -> LevelFilter {
        self.level
    }

    fn config(&self) -> Option<&simplelog::Config> {
        Some(&self.config)
    }

    fn as_log(self: Box<Self>) -> Box<dyn Log> {
        self
    }
}
