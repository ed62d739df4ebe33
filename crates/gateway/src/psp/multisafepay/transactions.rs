//! `GET /transactions` (MSPDOCS `paths/listtransactions.yaml`): MSP's account-wide
//! list, newest first, one page at a time by `after` cursors, with its own envelope
//! (`{"success", "data": [...], "pager": {"cursor": {"after"}}}`) and its own error body (403
//! `{"message": "Forbidden"}`). Times are Europe/Amsterdam wall time ([`super::msp_time`]).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::MultiSafepayClient;
use super::msp_time;

/// One page to ask for.
#[derive(Clone, Debug)]
pub struct TransactionQuery {
    pub created_from: DateTime<Utc>,
    pub created_until: DateTime<Utc>,
    /// 1–1000.
    pub limit: u32,
    /// The `after` cursor of the previous page.
    pub after: Option<String>,
}

/// One row, as the sweep needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionRow {
    pub transaction_id: String,
    /// The order the row belongs to (for a refund or a chargeback, the original order).
    pub order_id: String,
    /// `payment`, `refund`, `chargeback`, `reverse_chargeback`, …
    pub kind: String,
    pub status: String,
    pub financial_status: String,
    /// Minor units, as MSP signs it.
    pub amount: Option<i64>,
    pub created: Option<DateTime<Utc>>,
    /// A chargeback's dispute status.
    pub dispute_status: Option<String>,
}

#[derive(Debug)]
pub struct TransactionPage {
    pub rows: Vec<TransactionRow>,
    /// The cursor of the next (older) page; `None` when MSP gave none.
    pub after: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransactionsError {
    /// 403: the key may not list transactions (MSP's `{"message": "Forbidden"}`).
    #[error("MultiSafepay refused the transaction list (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// Connect error, timeout or 5xx.
    #[error("MultiSafepay could not be reached or did not answer: {0}")]
    Unreachable(String),
    #[error("MultiSafepay's transaction list could not be read: {0}")]
    Unexpected(String),
}

impl TransactionsError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Refused { .. } => "refused",
            Self::Unreachable(_) => "unreachable",
            Self::Unexpected(_) => "unexpected",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    data: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    pager: Option<Pager>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Pager {
    #[serde(default)]
    cursor: Option<Cursor>,
}

#[derive(Deserialize)]
struct Cursor {
    #[serde(default)]
    after: Option<serde_json::Value>,
}

/// A row read leniently: every field a string or a number.
#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    transaction_id: Option<serde_json::Value>,
    #[serde(default)]
    order_id: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    financial_status: Option<String>,
    #[serde(default)]
    amount: Option<serde_json::Value>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    dispute: Option<serde_json::Value>,
}

fn text(v: Option<serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn row(raw: &RawValue) -> Option<TransactionRow> {
    let r: Row = serde_json::from_str(raw.get()).ok()?;
    Some(TransactionRow {
        transaction_id: text(r.transaction_id)?,
        order_id: text(r.order_id).unwrap_or_default(),
        kind: r.kind.unwrap_or_default(),
        status: r.status.unwrap_or_default(),
        financial_status: r.financial_status.unwrap_or_default(),
        amount: text(r.amount).and_then(|a| a.parse().ok()),
        created: r.created.as_deref().and_then(msp_time::parse),
        dispute_status: r
            .dispute
            .as_ref()
            .and_then(|d| d.get("status"))
            .and_then(|s| s.as_str())
            .map(str::to_owned),
    })
}

/// Reads one page's body: its rows (an unreadable one is logged and skipped) and its cursor.
pub fn read_page(status: u16, body: &[u8]) -> Result<TransactionPage, TransactionsError> {
    if status >= 500 {
        return Err(TransactionsError::Unreachable(format!("HTTP {status}")));
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        TransactionsError::Unexpected(format!(
            "HTTP {status} with a body that is not the list: {e}"
        ))
    })?;
    if status == 401 || status == 403 || envelope.success == Some(false) {
        return Err(TransactionsError::Refused {
            status,
            message: envelope.message.unwrap_or_default(),
        });
    }
    if !(200..300).contains(&status) {
        return Err(TransactionsError::Unexpected(format!("HTTP {status}")));
    }
    let raw = envelope.data.unwrap_or_default();
    let mut rows = Vec::with_capacity(raw.len());
    for (index, r) in raw.iter().enumerate() {
        match row(r) {
            Some(r) => rows.push(r),
            None => tracing::warn!(
                row = index,
                "skipped an unreadable row of MultiSafepay's transaction list"
            ),
        }
    }
    let after = envelope
        .pager
        .and_then(|p| p.cursor)
        .and_then(|c| text(c.after));
    Ok(TransactionPage { rows, after })
}

impl MultiSafepayClient {
    /// `GET /transactions?created_from&created_until&limit[&after]`: one page, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_transactions(
        &self,
        query: &TransactionQuery,
    ) -> Result<TransactionPage, TransactionsError> {
        let mut url = self.url(&["transactions"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs
                .append_pair("created_from", &msp_time::format(query.created_from))
                .append_pair("created_until", &msp_time::format(query.created_until))
                .append_pair("limit", &query.limit.to_string());
            if let Some(after) = &query.after {
                pairs.append_pair("after", after);
            }
        }
        let started = std::time::Instant::now();
        let result = async {
            let response = self
                .http()
                .get(url)
                .send()
                .await
                .map_err(|e| TransactionsError::Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let body = response
                .bytes()
                .await
                .map_err(|e| TransactionsError::Unreachable(e.to_string()))?;
            read_page(status, &body)
        }
        .await;
        metrics::histogram!(crate::metrics::PSP_DURATION, "operation" => "list_transactions")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(
            crate::metrics::PSP_REQUESTS,
            "operation" => "list_transactions",
            "outcome" => result.as_ref().map_or_else(|e| e.label(), |_| "ok"),
        )
        .increment(1);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reads_its_rows_and_cursor_and_errors_keep_their_kind() {
        let body = br#"{"success": true, "data": [
            {"transaction_id": 7, "order_id": "chk_1", "type": "refund", "status": "completed",
             "financial_status": "completed", "amount": -100, "created": "2026-07-01T12:00:00"},
            {"transaction_id": "8", "order_id": "chk_2", "type": "chargeback", "status": "completed",
             "dispute": {"status": "new"}, "created": "01-07-2026 11:00:00"},
            "not a row"
        ], "pager": {"cursor": {"after": "abc"}}}"#;
        let page = read_page(200, body).unwrap();
        assert_eq!(page.after.as_deref(), Some("abc"));
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.rows[0].transaction_id, "7");
        assert_eq!(page.rows[0].amount, Some(-100));
        assert_eq!(
            page.rows[0].created.unwrap().to_rfc3339(),
            "2026-07-01T10:00:00+00:00"
        );
        assert_eq!(page.rows[1].dispute_status.as_deref(), Some("new"));
        assert_eq!(
            page.rows[1].created.unwrap().to_rfc3339(),
            "2026-07-01T09:00:00+00:00"
        );
        assert!(matches!(
            read_page(403, br#"{"message": "Forbidden"}"#),
            Err(TransactionsError::Refused { status: 403, .. })
        ));
        assert!(matches!(
            read_page(503, b"<html>"),
            Err(TransactionsError::Unreachable(_))
        ));
        assert!(matches!(
            read_page(200, b"nope"),
            Err(TransactionsError::Unexpected(_))
        ));
    }
}
