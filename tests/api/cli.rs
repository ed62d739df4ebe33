//! The binary as an operator runs it: configuration errors name the key; `sandbox` starts with
//! nothing but Rust and prints its merchant key.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::checkout_body;

fn gateway() -> Command {
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
    let client = reqwest::Client::new();
    let mut body = checkout_body("374500000000015");
    body["return_url"] = Value::from(format!("{}/demo/result", sandbox.base));
    body.as_object_mut().unwrap().remove("cancel_url");
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

/// `checkout-gateway sandbox` as README starts it (on a free port), stopped on drop.
pub struct Sandbox {
    child: Child,
    pub base: String,
    pub key: String,
}

impl Sandbox {
    pub fn start(env: &[(&str, &str)]) -> Sandbox {
        let mut child = gateway()
            .arg("sandbox")
            .env("GATEWAY__SERVER__PORT", "0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep reading to the end: a closed pipe would fail the sandbox's next write.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !line.starts_with('{') {
                    let _ = tx.send(line);
                }
            }
        });
        let mut banner = (0..2).map(|_| {
            rx.recv_timeout(Duration::from_secs(30))
                .expect("banner within 30 s")
        });
        let key = banner
            .next()
            .unwrap()
            .strip_prefix("merchant API key: ")
            .expect("first banner line is the key")
            .to_owned();
        let demo = banner.next().unwrap();
        let base = demo
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches("/demo")
            .to_owned();
        Sandbox { child, base, key }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
