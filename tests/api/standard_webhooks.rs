//! Standard Webhooks: the `standardwebhooks` libraries from PyPI and npm verify
//! real deliveries of a running gateway with nothing but the secret, using the receivers the
//! README shows (`examples/webhooks/`); a retry keeps its `webhook-id` and is signed afresh at
//! its own time; `Gateway-Signature` is unchanged beside them.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::webhook::{Mode, Receiver, verify};
use crate::helpers::*;

/// Frictionless at the simulator: the checkout succeeds at creation.
const FRICTIONLESS: &str = "374500000000015";
/// A Standard Webhooks secret: `whsec_` and the base64 of 32 bytes.
pub const WHSEC: &str = "whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=";
const WAIT: Duration = Duration::from_secs(30);

pub const PYTHON_PACKAGES: &[&str] = &["standardwebhooks==1.1.0"];
pub const NPM_PACKAGES: &[&str] = &["standardwebhooks@1.1.1"];

/// The Python venv holding the PyPI library.
pub async fn python() -> PathBuf {
    tokio::task::spawn_blocking(|| {
        test_support::tools::python_venv("standardwebhooks", PYTHON_PACKAGES)
    })
    .await
    .unwrap()
}

/// The directory whose `node_modules` holds the npm library.
pub async fn node_modules() -> PathBuf {
    tokio::task::spawn_blocking(|| {
        test_support::tools::npm_packages("standardwebhooks-js", NPM_PACKAGES)
    })
    .await
    .unwrap()
    .join("node_modules")
}

pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/webhooks")
        .join(name)
}

#[derive(Clone, Copy, Debug)]
pub enum Lang {
    Python,
    Node,
}

/// One of the README's receivers, running: what it printed, line by line, as JSON.
pub struct LibraryReceiver {
    pub url: String,
    lines: Arc<Mutex<Vec<Value>>>,
    _child: Child,
}

impl LibraryReceiver {
    pub async fn start(lang: Lang, secret: &str) -> LibraryReceiver {
        let mut command = match lang {
            Lang::Python => {
                let mut c = Command::new(python().await);
                c.arg(example("receiver.py"));
                c
            }
            Lang::Node => {
                let mut c = Command::new("node");
                c.arg(example("receiver.js"))
                    .env("NODE_PATH", node_modules().await);
                c
            }
        };
        let mut child = command
            .env("WEBHOOK_SECRET", secret)
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start the {lang:?} receiver: {e}"));
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, out.next_line())
            .await
            .expect("the receiver says where it listens")
            .unwrap()
            .expect("the receiver printed a line");
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let value = serde_json::from_str(&line).unwrap_or(json!({"raw": line}));
                sink.lock().unwrap().push(value);
            }
        });
        LibraryReceiver {
            url: format!("{url}/webhooks"),
            lines,
            _child: child,
        }
    }

    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until the receiver printed that it verified event `id`.
    pub async fn wait_for_verified(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let lines = self.lines();
            if lines.iter().any(|l| l["verified"] == id) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver did not verify {id}: {lines:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A recorded delivery: its headers and body.
pub type Recorded = (Vec<(String, String)>, Vec<u8>);

/// Verifies recorded deliveries with the PyPI library, as a receiver would: answers, per
/// delivery, "ok" or the library's error's name.
pub async fn python_verifies(secret: &str, deliveries: &[Recorded]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
from standardwebhooks import Webhook
job = json.load(sys.stdin)
out = []
for d in job["deliveries"]:
    try:
        Webhook(job["secret"]).verify(d["body"], dict(d["headers"]))
        out.append("ok")
    except Exception as e:
        out.append(type(e).__name__)
print(json.dumps(out))
"#;
    let job = json!({
        "secret": secret,
        "deliveries": deliveries
            .iter()
            .map(|(headers, body)| json!({"headers": headers, "body": String::from_utf8_lossy(body)}))
            .collect::<Vec<_>>(),
    });
    let mut child = Command::new(python().await)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(job.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "the verifying script failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn app_to(url: String, secrets: Vec<String>) -> TestApp {
    spawn_app_with(Options {
        webhooks: Some(Webhooks {
            secrets,
            ..Webhooks::to(url)
        }),
        ..Options::default()
    })
    .await
}

async fn succeeded_event(app: &TestApp, checkout: &Value) -> String {
    let events = app.merchant_events(checkout["id"].as_str().unwrap()).await;
    events
        .iter()
        .find(|e| e["type"] == "checkout.succeeded")
        .expect("a checkout.succeeded event")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_python_library_verifies_a_real_delivery_with_the_readme_receiver() {
    let receiver = LibraryReceiver::start(Lang::Python, WHSEC).await;
    // A second secret signs beside it (rotation): the library finds its own among them.
    let app = app_to(
        receiver.url.clone(),
        vec!["whsec_older_raw_secret".into(), WHSEC.into()],
    )
    .await;
    let checkout = app.create(FRICTIONLESS).await;
    let id = succeeded_event(&app, &checkout).await;
    receiver.wait_for_verified(&id).await;
    // Recorded as delivered once the gateway has read the receiver's answer, just after.
    let event = app.wait_for_attempts(&id, 1).await;
    assert_eq!(event["delivery"]["status"], "delivered", "{event:#}");
    assert_eq!(event["delivery"]["attempts"][0]["http_status"], 204);
    assert!(
        receiver.lines().iter().all(|l| l.get("rejected").is_none()),
        "{:?}",
        receiver.lines()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_node_library_verifies_a_real_delivery_with_the_readme_receiver() {
    let receiver = LibraryReceiver::start(Lang::Node, WHSEC).await;
    let app = app_to(
        receiver.url.clone(),
        vec![WHSEC.into(), "whsec_newer_raw_secret".into()],
    )
    .await;
    let checkout = app.create(FRICTIONLESS).await;
    let id = succeeded_event(&app, &checkout).await;
    receiver.wait_for_verified(&id).await;
    // Recorded as delivered once the gateway has read the receiver's answer, just after.
    let event = app.wait_for_attempts(&id, 1).await;
    assert_eq!(event["delivery"]["status"], "delivered", "{event:#}");
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_with_another_secret_rejects_the_delivery() {
    let receiver = LibraryReceiver::start(Lang::Node, WHSEC).await;
    let app = app_to(
        receiver.url.clone(),
        vec!["whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()],
    )
    .await;
    let checkout = app.create(FRICTIONLESS).await;
    let id = succeeded_event(&app, &checkout).await;
    let event = app.wait_for_attempts(&id, 1).await;
    assert_eq!(event["delivery"]["attempts"][0]["http_status"], 400);
    assert!(
        receiver.lines().iter().any(|l| l.get("rejected").is_some()),
        "{:?}",
        receiver.lines()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retry_keeps_its_webhook_id_and_is_signed_afresh_at_its_own_time() {
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    receiver.set_mode(Mode::Status(500));
    let app = app_to(receiver.url(), vec![WEBHOOK_SECRET.into(), WHSEC.into()]).await;
    let checkout = app.create(FRICTIONLESS).await;
    let id = succeeded_event(&app, &checkout).await;
    app.wait_for_attempts(&id, 1).await;

    receiver.set_mode(Mode::Ok);
    app.deliver_after(TimeDelta::seconds(61)).await;
    receiver.wait_for_acknowledged(1, WAIT).await;
    let got: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.event_id.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    for r in &got {
        assert_eq!(r.header("webhook-id"), Some(id.as_str()));
        // Gateway-Signature is as it always was, beside the new headers.
        let now = chrono::Utc::now().timestamp();
        verify(
            r.signature.as_deref().unwrap(),
            &r.body,
            WEBHOOK_SECRET,
            now,
            300,
        )
        .unwrap();
        assert_eq!(r.body, got[0].body, "every attempt sends the same body");
    }
    let timestamp = |r: &test_support::webhook::Received| -> i64 {
        r.header("webhook-timestamp").unwrap().parse().unwrap()
    };
    // Each attempt is signed at its own time: the one the event's attempts show.
    assert_eq!(timestamp(&got[1]) - timestamp(&got[0]), 61);
    let event = app.event(&id).await;
    for (r, attempt) in got
        .iter()
        .zip(event["delivery"]["attempts"].as_array().unwrap())
    {
        let at = chrono::DateTime::parse_from_rfc3339(attempt["at"].as_str().unwrap()).unwrap();
        assert_eq!(timestamp(r), at.timestamp(), "{attempt}");
    }
    assert_ne!(
        got[0].header("webhook-signature"),
        got[1].header("webhook-signature")
    );
    // One signature per secret, and the library verifies both attempts with the whsec_ one.
    assert_eq!(
        got[1]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    let deliveries: Vec<_> = got
        .iter()
        .map(|r| (r.headers.clone(), r.body.clone()))
        .collect();
    assert_eq!(python_verifies(WHSEC, &deliveries).await, ["ok", "ok"]);
    assert_eq!(
        python_verifies(
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            &deliveries
        )
        .await,
        ["WebhookVerificationError", "WebhookVerificationError"]
    );
    app.stop().await;
}

#[test]
fn the_readme_shows_the_receivers_the_tests_run() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for (name, fence) in [("receiver.py", "```python\n"), ("receiver.js", "```js\n")] {
        let code = std::fs::read_to_string(example(name)).unwrap();
        let shown = format!("{fence}{}\n```", code.trim_end());
        assert!(
            readme.contains(&shown),
            "README.md does not show {name} as it is"
        );
    }
}
