//! `/metrics` as Prometheus reads it (issue 30): the real binary's exposition, parsed by the
//! reference Python client's text parser; every family has HELP and TYPE, the counters an
//! operator alerts on exist at 0 before anything happened, the process metrics and the build
//! info are there.

use serde_json::Value;

use crate::helpers::MSP_KEY;
use crate::resilience::{Served, served_env};

/// prometheus_client, pinned: its parser is the one the Python ecosystem reads expositions with.
pub(crate) const PROMETHEUS_CLIENT: &str = "prometheus-client==0.26.0";

/// The families of `text`, as prometheus_client's parser reads them.
pub(crate) fn parse_exposition(text: &str) -> Vec<Value> {
    use std::io::Write;
    let python = test_support::tools::python_venv("prometheus-client", &[PROMETHEUS_CLIENT]);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/ops/metrics_families.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The exposition of a freshly started `checkout-gateway serve` (nothing but this scrape and
/// its liveness probes has happened to it).
pub(crate) async fn fresh_exposition() -> String {
    let sim = msp_simulator::spawn(msp_simulator::SimulatorConfig::for_tests(MSP_KEY))
        .await
        .unwrap();
    let gateway = Served::start(&served_env(&sim, 2500));
    gateway.wait_until_live().await;
    let text = reqwest::get(format!("{}/metrics", gateway.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    drop(gateway);
    sim.stop().await;
    text
}

fn sample<'a>(families: &'a [Value], name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .find(|s| {
            s["name"] == name
                && s["labels"].as_object().unwrap().len() == labels.len()
                && labels.iter().all(|(k, v)| s["labels"][*k] == *v)
        })
}

#[tokio::test]
async fn every_family_has_help_and_type_and_the_alerted_counters_start_at_zero() {
    let text = fresh_exposition().await;
    let families = tokio::task::spawn_blocking({
        let text = text.clone();
        move || parse_exposition(&text)
    })
    .await
    .unwrap();
    assert!(families.len() > 10, "{text}");
    for family in &families {
        let name = family["name"].as_str().unwrap();
        assert_ne!(family["type"], "unknown", "{name} has no TYPE:\n{text}");
        assert!(
            !family["help"].as_str().unwrap().trim().is_empty(),
            "{name} has no HELP:\n{text}"
        );
    }

    // Every documented label value of the counters alerts are built on, at 0.
    for (name, labels) in gateway::metrics::ZERO_COUNTERS {
        let mut sets: Vec<Vec<(&str, &str)>> = vec![vec![]];
        for (key, values) in labels.iter() {
            sets = sets
                .iter()
                .flat_map(|set| {
                    values.iter().map(move |v| {
                        let mut next = set.clone();
                        next.push((*key, *v));
                        next
                    })
                })
                .collect();
        }
        for set in sets {
            let found = sample(&families, name, &set)
                .unwrap_or_else(|| panic!("{name}{set:?} is missing:\n{text}"));
            assert_eq!(found["value"], 0.0, "{name}{set:?}");
        }
    }
    // The notification results the operator's notes name, checked by name here too (the table
    // above could lose one).
    for result in ["bad_signature", "store_unavailable", "applied"] {
        assert!(
            sample(
                &families,
                "gateway_notifications_total",
                &[("method", "POST"), ("result", result)]
            )
            .is_some(),
            "{result}"
        );
    }

    // The process's own, as Prometheus' client libraries name them. CPU time is a counter of
    // whole seconds (the `metrics` facade's counters are integers): 0 in a process this young.
    let value = |name: &str| {
        sample(&families, name, &[])
            .unwrap_or_else(|| panic!("{name} is missing:\n{text}"))["value"]
            .as_f64()
            .unwrap()
    };
    assert!(value("process_cpu_seconds_total") >= 0.0);
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    let build = families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .find(|s| s["name"] == "checkout_gateway_build_info")
        .unwrap_or_else(|| panic!("no build info:\n{text}"));
    assert_eq!(build["value"], 1.0);
    assert_eq!(build["labels"]["version"], env!("CARGO_PKG_VERSION"));
}
