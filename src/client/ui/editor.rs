//! The input line: text with a cursor, edited key by key, and the history of lines sent.

use super::wrap::char_width;

/// One line of text being typed, with a cursor between characters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEditor {
    chars: Vec<char>,
    /// Index into `chars`: the cursor is before this character.
    cursor: usize,
    /// UTF-8 bytes of `chars`, kept to refuse typing past the limit.
    bytes: usize,
    max_bytes: usize,
}

impl LineEditor {
    /// An empty line that takes at most `max_bytes` bytes of UTF-8.
    pub fn new(max_bytes: usize) -> LineEditor {
        LineEditor {
            max_bytes,
            ..LineEditor::default()
        }
    }

    /// A line holding `text`, the cursor at its end.
    pub fn with_text(max_bytes: usize, text: &str) -> LineEditor {
        let mut editor = LineEditor::new(max_bytes);
        editor.set(text);
        editor
    }

    /// The text.
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// The characters, for drawing.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Where the cursor is, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Inserts `c` at the cursor; `false` (and nothing changes) if the line would be too long or
    /// `c` is a control character.
    pub fn insert(&mut self, c: char) -> bool {
        if c.is_control() || self.bytes + c.len_utf8() > self.max_bytes {
            return false;
        }
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
        self.bytes += c.len_utf8();
        true
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let c = self.chars.remove(self.cursor);
            self.bytes -= c.len_utf8();
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            let c = self.chars.remove(self.cursor);
            self.bytes -= c.len_utf8();
        }
    }

    /// Deletes everything before the cursor.
    pub fn delete_to_start(&mut self) {
        let removed: String = self.chars.drain(..self.cursor).collect();
        self.bytes -= removed.len();
        self.cursor = 0;
    }

    /// Moves the cursor one character left.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Moves the cursor one character right.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    /// Moves the cursor to the start.
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// Moves the cursor to the end.
    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    /// Replaces the text with `text` (cut at the byte limit), the cursor at its end.
    pub fn set(&mut self, text: &str) {
        self.chars.clear();
        self.bytes = 0;
        self.cursor = 0;
        for c in text.chars() {
            if !self.insert(c) {
                break;
            }
        }
    }

    /// Takes the text out, leaving the line empty.
    pub fn take(&mut self) -> String {
        let text = self.text();
        self.set("");
        text
    }

    /// The part of the line to draw in a field `width` columns wide so that the cursor shows: the
    /// text from some character on, and the cursor's column within it.
    pub fn visible(&self, width: usize) -> (String, usize) {
        let width = width.max(1);
        // Scroll just far enough that the cursor (and the character under it) fits: walk back
        // from the cursor while the columns before it stay under the width. Linear in what is
        // shown, so a long pasted line draws as fast as a short one.
        let mut first = self.cursor;
        let mut before_cursor = 0;
        while let Some(&c) = first.checked_sub(1).and_then(|i| self.chars.get(i)) {
            if before_cursor + char_width(c) >= width {
                break;
            }
            before_cursor += char_width(c);
            first -= 1;
        }
        let mut text = String::new();
        let mut used = 0;
        for &c in &self.chars[first..] {
            let w = char_width(c);
            if used + w > width {
                break;
            }
            text.push(c);
            used += w;
        }
        (text, before_cursor)
    }
}

/// Lines sent, oldest first, browsed with up and down; what was being typed is kept aside while
/// browsing and comes back below the newest.
#[derive(Clone, Debug, Default)]
pub struct History {
    lines: Vec<String>,
    max_lines: usize,
    /// The line shown while browsing, as an index into `lines`.
    browsing: Option<usize>,
    /// What was typed before browsing started.
    draft: String,
}

impl History {
    /// An empty history that keeps the last `max_lines` lines.
    pub fn new(max_lines: usize) -> History {
        History {
            max_lines,
            ..History::default()
        }
    }

    /// Records a line sent (not a blank one, nor a repeat of the last) and stops browsing.
    pub fn push(&mut self, line: &str) {
        self.browsing = None;
        self.draft.clear();
        if line.trim().is_empty() || self.lines.last().is_some_and(|last| last == line) {
            return;
        }
        self.lines.push(line.to_owned());
        if self.lines.len() > self.max_lines {
            self.lines.remove(0);
        }
    }

    /// One line back from what `editor` shows; the first step keeps the text typed as the draft.
    pub fn older(&mut self, editor: &mut LineEditor) {
        let index = match self.browsing {
            None if self.lines.is_empty() => return,
            None => {
                self.draft = editor.text();
                self.lines.len() - 1
            }
            Some(index) => index.saturating_sub(1),
        };
        self.browsing = Some(index);
        editor.set(&self.lines[index]);
    }

    /// One line forward; past the newest, the draft comes back.
    pub fn newer(&mut self, editor: &mut LineEditor) {
        let Some(index) = self.browsing else { return };
        if index + 1 < self.lines.len() {
            self.browsing = Some(index + 1);
            editor.set(&self.lines[index + 1]);
        } else {
            self.browsing = None;
            editor.set(&std::mem::take(&mut self.draft));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> LineEditor {
        let mut editor = LineEditor::new(64);
        for c in text.chars() {
            editor.insert(c);
        }
        editor
    }

    #[test]
    fn editing_moves_the_cursor_and_deletes_on_either_side() {
        let mut e = typed("helo");
        e.left();
        e.insert('l');
        assert_eq!((e.text().as_str(), e.cursor()), ("hello", 4));
        e.home();
        e.delete();
        e.end();
        e.backspace();
        assert_eq!(e.text(), "ell");
        e.home();
        e.backspace();
        e.left();
        assert_eq!((e.text().as_str(), e.cursor()), ("ell", 0));
        e.end();
        e.right();
        e.delete();
        assert_eq!((e.text().as_str(), e.cursor()), ("ell", 3));
        e.left();
        e.delete_to_start();
        assert_eq!((e.text().as_str(), e.cursor()), ("l", 0));
        assert_eq!(e.take(), "l");
        assert!(e.is_empty());
    }

    #[test]
    fn the_byte_limit_and_control_characters_are_refused() {
        let mut e = LineEditor::new(4);
        assert!(e.insert('a'));
        assert!(e.insert('é'));
        assert!(!e.insert('\u{1b}'));
        assert!(!e.insert('日'), "3 more bytes would make 6");
        assert!(e.insert('b'));
        assert!(!e.insert('c'));
        assert_eq!(e.text(), "aéb");
        e.backspace();
        assert!(e.insert('c'));
        assert_eq!(LineEditor::with_text(2, "abc").text(), "ab");
    }

    #[test]
    fn a_long_line_scrolls_so_the_cursor_stays_visible() {
        let mut e = typed("abcdefghij");
        assert_eq!(e.visible(4), ("hij".to_owned(), 3));
        e.home();
        assert_eq!(e.visible(4), ("abcd".to_owned(), 0));
        e.right();
        e.right();
        assert_eq!(e.visible(20), ("abcdefghij".to_owned(), 2));
        let wide = typed("日本語");
        assert_eq!(wide.visible(4), ("語".to_owned(), 2));
    }

    #[test]
    fn history_goes_back_and_forth_and_gives_back_the_draft() {
        let mut history = History::new(2);
        for line in ["one", "two", "two", "  ", "three"] {
            history.push(line);
        }
        let mut e = typed("draft");
        history.older(&mut e);
        assert_eq!(e.text(), "three");
        history.older(&mut e);
        assert_eq!(e.text(), "two");
        history.older(&mut e);
        assert_eq!(e.text(), "two", "only the last two are kept");
        history.newer(&mut e);
        assert_eq!(e.text(), "three");
        history.newer(&mut e);
        assert_eq!(e.text(), "draft");
        history.newer(&mut e);
        assert_eq!(e.text(), "draft");
        let mut empty = History::new(5);
        empty.older(&mut e);
        assert_eq!(e.text(), "draft");
    }
}
