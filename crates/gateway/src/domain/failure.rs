//! Why a checkout or a refund failed, in the gateway's terms (the `failure` of checkouts and refunds).

use serde::{Deserialize, Serialize};

/// Why a checkout or a refund failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// For a checkout one of `card_declined`, `authentication_failed`, `insufficient_funds`,
    /// `expired_card`, `authentication_required`, `processing_error`; for a refund
    /// `refund_refused`, `refund_declined` or `refund_not_received`.
    pub code: String,
    pub message: String,
    /// MSP's own reason or error code, `""` when MSP gave none.
    pub psp_reason_code: String,
}
