//! MultiSafepay's JSON API: the client, the wire types spelled as MSP spells them, and the one
//! conversion between them and the domain.

pub mod client;
pub mod convert;
pub mod wire;

pub use client::{CreateOrder, MultiSafepayClient, parse_notification};

/// How MSP should deliver notifications (`multisafepay.notification_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NotificationMethod {
    /// Signed with the API key: the gateway can apply the body as it is (design §5).
    #[default]
    Post,
    /// No body: the gateway fetches the order from MSP.
    Get,
}

impl NotificationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
        }
    }
}
