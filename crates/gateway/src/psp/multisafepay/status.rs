//! MultiSafepay's vocabulary: its order status strings, its error and reason codes, and the
//! failure table built on them. Only this module knows what MSP's words mean; the
//! flows see [`PaymentStatus`] and [`Failure`].

use crate::domain::checkout::Failure;
use crate::psp::{PaymentStatus, RefundProgress};

/// MSP's error code for a declined transaction.
pub const ERROR_DECLINED: i64 = 1024;
/// MSP's error code for an unknown order (on GET) or a used order id (on create).
pub const ERROR_INVALID_ORDER_ID: i64 = 1006;
/// MSP's error code for a refund it will not make: more than is left, too low a balance, or a
/// refund of the same amount within 5 minutes (reference §3.6, §6.1).
pub const ERROR_CANNOT_REFUND: i64 = 1034;

/// An MSP order `status` (reference §4). MSP's docs spell the chargeback status both ways.
pub fn payment_status(status: &str) -> PaymentStatus {
    use PaymentStatus as P;
    match status {
        "initialized" => P::AwaitingShopper,
        "uncleared" => P::Pending,
        "completed" => P::Succeeded,
        "declined" => P::Declined,
        "expired" => P::Expired,
        "void" | "cancelled" => P::Canceled,
        "partial_refunded" => P::PartiallyRefunded,
        "refunded" => P::Refunded,
        "chargedback" | "chargeback" => P::ChargedBack,
        // `reserved`, `shipped`, or something new.
        _ => P::NoChange,
    }
}

/// An authorised payment not collected yet: order `status` `completed` with `financial_status`
/// `initialized` (reference §4.2, manual capture). MSP's docs show the same pair for an Amex
/// payment collected through the merchant-number flow, so it means "waiting for a capture"
/// only on an order that was sent with `capture: manual`.
pub fn authorized_only(status: &str, financial_status: &str) -> bool {
    status == "completed" && financial_status == "initialized"
}

/// Whether a `capture` entry of an order's `related_transactions` took money: any status but
/// one that says it did not happen or was undone.
pub fn capture_took_money(status: &str) -> bool {
    !matches!(status, "declined" | "void" | "cancelled" | "expired")
}

/// The order status MSP shows once it has cancelled an order (order `void`, transaction
/// `cancelled`) or voided an authorisation (`void` / `void`) (reference §4.2, §6.2).
pub const CANCELED_ORDER_STATUS: &str = "void";

/// How long MSP refuses a refund of the same amount as an earlier one (reference §6.1).
pub const SAME_AMOUNT_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The `status` of a refund in an order's `related_transactions` (reference §4.2, §6.1).
pub fn refund_progress(status: &str) -> RefundProgress {
    use RefundProgress as R;
    match status {
        "initialized" | "reserved" => R::Pending,
        "completed" => R::Completed,
        "declined" => R::Declined,
        "void" | "cancelled" => R::Voided,
        _ => R::Unknown,
    }
}

/// A `declined` order's failure from its `reason_code` and `reason`.
pub fn failure_for_reason(reason_code: &str, reason: &str) -> Failure {
    let code = reason_code.trim();
    let (failure_code, message) = match code.parse::<u32>().ok() {
        // A declined status without a more precise reason.
        None if code.is_empty() => (
            "card_declined",
            "The card was declined. Ask the shopper to use another card or contact their bank.",
        ),
        Some(4001 | 4003 | 4999) => (
            "card_declined",
            "The card was declined by its issuer. Ask the shopper to use another card or contact their bank.",
        ),
        Some(3005 | 4005) => (
            "expired_card",
            "The card has expired or its account is closed. Ask the shopper to use another card.",
        ),
        Some(3001..=3012) => (
            "authentication_failed",
            "3-D Secure authentication failed or was cancelled by the shopper. The shopper can try again or use another card.",
        ),
        Some(4002) => (
            "insufficient_funds",
            "The card has insufficient funds. Ask the shopper to use another card.",
        ),
        Some(4004) => (
            "authentication_required",
            "The issuer requires 3-D Secure authentication for this payment. Create a new checkout so the shopper can authenticate.",
        ),
        _ => (
            "processing_error",
            "The payment could not be processed. The shopper can try again later or use another card.",
        ),
    };
    failure(failure_code, message, reason, code.to_owned())
}

/// The failure for an MSP error answer to the create call: `1024` (transaction declined) is a
/// declined card; any other code is MSP refusing the order.
pub fn failure_for_error(error_code: i64, error_info: &str) -> Failure {
    if error_code == ERROR_DECLINED {
        failure(
            "card_declined",
            "The card was declined. Ask the shopper to use another card or contact their bank.",
            error_info,
            error_code.to_string(),
        )
    } else {
        Failure {
            code: "processing_error".into(),
            message: format!("MultiSafepay refused the order: {error_info}"),
            psp_reason_code: error_code.to_string(),
        }
    }
}

/// Why a checkout whose order MSP does not know (error 1006 on `GET /orders/{id}`) has failed:
/// MSP never received it, so nothing was charged.
pub fn failure_for_unknown_order() -> Failure {
    Failure {
        code: "processing_error".into(),
        message:
            "MultiSafepay never received this order; nothing was charged. Start a new checkout."
                .into(),
        psp_reason_code: ERROR_INVALID_ORDER_ID.to_string(),
    }
}

/// The failure of a refund MSP refused at once: the refund failed and its amount is free again.
pub fn failure_for_refund_error(error_code: i64, error_info: &str) -> Failure {
    let message = if error_code == ERROR_CANNOT_REFUND {
        "MultiSafepay refused the refund: it is more than is left to refund, the account balance is too low, or a refund of the same amount was made in the last 5 minutes. Check the order and the balance in MultiSafepay's dashboard, then try again."
    } else {
        "MultiSafepay refused the refund. Check the order in MultiSafepay's dashboard, then try again."
    };
    failure(
        "refund_refused",
        message,
        error_info,
        error_code.to_string(),
    )
}

/// The failure of a refund MSP refused (error 1034) within [`SAME_AMOUNT_WINDOW`] of another
/// refund of the same amount, requested at `earlier`: that rule is the likely reason, so it
/// comes first, with the time it lifts; the other reasons 1034 covers follow.
pub fn failure_for_same_amount_refund(
    earlier: chrono::DateTime<chrono::Utc>,
    error_info: &str,
) -> Failure {
    let lifts = (earlier + SAME_AMOUNT_WINDOW).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let message = format!(
        "MultiSafepay refuses a refund of the same amount as another requested less than 5 minutes before it (one was requested at {}, even if it was canceled or failed since): this amount can be refunded again from {lifts}. Otherwise MultiSafepay refuses a refund that is more than is left to refund or when the account balance is too low.",
        earlier.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    failure(
        "refund_refused",
        &message,
        error_info,
        ERROR_CANNOT_REFUND.to_string(),
    )
}

/// Why MSP would not cancel a refund: it is not `reserved` any more (sent, failed or already
/// canceled), or MSP does not know it.
pub fn failure_for_refund_cancel_error(error_code: i64, error_info: &str) -> Failure {
    failure(
        "refund_not_cancelable",
        "MultiSafepay would not cancel the refund: it is probably no longer waiting to be sent. Check the refund's status before doing anything else.",
        error_info,
        error_code.to_string(),
    )
}

/// Why MSP would not cancel a payment: it has moved on (completed, declined or expired
/// meanwhile), MSP does not cancel it at this stage, or MSP does not know the order.
pub fn failure_for_cancel_error(error_code: i64, error_info: &str) -> Failure {
    failure(
        "checkout_not_cancelable",
        "MultiSafepay refused to cancel the payment: it has probably moved on meanwhile (completed, declined or expired), or MultiSafepay does not cancel it at this stage. Fetch the checkout to see its current status.",
        error_info,
        error_code.to_string(),
    )
}

/// Why MSP would not capture an authorisation: it expired, was cancelled or was captured
/// already, or the amount is more than was authorised.
pub fn failure_for_capture_error(error_code: i64, error_info: &str) -> Failure {
    failure(
        "checkout_not_capturable",
        "MultiSafepay refused to capture the payment: the authorisation may have expired, been cancelled or been captured already, or the amount is more than was authorised. Fetch the checkout to see its current status.",
        error_info,
        error_code.to_string(),
    )
}

/// `message`, with MSP's own words appended when it gave any.
fn failure(code: &str, message: &str, msp_words: &str, psp_reason_code: String) -> Failure {
    let mut message = message.to_owned();
    if !msp_words.trim().is_empty() {
        message.push_str(&format!(" (MultiSafepay: {})", msp_words.trim()));
    }
    Failure {
        code: code.to_owned(),
        message,
        psp_reason_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus as P;

    #[test]
    fn every_msp_status_of_the_design_table() {
        let rows = [
            ("initialized", P::AwaitingShopper),
            ("uncleared", P::Pending),
            ("completed", P::Succeeded),
            ("declined", P::Declined),
            ("expired", P::Expired),
            ("void", P::Canceled),
            ("cancelled", P::Canceled),
            ("partial_refunded", P::PartiallyRefunded),
            ("refunded", P::Refunded),
            ("chargedback", P::ChargedBack),
            ("chargeback", P::ChargedBack),
            ("reserved", P::NoChange),
            ("shipped", P::NoChange),
            ("something-new", P::NoChange),
            ("", P::NoChange),
            ("Completed", P::NoChange),
        ];
        for (status, expected) in rows {
            assert_eq!(payment_status(status), expected, "{status}");
        }
    }

    #[test]
    fn every_msp_refund_status() {
        use RefundProgress as R;
        let rows = [
            ("initialized", R::Pending),
            ("reserved", R::Pending),
            ("completed", R::Completed),
            ("declined", R::Declined),
            ("void", R::Voided),
            ("cancelled", R::Voided),
            ("refunded", R::Unknown),
            ("", R::Unknown),
            ("Completed", R::Unknown),
        ];
        for (status, expected) in rows {
            assert_eq!(refund_progress(status), expected, "{status}");
        }
    }

    #[test]
    fn failure_codes_row_by_row() {
        let rows = [
            ("", "card_declined"),
            ("4001", "card_declined"),
            ("4003", "card_declined"),
            ("4999", "card_declined"),
            ("3001", "authentication_failed"),
            ("3002", "authentication_failed"),
            ("3004", "authentication_failed"),
            ("3006", "authentication_failed"),
            ("3011", "authentication_failed"),
            ("3012", "authentication_failed"),
            ("4002", "insufficient_funds"),
            ("3005", "expired_card"),
            ("4005", "expired_card"),
            ("4004", "authentication_required"),
            ("3000", "processing_error"),
            ("3013", "processing_error"),
            ("5999", "processing_error"),
            ("1024", "processing_error"),
            ("abc", "processing_error"),
        ];
        for (reason_code, expected) in rows {
            let failure = failure_for_reason(reason_code, "Declined");
            assert_eq!(failure.code, expected, "reason_code {reason_code:?}");
            assert_eq!(failure.psp_reason_code, reason_code);
            assert!(failure.message.contains("(MultiSafepay: Declined)"));
        }
    }

    #[test]
    fn error_1024_is_a_declined_card_anything_else_a_refused_order() {
        let f = failure_for_error(1024, "declined");
        assert_eq!(f.code, "card_declined");
        assert_eq!(f.psp_reason_code, "1024");
        assert!(f.message.contains("declined"));
        let f = failure_for_error(1021, "Cannot create transaction");
        assert_eq!(f.code, "processing_error");
        assert_eq!(f.psp_reason_code, "1021");
        assert_eq!(
            f.message,
            "MultiSafepay refused the order: Cannot create transaction"
        );
    }

    #[test]
    fn a_refused_refund_says_why_and_what_to_do() {
        let f = failure_for_refund_error(1034, "Cannot refund transaction");
        assert_eq!(f.code, "refund_refused");
        assert_eq!(f.psp_reason_code, "1034");
        assert!(f.message.contains("last 5 minutes"), "{}", f.message);
        assert!(
            f.message
                .ends_with("(MultiSafepay: Cannot refund transaction)"),
            "{}",
            f.message
        );
        let f = failure_for_refund_error(1002, "Invalid currency");
        assert_eq!(f.code, "refund_refused");
        assert_eq!(f.psp_reason_code, "1002");
        assert!(f.message.starts_with("MultiSafepay refused the refund."));
        assert!(f.message.contains("Invalid currency"), "{}", f.message);
    }

    #[test]
    fn refusals_keep_msp_code_and_words() {
        let rows = [
            (
                failure_for_refund_cancel_error(1000, "Not found"),
                "refund_not_cancelable",
                "MultiSafepay would not cancel the refund",
            ),
            (
                failure_for_cancel_error(1000, "Not found"),
                "checkout_not_cancelable",
                "MultiSafepay refused to cancel the payment",
            ),
            (
                failure_for_capture_error(1000, "Not found"),
                "checkout_not_capturable",
                "MultiSafepay refused to capture the payment",
            ),
        ];
        for (f, code, opening) in rows {
            assert_eq!(f.code, code);
            assert_eq!(f.psp_reason_code, "1000");
            assert!(
                f.message.starts_with(opening) && f.message.ends_with("(MultiSafepay: Not found)"),
                "{}",
                f.message
            );
        }
    }
}
