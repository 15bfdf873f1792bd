//! `chatd user ...`: offline account management on the data directory, like htpasswd.
//!
//! Safe while the server runs: every change is checked and written under the store's lock, and
//! the slow password hash is computed before the lock is taken.

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;

use super::hash::{self, HashError};
use super::model::{Account, Change, Registry, Role};
use super::store::{Store, StoreError};
use crate::names::validate_name;
use crate::proto::msg::Reject;

/// The one name the operator may not register: the host console speaks as it.
const HOST_NAME: &str = "Host";

/// One `chatd user` subcommand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserCommand {
    /// Registers a new name with a password.
    Add {
        /// The name.
        name: String,
        /// Whether it gets the admin role (else user).
        admin: bool,
    },
    /// Removes an account.
    Del {
        /// The name.
        name: String,
    },
    /// Sets a new password for an account.
    Passwd {
        /// The name.
        name: String,
    },
    /// Sets the role of an account.
    Grant {
        /// The name.
        name: String,
        /// The new role.
        role: Role,
    },
    /// Prints `NAME ROLE` for every account.
    List,
}

/// Why a `chatd user` command failed.
#[derive(Debug)]
pub enum UserError {
    /// The data directory or one of its files failed.
    Store(StoreError),
    /// The name breaks the name rules or is the host's.
    BadName {
        /// The name as given.
        name: String,
        /// Which rule.
        reason: Reject,
    },
    /// `add` of a name that has an account (any case).
    Exists {
        /// The name as registered.
        name: String,
    },
    /// A command on a name that has no account.
    Unknown {
        /// The name as given.
        name: String,
    },
    /// No usable password was given; the text says why.
    Password(String),
    /// The password could not be hashed.
    Hash(HashError),
    /// Standard output could not be written.
    Output(io::Error),
    /// The accounts kept elsewhere than in files (a cluster's Redis) could not be read or
    /// written; the text says why.
    Remote(String),
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::Store(e) => e.fmt(f),
            UserError::BadName { name, reason } => {
                write!(f, "cannot use the name {name:?}: {reason}")
            }
            UserError::Exists { name } => write!(f, "an account named {name:?} exists already"),
            UserError::Unknown { name } => write!(f, "no account named {name:?}"),
            UserError::Password(reason) => f.write_str(reason),
            UserError::Hash(e) => e.fmt(f),
            UserError::Output(e) => write!(f, "cannot write the output: {e}"),
            UserError::Remote(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for UserError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UserError::Store(e) => Some(e),
            UserError::Hash(e) => Some(e),
            UserError::Output(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> UserError {
        UserError::Store(e)
    }
}

/// Checks a name for `add`: the name rules, where reserved names are allowed to the operator
/// except the host's own.
pub fn check_new_name(name: &str) -> Result<(), UserError> {
    match validate_name(name) {
        Ok(()) => Ok(()),
        Err(Reject::NameReserved) if !name.eq_ignore_ascii_case(HOST_NAME) => Ok(()),
        Err(reason) => Err(UserError::BadName {
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Where `chatd user` finds the accounts: the data directory's files, or a cluster's Redis.
pub trait AccountBook {
    /// The accounts and bans as they are now.
    fn load(&mut self) -> Result<Registry, UserError>;
    /// Asks `decide` for the changes to make given the accounts as they are, and makes them in
    /// one step with the reading (another writer cannot slip in between); returns the registry
    /// as written. `decide` may be asked again if another writer came first.
    fn update(
        &mut self,
        decide: &mut dyn FnMut(&Registry) -> Result<Vec<Change>, UserError>,
    ) -> Result<Registry, UserError>;
    /// Where the accounts are, for a person: a directory, or the cluster's Redis.
    fn place(&self) -> String;
}

/// The data directory's files as an [`AccountBook`].
struct Files<'a> {
    store: Store,
    dir: &'a Path,
}

impl AccountBook for Files<'_> {
    fn load(&mut self) -> Result<Registry, UserError> {
        Ok(self.store.load()?)
    }

    fn update(
        &mut self,
        decide: &mut dyn FnMut(&Registry) -> Result<Vec<Change>, UserError>,
    ) -> Result<Registry, UserError> {
        self.store.update(decide)
    }

    fn place(&self) -> String {
        dir_place(self.dir)
    }
}

/// The data directory `dir` as [`AccountBook::place`] says it.
fn dir_place(dir: &Path) -> String {
    let missing = if dir.exists() {
        ""
    } else {
        " (it does not exist yet: `chatd user add` makes it)"
    };
    format!("{}{missing}", dir.display())
}

/// Runs `command` on the data directory `data_dir`. Only `add` creates it if missing; the other
/// commands create nothing (`list` of a missing directory lists no accounts).
///
/// `password(name)` is asked for a password only by `add` and `passwd`, and only after the name
/// was checked; [`read_password`] is the one the binary uses. Results go to `out`; a note for
/// the person reading (there are no accounts) goes to `notes`.
pub fn run(
    data_dir: &Path,
    command: &UserCommand,
    password: impl FnOnce(&str) -> Result<String, UserError>,
    out: &mut impl Write,
    notes: &mut impl Write,
) -> Result<(), UserError> {
    let store = match command {
        UserCommand::Add { .. } => Store::open(data_dir)?,
        _ => match Store::open_existing(data_dir)? {
            Some(store) => store,
            None => {
                return match command {
                    UserCommand::Del { name }
                    | UserCommand::Passwd { name }
                    | UserCommand::Grant { name, .. } => {
                        Err(UserError::Unknown { name: name.clone() })
                    }
                    _ => note_no_accounts(&dir_place(data_dir), notes),
                };
            }
        },
    };
    run_on(
        &mut Files {
            store,
            dir: data_dir,
        },
        command,
        password,
        out,
        notes,
    )
}

/// Runs `command` on the accounts in `book` (see [`run`]).
pub fn run_on(
    book: &mut dyn AccountBook,
    command: &UserCommand,
    password: impl FnOnce(&str) -> Result<String, UserError>,
    out: &mut impl Write,
    notes: &mut impl Write,
) -> Result<(), UserError> {
    let message = match command {
        UserCommand::Add { name, admin } => {
            check_new_name(name)?;
            refuse_existing(&book.load()?, name)?;
            let password_hash = hash::hash_password(&password(name)?).map_err(UserError::Hash)?;
            let role = if *admin { Role::Admin } else { Role::User };
            let account = Account {
                name: name.clone(),
                role,
                password_hash,
            };
            // Checked again as it is written: another writer may have added it meanwhile.
            book.update(&mut |registry| {
                refuse_existing(registry, name)?;
                Ok(vec![Change::PutAccount(account.clone())])
            })?;
            format!("added {name} as {role}\n")
        }
        UserCommand::Del { name } => {
            let mut registered = None;
            book.update(&mut |registry| {
                let account = existing(registry, name)?;
                registered = Some(account.name.clone());
                Ok(vec![Change::RemoveAccount {
                    name: account.name.clone(),
                }])
            })?;
            format!("removed {}\n", registered.as_deref().unwrap_or(name))
        }
        UserCommand::Passwd { name } => {
            existing(&book.load()?, name)?;
            let password_hash = hash::hash_password(&password(name)?).map_err(UserError::Hash)?;
            book.update(&mut |registry| {
                let account = existing(registry, name)?;
                Ok(vec![Change::SetPassword {
                    name: account.name.clone(),
                    password_hash: password_hash.clone(),
                }])
            })?;
            format!("changed the password of {name}\n")
        }
        UserCommand::Grant { name, role } => {
            book.update(&mut |registry| {
                let account = existing(registry, name)?;
                Ok(vec![Change::SetRole {
                    name: account.name.clone(),
                    role: *role,
                }])
            })?;
            format!("{name} is now {role}\n")
        }
        UserCommand::List => {
            let listing: String = book
                .load()?
                .accounts()
                .map(|account| format!("{} {}\n", account.name, account.role))
                .collect();
            if listing.is_empty() {
                return note_no_accounts(&book.place(), notes);
            }
            listing
        }
    };
    out.write_all(message.as_bytes())
        .and_then(|()| out.flush())
        .map_err(UserError::Output)
}

/// Tells the reader that `place` holds no accounts (its listing, on stdout, stays empty).
fn note_no_accounts(place: &str, notes: &mut impl Write) -> Result<(), UserError> {
    writeln!(notes, "no accounts in {place}").map_err(UserError::Output)
}

fn refuse_existing(registry: &Registry, name: &str) -> Result<(), UserError> {
    match registry.account(name) {
        Some(account) => Err(UserError::Exists {
            name: account.name.clone(),
        }),
        None => Ok(()),
    }
}

fn existing<'r>(registry: &'r Registry, name: &str) -> Result<&'r Account, UserError> {
    registry.account(name).ok_or_else(|| UserError::Unknown {
        name: name.to_owned(),
    })
}

/// The password for `name`: one line from stdin when stdin is not a terminal (scripts, tests),
/// else typed twice at the terminal without echo.
pub fn read_password(name: &str) -> Result<String, UserError> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return password_from_line(&mut stdin.lock());
    }
    let prompt = |text: String| {
        rpassword::prompt_password(text)
            .map_err(|e| UserError::Password(format!("cannot read the password: {e}")))
    };
    let first = prompt(format!("Password for {name}: "))?;
    check_password(&first)?;
    let second = prompt(format!("Password for {name} again: "))?;
    if first != second {
        return Err(UserError::Password("the passwords do not match".to_owned()));
    }
    Ok(first)
}

/// Reads one line from `input` as the password, without its line ending.
pub fn password_from_line(input: &mut impl BufRead) -> Result<String, UserError> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .map_err(|e| UserError::Password(format!("cannot read the password from stdin: {e}")))?;
    if read == 0 {
        return Err(UserError::Password(
            "no password on stdin (give it as one line)".to_owned(),
        ));
    }
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    check_password(password)?;
    Ok(password.to_owned())
}

fn check_password(password: &str) -> Result<(), UserError> {
    if password.is_empty() {
        return Err(UserError::Password("the password is empty".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_one_line_without_its_ending() {
        let read = |bytes: &[u8]| password_from_line(&mut &bytes[..]).map_err(|e| e.to_string());
        assert_eq!(read(b"s3cret\n"), Ok("s3cret".to_owned()));
        assert_eq!(
            read(b"with space\r\nnext line\n"),
            Ok("with space".to_owned())
        );
        assert_eq!(read(b"no newline"), Ok("no newline".to_owned()));
        assert_eq!(read(b"\n"), Err("the password is empty".to_owned()));
        assert!(read(b"").unwrap_err().starts_with("no password on stdin"));
        assert!(read(b"\xff\n").is_err());
    }

    #[test]
    fn the_operator_may_add_reserved_names_but_not_the_hosts() {
        assert!(check_new_name("alice").is_ok());
        for host in ["Host", "HOST", "host"] {
            assert_eq!(
                check_new_name(host).unwrap_err().to_string(),
                format!("cannot use the name {host:?}: name reserved for the server")
            );
        }
        for bad in ["", "two words", "a/b", &"n".repeat(33)] {
            assert!(
                matches!(
                    check_new_name(bad),
                    Err(UserError::BadName {
                        reason: Reject::NameInvalid,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
