//! Where each part of the window goes for a terminal of a given size. Pure arithmetic, so the
//! model knows the size of the chat pane (to scroll by pages) and the view draws the same panes.

use ratatui::layout::Rect;

/// Width of the user list, borders included.
pub const USERS_WIDTH: u16 = 22;
/// Below this many columns the user list is left out, to leave the chat room to read.
pub const USERS_MIN_TERMINAL_WIDTH: u16 = 56;
/// Rows of the input box, borders included.
pub const INPUT_HEIGHT: u16 = 3;

/// The window's panes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// The users online, on the left; `None` on a narrow terminal.
    pub users: Option<Rect>,
    /// The chat, in the middle.
    pub chat: Rect,
    /// The input line, under both.
    pub input: Rect,
    /// The status line, the last row.
    pub status: Rect,
}

impl Areas {
    /// The panes of a terminal `width` columns by `height` rows; on a tiny terminal some are empty.
    pub fn of(width: u16, height: u16) -> Areas {
        let status_height = height.min(1);
        let input_height = INPUT_HEIGHT.min(height - status_height);
        let top_height = height - status_height - input_height;
        let users_width = if width >= USERS_MIN_TERMINAL_WIDTH {
            USERS_WIDTH
        } else {
            0
        };
        Areas {
            users: (users_width > 0).then(|| Rect::new(0, 0, users_width, top_height)),
            chat: Rect::new(users_width, 0, width - users_width, top_height),
            input: Rect::new(0, top_height, width, input_height),
            status: Rect::new(0, height - status_height, width, status_height),
        }
    }

    /// Columns and rows inside the chat pane's border: where chat rows are drawn.
    pub fn chat_text_size(&self) -> (u16, u16) {
        (
            self.chat.width.saturating_sub(2),
            self.chat.height.saturating_sub(2),
        )
    }
}

/// A box `width` by `height` centred in `area`, shrunk to fit it.
pub fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usual_terminal_has_users_left_chat_middle_input_and_status_below() {
        let areas = Areas::of(80, 24);
        assert_eq!(areas.users, Some(Rect::new(0, 0, 22, 20)));
        assert_eq!(areas.chat, Rect::new(22, 0, 58, 20));
        assert_eq!(areas.input, Rect::new(0, 20, 80, 3));
        assert_eq!(areas.status, Rect::new(0, 23, 80, 1));
        assert_eq!(areas.chat_text_size(), (56, 18));
    }

    #[test]
    fn a_narrow_terminal_drops_the_user_list_and_a_tiny_one_never_underflows() {
        let narrow = Areas::of(40, 10);
        assert_eq!(narrow.users, None);
        assert_eq!(narrow.chat, Rect::new(0, 0, 40, 6));
        for (width, height) in [(0, 0), (1, 1), (3, 2), (2, 4)] {
            let tiny = Areas::of(width, height);
            assert!(tiny.status.height + tiny.input.height + tiny.chat.height <= height);
            let _ = tiny.chat_text_size();
        }
        assert_eq!(
            centred(Rect::new(0, 0, 10, 4), 50, 9),
            Rect::new(0, 0, 10, 4)
        );
    }
}
