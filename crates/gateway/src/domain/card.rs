//! Card data. The full number and the CVC live only in these types, whose `Debug` masks them,
//! and only until the MSP call; what is stored is a [`CardSummary`].
//!
//! [`CardNumber`] and [`Cvc`] derive no `Serialize`: the only way to read them is
//! [`CardNumber::expose_number`] / [`Cvc::expose`], which the MSP wire conversion calls once.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// What the gateway keeps and shows of a card: brand, last four digits, expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    /// `visa`, `mastercard`, `amex`, `maestro` or `unknown`.
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
}

impl CardSummary {
    /// The part of a card that may be stored and shown.
    pub fn new(number: &CardNumber, expiry: CardExpiry) -> Self {
        Self {
            brand: number.brand().as_str().to_owned(),
            last4: number.last4().to_owned(),
            exp_month: expiry.month(),
            exp_year: expiry.year(),
        }
    }
}

/// Card schemes the gateway tells apart, from the number's leading digits (BIN ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Maestro,
    Unknown,
}

impl CardBrand {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Maestro => "maestro",
            Self::Unknown => "unknown",
        }
    }

    /// Digits of the card's security code: 4 for Amex (CID), 3 for everyone else.
    pub fn cvc_len(self) -> usize {
        match self {
            Self::Amex => 4,
            _ => 3,
        }
    }

    /// `digits` is at least 12 ASCII digits (a parsed card number).
    fn detect(digits: &str) -> Self {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        match (prefix(1), prefix(2), prefix(4)) {
            (Some(4), _, _) => Self::Visa,
            (_, Some(34 | 37), _) => Self::Amex,
            (_, Some(51..=55), _) | (_, _, Some(2221..=2720)) => Self::Mastercard,
            (_, Some(50 | 56..=69), _) => Self::Maestro,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for CardBrand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A primary account number: 12–19 digits that pass the Luhn check. Held in a
/// [`SecretString`] so that its memory is wiped when it is dropped.
#[derive(Clone)]
pub struct CardNumber(SecretString);

impl PartialEq for CardNumber {
    fn eq(&self, other: &Self) -> bool {
        self.expose_number() == other.expose_number()
    }
}

impl Eq for CardNumber {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardNumberError {
    #[error(
        "a card number holds only digits (spaces and dashes are ignored): check the number the shopper typed"
    )]
    NotDigits,
    #[error("a card number has 12 to 19 digits: check the number the shopper typed")]
    Length,
    #[error("the card number fails its check digit (Luhn): the shopper probably mistyped it")]
    Luhn,
}

impl CardNumber {
    /// Parses what a shopper typed: spaces and dashes are dropped, the rest must be digits.
    pub fn parse(input: &str) -> Result<Self, CardNumberError> {
        let mut digits = String::with_capacity(19);
        for c in input.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(CardNumberError::NotDigits),
            }
        }
        if !(12..=19).contains(&digits.len()) {
            return Err(CardNumberError::Length);
        }
        if !luhn_valid(&digits) {
            return Err(CardNumberError::Luhn);
        }
        Ok(Self(SecretString::from(digits)))
    }

    pub fn brand(&self) -> CardBrand {
        CardBrand::detect(self.expose_number())
    }

    pub fn last4(&self) -> &str {
        let digits = self.expose_number();
        // At least 12 ASCII digits, so the slice is in bounds and on a char boundary.
        &digits[digits.len() - 4..]
    }

    /// The full number. Only the MSP request may call this.
    pub fn expose_number(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber(****{})", self.last4())
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "****{}", self.last4())
    }
}

/// The Luhn (mod 10) check over ASCII digits.
pub(crate) fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The card security code: 3 digits, 4 for Amex. Wiped from memory when dropped.
#[derive(Clone)]
pub struct Cvc(SecretString);

impl PartialEq for Cvc {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Cvc {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the security code (CVC) of a {brand} card is {len} digits: check what the shopper typed")]
pub struct CvcError {
    pub brand: CardBrand,
    pub len: usize,
}

impl Cvc {
    /// The expected length depends on the brand, so a CVC is parsed with its card's brand.
    pub fn parse(input: &str, brand: CardBrand) -> Result<Self, CvcError> {
        let len = brand.cvc_len();
        if input.len() == len && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(SecretString::from(input)))
        } else {
            Err(CvcError { brand, len })
        }
    }

    /// The code itself. Only the MSP request may call this.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

/// A card's expiry month; valid through the last day of that month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardExpiry {
    // Field order matters for the derived `Ord`: year first.
    year: u16,
    month: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("the expiry month is a number from 1 to 12")]
    Month,
    #[error("the expiry year is a four-digit year, such as 2030, at most 20 years from now")]
    Year,
    #[error("the card has expired: ask the shopper for another card")]
    Expired,
}

impl CardExpiry {
    /// Cards are issued for at most about ten years; twenty leaves room without accepting typos
    /// like 2300.
    const MAX_YEARS_AHEAD: i64 = 20;

    /// `today` is the gateway's current date: a card is accepted through its expiry month.
    pub fn parse(month: i64, year: i64, today: NaiveDate) -> Result<Self, ExpiryError> {
        let month = u8::try_from(month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or(ExpiryError::Month)?;
        let this_year = i64::from(today.year());
        if !(2000..=2099).contains(&year) || year > this_year + Self::MAX_YEARS_AHEAD {
            return Err(ExpiryError::Year);
        }
        // In range 2000..=2099, so it fits.
        let year = year as u16;
        let expiry = Self { year, month };
        let current = Self {
            year: today.year() as u16,
            month: today.month() as u8,
        };
        if expiry < current {
            return Err(ExpiryError::Expired);
        }
        Ok(expiry)
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn year(self) -> u16 {
        self.year
    }

    /// MSP's `card_expiry_date`: two-digit year then two-digit month (Dec 2030 → `3012`).
    pub fn yymm(self) -> String {
        format!("{:02}{:02}", self.year % 100, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Appends the Luhn check digit to `body`.
    fn with_check_digit(body: &str) -> String {
        (0..=9)
            .map(|d| format!("{body}{d}"))
            .find(|n| luhn_valid(n))
            .unwrap()
    }

    #[test]
    fn msp_test_cards_parse_with_their_brand() {
        for (number, brand) in [
            ("4111111111111111", CardBrand::Visa),
            ("4761340000000019", CardBrand::Visa),
            ("5500000000000004", CardBrand::Mastercard),
            ("5555555555554444", CardBrand::Mastercard),
            ("2221000000000009", CardBrand::Mastercard),
            ("374500000000015", CardBrand::Amex),
            ("378734493671000", CardBrand::Amex),
            ("6799990000000000011", CardBrand::Maestro),
        ] {
            let card = CardNumber::parse(number).unwrap_or_else(|e| panic!("{number}: {e}"));
            assert_eq!(card.brand(), brand, "{number}");
            assert_eq!(card.expose_number(), number);
        }
    }

    #[test]
    fn brand_ranges_edges() {
        let brand = |prefix: &str| {
            let body = format!("{prefix}{}", "0".repeat(15 - prefix.len()));
            CardNumber::parse(&with_check_digit(&body)).unwrap().brand()
        };
        assert_eq!(brand("2220"), CardBrand::Unknown);
        assert_eq!(brand("2221"), CardBrand::Mastercard);
        assert_eq!(brand("2720"), CardBrand::Mastercard);
        assert_eq!(brand("2721"), CardBrand::Unknown);
        assert_eq!(brand("50"), CardBrand::Maestro);
        assert_eq!(brand("51"), CardBrand::Mastercard);
        assert_eq!(brand("55"), CardBrand::Mastercard);
        assert_eq!(brand("56"), CardBrand::Maestro);
        assert_eq!(brand("69"), CardBrand::Maestro);
        assert_eq!(brand("35"), CardBrand::Unknown);
        assert_eq!(brand("7"), CardBrand::Unknown);
    }

    #[test]
    fn spaces_and_dashes_are_ignored() {
        let card = CardNumber::parse("4111 1111-1111 1111").unwrap();
        assert_eq!(card.expose_number(), "4111111111111111");
        assert_eq!(card.last4(), "1111");
    }

    #[test]
    fn bad_numbers_are_rejected_with_the_reason() {
        assert_eq!(
            CardNumber::parse("4111111111111112"),
            Err(CardNumberError::Luhn)
        );
        assert_eq!(
            CardNumber::parse("4111x11111111111"),
            Err(CardNumberError::NotDigits)
        );
        assert_eq!(CardNumber::parse(""), Err(CardNumberError::Length));
        assert_eq!(
            CardNumber::parse("42424242424"),
            Err(CardNumberError::Length)
        );
        assert_eq!(
            CardNumber::parse("42424242424242424242"),
            Err(CardNumberError::Length)
        );
        // Non-ASCII digits are not digits.
        assert_eq!(
            CardNumber::parse("٤١١١١١١١١١١١١١١١"),
            Err(CardNumberError::NotDigits)
        );
    }

    #[test]
    fn debug_and_display_show_only_the_last_four() {
        let card = CardNumber::parse("4111111111111111").unwrap();
        assert_eq!(format!("{card:?}"), "CardNumber(****1111)");
        assert_eq!(format!("{card}"), "****1111");
        let cvc = Cvc::parse("123", CardBrand::Visa).unwrap();
        assert_eq!(format!("{cvc:?}"), "Cvc(***)");
    }

    #[test]
    fn cvc_length_follows_the_brand() {
        assert!(Cvc::parse("123", CardBrand::Visa).is_ok());
        assert!(Cvc::parse("123", CardBrand::Unknown).is_ok());
        assert!(Cvc::parse("1234", CardBrand::Amex).is_ok());
        assert_eq!(
            Cvc::parse("1234", CardBrand::Amex).unwrap().expose(),
            "1234"
        );
        for (bad, brand) in [
            ("1234", CardBrand::Visa),
            ("123", CardBrand::Amex),
            ("12", CardBrand::Mastercard),
            ("12a", CardBrand::Visa),
            ("", CardBrand::Maestro),
            (" 123", CardBrand::Visa),
        ] {
            assert!(Cvc::parse(bad, brand).is_err(), "{bad:?} on {brand}");
        }
    }

    #[test]
    fn expiry_is_valid_through_its_month() {
        let today = date(2026, 11, 24);
        assert_eq!(
            CardExpiry::parse(11, 2026, today).map(CardExpiry::yymm),
            Ok("2611".to_owned())
        );
        assert_eq!(
            CardExpiry::parse(10, 2026, today),
            Err(ExpiryError::Expired)
        );
        assert_eq!(
            CardExpiry::parse(12, 2025, today),
            Err(ExpiryError::Expired)
        );
        assert_eq!(CardExpiry::parse(1, 2027, today).unwrap().yymm(), "2701");
        assert_eq!(CardExpiry::parse(12, 2030, today).unwrap().yymm(), "3012");
        assert_eq!(CardExpiry::parse(0, 2030, today), Err(ExpiryError::Month));
        assert_eq!(CardExpiry::parse(13, 2030, today), Err(ExpiryError::Month));
        assert_eq!(CardExpiry::parse(-1, 2030, today), Err(ExpiryError::Month));
        assert_eq!(CardExpiry::parse(12, 30, today), Err(ExpiryError::Year));
        assert_eq!(CardExpiry::parse(12, 2300, today), Err(ExpiryError::Year));
        assert_eq!(CardExpiry::parse(12, 2047, today), Err(ExpiryError::Year));
        assert!(CardExpiry::parse(12, 2046, today).is_ok());
    }

    #[test]
    fn summary_keeps_brand_last4_and_expiry_only() {
        let number = CardNumber::parse("374500000000015").unwrap();
        let expiry = CardExpiry::parse(3, 2031, date(2026, 1, 1)).unwrap();
        let summary = CardSummary::new(&number, expiry);
        assert_eq!(
            summary,
            CardSummary {
                brand: "amex".into(),
                last4: "0015".into(),
                exp_month: 3,
                exp_year: 2031
            }
        );
    }

    proptest! {
        /// Any digit string with a correct check digit parses, and its Debug never shows it.
        #[test]
        fn luhn_valid_numbers_parse_and_stay_masked(body in "[0-9]{11,18}") {
            let number = with_check_digit(&body);
            let card = CardNumber::parse(&number).unwrap();
            prop_assert_eq!(card.expose_number(), number.as_str());
            prop_assert_eq!(card.last4(), &number[number.len() - 4..]);
            let shown = format!("{card:?} {card}");
            prop_assert!(!shown.contains(&number));
            prop_assert!(!shown.contains(&number[..number.len() - 4]));
        }

        /// Changing any one digit of a valid number breaks the check digit.
        #[test]
        fn a_single_changed_digit_fails_luhn(body in "[0-9]{11,18}", pos in 0usize..19, delta in 1u8..10) {
            let number = with_check_digit(&body);
            let pos = pos % number.len();
            let mut bytes = number.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(CardNumber::parse(&changed), Err(CardNumberError::Luhn));
        }

        #[test]
        fn wrong_lengths_never_parse(digits in "[0-9]{0,11}|[0-9]{20,30}") {
            prop_assert_eq!(CardNumber::parse(&digits), Err(CardNumberError::Length));
        }
    }
}
