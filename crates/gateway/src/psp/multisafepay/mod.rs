//! MultiSafepay's JSON API: the client, the wire types spelled as MSP spells them, and the one
//! conversion between them and the domain.

pub mod client;
pub mod convert;
pub mod wire;

pub use client::{CreateOrder, MultiSafepayClient, parse_notification};

/// How MSP should deliver notifications (`multisafepay.notification_method`).
pub use crate::configuration::NotificationMethod;
