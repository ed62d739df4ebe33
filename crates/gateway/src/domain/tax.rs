//! A VAT rate, kept exact: it divides minor units to get MSP's excl.-VAT unit prices, so a float
//! would put rounding errors into the cart MSP shows.

use std::fmt;

/// A rate `0 ≤ r ≤ 1` written as a decimal string ("0.21"), stored as `numerator / 10^scale` in
/// lowest terms of ten (trailing zeros dropped: "0.210" == "0.21").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaxRate {
    numerator: u32,
    scale: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a tax rate is a decimal string from \"0\" to \"1\" with at most 6 decimals, such as \"0.21\" for 21 % VAT"
)]
pub struct TaxRateError;

impl TaxRate {
    pub const ZERO: TaxRate = TaxRate {
        numerator: 0,
        scale: 0,
    };
    /// More decimals than any VAT rate in use needs.
    const MAX_SCALE: usize = 6;

    pub fn parse(s: &str) -> Result<Self, TaxRateError> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || int.len() > 1
            || !digits(int)
            || !digits(frac)
            || (s.contains('.') && frac.is_empty())
        {
            return Err(TaxRateError);
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > Self::MAX_SCALE {
            return Err(TaxRateError);
        }
        // At most 7 digits: fits in u32.
        let numerator: u32 = format!("{int}{frac}").parse().map_err(|_| TaxRateError)?;
        let scale = frac.len() as u8;
        if u64::from(numerator) > Self::pow10(scale) {
            return Err(TaxRateError); // above 1
        }
        Ok(Self { numerator, scale })
    }

    fn pow10(scale: u8) -> u64 {
        10u64.pow(u32::from(scale))
    }

    /// The rate is `numerator() / denominator()`.
    pub fn numerator(self) -> u64 {
        u64::from(self.numerator)
    }

    pub fn denominator(self) -> u64 {
        Self::pow10(self.scale)
    }

    pub fn is_zero(self) -> bool {
        self.numerator == 0
    }

    /// The canonical decimal string: "0.21", "0", "1", "0.0825".
    pub fn as_decimal(self) -> String {
        if self.scale == 0 {
            return self.numerator.to_string();
        }
        let width = usize::from(self.scale) + 1;
        let padded = format!("{:0width$}", self.numerator);
        let (int, frac) = padded.split_at(padded.len() - usize::from(self.scale));
        format!("{int}.{frac}")
    }
}

/// Numeric order (0.08 < 0.1), by cross-multiplication; equal rates are equal fields because
/// both are in lowest terms of ten.
impl Ord for TaxRate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.numerator() * other.denominator()).cmp(&(other.numerator() * self.denominator()))
    }
}

impl PartialOrd for TaxRate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for TaxRate {
    fn default() -> Self {
        Self::ZERO
    }
}

impl fmt::Display for TaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_exactly_and_print_canonically() {
        for (input, num, den, shown) in [
            ("0.21", 21, 100, "0.21"),
            ("0.210", 21, 100, "0.21"),
            ("0", 0, 1, "0"),
            ("0.0", 0, 1, "0"),
            ("1", 1, 1, "1"),
            ("1.000", 1, 1, "1"),
            ("0.09", 9, 100, "0.09"),
            ("0.0825", 825, 10_000, "0.0825"),
            ("0.000001", 1, 1_000_000, "0.000001"),
        ] {
            let r = TaxRate::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((r.numerator(), r.denominator()), (num, den), "{input}");
            assert_eq!(r.as_decimal(), shown, "{input}");
        }
        assert_eq!(TaxRate::parse("0.21"), TaxRate::parse("0.2100"));
    }

    #[test]
    fn rates_order_numerically() {
        let r = |s| TaxRate::parse(s).unwrap();
        assert!(r("0.08") < r("0.1"));
        assert!(r("0.0825") < r("0.09"));
        assert!(r("0") < r("0.000001"));
        assert!(r("0.999999") < r("1"));
        assert_eq!(r("0.10").cmp(&r("0.1")), std::cmp::Ordering::Equal);
    }

    #[test]
    fn out_of_range_or_malformed_rates_are_rejected() {
        for bad in [
            "",
            "-0.1",
            "1.01",
            "2",
            "21",
            ".21",
            "0.",
            "21%",
            "0,21",
            " 0.21",
            "0.21 ",
            "1e-1",
            "0.0000001",
            "00.2",
            "+0.2",
            "0.2.1",
        ] {
            assert_eq!(TaxRate::parse(bad), Err(TaxRateError), "{bad:?}");
        }
    }
}
