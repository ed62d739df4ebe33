//! Webhook endpoints the merchant manages through the API: where events go beside
//! the configured `webhooks.url`, which events (a filter), and the secrets that sign them.
//!
//! A filter entry is an event type (`refund.succeeded`), or a pattern of dotted segments where
//! a segment `*` stands for any one segment (`checkout.*`), or `*` alone (every type). An entry
//! that matches no event type there is is refused, naming `events[i]`: a misspelt filter must
//! not silently receive nothing.
//!
//! The secret is `whsec_` and the base64 of 32 random bytes (the Standard Webhooks form). It is
//! shown once, in the answer that makes it; the store keeps it (the gateway must sign with it),
//! the API never shows it again, and its `Debug` is masked. A rotated-out secret keeps signing
//! beside the new one for [`ROTATION_OVERLAP`].

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::event::EventType;
use super::id::prefixed_id;
use super::validation::FieldError;
use crate::error_code::ErrorCode;

prefixed_id!(
    /// `we_` and 32 hex digits.
    WebhookEndpointId,
    InvalidWebhookEndpointId,
    "we_",
    "a webhook endpoint id is `we_` followed by 32 lowercase hex digits"
);

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: TimeDelta = TimeDelta::hours(24);

/// The most endpoints a gateway keeps (Stripe allows 16 per account too): every event is matched
/// against all of them.
pub const MAX_ENDPOINTS: usize = 16;

/// The most entries one filter holds.
pub const MAX_FILTER_ENTRIES: usize = 100;

/// The longest `description`.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Every event type a filter can name, as text.
pub fn known_event_types() -> Vec<String> {
    EventType::all().map(|t| t.to_string()).collect()
}

/// Whether filter entry `entry` matches event type `kind`.
pub fn entry_matches(entry: &str, kind: &str) -> bool {
    if entry == "*" {
        return true;
    }
    let mut pattern = entry.split('.');
    let mut segments = kind.split('.');
    loop {
        match (pattern.next(), segments.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p == "*" || p == s => {}
            _ => return false,
        }
    }
}

/// A checked event filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    /// Checks every entry (`param` `events[i]` for the first that matches no type).
    pub fn parse(entries: Vec<String>) -> Result<Self, FieldError> {
        if entries.is_empty() {
            return Err(FieldError::new(
                "events",
                ErrorCode::InvalidParameter,
                "`events` lists at least one event type, such as `checkout.succeeded`, `checkout.*` or `*` (every type)",
            ));
        }
        if entries.len() > MAX_FILTER_ENTRIES {
            return Err(FieldError::new(
                "events",
                ErrorCode::InvalidParameter,
                format!(
                    "`events` holds at most {MAX_FILTER_ENTRIES} entries: use `<object>.*` or `*` to take many types at once"
                ),
            ));
        }
        let known = known_event_types();
        for (i, entry) in entries.iter().enumerate() {
            if !known.iter().any(|k| entry_matches(entry, k)) {
                return Err(FieldError::new(
                    format!("events[{i}]"),
                    ErrorCode::InvalidParameter,
                    "this entry matches no event type: give a type such as `checkout.succeeded` or `refund.pending`, `<object>.*` (every type of that object, such as `checkout.*`) or `*` (every type); GET /v1/events shows the types there are",
                ));
            }
        }
        Ok(Self(entries))
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0.iter().any(|e| entry_matches(e, kind))
    }

    pub fn entries(&self) -> &[String] {
        &self.0
    }
}

/// Why an endpoint is disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// It answered 410 Gone.
    Gone,
    /// It failed for `webhooks.max_age_s` without a single success.
    Failing,
    /// The merchant disabled it.
    Merchant,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Failing => "failing",
            Self::Merchant => "merchant",
        }
    }
}

/// An endpoint's signing secret: `whsec_…`. Its `Debug` never shows it.
#[derive(Clone)]
pub struct EndpointSecret(SecretString);

impl EndpointSecret {
    /// `whsec_` and the base64 of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(SecretString::from(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn as_secret(&self) -> SecretString {
        self.0.clone()
    }
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(whsec_…)")
    }
}

impl PartialEq for EndpointSecret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for EndpointSecret {}

// Stored, never shown: only the store's JSON holds it (the gateway signs with it).
impl Serialize for EndpointSecret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for EndpointSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(SecretString::from(String::deserialize(d)?)))
    }
}

/// One secret and, once rotated out, when it stops signing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret {
    pub secret: EndpointSecret,
    #[serde(default, with = "crate::domain::time::rfc3339_opt")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A webhook endpoint, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub url: String,
    pub events: EventFilter,
    pub description: Option<String>,
    pub disabled_reason: Option<DisabledReason>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// The newest first; rotated-out ones until they expire.
    pub secrets: Vec<SigningSecret>,
    /// The first failed attempt since the last success: an endpoint failing for
    /// `webhooks.max_age_s` from then is disabled (`failing`).
    #[serde(default, with = "crate::domain::time::rfc3339_opt")]
    pub failing_since: Option<DateTime<Utc>>,
}

impl WebhookEndpoint {
    pub fn new(
        url: String,
        events: EventFilter,
        description: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: WebhookEndpointId::generate(),
            url,
            events,
            description,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
            secrets: vec![SigningSecret {
                secret: EndpointSecret::generate(),
                expires_at: None,
            }],
            failing_since: None,
        }
    }

    pub fn disabled(&self) -> bool {
        self.disabled_reason.is_some()
    }

    /// Whether this endpoint should get an event of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        !self.disabled() && self.events.matches(kind)
    }

    /// The secrets that sign at `now`: the current one and any rotated out less than
    /// [`ROTATION_OVERLAP`] ago.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<SecretString> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| s.secret.as_secret())
            .collect()
    }

    /// The current secret (the one shown at creation or by the last rotation).
    pub fn current_secret(&self) -> Option<&EndpointSecret> {
        self.secrets.first().map(|s| &s.secret)
    }

    /// A new current secret; the old one signs beside it until `now` + [`ROTATION_OVERLAP`].
    /// Secrets already past their time are dropped.
    pub fn rotate(&mut self, now: DateTime<Utc>) {
        self.secrets
            .retain(|s| s.expires_at.is_none_or(|at| at > now));
        for s in &mut self.secrets {
            if s.expires_at.is_none() {
                s.expires_at = Some(now + ROTATION_OVERLAP);
            }
        }
        self.secrets.insert(
            0,
            SigningSecret {
                secret: EndpointSecret::generate(),
                expires_at: None,
            },
        );
        self.updated_at = now;
    }
}

/// An endpoint as a `webhook_endpoint.*` event shows it (and as the API does, without
/// `secret`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSnapshot {
    pub id: WebhookEndpointId,
    pub url: String,
    pub events: EventFilter,
    pub description: Option<String>,
    pub disabled: bool,
    pub disabled_reason: Option<DisabledReason>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    pub fn snapshot(&self) -> EndpointSnapshot {
        EndpointSnapshot {
            id: self.id.clone(),
            url: self.url.clone(),
            events: self.events.clone(),
            description: self.description.clone(),
            disabled: self.disabled(),
            disabled_reason: self.disabled_reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A description, checked.
pub fn parse_description(description: String) -> Result<Option<String>, FieldError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new(
            "description",
            ErrorCode::InvalidParameter,
            format!("`description` is at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(Some(description).filter(|d| !d.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_entries_match_whole_segments() {
        assert!(entry_matches("*", "refund.succeeded"));
        assert!(entry_matches("checkout.*", "checkout.succeeded"));
        assert!(!entry_matches("checkout.*", "refund.succeeded"));
        assert!(entry_matches("*.succeeded", "refund.succeeded"));
        assert!(entry_matches("refund.succeeded", "refund.succeeded"));
        assert!(!entry_matches("refund.succeed", "refund.succeeded"));
        assert!(!entry_matches("checkout", "checkout.succeeded"));
        assert!(!entry_matches("checkout.*.x", "checkout.succeeded"));
        assert!(entry_matches(
            "webhook_endpoint.*",
            "webhook_endpoint.disabled"
        ));
    }

    #[test]
    fn an_entry_that_matches_no_type_is_refused_by_its_index() {
        let e =
            EventFilter::parse(vec!["checkout.*".into(), "chekout.succeeded".into()]).unwrap_err();
        assert_eq!(e.param, "events[1]");
        assert!(EventFilter::parse(vec![]).is_err());
        assert!(EventFilter::parse(vec!["*".into()]).is_ok());
    }

    #[test]
    fn a_secret_is_whsec_base64_of_32_bytes_and_its_debug_is_masked() {
        let s = EndpointSecret::generate();
        let rest = s.expose().strip_prefix("whsec_").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .unwrap();
        assert_eq!(bytes.len(), 32);
        assert!(!format!("{s:?}").contains(rest));
        let endpoint = WebhookEndpoint::new(
            "https://shop.example/hooks".into(),
            EventFilter::parse(vec!["*".into()]).unwrap(),
            None,
            Utc::now(),
        );
        assert!(!format!("{endpoint:?}").contains(endpoint.current_secret().unwrap().expose()));
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
        let now = Utc::now();
        let mut endpoint = WebhookEndpoint::new(
            "https://shop.example/hooks".into(),
            EventFilter::parse(vec!["*".into()]).unwrap(),
            None,
            now,
        );
        let old = endpoint.current_secret().unwrap().clone();
        endpoint.rotate(now);
        assert_ne!(endpoint.current_secret().unwrap(), &old);
        assert_eq!(endpoint.signing_secrets(now).len(), 2);
        assert_eq!(
            endpoint
                .signing_secrets(now + TimeDelta::hours(24) - TimeDelta::seconds(1))
                .len(),
            2
        );
        assert_eq!(
            endpoint.signing_secrets(now + TimeDelta::hours(24)).len(),
            1
        );
    }
}
