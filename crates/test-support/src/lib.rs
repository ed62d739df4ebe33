//! What the workspace's tests and its load harness share, so that each exists once:
//!
//! - [`redis_server`], [`redis_cluster`], [`redis_tls`]: throw-away `redis-server`s on free ports
//!   (a single server, a three-master cluster, a TLS server with its own CA) that the tests start
//!   and stop themselves; no test touches a Redis it did not start.
//! - [`browser`]: headless Chromium through chromedriver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod redis_cluster;
pub mod redis_server;
pub mod redis_tls;

/// A POST notification body as MultiSafepay's PHP SDK documents it (its test fixture's shape):
/// the gateway must accept MSP's real field set, not only what our simulator sends.
pub const MSP_PHP_SDK_NOTIFICATION: &[u8] =
    include_bytes!("../fixtures/msp_php_sdk_notification.json");
