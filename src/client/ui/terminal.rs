//! The terminal itself: raw mode and the alternate screen while the window is up, put back however
//! the program ends (return, error, panic); and the keys and resizes, read on a thread of their
//! own and handed to the loop over a channel, waking it with a `mio::Waker`.
//!
//! Why a thread, not the tty in the poll: crossterm's reader keeps its own buffer of parsed input
//! and its own signal pipe for SIGWINCH, so a readable tty is neither needed for a resize nor one
//! event per wake-up; a blocking `event::read` on a thread hands over whole events and never
//! misses a resize. The thread touches nothing else: the loop stays the only one that draws or
//! uses the socket.
//!
//! crossterm is built with `use-dev-tty`, whose reader waits on the terminal with a
//! level-triggered poll(2). Its default reader waits with mio, edge-triggered, and reads the
//! terminal 1 KiB at a time, returning as soon as that gives an event: the rest of a paste stays
//! unread, with no new edge to wake it, until the next key press. With poll(2) whatever is still
//! unread wakes the next read at once, so a paste of any size is taken whole.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Once};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use mio::Waker;

use super::model::Key;

/// What the terminal reader passes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalInput {
    /// A key the window uses.
    Key(Key),
    /// The terminal is now this many columns and rows.
    Resize(u16, u16),
    /// The terminal cannot be read any more (it was closed).
    Ended,
}

/// Raw mode and the alternate screen, until dropped.
#[derive(Debug)]
pub struct TerminalGuard(());

impl TerminalGuard {
    /// Switches the terminal to raw mode and the alternate screen, after making sure a panic puts
    /// it back before its message is printed.
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        WINDOW_UP.store(true, Ordering::SeqCst);
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen) {
            restore();
            return Err(e);
        }
        Ok(TerminalGuard(()))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Whether the terminal is in the window's modes, to put it back exactly once: leaving the
/// alternate screen a second time would move the cursor over what was printed since.
static WINDOW_UP: AtomicBool = AtomicBool::new(false);

/// Leaves the alternate screen and raw mode and shows the cursor; once, however often called.
pub fn restore() {
    if WINDOW_UP.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
        let _ = terminal::disable_raw_mode();
    }
}

/// Restores the terminal before the default panic message, so the message is readable and the
/// shell usable. Installed once.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Starts the reader thread: each key the window uses and each resize is sent, then `waker` wakes
/// the loop. It ends when the terminal cannot be read or the loop is gone.
pub fn spawn_reader(waker: Arc<Waker>) -> io::Result<Receiver<TerminalInput>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("chat terminal".into())
        .spawn(move || loop {
            let input = match event::read() {
                Ok(Event::Key(key)) => match window_key(key) {
                    Some(key) => TerminalInput::Key(key),
                    None => continue,
                },
                Ok(Event::Resize(columns, rows)) => TerminalInput::Resize(columns, rows),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => TerminalInput::Ended,
            };
            if sender.send(input).is_err() || waker.wake().is_err() {
                return;
            }
            if input == TerminalInput::Ended {
                return;
            }
        })?;
    Ok(receiver)
}

/// The window's meaning of a key press; `None` for keys it ignores (and key releases).
pub fn window_key(key: KeyEvent) -> Option<Key> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let control = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    Some(match key.code {
        KeyCode::Char('c') if control => Key::Interrupt,
        KeyCode::Char('d') if control => Key::Delete,
        KeyCode::Char('a') if control => Key::Home,
        KeyCode::Char('e') if control => Key::End,
        KeyCode::Char('u') if control => Key::DeleteToStart,
        KeyCode::Char('n') if control => Key::NextRoom,
        KeyCode::Char('p') if control => Key::PreviousRoom,
        KeyCode::Char(c @ '1'..='9') if alt => Key::Room(c as u8 - b'1'),
        KeyCode::Char(_) if control || alt => return None,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Delete => Key::Delete,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Home if control => Key::Top,
        KeyCode::End if control => Key::Bottom,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Tab | KeyCode::BackTab => Key::Tab,
        KeyCode::Esc => Key::Escape,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
        window_key(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn keys_map_to_what_the_window_does_with_them() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(press(KeyCode::Char('x'), none), Some(Key::Char('x')));
        assert_eq!(
            press(KeyCode::Char('X'), KeyModifiers::SHIFT),
            Some(Key::Char('X'))
        );
        assert_eq!(press(KeyCode::Char('c'), ctrl), Some(Key::Interrupt));
        assert_eq!(press(KeyCode::Char('a'), ctrl), Some(Key::Home));
        assert_eq!(press(KeyCode::Char('z'), ctrl), None);
        assert_eq!(press(KeyCode::Char('n'), ctrl), Some(Key::NextRoom));
        assert_eq!(press(KeyCode::Char('p'), ctrl), Some(Key::PreviousRoom));
        assert_eq!(
            press(KeyCode::Char('1'), KeyModifiers::ALT),
            Some(Key::Room(0))
        );
        assert_eq!(
            press(KeyCode::Char('9'), KeyModifiers::ALT),
            Some(Key::Room(8))
        );
        assert_eq!(press(KeyCode::Char('0'), KeyModifiers::ALT), None);
        assert_eq!(press(KeyCode::Home, ctrl), Some(Key::Top));
        assert_eq!(press(KeyCode::End, none), Some(Key::End));
        assert_eq!(press(KeyCode::PageUp, none), Some(Key::PageUp));
        assert_eq!(press(KeyCode::F(5), none), None);
        let mut release = KeyEvent::new(KeyCode::Char('x'), none);
        release.kind = KeyEventKind::Release;
        assert_eq!(window_key(release), None);
    }
}
