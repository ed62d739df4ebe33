//! The sandbox's demo storefront in real headless Chromium: a person's whole 3-D Secure payment,
//! in both 3DS modes. In form mode this is also the proof that the CSP built for MultiSafepay's
//! form (script hashes, form-action) lets Chrome run and submit it.

use fantoccini::Locator;

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
    let page = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
