//! Text measured in terminal columns, and lines wrapped into rows of a given width. The model
//! counts rows with it to scroll, and the view draws the same rows, so the two always agree.

use std::ops::Range;

use unicode_width::UnicodeWidthChar;

/// Columns `c` takes on a terminal (0 for characters that take none).
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// Splits `text` into rows of at most `width` columns (at least 1), as byte ranges: after the last
/// space that fits, else mid-word. Empty text is one empty row; a character wider than the row
/// gets a row of its own.
pub fn rows(text: &str, width: usize) -> Vec<Range<usize>> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut start = 0;
    let mut column = 0;
    // Where a row may end: just after the last space, and the column there.
    let mut last_break: Option<(usize, usize)> = None;
    for (at, c) in text.char_indices() {
        let w = char_width(c);
        while column + w > width && at > start {
            match last_break.take() {
                Some((end, end_column)) if end > start => {
                    rows.push(start..end);
                    start = end;
                    column -= end_column;
                }
                _ => {
                    rows.push(start..at);
                    start = at;
                    column = 0;
                }
            }
        }
        column += w;
        if c == ' ' {
            last_break = Some((at + c.len_utf8(), column));
        }
    }
    rows.push(start..text.len());
    rows
}

/// How many rows [`rows`] makes of `text`.
pub fn row_count(text: &str, width: usize) -> usize {
    rows(text, width).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(text: &str, width: usize) -> Vec<&str> {
        rows(text, width).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn rows_break_after_the_last_space_that_fits() {
        assert_eq!(wrapped("hello big world", 9), vec!["hello ", "big world"]);
        assert_eq!(wrapped("hello big world", 15), vec!["hello big world"]);
        assert_eq!(wrapped("ab cdef", 5), vec!["ab ", "cdef"]);
    }

    #[test]
    fn a_word_longer_than_the_row_is_cut() {
        assert_eq!(wrapped("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrapped("a bcdefgh", 3), vec!["a ", "bcd", "efg", "h"]);
    }

    #[test]
    fn wide_characters_count_two_columns_and_never_loop() {
        assert_eq!(width("日本"), 4);
        assert_eq!(wrapped("日本語", 4), vec!["日本", "語"]);
        assert_eq!(wrapped("日本", 1), vec!["日", "本"]);
        assert_eq!(wrapped("a 日本", 3), vec!["a ", "日", "本"]);
    }

    #[test]
    fn empty_text_is_one_row_and_a_zero_width_is_taken_as_one() {
        assert_eq!(wrapped("", 10), vec![""]);
        assert_eq!(wrapped("ab", 0), vec!["a", "b"]);
        assert_eq!(row_count("abcd", 2), 2);
    }
}
