//! The payment service provider edge: the MultiSafepay client and the conversion of its answers.
//!
//! The flows see only the PSP-neutral types here ([`PaymentOutcome`], [`PspOrder`],
//! [`PspError`]); MSP's spelling stays in [`multisafepay::wire`].

use crate::domain::checkout::{CheckoutStatus, Failure};

pub mod multisafepay;

/// What an MSP order status means for the payment, before any checkout history is considered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentOutcome {
    /// `initialized`: 3-D Secure pending, or the scheme is still authorising.
    AwaitingShopper,
    /// `uncleared`: authorised but held (fraud filter); MSP decides later.
    Pending,
    /// `completed`.
    Succeeded,
    /// `declined`.
    Declined,
    /// `expired`: the shopper never finished 3-D Secure (1 h for cards).
    Expired,
    /// `void`, `cancelled`.
    Canceled,
    /// `partial_refunded`.
    PartiallyRefunded,
    /// `refunded`.
    Refunded,
    /// `chargedback`, `chargeback` (MSP's docs spell it both ways).
    ChargedBack,
    /// `reserved`, `shipped`, or a status we do not know: changes nothing; the caller logs it.
    NoChange,
}

impl PaymentOutcome {
    pub fn from_msp_status(s: &str) -> Self {
        match s {
            "initialized" => Self::AwaitingShopper,
            "uncleared" => Self::Pending,
            "completed" => Self::Succeeded,
            "declined" => Self::Declined,
            "expired" => Self::Expired,
            "void" | "cancelled" => Self::Canceled,
            "partial_refunded" => Self::PartiallyRefunded,
            "refunded" => Self::Refunded,
            "chargedback" | "chargeback" => Self::ChargedBack,
            _ => Self::NoChange,
        }
    }

    /// Design §3's table: where the checkout would go. `initialized` is `requires_action`, or
    /// `processing` once the shopper has returned (MSP has not heard the end of 3-D Secure yet,
    /// but the shopper is done with it). `NoChange` is `None`.
    pub fn target(self, shopper_returned: bool) -> Option<CheckoutStatus> {
        use CheckoutStatus as S;
        Some(match self {
            Self::AwaitingShopper if shopper_returned => S::Processing,
            Self::AwaitingShopper => S::RequiresAction,
            Self::Pending => S::Processing,
            Self::Succeeded => S::Succeeded,
            Self::Declined => S::Failed,
            Self::Expired => S::Expired,
            Self::Canceled => S::Canceled,
            Self::PartiallyRefunded => S::PartiallyRefunded,
            Self::Refunded => S::Refunded,
            Self::ChargedBack => S::ChargedBack,
            Self::NoChange => return None,
        })
    }
}

/// An MSP order as the flows need it: from a create answer, a `GET /orders/{id}` or a signed
/// POST notification body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PspOrder {
    pub order_id: String,
    /// MSP's PSP id; MSP sends it as a number or a string, kept as a string.
    pub transaction_id: Option<String>,
    /// MSP's order `status`, as MSP spelt it (`""` when absent).
    pub status: String,
    pub outcome: PaymentOutcome,
    pub reason: String,
    pub reason_code: String,
    /// Where to send the shopper for 3-D Secure (redirect mode).
    pub payment_url: Option<String>,
    /// `customer_verification.html`, when MSP sent a non-empty one (form mode).
    pub form_html: Option<String>,
}

impl PspOrder {
    /// Why the payment failed, when it did (design §3's failure table).
    pub fn failure(&self) -> Option<Failure> {
        (self.outcome == PaymentOutcome::Declined)
            .then(|| failure_for_reason(&self.reason_code, &self.reason))
    }
}

/// A `declined` order's failure from its `reason_code` (design §3).
fn failure_for_reason(reason_code: &str, reason: &str) -> Failure {
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
    let mut message = message.to_owned();
    if !reason.trim().is_empty() {
        message.push_str(&format!(" (MultiSafepay: {})", reason.trim()));
    }
    Failure {
        code: failure_code.to_owned(),
        message,
        psp_reason_code: code.to_owned(),
    }
}

/// The failure for an MSP error answer: `1024` (transaction declined) at creation is a declined
/// card; any other code is a processing error.
pub fn failure_for_error(error_code: i64, error_info: &str) -> Failure {
    let (code, message) = if error_code == 1024 {
        (
            "card_declined",
            "The card was declined. Ask the shopper to use another card or contact their bank.",
        )
    } else {
        (
            "processing_error",
            "The payment could not be processed. The shopper can try again later or use another card.",
        )
    };
    let mut message = message.to_owned();
    if !error_info.trim().is_empty() {
        message.push_str(&format!(" (MultiSafepay: {})", error_info.trim()));
    }
    Failure {
        code: code.to_owned(),
        message,
        psp_reason_code: error_code.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspError {
    /// Connect error, timeout or 5xx: MSP may or may not have acted. Never report this as a
    /// failure; sync the order later.
    #[error("MultiSafepay could not be reached or did not answer in time: {0}")]
    Unreachable(String),
    /// `success: false` with error 1024: the card was declined.
    #[error("MultiSafepay declined the transaction (error {error_code}: {error_info})")]
    Declined { error_code: i64, error_info: String },
    /// Any other `success: false`: MSP refused the request.
    #[error("MultiSafepay rejected the request (error {error_code}: {error_info})")]
    Rejected { error_code: i64, error_info: String },
    /// Error 1006 on `GET /orders/{id}`: MSP has no such order (for this API key).
    #[error("MultiSafepay has no such order")]
    NotFound,
    /// An answer that could not be understood.
    #[error("MultiSafepay answered something unusable: {0}")]
    Unexpected(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckoutStatus as S;
    use PaymentOutcome as O;

    #[test]
    fn every_msp_status_row_of_the_design_table() {
        let rows: &[(&str, O, Option<S>, Option<S>)] = &[
            (
                "initialized",
                O::AwaitingShopper,
                Some(S::RequiresAction),
                Some(S::Processing),
            ),
            (
                "uncleared",
                O::Pending,
                Some(S::Processing),
                Some(S::Processing),
            ),
            (
                "completed",
                O::Succeeded,
                Some(S::Succeeded),
                Some(S::Succeeded),
            ),
            ("declined", O::Declined, Some(S::Failed), Some(S::Failed)),
            ("expired", O::Expired, Some(S::Expired), Some(S::Expired)),
            ("void", O::Canceled, Some(S::Canceled), Some(S::Canceled)),
            (
                "cancelled",
                O::Canceled,
                Some(S::Canceled),
                Some(S::Canceled),
            ),
            (
                "partial_refunded",
                O::PartiallyRefunded,
                Some(S::PartiallyRefunded),
                Some(S::PartiallyRefunded),
            ),
            (
                "refunded",
                O::Refunded,
                Some(S::Refunded),
                Some(S::Refunded),
            ),
            (
                "chargedback",
                O::ChargedBack,
                Some(S::ChargedBack),
                Some(S::ChargedBack),
            ),
            (
                "chargeback",
                O::ChargedBack,
                Some(S::ChargedBack),
                Some(S::ChargedBack),
            ),
            ("reserved", O::NoChange, None, None),
            ("shipped", O::NoChange, None, None),
            ("something-new", O::NoChange, None, None),
            ("", O::NoChange, None, None),
            ("Completed", O::NoChange, None, None),
        ];
        for (status, outcome, before_return, after_return) in rows {
            let o = O::from_msp_status(status);
            assert_eq!(o, *outcome, "{status}");
            assert_eq!(o.target(false), *before_return, "{status}");
            assert_eq!(o.target(true), *after_return, "{status} after return");
        }
    }

    fn declined(reason_code: &str) -> PspOrder {
        PspOrder {
            order_id: "chk_x".into(),
            transaction_id: None,
            status: "declined".into(),
            outcome: O::Declined,
            reason: "Declined".into(),
            reason_code: reason_code.into(),
            payment_url: None,
            form_html: None,
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
            let failure = declined(reason_code)
                .failure()
                .expect("declined has a failure");
            assert_eq!(failure.code, expected, "reason_code {reason_code:?}");
            assert_eq!(failure.psp_reason_code, reason_code);
            assert!(failure.message.contains("(MultiSafepay: Declined)"));
        }
    }

    #[test]
    fn only_declined_orders_have_a_failure() {
        for status in ["initialized", "completed", "uncleared", "expired", "void"] {
            let order = PspOrder {
                status: status.into(),
                outcome: O::from_msp_status(status),
                ..declined("4001")
            };
            assert_eq!(order.failure(), None, "{status}");
        }
    }

    #[test]
    fn error_1024_is_a_declined_card_anything_else_a_processing_error() {
        let f = failure_for_error(1024, "declined");
        assert_eq!(f.code, "card_declined");
        assert_eq!(f.psp_reason_code, "1024");
        assert!(f.message.contains("declined"));
        let f = failure_for_error(1021, "Cannot create transaction");
        assert_eq!(f.code, "processing_error");
        assert_eq!(f.psp_reason_code, "1021");
    }
}
