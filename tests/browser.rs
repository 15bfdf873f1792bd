//! The page in a real browser: Debian's Chromium, headless, driven by its chromedriver over the
//! W3C WebDriver protocol (JSON over HTTP on loopback), against the real `chatd`, with an
//! nc-style text user on the other side. The page joins, chats both ways, switches rooms, sends
//! and gets a direct message, and carries on across a server restart on the same port (telling
//! that the lines of before the restart could not be recovered).
//!
//! Why WebDriver spoken from Rust (with `ureq`, a blocking HTTP client, no async runtime) rather
//! than Python's Selenium: the test stays one `cargo test` with the text user from
//! tests/common in the same process, and WebDriver's few commands used here (session, url,
//! element, click, value, execute, screenshot) are plain JSON requests.
//!
//! Every wait polls the page with a deadline; only 127.0.0.1 is used; the only processes ended
//! are the ones this test started (chatd, chromedriver, by their PIDs; Chromium is closed
//! through its WebDriver session). Chromium missing fails the test with the command to install it.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Client, DataDir, TestServer, TIMEOUT};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest one WebDriver request may take: starting Chromium on a busy machine is the slow one.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// WebDriver's key code for Enter.
const ENTER: &str = "\u{E007}";
/// The element reference's key in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and the one browser session it runs, both ended when dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
    _profile: DataDir,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}

impl Browser {
    fn start() -> Browser {
        Browser::start_with(&[])
    }

    /// Starts Chromium with `extra` arguments besides the ones every run needs.
    fn start_with(extra: &[&str]) -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: this test needs Debian's Chromium and its WebDriver, \
                 `apt-get install -y chromium chromium-driver` (.ci/run installs them)"
            );
        }
        let profile = DataDir::new();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(SESSION_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        browser.wait_ready();
        let user_data = format!(
            "--user-data-dir={}",
            browser._profile.path().join("chromium").display()
        );
        let args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &user_data,
            "--window-size=1000,700",
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
            },
        }}});
        let answer = browser.request("POST", "/session", Some(capabilities));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session from chromedriver: {answer}"))
            .to_owned();
        // The window's inner size 1000x700 (the screenshot's), whatever the frame around it.
        let inner = browser.script("return [innerWidth, innerHeight];", json!([]));
        let rect = browser.session("GET", "/window/rect", None);
        let grow = |outer: &Value, inner: &Value, want: i64| {
            want + outer.as_i64().unwrap_or(want) - inner.as_i64().unwrap_or(want)
        };
        let size = json!({
            "width": grow(&rect["width"], &inner[0], 1000),
            "height": grow(&rect["height"], &inner[1], 700),
        });
        browser.session("POST", "/window/rect", Some(size));
        browser
    }

    /// What the page's console said: its errors, CSP refusals included.
    fn console_log(&self) -> Vec<String> {
        let log = self.session("POST", "/se/log", Some(json!({ "type": "browser" })));
        let entries = log.as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .map(|e| format!("{} {}", e["level"], e["message"]))
            .collect()
    }

    /// Polls chromedriver's status until it is up (it was just started), within the timeout.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let url = format!("{}/status", self.base);
            if let Ok(mut answer) = self.http.get(&url).call() {
                if let Ok(status) = answer.body_mut().read_json::<Value>() {
                    if status["value"]["ready"] == true {
                        return;
                    }
                }
            }
            if let Ok(Some(exit)) = self.driver.try_wait() {
                panic!("chromedriver exited at once: {exit}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within {TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command; returns its `value`, failing with WebDriver's error if any.
    #[track_caller]
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let answer = match (method, body) {
            ("GET", _) => self.http.get(&url).call(),
            ("DELETE", _) => self.http.delete(&url).call(),
            (_, body) => self.http.post(&url).send_json(body.unwrap_or(json!({}))),
        };
        let mut answer = answer.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let ok = answer.status().is_success();
        let value: Value = answer
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("{method} {path}: unreadable answer: {e}"));
        assert!(ok, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.request(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Runs `source` in every page this session loads, before the page's own scripts (through
    /// the DevTools protocol, which the page's Content-Security-Policy does not bind).
    fn before_each_page(&self, source: &str) {
        let command = json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument",
            "params": { "source": source },
        });
        self.session("POST", "/goog/cdp/execute", Some(command));
    }

    fn open(&self, url: &str) {
        self.session("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page and gives back what it returns.
    fn script(&self, script: &str, args: Value) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    #[track_caller]
    fn find(&self, css: &str) -> String {
        let found = self.session(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    #[track_caller]
    fn click(&self, css: &str) {
        let element = self.find(css);
        self.session("POST", &format!("/element/{element}/click"), None);
    }

    /// Types `text` into the element, as keys.
    #[track_caller]
    fn type_in(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Types a line into the message box and presses Enter.
    #[track_caller]
    fn say(&self, text: &str) {
        self.type_in("#message", &format!("{text}{ENTER}"));
    }

    /// Polls `script` until what it returns satisfies `done`, within the timeout.
    #[track_caller]
    fn wait_for(
        &self,
        what: &str,
        script: &str,
        args: Value,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let value = self.script(script, args.clone());
            if done(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the page: no {what} within {TIMEOUT:?}; last saw {value}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the view shown has a line containing `text`; returns that line's text.
    #[track_caller]
    fn expect_line(&self, text: &str) -> String {
        let script =
            "const log = [...document.querySelectorAll('#views .log')].find((l) => !l.hidden);
            const lines = log ? [...log.children].map((p) => p.textContent) : [];
            return lines.find((l) => l.includes(arguments[0])) ?? lines.slice(-5).join(' | ');";
        let line = self.wait_for(&format!("line with {text:?}"), script, json!([text]), |v| {
            v.as_str().is_some_and(|l| l.contains(text))
        });
        line.as_str().unwrap_or_default().to_owned()
    }

    /// The text of the first element matching `css` ("" if none).
    fn text(&self, css: &str) -> String {
        let value = self.script(
            "return document.querySelector(arguments[0])?.textContent ?? '';",
            json!([css]),
        );
        value.as_str().unwrap_or_default().to_owned()
    }

    #[track_caller]
    fn expect_text(&self, css: &str, text: &str) {
        let script = "return document.querySelector(arguments[0])?.textContent ?? '';";
        self.wait_for(&format!("{css} with {text:?}"), script, json!([css]), |v| {
            v.as_str().is_some_and(|t| t.contains(text))
        });
    }

    fn screenshot(&self) -> Vec<u8> {
        let shot = self.session("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("a base64 screenshot"))
            .expect("the screenshot decodes")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Closes Chromium; chromedriver waits for it to go.
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.http.delete(&url).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Records the page's notifications in `window.notes` and its permission requests in
/// `window.asked`; `document.hidden` is `window.tabHidden`.
const NOTIFICATIONS: &str = "
    window.notes = []; window.asked = 0; window.tabHidden = false;
    class Recorded {
        constructor(title, options) { window.notes.push([title, options.body]); }
        addEventListener() {}
    }
    Recorded.permission = 'default';
    Recorded.requestPermission = () => {
        window.asked++;
        Recorded.permission = 'granted';
        return Promise.resolve('granted');
    };
    window.Notification = Recorded;
    Object.defineProperty(document, 'hidden', { get: () => window.tabHidden });";

/// Starts chatd on `data` and `addr` (a fixed port, to restart on it) or on a free port.
fn chatd(data: &DataDir, addr: Option<SocketAddr>) -> TestServer {
    match addr {
        Some(addr) => TestServer::start_on(data, &["--listen", &addr.to_string()]),
        None => TestServer::start_on(data, &[]),
    }
}

/// A data directory with the admin account `root` (password `rootpw`), made by `chatd user add`.
fn with_admin() -> DataDir {
    let data = DataDir::new();
    let args = ["user", "--data-dir", data.arg(), "add", "root", "--admin"];
    let (code, _, err) = common::run_chatd(&args, "rootpw\n", None, TIMEOUT);
    assert_eq!(code, 0, "chatd user add root --admin: {err}");
    data
}

/// The text of the page's people list, once `test` holds for it.
fn wait_users(browser: &Browser, what: &str, test: impl Fn(&str) -> bool) {
    browser.wait_for(
        what,
        "return document.querySelector('#users').textContent;",
        json!([]),
        |t| t.as_str().is_some_and(&test),
    );
}

#[test]
fn the_page_chats_switches_rooms_sends_dms_and_survives_a_restart() {
    let data = with_admin();
    let mut server = chatd(&data, None);
    let addr = server.addr();
    let browser = Browser::start();
    // A headless browser shows no notifications and its tab is never hidden: the page gets a
    // Notification that records what it is asked, and a `document.hidden` the test sets.
    browser.before_each_page(NOTIFICATIONS);
    browser.open(&format!("http://{addr}/"));

    // Join by the labelled form; the nc user sees the page's user enter. Bob spoke before, in
    // the lobby and in a room of his: the page shows that history on joining each.
    let mut bob = server.join("bob");
    bob.send_line("/join #ops");
    bob.expect_line("You made #ops and moderate it");
    bob.send_line("ops from before");
    bob.send_line("/room #lobby");
    bob.expect_line("Your current room is #lobby");
    bob.send_line("lobby from before");
    server.expect_stdout("bob > lobby from before", TIMEOUT);
    browser.type_in("#name", "alice");
    browser.click("#join button[type=submit]");
    browser.expect_text("#status", "Connected as alice");
    bob.expect_line("[*] alice entered.");
    browser.expect_text("#users", "bob");
    let history =
        "return [...document.querySelectorAll('#views .log:not([hidden]) p.said.history .text')]
                     .map((t) => t.textContent);";
    browser.wait_for("the lobby's history", history, json!([]), |h| {
        h == &json!(["lobby from before"])
    });
    browser.say("/join #ops");
    browser.expect_text("#view-title", "#ops");
    bob.expect_line("[*] #ops: alice entered.");
    browser.wait_for("#ops's history", history, json!([]), |h| {
        h == &json!(["ops from before"])
    });
    browser.say("/part #ops");
    bob.expect_line("[*] #ops: alice left.");
    browser.expect_text("#view-title", "#lobby");

    // Both ways; markup from a user is shown as text, never made into elements.
    bob.send_line("hi <b>alice</b> & all");
    let line = browser.expect_line("hi <b>alice</b> & all");
    assert!(line.contains("bob"), "{line}");
    let bold = browser.script(
        "return document.querySelectorAll('#views b').length;",
        json!([]),
    );
    assert_eq!(bold, json!(0), "a user's markup became an element");
    browser.say("hello from the browser");
    bob.expect_line(common::chat_line("alice", "hello from the browser"));
    for line in [
        "three lines in a row:",
        "they come in order,",
        "each with its stamp",
    ] {
        bob.send_line(line);
    }
    browser.expect_line("each with its stamp");
    let last = browser.script(
        "const lines = [...document.querySelectorAll('#views .log:not([hidden]) p.said .text')];
         return lines.slice(-3).map((t) => t.textContent);",
        json!([]),
    );
    assert_eq!(
        last,
        json!([
            "three lines in a row:",
            "they come in order,",
            "each with its stamp"
        ])
    );
    // Each line has its stamp (the reader's own time), a name's colour is the same on every line
    // of it, and the chat is an ARIA log that a screen reader reads out as lines come.
    let looks = browser.script(
        "const log = document.querySelector('#views .log:not([hidden])');
         const said = [...log.querySelectorAll('p.said')];
         const from = (p) => p.querySelector('.from');
         return [log.getAttribute('role'), log.getAttribute('aria-live'),
                 said.map((p) => p.querySelector('.stamp').textContent),
                 [...new Set(said.filter((p) => from(p).textContent === 'bob')
                                 .map((p) => from(p).className))]];",
        json!([]),
    );
    assert_eq!((&looks[0], &looks[1]), (&json!("log"), &json!("polite")));
    let stamps = looks[2].as_array().expect("the stamps");
    let hms = |s: &Value| {
        let s = s.as_str().unwrap_or("");
        s.len() == 8
            && s.bytes().enumerate().all(|(i, b)| {
                if i % 3 == 2 {
                    b == b':'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    assert!(stamps.len() >= 5 && stamps.iter().all(hms), "{stamps:?}");
    let classes = looks[3].as_array().expect("bob's colours");
    assert!(
        classes.len() == 1 && classes[0].as_str().is_some_and(|c| c.starts_with("from c")),
        "{classes:?}"
    );

    // Rooms: /join from the message box, lines tagged with the room both ways.
    browser.say("/join #dev");
    browser.expect_text("#view-title", "#dev");
    bob.send_line("/join #dev");
    bob.expect_line("You joined #dev");
    browser.expect_line("bob entered.");
    bob.send_line("dev talk from nc");
    browser.expect_line("dev talk from nc");
    // alice made #dev: the people list marks her its moderator.
    wait_users(&browser, "the moderator mark", |t| {
        t.contains("alice (you, moderator)")
    });
    browser.say("dev answer from the page");
    bob.expect_line(common::chat_line("#dev alice", "dev answer from the page"));
    // Another user's marks: bob made a moderator of #dev from the page, and an admin who logs
    // in from nc.
    browser.say("/mod bob");
    bob.expect_line("alice made bob a moderator.");
    wait_users(&browser, "bob's moderator mark", |t| {
        t.contains("bob (moderator)")
    });
    let _root = server.login("root", "rootpw");
    wait_users(&browser, "root's admin mark", |t| {
        t.contains("root (admin)")
    });

    // Switching back by a click moves the server's current room too; #dev counts unread lines.
    browser.click("#rooms button[data-view='']");
    browser.expect_text("#view-title", "#lobby");
    // The moderator marks are the shown room's: bob moderates #dev, not the lobby; an admin
    // moderates every room it is in (as /who says in text mode).
    wait_users(&browser, "the lobby's marks", |t| {
        t.contains("alice (you)") && t.contains("root (admin, moderator)") && !t.contains("bob (")
    });
    browser.say("back in the lobby");
    bob.expect_line(common::chat_line("alice", "back in the lobby"));
    bob.send_line("missed this in dev");
    browser.expect_text("#rooms button[data-view='#dev'] .badge", "1");
    browser.wait_for(
        "the unread count in the title",
        "return document.title;",
        json!([]),
        |t| t == "(1) chatd",
    );

    // Mid-chat: the screenshot (docs/page.png when CHATD_PAGE_PNG names it).
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("page.png"),
        &png,
    )
    .expect("save the screenshot");
    if let Some(path) = std::env::var_os("CHATD_PAGE_PNG") {
        std::fs::write(path, &png).expect("save the screenshot where CHATD_PAGE_PNG says");
    }

    // A direct message: a click on the name opens its view; bob's answer lands there.
    browser.click("#users button[data-name='bob']");
    browser.expect_text("#view-title", "Direct messages with bob");
    browser.say("a secret for bob");
    bob.expect_line(common::chat_line("[dm] alice", "a secret for bob"));
    bob.send_line("/dm alice a secret for alice");
    browser.expect_line("a secret for alice");
    browser.say("/dm bob typed as a command");
    bob.expect_line(common::chat_line("[dm] alice", "typed as a command"));
    browser.expect_line("typed as a command");
    assert_eq!(browser.text("#dms button[data-view='@bob'] .badge"), "");

    // /help answers in the page.
    browser.click("#rooms button[data-view='#dev']");
    browser.say("/help");
    browser.expect_line("click a name for a direct message");
    // The away mark changes as bob goes away and comes back (a presence message), with no one
    // coming or going to make the page ask for the list again.
    bob.send_line("/away lunch");
    bob.expect_line("You are marked away; /back when you return.");
    wait_users(&browser, "bob's away mark", |t| {
        t.contains("bob (moderator, away: lunch)")
    });
    bob.send_line("/back");
    bob.expect_line("You are back.");
    wait_users(&browser, "bob's away mark gone", |t| {
        t.contains("bob (moderator)") && !t.contains("away")
    });

    // #ops, left at the start, stayed out of the room list (a late answer about it once brought
    // it back).
    let rooms = browser.script(
        "return [...document.querySelectorAll('#rooms button')].map((b) => b.dataset.view);",
        json!([]),
    );
    assert_eq!(rooms, json!(["", "#dev"]));
    // By keyboard alone: Alt+Up and Alt+Down go through the rooms (the lobby, then #dev).
    browser.type_in("#message", "\u{E00A}\u{E013}\u{E000}");
    browser.expect_text("#view-title", "#lobby");
    browser.type_in("#message", "\u{E00A}\u{E015}\u{E000}");
    browser.expect_text("#view-title", "#dev");

    // Notifications: asked for on a click only; then, while the tab is hidden, shown for a
    // direct message and for a line naming alice, not for other lines; the title counts them.
    assert_eq!(browser.script("return window.asked;", json!([])), json!(0));
    browser.click("#notify");
    browser.wait_for(
        "the permission asked",
        "return [window.asked, document.querySelector('#notify').hidden];",
        json!([]),
        |v| v == &json!([1, true]),
    );
    browser.script("window.tabHidden = true;", json!([]));
    bob.send_line("/dm alice are you there?");
    bob.send_line("a line for nobody in particular");
    bob.send_line("Alice: look at this");
    browser.expect_line("Alice: look at this");
    let notes = browser.script("return window.notes;", json!([]));
    assert_eq!(
        notes,
        json!([
            ["bob (direct message)", "are you there?"],
            ["bob in #dev", "Alice: look at this"]
        ])
    );
    assert_eq!(
        browser.script("return document.title;", json!([])),
        json!("(3) chatd")
    );
    browser.script(
        "window.tabHidden = false; document.dispatchEvent(new Event('visibilitychange'));",
        json!([]),
    );
    browser.wait_for(
        "the shown room read",
        "return document.title;",
        json!([]),
        |t| t == "(1) chatd",
    );

    // A lost connection, the server still up: the page comes back after its last line, so a
    // line said again while it was away shows again, and no line shows twice.
    bob.send_line("same words");
    browser.expect_line("same words");
    browser.say("mine before the break");
    bob.expect_line(common::chat_line("#dev alice", "mine before the break"));
    browser.script("chat.socket.close();", json!([]));
    bob.expect_line("[*] #dev: alice exited.");
    bob.send_line("same words");
    bob.send_line("said while you were away");
    browser.expect_line("Connection restored.");
    browser.expect_line("said while you were away");
    let counts = browser.script(
        "const texts = [...document.querySelectorAll('#views .log:not([hidden]) p.said .text')]
           .map((t) => t.textContent);
         return arguments[0].map((want) => texts.filter((t) => t === want).length);",
        json!([[
            "same words",
            "mine before the break",
            "said while you were away",
            "dev talk from nc"
        ]]),
    );
    assert_eq!(counts, json!([2, 1, 1, 1]), "no gap and no duplicate");

    // The server stops: the page says so, and keeps what is typed meanwhile.
    drop(bob);
    server.console("EXIT");
    server.wait_exit(TIMEOUT);
    browser.expect_line("Connection lost");
    browser.click("#rooms button[data-view='']");
    browser.say("typed while offline, first");
    browser.say("typed while offline, second");

    // Back on the same port: the page rejoins by itself, its rooms too, and sends the lines in order.
    let server = chatd(&data, Some(addr));
    let mut carol = Client::connect(addr);
    carol.join("carol");
    browser.expect_line("Connection restored.");
    browser.expect_text("#status", "Connected as alice");
    // The lines of the old run cannot be resumed: the page says so rather than show a silent gap.
    browser.expect_line("Some messages in #lobby could not be recovered (the server restarted");
    let first = carol.expect_line("alice > typed while offline, first");
    let second = carol.expect_line("alice > typed while offline, second");
    assert!(
        !first.contains("#dev") && !second.contains("#dev"),
        "{first} / {second}"
    );
    carol.send_line("welcome back");
    browser.expect_line("welcome back");
    carol.send_line("/join #dev");
    carol.expect_line("You joined #dev (2 members)");

    // The system's light or dark setting is followed.
    let background = |scheme: &str| {
        let media = json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
        });
        browser.session("POST", "/goog/cdp/execute", Some(media));
        browser.script(
            "return getComputedStyle(document.body).backgroundColor;",
            json!([]),
        )
    };
    assert_eq!(background("light"), json!("rgb(253, 253, 253)"));
    assert_eq!(background("dark"), json!("rgb(23, 24, 27)"));
    // A phone-sized window: one column (the rooms above the chat, the people below), and
    // nothing wider than the screen.
    let phone = json!({ "width": 400, "height": 800 });
    browser.session("POST", "/window/rect", Some(phone));
    browser.wait_for(
        "one column on a phone",
        "const r = (id) => document.getElementById(id).getBoundingClientRect();
         return [innerWidth <= 480, r('side').bottom <= r('chat').top + 1,
                 r('chat').bottom <= r('people').top + 1,
                 document.documentElement.scrollWidth <= innerWidth];",
        json!([]),
        |v| v == &json!([true, true, true, true]),
    );

    // No script error, nothing the Content-Security-Policy refused and no failed request (the
    // icon, which browsers ask for by themselves, included), all along.
    let log = browser.console_log();
    let bad = |l: &&String| {
        l.contains("Content Security Policy")
            || l.contains("Uncaught")
            || l.contains("Failed to load resource")
    };
    assert!(!log.iter().any(|l| bad(&l)), "{log:#?}");
    drop(server);
}

#[test]
fn over_tls_the_page_logs_in_with_a_password_and_chats_over_wss_by_itself() {
    // The server's self-signed certificate: Chromium is told to take it.
    let data = with_admin();
    let server = TestServer::start_on(&data, &["--tls-self-signed"]);
    let addr = server.addr();
    let browser = Browser::start_with(&["--ignore-certificate-errors"]);
    browser.open(&format!("https://{addr}/"));
    // The form's fields are named for a screen reader as the issue says, the password hidden.
    let labels: Vec<String> = ["#name", "#password"]
        .iter()
        .map(|css| {
            let element = browser.find(css);
            let label = browser.session("GET", &format!("/element/{element}/computedlabel"), None);
            label.as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(labels, ["Name", "Password"]);
    let kind = browser.script(
        "return document.querySelector('#password').type;",
        json!([]),
    );
    assert_eq!(kind, json!("password"));
    let mut bob = server.join("bob");
    // A wrong password is told in the form, which stays; the right one logs in.
    browser.type_in("#name", "root");
    browser.type_in("#password", "not it");
    browser.click("#join button[type=submit]");
    browser.expect_text("#join-error", "wrong password");
    browser.script("document.querySelector('#password').value = '';", json!([]));
    browser.type_in("#password", "rootpw");
    browser.click("#join button[type=submit]");
    browser.expect_text("#status", "Connected as root");
    bob.expect_line("[*] root entered.");
    wait_users(&browser, "root's own marks", |t| {
        t.contains("root (you, admin")
    });
    let element = browser.find("#message");
    let label = browser.session("GET", &format!("/element/{element}/computedlabel"), None);
    assert_eq!(label, json!("Message"));
    // The page chose wss:// by itself, from the https:// it was loaded over.
    let url = browser.script("return chat.socket.url;", json!([]));
    assert_eq!(url, json!(format!("wss://{addr}/ws")));
    bob.send_line("over TLS to the page");
    browser.expect_line("over TLS to the page");
    browser.say("back over wss");
    bob.expect_line(common::chat_line("root", "back over wss"));
    let log = browser.console_log();
    assert!(
        !log.iter()
            .any(|l| l.contains("Uncaught") || l.contains("Mixed Content")),
        "{log:#?}"
    );
}

#[test]
fn a_full_server_shows_the_browser_why() {
    let server = TestServer::start(&["--max-clients", "1"]);
    let addr = server.addr();
    let bob = server.join("bob");
    let browser = Browser::start();
    browser.open(&format!("http://{addr}/"));
    // Chromium shows the 503's text, not an error page about an invalid answer.
    browser.wait_for(
        "the refusal's text",
        "return document.body ? document.body.innerText : '';",
        json!([]),
        |t| {
            t == "503 Service Unavailable: server full, try again later\n"
                || t == "503 Service Unavailable: server full, try again later"
        },
    );
    drop(bob);
}
