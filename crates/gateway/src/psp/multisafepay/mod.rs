//! MultiSafepay's JSON API: the client, the wire types spelled as MSP spells them, MSP's
//! vocabulary (statuses, codes, the failure table), and the one conversion between them and the
//! domain.

pub mod client;
pub mod convert;
pub mod msp_time;
pub mod status;
pub mod transactions;
pub mod wire;

pub use client::{MultiSafepayClient, parse_notification};
