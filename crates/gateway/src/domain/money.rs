//! Money is integer minor units of a currency, end to end (EUR 12.34 = 1234). No floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A non-negative amount in the currency's minor unit. Arithmetic is checked.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct MinorUnits(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amounts are integer minor units and cannot be negative")]
    Negative,
    #[error("the amount is too large")]
    Overflow,
}

impl MinorUnits {
    pub const ZERO: MinorUnits = MinorUnits(0);

    pub fn new(value: i64) -> Result<Self, AmountError> {
        if value < 0 {
            Err(AmountError::Negative)
        } else {
            Ok(Self(value))
        }
    }

    pub fn value(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: MinorUnits) -> Result<Self, AmountError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or(AmountError::Overflow)
    }

    pub fn checked_mul(self, quantity: u32) -> Result<Self, AmountError> {
        self.0
            .checked_mul(i64::from(quantity))
            .map(Self)
            .ok_or(AmountError::Overflow)
    }
}

impl TryFrom<i64> for MinorUnits {
    type Error = AmountError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<MinorUnits> for i64 {
    fn from(m: MinorUnits) -> Self {
        m.0
    }
}

impl fmt::Display for MinorUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An ISO 4217 currency the gateway accepts, with its minor-unit exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// A supported code in lower or mixed case.
    #[error("currency codes are upper case: send the ISO 4217 code in capitals (EUR, not eur)")]
    NotUpperCase,
    #[error("not a supported ISO 4217 currency code: send one such as EUR, USD or GBP")]
    Unsupported,
}

/// ISO 4217 codes with their exponent; the set MSP lists for card payments, and then some.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JPY", 0),
    ("KRW", 0),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PEN", 2),
    ("PHP", 2),
    ("PLN", 2),
    ("RON", 2),
    ("RUB", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TRY", 2),
    ("TWD", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
    ("BHD", 3),
    ("KWD", 3),
    ("JOD", 3),
    ("OMR", 3),
    ("TND", 3),
];

impl Currency {
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, exponent)| {
                let b = c.as_bytes();
                Currency {
                    code: [b[0], b[1], b[2]],
                    exponent: *exponent,
                }
            })
            .ok_or_else(|| {
                let upper = code.to_ascii_uppercase();
                if upper != code && CURRENCIES.iter().any(|(c, _)| *c == upper) {
                    CurrencyError::NotUpperCase
                } else {
                    CurrencyError::Unsupported
                }
            })
    }

    pub fn code(&self) -> &str {
        // Only ever built from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Digits after the decimal point of the major unit (EUR 2, JPY 0, KWD 3).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.code().to_owned()
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
