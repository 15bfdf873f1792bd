//! A page user for tests outside `tests/web.rs` (which has its own, over TLS too): a WebSocket
//! client on plain TCP speaking the page's JSON messages, every wait with a deadline.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use super::TIMEOUT;

/// A page's WebSocket, and every message taken so far (for failure messages).
pub struct WebClient {
    socket: WebSocket<TcpStream>,
    seen: Vec<Value>,
}

impl WebClient {
    /// Opens the WebSocket at `addr` as the page served from there would.
    pub fn connect(addr: SocketAddr) -> WebClient {
        assert!(addr.ip().is_loopback());
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("a request");
        let origin = format!("http://{addr}").parse().expect("an origin");
        request.headers_mut().insert("Origin", origin);
        let (socket, _) = tungstenite::client(request, stream).expect("the upgrade");
        WebClient {
            socket,
            seen: Vec::new(),
        }
    }

    /// Sends one JSON message.
    pub fn send(&mut self, message: &Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send a message");
    }

    /// Says hello as `name` and waits for the welcome.
    pub fn hello(&mut self, name: &str) {
        let answer = self.try_hello(name);
        assert_eq!(answer["type"], "welcome", "{answer}");
    }

    /// Says hello as `name` and returns the answer: the welcome or an error.
    pub fn try_hello(&mut self, name: &str) -> Value {
        self.send(&json!({"type":"hello","v":3,"name":name}));
        self.expect("an answer to hello", |m| {
            m["type"] == "welcome" || m["type"] == "error"
        })
    }

    /// The next JSON message that `matches`, skipping others; panics after [`TIMEOUT`].
    pub fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    let value = meaning(serde_json::from_str(&text).expect("JSON from the server"));
                    self.seen.push(value.clone());
                    if matches(&value) {
                        return value;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                        && Instant::now() < deadline => {}
                Err(e) => panic!("web client: no {what} ({e}); saw {:#?}", self.seen),
            }
        }
    }

    /// Sends a ping and returns every message the server sent before its pong.
    pub fn until_pong(&mut self) -> Vec<Value> {
        let from = self.seen.len();
        self.send(&json!({"type":"ping","nonce":77}));
        self.expect("the pong", |m| m["type"] == "pong" && m["nonce"] == 77);
        let mut got = self.seen.split_off(from);
        got.pop();
        got
    }
}

/// A server message as the page reads it: a live line, which comes as an array (PROTOCOL.md,
/// "Live lines"), becomes the object it stands for; any other message is returned as it is.
pub fn meaning(value: Value) -> Value {
    let Value::Array(fields) = value else {
        return value;
    };
    let keys: &[&str] = match fields.first().and_then(Value::as_str) {
        Some("chat") => &["type", "id", "at", "from", "text"],
        Some("room_chat") => &["type", "room", "default", "id", "at", "from", "text"],
        _ => panic!("an array that is no live line: {fields:?}"),
    };
    assert_eq!(
        fields.len(),
        keys.len(),
        "a live line of {} fields: {fields:?}",
        keys.len()
    );
    let mut object = serde_json::Map::new();
    for (key, field) in keys.iter().zip(fields) {
        if !(*key == "id" && field.is_null()) {
            object.insert((*key).to_owned(), field);
        }
    }
    if let Some(name) = object.remove("room") {
        let default = object.remove("default").unwrap_or_default();
        object.insert("room".to_owned(), json!({"name": name, "default": default}));
    }
    Value::Object(object)
}
