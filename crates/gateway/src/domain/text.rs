//! The one plain-text rule for every free-text field a merchant sends (references, names,
//! address lines, item names, descriptions, metadata values): such text ends up in MSP's back
//! office, its e-mails and our own pages, so it must be text and nothing else.
//!
//! Refused, each with a message that does not repeat the value:
//! - `<` and `>` (markup);
//! - control characters (NUL, BEL, line breaks, …) and Unicode format characters, among them the
//!   bidi overrides (U+202A–U+202E, U+2066–U+2069) that make text read differently than it is;
//! - a Luhn-valid run of 13 to 19 digits (spaces or dashes between them allowed): a card number
//!   typed into the wrong field must not be stored or sent on.

use super::card::luhn_valid;
use super::validation::FieldError;
use crate::error_code::ErrorCode;

/// `value` as given, or `None` when it is absent or blank (storefronts often send `""` for "not
/// given"); an error naming `param` when it is longer than `max` characters or breaks the
/// plain-text rule.
pub fn plain_text(
    param: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(invalid(
            param,
            format!("`{param}` is at most {max} characters: shorten it"),
        ));
    }
    check(param, &value)?;
    Ok(Some(value))
}

/// The plain-text rule alone.
pub fn check(param: &str, text: &str) -> Result<(), FieldError> {
    if text.contains(['<', '>']) {
        return Err(invalid(
            param,
            format!("`{param}` is plain text: remove the HTML (`<` and `>`)"),
        ));
    }
    if text.chars().any(|c| c.is_control() || is_format(c)) {
        return Err(invalid(
            param,
            format!(
                "`{param}` is plain text on one line: remove control characters, line breaks and invisible formatting characters"
            ),
        ));
    }
    if holds_a_card_number(text) {
        return Err(invalid(
            param,
            format!(
                "`{param}` seems to hold a card number: card data goes in `card` only, never in free text"
            ),
        ));
    }
    Ok(())
}

fn invalid(param: &str, message: String) -> FieldError {
    FieldError::new(param, ErrorCode::InvalidParameter, message)
}

/// Unicode's format characters (general category Cf): invisible, and able to reorder or hide
/// what a reader sees.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// Whether `text` has a run of 13–19 digits (single spaces or dashes between digits allowed,
/// as people write card numbers) that passes the Luhn check.
fn holds_a_card_number(text: &str) -> bool {
    let mut run = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        let separator = matches!(c, ' ' | '-')
            && !run.is_empty()
            && chars.peek().is_some_and(char::is_ascii_digit);
        if !separator {
            if is_card_number(&run) {
                return true;
            }
            run.clear();
        }
    }
    is_card_number(&run)
}

fn is_card_number(digits: &str) -> bool {
    (13..=19).contains(&digits.len()) && luhn_valid(digits)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ordinary_text_passes_as_given_and_blank_is_absent() {
        for ok in [
            "order-1001",
            "Zoë O'Brien-Smith",
            "Kraanspoor 39 A",
            "€ 12,50 — thank you",
            "日本語",
            "Order 4111 1111",
            " spaced ",
        ] {
            assert_eq!(
                plain_text("p", Some(ok.into()), 100).unwrap().as_deref(),
                Some(ok)
            );
        }
        assert_eq!(plain_text("p", Some("   ".into()), 100).unwrap(), None);
        assert_eq!(plain_text("p", None, 100).unwrap(), None);
    }

    #[test]
    fn markup_control_format_characters_and_card_numbers_are_refused() {
        let bad = [
            "<img src=x onerror=alert(1)>",
            "a > b",
            "nul\u{0}byte",
            "bell\u{7}",
            "two\nlines",
            "evil\u{202E}txt.exe",
            "zero\u{200B}width",
            "isolate\u{2066}x",
            "4111111111111111",
            "card 4111 1111 1111 1111 please",
            "4111-1111-1111-1111",
            "ref5500000000000004",
        ];
        for text in bad {
            let e = plain_text("reference", Some(text.into()), 100).unwrap_err();
            assert_eq!(
                (e.param.as_str(), e.code),
                ("reference", ErrorCode::InvalidParameter),
                "{text:?}"
            );
            assert!(!e.message.contains(text.trim()), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn long_digit_runs_that_are_not_card_numbers_pass() {
        // 16 digits failing Luhn, 12 digits, and 20 digits.
        for ok in ["4111111111111112", "411111111111", "41111111111111111111"] {
            assert!(plain_text("p", Some(ok.into()), 100).is_ok(), "{ok}");
        }
    }

    #[test]
    fn too_long_counts_characters_not_bytes() {
        assert!(plain_text("p", Some("é".repeat(10)), 10).is_ok());
        let e = plain_text("p", Some("é".repeat(11)), 10).unwrap_err();
        assert!(e.message.contains("at most 10 characters"));
    }

    proptest! {
        #[test]
        fn no_error_repeats_the_text(text in "\\PC{0,40}[<\u{202E}\u{0}]\\PC{0,40}") {
            if let Err(e) = plain_text("p", Some(text.clone()), 200) {
                let trimmed = text.trim();
                prop_assert!(trimmed.len() < 3 || !e.message.contains(trimmed));
            }
        }
    }
}
