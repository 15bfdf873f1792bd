//! One message's bytes per wire mode, shared by every recipient that speaks the mode.

use std::rc::Rc;

use crate::proto::{self, Mode, ServerMsg};

/// A message and its encodings: each mode's bytes are made the first time a recipient needs them,
/// so a broadcast costs one encoding (and one digest) per mode, whatever the number of recipients.
#[derive(Debug)]
pub struct WireBytes {
    msg: ServerMsg,
    text: Option<Rc<[u8]>>,
    framed: Option<Rc<[u8]>>,
}

impl WireBytes {
    /// Nothing encoded yet.
    pub fn new(msg: ServerMsg) -> WireBytes {
        WireBytes {
            msg,
            text: None,
            framed: None,
        }
    }

    /// The message itself.
    pub fn msg(&self) -> &ServerMsg {
        &self.msg
    }

    /// The bytes for a client speaking `mode`, shared with every other such recipient.
    pub fn for_mode(&mut self, mode: Mode) -> Rc<[u8]> {
        let slot = match mode {
            Mode::Text => &mut self.text,
            Mode::Framed => &mut self.framed,
        };
        let msg = &self.msg;
        Rc::clone(slot.get_or_insert_with(|| {
            // Most messages are a chat line: one allocation, not a few regrowths.
            let mut bytes = Vec::with_capacity(256);
            proto::encode(mode, msg, &mut bytes);
            Rc::from(bytes)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::Event;

    #[test]
    fn each_mode_is_encoded_once_and_shared() {
        let msg = ServerMsg::Event(Event::Entered { name: "bob".into() });
        let mut wire = WireBytes::new(msg);
        let text = wire.for_mode(Mode::Text);
        let framed = wire.for_mode(Mode::Framed);
        assert_eq!(&text[..], b"[*] bob entered.\r\n");
        assert_eq!(framed[0], 0, "a frame starts with 0x00");
        assert!(Rc::ptr_eq(&text, &wire.for_mode(Mode::Text)));
        assert!(Rc::ptr_eq(&framed, &wire.for_mode(Mode::Framed)));
    }
}
