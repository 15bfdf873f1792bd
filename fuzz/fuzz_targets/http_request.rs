//! The HTTP layer (`server::stack::http::respond`) on any bytes, as a request head that comes in
//! pieces: every prefix of the input is answered as the shell would answer it so far.
//!
//! Nothing may panic; a prefix gets either "wait for more" or the very answer the whole input
//! gets (more bytes never change an answer given), and "wait for more" only while the head could
//! still fit in `MAX_HEAD`; every answer is one well-formed response head (httparse reads it back)
//! with `Connection: close` and the security headers, its `Content-Length` the body's length; an
//! upgrade's head length is within the input.
#![no_main]

use chatd::server::stack::http::{respond, Outcome, WebPolicy, MAX_HEAD};
use libfuzzer_sys::fuzz_target;

/// A response head's headers, as httparse reads them back, and the body after it.
fn parsed(bytes: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!("an answer that is no response head: {other:?}"),
    };
    let code = response.code.unwrap_or(0);
    let headers = response
        .headers
        .iter()
        .map(|h| {
            let value = std::str::from_utf8(h.value).expect("ASCII header values");
            (h.name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    (code, headers, &bytes[len..])
}

fn check(outcome: &Outcome, input_len: usize) {
    match outcome {
        Outcome::Partial => {}
        Outcome::Answer { bytes, status, .. } => {
            let (code, headers, body) = parsed(bytes);
            assert_eq!(code, *status);
            let value = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(value("connection"), Some("close"));
            assert_eq!(value("x-content-type-options"), Some("nosniff"));
            assert_eq!(value("referrer-policy"), Some("no-referrer"));
            assert!(value("content-security-policy")
                .is_some_and(|csp| csp.contains("frame-ancestors 'none'")));
            assert!(value("set-cookie").is_none());
            let length: usize = value("content-length")
                .and_then(|l| l.parse().ok())
                .expect("a Content-Length");
            // A HEAD answer has the head of the GET's, without its body.
            assert!(body.is_empty() || body.len() == length, "{length} {}", body.len());
        }
        Outcome::Upgrade { bytes, head_len } => {
            assert!(*head_len <= input_len);
            let (code, headers, body) = parsed(bytes);
            assert_eq!(code, 101);
            assert!(body.is_empty());
            assert!(headers.iter().any(|(n, _)| n == "sec-websocket-accept"));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the policy: --web-host, --web-origin, --tls-required, TLS or not.
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let hosts = ["chat.lan".to_owned(), "[::1]".to_owned()];
    let origins = ["https://portal.example.org".to_owned()];
    let policy = WebPolicy {
        hosts: if flags & 1 != 0 { &hosts } else { &[] },
        origins: if flags & 2 != 0 { &origins } else { &[] },
        tls_required: flags & 4 != 0,
    };
    let secure = flags & 8 != 0;
    let whole = respond(input, &policy, secure);
    check(&whole, input.len());
    if whole == Outcome::Partial {
        assert!(input.len() < MAX_HEAD, "waited for more past {MAX_HEAD} bytes");
    }
    // Each prefix (every one of a short input; of a long one, a few spread over it).
    let step = (input.len() / 64).max(1);
    for len in (0..input.len()).step_by(step) {
        let so_far = respond(&input[..len], &policy, secure);
        if so_far != Outcome::Partial {
            assert_eq!(so_far, whole, "more bytes changed the answer given at {len}");
        }
    }
});
