//! The operators' console as an operator uses it: sign-in and sessions, CSRF refusals, the
//! sign-in limit, search, a checkout's timeline, the work queues, the public listener's 404, and
//! the pages in real headless Chromium at a desktop's and a phone's width.

use std::time::Duration;

use chrono::TimeDelta;
use fantoccini::Locator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::browser::Browser;
use crate::common::checkout::CheckoutRequest;
use crate::common::webhook::{Mode, Receiver};
use crate::helpers::{
    Options, TestApp, WEBHOOK_SECRET, Webhooks, hidden_fields, location, spawn_app_with,
};

const KEY: &str = "ck_test_0123456789abcdef012345";
const FRICTIONLESS: &str = "374500000000015";
const CHALLENGED: &str = "4111111111111111";
const VISA_NO_3DS: &str = "4012001038443335";
const WAIT: Duration = Duration::from_secs(20);

fn console_options() -> Options {
    Options {
        ops_port: Some(0),
        console_keys: vec![format!("alice:{KEY}")],
        ..Options::default()
    }
}

async fn spawn_console() -> TestApp {
    spawn_app_with(console_options()).await
}

fn ops(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.ops_address.as_ref().unwrap())
}

/// The value of cookie `name` among a response's `Set-Cookie` headers, with the whole header.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..].split(';').next().unwrap().to_owned();
            (value, v.to_owned())
        })
}

fn field(html: &str, name: &str) -> Option<String> {
    hidden_fields(html)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// A signed-in operator: the session cookie and the session's CSRF token.
struct Operator {
    cookie: String,
    csrf: String,
}

/// The sign-in form's cookie and CSRF token.
async fn sign_in_form(app: &TestApp) -> (String, String) {
    let res = app
        .client
        .get(ops(app, "/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (cookie, _) = set_cookie(&res, "console_sign_in").expect("a sign-in cookie");
    let html = res.text().await.unwrap();
    (
        cookie,
        field(&html, "csrf_token").expect("a csrf_token field"),
    )
}

async fn try_sign_in(app: &TestApp, key: &str) -> reqwest::Response {
    let (cookie, csrf) = sign_in_form(app).await;
    app.client
        .post(ops(app, "/console/sign-in"))
        .header("cookie", format!("console_sign_in={cookie}"))
        .form(&[("key", key), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap()
}

async fn sign_in(app: &TestApp) -> Operator {
    let res = try_sign_in(app, KEY).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console");
    let (cookie, _) = set_cookie(&res, "console_session").expect("a session cookie");
    let signed_in = Operator {
        cookie: cookie.clone(),
        csrf: String::new(),
    };
    let html = page(app, &signed_in, "/console").await.1;
    let csrf = field(&html, "csrf_token").expect("the page's forms carry the token");
    Operator { cookie, csrf }
}

async fn page(app: &TestApp, op: &Operator, path: &str) -> (StatusCode, String) {
    let res = app
        .client
        .get(ops(app, path))
        .header("cookie", format!("console_session={}", op.cookie))
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    op: &Operator,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(ops(app, path))
        .header("cookie", format!("console_session={}", op.cookie))
        .form(form)
        .send()
        .await
        .unwrap()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_console_answers_on_the_operators_listener_only() {
    let app = spawn_console().await;
    for path in ["/console", "/console/sign-in", "/console/search?q=x"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "public {path}");
    }
    let res = app.client.get(ops(&app, "/console")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"key\""), "the sign-in form: {html}");
    app.stop().await;

    // Without console keys there is no console, even on the operators' listener.
    let app = spawn_app_with(Options {
        ops_port: Some(0),
        ..Options::default()
    })
    .await;
    let res = app
        .client
        .get(ops(&app, "/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn signing_in_starts_a_strict_session_that_expires_and_signing_out_ends_it() {
    let app = spawn_console().await;

    // A wrong key answers the form again, with a message.
    let res = try_sign_in(&app, "ck_test_not-the-key-0000000000").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&res, "console_session").is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains("not a console key"), "{html}");
    assert!(
        !html.contains("not-the-key"),
        "the key typed is not shown back"
    );

    let res = try_sign_in(&app, KEY).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (cookie, header) = set_cookie(&res, "console_session").unwrap();
    assert_eq!(cookie.len(), 64, "{header}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Secure"), "plain http: {header}");
    let op = Operator {
        cookie: cookie.clone(),
        csrf: String::new(),
    };
    let (status, html) = page(&app, &op, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">alice<"), "the console key's label: {html}");
    assert!(!html.contains(KEY), "the key itself never shows");

    // A forged session is no session.
    let forged = Operator {
        cookie: "ab".repeat(32),
        csrf: String::new(),
    };
    let (status, html) = page(&app, &forged, "/console").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("session has ended"), "{html}");

    // Sessions expire (8 hours by default), by the gateway's clock.
    app.clock
        .advance(TimeDelta::hours(8) - TimeDelta::seconds(5));
    assert_eq!(page(&app, &op, "/console").await.0, StatusCode::OK);
    app.clock.advance(TimeDelta::seconds(10));
    let (status, html) = page(&app, &op, "/console").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("Sign in"), "{html}");

    // Signing out ends the session for good.
    let op = sign_in(&app).await;
    let res = post(
        &app,
        &op,
        "/console/sign-out",
        &[("csrf_token", op.csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/sign-in");
    assert_eq!(
        page(&app, &op, "/console").await.0,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused_and_do_nothing() {
    let app = spawn_console().await;
    let op = sign_in(&app).await;
    let id = id_of(&app.create(FRICTIONLESS).await);
    let sync = format!("/console/checkouts/{id}/sync");

    for (what, form) in [
        ("no token", vec![]),
        ("a wrong token", vec![("csrf_token", "0".repeat(64))]),
        (
            "a truncated token",
            vec![("csrf_token", op.csrf[..32].to_owned())],
        ),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = post(&app, &op, &sync, &form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
        let html = res.text().await.unwrap();
        assert!(html.contains("Nothing was done"), "{what}: {html}");
    }
    let res = post(&app, &op, "/console/sign-out", &[]).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "sign-out needs the token too"
    );
    let (_, html) = page(&app, &op, &format!("/console/checkouts/{id}")).await;
    assert!(
        !html.contains("Sync with MSP now by"),
        "no action was recorded: {html}"
    );

    // The sign-in form has its own token.
    let res = app
        .client
        .post(ops(&app, "/console/sign-in"))
        .form(&[("key", KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&res, "console_session").is_none());

    // With the token, the action runs and is recorded with who and when.
    let res = post(&app, &op, &sync, &[("csrf_token", op.csrf.as_str())]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), format!("/console/checkouts/{id}?done=sync"));
    let (_, html) = page(&app, &op, &location(&res)).await;
    assert!(html.contains("Sync with MSP now by alice"), "{html}");
    assert!(html.contains("Synced with MultiSafepay"), "{html}");

    // An unknown checkout: a clear page, nothing done.
    let res = post(
        &app,
        &op,
        "/console/checkouts/chk_00000000000000000000000000000000/sync",
        &[("csrf_token", op.csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("There is no such checkout")
    );
    let (status, _) = page(&app, &op, "/console/checkouts/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn ten_failed_sign_ins_a_minute_are_answered_then_429() {
    let app = spawn_console().await;
    for n in 1..=10 {
        let res = try_sign_in(&app, "ck_wrong_000000000000000000000").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let res = try_sign_in(&app, "ck_wrong_000000000000000000000").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "60");
    // Even the right key waits for the minute to end.
    let res = try_sign_in(&app, KEY).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&res, "console_session").is_none());
    app.clock.advance(TimeDelta::seconds(61));
    let res = try_sign_in(&app, KEY).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn search_finds_a_checkout_by_each_of_its_details_and_refuses_card_numbers() {
    let app = spawn_console().await;
    let op = sign_in(&app).await;
    let mut body = CheckoutRequest::new(FRICTIONLESS)
        .reference("order-console-7")
        .body();
    body["customer"]["email"] = json!("Support.Case@Example.com");
    let res = app
        .authed(Method::POST, "/v1/checkouts")
        .header("Idempotency-Key", "idem-console-7")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let checkout: Value = res.json().await.unwrap();
    let id = id_of(&checkout);
    let checkout = app.wait_for_status(&id, "succeeded", WAIT).await;
    let transaction = checkout["psp"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = id_of(&app.create(FRICTIONLESS).await);

    let search = |q: &str| {
        format!(
            "/console/search?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        )
    };
    for (what, q) in [
        ("checkout id", id.clone()),
        ("shop reference", "order-console-7".to_owned()),
        ("idempotency key", "idem-console-7".to_owned()),
        (
            "customer email, in any case",
            "support.case@example.COM".to_owned(),
        ),
    ] {
        let res = app
            .client
            .get(ops(&app, &search(&q)))
            .header("cookie", format!("console_session={}", op.cookie))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{what}");
        assert_eq!(location(&res), format!("/console/checkouts/{id}"), "{what}");
    }

    // MSP's transaction id: the gateway indexed it when MSP named it. The simulator's ids are
    // 13 digits, which the console refuses like any card number; MultiSafepay's own are shorter.
    use gateway::store::console::{ConsoleSlot, SearchIndex};
    let indexed = app
        .state
        .flows
        .store
        .console_list(
            ConsoleSlot::Index(SearchIndex::MspTransaction, &transaction),
            10,
        )
        .await
        .unwrap();
    assert_eq!(indexed, vec![id.clone()]);
    let short = "4051823";
    let parsed = gateway::domain::checkout::CheckoutId::parse(&other).unwrap();
    app.state
        .flows
        .store
        .console_index(SearchIndex::MspTransaction, short, &parsed)
        .await
        .unwrap();
    let res = app
        .client
        .get(ops(&app, &search(short)))
        .header("cookie", format!("console_session={}", op.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "MSP transaction id");
    assert_eq!(location(&res), format!("/console/checkouts/{other}"));

    // Card last 4: both checkouts paid with that card, listed.
    let (status, html) = page(&app, &op, &search("0015")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&id) && html.contains(&other), "{html}");
    assert!(html.contains("card last 4"), "{html}");

    // A card number is refused and never shown back, however it is written.
    for q in [
        "374500000000015",
        "3745 0000 0000 015",
        "4111-1111-1111-1111",
    ] {
        let (status, html) = page(&app, &op, &search(q)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(html.contains("looks like a card number"), "{html}");
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        assert!(!html.contains(q) && !html.contains(&digits), "{q} echoed");
    }
    let logs = crate::helpers::captured_logs();
    assert!(!logs.contains("3745 0000 0000 015") && !logs.contains("4111-1111-1111-1111"));

    // Markup is shown as text.
    let (status, html) = page(&app, &op, &search("<script>alert(1)</script>")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    assert!(html.contains("No checkout matches"), "{html}");

    // Without a session: the sign-in page, nothing searched.
    let res = app
        .client
        .get(ops(&app, &search(&id)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// The checkout's timeline entries' text, in page order.
fn timeline_text(html: &str) -> Vec<String> {
    html.split("<li class=\"tl-item")
        .skip(1)
        .map(|chunk| {
            let end = chunk
                .find("</li>\n</ol>")
                .or_else(|| chunk.find("<li class=\"tl-item"))
                .unwrap_or(chunk.len());
            let mut text = String::new();
            let mut in_tag = false;
            for c in chunk[..end].chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => {
                        in_tag = false;
                        text.push(' ');
                    }
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.replace("&#39;", "'")
                .replace("&#60;", "<")
                .replace("&#62;", ">")
                .replace("&#34;", "\"")
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::test]
async fn the_timeline_shows_3ds_a_refund_and_a_failed_then_redelivered_webhook() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    receiver.set_mode(Mode::Status(500));
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks::to(receiver.url())),
        ..console_options()
    })
    .await;
    let op = sign_in(&app).await;
    let checkout = app.create(CHALLENGED).await;
    let id = id_of(&checkout);
    app.pay_with_challenge(&checkout, "Y").await;
    app.wait_for_status(&id, "succeeded", WAIT).await;
    let res = app
        .authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
        .json(&json!({"amount": 500}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    let succeeded = app
        .merchant_events(&id)
        .await
        .into_iter()
        .find(|e| e["type"] == "checkout.succeeded")
        .unwrap();
    let event_id = id_of(&succeeded);
    app.wait_for_attempts(&event_id, 1).await;

    let path = format!("/console/checkouts/{id}");
    let (status, html) = page(&app, &op, &path).await;
    assert_eq!(status, StatusCode::OK);
    let entries = timeline_text(&html);
    let find = |needle: &str| {
        entries
            .iter()
            .position(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no entry with {needle:?}: {entries:#?}"))
    };
    let created = find("Checkout created");
    let challenged = find("Created → Awaiting 3-D Secure");
    let paid = find("→ Succeeded");
    let refund = find("Refund of 5.00 EUR");
    // The MSP calls made for it and the notifications MSP sent, in the same timeline.
    let create_call = find("MSP call");
    assert!(
        entries.iter().any(|e| e.contains("MSP call")
            && e.contains("create order")
            && e.contains("HTTP 200")),
        "{entries:#?}"
    );
    let notified = find("Signed notification (POST)");
    assert!(entries[notified].contains("Verified"), "{entries:#?}");
    assert!(create_call < created, "newest first: {entries:#?}");
    let failed = find("HTTP 500 checkout.succeeded to the shop's webhook URL");
    assert!(
        entries[paid].contains("by "),
        "the source of a transition: {entries:#?}"
    );
    assert!(
        created > challenged && challenged > paid,
        "newest first: {entries:#?}"
    );
    assert!(paid > refund || paid > failed, "newest first: {entries:#?}");

    // Redeliver the failed delivery from the page's own form.
    let form = html
        .split("<form method=\"post\" action=\"")
        .skip(1)
        .find(|f| {
            f.starts_with(&format!("/console/checkouts/{id}/redeliver")) && f.contains(&event_id)
        })
        .expect("a Redeliver button on the failed attempt");
    let target = field(form, "target").unwrap();
    assert_eq!(target, "url");
    receiver.set_mode(Mode::Ok);
    app.clock.advance(TimeDelta::seconds(1));
    let res = post(
        &app,
        &op,
        &format!("/console/checkouts/{id}/redeliver"),
        &[
            ("csrf_token", op.csrf.as_str()),
            ("event", event_id.as_str()),
            ("target", "url"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    receiver.wait_for_acknowledged(1, WAIT).await;
    app.wait_for_attempts(&event_id, 2).await;

    let (_, html) = page(&app, &op, &path).await;
    let entries = timeline_text(&html);
    let find = |needle: &str| {
        entries
            .iter()
            .position(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no entry with {needle:?}: {entries:#?}"))
    };
    let ok = find("HTTP 200");
    let action = find(&format!(
        "Redeliver {event_id} to the shop's webhook URL by alice"
    ));
    let failed = find("HTTP 500 checkout.succeeded");
    assert!(ok < failed && action < failed, "newest first: {entries:#?}");
    assert!(entries[ok].contains("delivery: delivered"), "{entries:#?}");
    // Nothing secret on the page.
    for secret in [
        WEBHOOK_SECRET,
        crate::helpers::MERCHANT_KEY,
        crate::helpers::MSP_KEY,
        CHALLENGED,
        KEY,
    ] {
        assert!(!html.contains(secret), "{secret} on the page");
    }

    // A redelivery of another checkout's event through this page: refused, nothing queued.
    let other = id_of(&app.create(FRICTIONLESS).await);
    let res = post(
        &app,
        &op,
        &format!("/console/checkouts/{other}/redeliver"),
        &[
            ("csrf_token", op.csrf.as_str()),
            ("event", event_id.as_str()),
            ("target", "url"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_queues_show_stuck_payments_and_authorisations_about_to_lapse() {
    let app = spawn_console().await;
    let op = sign_in(&app).await;
    let stuck = id_of(&app.create(CHALLENGED).await);
    let mut body = CheckoutRequest::new(VISA_NO_3DS).body();
    body["capture_method"] = json!("manual");
    let res = app.post_checkout(&body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let authorised = id_of(&res.json().await.unwrap());
    let authorised_now = app
        .wait_for_status(&authorised, "requires_capture", WAIT)
        .await;

    let queue = |html: &str, title: &str| -> String {
        let start = html
            .find(&format!("<h3>{title}"))
            .unwrap_or_else(|| panic!("no queue {title}"));
        let rest = &html[start..];
        rest[..rest.find("</section>").unwrap()].to_owned()
    };
    let (status, html) = page(&app, &op, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !queue(&html, "Stuck payments").contains(&stuck),
        "not stuck yet"
    );
    assert!(!queue(&html, "Authorisations to capture").contains(&authorised));

    // Two hours on, the 3-D Secure window has ended.
    app.clock.advance(TimeDelta::hours(2));
    let (_, html) = page(&app, &op, "/console").await;
    let stuck_queue = queue(&html, "Stuck payments");
    assert!(stuck_queue.contains(&stuck), "{stuck_queue}");
    assert!(
        stuck_queue.contains("Awaiting 3-D Secure"),
        "status in words: {stuck_queue}"
    );
    assert!(
        stuck_queue.contains("badge warn"),
        "and in colour: {stuck_queue}"
    );

    // Within 24 hours of the last day to capture.
    let before =
        chrono::DateTime::parse_from_rfc3339(authorised_now["capture_before"].as_str().unwrap())
            .unwrap();
    let until = before.with_timezone(&chrono::Utc) - app.clock_now();
    app.clock.advance(until - TimeDelta::hours(12));
    // Days later: that session has long ended.
    assert_eq!(
        page(&app, &op, "/console").await.0,
        StatusCode::UNAUTHORIZED
    );
    let op = sign_in(&app).await;
    let (_, html) = page(&app, &op, "/console").await;
    let captures = queue(&html, "Authorisations to capture");
    assert!(captures.contains(&authorised), "{captures}");
    assert!(html.contains("<svg"), "the charts are drawn inline");
    app.stop().await;
}

trait ClockNow {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}

impl ClockNow for TestApp {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use gateway::clock::Clock as _;
        self.clock.now()
    }
}

/// Whether the page scrolls sideways, and the requests it made to hosts other than `origin`.
async fn layout_and_requests(browser: &Browser, origin: &str) -> (bool, Vec<String>) {
    let c = &browser.client;
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    let urls = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    let foreign = urls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u.as_str())
        .filter(|u| !u.starts_with(origin))
        .map(str::to_owned)
        .collect();
    (fits, foreign)
}

#[tokio::test]
async fn the_console_reads_cleanly_in_chromium_at_1280_and_390_pixels() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    receiver.set_mode(Mode::Status(500));
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks::to(receiver.url())),
        ..console_options()
    })
    .await;
    let checkout = app.create(CHALLENGED).await;
    let id = id_of(&checkout);
    app.pay_with_challenge(&checkout, "Y").await;
    app.wait_for_status(&id, "succeeded", WAIT).await;
    let res = app
        .authed(Method::POST, &format!("/v1/checkouts/{id}/refunds"))
        .json(&json!({"amount": 500}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let _stuck = app.create(CHALLENGED).await;
    let _declined = app.create("4242424242424242").await;
    for _ in 0..3 {
        app.create(FRICTIONLESS).await;
    }
    app.deliver_after(TimeDelta::seconds(1)).await;
    app.clock.advance(TimeDelta::hours(2));

    let origin = app.ops_address.clone().unwrap();
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&format!("{origin}/console")).await.unwrap();
    for width in [1280, 390] {
        c.set_window_size(width, 900).await.unwrap();
        crate::demo::screenshot_at(&browser, width, &format!("console-{width}-0-sign-in")).await;
    }
    c.find(Locator::Css("input[name='key']"))
        .await
        .unwrap()
        .send_keys(KEY)
        .await
        .unwrap();
    c.find(Locator::Css("form.stack button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_url(&format!("{origin}/console")).await;
    crate::demo::wait_for_text(&browser, false, |t| t.contains("Work queues")).await;

    let pages = [
        ("1-overview", "/console".to_owned()),
        ("2-search", "/console/search?q=0015".to_owned()),
        ("3-checkout", format!("/console/checkouts/{id}")),
        (
            "4-refused-search",
            "/console/search?q=4111111111111111".to_owned(),
        ),
    ];
    for (name, path) in &pages {
        c.goto(&format!("{origin}{path}")).await.unwrap();
        for width in [1280, 390] {
            c.set_window_size(width, 900).await.unwrap();
            let (fits, foreign) = layout_and_requests(&browser, &origin).await;
            assert!(fits, "{path} scrolls sideways at {width} px");
            assert!(foreign.is_empty(), "{path} asked other hosts: {foreign:?}");
            crate::demo::screenshot_at(&browser, width, &format!("console-{width}-{name}")).await;
        }
    }
    // The search box works without any script.
    c.goto(&format!("{origin}/console")).await.unwrap();
    let q = c.find(Locator::Css("input[name='q']")).await.unwrap();
    q.send_keys(&id).await.unwrap();
    c.find(Locator::Css("form.search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_url(&format!("{origin}/console/checkouts/{id}"))
        .await;
    browser.close().await;
    receiver.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_sandbox_prints_where_its_console_is_and_its_key_signs_in() {
    let sandbox = crate::cli::Sandbox::start(&[]);
    assert!(sandbox.console.ends_with("/console"), "{}", sandbox.console);
    assert!(
        !sandbox.console.starts_with(&sandbox.base),
        "not on the public port"
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/console", sandbox.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "public port");
    let res = client
        .get(format!("{}/sign-in", sandbox.console))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (cookie, _) = set_cookie(&res, "console_sign_in").unwrap();
    let csrf = field(&res.text().await.unwrap(), "csrf_token").unwrap();
    let res = client
        .post(format!("{}/sign-in", sandbox.console))
        .header("cookie", format!("console_sign_in={cookie}"))
        .form(&[
            ("key", sandbox.console_key.as_str()),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&res, "console_session").is_some());
}

#[tokio::test]
async fn the_queues_show_failed_webhook_events_and_disabled_endpoints() {
    let mut receiver = Receiver::start(WEBHOOK_SECRET).await;
    receiver.set_mode(Mode::Status(503));
    let mut gone = Receiver::start("unused").await;
    gone.set_mode(Mode::Status(410));
    let app = spawn_app_with(Options {
        webhooks: Some(Webhooks {
            max_age_s: 3_600,
            ..Webhooks::to(receiver.url())
        }),
        ..console_options()
    })
    .await;
    let res = app
        .authed(Method::POST, "/v1/webhook_endpoints")
        .json(&json!({"url": gone.url(), "events": ["*"], "description": "Shop ERP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let endpoint = id_of(&res.json().await.unwrap());
    let id = id_of(&app.create(FRICTIONLESS).await);
    let event = app
        .merchant_events(&id)
        .await
        .into_iter()
        .find(|e| e["type"] == "checkout.succeeded")
        .unwrap();
    let event_id = id_of(&event);
    app.wait_for_attempts(&event_id, 1).await;
    // 1 min, 5 min, 30 min: the next wait would pass the hour, so the third retry is the last.
    for (n, wait) in [(2, 1), (3, 5), (4, 30)] {
        app.deliver_after(TimeDelta::minutes(wait)).await;
        app.wait_for_attempts(&event_id, n).await;
    }
    assert_eq!(app.event(&event_id).await["delivery"]["status"], "failed");

    let op = sign_in(&app).await;
    let queue = |html: &str, title: &str| -> String {
        let start = html.find(&format!("<h3>{title}")).unwrap();
        let rest = &html[start..];
        rest[..rest.find("</section>").unwrap()].to_owned()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let html = loop {
        let (status, html) = page(&app, &op, "/console").await;
        assert_eq!(status, StatusCode::OK);
        if queue(&html, "Disabled webhook endpoints").contains(&endpoint) {
            break html;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint was never disabled: {html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let failed = queue(&html, "Failed webhook events");
    assert!(failed.contains(&event_id), "{failed}");
    assert!(
        failed.contains(&format!("/console/checkouts/{id}")),
        "links to its checkout: {failed}"
    );
    assert!(failed.contains("Failed"), "{failed}");
    let disabled = queue(&html, "Disabled webhook endpoints");
    assert!(
        disabled.contains("Shop ERP") && disabled.contains("410 Gone"),
        "{disabled}"
    );
    assert!(!html.contains(&gone.url()), "endpoint URLs are not shown");
    receiver.stop().await;
    gone.stop().await;
    app.stop().await;
}
