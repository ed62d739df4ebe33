//! What the workspace's tests and its load harness share, so that each exists once:
//!
//! - [`redis_server`], [`redis_cluster`], [`redis_tls`]: throw-away `redis-server`s on free ports
//!   (a single server, a three-master cluster, a TLS server with its own CA) that the tests start
//!   and stop themselves; no test touches a Redis it did not start.
//! - [`browser`]: headless Chromium through chromedriver.
//! - [`artefacts`]: where tests write screenshots and the Python venv (the target directory in
//!   use).
//! - [`checkout`]: the merchant's checkout request, built from the API's example.
//! - [`msp`]: MultiSafepay's notification signature, and the PHP SDK's signed notification.
//! - [`tools`]: Python venvs and npm packages (MSP's official SDK, Standard Webhooks libraries,
//!   client generators) installed once under the target directory, for tests that drive them.
//! - [`webhook`]: a storefront's webhook receiver on loopback that verifies signatures with its
//!   own code and answers as a test tells it to.
//!
//! Nothing here depends on the gateway or the simulator: the tests hold both against what is
//! written here from the design and MultiSafepay's documentation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod artefacts;
pub mod browser;
pub mod checkout;
pub mod msp;
pub mod redis_cluster;
pub mod redis_server;
pub mod redis_tls;
pub mod tools;
pub mod webhook;

/// An HTTP client for the tests' own requests. It drops pooled connections idle for 2 s, below
/// the gateway's 5 s keep-alive, so a request is never sent on a connection the server is
/// closing at that moment (hyper's `IncompleteMessage`, seen on a loaded machine).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client builds")
}
