//! The shared integration-test harness. Include it from a test binary with
//! `#[path = "../common/mod.rs"] mod common;`.
#![allow(dead_code)]

pub mod browser;
pub mod redis_cluster;
pub mod redis_server;
pub mod redis_tls;
