//! The telnet layer in front of the text decoder: telnet commands out of the input, answers back.
//!
//! A `telnet` client mixes commands into what the user types, each starting with IAC (0xFF), a
//! byte that never occurs in UTF-8, so a plain `nc` user can never be misread as one. [`Telnet`]
//! is sans-IO: [`Telnet::receive`] takes bytes read from the peer and gives the text for the
//! decoder, the bytes to answer with, and whether the user pressed Ctrl-C (IAC IP).
//!
//! Negotiation follows RFC 854 and the rules of RFC 1143 that keep it from looping: an option the
//! server does not do is refused once per request, a refusal is never answered, and only a change
//! of state is acknowledged. The server does one option, ECHO, and only while the user types a
//! password ([`Telnet::hide_input`]); it answers every TIMING-MARK (RFC 860). It never sends
//! anything telnet-specific to a connection that has not sent a telnet command itself.

use super::text::CLIENT_EOL;

/// Interpret As Command: starts every telnet command.
pub const IAC: u8 = 255;
/// The peer asks for an option (the server would do it).
pub const DO: u8 = 253;
/// The peer refuses an option, or asks the server to stop it.
pub const DONT: u8 = 254;
/// The sender offers to do an option.
pub const WILL: u8 = 251;
/// The sender refuses to do an option, or stops it.
pub const WONT: u8 = 252;
/// Subnegotiation begins; its bytes run to IAC SE.
pub const SB: u8 = 250;
/// Subnegotiation ends.
pub const SE: u8 = 240;
/// Interrupt Process: the user pressed Ctrl-C.
pub const IP: u8 = 244;
/// Are You There: the user asks for a sign of life.
pub const AYT: u8 = 246;
/// The ECHO option (RFC 857): the side that does it echoes what the user types.
pub const ECHO: u8 = 1;
/// The TIMING-MARK option (RFC 860): answered once what came before it is dealt with.
pub const TIMING_MARK: u8 = 6;

/// The longest subnegotiation skipped; the bytes after a longer one are text.
pub const MAX_SUB: usize = 4096;

/// What the server says after an interrupt: the line being typed is gone. It starts on a line of
/// its own, as the terminal is left after the `^C` it echoed.
pub const INTERRUPTED: &str = "[*] Interrupted: the line you were typing was not sent.";
/// The answer to Are You There.
pub const HERE: &str = "[*] Yes, chatd is here.";

/// Where the parser is in a telnet command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    /// Plain data.
    Data,
    /// After IAC.
    Command,
    /// After IAC and a negotiation verb; the option byte comes next.
    Option(u8),
    /// Inside a subnegotiation, so many bytes into it: skipped up to IAC SE.
    Sub(usize),
    /// After IAC inside a subnegotiation, so many bytes into it.
    SubCommand(usize),
}

/// The server's side of the ECHO option (RFC 1143's states; the queue bit is not needed, as a
/// change of mind while waiting just asks again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Echo {
    /// The client echoes (the default).
    Off,
    /// WILL ECHO sent, no answer yet.
    AskedOn,
    /// The client has agreed not to echo.
    On,
    /// WONT ECHO sent, no answer yet.
    AskedOff,
}

/// What one [`Telnet::receive`] call found besides text and answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The user pressed Ctrl-C (IAC IP): the unfinished line was dropped from the text.
    pub interrupted: bool,
}

/// One connection's telnet state.
#[derive(Debug)]
pub struct Telnet {
    parse: Parse,
    echo: Echo,
    /// Whether the peer has sent a telnet command: only then does the server send any.
    seen: bool,
}

impl Default for Telnet {
    fn default() -> Telnet {
        Telnet::new()
    }
}

impl Telnet {
    /// A connection that has sent nothing yet.
    pub fn new() -> Telnet {
        Telnet {
            parse: Parse::Data,
            echo: Echo::Off,
            seen: false,
        }
    }

    /// Whether the peer has shown it is a telnet client by sending a telnet command.
    pub fn is_telnet(&self) -> bool {
        self.seen
    }

    /// Takes `input` from the peer: appends its text to `text` (a line cut by IAC IP is dropped
    /// back to the last LF in `text`) and the answers to send to `reply`.
    pub fn receive(&mut self, input: &[u8], text: &mut Vec<u8>, reply: &mut Vec<u8>) -> Received {
        let mut received = Received::default();
        let mut rest = input;
        while !rest.is_empty() {
            if self.parse == Parse::Data {
                // memchr, not a byte-at-a-time loop: this runs over every byte a text client
                // sends (300 instructions a chat line with `position`).
                let run = memchr::memchr(IAC, rest).unwrap_or(rest.len());
                let data = &rest[..run];
                if self.echo != Echo::Off && data.contains(&b'\n') {
                    // The hidden line (the password) is typed: echo as usual again.
                    self.show_input(reply);
                }
                text.extend_from_slice(data);
                rest = &rest[run..];
                if let Some((_, after)) = rest.split_first() {
                    self.parse = Parse::Command;
                    rest = after;
                }
                continue;
            }
            let (&byte, after) = match rest.split_first() {
                Some(split) => split,
                None => break,
            };
            rest = after;
            self.parse = match self.parse {
                Parse::Data => Parse::Data,
                Parse::Command => self.command(byte, text, reply, &mut received),
                Parse::Option(verb) => {
                    self.negotiate(verb, byte, reply);
                    Parse::Data
                }
                // Real subnegotiations are a few bytes: one that runs on is taken as ended, and
                // what follows is text, under the line limits.
                Parse::Sub(len) | Parse::SubCommand(len) if len >= MAX_SUB => Parse::Data,
                Parse::Sub(len) if byte == IAC => Parse::SubCommand(len + 1),
                Parse::Sub(len) => Parse::Sub(len + 1),
                Parse::SubCommand(len) => match byte {
                    SE => Parse::Data,
                    // A doubled IAC is a 0xFF inside the subnegotiation.
                    IAC => Parse::Sub(len + 1),
                    // Anything else ends a subnegotiation left open; the command is read as one.
                    other => self.command(other, text, reply, &mut received),
                },
            };
        }
        if received.interrupted {
            reply.extend_from_slice(CLIENT_EOL);
            reply.extend_from_slice(INTERRUPTED.as_bytes());
            reply.extend_from_slice(CLIENT_EOL);
        }
        received
    }

    /// Reads the byte after IAC; returns the state that follows.
    fn command(
        &mut self,
        byte: u8,
        text: &mut Vec<u8>,
        reply: &mut Vec<u8>,
        received: &mut Received,
    ) -> Parse {
        if byte == IAC {
            // IAC IAC is a literal 0xFF, which is not UTF-8: the decoder shows it as U+FFFD.
            text.push(IAC);
            return Parse::Data;
        }
        self.seen = true;
        match byte {
            WILL | WONT | DO | DONT => Parse::Option(byte),
            SB => Parse::Sub(0),
            IP => {
                let line_start = text
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |lf| lf + 1);
                text.truncate(line_start);
                received.interrupted = true;
                Parse::Data
            }
            AYT => {
                reply.extend_from_slice(CLIENT_EOL);
                reply.extend_from_slice(HERE.as_bytes());
                reply.extend_from_slice(CLIENT_EOL);
                Parse::Data
            }
            // NOP, data mark, break, abort output, erase character, erase line, go ahead: the
            // client edits lines itself, so none of them changes anything here.
            _ => Parse::Data,
        }
    }

    /// Answers `IAC verb option`.
    fn negotiate(&mut self, verb: u8, option: u8, reply: &mut Vec<u8>) {
        match (verb, option) {
            // Nothing comes before the mark that the server has not dealt with already.
            (DO, TIMING_MARK) => send(reply, WILL, TIMING_MARK),
            (DO, ECHO) => match self.echo {
                Echo::AskedOn => self.echo = Echo::On,
                Echo::On => {}
                // Asked to echo what the user types: the server never does that.
                Echo::Off => send(reply, WONT, ECHO),
                // The answer to a WILL sent before the WONT that follows it: the WONT stands.
                Echo::AskedOff => {}
            },
            (DONT, ECHO) => {
                // Stopped while on: acknowledged. A refusal or an acknowledgement: not answered.
                if self.echo == Echo::On {
                    send(reply, WONT, ECHO);
                }
                self.echo = Echo::Off;
            }
            // No other option is done by the server; a refusal of one is never answered.
            (DO, other) => send(reply, WONT, other),
            // The client may do no option; its refusals need no answer.
            (WILL, other) => send(reply, DONT, other),
            _ => {}
        }
    }

    /// Asks a telnet client not to echo what the user types next (a password). Nothing for a
    /// connection that has not sent a telnet command, or that hides its input already.
    pub fn hide_input(&mut self, reply: &mut Vec<u8>) {
        if self.seen && matches!(self.echo, Echo::Off | Echo::AskedOff) {
            send(reply, WILL, ECHO);
            self.echo = Echo::AskedOn;
        }
    }

    /// Lets the client echo again, if it was asked not to.
    fn show_input(&mut self, reply: &mut Vec<u8>) {
        if matches!(self.echo, Echo::On | Echo::AskedOn) {
            send(reply, WONT, ECHO);
            self.echo = Echo::AskedOff;
        }
    }
}

fn send(reply: &mut Vec<u8>, verb: u8, option: u8) {
    reply.extend_from_slice(&[IAC, verb, option]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to `telnet`; returns the text and the reply.
    fn feed(telnet: &mut Telnet, input: &[u8]) -> (Vec<u8>, Vec<u8>, Received) {
        let (mut text, mut reply) = (Vec::new(), Vec::new());
        let received = telnet.receive(input, &mut text, &mut reply);
        (text, reply, received)
    }

    fn interrupted_reply() -> Vec<u8> {
        format!("\r\n{INTERRUPTED}\r\n").into_bytes()
    }

    #[test]
    fn plain_text_passes_untouched_and_marks_no_telnet() {
        let mut telnet = Telnet::new();
        let input = "héllo\r\n/users\n\x1b[2J".as_bytes();
        assert_eq!(
            feed(&mut telnet, input),
            (input.to_vec(), vec![], Received::default())
        );
        assert!(!telnet.is_telnet());
        let mut reply = Vec::new();
        telnet.hide_input(&mut reply);
        assert!(reply.is_empty(), "no WILL ECHO for a plain client");
    }

    #[test]
    fn commands_and_subnegotiations_are_stripped_and_iac_iac_is_a_literal_ff() {
        let mut telnet = Telnet::new();
        let input = [
            b"a".as_slice(),
            &[IAC, 241], // NOP
            b"b",
            &[IAC, SB, 24, 0], // terminal type ...
            b"xterm",
            &[IAC, IAC, 7], // an escaped 0xFF inside it
            &[IAC, SE],
            b"c",
            &[IAC, IAC],
            b"d\r\n",
        ]
        .concat();
        let (text, reply, _) = feed(&mut telnet, &input);
        assert_eq!(text, b"abc\xffd\r\n");
        assert!(reply.is_empty());
        assert!(telnet.is_telnet());
    }

    #[test]
    fn a_command_split_at_every_point_gives_the_same_text_and_answers() {
        let input = [
            b"one\r\n".as_slice(),
            &[IAC, DO, 24, IAC, WILL, 31, IAC, SB, 31, 0, 80, IAC, SE],
            b"tw",
            &[IAC, IP, IAC, DO, TIMING_MARK],
            b"two\r\n",
        ]
        .concat();
        let whole = feed(&mut Telnet::new(), &input);
        assert_eq!(whole.0, b"one\r\ntwo\r\n");
        for split in 0..=input.len() {
            let mut telnet = Telnet::new();
            let (mut text, mut reply) = (Vec::new(), Vec::new());
            telnet.receive(&input[..split], &mut text, &mut reply);
            telnet.receive(&input[split..], &mut text, &mut reply);
            assert_eq!(text, whole.0, "text, split at {split}");
            // The interrupt's line goes after the answers of the read it came in.
            let mut negotiation: Vec<u8> = reply.clone();
            let note = interrupted_reply();
            let at = negotiation
                .windows(note.len())
                .position(|w| w == note.as_slice())
                .expect("the interrupt is answered");
            negotiation.drain(at..at + note.len());
            assert_eq!(
                negotiation,
                [IAC, WONT, 24, IAC, DONT, 31, IAC, WILL, TIMING_MARK],
                "answers, split at {split}"
            );
        }
    }

    #[test]
    fn ctrl_c_drops_the_unfinished_line_answers_the_timing_mark_then_says_so() {
        let mut telnet = Telnet::new();
        let mut text = b"whole line\nhalf a li".to_vec();
        let mut reply = Vec::new();
        let received = telnet.receive(
            &[b"ne".as_slice(), &[IAC, IP, IAC, DO, TIMING_MARK]].concat(),
            &mut text,
            &mut reply,
        );
        assert!(received.interrupted);
        assert_eq!(text, b"whole line\n");
        assert_eq!(
            reply,
            [[IAC, WILL, TIMING_MARK].as_slice(), &interrupted_reply()].concat()
        );
        let (text, reply, received) = feed(&mut telnet, b"after\r\n");
        assert_eq!(
            (text, reply, received),
            (b"after\r\n".to_vec(), vec![], Received::default())
        );
    }

    #[test]
    fn every_timing_mark_is_answered_and_are_you_there_gets_a_line() {
        let mut telnet = Telnet::new();
        let (_, reply, _) = feed(
            &mut telnet,
            &[IAC, DO, TIMING_MARK, IAC, DO, TIMING_MARK, IAC, AYT],
        );
        assert_eq!(
            reply,
            [
                [IAC, WILL, TIMING_MARK, IAC, WILL, TIMING_MARK].as_slice(),
                format!("\r\n{HERE}\r\n").as_bytes()
            ]
            .concat()
        );
    }

    #[test]
    fn refusals_are_never_answered_so_negotiation_cannot_loop() {
        let mut telnet = Telnet::new();
        // Options asked for get one refusal each; refusals and stops of what is off get nothing.
        let (_, reply, _) = feed(&mut telnet, &[IAC, DO, 3, IAC, WILL, 1]);
        assert_eq!(reply, [IAC, WONT, 3, IAC, DONT, 1]);
        let (_, reply, _) = feed(
            &mut telnet,
            &[IAC, WONT, 3, IAC, DONT, 3, IAC, WONT, ECHO, IAC, DONT, ECHO],
        );
        assert!(reply.is_empty(), "{reply:?}");
        // Asked to echo, the server refuses: it does not echo what users type.
        let (_, reply, _) = feed(&mut telnet, &[IAC, DO, ECHO]);
        assert_eq!(reply, [IAC, WONT, ECHO]);
    }

    #[test]
    fn a_password_is_typed_with_echo_off_and_echo_comes_back_after_its_line() {
        let mut telnet = Telnet::new();
        feed(&mut telnet, &[IAC, DO, TIMING_MARK]);
        let mut reply = Vec::new();
        telnet.hide_input(&mut reply);
        assert_eq!(reply, [IAC, WILL, ECHO]);
        // Asked again before the answer (a second prompt): nothing more to say.
        reply.clear();
        telnet.hide_input(&mut reply);
        assert!(reply.is_empty());
        // The client agrees; that agreement is not answered.
        let (_, reply, _) = feed(&mut telnet, &[IAC, DO, ECHO]);
        assert!(reply.is_empty());
        // Half the password is no line yet; its end turns echo back on.
        let (_, reply, _) = feed(&mut telnet, b"sec");
        assert!(reply.is_empty());
        let (text, reply, _) = feed(&mut telnet, b"ret\r\nnext");
        assert_eq!(
            (text, reply),
            (b"ret\r\nnext".to_vec(), vec![IAC, WONT, ECHO])
        );
        // The client's acknowledgement ends it; nothing more is sent.
        let (_, reply, _) = feed(&mut telnet, &[IAC, DONT, ECHO]);
        assert!(reply.is_empty());
        let (_, reply, _) = feed(&mut telnet, b"more\r\n");
        assert!(reply.is_empty());
        // A wrong password's prompt again: off again.
        let mut reply = Vec::new();
        telnet.hide_input(&mut reply);
        assert_eq!(reply, [IAC, WILL, ECHO]);
    }

    #[test]
    fn a_client_that_refuses_to_stop_echoing_is_not_asked_again_until_the_next_prompt() {
        let mut telnet = Telnet::new();
        feed(&mut telnet, &[IAC, WONT, 0]);
        let mut reply = Vec::new();
        telnet.hide_input(&mut reply);
        let (_, reply, _) = feed(&mut telnet, &[IAC, DONT, ECHO]);
        assert!(reply.is_empty(), "a refusal is not answered");
        let (_, reply, _) = feed(&mut telnet, b"pw\r\n");
        assert!(reply.is_empty(), "echo was never off: nothing to turn on");
    }

    #[test]
    fn a_subnegotiation_that_never_ends_is_cut_and_what_follows_is_text() {
        let mut telnet = Telnet::new();
        // The option byte and MAX_SUB - 1 more are skipped, one more ends it, ten are text.
        let mut input = vec![IAC, SB, 24];
        input.extend(std::iter::repeat_n(b'x', MAX_SUB + 10));
        let (text, _, _) = feed(&mut telnet, &input);
        assert_eq!(text, [b'x'; 10]);
    }

    #[test]
    fn an_open_subnegotiation_ended_by_another_command_does_not_swallow_text() {
        let mut telnet = Telnet::new();
        let (text, reply, _) = feed(
            &mut telnet,
            &[[IAC, SB, 24, 1, IAC, DO, TIMING_MARK].as_slice(), b"hi\n"].concat(),
        );
        assert_eq!(text, b"hi\n");
        assert_eq!(reply, [IAC, WILL, TIMING_MARK]);
    }
}
