//! The API's rules for names and free text, as pure functions shared by
//! the server (which enforces them) and the domain types built on both
//! sides (see [`crate::filter`]). Each check returns the broken rule in
//! words; the caller adds the field's path.

/// Longest name (datablob, template, model, group, class, metric, tag key),
/// in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Most values in one filter list (and most tags in one tag filter).
pub const MAX_FILTER_VALUES: usize = 1_000;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE_BYTES: usize = 4_096;
/// Most characters of a client's string that an error message repeats:
/// the message travels in an HTTP/2 header, and a 100 KB metric name there
/// made the client see RESOURCE_EXHAUSTED instead of the error.
pub const MAX_ECHOED_CHARS: usize = 64;

/// Whether `value` is a valid name: 1 to 255 bytes, no control characters
/// (which includes NUL).
pub fn is_name(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_NAME_BYTES && !value.chars().any(char::is_control)
}

/// The name rule `value` breaks, if any.
pub fn name_rule(value: &str) -> Result<(), String> {
    if is_name(value) {
        return Ok(());
    }
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(format!(
            "must be at most {MAX_NAME_BYTES} bytes, got {}",
            value.len()
        ));
    }
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "must not contain control characters, found U+{:04X}",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// The rule of a free text (`max_bytes` long at most, no NUL, which
/// PostgreSQL text cannot hold) that `value` breaks, if any.
pub fn text_rule(value: &str, max_bytes: usize) -> Result<(), String> {
    if value.len() > max_bytes {
        return Err(format!("must be at most {max_bytes} bytes, got {}", value.len()));
    }
    if value.contains('\0') {
        return Err("must not contain NUL (U+0000)".to_owned());
    }
    Ok(())
}

/// `value` quoted for an error message, cut after [`MAX_ECHOED_CHARS`]
/// characters.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHOED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &value[..cut], value.len()),
    }
}
