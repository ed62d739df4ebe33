//! The demo result page: where the shop's return URL lands, with the checkout's status as the
//! gateway reports it and the checkout's events.

use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use super::{DEMO_CURRENCY, format_money};

/// One row of the checkout's history (`GET /v1/checkouts/{id}/events`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DemoEvent {
    pub at: String,
    pub from: String,
    pub to: String,
    pub source: String,
    #[serde(default)]
    pub psp_status: String,
}

/// What the result page needs: the checkout as `GET /v1/checkouts/{id}` returned it, reduced to
/// plain fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoResultPage {
    pub checkout_id: String,
    /// A design §3 status: `succeeded`, `failed`, `processing`, …
    pub status: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    /// `failure.message` when the status is `failed`.
    pub failure_message: Option<String>,
    /// `failure.code` when the status is `failed`.
    pub failure_code: Option<String>,
    pub events: Vec<DemoEvent>,
    /// Where "refresh" points: the result page itself, asking the gateway to sync.
    pub refresh_url: String,
}

impl DemoResultPage {
    /// Builds the page's context from the gateway's own answers: `GET /v1/checkouts/{id}` and
    /// `GET /v1/checkouts/{id}/events` (design §3). Missing fields show as empty rather than
    /// failing the page: it is a demo of whatever the gateway said.
    pub fn from_api(checkout: &Value, events: &Value, refresh_url: &str) -> Self {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let failure = &checkout["failure"];
        DemoResultPage {
            checkout_id: text(&checkout["id"]).unwrap_or_default(),
            status: text(&checkout["status"]).unwrap_or_default(),
            amount: checkout["amount"].as_i64().unwrap_or(0),
            currency: text(&checkout["currency"]).unwrap_or_else(|| DEMO_CURRENCY.to_owned()),
            card_brand: text(&checkout["card"]["brand"]),
            card_last4: text(&checkout["card"]["last4"]),
            failure_message: text(&failure["message"]),
            failure_code: text(&failure["code"]),
            events: events
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|e| DemoEvent {
                            at: text(&e["at"]).unwrap_or_default(),
                            from: text(&e["from"]).unwrap_or_default(),
                            to: text(&e["to"]).unwrap_or_default(),
                            source: text(&e["source"]).unwrap_or_default(),
                            psp_status: text(&e["psp_status"]).unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            refresh_url: refresh_url.to_owned(),
        }
    }
}

/// Renders the demo result page.
pub fn result_page(ctx: &DemoResultPage) -> String {
    let (tone, headline, note) = describe_status(&ctx.status);
    let card = match (&ctx.card_brand, &ctx.card_last4) {
        (Some(brand), Some(last4)) => Some(format!("{} •••• {last4}", brand_label(brand))),
        (None, Some(last4)) => Some(format!("•••• {last4}")),
        _ => None,
    };
    let events: Vec<EventRow> = ctx
        .events
        .iter()
        .map(|e| EventRow {
            at: &e.at,
            from: &e.from,
            to: &e.to,
            to_tone: describe_status(&e.to).0,
            source: &e.source,
            psp_status: &e.psp_status,
        })
        .collect();
    ResultTemplate {
        checkout_id: &ctx.checkout_id,
        status: &ctx.status,
        tone,
        headline,
        note,
        pending: tone == "wait",
        amount: format_money(ctx.amount, &ctx.currency),
        card,
        failure_message: ctx.failure_message.as_deref(),
        failure_code: ctx.failure_code.as_deref(),
        events,
        refresh_url: &ctx.refresh_url,
    }
    .render()
    .unwrap_or_else(|e| format!("result page could not be rendered: {e}"))
}

/// (CSS tone, headline, explanation) for a design §3 status.
fn describe_status(status: &str) -> (&'static str, &'static str, &'static str) {
    match status {
        "succeeded" => (
            "ok",
            "Payment succeeded",
            "The card was charged; the shop can ship the order.",
        ),
        "failed" => (
            "bad",
            "Payment failed",
            "Nothing was charged. Try again with another card.",
        ),
        "processing" | "requires_action" | "created" => (
            "wait",
            "Payment processing",
            "The outcome is not known yet. This page refreshes itself and will show the final \
             status as soon as MultiSafepay reports it.",
        ),
        "canceled" => ("neutral", "Payment canceled", "Nothing was charged."),
        "expired" => (
            "neutral",
            "Payment expired",
            "The payment was not completed in time; nothing was charged.",
        ),
        "partially_refunded" => (
            "neutral",
            "Partially refunded",
            "Part of the payment was refunded.",
        ),
        "refunded" => ("neutral", "Refunded", "The payment was refunded."),
        "charged_back" => (
            "bad",
            "Charged back",
            "The cardholder disputed the payment.",
        ),
        _ => (
            "neutral",
            "Payment status",
            "The gateway reported this status.",
        ),
    }
}

fn brand_label(brand: &str) -> String {
    match brand {
        "visa" => "Visa".to_owned(),
        "mastercard" => "Mastercard".to_owned(),
        "amex" => "American Express".to_owned(),
        "maestro" => "Maestro".to_owned(),
        other => other.to_owned(),
    }
}

struct EventRow<'a> {
    at: &'a str,
    from: &'a str,
    to: &'a str,
    to_tone: &'static str,
    source: &'a str,
    psp_status: &'a str,
}

#[derive(Template)]
#[template(path = "demo_result.html")]
struct ResultTemplate<'a> {
    checkout_id: &'a str,
    status: &'a str,
    tone: &'static str,
    headline: &'static str,
    note: &'static str,
    pending: bool,
    amount: String,
    card: Option<String>,
    failure_message: Option<&'a str>,
    failure_code: Option<&'a str>,
    events: Vec<EventRow<'a>>,
    refresh_url: &'a str,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(status: &str) -> DemoResultPage {
        DemoResultPage {
            checkout_id: "chk_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b".into(),
            status: status.into(),
            amount: 4745,
            currency: "EUR".into(),
            card_brand: Some("visa".into()),
            card_last4: Some("1111".into()),
            failure_message: None,
            failure_code: None,
            events: vec![DemoEvent {
                at: "2026-11-24T10:00:03Z".into(),
                from: "requires_action".into(),
                to: status.into(),
                source: "browser_return".into(),
                psp_status: "completed".into(),
            }],
            refresh_url: "/demo/result?checkout_id=chk_1&refresh=true".into(),
        }
    }

    #[test]
    fn result_page_shows_status_amount_card_events_and_links() {
        let page = result_page(&result("succeeded"));
        assert!(page.contains("Payment succeeded"));
        assert!(page.contains("€47.45"));
        assert!(page.contains("Visa •••• 1111"));
        assert!(page.contains("browser_return"));
        assert!(page.contains("2026-11-24T10:00:03Z"));
        assert!(page.contains("href=\"/demo\""));
        assert!(!page.contains("http-equiv=\"refresh\""), "final: no reload");
    }

    #[test]
    fn failed_result_shows_the_failure_and_pending_result_refreshes() {
        let mut failed = result("failed");
        failed.failure_message = Some("The card has insufficient funds.".into());
        failed.failure_code = Some("insufficient_funds".into());
        let page = result_page(&failed);
        assert!(page.contains("Payment failed"));
        assert!(page.contains("The card has insufficient funds."));
        assert!(page.contains("insufficient_funds"));

        let page = result_page(&result("processing"));
        assert!(page.contains("Payment processing"));
        assert!(page.contains("will show the final status"));
        assert!(page.contains(
            "http-equiv=\"refresh\" content=\"5;url=/demo/result?checkout_id=chk_1&#38;refresh=true\""
        ));
        assert!(page.contains("Refresh status"));
    }

    #[test]
    fn hostile_values_on_the_result_page_are_escaped() {
        let mut ctx = result("failed");
        ctx.failure_message = Some("<img src=x onerror=alert(1)>".into());
        ctx.events[0].psp_status = "<script>x()</script>".into();
        ctx.checkout_id = "\"><b>id".into();
        let page = result_page(&ctx);
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>id"), "{page}");
    }

    #[test]
    fn result_context_is_read_from_the_gateways_json() {
        let checkout = json!({
            "id": "chk_1", "status": "failed", "amount": 4745, "currency": "EUR",
            "card": {"brand": "visa", "last4": "8884", "exp_month": 12, "exp_year": 2030},
            "failure": {"code": "insufficient_funds", "message": "Insufficient funds.", "psp_reason_code": "4002"}
        });
        let events = json!([
            {"at": "2026-11-24T10:00:00Z", "from": "created", "to": "failed", "source": "create", "psp_status": "declined"}
        ]);
        let ctx = DemoResultPage::from_api(&checkout, &events, "/demo/result?checkout_id=chk_1");
        assert_eq!(ctx.status, "failed");
        assert_eq!(ctx.amount, 4745);
        assert_eq!(ctx.card_last4.as_deref(), Some("8884"));
        assert_eq!(ctx.failure_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(ctx.events.len(), 1);
        assert_eq!(ctx.events[0].psp_status, "declined");

        let bare = DemoResultPage::from_api(
            &json!({"id": "chk_2", "status": "succeeded", "failure": null}),
            &json!([]),
            "/r",
        );
        assert_eq!(bare.failure_message, None);
        assert_eq!(bare.card_brand, None);
        assert!(bare.events.is_empty());
    }
}
