//! MultiSafepay notifications (`/notifications/multisafepay`, POST signed or GET).
//! Answers are short: `OK` (acknowledged), 401 (bad signature) or 503 (send it again).

pub mod multisafepay;
pub mod signature;

pub use multisafepay::configure;
