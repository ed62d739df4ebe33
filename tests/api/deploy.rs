//! The files of deploy/ as a cluster and its tools read them (issue 30): the Kubernetes
//! manifests against Kubernetes' own schemas (`kubernetes-validate`), the alert rules through
//! `promtool check rules` and `promtool test rules`, every metric an alert or a dashboard panel
//! selects present on the gateway's /metrics (PromQL parsed by `promql-parser`), a runbook line
//! for every alert, and `checkov` finding nothing it was not told why.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::checkout::CheckoutRequest;
use crate::common::redis_server::TestRedis;
use crate::helpers::{MERCHANT_KEY, MSP_KEY, WEBHOOK_SECRET};
use crate::metrics_exposition::parse_exposition;
use crate::resilience::{Served, served_env};

const DEPLOY_TOOLS: &[&str] = &[
    "kubernetes-validate==1.37.0",
    "pyyaml==6.0.3",
    "promql-parser==0.11.0",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} could not run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `promtool`, from Debian's `prometheus` package (./scripts/test installs it).
fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "promtool not found: run ./scripts/test, which installs Debian's prometheus package"
    );
    Command::new("promtool")
}

#[tokio::test]
async fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let python = tokio::task::spawn_blocking(|| {
        test_support::tools::python_venv("deploy-tools", DEPLOY_TOOLS)
    })
    .await
    .unwrap();
    let validate = python.with_file_name("kubernetes-validate");
    // The oldest Kubernetes the Deployment needs (the pre-stop sleep action) and the newest the
    // validator knows.
    for version in ["1.30.0", "1.37.0"] {
        let out = run(
            Command::new(&validate)
                .args(["--strict", "-k", version])
                .arg(deploy_dir().join("kubernetes.yaml")),
            &format!("kubernetes-validate {version}"),
        );
        for kind in [
            "deployment",
            "service",
            "poddisruptionbudget",
            "networkpolicy",
        ] {
            assert!(
                out.contains(&format!("passed for resource {kind}/")),
                "{kind}: {out}"
            );
        }
    }
}

/// A served gateway that has done a bit of everything the alerts and the dashboard look at: a
/// checkout (HTTP, MSP, a transition, an event for the webhook outbox), reconciler passes,
/// webhook deliveries to a storefront that is down, and a Redis outage.
async fn busy_exposition() -> String {
    let sim = msp_simulator::spawn(msp_simulator::SimulatorConfig::for_tests(MSP_KEY))
        .await
        .unwrap();
    let redis = TestRedis::start();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env: Vec<(&str, String)> = served_env(&sim, 2500).into_iter().collect();
    env[0].1 = redis.url().to_owned();
    env.extend([
        ("GATEWAY__RECONCILE__ENABLED", "true".to_owned()),
        (
            "GATEWAY__WEBHOOKS__URL",
            format!("http://127.0.0.1:{closed_port}/hooks"),
        ),
        ("GATEWAY__WEBHOOKS__SECRETS", WEBHOOK_SECRET.to_owned()),
    ]);
    let gateway = Served::start(&env);
    gateway.wait_until_live().await;
    let client = crate::common::http_client();
    let res = client
        .post(format!("{}/v1/checkouts", gateway.base))
        .bearer_auth(MERCHANT_KEY)
        .json(&CheckoutRequest::new("4111111111111111").body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let scrape = || async {
        reqwest::get(format!("{}/metrics", gateway.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The deliverer's first attempt and the reconciler's first pass (every 5 s) have happened.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = scrape().await;
        if text.contains("gateway_webhook_outbox_overdue_seconds ")
            && text.contains("gateway_reconciler_pass_checkouts ")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery attempt or reconciler pass:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    redis.stop();
    let res = client
        .get(format!("{}/v1/checkouts/{id}", gateway.base))
        .bearer_auth(MERCHANT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let _ = reqwest::get(format!("{}/health/ready", gateway.base)).await;
    let text = scrape().await;
    drop(gateway);
    sim.stop().await;
    text
}

#[tokio::test]
async fn the_alert_rules_pass_promtool_and_every_query_selects_metrics_the_gateway_has() {
    let exposition = busy_exposition().await;
    let families = tokio::task::spawn_blocking({
        let text = exposition.clone();
        move || parse_exposition(&text)
    })
    .await
    .unwrap();
    let on_metrics: BTreeSet<String> = families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();

    let dir = tempdir();
    let rules = dir.join("rules.yaml");
    let python = tokio::task::spawn_blocking(|| {
        test_support::tools::python_venv("deploy-tools", DEPLOY_TOOLS)
    })
    .await
    .unwrap();
    let queries: Vec<Value> = serde_json::from_str(&run(
        Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/ops/queries.py"))
            .arg(deploy_dir().join("monitoring.yaml"))
            .arg(deploy_dir().join("grafana-dashboard.json"))
            .arg(&rules),
        "reading deploy/'s PromQL",
    ))
    .unwrap();
    assert!(queries.len() > 20, "{queries:?}");
    for query in &queries {
        let metrics = query["metrics"].as_array().unwrap();
        assert!(!metrics.is_empty(), "{query}");
        for name in metrics {
            assert!(
                on_metrics.contains(name.as_str().unwrap()),
                "{} selects {name}, which /metrics does not have:\n{exposition}",
                query["where"]
            );
        }
    }

    // promtool: the rules load, the alerts fire on what they are for and stay quiet on a
    // healthy instance, and the exposition passes its lint (HELP, names, suffixes).
    run(
        promtool().args(["check", "rules"]).arg(&rules),
        "promtool check rules",
    );
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/ops/alerts.test.yaml"),
        dir.join("alerts.test.yaml"),
    )
    .unwrap();
    run(
        promtool()
            .current_dir(&dir)
            .args(["test", "rules", "alerts.test.yaml"]),
        "promtool test rules",
    );
    let mut lint = promtool()
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        lint.stdin
            .take()
            .unwrap()
            .write_all(exposition.as_bytes())
            .unwrap();
    }
    let linted = lint.wait_with_output().unwrap();
    assert!(
        linted.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&linted.stdout),
        String::from_utf8_lossy(&linted.stderr)
    );

    // Every alert has its runbook line in the operator's notes.
    let readme = std::fs::read_to_string(deploy_dir().join("README.md")).unwrap();
    let alerts = readme
        .split("\n## Alerts")
        .nth(1)
        .expect("deploy/README.md has an Alerts section");
    for query in &queries {
        if let Some(alert) = query["where"].as_str().unwrap().strip_prefix("alert ") {
            assert!(
                alerts.contains(&format!("`{alert}`")),
                "{alert} has no runbook line"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn checkov_finds_nothing_in_deploy_it_was_not_told_why() {
    let python = tokio::task::spawn_blocking(|| {
        test_support::tools::python_venv("checkov", &["checkov==3.3.30"])
    })
    .await
    .unwrap();
    let out = Command::new(python.with_file_name("checkov"))
        .arg("-d")
        .arg(deploy_dir())
        // No look-ups at Prisma Cloud: the checks that ship with checkov only.
        .args(["--skip-download", "--quiet", "--compact", "-o", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("checkov's output is not JSON ({e}):\n{stdout}"));
    let reports = match reports {
        Value::Array(all) => all,
        one => vec![one],
    };
    let kinds: Vec<&str> = reports
        .iter()
        .map(|r| r["check_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"kubernetes") && kinds.contains(&"dockerfile"),
        "{kinds:?}"
    );
    for report in &reports {
        assert_eq!(
            report["summary"]["failed"],
            0,
            "checkov: {}",
            serde_json::to_string_pretty(&report["results"]["failed_checks"]).unwrap()
        );
        assert_eq!(report["summary"]["parsing_errors"], 0, "{report}");
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cgw-deploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_systemd_unit_verifies_and_never_gives_up_on_a_late_redis() {
    let found = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "systemd-analyze not found: install Debian's systemd package"
    );
    let unit = std::fs::read_to_string(deploy_dir().join("checkout-gateway.service")).unwrap();
    // Only what `serve` needs to be retried for as long as Redis takes: no start limit, a
    // restart after a failure, none after a bad configuration (exit status 2).
    for line in [
        "StartLimitIntervalSec=0",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    // verify wants the binary to exist: ours, where the unit has the installed one.
    let dir = tempdir();
    let path = dir.join("checkout-gateway.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/checkout-gateway",
            env!("CARGO_BIN_EXE_checkout-gateway"),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
