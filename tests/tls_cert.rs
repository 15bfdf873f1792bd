//! The server's TLS certificate as an operator meets it: `--tls-self-signed` makes one on the
//! first start and prints its fingerprint, later starts reuse it, `chatd tls fingerprint` prints
//! what `openssl x509 -fingerprint -sha256` does, and files that cannot serve stop the start
//! with the file named.

mod common;

use common::tls::{openssl_fingerprint, write_file, write_test_cert};
use common::{run_chatd, DataDir, TestServer, TIMEOUT};

use chatd::tls::Fingerprint;

const ANNOUNCED: &str = "chatd TLS certificate SHA256:";

/// `chatd ARGS` must exit 0; its stdout.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let (code, out, err) = run_chatd(args, "", None, TIMEOUT);
    assert_eq!(code, 0, "chatd {args:?}: {err}");
    out
}

/// `chatd ARGS` must exit 1 without starting; its stderr.
#[track_caller]
fn refused(args: &[&str]) -> String {
    let (code, out, err) = run_chatd(args, "", None, TIMEOUT);
    assert_eq!(code, 1, "chatd {args:?}: {out} {err}");
    assert!(!out.contains("listening"), "chatd {args:?} started: {out}");
    err
}

/// The fingerprint a starting server printed.
fn announced(server: &mut TestServer) -> (String, String) {
    let line = server.expect_stdout(ANNOUNCED, TIMEOUT);
    let print = line["chatd TLS certificate ".len()..]
        .split_whitespace()
        .next()
        .expect("a fingerprint")
        .to_owned();
    (print, line)
}

#[test]
fn a_self_signed_certificate_is_made_once_printed_and_shown_as_openssl_shows_it() {
    let data = DataDir::new();
    let dir = data.arg();
    let err = refused(&["--data-dir", dir, "tls", "fingerprint"]);
    assert!(err.contains("no certificate yet"), "{err}");
    assert!(err.contains("--tls-self-signed once"), "{err}");
    assert!(!data.path().join("tls").exists(), "nothing made by asking");

    let mut server = TestServer::start_on(&data, &["--no-console", "--tls-self-signed"]);
    let (first, line) = announced(&mut server);
    assert!(line.ends_with(", made now)"), "{line}");
    drop(server);
    let cert = data.path().join("tls/cert.pem");
    assert_eq!(openssl_fingerprint(&cert), first);
    let shown = ok(&["--data-dir", dir, "tls", "fingerprint"]);
    assert_eq!(shown, format!("{first}\n"));
    let after = ok(&["tls", "--data-dir", dir, "fingerprint"]);
    assert_eq!(after, shown, "--data-dir after `tls` too");
    let last = ok(&["tls", "fingerprint", "--data-dir", dir]);
    assert_eq!(last, shown, "--data-dir after `fingerprint` too");

    let mut again = TestServer::start_on(&data, &["--no-console", "--tls-self-signed"]);
    let (second, line) = announced(&mut again);
    assert_eq!(second, first, "the second start reuses the pair");
    assert!(!line.contains("made now"), "{line}");
}

#[test]
fn a_given_certificate_is_fingerprinted_from_either_side_of_tls() {
    let data = DataDir::new();
    let made = write_test_cert(data.path(), "server", &["localhost"]);
    let cert = made.cert.to_str().expect("UTF-8 path");
    let key = made.key.to_str().expect("UTF-8 path");
    let expected = Fingerprint::of(&made.der).to_string();
    assert_eq!(openssl_fingerprint(&made.cert), expected);
    let dir = data.arg();
    let shown = ok(&["--data-dir", dir, "tls", "fingerprint", "--tls-cert", cert]);
    assert_eq!(shown.trim(), expected);
    // The server's own command line, with `tls fingerprint` added, works too.
    let server_line = ["--tls-cert", cert, "--tls-key", key, "tls", "fingerprint"];
    assert_eq!(ok(&server_line).trim(), expected);
    let twice = ["--tls-cert", cert, "tls", "fingerprint", "--tls-cert", cert];
    let err = refused(&twice);
    assert!(
        err.contains("--tls-cert") && err.contains("give it once"),
        "{err}"
    );

    let mut server = TestServer::start_on(&data, &["--tls-cert", cert, "--tls-key", key]);
    let (print, line) = announced(&mut server);
    assert_eq!(print, expected);
    assert!(line.contains(cert), "names its file: {line}");
    assert!(
        !data.path().join("tls").exists(),
        "files given: nothing made"
    );
}

#[test]
fn files_that_cannot_serve_stop_the_start_naming_the_file_and_what_to_do() {
    let data = DataDir::new();
    let dir = data.arg();
    let one = write_test_cert(data.path(), "one", &["localhost"]);
    let other = write_test_cert(data.path(), "other", &["localhost"]);
    let exposed = data.path().join("exposed.key");
    let key_text = std::fs::read_to_string(&one.key).expect("key");
    write_file(&exposed, &key_text, 0o644);
    let empty = data.path().join("empty.pem");
    write_file(&empty, "", 0o600);
    let missing = data.path().join("missing.pem");
    let path = |p: &std::path::Path| p.to_str().expect("UTF-8 path").to_owned();
    let cases = [
        (
            path(&one.cert),
            path(&other.key),
            path(&other.key),
            "does not belong to the certificate",
        ),
        (path(&one.cert), path(&exposed), path(&exposed), "chmod 600"),
        (
            path(&empty),
            path(&one.key),
            path(&empty),
            "no certificate in it",
        ),
        (
            path(&one.cert),
            path(&empty),
            path(&empty),
            "no private key in it",
        ),
        (
            path(&missing),
            path(&one.key),
            path(&missing),
            "no such file",
        ),
    ];
    for (cert, key, named, why) in &cases {
        let args = [
            "--no-console",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ];
        let err = refused(&args);
        assert!(
            err.contains(named.as_str()) && err.contains(why),
            "{args:?}: {err}"
        );
    }
    let err = refused(&["tls", "fingerprint", "--tls-cert", &path(&empty)]);
    assert!(err.contains("no certificate in it"), "{err}");
}
