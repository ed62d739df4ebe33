//! MultiSafepay's side of a POST notification, written from MSP's documentation (reference §5.4)
//! and checked against the official PHP SDK's test vector: it shares no code with the gateway's
//! verifier or the simulator's signer, which the tests hold against it.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The `Auth` header MSP sends with a POST notification `body` at Unix time `timestamp`
/// (seconds): `base64("<timestamp>:" + hex(HMAC-SHA512(api_key, "<timestamp>:" + body)))`.
pub fn sign_notification(api_key: &str, timestamp: i64, body: &[u8]) -> String {
    let signed = format!("{timestamp}:");
    let key = hmac::Key::new(hmac::HMAC_SHA512, api_key.as_bytes());
    let mut mac = hmac::Context::with_key(&key);
    mac.update(signed.as_bytes());
    mac.update(body);
    STANDARD.encode(format!("{signed}{}", hex::encode(mac.sign())))
}

/// A POST notification body from MSP's PHP SDK (its `tests/Unit/Util/NotificationTest.php`
/// fixture): MSP's real field set, loosely typed, which the gateway must read, not only what our
/// simulator sends.
pub const PHP_SDK_NOTIFICATION: &[u8] = include_bytes!("../fixtures/msp_php_sdk_notification.json");
/// The API key the PHP SDK's test signs [`PHP_SDK_NOTIFICATION`] with.
pub const PHP_SDK_API_KEY: &str = "your-MultiSafepay-API-key";
/// The `Auth` header the PHP SDK's test expects for [`PHP_SDK_NOTIFICATION`].
pub const PHP_SDK_AUTH: &str = "MTYxNjYwMTg1MTo2ZTRhZTg2MzhhYTJmOWUxNTkyYjA3NDM3NmY2ODE2MTk2NTQ2MzMxYTliOWU5NDlkMWFiNWVmNmE5MzFjYjA5ZWQ4M2FkMTJmODUzZjI5ZGYyMjMxZThmODgzZTJiMThhYWVmN2NiYWZmMTA5NGU5ZmQ5ZmNlMWRkMzYyZjJhNA==";
/// The Unix time inside [`PHP_SDK_AUTH`].
pub const PHP_SDK_TIMESTAMP: i64 = 1_616_601_851;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signer_reproduces_the_php_sdk_vector() {
        assert_eq!(
            sign_notification(PHP_SDK_API_KEY, PHP_SDK_TIMESTAMP, PHP_SDK_NOTIFICATION),
            PHP_SDK_AUTH
        );
    }

    #[test]
    fn the_key_the_time_and_every_byte_of_the_body_count() {
        let auth = sign_notification(PHP_SDK_API_KEY, PHP_SDK_TIMESTAMP, PHP_SDK_NOTIFICATION);
        assert_ne!(
            sign_notification("a-fake-API-key", PHP_SDK_TIMESTAMP, PHP_SDK_NOTIFICATION),
            auth
        );
        assert_ne!(
            sign_notification(PHP_SDK_API_KEY, PHP_SDK_TIMESTAMP + 1, PHP_SDK_NOTIFICATION),
            auth
        );
        let mut body = PHP_SDK_NOTIFICATION.to_vec();
        body.push(b' ');
        assert_ne!(
            sign_notification(PHP_SDK_API_KEY, PHP_SDK_TIMESTAMP, &body),
            auth
        );
    }
}
