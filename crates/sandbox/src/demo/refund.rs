//! Refunds on the demo's result page: the amount a person types (major units, `5.00`) turned
//! into the minor units the gateway takes, exactly; the refunds as `GET
//! /v1/checkouts/{id}/refunds` lists them; and the gateway's refusals in the words a shop owner
//! uses, without codes or JSON paths.

use serde::Deserialize;
use serde_json::Value;

use gateway::domain::money::Currency;

use super::{format_major_units, format_money};

/// The largest refund the gateway takes, in minor units (`RefundCreateRequest.amount`).
const MAX_AMOUNT: i64 = 99_999_999;

/// The refund form as posted to `POST /demo/refund`.
#[derive(Debug, Deserialize)]
pub struct DemoRefundForm {
    pub checkout_id: String,
    /// As typed, in the currency's major units; empty = everything that is left.
    #[serde(default)]
    pub amount: String,
    /// Minted with the page and sent as `Idempotency-Key`, so that a double-clicked button
    /// makes one refund.
    #[serde(default)]
    pub idempotency_key: String,
}

/// The "Cancel refund" button's form, posted to `POST /demo/refund/cancel`.
#[derive(Debug, Deserialize)]
pub struct DemoRefundCancelForm {
    pub checkout_id: String,
    pub refund_id: String,
}

/// Why a typed amount is not one the demo can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    /// Not digits with at most one decimal point or comma.
    NotANumber,
    /// More decimals than the currency has.
    TooManyDecimals,
    Zero,
    /// More than the gateway would ever take.
    TooLarge,
}

/// The refund amount a person typed, in `currency`'s major units (`5`, `5.00`, `5,00`, `€5.00`),
/// as minor units, exactly (no floating point); `None` when the field is empty: refund
/// everything that is left.
pub fn parse_amount(input: &str, currency: &str) -> Result<Option<i64>, AmountError> {
    let exponent = usize::from(Currency::parse(currency).map_or(2, |c| c.exponent()));
    let text = strip_currency(input.trim(), currency);
    if text.is_empty() {
        return Ok(None);
    }
    let (whole, fraction) = match text.find(['.', ',']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return Err(AmountError::NotANumber);
    }
    if fraction.len() > exponent {
        return Err(AmountError::TooManyDecimals);
    }
    let padding = std::iter::repeat_n(b'0', exponent - fraction.len());
    let mut minor: i64 = 0;
    for digit in whole.bytes().chain(fraction.bytes()).chain(padding) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(digit - b'0')))
            .filter(|m| *m <= MAX_AMOUNT)
            .ok_or(AmountError::TooLarge)?;
    }
    if minor == 0 {
        return Err(AmountError::Zero);
    }
    Ok(Some(minor))
}

/// `text` without the currency's sign or code in front or behind (`€5`, `5 EUR`).
fn strip_currency<'a>(text: &'a str, currency: &str) -> &'a str {
    let sign = match currency {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        _ => currency,
    };
    let mut text = text;
    for mark in [sign, currency] {
        if let Some(rest) = text.strip_prefix(mark) {
            text = rest.trim_start();
        }
        if let Some(rest) = text.strip_suffix(mark) {
            text = rest.trim_end();
        }
    }
    text
}

/// What to tell the person when their amount cannot be sent; `left` is what the checkout has
/// left to refund, in minor units.
pub fn amount_error_message(error: AmountError, currency: &str, left: i64) -> String {
    match error {
        AmountError::NotANumber => {
            "Type the amount to refund as a number, like 5.00, or leave the field empty to refund \
             everything that is left."
                .to_owned()
        }
        AmountError::TooManyDecimals => {
            let example = format_major_units(500, currency);
            format!(
                "That amount has too many decimals for {currency}: type it like {example}, \
                 without thousands separators."
            )
        }
        AmountError::Zero => {
            "Type an amount above zero, or leave the field empty to refund everything that is \
             left."
                .to_owned()
        }
        AmountError::TooLarge => too_much(currency, left),
    }
}

fn too_much(currency: &str, left: i64) -> String {
    if left > 0 {
        format!(
            "That is more than is left to refund on this payment: at most {} (refunds still \
             pending count as refunded).",
            format_money(left, currency)
        )
    } else {
        "Everything this payment can refund has been refunded already, or is being refunded."
            .to_owned()
    }
}

/// One refund of the checkout (`GET /v1/checkouts/{id}/refunds`), reduced to what the page
/// shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoRefund {
    pub id: String,
    /// Minor units of the checkout's currency.
    pub amount: i64,
    /// `pending`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// RFC 3339, as the gateway wrote it.
    pub created_at: String,
    /// The gateway's explanation when the refund failed.
    pub failure_message: Option<String>,
}

impl DemoRefund {
    /// The refunds of the gateway's page (`data`), oldest first as it lists them; anything
    /// that is not a page is no refunds.
    pub fn list_from_api(refunds: &Value) -> Vec<DemoRefund> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        refunds["data"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|r| DemoRefund {
                        id: text(&r["id"]).unwrap_or_default(),
                        amount: r["amount"].as_i64().unwrap_or(0),
                        status: text(&r["status"]).unwrap_or_default(),
                        created_at: text(&r["created_at"]).unwrap_or_default(),
                        failure_message: text(&r["failure"]["message"]),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the amount is taken from what is left: pending and paid-out refunds.
    pub fn holds_amount(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "succeeded")
    }
}

/// (CSS tone, label, explanation) of a refund status, for a shop owner.
pub(super) fn describe_refund(status: &str) -> (&'static str, &'static str, &'static str) {
    match status {
        "pending" => (
            "wait",
            "Pending",
            "Not paid out yet: it can still be canceled.",
        ),
        "succeeded" => ("ok", "Refunded", "Paid back to the customer's card."),
        "failed" => ("bad", "Failed", "Nothing was paid back."),
        "canceled" => (
            "neutral",
            "Canceled",
            "Canceled before it was paid out: nothing was paid back.",
        ),
        _ => (
            "neutral",
            "Unknown",
            "The gateway reported a status the demo does not know.",
        ),
    }
}

/// `2026-11-24T10:00:03Z` as `24 Nov 2026, 10:00 UTC`; anything else as it came.
pub(super) fn format_date(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|at| {
            at.with_timezone(&chrono::Utc)
                .format("%-d %b %Y, %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// What the refund was asked of, to say why the gateway refused it.
#[derive(Debug, Clone, Copy)]
pub struct RefusalContext<'a> {
    pub currency: &'a str,
    /// What is left to refund now, in minor units.
    pub left: i64,
    /// The checkout's status now.
    pub checkout_status: &'a str,
    /// For a refund cancel: the refund's status now, if the checkout still lists it.
    pub refund_status: Option<&'a str>,
}

/// The gateway's refusal of a refund or a refund cancel (its status and error body)
/// in plain words: the codes pick the sentence, the context fills in the amounts.
pub fn refusal_message(status: u16, body: &Value, ctx: &RefusalContext<'_>) -> String {
    let error = &body["error"];
    match (error["type"].as_str(), error["code"].as_str()) {
        (_, Some("amount_too_large" | "invalid_amount")) => too_much(ctx.currency, ctx.left),
        (_, Some("checkout_not_refundable")) => match ctx.checkout_status {
            "refunded" => "This payment has been refunded in full already.".to_owned(),
            "charged_back" => {
                "This payment was charged back by the cardholder, so it cannot be refunded."
                    .to_owned()
            }
            _ => "Only a completed payment can be refunded, and this one is not.".to_owned(),
        },
        (_, Some("refund_not_cancelable")) => match ctx.refund_status {
            Some("succeeded") => {
                "This refund can no longer be canceled: it has been paid out already.".to_owned()
            }
            Some("canceled") => "This refund was canceled already.".to_owned(),
            Some("failed") => "This refund failed, so there is nothing to cancel.".to_owned(),
            _ => "MultiSafepay has not confirmed this refund yet, so it cannot be canceled yet. \
                  Try again in a minute."
                .to_owned(),
        },
        (_, Some("resource_missing")) => {
            "The payment or the refund could not be found. Reload the page and try again."
                .to_owned()
        }
        (Some("idempotency_error"), _) if status == 409 => {
            "This refund is still being made. Reload the page in a moment to see it.".to_owned()
        }
        (Some("idempotency_error"), _) => {
            "This form was sent before with another amount. Type the amount again and send it."
                .to_owned()
        }
        (Some(kind), _) if general_refusal(kind).is_some() => {
            general_refusal(kind).unwrap_or_default()
        }
        _ if status == 503 => {
            "The payment service is briefly unavailable. Nothing changed: try again in a moment."
                .to_owned()
        }
        _ => "The refund could not be made just now. Try again in a moment; if it keeps \
              failing, the sandbox's log says why."
            .to_owned(),
    }
}

/// The refusals that read the same whatever was asked, by the error's `type`.
pub(super) fn general_refusal(kind: &str) -> Option<String> {
    let message = match kind {
        "rate_limit_error" => "Too many requests at once. Wait a moment, then try again.",
        "psp_error" => {
            "MultiSafepay could not be reached just now. Nothing changed: try again in a minute."
        }
        "authentication_error" => {
            "The shop's API key was refused. Restart the sandbox and try again."
        }
        _ => return None,
    };
    Some(message.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn typed_amounts_become_minor_units_exactly() {
        for (typed, minor) in [
            ("5.00", 500),
            ("5", 500),
            ("5.", 500),
            ("5,5", 550),
            ("0.01", 1),
            (".5", 50),
            ("  12.34 ", 1234),
            ("€5.00", 500),
            ("€ 5", 500),
            ("5.00 EUR", 500),
            ("EUR 0.10", 10),
            ("34.95", 3495),
            ("0.29", 29),
            ("1.15", 115),
            ("999999.99", 99_999_999),
        ] {
            assert_eq!(parse_amount(typed, "EUR"), Ok(Some(minor)), "{typed}");
        }
        assert_eq!(parse_amount("500", "JPY"), Ok(Some(500)));
        assert_eq!(parse_amount("1.250", "KWD"), Ok(Some(1250)));
        assert_eq!(parse_amount("$1.00", "USD"), Ok(Some(100)));
    }

    #[test]
    fn an_empty_field_refunds_everything_left() {
        assert_eq!(parse_amount("", "EUR"), Ok(None));
        assert_eq!(parse_amount("   ", "EUR"), Ok(None));
        assert_eq!(parse_amount("€", "EUR"), Ok(None));
    }

    #[test]
    fn what_is_not_an_amount_is_refused() {
        for typed in [
            "five", "5.0.0", "5,00.1", "-5", "+5", "1e3", ".", "5 00", "0x10", "٥",
        ] {
            assert_eq!(
                parse_amount(typed, "EUR"),
                Err(AmountError::NotANumber),
                "{typed}"
            );
        }
        assert_eq!(
            parse_amount("5.001", "EUR"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(
            parse_amount("1,000", "EUR"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(
            parse_amount("5.0", "JPY"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(parse_amount("0", "EUR"), Err(AmountError::Zero));
        assert_eq!(parse_amount("0.00", "EUR"), Err(AmountError::Zero));
        assert_eq!(parse_amount("1000000", "EUR"), Err(AmountError::TooLarge));
        assert_eq!(
            parse_amount("99999999999999999999999", "EUR"),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn amount_errors_are_sentences_with_the_amount_left() {
        let message = amount_error_message(AmountError::TooLarge, "EUR", 2995);
        assert!(message.contains("at most €29.95"), "{message}");
        let message = amount_error_message(AmountError::TooManyDecimals, "EUR", 2995);
        assert!(message.contains("like 5.00"), "{message}");
        let message = amount_error_message(AmountError::TooManyDecimals, "JPY", 2995);
        assert!(message.contains("like 500,"), "{message}");
        assert!(amount_error_message(AmountError::TooLarge, "EUR", 0).contains("already"));
    }

    #[test]
    fn refunds_are_read_from_the_gateways_json() {
        let list = json!({"data": [
            {"id": "re_1", "amount": 500, "currency": "EUR", "status": "pending", "failure": null,
             "created_at": "2026-11-24T10:00:03Z"},
            {"id": "re_2", "amount": 700, "status": "failed",
             "failure": {"code": "refund_refused", "message": "MultiSafepay refused the refund."},
             "created_at": "2026-11-24T10:01:00Z"}
        ], "has_more": false});
        let refunds = DemoRefund::list_from_api(&list);
        assert_eq!(refunds.len(), 2);
        assert_eq!(refunds[0].amount, 500);
        assert!(refunds[0].holds_amount());
        assert_eq!(refunds[0].failure_message, None);
        assert!(!refunds[1].holds_amount());
        assert_eq!(
            refunds[1].failure_message.as_deref(),
            Some("MultiSafepay refused the refund.")
        );
        assert!(DemoRefund::list_from_api(&json!({"error": {}})).is_empty());
    }

    #[test]
    fn dates_are_written_for_people() {
        assert_eq!(
            format_date("2026-11-24T10:00:03Z"),
            "24 Nov 2026, 10:00 UTC"
        );
        assert_eq!(
            format_date("2026-11-24T10:00:03.123+01:00"),
            "24 Nov 2026, 09:00 UTC"
        );
        assert_eq!(format_date("yesterday"), "yesterday");
    }

    fn ctx<'a>(checkout_status: &'a str, refund_status: Option<&'a str>) -> RefusalContext<'a> {
        RefusalContext {
            currency: "EUR",
            left: 2995,
            checkout_status,
            refund_status,
        }
    }

    fn error(kind: &str, code: &str) -> Value {
        json!({"error": {"type": kind, "code": code, "param": "amount",
            "message": "The amount is more than what is left to refund (2995 minor units)."}})
    }

    #[test]
    fn refusals_are_plain_words_without_codes_or_paths() {
        let cases = [
            (
                400,
                error("invalid_request_error", "amount_too_large"),
                ctx("succeeded", None),
                "at most €29.95",
            ),
            (
                409,
                error("invalid_request_error", "checkout_not_refundable"),
                ctx("refunded", None),
                "refunded in full already",
            ),
            (
                409,
                error("invalid_request_error", "checkout_not_refundable"),
                ctx("failed", None),
                "Only a completed payment",
            ),
            (
                409,
                error("invalid_request_error", "refund_not_cancelable"),
                ctx("succeeded", Some("succeeded")),
                "paid out already",
            ),
            (
                409,
                error("invalid_request_error", "refund_not_cancelable"),
                ctx("succeeded", Some("canceled")),
                "canceled already",
            ),
            (
                409,
                error("invalid_request_error", "refund_not_cancelable"),
                ctx("succeeded", Some("pending")),
                "not confirmed",
            ),
            (
                404,
                error("invalid_request_error", "resource_missing"),
                ctx("succeeded", None),
                "could not be found",
            ),
            (
                409,
                error("idempotency_error", "idempotency_key_in_use"),
                ctx("succeeded", None),
                "still being made",
            ),
            (
                429,
                error("rate_limit_error", "rate_limited"),
                ctx("succeeded", None),
                "Too many",
            ),
            (
                502,
                error("psp_error", "psp_unusable_response"),
                ctx("succeeded", None),
                "MultiSafepay could not be reached",
            ),
            (
                503,
                error("api_error", "service_unavailable"),
                ctx("succeeded", None),
                "briefly unavailable",
            ),
            (
                500,
                json!("not json at all"),
                ctx("succeeded", None),
                "could not be made",
            ),
        ];
        for (status, body, ctx, expected) in cases {
            let message = refusal_message(status, &body, &ctx);
            assert!(message.contains(expected), "{status} {body}: {message}");
            for jargon in ["_", "minor units", "amount:", "HTTP", "{"] {
                assert!(!message.contains(jargon), "{jargon} in {message}");
            }
        }
    }
}
