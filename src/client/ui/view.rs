//! Drawing the window from the model with ratatui widgets: the users on the left, the chat in the
//! middle, the input line and the status line below, and the connect form over them while it is
//! up. Reads the model, changes nothing; tested against ratatui's in-memory backend.

use std::time::Duration;

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::layout::{centred, Areas};
use super::model::{Entry, EntryKind, Field, Form, Link, Model, Part};
use super::wrap::{self, width};

/// Colours for names, picked by a hash of the name: none is yellow (events), red (problems) or
/// magenta (direct messages).
const NAME_COLOURS: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Blue,
    Color::LightCyan,
    Color::LightGreen,
    Color::LightBlue,
    Color::Indexed(208),
    Color::Indexed(141),
    Color::Indexed(37),
    Color::Indexed(179),
];

/// The colour of `name`: the same in every window and every session, whatever its case.
pub fn name_colour(name: &str) -> Color {
    // FNV-1a: a small, stable hash (std's hasher is seeded per process).
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0100_0193);
    }
    NAME_COLOURS[hash as usize % NAME_COLOURS.len()]
}

/// Draws the whole window.
pub fn draw(frame: &mut Frame<'_>, model: &Model) {
    let size = frame.area();
    let areas = Areas::of(size.width, size.height);
    if let Some(users) = areas.users {
        draw_users(frame, users, model);
    }
    draw_chat(frame, areas.chat, model);
    draw_input(frame, areas.input, model);
    draw_status(frame, areas.status, model);
    if let Some(form) = model.form() {
        draw_form(frame, size, form);
    }
}

/// The room list, above the users, once we are in more than the default room: its place (for
/// Alt-1..9), name, unread lines in parentheses and `@N` for those that name us; the current room
/// reversed.
fn draw_rooms(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let lines: Vec<Line<'_>> = model
        .rooms()
        .iter()
        .enumerate()
        .map(|(place, room)| {
            let name = if room.name.is_empty() {
                "(default)"
            } else {
                room.name.as_str()
            };
            let mut spans = vec![Span::raw(format!("{} {name}", place + 1))];
            if room.unread > 0 {
                let mut counts = format!(" ({}", room.unread);
                if room.mentions > 0 {
                    counts.push_str(&format!(", @{}", room.mentions));
                }
                counts.push(')');
                let style = if room.mentions > 0 {
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
                } else {
                    Style::new().add_modifier(Modifier::BOLD)
                };
                spans.push(Span::styled(counts, style));
            }
            let line = Line::from(spans);
            if place == model.current_room() {
                line.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    let block = Block::bordered().title(format!(" Rooms ({}) ", lines.len()));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_users(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let area = if model.rooms().len() > 1 {
        let rooms_height = (model.rooms().len() as u16 + 2).min(area.height / 2);
        let rooms = Rect::new(area.x, area.y, area.width, rooms_height);
        draw_rooms(frame, rooms, model);
        Rect::new(
            area.x,
            area.y + rooms_height,
            area.width,
            area.height - rooms_height,
        )
    } else {
        area
    };
    let members = model.members().members();
    let lines: Vec<Line<'_>> = members
        .iter()
        .map(|member| {
            let mut style = Style::new().fg(name_colour(&member.name));
            if member.name.eq_ignore_ascii_case(model.name()) {
                style = style.add_modifier(Modifier::BOLD);
            }
            let mut spans = vec![
                Span::styled(
                    if member.admin { "@" } else { " " },
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                Span::styled(member.name.as_str(), style),
            ];
            if member.away.is_some() {
                spans[1].style = spans[1].style.add_modifier(Modifier::DIM);
                spans.push(Span::styled(" (away)", Style::new().fg(Color::DarkGray)));
            }
            Line::from(spans)
        })
        .collect();
    let title = match model.rooms().get(model.current_room()) {
        Some(room) if !room.default => format!(" {} ({}) ", room.name, members.len()),
        _ => format!(" Users ({}) ", members.len()),
    };
    let block = Block::bordered().title(title);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_chat(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let title = match model.rooms().get(model.current_room()) {
        Some(room) if !room.default => format!(" {} │ {} ", room.name, or_dash(model.server())),
        _ => format!(" {} ", or_dash(model.server())),
    };
    let mut block = Block::bordered().title(title);
    if model.scroll() > 0 {
        block = block.title_bottom(
            Line::from(format!(
                " {} rows back; PgDn or Ctrl-End for the newest ",
                model.scroll()
            ))
            .style(Style::new().fg(Color::Yellow)),
        );
    }
    let inner = block.inner(area);
    let rows = visible_rows(model, inner.width as usize, inner.height as usize);
    frame.render_widget(Paragraph::new(rows).block(block), area);
}

/// The chat rows that fit `height` rows of `width` columns, `model.scroll()` rows back from the
/// newest, top first.
fn visible_rows(model: &Model, width: usize, height: usize) -> Vec<Line<'_>> {
    let wanted = model.scroll() + height;
    // Newest row first.
    let mut rows = Vec::new();
    'entries: for entry in model.visible_entries().rev() {
        for range in wrap::rows(&entry.text, width).into_iter().rev() {
            rows.push(row_line(entry, range));
            if rows.len() >= wanted {
                break 'entries;
            }
        }
    }
    let first = model.scroll().min(rows.len().saturating_sub(height));
    let last = (first + height).min(rows.len());
    let mut shown: Vec<Line<'_>> = rows.drain(first..last).collect();
    shown.reverse();
    shown
}

/// One row of an entry: the pieces of `range`, each styled by what it is.
fn row_line(entry: &Entry, range: std::ops::Range<usize>) -> Line<'_> {
    let spans: Vec<Span<'_>> = entry
        .parts
        .iter()
        .filter_map(|(part_range, part)| {
            let start = part_range.start.max(range.start);
            let end = part_range.end.min(range.end);
            (start < end).then(|| Span::styled(&entry.text[start..end], style(entry, *part)))
        })
        .collect();
    Line::from(spans)
}

fn style(entry: &Entry, part: Part) -> Style {
    let direct = matches!(entry.kind, EntryKind::DirectIn | EntryKind::DirectOut);
    match part {
        Part::Time | Part::Separator => Style::new().fg(Color::DarkGray),
        Part::Tag if direct => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        Part::Tag => Style::new().fg(Color::DarkGray),
        Part::Name => Style::new()
            .fg(name_colour(entry.sender().unwrap_or_default()))
            .add_modifier(Modifier::BOLD),
        Part::Body if entry.mention => Style::new()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
        Part::Body if direct => Style::new().fg(Color::Magenta),
        Part::Body if entry.kind == EntryKind::History => Style::new().add_modifier(Modifier::DIM),
        Part::Body => Style::new(),
        Part::Whole => match entry.kind {
            EntryKind::Problem => Style::new().fg(Color::LightRed),
            EntryKind::Note => Style::new().fg(Color::Cyan).add_modifier(Modifier::ITALIC),
            _ => Style::new().fg(Color::Yellow),
        },
    }
}

fn draw_input(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let password = model.asking_password();
    let title = if password {
        format!(" Password for {} (hidden; Enter sends) ", model.name())
    } else if *model.link() == Link::Online {
        " Message (Enter sends; /help lists the commands) ".to_owned()
    } else {
        " Message (not connected) ".to_owned()
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    let (text, cursor) = if password {
        (String::new(), 0)
    } else {
        model.input().visible(inner.width as usize)
    };
    frame.render_widget(Paragraph::new(text).block(block), area);
    if model.form().is_none() && inner.width > 0 && inner.height > 0 {
        frame.set_cursor_position((inner.x + cursor as u16, inner.y));
    }
}

fn draw_status(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let (state, colour) = match model.link() {
        Link::Form => ("not connected".to_owned(), Color::Yellow),
        Link::Connecting { .. } => ("connecting".to_owned(), Color::Yellow),
        Link::LoggingIn { .. } if model.asking_password() => {
            ("password?".to_owned(), Color::Yellow)
        }
        Link::LoggingIn { .. } => ("logging in".to_owned(), Color::Yellow),
        Link::Online => ("online".to_owned(), Color::Green),
        Link::Retrying { delay, .. } => (
            format!("reconnecting ({} backoff)", short(*delay)),
            Color::Red,
        ),
        Link::Offline => ("offline: Enter rejoins".to_owned(), Color::Red),
        Link::Trusting { .. } => ("trust this certificate? y / n".to_owned(), Color::Red),
        Link::Leaving { .. } => ("leaving".to_owned(), Color::Yellow),
    };
    let round_trip = match model.round_trip() {
        Some(rtt) => format!("rtt {:.2} ms", rtt.as_secs_f64() * 1000.0),
        None => "rtt -".to_owned(),
    };
    let bar = Style::new().bg(Color::DarkGray).fg(Color::White);
    let left = vec![
        Span::styled(" chat ", bar.add_modifier(Modifier::BOLD)),
        Span::styled(format!("│ {} │ ", or_dash(model.server())), bar),
        Span::styled(or_dash(model.name()), bar.add_modifier(Modifier::BOLD)),
        Span::styled(" │ ", bar),
        Span::styled(state, bar.fg(colour).add_modifier(Modifier::BOLD)),
        Span::styled(format!(" │ {round_trip} "), bar),
    ];
    let hint = if model.rooms().len() > 1 {
        " ^N/^P rooms │ Ctrl-C quits "
    } else {
        " PgUp/PgDn │ Ctrl-C quits "
    };
    let used: usize = left.iter().map(|span| width(&span.content)).sum();
    let gap = (area.width as usize).saturating_sub(used + width(hint));
    let mut spans = left;
    spans.push(Span::styled(" ".repeat(gap), bar));
    if gap > 0 {
        spans.push(Span::styled(hint, bar));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

fn draw_form(frame: &mut Frame<'_>, screen: Rect, form: &Form) {
    let area = centred(screen, 60, 10);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" Join a chatd room ")
        .border_style(Style::new().fg(Color::Cyan));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    const LABEL: usize = 9;
    let field_width = (inner.width as usize).saturating_sub(LABEL + 2);
    let mut cursor = None;
    let mut lines = vec![Line::default()];
    for (field, label, editor) in [
        (Field::Server, "Server", &form.server),
        (Field::Name, "Name", &form.name),
    ] {
        let focused = form.focus == field;
        let (text, at) = editor.visible(field_width);
        if focused {
            cursor = Some((
                inner.x + (LABEL + 1 + at) as u16,
                inner.y + lines.len() as u16,
            ));
        }
        let pad = field_width.saturating_sub(width(&text));
        let field_style = if focused {
            Style::new().bg(Color::DarkGray).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::UNDERLINED)
        };
        lines.push(Line::from(vec![
            Span::raw(format!(" {label:<w$}", w = LABEL)),
            Span::styled(format!("{text}{}", " ".repeat(pad)), field_style),
        ]));
        lines.push(Line::default());
    }
    if let Some(error) = &form.error {
        lines.push(Line::styled(
            format!(" {error}"),
            Style::new().fg(Color::LightRed),
        ));
    } else {
        lines.push(Line::default());
    }
    lines.push(Line::styled(
        " Enter: next field, then join │ Tab: switch │ Esc: quit",
        Style::new().fg(Color::DarkGray),
    ));
    frame.render_widget(Paragraph::new(lines), inner);
    if let Some((x, y)) = cursor {
        if x < inner.right() && y < inner.bottom() {
            frame.set_cursor_position((x, y));
        }
    }
}

/// `text`, or `-` when there is none.
fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

/// `d` in seconds, short.
fn short(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::client::ui::model::{Key, Now};
    use crate::client::Shown;
    use crate::proto::framed::reply_kind;
    use crate::proto::msg::{ServerMsg, Stamp};

    fn now() -> Now {
        Now {
            instant: Instant::now(),
            stamp: Stamp::new(0, 14, 2, 9),
        }
    }

    /// The screen `model` draws on a `width` by `height` terminal, row by row, and the cursor.
    fn screen(model: &Model, width: u16, height: u16) -> (Vec<String>, (u16, u16)) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
        terminal.draw(|frame| draw(frame, model)).expect("drawn");
        let buffer = terminal.backend().buffer().clone();
        let rows = (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect();
        let cursor = terminal.get_cursor_position().expect("a cursor");
        (rows, (cursor.x, cursor.y))
    }

    fn joined() -> Model {
        let mut model = Model::new(
            Some("127.0.0.1:3001".into()),
            Some("alice".into()),
            (80, 24),
        );
        let mut out = Vec::new();
        model.start(&now(), &mut out);
        model.connected(&now());
        for shown in [
            Shown::Msg(ServerMsg::Welcome {
                name: "alice".into(),
                others: vec!["bob".into()],
                more: 0,
            }),
            Shown::Reply {
                kind: reply_kind::USERS,
                lines: vec!["[*] Online (2): alice, bob (admin, away: lunch)".into()],
            },
            Shown::Msg(ServerMsg::Chat {
                at: Stamp::new(0, 14, 2, 9),
                from: "bob".into(),
                text: "hi alice".into(),
            }),
        ] {
            model.shown(shown, &now(), &mut out);
        }
        model
    }

    #[test]
    fn the_window_has_the_users_the_chat_the_input_and_the_status_line() {
        let mut model = joined();
        let mut out = Vec::new();
        for c in "typing".chars() {
            model.key(Key::Char(c), &now(), &mut out);
        }
        let (rows, cursor) = screen(&model, 80, 24);
        assert!(rows[0].starts_with("┌ Users (2) "), "{rows:#?}");
        assert!(rows[1].starts_with("│ alice "), "{rows:#?}");
        assert!(rows[2].starts_with("│@bob (away) "), "{rows:#?}");
        assert!(rows[0].contains("┌ 127.0.0.1:3001 "), "{rows:#?}");
        assert!(
            rows.iter()
                .any(|r| r.contains("│[14:02:09] bob > hi alice ")),
            "{rows:#?}"
        );
        assert!(rows[21].starts_with("│typing "), "{rows:#?}");
        assert_eq!(cursor, (7, 21));
        assert!(
            rows[23].starts_with(" chat │ 127.0.0.1:3001 │ alice │ online │ rtt - "),
            "{rows:#?}"
        );
        assert!(rows[23].ends_with(" Ctrl-C quits "), "{rows:#?}");
    }

    #[test]
    fn in_two_rooms_the_room_list_with_unread_counts_sits_above_the_current_rooms_members() {
        use crate::proto::framed::RoomChange;
        use crate::proto::msg::{MemberEntry, RoomLine, RoomTag};
        let mut model = joined();
        let mut out = Vec::new();
        let dev = RoomTag {
            name: "#dev".into(),
            default: false,
        };
        let shown = [
            Shown::Msg(ServerMsg::Who {
                room: "#lobby".into(),
                members: vec![],
            }),
            Shown::Msg(
                RoomChange::Joined {
                    room: dev.clone(),
                    members: 2,
                    created: true,
                }
                .to_msg(),
            ),
            Shown::Msg(ServerMsg::Who {
                room: "#dev".into(),
                members: vec![
                    MemberEntry {
                        name: "alice".into(),
                        moderator: true,
                        away: None,
                    },
                    MemberEntry {
                        name: "carol".into(),
                        moderator: false,
                        away: None,
                    },
                ],
            }),
            Shown::Msg(ServerMsg::Room {
                room: dev,
                line: RoomLine::Chat {
                    at: Stamp::new(0, 14, 2, 9),
                    from: "carol".into(),
                    text: "alice, look".into(),
                },
            }),
            Shown::Msg(ServerMsg::Chat {
                at: Stamp::new(0, 14, 2, 9),
                from: "bob".into(),
                text: "ping alice".into(),
            }),
            Shown::Msg(ServerMsg::Chat {
                at: Stamp::new(0, 14, 2, 9),
                from: "bob".into(),
                text: "and more".into(),
            }),
        ];
        for shown in shown {
            model.shown(shown, &now(), &mut out);
        }
        let (rows, _) = screen(&model, 80, 24);
        assert!(rows[0].starts_with("┌ Rooms (2) "), "{rows:#?}");
        assert!(rows[1].starts_with("│1 #lobby (2, @1) "), "{rows:#?}");
        assert!(rows[2].starts_with("│2 #dev "), "{rows:#?}");
        assert!(rows[4].starts_with("┌ #dev (2) "), "{rows:#?}");
        assert!(rows[5].starts_with("│@alice "), "{rows:#?}");
        assert!(rows[6].starts_with("│ carol "), "{rows:#?}");
        assert!(rows[0].contains("┌ #dev │ 127.0.0.1:3001 "), "{rows:#?}");
        let chat = rows.join("\n");
        assert!(chat.contains("carol > alice, look"), "{chat}");
        assert!(
            !chat.contains("ping alice"),
            "the default room's lines wait there"
        );
        assert!(
            rows[23].ends_with(" ^N/^P rooms │ Ctrl-C quits "),
            "{rows:#?}"
        );
        // The mention is highlighted.
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("a test terminal");
        terminal.draw(|frame| draw(frame, &model)).expect("drawn");
        let buffer = terminal.backend().buffer().clone();
        let row = rows.iter().position(|r| r.contains("alice, look")).unwrap() as u16;
        let column = rows[row as usize].find("alice, look").unwrap();
        let column = rows[row as usize][..column].chars().count() as u16;
        assert_eq!(buffer[(column, row)].bg, Color::Yellow);
        // Small terminals draw what fits of both lists and never panic.
        for (width, height) in [(60, 5), (60, 3), (56, 1), (1, 1)] {
            model.resize(width, height);
            let _ = screen(&model, width, height);
        }
    }

    #[test]
    fn a_resize_keeps_the_layout_and_a_narrow_window_drops_the_user_list() {
        let mut model = joined();
        model.resize(50, 12);
        let (rows, _) = screen(&model, 50, 12);
        assert!(rows[0].starts_with("┌ 127.0.0.1:3001 "), "{rows:#?}");
        assert!(
            rows.iter().any(|r| r.contains("bob > hi alice")),
            "{rows:#?}"
        );
        assert!(rows[8].starts_with("┌ Message"), "{rows:#?}");
        assert!(rows[11].starts_with(" chat │"), "{rows:#?}");
        // Tiny terminals draw what fits and never panic.
        for (width, height) in [(1, 1), (5, 3), (20, 4)] {
            model.resize(width, height);
            let _ = screen(&model, width, height);
        }
    }

    #[test]
    fn the_password_is_never_drawn() {
        let mut model = Model::new(Some("h:1".into()), Some("carol".into()), (80, 24));
        let mut out = Vec::new();
        model.start(&now(), &mut out);
        model.connected(&now());
        model.shown(
            Shown::Reply {
                kind: reply_kind::PASSWORD_PROMPT,
                lines: vec!["Password:".into()],
            },
            &now(),
            &mut out,
        );
        for c in "s3cret".chars() {
            model.key(Key::Char(c), &now(), &mut out);
        }
        let (rows, cursor) = screen(&model, 80, 24);
        assert!(!rows.iter().any(|r| r.contains("s3cret")), "{rows:#?}");
        assert!(rows[20].contains("Password for carol (hidden"), "{rows:#?}");
        assert_eq!(cursor, (1, 21));
    }

    #[test]
    fn the_connect_form_is_drawn_over_the_window_with_its_cursor() {
        let model = Model::new(None, None, (80, 24));
        let (rows, cursor) = screen(&model, 80, 24);
        let text = rows.join("\n");
        assert!(text.contains("Join a chatd room"), "{text}");
        assert!(text.contains("Server   127.0.0.1:3001"), "{text}");
        assert!(text.contains("Name     "), "{text}");
        let name_row = rows
            .iter()
            .position(|r| r.contains("Name     "))
            .expect("the name field");
        assert_eq!(cursor.1 as usize, name_row);
    }

    #[test]
    fn scrolled_back_the_chat_shows_older_rows_and_says_so() {
        let mut model = joined();
        let mut out = Vec::new();
        for i in 0..40 {
            model.shown(
                Shown::Msg(ServerMsg::Chat {
                    at: Stamp::new(0, 14, 2, 9),
                    from: "bob".into(),
                    text: format!("line {i}"),
                }),
                &now(),
                &mut out,
            );
        }
        let (rows, _) = screen(&model, 80, 24);
        assert!(rows[18].contains("bob > line 39 "), "{rows:#?}");
        model.key(Key::PageUp, &now(), &mut out);
        let (rows, _) = screen(&model, 80, 24);
        assert!(rows[18].contains("bob > line 22 "), "{rows:#?}");
        assert!(rows[19].contains("17 rows back"), "{rows:#?}");
    }

    #[test]
    fn a_name_has_one_colour_whatever_its_case_and_names_spread_over_the_colours() {
        assert_eq!(name_colour("alice"), name_colour("ALICE"));
        assert_eq!(name_colour("alice"), name_colour("alice"));
        let names = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
        ];
        let mut colours: Vec<Color> = names.iter().map(|n| name_colour(n)).collect();
        colours.dedup();
        colours.sort_by_key(|c| format!("{c:?}"));
        colours.dedup();
        assert!(colours.len() >= 4, "{colours:?}");
    }
}
