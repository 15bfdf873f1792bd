//! The WebSocket mode's input path on any bytes: the client's frames through the connection's
//! WebSocket layer (`server::stack::ws::Ws`, tungstenite sans-IO), cut into two reads where the
//! input's first byte says, and every whole text message through `proto::web::decode`; and the
//! rest of the input as one message of its own, straight into `decode`.
//!
//! Nothing may panic; the layer must give the same items and the same answers however the bytes
//! are cut, never a message over its limit, and nothing after a close or a failure; `decode` may
//! only refuse with the web mode's two errors, and what it lets through is cleaned (no control
//! character but TAB in a name or a line).
#![no_main]

use chatd::proto::msg::ClientMsg;
use chatd::proto::{web, DecodeError};
use chatd::server::stack::ws::{Ws, WsItem};
use libfuzzer_sys::fuzz_target;

/// A small limit, so that the fuzzer reaches it.
const MAX_MESSAGE: usize = 256;

/// Feeds `pieces` to a fresh layer as the shell does; returns its items and its answers.
fn frames(pieces: &[&[u8]]) -> (Vec<WsItem>, Vec<u8>) {
    let mut ws = Ws::new(MAX_MESSAGE);
    let mut pending = Vec::new();
    let mut items = Vec::new();
    let mut reply = Vec::new();
    for piece in pieces {
        pending.extend_from_slice(piece);
        loop {
            let step = ws.receive(&pending, &mut reply);
            assert!(step.used <= pending.len(), "used more than it was given");
            pending.drain(..step.used);
            match step.item {
                Some(item) => items.push(item),
                None if pending.is_empty() || !ws.holds_input() => break,
                None => {}
            }
        }
    }
    (items, reply)
}

fn check_decoded(text: &str) {
    let clean = |s: &str| !s.chars().any(|c| c.is_control() && c != '\t');
    match web::decode(text) {
        Ok(ClientMsg::Hello { name }) => assert!(clean(&name), "{name:?}"),
        Ok(ClientMsg::Say { text }) => assert!(clean(&text), "{text:?}"),
        Ok(_) => {}
        Err(DecodeError::WebMessage | DecodeError::WebVersion { .. }) => {}
        Err(other) => panic!("decode refused with {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut) * bytes.len() / 255;
    let (whole, whole_reply) = frames(&[bytes]);
    let (cut_items, cut_reply) = frames(&[&bytes[..at], &bytes[at..]]);
    assert_eq!(whole, cut_items, "the cut at {at} changed the items");
    assert_eq!(whole_reply, cut_reply, "the cut at {at} changed the answers");
    let last = whole
        .iter()
        .position(|item| matches!(item, WsItem::Closed(_) | WsItem::Failed(_)));
    if let Some(last) = last {
        assert_eq!(last, whole.len() - 1, "items after a close or a failure");
    }
    for item in &whole {
        if let WsItem::Text(text) = item {
            assert!(text.len() <= MAX_MESSAGE, "a message of {} bytes", text.len());
            check_decoded(text);
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        check_decoded(text);
    }
});
