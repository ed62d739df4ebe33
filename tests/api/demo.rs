//! The sandbox's demo storefront in real headless Chromium: a person's whole 3-D Secure payment,
//! in both 3DS modes, and a shop owner's refunds on the result page. In form mode this is also
//! the proof that the CSP built for MultiSafepay's form (script hashes, form-action) lets Chrome
//! run and submit it; the refunds prove the result page's forms work under its CSP.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::cli::Sandbox;
use crate::common::browser::Browser;

async fn pay_through_the_demo(mode: &str) {
    let sandbox = Sandbox::start(&[("GATEWAY__CHECKOUT__THREE_DS_MODE", mode)]);
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
    let source = c.source().await.unwrap();
    assert!(
        source.contains("4111 1111 1111 1111"),
        "the test card is pre-filled"
    );
    browser.screenshot(&format!("demo-{mode}-1-checkout")).await;

    // The page's first form is the checkout; submit it as a shopper would.
    c.find(Locator::Css(
        "form button[type='submit'], form input[type='submit']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();

    // MSP's challenge page (served by the simulator, on another origin).
    let mut challenge = None;
    for _ in 0..200 {
        if c.find(Locator::Css("button[value='Y']")).await.is_ok() {
            challenge = Some(c.current_url().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let challenge = challenge.unwrap_or_else(|| panic!("no challenge page in {mode} mode"));
    assert!(
        !challenge.as_str().starts_with(&sandbox.base),
        "the challenge is MSP's page: {challenge}"
    );
    browser
        .screenshot(&format!("demo-{mode}-2-challenge"))
        .await;
    c.find(Locator::Css("button[value='Y']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let result = browser
        .wait_for_url(&format!("{}/demo/result", sandbox.base))
        .await;
    assert!(
        result
            .query_pairs()
            .any(|(k, v)| k == "status" && v == "succeeded"),
        "{result}"
    );
    let page = browser.text().await;
    assert!(page.to_lowercase().contains("succeeded"), "{page}");
    assert!(
        page.contains("requires_action"),
        "the events are listed: {page}"
    );
    browser.screenshot(&format!("demo-{mode}-3-result")).await;
    browser.close().await;
}

#[tokio::test]
async fn a_person_pays_through_the_demo_in_redirect_mode() {
    pay_through_the_demo("redirect").await;
}

#[tokio::test]
async fn a_person_pays_through_the_demo_in_form_mode() {
    pay_through_the_demo("form").await;
}

/// How long the refund test waits for any one thing the browser or the gateway does.
const WAIT: Duration = Duration::from_secs(30);

/// Polls the page's text until `ready` holds, reloading first when `reload` is set; panics
/// with the last text after [`WAIT`].
pub(crate) async fn wait_for_text(
    browser: &Browser,
    reload: bool,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if reload {
            browser.client.refresh().await.unwrap();
        }
        // A page still loading has no body yet: that is "not ready", not a failure.
        let text = match browser.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ready(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never got there: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The simulator's base URL, for `PUT /sim/clock`. The sandbox prints it on stderr at start-up,
/// which `Sandbox` reads past; the demo's checkout page names it too, as the one `form-action`
/// origin besides `'self'` (its form is redirected to the simulator's 3-D Secure page).
async fn simulator_base(sandbox: &Sandbox) -> String {
    let res = reqwest::get(format!("{}/demo", sandbox.base))
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let form_action = csp
        .split(';')
        .find_map(|d| d.trim().strip_prefix("form-action "))
        .unwrap_or_else(|| panic!("no form-action: {csp}"));
    form_action
        .split(' ')
        .find(|o| o.starts_with("http"))
        .unwrap_or_else(|| panic!("no simulator origin: {csp}"))
        .to_owned()
}

/// The checkout's refunds as the gateway lists them.
async fn api_refunds(sandbox: &Sandbox, checkout_id: &str) -> Vec<Value> {
    let res = crate::common::http_client()
        .get(format!(
            "{}/v1/checkouts/{checkout_id}/refunds",
            sandbox.base
        ))
        .bearer_auth(&sandbox.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["has_more"], false, "{page}");
    serde_json::from_value(page["data"].clone()).unwrap()
}

/// The whole page at `width` CSS pixels (the window as tall as the page), as `NAME.png`.
pub(crate) async fn screenshot_at(browser: &Browser, width: u32, name: &str) {
    let c = &browser.client;
    c.set_window_size(width, 800).await.unwrap();
    // The window's height includes the browser's own (invisible) frame: add it to the page's.
    let sizes = c
        .execute(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]",
            vec![],
        )
        .await
        .unwrap();
    let height = sizes[0].as_u64().unwrap() + sizes[1].as_u64().unwrap();
    c.set_window_size(width, u32::try_from(height).unwrap())
        .await
        .unwrap();
    browser.screenshot(name).await;
}

/// Fills the result page's refund form with `amount` and sends it.
async fn refund_through_the_form(browser: &Browser, amount: &str) {
    let c = &browser.client;
    let field = c
        .find(Locator::Css(
            "form[action^='/demo/refund#'] input[name='amount']",
        ))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(amount).await.unwrap();
    c.find(Locator::Css(
        "form[action^='/demo/refund#'] button[type='submit']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
}

#[tokio::test]
async fn a_shop_owner_refunds_through_the_demo() {
    let sandbox = Sandbox::start(&[]);
    let simulator = simulator_base(&sandbox).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    // A person pays with the frictionless Amex: no 3-D Secure, straight to the result page.
    c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
    for (name, value) in [("card_number", "3745 000000 00015"), ("cvc", "1234")] {
        let field = c
            .find(Locator::Css(&format!("input[name='{name}']")))
            .await
            .unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
    c.find(Locator::Css("form button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = browser
        .wait_for_url(&format!("{}/demo/result", sandbox.base))
        .await;
    let checkout_id = result
        .query_pairs()
        .find(|(k, _)| k == "checkout_id")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let page = wait_for_text(&browser, false, |t| t.contains("Left to refund")).await;
    assert!(page.contains("Payment succeeded"), "{page}");
    assert!(page.contains("Refunded\n€0.00"), "{page}");
    assert!(
        page.contains("20 seconds"),
        "the page says when refunds complete: {page}"
    );

    // 5.00 back: pending, with a button to cancel it.
    refund_through_the_form(&browser, "5.00").await;
    let page = wait_for_text(&browser, false, |t| t.contains("Being refunded")).await;
    assert!(page.contains("Pending"), "{page}");
    assert!(page.contains("€5.00"), "{page}");
    assert!(page.contains("Left to refund\n€42.45"), "{page}");
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("#refunds")
    );
    c.find(Locator::Css("form[action^='/demo/refund/cancel#'] button"))
        .await
        .unwrap();
    let refunds = api_refunds(&sandbox, &checkout_id).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 500, "5.00 typed is 500 cents");
    assert_eq!(refunds[0]["status"], "pending");

    // MultiSafepay pays it out once the simulator's clock has moved on; reloading shows it.
    let res = crate::common::http_client()
        .put(format!("{simulator}/sim/clock"))
        .json(&json!({"advance_s": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = wait_for_text(&browser, true, |t| t.contains("Refunded\n€5.00")).await;
    assert!(page.contains("Partially refunded"), "{page}");
    assert!(page.contains("Refunded"), "{page}");
    assert!(!page.contains("Being refunded"), "{page}");
    assert!(
        c.find(Locator::Css("form[action^='/demo/refund/cancel#']"))
            .await
            .is_err(),
        "a paid-out refund cannot be canceled"
    );

    // A second refund stays pending (for the sandbox's 20 seconds: the cancel below comes well
    // within them); asking for more than is left is refused in plain words, keeping what was
    // typed.
    refund_through_the_form(&browser, "2,50").await;
    wait_for_text(&browser, false, |t| t.contains("Being refunded")).await;
    refund_through_the_form(&browser, "100").await;
    let page = wait_for_text(&browser, false, |t| t.contains("more than is left")).await;
    assert!(page.contains("at most €39.95"), "{page}");
    let typed = c
        .find(Locator::Css("input[name='amount']"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(typed.as_deref(), Some("100"));
    assert_eq!(api_refunds(&sandbox, &checkout_id).await.len(), 2);
    screenshot_at(&browser, 1280, "demo-refunds-desktop").await;
    screenshot_at(&browser, 390, "demo-refunds-phone").await;
    c.set_window_size(1200, 1000).await.unwrap();

    // The pending one is canceled with its button.
    c.find(Locator::Css("form[action^='/demo/refund/cancel#'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let page = wait_for_text(&browser, false, |t| t.contains("Canceled")).await;
    assert!(page.contains("Left to refund\n€42.45"), "{page}");
    let statuses: Vec<Value> = api_refunds(&sandbox, &checkout_id)
        .await
        .into_iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("succeeded"), json!("canceled")]);

    // The page: under the browser security headers, its forms allowed by `form-action 'self'`
    // (Chrome has just submitted them), and the card only as its last four digits.
    let res = reqwest::get(format!(
        "{}/demo/result?checkout_id={checkout_id}",
        sandbox.base
    ))
    .await
    .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action 'self';"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("•••• 0015"));
    for card in ["374500000000015", "3745 000000 00015"] {
        assert!(!html.contains(card), "{card} on the result page");
    }

    // Another site's page posting the same form is refused, in the browser and by header.
    let form = format!(
        "<form method=post action='{}/demo/refund'><input name=checkout_id value={checkout_id}>\
         <input name=amount value=1.00><button>go</button></form>",
        sandbox.base
    );
    c.goto(&format!("data:text/html,{form}")).await.unwrap();
    c.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let page = wait_for_text(&browser, false, |t| t.contains("Request refused")).await;
    assert!(
        page.contains("only accepts it from its own pages"),
        "{page}"
    );
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let res = crate::common::http_client()
            .post(format!("{}/demo/refund", sandbox.base))
            .header(name, value)
            .form(&[("checkout_id", checkout_id.as_str()), ("amount", "1.00")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{name}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
    let res = crate::common::http_client()
        .post(format!("{}/demo/refund/cancel", sandbox.base))
        .header("sec-fetch-site", "same-site")
        .form(&[("checkout_id", checkout_id.as_str()), ("refund_id", "re_0")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The refusals answered before anything was sent: still the same two refunds.
    assert_eq!(api_refunds(&sandbox, &checkout_id).await.len(), 2);
    browser.close().await;
}

/// A client that does not follow redirects, as the tests below read the demo's 303s.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Pays for the demo cart with `card` through the demo's checkout form, choosing "Pay later";
/// the checkout id from the 303 to the result page.
async fn pay_later(sandbox: &Sandbox, card: &str, cvc: &str) -> reqwest::Response {
    no_redirects()
        .post(format!("{}/demo/checkout", sandbox.base))
        .form(&[
            ("card_number", card),
            ("exp_month", "12"),
            ("exp_year", "2035"),
            ("cvc", cvc),
            ("holder_name", "Jo Tester"),
            ("email", "shopper@example.com"),
            ("capture", "later"),
        ])
        .send()
        .await
        .unwrap()
}

/// The `checkout_id` of the result page a 303 points at.
fn checkout_id_of(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "checkout_id")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{location}"))
}

async fn result_html(sandbox: &Sandbox, checkout_id: &str) -> String {
    reqwest::get(format!(
        "{}/demo/result?checkout_id={checkout_id}",
        sandbox.base
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

/// The value of the hidden `idempotency_key` in the form posting to `action`.
fn form_key(html: &str, action: &str) -> String {
    let start = html
        .find(&format!("action=\"{action}#"))
        .unwrap_or_else(|| panic!("no form for {action}: {html}"));
    let form = &html[start..start + html[start..].find("</form>").unwrap()];
    let at = form.find("name=\"idempotency_key\" value=\"").unwrap() + 29;
    form[at..at + form[at..].find('"').unwrap()].to_owned()
}

async fn api_checkout(sandbox: &Sandbox, checkout_id: &str) -> Value {
    crate::common::http_client()
        .get(format!("{}/v1/checkouts/{checkout_id}", sandbox.base))
        .bearer_auth(&sandbox.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_shop_owner_captures_or_cancels_a_pay_later_payment_through_the_demo() {
    let sandbox = Sandbox::start(&[]);
    let client = no_redirects();

    // Visa, not enrolled in 3-D Secure: authorised at once, waiting for the shop to capture.
    let res = pay_later(&sandbox, "4012 0010 3844 3335", "123").await;
    let checkout_id = checkout_id_of(&res);
    let checkout = api_checkout(&sandbox, &checkout_id).await;
    assert_eq!(checkout["status"], "requires_capture", "{checkout}");
    assert_eq!(checkout["capture_method"], "manual");
    let html = result_html(&sandbox, &checkout_id).await;
    assert!(html.contains("Payment authorised"), "{html}");
    assert!(html.contains("Authorised</dt><dd>€47.45"), "{html}");
    assert!(html.contains("Capture by</dt><dd>"), "{html}");
    assert!(html.contains("(in 7 days)"), "Visa keeps it 7 days: {html}");
    assert!(html.contains("action=\"/demo/cancel#"), "{html}");

    // More than was authorised is refused in plain words, keeping what was typed.
    let key = form_key(&html, "/demo/capture");
    let res = client
        .post(format!("{}/demo/capture", sandbox.base))
        .form(&[
            ("checkout_id", checkout_id.as_str()),
            ("amount", "100"),
            ("idempotency_key", key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("at most €47.45"), "{html}");
    assert!(html.contains("name=\"amount\" value=\"100\""), "{html}");

    // 10.00 captured: back to the result page, which shows the payment succeeded.
    let key = form_key(&html, "/demo/capture");
    let res = client
        .post(format!("{}/demo/capture", sandbox.base))
        .form(&[
            ("checkout_id", checkout_id.as_str()),
            ("amount", "10.00"),
            ("idempotency_key", key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("/demo/result?checkout_id={checkout_id}").as_str()
    );
    let checkout = api_checkout(&sandbox, &checkout_id).await;
    assert_eq!(checkout["status"], "succeeded", "{checkout}");
    let html = result_html(&sandbox, &checkout_id).await;
    assert!(html.contains("Payment succeeded"), "{html}");
    // The shopper's banner says what was charged: the 10.00 captured, not the 47.45 reserved.
    let banner = &html[html.find("role=\"status\"").unwrap()..html.find("summary-title").unwrap()];
    assert!(banner.contains("€10.00"), "{banner}");
    assert!(!banner.contains("€47.45"), "{banner}");
    // Recorded whichever reached the gateway first: MSP's notification or the capture's answer.
    assert_eq!(checkout["amount_captured"], 1000, "{checkout}");
    assert!(html.contains("Captured</dt><dd>€10.00"), "{html}");
    assert!(html.contains("Left to refund</dt><dd>€10.00"), "{html}");
    assert!(!html.contains("action=\"/demo/capture#"), "{html}");
    assert!(!html.contains("action=\"/demo/cancel#"), "{html}");

    // The same capture again (the page was stale): refused in words, nothing changes.
    let res = client
        .post(format!("{}/demo/capture", sandbox.base))
        .form(&[("checkout_id", checkout_id.as_str()), ("amount", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let html = res.text().await.unwrap();
    assert!(html.contains("captured already"), "{html}");
    assert!(!html.contains("checkout_not_capturable"), "{html}");

    // Another pay-later payment, canceled with its button.
    let other = checkout_id_of(&pay_later(&sandbox, "4012001038443335", "123").await);
    let html = result_html(&sandbox, &other).await;
    let key = form_key(&html, "/demo/cancel");
    let res = client
        .post(format!("{}/demo/cancel", sandbox.base))
        .form(&[
            ("checkout_id", other.as_str()),
            ("idempotency_key", key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let checkout = api_checkout(&sandbox, &other).await;
    assert_eq!(checkout["status"], "canceled", "{checkout}");
    let html = result_html(&sandbox, &other).await;
    assert!(html.contains("Payment cancelled"), "{html}");

    // Pay later with an Amex: the checkout page says why, in plain words.
    let res = pay_later(&sandbox, "3745 000000 00015", "1234").await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("Visa, Mastercard or Maestro"), "{html}");
    assert!(!html.contains("capture_method"), "{html}");

    // Another site posting the forms is refused before anything is sent.
    let third = checkout_id_of(&pay_later(&sandbox, "4012001038443335", "123").await);
    for path in ["/demo/capture", "/demo/cancel"] {
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let res = client
                .post(format!("{}{path}", sandbox.base))
                .header(name, value)
                .form(&[("checkout_id", third.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{path} {name}");
            assert!(res.text().await.unwrap().contains("Request refused"));
        }
    }
    assert_eq!(
        api_checkout(&sandbox, &third).await["status"],
        "requires_capture"
    );

    // The result page of an authorisation, on a desktop and a phone.
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/demo/result?checkout_id={third}", sandbox.base))
        .await
        .unwrap();
    wait_for_text(&browser, false, |t| t.contains("Capture by")).await;
    screenshot_at(&browser, 1280, "demo-capture-desktop").await;
    screenshot_at(&browser, 390, "demo-capture-phone").await;
    browser.close().await;
}

/// The browser pages' security headers, on a demo answer.
fn assert_browser_headers(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    assert_eq!(h["cache-control"], "no-store", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
}

#[tokio::test]
async fn the_sandbox_front_door_leads_to_the_shop_and_its_misses_are_pages() {
    let sandbox = Sandbox::start(&[]);
    let client = no_redirects();
    let res = client
        .get(format!("{}/", sandbox.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/demo");
    assert_browser_headers(&res, "/");

    for (what, method, path, status) in [
        ("result without checkout_id", "GET", "/demo/result", 404),
        (
            "result of an unknown checkout",
            "GET",
            "/demo/result?checkout_id=chk_0123456789abcdef0123456789abcdef",
            404,
        ),
        ("/demo/", "GET", "/demo/", 404),
        ("/demo/nothing", "GET", "/demo/nothing", 404),
        ("POST /demo", "POST", "/demo", 405),
        ("GET /demo/checkout", "GET", "/demo/checkout", 405),
        ("an incomplete form", "POST", "/demo/checkout", 400),
    ] {
        let res = client
            .request(method.parse().unwrap(), format!("{}{path}", sandbox.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=a%40b.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{what}");
        assert_browser_headers(&res, what);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        let page = res.text().await.unwrap();
        assert!(!page.trim_start().starts_with('{'), "{what}: {page}");
        assert!(
            page.contains("href=\"/demo\""),
            "a way back to the shop: {what}: {page}"
        );
    }
}

/// The checkout form as a shopper sends it: an Amex with a 3-digit security code.
fn amex_with_a_short_cvc() -> [(&'static str, &'static str); 7] {
    [
        ("card_number", "3745 000000 00015"),
        ("exp_month", "07"),
        ("exp_year", "2034"),
        ("cvc", "123"),
        ("holder_name", "Sam Shopper"),
        ("email", "sam@example.org"),
        ("capture", "now"),
    ]
}

#[tokio::test]
async fn a_refused_checkout_says_what_to_fix_and_keeps_what_was_typed_but_the_card() {
    let sandbox = Sandbox::start(&[]);
    let res = no_redirects()
        .post(format!("{}/demo/checkout", sandbox.base))
        .form(&amex_with_a_short_cvc())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("Check the security code (CVC)"), "{html}");
    for jargon in ["card.cvc", "shopper typed", "amex card", "invalid_cvc"] {
        assert!(!html.contains(jargon), "{jargon}: {html}");
    }
    for (name, value) in [
        ("exp_month", "07"),
        ("exp_year", "2034"),
        ("holder_name", "Sam Shopper"),
        ("email", "sam@example.org"),
        ("card_number", ""),
        ("cvc", ""),
    ] {
        let at = html.find(&format!("name=\"{name}\"")).unwrap();
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(
            tag.contains(&format!("value=\"{value}\"")),
            "{name} should be `{value}`: {tag}"
        );
    }
    let form = &html[html.find("<form").unwrap()..html.find("</form>").unwrap()];
    assert!(
        !form.contains("3745"),
        "the card number is not echoed: {form}"
    );
}

#[tokio::test]
async fn the_checkout_form_refuses_posts_from_other_sites() {
    let sandbox = Sandbox::start(&[]);
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let res = no_redirects()
            .post(format!("{}/demo/checkout", sandbox.base))
            .header(name, value)
            .form(&amex_with_a_short_cvc())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{name}");
        assert_browser_headers(&res, name);
        let html = res.text().await.unwrap();
        assert!(html.contains("Request refused"), "{html}");
        assert!(html.contains("another website"), "{html}");
        assert!(
            !html.contains("security code"),
            "refused before the form was read or sent on: {html}"
        );
    }
    // The shop's own page posting it is let through (and gets the gateway's answer).
    let res = no_redirects()
        .post(format!("{}/demo/checkout", sandbox.base))
        .header("origin", sandbox.base.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&amex_with_a_short_cvc())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// Types `value` into the checkout form's field `name`, replacing what is there.
async fn type_into(browser: &Browser, name: &str, value: &str) {
    let field = browser
        .client
        .find(Locator::Css(&format!("input[name='{name}']")))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Presses the checkout form's "Pay" button.
async fn press_pay(browser: &Browser) {
    browser
        .client
        .find(Locator::Css("form button[value='now']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits for the simulator's 3-D Secure page; its text.
async fn wait_for_the_bank(browser: &Browser) -> String {
    wait_for_text(browser, false, |t| t.contains("Confirm your payment")).await
}

/// Presses the bank page's button with `value` (`Y`, `N`, `cancel`).
async fn answer_the_bank(browser: &Browser, value: &str) {
    browser
        .client
        .find(Locator::Css(&format!("button[value='{value}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// A shopper's paths through the demo, at a desktop's width and at a phone's (390 CSS pixels),
/// with a screenshot of each page: the checkout, a typo refused, the bank's 3-D Secure page,
/// the cancelled page after pressing Cancel there, a declined card, and a paid order.
#[tokio::test]
async fn a_shopper_pays_cancels_and_fixes_a_typo_on_a_desktop_and_a_phone() {
    let sandbox = Sandbox::start(&[]);
    let browser = Browser::start().await;
    let c = &browser.client;
    for (width, device) in [(1280, "desktop"), (390, "phone")] {
        c.set_window_size(width, 900).await.unwrap();
        let shot = |page: &str| format!("shopper-{device}-{page}");

        // The checkout page, and a typo: an Amex's security code is 4 digits.
        c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
        screenshot_at(&browser, width, &shot("1-checkout")).await;
        type_into(&browser, "card_number", "3745 000000 00015").await;
        type_into(&browser, "cvc", "123").await;
        type_into(&browser, "email", "sam@example.org").await;
        press_pay(&browser).await;
        let page = wait_for_text(&browser, false, |t| t.contains("Check the security code")).await;
        assert!(
            page.contains("enter the card number and security code again"),
            "{page}"
        );
        assert!(
            !page.contains("card.cvc") && !page.contains("shopper"),
            "{page}"
        );
        let kept = |name: &'static str| async move {
            c.find(Locator::Css(&format!("input[name='{name}']")))
                .await
                .unwrap()
                .prop("value")
                .await
                .unwrap()
                .unwrap_or_default()
        };
        assert_eq!(kept("email").await, "sam@example.org");
        assert_eq!(kept("card_number").await, "");
        assert_eq!(kept("cvc").await, "");
        screenshot_at(&browser, width, &shot("2-error")).await;

        // A 3-D Secure card; at the bank the shopper presses Cancel.
        type_into(&browser, "card_number", "4111 1111 1111 1111").await;
        type_into(&browser, "cvc", "123").await;
        press_pay(&browser).await;
        let bank = wait_for_the_bank(&browser).await;
        assert!(bank.contains("€47.45"), "{bank}");
        screenshot_at(&browser, width, &shot("3-bank")).await;
        answer_the_bank(&browser, "cancel").await;
        browser
            .wait_for_url(&format!("{}/demo/result", sandbox.base))
            .await;
        let page = wait_for_text(&browser, false, |t| t.contains("Payment not completed")).await;
        assert!(!page.contains("Payment failed"), "{page}");
        assert!(page.contains("nothing was charged"), "{page}");
        screenshot_at(&browser, width, &shot("4-cancelled")).await;

        // The bank's Reject, and a card the bank declines on its page: the gateway reports
        // them as it reports Cancel, and the shopper is never told they cancelled.
        for (card, answer, name) in [
            ("4111 1111 1111 1111", "N", "4b-rejected"),
            ("4012 0010 3746 1114", "Y", "4c-declined-at-the-bank"),
        ] {
            c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
            type_into(&browser, "card_number", card).await;
            press_pay(&browser).await;
            wait_for_the_bank(&browser).await;
            answer_the_bank(&browser, answer).await;
            browser
                .wait_for_url(&format!("{}/demo/result", sandbox.base))
                .await;
            let page =
                wait_for_text(&browser, false, |t| t.contains("Payment not completed")).await;
            assert!(!page.to_lowercase().contains("payment cancelled"), "{page}");
            assert!(page.contains("nothing was charged"), "{page}");
            screenshot_at(&browser, width, &shot(name)).await;
        }

        // Try again with a card whose bank declines it after 3-D Secure.
        c.find(Locator::LinkText("Try again"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&browser, false, |t| t.contains("Card payment")).await;
        type_into(&browser, "card_number", "4012 0010 3848 8884").await;
        press_pay(&browser).await;
        wait_for_the_bank(&browser).await;
        answer_the_bank(&browser, "Y").await;
        let page = wait_for_text(&browser, false, |t| t.contains("Payment failed")).await;
        assert!(
            page.contains("not enough money available. Try another card."),
            "{page}"
        );
        for merchant_words in ["Ask the shopper", "(insufficient_funds)", "MultiSafepay:"] {
            assert!(!page.contains(merchant_words), "{merchant_words}: {page}");
        }
        screenshot_at(&browser, width, &shot("5-declined")).await;

        // And pays.
        c.goto(&format!("{}/demo", sandbox.base)).await.unwrap();
        press_pay(&browser).await;
        wait_for_the_bank(&browser).await;
        answer_the_bank(&browser, "Y").await;
        let page = wait_for_text(&browser, false, |t| t.contains("Payment succeeded")).await;
        assert!(page.contains("Thank you"), "{page}");
        screenshot_at(&browser, width, &shot("6-paid")).await;

        // The gateway's own page for a pay link it does not know (a mistyped link).
        c.goto(&format!("{}/pay/not-a-link", sandbox.base))
            .await
            .unwrap();
        let page = wait_for_text(&browser, false, |t| t.contains("payment link")).await;
        assert!(page.contains("start the checkout again"), "{page}");
        screenshot_at(&browser, width, &shot("7-unknown-link")).await;
    }
    browser.close().await;
}

/// `/demo/webhooks` needs no key: it shows no pay link (whoever has one can pay), and posts
/// that anyone could send it are refused without pushing the gateway's real deliveries out.
#[tokio::test]
async fn the_keyless_webhooks_page_shows_no_pay_link_and_only_verified_deliveries() {
    let sandbox = Sandbox::start(&[]);
    let client = crate::common::http_client();
    let body = crate::common::checkout::CheckoutRequest::new("4111111111111111")
        .return_url(format!("{}/demo/result", sandbox.base))
        .without_cancel_url()
        .body();
    let created: Value = client
        .post(format!("{}/v1/checkouts", sandbox.base))
        .bearer_auth(&sandbox.key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["status"], "requires_action", "{created}");
    let id = created["id"].as_str().unwrap();
    let pay_link = created["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .unwrap();
    let token = pay_link.rsplit('/').next().unwrap();
    let page = || async {
        client
            .get(format!("{}/demo/webhooks", sandbox.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The checkout.requires_action delivery, which carries the pay link in `next_action`.
    let deadline = tokio::time::Instant::now() + WAIT;
    let html = loop {
        let html = page().await;
        if html.contains(id) && html.contains("checkout.requires_action") {
            break html;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery: {html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        !html.contains(token),
        "a live pay link on a keyless page: {html}"
    );
    assert!(html.contains(sandbox::demo::PAY_LINK_HIDDEN), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "{html}");

    // More forged posts than the page keeps: each refused, none listed, the real one kept.
    let forged = json!({"id": "evt_forged", "type": "checkout.succeeded",
        "data": {"object": {"id": "chk_forged"}}});
    for i in 0..60 {
        let mut post = client
            .post(format!("{}/demo/webhooks", sandbox.base))
            .json(&forged);
        if i % 2 == 0 {
            post = post.header("gateway-signature", "t=1,v1=00");
        }
        assert_eq!(post.send().await.unwrap().status(), 400);
    }
    let html = page().await;
    assert!(
        html.contains(id),
        "the real delivery is still listed: {html}"
    );
    assert!(!html.contains("chk_forged"), "{html}");
    assert!(html.contains("60 deliveries were refused"), "{html}");
}
