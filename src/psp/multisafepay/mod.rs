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

impl std::str::FromStr for NotificationMethod {
    type Err = String;

    /// Case-insensitive, for configuration values (`post`, `GET`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "POST" => Ok(Self::Post),
            "GET" => Ok(Self::Get),
            _ => Err(format!(
                "`{s}` is not a notification method: use POST (signed, recommended) or GET"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NotificationMethod;

    #[test]
    fn notification_methods_parse_and_print_as_msp_spells_them() {
        assert_eq!("post".parse(), Ok(NotificationMethod::Post));
        assert_eq!("GET".parse(), Ok(NotificationMethod::Get));
        assert!("PUT".parse::<NotificationMethod>().is_err());
        assert_eq!(NotificationMethod::Post.as_str(), "POST");
        assert_eq!(
            serde_json::to_value(NotificationMethod::Get).unwrap(),
            serde_json::json!("GET")
        );
    }
}
