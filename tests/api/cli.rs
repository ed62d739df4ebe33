//! The binary as an operator runs it: configuration errors name the key; `sandbox` starts with
//! nothing but Rust and prints its merchant key.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::checkout::CheckoutRequest;

pub(crate) fn gateway() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkout-gateway"));
    // Only what each test sets: no GATEWAY__ variable of the developer's shell leaks in.
    for (key, _) in std::env::vars() {
        if key.starts_with("GATEWAY") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn serve_refuses_to_start_without_its_secrets_and_names_the_key() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "redis.url"),
        (
            &[("GATEWAY__REDIS__URL", "redis://127.0.0.1:1")],
            "multisafepay.api_key",
        ),
        (
            &[
                ("GATEWAY__REDIS__URL", "redis://127.0.0.1:1"),
                ("GATEWAY__MULTISAFEPAY__API_KEY", "k"),
            ],
            "auth.api_keys",
        ),
        (&[("GATEWAY__SERVER__PORT", "not-a-port")], "server.port"),
    ];
    for (env, key) in cases {
        let out = gateway()
            .arg("serve")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{env:?}: {stderr}");
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let out = gateway()
        .args(["serve", "--config", "/nonexistent/gateway.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/gateway.toml"));
}

#[tokio::test]
async fn sandbox_starts_with_nothing_but_rust_and_takes_a_checkout() {
    let sandbox = Sandbox::start(&[]);
    let client = crate::common::http_client();
    let body = CheckoutRequest::new("374500000000015")
        .return_url(format!("{}/demo/result", sandbox.base))
        .without_cancel_url()
        .body();
    let res = client
        .post(format!("{}/v1/checkouts", sandbox.base))
        .bearer_auth(&sandbox.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let checkout: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{checkout}");
    assert_eq!(checkout["status"], "succeeded");
}

#[tokio::test]
async fn the_sandbox_delivers_its_events_to_the_demo_shop_which_verifies_them() {
    let sandbox = Sandbox::start(&[]);
    let client = crate::common::http_client();
    let body = CheckoutRequest::new("374500000000015")
        .return_url(format!("{}/demo/result", sandbox.base))
        .without_cancel_url()
        .body();
    let res = client
        .post(format!("{}/v1/checkouts", sandbox.base))
        .bearer_auth(&sandbox.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let checkout: Value = res.json().await.unwrap();
    let id = checkout["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let page = loop {
        let page = client
            .get(format!("{}/demo/webhooks", sandbox.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains(id) {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery for {id} on /demo/webhooks: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("checkout.succeeded"), "{page}");
    assert!(page.contains(">verified<"), "{page}");
    assert!(!page.contains(">rejected<"), "{page}");
    // The gateway recorded the demo shop's acknowledgement.
    let events: Value = client
        .get(format!("{}/v1/events?checkout_id={id}", sandbox.base))
        .bearer_auth(&sandbox.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = events["data"][0]["id"].as_str().unwrap();
    let event: Value = client
        .get(format!("{}/v1/events/{event_id}", sandbox.base))
        .bearer_auth(&sandbox.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(event["delivery"]["status"], "delivered", "{event}");
    assert_eq!(event["delivery"]["attempts"][0]["http_status"], 204);
}

/// README tells a person where to find the merchant key: the first line on stdout. With the
/// default log level (JSON info lines on stdout too) that must hold.
#[test]
fn the_merchant_key_is_on_the_stdout_line_readme_names() {
    let readme = include_str!("../../README.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        readme.contains("The first line on stdout is the merchant API key"),
        "README no longer says where the key is: update this test with it"
    );
    let sandbox = Sandbox::start(&[("RUST_LOG", "info")]);
    assert!(
        sandbox
            .first_stdout_line
            .starts_with("merchant API key: sk_sandbox_"),
        "first stdout line: {}",
        sandbox.first_stdout_line
    );
}

/// A port that is taken: the error says which variable moves the gateway elsewhere, before the
/// sandbox prints a key that would never work, and as a message, not a crash's backtrace (even
/// with `RUST_BACKTRACE` set, as many developers' shells have it).
#[test]
fn a_busy_port_names_the_variable_that_changes_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = gateway()
        .arg("sandbox")
        .env("GATEWAY__SERVER__PORT", &port)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("GATEWAY__SERVER__PORT"), "{stderr}");
    assert!(!stdout.contains("merchant API key"), "{stdout}");
    // The error is logged too (stdout's JSON line), with its causes in one line.
    assert!(stdout.contains("Address already in use"), "{stdout}");
    for output in [&stdout, &stderr] {
        assert!(!output.to_lowercase().contains("backtrace"), "{output}");
    }
    drop(taken);
}

/// `checkout-gateway sandbox` as README starts it (on a free port), stopped on drop.
pub struct Sandbox {
    child: Child,
    pub base: String,
    pub key: String,
    /// The first line the sandbox wrote to stdout.
    pub first_stdout_line: String,
    /// Where the operators' console is (`http://host:port/console`), and its key.
    pub console: String,
    pub console_key: String,
}

impl Sandbox {
    pub fn start(env: &[(&str, &str)]) -> Sandbox {
        let mut child = gateway()
            .arg("sandbox")
            .env("GATEWAY__SERVER__PORT", "0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Keep reading both pipes to the end: a closed pipe would fail the sandbox's next write.
        let (tx, rx) = std::sync::mpsc::channel();
        let pipes: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for (name, pipe) in ["stdout", "stderr"].into_iter().zip(pipes) {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send((name, line));
                }
            });
        }
        let (mut key, mut base) = (None, None);
        let (mut console, mut console_key) = (None, None);
        let mut first_stdout_line = None;
        let mut stdout_banners = 0;
        while key.is_none() || base.is_none() || console.is_none() || console_key.is_none() {
            let (pipe, line) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("banner within 30 s");
            if pipe == "stdout" && first_stdout_line.is_none() {
                first_stdout_line = Some(line.clone());
            }
            if pipe == "stdout" && !line.starts_with('{') {
                stdout_banners += 1;
            }
            if let Some(k) = line.strip_prefix("merchant API key: ") {
                assert_eq!(pipe, "stdout", "the key banner is on stdout");
                key = Some(k.to_owned());
            }
            if let Some(demo) = line.strip_prefix("demo storefront: ") {
                base = Some(demo.trim_end_matches("/demo").to_owned());
            }
            if let Some(url) = line.strip_prefix("operator console: ") {
                console = Some(url.to_owned());
            }
            if let Some(k) = line.strip_prefix("console key: ") {
                assert_eq!(pipe, "stderr", "the console key is not the stdout banner");
                console_key = Some(k.to_owned());
            }
        }
        assert_eq!(stdout_banners, 1, "exactly one banner line on stdout");
        Sandbox {
            child,
            base: base.unwrap(),
            key: key.unwrap(),
            first_stdout_line: first_stdout_line.unwrap(),
            console: console.unwrap(),
            console_key: console_key.unwrap(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
