//! The one plain-text rule for every free-text field a merchant sends (references, names,
//! address lines, item names, descriptions, metadata values): such text ends up in MSP's back
//! office, its e-mails and our own pages, so it must be text and nothing else.
//!
//! Refused, each with a message that does not repeat the value:
//! - `<` and `>` (markup);
//! - control characters (NUL, BEL, line breaks, …) and Unicode format characters, among them the
//!   bidi overrides (U+202A–U+202E, U+2066–U+2069) that make text read differently than it is;
//! - a Luhn-valid run of 13 to 19 digits, written together or in the groups card numbers are
//!   written in (4-4-4-4…, 4-6-5, 4-6-4, with spaces or dashes): a card number typed into the
//!   wrong field must not be stored or sent on. Digits grouped otherwise (`20261208-49123`, a
//!   date and an order number) are not one number. Digits are Unicode's decimal
//!   digits of every script: a number typed with a CJK input method (fullwidth `４１１１`) or in
//!   Arabic-Indic digits is the same card number to a reader, and to whoever copies it out.
//!
//! [`breach`] is the rule alone, for fields with rules of their own on top (the email address).

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;

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

/// What breaks the plain-text rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    /// `<` or `>`.
    Markup,
    /// A control or format character (line breaks, bidi overrides, zero-width characters).
    Invisible,
    /// A Luhn-valid run of 13 to 19 digits (written as card numbers are).
    CardNumber,
}

/// The first way `text` breaks the plain-text rule, if any.
pub fn breach(text: &str) -> Option<Breach> {
    if text.contains(['<', '>']) {
        Some(Breach::Markup)
    } else if text.chars().any(|c| c.is_control() || is_format(c)) {
        Some(Breach::Invisible)
    } else if holds_a_card_number(text) {
        Some(Breach::CardNumber)
    } else {
        None
    }
}

/// The plain-text rule alone.
pub fn check(param: &str, text: &str) -> Result<(), FieldError> {
    let message = match breach(text) {
        None => return Ok(()),
        Some(Breach::Markup) => format!("`{param}` is plain text: remove the HTML (`<` and `>`)"),
        Some(Breach::Invisible) => format!(
            "`{param}` is plain text on one line: remove control characters, line breaks and invisible formatting characters"
        ),
        Some(Breach::CardNumber) => format!(
            "`{param}` seems to hold a card number: card data goes in `card` only, never in free text"
        ),
    };
    Err(invalid(param, message))
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

/// Whether `text` has a run of 13–19 digits that passes the Luhn check: digits written
/// together, or in the groups people write card numbers in (single spaces or dashes between
/// groups of 4, Amex's 4-6-5 and Diners' 4-6-4). Digits in other groups are not one number: a
/// shop's `20261208-49127` (a date and an order number) is two.
fn holds_a_card_number(text: &str) -> bool {
    // The groups of the current run of digits, each group's digits.
    let mut groups: Vec<String> = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(d) = digit_value(c) {
            if let Some(group) = groups.last_mut() {
                group.push(char::from(b'0' + d));
            }
            continue;
        }
        let separator = is_separator(c)
            && groups.last().is_some_and(|g| !g.is_empty())
            && chars
                .peek()
                .is_some_and(|&next| digit_value(next).is_some());
        if separator {
            groups.push(String::new());
        } else {
            if run_is_a_card_number(&groups) {
                return true;
            }
            groups = vec![String::new()];
        }
    }
    run_is_a_card_number(&groups)
}

/// One run of digit groups: a card number if one group is, or if the groups are laid out as
/// card numbers are written and together are one.
fn run_is_a_card_number(groups: &[String]) -> bool {
    if groups.iter().any(|g| is_card_number(g)) {
        return true;
    }
    let lengths: Vec<usize> = groups.iter().map(String::len).collect();
    let card_layout = match lengths.as_slice() {
        [4, 6, 5] | [4, 6, 4] => true,
        [4, middle @ .., last] if !middle.is_empty() => {
            middle.iter().all(|n| *n == 4) && (1..=4).contains(last)
        }
        _ => false,
    };
    card_layout && is_card_number(&groups.concat())
}

/// A space or a dash of any script (`-`, `‐`, the fullwidth `－`, an ideographic space).
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c == '\u{2212}'
        || CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::DashPunctuation
}

/// The value of `c` if it is a decimal digit of any script (Unicode general category Nd).
/// Unicode assigns those only in runs of ten, 0 to 9 in order, so a digit's value is its
/// distance from the start of its run of digits, modulo ten (a few scripts' runs adjoin, such
/// as the five of mathematical digits: each is still ten long).
fn digit_value(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    let categories = CodePointMapData::<GeneralCategory>::new();
    let is_digit = |c: char| categories.get(c) == GeneralCategory::DecimalNumber;
    if c.is_ascii() || !is_digit(c) {
        return None;
    }
    let mut start = c as u32;
    while let Some(before) = start.checked_sub(1).and_then(char::from_u32)
        && is_digit(before)
    {
        start -= 1;
    }
    u8::try_from((c as u32 - start) % 10).ok()
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
            // Fullwidth (a CJK input method), Arabic-Indic, Extended Arabic-Indic (Persian),
            // Devanagari, and a mix: the same card number to a reader.
            "\u{FF14}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}",
            "\u{664}\u{661}\u{661}\u{661} \u{661}\u{661}\u{661}\u{661} \u{661}\u{661}\u{661}\u{661} \u{661}\u{661}\u{661}\u{661}",
            "\u{6F5}\u{6F5}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F0}\u{6F4}",
            "\u{96A}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}\u{967}",
            "4111\u{FF0D}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{3000}1111 \u{661}\u{661}\u{661}\u{661}",
            // Mathematical digits, whose runs of ten adjoin (bold, then double-struck 4111…).
            "\u{1D7DC}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}\u{1D7D9}",
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
    fn digits_of_every_script_have_their_values() {
        assert_eq!(digit_value('7'), Some(7));
        assert_eq!(digit_value('\u{FF17}'), Some(7), "fullwidth");
        assert_eq!(digit_value('\u{667}'), Some(7), "Arabic-Indic");
        assert_eq!(digit_value('\u{6F7}'), Some(7), "Extended Arabic-Indic");
        assert_eq!(digit_value('\u{E57}'), Some(7), "Thai");
        assert_eq!(
            digit_value('\u{1D7CE}'),
            Some(0),
            "the first mathematical run"
        );
        assert_eq!(digit_value('\u{1D7E1}'), Some(9), "a later, adjoining run");
        for not_a_digit in ['a', '½', '²', 'Ⅷ', '\u{3007}', ' '] {
            assert_eq!(digit_value(not_a_digit), None, "{not_a_digit:?}");
        }
    }

    #[test]
    fn digits_grouped_unlike_a_card_number_are_not_one() {
        // Each of these joins to a Luhn-valid number of 13–19 digits, but nobody writes a card
        // number so: a date and an order number, a phone number, a postcode and a house number.
        for ok in ["20261208-49123", "+31 20 123 4567 102", "1033 39-10000002"] {
            let joined: String = ok.chars().filter(char::is_ascii_digit).collect();
            assert!(
                (13..=19).contains(&joined.len()) && luhn_valid(&joined),
                "{ok}: an example that joins to a card-like number"
            );
            assert!(plain_text("p", Some(ok.into()), 100).is_ok(), "{ok}");
        }
        // As card numbers are written: 4-4-4-4, 4-4-4-4-3 (19 digits), Amex 4-6-5.
        for bad in [
            "4111 1111 1111 1111",
            "6011-0000-0000-0000-001",
            "3782 822463 10005",
        ] {
            assert!(plain_text("p", Some(bad.into()), 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_digit_runs_that_are_not_card_numbers_pass() {
        // 16 digits failing Luhn, 12 digits, and 20 digits.
        for ok in [
            "4111111111111112",
            "411111111111",
            "41111111111111111111",
            // Fullwidth, failing Luhn.
            "\u{FF14}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF11}\u{FF12}",
        ] {
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
