//! The result page's disputes: each chargeback the cardholder's bank raised, what
//! became of it, and while it needs an answer a form that sends a PDF as evidence
//! (`POST /demo/dispute/evidence`, which calls `POST /v1/disputes/{id}/evidence`).

use askama::Template;
use serde_json::Value;

use super::format_money;

/// One dispute as `GET /v1/disputes?checkout_id=` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoDispute {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: String,
    pub respond_by: Option<String>,
    pub evidence_submitted_at: Option<String>,
}

/// The disputes section's state: the disputes, and why the last evidence was not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoDisputes {
    pub disputes: Vec<DemoDispute>,
    pub error: Option<String>,
}

impl DemoDisputes {
    /// From a `GET /v1/disputes` page; anything odd shows as empty.
    pub fn from_api(page: &Value) -> Self {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let disputes = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| DemoDispute {
                id: text(&d["id"]).unwrap_or_default(),
                amount: d["amount"].as_i64().unwrap_or(0),
                currency: text(&d["currency"]).unwrap_or_default(),
                status: text(&d["status"]).unwrap_or_default(),
                reason: text(&d["reason"]).unwrap_or_default(),
                respond_by: text(&d["respond_by"]),
                evidence_submitted_at: text(&d["evidence_submitted_at"]),
            })
            .collect();
        Self {
            disputes,
            error: None,
        }
    }
}

struct Row<'a> {
    id: &'a str,
    status: &'static str,
    tone: &'static str,
    amount: String,
    reason: &'a str,
    respond_by: Option<String>,
    evidence_at: Option<String>,
    note: &'static str,
    answerable: bool,
}

#[derive(Template)]
#[template(path = "demo_dispute.html")]
struct DisputesTemplate<'a> {
    checkout_id: &'a str,
    alert: Option<&'a str>,
    rows: Vec<Row<'a>>,
}

/// `2026-12-20T10:00:00Z` as `20 Dec 2026, 10:00 UTC`; the text itself when it is not a time.
fn when(stamp: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(stamp)
        .map(|t| t.format("%-d %b %Y, %H:%M UTC").to_string())
        .unwrap_or_else(|_| stamp.to_owned())
}

/// The section's HTML (escaped by the template), empty without disputes.
pub fn disputes_section(checkout_id: &str, state: &DemoDisputes) -> String {
    if state.disputes.is_empty() {
        return String::new();
    }
    let rows = state
        .disputes
        .iter()
        .map(|d| {
            let answered = d.evidence_submitted_at.is_some();
            let (status, tone, note) = match d.status.as_str() {
                "needs_response" if answered => (
                    "Evidence sent",
                    "pending",
                    "The evidence is with MultiSafepay. You can add more until the deadline; refunds wait until the dispute is decided.",
                ),
                "needs_response" => (
                    "Needs your answer",
                    "bad",
                    "The cardholder's bank took this money back. Send evidence before the deadline, or the bank keeps it. Refunds wait until the dispute is decided: refunding now would pay the shopper twice.",
                ),
                "under_review" => (
                    "Under review",
                    "pending",
                    "MultiSafepay and the card scheme are looking at the evidence.",
                ),
                "won" => (
                    "Won",
                    "good",
                    "Decided for the shop: the money is back.",
                ),
                "lost" => (
                    "Lost",
                    "bad",
                    "Decided for the cardholder: the bank keeps the money.",
                ),
                _ => ("Open", "pending", ""),
            };
            Row {
                id: &d.id,
                status,
                tone,
                amount: format_money(d.amount, &d.currency),
                reason: &d.reason,
                respond_by: d.respond_by.as_deref().map(when),
                evidence_at: d.evidence_submitted_at.as_deref().map(when),
                note,
                answerable: d.status == "needs_response",
            }
        })
        .collect();
    DisputesTemplate {
        checkout_id,
        alert: state.error.as_deref(),
        rows,
    }
    .render()
    .unwrap_or_default()
}

/// The gateway's refusal of the evidence, in plain words for the shop's staff.
pub fn evidence_refusal_message(code: Option<&str>) -> &'static str {
    match code {
        Some("dispute_not_open") => {
            "The dispute no longer takes evidence: it is decided, under review, or past its deadline. Nothing was sent."
        }
        Some("invalid_parameter" | "parameter_missing") => {
            "That file was not sent: choose a PDF of at most 4 MiB (its contents must be a PDF, whatever its name)."
        }
        Some("body_too_large") => "That file is too large: at most 4 MiB.",
        _ => "The evidence could not be sent just now; nothing was sent. Try again in a minute.",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_open_dispute_shows_its_deadline_and_an_upload_form_and_a_decided_one_none() {
        let state = DemoDisputes::from_api(&json!({"data": [{
            "id": "dp_1", "amount": 3495, "currency": "EUR", "status": "needs_response",
            "reason": "No cardholder authorization <script>", "respond_by": "2026-12-20T10:00:00Z",
            "evidence_submitted_at": null
        }]}));
        let html = disputes_section("chk_1", &state);
        assert!(html.contains("Needs your answer"), "{html}");
        assert!(html.contains("20 Dec 2026, 10:00 UTC"));
        assert!(html.contains(r#"enctype="multipart/form-data""#));
        assert!(!html.contains("<script>"), "escaped: {html}");
        let mut won = state.clone();
        won.disputes[0].status = "won".into();
        let html = disputes_section("chk_1", &won);
        assert!(html.contains("the money is back"));
        assert!(!html.contains("<form"));
        assert_eq!(disputes_section("chk_1", &DemoDisputes::default()), "");
    }
}
