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
    /// The complete (unmasked) server WebSocket frame.
    web: Option<Rc<[u8]>>,
    /// IRC lines: without tags and with them, each without away changes and with them.
    irc: [Option<Rc<[u8]>>; 4],
}

impl WireBytes {
    /// Nothing encoded yet.
    pub fn new(msg: ServerMsg) -> WireBytes {
        WireBytes {
            msg,
            text: None,
            framed: None,
            web: None,
            irc: Default::default(),
        }
    }

    /// The message itself.
    pub fn msg(&self) -> &ServerMsg {
        &self.msg
    }

    /// The bytes for a client speaking `mode`, shared with every other such recipient.
    pub fn for_mode(&mut self, mode: Mode) -> Rc<[u8]> {
        // Most messages are a chat line: one allocation, not a few regrowths.
        self.for_mode_in(mode, &mut Vec::with_capacity(256))
    }

    /// [`WireBytes::for_mode`], encoding in `scratch` (a buffer kept from one message to the next)
    /// so that the bytes get the one allocation they are shared in.
    pub fn for_mode_in(&mut self, mode: Mode, scratch: &mut Vec<u8>) -> Rc<[u8]> {
        let slot = match mode {
            Mode::Text => &mut self.text,
            Mode::Framed => &mut self.framed,
            Mode::Web => &mut self.web,
            Mode::Irc(wire) => {
                &mut self.irc[usize::from(wire.tags) + 2 * usize::from(wire.away_notify)]
            }
        };
        let msg = &self.msg;
        Rc::clone(slot.get_or_insert_with(|| {
            scratch.clear();
            proto::encode(mode, msg, scratch);
            Rc::from(&scratch[..])
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
        let web = wire.for_mode(Mode::Web);
        assert_eq!(&text[..], b"[*] bob entered.\r\n");
        assert_eq!(framed[0], 0, "a frame starts with 0x00");
        assert_eq!(web[0], 0x81, "one final text frame");
        assert!(web.ends_with(br#""name":"bob","reason":null}"#), "{web:?}");
        assert!(Rc::ptr_eq(&text, &wire.for_mode(Mode::Text)));
        assert!(Rc::ptr_eq(&framed, &wire.for_mode(Mode::Framed)));
        assert!(Rc::ptr_eq(&web, &wire.for_mode(Mode::Web)));
    }

    #[test]
    fn irc_has_one_slot_with_tags_and_one_without() {
        use crate::proto::irc::{IrcContext, IrcWire};
        use crate::proto::msg::{LineId, Stamp};
        let ctx = IrcContext::leak("irc.test", "#lobby", 0, true);
        let msg = ServerMsg::Line {
            id: LineId {
                epoch: 1,
                room: 0,
                seq: 2,
            },
            msg: Box::new(ServerMsg::Chat {
                at: Stamp::new(0, 0, 0, 0),
                from: "bob".into(),
                text: "hi".into(),
            }),
        };
        let mut wire = WireBytes::new(msg);
        let plain = Mode::Irc(IrcWire {
            tags: false,
            away_notify: false,
            ctx,
        });
        let tagged = Mode::Irc(IrcWire {
            tags: true,
            away_notify: false,
            ctx,
        });
        let a = wire.for_mode(plain);
        let b = wire.for_mode(tagged);
        assert_eq!(&a[..], b":bob!bob@chatd PRIVMSG #lobby :hi\r\n");
        assert_eq!(
            &b[..],
            b"@time=1970-01-01T00:00:00.000Z;msgid=1-0-2 :bob!bob@chatd PRIVMSG #lobby :hi\r\n"
        );
        assert!(Rc::ptr_eq(&a, &wire.for_mode(plain)));
        assert!(Rc::ptr_eq(&b, &wire.for_mode(tagged)));
    }
}
