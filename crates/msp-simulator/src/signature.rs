//! The `Auth` header of a POST notification, exactly as MultiSafepay builds it (reference §5.4):
//! `base64("<ts>:" + hex(HMAC-SHA512(api_key, "<ts>:" + body)))`.

use aws_lc_rs::hmac;
use base64::Engine;

/// Signs `body` (the exact bytes sent) at Unix time `timestamp` (seconds) with `api_key`.
pub fn auth_header(api_key: &str, timestamp: i64, body: &[u8]) -> String {
    let prefix = format!("{timestamp}:");
    let digest = hmac_hex(api_key.as_bytes(), prefix.as_bytes(), body);
    base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{digest}"))
}

fn hmac_hex(key: &[u8], prefix: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA512, key);
    let mut mac = hmac::Context::with_key(&key);
    mac.update(prefix);
    mac.update(body);
    hex::encode(mac.sign())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_decodes_to_the_timestamp_and_a_lowercase_hex_hmac() {
        let auth = auth_header("k", 1_700_000_000, b"{}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap();
        let text = String::from_utf8(decoded).unwrap();
        let (ts, sig) = text.split_once(':').unwrap();
        assert_eq!(ts, "1700000000");
        assert_eq!(sig.len(), 128);
        assert!(
            sig.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
