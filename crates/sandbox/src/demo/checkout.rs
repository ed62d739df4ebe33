//! The demo checkout page and its form: the cart and a card form pre-filled with a 3-D Secure
//! test card, and the form's fields turned into the gateway's `POST /v1/checkouts` body.

use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    DEMO_CURRENCY, DEMO_ITEMS, DEMO_SHIPPING, DEMO_TAX_RATE, TEST_CARDS, demo_total, format_money,
    group_card_number, vat_included,
};

/// What the checkout page needs from its route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCheckoutPage {
    /// Pre-filled expiry year: must be in the future, so the route passes e.g. this year + 3.
    pub exp_year: i32,
    /// Shown above the form when the last submission was refused, in the shopper's words.
    pub error: Option<String>,
    /// The form field the error is about (`card_number`, `cvc`, `exp_month`, …): marked.
    pub invalid_field: Option<&'static str>,
    /// The demo shopper's saved cards, newest first: a one-click button each.
    pub saved_cards: Vec<super::SavedCard>,
    /// What the shopper typed last time, when the form comes back after an error: kept, except
    /// the card number and the security code, which are asked for again (they are never echoed
    /// into a page).
    pub typed: Option<TypedFields>,
}

/// The fields of a refused submission that the form shows again as they were typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypedFields {
    pub exp_month: String,
    pub exp_year: String,
    pub holder_name: String,
    pub email: String,
}

impl DemoCheckoutForm {
    /// What the form shows again after an error: everything but the card number and the CVC.
    pub fn typed(&self) -> TypedFields {
        TypedFields {
            exp_month: self.exp_month.clone(),
            exp_year: self.exp_year.clone(),
            holder_name: self.holder_name.clone(),
            email: self.email.clone(),
        }
    }
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
    /// Which button paid: `later` authorises now and leaves the capture to the shop
    /// (`capture_method: manual`); anything else, or nothing, pays now.
    #[serde(default)]
    pub capture: String,
    /// The "save this card" tick box: `card_on_file` when ticked.
    #[serde(default)]
    pub save_card: String,
    /// The "order this every month" tick box: `subscription` when ticked (it saves the card
    /// for the monthly charges).
    #[serde(default)]
    pub subscribe: String,
}

impl DemoCheckoutForm {
    /// Whether the shopper chose "Pay later": authorise now, capture when the shop ships.
    pub fn pays_later(&self) -> bool {
        self.capture.trim() == "later"
    }
}

/// The `POST /v1/checkouts` body for the demo cart and the posted card.
///
/// The card number loses the spaces and dashes people type; expiry fields become numbers when
/// they are numbers and are otherwise passed on as typed, so that the gateway's own validation
/// answers (400 with `param`) and the demo shows what a merchant would see.
///
/// `cancel_url` is where MSP sends a shopper who did not complete 3-D Secure (pressed Cancel,
/// or the bank did not verify them): the result page, marked so that it can say "cancelled"
/// rather than "failed".
pub fn to_checkout_request_json(
    form: &DemoCheckoutForm,
    return_url: &str,
    cancel_url: &str,
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
    let mut body = json!({
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
        "cancel_url": cancel_url,
        "metadata": {"source": "sandbox-demo"}
    });
    if form.pays_later() {
        body["capture_method"] = json!("manual");
    }
    if let Some(usage) = super::saved::usage_chosen(form) {
        body["save_card"] = json!(usage);
        body["customer"]["reference"] = json!(super::saved::DEMO_SHOPPER);
    }
    body
}

fn number_or_text(s: &str) -> Value {
    let s = s.trim();
    s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n))
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
    gateway::browser::security::append_query(result_url, &[("checkout_id", id), ("status", status)])
}

/// What the checkout page says when the gateway refuses "Pay later" for the card: MultiSafepay
/// captures manually for Visa, Mastercard and Maestro only.
const PAY_LATER_REFUSED: &str = "Pay later is only possible with a Visa, Mastercard or Maestro \
    card. Pay now with this card, or pay later with one of those.";

/// What the shopper reads above the form when a submission could not be sent on: which field
/// to look at again and how, never the gateway's wording for merchants (field paths, codes,
/// "the shopper"), which goes to the log instead.
const CHECK_CARD_NUMBER: &str = "Check the card number: it does not look like a valid card number. Type it again as it is on the card.";
const CHECK_CVC: &str = "Check the security code (CVC): it is the 3 digits on the back of the \
    card, or the 4 digits on the front of an American Express card.";
const CHECK_EXPIRY: &str = "Check the expiry date: type the month (1 to 12) and the year as they \
    are on the card. An expired card cannot be used.";
const CHECK_NAME: &str = "Check the name on the card: use letters, spaces, dots and hyphens only.";
const CHECK_EMAIL: &str = "Check your email address: it should look like name@example.com.";
const TRY_AGAIN_LATER: &str = "We could not take your payment just now, and nothing was charged. Please try again in a moment.";

/// The demo form's field a refusal of the gateway is about, to mark it (the error's `param`).
pub fn invalid_field(body: &Value) -> Option<&'static str> {
    let error = &body["error"];
    match (
        error["param"].as_str()?,
        error["code"].as_str().unwrap_or_default(),
    ) {
        ("card.number", _) | (_, "invalid_card_number") => Some("card_number"),
        ("card.cvc", _) | (_, "invalid_cvc") => Some("cvc"),
        ("card.exp_month", _) => Some("exp_month"),
        ("card.exp_year", _) | (_, "invalid_expiry") => Some("exp_year"),
        ("card.holder_name", _) => Some("holder_name"),
        ("customer.email", _) | (_, "invalid_email") => Some("email"),
        _ => None,
    }
}

/// The message to show above the demo form when the gateway refused the checkout (the error body's
/// `{"error": {…, "code", "param"}}`), in the shopper's words: what to check, or to try again.
pub fn api_error_message(status: u16, body: &Value) -> String {
    let error = &body["error"];
    let param = error["param"].as_str().unwrap_or_default();
    let code = error["code"].as_str().unwrap_or_default();
    if param == "capture_method" {
        return PAY_LATER_REFUSED.to_owned();
    }
    let message = match (param, code) {
        ("card.number", _) | (_, "invalid_card_number") => CHECK_CARD_NUMBER,
        ("card.cvc", _) | (_, "invalid_cvc") => CHECK_CVC,
        ("card.exp_month" | "card.exp_year", _) | (_, "invalid_expiry") => CHECK_EXPIRY,
        ("card.holder_name", _) => CHECK_NAME,
        ("customer.email", _) | (_, "invalid_email") => CHECK_EMAIL,
        _ => TRY_AGAIN_LATER,
    };
    if message == TRY_AGAIN_LATER {
        // Not something the shopper can fix: the shop's developer needs the gateway's words.
        tracing::warn!(
            status,
            code,
            param,
            "the gateway refused the demo's checkout"
        );
    }
    message.to_owned()
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
    let typed = ctx.typed.as_ref();
    let exp_year = ctx.exp_year.to_string();
    CheckoutTemplate {
        // The test card the page suggests, until the shopper has typed something of their own.
        card_number: if typed.is_some() { "" } else { SUGGESTED_CARD },
        cvc: if typed.is_some() { "" } else { SUGGESTED_CVC },
        exp_month: typed.map_or("12", |t| t.exp_month.as_str()),
        exp_year: typed.map_or(exp_year.as_str(), |t| t.exp_year.as_str()),
        holder_name: typed.map_or(SUGGESTED_NAME, |t| t.holder_name.as_str()),
        email: typed.map_or(SUGGESTED_EMAIL, |t| t.email.as_str()),
        ask_again: typed.is_some(),
        invalid: ctx.invalid_field.unwrap_or_default(),
        lines,
        shipping: format_money(DEMO_SHIPPING, DEMO_CURRENCY),
        total: format_money(demo_total(), DEMO_CURRENCY),
        vat: format_money(vat_included(demo_total()), DEMO_CURRENCY),
        error: ctx.error.as_deref(),
        cards,
        saved_cards: &ctx.saved_cards,
    }
    .render()
    // Rendering into a String only fails if a Display impl does; ours do not.
    .unwrap_or_else(|e| format!("demo page could not be rendered: {e}"))
}

const SUGGESTED_CARD: &str = "4111 1111 1111 1111";
const SUGGESTED_CVC: &str = "123";
const SUGGESTED_NAME: &str = "Jo Tester";
const SUGGESTED_EMAIL: &str = "shopper@example.com";

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
    card_number: &'a str,
    cvc: &'a str,
    exp_month: &'a str,
    exp_year: &'a str,
    holder_name: &'a str,
    email: &'a str,
    /// The form came back after an error: the card number and CVC are asked for again.
    ask_again: bool,
    /// The name of the field the error is about, or `""`.
    invalid: &'a str,
    lines: Vec<CartLine>,
    shipping: String,
    total: String,
    vat: String,
    error: Option<&'a str>,
    cards: Vec<CardRow>,
    saved_cards: &'a [super::SavedCard],
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
            invalid_field: None,
            typed: None,
            saved_cards: Vec::new(),
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
        assert!(page.contains("Confirmed, then declined: not enough money"));
    }

    #[test]
    fn error_message_is_shown_escaped() {
        let page = checkout_page(&DemoCheckoutPage {
            exp_year: 2031,
            error: Some("<script>alert('x')</script> bad card".into()),
            invalid_field: None,
            typed: None,
            saved_cards: Vec::new(),
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
            "http://127.0.0.1:8080/demo/result?from=cancel",
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
        assert_eq!(
            body["cancel_url"],
            "http://127.0.0.1:8080/demo/result?from=cancel"
        );
        assert!(body["reference"].as_str().unwrap().starts_with("demo-"));
    }

    #[test]
    fn pay_later_asks_for_a_manual_capture() {
        let now = to_checkout_request_json(
            &form("4111 1111 1111 1111", "123"),
            "http://x/r",
            "http://x/c",
            "::1",
        );
        assert!(now.get("capture_method").is_none(), "{now}");
        let mut later = form("4111 1111 1111 1111", "123");
        later.capture = "later".into();
        let body = to_checkout_request_json(&later, "http://x/r", "http://x/c", "::1");
        assert_eq!(body["capture_method"], "manual");

        let page = page();
        let form = first_form(&page);
        assert!(form.contains("name=\"capture\" value=\"now\""), "{form}");
        assert!(form.contains("name=\"capture\" value=\"later\""), "{form}");
        assert!(
            form.find("value=\"now\"") < form.find("value=\"later\""),
            "Enter pays now: the first button is the form's default"
        );
    }

    #[test]
    fn a_refused_pay_later_is_said_in_plain_words() {
        let body = json!({"error": {"type": "invalid_request_error", "code": "invalid_parameter",
            "message": "`manual` capture works for Visa, Mastercard and Maestro cards only: use `automatic` for this card",
            "param": "capture_method"}});
        let message = api_error_message(400, &body);
        assert!(message.contains("Visa, Mastercard or Maestro"), "{message}");
        for jargon in ["capture_method", "manual", "automatic", "`", "400"] {
            assert!(!message.contains(jargon), "{jargon} in {message}");
        }
    }

    #[test]
    fn unparsable_expiry_is_passed_on_for_the_gateway_to_reject() {
        let mut f = form("4111-1111-1111-1111", "123");
        f.exp_month = "dec".into();
        let body = to_checkout_request_json(&f, "http://x/r", "http://x/c", "127.0.0.1");
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
    fn refusals_say_what_to_check_in_the_shoppers_words() {
        let refusal = |code: &str, param: &str, message: &str| json!({"error": {"type": "invalid_request_error", "code": code, "message": message, "param": param}});
        let cases = [
            (
                refusal(
                    "invalid_card_number",
                    "card.number",
                    "the card number fails the Luhn check",
                ),
                "card number",
            ),
            (
                refusal(
                    "invalid_cvc",
                    "card.cvc",
                    "the security code (CVC) of a amex card is 4 digits: check what the shopper typed",
                ),
                "security code",
            ),
            (
                refusal("invalid_expiry", "card.exp_year", "the card has expired"),
                "expiry date",
            ),
            (
                refusal("invalid_email", "customer.email", "not an email address"),
                "email address",
            ),
        ];
        for (body, says) in cases {
            let message = api_error_message(400, &body);
            assert!(message.contains(says), "{says}: {message}");
            for jargon in [
                "card.number",
                "card.cvc",
                "card.exp_",
                "customer.email",
                "invalid_",
                "shopper",
                "Luhn",
                "`",
                "400",
                "amex",
            ] {
                assert!(!message.contains(jargon), "{jargon} in {message}");
            }
        }
        for (status, body) in [
            (
                503,
                json!({"error": {"type": "api_error", "code": "service_unavailable", "message": "retry after the `Retry-After` seconds", "param": null}}),
            ),
            (502, json!("junk")),
            (
                401,
                json!({"error": {"type": "authentication_error", "code": "invalid_api_key", "message": "Missing or unknown API key", "param": null}}),
            ),
        ] {
            let message = api_error_message(status, &body);
            assert!(message.contains("try again"), "{message}");
            assert!(message.contains("nothing was charged"), "{message}");
            for jargon in ["Retry-After", "API key", "HTTP", "gateway", "log"] {
                assert!(!message.contains(jargon), "{jargon} in {message}");
            }
        }
    }

    #[test]
    fn after_an_error_the_form_keeps_what_was_typed_but_the_card_number_and_cvc() {
        let typed = TypedFields {
            exp_month: "07".into(),
            exp_year: "2033".into(),
            holder_name: "Sam <Smith>".into(),
            email: "sam@example.org".into(),
        };
        let page = checkout_page(&DemoCheckoutPage {
            exp_year: 2031,
            error: Some(CHECK_CVC.into()),
            invalid_field: Some("cvc"),
            typed: Some(typed),
            saved_cards: Vec::new(),
        });
        let form = first_form(&page);
        assert_eq!(input_value(form, "card_number"), Some(""));
        assert_eq!(input_value(form, "cvc"), Some(""));
        assert_eq!(input_value(form, "exp_month"), Some("07"));
        assert_eq!(input_value(form, "exp_year"), Some("2033"));
        assert_eq!(
            input_value(form, "holder_name"),
            Some("Sam &#60;Smith&#62;")
        );
        assert_eq!(input_value(form, "email"), Some("sam@example.org"));
        assert!(
            page.contains("enter the card number and security code again"),
            "{page}"
        );
        let cvc = &form[form.find("name=\"cvc\"").unwrap()..];
        let cvc = &cvc[..cvc.find('>').unwrap()];
        assert!(cvc.contains("aria-invalid=\"true\""), "{cvc}");
        assert_eq!(form.matches("aria-invalid").count(), 1, "{form}");
    }
}
