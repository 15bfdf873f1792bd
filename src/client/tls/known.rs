//! The servers whose certificates the user trusted on first use, as ssh keeps `known_hosts`.
//!
//! The file is `$XDG_CONFIG_HOME/chatd/known_servers`, else `~/.config/chatd/known_servers`. It is
//! text, one server a line: `HOST:PORT SHA256:AB:CD:...` (the host in lower case, an IPv6
//! address in brackets: `[::1]:3001`), blank lines and lines starting with `#` ignored. A host may
//! have several lines (a certificate being replaced): a certificate matching any of them is
//! known. The client appends to it when the user accepts a certificate, and creates it mode 0600
//! in a directory of mode 0700. A line it cannot read is skipped, never rewritten.
//!
//! [`KnownServers`] is the pure model (parse, look up, add); [`path`], [`load`] and [`remember`]
//! are its file I/O.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::tls::Fingerprint;

/// The file's name inside the user's configuration directory.
const FILE: &str = "chatd/known_servers";

/// One readable line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its line number, from 1.
    pub line: usize,
    /// `host:port`, as [`server_key`] makes it.
    pub server: String,
    /// The certificate trusted for it.
    pub fingerprint: Fingerprint,
}

/// What the file says about a certificate a server showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The server has no line.
    Unknown,
    /// A line of the server holds this certificate.
    Known {
        /// That line's number.
        line: usize,
    },
    /// The server has lines, none with this certificate.
    Changed {
        /// The certificate the first of them holds.
        expected: Fingerprint,
        /// Its line number.
        line: usize,
    },
}

/// The file's contents, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownServers {
    entries: Vec<Entry>,
    /// Lines in the file, counted as [`str::lines`] does.
    lines: usize,
    /// Whether the text ends without a line end (so an added line needs one before it).
    unterminated: bool,
}

/// The key a server is kept under: `host:port`, the host in lower case and an IPv6 address in
/// brackets.
pub fn server_key(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl KnownServers {
    /// Reads the file's `text`; lines that are not `HOST:PORT FINGERPRINT` are skipped.
    pub fn parse(text: &str) -> KnownServers {
        let mut entries = Vec::new();
        let mut lines = 0;
        for (index, line) in text.lines().enumerate() {
            lines = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(server), Some(print), None) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if let Ok(fingerprint) = print.parse::<Fingerprint>() {
                entries.push(Entry {
                    line: lines,
                    server: server.to_ascii_lowercase(),
                    fingerprint,
                });
            }
        }
        KnownServers {
            entries,
            lines,
            unterminated: !text.is_empty() && !text.ends_with('\n'),
        }
    }

    /// The readable lines, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// What the file says about `seen`, shown by `server` (a [`server_key`]).
    pub fn lookup(&self, server: &str, seen: &Fingerprint) -> Lookup {
        let server = server.to_ascii_lowercase();
        let mut first = None;
        for entry in self.entries.iter().filter(|e| e.server == server) {
            if entry.fingerprint == *seen {
                return Lookup::Known { line: entry.line };
            }
            first.get_or_insert(entry);
        }
        match first {
            Some(entry) => Lookup::Changed {
                expected: entry.fingerprint,
                line: entry.line,
            },
            None => Lookup::Unknown,
        }
    }

    /// Adds a line trusting `fingerprint` for `server`; returns the text to append to the file
    /// (a line end first if the file lacked its last one) and the new line's number.
    pub fn add(&mut self, server: &str, fingerprint: Fingerprint) -> (String, usize) {
        let server = server.to_ascii_lowercase();
        let mut text = String::new();
        if self.unterminated {
            text.push('\n');
            self.unterminated = false;
        }
        text.push_str(&format!("{server} {fingerprint}\n"));
        self.lines += 1;
        self.entries.push(Entry {
            line: self.lines,
            server,
            fingerprint,
        });
        (text, self.lines)
    }
}

/// Where the file is, from the values of `XDG_CONFIG_HOME` and `HOME` (a relative or empty
/// `XDG_CONFIG_HOME` is ignored, as the XDG specification says); `None` without either.
pub fn path(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute =
        |value: Option<OsString>| value.map(PathBuf::from).filter(|path| path.is_absolute());
    absolute(xdg_config_home)
        .or_else(|| absolute(home).map(|home| home.join(".config")))
        .map(|config| config.join(FILE))
}

/// The file for this user, from the environment.
pub fn user_path() -> Option<PathBuf> {
    path(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// Reads the file at `path`; a missing file is an empty one.
pub fn load(path: &Path) -> io::Result<KnownServers> {
    match fs::read(path) {
        Ok(bytes) => Ok(KnownServers::parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(KnownServers::default()),
        Err(e) => Err(e),
    }
}

/// Appends a line trusting `fingerprint` for `server` to the file at `path`, creating it (mode
/// 0600) and its directory (mode 0700) if need be; returns the new line's number.
pub fn remember(path: &Path, server: &str, fingerprint: Fingerprint) -> io::Result<usize> {
    if let Some(dir) = path.parent() {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut known = load(path)?;
    let (text, line) = known.add(server, fingerprint);
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(seed: &[u8]) -> Fingerprint {
        Fingerprint::of(seed)
    }

    #[test]
    fn keys_are_lower_case_with_ipv6_in_brackets() {
        assert_eq!(
            server_key("Chat.Example.ORG", 3001),
            "chat.example.org:3001"
        );
        assert_eq!(server_key("::1", 3001), "[::1]:3001");
        assert_eq!(server_key("[::1]", 3001), "[::1]:3001");
        assert_eq!(server_key("127.0.0.1", 7), "127.0.0.1:7");
    }

    #[test]
    fn parse_skips_comments_blank_and_unreadable_lines_and_keeps_line_numbers() {
        let a = print(b"a");
        let b = print(b"b");
        let text = format!(
            "# trusted chat servers\n\nlocalhost:3001 {a}\nnot a line\nHOST:9 {b}  \nx:1 SHA256:12\n"
        );
        let known = KnownServers::parse(&text);
        assert_eq!(
            known.entries(),
            &[
                Entry {
                    line: 3,
                    server: "localhost:3001".into(),
                    fingerprint: a
                },
                Entry {
                    line: 5,
                    server: "host:9".into(),
                    fingerprint: b
                },
            ]
        );
    }

    #[test]
    fn lookup_tells_known_changed_and_unknown() {
        let (a, b, c) = (print(b"a"), print(b"b"), print(b"c"));
        let known = KnownServers::parse(&format!(
            "localhost:3001 {a}\nother:3001 {c}\nlocalhost:3001 {b}\n"
        ));
        assert_eq!(
            known.lookup("localhost:3001", &a),
            Lookup::Known { line: 1 }
        );
        assert_eq!(
            known.lookup("LocalHost:3001", &b),
            Lookup::Known { line: 3 }
        );
        assert_eq!(
            known.lookup("localhost:3001", &c),
            Lookup::Changed {
                expected: a,
                line: 1
            }
        );
        assert_eq!(known.lookup("localhost:3002", &a), Lookup::Unknown);
    }

    #[test]
    fn add_gives_the_line_to_append_and_its_number() {
        let (a, b) = (print(b"a"), print(b"b"));
        let mut known = KnownServers::parse(&format!("# mine\nold:1 {a}"));
        let (text, line) = known.add("New:2", b);
        assert_eq!(text, format!("\nnew:2 {b}\n"));
        assert_eq!(line, 3);
        assert_eq!(known.lookup("new:2", &b), Lookup::Known { line: 3 });
        let mut empty = KnownServers::parse("");
        assert_eq!(empty.add("x:1", a), (format!("x:1 {a}\n"), 1));
    }

    #[test]
    fn path_prefers_an_absolute_xdg_config_home_then_home() {
        let p = |x: Option<&str>, h: Option<&str>| path(x.map(Into::into), h.map(Into::into));
        assert_eq!(
            p(Some("/x/cfg"), Some("/home/u")),
            Some(PathBuf::from("/x/cfg/chatd/known_servers"))
        );
        assert_eq!(
            p(Some("relative"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.config/chatd/known_servers"))
        );
        assert_eq!(
            p(Some(""), Some("/home/u")),
            Some(PathBuf::from("/home/u/.config/chatd/known_servers"))
        );
        assert_eq!(p(None, None), None);
    }

    #[test]
    fn remember_creates_the_file_private_and_appends() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::datadir::TempDir::new("known-servers");
        let file = dir.0.join("cfg/chatd/known_servers");
        let (a, b) = (print(b"a"), print(b"b"));
        assert_eq!(remember(&file, "localhost:3001", a).ok(), Some(1));
        assert_eq!(remember(&file, "[::1]:3001", b).ok(), Some(2));
        let text = fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(text, format!("localhost:3001 {a}\n[::1]:3001 {b}\n"));
        let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok();
        assert_eq!(mode(&file), Some(0o600));
        assert_eq!(mode(&dir.0.join("cfg/chatd")), Some(0o700));
        let known = load(&file).unwrap_or_default();
        assert_eq!(known.lookup("[::1]:3001", &b), Lookup::Known { line: 2 });
    }
}
