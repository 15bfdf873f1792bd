//! User and room name rules shared by the core, the data-directory files and the offline
//! commands, so that none of them imports another for a rule. No I/O.

use crate::proto::msg::Reject;

/// Longest name, in characters.
pub const MAX_NAME_LEN: usize = 32;

/// Names kept for the console, compared ignoring case.
pub const RESERVED_NAMES: &[&str] = &["host"];

/// Names that would pass for the server: refused unless the operator registered them.
pub const SERVER_LIKE_NAMES: &[&str] =
    &["server", "admin", "system", "console", "root", "operator"];

/// Checks the name rules: 1 to 32 of ASCII letters, digits, `_`, `-`, `.`; not `Host`.
///
/// ASCII only, so that no name can pass for another with look-alike letters from other scripts.
pub fn validate_name(name: &str) -> Result<(), Reject> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN || !name.chars().all(valid_char) {
        return Err(Reject::NameInvalid);
    }
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(Reject::NameReserved);
    }
    Ok(())
}

/// Longest room name after the `#`, in characters.
pub const MAX_ROOM_NAME_LEN: usize = 32;

/// Checks the room name rules: `#` then 1 to 32 ASCII letters, digits, `_`, `-`, `.`.
pub fn validate_room_name(name: &str) -> Result<(), Reject> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let invalid = || Reject::RoomNameInvalid {
        room: name.to_owned(),
    };
    let rest = name.strip_prefix('#').ok_or_else(invalid)?;
    let len = rest.chars().count();
    if len == 0 || len > MAX_ROOM_NAME_LEN || !rest.chars().all(valid_char) {
        return Err(invalid());
    }
    Ok(())
}

/// The key a room name is unique under: ignoring case.
pub fn room_key(name: &str) -> String {
    name.to_ascii_lowercase()
}
