//! Point 1: the command line, and starting in-process on port 0.

use std::time::Duration;

use clap::Parser;
use msp_simulator::{SimulatorArgs, SimulatorConfig};

use crate::helpers::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulatorArgs,
}

fn parse(args: &[&str]) -> Result<SimulatorConfig, clap::Error> {
    Cli::try_parse_from(std::iter::once("simulator").chain(args.iter().copied()))
        .map(|c| c.args.into())
}

#[test]
fn defaults_match_the_issue() {
    let c = parse(&["--api-key", "k"]).unwrap();
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 8081);
    assert_eq!(c.api_keys, vec!["k"]);
    assert_eq!(c.public_url, None);
    assert_eq!(c.notification_retry_interval, Duration::from_secs(900));
    assert_eq!(c.challenge_expiry, Duration::from_secs(3600));
    assert_eq!(c.uncleared_delay, Duration::from_millis(180_000));
}

#[test]
fn every_flag_is_read_and_api_key_repeats() {
    let c = parse(&[
        "--host",
        "0.0.0.0",
        "--port",
        "9000",
        "--api-key",
        "k1",
        "--api-key",
        "k2",
        "--public-url",
        "https://sim.example",
        "--notification-retry-interval-ms",
        "250",
        "--challenge-expiry-s",
        "5",
        "--uncleared-delay-ms",
        "750",
    ])
    .unwrap();
    assert_eq!(c.host, "0.0.0.0");
    assert_eq!(c.port, 9000);
    assert_eq!(c.api_keys, vec!["k1", "k2"]);
    assert_eq!(c.public_url.as_deref(), Some("https://sim.example"));
    assert_eq!(c.notification_retry_interval, Duration::from_millis(250));
    assert_eq!(c.challenge_expiry, Duration::from_secs(5));
    assert_eq!(c.uncleared_delay, Duration::from_millis(750));
}

#[test]
fn an_api_key_is_required_and_never_shown_in_debug() {
    let err = parse(&[]).expect_err("no --api-key must be refused");
    assert!(err.to_string().contains("--api-key"), "{err}");
    let shown = format!("{:?}", parse(&["--api-key", "secret-key-123"]).unwrap());
    assert!(!shown.contains("secret-key-123"), "{shown}");
}

#[tokio::test]
async fn spawn_on_port_0_reports_its_address_and_urls() {
    let sim = spawn().await;
    let addr = sim.handle.addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(
        sim.handle.base_url(),
        format!("http://127.0.0.1:{}", addr.port())
    );
    assert_eq!(
        sim.handle.api_url(),
        format!("{}/v1/json", sim.handle.base_url())
    );
    let r = sim
        .http
        .get(format!("{}/sim/health", sim.handle.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    sim.handle.stop().await;
    assert!(
        reqwest::get(format!("http://{addr}/sim/health"))
            .await
            .is_err(),
        "a stopped simulator must not answer"
    );
}

#[tokio::test]
async fn public_url_starts_every_url_handed_out() {
    let sim = spawn_with(|c| c.public_url = Some("http://sim.example:9999/".into())).await;
    assert_eq!(sim.handle.base_url(), "http://sim.example:9999");
    let (_, body) = sim
        .create(&order_body(&order_id(), "4111111111111111"))
        .await;
    let payment_url = body["data"]["payment_url"].as_str().unwrap();
    assert!(
        payment_url.starts_with("http://sim.example:9999/sim/3ds/"),
        "{payment_url}"
    );
    let html = body["data"]["customer_verification"]["html"]
        .as_str()
        .unwrap();
    assert!(
        html.contains("action=\"http://sim.example:9999/sim/3ds\""),
        "{html}"
    );
    sim.handle.stop().await;
}

#[tokio::test]
async fn run_serves_until_stopped() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = parse(&["--port", &port.to_string(), "--api-key", KEY]).unwrap();
    let task = tokio::spawn(msp_simulator::run(config));
    let url = format!("http://127.0.0.1:{port}/sim/health");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert!(up, "run() never answered on port {port}");
}

#[test]
fn the_refund_delay_is_a_minute_unless_set() {
    let c = parse(&["--api-key", "k"]).unwrap();
    assert_eq!(c.refund_delay, Duration::from_secs(60));
    let c = parse(&["--api-key", "k", "--refund-delay-ms", "250"]).unwrap();
    assert_eq!(c.refund_delay, Duration::from_millis(250));
    assert!(
        format!("{c:?}").contains("refund_delay"),
        "shown in the config's Debug"
    );
}
