//! Accounts and bans as data: lookups, changes, and the human-readable file formats. No I/O.

use std::collections::BTreeMap;

pub use crate::proto::msg::Role;

/// A registered name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The name as registered.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Its password as an argon2id PHC string (salt and parameters included).
    pub password_hash: String,
}

/// A name the server refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The banned name.
    pub name: String,
    /// Who banned it.
    pub by: String,
    /// When, in Unix seconds.
    pub at: i64,
    /// Why, if given.
    pub reason: Option<String>,
}

/// One change to the accounts or bans, applied in memory by the core and on disk by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Adds or replaces an account.
    PutAccount(Account),
    /// Removes the account of a name.
    RemoveAccount {
        /// The name.
        name: String,
    },
    /// Sets the password hash of an existing account.
    SetPassword {
        /// The name.
        name: String,
        /// The new argon2id PHC string.
        password_hash: String,
    },
    /// Sets the role of an existing account.
    SetRole {
        /// The name.
        name: String,
        /// The new role.
        role: Role,
    },
    /// Adds or replaces a ban.
    PutBan(Ban),
    /// Lifts the ban on a name.
    RemoveBan {
        /// The name.
        name: String,
    },
}

/// Every account and ban, keyed by lower-cased name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    accounts: BTreeMap<String, Account>,
    bans: BTreeMap<String, Ban>,
}

/// A line of an accounts or bans file that cannot be read.
pub use crate::datadir::ParseError;

impl Registry {
    /// The account registered under `name` (any case).
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.get(&name.to_lowercase())
    }

    /// The ban on `name` (any case).
    pub fn ban(&self, name: &str) -> Option<&Ban> {
        self.bans.get(&name.to_lowercase())
    }

    /// Every account, sorted by name.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Every ban, sorted by name.
    pub fn bans(&self) -> impl Iterator<Item = &Ban> {
        self.bans.values()
    }

    /// Whether `name` holds the only admin account (so taking its role away leaves no admin).
    pub fn is_last_admin(&self, name: &str) -> bool {
        let mut admins = self.accounts.values().filter(|a| a.role == Role::Admin);
        match (admins.next(), admins.next()) {
            (Some(only), None) => only.name.eq_ignore_ascii_case(name),
            _ => false,
        }
    }

    /// Applies `change`; a change to an account that does not exist does nothing.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::PutAccount(account) => {
                self.accounts
                    .insert(account.name.to_lowercase(), account.clone());
            }
            Change::RemoveAccount { name } => {
                self.accounts.remove(&name.to_lowercase());
            }
            Change::SetPassword {
                name,
                password_hash,
            } => {
                if let Some(account) = self.accounts.get_mut(&name.to_lowercase()) {
                    account.password_hash.clone_from(password_hash);
                }
            }
            Change::SetRole { name, role } => {
                if let Some(account) = self.accounts.get_mut(&name.to_lowercase()) {
                    account.role = *role;
                }
            }
            Change::PutBan(ban) => {
                self.bans.insert(ban.name.to_lowercase(), ban.clone());
            }
            Change::RemoveBan { name } => {
                self.bans.remove(&name.to_lowercase());
            }
        }
    }

    /// The accounts file: a comment header, then `NAME ROLE HASH` per line.
    pub fn accounts_file(&self) -> String {
        let mut text =
            String::from("# chatd accounts: NAME ROLE ARGON2ID-PHC-STRING, one per line\n");
        for account in self.accounts.values() {
            text.push_str(&format!(
                "{} {} {}\n",
                account.name, account.role, account.password_hash
            ));
        }
        text
    }

    /// The bans file: a comment header, then `NAME<TAB>BY<TAB>UNIX-SECONDS<TAB>REASON` per line.
    pub fn bans_file(&self) -> String {
        let mut text = String::from(
            "# chatd bans: NAME<TAB>BANNED-BY<TAB>UNIX-SECONDS<TAB>REASON, one per line\n",
        );
        for ban in self.bans.values() {
            let reason = ban
                .reason
                .as_deref()
                .unwrap_or("")
                .replace(['\t', '\n', '\r'], " ");
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                ban.name, ban.by, ban.at, reason
            ));
        }
        text
    }

    /// Reads an accounts file as written by [`Registry::accounts_file`] into this registry.
    pub fn read_accounts(&mut self, text: &str) -> Result<(), ParseError> {
        for (index, line) in text.lines().enumerate() {
            let error = |reason: &str| ParseError {
                line: index + 1,
                reason: reason.to_owned(),
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, hash] = fields[..] else {
                return Err(error("expected NAME ROLE HASH"));
            };
            let role = Role::parse(role).ok_or_else(|| error("the role must be admin or user"))?;
            if !hash.starts_with("$argon2") {
                return Err(error("the password hash is not an argon2 PHC string"));
            }
            let account = Account {
                name: name.to_owned(),
                role,
                password_hash: hash.to_owned(),
            };
            self.apply(&Change::PutAccount(account));
        }
        Ok(())
    }

    /// Reads a bans file as written by [`Registry::bans_file`] into this registry.
    pub fn read_bans(&mut self, text: &str) -> Result<(), ParseError> {
        for (index, line) in text.lines().enumerate() {
            let error = |reason: &str| ParseError {
                line: index + 1,
                reason: reason.to_owned(),
            };
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.splitn(4, '\t').collect();
            let [name, by, at, reason] = fields[..] else {
                return Err(error(
                    "expected NAME, BANNED-BY, UNIX-SECONDS and REASON separated by tabs",
                ));
            };
            let at = at
                .trim()
                .parse()
                .map_err(|_| error("the time must be whole Unix seconds"))?;
            let reason = reason.trim();
            let ban = Ban {
                name: name.trim().to_owned(),
                by: by.trim().to_owned(),
                at,
                reason: (!reason.is_empty()).then(|| reason.to_owned()),
            };
            self.apply(&Change::PutBan(ban));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, role: Role) -> Account {
        Account {
            name: name.into(),
            role,
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}"),
        }
    }

    #[test]
    fn the_last_admin_is_the_only_admin_account() {
        let mut registry = Registry::default();
        assert!(!registry.is_last_admin("root"), "no admin at all");
        registry.apply(&Change::PutAccount(account("Root", Role::Admin)));
        registry.apply(&Change::PutAccount(account("bob", Role::User)));
        assert!(registry.is_last_admin("ROOT"));
        assert!(!registry.is_last_admin("bob"));
        registry.apply(&Change::PutAccount(account("ann", Role::Admin)));
        assert!(!registry.is_last_admin("root"), "one of two");
    }

    #[test]
    fn lookups_ignore_case_and_changes_apply() {
        let mut registry = Registry::default();
        registry.apply(&Change::PutAccount(account("Alice", Role::User)));
        assert_eq!(registry.account("ALICE").map(|a| a.role), Some(Role::User));
        registry.apply(&Change::SetRole {
            name: "alice".into(),
            role: Role::Admin,
        });
        assert_eq!(registry.account("alice").map(|a| a.role), Some(Role::Admin));
        registry.apply(&Change::SetPassword {
            name: "alice".into(),
            password_hash: "$argon2id$new".into(),
        });
        assert_eq!(
            registry.account("alice").map(|a| a.password_hash.as_str()),
            Some("$argon2id$new")
        );
        registry.apply(&Change::RemoveAccount {
            name: "aLICE".into(),
        });
        assert_eq!(registry.account("alice"), None);
        registry.apply(&Change::SetRole {
            name: "ghost".into(),
            role: Role::Admin,
        });
        assert_eq!(registry.accounts().count(), 0);
    }

    #[test]
    fn files_round_trip() {
        let mut registry = Registry::default();
        registry.apply(&Change::PutAccount(account("alice", Role::Admin)));
        registry.apply(&Change::PutAccount(account("bob", Role::User)));
        let ban = Ban {
            name: "mallory".into(),
            by: "Host".into(),
            at: 1_700_000_000,
            reason: Some("spam\tand more".into()),
        };
        registry.apply(&Change::PutBan(ban));
        registry.apply(&Change::PutBan(Ban {
            name: "eve".into(),
            by: "alice".into(),
            at: 5,
            reason: None,
        }));
        let mut read = Registry::default();
        read.read_accounts(&registry.accounts_file()).unwrap();
        read.read_bans(&registry.bans_file()).unwrap();
        assert_eq!(
            read.accounts().collect::<Vec<_>>(),
            registry.accounts().collect::<Vec<_>>()
        );
        assert_eq!(
            read.ban("MALLORY").and_then(|b| b.reason.clone()),
            Some("spam and more".into())
        );
        assert_eq!(
            read.ban("eve")
                .map(|b| (b.by.as_str(), b.at, b.reason.clone())),
            Some(("alice", 5, None))
        );
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let mut registry = Registry::default();
        let text = "# header\nalice admin $argon2id$x\nbob wizard $argon2id$y\n";
        assert_eq!(registry.read_accounts(text).unwrap_err().line, 3);
        assert_eq!(
            registry
                .read_accounts("carol user plaintext\n")
                .unwrap_err()
                .line,
            1
        );
        assert_eq!(
            registry
                .read_bans("eve\tHost\tyesterday\t\n")
                .unwrap_err()
                .line,
            1
        );
        assert_eq!(registry.read_bans("just a name\n").unwrap_err().line, 1);
    }

    #[test]
    fn roles_parse_names_and_digits() {
        assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
        assert_eq!(Role::parse("1"), Some(Role::Admin));
        assert_eq!(Role::parse("0"), Some(Role::User));
        assert_eq!(Role::parse("root"), None);
    }
}
