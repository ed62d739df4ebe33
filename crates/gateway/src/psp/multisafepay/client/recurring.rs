//! Saved cards at MSP: the token API calls the
//! gateway makes (`PATCH /recurring/{ref}/update/{token}`, `DELETE /recurring/{ref}/remove/{token}`)
//! and what MSP's refusal of an order paid with a token means.

use crate::domain::checkout::Failure;
use crate::domain::payment_method::{CustomerReference, MspToken};
use crate::psp::PspError;

use super::MultiSafepayClient;

/// MSP's error for a token it does not know (HTTP 410): unknown, deleted or never activated.
const ERROR_TOKEN_NOT_FOUND: i64 = 1000;
/// MSP's "transaction declined", which is also its answer over the recurring limit.
const ERROR_DECLINED: i64 = 1024;

impl MultiSafepayClient {
    /// `PATCH /recurring/{reference}/update/{token}` `{"expiry_date": "YYMM"}`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_token(
        &self,
        reference: &CustomerReference,
        token: &MspToken,
        expiry_yymm: &str,
    ) -> Result<(), PspError> {
        let url = self.url(&["recurring", reference.as_str(), "update", token.expose()]);
        let body = serde_json::json!({ "expiry_date": expiry_yymm });
        let request = self.http().patch(url).json(&body);
        self.call("update_token", None, request, token_call_refused)
            .await
    }

    /// `DELETE /recurring/{reference}/remove/{token}`. A token MSP does not know (410, 1000) is
    /// gone already: that is success for a delete.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn remove_token(
        &self,
        reference: &CustomerReference,
        token: &MspToken,
    ) -> Result<(), PspError> {
        let url = self.url(&["recurring", reference.as_str(), "remove", token.expose()]);
        let request = self.http().delete(url);
        match self
            .call("remove_token", None, request, token_call_refused)
            .await
        {
            Err(PspError::Rejected { error_code, .. }) if error_code == ERROR_TOKEN_NOT_FOUND => {
                Ok(())
            }
            other => other,
        }
    }
}

/// MSP refusing a token API call.
fn token_call_refused(error_code: i64, error_info: String) -> PspError {
    let failure = payment_method_invalid(error_code);
    PspError::Rejected {
        error_code,
        error_info,
        failure,
    }
}

/// MSP refusing an order paid with a saved card: always a failed payment, `recurring_limit`
/// when MSP's limit of card recurring payments per 24 hours was reached, else
/// `payment_method_invalid`, with MSP's code.
pub(super) fn token_order_refused(error_code: i64, error_info: String) -> PspError {
    let failure = token_order_failure(error_code, &error_info);
    PspError::Declined {
        error_code,
        error_info,
        failure,
    }
}

pub(crate) fn token_order_failure(error_code: i64, error_info: &str) -> Failure {
    let lower = error_info.to_ascii_lowercase();
    if error_code == ERROR_DECLINED && (lower.contains("limit") || lower.contains("24 hours")) {
        let when = retry_time(error_info)
            .map(|t| format!(" A retry can succeed from {t}."))
            .unwrap_or_else(|| " Retry after 24 hours.".to_owned());
        return Failure {
            code: "recurring_limit".into(),
            message: format!(
                "MultiSafepay allows one card recurring payment per 24 hours by default, and this \
                 saved card has been charged within the last 24 hours.{when}"
            ),
            psp_reason_code: error_code.to_string(),
        };
    }
    payment_method_invalid(error_code)
}

fn payment_method_invalid(error_code: i64) -> Failure {
    Failure {
        code: "payment_method_invalid".into(),
        message: "MultiSafepay refused the saved card (unknown, deleted or expired at \
                  MultiSafepay): ask the shopper to pay with a card again and save it anew."
            .into(),
        psp_reason_code: error_code.to_string(),
    }
}

/// The first RFC 3339 time in MSP's text, as RFC 3339 (UTC), when there is one.
fn retry_time(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .map(|w| w.trim_end_matches('.'))
        .find_map(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recurring_limit_says_msps_rule_and_when_a_retry_can_succeed() {
        let f = token_order_failure(
            1024,
            "Transaction declined: recurring payment limit reached (one card recurring payment \
             per token per 24 hours); the next one is possible from 2026-12-08T10:00:00Z",
        );
        assert_eq!(f.code, "recurring_limit");
        assert_eq!(f.psp_reason_code, "1024");
        assert!(
            f.message
                .contains("one card recurring payment per 24 hours"),
            "{}",
            f.message
        );
        assert!(f.message.contains("2026-12-08T10:00:00Z"), "{}", f.message);
        let unknown_when = token_order_failure(1024, "Recurring limit exceeded");
        assert_eq!(unknown_when.code, "recurring_limit");
        assert!(unknown_when.message.contains("after 24 hours"));
    }

    #[test]
    fn any_other_refusal_is_an_invalid_payment_method_with_msps_code() {
        for (code, info) in [
            (1000, "Token not found"),
            (1024, "Transaction declined"),
            (1023, "x"),
        ] {
            let f = token_order_failure(code, info);
            assert_eq!(
                (f.code.as_str(), f.psp_reason_code),
                ("payment_method_invalid", code.to_string())
            );
        }
    }
}
