//! The accounts and bans of a cluster, kept in Redis: the same two texts as the data directory's
//! `accounts` and `bans` files (so one parser and one format), under [`ACCOUNTS`] and [`BANS`],
//! with a version number under [`VERSION`].
//!
//! A change is read, decided and written as the file store does it under its lock, but with an
//! optimistic check instead of a lock: the texts are written only if the version is still the
//! one read (a Lua script, atomic in Redis), and the same script appends a `registry` entry to
//! the log, so that every node reads the accounts again. A writer that lost the race reads again
//! and decides again.

use std::fmt;

use crate::accounts::model::{Change, ParseError, Registry};
use crate::accounts::usercmd::{AccountBook, UserError};

use super::entry::{Body, Entry};
use super::keys::{FIELD, LOG, LOG_MAXLEN};

/// The accounts text (`NAME ROLE HASH` lines).
pub const ACCOUNTS: &str = "chatd:accounts";
/// The bans text.
pub const BANS: &str = "chatd:bans";
/// Counts the changes of the two texts.
pub const VERSION: &str = "chatd:registry:version";

/// KEYS: the version, the accounts, the bans, the log. ARGV: the version read, the accounts
/// text, the bans text, the entry, the log's length. Writes both texts and appends the entry if
/// the version is still the one read; the new version, or -1 if another writer came first.
const WRITE: &str = r"
local now = tonumber(redis.call('GET', KEYS[1]) or '0')
if now ~= tonumber(ARGV[1]) then
  return -1
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', ARGV[6], ARGV[4])
return redis.call('INCR', KEYS[1])
";

/// How many times a change is decided again after losing a race before it gives up.
const ATTEMPTS: usize = 20;

/// Why the cluster's accounts could not be read or written.
#[derive(Debug)]
pub enum RegistryError {
    /// Redis could not be reached or refused the command.
    Redis {
        /// What was being done.
        action: &'static str,
        /// Redis's error.
        cause: redis::RedisError,
    },
    /// What Redis holds is not an accounts or bans text.
    Corrupt {
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        cause: ParseError,
    },
    /// Other writers kept changing the accounts.
    Contended,
    /// `import` found accounts in the cluster already.
    NotEmpty {
        /// How many accounts it holds.
        accounts: usize,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Redis { action, cause } => {
                write!(f, "cannot {action}: {cause}")
            }
            RegistryError::Corrupt { key, cause } => {
                write!(f, "the cluster's Redis key {key}: {cause}")
            }
            RegistryError::Contended => {
                f.write_str("the cluster's accounts kept changing under this change; try again")
            }
            RegistryError::NotEmpty { accounts } => write!(
                f,
                "the cluster holds {accounts} accounts already; give --replace to overwrite them"
            ),
        }
    }
}

impl std::error::Error for RegistryError {}

/// The accounts and bans of the cluster at `url`.
pub struct ClusterRegistry {
    url: String,
    con: redis::Connection,
    script: redis::Script,
    /// The `registry` entry appended with every change (naming the writer).
    entry: Vec<u8>,
}

/// What [`ClusterRegistry::load`] read: the registry and its version.
#[derive(Clone, Debug)]
pub struct Versioned {
    /// The accounts and bans.
    pub registry: Registry,
    /// The version they were read at (0: never written).
    pub version: i64,
}

impl ClusterRegistry {
    /// Connects to the cluster's Redis at `url`; `writer` names who changes the accounts
    /// (a node, or `chatd user` and its pid) in the entries it appends.
    pub fn connect(url: &str, writer: &str) -> Result<ClusterRegistry, RegistryError> {
        let fail = |action| move |cause| RegistryError::Redis { action, cause };
        let client = redis::Client::open(url).map_err(fail("read the Redis URL"))?;
        let con = client
            .get_connection_with_timeout(std::time::Duration::from_secs(5))
            .map_err(fail("reach Redis"))?;
        let entry = Entry {
            node: writer.to_owned(),
            seq: 0,
            stamp: super::entry::unix_now(),
            body: Body::Registry,
        }
        .encode();
        Ok(ClusterRegistry {
            url: url.to_owned(),
            con,
            script: redis::Script::new(WRITE),
            entry,
        })
    }

    /// The accounts and bans as they are now.
    pub fn load(&mut self) -> Result<Versioned, RegistryError> {
        let (version, accounts, bans): (Option<i64>, Option<String>, Option<String>) =
            redis::pipe()
                .atomic()
                .get(VERSION)
                .get(ACCOUNTS)
                .get(BANS)
                .query(&mut self.con)
                .map_err(|cause| RegistryError::Redis {
                    action: "read the accounts from Redis",
                    cause,
                })?;
        let mut registry = Registry::default();
        registry
            .read_accounts(accounts.as_deref().unwrap_or(""))
            .map_err(|cause| RegistryError::Corrupt {
                key: ACCOUNTS,
                cause,
            })?;
        registry
            .read_bans(bans.as_deref().unwrap_or(""))
            .map_err(|cause| RegistryError::Corrupt { key: BANS, cause })?;
        Ok(Versioned {
            registry,
            version: version.unwrap_or(0),
        })
    }

    /// Reads the accounts, asks `decide` for the changes to make given what is there, and writes
    /// them unless another writer came first (then it reads and decides again). Returns the
    /// registry as written. If `decide` fails, nothing is written.
    pub fn update<E, F>(&mut self, mut decide: F) -> Result<Registry, E>
    where
        E: From<RegistryError>,
        F: FnMut(&Registry) -> Result<Vec<Change>, E>,
    {
        for _ in 0..ATTEMPTS {
            let Versioned { registry, version } = self.load()?;
            let changes = decide(&registry)?;
            let mut new = registry.clone();
            for change in &changes {
                new.apply(change);
            }
            if changes.is_empty() {
                return Ok(new);
            }
            if self.write(version, &new)? {
                return Ok(new);
            }
        }
        Err(RegistryError::Contended.into())
    }

    /// Writes `registry` whole (the migration from a data directory's files), unless the cluster
    /// has accounts already and `replace` is false.
    pub fn import(&mut self, registry: &Registry, replace: bool) -> Result<(), RegistryError> {
        for _ in 0..ATTEMPTS {
            let Versioned {
                registry: now,
                version,
            } = self.load()?;
            let accounts = now.accounts().count();
            if accounts > 0 && !replace {
                return Err(RegistryError::NotEmpty { accounts });
            }
            if self.write(version, registry)? {
                return Ok(());
            }
        }
        Err(RegistryError::Contended)
    }

    /// Writes `registry` if the version is still `version`; whether it did.
    fn write(&mut self, version: i64, registry: &Registry) -> Result<bool, RegistryError> {
        let written: i64 = self
            .script
            .key(VERSION)
            .key(ACCOUNTS)
            .key(BANS)
            .key(LOG)
            .arg(version)
            .arg(registry.accounts_file())
            .arg(registry.bans_file())
            .arg(&self.entry)
            .arg(LOG_MAXLEN)
            .arg(FIELD)
            .invoke(&mut self.con)
            .map_err(|cause| RegistryError::Redis {
                action: "write the accounts to Redis",
                cause,
            })?;
        Ok(written >= 0)
    }
}

impl From<RegistryError> for UserError {
    fn from(error: RegistryError) -> UserError {
        UserError::Remote(error.to_string())
    }
}

impl AccountBook for ClusterRegistry {
    fn load(&mut self) -> Result<Registry, UserError> {
        Ok(ClusterRegistry::load(self)?.registry)
    }

    fn update(
        &mut self,
        decide: &mut dyn FnMut(&Registry) -> Result<Vec<Change>, UserError>,
    ) -> Result<Registry, UserError> {
        ClusterRegistry::update(self, decide)
    }

    fn place(&self) -> String {
        format!("the cluster at {}", self.url)
    }
}
