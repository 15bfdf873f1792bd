//! Typing at the console when stdin and stdout are a terminal: the terminal's modes while chatd
//! runs, the keys read from fd 0 on the server's poll, and the line being typed.
//!
//! The terminal stays in cooked output (OPOST: `\n` still ends a line) and keeps its signals
//! (ISIG: Ctrl-C is SIGINT, which stops chatd as `EXIT` does); only line editing and echo move
//! from the kernel to chatd, so the half-typed line can be drawn again under incoming output.
//! No line-editing crate fits here: rustyline and reedline own a blocking read loop, and
//! crossterm's key reader wants a thread of its own, while the console is read on the poll.

use std::io;
use std::sync::{Mutex, Once, PoisonError};

use rustix::termios::{self, InputModes, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

use crate::client::ui::editor::{History, LineEditor};
use crate::proto::sanitize;

/// The terminal's modes before chatd changed them, to put back exactly once.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Stdin's terminal without line editing and echo, until dropped (or a panic).
#[derive(Debug)]
pub struct RawMode(());

impl RawMode {
    /// Turns off the terminal's own line editing and echo on stdin, after making sure a panic puts
    /// them back before its message is printed.
    pub fn enter() -> io::Result<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::IEXTEN);
        // Ctrl-S and Ctrl-Q are not flow control, and Enter arrives as the CR it is.
        raw.input_modes.remove(InputModes::IXON | InputModes::ICRNL);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        install_panic_hook();
        *SAVED.lock().unwrap_or_else(PoisonError::into_inner) = Some(saved);
        if let Err(e) = termios::tcsetattr(&stdin, OptionalActions::Now, &raw) {
            restore();
            return Err(e.into());
        }
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal's modes back, if chatd changed them and has not put them back yet.
fn restore() {
    let saved = SAVED.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &saved);
    }
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// The terminal's width in columns, if stdout is a terminal that says.
pub fn width() -> Option<usize> {
    let size = termios::tcgetwinsize(io::stdout()).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// A key the console's line uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A character to insert.
    Char(char),
    /// Enter (CR, LF, or CR LF as one).
    Enter,
    /// Backspace (DEL or Ctrl-H).
    Backspace,
    /// Delete (the key, `ESC [ 3 ~`).
    Delete,
    /// Left arrow or Ctrl-B.
    Left,
    /// Right arrow or Ctrl-F.
    Right,
    /// Home or Ctrl-A.
    Home,
    /// End or Ctrl-E.
    End,
    /// Up arrow or Ctrl-P: the line before in the history.
    Up,
    /// Down arrow or Ctrl-N: the line after in the history.
    Down,
    /// Ctrl-U: delete everything before the cursor.
    DeleteToStart,
    /// Ctrl-D: close the console on an empty line, else delete under the cursor.
    CtrlD,
}

/// Where the decoder is in the bytes of a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    /// After ESC.
    Escape,
    /// After `ESC [`: the parameter bytes so far.
    Csi(Vec<u8>),
    /// After `ESC O`.
    Ss3,
    /// Inside a UTF-8 character: its bytes so far and how many it has.
    Utf8(Vec<u8>, usize),
}

/// Longest CSI parameter string kept; a longer sequence is still skipped whole.
const MAX_CSI: usize = 16;

/// Turns the bytes a terminal sends for keys into [`Key`]s; a key split across reads waits for
/// the rest. Keys the console does not use (function keys, Alt-letters) are skipped whole.
#[derive(Debug, Default)]
pub struct KeyDecoder {
    state: State,
    /// The last byte was a CR: an LF right after it is the same Enter.
    after_cr: bool,
}

impl KeyDecoder {
    /// A decoder at the start of a key.
    pub fn new() -> KeyDecoder {
        KeyDecoder::default()
    }

    /// Decodes `bytes`, appending every whole key to `keys`.
    pub fn push(&mut self, bytes: &[u8], keys: &mut Vec<Key>) {
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match std::mem::take(&mut self.state) {
                State::Ground => self.ground(byte, after_cr, keys),
                State::Escape => match byte {
                    b'[' => self.state = State::Csi(Vec::new()),
                    b'O' => self.state = State::Ss3,
                    0x1b => self.state = State::Escape,
                    _ => {}
                },
                State::Csi(mut params) => match byte {
                    0x20..=0x3f => {
                        if params.len() < MAX_CSI {
                            params.push(byte);
                        }
                        self.state = State::Csi(params);
                    }
                    0x40..=0x7e => keys.extend(csi_key(&params, byte)),
                    // A control byte cuts the sequence short; it is read as itself.
                    _ => self.ground(byte, after_cr, keys),
                },
                State::Ss3 => keys.extend(csi_key(&[], byte)),
                State::Utf8(mut held, len) => {
                    if (0x80..=0xbf).contains(&byte) {
                        held.push(byte);
                        if held.len() < len {
                            self.state = State::Utf8(held, len);
                        } else if let Some(c) = std::str::from_utf8(&held)
                            .ok()
                            .and_then(|s| s.chars().next())
                        {
                            keys.push(Key::Char(c));
                        }
                    } else {
                        // Not a continuation: the broken character is dropped.
                        self.ground(byte, after_cr, keys);
                    }
                }
            }
        }
    }

    fn ground(&mut self, byte: u8, after_cr: bool, keys: &mut Vec<Key>) {
        let key = match byte {
            0x1b => {
                self.state = State::Escape;
                return;
            }
            b'\r' => {
                self.after_cr = true;
                Key::Enter
            }
            b'\n' if after_cr => return,
            b'\n' => Key::Enter,
            0x7f | 0x08 => Key::Backspace,
            0x01 => Key::Home,
            0x02 => Key::Left,
            0x04 => Key::CtrlD,
            0x05 => Key::End,
            0x06 => Key::Right,
            0x0e => Key::Down,
            0x10 => Key::Up,
            0x15 => Key::DeleteToStart,
            0x20..=0x7e => Key::Char(char::from(byte)),
            // The first byte of a UTF-8 character says how many it has.
            0xc2..=0xf4 => {
                let len = match byte {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                self.state = State::Utf8(vec![byte], len);
                return;
            }
            // Other control bytes, and bytes that cannot start a character, are skipped.
            _ => return,
        };
        keys.push(key);
    }
}

/// The key a CSI (`ESC [ PARAMS FINAL`) or SS3 (`ESC O FINAL`) sequence stands for, if one used.
fn csi_key(params: &[u8], last: u8) -> Option<Key> {
    // Modifiers (`1;5C` is Ctrl-Right) do not change what the key does here.
    let first = params.split(|&b| b == b';').next().unwrap_or(&[]);
    Some(match (last, first) {
        (b'A', _) => Key::Up,
        (b'B', _) => Key::Down,
        (b'C', _) => Key::Right,
        (b'D', _) => Key::Left,
        (b'H', _) => Key::Home,
        (b'F', _) => Key::End,
        (b'~', b"1" | b"7") => Key::Home,
        (b'~', b"4" | b"8") => Key::End,
        (b'~', b"3") => Key::Delete,
        _ => return None,
    })
}

/// What a key did to the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edited {
    /// The line or its cursor changed (or may have): draw it again.
    Changed,
    /// Enter: the line typed, sanitized as piped lines are; the line is empty again.
    Line(String),
    /// Ctrl-D on an empty line: the host closes the console.
    Close,
}

/// Lines kept for Up and Down.
const HISTORY_LINES: usize = 100;

/// The line being typed at the console, with a cursor and the lines typed before.
#[derive(Debug)]
pub struct EditLine {
    editor: LineEditor,
    history: History,
}

impl EditLine {
    /// An empty line that takes at most `max_bytes` bytes.
    pub fn new(max_bytes: usize) -> EditLine {
        EditLine {
            editor: LineEditor::new(max_bytes),
            history: History::new(HISTORY_LINES),
        }
    }

    /// Applies `key`.
    pub fn key(&mut self, key: Key) -> Edited {
        let editor = &mut self.editor;
        match key {
            Key::Char(c) => {
                editor.insert(c);
            }
            Key::Enter => {
                let line = editor.take();
                self.history.push(&line);
                return Edited::Line(sanitize(line.as_bytes()));
            }
            Key::CtrlD if editor.is_empty() => return Edited::Close,
            Key::CtrlD | Key::Delete => editor.delete(),
            Key::Backspace => editor.backspace(),
            Key::Left => editor.left(),
            Key::Right => editor.right(),
            Key::Home => editor.home(),
            Key::End => editor.end(),
            Key::Up => self.history.older(editor),
            Key::Down => self.history.newer(editor),
            Key::DeleteToStart => editor.delete_to_start(),
        }
        Edited::Changed
    }

    /// The part of the line to show in `width` columns and the cursor's column in it.
    pub fn visible(&self, width: usize) -> (String, usize) {
        self.editor.visible(width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut decoder = KeyDecoder::new();
        let mut keys = Vec::new();
        decoder.push(bytes, &mut keys);
        keys
    }

    #[test]
    fn keys_are_decoded_from_what_terminals_send() {
        assert_eq!(
            keys(b"hi\x7f\x1b[D\x1b[C\x1bOH\x1b[4~\x1b[3~\x1b[1;5D\x01\x05\x15\x04\r"),
            vec![
                Key::Char('h'),
                Key::Char('i'),
                Key::Backspace,
                Key::Left,
                Key::Right,
                Key::Home,
                Key::End,
                Key::Delete,
                Key::Left,
                Key::Home,
                Key::End,
                Key::DeleteToStart,
                Key::CtrlD,
                Key::Enter
            ]
        );
        // CR LF is one Enter; a lone LF is one too; F5 and Alt-x are skipped whole.
        assert_eq!(
            keys(b"a\r\nb\n\x1b[15~\x1bxc"),
            vec![
                Key::Char('a'),
                Key::Enter,
                Key::Char('b'),
                Key::Enter,
                Key::Char('c')
            ]
        );
    }

    #[test]
    fn a_key_split_across_reads_waits_for_the_rest() {
        let mut decoder = KeyDecoder::new();
        let mut got = Vec::new();
        let bytes = "é€\x1b[D".as_bytes();
        for byte in bytes {
            decoder.push(std::slice::from_ref(byte), &mut got);
        }
        assert_eq!(got, vec![Key::Char('é'), Key::Char('€'), Key::Left]);
        // A broken character is dropped; what follows it is read.
        assert_eq!(keys(b"\xc3x\xffy"), vec![Key::Char('x'), Key::Char('y')]);
    }

    #[test]
    fn the_line_is_edited_sent_and_recalled() {
        let mut line = EditLine::new(64);
        let typed = b"helo wrld\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dl\x05\x1b[D\x1b[D\x1b[Do";
        for key in keys(typed) {
            assert_eq!(line.key(key), Edited::Changed);
        }
        assert_eq!(line.visible(80), ("hello world".into(), 8));
        assert_eq!(line.key(Key::Enter), Edited::Line("hello world".into()));
        assert_eq!(line.visible(80), (String::new(), 0));
        line.key(Key::Up);
        assert_eq!(line.visible(80).0, "hello world");
        line.key(Key::Down);
        assert_eq!(line.visible(80).0, "");
    }

    #[test]
    fn ctrl_d_closes_only_an_empty_line() {
        let mut line = EditLine::new(64);
        line.key(Key::Char('a'));
        line.key(Key::Char('b'));
        line.key(Key::Home);
        assert_eq!(line.key(Key::CtrlD), Edited::Changed);
        assert_eq!(line.visible(80), ("b".into(), 0));
        line.key(Key::CtrlD);
        assert_eq!(line.key(Key::CtrlD), Edited::Close);
    }
}
