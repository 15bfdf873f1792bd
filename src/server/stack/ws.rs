//! The WebSocket layer of a connection the page opened with an upgrade: tungstenite's
//! `WebSocketContext`, used sans-IO over a tiny adapter on our own buffers. It reads the client's
//! frames (masked, maybe fragmented, pings and a close among them) into whole text messages, and
//! writes its answers (pongs, the close handshake) into bytes the shell queues like any output.
//! The server's messages do not pass through it: each is one frame encoded once for every
//! recipient (`proto::web`), queued ahead of or after these answers, never inside one.

use std::io::{self, Read, Write};

use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

use crate::proto::web::close_reason;

/// Bytes tungstenite reads from the adapter at a time, and so keeps buffered per connection
/// beyond the message being read (its default is 128 KiB, for every connection).
const READ_BUFFER: usize = 512;

/// Why the client's frames cannot be read any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFailure {
    /// A message (or one of its frames) longer than the limit.
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// The framing broke: what tungstenite said.
    Protocol(String),
    /// A text message that is not UTF-8.
    NotUtf8,
}

/// What the client's bytes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum WsItem {
    /// A whole text message.
    Text(String),
    /// A whole binary message (the page never sends one).
    Binary,
    /// A ping (its pong is queued with the next step's answers) or a pong: no message, but
    /// flood control counts it as one, so that pings cannot make the server answer unchecked.
    Control,
    /// The client closed the WebSocket (its close frame's code, if it gave one); the answer is
    /// queued, and nothing more is to be sent.
    Closed(Option<u16>),
    /// The frames broke; the connection is to close with the close frame [`Ws::seal`] gives.
    Failed(WsFailure),
}

/// One step of reading: how many of the bytes given were taken, and what they made, if anything.
#[derive(Debug, PartialEq, Eq)]
pub struct WsStep {
    /// Bytes taken (into the layer's own small buffer, or used up).
    pub used: usize,
    /// A message, a close or a failure; `None` when more bytes are needed.
    pub item: Option<WsItem>,
}

/// A WebSocket connection's framing state (boxed in the connection: most connections are not
/// WebSocket ones).
#[derive(Debug)]
pub struct Ws {
    context: WebSocketContext,
    /// Whether the context may hold whole frames not read yet (it read ahead of a message).
    holds_input: bool,
    /// A close frame has been queued (ours or the answer to the client's): nothing more may be.
    sealed: bool,
    /// Reading stopped: the client closed, or its frames broke.
    done: bool,
    /// The close code to use when the connection closes, if the reason is the layer's own.
    close_code: Option<CloseCode>,
}

/// The adapter tungstenite reads and writes through: reading takes from a slice and says "would
/// block" when it is used up (never `Ok(0)`, which would mean the peer is gone); writing appends
/// to the bytes to queue.
struct Adapter<'a> {
    input: &'a [u8],
    used: usize,
    output: &'a mut Vec<u8>,
}

impl Read for Adapter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.used..];
        if rest.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.used += n;
        Ok(n)
    }
}

impl Write for Adapter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Ws {
    /// The layer for a connection just upgraded, taking messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Ws {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_write_buffer_size(64 * 1024)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        Ws {
            context: WebSocketContext::new(Role::Server, Some(config)),
            holds_input: false,
            sealed: false,
            done: false,
            close_code: None,
        }
    }

    /// Changes the message limit (once the user has joined, the limit of a text line).
    pub fn set_max_message(&mut self, max_message: usize) {
        self.context.set_config(|config| {
            config.max_message_size = Some(max_message);
            config.max_frame_size = Some(max_message);
        });
    }

    /// Whether it may hold whole frames already taken but not yet read: call [`Ws::receive`]
    /// again (with no new bytes) until it says it needs more.
    pub fn holds_input(&self) -> bool {
        self.holds_input && !self.done
    }

    /// Whether a close frame has been queued: no message may follow it.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Takes client bytes from `input` up to the next whole message, control frame, close or
    /// failure; answers (pongs, the close handshake) are appended to `reply`, a ping's with the
    /// step after it (which [`Ws::holds_input`] asks for).
    pub fn receive(&mut self, input: &[u8], reply: &mut Vec<u8>) -> WsStep {
        if self.done {
            return WsStep {
                used: input.len(),
                item: None,
            };
        }
        let mut io = Adapter {
            input,
            used: 0,
            output: reply,
        };
        let item = loop {
            match self.context.read(&mut io) {
                Ok(Message::Text(text)) => break Some(WsItem::Text(text.as_str().to_owned())),
                Ok(Message::Binary(_)) => break Some(WsItem::Binary),
                Ok(Message::Ping(_) | Message::Pong(_)) => break Some(WsItem::Control),
                Ok(Message::Frame(_)) => {}
                Ok(Message::Close(frame)) => {
                    // The answer to the close goes out now; nothing may follow it.
                    let _ = self.context.flush(&mut io);
                    self.sealed = true;
                    self.done = true;
                    break Some(WsItem::Closed(frame.map(|f| u16::from(f.code))));
                }
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    self.done = true;
                    break Some(WsItem::Closed(None));
                }
                Err(error) => {
                    self.done = true;
                    let (code, failure) = describe(error);
                    self.close_code = Some(code);
                    break Some(WsItem::Failed(failure));
                }
            }
        };
        self.holds_input = item.is_some();
        WsStep {
            used: io.used,
            item,
        }
    }

    /// The close frame to end the connection with, `why` as its reason, unless one was sent:
    /// the layer's own code for its failures, else 1001 (going away) when the server stops and
    /// 1000 otherwise. Nothing may be queued after it.
    pub fn seal(&mut self, why: &str, shutdown: bool) -> Vec<u8> {
        if self.sealed {
            return Vec::new();
        }
        self.sealed = true;
        let code = self.close_code.unwrap_or(if shutdown {
            CloseCode::Away
        } else {
            CloseCode::Normal
        });
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(close_reason(why)),
        };
        let mut bytes = Vec::new();
        let mut io = Adapter {
            input: &[],
            used: 0,
            output: &mut bytes,
        };
        // An answer to a ping not yet written goes out first; then the close.
        let _ = self.context.close(&mut io, Some(frame));
        bytes
    }
}

/// The close code and the failure for a tungstenite read error.
fn describe(error: WsError) -> (CloseCode, WsFailure) {
    match error {
        WsError::Capacity(CapacityError::MessageTooLong { max_size, .. }) => {
            (CloseCode::Size, WsFailure::TooLong { max: max_size })
        }
        WsError::Utf8(_) => (CloseCode::Invalid, WsFailure::NotUtf8),
        WsError::Protocol(ProtocolError::UnmaskedFrameFromClient) => (
            CloseCode::Protocol,
            WsFailure::Protocol("a frame from the client was not masked".to_owned()),
        ),
        other => (CloseCode::Protocol, WsFailure::Protocol(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
    use tungstenite::protocol::frame::{Frame, FrameHeader};

    /// A client frame: masked, as a browser sends it.
    fn client_frame(opcode: OpCode, payload: &[u8], is_final: bool) -> Vec<u8> {
        let mut frame = Frame::message(payload.to_vec(), OpCode::Data(Data::Text), is_final);
        frame.header_mut().opcode = opcode;
        frame.header_mut().mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    fn text(payload: &str) -> Vec<u8> {
        client_frame(OpCode::Data(Data::Text), payload.as_bytes(), true)
    }

    /// Feeds `chunks` as the shell does: append, take steps until one needs more bytes and the
    /// layer holds nothing whole. Control frames are counted, not listed.
    fn feed(ws: &mut Ws, chunks: &[&[u8]], reply: &mut Vec<u8>) -> Vec<WsItem> {
        feed_counting(ws, chunks, reply).0
    }

    fn feed_counting(ws: &mut Ws, chunks: &[&[u8]], reply: &mut Vec<u8>) -> (Vec<WsItem>, usize) {
        let mut buffer = Vec::new();
        let mut items = Vec::new();
        let mut controls = 0;
        for chunk in chunks {
            buffer.extend_from_slice(chunk);
            loop {
                let step = ws.receive(&buffer, reply);
                assert!(step.used <= buffer.len());
                buffer.drain(..step.used);
                match step.item {
                    Some(WsItem::Control) => controls += 1,
                    Some(item) => items.push(item),
                    None if buffer.is_empty() && !ws.holds_input() => break,
                    None => {}
                }
                if buffer.is_empty() && !ws.holds_input() {
                    break;
                }
            }
        }
        (items, controls)
    }

    /// The frames in `bytes`, as (opcode, payload), as a client reads them.
    fn server_frames(mut bytes: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let mut cursor = std::io::Cursor::new(bytes);
            let (header, len): (FrameHeader, u64) =
                FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.mask.is_none(), "server frames are not masked");
            let start = cursor.position() as usize;
            let end = start + len as usize;
            frames.push((header.opcode, bytes[start..end].to_vec()));
            bytes = &bytes[end..];
        }
        frames
    }

    #[test]
    fn messages_split_anywhere_come_out_whole_and_in_order() {
        let mut stream = text(r#"{"type":"say","text":"one"}"#);
        stream.extend(text(&"x".repeat(3000)));
        stream.extend(text("three"));
        for cut in [1, 2, 7, 100, 513, 2000, stream.len() - 1] {
            let mut ws = Ws::new(8192);
            let mut reply = Vec::new();
            let (a, b) = stream.split_at(cut);
            let items = feed(&mut ws, &[a, b], &mut reply);
            assert_eq!(
                items,
                vec![
                    WsItem::Text(r#"{"type":"say","text":"one"}"#.into()),
                    WsItem::Text("x".repeat(3000)),
                    WsItem::Text("three".into()),
                ],
                "cut at {cut}"
            );
            assert!(reply.is_empty());
        }
        // Byte by byte too.
        let mut ws = Ws::new(8192);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(feed(&mut ws, &bytes, &mut Vec::new()).len(), 3);
    }

    #[test]
    fn fragments_with_a_ping_between_make_one_message_and_the_ping_is_answered() {
        let mut stream = client_frame(OpCode::Data(Data::Text), b"hel", false);
        stream.extend(client_frame(OpCode::Control(Control::Ping), b"p1", true));
        stream.extend(client_frame(OpCode::Data(Data::Continue), b"lo", true));
        let mut ws = Ws::new(8192);
        let mut reply = Vec::new();
        let (items, controls) = feed_counting(&mut ws, &[&stream], &mut reply);
        assert_eq!(items, vec![WsItem::Text("hello".into())]);
        assert_eq!(controls, 1, "the ping counts for flood control");
        assert_eq!(
            server_frames(&reply),
            vec![(OpCode::Control(Control::Pong), b"p1".to_vec())]
        );
    }

    #[test]
    fn an_unmasked_client_frame_breaks_the_framing_with_code_1002() {
        let mut frame = Frame::message(b"hi".to_vec(), OpCode::Data(Data::Text), true);
        frame.header_mut().mask = None;
        let mut bytes = Vec::new();
        frame.format(&mut bytes).unwrap();
        let mut ws = Ws::new(8192);
        let items = feed(&mut ws, &[&bytes], &mut Vec::new());
        assert!(
            matches!(&items[..], [WsItem::Failed(WsFailure::Protocol(why))] if why.contains("masked")),
            "{items:?}"
        );
        let close = server_frames(&ws.seal("broken", false));
        assert_eq!(close.len(), 1);
        assert_eq!(close[0].0, OpCode::Control(Control::Close));
        assert_eq!(&close[0].1[..2], &1002u16.to_be_bytes());
        assert!(ws.is_sealed());
        assert!(ws.seal("again", false).is_empty(), "one close frame only");
    }

    #[test]
    fn an_oversize_message_fails_at_its_header_and_closes_with_1009() {
        let mut ws = Ws::new(100);
        let long = text(&"y".repeat(101));
        // Only the header has come: the limit is known before the payload is buffered.
        let items = feed(&mut ws, &[&long[..8]], &mut Vec::new());
        assert_eq!(items, vec![WsItem::Failed(WsFailure::TooLong { max: 100 })]);
        let close = server_frames(&ws.seal("message too long", false));
        assert_eq!(&close[0].1[..2], &1009u16.to_be_bytes());
        assert_eq!(&close[0].1[2..], b"message too long");
        // Fragments that add up to more than the limit fail too.
        let mut ws = Ws::new(100);
        let mut stream = client_frame(OpCode::Data(Data::Text), &[b'a'; 60], false);
        stream.extend(client_frame(
            OpCode::Data(Data::Continue),
            &[b'b'; 60],
            true,
        ));
        let items = feed(&mut ws, &[&stream], &mut Vec::new());
        assert_eq!(items, vec![WsItem::Failed(WsFailure::TooLong { max: 100 })]);
        // The limit can be raised (after joining).
        let mut ws = Ws::new(100);
        ws.set_max_message(200);
        assert_eq!(
            feed(&mut ws, &[&long], &mut Vec::new()),
            vec![WsItem::Text("y".repeat(101))]
        );
    }

    #[test]
    fn the_clients_close_is_answered_once_and_then_nothing_more_is_read() {
        let mut close = Frame::close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: Utf8Bytes::from("tab closed"),
        }));
        close.header_mut().mask = Some([1, 2, 3, 4]);
        let mut stream = Vec::new();
        close.format(&mut stream).unwrap();
        stream.extend(text("after the close"));
        let mut ws = Ws::new(8192);
        let mut reply = Vec::new();
        let items = feed(&mut ws, &[&stream], &mut reply);
        assert_eq!(items, vec![WsItem::Closed(Some(1001))]);
        let frames = server_frames(&reply);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, OpCode::Control(Control::Close));
        assert!(ws.is_sealed());
        assert!(ws.seal("bye", false).is_empty());
    }

    #[test]
    fn bad_utf8_and_binary_messages_are_told_apart() {
        let mut ws = Ws::new(8192);
        let bad = client_frame(OpCode::Data(Data::Text), b"\xff\xfe", true);
        assert_eq!(
            feed(&mut ws, &[&bad], &mut Vec::new()),
            vec![WsItem::Failed(WsFailure::NotUtf8)]
        );
        assert_eq!(
            &server_frames(&ws.seal("", false))[0].1[..2],
            &1007u16.to_be_bytes()
        );
        let mut ws = Ws::new(8192);
        let binary = client_frame(OpCode::Data(Data::Binary), b"\x00\x01", true);
        assert_eq!(
            feed(&mut ws, &[&binary], &mut Vec::new()),
            vec![WsItem::Binary]
        );
    }

    #[test]
    fn the_server_says_going_away_when_it_stops() {
        let mut ws = Ws::new(8192);
        let close = server_frames(&ws.seal("server shutting down", true));
        assert_eq!(&close[0].1[..2], &1001u16.to_be_bytes());
    }
}
