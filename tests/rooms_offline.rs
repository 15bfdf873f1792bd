//! `chatd room ...` run as a real process on a scratch data directory.

use std::fs;
use std::time::Duration;

mod common;

use common::DataDir;

/// Longest any single `chatd room` run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Runs `chatd ARGS`; returns (exit code, stdout, stderr).
fn chatd(args: &[&str]) -> (i32, String, String) {
    common::run_chatd(args, "", None, RUN_LIMIT)
}

/// Runs `chatd --data-dir DIR room ARGS`, expecting success; returns stdout.
fn room_ok(dir: &str, args: &[&str]) -> String {
    let mut all = vec!["--data-dir", dir, "room"];
    all.extend_from_slice(args);
    let (code, out, err) = chatd(&all);
    assert_eq!((code, err.as_str()), (0, ""), "chatd {all:?}");
    out
}

/// Runs `chatd --data-dir DIR room ARGS`, expecting failure; returns its one line of stderr.
fn room_err(dir: &str, args: &[&str]) -> String {
    let mut all = vec!["--data-dir", dir, "room"];
    all.extend_from_slice(args);
    let (code, out, err) = chatd(&all);
    assert_eq!((code, out.as_str()), (1, ""), "chatd {all:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line of error: {err:?}");
    err.trim_end().to_owned()
}

#[test]
fn add_list_del() {
    let data = DataDir::new();
    let dir = data.arg();
    assert_eq!(
        room_ok(dir, &["add", "#dev", "--topic", "Rust talk"]),
        "added #dev\n"
    );
    // --data-dir also works after `room`.
    let (code, out, err) = chatd(&["room", "--data-dir", dir, "add", "#Ops"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "added #Ops\n", ""));
    let listing = room_ok(dir, &["list"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert!(
        lines[0].starts_with("#dev: Rust talk (set by Host, ") && lines[0].ends_with(" UTC)"),
        "{listing}"
    );
    assert_eq!(lines[1], "#Ops");

    let text = fs::read_to_string(data.path().join("rooms")).unwrap();
    assert!(
        text.starts_with("# chatd rooms: "),
        "a commented header: {text}"
    );
    assert!(text.contains("\n#dev\tHost\t"), "{text}");
    assert!(text.ends_with("\tRust talk\n#Ops\n"), "{text}");

    assert_eq!(room_ok(dir, &["del", "#OPS"]), "removed #Ops\n");
    assert_eq!(room_ok(dir, &["list"]).lines().count(), 1);
    assert_eq!(room_ok(dir, &["del", "#dev"]), "removed #dev\n");
    let (code, out, err) = chatd(&["--data-dir", dir, "room", "list"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(err, format!("no persistent rooms in {dir}\n"));
}

#[test]
fn every_refused_value_names_its_argument_the_value_and_what_is_allowed() {
    let data = DataDir::new();
    let dir = data.arg();
    room_ok(dir, &["add", "#dev"]);
    let rule = "a room name is '#' then 1 to 32 ASCII letters, digits, '_', '-' or '.'";
    assert_eq!(
        room_err(dir, &["add", "dev"]),
        format!(
            "chatd: invalid value 'dev' for NAME: {rule}, e.g. '#dev' (quoted: a shell takes # for a comment)"
        )
    );
    for bad in ["#", "#a b", "#a/b", &format!("#{}", "n".repeat(33))] {
        assert_eq!(
            room_err(dir, &["add", bad]),
            format!("chatd: invalid value '{bad}' for NAME: {rule}")
        );
        assert_eq!(
            room_err(dir, &["del", bad]),
            format!("chatd: invalid value '{bad}' for NAME: {rule}")
        );
    }
    assert_eq!(
        room_err(dir, &["add", "#DEV"]),
        "chatd: invalid value '#DEV' for NAME: there is a room named #dev already (names are unique ignoring case)"
    );
    assert_eq!(
        room_err(dir, &["del", "#ghost"]),
        "chatd: invalid value '#ghost' for NAME: no persistent room has that name (`chatd room list` shows them)"
    );
    assert_eq!(
        room_err(dir, &["add", "#new", "--topic", ""]),
        "chatd: invalid value '' for --topic: must not be empty (leave --topic out for a room without one)"
    );
    // A control character is shown escaped, so the error stays one line.
    assert_eq!(
        room_err(dir, &["add", "#new", "--topic", "two\nlines"]),
        "chatd: invalid value 'two\\nlines' for --topic: must be one line, without tabs or other control characters"
    );
    let long = "x".repeat(401);
    assert_eq!(
        room_err(dir, &["add", "#new", "--topic", &long]),
        format!("chatd: invalid value '{long}' for --topic: must be at most 400 characters")
    );
    assert_eq!(
        room_ok(dir, &["list"]),
        "#dev\n",
        "nothing refused was written"
    );
}

#[test]
fn list_and_del_on_a_missing_data_dir_create_nothing() {
    let data = DataDir::new();
    let missing = data.path().join("missing");
    let missing = missing.to_str().unwrap();
    let (code, out, err) = chatd(&["--data-dir", missing, "room", "list"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(
        err,
        format!(
            "no persistent rooms in {missing} (it does not exist yet: `chatd room add` makes it)\n"
        )
    );
    assert_eq!(
        room_err(missing, &["del", "#dev"]),
        "chatd: invalid value '#dev' for NAME: no persistent room has that name (`chatd room list` shows them)"
    );
    // A refused add creates nothing either: values are checked first.
    room_err(missing, &["add", "dev"]);
    assert!(!fs::exists(missing).unwrap(), "nothing was created");

    // An existing empty directory is listed as empty, and gets no lock file either.
    let (code, out, err) = chatd(&["--data-dir", data.arg(), "room", "list"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(err, format!("no persistent rooms in {}\n", data.arg()));
    assert_eq!(fs::read_dir(data.path()).unwrap().count(), 0);
}

#[test]
fn a_data_dir_given_twice_or_that_is_a_file_is_refused_naming_the_flag() {
    let data = DataDir::new();
    let (code, _, err) = chatd(&[
        "--data-dir",
        data.arg(),
        "room",
        "--data-dir",
        "/elsewhere",
        "list",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("chatd: invalid value '/elsewhere' for --data-dir: given twice"),
        "{err}"
    );
    let file = data.path().join("file");
    fs::write(&file, "not a directory").unwrap();
    let file = file.to_str().unwrap();
    for args in [&["list"][..], &["add", "#dev"]] {
        let mut all = vec!["--data-dir", file, "room"];
        all.extend_from_slice(args);
        let (code, _, err) = chatd(&all);
        assert_eq!(code, 1);
        assert!(
            err.starts_with(&format!("chatd: invalid value '{file}' for --data-dir: "))
                && err.contains("it is not a directory"),
            "{err}"
        );
    }
}

#[test]
fn a_corrupt_rooms_file_is_named_with_its_line_and_left_alone() {
    let data = DataDir::new();
    let path = data.path().join("rooms");
    fs::write(&path, "#dev\n#DEV\n").unwrap();
    let expected = format!(
        "chatd: {}: line 2: #DEV is listed twice (also on line 1; names are unique ignoring case)",
        path.display()
    );
    assert_eq!(room_err(data.arg(), &["list"]), expected);
    assert_eq!(room_err(data.arg(), &["add", "#ops"]), expected);
    assert_eq!(fs::read_to_string(&path).unwrap(), "#dev\n#DEV\n");
}
