//! How a delivery is signed: the gateway's own `Gateway-Signature` (unchanged since
//! the first receivers were written against it) and the Standard Webhooks headers,
//! which off-the-shelf libraries verify with nothing but the secret.
//!
//! Standard Webhooks signs `"{webhook-id}.{webhook-timestamp}.{raw body}"` with HMAC-SHA256 and
//! sends `v1,<padded base64>` per secret, space-separated. A secret written `whsec_<base64>` is
//! keyed with the bytes its base64 decodes to (what the libraries do with it); any other secret,
//! including a `whsec_` one whose rest is not base64, with its UTF-8 bytes.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};

/// The prefix Standard Webhooks shows symmetric secrets with.
pub const WHSEC_PREFIX: &str = "whsec_";

/// Signs a body for the receiver, with every secret it holds (several while one is rotated).
#[derive(Clone)]
pub struct Signer {
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} secrets)", self.secrets.len())
    }
}

/// The headers of one signed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Gateway-Signature`: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`.
    pub gateway_signature: String,
    /// `webhook-id`: the event id, the same on every attempt.
    pub webhook_id: String,
    /// `webhook-timestamp`: Unix seconds of the attempt.
    pub webhook_timestamp: String,
    /// `webhook-signature`: `v1,<base64>[ v1,<base64>…]`.
    pub webhook_signature: String,
}

impl Signer {
    pub fn new(secrets: Vec<SecretString>) -> Self {
        Self { secrets }
    }

    /// `Gateway-Signature`: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 keyed with each
    /// secret's UTF-8 bytes over `"{t}.{body}"`.
    pub fn header(&self, t: i64, body: &[u8]) -> String {
        let t = t.to_string();
        let mut header = format!("t={t}");
        for secret in &self.secrets {
            let mac = hmac_sha256(
                secret.expose_secret().as_bytes(),
                &[t.as_bytes(), b".", body],
            );
            header.push_str(",v1=");
            header.push_str(&hex::encode(mac));
        }
        header
    }

    /// `webhook-signature`: one `v1,<base64>` per secret, space-separated, over
    /// `"{id}.{timestamp}.{body}"`.
    pub fn standard(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let signed: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
        self.secrets
            .iter()
            .map(|secret| {
                let mac = hmac_sha256(&standard_key(secret.expose_secret()), &signed);
                format!("v1,{}", BASE64.encode(mac))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every header of one attempt: `gateway_t` is the `Gateway-Signature`'s time (the real
    /// time, as it always was), `timestamp` the attempt's by the gateway's clock.
    pub fn sign(&self, id: &str, gateway_t: i64, timestamp: i64, body: &[u8]) -> SignedHeaders {
        SignedHeaders {
            gateway_signature: self.header(gateway_t, body),
            webhook_id: id.to_owned(),
            webhook_timestamp: timestamp.to_string(),
            webhook_signature: self.standard(id, timestamp, body),
        }
    }
}

/// The HMAC key Standard Webhooks uses for `secret`: the decoded bytes of a `whsec_<base64>`,
/// else the secret's UTF-8 bytes.
pub fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(WHSEC_PREFIX)
        .and_then(|rest| BASE64.decode(rest).ok())
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// HMAC-SHA256 of the concatenated `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for part in parts {
        mac.update(part);
    }
    mac.sign().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_time_dot_body_per_secret() {
        let signer = Signer::new(vec![
            SecretString::from("whsec_first_0123456789"),
            SecretString::from("whsec_second_0123456789"),
        ]);
        let header = signer.header(1_800_000_000, b"{\"id\":\"evt_1\"}");
        let parts: Vec<&str> = header.split(',').collect();
        assert_eq!(parts[0], "t=1800000000");
        assert_eq!(parts.len(), 3);
        for (part, secret) in parts[1..]
            .iter()
            .zip(["whsec_first_0123456789", "whsec_second_0123456789"])
        {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
            let mac = hmac::sign(&key, b"1800000000.{\"id\":\"evt_1\"}");
            assert_eq!(*part, format!("v1={}", hex::encode(mac)));
        }
    }

    #[test]
    fn the_standard_signature_matches_the_reference_librarys_test_vector() {
        // The Rust `standardwebhooks` crate's `test_sign` vector.
        let signer = Signer::new(vec![SecretString::from(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        )]);
        assert_eq!(
            signer.standard(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn a_secret_that_is_not_whsec_base64_is_keyed_by_its_utf8_bytes_and_each_secret_signs() {
        let raw = "whsec_test_0123456789abcdef";
        assert_eq!(standard_key(raw), raw.as_bytes());
        assert_eq!(standard_key("plain secret"), b"plain secret");
        assert_eq!(standard_key("whsec_AAEC"), vec![0, 1, 2]);
        let signer = Signer::new(vec![
            SecretString::from(raw),
            SecretString::from("whsec_AAEC"),
        ]);
        let header = signer.standard("evt_1", 1_800_000_000, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2, "{header}");
        for (part, key) in parts.iter().zip([raw.as_bytes(), &[0u8, 1, 2][..]]) {
            let mac = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, key),
                b"evt_1.1800000000.{}",
            );
            assert_eq!(*part, format!("v1,{}", BASE64.encode(mac)));
        }
    }
}
