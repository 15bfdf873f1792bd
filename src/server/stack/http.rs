//! The HTTP layer of a connection that began with a request: its head parsed with httparse (at
//! most [`MAX_HEAD`] bytes), then either one answer and the end of the connection (the page and
//! its assets, embedded in the binary; 404, 405 and the refusals), or the WebSocket upgrade, after
//! which the connection speaks the web mode. No I/O and no clock: the shell hands it the bytes
//! received so far and writes what it answers; the name timeout bounds the wait for a whole head.

use tungstenite::handshake::derive_accept_key;

use crate::proto::msg::Reject;

/// The longest request head taken, request line and headers together.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// The page and what it loads, built into the binary.
const INDEX_HTML: &[u8] = include_bytes!("../../../web/index.html");
const APP_JS: &[u8] = include_bytes!("../../../web/app.js");
const STYLE_CSS: &[u8] = include_bytes!("../../../web/style.css");
/// The page's icon; also answered for `/favicon.ico`, which browsers ask for by themselves.
const FAVICON_SVG: &[u8] = include_bytes!("../../../web/favicon.svg");

/// The headers every answer has: nothing is framed, sniffed, referred or kept in a cookie; the
/// page runs only its own script and talks only to its own server.
const SECURITY_HEADERS: &str = "Content-Security-Policy: default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'\r\n\
     X-Content-Type-Options: nosniff\r\n\
     Referrer-Policy: no-referrer\r\n\
     X-Frame-Options: DENY\r\n\
     Cross-Origin-Opener-Policy: same-origin\r\n";

/// Which requests are let in: the host names the server answers to, the page origins besides its
/// own that may open a WebSocket, and whether plain connections are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebPolicy<'a> {
    /// `--web-host` names: when any is given, a request for another Host is refused (DNS
    /// rebinding). Empty: any Host.
    pub hosts: &'a [String],
    /// `--web-origin` entries (`scheme://host[:port]`): pages there may open a WebSocket too.
    pub origins: &'a [String],
    /// `--tls-required`: a plain request is sent to the https address of the same page.
    pub tls_required: bool,
}

/// What the bytes received so far call for.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The head is not whole yet: wait for more bytes (within the name timeout).
    Partial,
    /// Write this answer, then close the connection.
    Answer {
        /// The whole response.
        bytes: Vec<u8>,
        /// Its status code, for the log.
        status: u16,
        /// The request line and why it was answered so, for the log.
        why: String,
    },
    /// A valid WebSocket handshake: write the `101` answer; the bytes after the head are the
    /// client's first frames.
    Upgrade {
        /// The `101 Switching Protocols` response.
        bytes: Vec<u8>,
        /// The length of the request head; what follows it is WebSocket input.
        head_len: usize,
    },
}

/// An answer with a plain-text body (or a page), with every security header.
fn answer(
    status: u16,
    reason: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\n{SECURITY_HEADERS}{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// A refusal: status, reason phrase, extra headers, and a line saying why.
fn refusal(status: u16, reason: &str, extra: &str, text: &str, why: String) -> Outcome {
    let body = format!("{status} {reason}: {text}\n");
    Outcome::Answer {
        bytes: answer(
            status,
            reason,
            "text/plain; charset=utf-8",
            extra,
            body.as_bytes(),
            false,
        ),
        status,
        why,
    }
}

/// A header's value as text, if the request has it (the first of that name).
fn header<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

/// Whether the comma-separated header value `list` has `token` (any case).
fn has_token(list: Option<&str>, token: &str) -> bool {
    list.is_some_and(|list| {
        list.split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    })
}

/// Whether `host` could be a Host header: a name or an address, maybe with a port. Nothing else
/// is ever put into an answer.
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// The host name of a Host header (or of an origin's authority), without its port or brackets,
/// in lower case.
fn host_name(authority: &str) -> String {
    let name = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    name.to_ascii_lowercase()
}

/// An authority without the scheme's default port, in lower case.
fn normalized(authority: &str, secure: bool) -> String {
    let lower = authority.to_ascii_lowercase();
    let default = if secure { ":443" } else { ":80" };
    match lower.strip_suffix(default) {
        Some(short) => short.to_owned(),
        None => lower,
    }
}

/// Whether a page at `origin` may open a WebSocket to this server, reached as `host`: its own
/// page (same scheme, same host and port), or one of the `--web-origin` entries.
pub fn origin_allowed(origin: &str, host: &str, secure: bool, extra: &[String]) -> bool {
    let origin = origin.trim();
    if extra.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let scheme = if secure { "https://" } else { "http://" };
    let Some(authority) = origin
        .get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(scheme))
        .map(|_| &origin[scheme.len()..])
    else {
        return false;
    };
    normalized(authority, secure) == normalized(host, secure)
}

/// The answer to a request whose head did not come whole within the name timeout.
pub fn timed_out() -> Vec<u8> {
    let text = "408 Request Timeout: the request did not come in time\n";
    answer(
        408,
        "Request Timeout",
        "text/plain; charset=utf-8",
        "",
        text.as_bytes(),
        false,
    )
}

/// How long a client refused because the server is full is asked to wait before it tries again.
pub const RETRY_AFTER_SECS: u32 = 30;

/// The answer to a request on a connection refused when it was accepted: `403` for a banned
/// address, else `503` (with `Retry-After` when the server is full: a place frees when anyone
/// leaves; not for the per-address limit, which frees only when this address closes one of its
/// own). No body for `HEAD` (`head_only`).
pub fn refused(reject: &Reject, head_only: bool) -> Vec<u8> {
    let (status, reason, extra) = match reject {
        Reject::Banned { .. } => (403, "Forbidden", String::new()),
        Reject::ServerFull => (
            503,
            "Service Unavailable",
            format!("Retry-After: {RETRY_AFTER_SECS}\r\n"),
        ),
        _ => (503, "Service Unavailable", String::new()),
    };
    let body = format!("{status} {reason}: {reject}\n");
    let plain = "text/plain; charset=utf-8";
    answer(status, reason, plain, &extra, body.as_bytes(), head_only)
}

/// What the server does with the bytes received so far on an HTTP connection; `secure` is
/// whether it came over TLS.
pub fn respond(input: &[u8], policy: &WebPolicy<'_>, secure: bool) -> Outcome {
    let window = &input[..input.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() < MAX_HEAD => return Outcome::Partial,
        Ok(httparse::Status::Partial) => {
            let text = format!("the request head is longer than {MAX_HEAD} bytes");
            let why = format!("request head over {MAX_HEAD} bytes");
            return refusal(431, "Request Header Fields Too Large", "", &text, why);
        }
        Err(httparse::Error::TooManyHeaders) => {
            let text = format!("more than {MAX_HEADERS} headers");
            return refusal(
                431,
                "Request Header Fields Too Large",
                "",
                &text,
                text.clone(),
            );
        }
        Err(e) => {
            let why = format!("unreadable request head ({e})");
            return refusal(400, "Bad Request", "", "the request could not be read", why);
        }
    };
    let method = request.method.unwrap_or("");
    let target = request.path.unwrap_or("");
    let line = format!("{method} {target}");
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let headers = &*request.headers;

    let Some(host) = header(headers, "Host").filter(|h| plausible_host(h)) else {
        let why = format!("{line}: no valid Host header");
        return refusal(400, "Bad Request", "", "a Host header is needed", why);
    };
    if !policy.hosts.is_empty() {
        let name = host_name(host);
        if !policy.hosts.iter().any(|h| host_name(h) == name) {
            let why = format!("{line}: Host {host} is not one of --web-host");
            let text = "this server does not answer to that host name";
            return refusal(403, "Forbidden", "", text, why);
        }
    }
    if policy.tls_required && !secure {
        let location = format!("Location: https://{host}{path}\r\n");
        let why = format!("{line}: plain HTTP, and TLS is required");
        let text = format!("this server takes TLS connections only: open https://{host}/");
        return refusal(307, "Temporary Redirect", &location, &text, why);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let why = format!("{line}: method not allowed");
            let text = "only GET (and HEAD) are served";
            return refusal(405, "Method Not Allowed", "Allow: GET, HEAD\r\n", text, why);
        }
    };
    let asset = |content_type: &str, body: &[u8]| Outcome::Answer {
        bytes: answer(200, "OK", content_type, "", body, head_only),
        status: 200,
        why: format!("{line}: served"),
    };
    match path {
        "/" | "/index.html" => asset("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => asset("text/javascript; charset=utf-8", APP_JS),
        "/style.css" => asset("text/css; charset=utf-8", STYLE_CSS),
        "/favicon.svg" | "/favicon.ico" => asset("image/svg+xml", FAVICON_SVG),
        "/ws" if request.version != Some(1) => {
            let why = format!("{line}: a WebSocket upgrade over HTTP/1.0");
            let text = "a WebSocket is opened over HTTP/1.1";
            refusal(400, "Bad Request", "", text, why)
        }
        "/ws" if !head_only => upgrade(headers, host, secure, policy, line, head_len),
        "/ws" => {
            let why = format!("{line}: method not allowed");
            let text = "a WebSocket is opened with GET";
            refusal(405, "Method Not Allowed", "Allow: GET\r\n", text, why)
        }
        _ => {
            let why = format!("{line}: not found");
            refusal(404, "Not Found", "", "no such page here", why)
        }
    }
}

/// The answer to `GET /ws`: the upgrade, if the handshake is valid and the page's origin may.
fn upgrade(
    headers: &[httparse::Header<'_>],
    host: &str,
    secure: bool,
    policy: &WebPolicy<'_>,
    line: String,
    head_len: usize,
) -> Outcome {
    let upgrade_header = header(headers, "Upgrade");
    if !has_token(upgrade_header, "websocket")
        || !has_token(header(headers, "Connection"), "upgrade")
    {
        let why = format!("{line}: not a WebSocket upgrade");
        let text = "this address is the chat's WebSocket: open / for the page";
        return refusal(426, "Upgrade Required", "Upgrade: websocket\r\n", text, why);
    }
    if header(headers, "Sec-WebSocket-Version") != Some("13") {
        let why = format!("{line}: WebSocket version not 13");
        let text = "WebSocket version 13 is spoken here";
        let extra = "Sec-WebSocket-Version: 13\r\n";
        return refusal(426, "Upgrade Required", extra, text, why);
    }
    let Some(key) = header(headers, "Sec-WebSocket-Key").filter(|k| k.len() == 24) else {
        let why = format!("{line}: no valid Sec-WebSocket-Key");
        return refusal(400, "Bad Request", "", "a Sec-WebSocket-Key is needed", why);
    };
    // Browsers always send the page's origin; a client with none is no page another site runs.
    if let Some(origin) = header(headers, "Origin") {
        if !origin_allowed(origin, host, secure, policy.origins) {
            let why = format!("{line}: Origin {origin} is neither Host {host} nor a --web-origin");
            let text = "pages from other sites may not open this chat";
            return refusal(403, "Forbidden", "", text, why);
        }
    }
    let bytes = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes();
    Outcome::Upgrade { bytes, head_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn upgrade_request(origin: &str) -> String {
        format!(
            "GET /ws HTTP/1.1\r\nHost: chat.lan:3001\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: {KEY}\r\nOrigin: {origin}\r\n\r\n"
        )
    }

    fn status(outcome: &Outcome) -> u16 {
        match outcome {
            Outcome::Partial => 0,
            Outcome::Answer { status, .. } => *status,
            Outcome::Upgrade { .. } => 101,
        }
    }

    fn text(outcome: &Outcome) -> String {
        match outcome {
            Outcome::Answer { bytes, .. } | Outcome::Upgrade { bytes, .. } => {
                String::from_utf8_lossy(bytes).into_owned()
            }
            Outcome::Partial => String::new(),
        }
    }

    fn get(path: &str) -> Outcome {
        let request = format!("GET {path} HTTP/1.1\r\nHost: chat.lan:3001\r\n\r\n");
        respond(request.as_bytes(), &WebPolicy::default(), false)
    }

    #[test]
    fn a_head_is_awaited_until_whole_however_it_is_cut() {
        let request = upgrade_request("http://chat.lan:3001");
        for cut in 0..request.len() {
            assert_eq!(
                respond(&request.as_bytes()[..cut], &WebPolicy::default(), false),
                Outcome::Partial,
                "cut at {cut}"
            );
        }
        let mut with_frames = request.clone().into_bytes();
        with_frames.extend_from_slice(b"\x81\x85more");
        match respond(&with_frames, &WebPolicy::default(), false) {
            Outcome::Upgrade { head_len, bytes } => {
                assert_eq!(
                    head_len,
                    request.len(),
                    "the frames after the head are not its"
                );
                let bytes = String::from_utf8(bytes).unwrap();
                // RFC 6455's own example key and accept value.
                assert!(bytes.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
                assert!(bytes.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_over_8_kib_is_refused_with_431() {
        let mut long = b"GET / HTTP/1.1\r\nHost: chat.lan\r\nX-Pad: ".to_vec();
        long.resize(MAX_HEAD + 10, b'a');
        let outcome = respond(&long, &WebPolicy::default(), false);
        assert_eq!(status(&outcome), 431);
        assert!(text(&outcome).contains("Connection: close\r\n"));
        // Just under the limit, it is still awaited.
        assert_eq!(
            respond(&long[..MAX_HEAD - 1], &WebPolicy::default(), false),
            Outcome::Partial
        );
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        let request = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(
            status(&respond(request.as_bytes(), &WebPolicy::default(), false)),
            431
        );
        assert_eq!(
            status(&respond(
                b"GET /\x01 HTTP/1.1\r\n\r\n",
                &WebPolicy::default(),
                false
            )),
            400
        );
    }

    #[test]
    fn the_page_and_its_assets_are_served_with_the_security_headers() {
        for (path, kind, start) in [
            ("/", "text/html", "<!doctype html>"),
            ("/index.html", "text/html", "<!doctype html>"),
            ("/app.js", "text/javascript", ""),
            ("/style.css", "text/css", ""),
            ("/favicon.svg", "image/svg+xml", "<svg "),
            ("/favicon.ico", "image/svg+xml", "<svg "),
            ("/?room=dev", "text/html", "<!doctype html>"),
        ] {
            let answer = text(&get(path));
            let (head, body) = answer.split_once("\r\n\r\n").unwrap();
            let head = format!("{head}\r\n");
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {head}");
            assert!(head.contains(&format!("Content-Type: {kind}")), "{path}");
            assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
            assert!(head.contains("Connection: close\r\n"));
            assert!(head.contains("X-Content-Type-Options: nosniff\r\n"));
            assert!(head.contains("Referrer-Policy: no-referrer\r\n"));
            assert!(head.contains("frame-ancestors 'none'"));
            assert!(head.contains("connect-src 'self'"));
            assert!(head.contains("default-src 'none'"));
            assert!(!head.to_ascii_lowercase().contains("set-cookie"));
            assert!(body.to_ascii_lowercase().starts_with(start), "{path}");
        }
        let head = respond(
            b"HEAD / HTTP/1.1\r\nHost: chat.lan\r\n\r\n",
            &WebPolicy::default(),
            false,
        );
        let head = text(&head);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn unknown_paths_other_methods_and_no_host_are_refused() {
        let not_found = get("/etc/passwd");
        assert_eq!(status(&not_found), 404);
        assert!(text(&not_found).contains("Connection: close\r\n"));
        let post = b"POST / HTTP/1.1\r\nHost: chat.lan\r\nContent-Length: 0\r\n\r\n";
        let refused = respond(post, &WebPolicy::default(), false);
        assert_eq!(status(&refused), 405);
        assert!(text(&refused).contains("Allow: GET, HEAD\r\n"));
        assert_eq!(
            status(&respond(
                b"GET / HTTP/1.1\r\n\r\n",
                &WebPolicy::default(),
                false
            )),
            400
        );
        let injected = b"GET / HTTP/1.1\r\nHost: a\"><script>\r\n\r\n";
        assert_eq!(
            status(&respond(injected, &WebPolicy::default(), false)),
            400
        );
        // /ws without an upgrade, or with another version.
        assert_eq!(status(&get("/ws")), 426);
        let v8 = upgrade_request("http://chat.lan:3001").replace("Version: 13", "Version: 8");
        let answer = respond(v8.as_bytes(), &WebPolicy::default(), false);
        assert_eq!(status(&answer), 426);
        assert!(text(&answer).contains("Sec-WebSocket-Version: 13\r\n"));
        let old = upgrade_request("http://chat.lan:3001").replace("HTTP/1.1", "HTTP/1.0");
        assert_eq!(
            status(&respond(old.as_bytes(), &WebPolicy::default(), false)),
            400
        );
        let no_key = upgrade_request("http://chat.lan:3001").replace(KEY, "short");
        assert_eq!(
            status(&respond(no_key.as_bytes(), &WebPolicy::default(), false)),
            400
        );
    }

    #[test]
    fn only_the_pages_own_origin_or_a_listed_one_may_upgrade() {
        let policy = WebPolicy::default();
        let ok = |origin: &str, secure: bool, policy: &WebPolicy<'_>| {
            status(&respond(upgrade_request(origin).as_bytes(), policy, secure))
        };
        assert_eq!(ok("http://chat.lan:3001", false, &policy), 101);
        assert_eq!(ok("HTTP://Chat.LAN:3001", false, &policy), 101);
        assert_eq!(ok("https://chat.lan:3001", true, &policy), 101);
        assert_eq!(
            ok("https://chat.lan:3001", false, &policy),
            403,
            "scheme differs"
        );
        assert_eq!(
            ok("http://chat.lan:3001", true, &policy),
            403,
            "scheme differs"
        );
        assert_eq!(ok("http://evil.example", false, &policy), 403);
        assert_eq!(ok("http://chat.lan:3002", false, &policy), 403);
        assert_eq!(ok("http://chat.lan:3001.evil.example", false, &policy), 403);
        assert_eq!(ok("null", false, &policy), 403);
        let portal = ["https://portal.example.org".to_owned()];
        let listed = WebPolicy {
            origins: &portal,
            ..WebPolicy::default()
        };
        assert_eq!(ok("https://portal.example.org", false, &listed), 101);
        assert_eq!(ok("https://other.example.org", false, &listed), 403);
        // No Origin at all: not a browser, so no page of another site.
        let none = upgrade_request("x").replace("Origin: x\r\n", "");
        assert_eq!(status(&respond(none.as_bytes(), &policy, false)), 101);
        assert!(origin_allowed("http://chat.lan", "chat.lan:80", false, &[]));
    }

    #[test]
    fn with_web_host_names_other_hosts_are_refused_for_every_path() {
        let hosts = ["chat.lan".to_owned(), "[::1]".to_owned()];
        let policy = WebPolicy {
            hosts: &hosts,
            ..WebPolicy::default()
        };
        let request = |host: &str, path: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
        };
        assert_eq!(
            status(&respond(&request("chat.lan:3001", "/"), &policy, false)),
            200
        );
        assert_eq!(
            status(&respond(&request("CHAT.lan", "/"), &policy, false)),
            200
        );
        assert_eq!(
            status(&respond(&request("[::1]:3001", "/"), &policy, false)),
            200
        );
        for path in ["/", "/ws", "/nothing"] {
            let rebound = respond(&request("attacker.example:3001", path), &policy, false);
            assert_eq!(status(&rebound), 403, "{path}");
        }
    }

    #[test]
    fn a_plain_request_to_a_tls_only_server_is_sent_to_https() {
        let policy = WebPolicy {
            tls_required: true,
            ..WebPolicy::default()
        };
        let request = b"GET /app.js HTTP/1.1\r\nHost: chat.lan:3001\r\n\r\n";
        let answer = respond(request, &policy, false);
        assert_eq!(status(&answer), 307);
        assert!(text(&answer).contains("Location: https://chat.lan:3001/app.js\r\n"));
        assert_eq!(status(&respond(request, &policy, true)), 200);
    }
}
