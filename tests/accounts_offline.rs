//! `chatd user ...` run as a real process on a scratch data directory, including a crash test:
//! many concurrent writers killed with SIGKILL at random moments never leave a store that cannot
//! be read, nor lose an account whose `add` reported success.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use chatd::accounts::hash::verify_password;
use chatd::accounts::Store;

/// Longest any single `chatd user` run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A data directory unique to one test, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new(test: &str) -> DataDir {
        let path =
            std::env::temp_dir().join(format!("chatd-offline-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        DataDir(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8 here")
    }

    fn accounts(&self) -> String {
        fs::read_to_string(self.0.join("accounts")).unwrap_or_default()
    }

    /// The hash stored for `name` in the accounts file.
    fn hash_of(&self, name: &str) -> String {
        self.accounts()
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                (fields.len() == 3 && fields[0] == name).then(|| fields[2].to_owned())
            })
            .unwrap_or_else(|| panic!("no line for {name} in:\n{}", self.accounts()))
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Starts `chatd ARGS` with `stdin` piped in (and closed), never inheriting the terminal.
fn spawn(args: &[&str], stdin: &str) -> Child {
    common::spawn_chatd(args, stdin, None)
}

/// Runs `chatd ARGS` with `stdin`; returns (exit code, stdout, stderr).
fn chatd(args: &[&str], stdin: &str) -> (i32, String, String) {
    common::run_chatd(args, stdin, None, RUN_LIMIT)
}

/// Runs `chatd --data-dir DIR user ARGS`, expecting success; returns stdout.
fn user_ok(dir: &DataDir, args: &[&str], stdin: &str) -> String {
    let mut all = vec!["--data-dir", dir.path(), "user"];
    all.extend_from_slice(args);
    let (code, out, err) = chatd(&all, stdin);
    assert_eq!((code, err.as_str()), (0, ""), "chatd {all:?}");
    out
}

/// Runs `chatd --data-dir DIR user ARGS`, expecting failure; returns its one line of stderr.
fn user_err(dir: &DataDir, args: &[&str], stdin: &str) -> String {
    let mut all = vec!["--data-dir", dir.path(), "user"];
    all.extend_from_slice(args);
    let (code, out, err) = chatd(&all, stdin);
    assert_eq!((code, out.as_str()), (1, ""), "chatd {all:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line of error: {err:?}");
    err.trim_end().to_owned()
}

#[test]
fn add_list_passwd_grant_del() {
    let dir = DataDir::new("flow");
    assert_eq!(
        user_ok(&dir, &["add", "alice"], "alice-secret-1\n"),
        "added alice as user\n"
    );
    // --data-dir also works after `user`.
    let (code, out, err) = chatd(
        &["user", "--data-dir", dir.path(), "add", "Bob", "--admin"],
        "bob-secret\r\n",
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "added Bob as admin\n", "")
    );
    assert_eq!(user_ok(&dir, &["list"], ""), "alice user\nBob admin\n");

    let text = dir.accounts();
    assert!(text.starts_with("# "), "a commented header: {text}");
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 2);
    assert_eq!(text.matches("$argon2id$v=19$m=19456,t=2,p=1$").count(), 2);
    assert!(!text.contains("secret"), "no plain password: {text}");
    let old_hash = dir.hash_of("alice");
    assert!(verify_password("alice-secret-1", &old_hash));
    assert!(verify_password("bob-secret", &dir.hash_of("Bob")));

    assert_eq!(
        user_ok(&dir, &["passwd", "ALICE"], "alice-secret-2\n"),
        "changed the password of ALICE\n"
    );
    let new_hash = dir.hash_of("alice");
    assert!(verify_password("alice-secret-2", &new_hash));
    assert!(!verify_password("alice-secret-1", &new_hash));
    assert!(!dir.accounts().contains("secret"));

    assert_eq!(
        user_ok(&dir, &["grant", "alice", "admin"], ""),
        "alice is now admin\n"
    );
    user_ok(&dir, &["grant", "bob", "user"], "");
    assert_eq!(user_ok(&dir, &["list"], ""), "alice admin\nBob user\n");
    assert_eq!(user_ok(&dir, &["del", "bob"], ""), "removed Bob\n");
    assert_eq!(user_ok(&dir, &["list"], ""), "alice admin\n");

    let store = Store::open(&dir.0).unwrap().load().unwrap();
    assert_eq!(store.accounts().count(), 1);
    assert_eq!(store.account("alice").unwrap().password_hash, new_hash);
}

#[test]
fn refusals_are_one_line_and_change_nothing() {
    let dir = DataDir::new("refusals");
    user_ok(&dir, &["add", "alice"], "pw\n");
    let before = dir.accounts();

    assert_eq!(
        user_err(&dir, &["add", "ALICE"], "pw\n"),
        "chatd: an account named \"alice\" exists already"
    );
    for command in [
        &["del", "ghost"][..],
        &["passwd", "ghost"],
        &["grant", "ghost", "admin"],
    ] {
        assert_eq!(
            user_err(&dir, command, "pw\n"),
            "chatd: no account named \"ghost\"",
            "{command:?}"
        );
    }
    for bad in ["two words", "a/b", "", "\u{e9}mile", &"n".repeat(33)] {
        let err = user_err(&dir, &["add", bad], "pw\n");
        assert!(err.contains("invalid name"), "{bad:?}: {err}");
    }
    assert_eq!(
        user_err(&dir, &["add", "host"], "pw\n"),
        "chatd: cannot use the name \"host\": name reserved for the server"
    );
    // A role that does not parse is argh's usage error: exit 1, a message and a hint.
    let (code, _, err) = chatd(
        &["--data-dir", dir.path(), "user", "grant", "alice", "wizard"],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("the role must be admin or user"), "{err}");
    assert_eq!(
        user_err(&dir, &["add", "bob"], ""),
        "chatd: no password on stdin (give it as one line)"
    );
    assert_eq!(
        user_err(&dir, &["add", "bob"], "\n"),
        "chatd: the password is empty"
    );
    assert_eq!(
        user_err(&dir, &["passwd", "alice"], "\r\n"),
        "chatd: the password is empty"
    );
    let (code, _, err) = chatd(
        &[
            "--data-dir",
            dir.path(),
            "user",
            "--data-dir",
            "/elsewhere",
            "list",
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("chatd: invalid value '/elsewhere' for --data-dir: given twice"),
        "{err}"
    );

    assert_eq!(dir.accounts(), before);
}

#[test]
fn a_corrupt_store_is_reported_by_file_and_line_and_kept() {
    let dir = DataDir::new("corrupt");
    fs::create_dir_all(&dir.0).unwrap();
    let accounts = dir.0.join("accounts");
    let text = "# accounts\nalice root $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\n";
    fs::write(&accounts, text).unwrap();
    let expected = format!(
        "chatd: {}: line 2: the role must be admin or user",
        accounts.display()
    );
    assert_eq!(user_err(&dir, &["list"], ""), expected);
    assert_eq!(user_err(&dir, &["add", "bob"], "pw\n"), expected);
    assert_eq!(fs::read_to_string(&accounts).unwrap(), text);
}

/// A small xorshift generator: reproducible from the seed the test prints.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn killed(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

#[test]
fn writers_killed_at_random_moments_leave_a_readable_store() {
    const ROUNDS: usize = 3;
    const WRITERS: usize = 40;
    let dir = DataDir::new("crash");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut spawned = BTreeSet::new();
    let mut added = BTreeSet::new();
    let (mut kills, mut exits) = (0, 0);
    // The first round learns how long a burst takes; later rounds aim their kills within it.
    let mut window = Duration::from_millis(1500);

    for round in 0..ROUNDS {
        let start = Instant::now();
        let mut live: Vec<(String, Child, Option<Instant>)> = (0..WRITERS)
            .map(|i| {
                let name = format!("r{round}w{i}");
                let kill_at = (rng.below(4) != 0)
                    .then(|| start + Duration::from_micros(rng.below(window.as_micros() as u64)));
                let child = spawn(
                    &["--data-dir", dir.path(), "user", "add", &name],
                    &format!("pw-{name}\n"),
                );
                spawned.insert(name.clone());
                (name, child, kill_at)
            })
            .collect();
        while !live.is_empty() {
            assert!(Instant::now() < deadline, "the crash test ran too long");
            let mut index = 0;
            while index < live.len() {
                let (name, child, kill_at) = &mut live[index];
                let status = match child.try_wait().expect("wait for a writer") {
                    Some(status) => Some(status),
                    None if kill_at.is_some_and(|at| Instant::now() >= at) => {
                        // Only our own unreaped child: its PID cannot have been reused.
                        let pid = rustix::process::Pid::from_child(child);
                        rustix::process::kill_process(pid, rustix::process::Signal::KILL)
                            .expect("SIGKILL a writer");
                        Some(child.wait().expect("reap a killed writer"))
                    }
                    None => None,
                };
                match status {
                    Some(status) => {
                        if status.success() {
                            added.insert(name.clone());
                            exits += 1;
                        } else {
                            assert!(killed(&status), "{name} failed: {status}");
                            kills += 1;
                        }
                        live.swap_remove(index);
                    }
                    None => index += 1,
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if round == 0 {
            window = start.elapsed();
        }
        // After every burst the store loads, and has every account whose add succeeded.
        let registry = Store::open(&dir.0).unwrap().load().unwrap_or_else(|e| {
            panic!("round {round}: the store cannot be read: {e}");
        });
        let present: BTreeSet<String> = registry.accounts().map(|a| a.name.clone()).collect();
        let missing: Vec<_> = added.difference(&present).collect();
        assert!(missing.is_empty(), "added but lost: {missing:?}");
        assert!(present.is_subset(&spawned), "unknown accounts: {present:?}");
        for account in registry.accounts() {
            assert!(account
                .password_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        }
    }
    eprintln!("crash test: {exits} adds succeeded, {kills} writers killed");
    assert!(kills > 0 && exits > 0, "{kills} kills, {exits} exits");

    // A writer after the carnage succeeds and leaves only the store's own files.
    user_ok(&dir, &["add", "survivor"], "pw\n");
    let registry = Store::open(&dir.0).unwrap().load().unwrap();
    assert!(registry.account("survivor").is_some());
    let mut files: Vec<String> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, [".lock", "accounts"]);
}

#[test]
fn the_data_dir_defaults_to_chatd_data_in_the_working_directory() {
    let dir = DataDir::new("default");
    fs::create_dir_all(&dir.0).unwrap();
    let (code, out, err) =
        common::run_chatd(&["user", "add", "carol"], "pw\n", Some(&dir.0), RUN_LIMIT);
    assert_eq!(code, 0, "{out}{err}");
    let store_dir: &Path = &dir.0.join("chatd-data");
    let registry = Store::open(store_dir).unwrap().load().unwrap();
    assert!(registry.account("carol").is_some());
}

#[test]
fn read_only_commands_on_a_missing_data_dir_create_nothing() {
    let dir = DataDir::new("read-only");
    fs::create_dir_all(&dir.0).unwrap();
    let (code, out, err) = common::run_chatd(&["user", "list"], "", Some(&dir.0), RUN_LIMIT);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(
        err,
        "no accounts in chatd-data (it does not exist yet: `chatd user add` makes it)\n"
    );
    for command in [&["del", "ghost"][..], &["grant", "ghost", "admin"]] {
        let mut args = vec!["user"];
        args.extend_from_slice(command);
        let (code, _, err) = common::run_chatd(&args, "", Some(&dir.0), RUN_LIMIT);
        assert_eq!(
            (code, err.as_str()),
            (1, "chatd: no account named \"ghost\"\n")
        );
    }
    assert_eq!(
        fs::read_dir(&dir.0).unwrap().count(),
        0,
        "nothing was created"
    );

    // An existing empty directory is listed as empty, and gets no lock file either.
    let (code, out, err) = chatd(&["--data-dir", dir.path(), "user", "list"], "");
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(err, format!("no accounts in {}\n", dir.path()));
    assert_eq!(
        fs::read_dir(&dir.0).unwrap().count(),
        0,
        "nothing was created"
    );
}

#[test]
fn a_data_dir_that_is_a_file_is_named_as_not_a_directory() {
    let dir = DataDir::new("file");
    fs::write(&dir.0, "not a directory").unwrap();
    for args in [&["list"][..], &["add", "alice"]] {
        let mut all = vec!["--data-dir", dir.path(), "user"];
        all.extend_from_slice(args);
        let (code, _, err) = chatd(&all, "pw\n");
        assert_eq!(code, 1);
        assert!(
            err.starts_with(&format!(
                "chatd: invalid value '{}' for --data-dir: ",
                dir.path()
            )) && err.contains("it is not a directory")
                && err.contains("it must be a directory"),
            "{err}"
        );
    }
    let _ = fs::remove_file(&dir.0);
}
