//! `chatd --config FILE` and `chatd check-config`, from the real binary: the example file
//! contrib/chatd.toml keeps a key for every flag `chatd --help` lists (and no other), holding the
//! defaults; a file sets the server up and flags given override it; every problem in a file is
//! named by the file, the line and the key, exits 1 and starts no server.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{run_chatd, DataDir, TestServer, TIMEOUT};

/// The example settings file shipped in contrib/.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/chatd.toml")
}

/// Flags of the server that are no setting: they say what to do, not how to serve.
const NOT_SETTINGS: &[&str] = &["--help", "--version", "--config", "--node-index"];

/// Every server flag `chatd --help` lists, without its `--`, less [`NOT_SETTINGS`].
fn flags_from_help() -> BTreeSet<String> {
    let (code, out, err) = run_chatd(&["--help"], "", None, TIMEOUT);
    assert_eq!(code, 0, "{err}");
    let options = out
        .split_once("\nOptions:\n")
        .unwrap_or_else(|| panic!("no Options section in --help: {out}"))
        .1;
    let options = options.split("\n\n").next().unwrap_or_default();
    let flags: BTreeSet<String> = options
        .lines()
        .filter_map(|line| line.strip_prefix("  --"))
        .map(|line| line.split([' ', ',']).next().unwrap_or_default())
        .map(|flag| format!("--{flag}"))
        .filter(|flag| !NOT_SETTINGS.contains(&flag.as_str()))
        .map(|flag| flag[2..].to_owned())
        .collect();
    assert!(
        flags.len() > 20,
        "too few flags read from --help: {flags:?}"
    );
    flags
}

/// The keys of a settings file: `key = value` lines, and `# key = value` lines (a key with no
/// default, shown commented out), each with the line before it.
fn keys_of(text: &str) -> Vec<(String, bool, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let (commented, rest) = match line.strip_prefix("# ") {
            Some(rest) => (true, rest),
            None => (false, *line),
        };
        let Some((key, _)) = rest.split_once(" = ") else {
            continue;
        };
        if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            let before = n.checked_sub(1).map_or("", |b| lines[b]);
            keys.push((key.to_owned(), commented, before.to_owned()));
        }
    }
    keys
}

/// `chatd ARGS` is refused: exit 1, no server, and stderr holds every one of `wanted`.
#[track_caller]
fn assert_refused(args: &[&str], wanted: &[&str]) -> String {
    let (code, out, err) = run_chatd(args, "", None, TIMEOUT);
    assert_eq!(code, 1, "chatd {args:?}: exit code; stderr: {err}");
    assert!(!out.contains("listening"), "chatd {args:?} started: {out}");
    for wanted in wanted {
        assert!(
            err.contains(wanted),
            "chatd {args:?}: no {wanted:?} in {err}"
        );
    }
    err
}

/// Writes `text` as `name` in `dir`; returns its path as an argument.
fn write(dir: &DataDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write a settings file");
    path.to_str().expect("UTF-8 temp path").to_owned()
}

#[test]
fn the_example_file_has_one_key_for_every_flag_with_a_comment_and_the_default() {
    let text = std::fs::read_to_string(example()).expect("read contrib/chatd.toml");
    let keys = keys_of(&text);
    let in_file: BTreeSet<String> = keys.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(in_file.len(), keys.len(), "a key given twice: {keys:#?}");
    let flags = flags_from_help();
    let missing: Vec<&String> = flags.difference(&in_file).collect();
    let unknown: Vec<&String> = in_file.difference(&flags).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "flags without a key in contrib/chatd.toml: {missing:?}; keys that are no flag: {unknown:?}"
    );
    for (key, _, before) in &keys {
        let comment = before.strip_prefix("# ").unwrap_or_default();
        assert!(
            !comment.is_empty() && keys_of(before).is_empty(),
            "{key}: no one-line comment above it (the line before is {before:?})"
        );
    }

    // check-config prints the same keys, and the example's values are the defaults.
    let example = example();
    let example = example.to_str().expect("UTF-8 path");
    let (code, with_file, err) =
        run_chatd(&["check-config", "--config", example], "", None, TIMEOUT);
    assert_eq!(code, 0, "{err}");
    let (code, defaults, err) = run_chatd(&["check-config"], "", None, TIMEOUT);
    assert_eq!(code, 0, "{err}");
    let body = |out: &str| out.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        body(&with_file),
        body(&defaults),
        "the example is not the defaults"
    );
    let printed: BTreeSet<String> = body(&defaults)
        .lines()
        .map(|l| {
            let l = l.trim_start_matches("# ");
            l.split([' ']).next().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(printed, flags, "check-config prints a key for every flag");
    // The keys without a default are the ones commented out in the example.
    let unset: BTreeSet<String> = body(&defaults)
        .lines()
        .filter_map(|l| l.strip_prefix("# ")?.strip_suffix(" is not set"))
        .map(str::to_owned)
        .collect();
    let commented: BTreeSet<String> = keys
        .iter()
        .filter(|(_, commented, _)| *commented)
        .map(|(k, _, _)| k.clone())
        .collect();
    assert_eq!(unset, commented);
}

#[test]
fn a_settings_file_sets_the_server_up_and_flags_given_override_it() {
    let dir = DataDir::new();
    let data = dir.path().join("data");
    let file = write(
        &dir,
        "chatd.toml",
        &format!(
            "default-room = \"#hall\"\nhistory = 3\nweb-host = [\"chat.example.org\"]\ndata-dir = {:?}\n",
            data.to_str().expect("UTF-8")
        ),
    );
    let server = TestServer::start(&["--config", &file]);
    let mut alice = server.join("alice");
    alice.send_line("/rooms");
    alice.expect_line(|l: &str| l == "[*]   #hall (1 member)");
    drop(alice);
    drop(server);

    let server = TestServer::start(&["--config", &file, "--default-room", "#den"]);
    let mut alice = server.join("alice");
    alice.send_line("/rooms");
    alice.expect_line(|l: &str| l == "[*]   #den (1 member)");
    drop(server);

    let (code, out, err) = run_chatd(
        &[
            "--history",
            "7",
            "--web-host",
            "a.example",
            "check-config",
            "--config",
            &file,
        ],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 0, "{err}");
    for line in [
        "default-room = \"#hall\"",
        "history = 7",
        "web-host = [\"a.example\"]",
        "max-clients = 1024",
        "# log-file is not set",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in {out}");
    }
    assert!(
        out.lines().next().is_some_and(|l| l.contains(&file)),
        "{out}"
    );

    // The offline commands take the file's data directory.
    let (code, _, err) = run_chatd(
        &["--config", &file, "user", "add", "zed"],
        "pw\n",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run_chatd(&["--config", &file, "user", "list"], "", None, TIMEOUT);
    assert_eq!((code, out.trim()), (0, "zed user"), "{err}");
    assert!(data.is_dir(), "the accounts went to the file's data-dir");
}

#[test]
fn every_problem_in_a_settings_file_is_named_by_its_file_line_and_key() {
    let dir = DataDir::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "history = 5\nmax-client = 3\n",
            &[":2: max-client: unknown key; did you mean max-clients?"],
        ),
        (
            "\n\nsurely-not-a-setting = true\n",
            &[":3: surely-not-a-setting: unknown key"],
        ),
        (
            "# comment\nmax-clients = \"many\"\n",
            &[":2: max-clients: invalid type: string \"many\", expected a whole number"],
        ),
        (
            "max-clients = 0\n",
            &[":1: max-clients: invalid value '0': must be at least 1"],
        ),
        (
            "history = 20\nflood-rate = 0\n",
            &[":2: flood-rate: invalid value '0': must be from 0.01 to 10000"],
        ),
        (
            "log-level = \"loud\"\n",
            &[":1: log-level: the level must be off, error, warn, info, debug or trace"],
        ),
        (
            "listen = \"localhost:99999\"\n",
            &[":1: listen: invalid value 'localhost:99999': the port must be a number"],
        ),
        (
            "\ntls-required = true\n",
            &[":2: tls-required: invalid value 'on': needs TLS on"],
        ),
        (
            "no-console = \"yes\"\n",
            &[":1: no-console: invalid type: string \"yes\", expected true or false"],
        ),
        ("history = 5\nhistory 6\n", &[":2: "]),
    ];
    for (n, (text, wanted)) in cases.iter().enumerate() {
        let file = write(&dir, &format!("case{n}.toml"), text);
        let mut wanted: Vec<&str> = wanted.to_vec();
        let located = format!("{file}{}", wanted[0].split(' ').next().unwrap_or_default());
        wanted.push(&located);
        assert_refused(&["check-config", "--config", &file], &wanted);
        let args = ["--config", &file, "--no-console", "--listen", "127.0.0.1:0"];
        let args: Vec<&str> = if text.contains("listen") {
            args[..3].to_vec()
        } else {
            args.to_vec()
        };
        assert_refused(&args, &wanted);
    }
    // A flag given overrides the file's bad value; a bad flag is named as a flag.
    let file = write(&dir, "zero.toml", "max-clients = 0\n");
    let (code, out, err) = run_chatd(
        &["--max-clients", "5", "check-config", "--config", &file],
        "",
        None,
        TIMEOUT,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\nmax-clients = 5\n"), "{out}");
    let ok = write(&dir, "ok.toml", "max-clients = 5\n");
    assert_refused(
        &["--max-clients", "0", "check-config", "--config", &ok],
        &["invalid value '0' for --max-clients: must be at least 1"],
    );
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().expect("UTF-8");
    assert_refused(
        &["--config", missing, "--no-console"],
        &[missing, "cannot read it"],
    );
    assert_refused(
        &["--config", &ok, "check-config", "--config", &ok],
        &["for --config", "give it once"],
    );
}
