//! The sandbox's demo storefront (issue #3 point 2): rendering and form parsing only. The
//! routes live with the sandbox; they call the gateway's own API with the JSON built here, so
//! the demo exercises exactly what a merchant's backend would.
//!
//! - [`checkout_page`]: a cart of two fixed items and a plain HTML checkout form (the page's
//!   first and only form, `POST /demo/checkout`, no JavaScript, no cookies) pre-filled with a
//!   3-D Secure test card, plus the simulator's test cards and what each does.
//! - [`DemoCheckoutForm`] + [`to_checkout_request_json`]: the form's fields to the
//!   `POST /v1/checkouts` body of design §3.
//! - [`result_page`]: where the shop's return URL lands: the final status and the events.
//!
//! Its CSP: the checkout page's form is redirected through `/pay/…` to the 3DS page, which in
//! redirect mode is on the simulator's origin, so serve it with
//! `browser::security::gateway_page_csp_with_form_targets(&[simulator_origin])`.

use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::money::Currency;

/// One line of the demo cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoItem {
    pub name: &'static str,
    pub sku: &'static str,
    pub quantity: u32,
    /// Per unit, VAT included, EUR cents.
    pub unit_amount: i64,
}

/// The fixed demo cart: the page shows it and the request sends it, so they cannot disagree.
pub const DEMO_ITEMS: [DemoItem; 2] = [
    DemoItem {
        name: "Organic cotton T-shirt",
        sku: "TS-1",
        quantity: 2,
        unit_amount: 1500,
    },
    DemoItem {
        name: "Canvas tote bag",
        sku: "TB-1",
        quantity: 1,
        unit_amount: 1250,
    },
];
/// EUR cents, VAT included.
pub const DEMO_SHIPPING: i64 = 495;
/// The Dutch standard VAT rate, as design §3's decimal string.
pub const DEMO_TAX_RATE: &str = "0.21";
pub const DEMO_CURRENCY: &str = "EUR";

/// Σ(unit_amount × quantity) + shipping, in EUR cents.
pub fn demo_total() -> i64 {
    DEMO_ITEMS
        .iter()
        .map(|i| i.unit_amount * i64::from(i.quantity))
        .sum::<i64>()
        + DEMO_SHIPPING
}

/// A test card the simulator knows, and what it does (design §8's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub number: &'static str,
    pub brand: &'static str,
    pub outcome: &'static str,
}

pub const TEST_CARDS: &[TestCard] = &[
    TestCard {
        number: "4111111111111111",
        brand: "Visa",
        outcome: "3-D Secure challenge, then completed",
    },
    TestCard {
        number: "4761340000000019",
        brand: "Visa",
        outcome: "3-D Secure challenge, then completed",
    },
    TestCard {
        number: "5500000000000004",
        brand: "Mastercard",
        outcome: "3-D Secure challenge, then completed",
    },
    TestCard {
        number: "374500000000015",
        brand: "Amex",
        outcome: "Frictionless, completed at once",
    },
    TestCard {
        number: "4012001038443335",
        brand: "Visa",
        outcome: "Not enrolled in 3-D Secure, completed",
    },
    TestCard {
        number: "4917300000000008",
        brand: "Visa",
        outcome: "Uncleared (processing), voided later",
    },
    TestCard {
        number: "4462000000000003",
        brand: "Visa",
        outcome: "Uncleared (processing), completed later",
    },
    TestCard {
        number: "4012001037461114",
        brand: "Visa",
        outcome: "3-D Secure fails, declined",
    },
    TestCard {
        number: "374200000000004",
        brand: "Amex",
        outcome: "3-D Secure fails, declined",
    },
    TestCard {
        number: "4012001038488884",
        brand: "Visa",
        outcome: "Declined: insufficient funds",
    },
    TestCard {
        number: "4242424242424242",
        brand: "Visa",
        outcome: "Declined when the order is created",
    },
];

/// What the checkout page needs from its route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCheckoutPage {
    /// Pre-filled expiry year: must be in the future, so the route passes e.g. this year + 3.
    pub exp_year: i32,
    /// Shown above the form when the gateway refused the last submission (its error message).
    pub error: Option<String>,
}

/// The demo checkout form as posted (`web::Form<DemoCheckoutForm>`). The card number and the CVC
/// are secrets, so that `Debug` (and any log line built from it) masks them.
#[derive(Debug, Deserialize)]
pub struct DemoCheckoutForm {
    pub card_number: SecretString,
    pub exp_month: String,
    pub exp_year: String,
    pub cvc: SecretString,
    #[serde(default)]
    pub holder_name: String,
    #[serde(default)]
    pub email: String,
}

/// The `POST /v1/checkouts` body (design §3) for the demo cart and the posted card.
///
/// The card number loses the spaces and dashes people type; expiry fields become numbers when
/// they are numbers and are otherwise passed on as typed, so that the gateway's own validation
/// answers (400 with `param`) and the demo shows what a merchant would see.
pub fn to_checkout_request_json(
    form: &DemoCheckoutForm,
    return_url: &str,
    shopper_ip: &str,
) -> Value {
    let number: String = form
        .card_number
        .expose_secret()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mut card = json!({
        "number": number,
        "exp_month": number_or_text(&form.exp_month),
        "exp_year": number_or_text(&form.exp_year),
        "cvc": form.cvc.expose_secret().trim(),
    });
    let holder = form.holder_name.trim();
    if !holder.is_empty() {
        card["holder_name"] = json!(holder);
    }
    let items: Vec<Value> = DEMO_ITEMS
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "sku": i.sku,
                "quantity": i.quantity,
                "unit_amount": i.unit_amount,
                "tax_rate": DEMO_TAX_RATE,
            })
        })
        .collect();
    // Unique enough to tell demo orders apart in MSP's or the simulator's records.
    let reference = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    json!({
        "reference": reference,
        "currency": DEMO_CURRENCY,
        "items": items,
        "shipping_amount": DEMO_SHIPPING,
        "shipping_tax_rate": DEMO_TAX_RATE,
        "amount": demo_total(),
        "description": "Demo order at the checkout-gateway sandbox",
        "customer": {
            "email": form.email.trim(),
            "ip_address": shopper_ip,
            "locale": "nl_NL",
            "address": {
                "line1": "Kraanspoor",
                "house_number": "39",
                "zip_code": "1033SC",
                "city": "Amsterdam",
                "country": "NL"
            }
        },
        "card": card,
        "return_url": return_url,
        "metadata": {"source": "sandbox-demo"}
    })
}

fn number_or_text(s: &str) -> Value {
    let s = s.trim();
    s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n))
}

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

/// Where the demo's form submission sends the browser after `POST /v1/checkouts` answered 201
/// (issue #3 point 2): `next_action`'s URL when there is one (3-D Secure), else the result page
/// with `checkout_id` and `status`, as the gateway's own return would.
pub fn next_location(created: &Value, result_url: &str) -> String {
    if let Some(url) = created["next_action"]["redirect_to_url"]["url"].as_str() {
        return url.to_owned();
    }
    let id = created["id"].as_str().unwrap_or_default();
    let status = created["status"].as_str().unwrap_or_default();
    crate::browser::security::append_query(result_url, &[("checkout_id", id), ("status", status)])
}

/// The message to show above the demo form when the gateway refused the checkout: its error
/// body's message, naming the field (design §3's `{"error": {…, "message", "param"}}`).
pub fn api_error_message(status: u16, body: &Value) -> String {
    let error = &body["error"];
    match (error["message"].as_str(), error["param"].as_str()) {
        (Some(message), Some(param)) if !param.is_empty() => format!("{param}: {message}"),
        (Some(message), _) => message.to_owned(),
        _ => format!("The gateway answered HTTP {status}; see its log for the reason."),
    }
}

/// Renders the demo checkout page.
pub fn checkout_page(ctx: &DemoCheckoutPage) -> String {
    let lines: Vec<CartLine> = DEMO_ITEMS
        .iter()
        .map(|i| CartLine {
            name: i.name,
            quantity: i.quantity,
            unit: format_money(i.unit_amount, DEMO_CURRENCY),
            total: format_money(i.unit_amount * i64::from(i.quantity), DEMO_CURRENCY),
        })
        .collect();
    let cards: Vec<CardRow> = TEST_CARDS
        .iter()
        .map(|c| CardRow {
            number: group_card_number(c.number),
            brand: c.brand,
            outcome: c.outcome,
        })
        .collect();
    CheckoutTemplate {
        lines,
        shipping: format_money(DEMO_SHIPPING, DEMO_CURRENCY),
        total: format_money(demo_total(), DEMO_CURRENCY),
        vat: format_money(vat_included(demo_total()), DEMO_CURRENCY),
        exp_year: ctx.exp_year,
        error: ctx.error.as_deref(),
        cards,
    }
    .render()
    // Rendering into a String only fails if a Display impl does; ours do not.
    .unwrap_or_else(|e| format!("demo page could not be rendered: {e}"))
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

/// The VAT included in a gross amount at 21 %, rounded half up to the cent (display only: the
/// gateway and MSP do their own tax arithmetic).
fn vat_included(gross: i64) -> i64 {
    // gross − gross / 1.21, in integers: gross × 21 / 121, rounded.
    (gross * 21 + 60) / 121
}

/// Minor units as a price: `€47.45`, `$1.00`, `JPY 500`, `KWD 1.250`. Display only.
pub fn format_money(minor: i64, currency: &str) -> String {
    let exponent = Currency::parse(currency).map_or(2, |c| c.exponent());
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let digits = if exponent == 0 {
        abs.to_string()
    } else {
        let scale = 10u64.pow(u32::from(exponent));
        format!(
            "{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = usize::from(exponent)
        )
    };
    match currency {
        "EUR" => format!("{sign}€{digits}"),
        "USD" => format!("{sign}${digits}"),
        "GBP" => format!("{sign}£{digits}"),
        other => format!("{sign}{other} {digits}"),
    }
}

/// `4111111111111111` → `4111 1111 1111 1111`; Amex's 15 digits as 4-6-5.
fn group_card_number(number: &str) -> String {
    let groups: &[usize] = if number.len() == 15 {
        &[4, 6, 5]
    } else {
        &[4, 4, 4, 4, 4]
    };
    let mut out = String::new();
    let mut rest = number;
    for &g in groups {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(g.min(rest.len()));
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(head);
        rest = tail;
    }
    out
}

struct CartLine {
    name: &'static str,
    quantity: u32,
    unit: String,
    total: String,
}

struct CardRow {
    number: String,
    brand: &'static str,
    outcome: &'static str,
}

#[derive(Template)]
#[template(path = "demo_checkout.html")]
struct CheckoutTemplate<'a> {
    lines: Vec<CartLine>,
    shipping: String,
    total: String,
    vat: String,
    exp_year: i32,
    error: Option<&'a str>,
    cards: Vec<CardRow>,
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
    use super::*;

    fn form(number: &str, cvc: &str) -> DemoCheckoutForm {
        serde_urlencoded::from_str(&format!(
            "card_number={}&exp_month=12&exp_year=2029&cvc={}&holder_name=Jo+Tester&email=shopper%40example.com",
            number.replace(' ', "+"),
            cvc
        ))
        .unwrap()
    }

    /// The text of the first `<form …>` start tag and everything up to its `</form>`.
    fn first_form(page: &str) -> &str {
        let start = page.find("<form").expect("a form");
        let end = page[start..].find("</form>").expect("form end") + start;
        &page[start..end]
    }

    fn input_value<'a>(form: &'a str, name: &str) -> Option<&'a str> {
        let at = form.find(&format!("name=\"{name}\""))?;
        let tag_end = form[at..].find('>')? + at;
        let tag = &form[at..tag_end];
        let v = tag.find("value=\"")? + 7;
        Some(&tag[v..v + tag[v..].find('"')?])
    }

    fn page() -> String {
        checkout_page(&DemoCheckoutPage {
            exp_year: 2031,
            error: None,
        })
    }

    #[test]
    fn first_form_is_a_plain_post_prefilled_with_a_3ds_card() {
        let page = page();
        let form = first_form(&page);
        assert!(
            form.starts_with("<form method=\"post\" action=\"/demo/checkout\">"),
            "{form}"
        );
        assert_eq!(
            input_value(form, "card_number"),
            Some("4111 1111 1111 1111")
        );
        assert_eq!(input_value(form, "cvc"), Some("123"));
        assert_eq!(input_value(form, "exp_month"), Some("12"));
        assert_eq!(input_value(form, "exp_year"), Some("2031"));
        assert_eq!(input_value(form, "email"), Some("shopper@example.com"));
        assert!(input_value(form, "holder_name").is_some());
        assert!(form.contains("type=\"submit\""));
        // No JavaScript anywhere: the form must work without it.
        assert!(!page.contains("<script"));
    }

    #[test]
    fn page_shows_the_cart_total_and_every_test_card() {
        let page = page();
        assert_eq!(demo_total(), 4745);
        assert!(page.contains("€30.00"), "2 × €15.00");
        assert!(page.contains("€12.50"));
        assert!(page.contains("€4.95"));
        assert!(page.contains("Pay €47.45"));
        assert!(page.contains("€8.24"), "VAT included in €47.45 at 21 %");
        for card in TEST_CARDS {
            assert!(
                page.contains(&group_card_number(card.number)),
                "{}",
                card.number
            );
        }
        assert!(page.contains("3745 000000 00015"));
        assert!(page.contains("Declined: insufficient funds"));
    }

    #[test]
    fn error_message_is_shown_escaped() {
        let page = checkout_page(&DemoCheckoutPage {
            exp_year: 2031,
            error: Some("<script>alert('x')</script> bad card".into()),
        });
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&#60;script&#62;"));
        assert!(page.contains("bad card"));
    }

    #[test]
    fn request_json_has_the_cart_customer_and_card() {
        let body = to_checkout_request_json(
            &form("4111 1111 1111 1111", "123"),
            "http://127.0.0.1:8080/demo/result",
            "203.0.113.7",
        );
        assert_eq!(body["currency"], "EUR");
        assert_eq!(body["amount"], 4745);
        assert_eq!(body["shipping_amount"], 495);
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        let sum: i64 = items
            .iter()
            .map(|i| i["unit_amount"].as_i64().unwrap() * i["quantity"].as_i64().unwrap())
            .sum();
        assert_eq!(sum + 495, body["amount"].as_i64().unwrap());
        assert!(items.iter().all(|i| i["tax_rate"] == "0.21"));
        assert_eq!(body["customer"]["email"], "shopper@example.com");
        assert_eq!(body["customer"]["ip_address"], "203.0.113.7");
        assert_eq!(body["customer"]["locale"], "nl_NL");
        assert_eq!(body["customer"]["address"]["country"], "NL");
        assert_eq!(body["card"]["number"], "4111111111111111");
        assert_eq!(body["card"]["exp_month"], 12);
        assert_eq!(body["card"]["exp_year"], 2029);
        assert_eq!(body["card"]["cvc"], "123");
        assert_eq!(body["card"]["holder_name"], "Jo Tester");
        assert_eq!(body["return_url"], "http://127.0.0.1:8080/demo/result");
        assert!(body["reference"].as_str().unwrap().starts_with("demo-"));
    }

    #[test]
    fn unparsable_expiry_is_passed_on_for_the_gateway_to_reject() {
        let mut f = form("4111-1111-1111-1111", "123");
        f.exp_month = "dec".into();
        let body = to_checkout_request_json(&f, "http://x/r", "127.0.0.1");
        assert_eq!(body["card"]["exp_month"], "dec");
        assert_eq!(body["card"]["number"], "4111111111111111");
    }

    #[test]
    fn form_debug_masks_card_number_and_cvc() {
        let f = form("4111 1111 1111 1111", "987");
        let debug = format!("{f:?}");
        assert!(!debug.contains("4111"), "{debug}");
        assert!(!debug.contains("987"), "{debug}");
    }

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
    fn money_is_formatted_from_minor_units() {
        assert_eq!(format_money(4745, "EUR"), "€47.45");
        assert_eq!(format_money(5, "EUR"), "€0.05");
        assert_eq!(format_money(100, "USD"), "$1.00");
        assert_eq!(format_money(500, "JPY"), "JPY 500");
        assert_eq!(format_money(1250, "KWD"), "KWD 1.250");
        assert_eq!(vat_included(121), 21);
        assert_eq!(vat_included(4745), 824);
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

    #[test]
    fn after_create_the_browser_goes_to_next_action_or_the_result_page() {
        let pending = json!({"id": "chk_1", "status": "requires_action",
            "next_action": {"type": "redirect_to_url", "redirect_to_url": {"url": "http://gw/pay/tok", "return_url": "x"}}});
        assert_eq!(
            next_location(&pending, "http://gw/demo/result"),
            "http://gw/pay/tok"
        );
        let done = json!({"id": "chk_1", "status": "succeeded", "next_action": null});
        assert_eq!(
            next_location(&done, "http://gw/demo/result"),
            "http://gw/demo/result?checkout_id=chk_1&status=succeeded"
        );
    }

    #[test]
    fn api_errors_name_the_field() {
        let body = json!({"error": {"type": "invalid_request_error", "code": "invalid_card_number",
            "message": "the card number fails the Luhn check", "param": "card.number"}});
        assert_eq!(
            api_error_message(400, &body),
            "card.number: the card number fails the Luhn check"
        );
        let no_param = json!({"error": {"message": "try again", "param": null}});
        assert_eq!(api_error_message(503, &no_param), "try again");
        assert!(api_error_message(502, &json!("junk")).contains("HTTP 502"));
    }
}
