//! Limits on free text from clients. Every text field goes through one of these, so limits
//! are enforced the same way everywhere and the error names the field and the limit.

use super::Invalid;

/// Longest agent, tool or server name (characters).
pub const MAX_NAME_CHARS: usize = 64;
/// Longest short text: display names, roles, departments, subjects (characters).
pub const MAX_SHORT_CHARS: usize = 200;
/// Longest long text: prompts, results, message bodies, personalities (bytes of UTF-8).
pub const MAX_LONG_BYTES: usize = 100 * 1024;

/// `value` if it has at most `max` characters and no control characters (single-line text).
pub fn short(field: &'static str, value: &str, max: usize) -> Result<String, Invalid> {
    if value.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// Like [`short`], and not empty or only spaces.
pub fn short_required(field: &'static str, value: &str, max: usize) -> Result<String, Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    short(field, value, max)
}

/// `value` if it has at most `max` bytes and no NUL (multi-line text: newlines and tabs are
/// fine).
pub fn long(field: &'static str, value: &str, max: usize) -> Result<String, Invalid> {
    if value.len() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} bytes (got {})", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(Invalid::new(field, "must not contain NUL characters"));
    }
    Ok(value.to_owned())
}

/// Like [`long`], and not empty or only white space.
pub fn long_required(field: &'static str, value: &str, max: usize) -> Result<String, Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    long(field, value, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_for_short_text_and_bytes_for_long_text() {
        let name = "é".repeat(64);
        assert!(
            short("name", &name, 64).is_ok(),
            "64 characters of 2 bytes each"
        );
        assert!(short("name", &format!("{name}e"), 64).is_err());
        assert!(long("prompt", &"x".repeat(MAX_LONG_BYTES), MAX_LONG_BYTES).is_ok());
        let err = long("prompt", &"x".repeat(MAX_LONG_BYTES + 1), MAX_LONG_BYTES).unwrap_err();
        assert_eq!(err.field, "prompt");
    }

    #[test]
    fn required_text_refuses_blank_and_short_text_refuses_control_characters() {
        assert!(short_required("name", "  ", 10).is_err());
        assert!(long_required("prompt", "\n\t", 10).is_err());
        assert!(short("name", "a\nb", 10).is_err());
        assert!(long("body", "a\nb", 10).is_ok());
        assert!(long("body", "a\0b", 10).is_err());
        assert_eq!(short("name", "日本語 ✓ 🚀", 10).unwrap(), "日本語 ✓ 🚀");
    }
}
