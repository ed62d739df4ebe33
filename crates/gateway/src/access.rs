//! Who may come in, and how often: the merchant keys (compared as digests in constant time,
//! each with its token bucket), the key that fingerprints idempotent request bodies, and the
//! per-address limit of the endpoints that need no key. Plain values the app
//! state holds; the web layer's extractors and middleware ([`crate::api::auth`],
//! [`crate::browser::keyless`]) use them.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;
use std::time::Instant;

use aws_lc_rs::{constant_time, digest, hmac};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::SharedClock;

/// The merchant keys, kept as SHA-256 digests: comparing fixed-length digests in constant time
/// hides both the keys' contents and their lengths.
pub struct MerchantKeys {
    digests: Vec<[u8; 32]>,
    limiter: RateLimiter,
}

impl MerchantKeys {
    pub fn new(keys: &[SecretString], rate_limit_per_s: u32) -> Self {
        let digests = keys
            .iter()
            .map(|k| digest(k.expose_secret()))
            .collect::<Vec<_>>();
        let limiter = RateLimiter::new(digests.len(), rate_limit_per_s);
        Self { digests, limiter }
    }

    /// The index of the key `presented` matches, checking every key (no early exit).
    pub fn find(&self, presented: &str) -> Option<usize> {
        let presented = digest(presented);
        let mut found = None;
        for (i, d) in self.digests.iter().enumerate() {
            if constant_time::verify_slices_are_equal(d, &presented).is_ok() {
                found = Some(i);
            }
        }
        found
    }

    /// Takes a token from key `index`'s bucket: `Ok` to go ahead, or `Err(seconds to wait)`.
    pub fn admit(&self, index: usize) -> Result<(), u64> {
        self.limiter.take(index)
    }
}

fn digest(key: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, key.as_bytes()).as_ref());
    out
}

/// One token bucket per configured key (by its index), on a monotonic clock.
struct RateLimiter(crate::rate_limit::RateLimiter<usize>);

impl RateLimiter {
    fn new(_keys: usize, rate_per_s: u32) -> Self {
        Self(crate::rate_limit::RateLimiter::new(rate_per_s))
    }

    /// `Ok` to go ahead, or `Err(seconds to wait)`.
    fn take(&self, key: usize) -> Result<(), u64> {
        static START: LazyLock<Instant> = LazyLock::new(Instant::now);
        self.0.take(&key, START.elapsed().as_secs_f64())
    }
}

/// The key that fingerprints request bodies, derived from a secret every instance shares.
pub struct FingerprintKey(SecretString);

impl FingerprintKey {
    /// The keyed HMAC of a request body: what an idempotency record compares.
    pub fn fingerprint(&self, body: &[u8]) -> String {
        hmac_sha256_hex(self.0.expose_secret().as_bytes(), body)
    }

    pub fn derive(secret: &SecretString) -> Self {
        let derived = hmac_sha256_hex(
            secret.expose_secret().as_bytes(),
            b"checkout-gateway idempotency fingerprint v1",
        );
        Self(SecretString::from(derived))
    }
}

fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    hex::encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message))
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

/// A per-client-address limit of endpoints that need no key (`server.keyless_rate_limit_per_s`):
/// the app state holds one per caller (the shopper's browser, MSP's notifications).
pub struct KeylessLimit(crate::rate_limit::RateLimiter<IpAddr>);

impl KeylessLimit {
    pub fn new(rate_per_s: u32) -> Self {
        Self(crate::rate_limit::RateLimiter::new(rate_per_s))
    }

    /// `Ok` to go ahead, or `Err(seconds to wait)`, for a request from `peer` (by the flows'
    /// clock, so that tests move time instead of sleeping).
    pub fn check(&self, peer: Option<IpAddr>, clock: &SharedClock) -> Result<(), u64> {
        // No peer address (a Unix socket, a test request): one shared bucket.
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        #[allow(clippy::cast_precision_loss)] // microseconds since 1970 fit an f64's 52 bits
        let now_s = clock.now().timestamp_micros() as f64 / 1e6;
        self.0.take(&peer, now_s)
    }
}
