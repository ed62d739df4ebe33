//! How the console writes values: amounts, times, statuses as a colour (a CSS class) and a word.

use chrono::{DateTime, Utc};

use crate::domain::checkout::CheckoutStatus;
use crate::domain::dispute::DisputeStatus;
use crate::domain::event::DeliveryStatus;
use crate::domain::money::{Currency, MinorUnits};
use crate::domain::refund::RefundStatus;

/// A status's colour class: `ok` green, `warn` amber, `bad` red, `info` blue, `muted` grey.
pub type Tone = &'static str;

/// `12.50 EUR`, from minor units and the currency's exponent.
pub fn amount(value: MinorUnits, currency: Currency) -> String {
    let v = value.value();
    let exp = u32::from(currency.exponent());
    let sign = if v < 0 { "-" } else { "" };
    let abs = v.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs} {}", currency.code());
    }
    let unit = 10u64.pow(exp);
    format!(
        "{sign}{}.{:0width$} {}",
        abs / unit,
        abs % unit,
        currency.code(),
        width = exp as usize
    )
}

/// A card brand as people write it: `visa` → `Visa`, `amex` → `American Express`.
pub fn brand(brand: &str) -> String {
    match brand {
        "visa" => "Visa".to_owned(),
        "mastercard" => "Mastercard".to_owned(),
        "maestro" => "Maestro".to_owned(),
        "amex" => "American Express".to_owned(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

/// `2026-12-07 01:36:34 UTC`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `in 5 h`, `3 min ago`: how far `at` is from `now`.
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let (n, unit) = match secs.unsigned_abs() {
        s if s < 60 => (s, "s"),
        s if s < 3_600 => (s / 60, "min"),
        s if s < 172_800 => (s / 3_600, "h"),
        s => (s / 86_400, "days"),
    };
    if secs >= 0 {
        format!("in {n} {unit}")
    } else {
        format!("{n} {unit} ago")
    }
}

pub fn checkout_status(s: CheckoutStatus) -> (Tone, &'static str) {
    use CheckoutStatus as S;
    match s {
        S::Created => ("info", "Created"),
        S::RequiresAction => ("warn", "Awaiting 3-D Secure"),
        S::Processing => ("warn", "Processing"),
        S::RequiresCapture => ("info", "Authorised, to capture"),
        S::Succeeded => ("ok", "Succeeded"),
        S::Failed => ("bad", "Failed"),
        S::Canceled => ("muted", "Canceled"),
        S::Expired => ("muted", "Expired"),
        S::PartiallyRefunded => ("info", "Partly refunded"),
        S::Refunded => ("info", "Refunded"),
        S::ChargedBack => ("bad", "Charged back"),
    }
}

pub fn refund_status(s: RefundStatus) -> (Tone, &'static str) {
    match s {
        RefundStatus::Pending => ("warn", "Pending"),
        RefundStatus::Succeeded => ("ok", "Refunded"),
        RefundStatus::Failed => ("bad", "Failed"),
        RefundStatus::Canceled => ("muted", "Canceled"),
    }
}

pub fn dispute_status(s: DisputeStatus) -> (Tone, &'static str) {
    match s {
        DisputeStatus::NeedsResponse => ("bad", "Needs response"),
        DisputeStatus::UnderReview => ("warn", "Under review"),
        DisputeStatus::Won => ("ok", "Won"),
        DisputeStatus::Lost => ("bad", "Lost"),
    }
}

pub fn delivery_status(s: DeliveryStatus) -> (Tone, &'static str) {
    match s {
        DeliveryStatus::Pending => ("warn", "Retrying"),
        DeliveryStatus::Delivered => ("ok", "Delivered"),
        DeliveryStatus::Failed => ("bad", "Failed"),
    }
}

/// An HTTP status as a tone and a word.
pub fn http_status(status: Option<u16>) -> (Tone, String) {
    match status {
        Some(s) if (200..300).contains(&s) => ("ok", format!("HTTP {s}")),
        Some(s) => ("bad", format!("HTTP {s}")),
        None => ("bad", "No answer".to_owned()),
    }
}

/// Text for SVG and other markup the console writes itself: `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_with_the_currency_exponent() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(amount(MinorUnits::new(1250).unwrap(), eur), "12.50 EUR");
        assert_eq!(amount(MinorUnits::new(5).unwrap(), eur), "0.05 EUR");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(amount(MinorUnits::new(1250).unwrap(), jpy), "1250 JPY");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
