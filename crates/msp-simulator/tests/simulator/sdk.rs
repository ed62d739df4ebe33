//! Point 9: what the official SDKs send and expect (the Python SDK above all).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn bearer_auth_with_locale_works_on_every_endpoint() {
    let sim = spawn().await;
    let id = order_id();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut req = sim
            .http
            .request(method, sim.url(&format!("{path}?locale=en_US")))
            .bearer_auth(KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let r = call(
        reqwest::Method::POST,
        "/orders".into(),
        Some(order_body(&id, "374500000000015")),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = call(reqwest::Method::GET, format!("/orders/{id}"), None)
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]["status"],
        "completed"
    );
    let r = call(
        reqwest::Method::POST,
        format!("/orders/{id}/refunds"),
        Some(json!({"currency": "EUR", "amount": 100})),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let other = order_id();
    call(
        reqwest::Method::POST,
        "/orders".into(),
        Some(order_body(&other, "4111111111111111")),
    )
    .await
    .unwrap();
    let r = call(
        reqwest::Method::PATCH,
        format!("/orders/{other}"),
        Some(json!({"status": "cancelled"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_cvc_may_come_as_cvc_and_is_still_required() {
    let sim = spawn().await;
    let mut body = order_body(&order_id(), "4111111111111111");
    let info = body["gateway_info"].as_object_mut().unwrap();
    info.remove("card_cvc");
    info.insert("cvc".into(), json!("123"));
    assert_eq!(sim.create(&body).await.0, 200, "cvc accepted for card_cvc");
    body["order_id"] = json!(order_id());
    body["gateway_info"].as_object_mut().unwrap().remove("cvc");
    let (status, answer) = sim.create(&body).await;
    assert_eq!(
        (status, answer["error_code"].clone()),
        (402, json!(1024)),
        "no CVC at all: {answer}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn items_in_the_order_object_is_a_string_or_null() {
    let sim = spawn().await;
    for (sent, expected) in [
        (
            Some(json!("<table><tr><td>1 x Mug</td></tr></table>")),
            json!("<table><tr><td>1 x Mug</td></tr></table>"),
        ),
        (Some(json!([{"name": "Mug"}])), Value::Null),
        (None, Value::Null),
    ] {
        let id = order_id();
        let mut body = order_body(&id, "374500000000015");
        if let Some(items) = &sent {
            body["items"] = items.clone();
        }
        assert_eq!(sim.create(&body).await.0, 200);
        assert_eq!(sim.order(&id).await["items"], expected, "sent {sent:?}");
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn notification_bodies_are_compact_with_slashes_and_unicode_unescaped() {
    let sim = spawn().await;
    let notify = receiver().await;
    let id = order_id();
    let mut body = notified_order(
        &id,
        "374500000000015",
        &format!("{}/ok", notify.uri()),
        Some("POST"),
    );
    body["items"] = json!("<p>Kaffeebecher für €5</p>");
    sim.create(&body).await;
    sim.wait_attempts(&id, 1, Duration::from_secs(5)).await;
    let raw = String::from_utf8(received_for(&notify, &id).await[0].body.clone()).unwrap();
    assert!(
        raw.contains(r#""items":"<p>Kaffeebecher für €5</p>""#),
        "{raw}"
    );
    assert!(
        !raw.contains(": ") && !raw.contains(", ") && !raw.contains('\n'),
        "compact: {raw}"
    );
    sim.handle.stop().await;
}

/// A venv with the official Python SDK, made once under the cargo target directory in use
/// (needs `python3` and PyPI).
fn python_sdk() -> std::path::PathBuf {
    test_support::tools::python_venv("python-sdk", &["multisafepay[requests]==3.1.0"])
}

#[tokio::test]
async fn the_official_python_sdk_works_with_only_the_base_url_changed() {
    let python = tokio::task::spawn_blocking(python_sdk).await.unwrap();
    let sim = spawn().await;
    let notify = receiver().await;
    // A notification for the SDK's webhook validator.
    let notified = order_id();
    sim.create(&notified_order(
        &notified,
        "374500000000015",
        &format!("{}/ok", notify.uri()),
        Some("POST"),
    ))
    .await;
    sim.wait_attempts(&notified, 1, Duration::from_secs(5))
        .await;
    let r = &received_for(&notify, &notified).await[0];
    let body_file = std::env::temp_dir().join(format!("sim-notification-{notified}.json"));
    std::fs::write(&body_file, &r.body).unwrap();
    let auth = r.headers["auth"].to_str().unwrap().to_owned();

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/simulator/sdk/python_sdk.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/v1/", sim.local()))
        .arg(KEY)
        .arg(order_id())
        .arg(&body_file)
        .arg(auth)
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&body_file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python SDK failed against the simulator:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        9,
        "{stdout}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn the_official_python_sdk_reads_the_transaction_list_page_by_page() {
    let python = tokio::task::spawn_blocking(python_sdk).await.unwrap();
    let sim = spawn().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = order_id();
        sim.create(&order_body(&id, "374500000000015")).await;
        ids.push(id);
    }
    let r = sim
        .http
        .post(sim.url(&format!("/orders/{}/refunds", ids[0])))
        .header("api_key", KEY)
        .json(&json!({"currency": "EUR", "amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = sim
        .http
        .post(format!("{}/sim/orders/{}/chargeback", sim.local(), ids[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/simulator/sdk/transactions_sdk.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/v1/", sim.local()))
        .arg(KEY)
        .arg("5")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python SDK could not read the transactions:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        8,
        "{stdout}"
    );
    sim.handle.stop().await;
}
