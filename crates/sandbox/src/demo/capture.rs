//! Capture and cancel on the demo's result page: the forms as posted, the
//! capture deadline in words, and the gateway's refusals in the words a shop owner uses. The
//! typed amount is parsed as a refund's is ([`super::parse_amount`]).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::format_money;
use super::refund::{AmountError, amount_error_message, format_date, general_refusal};

/// The capture form as posted to `POST /demo/capture`.
#[derive(Debug, Deserialize)]
pub struct DemoCaptureForm {
    pub checkout_id: String,
    /// As typed, in the currency's major units; empty = all that was authorised.
    #[serde(default)]
    pub amount: String,
    /// Minted with the page and sent as `Idempotency-Key`, so that a double-clicked button
    /// captures once.
    #[serde(default)]
    pub idempotency_key: String,
}

/// The "Cancel payment" button's form, posted to `POST /demo/cancel`.
#[derive(Debug, Deserialize)]
pub struct DemoCancelForm {
    pub checkout_id: String,
    #[serde(default)]
    pub idempotency_key: String,
}

/// What to tell the person when the capture amount they typed cannot be sent; `authorised` is
/// the checkout's amount, in minor units.
pub fn capture_amount_error_message(error: AmountError, currency: &str, authorised: i64) -> String {
    match error {
        AmountError::NotANumber => "Type the amount to capture as a number, like 5.00, or leave \
             the field empty to capture all of it."
            .to_owned(),
        AmountError::Zero => {
            "Type an amount above zero, or leave the field empty to capture all of it.".to_owned()
        }
        AmountError::TooLarge => more_than_authorised(currency, authorised),
        AmountError::TooManyDecimals => amount_error_message(error, currency, authorised),
    }
}

fn more_than_authorised(currency: &str, authorised: i64) -> String {
    format!(
        "That is more than the card was authorised for: at most {}.",
        format_money(authorised, currency)
    )
}

/// The capture deadline (`capture_before`) for people: `1 Dec 2026, 10:00 UTC (in 7 days)`;
/// without `now`, the date alone.
pub fn describe_deadline(capture_before: &str, now: Option<DateTime<Utc>>) -> String {
    let date = format_date(capture_before);
    let (Some(now), Ok(before)) = (now, DateTime::parse_from_rfc3339(capture_before)) else {
        return date;
    };
    let left = before.with_timezone(&Utc) - now;
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    let when = if left.num_seconds() <= 0 {
        "passed".to_owned()
    } else if left.num_hours() >= 24 {
        // To the nearest day: a Visa authorisation made a moment ago has 7 days left.
        let days = (left.num_seconds() + 43_200) / 86_400;
        format!("in {}", plural(days, "day"))
    } else if left.num_hours() >= 1 {
        format!("in {}", plural(left.num_hours(), "hour"))
    } else {
        "in less than an hour".to_owned()
    };
    format!("{date} ({when})")
}

/// The gateway's refusal of a capture (`cancel` false) or a cancel (`cancel` true) in plain
/// words: the codes pick the sentence; `checkout_status` is the checkout's status now.
pub fn payment_refusal_message(
    status: u16,
    body: &Value,
    cancel: bool,
    checkout_status: &str,
    currency: &str,
    authorised: i64,
) -> String {
    let error = &body["error"];
    match (error["type"].as_str(), error["code"].as_str()) {
        (_, Some("amount_too_large" | "invalid_amount")) => {
            more_than_authorised(currency, authorised)
        }
        (_, Some("checkout_not_capturable" | "checkout_not_cancelable")) => {
            not_possible(cancel, checkout_status)
        }
        (_, Some("resource_missing")) => {
            "The payment could not be found. Reload the page and try again.".to_owned()
        }
        (Some("idempotency_error"), _) if status == 409 => {
            "This is still being done. Reload the page in a moment to see it.".to_owned()
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
        _ if cancel => "The payment could not be canceled just now. Try again in a moment; if \
              it keeps failing, the sandbox's log says why."
            .to_owned(),
        _ => "The payment could not be captured just now. Try again in a moment; if it keeps \
              failing, the sandbox's log says why."
            .to_owned(),
    }
}

/// Why a capture or a cancel is not possible any more, from the checkout's status now.
fn not_possible(cancel: bool, checkout_status: &str) -> String {
    let charged = matches!(
        checkout_status,
        "succeeded" | "partially_refunded" | "refunded" | "charged_back"
    );
    match checkout_status {
        _ if charged && cancel => "This payment has been charged already, so it can no longer \
             be canceled: refund it instead."
            .to_owned(),
        _ if charged => "This payment has been captured already.".to_owned(),
        "canceled" if cancel => "This payment was canceled already.".to_owned(),
        "canceled" => "This payment was canceled, so there is nothing left to capture.".to_owned(),
        "failed" | "expired" => "This payment did not go through: nothing was charged, and there \
             is nothing to capture or cancel."
            .to_owned(),
        _ if cancel => "This payment cannot be canceled now: MultiSafepay has moved it on. \
             Refresh status shows where it stands."
            .to_owned(),
        _ => "Only a payment that is authorised and waiting to be captured can be captured, and \
              this one is not."
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(kind: &str, code: &str) -> Value {
        json!({"error": {"type": kind, "code": code, "param": "amount",
            "message": "checkout is `succeeded`, not `requires_capture`"}})
    }

    #[test]
    fn deadlines_are_dates_with_how_long_is_left() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = "2026-12-01T10:00:00Z";
        assert_eq!(describe_deadline(at, None), "1 Dec 2026, 10:00 UTC");
        assert_eq!(
            describe_deadline(at, Some(now)),
            "1 Dec 2026, 10:00 UTC (in 7 days)"
        );
        assert!(describe_deadline("2026-11-25T11:00:00Z", Some(now)).ends_with("(in 1 day)"));
        assert!(describe_deadline("2026-12-01T09:59:50Z", Some(now)).ends_with("(in 7 days)"));
        assert!(describe_deadline("2026-11-24T13:30:00Z", Some(now)).ends_with("(in 3 hours)"));
        assert!(describe_deadline("2026-11-24T10:20:00Z", Some(now)).contains("less than an hour"));
        assert!(describe_deadline("2026-11-24T09:00:00Z", Some(now)).ends_with("(passed)"));
        assert_eq!(describe_deadline("soon", Some(now)), "soon");
    }

    #[test]
    fn capture_amount_errors_name_the_authorised_amount() {
        let message = capture_amount_error_message(AmountError::TooLarge, "EUR", 4745);
        assert!(message.contains("at most €47.45"), "{message}");
        let message = capture_amount_error_message(AmountError::NotANumber, "EUR", 4745);
        assert!(message.contains("capture all of it"), "{message}");
    }

    #[test]
    fn refusals_are_plain_words_without_codes() {
        let cases = [
            (
                400,
                error("invalid_request_error", "amount_too_large"),
                false,
                "requires_capture",
                "at most €47.45",
            ),
            (
                409,
                error("invalid_request_error", "checkout_not_capturable"),
                false,
                "succeeded",
                "captured already",
            ),
            (
                409,
                error("invalid_request_error", "checkout_not_capturable"),
                false,
                "canceled",
                "nothing left to capture",
            ),
            (
                409,
                error("invalid_request_error", "checkout_not_cancelable"),
                true,
                "succeeded",
                "refund it instead",
            ),
            (
                409,
                error("invalid_request_error", "checkout_not_cancelable"),
                true,
                "canceled",
                "canceled already",
            ),
            (
                409,
                error("invalid_request_error", "checkout_not_cancelable"),
                true,
                "requires_action",
                "moved it on",
            ),
            (
                409,
                error("idempotency_error", "idempotency_key_in_use"),
                false,
                "requires_capture",
                "still being done",
            ),
            (
                502,
                error("psp_error", "psp_unusable_response"),
                true,
                "processing",
                "MultiSafepay could not be reached",
            ),
            (
                503,
                error("api_error", "service_unavailable"),
                false,
                "requires_capture",
                "briefly unavailable",
            ),
            (
                500,
                json!("junk"),
                true,
                "processing",
                "could not be canceled",
            ),
            (
                500,
                json!("junk"),
                false,
                "requires_capture",
                "could not be captured",
            ),
        ];
        for (status, body, cancel, checkout, expected) in cases {
            let message = payment_refusal_message(status, &body, cancel, checkout, "EUR", 4745);
            assert!(message.contains(expected), "{status} {body}: {message}");
            for jargon in ["_", "`", "HTTP", "{"] {
                assert!(!message.contains(jargon), "{jargon} in {message}");
            }
        }
    }
}
