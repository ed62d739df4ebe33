//! The demo result page: where the shop's return URL lands, with the checkout's status as the
//! gateway reports it, its refunds (and the form to make one), and the checkout's events.

use std::time::Duration;

use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::capture::describe_deadline;
use super::refund::{DemoRefund, describe_refund, format_date};
use super::{DEMO_CURRENCY, format_major_units, format_money};

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
    /// A checkout status: `succeeded`, `failed`, `processing`, …
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
    /// What completed refunds gave back (`amount_refunded`), minor units.
    pub amount_refunded: i64,
    /// What was captured of a pay-later authorisation (`amount_captured`), minor units.
    pub amount_captured: Option<i64>,
    /// Until when an authorisation can be captured (`capture_before`, RFC 3339).
    pub capture_before: Option<String>,
    /// The time now, to say how long is left until `capture_before`.
    pub now: Option<DateTime<Utc>>,
    /// `GET /v1/checkouts/{id}/refunds`, oldest first.
    pub refunds: Vec<DemoRefund>,
    pub events: Vec<DemoEvent>,
    /// Where "refresh" points: the result page itself, asking the gateway to sync.
    pub refresh_url: String,
    /// The refund form's state: what to say above it, what was typed.
    pub refund_form: RefundFormState,
    /// How long the simulator keeps a refund pending, when the page should say so.
    pub refund_delay: Option<Duration>,
    /// The capture and cancel forms' state.
    pub payment_form: PaymentFormState,
    /// The shopper came back through the shop's `cancel_url`: MSP sends them there when the
    /// payment did not get through 3-D Secure: they pressed Cancel on the bank's page, the
    /// bank rejected it, or the card was declined at that step. The gateway's answer is the
    /// same failure for all three, so the page cannot tell them apart.
    pub via_cancel_url: bool,
    /// `GET /v1/disputes?checkout_id=`, and the evidence form's state.
    pub disputes: super::DemoDisputes,
}

/// The capture form and the cancel button as the page shows them: blank, or after the gateway
/// (or the demo) refused what was sent, with the reason and the amount as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFormState {
    /// Why the last capture or cancel did not happen, in plain words: shown with the forms
    /// (at the top of the page when they are gone).
    pub error: Option<String>,
    /// The capture amount field's value, as the person typed it.
    pub amount: String,
    /// The capture form's `Idempotency-Key` for the gateway.
    pub capture_key: String,
    /// The cancel button's `Idempotency-Key` for the gateway.
    pub cancel_key: String,
}

/// The refund form as the page shows it: blank, or after the gateway (or the demo) refused
/// what was sent, with the reason and the amount as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundFormState {
    /// Why the last refund was not made, in plain words: shown above the form (above the
    /// refunds when the form is gone, everything being refunded).
    pub error: Option<String>,
    /// Why the last refund cancel did not happen: shown above the refunds.
    pub cancel_error: Option<String>,
    /// The amount field's value, as the person typed it.
    pub amount: String,
    /// The form's `Idempotency-Key` for the gateway (see `DemoRefundForm`).
    pub idempotency_key: String,
}

impl DemoResultPage {
    /// Builds the page's context from the gateway's own answers: `GET /v1/checkouts/{id}`,
    /// `GET /v1/checkouts/{id}/events` and `GET /v1/checkouts/{id}/refunds`
    /// (each a page with every entry: the caller follows `has_more`). Missing fields show as
    /// empty rather than failing the page: it is a demo of
    /// whatever the gateway said. The refund form starts blank.
    pub fn from_api(checkout: &Value, events: &Value, refunds: &Value, refresh_url: &str) -> Self {
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
            amount_refunded: checkout["amount_refunded"].as_i64().unwrap_or(0),
            amount_captured: checkout["amount_captured"].as_i64(),
            capture_before: text(&checkout["capture_before"]),
            now: None,
            refunds: DemoRefund::list_from_api(refunds),
            events: events["data"]
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
            refund_form: RefundFormState::default(),
            refund_delay: None,
            payment_form: PaymentFormState::default(),
            via_cancel_url: false,
            disputes: Default::default(),
        }
    }

    /// Whether the payment stopped at 3-D Secure: back through the cancel URL, and the payment
    /// failed at that step (not, say, for lack of funds after it).
    pub fn stopped_at_3ds(&self) -> bool {
        self.via_cancel_url
            && self.status == "failed"
            && self.failure_code.as_deref() == Some("authentication_failed")
    }

    /// What the payment charged: what was captured of a pay-later authorisation, else the
    /// amount.
    pub fn amount_charged(&self) -> i64 {
        self.amount_captured.unwrap_or(self.amount)
    }

    /// Whether the page offers a capture: an authorisation waiting for it.
    pub fn capturable(&self) -> bool {
        self.status == "requires_capture"
    }

    /// Whether the page offers "Cancel payment": the gateway cancels a payment still under way
    /// and an authorisation not captured yet.
    pub fn cancelable(&self) -> bool {
        matches!(
            self.status.as_str(),
            "requires_action" | "processing" | "requires_capture"
        )
    }

    /// What can still be refunded: the amount charged minus every refund pending or paid out
    /// (what the gateway checks a new refund against).
    pub fn left_to_refund(&self) -> i64 {
        let held: i64 = self
            .refunds
            .iter()
            .filter(|r| r.holds_amount())
            .map(|r| r.amount)
            .sum();
        (self.amount_charged() - held).max(0)
    }

    /// Whether the page offers a refund: the gateway refunds succeeded and partially refunded
    /// checkouts, while something is left.
    pub fn refundable(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "partially_refunded")
            && self.left_to_refund() > 0
    }

    /// The status of refund `id`, if the checkout lists it.
    pub fn refund_status(&self, id: &str) -> Option<&str> {
        self.refunds
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.status.as_str())
    }
}

/// Renders the demo result page.
pub fn result_page(ctx: &DemoResultPage) -> String {
    let (tone, headline, note) = if ctx.stopped_at_3ds() {
        STOPPED_AT_3DS
    } else {
        describe_status(&ctx.status)
    };
    let reason = (ctx.status == "failed" && !ctx.stopped_at_3ds())
        .then(|| failure_reason(ctx.failure_code.as_deref()));
    let try_again = matches!(ctx.status.as_str(), "failed" | "expired" | "canceled");
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
            day: format_day(&e.at),
            time: format_time(&e.at),
            from: &e.from,
            to: &e.to,
            to_tone: describe_status(&e.to).0,
            source: &e.source,
            psp_status: &e.psp_status,
        })
        .collect();
    let refunds: Vec<RefundRow> = ctx
        .refunds
        .iter()
        .map(|r| {
            let (tone, label, note) = describe_refund(&r.status);
            RefundRow {
                id: &r.id,
                date: format_date(&r.created_at),
                amount: format_money(r.amount, &ctx.currency),
                tone,
                label,
                note,
                failure: r.failure_message.as_deref(),
                cancelable: r.status == "pending",
            }
        })
        .collect();
    let pending: i64 = ctx
        .refunds
        .iter()
        .filter(|r| r.status == "pending")
        .map(|r| r.amount)
        .sum();
    let left = ctx.left_to_refund();
    let show_refunds = !ctx.refunds.is_empty()
        || matches!(
            ctx.status.as_str(),
            "succeeded" | "partially_refunded" | "refunded"
        );
    ResultTemplate {
        checkout_id: &ctx.checkout_id,
        status: &ctx.status,
        tone,
        headline,
        note,
        reloads: tone == "wait" && !ctx.capturable(),
        amount: format_money(ctx.amount, &ctx.currency),
        charged: format_money(ctx.amount_charged(), &ctx.currency),
        card,
        reason,
        try_again,
        paid_with: matches!(ctx.status.as_str(), "succeeded" | "requires_capture"),
        events,
        refresh_url: &ctx.refresh_url,
        show_refunds,
        refunds,
        refunded: format_money(ctx.amount_refunded, &ctx.currency),
        pending: (pending > 0).then(|| format_money(pending, &ctx.currency)),
        left: format_money(left, &ctx.currency),
        left_major: format_major_units(left.unsigned_abs(), &ctx.currency),
        currency: &ctx.currency,
        refundable: ctx.refundable(),
        form_alert: ctx
            .refund_form
            .error
            .as_deref()
            .filter(|_| ctx.refundable()),
        refunds_alert: ctx.refund_form.cancel_error.as_deref().or(ctx
            .refund_form
            .error
            .as_deref()
            .filter(|_| !ctx.refundable())),
        refund_amount: &ctx.refund_form.amount,
        refund_key: &ctx.refund_form.idempotency_key,
        refund_delay: ctx.refund_delay.map(describe_delay),
        captured: ctx
            .amount_captured
            .map(|captured| format_money(captured, &ctx.currency)),
        capture_before: ctx
            .capture_before
            .as_deref()
            .map(|before| describe_deadline(before, ctx.now)),
        capturable: ctx.capturable(),
        cancelable: ctx.cancelable(),
        amount_major: format_major_units(ctx.amount.unsigned_abs(), &ctx.currency),
        payment_alert: ctx
            .payment_form
            .error
            .as_deref()
            .filter(|_| ctx.cancelable()),
        top_alert: ctx
            .payment_form
            .error
            .as_deref()
            .filter(|_| !ctx.cancelable()),
        capture_amount: &ctx.payment_form.amount,
        capture_key: &ctx.payment_form.capture_key,
        cancel_key: &ctx.payment_form.cancel_key,
        disputes: super::disputes_section(&ctx.checkout_id, &ctx.disputes),
    }
    .render()
    .unwrap_or_else(|e| format!("result page could not be rendered: {e}"))
}

/// The headline for a payment that stopped at 3-D Secure. Not "cancelled": the shopper may
/// have pressed Cancel, but the bank may as well have rejected or declined it there, and the
/// page cannot tell which (see `via_cancel_url`); what holds for all three is said.
const STOPPED_AT_3DS: (&str, &str, &str) = (
    "neutral",
    "Payment not completed",
    "The payment stopped at your bank's verification step, so nothing was charged. You can try \
     again with the same card or use another one.",
);

/// (CSS tone, headline, explanation) for a checkout status, in the shopper's words: what
/// happened to their money and what they can do.
fn describe_status(status: &str) -> (&'static str, &'static str, &'static str) {
    match status {
        "succeeded" => (
            "ok",
            "Payment succeeded",
            "Thank you! Your payment was received and your order is confirmed.",
        ),
        "failed" => ("bad", "Payment failed", "Nothing was charged."),
        "processing" | "requires_action" | "created" => (
            "wait",
            "Payment processing",
            "We are waiting for your bank to confirm the payment. This page updates itself and \
             will show the result in a moment; there is no need to pay again.",
        ),
        "requires_capture" => (
            "wait",
            "Payment authorised",
            "The amount is reserved on your card. You are charged when your order ships.",
        ),
        "canceled" => (
            "neutral",
            "Payment cancelled",
            "The payment was cancelled and nothing was charged.",
        ),
        "expired" => (
            "neutral",
            "Payment expired",
            "The payment was not completed in time, so nothing was charged. You can start again.",
        ),
        "partially_refunded" => (
            "neutral",
            "Partially refunded",
            "Part of your payment was refunded to your card.",
        ),
        "refunded" => (
            "neutral",
            "Refunded",
            "Your payment was refunded to your card.",
        ),
        "charged_back" => (
            "bad",
            "Charged back",
            "The payment was disputed with the card's bank and returned to the card.",
        ),
        _ => (
            "neutral",
            "Payment status",
            "We could not tell how this payment stands. Refresh the page in a moment.",
        ),
    }
}

/// Why a payment failed and what the shopper can do, from the gateway's `failure.code`;
/// the gateway's `failure.message` is written for the merchant and not shown.
fn failure_reason(code: Option<&str>) -> &'static str {
    match code {
        Some("card_declined") => {
            "Your bank declined the card. Try another card, or contact your bank."
        }
        Some("insufficient_funds") => {
            "Your bank declined the card: there is not enough money available. Try another card."
        }
        Some("expired_card") => "The card has expired. Try another card.",
        Some("authentication_failed") => {
            "Your bank could not verify the payment. Try again, or use another card."
        }
        Some("authentication_required") => {
            "Your bank needs to verify this payment. Please start again to confirm it with your bank."
        }
        Some("recurring_limit") => {
            "This saved card was already charged in the last 24 hours, and it can be charged once a day. Try again tomorrow, or pay with the card form."
        }
        Some("payment_method_invalid") => {
            "This saved card can no longer be used. Please pay with the card form; you can save the card again there."
        }
        _ => "The payment could not be completed. Try again in a moment, or use another card.",
    }
}

/// `24 Nov 2026` for an RFC 3339 time (as given when it is not one).
fn format_day(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|at| at.with_timezone(&Utc).format("%-d %b %Y").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// `10:00:03 UTC` for an RFC 3339 time (nothing when it is not one).
fn format_time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|at| at.with_timezone(&Utc).format("%H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// `20 seconds`, `1 minute`, `3 minutes`.
fn describe_delay(delay: Duration) -> String {
    let s = delay.as_secs();
    match s {
        1 => "1 second".to_owned(),
        60 => "1 minute".to_owned(),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
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
    /// RFC 3339, for the `<time>` element.
    at: &'a str,
    /// `24 Nov 2026` and `10:00:03 UTC`: on two short lines, so that the table fits a phone.
    day: String,
    time: String,
    from: &'a str,
    to: &'a str,
    to_tone: &'static str,
    source: &'a str,
    psp_status: &'a str,
}

struct RefundRow<'a> {
    id: &'a str,
    date: String,
    amount: String,
    tone: &'static str,
    label: &'static str,
    note: &'static str,
    failure: Option<&'a str>,
    cancelable: bool,
}

#[derive(Template)]
#[template(path = "demo_result.html")]
struct ResultTemplate<'a> {
    checkout_id: &'a str,
    status: &'a str,
    tone: &'static str,
    headline: &'static str,
    note: &'static str,
    /// The payment's outcome is not known yet: the page reloads itself.
    reloads: bool,
    amount: String,
    /// What the shopper paid: the captured part of a pay-later payment, else the amount.
    charged: String,
    card: Option<String>,
    /// Why the payment failed and what to do, in the shopper's words.
    reason: Option<&'static str>,
    /// The page offers to start a new checkout at the top: the payment did not go through.
    try_again: bool,
    /// The status block says what was paid (or reserved) and with which card.
    paid_with: bool,
    events: Vec<EventRow<'a>>,
    refresh_url: &'a str,
    show_refunds: bool,
    refunds: Vec<RefundRow<'a>>,
    /// `amount_refunded`, formatted.
    refunded: String,
    /// The sum of pending refunds, when there are any.
    pending: Option<String>,
    left: String,
    /// `left` as the amount field takes it (`29.95`), for its placeholder.
    left_major: String,
    currency: &'a str,
    refundable: bool,
    /// Shown above the refund form.
    form_alert: Option<&'a str>,
    /// Shown above the refunds.
    refunds_alert: Option<&'a str>,
    refund_amount: &'a str,
    refund_key: &'a str,
    refund_delay: Option<String>,
    /// `amount_captured`, formatted, once a pay-later payment was captured.
    captured: Option<String>,
    /// `capture_before`, in words.
    capture_before: Option<String>,
    capturable: bool,
    cancelable: bool,
    /// The amount as the capture field takes it, for its placeholder.
    amount_major: String,
    /// Shown with the capture and cancel forms.
    payment_alert: Option<&'a str>,
    /// Shown at the top of the page, when those forms are gone.
    top_alert: Option<&'a str>,
    capture_amount: &'a str,
    capture_key: &'a str,
    cancel_key: &'a str,
    /// The disputes section, rendered (and escaped) by its own template.
    disputes: String,
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
            amount_refunded: 0,
            amount_captured: None,
            capture_before: None,
            now: None,
            refunds: Vec::new(),
            refund_form: RefundFormState {
                idempotency_key: "k-1".into(),
                ..RefundFormState::default()
            },
            refund_delay: Some(Duration::from_secs(20)),
            payment_form: PaymentFormState {
                capture_key: "k-2".into(),
                cancel_key: "k-3".into(),
                ..PaymentFormState::default()
            },
            via_cancel_url: false,
            disputes: Default::default(),
        }
    }

    fn refund(id: &str, amount: i64, status: &str) -> DemoRefund {
        DemoRefund {
            id: id.into(),
            amount,
            status: status.into(),
            created_at: "2026-11-24T10:05:00Z".into(),
            failure_message: None,
        }
    }

    /// The `<form …>` posting to `action` (and a fragment to scroll to), up to its `</form>`.
    fn form<'p>(page: &'p str, action: &str) -> Option<&'p str> {
        let start = page.find(&format!("<form method=\"post\" action=\"{action}#"))?;
        let end = page[start..].find("</form>")? + start;
        Some(&page[start..end])
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
    fn failed_result_says_why_in_the_shoppers_words_and_pending_result_refreshes() {
        let mut failed = result("failed");
        failed.failure_message =
            Some("The card has insufficient funds. Ask the shopper to use another card.".into());
        failed.failure_code = Some("insufficient_funds".into());
        let page = result_page(&failed);
        assert!(page.contains("Payment failed"));
        assert!(
            page.contains("not enough money available. Try another card."),
            "{page}"
        );
        assert!(!page.contains("Ask the shopper"), "{page}");
        assert!(!page.contains("(insufficient_funds)"), "{page}");
        assert!(page.contains("href=\"/demo\">Try again"), "{page}");

        failed.failure_code = Some("card_declined".into());
        let page = result_page(&failed);
        assert!(
            page.contains("Your bank declined the card. Try another card"),
            "{page}"
        );

        let page = result_page(&result("processing"));
        assert!(page.contains("Payment processing"));
        assert!(page.contains("will show the result in a moment"));
        assert!(!page.contains("MultiSafepay reports"));
        assert!(page.contains(
            "http-equiv=\"refresh\" content=\"5;url=/demo/result?checkout_id=chk_1&#38;refresh=true\""
        ));
        assert!(page.contains("Refresh status"));
    }

    #[test]
    fn a_payment_stopped_at_3ds_is_not_completed_never_cancelled() {
        // Cancel, Reject and a card declined at the bank's page all come back like this.
        let mut ctx = result("failed");
        ctx.failure_code = Some("authentication_failed".into());
        ctx.via_cancel_url = true;
        let page = result_page(&ctx);
        assert!(page.contains("Payment not completed"), "{page}");
        assert!(page.contains("status neutral"), "{page}");
        assert!(!page.contains("Payment failed"), "{page}");
        assert!(!page.contains("cancelled"), "{page}");
        assert!(page.contains("nothing was charged"), "{page}");

        // Through the cancel URL for another reason (funds, after 3-D Secure passed): failed.
        ctx.failure_code = Some("insufficient_funds".into());
        let page = result_page(&ctx);
        assert!(page.contains("Payment failed"), "{page}");
        assert!(!page.contains("Payment not completed"), "{page}");
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
        let events = json!({"data": [
            {"id": "hst_1_1", "at": "2026-11-24T10:00:00Z", "from": "created", "to": "failed", "source": "create", "psp_status": "declined"}
        ], "has_more": false});
        let ctx = DemoResultPage::from_api(
            &checkout,
            &events,
            &json!({"data": [], "has_more": false}),
            "/demo/result?checkout_id=chk_1",
        );
        assert_eq!(ctx.status, "failed");
        assert_eq!(ctx.amount, 4745);
        assert_eq!(ctx.card_last4.as_deref(), Some("8884"));
        assert_eq!(ctx.failure_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(ctx.events.len(), 1);
        assert_eq!(ctx.events[0].psp_status, "declined");

        let bare = DemoResultPage::from_api(
            &json!({"id": "chk_2", "status": "succeeded", "failure": null}),
            &json!({"data": [], "has_more": false}),
            &json!({"error": {"type": "api_error"}}),
            "/r",
        );
        assert_eq!(bare.failure_message, None);
        assert_eq!(bare.card_brand, None);
        assert!(bare.events.is_empty());
        assert!(bare.refunds.is_empty());
        assert_eq!(bare.amount_refunded, 0);
    }

    #[test]
    fn refunds_and_amount_refunded_are_read_from_the_gateways_json() {
        let checkout = json!({"id": "chk_1", "status": "partially_refunded", "amount": 4745,
            "currency": "EUR", "amount_refunded": 500});
        let refunds = json!({"data": [
            {"id": "re_1", "amount": 500, "status": "succeeded", "created_at": "2026-11-24T10:05:00Z"},
            {"id": "re_2", "amount": 1000, "status": "pending", "created_at": "2026-11-24T10:06:00Z"},
            {"id": "re_3", "amount": 2000, "status": "canceled", "created_at": "2026-11-24T10:07:00Z"}
        ], "has_more": false});
        let ctx = DemoResultPage::from_api(
            &checkout,
            &json!({"data": [], "has_more": false}),
            &refunds,
            "/r",
        );
        assert_eq!(ctx.amount_refunded, 500);
        assert_eq!(ctx.refunds.len(), 3);
        assert_eq!(
            ctx.left_to_refund(),
            4745 - 500 - 1000,
            "canceled ones free their amount"
        );
        assert!(ctx.refundable());
        assert_eq!(ctx.refund_status("re_2"), Some("pending"));
        assert_eq!(ctx.refund_status("re_9"), None);
    }

    #[test]
    fn a_paid_checkout_offers_a_refund_of_everything_left() {
        let page = result_page(&result("succeeded"));
        assert!(page.contains("id=\"refunds\""), "{page}");
        assert!(page.contains("Refunded</dt><dd>€0.00"), "{page}");
        let refund = form(&page, "/demo/refund").expect("a refund form");
        assert!(
            refund.contains("name=\"checkout_id\" value=\"chk_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b\"")
        );
        assert!(refund.contains("name=\"idempotency_key\" value=\"k-1\""));
        assert!(
            refund.contains("name=\"amount\" value=\"\" placeholder=\"47.45\""),
            "{refund}"
        );
        assert!(refund.contains("everything that is left (€47.45)"));
        assert!(page.contains("paid out 20 seconds after it is made"));
        assert!(
            form(&page, "/demo/refund/cancel").is_none(),
            "nothing to cancel"
        );
    }

    #[test]
    fn refunds_are_listed_in_words_with_cancel_for_the_pending_one() {
        let mut ctx = result("partially_refunded");
        ctx.amount_refunded = 500;
        ctx.refunds = vec![
            refund("re_paid", 500, "succeeded"),
            refund("re_wait", 1000, "pending"),
            DemoRefund {
                failure_message: Some("MultiSafepay refused the refund.".into()),
                ..refund("re_fail", 700, "failed")
            },
        ];
        let page = result_page(&ctx);
        assert!(page.contains("Refunded</dt><dd>€5.00"), "{page}");
        assert!(page.contains("Being refunded</dt><dd>€10.00"), "{page}");
        assert!(page.contains("Left to refund</dt><dd>€32.45"), "{page}");
        for words in [
            "Refunded",
            "Pending",
            "Failed",
            "MultiSafepay refused the refund.",
        ] {
            assert!(page.contains(words), "{words}: {page}");
        }
        assert!(page.contains("24 Nov 2026, 10:05 UTC"));
        let cancel = form(&page, "/demo/refund/cancel").expect("a cancel form");
        assert!(
            cancel.contains("name=\"refund_id\" value=\"re_wait\""),
            "{cancel}"
        );
        assert!(cancel.contains("Cancel refund"));
        assert_eq!(page.matches("action=\"/demo/refund/cancel#").count(), 1);
    }

    #[test]
    fn nothing_left_or_not_paid_means_no_refund_form() {
        let mut all = result("succeeded");
        all.refunds = vec![refund("re_all", 4745, "pending")];
        let page = result_page(&all);
        assert!(form(&page, "/demo/refund").is_none());
        assert!(page.contains("Left to refund</dt><dd>€0.00"));

        let page = result_page(&result("refunded"));
        assert!(form(&page, "/demo/refund").is_none());
        assert!(
            page.contains("id=\"refunds\""),
            "a refunded checkout shows its refunds"
        );

        let page = result_page(&result("failed"));
        assert!(
            !page.contains("id=\"refunds\""),
            "nothing was paid: no refunds section"
        );
    }

    #[test]
    fn a_refused_refund_shows_why_and_keeps_what_was_typed_escaped() {
        let mut ctx = result("succeeded");
        ctx.refund_form.error = Some("That is more than is left <b>to refund</b>.".into());
        ctx.refund_form.amount = "\"><script>x()</script>".into();
        let page = result_page(&ctx);
        assert!(
            page.contains("role=\"alert\">That is more than is left &#60;b&#62;"),
            "{page}"
        );
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>to"), "{page}");
        let refund = form(&page, "/demo/refund").expect("the form is still there");
        assert!(
            refund.contains("value=\"&#34;&#62;&#60;script&#62;"),
            "{refund}"
        );
        let alert = page.find("role=\"alert\"").unwrap();
        assert!(
            alert > page.find("id=\"new-refund\"").unwrap(),
            "next to the form"
        );
    }

    #[test]
    fn refusals_show_where_the_person_acted() {
        let mut ctx = result("succeeded");
        ctx.refunds = vec![refund("re_paid", 500, "succeeded")];
        ctx.refund_form.cancel_error = Some("This refund was canceled already.".into());
        let page = result_page(&ctx);
        let alert = page.find("role=\"alert\"").unwrap();
        assert!(alert > page.find("id=\"refunds\"").unwrap());
        assert!(
            alert < page.find("id=\"new-refund\"").unwrap(),
            "above the refunds"
        );

        // Nothing left to refund: no form, so the reason shows above the refunds.
        ctx.refunds = vec![refund("re_all", 4745, "pending")];
        ctx.refund_form.cancel_error = None;
        ctx.refund_form.error = Some("Everything was refunded already.".into());
        let page = result_page(&ctx);
        assert!(!page.contains("id=\"new-refund\""));
        assert!(page.contains("role=\"alert\">Everything was refunded already."));
    }

    #[test]
    fn an_authorisation_offers_capture_and_cancel_with_its_deadline() {
        let mut ctx = result("requires_capture");
        ctx.capture_before = Some("2026-12-01T10:00:00Z".into());
        ctx.now = Some(
            DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let page = result_page(&ctx);
        assert!(page.contains("Payment authorised"), "{page}");
        assert!(page.contains("Authorised</dt><dd>€47.45"), "{page}");
        assert!(
            page.contains("Capture by</dt><dd>1 Dec 2026, 10:00 UTC (in 7 days)"),
            "{page}"
        );
        assert!(
            !page.contains("http-equiv=\"refresh\""),
            "it waits for the shop"
        );
        let capture = form(&page, "/demo/capture").expect("a capture form");
        assert!(capture.contains("name=\"idempotency_key\" value=\"k-2\""));
        assert!(
            capture.contains("name=\"amount\" value=\"\" placeholder=\"47.45\""),
            "{capture}"
        );
        let cancel = form(&page, "/demo/cancel").expect("a cancel form");
        assert!(cancel.contains("name=\"idempotency_key\" value=\"k-3\""));
        assert!(cancel.contains("Cancel payment"));
        assert!(!page.contains("id=\"refunds\""), "nothing charged yet");
    }

    #[test]
    fn a_payment_under_way_offers_cancel_only_and_a_paid_one_neither() {
        for status in ["requires_action", "processing"] {
            let page = result_page(&result(status));
            assert!(form(&page, "/demo/cancel").is_some(), "{status}");
            assert!(form(&page, "/demo/capture").is_none(), "{status}");
        }
        for status in ["succeeded", "canceled", "failed", "refunded"] {
            let page = result_page(&result(status));
            assert!(form(&page, "/demo/cancel").is_none(), "{status}");
            assert!(form(&page, "/demo/capture").is_none(), "{status}");
        }
    }

    #[test]
    fn a_captured_payment_refunds_what_was_captured() {
        let mut ctx = result("succeeded");
        ctx.amount_captured = Some(1000);
        let page = result_page(&ctx);
        let banner =
            &page[page.find("role=\"status\"").unwrap()..page.find("summary-title").unwrap()];
        assert!(
            banner.contains("€10.00"),
            "the shopper sees what was charged: {banner}"
        );
        assert!(!banner.contains("€47.45"), "{banner}");
        assert!(page.contains("Captured</dt><dd>€10.00"), "{page}");
        assert!(page.contains("Left to refund</dt><dd>€10.00"), "{page}");
        assert_eq!(ctx.left_to_refund(), 1000);
    }

    #[test]
    fn a_refused_capture_shows_why_with_the_forms_or_at_the_top() {
        let mut ctx = result("requires_capture");
        ctx.payment_form.error = Some("That is more than the card was authorised for.".into());
        ctx.payment_form.amount = "99".into();
        let page = result_page(&ctx);
        let alert = page.find("role=\"alert\"").unwrap();
        assert!(alert > page.find("id=\"capture\"").unwrap(), "{page}");
        assert!(
            form(&page, "/demo/capture")
                .unwrap()
                .contains("value=\"99\"")
        );

        let mut ctx = result("succeeded");
        ctx.payment_form.error = Some("This payment has been captured already.".into());
        let page = result_page(&ctx);
        let alert = page.find("role=\"alert\"").unwrap();
        assert!(alert < page.find("summary-title").unwrap(), "{page}");
    }
}
